/* fuzz_query.c — query integers and booleans (API.md §6): parse_uint with
 * the bounds the server uses, parse_bool. Invariants: an integer is
 * accepted exactly when it is plain digits within the bound (checked as
 * text), and an accepted one prints back as its digits without leading
 * zeros; a boolean is exactly true/false/1/0. */
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
    return 0;
}
