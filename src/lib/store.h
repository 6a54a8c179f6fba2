/* store.h — the storage interface. Each driver exports one
 * const struct store_ops and embeds struct store first in its instance.
 * SQL lives only in the drivers; the rules (validation, which presence
 * transition, permissions) live in the service above. Every state change
 * is one atomic transaction in the driver, so concurrent processes never
 * report one change twice. */
#ifndef USERSD_STORE_H
#define USERSD_STORE_H

#include "usersd.h"

#define STORE_TOKEN_HASH_LEN 32

struct store;

/* Where the drivers and the library report a long operation's progress
 * (usersd.h); fn NULL: nobody listens. */
struct store_progress {
    usersd_progress_fn fn;
    void *ctx;
    enum usersd_task task;
};
/* Calls p->fn (when p and p->fn are set) with this step and count. */
void store_progress(const struct store_progress *p, const char *step, int64_t done, int64_t total);

/* A change-log read after `since`, where the log is pruned up to `pruned`
 * (read after the rows, so a prune in between is seen): EGONE when the
 * reader is behind the prune, with what to do about it. */
enum usersd_code store_check_pruned(int64_t since, int64_t pruned, struct usersd_err *err);

/* Whole rows, for copying one database into another. */
struct store_user_row {
    struct usersd_user user;
    char pwhash[128];
};
struct store_session_row {
    unsigned char hash[STORE_TOKEN_HASH_LEN];
    struct usersd_session s; /* current unused */
};

/* Sessions to end (logout, revocation, a password change, deactivation)
 * and the presence rule that goes with it (usersd.h). */
struct store_session_end {
    int64_t user_id;
    int64_t session_id;   /* that one session; 0: every session of the user but keep_id */
    int64_t keep_id;      /* with session_id 0: the one session kept (0: none) */
    int64_t now;          /* logged at, and the offline last_seen */
    int64_t active_after; /* a remaining session used at or after this keeps the status */
    bool force;           /* apply the presence rule even when no session ended */
    int64_t unused_since; /* > 0: end session_id only if not used since (expiry) */
};

/* History, for copying and for reading one user's (store_history). */
struct store_history_row {
    int64_t user_id, at;
    int status, prev;
};
struct store_minute_row {
    int64_t minute; /* µs, a whole minute */
    int64_t online, away, offline, online_max;
};

/* What a user's history over a window needs (history_read): since when
 * history is known (USERSD_NULL_TIME: never kept), the latest change at or
 * before the window's start, and the changes inside it. */
struct store_history {
    int64_t since;
    bool have_first, have_next;
    struct store_history_row first; /* the latest at or before start */
    struct store_history_row *rows; /* start < at < end, in order; malloc'd */
    size_t count;
    struct store_history_row next; /* the first at or after end */
};

/* Do not disturb as the drivers store it: one column, NULL when off, its
 * end, or STORE_DND_FOREVER for none (so the sweep's range `<= now` never
 * meets it and one partial index serves the sweep and the count). */
#define STORE_DND_FOREVER INT64_MAX
static inline int64_t store_dnd_col(bool on, int64_t until)
{
    return !on ? USERSD_NULL_TIME : until == USERSD_NULL_TIME ? STORE_DND_FOREVER : until;
}
static inline void store_dnd_read(int64_t col, bool *on, int64_t *until)
{
    *on = col != USERSD_NULL_TIME;
    *until = col == USERSD_NULL_TIME || col == STORE_DND_FOREVER ? USERSD_NULL_TIME : col;
}

/* Bits of the kinds a log read returns (store_ops.changes). */
#define STORE_KIND(k) (1u << (k))
#define STORE_KINDS_ALL 0xffu

/* A presence transition asked of the driver. */
struct store_status_change {
    int64_t user_id;
    enum usersd_status status;
    int64_t last_seen;  /* the new last_seen, or USERSD_NULL_TIME to keep it */
    int64_t now;        /* when the change happens (for the change log) */
    bool presence_only; /* out needs only id, online_status and last_seen when the status
                           does not change (a heartbeat): no read of the user's row */
    /* The caller's own activity (set_status_many only): after the change
     * last_seen = now where null or older than touch_before, and
     * (session_id > 0) that session's last_used = now where older. */
    bool touch;
    int64_t touch_before;
    int64_t session_id;
    /* USERSD_STATUS_* (usersd.h): MANUAL sets the manual mark, AUTO leaves
     * a user with one as they are (status and last_seen; the session's
     * last_used still moves), neither clears it. */
    unsigned flags;
};

