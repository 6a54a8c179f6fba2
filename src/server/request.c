/* request.c — what a request must pass before its handler runs, in the
 * order API.md §6 "Which error wins" gives: credentials (401), permission
 * (403), body size (413), content type (415); then its body and query
 * values, strictly typed (400). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* ---- credentials ---------------------------------------------------------- */

/* An origin reduced to scheme://host:port, lower-case, default port added,
 * so that "http://A.example" and "http://a.example:80" compare equal. */
static bool origin_norm(const char *in, size_t len, char *out, size_t size)
{
    const char *sep = memchr(in, ':', len);
    if (!sep || (size_t)(in + len - sep) < 3 || sep[1] != '/' || sep[2] != '/') return false;
    size_t slen = (size_t)(sep - in);
    const char *host = sep + 3, *end = in + len;
    const char *slash = memchr(host, '/', (size_t)(end - host));
    if (slash) end = slash; /* a Referer carries a path: drop it */
    if (end == host) return false;
    bool https = slen == 5 && strncasecmp(in, "https", 5) == 0;
    if (!https && !(slen == 4 && strncasecmp(in, "http", 4) == 0)) return false;
    const char *colon = NULL;
    for (const char *c = host; c < end; c++)
        if (*c == ':')
            colon = c;
        else if (*c == ']')
            colon = NULL; /* inside an IPv6 literal */
    size_t hlen = (size_t)((colon ? colon : end) - host);
    char port[8];
    if (colon) {
        size_t plen = (size_t)(end - colon - 1);
        if (plen == 0 || plen >= sizeof port) return false;
        memcpy(port, colon + 1, plen);
        port[plen] = 0;
    } else {
        snprintf(port, sizeof port, "%s", https ? "443" : "80");
    }
    int n = snprintf(out, size, "%s://%.*s:%s", https ? "https" : "http", (int)hlen, host, port);
    if (n < 0 || (size_t)n >= size) return false;
    for (char *c = out; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    return true;
}

/* OWASP's check for cookie-authenticated unsafe requests: Origin (or, when
 * absent, Referer) must be this server's own origin or a trusted one. */
static bool csrf_ok(struct req *r)
{
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!origin) origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Referer");
    if (!origin) return false;
    char got[300], want[300];
    if (!origin_norm(origin, strlen(origin), got, sizeof got)) return false; /* "null" too */
    const struct server_config *cfg = server_config();
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    if (host) {
        char own[300];
        snprintf(own, sizeof own, "%s://%s", cfg->cookie_secure ? "https" : "http", host);
        if (origin_norm(own, strlen(own), want, sizeof want) && strcmp(got, want) == 0) return true;
    }
    for (int i = 0; i < cfg->n_trusted; i++)
        if (origin_norm(cfg->trusted_origins[i], strlen(cfg->trusted_origins[i]), want,
                        sizeof want) &&
            strcmp(got, want) == 0)
            return true;
    return false;
}

/* Finds the caller. Returns 0 when authenticated or when no credentials were
 * sent (r->authed false), else the status already queued. */
