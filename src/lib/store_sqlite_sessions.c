/* store_sqlite_sessions.c — the SQLite driver's sessions: a token's user,
 * inserting, listing, refreshing, ending and expiring sessions (with the
 * presence rule when the last one ends), and minting many for load tests. */
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

/* Column 0 of the last row as an integer (ctx: one int64_t). */
static enum usersd_code dec_int64_last(sqlite3_stmt *st, size_t i, void *ctx,
                                       struct usersd_err *err)
{
    (void)i, (void)err;
    *(int64_t *)ctx = sqlite3_column_int64(st, 0);
    return USERSD_OK;
}

/* Deletes the user's sessions but keep (0: all); *n gets how many. */
enum usersd_code sq_delete_sessions(struct sqlite_store *s, int64_t user_id, int64_t one,
                                    int64_t keep, int64_t unused_since, int64_t *n,
                                    struct usersd_err *err)
{
    enum usersd_code code =
        one ? sq_run(s, S_SESSION_DELETE_ONE,
                     ARGS(V_INT(user_id), V_INT(one),
                          V_INT(unused_since > 0 ? unused_since : INT64_MAX)),
                     err)
            : sq_run(s, S_SESSION_DELETE_ALL, ARGS(V_INT(user_id), V_INT(keep)), err);
    if (!code) *n = sqlite3_changes(s->db);
    return code;
}

/* Ends sessions and applies the presence rule (store.h), in the open
 * transaction, which holds the write lock: no other writer sees the
 * sessions gone but the status not yet decided. */
enum usersd_code sq_end_sessions(struct sqlite_store *s, const struct store_session_end *e,
                                 int64_t *ended, struct usersd_err *err)
{
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE; /* set by sq_user_presence */
    int64_t last_seen = USERSD_NULL_TIME;
    *ended = 0;
    enum usersd_code code =
        sq_user_presence(s, e->user_id, name, sizeof name, &status, &last_seen, err);
    if (!code)
        code = sq_delete_sessions(s, e->user_id, e->session_id, e->keep_id, e->unused_since, ended,
                                  err);
    if (code) return code;
    if (e->session_id && !*ended) return err_set(err, USERSD_ENOTFOUND, "session not found");
    if (*ended && (code = sq_log_entry(s, USERSD_CHANGE_SESSION_END, e->user_id, name, status,
                                       last_seen, e->now, e->session_id, status, err)))
        return code;
    if ((!*ended && !e->force) || status == USERSD_OFFLINE) return USERSD_OK;
    int64_t active = 0;
    if ((code = sq_count_query(
             s, sq_stmt(s, S_SESSION_ACTIVE, ARGS(V_INT(e->user_id), V_INT(e->active_after)), err),
             &active, err)))
        return code;
    if (active) return USERSD_OK;
    if ((code = sq_run(s, S_GO_OFFLINE, ARGS(V_INT(e->user_id), V_INT(e->now)), err))) return code;
    return sqlite3_changes(s->db) ? sq_log_entry(s, USERSD_CHANGE_PRESENCE, e->user_id, name,
                                                 USERSD_OFFLINE, e->now, e->now, 0, status, err)
                                  : USERSD_OK;
}

enum usersd_code sq_session_end(struct store *base, const struct store_session_end *e,
                                int64_t *ended, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    if (!(code = sq_end_sessions(s, e, ended, err))) code = sq_commit(s, err);
    if (code) {
        sq_rollback(s);
        *ended = 0;
    }
    return code;
}

struct expired {
    int64_t id, user_id;
};

static enum usersd_code dec_expired(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    struct expired *x = &((struct expired *)ctx)[i];
    x->id = sqlite3_column_int64(st, 0);
    x->user_id = sqlite3_column_int64(st, 1);
    return USERSD_OK;
}

enum usersd_code sq_session_expire(struct store *base, int64_t before, int64_t now,
                                   int64_t active_after, int limit, int64_t *ended,
                                   struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *ended = 0;
    struct expired *due = malloc((size_t)(limit > 0 ? limit : 1) * sizeof *due);
    if (!due) return err_set(err, USERSD_ENOMEM, NULL);
    enum usersd_code code = sq_begin(s, err);
    if (code) {
        free(due);
        return code;
    }
    size_t n = 0;
    code = sq_rows(s, sq_stmt(s, S_SESSIONS_EXPIRED, ARGS(V_INT(before), V_INT(limit)), err),
                   (size_t)limit, dec_expired, due, &n, err);
    for (size_t i = 0; i < n && !code; i++) {
        struct store_session_end e = {.user_id = due[i].user_id,
                                      .session_id = due[i].id,
                                      .now = now,
                                      .active_after = active_after,
                                      .unused_since = before};
        int64_t one = 0;
        code = sq_end_sessions(s, &e, &one, err);
        if (code == USERSD_ENOTFOUND) code = USERSD_OK; /* its user went meanwhile */
        *ended += one;
    }
    free(due);
    if (!code) code = sq_commit(s, err);
    if (code) {
        sq_rollback(s);
        *ended = 0;
    }
    return code;
}

