/* parse.h — every parser of bytes a client sends, pure: no MHD, no I/O, no
 * global state, so each one can be fuzzed without a socket (fuzz/). Inputs
 * are byte spans (pointer and length, no NUL needed; NULL with length 0 is
 * an empty span) unless said otherwise. All functions are thread-safe. */
#ifndef USERSD_PARSE_H
#define USERSD_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest integer a query value may hold (API.md §6: 2^31-1), and an
 * event position (`since`, `?last_event_id=`, Last-Event-ID: 2^63-1, like
 * the event ids themselves). */
#define PARSE_QUERY_INT_MAX INT32_MAX
#define PARSE_EVENT_POS_MAX INT64_MAX
/* How many ids an `ids` list may hold: the bulk status endpoint (§6) and
 * the stream's subscription (§7). */
#define PARSE_IDS_BULK_MAX 100
#define PARSE_IDS_STREAM_MAX 1000
/* How deep a JSON body may nest (§6): {} is 1, {"a": {}} is 2. */
#define PARSE_JSON_DEPTH_MAX 32
/* Room for any origin parse_origin_norm writes, NUL included. */
#define PARSE_ORIGIN_MAX 300

/* An unsigned decimal: one or more ASCII digits, leading zeros allowed, no
 * sign or space, at most max (>= 0). True with *out set; false leaves *out. */
bool parse_uint(const char *s, size_t len, int64_t max, int64_t *out);

/* A query or form boolean (§6): "true" and "1" give 1, "false" and "0"
 * give 0, anything else -1. */
int parse_bool(const char *s, size_t len);

enum parse_ids_rc { PARSE_IDS_OK, PARSE_IDS_MALFORMED, PARSE_IDS_TOO_MANY };
/* An `ids` list: 1 to max comma-separated query integers (parse_uint with
 * PARSE_QUERY_INT_MAX), in the order given, repeats kept. out has room for
 * max ids; *n is set on PARSE_IDS_OK. Empty input, an empty item or a bad
 * number is MALFORMED; more than max items is TOO_MANY. */
enum parse_ids_rc parse_ids(const char *s, size_t len, int64_t *out, size_t max, size_t *n);

/* An HTTP method as RFC 7230 requires: a token, one or more of the ASCII
 * letters, digits and !#$%&'*+-.^_`|~. */
bool parse_method_token(const char *s, size_t len);

/* The framing headers of one request (API.md §11, RFC 9112 §3 and §6),
 * counted header by header with parse_framing_add, then judged by
 * parse_framing_error. Zero-initialise it. The spans given to add must
 * outlive the judgement. */
struct parse_framing {
    unsigned hosts, lengths, encodings;
    bool bad_name;       /* a name that is not a token (also "Name :") */
    bool lengths_differ; /* two Content-Lengths with other values */
    bool not_chunked;    /* a Transfer-Encoding other than "chunked" */
    const char *length;  /* the first Content-Length's value */
    size_t length_len;
};
void parse_framing_add(struct parse_framing *f, const char *name, size_t name_len,
                       const char *value, size_t value_len);
/* NULL when the request may be served, else the sentence of its 400 (a
 * static string). http11: the request said HTTP/1.1 (Host is required). */
const char *parse_framing_error(const struct parse_framing *f, bool http11);

/* A raw request target (before %XX decoding) without the bytes that make
 * a request line ambiguous: no control character or DEL, and no space
 * (which would make the line more than three parts). Bytes over 0x7f are
 * left to the parsers of paths and queries, which want UTF-8. */
bool parse_target_raw(const char *s, size_t len);

/* The first line of a request as libmicrohttpd 0.9.75 reads it, one chunk
 * of bytes at a time: it skips empty lines, and closes the connection
 * without a reply on a line with no space or one that starts with a space
 * (a request line needs three parts, API.md §11). Start from
 * PARSE_LINE_SCANNING; the state returned has PARSE_LINE_DROPPED once a
 * whole line of that shape is in, and no PARSE_LINE_SCANNING once any
 * whole line is (bytes after it are not looked at). */
