/* fuzz_auth.c — the Authorization header and the token's shape (API.md §2:
 * "Token <key>" or "Bearer <key>"; the usersd_session cookie's value goes
 * through the same shape check). Invariants: an accepted header is the
 * scheme in any case, spaces, then the key, which lies inside the input,
 * runs to its end and starts with no space; "Token " + key parses back to
 * the same key; a key of the right shape is exactly 64 lower-case hex
 * digits, and no other string has that shape. */
#include "fuzz.h"
#include "parse.h"
#include "usersd.h"

static bool word_nocase(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
        if (c != w[i]) return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *key = NULL;
    size_t key_len = 0;
    bool ok = parse_authorization(s, size, &key, &key_len);
    const char *sp = memchr(s, ' ', size);
    size_t word = sp ? (size_t)(sp - s) : size;
    CHECK(ok == (sp && (word_nocase(s, word, "token") || word_nocase(s, word, "bearer"))));
    if (ok) {
        CHECK(key >= s + word + 1 && key + key_len == s + size);
        for (const char *c = s + word; c < key; c++)
            CHECK(*c == ' ');
        CHECK(key_len == 0 || key[0] != ' ');
        char *again = malloc(key_len + 7);
        CHECK(again != NULL);
        memcpy(again, "Token ", 6);
        memcpy(again + 6, key, key_len);
        const char *k2 = NULL;
        size_t k2_len = 0;
        CHECK(parse_authorization(again, key_len + 6, &k2, &k2_len));
        CHECK(k2_len == key_len && memcmp(k2, key, key_len) == 0);
        free(again);
    }
    /* the shape, of the key and of the raw input (a cookie's value) */
    for (int pass = 0; pass < 2; pass++) {
        const char *t = pass ? s : key;
        size_t n = pass ? size : key_len;
        if (!t) continue;
        bool shape = parse_token_shape(t, n);
        bool want = n == USERSD_TOKEN_LEN;
        for (size_t i = 0; i < n && want; i++)
            want = (t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f');
        CHECK(shape == want);
    }
    return 0;
}
