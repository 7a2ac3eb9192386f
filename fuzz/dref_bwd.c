/*
 * The binary64 loop reference of the gradients (E7a-E7g) and its error
 * allowance (fuzz/dref.h; docs/FUZZING.md, "The gradients' loop
 * reference", G1-G4).  Written from docs/SPEC.md 1.7 apart from ref/ (which
 * encloses the same sums over MPFR): a deliberate independent copy.
 *
 * Per row (b, h, i), three passes over the allowed tuples J of Z(i), in
 * the same order:
 *   1. T^_J = s (sum_l q_l prod_m K~_m[j_m,l]), their largest value mx and
 *      smallest, and the score error bound eT_J (as dref.c's D1);
 *   2. e_J = exp(T^_J - mx), S = sum e_J;
 *   3. A^_J = e_J / S, W^_J,c, dP^_J = os sum_c dO_c W^_J,c / den,
 *      Delta^ = sum_J A^_J dP^_J;
 *   4. dT^_J = A^_J (dP^_J - Delta^), added into dq, dk_m, dv_m with
 *      their coefficients (E7d-E7f), the GQA sum of E7g by accumulating
 *      every head of a group into the same dk, dv.
 * Beside each value the magnitude g~ of its terms: the same sums with
 * every factor replaced by its absolute value and dP - Delta by
 * |dP| + |Delta| (G1).  The allowance (G3) is a multiple of g~.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/dref.h"
#include "nsimplex/slice.h"

#define U64 0x1p-53
#define ETA 0x1p-1074

static double gam(double k)
{
    return expm1(k * log1p(U64));
}

typedef struct bctx {
    const nsx_problem *p;
    const nsx_inputs *in;
    nsx_dref_grads *g;
    nsx_slice z;
    size_t cap;
    double *t, *a, *dp, *dpm; /* per tuple: T^, A^, dP^, |dP|~ */
    double *w, *wm;           /* [dv]: W^ and |W|~ of the current tuple */
    double rho_max;           /* G2: the largest relative error of a weight */
    double tiny;              /* smallest nonzero factor magnitude seen */
    double pmax, cmax;        /* largest |dP|~ + |Delta|~ and coefficient */
    double smax, tabs, nmax;  /* largest score magnitude, |T^|, tuples of a row */
    uint64_t terms;           /* (row, tuple) pairs of the whole problem */
} bctx;

static double kt(const bctx *x, int m, int b, int j, int g, int l, double *mag)
{
    const double kv = x->in->k[m][nsx_k_at(x->p, b, j, g, l)], kb = x->p->k_bias[m];
    *mag = fabs(kv) + fabs(kb);
    return kv + kb;
}

static double vt(const bctx *x, int m, int b, int j, int g, int c, double *mag)
{
    const double vv = x->in->v[m][nsx_v_at(x->p, b, j, g, c)], vb = x->p->v_bias[m];
    *mag = fabs(vv) + fabs(vb);
    return vv + vb;
}

static void see(bctx *x, double mag)
{
    if (mag != 0 && mag < x->tiny)
        x->tiny = mag;
}

