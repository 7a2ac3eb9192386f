/*
 * The gradients' bound (bound_bwd.h; docs/ORACLE.md section 8, G1-G9).
 *
 * Work is cut as in the reference (ref/backward.h): one batch b and one kv
 * head g with the query heads h of its group, so that every dk_m, dv_m
 * element's sum over rows is complete inside the block.  Per row (h, i):
 * the forward's bound of the row (nsx_bound_row_visit: B1-B14) hands over
 * every tuple's b_J, A_J and delta_J; then
 *   G1  dP_J's error e^P_J          G2  the weight's relative error pi_J
 *   G3  Delta's error E_Delta       G4  dT_J's error e^T_J
 *   G5  dq[i, l]                    G6, G7  the terms of dk_m, dv_m
 * and after the block's rows G8 (the reductions, the scale, the output
 * rounding) for dk_m, dv_m; G9 the margin of the binary64 computation.
 *
 * Names as in ORACLE.md 3.0: <k>_u = (1+u)^k - 1; u~ = 2 u_acc; *_up an
 * upper bound computed in binary64.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle/bound_bwd.h"
#include "oracle/bound_model.h"

/* ---- constants of the model and problem (ORACLE.md 8.1) --------------- */

typedef struct gconsts {
    consts k;
    double gW, cW;          /* B6 */
    double s, as, gs;       /* the scale, |s|, max(1, |s|) */
    double sig;             /* s applied once: RN64(s), its conversion, the product */
    double os, aos, gos;    /* out_scale, |os|, its conversion and product (B12) */
    double gP;              /* G1: Gamma_P */
    double gDel;            /* G3: Gamma_Delta (the O form) */
    double gS;              /* G4: Gamma_S */
    double gKq;             /* G5: the key product operand of dq */
    double gKk[NSX_MAX_ORDER]; /* G6: the operand Q prod_{m' != m} K~ of dk_m */
    double gCv[NSX_MAX_ORDER]; /* G7: the operand dO dW_m of dv_m */
    double cK;              /* roundings along one operand (Lemma 1's C) */
    double lam;             /* the largest lambda (3.0) */
    double lam3;            /* G4's absolute terms: lambda_w + lambda_int + 2 lambda_acc */
    double inv_den;         /* dW of sum (1) and mean (1/n) */
} gconsts;

static double gam_mul(double a, double b)
{
    return expm1(log1p(a) + log1p(b));
}

