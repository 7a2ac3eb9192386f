/*
 * Candidate keys per dimension (simd/cands.h).
 *
 * The contracts (ACSL, against proofs/spec.h) are proven by `make prove`
 * (docs/PROOFS.md): the keys a query visits in dimension m are exactly the
 * keys E2's causal, window and selection terms allow there, ascending, none
 * skipped and none extra, and they fit the room nsx_cands_cap sizes.
 */
#include <assert.h>
#include <limits.h>
#include <stdlib.h>

#include "proofs/derived.h"
#include "simd/cands.h"

/*@ // the kernel ABI's problem, as the proofs read it
  predicate kp_ok(nsx_kernel_problem *p, integer m) =
      \valid_read(p) && 1 <= p->L && 0 <= m < p->n <= NSX_MAX_ORDER && p->window[m] >= 0 &&
      0 <= p->topk;
  // bit m of sel_dims: dimension m is restricted to the selection
  predicate kp_restricted(nsx_kernel_problem *p, integer m) =
      p->topk > 0 && ((p->sel_dims >> m) & 1) != 0;
  // the keys that causal and window w_m leave of 0..L-1, at most
  logic integer span(integer L, integer causal, integer w) =
      w > 0 && (causal != 0 ? w : 2 * w - 1) < L ? (causal != 0 ? w : 2 * w - 1) : L;
  logic integer cands_cap(nsx_kernel_problem *p, integer m) =
      p->topk > 0 && ((p->sel_dims >> m) & 1) != 0 &&
      p->topk < span(p->L, p->causal, p->window[m]) ?
          p->topk : span(p->L, p->causal, p->window[m]);
*/

/* The contract: assumed, not proven (qsort is libc's).  keys[0..len)
   ascending, the same set of keys as before. */
/*@ requires 0 <= len;
    requires \valid(keys + (0 .. len - 1));
    assigns keys[0 .. len - 1];
    ensures \forall integer a, b; 0 <= a <= b < len ==> keys[a] <= keys[b];
    ensures \forall integer j; listed(keys, len, j) <==> \at(listed(keys, len, j), Pre);
*/
static void sort_keys(int *keys, int len);

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void sort_keys(int *keys, int len)
{
    qsort(keys, (size_t)len, sizeof *keys, cmp_int);
}

/* The valid entries of row[0..k) (0 <= j < L) to out; returns their count. */
/*@ requires 0 <= k && 1 <= L;
    requires \valid_read(row + (0 .. k - 1));
    requires \valid(out + (0 .. k - 1));
    requires \separated(row + (0 .. k - 1), out + (0 .. k - 1));
    assigns out[0 .. k - 1];
    ensures 0 <= \result <= k;
    ensures \forall integer r; 0 <= r < \result ==> 0 <= out[r] < L;
    ensures \forall integer j; listed(out, \result, j) <==> in_sel(row, k, L, j);
*/
static int valid_entries(const int32_t *row, int k, int L, int *out)
{
    int len = 0;
    /*@ loop invariant 0 <= r <= k && 0 <= len <= r;
        loop invariant \forall integer x; 0 <= x < len ==> 0 <= out[x] < L;
        loop invariant \forall integer x; 0 <= x < len ==> in_sel(row, r, L, out[x]);
        loop invariant \forall integer s; 0 <= s < r && 0 <= row[s] < L ==> listed(out, len, row[s]);
        loop assigns r, len, out[0 .. k - 1];
        loop variant k - r;
    */
    for (int r = 0; r < k; r++)
        if (row[r] >= 0 && row[r] < L) {
            out[len] = row[r];
            /*@ assert listed(out, len + 1, row[r]); */
            len++;
        }
    return len;
}

/* keys[0..len) ascending: drops repeats in place; returns the new count. */
/*@ requires 0 <= len;
    requires \valid(keys + (0 .. len - 1));
    requires \forall integer a, b; 0 <= a <= b < len ==> keys[a] <= keys[b];
    assigns keys[0 .. len - 1];
    ensures 0 <= \result <= len;
    ensures ascending(keys, \result);
    ensures \forall integer j; listed(keys, \result, j) <==> \at(listed(keys, len, j), Pre);
*/
static int unique_keys(int *keys, int len)
{
    int uniq = 0;
    /*@ loop invariant 0 <= r <= len && 0 <= uniq <= r;
        loop invariant uniq == 0 <==> r == 0;
        loop invariant ascending(keys, uniq);
        loop invariant \forall integer x; r <= x < len ==> keys[x] == \at(keys[x], Pre);
        loop invariant \forall integer x; x == r - 1 && uniq > 0 ==> keys[uniq - 1] == \at(keys[x], Pre);
        loop invariant \forall integer j; listed(keys, uniq, j) <==>
            (\exists integer s; 0 <= s < r && \at(keys[s], Pre) == j);
        loop assigns r, uniq, keys[0 .. len - 1];
        loop variant len - r;
    */
    for (int r = 0; r < len; r++)
        if (uniq == 0 || keys[uniq - 1] != keys[r]) {
            keys[uniq] = keys[r];
            uniq++;
        }
    return uniq;
}

