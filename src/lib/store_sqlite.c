/* store_sqlite.c — the SQLite driver (the embedded default).
 *
 * One connection per handle, used by one thread (SQLITE_OPEN_NOMUTEX).
 * WAL lets readers run beside the one writer; synchronous=FULL makes every
 * commit durable before the call returns, so a 2xx survives kill -9 and
 * power loss alike. Statements are prepared once per connection and kept. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

extern const char *const store_sqlite_migrations[];

/* A user is the users row and its presence row (migration 008). */
#define USER_COLS                                                                                  \
    "u.id, u.username, u.email, u.first_name, u.last_name, u.is_active, u.is_staff, "              \
    "u.date_joined, p.online_status, p.last_seen, u.status_text, u.status_expires, p.manual, "     \
    "u.dnd_until"
#define USER_NCOLS 14 /* what follows USER_COLS starts at this column */
#define USER_FROM "users u JOIN presence p ON p.user_id = u.id"

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_BEGIN_READ,
    S_DATA_VERSION,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_INSERT,
    S_GET,
    S_GET_AUTH,
    S_UPDATE,
    S_UPDATE_PW,
    S_DELETE,
    S_COUNT,
    S_ONLINE,
    S_ONLINE_COUNT,
    S_STATS,
    S_LOG_CHANGE,
    S_TOUCH,
    S_SESSION_TOUCH,
    S_SESSION_INSERT,
    S_TOKEN_USER,
    S_SESSION_LIST,
    S_USER_PRESENCE,
    S_SESSION_DELETE_ONE,
    S_SESSION_DELETE_ALL,
    S_SESSION_ACTIVE,
    S_GO_OFFLINE,
    S_SESSIONS_EXPIRED,
    S_SESSION_REFRESH,
    S_SESSION_COUNT,
    S_PING,
    S_DECAY_PENDING,
    S_DECAY_DUE,
    S_DECAY_SET,
    S_CHANGES,
    S_HISTORY_INSERT,
    S_HISTORY_DELETE_USER,
    S_HISTORY_HEAD_SET,
    S_HISTORY_SINCE,
    S_HISTORY_ROW,
    S_HISTORY_MARK,
    S_HISTORY_MARK_UNSET,
    S_HISTORY_PRUNE,
    S_MINUTES_PRUNE,
    S_HISTORY_MOVE_SINCE,
    S_MINUTE_EXISTS,
    S_MINUTE_CLOSE,
    S_MINUTE_INSERT,
    S_PEAK_RESET,
    S_MINUTES,
    S_LIVE_PEAK,
    S_DUMP_HISTORY,
    S_DUMP_MINUTES,
    S_LOAD_MINUTE,
    S_MESSAGE_SET,
    S_MESSAGE_CLEAR,
    S_LOG_MESSAGE,
    S_MESSAGE_PENDING,
    S_LOG_MESSAGE_EXPIRED,
    S_MESSAGE_EXPIRE,
    S_DND_SET,
    S_DND_CLEAR,
    S_LOG_DND,
    S_DND_PENDING,
    S_LOG_DND_EXPIRED,
    S_DND_EXPIRE,
    S_PRESENCE_COUNTS,
    S_PRUNED,
    S_HEAD,
    S_PRUNE_MAX,
    S_PRUNE_DELETE,
    S_PRUNE_META,
    S_DUMP_USERS,
    S_DUMP_SESSIONS,
    S_LOAD_USER,
    S_LOAD_SESSION,
    S_LOAD_SEQ,
    S_SEED,
    S_ANALYZE,
    S_SEED_PRESENCE,
    S_PRESENCE_INSERT,
    S_PRESENCE_DELETE,
    S_MAX_ID,
    S_PRESENCE_OF,
    S_PRESENCE_SET,
    S_USERNAME,
    S_HISTORY_ADD,
    S_NSTMT
};

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

/* List queries vary with their filters and ordering; each distinct SQL text
 * is prepared once and kept here. */
#define LIST_CACHE 48

struct sqlite_store {
    struct store base; /* first: the driver is reached through it */
    sqlite3 *db;
    sqlite3_stmt *stmt[S_NSTMT];
    struct {
        char *sql;
        sqlite3_stmt *stmt;
    } list_cache[LIST_CACHE];
    unsigned list_next; /* round-robin victim when the cache is full */
    bool batch;         /* inside usersd_batch_begin: transactions are savepoints */
    bool batch_failed;  /* a write of the batch failed half-way: it commits nothing */
    /* Inside a read scope the snapshot cannot move, so PRAGMA data_version
     * is read once per scope (the token lookup and the page cache both ask). */
    bool scope, scope_dv_known;
    int64_t scope_dv;
};

/* Decodes row i of a statement into ctx; non-OK stops the reading. */
typedef enum usersd_code row_fn(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err);
/* Maps a failed step to the caller's error. */
typedef enum usersd_code fail_fn(struct sqlite_store *s, struct usersd_err *err);

static enum usersd_code db_error(struct sqlite_store *s, struct usersd_err *err)
{
    int rc = sqlite3_errcode(s->db);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return err_set(err, USERSD_EDB, "the database is busy; try again");
    return err_set(err, USERSD_EDB, "database error: %s", sqlite3_errmsg(s->db));
}

static sqlite3_stmt *prep(struct sqlite_store *s, enum stmt_id id, struct usersd_err *err)
{
    if (!s->stmt[id]) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
                               NULL) != SQLITE_OK) {
            db_error(s, err);
            return NULL;
        }
    }
    return s->stmt[id];
}

/* Resets a statement so the next use starts clean and its locks go. */
static void done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= size) n = size - 1;
    if (n) memcpy(dst, t, n);
    dst[n] = 0;
}

/* A time column: NULL is USERSD_NULL_TIME. */
static int64_t col_time(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? USERSD_NULL_TIME
                                                       : sqlite3_column_int64(st, col);
}

static void row_user(sqlite3_stmt *st, struct usersd_user *u)
{
    u->id = sqlite3_column_int64(st, 0);
    copy_text(u->username, sizeof u->username, st, 1);
    copy_text(u->email, sizeof u->email, st, 2);
    copy_text(u->first_name, sizeof u->first_name, st, 3);
    copy_text(u->last_name, sizeof u->last_name, st, 4);
    u->is_active = sqlite3_column_int(st, 5) != 0;
    u->is_staff = sqlite3_column_int(st, 6) != 0;
    u->date_joined = sqlite3_column_int64(st, 7);
    u->online_status = (enum usersd_status)sqlite3_column_int(st, 8);
    u->last_seen = col_time(st, 9);
    copy_text(u->status_text, sizeof u->status_text, st, 10);
    u->status_expires = col_time(st, 11);
    u->status_manual = sqlite3_column_int(st, 12) != 0;
    store_dnd_read(col_time(st, 13), &u->dnd, &u->dnd_until);
}

/* id, user_id, created, last_used, user_agent, client_ip from column col. */
static void row_session(sqlite3_stmt *st, int col, struct usersd_session *x)
{
    x->id = sqlite3_column_int64(st, col);
    x->user_id = sqlite3_column_int64(st, col + 1);
    x->created = sqlite3_column_int64(st, col + 2);
    x->last_used = sqlite3_column_int64(st, col + 3);
    copy_text(x->user_agent, sizeof x->user_agent, st, col + 4);
    copy_text(x->client_ip, sizeof x->client_ip, st, col + 5);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
    if (t == USERSD_NULL_TIME)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, t);
}

/* ---- running statements ------------------------------------------------- */

/* One value bound to a statement: ?1 takes the first of a list. */
struct sq_arg {
    enum { SQ_INT, SQ_TIME, SQ_TEXT, SQ_BLOB, SQ_NULL } kind;
    int64_t i;
    const void *p;
    int len;
};
#define V_INT(v) ((struct sq_arg){.kind = SQ_INT, .i = (int64_t)(v)})
#define V_TIME(t) ((struct sq_arg){.kind = SQ_TIME, .i = (t)}) /* USERSD_NULL_TIME: NULL */
#define V_TEXT(t) ((struct sq_arg){.kind = SQ_TEXT, .p = (t)}) /* NULL: NULL; not copied */
#define V_BLOB(b, n) ((struct sq_arg){.kind = SQ_BLOB, .p = (b), .len = (int)(n)})
#define V_NULL ((struct sq_arg){.kind = SQ_NULL})
/* The values as the (array, count) pair the helpers take. */
#define ARGS(...)                                                                                  \
    (const struct sq_arg[]){__VA_ARGS__},                                                          \
        (int)(sizeof((const struct sq_arg[]){__VA_ARGS__}) / sizeof(struct sq_arg))

