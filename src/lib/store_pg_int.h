/* store_pg_int.h — what the PostgreSQL driver's files share (not
 * installed): the handle, the statement ids, the text parameters, the row
 * decoders and the helpers every query goes through. store_pg.c holds the
 * connection, the statements, migrations, transactions, batches and their
 * pipelining; store_pg_users.c, store_pg_sessions.c, store_pg_presence.c,
 * store_pg_history.c and store_pg_copy.c the operations. */
#ifndef USERSD_STORE_PG_INT_H
#define USERSD_STORE_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define CHANNEL "usersd_presence"

/* A user's columns in the order pg_row_user_at reads them, named through T
 * ("" for none, "u." for a table or alias u). */
#define USER_COLS_OF(T)                                                                            \
    T "id, " T "username, " T "email, " T "first_name, " T "last_name, " T "is_active, " T         \
      "is_staff, " T "date_joined, " T "online_status, " T "last_seen, " T "status_text, " T       \
      "status_expires, " T "status_manual, " T "dnd_until"
#define USER_NCOLS 14 /* what follows a user's columns starts at this column */
#define USER_COLS USER_COLS_OF("")
/* Named through users, beside presence (which has two of them). */
#define USERS_COLS USER_COLS_OF("users.")
/* The token's user, then its session: id, created, last_used (columns
 * USER_NCOLS to USER_NCOLS + 2). */
#define TOKEN_COLS USER_COLS_OF("u.") ", s.id, s.created, s.last_used"
#define TOKEN_FROM "FROM sessions s JOIN users u ON u.id = s.user_id"
#define HINTED_COLS USER_COLS_OF("t.") /* usersd_read_hint's user, column USER_NCOLS + 3 on */

enum pstmt {
    P_INSERT,
    P_GET,
    P_GET_AUTH,
    P_UPDATE,
    P_UPDATE_PW,
    P_DELETE,
    P_COUNT,
    P_ONLINE,
    P_BY_IDS,
    P_STATS,
    P_SET_PRESENCE,
    P_LOG_CHANGE,
    P_NOTIFY,
    P_TOUCH,
    P_SESSION_TOUCH,
    P_REFRESH,
    P_SESSION_INSERT,
    P_TOKEN_USER,
    P_TOKEN_USER_HINT,
    P_SESSION_LIST,
    P_USER_PRESENCE,
    P_SESSION_DELETE_ONE,
    P_SESSION_DELETE_ALL,
    P_SESSION_ACTIVE,
    P_GO_OFFLINE,
    P_SESSIONS_EXPIRED,
    P_SESSION_REFRESH,
    P_SESSION_COUNT,
    P_PING,
    P_DECAY_PENDING,
    P_DECAY_OFFLINE,
    P_DECAY_AWAY,
    P_CHANGES,
    P_HISTORY_INSERT,
    P_HISTORY_DELETE_USER,
    P_HISTORY_SINCE,
    P_HISTORY_FIRST,
    P_HISTORY_ROWS,
    P_HISTORY_NEXT,
    P_HISTORY_MARK,
    P_HISTORY_MARK_UNSET,
    P_HISTORY_PRUNE,
    P_MINUTE_INSERT,
    P_MINUTE_CLOSE,
    P_PEAK_RESET,
    P_MINUTES,
    P_LIVE_PEAK,
    P_DUMP_HISTORY,
    P_DUMP_MINUTES,
    P_MESSAGE_SET,
    P_MESSAGE_CLEAR,
    P_LOG_MESSAGE,
    P_MESSAGE_PENDING,
    P_MESSAGE_EXPIRE,
    P_DND_SET,
    P_DND_CLEAR,
    P_LOG_DND,
    P_DND_PENDING,
    P_DND_EXPIRE,
    P_PRESENCE_COUNTS,
    P_PRUNED,
    P_HEAD,
    P_PRUNE,
    P_DUMP_USERS,
    P_DUMP_SESSIONS,
    P_LOAD_IDS,
    P_LOAD_SEQ,
    P_SEED,
    P_MAX_ID,
    P_NSTMT
};

