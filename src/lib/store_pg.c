/* store_pg.c — the PostgreSQL driver (libpq), for many usersd processes on
 * many machines sharing one database.
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

extern const char *const store_pg_migrations[];

#define LOCK_MIGRATE 0x75736d67LL /* advisory lock key; the log's claims are migration 011's */
#define CHANNEL "usersd_presence"
/* A round trip's limit: past the server's statement_timeout (4 s), so a
 * slow statement is cancelled by the server, and within the 5 s API.md
 * §13 allows a request. */
#define PG_DEADLINE_MS 4500
#define PG_SESSION_SETTINGS                                                                        \
    "SET statement_timeout = '4s'; SET lock_timeout = '3s'; SET TIME ZONE 'UTC'"

/* A user's columns in the order row_user_at reads them, named through T
 * ("" for none, "u." for a table or alias u). */
#define USER_COLS_OF(T)                                                                            \
    T "id, " T "username, " T "email, " T "first_name, " T "last_name, " T "is_active, " T         \
      "is_staff, " T "date_joined, " T "online_status, " T "last_seen, " T "status_text, " T       \
      "status_expires, " T "status_manual, " T "dnd_until"
#define USER_NCOLS 14 /* what follows a user's columns starts at this column */
#define USER_COLS USER_COLS_OF("")
/* Named through users, beside presence (which has two of them). */
#define USERS_COLS USER_COLS_OF("users.")
/* The token's user, then its session: id, created, last_used (columns
 * USER_NCOLS to USER_NCOLS + 2). */
#define TOKEN_COLS USER_COLS_OF("u.") ", s.id, s.created, s.last_used"
#define TOKEN_FROM "FROM sessions s JOIN users u ON u.id = s.user_id"
#define HINTED_COLS USER_COLS_OF("t.") /* usersd_read_hint's user, column USER_NCOLS + 3 on */

enum pstmt {
    P_INSERT,
    P_GET,
    P_GET_AUTH,
    P_UPDATE,
    P_UPDATE_PW,
    P_DELETE,
    P_COUNT,
    P_ONLINE,
    P_BY_IDS,
    P_STATS,
    P_SET_PRESENCE,
    P_LOG_CHANGE,
    P_NOTIFY,
    P_TOUCH,
    P_SESSION_TOUCH,
    P_REFRESH,
    P_SESSION_INSERT,
    P_TOKEN_USER,
    P_TOKEN_USER_HINT,
    P_SESSION_LIST,
    P_USER_PRESENCE,
    P_SESSION_DELETE_ONE,
    P_SESSION_DELETE_ALL,
    P_SESSION_ACTIVE,
    P_GO_OFFLINE,
    P_SESSIONS_EXPIRED,
    P_SESSION_REFRESH,
    P_SESSION_COUNT,
    P_PING,
    P_DECAY_PENDING,
    P_DECAY_OFFLINE,
    P_DECAY_AWAY,
    P_CHANGES,
    P_HISTORY_INSERT,
    P_HISTORY_DELETE_USER,
    P_HISTORY_SINCE,
    P_HISTORY_FIRST,
    P_HISTORY_ROWS,
    P_HISTORY_NEXT,
    P_HISTORY_MARK,
    P_HISTORY_MARK_UNSET,
    P_HISTORY_PRUNE,
    P_MINUTE_INSERT,
    P_MINUTE_CLOSE,
    P_PEAK_RESET,
    P_MINUTES,
    P_LIVE_PEAK,
    P_DUMP_HISTORY,
    P_DUMP_MINUTES,
    P_MESSAGE_SET,
    P_MESSAGE_CLEAR,
    P_LOG_MESSAGE,
    P_MESSAGE_PENDING,
    P_MESSAGE_EXPIRE,
    P_DND_SET,
    P_DND_CLEAR,
    P_LOG_DND,
    P_DND_PENDING,
    P_DND_EXPIRE,
    P_PRESENCE_COUNTS,
    P_PRUNED,
    P_HEAD,
    P_PRUNE,
    P_DUMP_USERS,
    P_DUMP_SESSIONS,
    P_LOAD_IDS,
    P_LOAD_SEQ,
    P_SEED,
    P_MAX_ID,
    P_NSTMT
};

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
    /* The counters are 64 rows that add up (migration 011). */
    [P_COUNT] = "SELECT sum(total) FROM user_counts",
    /* The count (kept by the counters) and the page in one statement: one
     * round trip, one snapshot. The page is cut from presence's index alone
     * (rows skipped by OFFSET are not read) and only its users are joined.
     * An empty page is one row of NULLs. */
    [P_ONLINE] = "SELECT c.online, u.* FROM (SELECT sum(online) AS online FROM user_counts) c "
                 "LEFT JOIN LATERAL (SELECT " USERS_COLS
                 " FROM (SELECT user_id FROM presence WHERE online_status = 2 "
                 "ORDER BY last_seen DESC NULLS LAST, user_id LIMIT $1 OFFSET $2) o "
                 "JOIN users ON users.id = o.user_id) u ON true "
                 "ORDER BY u.last_seen DESC NULLS LAST, u.id ASC",
    [P_BY_IDS] = "SELECT " USER_COLS " FROM users WHERE id = ANY ($1::bigint[])",
    /* Counters kept by a trigger (migration 003): no scan at any size. */
    [P_STATS] =
        "SELECT sum(total), sum(active), sum(staff), sum(online), sum(away) FROM user_counts",
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
    [P_SESSIONS_EXPIRED] = "SELECT id, user_id FROM sessions WHERE last_used < $1 "
                           "ORDER BY last_used LIMIT $2",
    /* Sessions $2 (an array) used at $1, and their users seen then: one
     * round trip for a chunk of open streams. Returns the sessions that
     * still exist. */
    [P_SESSION_REFRESH] =
        "WITH s AS (UPDATE sessions SET last_used = greatest(last_used, $1) "
        "WHERE id = ANY ($2::bigint[]) RETURNING id, user_id), "
        "t AS (UPDATE users SET last_seen = $1 WHERE id IN (SELECT user_id FROM s) "
        "AND NOT status_manual AND (last_seen IS NULL OR last_seen < $1)) "
        "SELECT id FROM s",
    [P_SESSION_COUNT] = "SELECT sum(sessions) FROM user_counts",
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
        "FROM user_counts ON CONFLICT (minute) DO NOTHING RETURNING minute",
    /* The minute before closes with the peak the counters kept meanwhile. */
    [P_MINUTE_CLOSE] = "UPDATE presence_minutes SET online_max = greatest(online_max, (SELECT "
                       "online_peak FROM user_counts WHERE id = 1)) WHERE minute = (SELECT "
                       "max(minute) FROM presence_minutes WHERE minute < $1)",
    [P_PEAK_RESET] = "UPDATE user_counts SET online_peak = (SELECT sum(online) FROM user_counts) "
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

struct pg_store {
    struct store base; /* first: the driver is reached through it */
    PGconn *conn;      /* NULL after it was dropped */
    /* The connection parameters: the URL's, then usersd's defaults for
     * what it does not say (NULL-terminated, owned). */
    char **keys, **vals;
    int deadline_ms;     /* a round trip's limit (0: none, while the statement timeout is lifted) */
    unsigned gen;        /* store_db_gen() when the connection was made */
    bool watcher;        /* usersd_db_check's handle: reconnects while down */
    bool connected_once; /* a later connection is a reconnect */
    int skip;            /* failed connection attempts in a row: start that many hosts later */
    /* The last answer() lost the connection, and the statement certainly
     * did not run: it could not be sent, or the server ended the session
     * with an error for it (a restart, a terminated backend). */
    bool not_run;
    bool ending; /* the server said FATAL between statements: its session is over */
    bool prepared[P_NSTMT];
    bool in_tx;
    bool notify; /* the open transaction logged: wake the listeners after its commit */
    /* The connection was lost with a transaction open: every call fails
     * until that transaction is rolled back, so that nothing runs outside
     * it on a new connection and no COMMIT succeeds there for nothing. */
    bool lost;
    bool batch; /* inside usersd_batch_begin: transactions are savepoints */
    bool listening;
    /* usersd_read_hint: the user to read with the next token check
     * (0: none), and that user as read there: valid until the next
     * statement on this connection (hinted; every way to the server —
     * ensure_conn, exec_plain, run_list, run_once — clears it), not found
     * when !hinted_found. */
    int64_t hint_id;
    bool hinted, hinted_found;
    struct usersd_user hinted_user;
    /* The data version (pg_data_version): a hash of the snapshot the last
     * token check read in, valid while no other statement followed
     * (snap_fresh, cleared where hinted is) and given out once. */
    uint64_t snap;
    bool snap_fresh;
    char *list_sql[32]; /* list queries, prepared as "list<i>" on demand */
    bool list_prepared[32];
};

/* ---- parameters --------------------------------------------------------- */

struct params {
    const char *v[16];
    int len[16];
    int fmt[16];
    int n;
    char buf[16][24];
};

