/* cmd_routes.c — `usersd routes`: the server's route table as JSON, so the
 * OpenAPI document can be checked against the code (tests/http/test_ops.py). */
#include "cli.h"
#include "server.h"

static const char usage[] =
    "usage: usersd routes\n"
    "\n"
    "Prints the HTTP route table (method, path, who may call it) as JSON.\n";

int cmd_routes(int argc, char **argv)
{
    static const char *const auth[] = {"anyone", "user", "self-or-staff", "staff"};
    int npos,
        rc = opts_parse("routes", usage, (const struct opt[]){{0}}, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    json_t *a = json_array();
    for (int i = 0; a && i < router_count(); i++) {
        const struct route *r = router_at(i);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "method", r->method, "path",
                                           r->pattern, "auth", auth[r->auth]));
    }
    return cli_print(a);
}
