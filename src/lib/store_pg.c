/* store_pg.c — the PostgreSQL driver (libpq), for many usersd processes on
 * many machines sharing one database.
 *
 * This file holds the connection, its deadlines and reconnects, the
 * statements, migrations, transactions, batches and their pipelining, the
 * helpers every query goes through and the ops table; the operations are
 * in store_pg_users.c, store_pg_sessions.c, store_pg_presence.c,
 * store_pg_history.c and store_pg_copy.c (store_pg_int.h).
 *
 * One connection per handle (the server opens one per worker thread).
 * Statements are prepared once per connection, parameters always bound.
 *
 * Losing the database (API.md §13). Every round trip waits at most
 * PG_DEADLINE_MS for its answer (the server's statement_timeout fires
 * first for a statement that is merely slow); a primary that stops
 * answering — frozen, partitioned — is noticed there, where TCP would wait
 * for minutes: the connection is dropped and the process marks the
 * database down (store.c). Every connection has TCP keepalives and
 * tcp_user_timeout for the network's side of it. A connection found closed
 * before a statement is sent (a restart) is re-established first, so the
 * first request after an outage does not fail for nothing; a statement is
 * never sent twice, so nothing can be applied twice when its answer is
 * lost. A transaction whose connection is lost fails as a whole, COMMIT
 * included (its outcome unknown, it is never reported done). A new
 * connection tries the host the primary was last found at first, then the
 * rest of a multi-host URL (target_session_attrs=read-write by default).
 * While the database is down and usersd_db_check watches it, calls fail at
 * once with EDB (HTTP 503) and only the check reconnects.
 *
 * Change-log order across processes: sequence numbers are handed out in
 * insertion order, but concurrent transactions commit in any order, and a
 * reader that passed a late-committing lower seq would never see it.
 * Writers do not wait for each other: each transaction that logs holds a
 * claim (a shared advisory lock named after the sequence's value when it
 * began to log) until it ends, and readers read only up to the horizon
 * below every claim (migration 011, docs/internals/presence.md). Rows of
 * users are locked in id order by every statement that locks several, so
 * writers in different processes do not deadlock; the counters are 64 rows
 * that add up, so they do not serialize commits either, and the listeners
 * are woken after the commit, not inside it. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "store_pg_int.h"

extern const char *const store_pg_migrations[];

#define LOCK_MIGRATE 0x75736d67LL /* advisory lock key; the log's claims are migration 011's */
/* A round trip's limit: past the server's statement_timeout (4 s), so a
 * slow statement is cancelled by the server, and within the 5 s API.md
 * §13 allows a request. */
#define PG_DEADLINE_MS 4500
#define PG_SESSION_SETTINGS                                                                        \
    "SET statement_timeout = '4s'; SET lock_timeout = '3s'; SET TIME ZONE 'UTC'"

#define COUNTS "user_counts WHERE id BETWEEN 1 AND 64" /* every counter row */

