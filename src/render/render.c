/* render.c — JSON of users, pages, statuses and statistics: the hot shapes
 * written straight to text, the rest built with jansson. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

/* Users are the bulk of every list (50 per page), so their JSON is written
 * straight into one buffer: measured at 1/5 of the cost of building jansson
 * objects and dumping them. This is the only place the user shape is
 * written; render_user() parses it back for the replies that embed one. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static bool reserve(struct sbuf *b, size_t n)
{
    if (b->oom) return false;
    if (b->len + n + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

static void put(struct sbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* lit must be a string literal ("" lit does not compile otherwise): sizeof
 * of a pointer would silently cut the text. */
#define PUTS(b, lit) put((b), "" lit, sizeof(lit) - 1)

/* Digits by hand: snprintf cost more than the rest of a user's JSON. */
static void put_int(struct sbuf *b, int64_t v)
{
    char tmp[24], *o = tmp + sizeof tmp;
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--o = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0) *--o = '-';
    put(b, o, (size_t)(tmp + sizeof tmp - o));
}

/* A JSON string: quotes, backslashes and control characters escaped; UTF-8
 * passes through (as jansson writes it). */
static void put_str(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    if (!reserve(b, n * 6 + 2)) return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        } else if (*c < 0x20) {
            *o++ = '\\';
            switch (*c) {
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[*c >> 4];
                *o++ = hex[*c & 15];
            }
        } else {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    *o = 0;
    b->len = (size_t)(o - b->p);
}

static void put_time(struct sbuf *b, int64_t t)
{
    if (t == USERSD_NULL_TIME) {
        PUTS(b, "null");
        return;
    }
    char tmp[USERSD_TIME_LEN + 3];
    tmp[0] = '"';
    usersd_time_format(t, tmp + 1, USERSD_TIME_LEN + 1);
    tmp[USERSD_TIME_LEN + 1] = '"';
    put(b, tmp, USERSD_TIME_LEN + 2);
}

static void put_bool(struct sbuf *b, bool v)
{
    if (v)
        PUTS(b, "true");
    else
        PUTS(b, "false");
}

/* {"text", "expires_at"} or null. */
static void put_message(struct sbuf *b, const char *text, int64_t expires)
{
    if (!text[0]) {
        PUTS(b, "null");
        return;
    }
    PUTS(b, "{\"text\":");
    put_str(b, text);
    PUTS(b, ",\"expires_at\":");
    put_time(b, expires);
    PUTS(b, "}");
}

/* Do not disturb: {"until": ts|null} or null (API.md §12). */
static void put_dnd(struct sbuf *b, bool on, int64_t until)
{
    if (!on) {
        PUTS(b, "null");
        return;
    }
    PUTS(b, "{\"until\":");
    put_time(b, until);
    PUTS(b, "}");
}

static void put_user(struct sbuf *b, const struct usersd_user *u, struct render_viewer v)
{
    PUTS(b, "{\"id\":");
    put_int(b, u->id);
    PUTS(b, ",\"username\":");
    put_str(b, u->username);
    if (v.staff || v.id == u->id) {
        PUTS(b, ",\"email\":");
        put_str(b, u->email);
    }
    PUTS(b, ",\"first_name\":");
    put_str(b, u->first_name);
    PUTS(b, ",\"last_name\":");
    put_str(b, u->last_name);
    PUTS(b, ",\"is_active\":");
    put_bool(b, u->is_active);
    PUTS(b, ",\"is_staff\":");
    put_bool(b, u->is_staff);
    PUTS(b, ",\"date_joined\":");
    put_time(b, u->date_joined);
    PUTS(b, ",\"online_status\":\"");
    const char *st = usersd_status_name(u->online_status);
    put(b, st, strlen(st));
    PUTS(b, "\",\"last_seen\":");
    put_time(b, u->last_seen);
    PUTS(b, ",\"is_online\":");
    put_bool(b, usersd_user_is_online(u));
    PUTS(b, ",\"status_message\":");
    put_message(b, u->status_text, u->status_expires);
    /* Whether a status is manual is the user's own business (and staff's):
     * to anyone else, invisible is offline, down to the keys. */
    if (v.staff || v.id == u->id) {
        PUTS(b, ",\"status_manual\":");
        put_bool(b, u->status_manual);
    }
    PUTS(b, ",\"dnd\":");
    put_dnd(b, u->dnd, u->dnd_until);
    PUTS(b, "}");
}

