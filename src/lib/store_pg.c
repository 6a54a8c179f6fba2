/* store_pg.c — the PostgreSQL driver (libpq), for many usersd processes on
 * many machines sharing one database.
 *
 * One connection per handle (the server opens one per worker thread).
 * Statements are prepared once per connection, parameters always bound. A
 * connection lost to a restart is re-established on the next call; a call
 * that is not inside a transaction is retried once on the new connection,
 * so the first request after an outage does not fail for nothing. During
 * the outage calls fail fast with EDB (HTTP 503).
 *
 * Change-log order across processes: sequence numbers are handed out in
 * insertion order, but concurrent transactions could commit out of that
 * order and a reader would skip a late-committing lower seq. Every writer of
 * the log therefore takes one transaction-scoped advisory lock just before
 * its insert: seqs are assigned and committed in the same order. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "internal.h"

extern const char *const store_pg_migrations[];

#define LOCK_MIGRATE 0x75736d67LL /* advisory lock key; the log's is in P_LOCK_LOG */
#define CHANNEL "usersd_presence"

#define USER_COLS                                                                                  \
    "id, username, email, first_name, last_name, is_active, is_staff, date_joined, "               \
    "online_status, last_seen"

enum pstmt {
    P_INSERT,
    P_GET,
    P_GET_AUTH,
    P_UPDATE,
    P_UPDATE_PW,
    P_DELETE_TOKENS,
    P_DELETE,
    P_LOG_DELETE,
    P_COUNT,
    P_ONLINE,
    P_ONLINE_COUNT,
    P_STATS,
    P_STATUS_OF,
    P_SET_STATUS,
    P_SAME_STATUS,
    P_LOCK_LOG,
    P_LOG_CHANGE,
    P_NOTIFY,
    P_TOUCH,
    P_TOKEN_INSERT,
    P_TOKEN_USER,
    P_TOKEN_DELETE,
    P_PING,
    P_DECAY_PENDING,
    P_DECAY_OFFLINE,
    P_DECAY_AWAY,
    P_CHANGES,
    P_PRUNED,
    P_HEAD,
    P_PRUNE,
    P_DUMP_USERS,
    P_DUMP_TOKENS,
    P_LOAD_USER,
    P_LOAD_TOKEN,
    P_LOAD_IDS,
    P_LOAD_SEQ,
    P_SEED,
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
    [P_DELETE_TOKENS] = "DELETE FROM tokens WHERE user_id = $1",
    [P_DELETE] = "DELETE FROM users WHERE id = $1",
    [P_LOG_DELETE] = "INSERT INTO presence_changes (user_id, username, online_status, last_seen, "
                     "at) SELECT id, username, 0, last_seen, $2 FROM users "
                     "WHERE id = $1 AND online_status <> 0",
    [P_COUNT] = "SELECT total FROM user_counts WHERE id = 1",
    [P_ONLINE] = "SELECT " USER_COLS " FROM users WHERE online_status = 2 "
                 "ORDER BY last_seen DESC NULLS LAST, id ASC LIMIT $1 OFFSET $2",
    [P_ONLINE_COUNT] = "SELECT online FROM user_counts WHERE id = 1",
    /* Counters kept by a trigger (migration 003): no scan at any size. */
    [P_STATS] = "SELECT total, active, staff, online, away FROM user_counts WHERE id = 1",
    [P_STATUS_OF] = "SELECT online_status FROM users WHERE id = $1 FOR UPDATE",
    [P_SET_STATUS] = "UPDATE users SET online_status = $1, last_seen = coalesce($2, last_seen) "
                     "WHERE id = $3 RETURNING " USER_COLS,
    [P_SAME_STATUS] = "UPDATE users SET last_seen = coalesce($2, last_seen) "
                      "WHERE id = $3 AND online_status = $1 RETURNING " USER_COLS,
    [P_LOCK_LOG] = "SELECT pg_advisory_xact_lock(1970496359)",
    [P_LOG_CHANGE] = "INSERT INTO presence_changes (user_id, username, online_status, last_seen, "
                     "at) VALUES ($1, $2, $3, $4, $5)",
    [P_NOTIFY] = "SELECT pg_notify('" CHANNEL "', '')",
    [P_TOUCH] = "UPDATE users SET last_seen = $1 WHERE id = $2 AND "
                "(last_seen IS NULL OR last_seen < $3)",
    [P_TOKEN_INSERT] = "INSERT INTO tokens (hash, user_id, created) VALUES ($1, $2, $3)",
    [P_TOKEN_USER] = "SELECT u.id, u.username, u.email, u.first_name, u.last_name, u.is_active, "
                     "u.is_staff, u.date_joined, u.online_status, u.last_seen "
                     "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
    [P_TOKEN_DELETE] = "DELETE FROM tokens WHERE hash = $1 RETURNING user_id",
    [P_PING] = "SELECT 1",
    [P_DECAY_PENDING] =
        "SELECT EXISTS (SELECT 1 FROM users WHERE online_status = 2 AND last_seen < $1) "
        "OR EXISTS (SELECT 1 FROM users WHERE online_status IN (1, 2) AND last_seen < $2)",
    /* One statement each: the update and its log rows see the same rows, and
     * a process running the same sweep concurrently waits on the row locks,
     * re-checks the condition and finds nothing left to change. */
    [P_DECAY_OFFLINE] =
        "WITH d AS (UPDATE users SET online_status = 0 WHERE online_status IN (1, 2) "
        "AND last_seen < $2 RETURNING id, username, last_seen) "
        "INSERT INTO presence_changes (user_id, username, online_status, last_seen, at) "
        "SELECT id, username, 0, last_seen, $1 FROM d ORDER BY last_seen, id",
    [P_DECAY_AWAY] =
        "WITH d AS (UPDATE users SET online_status = 1 WHERE online_status = 2 "
        "AND last_seen < $2 RETURNING id, username, last_seen) "
        "INSERT INTO presence_changes (user_id, username, online_status, last_seen, at) "
        "SELECT id, username, 1, last_seen, $1 FROM d ORDER BY last_seen, id",
    [P_CHANGES] = "SELECT seq, user_id, username, online_status, last_seen, at "
                  "FROM presence_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
    [P_PRUNED] = "SELECT pruned_through FROM presence_meta WHERE id = 1",
    [P_HEAD] = "SELECT greatest(coalesce((SELECT max(seq) FROM presence_changes), 0), "
               "(SELECT pruned_through FROM presence_meta WHERE id = 1))",
    /* OFFSET 0 keeps max() from becoming a backward walk of the whole log
     * from its newest row: the rows to go are found through the at index. */
    [P_PRUNE] = "WITH gone AS (DELETE FROM presence_changes WHERE seq <= (SELECT max(seq) FROM "
                "(SELECT seq FROM presence_changes WHERE at < $1 OFFSET 0) old) RETURNING seq) "
                "UPDATE presence_meta SET pruned_through = greatest(pruned_through, "
                "(SELECT coalesce(max(seq), 0) FROM gone)) WHERE id = 1",
    [P_DUMP_USERS] = "SELECT " USER_COLS ", password FROM users WHERE id > $1 ORDER BY id LIMIT $2",
    [P_DUMP_TOKENS] = "SELECT hash, user_id, created FROM tokens WHERE hash > $1 ORDER BY hash "
                      "LIMIT $2",
    [P_LOAD_USER] = "INSERT INTO users (" USER_COLS ", password) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    [P_LOAD_TOKEN] = "INSERT INTO tokens (hash, user_id, created) VALUES ($1, $2, $3)",
    [P_LOAD_IDS] = "SELECT setval(pg_get_serial_sequence('users', 'id'), "
                   "greatest((SELECT max(id) FROM users), 1))",
    [P_SEED] = "INSERT INTO users (username, email, first_name, last_name, password, is_active, "
               "is_staff, date_joined, online_status, last_seen) "
               "SELECT 'seed' || (b.base + i), 'seed' || (b.base + i) || '@example.com', 'First' "
               "|| (i % 1000), "
               "'Last' || (i % 997), $2, true, false, $3 - i * 1000, "
               "CASE WHEN i % 10 = 0 THEN 2 WHEN i % 10 = 1 THEN 1 ELSE 0 END, "
               "CASE WHEN i % 10 = 0 THEN $3 - (i % 300) * 1000000 "
               "WHEN i % 10 = 1 THEN $3 - (600 + i % 3000) * 1000000 "
               "ELSE $3 - (3600 + (i * 7919) % 2592000) * 1000000 END "
               "FROM generate_series(1, $1::bigint) AS i, "
               "(SELECT coalesce(max(id), 0) AS base FROM users) AS b",
    /* The log continues after the source's. */
    [P_LOAD_SEQ] = "WITH m AS (UPDATE presence_meta SET pruned_through = greatest(pruned_through, "
                   "$1) WHERE id = 1) SELECT setval(pg_get_serial_sequence('presence_changes', "
                   "'seq'), greatest($1, 1), $1 > 0)",
};

