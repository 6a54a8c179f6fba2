/* store_sqlite_users.c — the SQLite driver's users: insert, read (by id,
 * for a login), update, delete, the list with its filters and search, the
 * online page and the counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

static enum usersd_code dec_user(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    sq_row_user(st, &((struct usersd_user *)ctx)[i]);
    return USERSD_OK;
}

enum usersd_code sq_user_insert(struct store *base, struct usersd_user *u, const char *pwhash,
                                struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    sqlite3_stmt *st = sq_stmt(s, S_INSERT,
                               ARGS(V_TEXT(u->username), V_TEXT(u->email), V_TEXT(u->first_name),
                                    V_TEXT(u->last_name), V_TEXT(pwhash), V_INT(u->is_active),
                                    V_INT(u->is_staff), V_INT(u->date_joined)),
                               err);
    if (!st) {
        sq_rollback(s);
        return USERSD_EDB;
    }
    /* RETURNING id: a row, then the end (sq_rows() would map its error with
     * sq_db_error, not sq_write_error). */
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        u->id = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sq_done(st);
    if (rc != SQLITE_DONE) {
        code = sq_write_error(s, err);
        sq_rollback(s);
        return code;
    }
    /* A new user is offline, never seen, with no message, nothing manual,
     * no do not disturb. */
    u->online_status = USERSD_OFFLINE;
    u->last_seen = USERSD_NULL_TIME;
    u->status_text[0] = 0;
    u->status_expires = USERSD_NULL_TIME;
    u->status_manual = false;
    u->dnd = false;
    u->dnd_until = USERSD_NULL_TIME;
    if ((code = sq_presence_insert(s, u, err)) || (code = sq_commit(s, err))) sq_rollback(s);
    return code;
}

/* The presence row of u (id, online_status, last_seen), in the open
 * transaction. */
enum usersd_code sq_presence_insert(struct sqlite_store *s, const struct usersd_user *u,
                                    struct usersd_err *err)
{
    return sq_run(
        s, S_PRESENCE_INSERT,
        ARGS(V_INT(u->id), V_INT(u->online_status), V_TIME(u->last_seen), V_INT(u->status_manual)),
        err);
}

enum usersd_code sq_user_get(struct store *base, int64_t id, struct usersd_user *out,
                             struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_one_found(s, sq_stmt(s, S_GET, ARGS(V_INT(id)), err), dec_user, out, "user", err);
}

struct auth_row {
    struct usersd_user *user;
    char *pwhash;
};

static enum usersd_code dec_auth(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    struct auth_row *a = ctx;
    sq_row_user(st, a->user);
    sq_copy_text(a->pwhash, PASSWORD_HASH_MAX, st, USER_NCOLS);
    return USERSD_OK;
}

enum usersd_code sq_user_get_auth(struct store *base, const char *username, struct usersd_user *out,
                                  char *pwhash, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct auth_row a = {out, pwhash};
    return sq_one_found(s, sq_stmt(s, S_GET_AUTH, ARGS(V_TEXT(username)), err), dec_auth, &a,
                        "user", err);
}

enum usersd_code sq_user_update(struct store *base, const struct usersd_user *u, const char *pwhash,
                                const struct store_session_end *end, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    if ((code = sq_run_unique(s, S_UPDATE,
                              ARGS(V_TEXT(u->username), V_TEXT(u->email), V_TEXT(u->first_name),
                                   V_TEXT(u->last_name), V_INT(u->is_active), V_INT(u->is_staff),
                                   V_INT(u->id)),
                              err)))
        goto out;
    if (sqlite3_changes(s->db) == 0) {
        code = err_set(err, USERSD_ENOTFOUND, "user not found");
        goto out;
    }
    if (pwhash && (code = sq_run(s, S_UPDATE_PW, ARGS(V_TEXT(pwhash), V_INT(u->id)), err)))
        goto out;
    /* A new password ends the other sessions; a deactivated user's sessions
     * all end, and so does its presence. */
    if (pwhash || !u->is_active) {
        struct store_session_end e = *end;
        e.user_id = u->id;
        e.session_id = 0;
        if (!u->is_active) e.keep_id = 0, e.force = true;
        int64_t n;
        if ((code = sq_end_sessions(s, &e, &n, err))) goto out;
    }
    code = sq_commit(s, err);
out:
    if (code) sq_rollback(s);
    return code;
}

