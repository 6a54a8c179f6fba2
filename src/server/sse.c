/* sse.c — the presence stream and the background presence thread.
 *
 * One thread (the hub) owns a libusersd handle of its own. It reads the
 * change log (the truth shared by every process on the database) every
 * 100 ms or sooner when this process wrote something, renders each change
 * once into a ring of SSE events, and resumes the streams waiting for data.
 * It also runs the decay sweep and prunes the log.
 *
 * A stream holds no thread: its content reader copies what is new from the
 * ring and, when nothing is, suspends its connection until the hub resumes
 * it. A reader too slow to keep up falls behind the ring's oldest event and
 * is dropped (it reconnects with Last-Event-ID and replays from the
 * database); one that stops reading altogether is closed by libmicrohttpd's
 * 30 s idle timeout. Memory per stream is one struct and its backlog.
 *
 * An open stream is its user's activity (API.md §7): the hub marks every
 * open stream's session used, and its user seen, often enough that decay
 * never takes a connected user away (and ending another session of theirs
 * leaves them online). Only the refresh does this, so when the process dies
 * nothing is left behind: decay runs from the last refresh. A session that
 * ends (logout, revocation, expiry, in any process: the log says so)
 * closes its streams.
 *
 * Subscriptions (?ids=, API.md §7): a stream that follows a few users is
 * registered under each of them in `subs` (user id → streams). The hub
 * hands each new event to the streams found under its user: a small queue
 * of ring positions per stream, and a resume of that stream alone. So a
 * change costs per interested stream, not per open stream; the streams
 * that follow everyone (the firehose) are a list of their own that every
 * change resumes. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "parse.h"
#include "server.h"

#define RING_CAP 4096            /* events kept in memory for live streams */
#define EVENT_MAX 1024           /* one rendered event, bytes (a status message is up to 400) */
#define POLL_MS 100              /* log poll interval */
#define COALESCE_US 5000         /* least time between two reads of the log */
#define COALESCE_PER_STREAM_US 5 /* and this much more per open stream... */
#define COALESCE_MAX_US 50000    /* ...up to this */
#define DECAY_EVERY_US 250000    /* decay sweep interval */
/* ": keepalive" after this much silence: 15 s (USERSD_TEST_KEEPALIVE, in
 * seconds, for the tests). */
static int64_t keepalive_us = 15000000;
#define PRUNE_EVERY_US 60000000
#define REPLAY_MAX 10000        /* Last-Event-ID replay bound, events */
#define SAMPLE_EVERY_US 1000000 /* the per-minute history row: checked every second */
#define REFRESH_CHUNK 256       /* sessions refreshed per transaction */
/* The response's own buffer, which only an HTTP/1.0 reader's stream uses
 * (a chunked one is written into the connection's pool): kept small, as
 * every open stream holds one. */
#define STREAM_BLOCK 512
#define QUEUE_MAX 1024 /* events waiting for one filtered stream before it is dropped */

struct event {
    int64_t seq;
    int64_t user_id; /* whose change: the key that routes it to its followers */
    size_t len;
    char text[EVENT_MAX];
};

