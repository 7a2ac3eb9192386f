/*
 * (E8) S[i,j] = sum_h w[i,h] * act(idx_scale * <qI[i,h,:], kI[j,:]>)   for candidate j
 *
 *   act = relu:     max(0, x)                                (DeepSeek V3.2)
 *   act = identity: x
 *   act = softmax:  exp(x_hj) / sum_{j' candidate} exp(x_hj'), per head h
 *   given scores:   S[i,j] = idx_s[i,j]
 *
 * The candidates of query i are j <= i when causal, every j otherwise.  The
 * logits x and the relu/identity scores are exact (dyadic); the softmax act
 * is an enclosure, shifted by each head's largest logit as in E3.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "ref/exact.h"
#include "ref/internal.h"

void ref_ictx_init(ref_ictx *ictx, const nsx_problem *p, const nsx_inputs *in)
{
    assert(ictx && p && in);
    memset(ictx, 0, sizeof *ictx);
    ictx->p = p;
    ictx->in = in;
    ictx->prec_S = 53; /* given scores are binary64 */
    if (p->sel.source != NSX_SEL_INDEXER)
        return;
    size_t rows = (size_t)p->B * p->L, Hi = (size_t)p->sel.Hi, di = (size_t)p->sel.di;
    /* x = idx_scale * sum_l qI kI: a sum of di products, then times the
       scale; the difference of two logits needs one more bit.  x holds the
       unscaled sum first, so both ranges count: a zero idx_scale empties
       the scaled range, not the sum's (which then needs its own bits) */
    ref_range dot = ref_range_mul(ref_range_of(in->idx_q, rows * Hi * di, 1),
                                  ref_range_of(in->idx_k, rows * di, 1));
    dot = ref_range_sum(dot, (unsigned long)di);
    ref_range x = ref_range_mul(dot, ref_range_d(p->sel.idx_scale));
    mpfr_prec_t pdot = ref_range_prec(dot), px = ref_range_prec(ref_range_add(x, x));
    ictx->prec_x = pdot > px ? pdot : px;
    /* S = sum_h w_h act(x_h): a sum of Hi products */
    ref_range s = ref_range_mul(ref_range_of(in->idx_w, rows * Hi, 1), x);
    ictx->prec_S = ref_range_prec(ref_range_sum(s, (unsigned long)Hi));
}

void ref_irow_clear(ref_irow *row)
{
    for (size_t c = 0; c < row->C; c++) {
        if (row->S)
            mpfr_clear(row->S[c]);
        if (row->Se) {
            ival_clear(&row->Se[c]);
            ival_clear(&row->e[c]);
        }
        for (int h = 0; row->x && h < row->Hi; h++)
            mpfr_clear(row->x[(size_t)h * row->C + c]);
    }
    free(row->j);
    free(row->S);
    free(row->x);
    free(row->Se);
    free(row->e);
    memset(row, 0, sizeof *row);
}

/* x = idx_scale * <qI[b,i,h,:], kI[b,j,:]>, exact */
static void indexer_logit(mpfr_t x, const ref_ictx *ictx, int b, int i, int h, int j, mpfr_t term)
{
    const nsx_problem *p = ictx->p;
    int Hi = p->sel.Hi, di = p->sel.di;
    const double *qI = ictx->in->idx_q + (((size_t)b * p->L + i) * Hi + h) * di;
    const double *kI = ictx->in->idx_k + ((size_t)b * p->L + j) * di;
    mpfr_set_zero(x, 1);
    for (int l = 0; l < di; l++) {
        REF_EXACT(mpfr_set_d(term, qI[l], MPFR_RNDN));
        REF_EXACT(mpfr_mul_d(term, term, kI[l], MPFR_RNDN));
        REF_EXACT(mpfr_add(x, x, term, MPFR_RNDN));
    }
    REF_EXACT(mpfr_mul_d(x, x, p->sel.idx_scale, MPFR_RNDN));
}

static int all_finite(const double *x, size_t count)
{
    for (size_t t = 0; t < count; t++)
        if (!isfinite(x[t]))
            return 0;
    return 1;
}

