/* Unit tests of error.c: the one table gives messages and HTTP statuses. */
#include "testutil.h"

static void table_maps_codes(void **state)
{
    (void)state;
    assert_int_equal(usersd_http_status(USERSD_OK), 200);
    assert_int_equal(usersd_http_status(USERSD_EINVAL), 400);
    assert_int_equal(usersd_http_status(USERSD_EAUTH), 401);
    assert_int_equal(usersd_http_status(USERSD_EFORBIDDEN), 403);
    assert_int_equal(usersd_http_status(USERSD_ENOTFOUND), 404);
    assert_int_equal(usersd_http_status(USERSD_ECONFLICT), 409);
    assert_int_equal(usersd_http_status(USERSD_EGONE), 410);
    assert_int_equal(usersd_http_status(USERSD_EDB), 503);
    assert_int_equal(usersd_http_status((enum usersd_code)999), 500);
    assert_string_equal(usersd_strerror((enum usersd_code) - 1), "unknown error");
    for (int c = 0; c < USERSD_NCODES; c++)
        assert_true(strlen(usersd_strerror(c)) > 0);
}

static void failures_carry_a_message(void **state)
{
    struct fixture *f = *state;
    struct usersd_err err = {0};
    struct usersd_user user;
    assert_int_equal(usersd_user_get(f->u, 12345, &user, &err), USERSD_ENOTFOUND);
    assert_int_equal(err.code, USERSD_ENOTFOUND);
    assert_string_equal(err.msg, "user not found");
    /* a NULL err is allowed everywhere */
    assert_int_equal(usersd_user_get(f->u, 12345, &user, NULL), USERSD_ENOTFOUND);
}

static void bad_urls_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"", "mysql://x", "sqlite:", "sqlite:/nonexistent-dir/x/y.db"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct usersd_config cfg;
        usersd_config_init(&cfg);
        cfg.db_url = bad[i];
        struct usersd *u = (struct usersd *)1;
        struct usersd_err err = {0};
        assert_int_not_equal(usersd_open(&u, &cfg, &err), USERSD_OK);
        assert_null(u);
        assert_true(strlen(err.msg) > 0);
    }
    usersd_close(NULL); /* takes NULL */
    usersd_page_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_maps_codes),
        cmocka_unit_test_setup_teardown(failures_carry_a_message, fixture_setup, fixture_teardown),
        cmocka_unit_test(bad_urls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
