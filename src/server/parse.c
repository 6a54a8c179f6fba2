/* parse.c — the parsers of client bytes, kept apart from MHD so that fuzz/
 * can drive each one directly. Every rule here is API.md's (§2, §6, §7):
 * strict, and refusing whatever the rule does not name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "usersd.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals the lower-case word w in any case. */
static bool equal_nocase(const char *s, size_t n, const char *w)
{
    size_t i = 0;
    for (; i < n && w[i]; i++)
        if (lower(s[i]) != w[i]) return false;
    return i == n && !w[i];
}

/* ---- numbers and booleans ------------------------------------------------- */

bool parse_uint(const char *s, size_t len, int64_t max, int64_t *out)
{
    if (len == 0 || max < 0) return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) return false;
        int d = s[i] - '0';
        if (v > max / 10 || (v == max / 10 && d > max % 10)) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int parse_bool(const char *s, size_t len)
{
    if ((len == 4 && !memcmp(s, "true", 4)) || (len == 1 && s[0] == '1')) return 1;
    if ((len == 5 && !memcmp(s, "false", 5)) || (len == 1 && s[0] == '0')) return 0;
    return -1;
}

enum parse_ids_rc parse_ids(const char *s, size_t len, int64_t *out, size_t max, size_t *n)
{
    if (len == 0) return PARSE_IDS_MALFORMED;
    size_t count = 0;
    for (size_t i = 0;; i++) { /* i: the start of an item */
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        if (count == max) return PARSE_IDS_TOO_MANY;
        if (!parse_uint(s + start, i - start, PARSE_QUERY_INT_MAX, &out[count]))
            return PARSE_IDS_MALFORMED; /* "1,,2" and "1," too: an empty item */
        count++;
        if (i == len) break;
    }
    *n = count;
    return PARSE_IDS_OK;
}

/* ---- the request line and headers ----------------------------------------- */

bool parse_method_token(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alnum = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (c == 0 || !strchr("!#$%&'*+-.^_`|~", c))) return false;
    }
    return true;
}

void parse_framing_add(struct parse_framing *f, const char *name, size_t name_len,
                       const char *value, size_t value_len)
{
    /* A header name is a token like a method: a space or tab before the
     * colon stays in the name and fails here. */
    if (!parse_method_token(name, name_len)) f->bad_name = true;
    if (equal_nocase(name, name_len, "host")) {
        f->hosts++;
    } else if (equal_nocase(name, name_len, "content-length")) {
        if (f->lengths++ == 0) {
            f->length = value;
            f->length_len = value_len;
        } else if (value_len != f->length_len || memcmp(value, f->length, value_len) != 0) {
            f->lengths_differ = true;
        }
    } else if (equal_nocase(name, name_len, "transfer-encoding")) {
        f->encodings++;
        if (!equal_nocase(value, value_len, "chunked")) f->not_chunked = true;
    }
}

const char *parse_framing_error(const struct parse_framing *f, bool http11)
{
    if (f->bad_name) return "a header name is not a valid HTTP token";
    if (f->hosts > 1) return "a request may have only one Host header";
    if (http11 && f->hosts == 0) return "an HTTP/1.1 request needs a Host header";
    if (f->encodings && f->lengths)
        return "a request may not have both Transfer-Encoding and Content-Length";
    if (f->lengths_differ) return "the request has conflicting Content-Length headers";
    if (f->encodings > 1 || f->not_chunked)
        return "the only Transfer-Encoding supported is one \"chunked\"";
    return NULL;
}

bool parse_target_raw(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f) return false;
    }
    return true;
}

unsigned char parse_line_scan(unsigned char st, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < len && (st & PARSE_LINE_SCANNING); i++) {
        if (p[i] == '\n') {
            if (!(st & PARSE_LINE_TEXT)) continue; /* an empty line, skipped */
            if (!(st & PARSE_LINE_SPACE) || (st & PARSE_LINE_LEADING)) st |= PARSE_LINE_DROPPED;
            st &= (unsigned char)~PARSE_LINE_SCANNING;
        } else if (p[i] == ' ') {
            if (!(st & PARSE_LINE_TEXT)) st |= PARSE_LINE_LEADING;
            st |= PARSE_LINE_SPACE | PARSE_LINE_TEXT;
        } else if (p[i] != '\r') {
            st |= PARSE_LINE_TEXT;
        }
    }
    return st;
}

bool parse_authorization(const char *s, size_t len, const char **key, size_t *key_len)
{
    size_t sp = 0;
    while (sp < len && s[sp] != ' ')
        sp++;
    if (sp == len || !(equal_nocase(s, sp, "token") || equal_nocase(s, sp, "bearer"))) return false;
    while (sp < len && s[sp] == ' ')
        sp++;
    *key = s + sp;
    *key_len = len - sp;
    return true;
}

