/* store.c — the driver list: a database URL's scheme picks the driver. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct store_ops *const drivers[] = {
    &store_sqlite_ops,
#ifdef USERSD_WITH_PG
    &store_pg_ops,
#endif
};

static bool scheme_is(const char *url, const char *scheme)
{
    size_t n = scheme ? strlen(scheme) : 0;
    return n && strncmp(url, scheme, n) == 0 && url[n] == ':';
}

enum usersd_code store_open(struct store **out, const char *url,
                            const struct store_progress *progress, struct usersd_err *err)
{
    *out = NULL;
    if (!url || !*url) return err_set(err, USERSD_EINVAL, "no database URL given");
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
        const struct store_ops *d = drivers[i];
        const char *scheme = scheme_is(url, d->scheme)  ? d->scheme
                             : scheme_is(url, d->alias) ? d->alias
                                                        : NULL;
        if (scheme)
            return d->open(out, d->full_url ? url : url + strlen(scheme) + 1, progress, err);
    }
    return err_set(err, USERSD_EINVAL,
                   "unsupported database URL '%.100s' (expected sqlite:PATH or "
                   "postgresql://user:pass@host:port/dbname)",
                   url);
}

void store_close(struct store *s)
{
    if (s) s->ops->close(s);
}

enum usersd_code store_check_pruned(int64_t since, int64_t pruned, struct usersd_err *err)
{
    if (since >= pruned) return USERSD_OK;
    return err_set(err, USERSD_EGONE,
                   "changes after %lld were pruned; read the current state and continue from "
                   "the newest sequence",
                   (long long)since);
}

void store_progress(const struct store_progress *p, const char *step, int64_t done, int64_t total)
{
    if (!p || !p->fn) return;
    struct usersd_progress r = {p->task, step, done, total};
    p->fn(p->ctx, &r);
}

char *store_like_pattern(const char *search)
{
    size_t n = strlen(search);
    char *p = malloc(2 * n + 3), *o = p;
    if (!p) return NULL;
    *o++ = '%';
    for (const char *c = search; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\') *o++ = '\\';
        *o++ = *c;
    }
    *o++ = '%';
    *o = 0;
    return p;
}

/* ---- reachability ------------------------------------------------------- */

static struct {
    pthread_mutex_t lock; /* detail, primary */
    atomic_bool down, watched;
    atomic_uint gen;
    atomic_llong reconnects, outages;
    char detail[200];
    char host[256], port[32];
} db_health = {.lock = PTHREAD_MUTEX_INITIALIZER};

void store_db_down(const char *detail)
{
    pthread_mutex_lock(&db_health.lock);
    if (!atomic_load(&db_health.down)) {
        snprintf(db_health.detail, sizeof db_health.detail, "%s", detail ? detail : "");
        atomic_fetch_add(&db_health.outages, 1);
        atomic_store(&db_health.down, true);
    }
    pthread_mutex_unlock(&db_health.lock);
}

unsigned store_db_up(void)
{
    if (atomic_load(&db_health.down)) {
        pthread_mutex_lock(&db_health.lock);
        if (atomic_load(&db_health.down)) {
            atomic_fetch_add(&db_health.gen, 1);
            atomic_store(&db_health.down, false);
        }
        pthread_mutex_unlock(&db_health.lock);
    }
    return atomic_load(&db_health.gen);
}

unsigned store_db_gen(void)
{
    return atomic_load(&db_health.gen);
}

void store_db_reconnected(void)
{
    atomic_fetch_add(&db_health.reconnects, 1);
}

void store_db_watched(void)
{
    atomic_store(&db_health.watched, true);
}

bool store_db_is_down(void)
{
    return atomic_load(&db_health.down);
}

bool store_db_gated(void)
{
    return atomic_load(&db_health.down) && atomic_load(&db_health.watched);
}

void store_db_set_primary(const char *host, const char *port)
{
    pthread_mutex_lock(&db_health.lock);
    snprintf(db_health.host, sizeof db_health.host, "%s", host ? host : "");
    snprintf(db_health.port, sizeof db_health.port, "%s", port ? port : "");
    pthread_mutex_unlock(&db_health.lock);
}

void store_db_primary(char *host, size_t hsize, char *port, size_t psize)
{
    pthread_mutex_lock(&db_health.lock);
    snprintf(host, hsize, "%s", db_health.host);
    snprintf(port, psize, "%s", db_health.port);
    pthread_mutex_unlock(&db_health.lock);
}

void usersd_db_state(struct usersd_db_state *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&db_health.lock);
    out->up = !atomic_load(&db_health.down);
    out->reconnects = atomic_load(&db_health.reconnects);
    out->outages = atomic_load(&db_health.outages);
    snprintf(out->detail, sizeof out->detail, "%s", db_health.detail);
    pthread_mutex_unlock(&db_health.lock);
}
