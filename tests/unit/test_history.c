/* Unit tests of history.c and messages.c on an injected clock: intervals
 * merged, clipped and totalled; unknown before the kept history and after
 * now; a day of changes; counts over time by bucket; status messages that
 * end. */
#include "testutil.h"

#include "internal.h"

#define S(x) ((int64_t)(x)*1000000)
#define ON USERSD_ONLINE
#define AW USERSD_AWAY
#define OFF USERSD_OFFLINE
#define UNK USERSD_UNKNOWN

static void expect(const struct usersd_history *h, const int (*want)[3], size_t n)
{
    assert_int_equal(h->count, n);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h->items[i].status, want[i][0]);
        assert_true(h->items[i].from == S(want[i][1]));
        assert_true(h->items[i].to == S(want[i][2]));
        if (i) {
            assert_true(h->items[i].from == h->items[i - 1].to);              /* contiguous */
            assert_int_not_equal(h->items[i].status, h->items[i - 1].status); /* merged */
        }
    }
    for (int k = 0; k < 4; k++)
        sum += h->totals[k];
    assert_true(sum == h->to - h->from); /* the totals add up to the window */
}

static struct store_history rows(const struct store_history_row *r, size_t n)
{
    struct store_history sh = {0};
    sh.rows = (struct store_history_row *)r;
    sh.count = n;
    return sh;
}

/* The pure builder: window [100, 200), history known from 0, now 1000. */
static void build_clips_merges_and_totals(void **state)
{
    (void)state;
    struct store_history_row r[] = {
        {1, S(120), ON, OFF}, {1, S(150), AW, ON}, {1, S(160), ON, AW}, {1, S(250), OFF, ON}};
    struct store_history sh = rows(r, 3);
    sh.have_first = true;
    sh.first = (struct store_history_row){1, S(90), OFF, ON};
    struct usersd_history h;
    assert_int_equal(history_build(S(100), S(200), S(1000), 0, OFF, &sh, &h), USERSD_OK);
    const int want[][3] = {{OFF, 100, 120}, {ON, 120, 150}, {AW, 150, 160}, {ON, 160, 200}};
    expect(&h, want, 4);
    assert_true(h.totals[ON] == S(70) && h.totals[AW] == S(10) && h.totals[OFF] == S(20));
    usersd_history_free(&h);

    /* no change before the window: the first change's previous status */
    sh.have_first = false;
    assert_int_equal(history_build(S(100), S(200), S(1000), 0, OFF, &sh, &h), USERSD_OK);
    expect(&h, want, 4);
    usersd_history_free(&h);

    /* no change at all: what the user is now, the whole window */
    struct store_history none = rows(NULL, 0);
    assert_int_equal(history_build(S(100), S(200), S(1000), 0, AW, &none, &h), USERSD_OK);
    const int all_away[][3] = {{AW, 100, 200}};
    expect(&h, all_away, 1);
    usersd_history_free(&h);

    /* no change inside, one after the window: its previous status */
    struct store_history after = rows(NULL, 0);
    after.have_next = true;
    after.next = r[3];
    assert_int_equal(history_build(S(100), S(200), S(1000), 0, OFF, &after, &h), USERSD_OK);
    const int all_on[][3] = {{ON, 100, 200}};
    expect(&h, all_on, 1);
    usersd_history_free(&h);
}