struct pg_store {
    struct store base; /* first: the driver is reached through it */
    PGconn *conn;      /* NULL after it was dropped */
    /* The connection parameters: the URL's, then usersd's defaults for
     * what it does not say (NULL-terminated, owned). */
    char **keys, **vals;
    int deadline_ms;     /* a round trip's limit (0: none, while the statement timeout is lifted) */
    unsigned gen;        /* store_db_gen() when the connection was made */
    bool watcher;        /* usersd_db_check's handle: reconnects while down */
    bool connected_once; /* a later connection is a reconnect */
    int skip;            /* failed connection attempts in a row: start that many hosts later */
    /* The last answer() lost the connection, and the statement certainly
     * did not run: it could not be sent, or the server ended the session
     * with an error for it (a restart, a terminated backend). */
    bool not_run;
    bool ending; /* the server said FATAL between statements: its session is over */
    bool prepared[P_NSTMT];
    bool in_tx;
    bool notify; /* the open transaction logged: wake the listeners after its commit */
    /* The connection was lost with a transaction open: every call fails
     * until that transaction is rolled back, so that nothing runs outside
     * it on a new connection and no COMMIT succeeds there for nothing. */
    bool lost;
    bool batch; /* inside usersd_batch_begin: transactions are savepoints */
    bool listening;
    /* usersd_read_hint: the user to read with the next token check
     * (0: none), and that user as read there: valid until the next
     * statement on this connection (hinted; every way to the server —
     * pg_ensure_conn, pg_exec_plain, run_list, run_once — clears it), not found
     * when !hinted_found. */
    int64_t hint_id;
    bool hinted, hinted_found;
    struct usersd_user hinted_user;
    /* The data version (pg_data_version): a hash of the snapshot the last
     * token check read in, valid while no other statement followed
     * (snap_fresh, cleared where hinted is) and given out once. */
    uint64_t snap;
    bool snap_fresh;
    char *list_sql[32]; /* list queries, prepared as "list<i>" on demand */
    bool list_prepared[32];
};

struct params {
    const char *v[16];
    int len[16];
    int fmt[16];
    int n;
    char buf[16][24];
};

/* Decodes row i of a result into item; ctx is what the caller passed on. */
typedef void row_fn(PGresult *r, int i, void *item, const void *ctx);

/* ---- shared functions, by the file that defines them --------------------- */

/* store_pg.c */
PGresult *pg_answer(struct pg_store *s, int sent);
PGresult *pg_run(struct pg_store *s, enum pstmt id, const struct params *p, struct usersd_err *err);
PGresult *pg_run_sql(struct pg_store *s, const char *name, const char *sql, bool *prepared,
                     const struct params *p, struct usersd_err *err);
bool pg_undo_savepoint(struct pg_store *s, struct usersd_err *err);
char *pg_id_array(const int64_t *ids, size_t n);
char *pg_int_array(const int64_t *first, size_t n, size_t stride);
enum usersd_code pg_begin(struct pg_store *s, struct usersd_err *err);
enum usersd_code pg_commit(struct pg_store *s, struct usersd_err *err);
enum usersd_code pg_ensure_conn(struct pg_store *s, struct usersd_err *err);
enum usersd_code pg_error(struct pg_store *s, PGresult *r, struct usersd_err *err);
enum usersd_code pg_exec_plain(struct pg_store *s, const char *sql, struct usersd_err *err);
enum usersd_code pg_lift_timeout(struct pg_store *s, struct usersd_err *err);
enum usersd_code pg_one_int(PGresult *r, int64_t *out);
enum usersd_code pg_one_user(PGresult *r, struct usersd_user *out, struct usersd_err *err);
enum usersd_code pg_pipe_in_savepoint(struct pg_store *s, enum pstmt id, const struct params *p,
                                      void (*rows)(PGresult *, void *), void *arg,
                                      struct usersd_err *err);
enum usersd_code pg_rows_into(PGresult *r, size_t cap, void *items, size_t size, row_fn *row,
                              const void *ctx, size_t *n);
enum usersd_code pg_rows_new(PGresult *r, size_t cap, size_t size, row_fn *row, const void *ctx,
                             void **items, size_t *n, struct usersd_err *err);
enum usersd_code pg_run0(struct pg_store *s, enum pstmt id, const struct params *p,
                         struct usersd_err *err);
