/* Unit tests of presence.c: the seed's model methods, driven by a fake clock. */
#include "testutil.h"

static void model_methods(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "john_doe", 0);
    struct usersd_user u;

    f->now = T0 + 10;
    assert_int_equal(usersd_set_online(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_ONLINE);
    assert_true(u.last_seen == T0 + 10);
    assert_true(usersd_user_is_online(&u));

    f->now = T0 + 20; /* away leaves last_seen alone */
    assert_int_equal(usersd_set_away(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_true(u.last_seen == T0 + 10);
    assert_false(usersd_user_is_online(&u));

    f->now = T0 + 30; /* update_last_seen moves the time, not the status */
    assert_int_equal(usersd_update_last_seen(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_true(u.last_seen == T0 + 30);

    f->now = T0 + 40;
    assert_int_equal(usersd_set_offline(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.last_seen == T0 + 40);

    /* the stored user agrees with what the calls returned */
    assert_int_equal(usersd_get_status(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.last_seen == T0 + 40);
}

static void set_status_calls_the_model_method(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "x", 0);
    struct usersd_user u;
    f->now = T0 + 5;
    assert_int_equal(usersd_set_status(f->u, id, USERSD_AWAY, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == USERSD_NULL_TIME); /* away: never seen stays null */
    assert_int_equal(usersd_set_status(f->u, id, USERSD_ONLINE, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == T0 + 5);
    struct usersd_err err = {0};
    assert_int_equal(usersd_set_status(f->u, 4242, USERSD_ONLINE, &u, &err), USERSD_ENOTFOUND);
    assert_int_equal(usersd_set_status(f->u, id, (enum usersd_status)7, &u, &err), USERSD_EINVAL);
}

static void status_names(void **state)
{
    (void)state;
    enum usersd_status s;
    assert_true(usersd_status_parse("online", &s) && s == USERSD_ONLINE);
    assert_true(usersd_status_parse("away", &s) && s == USERSD_AWAY);
    assert_true(usersd_status_parse("offline", &s) && s == USERSD_OFFLINE);
    assert_false(usersd_status_parse("Online", &s));
    assert_false(usersd_status_parse("", &s));
    assert_false(usersd_status_parse(NULL, &s));
    assert_string_equal(usersd_status_name(USERSD_AWAY), "away");
}

static void touch_at_most_once_a_minute(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "t", 0);
    struct usersd_user u;
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(usersd_touch(f->u, &u, NULL), USERSD_OK); /* null: moves */
    assert_true(u.last_seen == T0);
    f->now = T0 + 59 * 1000000;
    assert_int_equal(usersd_touch(f->u, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == T0); /* within the minute: no write */
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == T0);
    f->now = T0 + 61 * 1000000;
    assert_int_equal(usersd_touch(f->u, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == f->now);
    assert_int_equal(u.online_status, USERSD_OFFLINE); /* activity never changes status */
}

#define SEC 1000000LL

/* A refresh written later carries its own time (API.md §7): last_seen and
 * last_used move to it, the status stays, an older refresh moves nothing
 * back, and one inside the interval of the last writes nothing. */
static void refresh_at_its_time(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "ann", 0);
    struct usersd_user u;
    f->now = T0;
    assert_int_equal(usersd_set_online(f->u, id, &u, NULL), USERSD_OK);
    f->now = T0 + 120 * SEC; /* queued at T0+90 s, applied 30 s later */
    assert_int_equal(usersd_refresh(f->u, id, 0, T0 + 90 * SEC, NULL), USERSD_OK);
    assert_int_equal(usersd_get_status(f->u, id, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == T0 + 90 * SEC && u.online_status == USERSD_ONLINE);
    assert_int_equal(usersd_refresh(f->u, id, 0, T0 + 80 * SEC, NULL), USERSD_OK);  /* older */
    assert_int_equal(usersd_refresh(f->u, id, 0, T0 + 100 * SEC, NULL), USERSD_OK); /* < 60 s */
    assert_int_equal(usersd_get_status(f->u, id, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == T0 + 90 * SEC);
    assert_int_equal(usersd_set_away(f->u, id, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_refresh(f->u, id, 0, T0 + 200 * SEC, NULL), USERSD_OK);
    assert_int_equal(usersd_get_status(f->u, id, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == T0 + 200 * SEC && u.online_status == USERSD_AWAY);
    assert_int_equal(usersd_refresh(f->u, 999, 0, T0, NULL), USERSD_OK); /* nobody: nothing */
}

/* The race of a refresh on its way and decay: with a grace as long as the
 * most a refresh waits, decay does not take the user away before the grace
 * has passed, so a refresh queued just before the threshold lands first. */
static void decay_waits_for_refreshes_on_their_way(void **state)
{
    struct fixture *f = *state;
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.away_after_s = 10;
    cfg.offline_after_s = 0;
    cfg.activity_interval_s = 1;
    cfg.decay_grace_us = 2 * SEC;
    assert_int_equal(fixture_open_cfg(f, cfg), 0);
    int64_t id = make_user(f, "bob", 0);
    struct usersd_user u;
    int64_t n = -1;
    f->now = T0;
    assert_int_equal(usersd_set_online(f->u, id, NULL, NULL), USERSD_OK);
    /* a heartbeat at T0+9.9 s is answered and queued; decay runs at T0+11 s */
    f->now = T0 + 11 * SEC;
    assert_int_equal(usersd_decay(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0); /* inside the grace: the refresh may be on its way */
    assert_int_equal(usersd_refresh(f->u, id, 0, T0 + 9900000, NULL), USERSD_OK);
    f->now = T0 + 21 * SEC; /* 11.1 s after the refresh: still within 10 + 2 */
    assert_int_equal(usersd_decay(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    f->now = T0 + 22 * SEC; /* 12.1 s: away */
    assert_int_equal(usersd_decay(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(usersd_get_status(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
}

static void online_page_order(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "a", 0), b = make_user(f, "b", 0), c = make_user(f, "c", 0);
    f->now = T0 + 100;
    usersd_set_online(f->u, a, NULL, NULL);
    usersd_set_online(f->u, b, NULL, NULL); /* same time as a: ties by id */
    f->now = T0 + 200;
    usersd_set_online(f->u, c, NULL, NULL);
    struct usersd_page p;
    assert_int_equal(usersd_online_users(f->u, 1, 2, &p, NULL), USERSD_OK);
    assert_int_equal(p.total_count, 3);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.users[0].id, c);
    assert_int_equal(p.users[1].id, a);
    assert_int_equal(usersd_page_total_pages(&p), 2);
    usersd_page_free(&p);
    assert_int_equal(usersd_online_users(f->u, 2, 2, &p, NULL), USERSD_OK);
    assert_int_equal(p.users[0].id, b);
    usersd_page_free(&p);
}

/* Group commit (the server's writer): the calls of a batch share one
 * transaction; one refused (an unknown user) changes nothing and the others
 * stand; nothing is visible to another handle before the commit; a
 * rollback undoes them all. */
static void batch_of_writes(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "ba", 0), b = make_user(f, "bb", 0);
    char url[96];
    snprintf(url, sizeof url, "sqlite:%s", f->path);
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.db_url = url;
    struct usersd *other = NULL;
    assert_int_equal(usersd_open(&other, &cfg, NULL), USERSD_OK);
    struct usersd_user u;
    struct usersd_err err = {0};
    assert_int_equal(usersd_batch_begin(f->u, NULL), USERSD_OK);
    assert_int_equal(usersd_set_status_presence(f->u, a, USERSD_ONLINE, &u, NULL), USERSD_OK);
    assert_true(u.id == a && u.online_status == USERSD_ONLINE && u.last_seen == f->now);
    assert_int_equal(usersd_set_status_presence(f->u, 999, USERSD_ONLINE, &u, &err),
                     USERSD_ENOTFOUND);
    assert_int_equal(usersd_set_status_presence(f->u, b, USERSD_AWAY, &u, NULL), USERSD_OK);
    assert_int_equal(usersd_set_status_presence(f->u, a, USERSD_ONLINE, &u, NULL), USERSD_OK);
    assert_int_equal(usersd_user_get(other, a, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE); /* not committed yet */
    assert_int_equal(usersd_batch_commit(f->u, NULL), USERSD_OK);
    assert_int_equal(usersd_user_get(other, a, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_ONLINE);
    assert_int_equal(usersd_user_get(other, b, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    struct usersd_changes c;
    assert_int_equal(usersd_changes_since(other, 0, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 2); /* a's second online is not a change */
    usersd_changes_free(&c);
    assert_int_equal(usersd_batch_begin(f->u, NULL), USERSD_OK);
    assert_int_equal(usersd_set_status_presence(f->u, a, USERSD_OFFLINE, &u, NULL), USERSD_OK);
    usersd_batch_rollback(f->u);
    assert_int_equal(usersd_user_get(other, a, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_ONLINE);
    usersd_close(other);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(batch_of_writes),
        T(model_methods),
        T(set_status_calls_the_model_method),
        cmocka_unit_test(status_names),
        T(touch_at_most_once_a_minute),
        T(online_page_order),
        T(refresh_at_its_time),
        T(decay_waits_for_refreshes_on_their_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
