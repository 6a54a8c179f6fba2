/* Unit tests of sessions.c and the session parts of auth.c and presence.c,
 * on an injected clock: presence across a user's sessions, expiry, the
 * activity interval, live-connection refreshes. */
#include "testutil.h"

#define S(x) ((int64_t)(x)*1000000)

/* Reopens f's database with the given activity interval and session TTL
 * (decay thresholds 600 / 3600). */
static void reopen(struct fixture *f, int64_t interval_s, int64_t ttl_s)
{
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.activity_interval_s = interval_s;
    cfg.session_ttl_s = ttl_s;
    assert_int_equal(fixture_open_cfg(f, cfg), 0);
}

static int64_t login(struct fixture *f, const char *name, char *key)
{
    int64_t sid = 0;
    struct usersd_client c = {.user_agent = "test agent", .client_ip = "198.51.100.7"};
    assert_int_equal(usersd_session_login(f->u, name, "password1", &c, key, NULL, &sid, NULL),
                     USERSD_OK);
    assert_true(sid > 0);
    return sid;
}

static struct usersd_user get(struct fixture *f, int64_t id)
{
    struct usersd_user u;
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    return u;
}

/* Two devices: logging out of one leaves the user online while the other
 * was used within the away window; the last one out takes them offline. */
static void two_devices(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "ann", 0);
    char phone[USERSD_TOKEN_LEN + 1], laptop[USERSD_TOKEN_LEN + 1];
    login(f, "ann", phone);
    login(f, "ann", laptop);
    f->now = T0 + S(10);
    assert_int_equal(usersd_logout(f->u, phone, NULL), USERSD_OK);
    assert_int_equal(get(f, id).online_status, USERSD_ONLINE);
    int64_t head0 = 0, head1 = 0;
    assert_int_equal(usersd_changes_head(f->u, &head0, NULL), USERSD_OK);

    /* the laptop, used at T0, is idle past the window (600 s): its logout
     * is the last, offline with last_seen = now */
    f->now = T0 + S(700);
    assert_int_equal(usersd_logout(f->u, laptop, NULL), USERSD_OK);
    struct usersd_user u = get(f, id);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.last_seen == T0 + S(700));
    struct usersd_changes c;
    assert_int_equal(usersd_changes_since(f->u, head0, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 1); /* one presence event, the session ends are not in it */
    assert_int_equal(c.items[0].online_status, USERSD_OFFLINE);
    usersd_changes_free(&c);
    assert_int_equal(usersd_log_since(f->u, head0, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 2);
    assert_int_equal(c.items[0].kind, USERSD_CHANGE_SESSION_END);
    usersd_changes_free(&c);
    (void)head1;
}

/* Activity through a session counts as that device being in use. */
static void recent_activity_keeps_the_user_online(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "bea", 0);
    char k1[USERSD_TOKEN_LEN + 1], k2[USERSD_TOKEN_LEN + 1];
    login(f, "bea", k1);
    login(f, "bea", k2);
    f->now = T0 + S(650);
    struct usersd_user u;
    struct usersd_session s;
    assert_int_equal(usersd_session_resolve(f->u, k2, &u, &s, NULL), USERSD_OK);
    assert_int_equal(usersd_session_activity(f->u, &u, &s, NULL), USERSD_OK);
    assert_true(s.last_used == T0 + S(650) && u.last_seen == T0 + S(650));
    f->now = T0 + S(700);
    assert_int_equal(usersd_logout(f->u, k1, NULL), USERSD_OK);
    assert_int_equal(get(f, id).online_status, USERSD_ONLINE);
    /* an away user stays away: only "offline" is ever decided here */
    assert_int_equal(usersd_set_away(f->u, id, NULL, NULL), USERSD_OK);
    char k3[USERSD_TOKEN_LEN + 1];
    login(f, "bea", k3); /* login is set_online */
    assert_int_equal(usersd_set_away(f->u, id, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_logout(f->u, k3, NULL), USERSD_OK);
    assert_int_equal(get(f, id).online_status, USERSD_AWAY);
}

/* A session unused for longer than the TTL is refused at once (from the
 * per-handle cache too) and removed by the sweep, with the presence rule. */
static void expiry(void **state)
{
    struct fixture *f = *state;
    reopen(f, 60, 100);
    int64_t id = make_user(f, "cat", 0);
    char key[USERSD_TOKEN_LEN + 1];
    login(f, "cat", key);
    struct usersd_user u;
    struct usersd_err err = {0};
    f->now = T0 + S(50);
    assert_int_equal(usersd_session_resolve(f->u, key, &u, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_session_resolve(f->u, key, &u, NULL, &err), USERSD_OK); /* cached */
    f->now = T0 + S(101);
    assert_int_equal(usersd_session_resolve(f->u, key, &u, NULL, &err), USERSD_EAUTH);
    assert_non_null(strstr(err.msg, "expired"));
    int64_t n = 0, total = 0;
    assert_int_equal(usersd_session_count(f->u, &total, NULL), USERSD_OK);
    assert_int_equal(total, 1);
    assert_int_equal(usersd_session_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(usersd_session_count(f->u, &total, NULL), USERSD_OK);
    assert_int_equal(total, 0);
    assert_int_equal(get(f, id).online_status, USERSD_OFFLINE);
    assert_int_equal(usersd_session_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);

    /* a session in use does not expire; TTL 0 never expires */
    char k2[USERSD_TOKEN_LEN + 1];
    login(f, "cat", k2);
    struct usersd_session s;
    f->now += S(90);
    assert_int_equal(usersd_session_resolve(f->u, k2, &u, &s, NULL), USERSD_OK);
    assert_int_equal(usersd_session_activity(f->u, &u, &s, NULL), USERSD_OK);
    f->now += S(90);
    assert_int_equal(usersd_session_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(usersd_session_resolve(f->u, k2, &u, NULL, NULL), USERSD_OK);
    reopen(f, 60, 0);
    f->now += S(86400 * 365);
    assert_int_equal(usersd_session_resolve(f->u, k2, &u, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_session_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
}

/* last_seen and last_used move at most once per activity interval; 0
 * writes every time. */
static void activity_interval(void **state)
{
    struct fixture *f = *state;
    reopen(f, 60, 0);
    int64_t id = make_user(f, "dan", 0);
    char key[USERSD_TOKEN_LEN + 1];
    login(f, "dan", key);
    struct usersd_user u;
    struct usersd_session s;
    f->now = T0 + S(30);
    assert_int_equal(usersd_session_resolve(f->u, key, &u, &s, NULL), USERSD_OK);
    assert_false(usersd_activity_due(f->u, &u, s.last_used));
    assert_int_equal(usersd_session_activity(f->u, &u, &s, NULL), USERSD_OK);
    assert_true(get(f, id).last_seen == T0); /* within the interval: nothing written */
    f->now = T0 + S(61);
    assert_int_equal(usersd_session_resolve(f->u, key, &u, &s, NULL), USERSD_OK);
    assert_true(usersd_activity_due(f->u, &u, s.last_used));
    assert_int_equal(usersd_session_activity(f->u, &u, &s, NULL), USERSD_OK);
    assert_true(get(f, id).last_seen == T0 + S(61));
    struct usersd_sessions list;
    assert_int_equal(usersd_session_list(f->u, id, s.id, &list, NULL), USERSD_OK);
    assert_int_equal(list.count, 1);
    assert_true(list.items[0].last_used == T0 + S(61));
    assert_true(list.items[0].current);
    assert_string_equal(list.items[0].user_agent, "test agent");
    assert_string_equal(list.items[0].client_ip, "198.51.100.7");
    usersd_sessions_free(&list);

    reopen(f, 0, 0);
    f->now += 1; /* a microsecond later */
    assert_int_equal(usersd_session_resolve(f->u, key, &u, &s, NULL), USERSD_OK);
    assert_true(usersd_activity_due(f->u, &u, s.last_used));
    assert_int_equal(usersd_session_activity(f->u, &u, &s, NULL), USERSD_OK);
    assert_true(get(f, id).last_seen == T0 + S(61) + 1);
}

/* A live connection's refresh keeps its user from decaying and never
 * changes a status; when the refreshes stop, decay runs from the last. */
static void refresh_keeps_a_connected_user(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "eve", 0);
    char key[USERSD_TOKEN_LEN + 1];
    int64_t sid = login(f, "eve", key);
    bool alive = false;
    for (int i = 1; i <= 4; i++) { /* 4 × 500 s: far past away_after (600) */
        f->now = T0 + S(500 * i);
        assert_int_equal(usersd_session_refresh(f->u, &sid, 1, &alive, NULL), USERSD_OK);
        assert_true(alive);
        int64_t changed = 0;
        assert_int_equal(usersd_decay(f->u, &changed, NULL), USERSD_OK);
        assert_int_equal(changed, 0);
        assert_int_equal(get(f, id).online_status, USERSD_ONLINE);
    }
    f->now = T0 + S(2000 + 601); /* no refresh since 2000 */
    int64_t changed = 0;
    assert_int_equal(usersd_decay(f->u, &changed, NULL), USERSD_OK);
    assert_int_equal(changed, 1);
    struct usersd_user u = get(f, id);
    assert_int_equal(u.online_status, USERSD_AWAY);
    assert_true(u.last_seen == T0 + S(2000));
    /* refreshing an away user moves last_seen only */
    assert_int_equal(usersd_session_refresh(f->u, &sid, 1, &alive, NULL), USERSD_OK);
    assert_int_equal(get(f, id).online_status, USERSD_AWAY);
    /* a revoked session is reported gone */
    assert_int_equal(usersd_session_revoke(f->u, id, sid, NULL), USERSD_OK);
    assert_int_equal(usersd_session_refresh(f->u, &sid, 1, &alive, NULL), USERSD_OK);
    assert_false(alive);
}

static void revoke_rules(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "fay", 0), b = make_user(f, "gus", 0);
    char ka[USERSD_TOKEN_LEN + 1], kb[USERSD_TOKEN_LEN + 1], kc[USERSD_TOKEN_LEN + 1];
    int64_t sa = login(f, "fay", ka), sb = login(f, "gus", kb);
    int64_t sc = login(f, "fay", kc);
    struct usersd_err err = {0};
    /* another user's session, an unknown one, a non-positive id: not found */
    assert_int_equal(usersd_session_revoke(f->u, a, sb, &err), USERSD_ENOTFOUND);
    assert_int_equal(usersd_session_revoke(f->u, a, sb + 100, &err), USERSD_ENOTFOUND);
    assert_int_equal(usersd_session_revoke(f->u, a, 0, &err), USERSD_ENOTFOUND);
    struct usersd_user u;
    assert_int_equal(usersd_session_resolve(f->u, kb, &u, NULL, NULL), USERSD_OK);
    struct usersd_sessions list;
    assert_int_equal(usersd_session_list(f->u, 999, 0, &list, &err), USERSD_ENOTFOUND);
    int64_t n = 0;
    assert_int_equal(usersd_session_revoke_all(f->u, 999, 0, &n, &err), USERSD_ENOTFOUND);

    /* a password change keeps the session it is made from, ends the rest */
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.password = "another password";
    assert_int_equal(usersd_user_update_keep(f->u, a, &uf, sc, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_session_resolve(f->u, ka, &u, NULL, NULL), USERSD_EAUTH);
    assert_int_equal(usersd_session_resolve(f->u, kc, &u, NULL, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_ONLINE);
    (void)sa;

    /* log out everywhere: every session, and offline */
    assert_int_equal(usersd_session_revoke_all(f->u, a, 0, &n, &err), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(usersd_session_resolve(f->u, kc, &u, NULL, NULL), USERSD_EAUTH);
    assert_int_equal(get(f, a).online_status, USERSD_OFFLINE);
    assert_int_equal(get(f, b).online_status, USERSD_ONLINE); /* others untouched */
    /* the library's plain update (no session kept) ends them all */
    usersd_user_fields_init(&uf);
    uf.password = "third password";
    assert_int_equal(usersd_user_update(f->u, b, &uf, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_session_resolve(f->u, kb, &u, NULL, NULL), USERSD_EAUTH);
    assert_int_equal(get(f, b).online_status, USERSD_OFFLINE);
}

/* What a login's User-Agent becomes: printable UTF-8, at most 200
 * characters, the rest replaced. */
static void user_agent_is_cleaned(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "hal", 0);
    char ua[1200];
    static const char head[] = "Zo\xc3\xab\x01\t\xff\xc3(";
    size_t n = sizeof head - 1;
    memcpy(ua, head, n);
    for (int i = 0; i < 300; i++, n += 3)
        memcpy(ua + n, "\xe2\x82\xac", 3); /* € */
    ua[n] = 0;
    struct usersd_client c = {.user_agent = ua, .client_ip = ""};
    char key[USERSD_TOKEN_LEN + 1];
    assert_int_equal(usersd_session_login(f->u, "hal", "password1", &c, key, NULL, NULL, NULL),
                     USERSD_OK);
    struct usersd_sessions list;
    assert_int_equal(usersd_session_list(f->u, id, 0, &list, NULL), USERSD_OK);
    const char *got = list.items[0].user_agent;
    assert_memory_equal(got, "Zo\xc3\xab\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(", 17);
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)got; *p; p++)
        chars += (*p & 0xc0) != 0x80;
    assert_int_equal(chars, USERSD_USER_AGENT_MAX);
    assert_string_equal(list.items[0].client_ip, "");
    usersd_sessions_free(&list);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(two_devices),           T(recent_activity_keeps_the_user_online), T(expiry),
        T(activity_interval),     T(refresh_keeps_a_connected_user),        T(revoke_rules),
        T(user_agent_is_cleaned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