enum usersd_code sq_dec_presence(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    struct presence_row *p = ctx;
    if (p->username) sq_copy_text(p->username, p->size, st, 0);
    if (p->status) *p->status = sqlite3_column_int(st, 1);
    if (p->last_seen) *p->last_seen = sq_col_time(st, 2);
    if (p->head) *p->head = sq_col_time(st, 3);
    return USERSD_OK;
}

/* The user's name and presence, in the open transaction; ENOTFOUND. */
enum usersd_code sq_user_presence(struct sqlite_store *s, int64_t id, char *username, size_t size,
                                  int *status, int64_t *last_seen, struct usersd_err *err)
{
    struct presence_row p = {username, size, status, last_seen, NULL};
    return sq_one_found(s, sq_stmt(s, S_USER_PRESENCE, ARGS(V_INT(id)), err), sq_dec_presence, &p,
                        "user", err);
}

enum usersd_code sq_user_delete(struct store *base, int64_t id, int64_t now, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE; /* set by sq_user_presence */
    int64_t last_seen = 0, n = 0;
    if ((code = sq_user_presence(s, id, name, sizeof name, &status, &last_seen, err))) goto out;
    /* A user not offline is logged going offline, so streams do not show
     * it online forever; its sessions end (and their streams close). */
    if (status != USERSD_OFFLINE &&
        (code = sq_log_entry(s, USERSD_CHANGE_PRESENCE, id, name, USERSD_OFFLINE, last_seen, now, 0,
                             status, err)))
        goto out;
    if ((code = sq_delete_sessions(s, id, 0, 0, 0, &n, err))) goto out;
    if (n && (code = sq_log_entry(s, USERSD_CHANGE_SESSION_END, id, name, USERSD_OFFLINE, last_seen,
                                  now, 0, USERSD_OFFLINE, err)))
        goto out;
    /* Its history goes with it (the log keeps the last hour for streams),
     * then its presence (whose history_head leads the way), then itself. */
    static const enum stmt_id gone[] = {S_HISTORY_DELETE_USER, S_PRESENCE_DELETE, S_DELETE};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0] && !code; i++)
        code = sq_run(s, gone[i], ARGS(V_INT(id)), err);
    if (!code) code = sq_commit(s, err);
out:
    if (code) sq_rollback(s);
    return code;
}

enum usersd_code sq_user_count(struct store *base, int64_t *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_count_query(s, sq_prep(s, S_COUNT, err), out, err);
}

static sqlite3_stmt *list_stmt(struct sqlite_store *s, const char *sql, struct usersd_err *err)
{
    for (int i = 0; i < LIST_CACHE; i++)
        if (s->list_cache[i].sql && strcmp(s->list_cache[i].sql, sql) == 0)
            return s->list_cache[i].stmt;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sq_db_error(s, err);
        return NULL;
    }
    char *copy = strdup(sql);
    if (!copy) {
        sqlite3_finalize(st);
        err_set(err, USERSD_ENOMEM, NULL);
        return NULL;
    }
    unsigned slot = s->list_next++ % LIST_CACHE;
    sqlite3_finalize(s->list_cache[slot].stmt);
    free(s->list_cache[slot].sql);
    s->list_cache[slot].sql = copy;
    s->list_cache[slot].stmt = st;
    return st;
}

/* Reads every user row of st into a new array. */
static enum usersd_code collect(struct sqlite_store *s, sqlite3_stmt *st, size_t cap,
                                struct usersd_page *out, struct usersd_err *err)
{
    out->users = malloc((cap ? cap : 1) * sizeof *out->users); /* rows fill every field */
    out->count = 0;
    if (!out->users) return err_set(err, USERSD_ENOMEM, NULL);
    enum usersd_code code = sq_rows(s, st, cap, dec_user, out->users, &out->count, err);
    if (code) {
        free(out->users);
        out->users = NULL;
        out->count = 0;
    }
    return code;
}

/* Escapes LIKE's wildcards so a search is a plain substring. */

/* The search as one FTS5 phrase: in double quotes, quotes doubled, so every
 * character is literal and the trigrams must follow one another (a
 * substring). */
static char *fts_phrase(const char *search)
{
    size_t n = strlen(search);
    char *p = malloc(2 * n + 3), *o = p;
    if (!p) return NULL;
    *o++ = '"';
    for (const char *c = search; *c; c++) {
        if (*c == '"') *o++ = '"';
        *o++ = *c;
    }
    *o++ = '"';
    *o = 0;
    return p;
}

/* A list's count: count_sql with its n values a. */
static enum usersd_code count_of(struct sqlite_store *s, const char *count_sql,
                                 const struct sq_arg *a, int n, int64_t *out,
                                 struct usersd_err *err)
{
    sqlite3_stmt *st = list_stmt(s, count_sql, err);
    if (!st) return USERSD_EDB;
    sq_bind_args(st, a, n);
    return sq_count_query(s, st, out, err);
}

