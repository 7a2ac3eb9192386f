/*
 * The SIMD backward (simd/backward.c, nsx_simd_backward) judged by the
 * oracle's gradient check (nsx_check, docs/ORACLE.md 8) on every committed
 * bwd_* vector (default and tiles suites), and against an
 * independent binary64 loop reference written here on a table of random
 * problems covering every feature, every ISA this CPU runs (forced); the
 * same bits for 1 and 2 threads; masked keys and empty rows exactly +0;
 * the ABI entry of the shared library; eval --bwd --impl simd.
 *
 * The loop reference shares nothing with simd/ or ref/: it visits every
 * tuple of [0,L)^n, applies (E2) as the spec states it, and computes E1-E7
 * in binary64 from the float32 inputs, with for each gradient element the
 * sum of the absolute values of its terms (gabs).  Its own error (~1e-15
 * relative to gabs) is negligible beside the float32 tolerance:
 *
 *   |g~ - g| <= 4 (beta + g(depth)) gabs + 2^-120,    g(k) = k u / (1 - k u)
 *
 * beta bounds the relative error of one recomputed weight A (the score's
 * rounding g(d + 2n + 4) Tabs, the exp's 4u, the argument's and the saved
 * LSE's roundings 2u (|T - LSE| + |LSE| + 1), and the forward's LSE error
 * e_lse), so |A~ - A| <= beta A and dT = A (dP - Delta) is off by
 * beta |dT|abs plus the roundings of dP and Delta; depth bounds the
 * additions on any path of a gradient element (the rows of the G heads
 * within a query, the chunks, the queries of a slot, the slots):
 * depth = L G + N + d + dv + 64, N the largest slice.  A mask that lets one
 * tuple in or out moves an element by a whole term, far above this for the
 * table's sizes, and the masked-key test asks for exact zeros.  This is a
 * tolerance for testing, not the derived gradient bound of docs/ORACLE.md.
 */
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/casefile.h"
#include "nsimplex/kernel.h"
#include "nsimplex/ref.h"
#include "nsimplex/rng.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "runner/runner.h"
#include "simd/simd.h"
#include "tests/cli_run.h"
#include "tests/simd_case.h"
#include "tests/env.h"

/* ---- the table ------------------------------------------------------ */

