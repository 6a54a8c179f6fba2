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
    /* Already online and seen within the activity interval: nothing to
     * write, the stored values are the answer (§7). That is what lets a
     * million clients heartbeat every 30 s without a write each. */
    struct usersd_user seen = {.id = r->caller.id,
                               .online_status = r->caller.online_status,
                               .last_seen = r->caller.last_seen,
                               .status_manual = r->caller.status_manual};
    /* A manual status is kept against heartbeats (API.md §12): the same
     * answer, from the stored values, with no presence write. */
    if (seen.status_manual || (seen.online_status == USERSD_ONLINE &&
                               !usersd_activity_due(r->core, &seen, USERSD_NULL_TIME))) {
        /* Another device keeps the user seen; this one's session may still
         * be due a last_used of its own (the writer takes it). */
        if (usersd_activity_due(r->core, &seen, r->session.last_used))
            writer_activity(r->caller.id, r->session.id);
        size_t len = 0;
        char *text = render_heartbeat_text(&seen, &len);
        reply_text(r, 200, JSON_TYPE, text, len);
        return;
    }
    /* set_online, group-committed; automatic, so a manual status set
     * meanwhile stays */
    writer_submit(r, r->caller.id, USERSD_ONLINE, JOB_HEARTBEAT, USERSD_STATUS_AUTO);
}

void h_me_status(struct req *r)
{
    presence_set_from_body(r, r->caller.id);
}
