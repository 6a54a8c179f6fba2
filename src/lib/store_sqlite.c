/* store_sqlite.c — the SQLite driver (the embedded default): opening and
 * closing, the prepared statements and the helpers that run them,
 * migrations, transactions and batches, and store_sqlite_ops, which
 * reaches the other files of the driver (store_sqlite_int.h lists them).
 *
 * One connection per handle, used by one thread (SQLITE_OPEN_NOMUTEX).
 * WAL lets readers run beside the one writer; synchronous=FULL makes every
 * commit durable before the call returns, so a 2xx survives kill -9 and
 * power loss alike. Statements are prepared once per connection and kept. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

extern const char *const store_sqlite_migrations[];

static const char *const stmt_sql[S_NSTMT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_BEGIN_READ] = "BEGIN DEFERRED",
    [S_DATA_VERSION] = "PRAGMA data_version",
    [S_SAVEPOINT] = "SAVEPOINT op",
    [S_RELEASE] = "RELEASE op",
    [S_ROLLBACK_TO] = "ROLLBACK TO op",
    [S_INSERT] = "INSERT INTO users (username, email, first_name, last_name, password, "
                 "is_active, is_staff, date_joined) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    [S_GET] = "SELECT " USER_COLS " FROM " USER_FROM " WHERE u.id = ?",
    [S_GET_AUTH] = "SELECT " USER_COLS ", u.password FROM " USER_FROM " WHERE u.username = ?",
    [S_UPDATE] = "UPDATE users SET username = ?, email = ?, first_name = ?, last_name = ?, "
                 "is_active = ?, is_staff = ? WHERE id = ?",
    [S_UPDATE_PW] = "UPDATE users SET password = ? WHERE id = ?",
    [S_DELETE] = "DELETE FROM users WHERE id = ?",
    [S_COUNT] = "SELECT total FROM user_counts WHERE id = 1",
    /* The page is cut from the narrow index alone (it covers the query: no
     * row is read for the pages skipped), then its users are joined. An
     * online status is never manual. */
    [S_ONLINE] = "SELECT " USER_COLS
                 " FROM (SELECT user_id, online_status, last_seen, 0 AS manual FROM presence "
                 "INDEXED BY presence_by_status WHERE online_status = 2 ORDER BY last_seen DESC, "
                 "user_id LIMIT ? OFFSET ?) p CROSS JOIN users u ON u.id = p.user_id "
                 "ORDER BY p.last_seen DESC, p.user_id",
    [S_ONLINE_COUNT] = "SELECT online FROM user_counts WHERE id = 1",
    /* Counters kept by triggers (migration 003): no scan at any size. */
    [S_STATS] = "SELECT total, active, staff, online, away FROM user_counts WHERE id = 1",
    /* With the user's do not disturb of the moment (every status object
     * shows it). */
    [S_LOG_CHANGE] = "INSERT INTO presence_changes (user_id, username, online_status, "
                     "last_seen, at, kind, session_id, dnd_until) VALUES (?1, ?2, ?3, ?4, ?5, "
                     "?6, ?7, (SELECT dnd_until FROM users WHERE id = ?1))",
    /* A manual status keeps last_seen where it is. */
    [S_TOUCH] = "UPDATE presence SET last_seen = ? WHERE user_id = ? AND manual = 0 AND "
                "(last_seen IS NULL OR last_seen < ?)",
    [S_SESSION_TOUCH] = "UPDATE sessions SET last_used = ?1 WHERE id = ?2 AND last_used < ?3",
    [S_SESSION_INSERT] = "INSERT INTO sessions (hash, user_id, created, last_used, user_agent, "
                         "client_ip) VALUES (?, ?, ?, ?, ?, ?)",
    [S_TOKEN_USER] = "SELECT " USER_COLS ", s.id, s.created, s.last_used FROM sessions s "
                     "JOIN users u ON u.id = s.user_id JOIN presence p ON p.user_id = u.id "
                     "WHERE s.hash = ?",
    [S_SESSION_LIST] = "SELECT id, user_id, created, last_used, user_agent, client_ip "
                       "FROM sessions WHERE user_id = ? ORDER BY last_used DESC, id DESC",
    [S_USER_PRESENCE] =
        "SELECT u.username, p.online_status, p.last_seen, p.history_head FROM " USER_FROM
        " WHERE u.id = ?",
    [S_SESSION_DELETE_ONE] = "DELETE FROM sessions WHERE user_id = ?1 AND id = ?2 "
                             "AND last_used < ?3",
    [S_SESSION_DELETE_ALL] = "DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2",
    [S_SESSION_ACTIVE] = "SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = ?1 "
                         "AND last_used >= ?2)",
    [S_GO_OFFLINE] = "UPDATE presence SET online_status = 0, last_seen = ?2 "
                     "WHERE user_id = ?1 AND online_status <> 0 AND manual = 0",
    [S_SESSIONS_EXPIRED] = "SELECT id, user_id FROM sessions WHERE last_used < ? "
                           "ORDER BY last_used LIMIT ?",
    [S_SESSION_REFRESH] = "UPDATE sessions SET last_used = max(last_used, ?1) WHERE id = ?2 "
                          "RETURNING user_id",
    [S_SESSION_COUNT] = "SELECT sessions FROM user_counts WHERE id = 1",
    [S_PING] = "SELECT 1",
    /* Decay reads first (index range scans that usually find nothing) and
     * takes the write lock only when some user is due. ?1 is the away
     * cut-off, ?2 the offline one; NULL turns one off. */
    [S_DECAY_PENDING] = "SELECT EXISTS (SELECT 1 FROM presence INDEXED BY presence_by_status "
                        "WHERE online_status = 2 AND last_seen < ?1 AND manual = 0) "
                        "OR EXISTS (SELECT 1 FROM presence INDEXED BY presence_by_status "
                        "WHERE online_status IN (1, 2) AND last_seen < ?2 AND manual = 0)",
    /* The users due, read and changed a chunk at a time in one transaction
     * (the write lock is held): ?1 the away cut-off, ?2 the offline one
     * (NULL turns one off), ?3 how many. */
    [S_DECAY_DUE] = "SELECT p.user_id, u.username, p.online_status, p.last_seen, p.history_head "
                    "FROM presence p INDEXED BY presence_by_status JOIN users u "
                    "ON u.id = p.user_id WHERE p.manual = 0 AND ((p.online_status IN (1, 2) "
                    "AND p.last_seen < ?2) OR (p.online_status = 2 AND p.last_seen < ?1)) LIMIT ?3",
    [S_DECAY_SET] = "UPDATE presence SET online_status = ?2, history_head = coalesce(?3, "
                    "history_head) WHERE user_id = ?1",

    [S_CHANGES] = "SELECT seq, user_id, username, online_status, last_seen, at, kind, "
                  "coalesce(session_id, 0), message, message_expires, dnd_until "
                  "FROM presence_changes WHERE seq > ?1 AND (?3 >> kind) & 1 ORDER BY seq LIMIT ?2",
    /* Two changes of one user in the same microsecond: the later wins. */
    /* A row at the hot end of the history, chained to the user's previous
     * one; the caller then makes it the user's history_head. */
    [S_HISTORY_INSERT] = "INSERT INTO presence_history (user_id, at, status, prev, back) "
                         "VALUES (?1, ?2, ?3, ?4, (SELECT history_head FROM presence "
                         "WHERE user_id = ?1))",
    [S_HISTORY_DELETE_USER] = "WITH RECURSIVE chain(id) AS (SELECT history_head FROM presence "
                              "WHERE user_id = ?1 UNION ALL SELECT h.back FROM presence_history h "
                              "JOIN chain c ON h.id = c.id WHERE h.back IS NOT NULL) "
                              "DELETE FROM presence_history WHERE id IN chain",
    [S_HISTORY_HEAD_SET] = "UPDATE presence SET history_head = ?2 WHERE user_id = ?1",
    [S_HISTORY_SINCE] = "SELECT history_since FROM presence_meta WHERE id = 1",
    [S_HISTORY_ROW] = "SELECT at, status, prev, back FROM presence_history WHERE id = ?",
    [S_HISTORY_MARK] = "UPDATE presence_meta SET history_since = ?1 WHERE id = 1",
    [S_HISTORY_MARK_UNSET] = "UPDATE presence_meta SET history_since = ?1 WHERE id = 1 "
                             "AND history_since IS NULL",
    /* The oldest rows first (rowid order is time order); a bounded look at
     * the first ?2, so a prune with little to do reads little. */
    [S_HISTORY_PRUNE] = "DELETE FROM presence_history WHERE id IN (SELECT id FROM (SELECT id, at "
                        "FROM presence_history ORDER BY id LIMIT ?2) WHERE at < ?1)",
    [S_MINUTES_PRUNE] = "DELETE FROM presence_minutes WHERE minute < ?1",
    [S_HISTORY_MOVE_SINCE] = "UPDATE presence_meta SET history_since = max(history_since, ?1) "
                             "WHERE id = 1 AND history_since IS NOT NULL",
    [S_MINUTE_EXISTS] = "SELECT EXISTS (SELECT 1 FROM presence_minutes WHERE minute = ?1)",
    /* The minute before closes with the peak the counters kept meanwhile. */
    [S_MINUTE_CLOSE] = "UPDATE presence_minutes SET online_max = max(online_max, (SELECT "
                       "online_peak FROM user_counts WHERE id = 1)) WHERE minute = (SELECT "
                       "max(minute) FROM presence_minutes WHERE minute < ?1)",
    [S_MINUTE_INSERT] = "INSERT INTO presence_minutes (minute, online, away, offline, online_max) "
                        "SELECT ?1, online, away, total - online - away, online FROM user_counts "
                        "WHERE id = 1",
    [S_PEAK_RESET] = "UPDATE user_counts SET online_peak = online WHERE id = 1",
    [S_MINUTES] = "SELECT minute, online, away, offline, online_max FROM presence_minutes "
                  "WHERE minute >= ?1 AND minute < ?2 ORDER BY minute",
    /* The latest minute row is open: its peak is the counters' until the
     * next sample closes it. One statement, so the two agree. */
    [S_LIVE_PEAK] = "SELECT online_peak, (SELECT max(minute) FROM presence_minutes) FROM "
                    "user_counts WHERE id = 1",
    [S_DUMP_HISTORY] = "SELECT id, user_id, at, status, prev FROM presence_history WHERE id > ?1 "
                       "ORDER BY id LIMIT ?2",
    [S_DUMP_MINUTES] = "SELECT minute, online, away, offline, online_max FROM presence_minutes "
                       "WHERE minute > ?1 ORDER BY minute LIMIT ?2",
    [S_LOAD_MINUTE] = "INSERT INTO presence_minutes (minute, online, away, offline, online_max) "
                      "VALUES (?, ?, ?, ?, ?)",
    [S_MESSAGE_SET] = "UPDATE users SET status_text = ?2, status_expires = ?3 WHERE id = ?1",
    [S_MESSAGE_CLEAR] = "UPDATE users SET status_text = NULL, status_expires = NULL "
                        "WHERE id = ?1 AND status_text IS NOT NULL",
    [S_LOG_MESSAGE] = "INSERT INTO presence_changes (user_id, username, online_status, last_seen, "
                      "at, kind, message, message_expires) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
    [S_MESSAGE_PENDING] = "SELECT EXISTS (SELECT 1 FROM users INDEXED BY users_status_expires "
                          "WHERE status_expires <= ?1)",
    [S_LOG_MESSAGE_EXPIRED] = "INSERT INTO presence_changes (user_id, username, online_status, "
                              "last_seen, at, kind) SELECT u.id, u.username, p.online_status, "
                              "p.last_seen, ?1, 1 FROM users u INDEXED BY users_status_expires "
                              "JOIN presence p ON p.user_id = u.id WHERE u.status_expires <= ?1",
    [S_MESSAGE_EXPIRE] = "UPDATE users INDEXED BY users_status_expires SET status_text = NULL, "
                         "status_expires = NULL WHERE status_expires <= ?1",
    [S_DND_SET] = "UPDATE users SET dnd_until = ?2 WHERE id = ?1",
    [S_DND_CLEAR] = "UPDATE users SET dnd_until = NULL WHERE id = ?1 AND dnd_until IS NOT NULL",
    [S_LOG_DND] = "INSERT INTO presence_changes (user_id, username, online_status, last_seen, "
                  "at, kind, dnd_until) VALUES (?, ?, ?, ?, ?, 3, ?)",
    [S_DND_PENDING] = "SELECT EXISTS (SELECT 1 FROM users INDEXED BY users_dnd "
                      "WHERE dnd_until <= ?1)",
    [S_LOG_DND_EXPIRED] = "INSERT INTO presence_changes (user_id, username, online_status, "
                          "last_seen, at, kind) SELECT u.id, u.username, p.online_status, "
                          "p.last_seen, ?1, 3 FROM users u INDEXED BY users_dnd "
                          "JOIN presence p ON p.user_id = u.id WHERE u.dnd_until <= ?1",
    [S_DND_EXPIRE] = "UPDATE users INDEXED BY users_dnd SET dnd_until = NULL "
                     "WHERE dnd_until <= ?1",
    [S_PRESENCE_COUNTS] = "SELECT (SELECT count(*) FROM presence INDEXED BY presence_manual "
                          "WHERE manual <> 0), (SELECT count(*) FROM users INDEXED BY users_dnd "
                          "WHERE dnd_until IS NOT NULL)",
    [S_PRUNED] = "SELECT pruned_through FROM presence_meta WHERE id = 1",
    [S_HEAD] = "SELECT max(coalesce((SELECT max(seq) FROM presence_changes), 0), "
               "(SELECT pruned_through FROM presence_meta WHERE id = 1))",
    /* INDEXED BY: left to itself the planner walked the log backwards from
     * the newest row, reading the whole last hour under the write lock. */
    [S_PRUNE_MAX] = "SELECT max(seq) FROM presence_changes INDEXED BY presence_changes_at "
                    "WHERE at < ?",
    [S_PRUNE_DELETE] = "DELETE FROM presence_changes WHERE seq <= ?",
    [S_PRUNE_META] = "UPDATE presence_meta SET pruned_through = max(pruned_through, ?) "
                     "WHERE id = 1",
    [S_DUMP_USERS] = "SELECT " USER_COLS ", u.password FROM " USER_FROM " WHERE u.id > ? "
                     "ORDER BY u.id LIMIT ?",
    [S_DUMP_SESSIONS] = "SELECT hash, id, user_id, created, last_used, user_agent, client_ip "
                        "FROM sessions WHERE id > ? ORDER BY id LIMIT ?",
    [S_LOAD_USER] = "INSERT INTO users (id, username, email, first_name, last_name, is_active, "
                    "is_staff, date_joined, status_text, status_expires, password, dnd_until) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_LOAD_SESSION] = "INSERT INTO sessions (hash, id, user_id, created, last_used, "
                       "user_agent, client_ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
    /* The log continues after the source's: AUTOINCREMENT reads this. */
    /* Synthetic users number ?1 + 1 .. ?1 + ?4, ids and names after ?5, the
     * highest id before the seeding (usersd seed), then their presence. */
    [S_SEED] = "WITH RECURSIVE s(i) AS (SELECT ?1 + 1 UNION ALL SELECT i + 1 FROM s "
               "WHERE i < ?1 + ?4) "
               "INSERT INTO users (id, username, email, first_name, last_name, password, "
               "is_active, is_staff, date_joined) "
               "SELECT ?5 + i, 'seed' || (?5 + i), 'seed' || (?5 + i) || '@example.com', "
               "'First' || (i % 1000), 'Last' || (i % 997), ?2, 1, 0, ?3 - i * 1000 FROM s",
    [S_ANALYZE] = "ANALYZE",
    /* The same users' presence, k = id - ?5: 10 % online, 10 % away. */
    [S_SEED_PRESENCE] =
        "INSERT INTO presence (user_id, online_status, last_seen) SELECT id, "
        "CASE WHEN (id - ?5) % 10 = 0 THEN 2 WHEN (id - ?5) % 10 = 1 THEN 1 ELSE 0 END, "
        "CASE WHEN (id - ?5) % 10 = 0 THEN ?3 - ((id - ?5) % 300) * 1000000 "
        "WHEN (id - ?5) % 10 = 1 THEN ?3 - (600 + (id - ?5) % 3000) * 1000000 "
        "ELSE ?3 - (3600 + ((id - ?5) * 7919) % 2592000) * 1000000 END "
        "FROM users WHERE id > ?5 + ?1 AND id <= ?5 + ?1 + ?4",
    [S_PRESENCE_INSERT] =
        "INSERT INTO presence (user_id, online_status, last_seen, manual) VALUES (?, ?, ?, ?)",
    [S_PRESENCE_DELETE] = "DELETE FROM presence WHERE user_id = ?",
    [S_MAX_ID] = "SELECT coalesce(max(id), 0) FROM users",
    [S_PRESENCE_OF] = "SELECT online_status, last_seen, history_head, manual FROM presence "
                      "WHERE user_id = ?",
    [S_PRESENCE_SET] = "UPDATE presence SET online_status = ?2, last_seen = ?3, history_head = ?4, "
                       "manual = ?5 WHERE user_id = ?1",
    [S_USERNAME] = "SELECT username FROM users WHERE id = ?",
    [S_HISTORY_ADD] = "INSERT INTO presence_history (user_id, at, status, prev, back) "
                      "VALUES (?, ?, ?, ?, ?)",
    [S_LOAD_SEQ] = "INSERT OR REPLACE INTO sqlite_sequence (name, seq) "
                   "VALUES ('presence_changes', ?)",
};

