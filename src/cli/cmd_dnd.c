/* cmd_dnd.c — `usersd dnd`: one user's do not disturb, read, turned on or
 * turned off. */
#include "cli.h"
#include "render.h"

static const char usage[] =
    "usage: usersd dnd --db URL USER_ID [--on [--minutes N | --until TIME] | --off]\n"
    "\n"
    "Prints the user's do not disturb as JSON ({\"until\"}, or null when off).\n"
    "--on turns it on for N minutes (1 to 10080), until TIME (RFC 3339, in the\n"
    "future), or with neither until turned off; --off turns it off. It changes\n"
    "no status; streams see the change as a dnd event.\n";

int cmd_dnd(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db", *until_s = NULL;
    int64_t minutes = 0;
    bool on = false, off = false;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"on", OPT_FLAG, NULL, &on, 0, 0},
        {"off", OPT_FLAG, NULL, &off, 0, 0},
        {"minutes", OPT_INT, NULL, &minutes, 1, USERSD_DND_MINUTES_MAX},
        {"until", OPT_STR, NULL, &until_s, 0, 0},
        {0},
    };
    char *pos[1];
    int npos, rc = opts_parse("dnd", usage, opts, argc, argv, pos, 1, &npos);
    if (rc >= 0) return rc;
    if (npos < 1) return opts_fail("dnd", "USER_ID is required");
    int64_t id = 0;
    if (opts_user_id("dnd", pos[0], &id)) return 2;
    if (on && off) return opts_fail("dnd", "give --on or --off, not both");
    if ((minutes || until_s) && !on) return opts_fail("dnd", "--minutes and --until go with --on");
    if (minutes && until_s) return opts_fail("dnd", "give --minutes or --until, not both");
    int64_t until = USERSD_NULL_TIME;
    if (until_s && !usersd_time_parse(until_s, &until))
        return opts_fail("dnd", "--until must be an RFC 3339 time, like 2024-01-15T15:00:00Z");
    if (opts_check_db("dnd", db)) return 2;
    struct usersd *u = cli_open("dnd", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    struct usersd_user user;
    enum usersd_code code;
    if (on)
        code = usersd_dnd_set(u, id, until, minutes ? (int)minutes : -1, &user, &err);
    else if (off)
        code = usersd_dnd_clear(u, id, &user, &err);
    else
        code = usersd_user_get(u, id, &user, &err);
    rc = code ? cli_error("dnd", &err) : cli_print_text(render_dnd_text(&user, NULL));
    usersd_close(u);
    return rc;
}
