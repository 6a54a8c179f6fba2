/* store_sqlite_presence.c — the SQLite driver's presence: status writes
 * (one and many), last_seen refreshes, decay, and the change log (appending
 * to it, reading it, its head and pruning). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

/* Appends one entry to the change log in the open transaction. */
static enum usersd_code log_row(struct sqlite_store *s, enum usersd_change_kind kind,
                                int64_t user_id, const char *username, int status,
                                int64_t last_seen, int64_t at, int64_t session_id,
                                struct usersd_err *err)
{
    return sq_run(s, S_LOG_CHANGE,
                  ARGS(V_INT(user_id), V_TEXT(username), V_INT(status), V_TIME(last_seen),
                       V_INT(at), V_INT(kind),
                       kind == USERSD_CHANGE_SESSION_END ? V_INT(session_id) : V_NULL),
                  err);
}

/* log_row, and a presence change (from prev to status) into the history
 * too, when kept. */
enum usersd_code sq_log_entry(struct sqlite_store *s, enum usersd_change_kind kind, int64_t user_id,
                              const char *username, int status, int64_t last_seen, int64_t at,
                              int64_t session_id, int prev, struct usersd_err *err)
{
    enum usersd_code code =
        log_row(s, kind, user_id, username, status, last_seen, at, session_id, err);
    if (code || kind != USERSD_CHANGE_PRESENCE || !s->base.history) return code;
    return sq_history_append(s, user_id, at, status, prev, err);
}

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
    p->last_seen = sq_col_time(st, 1);
    p->head = sq_col_time(st, 2);
    p->manual = sqlite3_column_int(st, 3) != 0;
    return USERSD_OK;
}

/* A status transition, the one hot write: one read of the narrow presence
 * row, then for a heartbeat of an online user one update, and for a real
 * change the name for the log, a history row, one update and the log row.
 * Inside the writer's batch it takes no savepoint: every check comes before
 * the first write, so a refused call (an unknown user) has nothing to
 * undo, and a database error half-way fails the whole batch. */
enum usersd_code sq_set_status(struct store *base, const struct store_status_change *c,
                               struct usersd_user *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    bool own_tx = !s->batch;
    enum usersd_code code = own_tx ? sq_exec_simple(s, S_BEGIN, err) : USERSD_OK;
    if (code) return code;
    bool wrote = false, found;
    struct presence_of p = {-1, USERSD_NULL_TIME, USERSD_NULL_TIME, false};
    if ((code = sq_one(s, sq_stmt(s, S_PRESENCE_OF, ARGS(V_INT(c->user_id)), err), dec_presence_of,
                       &p, &found, err)))
        goto out;
    if (!found) {
        if (own_tx) sq_exec_simple(s, S_ROLLBACK, NULL);
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
        if ((code = sq_one(s, sq_stmt(s, S_USERNAME, ARGS(V_INT(c->user_id)), err), sq_dec_presence,
                           &n, NULL, err)))
            goto out;
        if (s->base.history) {
            sqlite3_stmt *st = sq_stmt(
                s, S_HISTORY_ADD,
                ARGS(V_INT(c->user_id), V_INT(c->now), V_INT(status), V_INT(old), V_TIME(head)),
                err);
            if (!st) goto fail;
            wrote = true;
            if ((code = sq_step_with(s, st, sq_db_error, err))) goto out;
            head = sqlite3_last_insert_rowid(s->db);
        }
    }
    if (change || seen != old_seen || manual != old_manual) {
        sqlite3_stmt *st = sq_stmt(
            s, S_PRESENCE_SET,
            ARGS(V_INT(c->user_id), V_INT(status), V_TIME(seen), V_TIME(head), V_INT(manual)), err);
        if (!st) goto fail;
        wrote = true;
        if ((code = sq_step_with(s, st, sq_db_error, err))) goto out;
    }
    if (change && (code = log_row(s, USERSD_CHANGE_PRESENCE, c->user_id, name, status, seen, c->now,
                                  0, err))) {
        wrote = true;
        goto out;
    }
    if (own_tx && (code = sq_exec_simple(s, S_COMMIT, err))) goto out;
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
    code = sq_db_error(s, err);
out:
    if (own_tx)
        sq_rollback(s);
    else if (wrote)
        s->batch_failed = true;
    return code;
}

/* Runs a statement that binds (now, id, before); *changed tells whether a
 * row changed. */
enum usersd_code sq_run_touch(struct sqlite_store *s, enum stmt_id id_stmt, int64_t id, int64_t now,
                              int64_t before, bool *changed, struct usersd_err *err)
{
    enum usersd_code code = sq_run(s, id_stmt, ARGS(V_INT(now), V_INT(id), V_INT(before)), err);
    if (!code) *changed = sqlite3_changes(s->db) > 0;
    return code;
}

enum usersd_code sq_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                          int64_t before, bool *updated, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (!session) return sq_run_touch(s, S_TOUCH, id, now, before, updated, err);
    /* The user and the session move together: one commit. */
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    bool used;
    if (!(code = sq_run_touch(s, S_TOUCH, id, now, before, updated, err)) &&
        !(code = sq_run_touch(s, S_SESSION_TOUCH, session, now, before, &used, err)))
        code = sq_commit(s, err);
    if (code) sq_rollback(s);
    return code;
}

/* The refreshes of a flush in one transaction (a savepoint inside the
 * writer's batch), in the order given: the writer sorts them by user. */
