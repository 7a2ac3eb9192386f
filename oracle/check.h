/*
 * Judging a candidate's outputs against a golden vector (docs/ORACLE.md
 * section 4; docs/SPEC.md section 5): every element against its derived
 * bound (oracle/bound.h), empty-slice rows, non-finite values, the
 * selection as a set (with tie tolerance), the gradients of a backward case
 * (ORACLE.md section 8, oracle/bound_bwd.h), and leak pairs, mask probes
 * and gradient leak pairs bit for bit.
 */
#ifndef NSX_ORACLE_CHECK_H
#define NSX_ORACLE_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "io/meta.h"
#include "nsimplex/error.h"
#include "nsimplex/problem.h"
#include "oracle/model.h"

/* A candidate's outputs, decoded exactly to binary64 (every float dtype
   embeds; -0 and +0 stay distinct, so bitwise comparisons of the decoded
   values are comparisons of the candidate's own bits). */
typedef struct nsx_candidate {
    const double *o;      /* [B, L, H, dv]; required */
    const double *lse;    /* [B, H, L]; NULL when the candidate has none */
    const int32_t *sel;   /* [B, L, k]; NULL when absent.  Judged only when
                             the vector computes its selection */
    /* gradients (SPEC E7), each NULL when absent; judged when the vector
       has expected gradients (a Backward case) */
    const double *dq;                 /* [B, L, H, d] */
    const double *dk[NSX_MAX_ORDER];  /* [B, L, Hkv, d] */
    const double *dv[NSX_MAX_ORDER];  /* [B, L, Hkv, dv] */
} nsx_candidate;

/* The element with the largest error/bound ratio of one output. */
typedef struct nsx_check_worst {
    int found;
    int b, h, i, c;       /* c = -1 for lse */
    double err, bound, ratio;
    double expected, candidate;
    size_t tuples;        /* |Z(i)| of the row; for a gradient element the
                             terms of its sum */
    double max_score;     /* the row's largest score T[i,J] (NaN for dk, dv) */
    int m;                /* gradients: 0 for dq, m for dk_m and dv_m; for
                             them h is the head (kv head for dk, dv), i the
                             position, c the column */
} nsx_check_worst;

#define NSX_CHECK_NOTES 8

/* What a failure note is about (so that callers never parse its text). */
enum nsx_check_note_kind {
    NSX_NOTE_SEL = 1,   /* the selection */
    NSX_NOTE_EMPTY,     /* an output of an empty slice */
    NSX_NOTE_BOUND,     /* an element beyond its bound, or not the exact value */
    NSX_NOTE_PAIR,      /* a leak pair or mask probe */
    NSX_NOTE_GRAD,      /* a gradient element beyond its bound, or not 0
                           where no allowed tuple reaches it */
    NSX_NOTE_SCORE      /* an indexer score beyond its bound (nsx_check_indexer) */
};

/* What was done with the gradients (nsx_check_report.grad_status). */
enum nsx_grad_status {
    NSX_GRAD_NONE = 0,      /* neither the vector nor the candidate has any */
    NSX_GRAD_JUDGED,        /* the candidate's gradients judged (some may be absent) */
    NSX_GRAD_ABSENT,        /* the vector has gradients, the candidate none */
    NSX_GRAD_NO_EXPECTED    /* the candidate has gradients, the vector none: not judged */
};

