/* server.c — libmicrohttpd set-up: a pool of epoll threads, one libusersd
 * handle per thread (neither SQLite nor libpq connections are shared across
 * threads), the access log, and a clean stop on SIGTERM/SIGINT. */
#include <arpa/inet.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"
#include "server.h"

static const struct server_config *g_cfg;
static atomic_int g_inflight;

/* Every handle a worker opened, so the main thread can close them. */
static pthread_mutex_t g_cores_lock = PTHREAD_MUTEX_INITIALIZER;
static struct usersd **g_cores;
static size_t g_ncores;
static _Thread_local struct usersd *tl_core;

const struct server_config *server_config(void)
{
    return g_cfg;
}

struct usersd_config server_core_config(void)
{
    struct usersd_config c;
    usersd_config_init(&c);
    c.db_url = g_cfg->db_url;
    c.away_after_s = g_cfg->away_after_s;
    c.offline_after_s = g_cfg->offline_after_s;
    c.activity_interval_s = g_cfg->activity_interval_s;
    c.session_ttl_s = g_cfg->session_ttl_s;
    c.history_days = g_cfg->history_days;
    c.decay_grace_us = WRITER_REFRESH_GRACE_US; /* refreshes are queued (writer.c) */
    c.checkpoint_apart = true;                  /* writer.c's checkpointer does it */
    return c;
}

struct usersd *server_core(struct usersd_err *err)
{
    if (tl_core) return tl_core;
    struct usersd_config c = server_core_config();
    struct usersd *u;
    if (usersd_open(&u, &c, err)) return NULL;
    pthread_mutex_lock(&g_cores_lock);
    struct usersd **n = realloc(g_cores, (g_ncores + 1) * sizeof *n);
    if (n) {
        g_cores = n;
        g_cores[g_ncores++] = u;
    }
    pthread_mutex_unlock(&g_cores_lock);
    if (!n) {
        usersd_close(u);
        err->code = USERSD_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NULL;
    }
    tl_core = u;
    return u;
}

/* Copies in into out (always terminated) with every byte that could fool
 * a log reader written as \xNN: control characters (C0, DEL, and C1 in
 * their UTF-8 form), bytes that are not well-formed UTF-8, and the quote
 * and backslash, so a line's fields cannot be forged. Text and JSON lines
 * escape alike (JSON then holds only valid UTF-8). Returns the length. */
size_t server_log_escape(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    if (!size) return 0;
    while (*s) {
        size_t n = 1; /* bytes in this character when it is kept */
        bool keep;
        if (*s < 0x80) {
            keep = *s >= 0x20 && *s != 0x7f && *s != '"' && *s != '\\';
        } else {
            unsigned c = *s;
            uint32_t cp;
            if (c >= 0xc2 && c <= 0xdf)
                n = 2, cp = c & 0x1f;
            else if (c >= 0xe0 && c <= 0xef)
                n = 3, cp = c & 0x0f;
            else if (c >= 0xf0 && c <= 0xf4)
                n = 4, cp = c & 0x07;
            else
                n = 0, cp = 0;
            for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80) {
                    n = 0;
                    break;
                }
                cp = cp << 6 | (s[i] & 0x3f);
            }
            /* no overlong forms, surrogates, C1 controls or code points past U+10FFFF */
            keep = n && !(n == 3 && cp < 0x800) && !(n == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
                   !(cp >= 0xd800 && cp <= 0xdfff) && !(cp >= 0x80 && cp <= 0x9f);
            if (!keep) n = n ? n : 1;
        }
        if (keep) {
            if (o + n >= size) break;
            memcpy(out + o, s, n);
            o += n;
        } else {
            if (o + 4 * n >= size) break;
            for (size_t i = 0; i < n; i++) {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[s[i] >> 4];
                out[o++] = hex[s[i] & 15];
            }
        }
        s += n;
    }
    out[o] = 0;
    return o;
}