enum usersd_code sq_db_error(struct sqlite_store *s, struct usersd_err *err)
{
    int rc = sqlite3_errcode(s->db);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return err_set(err, USERSD_EDB, "the database is busy; try again");
    return err_set(err, USERSD_EDB, "database error: %s", sqlite3_errmsg(s->db));
}

sqlite3_stmt *sq_prep(struct sqlite_store *s, enum stmt_id id, struct usersd_err *err)
{
    if (!s->stmt[id]) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
                               NULL) != SQLITE_OK) {
            sq_db_error(s, err);
            return NULL;
        }
    }
    return s->stmt[id];
}

/* Resets a statement so the next use starts clean and its locks go. */
void sq_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

void sq_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= size) n = size - 1;
    if (n) memcpy(dst, t, n);
    dst[n] = 0;
}

/* A time column: NULL is USERSD_NULL_TIME. */
int64_t sq_col_time(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? USERSD_NULL_TIME
                                                       : sqlite3_column_int64(st, col);
}

void sq_row_user(sqlite3_stmt *st, struct usersd_user *u)
{
    u->id = sqlite3_column_int64(st, 0);
    sq_copy_text(u->username, sizeof u->username, st, 1);
    sq_copy_text(u->email, sizeof u->email, st, 2);
    sq_copy_text(u->first_name, sizeof u->first_name, st, 3);
    sq_copy_text(u->last_name, sizeof u->last_name, st, 4);
    u->is_active = sqlite3_column_int(st, 5) != 0;
    u->is_staff = sqlite3_column_int(st, 6) != 0;
    u->date_joined = sqlite3_column_int64(st, 7);
    u->online_status = (enum usersd_status)sqlite3_column_int(st, 8);
    u->last_seen = sq_col_time(st, 9);
    sq_copy_text(u->status_text, sizeof u->status_text, st, 10);
    u->status_expires = sq_col_time(st, 11);
    u->status_manual = sqlite3_column_int(st, 12) != 0;
    store_dnd_read(sq_col_time(st, 13), &u->dnd, &u->dnd_until);
}

