/*
 * Small helpers shared by the subcommands: option values with range checks,
 * and one-line errors.  Every error goes to stderr as "nsimplex CMD: ..." and
 * maps to exit code 2.
 */
#ifndef NSX_CLI_ARGS_H
#define NSX_CLI_ARGS_H

#include <stdbool.h>

/* "nsimplex CMD: <message>" on stderr; returns NSX_EXIT_BAD. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct nsx_err;
/* "nsimplex CMD: <err's message>" on stderr; returns the exit code of the
   error's kind (cli/exit.h). */
int cli_fail_err(const char *cmd, const struct nsx_err *err);

/* True when argv[*i] is --name or --name=VALUE.  With a value expected, sets
   *val to it (from the same or the next argument, advancing *i) or, if it is
   missing, reports and sets *bad. */
bool cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
             const char **val, bool *bad);

/* Parses a whole decimal integer in [lo, hi]; on error reports naming opt. */
bool cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);

/* Parses a finite number. */
bool cli_double(const char *cmd, const char *opt, const char *s, double *out);

/* True for -h and --help. */
bool cli_is_help(const char *a);

#endif
