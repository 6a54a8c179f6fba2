/* writer.c — group commit for presence writes (set-online-status,
 * me/online-status, heartbeat), the endpoints clients call the most.
 *
 * A handler does not write: it queues a job and suspends its connection,
 * so the worker thread goes on serving others. One writer thread with its
 * own handle takes every queued job, applies them in one transaction
 * (usersd_batch_*: each job still atomic on its own), commits once — one
 * disk flush for the lot — and only then resumes the connections, whose
 * replies are therefore durable when sent. Under load a batch holds as many
 * jobs as there are clients waiting; alone, a job waits for nothing.
 * Refreshes (API.md §7), which nobody waits for, go with the next batch,
 * or on their own once the oldest has waited REFRESH_DELAY_US. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define BATCH_MAX 1024
#define WRITER_CACHE_KIB (48 * 1024)
#define ACTIVITY_MAX 65536 /* activity queued at most (24 bytes each) */
/* Refreshes alone wait this long for company, or until this many are
 * queued: a flush then carries hundreds, and what it costs a refresh (a
 * statement, a commit) is shared (API.md §7 allows a second). A status
 * change takes the queue with it at once. */
#define REFRESH_DELAY_US 100000
#define REFRESH_FLUSH_N 4096

static struct {
    struct job_queue q; /* queued jobs; its lock guards the rest too */
    /* Queued refreshes (API.md §7): nobody waits for them, the replies
     * that carried them are already sent. */
    struct usersd_refresh *acts;
    size_t nacts, capacts;
    int64_t first_act_us; /* when the oldest queued refresh came (CLOCK_REALTIME) */
    bool stopping, running;
    bool urgent; /* writer_wait_refreshes: flush the queue now */
    pthread_t thread;
    struct usersd *core;
    /* Refreshes queued so far, and of those the ones applied (committed or
     * failed): writer_wait_refreshes waits for the second to reach the first. */
    uint64_t queued, applied;
    pthread_cond_t applied_cond;
} w = {.q = JOB_QUEUE_INIT, .applied_cond = PTHREAD_COND_INITIALIZER};

/* SQLite's checkpoints, apart from the writer (usersd_config.
 * checkpoint_apart). When a commit ran them, every write queued behind the
 * one that filled the WAL waited while thousands of pages were copied and
 * flushed (status changes' p99 of 200-470 ms under million_online's load).
 * A thread of its own copies the WAL into the file every
 * CHECKPOINT_EVERY_MS, beside the writer, which never waits for it. But a
 * copy made while writes go on never catches up with them, and the WAL
 * starts again from its beginning only after a checkpoint that left
 * nothing (without one it grew by 4 GB in 30 s of status changes): once it
 * holds CHECKPOINT_RESTART_FRAMES pages, and what is left is down to a
 * short tail, the checkpointer takes the writer's turn for that tail
 * alone, and the writer's next batch begins the WAL again. */
#define CHECKPOINT_EVERY_MS 500
#define CHECKPOINT_RESTART_FRAMES 8192 /* 32 MiB of 4 KiB pages */
#define CHECKPOINT_TAIL_FRAMES 1024
#define CHECKPOINT_PASSES 4         /* passes beside the writer before the tail */
#define CHECKPOINT_MAX_FRAMES 65536 /* past 256 MiB the tail waits no longer */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_mutex_t turn; /* held by a batch, or by the tail's copy */
    pthread_t thread;
    struct usersd *core;
    bool running, stopping;
} ck = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER,
        .turn = PTHREAD_MUTEX_INITIALIZER};

/* Jobs in user id order, each user's in the order they came: the writes of
 * a batch then walk the presence table and its index in key order (fewer
 * pages touched, and those in order), and a user's own changes keep their
 * order. */
static int by_user(const void *a, const void *b)
{
    const struct req *x = *(struct req *const *)a, *y = *(struct req *const *)b;
    if (x->job->user_id != y->job->user_id) return x->job->user_id < y->job->user_id ? -1 : 1;
    return (x->job->order > y->job->order) - (x->job->order < y->job->order);
}