static void put_pagination(struct sbuf *b, const struct usersd_page *p)
{
    int64_t pages = usersd_page_total_pages(p);
    PUTS(b, "{\"page\":");
    put_int(b, p->page);
    PUTS(b, ",\"per_page\":");
    put_int(b, p->per_page);
    PUTS(b, ",\"total_pages\":");
    put_int(b, pages);
    PUTS(b, ",\"total_count\":");
    put_int(b, p->total_count);
    PUTS(b, ",\"has_next\":");
    put_bool(b, p->page < pages);
    PUTS(b, ",\"has_previous\":");
    put_bool(b, p->page > 1);
    PUTS(b, "}");
}

static char *finish(struct sbuf *b, size_t *len)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (len) *len = b->len;
    return b->p;
}

static void put_users(struct sbuf *b, const struct usersd_page *p, struct render_viewer v)
{
    reserve(b, 400 * p->count + 256); /* a user is ~290 bytes: one allocation */
    PUTS(b, "[");
    for (size_t i = 0; i < p->count; i++) {
        if (i) PUTS(b, ",");
        put_user(b, &p->users[i], v);
    }
    PUTS(b, "]");
}

char *render_online_page_text(const struct usersd_page *p, struct render_viewer v, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"online_users\":");
    put_users(&b, p, v);
    PUTS(&b, ",\"online_count\":");
    put_int(&b, p->total_count);
    PUTS(&b, ",\"pagination\":");
    put_pagination(&b, p);
    PUTS(&b, "}");
    return finish(&b, len);
}

char *render_user_list_text(const struct usersd_page *p, struct render_viewer v, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"users\":");
    put_users(&b, p, v);
    PUTS(&b, ",\"pagination\":");
    put_pagination(&b, p);
    PUTS(&b, "}");
    return finish(&b, len);
}

/* The presence replies are what clients call the most (a status read, a
 * heartbeat, a set), so they too are written straight to text: jansson's
 * object building and dumping was a third of a status GET's instructions
 * (callgrind). Each shape is written here only; the json_t forms parse it
 * back for the command line and for lists that embed one. */
/* What a status object says beyond the status: its do not disturb, or
 * (NULL) nothing (the heartbeat's reply). */
struct dnd_view {
    bool on;
    int64_t until;
};

static void put_presence(struct sbuf *b, int64_t id, const char *username,
                         enum usersd_status status, int64_t last_seen, int64_t seq,
                         const struct dnd_view *dnd)
{
    PUTS(b, "{\"user_id\":");
    put_int(b, id);
    if (username) {
        PUTS(b, ",\"username\":");
        put_str(b, username);
    }
    PUTS(b, ",\"online_status\":\"");
    const char *st = usersd_status_name(status);
    put(b, st, strlen(st));
    PUTS(b, "\",\"last_seen\":");
    put_time(b, last_seen);
    PUTS(b, ",\"is_online\":");
    put_bool(b, status == USERSD_ONLINE);
    if (seq >= 0) {
        PUTS(b, ",\"seq\":");
        put_int(b, seq);
    }
    if (dnd) {
        PUTS(b, ",\"dnd\":");
        put_dnd(b, dnd->on, dnd->until);
    }
    PUTS(b, "}");
}

/* A status object (with_name), or the heartbeat's reply (without). */
static void put_status_fields(struct sbuf *b, const struct usersd_user *u, bool with_name)
{
    struct dnd_view d = {u->dnd, u->dnd_until};
    put_presence(b, u->id, with_name ? u->username : NULL, u->online_status, u->last_seen, -1,
                 with_name ? &d : NULL);
}

/* A logged change as a status object (seq < 0: without its seq). */
static void put_change(struct sbuf *b, const struct usersd_change *c, int64_t seq)
{
    struct dnd_view d = {c->dnd, c->dnd_until};
    put_presence(b, c->user_id, c->username, c->online_status, c->last_seen, seq, &d);
}

char *render_status_text(const struct usersd_user *u, size_t *len)
{
    struct sbuf b = {0};
    put_status_fields(&b, u, true);
    return finish(&b, len);
}

char *render_heartbeat_text(const struct usersd_user *u, size_t *len)
{
    struct sbuf b = {0};
    put_status_fields(&b, u, false);
    return finish(&b, len);
}

