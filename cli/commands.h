/*
 * The nsimplex subcommands, one file each (cli/cmd_*.c), dispatched from the
 * table in cli/main.c.  Each returns an exit code (include/nsimplex/error.h):
 * 0 success or pass, 1 a check failed, 2 unusable input or arguments.
 */
#ifndef NSX_CLI_COMMANDS_H
#define NSX_CLI_COMMANDS_H


int cmd_eval(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif
