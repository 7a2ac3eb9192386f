/*
 * Gradient cases (recipe key bwd=1): the upstream gradient do of a built
 * case and its expected gradients dq, dk_m, dv_m (docs/SPEC.md 1.7), held
 * in the built case's b->in.dout and b->out.dq, dk[m], dv[m] so that
 * nsx_case_write stores them with the rest.
 */
#ifndef NSX_VECTORS_BWD_H
#define NSX_VECTORS_BWD_H

#include <stdint.h>

#include "vectors/build.h"

/* Draws do [B, L, H, dv] for b (after its inputs), from a stream of seed of
   its own, rounded to the input format.  0, or NSX_E_NOMEM with err set. */
int nsx_build_dout(nsx_built *b, uint64_t seed, nsx_err *err);

/* The expected gradients of b by the reference (nsx_ref_backward).  0, or
   the reference's error. */
int nsx_build_grads(nsx_built *b, const nsx_ref_opts *opts, nsx_err *err);

/* Frees what the two above allocated (nothing when they did not run). */
void nsx_build_free_bwd(nsx_built *b);

#endif
