/* metrics.c — Prometheus counters without a lock on the hot path: each
 * worker thread counts into its own block (one writer, relaxed atomics so a
 * scrape may read it), and a scrape sums the blocks. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define MAX_ROUTES 64 /* at least the table's rows; one more slot for unmatched paths */
static const int codes[] = {200, 201, 204, 400, 401, 403, 404, 405, 409,
                            410, 413, 414, 415, 429, 431, 500, 503};
#define NCODES (sizeof codes / sizeof codes[0])
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

struct block {
    struct thread_block link;                      /* first: on the blocks list */
    atomic_ullong req[MAX_ROUTES + 1][NCODES + 1]; /* last column: other codes */
    atomic_ullong hist[MAX_ROUTES + 1][NBOUNDS + 1];
    atomic_ullong sum_us[MAX_ROUTES + 1];
    atomic_ullong db_errors;
};

static struct thread_blocks blocks = THREAD_BLOCKS_INIT;
/* Session ends are rare (logins are argon2-bound): plain atomics. */
static atomic_ullong sessions_revoked, sessions_expired;

void metrics_sessions_ended(int64_t revoked, int64_t expired)
{
    if (revoked > 0) atomic_fetch_add(&sessions_revoked, (unsigned long long)revoked);
    if (expired > 0) atomic_fetch_add(&sessions_expired, (unsigned long long)expired);
}
static _Thread_local struct block *mine;

static struct block *my_block(void)
{
    if (!mine) mine = thread_block_new(&blocks, sizeof *mine, NULL);
    return mine;
}