static void p_int(struct params *p, int64_t x)
{
    snprintf(p->buf[p->n], sizeof p->buf[0], "%lld", (long long)x);
    p->v[p->n] = p->buf[p->n];
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void p_time(struct params *p, int64_t t)
{
    if (t == USERSD_NULL_TIME) {
        p->v[p->n] = NULL;
        p->len[p->n] = 0;
        p->fmt[p->n++] = 0;
    } else {
        p_int(p, t);
    }
}

static void p_text(struct params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void p_bool(struct params *p, bool b)
{
    p_text(p, b ? "t" : "f");
}

static void p_bytea(struct params *p, const unsigned char *b, int len)
{
    p->v[p->n] = (const char *)b;
    p->len[p->n] = len;
    p->fmt[p->n++] = 1;
}

/* username, email, first_name, last_name, is_active, is_staff: the order
 * P_INSERT and P_UPDATE take them in. */
static void p_profile(struct params *p, const struct usersd_user *u)
{
    p_text(p, u->username);
    p_text(p, u->email);
    p_text(p, u->first_name);
    p_text(p, u->last_name);
    p_bool(p, u->is_active);
    p_bool(p, u->is_staff);
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
static _Thread_local enum usersd_code last_fail = USERSD_EDB;

static enum usersd_code pg_error(struct pg_store *s, PGresult *r, struct usersd_err *err)
{
    last_fail = pg_error_code(s, r, err);
    return last_fail;
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
static enum usersd_code unavailable(struct usersd_err *err)
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
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) return unavailable(err);
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
static void conn_lost(struct pg_store *s, bool timed_out)
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
static PGresult *answer(struct pg_store *s, int sent)
{
    s->not_run = !sent;
    if (!sent) {
        conn_lost(s, false);
        return NULL;
    }
    int64_t deadline = deadline_of(s);
    PGresult *last = NULL, *r;
    for (;;) {
        enum wait_rc w = await_answer(s, deadline);
        if (w != WAIT_OK) {
            PQclear(last);
            conn_lost(s, w == WAIT_TIMEOUT);
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
        conn_lost(s, false);
    }
    return last;
}

static enum usersd_code exec_plain(struct pg_store *s, const char *sql, struct usersd_err *err)
{
    s->hinted = s->snap_fresh = false;
    PGresult *r = answer(s, s->conn && PQsendQuery(s->conn, sql));
    ExecStatusType st = PQresultStatus(r);
    enum usersd_code code = USERSD_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) code = pg_error(s, r, err);
    PQclear(r);
    return code;
}

/* Lifts the statement timeout for the open transaction (a migration, a
 * bulk load: an index build at millions of rows takes longer than any
 * request may), and the round trips' deadline with it until it ends. */
static enum usersd_code lift_timeout(struct pg_store *s, struct usersd_err *err)
{
    s->deadline_ms = 0;
    return exec_plain(s, "SET LOCAL statement_timeout = 0", err);
}

/* Session settings every new connection gets. A stuck statement never
 * holds a request (or the server) for long. */
static enum usersd_code session_setup(struct pg_store *s, struct usersd_err *err)
{
    memset(s->prepared, 0, sizeof s->prepared);
    memset(s->list_prepared, 0, sizeof s->list_prepared);
    s->in_tx = false;
    enum usersd_code code = exec_plain(s, PG_SESSION_SETTINGS, err);
    if (!code && s->listening) code = exec_plain(s, "LISTEN " CHANNEL, err);
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
        return unavailable(err);
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

static enum usersd_code ensure_conn(struct pg_store *s, struct usersd_err *err)
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
    if (gated) return unavailable(err);
    return reconnect(s, NULL, 0, err);
}

/* Runs a prepared statement (name NULL: planned for these parameters
 * only); NULL with err filled on failure. Outside a transaction, a
 * statement that certainly did not run because the session ended (a
 * restart the alive check could not see yet) runs once more on a new
 * connection; one whose answer was lost is never sent again, as it may
 * have been applied. */
static PGresult *run_sql(struct pg_store *s, const char *name, const char *sql, bool *prepared,
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
    if (ensure_conn(s, err)) {
        last_fail = USERSD_EDB;
        return NULL;
    }
    PGresult *r = NULL;
    if (name && !*prepared) {
        r = answer(s, PQsendPrepare(s->conn, name, sql, 0, NULL));
        if (PQresultStatus(r) != PGRES_COMMAND_OK) goto failed;
        PQclear(r);
        *prepared = true;
    }
    int n = p ? p->n : 0;
    const char *const *v = p ? p->v : NULL;
    const int *len = p ? p->len : NULL, *fmt = p ? p->fmt : NULL;
    r = answer(s, name ? PQsendQueryPrepared(s->conn, name, n, v, len, fmt, 0)
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
    PGresult *r = answer(s, PQsendPrepare(s->conn, name, psql[id], 0, NULL));
    enum usersd_code code = PQresultStatus(r) == PGRES_COMMAND_OK ? USERSD_OK : pg_error(s, r, err);
    PQclear(r);
    s->prepared[id] = code == USERSD_OK;
    return code;
}

/* Statements planned afresh on every run: a generic plan cannot see that
 * the range of $1 holds no row and would walk the whole table. They run
 * at most once a second. */
static const bool plan_each_time[P_NSTMT] = {[P_MESSAGE_EXPIRE] = true, [P_DND_EXPIRE] = true};

static PGresult *run(struct pg_store *s, enum pstmt id, const struct params *p,
                     struct usersd_err *err)
{
    if (plan_each_time[id]) return run_sql(s, NULL, psql[id], NULL, p, err);
    char name[16];
    stmt_name(id, name);
    return run_sql(s, name, psql[id], &s->prepared[id], p, err);
}

/* Runs a statement whose result is not needed. */
static enum usersd_code run0(struct pg_store *s, enum pstmt id, const struct params *p,
                             struct usersd_err *err)
{
    PGresult *r = run(s, id, p, err);
    PQclear(r);
    return r ? USERSD_OK : last_fail;
}

static enum usersd_code begin(struct pg_store *s, struct usersd_err *err)
{
    if (s->batch) return exec_plain(s, "SAVEPOINT op", err);
    enum usersd_code code = ensure_conn(s, err);
    if (!code) code = exec_plain(s, "BEGIN", err);
    s->in_tx = code == USERSD_OK;
    return code;
}

static enum usersd_code commit(struct pg_store *s, struct usersd_err *err)
{
    if (s->batch) return exec_plain(s, "RELEASE SAVEPOINT op", err);
    s->in_tx = false;
    if (s->lost) {
        s->deadline_ms = PG_DEADLINE_MS;
        s->lost = s->notify = false;
        return err_set(err, USERSD_EDB,
                       "the database connection was lost in a transaction; nothing of it was "
                       "committed");
    }
    /* The NOTIFY in a transaction of its own right after (wake_listeners):
     * if the COMMIT fails, it is not run. */
    enum usersd_code code =
        exec_plain(s, s->notify ? "COMMIT; SELECT pg_notify('" CHANNEL "', '')" : "COMMIT", err);
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

static void rollback(struct pg_store *s)
{
    if (s->batch) {
        exec_plain(s, "ROLLBACK TO SAVEPOINT op", NULL);
        exec_plain(s, "RELEASE SAVEPOINT op", NULL);
        return;
    }
    if (s->in_tx && !s->lost && PQstatus(s->conn) == CONNECTION_OK) exec_plain(s, "ROLLBACK", NULL);
    s->in_tx = s->lost = s->notify = false;
    s->deadline_ms = PG_DEADLINE_MS;
}

static enum usersd_code pg_batch(struct store *base, int what, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (what == BATCH_BEGIN) {
        if (s->batch) return err_set(err, USERSD_EINVAL, "a batch is already open");
        enum usersd_code code = begin(s, err);
        s->batch = code == USERSD_OK;
        return code;
    }
    s->batch = false;
    if (what == BATCH_COMMIT) {
        enum usersd_code code = commit(s, err);
        if (code) rollback(s);
        return code;
    }
    rollback(s);
    return USERSD_OK;
}

/* ---- rows ------------------------------------------------------------- */

static int64_t col_int(PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int64_t col_time(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? USERSD_NULL_TIME : col_int(r, row, col);
}

static void col_text(char *dst, size_t size, PGresult *r, int row, int col)
{
    snprintf(dst, size, "%s", PQgetvalue(r, row, col));
}

/* USER_COLS from column c on. */
static void row_user_at(PGresult *r, int row, int c, struct usersd_user *u)
{
    u->id = col_int(r, row, c);
    col_text(u->username, sizeof u->username, r, row, c + 1);
    col_text(u->email, sizeof u->email, r, row, c + 2);
    col_text(u->first_name, sizeof u->first_name, r, row, c + 3);
    col_text(u->last_name, sizeof u->last_name, r, row, c + 4);
    u->is_active = PQgetvalue(r, row, c + 5)[0] == 't';
    u->is_staff = PQgetvalue(r, row, c + 6)[0] == 't';
    u->date_joined = col_int(r, row, c + 7);
    u->online_status = (enum usersd_status)col_int(r, row, c + 8);
    u->last_seen = col_time(r, row, c + 9);
    col_text(u->status_text, sizeof u->status_text, r, row, c + 10);
    u->status_expires = col_time(r, row, c + 11);
    u->status_manual = PQgetvalue(r, row, c + 12)[0] == 't';
    store_dnd_read(col_time(r, row, c + 13), &u->dnd, &u->dnd_until);
}

static void row_user(PGresult *r, int row, struct usersd_user *u)
{
    row_user_at(r, row, 0, u);
}

/* id, user_id, created, last_used, user_agent, client_ip from column col. */
static void row_session(PGresult *r, int row, int col, struct usersd_session *x)
{
    x->id = col_int(r, row, col);
    x->user_id = col_int(r, row, col + 1);
    x->created = col_int(r, row, col + 2);
    x->last_used = col_int(r, row, col + 3);
    col_text(x->user_agent, sizeof x->user_agent, r, row, col + 4);
    col_text(x->client_ip, sizeof x->client_ip, r, row, col + 5);
}

/* The first row as a user, or ENOTFOUND. Clears r. */
static enum usersd_code one_user(PGresult *r, struct usersd_user *out, struct usersd_err *err)
{
    if (!r) return last_fail;
    enum usersd_code code = USERSD_OK;
    if (PQntuples(r) > 0)
        row_user(r, 0, out);
    else
        code = err_set(err, USERSD_ENOTFOUND, "user not found");
    PQclear(r);
    return code;
}

static enum usersd_code one_int(PGresult *r, int64_t *out)
{
    if (!r) return last_fail;
    *out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? col_int(r, 0, 0) : 0;
    PQclear(r);
    return USERSD_OK;
}

/* Decodes row i of a result into item; ctx is what the caller passed on. */
typedef void row_fn(PGresult *r, int i, void *item, const void *ctx);

/* Decodes the first rows of r, up to cap, into items (size bytes each) and
 * clears r; *n the count. A NULL r (run failed) gives last_fail. */
static enum usersd_code rows_into(PGresult *r, size_t cap, void *items, size_t size, row_fn *row,
                                  const void *ctx, size_t *n)
{
    if (!r) return last_fail;
    for (*n = 0; *n < cap && *n < (size_t)PQntuples(r); (*n)++)
        row(r, (int)*n, (char *)items + *n * size, ctx);
    PQclear(r);
    return USERSD_OK;
}

/* The same into a new zeroed array (*items, never NULL on success: free()
 * it). Out of memory: *items NULL, r cleared. */
static enum usersd_code rows_new(PGresult *r, size_t cap, size_t size, row_fn *row, const void *ctx,
                                 void **items, size_t *n, struct usersd_err *err)
{
    *items = NULL;
    *n = 0;
    if (!r) return last_fail;
    size_t rows = (size_t)PQntuples(r);
    if (rows > cap) rows = cap;
    if (!(*items = calloc(rows ? rows : 1, size))) {
        PQclear(r);
        return err_set(err, USERSD_ENOMEM, NULL);
    }
    return rows_into(r, rows, *items, size, row, ctx, n);
}

static void dec_user(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    row_user(r, i, item);
}

static void dec_session(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    row_session(r, i, 0, item);
}

/* ---- migrations and open ----------------------------------------------- */

static enum usersd_code migrate(struct pg_store *s, const struct store_progress *progress,
                                struct usersd_err *err)
{
    char sql[128];
    /* Two processes starting at once: the second waits here, then finds
     * the schema current. Session-level, so it spans the transactions. */
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", LOCK_MIGRATE);
    enum usersd_code code = exec_plain(s, sql, err);
    if (code) return code;
    code = exec_plain(s,
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
        code = exec_plain(s, "BEGIN", err);
        /* A step that rewrites a big table takes longer than a request may. */
        if (!code) code = lift_timeout(s, err);
        if (!code) code = exec_plain(s, store_pg_migrations[i], err);
        if (!code) {
            snprintf(sql, sizeof sql, "INSERT INTO usersd_migrations (version) VALUES (%d)", i + 1);
            code = exec_plain(s, sql, err);
        }
        code = code ? (exec_plain(s, "ROLLBACK", NULL), code) : exec_plain(s, "COMMIT", err);
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
    exec_plain(s, sql, NULL);
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
        return unavailable(err);
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
    return run0((struct pg_store *)base, P_PING, NULL, err);
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
        PGresult *r = run(s, P_PING, NULL, err);
        code = r ? USERSD_OK : last_fail;
        PQclear(r);
        if (code && (!had || store_db_gated()))
            break; /* a connection attempt failed, or a timeout */
    }
    s->deadline_ms = PG_DEADLINE_MS;
    if (!code) s->gen = store_db_up();
    return code;
}

/* ---- users --------------------------------------------------------------- */

static enum usersd_code pg_user_insert(struct store *base, struct usersd_user *u,
                                       const char *pwhash, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    p_profile(&p, u);
    p_text(&p, pwhash);
    p_int(&p, u->date_joined);
    return one_user(run(s, P_INSERT, &p, err), u, err);
}

static enum usersd_code pg_user_get(struct store *base, int64_t id, struct usersd_user *out,
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
    p_int(&p, id);
    return one_user(run(s, P_GET, &p, err), out, err);
}

static enum usersd_code pg_user_get_auth(struct store *base, const char *username,
                                         struct usersd_user *out, char *pwhash,
                                         struct usersd_err *err)
{
    struct params p = {0};
    p_text(&p, username);
    PGresult *r = run((struct pg_store *)base, P_GET_AUTH, &p, err);
    if (r && PQntuples(r) > 0) col_text(pwhash, PASSWORD_HASH_MAX, r, 0, USER_NCOLS);
    return one_user(r, out, err);
}

static enum usersd_code end_sessions(struct pg_store *s, const struct store_session_end *e,
                                     int64_t *ended, struct usersd_err *err);

static enum usersd_code pg_user_update(struct store *base, const struct usersd_user *u,
                                       const char *pwhash, const struct store_session_end *end,
                                       struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    struct params p = {0};
    p_profile(&p, u);
    p_int(&p, u->id);
    PGresult *r = run(s, P_UPDATE, &p, err);
    if (!r) goto fail;
    bool found = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    if (!found) {
        rollback(s);
        return err_set(err, USERSD_ENOTFOUND, "user not found");
    }
    if (pwhash) {
        struct params q = {0};
        p_text(&q, pwhash);
        p_int(&q, u->id);
        if (run0(s, P_UPDATE_PW, &q, err)) goto fail;
    }
    /* A new password ends the other sessions; a deactivated user's sessions
     * all end, and so does its presence. */
    if (pwhash || !u->is_active) {
        struct store_session_end e = *end;
        e.user_id = u->id;
        e.session_id = 0;
        if (!u->is_active) e.keep_id = 0, e.force = true;
        int64_t n;
        if (end_sessions(s, &e, &n, err)) goto fail;
    }
    return commit(s, err);
fail:
    rollback(s);
    return last_fail;
}

/* Wakes the listeners of every process once what was logged is visible:
 * after the commit of the open transaction (commit() sends the NOTIFY in
 * a transaction of its own, in the same round trip: a NOTIFY inside the
 * transaction would hold PostgreSQL's one lock that serializes notifying
 * commits through this commit's flush), or at once outside one. */
static enum usersd_code wake_listeners(struct pg_store *s, struct usersd_err *err)
{
    if (s->in_tx) {
        s->notify = true;
        return USERSD_OK;
    }
    return run0(s, P_NOTIFY, NULL, err);
}

static enum usersd_code log_entry(struct pg_store *s, enum usersd_change_kind kind, int64_t user_id,
                                  const char *username, int status, int64_t last_seen, int64_t at,
                                  int64_t session_id, int prev, struct usersd_err *err);

/* The user's name and presence, its row locked; ENOTFOUND. */
static enum usersd_code user_presence(struct pg_store *s, int64_t id, char *username, size_t size,
                                      int *status, int64_t *last_seen, struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, id);
    PGresult *r = run(s, P_USER_PRESENCE, &p, err);
    if (!r) return last_fail;
    enum usersd_code code = USERSD_OK;
    if (PQntuples(r) > 0) {
        col_text(username, size, r, 0, 0);
        *status = (int)col_int(r, 0, 1);
        *last_seen = col_time(r, 0, 2);
    } else {
        code = err_set(err, USERSD_ENOTFOUND, "user not found");
    }
    PQclear(r);
    return code;
}

/* Deletes the user's session one, or all but keep; *n gets how many. */
static enum usersd_code delete_sessions(struct pg_store *s, int64_t user_id, int64_t one,
                                        int64_t keep, int64_t unused_since, int64_t *n,
                                        struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, user_id);
    p_int(&p, one ? one : keep);
    if (one) p_int(&p, unused_since > 0 ? unused_since : INT64_MAX);
    PGresult *r = run(s, one ? P_SESSION_DELETE_ONE : P_SESSION_DELETE_ALL, &p, err);
    if (!r) return last_fail;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return USERSD_OK;
}

static enum usersd_code pg_user_delete(struct store *base, int64_t id, int64_t now,
                                       struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE;
    int64_t last_seen = 0, n = 0;
    if ((code = user_presence(s, id, name, sizeof name, &status, &last_seen, err))) goto out;
    if (status != USERSD_OFFLINE &&
        (code = log_entry(s, USERSD_CHANGE_PRESENCE, id, name, USERSD_OFFLINE, last_seen, now, 0,
                          status, err)))
        goto out;
    if ((code = delete_sessions(s, id, 0, 0, 0, &n, err))) goto out;
    if (n && (code = log_entry(s, USERSD_CHANGE_SESSION_END, id, name, USERSD_OFFLINE, last_seen,
                               now, 0, USERSD_OFFLINE, err)))
        goto out;
    struct params p = {0};
    p_int(&p, id);
    /* Its history goes with it (the log keeps the last hour for streams). */
    if ((code = run0(s, P_HISTORY_DELETE_USER, &p, err)) || (code = run0(s, P_DELETE, &p, err)))
        goto out;
    if ((status != USERSD_OFFLINE || n) && (code = wake_listeners(s, err))) goto out;
    return commit(s, err);
out:
    rollback(s);
    return code;
}

static enum usersd_code pg_user_count(struct store *base, int64_t *out, struct usersd_err *err)
{
    return one_int(run((struct pg_store *)base, P_COUNT, NULL, err), out);
}

/* Copies up to cap user rows of r into a new array. */
static enum usersd_code collect(PGresult *r, size_t cap, struct usersd_page *out,
                                struct usersd_err *err)
{
    if (!r) return last_fail;
    void *users;
    enum usersd_code code =
        rows_new(r, cap, sizeof *out->users, dec_user, NULL, &users, &out->count, err);
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
            return run_sql(s, NULL, sql, NULL, p, err);
        s->list_sql[slot] = strdup(sql);
        if (!s->list_sql[slot]) {
            err_set(err, USERSD_ENOMEM, NULL);
            return NULL;
        }
        s->list_prepared[slot] = false;
    }
    char name[16];
    snprintf(name, sizeof name, "list%d", slot);
    return run_sql(s, name, s->list_sql[slot], &s->list_prepared[slot], p, err);
}

/* Ordered by last_seen, the list joins presence (users has no index on
 * it) and filters its status there, so one index gives the order. */
static enum usersd_code pg_user_list(struct store *base, const struct usersd_list_query *q,
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
        p_text(&p, pattern);
        ADD("(username ILIKE $1 OR email ILIKE $1 OR first_name ILIKE $1 OR last_name ILIKE $1)");
    }
    if (q->online_status >= 0) {
        p_int(&p, q->online_status);
        ADD("%s.online_status = $%d", by_seen ? "p" : "users", p.n);
    }
    if (q->is_active >= 0) {
        p_bool(&p, q->is_active);
        ADD("is_active = $%d", p.n);
    }
    if (q->is_staff >= 0) {
        p_bool(&p, q->is_staff);
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
        code = one_int(run_list(s, sql, &p, err), &out->total_count);
    }
    if (!code) {
        int n = p.n;
        p_int(&p, q->per_page);
        p_int(&p, (int64_t)(q->page - 1) * q->per_page);
        snprintf(sql, sizeof sql,
                 "SELECT " USERS_COLS " FROM %s%s ORDER BY %s LIMIT $%d OFFSET $%d", from, where,
                 order, n + 1, n + 2);
        code = collect(run_list(s, sql, &p, err), (size_t)q->per_page, out, err);
    }
    free(pattern);
    return code;
}

static enum usersd_code pg_online_page(struct store *base, int page, int per_page,
                                       struct usersd_page *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    p_int(&p, per_page);
    p_int(&p, (int64_t)(page - 1) * per_page);
    PGresult *r = run(s, P_ONLINE, &p, err);
    if (!r) return last_fail;
    size_t n = (size_t)PQntuples(r);
    out->total_count = n ? col_int(r, 0, 0) : 0;
    out->users = calloc(n ? n : 1, sizeof *out->users);
    out->count = 0;
    if (!out->users) {
        PQclear(r);
        return err_set(err, USERSD_ENOMEM, NULL);
    }
    for (size_t i = 0; i < n && out->count < (size_t)per_page; i++)
        if (!PQgetisnull(r, (int)i, 1)) row_user_at(r, (int)i, 1, &out->users[out->count++]);
    PQclear(r);
    return USERSD_OK;
}

/* n integers as an array literal, "{1,2,3}" (malloc'd; NULL when out of
 * memory): the k-th at first[k * stride], so that a field of an array of
 * structs is one as well. */
static char *int_array(const int64_t *first, size_t n, size_t stride)
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

static char *id_array(const int64_t *ids, size_t n)
{
    return int_array(ids, n, 1);
}

/* One statement for all of them (the bulk status read asks up to 100). */
static enum usersd_code pg_users_by_ids(struct store *base, const int64_t *ids, size_t n,
                                        struct usersd_user *out, size_t *found,
                                        struct usersd_err *err)
{
    *found = 0;
    if (!n) return USERSD_OK;
    char *list = id_array(ids, n);
    if (!list) return err_set(err, USERSD_ENOMEM, NULL);
    struct params p = {0};
    p_text(&p, list);
    PGresult *r = run((struct pg_store *)base, P_BY_IDS, &p, err);
    free(list);
    return rows_into(r, n, out, sizeof *out, dec_user, NULL, found);
}

static enum usersd_code pg_stats(struct store *base, struct usersd_stats *out,
                                 struct usersd_err *err)
{
    PGresult *r = run((struct pg_store *)base, P_STATS, NULL, err);
    if (!r) return last_fail;
    out->total_users = col_int(r, 0, 0);
    out->active_users = col_int(r, 0, 1);
    out->staff_users = col_int(r, 0, 2);
    out->online_users = col_int(r, 0, 3);
    out->away_users = col_int(r, 0, 4);
    PQclear(r);
    return USERSD_OK;
}

/* ---- presence ------------------------------------------------------------ */

static enum usersd_code pg_set_status(struct pg_store *s_, const struct store_status_change *c,
                                      struct usersd_user *out, struct usersd_err *err);

static enum usersd_code pg_set_status_op(struct store *base, const struct store_status_change *c,
                                         struct usersd_user *out, struct usersd_err *err)
{
    return pg_set_status((struct pg_store *)base, c, out, err);
}

/* The arguments of P_SET_PRESENCE for n changes: eight arrays in
 * PostgreSQL's text form ('{1,2,NULL}'), then whether history is kept.
 * The arrays are malloc'd (presence_args_free). */
#define PRESENCE_ARRAYS 8
struct presence_args {
    char *a[PRESENCE_ARRAYS];
    struct params p;
};

static void presence_args_free(struct presence_args *pa)
{
    for (int i = 0; i < PRESENCE_ARRAYS; i++)
        free(pa->a[i]);
}

static enum usersd_code presence_args(struct pg_store *s, const struct store_status_job *jobs,
                                      size_t n, struct presence_args *pa, struct usersd_err *err)
{
    memset(pa, 0, sizeof *pa);
    size_t cap = n * 22 + 3; /* an int64 and a comma each, the braces */
    for (int i = 0; i < PRESENCE_ARRAYS; i++)
        if (!(pa->a[i] = malloc(cap))) {
            presence_args_free(pa);
            return err_set(err, USERSD_ENOMEM, NULL);
        }
    size_t len[PRESENCE_ARRAYS] = {0};
    for (size_t k = 0; k < n; k++) {
        const struct store_status_change *c = &jobs[k].c;
        char seen[24] = "NULL";
        if (c->last_seen != USERSD_NULL_TIME)
            snprintf(seen, sizeof seen, "%lld", (long long)c->last_seen);
        const char *sep = k ? "," : "{";
        len[0] +=
            (size_t)snprintf(pa->a[0] + len[0], cap - len[0], "%s%lld", sep, (long long)c->user_id);
        len[1] += (size_t)snprintf(pa->a[1] + len[1], cap - len[1], "%s%d", sep, (int)c->status);
        len[2] += (size_t)snprintf(pa->a[2] + len[2], cap - len[2], "%s%s", sep, seen);
        len[3] +=
            (size_t)snprintf(pa->a[3] + len[3], cap - len[3], "%s%c", sep, c->touch ? 't' : 'f');
        len[4] += (size_t)snprintf(pa->a[4] + len[4], cap - len[4], "%s%lld", sep,
                                   (long long)(c->touch ? c->touch_before : 0));
        len[5] += (size_t)snprintf(pa->a[5] + len[5], cap - len[5], "%s%lld", sep,
                                   (long long)(c->touch ? c->session_id : 0));
        len[6] +=
            (size_t)snprintf(pa->a[6] + len[6], cap - len[6], "%s%lld", sep, (long long)c->now);
        /* how (migration 009): 0 ends a manual status, 1 sets one, 2 automatic */
        int how = c->flags & USERSD_STATUS_AUTO ? 2 : c->flags & USERSD_STATUS_MANUAL ? 1 : 0;
        len[7] += (size_t)snprintf(pa->a[7] + len[7], cap - len[7], "%s%d", sep, how);
    }
    for (int i = 0; i < PRESENCE_ARRAYS; i++) {
        snprintf(pa->a[i] + len[i], cap - len[i], "%s", n ? "}" : "{}");
        p_text(&pa->p, pa->a[i]);
    }
    p_bool(&pa->p, s->base.history);
    return USERSD_OK;
}

/* Hands each row of P_SET_PRESENCE to its job (o_ord, from 1, first); a
 * job without a row had no user. True when one changed a status (o_changed,
 * the last column). */
static bool presence_rows(PGresult *r, struct store_status_job *jobs, size_t n)
{
    bool changed = false;
    for (size_t k = 0; k < n; k++)
        jobs[k].rc = err_set(jobs[k].err, USERSD_ENOTFOUND, "user not found");
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t ord = col_int(r, i, 0);
        if (ord < 1 || (size_t)ord > n) continue;
        struct store_status_job *j = &jobs[ord - 1];
        row_user_at(r, i, 1, j->out);
        j->rc = USERSD_OK;
        changed |= PQgetvalue(r, i, 1 + USER_NCOLS)[0] == 't';
    }
    return changed;
}

/* Runs P_SET_PRESENCE for the jobs as one statement (atomic on its own). */
static enum usersd_code presence_call(struct pg_store *s, struct store_status_job *jobs, size_t n,
                                      struct usersd_err *err)
{
    struct presence_args pa;
    enum usersd_code code = presence_args(s, jobs, n, &pa, err);
    if (code) return code;
    PGresult *r = run(s, P_SET_PRESENCE, &pa.p, err);
    presence_args_free(&pa);
    if (!r) return last_fail;
    bool changed = presence_rows(r, jobs, n);
    PQclear(r);
    /* Committed (or in the open transaction): a lost wake-up costs the
     * other processes at most their poll interval, not the change. */
    if (changed) wake_listeners(s, NULL);
    return USERSD_OK;
}

/* One statement (usersd_set_presence takes the lock, writes the row, the
 * log, the history and wakes the listeners in the database); inside a
 * batch, a savepoint around it so that its failure undoes only itself. */
static enum usersd_code pg_set_status(struct pg_store *s, const struct store_status_change *c,
                                      struct usersd_user *out, struct usersd_err *err)
{
    struct store_status_job job = {.c = *c, .out = out, .err = err};
    job.c.touch = false;
    enum usersd_code code = s->batch ? begin(s, err) : USERSD_OK;
    if (code) return code;
    code = presence_call(s, &job, 1, err);
    if (!code) code = job.rc;
    if (s->batch) {
        if (code == USERSD_OK || code == USERSD_ENOTFOUND) {
            enum usersd_code done = commit(s, err);
            if (done) code = done;
        }
        if (code && code != USERSD_ENOTFOUND) rollback(s);
    }
    return code;
}

/* Prepared statement id between a savepoint and its release, pipelined
 * (one round trip), so that its failure undoes only itself (the caller
 * then rolls back to the savepoint: undo_savepoint). rows(r, arg) reads
 * its result. Inside a batch only. */
static enum usersd_code pipe_in_savepoint(struct pg_store *s, enum pstmt id, const struct params *p,
                                          void (*rows)(PGresult *, void *), void *arg,
                                          struct usersd_err *err)
{
    enum usersd_code code = ensure_conn(s, err);
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
    conn_lost(s, w == WAIT_TIMEOUT);
    s->lost = true;
    return code ? code : unavailable(err);
}

/* After pipe_in_savepoint failed: undoes what it did. False when the batch
 * cannot go on (the connection is gone, or the rollback failed). */
static bool undo_savepoint(struct pg_store *s, struct usersd_err *err)
{
    if (s->lost || !s->conn || PQstatus(s->conn) != CONNECTION_OK) return false;
    exec_plain(s, "ROLLBACK TO SAVEPOINT many", NULL);
    return exec_plain(s, "RELEASE SAVEPOINT many", err) == USERSD_OK;
}

struct presence_jobs {
    struct store_status_job *jobs;
    size_t n;
    bool changed;
};

static void presence_jobs_rows(PGresult *r, void *arg)
{
    struct presence_jobs *pj = arg;
    pj->changed = presence_rows(r, pj->jobs, pj->n);
}

/* The writer's batch: one usersd_set_presence for every change, in a
 * savepoint of its own inside a batch. */
static enum usersd_code pipe_presence(struct pg_store *s, struct store_status_job *jobs, size_t n,
                                      struct usersd_err *err)
{
    if (!s->batch) return presence_call(s, jobs, n, err);
    struct presence_args pa;
    enum usersd_code code = presence_args(s, jobs, n, &pa, err);
    if (code) return code;
    struct presence_jobs pj = {jobs, n, false};
    code = pipe_in_savepoint(s, P_SET_PRESENCE, &pa.p, presence_jobs_rows, &pj, err);
    presence_args_free(&pa);
    if (!code && pj.changed) s->notify = true; /* the batch is a transaction */
    return code;
}

static enum usersd_code pg_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                                 int64_t before, bool *updated, struct usersd_err *err);

