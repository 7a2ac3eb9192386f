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

/*
 * The fast certified backward (ref/fast_bwd.c): per block (b, kv head g, as
 * ref/backward.c), every element of dq, dk_m, dv_m enclosed in binary64 and
 * double-double.  ref_fast_bwd_block writes the block's decided elements to
 * grads and returns 1 when every one is decided (st counts them); otherwise
 * 2 when done is not NULL and every row reached its enclosures: done[e] = 1
 * and res[e] = the value for each decided element, in the MPFR block's
 * order (ref/backward.h), and the caller computes the others with MPFR;
 * else 0 (a row stopped early: a non-finite input, scores out of range;
 * done all 0): the caller computes the block with MPFR.
 */
typedef struct ref_fast_bwd ref_fast_bwd;
int ref_fast_bwd_init(ref_fast_bwd **fb, const ref_ctx *ctx, const double *dout, const nsx_ref_opts *opts,
                      nsx_err *err);
int ref_fast_bwd_block(ref_fast_bwd *fb, int b, int g, nsx_outputs *grads, nsx_ref_stats *st,
                       unsigned char *done, double *res);
void ref_fast_bwd_free(ref_fast_bwd *fb);
/* For tests: each block records every element's enclosure (v.h, v.l, E)
   into encl (3 doubles per element, in the MPFR block's order: dq of the
   group's heads, then dk_m, then dv_m: ref/backward.h), decided or not; NaN
   where a row stopped before its enclosures (a non-finite input, scores
   out of range). */
void ref_fast_bwd_set_encl(ref_fast_bwd *fb, double *encl);

#endif /* NSX_REF_FAST_H */
