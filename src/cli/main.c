/* main.c — `usersd <subcommand>`: picks the subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"serve", cmd_serve, "serve the HTTP API"},
    {"createuser", cmd_createuser, "create a user (password on stdin)"},
    {"migrate", cmd_migrate, "create or upgrade the database schema"},
    {"status", cmd_status, "print or set one user's online status"},
    {"online", cmd_online, "print the online users page"},
    {"stats", cmd_stats, "print user statistics"},
    {"copy", cmd_copy, "copy users, sessions and history into another, empty database"},
    {"seed", cmd_seed, "add many synthetic users (load tests, benchmarks)"},
    {"sessions", cmd_sessions, "list or revoke one user's sessions (logins, devices)"},
    {"message", cmd_message, "print, set or clear one user's status message"},
    {"dnd", cmd_dnd, "print, turn on or turn off one user's do not disturb"},
    {"history", cmd_history, "print one user's presence history"},
    {"routes", cmd_routes, "print the HTTP route table (for checks against the OpenAPI document)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: usersd <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\n'usersd <command> --help' describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("usersd " USERSD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "usersd: unknown command '%s' (see 'usersd --help')\n", argv[1]);
    return 2;
}
