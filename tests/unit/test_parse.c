/* Unit tests of src/server/parse.c, the parsers of client bytes: one table
 * row per input (the fuzz harnesses in fuzz/ check the same functions'
 * invariants on inputs nobody wrote by hand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void uint_rows(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t max;
        bool ok;
        int64_t v;
    } rows[] = {
        {"0", PARSE_QUERY_INT_MAX, true, 0},
        {"42", PARSE_QUERY_INT_MAX, true, 42},
        {"0007", PARSE_QUERY_INT_MAX, true, 7},
        {"2147483647", PARSE_QUERY_INT_MAX, true, 2147483647},
        {"02147483647", PARSE_QUERY_INT_MAX, true, 2147483647},
        {"2147483648", PARSE_QUERY_INT_MAX, false, 0},
        {"99999999999999999999", PARSE_QUERY_INT_MAX, false, 0},
        {"9223372036854775807", INT64_MAX, true, INT64_MAX},
        {"9223372036854775808", INT64_MAX, false, 0},
        {"65535", 65535, true, 65535},
        {"65536", 65535, false, 0},
        {"7", 5, false, 0},
        {"5", 5, true, 5},
        {"", PARSE_QUERY_INT_MAX, false, 0},
        {"-1", PARSE_QUERY_INT_MAX, false, 0},
        {"+1", PARSE_QUERY_INT_MAX, false, 0},
        {" 1", PARSE_QUERY_INT_MAX, false, 0},
        {"1 ", PARSE_QUERY_INT_MAX, false, 0},
        {"1.0", PARSE_QUERY_INT_MAX, false, 0},
        {"1e3", PARSE_QUERY_INT_MAX, false, 0},
        {"0x10", PARSE_QUERY_INT_MAX, false, 0},
        {"\xd9\xa1", PARSE_QUERY_INT_MAX, false, 0}, /* ARABIC-INDIC DIGIT ONE */
    };
    for (size_t i = 0; i < N(rows); i++) {
        int64_t v = -5;
        bool ok = parse_uint(rows[i].in, strlen(rows[i].in), rows[i].max, &v);
        if (ok != rows[i].ok) fail_msg("\"%s\": %d, want %d", rows[i].in, ok, rows[i].ok);
        assert_int_equal(v, ok ? rows[i].v : -5);
    }
    int64_t v = 0;
    assert_false(parse_uint("12", 1, 0, &v)); /* the length is honoured: "1" > 0 */
    assert_true(parse_uint("12", 1, 1, &v));
    assert_int_equal(v, 1);
    assert_int_equal(parse_bool("true", 4), 1);
    assert_int_equal(parse_bool("1", 1), 1);
    assert_int_equal(parse_bool("false", 5), 0);
    assert_int_equal(parse_bool("0", 1), 0);
    assert_int_equal(parse_bool("True", 4), -1);
    assert_int_equal(parse_bool("yes", 3), -1);
    assert_int_equal(parse_bool("", 0), -1);
    assert_int_equal(parse_bool("truex", 4), 1); /* only the span counts */
}

