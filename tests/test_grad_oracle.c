/*
 * The gradients' oracle (docs/ORACLE.md section 8): emulated honest
 * backward kernels pass every backward vector of the default suite and a
 * table of problems with a random sweep under their model, and their worst
 * error/bound ratios are printed (the tightness of 8.7); planted bugs fail
 * (the softmax scale twice on dQ, Delta left out, the causal mask missing in
 * the dK2 path only, GQA gradients written instead of summed, the LSE of the
 * wrong row); an element no allowed tuple reaches must be exactly 0.
 *
 * The forward emulation is tests/emu.c's, shared with tests/test_oracle.c
 * (one definition of the kernels' rounding and tuple loop); the
 * backward written here shares nothing with the oracle: its own rounding
 * (R, RA, EXPA of tests/emu.c), its own order of operations:
 *   naive (softmax scheme): P = softmax of the recomputed scores, normalized,
 *     Delta = sum_J P_J dP_J (PyTorch autograd's softmax backward);
 *   flash (LSE scheme): P = exp2(T log2(e) s - LSE log2(e)) from the
 *     forward's saved f32 LSE, Delta = rowsum(dO * O) with the forward's
 *     bf16 O, dS = P (dP - Delta) rounded to w (bf16) before the GEMMs, as
 *     FBGEMM's Triton backward does;
 * both accumulate dq per row and dk_m, dv_m per (batch, kv head) over every
 * row of every query head of the group, in acc, and round to out.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/casefile.h"
#include "nsimplex/ref.h"
#include "oracle/bound.h"
#include "oracle/bound_bwd.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "tests/emu.h"
#include "tests/harness.h"
#include "vectors/suites.h"

enum { BUG_NONE, BUG_SCALE_TWICE, BUG_NO_DELTA, BUG_CAUSAL_DK2, BUG_GQA_WRITE, BUG_LSE_ROW, BUG_TINY_LEAK };

typedef struct bkernel {
    const char *name;
    const char *fwd;    /* the forward kernel of tests/emu.c (its formats and model) */
    int lse_scheme;     /* 1: P from the saved LSE (flash); 0: softmax of the scores;
                           2: autograd of the einsum pipeline (n <= 2, product) */
} bkernel;

static const bkernel bkernels[] = {
    {"naive-bf16", "naive-bf16", 0}, {"flash-bf16", "flash-bf16", 1}, {"naive-f32", "naive-f32", 0},
    {"flash-f32", "flash-f32", 1},   {"flash-bf16/o64", "flash-bf16/o64", 1}, {"naive-f32/o64", "naive-f32/o64", 0},
    /* truncating acc arithmetic with flush to zero, exp off by up to 1.9 ulps, truncating outputs */
    {"flash-bf16/rough", "flash-bf16/rough", 1}, {"naive-f32/rough", "naive-f32/rough", 0},
    {"einsum-bf16", "einsum-bf16", 2},
};
#define NBK ((int)(sizeof bkernels / sizeof bkernels[0]))

static const ekernel *fwd_kernel(const char *name)
{
    for (int k = 0; k < NKERNELS; k++)
        if (strcmp(kernels[k].name, name) == 0)
            return &kernels[k];
    ck_abort_msg("no kernel %s", name);
    return NULL;
}

/* 1 when kernel BK runs on problem p: the einsum pipeline's autograd is
   emulated for n <= 2 and the product reducer, at most 2^14 dense tuples. */
static int bk_applies(const bkernel *BK, const nsx_problem *p)
{
    return BK->lse_scheme != 2 ||
           (p->n <= 2 && p->reduce == NSX_REDUCE_PRODUCT && (p->n == 1 ? p->L : p->L * p->L) * p->dv <= 16384);
}

/* The gradients a kernel writes: dq [B,L,H,d], dk[m], dv[m]. */
typedef struct grads {
    double *dq, *dk[NSX_MAX_ORDER], *dv[NSX_MAX_ORDER];
} grads;

static void grads_alloc(grads *g, const nsx_problem *p)
{
    g->dq = calloc(nsx_q_size(p), sizeof *g->dq);
    for (int m = 0; m < p->n; m++) {
        g->dk[m] = calloc(nsx_k_size(p), sizeof *g->dk[m]);
        g->dv[m] = calloc(nsx_v_size(p), sizeof *g->dv[m]);
    }
}

static void grads_free(grads *g, const nsx_problem *p)
{
    free(g->dq);
    for (int m = 0; m < p->n; m++) {
        free(g->dk[m]);
        free(g->dv[m]);
    }
}

/* What one row of the backward knows after its forward recomputation. */
typedef struct brow {
    erow r;
    int lse_scheme, bug;
    const double *dO;     /* dO' rounded to in, dv */
    double lse;           /* the saved LSE (LSE scheme) */
    double m, Z;          /* the softmax's max and sum (softmax scheme) */
    double Delta;
} brow;

/* P'_J of tuple J (G2's two schemes). */
static double weight_of(const brow *br, const int *J)
{
    const ekernel *K = br->r.K;
    const nsx_problem *p = br->r.p;
    if (br->lse_scheme) {
        const double l2e = RA(K, 1.4426950408889634);
        const double c2 = RA(K, RA(K, nsx_problem_score_scale(p)) * l2e);
        double t2 = RA(K, raw_score(&br->r, J, 0) * c2);
        return EXPA(K, exp2(RA(K, t2 - RA(K, br->lse * l2e))));
    }
    double T = raw_score(&br->r, J, 1);
    return RA(K, EXPA(K, exp(RA(K, T - br->m))) / br->Z);
}

/* dP'_J = os sum_c dO'_c W'_J,c in acc (E7a). */
static double dP_of(const brow *br, const int *J)
{
    const ekernel *K = br->r.K;
    double a = 0;
    for (int c = 0; c < br->r.p->dv; c++)
        a = RA(K, a + br->dO[c] * reduced(&br->r, J, c));
    return RA(K, a * RA(K, br->r.p->out_scale));
}

/* dS'_J = P'_J (dP'_J - Delta') rounded to w (E7c). */
static double dS_of(const brow *br, const int *J, double *Pj)
{
    const ekernel *K = br->r.K;
    *Pj = weight_of(br, J);
    return R(RA(K, *Pj * RA(K, dP_of(br, J) - br->Delta)), K->w);
}

/* The GEMM operand of dQ: prod_m K~_m[j_m, l] built in op; of dK_m: Q[l]
   prod_{m' != m} K~_m'[j_m', l]; of dV_m: dO'_c dW_m[J, c]. */
static double opq(const brow *br, const int *J, int l)
{
    double x = key_op(&br->r, 0, J[0], l);
    for (int m = 1; m < br->r.p->n; m++)
        x = R(x * key_op(&br->r, m, J[m], l), br->r.K->op);
    return x;
}

