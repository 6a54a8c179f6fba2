/* Unit tests of src/server/login_limit.c's tables: the counts per pair and
 * per address, and a blocked pair that a flood of new entries cannot push
 * out of the fixed-size table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server.h"

/* login_limit.c's pool opens handles with the server's configuration. */
struct usersd_config server_core_config(void)
{
    struct usersd_config c;
    usersd_config_init(&c);
    return c;
}

static long attempt(const char *ip, const char *user, enum login_outcome outcome)
{
    struct login_ticket t = {0};
    long wait = login_limit_begin(ip, user, &t);
    if (!wait) login_limit_end(&t, outcome);
    return wait;
}

static void pair_and_address(void **state)
{
    (void)state;
    login_limit_configure(3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(attempt("10.0.0.1", "ann", LOGIN_FAILED), 0);
    long wait = attempt("10.0.0.1", "ann", LOGIN_OK);
    assert_true(wait > 590 && wait <= 600);
    assert_true(login_limit_check("10.0.0.1", "ANN") > 0); /* case-insensitive */
    assert_int_equal(login_limit_check("10.0.0.2", "ann"), 0);
    assert_int_equal(login_limit_check("10.0.0.1", "bob"), 0);
    /* undecided attempts (the database was away) count nothing */
    for (int i = 0; i < 10; i++)
        assert_int_equal(attempt("10.0.0.3", "cy", LOGIN_UNDECIDED), 0);
    /* a success starts the pair afresh */
    assert_int_equal(attempt("10.0.0.4", "dee", LOGIN_FAILED), 0);
    assert_int_equal(attempt("10.0.0.4", "dee", LOGIN_FAILED), 0);
    assert_int_equal(attempt("10.0.0.4", "dee", LOGIN_OK), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(attempt("10.0.0.4", "dee", LOGIN_FAILED), 0);
    assert_true(login_limit_check("10.0.0.4", "dee") > 0);
    /* 5 x 3 failures from one address over any usernames block it */
    for (int i = 0; i < 15; i++) {
        char user[16];
        snprintf(user, sizeof user, "u%d", i);
        assert_int_equal(attempt("10.0.0.5", user, LOGIN_FAILED), 0);
    }
    assert_true(login_limit_check("10.0.0.5", "someone-else") > 0);
}

static void running_checks_count(void **state)
{
    (void)state;
    login_limit_configure(2);
    struct login_ticket a = {0}, b = {0};
    assert_int_equal(login_limit_begin("10.1.0.1", "eve", &a), 0);
    assert_int_equal(login_limit_begin("10.1.0.1", "eve", &b), 0);
    login_limit_end(&a, LOGIN_FAILED);
    login_limit_end(&b, LOGIN_FAILED);
    struct login_ticket c = {0};
    assert_true(login_limit_begin("10.1.0.1", "eve", &c) > 0);
    assert_false(c.held);
}

static void flood_cannot_push_out_a_blocked_pair(void **state)
{
    (void)state;
    login_limit_configure(10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(attempt("192.0.2.1", "victim", LOGIN_FAILED), 0);
    assert_true(login_limit_check("192.0.2.1", "victim") > 0);
    /* 200,000 new pairs from as many addresses (no address limit helps),
     * more than ten times the table's 16,384 pairs */
    for (int i = 0; i < 200000; i++) {
        char ip[32], user[32];
        snprintf(ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        snprintf(user, sizeof user, "user%d", i);
        assert_int_equal(attempt(ip, user, LOGIN_FAILED), 0);
    }
    assert_true(login_limit_check("192.0.2.1", "victim") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pair_and_address),
        cmocka_unit_test(running_checks_count),
        cmocka_unit_test(flood_cannot_push_out_a_blocked_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