static const char *const psql[P_NSTMT] = {
    [P_INSERT] =
        "INSERT INTO users (username, email, first_name, last_name, is_active, is_staff, "
        "password, date_joined) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING " USER_COLS,
    [P_GET] = "SELECT " USER_COLS " FROM users WHERE id = $1",
    [P_GET_AUTH] = "SELECT " USER_COLS ", password FROM users WHERE lower(username) = lower($1)",
    [P_UPDATE] = "UPDATE users SET username = $1, email = $2, first_name = $3, last_name = $4, "
                 "is_active = $5, is_staff = $6 WHERE id = $7",
    [P_UPDATE_PW] = "UPDATE users SET password = $1 WHERE id = $2",
    [P_DELETE] = "DELETE FROM users WHERE id = $1",
    /* The counters are 64 rows that add up (migration 011), read through
     * their key (migration 014: the table's file may be far larger). */
    [P_COUNT] = "SELECT sum(total) FROM " COUNTS,
    /* The count (kept by the counters) and the page in one statement: one
     * round trip, one snapshot. The page is cut from presence's index alone
     * (rows skipped by OFFSET are not read) and only its users are joined.
     * An empty page is one row of NULLs. */
    [P_ONLINE] = "SELECT c.online, u.* FROM (SELECT sum(online) AS online FROM " COUNTS ") c "
                 "LEFT JOIN LATERAL (SELECT " USERS_COLS
                 " FROM (SELECT user_id FROM presence WHERE online_status = 2 "
                 "ORDER BY last_seen DESC NULLS LAST, user_id LIMIT $1 OFFSET $2) o "
                 "JOIN users ON users.id = o.user_id) u ON true "
                 "ORDER BY u.last_seen DESC NULLS LAST, u.id ASC",
    [P_BY_IDS] = "SELECT " USER_COLS " FROM users WHERE id = ANY ($1::bigint[])",
    /* Counters kept by a trigger (migration 003): no scan at any size. */
    [P_STATS] = "SELECT sum(total), sum(active), sum(staff), sum(online), sum(away) FROM " COUNTS,
    /* Presence writes, any number in one statement (migration 008). */
    [P_SET_PRESENCE] = "SELECT * FROM usersd_set_presence($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    /* With the user's do not disturb of the moment (every status object
     * shows it). */
    [P_LOG_CHANGE] = "INSERT INTO presence_changes (user_id, username, online_status, last_seen, "
                     "at, kind, session_id, dnd_until) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                     "(SELECT dnd_until FROM users WHERE id = $1))",
    [P_NOTIFY] = "SELECT pg_notify('" CHANNEL "', '')",
    /* A manual status keeps last_seen where it is. */
    [P_TOUCH] = "UPDATE users SET last_seen = $1 WHERE id = $2 AND NOT status_manual AND "
                "(last_seen IS NULL OR last_seen < $3)",
    [P_SESSION_TOUCH] = "UPDATE sessions SET last_used = $1 WHERE id = $2 AND last_used < $3",
    /* Refreshes in bulk (migration 010): users, sessions, times, the
     * interval, whether the commit may be asynchronous. */
    [P_REFRESH] = "SELECT usersd_refresh($1, $2, $3, $4, $5)",
    [P_SESSION_INSERT] = "INSERT INTO sessions (hash, user_id, created, last_used, user_agent, "
                         "client_ip) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    /* With the snapshot the row was read in, last (pg_data_version). */
    [P_TOKEN_USER] =
        "SELECT " TOKEN_COLS ", pg_current_snapshot()::text " TOKEN_FROM " WHERE s.hash = $1",
    /* The same, and user $2 (usersd_read_hint) from column USER_NCOLS + 3 on, in the
     * same round trip. */
    [P_TOKEN_USER_HINT] =
        "SELECT " TOKEN_COLS ", " HINTED_COLS ", pg_current_snapshot()::text " TOKEN_FROM
        " LEFT JOIN users t ON t.id = $2 WHERE s.hash = $1",
    [P_SESSION_LIST] = "SELECT id, user_id, created, last_used, user_agent, client_ip "
                       "FROM sessions WHERE user_id = $1 ORDER BY last_used DESC, id DESC",
    /* Locks the user's row: two sessions of one user ending at once take
     * turns, so the second sees the first gone (READ COMMITTED re-reads
     * after the lock) and the user cannot be left online with none. */
    [P_USER_PRESENCE] = "SELECT username, online_status, last_seen FROM users WHERE id = $1 "
                        "FOR UPDATE",
    [P_SESSION_DELETE_ONE] = "DELETE FROM sessions WHERE user_id = $1 AND id = $2 "
                             "AND last_used < $3",
    [P_SESSION_DELETE_ALL] = "DELETE FROM sessions WHERE user_id = $1 AND id <> $2",
    [P_SESSION_ACTIVE] = "SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = $1 "
                         "AND last_used >= $2)",
    [P_GO_OFFLINE] = "UPDATE users SET online_status = 0, last_seen = $2 "
                     "WHERE id = $1 AND online_status <> 0 AND NOT status_manual "
                     "RETURNING username, last_seen",
    /* No index has last_used (migration 013): the scan stops at the
     * $2-th due session, in no order, as every one of them is ended. */
    [P_SESSIONS_EXPIRED] = "SELECT id, user_id FROM sessions WHERE last_used < $1 LIMIT $2",
    /* Sessions $2 (an array) used at $1, and their users seen then: one
     * round trip for a chunk of open streams. Returns the sessions that
     * still exist. */
    [P_SESSION_REFRESH] =
        "WITH s AS (UPDATE sessions SET last_used = greatest(last_used, $1) "
        "WHERE id = ANY ($2::bigint[]) RETURNING id, user_id), "
        "t AS (UPDATE users SET last_seen = $1 WHERE id IN (SELECT user_id FROM s) "
        "AND NOT status_manual AND (last_seen IS NULL OR last_seen < $1)) "
        "SELECT id FROM s",
    [P_SESSION_COUNT] = "SELECT sum(sessions) FROM " COUNTS,
    [P_PING] = "SELECT 1",
    [P_DECAY_PENDING] =
        "SELECT EXISTS (SELECT 1 FROM presence WHERE online_status = 2 AND last_seen < $1 "
        "AND NOT manual) OR EXISTS (SELECT 1 FROM presence WHERE online_status IN (1, 2) "
        "AND last_seen < $2 AND NOT manual)",
    /* One statement each: the update, its log rows and its history see the
     * same rows, and a process running the same sweep concurrently waits
     * on the row locks, re-checks the condition and finds nothing left to
     * change. The users due are found through presence's index. $3 says
     * whether history is kept, $4 how many users at most; the result is
     * the count. */
    [P_DECAY_OFFLINE] =
        "WITH o AS (SELECT id, online_status AS prev FROM users WHERE id IN (SELECT user_id "
        "FROM presence WHERE online_status IN (1, 2) AND last_seen < $2 AND NOT manual LIMIT $4) "
        "AND online_status IN (1, 2) AND last_seen < $2 AND NOT status_manual "
        "ORDER BY id FOR UPDATE), "
        "d AS (UPDATE users u SET online_status = 0 FROM o WHERE u.id = o.id "
        "AND u.online_status IN (1, 2) RETURNING u.id, u.username, u.last_seen, o.prev, "
        "u.dnd_until), "
        "l AS (INSERT INTO presence_changes (user_id, username, online_status, last_seen, at, "
        "dnd_until) SELECT id, username, 0, last_seen, $1, dnd_until FROM d "
        "ORDER BY last_seen, id), "
        "h AS (INSERT INTO presence_history (user_id, at, status, prev) "
        "SELECT id, $1, 0, prev FROM d WHERE $3 "
        "ON CONFLICT (user_id, at) DO UPDATE SET status = excluded.status) "
        "SELECT count(*) FROM d",
    [P_DECAY_AWAY] =
        "WITH o AS (SELECT id FROM users WHERE id IN (SELECT user_id FROM presence "
        "WHERE online_status = 2 AND last_seen < $2 AND NOT manual LIMIT $4) "
        "AND online_status = 2 AND last_seen < $2 AND NOT status_manual ORDER BY id FOR UPDATE), "
        "d AS (UPDATE users u SET online_status = 1 FROM o WHERE u.id = o.id "
        "AND u.online_status = 2 RETURNING u.id, u.username, u.last_seen, u.dnd_until), "
        "l AS (INSERT INTO presence_changes (user_id, username, online_status, last_seen, at, "
        "dnd_until) SELECT id, username, 1, last_seen, $1, dnd_until FROM d "
        "ORDER BY last_seen, id), "
        "h AS (INSERT INTO presence_history (user_id, at, status, prev) "
        "SELECT id, $1, 1, 2 FROM d WHERE $3 "
        "ON CONFLICT (user_id, at) DO UPDATE SET status = excluded.status) "
        "SELECT count(*) FROM d",
    /* Up to the horizon below which nothing can still commit (migration
     * 011): a reader never passes a seq that commits later. */
    [P_CHANGES] = "SELECT * FROM usersd_changes($1, $2, $3)",
    [P_HISTORY_INSERT] = "INSERT INTO presence_history (user_id, at, status, prev) "
                         "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, at) DO UPDATE SET "
                         "status = excluded.status",
    [P_HISTORY_DELETE_USER] = "DELETE FROM presence_history WHERE user_id = $1",
    [P_HISTORY_SINCE] = "SELECT history_since FROM presence_meta WHERE id = 1",
    [P_HISTORY_FIRST] = "SELECT at, status, prev FROM presence_history WHERE user_id = $1 "
                        "AND at <= $2 ORDER BY at DESC LIMIT 1",
    [P_HISTORY_ROWS] = "SELECT at, status, prev FROM presence_history WHERE user_id = $1 "
                       "AND at > $2 AND at < $3 ORDER BY at",
    [P_HISTORY_NEXT] = "SELECT at, status, prev FROM presence_history WHERE user_id = $1 "
                       "AND at >= $2 ORDER BY at LIMIT 1",
    [P_HISTORY_MARK] = "UPDATE presence_meta SET history_since = $1 WHERE id = 1",
    [P_HISTORY_MARK_UNSET] = "UPDATE presence_meta SET history_since = $1 WHERE id = 1 "
                             "AND history_since IS NULL",
    [P_HISTORY_PRUNE] = "WITH gone AS (DELETE FROM presence_history WHERE (user_id, at) IN "
                        "(SELECT user_id, at FROM presence_history WHERE at < $1 ORDER BY at "
                        "LIMIT $2) RETURNING 1), m AS (DELETE FROM presence_minutes WHERE "
                        "minute < $1), x AS (UPDATE presence_meta SET history_since = "
                        "greatest(history_since, $1) WHERE id = 1 AND history_since IS NOT NULL) "
                        "SELECT count(*) FROM gone",
    [P_MINUTE_INSERT] =
        "INSERT INTO presence_minutes (minute, online, away, offline, online_max) "
        "SELECT $1, sum(online), sum(away), sum(total - online - away), sum(online) "
        "FROM " COUNTS " ON CONFLICT (minute) DO NOTHING RETURNING minute",
    /* The minute before closes with the peak the counters kept meanwhile. */
    [P_MINUTE_CLOSE] = "UPDATE presence_minutes SET online_max = greatest(online_max, (SELECT "
                       "online_peak FROM user_counts WHERE id = 1)) WHERE minute = (SELECT "
                       "max(minute) FROM presence_minutes WHERE minute < $1)",
    [P_PEAK_RESET] = "UPDATE user_counts SET online_peak = (SELECT sum(online) FROM " COUNTS ") "
                     "WHERE id = 1",
    [P_MINUTES] = "SELECT minute, online, away, offline, online_max FROM presence_minutes "
                  "WHERE minute >= $1 AND minute < $2 ORDER BY minute",
    /* The latest minute row is open: its peak is the counters' until the
     * next sample closes it. One statement, so the two agree. */
    [P_LIVE_PEAK] = "SELECT online_peak, (SELECT max(minute) FROM presence_minutes) FROM "
                    "user_counts WHERE id = 1",
    [P_DUMP_HISTORY] = "SELECT user_id, at, status, prev FROM presence_history "
                       "WHERE (user_id, at) > ($1, $2) ORDER BY user_id, at LIMIT $3",
    [P_DUMP_MINUTES] = "SELECT minute, online, away, offline, online_max FROM presence_minutes "
                       "WHERE minute > $1 ORDER BY minute LIMIT $2",
    [P_MESSAGE_SET] = "UPDATE users SET status_text = $2, status_expires = $3 WHERE id = $1 "
                      "RETURNING " USER_COLS,
    [P_MESSAGE_CLEAR] = "UPDATE users SET status_text = NULL, status_expires = NULL "
                        "WHERE id = $1 AND status_text IS NOT NULL RETURNING " USER_COLS,
    [P_LOG_MESSAGE] = "INSERT INTO presence_changes (user_id, username, online_status, last_seen, "
                      "at, kind, message, message_expires) VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
    /* min() rather than EXISTS: after five runs PostgreSQL plans a prepared
     * statement for any $1, and its generic plan for EXISTS (... <= $1)
     * walked all of users (half a second at a million, four times a
     * second); min() is always one step into the partial index. */
    [P_MESSAGE_PENDING] = "SELECT coalesce((SELECT min(status_expires) FROM users) <= $1, false)",
    [P_MESSAGE_EXPIRE] = "WITH d AS (UPDATE users SET status_text = NULL, status_expires = NULL "
                         "WHERE status_expires <= $1 RETURNING id, username, online_status, "
                         "last_seen) INSERT INTO presence_changes (user_id, username, "
                         "online_status, last_seen, at, kind) SELECT id, username, online_status, "
                         "last_seen, $1, 1 FROM d ORDER BY id",
    [P_DND_SET] = "UPDATE users SET dnd_until = $2 WHERE id = $1 RETURNING " USER_COLS,
    [P_DND_CLEAR] = "UPDATE users SET dnd_until = NULL WHERE id = $1 AND dnd_until IS NOT NULL "
                    "RETURNING " USER_COLS,
    [P_LOG_DND] = "INSERT INTO presence_changes (user_id, username, online_status, last_seen, "
                  "at, kind, dnd_until) VALUES ($1, $2, $3, $4, $5, 3, $6)",
    /* min(), as P_MESSAGE_PENDING: one step into the partial index. */
    [P_DND_PENDING] = "SELECT coalesce((SELECT min(dnd_until) FROM users) <= $1, false)",
    [P_DND_EXPIRE] = "WITH d AS (UPDATE users SET dnd_until = NULL WHERE dnd_until <= $1 "
                     "RETURNING id, username, online_status, last_seen) INSERT INTO "
                     "presence_changes (user_id, username, online_status, last_seen, at, kind) "
                     "SELECT id, username, online_status, last_seen, $1, 3 FROM d ORDER BY id",
    [P_PRESENCE_COUNTS] = "SELECT (SELECT count(*) FROM presence WHERE manual), "
                          "(SELECT count(*) FROM users WHERE dnd_until IS NOT NULL)",
    [P_PRUNED] = "SELECT pruned_through FROM presence_meta WHERE id = 1",
    [P_HEAD] = "SELECT greatest(usersd_log_horizon(), "
               "(SELECT pruned_through FROM presence_meta WHERE id = 1))",
    /* OFFSET 0 keeps max() from becoming a backward walk of the whole log
     * from its newest row: the rows to go are found through the at index. */
    [P_PRUNE] = "WITH gone AS (DELETE FROM presence_changes WHERE seq <= (SELECT max(seq) FROM "
                "(SELECT seq FROM presence_changes WHERE at < $1 OFFSET 0) old) RETURNING seq) "
                "UPDATE presence_meta SET pruned_through = greatest(pruned_through, "
                "(SELECT coalesce(max(seq), 0) FROM gone)) WHERE id = 1",
    [P_DUMP_USERS] = "SELECT " USER_COLS ", password FROM users WHERE id > $1 ORDER BY id LIMIT $2",
    [P_DUMP_SESSIONS] = "SELECT hash, id, user_id, created, last_used, user_agent, client_ip "
                        "FROM sessions WHERE id > $1 ORDER BY id LIMIT $2",
    [P_LOAD_IDS] = "SELECT setval(pg_get_serial_sequence('users', 'id'), "
                   "greatest((SELECT max(id) FROM users), 1)), "
                   "setval(pg_get_serial_sequence('sessions', 'id'), "
                   "greatest((SELECT max(id) FROM sessions), 1))",
    /* Synthetic users number $1 + 1 .. $1 + $4 named after $5, the highest
     * id before them (usersd seed). */
    [P_SEED] = "INSERT INTO users (username, email, first_name, last_name, password, is_active, "
               "is_staff, date_joined, online_status, last_seen) "
               "SELECT 'seed' || ($5::bigint + i), 'seed' || ($5::bigint + i) || '@example.com', "
               "'First' || (i % 1000), "
               "'Last' || (i % 997), $2, true, false, $3 - i * 1000, "
               "CASE WHEN i % 10 = 0 THEN 2 WHEN i % 10 = 1 THEN 1 ELSE 0 END, "
               "CASE WHEN i % 10 = 0 THEN $3 - (i % 300) * 1000000 "
               "WHEN i % 10 = 1 THEN $3 - (600 + i % 3000) * 1000000 "
               "ELSE $3 - (3600 + (i * 7919) % 2592000) * 1000000 END "
               "FROM generate_series($1::bigint + 1, $1::bigint + $4::bigint) AS i",
    /* The log continues after the source's. */
    [P_LOAD_SEQ] = "WITH m AS (UPDATE presence_meta SET pruned_through = greatest(pruned_through, "
                   "$1) WHERE id = 1) SELECT setval(pg_get_serial_sequence('presence_changes', "
                   "'seq'), greatest($1, 1), $1 > 0)",
    [P_MAX_ID] = "SELECT coalesce(max(id), 0) FROM users",
};

