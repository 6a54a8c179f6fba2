/* h_ops.c — liveness and readiness for load balancers and orchestrators. */
#include <stdlib.h>
#include <string.h>

#include "server.h"

extern const char usersd_openapi_json[]; /* docs/openapi.json, embedded */

void h_healthz(struct req *r)
{
    reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void h_readyz(struct req *r)
{
    struct usersd_err err = {0};
    if (!r->core) { /* this thread could not even open the database */
        server_core(&err);
        reply_json(r, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error", err.msg));
        return;
    }
    if (usersd_ping(r->core, &err)) {
        reply_json(r, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error", err.msg));
        return;
    }
    reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void h_metrics(struct req *r)
{
    struct usersd_err err = {0};
    struct usersd_stats stats;
    struct metrics_counts counts = {0};
    if (usersd_stats(r->core, &stats, &err) ||
        usersd_session_count(r->core, &counts.sessions, &err) ||
        usersd_presence_counts(r->core, &counts.manual, &counts.dnd, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = metrics_render(&stats, &counts, &len);
    if (!text) {
        reply_fail(r, 500, NULL, "the server ran out of memory");
        return;
    }
    reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

void h_schema(struct req *r)
{
    reply_text(r, 200, JSON_TYPE, strdup(usersd_openapi_json), strlen(usersd_openapi_json));
}
