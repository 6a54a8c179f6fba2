/* h_history.c — presence history (API.md §9): one user's intervals, and
 * users by status over time. */
#include <string.h>

#include "server.h"

#define DAY_US (86400LL * 1000000)

/* from and to (RFC 3339): both absent is the last 24 hours; to alone
 * ends a 24-hour window; from alone runs until now (or 24 hours when from
 * is not in the past). False with 400 queued. */
static bool query_window(struct req *r, int64_t *from, int64_t *to)
{
    const char *names[2] = {"from", "to"};
    int64_t *out[2] = {from, to};
    bool given[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        const char *v = query_str(r, names[i]);
        if (!v) continue;
        if (!usersd_time_parse(v, out[i])) {
            reply_fail(r, 400, names[i], "%s must be an RFC 3339 time, like 2024-01-15T09:00:00Z",
                       names[i]);
            return false;
        }
        given[i] = true;
    }
    int64_t now = usersd_now(r->core);
    if (!given[1]) *to = given[0] && *from >= now ? *from + DAY_US : now;
    if (!given[0]) *from = *to - DAY_US;
    return true;
}

void h_presence_history(struct req *r)
{
    int64_t from, to;
    if (!query_window(r, &from, &to)) return;
    struct usersd_err err = {0};
    struct usersd_history h;
    if (usersd_presence_history(r->core, r->path_id, from, to, &h, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_history_text(&h, &len);
    usersd_history_free(&h);
    reply_text(r, 200, JSON_TYPE, text, len);
}

void h_online_history(struct req *r)
{
    int64_t from, to, bucket = 0;
    if (!query_window(r, &from, &to)) return;
    const char *b = query_str(r, "bucket");
    if (b) {
        static const struct {
            const char *name;
            int64_t s;
        } names[] = {{"1m", 60}, {"5m", 300}, {"1h", 3600}, {"1d", 86400}};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(b, names[i].name)) bucket = names[i].s;
        if (!bucket) {
            reply_fail(r, 400, "bucket", "bucket must be one of 1m, 5m, 1h, 1d");
            return;
        }
    }
    struct usersd_err err = {0};
    struct usersd_online_history h;
    if (usersd_online_history(r->core, from, to, bucket, &h, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_online_history_text(&h, &len);
    usersd_online_history_free(&h);
    reply_text(r, 200, JSON_TYPE, text, len);
}