static void gconsts_of(const nsx_bound_ctx *ctx, gconsts *c)
{
    const nsx_problem *p = ctx->p;
    const int n = p->n;
    consts *k = &c->k;
    nsx_bound_consts(ctx, k);
    nsx_bound_value_consts(p, k, &c->gW, &c->cW);
    c->s = nsx_problem_score_scale(p);
    c->as = fabs(c->s);
    c->gs = fmax(1.0, c->as);
    gam g = {0};
    gam_add(&g, nsx_bound_scale_inexact(p), U64);
    gam_add(&g, 1, k->ux);
    gam_add(&g, 1, k->ua);
    c->sig = gam_val(&g);
    c->os = p->out_scale;
    c->aos = fabs(c->os);
    int e2;
    c->gos = c->aos == 0 || frexp(c->aos, &e2) == 0.5 ? 0.0 : gamma_of(2, fmax(k->ua, k->ft.u));
    /* G1: dO rounded to in, the GEMM over dv (over n dv terms when a sum or
       mean is contracted factored), rounded to int, times os */
    double red = p->reduce == NSX_REDUCE_PRODUCT ? reduction(p->dv) : reduction((double)n * p->dv);
    g = (gam){0};
    gam_add(&g, 1, k->ui);
    gam_add(&g, red, k->ua);
    gam_add(&g, 1, k->ft.u);
    c->gP = gam_mul(gam_val(&g), c->gos);
    /* G3: dO rounded to in, the dot product with O' over dv */
    g = (gam){0};
    gam_add(&g, 1, k->ui);
    gam_add(&g, reduction(p->dv), k->ua);
    c->gDel = gam_val(&g);
    /* G4: the subtraction and the product in acc, rounded to int, then to w */
    g = (gam){0};
    gam_add(&g, 2, k->ua);
    gam_add(&g, 1, k->ft.u);
    gam_add(&g, 1, k->fw.u);
    c->gS = gam_val(&g);
    /* G5-G7: operands formed elementwise as for the forward (B1, B6): n
       factors rounded to in, biases added in acc and rounded to op, the
       other factors converted to op when in does not fit op, n - 1
       products rounded to op or int */
    int nkb = 0, nvb = 0;
    for (int m = 0; m < n; m++)
        nkb += p->k_bias[m] != 0, nvb += p->v_bias[m] != 0;
    g = (gam){0};
    gam_add(&g, n, k->ui);
    gam_add(&g, 2.0 * nkb, k->ua);
    gam_add(&g, nkb + (double)k->conv * (n - nkb), k->fo.u);
    gam_add(&g, n - 1.0, k->ux);
    c->gKq = gam_val(&g);
    for (int m = 0; m < n; m++) {
        int kb = nkb - (p->k_bias[m] != 0), vb = nvb - (p->v_bias[m] != 0);
        g = (gam){0};
        gam_add(&g, n, k->ui); /* q and the n - 1 other keys */
        gam_add(&g, 2.0 * kb, k->ua);
        gam_add(&g, kb + (double)k->conv * (n - kb), k->fo.u);
        gam_add(&g, n - 1.0, k->ux);
        c->gKk[m] = gam_val(&g);
        g = (gam){0};
        if (p->reduce == NSX_REDUCE_PRODUCT) {
            gam_add(&g, n, k->ui); /* dO and the n - 1 other values */
            gam_add(&g, 2.0 * vb, k->ua);
            gam_add(&g, vb + (double)k->conv * (n - vb), k->fo.u);
            gam_add(&g, n - 1.0, k->ux);
        } else {
            gam_add(&g, 1, k->ui);
            gam_add(&g, k->conv, k->fo.u);
            if (p->reduce == NSX_REDUCE_MEAN) {
                gam_add(&g, 2, k->ua); /* fl(1/n) and the product */
                gam_add(&g, 1, k->ux);
            }
        }
        c->gCv[m] = gam_val(&g);
    }
    c->cK = 5.0 * n + 8;
    c->lam = k->lam_all;
    c->lam3 = k->fw.lambda + k->ft.lambda + 2 * k->fa.lambda;
    c->inv_den = p->reduce == NSX_REDUCE_MEAN ? 1.0 / n : 1.0;
}

/* The relative error of a reduction of m terms in acc (A2): r(m) faithful
   operations and one more for the accumulator's initial value. */
static double gamma_red(const gconsts *c, double m)
{
    return gamma_of(reduction(m) + 1.0, c->k.ua);
}

/* ---- one row's tuples, as the forward's bound saw them ----------------- */

typedef struct gtuple {
    double T, eT, b, A, delta;
    /* G1-G4 */
    double dP, eP;     /* dP_J (binary64) and the kernel's error bound e^P_J */
    double dPabs;      /* >= |dP_J| */
    double eA, eta;    /* G2: |P'_J - A_J| <= eA + eta (eta: underflow) */
    double e64P;       /* |dP_J - its binary64 value| (3.9) */
    double eTe, AD;    /* G4: e^T_J, and A_J D_J >= |dT_J| */
} gtuple;

typedef struct grow {
    int n;
    size_t N, cap;
    gtuple *t;
    int *J;            /* n per tuple */
    double theta, s_lo;
    int wild, oom;
} grow;