static void build_unknown_before_known_and_after_now(void **state)
{
    (void)state;
    struct store_history_row r[] = {{1, S(40), ON, OFF}, {1, S(130), AW, ON}};
    struct store_history sh = rows(r, 2);
    sh.have_first = true;
    sh.first = r[0]; /* at 40: before the known start (110), so not trusted */
    struct usersd_history h;
    /* known from 110, now 170: unknown, then what the 130 change replaced */
    assert_int_equal(history_build(S(100), S(200), S(170), S(110), OFF, &sh, &h), USERSD_OK);
    const int want[][3] = {{UNK, 100, 110}, {ON, 110, 130}, {AW, 130, 170}, {UNK, 170, 200}};
    expect(&h, want, 4);
    assert_true(h.totals[3] == S(40));
    usersd_history_free(&h);

    /* never kept: all unknown; a window in the future: all unknown */
    assert_int_equal(history_build(S(100), S(200), S(170), USERSD_NULL_TIME, OFF, &sh, &h),
                     USERSD_OK);
    const int unknown[][3] = {{UNK, 100, 200}};
    expect(&h, unknown, 1);
    usersd_history_free(&h);
    assert_int_equal(history_build(S(100), S(200), S(50), 0, OFF, &sh, &h), USERSD_OK);
    expect(&h, unknown, 1);
    usersd_history_free(&h);
    /* a change at exactly the window's start counts from there */
    struct store_history at_start = rows(NULL, 0);
    at_start.have_first = true;
    at_start.first = (struct store_history_row){1, S(100), AW, ON};
    assert_int_equal(history_build(S(100), S(200), S(1000), 0, OFF, &at_start, &h), USERSD_OK);
    const int away[][3] = {{AW, 100, 200}};
    expect(&h, away, 1);
    usersd_history_free(&h);
}

static void open_with_history(struct fixture *f, int64_t days)
{
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.away_after_s = 600;
    cfg.offline_after_s = 3600;
    cfg.history_days = days;
    assert_int_equal(fixture_open_cfg(f, cfg), 0);
}

/* A day of changes through the library: login, decay, status changes;
 * the history and the totals of that day. */
static void a_day_of_changes(void **state)
{
    struct fixture *f = *state;
    open_with_history(f, 30);
    f->now = T0; /* history starts here */
    assert_int_equal(usersd_history_prune(f->u, NULL), USERSD_OK);
    int64_t id = make_user(f, "ann", 0);
    int64_t day = T0 - T0 % S(86400);      /* the UTC midnight before T0 (10:30) */
    f->now = day + S(86400) + S(9 * 3600); /* next day, 09:00: logs in */
    char key[USERSD_TOKEN_LEN + 1];
    assert_int_equal(usersd_login(f->u, "ann", "password1", key, NULL, NULL), USERSD_OK);
    f->now += S(3 * 3600); /* 12:00: away by hand */
    assert_int_equal(usersd_set_away(f->u, id, NULL, NULL), USERSD_OK);
    f->now += S(3600); /* 13:00 back */
    assert_int_equal(usersd_set_online(f->u, id, NULL, NULL), USERSD_OK);
    f->now += S(4 * 3600); /* 17:00 last activity; decay: away 17:10, offline 18:00 */
    assert_int_equal(usersd_set_online(f->u, id, NULL, NULL), USERSD_OK);
    int64_t changed = 0;
    f->now += S(601);
    assert_int_equal(usersd_decay(f->u, &changed, NULL), USERSD_OK);
    assert_int_equal(changed, 1);
    f->now = day + S(86400) + S(18 * 3600) + S(1);
    assert_int_equal(usersd_decay(f->u, &changed, NULL), USERSD_OK);
    assert_int_equal(changed, 1);

    f->now = day + S(3 * 86400); /* two days later, ask for that day */
    struct usersd_history h;
    int64_t from = day + S(86400), to = day + S(2 * 86400);
    assert_int_equal(usersd_presence_history(f->u, id, from, to, &h, NULL), USERSD_OK);
    assert_true(h.user_id == id && h.from == from && h.to == to);
    int64_t d = from;
    const int want[][3] = {{OFF, 0, 9 * 3600},
                           {ON, 9 * 3600, 12 * 3600},
                           {AW, 12 * 3600, 13 * 3600},
                           {ON, 13 * 3600, 17 * 3600 + 601},
                           {AW, 17 * 3600 + 601, 18 * 3600 + 1},
                           {OFF, 18 * 3600 + 1, 86400}};
    assert_int_equal(h.count, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(h.items[i].status, want[i][0]);
        assert_true(h.items[i].from == d + S(want[i][1]) && h.items[i].to == d + S(want[i][2]));
    }
    assert_true(h.totals[ON] == S(3 * 3600 + 4 * 3600 + 601));
    assert_true(h.totals[3] == 0);
    usersd_history_free(&h);

    /* the window that starts before the history does: unknown first */
    assert_int_equal(usersd_presence_history(f->u, id, T0 - S(3600), T0 + S(3600), &h, NULL),
                     USERSD_OK);
    assert_int_equal(h.items[0].status, UNK);
    assert_true(h.items[0].to == T0);
    usersd_history_free(&h);

    /* bad windows and an unknown user */
    struct usersd_err err = {0};
    assert_int_equal(usersd_presence_history(f->u, id, to, from, &h, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "from");
    assert_int_equal(usersd_presence_history(f->u, id, from, from, &h, &err), USERSD_EINVAL);
    assert_int_equal(usersd_presence_history(f->u, id, from, from + S(31 * 86400) + 1, &h, &err),
                     USERSD_EINVAL);
    assert_int_equal(usersd_presence_history(f->u, id, from, from + S(31 * 86400), &h, &err),
                     USERSD_OK);
    usersd_history_free(&h);
    assert_int_equal(usersd_presence_history(f->u, 999, from, to, &h, &err), USERSD_ENOTFOUND);

    /* pruned past the day: its start is unknown again */
    open_with_history(f, 1);
    assert_int_equal(usersd_history_prune(f->u, NULL), USERSD_OK);
    assert_int_equal(usersd_presence_history(f->u, id, from, to, &h, NULL), USERSD_OK);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.items[0].status, UNK);
    usersd_history_free(&h);
    /* history off: nothing kept, unknown from then on */
    open_with_history(f, 0);
    assert_int_equal(usersd_history_prune(f->u, NULL), USERSD_OK);
    assert_int_equal(usersd_set_online(f->u, id, NULL, NULL), USERSD_OK);
    f->now += S(60);
    assert_int_equal(usersd_presence_history(f->u, id, f->now - S(3600), f->now, &h, NULL),
                     USERSD_OK);
    const int unknown[][3] = {{UNK, 0, 0}};
    assert_int_equal(h.count, 1);
    assert_int_equal(h.items[0].status, unknown[0][0]);
    usersd_history_free(&h);
}

