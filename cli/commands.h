/*
 * The nsimplex subcommands, one file each (cli/cmd_*.c), dispatched from the
 * table in cli/main.c.  Each returns an exit code (include/nsimplex/error.h):
 * 0 success or pass, 1 a check failed, 2 unusable input or arguments.
 */
#ifndef NSX_CLI_COMMANDS_H
#define NSX_CLI_COMMANDS_H

/* nsimplex bench: throughput against the peak and the plain loops (cmd_bench.c). */
int cmd_bench(int argc, char **argv);

#endif