enum usersd_code sq_session_refresh(struct store *base, const int64_t *ids, size_t n, int64_t now,
                                    bool *alive, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    for (size_t i = 0; i < n && !code; i++) {
        /* RETURNING user_id: every row is read, so the update completes. */
        int64_t user = 0;
        if ((code = sq_rows(s, sq_stmt(s, S_SESSION_REFRESH, ARGS(V_INT(now), V_INT(ids[i])), err),
                            SIZE_MAX, dec_int64_last, &user, NULL, err)))
            break;
        alive[i] = user != 0;
        bool seen;
        if (user) code = sq_run_touch(s, S_TOUCH, user, now, now, &seen, err);
    }
    if (!code) code = sq_commit(s, err);
    if (code) sq_rollback(s);
    return code;
}

static enum usersd_code session_insert(struct sqlite_store *s, const unsigned char *hash,
                                       int64_t user_id, int64_t created, int64_t last_used,
                                       const char *user_agent, const char *client_ip,
                                       struct usersd_err *err)
{
    return sq_run(s, S_SESSION_INSERT,
                  ARGS(V_BLOB(hash, STORE_TOKEN_HASH_LEN), V_INT(user_id), V_INT(created),
                       V_INT(last_used), V_TEXT(user_agent), V_TEXT(client_ip)),
                  err);
}

enum usersd_code sq_session_insert(struct store *base, struct store_session_row *row,
                                   struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code =
        session_insert(s, row->hash, row->s.user_id, row->s.created, row->s.last_used,
                       row->s.user_agent, row->s.client_ip, err);
    if (!code) row->s.id = sqlite3_last_insert_rowid(s->db);
    return code;
}

struct token_row {
    struct usersd_user *user;
    struct usersd_session *session; /* may be NULL */
};

static enum usersd_code dec_token(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    struct token_row *t = ctx;
    sq_row_user(st, t->user);
    if (t->session) {
        memset(t->session, 0, sizeof *t->session);
        t->session->id = sqlite3_column_int64(st, USER_NCOLS);
        t->session->user_id = t->user->id;
        t->session->created = sqlite3_column_int64(st, USER_NCOLS + 1);
        t->session->last_used = sqlite3_column_int64(st, USER_NCOLS + 2);
    }
    return USERSD_OK;
}

enum usersd_code sq_token_user(struct store *base, const unsigned char *hash,
                               struct usersd_user *out, struct usersd_session *session,
                               struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct token_row t = {out, session};
    return sq_one_found(s, sq_stmt(s, S_TOKEN_USER, ARGS(V_BLOB(hash, STORE_TOKEN_HASH_LEN)), err),
                        dec_token, &t, "token", err);
}

/* Grown as rows come. */
struct session_rows {
    struct usersd_sessions *out;
    size_t cap;
};

static enum usersd_code dec_session(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i;
    struct session_rows *r = ctx;
    struct usersd_sessions *out = r->out;
    struct usersd_session *items = sq_grow(out->items, &r->cap, out->count, sizeof *items, 8);
    if (!items) return err_set(err, USERSD_ENOMEM, NULL);
    out->items = items;
    struct usersd_session *x = &out->items[out->count++];
    memset(x, 0, sizeof *x);
    sq_row_session(st, 0, x);
    return USERSD_OK;
}

enum usersd_code sq_session_list(struct store *base, int64_t user_id, struct usersd_sessions *out,
                                 struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct usersd_user who;
    enum usersd_code code = sq_user_get(base, user_id, &who, err);
    if (code) return code;
    sqlite3_stmt *st = sq_stmt(s, S_SESSION_LIST, ARGS(V_INT(user_id)), err);
    if (!st) return USERSD_EDB;
    struct session_rows r = {out, 0};
    if ((code = sq_rows(s, st, SIZE_MAX, dec_session, &r, NULL, err))) usersd_sessions_free(out);
    return code;
}

enum usersd_code sq_session_count(struct store *base, int64_t *n, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_count_query(s, sq_prep(s, S_SESSION_COUNT, err), n, err);
}

enum usersd_code sq_session_seed(struct store *base, const unsigned char *hashes, size_t k,
                                 int64_t now, int64_t *user_ids, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *pick = NULL;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    /* Run once per seeding, so not kept among the prepared statements. */
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM users WHERE is_active ORDER BY random() LIMIT ?",
                           -1, &pick, NULL) != SQLITE_OK) {
        code = sq_db_error(s, err);
        goto out;
    }
    sq_bind_args(pick, ARGS(V_INT(k)));
    size_t n = 0;
    if ((code = sq_rows(s, pick, k, sq_dec_int64, user_ids, &n, err))) goto out;
    if (n < k) {
        code = err_field(err, "tokens", "only %zu users are active: cannot mint %zu tokens", n, k);
        goto out;
    }
    /* One transaction: SQLite inserts ~100k rows a second this way. */
    for (size_t i = 0; i < k && !code; i++)
        code = session_insert(s, hashes + i * STORE_TOKEN_HASH_LEN, user_ids[i], now, now, "", "",
                              err);
    if (!code) code = sq_commit(s, err);
out:
    sqlite3_finalize(pick);
    if (code) sq_rollback(s);
    if (!code && !s->batch) sq_stats_refresh(s); /* sessions may have grown tenfold */
    return code;
}