void server_log(const char *fmt, ...)
{
    char raw[512], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    server_log_escape(raw, msg, sizeof msg);
    if (g_cfg && g_cfg->log_json) {
        json_t *o = json_pack("{s:s, s:s}", "type", "log", "msg", msg);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (line) fprintf(stderr, "%s\n", line);
        free(line);
    } else {
        fprintf(stderr, "usersd: %s\n", msg);
    }
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void dispatch_error(struct req *r, int status, const char *allow)
{
    if (status == 405) {
        reply_header(r, "Allow", allow);
        reply_fail(r, 405, NULL, "method %s is not allowed here (allowed: %s)", r->method, allow);
    } else {
        reply_fail(r, 404, NULL, "no such endpoint");
    }
}

/* Routes the request and runs the header-only checks; false when an error
 * reply is queued. */
static bool route_and_check(struct req *r, const char *url)
{
    char allow[128];
    int status = 404;
    r->checked = true;
    if (dashboard_serve(r, url)) return false; /* a page of the dashboard, answered */
    r->route = router_match(r->method, url, &r->path_id, &status, allow, sizeof allow);
    if (!r->route) {
        dispatch_error(r, status, allow);
        return false;
    }
    return request_precheck(r);
}

/* RFC 9112's framing rules that libmicrohttpd 0.9.75 does not keep (its
 * strict mode covers only a missing Host, and drops a request whose target
 * holds a space without any reply): every header name a token, one Host,
 * never Transfer-Encoding beside Content-Length nor two different
 * Content-Lengths. These are how requests are smuggled past a proxy that
 * reads the framing otherwise, so the reply is 400 and the connection is
 * closed (a reply on the first call closes it). */
static enum MHD_Result framing_add(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    parse_framing_add(cls, key, key_size, value, value_size);
    return MHD_YES;
}

static bool framing_ok(struct req *r, const char *version)
{
    struct parse_framing f = {0};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, framing_add, &f);
    const char *why = parse_framing_error(&f, strcmp(version, MHD_HTTP_VERSION_1_0) != 0);
    if (!why) return true;
    r->checked = true;
    reply_fail(r, 400, NULL, "%s", why);
    return false;
}

/* The request target as the client sent it, before the library decodes
 * it: a control byte or a space there is refused (API.md §11). The
 * library skips extra spaces after the method; the method's own end is a
 * NUL it wrote over the first, so another byte just before the target is
 * a second space. What is returned here is the request's first *con_cls. */
static char g_bad_line; /* a marker, never read */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls, (void)conn;
    if (uri[-1] != '\0' || !parse_target_raw(uri, strlen(uri))) return &g_bad_line;
    return NULL;
}

static bool has_body(struct MHD_Connection *conn)
{
    const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (len) return strspn(len, "0") != strlen(len);
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL;
}

/* MHD accepts a reply either on the first call (headers only) or once the
 * whole body is in. A request with a body is checked on the first call, so
 * a refused one (401, 413, 415...) is answered before its body is sent
 * (and before "100 Continue"); MHD then closes that connection. A request
 * without a body is answered at its final call instead, because MHD 0.9.75
 * closes keep-alive connections answered on the first call. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    bool bad_line = *con_cls == &g_bad_line;
    if (bad_line) *con_cls = NULL;
    struct req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->conn = conn;
        r->method = method;
        r->started_us = mono_us();
        r->path_id = -1;
        atomic_fetch_add(&g_inflight, 1);
        *con_cls = r;
        conn_request_begin(r);
        /* Before anything reads it: a method that is not an RFC 7230 token
         * is a malformed request (and its bytes must not reach a reply). */
        if (!parse_method_token(method, strlen(method))) {
            r->checked = true;
            reply_fail(r, 400, NULL, "the request method is not a valid HTTP method");
            return MHD_YES;
        }
        if (bad_line) {
            r->checked = true;
            reply_fail(r, 400, NULL,
                       "the request line is not valid HTTP: a method, a target without spaces "
                       "or control characters, and a version, separated by single spaces");
            return MHD_YES;
        }
        if (!framing_ok(r, version)) return MHD_YES;
        if (has_body(conn)) route_and_check(r, url);
        return MHD_YES;
    }
    if (r->job && r->job->state != JOB_NONE) { /* back from another thread (or not yet) */
        if (r->job->state == JOB_DONE) (r->resumed ? r->resumed : writer_reply)(r);
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0; /* discard whatever is still coming */
        return MHD_YES;
    }
    if (!r->checked) r->bodyless = true; /* checks and handler run in this one call */
    if (!r->checked && !route_and_check(r, url)) {
        request_end_reads(r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* A chunked body can outgrow the limit only mid-stream, where MHD
         * takes no reply: drop the rest and answer 413 at the end. */
        if (!r->too_large && !request_body_append(r, upload_data, *upload_data_size))
            r->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        reply_fail(r, 413, NULL, "the request body is larger than 64 KiB");
        return MHD_YES;
    }
    if (r->route->takes_body || r->body_len) {
        if (!request_parse_body(r, r->route->takes_body)) return MHD_YES;
    }
    r->route->handler(r);
    if (!r->answered && (!r->job || r->job->state == JOB_NONE))
        reply_fail(r, 500, NULL, "the handler sent no reply");
    request_end_reads(r);
    return MHD_YES;
}

