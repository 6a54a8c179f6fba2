/* Unit tests of decay (presence.c) and the change log (events.c), with an
 * injected clock: no sleeping. Thresholds are the defaults: away after
 * 600 s, offline after 3600 s. */
#include "testutil.h"

#define S 1000000LL

static enum usersd_status status_of(struct fixture *f, int64_t id)
{
    struct usersd_user u;
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    return u.online_status;
}

static int64_t decay(struct fixture *f)
{
    int64_t n = -1;
    assert_int_equal(usersd_decay(f->u, &n, NULL), USERSD_OK);
    return n;
}

static void thresholds_and_boundaries(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "a", 0);
    f->now = T0;
    usersd_set_online(f->u, a, NULL, NULL);
    f->now = T0 + 600 * S; /* exactly at the deadline: not older yet */
    assert_int_equal(decay(f), 0);
    assert_int_equal(status_of(f, a), USERSD_ONLINE);
    f->now += 1;
    assert_int_equal(decay(f), 1);
    assert_int_equal(status_of(f, a), USERSD_AWAY);
    assert_int_equal(decay(f), 0); /* nothing twice */
    f->now = T0 + 3600 * S;
    assert_int_equal(decay(f), 0);
    f->now += 1;
    assert_int_equal(decay(f), 1);
    assert_int_equal(status_of(f, a), USERSD_OFFLINE);
    struct usersd_user u;
    usersd_user_get(f->u, a, &u, NULL);
    assert_true(u.last_seen == T0); /* decay never moves last_seen */
}

