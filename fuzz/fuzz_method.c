/* fuzz_method.c — the request method (API.md §11: a method that is not an
 * RFC 7230 token is 400). Invariants: accepted exactly when one or more
 * tchar; an accepted method is printable ASCII without space, so it is safe
 * in a JSON reply ("method X is not allowed") and a log line. */
#include "fuzz.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    bool ok = parse_method_token(s, size);
    bool want = size > 0;
    for (size_t i = 0; i < size; i++)
        if (!fuzz_tchar(data[i])) want = false;
    CHECK(ok == want);
    if (ok) {
        for (size_t i = 0; i < size; i++)
            CHECK(data[i] > 0x20 && data[i] < 0x7f && data[i] != '"' && data[i] != '\\');
        CHECK(parse_utf8_valid(s, size));
    }
    return 0;
}
