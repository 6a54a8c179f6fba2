/* h_me.c — the caller's own user, heartbeat and status. */
#include "server.h"

void h_me(struct req *r)
{
    struct usersd_user user;
    struct usersd_err err = {0};
    if (usersd_user_get(r->core, r->caller.id, &user, &err)) {
        reply_err(r, &err);
        return;
    }
    /* This request's own activity may still be on its way to the writer. */
    if (r->caller.last_seen > user.last_seen) user.last_seen = r->caller.last_seen;
    reply_json(r, 200, render_user(&user, request_viewer(r)));
}

void h_heartbeat(struct req *r)
{
    /* A user already online is only refreshed (API.md §7): seen within the
     * activity interval, nothing to write, the stored values are the
     * answer; seen before it, last_seen moves to now, queued for the
     * writer's next batch, and the reply does not wait for its commit.
     * That is what lets a million clients heartbeat every 30 s. A manual
     * status is kept against heartbeats (§12): the same answer from the
     * stored values, its last_seen unmoved. Any other status is a change,
     * written (set_online, group-committed) before the reply. */
    struct usersd_user seen = {.id = r->caller.id,
                               .online_status = r->caller.online_status,
                               .last_seen = r->caller.last_seen,
                               .status_manual = r->caller.status_manual};
    if (!seen.status_manual && seen.online_status != USERSD_ONLINE) {
        /* automatic, so a manual status set meanwhile stays */
        writer_submit(r, r->caller.id, USERSD_ONLINE, JOB_HEARTBEAT, USERSD_STATUS_AUTO);
        return;
    }
    if (usersd_activity_due(r->core, &seen, r->session.last_used)) {
        int64_t at = usersd_now(r->core);
        /* Another device may keep the user seen: then only this session's
         * last_used is due. */
        if (!seen.status_manual && usersd_activity_due(r->core, &seen, USERSD_NULL_TIME))
            seen.last_seen = at;
        writer_activity(r->caller.id, r->session.id, at);
    }
    size_t len = 0;
    char *text = render_heartbeat_text(&seen, &len);
    reply_text(r, 200, JSON_TYPE, text, len);
}

void h_me_status(struct req *r)
{
    presence_set_from_body(r, r->caller.id);
}
