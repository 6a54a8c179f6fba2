/* mhd_errors.c — libmicrohttpd's own error replies as the JSON of API.md §2.
 *
 * libmicrohttpd 0.9.75 answers some requests before usersd sees them (a
 * malformed request line or header, headers or URI too large, a bad
 * Content-Length or chunked encoding) with fixed HTML bodies, and offers
 * no hook to change them. All of those replies go through one internal
 * function, which calls the library's own exported MHD_create_response_
 * from_buffer and MHD_queue_response through the PLT (checked on Debian
 * 12's build with objdump). A definition of the same name in the executable
 * comes first in the dynamic linker's lookup, so these two functions stand
 * in for the library's, pass every call of usersd's own straight through
 * (found with dlsym(RTLD_NEXT)), and recognise the library's calls by their
 * return address, which lies in the library's code.
 *
 * For a library error the reply is written here, straight on the socket:
 * status line, JSON body, Content-Type, "Connection: close"; then the
 * socket's write side is shut and the library's own response is queued as
 * it expects, so its state machine goes on as usual and finds the socket
 * closed when it tries to send (it then closes the connection). The reply
 * cannot simply be queued in place of the library's: after a bad
 * Content-Length or a Cookie header too large for the connection's memory,
 * 0.9.75 overwrites its state and builds the reply's headers twice (the
 * client reads a second status line as the body). Nor can the queue call
 * fail: the library then closes the connection at once, and some callers
 * (a header that does not fit) go on using its freed memory. Nothing else
 * is pending on the socket when a request fails (the library reads a
 * request only once the previous reply is sent), so the few hundred bytes
 * go out at once.
 *
 * One malformed request line gets no reply at all from 0.9.75: a line
 * without a space (one word) or that starts with one (no method). The
 * library closes such a connection with close(2), which is stood in for
 * the same way; recv(2) too, so that the first line of each request on a
 * connection is seen (a few flags a descriptor, nothing kept), and the
 * library's close of a connection whose line had that shape answers 400
 * first.
 * A line pipelined behind another request is read before usersd knows
 * where that request ends, and is closed without a reply, as before.
 *
 * 505 (an HTTP version other than 1.x) becomes 400: no client bytes get a
 * 5xx. If a future libmicrohttpd called these functions differently the
 * replies would stay HTML; tests/http/test_http_errors.py would fail. */
#define _GNU_SOURCE /* dlsym(RTLD_NEXT), dl_iterate_phdr */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "parse.h"
#include "server.h"

typedef struct MHD_Response *(*create_fn)(size_t, void *, enum MHD_ResponseMemoryMode);
typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int, struct MHD_Response *);

typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef int (*close_fn)(int);

static create_fn real_create;
static queue_fn real_queue;
static recv_fn real_recv;
static close_fn real_close;
static uintptr_t lib_lo, lib_hi; /* the library's code */
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* The text the library made its error reply from (same thread, just before
 * it queues it). */
static _Thread_local const char *tl_msg;
static _Thread_local size_t tl_len;

struct find {
    uintptr_t addr, lo, hi;
};

static int find_segment(struct dl_phdr_info *info, size_t size, void *cls)
{
    (void)size;
    struct find *f = cls;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (f->addr >= lo && f->addr < hi) {
            f->lo = lo;
            f->hi = hi;
            return 1;
        }
    }
    return 0;
}

static void resolve(void)
{
    real_create = (create_fn)dlsym(RTLD_NEXT, "MHD_create_response_from_buffer");
    real_queue = (queue_fn)dlsym(RTLD_NEXT, "MHD_queue_response");
    real_recv = (recv_fn)dlsym(RTLD_NEXT, "recv");
    real_close = (close_fn)dlsym(RTLD_NEXT, "close");
    if (!real_queue) return;
    struct find f = {.addr = (uintptr_t)real_queue};
    if (dl_iterate_phdr(find_segment, &f)) {
        lib_lo = f.lo;
        lib_hi = f.hi;
    }
}

static bool from_library(const void *ret)
{
    uintptr_t a = (uintptr_t)ret;
    return a >= lib_lo && a < lib_hi;
}

bool mhd_errors_init(char *msg, size_t size)
{
    pthread_once(&once, resolve);
    if (real_create && real_queue && lib_hi) return true;
    snprintf(msg, size, "libmicrohttpd's error replies stay HTML: %s",
             real_queue ? "its code was not found" : "its functions were not found");
    return false;
}

static bool has(const char *text, size_t len, const char *part)
{
    size_t n = strlen(part);
    for (size_t i = 0; text && i + n <= len; i++)
        if (memcmp(text + i, part, n) == 0) return true;
    return false;
}

/* The status and sentence for the library's status and message (len
 * bytes; NULL when the library built its reply otherwise). */
