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
#include "nsimplex/ref.h"
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

/* A given selection (source INDICES) lists a valid index at most once per
   row: 0, or NSX_E_INPUT with err set. */
int ref_check_given_selection(const nsx_problem *p, const int32_t *sel, nsx_err *err);

/* The selection S(i) a pass reads, for forward and backward alike: *sel =
   the given indices (checked), or the computed selection (E8, E9) written
   to dst, or to a buffer of its own (*own, for the caller to free) when dst
   is NULL, with the indexer's scores to scores (may be NULL); *sel = NULL
   without a selection.  0, or an error kind (nothing to free then). */
int ref_selection(const nsx_problem *p, const nsx_inputs *in, int32_t *dst, double *scores,
                  const nsx_ref_opts *opts, nsx_ref_stats *st, const int32_t **sel, int32_t **own, nsx_err *err);

/* One query row (b, h, i).  Its allowed tuples are enumerated afresh by
   each pass (ref_row_pass), their raw scores recomputed: nothing is kept
   per tuple, so a row's memory does not grow with |Z(i)| (a dense row of
   n = 3, L = 200 held 3 GB).  Only the exact cases, which group the tuples
   by score, store them (ref_row_store), for a row that a first round of
   Ziv's loop leaves undecided. */
typedef struct ref_row {
    int b, h, g, i;
    size_t N;           /* allowed tuples (ref_row_scan) */
    mpfr_t M;           /* the raw score T_raw of a tuple whose score s T_raw
                           is maximal (prec_T) */
    mpfr_t t;           /* the current tuple's raw score in a pass (prec_T) */
    int nonfinite;      /* an allowed tuple reads a NaN or an infinity */
    size_t cap;         /* room of J and T */
    int *J;             /* stored: N x n key positions (ref_row_store) */
    mpfr_t *T;          /* stored: N exact raw scores (prec_T) */
} ref_row;

void ref_row_init(ref_row *row);
void ref_row_clear(ref_row *row);
/* The allowed tuples of (b, h, i) (E2), counted, and the largest score
   (E1) for the sign of s, without storing them: N, M, nonfinite.  0, or an
   exit code.  Pre: (b, h, i) in range; s_sign in -1..1; ctx initialized. */
int ref_row_scan(ref_row *row, ref_ctx *ctx, int b, int h, int i, int s_sign, nsx_err *err);
/* Calls visit(arg, J, T_raw) for every allowed tuple of the scanned row, in
   lexicographic order, T_raw exact (E1).  Pre: the row was scanned and has
   no non-finite tuple. */
void ref_row_pass(ref_row *row, ref_ctx *ctx, void (*visit)(void *arg, const int *J, mpfr_srcptr T),
                  void *arg);
/* Stores the scanned row's N tuples and raw scores in J and T (for the
   exact cases).  0, or NSX_E_NOMEM with err set.  Pre: the row was
   scanned. */
int ref_row_store(ref_row *row, ref_ctx *ctx, nsx_err *err);
/* One round of E3-E6 over a scanned row at precision prec: lse and
   o[0..dv) (enclosures, set to prec here) enclose LSE and O.  The unit of
   Ziv's loop in nsx_ref_forward.  Pre: N >= 1, no non-finite tuple. */
void ref_row_enclose(ref_ctx *ctx, ref_row *row, mpfr_prec_t prec, ival *lse, ival *o);

/* (E1) the exact raw score T_raw[i,J] = sum_l Q[i,l] prod_m (K_m[j_m,l] + kb_m)
   Pre: (b, h, i) in range, J n keys in 0..L-1; t at precision prec_T
   (every step is checked exact: REF_EXACT). */
void ref_score(mpfr_t t, ref_ctx *ctx, int b, int h, int i, const int *J);

/* The score scale s of E1 as an enclosure at s's precision, and its sign.
   Pre: d >= 1; a given score_scale is finite. */
void ref_score_scale(ival *s, const nsx_problem *p);
int ref_score_scale_sign(const nsx_problem *p);

/* (E3) one tuple's term: e = exp(s (T_raw - M)), and Z += e.  D is exact
   scratch at prec_T.  Pre: N >= 1, s and Z enclosures; T_raw - M exact at
   prec_T (checked: REF_EXACT). */
void ref_slice_lse_add(ival *Z, ival *e, mpfr_t D, mpfr_srcptr T, const ref_row *row, const ival *s);
/* (E3) LSE = log sum_J exp(s T_raw) = s M + log Z, once Z holds every
   term.  Pre: N >= 1; s an enclosure; Z the sum of the terms, so Z.lo >= 1
   (its largest term is exp(0) = 1). */
void ref_slice_lse(ival *lse, const ival *Z, const ref_row *row, const ival *s);

/* (E4) A[i,J] = exp(T[i,J] - LSE[i]) = e_J / Z, applied to the dv sums of
   E6: sum_J A_J x_J = (sum_J e_J x_J) / Z.  Pre: Z.lo >= 1, as above. */
void ref_slice_softmax(ival *o, int dv, const ival *Z);

/* (E5) the numerator w of W[J,c] = w / ref_reduce_den(p):
   product prod_m (V_m + vb_m), or the sum for sum and mean.  Pre: b, kv
   head g and channel c in range, J n keys in 0..L-1; w at precision prec_W
   (checked exact). */
void ref_reduce(mpfr_t w, ref_ctx *ctx, int b, int g, const int *J, int c);
/* 1 for product and sum, n for mean. */
unsigned long ref_reduce_den(const nsx_problem *p);

/* (E6) O[i,c] = out_scale * sum_J A[i,J] W[J,c], in two steps: for each
   tuple, o_c += e_J w_Jc (ref_contract_add; w is scratch at prec_W); once
   the sums are divided by Z (E4), o_c = out_scale * o_c / den
   (ref_contract_scale).  o holds dv enclosures at the working precision.
   Pre: e an enclosure, J the row's keys. */
void ref_contract_add(ival *o, ref_ctx *ctx, const ref_row *row, const int *J, const ival *e, mpfr_t w);
void ref_contract_scale(ival *o, const ref_ctx *ctx);

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

/* (E2) the mask term by term: 1 when key j may stand in dimension m of a
   tuple of query i (causal, window_m, and, when m is restricted, in_sel:
   whether j is in S(i)); nsx_ref_allowed is every dimension's term and
   ref_distinct_ok. */
int ref_allowed_dim(const nsx_problem *p, int i, int m, int j, int in_sel);
/* (E2) the distinct term: 1 when distinct is off or the J[m] differ. */
int ref_distinct_ok(const nsx_problem *p, const int *J);

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
