/* Unit tests of auth.c: argon2id login, hashed tokens, revocation. */
#include "testutil.h"

static void login_and_resolve(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "John_Doe", 0);
    char k1[USERSD_TOKEN_LEN + 1], k2[USERSD_TOKEN_LEN + 1];
    struct usersd_user u;
    struct usersd_err err = {0};
    f->now = T0 + 7;
    assert_int_equal(usersd_login(f->u, "john_doe", "password1", k1, &u, &err), USERSD_OK);
    assert_int_equal(strlen(k1), USERSD_TOKEN_LEN);
    assert_int_equal(u.id, id);
    assert_int_equal(u.online_status, USERSD_ONLINE); /* login is set_online */
    assert_true(u.last_seen == T0 + 7);
    assert_int_equal(usersd_login(f->u, "JOHN_DOE", "password1", k2, NULL, &err), USERSD_OK);
    assert_string_not_equal(k1, k2); /* one token per login */
    memset(&u, 0, sizeof u);
    assert_int_equal(usersd_token_resolve(f->u, k1, &u, &err), USERSD_OK);
    assert_int_equal(u.id, id);

    /* logout revokes only that token; the other session was just used, so
     * the user stays online */
    assert_int_equal(usersd_logout(f->u, k1, &err), USERSD_OK);
    assert_int_equal(usersd_token_resolve(f->u, k1, &u, &err), USERSD_EAUTH);
    assert_int_equal(usersd_token_resolve(f->u, k2, &u, &err), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_ONLINE);
    assert_int_equal(usersd_logout(f->u, k1, &err), USERSD_EAUTH);
    /* the last session ends: offline */
    assert_int_equal(usersd_logout(f->u, k2, &err), USERSD_OK);
    assert_int_equal(usersd_user_get(f->u, id, &u, &err), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.last_seen == T0 + 7);
}

