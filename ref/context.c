/*
 * The reference's context (exact precisions, finiteness of input rows) and
 * the passes over a row's allowed tuples (ref/internal.h, ref_row).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "ref/exact.h"
#include "ref/internal.h"

/* Range of K_m + kb_m over every element of k_m (the factor of E1). */
static ref_range factor_range(const double *x, size_t count, double bias)
{
    ref_range r = ref_range_of(x, count, 1);
    return bias != 0 ? ref_range_add(r, ref_range_d(bias)) : r;
}

/* Marks rows (of `width` values) that hold only finite numbers. */
static unsigned char *finite_rows(const double *x, size_t rows, size_t width)
{
    unsigned char *f = malloc(rows ? rows : 1);
    if (!f)
        return NULL;
    for (size_t r = 0; r < rows; r++) {
        f[r] = 1;
        for (size_t t = 0; t < width; t++)
            if (!isfinite(x[r * width + t]))
                f[r] = 0;
    }
    return f;
}

static mpfr_prec_t max_prec(mpfr_prec_t a, mpfr_prec_t b)
{
    return a > b ? a : b;
}

int ref_ctx_init(ref_ctx *ctx, const nsx_problem *p, const nsx_inputs *in,
                 const int32_t *sel, nsx_err *err)
{
    assert(ctx && p && in && err && in->q);
    assert((sel != NULL) == (p->sel.source != NSX_SEL_NONE));
    memset(ctx, 0, sizeof *ctx);
    ctx->p = p;
    ctx->in = in;
    ctx->sel = sel;

    /* E1: T_raw is a sum of d products of n+1 factors; the difference of
       two raw scores (E3) needs one more bit.  The scratch holds every
       factor and every partial product (a zero factor, say q = 0, empties
       the full product's range but not the partial ones). */
    ref_range prod = ref_range_of(in->q, nsx_q_size(p), 1);
    mpfr_prec_t scratch = ref_range_prec(prod);
    for (int m = 0; m < p->n; m++) {
        ref_range f = factor_range(in->k[m], nsx_k_size(p), p->k_bias[m]);
        prod = ref_range_mul(prod, f);
        scratch = max_prec(scratch, max_prec(ref_range_prec(f), ref_range_prec(prod)));
    }
    ref_range t = ref_range_sum(prod, (unsigned long)p->d);
    ctx->prec_T = ref_range_prec(ref_range_add(t, t));
    ctx->prec_score_scratch = max_prec(scratch, ctx->prec_T);

    /* E5: the product of the n factors, or their sum, and every partial
       result on the way. */
    ref_range w = factor_range(in->v[0], nsx_v_size(p), p->v_bias[0]);
    mpfr_prec_t wprec = ref_range_prec(w);
    for (int m = 1; m < p->n; m++) {
        ref_range f = factor_range(in->v[m], nsx_v_size(p), p->v_bias[m]);
        w = p->reduce == NSX_REDUCE_PRODUCT ? ref_range_mul(w, f) : ref_range_add(w, f);
        wprec = max_prec(wprec, max_prec(ref_range_prec(f), ref_range_prec(w)));
    }
    ctx->prec_W = wprec;

    mpfr_inits2(ctx->prec_score_scratch, ctx->term, ctx->fac, (mpfr_ptr)0);
    mpfr_init2(ctx->wfac, ctx->prec_W);

    size_t qrows = (size_t)p->B * p->L * p->H, kvrows = (size_t)p->B * p->L * p->Hkv;
    ctx->qfin = finite_rows(in->q, qrows, (size_t)p->d);
    int ok = ctx->qfin != NULL;
    for (int m = 0; m < p->n && ok; m++) {
        ctx->kfin[m] = finite_rows(in->k[m], kvrows, (size_t)p->d);
        ctx->vfin[m] = finite_rows(in->v[m], kvrows, (size_t)p->dv);
        ok = ctx->kfin[m] && ctx->vfin[m];
    }
    if (!ok) {
        ref_ctx_clear(ctx);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    return 0;
}

void ref_ctx_clear(ref_ctx *ctx)
{
    if (ctx->prec_T) {
        mpfr_clears(ctx->term, ctx->fac, (mpfr_ptr)0);
        mpfr_clear(ctx->wfac);
    }
    free(ctx->qfin);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(ctx->kfin[m]);
        free(ctx->vfin[m]);
    }
    memset(ctx, 0, sizeof *ctx);
}

void ref_row_init(ref_row *row)
{
    assert(row);
    memset(row, 0, sizeof *row);
    mpfr_init2(row->M, 2);
    mpfr_init2(row->t, 2);
}

void ref_row_clear(ref_row *row)
{
    for (size_t t = 0; t < row->cap; t++)
        mpfr_clear(row->T[t]);
    mpfr_clear(row->M);
    mpfr_clear(row->t);
    free(row->J);
    free(row->T);
    memset(row, 0, sizeof *row);
}