static void straight_to_offline_and_away_users(void **state)
{
    struct fixture *f = *state;
    int64_t on = make_user(f, "on", 0), away = make_user(f, "away", 0);
    int64_t never = make_user(f, "never", 0), fresh = make_user(f, "fresh", 0);
    f->now = T0;
    usersd_set_online(f->u, on, NULL, NULL);
    usersd_set_online(f->u, away, NULL, NULL);
    usersd_set_away(f->u, away, NULL, NULL);
    usersd_set_away(f->u, never, NULL, NULL); /* away, never seen */
    f->now = T0 + 4000 * S;
    usersd_set_online(f->u, fresh, NULL, NULL);
    assert_int_equal(decay(f), 2); /* one transition each, not two */
    assert_int_equal(status_of(f, on), USERSD_OFFLINE);
    assert_int_equal(status_of(f, away), USERSD_OFFLINE);
    assert_int_equal(status_of(f, never), USERSD_AWAY); /* nothing to be older than */
    assert_int_equal(status_of(f, fresh), USERSD_ONLINE);
    struct usersd_changes c;
    int64_t head;
    assert_int_equal(usersd_changes_head(f->u, &head, NULL), USERSD_OK);
    assert_int_equal(usersd_changes_since(f->u, head - 2, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(c.items[i].online_status, USERSD_OFFLINE);
        assert_true(c.items[i].at == f->now);
    }
    usersd_changes_free(&c);
}

static struct fixture *reopen(struct fixture *f, int64_t away, int64_t offline)
{
    assert_int_equal(fixture_open(f, away, offline), 0);
    return f;
}

static void thresholds_can_be_off(void **state)
{
    struct fixture *f = reopen(*state, 0, 0);
    int64_t a = make_user(f, "a", 0);
    usersd_set_online(f->u, a, NULL, NULL);
    f->now += 1000000 * S;
    assert_int_equal(decay(f), 0);
    assert_int_equal(status_of(f, a), USERSD_ONLINE);

    reopen(f, 0, 10); /* away off: online goes straight to offline */
    assert_int_equal(decay(f), 1);
    assert_int_equal(status_of(f, a), USERSD_OFFLINE);

    reopen(f, 10, 0); /* offline off: away stays away */
    usersd_set_online(f->u, a, NULL, NULL);
    f->now += 11 * S;
    assert_int_equal(decay(f), 1);
    f->now += 1000000 * S;
    assert_int_equal(decay(f), 0);
    assert_int_equal(status_of(f, a), USERSD_AWAY);
}

static void log_records_changes_only(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "a", 0);
    int64_t head0;
    assert_int_equal(usersd_changes_head(f->u, &head0, NULL), USERSD_OK);
    assert_int_equal(head0, 0);
    f->now = T0 + 1;
    usersd_set_online(f->u, a, NULL, NULL);
    usersd_set_online(f->u, a, NULL, NULL); /* same status: last_seen only, no change */
    usersd_update_last_seen(f->u, a, NULL, NULL);
    usersd_set_away(f->u, a, NULL, NULL);
    usersd_set_offline(f->u, a, NULL, NULL);
    struct usersd_changes c;
    assert_int_equal(usersd_changes_since(f->u, 0, 0, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 3);
    assert_int_equal(c.items[0].online_status, USERSD_ONLINE);
    assert_int_equal(c.items[1].online_status, USERSD_AWAY);
    assert_int_equal(c.items[2].online_status, USERSD_OFFLINE);
    assert_string_equal(c.items[0].username, "a");
    assert_true(c.items[0].seq < c.items[1].seq && c.items[1].seq < c.items[2].seq);
    assert_int_equal(c.next_since, c.items[2].seq);
    int64_t last = c.next_since;
    usersd_changes_free(&c);
    assert_int_equal(usersd_changes_since(f->u, 1, 1, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 1); /* limit */
    usersd_changes_free(&c);
    assert_int_equal(usersd_changes_since(f->u, last, 10, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 0);
    assert_int_equal(c.next_since, last);
    usersd_changes_free(&c);
    /* deleting an online user logs it going offline */
    usersd_set_online(f->u, a, NULL, NULL);
    assert_int_equal(usersd_user_delete(f->u, a, NULL), USERSD_OK);
    assert_int_equal(usersd_changes_since(f->u, last, 10, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 2);
    assert_int_equal(c.items[1].online_status, USERSD_OFFLINE);
    assert_int_equal(c.items[1].user_id, a);
    usersd_changes_free(&c);
}

static void prune_and_gone(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "a", 0);
    f->now = T0;
    usersd_set_online(f->u, a, NULL, NULL); /* seq 1 at T0 */
    usersd_set_away(f->u, a, NULL, NULL);   /* seq 2 at T0 */
    f->now = T0 + 3000 * S;
    usersd_set_online(f->u, a, NULL, NULL); /* seq 3 */
    f->now = T0 + 3601 * S;                 /* retention 3600 s: 1 and 2 go */
    assert_int_equal(usersd_changes_prune(f->u, NULL), USERSD_OK);
    struct usersd_changes c;
    struct usersd_err err = {0};
    assert_int_equal(usersd_changes_since(f->u, 0, 10, &c, &err), USERSD_EGONE);
    assert_int_equal(usersd_changes_since(f->u, 1, 10, &c, &err), USERSD_EGONE);
    assert_int_equal(usersd_changes_since(f->u, 2, 10, &c, &err), USERSD_OK);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.items[0].seq, 3);
    usersd_changes_free(&c);
    f->now = T0 + 9000 * S; /* everything pruned: the head survives */
    assert_int_equal(usersd_changes_prune(f->u, NULL), USERSD_OK);
    int64_t head;
    assert_int_equal(usersd_changes_head(f->u, &head, NULL), USERSD_OK);
    assert_int_equal(head, 3);
    assert_int_equal(usersd_changes_since(f->u, 3, 10, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 0);
    usersd_changes_free(&c);
    assert_int_equal(usersd_changes_since(f->u, -1, 10, &c, &err), USERSD_EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(thresholds_and_boundaries),
        T(straight_to_offline_and_away_users),
        T(thresholds_can_be_off),
        T(log_records_changes_only),
        T(prune_and_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
