/* store_pg_sessions.c — the PostgreSQL driver's tokens and sessions:
 * their insert, the token check, ending, expiry, refresh and lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

/* Ends sessions and applies the presence rule (store.h) in the open
 * transaction: the user's row lock first, so concurrent ends of one user's
 * sessions take turns and the last one sees the others gone. */
enum usersd_code pg_end_sessions(struct pg_store *s, const struct store_session_end *e,
                                 int64_t *ended, struct usersd_err *err)
{
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE;
    int64_t last_seen = 0;
    *ended = 0;
    enum usersd_code code =
        pg_user_presence(s, e->user_id, name, sizeof name, &status, &last_seen, err);
    if (!code)
        code = pg_delete_sessions(s, e->user_id, e->session_id, e->keep_id, e->unused_since, ended,
                                  err);
    if (code) return code;
    if (e->session_id && !*ended) return err_set(err, USERSD_ENOTFOUND, "session not found");
    if (*ended && ((code = pg_log_entry(s, USERSD_CHANGE_SESSION_END, e->user_id, name, status,
                                        last_seen, e->now, e->session_id, status, err)) ||
                   (code = pg_wake_listeners(s, err))))
        return code;
    if ((!*ended && !e->force) || status == USERSD_OFFLINE) return USERSD_OK;
    struct params p = {0};
    pg_p_int(&p, e->user_id);
    pg_p_int(&p, e->active_after);
    PGresult *r = pg_run(s, P_SESSION_ACTIVE, &p, err);
    if (!r) return pg_last_fail;
    bool active = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (active) return USERSD_OK;
    p = (struct params){0};
    pg_p_int(&p, e->user_id);
    pg_p_int(&p, e->now);
    if (!(r = pg_run(s, P_GO_OFFLINE, &p, err))) return pg_last_fail;
    bool changed = PQntuples(r) > 0;
    PQclear(r);
    if (!changed) return USERSD_OK;
    if ((code = pg_log_entry(s, USERSD_CHANGE_PRESENCE, e->user_id, name, USERSD_OFFLINE, e->now,
                             e->now, 0, status, err)))
        return code;
    return pg_wake_listeners(s, err);
}

enum usersd_code pg_session_end(struct store *base, const struct store_session_end *e,
                                int64_t *ended, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = pg_begin(s, err);
    if (code) return code;
    if (!(code = pg_end_sessions(s, e, ended, err)) && !(code = pg_commit(s, err)))
        return USERSD_OK;
    pg_rollback(s);
    *ended = 0;
    return code;
}

enum usersd_code pg_session_expire(struct store *base, int64_t before, int64_t now,
                                   int64_t active_after, int limit, int64_t *ended,
                                   struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *ended = 0;
    struct params p = {0};
    pg_p_int(&p, before);
    pg_p_int(&p, limit);
    PGresult *due = pg_run(s, P_SESSIONS_EXPIRED, &p, err);
    if (!due) return pg_last_fail;
    enum usersd_code code = PQntuples(due) ? pg_begin(s, err) : USERSD_OK;
    bool open_tx = PQntuples(due) && !code;
    for (int i = 0; i < PQntuples(due) && !code; i++) {
        /* Only if still unused: activity since the read keeps it. */
        struct store_session_end e = {.user_id = pg_col_int(due, i, 1),
                                      .session_id = pg_col_int(due, i, 0),
                                      .now = now,
                                      .active_after = active_after,
                                      .unused_since = before};
        int64_t one = 0;
        code = pg_end_sessions(s, &e, &one, err);
        if (code == USERSD_ENOTFOUND) { /* used again, or another process's sweep took it */
            code = USERSD_OK;
            continue;
        }
        *ended += one;
    }
    PQclear(due);
    if (open_tx) {
        if (!code) code = pg_commit(s, err);
        if (code) pg_rollback(s);
    }
    if (code) *ended = 0;
    return code;
}

