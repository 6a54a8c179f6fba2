/*
 * usersd.h — the public API of libusersd: user management with online
 * presence tracking.
 *
 * One handle (struct usersd) is one connection to one database. A handle is
 * not thread-safe: open one per thread (the server does, one per worker).
 * Handles on the same database may live in many threads and processes.
 *
 * Every call that can fail returns an enum usersd_code (USERSD_OK = 0) and,
 * when given a non-NULL struct usersd_err, fills it with a sentence a person
 * understands. Output structs are caller-owned storage that the call fills;
 * arrays the library allocates are freed with the matching *_free function.
 * Every free/close function accepts NULL.
 */
#ifndef USERSD_H
#define USERSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define USERSD_API __attribute__((visibility("default")))
#else
#define USERSD_API
#endif

#define USERSD_VERSION "0.1.0"

/* ---- Error codes ------------------------------------------------------ */

/* X(name, http status, default message). The enum, usersd_strerror() and the
 * HTTP status mapping are all generated from this one table. */
#define USERSD_ERRORS(X)                                                                           \
    X(OK, 200, "success")                                                                          \
    X(EINVAL, 400, "invalid input")                                                                \
    X(EAUTH, 401, "authentication credentials were not provided or are invalid")                   \
    X(EFORBIDDEN, 403, "you do not have permission to perform this action")                        \
    X(ENOTFOUND, 404, "not found")                                                                 \
    X(ECONFLICT, 409, "already exists")                                                            \
    X(EGONE, 410, "the requested history is no longer available")                                  \
    X(ENOMEM, 500, "out of memory")                                                                \
    X(EINTERNAL, 500, "internal error")                                                            \
    X(EDB, 503, "the database is unavailable")

enum usersd_code {
#define USERSD_X_ENUM(name, status, msg) USERSD_##name,
    USERSD_ERRORS(USERSD_X_ENUM)
#undef USERSD_X_ENUM
        USERSD_NCODES
};

/* A failure's code, the message to show, and for validation errors the name
 * of the offending field ("" when the error is not about one field). */
struct usersd_err {
    enum usersd_code code;
    char field[32];
    char msg[256];
};

/* Static string; never NULL (unknown codes give "unknown error"). */
USERSD_API const char *usersd_strerror(enum usersd_code code);
/* The HTTP status that answers this code (500 for unknown codes). */
USERSD_API int usersd_http_status(enum usersd_code code);

/* ---- Presence --------------------------------------------------------- */

enum usersd_status { USERSD_OFFLINE = 0, USERSD_AWAY = 1, USERSD_ONLINE = 2 };

/* "online"/"away"/"offline"; static string. */
USERSD_API const char *usersd_status_name(enum usersd_status s);
/* Parses exactly "online", "away" or "offline"; returns false otherwise. */
USERSD_API bool usersd_status_parse(const char *s, enum usersd_status *out);

/* ---- Users ------------------------------------------------------------ */

#define USERSD_USERNAME_MAX 150 /* characters (ASCII) */
#define USERSD_NAME_MAX 150     /* characters (UTF-8) */
#define USERSD_EMAIL_MAX 254    /* characters (UTF-8) */
#define USERSD_PASSWORD_MIN 8
#define USERSD_PASSWORD_MAX 1024
#define USERSD_SEARCH_MAX 200
#define USERSD_STATUS_TEXT_MAX 100 /* a status message, characters */
#define USERSD_NULL_TIME INT64_MIN /* a timestamp that is not set (JSON null) */

/* A user as stored. Strings are NUL-terminated UTF-8 held inline, so a user
 * is plain data: copy it, keep it, no free needed. Times are microseconds
 * since the Unix epoch, UTC; last_seen is USERSD_NULL_TIME when never seen. */
struct usersd_user {
    int64_t id;
    char username[USERSD_USERNAME_MAX + 1];
    char email[USERSD_EMAIL_MAX * 4 + 1];
    char first_name[USERSD_NAME_MAX * 4 + 1];
    char last_name[USERSD_NAME_MAX * 4 + 1];
    bool is_active;
    bool is_staff;
    int64_t date_joined;
    enum usersd_status online_status;
    int64_t last_seen;
    /* The status message ("In a meeting until 3"): "" when there is none
     * (or it has ended: the library never returns an ended one), and its
     * end, USERSD_NULL_TIME for none. */
    char status_text[USERSD_STATUS_TEXT_MAX * 4 + 1];
    int64_t status_expires;
    /* The status was set by hand (USERSD_STATUS_MANUAL: away, or offline =
     * invisible): nothing automatic changes it, nor last_seen, until a
     * status is set again. Only the user themself and staff may be told. */
    bool status_manual;
    /* Do not disturb: on or off, and its end (USERSD_NULL_TIME: until
     * turned off). The library never returns an ended one. */
    bool dnd;
    int64_t dnd_until;
};

/* The model method is_online: status is online. */
USERSD_API bool usersd_user_is_online(const struct usersd_user *user);

/* Fields to create or change a user. A NULL string or a negative boolean
 * means "not given": on create the default applies (email "", names "",
 * is_active true, is_staff false), on update the field keeps its value.
 * Pointers are borrowed for the duration of the call. */