char *render_status_set_text(const struct usersd_user *u, size_t *len)
{
    struct sbuf b = {0};
    const char *st = usersd_status_name(u->online_status);
    PUTS(&b, "{\"message\":\"User online status updated to ");
    put(&b, st, strlen(st));
    PUTS(&b, "\",\"user_id\":");
    put_int(&b, u->id);
    PUTS(&b, ",\"online_status\":\"");
    put(&b, st, strlen(st));
    PUTS(&b, "\",\"last_seen\":");
    put_time(&b, u->last_seen);
    /* set by the user themself or staff: the only ones who may know */
    PUTS(&b, ",\"status_manual\":");
    put_bool(&b, u->status_manual);
    PUTS(&b, "}");
    return finish(&b, len);
}

/* A text reply as a jansson value (it owns nothing of text). */
static json_t *parse_back(char *text, size_t len)
{
    json_t *o = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    return o;
}

json_t *render_user(const struct usersd_user *u, struct render_viewer v)
{
    struct sbuf b = {0};
    put_user(&b, u, v);
    size_t len = 0;
    char *text = finish(&b, &len);
    return parse_back(text, len);
}

json_t *render_status(const struct usersd_user *u)
{
    size_t len = 0;
    char *text = render_status_text(u, &len);
    return parse_back(text, len);
}

json_t *render_status_set(const struct usersd_user *u)
{
    size_t len = 0;
    char *text = render_status_set_text(u, &len);
    return parse_back(text, len);
}

char *render_statuses_text(const struct usersd_page *p, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"statuses\":[");
    for (size_t i = 0; i < p->count; i++) {
        if (i) PUTS(&b, ",");
        put_status_fields(&b, &p->users[i], true);
    }
    PUTS(&b, "]}");
    return finish(&b, len);
}

json_t *render_stats(const struct usersd_stats *s)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "total_users",
                     (json_int_t)s->total_users, "active_users", (json_int_t)s->active_users,
                     "inactive_users", (json_int_t)s->inactive_users, "staff_users",
                     (json_int_t)s->staff_users, "online_users", (json_int_t)s->online_users,
                     "away_users", (json_int_t)s->away_users, "offline_users",
                     (json_int_t)s->offline_users, "online_ratio", s->online_ratio);
}

json_t *render_error(const struct usersd_err *err)
{
    json_t *o = json_pack("{s:s}", "error", err->msg[0] ? err->msg : usersd_strerror(err->code));
    if (o && err->field[0])
        json_object_set_new(o, "fields", json_pack("{s:s}", err->field, err->msg));
    return o;
}

char *render_change_text(const struct usersd_change *c, size_t *len)
{
    struct sbuf b = {0};
    put_change(&b, c, -1);
    return finish(&b, len);
}

char *render_changes_text(const struct usersd_changes *c, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"changes\":[");
    for (size_t i = 0; i < c->count; i++) {
        const struct usersd_change *e = &c->items[i];
        if (i) PUTS(&b, ",");
        put_change(&b, e, e->seq);
    }
    PUTS(&b, "],\"next_since\":");
    put_int(&b, c->next_since);
    PUTS(&b, "}");
    return finish(&b, len);
}

char *render_sessions_text(const struct usersd_sessions *s, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"sessions\":[");
    for (size_t i = 0; i < s->count; i++) {
        const struct usersd_session *x = &s->items[i];
        if (i) PUTS(&b, ",");
        PUTS(&b, "{\"id\":");
        put_int(&b, x->id);
        PUTS(&b, ",\"created\":");
        put_time(&b, x->created);
        PUTS(&b, ",\"last_used\":");
        put_time(&b, x->last_used);
        PUTS(&b, ",\"user_agent\":");
        put_str(&b, x->user_agent);
        PUTS(&b, ",\"client_ip\":");
        put_str(&b, x->client_ip);
        PUTS(&b, ",\"current\":");
        put_bool(&b, x->current);
        PUTS(&b, "}");
    }
    PUTS(&b, "]}");
    return finish(&b, len);
}

char *render_message_text(const struct usersd_user *u, size_t *len)
{
    struct sbuf b = {0};
    put_message(&b, u->status_text, u->status_expires);
    return finish(&b, len);
}