/* id, user_id, created, last_used, user_agent, client_ip from column col. */
void sq_row_session(sqlite3_stmt *st, int col, struct usersd_session *x)
{
    x->id = sqlite3_column_int64(st, col);
    x->user_id = sqlite3_column_int64(st, col + 1);
    x->created = sqlite3_column_int64(st, col + 2);
    x->last_used = sqlite3_column_int64(st, col + 3);
    sq_copy_text(x->user_agent, sizeof x->user_agent, st, col + 4);
    sq_copy_text(x->client_ip, sizeof x->client_ip, st, col + 5);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
    if (t == USERSD_NULL_TIME)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, t);
}

/* ---- running statements ------------------------------------------------- */

void sq_bind_args(sqlite3_stmt *st, const struct sq_arg *a, int n)
{
    for (int i = 0; i < n; i++) {
        switch (a[i].kind) {
        case SQ_INT:
            sqlite3_bind_int64(st, i + 1, a[i].i);
            break;
        case SQ_TIME:
            bind_time(st, i + 1, a[i].i);
            break;
        case SQ_TEXT:
            sqlite3_bind_text(st, i + 1, a[i].p, -1, SQLITE_STATIC);
            break;
        case SQ_BLOB:
            sqlite3_bind_blob(st, i + 1, a[i].p, a[i].len, SQLITE_STATIC);
            break;
        case SQ_NULL:
            sqlite3_bind_null(st, i + 1);
            break;
        }
    }
}

