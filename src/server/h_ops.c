/* h_ops.c — liveness and readiness for load balancers and orchestrators,
 * and the database watch behind readiness.
 *
 * The watch (PostgreSQL): one thread with its own handle checks every
 * WATCH_EVERY_MS that the database answers within WATCH_TIMEOUT_MS
 * (usersd_db_check). That bounds every wait on a primary that stopped
 * answering: once the check notices, every call waiting on the database
 * gives up and the next ones fail at once (503), until the check reaches
 * a primary again — the old one back, or the standby promoted. /readyz
 * reads the state it keeps and never waits on the database itself; the
 * log says once when the database goes (with libpq's words) and once when
 * it is back. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define WATCH_EVERY_MS 200
#define WATCH_TIMEOUT_MS 500

extern const char usersd_openapi_json[]; /* docs/openapi.json, embedded */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, running;
    pthread_t thread;
    struct usersd *core;
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watch_main(void *arg)
{
    (void)arg;
    struct usersd_db_state prev;
    usersd_db_state(&prev);
    int64_t down_at = mono_ms();
    pthread_mutex_lock(&watch.lock);
    while (!watch.stopping) {
        pthread_mutex_unlock(&watch.lock);
        struct usersd_err err = {0};
        usersd_db_check(watch.core, WATCH_TIMEOUT_MS, &err);
        struct usersd_db_state st;
        usersd_db_state(&st);
        if (st.outages != prev.outages) {
            down_at = mono_ms();
            server_log("database: unavailable, answering 503 until it is back: %s", st.detail);
        }
        if (st.up && (!prev.up || st.outages != prev.outages))
            server_log("database: available again after %.1f s",
                       (double)(mono_ms() - down_at) / 1000.0);
        prev = st;
        pthread_mutex_lock(&watch.lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_EVERY_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!watch.stopping) pthread_cond_timedwait(&watch.wake, &watch.lock, &ts);
    }
    pthread_mutex_unlock(&watch.lock);
    return NULL;
}

int ops_watch_start(struct usersd_err *err)
{
    const char *url = server_config()->db_url;
    if (strncmp(url, "postgres", 8) != 0) return 0; /* SQLite: nothing to lose */
    struct usersd_config c = server_core_config();
    if (usersd_open(&watch.core, &c, err)) return -1;
    if (pthread_create(&watch.thread, NULL, watch_main, NULL) != 0) {
        snprintf(err->msg, sizeof err->msg, "cannot start the database watch");
        usersd_close(watch.core);
        watch.core = NULL;
        return -1;
    }
    watch.running = true;
    return 0;
}

void ops_watch_stop(void)
{
    if (!watch.running) return;
    pthread_mutex_lock(&watch.lock);
    watch.stopping = true;
    pthread_cond_signal(&watch.wake);
    pthread_mutex_unlock(&watch.lock);
    pthread_join(watch.thread, NULL);
    usersd_close(watch.core);
    watch.core = NULL;
    watch.running = false;
}

void h_healthz(struct req *r)
{
    reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void not_ready(struct req *r)
{
    reply_json(
        r, 503,
        json_pack("{s:s, s:s}", "status", "unavailable", "error", "the database is unavailable"));
}

void h_readyz(struct req *r)
{
    struct usersd_db_state st;
    usersd_db_state(&st);
    if (!st.up || !r->core) { /* down, or this thread could not even open it */
        not_ready(r);
        return;
    }
    struct usersd_err err = {0};
    if (!watch.running && usersd_ping(r->core, &err)) { /* SQLite: its file */
        not_ready(r);
        return;
    }
    reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void h_metrics(struct req *r)
{
    struct usersd_err err = {0};
    struct usersd_stats stats;
    struct metrics_counts counts = {0};
    /* Without the database the process's own metrics still go out (the
     * database gauge among them), the database's counts left out. */
    bool counted = r->core && !usersd_stats(r->core, &stats, &err) &&
                   !usersd_session_count(r->core, &counts.sessions, &err) &&
                   !usersd_presence_counts(r->core, &counts.manual, &counts.dnd, &err);
    size_t len = 0;
    char *text = metrics_render(counted ? &stats : NULL, &counts, &len);
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