static void collect(void *arg, const nsx_bound_tuple *bt)
{
    grow *g = arg;
    if (g->oom)
        return;
    if (g->N == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        gtuple *t = realloc(g->t, cap * sizeof *t);
        int *J = t ? realloc(g->J, cap * (size_t)g->n * sizeof *J) : NULL;
        if (t)
            g->t = t;
        if (!t || !J) {
            g->oom = 1;
            return;
        }
        g->J = J;
        g->cap = cap;
    }
    gtuple *t = &g->t[g->N];
    memset(t, 0, sizeof *t);
    t->T = bt->T, t->eT = bt->eT, t->b = bt->b, t->A = bt->A, t->delta = bt->delta;
    memcpy(g->J + g->N * (size_t)g->n, bt->J, (size_t)g->n * sizeof *g->J);
    g->theta = bt->theta, g->s_lo = bt->s_lo, g->wild = bt->wild;
    g->N++;
}

/* What one block (b, g) sums for dk_m and dv_m: per element, the parts of
   G8 (Sa: error terms, Sx: the exact magnitudes, Sg: the absolute terms'
   magnitudes), per (m, j) the count of terms. */
typedef struct gblock {
    double *ka, *kx, *kg;   /* n L d each */
    double *va, *vx, *vg;   /* n L dv each */
    size_t *cnt;            /* n L */
} gblock;

typedef struct gstate {
    nsx_bound_ctx *ctx;
    const nsx_problem *p;
    const nsx_inputs *in;
    const nsx_outputs *ex;
    gconsts c;
    grow row;
    gblock blk;
    double *obound;         /* dv: B13 of the row */
    double *kp, *kg;        /* n d: K+ and max(1, K+) of one tuple */
    const double *o_unc, *lse_unc; /* the expected values' uncertainties (NULL: 0) */
    const double *const *g_unc;
    size_t n_max, cnt_max;  /* the largest row and term count (G9) */
} gstate;

/* ---- G1-G4 for every tuple of a row ------------------------------------ */

