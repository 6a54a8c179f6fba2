/* fuzz_seq.c — event positions: `since` (changes), `?last_event_id=` and
 * the Last-Event-ID header (stream), which all read a position with
 * parse_uint up to PARSE_EVENT_POS_MAX (2^63-1, like the event ids, API.md
 * §6), from a C string as MHD hands it over; beside them, the other query
 * integers (query_int) stay at PARSE_QUERY_INT_MAX (2^31-1). Invariants:
 * each accepted exactly when plain digits within its bound (compared as
 * text); a position round-trips through its decimal text; whatever a query
 * integer accepts a position accepts too, equal. */
#include "fuzz.h"
#include "parse.h"

_Static_assert(PARSE_EVENT_POS_MAX == INT64_MAX, "event positions go up to 2^63-1");
_Static_assert(PARSE_QUERY_INT_MAX == INT32_MAX, "query integers go up to 2^31-1");

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    size_t len = strlen(s); /* MHD's values end at the first NUL */
    int64_t pos = -1, num = -1;
    bool pos_ok = parse_uint(s, len, PARSE_EVENT_POS_MAX, &pos);
    bool num_ok = parse_uint(s, len, PARSE_QUERY_INT_MAX, &num);
    CHECK(pos_ok == fuzz_decimal_fits(s, len, "9223372036854775807"));
    CHECK(num_ok == fuzz_decimal_fits(s, len, "2147483647"));
    if (num_ok) CHECK(pos_ok && pos == num && num <= INT32_MAX);
    if (pos_ok) {
        char back[24];
        snprintf(back, sizeof back, "%lld", (long long)pos);
        int64_t again = -1;
        CHECK(parse_uint(back, strlen(back), PARSE_EVENT_POS_MAX, &again) && again == pos);
    }
    free(s);
    return 0;
}
