/* timefmt.c — RFC 3339 UTC timestamps with microseconds, without the C
 * library's time zone state (gmtime_r/timegm are avoided so the conversion
 * is pure arithmetic: thread-safe and the same on every machine). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void usersd_time_format(int64_t t, char *buf, size_t size)
{
    int64_t secs = t / 1000000, us = t % 1000000;
    if (us < 0) {
        us += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || size < USERSD_TIME_LEN + 1) {
        snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ", (long long)y, m, d,
                 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (long long)us);
        return;
    }
    /* The common case by hand: it runs twice per user in every list. */
    unsigned f[] = {(unsigned)y,         m, d, (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60),
                    (unsigned)(rem % 60)};
    static const unsigned width[] = {4, 2, 2, 2, 2, 2};
    static const char sep[] = "--T::.";
    char *o = buf;
    for (int i = 0; i < 6; i++) {
        for (unsigned w = width[i]; w-- > 0; f[i] /= 10)
            o[w] = (char)('0' + f[i] % 10);
        o += width[i];
        *o++ = sep[i];
    }
    unsigned u = (unsigned)us;
    for (int w = 6; w-- > 0; u /= 10)
        o[w] = (char)('0' + u % 10);
    o[6] = 'Z';
    o[7] = 0;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool usersd_time_parse(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, us;
    if (!s || strlen(s) != USERSD_TIME_LEN) return false;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[26] != 'Z')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se) ||
        !digits(s + 20, 6, &us))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return false;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out = ((days * 86400 + h * 3600 + mi * 60 + se) * 1000000) + us;
    return true;
}
