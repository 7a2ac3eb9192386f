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

/*
 * Isolation (docs/FUZZING.md 4.1): with nsx_kernel.iso set, nsx_kernel_run
 * calls the kernel in another process, its inputs and outputs in shared
 * memory, the outputs between guard pages (PROT_NONE) with canary bytes in
 * the slack before each buffer, under a per-call timeout.  A fault of the
 * kernel is then an error of the call (NSX_E_KERNEL_ERROR) with its kind in
 * iso->fault.  The other process is the runner of iso's fork server
 * (nsx_kernel_iso_start), which outlives calls and is replaced after a
 * fault, or without a server a child forked for the call.  The parent must
 * not have run an OpenMP parallel region itself (libgomp's pool does not
 * survive fork): only the kernel does, in the other process.
 */
enum nsx_kernel_fault {
    NSX_KFAULT_NONE = 0,
    NSX_KFAULT_SIGNAL,   /* killed by a signal (sig) */
    NSX_KFAULT_TIMEOUT,  /* no result within timeout seconds; killed */
    NSX_KFAULT_EXIT,     /* the process ended (exit) inside the call */
    NSX_KFAULT_OVERFLOW, /* a write outside o or lse (a guard page or a canary) */
    NSX_KFAULT_CUT,      /* stopped at the deadline: not the kernel's fault */
};

typedef struct nsx_iso_server nsx_iso_server;

typedef struct nsx_kernel_iso {
    double timeout;   /* seconds per call (> 0) */
    double deadline;  /* CLOCK_MONOTONIC seconds (nsx_kernel_clock) after
                         which a call is stopped as NSX_KFAULT_CUT; 0: none */
    int fault;        /* the last call's NSX_KFAULT_* */
    int sig;          /* its signal, for NSX_KFAULT_SIGNAL */
    long runner;      /* the process that took the last call: 0 a child forked
                         for it; 1, 2, ..: the fork server's runners, in the
                         order the server started them */
    nsx_iso_server *srv; /* the fork server (nsx_kernel_iso_start), or NULL */
} nsx_kernel_iso;

/* CLOCK_MONOTONIC in seconds. */
double nsx_kernel_clock(void);

typedef struct nsx_kernel {
    void *lib;                      /* dlopen handle; NULL for the in-process SIMD */
    const nsx_kernel_info *info;
    nsx_kernel_forward_fn forward;  /* the library's; NULL for the in-process SIMD */
    nsx_kernel_indexer_fn indexer;  /* the library's (ABI 2, when declared); NULL otherwise */
    int isa, threads;               /* the in-process SIMD's ISA and threads */
    const char *path;               /* the library, or NULL */
    nsx_kernel_iso *iso;            /* NULL: calls run in this process */
    nsx_kernel_backward_fn backward; /* the library's (ABI 3, when declared); NULL otherwise */
} nsx_kernel;

/*
 * Validates what a kernel says of itself: an ABI version from
 * NSX_KERNEL_ABI_MIN_VERSION to NSX_KERNEL_ABI_VERSION, a name of at most
 * 127 printable ASCII characters, max_order 1..NSX_MAX_ORDER, the four
 * formats NSX_FORMAT_*, no unknown feature bits (an ABI 1 info is read only
 * up to its features); ABI 3: backward_max_order 0..max_order, and when not
 * 0 backward_features a subset of features, NSX_FEAT_LSE declared (the
 * backward reads the forward's lse) and the two backward formats NSX_FORMAT_*.  0, or NSX_E_INPUT with err "WHAT: FIELD ..." (what:
 * the library's path, or a name).
 */
int nsx_kernel_info_check(const nsx_kernel_info *info, const char *what, nsx_err *err);

/*
 * Opens a kernel: the library at path (its info valid: nsx_kernel_info_check;
 * it must export nsx_kernel_indexer when it declares an indexer), or
 * with path NULL the in-process SIMD kernel on isa (-1: the CPU's best, or
 * NSX_ISA's) with threads (0: all cores).  0, or NSX_E_INPUT with err naming
 * the library or the ISA and the problem.
 */
int nsx_kernel_open(nsx_kernel *k, const char *path, int isa, int threads, nsx_err *err);
void nsx_kernel_close(nsx_kernel *k);

