/* store_sqlite_int.h — what the files of the SQLite driver share (not
 * installed, not for other modules): the handle, the prepared statements
 * and the helpers that run them.
 *
 * The driver is one file per concern, each reached through
 * store_sqlite_ops (store_sqlite.c):
 *   store_sqlite.c           open/close, the statements, the helpers below,
 *                            migrations, transactions and batches, the ops
 *   store_sqlite_users.c     users: CRUD, lists and search, counts
 *   store_sqlite_sessions.c  sessions and tokens, their ending and seeding
 *   store_sqlite_presence.c  status writes, refreshes, decay, the change log
 *   store_sqlite_history.c   status messages, do not disturb, the history
 *                            and its minutes
 *   store_sqlite_copy.c      bulk copy (dump, load) and seeding users
 * Every function here fills its struct usersd_err on failure, as
 * everywhere; ownership is as in store.h. */
#ifndef USERSD_STORE_SQLITE_INT_H
#define USERSD_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "internal.h"

/* A user is the users row and its presence row (migration 008). */
#define USER_COLS                                                                                  \
    "u.id, u.username, u.email, u.first_name, u.last_name, u.is_active, u.is_staff, "              \
    "u.date_joined, p.online_status, p.last_seen, u.status_text, u.status_expires, p.manual, "     \
    "u.dnd_until"
#define USER_NCOLS 14 /* what follows USER_COLS starts at this column */
#define USER_FROM "users u JOIN presence p ON p.user_id = u.id"

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_BEGIN_READ,
    S_DATA_VERSION,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_INSERT,
    S_GET,
    S_GET_AUTH,
    S_UPDATE,
    S_UPDATE_PW,
    S_DELETE,
    S_COUNT,
    S_ONLINE,
    S_ONLINE_COUNT,
    S_STATS,
    S_LOG_CHANGE,
    S_TOUCH,
    S_SESSION_TOUCH,
    S_SESSION_INSERT,
    S_TOKEN_USER,
    S_SESSION_LIST,
    S_USER_PRESENCE,
    S_SESSION_DELETE_ONE,
    S_SESSION_DELETE_ALL,
    S_SESSION_ACTIVE,
    S_GO_OFFLINE,
    S_SESSIONS_EXPIRED,
    S_SESSION_REFRESH,
    S_SESSION_COUNT,
    S_PING,
    S_DECAY_PENDING,
    S_DECAY_DUE,
    S_DECAY_SET,
    S_CHANGES,
    S_HISTORY_INSERT,
    S_HISTORY_DELETE_USER,
    S_HISTORY_HEAD_SET,
    S_HISTORY_SINCE,
    S_HISTORY_ROW,
    S_HISTORY_MARK,
    S_HISTORY_MARK_UNSET,
    S_HISTORY_PRUNE,
    S_MINUTES_PRUNE,
    S_HISTORY_MOVE_SINCE,
    S_MINUTE_EXISTS,
    S_MINUTE_CLOSE,
    S_MINUTE_INSERT,
    S_PEAK_RESET,
    S_MINUTES,
    S_LIVE_PEAK,
    S_DUMP_HISTORY,
    S_DUMP_MINUTES,
    S_LOAD_MINUTE,
    S_MESSAGE_SET,
    S_MESSAGE_CLEAR,
    S_LOG_MESSAGE,
    S_MESSAGE_PENDING,
    S_LOG_MESSAGE_EXPIRED,
    S_MESSAGE_EXPIRE,
    S_DND_SET,
    S_DND_CLEAR,
    S_LOG_DND,
    S_DND_PENDING,
    S_LOG_DND_EXPIRED,
    S_DND_EXPIRE,
    S_PRESENCE_COUNTS,
    S_PRUNED,
    S_HEAD,
    S_PRUNE_MAX,
    S_PRUNE_DELETE,
    S_PRUNE_META,
    S_DUMP_USERS,
    S_DUMP_SESSIONS,
    S_LOAD_USER,
    S_LOAD_SESSION,
    S_LOAD_SEQ,
    S_SEED,
    S_ANALYZE,
    S_SEED_PRESENCE,
    S_PRESENCE_INSERT,
    S_PRESENCE_DELETE,
    S_MAX_ID,
    S_PRESENCE_OF,
    S_PRESENCE_SET,
    S_USERNAME,
    S_HISTORY_ADD,
    S_NSTMT
};

/* List queries vary with their filters and ordering; each distinct SQL text
 * is prepared once and kept here. */
#define LIST_CACHE 48

/* A search's matches, every id in the list's order, kept while the
 * database is unchanged (inside a read scope, where it cannot change under
 * the page): the other pages of the same search are then id lookups, not
 * the search again. A search with more matches keeps only its count. */
