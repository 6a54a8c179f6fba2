/* Unit tests of users.c: validation rules, CRUD, the management list and
 * statistics, through the public API on a real SQLite file. */
#include "testutil.h"

static void validation_table(void **state)
{
    struct fixture *f = *state;
    char long_name[200], long_pw[1100];
    memset(long_name, 'a', 151);
    long_name[151] = 0;
    memset(long_pw, 'p', 1025);
    long_pw[1025] = 0;
    struct {
        const char *username, *password, *email, *first_name;
        const char *field;
    } rows[] = {
        {NULL, "password1", NULL, NULL, "username"},
        {"", "password1", NULL, NULL, "username"},
        {long_name, "password1", NULL, NULL, "username"},
        {"bad name", "password1", NULL, NULL, "username"},
        {"bad/name", "password1", NULL, NULL, "username"},
        {"caf\xc3\xa9", "password1", NULL, NULL, "username"},
        {"ok", NULL, NULL, NULL, "password"},
        {"ok", "short", NULL, NULL, "password"},
        {"ok", long_pw, NULL, NULL, "password"},
        {"ok", "password1", "not-an-email", NULL, "email"},
        {"ok", "password1", "a@b", NULL, "email"},
        {"ok", "password1", "a b@c.de", NULL, "email"},
        {"ok", "password1", "@c.de", NULL, "email"},
        {"ok", "password1", NULL, long_name, "first_name"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct usersd_user_fields uf;
        usersd_user_fields_init(&uf);
        uf.username = rows[i].username;
        uf.password = rows[i].password;
        uf.email = rows[i].email;
        uf.first_name = rows[i].first_name;
        struct usersd_err err = {0};
        assert_int_equal(usersd_user_create(f->u, &uf, NULL, &err), USERSD_EINVAL);
        assert_string_equal(err.field, rows[i].field);
    }
    int64_t n;
    assert_int_equal(usersd_user_count(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0); /* nothing was written */
}

static void create_defaults_and_limits(void **state)
{
    struct fixture *f = *state;
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    char name150[151];
    memset(name150, 'x', 150);
    name150[150] = 0;
    uf.username = name150;
    /* 150 characters of two bytes each is still 150 characters */
    char first[301];
    for (int i = 0; i < 150; i++)
        memcpy(first + 2 * i, "\xc3\xa9", 2);
    first[300] = 0;
    uf.first_name = first;
    uf.password = "12345678";
    struct usersd_user u;
    struct usersd_err err = {0};
    assert_int_equal(usersd_user_create(f->u, &uf, &u, &err), USERSD_OK);
    assert_string_equal(u.email, "");
    assert_true(u.is_active);
    assert_false(u.is_staff);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.last_seen == USERSD_NULL_TIME);
    assert_true(u.date_joined == T0);
    assert_string_equal(u.first_name, first);
}

static void duplicates_are_case_insensitive(void **state)
{
    struct fixture *f = *state;
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.username = "John_Doe";
    uf.password = "password1";
    uf.email = "John@Example.com";
    struct usersd_err err = {0};
    assert_int_equal(usersd_user_create(f->u, &uf, NULL, &err), USERSD_OK);
    uf.username = "john_doe";
    uf.email = "";
    assert_int_equal(usersd_user_create(f->u, &uf, NULL, &err), USERSD_ECONFLICT);
    assert_string_equal(err.field, "username");
    uf.username = "other";
    uf.email = "john@EXAMPLE.com";
    assert_int_equal(usersd_user_create(f->u, &uf, NULL, &err), USERSD_ECONFLICT);
    assert_string_equal(err.field, "email");
    /* empty emails never collide */
    uf.email = NULL;
    assert_int_equal(usersd_user_create(f->u, &uf, NULL, &err), USERSD_OK);
    uf.username = "third";
    assert_int_equal(usersd_user_create(f->u, &uf, NULL, &err), USERSD_OK);
}

static void update_and_delete(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "alice", 0), b = make_user(f, "bob", 0);
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.last_name = "Liddell";
    uf.is_staff = 1;
    struct usersd_user u;
    struct usersd_err err = {0};
    assert_int_equal(usersd_user_update(f->u, a, &uf, &u, &err), USERSD_OK);
    assert_string_equal(u.last_name, "Liddell");
    assert_true(u.is_staff);
    assert_string_equal(u.username, "alice");
    usersd_user_fields_init(&uf);
    uf.username = "BOB";
    assert_int_equal(usersd_user_update(f->u, a, &uf, &u, &err), USERSD_ECONFLICT);
    uf.username = "bad name";
    assert_int_equal(usersd_user_update(f->u, a, &uf, &u, &err), USERSD_EINVAL);
    usersd_user_fields_init(&uf);
    assert_int_equal(usersd_user_update(f->u, 999, &uf, &u, &err), USERSD_ENOTFOUND);
    assert_int_equal(usersd_user_delete(f->u, b, &err), USERSD_OK);
    assert_int_equal(usersd_user_get(f->u, b, &u, &err), USERSD_ENOTFOUND);
    assert_int_equal(usersd_user_delete(f->u, b, &err), USERSD_ENOTFOUND);
}

