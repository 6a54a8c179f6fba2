/* fuzz_json.c — JSON bodies (API.md §6: one object, no repeated name, at
 * most 32 levels deep, strict types, no NUL in strings), then into typed
 * fields as the handlers read them. Invariants: an accepted body is an
 * object no deeper than 32 (counted here on its own); dumping and parsing
 * it again gives an equal object; a refused one comes with a message that
 * is valid UTF-8 (it goes into a JSON reply); a string field is OK only
 * when it is a string without NUL, a boolean only when JSON true/false,
 * a whole number only when a JSON integer. */
#include "fuzz.h"
#include "parse.h"

static int depth(json_t *v)
{
    int d = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            int c = depth(x);
            if (c > d) d = c;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            int c = depth(x);
            if (c > d) d = c;
        }
        return d + 1;
    }
    return 0;
}

static void check_fields(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    const char *s = NULL;
    enum parse_field f = parse_field_str(obj, name, &s);
    if (!v)
        CHECK(f == PARSE_FIELD_ABSENT && s == NULL);
    else if (!json_is_string(v))
        CHECK(f == PARSE_FIELD_WRONG_TYPE && s == NULL);
    else if (strlen(json_string_value(v)) != json_string_length(v))
        CHECK(f == PARSE_FIELD_NUL && s == NULL);
    else
        CHECK(f == PARSE_FIELD_OK && s == json_string_value(v));
    int b = -1;
    f = parse_field_bool(obj, name, false, &b);
    if (!v)
        CHECK(f == PARSE_FIELD_ABSENT && b == -1);
    else if (json_is_boolean(v))
        CHECK(f == PARSE_FIELD_OK && b == json_is_true(v));
    else
        CHECK(f == PARSE_FIELD_WRONG_TYPE && b == -1);
    int64_t n = -7;
    f = parse_field_int(obj, name, false, &n);
    if (!v)
        CHECK(f == PARSE_FIELD_ABSENT && n == -7);
    else if (json_is_integer(v))
        CHECK(f == PARSE_FIELD_OK && n == json_integer_value(v));
    else
        CHECK(f == PARSE_FIELD_WRONG_TYPE && n == -7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256] = "";
    json_t *obj = parse_json_object((const char *)data, size, msg, sizeof msg);
    if (!obj) {
        CHECK(msg[0] != 0 && parse_utf8_valid(msg, strlen(msg)));
        json_t *reply = json_string(msg); /* what render_error does with it */
        CHECK(reply != NULL);
        json_decref(reply);
        return 0;
    }
    CHECK(json_is_object(obj) && depth(obj) <= PARSE_JSON_DEPTH_MAX);
    static const char *const names[] = {"username",  "password",   "email",     "first_name",
                                        "last_name", "is_staff",   "is_active", "status",
                                        "text",      "expires_at", "expires_in"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_fields(obj, names[i]);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        check_fields(obj, k);
    }
    char *text = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK(text != NULL);
    json_t *back = parse_json_object(text, strlen(text), msg, sizeof msg);
    CHECK(back != NULL && json_equal(back, obj));
    json_decref(back);
    free(text);
    json_decref(obj);
    return 0;
}
