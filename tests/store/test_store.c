/* The storage conformance suite: what every driver behind struct store_ops
 * must do, run against each driver ctest names (argv[1] is a URL template:
 * "sqlite:" gets a fresh temp file per test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#define PRESENCE_ONLY STORE_KIND(USERSD_CHANGE_PRESENCE)

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

/* A command on database db (no rows back); 0 when it succeeds. */
static int pg_admin_in(const char *db, const char *sql)
{
    char url[400];
    snprintf(url, sizeof url, "%s/%s", g_pg_base, db);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static int pg_admin(const char *sql)
{
    return pg_admin_in("postgres", sql);
}

/* One integer from a query on database db; -1 when it fails. */
static long long pg_admin_int(const char *db, const char *sql)
{
    char url[400];
    snprintf(url, sizeof url, "%s/%s", g_pg_base, db);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = atoll(PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return v;
}
#endif

#ifdef USERSD_WITH_PG
/* Two more handles on the fixture's PostgreSQL database: writers of other
 * processes, as far as the database can tell (each its own backend). */
static void open_writers(const struct fx *f, struct store **w1, struct store **w2)
{
    char url[400];
    snprintf(url, sizeof url, "%s/%s", g_pg_base, f->path);
    assert_int_equal(store_open(w1, url, NULL, NULL), USERSD_OK);
    assert_int_equal(store_open(w2, url, NULL, NULL), USERSD_OK);
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
    if (store_open(&f->s, url, NULL, &err)) {
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
    char hash[PASSWORD_HASH_MAX];
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

/* A session row for user at time t, token hash starting with byte k. */
static int64_t add_session(struct store *s, int64_t user, unsigned char k, int64_t t)
{
    struct store_session_row row = {.hash = {k}};
    row.s.user_id = user;
    row.s.created = row.s.last_used = t;
    snprintf(row.s.user_agent, sizeof row.s.user_agent, "agent %d", k);
    snprintf(row.s.client_ip, sizeof row.s.client_ip, "192.0.2.%d", k);
    assert_int_equal(s->ops->session_insert(s, &row, NULL), USERSD_OK);
    assert_true(row.s.id > 0);
    return row.s.id;
}

static void set(struct store *s, int64_t user, enum usersd_status st, int64_t t)
{
    struct store_status_change c = {.user_id = user, .status = st, .last_seen = t, .now = t};
    struct usersd_user u;
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
}

static enum usersd_status status_of(struct store *s, int64_t user)
{
    struct usersd_user u;
    assert_int_equal(s->ops->user_get(s, user, &u, NULL), USERSD_OK);
    return u.online_status;
}

/* The log entries after since, every kind; returns how many, fills out. */
static size_t log_after(struct store *s, int64_t since, struct usersd_changes *out)
{
    memset(out, 0, sizeof *out);
    assert_int_equal(s->ops->changes(s, since, 100, STORE_KINDS_ALL, out, NULL), USERSD_OK);
    return out->count;
}

static void update_delete_and_sessions(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1);
    unsigned char h1[STORE_TOKEN_HASH_LEN] = {1}, h2[STORE_TOKEN_HASH_LEN] = {2};
    int64_t s1 = add_session(s, a, 1, 5), s2 = add_session(s, a, 2, 6);
    assert_true(s2 > s1);
    struct usersd_user u;
    struct usersd_session sess;
    assert_int_equal(s->ops->token_user(s, h1, &u, &sess, NULL), USERSD_OK);
    assert_int_equal(u.id, a);
    assert_true(sess.id == s1 && sess.created == 5 && sess.last_used == 5);
    int64_t n = 0;
    assert_int_equal(s->ops->session_count(s, &n, NULL), USERSD_OK);
    assert_int_equal(n, 2);
    struct usersd_sessions list = {0};
    assert_int_equal(s->ops->session_list(s, a, &list, NULL), USERSD_OK);
    assert_int_equal(list.count, 2);
    assert_true(list.items[0].id == s2); /* most recently used first */
    assert_string_equal(list.items[0].user_agent, "agent 2");
    assert_string_equal(list.items[1].client_ip, "192.0.2.1");
    usersd_sessions_free(&list);
    assert_int_equal(s->ops->session_list(s, a + 99, &list, NULL), USERSD_ENOTFOUND);

    struct store_session_end e = {.user_id = a, .session_id = s1, .now = 10, .active_after = 0};
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s->ops->token_user(s, h1, &u, NULL, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_ENOTFOUND); /* gone */
    e.user_id = a + 99;
    e.session_id = s2; /* another user's session is not found */
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->token_user(s, h2, &u, NULL, NULL), USERSD_OK);

    u.is_active = false;
    snprintf(u.last_name, sizeof u.last_name, "Changed");
    struct store_session_end upd = {.user_id = a, .now = 11};
    assert_int_equal(s->ops->user_update(s, &u, "new-hash", &upd, NULL), USERSD_OK);
    struct usersd_user g;
    char hash[PASSWORD_HASH_MAX];
    assert_int_equal(s->ops->user_get_auth(s, "a", &g, hash, NULL), USERSD_OK);
    assert_string_equal(hash, "new-hash");
    assert_string_equal(g.last_name, "Changed");
    /* deactivation ends the user's sessions */
    assert_int_equal(s->ops->token_user(s, h2, &u, NULL, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->session_count(s, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);

    add_session(s, a, 1, 7);
    assert_int_equal(s->ops->user_delete(s, a, 9, NULL), USERSD_OK);
    assert_int_equal(s->ops->token_user(s, h1, &u, NULL, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->user_delete(s, a, 9, NULL), USERSD_ENOTFOUND);
    g.id = a;
    assert_int_equal(s->ops->user_update(s, &g, NULL, &upd, NULL), USERSD_ENOTFOUND);
}

/* Ending a session leaves the user's status alone while another session
 * was used within the window, and otherwise sets them offline, in the same
 * transaction; the log says which sessions ended. */
static void hint(struct store *s, int64_t user_id)
{
    if (s->ops->read_hint) s->ops->read_hint(s, user_id);
}

/* A token check with user_id hinted, as a GET of that user's endpoint. */
static enum usersd_code check_hinted(struct store *s, const unsigned char *hash, int64_t user_id)
{
    struct usersd_user caller;
    hint(s, user_id);
    return s->ops->token_user(s, hash, &caller, NULL, NULL);
}

/* usersd_read_hint changes what a read costs, never what it returns: the
 * hinted user read with the token check answers only the read that comes
 * right after it, for that user. */
static void read_hint(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "b@example.com", 2);
    unsigned char h1[STORE_TOKEN_HASH_LEN] = {1}, h9[STORE_TOKEN_HASH_LEN] = {9};
    add_session(s, a, 1, 5);
    struct usersd_user u, g;
    hint(s, b);
    assert_int_equal(s->ops->token_user(s, h1, &u, NULL, NULL), USERSD_OK);
    assert_int_equal(u.id, a); /* the caller, not the hinted user */
    assert_int_equal(s->ops->user_get(s, b, &g, NULL), USERSD_OK);
    assert_true(g.id == b && g.date_joined == 2 && g.is_active);
    assert_string_equal(g.username, "b");
    assert_string_equal(g.email, "b@example.com");
    assert_true(g.online_status == USERSD_OFFLINE && g.last_seen == USERSD_NULL_TIME);

    /* a write between the token check and the read: the read sees it */
    assert_int_equal(check_hinted(s, h1, b), USERSD_OK);
    set(s, b, USERSD_ONLINE, 20);
    assert_int_equal(s->ops->user_get(s, b, &g, NULL), USERSD_OK);
    assert_true(g.online_status == USERSD_ONLINE && g.last_seen == 20);

    /* a read of another user is not answered from the hint */
    assert_int_equal(check_hinted(s, h1, b), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, a, &g, NULL), USERSD_OK);
    assert_string_equal(g.username, "a");
    assert_int_equal(s->ops->user_get(s, b, &g, NULL), USERSD_OK);
    assert_string_equal(g.username, "b");

    /* an unknown user is not found either way; an unknown token reads nothing */
    assert_int_equal(check_hinted(s, h1, b + 99), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, b + 99, &g, NULL), USERSD_ENOTFOUND);
    assert_int_equal(check_hinted(s, h9, b), USERSD_ENOTFOUND);
    set(s, b, USERSD_AWAY, 30);
    assert_int_equal(s->ops->user_get(s, b, &g, NULL), USERSD_OK);
    assert_true(g.online_status == USERSD_AWAY && g.last_seen == 30);

    /* the hinted user deleted after the check: not found */
    assert_int_equal(check_hinted(s, h1, b), USERSD_OK);
    assert_int_equal(s->ops->user_delete(s, b, 40, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, b, &g, NULL), USERSD_ENOTFOUND);
}

static void sessions_and_presence(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1);
    int64_t phone = add_session(s, a, 1, 100), laptop = add_session(s, a, 2, 100);
    set(s, a, USERSD_ONLINE, 100);
    int64_t head = 0, n = 0;
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);

    /* the laptop was used at 100, within the window starting at 50 */
    struct store_session_end e = {
        .user_id = a, .session_id = phone, .now = 200, .active_after = 50};
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_OK);
    assert_int_equal(status_of(s, a), USERSD_ONLINE);
    struct usersd_changes c;
    assert_int_equal(log_after(s, head, &c), 1); /* the session's end, no presence change */
    assert_int_equal(c.items[0].kind, USERSD_CHANGE_SESSION_END);
    assert_true(c.items[0].session_id == phone && c.items[0].user_id == a);
    head = c.items[0].seq;
    usersd_changes_free(&c);
    struct usersd_changes presence = {0};
    assert_int_equal(s->ops->changes(s, 0, 100, PRESENCE_ONLY, &presence, NULL), USERSD_OK);
    for (size_t i = 0; i < presence.count; i++)
        assert_int_equal(presence.items[i].kind, USERSD_CHANGE_PRESENCE);
    usersd_changes_free(&presence);

    /* the last one ends: offline, last_seen = now, one presence event */
    e.session_id = laptop;
    e.active_after = 150;
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_OK);
    struct usersd_user u;
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE);
    assert_true(u.last_seen == 200);
    assert_int_equal(log_after(s, head, &c), 2);
    assert_int_equal(c.items[0].kind, USERSD_CHANGE_SESSION_END);
    assert_int_equal(c.items[1].kind, USERSD_CHANGE_PRESENCE);
    assert_int_equal(c.items[1].online_status, USERSD_OFFLINE);
    head = c.items[1].seq;
    usersd_changes_free(&c);

    /* an old, unused session does not keep the user online */
    int64_t old = add_session(s, a, 3, 10), cur = add_session(s, a, 4, 300);
    set(s, a, USERSD_AWAY, 300);
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);
    e = (struct store_session_end){.user_id = a, .session_id = cur, .now = 400, .active_after = 50};
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_OK);
    assert_int_equal(status_of(s, a), USERSD_OFFLINE);

    /* revoking all with nothing left to end still takes the user offline
     * (force), once: no event when already offline */
    set(s, a, USERSD_ONLINE, 500);
    e = (struct store_session_end){.user_id = a, .now = 600, .active_after = 0, .force = true};
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1); /* "old" */
    assert_int_equal(status_of(s, a), USERSD_OFFLINE);
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    int64_t head2 = 0;
    assert_int_equal(s->ops->changes_head(s, &head2, NULL), USERSD_OK);
    assert_true(head2 == head); /* nothing logged for a non-change */
    (void)old;

    /* keep: a password change ends the others, the kept one keeps the status */
    int64_t k1 = add_session(s, a, 5, 700), k2 = add_session(s, a, 6, 700);
    set(s, a, USERSD_ONLINE, 700);
    e = (struct store_session_end){.user_id = a, .keep_id = k2, .now = 800, .active_after = 650};
    assert_int_equal(s->ops->session_end(s, &e, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(status_of(s, a), USERSD_ONLINE);
    unsigned char h5[STORE_TOKEN_HASH_LEN] = {5}, h6[STORE_TOKEN_HASH_LEN] = {6};
    assert_int_equal(s->ops->token_user(s, h5, &u, NULL, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->token_user(s, h6, &u, NULL, NULL), USERSD_OK);
    (void)k1;
}

/* Expiry ends sessions unused since a time, each with the presence rule;
 * refresh marks sessions used and their users seen, and says which are
 * gone. */
static void session_expiry_and_refresh(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1);
    int64_t a1 = add_session(s, a, 1, 100), a2 = add_session(s, a, 2, 900);
    int64_t b1 = add_session(s, b, 3, 100);
    set(s, a, USERSD_ONLINE, 900);
    set(s, b, USERSD_ONLINE, 100);
    int64_t n = 0;
    assert_int_equal(s->ops->session_expire(s, 500, 1000, 800, 10, &n, NULL), USERSD_OK);
    assert_int_equal(n, 2);                           /* a1 and b1 */
    assert_int_equal(status_of(s, a), USERSD_ONLINE); /* a2 used at 900 */
    assert_int_equal(status_of(s, b), USERSD_OFFLINE);
    assert_int_equal(s->ops->session_expire(s, 500, 1000, 800, 10, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);

    int64_t ids[] = {a1, a2, b1};
    bool alive[3] = {true, false, true};
    assert_int_equal(s->ops->session_refresh(s, ids, 3, 2000, alive, NULL), USERSD_OK);
    assert_false(alive[0]);
    assert_true(alive[1]);
    assert_false(alive[2]);
    struct usersd_user u;
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 2000);
    assert_int_equal(u.online_status, USERSD_ONLINE); /* a refresh never changes a status */
    struct usersd_sessions list = {0};
    assert_int_equal(s->ops->session_list(s, a, &list, NULL), USERSD_OK);
    assert_int_equal(list.count, 1);
    assert_true(list.items[0].last_used == 2000);
    usersd_sessions_free(&list);
    /* a refresh never moves time backwards */
    assert_int_equal(s->ops->session_refresh(s, &a2, 1, 1500, alive, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 2000);
    /* decay (which finds the users due through the presence index) sees
     * the refresh too: not due before 2000, due after */
    assert_int_equal(s->ops->decay(s, 2500, 1999, USERSD_NULL_TIME, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->decay(s, 2500, 2001, USERSD_NULL_TIME, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(status_of(s, a), USERSD_AWAY);
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
    assert_int_equal(s->ops->touch(s, a, 0, 300, 50, &updated, NULL), USERSD_OK);
    assert_false(updated); /* 100 is not older than 50 */
    assert_int_equal(s->ops->touch(s, a, 0, 300, 150, &updated, NULL), USERSD_OK);
    assert_true(updated);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 300);
    assert_int_equal(u.online_status, USERSD_AWAY);
    /* with a session, its last_used moves in the same commit */
    int64_t sid = add_session(s, a, 7, 100);
    assert_int_equal(s->ops->touch(s, a, sid, 400, 350, &updated, NULL), USERSD_OK);
    assert_true(updated);
    struct usersd_sessions list = {0};
    assert_int_equal(s->ops->session_list(s, a, &list, NULL), USERSD_OK);
    assert_true(list.count == 1 && list.items[0].last_used == 400);
    usersd_sessions_free(&list);
}

/* Refreshes in bulk (API.md §7): each user and session moves to its latest
 * time where older than that time less the interval; a manual status keeps
 * its last_seen (its session still moves); the status never changes; an
 * unknown user is skipped; the presence copy that decay reads moves too.
 * Inside a batch, they commit with it. */
static void refreshes_in_bulk(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1), c = insert(s, "c", "", 1);
    int64_t sa = add_session(s, a, 1, 100), sb = add_session(s, b, 2, 100);
    set(s, a, USERSD_ONLINE, 100);
    set(s, b, USERSD_ONLINE, 100);
    struct usersd_user u;
    struct store_status_change m = {.user_id = b,
                                    .status = USERSD_AWAY,
                                    .last_seen = USERSD_NULL_TIME,
                                    .now = 100,
                                    .flags = USERSD_STATUS_MANUAL};
    assert_int_equal(s->ops->set_status(s, &m, &u, NULL), USERSD_OK);
    struct usersd_refresh r[] = {
        {a, sa, 300}, {a, sa, 150}, {b, sb, 300}, {c + 99, 0, 300}, {c, 0, 120}};
    assert_int_equal(s->ops->refresh(s, r, 5, 100, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 300 && u.online_status == USERSD_ONLINE);
    assert_int_equal(s->ops->user_get(s, b, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 100 && u.online_status == USERSD_AWAY && u.status_manual);
    assert_int_equal(s->ops->user_get(s, c, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 120 && u.online_status == USERSD_OFFLINE);
    struct usersd_sessions list = {0};
    assert_int_equal(s->ops->session_list(s, b, &list, NULL), USERSD_OK);
    assert_true(list.count == 1 && list.items[0].last_used == 300);
    usersd_sessions_free(&list);
    /* within the interval of the last write: nothing moves */
    struct usersd_refresh again = {a, sa, 350};
    assert_int_equal(s->ops->refresh(s, &again, 1, 100, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 300);
    /* decay reads the presence copy: a refreshed user is not due */
    int64_t n = -1;
    assert_int_equal(s->ops->decay(s, 500, 250, USERSD_NULL_TIME, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    /* in a batch, with a status change: one commit, or none */
    struct usersd_refresh later = {a, sa, 600};
    assert_int_equal(s->ops->batch(s, BATCH_BEGIN, NULL), USERSD_OK);
    assert_int_equal(s->ops->refresh(s, &later, 1, 100, NULL), USERSD_OK);
    assert_int_equal(s->ops->batch(s, BATCH_ROLLBACK, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 300);
    assert_int_equal(s->ops->batch(s, BATCH_BEGIN, NULL), USERSD_OK);
    assert_int_equal(s->ops->refresh(s, &later, 1, 100, NULL), USERSD_OK);
    set(s, c, USERSD_ONLINE, 600);
    assert_int_equal(s->ops->batch(s, BATCH_COMMIT, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 600);
#ifdef USERSD_WITH_PG
    /* PostgreSQL: a session's refresh is a heap-only update (no index has
     * last_used, migration 013): one update, and that one HOT. Counted in
     * the transaction, which the closed connection then rolls back. */
    if (strcmp(g_kind, "sqlite") != 0) {
        char sql[400];
        snprintf(sql, sizeof sql,
                 "BEGIN; SELECT usersd_refresh(ARRAY[%lld]::bigint[], ARRAY[%lld]::bigint[], "
                 "ARRAY[900]::bigint[], 0, false); SELECT n_tup_upd * 10 + n_tup_hot_upd "
                 "FROM pg_stat_xact_user_tables WHERE relname = 'sessions'",
                 (long long)a, (long long)sa);
        assert_int_equal(pg_admin_int(((struct fx *)*state)->path, sql), 11);
    }
#endif
}

/* Checkpoints apart from the commits (SQLite, usersd_config.checkpoint_apart):
 * writes stay in the WAL until a checkpoint copies them into the file, and
 * the WAL starts again from its beginning after one that left nothing. */
static void checkpoint_apart(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    if (strcmp(g_kind, "sqlite") != 0) return; /* PostgreSQL has none to do */
    int64_t fr[2] = {-1, -1};
    assert_int_equal(s->ops->checkpoint(s, CHECKPOINT_APART, fr, NULL), USERSD_OK);
    assert_int_equal(s->ops->checkpoint(s, CHECKPOINT_NOW, fr, NULL), USERSD_OK);
    assert_int_equal(fr[1], 0);
    struct stat before, after;
    assert_int_equal(stat(f->path, &before), 0);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "ck%d", i);
        insert(s, name, "", i);
    }
    assert_int_equal(stat(f->path, &after), 0);
    assert_true(after.st_size == before.st_size); /* all of it still in the WAL */
    assert_int_equal(s->ops->checkpoint(s, CHECKPOINT_NOW, fr, NULL), USERSD_OK);
    int64_t grown = fr[0];
    assert_true(grown > 300); /* a commit each, none checkpointed */
    assert_int_equal(fr[1], 0);
    assert_int_equal(stat(f->path, &after), 0);
    assert_true(after.st_size > before.st_size);
    insert(s, "ck-after", "", 1000); /* the WAL begins again */
    assert_int_equal(s->ops->checkpoint(s, CHECKPOINT_NOW, fr, NULL), USERSD_OK);
    assert_true(fr[0] > 0 && fr[0] < grown);
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
    assert_int_equal(s->ops->changes(s, 0, 100, PRESENCE_ONLY, &all, NULL), USERSD_OK);
    assert_int_equal(all.count, 4);
    int64_t third = all.items[2].seq;
    usersd_changes_free(&all);

    assert_int_equal(s->ops->changes_prune(s, 250, NULL), USERSD_OK); /* 100 and 200 go */
    struct usersd_changes c = {0};
    struct usersd_err err = {0};
    assert_int_equal(s->ops->changes(s, 0, 100, PRESENCE_ONLY, &c, &err), USERSD_EGONE);
    assert_int_equal(s->ops->changes(s, third - 1, 100, PRESENCE_ONLY, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 2);
    assert_true(c.items[0].seq == third);
    assert_int_equal(c.items[0].online_status, USERSD_OFFLINE);
    usersd_changes_free(&c);

    assert_int_equal(s->ops->changes_prune(s, 250, NULL), USERSD_OK); /* nothing more */
    assert_int_equal(s->ops->changes(s, third - 1, 100, PRESENCE_ONLY, &c, NULL), USERSD_OK);
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
    /* a page past the end still knows the count; a short page is cut */
    assert_int_equal(s->ops->online_page(s, 2, 10, &p, NULL), USERSD_OK);
    assert_true(p.total_count == 3 && p.count == 0);
    free(p.users);
    assert_int_equal(s->ops->online_page(s, 2, 2, &p, NULL), USERSD_OK);
    assert_true(p.total_count == 3 && p.count == 1 && p.users[0].id == ids[2]);
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
    assert_true((found[0].id == ids[4] && found[1].id == ids[0]) ||
                (found[0].id == ids[0] && found[1].id == ids[4]));
    assert_string_equal(found[0].id == ids[0] ? found[0].username : found[1].username, "user0");
    assert_int_equal(s->ops->users_by_ids(s, ask + 1, 1, found, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);

    struct usersd_stats st = {0};
    assert_int_equal(s->ops->stats(s, &st, NULL), USERSD_OK);
    assert_int_equal(st.total_users, 6);
    assert_int_equal(st.active_users, 6);
    assert_int_equal(st.online_users, 3);
    assert_int_equal(st.away_users, 0);
    assert_int_equal(s->ops->ping(s, NULL), USERSD_OK);
}

/* Status messages: set and clear are logged (kind STATUS_MESSAGE) with the
 * message; a clear with nothing to clear logs nothing; the sweep clears
 * and logs each ended message once. */
static void status_messages(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1);
    int64_t head = 0;
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);
    struct usersd_user u;
    assert_int_equal(s->ops->status_message(s, a, "In a meeting \xe2\x98\x95", 500, 100, &u, NULL),
                     USERSD_OK);
    assert_string_equal(u.status_text, "In a meeting \xe2\x98\x95");
    assert_true(u.status_expires == 500);
    assert_int_equal(s->ops->status_message(s, b, "Lunch", USERSD_NULL_TIME, 100, &u, NULL),
                     USERSD_OK);
    assert_true(u.status_expires == USERSD_NULL_TIME);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_string_equal(u.status_text, "In a meeting \xe2\x98\x95");
    struct usersd_changes c;
    assert_int_equal(log_after(s, head, &c), 2);
    assert_int_equal(c.items[0].kind, USERSD_CHANGE_STATUS_MESSAGE);
    assert_string_equal(c.items[0].status_text, "In a meeting \xe2\x98\x95");
    assert_true(c.items[0].status_expires == 500 && c.items[0].at == 100);
    head = c.items[1].seq;
    usersd_changes_free(&c);
    struct usersd_changes presence = {0};
    assert_int_equal(s->ops->changes(s, 0, 100, PRESENCE_ONLY, &presence, NULL), USERSD_OK);
    assert_int_equal(presence.count, 0); /* messages are not presence changes */
    usersd_changes_free(&presence);

    /* the sweep: a is due at 500, b never */
    int64_t n = 0;
    assert_int_equal(s->ops->status_message_expire(s, 499, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->status_message_expire(s, 500, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s->ops->status_message_expire(s, 600, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0); /* once */
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_string_equal(u.status_text, "");
    assert_int_equal(log_after(s, head, &c), 1);
    assert_int_equal(c.items[0].kind, USERSD_CHANGE_STATUS_MESSAGE);
    assert_true(c.items[0].user_id == a && c.items[0].status_text[0] == 0 && c.items[0].at == 500);
    head = c.items[0].seq;
    usersd_changes_free(&c);

    /* clear: logged when there was a message, not otherwise */
    assert_int_equal(s->ops->status_message(s, b, NULL, USERSD_NULL_TIME, 700, &u, NULL),
                     USERSD_OK);
    assert_string_equal(u.status_text, "");
    assert_int_equal(s->ops->status_message(s, b, NULL, USERSD_NULL_TIME, 800, &u, NULL),
                     USERSD_OK);
    assert_int_equal(log_after(s, head, &c), 1);
    usersd_changes_free(&c);
    assert_int_equal(s->ops->status_message(s, 9999, "x", USERSD_NULL_TIME, 1, &u, NULL),
                     USERSD_ENOTFOUND);
    assert_int_equal(s->ops->status_message(s, 9999, NULL, USERSD_NULL_TIME, 1, &u, NULL),
                     USERSD_ENOTFOUND);
}

/* Runs jobs (n of them) through set_status_many, in a batch or not. */
static void many(struct store *s, struct store_status_job *jobs, size_t n, struct usersd_user *out,
                 struct usersd_err *errs, bool batch)
{
    for (size_t i = 0; i < n; i++) {
        jobs[i].out = &out[i];
        jobs[i].err = &errs[i];
        jobs[i].rc = USERSD_EINTERNAL;
    }
    if (batch) assert_int_equal(s->ops->batch(s, BATCH_BEGIN, NULL), USERSD_OK);
    assert_int_equal(s->ops->set_status_many(s, jobs, n), USERSD_OK);
    if (batch) assert_int_equal(s->ops->batch(s, BATCH_COMMIT, NULL), USERSD_OK);
}

/* Many changes at once (the writer's group commit): each job gets its own
 * result — an unknown user, or a change the database refuses, fails only
 * its job — a user asked twice is written twice in job order, one log row
 * and one history row per real change, in job order, and a job that is
 * its caller's activity also moves last_seen and its session's last_used. */
static void status_many(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    s->history = true;
    assert_int_equal(s->ops->history_mark(s, 1, false, NULL), USERSD_OK);
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1), ghost = a + b + 100;
    int64_t sid = add_session(s, b, 9, 100);
    struct usersd_user out[6];
    struct usersd_err errs[6];
    struct store_status_job j[6] = {
        {.c = {.user_id = a, .status = USERSD_ONLINE, .last_seen = 1000, .now = 1000}},
        {.c = {.user_id = ghost, .status = USERSD_ONLINE, .last_seen = 1001, .now = 1001}},
        {.c = {.user_id = b,
               .status = USERSD_AWAY,
               .last_seen = USERSD_NULL_TIME,
               .now = 1002,
               .touch = true,
               .touch_before = 500,
               .session_id = sid}},
        {.c = {.user_id = a, .status = USERSD_AWAY, .last_seen = USERSD_NULL_TIME, .now = 1003}},
        {.c = {.user_id = b, .status = USERSD_AWAY, .last_seen = USERSD_NULL_TIME, .now = 1004}},
    };
    many(s, j, 5, out, errs, true);
    assert_int_equal(j[0].rc, USERSD_OK);
    assert_true(out[0].id == a && out[0].online_status == USERSD_ONLINE &&
                out[0].last_seen == 1000);
    assert_int_equal(j[1].rc, USERSD_ENOTFOUND);
    assert_int_equal(errs[1].code, USERSD_ENOTFOUND);
    assert_int_equal(j[2].rc, USERSD_OK); /* never seen: the activity sets last_seen */
    assert_true(out[2].online_status == USERSD_AWAY && out[2].last_seen == 1002);
    assert_int_equal(j[3].rc, USERSD_OK); /* a's second job, after its first */
    assert_true(out[3].online_status == USERSD_AWAY && out[3].last_seen == 1000);
    assert_int_equal(j[4].rc, USERSD_OK);
    assert_true(out[4].online_status == USERSD_AWAY && out[4].last_seen == 1002);

    struct usersd_changes c = {0};
    assert_int_equal(s->ops->changes(s, 0, 100, PRESENCE_ONLY, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 3); /* b's second away is no change */
    assert_true(c.items[0].user_id == a && c.items[0].online_status == USERSD_ONLINE);
    assert_true(c.items[1].user_id == b && c.items[1].online_status == USERSD_AWAY);
    assert_true(c.items[2].user_id == a && c.items[2].online_status == USERSD_AWAY);
    assert_true(c.items[2].last_seen == 1000 && c.items[2].at == 1003);
    assert_true(c.items[0].seq < c.items[1].seq && c.items[1].seq < c.items[2].seq);
    usersd_changes_free(&c);
    struct store_history h;
    assert_int_equal(s->ops->history_read(s, a, 0, 2000, &h, NULL), USERSD_OK);
    assert_int_equal(h.count, 2);
    assert_true(h.rows[0].at == 1000 && h.rows[0].status == USERSD_ONLINE &&
                h.rows[0].prev == USERSD_OFFLINE);
    assert_true(h.rows[1].at == 1003 && h.rows[1].status == USERSD_AWAY &&
                h.rows[1].prev == USERSD_ONLINE);
    free(h.rows);
    struct usersd_sessions list = {0};
    assert_int_equal(s->ops->session_list(s, b, &list, NULL), USERSD_OK);
    assert_true(list.count == 1 && list.items[0].last_used == 1002);
    usersd_sessions_free(&list);

    /* A change the database refuses (no such status) fails alone, on its
     * own and (PostgreSQL: each change undone alone; SQLite's batch then
     * commits nothing) in a batch. */
    for (int batch = strcmp(g_kind, "sqlite") != 0; batch >= 0; batch--) {
        int64_t t = 2000 + 10 * batch;
        struct store_status_job k[3] = {
            {.c = {.user_id = a, .status = USERSD_OFFLINE, .last_seen = t, .now = t}},
            {.c = {.user_id = b, .status = (enum usersd_status)7, .last_seen = t, .now = t}},
            {.c = {.user_id = b, .status = USERSD_ONLINE, .last_seen = t + 1, .now = t + 1}},
        };
        many(s, k, 3, out, errs, batch);
        assert_int_equal(k[0].rc, USERSD_OK);
        assert_int_equal(k[1].rc, USERSD_EDB);
        assert_int_equal(k[2].rc, USERSD_OK);
        struct usersd_user g;
        assert_int_equal(s->ops->user_get(s, a, &g, NULL), USERSD_OK);
        assert_true(g.online_status == USERSD_OFFLINE && g.last_seen == t);
        assert_int_equal(s->ops->user_get(s, b, &g, NULL), USERSD_OK);
        assert_true(g.online_status == USERSD_ONLINE && g.last_seen == t + 1);
        /* the online page and the counters follow the batch */
        struct usersd_page pg = {0};
        assert_int_equal(s->ops->online_page(s, 1, 10, &pg, NULL), USERSD_OK);
        assert_true(pg.total_count == 1 && pg.count == 1 && pg.users[0].id == b);
        free(pg.users);
        struct usersd_stats st = {0};
        assert_int_equal(s->ops->stats(s, &st, NULL), USERSD_OK);
        assert_true(st.online_users == 1 && st.away_users == 0);
        /* back for the next round */
        struct store_status_job back[2] = {
            {.c = {.user_id = a, .status = USERSD_AWAY, .last_seen = USERSD_NULL_TIME, .now = t}},
            {.c = {.user_id = b, .status = USERSD_AWAY, .last_seen = USERSD_NULL_TIME, .now = t}},
        };
        many(s, back, 2, out, errs, false);
        assert_true(back[0].rc == USERSD_OK && back[1].rc == USERSD_OK);
    }
}

/* Decay of more users than one transaction takes (a thousand): every one
 * changes, once, and the counters follow. */
static void decay_in_chunks(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    enum { N = 2100 };
    static struct store_status_job jobs[N];
    static struct usersd_user out[N];
    static struct usersd_err errs[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d", i);
        jobs[i] = (struct store_status_job){.c = {.user_id = insert(s, name, "", 1),
                                                  .status = USERSD_ONLINE,
                                                  .last_seen = 100 + i % 7,
                                                  .now = 100}};
    }
    many(s, jobs, N, out, errs, true);
    for (int i = 0; i < N; i++)
        assert_int_equal(jobs[i].rc, USERSD_OK);
    struct usersd_page pg = {0};
    assert_int_equal(s->ops->online_page(s, 1, 10, &pg, NULL), USERSD_OK);
    assert_true(pg.total_count == N && pg.count == 10);
    assert_true(pg.users[0].last_seen == 106 && pg.users[9].last_seen == 106);
    free(pg.users);
    int64_t n = 0;
    assert_int_equal(s->ops->decay(s, 1000, 500, USERSD_NULL_TIME, &n, NULL), USERSD_OK);
    assert_int_equal(n, N);
    assert_int_equal(s->ops->decay(s, 1001, 500, USERSD_NULL_TIME, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    struct usersd_changes c = {0};
    int64_t head = 0;
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);
    assert_int_equal(s->ops->changes(s, head - N, N + 10, PRESENCE_ONLY, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, N);
    for (size_t i = 0; i < c.count; i++)
        assert_int_equal(c.items[i].online_status, USERSD_AWAY);
    usersd_changes_free(&c);
    struct usersd_stats st = {0};
    assert_int_equal(s->ops->stats(s, &st, NULL), USERSD_OK);
    assert_true(st.online_users == 0 && st.away_users == N);
    assert_int_equal(s->ops->online_page(s, 1, 10, &pg, NULL), USERSD_OK);
    assert_true(pg.total_count == 0 && pg.count == 0);
    free(pg.users);
    /* ordered by last_seen, filtered by status, through presence */
    struct usersd_list_query q;
    usersd_list_query_init(&q);
    q.online_status = USERSD_AWAY;
    q.order = USERSD_ORDER_LAST_SEEN;
    q.descending = true;
    q.per_page = 3;
    pg.total_count = -1;
    assert_int_equal(s->ops->user_list(s, &q, &pg, NULL), USERSD_OK);
    assert_true(pg.total_count == N && pg.count == 3 && pg.users[0].last_seen == 106);
    assert_true(pg.users[0].id < pg.users[1].id); /* ties by id */
    free(pg.users);
}

/* The ids of one list page (total_count read afresh). */
static int list_ids(struct store *s, struct usersd_list_query *q, int page, int64_t *ids,
                    int64_t *total)
{
    struct usersd_page p = {.total_count = -1};
    q->page = page;
    assert_int_equal(s->ops->user_list(s, q, &p, NULL), USERSD_OK);
    for (size_t i = 0; i < p.count; i++)
        ids[i] = p.users[i].id;
    *total = p.total_count;
    free(p.users);
    return (int)p.count;
}

/* A search paged inside a read scope (SQLite keeps its matches there while
 * nothing changes): every page is the one read outside a scope, another
 * search or filter is not mistaken for it, and a write since shows. */
static void search_pages_in_a_scope(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t who[9];
    for (int i = 0; i < 9; i++) {
        char name[32];
        snprintf(name, sizeof name, i < 7 ? "findme%d" : "other%d", i);
        who[i] = insert(s, name, "", 1000 + i);
    }
    set(s, who[1], USERSD_ONLINE, 100);
    set(s, who[4], USERSD_ONLINE, 100);
    struct usersd_list_query q;
    usersd_list_query_init(&q);
    q.search = "findme";
    q.order = USERSD_ORDER_DATE_JOINED;
    q.descending = true;
    q.per_page = 3;
    int64_t plain[3][3], kept[3][3], total;
    int np[3], nk[3];
    for (int pg = 0; pg < 3; pg++) {
        np[pg] = list_ids(s, &q, pg + 1, plain[pg], &total);
        assert_int_equal(total, 7);
    }
    assert_true(np[0] == 3 && np[1] == 3 && np[2] == 1 && plain[0][0] == who[6]);
    for (int round = 0; round < 2; round++) { /* the second round: from what was kept */
        if (s->ops->read_scope) assert_int_equal(s->ops->read_scope(s, true, NULL), USERSD_OK);
        for (int pg = 2; pg >= 0; pg--) {
            nk[pg] = list_ids(s, &q, pg + 1, kept[pg], &total);
            assert_int_equal(total, 7);
            assert_int_equal(nk[pg], np[pg]);
            assert_memory_equal(kept[pg], plain[pg], sizeof(int64_t) * (size_t)nk[pg]);
        }
        /* the same search, filtered: not the same matches */
        q.online_status = USERSD_ONLINE;
        assert_int_equal(list_ids(s, &q, 1, kept[0], &total), 2);
        assert_true(total == 2 && kept[0][0] == who[4] && kept[0][1] == who[1]);
        q.online_status = -1;
        /* another search */
        q.search = "other";
        assert_int_equal(list_ids(s, &q, 1, kept[0], &total), 2);
        assert_true(total == 2 && kept[0][0] == who[8]);
        /* two characters: LIKE, not the trigram index; kept the same way */
        q.search = "r8";
        assert_int_equal(list_ids(s, &q, 1, kept[0], &total), 1);
        assert_true(total == 1 && kept[0][0] == who[8]);
        q.search = "findme";
        /* past the end: no row, the count known */
        assert_int_equal(list_ids(s, &q, 9, kept[0], &total), 0);
        assert_int_equal(total, 7);
        if (s->ops->read_scope) s->ops->read_scope(s, false, NULL);
    }
    /* a write: the next scope reads the matches again */
    int64_t late = insert(s, "findme-late", "", 2000);
    set(s, who[6], USERSD_ONLINE, 200);
    if (s->ops->read_scope) assert_int_equal(s->ops->read_scope(s, true, NULL), USERSD_OK);
    assert_int_equal(list_ids(s, &q, 1, kept[0], &total), 3);
    assert_true(total == 8 && kept[0][0] == late && kept[0][1] == who[6]);
    q.online_status = USERSD_ONLINE;
    assert_int_equal(list_ids(s, &q, 1, kept[0], &total), 3);
    assert_true(total == 3 && kept[0][0] == who[6]);
    if (s->ops->read_scope) s->ops->read_scope(s, false, NULL);
}

/* A batch whose connection is lost commits nothing: a later call may not
 * reconnect and run outside the lost transaction, and the commit may not
 * succeed there for nothing (PostgreSQL; SQLite has no connection). */
static void lost_connection_fails_the_batch(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    if (strcmp(g_kind, "sqlite") == 0) return;
#ifdef USERSD_WITH_PG
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1);
    struct usersd_user u;
    assert_int_equal(s->ops->batch(s, BATCH_BEGIN, NULL), USERSD_OK);
    struct store_status_change c = {
        .user_id = a, .status = USERSD_ONLINE, .last_seen = 100, .now = 100};
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    char sql[256];
    snprintf(sql, sizeof sql,
             "DO $$ BEGIN PERFORM pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
             "WHERE datname = '%s'; END $$",
             f->path);
    assert_int_equal(pg_admin(sql), 0);
    bool updated;
    /* the first call finds the connection gone; the second must not start
     * a new one outside the batch */
    assert_int_not_equal(s->ops->touch(s, b, 0, 200, 200, &updated, NULL), USERSD_OK);
    assert_int_not_equal(s->ops->touch(s, b, 0, 200, 200, &updated, NULL), USERSD_OK);
    enum usersd_code committed = s->ops->batch(s, BATCH_COMMIT, NULL);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK); /* reconnects */
    assert_int_not_equal(committed, USERSD_OK);
    assert_int_equal(u.online_status, USERSD_OFFLINE); /* the batch was lost */
    assert_int_equal(s->ops->user_get(s, b, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == USERSD_NULL_TIME); /* nothing ran on its own either */
#endif
}

/* The change log with several writers at once (PostgreSQL, migration 011):
 * a reader never passes a change that commits later (it stops below a
 * transaction still open, even when a later one has committed), sees each
 * once and in order, and goes on past one that never commits (rolled back,
 * or its process gone mid-batch). */
static void log_horizon_across_writers(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    if (strcmp(g_kind, "sqlite") == 0) return; /* one writer at a time by design */
#ifdef USERSD_WITH_PG
    struct store *w1, *w2;
    open_writers(f, &w1, &w2);
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1), c = insert(s, "c", "", 1);
    int64_t head = -1, h = -1;
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);
    struct usersd_changes log;
    /* w1 logs first and stays open; w2 logs after it and commits */
    assert_int_equal(w1->ops->batch(w1, BATCH_BEGIN, NULL), USERSD_OK);
    set(w1, a, USERSD_ONLINE, 100);
    set(w2, b, USERSD_ONLINE, 110);
    assert_int_equal(log_after(s, head, &log), 0); /* b's seq is above a's, still open */
    usersd_changes_free(&log);
    assert_int_equal(s->ops->changes_head(s, &h, NULL), USERSD_OK);
    assert_true(h == head); /* a stream starting now starts below a */
    assert_int_equal(w1->ops->batch(w1, BATCH_COMMIT, NULL), USERSD_OK);
    assert_int_equal(log_after(s, head, &log), 2);
    assert_true(log.items[0].user_id == a && log.items[1].user_id == b);
    assert_true(log.items[0].seq < log.items[1].seq);
    int64_t seen = log.items[1].seq;
    usersd_changes_free(&log);
    assert_int_equal(log_after(s, seen, &log), 0); /* nothing twice */
    usersd_changes_free(&log);

    /* rolled back: its seq is a gap, and the reader goes on past it */
    assert_int_equal(w1->ops->batch(w1, BATCH_BEGIN, NULL), USERSD_OK);
    set(w1, c, USERSD_ONLINE, 200);
    set(w2, a, USERSD_AWAY, 210);
    assert_int_equal(log_after(s, seen, &log), 0);
    usersd_changes_free(&log);
    assert_int_equal(w1->ops->batch(w1, BATCH_ROLLBACK, NULL), USERSD_OK);
    assert_int_equal(log_after(s, seen, &log), 1);
    assert_true(log.items[0].user_id == a && log.items[0].online_status == USERSD_AWAY);
    seen = log.items[0].seq;
    usersd_changes_free(&log);

    /* w1's process dies mid-batch: its backend ends, and so does its claim */
    assert_int_equal(w1->ops->batch(w1, BATCH_BEGIN, NULL), USERSD_OK);
    set(w1, c, USERSD_ONLINE, 300);
    set(w2, b, USERSD_AWAY, 310);
    assert_int_equal(log_after(s, seen, &log), 0);
    usersd_changes_free(&log);
    char sql[256];
    snprintf(sql, sizeof sql,
             "DO $$ BEGIN PERFORM pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
             "WHERE datname = '%s' AND backend_xid IS NOT NULL; END $$",
             f->path);
    assert_int_equal(pg_admin(sql), 0);
    assert_int_equal(log_after(s, seen, &log), 1);
    assert_true(log.items[0].user_id == b && log.items[0].online_status == USERSD_AWAY);
    usersd_changes_free(&log);
    assert_int_not_equal(w1->ops->batch(w1, BATCH_COMMIT, NULL), USERSD_OK);
    assert_int_equal(status_of(s, c), USERSD_OFFLINE); /* never committed */
    store_close(w1);
    store_close(w2);
#endif
}

/* The counters (PostgreSQL, migration 012): each writing backend counts in
 * a row it alone holds, so a writer never waits for another's commit to
 * count: s and w2 count while w1's batch, which counted and raised the
 * online peak (row 1), is still open (sharing a row with it, or counting
 * in the peak's row, a writer would wait out lock_timeout and fail), and
 * the sums are right after. */
static void count_rows_apart(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    if (strcmp(g_kind, "sqlite") == 0) return; /* one writer at a time by design */
#ifdef USERSD_WITH_PG
    struct store *w1, *w2;
    open_writers(f, &w1, &w2);
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1), c = insert(s, "c", "", 1);
    const char *held = "SELECT count(DISTINCT objid) FROM pg_locks WHERE locktype = 'advisory' "
                       "AND classid = 1970496371 AND granted AND database = (SELECT oid FROM "
                       "pg_database WHERE datname = current_database())";
    long long before = pg_admin_int(f->path, held); /* s's own, from the inserts */
    assert_true(before >= 1);
    assert_int_equal(w1->ops->batch(w1, BATCH_BEGIN, NULL), USERSD_OK);
    set(w1, a, USERSD_ONLINE, 100); /* counts, and raises the peak */
    set(s, c, USERSD_ONLINE, 105);  /* neither waits for w1 */
    set(w2, b, USERSD_ONLINE, 110);
    assert_int_equal(pg_admin_int(f->path, held), before + 2);
    assert_int_equal(w1->ops->batch(w1, BATCH_COMMIT, NULL), USERSD_OK);
    struct usersd_stats st = {0};
    assert_int_equal(s->ops->stats(s, &st, NULL), USERSD_OK);
    assert_int_equal(st.total_users, 3);
    assert_int_equal(st.online_users, 3);
    store_close(w1); /* its row goes back to the pool when its backend ends */
    long long now = -1;
    for (int i = 0; i < 100 && (now = pg_admin_int(f->path, held)) != before + 1; i++)
        nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
    assert_int_equal(now, before + 1);
    store_close(w2);
#endif
}

#ifdef USERSD_WITH_PG
/* user_counts's scans, once they stop moving (statistics reach the view
 * when a backend ends or idles: bounded polling). */
static long long counts_scans(const char *db, const char *which)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM pg_stat_user_tables WHERE relname = 'user_counts'",
             which);
    long long v = pg_admin_int(db, sql), was = -2;
    for (int i = 0; i < 20 && v != was; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
        was = v;
        v = pg_admin_int(db, sql);
    }
    return v;
}
#endif

/* PostgreSQL: the counters are read through their key, so a file left
 * large (a bulk load, a long transaction: thousands of pages for 64 rows)
 * is not read whole by every count (migration 014). */
static void counts_by_key(void **state)
{
    struct fx *f = *state;
    if (strcmp(g_kind, "sqlite") == 0) return; /* one row, by its key */
#ifdef USERSD_WITH_PG
    insert(f->s, "a", "", 1);
    set(f->s, insert(f->s, "b", "", 1), USERSD_ONLINE, 10);
    /* the fixture's handle ends, and its statistics with it */
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(pg_admin_in(f->path, "DO $$ BEGIN FOR i IN 1..20000 LOOP UPDATE user_counts "
                                          "SET total = total WHERE id = 9; END LOOP; END $$"),
                     0);
    assert_int_equal(pg_admin_in(f->path, "VACUUM (ANALYZE) user_counts"), 0);
    assert_true(pg_admin_int(f->path, "SELECT pg_relation_size('user_counts') / 8192") > 50);
    long long seq = counts_scans(f->path, "seq_scan"), idx = counts_scans(f->path, "idx_scan");
    struct store *w;
    char url[400];
    snprintf(url, sizeof url, "%s/%s", g_pg_base, f->path);
    assert_int_equal(store_open(&w, url, NULL, NULL), USERSD_OK);
    for (int i = 0; i < 5; i++) {
        struct usersd_stats st = {0};
        struct usersd_page p = {0};
        int64_t n = 0;
        assert_int_equal(w->ops->stats(w, &st, NULL), USERSD_OK);
        assert_true(st.total_users == 2 && st.online_users == 1);
        assert_int_equal(w->ops->user_count(w, &n, NULL), USERSD_OK);
        assert_int_equal(n, 2);
        assert_int_equal(w->ops->online_page(w, 1, 10, &p, NULL), USERSD_OK);
        assert_true(p.total_count == 1 && p.count == 1);
        free(p.users);
    }
    store_close(w);
    assert_true(counts_scans(f->path, "idx_scan") >= idx + 15);
    assert_int_equal(counts_scans(f->path, "seq_scan"), seq);
    assert_int_equal(store_open(&f->s, url, NULL, NULL), USERSD_OK); /* for the teardown */
#endif
}

/* History: every presence change (set, decay, a session's end, deletion)
 * is kept with the status it replaced when history is on, and none when
 * off; a user's rows read by window; pruning by time moves the known
 * start; the per-minute counts close each minute's peak. */
static void presence_history(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1);
    s->history = false;
    set(s, a, USERSD_ONLINE, 50); /* not kept */
    s->history = true;
    assert_int_equal(s->ops->history_mark(s, 90, true, NULL), USERSD_OK);
    assert_int_equal(s->ops->history_mark(s, 95, true, NULL), USERSD_OK); /* already set */
    set(s, a, USERSD_AWAY, 100);
    set(s, a, USERSD_AWAY, 150); /* no change: nothing */
    int64_t n = 0;
    assert_int_equal(s->ops->decay(s, 300, USERSD_NULL_TIME, 250, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1); /* away -> offline at 300 */
    set(s, a, USERSD_ONLINE, 400);
    assert_int_equal(s->ops->decay(s, 500, 450, USERSD_NULL_TIME, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1); /* online -> away at 500 */

    struct store_history h;
    assert_int_equal(s->ops->history_read(s, a, 120, 450, &h, NULL), USERSD_OK);
    assert_true(h.since == 90);
    assert_true(h.have_first && h.first.at == 100);
    assert_int_equal(h.first.status, USERSD_AWAY);
    assert_int_equal(h.first.prev, USERSD_ONLINE);
    assert_int_equal(h.count, 2);
    assert_true(h.rows[0].at == 300 && h.rows[0].status == USERSD_OFFLINE &&
                h.rows[0].prev == USERSD_AWAY);
    assert_true(h.rows[1].at == 400 && h.rows[1].status == USERSD_ONLINE);
    assert_true(h.have_next && h.next.at == 500 && h.next.status == USERSD_AWAY &&
                h.next.prev == USERSD_ONLINE);
    free(h.rows);

    /* pruning: rows before 350 go, the known start moves to 350 */
    assert_int_equal(s->ops->history_prune(s, 350, 1000, &n, NULL), USERSD_OK);
    assert_int_equal(n, 2);
    assert_int_equal(s->ops->history_read(s, a, 0, 1000, &h, NULL), USERSD_OK);
    assert_true(h.since == 350);
    assert_false(h.have_first);
    assert_int_equal(h.count, 2);
    free(h.rows);
    assert_int_equal(s->ops->history_mark(s, USERSD_NULL_TIME, false, NULL), USERSD_OK);
    assert_int_equal(s->ops->history_read(s, a, 0, 1000, &h, NULL), USERSD_OK);
    assert_true(h.since == USERSD_NULL_TIME);
    free(h.rows);

    /* per-minute counts: a row per minute once, the last one's peak closed */
    const int64_t M = 60000000;
    int64_t b = insert(s, "b", "", 1);
    struct store_minute_row *rows = NULL;
    size_t nrows = 0;
    int64_t live = 0, open = 0;
    assert_int_equal(s->ops->minutes_read(s, 0, 12 * M, &rows, &nrows, &live, &open, NULL),
                     USERSD_OK);
    assert_true(nrows == 0 && open == USERSD_NULL_TIME); /* none recorded yet */
    free(rows);
    assert_int_equal(s->ops->history_sample(s, 10 * M, NULL), USERSD_OK); /* a away, b offline */
    set(s, b, USERSD_ONLINE, 10 * M + 1);
    set(s, a, USERSD_ONLINE, 10 * M + 2); /* peak 2 */
    set(s, a, USERSD_OFFLINE, 10 * M + 3);
    assert_int_equal(s->ops->history_sample(s, 11 * M, NULL), USERSD_OK);
    assert_int_equal(s->ops->history_sample(s, 11 * M, NULL), USERSD_OK); /* once */
    set(s, b, USERSD_OFFLINE, 11 * M + 1);
    set(s, a, USERSD_ONLINE, 11 * M + 2); /* 11's peak: 1, as its start */
    set(s, b, USERSD_ONLINE, 11 * M + 3); /* now 2 */
    assert_int_equal(s->ops->minutes_read(s, 0, 12 * M, &rows, &nrows, &live, &open, NULL),
                     USERSD_OK);
    assert_int_equal(nrows, 2);
    assert_true(rows[0].minute == 10 * M && rows[0].online == 0 && rows[0].away == 1 &&
                rows[0].offline == 1 && rows[0].online_max == 2);
    assert_true(rows[1].minute == 11 * M && rows[1].online == 1 && rows[1].offline == 1 &&
                rows[1].online_max == 1);
    /* 11 is the latest row: open, its peak so far in the counters */
    assert_true(open == 11 * M && live == 2);
    free(rows);
    /* also when the window ends before it */
    assert_int_equal(s->ops->minutes_read(s, 0, 11 * M, &rows, &nrows, &live, &open, NULL),
                     USERSD_OK);
    assert_true(nrows == 1 && open == 11 * M && live == 2);
    free(rows);
    /* a read's sample, inside the read scope of a GET: recorded, and the
     * reads after it see it */
    if (s->ops->read_scope) assert_int_equal(s->ops->read_scope(s, true, NULL), USERSD_OK);
    assert_int_equal(s->ops->history_sample(s, 12 * M, NULL), USERSD_OK);
    assert_int_equal(s->ops->minutes_read(s, 0, 13 * M, &rows, &nrows, &live, &open, NULL),
                     USERSD_OK);
    assert_int_equal(nrows, 3);
    assert_true(rows[1].online_max == 2 && rows[2].minute == 12 * M && rows[2].online == 2);
    assert_true(open == 12 * M && live == 2);
    free(rows);
    if (s->ops->read_scope) s->ops->read_scope(s, false, NULL);

    /* a deleted user's history goes with it */
    assert_int_equal(s->ops->user_delete(s, a, 2000, NULL), USERSD_OK);
    assert_int_equal(s->ops->history_read(s, a, 0, 3000, &h, NULL), USERSD_OK);
    assert_int_equal(h.count, 0);
    free(h.rows);
}

/* A manual status (API.md §12): set_status with USERSD_STATUS_MANUAL marks
 * it; every automatic write — set_status with USERSD_STATUS_AUTO (login,
 * heartbeat, also in set_status_many, whose session still moves), touch,
 * a stream's refresh, a session's end, decay (also when the manual users
 * are the oldest in decay's index) — leaves status and last_seen be and
 * logs nothing; an explicit set ends it. */
static void manual_status(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1);
    int64_t sa = add_session(s, a, 1, 100);
    set(s, a, USERSD_ONLINE, 100);
    set(s, b, USERSD_ONLINE, 150);
    struct usersd_user u;
    struct store_status_change c = {.user_id = a,
                                    .status = USERSD_AWAY,
                                    .last_seen = USERSD_NULL_TIME,
                                    .now = 200,
                                    .flags = USERSD_STATUS_MANUAL};
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    assert_true(u.status_manual && u.online_status == USERSD_AWAY && u.last_seen == 100);
    c.presence_only = true; /* the same again, as the set-status reply reads it */
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    assert_true(u.status_manual && u.online_status == USERSD_AWAY);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.status_manual);
    /* set as its caller's own activity (the writer's own-status job): the
     * session moves, a manual status's last_seen does not */
    struct store_status_job own = {.c = c};
    own.c.now = 250;
    own.c.touch = true;
    own.c.touch_before = 250;
    own.c.session_id = sa;
    struct usersd_user own_out[1];
    struct usersd_err own_err[1];
    many(s, &own, 1, own_out, own_err, false);
    assert_int_equal(own.rc, USERSD_OK);
    assert_true(own_out[0].status_manual && own_out[0].last_seen == 100);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 100);
    int64_t head = 0;
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);

    c = (struct store_status_change){.user_id = a,
                                     .status = USERSD_ONLINE,
                                     .last_seen = 300,
                                     .now = 300,
                                     .flags = USERSD_STATUS_AUTO};
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    assert_true(u.online_status == USERSD_AWAY && u.status_manual && u.last_seen == 100);
    struct store_status_job job = {.c = c};
    job.c.touch = true;
    job.c.touch_before = 10000;
    job.c.session_id = sa;
    struct usersd_user out[1];
    struct usersd_err errs[1];
    many(s, &job, 1, out, errs, true);
    assert_int_equal(job.rc, USERSD_OK);
    assert_true(out[0].online_status == USERSD_AWAY && out[0].last_seen == 100);
    assert_true(out[0].status_manual);
    struct usersd_sessions list = {0};
    assert_int_equal(s->ops->session_list(s, a, &list, NULL), USERSD_OK);
    assert_true(list.count == 1 && list.items[0].last_used == 300); /* the session moved */
    usersd_sessions_free(&list);
    bool updated = true;
    assert_int_equal(s->ops->touch(s, a, sa, 400, 400, &updated, NULL), USERSD_OK);
    assert_false(updated);
    bool alive = false;
    assert_int_equal(s->ops->session_refresh(s, &sa, 1, 500, &alive, NULL), USERSD_OK);
    assert_true(alive);
    int64_t n = -1;
    assert_int_equal(s->ops->decay(s, 600, 10000, 10000, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1); /* b alone, though a is older */
    assert_int_equal(status_of(s, b), USERSD_OFFLINE);
    int64_t ended = 0;
    struct store_session_end e = {.user_id = a, .session_id = sa, .now = 700, .active_after = 700};
    assert_int_equal(s->ops->session_end(s, &e, &ended, NULL), USERSD_OK);
    assert_int_equal(ended, 1);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.online_status == USERSD_AWAY && u.status_manual && u.last_seen == 100);
    struct usersd_changes log = {0};
    assert_int_equal(s->ops->changes(s, head, 100, PRESENCE_ONLY, &log, NULL), USERSD_OK);
    assert_int_equal(log.count, 1); /* b's decay only */
    assert_true(log.items[0].user_id == b);
    usersd_changes_free(&log);
    int64_t manual = 0, dnd = -1;
    assert_int_equal(s->ops->presence_counts(s, &manual, &dnd, NULL), USERSD_OK);
    assert_true(manual == 1 && dnd == 0);

    /* invisible: a manual offline, its last_seen the moment it was set */
    c = (struct store_status_change){.user_id = a,
                                     .status = USERSD_OFFLINE,
                                     .last_seen = 800,
                                     .now = 800,
                                     .flags = USERSD_STATUS_MANUAL};
    assert_int_equal(s->ops->set_status(s, &c, &u, NULL), USERSD_OK);
    assert_true(u.online_status == USERSD_OFFLINE && u.status_manual && u.last_seen == 800);
    assert_int_equal(s->ops->touch(s, a, 0, 900, 900, &updated, NULL), USERSD_OK);
    assert_false(updated);

    /* an explicit set ends it */
    set(s, a, USERSD_ONLINE, 1000);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.online_status == USERSD_ONLINE && !u.status_manual && u.last_seen == 1000);
    assert_int_equal(s->ops->presence_counts(s, &manual, &dnd, NULL), USERSD_OK);
    assert_int_equal(manual, 0);
    assert_int_equal(s->ops->decay(s, 1100, 1050, USERSD_NULL_TIME, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
}

/* Do not disturb: set and clear are logged (kind DND) with the new state,
 * a clear with nothing to clear logs nothing, the sweep ends and logs each
 * ended one once (never one without an end), a presence change carries the
 * user's do not disturb, and no status changes. */
static void do_not_disturb(void **state)
{
    struct store *s = ((struct fx *)*state)->s;
    int64_t a = insert(s, "a", "", 1), b = insert(s, "b", "", 1);
    set(s, a, USERSD_ONLINE, 50);
    int64_t head = 0;
    assert_int_equal(s->ops->changes_head(s, &head, NULL), USERSD_OK);
    struct usersd_user u;
    assert_int_equal(s->ops->dnd(s, a, true, 500, 100, &u, NULL), USERSD_OK);
    assert_true(u.dnd && u.dnd_until == 500 && u.online_status == USERSD_ONLINE);
    assert_int_equal(s->ops->dnd(s, b, true, USERSD_NULL_TIME, 100, &u, NULL), USERSD_OK);
    assert_true(u.dnd && u.dnd_until == USERSD_NULL_TIME);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.dnd && u.dnd_until == 500);
    int64_t manual = -1, dnd = 0;
    assert_int_equal(s->ops->presence_counts(s, &manual, &dnd, NULL), USERSD_OK);
    assert_true(manual == 0 && dnd == 2);
    struct usersd_changes c;
    assert_int_equal(log_after(s, head, &c), 2);
    assert_true(c.items[0].kind == USERSD_CHANGE_DND && c.items[0].user_id == a);
    assert_true(c.items[0].dnd && c.items[0].dnd_until == 500 && c.items[0].at == 100);
    assert_true(c.items[1].dnd && c.items[1].dnd_until == USERSD_NULL_TIME);
    assert_int_equal(c.items[0].online_status, USERSD_ONLINE);
    head = c.items[1].seq;
    usersd_changes_free(&c);

    /* a presence change carries it */
    set(s, b, USERSD_ONLINE, 150);
    assert_int_equal(log_after(s, head, &c), 1);
    assert_true(c.items[0].kind == USERSD_CHANGE_PRESENCE && c.items[0].dnd);
    assert_true(c.items[0].dnd_until == USERSD_NULL_TIME);
    head = c.items[0].seq;
    usersd_changes_free(&c);

    int64_t n = -1;
    assert_int_equal(s->ops->dnd_expire(s, 499, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->dnd_expire(s, 500, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s->ops->dnd_expire(s, INT64_MAX - 1, &n, NULL), USERSD_OK);
    assert_int_equal(n, 0); /* once, and never b's (no end) */
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_false(u.dnd);
    assert_int_equal(log_after(s, head, &c), 1);
    assert_true(c.items[0].kind == USERSD_CHANGE_DND && c.items[0].user_id == a);
    assert_true(!c.items[0].dnd && c.items[0].at == 500);
    head = c.items[0].seq;
    usersd_changes_free(&c);

    assert_int_equal(s->ops->dnd(s, b, false, USERSD_NULL_TIME, 700, &u, NULL), USERSD_OK);
    assert_false(u.dnd);
    assert_int_equal(s->ops->dnd(s, b, false, USERSD_NULL_TIME, 800, &u, NULL), USERSD_OK);
    assert_int_equal(log_after(s, head, &c), 1);
    assert_true(!c.items[0].dnd && c.items[0].user_id == b);
    usersd_changes_free(&c);
    assert_int_equal(s->ops->dnd(s, 9999, true, 900, 1, &u, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->dnd(s, 9999, false, USERSD_NULL_TIME, 1, &u, NULL), USERSD_ENOTFOUND);
    assert_int_equal(s->ops->presence_counts(s, &manual, &dnd, NULL), USERSD_OK);
    assert_int_equal(dnd, 0);
    struct usersd_changes presence = {0};
    assert_int_equal(s->ops->changes(s, 0, 100, PRESENCE_ONLY, &presence, NULL), USERSD_OK);
    assert_int_equal(presence.count, 2); /* a's and b's online, nothing of DND */
    usersd_changes_free(&presence);

    /* what a copy reads and loads keeps both */
    struct usersd_user x = {0};
    assert_int_equal(s->ops->dnd(s, a, true, 5000, 900, &x, NULL), USERSD_OK);
    struct store_status_change m = {.user_id = b,
                                    .status = USERSD_OFFLINE,
                                    .last_seen = 950,
                                    .now = 950,
                                    .flags = USERSD_STATUS_MANUAL};
    assert_int_equal(s->ops->set_status(s, &m, &x, NULL), USERSD_OK);
    struct store_user_row rows[4];
    size_t got = 0;
    assert_int_equal(s->ops->dump_users(s, 0, 4, rows, &got, NULL), USERSD_OK);
    assert_int_equal(got, 2);
    assert_true(rows[0].user.dnd && rows[0].user.dnd_until == 5000 && !rows[0].user.status_manual);
    assert_true(!rows[1].user.dnd && rows[1].user.status_manual);
    assert_int_equal(s->ops->user_delete(s, a, 1000, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_delete(s, b, 1000, NULL), USERSD_OK);
    assert_int_equal(s->ops->load_begin(s, NULL), USERSD_OK);
    assert_int_equal(s->ops->load(s, rows, 2, NULL, 0, NULL), USERSD_OK);
    assert_int_equal(s->ops->load_finish(s, -1, NULL, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, a, &u, NULL), USERSD_OK);
    assert_true(u.dnd && u.dnd_until == 5000 && !u.status_manual);
    assert_int_equal(s->ops->user_get(s, b, &u, NULL), USERSD_OK);
    assert_true(!u.dnd && u.status_manual && u.online_status == USERSD_OFFLINE);
    assert_int_equal(s->ops->presence_counts(s, &manual, &dnd, NULL), USERSD_OK);
    assert_true(manual == 1 && dnd == 1);
    assert_int_equal(s->ops->touch(s, b, 0, 2000, 2000, &(bool){false}, NULL), USERSD_OK);
    assert_int_equal(s->ops->user_get(s, b, &u, NULL), USERSD_OK);
    assert_true(u.last_seen == 950);
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
        cmocka_unit_test_setup_teardown(update_delete_and_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(read_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(sessions_and_presence, setup, teardown),
        cmocka_unit_test_setup_teardown(session_expiry_and_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(presence_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(refreshes_in_bulk, setup, teardown),
        cmocka_unit_test_setup_teardown(checkpoint_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(change_log_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(lists_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(status_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(presence_history, setup, teardown),
        cmocka_unit_test_setup_teardown(status_many, setup, teardown),
        cmocka_unit_test_setup_teardown(decay_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_connection_fails_the_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(log_horizon_across_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(count_rows_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(search_pages_in_a_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(counts_by_key, setup, teardown),
        cmocka_unit_test_setup_teardown(manual_status, setup, teardown),
        cmocka_unit_test_setup_teardown(do_not_disturb, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
