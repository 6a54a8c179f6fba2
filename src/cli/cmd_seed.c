/* cmd_seed.c — `usersd seed`: many synthetic users at once, for load tests
 * and benchmarks. */
#include <stdio.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "usage: usersd seed --db URL --users N [--password P]\n"
    "\n"
    "Adds N synthetic users (seed<k>, seed<k>@example.com) in one\n"
    "transaction: 10 % online, 10 % away, 80 % offline, last_seen spread over\n"
    "the last month, all with password P (default seed-password). Meant for a\n"
    "fresh database (its indexes are rebuilt); progress shows on a terminal.\n";

int cmd_seed(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db", *password = "seed-password";
    int64_t n = 0;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"users", OPT_INT, NULL, &n, 1, 100000000},
        {"password", OPT_STR, NULL, &password, 0, 0},
        {0},
    };
    int npos, rc = opts_parse("seed", usage, opts, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!n) return opts_fail("seed", "--users is required");
    if (opts_check_db("seed", db)) return 2;
    struct usersd *u = cli_open("seed", db);
    if (!u) return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct usersd_err err = {0};
    enum usersd_code code = usersd_seed(u, n, password, &err);
    progress_end();
    rc = code ? cli_error("seed", &err) : 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!rc)
        fprintf(stderr, "usersd seed: added %lld users in %.1f s\n", (long long)n,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    usersd_close(u);
    return rc;
}
