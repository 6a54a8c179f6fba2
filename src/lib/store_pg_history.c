/* store_pg_history.c — the PostgreSQL driver's status messages, do not
 * disturb, the presence history and its minutes (reads, samples, dumps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

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
    enum usersd_code code = pg_begin(s, err);
    if (code) return code;
    code = pg_one_user(pg_run(s, upd, p, err), out, err);
    if (code == USERSD_ENOTFOUND && !set) { /* nothing to clear, or no user */
        pg_rollback(s);
        return pg_user_get(&s->base, id, out, err);
    }
    if (code) goto out;
    struct params q = {0};
    pg_p_int(&q, out->id);
    pg_p_text(&q, out->username);
    pg_p_int(&q, out->online_status);
    pg_p_time(&q, out->last_seen);
    pg_p_int(&q, now);
    if (with_text) pg_p_text(&q, text);
    pg_p_time(&q, t);
    if ((code = pg_run0(s, log, &q, err)) || (code = pg_wake_listeners(s, err))) goto out;
    return pg_commit(s, err);
out:
    pg_rollback(s);
    return code;
}

enum usersd_code pg_status_message(struct store *base, int64_t id, const char *text,
                                   int64_t expires, int64_t now, struct usersd_user *out,
                                   struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, id);
    if (text) {
        pg_p_text(&p, text);
        pg_p_time(&p, expires);
    }
    return beside_write((struct pg_store *)base, text ? P_MESSAGE_SET : P_MESSAGE_CLEAR,
                        P_LOG_MESSAGE, text != NULL, id, &p, now, text, true,
                        text ? expires : USERSD_NULL_TIME, out, err);
}

enum usersd_code pg_dnd(struct store *base, int64_t id, bool on, int64_t until, int64_t now,
                        struct usersd_user *out, struct usersd_err *err)
{
    struct params p = {0};
    int64_t col = store_dnd_col(on, until);
    pg_p_int(&p, id);
    if (on) pg_p_time(&p, col);
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
    pg_p_int(&p, now);
    PGresult *r = pg_run(s, pending_stmt, &p, err);
    if (!r) return pg_last_fail;
    bool pending = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!pending) return USERSD_OK;
    enum usersd_code code = pg_begin(s, err);
    if (code) return code;
    if (!(r = pg_run(s, sweep, &p, err))) {
        code = pg_last_fail;
        goto out;
    }
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if ((*n && (code = pg_wake_listeners(s, err))) || (code = pg_commit(s, err))) goto out;
    return USERSD_OK;
out:
    pg_rollback(s);
    *n = 0;
    return code;
}

enum usersd_code pg_status_message_expire(struct store *base, int64_t now, int64_t *n,
                                          struct usersd_err *err)
{
    return expire_sweep((struct pg_store *)base, P_MESSAGE_PENDING, P_MESSAGE_EXPIRE, now, n, err);
}

enum usersd_code pg_dnd_expire(struct store *base, int64_t now, int64_t *n, struct usersd_err *err)
{
    return expire_sweep((struct pg_store *)base, P_DND_PENDING, P_DND_EXPIRE, now, n, err);
}

enum usersd_code pg_presence_counts(struct store *base, int64_t *manual, int64_t *dnd,
                                    struct usersd_err *err)
{
    PGresult *r = pg_run((struct pg_store *)base, P_PRESENCE_COUNTS, NULL, err);
    if (!r) return pg_last_fail;
    *manual = pg_col_int(r, 0, 0);
    *dnd = pg_col_int(r, 0, 1);
    PQclear(r);
    return USERSD_OK;
}

/* ---- history ---------------------------------------------------------------- */

/* at, status, prev of the user *ctx. */
static void dec_history(PGresult *r, int i, void *item, const void *ctx)
{
    *(struct store_history_row *)item =
        (struct store_history_row){*(const int64_t *)ctx, pg_col_int(r, i, 0),
                                   (int)pg_col_int(r, i, 1), (int)pg_col_int(r, i, 2)};
}

enum usersd_code pg_history_read(struct store *base, int64_t id, int64_t start, int64_t end,
                                 struct store_history *out, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    memset(out, 0, sizeof *out);
    PGresult *r = pg_run(s, P_HISTORY_SINCE, NULL, err);
    if (!r) return pg_last_fail;
    out->since = PQntuples(r) ? pg_col_time(r, 0, 0) : USERSD_NULL_TIME;
    PQclear(r);
    struct params p = {0};
    pg_p_int(&p, id);
    pg_p_int(&p, start);
    if (!(r = pg_run(s, P_HISTORY_FIRST, &p, err))) return pg_last_fail;
    if (PQntuples(r)) {
        out->have_first = true;
        out->first = (struct store_history_row){id, pg_col_int(r, 0, 0), (int)pg_col_int(r, 0, 1),
                                                (int)pg_col_int(r, 0, 2)};
    }
    PQclear(r);
    pg_p_int(&p, end);
    if (!(r = pg_run(s, P_HISTORY_ROWS, &p, err))) return pg_last_fail;
    void *rows;
    enum usersd_code code =
        pg_rows_new(r, SIZE_MAX, sizeof *out->rows, dec_history, &id, &rows, &out->count, err);
    out->rows = rows;
    if (code) return code;
    p = (struct params){0};
    pg_p_int(&p, id);
    pg_p_int(&p, end);
    if (!(r = pg_run(s, P_HISTORY_NEXT, &p, err))) {
        free(out->rows);
        out->rows = NULL;
        return pg_last_fail;
    }
    if (PQntuples(r)) {
        out->have_next = true;
        out->next = (struct store_history_row){id, pg_col_int(r, 0, 0), (int)pg_col_int(r, 0, 1),
                                               (int)pg_col_int(r, 0, 2)};
    }
    PQclear(r);
    return USERSD_OK;
}

