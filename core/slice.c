/* The slice Z(i) of (E2): its terms, key ranges and an iterator (slice.h). */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/error.h"
#include "nsimplex/slice.h"
#include "proofs/derived.h"

/* ---- the terms ------------------------------------------------------------------ */

/*@ requires causal == 0 || causal == 1;
    requires i >= 0 && j >= 0;
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> causal_m(causal, i, j);
*/
int nsx_key_causal(int causal, int i, int j)
{
    assert(causal == 0 || causal == 1);
    assert(i >= 0 && j >= 0);
    return !causal || j <= i;
}

/*@ requires causal == 0 || causal == 1;
    requires w >= 0 && i >= 0 && j >= 0;
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> window_m(causal, w, i, j);
*/
int nsx_key_window(int causal, int w, int i, int j)
{
    assert(causal == 0 || causal == 1);
    assert(w >= 0 && i >= 0 && j >= 0);
    if (w == 0)
        return 1;
    /* i - w and j - i cannot overflow: i, j, w are all non-negative */
    return i - w < j && (causal || j - i < w);
}

/*@ requires k >= 1 && L >= 1;
    requires \valid_read(row + (0 .. k - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 ==> in_sel((int32_t *)row, k, L, j);
    ensures \result == 0 ==> !in_sel((int32_t *)row, k, L, j);
*/
int nsx_key_selected(const int32_t *row, int k, int L, int j)
{
    assert(row != NULL && k >= 1 && L >= 1);
    /*@ loop invariant 0 <= r <= k;
        loop invariant \forall integer s; 0 <= s < r ==> !(row[s] == j && 0 <= j < L);
        loop assigns r;
        loop variant k - r;
    */
    for (int r = 0; r < k; r++)
        if (row[r] == j && row[r] >= 0 && row[r] < L)
            return 1;
    return 0;
}

/*@ requires 1 <= n <= NSX_MAX_ORDER;
    requires \valid_read(J + (0 .. n - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> distinct(1, (int *)J, n);
*/
int nsx_tuple_distinct(int n, const int *J)
{
    assert(n >= 1 && n <= NSX_MAX_ORDER && J != NULL);
    /*@ loop invariant 0 <= a <= n;
        loop invariant \forall integer x, y; 0 <= x < y < n && x < a ==> J[x] != J[y];
        loop assigns a;
        loop variant n - a;
    */
    for (int a = 0; a < n; a++)
        /*@ loop invariant a + 1 <= b <= n;
            loop invariant \forall integer y; a < y < b ==> J[a] != J[y];
            loop assigns b;
            loop variant n - b;
        */
        for (int b = a + 1; b < n; b++)
            if (J[a] == J[b])
                return 0;
    return 1;
}

/*@ requires L >= 1 && 0 <= i < L && w >= 0;
    requires causal == 0 || causal == 1;
    requires \valid(lo) && \valid(hi) && \separated(lo, hi);
    assigns *lo, *hi;
    ensures *lo == first_key(w, i) && *hi == last_key(L, causal, w, i);
    ensures 0 <= *lo <= i <= *hi < L;
    // with lemma window_interval: lo <= j <= hi exactly when key, causal, window
*/
void nsx_key_range(int L, int causal, int w, int i, int *lo, int *hi)
{
    assert(L >= 1 && i >= 0 && i < L && w >= 0);
    assert(causal == 0 || causal == 1);
    /* past side: i - w < j, i.e. j >= i - w + 1 (no overflow: i >= 0, w >= 1) */
    *lo = w > 0 && i - w + 1 > 0 ? i - w + 1 : 0;
    /* future side: j <= i when causal; else j - i < w, i.e. j <= i + w - 1,
       compared as w - 1 < L - 1 - i so that i + w is never formed */
    *hi = causal ? i : w > 0 && w - 1 < L - 1 - i ? i + (w - 1) : L - 1;
}

/*@ requires \valid_read(p) && 0 <= m < p->n <= NSX_MAX_ORDER;
    requires p->causal == 0 || p->causal == 1;
    requires p->window[m] >= 0;
    requires 0 <= i < p->L && 0 <= j < p->L;
    requires p->sel.source != NSX_SEL_NONE ==>
        1 <= p->sel.k && \valid_read(sel_row + (0 .. p->sel.k - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> causal_m(p->causal, i, j) && window_m(p->causal, p->window[m], i, j) &&
                              (restricted(p, m) ==> in_sel((int32_t *)sel_row, p->sel.k, p->L, j));
*/
int nsx_key_allowed(const nsx_problem *p, const int32_t *sel_row, int i, int m, int j)
{
    assert(p != NULL && m >= 0 && m < p->n);
    assert(i >= 0 && i < p->L && j >= 0 && j < p->L);
    if (!nsx_key_causal(p->causal, i, j) || !nsx_key_window(p->causal, p->window[m], i, j))
        return 0;
    if (p->sel.source != NSX_SEL_NONE && (p->sel.dims >> m & 1u))
        return nsx_key_selected(sel_row, p->sel.k, p->L, j);
    return 1;
}

