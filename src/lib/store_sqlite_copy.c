/* store_sqlite_copy.c — the SQLite driver's bulk copy (usersd copy): users
 * and sessions dumped a page at a time and loaded with the secondary
 * indexes and the counting triggers set aside, and seeding synthetic users
 * (usersd seed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

/* A user row followed by its password hash. */
static enum usersd_code dec_user_row(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    struct store_user_row *r = &((struct store_user_row *)ctx)[i];
    sq_row_user(st, &r->user);
    sq_copy_text(r->pwhash, sizeof r->pwhash, st, USER_NCOLS);
    return USERSD_OK;
}

enum usersd_code sq_dump_users(struct store *base, int64_t after, size_t cap,
                               struct store_user_row *out, size_t *n, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_rows(s, sq_stmt(s, S_DUMP_USERS, ARGS(V_INT(after), V_INT(cap)), err), cap,
                   dec_user_row, out, n, err);
}

/* hash, then the session. */
static enum usersd_code dec_session_row(sqlite3_stmt *st, size_t i, void *ctx,
                                        struct usersd_err *err)
{
    (void)err;
    struct store_session_row *r = &((struct store_session_row *)ctx)[i];
    memset(r, 0, sizeof *r);
    if (sqlite3_column_bytes(st, 0) == STORE_TOKEN_HASH_LEN)
        memcpy(r->hash, sqlite3_column_blob(st, 0), STORE_TOKEN_HASH_LEN);
    sq_row_session(st, 1, &r->s);
    return USERSD_OK;
}

enum usersd_code sq_dump_sessions(struct store *base, int64_t after, size_t cap,
                                  struct store_session_row *out, size_t *n, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_rows(s, sq_stmt(s, S_DUMP_SESSIONS, ARGS(V_INT(after), V_INT(cap)), err), cap,
                   dec_session_row, out, n, err);
}

/* Inside a bulk load (load_begin): the rows go in as they are, ids included. */
enum usersd_code sq_load(struct store *base, const struct store_user_row *users, size_t nu,
                         const struct store_session_row *sessions, size_t ns,
                         struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    for (size_t i = 0; i < nu; i++) {
        const struct usersd_user *u = &users[i].user;
        bool text = u->status_text[0] != 0; /* no message: NULL, and no expiry */
        enum usersd_code code = sq_run_unique(
            s, S_LOAD_USER,
            ARGS(V_INT(u->id), V_TEXT(u->username), V_TEXT(u->email), V_TEXT(u->first_name),
                 V_TEXT(u->last_name), V_INT(u->is_active), V_INT(u->is_staff),
                 V_INT(u->date_joined), text ? V_TEXT(u->status_text) : V_NULL,
                 V_TIME(text ? u->status_expires : USERSD_NULL_TIME), V_TEXT(users[i].pwhash),
                 V_TIME(store_dnd_col(u->dnd, u->dnd_until))),
            err);
        if (!code) code = sq_presence_insert(s, u, err);
        if (code) return code;
    }
    for (size_t i = 0; i < ns; i++) {
        const struct usersd_session *x = &sessions[i].s;
        enum usersd_code code =
            sq_run(s, S_LOAD_SESSION,
                   ARGS(V_BLOB(sessions[i].hash, STORE_TOKEN_HASH_LEN), V_INT(x->id),
                        V_INT(x->user_id), V_INT(x->created), V_INT(x->last_used),
                        V_TEXT(x->user_agent), V_TEXT(x->client_ip)),
                   err);
        if (code) return code;
    }
    return USERSD_OK;
}

/* Runs one piece of SQL made at run time (the load's DDL). */
static enum usersd_code load_exec(struct sqlite_store *s, const char *sql, struct usersd_err *err)
{
    char *msg = NULL;
    if (!sql) return err_set(err, USERSD_ENOMEM, NULL);
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return USERSD_OK;
    enum usersd_code code =
        err_set(err, USERSD_EDB, "database error: %s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return code;
}

/* What a bulk load sets aside, kept in a temporary table of this
 * connection's transaction (so it goes with a rollback): the secondary
 * indexes of the loaded tables, and the triggers that keep the counters and
 * the search index row by row. load_finish puts them back from their own
 * SQL and redoes their work once: a sort per index, one search rebuild, one
 * count. */
static const char load_save_sql[] =
    "DROP TABLE IF EXISTS temp.usersd_load_ddl; "
    "CREATE TEMP TABLE usersd_load_ddl AS SELECT type, name, sql FROM main.sqlite_master "
    "WHERE (type = 'index' AND sql IS NOT NULL "
    "AND tbl_name IN ('users', 'presence', 'sessions', 'presence_history')) "
    "OR (type = 'trigger' AND name IN ('users_count_insert', 'users_search_insert', "
    "'presence_count_insert', 'sessions_count_insert'))";

/* The saved rows: "DROP <type> <name>" (drop) or their CREATE statements,
 * indexes first (create); *n of them, each sqlite3_free'd by the caller. */
static enum usersd_code load_ddl(struct sqlite_store *s, bool drop, char ***out, size_t *n,
                                 size_t *indexes, struct usersd_err *err)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *n = *indexes = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT type, name, sql FROM temp.usersd_load_ddl "
                           "ORDER BY type = 'trigger', name",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_db_error(s, err);
    enum usersd_code code = USERSD_OK;
    int rc;
    while (!code && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *sql = (const char *)sqlite3_column_text(st, 2);
        char **grown = realloc(*out, (*n + 1) * sizeof **out);
        if (!grown) {
            code = err_set(err, USERSD_ENOMEM, NULL);
            break;
        }
        *out = grown;
        (*out)[*n] =
            drop ? sqlite3_mprintf("DROP %s main.\"%w\"", type, name) : sqlite3_mprintf("%s", sql);
        if (!(*out)[(*n)++]) code = err_set(err, USERSD_ENOMEM, NULL);
        if (strcmp(type, "index") == 0) (*indexes)++;
    }
    if (!code && rc != SQLITE_DONE) code = sq_db_error(s, err);
    sqlite3_finalize(st);
    return code;
}