struct pg_store {
    struct store base; /* first: the driver is reached through it */
    PGconn *conn;
    bool prepared[P_NSTMT];
    bool in_tx;
    bool batch; /* inside usersd_batch_begin: transactions are savepoints */
    bool listening;
    char *list_sql[32]; /* list queries, prepared as "list<i>" on demand */
    bool list_prepared[32];
};

/* ---- parameters --------------------------------------------------------- */

struct params {
    const char *v[12];
    int len[12];
    int fmt[12];
    int n;
    char buf[12][24];
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
 * P_INSERT, P_UPDATE and P_LOAD_USER take them in. */
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
    char line[200];
    one_line(line, sizeof line,
             r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    if (PQstatus(s->conn) != CONNECTION_OK)
        return err_set(err, USERSD_EDB, "the database is unavailable: %s", line);
    return err_set(err, USERSD_EDB, "database error: %s", line);
}

static enum usersd_code exec_plain(struct pg_store *s, const char *sql, struct usersd_err *err)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    enum usersd_code code = USERSD_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) code = pg_error(s, r, err);
    PQclear(r);
    return code;
}

/* Session settings every new connection gets. */
static enum usersd_code session_setup(struct pg_store *s, struct usersd_err *err)
{
    memset(s->prepared, 0, sizeof s->prepared);
    memset(s->list_prepared, 0, sizeof s->list_prepared);
    s->in_tx = false;
    /* A stuck statement never holds a request (or the server) for long. */
    enum usersd_code code = exec_plain(
        s, "SET statement_timeout = '10s'; SET lock_timeout = '5s'; SET TIME ZONE 'UTC'", err);
    if (!code && s->listening) code = exec_plain(s, "LISTEN " CHANNEL, err);
    return code;
}

