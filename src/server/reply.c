/* reply.c — every response goes out here: JSON bodies, the content type,
 * extra headers, and the status kept for the access log. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

void reply_header(struct req *r, const char *name, const char *value)
{
    if (r->nhdr >= (int)(sizeof r->hdr / sizeof r->hdr[0])) return;
    snprintf(r->hdr[r->nhdr].name, sizeof r->hdr[0].name, "%s", name);
    snprintf(r->hdr[r->nhdr].value, sizeof r->hdr[0].value, "%s", value);
    r->nhdr++;
}

void reply_clear_headers(struct req *r)
{
    r->nhdr = 0;
}

static void send_buffer_type(struct req *r, int status, const char *type, char *buf, size_t len)
{
    if (r->answered) {
        free(buf);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, buf, buf ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(buf);
        return;
    }
    if (buf) MHD_add_response_header(resp, "Content-Type", type);
    for (int i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdr[i].name, r->hdr[i].value);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (MHD_queue_response(r->conn, (unsigned)status, resp) == MHD_YES) {
        r->answered = true;
        r->status = status;
        r->bytes = len;
    }
    MHD_destroy_response(resp);
}

static void send_buffer(struct req *r, int status, char *buf, size_t len)
{
    send_buffer_type(r, status, JSON_TYPE, buf, len);
}

void reply_text(struct req *r, int status, const char *type, char *text, size_t len)
{
    if (!text) {
        reply_fail(r, 500, NULL, "the server ran out of memory");
        return;
    }
    send_buffer_type(r, status, type, text, len);
}

void reply_json(struct req *r, int status, json_t *obj)
{
    char *buf = obj ? json_dumps(obj, RENDER_DUMP_FLAGS) : NULL;
    json_decref(obj);
    if (!buf) {
        static const char oom[] = "{\"error\":\"the server ran out of memory\"}";
        buf = strdup(oom);
        status = 500;
        if (!buf) {
            send_buffer(r, 500, NULL, 0);
            return;
        }
    }
    send_buffer(r, status, buf, strlen(buf));
}

void reply_empty(struct req *r, int status)
{
    send_buffer(r, status, NULL, 0);
}

void reply_err(struct req *r, const struct usersd_err *err)
{
    int status = usersd_http_status(err->code);
    snprintf(r->errmsg, sizeof r->errmsg, "%s",
             err->msg[0] ? err->msg : usersd_strerror(err->code));
    if (err->code == USERSD_EDB) metrics_db_error();
    if (status == 401) reply_header(r, "WWW-Authenticate", "Token");
    if (err->code == USERSD_EDB) {
        /* The library's words (hosts, ports, libpq's messages) are for the
         * log: the client learns only that it may try again. */
        struct usersd_err plain = {.code = USERSD_EDB};
        snprintf(plain.msg, sizeof plain.msg, "the database is unavailable; try again shortly");
        reply_header(r, "Retry-After", "1");
        reply_json(r, status, render_error(&plain));
        return;
    }
    reply_json(r, status, render_error(err));
}

void reply_fail(struct req *r, int status, const char *field, const char *fmt, ...)
{
    struct usersd_err err = {.code = USERSD_EINVAL};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    snprintf(err.field, sizeof err.field, "%s", field ? field : "");
    snprintf(r->errmsg, sizeof r->errmsg, "%s", err.msg);
    if (status == 401) reply_header(r, "WWW-Authenticate", "Token");
    reply_json(r, status, render_error(&err));
}
