/* error.c — the error table's messages and statuses, and the fillers every
 * module uses so a failure always carries a sentence for the caller. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const struct {
    int status;
    const char *msg;
} table[] = {
#define X(name, status, msg) {status, msg},
    USERSD_ERRORS(X)
#undef X
};

const char *usersd_strerror(enum usersd_code code)
{
    if ((unsigned)code >= USERSD_NCODES) return "unknown error";
    return table[code].msg;
}

int usersd_http_status(enum usersd_code code)
{
    if ((unsigned)code >= USERSD_NCODES) return 500;
    return table[code].status;
}

static enum usersd_code vset(struct usersd_err *err, enum usersd_code code, const char *field,
                             const char *fmt, va_list ap)
{
    if (!err) return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    if (fmt)
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    else
        snprintf(err->msg, sizeof err->msg, "%s", usersd_strerror(code));
    return code;
}

enum usersd_code err_set(struct usersd_err *err, enum usersd_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

enum usersd_code err_field(struct usersd_err *err, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, USERSD_EINVAL, field, fmt, ap);
    va_end(ap);
    return USERSD_EINVAL;
}