/* The matches of a search (the ids' SQL sql, its count's count_sql, their
 * values a) at the database's version now: kept, or read and kept
 * (sq_matches). The count is read first, the ids only when they are at
 * most MATCH_MAX. */
static enum usersd_code matches_find(struct sqlite_store *s, const char *sql, const char *count_sql,
                                     const struct sq_arg *a, int n, struct sq_matches **out,
                                     struct usersd_err *err)
{
    *out = NULL;
    uint64_t version;
    enum usersd_code code = s->base.ops->data_version(&s->base, &version, err);
    if (code) return code;
    /* The key: the SQL and each value after it (the search is the only text). */
    size_t len = strlen(sql) + 1 + 24 * (size_t)n; /* a separator and up to 20 digits each */
    for (int i = 0; i < n; i++)
        if (a[i].kind == SQ_TEXT) len += strlen(a[i].p);
    char *key = malloc(len);
    if (!key) return err_set(err, USERSD_ENOMEM, NULL);
    size_t k = (size_t)snprintf(key, len, "%s", sql);
    for (int i = 0; i < n; i++)
        k += (size_t)(a[i].kind == SQ_TEXT
                          ? snprintf(key + k, len - k, "\x1f%s", (char *)a[i].p)
                          : snprintf(key + k, len - k, "\x1f%lld", (long long)a[i].i));
    for (int i = 0; i < MATCH_CACHE; i++) {
        struct sq_matches *m = &s->matches[i];
        if (m->key && m->version == version && strcmp(m->key, key) == 0) {
            free(key);
            *out = m;
            return USERSD_OK;
        }
    }
    struct sq_matches got = {.key = key, .version = version};
    code = count_of(s, count_sql, a, n, &got.count, err);
    if (!code && got.count <= MATCH_MAX) {
        sqlite3_stmt *st;
        size_t rows = 0;
        if (!(got.ids = malloc(((size_t)got.count + 1) * sizeof *got.ids)))
            code = err_set(err, USERSD_ENOMEM, NULL);
        else if (!(st = list_stmt(s, sql, err)))
            code = USERSD_EDB;
        else {
            sq_bind_args(st, a, n);
            code = sq_rows(s, st, (size_t)got.count, sq_dec_int64, got.ids, &rows, err);
            got.count = (int64_t)rows; /* the same snapshot: the same rows */
        }
    }
    if (code) {
        free(got.key);
        free(got.ids);
        return code;
    }
    struct sq_matches *m = &s->matches[s->matches_next++ % MATCH_CACHE];
    free(m->key);
    free(m->ids);
    *m = got;
    *out = m;
    return USERSD_OK;
}

/* A page of kept matches: a lookup by id for each of its users. */
static enum usersd_code page_of_matches(struct sqlite_store *s, const struct sq_matches *m,
                                        const struct usersd_list_query *q, struct usersd_page *out,
                                        struct usersd_err *err)
{
    out->users = malloc((size_t)q->per_page * sizeof *out->users);
    out->count = 0;
    if (!out->users) return err_set(err, USERSD_ENOMEM, NULL);
    int64_t first = (int64_t)(q->page - 1) * q->per_page;
    enum usersd_code code = USERSD_OK;
    for (int64_t i = first; i < m->count && i < first + q->per_page && !code; i++)
        if (!(code = sq_user_get(&s->base, m->ids[i], &out->users[out->count], err))) out->count++;
    if (code) {
        free(out->users);
        out->users = NULL;
        out->count = 0;
    }
    return code;
}

