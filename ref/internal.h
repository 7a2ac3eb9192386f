/*
 * The reference's internals: one function per equation of docs/SPEC.md,
 * shared by ref/forward.c (E1-E6) and ref/select.c (E8-E9).
 *
 * How the outputs are proven correctly rounded (docs/SPEC.md section 3):
 *  - exact parts: the raw scores T_raw = sum_l Q prod_m (K_m + kb_m) (E1) and
 *    the reduced values W (E5) are dyadic rationals, computed exactly at the
 *    precisions prec_T and prec_W derived from the inputs' binary ranges
 *    (ref/exact.h), every step checked exact;
 *  - inexact parts: the score scale s (1/sqrt(d) is irrational in general),
 *    the exponentials, their sum, the logarithm and the divisions are
 *    enclosures (ref/ival.h) at a working precision p;
 *  - Ziv: p doubles until both ends of every output's enclosure round to
 *    the same binary64 (ref/forward.c);
 *  - exact cases: outputs that are rational are detected (ref/exactcase.c)
 *    and rounded directly, so a midpoint or a zero never stalls the loop.
 */
#ifndef NSX_REF_INTERNAL_H
#define NSX_REF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <mpfr.h>

#include "nsimplex/error.h"
#include "nsimplex/problem.h"
#include "ref/ival.h"

/* What every equation reads: the problem, its inputs and exact scratch. */
typedef struct ref_ctx {
    const nsx_problem *p;
    const nsx_inputs *in;
    const int32_t *sel;   /* S(i) lists [B, L, k]: given or computed; NULL
                             when the problem has no selection */
    mpfr_prec_t prec_T;   /* a raw score, or the difference of two, is exact */
    mpfr_prec_t prec_W;   /* a reduced value's numerator, and every factor
                             and partial result of E5, is exact */
    mpfr_prec_t prec_score_scratch; /* every factor and partial product of E1 */
    mpfr_t term, fac;     /* E1 scratch, prec_score_scratch */
    mpfr_t wfac;          /* E5 scratch, prec_W */
    unsigned char *qfin;  /* [B, L, H]: q row finite */
    unsigned char *kfin[NSX_MAX_ORDER]; /* [B, L, Hkv]: k_m row finite */
    unsigned char *vfin[NSX_MAX_ORDER]; /* [B, L, Hkv]: v_m row finite */
} ref_ctx;

/* Allocates ctx for p and in (sel: the S(i) lists or NULL).  0, or an exit
   code with err set.  Pre: p checked; in holds the tensors p needs; sel
   not NULL exactly when p has a selection. */
int ref_ctx_init(ref_ctx *ctx, const nsx_problem *p, const nsx_inputs *in,
                 const int32_t *sel, nsx_err *err);
void ref_ctx_clear(ref_ctx *ctx);

/* The allowed tuples of one query row (b, h, i) and what E3-E6 derive. */
typedef struct ref_row {
    int b, h, g, i;
    size_t N, cap;      /* allowed tuples, and room */
    int *J;             /* N x n key positions */
    mpfr_t *T;          /* exact raw scores T_raw (prec_T) */
    ival *e;            /* E3: exp(s (T_raw - M)) */
    ival *A;            /* E4: the softmax weights */
    size_t argmax;      /* index of a tuple whose score s T_raw is maximal */
    int nonfinite;      /* an allowed tuple reads a NaN or an infinity */
} ref_row;

void ref_row_init(ref_row *row);
void ref_row_clear(ref_row *row);
/* Collects the allowed tuples of (b, h, i) and their exact raw scores
   (E1, E2); sets argmax for the sign of s.  0, or an exit code (memory).
   Pre: (b, h, i) in range; s_sign in -1..1; ctx initialized. */
int ref_row_collect(ref_row *row, ref_ctx *ctx, int b, int h, int i, int s_sign, nsx_err *err);
/* Sets the working precision of the row's enclosures.  Pre: a valid MPFR
   precision. */
void ref_row_set_prec(ref_row *row, mpfr_prec_t prec);

/* (E1) the exact raw score T_raw[i,J] = sum_l Q[i,l] prod_m (K_m[j_m,l] + kb_m)
   Pre: (b, h, i) in range, J n keys in 0..L-1; t at precision prec_T
   (every step is checked exact: REF_EXACT). */
void ref_score(mpfr_t t, ref_ctx *ctx, int b, int h, int i, const int *J);

/* The score scale s of E1 as an enclosure at s's precision, and its sign.
   Pre: d >= 1; a given score_scale is finite. */
void ref_score_scale(ival *s, const nsx_problem *p);
int ref_score_scale_sign(const nsx_problem *p);

/* (E3) LSE = log sum_J exp(s T_raw) = s T_raw[argmax] + log Z, with
   Z = sum_J exp(s (T_raw - T_raw[argmax])); fills row->e.  Pre: N >= 1,
   argmax < N, s an enclosure; the differences T_raw - T_raw[argmax] are
   exact at the scores' precision (checked: REF_EXACT). */
