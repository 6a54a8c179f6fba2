/* A full disk (or an I/O error) in the middle of a group-commit batch
 * (store_sqlite.c): a batch larger than SQLite's page cache spills pages to
 * the WAL before its commit, and that write fails. SQLite then rolls back
 * the statement, or the whole transaction; either way no job applied
 * before the failure may be acknowledged (applied, in a batch that
 * committed) and then be missing. The black-box test (tests/http/
 * test_faults.py) fills a real tmpfs, where the batches are small and fail
 * at their commit; this one reaches the spill.
 *
 * The disk is a VFS wrapped around SQLite's own, which refuses any write
 * to the WAL past a limit once armed. */
#include <sqlite3.h>

#include "testutil.h"

static sqlite3_vfs full_vfs, *base;
static sqlite3_int64 wal_limit = -1; /* < 0: not armed */
static int fault = SQLITE_FULL;      /* what a refused write returns */

struct full_file {
    sqlite3_file base_file; /* first: SQLite sees a sqlite3_file */
    sqlite3_file *real;     /* the base VFS's file, allocated after this struct */
    bool wal;
};

static int f_close(sqlite3_file *f)
{
    struct full_file *p = (struct full_file *)f;
    int rc = p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
    return rc;
}
static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xRead(p->real, buf, n, off);
}
static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    struct full_file *p = (struct full_file *)f;
    if (p->wal && wal_limit >= 0 && off + n > wal_limit) return fault;
    return p->real->pMethods->xWrite(p->real, buf, n, off);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xTruncate(p->real, size);
}
static int f_sync(sqlite3_file *f, int flags)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xSync(p->real, flags);
}
static int f_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xFileSize(p->real, size);
}
static int f_lock(sqlite3_file *f, int l)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xLock(p->real, l);
}
static int f_unlock(sqlite3_file *f, int l)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xUnlock(p->real, l);
}
static int f_check(sqlite3_file *f, int *out)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xCheckReservedLock(p->real, out);
}
static int f_fcntl(sqlite3_file *f, int op, void *arg)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xFileControl(p->real, op, arg);
}
static int f_sector(sqlite3_file *f)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xSectorSize(p->real);
}
static int f_caps(sqlite3_file *f)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xDeviceCharacteristics(p->real);
}
static int f_shm_map(sqlite3_file *f, int i, int size, int extend, void volatile **out)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xShmMap(p->real, i, size, extend, out);
}
static int f_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xShmLock(p->real, off, n, flags);
}
static void f_shm_barrier(sqlite3_file *f)
{
    struct full_file *p = (struct full_file *)f;
    p->real->pMethods->xShmBarrier(p->real);
}
static int f_shm_unmap(sqlite3_file *f, int del)
{
    struct full_file *p = (struct full_file *)f;
    return p->real->pMethods->xShmUnmap(p->real, del);
}

static const sqlite3_io_methods full_io = {
    2,          f_close,       f_read,      f_write, f_truncate, f_sync, f_size,
    f_lock,     f_unlock,      f_check,     f_fcntl, f_sector,   f_caps, f_shm_map,
    f_shm_lock, f_shm_barrier, f_shm_unmap, NULL,    NULL,
};

static int full_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    struct full_file *p = (struct full_file *)f;
    p->real = (sqlite3_file *)(p + 1);
    p->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = base->xOpen(base, name, p->real, flags, out);
    f->pMethods = rc == SQLITE_OK ? &full_io : NULL;
    return rc;
}

static void install_vfs(void)
{
    base = sqlite3_vfs_find(NULL);
    full_vfs = *base;
    full_vfs.zName = "usersd-test-full";
    full_vfs.szOsFile = (int)sizeof(struct full_file) + base->szOsFile;
    full_vfs.xOpen = full_open;
    sqlite3_vfs_register(&full_vfs, 1); /* the default from now on */
}

#define USERS 30000
#define JOBS 30000

static void batch_on_a_full_disk(struct fixture *f)
{
    struct usersd_err err = {0};
    assert_int_equal(usersd_seed(f->u, USERS, "password1", &err), USERSD_OK);
    /* the last connection's close checkpoints and removes the WAL: it
     * starts empty when reopened */
    assert_int_equal(fixture_open(f, 0, 0), 0);
    static int64_t ids[JOBS];
    static int rc[JOBS];
    for (int i = 0; i < JOBS; i++) /* every user: more than the 2 MiB cache holds, so it spills */
        ids[i] = 1 + i;
    wal_limit = 1024 * 1024; /* the disk has room for 1 MiB of WAL, less than the batch */
    assert_int_equal(usersd_batch_begin(f->u, &err), USERSD_OK);
    int failed = 0;
    for (int i = 0; i < JOBS; i++) {
        struct usersd_user u;
        rc[i] = usersd_set_status(f->u, ids[i], USERSD_AWAY, &u, &err);
        failed += rc[i] != USERSD_OK;
    }
    bool committed = usersd_batch_commit(f->u, &err) == USERSD_OK;
    wal_limit = -1;
    assert_true(failed > 0); /* the spill did hit the full disk, before the commit */
    /* What the writer would acknowledge: applied jobs of a committed batch. */
    assert_int_equal(fixture_open(f, 0, 0), 0);
    int lost = 0;
    for (int i = 0; i < JOBS; i++) {
        if (rc[i] != USERSD_OK || !committed) continue;
        struct usersd_user u;
        assert_int_equal(usersd_get_status(f->u, ids[i], &u, &err), USERSD_OK);
        lost += u.online_status != USERSD_AWAY;
    }
    assert_int_equal(lost, 0);
}

static void disk_full(void **state)
{
    fault = SQLITE_FULL;
    batch_on_a_full_disk(*state);
}

/* An I/O error (EIO, or the WAL index that cannot grow) makes SQLite roll
 * the whole transaction back whatever the statement. */
static void io_error(void **state)
{
    fault = SQLITE_IOERR_WRITE;
    batch_on_a_full_disk(*state);
}

int main(void)
{
    install_vfs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(disk_full, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(io_error, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
