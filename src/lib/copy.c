/* copy.c — one database into another, empty one (SQLite → PostgreSQL when
 * one machine is no longer enough), and synthetic users in bulk (seed).
 *
 * All or nothing: the destination loads everything in one transaction
 * (the drivers' load_begin … load_finish), so an interrupted copy — a
 * failure, Ctrl-C, kill -9, a lost connection — leaves it as it was and
 * the copy can simply be run again. Inside that transaction the drivers set
 * aside what a row-at-a-time insert pays for on every row (counter and
 * search triggers, secondary indexes) and rebuild it once at the end: a
 * million users in seconds rather than minutes. Ids and password hashes
 * are kept, so users log in as before and links to /users/<id>/ stay
 * valid. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Rows per dump/load round: big enough that per-call costs vanish (one
 * COPY per batch on PostgreSQL), small enough to stay a few MiB. */
#define BATCH 4096
/* Synthetic users per seed statement: progress a few times a second. */
#define SEED_STEP 50000
#define MINUTE (60 * 1000000LL)

static struct store_progress progress_of(const struct usersd *u, enum usersd_task task)
{
    return (struct store_progress){u->cfg.progress, u->cfg.progress_ctx, task};
}

/* The last minute rows: last[0] the latest the source recorded (room for
 * two). They arrive as a read of the source at the moment of the copy
 * shows them (history.c): that minute, still open, closed with the peak the
 * source's counters kept since (only its next sample would have written
 * it), and the minute in progress, if the source has not recorded it,
 * recorded from the same counters as that read records it. The
 * destination's counters start at the copied counts (load_finish), as
 * after a sample: its own next sample closes the minute in progress with
 * whatever peak it reaches there. Where the source keeps no history
 * (kept false), nothing samples: the rows go as they are. */
static enum usersd_code copy_minutes_last(struct usersd *from, struct usersd *to, bool kept,
                                          struct store_minute_row *last, struct usersd_err *err)
{
    size_t n = 1;
    enum usersd_code rc = USERSD_OK;
    if (kept) {
        struct store_minute_row *rows = NULL;
        size_t k = 0;
        rc = history_minutes(from, last[0].minute, last[0].minute + 1, &rows, &k, err);
        if (!rc && k == 1) last[0] = rows[0];
        free(rows);
        int64_t now = usersd_now(from), minute = now - now % MINUTE;
        struct usersd_stats st;
        if (!rc && minute > last[0].minute && !(rc = usersd_stats(from, &st, err)))
            last[n++] = (struct store_minute_row){minute, st.online_users, st.away_users,
                                                  st.offline_users, st.online_users};
    }
    return rc ? rc : to->store->ops->load_history(to->store, NULL, 0, last, n, err);
}

/* The presence history (changes and per-minute counts) and since when it
 * is known. */
static enum usersd_code copy_history(struct usersd *from, struct usersd *to,
                                     const struct store_progress *pr, struct usersd_err *err)
{
    const struct store_ops *src = from->store->ops, *dst = to->store->ops;
    struct store_history_row *h = calloc(BATCH, sizeof *h);
    struct store_minute_row *m = calloc(BATCH, sizeof *m);
    enum usersd_code rc = h && m ? USERSD_OK : err_set(err, USERSD_ENOMEM, NULL);
    int64_t done = 0;
    store_progress(pr, "history", 0, 0);
    for (int64_t cursor[2] = {0, 0}; !rc;) {
        size_t n = 0;
        if ((rc = src->dump_history(from->store, cursor, BATCH, h, &n, err)) || !n) break;
        rc = dst->load_history(to->store, h, n, NULL, 0, err);
        store_progress(pr, "history", done += (int64_t)n, 0);
    }
    struct store_history since = {0};
    if (!rc) rc = src->history_read(from->store, 0, 0, 0, &since, err); /* user 0: none */
    free(since.rows);
    done = 0;
    store_progress(pr, "minutes", 0, 0);
    /* Each batch's last row waits for the next one: the very last is open. */
    size_t held = 0;
    for (int64_t after = INT64_MIN; !rc;) {
        size_t n = 0;
        if ((rc = src->dump_minutes(from->store, after, BATCH - 1, m + held, &n, err)) || !n) break;
        n += held;
        after = m[n - 1].minute;
        if ((rc = dst->load_history(to->store, NULL, 0, m, n - 1, err))) break;
        m[0] = m[n - 1];
        held = 1;
        store_progress(pr, "minutes", done += (int64_t)n - 1, 0);
    }
    if (!rc && held) {
        rc = copy_minutes_last(from, to, since.since != USERSD_NULL_TIME, m, err);
        store_progress(pr, "minutes", ++done, 0);
    }
    if (!rc) rc = dst->history_mark(to->store, since.since, false, err);
    free(h);
    free(m);
    return rc;
}

