/* fuzz.h — what the harnesses share. Each harness is one parser of client
 * bytes (src/server/parse.h, the router, usersd_time_parse) with the
 * invariants it must keep; a broken invariant aborts, which libFuzzer (and
 * replay_main.c under make test) reports as a failure with the input. */
#ifndef USERSD_FUZZ_H
#define USERSD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated copy of data[0..size) (what MHD hands over as a C
 * string); the caller frees it. Aborts when out of memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s != NULL);
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* True when s[0..n) is one or more ASCII digits whose value is at most the
 * decimal max_text (no sign, no leading zeros): compared as text, so it
 * does not share the parsers' arithmetic. */
static inline bool fuzz_decimal_fits(const char *s, size_t n, const char *max_text)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    while (n > 1 && s[0] == '0')
        s++, n--;
    size_t m = strlen(max_text);
    return n < m || (n == m && memcmp(s, max_text, n) <= 0);
}

/* An RFC 9110 tchar, the bytes of a method or a header name, written apart
 * from parse.c's own table. */
static inline bool fuzz_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && memchr("!#$%&'*+-.^_`|~", c, 15));
}

#endif