static double opk(const brow *br, const int *J, int m, int l)
{
    const nsx_problem *p = br->r.p;
    double x = R(br->r.t->q[nsx_q_at(p, br->r.b, br->r.i, br->r.h, l)], br->r.K->in);
    for (int m2 = 0; m2 < p->n; m2++)
        if (m2 != m)
            x = R(x * key_op(&br->r, m2, J[m2], l), br->r.K->op);
    return x;
}

static double opv(const brow *br, const int *J, int m, int c)
{
    const ekernel *K = br->r.K;
    const nsx_problem *p = br->r.p;
    double x = br->dO[c];
    if (p->reduce == NSX_REDUCE_PRODUCT) {
        for (int m2 = 0; m2 < p->n; m2++)
            if (m2 != m)
                x = R(x * val_op(&br->r, m2, J[m2], c), K->op);
    } else if (p->reduce == NSX_REDUCE_MEAN) {
        x = R(x * RA(K, 1.0 / p->n), K->op);
    }
    return x;
}

/*
 * The autograd of tests/emu.c's einsum pipeline (einsum_row), n <= 2,
 * product reducer: every intermediate gradient tensor rounded to int (bf16),
 * reductions in acc.  Forward (per row): T = fl(fl(raw) s), weights A =
 * fl_w(softmax(T)) (masked tuples 0), Y_1[j2][c] = fl(sum_j1 A v1), O =
 * fl(fl(sum_j2 Y_1 v2) os).  Backward: dY_n = fl(dO os); dY_{x-1} = fl(dY_x
 * v_x) (a product, no sum); dv_x = sum over rows of dY_x Y_{x-1}; dA =
 * fl(sum_c dY_0); softmax backward dT = fl(A (dA - sum A dA)) in acc; draw =
 * fl(dT s); then the score einsum: X = fl_op(q k1) (n = 2), dX = fl(sum_j2
 * draw k2), dq = fl(sum_j1 dX k1), dk2 = sum draw X, dk1 = sum dX q.  Per
 * head an einsum rounds its sum over rows to int; GQA's expand sums the
 * heads of a group in acc and rounds again.
 */
static void run_einsum_backward(const ekernel *K, const tcase *t, const int32_t *sel, grads *g)
{
    const nsx_problem *p = &t->p;
    const int n = p->n, d = p->d, dv = p->dv, L = p->L, Hg = p->H / p->Hkv, I = K->inter;
    const int J2 = n == 2 ? L : 1;
    const double s = R(nsx_problem_score_scale(p), I), os = R(p->out_scale, I);
    double *A = malloc((size_t)L * J2 * sizeof *A), *dA = malloc((size_t)L * J2 * sizeof *dA);
    double *Y1 = malloc((size_t)J2 * dv * sizeof *Y1), *dY1 = malloc((size_t)J2 * dv * sizeof *dY1);
    double *dX = malloc((size_t)L * d * sizeof *dX), *dY2 = malloc((size_t)dv * sizeof *dY2);
    double *hk = malloc((size_t)n * L * d * sizeof *hk), *hv = malloc((size_t)n * L * dv * sizeof *hv);
    double *gk = malloc((size_t)n * L * d * sizeof *gk), *gv = malloc((size_t)n * L * dv * sizeof *gv);
    for (int b = 0; b < p->B; b++)
        for (int gg = 0; gg < p->Hkv; gg++) {
            memset(gk, 0, (size_t)n * L * d * sizeof *gk);
            memset(gv, 0, (size_t)n * L * dv * sizeof *gv);
            for (int h = gg * Hg; h < (gg + 1) * Hg; h++) {
                memset(hk, 0, (size_t)n * L * d * sizeof *hk);
                memset(hv, 0, (size_t)n * L * dv * sizeof *hv);
                for (int i = 0; i < L; i++) {
                    const int32_t *srow = sel ? sel + nsx_sel_at(p, b, i, 0) : NULL;
                    size_t N;
                    int *list = row_tuples(p, srow, i, &N);
                    double *dqr = g->dq + nsx_q_at(p, b, i, h, 0);
                    if (N == 0) {
                        for (int l = 0; l < d; l++)
                            dqr[l] = 0;
                        free(list);
                        continue;
                    }
                    erow r = {K, p, t, b, h, gg, i};
                    /* the forward's weights, as einsum_row computes them */
                    double m = -INFINITY, Z = 0;
                    double *T = malloc(N * sizeof *T);
                    for (size_t x = 0; x < N; x++) {
                        T[x] = R(R(raw_score(&r, list + x * n, 0), I) * s, I);
                        m = fmax(m, T[x]);
                    }
                    for (size_t x = 0; x < N; x++) {
                        T[x] = EXPA(K, exp(RA(K, T[x] - m)));
                        Z = RA(K, Z + T[x]);
                    }
                    memset(A, 0, (size_t)L * J2 * sizeof *A);
                    for (size_t x = 0; x < N; x++) {
                        const int *J = list + x * n;
                        A[(size_t)J[0] * J2 + (n == 2 ? J[1] : 0)] = R(RA(K, T[x] / Z), K->w);
                    }
                    free(T);
                    /* value side: forward partial Y1 (n = 2), backward dY */
                    for (int c = 0; c < dv; c++)
                        dY2[c] = R(R(t->dout[nsx_o_at(p, b, i, h, c)], K->in) * os, I);
                    if (n == 2) {
                        for (int j2 = 0; j2 < L; j2++)
                            for (int c = 0; c < dv; c++) {
                                double a = 0;
                                for (int j1 = 0; j1 < L; j1++)
                                    a = RA(K, a + A[(size_t)j1 * L + j2] * val_op(&r, 0, j1, c));
                                Y1[(size_t)j2 * dv + c] = R(a, I);
                                dY1[(size_t)j2 * dv + c] = R(dY2[c] * val_op(&r, 1, j2, c), I);
                                double *v2 = &hv[((size_t)L + j2) * dv + c];
                                *v2 = RA(K, *v2 + dY2[c] * Y1[(size_t)j2 * dv + c]);
                            }
                    } else {
                        for (int c = 0; c < dv; c++)
                            dY1[c] = dY2[c];
                    }
                    /* dY_0 = fl(dY_1 v1); dv1 = sum dY_1 A; dA = fl(sum_c dY_0) */
                    for (int j1 = 0; j1 < L; j1++)
                        for (int j2 = 0; j2 < J2; j2++) {
                            double a = 0, aw = A[(size_t)j1 * J2 + j2];
                            for (int c = 0; c < dv; c++) {
                                a = RA(K, a + R(dY1[(size_t)j2 * dv + c] * val_op(&r, 0, j1, c), I));
                                double *v1 = &hv[(size_t)j1 * dv + c];
                                *v1 = RA(K, *v1 + dY1[(size_t)j2 * dv + c] * aw);
                            }
                            dA[(size_t)j1 * J2 + j2] = R(a, I);
                        }
                    /* softmax backward in acc, rounded to int; the scale */
                    double Dl = 0;
                    for (size_t x = 0; x < (size_t)L * J2; x++)
                        Dl = RA(K, Dl + A[x] * dA[x]);
                    for (size_t x = 0; x < (size_t)L * J2; x++)
                        dA[x] = R(R(RA(K, A[x] * RA(K, dA[x] - Dl)), I) * s, I); /* now d raw */
                    /* the score einsum */
                    const double *q = t->q + nsx_q_at(p, b, i, h, 0);
                    for (int l = 0; l < d; l++) {
                        double ql = R(q[l], K->in), aq = 0;
                        for (int j1 = 0; j1 < L; j1++) {
                            double k1 = key_op(&r, 0, j1, l);
                            if (n == 2) {
                                double a = 0, X = R(ql * k1, K->op);
                                for (int j2 = 0; j2 < L; j2++) {
                                    double dr = dA[(size_t)j1 * L + j2];
                                    a = RA(K, a + dr * key_op(&r, 1, j2, l));
                                    double *k2 = &hk[((size_t)L + j2) * d + l];
                                    *k2 = RA(K, *k2 + dr * X);
                                }
                                dX[(size_t)j1 * d + l] = R(a, I);
                            } else {
                                dX[(size_t)j1 * d + l] = dA[j1];
                            }
                            aq = RA(K, aq + dX[(size_t)j1 * d + l] * k1);
                            double *kk = &hk[(size_t)j1 * d + l];
                            *kk = RA(K, *kk + dX[(size_t)j1 * d + l] * ql);
                        }
                        dqr[l] = RO(K, R(aq, I));
                    }
                    free(list);
                }
                /* this head's einsum rounds its sums; the expand sums the group */
                for (size_t x = 0; x < (size_t)n * L * d; x++)
                    gk[x] = RA(K, gk[x] + R(hk[x], I));
                for (size_t x = 0; x < (size_t)n * L * dv; x++)
                    gv[x] = RA(K, gv[x] + R(hv[x], I));
            }
            for (int mm = 0; mm < n; mm++)
                for (int j = 0; j < L; j++) {
                    for (int l = 0; l < d; l++)
                        g->dk[mm][nsx_k_at(p, b, j, gg, l)] = RO(K, R(gk[((size_t)mm * L + j) * d + l], I));
                    for (int c = 0; c < dv; c++)
                        g->dv[mm][nsx_v_at(p, b, j, gg, c)] = RO(K, R(gv[((size_t)mm * L + j) * dv + c], I));
                }
        }
    free(A), free(dA), free(Y1), free(dY1), free(dX), free(dY2), free(hk), free(hv), free(gk), free(gv);
}

