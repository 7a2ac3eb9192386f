/*
 * Candidate keys (E2), one dimension at a time.  The mask of (E2) is a
 * product over the dimensions (causal, window and selection each restrict
 * one j_m by itself) except for distinct, so the allowed tuples of query i
 * are C_1(i) x ... x C_n(i) less the tuples with a repeated key.  Every list
 * here is ascending without repeats, whether it is a contiguous range
 * (causal, window) or gathered from a selection row, so one code path in the
 * kernel serves both.
 */
#ifndef NSX_SIMD_CANDS_H
#define NSX_SIMD_CANDS_H

#include "nsimplex/kernel.h"
#include "proofs/derived.h" /* the ACSL predicates of the contracts */

/* The valid entries of sel[b, i, :] (0 <= j < L), ascending, each once, in
   out (room for p->topk); returns their count.  Pre (asserted): p->topk > 0,
   p->sel set, (b, i) in range. */
int nsx_sel_row(const nsx_kernel_problem *p, int b, int i, int *out);

/* C_m(i) for dimension m (0-based): the keys j allowed by causal and the
   window w_m, and when bit m of sel_dims is set, among the selection row
   sel_row[0..nsel) (from nsx_sel_row).  Writes them ascending to out (room
   for nsx_cands_cap(p, m)); returns their count.  Pre (asserted): 0 <= m < n,
   0 <= i < L, nsel >= 0 entries at sel_row. */
int nsx_cands(const nsx_kernel_problem *p, int m, int i, const int *sel_row, int nsel, int *out);

/* An upper bound on the count of C_m(i) over every query i.  Pre: 0 <= m < n. */
int nsx_cands_cap(const nsx_kernel_problem *p, int m);

/* The position of key in the ascending list keys[0..len), or -1.
   Pre: len >= 0, keys not NULL unless len = 0.  Proven (make prove). */
/*@ requires 0 <= len && \valid_read(keys + (0 .. len - 1));
    requires ascending((int *)keys, len);
    assigns \nothing;
    ensures -1 <= \result < len;
    ensures \result >= 0 ==> keys[\result] == key;
    ensures \result == -1 ==> !listed((int *)keys, len, key);
*/
int nsx_find_key(const int *keys, int len, int key);

#endif /* NSX_SIMD_CANDS_H */
