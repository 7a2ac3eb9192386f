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
#include "ref/topk_core.h"

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

/* ref/topk_core.h's comparisons, on this row's scores: ties decided
   exactly (ref_indexer_tie), and S_a > S_b when their enclosures are apart */
int ref_topk_tie(const void *ctx, size_t a, size_t b)
{
    const order_arg *arg = ctx;
    return ref_indexer_tie(arg->row, arg->ictx, a, b);
}

int ref_topk_above(const void *ctx, size_t a, size_t b)
{
    const ref_irow *row = ((const order_arg *)ctx)->row;
    return mpfr_cmp(score_lo(row, a), score_hi(row, b)) > 0;
}

int ref_topk(int32_t *sel_row, const ref_irow *row, const ref_ictx *ictx, int k)
{
    assert(sel_row && row && ictx && k >= 1);
    size_t C = row->C;
    size_t *perm = malloc((C ? C : 1) * sizeof *perm);
    unsigned char *mark = malloc(C ? C : 1);
    order_arg arg = {row, ictx};
    int proven = -1;
    /* the proposal sorted, then the choice proven (ref/topk_core.c) */
    if (perm && mark && !ref_sort(perm, C, comes_first, &arg))
        proven = ref_topk_choose(sel_row, k, row->j, perm, C, mark, &arg);
    free(perm);
    free(mark);
    return proven;
}
