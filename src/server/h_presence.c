/* h_presence.c — the seed's presence endpoints: set and get one user's
 * status, the online list, and many statuses at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "server.h"

void presence_set_from_body(struct req *r, int64_t id)
{
    const char *name = NULL;
    enum usersd_status status;
    int manual = 0;
    if (!body_str(r, "status", &name) || !body_bool(r, "manual", &manual)) return;
    if (!name) {
        reply_fail(r, 400, "status", "status is required: one of online, away, offline");
        return;
    }
    if (!usersd_status_parse(name, &status)) {
        reply_fail(r, 400, "status", "status must be one of: online, away, offline");
        return;
    }
    /* API.md §12: online is never manual. Refused rather than ignored, so a
     * client that meant something else learns it at once. */
    if (manual && status == USERSD_ONLINE) {
        reply_fail(r, 400, "manual",
                   "manual goes with away or offline; online is never manual (setting it ends "
                   "a manual status)");
        return;
    }
    writer_submit(r, id, status, JOB_SET_STATUS,
                  manual ? USERSD_STATUS_MANUAL : 0); /* replied when durable */
}

void h_set_status(struct req *r)
{
    presence_set_from_body(r, r->path_id);
}

void h_get_status(struct req *r)
{
    struct usersd_err err = {0};
    struct usersd_user user;
    if (usersd_get_status(r->core, r->path_id, &user, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_status_text(&user, &len);
    reply_text(r, 200, JSON_TYPE, text, len);
}

/* The online list is what dashboards poll, many viewers the same page, far
 * more often than presence changes: served from the page kept while the
 * database is unchanged (reply_cache.c). Staff and others see different
 * pages (emails), so the key says which. */
void h_online(struct req *r)
{
    int page, per_page;
    if (!query_page(r, &page, &per_page)) return;
    char key[64];
    snprintf(key, sizeof key, "online %d %d %d", page, per_page, r->caller.is_staff);
    uint64_t version;
    bool versioned;
    if (reply_cache_serve(r, key, &version, &versioned)) return;
    struct usersd_err err = {0};
    struct usersd_page p;
    if (usersd_online_users(r->core, page, per_page, &p, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_online_page_text(&p, request_viewer(r), &len);
    if (versioned) reply_cache_store(r, key, version, &p, text, len);
    reply_text(r, 200, JSON_TYPE, text, len);
    usersd_page_free(&p);
}

void h_bulk_status(struct req *r)
{
    const char *v = query_str(r, "ids");
    int64_t ids[PARSE_IDS_BULK_MAX];
    size_t n = 0;
    if (!v) {
        reply_fail(r, 400, "ids", "ids is required: 1 to 100 comma-separated user ids");
        return;
    }
    switch (parse_ids(v, strlen(v), ids, PARSE_IDS_BULK_MAX, &n)) {
    case PARSE_IDS_MALFORMED:
        reply_fail(r, 400, "ids", "ids must be comma-separated whole numbers");
        return;
    case PARSE_IDS_TOO_MANY:
        reply_fail(r, 400, "ids", "at most 100 ids may be asked at once");
        return;
    case PARSE_IDS_OK:
        break;
    }
    struct usersd_err err = {0};
    struct usersd_page p;
    if (usersd_users_by_ids(r->core, ids, n, &p, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_statuses_text(&p, &len);
    reply_text(r, 200, JSON_TYPE, text, len);
    usersd_page_free(&p);
}