/* ---- parameters --------------------------------------------------------- */

void pg_p_int(struct params *p, int64_t x)
{
    snprintf(p->buf[p->n], sizeof p->buf[0], "%lld", (long long)x);
    p->v[p->n] = p->buf[p->n];
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

void pg_p_time(struct params *p, int64_t t)
{
    if (t == USERSD_NULL_TIME) {
        p->v[p->n] = NULL;
        p->len[p->n] = 0;
        p->fmt[p->n++] = 0;
    } else {
        pg_p_int(p, t);
    }
}

void pg_p_text(struct params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

void pg_p_bool(struct params *p, bool b)
{
    pg_p_text(p, b ? "t" : "f");
}

void pg_p_bytea(struct params *p, const unsigned char *b, int len)
{
    p->v[p->n] = (const char *)b;
    p->len[p->n] = len;
    p->fmt[p->n++] = 1;
}

/* username, email, first_name, last_name, is_active, is_staff: the order
 * P_INSERT and P_UPDATE take them in. */
void pg_p_profile(struct params *p, const struct usersd_user *u)
{
    pg_p_text(p, u->username);
    pg_p_text(p, u->email);
    pg_p_text(p, u->first_name);
    pg_p_text(p, u->last_name);
    pg_p_bool(p, u->is_active);
    pg_p_bool(p, u->is_staff);
}

/* ---- errors and the connection ------------------------------------------ */

/* libpq's messages end in newlines and may span lines: keep one line. */
static void one_line(char *dst, size_t size, const char *msg)
{
    snprintf(dst, size, "%s", msg ? msg : "unknown error");
    for (char *c = dst; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
    size_t n = strlen(dst);
    while (n && dst[n - 1] == ' ')
        dst[--n] = 0;
}

static enum usersd_code pg_error_code(struct pg_store *s, PGresult *r, struct usersd_err *err);

/* What the last failed call on this thread failed with, for the helpers
 * that only see a NULL result (each handle is used by one thread). */
_Thread_local enum usersd_code pg_last_fail = USERSD_EDB;

enum usersd_code pg_error(struct pg_store *s, PGresult *r, struct usersd_err *err)
{
    pg_last_fail = pg_error_code(s, r, err);
    return pg_last_fail;
}

/* Notices are not shown ("already exists, skipping" etc.); a FATAL one
 * outside a statement (a terminated backend, a shutdown) ends the session,
 * whether or not its end of the connection has arrived yet. */
static void on_notice(void *arg, const PGresult *r)
{
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC")))
        ((struct pg_store *)arg)->ending = true;
}

/* Calls on a connection that is gone (or a database that is down) fail
 * with this: the client's sentence names no host, port or library; the
 * detail goes to the log once per outage (usersd_db_state). */
enum usersd_code pg_unavailable(struct usersd_err *err)
{
    return err_set(err, USERSD_EDB, "the database is unavailable");
}

static enum usersd_code pg_error_code(struct pg_store *s, PGresult *r, struct usersd_err *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23505") == 0) {
        const char *c = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        bool email = c && strstr(c, "email");
        err_set(err, USERSD_ECONFLICT, "a user with that %s already exists",
                email ? "email" : "username");
        if (err) snprintf(err->field, sizeof err->field, "%s", email ? "email" : "username");
        return USERSD_ECONFLICT;
    }
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) return pg_unavailable(err);
    char line[200];
    one_line(line, sizeof line,
             r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    return err_set(err, USERSD_EDB, "database error: %s", line);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void conn_close(PGconn *c)
{
    if (!c) return;
    PQsetnonblocking(c, 1); /* the goodbye message must not wait on a stuck server */
    PQfinish(c);
}

/* Drops the connection after its conversation failed (it may be stuck
 * mid-message, or the server gone); the next call reconnects. A
 * transaction open on it is lost. timed_out: no answer in time, so the
 * database is taken as unreachable by the whole process. */
void pg_conn_lost(struct pg_store *s, bool timed_out)
{
    if (timed_out) {
        char why[200];
        snprintf(why, sizeof why, "no answer from the database at %s:%s within %d ms",
                 PQhost(s->conn), PQport(s->conn), s->deadline_ms);
        store_db_down(why);
    }
    conn_close(s->conn);
    s->conn = NULL;
    if (s->in_tx) s->lost = true;
}

enum wait_rc { WAIT_OK, WAIT_TIMEOUT, WAIT_GATED };

/* When an answer sent now must have come. */
static int64_t deadline_of(const struct pg_store *s)
{
    return s->deadline_ms ? mono_us() + (int64_t)s->deadline_ms * 1000 : INT64_MAX;
}

static PGresult *run_sql_once(struct pg_store *s, const char *name, const char *sql, bool *prepared,
                              const struct params *p, struct usersd_err *err);

/* Waits until what was sent is answered (PQgetResult will not block), up
 * to deadline; gives up early when another handle found the database
 * down meanwhile (a frozen primary holds every waiter: they all let go
 * as soon as one call notices). */
static enum wait_rc await_answer(struct pg_store *s, int64_t deadline)
{
    while (PQisBusy(s->conn)) {
        int64_t left = deadline - mono_us();
        if (left <= 0) return WAIT_TIMEOUT;
        if (!s->watcher && store_db_gated()) return WAIT_GATED;
        struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
        int ms = left > 50000 ? 50 : (int)((left + 999) / 1000);
        int n = poll(&p, 1, ms);
        if (n < 0 && errno != EINTR) return WAIT_OK; /* PQgetResult reports it */
        if (n > 0 && !PQconsumeInput(s->conn)) return WAIT_OK;
    }
    return WAIT_OK;
}

/* The answer to what was just sent (sent: the PQsend* call's return), as
 * PQexec gives it: the last result. NULL when nothing could be sent or no
 * answer came in time; the connection is dropped then, and also when the
 * server ended it (its error result is returned). */
PGresult *pg_answer(struct pg_store *s, int sent)
{
    s->not_run = !sent;
    if (!sent) {
        pg_conn_lost(s, false);
        return NULL;
    }
    int64_t deadline = deadline_of(s);
    PGresult *last = NULL, *r;
    for (;;) {
        enum wait_rc w = await_answer(s, deadline);
        if (w != WAIT_OK) {
            PQclear(last);
            pg_conn_lost(s, w == WAIT_TIMEOUT);
            return NULL;
        }
        if (!(r = PQgetResult(s->conn))) break;
        PQclear(last);
        last = r;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH ||
            PQstatus(s->conn) == CONNECTION_BAD)
            break;
    }
    if (PQstatus(s->conn) == CONNECTION_BAD) {
        /* An error the server sent (it has a SQLSTATE; libpq's own, such
         * as an unexpected end of the connection, have none) means the
         * statement did not complete. */
        s->not_run = last && PQresultErrorField(last, PG_DIAG_SQLSTATE);
        pg_conn_lost(s, false);
    }
    return last;
}

enum usersd_code pg_exec_plain(struct pg_store *s, const char *sql, struct usersd_err *err)
{
    s->hinted = s->snap_fresh = false;
    PGresult *r = pg_answer(s, s->conn && PQsendQuery(s->conn, sql));
    ExecStatusType st = PQresultStatus(r);
    enum usersd_code code = USERSD_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) code = pg_error(s, r, err);
    PQclear(r);
    return code;
}

/* Lifts the statement timeout for the open transaction (a migration, a
 * bulk load: an index build at millions of rows takes longer than any
 * request may), and the round trips' deadline with it until it ends. */
enum usersd_code pg_lift_timeout(struct pg_store *s, struct usersd_err *err)
{
    s->deadline_ms = 0;
    return pg_exec_plain(s, "SET LOCAL statement_timeout = 0", err);
}

/* Session settings every new connection gets. A stuck statement never
 * holds a request (or the server) for long. */
static enum usersd_code session_setup(struct pg_store *s, struct usersd_err *err)
{
    memset(s->prepared, 0, sizeof s->prepared);
    memset(s->list_prepared, 0, sizeof s->list_prepared);
    s->in_tx = false;
    enum usersd_code code = pg_exec_plain(s, PG_SESSION_SETTINGS, err);
    if (!code && s->listening) code = pg_exec_plain(s, "LISTEN " CHANNEL, err);
    return code;
}

/* What usersd sets when the URL does not: a dead or frozen host fails a
 * connection attempt in 2 s (libpq's least) and the next host is tried;
 * TCP gives up on a peer that stops acknowledging in 5 s, and keepalives
 * probe an idle connection (the stream hub's LISTEN) from 5 s of silence.
 * target_session_attrs is the URL's to give (read-write for a failover
 * pair): a database made read-only on purpose still serves reads. */
static const char *const conn_defaults[][2] = {
    {"connect_timeout", "2"},     {"application_name", "usersd"}, {"keepalives", "1"},
    {"keepalives_idle", "5"},     {"keepalives_interval", "2"},   {"keepalives_count", "2"},
    {"tcp_user_timeout", "5000"},
};
#define NDEFAULTS (sizeof conn_defaults / sizeof conn_defaults[0])

static void free_params(struct pg_store *s)
{
    for (int i = 0; s->keys && s->keys[i]; i++) {
        free(s->keys[i]);
        free(s->vals[i]);
    }
    free(s->keys);
    free(s->vals);
    s->keys = s->vals = NULL;
}

/* Parses the URL (or key=value string) into s->keys/vals and adds the
 * defaults; false with msg filled when it does not parse. */
static bool parse_params(struct pg_store *s, const char *url, char *msg, size_t size)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &why);
    if (!opts) {
        one_line(msg, size, why ? why : "out of memory");
        PQfreemem(why);
        return false;
    }
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n += o->val != NULL;
    s->keys = calloc(n + NDEFAULTS + 1, sizeof *s->keys);
    s->vals = calloc(n + NDEFAULTS + 1, sizeof *s->vals);
    bool ok = s->keys && s->vals;
    size_t k = 0;
    for (PQconninfoOption *o = opts; ok && o->keyword; o++)
        if (o->val) {
            s->keys[k] = strdup(o->keyword);
            s->vals[k] = strdup(o->val);
            ok = s->keys[k] && s->vals[k];
            k++;
        }
    for (size_t d = 0; ok && d < NDEFAULTS; d++) {
        bool given = false;
        for (size_t i = 0; i < k && !given; i++)
            given = strcmp(s->keys[i], conn_defaults[d][0]) == 0;
        if (given) continue;
        s->keys[k] = strdup(conn_defaults[d][0]);
        s->vals[k] = strdup(conn_defaults[d][1]);
        ok = s->keys[k] && s->vals[k];
        k++;
    }
    PQconninfoFree(opts);
    if (!ok) snprintf(msg, size, "out of memory");
    return ok;
}

