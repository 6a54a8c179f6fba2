/* conn.c — connections before they are HTTP (API.md §11): one thread
 * accepts them and hands them to libmicrohttpd (MHD_add_connection), so
 * that usersd, not the library, decides who gets in:
 *
 * - at most --max-connections open and --max-connections-per-ip from one
 *   address (trusted proxies excepted); a connection over either is closed
 *   at once (refused), while those already open are served;
 * - when file descriptors run out, the connections waiting in the backlog
 *   are refused one by one (a spare descriptor is given up to accept and
 *   close each), with one log line, instead of the busy loop and the line
 *   per attempt the library would give;
 * - a request's headers must be in within 30 s of its first byte: a
 *   client trickling one byte at a time resets the library's idle timer at
 *   each byte, so the same thread looks at every connection that is
 *   waiting for headers once a quarter of a second or so and shuts down
 *   those past the deadline.
 *
 * The first byte of a request on a kept-alive connection is not visible to
 * an application of libmicrohttpd; the kernel's TCP_INFO tells when data
 * last arrived, which is after the previous request ended exactly when a
 * new request has begun. The deadline then runs from the first look that
 * saw it (never early; late by at most one look). */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "server.h"

struct conn_rec {
    struct conn_rec *prev, *next; /* on g.head, under g.lock */
    int fd;
    _Atomic uint32_t gen;    /* even: waiting for a request's headers; odd: in a request */
    _Atomic int64_t mark_us; /* when gen last became even */
    struct req *cur;         /* the request in progress (its worker thread only) */
    uint32_t seen_gen;       /* the acceptor's own */
    int64_t first_seen_us;   /* when the acceptor first saw bytes of the next request */
    /* The client's address as counted (under g.lock): family 0 when not
     * counted per address; uncounted once reclaim() took it off the counts. */
    int family;
    unsigned char a[16];
    bool uncounted;
};

/* Open connections per client address: a chained table, keyed by a
 * SipHash with a random key so no one can choose addresses that collide. */
#define IP_BUCKETS 4096
struct ip_count {
    struct ip_count *next;
    int family;
    unsigned char a[16];
    long n;
};

/* A message a client can make the server repeat: once a minute at most. */
struct note {
    int64_t last_us;
    unsigned held;
};

static struct {
    pthread_mutex_t lock; /* head, open, ip */
    struct conn_rec *head;
    long open; /* admitted, not yet closed */
    struct ip_count *ip[IP_BUCKETS];
    unsigned char ip_key[crypto_shorthash_KEYBYTES];
    long max, max_ip;
    atomic_long unstarted; /* handed to the library, not yet started */
    int listen_fd, wake_fd, spare_fd;
    struct MHD_Daemon *d;
    pthread_t thread;
    bool running;
    atomic_bool stopping;
    int64_t header_us, look_us;
    unsigned idle_s;
    /* the acceptor thread's own */
    bool exhausted;
    struct note fds, limit, per_ip, slow, other;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1, .wake_fd = -1, .spare_fd = -1};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool note_due(struct note *n, unsigned *held)
{
    int64_t now = now_us();
    if (n->last_us && now - n->last_us < 60 * 1000000LL) {
        n->held++;
        return false;
    }
    *held = n->held;
    n->held = 0;
    n->last_us = now;
    return true;
}

/* ---- admission ----------------------------------------------------------- */

static bool ip_key(const struct sockaddr *sa, int *family, unsigned char a[16])
{
    memset(a, 0, 16);
    *family = sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    else
        return false;
    return true;
}

static struct ip_count **ip_find(int family, const unsigned char a[16])
{
    unsigned char in[17], h[crypto_shorthash_BYTES];
    in[0] = (unsigned char)family;
    memcpy(in + 1, a, 16);
    crypto_shorthash(h, in, sizeof in, g.ip_key);
    struct ip_count **p = &g.ip[(h[0] | (unsigned)h[1] << 8) % IP_BUCKETS];
    while (*p && ((*p)->family != family || memcmp((*p)->a, a, 16) != 0))
        p = &(*p)->next;
    return p;
}

/* True when the client has closed its end: the connection is only
 * waiting for the library to notice (a burst of short connections leaves
 * many such; TCP_INFO reads the kernel's state without touching the data). */
static bool peer_closed(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return false;
    return ti.tcpi_state == TCP_CLOSE_WAIT || ti.tcpi_state == TCP_LAST_ACK ||
           ti.tcpi_state == TCP_CLOSE;
}

