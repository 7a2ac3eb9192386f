/*
 * The nsimplex subcommands, one file each (cli/cmd_*.c), dispatched from the
 * table in cli/main.c.  Each returns an exit code (include/nsimplex/error.h):
 * 0 success or pass, 1 a check failed, 2 unusable input or arguments.
 */
#ifndef NSX_CLI_COMMANDS_H
#define NSX_CLI_COMMANDS_H

/* nsimplex show FILE: metadata and tensors of a file, readably. */
int cmd_show(int argc, char **argv);

#endif