/* Users and sessions, in id order. */
static enum usersd_code copy_rows(struct usersd *from, struct usersd *to,
                                  const struct store_progress *pr, int64_t *n_users,
                                  int64_t *n_sessions, struct usersd_err *err)
{
    const struct store_ops *src = from->store->ops, *dst = to->store->ops;
    int64_t total = 0;
    struct store_user_row *urows = calloc(BATCH, sizeof *urows);
    struct store_session_row *srows = calloc(BATCH, sizeof *srows);
    enum usersd_code rc = urows && srows ? USERSD_OK : err_set(err, USERSD_ENOMEM, NULL);
    if (!rc) rc = src->user_count(from->store, &total, err);
    if (!rc) store_progress(pr, "users", 0, total);
    for (int64_t after = 0; !rc;) {
        size_t n = 0;
        if ((rc = src->dump_users(from->store, after, BATCH, urows, &n, err)) || !n) break;
        rc = dst->load(to->store, urows, n, NULL, 0, err);
        *n_users += (int64_t)n;
        after = urows[n - 1].user.id;
        store_progress(pr, "users", *n_users, total);
    }
    if (!rc) rc = src->session_count(from->store, &total, err);
    if (!rc) store_progress(pr, "sessions", 0, total);
    for (int64_t after = 0; !rc;) {
        size_t n = 0;
        if ((rc = src->dump_sessions(from->store, after, BATCH, srows, &n, err)) || !n) break;
        rc = dst->load(to->store, NULL, 0, srows, n, err);
        *n_sessions += (int64_t)n;
        after = srows[n - 1].s.id;
        store_progress(pr, "sessions", *n_sessions, total);
    }
    free(urows);
    free(srows);
    return rc;
}

enum usersd_code usersd_copy(struct usersd *from, struct usersd *to, int64_t *users,
                             int64_t *tokens, struct usersd_err *err)
{
    const struct store_ops *src = from->store->ops, *dst = to->store->ops;
    const struct store_progress pr = progress_of(to, USERSD_TASK_COPY);
    int64_t n_users = 0, n_tokens = 0, existing = 0, head = 0;
    if (users) *users = 0;
    if (tokens) *tokens = 0;
    /* One snapshot of the source, so sessions never name a user the dump
     * did not see (where the driver has snapshots). */
    enum usersd_code rc = usersd_read_begin(from, err);
    if (rc) return rc;
    if ((rc = dst->load_begin(to->store, err))) goto out;
    /* Checked inside the load's transaction: a second copy into the same
     * database waits for the first, then finds it full. */
    if ((rc = dst->user_count(to->store, &existing, err))) goto out;
    if (existing) {
        rc = err_set(err, USERSD_ECONFLICT,
                     "the destination already holds %lld user(s); copy needs an empty one",
                     (long long)existing);
        goto out;
    }
    if ((rc = copy_rows(from, to, &pr, &n_users, &n_tokens, err))) goto out;
    if ((rc = copy_history(from, to, &pr, err))) goto out;
    if ((rc = src->changes_head(from->store, &head, err))) goto out;
    rc = dst->load_finish(to->store, head, &pr, err);
out:
    if (rc) dst->load_abort(to->store);
    usersd_read_end(from);
    if (!rc && users) *users = n_users;
    if (!rc && tokens) *tokens = n_tokens;
    return rc;
}

enum usersd_code copy_seed(struct usersd *u, int64_t n, const char *pwhash, struct usersd_err *err)
{
    const struct store_ops *ops = u->store->ops;
    const struct store_progress pr = progress_of(u, USERSD_TASK_SEED);
    int64_t now = usersd_now(u), base = 0;
    enum usersd_code rc = ops->load_begin(u->store, err);
    if (!rc) store_progress(&pr, "users", 0, n);
    for (int64_t done = 0; !rc && done < n; done += SEED_STEP) {
        int64_t step = n - done < SEED_STEP ? n - done : SEED_STEP;
        rc = ops->seed(u->store, &base, done, step, now, pwhash, err);
        if (!rc) store_progress(&pr, "users", done + step, n);
    }
    if (!rc) rc = ops->load_finish(u->store, -1, &pr, err);
    if (rc) ops->load_abort(u->store);
    return rc;
}
