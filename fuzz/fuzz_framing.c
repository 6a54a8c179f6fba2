/* fuzz_framing.c — what RFC 9112 says a server must refuse (API.md §11
 * Bytes, request smuggling): parse_framing_add / parse_framing_error on a
 * header block, parse_target_raw, and parse_line_scan on the bytes of a
 * request as they arrive.
 *
 * Input: one flag byte (bit 0: the request is HTTP/1.1; bit 1: the first
 * line is a request line, not a header; bits 2-7: a chunk size less one),
 * then the bytes of the request. Headers are the lines ("\n", a "\r"
 * before it dropped) up to the first empty one; "Name: value" is split at
 * the first colon, the value trimmed of spaces and tabs as the library does;
 * a line without a colon is not a header. Each span goes to the parsers in a
 * heap block of its own size, so a read past it is an ASan error.
 *
 * Invariants, each against a reference written here:
 *  - framing: refused exactly when a rule is broken (a name that is not a
 *    token, two Hosts, none in HTTP/1.1, Transfer-Encoding beside
 *    Content-Length, two different Content-Lengths, a Transfer-Encoding
 *    other than one "chunked"), and the sentence names a rule broken;
 *  - target: accepted exactly when no byte is <= 0x20 or 0x7f;
 *  - line scan: the state is the reference's (from the first line with a
 *    byte other than CR), for the whole input, a byte at a time, in chunks
 *    of the flag's size and split once at any point; a scan not awaited (0)
 *    or already over looks at nothing. */
#include "fuzz.h"
#include "parse.h"

/* A heap copy of exactly n bytes (one when n is 0, never read then). */
static char *span_dup(const uint8_t *p, size_t n)
{
    char *s = malloc(n ? n : 1);
    CHECK(s != NULL);
    if (n) memcpy(s, p, n);
    return s;
}

/* ---- parse_target_raw --------------------------------------------------- */

static void check_target(const uint8_t *p, size_t n)
{
    bool want = true;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] == 0x7f) want = false;
    char *s = span_dup(p, n);
    CHECK(parse_target_raw(s, n) == want);
    free(s);
}

/* ---- parse_line_scan ---------------------------------------------------- */

/* The state parse_line_scan must reach from PARSE_LINE_SCANNING on p[0..n):
 * lines holding only CRs are skipped; the first other line decides. */
static unsigned char ref_line_state(const uint8_t *p, size_t n)
{
    size_t at = 0;
    for (;;) {
        size_t end = at, first = at;
        while (end < n && p[end] != '\n')
            end++;
        while (first < end && p[first] == '\r')
            first++;
        if (first == end) { /* an empty line so far */
            if (end == n) return PARSE_LINE_SCANNING;
            at = end + 1;
            continue;
        }
        bool space = memchr(p + first, ' ', end - first) != NULL, leading = p[first] == ' ';
        unsigned char st = PARSE_LINE_TEXT;
        if (space) st |= PARSE_LINE_SPACE;
        if (leading) st |= PARSE_LINE_LEADING;
        if (end == n) return st | PARSE_LINE_SCANNING;
        if (!space || leading) st |= PARSE_LINE_DROPPED; /* one word, or no method */
        return st;
    }
}

/* p[0..n) fed in chunks of `chunk` bytes, each in a block of its size, until
 * the line is whole (what comes after is checked apart: a state that is over
 * stays as it is). */
static unsigned char scan_chunks(const uint8_t *p, size_t n, size_t chunk)
{
    unsigned char st = PARSE_LINE_SCANNING;
    for (size_t at = 0; at < n && (st & PARSE_LINE_SCANNING); at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        char *c = span_dup(p + at, k);
        st = parse_line_scan(st, c, k);
        free(c);
    }
    return st;
}

static void check_line_scan(const uint8_t *p, size_t n, size_t chunk)
{
    unsigned char want = ref_line_state(p, n);
    unsigned char whole = scan_chunks(p, n, n ? n : 1);
    CHECK(whole == want);
    CHECK(!(whole & PARSE_LINE_DROPPED) || !(whole & PARSE_LINE_SCANNING));
    CHECK(scan_chunks(p, n, chunk) == want);
    /* A byte at a time (each byte's boundary a chunk's: no copies, which
     * would only slow the fuzzer), then split once: every point of a short
     * input, about 16 of a long one. */
    unsigned char st = PARSE_LINE_SCANNING;
    for (size_t i = 0; i < n; i++)
        st = parse_line_scan(st, p + i, 1);
    CHECK(st == want);
    size_t step = n / 16 + 1;
    for (size_t cut = 1; cut < n; cut += step) {
        unsigned char half = parse_line_scan(PARSE_LINE_SCANNING, p, cut);
        CHECK(parse_line_scan(half, p + cut, n - cut) == want);
    }
    CHECK(parse_line_scan(0, p, n) == 0);
    if (!(want & PARSE_LINE_SCANNING)) CHECK(parse_line_scan(want, p, n) == want);
}

/* ---- parse_framing ------------------------------------------------------ */

enum rule { R_NAME, R_HOSTS, R_NO_HOST, R_BOTH, R_LENGTHS, R_ENCODING, R_COUNT };

