/* store_pg_users.c — the PostgreSQL driver's users: insert, read (by id,
 * for a login), update, delete, the list with its filters and search, the
 * online page, by ids and the counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

enum usersd_code pg_user_insert(struct store *base, struct usersd_user *u, const char *pwhash,
                                struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    pg_p_profile(&p, u);
    pg_p_text(&p, pwhash);
    pg_p_int(&p, u->date_joined);
    return pg_one_user(pg_run(s, P_INSERT, &p, err), u, err);
}

enum usersd_code pg_user_get(struct store *base, int64_t id, struct usersd_user *out,
                             struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->hinted && s->hinted_user.id == id) { /* read by the token check just before */
        s->hinted = false;
        if (!s->hinted_found) return err_set(err, USERSD_ENOTFOUND, "user not found");
        *out = s->hinted_user;
        return USERSD_OK;
    }
    struct params p = {0};
    pg_p_int(&p, id);
    return pg_one_user(pg_run(s, P_GET, &p, err), out, err);
}

enum usersd_code pg_user_get_auth(struct store *base, const char *username, struct usersd_user *out,
                                  char *pwhash, struct usersd_err *err)
{
    struct params p = {0};
    pg_p_text(&p, username);
    PGresult *r = pg_run((struct pg_store *)base, P_GET_AUTH, &p, err);
    if (r && PQntuples(r) > 0) pg_col_text(pwhash, PASSWORD_HASH_MAX, r, 0, USER_NCOLS);
    return pg_one_user(r, out, err);
}

enum usersd_code pg_user_update(struct store *base, const struct usersd_user *u, const char *pwhash,
                                const struct store_session_end *end, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = pg_begin(s, err);
    if (code) return code;
    struct params p = {0};
    pg_p_profile(&p, u);
    pg_p_int(&p, u->id);
    PGresult *r = pg_run(s, P_UPDATE, &p, err);
    if (!r) goto fail;
    bool found = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    if (!found) {
        pg_rollback(s);
        return err_set(err, USERSD_ENOTFOUND, "user not found");
    }
    if (pwhash) {
        struct params q = {0};
        pg_p_text(&q, pwhash);
        pg_p_int(&q, u->id);
        if (pg_run0(s, P_UPDATE_PW, &q, err)) goto fail;
    }
    /* A new password ends the other sessions; a deactivated user's sessions
     * all end, and so does its presence. */
    if (pwhash || !u->is_active) {
        struct store_session_end e = *end;
        e.user_id = u->id;
        e.session_id = 0;
        if (!u->is_active) e.keep_id = 0, e.force = true;
        int64_t n;
        if (pg_end_sessions(s, &e, &n, err)) goto fail;
    }
    return pg_commit(s, err);
fail:
    pg_rollback(s);
    return pg_last_fail;
}

/* The user's name and presence, its row locked; ENOTFOUND. */
enum usersd_code pg_user_presence(struct pg_store *s, int64_t id, char *username, size_t size,
                                  int *status, int64_t *last_seen, struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, id);
    PGresult *r = pg_run(s, P_USER_PRESENCE, &p, err);
    if (!r) return pg_last_fail;
    enum usersd_code code = USERSD_OK;
    if (PQntuples(r) > 0) {
        pg_col_text(username, size, r, 0, 0);
        *status = (int)pg_col_int(r, 0, 1);
        *last_seen = pg_col_time(r, 0, 2);
    } else {
        code = err_set(err, USERSD_ENOTFOUND, "user not found");
    }
    PQclear(r);
    return code;
}

/* Deletes the user's session one, or all but keep; *n gets how many. */
enum usersd_code pg_delete_sessions(struct pg_store *s, int64_t user_id, int64_t one, int64_t keep,
                                    int64_t unused_since, int64_t *n, struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, user_id);
    pg_p_int(&p, one ? one : keep);
    if (one) pg_p_int(&p, unused_since > 0 ? unused_since : INT64_MAX);
    PGresult *r = pg_run(s, one ? P_SESSION_DELETE_ONE : P_SESSION_DELETE_ALL, &p, err);
    if (!r) return pg_last_fail;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return USERSD_OK;
}