/* A failed batch statement undid all of its changes: then each is applied
 * on its own (with its caller's activity), so that only what fails fails. */
static enum usersd_code pg_set_status_many(struct store *base, struct store_status_job *jobs,
                                           size_t n)
{
    struct pg_store *s = (struct pg_store *)base;
    struct usersd_err err = {0};
    enum usersd_code code = n ? pipe_presence(s, jobs, n, &err) : USERSD_OK;
    if (!code) return USERSD_OK;
    bool fatal = s->batch ? !undo_savepoint(s, &err)
                          : s->lost || !s->conn || PQstatus(s->conn) != CONNECTION_OK;
    if (fatal) {
        for (size_t i = 0; i < n; i++) {
            jobs[i].rc = code;
            if (jobs[i].err) *jobs[i].err = err;
        }
        return code;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_status_job *j = &jobs[i];
        j->rc = pg_set_status(s, &j->c, j->out, j->err);
        int64_t seen = j->rc ? 0 : j->out->last_seen;
        bool due = j->c.session_id || seen == USERSD_NULL_TIME || seen < j->c.touch_before;
        bool updated = false;
        if (!j->rc && j->c.touch && due &&
            pg_touch(base, j->c.user_id, j->c.session_id, j->c.now, j->c.touch_before, &updated,
                     NULL) == USERSD_OK &&
            updated)
            j->out->last_seen = j->c.now;
    }
    return USERSD_OK;
}

