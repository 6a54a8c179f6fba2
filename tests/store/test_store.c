/* The storage conformance suite: what every driver behind struct store_ops
 * must do, run against each driver ctest names (argv[1] is a URL template:
 * "sqlite:" gets a fresh temp file per test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

/* argv: "sqlite" (a temp file per test) or "postgresql STATE_DIR" (a fresh
 * database per test on the cluster scripts/pg-cluster.sh started). */
static const char *g_kind;
static char g_pg_base[256];

struct fx {
    struct store *s;
    char path[64]; /* sqlite file, or postgresql database name */
};

#ifdef USERSD_WITH_PG
#include <libpq-fe.h>

static int pg_admin(const char *sql)
{
    char url[320];
    snprintf(url, sizeof url, "%s/postgres", g_pg_base);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}
#endif

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char url[400];
    if (strcmp(g_kind, "sqlite") == 0) {
        snprintf(f->path, sizeof f->path, "/tmp/usersd-store-XXXXXX");
        int fd = mkstemp(f->path);
        if (fd < 0) return -1;
        close(fd);
        snprintf(url, sizeof url, "sqlite:%s", f->path);
    } else {
#ifdef USERSD_WITH_PG
        static int n;
        char sql[128];
        snprintf(f->path, sizeof f->path, "store_%d_%d", (int)getpid(), ++n);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->path);
        if (pg_admin(sql)) return -1;
        snprintf(url, sizeof url, "%s/%s", g_pg_base, f->path);
#else
        return -1;
#endif
    }
    struct usersd_err err = {0};
    if (store_open(&f->s, url, &err)) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    if (strcmp(g_kind, "sqlite") == 0) {
        char p[80];
        unlink(f->path);
        snprintf(p, sizeof p, "%s-wal", f->path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", f->path);
        unlink(p);
    } else {
#ifdef USERSD_WITH_PG
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE %s", f->path);
        pg_admin(sql);
#endif
    }
    free(f);
    return 0;
}

static int64_t insert(struct store *s, const char *name, const char *email, int64_t joined)
{
    struct usersd_user u = {.is_active = true, .date_joined = joined};
    snprintf(u.username, sizeof u.username, "%s", name);
    snprintf(u.email, sizeof u.email, "%s", email);
    assert_int_equal(s->ops->user_insert(s, &u, "$argon2id$fake", NULL), USERSD_OK);
    assert_true(u.id > 0);
    return u.id;
}

