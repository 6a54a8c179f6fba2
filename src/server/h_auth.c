/* h_auth.c — login and logout (API.md §3), and the browser session cookie. */
#include <stdio.h>

#include "server.h"

void h_login(struct req *r)
{
    const char *username = NULL, *password = NULL;
    if (!body_str(r, "username", &username) || !body_str(r, "password", &password)) return;
    if (!username || !password) {
        reply_fail(r, 400, username ? "password" : "username", "%s is required",
                   username ? "password" : "username");
        return;
    }
    struct usersd_err err = {0};
    struct usersd_user user;
    char key[USERSD_TOKEN_LEN + 1];
    if (!r->core) r->core = server_core(&err);
    if (!r->core) { /* the database is away */
        reply_err(r, &err);
        return;
    }
    if (usersd_login(r->core, username, password, key, &user, &err)) {
        reply_err(r, &err);
        return;
    }
    r->caller = user; /* for the access log */
    char cookie[160];
    snprintf(cookie, sizeof cookie, "usersd_session=%s; HttpOnly; SameSite=Strict; Path=/%s", key,
             server_config()->cookie_secure ? "; Secure" : "");
    reply_header(r, "Set-Cookie", cookie);
    struct render_viewer self = {.id = user.id, .staff = user.is_staff};
    reply_json(r, 200, json_pack("{s:s, s:o}", "token", key, "user", render_user(&user, self)));
}

void h_logout(struct req *r)
{
    struct usersd_err err = {0};
    if (usersd_logout(r->core, r->token, &err)) {
        reply_err(r, &err);
        return;
    }
    reply_header(r, "Set-Cookie", "usersd_session=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/");
    reply_empty(r, 204);
}