static int by_key(const struct usersd_refresh *x, const struct usersd_refresh *y)
{
    if (x->user_id != y->user_id) return x->user_id < y->user_id ? -1 : 1;
    return (x->session_id > y->session_id) - (x->session_id < y->session_id);
}

static int by_activity(const void *a, const void *b)
{
    const struct usersd_refresh *x = a, *y = b;
    int k = by_key(x, y);
    return k ? k : (x->at > y->at) - (x->at < y->at);
}

/* The refreshes queued since the last batch: each user and session once
 * (its latest), in key order, in one call. Best effort: nobody waits for
 * them, and each is written at most once per activity interval. */
static void run_activity(struct usersd_refresh *acts, size_t n)
{
    if (!n) return;
    qsort(acts, n, sizeof *acts, by_activity);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || by_key(&acts[i], &acts[i + 1])) /* else a later one follows */
            acts[kept++] = acts[i];
    usersd_refresh_many(w.core, acts, kept, NULL);
}

static void run_batch(struct req **jobs, size_t n, struct usersd_refresh *acts, size_t nacts)
{
    static struct usersd_status_job sj[BATCH_MAX]; /* the writer thread's alone */
    static struct usersd_session sess[BATCH_MAX];
    struct usersd_err err = {0};
    for (size_t i = 0; i < n; i++)
        jobs[i]->job->order = i;
    qsort(jobs, n, sizeof *jobs, by_user);
    for (size_t i = 0; i < n; i++) {
        struct req *r = jobs[i];
        memset(&r->job->err, 0, sizeof r->job->err);
        /* The caller's own presence write is its activity too (the
         * session's last_used; last_seen when setting away). */
        sess[i] = (struct usersd_session){.id = r->session.id, .last_used = r->session.last_used};
        sj[i] = (struct usersd_status_job){.user_id = r->job->user_id,
                                           .status = r->job->status,
                                           .session = r->route->own_activity ? &sess[i] : NULL,
                                           .out = &r->job->user,
                                           .err = &r->job->err,
                                           .flags = r->job->flags};
    }
    if (!n) { /* refreshes alone: no batch (PostgreSQL commits them without a flush) */
        run_activity(acts, nacts);
        return;
    }
    enum usersd_code rc = usersd_batch_begin(w.core, &err);
    if (!rc) run_activity(acts, nacts);
    /* One call for the lot (PostgreSQL sends every write before reading a
     * result); each job still succeeds or fails on its own. */
    if (!rc && n) rc = usersd_set_status_many(w.core, sj, n, &err);
    for (size_t i = 0; i < n; i++) {
        struct req *r = jobs[i];
        r->job->rc = rc ? rc : sj[i].rc;
        if (rc) r->job->err = err; /* nothing applied: every job fails with the reason */
    }
    if (!rc && usersd_batch_commit(w.core, &err)) {
        for (size_t i = 0; i < n; i++)
            if (!jobs[i]->job->rc) { /* applied, but the commit failed: not durable */
                jobs[i]->job->rc = err.code;
                jobs[i]->job->err = err;
            }
    } else if (rc) {
        usersd_batch_rollback(w.core); /* a no-op when the batch never began */
    }
    for (size_t i = 0; i < n; i++) {
        jobs[i]->job->state = JOB_DONE;
        MHD_resume_connection(jobs[i]->conn);
    }
}

