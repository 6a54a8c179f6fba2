/* password.c — argon2id password hashes (libsodium), for the users module
 * (create, update, seed) and logins (auth.c). */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

enum usersd_code password_hash(const char *password, char *out, struct usersd_err *err)
{
    _Static_assert(crypto_pwhash_STRBYTES <= PASSWORD_HASH_MAX, "hash buffer too small");
    /* OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. libsodium's
     * "interactive" 64 MiB would alone exceed our 64 MiB RSS budget during
     * a login; the parameters live in each hash, so they can be raised
     * later without breaking stored passwords. */
    if (crypto_pwhash_str_alg(out, password, strlen(password), 2, 19 * 1024 * 1024,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return err_set(err, USERSD_ENOMEM, "not enough memory to hash the password");
    return USERSD_OK;
}

bool password_matches(const char *hash, const char *password)
{
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

/* A fixed dummy hash, so an unknown username costs the same time as a wrong
 * password and the reply does not tell which users exist. */
static char dummy[PASSWORD_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    password_hash("not a password", dummy, NULL);
}

void password_spend(const char *password)
{
    pthread_once(&dummy_once, make_dummy);
    (void)password_matches(dummy, password); /* never matches: not a user's input */
}