static void bind_args(sqlite3_stmt *st, const struct sq_arg *a, int n)
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
static sqlite3_stmt *stmt(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a, int n,
                          struct usersd_err *err)
{
    sqlite3_stmt *st = prep(s, id, err);
    if (st) bind_args(st, a, n);
    return st;
}

/* Steps st over at most max rows, handing row i to row(st, i, ctx, err)
 * (NULL: the rows are not read), then resets st whatever happened.
 * USERSD_OK when the rows ran out or max were read; else row's code, or
 * the database's (db_error). *n (may be NULL) gets how many rows were
 * read. A NULL st is one prep could not prepare (err is filled): EDB. */
static enum usersd_code rows(struct sqlite_store *s, sqlite3_stmt *st, size_t max, row_fn *row,
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
    done(st);
    if (n) *n = k;
    if (code) return code;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? USERSD_OK : db_error(s, err);
}

/* At most one row. *found (may be NULL: then no row at all is a database
 * error, as for a count) says whether there was one. */
static enum usersd_code one(struct sqlite_store *s, sqlite3_stmt *st, row_fn *row, void *ctx,
                            bool *found, struct usersd_err *err)
{
    size_t n;
    enum usersd_code code = rows(s, st, 1, row, ctx, &n, err);
    if (found) *found = n == 1;
    if (!code && !n && !found) code = db_error(s, err);
    return code;
}

/* Steps st once (a write, or a read whose rows do not matter) and resets
 * it; a failure is mapped by fail. A NULL st: EDB, as for rows(). */
static enum usersd_code step_with(struct sqlite_store *s, sqlite3_stmt *st, fail_fn *fail,
                                  struct usersd_err *err)
{
    if (!st) return USERSD_EDB;
    int rc = sqlite3_step(st);
    done(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? USERSD_OK : fail(s, err);
}

/* Statement id with the n values of a, stepped once. */
static enum usersd_code run(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a, int n,
                            struct usersd_err *err)
{
    return step_with(s, stmt(s, id, a, n, err), db_error, err);
}

static enum usersd_code exec_simple(struct sqlite_store *s, enum stmt_id id, struct usersd_err *err)
{
    return run(s, id, NULL, 0, err);
}

/* Room for items[count] in an array of *cap items of size bytes, grown
 * (doubled, from first) when full: the array, perhaps moved, or NULL when
 * out of memory (items is then left as it was). */
static void *grow(void *items, size_t *cap, size_t count, size_t size, size_t first)
{
    if (count < *cap) return items;
    size_t ncap = *cap ? *cap * 2 : first;
    void *p = realloc(items, ncap * size);
    if (p) *cap = ncap;
    return p;
}

/* Decoders for rows(): ctx is an array of what the statement returns. */

/* Column 0 as an integer (a count, an id, a flag). */
static enum usersd_code dec_int64(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    ((int64_t *)ctx)[i] = sqlite3_column_int64(st, 0);
    return USERSD_OK;
}

static enum usersd_code dec_user(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    row_user(st, &((struct usersd_user *)ctx)[i]);
    return USERSD_OK;
}

/* Column 0 of the last row as an integer (ctx: one int64_t). */
static enum usersd_code dec_int64_last(sqlite3_stmt *st, size_t i, void *ctx,
                                       struct usersd_err *err)
{
    (void)i, (void)err;
    *(int64_t *)ctx = sqlite3_column_int64(st, 0);
    return USERSD_OK;
}

/* Columns 0 and 1 as integers (ctx: two int64_t a row). */
static enum usersd_code dec_int64_pair(sqlite3_stmt *st, size_t i, void *ctx,
                                       struct usersd_err *err)
{
    (void)err;
    ((int64_t *)ctx)[2 * i] = sqlite3_column_int64(st, 0);
    ((int64_t *)ctx)[2 * i + 1] = sqlite3_column_int64(st, 1);
    return USERSD_OK;
}

/* Column 0 as a time: NULL is USERSD_NULL_TIME. */
static enum usersd_code dec_time(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    ((int64_t *)ctx)[i] = col_time(st, 0);
    return USERSD_OK;
}

/* A user row followed by its password hash. */
static enum usersd_code dec_user_row(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    struct store_user_row *r = &((struct store_user_row *)ctx)[i];
    row_user(st, &r->user);
    copy_text(r->pwhash, sizeof r->pwhash, st, USER_NCOLS);
    return USERSD_OK;
}

static enum usersd_code begin(struct sqlite_store *s, struct usersd_err *err)
{
    return exec_simple(s, s->batch ? S_SAVEPOINT : S_BEGIN, err);
}

static enum usersd_code commit(struct sqlite_store *s, struct usersd_err *err)
{
    return exec_simple(s, s->batch ? S_RELEASE : S_COMMIT, err);
}

static void rollback(struct sqlite_store *s)
{
    if (s->batch) {
        exec_simple(s, S_ROLLBACK_TO, NULL);
        exec_simple(s, S_RELEASE, NULL);
    } else if (!sqlite3_get_autocommit(s->db)) {
        exec_simple(s, S_ROLLBACK, NULL);
    }
}

/* One read transaction for several reads: SQLite takes its WAL read lock
 * (fcntl calls) once instead of once per statement. */
static enum usersd_code sq_read_scope(struct store *base, bool begin_, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    s->scope_dv_known = false;
    if (begin_) {
        if (!sqlite3_get_autocommit(s->db))
            return err_set(err, USERSD_EINVAL, "a transaction is already open");
        enum usersd_code code = exec_simple(s, S_BEGIN_READ, err);
        s->scope = code == USERSD_OK;
        return code;
    }
    s->scope = false;
    if (!sqlite3_get_autocommit(s->db) && !s->batch) exec_simple(s, S_COMMIT, NULL);
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
        code = one(s, prep(s, S_DATA_VERSION, err), dec_int64, &dv, NULL, err);
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
        enum usersd_code code = exec_simple(s, S_BEGIN, err);
        s->batch = code == USERSD_OK;
        s->batch_failed = false;
        return code;
    }
    s->batch = false;
    if (what == BATCH_COMMIT && s->batch_failed) {
        rollback(s);
        return err_set(err, USERSD_EDB, "a write of this batch failed; nothing was committed");
    }
    if (what == BATCH_COMMIT) {
        enum usersd_code code = exec_simple(s, S_COMMIT, err);
        if (code) rollback(s);
        return code;
    }
    rollback(s);
    return USERSD_OK;
}

/* A unique-constraint failure names the column or index it hit. */
static enum usersd_code write_error(struct sqlite_store *s, struct usersd_err *err)
{
    if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE) {
        bool email = strstr(sqlite3_errmsg(s->db), "email") != NULL;
        enum usersd_code rc = err_set(err, USERSD_ECONFLICT, "a user with that %s already exists",
                                      email ? "email" : "username");
        if (err) snprintf(err->field, sizeof err->field, "%s", email ? "email" : "username");
        return rc;
    }
    return db_error(s, err);
}

/* run, a unique-constraint failure named (write_error). */
static enum usersd_code run_unique(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a,
                                   int n, struct usersd_err *err)
{
    return step_with(s, stmt(s, id, a, n, err), write_error, err);
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
static void stats_refresh(struct sqlite_store *s)
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
     * 1,000: the group-commit writer runs it, and at 1,000 it stopped for
     * one every few batches (set-online-status at 1M users 11.6k → 14.2k/s;
     * a passive checkpoint from a background thread instead gained nothing
     * on one core and one disk, bench/NOTES.md). The log file is cut back
     * to 64 MiB after each reset. */
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
    stats_refresh(s);
    *out = &s->base;
    return USERSD_OK;
}

static enum usersd_code sq_set_cache(struct store *base, int64_t kib, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%lld", (long long)kib);
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return db_error(s, err);
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
                   : db_error(s, err);
    int log = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    frames[0] = log > 0 ? log : 0;
    frames[1] = log > copied ? log - copied : 0;
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? USERSD_OK : db_error(s, err);
}

static enum usersd_code sq_ping(struct store *base, struct usersd_err *err)
{
    return exec_simple((struct sqlite_store *)base, S_PING, err);
}

/* ---- users -------------------------------------------------------------- */

static enum usersd_code presence_insert(struct sqlite_store *s, const struct usersd_user *u,
                                        struct usersd_err *err);