/* Access lines are buffered per thread and written by the presence thread
 * every 100 ms (or when a buffer fills): a write(2) per request was a tenth
 * of a status read's cost. A kill -9 loses at most the last 100 ms of
 * access lines, never a reply. */
struct logbuf {
    struct thread_block link; /* first: on g_logs */
    pthread_mutex_t lock;
    size_t len;
    char text[16384];
};
static struct thread_blocks g_logs = THREAD_BLOCKS_INIT;
static _Thread_local struct logbuf *tl_log;

static void log_write(struct logbuf *b) /* b->lock held */
{
    if (b->len) fwrite(b->text, 1, b->len, stderr);
    b->len = 0;
}

void server_log_flush(void)
{
    pthread_mutex_lock(&g_logs.lock);
    for (struct thread_block *t = g_logs.head; t; t = t->next) {
        struct logbuf *b = (struct logbuf *)t;
        pthread_mutex_lock(&b->lock);
        log_write(b);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_unlock(&g_logs.lock);
    fflush(stderr);
}

static void logbuf_init(void *block)
{
    pthread_mutex_init(&((struct logbuf *)block)->lock, NULL);
}

static void logbuf_done(void *block)
{
    pthread_mutex_destroy(&((struct logbuf *)block)->lock);
}

static void log_free_all(void)
{
    server_log_flush();
    thread_blocks_free(&g_logs, logbuf_done);
}

static void log_line(const char *line, size_t n)
{
    if (!tl_log) {
        struct logbuf *b = thread_block_new(&g_logs, sizeof *b, logbuf_init);
        if (!b) {
            fwrite(line, 1, n, stderr);
            return;
        }
        tl_log = b;
    }
    struct logbuf *b = tl_log;
    pthread_mutex_lock(&b->lock);
    if (b->len + n > sizeof b->text) log_write(b);
    if (n > sizeof b->text)
        fwrite(line, 1, n, stderr);
    else {
        memcpy(b->text + b->len, line, n);
        b->len += n;
    }
    pthread_mutex_unlock(&b->lock);
}

/* One line per request: method, route (the table's pattern, never the raw
 * path: a token typed into a URL must not reach the log), status, bytes,
 * microseconds, user, and the reason of an error reply. Never a header.
 * The method and the reason may hold client bytes: both are escaped. */
void server_access_log(const char *method, const char *route, int status, size_t bytes, int64_t us,
                       int64_t user_id, const char *errmsg)
{
    char line[4096], m[200], e[1000];
    int n;
    server_log_escape(method ? method : "-", m, sizeof m);
    server_log_escape(errmsg ? errmsg : "", e, sizeof e);
    if (g_cfg->log_json) {
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "type", "access", "method", m, "route",
                      route, "status", status, "bytes", (json_int_t)bytes, "us", (json_int_t)us);
        if (!o) return;
        json_object_set_new(o, "user", user_id > 0 ? json_integer(user_id) : json_null());
        if (e[0]) json_object_set_new(o, "error", json_string(e));
        char *text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        n = text ? snprintf(line, sizeof line, "%s\n", text) : 0;
        free(text);
    } else {
        char user[24] = "-";
        if (user_id > 0) snprintf(user, sizeof user, "%lld", (long long)user_id);
        if (e[0])
            n = snprintf(line, sizeof line, "access: %s %s %d %zu %lldus user=%s error=\"%s\"\n", m,
                         route, status, bytes, (long long)us, user, e);
        else
            n = snprintf(line, sizeof line, "access: %s %s %d %zu %lldus user=%s\n", m, route,
                         status, bytes, (long long)us, user);
    }
    if (n > 0) log_line(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void access_log(const struct req *r, int64_t us)
{
    server_access_log(r->method, r->route ? r->route->pattern : "-", r->status, r->bytes, us,
                      r->caller.id, r->errmsg);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct req *r = *con_cls;
    *con_cls = NULL;
    if (!r || r == (void *)&g_bad_line) return; /* the library refused it before usersd saw it */
    conn_request_end(r);
    int64_t us = mono_us() - r->started_us;
    request_end_reads(r); /* normally already closed in the handler's call */
    metrics_observe(router_index(r->route), r->status, us);
    access_log(r, us);
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) sse_notify();
    json_decref(r->json);
    free(r->body);
    free(r->job);
    free(r);
    atomic_fetch_sub(&g_inflight, 1);
}

/* libmicrohttpd's own messages, through server_log (escaped, JSON when
 * asked). A client can make it repeat a message at will (connections
 * refused, bad requests), so each kind of message (its text without
 * digits) is written at most once a minute, with a count of the ones held
 * back. Its notes on bad requests are left out: each such reply has its
 * own access line (mhd_errors.c). */
#define MHD_LOG_SLOTS 32
#define MHD_LOG_KEY 48
static struct {
    pthread_mutex_t lock;
    struct {
        char key[MHD_LOG_KEY];
        int64_t last_us;
        unsigned held;
    } slot[MHD_LOG_SLOTS];
} g_mhdlog = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    static const char *const quiet[] = {
        "Error processing request (HTTP response code", "Failed to parse `Content-Length'",
        "Too large value of 'Content-Length'", "Failed to send the response headers"};
    char msg[400], key[MHD_LOG_KEY];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg), k = 0;
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = 0;
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        if (!strncmp(msg, quiet[i], strlen(quiet[i]))) return;
    for (const char *c = msg; *c && k < sizeof key - 1; c++)
        if (*c < '0' || *c > '9') key[k++] = *c;
    key[k] = 0;
    int64_t now = mono_us();
    unsigned held;
    pthread_mutex_lock(&g_mhdlog.lock);
    int i = 0, oldest = 0;
    for (; i < MHD_LOG_SLOTS && strcmp(g_mhdlog.slot[i].key, key) != 0; i++)
        if (g_mhdlog.slot[i].last_us < g_mhdlog.slot[oldest].last_us) oldest = i;
    if (i == MHD_LOG_SLOTS) { /* a new kind takes the slot used longest ago */
        i = oldest;
        snprintf(g_mhdlog.slot[i].key, sizeof g_mhdlog.slot[i].key, "%s", key);
        g_mhdlog.slot[i].held = 0;
    } else if (now - g_mhdlog.slot[i].last_us < 60 * 1000000LL) {
        g_mhdlog.slot[i].held++;
        pthread_mutex_unlock(&g_mhdlog.lock);
        return;
    }
    held = g_mhdlog.slot[i].held;
    g_mhdlog.slot[i].held = 0;
    g_mhdlog.slot[i].last_us = now;
    pthread_mutex_unlock(&g_mhdlog.lock);
    if (held)
        server_log("mhd: %s (%u more like it in the last minute not shown)", msg, held);
    else
        server_log("mhd: %s", msg);
}