enum usersd_code pg_user_delete(struct store *base, int64_t id, int64_t now, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = pg_begin(s, err);
    if (code) return code;
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE;
    int64_t last_seen = 0, n = 0;
    if ((code = pg_user_presence(s, id, name, sizeof name, &status, &last_seen, err))) goto out;
    if (status != USERSD_OFFLINE &&
        (code = pg_log_entry(s, USERSD_CHANGE_PRESENCE, id, name, USERSD_OFFLINE, last_seen, now, 0,
                             status, err)))
        goto out;
    if ((code = pg_delete_sessions(s, id, 0, 0, 0, &n, err))) goto out;
    if (n && (code = pg_log_entry(s, USERSD_CHANGE_SESSION_END, id, name, USERSD_OFFLINE, last_seen,
                                  now, 0, USERSD_OFFLINE, err)))
        goto out;
    struct params p = {0};
    pg_p_int(&p, id);
    /* Its history goes with it (the log keeps the last hour for streams). */
    if ((code = pg_run0(s, P_HISTORY_DELETE_USER, &p, err)) ||
        (code = pg_run0(s, P_DELETE, &p, err)))
        goto out;
    if ((status != USERSD_OFFLINE || n) && (code = pg_wake_listeners(s, err))) goto out;
    return pg_commit(s, err);
out:
    pg_rollback(s);
    return code;
}

enum usersd_code pg_user_count(struct store *base, int64_t *out, struct usersd_err *err)
{
    return pg_one_int(pg_run((struct pg_store *)base, P_COUNT, NULL, err), out);
}

/* Copies up to cap user rows of r into a new array. */
static enum usersd_code collect(PGresult *r, size_t cap, struct usersd_page *out,
                                struct usersd_err *err)
{
    if (!r) return pg_last_fail;
    void *users;
    enum usersd_code code =
        pg_rows_new(r, cap, sizeof *out->users, pg_dec_user, NULL, &users, &out->count, err);
    out->users = users;
    return code;
}

/* A list query's SQL varies with its filters; each text is prepared once. */
static PGresult *run_list(struct pg_store *s, const char *sql, const struct params *p,
                          struct usersd_err *err)
{
    int slot = -1;
    for (int i = 0; i < 32 && slot < 0; i++)
        if (s->list_sql[i] && strcmp(s->list_sql[i], sql) == 0) slot = i;
    if (slot < 0) {
        for (int i = 0; i < 32 && slot < 0; i++)
            if (!s->list_sql[i]) slot = i;
        if (slot < 0) /* full: run unprepared rather than grow without end */
            return pg_run_sql(s, NULL, sql, NULL, p, err);
        s->list_sql[slot] = strdup(sql);
        if (!s->list_sql[slot]) {
            err_set(err, USERSD_ENOMEM, NULL);
            return NULL;
        }
        s->list_prepared[slot] = false;
    }
    char name[16];
    snprintf(name, sizeof name, "list%d", slot);
    return pg_run_sql(s, name, s->list_sql[slot], &s->list_prepared[slot], p, err);
}

/* Ordered by last_seen, the list joins presence (users has no index on
 * it) and filters its status there, so one index gives the order. */
