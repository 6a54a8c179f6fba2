/* h_auth.c — login, logout and logout everywhere (API.md §3, §7), and the
 * browser session cookie. */
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
    char ip[64];
    request_client_ip(r, ip, sizeof ip);
    struct usersd_client client = {
        .user_agent = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "User-Agent"),
        .client_ip = ip,
    };
    if (usersd_session_login(r->core, username, password, &client, key, &user, NULL, &err)) {
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

void reply_clear_cookie(struct req *r)
{
    char cookie[128];
    snprintf(cookie, sizeof cookie,
             "usersd_session=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/%s",
             server_config()->cookie_secure ? "; Secure" : "");
    reply_header(r, "Set-Cookie", cookie);
}

void h_logout(struct req *r)
{
    struct usersd_err err = {0};
    if (usersd_logout(r->core, r->token, &err)) {
        reply_err(r, &err);
        return;
    }
    metrics_sessions_ended(1, 0);
    reply_clear_cookie(r);
    reply_empty(r, 204);
}

void h_logout_all(struct req *r)
{
    struct usersd_err err = {0};
    int64_t n = 0;
    if (usersd_session_revoke_all(r->core, r->caller.id, 0, &n, &err)) {
        reply_err(r, &err);
        return;
    }
    metrics_sessions_ended(n, 0);
    reply_clear_cookie(r);
    reply_empty(r, 204);
}
