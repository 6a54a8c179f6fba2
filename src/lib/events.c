/* events.c — the presence change log: what the stream and polling clients
 * read. Every status change is logged by the driver in the same transaction
 * as the change, so a reader in any process sees each change exactly once,
 * in order. */
#include <stdlib.h>

#include "internal.h"

void usersd_changes_free(struct usersd_changes *c)
{
    if (!c) return;
    free(c->items);
    c->items = NULL;
    c->count = 0;
}

static enum usersd_code log_read(struct usersd *u, int64_t since, int limit, unsigned kinds,
                                 struct usersd_changes *out, struct usersd_err *err)
{
    out->items = NULL;
    out->count = 0;
    out->next_since = since;
    if (since < 0) return err_field(err, "since", "since must be 0 or more");
    if (limit < 1) limit = USERSD_CHANGES_LIMIT_DEFAULT;
    if (limit > USERSD_CHANGES_LIMIT_MAX) limit = USERSD_CHANGES_LIMIT_MAX;
    enum usersd_code rc = u->store->ops->changes(u->store, since, limit, kinds, out, err);
    if (!rc && out->count) out->next_since = out->items[out->count - 1].seq;
    /* A do not disturb whose end has passed is shown ended (null) at once,
     * as on the user, even in an entry logged while it was on. */
    int64_t now = rc || !out->count ? 0 : usersd_now(u);
    for (size_t i = 0; !rc && i < out->count; i++) {
        struct usersd_change *c = &out->items[i];
        if (c->dnd && c->dnd_until != USERSD_NULL_TIME && c->dnd_until <= now) {
            c->dnd = false;
            c->dnd_until = USERSD_NULL_TIME;
        }
    }
    return rc;
}

enum usersd_code usersd_changes_since(struct usersd *u, int64_t since, int limit,
                                      struct usersd_changes *out, struct usersd_err *err)
{
    return log_read(u, since, limit, STORE_KIND(USERSD_CHANGE_PRESENCE), out, err);
}

enum usersd_code usersd_log_since(struct usersd *u, int64_t since, int limit,
                                  struct usersd_changes *out, struct usersd_err *err)
{
    return log_read(u, since, limit, STORE_KINDS_ALL, out, err);
}

enum usersd_code usersd_events_since(struct usersd *u, int64_t since, int limit,
                                     struct usersd_changes *out, struct usersd_err *err)
{
    return log_read(u, since, limit,
                    STORE_KIND(USERSD_CHANGE_PRESENCE) | STORE_KIND(USERSD_CHANGE_STATUS_MESSAGE) |
                        STORE_KIND(USERSD_CHANGE_DND),
                    out, err);
}

enum usersd_code usersd_changes_head(struct usersd *u, int64_t *seq, struct usersd_err *err)
{
    return u->store->ops->changes_head(u->store, seq, err);
}

enum usersd_code usersd_changes_prune(struct usersd *u, struct usersd_err *err)
{
    if (u->cfg.changes_retention_s <= 0) return USERSD_OK;
    int64_t before = usersd_now(u) - u->cfg.changes_retention_s * 1000000;
    return u->store->ops->changes_prune(u->store, before, err);
}

enum usersd_code usersd_changes_wait(struct usersd *u, int timeout_ms, bool *notified,
                                     struct usersd_err *err)
{
    *notified = false;
    if (!u->store->ops->changes_wait)
        return err_set(err, USERSD_EINVAL, "this database cannot wait for changes; poll");
    return u->store->ops->changes_wait(u->store, timeout_ms, notified, err);
}
