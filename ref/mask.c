/*
 * (E2) allowed(i,J) = causal(i,J) and window(i,J) and select(i,J) and distinct(J)
 *
 *   causal:   j_m <= i for every m (when the problem is causal)
 *   window:   i - w_m < j_m for every m with w_m > 0, and, when the
 *             problem is not causal, also j_m < i + w_m
 *   select:   j_m in S(i) for every restricted dimension m
 *   distinct: j_a != j_b for a != b (when the problem asks for it)
 *
 * The contracts (ACSL, proofs/spec.h) are proven by `make prove`
 * (docs/PROOFS.md).
 */
#include <assert.h>

#include "nsimplex/ref.h"
#include "proofs/spec.h"
/* the prototypes; Frama-C (make prove) parses this file without MPFR */
#ifndef __FRAMAC__
#include "ref/internal.h"
#endif

/* j in S(i): the valid entries (0 <= j < L) of the row's list. */
/*@ requires \valid_read(p);
    requires 0 <= p->sel.k;
    requires \valid_read(sel_row + (0 .. p->sel.k - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 ==> in_sel(sel_row, p->sel.k, p->L, j);
    ensures \result == 0 ==> !in_sel(sel_row, p->sel.k, p->L, j);
*/
static int selected(const nsx_problem *p, const int32_t *sel_row, int j)
{
    /*@ loop invariant 0 <= r <= p->sel.k;
        loop invariant \forall integer s; 0 <= s < r ==>
            !(sel_row[s] == j && 0 <= j < p->L);
        loop assigns r;
        loop variant p->sel.k - r;
    */
    for (int r = 0; r < p->sel.k; r++)
        if (sel_row[r] == j && sel_row[r] >= 0 && sel_row[r] < p->L)
            return 1;
    return 0;
}

/* Dimension m's terms of E2 for key j: causal, its window, and its
   selection (in_sel: j in S(i)). */
/*@ requires \valid_read(p);
    requires 0 <= m < p->n <= NSX_MAX_ORDER;
    requires p->window[m] >= 0;
    requires 0 <= i < p->L && key(p->L, j);
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> causal_m(p->causal, i, j) && window_m(p->causal, p->window[m], i, j) &&
                              (restricted(p, m) ==> in_sel != 0);
*/
int ref_allowed_dim(const nsx_problem *p, int i, int m, int j, int in_sel)
{
    assert(p && i >= 0 && i < p->L && m >= 0 && m < p->n);
    int w = p->window[m];
    /* causal */
    if (p->causal && j > i)
        return 0;
    /* window of dimension m, one-sided when causal, two-sided when not */
    if (w > 0 && !(i - w < j))
        return 0;
    /* j - i, not i + w: w may be as large as INT_MAX (w >= L is no
       restriction), and i + w would overflow */
    if (w > 0 && !p->causal && !(j - i < w))
        return 0;
    /* selection on dimension m */
    if (p->sel.source != NSX_SEL_NONE && (p->sel.dims >> m & 1u) && !in_sel)
        return 0;
    return 1;
}

/*@ requires \valid_read(p) && 1 <= p->n <= NSX_MAX_ORDER;
    requires \valid_read(J + (0 .. p->n - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> distinct(p->distinct, (int *)J, p->n);
*/
int ref_distinct_ok(const nsx_problem *p, const int *J)
{
    if (p->distinct)
        /*@ loop invariant 0 <= a <= p->n;
            loop invariant \forall integer x, y; 0 <= x < y < p->n && x < a ==> J[x] != J[y];
            loop assigns a;
            loop variant p->n - a;
        */
        for (int a = 0; a < p->n; a++)
            /*@ loop invariant a + 1 <= b <= p->n;
                loop invariant \forall integer y; a < y < b ==> J[a] != J[y];
                loop assigns b;
                loop variant p->n - b;
            */
            for (int b = a + 1; b < p->n; b++)
                if (J[a] == J[b])
                    return 0;
    return 1;
}

/*@ requires \valid_read(p);
    requires 1 <= p->n <= NSX_MAX_ORDER;
    requires \forall integer m; 0 <= m < p->n ==> p->window[m] >= 0;
    requires 0 <= i < p->L;
    requires \valid_read(J + (0 .. p->n - 1));
    requires \forall integer m; 0 <= m < p->n ==> key(p->L, J[m]);
    requires p->sel.source != NSX_SEL_NONE ==> 1 <= p->sel.k && sel_row != \null;
    requires sel_row != \null ==> 0 <= p->sel.k && \valid_read(sel_row + (0 .. p->sel.k - 1));
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 ==> allowed(p, (int32_t *)sel_row, i, (int *)J);
    ensures \result == 0 ==> !allowed(p, (int32_t *)sel_row, i, (int *)J);
*/
int nsx_ref_allowed(const nsx_problem *p, const int32_t *sel_row, int i, const int *J)
{
    assert(p && J && i >= 0 && i < p->L);
    assert(p->sel.source == NSX_SEL_NONE || sel_row);
    /*@ loop invariant 0 <= m <= p->n;
        loop invariant \forall integer x; 0 <= x < m ==>
            causal_m(p->causal, i, J[x]) && window_m(p->causal, p->window[x], i, J[x]) &&
            (restricted(p, x) ==> in_sel(sel_row, p->sel.k, p->L, J[x]));
        loop assigns m;
        loop variant p->n - m;
    */
    for (int m = 0; m < p->n; m++) {
        int in_sel = sel_row && selected(p, sel_row, J[m]);
        if (!ref_allowed_dim(p, i, m, J[m], in_sel))
            return 0;
    }
    /* distinct */
    return ref_distinct_ok(p, J);
}

/*@ requires \valid_read(p) && 0 <= i < p->L;
    assigns \nothing;
    ensures \result == 0 || \result == 1;
    ensures \result == 1 <==> candidate(p->causal, p->L, i, j);
*/
int nsx_ref_is_candidate(const nsx_problem *p, int i, int j)
{
    assert(p && i >= 0 && i < p->L);
    return j >= 0 && j < p->L && (!p->causal || j <= i);
}