static void row_terms(gstate *st, int b, int h, int i, double lse, double lse_unc, double E_lse)
{
    const nsx_problem *p = st->p;
    const gconsts *c = &st->c;
    const consts *k = &c->k;
    const int n = p->n, dv = p->dv, g = nsx_kv_head(p, h);
    grow *r = &st->row;
    const double *dO = st->in->dout + nsx_o_at(p, b, i, h, 0);
    const double *O = st->ex->o + nsx_o_at(p, b, i, h, 0);
    const double *Ou = st->o_unc ? st->o_unc + nsx_o_at(p, b, i, h, 0) : NULL;
    const double N = (double)r->N;

    /* Delta in binary64 from the golden O (RN(O): one u64 each) */
    double Dhat = 0, MD = 0;
    for (int cc = 0; cc < dv; cc++)
        Dhat += dO[cc] * O[cc], MD += fabs(dO[cc]) * fabs(O[cc]);
    double e64D = gamma_of(dv + 2.0, U64) * MD + dv * 0x1p-1070;
    for (int cc = 0; Ou && cc < dv; cc++) /* O-hat within U of the exact O (3.10) */
        e64D += fabs(dO[cc]) * Ou[cc] * (1 + 2 * U64);

    /* G3, the O form: Delta' = sum_c dO'_c O'_c with |O'_c - O_c| <= E_o,c (B13) */
    double EdO = 0, MdO = 0;
    for (int cc = 0; cc < dv; cc++) {
        EdO += fabs(dO[cc]) * st->obound[cc];
        MdO += fabs(dO[cc]) * (fabs(O[cc]) * (1 + U64) + (Ou ? Ou[cc] : 0.0) + st->obound[cc]);
    }
    const double EDelO = EdO + c->gDel * MdO + 2 * (reduction(dv) + 2) * k->fa.lambda;

    /* G2's constants: the LSE form and the softmax form */
    const double g3 = gamma_of(3, k->ua), l1e = log1p(k->eps_exp);
    const double eta = 2 * k->fa.lambda + 4 * N * k->fa.lambda / r->s_lo;
    const double lse_abs = fabs(lse) * (1 + U64) + lse_unc;

    /* G1, G2 per tuple, and G3's P form */
    const double gDP = gam_mul(gamma_red(c, N), gam_mul(k->fw.u, k->ft.u));
    const double pmax_sm = (1 + gamma_of(reduction(N) + N + 1, k->ua)) * (1 + k->ua) / (1 - r->theta);
    double EDelP = 2 * (reduction(N) + 2) * k->fa.lambda;
    const double *V[NSX_MAX_ORDER];
    for (size_t t = 0; t < r->N; t++) {
        gtuple *x = &r->t[t];
        const int *J = r->J + t * (size_t)n;
        for (int m = 0; m < n; m++)
            V[m] = st->in->v[m] + nsx_v_at(p, b, J[m], g, 0);
        double dP = 0, MP = 0, SdW = 0, SeW = 0, Sg = 0, vmax = 0;
        for (int cc = 0; cc < dv; cc++) {
            double W, Wp, Wg;
            nsx_bound_reduced_value(p, V, cc, &W, &Wp, &Wg, &vmax);
            double eW = value_err_B6(k, c->gW, c->cW, Wp, Wg);
            dP += dO[cc] * W;
            MP += fabs(dO[cc]) * Wp;
            SdW += fabs(dO[cc]) * (Wp + eW);
            SeW += fabs(dO[cc]) * eW;
            Sg += fmax(1.0, fabs(dO[cc])) * Wg;
        }
        x->dP = c->os * dP;
        const double e64P = gamma_of(dv + 3.0 * n + 4, U64) * c->aos * MP + (dv + 1) * 0x1p-1060;
        /* G1 */
        x->eP = c->aos * (c->gP * SdW + SeW) + 2 * (c->cW + reduction((double)n * dv) + 4) * c->lam * fmax(1.0, c->aos) * Sg;
        x->dPabs = fabs(x->dP) + e64P;
        /* G2: P recomputed from the saved LSE (the relative error piL), or
           a softmax of the scores (piS; infinite in a wild row); either way
           0 <= P'_J <= Pmax, which caps the error where pi is large */
        double kap = x->b + E_lse + g3 * (fabs(x->T) + x->eT + x->b + lse_abs + E_lse);
        double piL = expm1(kap + l1e);
        double piS = r->wild ? INFINITY : expm1(log1p(x->delta) + log1p(k->ua) - log1p(-r->theta));
        double pmax = fmax(x->A * exp(kap + l1e), pmax_sm);
        x->eA = fmin(x->A * fmax(piL, piS), fmax(x->A, pmax - x->A));
        x->eta = eta;
        /* G3, the P form: Delta' = sum_J P'_J dP'_J */
        EDelP += (x->A * gDP + (x->eA + x->eta) * (1 + gDP)) * x->dPabs + (x->A + x->eA + x->eta) * (1 + gDP) * x->eP;
        x->e64P = e64P;
    }
    const double EDel = fmax(EDelO, EDelP);

    /* G4 */
    for (size_t t = 0; t < r->N; t++) {
        gtuple *x = &r->t[t];
        double D = (fabs(x->dP - Dhat) + x->e64P + e64D) * (1 + 2 * U64);
        /* |P' (dP' - Delta')(1 + Gamma_S) - A (dP - Delta)| */
        double e = x->eA + x->eta;
        x->eTe = x->A * D * c->gS + (1 + c->gS) * (e * D + (x->A + e) * (x->eP + EDel)) + c->lam3;
        x->AD = x->A * D;
    }
}

/* ---- G5: dq of the row ------------------------------------------------- */

