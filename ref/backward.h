/*
 * The backward pass's internals (E7), shared by ref/backward.c (the
 * enclosures and Ziv's loop) and ref/bwd_exact.c (the exact cases).
 *
 * The work is cut into blocks: one batch b and one kv head g with the query
 * heads h0..h0+Hg-1 that read it (GQA).  A block owns every gradient element
 * that its rows contribute to: dq of its heads, dk_m and dv_m of (b, g).
 * So each element's sum over rows (E7e, E7f, E7g) is complete inside one
 * block, and the block is the unit of Ziv's loop.
 */
#ifndef NSX_REF_BACKWARD_H
#define NSX_REF_BACKWARD_H

#include <stddef.h>

#include <mpfr.h>

#include "nsimplex/ref.h"
#include "ref/internal.h"

typedef struct bwd_block {
    ref_ctx *ctx;
    const double *dout;     /* dO [B, L, H, dv] */
    int b, g, h0, Hg;
    size_t nq, nk, nv;      /* elements: Hg*L*d (dq), n*L*d (dk), n*L*dv (dv) */
    ival *eq, *ek, *ev;     /* their enclosures at the working precision */
    double *rq, *rk, *rv;   /* their binary64 values, once decided; one
                               array: rk = rq + nq, rv = rk + nk */
    unsigned char *done;    /* nq + nk + nv flags: q first, then k, then v */
    const unsigned char *rowneed; /* NULL, or Hg*L flags: the rows a round
                               visits (the others add only to elements
                               already done: the fast path's) */
    mpfr_prec_t prec_x;     /* every coefficient of E7d-E7f is exact */
    mpfr_t fac;             /* scratch for one factor K~ or V~ */
} bwd_block;

/* Element indices inside a block. */
static inline size_t bwd_q_el(const bwd_block *bk, int hh, int i, int l)
{
    return ((size_t)hh * bk->ctx->p->L + i) * bk->ctx->p->d + l;
}
static inline size_t bwd_k_el(const bwd_block *bk, int m, int j, int l)
{
    return ((size_t)m * bk->ctx->p->L + j) * bk->ctx->p->d + l;
}
static inline size_t bwd_v_el(const bwd_block *bk, int m, int j, int c)
{
    return ((size_t)m * bk->ctx->p->L + j) * bk->ctx->p->dv + c;
}

/* One row's allowed tuples with their exact raw scores, stored (ref/
   internal.h: ref_row_scan, then ref_row_store): unlike the forward pass,
   which streams a row's tuples, the gradients need every tuple's weight A_J
   at once (E7c's Delta before any dT_J); the work budget (core/budget.h)
   bounds a row's tuples.  0, or an error kind.  Pre: as ref_row_scan. */
int bwd_row_collect(ref_row *row, ref_ctx *ctx, int b, int h, int i, int s_sign, nsx_err *err);

/* The exact coefficients (precision bk->prec_x, every step checked exact):
 *   dq:   prod_{m'} K~_m'[j_m',l]                        (E7d)
 *   dk_m: Q[i,l] * prod_{m' != m} K~_m'[j_m',l]           (E7e)
 *   dv_m: dO[i,c] * den * dW_m[J,c]                       (E7f; den = n for
 *         the mean, so the coefficient is dO[i,c] for sum and mean) */
void bwd_coef_q(mpfr_t x, bwd_block *bk, const int *J, int l);
void bwd_coef_k(mpfr_t x, bwd_block *bk, int h, int i, const int *J, int m, int l);
void bwd_coef_v(mpfr_t x, bwd_block *bk, int h, int i, const int *J, int m, int c);

/* The exact cases (docs/SPEC.md 3.4, gradients): every element of the
 * block not yet decided whose row parts are all proven rational gets its
 * value rounded directly and is marked done.  0, or NSX_E_NOMEM. */
int bwd_exact_cases(bwd_block *bk, nsx_ref_stats *st, nsx_err *err);

/* For tests (tests/test_fast_bwd.c): for every block, the fast path's
 * enclosures (ref_fast_bwd_set_encl: 3 doubles per element, NaN where not
 * reached) and one MPFR round at prec (every element an enclosure el[e] of
 * the exact value), in the block's element order (bwd_q_el, then bwd_k_el,
 * then bwd_v_el), passed to visit.  scratch: gradient buffers for p (the
 * fast path writes its decided values there).  0, or an error kind. */
int ref_bwd_enclosures(const nsx_problem *p, const nsx_inputs *in, nsx_outputs *scratch, mpfr_prec_t prec,
                       void (*visit)(void *arg, const ival *el, const double *encl, size_t count), void *arg,
                       nsx_err *err);

#endif
