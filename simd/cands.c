/* Candidate keys per dimension (simd/cands.h). */
#include <assert.h>
#include <stdlib.h>

#include "simd/cands.h"

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int nsx_sel_row(const nsx_kernel_problem *p, int b, int i, int *out)
{
    assert(p && out && p->topk > 0 && p->sel && b >= 0 && b < p->B && i >= 0 && i < p->L);
    const int32_t *row = p->sel + ((size_t)b * p->L + i) * p->topk;
    int len = 0;
    for (int r = 0; r < p->topk; r++)
        if (row[r] >= 0 && row[r] < p->L)
            out[len++] = row[r];
    qsort(out, (size_t)len, sizeof *out, cmp_int);
    /* A repeated index names the same key once: S(i) is a set. */
    int uniq = 0;
    for (int r = 0; r < len; r++)
        if (uniq == 0 || out[uniq - 1] != out[r])
            out[uniq++] = out[r];
    return uniq;
}

/* The keys [*lo, *hi] that causal and the window leave for query i.
   Deliberate independent copy of core/slice.c's nsx_key_range (simd/ is code under test). */
static void key_range(const nsx_kernel_problem *p, int m, int i, int *lo, int *hi)
{
    long long a = 0, z = p->L - 1, w = p->window[m];
    if (p->causal)
        z = i;
    if (w > 0) {
        if (i - w + 1 > a)
            a = i - w + 1;
        if (!p->causal && i + w - 1 < z)
            z = i + w - 1;
    }
    *lo = (int)a;
    *hi = (int)z;
}

int nsx_cands(const nsx_kernel_problem *p, int m, int i, const int *sel_row, int nsel, int *out)
{
    assert(p && out && m >= 0 && m < p->n && i >= 0 && i < p->L && nsel >= 0 && (sel_row || nsel == 0));
    int lo, hi, len = 0;
    key_range(p, m, i, &lo, &hi);
    if (p->topk > 0 && (p->sel_dims >> m & 1u)) {
        for (int r = 0; r < nsel; r++)
            if (sel_row[r] >= lo && sel_row[r] <= hi)
                out[len++] = sel_row[r];
        return len;
    }
    for (int j = lo; j <= hi; j++)
        out[len++] = j;
    return len;
}

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

int nsx_find_key(const int *keys, int len, int key)
{
    assert(len >= 0 && (keys || len == 0));
    int lo = 0, hi = len - 1;
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
