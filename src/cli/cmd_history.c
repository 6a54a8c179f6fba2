/* cmd_history.c — `usersd history`: one user's presence history, as the
 * API shows it. */
#include "cli.h"
#include "render.h"

static const char usage[] =
    "usage: usersd history --db URL USER_ID [--from TIME] [--to TIME]\n"
    "\n"
    "Prints the user's presence history as JSON (the same shape as GET\n"
    "/api/users/admin/users/<id>/presence-history/): intervals of online, away,\n"
    "offline (unknown before the history kept starts), clipped to the window,\n"
    "and the time in each. TIME is RFC 3339 (2024-01-15T09:00:00Z); the window\n"
    "defaults to the last 24 hours (--from alone: until now) and spans at most\n"
    "31 days.\n";

int cmd_history(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db", *from_s = NULL, *to_s = NULL;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"from", OPT_STR, NULL, &from_s, 0, 0},
        {"to", OPT_STR, NULL, &to_s, 0, 0},
        {0},
    };
    char *pos[1];
    int npos, rc = opts_parse("history", usage, opts, argc, argv, pos, 1, &npos);
    if (rc >= 0) return rc;
    if (npos < 1) return opts_fail("history", "USER_ID is required");
    int64_t id = 0, from = 0, to = 0;
    if (opts_user_id("history", pos[0], &id)) return 2;
    if (from_s && !usersd_time_parse(from_s, &from))
        return opts_fail("history", "--from must be an RFC 3339 time, not '%s'", from_s);
    if (to_s && !usersd_time_parse(to_s, &to))
        return opts_fail("history", "--to must be an RFC 3339 time, not '%s'", to_s);
    if (opts_check_db("history", db)) return 2;
    struct usersd *u = cli_open("history", db);
    if (!u) return 1;
    const int64_t day = 86400LL * 1000000;
    int64_t now = usersd_now(u);
    if (!to_s) to = from_s && from >= now ? from + day : now;
    if (!from_s) from = to - day;
    struct usersd_err err = {0};
    struct usersd_history h;
    if (usersd_presence_history(u, id, from, to, &h, &err)) {
        rc = cli_error("history", &err);
    } else {
        rc = cli_print_text(render_history_text(&h, NULL));
        usersd_history_free(&h);
    }
    usersd_close(u);
    return rc;
}
