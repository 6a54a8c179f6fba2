/* cmd_status.c — `usersd status`: one user's presence, read or set. */
#include <string.h>

#include "cli.h"
#include "render.h"

static const char usage[] =
    "usage: usersd status --db URL USER_ID [online|away|offline [--manual]]\n"
    "\n"
    "Prints one user's online status as JSON; with a status, sets it\n"
    "first (as POST set-online-status does) and prints the result.\n"
    "--manual sets away or offline by hand (offline is invisible): kept against\n"
    "heartbeats, activity, logins, logouts and decay until a status is set again.\n";

int cmd_status(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db";
    bool manual = false;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0}, {"manual", OPT_FLAG, NULL, &manual, 0, 0}, {0}};
    char *pos[2];
    int npos, rc = opts_parse("status", usage, opts, argc, argv, pos, 2, &npos);
    if (rc >= 0) return rc;
    if (npos < 1) return opts_fail("status", "USER_ID is required");
    int64_t id = 0;
    if (opts_user_id("status", pos[0], &id)) return 2;
    enum usersd_status status;
    if (npos == 2 && !usersd_status_parse(pos[1], &status))
        return opts_fail("status", "status must be one of online, away, offline, not '%s'", pos[1]);
    if (manual && npos < 2) return opts_fail("status", "--manual goes with a status");
    if (manual && status == USERSD_ONLINE)
        return opts_fail("status", "--manual goes with away or offline; online is never manual");
    if (opts_check_db("status", db)) return 2;
    struct usersd *u = cli_open("status", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    struct usersd_user user;
    if (npos == 2)
        rc = usersd_set_status_ex(u, id, status, manual ? USERSD_STATUS_MANUAL : 0, &user, &err)
                 ? cli_error("status", &err)
                 : cli_print(render_status_set(&user));
    else
        rc = usersd_get_status(u, id, &user, &err) ? cli_error("status", &err)
                                                   : cli_print(render_status(&user));
    usersd_close(u);
    return rc;
}
