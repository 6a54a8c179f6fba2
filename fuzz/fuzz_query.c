/* fuzz_query.c — query values (API.md §6): parse_uint with the bounds the
 * server uses, parse_bool, and parse_query_text (every query name and
 * value: UTF-8 without NUL). Invariants: an integer is accepted exactly
 * when it is plain digits within the bound (checked as text), and an
 * accepted one prints back as its digits without leading zeros; a boolean
 * is exactly true/false/1/0; text is accepted exactly when a decoder of
 * another shape (code points, then their shortest encoding) agrees. */
#include "fuzz.h"
#include "parse.h"

static const struct {
    int64_t max;
    const char *text;
} bounds[] = {
    {PARSE_QUERY_INT_MAX, "2147483647"},
    {0, "0"},
    {9, "9"},
    {10, "10"},
    {100, "100"},
    {65535, "65535"},
    {INT64_MAX, "9223372036854775807"},
};

/* Well-formed UTF-8 without NUL, decoded the long way: each sequence's
 * code point, which must be a scalar value whose shortest encoding has
 * exactly that length. */
static bool reference_text(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n || c == 0) return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        size_t shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (shortest != len || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        int64_t v = -7;
        bool ok = parse_uint(s, size, bounds[b].max, &v);
        CHECK(ok == fuzz_decimal_fits(s, size, bounds[b].text));
        if (!ok) {
            CHECK(v == -7); /* untouched */
            continue;
        }
        CHECK(v >= 0 && v <= bounds[b].max);
        char back[24];
        int n = snprintf(back, sizeof back, "%lld", (long long)v);
        size_t z = 0;
        while (z + 1 < size && s[z] == '0')
            z++;
        CHECK((size_t)n == size - z && memcmp(back, s + z, (size_t)n) == 0);
    }
    int want = -1;
    if ((size == 4 && !memcmp(s, "true", 4)) || (size == 1 && s[0] == '1')) want = 1;
    if ((size == 5 && !memcmp(s, "false", 5)) || (size == 1 && s[0] == '0')) want = 0;
    CHECK(parse_bool(s, size) == want);
    CHECK(parse_query_text(s, size) == reference_text(data, size));
    return 0;
}
