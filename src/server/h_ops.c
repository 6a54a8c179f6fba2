/* h_ops.c — liveness and readiness for load balancers and orchestrators. */
#include "server.h"

void h_healthz(struct req *r)
{
    reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void h_readyz(struct req *r)
{
    struct usersd_err err = {0};
    if (usersd_ping(r->core, &err)) {
        reply_json(r, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error", err.msg));
        return;
    }
    reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}