static void row_dq(gstate *st, int b, int h, double *out)
{
    const nsx_problem *p = st->p;
    const gconsts *c = &st->c;
    const int n = p->n, d = p->d, g = nsx_kv_head(p, h);
    const grow *r = &st->row;
    const double G = gam_mul(gam_mul(gamma_red(c, (double)r->N), c->sig), gamma_of(p->n, c->k.ft.u));
    for (int l = 0; l < d; l++) {
        double Sa = 0, Sx = 0, Sg = 0;
        for (size_t t = 0; t < r->N; t++) {
            const gtuple *x = &r->t[t];
            const int *J = r->J + t * (size_t)n;
            double kp = 1, kg = 1;
            for (int m = 0; m < n; m++) {
                double ka = fabs(st->in->k[m][nsx_k_at(p, b, J[m], g, l)]) + fabs(p->k_bias[m]);
                kp *= ka;
                kg *= fmax(1.0, ka);
            }
            double eK = c->gKq * kp + 2 * c->cK * c->lam * kg;
            Sa += x->eTe * (kp + eK) + x->AD * eK;
            Sx += x->AD * kp;
            Sg += fmax(1.0, x->AD + x->eTe) * kg;
        }
        out[l] = c->as * (Sa + G * (Sa + Sx)) + 2 * (c->cK + 4) * c->lam * c->gs * Sg * (1 + G) +
                 2 * (reduction((double)r->N) + 2) * c->k.fa.lambda * c->gs;
    }
}

/* ---- G6, G7: the row's terms of dk_m and dv_m --------------------------- */

static void row_dk_dv(gstate *st, int b, int h, int i)
{
    const nsx_problem *p = st->p;
    const gconsts *c = &st->c;
    const int n = p->n, d = p->d, dv = p->dv, L = p->L, g = nsx_kv_head(p, h);
    const grow *r = &st->row;
    const gblock *B = &st->blk;
    const double *Q = st->in->q + nsx_q_at(p, b, i, h, 0);
    const double *dO = st->in->dout + nsx_o_at(p, b, i, h, 0);
    const double uw = c->k.fw.u;
    for (size_t t = 0; t < r->N; t++) {
        const gtuple *x = &r->t[t];
        const int *J = r->J + t * (size_t)n;
        /* K+ of the tuple's keys: kp[m d + l] */
        for (int m = 0; m < n; m++)
            for (int l = 0; l < d; l++) {
                double ka = fabs(st->in->k[m][nsx_k_at(p, b, J[m], g, l)]) + fabs(p->k_bias[m]);
                st->kp[m * d + l] = ka;
                st->kg[m * d + l] = fmax(1.0, ka);
            }
        /* G7's weight: P'_J rounded to w */
        const double ew = x->A * uw + (x->eA + x->eta) * (1 + uw) + c->k.fw.lambda;
        for (int m = 0; m < n; m++) {
            size_t e = (size_t)m * L + J[m];
            B->cnt[e]++;
            /* G6: c = Q_l prod_{m' != m} K~_m' */
            for (int l = 0; l < d; l++) {
                double cp = fabs(Q[l]), cg = fmax(1.0, fabs(Q[l]));
                for (int m2 = 0; m2 < n; m2++)
                    if (m2 != m)
                        cp *= st->kp[m2 * d + l], cg *= st->kg[m2 * d + l];
                double ec = c->gKk[m] * cp + 2 * c->cK * c->lam * cg;
                size_t el = e * d + l;
                B->ka[el] += x->eTe * (cp + ec) + x->AD * ec;
                B->kx[el] += x->AD * cp;
                B->kg[el] += fmax(1.0, x->AD + x->eTe) * cg;
            }
            /* G7: cv = dO_c dW_m[J, c] */
            for (int cc = 0; cc < dv; cc++) {
                double cp = fabs(dO[cc]), cg = fmax(1.0, fabs(dO[cc]));
                if (p->reduce == NSX_REDUCE_PRODUCT) {
                    for (int m2 = 0; m2 < n; m2++)
                        if (m2 != m) {
                            double va = fabs(st->in->v[m2][nsx_v_at(p, b, J[m2], g, cc)]) + fabs(p->v_bias[m2]);
                            cp *= va, cg *= fmax(1.0, va);
                        }
                } else {
                    cp *= c->inv_den;
                }
                double ecv = c->gCv[m] * cp + 2 * c->cK * c->lam * cg;
                size_t el = e * dv + cc;
                B->va[el] += ew * (cp + ecv) + x->A * ecv;
                B->vx[el] += x->A * cp;
                B->vg[el] += fmax(1.0, x->A + ew) * cg;
            }
        }
    }
}

/* ---- G8: the output of one element ------------------------------------- */

