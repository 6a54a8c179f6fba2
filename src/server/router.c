/* router.c — routes are data: one row per method and path. 404, 405 with
 * Allow, the optional trailing slash and the auth level all come from this
 * table, never from handlers. */
#include <string.h>

#include "server.h"

static const struct route routes[] = {
    {"POST", "/api/auth/login/", h_login, AUTH_NONE, true, false},
    {"POST", "/api/auth/logout/", h_logout, AUTH_USER, false, false},
    {"POST", "/api/auth/logout-all/", h_logout_all, AUTH_USER, false, false},
    {"POST", "/api/users/admin/users/{id}/set-online-status/", h_set_status, AUTH_SELF_OR_STAFF,
     true, false},
    {"GET", "/api/users/admin/users/{id}/online-status/", h_get_status, AUTH_USER, false, false},
    {"GET", "/api/users/admin/users/{id}/presence-history/", h_presence_history, AUTH_SELF_OR_STAFF,
     false, false},
    {"GET", "/api/users/admin/users/online/", h_online, AUTH_USER, false, false},
    {"GET", "/api/users/admin/users/online-status/", h_bulk_status, AUTH_USER, false, false},
    {"GET", "/api/users/management/list/", h_list, AUTH_STAFF, false, false},
    {"GET", "/api/users/management/statistics/", h_stats, AUTH_STAFF, false, false},
    {"GET", "/api/users/management/statistics/history/", h_online_history, AUTH_STAFF, false,
     false},
    {"POST", "/api/users/management/users/", h_user_create, AUTH_STAFF, true, false},
    {"GET", "/api/users/management/users/{id}/", h_user_get, AUTH_STAFF, false, false},
    {"PATCH", "/api/users/management/users/{id}/", h_user_patch, AUTH_STAFF, true, false},
    {"DELETE", "/api/users/management/users/{id}/", h_user_delete, AUTH_STAFF, false, false},
    {"GET", "/api/users/management/users/{id}/sessions/", h_user_sessions, AUTH_STAFF, false,
     false},
    {"DELETE", "/api/users/management/users/{id}/sessions/", h_user_sessions_delete, AUTH_STAFF,
     false, false},
    {"PUT", "/api/users/management/users/{id}/status-message/", h_user_message_put, AUTH_STAFF,
     true, false},
    {"DELETE", "/api/users/management/users/{id}/status-message/", h_user_message_delete,
     AUTH_STAFF, false, false},
    {"PUT", "/api/users/management/users/{id}/dnd/", h_user_dnd_put, AUTH_STAFF, false, false},
    {"DELETE", "/api/users/management/users/{id}/dnd/", h_user_dnd_delete, AUTH_STAFF, false,
     false},
    {"GET", "/api/users/me/", h_me, AUTH_USER, false, false},
    {"POST", "/api/users/me/heartbeat/", h_heartbeat, AUTH_USER, false, true},
    {"POST", "/api/users/me/online-status/", h_me_status, AUTH_USER, true, true},
    {"GET", "/api/users/me/sessions/", h_my_sessions, AUTH_USER, false, false},
    {"DELETE", "/api/users/me/sessions/{id}/", h_my_session_delete, AUTH_USER, false, false},
    {"PUT", "/api/users/me/status-message/", h_my_message_put, AUTH_USER, true, false},
    {"DELETE", "/api/users/me/status-message/", h_my_message_delete, AUTH_USER, false, false},
    {"PUT", "/api/users/me/dnd/", h_my_dnd_put, AUTH_USER, false, false},
    {"DELETE", "/api/users/me/dnd/", h_my_dnd_delete, AUTH_USER, false, false},
    {"GET", "/api/users/presence/stream/", h_stream, AUTH_USER, false, false},
    {"GET", "/api/users/presence/changes/", h_changes, AUTH_USER, false, false},
    {"GET", "/metrics", h_metrics, AUTH_STAFF, false, false},
    {"GET", "/api/schema/", h_schema, AUTH_NONE, false, false},
    {"GET", "/healthz", h_healthz, AUTH_NONE, false, false},
    {"GET", "/readyz", h_readyz, AUTH_NONE, false, false},
    {"GET", "/client/usersd.js", h_client, AUTH_NONE, false, false},
    {"GET", "/client/usersd.d.ts", h_client, AUTH_NONE, false, false},
};

/* Matches path against pattern; the trailing slash is optional both ways. */
static bool path_match(const char *pattern, const char *path, int64_t *id)
{
    const char *p = pattern, *s = path;
    while (*p) {
        if (*p == '{' && strncmp(p, "{id}", 4) == 0) { /* one call per placeholder, not per byte */
            if (*s < '0' || *s > '9') return false;
            int64_t v = 0;
            bool overflow = false;
            for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (INT64_MAX - 9) / 10) overflow = true;
                if (!overflow) v = v * 10 + (*s - '0');
            }
            *id = overflow ? -1 : v;
            p += 4;
            continue;
        }
        if (*p != *s) {
            /* "/x/" matches "/x": only the final slash may be left out. */
            return *p == '/' && p[1] == 0 && *s == 0;
        }
        p++, s++;
    }
    /* "/healthz" also answers "/healthz/". */
    return *s == 0 || (s[0] == '/' && s[1] == 0 && p[-1] != '/');
}

const struct route *router_match(const char *method, const char *path, int64_t *id, int *status,
                                 char *allow, size_t allow_size)
{
    bool head = strcmp(method, "HEAD") == 0;
    bool path_known = false;
    size_t n = 0;
    allow[0] = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int64_t rid = 0;
        if (!path_match(routes[i].pattern, path, &rid)) continue;
        path_known = true;
        bool get = strcmp(routes[i].method, "GET") == 0;
        if (strcmp(routes[i].method, method) == 0 || (head && get)) {
            *id = rid;
            return &routes[i];
        }
        n += (size_t)snprintf(allow + n, n < allow_size ? allow_size - n : 0, "%s%s%s",
                              n ? ", " : "", routes[i].method, get ? ", HEAD" : "");
    }
    *status = path_known ? 405 : 404;
    return NULL;
}

int router_count(void)
{
    return (int)(sizeof routes / sizeof routes[0]);
}

const struct route *router_at(int i)
{
    return i >= 0 && i < router_count() ? &routes[i] : NULL;
}

int router_index(const struct route *r)
{
    return r ? (int)(r - routes) : -1;
}