/*
 * The backward of kernel BK (bug: a planted one) for the whole problem,
 * from the kernel's own forward outputs o, lse; sel: S(i) lists or NULL.
 */
static void run_backward(const bkernel *BK, int bug, const tcase *t, const int32_t *sel, const double *o,
                         const double *lse, grads *g)
{
    const ekernel *K = fwd_kernel(BK->fwd);
    if (BK->lse_scheme == 2) {
        run_einsum_backward(K, t, sel, g);
        return;
    }
    const nsx_problem *p = &t->p;
    const int n = p->n, d = p->d, dv = p->dv, L = p->L, Hg = p->H / p->Hkv;
    const double s = RA(K, nsx_problem_score_scale(p)), os = RA(K, p->out_scale);
    double *ak = malloc((size_t)n * L * d * sizeof *ak), *av = malloc((size_t)n * L * dv * sizeof *av);
    double *dO = malloc((size_t)dv * sizeof *dO), *aq = malloc((size_t)d * sizeof *aq);
    nsx_problem acausal = *p;
    acausal.causal = 0;
    for (int b = 0; b < p->B; b++)
        for (int gg = 0; gg < p->Hkv; gg++) {
            memset(ak, 0, (size_t)n * L * d * sizeof *ak);
            memset(av, 0, (size_t)n * L * dv * sizeof *av);
            for (int h = gg * Hg; h < (gg + 1) * Hg; h++) {
                if (bug == BUG_GQA_WRITE) { /* each head overwrites the group's sums */
                    memset(ak, 0, (size_t)n * L * d * sizeof *ak);
                    memset(av, 0, (size_t)n * L * dv * sizeof *av);
                }
                for (int i = 0; i < L; i++) {
                    const int32_t *srow = sel ? sel + nsx_sel_at(p, b, i, 0) : NULL;
                    size_t N;
                    int *list = row_tuples(p, srow, i, &N);
                    double *dqr = g->dq + nsx_q_at(p, b, i, h, 0);
                    if (N == 0) {
                        for (int l = 0; l < d; l++)
                            dqr[l] = 0;
                        free(list);
                        continue;
                    }
                    for (int c = 0; c < dv; c++)
                        dO[c] = R(t->dout[nsx_o_at(p, b, i, h, c)], K->in);
                    brow br = {{K, p, t, b, h, gg, i}, BK->lse_scheme, bug, dO, 0, -INFINITY, 0, 0};
                    int li = bug == BUG_LSE_ROW && i > 0 ? i - 1 : i;
                    br.lse = lse[nsx_lse_at(p, b, h, li)];
                    if (!BK->lse_scheme) {
                        for (size_t x = 0; x < N; x++)
                            br.m = fmax(br.m, raw_score(&br.r, list + x * n, 1));
                        for (size_t x = 0; x < N; x++)
                            br.Z = RA(K, br.Z + EXPA(K, exp(RA(K, raw_score(&br.r, list + x * n, 1) - br.m))));
                    }
                    /* Delta: from O (LSE scheme) or from P dP (softmax scheme) */
                    double D = 0;
                    if (BK->lse_scheme) {
                        for (int c = 0; c < dv; c++)
                            D = RA(K, D + dO[c] * o[nsx_o_at(p, b, i, h, c)]);
                    } else {
                        for (size_t x = 0; x < N; x++)
                            D = RA(K, D + weight_of(&br, list + x * n) * dP_of(&br, list + x * n));
                    }
                    br.Delta = bug == BUG_NO_DELTA ? 0.0 : D;
                    for (int l = 0; l < d; l++)
                        aq[l] = 0;
                    for (size_t x = 0; x < N; x++) {
                        const int *J = list + x * n;
                        double Pj, dS = dS_of(&br, J, &Pj);
                        double Pw = R(Pj, K->w);
                        for (int l = 0; l < d; l++)
                            aq[l] = RA(K, aq[l] + dS * opq(&br, J, l));
                        for (int m = 0; m < n; m++) {
                            if (bug == BUG_CAUSAL_DK2 && m == 1)
                                continue; /* below, over the unmasked tuples */
                            for (int l = 0; l < d; l++) {
                                double *a = &ak[((size_t)m * L + J[m]) * d + l];
                                *a = RA(K, *a + dS * opk(&br, J, m, l));
                            }
                            for (int c = 0; c < dv; c++) {
                                double *a = &av[((size_t)m * L + J[m]) * dv + c];
                                *a = RA(K, *a + Pw * opv(&br, J, m, c));
                            }
                        }
                    }
                    if (bug == BUG_CAUSAL_DK2) { /* the dK2 path forgets the causal mask */
                        size_t N2;
                        int *all = row_tuples(&acausal, srow, i, &N2);
                        for (size_t x = 0; x < N2; x++) {
                            const int *J = all + x * n;
                            double Pj, dS = dS_of(&br, J, &Pj), Pw = R(Pj, K->w);
                            for (int l = 0; l < d; l++) {
                                double *a = &ak[((size_t)L + J[1]) * d + l];
                                *a = RA(K, *a + dS * opk(&br, J, 1, l));
                            }
                            for (int c = 0; c < dv; c++) {
                                double *a = &av[((size_t)L + J[1]) * dv + c];
                                *a = RA(K, *a + Pw * opv(&br, J, 1, c));
                            }
                        }
                        free(all);
                    }
                    if (bug == BUG_TINY_LEAK && i + 1 < L) /* 2^-12 of row i's dq sums reach key i + 1 */
                        for (int m = 0; m < n; m++)
                            for (int l = 0; l < d; l++) {
                                double *a = &ak[((size_t)m * L + i + 1) * d + l];
                                *a = RA(K, *a + ldexp(aq[l], -12));
                            }
                    for (int l = 0; l < d; l++) {
                        double v = RA(K, aq[l] * s);
                        dqr[l] = RO(K, bug == BUG_SCALE_TWICE ? RA(K, v * s) : v);
                    }
                    free(list);
                }
            }
            for (int m = 0; m < n; m++)
                for (int j = 0; j < L; j++) {
                    for (int l = 0; l < d; l++)
                        g->dk[m][nsx_k_at(p, b, j, gg, l)] = RO(K, RA(K, ak[((size_t)m * L + j) * d + l] * s));
                    for (int c = 0; c < dv; c++)
                        g->dv[m][nsx_v_at(p, b, j, gg, c)] = RO(K, RA(K, av[((size_t)m * L + j) * dv + c] * os));
                }
        }
    free(ak);
    free(av);
    free(dO);
    free(aq);
}