enum usersd_code pg_user_list(struct store *base, const struct usersd_list_query *q,
                              struct usersd_page *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    bool by_seen = q->order == USERSD_ORDER_LAST_SEEN;
    char where[512] = "", sql[1024];
    size_t w = 0;
    struct params p = {0};
    bool search = q->search && *q->search;
    char *pattern = search ? store_like_pattern(q->search) : NULL;
    if (search && !pattern) return err_set(err, USERSD_ENOMEM, NULL);
#define ADD(...)                                                                                   \
    do {                                                                                           \
        w += (size_t)snprintf(where + w, sizeof where - w, "%s", w ? " AND " : " WHERE ");         \
        w += (size_t)snprintf(where + w, sizeof where - w, __VA_ARGS__);                           \
    } while (0)
    if (search) {
        pg_p_text(&p, pattern);
        ADD("(username ILIKE $1 OR email ILIKE $1 OR first_name ILIKE $1 OR last_name ILIKE $1)");
    }
    if (q->online_status >= 0) {
        pg_p_int(&p, q->online_status);
        ADD("%s.online_status = $%d", by_seen ? "p" : "users", p.n);
    }
    if (q->is_active >= 0) {
        pg_p_bool(&p, q->is_active);
        ADD("is_active = $%d", p.n);
    }
    if (q->is_staff >= 0) {
        pg_p_bool(&p, q->is_staff);
        ADD("is_staff = $%d", p.n);
    }
#undef ADD
    static const char *const keys[] = {"users.id", "lower(username)", "date_joined", "p.last_seen"};
    const char *dir = q->descending ? "DESC" : "ASC";
    const char *from = by_seen ? "users JOIN presence p ON p.user_id = users.id" : "users";
    char order[128];
    if (q->order == USERSD_ORDER_ID)
        snprintf(order, sizeof order, "users.id %s", dir);
    else
        snprintf(order, sizeof order, "%s %s NULLS LAST, users.id ASC", keys[q->order], dir);

    enum usersd_code code = USERSD_OK;
    if (out->total_count < 0) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s", from, where);
        code = pg_one_int(run_list(s, sql, &p, err), &out->total_count);
    }
    if (!code) {
        int n = p.n;
        pg_p_int(&p, q->per_page);
        pg_p_int(&p, (int64_t)(q->page - 1) * q->per_page);
        snprintf(sql, sizeof sql,
                 "SELECT " USERS_COLS " FROM %s%s ORDER BY %s LIMIT $%d OFFSET $%d", from, where,
                 order, n + 1, n + 2);
        code = collect(run_list(s, sql, &p, err), (size_t)q->per_page, out, err);
    }
    free(pattern);
    return code;
}

enum usersd_code pg_online_page(struct store *base, int page, int per_page, struct usersd_page *out,
                                struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    pg_p_int(&p, per_page);
    pg_p_int(&p, (int64_t)(page - 1) * per_page);
    PGresult *r = pg_run(s, P_ONLINE, &p, err);
    if (!r) return pg_last_fail;
    size_t n = (size_t)PQntuples(r);
    out->total_count = n ? pg_col_int(r, 0, 0) : 0;
    out->users = calloc(n ? n : 1, sizeof *out->users);
    out->count = 0;
    if (!out->users) {
        PQclear(r);
        return err_set(err, USERSD_ENOMEM, NULL);
    }
    for (size_t i = 0; i < n && out->count < (size_t)per_page; i++)
        if (!PQgetisnull(r, (int)i, 1)) pg_row_user_at(r, (int)i, 1, &out->users[out->count++]);
    PQclear(r);
    return USERSD_OK;
}

/* One statement for all of them (the bulk status read asks up to 100). */
enum usersd_code pg_users_by_ids(struct store *base, const int64_t *ids, size_t n,
                                 struct usersd_user *out, size_t *found, struct usersd_err *err)
{
    *found = 0;
    if (!n) return USERSD_OK;
    char *list = pg_id_array(ids, n);
    if (!list) return err_set(err, USERSD_ENOMEM, NULL);
    struct params p = {0};
    pg_p_text(&p, list);
    PGresult *r = pg_run((struct pg_store *)base, P_BY_IDS, &p, err);
    free(list);
    return pg_rows_into(r, n, out, sizeof *out, pg_dec_user, NULL, found);
}

enum usersd_code pg_stats(struct store *base, struct usersd_stats *out, struct usersd_err *err)
{
    PGresult *r = pg_run((struct pg_store *)base, P_STATS, NULL, err);
    if (!r) return pg_last_fail;
    out->total_users = pg_col_int(r, 0, 0);
    out->active_users = pg_col_int(r, 0, 1);
    out->staff_users = pg_col_int(r, 0, 2);
    out->online_users = pg_col_int(r, 0, 3);
    out->away_users = pg_col_int(r, 0, 4);
    PQclear(r);
    return USERSD_OK;
}
