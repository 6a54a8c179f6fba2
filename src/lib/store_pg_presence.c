/* store_pg_presence.c — the PostgreSQL driver's presence: status writes
 * (one and the writer's batches), heartbeats, refreshes, decay, and the
 * change log (its entries, reads up to the horizon, pruning, LISTEN). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_pg_int.h"

/* Appends one entry to the change log in the open transaction (the log
 * lock is already held); a presence change (from prev to status) goes into
 * the history too, when kept. */
enum usersd_code pg_log_entry(struct pg_store *s, enum usersd_change_kind kind, int64_t user_id,
                              const char *username, int status, int64_t last_seen, int64_t at,
                              int64_t session_id, int prev, struct usersd_err *err)
{
    struct params q = {0};
    pg_p_int(&q, user_id);
    pg_p_text(&q, username);
    pg_p_int(&q, status);
    pg_p_time(&q, last_seen);
    pg_p_int(&q, at);
    pg_p_int(&q, kind);
    pg_p_time(&q, kind == USERSD_CHANGE_SESSION_END ? session_id : USERSD_NULL_TIME);
    enum usersd_code code = pg_run0(s, P_LOG_CHANGE, &q, err);
    if (code || kind != USERSD_CHANGE_PRESENCE || !s->base.history) return code;
    q = (struct params){0};
    pg_p_int(&q, user_id);
    pg_p_int(&q, at);
    pg_p_int(&q, status);
    pg_p_int(&q, prev);
    return pg_run0(s, P_HISTORY_INSERT, &q, err);
}

static enum usersd_code pg_set_status(struct pg_store *s_, const struct store_status_change *c,
                                      struct usersd_user *out, struct usersd_err *err);

enum usersd_code pg_set_status_op(struct store *base, const struct store_status_change *c,
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
        pg_p_text(&pa->p, pa->a[i]);
    }
    pg_p_bool(&pa->p, s->base.history);
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
        int64_t ord = pg_col_int(r, i, 0);
        if (ord < 1 || (size_t)ord > n) continue;
        struct store_status_job *j = &jobs[ord - 1];
        pg_row_user_at(r, i, 1, j->out);
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
    PGresult *r = pg_run(s, P_SET_PRESENCE, &pa.p, err);
    presence_args_free(&pa);
    if (!r) return pg_last_fail;
    bool changed = presence_rows(r, jobs, n);
    PQclear(r);
    /* Committed (or in the open transaction): a lost wake-up costs the
     * other processes at most their poll interval, not the change. */
    if (changed) pg_wake_listeners(s, NULL);
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
    enum usersd_code code = s->batch ? pg_begin(s, err) : USERSD_OK;
    if (code) return code;
    code = presence_call(s, &job, 1, err);
    if (!code) code = job.rc;
    if (s->batch) {
        if (code == USERSD_OK || code == USERSD_ENOTFOUND) {
            enum usersd_code done = pg_commit(s, err);
            if (done) code = done;
        }
        if (code && code != USERSD_ENOTFOUND) pg_rollback(s);
    }
    return code;
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
    code = pg_pipe_in_savepoint(s, P_SET_PRESENCE, &pa.p, presence_jobs_rows, &pj, err);
    presence_args_free(&pa);
    if (!code && pj.changed) s->notify = true; /* the batch is a transaction */
    return code;
}

enum usersd_code pg_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                          int64_t before, bool *updated, struct usersd_err *err);

/* A failed batch statement undid all of its changes: then each is applied
 * on its own (with its caller's activity), so that only what fails fails. */
enum usersd_code pg_set_status_many(struct store *base, struct store_status_job *jobs, size_t n)
{
    struct pg_store *s = (struct pg_store *)base;
    struct usersd_err err = {0};
    enum usersd_code code = n ? pipe_presence(s, jobs, n, &err) : USERSD_OK;
    if (!code) return USERSD_OK;
    bool fatal = s->batch ? !pg_undo_savepoint(s, &err)
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
    pg_p_int(&p, now);
    pg_p_int(&p, id);
    pg_p_int(&p, before);
    PGresult *r = pg_run(s, id_stmt, &p, err);
    if (!r) return pg_last_fail;
    *changed = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return USERSD_OK;
}

