/*
 * Errors and exit codes shared by every module.
 *
 * A failing function fills an nsx_err with one line that names the file (or
 * the argument) and the problem, e.g.
 *   "vectors/n2_basic.safetensors: tensor k1: shape [1,8,2,4] but metadata
 *    says [1,8,1,4]"
 * and the command line prints it as "nsimplex: <msg>" and exits with the
 * code the error carries.
 */
#ifndef NSIMPLEX_ERROR_H
#define NSIMPLEX_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum nsx_exit {
    NSX_EXIT_OK = 0,    /* success, or the check passed */
    NSX_EXIT_FAIL = 1,  /* a check failed */
    NSX_EXIT_BAD = 2,   /* unusable input or arguments */
    NSX_EXIT_INTERNAL = 3 /* out of memory, precision cap reached, I/O error */
};

typedef struct nsx_err {
    int code;           /* enum nsx_exit */
    char msg[512];
} nsx_err;

/* Sets err (if not NULL) to code and the printf-formatted message; returns
   code, so that `return nsx_err_set(err, NSX_EXIT_BAD, ...);` reads well. */
int nsx_err_set(nsx_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "prefix: " (e.g. a file name). */
void nsx_err_prefix(nsx_err *err, const char *prefix);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_ERROR_H */
