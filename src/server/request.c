/* request.c — what a request must pass before its handler runs, in the
 * order API.md §6 "Which error wins" gives: credentials (401), permission
 * (403), body size (413), content type (415); then its body and query
 * values, strictly typed (400). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "server.h"

/* ---- credentials ---------------------------------------------------------- */

/* OWASP's check for cookie-authenticated unsafe requests: Origin (or, when
 * absent, Referer) must be this server's own origin or a trusted one. */
static bool csrf_ok(struct req *r)
{
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!origin) origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Referer");
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    const struct server_config *cfg = server_config();
    return parse_origin_allowed(origin, host, cfg->cookie_secure, cfg->trusted_origins,
                                (size_t)cfg->n_trusted);
}

/* Finds the caller. Returns 0 when authenticated or when no credentials were
 * sent (r->authed false), else the status already queued. */
static int authenticate(struct req *r)
{
    const char *hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    const char *key = NULL;
    size_t key_len = 0;
    bool via_cookie = false;
    if (hdr) {
        if (!parse_authorization(hdr, strlen(hdr), &key, &key_len)) {
            reply_fail(r, 401, NULL, "the Authorization header must be 'Token <key>'");
            return 401;
        }
    } else {
        key = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "usersd_session");
        via_cookie = key != NULL;
        key_len = key ? strlen(key) : 0;
    }
    if (!key) return 0;
    /* A key of the wrong shape is refused before any lookup. */
    struct usersd_err err = {.code = USERSD_EAUTH, .msg = "invalid token"};
    enum usersd_code rc = USERSD_EAUTH;
    if (parse_token_shape(key, key_len)) {
        struct usersd_user user;
        struct usersd_session session;
        rc = usersd_session_resolve(r->core, key, &user, &session, &err);
        if (rc == USERSD_OK) {
            r->caller = (struct req_caller){user.id, user.is_staff, user.online_status,
                                            user.last_seen, user.status_manual};
            r->session.id = session.id;
            r->session.last_used = session.last_used;
            /* Activity is a write (at most once per activity interval): the
             * group-commit writer takes it with its next batch and the
             * request does not wait for it. Presence writes of the caller's
             * own (heartbeat, own status) carry it in their own write. */
            if (!r->route->own_activity && usersd_activity_due(r->core, &user, session.last_used)) {
                int64_t at = usersd_now(r->core);
                writer_activity(user.id, session.id, at);
                /* as the writer will have it (a manual status keeps it) */
                if (!user.status_manual && usersd_activity_due(r->core, &user, USERSD_NULL_TIME))
                    r->caller.last_seen = at;
            }
        }
    }
    if (rc) {
        reply_err(r, &err);
        return usersd_http_status(rc);
    }
    if (via_cookie && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
        !csrf_ok(r)) {
        reply_fail(r, 403, NULL,
                   "cross-site request refused: the Origin or Referer header must match this "
                   "server (or a --trusted-origin)");
        return 403;
    }
    memcpy(r->token, key, USERSD_TOKEN_LEN); /* the shape was checked: exactly this long */
    r->token[USERSD_TOKEN_LEN] = 0;
    r->authed = true;
    return 0;
}

static enum body_type content_type(struct req *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct) return BODY_NONE;
    size_t n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", n) == 0) return BODY_JSON;
    if (n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0) return BODY_FORM;
    return BODY_OTHER;
}

/* The first query parameter that is not text, if any: its name when the
 * name itself is text (it goes into the reply), else "". */
struct bad_query {
    bool found;
    char name[32];
};

static enum MHD_Result query_arg_check(void *cls, enum MHD_ValueKind kind, const char *key,
                                       size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct bad_query *b = cls;
    if (parse_query_text(key, key_size) && (!value || parse_query_text(value, value_size)))
        return MHD_YES;
    b->found = true;
    if (parse_query_text(key, key_size) && key_size < sizeof b->name)
        memcpy(b->name, key, key_size + 1);
    return MHD_NO;
}

/* Query names and values are UTF-8 text without NUL (MHD has decoded
 * %XX): handlers read them as C strings, which a NUL would cut short, and
 * PostgreSQL refuses text that is not UTF-8. */
static bool query_ok(struct req *r)
{
    struct bad_query b = {0};
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, query_arg_check, &b);
    if (!b.found) return true;
    reply_fail(r, 400, b.name[0] ? b.name : NULL,
               "query parameter %s%s%smust be UTF-8 text without NUL characters",
               b.name[0] ? "'" : "", b.name, b.name[0] ? "' " : "");
    return false;
}