bool parse_token_shape(const char *s, size_t len)
{
    if (len != USERSD_TOKEN_LEN) return false;
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return false;
    return true;
}

/* ---- origins (CSRF) --------------------------------------------------------- */

/* A host as an Origin carries it: a name or IPv4 address (letters, digits,
 * "-._~"), or an IPv6 literal in brackets (hex digits, ':' and '.'). */
static bool host_ok(const char *h, size_t n)
{
    if (n == 0) return false;
    bool bracket = h[0] == '[';
    if (bracket && (n < 3 || h[n - 1] != ']')) return false;
    for (size_t i = bracket; i < n - bracket; i++) {
        char c = lower(h[i]);
        bool ok = is_digit(c) || (bracket ? (c >= 'a' && c <= 'f') || c == ':' || c == '.'
                                          : (c >= 'a' && c <= 'z') || (c && strchr("-._~", c)));
        if (!ok) return false;
    }
    return true;
}

bool parse_origin_norm(const char *s, size_t len, char *out, size_t size)
{
    size_t slen = 0;
    while (slen < len && s[slen] != ':')
        slen++;
    if (len - slen < 3 || s[slen + 1] != '/' || s[slen + 2] != '/') return false;
    bool https = equal_nocase(s, slen, "https");
    if (!https && !equal_nocase(s, slen, "http")) return false;
    /* The authority ends where a Referer's path, query or fragment begins. */
    const char *auth = s + slen + 3;
    size_t alen = 0, rest = len - slen - 3;
    while (alen < rest && auth[alen] != '/' && auth[alen] != '?' && auth[alen] != '#')
        alen++;
    /* host[:port], the host possibly an IPv6 literal "[...]" */
    size_t hlen = 0;
    if (alen && auth[0] == '[') {
        while (hlen < alen && auth[hlen] != ']')
            hlen++;
        if (hlen < alen) hlen++; /* the ']' */
    } else {
        while (hlen < alen && auth[hlen] != ':')
            hlen++;
    }
    if (!host_ok(auth, hlen)) return false;
    int64_t port = https ? 443 : 80;
    if (hlen < alen) {
        if (auth[hlen] != ':' || !parse_uint(auth + hlen + 1, alen - hlen - 1, 65535, &port) ||
            port == 0)
            return false;
    }
    int n = snprintf(out, size, "%s://%.*s:%lld", https ? "https" : "http", (int)hlen, auth,
                     (long long)port);
    if (n < 0 || (size_t)n >= size) return false;
    for (char *c = out; *c; c++)
        *c = lower(*c);
    return true;
}

bool parse_origin_allowed(const char *origin, const char *host, bool cookie_secure,
                          const char *const *trusted, size_t n_trusted)
{
    char got[PARSE_ORIGIN_MAX], want[PARSE_ORIGIN_MAX];
    /* "Origin: null" (opaque origins, sandboxed frames) is refused here. */
    if (!origin || !parse_origin_norm(origin, strlen(origin), got, sizeof got)) return false;
    if (host && !host[strcspn(host, "/?#")]) { /* a Host is an authority, nothing more */
        char own[PARSE_ORIGIN_MAX];
        int n = snprintf(own, sizeof own, "%s://%s", cookie_secure ? "https" : "http", host);
        if (n > 0 && (size_t)n < sizeof own &&
            parse_origin_norm(own, (size_t)n, want, sizeof want) && strcmp(got, want) == 0)
            return true;
    }
    for (size_t i = 0; i < n_trusted; i++)
        if (trusted[i] && parse_origin_norm(trusted[i], strlen(trusted[i]), want, sizeof want) &&
            strcmp(got, want) == 0)
            return true;
    return false;
}

/* ---- text ------------------------------------------------------------------- */

bool parse_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        size_t more;
        unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c < 0xC2) {
            return false; /* a stray continuation byte, or an overlong pair */
        } else if (c < 0xE0) {
            more = 1;
        } else if (c < 0xF0) {
            more = 2;
            if (c == 0xE0) lo = 0xA0; /* overlong */
            if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c < 0xF5) {
            more = 3;
            if (c == 0xF0) lo = 0x90; /* overlong */
            if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else {
            return false;
        }
        if (len - i <= more || u[i + 1] < lo || u[i + 1] > hi) return false;
        for (size_t k = 2; k <= more; k++)
            if ((u[i + k] & 0xC0) != 0x80) return false;
        i += more + 1;
    }
    return true;
}

bool parse_query_text(const char *s, size_t len)
{
    return !memchr(s, 0, len) && parse_utf8_valid(s, len);
}

/* ---- bodies ----------------------------------------------------------------- */

