/*
 * The per-element error bound of docs/ORACLE.md (section 3, equations
 * B1-B14): for one query row (b, h, i) of a problem, how far an honest
 * kernel that computes in the formats of a precision model (oracle/model.h)
 * may land from the exact O[i,c] and LSE[i].
 *
 * The bound is computed in binary64 from the row's inputs, its exact
 * outputs (the golden values, correctly rounded to binary64), and
 * per-tuple quantities recomputed in binary64 from the inputs, then enlarged
 * by a stated margin (ORACLE.md 3.9) so that its own rounding cannot make it
 * smaller than the bound derived in exact arithmetic.
 */
#ifndef NSX_ORACLE_BOUND_H
#define NSX_ORACLE_BOUND_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/problem.h"
#include "nsimplex/slice.h"
#include "oracle/bound_prob.h"
#include "oracle/model.h"

/* Tuples of a row whose per-tuple quantities the bound keeps (48 bytes
   each); beyond them it recomputes. */
#define NSX_BOUND_CACHE ((size_t)1 << 16)

/* The per-channel sums of a row's values pass (oracle/bound.c chan_sums). */
#define NSX_BOUND_CHAN_SUMS 20

/* What the bound knows about one row. */
typedef struct nsx_row_bound {
    size_t N;        /* allowed tuples |Z(i)| (0: empty slice, no bound computed) */
    int nonfinite;   /* 1: an allowed tuple reads a NaN or an infinity (no bound) */
    double t_max;    /* the largest score T[i,J] over the slice (binary64) */
    double b_max;    /* the largest score error bound b_J (B2) */
    double lse;      /* the bound on |LSE' - LSE| (B14), in the model's LSE form (B15) */
    double lse_form; /* the exact LSE in the model's form (lseform, ORACLE.md 3.8.1): LSE itself
                        for ln, else computed in binary64 (its error is in lse) */
} nsx_row_bound;

/* Problem, inputs, model and scratch for computing bounds row by row. */
typedef struct nsx_bound_ctx {
    const nsx_problem *p;
    const nsx_inputs *in;
    nsx_model model;
    char model_text[160];
    size_t acc_lim;        /* the most tuples the model's accumulation can bound (3.1) */
    size_t chain_lim;      /* the most tuples the bound's own arithmetic can carry (3.9) */
    /* scratch, independent of the tuple count */
    nsx_slice z;           /* the iterator over Z(i) (n L keys, L flags) */
    double *cache;         /* 9 doubles for each of the first cache_cap tuples of a row */
    size_t cache_cap;      /* <= NSX_BOUND_CACHE; a row beyond it recomputes its
                              tuples, to the same values (a test may lower it) */
    double *acc;           /* NSX_BOUND_CHAN_SUMS * dv sums of the values pass */
    nsx_prob_groups pg;    /* bound=prob: the key groups of ORACLE.md 9.3, 9.9 */
    double *pg_sq;         /* bound=prob: their n * dv sums of squares */
    double *xs;            /* 4 L + 2 di: indexer logits and quantization errors */
    double *terms;         /* NULL, or NSX_BT_COUNT * dv doubles the caller owns: each row's
                              terms of B8-B13 per channel (enum nsx_bound_term), for diagnosis */
} nsx_bound_ctx;

/* The terms of one output's bound (ORACLE.md B8-B13, P1-P4, 9.8), written
   to ctx->terms[c * NSX_BT_COUNT + t] by nsx_bound_row when ctx->terms is
   set.  The X's, the underflow terms and Theta are in the frame of mu (B8):
   an X contributes |os| X / (1 - Theta) to the output's bound. */
enum nsx_bound_term {
    NSX_BT_X1, NSX_BT_X2, NSX_BT_X3,   /* as used: the smaller of worst and prob */
    NSX_BT_X1W, NSX_BT_X2W, NSX_BT_X3W, /* the worst case (B9-B11) */
    NSX_BT_X1_COH, NSX_BT_X1_TUP, NSX_BT_X1_KEY, NSX_BT_X1_RESC, /* P1's parts */
    NSX_BT_X1_QRY,                     /* P1's part of Q's components (9.9) */
    NSX_BT_X3_TUP, NSX_BT_X3_ACC, NSX_BT_X3_COH,                 /* P3's parts */
    NSX_BT_UNDER,                      /* a^N / S_lo + U_c (B7, 9.1 R3) */
    NSX_BT_THETA,                      /* Theta as used */
    NSX_BT_MUTH,                       /* |mu| Theta */
    NSX_BT_SCALE,                      /* 1 / (1 - Theta) |os| */
    NSX_BT_EPRE,                       /* E_pre (B12) */
    NSX_BT_ULP,                        /* the output's ulp (B13) */
    NSX_BT_COUNT
};

/*
 * Prepares ctx for problem p (checked), inputs in (binary64 views as
 * nsx_case_read gives them) and model m.  Its memory is O(n L + dv) plus
 * a fixed per-tuple cache, whatever the tuple counts.  Returns 0, or
 * NSX_E_NOMEM (err set).  Free with nsx_bound_free.  Pre (asserted): ctx,
 * p, in, m, err not NULL.
 */
