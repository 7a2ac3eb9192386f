/*
 * Independent high-precision gradients for the tests (tests/hp_grad.c): no
 * code shared with ref/, and none of its equations E7: the gradient of
 * F = sum dO * O is taken mechanically, by forward-mode automatic
 * differentiation of the forward pass (dual numbers over MPFR), and for
 * n = 1 also by the closed-form attention backward as FlashAttention
 * writes it.  Both at a fixed precision (rounding to nearest at every
 * step), rounded to binary64 at the end.
 */
#ifndef NSX_TESTS_HP_GRAD_H
#define NSX_TESTS_HP_GRAD_H

#include <mpfr.h>

#include "tests/harness.h"

/* Every n: for each input element x of q, k_m, v_m, one dual-number pass of
   the einsum forward (every tuple of [0,L)^n, masked by hp_key_ok and
   distinct) with dx = 1 gives dF/dx.  dk[m], dv[m] for m < n. */
void hp_grad_ad(const tcase *t, const int32_t *sel, const double *dout, mpfr_prec_t prec,
                double *dq, double **dk, double **dv);

/* n = 1: P = softmax(S), dV = out_scale P^T dO, dP = out_scale dO (V + vb)^T,
   dS = P * (dP - rowsum(dO * O)), dQ = s dS K (without the key bias: its
   term vanishes), dK = s dS^T Q, summed over the heads of a kv head. */
void hp_grad_n1(const tcase *t, const int32_t *sel, const double *dout, mpfr_prec_t prec,
                double *dq, double *dk, double *dv);

#endif
