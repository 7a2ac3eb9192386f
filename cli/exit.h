/*
 * Exit codes of the nsimplex program, and the one place where an error's
 * kind (include/nsimplex/error.h) becomes one.
 */
#ifndef NSX_CLI_EXIT_H
#define NSX_CLI_EXIT_H

enum nsx_exit {
    NSX_EXIT_OK = 0,      /* success, or the check passed */
    NSX_EXIT_FAIL = 1,    /* a check failed, or the kernel under test did */
    NSX_EXIT_BAD = 2,     /* unusable input or arguments, or too large */
    NSX_EXIT_INTERNAL = 3 /* out of memory, precision cap, I/O error, a bug */
};

/* The exit code for an error of this kind (0 for NSX_E_NONE). */
int cli_exit_code(int kind);

#endif
