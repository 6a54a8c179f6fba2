/* store_sqlite_history.c — the SQLite driver's status messages and do not
 * disturb (setting, clearing, expiring, counting), and the presence history:
 * appending, reading a user's chain, the minute samples, pruning, and
 * dumping and loading both for a copy. */
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

/* Columns 0 and 1 as integers (ctx: two int64_t a row). */
static enum usersd_code dec_int64_pair(sqlite3_stmt *st, size_t i, void *ctx,
                                       struct usersd_err *err)
{
    (void)err;
    ((int64_t *)ctx)[2 * i] = sqlite3_column_int64(st, 0);
    ((int64_t *)ctx)[2 * i + 1] = sqlite3_column_int64(st, 1);
    return USERSD_OK;
}

/* Appends a history row for user_id at the hot end of the history, chained
 * to their previous one, and makes it their latest (open transaction). */
enum usersd_code sq_history_append(struct sqlite_store *s, int64_t user_id, int64_t at, int status,
                                   int prev, struct usersd_err *err)
{
    enum usersd_code code = sq_run(
        s, S_HISTORY_INSERT, ARGS(V_INT(user_id), V_INT(at), V_INT(status), V_INT(prev)), err);
    if (code) return code;
    return sq_run(s, S_HISTORY_HEAD_SET,
                  ARGS(V_INT(user_id), V_INT(sqlite3_last_insert_rowid(s->db))), err);
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
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    struct sq_arg a[7];
    int n = 0;
    a[n++] = V_INT(id);
    if (set && with_text) a[n++] = V_TEXT(text);
    if (set) a[n++] = V_TIME(t);
    if ((code = sq_run(s, upd, a, n, err))) {
        sq_rollback(s);
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
        code = sq_run(s, log, a, n, err);
    }
    if (!code) code = sq_commit(s, err);
    if (code) sq_rollback(s);
    return code;
}

enum usersd_code sq_status_message(struct store *base, int64_t id, const char *text,
                                   int64_t expires, int64_t now, struct usersd_user *out,
                                   struct usersd_err *err)
{
    return beside_write((struct sqlite_store *)base, text ? S_MESSAGE_SET : S_MESSAGE_CLEAR,
                        S_LOG_MESSAGE, text != NULL, true, id, text, expires, now, out, err);
}

enum usersd_code sq_dnd(struct store *base, int64_t id, bool on, int64_t until, int64_t now,
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
        sq_count_query(s, sq_stmt(s, pending_stmt, ARGS(V_INT(now)), err), &pending, err);
    if (code || !pending) return code;
    if ((code = sq_begin(s, err))) return code;
    if (!(code = sq_run(s, log, ARGS(V_TIME(now)), err)) &&
        !(code = sq_run(s, upd, ARGS(V_TIME(now)), err))) {
        *n = sqlite3_changes(s->db);
        code = sq_commit(s, err);
    }
    if (code) {
        sq_rollback(s);
        *n = 0;
    }
    return code;
}

enum usersd_code sq_status_message_expire(struct store *base, int64_t now, int64_t *n,
                                          struct usersd_err *err)
{
    return expire_sweep((struct sqlite_store *)base, S_MESSAGE_PENDING, S_LOG_MESSAGE_EXPIRED,
                        S_MESSAGE_EXPIRE, now, n, err);
}

enum usersd_code sq_dnd_expire(struct store *base, int64_t now, int64_t *n, struct usersd_err *err)
{
    return expire_sweep((struct sqlite_store *)base, S_DND_PENDING, S_LOG_DND_EXPIRED, S_DND_EXPIRE,
                        now, n, err);
}

enum usersd_code sq_presence_counts(struct store *base, int64_t *manual, int64_t *dnd,
                                    struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t c[2] = {0, 0};
    enum usersd_code code =
        sq_one(s, sq_prep(s, S_PRESENCE_COUNTS, err), dec_int64_pair, c, NULL, err);
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
    *c->back = sq_col_time(st, 3);
    return USERSD_OK;
}

