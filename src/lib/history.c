/* history.c — presence history (API.md §9): how long was Ann online this
 * week, and how many people were online at 9:00 yesterday.
 *
 * A user's history is built from that user's kept changes alone (one range
 * of the history table's key): each change records the status it set and
 * the one it replaced, so the status before the first change in a window
 * is known without reading further back. Counts over time come from the
 * per-minute table the server's sweep fills from the trigger-kept
 * counters, never from the changes: a month at a million users reads at
 * most 44,640 small rows. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define US 1000000LL
#define PRUNE_BATCH 2000           /* history rows deleted per transaction */
#define PRUNE_ROUNDS 50            /* transactions per sweep at most */
#define SAMPLE_SLACK (2 * 60 * US) /* a point reads the minute row at most this old */

void usersd_history_free(struct usersd_history *h)
{
    if (!h) return;
    free(h->items);
    h->items = NULL;
    h->count = 0;
}

void usersd_online_history_free(struct usersd_online_history *h)
{
    if (!h) return;
    free(h->points);
    h->points = NULL;
    h->count = 0;
}

static enum usersd_code window_ok(int64_t from, int64_t to, struct usersd_err *err)
{
    if (from == USERSD_NULL_TIME || to == USERSD_NULL_TIME || from >= to)
        return err_field(err, "from", "from must be before to");
    if (to - from > (int64_t)USERSD_HISTORY_SPAN_MAX * US)
        return err_field(err, "from", "the window from..to may span at most 31 days");
    return USERSD_OK;
}

/* Appends [from, to) in status to h, merged with the last interval when
 * of the same status; empty stretches are dropped. */
static bool add(struct usersd_history *h, size_t *cap, int status, int64_t from, int64_t to)
{
    if (to <= from) return true;
    h->totals[status == USERSD_UNKNOWN ? 3 : status] += to - from;
    if (h->count && h->items[h->count - 1].status == status && h->items[h->count - 1].to == from) {
        h->items[h->count - 1].to = to;
        return true;
    }
    if (h->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct usersd_interval *items = realloc(h->items, ncap * sizeof *items);
        if (!items) return false;
        h->items = items;
        *cap = ncap;
    }
    h->items[h->count++] = (struct usersd_interval){status, from, to};
    return true;
}

enum usersd_code history_build(int64_t from, int64_t to, int64_t now, int64_t known, int current,
                               const struct store_history *sh, struct usersd_history *out)
{
    size_t cap = 0;
    memset(out->totals, 0, sizeof out->totals);
    out->items = NULL;
    out->count = 0;
    out->from = from;
    out->to = to;
    /* Known: from the history's start (or the user's joining) until now. */
    int64_t start = known == USERSD_NULL_TIME ? to : known > from ? known : from;
    int64_t end = now < to ? now : to;
    if (start >= end) return add(out, &cap, USERSD_UNKNOWN, from, to) ? USERSD_OK : USERSD_ENOMEM;
    /* The status at start: the latest kept change at or before it (if it
     * is within the known history), else what the first change after it
     * replaced, else what the user is now. */
    const struct store_history_row *after = NULL;
    for (size_t i = 0; i < sh->count && !after; i++)
        if (sh->rows[i].at > start) after = &sh->rows[i];
    if (!after && sh->have_next) after = &sh->next;
    int status = sh->have_first && sh->first.at >= known ? sh->first.status
                 : after                                 ? after->prev
                                                         : current;
    bool ok = add(out, &cap, USERSD_UNKNOWN, from, start);
    int64_t at = start;
    for (size_t i = 0; ok && i < sh->count; i++) {
        const struct store_history_row *r = &sh->rows[i];
        if (r->at <= start || r->at >= end) continue;
        ok = add(out, &cap, status, at, r->at);
        status = r->status;
        at = r->at;
    }
    ok = ok && add(out, &cap, status, at, end) && add(out, &cap, USERSD_UNKNOWN, end, to);
    if (!ok) {
        usersd_history_free(out);
        return USERSD_ENOMEM;
    }
    return USERSD_OK;
}

enum usersd_code usersd_presence_history(struct usersd *u, int64_t id, int64_t from, int64_t to,
                                         struct usersd_history *out, struct usersd_err *err)
{
    memset(out, 0, sizeof *out);
    out->user_id = id;
    enum usersd_code rc = window_ok(from, to, err);
    if (rc) return rc;
    struct usersd_user user;
    if ((rc = u->store->ops->user_get(u->store, id, &user, err))) return rc;
    int64_t now = usersd_now(u), end = now < to ? now : to;
    struct store_history sh;
    if ((rc = u->store->ops->history_read(u->store, id, from, end, &sh, err))) return rc;
    /* Before the user joined there was nothing to know. */
    int64_t known = sh.since;
    if (known != USERSD_NULL_TIME && user.date_joined > known) known = user.date_joined;
    rc = history_build(from, to, now, known, (int)user.online_status, &sh, out);
    free(sh.rows);
    out->user_id = id;
    if (rc) return err_set(err, rc, NULL);
    return USERSD_OK;
}