static enum usersd_code sq_user_insert(struct store *base, struct usersd_user *u,
                                       const char *pwhash, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    sqlite3_stmt *st = stmt(s, S_INSERT,
                            ARGS(V_TEXT(u->username), V_TEXT(u->email), V_TEXT(u->first_name),
                                 V_TEXT(u->last_name), V_TEXT(pwhash), V_INT(u->is_active),
                                 V_INT(u->is_staff), V_INT(u->date_joined)),
                            err);
    if (!st) {
        rollback(s);
        return USERSD_EDB;
    }
    /* RETURNING id: a row, then the end (rows() would map its error with
     * db_error, not write_error). */
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        u->id = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    done(st);
    if (rc != SQLITE_DONE) {
        code = write_error(s, err);
        rollback(s);
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
    if ((code = presence_insert(s, u, err)) || (code = commit(s, err))) rollback(s);
    return code;
}

/* The presence row of u (id, online_status, last_seen), in the open
 * transaction. */
static enum usersd_code presence_insert(struct sqlite_store *s, const struct usersd_user *u,
                                        struct usersd_err *err)
{
    return run(
        s, S_PRESENCE_INSERT,
        ARGS(V_INT(u->id), V_INT(u->online_status), V_TIME(u->last_seen), V_INT(u->status_manual)),
        err);
}

/* Runs a statement expected to return at most one row: none is ENOTFOUND
 * with what (the thing not found). */
static enum usersd_code one_found(struct sqlite_store *s, sqlite3_stmt *st, row_fn *row, void *ctx,
                                  const char *what, struct usersd_err *err)
{
    bool found;
    enum usersd_code code = one(s, st, row, ctx, &found, err);
    return code || found ? code : err_set(err, USERSD_ENOTFOUND, "%s not found", what);
}

static enum usersd_code sq_user_get(struct store *base, int64_t id, struct usersd_user *out,
                                    struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return one_found(s, stmt(s, S_GET, ARGS(V_INT(id)), err), dec_user, out, "user", err);
}

struct auth_row {
    struct usersd_user *user;
    char *pwhash;
};

static enum usersd_code dec_auth(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    struct auth_row *a = ctx;
    row_user(st, a->user);
    copy_text(a->pwhash, PASSWORD_HASH_MAX, st, USER_NCOLS);
    return USERSD_OK;
}

static enum usersd_code sq_user_get_auth(struct store *base, const char *username,
                                         struct usersd_user *out, char *pwhash,
                                         struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct auth_row a = {out, pwhash};
    return one_found(s, stmt(s, S_GET_AUTH, ARGS(V_TEXT(username)), err), dec_auth, &a, "user",
                     err);
}

static enum usersd_code end_sessions(struct sqlite_store *s, const struct store_session_end *e,
                                     int64_t *ended, struct usersd_err *err);

static enum usersd_code sq_user_update(struct store *base, const struct usersd_user *u,
                                       const char *pwhash, const struct store_session_end *end,
                                       struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    if ((code = run_unique(s, S_UPDATE,
                           ARGS(V_TEXT(u->username), V_TEXT(u->email), V_TEXT(u->first_name),
                                V_TEXT(u->last_name), V_INT(u->is_active), V_INT(u->is_staff),
                                V_INT(u->id)),
                           err)))
        goto out;
    if (sqlite3_changes(s->db) == 0) {
        code = err_set(err, USERSD_ENOTFOUND, "user not found");
        goto out;
    }
    if (pwhash && (code = run(s, S_UPDATE_PW, ARGS(V_TEXT(pwhash), V_INT(u->id)), err))) goto out;
    /* A new password ends the other sessions; a deactivated user's sessions
     * all end, and so does its presence. */
    if (pwhash || !u->is_active) {
        struct store_session_end e = *end;
        e.user_id = u->id;
        e.session_id = 0;
        if (!u->is_active) e.keep_id = 0, e.force = true;
        int64_t n;
        if ((code = end_sessions(s, &e, &n, err))) goto out;
    }
    code = commit(s, err);
out:
    if (code) rollback(s);
    return code;
}

static enum usersd_code log_entry(struct sqlite_store *s, enum usersd_change_kind kind,
                                  int64_t user_id, const char *username, int status,
                                  int64_t last_seen, int64_t at, int64_t session_id, int prev,
                                  struct usersd_err *err);
static enum usersd_code log_row(struct sqlite_store *s, enum usersd_change_kind kind,
                                int64_t user_id, const char *username, int status,
                                int64_t last_seen, int64_t at, int64_t session_id,
                                struct usersd_err *err);

/* S_USER_PRESENCE's row: name, status, last_seen, history_head (each
 * pointer may be NULL: not read). */
struct presence_row {
    char *username;
    size_t size;
    int *status;
    int64_t *last_seen, *head;
};

static enum usersd_code dec_presence(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    struct presence_row *p = ctx;
    if (p->username) copy_text(p->username, p->size, st, 0);
    if (p->status) *p->status = sqlite3_column_int(st, 1);
    if (p->last_seen) *p->last_seen = col_time(st, 2);
    if (p->head) *p->head = col_time(st, 3);
    return USERSD_OK;
}

/* The user's name and presence, in the open transaction; ENOTFOUND. */
static enum usersd_code user_presence(struct sqlite_store *s, int64_t id, char *username,
                                      size_t size, int *status, int64_t *last_seen,
                                      struct usersd_err *err)
{
    struct presence_row p = {username, size, status, last_seen, NULL};
    return one_found(s, stmt(s, S_USER_PRESENCE, ARGS(V_INT(id)), err), dec_presence, &p, "user",
                     err);
}

/* Deletes the user's sessions but keep (0: all); *n gets how many. */
static enum usersd_code delete_sessions(struct sqlite_store *s, int64_t user_id, int64_t one,
                                        int64_t keep, int64_t unused_since, int64_t *n,
                                        struct usersd_err *err)
{
    enum usersd_code code =
        one ? run(s, S_SESSION_DELETE_ONE,
                  ARGS(V_INT(user_id), V_INT(one),
                       V_INT(unused_since > 0 ? unused_since : INT64_MAX)),
                  err)
            : run(s, S_SESSION_DELETE_ALL, ARGS(V_INT(user_id), V_INT(keep)), err);
    if (!code) *n = sqlite3_changes(s->db);
    return code;
}

static enum usersd_code sq_user_delete(struct store *base, int64_t id, int64_t now,
                                       struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE; /* set by user_presence */
    int64_t last_seen = 0, n = 0;
    if ((code = user_presence(s, id, name, sizeof name, &status, &last_seen, err))) goto out;
    /* A user not offline is logged going offline, so streams do not show
     * it online forever; its sessions end (and their streams close). */
    if (status != USERSD_OFFLINE &&
        (code = log_entry(s, USERSD_CHANGE_PRESENCE, id, name, USERSD_OFFLINE, last_seen, now, 0,
                          status, err)))
        goto out;
    if ((code = delete_sessions(s, id, 0, 0, 0, &n, err))) goto out;
    if (n && (code = log_entry(s, USERSD_CHANGE_SESSION_END, id, name, USERSD_OFFLINE, last_seen,
                               now, 0, USERSD_OFFLINE, err)))
        goto out;
    /* Its history goes with it (the log keeps the last hour for streams),
     * then its presence (whose history_head leads the way), then itself. */
    static const enum stmt_id gone[] = {S_HISTORY_DELETE_USER, S_PRESENCE_DELETE, S_DELETE};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0] && !code; i++)
        code = run(s, gone[i], ARGS(V_INT(id)), err);
    if (!code) code = commit(s, err);
out:
    if (code) rollback(s);
    return code;
}

static enum usersd_code count_query(struct sqlite_store *s, sqlite3_stmt *st, int64_t *out,
                                    struct usersd_err *err)
{
    return one(s, st, dec_int64, out, NULL, err);
}

static enum usersd_code sq_user_count(struct store *base, int64_t *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return count_query(s, prep(s, S_COUNT, err), out, err);
}

