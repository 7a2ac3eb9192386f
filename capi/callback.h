/*
 * A callback kernel: a kernel behind the ABI (include/nsimplex/kernel.h)
 * whose forward is a function pointer handed over at run time, with the
 * info built from a precision model and declared features.  This is how a
 * foreign caller (a Python function through ctypes, computing on any device)
 * is driven by the fuzzer and judged like a shared library.
 */
#ifndef NSX_CAPI_CALLBACK_H
#define NSX_CAPI_CALLBACK_H

#include "runner/runner.h"
#include "nsimplex/error.h"
#include "oracle/model.h"

typedef struct nsx_cb_kernel {
    nsx_kernel k;            /* what the fuzzer drives; k.info points at info */
    nsx_kernel_info info;
    char name[128];
} nsx_cb_kernel;

/*
 * Fills cb (which must not move afterwards): info declares the model's in,
 * acc, w (none: F64) and out formats, max_order (1..NSX_MAX_ORDER) and
 * features (NSX_FEAT_*); forward is called for every problem.  0, or
 * NSX_E_INPUT for a NULL forward, an order out of range or unknown feature
 * bits.
 */
int nsx_cb_kernel_open(nsx_cb_kernel *cb, const char *name, const nsx_model *m, int max_order, unsigned features,
                       nsx_kernel_forward_fn forward, nsx_err *err);

/*
 * Gives cb (opened by nsx_cb_kernel_open) a backward: backward is called for
 * every backward problem the fuzzer draws (after the forward, with its o and
 * lse), for orders 1..max_order (at most cb's) and the features given (a
 * subset of cb's, which must declare NSX_FEAT_LSE); the gradients are judged
 * under m.  0, or NSX_E_INPUT (nothing changed) with the reason.
 */
int nsx_cb_kernel_set_backward(nsx_cb_kernel *cb, const nsx_model *m, int max_order, unsigned features,
                               nsx_kernel_backward_fn backward, nsx_err *err);

/*
 * Fills cb as a kernel with an indexer only (kernel ABI 3's
 * nsx_kernel_indexer, no forward is ever called): info declares caps
 * (NSX_IDX_*: what it writes, which activations, causal off) and the
 * model's indexer formats (idx when FP8, with its block; else in), acc and
 * out; indexer is called for every problem.  0, or NSX_E_INPUT for a NULL
 * indexer, unknown bits, or caps that write nothing or take no activation.
 */
int nsx_cb_kernel_open_indexer(nsx_cb_kernel *cb, const char *name, const nsx_model *m, unsigned caps,
                               nsx_kernel_indexer_fn indexer, nsx_err *err);

#endif