/*
 * Starts a fork server for k's isolated calls through iso (iso->srv): a
 * supervisor process forked now, which forks a runner process for k's
 * calls and another one after each fault (a signal, an exit, a kill at a
 * timeout).  Calls then fork nothing, so threads may make them: call this
 * while this process runs no other thread (a process forked from one with
 * threads inherits their locks, held).  The server keeps the kernel k was
 * at the start (its library, ISA, threads); a call with another goes to a
 * forked child.  0, or NSX_E_NOMEM / NSX_E_INTERNAL with err (iso left
 * without a server).
 */
int nsx_kernel_iso_start(nsx_kernel_iso *iso, const nsx_kernel *k, nsx_err *err);

/* Ends iso's fork server and its runner, if any (iso->srv NULL after). */
void nsx_kernel_iso_stop(nsx_kernel_iso *iso);

/* The indexer capabilities (NSX_IDX_*) info declares: its `indexer` field
   for ABI 2 and later, 0 for an ABI 1 library (whose info has no such field). */
static inline unsigned nsx_kernel_indexer_caps(const nsx_kernel_info *info)
{
    return info->abi_version >= 2 ? info->indexer : 0;
}

/* The largest order the backward takes (ABI 3 info's backward_max_order),
   0 for a kernel without one (every ABI 1 or 2 library). */
static inline int nsx_kernel_backward_order(const nsx_kernel_info *info)
{
    return info->abi_version >= 3 ? info->backward_max_order : 0;
}

/* One indexer call (the kernel declares an indexer): the ABI's return
   value (0 done, 1 unsupported, other an error). */
int nsx_kernel_index(const nsx_kernel *k, const nsx_indexer_problem *p, const nsx_indexer_io *io);

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
 * error code, or, isolated, when the call faulted (k->iso->fault says how);
 * NSX_E_NOMEM when out of memory.
 */
int nsx_kernel_run(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                   double *o, double *lse, int *has_lse, nsx_err *err);

/*
 * The backward pass of k (it has one: k->backward) on p, after its forward
 * pass gave o [B,L,H,dv] and lse [B,H,L] (has_lse 0: no lse; both float32
 * values held as binary64, passed back exactly), with the upstream
 * gradient in->dout.  Writes dq [B,L,H,d], dk[m] [B,L,Hkv,d], dv[m]
 * [B,L,Hkv,dv] (m < n), decoded exactly from float32.  Isolated like
 * nsx_kernel_run (the buffers dq, dk1.., dv1.. between guard pages).  The
 * same returns as nsx_kernel_run.
 */
int nsx_kernel_run_backward(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                            const double *o, const double *lse, int has_lse, double *dq, double *const *dk,
                            double *const *dv, nsx_err *err);

/*
 * Runs k's indexer (nsx_kernel_indexer) on p's indexer inputs (binary64,
 * converted to float32), isolated like nsx_kernel_run when k->iso is set.
 * Writes scores [B,L,L] (decoded from float32; entries the kernel did not
 * write are NaN when isolated) and sel [B,L,k] where the kernel declares it
 * writes them (NSX_IDX_WRITES_*); the caller's arrays are left alone
 * otherwise.  Returns 0; NSX_E_UNSUPPORTED when the kernel declares no
 * indexer, or not p's activation or causal setting; NSX_E_KERNEL_REFUSED,
 * NSX_E_KERNEL_ERROR (k->iso->fault) and NSX_E_NOMEM as nsx_kernel_run.
 * Pre: p passed nsx_problem_check; scores and sel not NULL.
 */
int nsx_kernel_run_indexer(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, int32_t *sel,
                           double *scores, nsx_err *err);

/*
 * The backward of k (it declares one, or is the in-process SIMD kernel) on
 * a problem with binary64 inputs (converted to float32 as nsx_kernel_run
 * does) and dout [B, L, H, dv]: first k's forward for o and lse (float32,
 * as the backward reads them), then its backward.  Writes g->dq, g->dk[m],
 * g->dv[m] (m < n), decoded exactly from float32; when o, lse are not NULL
 * also the forward's outputs.  Calls run in this process (k->iso is not
 * used).  Returns 0; NSX_E_UNSUPPORTED when the backward does not declare p
 * supported; NSX_E_KERNEL_REFUSED when a call returned 1 all the same;
 * NSX_E_KERNEL_ERROR when a call returned another error; NSX_E_NOMEM.
 */
int nsx_kernel_run_bwd(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                       const double *dout, nsx_outputs *g, double *o, double *lse, nsx_err *err);

/* 0 when the backward k declares covers p (its order and backward_features),
   else -1 with the reason in why. */
int nsx_kernel_supports_bwd(const nsx_kernel_info *info, const nsx_problem *p, char *why, size_t whylen);

#endif