enum {
    PARSE_LINE_SCANNING = 1, /* the line is not whole yet */
    PARSE_LINE_TEXT = 2,     /* it has had a byte other than CR */
    PARSE_LINE_SPACE = 4,    /* ... and a space */
    PARSE_LINE_LEADING = 8,  /* ... and the first of them was a space */
    PARSE_LINE_DROPPED = 16, /* whole, and of the shape the library drops */
};
unsigned char parse_line_scan(unsigned char state, const void *bytes, size_t len);

/* The Authorization header (§2): "Token <key>" or "Bearer <key>", the
 * scheme in any case, then one or more spaces. True with the key's span
 * (inside s, possibly empty; its shape is checked by parse_token_shape);
 * false for any other scheme. */
bool parse_authorization(const char *s, size_t len, const char **key, size_t *key_len);

/* A login token's shape: USERSD_TOKEN_LEN lower-case hex digits. */
bool parse_token_shape(const char *s, size_t len);

/* An Origin (or a Referer: its path, query and fragment are dropped) as
 * "scheme://host:port" into out (size >= PARSE_ORIGIN_MAX suffices):
 * lower-case, the port explicit (80 for http, 443 for https) and without
 * leading zeros, so equal origins compare equal as strings. Only http and
 * https; false for anything else ("null", user info, an empty host, a bad
 * port, bytes no host may hold). */
bool parse_origin_norm(const char *s, size_t len, char *out, size_t size);

/* API.md §2's CSRF rule for a cookie-authenticated unsafe request: true when
 * origin (the Origin header, or without one the Referer; a C string, NULL
 * when neither was sent) names exactly the request's own origin ("http://"
 * or with cookie_secure "https://" + host, the Host header as a C string,
 * NULL when absent) or one of the n trusted origins (C strings). */
bool parse_origin_allowed(const char *origin, const char *host, bool cookie_secure,
                          const char *const *trusted, size_t n_trusted);

/* True when s is well-formed UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF); NUL bytes are well-formed. */
bool parse_utf8_valid(const char *s, size_t len);

/* A query name or value (after %XX decoding) as text: well-formed UTF-8
 * without NUL. */
bool parse_query_text(const char *s, size_t len);

/* An application/x-www-form-urlencoded body as a new JSON object of strings
 * (the caller owns it): '+' is a space, %XX a byte, empty pairs are skipped,
 * a pair without '=' has the empty value, the first of a repeated name
 * wins. NULL when malformed (an empty name, a '%' not followed by two hex
 * digits, a NUL byte, text that is not UTF-8) or out of memory. */
json_t *parse_form(const char *s, size_t len);

/* A JSON body that must be one object, with no repeated name, nested at most
 * PARSE_JSON_DEPTH_MAX levels. Returns a new object (the caller owns it), or
 * NULL with a sentence saying why in msg. */
json_t *parse_json_object(const char *s, size_t len, char *msg, size_t msg_size);

/* What a typed field read found (§6: types are strict). */
enum parse_field {
    PARSE_FIELD_ABSENT,     /* no such member: *out unchanged */
    PARSE_FIELD_OK,         /* *out set */
    PARSE_FIELD_WRONG_TYPE, /* present, of another type (null too) */
    PARSE_FIELD_NUL,        /* a string holding a NUL character */
};
/* obj's member name as a string; *out borrows from obj. */
enum parse_field parse_field_str(json_t *obj, const char *name, const char **out);
/* obj's member name as a boolean (1 or 0). A JSON true or false, or, when
 * the body was a form (from_form: forms carry only strings), a string
 * parse_bool accepts. */
enum parse_field parse_field_bool(json_t *obj, const char *name, bool from_form, int *out);
/* obj's member name as a whole number: a JSON integer, or, when the body was
 * a form, a string of digits with an optional '-' (within int64). */
enum parse_field parse_field_int(json_t *obj, const char *name, bool from_form, int64_t *out);

#endif