int nsx_bound_init(nsx_bound_ctx *ctx, const nsx_problem *p, const nsx_inputs *in,
                   const nsx_model *m, nsx_err *err);

/*
 * The bound for row (b, h, i).
 *
 * sel_row: the k entries of S(i) for (b, i) (the selection the expected
 * values were computed with), NULL without a selection.  o_exact: the dv
 * exact outputs O[i,0..dv-1] (binary64, correctly rounded), lse_exact:
 * LSE[i] likewise.
 * Outputs: o_bound[c] >= 0 bounds |O'[i,c] - O[i,c]| for every honest kernel
 * of the model (docs/ORACLE.md, B13); rb->lse bounds |LSE' - LSE| (B14);
 * rb->N, t_max, b_max describe the row.  For an empty slice (rb->N = 0), a
 * row that reads a non-finite value (rb->nonfinite), or a non-finite
 * lse_exact with rb->N > 0 (an inconsistent vector, for the caller to
 * report) nothing else is computed and o_bound is untouched.
 * Returns 0; NSX_E_NOT_APPLICABLE with err = "not applicable under model
 * M: batch b, head h, query i: <why>" when the row's inputs or
 * intermediates are out of the model's range or the model's formats cannot
 * bound this many tuples (ORACLE.md 3.1; a slice with too many tuples is
 * refused as soon as its enumeration passes ctx->acc_lim or chain_lim).
 * Pre (asserted): (b, h, i) in range; sel_row not NULL when p has a
 * selection; o_exact, o_bound, rb, err not NULL; lse_unc >= 0.
 */
int nsx_bound_row(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row,
                  const double *o_exact, double lse_exact, double *o_bound, nsx_row_bound *rb,
                  nsx_err *err);

/*
 * nsx_bound_row for expected values that are not correctly rounded (the
 * fuzzer's binary64 loop reference, fuzz/dref.c): |o_exact[c] - O[i,c]| <=
 * o_unc[c] and |lse_exact - LSE[i]| <= lse_unc (o_unc NULL: 0).  The bound
 * then holds for every exact value within those intervals (ORACLE.md 3.10);
 * a caller judges |candidate - o_exact[c]| <= o_bound[c] + o_unc[c].
 * nsx_bound_row is this with no uncertainty.
 */
int nsx_bound_row_unc(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row,
                      const double *o_exact, const double *o_unc, double lse_exact, double lse_unc,
                      double *o_bound, nsx_row_bound *rb, nsx_err *err);

/* One allowed tuple of a row as the row's bound saw it (ORACLE.md 3.2-3.4),
   for the gradients' bound (ORACLE.md section 8, oracle/bound_bwd.c). */
typedef struct nsx_bound_tuple {
    const int *J;     /* the tuple (n key positions); valid during the call */
    double T, eT;     /* the score T_J in binary64 and a bound on its error (3.9) */
    double b;         /* b_J: the kernel's score error bound (B2) */
    double A;         /* an upper bound of the weight A_J (3.9) */
    double delta;     /* delta_J of B5 (infinite in a wild row) */
    /* the row's: */
    double theta;     /* Theta of B7 */
    double s_lo;      /* S_lo of B7 */
    int wild;         /* 1: dl >= 1/2 (B5) */
} nsx_bound_tuple;

typedef void (*nsx_bound_visit)(void *arg, const nsx_bound_tuple *t);

/*
 * nsx_bound_row_unc, then, when the row has tuples and a bound, visit(arg,
 * t) once for each allowed tuple in the slice's order with the quantities
 * its bound used.  Same returns.  Pre: as nsx_bound_row_unc; visit not
 * NULL.
 */
int nsx_bound_row_visit(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row, const double *o_exact,
                        const double *o_unc, double lse_exact, double lse_unc, double *o_bound, nsx_row_bound *rb,
                        nsx_bound_visit visit, void *arg, nsx_err *err);

/*
 * The tolerance on the selection scores S[i,j] (E8) for query (b, i): tol[j]
 * (L entries, written for every candidate key j of i) bounds |S'[i,j] -
 * S[i,j]| for an honest kernel of the model (ORACLE.md section 5).  For
 * source SCORES it is the input rounding alone.  Returns 0 or
 * NSX_E_NOT_APPLICABLE (as above).  Pre (asserted): (b, i) in range, tol
 * and err not NULL, the selection computed (source INDEXER or SCORES).
 */
int nsx_bound_sel_tol(nsx_bound_ctx *ctx, int b, int i, double *tol, nsx_err *err);

void nsx_bound_free(nsx_bound_ctx *ctx);

/* 1 when every value of format a is a value of format b (NSX_FORMAT_*):
   then a vector in format a needs no rounding for a kernel reading b.
   Pre (asserted): a and b are formats (NSX_FORMAT_* or NSX_MODEL_TF32),
   not NSX_MODEL_NONE. */
int nsx_format_fits(int a, int b);

#endif