static enum usersd_code ensure_conn(struct pg_store *s, struct usersd_err *err)
{
    if (PQstatus(s->conn) == CONNECTION_OK) return USERSD_OK;
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char line[200];
        one_line(line, sizeof line, PQerrorMessage(s->conn));
        return err_set(err, USERSD_EDB, "the database is unavailable: %s", line);
    }
    return session_setup(s, err);
}

/* Runs a prepared statement; NULL with err filled on failure. Outside a
 * transaction, a call that fails because the connection broke is retried
 * once on a fresh connection. */
static PGresult *run_sql(struct pg_store *s, const char *name, const char *sql, bool *prepared,
                         const struct params *p, struct usersd_err *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure_conn(s, err)) return NULL;
        PGresult *r;
        if (!*prepared) {
            r = PQprepare(s->conn, name, sql, 0, NULL);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) goto failed;
            PQclear(r);
            *prepared = true;
        }
        r = PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                           p ? p->fmt : NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    failed:
        if (PQstatus(s->conn) != CONNECTION_OK && !s->in_tx && attempt == 0) {
            PQclear(r);
            continue;
        }
        pg_error(s, r, err);
        PQclear(r);
        return NULL;
    }
    return NULL;
}

static PGresult *run(struct pg_store *s, enum pstmt id, const struct params *p,
                     struct usersd_err *err)
{
    char name[16];
    snprintf(name, sizeof name, "u%d", (int)id);
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
    return exec_plain(s, "COMMIT", err);
}