static sqlite3_stmt *list_stmt(struct sqlite_store *s, const char *sql, struct usersd_err *err)
{
    for (int i = 0; i < LIST_CACHE; i++)
        if (s->list_cache[i].sql && strcmp(s->list_cache[i].sql, sql) == 0)
            return s->list_cache[i].stmt;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        db_error(s, err);
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
    enum usersd_code code = rows(s, st, cap, dec_user, out->users, &out->count, err);
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

static enum usersd_code sq_user_list(struct store *base, const struct usersd_list_query *q,
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
    enum usersd_code code = USERSD_OK;
    for (int pass = out->total_count >= 0; pass < 2 && !code; pass++) {
        if (pass == 0)
            snprintf(sql, sizeof sql, "SELECT count(*) FROM " USER_FROM "%s", where);
        else
            snprintf(sql, sizeof sql,
                     "SELECT " USER_COLS " FROM " USER_FROM "%s ORDER BY %s LIMIT ? OFFSET ?",
                     where, order);
        sqlite3_stmt *st = list_stmt(s, sql, err);
        if (!st) {
            code = USERSD_EDB;
            break;
        }
        /* In the order the filters went into where, then the page. */
        struct sq_arg a[6];
        int n = 0;
        if (search) a[n++] = V_TEXT(pattern);
        if (q->online_status >= 0) a[n++] = V_INT(q->online_status);
        if (q->is_active >= 0) a[n++] = V_INT(q->is_active);
        if (q->is_staff >= 0) a[n++] = V_INT(q->is_staff);
        if (pass == 1) {
            a[n++] = V_INT(q->per_page);
            a[n++] = V_INT((int64_t)(q->page - 1) * q->per_page);
        }
        bind_args(st, a, n);
        code = pass == 0 ? count_query(s, st, &out->total_count, err)
                         : collect(s, st, (size_t)q->per_page, out, err);
    }
    free(pattern);
    return code;
}

static enum usersd_code sq_online_page(struct store *base, int page, int per_page,
                                       struct usersd_page *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = count_query(s, prep(s, S_ONLINE_COUNT, err), &out->total_count, err);
    if (code) return code;
    sqlite3_stmt *st =
        stmt(s, S_ONLINE, ARGS(V_INT(per_page), V_INT((int64_t)(page - 1) * per_page)), err);
    if (!st) return USERSD_EDB;
    return collect(s, st, (size_t)per_page, out, err);
}

static enum usersd_code sq_users_by_ids(struct store *base, const int64_t *ids, size_t n,
                                        struct usersd_user *out, size_t *found,
                                        struct usersd_err *err)
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

static enum usersd_code sq_stats(struct store *base, struct usersd_stats *out,
                                 struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return one(s, prep(s, S_STATS, err), dec_stats, out, NULL, err);
}

/* ---- presence ----------------------------------------------------------- */

/* S_PRESENCE_OF's row. */
struct presence_of {
    int status;
    int64_t last_seen, head;
    bool manual;
};

static enum usersd_code dec_presence_of(sqlite3_stmt *st, size_t i, void *ctx,
                                        struct usersd_err *err)
{
    (void)i, (void)err;
    struct presence_of *p = ctx;
    p->status = sqlite3_column_int(st, 0);
    p->last_seen = col_time(st, 1);
    p->head = col_time(st, 2);
    p->manual = sqlite3_column_int(st, 3) != 0;
    return USERSD_OK;
}

/* A status transition, the one hot write: one read of the narrow presence
 * row, then for a heartbeat of an online user one update, and for a real
 * change the name for the log, a history row, one update and the log row.
 * Inside the writer's batch it takes no savepoint: every check comes before
 * the first write, so a refused call (an unknown user) has nothing to
 * undo, and a database error half-way fails the whole batch. */
static enum usersd_code sq_set_status(struct store *base, const struct store_status_change *c,
                                      struct usersd_user *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    bool own_tx = !s->batch;
    enum usersd_code code = own_tx ? exec_simple(s, S_BEGIN, err) : USERSD_OK;
    if (code) return code;
    bool wrote = false, found;
    struct presence_of p = {-1, USERSD_NULL_TIME, USERSD_NULL_TIME, false};
    if ((code = one(s, stmt(s, S_PRESENCE_OF, ARGS(V_INT(c->user_id)), err), dec_presence_of, &p,
                    &found, err)))
        goto out;
    if (!found) {
        if (own_tx) exec_simple(s, S_ROLLBACK, NULL);
        return err_set(err, USERSD_ENOTFOUND, "user not found");
    }
    int old = p.status;
    int64_t old_seen = p.last_seen, head = p.head;
    bool old_manual = p.manual;
    /* An automatic write leaves a manual status (and its last_seen) be. */
    bool keep = (c->flags & USERSD_STATUS_AUTO) && old_manual;
    int status = keep ? old : (int)c->status;
    bool manual = keep || (c->flags & USERSD_STATUS_MANUAL);
    int64_t seen = !keep && c->last_seen != USERSD_NULL_TIME ? c->last_seen : old_seen;
    bool change = old != status;
    char name[USERSD_USERNAME_MAX + 1] = "";
    if (change) { /* the log names the user */
        struct presence_row n = {.username = name, .size = sizeof name};
        if ((code = one(s, stmt(s, S_USERNAME, ARGS(V_INT(c->user_id)), err), dec_presence, &n,
                        NULL, err)))
            goto out;
        if (s->base.history) {
            sqlite3_stmt *st = stmt(
                s, S_HISTORY_ADD,
                ARGS(V_INT(c->user_id), V_INT(c->now), V_INT(status), V_INT(old), V_TIME(head)),
                err);
            if (!st) goto fail;
            wrote = true;
            if ((code = step_with(s, st, db_error, err))) goto out;
            head = sqlite3_last_insert_rowid(s->db);
        }
    }
    if (change || seen != old_seen || manual != old_manual) {
        sqlite3_stmt *st = stmt(
            s, S_PRESENCE_SET,
            ARGS(V_INT(c->user_id), V_INT(status), V_TIME(seen), V_TIME(head), V_INT(manual)), err);
        if (!st) goto fail;
        wrote = true;
        if ((code = step_with(s, st, db_error, err))) goto out;
    }
    if (change && (code = log_row(s, USERSD_CHANGE_PRESENCE, c->user_id, name, status, seen, c->now,
                                  0, err))) {
        wrote = true;
        goto out;
    }
    if (own_tx && (code = exec_simple(s, S_COMMIT, err))) goto out;
    if (!c->presence_only) return sq_user_get(base, c->user_id, out, err);
    /* The presence is the reply (a heartbeat, a set-status): the wide row is
     * not read again. */
    memset(out, 0, sizeof *out);
    out->id = c->user_id;
    snprintf(out->username, sizeof out->username, "%s", name);
    out->online_status = (enum usersd_status)status;
    out->last_seen = seen;
    out->status_expires = USERSD_NULL_TIME;
    out->status_manual = manual;
    out->dnd_until = USERSD_NULL_TIME;
    return USERSD_OK;
fail:
    code = db_error(s, err);
out:
    if (own_tx)
        rollback(s);
    else if (wrote)
        s->batch_failed = true;
    return code;
}

/* Runs a statement that binds (now, id, before); *changed tells whether a
 * row changed. */
static enum usersd_code run_touch(struct sqlite_store *s, enum stmt_id id_stmt, int64_t id,
                                  int64_t now, int64_t before, bool *changed,
                                  struct usersd_err *err)
{
    enum usersd_code code = run(s, id_stmt, ARGS(V_INT(now), V_INT(id), V_INT(before)), err);
    if (!code) *changed = sqlite3_changes(s->db) > 0;
    return code;
}

static enum usersd_code sq_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                                 int64_t before, bool *updated, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (!session) return run_touch(s, S_TOUCH, id, now, before, updated, err);
    /* The user and the session move together: one commit. */
    enum usersd_code code = begin(s, err);
    if (code) return code;
    bool used;
    if (!(code = run_touch(s, S_TOUCH, id, now, before, updated, err)) &&
        !(code = run_touch(s, S_SESSION_TOUCH, session, now, before, &used, err)))
        code = commit(s, err);
    if (code) rollback(s);
    return code;
}

/* The refreshes of a flush in one transaction (a savepoint inside the
 * writer's batch), in the order given: the writer sorts them by user. */
static enum usersd_code sq_refresh(struct store *base, const struct usersd_refresh *r, size_t n,
                                   int64_t interval_us, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    bool moved;
    for (size_t i = 0; i < n && !code; i++) {
        int64_t before = r[i].at - interval_us;
        code = run_touch(s, S_TOUCH, r[i].user_id, r[i].at, before, &moved, err);
        if (!code && r[i].session_id > 0)
            code = run_touch(s, S_SESSION_TOUCH, r[i].session_id, r[i].at, before, &moved, err);
    }
    if (!code) code = commit(s, err);
    if (code) rollback(s);
    return code;
}

/* ---- decay and the change log ------------------------------------------- */