/* Runs a statement binding (now, id, before); *changed: a row changed. */
static enum usersd_code run_touch(struct pg_store *s, enum pstmt id_stmt, int64_t id, int64_t now,
                                  int64_t before, bool *changed, struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, now);
    p_int(&p, id);
    p_int(&p, before);
    PGresult *r = run(s, id_stmt, &p, err);
    if (!r) return last_fail;
    *changed = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return USERSD_OK;
}

static enum usersd_code pg_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                                 int64_t before, bool *updated, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!session) return run_touch(s, P_TOUCH, id, now, before, updated, err);
    enum usersd_code code = begin(s, err); /* the user and the session: one commit */
    if (code) return code;
    bool used;
    if (!(code = run_touch(s, P_TOUCH, id, now, before, updated, err)) &&
        !(code = run_touch(s, P_SESSION_TOUCH, session, now, before, &used, err)))
        return commit(s, err);
    rollback(s);
    return code;
}

static void no_rows(PGresult *r, void *arg)
{
    (void)r;
    (void)arg;
}

/* One statement for the lot (usersd_refresh, migration 010). On its own it
 * commits without waiting for the disk (a refresh may be lost to a crash);
 * inside a batch, in a savepoint, so that its failure costs only itself. */
static enum usersd_code pg_refresh(struct store *base, const struct usersd_refresh *r, size_t n,
                                   int64_t interval_us, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    const size_t stride = sizeof *r / sizeof(int64_t);
    char *a[3] = {int_array(&r->user_id, n, stride), int_array(&r->session_id, n, stride),
                  int_array(&r->at, n, stride)};
    enum usersd_code code = USERSD_OK;
    if (!a[0] || !a[1] || !a[2]) code = err_set(err, USERSD_ENOMEM, NULL);
    struct params p = {0};
    for (int i = 0; i < 3; i++)
        p_text(&p, a[i]);
    p_int(&p, interval_us);
    p_bool(&p, !s->batch);
    if (!code && s->batch) {
        /* Undone, the batch goes on; or the batch fails at its next step. */
        if ((code = pipe_in_savepoint(s, P_REFRESH, &p, no_rows, NULL, err)))
            undo_savepoint(s, NULL);
    } else if (!code) {
        code = run0(s, P_REFRESH, &p, err);
    }
    for (int i = 0; i < 3; i++)
        free(a[i]);
    return code;
}