/* The check of o, lse and the gradients g under model. */
static int judge_grads(const tcase *t, const nsx_case_info *info, const double *o, const double *lse, const grads *g,
                       const char *model, nsx_check_report *rep, nsx_err *err)
{
    nsx_candidate cand = {.o = o, .lse = lse, .dq = g->dq};
    for (int m = 0; m < t->p.n; m++)
        cand.dk[m] = g->dk[m], cand.dv[m] = g->dv[m];
    nsx_model md = model_of(model);
    return nsx_check(&t->p, info, &t->in, &t->out, &cand, &md, rep, err);
}

/* The kernel's forward (tests/emu.c) and backward on t, judged. */
static int run_and_judge(const bkernel *BK, int bug, const tcase *t, const nsx_case_info *info, int block,
                         nsx_check_report *rep, nsx_err *err)
{
    const ekernel *K = fwd_kernel(BK->fwd);
    double *o = malloc(nsx_o_size(&t->p) * sizeof *o), *lse = malloc(nsx_lse_size(&t->p) * sizeof *lse);
    grads g;
    grads_alloc(&g, &t->p);
    run_kernel(K, t, kernel_sel(t), block, o, lse);
    run_backward(BK, bug, t, kernel_sel(t), o, lse, &g);
    int rc = judge_grads(t, info, o, lse, &g, K->model, rep, err);
    grads_free(&g, &t->p);
    free(o);
    free(lse);
    return rc;
}

typedef struct gtight {
    double q, k, v;
    int runs, na;
} gtight;

static void tight_add(gtight *x, const nsx_check_report *rep)
{
    x->runs++;
    x->q = fmax(x->q, rep->worst_dq.found ? rep->worst_dq.ratio : 0);
    x->k = fmax(x->k, rep->worst_dk.found ? rep->worst_dk.ratio : 0);
    x->v = fmax(x->v, rep->worst_dv.found ? rep->worst_dv.ratio : 0);
}

static void tight_print(const char *what, const gtight *tk)
{
    printf("%s (runs, not applicable; worst dq, dk, dv ratio):\n", what);
    for (int k = 0; k < NBK; k++)
        printf("  %-16s %-26s %4d %3d   %-8.3g %-8.3g %.3g\n", bkernels[k].name, fwd_kernel(bkernels[k].fwd)->model,
               tk[k].runs, tk[k].na, tk[k].q, tk[k].k, tk[k].v);
}

/* ---- honest kernels pass every backward vector ------------------------- */

START_TEST(honest_backward_kernels_pass_every_backward_vector)
{
    const nsx_suite *suite = nsx_suite_find("default");
    gtight tk[NBK];
    memset(tk, 0, sizeof tk);
    int vectors = 0;
    for (size_t ci = 0; ci < suite->count; ci++) {
        char path[512];
        nsx_case c;
        nsx_err err;
        snprintf(path, sizeof path, "vectors/default/%s.safetensors", suite->cases[ci].name);
        ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
        if (!c.expected.dq) {
            nsx_case_free(&c);
            continue;
        }
        vectors++;
        tcase t;
        view_of(&c, &t);
        t.dout = (double *)c.in.dout;
        for (int k = 0; k < NBK; k++) {
            nsx_check_report rep;
            if (!bk_applies(&bkernels[k], &t.p))
                continue;
            int rc = run_and_judge(&bkernels[k], BUG_NONE, &t, &c.info, 16, &rep, &err);
            if (rc == NSX_E_NOT_APPLICABLE) {
                tk[k].na++;
                continue;
            }
            ck_assert_msg(rc == 0, "%s under %s: %s", path, bkernels[k].name, err.msg);
            if (!rep.pass)
                print_failures(bkernels[k].name, &rep);
            ck_assert_msg(rep.pass, "%s: honest backward kernel %s fails", path, bkernels[k].name);
            ck_assert_int_eq(rep.grad_status, NSX_GRAD_JUDGED);
            tight_add(&tk[k], &rep);
        }
        nsx_case_free(&c);
    }
    ck_assert_int_ge(vectors, 13);
    char what[96];
    snprintf(what, sizeof what, "honest backward kernels on the %d backward vectors", vectors);
    tight_print(what, tk);
    for (int k = 0; k < NBK; k++)
        ck_assert_msg(tk[k].runs >= (bkernels[k].lse_scheme == 2 ? 4 : 10), "%s judged on %d vectors only",
                      bkernels[k].name, tk[k].runs);
}
END_TEST