/* S(i) from its row of k indices: the valid ones (0 <= j < L), ascending,
   each once, in out; returns their count. */
/*@ requires 0 < k && 1 <= L;
    requires \valid_read(row + (0 .. k - 1));
    requires \valid(out + (0 .. k - 1));
    requires \separated(row + (0 .. k - 1), out + (0 .. k - 1));
    assigns out[0 .. k - 1];
    ensures 0 <= \result <= k;
    ensures ascending(out, \result);
    ensures \forall integer r; 0 <= r < \result ==> 0 <= out[r] < L;
    ensures \forall integer j; listed(out, \result, j) <==> in_sel((int32_t *)row, k, L, j);
*/
static int sel_list(const int32_t *row, int k, int L, int *out)
{
    int len = valid_entries(row, k, L, out);
    sort_keys(out, len);
    /*@ assert \forall integer j; listed(out, len, j) <==> in_sel((int32_t *)row, k, L, j); */
    /* A repeated index names the same key once: S(i) is a set. */
    int uniq = unique_keys(out, len);
    /*@ assert \forall integer r; 0 <= r < uniq ==> listed(out, uniq, out[r]); */
    return uniq;
}

/* Not proven: the row's address (nsx_simd_check bounds B L topk). */
int nsx_sel_row(const nsx_kernel_problem *p, int b, int i, int *out)
{
    assert(p && out && p->topk > 0 && p->sel && b >= 0 && b < p->B && i >= 0 && i < p->L);
    return sel_list(p->sel + ((size_t)b * p->L + i) * p->topk, p->topk, p->L, out);
}

/* The keys [first, last] that causal and the window leave for query i:
   a tile of keys outside them is never visited.  Deliberate independent
   copy of core/slice.c's nsx_key_range (simd/ is code under test). */
/*@ requires kp_ok(p, m) && 0 <= i < p->L;
    assigns \nothing;
    ensures \result == first_key(p->window[m], i);
*/
static int key_first(const nsx_kernel_problem *p, int m, int i)
{
    long long a = 0, w = p->window[m];
    if (w > 0 && i - w + 1 > a)
        a = i - w + 1;
    return (int)a;
}

/*@ requires kp_ok(p, m) && 0 <= i < p->L;
    assigns \nothing;
    ensures \result == last_key(p->L, p->causal, p->window[m], i);
*/
static int key_last(const nsx_kernel_problem *p, int m, int i)
{
    long long z = p->L - 1, w = p->window[m];
    if (p->causal)
        z = i;
    if (w > 0 && !p->causal && i + w - 1 < z)
        z = i + w - 1;
    return (int)z;
}

/* The keys of sel_row[0..nsel) in [lo, hi] to out, ascending. */
/*@ requires 0 <= nsel && lo <= hi + 1;
    requires \valid_read(sel_row + (0 .. nsel - 1));
    requires ascending((int *)sel_row, nsel);
    requires 0 <= room && (room >= nsel || room >= hi - lo + 1);
    requires \valid(out + (0 .. room - 1));
    requires \separated(out + (0 .. room - 1), sel_row + (0 .. nsel - 1));
    assigns out[0 .. room - 1];
    ensures 0 <= \result <= room;
    ensures \result <= nsel && \result <= hi - lo + 1;
    ensures ascending(out, \result);
    ensures \forall integer x; 0 <= x < \result ==> lo <= out[x] <= hi && listed((int *)sel_row, nsel, out[x]);
    ensures \forall integer r; 0 <= r < nsel && lo <= sel_row[r] <= hi ==> listed(out, \result, sel_row[r]);
*/
static int keys_in_list(const int *sel_row, int nsel, int lo, int hi, int room, int *out)
{
    (void)room; /* out's room: read by the contract only */
    int len = 0;
    /*@ loop invariant 0 <= r <= nsel && 0 <= len <= r;
        loop invariant ascending(out, len);
        loop invariant \forall integer x; 0 <= x < len ==> lo <= out[x] <= hi;
        loop invariant len > 0 ==> out[len - 1] >= lo + len - 1;
        loop invariant len > 0 && r < nsel ==> out[len - 1] < sel_row[r];
        loop invariant \forall integer x; 0 <= x < len ==> listed((int *)sel_row, r, out[x]);
        loop invariant \forall integer s; 0 <= s < r && lo <= sel_row[s] <= hi ==> listed(out, len, sel_row[s]);
        loop assigns r, len, out[0 .. room - 1];
        loop variant nsel - r;
    */
    for (int r = 0; r < nsel; r++)
        if (sel_row[r] >= lo && sel_row[r] <= hi) {
            out[len] = sel_row[r];
            /*@ assert listed(out, len + 1, sel_row[r]); */
            len++;
        }
    return len;
}

