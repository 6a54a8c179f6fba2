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

static void put2(char *o, unsigned v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    memcpy(o, pairs + 2 * v, 2);
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
    /* The common case by hand: it runs twice per user in every list. The
     * date parts of the last 64 days seen are kept per thread (a page's
     * times fall on a few days), the rest is two digits at a time. */
    static _Thread_local struct {
        int64_t days;
        char text[11];
    } dates[64];
    static _Thread_local bool dates_init;
    if (!dates_init) {
        for (int i = 0; i < 64; i++)
            dates[i].days = INT64_MIN;
        dates_init = true;
    }
    int64_t *last_days = &dates[(uint64_t)days % 64].days;
    char *last_date = dates[(uint64_t)days % 64].text;
    if (days != *last_days || size < USERSD_TIME_LEN + 1) {
        int64_t y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        if (y < 0 || y > 9999 || size < USERSD_TIME_LEN + 1) {
            snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ", (long long)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (long long)us);
            return;
        }
        put2(last_date, (unsigned)(y / 100));
        put2(last_date + 2, (unsigned)(y % 100));
        last_date[4] = '-';
        put2(last_date + 5, m);
        last_date[7] = '-';
        put2(last_date + 8, d);
        last_date[10] = 'T';
        *last_days = days;
    }
    memcpy(buf, last_date, 11);
    char *o = buf + 11;
    put2(o, (unsigned)(rem / 3600));
    o[2] = ':';
    put2(o + 3, (unsigned)(rem / 60 % 60));
    o[5] = ':';
    put2(o + 6, (unsigned)(rem % 60));
    o[8] = '.';
    unsigned u = (unsigned)us;
    put2(o + 9, u / 10000);
    put2(o + 11, u / 100 % 100);
    put2(o + 13, u % 100);
    o[15] = 'Z';
    o[16] = 0;
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

/* RFC 3339 section 5.6's date-time: "YYYY-MM-DDTHH:MM:SS", an optional
 * fraction of 1 to 9 digits (cut to microseconds), then "Z" or an offset
 * "+HH:MM" / "-HH:MM"; "T" and "Z" in either case. Leap seconds (60) and
 * anything the grammar does not give are refused. */
bool usersd_time_parse(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, us = 0, off = 0;
    if (!s) return false;
    size_t len = strlen(s), i = 19;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return false;
    if (s[i] == '.') {
        int n = 0;
        for (i++; s[i] >= '0' && s[i] <= '9'; i++, n++)
            if (n < 6) us = us * 10 + (s[i] - '0');
        if (n == 0 || n > 9) return false;
        for (; n < 6; n++)
            us *= 10;
    }
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        off = 0;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
    } else {
        return false;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return false;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    /* Local time minus the offset is UTC. */
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)off * 60;
    *out = secs * 1000000 + us;
    return true;
}
