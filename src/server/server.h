/* server.h — the HTTP face: what the server's files share. The server holds
 * no rules and no SQL: it maps HTTP onto libusersd calls and back. */
#ifndef USERSD_SERVER_H
#define USERSD_SERVER_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "render.h"
#include "usersd.h"

#define SERVER_BODY_MAX (64 * 1024)
#define SERVER_MAX_ORIGINS 16
#define SERVER_MAX_PROXIES 16

/* An address block, e.g. 10.0.0.0/8 or 2001:db8::/32 (client_addr.c). */
struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
};

struct server_config {
    const char *listen; /* HOST:PORT */
    const char *db_url;
    int threads;
    int64_t away_after_s, offline_after_s;
    int64_t activity_interval_s, session_ttl_s, history_days;
    bool cookie_secure;
    const char *trusted_origins[SERVER_MAX_ORIGINS];
    int n_trusted;
    bool log_json;     /* --log-format json */
    bool no_dashboard; /* --no-dashboard: / and /dashboard/ are 404 */
    /* ---- limits (API.md §11; login_limit.c, conn.c, client_addr.c) ---- */
    int login_max_failures; /* per (address, username) in the window; 5x per address */
    struct cidr trusted_proxies[SERVER_MAX_PROXIES];
    int n_proxies;
    long max_connections;        /* 0: what the open-file limit allows, less a reserve */
    long max_connections_per_ip; /* peers inside a trusted proxy CIDR are not counted */
};

/* Runs the server until SIGTERM/SIGINT. Returns 0 on a clean stop, 1 when
 * it cannot start (the reason printed on stderr). */
int server_run(const struct server_config *cfg);

/* ---- routes (router.c) ---- */

enum auth_level { AUTH_NONE, AUTH_USER, AUTH_SELF_OR_STAFF, AUTH_STAFF };

struct req;
typedef void (*handler_fn)(struct req *r);

struct route {
    const char *method;  /* "GET", "POST", "PATCH", "DELETE" */
    const char *pattern; /* canonical path; "{id}" matches digits */
    handler_fn handler;
    enum auth_level auth;
    bool takes_body;
    bool own_activity; /* the handler writes the caller's activity itself */
};

/* Finds the route for method and path. Returns it, or NULL with *status 404
 * (no such path) or 405 (path exists, method not; allow filled with the
 * Allow header value). *id receives the {id} segment (-1 when it overflows). */
const struct route *router_match(const char *method, const char *path, int64_t *id, int *status,
                                 char *allow, size_t allow_size);

/* The table's rows, for metrics labels and `usersd routes`. */
int router_count(void);
const struct route *router_at(int i);
/* The row's index in the table, -1 for NULL. */
int router_index(const struct route *r);

/* ---- metrics (metrics.c) ---- */

/* Counts one finished request (route -1: no route matched). Lock-free. */
void metrics_observe(int route, int status, int64_t us);
/* Counts a request answered 503 because the database failed. */
void metrics_db_error(void);
/* Counts sessions ended by revocation (logout, DELETE) and by expiry. */
void metrics_sessions_ended(int64_t revoked, int64_t expired);
/* What the database counts beside the statistics. */
struct metrics_counts {
    int64_t sessions;
    int64_t manual; /* users with a manual status (API.md §12) */
    int64_t dnd;    /* users in do not disturb */
};
/* The Prometheus text exposition (malloc'd, *len set), NULL if out of memory.
 * stats NULL: the database's counts (users, sessions, manual, dnd) are left
 * out, and counts is not read. */
char *metrics_render(const struct usersd_stats *stats, const struct metrics_counts *counts,
                     size_t *len);
void metrics_free(void);

/* ---- a request (request.c) ---- */

enum body_type { BODY_NONE, BODY_JSON, BODY_FORM, BODY_OTHER };

/* A running password check, counted by login_limit_begin, settled by _end. */
struct login_ticket {
    uint64_t pair, addr;
    bool held;
};
enum login_outcome { LOGIN_OK, LOGIN_FAILED, LOGIN_UNDECIDED };
enum job_state { JOB_NONE, JOB_QUEUED, JOB_DONE };
enum job_kind { JOB_SET_STATUS, JOB_HEARTBEAT };

/* The work of a request handed to another thread: a presence write for
 * the writer (writer.c) or a login for the login pool (login_limit.c).
 * Allocated at the hand-off and freed with the request, so only the
 * requests that need one carry it (an open presence stream does not). */