/* ---- honest kernels pass the table problems and a random sweep --------- */

/* t's upstream gradient (rounded to its format) and golden gradients;
   1 when the reference cannot decide them (t freed). */
static int add_grads(tcase *t, unsigned seed)
{
    ck_assert_int_eq(nsx_instance_alloc_grads(t), 0);
    rng r = {seed ^ 0x5bd1e995u};
    for (size_t x = 0; x < nsx_o_size(&t->p); x++)
        t->dout[x] = rng_dyadic(&r, 8, 7);
    t->in.dout = t->dout;
    nsx_err err;
    int rc = nsx_ref_backward(&t->p, &t->in, &t->out, NULL, NULL, &err);
    if (rc == NSX_E_PRECISION_CAP || rc == NSX_E_INPUT) {
        tcase_free(t);
        return 1;
    }
    ck_assert_msg(rc == 0, "reference backward: %s", err.msg);
    return 0;
}

static int sweep_count(unsigned *seed)
{
    const char *e = getenv("NSX_GRAD_SWEEP");
    int count = 60;
    if (e) {
        count = atoi(e);
        const char *c = strchr(e, ',');
        if (c)
            *seed = (unsigned)strtoul(c + 1, NULL, 10);
    }
    return count;
}

START_TEST(honest_backward_kernels_pass_table_and_sweep)
{
    gtight tk[NBK];
    memset(tk, 0, sizeof tk);
    unsigned seed = SEED + 13;
    const int NR = sweep_count(&seed);
    rng pr = {seed};
    int skipped = 0;
    for (int pi = 0; pi < NPROBLEMS + NR; pi++) {
        pspec rs;
        if (pi >= NPROBLEMS)
            random_spec(&pr, (unsigned[]){KB, KF}[pi % 2], &rs);
        const pspec *s = pi < NPROBLEMS ? &problems[pi] : &rs;
        if (!(s->kernels & (KB | KF)) || s->src == NSX_SEL_INDEXER || s->src == NSX_SEL_SCORES)
            continue;
        tcase t;
        if (make_problem(s, SEED + 17u * (unsigned)pi, &t))
            continue;
        if (add_grads(&t, SEED + (unsigned)pi)) {
            skipped++;
            continue;
        }
        for (int k = 0; k < NBK; k++) {
            const ekernel *K = fwd_kernel(bkernels[k].fwd);
            if (!(s->kernels & (unsigned)kernel_class(K)) || !bk_applies(&bkernels[k], &t.p))
                continue;
            nsx_check_report rep;
            nsx_err err;
            int rc = run_and_judge(&bkernels[k], BUG_NONE, &t, NULL, 1 + 5 * (pi % 4), &rep, &err);
            if (rc == NSX_E_NOT_APPLICABLE) {
                if (getenv("NSX_GRAD_DEBUG"))
                    printf("%s (problem %d) under %s: %s\n", s->name, pi, bkernels[k].name, err.msg);
                tk[k].na++;
                continue;
            }
            ck_assert_msg(rc == 0, "%s (problem %d) under %s: %s", s->name, pi, bkernels[k].name, err.msg);
            if (!rep.pass)
                print_failures(bkernels[k].name, &rep);
            ck_assert_msg(rep.pass, "%s (problem %d): honest backward kernel %s fails (seed %u)", s->name, pi,
                          bkernels[k].name, seed);
            tight_add(&tk[k], &rep);
        }
        tcase_free(&t);
    }
    char what[128];
    snprintf(what, sizeof what, "honest backward kernels on the table and %d random problems (seed %u, %d skipped)",
             NR, seed, skipped);
    tight_print(what, tk);
    for (int k = 0; k < NBK; k++)
        ck_assert_msg(tk[k].runs > 10, "%s ran %d times", bkernels[k].name, tk[k].runs);
}
END_TEST

/* ---- planted bugs fail ------------------------------------------------- */

/* A problem with gradients: n, L, H, Hkv, d, causal, bf16 inputs. */
static void bug_problem(tcase *t, int n, int L, int H, int Hkv, int d, int frac, unsigned seed)
{
    pspec s = {.name = "bug", .n = n, .B = 1, .L = L, .H = H, .Hkv = Hkv, .d = d, .dv = d, .reduce = P, .causal = 1,
               .fmt = BF, .bits = 8, .frac = frac, .kernels = KB};
    ck_assert_int_eq(make_problem(&s, seed, t), 0);
    ck_assert_int_eq(add_grads(t, seed), 0);
}

START_TEST(planted_backward_bugs_fail)
{
    static const struct {
        const char *name;
        int bug, n, L, H, Hkv, d, frac; /* inputs m 2^-frac, |m| < 2^8: scores of order 1 */
    } bugs[] = {
        {"softmax scale applied twice to dQ", BUG_SCALE_TWICE, 2, 8, 1, 1, 64, 8},
        {"Delta left out", BUG_NO_DELTA, 2, 8, 1, 1, 8, 7},
        {"causal mask missing in the dK2 path only", BUG_CAUSAL_DK2, 2, 8, 1, 1, 8, 7},
        {"GQA gradients written instead of summed", BUG_GQA_WRITE, 1, 8, 4, 2, 8, 7},
        {"LSE of the wrong row", BUG_LSE_ROW, 2, 8, 1, 1, 8, 7},
        {"n = 1: softmax scale applied twice to dQ", BUG_SCALE_TWICE, 1, 10, 2, 1, 64, 7},
        {"n = 1: Delta left out", BUG_NO_DELTA, 1, 10, 2, 1, 16, 7},
        {"n = 1: LSE of the wrong row", BUG_LSE_ROW, 1, 10, 2, 1, 16, 7},
    };
    const bkernel *BK = &bkernels[1]; /* flash-bf16 */
    size_t caught = 0;
    for (size_t x = 0; x < sizeof bugs / sizeof bugs[0]; x++) {
        tcase t;
        bug_problem(&t, bugs[x].n, bugs[x].L, bugs[x].H, bugs[x].Hkv, bugs[x].d, bugs[x].frac, SEED + 101u * (unsigned)x);
        nsx_check_report rep;
        nsx_err err;
        ck_assert_int_eq(run_and_judge(BK, BUG_NONE, &t, NULL, 4, &rep, &err), 0);
        ck_assert_msg(rep.pass, "%s: the clean kernel fails", bugs[x].name);
        double clean = fmax(rep.worst_dq.ratio, fmax(rep.worst_dk.ratio, rep.worst_dv.ratio));
        ck_assert_int_eq(run_and_judge(BK, bugs[x].bug, &t, NULL, 4, &rep, &err), 0);
        printf("planted: %-44s %4zu of %zu gradient elements fail; worst ratio dq %.3g, dk %.3g, dv %.3g "
               "(clean %.3g)\n", bugs[x].name, rep.grad_failed, rep.grad_judged, rep.worst_dq.ratio,
               rep.worst_dk.ratio, rep.worst_dv.ratio, clean);
        caught += !rep.pass && rep.grad_failed > 0;
        tcase_free(&t);
    }
    ck_assert_msg(caught == sizeof bugs / sizeof bugs[0], "%zu of %zu planted bugs caught", caught,
                  sizeof bugs / sizeof bugs[0]);
}
END_TEST