/* One row.  0, -1 for a non-finite value, -2 out of memory. */
static int one_row(bctx *x, int b, int h, int i, const int32_t *sel_row)
{
    const nsx_problem *p = x->p;
    nsx_dref_grads *G = x->g;
    const int n = p->n, d = p->d, dv = p->dv, g = nsx_kv_head(p, h);
    const double s = nsx_problem_score_scale(p), os = p->out_scale;
    const double den = p->reduce == NSX_REDUCE_MEAN ? n : 1;
    const double *Q = x->in->q + nsx_q_at(p, b, i, h, 0);
    const double *dO = x->in->dout + nsx_o_at(p, b, i, h, 0);
    nsx_slice *z = &x->z;
    const int *J = z->J;
    size_t cap = nsx_slice_start(z, i, sel_row);
    if (cap > x->cap) {
        double *t = realloc(x->t, 4 * cap * sizeof *t);
        if (!t)
            return -2;
        x->t = t;
        x->cap = cap;
    }

    /* 1. scores */
    const double gT = gam(2.0 * n + d + 2);
    double mx = -INFINITY, mn = INFINITY, eT = 0;
    size_t N = 0;
    while (nsx_slice_next(z)) {
        double T = 0, M = 0;
        for (int l = 0; l < d; l++) {
            double f = Q[l], fm = fabs(Q[l]), km;
            for (int m = 0; m < n; m++) {
                f *= kt(x, m, b, J[m], g, l, &km);
                fm *= km;
            }
            see(x, fm);
            T += f;
            M += fm;
        }
        T *= s;
        if (!isfinite(T) || !isfinite(M))
            return -1;
        x->t[N++] = T;
        mx = fmax(mx, T);
        mn = fmin(mn, T);
        eT = fmax(eT, gT * fabs(s) * M * (1 + 2 * gT));
        x->smax = fmax(x->smax, fabs(s) * M);
        x->tabs = fmax(x->tabs, fabs(T));
    }
    x->nmax = fmax(x->nmax, (double)N);
    if (N == 0)
        return 0; /* an empty slice adds nothing; dq stays +0 */
    x->terms += N;
    x->a = x->t + x->cap;
    x->dp = x->a + x->cap;
    x->dpm = x->dp + x->cap;

    /* 2. weights; G2: their relative error */
    double S = 0;
    for (size_t t = 0; t < N; t++)
        S += (x->a[t] = exp(x->t[t] - mx));
    const double beta = (eT + U64 * (mx - mn)) * (1 + 2 * U64) + 5 * U64;
    const double rho = expm1(2 * beta) + gam((double)N + 2);
    x->rho_max = fmax(x->rho_max, rho);

    /* 3. dP and Delta */
    double Delta = 0, Deltam = 0;
    nsx_slice_rewind(z);
    for (size_t t = 0; nsx_slice_next(z); t++) {
        x->a[t] /= S;
        double P = 0, Pm = 0;
        for (int c = 0; c < dv; c++) {
            double w, wm, vm;
            if (p->reduce == NSX_REDUCE_PRODUCT) {
                w = 1, wm = 1;
                for (int m = 0; m < n; m++) {
                    w *= vt(x, m, b, J[m], g, c, &vm);
                    wm *= vm;
                }
            } else {
                w = 0, wm = 0;
                for (int m = 0; m < n; m++) {
                    w += vt(x, m, b, J[m], g, c, &vm);
                    wm += vm;
                }
            }
            see(x, wm);
            P += dO[c] * w;
            Pm += fabs(dO[c]) * wm;
        }
        x->dp[t] = os * P / den;
        x->dpm[t] = fabs(os) * Pm / den;
        if (!isfinite(x->dp[t]) || !isfinite(x->dpm[t]))
            return -1;
        Delta += x->a[t] * x->dp[t];
        Deltam += x->a[t] * x->dpm[t];
    }

    /* 4. dT and the gradients */
    double *dq = G->dq + nsx_q_at(p, b, i, h, 0), *mq = G->mq + nsx_q_at(p, b, i, h, 0);
    nsx_slice_rewind(z);
    for (size_t t = 0; nsx_slice_next(z); t++) {
        const double A = x->a[t];
        const double dT = A * (x->dp[t] - Delta), dTm = A * (x->dpm[t] + Deltam);
        x->pmax = fmax(x->pmax, x->dpm[t] + Deltam);
        for (int l = 0; l < d; l++) {
            /* dq: s prod_m K~_m; dk_m: s Q prod_{m' != m} K~_m' */
            double f[NSX_MAX_ORDER], fm[NSX_MAX_ORDER], all = s, allm = fabs(s);
            for (int m = 0; m < n; m++) {
                f[m] = kt(x, m, b, J[m], g, l, &fm[m]);
                all *= f[m];
                allm *= fm[m];
            }
            see(x, allm);
            x->cmax = fmax(x->cmax, allm);
            dq[l] += dT * all;
            mq[l] += dTm * allm;
            for (int m = 0; m < n; m++) {
                double co = s * Q[l], com = fabs(s * Q[l]);
                for (int m2 = 0; m2 < n; m2++)
                    if (m2 != m) {
                        co *= f[m2];
                        com *= fm[m2];
                    }
                see(x, com);
                x->cmax = fmax(x->cmax, com);
                size_t e = nsx_k_at(p, b, J[m], g, l);
                G->dk[m][e] += dT * co;
                G->mk[m][e] += dTm * com;
            }
        }
        for (int c = 0; c < dv; c++) {
            /* dv_m: os A dO_c dW_m / den (dW_m = prod_{m' != m} V~ for the
               product, 1 for sum and mean) */
            double vf[NSX_MAX_ORDER], vm[NSX_MAX_ORDER];
            for (int m = 0; m < n; m++)
                vf[m] = vt(x, m, b, J[m], g, c, &vm[m]);
            for (int m = 0; m < n; m++) {
                double co = os * dO[c] / den, com = fabs(co);
                for (int m2 = 0; m2 < n && p->reduce == NSX_REDUCE_PRODUCT; m2++)
                    if (m2 != m) {
                        co *= vf[m2];
                        com *= vm[m2];
                    }
                see(x, com);
                x->cmax = fmax(x->cmax, com);
                size_t e = nsx_v_at(p, b, J[m], g, c);
                G->dv[m][e] += A * co;
                G->mv[m][e] += A * com;
            }
        }
    }
    return 0;
}