struct usersd_user_fields {
    const char *username;
    const char *password;
    const char *email;
    const char *first_name;
    const char *last_name;
    int is_active; /* -1 not given, 0 false, 1 true */
    int is_staff;
};
/* Sets every field to "not given". */
USERSD_API void usersd_user_fields_init(struct usersd_user_fields *f);

/* ---- Lists ------------------------------------------------------------ */

#define USERSD_PER_PAGE_DEFAULT 50
#define USERSD_PER_PAGE_MAX 100

enum usersd_order {
    USERSD_ORDER_ID = 0,
    USERSD_ORDER_USERNAME,
    USERSD_ORDER_DATE_JOINED,
    USERSD_ORDER_LAST_SEEN
};

/* The management list query. Negative filters mean "any". search is
 * borrowed; NULL or "" means no search. */
struct usersd_list_query {
    int online_status; /* -1 any, else enum usersd_status */
    int is_active;     /* -1 any, 0, 1 */
    int is_staff;      /* -1 any, 0, 1 */
    const char *search;
    enum usersd_order order;
    bool descending;
    int page;     /* >= 1 */
    int per_page; /* 1..USERSD_PER_PAGE_MAX (larger is clamped) */
};
USERSD_API void usersd_list_query_init(struct usersd_list_query *q);

/* One page of users. users is allocated by the library (count entries);
 * release it with usersd_page_free(). */
struct usersd_page {
    struct usersd_user *users;
    size_t count;
    int page;
    int per_page;
    int64_t total_count; /* all rows matching, not only this page */
};
USERSD_API void usersd_page_free(struct usersd_page *p);
/* max(1, ceil(total_count / per_page)). */
USERSD_API int64_t usersd_page_total_pages(const struct usersd_page *p);

struct usersd_stats {
    int64_t total_users, active_users, inactive_users, staff_users;
    int64_t online_users, away_users, offline_users;
    double online_ratio; /* online/total*100 rounded to 2 decimals; 0 if no users */
};

/* ---- Progress of long operations --------------------------------------- */

/* What a long operation is doing, for a program that wants to show it (the
 * library never prints). Reported to the usersd_config's progress callback,
 * from the thread that made the call, at the start of each step, every few
 * thousand rows and at its end (done == total):
 *   COPY    steps "users", "sessions", "history", "minutes" (rows), then
 *           "indexes" (indexes and counters rebuilt on the destination);
 *   SEED    steps "users" (rows), then "indexes";
 *   MIGRATE step "migration": done migrations of total, before each one
 *           runs and once more (done == total) when all are applied.
 * total is 0 when unknown. step is a static string; p lives for the call. */
enum usersd_task { USERSD_TASK_COPY, USERSD_TASK_SEED, USERSD_TASK_MIGRATE };
struct usersd_progress {
    enum usersd_task task;
    const char *step;
    int64_t done, total;
};
typedef void (*usersd_progress_fn)(void *ctx, const struct usersd_progress *p);

/* ---- Opening ---------------------------------------------------------- */

/* Returns the current time in microseconds since the epoch (UTC). */
typedef int64_t (*usersd_clock_fn)(void *ctx);

struct usersd_config {
    const char *db_url;          /* "sqlite:PATH" (borrowed during usersd_open) */
    int64_t away_after_s;        /* decay online→away after this idle time; 0 off */
    int64_t offline_after_s;     /* decay online/away→offline; 0 off */
    int64_t activity_interval_s; /* min seconds between activity updates (60; 0: every time) */
    int64_t changes_retention_s; /* keep the change log this long (3600) */
    usersd_clock_fn clock;       /* NULL: the real clock */
    void *clock_ctx;
    int64_t session_ttl_s; /* a session unused this long expires (2592000 = 30 days; 0 never) */
    int64_t history_days;  /* keep presence history this long (30; 0: keep none) */
    int64_t cache_kib;     /* the database's page cache for this handle (0: SQLite's 2 MiB) */
    /* Told how migrations (usersd_open), usersd_copy (into this handle)
     * and usersd_seed progress; NULL: nobody is told. */
    usersd_progress_fn progress;
    void *progress_ctx;
    /* Decay waits this much longer past each threshold (0): the most a
     * refresh may wait in a queue before it is written (usersd_refresh), so
     * that decay never takes away a user whose refresh is on its way. */
    int64_t decay_grace_us;
    /* SQLite: this handle's commits never checkpoint the WAL themselves
     * (by default the commit that fills 10,000 pages does, and every write
     * queued behind it waits); the caller runs usersd_checkpoint from a
     * thread of its own instead (false). */
    bool checkpoint_apart;
};
/* Defaults: sqlite:usersd.db, 600, 3600, 60, 3600, real clock, 2592000, 30,
 * no progress callback, no decay grace. */
USERSD_API void usersd_config_init(struct usersd_config *cfg);

struct usersd;

/* Copies what the WAL holds into the database file without waiting for
 * any reader or writer (SQLite's passive checkpoint; nothing to do on
 * PostgreSQL, where both counts are 0). For a thread of its own when the
 * handles were opened with checkpoint_apart. *wal_frames gets the pages
 * the WAL holds, *left those not yet copied (either may be NULL); the WAL
 * starts again from its beginning at the first write after a checkpoint
 * that left none. */
