/* fuzz_ids.c — `ids` lists (API.md §6 bulk status: at most 100; §7 stream
 * subscriptions: at most 1000; and small bounds, chosen by the first
 * byte). Invariants, checked against an independent split on commas: OK
 * exactly when every item is a query integer and there are 1..max of them;
 * MALFORMED when one of the first max items is not; else TOO_MANY; an
 * accepted list gives back each item's value, in order. */
#include "fuzz.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    static const size_t maxes[] = {PARSE_IDS_BULK_MAX, PARSE_IDS_STREAM_MAX, 0, 1, 2, 3};
    size_t max = maxes[data[0] % (sizeof maxes / sizeof maxes[0])];
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    int64_t *out = malloc((max ? max : 1) * sizeof *out);
    CHECK(out != NULL);
    size_t n = 0;
    enum parse_ids_rc rc = parse_ids(s, len, out, max, &n);

    /* the reference: split on commas */
    size_t items = 0, first_bad = SIZE_MAX;
    for (size_t i = 0;; i++) {
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        if (!fuzz_decimal_fits(s + start, i - start, "2147483647") && first_bad == SIZE_MAX)
            first_bad = items;
        if (rc == PARSE_IDS_OK && items < n) {
            char back[16];
            int k = snprintf(back, sizeof back, "%lld", (long long)out[items]);
            const char *item = s + start;
            size_t ilen = i - start;
            while (ilen > 1 && item[0] == '0')
                item++, ilen--;
            CHECK((size_t)k == ilen && memcmp(back, item, ilen) == 0);
        }
        items++;
        if (i >= len) break;
    }
    if (len == 0)
        CHECK(rc == PARSE_IDS_MALFORMED);
    else if (first_bad < max)
        CHECK(rc == PARSE_IDS_MALFORMED);
    else if (items > max)
        CHECK(rc == PARSE_IDS_TOO_MANY);
    else
        CHECK(rc == PARSE_IDS_OK && n == items && n >= 1 && n <= max);
    free(out);
    return 0;
}
