/* cmd_seed.c — `usersd seed`: many synthetic users at once, and tokens to
 * act as many of them, for load tests and benchmarks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "usage: usersd seed --db URL [--users N] [--password P] [--tokens K FILE]\n"
    "\n"
    "Adds N synthetic users (seed<k>, seed<k>@example.com) in one\n"
    "transaction: 10 % online, 10 % away, 80 % offline, last_seen spread over\n"
    "the last month, all with password P (default seed-password). Meant for a\n"
    "fresh database (its indexes are rebuilt); progress shows on a terminal.\n"
    "\n"
    "--tokens K FILE (after adding the users, or alone on a database that\n"
    "has them) mints K sessions for K distinct active users picked at\n"
    "random, straight into the database (no login, no presence change), and\n"
    "writes their tokens to FILE (created with mode 0600), one per line, so a\n"
    "load test can act as many different users. K is at most 1000000 and at\n"
    "most the number of active users.\n";

static double since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int write_token(const char *key, int64_t user_id, void *arg)
{
    (void)user_id;
    return fprintf(arg, "%s\n", key) < 0;
}

/* Mints k tokens into path; returns the exit code. */
static int seed_tokens(struct usersd *u, int64_t k, const char *path)
{
    /* Tokens are credentials: only the owner may read the file. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "usersd seed: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return 1;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct usersd_err err = {0};
    int rc = usersd_seed_sessions(u, k, write_token, f, &err) ? cli_error("seed", &err) : 0;
    if (fclose(f) != 0 && !rc) {
        fprintf(stderr, "usersd seed: cannot write %s: %s\n", path, strerror(errno));
        rc = 1;
    }
    if (!rc)
        fprintf(stderr, "usersd seed: minted %lld tokens in %.1f s into %s\n", (long long)k,
                since(&t0), path);
    return rc;
}

int cmd_seed(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db", *password = "seed-password";
    int64_t n = 0, k = 0;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"users", OPT_INT, NULL, &n, 1, 100000000},
        {"password", OPT_STR, NULL, &password, 0, 0},
        {"tokens", OPT_INT, NULL, &k, 1, USERSD_SEED_TOKENS_MAX},
        {0},
    };
    char *pos[1];
    int npos, rc = opts_parse("seed", usage, opts, argc, argv, pos, 1, &npos);
    if (rc >= 0) return rc;
    if (!n && !k) return opts_fail("seed", "--users or --tokens is required");
    if (k && !npos) return opts_fail("seed", "--tokens needs a FILE to write the tokens to");
    if (!k && npos) return opts_fail("seed", "unexpected argument '%s'", pos[0]);
    if (opts_check_db("seed", db)) return 2;
    struct usersd *u = cli_open("seed", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    rc = 0;
    if (k) {
        /* Before any user is added: a run that cannot mint its tokens
         * changes nothing. */
        struct usersd_stats st;
        if (usersd_stats(u, &st, &err)) {
            rc = cli_error("seed", &err);
        } else if (st.active_users + n < k) {
            rc = opts_fail("seed", "--tokens %lld is more than the %lld active users", (long long)k,
                           (long long)(st.active_users + n));
        }
    }
    if (!rc && n) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        enum usersd_code code = usersd_seed(u, n, password, &err);
        progress_end();
        rc = code ? cli_error("seed", &err) : 0;
        if (!rc)
            fprintf(stderr, "usersd seed: added %lld users in %.1f s\n", (long long)n, since(&t0));
    }
    if (!rc && k) rc = seed_tokens(u, k, pos[0]);
    usersd_close(u);
    return rc;
}
