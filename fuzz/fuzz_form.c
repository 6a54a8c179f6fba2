/* fuzz_form.c — application/x-www-form-urlencoded bodies into a JSON object
 * of strings (API.md §2), then into typed fields as the handlers read
 * them. Invariants: a raw NUL byte is refused; every accepted name is
 * non-empty UTF-8 without NUL, every value a string without NUL; encoding
 * the object again (every byte %XX, a space as '+') and parsing that gives
 * the same object; a field read as a boolean is OK only for true, false,
 * 1 or 0, as a whole number only for an optional '-' and digits. */
#include "fuzz.h"
#include "parse.h"

/* The object as a form body, every byte but letters and digits escaped. */
static char *encode(json_t *obj, size_t *len)
{
    size_t cap = 64, n = 0;
    char *out = malloc(cap);
    CHECK(out != NULL);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        const char *parts[2] = {k, json_string_value(v)};
        size_t lens[2] = {strlen(k), json_string_length(v)};
        while (n + 3 * (lens[0] + lens[1]) + 3 > cap) {
            out = realloc(out, cap *= 2);
            CHECK(out != NULL);
        }
        if (n) out[n++] = '&';
        for (int p = 0; p < 2; p++) {
            if (p) out[n++] = '=';
            for (size_t i = 0; i < lens[p]; i++) {
                unsigned char c = (unsigned char)parts[p][i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                    out[n++] = (char)c;
                else if (c == ' ')
                    out[n++] = '+';
                else
                    n += (size_t)snprintf(out + n, cap - n, "%%%02X", c);
            }
        }
    }
    *len = n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    json_t *obj = parse_form(s, size);
    if (memchr(s, 0, size)) CHECK(obj == NULL);
    if (!obj) return 0;
    CHECK(json_is_object(obj));
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        CHECK(k[0] != 0 && parse_utf8_valid(k, strlen(k)));
        CHECK(json_is_string(v));
        CHECK(!memchr(json_string_value(v), 0, json_string_length(v)));
        const char *str = NULL;
        CHECK(parse_field_str(obj, k, &str) == PARSE_FIELD_OK && str == json_string_value(v));
        int b = -1;
        enum parse_field f = parse_field_bool(obj, k, true, &b);
        int want = parse_bool(str, strlen(str));
        CHECK(f == (want < 0 ? PARSE_FIELD_WRONG_TYPE : PARSE_FIELD_OK));
        if (want >= 0) CHECK(b == want);
        /* a JSON body's boolean is never a string */
        CHECK(parse_field_bool(obj, k, false, &b) == PARSE_FIELD_WRONG_TYPE);
        /* a whole number: an optional '-', then digits within int64 (the
         * value checked by printing it back) */
        int64_t n = 0;
        f = parse_field_int(obj, k, true, &n);
        size_t len = strlen(str);
        bool minus = len && str[0] == '-';
        bool want_int = fuzz_decimal_fits(str + minus, len - minus, "9223372036854775807");
        CHECK(f == (want_int ? PARSE_FIELD_OK : PARSE_FIELD_WRONG_TYPE));
        if (want_int) {
            char back[24];
            snprintf(back, sizeof back, "%lld", (long long)n);
            const char *digits = str + minus;
            while (digits[0] == '0' && digits[1]) /* leading zeros */
                digits++;
            CHECK(!strcmp(back + (n < 0), digits) && (n < 0) == (minus && n != 0));
        }
    }
    size_t len = 0;
    char *again = encode(obj, &len);
    json_t *back = parse_form(again, len);
    CHECK(back != NULL && json_equal(back, obj));
    json_decref(back);
    free(again);
    json_decref(obj);
    return 0;
}