enum usersd_code sq_refresh(struct store *base, const struct usersd_refresh *r, size_t n,
                            int64_t interval_us, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    bool moved;
    for (size_t i = 0; i < n && !code; i++) {
        int64_t before = r[i].at - interval_us;
        code = sq_run_touch(s, S_TOUCH, r[i].user_id, r[i].at, before, &moved, err);
        if (!code && r[i].session_id > 0)
            code = sq_run_touch(s, S_SESSION_TOUCH, r[i].session_id, r[i].at, before, &moved, err);
    }
    if (!code) code = sq_commit(s, err);
    if (code) sq_rollback(s);
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
    sq_copy_text(d->name, sizeof d->name, st, 1);
    d->status = sqlite3_column_int(st, 2);
    d->last_seen = sq_col_time(st, 3);
    return USERSD_OK;
}

enum usersd_code sq_decay(struct store *base, int64_t now, int64_t away_before,
                          int64_t offline_before, int64_t *changed, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *changed = 0;
    int64_t pending = 0;
    enum usersd_code code = sq_count_query(
        s, sq_stmt(s, S_DECAY_PENDING, ARGS(V_TIME(away_before), V_TIME(offline_before)), err),
        &pending, err);
    if (code || !pending) return code;

    struct decay_due *due = malloc(DECAY_CHUNK * sizeof *due);
    if (!due) return err_set(err, USERSD_ENOMEM, NULL);
    /* A chunk per transaction: the users due are read and changed under the
     * same write lock, so processes sweeping at once each change (and log)
     * a user once. Past both cut-offs, a user goes straight offline. */
    for (int round = 0; round < 100 && !code; round++) {
        if ((code = sq_begin(s, err))) break;
        size_t n = 0;
        code = sq_rows(
            s,
            sq_stmt(s, S_DECAY_DUE,
                    ARGS(V_TIME(away_before), V_TIME(offline_before), V_INT(DECAY_CHUNK)), err),
            DECAY_CHUNK, dec_decay_due, due, &n, err);
        for (size_t i = 0; i < n && !code; i++) {
            bool off = offline_before != USERSD_NULL_TIME && due[i].last_seen < offline_before;
            int to = off ? USERSD_OFFLINE : USERSD_AWAY;
            code = sq_run(s, S_DECAY_SET, ARGS(V_INT(due[i].id), V_INT(to)), err);
            /* Decay never moves last_seen. */
            if (!code)
                code = sq_log_entry(s, USERSD_CHANGE_PRESENCE, due[i].id, due[i].name, to,
                                    due[i].last_seen, now, 0, due[i].status, err);
        }
        if (!code) code = sq_commit(s, err);
        if (code) {
            sq_rollback(s);
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
    struct usersd_change *items = sq_grow(out->items, &r->cap, out->count, sizeof *items, 16);
    if (!items) return err_set(err, USERSD_ENOMEM, NULL);
    out->items = items;
    struct usersd_change *c = &out->items[out->count++];
    memset(c, 0, sizeof *c);
    c->seq = sqlite3_column_int64(st, 0);
    c->user_id = sqlite3_column_int64(st, 1);
    sq_copy_text(c->username, sizeof c->username, st, 2);
    c->online_status = (enum usersd_status)sqlite3_column_int(st, 3);
    c->last_seen = sq_col_time(st, 4);
    c->at = sqlite3_column_int64(st, 5);
    c->kind = (enum usersd_change_kind)sqlite3_column_int(st, 6);
    c->session_id = sqlite3_column_int64(st, 7);
    sq_copy_text(c->status_text, sizeof c->status_text, st, 8);
    c->status_expires = sq_col_time(st, 9);
    store_dnd_read(sq_col_time(st, 10), &c->dnd, &c->dnd_until);
    return USERSD_OK;
}

enum usersd_code sq_changes(struct store *base, int64_t since, int limit, unsigned kinds,
                            struct usersd_changes *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct change_rows c = {out, 0};
    enum usersd_code code =
        sq_rows(s, sq_stmt(s, S_CHANGES, ARGS(V_INT(since), V_INT(limit), V_INT((int)kinds)), err),
                (size_t)limit, dec_change, &c, NULL, err);
    /* Checked after the read: a prune that ran in between is seen here. */
    int64_t pruned = 0;
    if (!code) code = sq_count_query(s, sq_prep(s, S_PRUNED, err), &pruned, err);
    if (!code) code = store_check_pruned(since, pruned, err);
    if (code) usersd_changes_free(out);
    return code;
}

enum usersd_code sq_changes_head(struct store *base, int64_t *seq, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_count_query(s, sq_prep(s, S_HEAD, err), seq, err);
}

enum usersd_code sq_changes_prune(struct store *base, int64_t before, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    /* max(seq): NULL when nothing is that old. */
    int64_t upto = USERSD_NULL_TIME;
    if ((code = sq_one(s, sq_stmt(s, S_PRUNE_MAX, ARGS(V_INT(before)), err), sq_dec_time, &upto,
                       NULL, err)))
        goto out;
    if (upto != USERSD_NULL_TIME) {
        if ((code = sq_run(s, S_PRUNE_DELETE, ARGS(V_TIME(upto)), err))) goto out;
        if ((code = sq_run(s, S_PRUNE_META, ARGS(V_TIME(upto)), err))) goto out;
    }
    code = sq_commit(s, err);
out:
    if (code) sq_rollback(s);
    return code;
}

/* A batch of changes is simply each in turn (each its own savepoint in
 * the writer's batch), the caller's activity after it as
 * usersd_session_activity would write it (best effort, as there). */
enum usersd_code sq_set_status_many(struct store *base, struct store_status_job *jobs, size_t n)
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