static void rollback(struct pg_store *s)
{
    if (s->batch) {
        exec_plain(s, "ROLLBACK TO SAVEPOINT op", NULL);
        exec_plain(s, "RELEASE SAVEPOINT op", NULL);
        return;
    }
    if (s->in_tx && PQstatus(s->conn) == CONNECTION_OK) exec_plain(s, "ROLLBACK", NULL);
    s->in_tx = false;
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

static void row_user(PGresult *r, int row, struct usersd_user *u)
{
    u->id = col_int(r, row, 0);
    col_text(u->username, sizeof u->username, r, row, 1);
    col_text(u->email, sizeof u->email, r, row, 2);
    col_text(u->first_name, sizeof u->first_name, r, row, 3);
    col_text(u->last_name, sizeof u->last_name, r, row, 4);
    u->is_active = PQgetvalue(r, row, 5)[0] == 't';
    u->is_staff = PQgetvalue(r, row, 6)[0] == 't';
    u->date_joined = col_int(r, row, 7);
    u->online_status = (enum usersd_status)col_int(r, row, 8);
    u->last_seen = col_time(r, row, 9);
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

/* ---- migrations and open ----------------------------------------------- */

static enum usersd_code migrate(struct pg_store *s, struct usersd_err *err)
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
        code = exec_plain(s, "BEGIN", err);
        if (!code) code = exec_plain(s, store_pg_migrations[i], err);
        if (!code) {
            snprintf(sql, sizeof sql, "INSERT INTO usersd_migrations (version) VALUES (%d)", i + 1);
            code = exec_plain(s, sql, err);
        }
        code = code ? (exec_plain(s, "ROLLBACK", NULL), code) : exec_plain(s, "COMMIT", err);
        if (code && err) {
            char msg[160];
            memcpy(msg, err->msg, sizeof msg - 1);
            msg[sizeof msg - 1] = 0;
            snprintf(err->msg, sizeof err->msg, "cannot migrate the database to version %d: %s",
                     i + 1, msg);
        }
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", LOCK_MIGRATE);
    exec_plain(s, sql, NULL);
    return code;
}

static void pg_close(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!s) return;
    PQfinish(s->conn);
    for (int i = 0; i < 32; i++)
        free(s->list_sql[i]);
    free(s);
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

static enum usersd_code pg_open(struct store **out, const char *url, struct usersd_err *err)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, USERSD_ENOMEM, NULL);
    s->base.ops = &store_pg_ops;
    /* A connect_timeout of its own unless the URL names one (the expanded
     * URL overrides the keywords before it): a dead host must fail a
     * request, not hang it. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "usersd", url, NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        char line[200];
        one_line(line, sizeof line, s->conn ? PQerrorMessage(s->conn) : "out of memory");
        err_set(err, USERSD_EDB, "cannot connect to PostgreSQL: %s", line);
        pg_close(&s->base);
        return USERSD_EDB;
    }
    PQsetNoticeProcessor(s->conn, quiet, NULL); /* "already exists, skipping" etc. */
    enum usersd_code code = session_setup(s, err);
    if (!code) code = migrate(s, err);
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
    struct params p = {0};
    p_int(&p, id);
    return one_user(run((struct pg_store *)base, P_GET, &p, err), out, err);
}

static enum usersd_code pg_user_get_auth(struct store *base, const char *username,
                                         struct usersd_user *out, char *pwhash,
                                         struct usersd_err *err)
{
    struct params p = {0};
    p_text(&p, username);
    PGresult *r = run((struct pg_store *)base, P_GET_AUTH, &p, err);
    if (r && PQntuples(r) > 0) col_text(pwhash, AUTH_HASH_MAX, r, 0, 10);
    return one_user(r, out, err);
}

static enum usersd_code pg_user_update(struct store *base, const struct usersd_user *u,
                                       const char *pwhash, struct usersd_err *err)
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
    if (!u->is_active) { /* a deactivated user's sessions end with it */
        struct params q = {0};
        p_int(&q, u->id);
        if (run0(s, P_DELETE_TOKENS, &q, err)) goto fail;
    }
    return commit(s, err);
fail:
    rollback(s);
    return last_fail;
}

/* Appends a change to the log in the open transaction, in seq order across
 * processes, and wakes the listeners at commit. */
static enum usersd_code log_lock(struct pg_store *s, struct usersd_err *err)
{
    return run0(s, P_LOCK_LOG, NULL, err);
}