char *render_message_event_text(const struct usersd_change *c, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"user_id\":");
    put_int(&b, c->user_id);
    PUTS(&b, ",\"username\":");
    put_str(&b, c->username);
    PUTS(&b, ",\"status_message\":");
    put_message(&b, c->status_text, c->status_expires);
    PUTS(&b, "}");
    return finish(&b, len);
}

char *render_dnd_text(const struct usersd_user *u, size_t *len)
{
    struct sbuf b = {0};
    put_dnd(&b, u->dnd, u->dnd_until);
    return finish(&b, len);
}

char *render_dnd_event_text(const struct usersd_change *c, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"user_id\":");
    put_int(&b, c->user_id);
    PUTS(&b, ",\"username\":");
    put_str(&b, c->username);
    PUTS(&b, ",\"dnd\":");
    put_dnd(&b, c->dnd, c->dnd_until);
    PUTS(&b, "}");
    return finish(&b, len);
}

/* Seconds from microseconds, as a JSON number with up to 6 decimals. */
static void put_seconds(struct sbuf *b, int64_t us)
{
    put_int(b, us / 1000000);
    int64_t frac = us % 1000000;
    if (!frac) return;
    char d[8] = ".000000";
    for (int i = 6; i >= 1; i--, frac /= 10)
        d[i] = (char)('0' + frac % 10);
    size_t n = 7;
    while (d[n - 1] == '0')
        n--;
    put(b, d, n);
}

static const char *interval_name(int status)
{
    return status == USERSD_UNKNOWN ? "unknown" : usersd_status_name((enum usersd_status)status);
}

char *render_history_text(const struct usersd_history *h, size_t *len)
{
    struct sbuf b = {0};
    PUTS(&b, "{\"user_id\":");
    put_int(&b, h->user_id);
    PUTS(&b, ",\"from\":");
    put_time(&b, h->from);
    PUTS(&b, ",\"to\":");
    put_time(&b, h->to);
    PUTS(&b, ",\"intervals\":[");
    for (size_t i = 0; i < h->count; i++) {
        const char *st = interval_name(h->items[i].status);
        if (i) PUTS(&b, ",");
        PUTS(&b, "{\"status\":\"");
        put(&b, st, strlen(st));
        PUTS(&b, "\",\"from\":");
        put_time(&b, h->items[i].from);
        PUTS(&b, ",\"to\":");
        put_time(&b, h->items[i].to);
        PUTS(&b, "}");
    }
    PUTS(&b, "],\"totals\":{\"online\":");
    put_seconds(&b, h->totals[USERSD_ONLINE]);
    PUTS(&b, ",\"away\":");
    put_seconds(&b, h->totals[USERSD_AWAY]);
    PUTS(&b, ",\"offline\":");
    put_seconds(&b, h->totals[USERSD_OFFLINE]);
    PUTS(&b, ",\"unknown\":");
    put_seconds(&b, h->totals[3]);
    PUTS(&b, "}}");
    return finish(&b, len);
}

static void put_count(struct sbuf *b, bool known, int64_t v)
{
    if (known)
        put_int(b, v);
    else
        PUTS(b, "null");
}

char *render_online_history_text(const struct usersd_online_history *h, size_t *len)
{
    static const struct {
        int64_t s;
        const char *name;
    } names[] = {{60, "1m"}, {300, "5m"}, {3600, "1h"}, {86400, "1d"}};
    const char *bucket = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].s == h->bucket_s) bucket = names[i].name;
    struct sbuf b = {0};
    reserve(&b, 128 * h->count + 128);
    PUTS(&b, "{\"from\":");
    put_time(&b, h->from);
    PUTS(&b, ",\"to\":");
    put_time(&b, h->to);
    PUTS(&b, ",\"bucket\":");
    put_str(&b, bucket);
    PUTS(&b, ",\"points\":[");
    for (size_t i = 0; i < h->count; i++) {
        const struct usersd_count_point *p = &h->points[i];
        if (i) PUTS(&b, ",");
        PUTS(&b, "{\"at\":");
        put_time(&b, p->at);
        PUTS(&b, ",\"online\":");
        put_count(&b, p->known, p->online);
        PUTS(&b, ",\"away\":");
        put_count(&b, p->known, p->away);
        PUTS(&b, ",\"offline\":");
        put_count(&b, p->known, p->offline);
        PUTS(&b, ",\"online_max\":");
        put_count(&b, p->known, p->online_max);
        PUTS(&b, "}");
    }
    PUTS(&b, "]}");
    return finish(&b, len);
}