/* Users decayed per transaction, and transactions per sweep at most: row
 * locks are held briefly (a thousand changes in one transaction also keep
 * the counters' rows from growing long chains of versions; all of a
 * million's 90,000 due at once took minutes, past the statement timeout,
 * and was retried for ever). */
#define DECAY_CHUNK 1000
#define DECAY_ROUNDS 100

static enum usersd_code pg_decay(struct store *base, int64_t now, int64_t away_before,
                                 int64_t offline_before, int64_t *changed, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *changed = 0;
    struct params p = {0};
    p_time(&p, away_before);
    p_time(&p, offline_before);
    PGresult *r = run(s, P_DECAY_PENDING, &p, err);
    if (!r) return last_fail;
    bool pending = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    int64_t cut[2] = {offline_before, away_before};
    enum pstmt step[2] = {P_DECAY_OFFLINE, P_DECAY_AWAY};
    bool more = pending;
    for (int round = 0; more && round < DECAY_ROUNDS; round++) {
        enum usersd_code code = begin(s, err);
        if (code) return code;
        int64_t done = 0;
        more = false;
        for (int i = 0; i < 2; i++) {
            if (cut[i] == USERSD_NULL_TIME) continue;
            p = (struct params){0};
            p_int(&p, now);
            p_int(&p, cut[i]);
            p_bool(&p, s->base.history);
            p_int(&p, DECAY_CHUNK);
            int64_t n = 0;
            if (one_int(run(s, step[i], &p, err), &n)) goto fail;
            done += n;
            more = more || n == DECAY_CHUNK;
        }
        if (done && wake_listeners(s, err)) goto fail;
        if ((code = commit(s, err))) return code;
        *changed += done; /* committed */
    }
    return USERSD_OK;
fail:
    rollback(s);
    return last_fail;
}

static void dec_change(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    struct usersd_change *c = item;
    c->seq = col_int(r, i, 0);
    c->user_id = col_int(r, i, 1);
    col_text(c->username, sizeof c->username, r, i, 2);
    c->online_status = (enum usersd_status)col_int(r, i, 3);
    c->last_seen = col_time(r, i, 4);
    c->at = col_int(r, i, 5);
    c->kind = (enum usersd_change_kind)col_int(r, i, 6);
    c->session_id = col_int(r, i, 7);
    col_text(c->status_text, sizeof c->status_text, r, i, 8);
    c->status_expires = col_time(r, i, 9);
    store_dnd_read(col_time(r, i, 10), &c->dnd, &c->dnd_until);
}

static enum usersd_code pg_changes(struct store *base, int64_t since, int limit, unsigned kinds,
                                   struct usersd_changes *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    p_int(&p, since);
    p_int(&p, limit);
    p_int(&p, kinds);
    PGresult *r = run(s, P_CHANGES, &p, err);
    if (!r) return last_fail;
    void *items;
    enum usersd_code code =
        rows_new(r, SIZE_MAX, sizeof *out->items, dec_change, NULL, &items, &out->count, err);
    out->items = items;
    if (code) return code;
    int64_t pruned = 0; /* after the read, so a prune in between is seen */
    code = one_int(run(s, P_PRUNED, NULL, err), &pruned);
    if (!code && since < pruned)
        code = err_set(err, USERSD_EGONE,
                       "changes after %lld were pruned; read the current state and continue "
                       "from the newest sequence",
                       (long long)since);
    if (code) usersd_changes_free(out);
    return code;
}

static enum usersd_code pg_changes_head(struct store *base, int64_t *seq, struct usersd_err *err)
{
    return one_int(run((struct pg_store *)base, P_HEAD, NULL, err), seq);
}

static enum usersd_code pg_changes_prune(struct store *base, int64_t before, struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, before);
    return run0((struct pg_store *)base, P_PRUNE, &p, err);
}

static enum usersd_code pg_changes_wait(struct store *base, int timeout_ms, bool *notified,
                                        struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *notified = false;
    enum usersd_code code = ensure_conn(s, err);
    if (!code && !s->listening) {
        code = exec_plain(s, "LISTEN " CHANNEL, err);
        s->listening = code == USERSD_OK;
    }
    if (code) return code;
    /* poll, not select: with thousands of streams open, a reconnected
     * socket's number is past FD_SETSIZE. */
    struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0 && !PQconsumeInput(s->conn)) {
        conn_lost(s, false);
        return unavailable(err);
    }
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        *notified = true;
        PQfreemem(n);
    }
    return USERSD_OK;
}

/* ---- copying ------------------------------------------------------------ */

static void dec_user_row(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    struct store_user_row *x = item;
    row_user(r, i, &x->user);
    col_text(x->pwhash, sizeof x->pwhash, r, i, USER_NCOLS);
}

static void dec_session_row(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    struct store_session_row *x = item;
    memset(x, 0, sizeof *x);
    size_t len = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 0), &len);
    if (b && len == STORE_TOKEN_HASH_LEN) memcpy(x->hash, b, len);
    PQfreemem(b);
    row_session(r, i, 1, &x->s);
}

static enum usersd_code pg_dump_users(struct store *base, int64_t after, size_t cap,
                                      struct store_user_row *rows, size_t *n,
                                      struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, after);
    p_int(&p, (int64_t)cap);
    return rows_into(run((struct pg_store *)base, P_DUMP_USERS, &p, err), cap, rows, sizeof *rows,
                     dec_user_row, NULL, n);
}

static enum usersd_code pg_dump_sessions(struct store *base, int64_t after, size_t cap,
                                         struct store_session_row *rows, size_t *n,
                                         struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, after);
    p_int(&p, (int64_t)cap);
    return rows_into(run((struct pg_store *)base, P_DUMP_SESSIONS, &p, err), cap, rows,
                     sizeof *rows, dec_session_row, NULL, n);
}

/* Bulk loads send rows with COPY … FROM STDIN in its text format: one
 * round trip for thousands of rows instead of one each. A batch's lines are
 * built in one growing buffer. */
