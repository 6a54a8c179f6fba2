/* h_presence.c — the seed's presence endpoints: set and get one user's
 * status, the online list, and many statuses at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

void presence_set_from_body(struct req *r, int64_t id)
{
    const char *name = NULL;
    enum usersd_status status;
    if (!body_str(r, "status", &name)) return;
    if (!name) {
        reply_fail(r, 400, "status", "status is required: one of online, away, offline");
        return;
    }
    if (!usersd_status_parse(name, &status)) {
        reply_fail(r, 400, "status", "status must be one of: online, away, offline");
        return;
    }
    writer_submit(r, id, status, JOB_SET_STATUS); /* replied when durable */
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
 * more often than presence changes: each worker thread keeps the last page
 * it rendered with the database's data version, and serves it again while
 * nothing at all has been committed since. Staff and other viewers see
 * different pages (emails); a viewer on the page sees their own email, so
 * such a page is rendered fresh and never cached. */
struct page_cache {
    bool valid, staff;
    uint64_t version;
    int page, per_page;
    int64_t ids[USERSD_PER_PAGE_MAX];
    size_t n;
    char *text;
    size_t len;
    struct page_cache *next; /* every thread's, so shutdown can free them */
};
static _Thread_local struct page_cache *tl_cache;
static struct page_cache *all_caches;
static pthread_mutex_t caches_lock = PTHREAD_MUTEX_INITIALIZER;

static struct page_cache *my_cache(void)
{
    if (tl_cache) return tl_cache;
    struct page_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_lock(&caches_lock);
    c->next = all_caches;
    all_caches = c;
    pthread_mutex_unlock(&caches_lock);
    return tl_cache = c;
}

static bool cache_hit(const struct page_cache *c, const struct req *r, uint64_t version, int page,
                      int per_page)
{
    if (!c->valid || c->version != version || c->page != page || c->per_page != per_page ||
        c->staff != r->caller.is_staff)
        return false;
    for (size_t i = 0; !r->caller.is_staff && i < c->n; i++)
        if (c->ids[i] == r->caller.id) return false;
    return true;
}

static void cache_store(struct page_cache *c, const struct req *r, uint64_t version,
                        const struct usersd_page *p, const char *text, size_t len)
{
    for (size_t i = 0; !r->caller.is_staff && i < p->count; i++)
        if (p->users[i].id == r->caller.id) return; /* shows this viewer's own email */
    char *copy = malloc(len + 1);
    if (!copy) return;
    memcpy(copy, text, len + 1);
    free(c->text);
    c->text = copy;
    c->len = len;
    c->valid = true;
    c->staff = r->caller.is_staff;
    c->version = version;
    c->page = p->page;
    c->per_page = p->per_page;
    c->n = p->count;
    for (size_t i = 0; i < p->count; i++)
        c->ids[i] = p->users[i].id;
}

void presence_cache_free(void)
{
    pthread_mutex_lock(&caches_lock);
    while (all_caches) {
        struct page_cache *n = all_caches->next;
        free(all_caches->text);
        free(all_caches);
        all_caches = n;
    }
    pthread_mutex_unlock(&caches_lock);
}

void h_online(struct req *r)
{
    int page, per_page;
    if (!query_page(r, &page, &per_page)) return;
    struct page_cache *c = my_cache();
    uint64_t version = 0;
    bool versioned = c && usersd_data_version(r->core, &version, NULL) == USERSD_OK;
    if (versioned && cache_hit(c, r, version, page, per_page)) {
        char *copy = malloc(c->len + 1);
        if (copy) memcpy(copy, c->text, c->len + 1);
        reply_text(r, 200, JSON_TYPE, copy, c->len);
        return;
    }
    struct usersd_err err = {0};
    struct usersd_page p;
    if (usersd_online_users(r->core, page, per_page, &p, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_online_page_text(&p, request_viewer(r), &len);
    if (text && versioned) cache_store(c, r, version, &p, text, len);
    reply_text(r, 200, JSON_TYPE, text, len);
    usersd_page_free(&p);
}

void h_bulk_status(struct req *r)
{
    const char *v = query_str(r, "ids");
    int64_t ids[USERSD_PER_PAGE_MAX];
    size_t n = 0;
    if (!v) {
        reply_fail(r, 400, "ids", "ids is required: 1 to 100 comma-separated user ids");
        return;
    }
    for (const char *c = v;;) {
        int64_t id = 0;
        const char *start = c;
        for (; *c >= '0' && *c <= '9'; c++)
            if ((id = id * 10 + (*c - '0')) > INT32_MAX) break;
        if (c == start || id > INT32_MAX || (*c && *c != ',')) {
            reply_fail(r, 400, "ids", "ids must be comma-separated whole numbers");
            return;
        }
        if (n == USERSD_PER_PAGE_MAX) {
            reply_fail(r, 400, "ids", "at most 100 ids may be asked at once");
            return;
        }
        ids[n++] = id;
        if (!*c) break;
        c++;
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