static void bad_credentials(void **state)
{
    struct fixture *f = *state;
    make_user(f, "alice", 0);
    char key[USERSD_TOKEN_LEN + 1];
    struct usersd_err err = {0};
    assert_int_equal(usersd_login(f->u, "alice", "wrong-password", key, NULL, &err), USERSD_EAUTH);
    assert_int_equal(usersd_login(f->u, "nobody", "password1", key, NULL, &err), USERSD_EAUTH);
    assert_int_equal(usersd_login(f->u, "", "", key, NULL, &err), USERSD_EAUTH);
    struct usersd_user u;
    const char *keys[] = {"", "abc",
                          "zz00000000000000000000000000000000000000000000000000000000000000",
                          "0000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_int_equal(usersd_token_resolve(f->u, keys[i], &u, &err), USERSD_EAUTH);
    assert_int_equal(usersd_token_resolve(f->u, NULL, &u, &err), USERSD_EAUTH);
}

static void inactive_users_are_locked_out(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "bob", 0);
    char key[USERSD_TOKEN_LEN + 1];
    struct usersd_user u;
    struct usersd_err err = {0};
    assert_int_equal(usersd_login(f->u, "bob", "password1", key, NULL, &err), USERSD_OK);
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.is_active = 0;
    assert_int_equal(usersd_user_update(f->u, id, &uf, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_token_resolve(f->u, key, &u, &err), USERSD_EAUTH);
    assert_int_equal(usersd_login(f->u, "bob", "password1", key, NULL, &err), USERSD_EAUTH);
    uf.is_active = 1;
    assert_int_equal(usersd_user_update(f->u, id, &uf, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_login(f->u, "bob", "password1", key, NULL, &err), USERSD_OK);
}

/* A resolved token is remembered per handle while the database is
 * unchanged; a revocation or deactivation committed by another handle (as
 * another thread or process would) must end it at once all the same. */
static void revocation_elsewhere_is_seen_at_once(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "dave", 0);
    char k1[USERSD_TOKEN_LEN + 1], k2[USERSD_TOKEN_LEN + 1];
    struct usersd_user u;
    struct usersd_err err = {0};
    assert_int_equal(usersd_login(f->u, "dave", "password1", k1, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_login(f->u, "dave", "password1", k2, NULL, &err), USERSD_OK);
    for (int i = 0; i < 3; i++) { /* the second and third come from the cache */
        assert_int_equal(usersd_token_resolve(f->u, k1, &u, &err), USERSD_OK);
        assert_int_equal(u.id, id);
    }
    assert_int_equal(usersd_token_resolve(f->u, k2, &u, &err), USERSD_OK);

    char url[96];
    snprintf(url, sizeof url, "sqlite:%s", f->path);
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.db_url = url;
    struct usersd *other = NULL;
    assert_int_equal(usersd_open(&other, &cfg, &err), USERSD_OK);
    assert_int_equal(usersd_logout(other, k1, &err), USERSD_OK);
    assert_int_equal(usersd_token_resolve(f->u, k1, &u, &err), USERSD_EAUTH);
    assert_int_equal(usersd_token_resolve(f->u, k2, &u, &err), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE); /* fresh, not the cached row */

    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.is_active = 0;
    assert_int_equal(usersd_user_update(other, id, &uf, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_token_resolve(f->u, k2, &u, &err), USERSD_EAUTH);
    usersd_close(other);
}

static void password_change(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "carol", 0);
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.password = "a new password";
    assert_int_equal(usersd_user_update(f->u, id, &uf, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_password_check(f->u, "carol", "password1", NULL, NULL), USERSD_EAUTH);
    assert_int_equal(usersd_password_check(f->u, "carol", "a new password", NULL, NULL), USERSD_OK);
}

/* usersd_seed_sessions: keys handed out after the commit, each for a
 * different active user, resolving like a login's, with no presence
 * change; an emit that fails stops the rest. */
struct seeded {
    char keys[8][USERSD_TOKEN_LEN + 1];
    int64_t ids[8];
    int n, stop_after;
};

static int take_key(const char *key, int64_t user_id, void *arg)
{
    struct seeded *s = arg;
    if (s->n == s->stop_after) return -1;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    s->ids[s->n++] = user_id;
    return 0;
}

static void seed_sessions(void **state)
{
    struct fixture *f = *state;
    int64_t ids[6];
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        ids[i] = make_user(f, name, 0);
    }
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.is_active = 0;
    assert_int_equal(usersd_user_update(f->u, ids[5], &uf, NULL, NULL), USERSD_OK);
    struct seeded s = {.stop_after = -1};
    struct usersd_err err = {0};
    assert_int_equal(usersd_seed_sessions(f->u, 0, take_key, &s, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "tokens");
    assert_int_equal(usersd_seed_sessions(f->u, USERSD_SEED_TOKENS_MAX + 1, take_key, &s, &err),
                     USERSD_EINVAL);
    /* five active users: six tokens cannot be had, and none is made */
    assert_int_equal(usersd_seed_sessions(f->u, 6, take_key, &s, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "tokens");
    assert_int_equal(s.n, 0);
    int64_t count;
    assert_int_equal(usersd_session_count(f->u, &count, NULL), USERSD_OK);
    assert_int_equal(count, 0);

    f->now = T0 + 42;
    assert_int_equal(usersd_seed_sessions(f->u, 5, take_key, &s, &err), USERSD_OK);
    assert_int_equal(s.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(strlen(s.keys[i]), USERSD_TOKEN_LEN);
        for (int j = 0; j < i; j++)
            assert_true(s.ids[i] != s.ids[j]);
        assert_true(s.ids[i] != ids[5]); /* never the inactive one */
        struct usersd_user u;
        struct usersd_session sess;
        assert_int_equal(usersd_session_resolve(f->u, s.keys[i], &u, &sess, &err), USERSD_OK);
        assert_int_equal(u.id, s.ids[i]);
        assert_int_equal(sess.user_id, s.ids[i]);
        assert_true(sess.created == T0 + 42 && sess.last_used == T0 + 42);
        assert_int_equal(u.online_status, USERSD_OFFLINE); /* no presence change */
    }
    /* emit stops the calls: EINTERNAL, the sessions stay */
    struct seeded t = {.stop_after = 2};
    assert_int_equal(usersd_seed_sessions(f->u, 3, take_key, &t, &err), USERSD_EINTERNAL);
    assert_int_equal(t.n, 2);
    assert_int_equal(usersd_session_count(f->u, &count, NULL), USERSD_OK);
    assert_int_equal(count, 8);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(login_and_resolve),
        T(bad_credentials),
        T(inactive_users_are_locked_out),
        T(revocation_elsewhere_is_seen_at_once),
        T(password_change),
        T(seed_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