#define MATCH_CACHE 4
#define MATCH_MAX 20000
struct sq_matches {
    char *key;        /* the ids' SQL and its values; NULL: a free slot */
    uint64_t version; /* the data version they were read at */
    int64_t count;    /* every match */
    int64_t *ids;     /* count of them, or NULL when count > MATCH_MAX */
};

struct sqlite_store {
    struct store base; /* first: the driver is reached through it */
    sqlite3 *db;
    sqlite3_stmt *stmt[S_NSTMT];
    struct {
        char *sql;
        sqlite3_stmt *stmt;
    } list_cache[LIST_CACHE];
    unsigned list_next; /* round-robin victim when the cache is full */
    struct sq_matches matches[MATCH_CACHE];
    unsigned matches_next; /* the same, for matches */
    bool batch;            /* inside usersd_batch_begin: transactions are savepoints */
    bool batch_failed;     /* a write of the batch failed half-way: it commits nothing */
    /* Inside a read scope the snapshot cannot move, so PRAGMA data_version
     * is read once per scope (the token lookup and the page cache both ask). */
    bool scope, scope_dv_known;
    int64_t scope_dv;
};

/* Decodes row i of a statement into ctx; non-OK stops the reading. */
typedef enum usersd_code row_fn(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err);
/* Maps a failed step to the caller's error. */
typedef enum usersd_code fail_fn(struct sqlite_store *s, struct usersd_err *err);

/* One value bound to a statement: ?1 takes the first of a list. */
struct sq_arg {
    enum { SQ_INT, SQ_TIME, SQ_TEXT, SQ_BLOB, SQ_NULL } kind;
    int64_t i;
    const void *p;
    int len;
};
#define V_INT(v) ((struct sq_arg){.kind = SQ_INT, .i = (int64_t)(v)})
#define V_TIME(t) ((struct sq_arg){.kind = SQ_TIME, .i = (t)}) /* USERSD_NULL_TIME: NULL */
#define V_TEXT(t) ((struct sq_arg){.kind = SQ_TEXT, .p = (t)}) /* NULL: NULL; not copied */
#define V_BLOB(b, n) ((struct sq_arg){.kind = SQ_BLOB, .p = (b), .len = (int)(n)})
#define V_NULL ((struct sq_arg){.kind = SQ_NULL})
/* The values as the (array, count) pair the helpers take. */
#define ARGS(...)                                                                                  \
    (const struct sq_arg[]){__VA_ARGS__},                                                          \
        (int)(sizeof((const struct sq_arg[]){__VA_ARGS__}) / sizeof(struct sq_arg))

/* S_USER_PRESENCE's row: name, status, last_seen, history_head (each
 * pointer may be NULL: not read). */
struct presence_row {
    char *username;
    size_t size;
    int *status;
    int64_t *last_seen, *head;
};

/* ---- store_sqlite.c: running statements ---------------------------------- */

/* The shape of every query: sq_stmt(s, S_X, ARGS(V_INT(id), ...), err)
 * gives the cached statement with its values bound; sq_rows() steps it
 * over its rows through a decoder (row_fn) and always resets it; sq_one()
 * and sq_one_found() read at most one row (none: a database error, or
 * ENOTFOUND); sq_run() and sq_run_unique() step a statement once. A NULL
 * statement (sq_prep failed, err filled) makes each return USERSD_EDB. */
enum usersd_code sq_db_error(struct sqlite_store *s, struct usersd_err *err);
sqlite3_stmt *sq_prep(struct sqlite_store *s, enum stmt_id id, struct usersd_err *err);
void sq_done(sqlite3_stmt *st);
void sq_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);
int64_t sq_col_time(sqlite3_stmt *st, int col);
void sq_row_user(sqlite3_stmt *st, struct usersd_user *u);
void sq_row_session(sqlite3_stmt *st, int col, struct usersd_session *x);
void sq_bind_args(sqlite3_stmt *st, const struct sq_arg *a, int n);
sqlite3_stmt *sq_stmt(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a, int n,
                      struct usersd_err *err);
enum usersd_code sq_rows(struct sqlite_store *s, sqlite3_stmt *st, size_t max, row_fn *row,
                         void *ctx, size_t *n, struct usersd_err *err);
enum usersd_code sq_one(struct sqlite_store *s, sqlite3_stmt *st, row_fn *row, void *ctx,
                        bool *found, struct usersd_err *err);
enum usersd_code sq_step_with(struct sqlite_store *s, sqlite3_stmt *st, fail_fn *fail,
                              struct usersd_err *err);
enum usersd_code sq_run(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a, int n,
                        struct usersd_err *err);
