/* fuzz_origin.c — Origin/Referer normalisation and the CSRF check (API.md
 * §2). The input is lines: Origin, Host, then up to three trusted origins;
 * the first byte's low bit is --cookie-secure. Invariants: a normalised
 * origin is "http://" or "https://", a lower-case host without / ? # @ or
 * space, ':' and a port 1-65535 without leading zeros; normalising it again
 * gives it back; a path, query or fragment added changes nothing, nor does
 * upper case; the check passes exactly when the normalised Origin equals
 * the normalised own origin or a normalised trusted one, and any trusted
 * origin passes it. */
#include <ctype.h>

#include "fuzz.h"
#include "parse.h"

#define LINES 5

static void check_norm_form(const char *o)
{
    size_t n = strlen(o);
    CHECK(n < PARSE_ORIGIN_MAX);
    const char *host = NULL;
    if (!strncmp(o, "http://", 7)) host = o + 7;
    if (!strncmp(o, "https://", 8)) host = o + 8;
    CHECK(host != NULL);
    const char *colon = strrchr(host, ':');
    CHECK(colon && colon > host);
    for (const char *c = host; c < colon; c++)
        CHECK(!isupper((unsigned char)*c) && !strchr("/?#@ ", *c) && *c > 0x20 && *c < 0x7f);
    const char *port = colon + 1;
    size_t plen = strlen(port);
    CHECK(plen >= 1 && plen <= 5 && port[0] != '0');
    for (size_t i = 0; i < plen; i++)
        CHECK(port[i] >= '0' && port[i] <= '9');
    CHECK(strtol(port, NULL, 10) <= 65535);
    char again[PARSE_ORIGIN_MAX];
    CHECK(parse_origin_norm(o, n, again, sizeof again) && strcmp(again, o) == 0);
}

/* norm(s + suffix) == norm(s) */
static void check_suffix(const char *s, const char *normed, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    char *t = malloc(n + k + 1), out[PARSE_ORIGIN_MAX];
    CHECK(t != NULL);
    memcpy(t, s, n);
    memcpy(t + n, suffix, k + 1);
    CHECK(parse_origin_norm(t, n + k, out, sizeof out) && strcmp(out, normed) == 0);
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    bool secure = data[0] & 1;
    char *text = fuzz_cstr(data + 1, size - 1);
    char *line[LINES] = {0};
    int nlines = 0;
    for (char *p = text; nlines < LINES;) {
        line[nlines++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    const char *origin = line[0], *host = nlines > 1 ? line[1] : NULL;
    const char *const *trusted = (const char *const *)line + 2;
    size_t ntrusted = nlines > 2 ? (size_t)nlines - 2 : 0;

    char got[PARSE_ORIGIN_MAX], want[PARSE_ORIGIN_MAX];
    bool ok = parse_origin_norm(origin, strlen(origin), got, sizeof got);
    if (ok) {
        check_norm_form(got);
        check_suffix(origin, got, "/a/B?c#d");
        check_suffix(origin, got, "?x");
        check_suffix(origin, got, "#");
        char *up = strdup(origin), upn[PARSE_ORIGIN_MAX];
        CHECK(up != NULL);
        for (char *c = up; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        CHECK(parse_origin_norm(up, strlen(up), upn, sizeof upn) && strcmp(upn, got) == 0);
        free(up);
    }

    bool allowed = parse_origin_allowed(origin, host, secure, trusted, ntrusted);
    bool expect = false;
    if (ok && host && !host[strcspn(host, "/?#")]) {
        size_t n = strlen(host) + 9;
        char *own = malloc(n);
        CHECK(own != NULL);
        snprintf(own, n, "%s://%s", secure ? "https" : "http", host);
        expect = strlen(own) < PARSE_ORIGIN_MAX &&
                 parse_origin_norm(own, strlen(own), want, sizeof want) && !strcmp(want, got);
        free(own);
    }
    for (size_t i = 0; i < ntrusted && ok; i++)
        if (parse_origin_norm(trusted[i], strlen(trusted[i]), want, sizeof want) &&
            !strcmp(want, got))
            expect = true;
    CHECK(allowed == expect);
    if (!ok) CHECK(!allowed);
    /* a trusted origin is always let in, whatever the Host */
    for (size_t i = 0; i < ntrusted; i++)
        if (parse_origin_norm(trusted[i], strlen(trusted[i]), want, sizeof want))
            CHECK(parse_origin_allowed(trusted[i], host, secure, trusted, ntrusted));
    free(text);
    return 0;
}
