/*
 * The integer core of (E9) top-k (ref/topk.c), apart from MPFR so that it
 * is proven by `make prove` (docs/PROOFS.md) against proofs/spec.h: which
 * candidates a proven order keeps, ties and k >= |C(i)| included, and the
 * ascending row with -1 pads that it writes.
 *
 * Candidate c (0 <= c < C) is key j[c]; ctx is ref/topk.c's row, read only
 * by the two comparisons below, which ref/topk.c implements with MPFR.
 * Their contracts are the proofs' assumption about MPFR (score(ctx, c) is
 * the exact real score of candidate c, proofs/spec.h).
 */
#ifndef NSX_REF_TOPK_CORE_H
#define NSX_REF_TOPK_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "proofs/derived.h"

/* 1 when the scores of a and b are proven equal: exactly when they are. */
/*@ assigns \nothing;
    ensures \result != 0 <==> score((void *)ctx, a) == score((void *)ctx, b);
*/
int ref_topk_tie(const void *ctx, size_t a, size_t b);

/* 1 only when S_a > S_b is proven (0: not proven, or not so). */
/*@ assigns \nothing;
    ensures \result != 0 ==> score((void *)ctx, a) > score((void *)ctx, b);
*/
int ref_topk_above(const void *ctx, size_t a, size_t b);

/* perm orders the C candidates (a proposal of E9's order, ref_sort).  When
   every one of its first min(k, C) comes provably before every other
   (E9: higher score, or an equal score and a smaller j), writes their keys
   ascending to sel_row[0..k), -1 pads after, and returns 1; returns 0 when
   that is not proven (nothing written); -1 when perm is not an ordering.
   mark: room for C. */
int ref_topk_choose(int32_t *sel_row, int k, const int *j, const size_t *perm, size_t C,
                    unsigned char *mark, const void *ctx);

#endif