enum usersd_code sq_history_read(struct store *base, int64_t id, int64_t start, int64_t end,
                                 struct store_history *out, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    memset(out, 0, sizeof *out);
    out->since = USERSD_NULL_TIME;
    enum usersd_code code =
        sq_one(s, sq_prep(s, S_HISTORY_SINCE, err), sq_dec_time, &out->since, NULL, err);
    if (code) return code;
    /* The user's latest change (none: an unknown user, or no history). */
    int64_t at_row = USERSD_NULL_TIME;
    struct presence_row p = {.head = &at_row};
    bool found;
    if ((code = sq_one(s, sq_stmt(s, S_USER_PRESENCE, ARGS(V_INT(id)), err), sq_dec_presence, &p,
                       &found, err)))
        return code;
    /* Walk the user's chain back from their latest change: the rows at or
     * after end (the last of them is `next`), those inside the window (kept,
     * newest first, reversed below), and the first at or before start. */
    size_t cap = 0;
    while (at_row != USERSD_NULL_TIME && !code) {
        struct chain_row c = {.r = {.user_id = id}, .back = &at_row};
        if ((code = sq_one(s, sq_stmt(s, S_HISTORY_ROW, ARGS(V_INT(at_row)), err), dec_chain_row,
                           &c, &found, err)))
            break;
        if (!found) break; /* pruned: the chain ends here */
        struct store_history_row r = c.r;
        if (r.at >= end) {
            out->have_next = true;
            out->next = r;
        } else if (r.at > start) {
            struct store_history_row *rows = sq_grow(out->rows, &cap, out->count, sizeof *rows, 32);
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

enum usersd_code sq_history_mark(struct store *base, int64_t since, bool only_if_unset,
                                 struct usersd_err *err)
{
    return sq_run((struct sqlite_store *)base,
                  only_if_unset ? S_HISTORY_MARK_UNSET : S_HISTORY_MARK, ARGS(V_TIME(since)), err);
}

enum usersd_code sq_history_prune(struct store *base, int64_t before, int limit, int64_t *n,
                                  struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *n = 0;
    enum usersd_code code = sq_begin(s, err);
    if (code) return code;
    if (!(code = sq_run(s, S_HISTORY_PRUNE, ARGS(V_INT(before), V_INT(limit)), err))) {
        *n = sqlite3_changes(s->db);
        if (!(code = sq_run(s, S_MINUTES_PRUNE, ARGS(V_TIME(before)), err)) &&
            !(code = sq_run(s, S_HISTORY_MOVE_SINCE, ARGS(V_TIME(before)), err)))
            code = sq_commit(s, err);
    }
    if (code) {
        sq_rollback(s);
        *n = 0;
    }
    return code;
}

enum usersd_code sq_history_sample(struct store *base, int64_t minute, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t exists = 0;
    enum usersd_code code =
        sq_count_query(s, sq_stmt(s, S_MINUTE_EXISTS, ARGS(V_INT(minute)), err), &exists, err);
    if (code || exists) return code;
    /* A read's sample (history.c) comes inside the GET's read scope, a
     * transaction no write can start in: the scope ends for the sample
     * and begins again after it, on the snapshot that has the row. */
    bool scoped = s->scope;
    if (scoped) sq_read_scope(base, false, NULL);
    /* Checked again under the write lock: another process may have been
     * first. */
    if ((code = sq_begin(s, err))) goto out;
    code = sq_count_query(s, sq_stmt(s, S_MINUTE_EXISTS, ARGS(V_INT(minute)), err), &exists, err);
    if (!code && !exists && !(code = sq_run(s, S_MINUTE_CLOSE, ARGS(V_TIME(minute)), err)) &&
        !(code = sq_run(s, S_MINUTE_INSERT, ARGS(V_TIME(minute)), err)))
        code = sq_exec_simple(s, S_PEAK_RESET, err);
    if (!code) code = sq_commit(s, err);
    if (code) sq_rollback(s);
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
    struct store_minute_row *rows = sq_grow(*m->out, &m->cap, *m->n, sizeof *rows, 64);
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
    v[1] = sq_col_time(st, 1);
    return USERSD_OK;
}

enum usersd_code sq_minutes_read(struct store *base, int64_t from, int64_t to,
                                 struct store_minute_row **out, size_t *n, int64_t *live_peak,
                                 int64_t *open, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *out = NULL;
    *n = 0;
    int64_t peak[2] = {0, USERSD_NULL_TIME};
    enum usersd_code code = sq_one(s, sq_prep(s, S_LIVE_PEAK, err), dec_live_peak, peak, NULL, err);
    if (code) return code;
    *live_peak = peak[0];
    *open = peak[1];
    sqlite3_stmt *st = sq_stmt(s, S_MINUTES, ARGS(V_INT(from), V_INT(to)), err);
    if (!st) return USERSD_EDB;
    struct minute_rows m = {out, n, 0};
    if ((code = sq_rows(s, st, SIZE_MAX, dec_minute_grow, &m, NULL, err))) {
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

enum usersd_code sq_dump_history(struct store *base, int64_t cursor[2], size_t cap,
                                 struct store_history_row *out, size_t *n, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    /* rowid order: time order, each user's in turn */
    struct history_dump d = {out, cursor};
    return sq_rows(s, sq_stmt(s, S_DUMP_HISTORY, ARGS(V_INT(cursor[0]), V_INT(cap)), err), cap,
                   dec_history_dump, &d, n, err);
}

enum usersd_code sq_dump_minutes(struct store *base, int64_t after, size_t cap,
                                 struct store_minute_row *out, size_t *n, struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    return sq_rows(s, sq_stmt(s, S_DUMP_MINUTES, ARGS(V_INT(after), V_INT(cap)), err), cap,
                   dec_minute, out, n, err);
}

/* Inside a bulk load (load_begin). */
enum usersd_code sq_load_history(struct store *base, const struct store_history_row *h, size_t nh,
                                 const struct store_minute_row *m, size_t nm,
                                 struct usersd_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum usersd_code code = USERSD_OK;
    /* Each user's rows come in time order (both drivers dump them so):
     * appended, they chain as they did. */
    for (size_t i = 0; i < nh && !code; i++)
        code = sq_history_append(s, h[i].user_id, h[i].at, h[i].status, h[i].prev, err);
    for (size_t i = 0; i < nm && !code; i++) {
        const struct store_minute_row *r = &m[i];
        code = sq_run(s, S_LOAD_MINUTE,
                      ARGS(V_INT(r->minute), V_INT(r->online), V_INT(r->away), V_INT(r->offline),
                           V_INT(r->online_max)),
                      err);
    }
    return code;
}
