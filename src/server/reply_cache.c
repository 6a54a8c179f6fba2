/* reply_cache.c — list pages kept per worker thread while the database is
 * unchanged.
 *
 * Dashboards and admin panels poll the same pages (the online list, a
 * filtered user list) far more often than anything changes. Each worker
 * thread keeps the last few pages it rendered, each under a key naming the
 * request and with the database's data version at the time, and serves one
 * again only while that version is still current: any commit by anyone (a
 * heartbeat, a decay, another process) makes every entry stale, so a reply
 * is never older than the database. PostgreSQL's version is the snapshot
 * the request's own token check read in (store_pg.c: pg_data_version), so
 * it costs no round trip: a page is served again while no transaction has
 * committed anywhere since it was rendered. */
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define SLOTS 4

struct entry {
    bool used;
    uint64_t version;
    int64_t until;  /* a status message on the page ends then (USERSD_NULL_TIME: none) */
    unsigned stamp; /* last use, for replacing the oldest */
    char *key;
    char *text;
    size_t len;
    int64_t ids[USERSD_PER_PAGE_MAX]; /* users on the page */
    size_t n;
};

struct cache {
    struct thread_block link; /* first: every thread's, for shutdown */
    struct entry e[SLOTS];
    unsigned clock;
};

static _Thread_local struct cache *tl_cache;
static struct thread_blocks caches = THREAD_BLOCKS_INIT;

static struct cache *my_cache(void)
{
    if (!tl_cache) tl_cache = thread_block_new(&caches, sizeof *tl_cache, NULL);
    return tl_cache;
}

/* A viewer who is not staff sees their own email on a page and no one
 * else's: a page showing them was rendered for them alone. */
static bool shows(const struct entry *e, int64_t id)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->ids[i] == id) return true;
    return false;
}

bool reply_cache_serve(struct req *r, const char *key, uint64_t *version, bool *versioned)
{
    struct cache *c = my_cache();
    *versioned = c && usersd_data_version(r->core, version, NULL) == USERSD_OK;
    if (!*versioned) return false;
    for (int i = 0; i < SLOTS; i++) {
        struct entry *e = &c->e[i];
        if (!e->used || e->version != *version || strcmp(e->key, key) != 0) continue;
        /* A message on the page ended: it must not be shown, though nothing
         * was committed yet (the sweep clears it within a second). */
        if (e->until != USERSD_NULL_TIME && usersd_now(r->core) >= e->until) return false;
        if (!r->caller.is_staff && shows(e, r->caller.id)) return false;
        char *copy = malloc(e->len + 1);
        if (!copy) return false;
        memcpy(copy, e->text, e->len + 1);
        e->stamp = ++c->clock;
        reply_text(r, 200, JSON_TYPE, copy, e->len);
        return true;
    }
    return false; /* a miss: *version is what to store the new page under */
}

void reply_cache_store(const struct req *r, const char *key, uint64_t version,
                       const struct usersd_page *p, const char *text, size_t len)
{
    struct cache *c = my_cache();
    if (!c || !text) return;
    for (size_t i = 0; !r->caller.is_staff && i < p->count; i++)
        if (p->users[i].id == r->caller.id) return; /* shows this viewer's own email */
    /* The slot of the same key, else a free one, else the least recently used. */
    struct entry *e = NULL;
    for (int i = 0; i < SLOTS && !e; i++)
        if (c->e[i].used && strcmp(c->e[i].key, key) == 0) e = &c->e[i];
    for (int i = 0; i < SLOTS && !e; i++)
        if (!c->e[i].used) e = &c->e[i];
    if (!e) {
        e = &c->e[0];
        for (int i = 1; i < SLOTS; i++)
            if (c->e[i].stamp < e->stamp) e = &c->e[i];
    }
    char *k = strdup(key), *t = malloc(len + 1);
    if (!k || !t) {
        free(k);
        free(t);
        return;
    }
    memcpy(t, text, len + 1);
    free(e->key);
    free(e->text);
    e->used = true;
    e->key = k;
    e->text = t;
    e->len = len;
    e->version = version;
    e->stamp = ++c->clock;
    e->n = p->count;
    e->until = USERSD_NULL_TIME;
    for (size_t i = 0; i < p->count; i++) {
        const struct usersd_user *x = &p->users[i];
        e->ids[i] = x->id;
        if (x->status_text[0] && x->status_expires != USERSD_NULL_TIME &&
            (e->until == USERSD_NULL_TIME || x->status_expires < e->until))
            e->until = x->status_expires;
    }
}

static void free_entries(void *block)
{
    struct cache *c = block;
    for (int i = 0; i < SLOTS; i++) {
        free(c->e[i].key);
        free(c->e[i].text);
    }
}

void reply_cache_free(void)
{
    thread_blocks_free(&caches, free_entries);
}