static int hex(char c)
{
    if (is_digit(c)) return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes one form name or value into out (room for n bytes); false on a
 * bad %-escape or a NUL, which no field may hold. */
static bool form_decode(const char *s, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3 || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return false;
            c = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        }
        if (c == 0) return false;
        out[o++] = c;
    }
    out[o] = 0;
    *out_len = o;
    return true;
}

json_t *parse_form(const char *s, size_t len)
{
    json_t *o = json_object();
    char *buf = malloc(len + 2); /* a name and a value, each with its NUL */
    if (!o || !buf) goto bad;
    for (size_t i = 0; i <= len; i++) { /* i: the start of a pair */
        size_t start = i;
        while (i < len && s[i] != '&')
            i++;
        if (i == start) continue; /* "a=1&&b=2", a trailing '&' */
        const char *eq = memchr(s + start, '=', i - start);
        size_t nlen = (size_t)((eq ? eq : s + i) - (s + start)), klen, vlen;
        if (!form_decode(s + start, nlen, buf, &klen) || klen == 0 || !parse_utf8_valid(buf, klen))
            goto bad;
        char *val = buf + klen + 1; /* the value follows the name */
        const char *v = eq ? eq + 1 : s + i;
        if (!form_decode(v, (size_t)(s + i - v), val, &vlen)) goto bad;
        json_t *str = json_stringn(val, vlen); /* NULL when not UTF-8 */
        if (!str) goto bad;
        /* Every pair is checked, but the first of a name wins. */
        if (json_object_get(o, buf))
            json_decref(str);
        else if (json_object_set_new(o, buf, str))
            goto bad;
    }
    free(buf);
    return o;
bad:
    free(buf);
    json_decref(o);
    return NULL;
}

/* True when v nests deeper than limit levels (containers count, scalars
 * do not); stops as soon as it knows. */
static bool deeper_than(json_t *v, int limit)
{
    if (!json_is_object(v) && !json_is_array(v)) return false;
    if (limit == 0) return true;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            if (deeper_than(x, limit - 1)) return true;
        }
    } else {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (deeper_than(x, limit - 1)) return true;
        }
    }
    return false;
}

/* Copies jansson's message, whose "near '...'" may quote the client's bytes,
 * with everything but printable ASCII as \xNN: the reply must be UTF-8. */
static void copy_printable(char *out, size_t size, const char *in)
{
    size_t o = 0;
    for (; *in && o + 5 < size; in++) {
        unsigned char c = (unsigned char)*in;
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    }
    out[o] = 0;
}

json_t *parse_json_object(const char *s, size_t len, char *msg, size_t msg_size)
{
    json_error_t jerr;
    /* Any value, so that a scalar is told it is not an object. */
    json_t *v = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!v) {
        char text[sizeof jerr.text * 4];
        copy_printable(text, sizeof text, jerr.text);
        snprintf(msg, msg_size, "malformed JSON: %s (line %d, column %d)", text, jerr.line,
                 jerr.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        snprintf(msg, msg_size, "the request body must be a JSON object");
        json_decref(v);
        return NULL;
    }
    if (deeper_than(v, PARSE_JSON_DEPTH_MAX)) {
        snprintf(msg, msg_size, "the JSON is nested deeper than %d levels", PARSE_JSON_DEPTH_MAX);
        json_decref(v);
        return NULL;
    }
    return v;
}

enum parse_field parse_field_str(json_t *obj, const char *name, const char **out)
{
    json_t *v = json_object_get(obj, name);
    if (!v) return PARSE_FIELD_ABSENT;
    if (!json_is_string(v)) return PARSE_FIELD_WRONG_TYPE;
    if (memchr(json_string_value(v), 0, json_string_length(v))) return PARSE_FIELD_NUL;
    *out = json_string_value(v);
    return PARSE_FIELD_OK;
}

enum parse_field parse_field_bool(json_t *obj, const char *name, bool from_form, int *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v) return PARSE_FIELD_ABSENT;
    int b = -1;
    if (json_is_boolean(v))
        b = json_is_true(v);
    else if (from_form && json_is_string(v))
        b = parse_bool(json_string_value(v), json_string_length(v));
    if (b < 0) return PARSE_FIELD_WRONG_TYPE;
    *out = b;
    return PARSE_FIELD_OK;
}

enum parse_field parse_field_int(json_t *obj, const char *name, bool from_form, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v) return PARSE_FIELD_ABSENT;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return PARSE_FIELD_OK;
    }
    if (!from_form || !json_is_string(v)) return PARSE_FIELD_WRONG_TYPE;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    bool minus = len && s[0] == '-';
    int64_t n;
    if (!parse_uint(s + minus, len - minus, INT64_MAX, &n)) return PARSE_FIELD_WRONG_TYPE;
    *out = minus ? -n : n;
    return PARSE_FIELD_OK;
}