/* A key gradient that sees an earlier query fails the gradient leak pair
   bit for bit, however small: the causal mask missing in the dK2 path, and
   2^-12 of a row's sums leaking into the next key (within every bound). */
START_TEST(gradient_leak_pairs_catch_key_leaks)
{
    nsx_case c;
    nsx_err err;
    ck_assert_msg(nsx_case_read("vectors/default/bwd_n2_pairs.safetensors", &c, &err) == 0, "%s", err.msg);
    tcase t;
    view_of(&c, &t);
    t.dout = (double *)c.in.dout;
    nsx_check_report rep;
    ck_assert_int_eq(run_and_judge(&bkernels[1], BUG_NONE, &t, &c.info, 4, &rep, &err), 0);
    ck_assert_msg(rep.pass && rep.pairs_gradleak == 1 && rep.pair_keys == 2, "the clean kernel");
    ck_assert_int_eq(run_and_judge(&bkernels[1], BUG_TINY_LEAK, &t, &c.info, 4, &rep, &err), 0);
    ck_assert_msg(!rep.pass && rep.pair_failed > 0 && rep.grad_failed == 0,
                  "a tiny key leak: %zu pair failures, %zu gradient failures", rep.pair_failed, rep.grad_failed);
    printf("tiny key leak: every element within its bound (worst dk ratio %.3g), the gradient leak pair differs\n",
           rep.worst_dk.ratio);
    ck_assert_int_eq(run_and_judge(&bkernels[1], BUG_CAUSAL_DK2, &t, &c.info, 4, &rep, &err), 0);
    ck_assert_msg(!rep.pass && rep.pair_failed > 0, "the causal mask missing in the dK2 path");
    nsx_case_free(&c);
}
END_TEST

/* ---- tightness per decade of terms ------------------------------------- */

#define GDEC 6 /* decades of terms: 1, 10, ..., 10^5 */

static int gdecade(size_t n)
{
    int d = 0;
    while (n >= 10 && d < GDEC - 1)
        n /= 10, d++;
    return d;
}

typedef struct gtable {
    double r[NBK][3][GDEC]; /* worst ratio of dq, dk, dv per kernel and decade */
    long cnt[3][GDEC];      /* elements per tensor kind and decade */
} gtable;

/* One gradient case under every kernel: each element's error against its
   bound (nsx_bound_grads, the bound nsx_check judges by), by decade of its
   terms (dq: the row's tuples; dk, dv: the element's). */
static void tighten_file(const char *path, gtable *tb)
{
    nsx_case c;
    nsx_err err;
    ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
    ck_assert_msg(c.expected.dq != NULL, "%s: not a gradient case", path);
    tcase t;
    view_of(&c, &t);
    t.dout = (double *)c.in.dout;
    const nsx_problem *p = &c.p;
    const int n = p->n;
    size_t *rowN = malloc((size_t)p->B * p->L * sizeof *rowN);
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            const int32_t *sel = kernel_sel(&t);
            size_t N;
            free(row_tuples(p, sel ? sel + nsx_sel_at(p, b, i, 0) : NULL, i, &N));
            rowN[(size_t)b * p->L + i] = N;
        }
    for (int k = 0; k < NBK; k++) {
        const ekernel *K = fwd_kernel(bkernels[k].fwd);
        if (bkernels[k].lse_scheme == 2)
            continue; /* the dense einsum emulation is for small problems */
        double *o = malloc(nsx_o_size(p) * sizeof *o), *lse = malloc(nsx_lse_size(p) * sizeof *lse);
        grads g, bd;
        grads_alloc(&g, p);
        grads_alloc(&bd, p);
        run_kernel(K, &t, kernel_sel(&t), 64, o, lse);
        run_backward(&bkernels[k], BUG_NONE, &t, kernel_sel(&t), o, lse, &g);
        nsx_model md = model_of(K->model);
        nsx_bound_ctx bc;
        ck_assert_int_eq(nsx_bound_init(&bc, p, &c.in, &md, &err), 0);
        nsx_grad_bound gb = {.dq = bd.dq};
        for (int m = 0; m < n; m++)
            gb.dk[m] = bd.dk[m], gb.dv[m] = bd.dv[m];
        gb.terms_k = malloc((size_t)p->B * p->Hkv * n * p->L * sizeof *gb.terms_k);
        int rc = nsx_bound_grads(&bc, kernel_sel(&t), &c.expected, &gb, &err);
        ck_assert_msg(rc == 0, "%s under %s: %s", path, K->name, err.msg);
        for (size_t e = 0; e < nsx_q_size(p); e++) {
            int i = (int)(e / ((size_t)p->H * p->d) % (size_t)p->L), b = (int)(e / ((size_t)p->H * p->d * p->L));
            double r = fabs(g.dq[e] - c.expected.dq[e]) / bd.dq[e];
            ck_assert_msg(bd.dq[e] > 0 ? r <= 1 : g.dq[e] == 0, "%s: %s dq[%zu] ratio %g", path, K->name, e, r);
            int dd = gdecade(rowN[(size_t)b * p->L + i]);
            if (bd.dq[e] > 0 && isfinite(bd.dq[e])) {
                tb->r[k][0][dd] = fmax(tb->r[k][0][dd], r);
                tb->cnt[0][dd] += k == 0;
            }
        }
        for (int m = 0; m < n; m++)
            for (int kind = 1; kind <= 2; kind++) {
                const int cols = kind == 1 ? p->d : p->dv;
                const double *cand = kind == 1 ? g.dk[m] : g.dv[m], *ex = kind == 1 ? c.expected.dk[m] : c.expected.dv[m];
                const double *bb = kind == 1 ? bd.dk[m] : bd.dv[m];
                size_t count = (size_t)p->B * p->L * p->Hkv * cols;
                for (size_t e = 0; e < count; e++) {
                    int gg = (int)(e / (size_t)cols % (size_t)p->Hkv), j = (int)(e / ((size_t)cols * p->Hkv) % (size_t)p->L);
                    int b = (int)(e / ((size_t)cols * p->Hkv * p->L));
                    double r = fabs(cand[e] - ex[e]) / bb[e];
                    ck_assert_msg(bb[e] > 0 ? r <= 1 : cand[e] == 0, "%s: %s d%c%d[%zu] ratio %g", path, K->name,
                                  kind == 1 ? 'k' : 'v', m + 1, e, r);
                    size_t terms = gb.terms_k[(((size_t)b * p->Hkv + gg) * n + m) * p->L + j];
                    if (bb[e] > 0 && isfinite(bb[e])) {
                        int dd = gdecade(terms);
                        tb->r[k][kind][dd] = fmax(tb->r[k][kind][dd], r);
                        tb->cnt[kind][dd] += k == 0;
                    }
                }
            }
        free(gb.terms_k);
        nsx_bound_free(&bc);
        grads_free(&g, p);
        grads_free(&bd, p);
        free(o);
        free(lse);
    }
    free(rowN);
    nsx_case_free(&c);
}