static int64_t real_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Whether there is work now; else waits for some (or for the queued
 * refreshes' time to come), w.q.lock held. */
static bool work_due(void)
{
    if (w.q.head || w.stopping || w.urgent || w.nacts >= REFRESH_FLUSH_N) return true;
    if (!w.nacts) {
        pthread_cond_wait(&w.q.wake, &w.q.lock);
        return false;
    }
    int64_t due = w.first_act_us + REFRESH_DELAY_US;
    if (real_us() >= due) return true;
    struct timespec ts = {.tv_sec = due / 1000000, .tv_nsec = (due % 1000000) * 1000};
    pthread_cond_timedwait(&w.q.wake, &w.q.lock, &ts);
    return false;
}

static void *writer_main(void *arg)
{
    (void)arg;
    struct req *jobs[BATCH_MAX];
    struct usersd_refresh *acts = NULL;
    size_t capacts = 0;
    pthread_mutex_lock(&w.q.lock);
    for (;;) {
        while (!work_due()) {
        }
        if (!w.q.head && !w.nacts && w.stopping) break;
        w.urgent = false;
        size_t n = 0;
        while (n < BATCH_MAX && (jobs[n] = job_queue_take(&w.q)))
            n++;
        /* Take the queued activity by swapping arrays: the queue keeps
         * filling meanwhile without a copy. */
        struct usersd_refresh *taken = w.acts;
        size_t nacts = w.nacts, taken_cap = w.capacts;
        w.acts = acts;
        w.capacts = capacts;
        w.nacts = 0;
        acts = taken;
        capacts = taken_cap;
        uint64_t took = w.queued;
        pthread_mutex_unlock(&w.q.lock);
        pthread_mutex_lock(&ck.turn);
        run_batch(jobs, n, acts, nacts);
        pthread_mutex_unlock(&ck.turn);
        sse_notify(); /* the log may have grown */
        pthread_mutex_lock(&w.q.lock);
        w.applied = took;
        pthread_cond_broadcast(&w.applied_cond);
    }
    pthread_mutex_unlock(&w.q.lock);
    free(acts);
    return NULL;
}

/* One round: copies beside the writer until the tail is short, then, when
 * the WAL is long enough to be worth beginning again, the tail in the
 * writer's turn. Best effort: a failed round leaves the next to catch up. */
static void checkpoint_round(void)
{
    int64_t frames = 0, left = 0;
    for (int i = 0; i < CHECKPOINT_PASSES; i++) {
        if (usersd_checkpoint(ck.core, &frames, &left, NULL)) return;
        if (left <= CHECKPOINT_TAIL_FRAMES) break;
    }
    if (frames < CHECKPOINT_RESTART_FRAMES ||
        (left > CHECKPOINT_TAIL_FRAMES && frames < CHECKPOINT_MAX_FRAMES))
        return;
    pthread_mutex_lock(&ck.turn);
    usersd_checkpoint(ck.core, NULL, NULL, NULL);
    pthread_mutex_unlock(&ck.turn);
}

static void *checkpointer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&ck.lock);
    while (!ck.stopping) {
        int64_t due = real_us() + CHECKPOINT_EVERY_MS * 1000;
        struct timespec ts = {.tv_sec = due / 1000000, .tv_nsec = (due % 1000000) * 1000};
        pthread_cond_timedwait(&ck.wake, &ck.lock, &ts);
        if (ck.stopping) break;
        pthread_mutex_unlock(&ck.lock);
        checkpoint_round();
        pthread_mutex_lock(&ck.lock);
    }
    pthread_mutex_unlock(&ck.lock);
    return NULL;
}

/* Only SQLite has a WAL to checkpoint: no handle (and no connection) for
 * PostgreSQL. Without it the WAL would only grow: the server does not
 * start. */
static int checkpointer_start(struct usersd_err *err)
{
    struct usersd_config c = server_core_config();
    if (!c.db_url || strncmp(c.db_url, "postgres", 8) == 0) return 0;
    if (usersd_open(&ck.core, &c, err)) return -1;
    if (pthread_create(&ck.thread, NULL, checkpointer_main, NULL) != 0) {
        snprintf(err->msg, sizeof err->msg, "cannot start the checkpoint thread");
        usersd_close(ck.core);
        ck.core = NULL;
        return -1;
    }
    ck.running = true;
    return 0;
}