enum usersd_code pg_history_mark(struct store *base, int64_t since, bool only_if_unset,
                                 struct usersd_err *err)
{
    struct params p = {0};
    pg_p_time(&p, since);
    return pg_run0((struct pg_store *)base, only_if_unset ? P_HISTORY_MARK_UNSET : P_HISTORY_MARK,
                   &p, err);
}

enum usersd_code pg_history_prune(struct store *base, int64_t before, int limit, int64_t *n,
                                  struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, before);
    pg_p_int(&p, limit);
    *n = 0;
    return pg_one_int(pg_run((struct pg_store *)base, P_HISTORY_PRUNE, &p, err), n);
}

enum usersd_code pg_history_sample(struct store *base, int64_t minute, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    enum usersd_code code = pg_begin(s, err);
    if (code) return code;
    struct params p = {0};
    pg_p_int(&p, minute);
    /* Whoever inserts the minute's row closes the last one; the others find
     * it there and do nothing. */
    PGresult *r = pg_run(s, P_MINUTE_INSERT, &p, err);
    if (!r) {
        code = pg_last_fail;
        goto out;
    }
    bool mine = PQntuples(r) > 0;
    PQclear(r);
    if (mine && ((code = pg_run0(s, P_MINUTE_CLOSE, &p, err)) ||
                 (code = pg_run0(s, P_PEAK_RESET, NULL, err))))
        goto out;
    return pg_commit(s, err);
out:
    pg_rollback(s);
    return code;
}

static void row_minute(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    struct store_minute_row *m = item;
    m->minute = pg_col_int(r, i, 0);
    m->online = pg_col_int(r, i, 1);
    m->away = pg_col_int(r, i, 2);
    m->offline = pg_col_int(r, i, 3);
    m->online_max = pg_col_int(r, i, 4);
}

enum usersd_code pg_minutes_read(struct store *base, int64_t from, int64_t to,
                                 struct store_minute_row **out, size_t *n, int64_t *live_peak,
                                 int64_t *open, struct usersd_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *out = NULL;
    *n = 0;
    PGresult *r = pg_run(s, P_LIVE_PEAK, NULL, err);
    if (!r) return pg_last_fail;
    bool one = PQntuples(r) > 0;
    *live_peak = one ? pg_col_int(r, 0, 0) : 0;
    *open = one ? pg_col_time(r, 0, 1) : USERSD_NULL_TIME;
    PQclear(r);
    struct params p = {0};
    pg_p_int(&p, from);
    pg_p_int(&p, to);
    if (!(r = pg_run(s, P_MINUTES, &p, err))) return pg_last_fail;
    void *rows;
    enum usersd_code code = pg_rows_new(r, SIZE_MAX, sizeof **out, row_minute, NULL, &rows, n, err);
    *out = rows;
    return code;
}

/* user_id, at, status, prev. */
static void dec_history_row(PGresult *r, int i, void *item, const void *ctx)
{
    (void)ctx;
    *(struct store_history_row *)item =
        (struct store_history_row){pg_col_int(r, i, 0), pg_col_int(r, i, 1),
                                   (int)pg_col_int(r, i, 2), (int)pg_col_int(r, i, 3)};
}

enum usersd_code pg_dump_history(struct store *base, int64_t cursor[2], size_t cap,
                                 struct store_history_row *rows, size_t *n, struct usersd_err *err)
{
    struct params p = {0};
    /* the key (user_id, at) of the last row given; {0, 0} starts before all */
    pg_p_int(&p, cursor[0]);
    pg_p_int(&p, cursor[0] ? cursor[1] : INT64_MIN);
    pg_p_int(&p, (int64_t)cap);
    enum usersd_code code = pg_rows_into(pg_run((struct pg_store *)base, P_DUMP_HISTORY, &p, err),
                                         cap, rows, sizeof *rows, dec_history_row, NULL, n);
    if (!code && *n) {
        cursor[0] = rows[*n - 1].user_id;
        cursor[1] = rows[*n - 1].at;
    }
    return code;
}

enum usersd_code pg_dump_minutes(struct store *base, int64_t after, size_t cap,
                                 struct store_minute_row *rows, size_t *n, struct usersd_err *err)
{
    struct params p = {0};
    pg_p_int(&p, after);
    pg_p_int(&p, (int64_t)cap);
    return pg_rows_into(pg_run((struct pg_store *)base, P_DUMP_MINUTES, &p, err), cap, rows,
                        sizeof *rows, row_minute, NULL, n);
}
