/* presence.c — the seed's User model methods and service set-status.
 * The rules (which transition moves last_seen) live here; the driver only
 * applies one transition atomically and logs it when the status changed. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const names[] = {"offline", "away", "online"};

const char *usersd_status_name(enum usersd_status s)
{
    return (unsigned)s <= USERSD_ONLINE ? names[s] : "offline";
}

bool usersd_status_parse(const char *s, enum usersd_status *out)
{
    for (int i = 0; s && i <= USERSD_ONLINE; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum usersd_status)i;
            return true;
        }
    return false;
}

bool usersd_user_is_online(const struct usersd_user *user)
{
    return user->online_status == USERSD_ONLINE;
}

/* The status and how it is set make sense together: a manual status is
 * away or offline, set by someone (not by an automatic write). */
static enum usersd_code status_ok(enum usersd_status status, unsigned flags, struct usersd_err *err)
{
    if ((unsigned)status > USERSD_ONLINE)
        return err_field(err, "status", "status must be one of: online, away, offline");
    if ((flags & USERSD_STATUS_MANUAL) && status == USERSD_ONLINE)
        return err_field(err, "manual", "online is never manual: manual goes with away or offline");
    if ((flags & USERSD_STATUS_MANUAL) && (flags & USERSD_STATUS_AUTO))
        return err_field(err, "manual", "an automatic write cannot set a manual status");
    return USERSD_OK;
}

static enum usersd_code transition_lean(struct usersd *u, int64_t id, enum usersd_status status,
                                        unsigned flags, bool lean, struct usersd_user *out,
                                        struct usersd_err *err)
{
    enum usersd_code rc = status_ok(status, flags, err);
    if (rc) return rc;
    struct usersd_user tmp;
    int64_t now = usersd_now(u);
    /* the seed's rule: last_seen moves on online and offline, not on away */
    struct store_status_change c = {
        .user_id = id,
        .status = status,
        .last_seen = status != USERSD_AWAY ? now : USERSD_NULL_TIME,
        .now = now,
        .presence_only = lean,
        .flags = flags,
    };
    if (!out) out = &tmp;
    rc = u->store->ops->set_status(u->store, &c, out, err);
    if (!rc) messages_fresh(u, out, 1);
    return rc;
}

enum usersd_code usersd_set_status_presence(struct usersd *u, int64_t id, enum usersd_status status,
                                            struct usersd_user *out, struct usersd_err *err)
{
    return transition_lean(u, id, status, 0, true, out, err);
}

/* The activity interval's cut-off (below). */
static int64_t activity_before(const struct usersd *u);

enum usersd_code usersd_set_status_many(struct usersd *u, struct usersd_status_job *jobs, size_t n,
                                        struct usersd_err *err)
{
    if (!n) return USERSD_OK;
    struct store_status_job *sj = malloc(n * sizeof *sj);
    if (!sj) {
        struct usersd_err e = {0};
        err_set(&e, USERSD_ENOMEM, NULL);
        for (size_t i = 0; i < n; i++) {
            jobs[i].rc = USERSD_ENOMEM;
            if (jobs[i].err) *jobs[i].err = e;
        }
        if (err) *err = e;
        return USERSD_ENOMEM;
    }
    int64_t before = activity_before(u);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        struct usersd_status_job *j = &jobs[i];
        int64_t now = usersd_now(u); /* each its own, as when called one by one */
        if (status_ok(j->status, j->flags, NULL)) {
            j->rc = status_ok(j->status, j->flags, j->err);
            continue;
        }
        /* the seed's rule: last_seen moves on online and offline, not on away */
        sj[m] = (struct store_status_job){
            .c = {.user_id = j->user_id,
                  .status = j->status,
                  .last_seen = j->status != USERSD_AWAY ? now : USERSD_NULL_TIME,
                  .now = now,
                  .presence_only = true,
                  .touch = j->session != NULL,
                  .touch_before = before,
                  /* only a session due a last_used of its own is written */
                  .session_id = j->session && j->session->last_used < before ? j->session->id : 0,
                  .flags = j->flags},
            .out = j->out,
            .err = j->err,
        };
        m++;
    }
    enum usersd_code rc = m ? u->store->ops->set_status_many(u->store, sj, m) : USERSD_OK;
    m = 0;
    for (size_t i = 0; i < n; i++) {
        struct usersd_status_job *j = &jobs[i];
        if (status_ok(j->status, j->flags, NULL)) continue;
        j->rc = sj[m].rc;
        if (!j->rc) {
            messages_fresh(u, j->out, 1);
            if (sj[m].c.session_id) j->session->last_used = sj[m].c.now;
        }
        m++;
    }
    if (rc && err) {
        if (sj[0].err)
            *err = *sj[0].err;
        else
            err_set(err, rc, NULL);
    }
    free(sj);
    return rc;
}

