/* stream_bench.c — presence-stream subscribers against a running usersd,
 * with per-subscriber accounting, while this program makes changes at a
 * fixed rate (or, with --rate 0, while someone else does).
 *
 *   stream_bench --port P --token T --subscribers N --rate R --seconds S
 *                --users U [--follow K] [--pid PID] [--host H]
 *
 * Changes: every user of the pool (ids 1..U) is first set offline (before
 * any stream opens); then 8 keep-alive writers visit the users in turn at R
 * changes a second, each visit setting the status the user does not have
 * (online, away, online...), so every 200 is one change and one event.
 * Subscribers: N streams (GET /api/users/presence/stream/), each following
 * every user or (--follow K) K random users of the pool through ?ids=
 * (API.md §7: one `snapshot` event first, then only those users' events).
 * A stream the server closes reconnects with Last-Event-ID, as EventSource
 * does (at most 20 times), so a drop costs latency, not events.
 *
 * Accounting: each subscriber counts the presence events it receives, that
 * their ids increase, the ids skipped between two of them (full streams,
 * where the ids of the bench's changes are consecutive), events of users it
 * does not follow, and `resync` events. After the run the driver compares
 * what each got with the changes it made to the users that subscriber
 * follows: missing = expected - received. Latency: from an `online`
 * event's last_seen (the server's clock at the change; same machine) to
 * its arrival. RSS per stream: usersd's VmRSS after the streams opened,
 * less before, divided by the streams.
 *
 * With --rate 0 nothing is written and nobody's changes are known: the
 * subscribers listen for --seconds (or until SIGTERM), and each is compared
 * with the union of what all of them received.
 *
 * Prints one JSON line. Loopback only; every loop is bounded in time. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <usersd.h>

#define NBUCKET 100000    /* latency histogram: 100 µs buckets up to 10 s */
#define NWRITERS 8        /* keep-alive writer connections */
#define RECONNECTS 20     /* per subscriber */
#define BUF_MAX (1 << 20) /* an event (a snapshot of 1,000 users) fits */

static const char *g_host = "127.0.0.1", *g_token;
static int g_port, g_pid;
static long long g_hist[NBUCKET + 1];
static volatile sig_atomic_t g_stop;

static int64_t now_us(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

/* usersd's resident memory (VmRSS or VmHWM) in KiB; 0 when unknown. */
static long proc_kb(const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", g_pid);
    FILE *f = g_pid ? fopen(path, "r") : NULL;
    long kb = 0;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') kb = strtol(line + fl + 1, NULL, 10);
    if (f) fclose(f);
    return kb;
}

/* usersd's CPU time (user + system) in clock ticks. */
static long long proc_ticks(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", g_pid);
    FILE *f = g_pid ? fopen(path, "r") : NULL;
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    long long ut = 0, st = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) == 2)
        return ut + st;
    return 0;
}

/* ---- subscribers --------------------------------------------------------- */

struct sub {
    int fd;
    bool open, connected, chunked, headers_done;
    int status; /* HTTP status of the current connection */
    char head[4096];
    size_t head_len;
    char *buf; /* de-chunked event text, grown up to BUF_MAX */
    size_t len, cap;
    char line[32]; /* a chunk-size line being read */
    size_t line_len;
    size_t remaining; /* bytes of the current chunk still to come */
    int crlf;         /* CR/LF bytes after a chunk still to skip */
    int64_t last_id;  /* the last presence event's id */
    long long received, gap_events, out_of_order, foreign, resyncs, snapshots, snapshot_bad;
    int reconnects;
    bool failed;     /* refused or out of reconnects */
    uint8_t *follow; /* bitmap over user ids, NULL: every user */
    char *query;     /* "?ids=..." or "" */
};

static int g_users, g_follow, g_ep;

static bool follows(const struct sub *s, long user)
{
    if (!s->follow) return true;
    return user >= 1 && user <= g_users && (s->follow[user >> 3] >> (user & 7) & 1);
}

