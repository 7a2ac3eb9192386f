/*
 * The arbitrary-precision reference (ref/): the equations of docs/SPEC.md
 * computed over GMP/MPFR, every binary64 output correctly rounded, with the
 * proof in the code (ref/README.md explains how).
 *
 * Every output is the exact real value of the equations rounded to nearest
 * (ties to even): either an enclosure [lo, hi] of the exact value is
 * computed, with precision raised until lo and hi round to the same binary64
 * (Ziv's strategy), or the value is proven exact (rational) and rounded
 * directly.  A value that cannot be decided below the precision cap is an
 * error (NSX_E_PRECISION_CAP), never a silently emitted number.
 */
#ifndef NSIMPLEX_REF_H
#define NSIMPLEX_REF_H

#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/problem.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nsx_ref_opts {
    long prec0;          /* first working precision in bits; 0: automatic */
    long prec_cap;       /* largest working precision; 0: 1 << 16 */
    int allow_nonfinite; /* 1: a row whose allowed tuples read a NaN or an
                            infinity gets O = LSE = NaN (leak pairs with
                            NaN/Inf in the future); 0: that is an error */
    const unsigned char *skip; /* [B, L] or NULL: rows (b, i) marked 1 are
                            not computed; their o and lse (and sel_scores)
                            are NaN, their sel all -1 (the rows a leak pair
                            leaves unjudged) */
    int fast;            /* 1: every row first through the fast certified
                            path (ref/fast.c: binary64 and double-double with
                            a proven error bound), and only the rows it
                            leaves undecided through MPFR; the values are
                            the same bit for bit.  0: MPFR for every value */
    int threads;         /* fast path threads; 0: one per online CPU */
    int fast_bound_shift; /* test hook: the fast path's error bounds are
                            multiplied by 2^shift (0..1000), so that
                            outputs become undecided and go to MPFR; the
                            environment variable NSX_FAST_BOUND_SHIFT sets
                            it when this is 0 */
    /* NULL, or called about every 10 s of the fast path with the rows
       taken so far and the rows in all (one thread at a time) */
    void (*progress)(void *arg, uint64_t rows_done, uint64_t rows);
    void *progress_arg;
    uint64_t mpfr_tuples_max; /* with fast: when the rows the fast path leaves
                            to MPFR have more allowed tuples than this in all
                            (nsx_slice_bound), NSX_E_TOO_LARGE instead of
                            computing them (the fuzzer's bounded work); for
                            the backward, the rows of a block (b, kv head)
                            left to MPFR;
                            0: no limit */
} nsx_ref_opts;

typedef struct nsx_ref_stats {
    uint64_t tuples;     /* allowed tuples, summed over rows */
    uint64_t values;     /* binary64 outputs written */
    uint64_t retries;    /* Ziv iterations after the first, summed over rows */
    uint64_t exact;      /* outputs proven exact and rounded directly */
    uint64_t nonfinite_rows; /* rows set to NaN (allow_nonfinite) */
    uint64_t skipped_rows;   /* rows not computed (skip), per head */
    long max_prec;       /* the largest working precision used */
    uint64_t fast_values; /* outputs decided by the fast path */
    uint64_t mpfr_values; /* outputs computed by MPFR (empty, skipped and
                            non-finite rows count on neither side) */
    uint64_t fast_rows, mpfr_rows; /* rows, likewise */
    uint64_t fast_tuples; /* allowed tuples of the rows the fast path decided */
} nsx_ref_stats;

/* total += st, field by field (max_prec: the larger). */
void nsx_ref_stats_add(nsx_ref_stats *total, const nsx_ref_stats *st);

/*
 * (E1)-(E6), with (E8)-(E9) first when the selection is computed.
 *
 * Inputs: p checked (nsx_problem_check), in holds the tensors p needs
 * (in->sel for source INDICES, idx_* for INDEXER/SCORES).  Outputs: out->o
 * [B,L,H,dv] and out->lse [B,H,L] are written; out->sel [B,L,k] when the
 * selection is computed and out->sel is not NULL; out->sel_scores [B,L,L]
 * for source INDEXER when not NULL.  opts and stats may be NULL.
 * Returns 0, or an exit code with err set: NSX_E_INPUT for inputs the
 * problem forbids (a non-finite value read by an allowed tuple, a
 * duplicated index in a given selection), NSX_E_PRECISION_CAP when the
 * precision cap is reached, NSX_E_NOMEM when memory runs out.  Asserted:
 * p, in, out, err, out->o and out->lse are not NULL.
 */
int nsx_ref_forward(const nsx_problem *p, const nsx_inputs *in, nsx_outputs *out,
                    const nsx_ref_opts *opts, nsx_ref_stats *stats, nsx_err *err);

/*
 * (E7) the gradients of F = sum dO * O with respect to q, k_m and v_m, each
 * element the exact value correctly rounded (docs/SPEC.md 1.7, 3.4): the
 * selection (given, or computed first by E8-E9) and the mask are held
 * constant; biases and scales are constants.
 *
 * Inputs: p checked, in as for nsx_ref_forward and in->dout, the upstream
 * gradient dO [B, L, H, dv] (read only in rows with a non-empty slice).
 * Outputs: every element of out->dq, out->dk[0..n-1], out->dv[0..n-1];
 * nothing else of out is written.  With opts->fast, each block (b, kv head)
 * first goes through the fast certified path (ref/fast_bwd.c) and only the
 * elements it leaves undecided through MPFR (from the rows that reach
 * them): the same values bit for bit.
 * opts and stats may be NULL;
 * opts->allow_nonfinite is not supported (a non-finite value read is
 * NSX_E_INPUT), nor is a skip that marks a row (NSX_E_UNSUPPORTED: every
 * row contributes to dk and dv).  Returns 0 or a kind with err set: NSX_E_INPUT,
 * NSX_E_UNSUPPORTED, NSX_E_NOMEM, NSX_E_PRECISION_CAP (an element not
 * decided below the cap: never emitted).
 */
int nsx_ref_backward(const nsx_problem *p, const nsx_inputs *in, nsx_outputs *out,
                     const nsx_ref_opts *opts, nsx_ref_stats *stats, nsx_err *err);

/*
 * (E8)-(E9) alone: the selection S(i) for every (b, i), as the sel tensor
 * [B, L, k] (ascending, -1 pads), and for source INDEXER the correctly
 * rounded scores [B, L, L] (-inf where j is not a candidate) when scores is
 * not NULL.  p->sel.source is INDEXER or SCORES.  Same returns.  Asserted:
 * p, in, sel, err are not NULL.
 */
int nsx_ref_select(const nsx_problem *p, const nsx_inputs *in, int32_t *sel,
                   double *scores, const nsx_ref_opts *opts, nsx_ref_stats *stats,
                   nsx_err *err);

/*
 * (E2) the mask: 1 when the tuple J = (J[0]..J[n-1]) is allowed for query i,
 * else 0.  sel_row is the k entries of S(i) for this (b, i) (any order, -1
 * and out-of-range entries ignored), NULL when p has no selection.
 * Pre (asserted): 0 <= i < L; sel_row not NULL when p has a selection.
 */
int nsx_ref_allowed(const nsx_problem *p, const int32_t *sel_row, int i, const int *J);

/*
 * The candidate keys of the selection for query i (E8, E9): j <= i when
 * causal, every j otherwise (0 for j outside 0..L-1).  Pre (asserted):
 * 0 <= i < L.
 */
int nsx_ref_is_candidate(const nsx_problem *p, int i, int j);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_REF_H */