struct copybuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static char *cb_room(struct copybuf *b, size_t more)
{
    if (b->oom) return NULL;
    if (b->len + more > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + more)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

/* Each field is followed by sep: '\t' between fields, '\n' after the last. */
static void cb_text(struct copybuf *b, const char *t, char sep)
{
    size_t n = strlen(t);
    char *o = cb_room(b, 2 * n + 1);
    if (!o) return;
    for (const char *c = t; *c; c++) {
        char e = *c == '\\' ? '\\' : *c == '\t' ? 't' : *c == '\n' ? 'n' : *c == '\r' ? 'r' : 0;
        if (e) {
            *o++ = '\\';
            *o++ = e;
        } else {
            *o++ = *c;
        }
    }
    *o++ = sep;
    b->len = (size_t)(o - b->p);
}

static void cb_int(struct copybuf *b, int64_t x, char sep)
{
    char *o = cb_room(b, 22);
    if (!o) return;
    char digits[20];
    int n = 0;
    uint64_t v = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    do
        digits[n++] = (char)('0' + v % 10);
    while (v /= 10);
    if (x < 0) *o++ = '-';
    while (n)
        *o++ = digits[--n];
    *o++ = sep;
    b->len = (size_t)(o - b->p);
}

static void cb_null(struct copybuf *b, char sep)
{
    char *o = cb_room(b, 3);
    if (!o) return;
    memcpy(o, "\\N", 2);
    o[2] = sep;
    b->len += 3;
}

static void cb_time(struct copybuf *b, int64_t t, char sep)
{
    if (t == USERSD_NULL_TIME)
        cb_null(b, sep);
    else
        cb_int(b, t, sep);
}

/* bytea in its hex form, the backslash escaped for COPY: \\x0a1b… */
static void cb_bytea(struct copybuf *b, const unsigned char *v, size_t n, char sep)
{
    static const char hex[] = "0123456789abcdef";
    char *o = cb_room(b, 2 * n + 4);
    if (!o) return;
    *o++ = '\\';
    *o++ = '\\';
    *o++ = 'x';
    for (size_t i = 0; i < n; i++) {
        *o++ = hex[v[i] >> 4];
        *o++ = hex[v[i] & 15];
    }
    *o++ = sep;
    b->len = (size_t)(o - b->p);
}

/* Runs one COPY … FROM STDIN with the buffer's lines (the buffer is freed). */
static enum usersd_code copy_in(struct pg_store *s, const char *sql, struct copybuf *b,
                                struct usersd_err *err)
{
    enum usersd_code code = USERSD_OK;
    if (b->oom) {
        free(b->p);
        return err_set(err, USERSD_ENOMEM, NULL);
    }
    PGresult *r = PQexec(s->conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        code = pg_error(s, r, err);
        PQclear(r);
        free(b->p);
        return code;
    }
    PQclear(r);
    bool sent = true;
    for (size_t off = 0; sent && off < b->len;) { /* PQputCopyData takes an int */
        size_t n = b->len - off < (1u << 20) ? b->len - off : (1u << 20);
        sent = PQputCopyData(s->conn, b->p + off, (int)n) == 1;
        off += n;
    }
    free(b->p);
    if (PQputCopyEnd(s->conn, sent ? NULL : "usersd could not send the rows") != 1) sent = false;
    while ((r = PQgetResult(s->conn))) {
        if (!code && PQresultStatus(r) != PGRES_COMMAND_OK) code = pg_error(s, r, err);
        PQclear(r);
    }
    if (!code && !sent) code = pg_error(s, NULL, err);
    return code;
}

/* Inside a bulk load (load_begin): the rows go in as they are, ids included. */
static enum usersd_code pg_load(struct store *base, const struct store_user_row *users, size_t nu,
                                const struct store_session_row *sessions, size_t ns,
                                struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct copybuf b = {0};
    for (size_t i = 0; i < nu; i++) {
        const struct usersd_user *u = &users[i].user;
        cb_int(&b, u->id, '\t');
        cb_text(&b, u->username, '\t');
        cb_text(&b, u->email, '\t');
        cb_text(&b, u->first_name, '\t');
        cb_text(&b, u->last_name, '\t');
        cb_text(&b, u->is_active ? "t" : "f", '\t');
        cb_text(&b, u->is_staff ? "t" : "f", '\t');
        cb_int(&b, u->date_joined, '\t');
        cb_int(&b, u->online_status, '\t');
        cb_time(&b, u->last_seen, '\t');
        if (u->status_text[0])
            cb_text(&b, u->status_text, '\t');
        else
            cb_null(&b, '\t');
        cb_time(&b, u->status_text[0] ? u->status_expires : USERSD_NULL_TIME, '\t');
        cb_text(&b, u->status_manual ? "t" : "f", '\t');
        cb_time(&b, store_dnd_col(u->dnd, u->dnd_until), '\t');
        cb_text(&b, users[i].pwhash, '\n');
    }
    enum usersd_code code =
        nu ? copy_in(s, "COPY users (" USER_COLS ", password) FROM STDIN", &b, err) : USERSD_OK;
    b = (struct copybuf){0};
    for (size_t i = 0; !code && i < ns; i++) {
        const struct usersd_session *x = &sessions[i].s;
        cb_bytea(&b, sessions[i].hash, STORE_TOKEN_HASH_LEN, '\t');
        cb_int(&b, x->id, '\t');
        cb_int(&b, x->user_id, '\t');
        cb_int(&b, x->created, '\t');
        cb_int(&b, x->last_used, '\t');
        cb_text(&b, x->user_agent, '\t');
        cb_text(&b, x->client_ip, '\n');
    }
    if (!code && ns)
        code = copy_in(s,
                       "COPY sessions (hash, id, user_id, created, last_used, user_agent, "
                       "client_ip) FROM STDIN",
                       &b, err);
    return code;
}

/* Inside a bulk load (load_begin). */
static enum usersd_code pg_load_history(struct store *base, const struct store_history_row *h,
                                        size_t nh, const struct store_minute_row *m, size_t nm,
                                        struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct copybuf b = {0};
    for (size_t i = 0; i < nh; i++) {
        cb_int(&b, h[i].user_id, '\t');
        cb_int(&b, h[i].at, '\t');
        cb_int(&b, h[i].status, '\t');
        cb_int(&b, h[i].prev, '\n');
    }
    enum usersd_code code =
        nh ? copy_in(s, "COPY presence_history (user_id, at, status, prev) FROM STDIN", &b, err)
           : USERSD_OK;
    b = (struct copybuf){0};
    for (size_t i = 0; !code && i < nm; i++) {
        cb_int(&b, m[i].minute, '\t');
        cb_int(&b, m[i].online, '\t');
        cb_int(&b, m[i].away, '\t');
        cb_int(&b, m[i].offline, '\t');
        cb_int(&b, m[i].online_max, '\n');
    }
    if (!code && nm)
        code = copy_in(s,
                       "COPY presence_minutes (minute, online, away, offline, online_max) "
                       "FROM STDIN",
                       &b, err);
    return code;
}

/* What a bulk load sets aside: the counter triggers (disabled; the load
 * recounts once) and the secondary indexes of the loaded tables (dropped,
 * their definitions kept in a temporary table that ends with the
 * transaction, and rebuilt at the end: one sort each rather than a
 * million insertions, the trigram GIN indexes above all). DDL is
 * transactional here, so a rollback, or a client killed mid-way, puts all
 * of it back. No statement timeout: an index build at 10 million users
 * takes longer than any request may. */
static const char load_begin_sql[] =
    "ALTER TABLE users DISABLE TRIGGER users_count_insert_delete; "
    "ALTER TABLE sessions DISABLE TRIGGER sessions_count; "
    "CREATE TEMP TABLE usersd_load_ddl ON COMMIT DROP AS "
    "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def "
    "FROM pg_index i WHERE i.indrelid IN ('users'::regclass, 'sessions'::regclass, "
    "'presence_history'::regclass, 'presence'::regclass) AND NOT i.indisprimary "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid); "
    "DO $$ DECLARE r record; BEGIN "
    "FOR r IN SELECT name FROM usersd_load_ddl LOOP EXECUTE 'DROP INDEX ' || r.name; END LOOP; "
    "END $$";

/* The counters as the triggers would have kept them: every count exact,
 * and the online peak raised to the online count (inserts only raise it). */
static const char load_counts_sql[] =
    "UPDATE user_counts SET total = 0, active = 0, staff = 0, online = 0, away = 0, sessions = 0 "
    "WHERE id <> 1; "
    "UPDATE user_counts SET total = c.total, active = c.active, staff = c.staff, "
    "online = c.online, away = c.away, online_peak = greatest(online_peak, c.online), "
    "sessions = (SELECT count(*) FROM sessions) "
    "FROM (SELECT count(*) AS total, count(*) FILTER (WHERE is_active) AS active, "
    "count(*) FILTER (WHERE is_staff) AS staff, "
    "count(*) FILTER (WHERE online_status = 2) AS online, "
    "count(*) FILTER (WHERE online_status = 1) AS away FROM users) AS c WHERE user_counts.id = 1; "
    "ALTER TABLE users ENABLE TRIGGER users_count_insert_delete; "
    "ALTER TABLE sessions ENABLE TRIGGER sessions_count; "
    "ANALYZE users, sessions, presence_history, presence";

static enum usersd_code pg_load_begin(struct store *base, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = begin(s, err);
    if (!code) code = lift_timeout(s, err);
    return code ? code : exec_plain(s, load_begin_sql, err);
}

static enum usersd_code pg_load_finish(struct store *base, int64_t head,
                                       const struct store_progress *progress,
                                       struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    PGresult *r = PQexec(s->conn, "SELECT def FROM usersd_load_ddl ORDER BY name");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        enum usersd_code code = pg_error(s, r, err);
        PQclear(r);
        return code;
    }
    int n = PQntuples(r);
    enum usersd_code code = USERSD_OK;
    for (int i = 0; !code && i < n; i++) {
        store_progress(progress, "indexes", i, n + 1);
        code = exec_plain(s, PQgetvalue(r, i, 0), err);
    }
    PQclear(r);
    store_progress(progress, "indexes", n, n + 1);
    if (!code) code = exec_plain(s, load_counts_sql, err);
    if (!code) code = run0(s, P_LOAD_IDS, NULL, err);
    if (!code && head >= 0) {
        struct params p = {0};
        p_int(&p, head);
        code = run0(s, P_LOAD_SEQ, &p, err);
    }
    if (!code) code = commit(s, err);
    if (!code) store_progress(progress, "indexes", n + 1, n + 1);
    return code;
}

static void pg_load_abort(struct store *base)
{
    rollback((struct pg_store *)base);
}

static enum usersd_code pg_seed(struct store *base, int64_t *first_id, int64_t from, int64_t n,
                                int64_t now, const char *pwhash, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!from) {
        enum usersd_code code = one_int(run(s, P_MAX_ID, NULL, err), first_id);
        if (code) return code;
    }
    struct params p = {0};
    p_int(&p, from);
    p_text(&p, pwhash);
    p_int(&p, now);
    p_int(&p, n);
    p_int(&p, *first_id);
    return run0(s, P_SEED, &p, err);
}

/* ---- sessions ----------------------------------------------------------- */

/* Appends one entry to the change log in the open transaction (the log
 * lock is already held); a presence change (from prev to status) goes into
 * the history too, when kept. */
static enum usersd_code log_entry(struct pg_store *s, enum usersd_change_kind kind, int64_t user_id,
                                  const char *username, int status, int64_t last_seen, int64_t at,
                                  int64_t session_id, int prev, struct usersd_err *err)
{
    struct params q = {0};
    p_int(&q, user_id);
    p_text(&q, username);
    p_int(&q, status);
    p_time(&q, last_seen);
    p_int(&q, at);
    p_int(&q, kind);
    p_time(&q, kind == USERSD_CHANGE_SESSION_END ? session_id : USERSD_NULL_TIME);
    enum usersd_code code = run0(s, P_LOG_CHANGE, &q, err);
    if (code || kind != USERSD_CHANGE_PRESENCE || !s->base.history) return code;
    q = (struct params){0};
    p_int(&q, user_id);
    p_int(&q, at);
    p_int(&q, status);
    p_int(&q, prev);
    return run0(s, P_HISTORY_INSERT, &q, err);
}

/* Ends sessions and applies the presence rule (store.h) in the open
 * transaction: the user's row lock first, so concurrent ends of one user's
 * sessions take turns and the last one sees the others gone. */
