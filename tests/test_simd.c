/*
 * The SIMD kernel (simd/) against an independent double-precision loop
 * reference written here, every ISA path forced in turn, on one table of
 * problems covering every feature; plus the plain-loop baseline, the exact
 * tuple count, the exp of each ISA, the shared library through dlopen, and
 * the NSX_ISA switch of the program.
 *
 * The reference shares nothing with simd/: it visits every tuple of
 * [0,L)^n, applies the mask predicate of (E2) as the spec states it, and
 * computes (E1)-(E6) in binary64 from the float32 inputs.  Its own error
 * (~1e-15 relative) is negligible beside the float32 bound below.
 *
 * The float32 error bound, per output element (u = 2^-24, g(k) = k u/(1-k u)):
 *  - score (E1): u = s q o (k_1+kb_1) o ... is 1 + n products after one
 *    rounding of s q, the dot product with k_n + kb_n adds g(d); with the
 *    bias additions, |T~ - T| <= e_J = g(d + 2n + 4) Tabs_J, where
 *    Tabs_J = |s| sum_l |q_l| prod_m (|k_m| + |kb_m|).
 *  - weights: the kernel computes a_J = exp~(fl(T~_J - m~)), with m~ the
 *    running max.  A common factor exp(-m~) cancels in O.  The subtraction
 *    costs a relative u|x| in the weight (x = T~_J - m~, |x| <= |T_J - M| +
 *    2 e_max), the exp a relative 4u + 2u|x| (AVX-512 rounds x log2(e):
 *    2u|x|; checked below), so the weight is exp(T_J - M + eta_J)(1 + th)
 *    with |eta_J| <= e_J + 3u(|T_J - M| + 2 e_max), |th| <= 4u.  Each weight
 *    is off by a factor within 1 +- beta, beta = max_J exp(eta_J)(1+4u) - 1,
 *    so the normalized weights are off by at most 2 beta / (1 - beta) A_J.
 *  - values and sums: W has at most 2n + 2 roundings (g(2n+2) |W|abs), and
 *    any summation order of N terms, with the rare rescales by a common
 *    factor, stays within g(2N + 2n + 8) of the sum of absolute terms, in
 *    the numerator and the denominator alike.
 *  So with omega_c = sum_J A_J |W|abs_{J,c} (|W|abs: the reducer of
 *  |v_m| + |vb_m|),
 *     |O~ - O| <= |out_scale| (2.1 beta + 3 g(2N + 2n + 8)) omega_c + tiny,
 *  tiny = |out_scale| 2^-100 max|W|abs (AVX2 clamps exp below -87.3 to
 *  ~1e-38 instead of less), and
 *     |LSE~ - LSE| <= eta_max + 4u + g(2N + 2n + 8) + 2u (|LSE| + 1).
 * A mask that is off by one tuple moves O by about A_J |W| ~ omega / N,
 * far above this bound for the table's sizes.
 */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "nsimplex/kernel.h"
#include "nsimplex/rng.h"
#include "runner/bench.h"
#include "simd/kern.h"
#include "simd/n1.h"
#include "simd/simd.h"
#include "tests/simd_case.h"

/* ---- the table ------------------------------------------------------ */

