/* copy.c — one database into another, empty one (SQLite → PostgreSQL when
 * one machine is no longer enough). Rows move in batches, each batch one
 * transaction on the destination; ids and password hashes are kept, so
 * users log in as before and links to /users/<id>/ stay valid. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BATCH 500

/* The presence history (changes and per-minute counts) and since when it
 * is known, in batches. */
static enum usersd_code copy_history(struct usersd *from, struct usersd *to, struct usersd_err *err)
{
    const struct store_ops *src = from->store->ops, *dst = to->store->ops;
    struct store_history_row *h = calloc(BATCH, sizeof *h);
    struct store_minute_row *m = calloc(BATCH, sizeof *m);
    enum usersd_code rc = h && m ? USERSD_OK : err_set(err, USERSD_ENOMEM, NULL);
    for (int64_t cursor[2] = {0, 0}; !rc;) {
        size_t n = 0;
        if ((rc = src->dump_history(from->store, cursor, BATCH, h, &n, err)) || !n) break;
        rc = dst->load_history(to->store, h, n, NULL, 0, err);
    }
    for (int64_t after = INT64_MIN; !rc;) {
        size_t n = 0;
        if ((rc = src->dump_minutes(from->store, after, BATCH, m, &n, err)) || !n) break;
        rc = dst->load_history(to->store, NULL, 0, m, n, err);
        after = m[n - 1].minute;
    }
    struct store_history since = {0};
    if (!rc) rc = src->history_read(from->store, 0, 0, 0, &since, err); /* user 0: none */
    free(since.rows);
    if (!rc) rc = dst->history_mark(to->store, since.since, false, err);
    free(h);
    free(m);
    return rc;
}

enum usersd_code usersd_copy(struct usersd *from, struct usersd *to, int64_t *users,
                             int64_t *tokens, struct usersd_err *err)
{
    const struct store_ops *src = from->store->ops, *dst = to->store->ops;
    int64_t n_users = 0, n_tokens = 0, existing = 0, head = 0;
    enum usersd_code rc = dst->user_count(to->store, &existing, err);
    if (rc) return rc;
    if (existing)
        return err_set(err, USERSD_ECONFLICT,
                       "the destination already holds %lld user(s); copy needs an empty one",
                       (long long)existing);
    struct store_user_row *urows = calloc(BATCH, sizeof *urows);
    struct store_session_row *srows = calloc(BATCH, sizeof *srows);
    if (!urows || !srows) {
        rc = err_set(err, USERSD_ENOMEM, NULL);
        goto out;
    }
    for (int64_t after = 0;;) {
        size_t n = 0;
        if ((rc = src->dump_users(from->store, after, BATCH, urows, &n, err))) goto out;
        if (!n) break;
        if ((rc = dst->load(to->store, urows, n, NULL, 0, err))) goto out;
        n_users += (int64_t)n;
        after = urows[n - 1].user.id;
    }
    for (int64_t after = 0;;) {
        size_t n = 0;
        if ((rc = src->dump_sessions(from->store, after, BATCH, srows, &n, err))) goto out;
        if (!n) break;
        if ((rc = dst->load(to->store, NULL, 0, srows, n, err))) goto out;
        n_tokens += (int64_t)n;
        after = srows[n - 1].s.id;
    }
    if ((rc = copy_history(from, to, err))) goto out;
    if ((rc = src->changes_head(from->store, &head, err))) goto out;
    rc = dst->load_finish(to->store, head, err);
out:
    free(urows);
    free(srows);
    if (users) *users = n_users;
    if (tokens) *tokens = n_tokens;
    return rc;
}
