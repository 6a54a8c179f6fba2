/* users.c — user CRUD, the management list and statistics, and the
 * validation rules every face shares (API.md §6 "Limits"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

void usersd_user_fields_init(struct usersd_user_fields *f)
{
    memset(f, 0, sizeof *f);
    f->is_active = -1;
    f->is_staff = -1;
}

void usersd_list_query_init(struct usersd_list_query *q)
{
    memset(q, 0, sizeof *q);
    q->online_status = -1;
    q->is_active = -1;
    q->is_staff = -1;
    q->order = USERSD_ORDER_ID;
    q->page = 1;
    q->per_page = USERSD_PER_PAGE_DEFAULT;
}

static bool username_ok(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("@.+-_", c)))
            return false;
    }
    return true;
}

/* "valid-looking": one @, a non-empty local part, a dotted domain, no
 * spaces or control characters. Deliverability is the mail server's call. */
static bool email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@')) return false;
    const char *domain = at + 1;
    const char *dot = strrchr(domain, '.');
    if (!dot || dot == domain || !dot[1] || domain[0] == '.' || strstr(domain, "..")) return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f) return false;
    return true;
}

enum usersd_code users_validate(const struct usersd_user_fields *f, bool creating,
                                struct usersd_err *err)
{
    if (creating && !f->username) return err_field(err, "username", "username is required");
    if (f->username) {
        size_t n = strlen(f->username);
        if (n < 1 || n > USERSD_USERNAME_MAX)
            return err_field(err, "username", "username must be 1 to 150 characters");
        if (!username_ok(f->username))
            return err_field(err, "username",
                             "username may contain only letters, digits and @.+-_");
    }
    if (creating && !f->password) return err_field(err, "password", "password is required");
    if (f->password) {
        size_t n = utf8_len(f->password);
        if (n < USERSD_PASSWORD_MIN || n > USERSD_PASSWORD_MAX)
            return err_field(err, "password", "password must be 8 to 1024 characters");
    }
    if (f->email && *f->email) {
        if (utf8_len(f->email) > USERSD_EMAIL_MAX)
            return err_field(err, "email", "email must be at most 254 characters");
        if (!email_ok(f->email)) return err_field(err, "email", "enter a valid email address");
    }
    if (f->first_name && utf8_len(f->first_name) > USERSD_NAME_MAX)
        return err_field(err, "first_name", "first_name must be at most 150 characters");
    if (f->last_name && utf8_len(f->last_name) > USERSD_NAME_MAX)
        return err_field(err, "last_name", "last_name must be at most 150 characters");
    return USERSD_OK;
}

#define SET_TEXT(dst, src)                                                                         \
    do {                                                                                           \
        if (src) snprintf((dst), sizeof(dst), "%s", (src));                                        \
    } while (0)

static void apply_fields(struct usersd_user *u, const struct usersd_user_fields *f)
{
    SET_TEXT(u->username, f->username);
    SET_TEXT(u->email, f->email);
    SET_TEXT(u->first_name, f->first_name);
    SET_TEXT(u->last_name, f->last_name);
    if (f->is_active >= 0) u->is_active = f->is_active;
    if (f->is_staff >= 0) u->is_staff = f->is_staff;
}

enum usersd_code usersd_user_create(struct usersd *u, const struct usersd_user_fields *f,
                                    struct usersd_user *out, struct usersd_err *err)
{
    enum usersd_code rc = users_validate(f, true, err);
    if (rc) return rc;
    char hash[PASSWORD_HASH_MAX];
    rc = password_hash(f->password, hash, err);
    if (rc) return rc;
    struct usersd_user nu = {.is_active = true,
                             .online_status = USERSD_OFFLINE,
                             .last_seen = USERSD_NULL_TIME,
                             .date_joined = usersd_now(u)};
    apply_fields(&nu, f);
    rc = u->store->ops->user_insert(u->store, &nu, hash, err);
    sodium_memzero(hash, sizeof hash);
    if (!rc && out) *out = nu;
    return rc;
}

enum usersd_code usersd_user_get(struct usersd *u, int64_t id, struct usersd_user *out,
                                 struct usersd_err *err)
{
    enum usersd_code rc = u->store->ops->user_get(u->store, id, out, err);
    if (!rc) messages_fresh(u, out, 1);
    return rc;
}

enum usersd_code usersd_user_update(struct usersd *u, int64_t id,
                                    const struct usersd_user_fields *f, struct usersd_user *out,
                                    struct usersd_err *err)
{
    return usersd_user_update_keep(u, id, f, 0, out, err);
}

enum usersd_code usersd_user_update_keep(struct usersd *u, int64_t id,
                                         const struct usersd_user_fields *f, int64_t keep_session,
                                         struct usersd_user *out, struct usersd_err *err)
{
    enum usersd_code rc = users_validate(f, false, err);
    if (rc) return rc;
    struct usersd_user cur;
    rc = u->store->ops->user_get(u->store, id, &cur, err);
    if (rc) return rc;
    char hash[PASSWORD_HASH_MAX];
    if (f->password) {
        rc = password_hash(f->password, hash, err);
        if (rc) return rc;
    }
    apply_fields(&cur, f);
    struct store_session_end end = {.user_id = id,
                                    .keep_id = keep_session,
                                    .now = usersd_now(u),
                                    .active_after = sessions_active_after(u)};
    rc = u->store->ops->user_update(u->store, &cur, f->password ? hash : NULL, &end, err);
    sodium_memzero(hash, sizeof hash);
    if (rc) return rc;
    /* Re-read: presence may have moved meanwhile and the caller shows it. */
    return out ? usersd_user_get(u, id, out, err) : USERSD_OK;
}

