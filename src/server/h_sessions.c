/* h_sessions.c — sessions, one per login and device (API.md §7): the
 * caller's own, and (staff) any user's. */
#include "server.h"

static void reply_sessions(struct req *r, int64_t user_id, int64_t current)
{
    struct usersd_err err = {0};
    struct usersd_sessions list;
    if (usersd_session_list(r->core, user_id, current, &list, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_sessions_text(&list, &len);
    usersd_sessions_free(&list);
    reply_text(r, 200, JSON_TYPE, text, len);
}

void h_my_sessions(struct req *r)
{
    reply_sessions(r, r->caller.id, r->session.id);
}

void h_my_session_delete(struct req *r)
{
    struct usersd_err err = {0};
    /* Another user's session is "not found" too: ids are not secrets, but
     * nobody learns which exist. */
    if (usersd_session_revoke(r->core, r->caller.id, r->path_id, &err)) {
        reply_err(r, &err);
        return;
    }
    metrics_sessions_ended(1, 0);
    if (r->path_id == r->session.id) reply_clear_cookie(r);
    reply_empty(r, 204);
}

void h_user_sessions(struct req *r)
{
    reply_sessions(r, r->path_id, 0);
}

void h_user_sessions_delete(struct req *r)
{
    struct usersd_err err = {0};
    int64_t n = 0;
    if (usersd_session_revoke_all(r->core, r->path_id, 0, &n, &err)) {
        reply_err(r, &err);
        return;
    }
    metrics_sessions_ended(n, 0);
    if (r->path_id == r->caller.id) reply_clear_cookie(r);
    reply_empty(r, 204);
}
