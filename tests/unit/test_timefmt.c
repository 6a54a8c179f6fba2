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

static void parse_rejects_bad_input(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "2024-01-15",
                         "2024-01-15T10:30:00Z",
                         "2024-01-15T10:30:00.123456",
                         "2024-13-15T10:30:00.123456Z",
                         "2023-02-29T10:30:00.000000Z",
                         "2024-01-15T24:00:00.000000Z",
                         "2024-01-15 10:30:00.123456Z",
                         "2024-01-15T10:30:00.12345xZ",
                         "2024-01-32T10:30:00.000000Z"};
    int64_t t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(usersd_time_parse(bad[i], &t));
    assert_false(usersd_time_parse(NULL, &t));
    assert_true(usersd_time_parse("2024-02-29T00:00:00.000000Z", &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_known_instants),
        cmocka_unit_test(parse_roundtrips),
        cmocka_unit_test(parse_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