static bool sub_connect(struct sub *s)
{
    int fd = connect_to();
    if (fd < 0) return false;
    char req[8192], last[48] = "";
    if (s->last_id > 0)
        snprintf(last, sizeof last, "Last-Event-ID: %lld\r\n", (long long)s->last_id);
    int n = snprintf(req, sizeof req,
                     "GET /api/users/presence/stream/%s HTTP/1.1\r\nHost: %s\r\n"
                     "Authorization: Token %s\r\n%s\r\n",
                     s->query, g_host, g_token, last);
    if (n <= 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return false;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    s->fd = fd;
    s->open = true;
    s->headers_done = s->chunked = false;
    s->status = 0;
    s->head_len = s->len = s->line_len = s->remaining = 0;
    s->crlf = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
    return true;
}

static const char *find(const char *p, const char *end, const char *key)
{
    return memmem(p, (size_t)(end - p), key, strlen(key));
}

static long field_long(const char *p, const char *end, const char *key)
{
    const char *k = find(p, end, key);
    return k ? strtol(k + strlen(key), NULL, 10) : -1;
}

/* One complete event (its lines, without the blank line that ended it). */
static void on_event(struct sub *s, const char *p, const char *end)
{
    if (find(p, end, "event: resync")) {
        s->resyncs++;
        return;
    }
    if (find(p, end, "event: snapshot")) {
        s->snapshots++;
        /* the current state of every followed user, in the order asked */
        long n = 0;
        for (const char *q = p; (q = find(q, end, "\"user_id\":")); q++)
            n++;
        if (n != g_follow) s->snapshot_bad++;
        return;
    }
    if (!find(p, end, "event: presence")) return; /* keepalive, hello, other kinds */
    int64_t id = -1;
    const char *idl = !strncmp(p, "id: ", 4) ? p : find(p, end, "\nid: ");
    if (idl) id = strtoll(idl + (*idl == '\n') + 4, NULL, 10);
    long user = field_long(p, end, "\"user_id\":");
    if (!follows(s, user)) {
        s->foreign++;
        return;
    }
    s->received++;
    if (id <= s->last_id) {
        s->out_of_order++;
    } else {
        if (!s->follow && s->last_id > 0) s->gap_events += id - s->last_id - 1;
        s->last_id = id;
    }
    /* only "online" moves last_seen to the moment of the change */
    static const char key[] = "\"last_seen\":\"";
    const char *k = find(p, end, key);
    if (k && find(p, end, "\"online_status\":\"online\"") &&
        k + sizeof key - 1 + USERSD_TIME_LEN <= end) {
        char t[USERSD_TIME_LEN + 1];
        int64_t ts;
        memcpy(t, k + sizeof key - 1, USERSD_TIME_LEN);
        t[USERSD_TIME_LEN] = 0;
        if (usersd_time_parse(t, &ts)) {
            int64_t b = (now_us(CLOCK_REALTIME) - ts) / 100;
            g_hist[b < 0 ? 0 : b > NBUCKET ? NBUCKET : b]++;
        }
    }
}

/* Scans buffered bytes for complete events. */
static void scan(struct sub *s)
{
    char *p = s->buf, *end = s->buf + s->len;
    for (;;) {
        char *e = memmem(p, (size_t)(end - p), "\n\n", 2);
        if (!e) break;
        on_event(s, p, e);
        p = e + 2;
    }
    s->len = (size_t)(end - p);
    memmove(s->buf, p, s->len);
}

static void body(struct sub *s, const char *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n && cap < BUF_MAX)
            cap *= 2;
        char *b = cap >= s->len + n ? realloc(s->buf, cap) : NULL;
        if (!b) { /* an event larger than BUF_MAX: dropped */
            s->len = 0;
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    scan(s);
}

/* Reads the response headers, then undoes chunked framing so an event
 * split across chunks is seen whole. */
static void feed(struct sub *s, const char *p, size_t n)
{
    size_t i = 0;
    while (!s->headers_done && i < n) {
        if (s->head_len < sizeof s->head - 1) s->head[s->head_len++] = p[i];
        i++;
        s->head[s->head_len] = 0;
        char *end = strstr(s->head, "\r\n\r\n");
        if (end) {
            s->headers_done = true;
            s->status = (int)strtol(s->head + 9, NULL, 10);
            for (char *c = s->head; *c; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
            s->chunked = strstr(s->head, "transfer-encoding: chunked") != NULL;
            s->connected = s->status == 200;
        }
    }
    if (!s->chunked) {
        if (i < n) body(s, p + i, n - i);
        return;
    }
    while (i < n) {
        if (s->crlf) {
            i++;
            s->crlf--;
        } else if (s->remaining) {
            size_t k = n - i < s->remaining ? n - i : s->remaining;
            body(s, p + i, k);
            s->remaining -= k;
            i += k;
            if (!s->remaining) s->crlf = 2;
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

/* Reads what is there; on a close, reconnects (while allowed). */
static void on_readable(struct sub *s, bool reconnect)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        char raw[16384];
        ssize_t r = read(s->fd, raw, sizeof raw);
        if (r > 0) {
            feed(s, raw, (size_t)r);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        epoll_ctl(g_ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->open = false;
        bool was_ok = s->status == 200;
        if (!was_ok || !reconnect || s->reconnects == RECONNECTS || !sub_connect(s))
            s->failed = true;
        else
            s->reconnects++;
        return;
    }
}

static void poll_subs(int timeout_ms, bool reconnect)
{
    struct epoll_event evs[512];
    int n = epoll_wait(g_ep, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++)
        on_readable(evs[i].data.ptr, reconnect);
}

/* ---- writers -------------------------------------------------------------- */

struct writer {
    int id, rate, seconds;
    long long changes, errors;
    long long *per_user; /* changes per user id (this writer's users only) */
    int8_t *state;       /* per user: 0 offline, 1 away, 2 online */
};

/* One request on a keep-alive connection; the reply's status, or -1. */
static int request(int fd, const char *method, long user, const char *status)
{
    char body[64], req[512], resp[8192];
    int bl = snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
    int n = snprintf(req, sizeof req,
                     "%s /api/users/admin/users/%ld/set-online-status/ HTTP/1.1\r\n"
                     "Host: %s\r\nAuthorization: Token %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     method, user, g_host, g_token, bl, body);
    if (write(fd, req, (size_t)n) != n) return -1;
    /* the whole reply: headers, then Content-Length bytes */
    size_t len = 0;
    long want = -1;
    char *hend = NULL;
    while (len < sizeof resp - 1) {
        ssize_t r = read(fd, resp + len, sizeof resp - 1 - len);
        if (r <= 0) return -1;
        len += (size_t)r;
        resp[len] = 0;
        if (!hend && (hend = strstr(resp, "\r\n\r\n"))) {
            char *cl = strcasestr(resp, "content-length:");
            want = cl && cl < hend ? strtol(cl + 15, NULL, 10) : 0;
        }
        if (hend && (long)(len - (size_t)(hend + 4 - resp)) >= want) break;
    }
    return (int)strtol(resp + 9, NULL, 10);
}

/* Before any stream opens: every user of this writer's share offline, so
 * the writer knows each status and every later visit is a change. */
static void *warm(void *argp)
{
    struct writer *w = argp;
    int fd = connect_to();
    for (long u = 1 + w->id; fd >= 0 && u <= g_users; u += NWRITERS)
        if (request(fd, "POST", u, "offline") != 200) w->errors++;
    if (fd >= 0) close(fd);
    return NULL;
}

static void *write_changes(void *argp)
{
    struct writer *w = argp;
    int fd = connect_to();
    if (fd < 0) return NULL;
    int64_t start = now_us(CLOCK_MONOTONIC), end = start + (int64_t)w->seconds * 1000000;
    double per = 1e6 / ((double)w->rate / NWRITERS);
    long mine = (g_users - w->id + NWRITERS - 1) / NWRITERS; /* users id, id+8, ... */
    for (long i = 0; mine > 0; i++) {
        int64_t due = start + (int64_t)((double)i * per);
        if (due >= end || g_stop) break;
        int64_t now = now_us(CLOCK_MONOTONIC);
        if (due > now) usleep((useconds_t)(due - now));
        long user = 1 + w->id + (i % mine) * NWRITERS;
        const char *st = w->state[user] == 2 ? "away" : "online";
        int code = request(fd, "POST", user, st);
        if (code == 200) {
            w->state[user] = w->state[user] == 2 ? 1 : 2;
            w->per_user[user]++;
            w->changes++;
        } else {
            w->errors++;
            if (code < 0) break;
        }
    }
    close(fd);
    return NULL;
}

/* ---- the run ------------------------------------------------------------- */

static int64_t percentile(double q)
{
    long long total = 0, seen = 0;
    for (int i = 0; i <= NBUCKET; i++)
        total += g_hist[i];
    for (int i = 0; i <= NBUCKET; i++) {
        seen += g_hist[i];
        if (total && seen >= (long long)(q * (double)total)) return (int64_t)i * 100 + 50;
    }
    return -1;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: stream_bench --port P --token T --subscribers N --rate R "
                    "--seconds S --users U [--follow K] [--pid PID] [--host H]\n");
    exit(2);
}

static int arg_int(const char *s, int min, int max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < min || v > max) usage();
    return (int)v;
}

int main(int argc, char **argv)
{
    int nsub = -1, rate = -1, seconds = -1;
    static const struct option longopts[] = {{"host", 1, 0, 'h'},  {"port", 1, 0, 'p'},
                                             {"token", 1, 0, 't'}, {"subscribers", 1, 0, 'n'},
                                             {"rate", 1, 0, 'r'},  {"seconds", 1, 0, 's'},
                                             {"users", 1, 0, 'u'}, {"follow", 1, 0, 'f'},
                                             {"pid", 1, 0, 'P'},   {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        switch (c) {
        case 'h':
            g_host = optarg;
            break;
        case 'p':
            g_port = arg_int(optarg, 1, 65535);
            break;
        case 't':
            g_token = optarg;
            break;
        case 'n':
            nsub = arg_int(optarg, 1, 100000);
            break;
        case 'r':
            rate = arg_int(optarg, 0, 1000000);
            break;
        case 's':
            seconds = arg_int(optarg, 1, 3600);
            break;
        case 'u':
            g_users = arg_int(optarg, 1, 10000000);
            break;
        case 'f':
            g_follow = arg_int(optarg, 0, 1000);
            break;
        case 'P':
            g_pid = arg_int(optarg, 1, 1 << 30);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || !g_port || !g_token || nsub < 0 || rate < 0 || seconds < 0 || !g_users ||
        g_follow > g_users)
        usage();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    struct writer w[NWRITERS];
    pthread_t th[NWRITERS];
    int8_t *state = calloc((size_t)g_users + 1, 1);
    long long *per_user = calloc((size_t)g_users + 1, sizeof *per_user);
    struct sub *subs = calloc((size_t)nsub, sizeof *subs);
    if (!state || !per_user || !subs) return 1;
    for (int i = 0; i < NWRITERS; i++)
        w[i] = (struct writer){
            .id = i, .rate = rate, .seconds = seconds, .per_user = per_user, .state = state};
    long long warm_errors = 0;
    if (rate > 0) {
        for (int i = 0; i < NWRITERS; i++)
            pthread_create(&th[i], NULL, warm, &w[i]);
        for (int i = 0; i < NWRITERS; i++) {
            pthread_join(th[i], NULL);
            warm_errors += w[i].errors;
            w[i].errors = 0;
        }
        usleep(500000); /* the hub reads the log at least every 100 ms */
    }

    /* Followed users: K distinct random ids of the pool per subscriber. */
    srand((unsigned)getpid());
    size_t bm = (size_t)g_users / 8 + 1;
    for (int i = 0; i < nsub; i++) {
        subs[i].query = "";
        if (!g_follow) continue;
        subs[i].follow = calloc(bm, 1);
        subs[i].query = malloc((size_t)g_follow * 9 + 8);
        if (!subs[i].follow || !subs[i].query) return 1;
        size_t qcap = (size_t)g_follow * 9 + 8, ql = 0;
        ql += (size_t)snprintf(subs[i].query, qcap, "?ids=");
        for (int k = 0; k < g_follow;) {
            long u = 1 + rand() % g_users;
            if (subs[i].follow[u >> 3] >> (u & 7) & 1) continue;
            subs[i].follow[u >> 3] |= (uint8_t)(1 << (u & 7));
            ql += (size_t)snprintf(subs[i].query + ql, qcap - ql, "%s%ld", k ? "," : "", u);
            k++;
        }
    }

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    long rss_before = proc_kb("VmRSS");
    int64_t t_open = now_us(CLOCK_MONOTONIC);
    int refused = 0;
    for (int i = 0; i < nsub; i++) {
        if (!sub_connect(&subs[i])) {
            subs[i].failed = true;
            refused++;
        }
        if (i % 256 == 255) poll_subs(0, false); /* read what is there as we go */
    }
    /* Every stream answered and, following, has its snapshot: at most 60 s,
     * and 3 s once all answered (a server without ?ids= sends none). */
    int64_t deadline = now_us(CLOCK_MONOTONIC) + 60 * 1000000, all_answered = 0;
    for (;;) {
        int ready = 0, gone = 0, answered = 0;
        for (int i = 0; i < nsub; i++) {
            if (subs[i].failed || !subs[i].open)
                gone++;
            else if (subs[i].connected)
                answered++;
            if (subs[i].connected && subs[i].open && (!g_follow || subs[i].snapshots)) ready++;
        }
        int64_t now = now_us(CLOCK_MONOTONIC);
        if (answered + gone == nsub && !all_answered) all_answered = now;
        if (ready + gone == nsub || now > deadline || g_stop) break;
        if (all_answered && now - all_answered > 3000000) break;
        poll_subs(50, false);
    }
    int64_t open_us = now_us(CLOCK_MONOTONIC) - t_open;
    for (int64_t settle = now_us(CLOCK_MONOTONIC) + 500000; now_us(CLOCK_MONOTONIC) < settle;)
        poll_subs(50, true);
    long rss_open = proc_kb("VmRSS");
    int opened = 0, not_ok = 0;
    for (int i = 0; i < nsub; i++) {
        if (subs[i].connected) opened++;
        if (subs[i].headers_done && subs[i].status != 200) not_ok++;
    }

    long long t0 = proc_ticks();
    int64_t w0 = now_us(CLOCK_MONOTONIC);
    if (rate > 0)
        for (int i = 0; i < NWRITERS; i++)
            pthread_create(&th[i], NULL, write_changes, &w[i]);
    /* The run, then up to 10 s for what is in flight to arrive. */
    int64_t end = w0 + (int64_t)seconds * 1000000;
    while (now_us(CLOCK_MONOTONIC) < end && !g_stop)
        poll_subs(100, true);
    long long changes = 0, change_errors = 0;
    if (rate > 0)
        for (int i = 0; i < NWRITERS; i++) {
            pthread_join(th[i], NULL);
            changes += w[i].changes;
            change_errors += w[i].errors;
        }
    long long t1 = proc_ticks();
    int64_t w1 = now_us(CLOCK_MONOTONIC);
    /* With the writes known, each subscriber expects the changes of the
     * users it follows; without (--rate 0), what the best-served one got
     * (the ids alone cannot tell: the log's other kinds skip ids too). */
    long long *expected = calloc((size_t)nsub, sizeof *expected);
    if (!expected) return 1;
    for (int i = 0; rate > 0 && i < nsub; i++) {
        if (!subs[i].follow) {
            expected[i] = changes;
            continue;
        }
        for (long u = 1; u <= g_users; u++)
            if (follows(&subs[i], u)) expected[i] += per_user[u];
    }
    int64_t drain_end = now_us(CLOCK_MONOTONIC) + 10 * 1000000, quiet_since = 0;
    long long last_total = -1;
    for (;;) {
        long long total = 0, want = 0, best = 0;
        for (int i = 0; i < nsub; i++) {
            total += subs[i].received;
            best = subs[i].received > best ? subs[i].received : best;
        }
        for (int i = 0; i < nsub; i++) {
            if (rate == 0) expected[i] = best;
            if (!subs[i].failed) want += expected[i];
        }
        int64_t now = now_us(CLOCK_MONOTONIC);
        if (total != last_total) quiet_since = now;
        last_total = total;
        /* done: all there, or nothing new for a second, or out of time */
        if (total >= want || now - quiet_since > 1000000 || now > drain_end) break;
        poll_subs(50, true);
    }

    long long received = 0, want = 0, missing = 0, extra = 0, gaps = 0, ooo = 0, foreign = 0,
              resyncs = 0, snap_bad = 0, reconnects = 0;
    int subs_missing = 0, failed = 0;
    for (int i = 0; i < nsub; i++) {
        struct sub *s = &subs[i];
        received += s->received;
        want += expected[i];
        if (s->received < expected[i]) {
            missing += expected[i] - s->received;
            subs_missing++;
        } else {
            extra += s->received - expected[i];
        }
        gaps += s->gap_events;
        ooo += s->out_of_order;
        foreign += s->foreign;
        resyncs += s->resyncs;
        snap_bad += s->snapshot_bad + (g_follow && s->connected && !s->snapshots);
        reconnects += s->reconnects;
        failed += s->failed;
    }
    double secs = (double)(w1 - w0) / 1e6;
    long hz = sysconf(_SC_CLK_TCK);
    printf("{\"subscribers\": %d, \"opened\": %d, \"refused\": %d, \"not_ok\": %d, "
           "\"follow\": %d, \"users\": %d, \"rate\": %d, \"seconds\": %.1f, "
           "\"open_s\": %.2f, \"warm_errors\": %lld, \"changes\": %lld, "
           "\"change_errors\": %lld, \"expected_events\": %lld, \"events\": %lld, "
           "\"delivered_pct\": %.3f, \"missing_events\": %lld, \"subscribers_missing\": %d, "
           "\"extra_events\": %lld, \"gap_events\": %lld, \"out_of_order\": %lld, "
           "\"foreign_events\": %lld, \"resyncs\": %lld, \"snapshot_bad\": %lld, "
           "\"reconnects\": %lld, \"failed_streams\": %d, \"p50_us\": %lld, \"p99_us\": %lld, "
           "\"server_rss_before_kb\": %ld, \"server_rss_open_kb\": %ld, "
           "\"rss_per_stream_kb\": %.2f, \"server_peak_rss_kb\": %ld, \"server_cpu_pct\": %.1f}\n",
           nsub, opened, refused, not_ok, g_follow, g_users, rate, secs, (double)open_us / 1e6,
           warm_errors, changes, change_errors, want, received,
           want ? 100.0 * (double)(want - missing) / (double)want : 100.0, missing, subs_missing,
           extra, gaps, ooo, foreign, resyncs, snap_bad, reconnects, failed,
           (long long)percentile(0.5), (long long)percentile(0.99), rss_before, rss_open,
           opened && rss_open ? (double)(rss_open - rss_before) / opened : 0.0, proc_kb("VmHWM"),
           g_pid && secs > 0 ? 100.0 * (double)(t1 - t0) / (double)hz / secs : 0);
    for (int i = 0; i < nsub; i++) {
        if (subs[i].open) close(subs[i].fd);
        free(subs[i].buf);
        free(subs[i].follow);
        if (g_follow) free(subs[i].query);
    }
    free(subs);
    free(expected);
    free(state);
    free(per_user);
    close(g_ep);
    return 0;
}
