/*
 * The SIMD forward's whole-tile decisions (simd/tiles.h).
 *
 * The contracts (ACSL, against proofs/spec.h and proofs/derived.h) are
 * proven by `make prove` with -wp-rte (docs/PROOFS.md).  What the kernel
 * (simd/forward.c) visits for query i, in terms of them:
 *   - the work item is skipped whole exactly when some C_m(i) is empty
 *     (nsx_tile_empty; simd/cands.c proves the lists are exactly C_m(i));
 *   - the inner dimension's list [0, cnt) is cut into chunks and each chunk
 *     [0, nk) into column blocks by nsx_tile_len: the first block at 0, each
 *     next one where the one before ended, the last ending at the list's end
 *     (so every key once); a block's nr columns lie in the panel
 *     (nsx_tile_ld);
 *   - in a block of nc keys, bit c of row r is set exactly when c < nc, r is
 *     a real prefix row, and (distinct) the key at c is none of the row's
 *     prefix keys (nsx_tile_cols, nsx_tile_row_mask, nsx_tile_ex);
 *   - the odometer visits the prefixes in order, skipping exactly those
 *     that share levels 0..a with a prefix whose level a repeats a lower
 *     level's key (nsx_tile_dup_level, nsx_tile_next): each skipped prefix
 *     repeats that key, so none is allowed under distinct.
 */
#include <assert.h>
#include <limits.h>

#include "simd/cands.h"
#include "simd/tiles.h"

/*@ // bit c of a mask word
  predicate bit_set(integer m, integer c) = ((m >> c) & 1) != 0;
*/

/*@ requires 0 <= n && \valid_read(cnt + (0 .. n - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> (\exists integer m; 0 <= m < n && cnt[m] == 0);
*/
int nsx_tile_empty(const int *cnt, int n)
{
    /*@ loop invariant 0 <= m <= n;
        loop invariant \forall integer x; 0 <= x < m ==> cnt[x] != 0;
        loop assigns m;
        loop variant n - m;
    */
    for (int m = 0; m < n; m++)
        if (cnt[m] == 0)
            return 1;
    return 0;
}

/*@ requires 0 <= start <= total && 1 <= width;
    assigns \nothing;
    ensures \result == (width < total - start ? width : total - start);
    ensures 0 <= \result <= width && start + \result <= total;
    ensures \result == 0 <==> start == total;
*/
int nsx_tile_len(int total, int start, int width)
{
    return total - start < width ? total - start : width;
}

/*@ requires 1 <= nk && 1 <= nr && nk + nr <= INT_MAX;
    assigns \nothing;
    ensures nk <= \result < nk + nr;
    ensures \result % nr == 0;
    ensures \forall integer cb; 0 <= cb < nk && cb % nr == 0 ==> cb + nr <= \result;
*/
int nsx_tile_ld(int nk, int nr)
{
    int q = (nk + nr - 1) / nr;
    /*@ assert q * nr <= nk + nr - 1 < q * nr + nr; */
    return q * nr;
}

/*@ requires 1 <= nc <= 32;
    assigns \nothing;
    ensures \forall integer c; 0 <= c < 32 ==> (bit_set(\result, c) <==> c < nc);
*/
uint32_t nsx_tile_cols(int nc)
{
    uint32_t m = 0;
    /*@ loop invariant 0 <= c <= nc;
        loop invariant \forall integer x; 0 <= x < 32 ==> (bit_set(m, x) <==> x < c);
        loop assigns c, m;
        loop variant nc - c;
    */
    for (int c = 0; c < nc; c++) {
        uint32_t b = 1u << c;
        /*@ assert \forall integer x; 0 <= x < 32 ==> (bit_set(b, x) <==> x == c); */
        /*@ assert \forall integer x; 0 <= x < 32 ==>
                (bit_set(m | b, x) <==> bit_set(m, x) || bit_set(b, x)); */
        m |= b;
    }
    return m;
}

/*@ requires 0 <= np <= NSX_MAX_ORDER && 0 <= cb;
    requires \valid_read(ex + (0 .. np - 1));
    requires \forall integer k; 0 <= k < np ==> ex[k] >= -1;
    assigns \nothing;
    ensures \forall integer c; 0 <= c < 32 ==>
        (bit_set(\result, c) <==>
            live != 0 && bit_set(cols, c) && (\forall integer k; 0 <= k < np ==> ex[k] != cb + c));
*/
uint32_t nsx_tile_row_mask(uint32_t cols, int live, const int *ex, int np, int cb)
{
    if (!live) {
        /*@ assert \forall integer c; 0 <= c < 32 ==> !bit_set(0, c); */
        return 0u;
    }
    uint32_t m = cols;
    /*@ loop invariant 0 <= k <= np;
        loop invariant \forall integer c; 0 <= c < 32 ==>
            (bit_set(m, c) <==>
                bit_set(cols, c) && (\forall integer x; 0 <= x < k ==> ex[x] != cb + c));
        loop assigns k, m;
        loop variant np - k;
    */
    for (int k = 0; k < np; k++) {
        int e = ex[k] - cb;
        if (e >= 0 && e < 32) {
            uint32_t b = ~(1u << e);
            /*@ assert \forall integer c; 0 <= c < 32 ==> (bit_set(b, c) <==> c != e); */
            /*@ assert \forall integer c; 0 <= c < 32 ==>
                    (bit_set(m & b, c) <==> bit_set(m, c) && bit_set(b, c)); */
            m &= b;
        }
    }
    /*@ assert live != 0; */
    return m;
}