/* One change of a batch (set_status_many), with its own result. */
struct store_status_job {
    struct store_status_change c;
    struct usersd_user *out;
    struct usersd_err *err;
    enum usersd_code rc;
};

struct store_ops {
    const char *scheme; /* "sqlite", "postgresql" */
    /* Sets the handle's page cache to kib KiB; NULL where the database
     * server keeps the cache (PostgreSQL). */
    enum usersd_code (*set_cache)(struct store *s, int64_t kib, struct usersd_err *err);
    /* CHECKPOINT_APART: this handle's commits stop checkpointing;
     * CHECKPOINT_NOW: a passive checkpoint (usersd_checkpoint), the WAL's
     * pages in frames[0], those not yet copied in frames[1]. NULL when the
     * driver has none to do. */
    enum usersd_code (*checkpoint)(struct store *s, int what, int64_t frames[2],
                                   struct usersd_err *err);
    const char *alias; /* another scheme name, or NULL */
    bool full_url;     /* open gets the whole URL, not what follows "scheme:" */
    /* target is the URL after "scheme:" (or the whole URL, see full_url).
     * Pending migrations run here, each reported to progress (may be NULL). */
    enum usersd_code (*open)(struct store **out, const char *target,
                             const struct store_progress *progress, struct usersd_err *err);
    void (*close)(struct store *s);
    enum usersd_code (*ping)(struct store *s, struct usersd_err *err);
    /* usersd_db_check (NULL: the driver has no server to lose; ping). */
    enum usersd_code (*check)(struct store *s, int timeout_ms, struct usersd_err *err);

    /* u->id and the stored copy are filled on success. ECONFLICT with
     * err->field "username" or "email" on a duplicate. */
    enum usersd_code (*user_insert)(struct store *s, struct usersd_user *u, const char *pwhash,
                                    struct usersd_err *err);
    enum usersd_code (*user_get)(struct store *s, int64_t id, struct usersd_user *out,
                                 struct usersd_err *err);
    /* Case-insensitive username lookup, with the password hash
     * (PASSWORD_HASH_MAX bytes). ENOTFOUND when absent. */
    enum usersd_code (*user_get_auth)(struct store *s, const char *username,
                                      struct usersd_user *out, char *pwhash,
                                      struct usersd_err *err);
    /* Writes the profile fields of u (not presence); pwhash NULL keeps the
     * password. In the same transaction a new password ends the user's
     * sessions but end->keep_id, and deactivation ends them all, with the
     * presence rule (end->user_id is u->id, end->session_id 0). ENOTFOUND,
     * ECONFLICT as for insert. */
    enum usersd_code (*user_update)(struct store *s, const struct usersd_user *u,
                                    const char *pwhash, const struct store_session_end *end,
                                    struct usersd_err *err);
    /* Deletes the user with its sessions; a user not offline is logged going
     * offline at now, so streams do not show it online forever, and the end
     * of its sessions is logged. ENOTFOUND when absent. */
    enum usersd_code (*user_delete)(struct store *s, int64_t id, int64_t now,
                                    struct usersd_err *err);
    enum usersd_code (*user_count)(struct store *s, int64_t *out, struct usersd_err *err);
    /* q is validated; out->users allocated with malloc. out->total_count
     * comes in as -1 (count the matching rows) or already known (from the
     * counters), and then the driver does not count. */
    enum usersd_code (*user_list)(struct store *s, const struct usersd_list_query *q,
                                  struct usersd_page *out, struct usersd_err *err);
    enum usersd_code (*online_page)(struct store *s, int page, int per_page,
                                    struct usersd_page *out, struct usersd_err *err);
    /* Fills out[] with the users found among ids, in any order; *found set. */
    enum usersd_code (*users_by_ids)(struct store *s, const int64_t *ids, size_t n,
                                     struct usersd_user *out, size_t *found,
                                     struct usersd_err *err);
    enum usersd_code (*stats)(struct store *s, struct usersd_stats *out, struct usersd_err *err);

