/* fuzz_seq.c — event sequence numbers: the Last-Event-ID header (any seq
 * the server sent, up to INT64_MAX) and the `since` / `last_event_id`
 * query values (query integers, up to 2^31-1), as h_stream and h_changes
 * read them (a C string from MHD). Invariants: accepted exactly when plain
 * digits within the bound; the value round-trips through its decimal
 * text; a value the query accepts the header accepts too, equal. */
#include "fuzz.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    size_t len = strlen(s); /* MHD's values end at the first NUL */
    int64_t hdr = -1, query = -1;
    bool hdr_ok = parse_uint(s, len, INT64_MAX, &hdr);
    bool query_ok = parse_uint(s, len, PARSE_QUERY_INT_MAX, &query);
    CHECK(hdr_ok == fuzz_decimal_fits(s, len, "9223372036854775807"));
    CHECK(query_ok == fuzz_decimal_fits(s, len, "2147483647"));
    if (query_ok) CHECK(hdr_ok && hdr == query && query <= INT32_MAX);
    if (hdr_ok) {
        char back[24];
        snprintf(back, sizeof back, "%lld", (long long)hdr);
        int64_t again = -1;
        CHECK(parse_uint(back, strlen(back), INT64_MAX, &again) && again == hdr);
    }
    free(s);
    return 0;
}
