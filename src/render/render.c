/* render.c — JSON of users, pages, statuses and statistics (jansson). */
#include "render.h"

json_t *render_time(int64_t t)
{
    if (t == USERSD_NULL_TIME) return json_null();
    char buf[USERSD_TIME_LEN + 1];
    usersd_time_format(t, buf, sizeof buf);
    return json_string(buf);
}

json_t *render_user(const struct usersd_user *u, struct render_viewer v)
{
    json_t *o = json_pack("{s:I, s:s}", "id", (json_int_t)u->id, "username", u->username);
    if (!o) return NULL;
    if (v.staff || v.id == u->id) json_object_set_new(o, "email", json_string(u->email));
    json_object_set_new(o, "first_name", json_string(u->first_name));
    json_object_set_new(o, "last_name", json_string(u->last_name));
    json_object_set_new(o, "is_active", json_boolean(u->is_active));
    json_object_set_new(o, "is_staff", json_boolean(u->is_staff));
    json_object_set_new(o, "date_joined", render_time(u->date_joined));
    json_object_set_new(o, "online_status", json_string(usersd_status_name(u->online_status)));
    json_object_set_new(o, "last_seen", render_time(u->last_seen));
    json_object_set_new(o, "is_online", json_boolean(usersd_user_is_online(u)));
    return o;
}

json_t *render_status(const struct usersd_user *u)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:b}", "user_id", (json_int_t)u->id, "username",
                     u->username, "online_status", usersd_status_name(u->online_status),
                     "last_seen", render_time(u->last_seen), "is_online", usersd_user_is_online(u));
}

json_t *render_heartbeat(const struct usersd_user *u)
{
    return json_pack("{s:I, s:s, s:o, s:b}", "user_id", (json_int_t)u->id, "online_status",
                     usersd_status_name(u->online_status), "last_seen", render_time(u->last_seen),
                     "is_online", usersd_user_is_online(u));
}

json_t *render_status_set(const struct usersd_user *u)
{
    const char *name = usersd_status_name(u->online_status);
    char msg[64];
    snprintf(msg, sizeof msg, "User online status updated to %s", name);
    return json_pack("{s:s, s:I, s:s, s:o}", "message", msg, "user_id", (json_int_t)u->id,
                     "online_status", name, "last_seen", render_time(u->last_seen));
}

json_t *render_pagination(const struct usersd_page *p)
{
    int64_t pages = usersd_page_total_pages(p);
    return json_pack("{s:i, s:i, s:I, s:I, s:b, s:b}", "page", p->page, "per_page", p->per_page,
                     "total_pages", (json_int_t)pages, "total_count", (json_int_t)p->total_count,
                     "has_next", p->page<pages, "has_previous", p->page> 1);
}

static json_t *user_array(const struct usersd_page *p, struct render_viewer v)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < p->count; i++)
        json_array_append_new(a, render_user(&p->users[i], v));
    return a;
}

json_t *render_online_page(const struct usersd_page *p, struct render_viewer v)
{
    return json_pack("{s:o, s:I, s:o}", "online_users", user_array(p, v), "online_count",
                     (json_int_t)p->total_count, "pagination", render_pagination(p));
}

json_t *render_user_list(const struct usersd_page *p, struct render_viewer v)
{
    return json_pack("{s:o, s:o}", "users", user_array(p, v), "pagination", render_pagination(p));
}

json_t *render_statuses(const struct usersd_page *p)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < p->count; i++)
        json_array_append_new(a, render_status(&p->users[i]));
    return json_pack("{s:o}", "statuses", a);
}

json_t *render_stats(const struct usersd_stats *s)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "total_users",
                     (json_int_t)s->total_users, "active_users", (json_int_t)s->active_users,
                     "inactive_users", (json_int_t)s->inactive_users, "staff_users",
                     (json_int_t)s->staff_users, "online_users", (json_int_t)s->online_users,
                     "away_users", (json_int_t)s->away_users, "offline_users",
                     (json_int_t)s->offline_users, "online_ratio", s->online_ratio);
}

json_t *render_error(const struct usersd_err *err)
{
    json_t *o = json_pack("{s:s}", "error", err->msg[0] ? err->msg : usersd_strerror(err->code));
    if (o && err->field[0])
        json_object_set_new(o, "fields", json_pack("{s:s}", err->field, err->msg));
    return o;
}

json_t *render_change(const struct usersd_change *c)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:b}", "user_id", (json_int_t)c->user_id, "username",
                     c->username, "online_status", usersd_status_name(c->online_status),
                     "last_seen", render_time(c->last_seen), "is_online",
                     c->online_status == USERSD_ONLINE);
}

json_t *render_changes(const struct usersd_changes *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < c->count; i++) {
        json_t *o = render_change(&c->items[i]);
        if (o) json_object_set_new(o, "seq", json_integer(c->items[i].seq));
        json_array_append_new(a, o);
    }
    return json_pack("{s:o, s:I}", "changes", a, "next_since", (json_int_t)c->next_since);
}