struct write_job {
    enum job_state state;
    enum job_kind kind;
    int64_t user_id;
    int64_t session_id; /* the caller's session, whose last_used moves too (0: none) */
    enum usersd_status status;
    unsigned flags;      /* USERSD_STATUS_* (a manual status, or automatic) */
    enum usersd_code rc; /* filled by the writer */
    struct usersd_err err;
    struct usersd_user user;
    size_t order;     /* its place in the batch as queued */
    struct req *next; /* the writer's queue */
};

/* The caller, as far as requests use it (a reply that shows the whole user
 * reads it): a request stays small, and so does every open stream. */
struct req_caller {
    int64_t id; /* 0: no caller */
    bool is_staff;
    enum usersd_status online_status;
    int64_t last_seen;
    bool status_manual; /* nothing automatic moves their presence (API.md §12) */
};

struct req {
    struct MHD_Connection *conn;
    const struct route *route;
    const char *method;
    int64_t path_id;
    int64_t started_us;
    bool checked;   /* the pre-body checks ran */
    bool answered;  /* a response is queued */
    bool too_large; /* the body outgrew SERVER_BODY_MAX */
    /* body */
    char *body;
    size_t body_len, body_cap;
    enum body_type body_type;
    json_t *json; /* the parsed body object, owned */
    /* caller */
    struct usersd *core; /* this thread's handle, borrowed */
    struct req_caller caller;
    struct {
        int64_t id, last_used;
    } session; /* the caller's (id 0: none, or not by token) */
    bool authed;
    bool bodyless;   /* checked and handled within one MHD call */
    bool read_scope; /* a usersd_read_begin is open on core */
    char token[USERSD_TOKEN_LEN + 1];
    struct write_job *job; /* handed to another thread (NULL: never; owned) */
    /* extra response headers (Set-Cookie, Allow, WWW-Authenticate) */
    struct {
        char name[24];
        char value[200];
    } hdr[4];
    int nhdr;
    char errmsg[256]; /* the reason of an error reply, for the log */
    /* for the access log */
    int status;
    size_t bytes;
    /* a job of the login pool (login_limit.c): run there, then resumed */
    enum usersd_code (*pool_run)(struct req *r, struct usersd *core);
    handler_fn resumed; /* sends the reply of a done job (NULL: writer_reply) */
    struct login_ticket ticket;
    char minted[USERSD_TOKEN_LEN + 1];
    char client_ip[48];     /* request_client_ip, taken on the worker */
    const char *user_agent; /* the login's header (the request's own memory) */
    long retry_after;       /* > 0: the login limit refused it (429) */
};

/* ---- requests handed to another thread (jobs.c) ---- */

/* A queue of requests for a thread that does their work (the writer, the
 * login pool). The worker suspends the connection as it queues it; the
 * thread resumes it when the job is done, and MHD then calls the request
 * again on its worker, which replies. */
struct job_queue {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct req *head, *tail; /* oldest first */
};
#define JOB_QUEUE_INIT                                                                             \
    {                                                                                              \
        .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER                        \
    }
/* r's job, zeroed, allocated on first use; NULL after replying 500 when out
 * of memory. */
struct write_job *request_job(struct req *r);
/* Queues r (its job filled) and suspends its connection; wakes one taker. */
void job_queue_push(struct job_queue *q, struct req *r);
/* The oldest queued request, or NULL (q->lock held). */
struct req *job_queue_take(struct job_queue *q);

/* This thread's libusersd handle, opened on first use; NULL with err filled
 * when the database cannot be opened. */
struct usersd *server_core(struct usersd_err *err);
const struct server_config *server_config(void);
/* The libusersd configuration every handle the server opens uses. */
struct usersd_config server_core_config(void);
/* Writes the buffered access lines (the presence thread calls it every
 * 100 ms). */
void server_log_flush(void);
/* One log line on stderr, text or JSON as configured (escaped). */
void server_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Copies in to out (size > 0, always terminated) with control characters,
 * bytes that are not well-formed UTF-8, '"' and '\\' written as \xNN.
 * Returns the length written. */
size_t server_log_escape(const char *in, char *out, size_t size);
/* One access line (buffered; method and errmsg are escaped). route is a
 * route pattern or "-"; user_id <= 0 is none. */
void server_access_log(const char *method, const char *route, int status, size_t bytes, int64_t us,
                       int64_t user_id, const char *errmsg);