enum usersd_code pg_unavailable(struct usersd_err *err);
enum usersd_code pg_wake_listeners(struct pg_store *s, struct usersd_err *err);
extern _Thread_local enum usersd_code pg_last_fail;
int64_t pg_col_int(PGresult *r, int row, int col);
int64_t pg_col_time(PGresult *r, int row, int col);
void pg_col_text(char *dst, size_t size, PGresult *r, int row, int col);
void pg_conn_lost(struct pg_store *s, bool timed_out);
void pg_dec_session(PGresult *r, int i, void *item, const void *ctx);
void pg_dec_user(PGresult *r, int i, void *item, const void *ctx);
void pg_p_bool(struct params *p, bool b);
void pg_p_bytea(struct params *p, const unsigned char *b, int len);
void pg_p_int(struct params *p, int64_t x);
void pg_p_profile(struct params *p, const struct usersd_user *u);
void pg_p_text(struct params *p, const char *s);
void pg_p_time(struct params *p, int64_t t);
void pg_rollback(struct pg_store *s);
void pg_row_session(PGresult *r, int row, int col, struct usersd_session *x);
void pg_row_user(PGresult *r, int row, struct usersd_user *u);
void pg_row_user_at(PGresult *r, int row, int c, struct usersd_user *u);

/* store_pg_users.c */
enum usersd_code pg_delete_sessions(struct pg_store *s, int64_t user_id, int64_t one, int64_t keep,
                                    int64_t unused_since, int64_t *n, struct usersd_err *err);
enum usersd_code pg_online_page(struct store *base, int page, int per_page, struct usersd_page *out,
                                struct usersd_err *err);
enum usersd_code pg_stats(struct store *base, struct usersd_stats *out, struct usersd_err *err);
enum usersd_code pg_user_count(struct store *base, int64_t *out, struct usersd_err *err);
enum usersd_code pg_user_delete(struct store *base, int64_t id, int64_t now,
                                struct usersd_err *err);
enum usersd_code pg_user_get(struct store *base, int64_t id, struct usersd_user *out,
                             struct usersd_err *err);
enum usersd_code pg_user_get_auth(struct store *base, const char *username, struct usersd_user *out,
                                  char *pwhash, struct usersd_err *err);
enum usersd_code pg_user_insert(struct store *base, struct usersd_user *u, const char *pwhash,
                                struct usersd_err *err);
enum usersd_code pg_user_list(struct store *base, const struct usersd_list_query *q,
                              struct usersd_page *out, struct usersd_err *err);
enum usersd_code pg_user_presence(struct pg_store *s, int64_t id, char *username, size_t size,
                                  int *status, int64_t *last_seen, struct usersd_err *err);
enum usersd_code pg_user_update(struct store *base, const struct usersd_user *u, const char *pwhash,
                                const struct store_session_end *end, struct usersd_err *err);
enum usersd_code pg_users_by_ids(struct store *base, const int64_t *ids, size_t n,
                                 struct usersd_user *out, size_t *found, struct usersd_err *err);

/* store_pg_presence.c */
enum usersd_code pg_changes(struct store *base, int64_t since, int limit, unsigned kinds,
                            struct usersd_changes *out, struct usersd_err *err);
enum usersd_code pg_changes_head(struct store *base, int64_t *seq, struct usersd_err *err);
enum usersd_code pg_changes_prune(struct store *base, int64_t before, struct usersd_err *err);
enum usersd_code pg_changes_wait(struct store *base, int timeout_ms, bool *notified,
                                 struct usersd_err *err);
enum usersd_code pg_decay(struct store *base, int64_t now, int64_t away_before,
                          int64_t offline_before, int64_t *changed, struct usersd_err *err);
enum usersd_code pg_log_entry(struct pg_store *s, enum usersd_change_kind kind, int64_t user_id,
                              const char *username, int status, int64_t last_seen, int64_t at,
                              int64_t session_id, int prev, struct usersd_err *err);
enum usersd_code pg_refresh(struct store *base, const struct usersd_refresh *r, size_t n,
                            int64_t interval_us, struct usersd_err *err);
enum usersd_code pg_set_status_many(struct store *base, struct store_status_job *jobs, size_t n);
enum usersd_code pg_set_status_op(struct store *base, const struct store_status_change *c,
                                  struct usersd_user *out, struct usersd_err *err);
enum usersd_code pg_touch(struct store *base, int64_t id, int64_t session, int64_t now,
                          int64_t before, bool *updated, struct usersd_err *err);