    /* Applies c atomically, appending to the change log when the status
     * differs; out receives the user after the change. */
    enum usersd_code (*set_status)(struct store *s, const struct store_status_change *c,
                                   struct usersd_user *out, struct usersd_err *err);
    /* set_status for n changes in the order given (then each its touch),
     * each atomic on its own: jobs[i].rc, out and err are that change's (an
     * unknown user fails only its job). Returns OK, or what stopped them
     * all (also in every rc). Inside a batch or on its own. */
    enum usersd_code (*set_status_many)(struct store *s, struct store_status_job *jobs, size_t n);
    /* last_seen = now where it is null or older than before (and the
     * status is not manual), and (session > 0) the session's last_used =
     * now where older than before; *updated tells whether the user's row
     * changed. */
    enum usersd_code (*touch)(struct store *s, int64_t id, int64_t session, int64_t now,
                              int64_t before, bool *updated, struct usersd_err *err);
    /* Refreshes in bulk (usersd_refresh_many): for each, touch at r[i].at
     * with before = r[i].at - interval_us. One transaction, or a savepoint
     * inside a batch. */
    enum usersd_code (*refresh)(struct store *s, const struct usersd_refresh *r, size_t n,
                                int64_t interval_us, struct usersd_err *err);

    /* Decay: online users with last_seen < away_before become away; online
     * or away users with last_seen < offline_before become
     * offline (USERSD_NULL_TIME turns either off); a manual status never. Logged at now; *changed
     * gets the number of transitions. Atomic per statement. */
    enum usersd_code (*decay)(struct store *s, int64_t now, int64_t away_before,
                              int64_t offline_before, int64_t *changed, struct usersd_err *err);
    /* Log entries with seq > since (at most limit) whose kind is in the
     * mask kinds (STORE_KIND bits); EGONE if pruned past since. */
    enum usersd_code (*changes)(struct store *s, int64_t since, int limit, unsigned kinds,
                                struct usersd_changes *out, struct usersd_err *err);
    enum usersd_code (*changes_head)(struct store *s, int64_t *seq, struct usersd_err *err);
    /* Deletes changes logged before `before`, remembering the highest seq. */
    enum usersd_code (*changes_prune)(struct store *s, int64_t before, struct usersd_err *err);

    /* Waits up to timeout_ms for another connection's change to the log;
     * NULL when the driver cannot (the caller polls instead). */
    enum usersd_code (*changes_wait)(struct store *s, int timeout_ms, bool *notified,
                                     struct usersd_err *err);

    /* Copying (usersd copy) and seeding. dump_* read up to cap rows after a
     * key (an id) in key order. Loading is in bulk, all or nothing:
     * load_begin opens one transaction and sets aside what a row-at-a-time
     * insert pays for on every row (the counter and search triggers, the
     * secondary indexes); load, load_history and seed write rows, ids
     * included, inside it; load_finish rebuilds what was set aside (the
     * counters recomputed equal what the triggers would have kept; the
     * step "indexes" reported to progress), moves the id counters past
     * what was loaded and, when log_head >= 0, the log's sequence to
     * log_head, and commits. load_abort rolls everything back (also after
     * a failed load_finish). Between load_begin and the end the handle
     * serves nothing else. */
    enum usersd_code (*dump_users)(struct store *s, int64_t after_id, size_t cap,
                                   struct store_user_row *rows, size_t *n, struct usersd_err *err);
    enum usersd_code (*dump_sessions)(struct store *s, int64_t after_id, size_t cap,
                                      struct store_session_row *rows, size_t *n,
                                      struct usersd_err *err);
    enum usersd_code (*load)(struct store *s, const struct store_user_row *users, size_t nu,
                             const struct store_session_row *sessions, size_t ns,
                             struct usersd_err *err);
    enum usersd_code (*load_finish)(struct store *s, int64_t log_head,
                                    const struct store_progress *progress, struct usersd_err *err);

    /* Inserts the synthetic users number from+1 .. from+n in one statement
     * inside a load (usersd seed): names seed<base + k> where *base is the
     * highest user id before the first of them (found when from is 0, then
     * passed back in), 10 % online, 10 % away, 80 % offline, last_seen
     * spread before now; all with the password hash pwhash. Seeding in
     * pieces gives the same rows as seeding at once. */
    enum usersd_code (*seed)(struct store *s, int64_t *base, int64_t from, int64_t n, int64_t now,
                             const char *pwhash, struct usersd_err *err);

    /* Group commit: BATCH_BEGIN opens one transaction that the calls until
     * BATCH_COMMIT (or BATCH_ROLLBACK) share; inside it each call's own
     * transaction becomes a savepoint, so a failed call undoes only itself. */
    enum usersd_code (*batch)(struct store *s, int what, struct usersd_err *err);

