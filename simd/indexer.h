/*
 * The optimized float32 indexer and top-k (docs/SPEC.md section 2, E8 and
 * E9): code under test, a deliberate independent implementation of what
 * ref/indexer.c and ref/topk.c compute exactly (it shares nothing with
 * them), never used to make golden values.
 *
 *   (E8) S[i,j] = sum_h w[i,h] act(idx_scale <qI[i,h,:], kI[j,:]>)   j in C(i)
 *   (E9) S(i)   = the first min(k, |C(i)|) candidates ordered by S
 *                 descending, then j ascending
 *
 * C(i) = {0..i} with causal on, {0..L-1} otherwise (SPEC 2.1: windows and
 * distinct do not change the candidates; E2 masks a selected key outside a
 * window later).
 *
 * How it works (simd/indexer.c): per batch the indexer keys are packed once
 * into strips of NR keys, transposed ([di][NR] each, zero beyond L).  Query
 * groups go to OpenMP threads, latest first; per query and strip the ISA
 * tile (simd/idx_kern.h) computes the NR scores from all Hi heads in
 * registers, and a running top-k per query (a heap of k entries, with a
 * vectorised threshold test in front of it) keeps the best keys; a short
 * row (|C(i)| <= k) keeps all its candidates without it.  Keys
 * arrive in ascending j, so an equal score never displaces a kept key: the
 * tie rule of E9 falls out of the streaming order.  softmax needs each
 * head's max and sum over C(i) first: one streaming pass for those, then a
 * second for the scores (the logits are recomputed, not stored).  Nothing
 * of size L^2 is held unless the caller asks for the scores.
 */
#ifndef NSX_SIMD_INDEXER_H
#define NSX_SIMD_INDEXER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where the scores come from (the values of enum nsx_sel_source). */
#define NSX_SIMD_IDX_INDEXER 2 /* E8 from idx_q, idx_k, idx_w */
#define NSX_SIMD_IDX_SCORES 3  /* given scores idx_s */

/* Activations (the values of enum nsx_act). */
#define NSX_SIMD_ACT_RELU 0
#define NSX_SIMD_ACT_SOFTMAX 1
#define NSX_SIMD_ACT_IDENTITY 2

typedef struct nsx_simd_idx_problem {
    int B, L;
    int source;        /* NSX_SIMD_IDX_* */
    int Hi, di;        /* source INDEXER */
    int act;           /* NSX_SIMD_ACT_* (source INDEXER) */
    double idx_scale;  /* source INDEXER; applied in float32 */
    int causal;        /* 1: C(i) = {0..i} */
    int k;             /* top-k, >= 1 */
} nsx_simd_idx_problem;

/* float32 inputs and outputs, row-major as in SPEC 0.2. */
typedef struct nsx_simd_idx_io {
    const float *idx_q;  /* [B, L, Hi, di] */
    const float *idx_k;  /* [B, L, di] */
    const float *idx_w;  /* [B, L, Hi] */
    const float *idx_s;  /* [B, L, L]: source SCORES; non-candidates not read */
    int32_t *sel;        /* [B, L, k] out: S(i) ascending, -1 pads; may be NULL */
    float *scores;       /* [B, L, L] out: S[i,j], -inf for j not in C(i); may be NULL */
} nsx_simd_idx_io;

/*
 * 0 when nsx_simd_indexer can compute p with io, else -1 and one line in
 * why (may be NULL): sizes outside 1..NSX_MAX_DIM (Hi, di only for the
 * indexer source), k < 1, an unknown source or activation, causal not 0/1,
 * a non-finite idx_scale, tensors too large to index, a NULL input.
 */
int nsx_simd_indexer_check(const nsx_simd_idx_problem *p, const nsx_simd_idx_io *io, char *why,
                           size_t whylen);

/*
 * E8 and E9 in float32 on threads (0: OpenMP's default) with the ISA
 * nsx_simd_isa resolves (NSX_ISA forces one).  Writes io->sel and io->scores
 * where not NULL.  A NaN score (only from overflowing float32 arithmetic;
 * the inputs must be finite) ranks below every other score.  Each query is
 * computed by one thread in a fixed order, so the result does not depend on
 * threads.  Returns NSX_SIMD_OK, NSX_SIMD_UNSUPPORTED (the check fails;
 * nothing written), NSX_SIMD_EISA or NSX_SIMD_ENOMEM (nothing written).
 */
int nsx_simd_indexer(const nsx_simd_idx_problem *p, const nsx_simd_idx_io *io, int threads);

/* The same with the ISA given; NSX_SIMD_EISA when the CPU lacks it. */
int nsx_simd_indexer_isa(const nsx_simd_idx_problem *p, const nsx_simd_idx_io *io, int threads,
                         int isa);

/*
 * E9 alone on one row of scores s[0..len) for the keys j0 .. j0+len-1
 * (every one a candidate), with isa's threshold test: writes the selected
 * keys ascending to sel[0..k) with -1 pads.  Returns NSX_SIMD_OK,
 * NSX_SIMD_EISA or NSX_SIMD_ENOMEM.  (For tests of the tie rule and short
 * rows on their own.)
 */
int nsx_simd_topk_row(const float *s, int len, int j0, int k, int32_t *sel, int isa);

struct nsx_problem;
struct nsx_inputs;

/*
 * E8 and E9 for a problem of the reference's kind (nsimplex/problem.h) whose
 * selection is computed (source INDEXER or SCORES): its binary64 inputs are
 * converted to float32 (exact for inputs representable in f32), then
 * nsx_simd_indexer_isa runs on isa (-1: nsx_simd_isa's) with threads.
 * Writes sel [B, L, k] (ascending, -1 pads) and, when not NULL, scores
 * [B, L, L] (the float32 scores as binary64, -inf off the candidates).
 * Returns as nsx_simd_indexer, and NSX_SIMD_UNSUPPORTED for a problem
 * without a computed selection.
 */
int nsx_simd_select(const struct nsx_problem *p, const struct nsx_inputs *in, int32_t *sel,
                    double *scores, int threads, int isa);

/* Scratch bytes one thread allocates for p (besides the packed keys,
   B-independent: ceil(L / NR) NR di floats, shared). */
size_t nsx_simd_indexer_scratch_bytes(const nsx_simd_idx_problem *p);

#ifdef __cplusplus
}
#endif

#endif /* NSX_SIMD_INDEXER_H */
