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

void server_log(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
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
    (void)cls, (void)version;
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
        /* Before anything reads it: a method that is not an RFC 7230 token
         * is a malformed request (and its bytes must not reach a reply). */
        if (!parse_method_token(method, strlen(method))) {
            r->checked = true;
            reply_fail(r, 400, NULL, "the request method is not a valid HTTP method");
            return MHD_YES;
        }
        if (has_body(conn)) route_and_check(r, url);
        return MHD_YES;
    }
    if (r->job.state != JOB_NONE) { /* back from the writer (or not yet) */
        if (r->job.state == JOB_DONE) writer_reply(r);
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
    if (!r->answered && r->job.state == JOB_NONE)
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
 * microseconds, user, and the reason of an error reply. Never a header. */
static void access_log(const struct req *r, int64_t us)
{
    const char *route = r->route ? r->route->pattern : "-";
    char line[700];
    int n;
    if (g_cfg->log_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "type", "access", "method",
                              r->method, "route", route, "status", r->status, "bytes",
                              (json_int_t)r->bytes, "us", (json_int_t)us);
        if (!o) return;
        json_object_set_new(o, "user", r->caller.id > 0 ? json_integer(r->caller.id) : json_null());
        if (r->errmsg[0]) json_object_set_new(o, "error", json_string(r->errmsg));
        char *text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        n = text ? snprintf(line, sizeof line, "%s\n", text) : 0;
        free(text);
    } else {
        char user[24] = "-";
        if (r->caller.id > 0) snprintf(user, sizeof user, "%lld", (long long)r->caller.id);
        if (r->errmsg[0])
            n = snprintf(line, sizeof line, "access: %s %s %d %zu %lldus user=%s error=\"%s\"\n",
                         r->method, route, r->status, r->bytes, (long long)us, user, r->errmsg);
        else
            n = snprintf(line, sizeof line, "access: %s %s %d %zu %lldus user=%s\n", r->method,
                         route, r->status, r->bytes, (long long)us, user);
    }
    if (n > 0) log_line(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct req *r = *con_cls;
    if (!r) return;
    int64_t us = mono_us() - r->started_us;
    request_end_reads(r); /* normally already closed in the handler's call */
    metrics_observe(router_index(r->route), r->status, us);
    access_log(r, us);
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) sse_notify();
    json_decref(r->json);
    free(r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&g_inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("usersd: mhd: ", stderr);
    vfprintf(stderr, fmt, ap);
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
     * 1,000 users from 18.6k to 27.4k/s, with peak RSS unchanged. */
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
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
    if (sse_start(&err) != 0 || writer_start(&err) != 0) {
        fprintf(stderr, "usersd serve: %s\n", err.msg);
        sse_stop();
        sse_release();
        return 1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* A pool only with more than one thread: MHD warns about a pool of one. */
    struct MHD_OptionItem pool[] = {
        {cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)cfg->threads,
         NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_ARRAY, pool,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)20000,
        /* 16 KiB per connection (MHD's default is 32): headers up to ~8 KiB
         * still fit, and 10,000 open streams cost half the memory. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_END);
    if (!d) {
        writer_stop();
        sse_stop();
        sse_release();
        fprintf(stderr, "usersd serve: cannot listen on %s: %s\n", cfg->listen,
                errno ? strerror(errno) : "libmicrohttpd refused to start");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
    char db[512];
    redact_url(cfg->db_url, db, sizeof db);
    server_log("listening on http://%s%s%s:%u (%s, %d threads)",
               ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "",
               info ? info->port : 0, db, cfg->threads);

    int sig = 0;
    sigwait(&sigs, &sig);
    server_log("%s received, finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    /* Stop accepting, let requests in flight finish (bounded), then stop. */
    MHD_socket lsock = MHD_quiesce_daemon(d);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    sse_stop(); /* ends every stream, so they count as finished below */
    for (int i = 0; i < 100 && atomic_load(&g_inflight) > 0; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    writer_stop(); /* queued writes are applied and answered first */
    MHD_stop_daemon(d);
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