/* Counts over time: one sample a minute, points per bucket. */
static void counts_over_time(void **state)
{
    struct fixture *f = *state;
    open_with_history(f, 30);
    int64_t hour = T0 - T0 % S(3600); /* 10:00 */
    int64_t a = make_user(f, "a", 0), b = make_user(f, "b", 0);
    for (int m = 0; m < 90; m++) { /* 10:00 .. 11:29: a sample, then 10 s later the events */
        f->now = hour + S(60 * m);
        assert_int_equal(usersd_history_sample(f->u, NULL), USERSD_OK);
        f->now += S(10);
        if (m == 15) assert_int_equal(usersd_set_online(f->u, a, NULL, NULL), USERSD_OK);
        if (m == 30) { /* b online for a moment inside minute 30 only */
            assert_int_equal(usersd_set_online(f->u, b, NULL, NULL), USERSD_OK);
            assert_int_equal(usersd_set_offline(f->u, b, NULL, NULL), USERSD_OK);
        }
        if (m == 60) assert_int_equal(usersd_set_away(f->u, a, NULL, NULL), USERSD_OK);
    }
    f->now = hour + S(90 * 60);
    struct usersd_online_history h;
    struct usersd_err err = {0};
    /* 5-minute buckets over 10:00..11:00 */
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(3600), 300, &h, &err), USERSD_OK);
    assert_int_equal(h.count, 12);
    assert_true(h.bucket_s == 300 && h.points[0].at == hour);
    assert_true(h.points[0].known && h.points[0].online == 0 && h.points[0].offline == 2);
    assert_true(h.points[3].online == 0 && h.points[3].online_max == 1); /* 10:15:10 */
    assert_true(h.points[4].online == 1 && h.points[4].online_max == 1);
    assert_true(h.points[5].online_max == 1);
    assert_true(h.points[6].online == 1 && h.points[6].online_max == 2); /* 10:30:10 spike */
    assert_true(h.points[7].online_max == 1);
    usersd_online_history_free(&h);
    /* from not on a bucket: rounded down; before history: null */
    assert_int_equal(
        usersd_online_history(f->u, hour - S(7200) + S(90), hour + S(3600), 3600, &h, &err),
        USERSD_OK);
    assert_int_equal(h.count, 3);
    assert_true(h.points[0].at == hour - S(7200));
    assert_false(h.points[0].known);
    assert_false(h.points[1].known);
    assert_true(h.points[2].known && h.points[2].online_max == 2);
    usersd_online_history_free(&h);
    /* the default bucket: the smallest with at most 1000 points */
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(86400), 0, &h, &err), USERSD_OK);
    assert_true(h.bucket_s == 300 && h.count == 288);
    usersd_online_history_free(&h);
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(31 * 86400), 0, &h, &err),
                     USERSD_OK);
    assert_true(h.bucket_s == 3600 && h.count == 744);
    usersd_online_history_free(&h);
    /* too many points, a bad bucket, a bad window */
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(86400), 60, &h, &err),
                     USERSD_EINVAL);
    assert_string_equal(err.field, "bucket");
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(3600), 120, &h, &err),
                     USERSD_EINVAL);
    assert_int_equal(usersd_online_history(f->u, hour, hour, 60, &h, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "from");
}