static void ids_rows(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t max;
        enum parse_ids_rc rc;
        size_t n;
        int64_t first, last;
    } rows[] = {
        {"1", 100, PARSE_IDS_OK, 1, 1, 1},
        {"3,1,3", 100, PARSE_IDS_OK, 3, 3, 3},
        {"007,2147483647", 100, PARSE_IDS_OK, 2, 7, 2147483647},
        {"1,2,3", 3, PARSE_IDS_OK, 3, 1, 3},
        {"1,2,3,4", 3, PARSE_IDS_TOO_MANY, 0, 0, 0},
        {"1,2,3,x", 3, PARSE_IDS_TOO_MANY, 0, 0, 0},
        {"1,x,3,4", 3, PARSE_IDS_MALFORMED, 0, 0, 0},
        {"", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {",", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {"1,", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {",1", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {"1,,2", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {"1, 2", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {"-1", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {"2147483648", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
        {"1;2", 100, PARSE_IDS_MALFORMED, 0, 0, 0},
    };
    for (size_t i = 0; i < N(rows); i++) {
        int64_t out[100];
        size_t n = 99;
        enum parse_ids_rc rc = parse_ids(rows[i].in, strlen(rows[i].in), out, rows[i].max, &n);
        if (rc != rows[i].rc) fail_msg("\"%s\": %d, want %d", rows[i].in, rc, rows[i].rc);
        if (rc != PARSE_IDS_OK) continue;
        assert_int_equal(n, rows[i].n);
        assert_int_equal(out[0], rows[i].first);
        assert_int_equal(out[n - 1], rows[i].last);
    }
    /* the two bounds the server uses */
    char list[6000];
    size_t len = 0;
    int64_t out[PARSE_IDS_STREAM_MAX];
    size_t n = 0;
    for (int i = 1; i <= 1001; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", i > 1 ? "," : "", i);
    assert_int_equal(parse_ids(list, len, out, PARSE_IDS_STREAM_MAX, &n), PARSE_IDS_TOO_MANY);
    len = (size_t)(strrchr(list, ',') - list); /* 1..1000 */
    assert_int_equal(parse_ids(list, len, out, PARSE_IDS_STREAM_MAX, &n), PARSE_IDS_OK);
    assert_int_equal(n, 1000);
    assert_int_equal(parse_ids(list, len, out, PARSE_IDS_BULK_MAX, &n), PARSE_IDS_TOO_MANY);
}

static void method_and_authorization_rows(void **state)
{
    (void)state;
    const char *tokens[] = {"GET", "HEAD", "POST", "PATCH", "M-SEARCH", "x", "~!#$%&'*+-.^_`|"};
    const char *not_tokens[] = {"",     "GE\xffT", "G T",      "GET\r",   "\"GET\"", "G(E)T",
                                "GE/T", "GE:T",    "\xc3\xa9", "GE\x7fT", "GE@T",    "GE;T"};
    for (size_t i = 0; i < N(tokens); i++)
        assert_true(parse_method_token(tokens[i], strlen(tokens[i])));
    for (size_t i = 0; i < N(not_tokens); i++)
        if (parse_method_token(not_tokens[i], strlen(not_tokens[i])))
            fail_msg("accepted method \"%s\"", not_tokens[i]);
    assert_false(parse_method_token("GE\0T", 4));

    static const struct {
        const char *in, *key; /* key NULL: refused */
    } rows[] = {
        {"Token abc", "abc"},  {"token abc", "abc"},  {"TOKEN   abc", "abc"},
        {"Bearer abc", "abc"}, {"bEaReR abc", "abc"}, {"Token ", ""},
        {"Token", NULL},       {"Tokens abc", NULL},  {"Basic YWRtaW4=", NULL},
        {" Token abc", NULL},  {"Token\tabc", NULL},  {"", NULL},
        {"Bearer a b", "a b"},
    };
    for (size_t i = 0; i < N(rows); i++) {
        const char *key = NULL;
        size_t klen = 0;
        bool ok = parse_authorization(rows[i].in, strlen(rows[i].in), &key, &klen);
        if (ok != (rows[i].key != NULL)) fail_msg("\"%s\": %d", rows[i].in, ok);
        if (ok) {
            assert_int_equal(klen, strlen(rows[i].key));
            assert_memory_equal(key, rows[i].key, klen);
        }
    }
    const char *good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_true(parse_token_shape(good, 64));
    assert_false(parse_token_shape(good, 63));
    assert_false(
        parse_token_shape("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 64));
    assert_false(
        parse_token_shape("0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abcdef", 64));
    assert_false(parse_token_shape("", 0));
}

/* A request's headers as "Name: value" lines, judged as the server does. */
static const char *framing(const char *const *lines, size_t n, bool http11)
{
    struct parse_framing f = {0};
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(lines[i], ':');
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        parse_framing_add(&f, lines[i], (size_t)(colon - lines[i]), v, strlen(v));
    }
    return parse_framing_error(&f, http11);
}

static void framing_rows(void **state)
{
    (void)state;
    static const struct {
        const char *lines[4];
        bool http11;
        const char *why; /* part of the sentence; NULL: served */
    } rows[] = {
        {{"Host: x"}, true, NULL},
        {{"host: x", "content-length: 5"}, true, NULL},
        {{"Host: x", "Content-Length: 5", "Content-Length: 5"}, true, NULL},
        {{"Host: x", "Transfer-Encoding: chunked"}, true, NULL},
        {{"Host: x", "Transfer-Encoding: CHUNKED"}, true, NULL},
        {{"X: y"}, false, NULL}, /* HTTP/1.0 needs no Host */
        {{"X: y"}, true, "needs a Host"},
        {{"Host: x", "HOST: y"}, true, "only one Host"},
        {{"Host: x", "HOST: y"}, false, "only one Host"},
        {{"Host: x", "X-Acc : 1"}, true, "header name"},
        {{"Host: x", "X-Acc\t: 1"}, true, "header name"},
        {{"Host: x", "X(A): 1"}, true, "header name"},
        {{"Host: x", ": 1"}, true, "header name"},
        {{"Host: x", "Content-Length: 5", "Transfer-Encoding: chunked"}, true, "both"},
        {{"Host: x", "Transfer-Encoding: chunked", "Content-Length: 0"}, true, "both"},
        {{"Host: x", "Content-Length: 5", "Content-Length: 6"}, true, "conflicting"},
        {{"Host: x", "Content-Length: 5", "Content-Length: 05"}, true, "conflicting"},
        {{"Host: x", "Transfer-Encoding: gzip"}, true, "chunked"},
        {{"Host: x", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"}, true, "chunked"},
    };
    for (size_t i = 0; i < N(rows); i++) {
        size_t n = 0;
        while (n < 4 && rows[i].lines[n])
            n++;
        const char *why = framing(rows[i].lines, n, rows[i].http11);
        if (!rows[i].why != !why || (why && !strstr(why, rows[i].why)))
            fail_msg("row %zu: \"%s\"", i, why ? why : "(served)");
    }

    const char *targets[] = {"/healthz", "/a?b=c%20d", "*", "/\xc3\xa9"};
    const char *bad_targets[] = {"/a b", "/a\x01", "/\x7f", "/a\tb", "/a\r", " /a", ""};
    for (size_t i = 0; i < N(targets); i++)
        assert_true(parse_target_raw(targets[i], strlen(targets[i])));
    for (size_t i = 0; i + 1 < N(bad_targets); i++) /* "" is the library's to refuse */
        if (parse_target_raw(bad_targets[i], strlen(bad_targets[i])))
            fail_msg("accepted target \"%s\"", bad_targets[i]);
    assert_false(parse_target_raw("/a b", 4));
    assert_false(parse_target_raw("/\0", 2));
}

static void line_scan_rows(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int dropped; /* -1: not whole yet */
    } rows[] = {
        {"GET / HTTP/1.1\r\n", 0},
        {"\r\n\r\nGET / HTTP/1.1\r\n", 0}, /* empty lines first are skipped */
        {"GARBAGE\r\n", 1},
        {"GARBAGE\n", 1},
        {"\r\nGARBAGE\r\n\r\n", 1},
        {" GET / HTTP/1.1\r\n", 1}, /* no method */
        {"GET\t/\tHTTP/1.1\r\n", 1},
        {"GET /", -1},
        {"GARBAGE", -1},
        {"\r\n", -1},
        {"GET / HTTP/1.1\r\nGARBAGE\r\n", 0}, /* only the first line counts */
    };
    for (size_t i = 0; i < N(rows); i++) {
        const char *in = rows[i].in;
        unsigned char whole = parse_line_scan(PARSE_LINE_SCANNING, in, strlen(in));
        /* the same bytes one at a time give the same state */
        unsigned char st = PARSE_LINE_SCANNING;
        for (size_t j = 0; in[j]; j++)
            st = parse_line_scan(st, in + j, 1);
        assert_int_equal(st, whole);
        int got = (whole & PARSE_LINE_SCANNING) ? -1 : !!(whole & PARSE_LINE_DROPPED);
        if (got != rows[i].dropped) fail_msg("\"%s\": %d", in, got);
    }
    /* nothing is looked at once the line is whole, or before it is awaited */
    assert_int_equal(parse_line_scan(0, "GARBAGE\n", 8), 0);
}

static void origin_rows(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: refused */
    } rows[] = {
        {"http://a.example", "http://a.example:80"},
        {"https://a.example", "https://a.example:443"},
        {"HTTP://A.Example:8000", "http://a.example:8000"},
        {"http://a.example:080", "http://a.example:80"},
        {"http://a.example/path?q=1#f", "http://a.example:80"},
        {"http://a.example?q", "http://a.example:80"},
        {"http://a.example#f", "http://a.example:80"},
        {"http://127.0.0.1:8000/admin", "http://127.0.0.1:8000"},
        {"http://[::1]:8000", "http://[::1]:8000"},
        {"https://[2001:DB8::1]", "https://[2001:db8::1]:443"},
        {"http://a_b.example", "http://a_b.example:80"},
        {"null", NULL},
        {"", NULL},
        {"http://", NULL},
        {"http:///path", NULL},
        {"http:a.example", NULL},
        {"ftp://a.example", NULL},
        {"javascript://a.example", NULL},
        {"http://a.example:", NULL},
        {"http://a.example:0", NULL},
        {"http://a.example:65536", NULL},
        {"http://a.example:99999999999999999999", NULL},
        {"http://a.example:8x", NULL},
        {"http://a.example:8:9", NULL},
        {"http://user@a.example", NULL},
        {"http://a.example@evil.example", NULL},
        {"http://a example", NULL},
        {"http://a.example\\@evil.example", NULL},
        {"http://[::1", NULL},
        {"http://[::1]x", NULL},
        {"http://[g::1]", NULL},
        {"http://\xc3\xa9.example", NULL},
    };
    for (size_t i = 0; i < N(rows); i++) {
        char out[PARSE_ORIGIN_MAX];
        bool ok = parse_origin_norm(rows[i].in, strlen(rows[i].in), out, sizeof out);
        if (ok != (rows[i].out != NULL)) fail_msg("\"%s\": %d", rows[i].in, ok);
        if (ok) assert_string_equal(out, rows[i].out);
    }
    char tiny[10];
    assert_false(parse_origin_norm("http://a.example", 16, tiny, sizeof tiny)); /* no room */

    const char *trusted[] = {"https://app.example.com", "not an origin", "http://B.example:81/"};
    static const struct {
        const char *origin, *host;
        bool secure, ok;
    } checks[] = {
        {"http://127.0.0.1:8000", "127.0.0.1:8000", false, true},
        {"http://127.0.0.1:8000/page", "127.0.0.1:8000", false, true},
        {"http://LOCALHOST", "localhost:80", false, true},
        {"https://a.example", "a.example", true, true},
        {"http://a.example", "a.example", true, false}, /* --cookie-secure: https only */
        {"https://a.example", "a.example", false, false},
        {"http://127.0.0.1:8001", "127.0.0.1:8000", false, false},
        {"http://127.0.0.1:8000.evil.example", "127.0.0.1:8000", false, false},
        {"http://evil.example", "evil.example/x", false, false}, /* a Host with a path */
        {"http://evil.example", NULL, false, false},
        {NULL, "a.example", false, false},
        {"null", "a.example", false, false},
        {"https://app.example.com", "a.example", false, true},
        {"https://app.example.com:443/x", NULL, false, true},
        {"http://b.example:81", NULL, false, true},
        {"http://app.example.com", NULL, false, false},
        {"not an origin", NULL, false, false},
    };
    for (size_t i = 0; i < N(checks); i++) {
        bool ok = parse_origin_allowed(checks[i].origin, checks[i].host, checks[i].secure, trusted,
                                       N(trusted));
        if (ok != checks[i].ok)
            fail_msg("origin %s host %s secure %d: %d", checks[i].origin, checks[i].host,
                     checks[i].secure, ok);
    }
}

static void utf8_rows(void **state)
{
    (void)state;
    const char *good[] = {"",
                          "abc",
                          "\xc3\xa9",
                          "\xe2\x82\xac",
                          "\xf0\x9f\x98\x80",
                          "\xef\xbf\xbf",
                          "\xf4\x8f\xbf\xbf"};
    const char *bad[] = {"\xff",
                         "\xc3",
                         "\x80",
                         "\xc0\xaf",
                         "\xc1\xbf",
                         "\xe0\x80\xaf",
                         "\xed\xa0\x80",
                         "\xf0\x80\x80\xaf",
                         "\xf4\x90\x80\x80",
                         "\xf5\x80\x80\x80",
                         "\xe2\x82",
                         "a\xc3(b"};
    for (size_t i = 0; i < N(good); i++) {
        assert_true(parse_utf8_valid(good[i], strlen(good[i])));
        assert_true(parse_query_text(good[i], strlen(good[i])));
    }
    assert_true(parse_utf8_valid("a\0b", 3));
    assert_false(parse_query_text("a\0b", 3)); /* NUL is UTF-8, but not query text */
    for (size_t i = 0; i < N(bad); i++)
        if (parse_utf8_valid(bad[i], strlen(bad[i])) || parse_query_text(bad[i], strlen(bad[i])))
            fail_msg("accepted bad UTF-8 #%zu", i);
}

static void form_rows(void **state)
{
    (void)state;
    static const struct {
        const char *in, *json; /* json NULL: refused */
    } rows[] = {
        {"", "{}"},
        {"a=1&b=two", "{\"a\": \"1\", \"b\": \"two\"}"},
        {"a=1&a=2", "{\"a\": \"1\"}"},
        {"a=1&&b=2&", "{\"a\": \"1\", \"b\": \"2\"}"},
        {"flag", "{\"flag\": \"\"}"},
        {"a=b=c", "{\"a\": \"b=c\"}"},
        {"n=%C3%A9l%C3%A8ve+x", "{\"n\": \"\\u00e9l\\u00e8ve x\"}"},
        {"%61%62=%2B", "{\"ab\": \"+\"}"},
        {"=v", NULL},
        {"x=%00", NULL},
        {"x=%zz", NULL},
        {"x=%4", NULL},
        {"x=%", NULL},
        {"x=%ff", NULL},
        {"%ff=1", NULL},
        {"a=1&a=%zz", NULL}, /* a later pair is checked too */
    };
    for (size_t i = 0; i < N(rows); i++) {
        json_t *got = parse_form(rows[i].in, strlen(rows[i].in));
        if ((got != NULL) != (rows[i].json != NULL)) fail_msg("\"%s\": %p", rows[i].in, got);
        if (!got) continue;
        json_t *want = json_loads(rows[i].json, 0, NULL);
        assert_non_null(want);
        if (!json_equal(got, want)) fail_msg("\"%s\" parsed differently", rows[i].in);
        json_decref(want);
        json_decref(got);
    }
    assert_null(parse_form("a=1\0b", 5)); /* a raw NUL */
}

static void json_rows(void **state)
{
    (void)state;
    char deep[200] = "", msg[256];
    for (int i = 0; i < 33; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 33; i++)
        strcat(deep, "}");
    static const struct {
        const char *in, *msg; /* msg NULL: accepted */
    } rows[] = {
        {"{}", NULL},
        {"{\"status\": \"online\"}", NULL},
        {" {\"a\": [1, {\"b\": null}]} ", NULL},
        {"[]", "must be a JSON object"},
        {"5", "must be a JSON object"},
        {"\"x\"", "must be a JSON object"},
        {"null", "must be a JSON object"},
        {"", "malformed JSON"},
        {"{", "malformed JSON"},
        {"{\"a\": 1, \"a\": 2}", "malformed JSON"},
        {"{\"a\": \"x\\u0000y\"}", "malformed JSON"},
        {"{\"a\": \"\xff\"}", "malformed JSON"},
        {"{} {}", "malformed JSON"},
    };
    for (size_t i = 0; i < N(rows); i++) {
        msg[0] = 0;
        json_t *v = parse_json_object(rows[i].in, strlen(rows[i].in), msg, sizeof msg);
        if ((v == NULL) != (rows[i].msg != NULL)) fail_msg("\"%s\": %s", rows[i].in, msg);
        if (rows[i].msg && !strstr(msg, rows[i].msg))
            fail_msg("\"%s\": message \"%s\"", rows[i].in, msg);
        assert_true(parse_utf8_valid(msg, strlen(msg)));
        json_decref(v);
    }
    assert_null(parse_json_object(deep, strlen(deep), msg, sizeof msg)); /* 33 levels */
    assert_non_null(strstr(msg, "deeper than 32"));
    json_t *ok = parse_json_object(deep + 5, strlen(deep) - 6, msg, sizeof msg); /* 32 */
    assert_non_null(ok);
    json_decref(ok);

    json_t *o = json_loads("{\"s\": \"x\", \"n\": null, \"i\": 5, \"t\": true, \"f\": false,"
                           " \"bs\": \"true\", \"z\": \"a\\u0000b\"}",
                           JSON_ALLOW_NUL, NULL);
    assert_non_null(o);
    const char *s = NULL;
    int b = -1;
    assert_int_equal(parse_field_str(o, "s", &s), PARSE_FIELD_OK);
    assert_string_equal(s, "x");
    assert_int_equal(parse_field_str(o, "missing", &s), PARSE_FIELD_ABSENT);
    assert_int_equal(parse_field_str(o, "n", &s), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_str(o, "i", &s), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_str(o, "t", &s), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_str(o, "z", &s), PARSE_FIELD_NUL);
    assert_string_equal(s, "x"); /* unchanged by the refusals */
    assert_int_equal(parse_field_bool(o, "t", false, &b), PARSE_FIELD_OK);
    assert_int_equal(b, 1);
    assert_int_equal(parse_field_bool(o, "f", false, &b), PARSE_FIELD_OK);
    assert_int_equal(b, 0);
    assert_int_equal(parse_field_bool(o, "bs", false, &b), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_bool(o, "bs", true, &b), PARSE_FIELD_OK);
    assert_int_equal(b, 1);
    assert_int_equal(parse_field_bool(o, "s", true, &b), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_bool(o, "i", false, &b), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_bool(o, "n", true, &b), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_bool(o, "missing", false, &b), PARSE_FIELD_ABSENT);
    int64_t n = 7;
    assert_int_equal(parse_field_int(o, "i", false, &n), PARSE_FIELD_OK);
    assert_int_equal(n, 5);
    assert_int_equal(parse_field_int(o, "s", true, &n), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_int(o, "t", false, &n), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_int(o, "n", true, &n), PARSE_FIELD_WRONG_TYPE);
    assert_int_equal(parse_field_int(o, "missing", true, &n), PARSE_FIELD_ABSENT);
    assert_int_equal(n, 5);
    json_decref(o);

    /* form strings as whole numbers */
    static const struct {
        const char *in;
        bool ok;
        int64_t v;
    } ints[] = {
        {"60", true, 60},
        {"-5", true, -5},
        {"007", true, 7},
        {"9223372036854775807", true, INT64_MAX},
        {"-9223372036854775807", true, -INT64_MAX},
        {"9223372036854775808", false, 0},
        {"", false, 0},
        {"-", false, 0},
        {"+5", false, 0},
        {"--5", false, 0},
        {"5s", false, 0},
        {" 5", false, 0},
        {"1e3", false, 0},
    };
    for (size_t i = 0; i < N(ints); i++) {
        json_t *f = json_pack("{s:s}", "x", ints[i].in);
        int64_t v = 99;
        assert_non_null(f);
        enum parse_field rc = parse_field_int(f, "x", true, &v);
        if ((rc == PARSE_FIELD_OK) != ints[i].ok) fail_msg("\"%s\": %d", ints[i].in, rc);
        assert_int_equal(v, ints[i].ok ? ints[i].v : 99);
        assert_int_equal(parse_field_int(f, "x", false, &v), PARSE_FIELD_WRONG_TYPE);
        json_decref(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uint_rows),
        cmocka_unit_test(ids_rows),
        cmocka_unit_test(method_and_authorization_rows),
        cmocka_unit_test(framing_rows),
        cmocka_unit_test(line_scan_rows),
        cmocka_unit_test(origin_rows),
        cmocka_unit_test(utf8_rows),
        cmocka_unit_test(form_rows),
        cmocka_unit_test(json_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
