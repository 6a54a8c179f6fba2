/* cmd_createuser.c — `usersd createuser`: the password comes on stdin so it
 * never shows in `ps` or shell history. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "render.h"

static const char usage[] =
    "usage: usersd createuser --db URL --username NAME [--email E] [--first-name F]\n"
    "                         [--last-name L] [--staff] --password-stdin\n"
    "\n"
    "Creates a user; the password is read as one line from standard input.\n"
    "Prints the new user as JSON.\n";

int cmd_createuser(int argc, char **argv)
{
    const char *db = "sqlite:usersd.db";
    struct usersd_user_fields f;
    usersd_user_fields_init(&f);
    bool staff = false, pw_stdin = false;
    const struct opt opts[] = {
        {"db", OPT_STR, "USERSD_DB", &db, 0, 0},
        {"username", OPT_STR, NULL, &f.username, 0, 0},
        {"email", OPT_STR, NULL, &f.email, 0, 0},
        {"first-name", OPT_STR, NULL, &f.first_name, 0, 0},
        {"last-name", OPT_STR, NULL, &f.last_name, 0, 0},
        {"staff", OPT_FLAG, NULL, &staff, 0, 0},
        {"password-stdin", OPT_FLAG, NULL, &pw_stdin, 0, 0},
        {0},
    };
    int npos, rc = opts_parse("createuser", usage, opts, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    if (!f.username) return opts_fail("createuser", "--username is required");
    if (!pw_stdin) return opts_fail("createuser", "--password-stdin is required");
    if (opts_check_db("createuser", db)) return 2;
    char pw[USERSD_PASSWORD_MAX * 4 + 2];
    if (!fgets(pw, sizeof pw, stdin)) {
        fprintf(stderr, "usersd createuser: no password on standard input\n");
        return 1;
    }
    pw[strcspn(pw, "\r\n")] = 0;
    f.password = pw;
    f.is_staff = staff;
    struct usersd *u = cli_open("createuser", db);
    if (!u) return 1;
    struct usersd_err err = {0};
    struct usersd_user user;
    rc = usersd_user_create(u, &f, &user, &err) ? cli_error("createuser", &err)
                                                : cli_print(render_user(&user, RENDER_OPERATOR));
    sodium_memzero(pw, sizeof pw);
    usersd_close(u);
    return rc;
}
