/* messages.c — what a user shows beside the status: status messages ("In
 * a meeting until 3", API.md §8) and do not disturb (§12), each set,
 * cleared, and ended by time. An ended one is never shown, even in the
 * moment before the sweep clears it (and logs its end for the streams), so
 * every user the library returns goes through messages_fresh. */
#include <string.h>

#include "internal.h"

void messages_fresh(const struct usersd *u, struct usersd_user *users, size_t n)
{
    int64_t now = 0;
    for (size_t i = 0; i < n; i++) {
        struct usersd_user *x = &users[i];
        if (!x->dnd) x->dnd_until = USERSD_NULL_TIME;
        if (x->dnd && x->dnd_until != USERSD_NULL_TIME) {
            if (!now) now = usersd_now(u);
            if (x->dnd_until <= now) {
                x->dnd = false;
                x->dnd_until = USERSD_NULL_TIME;
            }
        }
        if (!x->status_text[0]) {
            x->status_expires = USERSD_NULL_TIME;
            continue;
        }
        if (x->status_expires == USERSD_NULL_TIME) continue;
        if (!now) now = usersd_now(u);
        if (x->status_expires <= now) {
            x->status_text[0] = 0;
            x->status_expires = USERSD_NULL_TIME;
        }
    }
}

/* 1 to USERSD_STATUS_TEXT_MAX characters of UTF-8, none of them a control
 * character. */
static enum usersd_code text_ok(const char *text, struct usersd_err *err)
{
    if (!text || !*text) return err_field(err, "text", "text must be 1 to 100 characters");
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; chars++) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        if (!n) return err_field(err, "text", "text must be UTF-8");
        if (UTF8_CONTROL(cp))
            return err_field(err, "text", "text may not contain control characters");
        p += n;
    }
    if (chars > USERSD_STATUS_TEXT_MAX)
        return err_field(err, "text", "text must be 1 to 100 characters, not %zu", chars);
    return USERSD_OK;
}

enum usersd_code usersd_status_message_set(struct usersd *u, int64_t id, const char *text,
                                           int64_t expires_at, struct usersd_user *out,
                                           struct usersd_err *err)
{
    enum usersd_code rc = text_ok(text, err);
    if (rc) return rc;
    int64_t now = usersd_now(u);
    if (expires_at != USERSD_NULL_TIME && expires_at <= now)
        return err_field(err, "expires_at", "expires_at must be in the future");
    struct usersd_user tmp;
    if (!out) out = &tmp;
    rc = u->store->ops->status_message(u->store, id, text, expires_at, now, out, err);
    if (!rc) messages_fresh(u, out, 1);
    return rc;
}

enum usersd_code usersd_status_message_clear(struct usersd *u, int64_t id, struct usersd_user *out,
                                             struct usersd_err *err)
{
    struct usersd_user tmp;
    if (!out) out = &tmp;
    enum usersd_code rc = u->store->ops->status_message(u->store, id, NULL, USERSD_NULL_TIME,
                                                        usersd_now(u), out, err);
    if (!rc) messages_fresh(u, out, 1);
    return rc;
}

enum usersd_code usersd_status_message_expire(struct usersd *u, int64_t *n, struct usersd_err *err)
{
    int64_t cleared = 0;
    enum usersd_code rc =
        u->store->ops->status_message_expire(u->store, usersd_now(u), &cleared, err);
    if (n) *n = rc ? 0 : cleared;
    return rc;
}

/* ---- do not disturb ------------------------------------------------------ */

enum usersd_code usersd_dnd_set(struct usersd *u, int64_t id, int64_t until, int minutes,
                                struct usersd_user *out, struct usersd_err *err)
{
    int64_t now = usersd_now(u);
    if (minutes >= 0 && until != USERSD_NULL_TIME)
        return err_field(err, "minutes", "give until or minutes, not both");
    if (minutes >= 0 && (minutes < 1 || minutes > USERSD_DND_MINUTES_MAX))
        return err_field(err, "minutes", "minutes must be a whole number from 1 to %d",
                         USERSD_DND_MINUTES_MAX);
    if (until != USERSD_NULL_TIME && until <= now)
        return err_field(err, "until", "until must be in the future");
    if (minutes >= 0) until = now + (int64_t)minutes * 60 * 1000000;
    struct usersd_user tmp;
    if (!out) out = &tmp;
    enum usersd_code rc = u->store->ops->dnd(u->store, id, true, until, now, out, err);
    if (!rc) messages_fresh(u, out, 1);
    return rc;
}

enum usersd_code usersd_dnd_clear(struct usersd *u, int64_t id, struct usersd_user *out,
                                  struct usersd_err *err)
{
    struct usersd_user tmp;
    if (!out) out = &tmp;
    enum usersd_code rc =
        u->store->ops->dnd(u->store, id, false, USERSD_NULL_TIME, usersd_now(u), out, err);
    if (!rc) messages_fresh(u, out, 1);
    return rc;
}

enum usersd_code usersd_dnd_expire(struct usersd *u, int64_t *n, struct usersd_err *err)
{
    int64_t ended = 0;
    enum usersd_code rc = u->store->ops->dnd_expire(u->store, usersd_now(u), &ended, err);
    if (n) *n = rc ? 0 : ended;
    return rc;
}

enum usersd_code usersd_presence_counts(struct usersd *u, int64_t *manual, int64_t *dnd,
                                        struct usersd_err *err)
{
    int64_t m = 0, d = 0;
    enum usersd_code rc = u->store->ops->presence_counts(u->store, &m, &d, err);
    if (manual) *manual = rc ? 0 : m;
    if (dnd) *dnd = rc ? 0 : d;
    return rc;
}
