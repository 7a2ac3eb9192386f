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

struct nsx_ref_stats;
/* "CMD: ref: N allowed tuples in S s: X tuples/s; V values: F decided by the
   fast path, M by MPFR (R of T rows); ..." on stdout, for --stats. */
void cli_ref_stats(const char *cmd, const struct nsx_ref_stats *st, double seconds);
struct nsx_budget_limits;
/* True when argv[*i] is --max-tuples N or --max-memory MIB (core/budget.h);
   sets the limit, or on a bad value reports and sets *bad. */
bool cli_budget_opt(const char *cmd, int argc, char **argv, int *i, struct nsx_budget_limits *lim,
                    bool *bad);

/* The help lines of those two options, for every command that takes them. */
#define CLI_BUDGET_HELP \
    "  --max-tuples N  refuse problems with more allowed tuples, summed over the rows\n" \
    "                  (estimated up front, overflow-checked) (16777216: 3-7 min at d = 4)\n" \
    "  --max-memory M  refuse problems whose estimated memory is over M MiB (4096)\n"

/* OpenMP ends the program with its own lines and exit 1 when it cannot
   start its threads (ulimit -u, a memory limit, a huge OMP_NUM_THREADS).
   Starts the threads a parallel region of `threads` (0: OpenMP's default,
   omp_get_max_threads) would, with the same attributes, and stops them
   again: 0 when they start, else reports one line and returns
   NSX_EXIT_INTERNAL. */
int cli_threads_probe(const char *cmd, int threads);

/* fflush(stdout) in the middle of a command; the first failure's errno is
   kept for the check at exit (cli/main.c), which then names it.  0 or EOF. */
int cli_flush_stdout(void);
/* That errno, or 0. */
int cli_stdout_errno(void);

/* True for -h and --help. */
bool cli_is_help(const char *a);

#endif