/* Runs the checks that need only headers: route, auth, permission, size,
 * content type. Returns true when the request may go on; otherwise an
 * error reply is queued. */
bool request_precheck(struct req *r);
/* Closes the request's read scope, then writes the caller's activity. */
void request_end_reads(struct req *r);
/* Appends body bytes; false past the limit (or out of memory). */
bool request_body_append(struct req *r, const char *data, size_t size);
/* Parses the body into r->json (an object); false and 400 queued when it is
 * not one. An empty body gives an empty object when required is false. */
bool request_parse_body(struct req *r, bool required);
/* The viewer for rendering: the caller. */
struct render_viewer request_viewer(const struct req *r);
/* The client's address as text (client_addr.c): the peer's, IPv4-mapped
 * IPv6 shown as IPv4; "" when unknown. size >= INET6_ADDRSTRLEN. When the
 * peer is inside a --trusted-proxy CIDR, the right-most X-Forwarded-For
 * address that is not itself a trusted proxy. */
void request_client_ip(const struct req *r, char *out, size_t size);
/* Parses "ADDR/BITS" or a bare address (all bits) of len bytes; false
 * when it is not one. Host bits past the prefix are cleared. */
bool cidr_parse(const char *text, size_t len, struct cidr *out);
/* Whether sa (IPv4, IPv6 or IPv4-mapped IPv6) is inside a --trusted-proxy. */
bool client_addr_trusted(const struct sockaddr *sa);

/* Query values (API.md §6). Each returns false with a 400 queued when bad;
 * an absent or empty value leaves *out unchanged. */
bool query_int(struct req *r, const char *name, int *out);
bool query_bool(struct req *r, const char *name, int *out);
const char *query_str(struct req *r, const char *name);
bool query_page(struct req *r, int *page, int *per_page);

/* Body fields. Absent leaves *out unchanged and returns true; a wrong type
 * queues 400 naming the field and returns false. */
bool body_str(struct req *r, const char *name, const char **out);
bool body_bool(struct req *r, const char *name, int *out);
/* A whole number (a JSON integer; in a form, digits with an optional
 * minus); *given tells whether it was there. */
bool body_int(struct req *r, const char *name, int64_t *out, bool *given);

/* ---- replies (reply.c) ---- */

/* Sends obj (stolen) with status. NULL obj means out of memory: 500. */
void reply_json(struct req *r, int status, json_t *obj);
void reply_empty(struct req *r, int status);
/* The Content-Type of every JSON reply. */
#define JSON_TYPE "application/json; charset=utf-8"
/* Sends text (malloc'd, taken; NULL: 500) with its content type. */
void reply_text(struct req *r, int status, const char *type, char *text, size_t len);
/* Sends {"error": msg} with the status the code maps to. */
void reply_err(struct req *r, const struct usersd_err *err);
/* Sends {"error": fmt...} with status, optionally naming a field. */
void reply_fail(struct req *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a header to the response being built (before reply_*). */
void reply_header(struct req *r, const char *name, const char *value);
void reply_clear_headers(struct req *r);

/* ---- handlers ---- */

/* Reads {"status"} and applies it to user id (set-online-status and
 * me/online-status share it). */
void presence_set_from_body(struct req *r, int64_t id);
/* ---- connections before HTTP (conn.c) ---- */

/* Binds and listens on sa; *port receives the port. -1 with msg filled. */
int conn_listen(const struct sockaddr *sa, socklen_t len, unsigned *port, char *msg, size_t size);
/* Sets the limits (and reads the test-only USERSD_TEST_CONN_TIMEOUT). */
void conn_configure(long max_connections, long max_per_ip);
/* Starts the thread that accepts connections and hands them to d. */
int conn_start(struct MHD_Daemon *d, char *msg, size_t size);
/* Stops accepting (what already waits in the backlog is still taken in)
 * and closes the listening socket. */
void conn_stop(void);
/* Connections with a request arriving that the access handler has not
 * seen yet: handed over but not started, or with bytes received since
 * they were last ready. For the graceful stop. */
long conn_arriving(void);
/* Frees what is left (after MHD_stop_daemon). */
void conn_free(void);
/* MHD_OPTION_NOTIFY_CONNECTION: keeps the counts and the header deadline. */
void conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                 enum MHD_ConnectionNotificationCode code);
/* r's headers are complete (its first call) / r is finished. */
void conn_request_begin(struct req *r);
void conn_request_end(struct req *r);
/* The request in progress on c, NULL while its headers are not all in. */
struct req *conn_request(struct MHD_Connection *c);
/* A whole number of seconds (1 to 3600) from a test-only variable, else def. */
long conn_test_seconds(const char *name, long def);
/* Seconds an idle connection is kept (30; shorter only in tests). */
unsigned conn_idle_timeout(void);

