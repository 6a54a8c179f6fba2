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
    "  --login-max-failures N   failed logins allowed per client address and username in\n"
    "                           10 minutes (5 N per address); then 429 until the window\n"
    "                           passes (USERSD_LOGIN_MAX_FAILURES; default 10)\n"
    "  --trusted-proxy CIDR     a reverse proxy (10.0.0.0/8, 2001:db8::/32, 127.0.0.1):\n"
    "                           for requests from it the client is taken from\n"
    "                           X-Forwarded-For (repeatable or comma-separated;\n"
    "                           USERSD_TRUSTED_PROXY)\n"
    "  --max-connections N      open connections at most; more are refused "
    "(USERSD_MAX_CONNECTIONS;\n"
    "                           default: what the open-file limit allows, less a reserve)\n"
    "  --max-connections-per-ip N  open connections per client address at most, trusted\n"
    "                           proxies excepted (USERSD_MAX_CONNECTIONS_PER_IP; default 256)\n"
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
    struct opt_list origins = {0}, proxies = {0};
    int64_t login_max_failures = 10, max_conns = 0, max_conns_ip = 256;
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
        {"login-max-failures", OPT_INT, "USERSD_LOGIN_MAX_FAILURES", &login_max_failures, 1,
         1000000},
        {"trusted-proxy", OPT_LIST, "USERSD_TRUSTED_PROXY", &proxies, 0, 0},
        {"max-connections", OPT_INT, "USERSD_MAX_CONNECTIONS", &max_conns, 1, 10000000},
        {"max-connections-per-ip", OPT_INT, "USERSD_MAX_CONNECTIONS_PER_IP", &max_conns_ip, 1,
         10000000},
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
    cfg.login_max_failures = (int)login_max_failures;
    cfg.max_connections = (long)max_conns;
    cfg.max_connections_per_ip = (long)max_conns_ip;
    for (int i = 0; i < proxies.n; i++) { /* each item may hold a comma-separated list */
        for (const char *p = proxies.items[i], *end;; p = end + 1) {
            end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            while (n && (*p == ' ' || *p == '\t'))
                p++, n--;
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (cfg.n_proxies == SERVER_MAX_PROXIES)
                return opts_fail("serve", "too many --trusted-proxy CIDRs (at most %d)",
                                 SERVER_MAX_PROXIES);
            if (!cidr_parse(p, n, &cfg.trusted_proxies[cfg.n_proxies++]))
                return opts_fail("serve",
                                 "--trusted-proxy must be an address or CIDR such as 10.0.0.0/8 "
                                 "or 2001:db8::/32, not '%.*s'",
                                 (int)n, p);
            if (!end) break;
        }
    }
    /* Migrate first, here, where a long migration shows its progress on a
     * terminal; the server then opens a current database. */
    struct usersd *u = cli_open("serve", cfg.db_url);
    if (!u) return 1;
    usersd_close(u);
    return server_run(&cfg);
}
