/* testutil.h — what the unit tests share: a fresh SQLite file per test and a
 * clock the test moves by hand, so presence rules are tested without sleep. */
#ifndef USERSD_TESTUTIL_H
#define USERSD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "usersd.h"

struct fixture {
    struct usersd *u;
    int64_t now; /* the fake clock, microseconds */
    char path[64];
};

static inline int64_t fake_clock(void *ctx)
{
    return ((struct fixture *)ctx)->now;
}

/* 2024-01-15T10:30:00Z */
#define T0 ((int64_t)1705314600 * 1000000)

/* (Re)opens f's database with the fake clock and the given configuration
 * (its db_url and clock are set here). */
static inline int fixture_open_cfg(struct fixture *f, struct usersd_config cfg)
{
    char url[96];
    snprintf(url, sizeof url, "sqlite:%s", f->path);
    cfg.db_url = url;
    cfg.clock = fake_clock;
    cfg.clock_ctx = f;
    usersd_close(f->u);
    f->u = NULL;
    struct usersd_err err = {0};
    if (usersd_open(&f->u, &cfg, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* (Re)opens f's database with the fake clock and the given decay thresholds. */
static inline int fixture_open(struct fixture *f, int64_t away_after_s, int64_t offline_after_s)
{
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.away_after_s = away_after_s;
    cfg.offline_after_s = offline_after_s;
    return fixture_open_cfg(f, cfg);
}

static inline int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/usersd-unit-XXXXXX");
    int fd = mkstemp(f->path);
    if (fd < 0) return -1;
    close(fd);
    f->now = T0;
    if (fixture_open(f, 600, 3600)) return -1;
    *state = f;
    return 0;
}

static inline int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    usersd_close(f->u);
    char p[96];
    unlink(f->path);
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    free(f);
    return 0;
}

/* Creates a user with a valid password; returns its id. */
static inline int64_t make_user(struct fixture *f, const char *name, int staff)
{
    struct usersd_user_fields uf;
    usersd_user_fields_init(&uf);
    uf.username = name;
    uf.password = "password1";
    uf.is_staff = staff;
    struct usersd_user out;
    struct usersd_err err = {0};
    assert_int_equal(usersd_user_create(f->u, &uf, &out, &err), USERSD_OK);
    return out.id;
}

#endif
