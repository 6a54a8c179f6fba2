/* h_dashboard.c — the web dashboard (API.md §10): the files of web/, built
 * into the binary by cmake/embed_web.cmake, served at / and /dashboard/.
 * Its paths are answered here before the route table is consulted, so the
 * table (and with it `usersd routes`, the metrics labels and the OpenAPI
 * document) stays the API's alone. The JavaScript client (API.md §14,
 * clients/js/) is embedded the same way but is part of the API: its two
 * paths are rows of the route table, answered by h_client, dashboard or
 * not. */
#include <string.h>

#include "server.h"

#define PREFIX "/dashboard/"

/* The page's scripts and styles are files of our own: nothing inline, no
 * other host. The same headers go on every file (a browser applies the
 * CSP of the document, but an asset opened on its own gets it too). */
static const struct {
    const char *name, *value;
} security_headers[] = {
    {"Content-Security-Policy", "default-src 'self'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "same-origin"},
    {"X-Frame-Options", "DENY"},
};

static const struct web_file *find(const struct web_file *files, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(files[i].path, name) == 0) return &files[i];
    return NULL;
}

/* If-None-Match holds one or more quoted tags (possibly weak, W/"..."), or
 * "*"; our tags are 16 hex digits in quotes, so a substring test is exact
 * enough. */
static bool not_modified(struct req *r, const struct web_file *f)
{
    const char *inm =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    return inm && (strstr(inm, f->etag) || strcmp(inm, "*") == 0);
}

static void send_file(struct req *r, const struct web_file *f, const char *cache_control)
{
    bool fresh = not_modified(r, f);
    /* The data is static and MHD only reads it: the cast drops a const MHD
     * 0.9.75 has no parameter for. */
    struct MHD_Response *resp = MHD_create_response_from_buffer(fresh ? 0 : f->len, (void *)f->data,
                                                                MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        reply_fail(r, 500, NULL, "the server ran out of memory");
        return;
    }
    if (!fresh) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
    for (size_t i = 0; i < sizeof security_headers / sizeof security_headers[0]; i++)
        MHD_add_response_header(resp, security_headers[i].name, security_headers[i].value);
    int status = fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    if (MHD_queue_response(r->conn, (unsigned)status, resp) == MHD_YES) {
        r->answered = true;
        r->status = status;
        r->bytes = fresh ? 0 : f->len;
    }
    MHD_destroy_response(resp);
}

bool dashboard_serve(struct req *r, const char *url)
{
    if (server_config()->no_dashboard) return false;
    const struct web_file *f;
    if (strcmp(url, "/") == 0 || strcmp(url, "/dashboard") == 0 || strcmp(url, PREFIX) == 0)
        f = find(web_files, web_nfiles, "index.html");
    else if (strncmp(url, PREFIX, strlen(PREFIX)) == 0)
        f = find(web_files, web_nfiles, url + strlen(PREFIX));
    else
        return false;
    if (!f) {
        reply_fail(r, 404, NULL, "no such file in the dashboard");
        return true;
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        reply_header(r, "Allow", "GET, HEAD");
        reply_fail(r, 405, NULL, "method %s is not allowed here (allowed: GET, HEAD)", r->method);
        return true;
    }
    /* The page is checked on every load (it names the current assets); an
     * asset's name changes with its content, so it never needs checking. */
    send_file(r, f,
              strcmp(f->path, "index.html") == 0 ? "no-cache"
                                                 : "public, max-age=31536000, immutable");
    return true;
}

/* GET /client/<name>: the route's own file. Its name is stable (pages and
 * programs import it by that name), so a cache checks it on every use and
 * gets a 304 while the server's copy is the same. */
void h_client(struct req *r)
{
    const char *name = strrchr(r->route->pattern, '/') + 1;
    const struct web_file *f = find(client_files, client_nfiles, name);
    if (!f) { /* a row without its file: the build embeds every clients/js file */
        reply_fail(r, 404, NULL, "no such file in the client");
        return;
    }
    send_file(r, f, "no-cache");
}
