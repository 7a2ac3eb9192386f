/*
 * The binary64 loop reference and its error bound (fuzz/dref.h;
 * docs/FUZZING.md, equations D1-D7).
 *
 * Per row (b, h, i), two passes over the allowed tuples J (E2), in the same
 * order: the scores T^_J = s (sum_l q_l prod_m (k_m[j_m,l] + kb_m)) and their
 * largest value m; then e_J = exp(T^_J - m), S = sum e_J, Y_c = sum e_J W_J,c,
 * O_c = os Y_c / S (/ n for the mean), LSE = m + log S.  Each pass keeps what
 * the bound needs: the score error bounds eT_J (D1), the score range, and
 * per channel the largest |W^| and value error bound eW (D3).
 *
 * Notation: u = 2^-53; <k> = (1 + u)^k - 1; ETA = 2^-1074 bounds the
 * absolute error of a product that underflows (round to nearest gives half
 * of it) and of exp and log in the subnormal range; additions are exact
 * there.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/dref.h"
#include "nsimplex/slice.h"

#define U64 0x1p-53
#define ETA 0x1p-1074
/* the bound's own binary64 arithmetic: a few dozen roundings of nonnegative
   quantities, far below this factor (FUZZING.md, D7) */
#define INFLATE (1 + 0x1p-40)

static double gam(double k)
{
    return expm1(k * log1p(U64));
}

typedef struct row_ctx {
    const nsx_problem *p;
    const nsx_inputs *in;
    nsx_slice z;         /* Z(i) */
    double *t;           /* T^_J per allowed tuple */
    size_t cap;
    double *pre;         /* [3][d]: prefix products for the scores (value, |.|, max(1,|.|)) */
    double *vpre;        /* [3][dv]: prefix of the values (value, |.|, max(1,|.|)) */
    double *Y, *Wmax, *eWmax; /* [dv] each */
} row_ctx;

/* The score factors of dimensions 0..n-2 (with q) for the current prefix:
   pre[l] = q_l prod (k + kb), pa = |q| prod (|k| + |kb|), pg = max(1,|s|)
   max(1,|q|) prod max(1, |k| + |kb|). */
static void score_prefix(row_ctx *x, const double *Q, const int *J, int b, int g, double gs)
{
    const nsx_problem *p = x->p;
    const int d = p->d;
    double *pv = x->pre, *pa = pv + d, *pg = pa + d;
    for (int l = 0; l < d; l++) {
        pv[l] = Q[l];
        pa[l] = fabs(Q[l]);
        pg[l] = gs * fmax(1.0, fabs(Q[l]));
    }
    for (int m = 0; m < p->n - 1; m++) {
        const double *K = x->in->k[m] + nsx_k_at(p, b, J[m], g, 0);
        const double kb = p->k_bias[m], akb = fabs(kb);
        for (int l = 0; l < d; l++) {
            pv[l] *= K[l] + kb;
            pa[l] *= fabs(K[l]) + akb;
            pg[l] *= fmax(1.0, fabs(K[l]) + akb);
        }
    }
}

static void value_prefix(row_ctx *x, const int *J, int b, int g)
{
    const nsx_problem *p = x->p;
    const int dv = p->dv, prod = p->reduce == NSX_REDUCE_PRODUCT;
    double *wv = x->vpre, *wa = wv + dv, *wg = wa + dv;
    for (int c = 0; c < dv; c++) {
        wv[c] = prod ? 1.0 : 0.0;
        wa[c] = prod ? 1.0 : 0.0;
        wg[c] = 1.0;
    }
    for (int m = 0; m < p->n - 1; m++) {
        const double *V = x->in->v[m] + nsx_v_at(p, b, J[m], g, 0);
        const double vb = p->v_bias[m], avb = fabs(vb);
        for (int c = 0; c < dv; c++) {
            if (prod) {
                wv[c] *= V[c] + vb;
                wa[c] *= fabs(V[c]) + avb;
                wg[c] *= fmax(1.0, fabs(V[c]) + avb);
            } else {
                wv[c] += V[c] + vb;
                wa[c] += fabs(V[c]) + avb;
            }
        }
    }
}

