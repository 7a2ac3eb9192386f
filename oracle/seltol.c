/*
 * The selection's tie tolerance (docs/ORACLE.md section 5): how far an
 * honest kernel's selection scores S'[i,j] may be from the exact S[i,j],
 * the same analysis as B2 for the indexer's logits.
 */
#include <assert.h>
#include <math.h>
#include <stddef.h>

#include "nsimplex/ref.h"
#include "oracle/bound.h"
#include "oracle/bound_model.h"

/* ---- selection tolerance (ORACLE.md section 5) --------------------- */

/* Indexer logits of query (b, i), head hh, for the candidate keys: x[j]
   (binary64), xa[j] = |idx_scale| sum_l |qI kI|, xg[j] (Lemma 1's G). */
static void indexer_logits(const nsx_bound_ctx *ctx, int b, int i, int hh, double *x, double *xa, double *xg)
{
    const nsx_problem *p = ctx->p;
    const int di = p->sel.di;
    const double *qI = ctx->in->idx_q + (((size_t)b * p->L + i) * p->sel.Hi + hh) * di;
    const double sc = p->sel.idx_scale;
    for (int j = 0; j < p->L; j++) {
        if (!nsx_ref_is_candidate(p, i, j))
            continue;
        const double *kI = ctx->in->idx_k + ((size_t)b * p->L + j) * di;
        double s = 0, sa = 0, sg = 0;
        for (int l = 0; l < di; l++) {
            s += qI[l] * kI[l];
            sa += fabs(qI[l] * kI[l]);
            sg += fmax(1.0, fabs(qI[l])) * fmax(1.0, fabs(kI[l]));
        }
        x[j] = sc * s;
        xa[j] = fabs(sc) * sa;
        xg[j] = fmax(1.0, fabs(sc)) * sg;
    }
}

int nsx_bound_sel_tol(nsx_bound_ctx *ctx, int b, int i, double *tol, nsx_err *err)
{
    assert(ctx && tol && err && b >= 0 && b < ctx->p->B && i >= 0 && i < ctx->p->L);
    assert(ctx->p->sel.source == NSX_SEL_INDEXER || ctx->p->sel.source == NSX_SEL_SCORES);
    const nsx_problem *p = ctx->p;
    const nsx_selection *S = &p->sel;
    consts k;
    nsx_bound_consts(ctx, &k);
    const double lim_in = nsx_format_fits(p->input_format, ctx->model.in) ? INFINITY : k.fi.max;
    const int L = p->L;

    for (int j = 0; j < L; j++)
        tol[j] = 0;
    if (S->source == NSX_SEL_SCORES) {
        /* the given scores are inputs: only their rounding to `in` */
        for (int j = 0; j < L; j++) {
            if (!nsx_ref_is_candidate(p, i, j))
                continue;
            double s = fabs(ctx->in->idx_s[((size_t)b * L + i) * L + j]);
            if (s > lim_in)
                return nsx_bound_not_applicable(ctx, err, b, -1, i, "an indexer score exceeds the input format's range",
                                      s, lim_in);
            tol[j] = (k.ui * s + k.lami) * (1 + 0x1p-30);
        }
        return 0;
    }

    /* source INDEXER: x[h,j] = idx_scale <qI[h,:], kI[j,:]>, S = sum_h w_h act(x) */
    const int Hi = S->Hi, di = S->di;
    const double *w = ctx->in->idx_w + ((size_t)b * L + i) * Hi;
    double *x = ctx->xs, *xa = x + L, *xg = xa + L;
    gam gx = {0};
    gam_add(&gx, 2, k.ui);        /* qI, kI rounded to in */
    gam_add(&gx, 2, k.ux);        /* idx_scale to op, its product */
    gam_add(&gx, reduction(di), k.ua); /* the dot product in acc */
    const double gX = gam_val(&gx), e64 = gamma_of(di + 2, U64), cx = 2.0 * di + 12;
    gam gs = {0};
    gam_add(&gs, 1, k.ui);        /* w rounded to in */
    gam_add(&gs, 1, k.ux);        /* w_h * act */
    gam_add(&gs, reduction(Hi), k.ua); /* the sum over heads */
    gam_add(&gs, 1, k.ft.u);
    const double gS = gam_val(&gs);
    const int Nc = p->causal ? i + 1 : L;

    for (int hh = 0; hh < Hi; hh++) {
        double wa = fabs(w[hh]);
        if (wa > lim_in)
            return nsx_bound_not_applicable(ctx, err, b, -1, i, "an indexer weight exceeds the input format's range", wa,
                                  lim_in);
        indexer_logits(ctx, b, i, hh, x, xa, xg);
        /* bx[j] >= |x'[j] - x[j]| (Lemma 1) plus the binary64 error of x[j] */
        double xmax = -INFINITY, xmin = INFINITY, bmax = 0, e64max = 0;
        for (int j = 0; j < L; j++) {
            if (!nsx_ref_is_candidate(p, i, j))
                continue;
            if (!isfinite(x[j]) || !isfinite(xa[j]) || !isfinite(xg[j]) || xa[j] > k.fa.max / 4)
                return nsx_bound_not_applicable(ctx, err, b, -1, i, "an indexer logit is out of range", xa[j], k.fa.max / 4);
            double bx = gX * xa[j] + 2 * cx * k.lam_all * xg[j];
            double ex = e64 * xa[j] + 4.0 * di * L64 * xg[j];
            if (S->act != NSX_ACT_SOFTMAX) {
                /* relu and identity are 1-Lipschitz: |act(x') - act(x)| <= |x' - x| */
                tol[j] += gS * wa * (xa[j] + bx) + wa * bx;
                continue;
            }
            xmax = fmax(xmax, x[j]);
            xmin = fmin(xmin, x[j]);
            bmax = fmax(bmax, bx);
            e64max = fmax(e64max, ex);
        }
        if (S->act != NSX_ACT_SOFTMAX)
            continue;
        /* softmax over the Nc candidates, in the global form of B3-B5: every
           score error <= B, so each weight moves by a factor within
           [e^-2B, e^2B] times the exp, sum and division roundings */
        double range = (xmax - xmin) * (1 + U64) + 2 * e64max;
        double B = bmax + gamma_of(3, k.ua) * (range + 2 * bmax) + 4.0 * Nc * k.fa.lambda;
        double rel = expm1(2 * B + 2 * log1p(k.eps_exp) - log1p(-k.eps_exp) + (reduction(Nc) + 1.0) * log1p(k.ua));
        double z = 0;
        for (int j = 0; j < L; j++)
            if (nsx_ref_is_candidate(p, i, j))
                z += exp(x[j] - xmax);
        /* binary64 softmax, upward: x errors e64max, Nc + 4 roundings */
        double up = exp(2 * e64max + 2 * U64 * (fabs(xmax) + range)) * (1 + (2.0 * Nc + 16) * U64);
        for (int j = 0; j < L; j++) {
            if (!nsx_ref_is_candidate(p, i, j))
                continue;
            double a = exp(x[j] - xmax) / z * up;
            double ea = a * rel + 4.0 * Nc * k.fa.lambda;
            tol[j] += gS * wa * (a + ea) + wa * ea;
        }
    }
    for (int j = 0; j < L; j++)
        tol[j] *= 1 + 0x1p-30;
    return 0;
}
