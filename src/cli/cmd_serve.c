/* cmd_serve.c — `usersd serve`: options into the server's configuration. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "server.h"

static const char usage[] =
    "usage: usersd serve [options]\n"
    "\n"
    "Serves the HTTP/JSON API and the web dashboard until SIGTERM or SIGINT (in-flight\n"
    "requests finish).\n"
    "\n"
    "  --listen HOST:PORT       address to listen on (USERSD_LISTEN; default 127.0.0.1:8000;\n"
    "                           port 0 picks a free port, logged on start)\n"
    "  --db URL                 sqlite:PATH or postgresql://user:pass@host:port/dbname\n"
    "                           (USERSD_DB; default sqlite:usersd.db)\n"
    "  --threads N              worker threads (USERSD_THREADS; default: one per core)\n"
    "  --away-after S           online users idle S seconds become away (USERSD_AWAY_AFTER;\n"
    "                           default 600; 0 off)\n"
    "  --offline-after S        online/away users idle S seconds become offline\n"
    "                           (USERSD_OFFLINE_AFTER; default 3600; 0 off)\n"
    "  --activity-interval S    a user already online is marked seen (last_seen, a\n"
    "                           session's last_used) at most once per S seconds by\n"
    "                           requests, heartbeats and open streams\n"
    "                           (USERSD_ACTIVITY_INTERVAL; default 60; 0: every time)\n"
    "  --session-ttl S          a session unused for S seconds expires\n"
    "                           (USERSD_SESSION_TTL; default 2592000 = 30 days; 0 never)\n"
    "  --history-days N         keep every status change as presence history for N days\n"
    "                           (USERSD_HISTORY_DAYS; default 30; 0 keeps none)\n"
    "  --cookie-secure          mark the session cookie Secure (behind HTTPS)\n"
    "  --trusted-origin ORIGIN  also accept cookie-authenticated writes from ORIGIN\n"
    "                           (scheme://host[:port]; repeatable)\n"
    "  --log-format text|json   access and error log format (USERSD_LOG_FORMAT; default text)\n"
    "  --config FILE            read options from FILE, `key = value` lines with the names\n"
    "                           above (listen = 127.0.0.1:8000); a flag beats the\n"
    "                           environment, which beats the file (USERSD_CONFIG)\n"
    "  --no-dashboard           do not serve the web dashboard at / and /dashboard/\n"
    "                           (USERSD_NO_DASHBOARD)\n"
    "\n"
    "When the database has no user and USERSD_ADMIN_PASSWORD is set, a staff user\n"
    "'admin' (or USERSD_ADMIN_USERNAME) is created with that password.\n";

int cmd_serve(int argc, char **argv)
{
    struct server_config cfg = {.listen = "127.0.0.1:8000",
                                .db_url = "sqlite:usersd.db",
                                .away_after_s = 600,
                                .offline_after_s = 3600,
                                .activity_interval_s = 60,
                                .session_ttl_s = 2592000,
                                .history_days = 30};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t threads = cores > 0 ? cores : 1;
    struct opt_list origins = {0};
    const char *config = NULL, *log_format = "text";
    const struct opt opts[] = {
        {"listen", OPT_STR, "USERSD_LISTEN", &cfg.listen, 0, 0},
        {"db", OPT_STR, "USERSD_DB", &cfg.db_url, 0, 0},
        {"threads", OPT_INT, "USERSD_THREADS", &threads, 1, 1024},
        {"away-after", OPT_INT, "USERSD_AWAY_AFTER", &cfg.away_after_s, 0, INT32_MAX},
        {"offline-after", OPT_INT, "USERSD_OFFLINE_AFTER", &cfg.offline_after_s, 0, INT32_MAX},
        {"activity-interval", OPT_INT, "USERSD_ACTIVITY_INTERVAL", &cfg.activity_interval_s, 0,
         INT32_MAX},
        {"session-ttl", OPT_INT, "USERSD_SESSION_TTL", &cfg.session_ttl_s, 0, INT32_MAX},
        {"history-days", OPT_INT, "USERSD_HISTORY_DAYS", &cfg.history_days, 0, 36500},
        {"cookie-secure", OPT_FLAG, NULL, &cfg.cookie_secure, 0, 0},
        {"trusted-origin", OPT_LIST, NULL, &origins, 0, 0},
        {"log-format", OPT_STR, "USERSD_LOG_FORMAT", &log_format, 0, 0},
        {"config", OPT_STR, "USERSD_CONFIG", &config, 0, 0},
        {"no-dashboard", OPT_FLAG, "USERSD_NO_DASHBOARD", &cfg.no_dashboard, 0, 0},
        {0},
    };
    int npos, rc = opts_parse("serve", usage, opts, argc, argv, NULL, 0, &npos);
    if (rc >= 0) return rc;
    const char *colon = strrchr(cfg.listen, ':');
    if (!colon || colon == cfg.listen || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
        return opts_fail("serve", "--listen must be HOST:PORT, not '%s'", cfg.listen);
    if (opts_check_db("serve", cfg.db_url)) return 2;
    if (strcmp(log_format, "text") && strcmp(log_format, "json"))
        return opts_fail("serve", "--log-format must be text or json, not '%s'", log_format);
    cfg.log_json = !strcmp(log_format, "json");
    for (int i = 0; i < origins.n; i++) {
        if (strncmp(origins.items[i], "http://", 7) && strncmp(origins.items[i], "https://", 8))
            return opts_fail("serve", "--trusted-origin must be http(s)://host[:port], not '%s'",
                             origins.items[i]);
        cfg.trusted_origins[i] = origins.items[i];
    }
    cfg.n_trusted = origins.n;
    cfg.threads = (int)threads;
    return server_run(&cfg);
}