static const tcase cases[] = {
    /* name                n  B  L   H Hkv d   dv  red cau dis windows          sel       k  dims kb      vb     ss    os    nolse */
    {"n1_basic",           1, 2, 19, 2, 1, 13, 7,  P_, 1, 0, {0},             SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n1_window_nc_sum",   1, 1, 23, 2, 2, 17, 9,  S_, 0, 0, {5},             SEL_NONE, 0, 0, 0.5, -0.25, 0, 0, 0},
    {"n1_L1",              1, 1, 1,  1, 1, 5,  3,  P_, 1, 0, {0},             SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_paper_small",     2, 1, 40, 4, 1, 16, 16, P_, 1, 0, {12, 4},         SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_w1_lt_w2",        2, 1, 37, 2, 1, 11, 13, P_, 1, 0, {3, 9},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_w_1",             2, 1, 9,  1, 1, 8,  8,  P_, 1, 0, {1, 1},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_w_ge_L",          2, 2, 17, 2, 2, 7,  5,  P_, 1, 0, {50, 17},        SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_noncausal_win",   2, 1, 29, 2, 1, 9,  19, P_, 0, 0, {4, 6},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_noncausal",       2, 1, 9,  1, 1, 8,  8,  P_, 0, 0, {0, 0},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_sum_bias",        2, 1, 33, 2, 1, 15, 17, S_, 1, 0, {20, 7},         SEL_NONE, 0, 0, 0.125, 1, 0, 0, 0},
    {"n2_mean_bias_scale", 2, 1, 26, 4, 2, 12, 10, M_, 1, 0, {0, 9},          SEL_NONE, 0, 0, -0.5, 0.75, 0.7, -2.5, 0},
    {"n2_wide",            2, 1, 70, 2, 1, 33, 40, P_, 1, 0, {0, 0},          SEL_NONE, 0, 0, 0, 1, 0, 0, 0},
    {"n2_wide_sum",        2, 1, 70, 1, 1, 33, 40, S_, 0, 0, {0, 0},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_large_scores",    2, 1, 24, 2, 1, 8,  6,  P_, 1, 0, {0, 0},          SEL_NONE, 0, 0, 0, 0, 40, 0, 0},
    {"n2_distinct",        2, 1, 21, 2, 1, 10, 11, P_, 1, 1, {6, 0},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_distinct_w1",     2, 1, 6,  1, 1, 4,  4,  P_, 1, 1, {1, 1},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_L1",              2, 1, 1,  2, 1, 5,  3,  S_, 1, 0, {0, 0},          SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n2_sel_dim1",        2, 2, 31, 2, 1, 9,  7,  P_, 1, 0, {0, 8},          SEL_MIXED, 7, 1, 0, 0, 0, 0, 0},
    {"n2_sel_both_nc",     2, 1, 27, 2, 2, 12, 5,  S_, 0, 0, {0, 10},         SEL_MIXED, 9, 3, 0, 0.5, 0, 0, 0},
    {"n2_sel_empty_rows",  2, 1, 25, 1, 1, 6,  6,  P_, 1, 0, {0, 0},          SEL_EMPTY_ROWS, 5, 2, 0, 0, 0, 0, 0},
    {"n2_sel_distinct",    2, 1, 30, 2, 1, 8,  9,  M_, 1, 1, {0, 0},          SEL_MIXED, 6, 3, 0, 0, 0, 0, 0},
    {"n2_sel_dups",        2, 1, 20, 1, 1, 7,  7,  P_, 1, 0, {0, 0},          SEL_DUPS, 8, 1, 0, 0, 0, 0, 0},
    {"n2_no_lse",          2, 1, 18, 2, 1, 9,  9,  P_, 1, 0, {5, 3},          SEL_NONE, 0, 0, 0, 0, 0, 0, 1},
    {"n2_chunks_sum",      2, 1, 50, 1, 1, 2000, 3, S_, 1, 0, {0, 0},         SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n1_chunks",          1, 1, 150, 2, 1, 1000, 20, P_, 0, 0, {0},          SEL_NONE, 0, 0, 0.25, 0, 0, 0, 0},
    /* n = 1 (simd/n1.c): several key blocks (128) and query items, edge
       tiles at the diagonal and the window's edge, d and dv tails, GQA. */
    {"n1_gqa_win_bias",    1, 2, 300, 6, 2, 37, 19, P_, 1, 0, {90},          SEL_NONE, 0, 0, 0.5, -0.25, 0, 0, 0},
    {"n1_dense_nc",        1, 1, 170, 4, 1, 64, 64, M_, 0, 0, {0},           SEL_NONE, 0, 0, 0, 0, 0, 1.5, 0},
    {"n1_sel_blocks",      1, 1, 200, 4, 1, 24, 40, P_, 1, 0, {0},           SEL_MIXED, 170, 1, 0, 0.5, 0, 0, 0},
    {"n1_sel_win_empty",   1, 2, 60,  2, 2, 9,  33, S_, 0, 0, {30},          SEL_EMPTY_ROWS, 20, 1, 0.25, 0, 0, 0, 0},
    {"n1_sel_sparse",      1, 1, 300, 4, 1, 16, 24, P_, 1, 0, {0},           SEL_MIXED, 6, 1, 0, 0, 0, 0, 0},
    {"n1_large_scores",    1, 1, 140, 3, 1, 16, 8,  P_, 1, 0, {0},           SEL_NONE, 0, 0, 0, 0, 40, 0, 1},
    {"n3_gqa2",            3, 1, 12, 4, 2, 9,  5,  P_, 1, 0, {0, 5, 3},       SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n3_sel_k_gt_L",      3, 1, 20, 2, 1, 8,  8,  S_, 1, 0, {0, 0, 6},       SEL_MIXED, 25, 7, 0.125, 0.25, 0, 0, 0},
    {"n3_noncausal_dist",  3, 1, 9,  1, 1, 6,  6,  M_, 0, 1, {3, 0, 4},       SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n3_L1",              3, 1, 1,  1, 1, 4,  4,  P_, 1, 0, {0, 0, 0},       SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n4_mean_distinct",   4, 1, 8,  2, 1, 7,  5,  M_, 1, 1, {0, 0, 0, 0},    SEL_NONE, 0, 0, 0.25, 0.5, 0, 0, 0},
    {"n4_windows",         4, 1, 11, 1, 1, 10, 9,  P_, 1, 0, {5, 3, 7, 2},    SEL_NONE, 0, 0, 0, 1, 0, 0, 0},
    {"n5_sum",             5, 1, 6,  1, 1, 5,  7,  S_, 1, 0, {0},             SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
    {"n6_product",         6, 1, 5,  2, 2, 6,  3,  P_, 0, 0, {0},             SEL_NONE, 0, 0, 0, 1, 0, 0, 0},
    {"n7_sel",             7, 1, 4,  1, 1, 3,  4,  M_, 1, 0, {0},             SEL_MIXED, 3, 0x55, 0, 0, 0, 0, 0},
    {"n8_product",         8, 1, 4,  1, 1, 4,  4,  P_, 1, 0, {0},             SEL_NONE, 0, 0, 0, 1, 0, 0, 0},
    {"n8_distinct_empty",  8, 1, 5,  1, 1, 3,  3,  S_, 1, 1, {0},             SEL_NONE, 0, 0, 0, 0, 0, 0, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))
#define SEED0 20240601u

/* ---- inputs --------------------------------------------------------- */

static nsx_kernel_io inst_io(const inst *s, float *o, float *lse)
{
    nsx_kernel_io io = {.q = s->q, .o = o, .lse = lse};
    for (int m = 0; m < s->p.n; m++) {
        io.k[m] = s->k[m];
        io.v[m] = s->v[m];
    }
    return io;
}

/* ---- the reference ---------------------------------------------------- */

typedef struct ref_row {
    double o[2048], bound[2048];
    double lse, lse_bound;
    uint64_t tuples;
} ref_row;

/* T and Tabs (E1) of tuple J. */
static void ref_score(const inst *s, int b, int h, int i, const int *J, double *T, double *Tabs)
{
    const nsx_kernel_problem *p = &s->p;
    const int g = h / (p->H / p->Hkv);
    double t = 0, ta = 0;
    for (int l = 0; l < p->d; l++) {
        double x = s->q[(((size_t)b * p->L + i) * p->H + h) * p->d + l], xa = fabs(x);
        for (int m = 0; m < p->n; m++) {
            double k = s->k[m][(((size_t)b * p->L + J[m]) * p->Hkv + g) * p->d + l];
            x *= k + p->k_bias[m];
            xa *= fabs(k) + fabs(p->k_bias[m]);
        }
        t += x;
        ta += xa;
    }
    *T = p->score_scale * t;
    *Tabs = fabs(p->score_scale) * ta;
}

/* W (E5) and |W|abs of tuple J, channel c. */
static void ref_value(const inst *s, int b, int g, const int *J, int c, double *W, double *Wa)
{
    const nsx_kernel_problem *p = &s->p;
    double w = p->reduce == NSX_REDUCE_PRODUCT ? 1 : 0, wa = w;
    for (int m = 0; m < p->n; m++) {
        double v = s->v[m][(((size_t)b * p->L + J[m]) * p->Hkv + g) * p->dv + c] + p->v_bias[m];
        double va = fabs(s->v[m][(((size_t)b * p->L + J[m]) * p->Hkv + g) * p->dv + c]) +
                    fabs(p->v_bias[m]);
        if (p->reduce == NSX_REDUCE_PRODUCT) {
            w *= v;
            wa *= va;
        } else {
            w += v;
            wa += va;
        }
    }
    if (p->reduce == NSX_REDUCE_MEAN) {
        w /= p->n;
        wa /= p->n;
    }
    *W = w;
    *Wa = wa;
}

static void ref_compute(const inst *s, int b, int h, int i, ref_row *out)
{
    const nsx_kernel_problem *p = &s->p;
    const int n = p->n, dv = p->dv, g = h / (p->H / p->Hkv);
    int J[NSX_MAX_ORDER] = {0};
    double M = -INFINITY, emax = 0, T, Ta;
    uint64_t N = 0;
    do {
        if (!ref_allowed(p, b, i, J))
            continue;
        ref_score(s, b, h, i, J, &T, &Ta);
        if (T > M)
            M = T;
        double e = gam(p->d + 2 * n + 4) * Ta;
        if (e > emax)
            emax = e;
        N++;
    } while (next_tuple(J, n, p->L));
    out->tuples = N;
    if (N == 0) {
        for (int c = 0; c < dv; c++)
            out->o[c] = out->bound[c] = 0;
        out->lse = -INFINITY;
        out->lse_bound = 0;
        return;
    }
    double Z = 0, num[2048] = {0}, om[2048] = {0}, eta_max = 0, wmax = 0;
    memset(J, 0, sizeof J);
    do {
        if (!ref_allowed(p, b, i, J))
            continue;
        ref_score(s, b, h, i, J, &T, &Ta);
        double a = exp(T - M);
        double eta = gam(p->d + 2 * n + 4) * Ta + 3 * U32 * (fabs(T - M) + 2 * emax);
        if (eta > eta_max)
            eta_max = eta;
        Z += a;
        for (int c = 0; c < dv; c++) {
            double W, Wa;
            ref_value(s, b, g, J, c, &W, &Wa);
            num[c] += a * W;
            om[c] += a * Wa;
            if (Wa > wmax)
                wmax = Wa;
        }
    } while (next_tuple(J, n, p->L));
    const double beta = exp(eta_max) * (1 + 4 * U32) - 1;
    const double gN = gam(2.0 * N + 2 * n + 8), os = fabs(p->out_scale);
    for (int c = 0; c < dv; c++) {
        out->o[c] = p->out_scale * num[c] / Z;
        out->bound[c] = os * ((2.1 * beta + 3 * gN) * om[c] / Z + ldexp(wmax, -100));
    }
    out->lse = M + log(Z);
    out->lse_bound = eta_max + 4 * U32 + gN + 2 * U32 * (fabs(out->lse) + 1);
}

/* ---- comparing --------------------------------------------------------- */

/* The reference for every (b, h, i) of an instance, computed once. */
typedef struct ref_all {
    double *o, *bound;      /* [B,L,H,dv] */
    double *lse, *lse_bound; /* [B,H,L] */
    uint64_t *tuples;       /* [B,H,L] */
} ref_all;

static void ref_make(const inst *s, ref_all *r)
{
    const nsx_kernel_problem *p = &s->p;
    static ref_row rr;
    r->o = malloc(s->no * sizeof *r->o);
    r->bound = malloc(s->no * sizeof *r->bound);
    r->lse = malloc(s->nl * sizeof *r->lse);
    r->lse_bound = malloc(s->nl * sizeof *r->lse_bound);
    r->tuples = malloc(s->nl * sizeof *r->tuples);
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->L; i++) {
                ref_compute(s, b, h, i, &rr);
                size_t at = (((size_t)b * p->L + i) * p->H + h) * p->dv;
                memcpy(r->o + at, rr.o, (size_t)p->dv * sizeof *r->o);
                memcpy(r->bound + at, rr.bound, (size_t)p->dv * sizeof *r->bound);
                size_t al = ((size_t)b * p->H + h) * p->L + i;
                r->lse[al] = rr.lse;
                r->lse_bound[al] = rr.lse_bound;
                r->tuples[al] = rr.tuples;
            }
}

static void ref_free(ref_all *r)
{
    free(r->o);
    free(r->bound);
    free(r->lse);
    free(r->lse_bound);
    free(r->tuples);
}

/* Checks o and lse of one implementation against the reference (lse may be
   NULL); returns the worst error / bound ratio seen. */
static double compare(const tcase *c, const inst *s, const ref_all *r, const float *o,
                      const float *lse, const char *who, uint64_t seed)
{
    const nsx_kernel_problem *p = &s->p;
    double worst = 0;
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->L; i++) {
                size_t at = (((size_t)b * p->L + i) * p->H + h) * p->dv;
                size_t al = ((size_t)b * p->H + h) * p->L + i;
                for (int x = 0; x < p->dv; x++) {
                    double err = fabs((double)o[at + x] - r->o[at + x]);
                    ck_assert_msg(isfinite(o[at + x]) && err <= r->bound[at + x],
                                  "%s %s (seed %llu): o[b=%d,i=%d,h=%d,c=%d] = %.9g, ref %.17g, "
                                  "err %.3g > bound %.3g",
                                  c->name, who, (unsigned long long)seed, b, i, h, x, o[at + x],
                                  r->o[at + x], err, r->bound[at + x]);
                    if (r->bound[at + x] > 0 && err / r->bound[at + x] > worst)
                        worst = err / r->bound[at + x];
                }
                if (r->tuples[al] == 0)
                    for (int x = 0; x < p->dv; x++)
                        ck_assert_msg(o[at + x] == 0.0f, "%s %s: empty slice, o = %g", c->name,
                                      who, o[at + x]);
                if (!lse)
                    continue;
                if (r->tuples[al] == 0) {
                    ck_assert_msg(lse[al] == -INFINITY, "%s %s: empty slice b=%d i=%d h=%d: lse %g",
                                  c->name, who, b, i, h, lse[al]);
                } else {
                    double err = fabs((double)lse[al] - r->lse[al]);
                    ck_assert_msg(err <= r->lse_bound[al],
                                  "%s %s (seed %llu): lse[b=%d,h=%d,i=%d] = %.9g, ref %.17g, "
                                  "err %.3g > bound %.3g",
                                  c->name, who, (unsigned long long)seed, b, h, i, lse[al],
                                  r->lse[al], err, r->lse_bound[al]);
                }
            }
    return worst;
}

/* ---- tests ------------------------------------------------------------- */

/* Every ISA this CPU has (on the development machine: all three), forced in
   turn, against the reference; 1 and 2 threads give the same bits. */
START_TEST(test_isa_paths)
{
    const tcase *c = &cases[_i];
    const uint64_t seed = SEED0 + (uint64_t)_i;
    inst s;
    inst_make(c, &s, seed, 0);
    float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
    float *o1 = malloc(s.no * sizeof(float)), *lse1 = malloc(s.nl * sizeof(float));
    ref_all r;
    ref_make(&s, &r);
    int ran = 0;
    for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
        if (!nsx_simd_isa_supported(isa))
            continue;
        nsx_kernel_io io = inst_io(&s, o, c->no_lse ? NULL : lse);
        ck_assert_int_eq(nsx_simd_forward_isa(&s.p, &io, 2, isa), NSX_SIMD_OK);
        double worst = compare(c, &s, &r, o, c->no_lse ? NULL : lse, nsx_simd_isa_name(isa), seed);
        ck_assert(worst <= 1);
        nsx_kernel_io io1 = inst_io(&s, o1, c->no_lse ? NULL : lse1);
        ck_assert_int_eq(nsx_simd_forward_isa(&s.p, &io1, 1, isa), NSX_SIMD_OK);
        ck_assert_msg(memcmp(o, o1, s.no * sizeof(float)) == 0, "%s %s: threads change o",
                      c->name, nsx_simd_isa_name(isa));
        ck_assert(c->no_lse || memcmp(lse, lse1, s.nl * sizeof(float)) == 0);
        ran++;
    }
    ck_assert_int_ge(ran, 1);
    ref_free(&r);
    free(o);
    free(lse);
    free(o1);
    free(lse1);
    inst_free(&s);
}
END_TEST

/* Every n = 1 tune (simd/n1.h) this CPU runs, forced in turn, against the
   reference; 1 and 2 threads give the same bits. */
START_TEST(test_n1_tunes)
{
    const tcase *c = &cases[_i];
    if (c->n != 1)
        return;
    const uint64_t seed = SEED0 + (uint64_t)_i;
    inst s;
    inst_make(c, &s, seed, 0);
    float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
    float *o1 = malloc(s.no * sizeof(float)), *lse1 = malloc(s.nl * sizeof(float));
    ref_all r;
    ref_make(&s, &r);
    int ran = 0;
    for (int t = 0; t < nsx_n1_tune_count(); t++) {
        const nsx_n1_kernels *kt = nsx_n1_tune_get(t);
        if (!nsx_simd_isa_supported(kt->isa))
            continue;
        nsx_kernel_io io = inst_io(&s, o, c->no_lse ? NULL : lse);
        ck_assert_int_eq(nsx_n1_forward(&s.p, &io, 2, kt), NSX_SIMD_OK);
        ck_assert(compare(c, &s, &r, o, c->no_lse ? NULL : lse, kt->name, seed) <= 1);
        nsx_kernel_io io1 = inst_io(&s, o1, c->no_lse ? NULL : lse1);
        ck_assert_int_eq(nsx_n1_forward(&s.p, &io1, 1, kt), NSX_SIMD_OK);
        ck_assert_msg(memcmp(o, o1, s.no * sizeof(float)) == 0, "%s %s: threads change o",
                      c->name, kt->name);
        ck_assert(c->no_lse || memcmp(lse, lse1, s.nl * sizeof(float)) == 0);
        ran++;
    }
    ck_assert_int_ge(ran, 2); /* scalar and at least the detected one */
    ref_free(&r);
    free(o);
    free(lse);
    free(o1);
    free(lse1);
    inst_free(&s);
}
END_TEST

/* n = 1 with a dense selection (every key j <= i with j % 3 != 0, so the
   queries of a work item run as masked dense tiles) whose unselected keys
   hold NaN in K and V: no tune may read them (SPEC 1.10), so the blocks
   with NaN values take the compacted rows; the oracle reads only the
   selected keys. */
START_TEST(test_n1_sel_nan_unselected)
{
    tcase c = {"n1_sel_nan", 1, 1, 150, 4, 1, 20, 24, P_, 1, 0, {0}, SEL_NONE, 0, 0, 0, 0, 0, 0, 0};
    inst s;
    inst_make(&c, &s, SEED0 + 999, 0);
    const int L = c.L, K = L;
    s.sel = malloc((size_t)L * K * sizeof(int32_t));
    for (int i = 0; i < L; i++)
        for (int r = 0; r < K; r++)
            s.sel[(size_t)i * K + r] = r <= i && r % 3 != 0 ? r : -1;
    s.p.topk = K, s.p.sel_dims = 1, s.p.sel = s.sel;
    for (int j = 0; j < L; j += 3) {
        for (int l = 0; l < c.d; l++)
            s.k[0][(size_t)j * c.d + l] = NAN;
        for (int x = 0; x < c.dv; x++)
            s.v[0][(size_t)j * c.dv + x] = NAN;
    }
    ref_all r;
    ref_make(&s, &r);
    float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
    for (int t = 0; t < nsx_n1_tune_count(); t++) {
        const nsx_n1_kernels *kt = nsx_n1_tune_get(t);
        if (!nsx_simd_isa_supported(kt->isa))
            continue;
        nsx_kernel_io io = inst_io(&s, o, lse);
        ck_assert_int_eq(nsx_n1_forward(&s.p, &io, 2, kt), NSX_SIMD_OK);
        ck_assert(compare(&c, &s, &r, o, lse, kt->name, SEED0 + 999) <= 1);
    }
    ref_free(&r);
    free(o);
    free(lse);
    inst_free(&s);
}
END_TEST

/* Rows are independent (a leak pair, SPEC 1.10): batch 1 equals batch 0 up
   to query and key t, and after t its queries select only key 0 (sparse)
   while batch 0's select every earlier key.  A work item that mixes rows
   <= t with rows > t once took its path (dense or gathered) and its block
   end from all its rows, so row t's sums came out in another order; rows
   <= t must match batch 0 bit for bit, for every t and tune. */
START_TEST(test_n1_sel_rows_independent)
{
    tcase c = {"n1_sel_rows", 1, 2, 70, 3, 1, 5, 4, P_, 1, 0, {0}, SEL_NONE, 0, 0, 0, 0, 0, 0, 0};
    inst s;
    inst_make(&c, &s, SEED0 + 1234, 0);
    const int L = c.L, K = L, H = c.H, d = c.d, dv = c.dv;
    s.sel = malloc((size_t)2 * L * K * sizeof(int32_t));
    s.p.topk = K, s.p.sel_dims = 1, s.p.sel = s.sel;
    float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
    int checked = 0;
    for (int t = 1; t < L - 1; t += 3) {
        for (int i = 0; i < L; i++) {
            memcpy(s.q + ((size_t)L + i) * H * d, s.q + (size_t)i * H * d,
                   (size_t)H * d * sizeof(float));
            if (i > t) /* batch 1's later rows: other inputs */
                for (int x = 0; x < H * d; x++)
                    s.q[((size_t)L + i) * H * d + x] *= -2.0f;
            for (int x = 0; x < d; x++)
                s.k[0][((size_t)L + i) * d + x] = s.k[0][(size_t)i * d + x] * (i > t ? 3.0f : 1.0f);
            for (int x = 0; x < dv; x++)
                s.v[0][((size_t)L + i) * dv + x] = s.v[0][(size_t)i * dv + x] * (i > t ? -1.5f : 1.0f);
            for (int r = 0; r < K; r++) {
                s.sel[(size_t)i * K + r] = r <= i ? r : -1;
                s.sel[((size_t)L + i) * K + r] = r <= (i > t ? 0 : i) ? r : -1;
            }
        }
        for (int u = 0; u < nsx_n1_tune_count(); u++) {
            const nsx_n1_kernels *kt = nsx_n1_tune_get(u);
            if (!nsx_simd_isa_supported(kt->isa))
                continue;
            nsx_kernel_io io = inst_io(&s, o, lse);
            ck_assert_int_eq(nsx_n1_forward(&s.p, &io, 2, kt), NSX_SIMD_OK);
            for (int i = 0; i <= t; i++) {
                const size_t row = (size_t)i * H * dv, other = ((size_t)L + i) * H * dv;
                ck_assert_msg(memcmp(o + row, o + other, (size_t)H * dv * sizeof(float)) == 0,
                              "tune %s, t = %d: o of row %d differs between the batches",
                              kt->name, t, i);
                for (int h = 0; h < H; h++)
                    ck_assert_msg(memcmp(lse + (size_t)h * L + i, lse + ((size_t)H + h) * L + i,
                                         sizeof(float)) == 0,
                                  "tune %s, t = %d: lse of row %d head %d differs", kt->name, t,
                                  i, h);
            }
            checked++;
        }
    }
    ck_assert_int_gt(checked, 0);
    free(o);
    free(lse);
    inst_free(&s);
}
END_TEST

/* The benchmark's plain-loop baseline is held to the same bound. */
START_TEST(test_naive)
{
    const tcase *c = &cases[_i];
    const uint64_t seed = SEED0 + (uint64_t)_i;
    inst s;
    inst_make(c, &s, seed, 0);
    float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
    nsx_kernel_io io = inst_io(&s, o, lse);
    ck_assert_int_eq(nsx_simd_naive(&s.p, &io, 0, s.p.L, 1, 2), NSX_SIMD_OK);
    ref_all r;
    ref_make(&s, &r);
    compare(c, &s, &r, o, lse, "naive", seed);
    ref_free(&r);
    free(o);
    free(lse);
    inst_free(&s);
}
END_TEST

/* The exact tuple count against counting the reference's predicate. */
START_TEST(test_count)
{
    const tcase *c = &cases[_i];
    inst s;
    inst_make(c, &s, SEED0 + (uint64_t)_i, 0);
    const nsx_kernel_problem *p = &s.p;
    uint64_t *rows = malloc((size_t)p->L * sizeof *rows), total = 0, want_total = 0;
    ck_assert_int_eq(nsx_simd_count_tuples(p, 0, p->L, 1, rows, &total), NSX_SIMD_OK);
    for (int i = 0; i < p->L; i++) {
        uint64_t want = 0;
        for (int b = 0; b < p->B; b++) {
            int J[NSX_MAX_ORDER] = {0};
            do
                want += (uint64_t)ref_allowed(p, b, i, J);
            while (next_tuple(J, p->n, p->L));
        }
        ck_assert_msg(rows[i] == want, "%s: row %d: count %llu, want %llu", c->name, i,
                      (unsigned long long)rows[i], (unsigned long long)want);
        want_total += want * (uint64_t)p->H;
    }
    ck_assert_uint_eq(total, want_total);
    free(rows);
    inst_free(&s);
}
END_TEST

/* Each ISA's exp within a relative (4 + 2|x|)u for x <= 0 (the bound above
   assumes it), and below 2^-120 where it underflows and at -inf. */
START_TEST(test_exp)
{
    enum { N = 200001 };
    static float x[N], x0[N];
    for (int t = 0; t < N - 1; t++)
        x0[t] = -104.0f * (float)t / (N - 2);
    x0[N - 1] = -INFINITY;
    for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
        if (!nsx_simd_isa_supported(isa))
            continue;
        memcpy(x, x0, sizeof x);
        nsx_simd_kernels(isa)->exp_nonpos(x, N);
        for (int t = 0; t < N - 1; t++) {
            double xv = x0[t], e = exp(xv), err = fabs(x[t] - e);
            ck_assert_msg(err <= (4 + 2 * fabs(xv)) * U32 * e || err <= ldexp(1, -120),
                          "%s: exp(%.9g) = %.9g, want %.9g",
                          nsx_simd_isa_name(isa), xv, x[t], e);
        }
        /* AVX2 clamps at -87.3 (its masked lanes are zeroed by an AND). */
        ck_assert_msg(x[N - 1] <= ldexp(1, -120), "%s: exp(-inf) = %g", nsx_simd_isa_name(isa),
                      x[N - 1]);
    }
}
END_TEST

/* build/libnsimplex_simd.so through dlopen: the info, the same bits as the
   in-process call, and 1 (nothing written) for what it cannot do. */
START_TEST(test_shared_library)
{
    const char *path;
    void *lib = simd_so_open(&path);
    nsx_kernel_get_info_fn info_fn;
    nsx_kernel_forward_fn fwd;
    *(void **)&info_fn = dlsym(lib, "nsx_kernel_get_info");
    *(void **)&fwd = dlsym(lib, "nsx_kernel_forward");
    ck_assert(info_fn && fwd);
    ck_assert_ptr_null(dlsym(lib, "nsx_simd_forward")); /* only the ABI is exported */
    const nsx_kernel_info *info = info_fn();
    ck_assert_int_eq(info->abi_version, NSX_KERNEL_ABI_VERSION);
    ck_assert_str_eq(info->name, "nsimplex-simd");
    ck_assert_int_eq(info->input_format, NSX_FORMAT_F32);
    ck_assert_int_eq(info->accum_format, NSX_FORMAT_F32);
    ck_assert_int_eq(info->weights_format, NSX_FORMAT_F32);
    ck_assert_int_eq(info->output_format, NSX_FORMAT_F32);
    ck_assert_int_eq(info->max_order, NSX_MAX_ORDER);
    ck_assert_uint_eq(info->features, 511u);

    for (int t = 0; t < NCASES; t += 5) {
        inst s;
        inst_make(&cases[t], &s, SEED0 + (uint64_t)t, 0);
        float *o = malloc(s.no * sizeof(float)), *lse = malloc(s.nl * sizeof(float));
        float *o2 = malloc(s.no * sizeof(float)), *lse2 = malloc(s.nl * sizeof(float));
        nsx_kernel_io io = inst_io(&s, o, lse), io2 = inst_io(&s, o2, lse2);
        ck_assert_int_eq(fwd(&s.p, &io), 0);
        ck_assert_int_eq(nsx_simd_forward(&s.p, &io2, 0), 0);
        ck_assert_msg(memcmp(o, o2, s.no * sizeof(float)) == 0, "%s: .so and in-process differ",
                      cases[t].name);
        ck_assert(memcmp(lse, lse2, s.nl * sizeof(float)) == 0);

        /* Unsupported problems: return 1, o untouched. */
        for (int bad = 0; bad < 5; bad++) {
            nsx_kernel_problem p = s.p;
            switch (bad) {
            case 0: p.n = 9; break;
            case 1: p.Hkv = p.H + 1; break;
            case 2: p.window[0] = -1; break;
            case 3: p.topk = 2; p.sel = NULL; p.sel_dims = 1; break;
            default: p.d = 0; break;
            }
            for (size_t e = 0; e < s.no; e++)
                o[e] = 12345.0f;
            ck_assert_int_eq(fwd(&p, &io), 1);
            for (size_t e = 0; e < s.no; e++)
                ck_assert(o[e] == 12345.0f);
        }
        free(o);
        free(lse);
        free(o2);
        free(lse2);
        inst_free(&s);
    }
    dlclose(lib);
}
END_TEST

/* Runs the program with an environment prefix; returns its exit status and
   its stderr in err. */
static int run_prog(const char *env, const char *args, char *err, size_t errlen)
{
    const char *bin = getenv("NSX_BIN"), *tmp = getenv("NSX_TMP");
    ck_assert_msg(bin && tmp, "NSX_BIN and NSX_TMP are not set (make check sets them)");
    char cmd[2048], path[1024];
    snprintf(path, sizeof path, "%s/test_simd_stderr.txt", tmp);
    snprintf(cmd, sizeof cmd, "env %s %s %s >/dev/null 2>%s", env, bin, args, path);
    int st = system(cmd);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(err, 1, errlen - 1, f) : 0;
    err[len] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* NSX_ISA forces each path (NSX_ISA_DEBUG=1 logs it); an unknown one is
   exit 2 with one line. */
START_TEST(test_isa_env)
{
    const char *tiny = "bench --n 2 --L 12 --H 2 --d 8 --dv 8 --window 4,2 --repeat 1 "
                       "--naive-seconds 0 --peak-seconds 0.01";
    char err[4096], env[128];
    for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
        if (!nsx_simd_isa_supported(isa))
            continue;
        snprintf(env, sizeof env, "NSX_ISA=%s NSX_ISA_DEBUG=1", nsx_simd_isa_name(isa));
        ck_assert_int_eq(run_prog(env, tiny, err, sizeof err), 0);
        char want[96];
        snprintf(want, sizeof want, "simd isa %s (forced by NSX_ISA)", nsx_simd_isa_name(isa));
        ck_assert_msg(strstr(err, want) != NULL, "stderr: %s", err);
    }
    ck_assert_int_eq(run_prog("NSX_ISA=sse9", tiny, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "NSX_ISA=sse9") && strchr(err, '\n') == err + strlen(err) - 1,
                  "want one line naming NSX_ISA, got: %s", err);
    ck_assert_int_eq(run_prog("", "bench --n 0", err, sizeof err), 2);
    ck_assert_int_eq(run_prog("", "bench --bogus", err, sizeof err), 2);
}
END_TEST

/* NSX_TUNE forces each n = 1 tune this CPU runs (NSX_ISA_DEBUG=1 logs it,
   and the detected one without NSX_TUNE); an unknown tune, or one of
   another isa, is exit 2 with one line naming NSX_TUNE. */
START_TEST(test_n1_tune_env)
{
    const char *tiny = "bench --n 1 --L 40 --H 2 --d 8 --dv 8 --repeat 1 "
                       "--naive-seconds 0 --peak-seconds 0.01";
    char err[4096], env[160], want[96];
    for (int t = 0; t < nsx_n1_tune_count(); t++) {
        const nsx_n1_kernels *kt = nsx_n1_tune_get(t);
        if (!nsx_simd_isa_supported(kt->isa))
            continue;
        snprintf(env, sizeof env, "NSX_ISA=%s NSX_TUNE=%s NSX_ISA_DEBUG=1",
                 nsx_simd_isa_name(kt->isa), kt->name);
        ck_assert_int_eq(run_prog(env, tiny, err, sizeof err), 0);
        snprintf(want, sizeof want, "n1 tune %s (", kt->name);
        ck_assert_msg(strstr(err, want) && strstr(err, "forced by NSX_TUNE"), "stderr: %s", err);
    }
    int isa = nsx_simd_isa(NULL, 0);
    const nsx_n1_kernels *detected = nsx_n1_tune(isa, NULL, 0);
    ck_assert_ptr_nonnull(detected);
    ck_assert_int_eq(run_prog("NSX_ISA_DEBUG=1", tiny, err, sizeof err), 0);
    snprintf(want, sizeof want, "n1 tune %s (", detected->name);
    ck_assert_msg(strstr(err, want) && strstr(err, "detected: "), "stderr: %s", err);
    ck_assert_int_eq(run_prog("NSX_TUNE=sse9", tiny, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "NSX_TUNE=sse9") && strchr(err, '\n') == err + strlen(err) - 1,
                  "want one line naming NSX_TUNE, got: %s", err);
    ck_assert_int_eq(run_prog("NSX_ISA=scalar NSX_TUNE=avx2", tiny, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "NSX_TUNE=avx2") && strchr(err, '\n') == err + strlen(err) - 1,
                  "want one line naming NSX_TUNE, got: %s", err);
}
END_TEST

/* The bench's shape comes from the recipe parser: the paper's shape by
   default, one window for every dimension, a random given selection, and
   the recipe's errors; its JSON report carries the figures it measured. */
START_TEST(test_bench_shape_and_report)
{
    nsx_bench_opts o;
    nsx_err err;
    nsx_bench_defaults(&o);
    ck_assert(o.p.n == 2 && o.p.L == 2048 && o.p.H == 4 && o.p.d == 64 && o.p.dv == 64 && o.p.causal);
    ck_assert(o.p.window[0] == 512 && o.p.window[1] == 32 && o.p.topk == 0);
    ck_assert_int_eq(nsx_bench_shape(&o, "n=3 L=16 w=4 reduce=sum kb=0.5", &err), 0);
    ck_assert(o.p.n == 3 && o.p.L == 16 && o.p.reduce == NSX_REDUCE_SUM && o.p.k_bias[0] == 0.5);
    ck_assert(o.p.window[0] == 4 && o.p.window[1] == 4 && o.p.window[2] == 4);
    ck_assert_int_eq(nsx_bench_shape(&o, "n=3 w=0,8,4 sel=indices k=8 dims=1,3", &err), 0);
    ck_assert(o.p.window[1] == 8 && o.p.window[2] == 4 && o.p.topk == 8 && o.p.sel_dims == 5u);
    ck_assert_int_eq(nsx_bench_shape(&o, "n=1", &err), 0);
    ck_assert_int_eq(o.p.window[0], 0);
    static const char *const bad[] = {"n=3 w=1,2", "n=0", "dist=heavy", "fmt=f16", "sel=scores k=2", "frob=1"};
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        ck_assert_msg(nsx_bench_shape(&o, bad[t], &err) == NSX_E_INPUT, "%s accepted", bad[t]);
        ck_assert_msg(strncmp(err.msg, "recipe: ", 8) == 0, "%s: %s", bad[t], err.msg);
    }

    ck_assert_int_eq(nsx_bench_shape(&o, "n=2 L=12 H=2 d=8 dv=8 w=4,2 sel=indices k=3", &err), 0);
    o.repeat = 1, o.naive_seconds = 1, o.peak_seconds = 0.01, o.threads = 1;
    nsx_bench_result r;
    ck_assert_int_eq(nsx_bench_run(&o, &r, &err), 0);
    ck_assert(r.tuples > 0 && r.seconds > 0 && r.naive_done && r.nr.rows == 12);
    ck_assert(r.nr.max_abs_diff < 1e-5);
    ck_assert(r.flops_per_tuple == 2.0 * (8 + 8) && r.gflops > 0);
    char *json = nsx_bench_json(&o, &r);
    ck_assert_ptr_nonnull(json);
    char want[64];
    snprintf(want, sizeof want, "\"tuples\":%llu,", (unsigned long long)r.tuples);
    ck_assert_msg(strstr(json, want) && strstr(json, "\"topk\":3") && strstr(json, "\"windows\":[4,2]"), "%s", json);
    free(json);
}
END_TEST

/* No state crosses work items: with every value of one batch NaN, the
   other batch's outputs are bit for bit those of a run without it, on every
   ISA and thread count.  Windows of 5 and 4 make partial row blocks, whose
   padding rows once kept the previous item's (NaN) values and leaked them
   through 0 * NaN. */
START_TEST(test_no_state_across_items)
{
    nsx_kernel_problem p = {0};
    p.n = 2, p.B = 2, p.L = 16, p.H = 2, p.Hkv = 1, p.d = 8, p.dv = 8, p.causal = 1;
    p.window[0] = 5, p.window[1] = 4;
    p.score_scale = 0.25, p.out_scale = 1;
    size_t qn = (size_t)p.B * p.L * p.H * p.d, kn = (size_t)p.B * p.L * p.Hkv * p.d;
    size_t on = (size_t)p.B * p.L * p.H * p.dv, half = on / 2;
    float *q = malloc(qn * sizeof *q), *k[2], *v[2], *o = malloc(on * sizeof *o), *ref = malloc(on * sizeof *ref);
    fill(q, qn);
    for (int m = 0; m < 2; m++) {
        fill(k[m] = malloc(kn * sizeof(float)), kn);
        fill(v[m] = malloc(kn * sizeof(float)), kn);
    }
    for (int poisoned = 0; poisoned < 2; poisoned++) {
        int clean = 1 - poisoned;
        for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
            if (!nsx_simd_isa_supported(isa))
                continue;
            /* the clean batch alone: the other batch's values finite */
            nsx_kernel_io io = {.q = q, .k = {k[0], k[1]}, .v = {v[0], v[1]}, .o = ref};
            ck_assert_int_eq(nsx_simd_forward_isa(&p, &io, 1, isa), 0);
            for (int m = 0; m < 2; m++)
                for (size_t x = 0; x < kn / 2; x++)
                    v[m][(size_t)poisoned * (kn / 2) + x] = NAN;
            for (int threads = 1; threads <= 2; threads++) {
                io.o = o;
                ck_assert_int_eq(nsx_simd_forward_isa(&p, &io, threads, isa), 0);
                ck_assert_msg(!memcmp(o + (size_t)clean * half, ref + (size_t)clean * half, half * sizeof *o),
                              "%s, %d threads: batch %d changed when batch %d is NaN", nsx_simd_isa_name(isa),
                              threads, clean, poisoned);
            }
            fill(v[0], kn); /* fresh finite values for the next round */
            fill(v[1], kn);
        }
    }
    free(q), free(o), free(ref);
    for (int m = 0; m < 2; m++)
        free(k[m]), free(v[m]);
}
END_TEST

static Suite *simd_suite(void)
{
    Suite *s = suite_create("simd");
    TCase *tc = tcase_create("isa_paths");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_isa_paths, 0, NCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("n1_tunes");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_n1_tunes, 0, NCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("naive");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_naive, 0, NCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("count");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_count, 0, NCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("exp_abi_env");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exp);
    tcase_add_test(tc, test_no_state_across_items);
    tcase_add_test(tc, test_shared_library);
    tcase_add_test(tc, test_isa_env);
    tcase_add_test(tc, test_n1_tune_env);
    tcase_add_test(tc, test_n1_sel_nan_unselected);
    tcase_add_test(tc, test_n1_sel_rows_independent);
    tcase_add_test(tc, test_bench_shape_and_report);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(simd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
