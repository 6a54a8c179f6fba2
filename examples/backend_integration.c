/* backend_integration.c — the seed's "Backend Integration" example in C:
 *
 *   result = UserManagementService.set_user_online_status(user_id=1, status='online')
 *   status_info = UserManagementService.get_user_online_status(user_id=1)
 *   online_users = UserManagementService.get_online_users(page=1, per_page=50)
 *
 * Usage: backend_integration [DATABASE_URL]   (default sqlite:example.db)
 * Creates user 1 when the database is empty, so it runs on a fresh file. */
#include <stdio.h>

#include <usersd.h>

int main(int argc, char **argv)
{
    struct usersd_config cfg;
    usersd_config_init(&cfg);
    cfg.db_url = argc > 1 ? argv[1] : "sqlite:example.db";

    struct usersd *u = NULL;
    struct usersd_err err = {0};
    if (usersd_open(&u, &cfg, &err)) goto fail;

    int64_t count;
    if (usersd_user_count(u, &count, &err)) goto fail;
    if (count == 0) {
        struct usersd_user_fields f;
        usersd_user_fields_init(&f);
        f.username = "john_doe";
        f.email = "john@example.com";
        f.password = "correct horse battery";
        if (usersd_user_create(u, &f, NULL, &err)) goto fail;
    }

    /* Set status */
    struct usersd_user result;
    if (usersd_set_status(u, 1, USERSD_ONLINE, &result, &err)) goto fail;
    char seen[USERSD_TIME_LEN + 1];
    usersd_time_format(result.last_seen, seen, sizeof seen);
    printf("set: user %lld is %s (last_seen %s)\n", (long long)result.id,
           usersd_status_name(result.online_status), seen);

    /* Get status */
    struct usersd_user info;
    if (usersd_get_status(u, 1, &info, &err)) goto fail;
    printf("get: %s is %s, is_online=%s\n", info.username, usersd_status_name(info.online_status),
           usersd_user_is_online(&info) ? "true" : "false");

    /* Get all online users */
    struct usersd_page page;
    if (usersd_online_users(u, 1, 50, &page, &err)) goto fail;
    printf("online: %lld user(s) online, %lld page(s)\n", (long long)page.total_count,
           (long long)usersd_page_total_pages(&page));
    for (size_t i = 0; i < page.count; i++)
        printf("  - %s\n", page.users[i].username);
    usersd_page_free(&page);

    usersd_close(u);
    return 0;
fail:
    fprintf(stderr, "backend_integration: %s\n", err.msg);
    usersd_close(u);
    return 1;
}