static void insert_get_roundtrip(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    struct usersd_user u = {.is_active = true, .is_staff = true, .date_joined = 123456789};
    snprintf(u.username, sizeof u.username, "Zo\xc3\xab");
    snprintf(u.first_name, sizeof u.first_name, "Zo\xc3\xab \xf0\x9f\x98\x80");
    snprintf(u.email, sizeof u.email, "z@example.com");
    assert_int_equal(s->ops->user_insert(s, &u, "hash-1", NULL), USERSD_OK);
    struct usersd_user g;
    assert_int_equal(s->ops->user_get(s, u.id, &g, NULL), USERSD_OK);
    assert_string_equal(g.username, u.username);
    assert_string_equal(g.first_name, u.first_name);
    assert_string_equal(g.email, "z@example.com");
    assert_true(g.is_staff && g.is_active);
    assert_true(g.date_joined == 123456789);
    assert_int_equal(g.online_status, USERSD_OFFLINE);
    assert_true(g.last_seen == USERSD_NULL_TIME);
    char hash[AUTH_HASH_MAX];
    assert_int_equal(s->ops->user_get_auth(s, "ZO\xc3\xab", &g, hash, NULL), USERSD_OK);
    assert_string_equal(hash, "hash-1");
    assert_int_equal(s->ops->user_get(s, u.id + 100, &g, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->user_get_auth(s, "nobody", &g, hash, NULL), USERSD_ENOTFOUND);
}

static void uniqueness(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    insert(s, "Ann", "ann@example.com", 1);
    struct usersd_user u = {.is_active = true};
    struct usersd_err err = {0};
    snprintf(u.username, sizeof u.username, "ANN");
    assert_int_equal(s->ops->user_insert(s, &u, "h", &err), USERSD_ECONFLICT);
    assert_string_equal(err.field, "username");
    snprintf(u.username, sizeof u.username, "ann2");
    snprintf(u.email, sizeof u.email, "ANN@example.com");
    assert_int_equal(s->ops->user_insert(s, &u, "h", &err), USERSD_ECONFLICT);
    assert_string_equal(err.field, "email");
    int64_t n;
    assert_int_equal(s->ops->user_count(s, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
}

static void update_delete_and_tokens(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1);
    unsigned char h1[STORE_TOKEN_HASH_LEN] = {1}, h2[STORE_TOKEN_HASH_LEN] = {2};
    assert_int_equal(s->ops->token_insert(s, h1, a, 5, NULL), USERSD_OK);
    assert_int_equal(s->ops->token_insert(s, h2, a, 6, NULL), USERSD_OK);
    struct usersd_user u;
    assert_int_equal(s->ops->token_user(s, h1, &u, NULL), USERSD_OK);
    assert_int_equal(u.id, a);
    int64_t owner = 0;
    assert_int_equal(s->ops->token_delete(s, h1, &owner, NULL), USERSD_OK);
    assert_int_equal(owner, a);
    assert_int_equal(s->ops->token_user(s, h1, &u, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->token_delete(s, h1, &owner, NULL), USERSD_ENOTFOUND);

    u.is_active = false;
    snprintf(u.last_name, sizeof u.last_name, "Changed");
    assert_int_equal(s->ops->user_update(s, &u, "new-hash", NULL), USERSD_OK);
    struct usersd_user g;
    char hash[AUTH_HASH_MAX];
    assert_int_equal(s->ops->user_get_auth(s, "a", &g, hash, NULL), USERSD_OK);
    assert_string_equal(hash, "new-hash");
    assert_string_equal(g.last_name, "Changed");
    /* deactivation ends the user's sessions */
    assert_int_equal(s->ops->token_user(s, h2, &u, NULL), USERSD_ENOTFOUND);

    assert_int_equal(s->ops->token_insert(s, h1, a, 7, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_delete(s, a, 9, NULL), USERSD_OK);
    assert_int_equal(s->ops->token_user(s, h1, &u, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->user_delete(s, a, 9, NULL), USERSD_ENOTFOUND);
    g.id = a;
    assert_int_equal(s->ops->user_update(s, &g, NULL, NULL), USERSD_ENOTFOUND);
}

static void presence_transitions(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1);
    struct usersd_user u;
    struct store_status_change c = {
        .user_id = a, .status = USERSD_ONLINE, .last_seen = 100, .now = 100};
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_ONLINE);
    assert_true(u.last_seen == 100);
    c = (struct store_status_change){
        .user_id = a, .status = USERSD_AWAY, .last_seen = USERSD_NULL_TIME, .now = 200};
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 100); /* kept */
    c.user_id = a + 50;
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_ENOTFOUND);

    bool updated;
    assert_int_equal(s->ops->touch(s, a, 300, 50, &updated, NULL), USERSD_OK);
    assert_false(updated); /* 100 is not older than 50 */
    assert_int_equal(s->ops->touch(s, a, 300, 150, &updated, NULL), USERSD_OK);
    assert_true(updated);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 300);
    assert_int_equal(u.online_status, USERSD_AWAY);
}

/* The change log: pruning drops what was logged before a time, remembers
 * how far it went (a reader behind that mark must resync) and keeps the rest. */
