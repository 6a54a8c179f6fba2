/* utf8.c — the UTF-8 the library checks and counts (user fields, status
 * messages, User-Agents), in one place for every module. */
#include "internal.h"

size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* One UTF-8 sequence at s: its length (1-4), or 0 when it is not valid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) return *cp = s[0], 1;
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (!n || s[0] >= 0xf5) return 0;
    uint32_t v = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}