static enum usersd_code pg_user_delete(struct store *base, int64_t id, int64_t now,
                                       struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    struct params p = {0};
    p_int(&p, id);
    p_int(&p, now);
    PGresult *r;
    if (log_lock(s, err)) goto fail;
    if (!(r = run(s, P_LOG_DELETE, &p, err))) goto fail;
    bool logged = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    if (logged && run0(s, P_NOTIFY, NULL, err)) goto fail;
    p.n = 1;
    if (run0(s, P_DELETE_TOKENS, &p, err)) goto fail;
    if (!(r = run(s, P_DELETE, &p, err))) goto fail;
    bool found = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    if (!found) {
        rollback(s);
        return err_set(err, USERSD_ENOTFOUND, "user not found");
    }
    return commit(s, err);
fail:
    rollback(s);
    return last_fail;
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
    size_t n = (size_t)PQntuples(r);
    if (n > cap) n = cap;
    out->users = calloc(n ? n : 1, sizeof *out->users);
    out->count = 0;
    if (!out->users) {
        PQclear(r);
        return err_set(err, USERSD_ENOMEM, NULL);
    }
    for (size_t i = 0; i < n; i++)
        row_user(r, (int)i, &out->users[out->count++]);
    PQclear(r);
    return USERSD_OK;
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
        if (slot < 0) { /* full: run unprepared rather than grow without end */
            PGresult *r = PQexecParams(s->conn, sql, p->n, NULL, p->v, p->len, p->fmt, 0);
            if (PQresultStatus(r) == PGRES_TUPLES_OK) return r;
            pg_error(s, r, err);
            PQclear(r);
            return NULL;
        }
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

static enum usersd_code pg_user_list(struct store *base, const struct usersd_list_query *q,
                                     struct usersd_page *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
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
        ADD("online_status = $%d", p.n);
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
    static const char *const keys[] = {"id", "lower(username)", "date_joined", "last_seen"};
    const char *dir = q->descending ? "DESC" : "ASC";
    char order[128];
    if (q->order == USERSD_ORDER_ID)
        snprintf(order, sizeof order, "id %s", dir);
    else
        snprintf(order, sizeof order, "%s %s NULLS LAST, id ASC", keys[q->order], dir);

    enum usersd_code code = USERSD_OK;
    if (out->total_count < 0) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM users%s", where);
        code = one_int(run_list(s, sql, &p, err), &out->total_count);
    }
    if (!code) {
        int n = p.n;
        p_int(&p, q->per_page);
        p_int(&p, (int64_t)(q->page - 1) * q->per_page);
        snprintf(sql, sizeof sql,
                 "SELECT " USER_COLS " FROM users%s ORDER BY %s LIMIT $%d OFFSET $%d", where, order,
                 n + 1, n + 2);
        code = collect(run_list(s, sql, &p, err), (size_t)q->per_page, out, err);
    }
    free(pattern);
    return code;
}

static enum usersd_code pg_online_page(struct store *base, int page, int per_page,
                                       struct usersd_page *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = one_int(run(s, P_ONLINE_COUNT, NULL, err), &out->total_count);
    if (code) return code;
    struct params p = {0};
    p_int(&p, per_page);
    p_int(&p, (int64_t)(page - 1) * per_page);
    return collect(run(s, P_ONLINE, &p, err), (size_t)per_page, out, err);
}

static enum usersd_code pg_users_by_ids(struct store *base, const int64_t *ids, size_t n,
                                        struct usersd_user *out, size_t *found,
                                        struct usersd_err *err)
{
    *found = 0;
    for (size_t i = 0; i < n; i++) {
        enum usersd_code code = pg_user_get(base, ids[i], &out[*found], err);
        if (code == USERSD_OK)
            (*found)++;
        else if (code != USERSD_ENOTFOUND)
            return code;
    }
    return USERSD_OK;
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

/* A status that does not change (a heartbeat of an online user) is one
 * statement with no log and no lock beyond its row. A change takes the log
 * lock first, then the row: the order decay uses too, so the two never
 * deadlock. */
static enum usersd_code pg_set_status(struct pg_store *s, const struct store_status_change *c,
                                      struct usersd_user *out, struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, c->status);
    p_time(&p, c->last_seen);
    p_int(&p, c->user_id);
    PGresult *r = run(s, P_SAME_STATUS, &p, err);
    if (!r) return last_fail;
    if (PQntuples(r) > 0) {
        row_user(r, 0, out);
        PQclear(r);
        return USERSD_OK;
    }
    PQclear(r);
    enum usersd_code code = begin(s, err);
    if (code) return code;
    if (log_lock(s, err)) goto fail;
    struct params q = {0};
    p_int(&q, c->user_id);
    r = run(s, P_STATUS_OF, &q, err); /* locks the row */
    if (!r) goto fail;
    int old = PQntuples(r) > 0 ? (int)col_int(r, 0, 0) : -1;
    PQclear(r);
    if (old < 0) {
        rollback(s);
        return err_set(err, USERSD_ENOTFOUND, "user not found");
    }
    if ((code = one_user(run(s, P_SET_STATUS, &p, err), out, err))) goto fail;
    if (old != (int)c->status) {
        q = (struct params){0};
        p_int(&q, out->id);
        p_text(&q, out->username);
        p_int(&q, out->online_status);
        p_time(&q, out->last_seen);
        p_int(&q, c->now);
        if (run0(s, P_LOG_CHANGE, &q, err) || run0(s, P_NOTIFY, NULL, err)) goto fail;
    }
    return commit(s, err);
fail:
    rollback(s);
    return last_fail;
}

