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

#define SEC 1000000LL

/* A manual status (API.md §12) is kept against everything automatic —
 * login, heartbeats, activity, streams, session ends and decay — with its
 * last_seen, until a status is set again; online ends it. */
static void manual_status_is_kept(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "ann", 0);
    struct usersd_user u;
    char key[USERSD_TOKEN_LEN + 1];
    assert_int_equal(usersd_login(f->u, "ann", "password1", key, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_ONLINE);
    assert_false(u.status_manual);

    f->now = T0 + 10 * SEC;
    assert_int_equal(usersd_set_status_ex(f->u, id, USERSD_AWAY, USERSD_STATUS_MANUAL, &u, NULL),
                     USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_true(u.status_manual);
    assert_true(u.last_seen == T0); /* away leaves last_seen */

    /* a heartbeat (automatic online) writes nothing */
    f->now = T0 + 100 * SEC;
    struct usersd_status_job job = {
        .user_id = id, .status = USERSD_ONLINE, .out = &u, .flags = USERSD_STATUS_AUTO};
    assert_int_equal(usersd_set_status_many(f->u, &job, 1, NULL), USERSD_OK);
    assert_int_equal(job.rc, USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_true(u.status_manual);
    assert_true(u.last_seen == T0);

    /* activity neither: it is not even due */
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_false(usersd_activity_due(f->u, &u, USERSD_NULL_TIME));
    assert_int_equal(usersd_touch(f->u, &u, NULL), USERSD_OK);
    assert_int_equal(usersd_update_last_seen(f->u, id, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == T0);

    /* a second login, a stream's refresh, decay past both cut-offs */
    char key2[USERSD_TOKEN_LEN + 1];
    int64_t sid = 0;
    assert_int_equal(usersd_session_login(f->u, "ann", "password1", NULL, key2, &u, &sid, NULL),
                     USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    bool alive = false;
    assert_int_equal(usersd_session_refresh(f->u, &sid, 1, &alive, NULL), USERSD_OK);
    assert_true(alive);
    f->now = T0 + 7200 * SEC;
    int64_t changed = -1;
    assert_int_equal(usersd_decay(f->u, &changed, NULL), USERSD_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_true(u.last_seen == T0);

    /* logout: the status stays (no offline for a manual away) */
    assert_int_equal(usersd_logout(f->u, key, NULL), USERSD_OK);
    assert_int_equal(usersd_logout(f->u, key2, NULL), USERSD_OK);
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_true(u.status_manual);

    /* setting online ends it; decay then works again */
    f->now = T0 + 8000 * SEC;
    assert_int_equal(usersd_set_status(f->u, id, USERSD_ONLINE, &u, NULL), USERSD_OK);
    assert_false(u.status_manual);
    assert_true(u.last_seen == T0 + 8000 * SEC);
    f->now = T0 + 8000 * SEC + 601 * SEC;
    assert_int_equal(usersd_decay(f->u, &changed, NULL), USERSD_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_false(u.status_manual);
}

/* Invisible is a manual offline: last_seen stays at the moment they went
 * invisible, nothing is logged for their activity. */
static void invisible_logs_nothing(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "ivy", 0);
    struct usersd_user u;
    char key[USERSD_TOKEN_LEN + 1];
    assert_int_equal(usersd_login(f->u, "ivy", "password1", key, &u, NULL), USERSD_OK);
    f->now = T0 + 5 * SEC;
    assert_int_equal(usersd_set_status_ex(f->u, id, USERSD_OFFLINE, USERSD_STATUS_MANUAL, &u, NULL),
                     USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.last_seen == T0 + 5 * SEC);
    int64_t head = 0;
    assert_int_equal(usersd_changes_head(f->u, &head, NULL), USERSD_OK);
    for (int i = 1; i <= 3; i++) {
        f->now = T0 + (5 + 120 * i) * SEC;
        char k[USERSD_TOKEN_LEN + 1];
        assert_int_equal(usersd_login(f->u, "ivy", "password1", k, &u, NULL), USERSD_OK);
        assert_int_equal(u.online_status, USERSD_OFFLINE);
        struct usersd_user seen = u;
        assert_int_equal(usersd_touch(f->u, &seen, NULL), USERSD_OK);
        assert_int_equal(usersd_set_status_presence(f->u, id, USERSD_OFFLINE, &u, NULL),
                         USERSD_OK); /* an explicit offline ends it... */
        assert_false(u.status_manual);
        assert_int_equal(
            usersd_set_status_ex(f->u, id, USERSD_OFFLINE, USERSD_STATUS_MANUAL, &u, NULL),
            USERSD_OK); /* ...and invisible again: offline to offline logs nothing */
    }
    struct usersd_changes c;
    assert_int_equal(usersd_log_since(f->u, head, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 0);
    usersd_changes_free(&c);

    /* manual goes with away and offline only, and never with an automatic write */
    struct usersd_err err = {0};
    assert_int_equal(usersd_set_status_ex(f->u, id, USERSD_ONLINE, USERSD_STATUS_MANUAL, &u, &err),
                     USERSD_EINVAL);
    assert_string_equal(err.field, "manual");
    assert_int_equal(usersd_set_status_ex(f->u, id, USERSD_AWAY,
                                          USERSD_STATUS_MANUAL | USERSD_STATUS_AUTO, &u, &err),
                     USERSD_EINVAL);
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.status_manual);
}

/* Do not disturb: set for minutes or until a time or until turned off,
 * never a status change, null at once when its end passes and ended by
 * the sweep (logged once). */
static void dnd_expiry(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "dee", 0);
    struct usersd_user u;
    struct usersd_err err = {0};
    assert_int_equal(usersd_set_online(f->u, id, &u, NULL), USERSD_OK);
    int64_t head = 0;
    assert_int_equal(usersd_changes_head(f->u, &head, NULL), USERSD_OK);

    /* bad input changes nothing */
    assert_int_equal(usersd_dnd_set(f->u, id, USERSD_NULL_TIME, 0, &u, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "minutes");
    assert_int_equal(usersd_dnd_set(f->u, id, USERSD_NULL_TIME, 10081, &u, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "minutes");
    assert_int_equal(usersd_dnd_set(f->u, id, T0 + SEC, 5, &u, &err), USERSD_EINVAL);
    assert_int_equal(usersd_dnd_set(f->u, id, T0, -1, &u, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "until");
    assert_int_equal(usersd_dnd_set(f->u, 4242, USERSD_NULL_TIME, 5, &u, &err), USERSD_ENOTFOUND);
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_false(u.dnd);

    assert_int_equal(usersd_dnd_set(f->u, id, USERSD_NULL_TIME, 30, &u, NULL), USERSD_OK);
    assert_true(u.dnd);
    assert_true(u.dnd_until == T0 + 30 * 60 * SEC);
    assert_int_equal(u.online_status, USERSD_ONLINE);

    int64_t n = -1;
    f->now = T0 + 30 * 60 * SEC - 1;
    assert_int_equal(usersd_dnd_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    int64_t manual = -1, dnd = -1;
    assert_int_equal(usersd_presence_counts(f->u, &manual, &dnd, NULL), USERSD_OK);
    assert_int_equal(manual, 0);
    assert_int_equal(dnd, 1);
    f->now = T0 + 30 * 60 * SEC; /* its end: null at once, before the sweep */
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_false(u.dnd);
    assert_true(u.dnd_until == USERSD_NULL_TIME);
    assert_int_equal(usersd_dnd_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(usersd_dnd_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);

    /* until turned off: the sweep never ends it; a clear does, once */
    assert_int_equal(usersd_dnd_set(f->u, id, USERSD_NULL_TIME, -1, &u, NULL), USERSD_OK);
    assert_true(u.dnd && u.dnd_until == USERSD_NULL_TIME);
    f->now += 365LL * 86400 * SEC;
    assert_int_equal(usersd_dnd_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(usersd_dnd_clear(f->u, id, &u, NULL), USERSD_OK);
    assert_false(u.dnd);
    assert_int_equal(usersd_dnd_clear(f->u, id, &u, NULL), USERSD_OK); /* nothing to log */
    assert_int_equal(usersd_dnd_clear(f->u, 4242, &u, &err), USERSD_ENOTFOUND);

    /* until a time */
    assert_int_equal(usersd_dnd_set(f->u, id, f->now + 90 * SEC, -1, &u, NULL), USERSD_OK);
    assert_true(u.dnd_until == f->now + 90 * SEC);

    /* the log: set (30 min: read after its end, it reads ended, as the
     * user does), ended, set (no end), cleared, set (until) */
    struct usersd_changes c;
    assert_int_equal(usersd_events_since(f->u, head, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 5);
    bool want_on[] = {false, false, true, false, true};
    for (size_t i = 0; i < c.count; i++) {
        assert_int_equal(c.items[i].kind, USERSD_CHANGE_DND);
        assert_int_equal(c.items[i].dnd, want_on[i]);
        assert_int_equal(c.items[i].online_status, USERSD_ONLINE); /* no status change */
    }
    assert_true(c.items[0].dnd_until == USERSD_NULL_TIME);
    assert_true(c.items[2].dnd_until == USERSD_NULL_TIME);
    assert_true(c.items[4].dnd_until == f->now + 90 * SEC);
    usersd_changes_free(&c);
    /* a presence change carries the do not disturb of the moment */
    assert_int_equal(usersd_changes_head(f->u, &head, NULL), USERSD_OK);
    assert_int_equal(usersd_set_away(f->u, id, &u, NULL), USERSD_OK);
    assert_true(u.dnd);
    assert_int_equal(usersd_changes_since(f->u, head, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 1);
    assert_true(c.items[0].dnd);
    assert_true(c.items[0].dnd_until == f->now + 90 * SEC);
    usersd_changes_free(&c);
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
        T(manual_status_is_kept),
        T(invisible_logs_nothing),
        T(dnd_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