/* ---- logins (login_limit.c) ---- */

/* Sets the limit (and reads the test-only USERSD_TEST_LOGIN_WINDOW). */
void login_limit_configure(int max_failures);
/* The seconds until username may try to log in from ip again (429), or 0.
 * Counts nothing: the early refusal, before a check is queued. */
long login_limit_check(const char *ip, const char *username);
/* Right before a password check: 0 with t filled when it may run (waiting
 * first while only running checks stand between it and the limit), else
 * the seconds to wait (429). */
long login_limit_begin(const char *ip, const char *username, struct login_ticket *t);
/* Right after it: a failure is counted for the pair and the address; a
 * success starts the pair afresh; an undecided one (database away) counts
 * nothing. */
void login_limit_end(struct login_ticket *t, enum login_outcome outcome);
/* Starts the threads that run password checks (at most threads at once). */
int login_pool_start(int threads, struct usersd_err *err);
/* Runs what is queued, then stops them (before MHD_stop_daemon). */
void login_pool_stop(void);
/* Suspends r's connection and queues run(r, core) for a pool thread (its
 * own handle); then reply(r) runs in r's worker with r->job.rc set. */
void login_pool_submit(struct req *r, enum usersd_code (*run)(struct req *r, struct usersd *core),
                       handler_fn reply);

/* ---- libmicrohttpd's own error replies (mhd_errors.c) ---- */

/* Finds the library's functions that mhd_errors.c stands in for; false
 * (with msg) when they cannot be found: its replies then stay HTML. */
bool mhd_errors_init(char *msg, size_t size);
/* The table that follows each connection's request line (false when out of
 * memory: such lines then stay unanswered). Once, before serving. */
bool mhd_errors_lines_init(void);
/* fd's next bytes begin a request (a new connection, or one whose request
 * ended) / its request line is in (usersd has the request). */
void mhd_errors_line_expect(int fd);
void mhd_errors_line_seen(int fd);

/* ---- per-thread blocks (thread_block.c) ---- */

/* State a thread keeps for itself that others must still reach (a scrape,
 * a flush, shutdown): a block starts with struct thread_block, and each
 * kind of block has one list. Walk a list with its lock held. */
struct thread_block {
    struct thread_block *next;
};
struct thread_blocks {
    pthread_mutex_t lock;
    struct thread_block *head;
};
#define THREAD_BLOCKS_INIT                                                                         \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, NULL                                                            \
    }
/* A new zeroed block of size bytes, set up by init (may be NULL) and then
 * put on list; NULL when out of memory. */
void *thread_block_new(struct thread_blocks *list, size_t size, void (*init)(void *block));
/* Frees every block of list, passing each to done (may be NULL) first. */
void thread_blocks_free(struct thread_blocks *list, void (*done)(void *block));

/* ---- list pages kept while the database is unchanged (reply_cache.c) ---- */

/* Replies with the page kept under key if the database's version is still
 * the one it was rendered at, and returns true. Otherwise returns false
 * with *versioned telling whether the database has a version and *version
 * the one to store a new page under. */
bool reply_cache_serve(struct req *r, const char *key, uint64_t *version, bool *versioned);
/* Keeps text (copied) as the page p under key. A page showing the caller
 * who is not staff (their own email) is not kept. */
void reply_cache_store(const struct req *r, const char *key, uint64_t version,
                       const struct usersd_page *p, const char *text, size_t len);
/* Frees every thread's pages (at shutdown). */
void reply_cache_free(void);

