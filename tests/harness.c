/* Test support: a seeded generator and allocated problems (tests/harness.h). */
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

int rng_int(rng *r, int lo, int hi)
{
    return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

double rng_dyadic(rng *r, int bits, int frac)
{
    int m = rng_int(r, -((1 << bits) - 1), (1 << bits) - 1);
    double x = m;
    for (int t = 0; t < frac; t++)
        x /= 2;
    return x;
}

static double *zeros(size_t count)
{
    double *x = calloc(count ? count : 1, sizeof *x);
    if (!x)
        abort();
    return x;
}

void tcase_alloc(tcase *t, const nsx_problem *p)
{
    memset(t, 0, sizeof *t);
    t->p = *p;
    t->q = zeros(nsx_q_size(p));
    for (int m = 0; m < p->n; m++) {
        t->k[m] = zeros(nsx_k_size(p));
        t->v[m] = zeros(nsx_v_size(p));
        t->in.k[m] = t->k[m];
        t->in.v[m] = t->v[m];
    }
    t->in.q = t->q;
    size_t BL = (size_t)p->B * p->L;
    if (p->sel.source != NSX_SEL_NONE) {
        t->sel = calloc(nsx_sel_size(p), sizeof *t->sel);
        t->sel_out = calloc(nsx_sel_size(p), sizeof *t->sel_out);
        if (!t->sel || !t->sel_out)
            abort();
        t->in.sel = t->sel;
        t->out.sel = t->sel_out;
    }
    if (p->sel.source == NSX_SEL_INDEXER) {
        t->idx_q = zeros(BL * p->sel.Hi * p->sel.di);
        t->idx_k = zeros(BL * p->sel.di);
        t->idx_w = zeros(BL * p->sel.Hi);
        t->in.idx_q = t->idx_q;
        t->in.idx_k = t->idx_k;
        t->in.idx_w = t->idx_w;
        t->sel_scores = zeros(BL * p->L);
        t->out.sel_scores = t->sel_scores;
    }
    if (p->sel.source == NSX_SEL_SCORES) {
        t->idx_s = zeros(BL * p->L);
        t->in.idx_s = t->idx_s;
    }
    t->o = zeros(nsx_o_size(p));
    t->lse = zeros(nsx_lse_size(p));
    t->out.o = t->o;
    t->out.lse = t->lse;
}

static void fill(double *x, size_t count, rng *r, int bits, int frac)
{
    for (size_t t = 0; t < count; t++)
        x[t] = rng_dyadic(r, bits, frac);
}

void tcase_fill(tcase *t, rng *r, int bits, int frac)
{
    const nsx_problem *p = &t->p;
    size_t BL = (size_t)p->B * p->L;
    fill(t->q, nsx_q_size(p), r, bits, frac);
    for (int m = 0; m < p->n; m++) {
        fill(t->k[m], nsx_k_size(p), r, bits, frac);
        fill(t->v[m], nsx_v_size(p), r, bits, frac);
    }
    if (t->idx_q) {
        fill(t->idx_q, BL * p->sel.Hi * p->sel.di, r, bits, frac);
        fill(t->idx_k, BL * p->sel.di, r, bits, frac);
        fill(t->idx_w, BL * p->sel.Hi, r, bits, frac);
    }
    if (t->idx_s)
        fill(t->idx_s, BL * p->L, r, bits, frac);
}

void tcase_free(tcase *t)
{
    free(t->q);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(t->k[m]);
        free(t->v[m]);
    }
    free(t->idx_q);
    free(t->idx_k);
    free(t->idx_w);
    free(t->idx_s);
    free(t->sel);
    free(t->sel_out);
    free(t->o);
    free(t->lse);
    free(t->sel_scores);
    memset(t, 0, sizeof *t);
}