static enum usersd_code end_sessions(struct pg_store *s, const struct store_session_end *e,
                                     int64_t *ended, struct usersd_err *err)
{
    char name[USERSD_USERNAME_MAX + 1];
    int status = USERSD_OFFLINE;
    int64_t last_seen = 0;
    *ended = 0;
    enum usersd_code code =
        user_presence(s, e->user_id, name, sizeof name, &status, &last_seen, err);
    if (!code)
        code =
            delete_sessions(s, e->user_id, e->session_id, e->keep_id, e->unused_since, ended, err);
    if (code) return code;
    if (e->session_id && !*ended) return err_set(err, USERSD_ENOTFOUND, "session not found");
    if (*ended && ((code = log_entry(s, USERSD_CHANGE_SESSION_END, e->user_id, name, status,
                                     last_seen, e->now, e->session_id, status, err)) ||
                   (code = wake_listeners(s, err))))
        return code;
    if ((!*ended && !e->force) || status == USERSD_OFFLINE) return USERSD_OK;
    struct params p = {0};
    p_int(&p, e->user_id);
    p_int(&p, e->active_after);
    PGresult *r = run(s, P_SESSION_ACTIVE, &p, err);
    if (!r) return last_fail;
    bool active = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (active) return USERSD_OK;
    p = (struct params){0};
    p_int(&p, e->user_id);
    p_int(&p, e->now);
    if (!(r = run(s, P_GO_OFFLINE, &p, err))) return last_fail;
    bool changed = PQntuples(r) > 0;
    PQclear(r);
    if (!changed) return USERSD_OK;
    if ((code = log_entry(s, USERSD_CHANGE_PRESENCE, e->user_id, name, USERSD_OFFLINE, e->now,
                          e->now, 0, status, err)))
        return code;
    return wake_listeners(s, err);
}

static enum usersd_code pg_session_end(struct store *base, const struct store_session_end *e,
                                       int64_t *ended, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    if (!(code = end_sessions(s, e, ended, err)) && !(code = commit(s, err))) return USERSD_OK;
    rollback(s);
    *ended = 0;
    return code;
}

static enum usersd_code pg_session_expire(struct store *base, int64_t before, int64_t now,
                                          int64_t active_after, int limit, int64_t *ended,
                                          struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *ended = 0;
    struct params p = {0};
    p_int(&p, before);
    p_int(&p, limit);
    PGresult *due = run(s, P_SESSIONS_EXPIRED, &p, err);
    if (!due) return last_fail;
    enum usersd_code code = PQntuples(due) ? begin(s, err) : USERSD_OK;
    bool open_tx = PQntuples(due) && !code;
    for (int i = 0; i < PQntuples(due) && !code; i++) {
        /* Only if still unused: activity since the read keeps it. */
        struct store_session_end e = {.user_id = col_int(due, i, 1),
                                      .session_id = col_int(due, i, 0),
                                      .now = now,
                                      .active_after = active_after,
                                      .unused_since = before};
        int64_t one = 0;
        code = end_sessions(s, &e, &one, err);
        if (code == USERSD_ENOTFOUND) { /* used again, or another process's sweep took it */
            code = USERSD_OK;
            continue;
        }
        *ended += one;
    }
    PQclear(due);
    if (open_tx) {
        if (!code) code = commit(s, err);
        if (code) rollback(s);
    }
    if (code) *ended = 0;
    return code;
}

static enum usersd_code pg_session_refresh(struct store *base, const int64_t *ids, size_t n,
                                           int64_t now, bool *alive, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!n) return USERSD_OK;
    char *list = id_array(ids, n);
    if (!list) return err_set(err, USERSD_ENOMEM, NULL);
    struct params p = {0};
    p_int(&p, now);
    p_text(&p, list);
    PGresult *r = run(s, P_SESSION_REFRESH, &p, err);
    free(list);
    if (!r) return last_fail;
    for (size_t i = 0; i < n; i++)
        alive[i] = false;
    for (int k = 0; k < PQntuples(r); k++) {
        int64_t id = col_int(r, k, 0);
        for (size_t i = 0; i < n; i++)
            if (ids[i] == id) alive[i] = true;
    }
    PQclear(r);
    return USERSD_OK;
}

static enum usersd_code pg_session_insert(struct store *base, struct store_session_row *row,
                                          struct usersd_err *err)
{
    struct params p = {0};
    p_bytea(&p, row->hash, STORE_TOKEN_HASH_LEN);
    p_int(&p, row->s.user_id);
    p_int(&p, row->s.created);
    p_int(&p, row->s.last_used);
    p_text(&p, row->s.user_agent);
    p_text(&p, row->s.client_ip);
    return one_int(run((struct pg_store *)base, P_SESSION_INSERT, &p, err), &row->s.id);
}

static enum usersd_code pg_token_user(struct store *base, const unsigned char *hash,
                                      struct usersd_user *out, struct usersd_session *session,
                                      struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    int64_t hint = s->hint_id;
    s->hint_id = 0;
    struct params p = {0};
    p_bytea(&p, hash, STORE_TOKEN_HASH_LEN);
    if (hint > 0) p_int(&p, hint);
    PGresult *r = run(s, hint > 0 ? P_TOKEN_USER_HINT : P_TOKEN_USER, &p, err);
    if (r && PQntuples(r) > 0 && hint > 0) {
        s->hinted = true;
        s->hinted_found = !PQgetisnull(r, 0, USER_NCOLS + 3);
        row_user_at(r, 0, USER_NCOLS + 3, &s->hinted_user);
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
        session->id = col_int(r, 0, USER_NCOLS);
        session->user_id = col_int(r, 0, 0);
        session->created = col_int(r, 0, USER_NCOLS + 1);
        session->last_used = col_int(r, 0, USER_NCOLS + 2);
    }
    enum usersd_code code = one_user(r, out, err);
    return code == USERSD_ENOTFOUND ? err_set(err, code, "token not found") : code;
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

static enum usersd_code pg_session_list(struct store *base, int64_t user_id,
                                        struct usersd_sessions *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct usersd_user who;
    enum usersd_code code = pg_user_get(base, user_id, &who, err);
    if (code) return code;
    struct params p = {0};
    p_int(&p, user_id);
    PGresult *r = run(s, P_SESSION_LIST, &p, err);
    if (!r) return last_fail;
    void *items;
    code = rows_new(r, SIZE_MAX, sizeof *out->items, dec_session, NULL, &items, &out->count, err);
    out->items = items;
    return code;
}

static enum usersd_code pg_session_count(struct store *base, int64_t *n, struct usersd_err *err)
{
    return one_int(run((struct pg_store *)base, P_SESSION_COUNT, NULL, err), n);
}

/* ---- status messages ------------------------------------------------------ */

/* What status messages and do not disturb share: the update (upd, with
 * p's parameters) returning the user, set or — when there is something —
 * cleared, and when it changed, the log row (log: $1-$5 the user, name,
 * status, last_seen, at, then the rest of lp) and the wake-up, in one
 * transaction. out receives the user; ENOTFOUND. */
static enum usersd_code beside_write(struct pg_store *s, enum pstmt upd, enum pstmt log, bool set,
                                     int64_t id, const struct params *p, int64_t now,
                                     const char *text, bool with_text, int64_t t,
                                     struct usersd_user *out, struct usersd_err *err)
{
    enum usersd_code code = begin(s, err);
    if (code) return code;
    code = one_user(run(s, upd, p, err), out, err);
    if (code == USERSD_ENOTFOUND && !set) { /* nothing to clear, or no user */
        rollback(s);
        return pg_user_get(&s->base, id, out, err);
    }
    if (code) goto out;
    struct params q = {0};
    p_int(&q, out->id);
    p_text(&q, out->username);
    p_int(&q, out->online_status);
    p_time(&q, out->last_seen);
    p_int(&q, now);
    if (with_text) p_text(&q, text);
    p_time(&q, t);
    if ((code = run0(s, log, &q, err)) || (code = wake_listeners(s, err))) goto out;
    return commit(s, err);
out:
    rollback(s);
    return code;
}

static enum usersd_code pg_status_message(struct store *base, int64_t id, const char *text,
                                          int64_t expires, int64_t now, struct usersd_user *out,
                                          struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, id);
    if (text) {
        p_text(&p, text);
        p_time(&p, expires);
    }
    return beside_write((struct pg_store *)base, text ? P_MESSAGE_SET : P_MESSAGE_CLEAR,
                        P_LOG_MESSAGE, text != NULL, id, &p, now, text, true,
                        text ? expires : USERSD_NULL_TIME, out, err);
}

static enum usersd_code pg_dnd(struct store *base, int64_t id, bool on, int64_t until, int64_t now,
                               struct usersd_user *out, struct usersd_err *err)
{
    struct params p = {0};
    int64_t col = store_dnd_col(on, until);
    p_int(&p, id);
    if (on) p_time(&p, col);
    return beside_write((struct pg_store *)base, on ? P_DND_SET : P_DND_CLEAR, P_LOG_DND, on, id,
                        &p, now, NULL, false, col, out, err);
}

/* The sweep of ended ones: a look through the partial index (pending),
 * then, when something is due, one statement (sweep) that updates and
 * logs the same rows. Both bind $1 = now. */
static enum usersd_code expire_sweep(struct pg_store *s, enum pstmt pending_stmt, enum pstmt sweep,
                                     int64_t now, int64_t *n, struct usersd_err *err)
{
    *n = 0;
    struct params p = {0};
    p_int(&p, now);
    PGresult *r = run(s, pending_stmt, &p, err);
    if (!r) return last_fail;
    bool pending = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!pending) return USERSD_OK;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    if (!(r = run(s, sweep, &p, err))) {
        code = last_fail;
        goto out;
    }
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if ((*n && (code = wake_listeners(s, err))) || (code = commit(s, err))) goto out;
    return USERSD_OK;
out:
    rollback(s);
    *n = 0;
    return code;
}

static enum usersd_code pg_status_message_expire(struct store *base, int64_t now, int64_t *n,
                                                 struct usersd_err *err)
{
    return expire_sweep((struct pg_store *)base, P_MESSAGE_PENDING, P_MESSAGE_EXPIRE, now, n, err);
}

static enum usersd_code pg_dnd_expire(struct store *base, int64_t now, int64_t *n,
                                      struct usersd_err *err)
{
    return expire_sweep((struct pg_store *)base, P_DND_PENDING, P_DND_EXPIRE, now, n, err);
}

static enum usersd_code pg_presence_counts(struct store *base, int64_t *manual, int64_t *dnd,
                                           struct usersd_err *err)
{
    PGresult *r = run((struct pg_store *)base, P_PRESENCE_COUNTS, NULL, err);
    if (!r) return last_fail;
    *manual = col_int(r, 0, 0);
    *dnd = col_int(r, 0, 1);
    PQclear(r);
    return USERSD_OK;
}

/* ---- history ---------------------------------------------------------------- */

