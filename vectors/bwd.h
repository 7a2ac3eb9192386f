/*
 * Gradient cases (recipe key bwd=1): the upstream gradient do of a built
 * case and its expected gradients dq, dk_m, dv_m (docs/SPEC.md 1.7), held
 * by the instance (nsx_instance_alloc_grads) so that nsx_case_write stores
 * them with the rest.
 */
#ifndef NSX_VECTORS_BWD_H
#define NSX_VECTORS_BWD_H

#include <stdint.h>

#include "vectors/build.h"

/* Allocates the gradient tensors of b (after its inputs and pairs) and
   draws do [B, L, H, dv] from a stream of seed of its own, rounded to the
   input format.  0, or NSX_E_NOMEM with err set. */
int nsx_build_dout(nsx_instance *b, uint64_t seed, nsx_err *err);

/* The expected gradients of b by the reference (nsx_ref_backward: the fast
   certified path with opts->fast, MPFR for what it leaves); its statistics
   are added to stats (may be NULL).  0, or the reference's error. */
int nsx_build_grads(nsx_instance *b, const nsx_ref_opts *opts, nsx_ref_stats *stats, nsx_err *err);

#endif