/* make check: the small tiles gradient case; NSX_GRAD_TIGHTNESS=full: the
   three tiles gradient cases (minutes); NSX_GRAD_TIGHTNESS_FILES: any
   gradient case files (space-separated).  Prints the table of ORACLE.md
   8.7. */
START_TEST(tightness_per_decade_of_terms)
{
    static gtable tb;
    memset(&tb, 0, sizeof tb);
    const char *files = getenv("NSX_GRAD_TIGHTNESS_FILES");
    const char *full = getenv("NSX_GRAD_TIGHTNESS");
    char list[2048];
    snprintf(list, sizeof list, "%s",
             files ? files
                   : full && strcmp(full, "full") == 0
                         ? "vectors/tiles/bwd_n2_L64_d64.safetensors vectors/tiles/bwd_n1_L128_d128.safetensors "
                           "vectors/tiles/bwd_n2_sum_L33.safetensors"
                         : "vectors/tiles/bwd_n2_sum_L33.safetensors");
    char *save = NULL, shown[2048];
    snprintf(shown, sizeof shown, "%s", list);
    for (char *f = strtok_r(list, " ", &save); f; f = strtok_r(NULL, " ", &save))
        tighten_file(f, &tb);
    printf("gradient tightness per decade of terms (%s): worst dq / dk / dv ratio\n", shown);
    static const char *const dec[GDEC] = {"1-9", "10-99", "100-999", "1000-9999", "1e4-1e5", ">=1e5"};
    for (int dd = 0; dd < GDEC; dd++) {
        if (!tb.cnt[0][dd] && !tb.cnt[1][dd] && !tb.cnt[2][dd])
            continue;
        printf("  %-10s (%ld dq, %ld dk, %ld dv elements)", dec[dd], tb.cnt[0][dd], tb.cnt[1][dd], tb.cnt[2][dd]);
        for (int k = 0; k < NBK; k++)
            printf("  %s %.2g/%.2g/%.2g", bkernels[k].name, tb.r[k][0][dd], tb.r[k][1][dd], tb.r[k][2][dd]);
        printf("\n");
    }
}
END_TEST

/* ---- expected values with an uncertainty (ORACLE.md 3.10, 8.6) --------- */

/* Expected values moved by up to U (2^-20 relative) and declared within U:
   an honest kernel still passes, and a candidate beyond the widened bound
   still fails. */
START_TEST(uncertain_expected_gradients)
{
    nsx_case c;
    nsx_err err;
    ck_assert_msg(nsx_case_read("vectors/default/bwd_n2_paper.safetensors", &c, &err) == 0, "%s", err.msg);
    tcase t;
    view_of(&c, &t);
    t.dout = (double *)c.in.dout;
    const nsx_problem *p = &c.p;
    const int n = p->n;
    const size_t sizes[3] = {nsx_q_size(p), nsx_k_size(p), nsx_v_size(p)};
    double *ex[1 + 2 * NSX_MAX_ORDER], *un[1 + 2 * NSX_MAX_ORDER];
    const double *src[1 + 2 * NSX_MAX_ORDER] = {c.expected.dq};
    for (int m = 0; m < n; m++)
        src[1 + m] = c.expected.dk[m], src[1 + n + m] = c.expected.dv[m];
    rng r = {SEED + 77};
    for (int x = 0; x < 1 + 2 * n; x++) {
        size_t cnt = sizes[x == 0 ? 0 : x <= n ? 1 : 2];
        ex[x] = malloc(cnt * sizeof *ex[x]);
        un[x] = malloc(cnt * sizeof *un[x]);
        for (size_t e = 0; e < cnt; e++) {
            un[x][e] = fabs(src[x][e]) * 0x1p-20;
            ex[x][e] = src[x][e] + (rng_int(&r, 0, 1) ? un[x][e] : -un[x][e]) * 0.5;
        }
    }
    double *eo = malloc(nsx_o_size(p) * sizeof *eo), *uo = malloc(nsx_o_size(p) * sizeof *uo);
    double *el = malloc(nsx_lse_size(p) * sizeof *el), *ul = malloc(nsx_lse_size(p) * sizeof *ul);
    for (size_t e = 0; e < nsx_o_size(p); e++)
        uo[e] = fabs(c.expected.o[e]) * 0x1p-20, eo[e] = c.expected.o[e] + uo[e] * 0.5;
    for (size_t e = 0; e < nsx_lse_size(p); e++)
        ul[e] = fabs(c.expected.lse[e]) * 0x1p-20, el[e] = c.expected.lse[e] - ul[e] * 0.5;
    nsx_outputs exo = c.expected;
    exo.o = eo, exo.lse = el, exo.dq = ex[0];
    nsx_expected_unc unc = {.o = uo, .lse = ul, .dq = un[0]};
    for (int m = 0; m < n; m++) {
        exo.dk[m] = ex[1 + m], exo.dv[m] = ex[1 + n + m];
        unc.dk[m] = un[1 + m], unc.dv[m] = un[1 + n + m];
    }
    const ekernel *K = fwd_kernel("flash-bf16");
    double *o = malloc(nsx_o_size(p) * sizeof *o), *lse = malloc(nsx_lse_size(p) * sizeof *lse);
    grads g;
    grads_alloc(&g, p);
    run_kernel(K, &t, kernel_sel(&t), 4, o, lse);
    run_backward(&bkernels[1], BUG_NONE, &t, kernel_sel(&t), o, lse, &g);
    nsx_candidate cand = {.o = o, .lse = lse, .dq = g.dq};
    for (int m = 0; m < n; m++)
        cand.dk[m] = g.dk[m], cand.dv[m] = g.dv[m];
    nsx_model md = model_of("bf16");
    nsx_check_report rep, rep0;
    ck_assert_int_eq(nsx_check(p, &c.info, &c.in, &c.expected, &cand, &md, &rep0, &err), 0);
    ck_assert_int_eq(nsx_check_unc(p, &c.info, &c.in, &exo, &unc, &cand, &md, &rep, &err), 0);
    ck_assert_msg(rep.pass && rep0.pass && rep.grad_judged == rep0.grad_judged, "honest kernel with uncertainties");
    /* a candidate dq element moved beyond the widened bound fails */
    size_t at = 0;
    while (c.expected.dq[at] == 0)
        at++;
    double keep = g.dq[at];
    g.dq[at] = ex[0][at] + 4 * fabs(ex[0][at]) + 1;
    ck_assert_int_eq(nsx_check_unc(p, &c.info, &c.in, &exo, &unc, &cand, &md, &rep, &err), 0);
    ck_assert_msg(!rep.pass && rep.grad_failed == 1, "a wrong dq element with uncertainties");
    g.dq[at] = keep;
    grads_free(&g, p);
    for (int x = 0; x < 1 + 2 * n; x++)
        free(ex[x]), free(un[x]);
    free(eo), free(uo), free(el), free(ul), free(o), free(lse);
    nsx_case_free(&c);
}
END_TEST