/* The prepared statement id with the n values of a bound to ?1..?n; NULL
 * (err filled) when it cannot be prepared. */
sqlite3_stmt *sq_stmt(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a, int n,
                      struct usersd_err *err)
{
    sqlite3_stmt *st = sq_prep(s, id, err);
    if (st) sq_bind_args(st, a, n);
    return st;
}

/* Steps st over at most max rows, handing row i to row(st, i, ctx, err)
 * (NULL: the rows are not read), then resets st whatever happened.
 * USERSD_OK when the rows ran out or max were read; else row's code, or
 * the database's (sq_db_error). *n (may be NULL) gets how many rows were
 * read. A NULL st is one prep could not prepare (err is filled): EDB. */
enum usersd_code sq_rows(struct sqlite_store *s, sqlite3_stmt *st, size_t max, row_fn *row,
                         void *ctx, size_t *n, struct usersd_err *err)
{
    if (!st) return USERSD_EDB;
    size_t k = 0;
    if (n) *n = 0;
    enum usersd_code code = USERSD_OK;
    int rc = SQLITE_DONE;
    while (!code && k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row) code = row(st, k, ctx, err);
        if (!code) k++;
    }
    sq_done(st);
    if (n) *n = k;
    if (code) return code;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? USERSD_OK : sq_db_error(s, err);
}

