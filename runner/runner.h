/*
 * Driving a kernel behind the ABI (include/nsimplex/kernel.h): the project's
 * SIMD implementation in process (any ISA, forced or dispatched), or a
 * third party's shared library loaded with dlopen.  `eval --impl simd`,
 * `bench`, `fuzz`, `make demo` and the golden-vector tests all run kernels
 * through here.
 */
#ifndef NSX_RUNNER_RUNNER_H
#define NSX_RUNNER_RUNNER_H

#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/kernel.h"
#include "nsimplex/problem.h"

typedef struct nsx_kernel {
    void *lib;                      /* dlopen handle; NULL for the in-process SIMD */
    const nsx_kernel_info *info;
    nsx_kernel_forward_fn forward;  /* the library's; NULL for the in-process SIMD */
    int isa, threads;               /* the in-process SIMD's ISA and threads */
    const char *path;               /* the library, or NULL */
} nsx_kernel;

/*
 * Opens a kernel: the library at path (its info must say ABI version 1), or
 * with path NULL the in-process SIMD kernel on isa (-1: the CPU's best, or
 * NSX_ISA's) with threads (0: all cores).  0, or NSX_E_INPUT with err naming
 * the library or the ISA and the problem.
 */
int nsx_kernel_open(nsx_kernel *k, const char *path, int isa, int threads, nsx_err *err);
void nsx_kernel_close(nsx_kernel *k);

/* One forward call: the ABI's return value (0 done, 1 unsupported, other
   an error). */
int nsx_kernel_call(const nsx_kernel *k, const nsx_kernel_problem *p, const nsx_kernel_io *io);

/* 0 when the kernel's declared features cover p (order, windows, selection,
   GQA, causal off, distinct, biases, reducer), else -1 with the first
   missing feature in why. */
int nsx_kernel_supports(const nsx_kernel_info *info, const nsx_problem *p, char *why, size_t whylen);

/*
 * Runs k on a problem with binary64 inputs (converted to float32: exact for
 * inputs representable in f32, rounded to nearest otherwise), with sel the
 * S(i) lists (the given selection, or a computed one) or NULL.  Writes o
 * [B,L,H,dv] and, when the kernel declares it writes LSE, lse [B,H,L] (else
 * lse is left alone and *has_lse = 0), decoded exactly from float32.
 * Returns 0; NSX_E_UNSUPPORTED with err "unsupported problem: ..." when the
 * kernel does not declare p supported; NSX_E_KERNEL_REFUSED when it returned
 * 1 (unsupported) all the same; NSX_E_KERNEL_ERROR when it returned another
 * error code; NSX_E_NOMEM when out of memory.
 */
int nsx_kernel_run(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                   double *o, double *lse, int *has_lse, nsx_err *err);

#endif