static void list_filters_search_order_pages(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"carol", "alice", "dave", "bob_smith", "eve"};
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        f->now = T0 + i * 1000000;
        ids[i] = make_user(f, names[i], i == 2);
    }
    f->now = T0 + 100000000;
    assert_int_equal(usersd_set_online(f->u, ids[0], NULL, NULL), USERSD_OK); /* carol newest */
    f->now -= 5000000;
    assert_int_equal(usersd_set_online(f->u, ids[3], NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_set_away(f->u, ids[4], NULL, NULL), USERSD_OK); /* never seen */

    struct usersd_list_query q;
    struct usersd_page p;
    usersd_list_query_init(&q);
    q.online_status = USERSD_ONLINE;
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.total_count, 2);
    usersd_page_free(&p);

    usersd_list_query_init(&q);
    q.search = "SMI"; /* case-insensitive substring */
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.users[0].username, "bob_smith");
    usersd_page_free(&p);

    usersd_list_query_init(&q);
    q.search = "_"; /* LIKE wildcards are literal */
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.count, 1);
    usersd_page_free(&p);
    q.search = "%";
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.count, 0);
    usersd_page_free(&p);

    usersd_list_query_init(&q);
    q.is_staff = 1;
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.users[0].username, "dave");
    usersd_page_free(&p);

    usersd_list_query_init(&q);
    q.order = USERSD_ORDER_USERNAME;
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_string_equal(p.users[0].username, "alice");
    assert_string_equal(p.users[4].username, "eve");
    usersd_page_free(&p);

    /* last_seen: never-seen users last in both directions, ties by id */
    usersd_list_query_init(&q);
    q.order = USERSD_ORDER_LAST_SEEN;
    q.descending = true;
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_string_equal(p.users[0].username, "carol");
    assert_string_equal(p.users[1].username, "bob_smith");
    assert_int_equal(p.users[2].id, ids[1]);
    assert_int_equal(p.users[3].id, ids[2]);
    usersd_page_free(&p);
    q.descending = false;
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_string_equal(p.users[0].username, "bob_smith");
    assert_string_equal(p.users[1].username, "carol");
    assert_int_equal(p.users[2].id, ids[1]);
    usersd_page_free(&p);

    usersd_list_query_init(&q);
    q.per_page = 2;
    q.page = 3;
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.count, 1);
    assert_int_equal(usersd_page_total_pages(&p), 3);
    usersd_page_free(&p);
    q.page = 9; /* past the end: empty, not an error */
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.total_count, 5);
    usersd_page_free(&p);
    q.per_page = 1000; /* clamped */
    q.page = 1;
    assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.per_page, 100);
    usersd_page_free(&p);

    char long_search[202];
    memset(long_search, 's', 201);
    long_search[201] = 0;
    q.search = long_search;
    struct usersd_err err = {0};
    assert_int_equal(usersd_user_list(f->u, &q, &p, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "search");
}

