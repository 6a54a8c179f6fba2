/* internal.h — what the libusersd modules share; never installed. */
#ifndef USERSD_INTERNAL_H
#define USERSD_INTERNAL_H

#include "usersd.h"
#include "store.h"

/* Tokens this handle resolved, with the database version they were read
 * at (auth.c): while nothing was committed anywhere, a token means the same
 * user, so the lookup is not repeated. Any commit (a revocation, a
 * deactivation, a touch) changes the version and empties it in effect. */
#define TOKEN_CACHE 16
struct token_cache_entry {
    bool used;
    uint64_t version;
    unsigned char hash[STORE_TOKEN_HASH_LEN];
    struct usersd_user user;
    int64_t session_id, session_created, session_last_used;
};

struct usersd {
    struct store *store; /* owned */
    struct usersd_config cfg;
    struct token_cache_entry tokens[TOKEN_CACHE];
};

/* Fills err (when non-NULL) and returns code. fmt NULL: the table message. */
enum usersd_code err_set(struct usersd_err *err, enum usersd_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, naming the field the error is about. */
enum usersd_code err_field(struct usersd_err *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Validation of user fields (users.c); on failure EINVAL naming the field. */
enum usersd_code users_validate(const struct usersd_user_fields *f, bool creating,
                                struct usersd_err *err);
/* UTF-8 (utf8.c). Counts the code points of a valid UTF-8 string. */
size_t utf8_len(const char *s);
/* One UTF-8 sequence at s: its length (1-4) with its code point in *cp, or
 * 0 when it is not valid UTF-8 (overlong, surrogate, past U+10FFFF, cut). */
size_t utf8_next(const unsigned char *s, uint32_t *cp);
/* A code point of Unicode's Cc category (C0, DEL, C1). */
#define UTF8_CONTROL(cp) ((cp) < 0x20 || ((cp) >= 0x7f && (cp) < 0xa0))

/* Status messages (messages.c): an ended message is never returned, even
 * before the sweep clears it; this blanks it in users read at now. */
void messages_fresh(const struct usersd *u, struct usersd_user *users, size_t n);

/* Sessions (sessions.c). The presence rule's window: a session used at or
 * after this instant keeps its user's status when another session ends. */
int64_t sessions_active_after(const struct usersd *u);
/* A login's User-Agent as kept: at most USERSD_USER_AGENT_MAX characters
 * of printable UTF-8, anything else replaced by U+FFFD. out holds
 * USERSD_USER_AGENT_MAX * 4 + 1 bytes. */
void sessions_clean_agent(const char *in, char *out, size_t size);

/* History (history.c): minute rows with from <= minute < to
 * (store_ops.minutes_read) as a read now shows them: the latest one
 * recorded with the peak its closing sample will give it (rows malloc'd). */
enum usersd_code history_minutes(struct usersd *u, int64_t from, int64_t to,
                                 struct store_minute_row **rows, size_t *n, struct usersd_err *err);
/* A user's intervals over [from, to) from their changes sh, known from
 * `known` (USERSD_NULL_TIME: never) until now, the user's status now being
 * current. Pure; ENOMEM. */
enum usersd_code history_build(int64_t from, int64_t to, int64_t now, int64_t known, int current,
                               const struct store_history *sh, struct usersd_history *out);

/* usersd_seed's bulk load (copy.c): n synthetic users with this password
 * hash, in one transaction. */
enum usersd_code copy_seed(struct usersd *u, int64_t n, const char *pwhash, struct usersd_err *err);

/* Passwords (password.c): an argon2id hash of password into out, which
 * holds PASSWORD_HASH_MAX bytes; ENOMEM. */
#define PASSWORD_HASH_MAX 128
enum usersd_code password_hash(const char *password, char *out, struct usersd_err *err);
/* Whether password is the one hash was made from. */
bool password_matches(const char *hash, const char *password);
/* Takes as long as checking a wrong password (for an unknown user). */
void password_spend(const char *password);

#endif
