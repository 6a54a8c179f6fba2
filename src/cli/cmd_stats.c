/* cmd_stats.c — `usersd stats`: the statistics, as the API shows them. */
#include "cli.h"
#include "render.h"

static const char usage[] = "usage: usersd stats --db URL\n"
                            "\n"
                            "Prints the user statistics as JSON.\n";

int cmd_stats(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db";
    const struct opt opts[] = {{"db", OPT_STR, "USERSD_DB", &db, 0, 0}, {0}};
    int npos, rc = opts_parse("stats", usage, opts, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (opts_check_db("stats", db)) return 2;
    struct usersd *u = cli_open("stats", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    struct usersd_stats s;
    rc = usersd_stats(u, &s, &err) ? cli_error("stats", &err) : cli_print(render_stats(&s));
    usersd_close(u);
    return rc;
}
