/*
 * The fast certified path (ref/fast.c): every row first in binary64 and
 * double-double arithmetic with a proven error bound; what it cannot decide
 * goes to the MPFR reference (ref/forward.c).
 */
#ifndef NSX_REF_FAST_H
#define NSX_REF_FAST_H

#include "nsimplex/ref.h"
#include "ref/internal.h"

/*
 * Writes out->o and out->lse of every row (b, h, i) that the fast path
 * decides (both ends of every output's enclosure round to the same
 * binary64), and of skipped rows (opts->skip: NaN); sets todo[(b H + h) L
 * + i] = 1 for every other row, which the caller must give to MPFR.
 * ctx: the MPFR reference's context (its finite-row flags are read; its
 * scratch is not touched).  Adds to st.  0, or an error kind with err set
 * (out of memory, an ISA forced by NSX_FAST_ISA that the CPU lacks).
 */
int ref_fast_forward(const ref_ctx *ctx, nsx_outputs *out, const nsx_ref_opts *opts,
                     nsx_ref_stats *st, unsigned char *todo, nsx_err *err);

/*
 * For tests: the enclosures of row (b, h, i), decided or not, into encl
 * (3 (dv + 1) doubles: v.h, v.l, E per output, LSE last): the exact value
 * of each output lies in [v.h + v.l - E, v.h + v.l + E].  Returns 1 when the
 * row reached them, 0 when it stopped before (an empty slice, a non-finite
 * input, scores out of range), or -kind with err set.
 */
int ref_fast_enclosures(const ref_ctx *ctx, const nsx_ref_opts *opts, int b, int h, int i,
                        double *encl, nsx_err *err);

#endif /* NSX_REF_FAST_H */
