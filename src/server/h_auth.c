/* h_auth.c — login, logout and logout everywhere (API.md §3, §7), and the
 * browser session cookie. */
#include <stdio.h>

#include <sodium.h>

#include "server.h"

/* Runs on a login pool thread (login_limit.c) with that thread's handle:
 * the limit, the password check (argon2id) and the new session. */
static enum usersd_code login_run(struct req *r, struct usersd *core)
{
    const char *username = json_string_value(json_object_get(r->json, "username"));
    const char *password = json_string_value(json_object_get(r->json, "password"));
    r->retry_after = login_limit_begin(r->client_ip, username, &r->ticket);
    if (r->retry_after) return USERSD_OK;
    struct usersd_client client = {.user_agent = r->user_agent, .client_ip = r->client_ip};
    enum usersd_code rc = usersd_session_login(core, username, password, &client, r->minted,
                                               &r->job->user, NULL, &r->job->err);
    login_limit_end(&r->ticket, rc == USERSD_OK      ? LOGIN_OK
                                : rc == USERSD_EAUTH ? LOGIN_FAILED
                                                     : LOGIN_UNDECIDED);
    return rc;
}

/* API.md §11: refused before any password work, even a right one. */
static void too_many(struct req *r, long wait)
{
    char secs[24];
    snprintf(secs, sizeof secs, "%ld", wait);
    reply_header(r, "Retry-After", secs);
    reply_fail(r, 429, NULL, "too many failed logins; try again in %ld seconds", wait);
}

/* Back on the HTTP worker: the reply. */
static void login_reply(struct req *r)
{
    r->job->state = JOB_NONE;
    if (r->retry_after) {
        too_many(r, r->retry_after);
        return;
    }
    if (r->job->rc) {
        reply_err(r, &r->job->err);
        return;
    }
    struct usersd_user user = r->job->user;
    r->caller.id = user.id; /* for the access log */
    char cookie[160];
    snprintf(cookie, sizeof cookie, "usersd_session=%s; HttpOnly; SameSite=Strict; Path=/%s",
             r->minted, server_config()->cookie_secure ? "; Secure" : "");
    reply_header(r, "Set-Cookie", cookie);
    struct render_viewer self = {.id = user.id, .staff = user.is_staff};
    reply_json(r, 200,
               json_pack("{s:s, s:o}", "token", r->minted, "user", render_user(&user, self)));
    sodium_memzero(r->minted, sizeof r->minted);
}

void h_login(struct req *r)
{
    const char *username = NULL, *password = NULL;
    if (!body_str(r, "username", &username) || !body_str(r, "password", &password)) return;
    if (!username || !password) {
        reply_fail(r, 400, username ? "password" : "username", "%s is required",
                   username ? "password" : "username");
        return;
    }
    request_client_ip(r, r->client_ip, sizeof r->client_ip);
    r->user_agent = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "User-Agent");
    long wait = login_limit_check(r->client_ip, username);
    if (wait) {
        too_many(r, wait);
        return;
    }
    login_pool_submit(r, login_run, login_reply);
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
