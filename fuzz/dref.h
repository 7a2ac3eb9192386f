/*
 * The fuzzer's fast reference: (E1)-(E6) as plain binary64 loops, with a
 * per-element bound on its own error (docs/FUZZING.md, "The binary64 loop
 * reference", equations D1-D7).  For n = 1 it is the textbook attention
 * loop softmax(s q.k) v.  It judges problems too large for the MPFR
 * reference: the oracle takes its values with their uncertainty
 * (nsx_check_unc, docs/ORACLE.md 3.10), so a kernel is never failed for the
 * loop's rounding, and a failure against it is a failure against the exact
 * values.
 */
#ifndef NSX_FUZZ_DREF_H
#define NSX_FUZZ_DREF_H

#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/problem.h"

/*
 * Computes o [B,L,H,dv] and lse [B,H,L] for p (checked) from in, and the
 * bounds o_unc, lse_unc (same layouts) with |o - O| <= o_unc and
 * |lse - LSE| <= lse_unc for the exact O and LSE.  sel: the S(i) lists
 * [B,L,k] (the given selection, or the one computed by nsx_ref_select), NULL
 * without a selection.  skip [B*L] (may be NULL): rows (b, i) marked 1 are
 * not computed; their o and lse are NaN and their bounds 0.  An empty slice
 * gives o = +0, lse = -inf, bounds 0.  *tuples (may be NULL) gets the
 * allowed tuples summed over rows and heads.
 * Returns 0; NSX_E_INPUT with err set when a computed row reads a NaN or an
 * infinity or a score or value overflows binary64 (the loop cannot judge
 * it); NSX_E_NOMEM when out of memory.
 */
int nsx_dref_forward(const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                     const unsigned char *skip, double *o, double *lse, double *o_unc,
                     double *lse_unc, uint64_t *tuples, nsx_err *err);

/* The gradients of the loop reference (fuzz/dref_bwd.c), every array in
   the layout of its input: values d*, allowances u* (|d* - exact| <= u*,
   docs/FUZZING.md G3) and magnitudes m* (the sums of E7d-E7g with every
   factor by its absolute value, G1).  The caller allocates the arrays
   (dk, uk, mk, dv, uv, mv for m < n). */
typedef struct nsx_dref_grads {
    double *dq, *dk[NSX_MAX_ORDER], *dv[NSX_MAX_ORDER];
    double *uq, *uk[NSX_MAX_ORDER], *uv[NSX_MAX_ORDER];
    double *mq, *mk[NSX_MAX_ORDER], *mv[NSX_MAX_ORDER];
    double rho;          /* the largest relative error of a weight A (G2) */
    /* what a kernel's bound needs (bwd.c, G5): */
    double smax;         /* the largest |s| sum_l |q_l| prod_m |K~_m| of a tuple */
    double tabs;         /* the largest |T^| */
    double nmax;         /* the most tuples of a row */
    double terms;        /* (row, tuple) pairs in all */
    double pmax, cmax;   /* the largest |dP|~ + |Delta|~, and coefficient magnitude */
} nsx_dref_grads;

/*
 * (E7) for p from in (in->dout set), with sel as for nsx_dref_forward.
 * Returns 0; NSX_E_INPUT with err set when a row reads a non-finite value,
 * a value overflows, or a product of factors falls below 2^-700 (outside
 * the allowance's assumptions, G4); NSX_E_NOMEM.
 */
int nsx_dref_backward(const nsx_problem *p, const nsx_inputs *in, const int32_t *sel, nsx_dref_grads *g,
                      nsx_err *err);

#endif