/* At most one row. *found (may be NULL: then no row at all is a database
 * error, as for a count) says whether there was one. */
enum usersd_code sq_one(struct sqlite_store *s, sqlite3_stmt *st, row_fn *row, void *ctx,
                        bool *found, struct usersd_err *err)
{
    size_t n;
    enum usersd_code code = sq_rows(s, st, 1, row, ctx, &n, err);
    if (found) *found = n == 1;
    if (!code && !n && !found) code = sq_db_error(s, err);
    return code;
}

/* Runs a statement expected to return at most one row: none is ENOTFOUND
 * with what (the thing not found). */
enum usersd_code sq_one_found(struct sqlite_store *s, sqlite3_stmt *st, row_fn *row, void *ctx,
                              const char *what, struct usersd_err *err)
{
    bool found;
    enum usersd_code code = sq_one(s, st, row, ctx, &found, err);
    return code || found ? code : err_set(err, USERSD_ENOTFOUND, "%s not found", what);
}

enum usersd_code sq_count_query(struct sqlite_store *s, sqlite3_stmt *st, int64_t *out,
                                struct usersd_err *err)
{
    return sq_one(s, st, sq_dec_int64, out, NULL, err);
}

/* Steps st once (a write, or a read whose rows do not matter) and resets
 * it; a failure is mapped by fail. A NULL st: EDB, as for sq_rows(). */
