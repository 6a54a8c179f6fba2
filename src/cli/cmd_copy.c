/* cmd_copy.c — `usersd copy`: moves a deployment from one database into
 * another, empty one (typically SQLite → PostgreSQL), all or nothing, with
 * its progress on a terminal (progress.c). */
#include <stdio.h>

#include "cli.h"

static const char usage[] =
    "usage: usersd copy --from URL --to URL\n"
    "\n"
    "Copies every user (ids, password hashes, presence, status messages),\n"
    "every session and the presence history from one database into another,\n"
    "empty one: e.g. from sqlite:usersd.db to\n"
    "postgresql://user:pass@host:5432/usersd. Stop the servers on the source\n"
    "first, so nothing changes during the copy.\n"
    "\n"
    "All or nothing (not resumable): the copy is one transaction on the\n"
    "destination, so a copy that fails or is interrupted (Ctrl-C, kill, a lost\n"
    "connection) leaves it as it was; just run it again. On a terminal, the\n"
    "progress shows on stderr: the step, rows done, the rate, the time left.\n";

int cmd_copy(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    const struct opt opts[] = {
        {"from", OPT_STR, NULL, &from, 0, 0},
        {"to", OPT_STR, NULL, &to, 0, 0},
        {0},
    };
    int npos, rc = opts_parse("copy", usage, opts, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!from || !to) return opts_fail("copy", "--from and --to are both required");
    if (opts_check_db("copy", from) || opts_check_db("copy", to)) return 2;
    struct usersd *src = cli_open("copy", from);
    if (!src) return 1;
    struct usersd *dst = cli_open("copy", to);
    if (!dst) {
        usersd_close(src);
        return 1;
    }
    int64_t users = 0, tokens = 0;
    struct usersd_err err = {0};
    enum usersd_code code = usersd_copy(src, dst, &users, &tokens, &err);
    progress_end();
    rc = code ? cli_error("copy", &err) : 0;
    if (!rc)
        fprintf(stderr, "usersd copy: copied %lld user(s) and %lld session(s)\n", (long long)users,
                (long long)tokens);
    usersd_close(dst);
    usersd_close(src);
    return rc;
}