enum usersd_code pg_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                          int64_t before, bool *updated, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    if (!session) return run_touch(s, P_TOUCH, id, now, before, updated, err);
    enum usersd_code code = pg_begin(s, err); /* the user and the session: one commit */
    if (code) return code;
    bool used;
    if (!(code = run_touch(s, P_TOUCH, id, now, before, updated, err)) &&
        !(code = run_touch(s, P_SESSION_TOUCH, session, now, before, &used, err)))
        return pg_commit(s, err);
    pg_rollback(s);
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
enum usersd_code pg_refresh(struct store *base, const struct usersd_refresh *r, size_t n,
                            int64_t interval_us, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    const size_t stride = sizeof *r / sizeof(int64_t);
    char *a[3] = {pg_int_array(&r->user_id, n, stride), pg_int_array(&r->session_id, n, stride),
                  pg_int_array(&r->at, n, stride)};
    enum usersd_code code = USERSD_OK;
    if (!a[0] || !a[1] || !a[2]) code = err_set(err, USERSD_ENOMEM, NULL);
    struct params p = {0};
    for (int i = 0; i < 3; i++)
        pg_p_text(&p, a[i]);
    pg_p_int(&p, interval_us);
    pg_p_bool(&p, !s->batch);
    if (!code && s->batch) {
        /* Undone, the batch goes on; or the batch fails at its next step. */
        if ((code = pg_pipe_in_savepoint(s, P_REFRESH, &p, no_rows, NULL, err)))
            pg_undo_savepoint(s, NULL);
    } else if (!code) {
        code = pg_run0(s, P_REFRESH, &p, err);
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

enum usersd_code pg_decay(struct store *base, int64_t now, int64_t away_before,
                          int64_t offline_before, int64_t *changed, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *changed = 0;
    struct params p = {0};
    pg_p_time(&p, away_before);
    pg_p_time(&p, offline_before);
    PGresult *r = pg_run(s, P_DECAY_PENDING, &p, err);
    if (!r) return pg_last_fail;
    bool pending = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    int64_t cut[2] = {offline_before, away_before};
    enum pstmt step[2] = {P_DECAY_OFFLINE, P_DECAY_AWAY};
    bool more = pending;
    for (int round = 0; more && round < DECAY_ROUNDS; round++) {
        enum usersd_code code = pg_begin(s, err);
        if (code) return code;
        int64_t done = 0;
        more = false;
        for (int i = 0; i < 2; i++) {
            if (cut[i] == USERSD_NULL_TIME) continue;
            p = (struct params){0};
            pg_p_int(&p, now);
            pg_p_int(&p, cut[i]);
            pg_p_bool(&p, s->base.history);
            pg_p_int(&p, DECAY_CHUNK);
            int64_t n = 0;
            if (pg_one_int(pg_run(s, step[i], &p, err), &n)) goto fail;
            done += n;
            more = more || n == DECAY_CHUNK;
        }
        if (done && pg_wake_listeners(s, err)) goto fail;
        if ((code = pg_commit(s, err))) return code;
        *changed += done; /* committed */
    }
    return USERSD_OK;
fail:
    pg_rollback(s);
    return pg_last_fail;
}

static void dec_change(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    struct usersd_change *c = item;
    c->seq = pg_col_int(r, i, 0);
    c->user_id = pg_col_int(r, i, 1);
    pg_col_text(c->username, sizeof c->username, r, i, 2);
    c->online_status = (enum usersd_status)pg_col_int(r, i, 3);
    c->last_seen = pg_col_time(r, i, 4);
    c->at = pg_col_int(r, i, 5);
    c->kind = (enum usersd_change_kind)pg_col_int(r, i, 6);
    c->session_id = pg_col_int(r, i, 7);
    pg_col_text(c->status_text, sizeof c->status_text, r, i, 8);
    c->status_expires = pg_col_time(r, i, 9);
    store_dnd_read(pg_col_time(r, i, 10), &c->dnd, &c->dnd_until);
}

enum usersd_code pg_changes(struct store *base, int64_t since, int limit, unsigned kinds,
                            struct usersd_changes *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct params p = {0};
    pg_p_int(&p, since);
    pg_p_int(&p, limit);
    pg_p_int(&p, kinds);
    PGresult *r = pg_run(s, P_CHANGES, &p, err);
    if (!r) return pg_last_fail;
    void *items;
    enum usersd_code code =
        pg_rows_new(r, SIZE_MAX, sizeof *out->items, dec_change, NULL, &items, &out->count, err);
    out->items = items;
    if (code) return code;
    int64_t pruned = 0; /* after the read, so a prune in between is seen */
    code = pg_one_int(pg_run(s, P_PRUNED, NULL, err), &pruned);
    if (!code) code = store_check_pruned(since, pruned, err);
    if (code) usersd_changes_free(out);
    return code;
}

enum usersd_code pg_changes_head(struct store *base, int64_t *seq, struct usersd_err *err)
{
    return pg_one_int(pg_run((struct pg_store *)base, P_HEAD, NULL, err), seq);
}

enum usersd_code pg_changes_prune(struct store *base, int64_t before, struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, before);
    return pg_run0((struct pg_store *)base, P_PRUNE, &p, err);
}

enum usersd_code pg_changes_wait(struct store *base, int timeout_ms, bool *notified,
                                 struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *notified = false;
    enum usersd_code code = pg_ensure_conn(s, err);
    if (!code && !s->listening) {
        code = pg_exec_plain(s, "LISTEN " CHANNEL, err);
        s->listening = code == USERSD_OK;
    }
    if (code) return code;
    /* poll, not select: with thousands of streams open, a reconnected
     * socket's number is past FD_SETSIZE. */
    struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0 && !PQconsumeInput(s->conn)) {
        pg_conn_lost(s, false);
        return pg_unavailable(err);
    }
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        *notified = true;
        PQfreemem(n);
    }
    return USERSD_OK;
}
