/* cmd_message.c — `usersd message`: one user's status message, read, set
 * or cleared. */
#include "cli.h"
#include "render.h"

static const char usage[] =
    "usage: usersd message --db URL USER_ID [TEXT [--expires-in S] | --clear]\n"
    "\n"
    "Prints the user's status message as JSON ({\"text\", \"expires_at\"}, or null).\n"
    "With TEXT (1 to 100 characters) sets it first, ending after S seconds when\n"
    "--expires-in is given; --clear removes it. Streams see the change as a\n"
    "status_message event.\n";

int cmd_message(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db";
    int64_t expires_in = 0;
    bool clear = false;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"expires-in", OPT_INT, NULL, &expires_in, 1, INT32_MAX},
        {"clear", OPT_FLAG, NULL, &clear, 0, 0},
        {0},
    };
    char *pos[2];
    int npos, rc = opts_parse("message", usage, opts, argc, argv, pos, 2, &npos);
    if (rc >= 0) return rc;
    if (npos < 1) return opts_fail("message", "USER_ID is required");
    int64_t id = 0;
    if (opts_user_id("message", pos[0], &id)) return 2;
    if (clear && npos == 2) return opts_fail("message", "give TEXT or --clear, not both");
    if (expires_in && npos < 2) return opts_fail("message", "--expires-in goes with TEXT");
    if (opts_check_db("message", db)) return 2;
    struct usersd *u = cli_open("message", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    struct usersd_user user;
    enum usersd_code code;
    if (npos == 2)
        code = usersd_status_message_set(
            u, id, pos[1], expires_in ? usersd_now(u) + expires_in * 1000000 : USERSD_NULL_TIME,
            &user, &err);
    else if (clear)
        code = usersd_status_message_clear(u, id, &user, &err);
    else
        code = usersd_user_get(u, id, &user, &err);
    rc = code ? cli_error("message", &err) : cli_print_text(render_message_text(&user, NULL));
    usersd_close(u);
    return rc;
}