typedef struct nsx_check_report {
    int pass;
    char model[160];            /* canonical model text */
    int lse_conv;               /* the empty-slice convention assumed */
    size_t o_judged, o_failed, o_nonfinite;
    int lse_present;
    size_t lse_judged, lse_failed;
    size_t rows, rows_empty, rows_empty_failed, rows_unjudged;
    int sel_status;             /* 0: not judged (no computed selection),
                                   1: judged, 2: computed but absent */
    size_t sel_rows, sel_failed, sel_differ; /* differ: valid, not the golden set;
                                   o judged against the reference recomputed
                                   with the candidate's selection */
    size_t pairs_leak, pairs_probe, pair_rows, pair_failed;
    size_t pairs_gradleak, pair_keys; /* gradient leak pairs; their key
                                   gradient blocks (dk_m, dv_m at positions >= t)
                                   compared, failures counted in pair_failed */
    nsx_check_worst worst_o, worst_lse;
    /* gradients (docs/ORACLE.md section 8) */
    int grad_status;            /* enum nsx_grad_status */
    int grad_tensors, grad_absent; /* tensors judged, tensors absent from the candidate */
    size_t grad_judged, grad_failed, grad_nonfinite;
    size_t grad_zero, grad_zero_failed; /* elements no allowed tuple reaches: exactly 0 */
    size_t grad_unbounded;      /* elements without a finite bound (a row whose
                                   weights cannot be bounded): finiteness only */
    nsx_check_worst worst_dq, worst_dk, worst_dv;
    int nnotes;                 /* the first failures, one line each */
    char notes[NSX_CHECK_NOTES][224];
    int note_kind[NSX_CHECK_NOTES]; /* enum nsx_check_note_kind of each note */
    size_t failures;            /* all failures counted */
    /* nsx_check_indexer only (0 otherwise): the indexer's scores */
    int indexer;                /* 1: an indexer's report (E8, E9 alone) */
    int s_present;              /* the candidate gave scores */
    size_t s_judged, s_failed;
    nsx_check_worst worst_s;    /* h = -1, c = the key j */
} nsx_check_report;

/*
 * Judges cand against the golden vector (p, info, in, expected) under model
 * m.  p is checked; in holds the inputs p needs; expected->o and ->lse are
 * the golden outputs, expected->sel the golden selection for computed
 * sources (computed here with nsx_ref_select when NULL), expected->sel_scores
 * the golden indexer scores (likewise).  info (flags, pairs) may be NULL.
 * Fills rep and returns 0 whether the candidate passed (rep->pass = 1) or
 * failed; returns NSX_E_NOT_APPLICABLE with err set when the vector is not
 * applicable under m (ORACLE.md 3.1), NSX_E_INPUT when it is inconsistent,
 * NSX_E_NOMEM or NSX_E_INTERNAL when out of memory or the reference fails.  Pre (asserted): every pointer but
 * info is not NULL, and so are expected->o, expected->lse and cand->o.
 */
int nsx_check(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
              const nsx_outputs *expected, const nsx_candidate *cand, const nsx_model *m,
              nsx_check_report *rep, nsx_err *err);

/*
 * The vector's own claims, checked against its data (docs/SPEC.md 4.5): for
 * each leak pair, the inputs of batches a and b agree at every position a
 * row <= t reads (all positions when the problem is not causal); for each
 * mask probe, they differ only in k_dim and v_dim at position j, and no
 * allowed tuple of row i uses j in dimension dim; in a gradient case, do
 * agrees on those rows too; for each gradient leak pair, every input agrees
 * except q and do before t; and, when ex is not NULL, the expected o and
 * lse (and dq; for a gradient leak pair also dk_m, dv_m at positions >= t)
 * of the promised rows agree bit for bit across the pair.
 * A vector that breaks its own claim would fail every correct kernel (and
 * pass `verify`, which checks values, not claims).  Returns 0, or
 * NSX_E_INPUT with err = "pair X (leak, batches A and B): ...", or
 * NSX_E_NOMEM.  in->sel, or ex->sel for a computed selection, gives S(i);
 * a selected dimension without either is not checked for use.
 */
int nsx_pairs_consistent(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
                         const nsx_outputs *ex, nsx_err *err);

/* How far expected values that are not correctly rounded may be from the
   exact ones: |expected o - O| <= o[...] and |expected lse - LSE| <= lse[...]
   elementwise, in the layouts of the outputs; a NULL member is 0. */
typedef struct nsx_expected_unc {
    const double *o;      /* [B, L, H, dv] */
    const double *lse;    /* [B, H, L] */
    /* the gradients' (a backward case), in their layouts */
    const double *dq;
    const double *dk[NSX_MAX_ORDER];
    const double *dv[NSX_MAX_ORDER];
} nsx_expected_unc;

