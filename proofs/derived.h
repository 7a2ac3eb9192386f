/*
 * Facts derived from proofs/spec.h that several proofs share: list
 * predicates, and the interval of keys that causal and a window leave.
 * Each lemma here is proven by WP with every file that includes it
 * (make prove, docs/PROOFS.md).
 */
#ifndef NSX_PROOFS_DERIVED_H
#define NSX_PROOFS_DERIVED_H

#include "proofs/spec.h"

/*@
  // keys[0..len) strictly ascending (so each key once)
  predicate ascending(int *keys, integer len) =
      \forall integer a, b; 0 <= a < b < len ==> keys[a] < keys[b];
  predicate listed(int *keys, integer len, integer j) =
      \exists integer r; 0 <= r < len && keys[r] == j;
  // The keys causal and window w leave of 0..L-1 for query i, 0 <= i < L,
  // are the interval [first_key, last_key] (lemma window_interval)
  logic integer first_key(integer w, integer i) =
      w > 0 && i - w + 1 > 0 ? i - w + 1 : 0;
  logic integer last_key(integer L, integer causal, integer w, integer i) =
      causal != 0 ? i : (w > 0 && i + w - 1 < L - 1 ? i + w - 1 : L - 1);
  lemma window_interval: \forall integer L, causal, w, i, j;
      0 <= i < L && w >= 0 ==>
        (first_key(w, i) <= j <= last_key(L, causal, w, i) <==>
         key(L, j) && causal_m(causal, i, j) && window_m(causal, w, i, j));
*/

#endif /* NSX_PROOFS_DERIVED_H */
