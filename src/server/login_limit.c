/* login_limit.c — password guessing (API.md §11).
 *
 * Failed logins are counted per (client address, username) and per client
 * address, each in a window of 10 minutes from its first failure: past
 * --login-max-failures for a pair, or five times that for an address, the
 * next attempt is answered 429 with Retry-After until the window ends —
 * without looking at the password, so the right one does not get through
 * either. A success starts its pair afresh (not its address).
 *
 * Exact under concurrency: checks that are running count against the limit
 * with the failures, and an attempt that could only pass if running ones
 * succeed waits for them to settle. A thousand guesses sent at once are
 * limited like a thousand sent one by one, while a thousand right logins
 * sent at once are not held up (no failures, at most --threads running).
 *
 * Memory is fixed: two set-associative tables (8 ways) keyed by a keyed
 * BLAKE2b of the address and lower-cased username, so nobody can aim
 * entries at one set. A new entry takes an empty or expired way, else the
 * one with the fewest failures (the oldest among equals): a flood of new
 * usernames replaces entries that hold few failures long before it can
 * push out a blocked one, and the per-address count stops such a flood
 * from any one address anyway.
 *
 * The password checks themselves (argon2id, tens of milliseconds and
 * 19 MiB each) run on their own pool of --threads threads: the HTTP worker
 * suspends the connection and goes on serving others, so a flood of logins
 * waits its turn instead of taking every worker. */
#define _GNU_SOURCE /* gettid, pthread_setname_np */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "server.h"

#define WAYS 8
#define PAIR_SETS 2048 /* 16,384 pairs */
#define ADDR_SETS 512  /* 4,096 addresses */