/*@ requires 0 <= nk && \valid_read(inner + (0 .. nk - 1));
    requires ascending((int *)inner, nk);
    requires 0 <= np <= NSX_MAX_ORDER;
    requires \valid_read(keys + (0 .. np - 1));
    requires \valid(ex + (0 .. np - 1));
    requires \separated(ex + (0 .. np - 1), inner + (0 .. nk - 1), keys + (0 .. np - 1));
    assigns ex[0 .. np - 1];
    ensures \forall integer k; 0 <= k < np ==> -1 <= ex[k] < nk;
    ensures \forall integer k, x; 0 <= k < np && 0 <= x < nk ==> (ex[k] == x <==> inner[x] == keys[k]);
*/
void nsx_tile_ex(const int *inner, int nk, const int *keys, int np, int *ex)
{
    /*@ loop invariant 0 <= k <= np;
        loop invariant \forall integer y; 0 <= y < k ==> -1 <= ex[y] < nk;
        loop invariant \forall integer y, x; 0 <= y < k && 0 <= x < nk ==>
            (ex[y] == x <==> inner[x] == keys[y]);
        loop assigns k, ex[0 .. np - 1];
        loop variant np - k;
    */
    for (int k = 0; k < np; k++)
        ex[k] = nsx_find_key(inner, nk, keys[k]);
}

/* Deliberate independent copy of core/slice.c's nsx_tuple_distinct, as a
   level (simd/ is code under test). */
/*@ requires 0 <= np <= NSX_MAX_ORDER && \valid_read(keys + (0 .. np - 1));
    assigns \nothing;
    ensures \result == -1 || 1 <= \result < np;
    ensures \result == -1 <==> distinct(1, (int *)keys, np);
    ensures \result >= 1 ==> distinct(1, (int *)keys, \result) &&
        (\exists integer z; 0 <= z < \result && keys[z] == keys[\result]);
*/
int nsx_tile_dup_level(const int *keys, int np)
{
    /*@ loop invariant 1 <= a <= np || (np == 0 && a == 1);
        loop invariant distinct(1, (int *)keys, a < np ? a : np);
        loop assigns a;
        loop variant np - a;
    */
    for (int a = 1; a < np; a++) {
        /*@ loop invariant 0 <= z <= a;
            loop invariant \forall integer y; 0 <= y < z ==> keys[y] != keys[a];
            loop assigns z;
            loop variant a - z;
        */
        for (int z = 0; z < a; z++)
            if (keys[a] == keys[z])
                return a;
    }
    return -1;
}

/* Deliberate independent copy of core/slice.c's odometer_step, with the
   skip (simd/ is code under test). */
/*@ requires 0 <= np <= NSX_MAX_ORDER && -1 <= dup < np;
    requires \valid(idx + (0 .. np - 1)) && \valid_read(lim + (0 .. np - 1));
    requires \separated(idx + (0 .. np - 1), lim + (0 .. np - 1));
    requires \forall integer k; 0 <= k < np ==> 0 <= idx[k] < lim[k];
    assigns idx[0 .. np - 1];
    ensures \forall integer k; 0 <= k < np ==> 0 <= idx[k] < lim[k];
    ensures -1 <= \result && (dup >= 0 ? \result <= dup : \result < np);
    // the digit that moved went up by one, those below kept theirs, those
    // above it restart at 0; every digit above it up to the last (dup < 0)
    // or up to dup (the prefixes that share digits 0..dup are skipped) was
    // at its end
    ensures \result >= 0 ==>
        idx[\result] == \old(idx[\result]) + 1 &&
        (\forall integer k; 0 <= k < \result ==> idx[k] == \old(idx[k])) &&
        (\forall integer k; \result < k < np ==> idx[k] == 0) &&
        (\forall integer k; \result < k < np && (dup < 0 || k <= dup) ==> \old(idx[k]) == lim[k] - 1);
    // over: every digit up to the last, or up to dup, was at its end
    ensures \result == -1 ==>
        (\forall integer k; 0 <= k < np ==> idx[k] == 0) &&
        (\forall integer k; 0 <= k < np && (dup < 0 || k <= dup) ==> \old(idx[k]) == lim[k] - 1);
*/
int nsx_tile_next(int *idx, const int *lim, int np, int dup)
{
    const int top = dup >= 0 ? dup : np - 1;
    /*@ loop invariant top < k <= np;
        loop invariant \forall integer x; 0 <= x < np ==> idx[x] == \at(idx[x], Pre) || idx[x] == 0;
        loop invariant \forall integer x; 0 <= x <= top ==> idx[x] == \at(idx[x], Pre);
        loop invariant \forall integer x; top < x < k ==> idx[x] == 0;
        loop assigns k, idx[top + 1 .. np - 1];
        loop variant np - k;
    */
    for (int k = top + 1; k < np; k++)
        idx[k] = 0;
    int k = top;
    /*@ loop invariant -1 <= k <= top;
        loop invariant \forall integer x; 0 <= x <= k ==> idx[x] == \at(idx[x], Pre);
        loop invariant \forall integer x; k < x < np ==> idx[x] == 0;
        loop invariant \forall integer x; k < x <= top ==> \at(idx[x], Pre) == lim[x] - 1;
        loop assigns k, idx[0 .. np - 1];
        loop variant k;
    */
    while (k >= 0) {
        if (idx[k] + 1 < lim[k]) {
            idx[k]++;
            return k;
        }
        idx[k] = 0;
        k--;
    }
    return -1;
}
