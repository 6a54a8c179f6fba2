/* cli.h — the command line face: option parsing shared by every
 * subcommand, and one entry point per subcommand. */
#ifndef USERSD_CLI_H
#define USERSD_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "usersd.h"

enum opt_kind { OPT_STR, OPT_INT, OPT_FLAG, OPT_LIST };

#define OPT_LIST_MAX 16
struct opt_list {
    const char *items[OPT_LIST_MAX];
    int n;
    int src; /* which source filled it (a later one replaces it) */
};

/* One option: --name VALUE (or --name=VALUE), read first from env when set.
 * target is const char ** (STR), int64_t * (INT, within min..max), bool *
 * (FLAG) or struct opt_list * (LIST, repeatable). */
struct opt {
    const char *name;
    enum opt_kind kind;
    const char *env;
    void *target;
    int64_t min, max;
};

/* Reads an option named "config" (a `key = value` file with the other
 * options' names) first, then the environment, then argv (argv[0] is the subcommand). Positional
 * arguments go to pos (at most maxpos). Returns -1 to go on, else the exit
 * code: 0 after --help, 2 after one line on stderr about a bad option. */
int opts_parse(const char *cmd, const char *usage, const struct opt *opts, int argc, char **argv,
               char **pos, int maxpos, int *npos);
/* Prints "usersd CMD: msg" and returns 2 (a usage error). */
int opts_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads a USER_ID argument; prints and returns 2 when it is not one. */
int opts_user_id(const char *cmd, const char *text, int64_t *out);
/* Checks a database URL's form; prints and returns 2 when wrong, else 0. */
int opts_check_db(const char *cmd, const char *url);

/* Opens the database; prints the reason and returns NULL on failure.
 * Migrations show their progress on a terminal (progress.c). */
struct usersd *cli_open(const char *cmd, const char *db);

/* Progress on a terminal (progress.c): when stderr is one, cfg's progress
 * callback draws the library's reports for command cmd (a static string)
 * as one line rewritten in place; otherwise nothing is set or drawn. */
void progress_setup(struct usersd_config *cfg, const char *cmd);
/* Clears the line (before a summary or an error is printed). */
void progress_end(void);
/* Prints obj (stolen) as one line of JSON on stdout; returns 0, or 1. */
int cli_print(json_t *obj);
/* Prints text (malloc'd, taken; NULL means out of memory) as one line. */
int cli_print_text(char *text);
/* Prints "usersd CMD: reason" for a failed call; returns 1. */
int cli_error(const char *cmd, const struct usersd_err *err);

int cmd_serve(int argc, char **argv);
int cmd_createuser(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_online(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_routes(int argc, char **argv);
int cmd_seed(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_message(int argc, char **argv);
int cmd_dnd(int argc, char **argv);

#endif
