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

/* Whole rows, for copying one database into another. */
struct store_user_row {
    struct usersd_user user;
    char pwhash[128];
};
struct store_token_row {
    unsigned char hash[STORE_TOKEN_HASH_LEN];
    int64_t user_id;
    int64_t created;
};

/* A presence transition asked of the driver. */
struct store_status_change {
    int64_t user_id;
    enum usersd_status status;
    int64_t last_seen; /* the new last_seen, or USERSD_NULL_TIME to keep it */
    int64_t now;       /* when the change happens (for the change log) */
};

struct store_ops {
    const char *scheme; /* "sqlite", "postgresql" */
    const char *alias;  /* another scheme name, or NULL */
    bool full_url;      /* open gets the whole URL, not what follows "scheme:" */
    /* target is the URL after "scheme:" (or the whole URL, see full_url). */
    enum usersd_code (*open)(struct store **out, const char *target, struct usersd_err *err);
    void (*close)(struct store *s);
    enum usersd_code (*ping)(struct store *s, struct usersd_err *err);

    /* u->id and the stored copy are filled on success. ECONFLICT with
     * err->field "username" or "email" on a duplicate. */
    enum usersd_code (*user_insert)(struct store *s, struct usersd_user *u, const char *pwhash,
                                    struct usersd_err *err);
    enum usersd_code (*user_get)(struct store *s, int64_t id, struct usersd_user *out,
                                 struct usersd_err *err);
    /* Case-insensitive username lookup, with the password hash
     * (AUTH_HASH_MAX bytes). ENOTFOUND when absent. */
    enum usersd_code (*user_get_auth)(struct store *s, const char *username,
                                      struct usersd_user *out, char *pwhash,
                                      struct usersd_err *err);
    /* Writes the profile fields of u (not presence); pwhash NULL keeps the
     * password. ENOTFOUND, ECONFLICT as for insert. */
    enum usersd_code (*user_update)(struct store *s, const struct usersd_user *u,
                                    const char *pwhash, struct usersd_err *err);
    /* Deletes the user with its tokens; a user not offline is logged going
     * offline at now, so streams do not show it online forever. ENOTFOUND
     * when absent. */
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
    /* last_seen = now where it is null or older than before; *updated
     * tells whether a row changed. */
    enum usersd_code (*touch)(struct store *s, int64_t id, int64_t now, int64_t before,
                              bool *updated, struct usersd_err *err);

    /* Decay: online users with last_seen < away_before become away; online
     * or away users with last_seen < offline_before become
     * offline (USERSD_NULL_TIME turns either off). Logged at now; *changed
     * gets the number of transitions. Atomic per statement. */
    enum usersd_code (*decay)(struct store *s, int64_t now, int64_t away_before,
                              int64_t offline_before, int64_t *changed, struct usersd_err *err);
    /* Changes with seq > since (at most limit); EGONE if pruned past since. */
    enum usersd_code (*changes)(struct store *s, int64_t since, int limit,
                                struct usersd_changes *out, struct usersd_err *err);
    enum usersd_code (*changes_head)(struct store *s, int64_t *seq, struct usersd_err *err);
    /* Deletes changes logged before `before`, remembering the highest seq. */
    enum usersd_code (*changes_prune)(struct store *s, int64_t before, struct usersd_err *err);

    /* Waits up to timeout_ms for another connection's change to the log;
     * NULL when the driver cannot (the caller polls instead). */
    enum usersd_code (*changes_wait)(struct store *s, int timeout_ms, bool *notified,
                                     struct usersd_err *err);

    /* Copying (usersd copy). dump_* read up to cap rows after a key (id;
     * token hash, NULL for the start) in key order. load writes rows as
     * they are, ids included, in one transaction. load_finish moves the
     * id and seq counters past what was loaded, the log's to log_head. */
    enum usersd_code (*dump_users)(struct store *s, int64_t after_id, size_t cap,
                                   struct store_user_row *rows, size_t *n, struct usersd_err *err);
    enum usersd_code (*dump_tokens)(struct store *s, const unsigned char *after, size_t cap,
                                    struct store_token_row *rows, size_t *n,
                                    struct usersd_err *err);
    enum usersd_code (*load)(struct store *s, const struct store_user_row *users, size_t nu,
                             const struct store_token_row *tokens, size_t nt,
                             struct usersd_err *err);
    enum usersd_code (*load_finish)(struct store *s, int64_t log_head, struct usersd_err *err);

    /* Inserts n synthetic users in one statement (usersd seed): names
     * seed<k>, 10 % online, 10 % away, 80 % offline, last_seen spread
     * before now; all with the password hash pwhash. */
    enum usersd_code (*seed)(struct store *s, int64_t n, int64_t now, const char *pwhash,
                             struct usersd_err *err);

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

    enum usersd_code (*token_insert)(struct store *s, const unsigned char *hash, int64_t user_id,
                                     int64_t now, struct usersd_err *err);
    /* The token's user (active or not). ENOTFOUND when no such token. */
    enum usersd_code (*token_user)(struct store *s, const unsigned char *hash,
                                   struct usersd_user *out, struct usersd_err *err);
    /* Deletes the token; *user_id receives its owner. ENOTFOUND if absent. */
    enum usersd_code (*token_delete)(struct store *s, const unsigned char *hash, int64_t *user_id,
                                     struct usersd_err *err);
};

enum { BATCH_BEGIN, BATCH_COMMIT, BATCH_ROLLBACK };

struct store {
    const struct store_ops *ops;
};

/* Opens the driver named by url's scheme. */
enum usersd_code store_open(struct store **out, const char *url, struct usersd_err *err);
void store_close(struct store *s);
/* "%search%" with LIKE's wildcards and the escape escaped (malloc'd; NULL
 * when out of memory): a search is a plain substring in every driver. */
char *store_like_pattern(const char *search);

extern const struct store_ops store_sqlite_ops;
#ifdef USERSD_WITH_PG
extern const struct store_ops store_pg_ops;
#endif

#endif