enum usersd_code sq_step_with(struct sqlite_store *s, sqlite3_stmt *st, fail_fn *fail,
                              struct usersd_err *err)
{
    if (!st) return USERSD_EDB;
    int rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? USERSD_OK : fail(s, err);
}

/* Statement id with the n values of a, stepped once. */
enum usersd_code sq_run(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a, int n,
                        struct usersd_err *err)
{
    return sq_step_with(s, sq_stmt(s, id, a, n, err), sq_db_error, err);
}

enum usersd_code sq_exec_simple(struct sqlite_store *s, enum stmt_id id, struct usersd_err *err)
{
    return sq_run(s, id, NULL, 0, err);
}

/* Room for items[count] in an array of *cap items of size bytes, grown
 * (doubled, from first) when full: the array, perhaps moved, or NULL when
 * out of memory (items is then left as it was). */
void *sq_grow(void *items, size_t *cap, size_t count, size_t size, size_t first)
{
    if (count < *cap) return items;
    size_t ncap = *cap ? *cap * 2 : first;
    void *p = realloc(items, ncap * size);
    if (p) *cap = ncap;
    return p;
}

/* Decoders for sq_rows(): ctx is an array of what the statement returns. */

/* Column 0 as an integer (a count, an id, a flag). */
enum usersd_code sq_dec_int64(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    ((int64_t *)ctx)[i] = sqlite3_column_int64(st, 0);
    return USERSD_OK;
}

/* Column 0 as a time: NULL is USERSD_NULL_TIME. */
enum usersd_code sq_dec_time(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    ((int64_t *)ctx)[i] = sq_col_time(st, 0);
    return USERSD_OK;
}

enum usersd_code sq_begin(struct sqlite_store *s, struct usersd_err *err)
{
    return sq_exec_simple(s, s->batch ? S_SAVEPOINT : S_BEGIN, err);
}

enum usersd_code sq_commit(struct sqlite_store *s, struct usersd_err *err)
{
    return sq_exec_simple(s, s->batch ? S_RELEASE : S_COMMIT, err);
}

void sq_rollback(struct sqlite_store *s)
{
    if (s->batch) {
        sq_exec_simple(s, S_ROLLBACK_TO, NULL);
        sq_exec_simple(s, S_RELEASE, NULL);
    } else if (!sqlite3_get_autocommit(s->db)) {
        sq_exec_simple(s, S_ROLLBACK, NULL);
    }
}

/* One read transaction for several reads: SQLite takes its WAL read lock
 * (fcntl calls) once instead of once per statement. */
enum usersd_code sq_read_scope(struct store *base, bool begin_, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    s->scope_dv_known = false;
    if (begin_) {
        if (!sqlite3_get_autocommit(s->db))
            return err_set(err, USERSD_EINVAL, "a transaction is already open");
        enum usersd_code code = sq_exec_simple(s, S_BEGIN_READ, err);
        s->scope = code == USERSD_OK;
        return code;
    }
    s->scope = false;
    if (!sqlite3_get_autocommit(s->db) && !s->batch) sq_exec_simple(s, S_COMMIT, NULL);
    return USERSD_OK;
}

/* PRAGMA data_version moves with other connections' commits, total_changes
 * with this connection's own writes: together, any change. */
static enum usersd_code sq_data_version(struct store *base, uint64_t *version,
                                        struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t dv = s->scope_dv;
    enum usersd_code code = USERSD_OK;
    if (!s->scope || !s->scope_dv_known) {
        code = sq_one(s, sq_prep(s, S_DATA_VERSION, err), sq_dec_int64, &dv, NULL, err);
        if (!code && s->scope) {
            s->scope_dv = dv;
            s->scope_dv_known = true;
        }
    }
    if (!code) *version = ((uint64_t)dv << 32) ^ (uint64_t)sqlite3_total_changes64(s->db);
    return code;
}