enum usersd_code pg_session_refresh(struct store *base, const int64_t *ids, size_t n, int64_t now,
                                    bool *alive, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!n) return USERSD_OK;
    char *list = pg_id_array(ids, n);
    if (!list) return err_set(err, USERSD_ENOMEM, NULL);
    struct params p = {0};
    pg_p_int(&p, now);
    pg_p_text(&p, list);
    PGresult *r = pg_run(s, P_SESSION_REFRESH, &p, err);
    free(list);
    if (!r) return pg_last_fail;
    for (size_t i = 0; i < n; i++)
        alive[i] = false;
    for (int k = 0; k < PQntuples(r); k++) {
        int64_t id = pg_col_int(r, k, 0);
        for (size_t i = 0; i < n; i++)
            if (ids[i] == id) alive[i] = true;
    }
    PQclear(r);
    return USERSD_OK;
}

enum usersd_code pg_session_insert(struct store *base, struct store_session_row *row,
                                   struct usersd_err *err)
{
    struct params p = {0};
    pg_p_bytea(&p, row->hash, STORE_TOKEN_HASH_LEN);
    pg_p_int(&p, row->s.user_id);
    pg_p_int(&p, row->s.created);
    pg_p_int(&p, row->s.last_used);
    pg_p_text(&p, row->s.user_agent);
    pg_p_text(&p, row->s.client_ip);
    return pg_one_int(pg_run((struct pg_store *)base, P_SESSION_INSERT, &p, err), &row->s.id);
}

enum usersd_code pg_token_user(struct store *base, const unsigned char *hash,
                               struct usersd_user *out, struct usersd_session *session,
                               struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    int64_t hint = s->hint_id;
    s->hint_id = 0;
    struct params p = {0};
    pg_p_bytea(&p, hash, STORE_TOKEN_HASH_LEN);
    if (hint > 0) pg_p_int(&p, hint);
    PGresult *r = pg_run(s, hint > 0 ? P_TOKEN_USER_HINT : P_TOKEN_USER, &p, err);
    if (r && PQntuples(r) > 0 && hint > 0) {
        s->hinted = true;
        s->hinted_found = !PQgetisnull(r, 0, USER_NCOLS + 3);
        pg_row_user_at(r, 0, USER_NCOLS + 3, &s->hinted_user);
        s->hinted_user.id = hint;
    }
    if (r && PQntuples(r) > 0) {
        /* FNV-1a of "xmin:xmax:xip,...": the same text, the same
         * committed transactions visible, the same data. */
        uint64_t h = 14695981039346656037ULL;
        for (const char *c = PQgetvalue(r, 0, PQnfields(r) - 1); *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        s->snap = h;
        s->snap_fresh = true;
    }
    if (r && PQntuples(r) > 0 && session) {
        memset(session, 0, sizeof *session);
        session->id = pg_col_int(r, 0, USER_NCOLS);
        session->user_id = pg_col_int(r, 0, 0);
        session->created = pg_col_int(r, 0, USER_NCOLS + 1);
        session->last_used = pg_col_int(r, 0, USER_NCOLS + 2);
    }
    enum usersd_code code = pg_one_user(r, out, err);
    return code == USERSD_ENOTFOUND ? err_set(err, code, "token not found") : code;
}

enum usersd_code pg_session_list(struct store *base, int64_t user_id, struct usersd_sessions *out,
                                 struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct usersd_user who;
    enum usersd_code code = pg_user_get(base, user_id, &who, err);
    if (code) return code;
    struct params p = {0};
    pg_p_int(&p, user_id);
    PGresult *r = pg_run(s, P_SESSION_LIST, &p, err);
    if (!r) return pg_last_fail;
    void *items;
    code = pg_rows_new(r, SIZE_MAX, sizeof *out->items, pg_dec_session, NULL, &items, &out->count,
                       err);
    out->items = items;
    return code;
}

enum usersd_code pg_session_count(struct store *base, int64_t *n, struct usersd_err *err)
{
    return pg_one_int(pg_run((struct pg_store *)base, P_SESSION_COUNT, NULL, err), n);
}