static void checkpointer_stop(void)
{
    if (!ck.running) return;
    pthread_mutex_lock(&ck.lock);
    ck.stopping = true;
    pthread_cond_signal(&ck.wake);
    pthread_mutex_unlock(&ck.lock);
    pthread_join(ck.thread, NULL);
    usersd_close(ck.core);
    ck.core = NULL;
    ck.running = ck.stopping = false;
}

int writer_start(struct usersd_err *err)
{
    struct usersd_config c = server_core_config();
    /* Every presence write goes through this one connection: a cache that
     * holds the narrow presence table and its index at a million users
     * (~45 MiB) saves a read from the OS for each change. */
    c.cache_kib = WRITER_CACHE_KIB;
    if (usersd_open(&w.core, &c, err)) return -1;
    if (pthread_create(&w.thread, NULL, writer_main, NULL) != 0) {
        snprintf(err->msg, sizeof err->msg, "cannot start the writer thread");
        usersd_close(w.core);
        w.core = NULL;
        return -1;
    }
    w.running = true;
    if (checkpointer_start(err)) {
        writer_stop();
        return -1;
    }
    return 0;
}

void writer_stop(void)
{
    if (!w.running) return;
    checkpointer_stop();
    pthread_mutex_lock(&w.q.lock);
    w.stopping = true; /* it drains the queue first */
    pthread_cond_signal(&w.q.wake);
    pthread_mutex_unlock(&w.q.lock);
    pthread_join(w.thread, NULL);
    free(w.acts);
    w.acts = NULL;
    w.nacts = w.capacts = 0;
    usersd_close(w.core);
    w.core = NULL;
    w.running = false;
}

void writer_submit(struct req *r, int64_t user_id, enum usersd_status status, enum job_kind kind,
                   unsigned flags)
{
    struct write_job *job = request_job(r);
    if (!job) return;
    job->user_id = user_id;
    job->status = status;
    job->kind = kind;
    job->flags = flags;
    job_queue_push(&w.q, r);
}

void writer_activity(int64_t user_id, int64_t session_id, int64_t at)
{
    pthread_mutex_lock(&w.q.lock);
    if (w.nacts == w.capacts && w.capacts < ACTIVITY_MAX) {
        size_t cap = w.capacts ? w.capacts * 2 : 256;
        struct usersd_refresh *a = realloc(w.acts, cap * sizeof *a);
        if (a) {
            w.acts = a;
            w.capacts = cap;
        }
    }
    /* Full (the writer is far behind): this one is dropped; the user's next
     * request, a minute later at most, writes it. */
    if (w.nacts < w.capacts) {
        if (!w.nacts) w.first_act_us = real_us();
        w.acts[w.nacts++] = (struct usersd_refresh){user_id, session_id, at};
        w.queued++;
        /* the first starts the writer's timer; enough of them end it */
        if (w.nacts == 1 || w.nacts == REFRESH_FLUSH_N) pthread_cond_signal(&w.q.wake);
    }
    pthread_mutex_unlock(&w.q.lock);
}

void writer_wait_refreshes(int64_t timeout_us)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_us / 1000000;
    until.tv_nsec += (timeout_us % 1000000) * 1000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w.q.lock);
    uint64_t want = w.queued;
    if (w.applied < want) {
        w.urgent = true;
        pthread_cond_signal(&w.q.wake);
    }
    while (w.running && !w.stopping && w.applied < want &&
           pthread_cond_timedwait(&w.applied_cond, &w.q.lock, &until) == 0) {
    }
    pthread_mutex_unlock(&w.q.lock);
}

void writer_reply(struct req *r)
{
    r->job->state = JOB_NONE;
    if (r->job->rc) {
        reply_err(r, &r->job->err);
        return;
    }
    size_t len = 0;
    char *text = r->job->kind == JOB_HEARTBEAT ? render_heartbeat_text(&r->job->user, &len)
                                               : render_status_set_text(&r->job->user, &len);
    reply_text(r, 200, JSON_TYPE, text, len);
}