static int authenticate(struct req *r)
{
    const char *hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    const char *key = NULL;
    bool via_cookie = false;
    if (hdr) {
        if (strncasecmp(hdr, "Token ", 6) == 0)
            key = hdr + 6;
        else if (strncasecmp(hdr, "Bearer ", 7) == 0)
            key = hdr + 7;
        else {
            reply_fail(r, 401, NULL, "the Authorization header must be 'Token <key>'");
            return 401;
        }
        while (*key == ' ')
            key++;
    } else {
        key = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "usersd_session");
        via_cookie = key != NULL;
    }
    if (!key) return 0;
    struct usersd_err err = {0};
    enum usersd_code rc = usersd_session_resolve(r->core, key, &r->caller, &r->session, &err);
    /* Activity is a write: inside a read scope it waits for the scope's end.
     * Presence writes of the caller's own (heartbeat, own status) carry it
     * in their group-committed write instead. */
    if (rc == USERSD_OK && !r->route->own_activity) {
        if (r->read_scope)
            r->touch_pending = true;
        else
            rc = usersd_session_activity(r->core, &r->caller, &r->session, &err);
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
    snprintf(r->token, sizeof r->token, "%s", key);
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
    if (r->core && r->bodyless && (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")))
        r->read_scope = usersd_read_begin(r->core, NULL) == USERSD_OK;
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
    return true;
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

static size_t depth(json_t *v)
{
    size_t d = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            size_t c = depth(x);
            if (c > d) d = c;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            size_t c = depth(x);
            if (c > d) d = c;
        }
        return d + 1;
    }
    return 0;
}

/* application/x-www-form-urlencoded into a JSON object of strings. */
static json_t *parse_form(char *body)
{
    json_t *o = json_object();
    char *save = NULL;
    for (char *pair = strtok_r(body, "&", &save); o && pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        char *val = eq ? eq + 1 : pair + strlen(pair);
        if (eq) *eq = 0;
        for (char *c = pair; *c; c++)
            if (*c == '+') *c = ' ';
        for (char *c = val; *c; c++)
            if (*c == '+') *c = ' ';
        size_t kl = MHD_http_unescape(pair), vl = MHD_http_unescape(val);
        if (strlen(pair) != kl || strlen(val) != vl || !*pair) goto bad; /* NUL inside */
        json_t *s = json_stringn(val, vl);
        if (!s) goto bad; /* not UTF-8 */
        if (!json_object_get(o, pair))
            json_object_set_new(o, pair, s);
        else
            json_decref(s);
    }
    return o;
bad:
    json_decref(o);
    return NULL;
}

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
        r->json = parse_form(r->body);
        if (!r->json) {
            reply_fail(r, 400, NULL, "the form body is malformed");
            return false;
        }
        return true;
    }
    json_error_t jerr;
    r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!r->json) {
        reply_fail(r, 400, NULL, "malformed JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                   jerr.column);
        return false;
    }
    if (!json_is_object(r->json)) {
        reply_fail(r, 400, NULL, "the request body must be a JSON object");
        return false;
    }
    if (depth(r->json) > 32) {
        reply_fail(r, 400, NULL, "the JSON is nested deeper than 32 levels");
        return false;
    }
    return true;
}

bool body_str(struct req *r, const char *name, const char **out)
{
    json_t *v = json_object_get(r->json, name);
    if (!v) return true;
    if (!json_is_string(v)) {
        reply_fail(r, 400, name, "%s must be a string", name);
        return false;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        reply_fail(r, 400, name, "%s may not contain NUL characters", name);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static int parse_bool(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "1")) return 1;
    if (!strcmp(s, "false") || !strcmp(s, "0")) return 0;
    return -1;
}

bool body_bool(struct req *r, const char *name, int *out)
{
    json_t *v = json_object_get(r->json, name);
    if (!v) return true;
    int b = -1;
    if (json_is_boolean(v))
        b = json_is_true(v);
    else if (r->body_type == BODY_FORM && json_is_string(v)) /* forms carry only strings */
        b = parse_bool(json_string_value(v));
    if (b < 0) {
        reply_fail(r, 400, name, "%s must be true or false", name);
        return false;
    }
    *out = b;
    return true;
}

bool body_int(struct req *r, const char *name, int64_t *out, bool *given)
{
    json_t *v = json_object_get(r->json, name);
    *given = v != NULL;
    if (!v) return true;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (r->body_type == BODY_FORM && json_is_string(v)) { /* forms carry only strings */
        const char *s = json_string_value(v), *d = s + (*s == '-');
        int64_t n = 0;
        bool ok = *d != 0;
        for (; ok && *d; d++) {
            ok = *d >= '0' && *d <= '9' && n <= (INT64_MAX - 9) / 10;
            n = n * 10 + (*d - '0');
        }
        if (ok) {
            *out = *s == '-' ? -n : n;
            return true;
        }
    }
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
    if (!v) return true;
    int64_t n = 0;
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9' || (n = n * 10 + (*c - '0')) > INT32_MAX) {
            reply_fail(r, 400, name, "%s must be a whole number from 0 to 2147483647", name);
            return false;
        }
    }
    *out = (int)n;
    return true;
}

bool query_bool(struct req *r, const char *name, int *out)
{
    const char *v = query_str(r, name);
    if (!v) return true;
    int b = parse_bool(v);
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
    if (r->touch_pending) {
        r->touch_pending = false;
        /* best effort: the reply is out */
        usersd_session_activity(r->core, &r->caller, &r->session, NULL);
    }
}