/* Item i of a comma-separated list into out ("" past its end). */
static void list_item(const char *list, int i, char *out, size_t size)
{
    const char *p = list ? list : "";
    while (i-- > 0 && p)
        if ((p = strchr(p, ','))) p++;
    size_t n = p ? strcspn(p, ",") : 0;
    snprintf(out, size, "%.*s", (int)n, p ? p : "");
}

static int list_len(const char *list)
{
    int n = list && *list ? 1 : 0;
    for (const char *c = list; c && *c; c++)
        n += *c == ',';
    return n;
}

/* list with its items from k on first: "a,b,c" by 1 is "b,c,a". */
static void rotate(const char *list, int k, char *out, size_t size)
{
    int n = list_len(list);
    size_t o = 0;
    out[0] = 0;
    for (int j = 0; j < n; j++) {
        char item[256];
        list_item(list, (k + j) % n, item, sizeof item);
        int w = snprintf(out + o, size - o, "%s%s", j ? "," : "", item);
        if (w < 0 || (size_t)w >= size - o) break;
        o += (size_t)w;
    }
}

/* Connects with s's parameters, the host the primary was last found at
 * first (libpq tries a multi-host URL's hosts in order, each up to
 * connect_timeout: a frozen old primary first would cost that much on
 * every reconnect), or after failed attempts, as many hosts later: a host
 * that answers with an error (pg_hba.conf rejects, too many clients) ends
 * libpq's attempt there, without trying the hosts after it. */