enum usersd_code usersd_set_online(struct usersd *u, int64_t id, struct usersd_user *out,
                                   struct usersd_err *err)
{
    return transition_lean(u, id, USERSD_ONLINE, 0, false, out, err);
}

enum usersd_code usersd_set_away(struct usersd *u, int64_t id, struct usersd_user *out,
                                 struct usersd_err *err)
{
    return transition_lean(u, id, USERSD_AWAY, 0, false, out, err);
}

enum usersd_code usersd_set_offline(struct usersd *u, int64_t id, struct usersd_user *out,
                                    struct usersd_err *err)
{
    return transition_lean(u, id, USERSD_OFFLINE, 0, false, out, err);
}

enum usersd_code usersd_set_status(struct usersd *u, int64_t id, enum usersd_status status,
                                   struct usersd_user *out, struct usersd_err *err)
{
    return transition_lean(u, id, status, 0, false, out, err);
}

enum usersd_code usersd_set_status_ex(struct usersd *u, int64_t id, enum usersd_status status,
                                      unsigned flags, struct usersd_user *out,
                                      struct usersd_err *err)
{
    return transition_lean(u, id, status, flags, false, out, err);
}

enum usersd_code usersd_update_last_seen(struct usersd *u, int64_t id, struct usersd_user *out,
                                         struct usersd_err *err)
{
    int64_t now = usersd_now(u);
    bool updated;
    /* before = now + 1: any stored last_seen is older, so it always moves. */
    enum usersd_code rc = u->store->ops->touch(u->store, id, 0, now, now + 1, &updated, err);
    if (rc) return rc;
    struct usersd_user tmp;
    return usersd_user_get(u, id, out ? out : &tmp, err);
}

/* The activity interval's cut-off: a last_seen (or last_used) at or after
 * it is recent enough not to be written again. */
static int64_t activity_before(const struct usersd *u)
{
    return usersd_now(u) - u->cfg.activity_interval_s * 1000000;
}

bool usersd_activity_due(const struct usersd *u, const struct usersd_user *user,
                         int64_t session_last_used)
{
    int64_t before = activity_before(u);
    bool session_due = session_last_used != USERSD_NULL_TIME && session_last_used < before;
    /* A manual status keeps last_seen where it is: only the session moves. */
    if (user->status_manual) return session_due;
    return user->last_seen == USERSD_NULL_TIME || user->last_seen < before || session_due;
}

enum usersd_code usersd_session_activity(struct usersd *u, struct usersd_user *user,
                                         struct usersd_session *session, struct usersd_err *err)
{
    if (!usersd_activity_due(u, user, session ? session->last_used : USERSD_NULL_TIME))
        return USERSD_OK;
    int64_t now = usersd_now(u), before = activity_before(u);
    bool updated = false;
    enum usersd_code rc = u->store->ops->touch(u->store, user->id, session ? session->id : 0, now,
                                               before, &updated, err);
    if (rc) return rc;
    if (updated) user->last_seen = now;
    if (session && session->last_used < before) session->last_used = now;
    return USERSD_OK;
}

enum usersd_code usersd_refresh(struct usersd *u, int64_t user_id, int64_t session_id, int64_t at,
                                struct usersd_err *err)
{
    struct usersd_refresh r = {user_id, session_id > 0 ? session_id : 0, at};
    return usersd_refresh_many(u, &r, 1, err);
}

enum usersd_code usersd_refresh_many(struct usersd *u, const struct usersd_refresh *r, size_t n,
                                     struct usersd_err *err)
{
    if (!n) return USERSD_OK;
    return u->store->ops->refresh(u->store, r, n, u->cfg.activity_interval_s * 1000000, err);
}

enum usersd_code usersd_touch(struct usersd *u, struct usersd_user *user, struct usersd_err *err)
{
    return usersd_session_activity(u, user, NULL, err);
}

enum usersd_code usersd_decay(struct usersd *u, int64_t *changed, struct usersd_err *err)
{
    int64_t now = usersd_now(u), n = 0, late = now - u->cfg.decay_grace_us;
    int64_t away =
        u->cfg.away_after_s > 0 ? late - u->cfg.away_after_s * 1000000 : USERSD_NULL_TIME;
    int64_t off =
        u->cfg.offline_after_s > 0 ? late - u->cfg.offline_after_s * 1000000 : USERSD_NULL_TIME;
    enum usersd_code rc = USERSD_OK;
    if (away != USERSD_NULL_TIME || off != USERSD_NULL_TIME)
        rc = u->store->ops->decay(u->store, now, away, off, &n, err);
    if (changed) *changed = rc ? 0 : n;
    return rc;
}
