/* auth.c — logins and tokens (libsodium; the passwords themselves are
 * password.c's). A token key is 256 random bits shown once, in hex; the
 * database keeps only its BLAKE2b hash, so a leaked database holds no
 * usable key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

static void key_hash(const char *key, unsigned char *hash)
{
    crypto_generichash(hash, STORE_TOKEN_HASH_LEN, (const unsigned char *)key, strlen(key), NULL,
                       0);
}

/* A new key (USERSD_TOKEN_LEN hex characters and a NUL) and the hash that
 * is stored for it: the one way keys are made, at login and seeding. */
static void key_mint(char *key, unsigned char *hash)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(key, USERSD_TOKEN_LEN + 1, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    key_hash(key, hash);
}

static bool key_wellformed(const char *key)
{
    if (!key || strlen(key) != USERSD_TOKEN_LEN) return false;
    for (const char *c = key; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return false;
    return true;
}

enum usersd_code usersd_password_check(struct usersd *u, const char *username, const char *password,
                                       struct usersd_user *user, struct usersd_err *err)
{
    char hash[PASSWORD_HASH_MAX];
    struct usersd_user tmp;
    if (!user) user = &tmp;
    if (!username || !password) return err_set(err, USERSD_EAUTH, "invalid username or password");
    enum usersd_code rc = USERSD_ENOTFOUND;
    if (strlen(username) <= USERSD_USERNAME_MAX)
        rc = u->store->ops->user_get_auth(u->store, username, user, hash, err);
    if (rc && rc != USERSD_ENOTFOUND) return rc;
    if (rc == USERSD_ENOTFOUND) {
        password_spend(password); /* as long as a wrong password takes */
        return err_set(err, USERSD_EAUTH, "invalid username or password");
    }
    if (!password_matches(hash, password))
        return err_set(err, USERSD_EAUTH, "invalid username or password");
    if (!user->is_active) return err_set(err, USERSD_EAUTH, "this account is inactive");
    messages_fresh(u, user, 1);
    return USERSD_OK;
}

enum usersd_code usersd_session_login(struct usersd *u, const char *username, const char *password,
                                      const struct usersd_client *client, char *key,
                                      struct usersd_user *user, int64_t *session_id,
                                      struct usersd_err *err)
{
    struct usersd_user tmp;
    if (!user) user = &tmp;
    enum usersd_code rc = usersd_password_check(u, username, password, user, err);
    if (rc) return rc;
    struct store_session_row row = {0};
    key_mint(key, row.hash);
    row.s.user_id = user->id;
    row.s.created = row.s.last_used = usersd_now(u);
    if (client && client->user_agent)
        sessions_clean_agent(client->user_agent, row.s.user_agent, sizeof row.s.user_agent);
    if (client && client->client_ip)
        snprintf(row.s.client_ip, sizeof row.s.client_ip, "%s", client->client_ip);
    rc = u->store->ops->session_insert(u->store, &row, err);
    if (rc) return rc;
    if (session_id) *session_id = row.s.id;
    /* Logging in is automatic: a manual status stays (API.md §12). */
    return usersd_set_status_ex(u, user->id, USERSD_ONLINE, USERSD_STATUS_AUTO, user, err);
}

enum usersd_code usersd_seed_sessions(struct usersd *u, int64_t k,
                                      int (*emit)(const char *key, int64_t user_id, void *arg),
                                      void *arg, struct usersd_err *err)
{
    if (k < 1 || k > USERSD_SEED_TOKENS_MAX)
        return err_field(err, "tokens", "tokens must be 1 to %d", USERSD_SEED_TOKENS_MAX);
    size_t n = (size_t)k;
    /* Every key is kept until the commit: a token is handed out only once
     * its session exists. */
    char *keys = malloc(n * (USERSD_TOKEN_LEN + 1));
    unsigned char *hashes = malloc(n * STORE_TOKEN_HASH_LEN);
    int64_t *ids = malloc(n * sizeof *ids);
    enum usersd_code rc = USERSD_OK;
    if (!keys || !hashes || !ids) {
        rc = err_set(err, USERSD_ENOMEM, "not enough memory for %zu sessions", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        key_mint(keys + i * (USERSD_TOKEN_LEN + 1), hashes + i * STORE_TOKEN_HASH_LEN);
    rc = u->store->ops->session_seed(u->store, hashes, n, usersd_now(u), ids, err);
    for (size_t i = 0; !rc && i < n; i++)
        if (emit && emit(keys + i * (USERSD_TOKEN_LEN + 1), ids[i], arg))
            rc = err_set(err, USERSD_EINTERNAL, "could not hand out token %zu of %zu", i + 1, n);
out:
    if (keys) sodium_memzero(keys, n * (USERSD_TOKEN_LEN + 1));
    free(keys);
    free(hashes);
    free(ids);
    return rc;
}

enum usersd_code usersd_login(struct usersd *u, const char *username, const char *password,
                              char *key, struct usersd_user *user, struct usersd_err *err)
{
    return usersd_session_login(u, username, password, NULL, key, user, NULL, err);
}

static bool expired(const struct usersd *u, int64_t last_used)
{
    return u->cfg.session_ttl_s > 0 &&
           last_used < usersd_now(u) - u->cfg.session_ttl_s * (int64_t)1000000;
}

enum usersd_code usersd_session_resolve(struct usersd *u, const char *key, struct usersd_user *user,
                                        struct usersd_session *session, struct usersd_err *err)
{
    struct usersd_session tmp;
    if (!session) session = &tmp;
    if (!key_wellformed(key)) return err_set(err, USERSD_EAUTH, "invalid token");
    unsigned char hash[STORE_TOKEN_HASH_LEN];
    key_hash(key, hash);
    /* Reused only at the very version it was read at (SQLite; PostgreSQL
     * knows its version only after a read, and always asks): the token lookup was a third of
     * a status GET's own instructions. A revocation is a commit, so it
     * ends the entry; an expiry is a matter of time, so it is checked on
     * every use. */
    uint64_t version;
    bool versioned = u->store->ops->data_version && !u->store->version_after_read &&
                     u->store->ops->data_version(u->store, &version, NULL) == USERSD_OK;
    struct token_cache_entry *e = &u->tokens[hash[0] % TOKEN_CACHE];
    if (versioned && e->used && e->version == version &&
        sodium_memcmp(e->hash, hash, sizeof hash) == 0) {
        if (expired(u, e->session_last_used))
            return err_set(err, USERSD_EAUTH, "this session has expired; log in again");
        *user = e->user;
        messages_fresh(u, user, 1); /* a message may end without a commit */
        memset(session, 0, sizeof *session);
        session->id = e->session_id;
        session->user_id = e->user.id;
        session->created = e->session_created;
        session->last_used = e->session_last_used;
        return USERSD_OK;
    }
    enum usersd_code rc = u->store->ops->token_user(u->store, hash, user, session, err);
    if (rc == USERSD_ENOTFOUND) return err_set(err, USERSD_EAUTH, "invalid token");
    if (rc) return rc;
    if (!user->is_active) return err_set(err, USERSD_EAUTH, "this account is inactive");
    if (expired(u, session->last_used))
        return err_set(err, USERSD_EAUTH, "this session has expired; log in again");
    if (versioned) {
        e->used = true;
        e->version = version;
        memcpy(e->hash, hash, sizeof hash);
        e->user = *user;
        e->session_id = session->id;
        e->session_created = session->created;
        e->session_last_used = session->last_used;
    }
    messages_fresh(u, user, 1);
    return USERSD_OK;
}

enum usersd_code usersd_token_resolve(struct usersd *u, const char *key, struct usersd_user *user,
                                      struct usersd_err *err)
{
    return usersd_session_resolve(u, key, user, NULL, err);
}

enum usersd_code usersd_logout(struct usersd *u, const char *key, struct usersd_err *err)
{
    if (!key_wellformed(key)) return err_set(err, USERSD_EAUTH, "invalid token");
    unsigned char hash[STORE_TOKEN_HASH_LEN];
    key_hash(key, hash);
    struct usersd_user user;
    struct usersd_session session;
    enum usersd_code rc = u->store->ops->token_user(u->store, hash, &user, &session, err);
    if (rc == USERSD_ENOTFOUND) return err_set(err, USERSD_EAUTH, "invalid token");
    if (rc) return rc;
    rc = usersd_session_revoke(u, user.id, session.id, err);
    /* Revoked meanwhile by someone else: the key is gone either way. */
    return rc == USERSD_ENOTFOUND ? err_set(err, USERSD_EAUTH, "invalid token") : rc;
}