USERSD_API enum usersd_code usersd_checkpoint(struct usersd *u, int64_t *wal_frames, int64_t *left,
                                              struct usersd_err *err);

/* Opens the database named by cfg->db_url, creating or upgrading its schema.
 * On success *out is a new handle owned by the caller (usersd_close).
 * Errors: EINVAL (bad URL), EDB (cannot open or migrate). */
USERSD_API enum usersd_code usersd_open(struct usersd **out, const struct usersd_config *cfg,
                                        struct usersd_err *err);
USERSD_API void usersd_close(struct usersd *u);
/* The handle's current time (its configured clock). */
USERSD_API int64_t usersd_now(const struct usersd *u);
/* Checks that the database answers. EDB when it does not. */
USERSD_API enum usersd_code usersd_ping(struct usersd *u, struct usersd_err *err);

/* ---- Reachability (PostgreSQL) ----------------------------------------- */

/* The database as this process sees it, kept by all of its handles. On
 * PostgreSQL a round trip that gets no answer in 4.5 s, or a connection
 * that cannot be made, makes it down; a connection made (to whichever
 * host of a multi-host URL is the primary now) makes it up again, and
 * every other handle then drops its old connection and reconnects on its
 * next call. SQLite is always up. */
struct usersd_db_state {
    bool up;
    int64_t outages;    /* times it went down */
    int64_t reconnects; /* connections re-established after one was lost */
    char detail[200];   /* why the last outage began: hosts, ports and libpq's
                           words, for the operator's log, never for clients */
};
USERSD_API void usersd_db_state(struct usersd_db_state *out);
/* Checks that the database answers u within timeout_ms, reconnecting u
 * first when its connection is gone (then the connection's own
 * connect_timeout applies per host). From its first call on, it is the
 * only call that reconnects while the database is down: every other call
 * fails at once (EDB) and the ones waiting on the database give up, so
 * one thread calling it every few hundred milliseconds (usersd serve
 * does) bounds every wait. SQLite: usersd_ping. */
USERSD_API enum usersd_code usersd_db_check(struct usersd *u, int timeout_ms,
                                            struct usersd_err *err);

/* ---- User management (the service) ------------------------------------ */

/* Creates a user. username and password are required. Validation errors are
 * EINVAL with err->field set; a duplicate username or email is ECONFLICT.
 * On success *out (may be NULL) holds the new user. */
USERSD_API enum usersd_code usersd_user_create(struct usersd *u, const struct usersd_user_fields *f,
                                               struct usersd_user *out, struct usersd_err *err);
/* ENOTFOUND when no user has this id. */
USERSD_API enum usersd_code usersd_user_get(struct usersd *u, int64_t id, struct usersd_user *out,
                                            struct usersd_err *err);
/* Changes the given fields (same rules as create). out may be NULL. A new
 * password ends every session of the user; deactivation ends them all and
 * the user goes offline (usersd_user_update_keep keeps one session). */
USERSD_API enum usersd_code usersd_user_update(struct usersd *u, int64_t id,
                                               const struct usersd_user_fields *f,
                                               struct usersd_user *out, struct usersd_err *err);
/* usersd_user_update, except that a password change keeps the session
 * keep_session (the caller's own, when users change their own password;
 * 0 keeps none). Deactivation still ends every session. */
USERSD_API enum usersd_code usersd_user_update_keep(struct usersd *u, int64_t id,
                                                    const struct usersd_user_fields *f,
                                                    int64_t keep_session, struct usersd_user *out,
                                                    struct usersd_err *err);
/* Deletes the user, its sessions and its presence. ENOTFOUND if absent. */
USERSD_API enum usersd_code usersd_user_delete(struct usersd *u, int64_t id,
                                               struct usersd_err *err);
/* Counts users; *out receives the count. */
USERSD_API enum usersd_code usersd_user_count(struct usersd *u, int64_t *out,
                                              struct usersd_err *err);
/* The management list. On success *out is filled (usersd_page_free). */
USERSD_API enum usersd_code usersd_user_list(struct usersd *u, const struct usersd_list_query *q,
                                             struct usersd_page *out, struct usersd_err *err);
USERSD_API enum usersd_code usersd_stats(struct usersd *u, struct usersd_stats *out,
                                         struct usersd_err *err);

/* ---- Presence (the seed's service and model methods) ------------------ */

/* set_user_online_status: calls the model method matching status (so
 * last_seen moves on online and offline, not on away). out may be NULL.
 * A status set this way (and by the model methods below) is not manual:
 * it ends a manual status. */
USERSD_API enum usersd_code usersd_set_status(struct usersd *u, int64_t id,
                                              enum usersd_status status, struct usersd_user *out,
                                              struct usersd_err *err);
/* How a status is set (usersd_set_status_ex, usersd_status_job.flags). */
enum {
    /* A manual status (API.md §12): away or offline only (offline is
     * "invisible"); kept against everything automatic until a status is
     * set again. Without it, a set status ends a manual one. */
    USERSD_STATUS_MANUAL = 1u << 0,
    /* An automatic write (login, a heartbeat): a manual status stays, and
     * so does its last_seen; nothing is written. */
    USERSD_STATUS_AUTO = 1u << 1,
};
/* usersd_set_status with flags (0 is usersd_set_status itself). EINVAL
 * (field "manual") for USERSD_STATUS_MANUAL with online (online is never
 * manual) or with USERSD_STATUS_AUTO. out (may be NULL) has status_manual. */