struct slot {
    uint64_t key;     /* 0: empty */
    int64_t start_us; /* the window's start: the first failure */
    uint32_t count;   /* failures in the window */
    uint32_t busy;    /* checks running now */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t settled; /* a running check ended */
    unsigned char hash_key[crypto_generichash_KEYBYTES];
    struct slot pair[PAIR_SETS][WAYS];
    struct slot addr[ADDR_SETS][WAYS];
    int64_t window_us;
    uint32_t max_pair, max_addr;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER, .settled = PTHREAD_COND_INITIALIZER};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t key_of(char kind, const char *ip, const char *username)
{
    crypto_generichash_state st;
    unsigned char out[8];
    crypto_generichash_init(&st, L.hash_key, sizeof L.hash_key, sizeof out);
    crypto_generichash_update(&st, (const unsigned char *)&kind, 1);
    crypto_generichash_update(&st, (const unsigned char *)ip, strlen(ip) + 1);
    if (username) { /* usernames match case-insensitively (API.md §6) */
        unsigned char buf[256];
        size_t n = 0;
        for (const char *c = username; *c; c++) {
            buf[n++] = (unsigned char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
            if (n == sizeof buf) {
                crypto_generichash_update(&st, buf, n);
                n = 0;
            }
        }
        crypto_generichash_update(&st, buf, n);
    }
    crypto_generichash_final(&st, out, sizeof out);
    uint64_t k = 0;
    memcpy(&k, out, sizeof k);
    return k ? k : 1;
}

static struct slot *pair_set(uint64_t key)
{
    return L.pair[key % PAIR_SETS];
}

static struct slot *addr_set(uint64_t key)
{
    return L.addr[(key >> 16) % ADDR_SETS];
}

static struct slot *find(struct slot *set, uint64_t key, int64_t now)
{
    for (int i = 0; i < WAYS; i++)
        if (set[i].key == key) {
            if (set[i].count && now - set[i].start_us >= L.window_us)
                set[i].count = 0; /* its window is over */
            return &set[i];
        }
    return NULL;
}

/* A way for key: an empty or idle one, else the one with the fewest
 * failures, the oldest among equals. */
static struct slot *take(struct slot *set, uint64_t key, int64_t now)
{
    struct slot *v = NULL;
    for (int i = 0; i < WAYS; i++) {
        struct slot *s = &set[i];
        bool idle = !s->busy && (!s->count || now - s->start_us >= L.window_us);
        if (!s->key || idle) {
            v = s;
            break;
        }
        if (!v || s->count < v->count || (s->count == v->count && s->start_us < v->start_us)) v = s;
    }
    *v = (struct slot){.key = key, .start_us = now};
    return v;
}

static long wait_s(const struct slot *s, uint32_t max, int64_t now)
{
    if (!s || s->count < max) return 0;
    int64_t left = s->start_us + L.window_us - now;
    return left <= 0 ? 1 : (long)((left + 999999) / 1000000);
}

static long blocked(const struct slot *p, const struct slot *a, int64_t now)
{
    long wp = wait_s(p, L.max_pair, now), wa = wait_s(a, L.max_addr, now);
    return wp > wa ? wp : wa;
}

void login_limit_configure(int max_failures)
{
    L.max_pair = (uint32_t)max_failures;
    L.max_addr = 5 * (uint32_t)max_failures;
    L.window_us = 600 * 1000000LL;
    const char *t = getenv("USERSD_TEST_LOGIN_WINDOW"); /* seconds; tests only */
    if (t && *t) {
        char *end;
        long v = strtol(t, &end, 10);
        if (!*end && v > 0 && v <= 600) L.window_us = v * 1000000LL;
    }
    if (sodium_init() < 0) abort(); /* idempotent; usersd_open did it already */
    crypto_generichash_keygen(L.hash_key);
}

long login_limit_check(const char *ip, const char *username)
{
    uint64_t kp = key_of('p', ip, username), ka = key_of('a', ip, NULL);
    int64_t now = now_us();
    pthread_mutex_lock(&L.lock);
    long wait = blocked(find(pair_set(kp), kp, now), find(addr_set(ka), ka, now), now);
    pthread_mutex_unlock(&L.lock);
    return wait;
}

long login_limit_begin(const char *ip, const char *username, struct login_ticket *t)
{
    uint64_t kp = key_of('p', ip, username), ka = key_of('a', ip, NULL);
    pthread_mutex_lock(&L.lock);
    struct slot *p, *a;
    for (;;) {
        int64_t now = now_us();
        p = find(pair_set(kp), kp, now);
        a = find(addr_set(ka), ka, now);
        long wait = blocked(p, a, now);
        if (wait) {
            pthread_mutex_unlock(&L.lock);
            return wait;
        }
        bool pair_room = !p || p->count + p->busy < L.max_pair;
        bool addr_room = !a || a->count + a->busy < L.max_addr;
        if (pair_room && addr_room) break;
        /* Only running checks stand between this one and the limit: if
         * they fail, it must not run. Wait for one to settle. */
        pthread_cond_wait(&L.settled, &L.lock);
    }
    int64_t now = now_us();
    if (!p) p = take(pair_set(kp), kp, now);
    if (!a) a = take(addr_set(ka), ka, now);
    p->busy++;
    a->busy++;
    *t = (struct login_ticket){.pair = kp, .addr = ka, .held = true};
    pthread_mutex_unlock(&L.lock);
    return 0;
}

static void settle(struct slot *s, bool failed, int64_t now)
{
    if (!s) return; /* pushed out meanwhile */
    if (s->busy) s->busy--;
    if (!failed) return;
    if (!s->count) s->start_us = now; /* the window starts at the first failure */
    s->count++;
}

void login_limit_end(struct login_ticket *t, enum login_outcome outcome)
{
    if (!t->held) return;
    t->held = false;
    int64_t now = now_us();
    pthread_mutex_lock(&L.lock);
    struct slot *p = find(pair_set(t->pair), t->pair, now);
    settle(p, outcome == LOGIN_FAILED, now);
    settle(find(addr_set(t->addr), t->addr, now), outcome == LOGIN_FAILED, now);
    if (p && outcome == LOGIN_OK) p->count = 0; /* the pair starts afresh */
    pthread_cond_broadcast(&L.settled);
    pthread_mutex_unlock(&L.lock);
}

/* ---- the pool of password checks ----------------------------------------- */

static struct {
    struct job_queue q; /* its lock guards stopping too */
    bool stopping;
    pthread_t *threads;
    int n;
} P = {.q = JOB_QUEUE_INIT};

/* How much lower the password checks run than the threads serving HTTP:
 * a read that arrives while a check holds the core then takes the core at
 * once instead of waiting out the check's time slice. */
#define POOL_NICE 10

static void *pool_main(void *arg)
{
    /* On Linux a thread has a niceness of its own. Raising it needs no
     * privilege; where it fails, checks run at the usual priority. */
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), POOL_NICE);
    pthread_setname_np(pthread_self(), "usersd-login"); /* as top -H shows it */
    struct usersd_err err = {0};
    struct usersd_config c = server_core_config();
    struct usersd *core = NULL;
    if (usersd_open(&core, &c, &err)) core = NULL; /* tried again per job */
    /* An unknown username is checked against a dummy hash made on first
     * use: make it now, or the first such login would cost two hashes and
     * tell that the name does not exist (the first thread makes it). */
    if (core && arg) usersd_password_check(core, "", "", NULL, &err);
    pthread_mutex_lock(&P.q.lock);
    for (;;) {
        while (!P.q.head && !P.stopping)
            pthread_cond_wait(&P.q.wake, &P.q.lock);
        struct req *r = job_queue_take(&P.q);
        if (!r) break; /* stopping, and the queue is drained */
        pthread_mutex_unlock(&P.q.lock);
        memset(&r->job->err, 0, sizeof r->job->err);
        if (!core && usersd_open(&core, &c, &r->job->err)) {
            core = NULL;
            r->job->rc = r->job->err.code ? r->job->err.code : USERSD_EDB;
        } else {
            r->job->rc = r->pool_run(r, core);
        }
        r->job->state = JOB_DONE;
        MHD_resume_connection(r->conn);
        pthread_mutex_lock(&P.q.lock);
    }
    pthread_mutex_unlock(&P.q.lock);
    usersd_close(core);
    return NULL;
}

int login_pool_start(int threads, struct usersd_err *err)
{
    P.threads = calloc((size_t)threads, sizeof *P.threads);
    if (!P.threads) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return -1;
    }
    for (; P.n < threads; P.n++)
        if (pthread_create(&P.threads[P.n], NULL, pool_main, P.n ? NULL : &P) != 0) {
            snprintf(err->msg, sizeof err->msg, "cannot start the login threads");
            login_pool_stop();
            return -1;
        }
    return 0;
}

void login_pool_stop(void)
{
    pthread_mutex_lock(&P.q.lock);
    P.stopping = true; /* the queue is drained first */
    pthread_cond_broadcast(&P.q.wake);
    pthread_mutex_unlock(&P.q.lock);
    for (int i = 0; i < P.n; i++)
        pthread_join(P.threads[i], NULL);
    free(P.threads);
    P.threads = NULL;
    P.n = 0;
}

void login_pool_submit(struct req *r, enum usersd_code (*run)(struct req *r, struct usersd *core),
                       handler_fn reply)
{
    if (!request_job(r)) return;
    r->pool_run = run;
    r->resumed = reply;
    job_queue_push(&P.q, r);
}