static PGconn *connect_params(struct pg_store *s)
{
    int ih = -1, ia = -1, ip = -1, n = 0;
    for (; s->keys[n]; n++) {
        if (!strcmp(s->keys[n], "host")) ih = n;
        if (!strcmp(s->keys[n], "hostaddr")) ia = n;
        if (!strcmp(s->keys[n], "port")) ip = n;
    }
    const char *hosts = ih >= 0 ? s->vals[ih] : ia >= 0 ? s->vals[ia] : NULL;
    const char *ports = ip >= 0 ? s->vals[ip] : NULL;
    int count = list_len(hosts), first = 0;
    char host[256], port[32];
    store_db_primary(host, sizeof host, port, sizeof port);
    for (int i = 0; count > 1 && host[0] && i < count; i++) {
        char h[256], p[32];
        list_item(hosts, i, h, sizeof h);
        list_item(ports, list_len(ports) > 1 ? i : 0, p, sizeof p);
        if (!strcmp(h, host) && (!p[0] || !strcmp(p, port))) first = i;
    }
    if (count > 1 && store_db_is_down()) first = (first + s->skip) % count;
    const char **vals = malloc((size_t)(n + 1) * sizeof *vals);
    char rot[3][1024];
    if (!vals) return NULL;
    for (int i = 0; i <= n; i++)
        vals[i] = s->vals[i];
    int which[3] = {ih, ia, ip};
    for (int j = 0; j < 3 && first; j++)
        if (which[j] >= 0 && list_len(s->vals[which[j]]) > 1) {
            rotate(s->vals[which[j]], first, rot[j], sizeof rot[j]);
            vals[which[j]] = rot[j];
        }
    PGconn *c = PQconnectdbParams((const char *const *)s->keys, vals, 0);
    free(vals);
    return c;
}

/* A new connection for s (the old one closed). On failure the database is
 * down, with libpq's words for the log; detail (may be NULL) gets them
 * too. */
static enum usersd_code reconnect(struct pg_store *s, char *detail, size_t size,
                                  struct usersd_err *err)
{
    conn_close(s->conn);
    s->conn = connect_params(s);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        char line[200];
        one_line(line, sizeof line, s->conn ? PQerrorMessage(s->conn) : "out of memory");
        if (detail) snprintf(detail, size, "%s", line);
        store_db_down(line);
        s->skip++;
        conn_close(s->conn);
        s->conn = NULL;
        return pg_unavailable(err);
    }
    s->ending = false;
    PQsetNoticeReceiver(s->conn, on_notice, s);
    enum usersd_code code = session_setup(s, err);
    if (code) return code;
    store_db_set_primary(PQhost(s->conn), PQport(s->conn));
    s->skip = 0;
    if (s->connected_once) store_db_reconnected();
    s->connected_once = true;
    s->gen = store_db_up();
    return USERSD_OK;
}

/* Whether the connection is still there: a server that ended it (a
 * restart, a failover) has said so by now, and nothing was sent yet. */
static bool conn_alive(struct pg_store *s)
{
    struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
    for (int i = 0; i < 4 && !s->ending && PQstatus(s->conn) == CONNECTION_OK; i++)
        if (poll(&p, 1, 0) <= 0 || !PQconsumeInput(s->conn)) break;
    return !s->ending && PQstatus(s->conn) == CONNECTION_OK;
}

enum usersd_code pg_ensure_conn(struct pg_store *s, struct usersd_err *err)
{
    s->hinted = s->snap_fresh = false; /* a statement follows: what was read may change */
    bool gated = !s->watcher && store_db_gated();
    /* A connection made before the database came back is dropped: it may
     * lead to the old primary. */
    if (s->conn && !s->lost && !gated && s->gen == store_db_gen() && conn_alive(s))
        return USERSD_OK;
    if (s->in_tx) {
        s->lost = true;
        return err_set(err, USERSD_EDB,
                       "the database connection was lost in a transaction; nothing of it was "
                       "committed");
    }
    if (gated) return pg_unavailable(err);
    return reconnect(s, NULL, 0, err);
}

