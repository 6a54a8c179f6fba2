/* fuzz_route.c — route matching (router_match, the real table; linked with
 * the whole server, nothing else runs). The input is a method, a newline,
 * then a path (C strings, as MHD gives them). Invariants: a match has the
 * method asked (or GET for HEAD); adding or removing one trailing slash
 * finds the same route and id; a 404 is a 404 for every method; a 405
 * names in Allow only methods that match the path, never the one asked. */
#include "fuzz.h"
#include "server.h"

static const char *const methods[] = {"GET", "HEAD", "POST", "PATCH", "DELETE", "PUT"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char *nl = strchr(text, '\n');
    const char *method = "GET", *path = text;
    if (nl) {
        *nl = 0;
        method = text;
        path = nl + 1;
    }
    int64_t id = -2;
    int status = 0;
    char allow[128];
    const struct route *rt = router_match(method, path, &id, &status, allow, sizeof allow);
    if (rt) {
        CHECK(!strcmp(rt->method, method) ||
              (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET")));
        CHECK(strstr(rt->pattern, "{id}") ? id >= -1 : true);
        /* the other spelling of the trailing slash */
        size_t n = strlen(path);
        char *other = malloc(n + 2);
        CHECK(other != NULL);
        memcpy(other, path, n + 1);
        bool toggle = true;
        if (n >= 2 && path[n - 1] == '/' && path[n - 2] != '/')
            other[n - 1] = 0;
        else if (n >= 1 && path[n - 1] != '/')
            memcpy(other + n, "/", 2);
        else
            toggle = false;
        if (toggle) {
            int64_t id2 = -2;
            int st2 = 0;
            char allow2[128];
            CHECK(router_match(method, other, &id2, &st2, allow2, sizeof allow2) == rt);
            CHECK(id2 == id);
        }
        free(other);
    } else {
        CHECK(status == 404 || status == 405);
        for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
            int64_t id2;
            int st2 = 0;
            char allow2[128];
            const struct route *r2 =
                router_match(methods[m], path, &id2, &st2, allow2, sizeof allow2);
            bool listed = false;
            for (const char *a = allow; status == 405 && *a;) {
                size_t k = strcspn(a, ",");
                if (k == strlen(methods[m]) && !strncmp(a, methods[m], k)) listed = true;
                a += k;
                while (*a == ',' || *a == ' ')
                    a++;
            }
            if (status == 404) CHECK(r2 == NULL && st2 == 404);
            if (status == 405) CHECK(listed == (r2 != NULL));
        }
        if (status == 405) CHECK(allow[0] != 0);
    }
    free(text);
    return 0;
}
