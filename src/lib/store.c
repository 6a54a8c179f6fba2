/* store.c — the driver list: a database URL's scheme picks the driver. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct store_ops *const drivers[] = {
    &store_sqlite_ops,
#ifdef USERSD_WITH_PG
    &store_pg_ops,
#endif
};

static bool scheme_is(const char *url, const char *scheme)
{
    size_t n = scheme ? strlen(scheme) : 0;
    return n && strncmp(url, scheme, n) == 0 && url[n] == ':';
}

enum usersd_code store_open(struct store **out, const char *url,
                            const struct store_progress *progress, struct usersd_err *err)
{
    *out = NULL;
    if (!url || !*url) return err_set(err, USERSD_EINVAL, "no database URL given");
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
        const struct store_ops *d = drivers[i];
        const char *scheme = scheme_is(url, d->scheme)  ? d->scheme
                             : scheme_is(url, d->alias) ? d->alias
                                                        : NULL;
        if (scheme)
            return d->open(out, d->full_url ? url : url + strlen(scheme) + 1, progress, err);
    }
    return err_set(err, USERSD_EINVAL,
                   "unsupported database URL '%.100s' (expected sqlite:PATH or "
                   "postgresql://user:pass@host:port/dbname)",
                   url);
}

void store_close(struct store *s)
{
    if (s) s->ops->close(s);
}

void store_progress(const struct store_progress *p, const char *step, int64_t done, int64_t total)
{
    if (!p || !p->fn) return;
    struct usersd_progress r = {p->task, step, done, total};
    p->fn(p->ctx, &r);
}

char *store_like_pattern(const char *search)
{
    size_t n = strlen(search);
    char *p = malloc(2 * n + 3), *o = p;
    if (!p) return NULL;
    *o++ = '%';
    for (const char *c = search; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\') *o++ = '\\';
        *o++ = *c;
    }
    *o++ = '%';
    *o = 0;
    return p;
}