struct stream {
    struct MHD_Connection *conn;
    int64_t user_id, session_id; /* whose activity the stream is */
    int fd;                      /* its socket, to notice the client left */
    bool closing;                /* its session ended: end the stream */
    int64_t cursor;              /* the last seq this stream has been given */
    char *pending;               /* bytes owed before the next ring event (owned) */
    size_t pending_len, pending_off;
    int64_t last_write_us;
    bool suspended;
    struct stream *prev, *next;   /* every stream */
    struct stream *fprev, *fnext; /* the firehose: streams without ?ids= */
    int64_t *ids;                 /* followed users, sorted, once each (NULL: everyone) */
    size_t nids;
    int64_t *asked; /* the ids as asked, for the snapshot's order (then freed) */
    size_t nasked;
    uint64_t *queue;          /* ring positions of its users' events */
    size_t qhead, qlen, qcap; /* a circular buffer (qcap a power of two) */
    bool overflow;            /* fell QUEUE_MAX behind: dropped, it reconnects */
    bool attached;            /* on the hub's lists */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct event *ring;      /* RING_CAP slots; event p lives at ring[p % RING_CAP] */
    uint64_t first, next;    /* positions of the oldest and the next event */
    int64_t head;            /* the newest seq the hub has read */
    int64_t evicted;         /* the newest seq dropped from the ring */
    struct stream *streams;  /* all */
    struct stream *firehose; /* those without ?ids= */
    struct subs *subs;       /* user id → filtered streams */
    atomic_long nstreams;
    bool stopping, running;
    pthread_t thread;
    struct usersd *core;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long sse_open_streams(void)
{
    return atomic_load(&hub.nstreams);
}

/* Renders one change (a presence change, a status message or do not
 * disturb) as an SSE event into ev; false if it does not fit. */
static bool render_event(const struct usersd_change *c, struct event *ev)
{
    bool message = c->kind == USERSD_CHANGE_STATUS_MESSAGE, dnd = c->kind == USERSD_CHANGE_DND;
    char *data = message ? render_message_event_text(c, NULL)
                 : dnd   ? render_dnd_event_text(c, NULL)
                         : render_change_text(c, NULL);
    if (!data) return false;
    int n =
        snprintf(ev->text, sizeof ev->text, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)c->seq,
                 message ? "status_message"
                 : dnd   ? "dnd"
                         : "presence",
                 data);
    free(data);
    if (n < 0 || (size_t)n >= sizeof ev->text) return false;
    ev->seq = c->seq;
    ev->user_id = c->user_id;
    ev->len = (size_t)n;
    return true;
}