enum usersd_code sq_exec_simple(struct sqlite_store *s, enum stmt_id id, struct usersd_err *err);
void *sq_grow(void *items, size_t *cap, size_t count, size_t size, size_t first);
enum usersd_code sq_dec_int64(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err);
enum usersd_code sq_dec_time(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err);
enum usersd_code sq_begin(struct sqlite_store *s, struct usersd_err *err);
enum usersd_code sq_commit(struct sqlite_store *s, struct usersd_err *err);
void sq_rollback(struct sqlite_store *s);
enum usersd_code sq_read_scope(struct store *base, bool begin_, struct usersd_err *err);
enum usersd_code sq_write_error(struct sqlite_store *s, struct usersd_err *err);
enum usersd_code sq_run_unique(struct sqlite_store *s, enum stmt_id id, const struct sq_arg *a,
                               int n, struct usersd_err *err);
void sq_stats_refresh(struct sqlite_store *s);
enum usersd_code sq_one_found(struct sqlite_store *s, sqlite3_stmt *st, row_fn *row, void *ctx,
                              const char *what, struct usersd_err *err);
enum usersd_code sq_count_query(struct sqlite_store *s, sqlite3_stmt *st, int64_t *out,
                                struct usersd_err *err);

/* ---- store_sqlite_users.c ------------------------------------------------ */

/* The store_ops of users (store.h), and what the other files use */
enum usersd_code sq_user_insert(struct store *base, struct usersd_user *u, const char *pwhash,
                                struct usersd_err *err);
enum usersd_code sq_presence_insert(struct sqlite_store *s, const struct usersd_user *u,
                                    struct usersd_err *err);
enum usersd_code sq_user_get(struct store *base, int64_t id, struct usersd_user *out,
                             struct usersd_err *err);
enum usersd_code sq_user_get_auth(struct store *base, const char *username, struct usersd_user *out,
                                  char *pwhash, struct usersd_err *err);
enum usersd_code sq_user_update(struct store *base, const struct usersd_user *u, const char *pwhash,
                                const struct store_session_end *end, struct usersd_err *err);
enum usersd_code sq_dec_presence(sqlite3_stmt *st, size_t i, void *ctx, struct usersd_err *err);
enum usersd_code sq_user_presence(struct sqlite_store *s, int64_t id, char *username, size_t size,
                                  int *status, int64_t *last_seen, struct usersd_err *err);
enum usersd_code sq_user_delete(struct store *base, int64_t id, int64_t now,
                                struct usersd_err *err);
enum usersd_code sq_user_count(struct store *base, int64_t *out, struct usersd_err *err);
enum usersd_code sq_user_list(struct store *base, const struct usersd_list_query *q,
                              struct usersd_page *out, struct usersd_err *err);
enum usersd_code sq_online_page(struct store *base, int page, int per_page, struct usersd_page *out,
                                struct usersd_err *err);
enum usersd_code sq_users_by_ids(struct store *base, const int64_t *ids, size_t n,
                                 struct usersd_user *out, size_t *found, struct usersd_err *err);
enum usersd_code sq_stats(struct store *base, struct usersd_stats *out, struct usersd_err *err);

/* ---- store_sqlite_sessions.c --------------------------------------------- */

/* Sessions; sq_end_sessions applies the presence rule (store.h) */
enum usersd_code sq_delete_sessions(struct sqlite_store *s, int64_t user_id, int64_t one,
                                    int64_t keep, int64_t unused_since, int64_t *n,
                                    struct usersd_err *err);
enum usersd_code sq_end_sessions(struct sqlite_store *s, const struct store_session_end *e,
                                 int64_t *ended, struct usersd_err *err);
enum usersd_code sq_session_end(struct store *base, const struct store_session_end *e,
                                int64_t *ended, struct usersd_err *err);
enum usersd_code sq_session_expire(struct store *base, int64_t before, int64_t now,
                                   int64_t active_after, int limit, int64_t *ended,
                                   struct usersd_err *err);
enum usersd_code sq_session_refresh(struct store *base, const int64_t *ids, size_t n, int64_t now,
                                    bool *alive, struct usersd_err *err);
enum usersd_code sq_session_insert(struct store *base, struct store_session_row *row,
                                   struct usersd_err *err);
enum usersd_code sq_token_user(struct store *base, const unsigned char *hash,
                               struct usersd_user *out, struct usersd_session *session,
                               struct usersd_err *err);
enum usersd_code sq_session_list(struct store *base, int64_t user_id, struct usersd_sessions *out,
                                 struct usersd_err *err);
enum usersd_code sq_session_count(struct store *base, int64_t *n, struct usersd_err *err);
enum usersd_code sq_session_seed(struct store *base, const unsigned char *hashes, size_t k,
                                 int64_t now, int64_t *user_ids, struct usersd_err *err);

/* ---- store_sqlite_presence.c --------------------------------------------- */