enum usersd_code history_minutes(struct usersd *u, int64_t from, int64_t to,
                                 struct store_minute_row **rows, size_t *n, struct usersd_err *err)
{
    int64_t live_peak = 0, open = USERSD_NULL_TIME;
    enum usersd_code rc =
        u->store->ops->minutes_read(u->store, from, to, rows, n, &live_peak, &open, err);
    /* The latest row recorded is still open: the counters hold its peak
     * until its closing sample (the sweep's, a second or so into the next
     * minute) writes it there. Shown now, so that a read before that
     * sample, and a copy, see what every read after it sees. Where no
     * history is kept, nothing samples: the last row is no minute's. */
    if (!rc && *n && (*rows)[*n - 1].minute == open && u->cfg.history_days > 0 &&
        live_peak > (*rows)[*n - 1].online_max)
        (*rows)[*n - 1].online_max = live_peak;
    return rc;
}

static const int64_t buckets[] = {60, 300, 3600, 86400};

enum usersd_code usersd_online_history(struct usersd *u, int64_t from, int64_t to, int64_t bucket_s,
                                       struct usersd_online_history *out, struct usersd_err *err)
{
    memset(out, 0, sizeof *out);
    enum usersd_code rc = window_ok(from, to, err);
    if (rc) return rc;
    size_t nb = sizeof buckets / sizeof buckets[0], b = 0;
    if (bucket_s) {
        while (b < nb && buckets[b] != bucket_s)
            b++;
        if (b == nb) return err_field(err, "bucket", "bucket must be one of 1m, 5m, 1h, 1d");
    }
    int64_t first = 0, n = 0, step = 0;
    for (;; b++) {
        step = buckets[b] * US;
        /* floor to a whole bucket, for times before 1970 too */
        first = from / step * step - (from % step < 0 ? step : 0);
        n = (to - first + step - 1) / step;
        if (n <= USERSD_HISTORY_POINTS_MAX || bucket_s || b + 1 == nb) break;
    }
    if (n > USERSD_HISTORY_POINTS_MAX)
        return err_field(err, "bucket", "%lld points; at most %d: choose a larger bucket",
                         (long long)n, USERSD_HISTORY_POINTS_MAX);
    out->points = calloc((size_t)n, sizeof *out->points);
    if (!out->points) return err_set(err, USERSD_ENOMEM, NULL);
    out->from = from;
    out->to = to;
    out->bucket_s = buckets[b];
    out->count = (size_t)n;
    struct store_minute_row *rows = NULL;
    size_t nrows = 0;
    int64_t now = usersd_now(u);
    /* The minute in progress may not be recorded yet (the sweep samples a
     * second or so after it begins): record it now, from the same counters,
     * so that its point is the counts at its start and never the minute
     * before's. Best effort, as the sweep: a read goes on without it. */
    int64_t minute = now - now % (60 * US);
    if (u->cfg.history_days > 0 && minute >= first && minute < first + n * step) {
        struct usersd_err ignored = {0};
        u->store->ops->history_sample(u->store, minute, &ignored);
    }
    rc = history_minutes(u, first - SAMPLE_SLACK, first + n * step, &rows, &nrows, err);
    if (rc) {
        usersd_online_history_free(out);
        return rc;
    }
    size_t r = 0, last = SIZE_MAX; /* rows are in time order: one pass */
    for (int64_t i = 0; i < n; i++) {
        struct usersd_count_point *p = &out->points[i];
        p->at = first + i * step;
        while (r < nrows && rows[r].minute <= p->at)
            last = r++;
        if (last != SIZE_MAX && rows[last].minute > p->at - SAMPLE_SLACK) {
            p->known = true;
            p->online = rows[last].online;
            p->away = rows[last].away;
            p->offline = rows[last].offline;
            p->online_max = rows[last].online;
        }
        for (size_t k = last == SIZE_MAX || rows[last].minute < p->at ? r : last;
             k < nrows && rows[k].minute < p->at + step; k++) {
            if (!p->known) { /* history starts inside this bucket */
                p->known = true;
                p->online = rows[k].online;
                p->away = rows[k].away;
                p->offline = rows[k].offline;
            }
            if (rows[k].online_max > p->online_max) p->online_max = rows[k].online_max;
        }
    }
    free(rows);
    return USERSD_OK;
}

enum usersd_code usersd_history_sample(struct usersd *u, struct usersd_err *err)
{
    if (u->cfg.history_days <= 0) return USERSD_OK;
    int64_t now = usersd_now(u);
    return u->store->ops->history_sample(u->store, now - now % (60 * US), err);
}

enum usersd_code usersd_history_prune(struct usersd *u, struct usersd_err *err)
{
    int64_t now = usersd_now(u);
    if (u->cfg.history_days <= 0) /* not kept: unknown from here on */
        return u->store->ops->history_mark(u->store, USERSD_NULL_TIME, false, err);
    /* Kept: complete from now on if it was not before. */
    enum usersd_code rc = u->store->ops->history_mark(u->store, now, true, err);
    int64_t before = now - u->cfg.history_days * 86400 * US;
    for (int round = 0; !rc && round < PRUNE_ROUNDS; round++) {
        int64_t n = 0;
        rc = u->store->ops->history_prune(u->store, before, PRUNE_BATCH, &n, err);
        if (n < PRUNE_BATCH) break;
    }
    return rc;
}