/*@ requires \valid_read(p) && 1 <= p->n <= NSX_MAX_ORDER;
    requires p->causal == 0 || p->causal == 1;
    requires \forall integer m; 0 <= m < p->n ==> p->window[m] >= 0;
    requires 0 <= i < p->L;
    requires \valid_read(J + (0 .. p->n - 1));
    requires \forall integer m; 0 <= m < p->n ==> key(p->L, J[m]);
    requires p->sel.source != NSX_SEL_NONE ==>
        1 <= p->sel.k && \valid_read(sel_row + (0 .. p->sel.k - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 ==> allowed(p, (int32_t *)sel_row, i, (int *)J);
    ensures \result == 0 ==> !allowed(p, (int32_t *)sel_row, i, (int *)J);
*/
int nsx_slice_allowed(const nsx_problem *p, const int32_t *sel_row, int i, const int *J)
{
    /*@ loop invariant 0 <= m <= p->n;
        loop invariant \forall integer x; 0 <= x < m ==>
            causal_m(p->causal, i, J[x]) && window_m(p->causal, p->window[x], i, J[x]) &&
            (restricted(p, x) ==> in_sel(sel_row, p->sel.k, p->L, J[x]));
        loop assigns m;
        loop variant p->n - m;
    */
    for (int m = 0; m < p->n; m++)
        if (!nsx_key_allowed(p, sel_row, i, m, J[m]))
            return 0;
    return !p->distinct || nsx_tuple_distinct(p->n, J);
}

/* a * b, or SIZE_MAX when it does not fit */
/*@ assigns \nothing;
    ensures \result == (a * b <= SIZE_MAX ? a * b : SIZE_MAX);
*/
static size_t mul_sat(size_t a, size_t b)
{
    if (b != 0 && a > SIZE_MAX / b) {
        /*@ assert a * b > SIZE_MAX; */
        return SIZE_MAX;
    }
    /*@ assert a * b <= SIZE_MAX; */
    return a * b;
}

/* map[j] = 1 exactly for the keys j of S(i), the valid entries of
   row[0..k) (0 <= j < L), 0 for every other j < L. */
/*@ requires 0 <= k && 1 <= L;
    requires \valid_read(row + (0 .. k - 1));
    requires \valid(map + (0 .. L - 1));
    requires \separated(row + (0 .. k - 1), map + (0 .. L - 1));
    assigns map[0 .. L - 1];
    ensures \forall integer j; 0 <= j < L ==> (map[j] != 0 <==> in_sel((int32_t *)row, k, L, j));
*/
static void sel_map(const int32_t *row, int k, int L, unsigned char *map)
{
    /*@ loop invariant 0 <= j <= L;
        loop invariant \forall integer x; 0 <= x < j ==> map[x] == 0;
        loop assigns j, map[0 .. L - 1];
        loop variant L - j;
    */
    for (int j = 0; j < L; j++)
        map[j] = 0;
    /*@ loop invariant 0 <= r <= k;
        loop invariant \forall integer j; 0 <= j < L ==> (map[j] != 0 <==> in_sel((int32_t *)row, r, L, j));
        loop assigns r, map[0 .. L - 1];
        loop variant k - r;
    */
    for (int r = 0; r < k; r++)
        if (row[r] >= 0 && row[r] < L)
            map[row[r]] = 1;
}

/* The keys lo..hi, only those with map[j] set when restricted, to out,
   ascending; returns their count: C_m(i) from its range and S(i). */
/*@ requires 0 <= lo && lo <= hi + 1 && hi < L && 1 <= L;
    requires \valid(out + (0 .. hi - lo));
    requires \valid_read(map + (0 .. L - 1));
    requires \separated(out + (0 .. hi - lo), map + (0 .. L - 1));
    assigns out[0 .. hi - lo];
    ensures 0 <= \result <= hi - lo + 1;
    ensures ascending(out, \result);
    ensures \forall integer x; 0 <= x < \result ==> lo <= out[x] <= hi;
    ensures \forall integer j; listed(out, \result, j) <==>
        (lo <= j <= hi && (restricted == 0 || map[j] != 0));
*/
static int range_keys(int lo, int hi, int restricted, const unsigned char *map, int L, int *out)
{
    (void)L; /* map's length: read by the contract only */
    int len = 0;
    /*@ loop invariant lo <= j <= hi + 1 && 0 <= len <= j - lo;
        loop invariant ascending(out, len);
        loop invariant \forall integer x; 0 <= x < len ==> lo <= out[x] < j;
        loop invariant \forall integer y; listed(out, len, y) <==>
            (lo <= y < j && (restricted == 0 || map[y] != 0));
        loop assigns j, len, out[0 .. hi - lo];
        loop variant hi - j;
    */
    for (int j = lo; j <= hi; j++)
        if (!restricted || map[j]) {
            out[len] = j;
            /*@ assert listed(out, len + 1, j); */
            len++;
        }
    return len;
}

/* The odometer over pos[0..n) (digit m walks 0..len[m]-1, the last digit
   fastest): moves pos to the next tuple in lexicographic order; returns the
   lowest digit that moved, or -1 after the last (pos then all 0).
   simd/tiles.c's nsx_tile_next is a deliberate independent copy. */