/* Runs a prepared statement (name NULL: planned for these parameters
 * only); NULL with err filled on failure. Outside a transaction, a
 * statement that certainly did not run because the session ended (a
 * restart the alive check could not see yet) runs once more on a new
 * connection; one whose answer was lost is never sent again, as it may
 * have been applied. */
PGresult *pg_run_sql(struct pg_store *s, const char *name, const char *sql, bool *prepared,
                     const struct params *p, struct usersd_err *err)
{
    for (int attempt = 0;; attempt++) {
        PGresult *r = run_sql_once(s, name, sql, prepared, p, err);
        if (r || attempt || s->conn || !s->not_run || s->in_tx || s->lost) return r;
    }
}

static PGresult *run_sql_once(struct pg_store *s, const char *name, const char *sql, bool *prepared,
                              const struct params *p, struct usersd_err *err)
{
    if (pg_ensure_conn(s, err)) {
        pg_last_fail = USERSD_EDB;
        return NULL;
    }
    PGresult *r = NULL;
    if (name && !*prepared) {
        r = pg_answer(s, PQsendPrepare(s->conn, name, sql, 0, NULL));
        if (PQresultStatus(r) != PGRES_COMMAND_OK) goto failed;
        PQclear(r);
        *prepared = true;
    }
    int n = p ? p->n : 0;
    const char *const *v = p ? p->v : NULL;
    const int *len = p ? p->len : NULL, *fmt = p ? p->fmt : NULL;
    r = pg_answer(s, name ? PQsendQueryPrepared(s->conn, name, n, v, len, fmt, 0)
                          : PQsendQueryParams(s->conn, sql, n, NULL, v, len, fmt, 0));
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
failed:
    pg_error(s, r, err);
    PQclear(r);
    return NULL;
}

static void stmt_name(enum pstmt id, char name[16])
{
    snprintf(name, 16, "u%d", (int)id);
}

/* Prepares statement id now if this connection has not yet (a pipeline
 * cannot wait for it). */
static enum usersd_code prepare(struct pg_store *s, enum pstmt id, struct usersd_err *err)
{
    if (s->prepared[id]) return USERSD_OK;
    char name[16];
    stmt_name(id, name);
    PGresult *r = pg_answer(s, PQsendPrepare(s->conn, name, psql[id], 0, NULL));
    enum usersd_code code = PQresultStatus(r) == PGRES_COMMAND_OK ? USERSD_OK : pg_error(s, r, err);
    PQclear(r);
    s->prepared[id] = code == USERSD_OK;
    return code;
}

/* Statements planned afresh on every run: a generic plan cannot see that
 * the range of $1 holds no row and would walk the whole table. They run
 * at most once a second. */
static const bool plan_each_time[P_NSTMT] = {[P_MESSAGE_EXPIRE] = true, [P_DND_EXPIRE] = true};

PGresult *pg_run(struct pg_store *s, enum pstmt id, const struct params *p, struct usersd_err *err)
{
    if (plan_each_time[id]) return pg_run_sql(s, NULL, psql[id], NULL, p, err);
    char name[16];
    stmt_name(id, name);
    return pg_run_sql(s, name, psql[id], &s->prepared[id], p, err);
}

/* Runs a statement whose result is not needed. */
enum usersd_code pg_run0(struct pg_store *s, enum pstmt id, const struct params *p,
                         struct usersd_err *err)
{
    PGresult *r = pg_run(s, id, p, err);
    PQclear(r);
    return r ? USERSD_OK : pg_last_fail;
}

enum usersd_code pg_begin(struct pg_store *s, struct usersd_err *err)
{
    if (s->batch) return pg_exec_plain(s, "SAVEPOINT op", err);
    enum usersd_code code = pg_ensure_conn(s, err);
    if (!code) code = pg_exec_plain(s, "BEGIN", err);
    s->in_tx = code == USERSD_OK;
    return code;
}

enum usersd_code pg_commit(struct pg_store *s, struct usersd_err *err)
{
    if (s->batch) return pg_exec_plain(s, "RELEASE SAVEPOINT op", err);
    s->in_tx = false;
    if (s->lost) {
        s->deadline_ms = PG_DEADLINE_MS;
        s->lost = s->notify = false;
        return err_set(err, USERSD_EDB,
                       "the database connection was lost in a transaction; nothing of it was "
                       "committed");
    }
    /* The NOTIFY in a transaction of its own right after (pg_wake_listeners):
     * if the COMMIT fails, it is not run. */
    enum usersd_code code =
        pg_exec_plain(s, s->notify ? "COMMIT; SELECT pg_notify('" CHANNEL "', '')" : "COMMIT", err);
    s->notify = false;
    s->deadline_ms = PG_DEADLINE_MS;
    /* No answer to the COMMIT: it may have happened or not. Reported as
     * failed (never done), and nothing retries it. */
    if (code && !s->conn)
        err_set(err, USERSD_EDB,
                "the database connection was lost during COMMIT; whether it was applied is "
                "unknown");
    return code;
}

void pg_rollback(struct pg_store *s)
{
    if (s->batch) {
        pg_exec_plain(s, "ROLLBACK TO SAVEPOINT op", NULL);
        pg_exec_plain(s, "RELEASE SAVEPOINT op", NULL);
        return;
    }
    if (s->in_tx && !s->lost && PQstatus(s->conn) == CONNECTION_OK)
        pg_exec_plain(s, "ROLLBACK", NULL);
    s->in_tx = s->lost = s->notify = false;
    s->deadline_ms = PG_DEADLINE_MS;
}

static enum usersd_code pg_batch(struct store *base, int what, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (what == BATCH_BEGIN) {
        if (s->batch) return err_set(err, USERSD_EINVAL, "a batch is already open");
        enum usersd_code code = pg_begin(s, err);
        s->batch = code == USERSD_OK;
        return code;
    }
    s->batch = false;
    if (what == BATCH_COMMIT) {
        enum usersd_code code = pg_commit(s, err);
        if (code) pg_rollback(s);
        return code;
    }
    pg_rollback(s);
    return USERSD_OK;
}

/* Wakes the listeners of every process once what was logged is visible:
 * after the commit of the open transaction (commit() sends the NOTIFY in
 * a transaction of its own, in the same round trip: a NOTIFY inside the
 * transaction would hold PostgreSQL's one lock that serializes notifying
 * commits through this commit's flush), or at once outside one. */
enum usersd_code pg_wake_listeners(struct pg_store *s, struct usersd_err *err)
{
    if (s->in_tx) {
        s->notify = true;
        return USERSD_OK;
    }
    return pg_run0(s, P_NOTIFY, NULL, err);
}

/* n integers as an array literal, "{1,2,3}" (malloc'd; NULL when out of
 * memory): the k-th at first[k * stride], so that a field of an array of
 * structs is one as well. */
char *pg_int_array(const int64_t *first, size_t n, size_t stride)
{
    size_t cap = n * 22 + 3, len = 1; /* an int64 and a comma each, the braces */
    char *list = malloc(cap);
    if (!list) return NULL;
    list[0] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(list + len, cap - len, "%s%lld", i ? "," : "",
                                (long long)first[i * stride]);
    snprintf(list + len, cap - len, "}");
    return list;
}