/* E plus the output's own rounding, one ulp of out at |g| + E (B13's form);
   NSX_E_NOT_APPLICABLE when it may overflow out. */
static int element_out(const gstate *st, double E, double g, double gu, const char *what, int b, int pos, int head,
                       int col, double *out, nsx_err *err)
{
    const nsx_fmt *fo = &st->c.k.fout;
    double ga = fabs(g) * (1 + U64) + gu; /* |g| for every exact value within gu */
    if (isinf(E)) { /* a row whose weights cannot be bounded (ORACLE.md 8.4): not judged */
        *out = INFINITY;
        return 0;
    }
    if (isnan(E)) { /* a bound that could not be computed passes nothing (oracle/within.h) */
        *out = NAN;
        return 0;
    }
    (void)what, (void)b, (void)pos, (void)head, (void)col;
    if (ga > fo->max)
        return nsx_err_set(err, NSX_E_NOT_APPLICABLE,
                           "not applicable under model %s: %s[b=%d,j=%d,h=%d,c=%d] overflows the output format "
                           "(%.6g, limit %.6g)", st->ctx->model_text, what, b, pos, head, col, ga, fo->max);
    double B = E + nsx_fmt_ulp(fo, ga + E);
    /* a bound beyond the format's range says nothing: not judged */
    *out = ga + B > fo->max ? INFINITY : B;
    return 0;
}

/* The accumulation must stay bounded: <r(m) + 1>_u~ <= 1/8 (3.1). */
static int sum_applicable(const gstate *st, size_t m, int b, int h, int i, nsx_err *err)
{
    if (gamma_red(&st->c, (double)m) <= 0.125)
        return 0;
    return nsx_bound_not_applicable(st->ctx, err, b, h, i, "the accumulation format cannot bound a gradient's sum "
                                                           "of this many terms", (double)m, 0);
}

static int block_finish(gstate *st, int b, int g, const nsx_grad_bound *gb, nsx_err *err)
{
    const nsx_problem *p = st->p;
    const gconsts *c = &st->c;
    const int n = p->n, d = p->d, dv = p->dv, L = p->L;
    const gblock *B = &st->blk;
    int rc = 0;
    for (int m = 0; m < n && !rc; m++)
        for (int j = 0; j < L && !rc; j++) {
            size_t e = (size_t)m * L + j, cnt = B->cnt[e];
            if (gb->terms_k)
                gb->terms_k[(((size_t)b * p->Hkv + g) * n + m) * L + j] = cnt;
            st->cnt_max = cnt > st->cnt_max ? cnt : st->cnt_max;
            if (cnt && gamma_red(c, (double)cnt) > 0.125) {
                rc = nsx_err_set(err, NSX_E_NOT_APPLICABLE,
                                 "not applicable under model %s: batch %d, kv head %d, key %d of dimension %d: the "
                                 "accumulation format cannot bound a gradient's sum of this many terms (%zu)",
                                 st->ctx->model_text, b, g, j, m + 1, cnt);
                break;
            }
            const double gred = gamma_red(c, (double)cnt);
            /* with int: n partial contractions, and a GQA group's per-head
               sums rounded before the group's sum (an einsum over expanded
               k, v): n + 1 roundings */
            const double Gk = gam_mul(gam_mul(gred, c->sig), gamma_of(n + 1, c->k.ft.u));
            const double Gv = gam_mul(gam_mul(gred, c->gos), gamma_of(n + 1, c->k.ft.u));
            const double abs_red = 2 * (reduction((double)cnt) + 2) * c->k.fa.lambda;
            for (int l = 0; l < d && !rc && gb->dk[m]; l++) {
                size_t at = nsx_k_at(p, b, j, g, l), el = e * d + l;
                if (!cnt) {
                    gb->dk[m][at] = 0;
                    continue;
                }
                double E = c->as * (B->ka[el] + Gk * (B->ka[el] + B->kx[el])) +
                           2 * (c->cK + 4) * c->lam * c->gs * B->kg[el] * (1 + Gk) + abs_red * c->gs;
                char what[16];
                snprintf(what, sizeof what, "dk%d", m + 1);
                double gu = st->g_unc && st->g_unc[1 + m] ? st->g_unc[1 + m][at] : 0.0;
                rc = element_out(st, E, st->ex->dk[m][at], gu, what, b, j, g, l, &gb->dk[m][at], err);
            }
            for (int cc = 0; cc < dv && !rc && gb->dv[m]; cc++) {
                size_t at = nsx_v_at(p, b, j, g, cc), el = e * dv + cc;
                if (!cnt) {
                    gb->dv[m][at] = 0;
                    continue;
                }
                double E = c->aos * (B->va[el] + Gv * (B->va[el] + B->vx[el])) +
                           2 * (c->cK + 4) * c->lam * fmax(1.0, c->aos) * B->vg[el] * (1 + Gv) +
                           abs_red * fmax(1.0, c->aos);
                char what[16];
                snprintf(what, sizeof what, "dv%d", m + 1);
                double gu = st->g_unc && st->g_unc[1 + n + m] ? st->g_unc[1 + n + m][at] : 0.0;
                rc = element_out(st, E, st->ex->dv[m][at], gu, what, b, j, g, cc, &gb->dv[m][at], err);
            }
        }
    return rc;
}

