/* cmd_migrate.c — `usersd migrate`: opening the database applies every
 * pending numbered migration. */
#include <stdio.h>

#include "cli.h"

static const char usage[] = "usage: usersd migrate --db URL\n"
                            "\n"
                            "Creates or upgrades the database schema (serve and createuser also\n"
                            "do it when they start).\n";

int cmd_migrate(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db";
    const struct opt opts[] = {{"db", OPT_STR, "USERSD_DB", &db, 0, 0}, {0}};
    int npos, rc = opts_parse("migrate", usage, opts, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (opts_check_db("migrate", db)) return 2;
    struct usersd *u = cli_open("migrate", db);
    if (!u) return 1;
    usersd_close(u);
    fprintf(stderr, "usersd migrate: %s is up to date\n", db);
    return 0;
}