static const tcase cases[] = {
    /* name                n  B  L   H Hkv d   dv  red cau dis windows        sel        k  dims kb      vb     ss   os nolse */
    {"n1_basic",           1, 2, 19, 2, 1, 13, 7,  P_, 1, 0, {0},           SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n1_window_nc_sum",   1, 1, 23, 2, 2, 17, 9,  S_, 0, 0, {5},           SEL_NONE,  0, 0, 0.5, -0.25, 0, 0, 0},
    {"n1_L1",              1, 1, 1,  1, 1, 5,  3,  P_, 1, 0, {0},           SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n2_paper_small",     2, 1, 40, 4, 1, 16, 16, P_, 1, 0, {12, 4},       SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n2_w1_lt_w2",        2, 1, 37, 2, 1, 11, 13, P_, 1, 0, {3, 9},        SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n2_noncausal_win",   2, 1, 29, 2, 1, 9,  19, P_, 0, 0, {4, 6},        SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n2_sum_bias",        2, 1, 33, 2, 1, 15, 17, S_, 1, 0, {20, 7},       SEL_NONE,  0, 0, 0.125, 1, 0, 0, 0},
    {"n2_mean_bias_scale", 2, 1, 26, 4, 2, 12, 10, M_, 1, 0, {0, 9},        SEL_NONE,  0, 0, -0.5, 0.75, 0.7, -2.5, 0},
    {"n2_wide",            2, 1, 70, 2, 1, 33, 40, P_, 1, 0, {0, 0},        SEL_NONE,  0, 0, 0.25, 1, 0, 0, 0},
    {"n2_wide_sum_nc",     2, 1, 50, 1, 1, 33, 40, S_, 0, 0, {0, 0},        SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n2_large_scores",    2, 1, 24, 2, 1, 8,  6,  P_, 1, 0, {0, 0},        SEL_NONE,  0, 0, 0, 0, 40, 0, 0},
    {"n2_distinct",        2, 1, 21, 2, 1, 10, 11, P_, 1, 1, {6, 0},        SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n2_sel_dim1",        2, 2, 31, 2, 1, 9,  7,  P_, 1, 0, {0, 8},        SEL_MIXED, 7, 1, 0, 0, 0, 0, 0},
    {"n2_sel_both_nc",     2, 1, 27, 2, 2, 12, 5,  S_, 0, 0, {0, 10},       SEL_MIXED, 9, 3, 0, 0.5, 0, 0, 0},
    {"n2_sel_empty_rows",  2, 1, 25, 1, 1, 6,  6,  P_, 1, 0, {0, 0},        SEL_EMPTY_ROWS, 5, 2, 0, 0, 0, 0, 0},
    {"n2_sel_distinct",    2, 1, 30, 2, 1, 8,  9,  M_, 1, 1, {0, 0},        SEL_MIXED, 6, 3, 0, 0, 0, 0, 0},
    {"n2_chunks",          2, 1, 60, 1, 1, 300, 20, P_, 1, 0, {0, 3},       SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n1_chunks",          1, 1, 150, 2, 1, 500, 20, P_, 0, 0, {0},         SEL_NONE,  0, 0, 0.25, 0, 0, 0, 0},
    {"n3_gqa2",            3, 1, 12, 4, 2, 9,  5,  P_, 1, 0, {0, 5, 3},     SEL_NONE,  0, 0, 0.125, 0.5, 0, 0, 0},
    {"n3_sel_sum",         3, 1, 20, 2, 1, 8,  8,  S_, 1, 0, {0, 0, 6},     SEL_MIXED, 25, 5, 0.125, 0.25, 0, 0, 0},
    {"n3_noncausal_dist",  3, 1, 9,  1, 1, 6,  6,  M_, 0, 1, {3, 0, 4},     SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n4_mean_distinct",   4, 1, 8,  2, 1, 7,  5,  M_, 1, 1, {0, 0, 0, 0},  SEL_NONE,  0, 0, 0.25, 0.5, 0, 0, 0},
    {"n4_windows",         4, 1, 11, 1, 1, 10, 9,  P_, 1, 0, {5, 3, 7, 2},  SEL_NONE,  0, 0, 0, 1, 0, 0, 0},
    {"n5_sum",             5, 1, 6,  1, 1, 5,  7,  S_, 1, 0, {0},           SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
    {"n6_product",         6, 1, 5,  2, 2, 6,  3,  P_, 0, 0, {0},           SEL_NONE,  0, 0, 0, 1, 0, 0, 0},
    {"n7_sel",             7, 1, 4,  1, 1, 3,  4,  M_, 1, 0, {0},           SEL_MIXED, 3, 0x55, 0, 0, 0, 0, 0},
    {"n8_product",         8, 1, 4,  1, 1, 4,  4,  P_, 1, 0, {0},           SEL_NONE,  0, 0, 0, 1, 0, 0, 0},
    {"n8_distinct_empty",  8, 1, 5,  1, 1, 3,  3,  S_, 1, 1, {0},           SEL_NONE,  0, 0, 0, 0, 0, 0, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))
/* The random cases nsx_check judges against MPFR's gradients: those with
   at most this many allowed tuples times n (d + dv) (the rest: the loop
   reference's tolerance alone). */
#define MPFR_WORK 4e5
#define SEED0 20261207u

/* ---- inputs --------------------------------------------------------- */

/* Gradients, float32 (the kernel's) or binary64 (the reference's). */
typedef struct fgrads {
    float *dq, *dk[NSX_MAX_ORDER], *dv[NSX_MAX_ORDER];
} fgrads;

typedef struct dgrads {
    double *dq, *dk[NSX_MAX_ORDER], *dv[NSX_MAX_ORDER];
} dgrads;

static void fgrads_alloc(fgrads *g, const inst *s)
{
    g->dq = malloc(s->nq * sizeof(float));
    for (int m = 0; m < s->p.n; m++) {
        g->dk[m] = malloc(s->nk * sizeof(float));
        g->dv[m] = malloc(s->nv * sizeof(float));
    }
}

static void fgrads_free(fgrads *g, int n)
{
    free(g->dq);
    for (int m = 0; m < n; m++)
        free(g->dk[m]), free(g->dv[m]);
}

static void dgrads_alloc(dgrads *g, const inst *s)
{
    g->dq = calloc(s->nq, sizeof(double));
    for (int m = 0; m < s->p.n; m++) {
        g->dk[m] = calloc(s->nk, sizeof(double));
        g->dv[m] = calloc(s->nv, sizeof(double));
    }
}

static void dgrads_free(dgrads *g, int n)
{
    free(g->dq);
    for (int m = 0; m < n; m++)
        free(g->dk[m]), free(g->dv[m]);
}

/* ---- the reference ---------------------------------------------------- */

typedef struct refout {
    dgrads g, ga;           /* gradients and the sums of their terms' absolute values */
    unsigned char *used[NSX_MAX_ORDER]; /* [B, L, Hkv]: key row used by an allowed tuple */
    double beta;            /* the largest relative error of a weight (see the top) */
    uint64_t nmax;          /* the largest slice */
    uint64_t total;         /* allowed tuples over every row and head */
} refout;

static double kt_of(const inst *s, int m, int b, int j, int g, int l)
{
    return s->k[m][(((size_t)b * s->p.L + j) * s->p.Hkv + g) * s->p.d + l] + s->p.k_bias[m];
}

static double vt_of(const inst *s, int m, int b, int j, int g, int c)
{
    return s->v[m][(((size_t)b * s->p.L + j) * s->p.Hkv + g) * s->p.dv + c] + s->p.v_bias[m];
}

/* E1-E7 of one (b, h, i) added into ro. */
static void ref_row(const inst *s, int b, int h, int i, refout *ro)
{
    const nsx_kernel_problem *p = &s->p;
    const int n = p->n, d = p->d, dv = p->dv, g = h / (p->H / p->Hkv);
    const double sc = p->score_scale, os = p->out_scale, rn = p->reduce == NSX_REDUCE_MEAN ? 1.0 / n : 1.0;
    const float *q = s->q + (((size_t)b * p->L + i) * p->H + h) * d;
    const float *dO = s->dout + (((size_t)b * p->L + i) * p->H + h) * dv;
    int J[NSX_MAX_ORDER] = {0};
    /* pass 1: the max score, the count, Tabs */
    double M = -INFINITY, tabs_max = 0;
    uint64_t N = 0;
    do {
        if (!ref_allowed(p, b, i, J))
            continue;
        double t = 0, ta = 0;
        for (int l = 0; l < d; l++) {
            double x = q[l], xa = fabs(x);
            for (int m = 0; m < n; m++) {
                x *= kt_of(s, m, b, J[m], g, l);
                xa *= fabs(kt_of(s, m, b, J[m], g, l));
            }
            t += x, ta += xa;
        }
        t *= sc, ta *= fabs(sc);
        M = t > M ? t : M;
        tabs_max = ta > tabs_max ? ta : tabs_max;
        N++;
    } while (next_tuple(J, n, p->L));
    if (N == 0)
        return;
    ro->nmax = N > ro->nmax ? N : ro->nmax;
    ro->total += N;
    /* pass 2: sum of exp, O, |O|abs */
    double Z = 0, *O = calloc((size_t)dv, sizeof(double)), *Oa = calloc((size_t)dv, sizeof(double));
    double spread = 0;
    memset(J, 0, sizeof J);
    do {
        if (!ref_allowed(p, b, i, J))
            continue;
        double t = 0;
        for (int l = 0; l < d; l++) {
            double x = q[l];
            for (int m = 0; m < n; m++)
                x *= kt_of(s, m, b, J[m], g, l);
            t += x;
        }
        t *= sc;
        double e = exp(t - M);
        Z += e;
        spread = M - t > spread ? M - t : spread;
        for (int c = 0; c < dv; c++) {
            double w = p->reduce == NSX_REDUCE_PRODUCT ? 1 : 0, wa = w;
            for (int m = 0; m < n; m++) {
                double v = vt_of(s, m, b, J[m], g, c);
                w = p->reduce == NSX_REDUCE_PRODUCT ? w * v : w + v;
                wa = p->reduce == NSX_REDUCE_PRODUCT ? wa * fabs(v) : wa + fabs(v);
            }
            O[c] += e * w * rn;
            Oa[c] += e * wa * rn;
        }
    } while (next_tuple(J, n, p->L));
    const double lse = M + log(Z);
    double delta = 0, delta_a = 0;
    for (int c = 0; c < dv; c++) {
        O[c] *= os / Z;
        Oa[c] *= fabs(os) / Z;
        delta += dO[c] * O[c];
        delta_a += fabs(dO[c]) * Oa[c];
    }
    /* the weight's relative error: the score, the argument, the exp, the
       saved LSE (its forward error and its float32 rounding) */
    double e_t = gam(d + 2 * n + 4) * tabs_max;
    double e_lse = e_t + 4 * U32 + gam(2.0 * N + 2 * n + 8) + 2 * U32 * (fabs(lse) + 1);
    double eta = e_t + e_lse + 2 * U32 * (spread + fabs(lse) + 1) + 4 * U32;
    double beta = expm1(eta) + 4 * U32;
    ro->beta = beta > ro->beta ? beta : ro->beta;
    /* pass 3: the gradients (E7a-f) */
    double *dq = ro->g.dq + (((size_t)b * p->L + i) * p->H + h) * d;
    double *dqa = ro->ga.dq + (((size_t)b * p->L + i) * p->H + h) * d;
    memset(J, 0, sizeof J);
    do {
        if (!ref_allowed(p, b, i, J))
            continue;
        double t = 0;
        for (int l = 0; l < d; l++) {
            double x = q[l];
            for (int m = 0; m < n; m++)
                x *= kt_of(s, m, b, J[m], g, l);
            t += x;
        }
        t *= sc;
        const double A = exp(t - lse);
        double dP = 0, dPa = 0;
        for (int c = 0; c < dv; c++) {
            double w = p->reduce == NSX_REDUCE_PRODUCT ? 1 : 0, wa = w;
            for (int m = 0; m < n; m++) {
                double v = vt_of(s, m, b, J[m], g, c);
                w = p->reduce == NSX_REDUCE_PRODUCT ? w * v : w + v;
                wa = p->reduce == NSX_REDUCE_PRODUCT ? wa * fabs(v) : wa + fabs(v);
            }
            dP += os * rn * dO[c] * w;
            dPa += fabs(os) * rn * fabs(dO[c]) * wa;
        }
        const double dT = A * (dP - delta), dTa = A * (dPa + delta_a);
        for (int l = 0; l < d; l++) {
            double pk = 1, pka = 1;
            for (int m = 0; m < n; m++) {
                pk *= kt_of(s, m, b, J[m], g, l);
                pka *= fabs(kt_of(s, m, b, J[m], g, l));
            }
            dq[l] += sc * dT * pk;
            dqa[l] += fabs(sc) * dTa * pka;
        }
        for (int m = 0; m < n; m++) {
            const size_t row = ((size_t)b * p->L + J[m]) * p->Hkv + g;
            ro->used[m][row] = 1;
            double *dk = ro->g.dk[m] + row * d, *dka = ro->ga.dk[m] + row * d;
            for (int l = 0; l < d; l++) {
                double x = sc * dT * q[l], xa = fabs(sc) * dTa * fabs(q[l]);
                for (int o = 0; o < n; o++)
                    if (o != m) {
                        x *= kt_of(s, o, b, J[o], g, l);
                        xa *= fabs(kt_of(s, o, b, J[o], g, l));
                    }
                dk[l] += x;
                dka[l] += xa;
            }
            double *dvv = ro->g.dv[m] + row * dv, *dva = ro->ga.dv[m] + row * dv;
            for (int c = 0; c < dv; c++) {
                double x = os * rn * A * dO[c], xa = fabs(x);
                for (int o = 0; o < n && p->reduce == NSX_REDUCE_PRODUCT; o++)
                    if (o != m) {
                        x *= vt_of(s, o, b, J[o], g, c);
                        xa *= fabs(vt_of(s, o, b, J[o], g, c));
                    }
                dvv[c] += x;
                dva[c] += xa;
            }
        }
    } while (next_tuple(J, n, p->L));
    free(O), free(Oa);
}

static void ref_compute(const inst *s, refout *ro)
{
    memset(ro, 0, sizeof *ro);
    dgrads_alloc(&ro->g, s);
    dgrads_alloc(&ro->ga, s);
    for (int m = 0; m < s->p.n; m++)
        ro->used[m] = calloc(s->nk / s->p.d, 1);
    for (int b = 0; b < s->p.B; b++)
        for (int h = 0; h < s->p.H; h++)
            for (int i = 0; i < s->p.L; i++)
                ref_row(s, b, h, i, ro);
}

static void ref_free(refout *ro, int n)
{
    dgrads_free(&ro->g, n);
    dgrads_free(&ro->ga, n);
    for (int m = 0; m < n; m++)
        free(ro->used[m]);
}

/* ---- running the kernel ----------------------------------------------- */

/* The SIMD forward then backward on isa with threads; 0 or the failing
   code.  The forward's o and lse are copied to o_out, lse_out when not NULL. */
static int run_simd_keep(const inst *s, int isa, int threads, fgrads *g, float *o_out, float *lse_out)
{
    float *o = malloc(s->no * sizeof(float)), *lse = malloc(s->nl * sizeof(float));
    nsx_kernel_io io = {.q = s->q, .o = o, .lse = lse};
    nsx_kernel_bwd_io bio = {.q = s->q, .o = o, .lse = lse, .dout = s->dout, .dq = g->dq};
    for (int m = 0; m < s->p.n; m++) {
        io.k[m] = bio.k[m] = s->k[m];
        io.v[m] = bio.v[m] = s->v[m];
        bio.dk[m] = g->dk[m];
        bio.dv[m] = g->dv[m];
    }
    int rc = nsx_simd_forward_isa(&s->p, &io, threads, isa);
    if (!rc)
        rc = nsx_simd_backward_isa(&s->p, &bio, threads, isa);
    if (o_out)
        memcpy(o_out, o, s->no * sizeof(float));
    if (lse_out)
        memcpy(lse_out, lse, s->nl * sizeof(float));
    free(o), free(lse);
    return rc;
}

static int run_simd(const inst *s, int isa, int threads, fgrads *g)
{
    return run_simd_keep(s, isa, threads, g, NULL, NULL);
}

/* ---- the oracle on random problems ---------------------------------------- */

/* The case of an instance, with MPFR's expected o, lse and gradients. */
typedef struct mcase {
    nsx_problem p;
    nsx_inputs in;
    nsx_outputs ex;
    double *buf[3 + 2 * NSX_MAX_ORDER];
} mcase;

static double *f64_of(const float *x, size_t count)
{
    double *d = malloc((count ? count : 1) * sizeof *d);
    for (size_t t = 0; t < count; t++)
        d[t] = x[t];
    return d;
}

static void mcase_make(const inst *s, mcase *mc)
{
    const nsx_kernel_problem *kp = &s->p;
    memset(mc, 0, sizeof *mc);
    nsx_problem *p = &mc->p;
    nsx_problem_defaults(p);
    p->n = kp->n, p->B = kp->B, p->L = kp->L, p->H = kp->H, p->Hkv = kp->Hkv, p->d = kp->d, p->dv = kp->dv;
    p->reduce = kp->reduce, p->causal = kp->causal, p->distinct = kp->distinct;
    p->score_scale_rsqrt_d = 0;
    p->score_scale = kp->score_scale;
    p->out_scale = kp->out_scale;
    p->input_format = NSX_FORMAT_F32;
    for (int m = 0; m < kp->n; m++) {
        p->window[m] = kp->window[m];
        p->k_bias[m] = kp->k_bias[m];
        p->v_bias[m] = kp->v_bias[m];
    }
    if (kp->topk > 0) {
        p->sel = (nsx_selection){NSX_SEL_INDICES, kp->topk, kp->sel_dims, 0, 0, 0, 0};
        mc->in.sel = kp->sel;
    }
    int nb = 0;
    mc->in.q = mc->buf[nb++] = f64_of(s->q, s->nq);
    mc->in.dout = mc->buf[nb++] = f64_of(s->dout, s->no);
    for (int m = 0; m < kp->n; m++) {
        mc->in.k[m] = mc->buf[nb++] = f64_of(s->k[m], s->nk);
        mc->in.v[m] = mc->buf[nb++] = f64_of(s->v[m], s->nv);
    }
    nsx_err err = {0};
    char why[256];
    ck_assert_msg(nsx_problem_check(p, why, sizeof why) == 0, "%s", why);
    mc->ex.o = malloc(s->no * sizeof(double));
    mc->ex.lse = malloc(s->nl * sizeof(double));
    mc->ex.dq = malloc(s->nq * sizeof(double));
    for (int m = 0; m < kp->n; m++) {
        mc->ex.dk[m] = malloc(s->nk * sizeof(double));
        mc->ex.dv[m] = malloc(s->nv * sizeof(double));
    }
    ck_assert_msg(nsx_ref_forward(p, &mc->in, &mc->ex, NULL, NULL, &err) == 0, "ref forward: %s", err.msg);
    ck_assert_msg(nsx_ref_backward(p, &mc->in, &mc->ex, NULL, NULL, &err) == 0, "ref backward: %s", err.msg);
}

static void mcase_free(mcase *mc)
{
    for (size_t t = 0; t < sizeof mc->buf / sizeof mc->buf[0]; t++)
        free(mc->buf[t]);
    free(mc->ex.o), free(mc->ex.lse), free(mc->ex.dq);
    for (int m = 0; m < mc->p.n; m++)
        free(mc->ex.dk[m]), free(mc->ex.dv[m]);
}

/* nsx_check passes the kernel's float32 outputs under the f32 model. */
static void judge_floats(const char *what, const inst *s, const mcase *mc, const float *o, const float *lse,
                         const fgrads *g)
{
    nsx_candidate cand = {.o = f64_of(o, s->no), .lse = f64_of(lse, s->nl), .dq = f64_of(g->dq, s->nq)};
    for (int m = 0; m < s->p.n; m++) {
        cand.dk[m] = f64_of(g->dk[m], s->nk);
        cand.dv[m] = f64_of(g->dv[m], s->nv);
    }
    nsx_model model;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_model_from_kernel(nsx_simd_info(), &model, &err), 0);
    nsx_check_report rep;
    ck_assert_msg(nsx_check(&mc->p, NULL, &mc->in, &mc->ex, &cand, &model, &rep, &err) == 0, "%s: %s", what,
                  err.msg);
    ck_assert_msg(rep.pass, "%s: nsx_check fails it: %s", what, rep.nnotes ? rep.notes[0] : "(no note)");
    ck_assert_int_eq(rep.grad_status, NSX_GRAD_JUDGED);
    if (getenv("NSX_TEST_VERBOSE"))
        printf("simd_bwd: %s: check passes; worst ratio dq %.3g, dk %.3g, dv %.3g\n", what, rep.worst_dq.ratio,
               rep.worst_dk.ratio, rep.worst_dv.ratio);
    free((void *)cand.o), free((void *)cand.lse), free((void *)cand.dq);
    for (int m = 0; m < s->p.n; m++)
        free((void *)cand.dk[m]), free((void *)cand.dv[m]);
}

/* Each element within the tolerance; the worst ratio err / tolerance. */
static double compare(const char *what, const char *tensor, const float *got, const double *want,
                      const double *abs_, size_t count, double tolf)
{
    double worst = 0;
    for (size_t t = 0; t < count; t++) {
        double tol = tolf * abs_[t] + 0x1p-120, err = fabs((double)got[t] - want[t]);
        ck_assert_msg(err <= tol, "%s: %s[%zu] = %.9g, reference %.17g, error %.3g > tolerance %.3g", what,
                      tensor, t, (double)got[t], want[t], err, tol);
        worst = err / tol > worst ? err / tol : worst;
    }
    return worst;
}

/* A key row no allowed tuple uses: every element exactly +0. */
static void assert_plus_zero(const char *what, const char *tensor, const float *x, size_t count)
{
    for (size_t t = 0; t < count; t++)
        ck_assert_msg(x[t] == 0.0f && !signbit(x[t]), "%s: %s[%zu] = %g, not +0 (a masked key)", what, tensor,
                      t, (double)x[t]);
}

static void check_against_ref(const char *what, const inst *s, const refout *ro, const fgrads *g)
{
    const nsx_kernel_problem *p = &s->p;
    const int G = p->H / p->Hkv;
    double depth = (double)p->L * G + (double)ro->nmax + p->d + p->dv + 64;
    double tolf = 4 * (ro->beta + gam(depth));
    double w = compare(what, "dq", g->dq, ro->g.dq, ro->ga.dq, s->nq, tolf);
    for (int m = 0; m < p->n; m++) {
        char nk[16], nv[16];
        snprintf(nk, sizeof nk, "dk%d", m + 1);
        snprintf(nv, sizeof nv, "dv%d", m + 1);
        double a = compare(what, nk, g->dk[m], ro->g.dk[m], ro->ga.dk[m], s->nk, tolf);
        double c = compare(what, nv, g->dv[m], ro->g.dv[m], ro->ga.dv[m], s->nv, tolf);
        w = a > w ? a : w;
        w = c > w ? c : w;
        for (size_t r = 0; r < s->nk / p->d; r++)
            if (!ro->used[m][r]) {
                assert_plus_zero(what, nk, g->dk[m] + r * p->d, (size_t)p->d);
                assert_plus_zero(what, nv, g->dv[m] + r * p->dv, (size_t)p->dv);
            }
    }
    /* empty rows: dq exactly +0 (the reference adds nothing there) */
    for (size_t t = 0; t < s->nq; t++)
        if (ro->ga.dq[t] == 0 && ro->g.dq[t] == 0 && g->dq[t] != 0)
            ck_abort_msg("%s: dq[%zu] = %g where no tuple contributes", what, t, (double)g->dq[t]);
    if (getenv("NSX_TEST_VERBOSE"))
        printf("simd_bwd: %s: worst error / tolerance %.3g\n", what, w);
}

/* ---- tests -------------------------------------------------------------- */

/* Every case, every ISA this CPU runs: the oracle's check passes it
   against MPFR's expected values; within the tolerance of the loop
   reference, masked keys +0; and the same bits for 1 and 2 threads. */
START_TEST(random_problems_match_the_loop_reference)
{
    const tcase *c = &cases[_i];
    inst s;
    inst_make(c, &s, SEED0 + (uint64_t)_i, 1);
    refout ro;
    ref_compute(&s, &ro);
    /* MPFR's gradients (the oracle's expected values) where they are quick:
       up to MPFR_WORK tuple-columns */
    const int judged = (double)ro.total * (s.p.d + s.p.dv) * s.p.n <= MPFR_WORK;
    mcase mc;
    if (judged)
        mcase_make(&s, &mc);
    float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
    for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
        if (!nsx_simd_isa_supported(isa)) {
            if (_i == 0)
                printf("simd_bwd: %s not run (this CPU lacks it)\n", nsx_simd_isa_name(isa));
            continue;
        }
        char what[96];
        snprintf(what, sizeof what, "%s (%s, seed %u)", c->name, nsx_simd_isa_name(isa), SEED0 + _i);
        fgrads g1, g2;
        fgrads_alloc(&g1, &s);
        fgrads_alloc(&g2, &s);
        ck_assert_int_eq(run_simd_keep(&s, isa, 1, &g1, o, lse), NSX_SIMD_OK);
        if (judged)
            judge_floats(what, &s, &mc, o, lse, &g1);
        check_against_ref(what, &s, &ro, &g1);
        ck_assert_int_eq(run_simd(&s, isa, 2, &g2), NSX_SIMD_OK);
        ck_assert_msg(memcmp(g1.dq, g2.dq, s.nq * sizeof(float)) == 0, "%s: dq differs for 2 threads", what);
        for (int m = 0; m < s.p.n; m++) {
            ck_assert_msg(memcmp(g1.dk[m], g2.dk[m], s.nk * sizeof(float)) == 0, "%s: dk%d differs for 2 threads",
                          what, m + 1);
            ck_assert_msg(memcmp(g1.dv[m], g2.dv[m], s.nv * sizeof(float)) == 0, "%s: dv%d differs for 2 threads",
                          what, m + 1);
        }
        fgrads_free(&g1, s.p.n);
        fgrads_free(&g2, s.p.n);
    }
    free(o), free(lse);
    if (judged)
        mcase_free(&mc);
    ref_free(&ro, s.p.n);
    inst_free(&s);
}
END_TEST

/* With causal on, dk_m and dv_m of the keys j >= t depend only on the
   queries i >= j (docs/SPEC.md 1.7): new q and dO rows before t (NaN among
   them) leave those rows bit-identical, on every ISA, with GQA and windows. */
START_TEST(key_gradients_ignore_earlier_queries)
{
    static const tcase leak[] = {
        {"leak_n2_gqa_win", 2, 2, 41, 4, 2, 12, 9, P_, 1, 0, {9, 0}, SEL_NONE, 0, 0, 0.25, 0.5, 0, 0, 0},
        {"leak_n3_sum", 3, 1, 17, 2, 1, 8, 8, S_, 1, 0, {0, 6, 0}, SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    };
    for (size_t c = 0; c < sizeof leak / sizeof leak[0]; c++)
        for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
            if (!nsx_simd_isa_supported(isa))
                continue;
            inst s;
            inst_make(&leak[c], &s, SEED0 + 99, 1);
            const nsx_kernel_problem *p = &s.p;
            const int t = p->L / 2;
            fgrads a, b;
            fgrads_alloc(&a, &s);
            fgrads_alloc(&b, &s);
            ck_assert_int_eq(run_simd(&s, isa, 2, &a), NSX_SIMD_OK);
            for (int bb = 0; bb < p->B; bb++)
                for (int i = 0; i < t; i++) {
                    float *q = s.q + ((size_t)bb * p->L + i) * p->H * p->d;
                    float *dO = s.dout + ((size_t)bb * p->L + i) * p->H * p->dv;
                    for (int e = 0; e < p->H * p->d; e++)
                        q[e] = -2 * q[e] + 0.5f;
                    for (int e = 0; e < p->H * p->dv; e++)
                        dO[e] = i == 0 && e == 0 ? NAN : 3 * dO[e];
                }
            ck_assert_int_eq(run_simd(&s, isa, 2, &b), NSX_SIMD_OK);
            for (int m = 0; m < p->n; m++)
                for (int bb = 0; bb < p->B; bb++) {
                    size_t k0 = ((size_t)bb * p->L + t) * p->Hkv * p->d;
                    size_t v0 = ((size_t)bb * p->L + t) * p->Hkv * p->dv;
                    size_t kn = (size_t)(p->L - t) * p->Hkv * p->d, vn = (size_t)(p->L - t) * p->Hkv * p->dv;
                    ck_assert_msg(memcmp(a.dk[m] + k0, b.dk[m] + k0, kn * sizeof(float)) == 0,
                                  "%s (%s): dk%d of keys >= %d moved", leak[c].name, nsx_simd_isa_name(isa), m + 1, t);
                    ck_assert_msg(memcmp(a.dv[m] + v0, b.dv[m] + v0, vn * sizeof(float)) == 0,
                                  "%s (%s): dv%d of keys >= %d moved", leak[c].name, nsx_simd_isa_name(isa), m + 1, t);
                }
            fgrads_free(&a, p->n);
            fgrads_free(&b, p->n);
            inst_free(&s);
        }
}
END_TEST

/* ---- the committed vectors ---------------------------------------------- */

static int names_n;
static char names[64][256];

/* The bwd_* cases of vectors/default and vectors/tiles, sorted. */
static void list_vectors(void)
{
    static const char *const dirs[] = {"vectors/default", "vectors/tiles"};
    names_n = 0;
    for (size_t t = 0; t < sizeof dirs / sizeof dirs[0]; t++) {
        DIR *dir = opendir(dirs[t]);
        ck_assert_ptr_nonnull(dir);
        struct dirent *e;
        while ((e = readdir(dir)) && names_n < 64) {
            size_t len = strlen(e->d_name);
            if (strncmp(e->d_name, "bwd_", 4) == 0 && len > 12 && strcmp(e->d_name + len - 12, ".safetensors") == 0)
                snprintf(names[names_n++], sizeof names[0], "%s/%.200s", dirs[t], e->d_name);
        }
        closedir(dir);
    }
    qsort(names, (size_t)names_n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
}

static float *f32_of(const double *x, size_t count)
{
    float *f = malloc(count * sizeof *f);
    for (size_t t = 0; t < count; t++)
        f[t] = (float)x[t];
    return f;
}

/* The float32 instance of a case (its inputs are exact in float32). */
static void inst_from_case(const nsx_case *c, inst *s)
{
    const nsx_problem *p = &c->p;
    memset(s, 0, sizeof *s);
    const int32_t *sel = c->in.sel ? c->in.sel : c->expected.sel;
    nsx_problem_to_kernel(p, sel, &s->p);
    s->nq = nsx_q_size(p), s->nk = nsx_k_size(p), s->nv = nsx_v_size(p);
    s->no = nsx_o_size(p), s->nl = nsx_lse_size(p);
    s->q = f32_of(c->in.q, s->nq);
    s->dout = f32_of(c->in.dout, s->no);
    for (int m = 0; m < p->n; m++) {
        s->k[m] = f32_of(c->in.k[m], s->nk);
        s->v[m] = f32_of(c->in.v[m], s->nv);
    }
}

/* The kernel's forward and backward on the case (through the runner, on
   isa) judged by the oracle (nsx_check: the forward's o, lse and the
   gradients against their derived bounds, docs/ORACLE.md 8, under the
   kernel's f32 model, unreached elements exactly 0); the report. */
static void judge_case(const char *what, const nsx_case *c, int isa, nsx_check_report *rep)
{
    const nsx_problem *p = &c->p;
    nsx_kernel k;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_kernel_open(&k, NULL, isa, 2, &err), 0);
    const int32_t *sel = c->in.sel ? c->in.sel : c->expected.sel;
    nsx_outputs g = {0};
    double *o = malloc(nsx_o_size(p) * sizeof *o), *lse = malloc(nsx_lse_size(p) * sizeof *lse);
    g.dq = malloc(nsx_q_size(p) * sizeof(double));
    for (int m = 0; m < p->n; m++) {
        g.dk[m] = malloc(nsx_k_size(p) * sizeof(double));
        g.dv[m] = malloc(nsx_v_size(p) * sizeof(double));
    }
    ck_assert_msg(nsx_kernel_run_bwd(&k, p, &c->in, sel, c->in.dout, &g, o, lse, &err) == 0, "%s: %s", what,
                  err.msg);
    nsx_candidate cand = {.o = o, .lse = lse, .sel = c->in.sel ? NULL : c->expected.sel, .dq = g.dq};
    for (int m = 0; m < p->n; m++)
        cand.dk[m] = g.dk[m], cand.dv[m] = g.dv[m];
    nsx_model model;
    ck_assert_int_eq(nsx_model_from_kernel(k.info, &model, &err), 0);
    ck_assert_msg(nsx_check(p, &c->info, &c->in, &c->expected, &cand, &model, rep, &err) == 0, "%s: %s", what,
                  err.msg);
    ck_assert_msg(rep->pass, "%s: nsx_check fails it: %s", what, rep->nnotes ? rep->notes[0] : "(no note)");
    ck_assert_int_eq(rep->grad_status, NSX_GRAD_JUDGED);
    ck_assert_int_eq(rep->grad_absent, 0);
    ck_assert_int_eq(rep->grad_failed + rep->grad_zero_failed, 0);
    free(o), free(lse), free(g.dq);
    for (int m = 0; m < p->n; m++)
        free(g.dk[m]), free(g.dv[m]);
    nsx_kernel_close(&k);
}

/* Every committed bwd_* vector, every ISA this CPU runs: the oracle's
   check passes the SIMD gradients (judge_case); and, as a second opinion,
   they are within the test's tolerance of the file's MPFR values (the loop
   reference gives the scale gabs and must itself agree with the file to
   1e-12 of it), masked keys +0. */
START_TEST(committed_vectors_match_the_mpfr_gradients)
{
    list_vectors();
    ck_assert_int_ge(names_n, 10);
    for (int v = 0; v < names_n; v++) {
        nsx_case c;
        nsx_err err = {0};
        ck_assert_msg(nsx_case_read(names[v], &c, &err) == 0, "%s", err.msg);
        ck_assert_msg(c.expected.dq != NULL, "%s: no expected dq", names[v]);
        inst s;
        inst_from_case(&c, &s);
        refout ro;
        ref_compute(&s, &ro);
        /* the loop reference against MPFR's correctly rounded values */
        const double *want[1 + 2 * NSX_MAX_ORDER] = {c.expected.dq};
        const double *mine[1 + 2 * NSX_MAX_ORDER] = {ro.g.dq}, *scale[1 + 2 * NSX_MAX_ORDER] = {ro.ga.dq};
        size_t len[1 + 2 * NSX_MAX_ORDER] = {s.nq};
        for (int m = 0; m < s.p.n; m++) {
            want[1 + 2 * m] = c.expected.dk[m], want[2 + 2 * m] = c.expected.dv[m];
            mine[1 + 2 * m] = ro.g.dk[m], mine[2 + 2 * m] = ro.g.dv[m];
            scale[1 + 2 * m] = ro.ga.dk[m], scale[2 + 2 * m] = ro.ga.dv[m];
            len[1 + 2 * m] = s.nk, len[2 + 2 * m] = s.nv;
        }
        for (int t = 0; t < 1 + 2 * s.p.n; t++)
            for (size_t e = 0; e < len[t]; e++)
                ck_assert_msg(fabs(mine[t][e] - want[t][e]) <= 1e-12 * scale[t][e] + 0x1p-200,
                              "%s: the loop reference disagrees with the file: tensor %d [%zu]: %.17g vs %.17g",
                              names[v], t, e, mine[t][e], want[t][e]);
        for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
            if (!nsx_simd_isa_supported(isa))
                continue;
            char what[sizeof names[0] + 32];
            snprintf(what, sizeof what, "%.255s (%s)", names[v], nsx_simd_isa_name(isa));
            nsx_check_report rep;
            judge_case(what, &c, isa, &rep);
            if (getenv("NSX_TEST_VERBOSE"))
                printf("simd_bwd: %s: check passes; worst ratio dq %.3g, dk %.3g, dv %.3g; %zu unreached "
                       "elements exactly 0\n",
                       what, rep.worst_dq.ratio, rep.worst_dk.ratio, rep.worst_dv.ratio, rep.grad_zero);
            /* the test's own tolerance */
            fgrads g;
            fgrads_alloc(&g, &s);
            ck_assert_int_eq(run_simd(&s, isa, 2, &g), NSX_SIMD_OK);
            refout file = ro; /* the file's values, the loop reference's scale and mask */
            file.g.dq = (double *)c.expected.dq;
            for (int m = 0; m < s.p.n; m++)
                file.g.dk[m] = c.expected.dk[m], file.g.dv[m] = c.expected.dv[m];
            check_against_ref(what, &s, &file, &g);
            fgrads_free(&g, s.p.n);
        }
        ref_free(&ro, s.p.n);
        inst_free(&s);
        nsx_case_free(&c);
    }
}
END_TEST

/* ---- the ABI, the runner and the program ---------------------------------- */

static void assert_same_bits(const char *what, const fgrads *a, const fgrads *b, const inst *s)
{
    ck_assert_msg(memcmp(a->dq, b->dq, s->nq * sizeof(float)) == 0, "%s: dq differs", what);
    for (int m = 0; m < s->p.n; m++) {
        ck_assert_msg(memcmp(a->dk[m], b->dk[m], s->nk * sizeof(float)) == 0, "%s: dk%d differs", what, m + 1);
        ck_assert_msg(memcmp(a->dv[m], b->dv[m], s->nv * sizeof(float)) == 0, "%s: dv%d differs", what, m + 1);
    }
}

/* build/libnsimplex_simd.so through dlopen: ABI 3's info declares the
   backward, nsx_kernel_backward gives the in-process bits, and refuses
   (1, nothing written) what it cannot do. */
START_TEST(shared_library_exports_the_backward)
{
    const char *path;
    void *lib = simd_so_open(&path);
    nsx_kernel_get_info_fn info_fn;
    nsx_kernel_forward_fn fwd;
    nsx_kernel_backward_fn bwd;
    *(void **)&info_fn = dlsym(lib, "nsx_kernel_get_info");
    *(void **)&fwd = dlsym(lib, "nsx_kernel_forward");
    *(void **)&bwd = dlsym(lib, "nsx_kernel_backward");
    ck_assert(info_fn && fwd && bwd);
    ck_assert_ptr_null(dlsym(lib, "nsx_simd_backward")); /* only the ABI is exported */
    const nsx_kernel_info *info = info_fn();
    ck_assert_int_eq(info->abi_version, 3);
    ck_assert_int_eq(info->backward_max_order, NSX_MAX_ORDER);
    ck_assert_uint_eq(info->backward_features, 255u);
    ck_assert_int_eq(info->backward_accum_format, NSX_FORMAT_F32);
    ck_assert_int_eq(info->backward_output_format, NSX_FORMAT_F32);
    nsx_err err = {0};
    ck_assert_int_eq(nsx_kernel_info_check(info, path, &err), 0);
    int isa = nsx_simd_isa(NULL, 0);
    for (int t = 0; t < NCASES; t += 4) {
        inst s;
        inst_make(&cases[t], &s, SEED0 + (uint64_t)t, 1);
        fgrads mine, lib_g;
        fgrads_alloc(&mine, &s);
        fgrads_alloc(&lib_g, &s);
        ck_assert_int_eq(run_simd(&s, isa, 1, &mine), NSX_SIMD_OK);
        float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
        nsx_kernel_io io = {.q = s.q, .o = o, .lse = lse};
        nsx_kernel_bwd_io bio = {.q = s.q, .o = o, .lse = lse, .dout = s.dout, .dq = lib_g.dq};
        for (int m = 0; m < s.p.n; m++) {
            io.k[m] = bio.k[m] = s.k[m];
            io.v[m] = bio.v[m] = s.v[m];
            bio.dk[m] = lib_g.dk[m], bio.dv[m] = lib_g.dv[m];
        }
        ck_assert_int_eq(fwd(&s.p, &io), NSX_KERNEL_OK);
        ck_assert_int_eq(bwd(&s.p, &bio), NSX_KERNEL_OK);
        assert_same_bits(cases[t].name, &mine, &lib_g, &s);
        /* refused, nothing written: no dout; n = 9 */
        lib_g.dq[0] = 7.0f;
        bio.dout = NULL;
        ck_assert_int_eq(bwd(&s.p, &bio), NSX_KERNEL_UNSUPPORTED);
        bio.dout = s.dout;
        nsx_kernel_problem bad = s.p;
        bad.n = 9;
        ck_assert_int_eq(bwd(&bad, &bio), NSX_KERNEL_UNSUPPORTED);
        ck_assert(lib_g.dq[0] == 7.0f);
        free(o), free(lse);
        fgrads_free(&mine, s.p.n);
        fgrads_free(&lib_g, s.p.n);
        inst_free(&s);
    }
    dlclose(lib);
}
END_TEST

/* nsx_kernel_info_check on ABI 3's fields; an ABI 2 info (exactly its size:
   ASan sees a read past it) has no backward. */
START_TEST(info_check_reads_the_backward_fields_of_abi_3_only)
{
    nsx_kernel_info good = *nsx_simd_info();
    nsx_err err = {0};
    const struct {
        const char *field;
        int order;
        unsigned features;
        int lse, fmt;
    } bad[] = {
        {"backward_max_order 9 is not in 0..max_order", 9, 0, 1, NSX_FORMAT_F32},
        {"backward_max_order -1", -1, 0, 1, NSX_FORMAT_F32},
        {"backward_features has bits 0x1000", 2, 0x1000, 1, NSX_FORMAT_F32},
        {"needs the forward's lse", 2, 0, 0, NSX_FORMAT_F32},
        {"backward_output_format 9 is not a format", 2, 0, 1, 9},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        nsx_kernel_info x = good;
        x.backward_max_order = bad[t].order;
        x.backward_features = bad[t].features;
        x.backward_output_format = bad[t].fmt;
        if (!bad[t].lse)
            x.features &= ~NSX_FEAT_LSE;
        err = (nsx_err){0};
        ck_assert_int_eq(nsx_kernel_info_check(&x, "lib.so", &err), NSX_E_INPUT);
        ck_assert_msg(strstr(err.msg, bad[t].field), "%s: %s", bad[t].field, err.msg);
        /* the same fields in an ABI 2 info are never read */
        x.abi_version = 2;
        x.features |= NSX_FEAT_LSE;
        ck_assert_int_eq(nsx_kernel_info_check(&x, "lib.so", &err), 0);
        ck_assert_int_eq(nsx_kernel_backward_order(&x), 0);
    }
    struct abi2_info {
        int abi_version;
        const char *name;
        int input_format, accum_format, weights_format, output_format;
        int max_order;
        unsigned features;
        unsigned indexer;
        int indexer_input_format, indexer_accum_format, indexer_output_format;
    } *old = malloc(sizeof *old);
    ck_assert_ptr_nonnull(old);
    *old = (struct abi2_info){2, "abi2", NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, 2, 0, 0,
                              NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32};
    const nsx_kernel_info *volatile as_info = (const void *)old; /* read only up to its ABI */
    ck_assert_int_eq(nsx_kernel_info_check(as_info, "abi2.so", &err), 0);
    ck_assert_int_eq(nsx_kernel_backward_order(as_info), 0);
    free(old);
}
END_TEST

/* The float32 gradients of a candidate file into g. */
static void read_grads(const char *path, const inst *s, fgrads *g)
{
    nsx_st st;
    nsx_err err = {0};
    ck_assert_msg(nsx_st_read(path, &st, &err) == 0, "%s", err.msg);
    const nsx_tensor *t = nsx_st_get(&st, "dq");
    ck_assert_ptr_nonnull(t);
    for (size_t e = 0; e < s->nq; e++)
        g->dq[e] = (float)nsx_tensor_f64_at(t, e);
    for (int m = 0; m < s->p.n; m++) {
        char name[16];
        snprintf(name, sizeof name, "dk%d", m + 1);
        ck_assert_ptr_nonnull(t = nsx_st_get(&st, name));
        for (size_t e = 0; e < s->nk; e++)
            g->dk[m][e] = (float)nsx_tensor_f64_at(t, e);
        snprintf(name, sizeof name, "dv%d", m + 1);
        ck_assert_ptr_nonnull(t = nsx_st_get(&st, name));
        for (size_t e = 0; e < s->nv; e++)
            g->dv[m][e] = (float)nsx_tensor_f64_at(t, e);
    }
    nsx_st_free(&st);
}

/* eval --bwd --impl simd under NSX_ISA=ISA writes the gradients of
   nsx_simd_backward_isa on that ISA, bit for bit, and o, lse beside them;
   the runner's nsx_kernel_run_bwd gives the same. */
START_TEST(eval_bwd_simd_writes_the_kernels_gradients)
{
    const char *vec = "vectors/default/bwd_n2_paper.safetensors";
    nsx_case c;
    nsx_err err = {0};
    ck_assert_msg(nsx_case_read(vec, &c, &err) == 0, "%s", err.msg);
    inst s;
    inst_from_case(&c, &s);
    const char *tmp = test_tmpdir();
    for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
        if (!nsx_simd_isa_supported(isa))
            continue;
        char out[4096];
        snprintf(out, sizeof out, "%s/simd_bwd_%s.safetensors", tmp, nsx_simd_isa_name(isa));
        fgrads want, got;
        fgrads_alloc(&want, &s);
        fgrads_alloc(&got, &s);
        ck_assert_int_eq(run_simd(&s, isa, 1, &want), NSX_SIMD_OK);
        setenv("NSX_ISA", nsx_simd_isa_name(isa), 1);
        cli_result r;
        const char *args[] = {"eval", vec, "--impl", "simd", "--bwd", "--out", out, NULL};
        ck_assert_int_eq(cli_run(&r, args), 0);
        unsetenv("NSX_ISA");
        ck_assert_msg(r.status == 0, "eval --bwd --impl simd: exit %d: %s", r.status, r.err);
        cli_result_free(&r);
        read_grads(out, &s, &got);
        assert_same_bits(nsx_simd_isa_name(isa), &want, &got, &s);
        /* the runner, in process */
        nsx_kernel k;
        ck_assert_int_eq(nsx_kernel_open(&k, NULL, isa, 2, &err), 0);
        nsx_outputs g = {0};
        g.dq = malloc(s.nq * sizeof(double));
        for (int m = 0; m < s.p.n; m++) {
            g.dk[m] = malloc(s.nk * sizeof(double));
            g.dv[m] = malloc(s.nv * sizeof(double));
        }
        ck_assert_int_eq(nsx_kernel_run_bwd(&k, &c.p, &c.in, c.in.sel, c.in.dout, &g, NULL, NULL, &err), 0);
        for (size_t e = 0; e < s.nq; e++)
            ck_assert(g.dq[e] == want.dq[e]);
        for (int m = 0; m < s.p.n; m++) {
            for (size_t e = 0; e < s.nk; e++)
                ck_assert(g.dk[m][e] == want.dk[m][e]);
            for (size_t e = 0; e < s.nv; e++)
                ck_assert(g.dv[m][e] == want.dv[m][e]);
            free(g.dk[m]), free(g.dv[m]);
        }
        free(g.dq);
        nsx_kernel_close(&k);
        fgrads_free(&want, s.p.n);
        fgrads_free(&got, s.p.n);
    }
    inst_free(&s);
    nsx_case_free(&c);
}
END_TEST

static Suite *simd_bwd_suite(void)
{
    Suite *s = suite_create("simd_bwd");
    TCase *tc = tcase_create("random");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, random_problems_match_the_loop_reference, 0, NCASES);
    tcase_add_test(tc, key_gradients_ignore_earlier_queries);
    suite_add_tcase(s, tc);
    TCase *tv = tcase_create("vectors");
    tcase_set_timeout(tv, 300);
    tcase_add_test(tv, committed_vectors_match_the_mpfr_gradients);
    suite_add_tcase(s, tv);
    TCase *ta = tcase_create("abi");
    tcase_set_timeout(ta, 120);
    tcase_add_test(ta, shared_library_exports_the_backward);
    tcase_add_test(ta, info_check_reads_the_backward_fields_of_abi_3_only);
    tcase_add_test(ta, eval_bwd_simd_writes_the_kernels_gradients);
    suite_add_tcase(s, ta);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(simd_bwd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