/* ---- the whole problem ------------------------------------------------- */

static void gstate_free(gstate *st)
{
    free(st->row.t);
    free(st->row.J);
    free(st->blk.ka);
    free(st->blk.va);
    free(st->blk.cnt);
    free(st->obound);
    free(st->kp);
}

/* G9: the margin of 3.9 for the longest chain of binary64 operations: sums
   over a row's tuples and over an element's terms, products over d, dv, n. */
static double chain_margin(const gstate *st)
{
    const nsx_problem *p = st->p;
    double K = 8.0 * ((double)st->n_max + (double)st->cnt_max) + 8.0 * (p->d + p->dv) + 32.0 * p->n + 512;
    return 1 + 8 * K * U64;
}

static void scale_all(double *x, size_t count, double f)
{
    for (size_t t = 0; x && t < count; t++)
        x[t] *= f;
}

int nsx_bound_grads(nsx_bound_ctx *ctx, const int32_t *sel, const nsx_outputs *ex, nsx_grad_bound *gb,
                    nsx_err *err)
{
    return nsx_bound_grads_unc(ctx, sel, ex, NULL, NULL, NULL, gb, err);
}

int nsx_bound_grads_unc(nsx_bound_ctx *ctx, const int32_t *sel, const nsx_outputs *ex, const double *o_unc,
                        const double *lse_unc, const double *const *g_unc, nsx_grad_bound *gb, nsx_err *err)
{
    assert(ctx && ex && gb && err);
    const nsx_problem *p = ctx->p;
    const int n = p->n, d = p->d, dv = p->dv, L = p->L, Hg = p->H / p->Hkv;
    assert(ctx->in->dout && ex->o && ex->lse && ex->dq);
    for (int m = 0; m < n; m++)
        assert(ex->dk[m] && ex->dv[m]);
    gstate st = {.ctx = ctx, .p = p, .in = ctx->in, .ex = ex, .row = {.n = n}, .o_unc = o_unc, .lse_unc = lse_unc,
                 .g_unc = g_unc};
    gconsts_of(ctx, &st.c);
    size_t nk = (size_t)n * L * d, nv = (size_t)n * L * dv;
    st.blk.ka = malloc(3 * nk * sizeof(double));
    st.blk.va = malloc(3 * nv * sizeof(double));
    st.blk.cnt = malloc((size_t)n * L * sizeof(size_t));
    st.obound = malloc((size_t)dv * sizeof(double));
    st.kp = malloc(2 * (size_t)n * d * sizeof(double));
    int rc = 0;
    if (!st.blk.ka || !st.blk.va || !st.blk.cnt || !st.obound || !st.kp) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
        goto done;
    }
    st.blk.kx = st.blk.ka + nk, st.blk.kg = st.blk.ka + 2 * nk;
    st.blk.vx = st.blk.va + nv, st.blk.vg = st.blk.va + 2 * nv;
    st.kg = st.kp + (size_t)n * d;
    for (int b = 0; b < p->B && !rc; b++)
        for (int g = 0; g < p->Hkv && !rc; g++) {
            memset(st.blk.ka, 0, 3 * nk * sizeof(double));
            memset(st.blk.va, 0, 3 * nv * sizeof(double));
            memset(st.blk.cnt, 0, (size_t)n * L * sizeof(size_t));
            for (int h = g * Hg; h < (g + 1) * Hg && !rc; h++)
                for (int i = 0; i < L && !rc; i++) {
                    const int32_t *srow = sel ? sel + nsx_sel_at(p, b, i, 0) : NULL;
                    const double *eo = ex->o + nsx_o_at(p, b, i, h, 0);
                    double el = ex->lse[nsx_lse_at(p, b, h, i)];
                    double elu = lse_unc ? lse_unc[nsx_lse_at(p, b, h, i)] : 0.0;
                    const double *eou = o_unc ? o_unc + nsx_o_at(p, b, i, h, 0) : NULL;
                    double *dqb = gb->dq ? gb->dq + nsx_q_at(p, b, i, h, 0) : NULL;
                    nsx_row_bound rb;
                    st.row.N = 0;
                    st.row.oom = 0;
                    rc = nsx_bound_row_visit(ctx, b, h, i, srow, eo, eou, el, elu, st.obound, &rb, collect, &st.row,
                                             err);
                    if (rc)
                        break;
                    if (st.row.oom) {
                        rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
                        break;
                    }
                    if (rb.nonfinite || (rb.N > 0) != isfinite(el)) {
                        rc = nsx_err_set(err, NSX_E_INPUT,
                                         "vector: batch %d, head %d, query %d: %s", b, h, i,
                                         rb.nonfinite ? "reads a NaN or an infinity (no gradients are defined)"
                                                      : "the expected lse contradicts the slice");
                        break;
                    }
                    if (gb->terms_q)
                        gb->terms_q[nsx_lse_at(p, b, h, i)] = 0;
                    if (rb.N == 0) { /* SPEC 1.7: an empty slice contributes nothing, dq = 0 */
                        for (int l = 0; dqb && l < d; l++)
                            dqb[l] = 0;
                        continue;
                    }
                    st.n_max = rb.N > st.n_max ? rb.N : st.n_max;
                    if (gb->terms_q)
                        gb->terms_q[nsx_lse_at(p, b, h, i)] = rb.N;
                    if ((rc = sum_applicable(&st, rb.N, b, h, i, err)))
                        break;
                    row_terms(&st, b, h, i, el, elu, rb.lse);
                    if (dqb) {
                        row_dq(&st, b, h, dqb);
                        const double *gq = ex->dq + nsx_q_at(p, b, i, h, 0);
                        const double *gqu = g_unc && g_unc[0] ? g_unc[0] + nsx_q_at(p, b, i, h, 0) : NULL;
                        for (int l = 0; l < d && !rc; l++)
                            rc = element_out(&st, dqb[l], gq[l], gqu ? gqu[l] : 0.0, "dq", b, i, h, l, &dqb[l], err);
                    }
                    row_dk_dv(&st, b, h, i);
                }
            if (!rc)
                rc = block_finish(&st, b, g, gb, err);
        }
    if (!rc) {
        double margin = chain_margin(&st);
        if ((margin - 1) / 8 > 0x1p-12)
            rc = nsx_err_set(err, NSX_E_NOT_APPLICABLE, "not applicable under model %s: too many terms for the "
                                                        "bound's binary64 arithmetic", ctx->model_text);
        scale_all(gb->dq, nsx_q_size(p), margin);
        for (int m = 0; m < n; m++) {
            scale_all(gb->dk[m], nsx_k_size(p), margin);
            scale_all(gb->dv[m], nsx_v_size(p), margin);
        }
    }
done:
    gstate_free(&st);
    return rc;
}
