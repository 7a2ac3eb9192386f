/*
 * docs/SPEC.md's masks (E2) and top-k (E9) as ACSL logic definitions, in
 * the spec's notation, for the Frama-C WP proofs (docs/PROOFS.md).  Tick
 * each line off against SPEC 1.3 (E2), 2.1 (C(i)) and 2.3 (E9).
 *
 * Only comments for a C compiler: the proven files include this header so
 * that their contracts can name these definitions.  Everything is over
 * ACSL's mathematical integers and reals, so the logic itself never
 * overflows; the code's machine arithmetic is proven against it.
 *
 * Dimension m of the spec (m = 1..n) is index m-1 here, as in the code.
 */
#ifndef NSX_PROOFS_SPEC_H
#define NSX_PROOFS_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/problem.h"

/*@
  // ---- E2, one dimension: key j of dimension m for query i ----------------

  // causal(i,J) = (j_m <= i for every m) when causal is on, true when off
  predicate causal_m(integer causal, integer i, integer j) =
      causal != 0 ==> j <= i;

  // window_m(i,j) = true                                 when w_m = 0
  //               = (i - w_m < j)                        when w_m > 0, causal on
  //               = (i - w_m < j and j < i + w_m)        when w_m > 0, causal off
  // (a negative window is bad input: every caller requires w >= 0)
  predicate window_m(integer causal, integer w, integer i, integer j) =
      w == 0 ||
      (w > 0 && i - w < j && (causal != 0 || j < i + w));

  // S(i) given as a row of k indices (SPEC 2.4): the set of its valid
  // entries, 0 <= j < L; -1 pads and any other index are ignored
  predicate in_sel(int32_t *row, integer k, integer L, integer j) =
      0 <= j < L && \exists integer r; 0 <= r < k && row[r] == j;

  // select term of dimension m: j_m in S(i) when m is in D (bit m of dims)
  predicate select_m(integer restricted, int32_t *row, integer k, integer L, integer j) =
      restricted != 0 ==> in_sel(row, k, L, j);

  // a key of the tuple space: J = (j_1..j_n), each in 0..L-1
  predicate key(integer L, integer j) = 0 <= j < L;

  // The keys that dimension m allows for query i on its own: causal and the
  // window, and the selection when the dimension is restricted.  E2 is the
  // conjunction of these over m, and distinct(J) (SPEC 1.3).
  predicate allowed_m(integer L, integer causal, integer w, integer restricted,
                           int32_t *row, integer k, integer i, integer j) =
      key(L, j) && causal_m(causal, i, j) && window_m(causal, w, i, j) &&
      select_m(restricted, row, k, L, j);

  // distinct(J) = (j_m != j_m' for all m != m') when distinct is on
  predicate distinct(integer distinct, int *J, integer n) =
      distinct != 0 ==>
        \forall integer a, b; 0 <= a < b < n ==> J[a] != J[b];

  // ---- E2 on the reference's problem (include/nsimplex/problem.h) ---------
  // restricted(m): a selection exists and bit m of dims is set
  predicate restricted(struct nsx_problem *p, integer m) =
      p->sel.source != 0 && ((p->sel.dims >> m) & 1) != 0;

  predicate causal(struct nsx_problem *p, integer i, int *J) =
      \forall integer m; 0 <= m < p->n ==> causal_m(p->causal, i, J[m]);
  predicate window(struct nsx_problem *p, integer i, int *J) =
      \forall integer m; 0 <= m < p->n ==>
        window_m(p->causal, p->window[m], i, J[m]);
  predicate select(struct nsx_problem *p, int32_t *row, integer i, int *J) =
      \forall integer m; 0 <= m < p->n ==>
        (restricted(p, m) ==> in_sel(row, p->sel.k, p->L, J[m]));

  // (E2) allowed(i,J) = causal(i,J) and window(i,J) and select(i,J) and distinct(J)
  predicate allowed(struct nsx_problem *p, int32_t *row, integer i, int *J) =
      causal(p, i, J) && window(p, i, J) && select(p, row, i, J) &&
      distinct(p->distinct, J, p->n);

  // ---- SPEC 2.1: candidate keys of E9 -------------------------------------
  // C(i) = { j : 0 <= j <= i } when causal is on, { 0..L-1 } when off
  predicate candidate(integer causal, integer L, integer i, integer j) =
      0 <= j < L && (causal != 0 ==> j <= i);

  // ---- E9: top-k -----------------------------------------------------------
  // Candidate c of a row (0 <= c < |C(i)|) is the key jk[c]; score(ctx, c) is
  // its exact real score S[i, jk[c]] (E8, or given), which the proofs never
  // compute: it is what the reference's MPFR comparisons decide (their
  // contracts, ref/topk_core.h, are the assumption).
  axiomatic Score { logic real score(void *ctx, integer c); }

  // E9's order: S[i,j] descending, and among equal S[i,j], j ascending
  predicate before(void *ctx, int *jk, integer a, integer b) =
      score(ctx, a) > score(ctx, b) ||
      (score(ctx, a) == score(ctx, b) && jk[a] < jk[b]);

  // min(k, |C(i)|), the size of S(i) (short rows and k >= |C(i)| included)
  logic integer topk_size(integer k, integer C) = k < C ? k : C;

  // chosen(c): candidate c is among the first K of the order perm[0..C)
  predicate chosen(size_t *perm, integer K, integer c) =
      \exists integer x; 0 <= x < K && perm[x] == c;

  // perm is an ordering of the C candidates: each exactly once
  predicate ordering(size_t *perm, integer C) =
      (\forall integer x; 0 <= x < C ==> perm[x] < C) &&
      (\forall integer x, y; 0 <= x < y < C ==> perm[x] != perm[y]) &&
      (\forall integer c; 0 <= c < C ==> chosen(perm, C, c));

  // (E9) S(i) = the first min(k, |C(i)|) candidates in that order: for
  // perm an ordering of the candidates, S(i) = { perm[x] : x < min(k, C) }
  // exactly when each of those comes before each of the others
  predicate topk(void *ctx, int *jk, size_t *perm, integer C, integer k) =
      \forall integer x, y; 0 <= x < topk_size(k, C) <= y < C ==>
        before(ctx, jk, perm[x], perm[y]);
*/

#endif /* NSX_PROOFS_SPEC_H */