static void load_ddl_free(char **ddl, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sqlite3_free(ddl[i]);
    free(ddl);
}

enum usersd_code sq_load_begin(struct store *base, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (!code) code = load_exec(s, load_save_sql, err);
    char **ddl = NULL;
    size_t n = 0, indexes = 0;
    if (!code) code = load_ddl(s, true, &ddl, &n, &indexes, err);
    for (size_t i = 0; !code && i < n; i++)
        code = load_exec(s, ddl[i], err);
    load_ddl_free(ddl, n);
    return code;
}

/* The counters as the triggers would have kept them: every count exact,
 * and the online peak raised to the online count (inserts only raise it). */
static const char load_counts_sql[] =
    "UPDATE user_counts SET total = u.total, active = u.active, staff = u.staff, "
    "online = p.online, away = p.away, online_peak = max(online_peak, p.online), "
    "sessions = (SELECT count(*) FROM sessions) "
    "FROM (SELECT count(*) AS total, coalesce(sum(is_active <> 0), 0) AS active, "
    "coalesce(sum(is_staff <> 0), 0) AS staff FROM users) AS u, "
    "(SELECT coalesce(sum(online_status = 2), 0) AS online, "
    "coalesce(sum(online_status = 1), 0) AS away FROM presence) AS p WHERE id = 1";

enum usersd_code sq_load_finish(struct store *base, int64_t head,
                                const struct store_progress *progress, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    char **ddl = NULL;
    size_t n = 0, indexes = 0;
    enum usersd_code code = load_ddl(s, false, &ddl, &n, &indexes, err);
    int64_t total = (int64_t)indexes + 2; /* and the search index, the statistics */
    for (size_t i = 0; !code && i < n; i++) {
        if (i < indexes) store_progress(progress, "indexes", (int64_t)i, total);
        code = load_exec(s, ddl[i], err);
    }
    load_ddl_free(ddl, n);
    store_progress(progress, "indexes", total - 2, total);
    if (!code)
        code = load_exec(s, "INSERT INTO users_search (users_search) VALUES ('rebuild')", err);
    if (!code) code = load_exec(s, load_counts_sql, err);
    store_progress(progress, "indexes", total - 1, total);
    /* Fresh statistics, so the planner keeps choosing the indexes. */
    if (!code) code = sq_exec_simple(s, S_ANALYZE, err);
    if (!code) code = load_exec(s, "DROP TABLE temp.usersd_load_ddl", err);
    if (!code && head >= 0 && !(code = sq_run(s, S_LOAD_SEQ, ARGS(V_TIME(head)), err)))
        code = sq_run(s, S_PRUNE_META, ARGS(V_TIME(head)), err);
    if (!code) code = sq_commit(s, err);
    if (!code) store_progress(progress, "indexes", total, total);
    return code;
}

void sq_load_abort(struct store *base)
{
    sq_rollback((struct sqlite_store *)base);
}

/* The users, then their presence rows: two set-based statements a piece. */
enum usersd_code sq_seed(struct store *base, int64_t *first_id, int64_t from, int64_t n,
                         int64_t now, const char *pwhash, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (!from) {
        enum usersd_code code = sq_count_query(s, sq_prep(s, S_MAX_ID, err), first_id, err);
        if (code) return code;
    }
    static const enum stmt_id steps[] = {S_SEED, S_SEED_PRESENCE};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        enum usersd_code code = sq_run_unique(
            s, steps[k], ARGS(V_INT(from), V_TEXT(pwhash), V_INT(now), V_INT(n), V_INT(*first_id)),
            err);
        if (code) return code;
    }
    return USERSD_OK;
}