/* At a limit: takes the connections whose clients have closed them off the
 * counts (of one address when a is given), so that a burst of short
 * connections below the limit is never refused because the library has
 * not yet cleaned up the ones before. They are still served to their end.
 * Returns how many were taken off. g.lock held. */
static long reclaim(int family, const unsigned char *a)
{
    long n = 0;
    for (struct conn_rec *rec = g.head; rec; rec = rec->next) {
        if (rec->uncounted || (a && (rec->family != family || memcmp(rec->a, a, 16) != 0)))
            continue;
        if (!peer_closed(rec->fd)) continue;
        rec->uncounted = true;
        g.open--;
        if (rec->family) {
            struct ip_count *e = *ip_find(rec->family, rec->a);
            if (e) e->n--; /* the entry stays: freed when its last close comes */
        }
        n++;
    }
    return n;
}

/* Counts a new connection from sa in; false (counted nowhere) when it
 * must be refused. */
static bool admit(const struct sockaddr *sa, int *why)
{
    int family;
    unsigned char a[16];
    bool per_ip = ip_key(sa, &family, a) && !client_addr_trusted(sa);
    pthread_mutex_lock(&g.lock);
    if (g.open >= g.max) reclaim(0, NULL);
    if (g.open >= g.max) {
        pthread_mutex_unlock(&g.lock);
        *why = 1;
        return false;
    }
    if (per_ip) {
        struct ip_count **p = ip_find(family, a);
        if (!*p) {
            *p = calloc(1, sizeof **p);
            if (!*p) {
                pthread_mutex_unlock(&g.lock);
                *why = 3;
                return false;
            }
            (*p)->family = family;
            memcpy((*p)->a, a, 16);
        }
        if ((*p)->n >= g.max_ip) reclaim(family, a);
        if ((*p)->n >= g.max_ip) {
            pthread_mutex_unlock(&g.lock);
            *why = 2;
            return false;
        }
        (*p)->n++;
    }
    g.open++;
    pthread_mutex_unlock(&g.lock);
    return true;
}

/* Takes a closed connection off the counts: by its record when it has
 * one (rec, g.lock held by the caller), else by its address. */
static void release_locked(bool counted, bool per_ip, int family, const unsigned char a[16])
{
    if (counted) g.open--;
    if (per_ip) {
        struct ip_count **p = ip_find(family, a), *e = *p;
        if (e && counted) e->n--;
        if (e && e->n <= 0) {
            *p = e->next;
            free(e);
        }
    }
}

static void release(const struct sockaddr *sa)
{
    int family;
    unsigned char a[16];
    bool per_ip = sa && ip_key(sa, &family, a) && !client_addr_trusted(sa);
    pthread_mutex_lock(&g.lock);
    release_locked(true, per_ip, family, a);
    pthread_mutex_unlock(&g.lock);
}

/* ---- libmicrohttpd's view ------------------------------------------------ */

static struct conn_rec *rec_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return ci ? ci->socket_context : NULL;
}

void conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_sub(&g.unstarted, 1);
        struct conn_rec *rec = calloc(1, sizeof *rec);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci) mhd_errors_line_expect(ci->connect_fd);
        if (rec && ci) { /* without one, the connection only lacks the header deadline */
            rec->fd = ci->connect_fd;
            const struct sockaddr *sa = ai ? ai->client_addr : NULL;
            if (!sa || !ip_key(sa, &rec->family, rec->a) || client_addr_trusted(sa))
                rec->family = 0;
            atomic_store_explicit(&rec->mark_us, now_us(), memory_order_relaxed);
            pthread_mutex_lock(&g.lock);
            rec->next = g.head;
            if (g.head) g.head->prev = rec;
            g.head = rec;
            pthread_mutex_unlock(&g.lock);
        } else {
            free(rec);
            rec = NULL;
        }
        *socket_context = rec;
        return;
    }
    struct conn_rec *rec = *socket_context;
    if (!rec) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        release(ci ? ci->client_addr : NULL);
        return;
    }
    /* unlinked before libmicrohttpd closes the descriptor */
    pthread_mutex_lock(&g.lock);
    if (rec->prev)
        rec->prev->next = rec->next;
    else
        g.head = rec->next;
    if (rec->next) rec->next->prev = rec->prev;
    release_locked(!rec->uncounted, rec->family != 0, rec->family, rec->a);
    pthread_mutex_unlock(&g.lock);
    free(rec);
    *socket_context = NULL;
}

void conn_request_begin(struct req *r)
{
    struct conn_rec *rec = rec_of(r->conn);
    if (!rec) return;
    rec->cur = r;
    mhd_errors_line_seen(rec->fd);
    atomic_fetch_add_explicit(&rec->gen, 1, memory_order_release);
}