static void change_log_prune(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1);
    static const enum usersd_status seq[] = {USERSD_ONLINE, USERSD_AWAY, USERSD_OFFLINE,
                                             USERSD_ONLINE};
    struct usersd_user u;
    for (int i = 0; i < 4; i++) {
        struct store_status_change c = {
            .user_id = a, .status = seq[i], .last_seen = 100 * (i + 1), .now = 100 * (i + 1)};
        assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    }
    struct usersd_changes all = {0};
    assert_int_equal(s->ops->changes(s, 0, 100, &all, NULL), USERSD_OK);
    assert_int_equal(all.count, 4);
    int64_t third = all.items[2].seq;
    usersd_changes_free(&all);

    assert_int_equal(s->ops->changes_prune(s, 250, NULL), USERSD_OK); /* 100 and 200 go */
    struct usersd_changes c = {0};
    struct usersd_err err = {0};
    assert_int_equal(s->ops->changes(s, 0, 100, &c, &err), USERSD_EGONE);
    assert_int_equal(s->ops->changes(s, third - 1, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 2);
    assert_true(c.items[0].seq == third);
    assert_int_equal(c.items[0].online_status, USERSD_OFFLINE);
    usersd_changes_free(&c);

    assert_int_equal(s->ops->changes_prune(s, 250, NULL), USERSD_OK); /* nothing more */
    assert_int_equal(s->ops->changes(s, third - 1, 100, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 2);
    usersd_changes_free(&c);
    int64_t head = 0;
    assert_int_equal(s->ops->changes_prune(s, 1000, NULL), USERSD_OK); /* everything */
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);
    assert_true(head == third + 1); /* the head survives an empty log */
}

static void lists_and_stats(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t ids[6];
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        ids[i] = insert(s, name, "", i);
    }
    for (int i = 0; i < 3; i++) {
        struct store_status_change c = {.user_id = ids[i],
                                        .status = USERSD_ONLINE,
                                        .last_seen = 1000 + (i == 2 ? 0 : i),
                                        .now = 1};
        struct usersd_user tmp;
        assert_int_equal(s->ops->set_status(s, &c, &tmp, NULL), USERSD_OK);
    }
    struct usersd_page p = {0};
    assert_int_equal(s->ops->online_page(s, 1, 10, &p, NULL), USERSD_OK);
    assert_int_equal(p.total_count, 3);
    assert_int_equal(p.count, 3);
    assert_int_equal(p.users[0].id, ids[1]); /* 1001 */
    assert_int_equal(p.users[1].id, ids[0]); /* 1000, lower id */
    assert_int_equal(p.users[2].id, ids[2]); /* 1000 */
    free(p.users);

    struct usersd_list_query q;
    usersd_list_query_init(&q);
    q.online_status = USERSD_OFFLINE;
    q.search = "USER";
    q.order = USERSD_ORDER_ID;
    q.descending = true;
    q.per_page = 2;
    p.total_count = -1; /* unknown: the driver counts */
    assert_int_equal(s->ops->user_list(s, &q, &p, NULL), USERSD_OK);
    assert_int_equal(p.total_count, 3);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.users[0].id, ids[5]);
    free(p.users);

    struct usersd_user found[3];
    size_t n;
    int64_t ask[] = {ids[4], 9999, ids[0]};
    assert_int_equal(s->ops->users_by_ids(s, ask, 3, found, &n, NULL), USERSD_OK);
    assert_int_equal(n, 2);

    struct usersd_stats st = {0};
    assert_int_equal(s->ops->stats(s, &st, NULL), USERSD_OK);
    assert_int_equal(st.total_users, 6);
    assert_int_equal(st.active_users, 6);
    assert_int_equal(st.online_users, 3);
    assert_int_equal(st.away_users, 0);
    assert_int_equal(s->ops->ping(s, NULL), USERSD_OK);
}

int main(int argc, char **argv)
{
    g_kind = argc > 1 ? argv[1] : "sqlite";
    if (strcmp(g_kind, "sqlite") != 0) {
        char path[300];
        snprintf(path, sizeof path, "%s/url", argc > 2 ? argv[2] : ".");
        FILE *fp = fopen(path, "r");
        if (!fp || !fgets(g_pg_base, sizeof g_pg_base, fp)) {
            fprintf(stderr, "test_store: cannot read %s\n", path);
            return 1;
        }
        fclose(fp);
        g_pg_base[strcspn(g_pg_base, "\n")] = 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(insert_get_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(uniqueness, setup, teardown),
        cmocka_unit_test_setup_teardown(update_delete_and_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(presence_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(change_log_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(lists_and_stats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