USERSD_API enum usersd_code usersd_set_status_ex(struct usersd *u, int64_t id,
                                                 enum usersd_status status, unsigned flags,
                                                 struct usersd_user *out, struct usersd_err *err);
/* usersd_set_status for callers that show only the presence (the server's
 * set-status and heartbeat replies): when the status does not change, out
 * holds only id, online_status and last_seen (the rest zero) and the
 * user's row is not read. */
USERSD_API enum usersd_code usersd_set_status_presence(struct usersd *u, int64_t id,
                                                       enum usersd_status status,
                                                       struct usersd_user *out,
                                                       struct usersd_err *err);
/* One write of usersd_set_status_many. session: the caller's own session
 * when the write is its own activity (a heartbeat, its own status), else
 * NULL; its last_used (and last_seen when the status leaves it old) then
 * move as usersd_session_activity would, and *session is updated. out and
 * err are the caller's; rc is filled. */
struct usersd_status_job {
    int64_t user_id;
    enum usersd_status status;
    struct usersd_session *session;
    struct usersd_user *out; /* as usersd_set_status_presence fills it */
    struct usersd_err *err;
    enum usersd_code rc;
    unsigned flags; /* as usersd_set_status_ex's */
};
/* usersd_set_status_presence for n users at once (the server's group
 * commit), in the order given, each atomic on its own and failing alone:
 * an unknown user is that job's ENOTFOUND, the others go on. Inside a
 * batch (usersd_batch_begin), nothing is durable before its commit.
 * PostgreSQL sends every write before reading any result (one round trip
 * for the lot). Returns USERSD_OK when every job has its own rc, or the
 * failure that stopped them all (then also each job's rc). */
USERSD_API enum usersd_code usersd_set_status_many(struct usersd *u, struct usersd_status_job *jobs,
                                                   size_t n, struct usersd_err *err);
/* Model methods. Each updates the stored user; out (may be NULL) receives
 * the user as stored afterwards. */
USERSD_API enum usersd_code usersd_set_online(struct usersd *u, int64_t id, struct usersd_user *out,
                                              struct usersd_err *err);
USERSD_API enum usersd_code usersd_set_away(struct usersd *u, int64_t id, struct usersd_user *out,
                                            struct usersd_err *err);
USERSD_API enum usersd_code usersd_set_offline(struct usersd *u, int64_t id,
                                               struct usersd_user *out, struct usersd_err *err);
USERSD_API enum usersd_code usersd_update_last_seen(struct usersd *u, int64_t id,
                                                    struct usersd_user *out,
                                                    struct usersd_err *err);
/* get_user_online_status: the user (status, last_seen, username). */
#define usersd_get_status usersd_user_get
/* get_online_users: online users, newest last_seen first, ties by id.
 * page >= 1, per_page clamped to 1..100. */
USERSD_API enum usersd_code usersd_online_users(struct usersd *u, int page, int per_page,
                                                struct usersd_page *out, struct usersd_err *err);
/* The users among ids (n <= 100), in the order asked, unknown ids left out,
 * duplicates once. out->total_count is the number found. */
USERSD_API enum usersd_code usersd_users_by_ids(struct usersd *u, const int64_t *ids, size_t n,
                                                struct usersd_page *out, struct usersd_err *err);
/* Activity: moves last_seen to now when it is older than the configured
 * activity interval (or null); the status is unchanged. *user is updated in
 * place when a write happened. (usersd_session_activity also moves the
 * session's last_used.) */
USERSD_API enum usersd_code usersd_touch(struct usersd *u, struct usersd_user *user,
                                         struct usersd_err *err);
/* A refresh (API.md §7) decided earlier and written now, in bulk: the
 * user's last_seen, and the session's last_used when session_id > 0, move
 * to `at` where they are null or older than `at` less the activity
 * interval; the status never changes. The server answers a refresh (a
 * heartbeat of a user already online, a request's activity) at once and
 * queues it for its writer, which applies the queue in one transaction. */
USERSD_API enum usersd_code usersd_refresh(struct usersd *u, int64_t user_id, int64_t session_id,
                                           int64_t at, struct usersd_err *err);
/* One refresh: user_id seen at `at`, through session_id when > 0. */
struct usersd_refresh {
    int64_t user_id, session_id, at;
};
/* n refreshes at once, as usersd_refresh each: one transaction (inside a
 * batch, or its own), one statement on PostgreSQL. A user or session
 * listed twice moves to the later `at`; unknown ids are skipped. */
USERSD_API enum usersd_code usersd_refresh_many(struct usersd *u, const struct usersd_refresh *r,
                                                size_t n, struct usersd_err *err);
/* True when activity by user through session s (may be NULL) would write:
 * last_seen or the session's last_used is older than the activity
 * interval (or last_seen is null). */
USERSD_API bool usersd_activity_due(const struct usersd *u, const struct usersd_user *user,
                                    int64_t session_last_used);

