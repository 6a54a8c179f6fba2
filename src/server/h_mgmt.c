/* h_mgmt.c — staff user management: the filtered list, statistics, CRUD. */
#include <stdio.h>
#include <string.h>

#include "server.h"

void h_list(struct req *r)
{
    struct usersd_list_query q;
    usersd_list_query_init(&q);
    if (!query_page(r, &q.page, &q.per_page)) return;
    const char *status = query_str(r, "online_status");
    if (status) {
        enum usersd_status s;
        if (!usersd_status_parse(status, &s)) {
            reply_fail(r, 400, "online_status", "online_status must be online, away or offline");
            return;
        }
        q.online_status = (int)s;
    }
    if (!query_bool(r, "is_active", &q.is_active) || !query_bool(r, "is_staff", &q.is_staff))
        return;
    q.search = query_str(r, "search");
    const char *ordering = query_str(r, "ordering");
    if (ordering) {
        static const char *const keys[] = {"id", "username", "date_joined", "last_seen"};
        q.descending = ordering[0] == '-';
        const char *key = ordering + q.descending;
        size_t i = 0;
        while (i < 4 && strcmp(key, keys[i]) != 0)
            i++;
        if (i == 4) {
            reply_fail(r, 400, "ordering",
                       "ordering must be one of id, username, date_joined, last_seen, each "
                       "optionally prefixed with -");
            return;
        }
        q.order = (enum usersd_order)i;
    }
    /* Staff only, so every caller sees the same page: kept while the
     * database is unchanged (reply_cache.c). The search goes last in the
     * key, so its text cannot be mistaken for another field. */
    char key[320];
    int kn = snprintf(key, sizeof key, "list %d %d %d %d %d %d %d %s", q.online_status, q.is_active,
                      q.is_staff, (int)q.order, q.descending, q.page, q.per_page,
                      q.search ? q.search : "");
    uint64_t version;
    bool versioned = false; /* a key that did not fit (an over-long search) is not kept */
    if (kn > 0 && (size_t)kn < sizeof key && reply_cache_serve(r, key, &version, &versioned))
        return;
    struct usersd_err err = {0};
    struct usersd_page p;
    if (usersd_user_list(r->core, &q, &p, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_user_list_text(&p, request_viewer(r), &len);
    if (versioned) reply_cache_store(r, key, version, &p, text, len);
    reply_text(r, 200, JSON_TYPE, text, len);
    usersd_page_free(&p);
}

void h_stats(struct req *r)
{
    struct usersd_err err = {0};
    struct usersd_stats s;
    if (usersd_stats(r->core, &s, &err)) {
        reply_err(r, &err);
        return;
    }
    reply_json(r, 200, render_stats(&s));
}

/* Reads the writable user fields of the body; false with 400 queued. */
static bool read_fields(struct req *r, struct usersd_user_fields *f)
{
    usersd_user_fields_init(f);
    return body_str(r, "username", &f->username) && body_str(r, "password", &f->password) &&
           body_str(r, "email", &f->email) && body_str(r, "first_name", &f->first_name) &&
           body_str(r, "last_name", &f->last_name) && body_bool(r, "is_active", &f->is_active) &&
           body_bool(r, "is_staff", &f->is_staff);
}

static void reply_user(struct req *r, int status, enum usersd_code rc, const struct usersd_err *err,
                       const struct usersd_user *user)
{
    if (rc)
        reply_err(r, err);
    else
        reply_json(r, status, render_user(user, request_viewer(r)));
}

void h_user_create(struct req *r)
{
    struct usersd_user_fields f;
    if (!read_fields(r, &f)) return;
    struct usersd_err err = {0};
    struct usersd_user user;
    enum usersd_code rc = usersd_user_create(r->core, &f, &user, &err);
    reply_user(r, 201, rc, &err, &user);
}

void h_user_get(struct req *r)
{
    struct usersd_err err = {0};
    struct usersd_user user;
    enum usersd_code rc = usersd_user_get(r->core, r->path_id, &user, &err);
    reply_user(r, 200, rc, &err, &user);
}

void h_user_patch(struct req *r)
{
    static const struct {
        const char *name, *hint;
    } fixed[] = {{"id", ""},
                 {"online_status", "; use set-online-status"},
                 {"last_seen", ""},
                 {"date_joined", ""},
                 {"status_manual", "; use set-online-status with \"manual\""},
                 {"dnd", "; use PUT or DELETE .../dnd/"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (json_object_get(r->json, fixed[i].name)) {
            reply_fail(r, 400, fixed[i].name, "%s cannot be changed here%s", fixed[i].name,
                       fixed[i].hint);
            return;
        }
    struct usersd_user_fields f;
    if (!read_fields(r, &f)) return;
    struct usersd_err err = {0};
    struct usersd_user user;
    /* A new password ends the user's other sessions; staff changing their
     * own password keep the session they do it from. */
    int64_t keep = r->caller.id == r->path_id ? r->session.id : 0;
    enum usersd_code rc = usersd_user_update_keep(r->core, r->path_id, &f, keep, &user, &err);
    reply_user(r, 200, rc, &err, &user);
}

void h_user_delete(struct req *r)
{
    struct usersd_err err = {0};
    if (usersd_user_delete(r->core, r->path_id, &err)) {
        reply_err(r, &err);
        return;
    }
    reply_empty(r, 204);
}