void h_login(struct req *r);
void h_logout(struct req *r);
void h_set_status(struct req *r);
void h_get_status(struct req *r);
void h_online(struct req *r);
void h_bulk_status(struct req *r);
void h_list(struct req *r);
void h_stats(struct req *r);
void h_user_create(struct req *r);
void h_user_get(struct req *r);
void h_user_patch(struct req *r);
void h_user_delete(struct req *r);
void h_me(struct req *r);
void h_heartbeat(struct req *r);
void h_me_status(struct req *r);
void h_healthz(struct req *r);
void h_stream(struct req *r);
void h_metrics(struct req *r);
void h_schema(struct req *r);
void h_changes(struct req *r);
void h_logout_all(struct req *r);
void h_my_sessions(struct req *r);
void h_my_session_delete(struct req *r);
void h_user_sessions(struct req *r);
void h_user_sessions_delete(struct req *r);
void h_my_message_put(struct req *r);
void h_my_message_delete(struct req *r);
void h_user_message_put(struct req *r);
void h_user_message_delete(struct req *r);
void h_my_dnd_put(struct req *r);
void h_my_dnd_delete(struct req *r);
void h_user_dnd_put(struct req *r);
void h_user_dnd_delete(struct req *r);
void h_presence_history(struct req *r);
void h_online_history(struct req *r);
/* Clears the session cookie in the reply being built. */
void reply_clear_cookie(struct req *r);

/* ---- the dashboard (h_dashboard.c) ---- */

/* One embedded file of web/ (generated by cmake/embed_web.cmake). */
struct web_file {
    const char *path; /* under /dashboard/, with its content hash; "index.html" is the page */
    const char *type;
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted */
};
extern const struct web_file web_files[];
extern const size_t web_nfiles;
/* The files of clients/js/ (API.md §14), by their own names. */
extern const struct web_file client_files[];
extern const size_t client_nfiles;

/* Answers the dashboard's paths ("/", "/dashboard/..."), kept out of the
 * API's route table; returns false, sending nothing, for any other path
 * or when the dashboard is off. */
bool dashboard_serve(struct req *r, const char *url);
/* GET /client/usersd.js and /client/usersd.d.ts (route rows, anyone). */
void h_client(struct req *r);

/* ---- group commit (writer.c) ---- */

/* Starts the writer thread with its own handle; -1 with err filled. */
int writer_start(struct usersd_err *err);
/* Applies what is queued, then stops (before MHD_stop_daemon). */
void writer_stop(void);
/* Queues a set_status for the writer and suspends r's connection; the
 * access handler is called again when it is done (then: writer_reply). */
void writer_submit(struct req *r, int64_t user_id, enum usersd_status status, enum job_kind kind,
                   unsigned flags);
/* Sends the reply of a finished job. */
void writer_reply(struct req *r);
/* Queues a refresh (API.md §7: a request's activity, a heartbeat of a user
 * already online): the user seen and the session used at `at`, written
 * with the writer's next batch (usersd_refresh_many), or on its own within
 * 100 ms (writer.c: REFRESH_DELAY_US; and within WRITER_REFRESH_GRACE_US);
 * the request does not wait. */
void writer_activity(int64_t user_id, int64_t session_id, int64_t at);
/* Waits (at most timeout_us) until every refresh queued before the call
 * has been applied: decay runs after it, so that it never takes away a
 * user whose refresh this process has answered. */
void writer_wait_refreshes(int64_t timeout_us);
/* How long decay waits past its thresholds for the refreshes of other
 * processes on their way (usersd_config.decay_grace_us): each writer
 * applies them within REFRESH_DELAY_US (100 ms) and a flush unless its
 * database stalls; this process's own are waited for
 * (writer_wait_refreshes). */
#define WRITER_REFRESH_GRACE_US 500000

/* ---- who follows whom (subs.c), for ?ids= streams ---- */

struct subs;
struct subs *subs_new(void);
void subs_free(struct subs *m);
/* Adds stream to user's followers; false when out of memory. */
bool subs_add(struct subs *m, int64_t user, void *stream);
void subs_remove(struct subs *m, int64_t user, void *stream);
/* user's followers (*n of them), valid until the next add or remove. */
void *const *subs_get(struct subs *m, int64_t user, size_t *n);

/* ---- the presence thread and streams (sse.c) ---- */

/* Starts the thread that reads the change log, runs decay and feeds the
 * streams. -1 with err filled on failure. */
int sse_start(struct usersd_err *err);
/* Stops the thread and ends every stream (call before MHD_stop_daemon). */
void sse_stop(void);
/* Frees what sse_start made (after MHD_stop_daemon). */
void sse_release(void);
/* Tells the thread the log may have grown (after a local write). */
void sse_notify(void);
long sse_open_streams(void);
void h_readyz(struct req *r);

/* ---- the database watch (h_ops.c) ---- */

/* Starts the thread that checks the database (PostgreSQL only; a no-op
 * on SQLite); -1 with err filled. */
int ops_watch_start(struct usersd_err *err);
/* Stops it (last: every other thread's calls fail at once meanwhile). */
void ops_watch_stop(void);

#endif