/* ---- Decay and the change log ------------------------------------------ */

/* Automatic decay, so that "online" is never stale: online users whose
 * last_seen is older than away_after_s become away; online or away users
 * older than offline_after_s become offline. A threshold of 0 is off. A
 * user never seen (last_seen null, e.g. set away by staff) is not decayed:
 * there is no activity to be older than. Each transition is logged like any other; last_seen does
 * not move. Safe to run from many processes at once: each change is applied and logged by exactly
 * one of them. *changed (may be NULL) receives the count. */
USERSD_API enum usersd_code usersd_decay(struct usersd *u, int64_t *changed,
                                         struct usersd_err *err);

/* What a log entry records. Presence changes are what the stream and the
 * changes endpoint show; the others ride the same log so that every
 * process sharing the database learns of them in order. */
enum usersd_change_kind {
    USERSD_CHANGE_PRESENCE = 0,       /* online_status changed */
    USERSD_CHANGE_STATUS_MESSAGE = 1, /* the status message was set, cleared or ended */
    USERSD_CHANGE_SESSION_END = 2,    /* session_id (0: every session of user_id) ended */
    USERSD_CHANGE_DND = 3,            /* do not disturb was set, cleared or ended */
};

/* One logged change (written in the same transaction as the change). seq
 * increases with every entry; usersd_changes_since returns presence
 * changes only, so its seqs need not be consecutive. */
struct usersd_change {
    int64_t seq;
    int64_t user_id;
    char username[USERSD_USERNAME_MAX + 1];
    enum usersd_status online_status;
    int64_t last_seen;
    int64_t at; /* when the change happened */
    enum usersd_change_kind kind;
    int64_t session_id; /* SESSION_END: the session, 0 for all of the user's */
    /* STATUS_MESSAGE: the new message ("" when cleared) and its end */
    char status_text[USERSD_STATUS_TEXT_MAX * 4 + 1];
    int64_t status_expires;
    /* PRESENCE and DND: the user's do not disturb as it was then (DND: as
     * it became); dnd_until USERSD_NULL_TIME: no end. */
    bool dnd;
    int64_t dnd_until;
};

/* A batch of changes; items allocated by the library (usersd_changes_free). */
struct usersd_changes {
    struct usersd_change *items;
    size_t count;
    int64_t next_since; /* pass as since to continue */
};
USERSD_API void usersd_changes_free(struct usersd_changes *c);

#define USERSD_CHANGES_LIMIT_DEFAULT 100
#define USERSD_CHANGES_LIMIT_MAX 1000

/* The changes with seq > since, oldest first, at most limit (clamped to
 * 1..1000). EGONE when changes after since were already pruned: the caller
 * must resync (read the current state, then continue from usersd_changes_head). */
USERSD_API enum usersd_code usersd_changes_since(struct usersd *u, int64_t since, int limit,
                                                 struct usersd_changes *out,
                                                 struct usersd_err *err);
/* Like usersd_changes_since, but every kind of entry (the server's stream
 * hub reads these: presence changes and status messages for the streams,
 * session ends to close the streams of a revoked session). */
USERSD_API enum usersd_code usersd_log_since(struct usersd *u, int64_t since, int limit,
                                             struct usersd_changes *out, struct usersd_err *err);
/* The newest seq (0 when nothing was ever logged). */
USERSD_API enum usersd_code usersd_changes_head(struct usersd *u, int64_t *seq,
                                                struct usersd_err *err);
/* Waits up to timeout_ms for a change logged by another connection, where
 * the database can say so (PostgreSQL LISTEN/NOTIFY); *notified tells.
 * Returns USERSD_EINVAL at once when the database cannot wait (SQLite):
 * poll usersd_changes_since instead. Either way the log stays the truth. */
USERSD_API enum usersd_code usersd_changes_wait(struct usersd *u, int timeout_ms, bool *notified,
                                                struct usersd_err *err);
/* Like usersd_changes_since, but presence changes, status messages and
 * do not disturb: what a stream replays after Last-Event-ID. */
USERSD_API enum usersd_code usersd_events_since(struct usersd *u, int64_t since, int limit,
                                                struct usersd_changes *out, struct usersd_err *err);
/* Deletes changes older than the configured retention. */
USERSD_API enum usersd_code usersd_changes_prune(struct usersd *u, struct usersd_err *err);

/* ---- Status messages ----------------------------------------------------- */

/* Sets user id's status message: text of 1 to USERSD_STATUS_TEXT_MAX
 * characters, no control characters (EINVAL, field "text"), ending at
 * expires_at (USERSD_NULL_TIME: no end; else it must be in the future:
 * EINVAL, field "expires_at"). Logged for the streams. out (may be NULL)
 * receives the user. ENOTFOUND for an unknown user. */
USERSD_API enum usersd_code usersd_status_message_set(struct usersd *u, int64_t id,
                                                      const char *text, int64_t expires_at,
                                                      struct usersd_user *out,
                                                      struct usersd_err *err);
/* Clears it (logged only when there was one). ENOTFOUND for an unknown user. */
USERSD_API enum usersd_code usersd_status_message_clear(struct usersd *u, int64_t id,
                                                        struct usersd_user *out,
                                                        struct usersd_err *err);