/* The keys lo..hi to out. */
/*@ requires lo <= hi + 1 && 0 <= hi - lo + 1 <= room && hi < INT_MAX;
    requires \valid(out + (0 .. room - 1));
    assigns out[0 .. room - 1];
    ensures \result == hi - lo + 1;
    ensures \forall integer x; 0 <= x < \result ==> out[x] == lo + x;
*/
static int keys_in_range(int lo, int hi, int room, int *out)
{
    (void)room; /* out's room: read by the contract only */
    int len = 0;
    /*@ loop invariant lo <= j <= hi + 1 && len == j - lo;
        loop invariant \forall integer x; 0 <= x < len ==> out[x] == lo + x;
        loop assigns j, len, out[0 .. room - 1];
        loop variant hi - j;
    */
    for (int j = lo; j <= hi; j++)
        out[len++] = j;
    return len;
}

/*@ requires kp_ok(p, m) && 0 <= i < p->L;
    requires 0 <= nsel && (kp_restricted(p, m) ==> nsel <= p->topk);
    requires \valid_read(sel_row + (0 .. nsel - 1));
    requires ascending((int *)sel_row, nsel);
    requires \valid(out + (0 .. cands_cap(p, m) - 1));
    requires \separated(out + (0 .. cands_cap(p, m) - 1), sel_row + (0 .. nsel - 1));
    requires \separated(out + (0 .. cands_cap(p, m) - 1), p);
    assigns out[0 .. cands_cap(p, m) - 1];
    ensures 0 <= \result <= cands_cap(p, m);
    ensures ascending(out, \result);
    behavior restricted:
      assumes kp_restricted(p, m);
      // out lists the keys of sel_row in the interval of the window
      ensures \forall integer j; listed(out, \result, j) <==>
          first_key(p->window[m], i) <= j <= last_key(p->L, p->causal, p->window[m], i) &&
          listed((int *)sel_row, nsel, j);
    behavior interval:
      assumes !kp_restricted(p, m);
      // out is the interval of the window, each key once, ascending
      ensures \result == last_key(p->L, p->causal, p->window[m], i) - first_key(p->window[m], i) + 1;
      ensures \forall integer x; 0 <= x < \result ==> out[x] == first_key(p->window[m], i) + x;
    complete behaviors;
    disjoint behaviors;
*/
int nsx_cands(const nsx_kernel_problem *p, int m, int i, const int *sel_row, int nsel, int *out)
{
    assert(p && out && m >= 0 && m < p->n && i >= 0 && i < p->L && nsel >= 0 && (sel_row || nsel == 0));
    const int lo = key_first(p, m, i), hi = key_last(p, m, i);
    /*@ assert hi - lo + 1 <= span(p->L, p->causal, p->window[m]); */
    int room = nsx_cands_cap(p, m);
    if (p->topk > 0 && (p->sel_dims >> m & 1u)) {
        /*@ assert kp_restricted(p, m) && room == (p->topk < span(p->L, p->causal, p->window[m]) ?
                     p->topk : span(p->L, p->causal, p->window[m])); */
        int len = keys_in_list(sel_row, nsel, lo, hi, room, out);
        /*@ assert \forall integer j; listed(out, len, j) ==> lo <= j <= hi && listed((int *)sel_row, nsel, j); */
        /*@ assert \forall integer j; lo <= j <= hi && listed((int *)sel_row, nsel, j) ==> listed(out, len, j); */
        /*@ assert len <= room == cands_cap(p, m); */
        return len;
    }
    /*@ assert !kp_restricted(p, m) && room == span(p->L, p->causal, p->window[m]); */
    int len = keys_in_range(lo, hi, room, out);
    /*@ assert len <= room == cands_cap(p, m); */
    return len;
}

/*@ requires kp_ok(p, m);
    assigns \nothing;
    ensures \result == cands_cap(p, m);
    ensures 1 <= \result <= p->L;
*/
/* Deliberate independent copy of a slice bound (core/slice.c): simd/ is code under test. */
int nsx_cands_cap(const nsx_kernel_problem *p, int m)
{
    assert(p && m >= 0 && m < p->n);
    long long cap = p->L, w = p->window[m];
    if (w > 0 && (p->causal ? w : 2 * w - 1) < cap)
        cap = p->causal ? w : 2 * w - 1;
    if (p->topk > 0 && (p->sel_dims >> m & 1u) && p->topk < cap)
        cap = p->topk;
    return (int)cap;
}

/* The contract: simd/cands.h (simd/tiles.c's proofs call it). */
int nsx_find_key(const int *keys, int len, int key)
{
    assert(len >= 0 && (keys || len == 0));
    int lo = 0, hi = len - 1;
    /*@ loop invariant 0 <= lo && hi < len && lo <= hi + 1;
        loop invariant \forall integer x; 0 <= x < lo ==> keys[x] < key;
        loop invariant \forall integer x; hi < x < len ==> keys[x] > key;
        loop assigns lo, hi;
        loop variant hi - lo;
    */
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (keys[mid] < key)
            lo = mid + 1;
        else if (keys[mid] > key)
            hi = mid - 1;
        else
            return mid;
    }
    return -1;
}