static enum usersd_code sq_batch(struct store *base, int what, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (what == BATCH_BEGIN) {
        if (s->batch) return err_set(err, USERSD_EINVAL, "a batch is already open");
        enum usersd_code code = sq_exec_simple(s, S_BEGIN, err);
        s->batch = code == USERSD_OK;
        s->batch_failed = false;
        return code;
    }
    s->batch = false;
    if (what == BATCH_COMMIT && s->batch_failed) {
        sq_rollback(s);
        return err_set(err, USERSD_EDB, "a write of this batch failed; nothing was committed");
    }
    if (what == BATCH_COMMIT) {
        enum usersd_code code = sq_exec_simple(s, S_COMMIT, err);
        if (code) sq_rollback(s);
        return code;
    }
    sq_rollback(s);
    return USERSD_OK;
}

/* A unique-constraint failure names the column or index it hit. */
enum usersd_code sq_write_error(struct sqlite_store *s, struct usersd_err *err)
{
    if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE) {
        bool email = strstr(sqlite3_errmsg(s->db), "email") != NULL;
        enum usersd_code rc = err_set(err, USERSD_ECONFLICT, "a user with that %s already exists",
                                      email ? "email" : "username");
        if (err) snprintf(err->field, sizeof err->field, "%s", email ? "email" : "username");
        return rc;
    }
    return sq_db_error(s, err);
}

/* run, a unique-constraint failure named (sq_write_error). */
enum usersd_code sq_run_unique(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a,
                               int n, struct usersd_err *err)
{
    return sq_step_with(s, sq_stmt(s, id, a, n, err), sq_write_error, err);
}

/* ---- migrations --------------------------------------------------------- */

static enum usersd_code migrate(struct sqlite_store *s, const struct store_progress *progress,
                                struct usersd_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) goto fail;
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) goto fail;
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int n = 0;
    while (store_sqlite_migrations[n])
        n++;
    if (version > n) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return err_set(err, USERSD_EDB,
                       "the database schema (version %d) is newer than this usersd (%d)", version,
                       n);
    }
    for (int i = version; i < n; i++) {
        char pragma[64];
        store_progress(progress, "migration", i, n);
        if (sqlite3_exec(s->db, store_sqlite_migrations[i], NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", i + 1);
        if (sqlite3_exec(s->db, pragma, NULL, NULL, &msg) != SQLITE_OK) goto fail;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) goto fail;
    if (version < n) store_progress(progress, "migration", n, n);
    return USERSD_OK;
fail:
    err_set(err, USERSD_EDB, "cannot migrate the database: %s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return USERSD_EDB;
}

/* ---- open/close --------------------------------------------------------- */

static void sq_close(struct store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (!s) return;
    for (int i = 0; i < S_NSTMT; i++)
        sqlite3_finalize(s->stmt[i]);
    for (int i = 0; i < LIST_CACHE; i++) {
        sqlite3_finalize(s->list_cache[i].stmt);
        free(s->list_cache[i].sql);
    }
    for (int i = 0; i < MATCH_CACHE; i++) {
        free(s->matches[i].key);
        free(s->matches[i].ids);
    }
    sqlite3_close(s->db);
    free(s);
}

/* SQLite's memory statistics take a global mutex around every malloc and
 * free it makes, a few dozen per statement: 5 % of the group-commit
 * writer's time under perf. Nothing here reads them, so they are turned
 * off once, before the first connection (when the host program has already
 * started SQLite, the call is refused and changes nothing). */
static void sq_global_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* The planner's statistics (sqlite_stat1) are taken by a bulk load, when a
 * table may still be nearly empty: with sessions known as one row, the
 * token lookup (sessions.hash, a unique index) became a scan of every
 * session, a millisecond a request at 100,000 sessions. A table now ten
 * times the size its statistics say (and of a thousand rows or more) is
 * analyzed again, on a sample (analysis_limit): milliseconds, at open and
 * after seeding sessions. Best effort: a failure leaves the old ones. */
void sq_stats_refresh(struct sqlite_store *s)
{
    static const char *const check =
        "SELECT t.name FROM (SELECT 'users' AS name, total AS n FROM user_counts WHERE id = 1 "
        "UNION ALL SELECT 'presence', total FROM user_counts WHERE id = 1 "
        "UNION ALL SELECT 'sessions', sessions FROM user_counts WHERE id = 1) t "
        "JOIN (SELECT tbl, max(CAST(stat AS INTEGER)) AS n FROM sqlite_stat1 GROUP BY tbl) k "
        "ON k.tbl = t.name WHERE t.n >= 1000 AND t.n > 10 * k.n";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, check, -1, &st, NULL) != SQLITE_OK) return; /* no stat1 yet */
    char stale[3][16];
    int n = 0;
    while (n < 3 && sqlite3_step(st) == SQLITE_ROW)
        snprintf(stale[n++], sizeof stale[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st); /* before writing the table it read */
    for (int i = 0; i < n; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "ANALYZE %s", stale[i]);
        sqlite3_exec(s->db, "PRAGMA analysis_limit = 1000", NULL, NULL, NULL);
        sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        sqlite3_exec(s->db, "PRAGMA analysis_limit = 0", NULL, NULL, NULL);
    }
}