/* Clears every message whose end has come, each logged once however many
 * processes sweep at once; *n (may be NULL) receives how many. */
USERSD_API enum usersd_code usersd_status_message_expire(struct usersd *u, int64_t *n,
                                                         struct usersd_err *err);

/* ---- Do not disturb (API.md §12) ------------------------------------------ */

#define USERSD_DND_MINUTES_MAX 10080 /* a week */

/* Turns do not disturb on for user id, ending at until (USERSD_NULL_TIME:
 * none) or after minutes (1 to USERSD_DND_MINUTES_MAX; < 0: not given).
 * EINVAL naming the field: minutes out of range ("minutes"), both given
 * ("minutes"), until not in the future ("until"). Logged for the streams
 * (USERSD_CHANGE_DND); the status does not change. out (may be NULL)
 * receives the user. ENOTFOUND for an unknown user. */
USERSD_API enum usersd_code usersd_dnd_set(struct usersd *u, int64_t id, int64_t until, int minutes,
                                           struct usersd_user *out, struct usersd_err *err);
/* Turns it off (logged only when it was on). ENOTFOUND for an unknown user. */
USERSD_API enum usersd_code usersd_dnd_clear(struct usersd *u, int64_t id, struct usersd_user *out,
                                             struct usersd_err *err);
/* Ends every do not disturb whose end has come, each logged once however
 * many processes sweep at once; *n (may be NULL) receives how many. */
USERSD_API enum usersd_code usersd_dnd_expire(struct usersd *u, int64_t *n, struct usersd_err *err);

/* How many users have a manual status, and how many are in do not disturb
 * (ended ones not yet swept included). Read through partial indexes. */
USERSD_API enum usersd_code usersd_presence_counts(struct usersd *u, int64_t *manual, int64_t *dnd,
                                                   struct usersd_err *err);

/* ---- Presence history ---------------------------------------------------- */

#define USERSD_UNKNOWN (-1)                  /* an interval of history whose status is not known */
#define USERSD_HISTORY_SPAN_MAX (31 * 86400) /* seconds a history window may span */
#define USERSD_HISTORY_POINTS_MAX 1000

/* One stretch of a user's history: status (an enum usersd_status, or
 * USERSD_UNKNOWN) from `from` to `to` (microseconds). */
struct usersd_interval {
    int status;
    int64_t from, to;
};

/* A user's presence over [from, to): intervals in time order, clipped to
 * the window, adjacent ones never of the same status, together covering the
 * window; totals[i] the time in status i (0 offline, 1 away, 2 online, 3
 * unknown), summing to to - from. Time before the history's known start
 * (the oldest kept change, or when the user joined) and after now is
 * unknown. items allocated by the library (usersd_history_free). */
struct usersd_history {
    int64_t user_id, from, to;
    struct usersd_interval *items;
    size_t count;
    int64_t totals[4];
};
USERSD_API void usersd_history_free(struct usersd_history *h);
/* The presence history of user id over [from, to). EINVAL (field "from")
 * unless from < to and to - from <= USERSD_HISTORY_SPAN_MAX seconds;
 * ENOTFOUND for an unknown user. Reads only that user's history. */
USERSD_API enum usersd_code usersd_presence_history(struct usersd *u, int64_t id, int64_t from,
                                                    int64_t to, struct usersd_history *out,
                                                    struct usersd_err *err);

/* Users by status over time: counts at each point's instant, online_max the
 * most users online at any moment of its bucket (to the minute); known is
 * false before history starts (and where it was not kept). */
struct usersd_count_point {
    int64_t at;
    bool known;
    int64_t online, away, offline, online_max;
};
struct usersd_online_history {
    int64_t from, to, bucket_s;
    struct usersd_count_point *points;
    size_t count;
};
USERSD_API void usersd_online_history_free(struct usersd_online_history *h);
/* Points every bucket_s seconds (60, 300, 3600 or 86400; 0 picks the
 * smallest that gives at most USERSD_HISTORY_POINTS_MAX), the first at from
 * rounded down to a whole bucket (UTC), then one every bucket while before
 * to. EINVAL (field "bucket") for another bucket or too many points,
 * (field "from") for a bad window. Reads the per-minute table, never the
 * changes. */
USERSD_API enum usersd_code usersd_online_history(struct usersd *u, int64_t from, int64_t to,
                                                  int64_t bucket_s,
                                                  struct usersd_online_history *out,
                                                  struct usersd_err *err);
/* Once a minute (the server's sweep): writes this minute's counts from the
 * counters (once, however many processes ask) and closes the last minute's
 * peak. Nothing when history is off. */
USERSD_API enum usersd_code usersd_history_sample(struct usersd *u, struct usersd_err *err);
/* Deletes history older than history_days, a few thousand rows per
 * transaction through the time index; marks where the known history now
 * starts. With history off, marks it unknown from now on. */
USERSD_API enum usersd_code usersd_history_prune(struct usersd *u, struct usersd_err *err);

/* A number that changes whenever the database may have changed: any commit,
 * by this handle, another handle or another process. Equal numbers mean
 * nothing changed in between, so a reply built from the database may be
 * reused. EINVAL where the database cannot tell cheaply (PostgreSQL). */