/* A word of the sentence of each rule's 400. */
static const char *const rule_words[R_COUNT] = {
    "token", "only one Host", "needs a Host", "both", "conflicting", "\"chunked\"",
};

static bool lower_is(const char *s, size_t n, const char *word)
{
    if (n != strlen(word)) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (c != (unsigned char)word[i]) return false;
    }
    return true;
}

struct header {
    char *name, *value;
    size_t name_len, value_len;
};

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* The headers of p[0..n) (see the top), in blocks of their own; *count set. */
static struct header *split_headers(const uint8_t *p, size_t n, bool request_line, size_t *count)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    struct header *h = malloc(lines * sizeof *h);
    CHECK(h != NULL);
    size_t k = 0, at = 0;
    for (bool first = true; at < n; first = false) {
        size_t end = at;
        while (end < n && p[end] != '\n')
            end++;
        size_t line_end = end < n && end > at && p[end - 1] == '\r' ? end - 1 : end;
        size_t next = end < n ? end + 1 : n;
        if (first && request_line) {
            at = next;
            continue;
        }
        if (line_end == at) break; /* the end of the header block */
        const uint8_t *colon = memchr(p + at, ':', line_end - at);
        if (colon) {
            size_t name_len = (size_t)(colon - (p + at)), v = name_len + 1 + at, ve = line_end;
            while (v < ve && is_ows(p[v]))
                v++;
            while (ve > v && is_ows(p[ve - 1]))
                ve--;
            h[k].name = span_dup(p + at, name_len);
            h[k].name_len = name_len;
            h[k].value = span_dup(p + v, ve - v);
            h[k].value_len = ve - v;
            k++;
        }
        at = next;
    }
    *count = k;
    return h;
}

/* Which rules the headers break, each judged on its own. */
static void ref_framing(const struct header *h, size_t n, bool http11, bool broken[R_COUNT])
{
    size_t hosts = 0, lengths = 0, encodings = 0;
    const struct header *last_length = NULL;
    memset(broken, 0, R_COUNT * sizeof *broken);
    for (size_t i = 0; i < n; i++) {
        bool token = h[i].name_len > 0;
        for (size_t j = 0; j < h[i].name_len; j++)
            if (!fuzz_tchar((uint8_t)h[i].name[j])) token = false;
        if (!token) broken[R_NAME] = true;
        if (lower_is(h[i].name, h[i].name_len, "host")) hosts++;
        if (lower_is(h[i].name, h[i].name_len, "transfer-encoding")) {
            encodings++;
            if (!lower_is(h[i].value, h[i].value_len, "chunked")) broken[R_ENCODING] = true;
        }
        if (lower_is(h[i].name, h[i].name_len, "content-length")) {
            lengths++;
            /* all equal exactly when each equals the one before it */
            if (last_length && (last_length->value_len != h[i].value_len ||
                                memcmp(last_length->value, h[i].value, h[i].value_len) != 0))
                broken[R_LENGTHS] = true;
            last_length = &h[i];
        }
    }
    broken[R_HOSTS] = hosts >= 2;
    broken[R_NO_HOST] = http11 && hosts == 0;
    broken[R_BOTH] = lengths > 0 && encodings > 0;
    if (encodings >= 2) broken[R_ENCODING] = true;
}

static void check_framing(const uint8_t *p, size_t n, bool http11, bool request_line)
{
    size_t count;
    struct header *h = split_headers(p, n, request_line, &count);
    struct parse_framing f = {0};
    for (size_t i = 0; i < count; i++)
        parse_framing_add(&f, h[i].name, h[i].name_len, h[i].value, h[i].value_len);
    const char *why = parse_framing_error(&f, http11);

    bool broken[R_COUNT], any = false;
    ref_framing(h, count, http11, broken);
    for (int r = 0; r < R_COUNT; r++)
        any = any || broken[r];
    CHECK((why != NULL) == any);
    if (why) {
        /* it names a rule broken, in ASCII fit for a JSON reply */
        bool named = false;
        for (int r = 0; r < R_COUNT; r++)
            if (strstr(why, rule_words[r])) {
                CHECK(broken[r]);
                named = true;
            }
        CHECK(named);
        for (const char *c = why; *c; c++)
            CHECK(*c >= 0x20 && *c < 0x7f);
    }
    /* Each header's own target check, whatever it holds. */
    for (size_t i = 0; i < count; i++) {
        check_target((const uint8_t *)h[i].name, h[i].name_len);
        check_target((const uint8_t *)h[i].value, h[i].value_len);
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t flags = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    check_framing(p, n, flags & 1, flags & 2);
    check_line_scan(p, n, (size_t)(flags >> 2) + 1);
    /* The target as the first line's middle part (method SP target SP
     * version), and the whole input as one. */
    const uint8_t *nl = memchr(p, '\n', n);
    size_t line = nl ? (size_t)(nl - p) : n;
    const uint8_t *sp1 = memchr(p, ' ', line);
    if (sp1) {
        const uint8_t *sp2 = sp1 + 1;
        for (const uint8_t *q = sp2; q < p + line; q++)
            if (*q == ' ') sp2 = q;
        if (sp2 > sp1 + 1) check_target(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    }
    check_target(p, n);
    return 0;
}