/* One row: writes O (dv values), *lse and their bounds.  Returns 0, or -1
   for a non-finite score or value, -2 out of memory. */
static int one_row(row_ctx *x, int b, int h, int i, const int32_t *sel_row, double *O, double *lse,
                   double *Ou, double *lu, uint64_t *tuples)
{
    const nsx_problem *p = x->p;
    const int n = p->n, d = p->d, dv = p->dv, g = nsx_kv_head(p, h);
    const int prod = p->reduce == NSX_REDUCE_PRODUCT;
    const double s = nsx_problem_score_scale(p), as = fabs(s), gs = fmax(1.0, as);
    const double *Q = x->in->q + nsx_q_at(p, b, i, h, 0);
    nsx_slice *z = &x->z;
    const int *J = z->J;

    size_t prod_len = nsx_slice_start(z, i, sel_row);
    if (prod_len > x->cap) {
        double *t = realloc(x->t, prod_len * sizeof *t);
        if (!t)
            return -2;
        x->t = t;
        x->cap = prod_len;
    }
    /* pass 1: the scores (D1) */
    const double CT = 2.0 * n + d + 2, gT = gam(CT);
    const int last = n - 1;
    const double kbl = p->k_bias[last], akbl = fabs(kbl);
    double m = -INFINITY, tmin = INFINITY, eT_max = 0;
    size_t N = 0;
    while (nsx_slice_next(z)) {
        if (z->moved < last || N == 0)
            score_prefix(x, Q, J, b, g, gs);
        const double *K = x->in->k[last] + nsx_k_at(p, b, J[last], g, 0);
        const double *pv = x->pre, *pa = pv + d, *pg = pa + d;
        double P = 0, M = 0, G = 0;
        for (int l = 0; l < d; l++) {
            P += pv[l] * (K[l] + kbl);
            M += pa[l] * (fabs(K[l]) + akbl);
            G += pg[l] * fmax(1.0, fabs(K[l]) + akbl);
        }
        double T = s * P;
        if (!isfinite(T) || !isfinite(M) || !isfinite(G))
            return -1;
        x->t[N++] = T;
        m = fmax(m, T);
        tmin = fmin(tmin, T);
        /* D1; M and G carry up to CT roundings of their own: (1 + 2 gT) */
        eT_max = fmax(eT_max, (gT * as * M + 2 * CT * ETA * G) * (1 + 2 * gT));
    }
    *tuples += N;
    if (N == 0) { /* empty slice: O = 0, LSE = -inf, exactly */
        for (int c = 0; c < dv; c++)
            O[c] = 0.0, Ou[c] = 0.0;
        *lse = -INFINITY;
        *lu = 0.0;
        return 0;
    }

    /* pass 2: weights, values (D2, D3), sums (D4) */
    const double gW = gam(2.0 * n), vbl = p->v_bias[last], avbl = fabs(vbl);
    for (int c = 0; c < dv; c++)
        x->Y[c] = x->Wmax[c] = x->eWmax[c] = 0;
    double S = 0;
    nsx_slice_rewind(z);
    for (size_t t = 0; nsx_slice_next(z); t++) {
        if (z->moved < last || t == 0)
            value_prefix(x, J, b, g);
        const double e = exp(x->t[t] - m);
        const double *V = x->in->v[last] + nsx_v_at(p, b, J[last], g, 0);
        const double *wv = x->vpre, *wa = wv + dv, *wg = wa + dv;
        S += e;
        for (int c = 0; c < dv; c++) {
            double W, eW;
            if (prod) {
                W = wv[c] * (V[c] + vbl);
                eW = (gW * wa[c] * (fabs(V[c]) + avbl) + 4.0 * n * ETA * wg[c] * fmax(1.0, fabs(V[c]) + avbl)) *
                     (1 + 2 * gW);
            } else {
                W = wv[c] + (V[c] + vbl);
                eW = gW * (wa[c] + fabs(V[c]) + avbl) * (1 + 2 * gW);
            }
            if (!isfinite(W) || !isfinite(eW))
                return -1;
            x->Y[c] += e * W;
            x->Wmax[c] = fmax(x->Wmax[c], fabs(W));
            x->eWmax[c] = fmax(x->eWmax[c], eW);
        }
    }

    /* the outputs (D5) and their bounds (D6, D7) */
    const double Nd = (double)N, gN = gam(Nd), gN1 = gam(Nd - 1);
    const double beta = (eT_max + U64 * (m - tmin)) * (1 + 2 * U64) + 5 * U64;
    const double osn = p->reduce == NSX_REDUCE_MEAN ? fabs(p->out_scale) / n : fabs(p->out_scale);
    for (int c = 0; c < dv; c++) {
        double mu = x->Y[c] / S;
        double o = p->out_scale * mu;
        if (p->reduce == NSX_REDUCE_MEAN)
            o /= n;
        if (!isfinite(o))
            return -1;
        O[c] = o;
        double Wb = x->Wmax[c] + x->eWmax[c];
        double r = 2 * Nd * ETA * (Wb * (1 + gN) + 1) / (1 - 2 * Nd * ETA);
        double X = Wb * (1 + gN) + r, phi = gN1 + 3 * Nd * ETA;
        /* the weights' perturbation, capped by the hull of the values: both
           sum_J A'_J W_J and mu lie in [-Wb, Wb] */
        double E1 = fmin(expm1(2 * beta), 2.0) * Wb + x->eWmax[c] + gN * Wb + r + X * phi / (1 - phi);
        double E2 = E1 + U64 * (Wb + E1) + ETA;
        Ou[c] = (osn * E2 + 2 * U64 * osn * (Wb + E2) * (1 + U64) + 2 * ETA) * INFLATE + ETA;
    }
    double ell = log(S);
    *lse = m + ell;
    *lu = (beta + 1.01 * gN + 3 * Nd * ETA + 4.01 * U64 * fabs(ell) + 1.01 * U64 * (fabs(m) + fabs(ell)) + 2 * ETA) *
              INFLATE + ETA;
    return 0;
}