#define DECAY_CHUNK 1000 /* users decayed per transaction: the write lock is held briefly */

struct decay_due {
    int64_t id, last_seen;
    int status;
    char name[USERSD_USERNAME_MAX + 1];
};

static enum usersd_code dec_decay_due(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    struct decay_due *d = &((struct decay_due *)ctx)[i];
    d->id = sqlite3_column_int64(st, 0);
    copy_text(d->name, sizeof d->name, st, 1);
    d->status = sqlite3_column_int(st, 2);
    d->last_seen = col_time(st, 3);
    return USERSD_OK;
}

static enum usersd_code sq_decay(struct store *base, int64_t now, int64_t away_before,
                                 int64_t offline_before, int64_t *changed, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *changed = 0;
    int64_t pending = 0;
    enum usersd_code code = count_query(
        s, stmt(s, S_DECAY_PENDING, ARGS(V_TIME(away_before), V_TIME(offline_before)), err),
        &pending, err);
    if (code || !pending) return code;

    struct decay_due *due = malloc(DECAY_CHUNK * sizeof *due);
    if (!due) return err_set(err, USERSD_ENOMEM, NULL);
    /* A chunk per transaction: the users due are read and changed under the
     * same write lock, so processes sweeping at once each change (and log)
     * a user once. Past both cut-offs, a user goes straight offline. */
    for (int round = 0; round < 100 && !code; round++) {
        if ((code = begin(s, err))) break;
        size_t n = 0;
        code =
            rows(s,
                 stmt(s, S_DECAY_DUE,
                      ARGS(V_TIME(away_before), V_TIME(offline_before), V_INT(DECAY_CHUNK)), err),
                 DECAY_CHUNK, dec_decay_due, due, &n, err);
        for (size_t i = 0; i < n && !code; i++) {
            bool off = offline_before != USERSD_NULL_TIME && due[i].last_seen < offline_before;
            int to = off ? USERSD_OFFLINE : USERSD_AWAY;
            code = run(s, S_DECAY_SET, ARGS(V_INT(due[i].id), V_INT(to)), err);
            /* Decay never moves last_seen. */
            if (!code)
                code = log_entry(s, USERSD_CHANGE_PRESENCE, due[i].id, due[i].name, to,
                                 due[i].last_seen, now, 0, due[i].status, err);
        }
        if (!code) code = commit(s, err);
        if (code) {
            rollback(s);
            break;
        }
        *changed += (int64_t)n;
        if (n < DECAY_CHUNK) break;
    }
    free(due);
    return code;
}

/* Grown as rows come: the stream hub asks for up to 1,000 after every
 * group commit and usually gets a few, and zeroing 1,000 entries (an mmap
 * and page faults each time) cost more than the query. */
struct change_rows {
    struct usersd_changes *out;
    size_t cap;
};

static enum usersd_code dec_change(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i;
    struct change_rows *r = ctx;
    struct usersd_changes *out = r->out;
    struct usersd_change *items = grow(out->items, &r->cap, out->count, sizeof *items, 16);
    if (!items) return err_set(err, USERSD_ENOMEM, NULL);
    out->items = items;
    struct usersd_change *c = &out->items[out->count++];
    memset(c, 0, sizeof *c);
    c->seq = sqlite3_column_int64(st, 0);
    c->user_id = sqlite3_column_int64(st, 1);
    copy_text(c->username, sizeof c->username, st, 2);
    c->online_status = (enum usersd_status)sqlite3_column_int(st, 3);
    c->last_seen = col_time(st, 4);
    c->at = sqlite3_column_int64(st, 5);
    c->kind = (enum usersd_change_kind)sqlite3_column_int(st, 6);
    c->session_id = sqlite3_column_int64(st, 7);
    copy_text(c->status_text, sizeof c->status_text, st, 8);
    c->status_expires = col_time(st, 9);
    store_dnd_read(col_time(st, 10), &c->dnd, &c->dnd_until);
    return USERSD_OK;
}

static enum usersd_code sq_changes(struct store *base, int64_t since, int limit, unsigned kinds,
                                   struct usersd_changes *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct change_rows c = {out, 0};
    enum usersd_code code =
        rows(s, stmt(s, S_CHANGES, ARGS(V_INT(since), V_INT(limit), V_INT((int)kinds)), err),
             (size_t)limit, dec_change, &c, NULL, err);
    /* Checked after the read: a prune that ran in between is seen here. */
    int64_t pruned = 0;
    if (!code) code = count_query(s, prep(s, S_PRUNED, err), &pruned, err);
    if (!code && since < pruned)
        code = err_set(err, USERSD_EGONE,
                       "changes after %lld were pruned; read the current state and continue "
                       "from the newest sequence",
                       (long long)since);
    if (code) usersd_changes_free(out);
    return code;
}

static enum usersd_code sq_changes_head(struct store *base, int64_t *seq, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return count_query(s, prep(s, S_HEAD, err), seq, err);
}

static enum usersd_code sq_changes_prune(struct store *base, int64_t before, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    /* max(seq): NULL when nothing is that old. */
    int64_t upto = USERSD_NULL_TIME;
    if ((code = one(s, stmt(s, S_PRUNE_MAX, ARGS(V_INT(before)), err), dec_time, &upto, NULL, err)))
        goto out;
    if (upto != USERSD_NULL_TIME) {
        if ((code = run(s, S_PRUNE_DELETE, ARGS(V_TIME(upto)), err))) goto out;
        if ((code = run(s, S_PRUNE_META, ARGS(V_TIME(upto)), err))) goto out;
    }
    code = commit(s, err);
out:
    if (code) rollback(s);
    return code;
}

/* ---- copying ------------------------------------------------------------ */

static enum usersd_code sq_dump_users(struct store *base, int64_t after, size_t cap,
                                      struct store_user_row *out, size_t *n, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return rows(s, stmt(s, S_DUMP_USERS, ARGS(V_INT(after), V_INT(cap)), err), cap, dec_user_row,
                out, n, err);
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
    row_session(st, 1, &r->s);
    return USERSD_OK;
}

static enum usersd_code sq_dump_sessions(struct store *base, int64_t after, size_t cap,
                                         struct store_session_row *out, size_t *n,
                                         struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return rows(s, stmt(s, S_DUMP_SESSIONS, ARGS(V_INT(after), V_INT(cap)), err), cap,
                dec_session_row, out, n, err);
}