static enum usersd_code pg_touch(struct store *base, int64_t id, int64_t now, int64_t before,
                                 bool *updated, struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, now);
    p_int(&p, id);
    p_int(&p, before);
    PGresult *r = run((struct pg_store *)base, P_TOUCH, &p, err);
    if (!r) return last_fail;
    *updated = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return USERSD_OK;
}

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
    if (!pending) return USERSD_OK;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    if (log_lock(s, err)) goto fail;
    int64_t cut[2] = {offline_before, away_before};
    enum pstmt step[2] = {P_DECAY_OFFLINE, P_DECAY_AWAY};
    for (int i = 0; i < 2; i++) {
        if (cut[i] == USERSD_NULL_TIME) continue;
        p = (struct params){0};
        p_int(&p, now);
        p_int(&p, cut[i]);
        if (!(r = run(s, step[i], &p, err))) goto fail;
        *changed += strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    if (*changed && run0(s, P_NOTIFY, NULL, err)) goto fail;
    if ((code = commit(s, err))) *changed = 0;
    return code;
fail:
    rollback(s);
    *changed = 0;
    return last_fail;
}

static enum usersd_code pg_changes(struct store *base, int64_t since, int limit,
                                   struct usersd_changes *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    p_int(&p, since);
    p_int(&p, limit);
    PGresult *r = run(s, P_CHANGES, &p, err);
    if (!r) return last_fail;
    size_t n = (size_t)PQntuples(r);
    out->items = calloc(n ? n : 1, sizeof *out->items);
    if (!out->items) {
        PQclear(r);
        return err_set(err, USERSD_ENOMEM, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        struct usersd_change *c = &out->items[out->count++];
        c->seq = col_int(r, (int)i, 0);
        c->user_id = col_int(r, (int)i, 1);
        col_text(c->username, sizeof c->username, r, (int)i, 2);
        c->online_status = (enum usersd_status)col_int(r, (int)i, 3);
        c->last_seen = col_time(r, (int)i, 4);
        c->at = col_int(r, (int)i, 5);
    }
    PQclear(r);
    int64_t pruned = 0; /* after the read, so a prune in between is seen */
    enum usersd_code code = one_int(run(s, P_PRUNED, NULL, err), &pruned);
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
    int fd = PQsocket(s->conn);
    fd_set in;
    FD_ZERO(&in);
    FD_SET(fd, &in);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (select(fd + 1, &in, NULL, NULL, &tv) > 0 && !PQconsumeInput(s->conn))
        return pg_error(s, NULL, err);
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        *notified = true;
        PQfreemem(n);
    }
    return USERSD_OK;
}

/* ---- copying ------------------------------------------------------------ */

static enum usersd_code pg_dump_users(struct store *base, int64_t after, size_t cap,
                                      struct store_user_row *rows, size_t *n,
                                      struct usersd_err *err)
{
    struct params p = {0};
    p_int(&p, after);
    p_int(&p, (int64_t)cap);
    PGresult *r = run((struct pg_store *)base, P_DUMP_USERS, &p, err);
    if (!r) return last_fail;
    for (*n = 0; *n < cap && *n < (size_t)PQntuples(r); (*n)++) {
        row_user(r, (int)*n, &rows[*n].user);
        col_text(rows[*n].pwhash, sizeof rows[0].pwhash, r, (int)*n, 10);
    }
    PQclear(r);
    return USERSD_OK;
}

static enum usersd_code pg_dump_tokens(struct store *base, const unsigned char *after, size_t cap,
                                       struct store_token_row *rows, size_t *n,
                                       struct usersd_err *err)
{
    struct params p = {0};
    p_bytea(&p, after ? after : (const unsigned char *)"", after ? STORE_TOKEN_HASH_LEN : 0);
    p_int(&p, (int64_t)cap);
    struct pg_store *s = (struct pg_store *)base;
    PGresult *r = run(s, P_DUMP_TOKENS, &p, err);
    if (!r) return last_fail;
    for (*n = 0; *n < cap && *n < (size_t)PQntuples(r); (*n)++) {
        size_t len = 0;
        unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, (int)*n, 0), &len);
        if (b && len == STORE_TOKEN_HASH_LEN) memcpy(rows[*n].hash, b, len);
        PQfreemem(b);
        rows[*n].user_id = col_int(r, (int)*n, 1);
        rows[*n].created = col_int(r, (int)*n, 2);
    }
    PQclear(r);
    return USERSD_OK;
}

