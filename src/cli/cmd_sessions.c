/* cmd_sessions.c — `usersd sessions`: one user's sessions (logins on their
 * devices), listed or revoked, for operators. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "render.h"

static const char usage[] =
    "usage: usersd sessions --db URL USER_ID [--revoke ID|all]\n"
    "\n"
    "Prints the user's sessions as JSON, most recently used first (the same\n"
    "shape as GET /api/users/management/users/<id>/sessions/). --revoke ID\n"
    "ends one session, --revoke all every session of the user; its token\n"
    "stops working at once in every process, and the user goes offline unless\n"
    "another of their sessions is still in use. Prints {\"revoked\": N}.\n";

int cmd_sessions(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db", *revoke = NULL;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"revoke", OPT_STR, NULL, &revoke, 0, 0},
        {0},
    };
    char *pos[1];
    int npos, rc = opts_parse("sessions", usage, opts, argc, argv, pos, 1, &npos);
    if (rc >= 0) return rc;
    if (npos < 1) return opts_fail("sessions", "USER_ID is required");
    int64_t id = 0, session = 0;
    if (opts_user_id("sessions", pos[0], &id)) return 2;
    bool all = revoke && !strcmp(revoke, "all");
    if (revoke && !all) {
        char *end = NULL;
        long long v =
            strspn(revoke, "0123456789") == strlen(revoke) ? strtoll(revoke, &end, 10) : 0;
        if (v <= 0 || !end || *end)
            return opts_fail("sessions", "--revoke takes a session id or 'all', not '%s'", revoke);
        session = v;
    }
    if (opts_check_db("sessions", db)) return 2;
    struct usersd *u = cli_open("sessions", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    if (revoke) {
        int64_t n = 1;
        enum usersd_code code = all ? usersd_session_revoke_all(u, id, 0, &n, &err)
                                    : usersd_session_revoke(u, id, session, &err);
        rc = code ? cli_error("sessions", &err) : cli_print(json_pack("{s:I}", "revoked", n));
    } else {
        struct usersd_sessions list;
        if (usersd_session_list(u, id, 0, &list, &err)) {
            rc = cli_error("sessions", &err);
        } else {
            rc = cli_print_text(render_sessions_text(&list, NULL));
            usersd_sessions_free(&list);
        }
    }
    usersd_close(u);
    return rc;
}