/*@ requires 1 <= n <= NSX_MAX_ORDER;
    requires \valid(pos + (0 .. n - 1)) && \valid_read(len + (0 .. n - 1));
    requires \separated(pos + (0 .. n - 1), len + (0 .. n - 1));
    requires \forall integer m; 0 <= m < n ==> 0 <= pos[m] < len[m];
    assigns pos[0 .. n - 1];
    ensures \forall integer m; 0 <= m < n ==> 0 <= pos[m] < len[m];
    ensures -1 <= \result < n;
    ensures \result >= 0 ==>
        pos[\result] == \old(pos[\result]) + 1 &&
        (\forall integer m; 0 <= m < \result ==> pos[m] == \old(pos[m])) &&
        (\forall integer m; \result < m < n ==> pos[m] == 0 && \old(pos[m]) == len[m] - 1);
    ensures \result == -1 ==>
        \forall integer m; 0 <= m < n ==> pos[m] == 0 && \old(pos[m]) == len[m] - 1;
*/
static int odometer_step(int *pos, const int *len, int n)
{
    int m = n - 1;
    /*@ loop invariant -1 <= m < n;
        loop invariant \forall integer x; 0 <= x <= m ==> pos[x] == \at(pos[x], Pre);
        loop invariant \forall integer x; m < x < n ==> pos[x] == 0 && \at(pos[x], Pre) == len[x] - 1;
        loop assigns m, pos[0 .. n - 1];
        loop variant m;
    */
    while (m >= 0) {
        if (pos[m] + 1 < len[m]) {
            pos[m]++;
            return m;
        }
        pos[m] = 0;
        m--;
    }
    return -1;
}

size_t nsx_slice_bound(const nsx_problem *p, int i)
{
    assert(p != NULL && i >= 0 && i < p->L);
    size_t prod = 1;
    for (int m = 0; m < p->n; m++) {
        int lo, hi;
        nsx_key_range(p->L, p->causal, p->window[m], i, &lo, &hi);
        size_t count = (size_t)(hi - lo) + 1;
        if (p->sel.source != NSX_SEL_NONE && (p->sel.dims >> m & 1u) && (size_t)p->sel.k < count)
            count = (size_t)p->sel.k;
        prod = mul_sat(prod, count);
    }
    return prod;
}

/* ---- the iterator ---------------------------------------------------------------- */

int nsx_slice_init(nsx_slice *z, const nsx_problem *p)
{
    assert(p != NULL && p->n >= 1 && p->n <= NSX_MAX_ORDER && p->L >= 1);
    memset(z, 0, sizeof *z);
    z->p = p;
    z->store = malloc((size_t)p->n * (size_t)p->L * sizeof *z->store);
    z->selmap = malloc((size_t)p->L);
    if (!z->store || !z->selmap) {
        nsx_slice_free(z);
        return NSX_E_NOMEM;
    }
    for (int m = 0; m < p->n; m++)
        z->keys[m] = z->store + (size_t)m * p->L;
    return 0;
}

size_t nsx_slice_start(nsx_slice *z, int i, const int32_t *sel_row)
{
    assert(z->p != NULL && z->store != NULL);
    const nsx_problem *p = z->p;
    assert(i >= 0 && i < p->L);
    const int selecting = p->sel.source != NSX_SEL_NONE;
    if (selecting) {
        assert(sel_row != NULL);
        sel_map(sel_row, p->sel.k, p->L, z->selmap);
    }
    size_t prod = 1;
    for (int m = 0; m < p->n; m++) {
        int lo, hi;
        nsx_key_range(p->L, p->causal, p->window[m], i, &lo, &hi);
        const int restricted = selecting && (p->sel.dims >> m & 1u);
        z->len[m] = range_keys(lo, hi, restricted, z->selmap, p->L, z->keys[m]);
        prod = mul_sat(prod, (size_t)z->len[m]);
    }
    nsx_slice_rewind(z);
    return prod;
}

void nsx_slice_rewind(nsx_slice *z)
{
    assert(z->p != NULL && z->store != NULL);
    int empty = 0;
    for (int m = 0; m < z->p->n; m++) {
        z->pos[m] = 0;
        empty |= z->len[m] == 0;
    }
    z->state = empty ? 2 : 0;
}

int nsx_slice_next(nsx_slice *z)
{
    assert(z->p != NULL && z->store != NULL);
    const int n = z->p->n;
    int low = n;
    for (;;) {
        if (z->state == 2)
            return 0;
        if (z->state == 0) {
            z->state = 1;
            low = 0;
        } else {
            /* the odometer: last dimension fastest */
            int m = odometer_step(z->pos, z->len, n);
            if (m < 0) {
                z->state = 2;
                return 0;
            }
            if (m < low)
                low = m;
        }
        for (int m = 0; m < n; m++)
            z->J[m] = z->keys[m][z->pos[m]];
        if (!z->p->distinct || nsx_tuple_distinct(n, z->J)) {
            z->moved = low;
            return 1;
        }
    }
}

void nsx_slice_free(nsx_slice *z)
{
    free(z->store);
    free(z->selmap);
    memset(z, 0, sizeof *z);
}