/* API.md §9: a point's counts are those at its bucket's start, also for the
 * minute in progress when the sweep has not recorded it yet: never the
 * minute before's. And the minute that has ended but is not closed yet
 * (the sweep's sample closes it) reads with the peak that sample gives
 * it, also in a window that ends before the minute in progress, whose
 * read records nothing. */
static void minute_in_progress_before_its_sample(void **state)
{
    struct fixture *f = *state;
    open_with_history(f, 30);
    int64_t hour = T0 - T0 % S(3600);
    int64_t a = make_user(f, "a", 0), b = make_user(f, "b", 0);
    f->now = hour;
    assert_int_equal(usersd_history_sample(f->u, NULL), USERSD_OK); /* 10:00: nobody online */
    f->now = hour + S(10);
    assert_int_equal(usersd_set_online(f->u, a, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_set_online(f->u, b, NULL, NULL), USERSD_OK); /* 2 */
    assert_int_equal(usersd_set_offline(f->u, b, NULL, NULL), USERSD_OK);
    f->now = hour + S(60) + 300000; /* 10:01:00.3, the sweep not yet past */
    struct usersd_online_history h;
    struct usersd_err err = {0};
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(60), 60, &h, &err), USERSD_OK);
    assert_int_equal(h.count, 1);
    assert_true(h.points[0].known && h.points[0].online == 0 && h.points[0].online_max == 2);
    usersd_online_history_free(&h);
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(120), 60, &h, &err), USERSD_OK);
    assert_int_equal(h.count, 2);
    assert_true(h.points[0].known && h.points[0].online == 0 && h.points[0].online_max == 2);
    assert_true(h.points[1].at == hour + S(60) && h.points[1].known);
    assert_int_equal(h.points[1].online, 1); /* at 10:01, not 10:00's 0 */
    assert_int_equal(h.points[1].offline, 1);
    usersd_online_history_free(&h);
    /* the sweep then finds the minute recorded and keeps it */
    f->now = hour + S(61);
    assert_int_equal(usersd_set_offline(f->u, a, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_history_sample(f->u, NULL), USERSD_OK);
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(120), 60, &h, &err), USERSD_OK);
    assert_int_equal(h.points[1].online, 1);
    usersd_online_history_free(&h);
}

