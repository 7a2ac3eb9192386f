/*
 * (E9) S(i) = the k candidate keys j with the highest S[i,j]; ties at the
 * k-th place go to the smaller j; fewer than k candidates: all of them.
 *
 * Equivalently S(i) is the first k candidates in the total order "higher
 * score first, then smaller j".  The candidates are sorted by a proposal of
 * that order (the lower end of each score's enclosure, exact when the
 * scores are), and the choice is accepted only when it is proven: every
 * chosen key a and every other key b have S_a > S_b (enclosures apart), or
 * a proven tie S_a = S_b with a < b.
 */
#include <assert.h>
#include <stdlib.h>

#include "ref/internal.h"

typedef struct {
    const ref_irow *row;
    const ref_ictx *ictx;
} order_arg;

static mpfr_srcptr score_lo(const ref_irow *row, size_t c)
{
    return row->exact ? row->S[c] : row->Se[c].lo;
}

static mpfr_srcptr score_hi(const ref_irow *row, size_t c)
{
    return row->exact ? row->S[c] : row->Se[c].hi;
}

/* the proposal: higher lower end first, then smaller j */
static int comes_first(size_t a, size_t b, void *arg)
{
    const ref_irow *row = ((const order_arg *)arg)->row;
    int cmp = mpfr_cmp(score_lo(row, a), score_lo(row, b));
    return cmp > 0 || (cmp == 0 && row->j[a] < row->j[b]);
}

/* a before b is proven */
static int proven_first(const ref_irow *row, const ref_ictx *ictx, size_t a, size_t b)
{
    if (ref_indexer_tie(row, ictx, a, b))
        return row->j[a] < row->j[b];
    return mpfr_cmp(score_lo(row, a), score_hi(row, b)) > 0;
}

static int ascending(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

int ref_topk(int32_t *sel_row, const ref_irow *row, const ref_ictx *ictx, int k)
{
    assert(sel_row && row && ictx && k >= 1);
    size_t C = row->C, K = (size_t)k < C ? (size_t)k : C;
    size_t *perm = malloc((C ? C : 1) * sizeof *perm);
    order_arg arg = {row, ictx};
    if (!perm || ref_sort(perm, C, comes_first, &arg)) {
        free(perm);
        return -1;
    }
    int proven = 1;
    for (size_t x = 0; x < K && proven; x++)
        for (size_t y = K; y < C && proven; y++)
            proven = proven_first(row, ictx, perm[x], perm[y]);
    if (proven) {
        for (int r = 0; r < k; r++)
            sel_row[r] = (size_t)r < K ? row->j[perm[r]] : -1;
        qsort(sel_row, K, sizeof *sel_row, ascending);
    }
    free(perm);
    return proven;
}