int nsx_dref_forward(const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                     const unsigned char *skip, double *o, double *lse, double *o_unc,
                     double *lse_unc, uint64_t *tuples, nsx_err *err)
{
    row_ctx x = {.p = p, .in = in};
    int rc = 0;
    uint64_t count = 0;
    if (nsx_slice_init(&x.z, p))
        rc = -2;
    x.pre = malloc((size_t)3 * p->d * sizeof(double));
    x.vpre = malloc((size_t)3 * p->dv * sizeof(double));
    x.Y = malloc((size_t)3 * p->dv * sizeof(double));
    if (!x.pre || !x.vpre || !x.Y)
        rc = -2;
    if (!rc) {
        x.Wmax = x.Y + p->dv;
        x.eWmax = x.Wmax + p->dv;
    }
    for (int b = 0; b < p->B && !rc; b++)
        for (int i = 0; i < p->L && !rc; i++)
            for (int h = 0; h < p->H && !rc; h++) {
                double *O = o + nsx_o_at(p, b, i, h, 0), *Ou = o_unc + nsx_o_at(p, b, i, h, 0);
                size_t li = nsx_lse_at(p, b, h, i);
                if (skip && skip[(size_t)b * p->L + i]) {
                    for (int c = 0; c < p->dv; c++)
                        O[c] = NAN, Ou[c] = 0;
                    lse[li] = NAN;
                    lse_unc[li] = 0;
                    continue;
                }
                const int32_t *srow = p->sel.source != NSX_SEL_NONE ? sel + nsx_sel_at(p, b, i, 0) : NULL;
                rc = one_row(&x, b, h, i, srow, O, &lse[li], Ou, &lse_unc[li], &count);
                if (rc == -1)
                    nsx_err_set(err, NSX_E_INPUT,
                                "binary64 reference: batch %d, head %d, query %d reads a non-finite value or "
                                "overflows", b, h, i);
            }
    if (rc == -2)
        nsx_err_set(err, NSX_E_NOMEM, "binary64 reference: out of memory");
    nsx_slice_free(&x.z);
    free(x.pre);
    free(x.vpre);
    free(x.Y);
    free(x.t);
    if (tuples)
        *tuples = count;
    return rc == 0 ? 0 : rc == -1 ? NSX_E_INPUT : NSX_E_NOMEM;
}