/* Inside a bulk load (load_begin): the rows go in as they are, ids included. */
static enum usersd_code sq_load(struct store *base, const struct store_user_row *users, size_t nu,
                                const struct store_session_row *sessions, size_t ns,
                                struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    for (size_t i = 0; i < nu; i++) {
        const struct usersd_user *u = &users[i].user;
        bool text = u->status_text[0] != 0; /* no message: NULL, and no expiry */
        enum usersd_code code = run_unique(
            s, S_LOAD_USER,
            ARGS(V_INT(u->id), V_TEXT(u->username), V_TEXT(u->email), V_TEXT(u->first_name),
                 V_TEXT(u->last_name), V_INT(u->is_active), V_INT(u->is_staff),
                 V_INT(u->date_joined), text ? V_TEXT(u->status_text) : V_NULL,
                 V_TIME(text ? u->status_expires : USERSD_NULL_TIME), V_TEXT(users[i].pwhash),
                 V_TIME(store_dnd_col(u->dnd, u->dnd_until))),
            err);
        if (!code) code = presence_insert(s, u, err);
        if (code) return code;
    }
    for (size_t i = 0; i < ns; i++) {
        const struct usersd_session *x = &sessions[i].s;
        enum usersd_code code =
            run(s, S_LOAD_SESSION,
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
        return db_error(s, err);
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
    if (!code && rc != SQLITE_DONE) code = db_error(s, err);
    sqlite3_finalize(st);
    return code;
}

static void load_ddl_free(char **ddl, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sqlite3_free(ddl[i]);
    free(ddl);
}

static enum usersd_code sq_load_begin(struct store *base, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
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

static enum usersd_code sq_load_finish(struct store *base, int64_t head,
                                       const struct store_progress *progress,
                                       struct usersd_err *err)
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
    if (!code) code = exec_simple(s, S_ANALYZE, err);
    if (!code) code = load_exec(s, "DROP TABLE temp.usersd_load_ddl", err);
    if (!code && head >= 0 && !(code = run(s, S_LOAD_SEQ, ARGS(V_TIME(head)), err)))
        code = run(s, S_PRUNE_META, ARGS(V_TIME(head)), err);
    if (!code) code = commit(s, err);
    if (!code) store_progress(progress, "indexes", total, total);
    return code;
}

static void sq_load_abort(struct store *base)
{
    rollback((struct sqlite_store *)base);
}

/* The users, then their presence rows: two set-based statements a piece. */
static enum usersd_code sq_seed(struct store *base, int64_t *first_id, int64_t from, int64_t n,
                                int64_t now, const char *pwhash, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (!from) {
        enum usersd_code code = count_query(s, prep(s, S_MAX_ID, err), first_id, err);
        if (code) return code;
    }
    static const enum stmt_id steps[] = {S_SEED, S_SEED_PRESENCE};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        enum usersd_code code = run_unique(
            s, steps[k], ARGS(V_INT(from), V_TEXT(pwhash), V_INT(now), V_INT(n), V_INT(*first_id)),
            err);
        if (code) return code;
    }
    return USERSD_OK;
}

/* ---- sessions ----------------------------------------------------------- */

/* Appends a history row for user_id at the hot end of the history, chained
 * to their previous one, and makes it their latest (open transaction). */
static enum usersd_code history_append(struct sqlite_store *s, int64_t user_id, int64_t at,
                                       int status, int prev, struct usersd_err *err)
{
    enum usersd_code code =
        run(s, S_HISTORY_INSERT, ARGS(V_INT(user_id), V_INT(at), V_INT(status), V_INT(prev)), err);
    if (code) return code;
    return run(s, S_HISTORY_HEAD_SET, ARGS(V_INT(user_id), V_INT(sqlite3_last_insert_rowid(s->db))),
               err);
}

/* Appends one entry to the change log in the open transaction. */
static enum usersd_code log_row(struct sqlite_store *s, enum usersd_change_kind kind,
                                int64_t user_id, const char *username, int status,
                                int64_t last_seen, int64_t at, int64_t session_id,
                                struct usersd_err *err)
{
    return run(s, S_LOG_CHANGE,
               ARGS(V_INT(user_id), V_TEXT(username), V_INT(status), V_TIME(last_seen), V_INT(at),
                    V_INT(kind), kind == USERSD_CHANGE_SESSION_END ? V_INT(session_id) : V_NULL),
               err);
}

/* log_row, and a presence change (from prev to status) into the history
 * too, when kept. */
static enum usersd_code log_entry(struct sqlite_store *s, enum usersd_change_kind kind,
                                  int64_t user_id, const char *username, int status,
                                  int64_t last_seen, int64_t at, int64_t session_id, int prev,
                                  struct usersd_err *err)
{
    enum usersd_code code =
        log_row(s, kind, user_id, username, status, last_seen, at, session_id, err);
    if (code || kind != USERSD_CHANGE_PRESENCE || !s->base.history) return code;
    return history_append(s, user_id, at, status, prev, err);
}

/* Ends sessions and applies the presence rule (store.h), in the open
 * transaction, which holds the write lock: no other writer sees the
 * sessions gone but the status not yet decided. */
static enum usersd_code end_sessions(struct sqlite_store *s, const struct store_session_end *e,
                                     int64_t *ended, struct usersd_err *err)
{
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE; /* set by user_presence */
    int64_t last_seen = USERSD_NULL_TIME;
    *ended = 0;
    enum usersd_code code =
        user_presence(s, e->user_id, name, sizeof name, &status, &last_seen, err);
    if (!code)
        code =
            delete_sessions(s, e->user_id, e->session_id, e->keep_id, e->unused_since, ended, err);
    if (code) return code;
    if (e->session_id && !*ended) return err_set(err, USERSD_ENOTFOUND, "session not found");
    if (*ended && (code = log_entry(s, USERSD_CHANGE_SESSION_END, e->user_id, name, status,
                                    last_seen, e->now, e->session_id, status, err)))
        return code;
    if ((!*ended && !e->force) || status == USERSD_OFFLINE) return USERSD_OK;
    int64_t active = 0;
    if ((code = count_query(
             s, stmt(s, S_SESSION_ACTIVE, ARGS(V_INT(e->user_id), V_INT(e->active_after)), err),
             &active, err)))
        return code;
    if (active) return USERSD_OK;
    if ((code = run(s, S_GO_OFFLINE, ARGS(V_INT(e->user_id), V_INT(e->now)), err))) return code;
    return sqlite3_changes(s->db) ? log_entry(s, USERSD_CHANGE_PRESENCE, e->user_id, name,
                                              USERSD_OFFLINE, e->now, e->now, 0, status, err)
                                  : USERSD_OK;
}

static enum usersd_code sq_session_end(struct store *base, const struct store_session_end *e,
                                       int64_t *ended, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    if (!(code = end_sessions(s, e, ended, err))) code = commit(s, err);
    if (code) {
        rollback(s);
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

static enum usersd_code sq_session_expire(struct store *base, int64_t before, int64_t now,
                                          int64_t active_after, int limit, int64_t *ended,
                                          struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *ended = 0;
    struct expired *due = malloc((size_t)(limit > 0 ? limit : 1) * sizeof *due);
    if (!due) return err_set(err, USERSD_ENOMEM, NULL);
    enum usersd_code code = begin(s, err);
    if (code) {
        free(due);
        return code;
    }
    size_t n = 0;
    code = rows(s, stmt(s, S_SESSIONS_EXPIRED, ARGS(V_INT(before), V_INT(limit)), err),
                (size_t)limit, dec_expired, due, &n, err);
    for (size_t i = 0; i < n && !code; i++) {
        struct store_session_end e = {.user_id = due[i].user_id,
                                      .session_id = due[i].id,
                                      .now = now,
                                      .active_after = active_after,
                                      .unused_since = before};
        int64_t one = 0;
        code = end_sessions(s, &e, &one, err);
        if (code == USERSD_ENOTFOUND) code = USERSD_OK; /* its user went meanwhile */
        *ended += one;
    }
    free(due);
    if (!code) code = commit(s, err);
    if (code) {
        rollback(s);
        *ended = 0;
    }
    return code;
}

static enum usersd_code sq_session_refresh(struct store *base, const int64_t *ids, size_t n,
                                           int64_t now, bool *alive, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    for (size_t i = 0; i < n && !code; i++) {
        /* RETURNING user_id: every row is read, so the update completes. */
        int64_t user = 0;
        if ((code = rows(s, stmt(s, S_SESSION_REFRESH, ARGS(V_INT(now), V_INT(ids[i])), err),
                         SIZE_MAX, dec_int64_last, &user, NULL, err)))
            break;
        alive[i] = user != 0;
        bool seen;
        if (user) code = run_touch(s, S_TOUCH, user, now, now, &seen, err);
    }
    if (!code) code = commit(s, err);
    if (code) rollback(s);
    return code;
}

static enum usersd_code session_insert(struct sqlite_store *s, const unsigned char *hash,
                                       int64_t user_id, int64_t created, int64_t last_used,
                                       const char *user_agent, const char *client_ip,
                                       struct usersd_err *err)
{
    return run(s, S_SESSION_INSERT,
               ARGS(V_BLOB(hash, STORE_TOKEN_HASH_LEN), V_INT(user_id), V_INT(created),
                    V_INT(last_used), V_TEXT(user_agent), V_TEXT(client_ip)),
               err);
}

static enum usersd_code sq_session_insert(struct store *base, struct store_session_row *row,
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
    row_user(st, t->user);
    if (t->session) {
        memset(t->session, 0, sizeof *t->session);
        t->session->id = sqlite3_column_int64(st, USER_NCOLS);
        t->session->user_id = t->user->id;
        t->session->created = sqlite3_column_int64(st, USER_NCOLS + 1);
        t->session->last_used = sqlite3_column_int64(st, USER_NCOLS + 2);
    }
    return USERSD_OK;
}

static enum usersd_code sq_token_user(struct store *base, const unsigned char *hash,
                                      struct usersd_user *out, struct usersd_session *session,
                                      struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct token_row t = {out, session};
    return one_found(s, stmt(s, S_TOKEN_USER, ARGS(V_BLOB(hash, STORE_TOKEN_HASH_LEN)), err),
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
    struct usersd_session *items = grow(out->items, &r->cap, out->count, sizeof *items, 8);
    if (!items) return err_set(err, USERSD_ENOMEM, NULL);
    out->items = items;
    struct usersd_session *x = &out->items[out->count++];
    memset(x, 0, sizeof *x);
    row_session(st, 0, x);
    return USERSD_OK;
}

static enum usersd_code sq_session_list(struct store *base, int64_t user_id,
                                        struct usersd_sessions *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct usersd_user who;
    enum usersd_code code = sq_user_get(base, user_id, &who, err);
    if (code) return code;
    sqlite3_stmt *st = stmt(s, S_SESSION_LIST, ARGS(V_INT(user_id)), err);
    if (!st) return USERSD_EDB;
    struct session_rows r = {out, 0};
    if ((code = rows(s, st, SIZE_MAX, dec_session, &r, NULL, err))) usersd_sessions_free(out);
    return code;
}

static enum usersd_code sq_session_count(struct store *base, int64_t *n, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return count_query(s, prep(s, S_SESSION_COUNT, err), n, err);
}

/* ---- status messages and do not disturb ------------------------------------ */

/* What both share: one update of the user's row — set (upd_set: ?1 the
 * user, then the text when with_text, then the time), or clear (upd_clear:
 * ?1, changing nothing when there is nothing) — and when it changed, a log
 * row (log: ?1-?5 the user, name, status, last_seen, at, then the text when
 * with_text, then the time) of what it became, in one transaction. out
 * receives the user after; ENOTFOUND. */
static enum usersd_code beside_write(struct sqlite_store *s, enum stmt_id upd, enum stmt_id log,
                                     bool set, bool with_text, int64_t id, const char *text,
                                     int64_t t, int64_t now, struct usersd_user *out,
                                     struct usersd_err *err)
{
    enum usersd_code code = begin(s, err);
    if (code) return code;
    struct sq_arg a[7];
    int n = 0;
    a[n++] = V_INT(id);
    if (set && with_text) a[n++] = V_TEXT(text);
    if (set) a[n++] = V_TIME(t);
    if ((code = run(s, upd, a, n, err))) {
        rollback(s);
        return code;
    }
    bool changed = sqlite3_changes(s->db) > 0;
    /* Nothing to clear, or no such user: the user as it is, or ENOTFOUND. */
    code = sq_user_get(&s->base, id, out, err);
    if (!code && changed) {
        n = 0;
        a[n++] = V_INT(out->id);
        a[n++] = V_TEXT(out->username);
        a[n++] = V_INT(out->online_status);
        a[n++] = V_TIME(out->last_seen);
        a[n++] = V_INT(now);
        if (with_text) a[n++] = set ? V_TEXT(text) : V_NULL;
        a[n++] = V_TIME(set ? t : USERSD_NULL_TIME);
        code = run(s, log, a, n, err);
    }
    if (!code) code = commit(s, err);
    if (code) rollback(s);
    return code;
}

static enum usersd_code sq_status_message(struct store *base, int64_t id, const char *text,
                                          int64_t expires, int64_t now, struct usersd_user *out,
                                          struct usersd_err *err)
{
    return beside_write((struct sqlite_store *)base, text ? S_MESSAGE_SET : S_MESSAGE_CLEAR,
                        S_LOG_MESSAGE, text != NULL, true, id, text, expires, now, out, err);
}

static enum usersd_code sq_dnd(struct store *base, int64_t id, bool on, int64_t until, int64_t now,
                               struct usersd_user *out, struct usersd_err *err)
{
    return beside_write((struct sqlite_store *)base, on ? S_DND_SET : S_DND_CLEAR, S_LOG_DND, on,
                        false, id, NULL, store_dnd_col(on, until), now, out, err);
}

/* The sweep of ended ones: a cheap look through the partial index
 * (pending), and only when something is due, the log rows (log) and the
 * update (upd), which see the same rows: one transaction under the write
 * lock. Each binds ?1 = now. */
static enum usersd_code expire_sweep(struct sqlite_store *s, enum stmt_id pending_stmt,
                                     enum stmt_id log, enum stmt_id upd, int64_t now, int64_t *n,
                                     struct usersd_err *err)
{
    *n = 0;
    int64_t pending = 0;
    enum usersd_code code =
        count_query(s, stmt(s, pending_stmt, ARGS(V_INT(now)), err), &pending, err);
    if (code || !pending) return code;
    if ((code = begin(s, err))) return code;
    if (!(code = run(s, log, ARGS(V_TIME(now)), err)) &&
        !(code = run(s, upd, ARGS(V_TIME(now)), err))) {
        *n = sqlite3_changes(s->db);
        code = commit(s, err);
    }
    if (code) {
        rollback(s);
        *n = 0;
    }
    return code;
}

static enum usersd_code sq_status_message_expire(struct store *base, int64_t now, int64_t *n,
                                                 struct usersd_err *err)
{
    return expire_sweep((struct sqlite_store *)base, S_MESSAGE_PENDING, S_LOG_MESSAGE_EXPIRED,
                        S_MESSAGE_EXPIRE, now, n, err);
}

static enum usersd_code sq_dnd_expire(struct store *base, int64_t now, int64_t *n,
                                      struct usersd_err *err)
{
    return expire_sweep((struct sqlite_store *)base, S_DND_PENDING, S_LOG_DND_EXPIRED, S_DND_EXPIRE,
                        now, n, err);
}

static enum usersd_code sq_presence_counts(struct store *base, int64_t *manual, int64_t *dnd,
                                           struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t c[2] = {0, 0};
    enum usersd_code code = one(s, prep(s, S_PRESENCE_COUNTS, err), dec_int64_pair, c, NULL, err);
    if (!code) *manual = c[0], *dnd = c[1];
    return code;
}

/* ---- history ---------------------------------------------------------------- */

/* S_HISTORY_ROW's row: the change, and the row before it (back). */
struct chain_row {
    struct store_history_row r;
    int64_t *back;
};

static enum usersd_code dec_chain_row(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    struct chain_row *c = ctx;
    c->r.at = sqlite3_column_int64(st, 0);
    c->r.status = sqlite3_column_int(st, 1);
    c->r.prev = sqlite3_column_int(st, 2);
    *c->back = col_time(st, 3);
    return USERSD_OK;
}

static enum usersd_code sq_history_read(struct store *base, int64_t id, int64_t start, int64_t end,
                                        struct store_history *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    memset(out, 0, sizeof *out);
    out->since = USERSD_NULL_TIME;
    enum usersd_code code = one(s, prep(s, S_HISTORY_SINCE, err), dec_time, &out->since, NULL, err);
    if (code) return code;
    /* The user's latest change (none: an unknown user, or no history). */
    int64_t at_row = USERSD_NULL_TIME;
    struct presence_row p = {.head = &at_row};
    bool found;
    if ((code =
             one(s, stmt(s, S_USER_PRESENCE, ARGS(V_INT(id)), err), dec_presence, &p, &found, err)))
        return code;
    /* Walk the user's chain back from their latest change: the rows at or
     * after end (the last of them is `next`), those inside the window (kept,
     * newest first, reversed below), and the first at or before start. */
    size_t cap = 0;
    while (at_row != USERSD_NULL_TIME && !code) {
        struct chain_row c = {.r = {.user_id = id}, .back = &at_row};
        if ((code = one(s, stmt(s, S_HISTORY_ROW, ARGS(V_INT(at_row)), err), dec_chain_row, &c,
                        &found, err)))
            break;
        if (!found) break; /* pruned: the chain ends here */
        struct store_history_row r = c.r;
        if (r.at >= end) {
            out->have_next = true;
            out->next = r;
        } else if (r.at > start) {
            struct store_history_row *rows = grow(out->rows, &cap, out->count, sizeof *rows, 32);
            if (!rows) {
                code = err_set(err, USERSD_ENOMEM, NULL);
                break;
            }
            out->rows = rows;
            out->rows[out->count++] = r;
        } else {
            out->have_first = true;
            out->first = r;
            break;
        }
    }
    if (code) {
        free(out->rows);
        out->rows = NULL;
        out->count = 0;
        return code;
    }
    for (size_t i = 0; i < out->count / 2; i++) { /* oldest first */
        struct store_history_row t = out->rows[i];
        out->rows[i] = out->rows[out->count - 1 - i];
        out->rows[out->count - 1 - i] = t;
    }
    return USERSD_OK;
}

static enum usersd_code sq_history_mark(struct store *base, int64_t since, bool only_if_unset,
                                        struct usersd_err *err)
{
    return run((struct sqlite_store *)base, only_if_unset ? S_HISTORY_MARK_UNSET : S_HISTORY_MARK,
               ARGS(V_TIME(since)), err);
}

static enum usersd_code sq_history_prune(struct store *base, int64_t before, int limit, int64_t *n,
                                         struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *n = 0;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    if (!(code = run(s, S_HISTORY_PRUNE, ARGS(V_INT(before), V_INT(limit)), err))) {
        *n = sqlite3_changes(s->db);
        if (!(code = run(s, S_MINUTES_PRUNE, ARGS(V_TIME(before)), err)) &&
            !(code = run(s, S_HISTORY_MOVE_SINCE, ARGS(V_TIME(before)), err)))
            code = commit(s, err);
    }
    if (code) {
        rollback(s);
        *n = 0;
    }
    return code;
}

static enum usersd_code sq_history_sample(struct store *base, int64_t minute,
                                          struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t exists = 0;
    enum usersd_code code =
        count_query(s, stmt(s, S_MINUTE_EXISTS, ARGS(V_INT(minute)), err), &exists, err);
    if (code || exists) return code;
    /* A read's sample (history.c) comes inside the GET's read scope, a
     * transaction no write can start in: the scope ends for the sample
     * and begins again after it, on the snapshot that has the row. */
    bool scoped = s->scope;
    if (scoped) sq_read_scope(base, false, NULL);
    /* Checked again under the write lock: another process may have been
     * first. */
    if ((code = begin(s, err))) goto out;
    code = count_query(s, stmt(s, S_MINUTE_EXISTS, ARGS(V_INT(minute)), err), &exists, err);
    if (!code && !exists && !(code = run(s, S_MINUTE_CLOSE, ARGS(V_TIME(minute)), err)) &&
        !(code = run(s, S_MINUTE_INSERT, ARGS(V_TIME(minute)), err)))
        code = exec_simple(s, S_PEAK_RESET, err);
    if (!code) code = commit(s, err);
    if (code) rollback(s);
out:
    if (scoped) sq_read_scope(base, true, NULL);
    return code;
}

static void row_minute(sqlite3_stmt *st, struct store_minute_row *m)
{
    m->minute = sqlite3_column_int64(st, 0);
    m->online = sqlite3_column_int64(st, 1);
    m->away = sqlite3_column_int64(st, 2);
    m->offline = sqlite3_column_int64(st, 3);
    m->online_max = sqlite3_column_int64(st, 4);
}

static enum usersd_code dec_minute(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)err;
    row_minute(st, &((struct store_minute_row *)ctx)[i]);
    return USERSD_OK;
}

/* Grown as rows come. */
struct minute_rows {
    struct store_minute_row **out;
    size_t *n, cap;
};

static enum usersd_code dec_minute_grow(sqlite3_stmt *st, size_t i, void *ctx,
                                        struct usersd_err *err)
{
    (void)i;
    struct minute_rows *m = ctx;
    struct store_minute_row *rows = grow(*m->out, &m->cap, *m->n, sizeof *rows, 64);
    if (!rows) return err_set(err, USERSD_ENOMEM, NULL);
    *m->out = rows;
    row_minute(st, &(*m->out)[(*m->n)++]);
    return USERSD_OK;
}

/* S_LIVE_PEAK's row: the peak, and the open minute (NULL: none). */
static enum usersd_code dec_live_peak(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err)
{
    (void)i, (void)err;
    int64_t *v = ctx;
    v[0] = sqlite3_column_int64(st, 0);
    v[1] = col_time(st, 1);
    return USERSD_OK;
}

static enum usersd_code sq_minutes_read(struct store *base, int64_t from, int64_t to,
                                        struct store_minute_row **out, size_t *n,
                                        int64_t *live_peak, int64_t *open, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *out = NULL;
    *n = 0;
    int64_t peak[2] = {0, USERSD_NULL_TIME};
    enum usersd_code code = one(s, prep(s, S_LIVE_PEAK, err), dec_live_peak, peak, NULL, err);
    if (code) return code;
    *live_peak = peak[0];
    *open = peak[1];
    sqlite3_stmt *st = stmt(s, S_MINUTES, ARGS(V_INT(from), V_INT(to)), err);
    if (!st) return USERSD_EDB;
    struct minute_rows m = {out, n, 0};
    if ((code = rows(s, st, SIZE_MAX, dec_minute_grow, &m, NULL, err))) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return code;
}

struct history_dump {
    struct store_history_row *rows;
    int64_t *cursor; /* [0]: the last row's id */
};

static enum usersd_code dec_history_dump(sqlite3_stmt *st, size_t i, void *ctx,
                                         struct usersd_err *err)
{
    (void)err;
    struct history_dump *d = ctx;
    d->cursor[0] = sqlite3_column_int64(st, 0);
    d->rows[i].user_id = sqlite3_column_int64(st, 1);
    d->rows[i].at = sqlite3_column_int64(st, 2);
    d->rows[i].status = sqlite3_column_int(st, 3);
    d->rows[i].prev = sqlite3_column_int(st, 4);
    return USERSD_OK;
}

static enum usersd_code sq_dump_history(struct store *base, int64_t cursor[2], size_t cap,
                                        struct store_history_row *out, size_t *n,
                                        struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    /* rowid order: time order, each user's in turn */
    struct history_dump d = {out, cursor};
    return rows(s, stmt(s, S_DUMP_HISTORY, ARGS(V_INT(cursor[0]), V_INT(cap)), err), cap,
                dec_history_dump, &d, n, err);
}

static enum usersd_code sq_dump_minutes(struct store *base, int64_t after, size_t cap,
                                        struct store_minute_row *out, size_t *n,
                                        struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return rows(s, stmt(s, S_DUMP_MINUTES, ARGS(V_INT(after), V_INT(cap)), err), cap, dec_minute,
                out, n, err);
}

/* Inside a bulk load (load_begin). */
static enum usersd_code sq_load_history(struct store *base, const struct store_history_row *h,
                                        size_t nh, const struct store_minute_row *m, size_t nm,
                                        struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = USERSD_OK;
    /* Each user's rows come in time order (both drivers dump them so):
     * appended, they chain as they did. */
    for (size_t i = 0; i < nh && !code; i++)
        code = history_append(s, h[i].user_id, h[i].at, h[i].status, h[i].prev, err);
    for (size_t i = 0; i < nm && !code; i++) {
        const struct store_minute_row *r = &m[i];
        code = run(s, S_LOAD_MINUTE,
                   ARGS(V_INT(r->minute), V_INT(r->online), V_INT(r->away), V_INT(r->offline),
                        V_INT(r->online_max)),
                   err);
    }
    return code;
}

/* ---- load testing ------------------------------------------------------- */

static enum usersd_code sq_session_seed(struct store *base, const unsigned char *hashes, size_t k,
                                        int64_t now, int64_t *user_ids, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *pick = NULL;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    /* Run once per seeding, so not kept among the prepared statements. */
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM users WHERE is_active ORDER BY random() LIMIT ?",
                           -1, &pick, NULL) != SQLITE_OK) {
        code = db_error(s, err);
        goto out;
    }
    bind_args(pick, ARGS(V_INT(k)));
    size_t n = 0;
    if ((code = rows(s, pick, k, dec_int64, user_ids, &n, err))) goto out;
    if (n < k) {
        code = err_field(err, "tokens", "only %zu users are active: cannot mint %zu tokens", n, k);
        goto out;
    }
    /* One transaction: SQLite inserts ~100k rows a second this way. */
    for (size_t i = 0; i < k && !code; i++)
        code = session_insert(s, hashes + i * STORE_TOKEN_HASH_LEN, user_ids[i], now, now, "", "",
                              err);
    if (!code) code = commit(s, err);
out:
    sqlite3_finalize(pick);
    if (code) rollback(s);
    if (!code && !s->batch) stats_refresh(s); /* sessions may have grown tenfold */
    return code;
}

/* A batch of changes is simply each in turn (each its own savepoint in
 * the writer's batch), the caller's activity after it as
 * usersd_session_activity would write it (best effort, as there). */
static enum usersd_code sq_set_status_many(struct store *base, struct store_status_job *jobs,
                                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct store_status_job *j = &jobs[i];
        j->rc = sq_set_status(base, &j->c, j->out, j->err);
        if (j->rc || !j->c.touch) continue;
        int64_t seen = j->out->last_seen;
        if (!j->c.session_id && seen != USERSD_NULL_TIME && seen >= j->c.touch_before) continue;
        bool updated = false;
        if (sq_touch(base, j->c.user_id, j->c.session_id, j->c.now, j->c.touch_before, &updated,
                     NULL) == USERSD_OK &&
            updated)
            j->out->last_seen = j->c.now;
    }
    return USERSD_OK;
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
