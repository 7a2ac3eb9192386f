/*
 * The per-element error bound of the gradients (docs/ORACLE.md section 8,
 * equations G1-G9): for every element of dq, dk_m and dv_m (docs/SPEC.md
 * E7), how far an honest backward kernel that computes in the formats of a
 * precision model may land from the exact value.  Built on the forward's
 * per-tuple terms (oracle/bound.h: b_J of B2, A_J, delta_J of B5, the
 * output bounds B13 and B14), which nsx_bound_row_visit hands over.
 */
#ifndef NSX_ORACLE_BOUND_BWD_H
#define NSX_ORACLE_BOUND_BWD_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/problem.h"
#include "oracle/bound.h"

/* Bounds in the layouts of the gradients (caller's arrays).  A bound of
   exactly 0 marks an element that no allowed tuple of any row touches: its
   exact value is 0 and an honest kernel writes 0 (SPEC 1.7, masks). */
typedef struct nsx_grad_bound {
    double *dq;                  /* [B, L, H, d] */
    double *dk[NSX_MAX_ORDER];   /* [B, L, Hkv, d] */
    double *dv[NSX_MAX_ORDER];   /* [B, L, Hkv, dv] */
    size_t *terms_k;             /* [B, Hkv, n, L]: terms of dk_m[b,j,g,:] and
                                    dv_m[b,j,g,:] (allowed (h, i, J) with
                                    J_m = j); NULL: not wanted */
    size_t *terms_q;             /* [B, H, L] (the layout of lse): the terms of
                                    dq[b,i,h,:], |Z(i)|; NULL: not wanted */
} nsx_grad_bound;

/*
 * Fills every element of gb (every non-NULL array) for the problem of ctx
 * (its inputs with dout, the upstream gradient), the selection sel ([B, L,
 * k], the one the expected values were computed with; NULL without a
 * selection) and the exact outputs ex (o, lse, and the gradients dq, dk,
 * dv for the output rounding of each element).
 * Returns 0; NSX_E_NOT_APPLICABLE (err: which row or element, why) when the
 * model cannot bound the vector (ORACLE.md 3.1, 8.6); NSX_E_INPUT when a
 * row reads a NaN or an infinity or the vector contradicts itself;
 * NSX_E_NOMEM.  Pre (asserted): ctx, ex, gb, err not NULL; ctx->in->dout,
 * ex->o, ex->lse, ex->dq, ex->dk[m], ex->dv[m] not NULL.
 */
int nsx_bound_grads(nsx_bound_ctx *ctx, const int32_t *sel, const nsx_outputs *ex, nsx_grad_bound *gb,
                    nsx_err *err);

/*
 * nsx_bound_grads for expected values known within uncertainties (a
 * binary64 loop reference; ORACLE.md 3.10, 8.6): |ex->o - O| <= o_unc, |ex->lse
 * - LSE| <= lse_unc elementwise (layouts of o and lse), and each gradient
 * within g_unc (1 + 2n arrays dq, dk1..dkn, dv1..dvn in their layouts);
 * any pointer NULL: 0.  The bounds then hold for every exact value within
 * those intervals; a caller judges |candidate - ex| <= bound + g_unc.
 */
int nsx_bound_grads_unc(nsx_bound_ctx *ctx, const int32_t *sel, const nsx_outputs *ex, const double *o_unc,
                        const double *lse_unc, const double *const *g_unc, nsx_grad_bound *gb, nsx_err *err);

#endif