static enum usersd_code pg_load(struct store *base, const struct store_user_row *users, size_t nu,
                                const struct store_token_row *tokens, size_t nt,
                                struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = begin(s, err);
    if (code) return code;
    for (size_t i = 0; i < nu; i++) {
        const struct usersd_user *u = &users[i].user;
        struct params p = {0};
        p_int(&p, u->id);
        p_profile(&p, u);
        p_int(&p, u->date_joined);
        p_int(&p, u->online_status);
        p_time(&p, u->last_seen);
        p_text(&p, users[i].pwhash);
        if (run0(s, P_LOAD_USER, &p, err)) goto fail;
    }
    for (size_t i = 0; i < nt; i++) {
        struct params p = {0};
        p_bytea(&p, tokens[i].hash, STORE_TOKEN_HASH_LEN);
        p_int(&p, tokens[i].user_id);
        p_int(&p, tokens[i].created);
        if (run0(s, P_LOAD_TOKEN, &p, err)) goto fail;
    }
    return commit(s, err);
fail:
    rollback(s);
    return last_fail;
}

static enum usersd_code pg_load_finish(struct store *base, int64_t head, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    p_int(&p, head);
    enum usersd_code code = run0(s, P_LOAD_IDS, NULL, err);
    return code ? code : run0(s, P_LOAD_SEQ, &p, err);
}

static enum usersd_code pg_seed(struct store *base, int64_t n, int64_t now, const char *pwhash,
                                struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    p_int(&p, n);
    p_text(&p, pwhash);
    p_int(&p, now);
    enum usersd_code code = run0(s, P_SEED, &p, err);
    return code ? code : exec_plain(s, "ANALYZE users", err);
}

/* ---- tokens ------------------------------------------------------------- */

static enum usersd_code pg_token_insert(struct store *base, const unsigned char *hash,
                                        int64_t user_id, int64_t now, struct usersd_err *err)
{
    struct params p = {0};
    p_bytea(&p, hash, STORE_TOKEN_HASH_LEN);
    p_int(&p, user_id);
    p_int(&p, now);
    return run0((struct pg_store *)base, P_TOKEN_INSERT, &p, err);
}

static enum usersd_code pg_token_user(struct store *base, const unsigned char *hash,
                                      struct usersd_user *out, struct usersd_err *err)
{
    struct params p = {0};
    p_bytea(&p, hash, STORE_TOKEN_HASH_LEN);
    return one_user(run((struct pg_store *)base, P_TOKEN_USER, &p, err), out, err);
}

static enum usersd_code pg_token_delete(struct store *base, const unsigned char *hash,
                                        int64_t *user_id, struct usersd_err *err)
{
    struct params p = {0};
    p_bytea(&p, hash, STORE_TOKEN_HASH_LEN);
    PGresult *r = run((struct pg_store *)base, P_TOKEN_DELETE, &p, err);
    if (!r) return last_fail;
    enum usersd_code code = USERSD_OK;
    if (PQntuples(r) > 0)
        *user_id = col_int(r, 0, 0);
    else
        code = err_set(err, USERSD_ENOTFOUND, "token not found");
    PQclear(r);
    return code;
}

const struct store_ops store_pg_ops = {
    .scheme = "postgresql",
    .alias = "postgres",
    .full_url = true,
    .open = pg_open,
    .close = pg_close,
    .ping = pg_ping,
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
    .touch = pg_touch,
    .decay = pg_decay,
    .changes = pg_changes,
    .changes_head = pg_changes_head,
    .changes_prune = pg_changes_prune,
    .changes_wait = pg_changes_wait,
    .dump_users = pg_dump_users,
    .dump_tokens = pg_dump_tokens,
    .load = pg_load,
    .load_finish = pg_load_finish,
    .seed = pg_seed,
    .batch = pg_batch,
    .token_insert = pg_token_insert,
    .token_user = pg_token_user,
    .token_delete = pg_token_delete,
};