char *pg_id_array(const int64_t *ids, size_t n)
{
    return pg_int_array(ids, n, 1);
}

/* Prepared statement id between a savepoint and its release, pipelined
 * (one round trip), so that its failure undoes only itself (the caller
 * then rolls back to the savepoint: pg_undo_savepoint). rows(r, arg) reads
 * its result. Inside a batch only. */
enum usersd_code pg_pipe_in_savepoint(struct pg_store *s, enum pstmt id, const struct params *p,
                                      void (*rows)(PGresult *, void *), void *arg,
                                      struct usersd_err *err)
{
    enum usersd_code code = pg_ensure_conn(s, err);
    if (!code) code = prepare(s, id, err);
    if (code) return code;
    char name[16];
    stmt_name(id, name);
    bool sent =
        PQenterPipelineMode(s->conn) &&
        PQsendQueryParams(s->conn, "SAVEPOINT many", 0, NULL, NULL, NULL, NULL, 0) &&
        PQsendQueryPrepared(s->conn, name, p->n, p->v, p->len, p->fmt, 0) &&
        PQsendQueryParams(s->conn, "RELEASE SAVEPOINT many", 0, NULL, NULL, NULL, NULL, 0) &&
        PQpipelineSync(s->conn);
    /* Each statement's result, then the NULL that ends it; the sync last. */
    int64_t deadline = deadline_of(s);
    enum wait_rc w = WAIT_OK;
    for (int k = 0; sent && k <= 3; k++) {
        if ((w = await_answer(s, deadline)) != WAIT_OK) {
            sent = false;
            break;
        }
        PGresult *r = PQgetResult(s->conn);
        ExecStatusType st = PQresultStatus(r);
        if (k == 3)
            sent = st == PGRES_PIPELINE_SYNC;
        else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            code = code ? code : pg_error(s, r, err); /* the first; the rest were not run */
        else if (k == 1)
            rows(r, arg);
        PQclear(r);
        if (sent && k < 3 && (w = await_answer(s, deadline)) != WAIT_OK) {
            sent = false;
            break;
        }
        if (sent && k < 3 && (r = PQgetResult(s->conn)) != NULL) {
            PQclear(r);
            sent = false;
        }
    }
    if (sent && PQexitPipelineMode(s->conn)) return code;
    /* The conversation is lost: the connection goes, and with it (its
     * transaction is gone) the batch the call was in fails. */
    pg_conn_lost(s, w == WAIT_TIMEOUT);
    s->lost = true;
    return code ? code : pg_unavailable(err);
}

/* After pg_pipe_in_savepoint failed: undoes what it did. False when the batch
 * cannot go on (the connection is gone, or the rollback failed). */
bool pg_undo_savepoint(struct pg_store *s, struct usersd_err *err)
{
    if (s->lost || !s->conn || PQstatus(s->conn) != CONNECTION_OK) return false;
    pg_exec_plain(s, "ROLLBACK TO SAVEPOINT many", NULL);
    return pg_exec_plain(s, "RELEASE SAVEPOINT many", err) == USERSD_OK;
}

/* The database's version as the token check of this request saw it: a
 * snapshot names the transactions it sees committed, so while it is the
 * same, so is every row (any write anywhere moves it: a new transaction id,
 * or one of the open ones ended). It costs no round trip, and is there only
 * right after a token check (store.h: version_after_read). */
static enum usersd_code pg_data_version(struct store *base, uint64_t *version,
                                        struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!s->snap_fresh) return err_set(err, USERSD_EINVAL, "no snapshot read just now");
    s->snap_fresh = false;
    *version = s->snap;
    return USERSD_OK;
}

static void pg_read_hint(struct store *base, int64_t user_id)
{
    ((struct pg_store *)base)->hint_id = user_id;
}

/* ---- rows ------------------------------------------------------------- */