/* Resolves HOST:PORT ("[::1]:8000" for IPv6). */
static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) return -1;
    size_t hl = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') h++, hl -= 2;
    if (hl >= sizeof host) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE},
                    *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* The database URL as it may be logged: any password replaced by "***". */
static void redact_url(const char *url, char *out, size_t size)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (!colon) {
        snprintf(out, size, "%s", url);
        return;
    }
    snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
}

static int bootstrap_admin(struct usersd *u)
{
    const char *pw = getenv("USERSD_ADMIN_PASSWORD");
    if (!pw || !*pw) return 0;
    int64_t n;
    struct usersd_err err = {0};
    if (usersd_user_count(u, &n, &err)) {
        server_log("%s", err.msg);
        return -1;
    }
    if (n > 0) return 0;
    struct usersd_user_fields f;
    usersd_user_fields_init(&f);
    f.username = getenv("USERSD_ADMIN_USERNAME");
    if (!f.username || !*f.username) f.username = "admin";
    f.password = pw;
    f.is_staff = 1;
    struct usersd_user user;
    if (usersd_user_create(u, &f, &user, &err)) {
        server_log("cannot create the admin user: %s", err.msg);
        return -1;
    }
    server_log("created staff user '%s' (id %lld)", user.username, (long long)user.id);
    return 0;
}