void conn_request_end(struct req *r)
{
    struct conn_rec *rec = rec_of(r->conn);
    if (!rec || rec->cur != r) return;
    rec->cur = NULL;
    mhd_errors_line_expect(rec->fd);
    atomic_store_explicit(&rec->mark_us, now_us(), memory_order_relaxed);
    atomic_fetch_add_explicit(&rec->gen, 1, memory_order_release);
}

struct req *conn_request(struct MHD_Connection *c)
{
    struct conn_rec *rec = rec_of(c);
    return rec ? rec->cur : NULL;
}

unsigned conn_idle_timeout(void)
{
    return g.idle_s;
}

/* ---- the header deadline ------------------------------------------------- */

static void look(int64_t now)
{
    unsigned closed = 0;
    pthread_mutex_lock(&g.lock);
    for (struct conn_rec *rec = g.head; rec; rec = rec->next) {
        uint32_t gen = atomic_load_explicit(&rec->gen, memory_order_acquire);
        if (gen & 1) continue; /* headers are in: not this rule's business */
        if (gen != rec->seen_gen) {
            rec->seen_gen = gen;
            rec->first_seen_us = 0;
        }
        if (!rec->first_seen_us) {
            struct tcp_info ti;
            socklen_t len = sizeof ti;
            if (getsockopt(rec->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) continue;
            int64_t data_at = now - (int64_t)ti.tcpi_last_data_recv * 1000;
            if (data_at > atomic_load_explicit(&rec->mark_us, memory_order_relaxed))
                rec->first_seen_us = now;
        } else if (now - rec->first_seen_us >= g.header_us) {
            /* libmicrohttpd sees the end of the stream and closes it itself;
             * the record (and so the descriptor) stays until it has. */
            shutdown(rec->fd, SHUT_RDWR);
            rec->first_seen_us = INT64_MAX / 2;
            closed++;
        }
    }
    pthread_mutex_unlock(&g.lock);
    unsigned held;
    if (closed && note_due(&g.slow, &held))
        server_log("closed %u connection(s) whose request headers took longer than %lld s "
                   "(%u more in the last minute not shown)",
                   closed, (long long)(g.header_us / 1000000), held);
}

/* ---- accepting ------------------------------------------------------------ */

/* Out of descriptors: give up the spare one to accept and close the
 * connection waiting first (refused rather than left hanging). False when
 * nothing could be done: then accepting pauses a moment. */
static bool out_of_fds(int e)
{
    unsigned held;
    if (!g.exhausted) {
        g.exhausted = true;
        pthread_mutex_lock(&g.lock);
        long open = g.open;
        pthread_mutex_unlock(&g.lock);
        if (note_due(&g.fds, &held))
            server_log("out of file descriptors (%s) with %ld connections open: new "
                       "connections are refused until some close (raise the open-file limit, "
                       "or lower --max-connections)",
                       strerror(e), open);
    }
    if (g.spare_fd < 0) {
        g.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return false;
    }
    close(g.spare_fd);
    g.spare_fd = -1;
    int fd = accept4(g.listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    g.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
}

/* Accepts what is waiting (a bounded burst); *pause_us set when accepting
 * must rest a moment. True when the backlog was found empty. */
static bool accept_some(int64_t *pause_us)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(g.listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            unsigned held;
            if (e == EAGAIN || e == EWOULDBLOCK) return true;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM) continue;
            if (e == EMFILE || e == ENFILE) {
                if (out_of_fds(e)) continue;
            } else if (note_due(&g.other, &held)) {
                server_log("cannot accept connections: %s", strerror(e));
            }
            *pause_us = 100000;
            return false;
        }
        g.exhausted = false;
        int why = 0;
        if (!admit((struct sockaddr *)&ss, &why)) {
            close(fd);
            unsigned held;
            if (why == 1 && note_due(&g.limit, &held))
                server_log("%ld connections open (--max-connections): refusing new ones (%u more "
                           "refused in the last minute not shown)",
                           g.max, held);
            else if (why == 2 && note_due(&g.per_ip, &held))
                server_log("a client address holds %ld connections (--max-connections-per-ip): "
                           "refusing its new ones (%u more refused in the last minute not shown)",
                           g.max_ip, held);
            continue;
        }
        /* libmicrohttpd closes the socket itself when it fails. */
        atomic_fetch_add(&g.unstarted, 1);
        if (MHD_add_connection(g.d, fd, (struct sockaddr *)&ss, len) != MHD_YES) {
            atomic_fetch_sub(&g.unstarted, 1);
            release((struct sockaddr *)&ss);
        }
    }
    return false;
}