/* The inputs row (b, i) reads must be finite: its own query, weights and
   given scores, and the keys of its candidates. */
static int check_finite(const ref_ictx *ictx, const ref_irow *row, nsx_err *err)
{
    const nsx_problem *p = ictx->p;
    const nsx_inputs *in = ictx->in;
    size_t bi = (size_t)row->b * p->L + row->i;
    int ok = 1;
    if (p->sel.source == NSX_SEL_SCORES) {
        for (size_t c = 0; c < row->C; c++)
            ok &= all_finite(in->idx_s + bi * p->L + row->j[c], 1);
    } else {
        size_t Hi = (size_t)p->sel.Hi, di = (size_t)p->sel.di;
        ok = all_finite(in->idx_q + bi * Hi * di, Hi * di) && all_finite(in->idx_w + bi * Hi, Hi);
        for (size_t c = 0; c < row->C; c++)
            ok &= all_finite(in->idx_k + ((size_t)row->b * p->L + row->j[c]) * di, di);
    }
    if (ok)
        return 0;
    return nsx_err_set(err, NSX_E_INPUT,
                       "selection of batch %d, query %d reads a NaN or an infinity in %s",
                       row->b, row->i, p->sel.source == NSX_SEL_SCORES ? "idx_s" : "idx_q, idx_k or idx_w");
}

