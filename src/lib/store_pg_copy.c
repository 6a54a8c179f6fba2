/* store_pg_copy.c — the PostgreSQL driver's bulk copy: dumping users and
 * sessions, loading with COPY … FROM STDIN, and seeding for load tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

static void dec_user_row(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    struct store_user_row *x = item;
    pg_row_user(r, i, &x->user);
    pg_col_text(x->pwhash, sizeof x->pwhash, r, i, USER_NCOLS);
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
    pg_row_session(r, i, 1, &x->s);
}

enum usersd_code pg_dump_users(struct store *base, int64_t after, size_t cap,
                               struct store_user_row *rows, size_t *n, struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, after);
    pg_p_int(&p, (int64_t)cap);
    return pg_rows_into(pg_run((struct pg_store *)base, P_DUMP_USERS, &p, err), cap, rows,
                        sizeof *rows, dec_user_row, NULL, n);
}

enum usersd_code pg_dump_sessions(struct store *base, int64_t after, size_t cap,
                                  struct store_session_row *rows, size_t *n, struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, after);
    pg_p_int(&p, (int64_t)cap);
    return pg_rows_into(pg_run((struct pg_store *)base, P_DUMP_SESSIONS, &p, err), cap, rows,
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
enum usersd_code pg_load(struct store *base, const struct store_user_row *users, size_t nu,
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
enum usersd_code pg_load_history(struct store *base, const struct store_history_row *h, size_t nh,
                                 const struct store_minute_row *m, size_t nm,
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

enum usersd_code pg_load_begin(struct store *base, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = pg_begin(s, err);
    if (!code) code = pg_lift_timeout(s, err);
    return code ? code : pg_exec_plain(s, load_begin_sql, err);
}

enum usersd_code pg_load_finish(struct store *base, int64_t head,
                                const struct store_progress *progress, struct usersd_err *err)
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
        code = pg_exec_plain(s, PQgetvalue(r, i, 0), err);
    }
    PQclear(r);
    store_progress(progress, "indexes", n, n + 1);
    if (!code) code = pg_exec_plain(s, load_counts_sql, err);
    if (!code) code = pg_run0(s, P_LOAD_IDS, NULL, err);
    if (!code && head >= 0) {
        struct params p = {0};
        pg_p_int(&p, head);
        code = pg_run0(s, P_LOAD_SEQ, &p, err);
    }
    if (!code) code = pg_commit(s, err);
    if (!code) store_progress(progress, "indexes", n + 1, n + 1);
    return code;
}

void pg_load_abort(struct store *base)
{
    pg_rollback((struct pg_store *)base);
}

enum usersd_code pg_seed(struct store *base, int64_t *first_id, int64_t from, int64_t n,
                         int64_t now, const char *pwhash, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!from) {
        enum usersd_code code = pg_one_int(pg_run(s, P_MAX_ID, NULL, err), first_id);
        if (code) return code;
    }
    struct params p = {0};
    pg_p_int(&p, from);
    pg_p_text(&p, pwhash);
    pg_p_int(&p, now);
    pg_p_int(&p, n);
    pg_p_int(&p, *first_id);
    return pg_run0(s, P_SEED, &p, err);
}

/* ---- load testing ------------------------------------------------------- */

/* Runs sql with text parameters in the open transaction; NULL with err
 * filled on failure. For the one-off statements of seeding, not prepared. */
static PGresult *run_once(struct pg_store *s, const char *sql, int n, const char *const *v,
                          struct usersd_err *err)
{
    s->hinted = s->snap_fresh = false;
    PGresult *r =
        pg_answer(s, s->conn && PQsendQueryParams(s->conn, sql, n, NULL, v, NULL, NULL, 0));
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
    enum usersd_code code = pg_begin(s, err);
    if (code) return code;
    /* Picking among a million users may take longer than the 10 s every
     * statement of a request gets; this transaction only. */
    PGresult *r = NULL;
    if (!(code = pg_lift_timeout(s, err))) {
        r = run_once(s, sql, n, v, err);
        code = r ? pg_commit(s, err) : pg_last_fail;
    }
    if (code) {
        pg_rollback(s);
        PQclear(r);
        r = NULL;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return code;
}

enum usersd_code pg_session_seed(struct store *base, const unsigned char *hashes, size_t k,
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
        user_ids[i] = pg_col_int(r, (int)i, 0);
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
