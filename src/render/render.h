/* render.h — every JSON shape of API.md, made in one place so the server and
 * the CLI print exactly the same thing. Each function returns a new jansson
 * reference the caller owns (json_decref), or NULL when out of memory. */
#ifndef USERSD_RENDER_H
#define USERSD_RENDER_H

#include <jansson.h>

#include "usersd.h"

/* Who looks: email and status_manual are shown only to staff and to the
 * user themself. */
struct render_viewer {
    int64_t id;
    bool staff;
};
/* The operator at the command line sees everything. */
#define RENDER_OPERATOR ((struct render_viewer){.id = -1, .staff = true})

/* Flags for json_dumps so reals read as people write them (33.33). */
#define RENDER_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

json_t *render_user(const struct usersd_user *u, struct render_viewer v);
json_t *render_status(const struct usersd_user *u);
json_t *render_status_set(const struct usersd_user *u);
/* The two list pages, written straight to text (they are the hot paths):
 * a malloc'd NUL-terminated string the caller frees, *len its length (len
 * may be NULL); NULL when out of memory. */
char *render_online_page_text(const struct usersd_page *p, struct render_viewer v, size_t *len);
char *render_user_list_text(const struct usersd_page *p, struct render_viewer v, size_t *len);
/* The presence replies, the same way (render_status and friends parse these). */
char *render_status_text(const struct usersd_user *u, size_t *len);
char *render_heartbeat_text(const struct usersd_user *u, size_t *len);
char *render_status_set_text(const struct usersd_user *u, size_t *len);
/* {"statuses": [status...]} */
char *render_statuses_text(const struct usersd_page *p, size_t *len);
json_t *render_stats(const struct usersd_stats *s);
json_t *render_error(const struct usersd_err *err);
/* A logged change as the stream's data: user_id, username, online_status,
 * last_seen, is_online, dnd (text, as the presence replies). */
char *render_change_text(const struct usersd_change *c, size_t *len);
/* {"sessions": [{"id","created","last_used","user_agent","client_ip","current"}...]} */
char *render_sessions_text(const struct usersd_sessions *s, size_t *len);
/* A status message: {"text", "expires_at"}, or null when there is none. */
char *render_message_text(const struct usersd_user *u, size_t *len);
/* A status_message stream event's data: user_id, username, status_message. */
char *render_message_event_text(const struct usersd_change *c, size_t *len);
/* Do not disturb as PUT .../dnd/ answers it: {"until": ts|null}, or null
 * when it is off. */
char *render_dnd_text(const struct usersd_user *u, size_t *len);
/* A dnd stream event's data: user_id, username, dnd ({"until"} or null). */
char *render_dnd_event_text(const struct usersd_change *c, size_t *len);
/* {"user_id","from","to","intervals":[...],"totals":{...}} (API.md §9) */
char *render_history_text(const struct usersd_history *h, size_t *len);
/* {"from","to","bucket","points":[{"at","online","away","offline","online_max"}]} */
char *render_online_history_text(const struct usersd_online_history *h, size_t *len);
/* {"changes": [... with "seq"], "next_since": N} */
char *render_changes_text(const struct usersd_changes *c, size_t *len);

#endif