static enum usersd_code sq_open(struct store **out, const char *path,
                                const struct store_progress *progress, struct usersd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sq_global_init);
    if (!*path) return err_set(err, USERSD_EINVAL, "the sqlite: URL needs a file path");
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, USERSD_ENOMEM, NULL);
    s->base.ops = &store_sqlite_ops;
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_set(err, USERSD_EDB, "cannot open database '%.100s': %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sq_close(&s->base);
        return USERSD_EDB;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    /* The automatic checkpoint at 10,000 log pages instead of SQLite's
     * 1,000: at 1,000 a writer stopped for one every few batches
     * (set-online-status at 1M users 11.6k → 14.2k/s). The server turns it
     * off and checkpoints from a thread of its own (checkpoint_apart,
     * writer.c): a write queued behind the commit that ran it waited too
     * long (bench/NOTES.md). The log file is cut back to 64 MiB after each
     * reset. */
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                     "PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 10000; "
                     "PRAGMA journal_size_limit = 67108864;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, USERSD_EDB, "cannot open database '%.100s': %s", path,
                msg ? msg : "unknown error");
        sqlite3_free(msg);
        sq_close(&s->base);
        return USERSD_EDB;
    }
    enum usersd_code code = migrate(s, progress, err);
    if (code) {
        sq_close(&s->base);
        return code;
    }
    sq_stats_refresh(s);
    *out = &s->base;
    return USERSD_OK;
}

static enum usersd_code sq_set_cache(struct store *base, int64_t kib, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%lld", (long long)kib);
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return sq_db_error(s, err);
    return USERSD_OK;
}

/* PASSIVE copies what no reader still needs and never waits: the writer
 * goes on committing meanwhile (only the WAL's next reset waits for a
 * checkpoint that went to its end). */
static enum usersd_code sq_checkpoint(struct store *base, int what, int64_t frames[2],
                                      struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (what == CHECKPOINT_APART)
        return sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint = 0", NULL, NULL, NULL) == SQLITE_OK
                   ? USERSD_OK
                   : sq_db_error(s, err);
    int log = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    frames[0] = log > 0 ? log : 0;
    frames[1] = log > copied ? log - copied : 0;
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? USERSD_OK : sq_db_error(s, err);
}

static enum usersd_code sq_ping(struct store *base, struct usersd_err *err)
{
    return sq_exec_simple((struct sqlite_store *)base, S_PING, err);
}

const struct store_ops store_sqlite_ops = {
    .scheme = "sqlite",
    .set_cache = sq_set_cache,
    .checkpoint = sq_checkpoint,
    .open = sq_open,
    .close = sq_close,
    .ping = sq_ping,
    .user_insert = sq_user_insert,
    .user_get = sq_user_get,
    .user_get_auth = sq_user_get_auth,
    .user_update = sq_user_update,
    .user_delete = sq_user_delete,
    .user_count = sq_user_count,
    .user_list = sq_user_list,
    .online_page = sq_online_page,
    .users_by_ids = sq_users_by_ids,
    .stats = sq_stats,
    .set_status = sq_set_status,
    .touch = sq_touch,
    .refresh = sq_refresh,
    .decay = sq_decay,
    .changes = sq_changes,
    .changes_head = sq_changes_head,
    .changes_prune = sq_changes_prune,
    .dump_users = sq_dump_users,
    .dump_sessions = sq_dump_sessions,
    .load = sq_load,
    .load_finish = sq_load_finish,
    .seed = sq_seed,
    .batch = sq_batch,
    .read_scope = sq_read_scope,
    .data_version = sq_data_version,
    .session_insert = sq_session_insert,
    .token_user = sq_token_user,
    .session_list = sq_session_list,
    .session_end = sq_session_end,
    .session_expire = sq_session_expire,
    .session_refresh = sq_session_refresh,
    .session_count = sq_session_count,
    .status_message = sq_status_message,
    .status_message_expire = sq_status_message_expire,
    .dnd = sq_dnd,
    .dnd_expire = sq_dnd_expire,
    .presence_counts = sq_presence_counts,
    .history_read = sq_history_read,
    .history_mark = sq_history_mark,
    .history_prune = sq_history_prune,
    .history_sample = sq_history_sample,
    .minutes_read = sq_minutes_read,
    .dump_history = sq_dump_history,
    .dump_minutes = sq_dump_minutes,
    .load_history = sq_load_history,
    .load_begin = sq_load_begin,
    .load_abort = sq_load_abort,
    .session_seed = sq_session_seed,
    .set_status_many = sq_set_status_many,
};