/* Presence; sq_log_entry appends to the change log (and the history) */
enum usersd_code sq_log_entry(struct sqlite_store *s, enum usersd_change_kind kind, int64_t user_id,
                              const char *username, int status, int64_t last_seen, int64_t at,
                              int64_t session_id, int prev, struct usersd_err *err);
enum usersd_code sq_set_status(struct store *base, const struct store_status_change *c,
                               struct usersd_user *out, struct usersd_err *err);
enum usersd_code sq_run_touch(struct sqlite_store *s, enum stmt_id id_stmt, int64_t id, int64_t now,
                              int64_t before, bool *changed, struct usersd_err *err);
enum usersd_code sq_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                          int64_t before, bool *updated, struct usersd_err *err);
enum usersd_code sq_refresh(struct store *base, const struct usersd_refresh *r, size_t n,
                            int64_t interval_us, struct usersd_err *err);
enum usersd_code sq_decay(struct store *base, int64_t now, int64_t away_before,
                          int64_t offline_before, int64_t *changed, struct usersd_err *err);
enum usersd_code sq_changes(struct store *base, int64_t since, int limit, unsigned kinds,
                            struct usersd_changes *out, struct usersd_err *err);
enum usersd_code sq_changes_head(struct store *base, int64_t *seq, struct usersd_err *err);
enum usersd_code sq_changes_prune(struct store *base, int64_t before, struct usersd_err *err);
enum usersd_code sq_set_status_many(struct store *base, struct store_status_job *jobs, size_t n);

/* ---- store_sqlite_history.c ---------------------------------------------- */

/* Messages, do not disturb, history; sq_history_append chains a row */
enum usersd_code sq_history_append(struct sqlite_store *s, int64_t user_id, int64_t at, int status,
                                   int prev, struct usersd_err *err);
enum usersd_code sq_status_message(struct store *base, int64_t id, const char *text,
                                   int64_t expires, int64_t now, struct usersd_user *out,
                                   struct usersd_err *err);
enum usersd_code sq_dnd(struct store *base, int64_t id, bool on, int64_t until, int64_t now,
                        struct usersd_user *out, struct usersd_err *err);
enum usersd_code sq_status_message_expire(struct store *base, int64_t now, int64_t *n,
                                          struct usersd_err *err);
enum usersd_code sq_dnd_expire(struct store *base, int64_t now, int64_t *n, struct usersd_err *err);
enum usersd_code sq_presence_counts(struct store *base, int64_t *manual, int64_t *dnd,
                                    struct usersd_err *err);
enum usersd_code sq_history_read(struct store *base, int64_t id, int64_t start, int64_t end,
                                 struct store_history *out, struct usersd_err *err);
enum usersd_code sq_history_mark(struct store *base, int64_t since, bool only_if_unset,
                                 struct usersd_err *err);
enum usersd_code sq_history_prune(struct store *base, int64_t before, int limit, int64_t *n,
                                  struct usersd_err *err);
enum usersd_code sq_history_sample(struct store *base, int64_t minute, struct usersd_err *err);
enum usersd_code sq_minutes_read(struct store *base, int64_t from, int64_t to,
                                 struct store_minute_row **out, size_t *n, int64_t *live_peak,
                                 int64_t *open, struct usersd_err *err);
enum usersd_code sq_dump_history(struct store *base, int64_t cursor[2], size_t cap,
                                 struct store_history_row *out, size_t *n, struct usersd_err *err);
enum usersd_code sq_dump_minutes(struct store *base, int64_t after, size_t cap,
                                 struct store_minute_row *out, size_t *n, struct usersd_err *err);
enum usersd_code sq_load_history(struct store *base, const struct store_history_row *h, size_t nh,
                                 const struct store_minute_row *m, size_t nm,
                                 struct usersd_err *err);

/* ---- store_sqlite_copy.c ------------------------------------------------- */

/* Bulk copy and seeding */
enum usersd_code sq_dump_users(struct store *base, int64_t after, size_t cap,
                               struct store_user_row *out, size_t *n, struct usersd_err *err);
enum usersd_code sq_dump_sessions(struct store *base, int64_t after, size_t cap,
                                  struct store_session_row *out, size_t *n, struct usersd_err *err);
enum usersd_code sq_load(struct store *base, const struct store_user_row *users, size_t nu,
                         const struct store_session_row *sessions, size_t ns,
                         struct usersd_err *err);
enum usersd_code sq_load_begin(struct store *base, struct usersd_err *err);
enum usersd_code sq_load_finish(struct store *base, int64_t head,
                                const struct store_progress *progress, struct usersd_err *err);
void sq_load_abort(struct store *base);
enum usersd_code sq_seed(struct store *base, int64_t *first_id, int64_t from, int64_t n,
                         int64_t now, const char *pwhash, struct usersd_err *err);

#endif
