/* cmd_online.c — `usersd online`: the online users page, as the API shows it. */
#include "cli.h"
#include "render.h"

static const char usage[] = "usage: usersd online --db URL [--page N] [--per-page N]\n"
                            "\n"
                            "Prints the online users page (newest last_seen first) as JSON.\n";

int cmd_online(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db";
    int64_t page = 1, per_page = USERSD_PER_PAGE_DEFAULT;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"page", OPT_INT, NULL, &page, 1, INT32_MAX},
        {"per-page", OPT_INT, NULL, &per_page, 1, INT32_MAX},
        {0},
    };
    int npos, rc = opts_parse("online", usage, opts, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (opts_check_db("online", db)) return 2;
    struct usersd *u = cli_open("online", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    struct usersd_page p;
    rc = usersd_online_users(u, (int)page, (int)per_page, &p, &err)
             ? cli_error("online", &err)
             : cli_print_text(render_online_page_text(&p, RENDER_OPERATOR, NULL));
    usersd_page_free(&p);
    usersd_close(u);
    return rc;
}