enum usersd_code usersd_user_delete(struct usersd *u, int64_t id, struct usersd_err *err)
{
    return u->store->ops->user_delete(u->store, id, usersd_now(u), err);
}

enum usersd_code usersd_user_count(struct usersd *u, int64_t *out, struct usersd_err *err)
{
    return u->store->ops->user_count(u->store, out, err);
}

static void page_bounds(int *page, int *per_page)
{
    if (*page < 1) *page = 1;
    if (*per_page < 1) *per_page = USERSD_PER_PAGE_DEFAULT;
    if (*per_page > USERSD_PER_PAGE_MAX) *per_page = USERSD_PER_PAGE_MAX;
}

enum usersd_code usersd_user_list(struct usersd *u, const struct usersd_list_query *q,
                                  struct usersd_page *out, struct usersd_err *err)
{
    struct usersd_list_query v = *q;
    memset(out, 0, sizeof *out);
    if (v.search && utf8_len(v.search) > USERSD_SEARCH_MAX)
        return err_field(err, "search", "search must be at most 200 characters");
    if ((unsigned)v.order > USERSD_ORDER_LAST_SEEN)
        return err_field(err, "ordering", "unknown ordering");
    if (v.online_status > USERSD_ONLINE)
        return err_field(err, "online_status", "online_status must be online, away or offline");
    page_bounds(&v.page, &v.per_page);
    out->page = v.page;
    out->per_page = v.per_page;
    out->total_count = -1; /* the driver counts */
    if (!(v.search && *v.search) &&
        (v.online_status >= 0) + (v.is_active >= 0) + (v.is_staff >= 0) <= 1) {
        /* No search and at most one filter: the trigger-kept counters know
         * the total, where counting would walk every matching index entry
         * (20 ms for the 800,000 offline users of a million). */
        struct usersd_stats st;
        enum usersd_code rc = usersd_stats(u, &st, err);
        if (rc) return rc;
        if (v.online_status == USERSD_ONLINE)
            out->total_count = st.online_users;
        else if (v.online_status == USERSD_AWAY)
            out->total_count = st.away_users;
        else if (v.online_status == USERSD_OFFLINE)
            out->total_count = st.offline_users;
        else if (v.is_active >= 0)
            out->total_count = v.is_active ? st.active_users : st.inactive_users;
        else if (v.is_staff >= 0)
            out->total_count = v.is_staff ? st.staff_users : st.total_users - st.staff_users;
        else
            out->total_count = st.total_users;
    }
    enum usersd_code rc = u->store->ops->user_list(u->store, &v, out, err);
    if (!rc) messages_fresh(u, out->users, out->count);
    return rc;
}

enum usersd_code usersd_online_users(struct usersd *u, int page, int per_page,
                                     struct usersd_page *out, struct usersd_err *err)
{
    memset(out, 0, sizeof *out);
    page_bounds(&page, &per_page);
    out->page = page;
    out->per_page = per_page;
    enum usersd_code rc = u->store->ops->online_page(u->store, page, per_page, out, err);
    if (!rc) messages_fresh(u, out->users, out->count);
    return rc;
}

enum usersd_code usersd_users_by_ids(struct usersd *u, const int64_t *ids, size_t n,
                                     struct usersd_page *out, struct usersd_err *err)
{
    memset(out, 0, sizeof *out);
    if (n > USERSD_PER_PAGE_MAX) return err_field(err, "ids", "at most 100 ids may be asked");
    int64_t uniq[USERSD_PER_PAGE_MAX];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < m && uniq[j] != ids[i])
            j++;
        if (j == m) uniq[m++] = ids[i];
    }
    out->users = calloc(m ? m : 1, sizeof *out->users);
    if (!out->users) return err_set(err, USERSD_ENOMEM, NULL);
    size_t found = 0;
    enum usersd_code rc = u->store->ops->users_by_ids(u->store, uniq, m, out->users, &found, err);
    if (rc) {
        usersd_page_free(out);
        return rc;
    }
    /* Put them back in the order asked. */
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = k; j < found; j++)
            if (out->users[j].id == uniq[i]) {
                struct usersd_user t = out->users[k];
                out->users[k] = out->users[j];
                out->users[j] = t;
                k++;
                break;
            }
    out->count = found;
    messages_fresh(u, out->users, found);
    out->total_count = (int64_t)found;
    out->page = 1;
    out->per_page = (int)(m ? m : 1);
    return USERSD_OK;
}

enum usersd_code usersd_stats(struct usersd *u, struct usersd_stats *out, struct usersd_err *err)
{
    memset(out, 0, sizeof *out);
    enum usersd_code rc = u->store->ops->stats(u->store, out, err);
    if (rc) return rc;
    out->inactive_users = out->total_users - out->active_users;
    out->offline_users = out->total_users - out->online_users - out->away_users;
    out->online_ratio =
        out->total_users ? round(out->online_users * 10000.0 / out->total_users) / 100.0 : 0.0;
    return USERSD_OK;
}

enum usersd_code usersd_seed(struct usersd *u, int64_t n, const char *password,
                             struct usersd_err *err)
{
    if (n < 1 || n > 100000000) return err_field(err, "users", "users must be 1 to 100000000");
    struct usersd_user_fields f;
    usersd_user_fields_init(&f);
    f.username = "seed";
    f.password = password;
    enum usersd_code rc = users_validate(&f, true, err);
    if (rc) return rc;
    char hash[PASSWORD_HASH_MAX];
    rc = password_hash(password, hash, err); /* once, shared by all */
    if (!rc) rc = copy_seed(u, n, hash, err);
    return rc;
}