static void statistics(void **state)
{
    struct fixture *f = *state;
    struct usersd_stats s;
    assert_int_equal(usersd_stats(f->u, &s, NULL), USERSD_OK);
    assert_int_equal(s.total_users, 0);
    assert_true(s.online_ratio == 0.0);
    int64_t a = make_user(f, "a", 1);
    int64_t b = make_user(f, "b", 0);
    int64_t c = make_user(f, "c", 0);
    assert_int_equal(usersd_set_online(f->u, a, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_set_away(f->u, c, NULL, NULL), USERSD_OK);
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.is_active = 0;
    assert_int_equal(usersd_user_update(f->u, b, &uf, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_stats(f->u, &s, NULL), USERSD_OK);
    assert_int_equal(s.total_users, 3);
    assert_int_equal(s.active_users, 2);
    assert_int_equal(s.inactive_users, 1);
    assert_int_equal(s.staff_users, 1);
    assert_int_equal(s.online_users, 1);
    assert_int_equal(s.away_users, 1);
    assert_int_equal(s.offline_users, 1);
    assert_true(s.online_ratio == 33.33);
    /* deactivation ends a user's sessions and presence: away c goes offline */
    assert_int_equal(usersd_user_update(f->u, c, &uf, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_stats(f->u, &s, NULL), USERSD_OK);
    assert_int_equal(s.inactive_users, 2);
    assert_int_equal(s.away_users, 0);
    assert_int_equal(s.offline_users, 2);

    /* the counters follow deletes and bulk inserts too */
    assert_int_equal(usersd_user_delete(f->u, a, NULL), USERSD_OK);
    assert_int_equal(usersd_seed(f->u, 1000, "seed-password", NULL), USERSD_OK);
    assert_int_equal(usersd_stats(f->u, &s, NULL), USERSD_OK);
    assert_int_equal(s.total_users, 1002);
    assert_int_equal(s.staff_users, 0);
    assert_int_equal(s.online_users, 100);
    assert_int_equal(s.away_users, 100);
    assert_int_equal(s.inactive_users, 2);
    /* A list with no search and one filter (or none) takes its total from
     * the counters; it must equal the rows the list actually walks. */
    struct {
        int status, active, staff;
    } filters[] = {{-1, -1, -1},          {USERSD_ONLINE, -1, -1},
                   {USERSD_AWAY, -1, -1}, {USERSD_OFFLINE, -1, -1},
                   {-1, 1, -1},           {-1, 0, -1},
                   {-1, -1, 1},           {-1, -1, 0},
                   {USERSD_AWAY, 0, -1} /* two filters: counted by the database */};
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        struct usersd_list_query q;
        usersd_list_query_init(&q);
        q.online_status = filters[i].status;
        q.is_active = filters[i].active;
        q.is_staff = filters[i].staff;
        q.per_page = USERSD_PER_PAGE_MAX;
        int64_t total = -1, walked = 0;
        for (q.page = 1;; q.page++) {
            struct usersd_page p;
            assert_int_equal(usersd_user_list(f->u, &q, &p, NULL), USERSD_OK);
            if (total < 0) total = p.total_count;
            assert_int_equal(p.total_count, total);
            walked += (int64_t)p.count;
            size_t n = p.count;
            usersd_page_free(&p);
            if (n < (size_t)q.per_page) break;
        }
        assert_int_equal(total, walked);
    }
    assert_int_equal(usersd_password_check(f->u, "seed500", "seed-password", NULL, NULL),
                     USERSD_OK);
}

static void users_by_ids_order_and_dupes(void **state)
{
    struct fixture *f = *state;
    int64_t a = make_user(f, "a", 0), b = make_user(f, "b", 0);
    int64_t ids[] = {b, 999, a, b};
    struct usersd_page p;
    assert_int_equal(usersd_users_by_ids(f->u, ids, 4, &p, NULL), USERSD_OK);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.users[0].id, b);
    assert_int_equal(p.users[1].id, a);
    usersd_page_free(&p);
    int64_t many[101] = {0};
    struct usersd_err err = {0};
    assert_int_equal(usersd_users_by_ids(f->u, many, 101, &p, &err), USERSD_EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(validation_table),
        T(create_defaults_and_limits),
        T(duplicates_are_case_insensitive),
        T(update_and_delete),
        T(list_filters_search_order_pages),
        T(statistics),
        T(users_by_ids_order_and_dupes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
