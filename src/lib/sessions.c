/* sessions.c — sessions (one login on one device) and what ending them does
 * to presence (API.md §7).
 *
 * People use a phone, a laptop and three tabs at once: logging out on one
 * must not show them offline to everyone while another is in use. So when
 * sessions end (logout, revocation, expiry, a password change), the driver
 * looks at the user's remaining sessions in the same transaction and sets
 * the user offline only when none was used within the away window. An open
 * presence stream keeps its session used (the server refreshes it), so a
 * connected device counts as in use. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXPIRE_BATCH 500 /* sessions ended per transaction by the sweep */
#define EXPIRE_ROUNDS 20 /* transactions per sweep at most */

void usersd_sessions_free(struct usersd_sessions *s)
{
    if (!s) return;
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

int64_t sessions_active_after(const struct usersd *u)
{
    int64_t window = u->cfg.away_after_s > 0 ? u->cfg.away_after_s : 600;
    return usersd_now(u) - window * 1000000;
}

void sessions_clean_agent(const char *in, char *out, size_t size)
{
    static const char bad[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t chars = 0; *s && chars < USERSD_USER_AGENT_MAX; chars++) {
        uint32_t cp;
        size_t n = utf8_next(s, &cp);
        const char *put = (const char *)s;
        size_t len = n;
        if (!n || UTF8_CONTROL(cp)) {
            put = bad;
            len = 3;
            n = n ? n : 1;
        }
        if (o + len + 1 > size) break;
        memcpy(out + o, put, len);
        o += len;
        s += n;
    }
    out[o] = 0;
}

enum usersd_code usersd_session_list(struct usersd *u, int64_t user_id, int64_t current_id,
                                     struct usersd_sessions *out, struct usersd_err *err)
{
    out->items = NULL;
    out->count = 0;
    enum usersd_code rc = u->store->ops->session_list(u->store, user_id, out, err);
    if (rc) return rc;
    for (size_t i = 0; i < out->count; i++)
        out->items[i].current = current_id > 0 && out->items[i].id == current_id;
    return USERSD_OK;
}

/* Ends sessions through the driver, with the presence rule's window. */
static enum usersd_code end(struct usersd *u, struct store_session_end e, int64_t *n,
                            struct usersd_err *err)
{
    int64_t ended = 0;
    e.now = usersd_now(u);
    e.active_after = sessions_active_after(u);
    enum usersd_code rc = u->store->ops->session_end(u->store, &e, &ended, err);
    if (n) *n = rc ? 0 : ended;
    return rc;
}

enum usersd_code usersd_session_revoke(struct usersd *u, int64_t user_id, int64_t session_id,
                                       struct usersd_err *err)
{
    if (session_id <= 0) return err_set(err, USERSD_ENOTFOUND, "session not found");
    return end(u, (struct store_session_end){.user_id = user_id, .session_id = session_id}, NULL,
               err);
}

enum usersd_code usersd_session_revoke_all(struct usersd *u, int64_t user_id, int64_t keep_id,
                                           int64_t *n, struct usersd_err *err)
{
    /* Everything but one kept session is "log out everywhere": the rule
     * runs even when there was nothing to end (a user put online by staff
     * with no session goes offline too). */
    return end(u, (struct store_session_end){.user_id = user_id, .keep_id = keep_id, .force = true},
               n, err);
}

enum usersd_code usersd_session_expire(struct usersd *u, int64_t *n, struct usersd_err *err)
{
    int64_t total = 0;
    enum usersd_code rc = USERSD_OK;
    if (u->cfg.session_ttl_s > 0) {
        int64_t before = usersd_now(u) - u->cfg.session_ttl_s * 1000000;
        for (int round = 0; round < EXPIRE_ROUNDS; round++) {
            int64_t ended = 0;
            rc = u->store->ops->session_expire(u->store, before, usersd_now(u),
                                               sessions_active_after(u), EXPIRE_BATCH, &ended, err);
            total += ended;
            if (rc || ended < EXPIRE_BATCH) break;
        }
    }
    if (n) *n = total;
    return rc;
}

enum usersd_code usersd_session_refresh(struct usersd *u, const int64_t *ids, size_t n, bool *alive,
                                        struct usersd_err *err)
{
    if (!n) return USERSD_OK;
    return u->store->ops->session_refresh(u->store, ids, n, usersd_now(u), alive, err);
}

enum usersd_code usersd_session_count(struct usersd *u, int64_t *n, struct usersd_err *err)
{
    return u->store->ops->session_count(u->store, n, err);
}