int64_t pg_col_int(PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int64_t pg_col_time(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? USERSD_NULL_TIME : pg_col_int(r, row, col);
}

void pg_col_text(char *dst, size_t size, PGresult *r, int row, int col)
{
    snprintf(dst, size, "%s", PQgetvalue(r, row, col));
}

/* USER_COLS from column c on. */
void pg_row_user_at(PGresult *r, int row, int c, struct usersd_user *u)
{
    u->id = pg_col_int(r, row, c);
    pg_col_text(u->username, sizeof u->username, r, row, c + 1);
    pg_col_text(u->email, sizeof u->email, r, row, c + 2);
    pg_col_text(u->first_name, sizeof u->first_name, r, row, c + 3);
    pg_col_text(u->last_name, sizeof u->last_name, r, row, c + 4);
    u->is_active = PQgetvalue(r, row, c + 5)[0] == 't';
    u->is_staff = PQgetvalue(r, row, c + 6)[0] == 't';
    u->date_joined = pg_col_int(r, row, c + 7);
    u->online_status = (enum usersd_status)pg_col_int(r, row, c + 8);
    u->last_seen = pg_col_time(r, row, c + 9);
    pg_col_text(u->status_text, sizeof u->status_text, r, row, c + 10);
    u->status_expires = pg_col_time(r, row, c + 11);
    u->status_manual = PQgetvalue(r, row, c + 12)[0] == 't';
    store_dnd_read(pg_col_time(r, row, c + 13), &u->dnd, &u->dnd_until);
}

void pg_row_user(PGresult *r, int row, struct usersd_user *u)
{
    pg_row_user_at(r, row, 0, u);
}

/* id, user_id, created, last_used, user_agent, client_ip from column col. */
void pg_row_session(PGresult *r, int row, int col, struct usersd_session *x)
{
    x->id = pg_col_int(r, row, col);
    x->user_id = pg_col_int(r, row, col + 1);
    x->created = pg_col_int(r, row, col + 2);
    x->last_used = pg_col_int(r, row, col + 3);
    pg_col_text(x->user_agent, sizeof x->user_agent, r, row, col + 4);
    pg_col_text(x->client_ip, sizeof x->client_ip, r, row, col + 5);
}

/* The first row as a user, or ENOTFOUND. Clears r. */
enum usersd_code pg_one_user(PGresult *r, struct usersd_user *out, struct usersd_err *err)
{
    if (!r) return pg_last_fail;
    enum usersd_code code = USERSD_OK;
    if (PQntuples(r) > 0)
        pg_row_user(r, 0, out);
    else
        code = err_set(err, USERSD_ENOTFOUND, "user not found");
    PQclear(r);
    return code;
}

enum usersd_code pg_one_int(PGresult *r, int64_t *out)
{
    if (!r) return pg_last_fail;
    *out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? pg_col_int(r, 0, 0) : 0;
    PQclear(r);
    return USERSD_OK;
}

/* Decodes the first rows of r, up to cap, into items (size bytes each) and
 * clears r; *n the count. A NULL r (run failed) gives pg_last_fail. */
enum usersd_code pg_rows_into(PGresult *r, size_t cap, void *items, size_t size, row_fn *row,
                              const void *ctx, size_t *n)
{
    if (!r) return pg_last_fail;
    for (*n = 0; *n < cap && *n < (size_t)PQntuples(r); (*n)++)
        row(r, (int)*n, (char *)items + *n * size, ctx);
    PQclear(r);
    return USERSD_OK;
}

/* The same into a new zeroed array (*items, never NULL on success: free()
 * it). Out of memory: *items NULL, r cleared. */
enum usersd_code pg_rows_new(PGresult *r, size_t cap, size_t size, row_fn *row, const void *ctx,
                             void **items, size_t *n, struct usersd_err *err)
{
    *items = NULL;
    *n = 0;
    if (!r) return pg_last_fail;
    size_t rows = (size_t)PQntuples(r);
    if (rows > cap) rows = cap;
    if (!(*items = calloc(rows ? rows : 1, size))) {
        PQclear(r);
        return err_set(err, USERSD_ENOMEM, NULL);
    }
    return pg_rows_into(r, rows, *items, size, row, ctx, n);
}

void pg_dec_user(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    pg_row_user(r, i, item);
}

void pg_dec_session(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    pg_row_session(r, i, 0, item);
}

/* ---- migrations and open ----------------------------------------------- */

static enum usersd_code migrate(struct pg_store *s, const struct store_progress *progress,
                                struct usersd_err *err)
{
    char sql[128];
    /* Two processes starting at once: the second waits here, then finds
     * the schema current. Session-level, so it spans the transactions. */
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", LOCK_MIGRATE);
    enum usersd_code code = pg_exec_plain(s, sql, err);
    if (code) return code;
    code =
        pg_exec_plain(s,
                      "CREATE TABLE IF NOT EXISTS usersd_migrations (version INTEGER PRIMARY KEY, "
                      "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                      err);
    int version = 0;
    if (!code) {
        PGresult *r = PQexec(s->conn, "SELECT coalesce(max(version), 0) FROM usersd_migrations");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
        else
            code = pg_error(s, r, err);
        PQclear(r);
    }
    int n = 0;
    while (store_pg_migrations[n])
        n++;
    if (!code && version > n)
        code =
            err_set(err, USERSD_EDB,
                    "the database schema (version %d) is newer than this usersd (%d)", version, n);
    for (int i = version; !code && i < n; i++) {
        store_progress(progress, "migration", i, n);
        code = pg_exec_plain(s, "BEGIN", err);
        /* A step that rewrites a big table takes longer than a request may. */
        if (!code) code = pg_lift_timeout(s, err);
        if (!code) code = pg_exec_plain(s, store_pg_migrations[i], err);
        if (!code) {
            snprintf(sql, sizeof sql, "INSERT INTO usersd_migrations (version) VALUES (%d)", i + 1);
            code = pg_exec_plain(s, sql, err);
        }
        code = code ? (pg_exec_plain(s, "ROLLBACK", NULL), code) : pg_exec_plain(s, "COMMIT", err);
        s->deadline_ms = PG_DEADLINE_MS;
        if (code && err) {
            char msg[160];
            memcpy(msg, err->msg, sizeof msg - 1);
            msg[sizeof msg - 1] = 0;
            snprintf(err->msg, sizeof err->msg, "cannot migrate the database to version %d: %s",
                     i + 1, msg);
        }
    }
    if (!code && version < n) store_progress(progress, "migration", n, n);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", LOCK_MIGRATE);
    pg_exec_plain(s, sql, NULL);
    return code;
}

static void pg_close(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!s) return;
    conn_close(s->conn);
    free_params(s);
    for (int i = 0; i < 32; i++)
        free(s->list_sql[i]);
    free(s);
}

static enum usersd_code pg_open(struct store **out, const char *url,
                                const struct store_progress *progress, struct usersd_err *err)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, USERSD_ENOMEM, NULL);
    s->base.ops = &store_pg_ops;
    s->base.version_after_read = true;
    s->deadline_ms = PG_DEADLINE_MS;
    char line[200];
    if (!parse_params(s, url, line, sizeof line)) {
        pg_close(&s->base);
        return err_set(err, USERSD_EINVAL, "bad PostgreSQL URL: %s", line);
    }
    /* While the database is known to be down, a new handle (a worker's
     * first request) fails at once like every other call. */
    if (store_db_gated()) {
        pg_close(&s->base);
        return pg_unavailable(err);
    }
    line[0] = 0;
    enum usersd_code code = reconnect(s, line, sizeof line, err);
    if (code && line[0]) err_set(err, USERSD_EDB, "cannot connect to PostgreSQL: %s", line);
    if (!code) code = migrate(s, progress, err);
    if (code) {
        pg_close(&s->base);
        return code;
    }
    *out = &s->base;
    return USERSD_OK;
}

static enum usersd_code pg_ping(struct store *base, struct usersd_err *err)
{
    return pg_run0((struct pg_store *)base, P_PING, NULL, err);
}

/* usersd_db_check: a round trip within timeout_ms on the watcher's own
 * connection. A connection found closed is re-made once at once (a restart
 * that is over); no answer in time, or no connection to any host, and the
 * database is down. */
static enum usersd_code pg_check(struct store *base, int timeout_ms, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    s->watcher = true;
    store_db_watched();
    s->deadline_ms = timeout_ms;
    enum usersd_code code = USERSD_EDB;
    for (int attempt = 0; attempt < 2 && code; attempt++) {
        bool had = s->conn != NULL;
        PGresult *r = pg_run(s, P_PING, NULL, err);
        code = r ? USERSD_OK : pg_last_fail;
        PQclear(r);
        if (code && (!had || store_db_gated()))
            break; /* a connection attempt failed, or a timeout */
    }
    s->deadline_ms = PG_DEADLINE_MS;
    if (!code) s->gen = store_db_up();
    return code;
}

const struct store_ops store_pg_ops = {
    .scheme = "postgresql",
    .alias = "postgres",
    .full_url = true,
    .open = pg_open,
    .close = pg_close,
    .ping = pg_ping,
    .check = pg_check,
    .user_insert = pg_user_insert,
    .user_get = pg_user_get,
    .user_get_auth = pg_user_get_auth,
    .user_update = pg_user_update,
    .user_delete = pg_user_delete,
    .user_count = pg_user_count,
    .user_list = pg_user_list,
    .online_page = pg_online_page,
    .users_by_ids = pg_users_by_ids,
    .stats = pg_stats,
    .set_status = pg_set_status_op,
    .set_status_many = pg_set_status_many,
    .touch = pg_touch,
    .data_version = pg_data_version,
    .refresh = pg_refresh,
    .decay = pg_decay,
    .changes = pg_changes,
    .changes_head = pg_changes_head,
    .changes_prune = pg_changes_prune,
    .changes_wait = pg_changes_wait,
    .dump_users = pg_dump_users,
    .dump_sessions = pg_dump_sessions,
    .load = pg_load,
    .load_finish = pg_load_finish,
    .seed = pg_seed,
    .batch = pg_batch,
    .session_insert = pg_session_insert,
    .token_user = pg_token_user,
    .read_hint = pg_read_hint,
    .session_list = pg_session_list,
    .session_end = pg_session_end,
    .session_expire = pg_session_expire,
    .session_refresh = pg_session_refresh,
    .session_count = pg_session_count,
    .status_message = pg_status_message,
    .status_message_expire = pg_status_message_expire,
    .dnd = pg_dnd,
    .dnd_expire = pg_dnd_expire,
    .presence_counts = pg_presence_counts,
    .history_read = pg_history_read,
    .history_mark = pg_history_mark,
    .history_prune = pg_history_prune,
    .history_sample = pg_history_sample,
    .minutes_read = pg_minutes_read,
    .dump_history = pg_dump_history,
    .dump_minutes = pg_dump_minutes,
    .load_history = pg_load_history,
    .load_begin = pg_load_begin,
    .load_abort = pg_load_abort,
    .session_seed = pg_session_seed,
};
