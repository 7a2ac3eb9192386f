/*
 * (E2) allowed(i,J) = causal(i,J) and window(i,J) and select(i,J) and distinct(J)
 *
 *   causal:   j_m <= i for every m (when the problem is causal)
 *   window:   i - w_m < j_m for every m with w_m > 0, and, when the
 *             problem is not causal, also j_m < i + w_m
 *   select:   j_m in S(i) for every restricted dimension m
 *   distinct: j_a != j_b for a != b (when the problem asks for it)
 */
#include <assert.h>

#include "nsimplex/ref.h"
#include "ref/internal.h"

/* j in S(i): the valid entries (0 <= j < L) of the row's list. */
static int selected(const nsx_problem *p, const int32_t *sel_row, int j)
{
    for (int r = 0; r < p->sel.k; r++)
        if (sel_row[r] == j && sel_row[r] >= 0 && sel_row[r] < p->L)
            return 1;
    return 0;
}

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

int ref_distinct_ok(const nsx_problem *p, const int *J)
{
    if (p->distinct)
        for (int a = 0; a < p->n; a++)
            for (int b = a + 1; b < p->n; b++)
                if (J[a] == J[b])
                    return 0;
    return 1;
}

int nsx_ref_allowed(const nsx_problem *p, const int32_t *sel_row, int i, const int *J)
{
    assert(p && J && i >= 0 && i < p->L);
    assert(p->sel.source == NSX_SEL_NONE || sel_row);
    for (int m = 0; m < p->n; m++) {
        int in_sel = sel_row && selected(p, sel_row, J[m]);
        if (!ref_allowed_dim(p, i, m, J[m], in_sel))
            return 0;
    }
    /* distinct */
    return ref_distinct_ok(p, J);
}

int nsx_ref_is_candidate(const nsx_problem *p, int i, int j)
{
    assert(p && i >= 0 && i < p->L);
    return j >= 0 && j < p->L && (!p->causal || j <= i);
}