int server_run(const struct server_config *cfg)
{
    g_cfg = cfg;
#ifdef __GLIBC__
    /* glibc hands a thread's freed heap top back to the kernel past 128 KiB
     * and faults it in again on the next allocation: the group-commit
     * writer did that every batch (12 % of its time in page faults and
     * madvise under perf). Keeping up to 8 MiB took set-online-status at
     * 1,000 users from 18.6k to 27.4k/s, with peak RSS unchanged. Setting
     * it also freezes glibc's mmap threshold at 128 KiB, which a list page's
     * 50 users (145 KiB) pass: each page was an mmap, its page faults and
     * an munmap (kernel 39 % of a core under perf, 2.7k pages a second),
     * so allocations up to 1 MiB come from the heap. */
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (resolve(cfg->listen, &ss, &sslen) != 0) {
        fprintf(stderr, "usersd serve: cannot resolve --listen '%s' (expected HOST:PORT)\n",
                cfg->listen);
        return 1;
    }
    /* Open (and migrate) once up front so a bad database stops us here. */
    struct usersd_err err = {0};
    struct usersd *main_core = server_core(&err);
    if (!main_core) {
        fprintf(stderr, "usersd serve: %s\n", err.msg);
        return 1;
    }
    if (bootstrap_admin(main_core) != 0) return 1;

    /* Workers inherit this mask, so only sigwait below sees the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Thousands of open streams need as many descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Each connection takes a descriptor; the rest (database handles of
     * every thread, epoll and wake-up descriptors, the listening socket,
     * logs) come out of the reserve. */
    long max_conns = cfg->max_connections;
    if (!max_conns) {
        rlim_t fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        if (fds == RLIM_INFINITY || fds > (1 << 20)) fds = 1 << 20;
        long reserve = 64 + 8L * cfg->threads;
        max_conns = (long)fds > reserve + 16 ? (long)fds - reserve : 16;
    }
    conn_configure(max_conns, cfg->max_connections_per_ip);
    login_limit_configure(cfg->login_max_failures);
    char why[256];
    if (!mhd_errors_init(why, sizeof why)) server_log("%s", why);
    if (!mhd_errors_lines_init())
        server_log("out of memory: malformed request lines stay unanswered");
    if (ops_watch_start(&err) != 0 || sse_start(&err) != 0 || writer_start(&err) != 0 ||
        login_pool_start(cfg->threads, &err) != 0) {
        fprintf(stderr, "usersd serve: %s\n", err.msg);
        writer_stop();
        sse_stop();
        sse_release();
        ops_watch_stop();
        return 1;
    }
    unsigned port = 0;
    if (conn_listen((struct sockaddr *)&ss, sslen, &port, why, sizeof why) != 0) {
        login_pool_stop();
        writer_stop();
        sse_stop();
        sse_release();
        ops_watch_stop();
        fprintf(stderr, "usersd serve: cannot listen on %s: %s\n", cfg->listen, why);
        return 1;
    }
    /* usersd accepts the connections itself (conn.c) and hands them over,
     * so the library has no listening socket of its own and no limit of
     * its own that could make a connection wait in the backlog. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_NO_LISTEN_SOCKET;
    /* A pool only with more than one thread: MHD warns about a pool of one. */
    struct MHD_OptionItem pool[] = {
        {cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)cfg->threads,
         NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_ARRAY, pool, MHD_OPTION_CONNECTION_TIMEOUT, conn_idle_timeout(),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, conn_notify,
        NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(1u << 30),
        /* 16 KiB per connection (MHD's default is 32): headers up to ~8 KiB
         * still fit, and 10,000 open streams cost half the memory. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_END);
    if (!d || conn_start(d, why, sizeof why) != 0) {
        if (d) MHD_stop_daemon(d);
        conn_free();
        login_pool_stop();
        writer_stop();
        sse_stop();
        sse_release();
        ops_watch_stop();
        fprintf(stderr, "usersd serve: cannot start: %s\n",
                d       ? why
                : errno ? strerror(errno)
                        : "libmicrohttpd refused to start");
        return 1;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
    char db[512];
    redact_url(cfg->db_url, db, sizeof db);
    server_log("listening on http://%s%s%s:%u (%s, %d threads)",
               ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "", port,
               db, cfg->threads);

    int sig = 0;
    sigwait(&sigs, &sig);
    server_log("%s received, finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    /* Stop accepting, let requests in flight finish (bounded), then stop. */
    conn_stop();
    sse_stop(); /* ends every stream, so they count as finished below */
    /* In flight: requests being handled, and those whose bytes have come
     * in on a connection already accepted but are not parsed yet. */
    for (int i = 0; i < 100 && (atomic_load(&g_inflight) > 0 || conn_arriving() > 0); i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    login_pool_stop(); /* queued logins are checked and answered first */
    writer_stop();     /* queued writes are applied and answered first */
    MHD_stop_daemon(d);
    ops_watch_stop(); /* last: until here a dead database fails calls at once */
    conn_free();
    sse_release();
    metrics_free();
    reply_cache_free();
    log_free_all();
    for (size_t i = 0; i < g_ncores; i++)
        usersd_close(g_cores[i]);
    free(g_cores);
    g_cores = NULL;
    g_ncores = 0;
    server_log("stopped");
    return 0;
}