USERSD_API enum usersd_code usersd_data_version(struct usersd *u, uint64_t *version,
                                                struct usersd_err *err);

/* ---- Read scope ---------------------------------------------------------- */

/* The reads between usersd_read_begin and usersd_read_end see one snapshot
 * and take the database's read lock once (SQLite: one read transaction
 * instead of one per statement). Make no writes inside: a write there may
 * fail with EDB when another connection wrote meanwhile. Nesting is not
 * supported. usersd_read_end takes a handle with no open scope too. */
USERSD_API enum usersd_code usersd_read_begin(struct usersd *u, struct usersd_err *err);
USERSD_API void usersd_read_end(struct usersd *u);

/* A hint that this handle's next request reads user user_id (the {id} of
 * GET /api/users/admin/users/{id}/...). PostgreSQL, which pays a round
 * trip per statement, reads that user in the statement that checks the
 * caller's token, and answers the read that follows from it; SQLite
 * ignores it. Never changes what a read returns, only what it costs. */
USERSD_API void usersd_read_hint(struct usersd *u, int64_t user_id);

/* ---- Group commit ------------------------------------------------------ */

/* The calls made between usersd_batch_begin and usersd_batch_commit share
 * one transaction, so many writes cost one disk flush; each call is still
 * atomic on its own (one that fails undoes only itself). Nothing is durable
 * until usersd_batch_commit returns USERSD_OK: answer clients after it.
 * usersd_batch_rollback undoes the whole batch. */
USERSD_API enum usersd_code usersd_batch_begin(struct usersd *u, struct usersd_err *err);
USERSD_API enum usersd_code usersd_batch_commit(struct usersd *u, struct usersd_err *err);
USERSD_API void usersd_batch_rollback(struct usersd *u);

/* ---- Copying ----------------------------------------------------------- */

/* Copies every user (ids, password hashes and presence included), every
 * session and the presence history from `from` into `to`, which must hold
 * no user (ECONFLICT otherwise). All or nothing: the whole copy is one
 * transaction on `to`, so a copy that fails or is interrupted (even by
 * kill -9) leaves `to` as it was, and can simply be run again. `from` is
 * read in one snapshot where the driver has them (SQLite). The change log
 * is not copied: `to` continues its sequence after `from`'s newest, so a
 * stream client reconnecting with an old Last-Event-ID is told to resync.
 * *users and *tokens (may be NULL) receive the counts of users and
 * sessions. Progress goes to `to`'s callback (usersd_config.progress). */
USERSD_API enum usersd_code usersd_copy(struct usersd *from, struct usersd *to, int64_t *users,
                                        int64_t *tokens, struct usersd_err *err);

/* Adds n synthetic users for load tests and benchmarks, in bulk statements
 * inside one transaction (a million in seconds; the indexes are rebuilt
 * once at the end, so it is meant for a fresh database): usernames seed<k>
 * (k continues after the highest id), emails seed<k>@example.com, 10 %
 * online (last_seen in the last 5 minutes), 10 % away, 80 % offline
 * (last_seen spread over a month), every one with the given password.
 * Progress goes to the handle's callback (usersd_config.progress). */
USERSD_API enum usersd_code usersd_seed(struct usersd *u, int64_t n, const char *password,
                                        struct usersd_err *err);

/* ---- Authentication and sessions ---------------------------------------- */

/* Keys are 64 hex characters (256 random bits). */
#define USERSD_TOKEN_LEN 64
#define USERSD_USER_AGENT_MAX 200 /* characters kept of a login's User-Agent */
#define USERSD_IP_MAX 45          /* an IPv6 address as text */

/* A session: one login on one device. Its token is its key and is never
 * shown again after login; sessions are named by id. */
struct usersd_session {
    int64_t id;
    int64_t user_id;
    int64_t created;
    int64_t last_used; /* moves like last_seen, at the activity interval */
    char user_agent[USERSD_USER_AGENT_MAX * 4 + 1];
    char client_ip[USERSD_IP_MAX + 1];
    bool current; /* the session the caller asked with (usersd_session_list) */
};

/* A list of sessions; items allocated by the library (usersd_sessions_free). */
struct usersd_sessions {
    struct usersd_session *items;
    size_t count;
};
USERSD_API void usersd_sessions_free(struct usersd_sessions *s);

/* Where a login comes from; both borrowed for the call, NULL or "" when
 * unknown. user_agent is cut to USERSD_USER_AGENT_MAX characters and
 * anything that is not printable UTF-8 in it is replaced. */
struct usersd_client {
    const char *user_agent;
    const char *client_ip;
};

/* Checks username (case-insensitive) and password; EAUTH on a wrong pair or
 * an inactive user. On success creates a session, writes its token into
 * key (USERSD_TOKEN_LEN+1 bytes), sets the user online and fills *user and
 * *session_id (either may be NULL). client may be NULL. */
USERSD_API enum usersd_code usersd_session_login(struct usersd *u, const char *username,
                                                 const char *password,
                                                 const struct usersd_client *client, char *key,
                                                 struct usersd_user *user, int64_t *session_id,
                                                 struct usersd_err *err);