static void add(atomic_ullong *c, unsigned long long n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void metrics_observe(int route, int status, int64_t us)
{
    struct block *b = my_block();
    if (!b) return;
    int r = route >= 0 && route < MAX_ROUTES ? route : MAX_ROUTES;
    size_t c = 0;
    while (c < NCODES && codes[c] != status)
        c++;
    add(&b->req[r][c], 1);
    size_t k = 0;
    while (k < NBOUNDS && (double)us / 1e6 > bounds[k])
        k++;
    add(&b->hist[r][k], 1);
    add(&b->sum_us[r], (unsigned long long)(us > 0 ? us : 0));
}

void metrics_db_error(void)
{
    struct block *b = my_block();
    if (b) add(&b->db_errors, 1);
}

void metrics_free(void)
{
    thread_blocks_free(&blocks, NULL);
}

struct text {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !t->oom; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->oom = true;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

/* Sums one counter over every thread's block (blocks.lock held); `at`
 * picks the counter out of a block. */
static unsigned long long sum(atomic_ullong *(*at)(struct block *, int, int), int i, int j)
{
    unsigned long long s = 0;
    for (struct thread_block *b = blocks.head; b; b = b->next)
        s += atomic_load(at((struct block *)b, i, j));
    return s;
}

static atomic_ullong *at_req(struct block *b, int i, int j)
{
    return &b->req[i][j];
}

static atomic_ullong *at_hist(struct block *b, int i, int j)
{
    return &b->hist[i][j];
}

static atomic_ullong *at_sum(struct block *b, int i, int j)
{
    (void)j;
    return &b->sum_us[i];
}

static atomic_ullong *at_db(struct block *b, int i, int j)
{
    (void)i, (void)j;
    return &b->db_errors;
}

char *metrics_render(const struct usersd_stats *stats, const struct metrics_counts *counts,
                     size_t *len)
{
    struct text t = {.cap = 16384};
    t.buf = malloc(t.cap);
    if (!t.buf) return NULL;
    t.buf[0] = 0;
    int nroutes = router_count();
    pthread_mutex_lock(&blocks.lock);
    put(&t, "# HELP usersd_http_requests_total HTTP requests by route, method and status code.\n"
            "# TYPE usersd_http_requests_total counter\n");
    for (int r = 0; r <= nroutes && r <= MAX_ROUTES; r++) {
        const struct route *rt = r < nroutes ? router_at(r) : NULL;
        int slot = rt ? r : MAX_ROUTES;
        for (size_t c = 0; c <= NCODES; c++) {
            unsigned long long n = sum(at_req, slot, (int)c);
            if (!n) continue;
            char code[8];
            snprintf(code, sizeof code, "%d", c < NCODES ? codes[c] : 0);
            put(&t, "usersd_http_requests_total{route=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
                rt ? rt->pattern : "unmatched", rt ? rt->method : "any",
                c < NCODES ? code : "other", n);
        }
    }
    put(&t, "# HELP usersd_http_request_duration_seconds Time from request to reply.\n"
            "# TYPE usersd_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= nroutes && r <= MAX_ROUTES; r++) {
        const struct route *rt = r < nroutes ? router_at(r) : NULL;
        int slot = rt ? r : MAX_ROUTES;
        unsigned long long total = 0;
        for (size_t k = 0; k <= NBOUNDS; k++)
            total += sum(at_hist, slot, (int)k);
        if (!total) continue;
        const char *route = rt ? rt->pattern : "unmatched", *method = rt ? rt->method : "any";
        unsigned long long cum = 0;
        for (size_t k = 0; k <= NBOUNDS; k++) {
            cum += sum(at_hist, slot, (int)k);
            if (k < NBOUNDS)
                put(&t,
                    "usersd_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                    "le=\"%g\"} %llu\n",
                    route, method, bounds[k], cum);
            else
                put(&t,
                    "usersd_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                    "le=\"+Inf\"} %llu\n",
                    route, method, cum);
        }
        put(&t,
            "usersd_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n"
            "usersd_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
            route, method, (double)sum(at_sum, slot, 0) / 1e6, route, method, total);
    }
    unsigned long long dberr = sum(at_db, 0, 0);
    pthread_mutex_unlock(&blocks.lock);
    if (stats)
        put(&t,
            "# HELP usersd_users Users by online status.\n# TYPE usersd_users gauge\n"
            "usersd_users{status=\"online\"} %lld\nusersd_users{status=\"away\"} %lld\n"
            "usersd_users{status=\"offline\"} %lld\n"
            "# HELP usersd_sessions Sessions (logins not yet ended) in the database.\n"
            "# TYPE usersd_sessions gauge\nusersd_sessions %lld\n"
            "# HELP usersd_users_manual Users whose status was set by hand (manual away or "
            "offline).\n# TYPE usersd_users_manual gauge\nusersd_users_manual %lld\n"
            "# HELP usersd_users_dnd Users in do not disturb.\n"
            "# TYPE usersd_users_dnd gauge\nusersd_users_dnd %lld\n",
            (long long)stats->online_users, (long long)stats->away_users,
            (long long)stats->offline_users, (long long)counts->sessions, (long long)counts->manual,
            (long long)counts->dnd);
    struct usersd_db_state db;
    usersd_db_state(&db);
    put(&t,
        "# HELP usersd_database_up Whether the database answers, as this process last saw.\n"
        "# TYPE usersd_database_up gauge\nusersd_database_up %d\n"
        "# HELP usersd_database_reconnects_total Database connections re-established after "
        "one was lost.\n"
        "# TYPE usersd_database_reconnects_total counter\nusersd_database_reconnects_total %lld\n",
        db.up ? 1 : 0, (long long)db.reconnects);
    put(&t,
        "# HELP usersd_sessions_revoked_total Sessions ended by logout or revocation here.\n"
        "# TYPE usersd_sessions_revoked_total counter\nusersd_sessions_revoked_total %llu\n"
        "# HELP usersd_sessions_expired_total Sessions ended by this process's expiry sweep.\n"
        "# TYPE usersd_sessions_expired_total counter\nusersd_sessions_expired_total %llu\n",
        atomic_load(&sessions_revoked), atomic_load(&sessions_expired));
    put(&t,
        "# HELP usersd_open_streams Presence streams open now.\n"
        "# TYPE usersd_open_streams gauge\nusersd_open_streams %ld\n",
        sse_open_streams());
    put(&t,
        "# HELP usersd_db_errors_total Requests answered 503 because the database failed.\n"
        "# TYPE usersd_db_errors_total counter\nusersd_db_errors_total %llu\n",
        dberr);
    put(&t,
        "# HELP usersd_build_info The running version.\n# TYPE usersd_build_info gauge\n"
        "usersd_build_info{version=\"%s\"} 1\n",
        USERSD_VERSION);
    if (t.oom) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}