/* G3: the allowance of one element of magnitude mag. */
static double allowance(const bctx *x, double mag, double k)
{
    const double r = x->rho_max;
    return 2 * ((mag > 0 ? (2 * r * (1 + r) + gam(k)) * mag : 0) + 16 * k * ETA * (x->pmax + 1) * (x->cmax + 1)) +
           ETA;
}

int nsx_dref_backward(const nsx_problem *p, const nsx_inputs *in, const int32_t *sel, nsx_dref_grads *g,
                      nsx_err *err)
{
    bctx x = {.p = p, .in = in, .g = g, .tiny = INFINITY};
    const int n = p->n;
    memset(g->dq, 0, nsx_q_size(p) * sizeof(double));
    memset(g->mq, 0, nsx_q_size(p) * sizeof(double));
    for (int m = 0; m < n; m++) {
        memset(g->dk[m], 0, nsx_k_size(p) * sizeof(double));
        memset(g->mk[m], 0, nsx_k_size(p) * sizeof(double));
        memset(g->dv[m], 0, nsx_v_size(p) * sizeof(double));
        memset(g->mv[m], 0, nsx_v_size(p) * sizeof(double));
    }
    int rc = nsx_slice_init(&x.z, p) ? -2 : 0;
    for (int b = 0; b < p->B && !rc; b++)
        for (int i = 0; i < p->L && !rc; i++)
            for (int h = 0; h < p->H && !rc; h++) {
                const int32_t *srow = p->sel.source != NSX_SEL_NONE ? sel + nsx_sel_at(p, b, i, 0) : NULL;
                rc = one_row(&x, b, h, i, srow);
                if (rc == -1)
                    nsx_err_set(err, NSX_E_INPUT,
                                "binary64 gradients: batch %d, head %d, query %d reads a non-finite value or "
                                "overflows", b, h, i);
            }
    nsx_slice_free(&x.z);
    free(x.t);
    if (rc == -2)
        return nsx_err_set(err, NSX_E_NOMEM, "binary64 gradients: out of memory");
    if (rc)
        return NSX_E_INPUT;
    /* G4: factors this small may have been rounded in the subnormal range */
    if (x.tiny < 0x1p-700)
        return nsx_err_set(err, NSX_E_INPUT,
                           "binary64 gradients: a product of factors as small as 2^%d is outside the loop "
                           "reference's range (G4)", (int)floor(log2(x.tiny)));
    /* G2: weights known to within 50% at least, else the allowance says
       nothing */
    if (!(x.rho_max < 0.5))
        return nsx_err_set(err, NSX_E_INPUT,
                           "binary64 gradients: the scores' error leaves the weights unbounded (G2)");
    /* the terms per element: at most every (row, tuple) of the problem,
       plus the roundings of one term */
    const double k = (double)x.terms + 4.0 * n + p->d + p->dv + 16;
    g->rho = x.rho_max;
    g->smax = x.smax;
    g->tabs = x.tabs;
    g->nmax = x.nmax;
    g->terms = (double)x.terms;
    g->pmax = x.pmax;
    g->cmax = x.cmax;
    for (size_t e = 0; e < nsx_q_size(p); e++)
        g->uq[e] = allowance(&x, g->mq[e], k);
    for (int m = 0; m < n; m++) {
        for (size_t e = 0; e < nsx_k_size(p); e++)
            g->uk[m][e] = allowance(&x, g->mk[m][e], k);
        for (size_t e = 0; e < nsx_v_size(p); e++)
            g->uv[m][e] = allowance(&x, g->mv[m][e], k);
    }
    return 0;
}