void ref_slice_lse(ival *lse, ival *Z, ref_row *row, const ival *s);

/* (E4) A[i,J] = exp(T[i,J] - LSE[i]) = e_J / Z; fills row->A.  Pre: Z the
   enclosure E3 made, so Z.lo >= 1 (its largest term is exp(0) = 1). */
void ref_slice_softmax(ref_row *row, const ival *Z);

/* (E5) the numerator w of W[J,c] = w / ref_reduce_den(p):
   product prod_m (V_m + vb_m), or the sum for sum and mean.  Pre: b, kv
   head g and channel c in range, J n keys in 0..L-1; w at precision prec_W
   (checked exact). */
void ref_reduce(mpfr_t w, ref_ctx *ctx, int b, int g, const int *J, int c);
/* 1 for product and sum, n for mean. */
unsigned long ref_reduce_den(const nsx_problem *p);

/* (E6) O[i,c] = out_scale * sum_J A[i,J] W[J,c] for c in 0..dv-1; o holds
   dv enclosures at the row's precision.  Pre: N >= 1, row->A filled (E4). */
void ref_contract(ival *o, ref_ctx *ctx, const ref_row *row);

/* Exact outputs: 1 with *out set when O[i,c] is proven rational (every
   group of tuples with equal score has the same mean reduced value), else
   0.  perm is the row's tuples sorted by raw score (ref_row_sort).
   Pre: N >= 1, 0 <= c < dv. */
int ref_exact_output(double *out, ref_ctx *ctx, const ref_row *row, const size_t *perm, int c);
/* Exact LSE: 1 with *out set when the row has a single allowed tuple and
   its score is rational, else 0.  Pre: N >= 1. */
int ref_exact_lse(double *out, ref_ctx *ctx, const ref_row *row);
/* perm[0..N-1] = the tuple indices ordered by raw score; 0, or -1 when
   out of memory. */
int ref_row_sort(size_t *perm, const ref_row *row);

/* Stable sort: perm[0..N-1] = 0..N-1 ordered so that before(perm[x],
   perm[y]) never holds for x < y.  0, or -1 when out of memory.
   Pre: before not NULL; perm not NULL unless N = 0. */
int ref_sort(size_t *perm, size_t N, int (*before)(size_t a, size_t b, void *arg), void *arg);

/* The candidate keys of one selection row (b, i) and their E8 scores. */
typedef struct ref_irow {
    int b, i;
    size_t C;            /* candidate keys, ascending in j[] */
    int *j;
    int exact;           /* 1: S[] exact (relu, identity, given scores);
                            0: Se[] enclosures (softmax act) */
    mpfr_t *S;           /* [C] exact scores */
    mpfr_t *x;           /* [Hi x C] exact logits idx_scale <qI, kI> */
    ival *Se;            /* [C] score enclosures */
    ival *e;             /* [C] scratch: one head's exponentials */
    int Hi;              /* heads of x[] */
} ref_irow;

/* Exact precisions of the indexer (E8). */
typedef struct ref_ictx {
    const nsx_problem *p;
    const nsx_inputs *in;
    mpfr_prec_t prec_x;  /* a logit, or the difference of two, is exact */
    mpfr_prec_t prec_S;  /* a relu/identity score is exact */
} ref_ictx;

void ref_ictx_init(ref_ictx *ictx, const nsx_problem *p, const nsx_inputs *in);
void ref_irow_clear(ref_irow *row);

/* (E8) the candidates of (b, i) and their exact logits and scores, into a
   zeroed or cleared row.  0, or an exit code: NSX_E_INPUT when a read
   input is not finite, NSX_E_NOMEM when out of memory.  Pre: (b, i) in
   range. */
int ref_indexer_collect(ref_irow *row, const ref_ictx *ictx, int b, int i, nsx_err *err);
/* (E8) softmax act: the score enclosures Se[] at precision prec.  Pre: the
   row is not exact (act softmax); a valid MPFR precision. */
void ref_indexer_softmax(ref_irow *row, const ref_ictx *ictx, mpfr_prec_t prec);
/* 1 when candidates a and b are proven to have equal scores.  Pre: a, b < C. */
int ref_indexer_tie(const ref_irow *row, const ref_ictx *ictx, size_t a, size_t b);
/* Softmax act, exact case: 1 with *out set to the common score when every
   weighted head has equal logits over all candidates (S = sum_h w_h / C).
   Pre: C >= 1. */
int ref_indexer_uniform(double *out, const ref_irow *row, const ref_ictx *ictx);

/* (E9) the top-k of the row into sel_row[0..k-1] (ascending, -1 pads):
   1 when the choice is proven, 0 when enclosures still overlap (raise the
   precision), -1 when out of memory.  Pre: k >= 1. */
int ref_topk(int32_t *sel_row, const ref_irow *row, const ref_ictx *ictx, int k);

#endif
