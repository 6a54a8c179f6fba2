/* fuzz_time.c — RFC 3339 timestamps (usersd_time_parse: API.md §8
 * expires_at, §9 from/to). Two parts. The input as text: an accepted
 * timestamp has the grammar's fixed punctuation, and our own rendering of
 * its instant parses back to it. Its first 8 bytes as an instant t (within
 * years 0000-9999) and 2 more as an offset: parse(format(t)) == t; the
 * same local time written with that offset, or with 9 fraction digits,
 * parses to t as well. */
#include "fuzz.h"
#include "usersd.h"

/* 0000-01-01T00:00:00Z and the microsecond after 9999-12-31T23:59:59.999999Z */
#define T_MIN (-62167219200LL * 1000000)
#define T_END (253402300800LL * 1000000)

static void check_text(const char *s)
{
    int64_t t = 0;
    if (!usersd_time_parse(s, &t)) return;
    size_t n = strlen(s);
    CHECK(n >= 20 && n <= 35);
    CHECK(s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') && s[13] == ':' &&
          s[16] == ':');
    char z = s[n - 1];
    CHECK(z == 'Z' || z == 'z' || s[n - 3] == ':');
    /* within a day of the years allowed (an offset moves it by < 24 h) */
    CHECK(t >= T_MIN - 86400LL * 1000000 && t < T_END + 86400LL * 1000000);
    if (t >= T_MIN && t < T_END) {
        char buf[USERSD_TIME_LEN + 1];
        int64_t back = 0;
        usersd_time_format(t, buf, sizeof buf);
        CHECK(usersd_time_parse(buf, &back) && back == t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    check_text(s);
    free(s);
    if (size < 10) return 0;
    uint64_t raw;
    memcpy(&raw, data, sizeof raw);
    int64_t t = T_MIN + (int64_t)(raw % (uint64_t)(T_END - T_MIN));
    char buf[USERSD_TIME_LEN + 8];
    int64_t back = 0;
    usersd_time_format(t, buf, USERSD_TIME_LEN + 1);
    CHECK(strlen(buf) == USERSD_TIME_LEN);
    CHECK(usersd_time_parse(buf, &back) && back == t);
    /* nine fraction digits: the last three are cut */
    memcpy(buf + 26, "987Z", 5);
    CHECK(usersd_time_parse(buf, &back) && back == t);
    /* the local time at an offset of up to +-23:59 */
    int off = (int)(((unsigned)data[8] << 8 | data[9]) % (2 * 1440 - 1)) - 1439; /* minutes */
    int64_t local = t + (int64_t)off * 60 * 1000000;
    if (local >= T_MIN && local < T_END) {
        usersd_time_format(local, buf, USERSD_TIME_LEN + 1);
        int a = off < 0 ? -off : off;
        snprintf(buf + 26, 8, "%c%02d:%02d", off < 0 ? '-' : '+', a / 60, a % 60);
        CHECK(usersd_time_parse(buf, &back) && back == t);
    }
    return 0;
}