/* usersd_session_login with no client information. */
USERSD_API enum usersd_code usersd_login(struct usersd *u, const char *username,
                                         const char *password, char *key, struct usersd_user *user,
                                         struct usersd_err *err);
/* For load tests and benchmarks (usersd seed --tokens): mints k sessions
 * for k distinct active users picked at random, straight into the database
 * in big batches, all or none — no password check, no presence change,
 * keys and their stored hashes made exactly as at login. After the commit,
 * emit(key, user_id, arg) is called once per session, key being its token
 * (USERSD_TOKEN_LEN hex characters, borrowed for the call); a non-zero
 * return stops the calls and gives EINTERNAL (the sessions stay). EINVAL
 * (field "tokens") when k is below 1, above USERSD_SEED_TOKENS_MAX or above
 * the number of active users; ENOMEM. Holds ~110 bytes per session until
 * it returns. */
#define USERSD_SEED_TOKENS_MAX 1000000
USERSD_API enum usersd_code usersd_seed_sessions(struct usersd *u, int64_t k,
                                                 int (*emit)(const char *key, int64_t user_id,
                                                             void *arg),
                                                 void *arg, struct usersd_err *err);
/* Resolves a key to its active user and session (session may be NULL).
 * EAUTH when unknown, revoked, expired (unused for longer than
 * session_ttl_s), or the user is inactive. */
USERSD_API enum usersd_code usersd_session_resolve(struct usersd *u, const char *key,
                                                   struct usersd_user *user,
                                                   struct usersd_session *session,
                                                   struct usersd_err *err);
/* usersd_session_resolve without the session. */
USERSD_API enum usersd_code usersd_token_resolve(struct usersd *u, const char *key,
                                                 struct usersd_user *user, struct usersd_err *err);
/* Activity through a session: usersd_touch, and the session's last_used
 * moves with it (both at most once per activity interval). *user and
 * *session are updated in place when they were written. */
USERSD_API enum usersd_code usersd_session_activity(struct usersd *u, struct usersd_user *user,
                                                    struct usersd_session *session,
                                                    struct usersd_err *err);

/* Ending sessions, and what it does to presence: in the same transaction,
 * the user goes offline (set_offline) when none of their remaining
 * sessions was used within the last away_after_s seconds (600 when that is
 * 0) — an open presence stream keeps its session used — and otherwise the
 * status is left as it is. No event is logged when nothing changes. */

/* Logout: ends the key's session. EAUTH when the key is unknown. */
USERSD_API enum usersd_code usersd_logout(struct usersd *u, const char *key,
                                          struct usersd_err *err);
/* The sessions of user_id, most recently used first; the one whose id is
 * current_id (0: none) is marked current. ENOTFOUND for an unknown user. */
USERSD_API enum usersd_code usersd_session_list(struct usersd *u, int64_t user_id,
                                                int64_t current_id, struct usersd_sessions *out,
                                                struct usersd_err *err);
/* Ends session_id of user_id. ENOTFOUND when user_id has no such session
 * (another user's session is not found either). */
USERSD_API enum usersd_code usersd_session_revoke(struct usersd *u, int64_t user_id,
                                                  int64_t session_id, struct usersd_err *err);
/* Ends every session of user_id but keep_id (0: all); *n (may be NULL)
 * receives how many ended. ENOTFOUND for an unknown user. */
USERSD_API enum usersd_code usersd_session_revoke_all(struct usersd *u, int64_t user_id,
                                                      int64_t keep_id, int64_t *n,
                                                      struct usersd_err *err);
/* Ends the sessions unused for longer than session_ttl_s (a few hundred per
 * transaction, so the write lock is never held long); *n (may be NULL)
 * receives how many. Nothing when session_ttl_s is 0. */
USERSD_API enum usersd_code usersd_session_expire(struct usersd *u, int64_t *n,
                                                  struct usersd_err *err);
/* Live connections: marks each of the n sessions used now and their users
 * seen now (the status does not change). alive[i] (n entries) tells
 * whether session ids[i] still exists. */
USERSD_API enum usersd_code usersd_session_refresh(struct usersd *u, const int64_t *ids, size_t n,
                                                   bool *alive, struct usersd_err *err);
/* How many sessions exist (a counter, no scan). */
USERSD_API enum usersd_code usersd_session_count(struct usersd *u, int64_t *n,
                                                 struct usersd_err *err);
/* Checks a password against a user without minting a token. */
USERSD_API enum usersd_code usersd_password_check(struct usersd *u, const char *username,
                                                  const char *password, struct usersd_user *user,
                                                  struct usersd_err *err);

/* ---- Time ---------------------------------------------------------------- */

#define USERSD_TIME_LEN 27 /* "2024-01-15T10:30:00.123456Z" */
/* Formats t as RFC 3339 UTC with microseconds into buf (>= USERSD_TIME_LEN+1). */
USERSD_API void usersd_time_format(int64_t t, char *buf, size_t size);
/* Parses an RFC 3339 date-time into UTC microseconds: "T" or "t", an
 * optional fraction of 1 to 9 digits (cut to microseconds), "Z", "z" or an
 * offset +HH:MM / -HH:MM; years 0000-9999, no leap second. False on
 * anything else. */
USERSD_API bool usersd_time_parse(const char *s, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