    /* A number that changes with every commit by anyone; NULL when the
     * driver cannot tell cheaply. */
    enum usersd_code (*data_version)(struct store *s, uint64_t *version, struct usersd_err *err);
    /* Opens (begin) or closes one read snapshot for the reads in between;
     * NULL where each statement is its own snapshot anyway (PostgreSQL). */
    enum usersd_code (*read_scope)(struct store *s, bool begin, struct usersd_err *err);
    /* usersd_read_hint: the next read is likely of user id; NULL where a
     * read costs no round trip (SQLite). */
    void (*read_hint)(struct store *s, int64_t user_id);

    /* Sessions. insert stores row (hash, s.user_id, created, last_used,
     * user_agent, client_ip) and fills row->s.id. */
    enum usersd_code (*session_insert)(struct store *s, struct store_session_row *row,
                                       struct usersd_err *err);
    /* The token's user (active or not) and session (id, created,
     * last_used; may be NULL). ENOTFOUND when no such token. */
    enum usersd_code (*token_user)(struct store *s, const unsigned char *hash,
                                   struct usersd_user *out, struct usersd_session *session,
                                   struct usersd_err *err);
    /* The user's sessions, most recently used first (ENOTFOUND: no user). */
    enum usersd_code (*session_list)(struct store *s, int64_t user_id, struct usersd_sessions *out,
                                     struct usersd_err *err);
    /* Ends sessions as e says, logs their end and applies the presence
     * rule, in one transaction; *ended gets how many. ENOTFOUND when the
     * user is unknown or (e->session_id > 0) has no such session. */
    enum usersd_code (*session_end)(struct store *s, const struct store_session_end *e,
                                    int64_t *ended, struct usersd_err *err);
    /* Ends up to limit sessions unused since before (last_used < before),
     * each as session_end would; *ended gets how many. */
    enum usersd_code (*session_expire)(struct store *s, int64_t before, int64_t now,
                                       int64_t active_after, int limit, int64_t *ended,
                                       struct usersd_err *err);
    /* last_used = now for each of ids that exists (alive[i] says), and
     * last_seen = now for their users; one transaction. */
    enum usersd_code (*session_refresh)(struct store *s, const int64_t *ids, size_t n, int64_t now,
                                        bool *alive, struct usersd_err *err);
    enum usersd_code (*session_count)(struct store *s, int64_t *n, struct usersd_err *err);

    /* Status messages. text NULL clears; otherwise sets text ending at
     * expires (USERSD_NULL_TIME: none). A set, or a clear of an existing
     * message, is logged at now (kind STATUS_MESSAGE) in the same
     * transaction. out receives the user. ENOTFOUND. */
    enum usersd_code (*status_message)(struct store *s, int64_t id, const char *text,
                                       int64_t expires, int64_t now, struct usersd_user *out,
                                       struct usersd_err *err);
    /* Clears and logs every message with status_expires <= now; *n. */
    enum usersd_code (*status_message_expire)(struct store *s, int64_t now, int64_t *n,
                                              struct usersd_err *err);

    /* Do not disturb: on (ending at until, USERSD_NULL_TIME: none) or off.
     * A set, or a clear of one that was on, is logged at now (kind DND, the
     * new state in dnd_until) in the same transaction. out receives the
     * user. ENOTFOUND. */
    enum usersd_code (*dnd)(struct store *s, int64_t id, bool on, int64_t until, int64_t now,
                            struct usersd_user *out, struct usersd_err *err);
    /* Ends and logs every do not disturb whose end is <= now; *n. */
    enum usersd_code (*dnd_expire)(struct store *s, int64_t now, int64_t *n,
                                   struct usersd_err *err);
    /* Users with a manual status, and in do not disturb (partial indexes). */
    enum usersd_code (*presence_counts)(struct store *s, int64_t *manual, int64_t *dnd,
                                        struct usersd_err *err);