/* store_pg_copy.c */
enum usersd_code pg_dump_sessions(struct store *base, int64_t after, size_t cap,
                                  struct store_session_row *rows, size_t *n,
                                  struct usersd_err *err);
enum usersd_code pg_dump_users(struct store *base, int64_t after, size_t cap,
                               struct store_user_row *rows, size_t *n, struct usersd_err *err);
enum usersd_code pg_load(struct store *base, const struct store_user_row *users, size_t nu,
                         const struct store_session_row *sessions, size_t ns,
                         struct usersd_err *err);
enum usersd_code pg_load_begin(struct store *base, struct usersd_err *err);
enum usersd_code pg_load_finish(struct store *base, int64_t head,
                                const struct store_progress *progress, struct usersd_err *err);
enum usersd_code pg_load_history(struct store *base, const struct store_history_row *h, size_t nh,
                                 const struct store_minute_row *m, size_t nm,
                                 struct usersd_err *err);
enum usersd_code pg_seed(struct store *base, int64_t *first_id, int64_t from, int64_t n,
                         int64_t now, const char *pwhash, struct usersd_err *err);
enum usersd_code pg_session_seed(struct store *base, const unsigned char *hashes, size_t k,
                                 int64_t now, int64_t *user_ids, struct usersd_err *err);
void pg_load_abort(struct store *base);

/* store_pg_sessions.c */
enum usersd_code pg_end_sessions(struct pg_store *s, const struct store_session_end *e,
                                 int64_t *ended, struct usersd_err *err);
enum usersd_code pg_session_count(struct store *base, int64_t *n, struct usersd_err *err);
enum usersd_code pg_session_end(struct store *base, const struct store_session_end *e,
                                int64_t *ended, struct usersd_err *err);
enum usersd_code pg_session_expire(struct store *base, int64_t before, int64_t now,
                                   int64_t active_after, int limit, int64_t *ended,
                                   struct usersd_err *err);
enum usersd_code pg_session_insert(struct store *base, struct store_session_row *row,
                                   struct usersd_err *err);
enum usersd_code pg_session_list(struct store *base, int64_t user_id, struct usersd_sessions *out,
                                 struct usersd_err *err);
enum usersd_code pg_session_refresh(struct store *base, const int64_t *ids, size_t n, int64_t now,
                                    bool *alive, struct usersd_err *err);
enum usersd_code pg_token_user(struct store *base, const unsigned char *hash,
                               struct usersd_user *out, struct usersd_session *session,
                               struct usersd_err *err);

/* store_pg_history.c */
enum usersd_code pg_dnd(struct store *base, int64_t id, bool on, int64_t until, int64_t now,
                        struct usersd_user *out, struct usersd_err *err);
enum usersd_code pg_dnd_expire(struct store *base, int64_t now, int64_t *n, struct usersd_err *err);
enum usersd_code pg_dump_history(struct store *base, int64_t cursor[2], size_t cap,
                                 struct store_history_row *rows, size_t *n, struct usersd_err *err);
enum usersd_code pg_dump_minutes(struct store *base, int64_t after, size_t cap,
                                 struct store_minute_row *rows, size_t *n, struct usersd_err *err);
enum usersd_code pg_history_mark(struct store *base, int64_t since, bool only_if_unset,
                                 struct usersd_err *err);
enum usersd_code pg_history_prune(struct store *base, int64_t before, int limit, int64_t *n,
                                  struct usersd_err *err);
enum usersd_code pg_history_read(struct store *base, int64_t id, int64_t start, int64_t end,
                                 struct store_history *out, struct usersd_err *err);
enum usersd_code pg_history_sample(struct store *base, int64_t minute, struct usersd_err *err);
enum usersd_code pg_minutes_read(struct store *base, int64_t from, int64_t to,
                                 struct store_minute_row **out, size_t *n, int64_t *live_peak,
                                 int64_t *open, struct usersd_err *err);
enum usersd_code pg_presence_counts(struct store *base, int64_t *manual, int64_t *dnd,
                                    struct usersd_err *err);
enum usersd_code pg_status_message(struct store *base, int64_t id, const char *text,
                                   int64_t expires, int64_t now, struct usersd_user *out,
                                   struct usersd_err *err);
enum usersd_code pg_status_message_expire(struct store *base, int64_t now, int64_t *n,
                                          struct usersd_err *err);

#endif
