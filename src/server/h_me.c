/* h_me.c — the caller's own user, heartbeat and status. */
#include "server.h"

void h_me(struct req *r)
{
    reply_json(r, 200, render_user(&r->caller, request_viewer(r)));
}

void h_heartbeat(struct req *r)
{
    struct usersd_err err = {0};
    struct usersd_user user;
    if (usersd_set_online(r->core, r->caller.id, &user, &err)) {
        reply_err(r, &err);
        return;
    }
    reply_json(r, 200, render_heartbeat(&user));
}

void h_me_status(struct req *r)
{
    presence_set_from_body(r, r->caller.id);
}
