/* h_me.c — the caller's own user, heartbeat and status. */
#include "server.h"

void h_me(struct req *r)
{
    reply_json(r, 200, render_user(&r->caller, request_viewer(r)));
}

void h_heartbeat(struct req *r)
{
    writer_submit(r, r->caller.id, USERSD_ONLINE, JOB_HEARTBEAT); /* set_online, group-committed */
}

void h_me_status(struct req *r)
{
    presence_set_from_body(r, r->caller.id);
}
