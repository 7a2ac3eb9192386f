/*
 * Errors shared by every module.
 *
 * A failing function fills an nsx_err with one line that names the file (or
 * the argument) and the problem, e.g.
 *   "vectors/n2_basic.safetensors: tensor k1: shape [1,8,2,4] but metadata
 *    says [1,8,1,4]"
 * and a kind that says what went wrong.  Library functions return 0 or the
 * kind; callers branch on the kind, never on the message.  Only the command
 * line (cli/exit.c) turns a kind into an exit code.
 */
#ifndef NSIMPLEX_ERROR_H
#define NSIMPLEX_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum nsx_err_kind {
    NSX_E_NONE = 0,
    NSX_E_INPUT,          /* unusable input: malformed or contradictory file, bad
                             shape, bad argument */
    NSX_E_UNSUPPORTED,    /* well formed, but outside what the code (or a kernel's
                             declared features) handles */
    NSX_E_NOT_APPLICABLE, /* check: the vector cannot be judged under the model */
    NSX_E_TOO_LARGE,      /* the work or memory exceeds the stated budget */
    NSX_E_NOMEM,          /* out of memory */
    NSX_E_PRECISION_CAP,  /* the reference reached its precision cap */
    NSX_E_IO,             /* the system failed a read or a write (disk full, a
                             file size limit) */
    NSX_E_KERNEL_REFUSED, /* a kernel under test returned "unsupported" for a
                             problem it declared it supports */
    NSX_E_KERNEL_ERROR,   /* a kernel under test returned an error code */
    NSX_E_INTERNAL        /* a broken invariant: a bug of nsimplex */
};

typedef struct nsx_err {
    int kind;           /* enum nsx_err_kind */
    char msg[512];
} nsx_err;

/* Sets err (if not NULL) to kind and the printf-formatted message; returns
   kind, so that `return nsx_err_set(err, NSX_E_INPUT, ...);` reads well. */
int nsx_err_set(nsx_err *err, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "prefix: " (e.g. a file name). */
void nsx_err_prefix(nsx_err *err, const char *prefix);

/* 1 for the kinds that end any run whatever the input: the machine's or
   nsimplex's own failures (out of memory, I/O, internal). */
static inline int nsx_err_is_fatal(int kind)
{
    return kind == NSX_E_NOMEM || kind == NSX_E_IO || kind == NSX_E_INTERNAL;
}

/* The kind's name, e.g. "out of memory" (for reports and tests). */
const char *nsx_err_kind_name(int kind);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_ERROR_H */