int ref_indexer_collect(ref_irow *row, const ref_ictx *ictx, int b, int i, nsx_err *err)
{
    assert(row && ictx && err && b >= 0 && b < ictx->p->B && i >= 0 && i < ictx->p->L);
    const nsx_problem *p = ictx->p;
    int act = p->sel.source == NSX_SEL_INDEXER ? p->sel.act : NSX_ACT_IDENTITY;
    size_t C = 0;

    memset(row, 0, sizeof *row);
    row->b = b;
    row->i = i;
    row->exact = act != NSX_ACT_SOFTMAX;
    row->j = malloc((size_t)p->L * sizeof *row->j);
    if (!row->j)
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    for (int j = 0; j < p->L; j++)
        if (nsx_ref_is_candidate(p, i, j))
            row->j[C++] = j;
    if (check_finite(ictx, row, err)) {
        free(row->j);
        row->j = NULL;
        return err->kind;
    }
    row->S = malloc((C ? C : 1) * sizeof *row->S);
    if (p->sel.source == NSX_SEL_INDEXER) {
        row->Hi = p->sel.Hi;
        row->x = malloc((C ? C : 1) * (size_t)row->Hi * sizeof *row->x);
    }
    if (!row->exact) {
        row->Se = malloc((C ? C : 1) * sizeof *row->Se);
        row->e = malloc((C ? C : 1) * sizeof *row->e);
    }
    if (!row->S || (row->Hi && !row->x) || (!row->exact && (!row->Se || !row->e))) {
        ref_irow_clear(row);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    row->C = C;

    mpfr_t term, hx;
    mpfr_inits2(ictx->prec_S + ictx->prec_x + 64, term, hx, (mpfr_ptr)0);
    for (size_t c = 0; c < C; c++) {
        mpfr_init2(row->S[c], ictx->prec_S);
        if (!row->exact) {
            ival_init(&row->Se[c], 2);
            ival_init(&row->e[c], 2);
        }
        if (p->sel.source == NSX_SEL_SCORES) {
            /* given scores */
            mpfr_set_d(row->S[c], ictx->in->idx_s[((size_t)b * p->L + i) * p->L + row->j[c]],
                       MPFR_RNDN);
            continue;
        }
        mpfr_set_zero(row->S[c], 1);
        for (int h = 0; h < row->Hi; h++) {
            mpfr_ptr x = row->x[(size_t)h * C + c];
            mpfr_init2(x, ictx->prec_x);
            indexer_logit(x, ictx, b, i, h, row->j[c], term);
            if (!row->exact)
                continue;
            /* S += w_h * act(x) */
            mpfr_set(hx, x, MPFR_RNDN);
            if (act == NSX_ACT_RELU && mpfr_sgn(hx) < 0)
                mpfr_set_zero(hx, 1);
            REF_EXACT(mpfr_mul_d(hx, hx, ictx->in->idx_w[((size_t)b * p->L + i) * row->Hi + h], MPFR_RNDN));
            REF_EXACT(mpfr_add(row->S[c], row->S[c], hx, MPFR_RNDN));
        }
    }
    mpfr_clears(term, hx, (mpfr_ptr)0);
    return 0;
}

void ref_indexer_softmax(ref_irow *row, const ref_ictx *ictx, mpfr_prec_t prec)
{
    assert(row && ictx && !row->exact && prec >= MPFR_PREC_MIN && prec <= MPFR_PREC_MAX);
    const nsx_problem *p = ictx->p;
    size_t C = row->C;
    const double *w = ictx->in->idx_w + ((size_t)row->b * p->L + row->i) * row->Hi;
    mpfr_t D;
    ival Z, t;
    mpfr_init2(D, ictx->prec_x);
    ival_init(&Z, prec);
    ival_init(&t, prec);
    for (size_t c = 0; c < C; c++) {
        ival_set_prec(&row->Se[c], prec);
        ival_set_prec(&row->e[c], prec);
        ival_set_zero(&row->Se[c]);
    }
    for (int h = 0; h < row->Hi; h++) {
        mpfr_t *x = row->x + (size_t)h * C;
        if (w[h] == 0 || C == 0)
            continue;
        /* the head's largest logit */
        size_t top = 0;
        for (size_t c = 1; c < C; c++)
            if (mpfr_cmp(x[c], x[top]) > 0)
                top = c;
        /* e_c = exp(x_c - x_top), Z = sum_c e_c */
        ival_set_zero(&Z);
        for (size_t c = 0; c < C; c++) {
            REF_EXACT(mpfr_sub(D, x[c], x[top], MPFR_RNDN));
            ival_set_fr(&row->e[c], D);
            ival_exp(&row->e[c], &row->e[c]);
            ival_add(&Z, &Z, &row->e[c]);
        }
        /* S_c += w_h e_c / Z */
        for (size_t c = 0; c < C; c++) {
            ival_div_pos(&t, &row->e[c], &Z);
            ival_mul_d(&t, &t, w[h]);
            ival_add(&row->Se[c], &row->Se[c], &t);
        }
    }
    ival_clear(&Z);
    ival_clear(&t);
    mpfr_clear(D);
}

/* Equal exact scores; for the softmax act, equal logits in every weighted
   head (then every head's softmax value is the same for a and b). */
int ref_indexer_tie(const ref_irow *row, const ref_ictx *ictx, size_t a, size_t b)
{
    assert(row && ictx && a < row->C && b < row->C);
    if (row->exact)
        return mpfr_equal_p(row->S[a], row->S[b]);
    const double *w = ictx->in->idx_w + ((size_t)row->b * ictx->p->L + row->i) * row->Hi;
    for (int h = 0; h < row->Hi; h++)
        if (w[h] != 0 && !mpfr_equal_p(row->x[(size_t)h * row->C + a], row->x[(size_t)h * row->C + b]))
            return 0;
    return 1;
}

int ref_indexer_uniform(double *out, const ref_irow *row, const ref_ictx *ictx)
{
    assert(out && row && ictx && row->C >= 1);
    const double *w = ictx->in->idx_w + ((size_t)row->b * ictx->p->L + row->i) * row->Hi;
    for (size_t c = 1; c < row->C; c++)
        if (!ref_indexer_tie(row, ictx, 0, c))
            return 0;
    /* every weighted head is uniform: S = sum_h w_h / C */
    mpfr_t sum;
    mpfr_init2(sum, 53 + 2100 + 64); /* a sum of up to 2^64 binary64s, exact */
    mpfr_set_zero(sum, 1);
    for (int h = 0; h < row->Hi; h++)
        REF_EXACT(mpfr_add_d(sum, sum, w[h], MPFR_RNDN));
    *out = ref_round_ratio(sum, (unsigned long)row->C);
    mpfr_clear(sum);
    return 1;
}