    /* History (written by the presence calls when s->history is set).
     * history_read fills out for user id and the window [start, end). */
    enum usersd_code (*history_read)(struct store *s, int64_t id, int64_t start, int64_t end,
                                     struct store_history *out, struct usersd_err *err);
    /* Sets since when history is known: since (USERSD_NULL_TIME: not
     * kept); with only_if_unset, only where it is not set yet. */
    enum usersd_code (*history_mark)(struct store *s, int64_t since, bool only_if_unset,
                                     struct usersd_err *err);
    /* Deletes up to limit history rows and minute rows older than before
     * and moves the known start to before; *n gets the rows deleted. */
    enum usersd_code (*history_prune)(struct store *s, int64_t before, int limit, int64_t *n,
                                      struct usersd_err *err);
    /* The minute row for `minute` from the counters (if absent), the
     * previous row's peak closed. */
    enum usersd_code (*history_sample)(struct store *s, int64_t minute, struct usersd_err *err);
    /* Minute rows with from <= minute < to, in order (out malloc'd); the
     * latest row's minute in the table (*open, USERSD_NULL_TIME: none) and
     * the peak the counters kept since it was recorded (*live_peak), which
     * the next sample closes it with. */
    enum usersd_code (*minutes_read)(struct store *s, int64_t from, int64_t to,
                                     struct store_minute_row **out, size_t *n, int64_t *live_peak,
                                     int64_t *open, struct usersd_err *err);
    /* Copying: history rows after cursor (driver-defined; {0, 0} at the
     * start, moved past the rows returned), each user's rows in time
     * order; minute rows after minute. */
    enum usersd_code (*dump_history)(struct store *s, int64_t cursor[2], size_t cap,
                                     struct store_history_row *rows, size_t *n,
                                     struct usersd_err *err);
    enum usersd_code (*dump_minutes)(struct store *s, int64_t after, size_t cap,
                                     struct store_minute_row *rows, size_t *n,
                                     struct usersd_err *err);
    enum usersd_code (*load_history)(struct store *s, const struct store_history_row *h, size_t nh,
                                     const struct store_minute_row *m, size_t nm,
                                     struct usersd_err *err);

    /* The bulk load's start and its undoing (see dump_users above). */
    enum usersd_code (*load_begin)(struct store *s, struct usersd_err *err);
    void (*load_abort)(struct store *s);

    /* Load testing (usersd_seed_sessions): picks k distinct active users at
     * random and gives each a new session whose token hash is hashes[i]
     * (STORE_TOKEN_HASH_LEN bytes each), created and last used at now, no
     * agent or address; user_ids[i] receives its user. All or none, in
     * big batches (PostgreSQL: a transaction per 1,000, those committed
     * deleted again on a failure); EINVAL (field "tokens") when fewer than
     * k users are active. */
    enum usersd_code (*session_seed)(struct store *s, const unsigned char *hashes, size_t k,
                                     int64_t now, int64_t *user_ids, struct usersd_err *err);
};

enum { BATCH_BEGIN, BATCH_COMMIT, BATCH_ROLLBACK };
enum { CHECKPOINT_APART, CHECKPOINT_NOW };

struct store {
    const struct store_ops *ops;
    bool history; /* presence changes are kept as history (history_days > 0) */
    /* data_version answers only right after a token check, with the version
     * that check read at (PostgreSQL: no round trip of its own), and not
     * before one: the token cache, which asks first, is not used. */
    bool version_after_read;
};

/* Opens the driver named by url's scheme; migrations report to progress
 * (may be NULL). */
enum usersd_code store_open(struct store **out, const char *url,
                            const struct store_progress *progress, struct usersd_err *err);
void store_close(struct store *s);
/* "%search%" with LIKE's wildcards and the escape escaped (malloc'd; NULL
 * when out of memory): a search is a plain substring in every driver. */
char *store_like_pattern(const char *search);

/* The database's reachability as this process sees it (store.c), kept by
 * the PostgreSQL driver's handles and read by usersd_db_state. */
/* A handle found it unreachable: detail (hosts, ports, libpq's words) is
 * kept for the log, the first of an outage. */
void store_db_down(const char *detail);
/* A handle reached it: ends an outage. Returns the generation: it grows
 * at each end of an outage, and connections made before it are stale. */
unsigned store_db_up(void);
unsigned store_db_gen(void);
/* A connection was re-established after one was lost. */
void store_db_reconnected(void);
/* usersd_db_check was called: from now on only it reconnects while the
 * database is down. */
void store_db_watched(void);
bool store_db_is_down(void);
/* Down and watched: calls fail at once and waits give up. */
bool store_db_gated(void);
/* The host and port the primary was last found at (a multi-host URL's
 * next connection tries it first); "" when none yet. */
void store_db_set_primary(const char *host, const char *port);
void store_db_primary(char *host, size_t hsize, char *port, size_t psize);

extern const struct store_ops store_sqlite_ops;
#ifdef USERSD_WITH_PG
extern const struct store_ops store_pg_ops;
#endif

#endif
