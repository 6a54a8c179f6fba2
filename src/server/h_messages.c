/* h_messages.c — what a user shows beside the status: status messages
 * (API.md §8) and do not disturb (§12), the caller's own and (staff)
 * anyone's. */
#include "server.h"

#define EXPIRES_IN_MAX INT32_MAX /* seconds: about 68 years */

static void put_message(struct req *r, int64_t id)
{
    const char *text = NULL, *at = NULL;
    int64_t in = 0;
    bool has_in = false;
    if (!body_str(r, "text", &text) || !body_str(r, "expires_at", &at) ||
        !body_int(r, "expires_in", &in, &has_in))
        return;
    if (!text) {
        reply_fail(r, 400, "text", "text is required: 1 to 100 characters");
        return;
    }
    if (at && has_in) {
        reply_fail(r, 400, "expires_at", "give expires_at or expires_in, not both");
        return;
    }
    int64_t expires = USERSD_NULL_TIME;
    if (at && !usersd_time_parse(at, &expires)) {
        reply_fail(r, 400, "expires_at",
                   "expires_at must be an RFC 3339 time, like 2024-01-15T15:00:00Z");
        return;
    }
    if (has_in) {
        if (in <= 0 || in > EXPIRES_IN_MAX) {
            reply_fail(r, 400, "expires_in",
                       "expires_in must be a whole number of seconds from 1 to 2147483647");
            return;
        }
        expires = usersd_now(r->core) + in * 1000000;
    }
    struct usersd_err err = {0};
    struct usersd_user user;
    if (usersd_status_message_set(r->core, id, text, expires, &user, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *out = render_message_text(&user, &len);
    reply_text(r, 200, JSON_TYPE, out, len);
}

static void delete_message(struct req *r, int64_t id)
{
    struct usersd_err err = {0};
    if (usersd_status_message_clear(r->core, id, NULL, &err)) {
        reply_err(r, &err);
        return;
    }
    reply_empty(r, 204);
}

void h_my_message_put(struct req *r)
{
    put_message(r, r->caller.id);
}

void h_my_message_delete(struct req *r)
{
    delete_message(r, r->caller.id);
}

void h_user_message_put(struct req *r)
{
    put_message(r, r->path_id);
}

void h_user_message_delete(struct req *r)
{
    delete_message(r, r->path_id);
}

static void put_dnd(struct req *r, int64_t id)
{
    const char *at = NULL;
    int64_t minutes = 0;
    bool has_minutes = false;
    if (!body_str(r, "until", &at) || !body_int(r, "minutes", &minutes, &has_minutes)) return;
    int64_t until = USERSD_NULL_TIME;
    if (at && !usersd_time_parse(at, &until)) {
        reply_fail(r, 400, "until", "until must be an RFC 3339 time, like 2024-01-15T15:00:00Z");
        return;
    }
    /* out of range (0 is): the library refuses it, naming the field */
    int m = !has_minutes ? -1 : minutes < 1 || minutes > USERSD_DND_MINUTES_MAX ? 0 : (int)minutes;
    struct usersd_err err = {0};
    struct usersd_user user;
    if (usersd_dnd_set(r->core, id, until, m, &user, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *out = render_dnd_text(&user, &len);
    reply_text(r, 200, JSON_TYPE, out, len);
}

static void delete_dnd(struct req *r, int64_t id)
{
    struct usersd_err err = {0};
    if (usersd_dnd_clear(r->core, id, NULL, &err)) {
        reply_err(r, &err);
        return;
    }
    reply_empty(r, 204);
}

void h_my_dnd_put(struct req *r)
{
    put_dnd(r, r->caller.id);
}

void h_my_dnd_delete(struct req *r)
{
    delete_dnd(r, r->caller.id);
}

void h_user_dnd_put(struct req *r)
{
    put_dnd(r, r->path_id);
}

void h_user_dnd_delete(struct req *r)
{
    delete_dnd(r, r->path_id);
}