enum usersd_code sq_user_list(struct store *base, const struct usersd_list_query *q,
                              struct usersd_page *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    char where[512] = "", sql[1024];
    size_t w = 0;
    bool search = q->search && *q->search;
#define ADD(cond)                                                                                  \
    w += (size_t)snprintf(where + w, sizeof where - w, "%s%s", w ? " AND " : " WHERE ", cond)
    /* The search comes first so it owns ?1; each plain ? after it takes the
     * next number, in the order the filters are bound below. */
    /* 3 characters or more: the trigram index (migration 004); shorter:
     * LIKE, as the trigram index cannot answer it. */
    bool fts = search && utf8_len(q->search) >= 3;
    if (fts)
        ADD("u.id IN (SELECT rowid FROM users_search WHERE users_search MATCH ?1)");
    else if (search)
        ADD("(u.username LIKE ?1 ESCAPE '\\' OR u.email LIKE ?1 ESCAPE '\\' OR u.first_name LIKE "
            "?1 "
            "ESCAPE '\\' OR u.last_name LIKE ?1 ESCAPE '\\')");
    if (q->online_status >= 0) ADD("p.online_status = ?");
    if (q->is_active >= 0) ADD("u.is_active = ?");
    if (q->is_staff >= 0) ADD("u.is_staff = ?");
#undef ADD
    static const char *const keys[] = {"u.id", "u.username", "u.date_joined", "p.last_seen"};
    const char *dir = q->descending ? "DESC" : "ASC";
    char order[128];
    if (q->order == USERSD_ORDER_ID)
        snprintf(order, sizeof order, "u.id %s", dir);
    else
        snprintf(order, sizeof order, "%s %s NULLS LAST, u.id ASC", keys[q->order], dir);

    char *pattern = !search ? NULL : fts ? fts_phrase(q->search) : store_like_pattern(q->search);
    if (search && !pattern) return err_set(err, USERSD_ENOMEM, NULL);
    /* In the order the filters went into where, then the page. */
    struct sq_arg a[6];
    int n = 0;
    if (search) a[n++] = V_TEXT(pattern);
    if (q->online_status >= 0) a[n++] = V_INT(q->online_status);
    if (q->is_active >= 0) a[n++] = V_INT(q->is_active);
    if (q->is_staff >= 0) a[n++] = V_INT(q->is_staff);
    int filters = n;
    char count_sql[640];
    snprintf(count_sql, sizeof count_sql, "SELECT count(*) FROM " USER_FROM "%s", where);

    /* A search costs in proportion to its matches, and a dashboard pages
     * through the same one: inside a read scope its matches are kept. */
    enum usersd_code code = USERSD_OK;
    struct sq_matches *m = NULL;
    if (search && s->scope) {
        snprintf(sql, sizeof sql, "SELECT u.id FROM " USER_FROM "%s ORDER BY %s", where, order);
        code = matches_find(s, sql, count_sql, a, filters, &m, err);
        if (!code && m && out->total_count < 0) out->total_count = m->count;
        if (!code && m && m->ids) {
            free(pattern);
            return page_of_matches(s, m, q, out, err);
        }
    }
    if (!code && out->total_count < 0)
        code = count_of(s, count_sql, a, filters, &out->total_count, err);
    if (!code) {
        snprintf(sql, sizeof sql,
                 "SELECT " USER_COLS " FROM " USER_FROM "%s ORDER BY %s LIMIT ? OFFSET ?", where,
                 order);
        sqlite3_stmt *st = list_stmt(s, sql, err);
        a[n++] = V_INT(q->per_page);
        a[n++] = V_INT((int64_t)(q->page - 1) * q->per_page);
        if (st) sq_bind_args(st, a, n);
        code = st ? collect(s, st, (size_t)q->per_page, out, err) : USERSD_EDB;
    }
    free(pattern);
    return code;
}

enum usersd_code sq_online_page(struct store *base, int page, int per_page, struct usersd_page *out,
                                struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code =
        sq_count_query(s, sq_prep(s, S_ONLINE_COUNT, err), &out->total_count, err);
    if (code) return code;
    sqlite3_stmt *st =
        sq_stmt(s, S_ONLINE, ARGS(V_INT(per_page), V_INT((int64_t)(page - 1) * per_page)), err);
    if (!st) return USERSD_EDB;
    return collect(s, st, (size_t)per_page, out, err);
}

enum usersd_code sq_users_by_ids(struct store *base, const int64_t *ids, size_t n,
                                 struct usersd_user *out, size_t *found, struct usersd_err *err)
{
    *found = 0;
    for (size_t i = 0; i < n; i++) {
        enum usersd_code code = sq_user_get(base, ids[i], &out[*found], err);
        if (code == USERSD_OK)
            (*found)++;
        else if (code != USERSD_ENOTFOUND)
            return code;
    }
    return USERSD_OK;
}

static enum usersd_code dec_stats(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    struct usersd_stats *out = ctx;
    out->total_users = sqlite3_column_int64(st, 0);
    out->active_users = sqlite3_column_int64(st, 1);
    out->staff_users = sqlite3_column_int64(st, 2);
    out->online_users = sqlite3_column_int64(st, 3);
    out->away_users = sqlite3_column_int64(st, 4);
    return USERSD_OK;
}

enum usersd_code sq_stats(struct store *base, struct usersd_stats *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_one(s, sq_prep(s, S_STATS, err), dec_stats, out, NULL, err);
}
