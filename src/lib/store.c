/* store.c — the driver list: a database URL's scheme picks the driver. */
#include <string.h>

#include "internal.h"

static const struct store_ops *const drivers[] = {
    &store_sqlite_ops,
};

enum usersd_code store_open(struct store **out, const char *url, struct usersd_err *err)
{
    *out = NULL;
    if (!url || !*url) return err_set(err, USERSD_EINVAL, "no database URL given");
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
        size_t n = strlen(drivers[i]->scheme);
        if (strncmp(url, drivers[i]->scheme, n) == 0 && url[n] == ':')
            return drivers[i]->open(out, url + n + 1, err);
    }
    return err_set(err, USERSD_EINVAL, "unsupported database URL '%.100s' (expected sqlite:PATH)",
                   url);
}

void store_close(struct store *s)
{
    if (s) s->ops->close(s);
}