/*
 * nsx_check against expected values known only within unc (the fuzzer's
 * binary64 loop reference): each element's bound is taken at the worst
 * exact value the uncertainty allows, and the uncertainty is added to it
 * (docs/ORACLE.md 3.10; gradients 8.6), so an honest kernel still passes
 * and the report's bounds include unc.  unc NULL: nsx_check.  Values recomputed with a
 * candidate's own selection are exact and judged without unc.
 */
int nsx_check_unc(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
                  const nsx_outputs *expected, const nsx_expected_unc *unc, const nsx_candidate *cand,
                  const nsx_model *m, nsx_check_report *rep, nsx_err *err);

/* The slices' tuples per thread of nsx_check_threads, at least: a smaller
   problem (the fuzzer's) starts no thread. */
#define NSX_CHECK_TUPLES_PER_THREAD ((size_t)1 << 14)

/*
 * nsx_check_unc with the rows' bounds computed in threads threads (0: one
 * per online CPU; nsx_check and nsx_check_unc pass 0), at most one per
 * NSX_CHECK_TUPLES_PER_THREAD tuples of the slices' sizes (nsx_slice_bound).  The verdict, report and error are the
 * same for any count (the rows are judged in order after).  Pre: as
 * nsx_check_unc; threads >= 0.
 */
int nsx_check_threads(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
                      const nsx_outputs *expected, const nsx_expected_unc *unc, const nsx_candidate *cand,
                      const nsx_model *m, int threads, nsx_check_report *rep, nsx_err *err);

/* The report for people: the worst elements, the counts per check, the
   first failures and a last line "PASS ..." or "FAIL ...".  label names the
   candidate; info may be NULL. */
void nsx_check_print(FILE *f, const nsx_check_report *rep, const nsx_case_info *info, const char *label);

/* The report as one JSON object (one line, malloc'd; NULL when out of
   memory). */
char *nsx_check_json(const nsx_check_report *rep, const nsx_case_info *info, const char *label);

/* An indexer's outputs (E8, E9 alone; docs/ORACLE.md 5.2), decoded to
   binary64 like nsx_candidate's. */
typedef struct nsx_idx_candidate {
    const double *scores; /* [B, L, L]: S'[i,j] for the candidates j of i (the
                             others not read); NULL when absent */
    const int32_t *sel;   /* [B, L, k]: S(i) as a set, -1 pads; NULL when absent */
} nsx_idx_candidate;

/*
 * Judges an indexer's outputs for the vector (p, in, expected) under model
 * m (its idx, idxblk keys included; ORACLE.md 5.1): every candidate score
 * S'[i,j] against tau_ij plus its rounding to m's output format, and each
 * selection row as a set: an entry other than -1 that is not a candidate
 * key (out of range, or in the future with causal on) fails, as do
 * duplicates and a count other than min(k, |C(i)|); keys whose exact score
 * is within tolerance of the k-th are interchangeable.  expected->sel and
 * ->sel_scores are the golden ones (computed here when NULL).  At least one
 * of cand's members must be given.  Fills rep (rep->indexer = 1; the
 * selection in sel_rows, sel_failed, sel_differ) and returns 0 whatever the
 * verdict; NSX_E_INPUT when p's selection is not computed by an indexer or
 * cand is empty, NSX_E_NOT_APPLICABLE when an input is out of the model's
 * range, NSX_E_NOMEM, or the reference's error.
 */
int nsx_check_indexer(const nsx_problem *p, const nsx_inputs *in, const nsx_outputs *expected,
                      const nsx_idx_candidate *cand, const nsx_model *m, nsx_check_report *rep, nsx_err *err);

/* nsx_check_indexer's report for people, and as one JSON line (malloc'd). */
void nsx_check_indexer_print(FILE *f, const nsx_check_report *rep, const nsx_case_info *info, const char *label);
char *nsx_check_indexer_json(const nsx_check_report *rep, const nsx_case_info *info, const char *label);

#endif