/* Steps J through [0, L)^n in lexicographic order; 0 after the last. */
static int odometer_next(int *J, int n, int L)
{
    for (int m = n - 1; m >= 0; m--) {
        if (++J[m] < L)
            return 1;
        J[m] = 0;
    }
    return 0;
}

/* 1 when every input row that tuple J of (b, h, i) reads is finite. */
static int tuple_finite(const ref_ctx *ctx, int b, int h, int i, const int *J)
{
    const nsx_problem *p = ctx->p;
    int g = nsx_kv_head(p, h);
    if (!ctx->qfin[((size_t)b * p->L + i) * p->H + h])
        return 0;
    for (int m = 0; m < p->n; m++) {
        size_t r = ((size_t)b * p->L + J[m]) * p->Hkv + g;
        if (!ctx->kfin[m][r] || !ctx->vfin[m][r])
            return 0;
    }
    return 1;
}

/* Moves J to the row's next allowed tuple (E2), lexicographically; the
   first call has *started = 0.  0 after the last. */
static int next_allowed(const ref_ctx *ctx, const ref_row *row, int *J, int *started)
{
    const nsx_problem *p = ctx->p;
    const int32_t *sel_row = ctx->sel ? ctx->sel + nsx_sel_at(p, row->b, row->i, 0) : NULL;
    if (!*started) {
        *started = 1;
        memset(J, 0, (size_t)p->n * sizeof *J);
        if (nsx_ref_allowed(p, sel_row, row->i, J))
            return 1;
    }
    while (odometer_next(J, p->n, p->L))
        if (nsx_ref_allowed(p, sel_row, row->i, J))
            return 1;
    return 0;
}

int ref_row_scan(ref_row *row, ref_ctx *ctx, int b, int h, int i, int s_sign, nsx_err *err)
{
    assert(row && ctx && err && ctx->prec_T >= MPFR_PREC_MIN);
    assert(b >= 0 && b < ctx->p->B && h >= 0 && h < ctx->p->H && i >= 0 && i < ctx->p->L);
    assert(s_sign >= -1 && s_sign <= 1);
    const nsx_problem *p = ctx->p;
    int J[NSX_MAX_ORDER], started = 0;
    (void)err;
    row->b = b;
    row->h = h;
    row->g = nsx_kv_head(p, h);
    row->i = i;
    row->N = 0;
    row->nonfinite = 0;
    mpfr_set_prec(row->M, ctx->prec_T);
    mpfr_set_prec(row->t, ctx->prec_T);
    while (next_allowed(ctx, row, J, &started)) {
        if (!tuple_finite(ctx, b, h, i, J)) {
            row->nonfinite = 1;
            continue;
        }
        ref_score(row->t, ctx, b, h, i, J);
        /* the maximal score s*T_raw: largest T_raw for s > 0, smallest for
           s < 0, any for s = 0 (the first) */
        if (row->N++ == 0 || mpfr_cmp(row->t, row->M) * s_sign > 0)
            mpfr_set(row->M, row->t, MPFR_RNDN); /* same precision: exact */
    }
    return 0;
}

void ref_row_pass(ref_row *row, ref_ctx *ctx, void (*visit)(void *arg, const int *J, mpfr_srcptr T),
                  void *arg)
{
    int J[NSX_MAX_ORDER], started = 0;
    assert(row && ctx && visit && !row->nonfinite);
    while (next_allowed(ctx, row, J, &started)) {
        ref_score(row->t, ctx, row->b, row->h, row->i, J);
        visit(arg, J, row->t);
    }
}

int ref_row_store(ref_row *row, ref_ctx *ctx, nsx_err *err)
{
    assert(row && ctx && err && !row->nonfinite);
    const nsx_problem *p = ctx->p;
    int J[NSX_MAX_ORDER], started = 0;
    if (row->N > row->cap) {
        int *nJ = realloc(row->J, row->N * (size_t)p->n * sizeof *nJ);
        if (nJ)
            row->J = nJ;
        mpfr_t *nT = realloc(row->T, row->N * sizeof *nT);
        if (nT)
            row->T = nT;
        if (!nJ || !nT)
            return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
        for (size_t t = row->cap; t < row->N; t++)
            mpfr_init2(row->T[t], 2);
        row->cap = row->N;
    }
    size_t t = 0;
    while (t < row->N && next_allowed(ctx, row, J, &started)) {
        memcpy(row->J + t * (size_t)p->n, J, (size_t)p->n * sizeof *J);
        mpfr_set_prec(row->T[t], ctx->prec_T);
        ref_score(row->T[t], ctx, row->b, row->h, row->i, J);
        t++;
    }
    assert(t == row->N);
    return 0;
}
