/* stream_bench.c — N presence-stream subscribers against a running usersd,
 * while changes are made at a fixed rate; reports delivery latency (from
 * the change's last_seen, stamped by the server, to its arrival at each
 * subscriber) and what was delivered or dropped.
 *
 *   stream_bench HOST PORT TOKEN SUBSCRIBERS CHANGES_PER_SEC SECONDS USERS
 *
 * Loopback only; every loop is bounded by the run's duration. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <usersd.h>

#define NBUCKET 100000 /* latency histogram: 100 µs buckets up to 10 s */

static const char *g_host, *g_token;
static int g_port;
static atomic_llong g_hist[NBUCKET + 1];
static atomic_llong g_events, g_changes, g_change_errors;

static int num(const char *s)
{
    return (int)strtol(s, NULL, 10);
}

static int64_t now_us(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, g_host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct sub {
    int fd;
    char buf[8192]; /* de-chunked event text */
    size_t len;
    bool open, headers_done;
    char line[32]; /* a chunk-size line being read */
    size_t line_len;
    size_t remaining; /* bytes of the current chunk still to come */
    int crlf;         /* CR/LF bytes after a chunk still to skip */
};

/* Scans buffered bytes for complete events; records each one's latency. */
static void scan(struct sub *s)
{
    static const char key[] = "\"last_seen\":\"";
    char *p = s->buf, *end = s->buf + s->len;
    for (;;) {
        char *e = memmem(p, (size_t)(end - p), "\n\n", 2);
        if (!e) break;
        char *k = memmem(p, (size_t)(e - p), key, sizeof key - 1);
        if (memmem(p, (size_t)(e - p), "event: presence", 15)) {
            atomic_fetch_add(&g_events, 1);
            /* only "online" moves last_seen to the moment of the change */
            char t[USERSD_TIME_LEN + 1];
            int64_t ts;
            if (k && memmem(p, (size_t)(e - p), "\"online_status\":\"online\"", 24) &&
                k + sizeof key - 1 + USERSD_TIME_LEN <= e) {
                memcpy(t, k + sizeof key - 1, USERSD_TIME_LEN);
                t[USERSD_TIME_LEN] = 0;
                if (usersd_time_parse(t, &ts)) {
                    int64_t lat = now_us(CLOCK_REALTIME) - ts;
                    int64_t b = lat < 0 ? 0 : lat / 100;
                    atomic_fetch_add(&g_hist[b > NBUCKET ? NBUCKET : b], 1);
                }
            }
        }
        p = e + 2;
    }
    s->len = (size_t)(end - p);
    memmove(s->buf, p, s->len);
}

/* Undoes HTTP chunked framing (and skips the response headers), so an
 * event split across chunks is seen whole. */
static void feed(struct sub *s, const char *p, size_t n)
{
    size_t i = 0;
    if (!s->headers_done) {
        /* the headers end at the first blank line */
        for (; i < n && !s->headers_done; i++) {
            s->line[s->line_len % sizeof s->line] = p[i];
            s->line_len++;
            if (s->line_len >= 4 && p[i] == '\n' && s->line[(s->line_len - 2) % sizeof s->line] == '\r' &&
                s->line[(s->line_len - 3) % sizeof s->line] == '\n')
                s->headers_done = true;
        }
        s->line_len = 0;
    }
    while (i < n) {
        if (s->crlf) {
            i++;
            s->crlf--;
        } else if (s->remaining) {
            size_t k = n - i < s->remaining ? n - i : s->remaining;
            if (k > sizeof s->buf - s->len) k = sizeof s->buf - s->len;
            memcpy(s->buf + s->len, p + i, k);
            s->len += k;
            s->remaining -= k;
            i += k;
            if (!s->remaining) s->crlf = 2;
            scan(s);
            if (s->len == sizeof s->buf) s->len = 0; /* an event larger than the buffer */
        } else if (p[i] == '\n') {
            s->line[s->line_len < sizeof s->line ? s->line_len : sizeof s->line - 1] = 0;
            s->remaining = (size_t)strtoul(s->line, NULL, 16);
            s->line_len = 0;
            i++;
        } else {
            if (p[i] != '\r' && s->line_len < sizeof s->line - 1) s->line[s->line_len++] = p[i];
            i++;
        }
    }
}

/* Sends changes at the given rate over a few keep-alive connections. */
struct writer_arg {
    int rate, seconds, users, id, nwriters;
};

static void *writer(void *argp)
{
    struct writer_arg *a = argp;
    int fd = connect_to();
    if (fd < 0) return NULL;
    int64_t start = now_us(CLOCK_MONOTONIC), end = start + (int64_t)a->seconds * 1000000;
    double per = 1e6 / ((double)a->rate / a->nwriters);
    char req[512], resp[4096];
    for (long i = 0;; i++) {
        int64_t due = start + (int64_t)(i * per);
        if (due >= end) break;
        int64_t now = now_us(CLOCK_MONOTONIC);
        if (due > now) usleep((useconds_t)(due - now));
        /* each user's visits alternate online, away, online...: every visit
         * after a user's first is a change (the first may find the status
         * already set); online carries a fresh last_seen */
        long k = i * a->nwriters + a->id;
        long user = 2 + k % (a->users - 1);
        const char *st = (k / (a->users - 1)) % 2 ? "away" : "online";
        char body[64];
        int bl = snprintf(body, sizeof body, "{\"status\":\"%s\"}", st);
        int n = snprintf(req, sizeof req,
                         "POST /api/users/admin/users/%ld/set-online-status/ HTTP/1.1\r\n"
                         "Host: %s\r\nAuthorization: Token %s\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                         user, g_host, g_token, bl, body);
        if (write(fd, req, (size_t)n) != n) break;
        ssize_t r = read(fd, resp, sizeof resp - 1);
        if (r <= 0) break;
        resp[r] = 0;
        if (strncmp(resp, "HTTP/1.1 200", 12) == 0)
            atomic_fetch_add(&g_changes, 1);
        else
            atomic_fetch_add(&g_change_errors, 1);
    }
    close(fd);
    return NULL;
}

static int64_t percentile(double q)
{
    long long total = 0, seen = 0;
    for (int i = 0; i <= NBUCKET; i++) total += g_hist[i];
    for (int i = 0; i <= NBUCKET; i++) {
        seen += g_hist[i];
        if (total && seen >= (long long)(q * (double)total)) return (int64_t)i * 100 + 50;
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: stream_bench HOST PORT TOKEN SUBSCRIBERS RATE SECONDS USERS\n");
        return 2;
    }
    g_host = argv[1];
    g_port = num(argv[2]);
    g_token = argv[3];
    int nsub = num(argv[4]), rate = num(argv[5]), seconds = num(argv[6]), users = num(argv[7]);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    struct sub *subs = calloc((size_t)nsub, sizeof *subs);
    int ep = epoll_create1(0);
    int opened = 0;
    for (int i = 0; i < nsub; i++) {
        int fd = connect_to();
        if (fd < 0) break;
        char req[256];
        int n = snprintf(req, sizeof req,
                         "GET /api/users/presence/stream/ HTTP/1.1\r\nHost: %s\r\n"
                         "Authorization: Token %s\r\n\r\n",
                         g_host, g_token);
        if (write(fd, req, (size_t)n) != n) {
            close(fd);
            break;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        subs[i].fd = fd;
        subs[i].open = true;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &subs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        opened++;
    }
    usleep(500000); /* let every stream settle before the changes start */

    enum { NW = 8 };
    pthread_t th[NW];
    struct writer_arg wa[NW];
    for (int i = 0; i < NW; i++) {
        wa[i] = (struct writer_arg){rate, seconds, users, i, NW};
        pthread_create(&th[i], NULL, writer, &wa[i]);
    }
    int64_t end = now_us(CLOCK_MONOTONIC) + (int64_t)(seconds + 3) * 1000000;
    struct epoll_event evs[512];
    int closed = 0;
    while (now_us(CLOCK_MONOTONIC) < end) {
        int n = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < n; i++) {
            struct sub *s = evs[i].data.ptr;
            for (;;) {
                char raw[16384];
                ssize_t r = read(s->fd, raw, sizeof raw);
                if (r > 0) {
                    feed(s, raw, (size_t)r);
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                    close(s->fd);
                    s->open = false;
                    closed++;
                }
                break;
            }
        }
    }
    for (int i = 0; i < NW; i++) pthread_join(th[i], NULL);
    long long changes = g_changes, events = g_events;
    printf("{\"subscribers\": %d, \"opened\": %d, \"rate\": %d, \"seconds\": %d, "
           "\"changes\": %lld, \"change_errors\": %lld, \"events\": %lld, "
           "\"expected_events\": %lld, \"dropped_streams\": %d, \"p50_us\": %lld, "
           "\"p99_us\": %lld}\n",
           nsub, opened, rate, seconds, changes, (long long)g_change_errors, events,
           changes * opened, closed, (long long)percentile(0.5), (long long)percentile(0.99));
    for (int i = 0; i < nsub; i++)
        if (subs[i].open) close(subs[i].fd);
    free(subs);
    close(ep);
    return 0;
}