bool request_precheck(struct req *r)
{
    struct usersd_err err = {0};
    r->checked = true;
    r->core = server_core(&err);
    if (!r->core && r->route->auth != AUTH_NONE) {
        reply_err(r, &err);
        return false;
    } /* open routes check r->core themselves: /healthz needs none */
    /* A GET only reads: one snapshot for all of its reads (one lock). Only
     * when checks and handler run in one call: the thread serves other
     * connections between calls, and they must not run inside it. */
    if (r->core && r->bodyless && (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"))) {
        r->read_scope = usersd_read_begin(r->core, NULL) == USERSD_OK;
        /* GET .../users/{id}/...: read that user with the token's check */
        if (r->path_id > 0 && r->route->auth != AUTH_NONE) usersd_read_hint(r->core, r->path_id);
    }
    if (r->route->auth != AUTH_NONE) {
        if (authenticate(r)) return false;
        if (!r->authed) {
            reply_fail(r, 401, NULL, "authentication credentials were not provided");
            return false;
        }
        bool staff = r->caller.is_staff;
        if ((r->route->auth == AUTH_STAFF && !staff) ||
            (r->route->auth == AUTH_SELF_OR_STAFF && !staff && r->caller.id != r->path_id)) {
            reply_fail(r, 403, NULL, "you do not have permission to perform this action");
            return false;
        }
    }
    const char *len = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (len && strtoull(len, NULL, 10) > SERVER_BODY_MAX) {
        reply_fail(r, 413, NULL, "the request body is larger than 64 KiB");
        return false;
    }
    r->body_type = content_type(r);
    bool has_body =
        len ? strtoull(len, NULL, 10) > 0
            : MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL;
    if (r->body_type == BODY_OTHER || (r->body_type == BODY_NONE && has_body)) {
        reply_fail(r, 415, NULL,
                   "the body must be application/json or application/x-www-form-urlencoded");
        return false;
    }
    return query_ok(r);
}

bool request_body_append(struct req *r, const char *data, size_t size)
{
    if (r->body_len + size > SERVER_BODY_MAX) return false;
    if (r->body_len + size + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + size + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb) return false;
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, size);
    r->body_len += size;
    r->body[r->body_len] = 0;
    return true;
}

/* ---- body ------------------------------------------------------------------ */

bool request_parse_body(struct req *r, bool required)
{
    if (r->body_len == 0) {
        if (required) {
            reply_fail(r, 400, NULL, "the request body must be a JSON object");
            return false;
        }
        r->json = json_object();
        return r->json != NULL;
    }
    if (r->body_type == BODY_FORM) {
        r->json = parse_form(r->body, r->body_len);
        if (!r->json) {
            reply_fail(r, 400, NULL, "the form body is malformed");
            return false;
        }
        return true;
    }
    char msg[sizeof r->errmsg];
    r->json = parse_json_object(r->body, r->body_len, msg, sizeof msg);
    if (!r->json) {
        reply_fail(r, 400, NULL, "%s", msg);
        return false;
    }
    return true;
}

bool body_str(struct req *r, const char *name, const char **out)
{
    switch (parse_field_str(r->json, name, out)) {
    case PARSE_FIELD_WRONG_TYPE:
        reply_fail(r, 400, name, "%s must be a string", name);
        return false;
    case PARSE_FIELD_NUL:
        reply_fail(r, 400, name, "%s may not contain NUL characters", name);
        return false;
    default:
        return true;
    }
}

bool body_bool(struct req *r, const char *name, int *out)
{
    if (parse_field_bool(r->json, name, r->body_type == BODY_FORM, out) == PARSE_FIELD_WRONG_TYPE) {
        reply_fail(r, 400, name, "%s must be true or false", name);
        return false;
    }
    return true;
}

bool body_int(struct req *r, const char *name, int64_t *out, bool *given)
{
    enum parse_field f = parse_field_int(r->json, name, r->body_type == BODY_FORM, out);
    *given = f != PARSE_FIELD_ABSENT;
    if (f != PARSE_FIELD_WRONG_TYPE) return true;
    reply_fail(r, 400, name, "%s must be a whole number", name);
    return false;
}

/* ---- query ----------------------------------------------------------------- */

const char *query_str(struct req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

bool query_int(struct req *r, const char *name, int *out)
{
    const char *v = query_str(r, name);
    int64_t n;
    if (!v) return true;
    if (!parse_uint(v, strlen(v), PARSE_QUERY_INT_MAX, &n)) {
        reply_fail(r, 400, name, "%s must be a whole number from 0 to 2147483647", name);
        return false;
    }
    *out = (int)n;
    return true;
}

bool query_bool(struct req *r, const char *name, int *out)
{
    const char *v = query_str(r, name);
    if (!v) return true;
    int b = parse_bool(v, strlen(v));
    if (b < 0) {
        reply_fail(r, 400, name, "%s must be true, false, 1 or 0", name);
        return false;
    }
    *out = b;
    return true;
}

bool query_page(struct req *r, int *page, int *per_page)
{
    *page = 1;
    *per_page = USERSD_PER_PAGE_DEFAULT;
    if (!query_int(r, "page", page) || !query_int(r, "per_page", per_page)) return false;
    if (*page < 1 || *per_page < 1) {
        reply_fail(r, 400, *page < 1 ? "page" : "per_page", "%s must be 1 or more",
                   *page < 1 ? "page" : "per_page");
        return false;
    }
    if (*per_page > USERSD_PER_PAGE_MAX) *per_page = USERSD_PER_PAGE_MAX;
    return true;
}

struct render_viewer request_viewer(const struct req *r)
{
    return (struct render_viewer){.id = r->caller.id, .staff = r->caller.is_staff};
}

void request_end_reads(struct req *r)
{
    if (!r->read_scope) return;
    usersd_read_end(r->core);
    r->read_scope = false;
}
