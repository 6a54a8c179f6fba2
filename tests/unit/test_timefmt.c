/* Unit tests of timefmt.c: RFC 3339 with microseconds, both ways. */
#include "testutil.h"

static void formats_known_instants(void **state)
{
    (void)state;
    char buf[USERSD_TIME_LEN + 1];
    usersd_time_format(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
    usersd_time_format(T0 + 123456, buf, sizeof buf);
    assert_string_equal(buf, "2024-01-15T10:30:00.123456Z");
    /* a leap day and the last microsecond of a year */
    usersd_time_format((int64_t)951782400 * 1000000, buf, sizeof buf);
    assert_string_equal(buf, "2000-02-29T00:00:00.000000Z");
    usersd_time_format((int64_t)1704067200 * 1000000 - 1, buf, sizeof buf);
    assert_string_equal(buf, "2023-12-31T23:59:59.999999Z");
    usersd_time_format(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
}

static void parse_roundtrips(void **state)
{
    (void)state;
    int64_t samples[] = {0, T0, T0 + 999999, (int64_t)4102444800 * 1000000 + 42, -1};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char buf[USERSD_TIME_LEN + 1];
        int64_t back;
        usersd_time_format(samples[i], buf, sizeof buf);
        assert_true(usersd_time_parse(buf, &back));
        assert_int_equal(back, samples[i]);
    }
}

/* RFC 3339 date-times from other writers (API.md §8 expires_at, §9
 * from/to): each row is an input and the UTC instant it names, in our own
 * format. */
static void parse_accepts_rfc3339(void **state)
{
    (void)state;
    static const struct {
        const char *in, *utc;
    } good[] = {
        {"2024-01-15T10:30:00.123456Z", "2024-01-15T10:30:00.123456Z"},
        {"2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000000Z"},
        {"2024-01-15t10:30:00z", "2024-01-15T10:30:00.000000Z"},
        {"2024-01-15T10:30:00.5Z", "2024-01-15T10:30:00.500000Z"},
        {"2024-01-15T10:30:00.12Z", "2024-01-15T10:30:00.120000Z"},
        {"2024-01-15T10:30:00.123456789Z", "2024-01-15T10:30:00.123456Z"}, /* cut, not rounded */
        {"2024-01-15T10:30:00.999999999Z", "2024-01-15T10:30:00.999999Z"},
        {"2024-01-15T10:30:00.000001Z", "2024-01-15T10:30:00.000001Z"},
        {"2024-01-15T12:30:00+02:00", "2024-01-15T10:30:00.000000Z"},
        {"2024-01-15T05:00:00.25-05:30", "2024-01-15T10:30:00.250000Z"},
        {"2024-01-15T10:30:00+00:00", "2024-01-15T10:30:00.000000Z"},
        {"2024-01-15T10:30:00-00:00", "2024-01-15T10:30:00.000000Z"}, /* "unknown offset" */
        {"2024-01-01T00:30:00+01:00", "2023-12-31T23:30:00.000000Z"}, /* across a year */
        {"2024-02-29T23:59:59-23:59", "2024-03-01T23:58:59.000000Z"},
        {"2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000000Z"}, /* 400-year leap */
        {"0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000000Z"},
        {"9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"},
        {"1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t t = 0;
        char back[USERSD_TIME_LEN + 1];
        if (!usersd_time_parse(good[i].in, &t)) fail_msg("refused: %s", good[i].in);
        usersd_time_format(t, back, sizeof back);
        if (strcmp(back, good[i].utc) != 0)
            fail_msg("%s gave %s, want %s", good[i].in, back, good[i].utc);
    }
}

static void parse_rejects_bad_input(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "2024-01-15",
        "2024-01-15T10:30",
        "2024-01-15T10:30:00",        /* no offset */
        "2024-01-15T10:30:00.123456", /* no offset */
        "2024-01-15 10:30:00Z",       /* a space for T */
        "2024-01-15_10:30:00Z",
        "2024-01-15T10:30:00.Z",           /* a point without digits */
        "2024-01-15T10:30:00.1234567890Z", /* ten digits */
        "2024-01-15T10:30:00,5Z",          /* a comma */
        "2024-01-15T10:30:00.12345xZ",
        "2024-01-15T10:30:00ZZ",
        "2024-01-15T10:30:00Z ",
        " 2024-01-15T10:30:00Z",
        "2024-01-15T10:30:00UTC",
        "2024-01-15T10:30:00+02",
        "2024-01-15T10:30:00+0200",
        "2024-01-15T10:30:00+2:00",
        "2024-01-15T10:30:00+02:0",
        "2024-01-15T10:30:00+24:00",
        "2024-01-15T10:30:00+02:60",
        "2024-01-15T10:30:00+02:00Z",
        "2024-01-15T10:30:00+-2:00",
        "2024-13-15T10:30:00Z",
        "2024-00-15T10:30:00Z",
        "2024-01-00T10:30:00Z",
        "2024-01-32T10:30:00Z",
        "2024-02-30T10:30:00Z", /* Feb 30 */
        "2024-04-31T10:30:00Z",
        "2023-02-29T10:30:00.000000Z", /* not a leap year */
        "1900-02-29T00:00:00Z",        /* nor is 1900 */
        "2024-01-15T24:00:00Z",
        "2024-01-15T10:60:00Z",
        "2024-01-15T23:59:60Z", /* leap seconds are refused */
        "-001-01-15T10:30:00Z",
        "10000-01-15T10:30:00Z",
        "+2024-01-15T10:30:00Z",
        "2024-1-15T10:30:00Z",
        "2024-01-15T1:30:00Z",
        "２０２４-01-15T10:30:00Z", /* full-width digits */
        "2024-01-15T10:30:00.12\x00Z",
        "2024/01/15T10:30:00Z",
        "2024-01-15T10-30-00Z",
        "x024-01-15T10:30:00Z",
    };
    int64_t t = 42;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (usersd_time_parse(bad[i], &t)) fail_msg("accepted: \"%s\"", bad[i]);
    assert_int_equal(t, 42); /* untouched */
    assert_false(usersd_time_parse(NULL, &t));
    /* A NUL ends the text: what follows it is not read. */
    assert_false(usersd_time_parse("2024-01-15T10:30:00\0Z", &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_known_instants),
        cmocka_unit_test(parse_roundtrips),
        cmocka_unit_test(parse_accepts_rfc3339),
        cmocka_unit_test(parse_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