static void *acceptor_main(void *arg)
{
    (void)arg;
    int64_t next_look = now_us() + g.look_us, resume_at = 0;
    while (!atomic_load(&g.stopping)) {
        int64_t now = now_us();
        bool paused = resume_at > now;
        int64_t until = next_look;
        if (paused && resume_at < until) until = resume_at;
        int timeout = until > now ? (int)((until - now + 999) / 1000) : 0;
        struct pollfd p[2] = {{g.wake_fd, POLLIN, 0}, {paused ? -1 : g.listen_fd, POLLIN, 0}};
        int n = poll(p, 2, timeout);
        if (atomic_load(&g.stopping)) break;
        if (n > 0 && (p[0].revents & POLLIN)) {
            uint64_t v;
            if (read(g.wake_fd, &v, sizeof v) < 0) { /* nothing to drain */
            }
        }
        if (n > 0 && (p[1].revents & (POLLIN | POLLERR))) {
            int64_t pause_us = 0;
            accept_some(&pause_us);
            if (pause_us) resume_at = now_us() + pause_us;
        }
        now = now_us();
        if (now >= next_look) {
            look(now);
            next_look = now + g.look_us;
        }
    }
    /* Clients that connected before the stop get their requests answered:
     * take in what waits in the backlog (closing the socket would reset
     * them). */
    int64_t pause_us = 0;
    for (int i = 0; i < 64 && !accept_some(&pause_us) && !pause_us; i++) {
    }
    return NULL;
}

long conn_arriving(void)
{
    long n = atomic_load(&g.unstarted);
    pthread_mutex_lock(&g.lock);
    for (struct conn_rec *rec = g.head; rec; rec = rec->next) {
        if (atomic_load_explicit(&rec->gen, memory_order_acquire) & 1) continue;
        int unread = 0; /* bytes the library has not read yet */
        if (ioctl(rec->fd, FIONREAD, &unread) == 0 && unread > 0) n++;
    }
    pthread_mutex_unlock(&g.lock);
    return n;
}

/* ---- set-up --------------------------------------------------------------- */

long conn_test_seconds(const char *name, long def)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 1 || n > 3600 ? def : n;
}

int conn_listen(const struct sockaddr *sa, socklen_t len, unsigned *port, char *msg, size_t size)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, sa, len) != 0 || listen(fd, 1024) != 0) goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) goto fail;
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    g.listen_fd = fd;
    return 0;
fail:
    snprintf(msg, size, "%s", strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

void conn_configure(long max_connections, long max_per_ip)
{
    g.max = max_connections;
    g.max_ip = max_per_ip;
    /* Tests shorten the 30 s of API.md §11 so they run in seconds. */
    long t = conn_test_seconds("USERSD_TEST_CONN_TIMEOUT", 30);
    g.idle_s = (unsigned)t;
    g.header_us = t * 1000000LL;
    g.look_us = g.header_us / 8;
    if (g.look_us > 1000000) g.look_us = 1000000;
    if (g.look_us < 50000) g.look_us = 50000;
    if (sodium_init() < 0) abort(); /* idempotent; usersd_open did it already */
    randombytes_buf(g.ip_key, sizeof g.ip_key);
}

int conn_start(struct MHD_Daemon *d, char *msg, size_t size)
{
    g.d = d;
    g.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (g.wake_fd < 0 || pthread_create(&g.thread, NULL, acceptor_main, NULL) != 0) {
        snprintf(msg, size, "cannot start the connection thread: %s", strerror(errno));
        return -1;
    }
    g.running = true;
    return 0;
}

void conn_stop(void)
{
    if (g.running) {
        atomic_store(&g.stopping, true);
        uint64_t one = 1;
        if (write(g.wake_fd, &one, sizeof one) < 0) { /* the poll times out anyway */
        }
        pthread_join(g.thread, NULL);
        g.running = false;
    }
    if (g.listen_fd >= 0) close(g.listen_fd);
    g.listen_fd = -1;
}

void conn_free(void)
{
    conn_stop();
    if (g.wake_fd >= 0) close(g.wake_fd);
    if (g.spare_fd >= 0) close(g.spare_fd);
    g.wake_fd = g.spare_fd = -1;
    for (int i = 0; i < IP_BUCKETS; i++)
        while (g.ip[i]) {
            struct ip_count *e = g.ip[i];
            g.ip[i] = e->next;
            free(e);
        }
}