/* ---- exact zeros and the vector's own values --------------------------- */

START_TEST(unreached_elements_must_be_exactly_zero)
{
    nsx_case c;
    nsx_err err;
    ck_assert_msg(nsx_case_read("vectors/default/bwd_n2_sel_empty.safetensors", &c, &err) == 0, "%s", err.msg);
    tcase t;
    view_of(&c, &t);
    grads g = {.dq = c.expected.dq};
    for (int m = 0; m < c.p.n; m++)
        g.dk[m] = c.expected.dk[m], g.dv[m] = c.expected.dv[m];
    nsx_check_report rep;
    ck_assert_int_eq(judge_grads(&t, &c.info, c.expected.o, c.expected.lse, &g, "f64", &rep, &err), 0);
    ck_assert_msg(rep.pass && rep.grad_zero > 0, "the vector's own values: %zu zeros", rep.grad_zero);
    /* the smallest nonzero at an element that no allowed tuple reaches */
    nsx_grad_bound gb = {0};
    nsx_bound_ctx bc;
    nsx_model md = model_of("bf16");
    ck_assert_int_eq(nsx_bound_init(&bc, &c.p, &c.in, &md, &err), 0);
    double *bk = malloc(nsx_k_size(&c.p) * sizeof *bk), *save;
    gb.dk[1] = bk;
    ck_assert_int_eq(nsx_bound_grads(&bc, c.in.sel, &c.expected, &gb, &err), 0);
    size_t zero = 0;
    while (zero < nsx_k_size(&c.p) && bk[zero] != 0)
        zero++;
    ck_assert_msg(zero < nsx_k_size(&c.p), "no unreached dk2 element");
    ck_assert(c.expected.dk[1][zero] == 0);
    save = c.expected.dk[1];
    double *bad = malloc(nsx_k_size(&c.p) * sizeof *bad);
    memcpy(bad, save, nsx_k_size(&c.p) * sizeof *bad);
    bad[zero] = 0x1p-149;
    g.dk[1] = bad;
    ck_assert_int_eq(judge_grads(&t, &c.info, c.expected.o, c.expected.lse, &g, "bf16", &rep, &err), 0);
    ck_assert_msg(!rep.pass && rep.grad_zero_failed == 1, "a nonzero unreached element passes");
    ck_assert_int_eq(rep.note_kind[0], NSX_NOTE_GRAD);
    bad[zero] = -0.0; /* either sign of zero */
    ck_assert_int_eq(judge_grads(&t, &c.info, c.expected.o, c.expected.lse, &g, "bf16", &rep, &err), 0);
    ck_assert(rep.pass);
    free(bad);
    free(bk);
    nsx_bound_free(&bc);
    nsx_case_free(&c);
}
END_TEST

/* Every preset passes the vector's own expected values, and a candidate one
   ulp of the output format away from RN_out of each gradient. */
START_TEST(expected_values_and_one_ulp_pass_every_preset)
{
    nsx_case c;
    nsx_err err;
    ck_assert_msg(nsx_case_read("vectors/default/bwd_n2_paper.safetensors", &c, &err) == 0, "%s", err.msg);
    tcase t;
    view_of(&c, &t);
    const char *models[] = {"bf16", "f16", "f32", "f64", "einsum-bf16", "triton-f32"};
    const int outf[] = {BF, H16, F32, F64, BF, F32};
    for (size_t x = 0; x < sizeof models / sizeof models[0]; x++) {
        grads g;
        grads_alloc(&g, &c.p);
        size_t nq = nsx_q_size(&c.p), nk = nsx_k_size(&c.p), nv = nsx_v_size(&c.p);
        for (size_t e = 0; e < nq; e++)
            g.dq[e] = c.expected.dq[e] == 0 ? 0 : R(c.expected.dq[e], outf[x]) + ulp_of(R(c.expected.dq[e], outf[x]), outf[x]);
        for (int m = 0; m < c.p.n; m++) {
            for (size_t e = 0; e < nk; e++)
                g.dk[m][e] = c.expected.dk[m][e] == 0 ? 0 : R(c.expected.dk[m][e], outf[x]) - ulp_of(R(c.expected.dk[m][e], outf[x]), outf[x]);
            for (size_t e = 0; e < nv; e++)
                g.dv[m][e] = c.expected.dv[m][e] == 0 ? 0 : R(c.expected.dv[m][e], outf[x]) + ulp_of(R(c.expected.dv[m][e], outf[x]), outf[x]);
        }
        nsx_check_report rep;
        int rc = judge_grads(&t, &c.info, c.expected.o, c.expected.lse, &g, models[x], &rep, &err);
        ck_assert_msg(rc == 0, "%s: %s", models[x], err.msg);
        if (!rep.pass)
            print_failures(models[x], &rep);
        ck_assert_msg(rep.pass, "one ulp under %s fails", models[x]);
        grads_free(&g, &c.p);
    }
    nsx_case_free(&c);
}
END_TEST

static Suite *grad_suite(void)
{
    Suite *s = suite_create("gradient oracle");
    TCase *tc = tcase_create("honest");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, honest_backward_kernels_pass_every_backward_vector);
    tcase_add_test(tc, honest_backward_kernels_pass_table_and_sweep);
    tcase_add_test(tc, tightness_per_decade_of_terms);
    suite_add_tcase(s, tc);
    tc = tcase_create("bugs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, planted_backward_bugs_fail);
    tcase_add_test(tc, gradient_leak_pairs_catch_key_leaks);
    tcase_add_test(tc, unreached_elements_must_be_exactly_zero);
    tcase_add_test(tc, uncertain_expected_gradients);
    tcase_add_test(tc, expected_values_and_one_ulp_pass_every_preset);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(grad_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
