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

/* The indexer's quantization of its queries and keys (ORACLE.md 5.1) under
   the model's idx: a value x is read as x(1 + d) + e with |d| <= u and
   |e| <= eta s_blk, s_blk the largest scale its block may get (1 for a
   plain format). */
typedef struct quant {
    int on;         /* idx is not none */
    int fp8, blk;
    double u, eta;  /* relative part; the absolute part per unit of scale */
    double fmax;    /* the format's largest value (plain formats: a range limit) */
} quant;

/* DeepSeek's act_quant clamps a block's amax below at 1e-4 before scaling. */
#define AMAX_FLOOR 1e-4

static void quant_of(const nsx_bound_ctx *ctx, quant *qt)
{
    const nsx_model *m = &ctx->model;
    *qt = (quant){0};
    if (m->idx == NSX_MODEL_NONE)
        return;
    nsx_fmt f = nsx_fmt_of(m->idx);
    qt->on = 1;
    qt->fp8 = nsx_fmt_is_fp8(m->idx);
    qt->blk = qt->fp8 ? m->idx_blk : 1;
    qt->fmax = f.max;
    if (!qt->fp8 && nsx_format_fits(ctx->p->input_format, m->idx)) {
        qt->fmax = INFINITY; /* the vector's values are values of idx: exact */
        return;
    }
    /* to nearest: |d| <= 2^-p, |e| <= half the subnormal spacing 2^(emin - p);
       FP8 adds 2^-22 for x / s in float32 and a scale a few ulps of f32
       below amax / fmax (y then just above fmax rounds to fmax) */
    qt->u = f.u + (qt->fp8 ? 0x1p-22 : 0.0);
    qt->eta = ldexp(1.0, f.emin - f.p);
}

/* e[l] >= |the absolute quantization error| of x[0..di) (one row of idx_q
   or idx_k): eta times the block's largest scale.  0, or -1 when a plain
   format's range is exceeded (*bad = the value). */
static int quant_abs(const quant *qt, const double *x, int di, double *e, double *bad)
{
    for (int l0 = 0; l0 < di; l0 += qt->blk) {
        int l1 = l0 + qt->blk < di ? l0 + qt->blk : di;
        double amax = 0;
        for (int l = l0; l < l1; l++)
            amax = fmax(amax, fabs(x[l]));
        if (!qt->fp8 && amax > qt->fmax) {
            *bad = amax;
            return -1;
        }
        /* s <= 2 max(amax, 1e-4) / fmax (a power of two rounded up), a few
           ulps of f32 more; a block of zeros quantizes exactly */
        double s = qt->fp8 ? 2 * fmax(amax, AMAX_FLOOR) / qt->fmax * (1 + 0x1p-20) : 1.0;
        for (int l = l0; l < l1; l++)
            e[l] = amax > 0 ? qt->eta * s : 0.0;
    }
    return 0;
}

/* Indexer logits of query (b, i), head hh, for the candidate keys: x[j]
   (binary64), xa[j] = |idx_scale| sum_l |qI kI|, xg[j] (Lemma 1's G), and
   with a quantizing model xe[j] = |idx_scale| sum_l (1 + u)(eq |kI| + ek |qI|)
   + eq ek (ORACLE.md 5.1; scratch eq, ek of di entries each).  0, or -1
   when a plain idx format's range is exceeded (*bad). */
static int indexer_logits(const nsx_bound_ctx *ctx, const quant *qt, int b, int i, int hh, double *x, double *xa,
                          double *xg, double *xe, double *eq, double *ek, double *bad)
{
    const nsx_problem *p = ctx->p;
    const int di = p->sel.di;
    const double *qI = ctx->in->idx_q + (((size_t)b * p->L + i) * p->sel.Hi + hh) * di;
    const double sc = p->sel.idx_scale;
    if (qt->on && quant_abs(qt, qI, di, eq, bad))
        return -1;
    for (int j = 0; j < p->L; j++) {
        if (!nsx_ref_is_candidate(p, i, j))
            continue;
        const double *kI = ctx->in->idx_k + ((size_t)b * p->L + j) * di;
        if (qt->on && quant_abs(qt, kI, di, ek, bad))
            return -1;
        double s = 0, sa = 0, sg = 0, se = 0;
        for (int l = 0; l < di; l++) {
            s += qI[l] * kI[l];
            sa += fabs(qI[l] * kI[l]);
            sg += fmax(1.0, fabs(qI[l])) * fmax(1.0, fabs(kI[l]));
            if (qt->on)
                se += (1 + qt->u) * (eq[l] * fabs(kI[l]) + ek[l] * fabs(qI[l])) + eq[l] * ek[l];
        }
        x[j] = sc * s;
        xa[j] = fabs(sc) * sa;
        xg[j] = fmax(1.0, fabs(sc)) * sg;
        xe[j] = fabs(sc) * se * (1 + 0x1p-40); /* its binary64 roundings (ORACLE.md 3.9) */
    }
    return 0;
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
    double *x = ctx->xs, *xa = x + L, *xg = xa + L, *xe = xg + L, *eq = xe + L, *ek = eq + di;
    quant qt;
    quant_of(ctx, &qt);
    gam gx = {0};
    if (qt.on) {
        gam_add(&gx, 2, qt.u);    /* qI, kI quantized to idx (ORACLE.md 5.1) */
        if (qt.fp8)
            gam_add(&gx, 2, k.ua); /* the blocks' scales applied in acc */
    } else {
        gam_add(&gx, 2, k.ui);    /* qI, kI rounded to in */
    }
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
        /* a zero weight is 0 in every format and its product with any finite
           act(x') exactly 0: the head adds nothing (and an infinite ea below
           would make its 0 * inf term NaN) */
        if (wa == 0)
            continue;
        double bad = 0;
        if (indexer_logits(ctx, &qt, b, i, hh, x, xa, xg, xe, eq, ek, &bad))
            return nsx_bound_not_applicable(ctx, err, b, -1, i, "an indexer input exceeds the idx format's range",
                                            bad, qt.fmax);
        /* bx[j] >= |x'[j] - x[j]| (Lemma 1) plus the binary64 error of x[j] */
        double xmax = -INFINITY, xmin = INFINITY, bmax = 0, e64max = 0;
        for (int j = 0; j < L; j++) {
            if (!nsx_ref_is_candidate(p, i, j))
                continue;
            if (!isfinite(x[j]) || !isfinite(xa[j]) || !isfinite(xg[j]) || xa[j] > k.fa.max / 4)
                return nsx_bound_not_applicable(ctx, err, b, -1, i, "an indexer logit is out of range", xa[j], k.fa.max / 4);
            /* with quantized inputs the error xe of the exact product joins
               (ORACLE.md 5.1): gX xa + (1 + gX) xe; xe = 0 otherwise */
            double bx = gX * xa[j] + (qt.on ? (1 + gX) * xe[j] : 0.0) + 2 * cx * k.lam_all * xg[j];
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
            /* rel = inf (a score error beyond exp's range) allows any weight, also
               where the binary64 weight underflowed to 0: 0 * inf would be NaN */
            double ea = isinf(rel) ? INFINITY : a * rel + 4.0 * Nc * k.fa.lambda;
            tol[j] += gS * wa * (a + ea) + wa * ea;
        }
    }
    for (int j = 0; j < L; j++)
        tol[j] *= 1 + 0x1p-30;
    return 0;
}
