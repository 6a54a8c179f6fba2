/* usersd.c — the handle: configuration defaults, open/close, the clock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "internal.h"

static int64_t real_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void usersd_config_init(struct usersd_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->db_url = "sqlite:usersd.db";
    cfg->away_after_s = 600;
    cfg->offline_after_s = 3600;
    cfg->activity_interval_s = 60;
    cfg->changes_retention_s = 3600;
    cfg->clock = real_clock;
    cfg->session_ttl_s = 2592000;
    cfg->history_days = 30;
}

enum usersd_code usersd_open(struct usersd **out, const struct usersd_config *cfg,
                             struct usersd_err *err)
{
    *out = NULL;
    /* sodium_init is idempotent and thread-safe; it seeds the CSPRNG. */
    if (sodium_init() < 0) return err_set(err, USERSD_EINTERNAL, "cannot initialise libsodium");
    struct usersd *u = calloc(1, sizeof *u);
    if (!u) return err_set(err, USERSD_ENOMEM, NULL);
    u->cfg = *cfg;
    u->cfg.db_url = NULL; /* borrowed only for the call */
    if (!u->cfg.clock) u->cfg.clock = real_clock;
    struct store_progress progress = {cfg->progress, cfg->progress_ctx, USERSD_TASK_MIGRATE};
    enum usersd_code rc = store_open(&u->store, cfg->db_url, &progress, err);
    if (rc) {
        free(u);
        return rc;
    }
    u->store->history = u->cfg.history_days > 0;
    if ((cfg->cache_kib > 0 && u->store->ops->set_cache &&
         (rc = u->store->ops->set_cache(u->store, cfg->cache_kib, err))) ||
        (cfg->checkpoint_apart && u->store->ops->checkpoint &&
         (rc = u->store->ops->checkpoint(u->store, CHECKPOINT_APART, NULL, err)))) {
        usersd_close(u);
        return rc;
    }
    *out = u;
    return USERSD_OK;
}

enum usersd_code usersd_checkpoint(struct usersd *u, int64_t *wal_frames, int64_t *left,
                                   struct usersd_err *err)
{
    int64_t frames[2] = {0, 0};
    enum usersd_code rc = USERSD_OK;
    if (u->store->ops->checkpoint)
        rc = u->store->ops->checkpoint(u->store, CHECKPOINT_NOW, frames, err);
    if (wal_frames) *wal_frames = frames[0];
    if (left) *left = frames[1];
    return rc;
}

void usersd_close(struct usersd *u)
{
    if (!u) return;
    store_close(u->store);
    free(u);
}

int64_t usersd_now(const struct usersd *u)
{
    return u->cfg.clock(u->cfg.clock_ctx);
}

enum usersd_code usersd_ping(struct usersd *u, struct usersd_err *err)
{
    return u->store->ops->ping(u->store, err);
}

enum usersd_code usersd_db_check(struct usersd *u, int timeout_ms, struct usersd_err *err)
{
    const struct store_ops *ops = u->store->ops;
    return ops->check ? ops->check(u->store, timeout_ms, err) : ops->ping(u->store, err);
}

void usersd_page_free(struct usersd_page *p)
{
    if (!p) return;
    free(p->users);
    p->users = NULL;
    p->count = 0;
}

int64_t usersd_page_total_pages(const struct usersd_page *p)
{
    if (p->per_page <= 0 || p->total_count <= 0) return 1;
    return (p->total_count + p->per_page - 1) / p->per_page;
}

enum usersd_code usersd_batch_begin(struct usersd *u, struct usersd_err *err)
{
    return u->store->ops->batch(u->store, BATCH_BEGIN, err);
}

enum usersd_code usersd_batch_commit(struct usersd *u, struct usersd_err *err)
{
    return u->store->ops->batch(u->store, BATCH_COMMIT, err);
}

void usersd_batch_rollback(struct usersd *u)
{
    u->store->ops->batch(u->store, BATCH_ROLLBACK, NULL);
}

enum usersd_code usersd_read_begin(struct usersd *u, struct usersd_err *err)
{
    return u->store->ops->read_scope ? u->store->ops->read_scope(u->store, true, err) : USERSD_OK;
}

void usersd_read_end(struct usersd *u)
{
    if (u->store->ops->read_scope) u->store->ops->read_scope(u->store, false, NULL);
}

void usersd_read_hint(struct usersd *u, int64_t user_id)
{
    if (u->store->ops->read_hint) u->store->ops->read_hint(u->store, user_id);
}

enum usersd_code usersd_data_version(struct usersd *u, uint64_t *version, struct usersd_err *err)
{
    if (!u->store->ops->data_version)
        return err_set(err, USERSD_EINVAL, "this database cannot report its version");
    return u->store->ops->data_version(u->store, version, err);
}