static void resume(struct stream *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

/* Resumes the suspended streams that have something to do (hub lock held):
 * firehose streams after new events; with only_idle, any stream due a
 * keepalive or to be closed; with all, every stream (shutdown). */
static void resume_all(bool only_idle, bool all, int64_t now)
{
    if (only_idle || all) {
        for (struct stream *s = hub.streams; s; s = s->next)
            if (all || s->closing || now - s->last_write_us >= keepalive_us) resume(s);
        return;
    }
    for (struct stream *s = hub.firehose; s; s = s->fnext)
        resume(s);
}

/* Queues ring position p for filtered stream s (hub lock held). */
static void enqueue(struct stream *s, uint64_t p)
{
    if (s->overflow) return;
    if (s->qlen == s->qcap) {
        size_t cap = s->qcap ? s->qcap * 2 : 8;
        uint64_t *q = cap <= QUEUE_MAX ? malloc(cap * sizeof *q) : NULL;
        if (!q) {
            s->overflow = true;
            return;
        }
        for (size_t i = 0; i < s->qlen; i++)
            q[i] = s->queue[(s->qhead + i) & (s->qcap - 1)];
        free(s->queue);
        s->queue = q;
        s->qcap = cap;
        s->qhead = 0;
    }
    s->queue[(s->qhead + s->qlen++) & (s->qcap - 1)] = p;
}

/* Hands ring position p to the streams following its user (hub lock held). */
static void route(uint64_t p)
{
    size_t n;
    void *const *v = subs_get(hub.subs, hub.ring[p % RING_CAP].user_id, &n);
    for (size_t i = 0; i < n; i++) {
        struct stream *s = v[i];
        enqueue(s, p);
        resume(s);
    }
}

/* Ends the streams of a session that ended (session 0: every session of
 * the user) at their next read (hub lock held). */
static void close_session(int64_t user_id, int64_t session_id)
{
    for (struct stream *s = hub.streams; s; s = s->next)
        if (s->user_id == user_id && (!session_id || s->session_id == session_id))
            s->closing = true;
}

/* How often an open stream marks its session used: within the activity
 * interval, and at most half of the away window and of offline_after, so
 * decay never sees a connected user idle and ending another session of
 * theirs finds this one in use. */
/* The session sweep: a tenth of the time to live, from 1 s to a minute. A
 * token is refused once its time is up (checked when read); the sweep
 * removes the row and may take the user offline. On PostgreSQL it walks
 * the table (no index has last_used, so refreshes stay heap-only), hence
 * not every second at the default 30 days. */
static int64_t expire_every_us(void)
{
    int64_t us = server_config()->session_ttl_s * 100000;
    return us < 1000000 ? 1000000 : us > 60000000 ? 60000000 : us;
}

static int64_t refresh_every_us(void)
{
    const struct server_config *cfg = server_config();
    int64_t window = cfg->away_after_s > 0 ? cfg->away_after_s : 600;
    if (cfg->offline_after_s > 0 && cfg->offline_after_s < window) window = cfg->offline_after_s;
    int64_t us = window * 1000000 / 2;
    if (cfg->activity_interval_s > 0 && cfg->activity_interval_s * 1000000 < us)
        us = cfg->activity_interval_s * 1000000;
    return us < 250000 ? 250000 : us;
}

/* Whether the client of a suspended stream is gone. libmicrohttpd does not
 * watch a suspended connection, so a client that closed would otherwise
 * count as connected until the next keepalive write fails (up to 30 s of
 * false activity). A stream's client never sends after its request, so a
 * peek that reads end-of-file (or fails) means it left. */
static bool client_left(const struct stream *s)
{
    char byte;
    ssize_t n = recv(s->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Whether a failure is the database being away, which the watch logs
 * once (h_ops.c) rather than each thread every time. */
static bool db_away(void)
{
    struct usersd_db_state st;
    usersd_db_state(&st);
    return !st.up;
}

/* Marks every open stream's session used and its user seen; closes the
 * streams whose client left or whose session is gone. The ids are taken
 * under the lock, the writes made without it, a chunk per transaction. */
static void refresh_streams(void)
{
    pthread_mutex_lock(&hub.lock);
    size_t n = 0, cap = (size_t)atomic_load(&hub.nstreams) + 1;
    int64_t *ids = malloc(cap * sizeof *ids);
    for (struct stream *s = hub.streams; ids && s && n < cap; s = s->next) {
        if (!s->closing && s->fd >= 0 && client_left(s)) s->closing = true;
        if (!s->closing && s->session_id > 0) ids[n++] = s->session_id;
    }
    pthread_mutex_unlock(&hub.lock);
    if (!ids) return;
    bool alive[REFRESH_CHUNK];
    for (size_t off = 0; off < n; off += REFRESH_CHUNK) {
        size_t k = n - off < REFRESH_CHUNK ? n - off : REFRESH_CHUNK;
        struct usersd_err err = {0};
        if (usersd_session_refresh(hub.core, ids + off, k, alive, &err)) {
            if (!db_away())
                server_log("presence: cannot refresh the streams' sessions: %s", err.msg);
            break;
        }
        pthread_mutex_lock(&hub.lock);
        for (size_t i = 0; i < k; i++)
            if (!alive[i])
                for (struct stream *s = hub.streams; s; s = s->next)
                    if (s->session_id == ids[off + i]) s->closing = true;
        pthread_mutex_unlock(&hub.lock);
    }
    free(ids);
}

/* Reads new changes from the log into the ring. Returns how many. */
static size_t hub_fetch(void)
{
    struct usersd_changes c;
    struct usersd_err err = {0};
    size_t total = 0;
    for (int round = 0; round < 10; round++) {
        enum usersd_code rc =
            usersd_log_since(hub.core, hub.head, USERSD_CHANGES_LIMIT_MAX, &c, &err);
        if (rc == USERSD_EGONE) { /* stalled past retention: jump to the head */
            int64_t head;
            if (!usersd_changes_head(hub.core, &head, &err)) {
                pthread_mutex_lock(&hub.lock);
                hub.head = hub.evicted = head;
                pthread_mutex_unlock(&hub.lock);
            }
            return total;
        }
        if (rc) {
            static int64_t last_log;
            int64_t now = mono_us();
            if (now - last_log > 10000000 && !db_away()) {
                server_log("presence: cannot read the change log: %s", err.msg);
                last_log = now;
            }
            return total;
        }
        pthread_mutex_lock(&hub.lock);
        for (size_t i = 0; i < c.count; i++) {
            hub.head = c.items[i].seq;
            if (c.items[i].kind == USERSD_CHANGE_SESSION_END) {
                close_session(c.items[i].user_id, c.items[i].session_id);
                continue;
            }
            if (c.items[i].kind != USERSD_CHANGE_PRESENCE &&
                c.items[i].kind != USERSD_CHANGE_STATUS_MESSAGE &&
                c.items[i].kind != USERSD_CHANGE_DND)
                continue;
            if (hub.next - hub.first == RING_CAP) {
                hub.evicted = hub.ring[hub.first % RING_CAP].seq;
                hub.first++;
            }
            struct event *ev = &hub.ring[hub.next % RING_CAP];
            if (render_event(&c.items[i], ev)) route(hub.next++);
        }
        if (c.count) resume_all(false, false, 0);
        pthread_mutex_unlock(&hub.lock);
        total += c.count;
        size_t n = c.count;
        usersd_changes_free(&c);
        if (n < USERSD_CHANGES_LIMIT_MAX) break;
    }
    return total;
}

/* The least time between two reads of the log. Each read wakes every
 * stream that has news — a wake-up and a write each — so with thousands of
 * streams open the events go out in fewer, larger writes: 5 ms for a few
 * hundred streams, 50 ms from 10,000 on. */
static int64_t coalesce_us(void)
{
    int64_t us = (int64_t)atomic_load(&hub.nstreams) * COALESCE_PER_STREAM_US;
    return us < COALESCE_US ? COALESCE_US : us > COALESCE_MAX_US ? COALESCE_MAX_US : us;
}

static void *hub_main(void *arg)
{
    (void)arg;
    int64_t next_decay = 0, next_prune = 0, next_keepalive = 0, last_work = 0;
    int64_t next_expire = 0, next_refresh = mono_us() + refresh_every_us(), next_sample = 0;
    struct usersd_err err = {0};
    bool can_wait = true;
    pthread_mutex_lock(&hub.lock);
    while (!hub.stopping) {
        if (can_wait) {
            /* PostgreSQL: sleep on LISTEN/NOTIFY, so a change from any
             * process wakes us at once; the timeout keeps decay and the
             * keepalives going and recovers a lost notification. */
            pthread_mutex_unlock(&hub.lock);
            bool notified;
            enum usersd_code rc = usersd_changes_wait(hub.core, POLL_MS, &notified, &err);
            can_wait = rc != USERSD_EINVAL;
            if (rc == USERSD_EDB) { /* the database is away: do not spin */
                struct timespec pause = {0, POLL_MS * 1000000L};
                nanosleep(&pause, NULL);
            }
            pthread_mutex_lock(&hub.lock);
            if (can_wait) goto work;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&hub.wake, &hub.lock, &ts);
    work:
        if (hub.stopping) break;
        pthread_mutex_unlock(&hub.lock);

        /* Under a stream of writes (a group commit every few hundred µs)
         * one read of the log per COALESCE_US serves them all: an event
         * waits at most that long, and the hub stops costing a wake-up and
         * a log query per batch (8 % of the core under set-online-status). */
        int64_t since_last = mono_us() - last_work, gap = coalesce_us();
        if (since_last >= 0 && since_last < gap) {
            struct timespec pause = {0, (long)(gap - since_last) * 1000L};
            nanosleep(&pause, NULL);
        }
        last_work = mono_us();

        server_log_flush();
        int64_t now = last_work, changed = 0;
        if (now >= next_decay) {
            /* Refreshes this process has answered are written first, so
             * decay never takes away a user whose refresh is on its way
             * (API.md §7); bounded, as the hub also feeds the streams. */
            writer_wait_refreshes(200000);
            if (usersd_decay(hub.core, &changed, &err) == USERSD_OK && changed)
                server_log("presence: decay changed %lld user(s)", (long long)changed);
            /* Ended status messages and do not disturb are cleared (and
             * their end sent) on the same beat: within a second of their end. */
            usersd_status_message_expire(hub.core, NULL, &err);
            usersd_dnd_expire(hub.core, NULL, &err);
            next_decay = now + DECAY_EVERY_US;
        }
        if (now >= next_sample) {
            usersd_history_sample(hub.core, &err);
            next_sample = now + SAMPLE_EVERY_US;
        }
        if (now >= next_expire) {
            int64_t n = 0;
            if (usersd_session_expire(hub.core, &n, &err) == USERSD_OK && n) {
                metrics_sessions_ended(0, n);
                server_log("sessions: %lld expired", (long long)n);
            }
            next_expire = now + expire_every_us();
        }
        if (now >= next_refresh) {
            refresh_streams();
            next_refresh = now + refresh_every_us();
        }
        hub_fetch();
        if (now >= next_prune) {
            usersd_changes_prune(hub.core, &err);
            if (usersd_history_prune(hub.core, &err) && !db_away())
                server_log("presence: cannot prune the history: %s", err.msg);
            next_prune = now + PRUNE_EVERY_US;
        }
        pthread_mutex_lock(&hub.lock);
        if (now >= next_keepalive) {
            resume_all(true, false, now);
            /* every second, or a quarter of a shorter test interval */
            next_keepalive = now + (keepalive_us < 4000000 ? keepalive_us / 4 : 1000000);
        }
    }
    /* Shutting down: wake every stream so it ends and MHD can stop. */
    resume_all(false, true, 0);
    pthread_mutex_unlock(&hub.lock);
    return NULL;
}

int sse_start(struct usersd_err *err)
{
    struct usersd_config c = server_core_config();
    keepalive_us = conn_test_seconds("USERSD_TEST_KEEPALIVE", 15) * 1000000LL;
    if (usersd_open(&hub.core, &c, err)) return -1;
    if (!(hub.subs = subs_new())) goto fail;
    if (usersd_changes_head(hub.core, &hub.head, err)) goto fail;
    hub.evicted = hub.head;
    hub.ring = calloc(RING_CAP, sizeof *hub.ring);
    if (!hub.ring) goto fail;
    if (pthread_create(&hub.thread, NULL, hub_main, NULL) != 0) goto fail;
    hub.running = true;
    return 0;
fail:
    if (!err->msg[0]) snprintf(err->msg, sizeof err->msg, "cannot start the presence thread");
    usersd_close(hub.core);
    hub.core = NULL;
    free(hub.ring);
    hub.ring = NULL;
    subs_free(hub.subs);
    hub.subs = NULL;
    return -1;
}

void sse_stop(void)
{
    if (!hub.running) return;
    pthread_mutex_lock(&hub.lock);
    hub.stopping = true;
    pthread_cond_signal(&hub.wake);
    pthread_mutex_unlock(&hub.lock);
    pthread_join(hub.thread, NULL);
    hub.running = false;
}

void sse_release(void)
{
    usersd_close(hub.core);
    hub.core = NULL;
    free(hub.ring);
    hub.ring = NULL;
    subs_free(hub.subs);
    hub.subs = NULL;
}

void sse_notify(void)
{
    pthread_cond_signal(&hub.wake);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The first ring position holding seq > cursor (hub lock held). */
static uint64_t ring_after(int64_t cursor)
{
    uint64_t lo = hub.first, hi = hub.next;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (hub.ring[mid % RING_CAP].seq <= cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t take(char *buf, size_t max, const char *src, size_t len, size_t *off)
{
    size_t n = len - *off < max ? len - *off : max;
    memcpy(buf, src + *off, n);
    *off += n;
    return n;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    size_t n = 0;
    pthread_mutex_lock(&hub.lock);
    if (hub.stopping || s->closing) { /* shutdown, or its session ended */
        pthread_mutex_unlock(&hub.lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (s->pending) {
        n += take(buf, max, s->pending, s->pending_len, &s->pending_off);
        if (s->pending_off == s->pending_len) {
            free(s->pending);
            s->pending = NULL;
        }
    }
    bool behind = s->ids ? s->overflow || (s->qlen && s->queue[s->qhead] < hub.first)
                         : s->cursor < hub.evicted && s->cursor < hub.head;
    if (!s->pending && behind) {
        /* Fell behind what the ring keeps: drop; Last-Event-ID recovers. */
        pthread_mutex_unlock(&hub.lock);
        return n ? (ssize_t)n : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    /* The firehose walks the ring from its cursor; a filtered stream takes
     * the positions routed to it. */
    uint64_t p = s->ids ? 0 : ring_after(s->cursor);
    while (!s->pending && n < max) {
        if (s->ids) {
            if (!s->qlen) break;
            p = s->queue[s->qhead];
            s->qhead = (s->qhead + 1) & (s->qcap - 1);
            s->qlen--;
            if (hub.ring[p % RING_CAP].seq <= s->cursor) continue; /* sent by the replay */
        } else if (p >= hub.next) {
            break;
        }
        const struct event *ev = &hub.ring[p++ % RING_CAP];
        size_t off = 0;
        n += take(buf + n, max - n, ev->text, ev->len, &off);
        s->cursor = ev->seq;
        if (off < ev->len) { /* the rest goes out on the next call */
            s->pending = malloc(ev->len - off);
            if (!s->pending) {
                pthread_mutex_unlock(&hub.lock);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            memcpy(s->pending, ev->text + off, ev->len - off);
            s->pending_len = ev->len - off;
            s->pending_off = 0;
        }
    }
    int64_t now = mono_us();
    if (n == 0 && now - s->last_write_us >= keepalive_us) {
        static const char ka[] = ": keepalive\n\n";
        size_t off = 0;
        n = take(buf, max, ka, sizeof ka - 1, &off);
    }
    if (n) {
        s->last_write_us = now;
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&hub.lock);
    return (ssize_t)n;
}

/* Puts s on the hub's lists (and under its users) and queues the ring's
 * events it has not had yet (hub lock held); false when out of memory. */
static bool attach(struct stream *s)
{
    for (size_t i = 0; i < s->nids; i++)
        if (!subs_add(hub.subs, s->ids[i], s)) {
            while (i--)
                subs_remove(hub.subs, s->ids[i], s);
            return false;
        }
    s->attached = true;
    s->next = hub.streams;
    if (hub.streams) hub.streams->prev = s;
    hub.streams = s;
    if (!s->ids) {
        s->fnext = hub.firehose;
        if (hub.firehose) hub.firehose->fprev = s;
        hub.firehose = s;
        return true;
    }
    /* Events the hub took in between the stream's start and now. */
    for (uint64_t p = ring_after(s->cursor); p < hub.next; p++)
        if (bsearch(&hub.ring[p % RING_CAP].user_id, s->ids, s->nids, sizeof *s->ids, cmp_id))
            enqueue(s, p);
    return true;
}

static void stream_done(struct stream *s)
{
    free(s->pending);
    free(s->ids);
    free(s->asked);
    free(s->queue);
    free(s);
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    if (!s->attached) {
        stream_done(s);
        return;
    }
    pthread_mutex_lock(&hub.lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        hub.streams = s->next;
    if (s->next) s->next->prev = s->prev;
    if (!s->ids) {
        if (s->fprev)
            s->fprev->fnext = s->fnext;
        else
            hub.firehose = s->fnext;
        if (s->fnext) s->fnext->fprev = s->fprev;
    }
    for (size_t i = 0; i < s->nids; i++)
        subs_remove(hub.subs, s->ids[i], s);
    pthread_mutex_unlock(&hub.lock);
    atomic_fetch_sub(&hub.nstreams, 1);
    stream_done(s);
}

/* Appends to a growing string; false when out of memory. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 4096;
        while (c < *len + n + 1)
            c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb) return false;
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return true;
}

/* The first event of a filtered stream: the current state of its users, in
 * the order asked (unknown ids left out, an id asked twice once), as
 * `event: snapshot` with {"statuses": [...]}. */
static bool snapshot(struct req *r, struct stream *s, size_t *len, size_t *cap)
{
    struct usersd_page all = {0};
    all.users = malloc((s->nasked ? s->nasked : 1) * sizeof *all.users);
    if (!all.users) return false;
    struct usersd_err err = {0};
    for (size_t off = 0; off < s->nasked; off += USERSD_PER_PAGE_MAX) {
        size_t k = s->nasked - off < USERSD_PER_PAGE_MAX ? s->nasked - off : USERSD_PER_PAGE_MAX;
        struct usersd_page p;
        if (usersd_users_by_ids(r->core, s->asked + off, k, &p, &err)) {
            usersd_page_free(&all);
            return false;
        }
        for (size_t i = 0; i < p.count; i++) {
            size_t j = 0;
            while (j < all.count && all.users[j].id != p.users[i].id)
                j++;
            if (j == all.count) all.users[all.count++] = p.users[i];
        }
        usersd_page_free(&p);
    }
    size_t n = 0;
    char *data = render_statuses_text(&all, &n);
    usersd_page_free(&all);
    static const char head[] = "event: snapshot\ndata: ";
    bool ok = data && append(&s->pending, len, cap, head, sizeof head - 1) &&
              append(&s->pending, len, cap, data, n) && append(&s->pending, len, cap, "\n\n", 2);
    free(data);
    return ok;
}

/* What a reconnecting client missed, read from the log: the replayed
 * events, or a resync notice when the gap is past retention (and, for a
 * filtered stream, a snapshot after it, as its client reloads nothing). */
static bool replay(struct req *r, int64_t since, struct stream *s, size_t *len, size_t *cap)
{
    struct event ev;
    bool gone = false;
    for (int total = 0; total < REPLAY_MAX;) {
        struct usersd_changes c;
        struct usersd_err err = {0};
        enum usersd_code rc =
            usersd_events_since(r->core, s->cursor, USERSD_CHANGES_LIMIT_MAX, &c, &err);
        if (rc) {
            if (rc != USERSD_EGONE) return false;
            gone = true;
            break;
        }
        for (size_t i = 0; i < c.count; i++) {
            if (s->ids && !bsearch(&c.items[i].user_id, s->ids, s->nids, sizeof *s->ids, cmp_id))
                continue; /* filtered the same way as live events */
            if (render_event(&c.items[i], &ev) && !append(&s->pending, len, cap, ev.text, ev.len)) {
                usersd_changes_free(&c);
                return false;
            }
        }
        if (c.count) s->cursor = c.items[c.count - 1].seq;
        total += (int)c.count;
        size_t n = c.count;
        usersd_changes_free(&c);
        if (n < USERSD_CHANGES_LIMIT_MAX) return true;
    }
    /* Too far behind: tell the client to reload the state, go on live.
     * Two causes, said as they are: the log no longer holds the changes
     * (retention), or it does but more than a stream replays, which the
     * polling endpoint can still page through. */
    char msg[400];
    int64_t head = 0;
    usersd_changes_head(r->core, &head, NULL);
    int n = gone ? snprintf(msg, sizeof msg,
                            "event: resync\ndata: {\"reason\":\"changes after %lld are no "
                            "longer available; reload the current state\",\"next_since\":%lld}"
                            "\n\n",
                            (long long)since, (long long)head)
                 : snprintf(msg, sizeof msg,
                            "event: resync\ndata: {\"reason\":\"too far behind: more than %d "
                            "changes after %lld, more than a stream replays; reload the current "
                            "state (GET /api/users/presence/changes/?since=%lld pages through "
                            "them)\",\"next_since\":%lld}\n\n",
                            REPLAY_MAX, (long long)since, (long long)since, (long long)head);
    s->cursor = head;
    return append(&s->pending, len, cap, msg, (size_t)n) && (!s->ids || snapshot(r, s, len, cap));
}

void h_stream(struct req *r)
{
    /* The header echoes an id this server sent (any seq); the query value
     * is the same position (API.md §6: event positions go to 2^63-1). */
    const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!last) last = query_str(r, "last_event_id");
    int64_t since = -1;
    if (last && !parse_uint(last, strlen(last), PARSE_EVENT_POS_MAX, &since)) {
        reply_fail(r, 400, "Last-Event-ID", "Last-Event-ID must be an event id from this stream");
        return;
    }
    struct stream *s = calloc(1, sizeof *s);
    if (!s) {
        reply_fail(r, 500, NULL, "the server ran out of memory");
        return;
    }
    /* ?ids=: only these users. Present but empty is 400 here (an exception
     * to §6's empty-value rule): an empty contact list never means all. */
    const char *ids = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "ids");
    if (ids) {
        size_t n = 0;
        s->asked = malloc(PARSE_IDS_STREAM_MAX * sizeof *s->asked);
        enum parse_ids_rc rc = s->asked
                                   ? parse_ids(ids, strlen(ids), s->asked, PARSE_IDS_STREAM_MAX, &n)
                                   : PARSE_IDS_MALFORMED;
        if (rc != PARSE_IDS_OK) {
            stream_done(s);
            reply_fail(r, 400, "ids",
                       rc == PARSE_IDS_TOO_MANY ? "at most 1000 ids may be followed at once"
                                                : "ids must be 1 to 1000 comma-separated user ids");
            return;
        }
        s->nasked = n;
        s->ids = malloc(n * sizeof *s->ids);
        if (!s->ids) {
            stream_done(s);
            reply_fail(r, 500, NULL, "the server ran out of memory");
            return;
        }
        memcpy(s->ids, s->asked, n * sizeof *s->ids);
        qsort(s->ids, n, sizeof *s->ids, cmp_id);
        for (size_t i = 0; i < n; i++) /* once each */
            if (!s->nids || s->ids[s->nids - 1] != s->ids[i]) s->ids[s->nids++] = s->ids[i];
    }
    s->conn = r->conn;
    s->user_id = r->caller.id;
    s->session_id = r->session.id;
    s->fd = -1;
    s->last_write_us = mono_us();
    /* Bound what the kernel buffers for a slow reader, too (it would grow
     * to megabytes per socket on its own). */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        int sndbuf = 64 * 1024;
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        s->fd = ci->connect_fd;
    }
    size_t len = 0, cap = 0;
    static const char hello[] = "retry: 2000\n: connected\n\n";
    bool ok = append(&s->pending, &len, &cap, hello, sizeof hello - 1);
    if (since >= 0) {
        /* A filtered stream starts with its snapshot even when it resumes
         * (API.md §7): users whose last change is older than the replay
         * are known from it alone. The replay after it ends at the log's
         * head or later, so applying both in order leaves the current state. */
        ok = ok && (!s->ids || snapshot(r, s, &len, &cap));
        s->cursor = since;
        ok = ok && replay(r, since, s, &len, &cap);
    } else {
        pthread_mutex_lock(&hub.lock);
        s->cursor = hub.head;
        pthread_mutex_unlock(&hub.lock);
        /* A snapshot is exact: the log's head and the users' state are read
         * in one read snapshot (SQLite; on PostgreSQL the head first, so a
         * change in between is sent after the snapshot as well, never
         * lost). */
        if (s->ids)
            ok = ok && usersd_changes_head(r->core, &s->cursor, NULL) == USERSD_OK &&
                 snapshot(r, s, &len, &cap);
    }
    free(s->asked); /* the snapshot's order is all it was kept for */
    s->asked = NULL;
    s->pending_len = len;
    struct MHD_Response *resp =
        ok ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, s,
                                               stream_free)
           : NULL;
    if (!resp) {
        stream_done(s);
        reply_fail(r, 500, NULL, "the server ran out of memory");
        return;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: do not buffer */
    pthread_mutex_lock(&hub.lock);
    ok = attach(s);
    pthread_mutex_unlock(&hub.lock);
    if (!ok) {
        MHD_destroy_response(resp); /* frees s: stream_free sees it was never attached */
        reply_fail(r, 500, NULL, "the server ran out of memory");
        return;
    }
    atomic_fetch_add(&hub.nstreams, 1);
    if (MHD_queue_response(r->conn, 200, resp) == MHD_YES) {
        r->answered = true;
        r->status = 200;
    }
    MHD_destroy_response(resp); /* stream_free runs when MHD is done with it */
}

void h_changes(struct req *r)
{
    int64_t since = -1;
    int limit = USERSD_CHANGES_LIMIT_DEFAULT;
    const char *v = query_str(r, "since");
    if (v && !parse_uint(v, strlen(v), PARSE_EVENT_POS_MAX, &since)) {
        reply_fail(r, 400, "since",
                   "since must be a whole number from 0 to 9223372036854775807 (a seq from this "
                   "log)");
        return;
    }
    if (!query_int(r, "limit", &limit)) return;
    if (limit < 1) {
        reply_fail(r, 400, "limit", "limit must be 1 or more");
        return;
    }
    struct usersd_err err = {0};
    struct usersd_changes c;
    if (since < 0) { /* no cursor yet: start from now */
        if (usersd_changes_head(r->core, &since, &err)) {
            reply_err(r, &err);
            return;
        }
    }
    if (usersd_changes_since(r->core, since, limit, &c, &err)) {
        reply_err(r, &err);
        return;
    }
    size_t len = 0;
    char *text = render_changes_text(&c, &len);
    reply_text(r, 200, JSON_TYPE, text, len);
    usersd_changes_free(&c);
}