/* at, status, prev of the user *ctx. */
static void dec_history(PGresult *r, int i, void *item, const void *ctx)
{
    *(struct store_history_row *)item = (struct store_history_row){
        *(const int64_t *)ctx, col_int(r, i, 0), (int)col_int(r, i, 1), (int)col_int(r, i, 2)};
}

static enum usersd_code pg_history_read(struct store *base, int64_t id, int64_t start, int64_t end,
                                        struct store_history *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    memset(out, 0, sizeof *out);
    PGresult *r = run(s, P_HISTORY_SINCE, NULL, err);
    if (!r) return last_fail;
    out->since = PQntuples(r) ? col_time(r, 0, 0) : USERSD_NULL_TIME;
    PQclear(r);
    struct params p = {0};
    p_int(&p, id);
    p_int(&p, start);
    if (!(r = run(s, P_HISTORY_FIRST, &p, err))) return last_fail;
    if (PQntuples(r)) {
        out->have_first = true;
        out->first = (struct store_history_row){id, col_int(r, 0, 0), (int)col_int(r, 0, 1),
                                                (int)col_int(r, 0, 2)};
    }
    PQclear(r);
    p_int(&p, end);
    if (!(r = run(s, P_HISTORY_ROWS, &p, err))) return last_fail;
    void *rows;
    enum usersd_code code =
        rows_new(r, SIZE_MAX, sizeof *out->rows, dec_history, &id, &rows, &out->count, err);
    out->rows = rows;
    if (code) return code;
    p = (struct params){0};
    p_int(&p, id);
    p_int(&p, end);
    if (!(r = run(s, P_HISTORY_NEXT, &p, err))) {
        free(out->rows);
        out->rows = NULL;
        return last_fail;
    }
    if (PQntuples(r)) {
        out->have_next = true;
        out->next = (struct store_history_row){id, col_int(r, 0, 0), (int)col_int(r, 0, 1),
                                               (int)col_int(r, 0, 2)};
    }
    PQclear(r);
    return USERSD_OK;
}

static enum usersd_code pg_history_mark(struct store *base, int64_t since, bool only_if_unset,
                                        struct usersd_err *err)
{
    struct params p = {0};
    p_time(&p, since);
    return run0((struct pg_store *)base, only_if_unset ? P_HISTORY_MARK_UNSET : P_HISTORY_MARK, &p,
                err);
}

static enum usersd_code pg_history_prune(struct store *base, int64_t before, int limit, int64_t *n,
                                         struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, before);
    p_int(&p, limit);
    *n = 0;
    return one_int(run((struct pg_store *)base, P_HISTORY_PRUNE, &p, err), n);
}

static enum usersd_code pg_history_sample(struct store *base, int64_t minute,
                                          struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    struct params p = {0};
    p_int(&p, minute);
    /* Whoever inserts the minute's row closes the last one; the others find
     * it there and do nothing. */
    PGresult *r = run(s, P_MINUTE_INSERT, &p, err);
    if (!r) {
        code = last_fail;
        goto out;
    }
    bool mine = PQntuples(r) > 0;
    PQclear(r);
    if (mine &&
        ((code = run0(s, P_MINUTE_CLOSE, &p, err)) || (code = run0(s, P_PEAK_RESET, NULL, err))))
        goto out;
    return commit(s, err);
out:
    rollback(s);
    return code;
}

static void row_minute(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    struct store_minute_row *m = item;
    m->minute = col_int(r, i, 0);
    m->online = col_int(r, i, 1);
    m->away = col_int(r, i, 2);
    m->offline = col_int(r, i, 3);
    m->online_max = col_int(r, i, 4);
}

static enum usersd_code pg_minutes_read(struct store *base, int64_t from, int64_t to,
                                        struct store_minute_row **out, size_t *n,
                                        int64_t *live_peak, int64_t *open, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *out = NULL;
    *n = 0;
    PGresult *r = run(s, P_LIVE_PEAK, NULL, err);
    if (!r) return last_fail;
    bool one = PQntuples(r) > 0;
    *live_peak = one ? col_int(r, 0, 0) : 0;
    *open = one ? col_time(r, 0, 1) : USERSD_NULL_TIME;
    PQclear(r);
    struct params p = {0};
    p_int(&p, from);
    p_int(&p, to);
    if (!(r = run(s, P_MINUTES, &p, err))) return last_fail;
    void *rows;
    enum usersd_code code = rows_new(r, SIZE_MAX, sizeof **out, row_minute, NULL, &rows, n, err);
    *out = rows;
    return code;
}

/* user_id, at, status, prev. */
static void dec_history_row(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    *(struct store_history_row *)item = (struct store_history_row){
        col_int(r, i, 0), col_int(r, i, 1), (int)col_int(r, i, 2), (int)col_int(r, i, 3)};
}

static enum usersd_code pg_dump_history(struct store *base, int64_t cursor[2], size_t cap,
                                        struct store_history_row *rows, size_t *n,
                                        struct usersd_err *err)
{
    struct params p = {0};
    /* the key (user_id, at) of the last row given; {0, 0} starts before all */
    p_int(&p, cursor[0]);
    p_int(&p, cursor[0] ? cursor[1] : INT64_MIN);
    p_int(&p, (int64_t)cap);
    enum usersd_code code = rows_into(run((struct pg_store *)base, P_DUMP_HISTORY, &p, err), cap,
                                      rows, sizeof *rows, dec_history_row, NULL, n);
    if (!code && *n) {
        cursor[0] = rows[*n - 1].user_id;
        cursor[1] = rows[*n - 1].at;
    }
    return code;
}

static enum usersd_code pg_dump_minutes(struct store *base, int64_t after, size_t cap,
                                        struct store_minute_row *rows, size_t *n,
                                        struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, after);
    p_int(&p, (int64_t)cap);
    return rows_into(run((struct pg_store *)base, P_DUMP_MINUTES, &p, err), cap, rows, sizeof *rows,
                     row_minute, NULL, n);
}

/* ---- load testing ------------------------------------------------------- */

/* Runs sql with text parameters in the open transaction; NULL with err
 * filled on failure. For the one-off statements of seeding, not prepared. */
static PGresult *run_once(struct pg_store *s, const char *sql, int n, const char *const *v,
                          struct usersd_err *err)
{
    s->hinted = s->snap_fresh = false;
    PGresult *r = answer(s, s->conn && PQsendQueryParams(s->conn, sql, n, NULL, v, NULL, NULL, 0));
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    pg_error(s, r, err);
    PQclear(r);
    return NULL;
}

/* {"hex",...} and {id,...} array literals of rows [from, to). */
static void seed_arrays(const unsigned char *hashes, const int64_t *user_ids, size_t from,
                        size_t to, char *hex, char *ids)
{
    size_t hl = 0, il = 0;
    hex[hl++] = '{';
    ids[il++] = '{';
    for (size_t i = from; i < to; i++) {
        if (i > from) {
            hex[hl++] = ',';
            ids[il++] = ',';
        }
        for (int b = 0; b < STORE_TOKEN_HASH_LEN; b++) {
            unsigned char c = hashes[i * STORE_TOKEN_HASH_LEN + (size_t)b];
            hex[hl++] = "0123456789abcdef"[c >> 4];
            hex[hl++] = "0123456789abcdef"[c & 15];
        }
        il += (size_t)snprintf(ids + il, 21, "%lld", (long long)user_ids[i]);
    }
    memcpy(hex + hl, "}", 2);
    memcpy(ids + il, "}", 2);
}

/* One statement in a transaction of its own (timeout lifted); OK or the
 * code it failed with. */
static enum usersd_code seed_step(struct pg_store *s, const char *sql, int n, const char *const *v,
                                  PGresult **out, struct usersd_err *err)
{
    enum usersd_code code = begin(s, err);
    if (code) return code;
    /* Picking among a million users may take longer than the 10 s every
     * statement of a request gets; this transaction only. */
    PGresult *r = NULL;
    if (!(code = lift_timeout(s, err))) {
        r = run_once(s, sql, n, v, err);
        code = r ? commit(s, err) : last_fail;
    }
    if (code) {
        rollback(s);
        PQclear(r);
        r = NULL;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return code;
}

static enum usersd_code pg_session_seed(struct store *base, const unsigned char *hashes, size_t k,
                                        int64_t now, int64_t *user_ids, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    /* Sessions per transaction: each row's trigger updates the one counter
     * row, and within one transaction every update walks that row's
     * versions so far, so a long transaction is quadratic (40,000 sessions
     * took a minute). Chunks committed before a failure are deleted again. */
    enum { CHUNK = 1000 };
    char *hex = NULL, *ids = NULL, count[24], at[24];
    snprintf(count, sizeof count, "%zu", k);
    snprintf(at, sizeof at, "%lld", (long long)now);
    const char *pv[] = {count};
    PGresult *r = NULL;
    enum usersd_code code = seed_step(
        s, "SELECT id FROM users WHERE is_active ORDER BY random() LIMIT $1", 1, pv, &r, err);
    if (code) return code;
    size_t n = (size_t)PQntuples(r);
    for (size_t i = 0; i < n; i++)
        user_ids[i] = col_int(r, (int)i, 0);
    PQclear(r);
    if (n < k)
        return err_field(err, "tokens", "only %zu users are active: cannot mint %zu tokens", n, k);
    hex = malloc(CHUNK * (STORE_TOKEN_HASH_LEN * 2 + 1) + 3);
    ids = malloc(CHUNK * 21 + 3);
    if (!hex || !ids) {
        code = err_set(err, USERSD_ENOMEM, "out of memory");
        goto out;
    }
    size_t from = 0;
    for (; from < k && !code; from += CHUNK) {
        seed_arrays(hashes, user_ids, from, k - from < CHUNK ? k : from + CHUNK, hex, ids);
        const char *v[] = {hex, ids, at};
        code = seed_step(s,
                         "INSERT INTO sessions (hash, user_id, created, last_used) "
                         "SELECT decode(h, 'hex'), u, $3, $3 "
                         "FROM unnest($1::text[], $2::bigint[]) AS t (h, u)",
                         3, v, NULL, err);
    }
    if (code) /* all or none: undo the chunks before the one that failed */
        for (size_t done = 0; done + CHUNK < from; done += CHUNK) {
            seed_arrays(hashes, user_ids, done, done + CHUNK, hex, ids);
            const char *v[] = {hex};
            seed_step(s,
                      "DELETE FROM sessions WHERE hash IN "
                      "(SELECT decode(h, 'hex') FROM unnest($1::text[]) AS t (h))",
                      1, v, NULL, NULL);
        }
out:
    free(hex);
    free(ids);
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