/* Another database on the fixture's clock, keeping history. */
static struct usersd *open_other(struct fixture *f, char *path, size_t size)
{
    snprintf(path, size, "/tmp/usersd-unit-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char url[96];
    snprintf(url, sizeof url, "sqlite:%s", path);
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.db_url = url;
    cfg.clock = fake_clock;
    cfg.clock_ctx = f;
    struct usersd *u = NULL;
    assert_int_equal(usersd_open(&u, &cfg, NULL), USERSD_OK);
    return u;
}

static void close_other(struct usersd *u, const char *path)
{
    usersd_close(u);
    char p[96];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

/* Counts over [from, to) by minute on u, checked to be want's. */
static void expect_points(struct usersd *u, int64_t from, int64_t to,
                          const struct usersd_online_history *want)
{
    struct usersd_online_history h;
    assert_int_equal(usersd_online_history(u, from, to, 60, &h, NULL), USERSD_OK);
    assert_int_equal(h.count, want->count);
    for (size_t i = 0; i < h.count; i++) {
        const struct usersd_count_point *p = &h.points[i], *w = &want->points[i];
        assert_true(p->at == w->at && p->known == w->known);
        assert_int_equal(p->online, w->online);
        assert_int_equal(p->away, w->away);
        assert_int_equal(p->offline, w->offline);
        assert_int_equal(p->online_max, w->online_max);
    }
    usersd_online_history_free(&h);
}

/* usersd copy: the copy's counts over time read, whenever they are read,
 * as the source's read at the moment of the copy: the minute the source
 * recorded last closed with the peak it had, the minute in progress as
 * that read records it (when the source stopped in an earlier minute); and
 * the copy's own next sample closes the minute in progress with the peak
 * it reaches there. */
static void copy_reads_as_the_source_did(void **state)
{
    struct fixture *f = *state;
    open_with_history(f, 30);
    int64_t hour = T0 - T0 % S(3600), users = 0;
    int64_t a = make_user(f, "a", 0), b = make_user(f, "b", 0), c = make_user(f, "c", 0);
    f->now = hour;
    assert_int_equal(usersd_history_prune(f->u, NULL), USERSD_OK);  /* history kept from here */
    assert_int_equal(usersd_history_sample(f->u, NULL), USERSD_OK); /* 10:00: nobody online */
    f->now = hour + S(10);
    assert_int_equal(usersd_set_online(f->u, a, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_set_online(f->u, b, NULL, NULL), USERSD_OK); /* 2 */
    assert_int_equal(usersd_set_offline(f->u, b, NULL, NULL), USERSD_OK);
    /* the source stops: no sample closes 10:00 */
    struct usersd_err err = {0};
    struct usersd_online_history same, later;
    char same_path[64], later_path[64];

    /* a copy within 10:00, where the rest of 10:00 happens then */
    f->now = hour + S(30);
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(60), 60, &same, &err), USERSD_OK);
    assert_int_equal(same.points[0].online_max, 2);
    struct usersd *dst_same = open_other(f, same_path, sizeof same_path);
    assert_int_equal(usersd_copy(f->u, dst_same, &users, NULL, &err), USERSD_OK);
    assert_int_equal(users, 3);
    f->now = hour + S(40);
    assert_int_equal(usersd_set_online(dst_same, b, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_set_online(dst_same, c, NULL, NULL), USERSD_OK); /* 3 */
    assert_int_equal(usersd_set_offline(dst_same, c, NULL, NULL), USERSD_OK);
    assert_int_equal(usersd_set_offline(dst_same, b, NULL, NULL), USERSD_OK);

    /* a copy at 10:01:30, 10:01 not recorded by the source (nothing read
     * it before the copy) */
    f->now = hour + S(90);
    struct usersd *dst_later = open_other(f, later_path, sizeof later_path);
    assert_int_equal(usersd_copy(f->u, dst_later, &users, NULL, &err), USERSD_OK);
    assert_int_equal(usersd_online_history(f->u, hour, hour + S(120), 60, &later, &err), USERSD_OK);
    assert_true(later.points[0].online_max == 2 && later.points[1].online == 1 &&
                later.points[1].offline == 2 && later.points[1].online_max == 1);

    /* read at 10:05, before and after each copy's own sample */
    f->now = hour + S(300);
    same.points[0].online_max = 3;
    for (int sampled = 0; sampled < 2; sampled++) {
        expect_points(dst_same, hour, hour + S(60), &same);
        expect_points(dst_later, hour, hour + S(120), &later);
        assert_int_equal(usersd_history_sample(dst_same, NULL), USERSD_OK);
        assert_int_equal(usersd_history_sample(dst_later, NULL), USERSD_OK);
    }

    usersd_online_history_free(&same);
    usersd_online_history_free(&later);
    close_other(dst_same, same_path);
    close_other(dst_later, later_path);
}

/* Status messages: validation, an end that hides the message at once, the
 * sweep that clears it. */
static void status_messages(void **state)
{
    struct fixture *f = *state;
    int64_t id = make_user(f, "mia", 0);
    struct usersd_user u;
    struct usersd_err err = {0};
    char long_text[500];
    memset(long_text, 0, sizeof long_text);
    for (int i = 0; i < 100; i++)
        memcpy(long_text + 2 * i, "\xc3\xa9", 2); /* 100 × é: 200 bytes, 100 characters */
    assert_int_equal(usersd_status_message_set(f->u, id, long_text, USERSD_NULL_TIME, &u, &err),
                     USERSD_OK);
    assert_string_equal(u.status_text, long_text);
    memcpy(long_text + 200, "x", 2);
    const char *bad[] = {"",        long_text,     "tab\there",    "nl\n",
                         "del\x7f", "c1 \xc2\x85", "bad utf8 \xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(usersd_status_message_set(f->u, id, bad[i], USERSD_NULL_TIME, &u, &err),
                         USERSD_EINVAL);
        assert_string_equal(err.field, "text");
    }
    assert_int_equal(usersd_status_message_set(f->u, id, NULL, USERSD_NULL_TIME, &u, &err),
                     USERSD_EINVAL);
    assert_int_equal(usersd_status_message_set(f->u, id, "x", f->now, &u, &err), USERSD_EINVAL);
    assert_string_equal(err.field, "expires_at");
    assert_int_equal(usersd_status_message_set(f->u, 999, "x", USERSD_NULL_TIME, &u, &err),
                     USERSD_ENOTFOUND);

    assert_int_equal(usersd_status_message_set(f->u, id, "Lunch", f->now + S(60), &u, &err),
                     USERSD_OK);
    assert_true(u.status_expires == f->now + S(60));
    f->now += S(59);
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_string_equal(u.status_text, "Lunch");
    f->now += S(1); /* its end: gone at once, before any sweep */
    assert_int_equal(usersd_user_get(f->u, id, &u, NULL), USERSD_OK);
    assert_string_equal(u.status_text, "");
    assert_true(u.status_expires == USERSD_NULL_TIME);
    struct usersd_page p;
    assert_int_equal(usersd_users_by_ids(f->u, &id, 1, &p, NULL), USERSD_OK);
    assert_string_equal(p.users[0].status_text, "");
    usersd_page_free(&p);
    int64_t n = 0, head = 0;
    assert_int_equal(usersd_changes_head(f->u, &head, NULL), USERSD_OK);
    assert_int_equal(usersd_status_message_expire(f->u, &n, NULL), USERSD_OK);
    assert_int_equal(n, 1);
    struct usersd_changes c;
    assert_int_equal(usersd_events_since(f->u, head, 10, &c, NULL), USERSD_OK);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.items[0].kind, USERSD_CHANGE_STATUS_MESSAGE);
    usersd_changes_free(&c);
    assert_int_equal(usersd_changes_since(f->u, 0, 100, &c, NULL), USERSD_OK);
    for (size_t i = 0; i < c.count; i++) /* the polling endpoint: presence only */
        assert_int_equal(c.items[i].kind, USERSD_CHANGE_PRESENCE);
    usersd_changes_free(&c);
    assert_int_equal(usersd_status_message_clear(f->u, id, &u, NULL), USERSD_OK);
    assert_int_equal(usersd_status_message_clear(f->u, 999, &u, NULL), USERSD_ENOTFOUND);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_clips_merges_and_totals),
        cmocka_unit_test(build_unknown_before_known_and_after_now),
        T(a_day_of_changes),
        T(counts_over_time),
        T(minute_in_progress_before_its_sample),
        T(copy_reads_as_the_source_did),
        T(status_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