static int pick(unsigned status, const char *msg, size_t len, const char **sentence,
                const char **reason)
{
    switch (status) {
    case 413:
        *sentence = "the request body is larger than 64 KiB";
        *reason = "Content Too Large";
        return 413;
    case 414:
        *sentence = "the request line is too long";
        *reason = "URI Too Long";
        return 414;
    case 431:
        *sentence = "the request headers are too large";
        *reason = "Request Header Fields Too Large";
        return 431;
    case 505:
        *sentence = "only HTTP/1.0 and HTTP/1.1 are supported";
        break;
    case 500: /* a body not consumed: cannot happen, usersd always reads it */
        *sentence = "the server could not read the request body";
        *reason = "Internal Server Error";
        return 500;
    default:
        if (has(msg, len, "Host"))
            *sentence = "an HTTP/1.1 request needs a Host header";
        else if (has(msg, len, "chunked"))
            *sentence = "the chunked encoding of the request body is malformed";
        else if (has(msg, len, "Content-Length"))
            *sentence = "the Content-Length header is not a number";
        else
            *sentence = "the request is not valid HTTP";
    }
    *reason = "Bad Request";
    return 400;
}

/* Writes the whole reply on fd and ends it; returns the body's length. */
static size_t send_reply_fd(int fd, int status, const char *reason, const char *sentence)
{
    char date[64], body[160], buf[600];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int blen = snprintf(body, sizeof body, "{\"error\":\"%s\"}", sentence);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n"
                     "Content-Type: " JSON_TYPE "\r\nCache-Control: no-store\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     status, reason, date, blen, body);
    if (n > 0 && (size_t)n < sizeof buf &&
        send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is not reading: the close alone answers it */
    }
    /* The end of the reply: what the library then sends goes nowhere. */
    shutdown(fd, SHUT_WR);
    return blen > 0 ? (size_t)blen : 0;
}

static size_t send_reply(struct MHD_Connection *c, int status, const char *reason,
                         const char *sentence)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? send_reply_fd(ci->connect_fd, status, reason, sentence) : 0;
}

__attribute__((visibility("default"))) struct MHD_Response *
MHD_create_response_from_buffer(size_t size, void *buffer, enum MHD_ResponseMemoryMode mode)
{
    pthread_once(&once, resolve);
    if (from_library(__builtin_return_address(0))) {
        tl_msg = buffer;
        tl_len = buffer ? size : 0;
    }
    return real_create(size, buffer, mode);
}

__attribute__((visibility("default"))) enum MHD_Result
MHD_queue_response(struct MHD_Connection *c, unsigned int status, struct MHD_Response *response)
{
    pthread_once(&once, resolve);
    if (!from_library(__builtin_return_address(0))) return real_queue(c, status, response);
    const char *sentence, *reason;
    int code = pick(status, tl_msg, tl_len, &sentence, &reason);
    tl_msg = NULL;
    tl_len = 0;
    size_t bytes = send_reply(c, code, reason, sentence);
    /* The request's own access line when usersd had seen it (an error in
     * its body), else one here. */
    struct req *r = conn_request(c);
    if (r) {
        r->status = code;
        r->bytes = bytes;
        r->answered = true;
        snprintf(r->errmsg, sizeof r->errmsg, "%s", sentence);
    } else {
        metrics_observe(-1, code, 0);
        server_access_log("-", "-", code, bytes, 0, 0, sentence);
    }
    /* The library's own response, for its state machine only. */
    return real_queue(c, status, response);
}

/* ---- request lines the library drops without a reply ------------------- */

/* A descriptor's parse_line_scan state (only the thread that serves the
 * connection touches it). */
static unsigned char *g_line;
static size_t g_line_n;

bool mhd_errors_lines_init(void)
{
    struct rlimit rl;
    size_t n = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        n = rl.rlim_cur < (1u << 22) ? (size_t)rl.rlim_cur : (1u << 22);
    g_line = calloc(n, 1);
    g_line_n = g_line ? n : 0;
    return g_line != NULL;
}

void mhd_errors_line_expect(int fd)
{
    if (fd >= 0 && (size_t)fd < g_line_n) g_line[fd] = PARSE_LINE_SCANNING;
}

void mhd_errors_line_seen(int fd)
{
    if (fd >= 0 && (size_t)fd < g_line_n) g_line[fd] = 0;
}

__attribute__((visibility("default"))) ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    pthread_once(&once, resolve);
    ssize_t got = real_recv(fd, buf, len, flags);
    if (got > 0 && fd >= 0 && (size_t)fd < g_line_n && (g_line[fd] & PARSE_LINE_SCANNING) &&
        from_library(__builtin_return_address(0)))
        g_line[fd] = parse_line_scan(g_line[fd], buf, (size_t)got);
    return got;
}

__attribute__((visibility("default"))) int close(int fd)
{
    pthread_once(&once, resolve);
    if (fd >= 0 && (size_t)fd < g_line_n && g_line[fd] &&
        from_library(__builtin_return_address(0))) {
        bool dropped = g_line[fd] & PARSE_LINE_DROPPED;
        g_line[fd] = 0;
        if (!dropped) return real_close(fd);
        const char *sentence = "the request line is not valid HTTP: a method, a target and a "
                               "version, separated by single spaces";
        size_t bytes = send_reply_fd(fd, 400, "Bad Request", sentence);
        metrics_observe(-1, 400, 0);
        server_access_log("-", "-", 400, bytes, 0, 0, sentence);
        /* Bytes left unread would make the close a reset, which can take
         * the reply with it: read what is there (bounded). */
        char sink[4096];
        for (int i = 0; i < 16 && real_recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++) {
        }
    }
    return real_close(fd);
}
