/* opts.c — argv and USERSD_* environment into option targets, the same way
 * for every subcommand: a flag on the command line beats the environment. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "render.h"

int opts_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "usersd %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'usersd %s --help')\n", cmd);
    return 2;
}

static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!*s) return false;
    int64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') return false;
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (*c - '0');
    }
    if (v < min || v > max) return false;
    *out = v;
    return true;
}

/* Where a value came from; a later source replaces an earlier one. */
enum { SRC_FILE = 1, SRC_ENV, SRC_ARGV };

static int set(const char *cmd, const struct opt *o, const char *value, const char *from, int src)
{
    switch (o->kind) {
    case OPT_STR:
        *(const char **)o->target = value;
        break;
    case OPT_INT:
        if (!parse_int(value, o->min, o->max, (int64_t *)o->target))
            return opts_fail(cmd, "%s%s must be a whole number from %lld to %lld, not '%s'", from,
                             o->name, (long long)o->min, (long long)o->max, value);
        break;
    case OPT_FLAG: {
        bool on = !strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes");
        if (!on && strcmp(value, "0") && strcmp(value, "false") && strcmp(value, "no") &&
            strcmp(value, ""))
            return opts_fail(cmd, "%s%s must be true or false, not '%s'", from, o->name, value);
        *(bool *)o->target = on;
        break;
    }
    case OPT_LIST: {
        struct opt_list *l = o->target;
        if (l->src != src) { /* flags replace the file's list, not add to it */
            l->n = 0;
            l->src = src;
        }
        if (l->n == OPT_LIST_MAX) return opts_fail(cmd, "too many --%s options", o->name);
        l->items[l->n++] = value;
        break;
    }
    }
    return -1;
}

/* The config file's text; values point into it until exit. */
static char *g_config_text;

static void free_config(void)
{
    free(g_config_text);
}

static const struct opt *find(const struct opt *opts, const char *name, size_t nlen)
{
    for (const struct opt *o = opts; o->name; o++)
        if (strlen(o->name) == nlen && !strncmp(o->name, name, nlen)) return o;
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* `key = value` lines with the flags' names; # starts a comment. */
static int load_config(const char *cmd, const char *path, const struct opt *opts)
{
    FILE *f = fopen(path, "r");
    if (!f) return opts_fail(cmd, "cannot read --config '%s': %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    size_t n;
    while (text && (n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *t = cap < (1 << 20) ? realloc(text, cap *= 2) : NULL;
            if (!t) free(text);
            text = t;
        }
    }
    fclose(f);
    if (!text) return opts_fail(cmd, "--config '%s' is too large", path);
    text[len] = 0;
    free(g_config_text);
    g_config_text = text;
    int lineno = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *l = trim(line);
        if (!*l) continue;
        char *eq = strchr(l, '=');
        if (!eq) return opts_fail(cmd, "%s:%d: expected 'key = value'", path, lineno);
        *eq = 0;
        char *key = trim(l), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = 0;
            value++;
        }
        const struct opt *o = find(opts, key, strlen(key));
        if (!o || !strcmp(key, "config"))
            return opts_fail(cmd, "%s:%d: unknown key '%s'", path, lineno, key);
        char from[300];
        snprintf(from, sizeof from, "%s:%d: ", path, lineno);
        int rc = set(cmd, o, value, from, SRC_FILE);
        if (rc >= 0) return rc;
    }
    return -1;
}

int opts_parse(const char *cmd, const char *usage, const struct opt *opts, int argc, char **argv,
               char **pos, int maxpos, int *npos)
{
    *npos = 0;
    static bool registered;
    if (!registered) {
        atexit(free_config);
        registered = true;
    }
    /* Precedence: flag > environment > config file > default. */
    const struct opt *cfg = find(opts, "config", 6);
    if (cfg) {
        const char *path = cfg->env ? getenv(cfg->env) : NULL;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[i + 1];
            if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
        }
        if (path && *path) {
            int rc = load_config(cmd, path, opts);
            if (rc >= 0) return rc;
        }
    }
    for (const struct opt *o = opts; o->name; o++) {
        const char *v = o->env ? getenv(o->env) : NULL;
        if (v && *v && o != cfg) {
            char from[64];
            snprintf(from, sizeof from, "%s for --", o->env);
            int rc = set(cmd, o, v, from, SRC_ENV);
            if (rc >= 0) return rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (*npos == maxpos) return opts_fail(cmd, "unexpected argument '%s'", a);
            pos[(*npos)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find(opts, name, nlen);
        if (!o) return opts_fail(cmd, "unknown option '--%.*s'", (int)nlen, name);
        const char *value;
        if (o->kind == OPT_FLAG && !eq) {
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return opts_fail(cmd, "--%s needs a value", o->name);
            value = argv[++i];
        }
        if (o == cfg) continue; /* already read */
        int rc = set(cmd, o, value, "--", SRC_ARGV);
        if (rc >= 0) return rc;
    }
    return -1;
}

int opts_user_id(const char *cmd, const char *text, int64_t *out)
{
    int64_t id;
    if (!parse_int(text, 1, INT32_MAX, &id))
        return opts_fail(cmd, "USER_ID must be a whole number from 1 to 2147483647, not '%s'",
                         text);
    *out = id;
    return 0;
}

int opts_check_db(const char *cmd, const char *url)
{
    if (!url || !*url) return opts_fail(cmd, "--db is required (or USERSD_DB)");
    if (!strncmp(url, "sqlite:", 7) && url[7]) return 0;
    if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
#ifdef USERSD_WITH_PG
        return 0;
#else
        return opts_fail(cmd, "this usersd was built without PostgreSQL (libpq)");
#endif
    }
    return opts_fail(cmd, "--db must be sqlite:PATH or postgresql://user:pass@host:port/dbname");
}

struct usersd *cli_open(const char *cmd, const char *db)
{
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.db_url = db;
    progress_setup(&cfg, cmd);
    struct usersd *u;
    struct usersd_err err = {0};
    enum usersd_code rc = usersd_open(&u, &cfg, &err);
    progress_end();
    if (rc) {
        cli_error(cmd, &err);
        return NULL;
    }
    return u;
}

int cli_print(json_t *obj)
{
    char *s = obj ? json_dumps(obj, RENDER_DUMP_FLAGS) : NULL;
    json_decref(obj);
    return cli_print_text(s);
}

int cli_print_text(char *s)
{
    if (!s) {
        fprintf(stderr, "usersd: out of memory\n");
        return 1;
    }
    puts(s);
    free(s);
    return fflush(stdout) == 0 ? 0 : 1;
}

int cli_error(const char *cmd, const struct usersd_err *err)
{
    fprintf(stderr, "usersd %s: %s\n", cmd, err->msg[0] ? err->msg : usersd_strerror(err->code));
    return 1;
}
