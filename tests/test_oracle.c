/*
 * The oracle (oracle/): emulated honest kernels pass every vector under
 * their model and their worst error/bound ratio is reported (the tightness
 * of docs/ORACLE.md section 6); planted bugs fail, each by the check meant
 * to catch it; the selection, empty slices, non-finite values,
 * applicability and the --model syntax.
 *
 * The emulated kernels share nothing with the oracle: their own rounding
 * (round to nearest even with gradual underflow, written here), their own
 * tuple loop over nsx_ref_allowed, their own order of operations.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "oracle/bound.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "tests/harness.h"

#define SEED 20261124u
#define NONE (-1)

/* ---- emulated number formats ------------------------------------------ */

/* x rounded to nearest even in format f (NSX_FORMAT_*; NONE or F64: x),
   with gradual underflow and overflow to infinity. */
static double R(double x, int f)
{
    static const struct { int p, emin; double max; } t[] = {
        [NSX_FORMAT_F32] = {24, -126, FLT_MAX},
        [NSX_FORMAT_F16] = {11, -14, 65504.0},
        [NSX_FORMAT_BF16] = {8, -126, 0x1.fep127},
    };
    if (f == NONE || f == NSX_FORMAT_F64 || x == 0 || !isfinite(x))
        return x;
    int e;
    frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    int q = (e - 1 >= t[f].emin ? e - 1 : t[f].emin) - (t[f].p - 1); /* exponent of the ulp */
    double r = ldexp(nearbyint(ldexp(x, -q)), q);
    return fabs(r) > t[f].max ? copysign(INFINITY, x) : r;
}

/* One ulp of format f at binary64 value x (x representable in f). */
static __attribute__((unused)) double ulp_of(double x, int f)
{
    static const int p[] = {53, 24, 11, 8}, emin[] = {-1022, -126, -14, -126};
    int e;
    frexp(x, &e);
    return ldexp(1.0, (e - 1 >= emin[f] ? e - 1 : emin[f]) - (p[f] - 1));
}

/* ---- emulated kernels ------------------------------------------------- */

enum { NAIVE, FLASH, EINSUM };

typedef struct ekernel {
    const char *name;
    int kind;
    int in, op, acc, inter, w, out, lseout; /* NSX_FORMAT_* or NONE */
    const char *model;                      /* what it is judged by */
} ekernel;

static const ekernel kernels[] = {
    {"naive-bf16", NAIVE, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NONE, NSX_FORMAT_BF16,
     NSX_FORMAT_BF16, NSX_FORMAT_F32, "bf16"},
    {"flash-bf16", FLASH, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NONE, NSX_FORMAT_BF16,
     NSX_FORMAT_BF16, NSX_FORMAT_F32, "bf16"},
    {"einsum-bf16", EINSUM, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NSX_FORMAT_BF16, NSX_FORMAT_BF16,
     NSX_FORMAT_BF16, NSX_FORMAT_BF16, "einsum-bf16"},
    {"naive-f16", NAIVE, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F32, NONE, NSX_FORMAT_F16, NSX_FORMAT_F16,
     NSX_FORMAT_F32, "f16"},
    {"flash-f16", FLASH, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F32, NONE, NSX_FORMAT_F16, NSX_FORMAT_F16,
     NSX_FORMAT_F32, "f16"},
    {"naive-f32", NAIVE, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NONE, NONE, NSX_FORMAT_F32,
     NSX_FORMAT_F32, "f32"},
    {"flash-f32", FLASH, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NONE, NONE, NSX_FORMAT_F32,
     NSX_FORMAT_F32, "f32"},
};
#define NKERNELS ((int)(sizeof kernels / sizeof kernels[0]))

/* What the kernel reads for one row. */
typedef struct erow {
    const ekernel *K;
    const nsx_problem *p;
    const tcase *t;
    int b, h, g, i;
} erow;

/* K~_m[j, l] as a GEMM operand: rounded to in, biased in acc, then op. */
static double key_op(const erow *r, int m, int j, int l)
{
    const ekernel *K = r->K;
    double x = R(r->t->k[m][nsx_k_at(r->p, r->b, j, r->g, l)], K->in);
    if (r->p->k_bias[m] != 0)
        x = R(x + R(r->p->k_bias[m], K->acc), K->acc);
    return R(x, K->op);
}

static double val_op(const erow *r, int m, int j, int c)
{
    const ekernel *K = r->K;
    double x = R(r->t->v[m][nsx_v_at(r->p, r->b, j, r->g, c)], K->in);
    if (r->p->v_bias[m] != 0)
        x = R(x + R(r->p->v_bias[m], K->acc), K->acc);
    return R(x, K->op);
}

/* The reduced value W[J, c] (E5): elementwise in acc, rounded to op. */
static double reduced(const erow *r, const int *J, int c)
{
    const ekernel *K = r->K;
    const int n = r->p->n;
    double w = val_op(r, 0, J[0], c);
    for (int m = 1; m < n; m++)
        w = r->p->reduce == NSX_REDUCE_PRODUCT ? R(R(w * val_op(r, m, J[m], c), K->acc), K->op)
                                               : R(R(w + val_op(r, m, J[m], c), K->acc), K->op);
    if (r->p->reduce == NSX_REDUCE_MEAN)
        w = R(w * R(1.0 / n, K->acc), K->op);
    return w;
}

/* The raw score sum_l (Q s K~_1 ... K~_{n-1}) K~_n: the left operand built
   elementwise in op (FBGEMM's qk1 * scale), the GEMM accumulating in acc.
   with_scale 0: the scale is left to the caller. */
static double raw_score(const erow *r, const int *J, int with_scale)
{
    const ekernel *K = r->K;
    const nsx_problem *p = r->p;
    const double s = R(R(nsx_problem_score_scale(p), K->acc), K->op);
    double a = 0;
    for (int l = 0; l < p->d; l++) {
        double x = R(r->t->q[nsx_q_at(p, r->b, r->i, r->h, l)], K->in);
        if (with_scale)
            x = R(x * s, K->op);
        for (int m = 0; m < p->n - 1; m++)
            x = R(x * key_op(r, m, J[m], l), K->op);
        a = R(a + x * key_op(r, p->n - 1, J[p->n - 1], l), K->acc); /* exact product, one rounding */
    }
    return a;
}

/* Every allowed tuple of row i, in lexicographic order (nsx_ref_allowed). */
static int *row_tuples(const nsx_problem *p, const int32_t *sel_row, int i, size_t *N)
{
    size_t total = 1, cnt = 0;
    for (int m = 0; m < p->n; m++)
        total *= (size_t)p->L;
    int *list = malloc(total * (size_t)p->n * sizeof *list), J[NSX_MAX_ORDER];
    for (size_t x = 0; x < total; x++) {
        size_t y = x;
        for (int m = p->n - 1; m >= 0; m--, y /= (size_t)p->L)
            J[m] = (int)(y % (size_t)p->L);
        if (nsx_ref_allowed(p, sel_row, i, J))
            memcpy(list + cnt++ * p->n, J, (size_t)p->n * sizeof *J);
    }
    *N = cnt;
    return list;
}

/* Two passes: max, exp, sum in acc; normalized weights rounded to w. */
static void naive_row(const erow *r, const int *list, size_t N, double *o, double *lse)
{
    const ekernel *K = r->K;
    const nsx_problem *p = r->p;
    const int n = p->n;
    double *T = malloc(N * sizeof *T), m = -INFINITY, Z = 0;
    for (size_t t = 0; t < N; t++) {
        T[t] = raw_score(r, list + t * n, 1);
        m = fmax(m, T[t]);
    }
    for (size_t t = 0; t < N; t++) {
        T[t] = R(exp(R(T[t] - m, K->acc)), K->acc); /* now p_J */
        Z = R(Z + T[t], K->acc);
    }
    const double os = R(p->out_scale, K->acc);
    for (int c = 0; c < p->dv; c++) {
        double a = 0;
        for (size_t t = 0; t < N; t++)
            a = R(a + R(R(T[t] / Z, K->acc), K->w) * reduced(r, list + t * n, c), K->acc);
        o[c] = R(R(a * os, K->acc), K->out);
    }
    *lse = R(R(m + R(log(Z), K->acc), K->acc), K->lseout);
    free(T);
}

/* Online softmax over blocks of `block` tuples, base 2 with the scale
   folded into log2(e) (FlashAttention-2), unnormalized weights rounded to
   w before the value product, one division at the end. */
static void flash_row(const erow *r, const int *list, size_t N, int block, double *o, double *lse)
{
    const ekernel *K = r->K;
    const nsx_problem *p = r->p;
    const int n = p->n, dv = p->dv;
    const double c2 = R(R(nsx_problem_score_scale(p), K->acc) * R(1.4426950408889634, K->acc), K->acc);
    double m = -INFINITY, l = 0, *acc = calloc((size_t)dv, sizeof *acc), *pb = malloc((size_t)block * sizeof *pb);
    for (size_t t0 = 0; t0 < N; t0 += (size_t)block) {
        size_t t1 = t0 + (size_t)block < N ? t0 + (size_t)block : N;
        double mnew = m;
        for (size_t t = t0; t < t1; t++) {
            pb[t - t0] = R(raw_score(r, list + t * n, 0) * c2, K->acc);
            mnew = fmax(mnew, pb[t - t0]);
        }
        double alpha = m == -INFINITY ? 0 : R(exp2(R(m - mnew, K->acc)), K->acc), lb = 0;
        for (size_t t = t0; t < t1; t++) {
            pb[t - t0] = R(exp2(R(pb[t - t0] - mnew, K->acc)), K->acc);
            lb = R(lb + pb[t - t0], K->acc);
        }
        l = R(R(alpha * l, K->acc) + lb, K->acc);
        for (int c = 0; c < dv; c++) {
            double s = 0;
            for (size_t t = t0; t < t1; t++)
                s = R(s + R(pb[t - t0], K->w) * reduced(r, list + t * n, c), K->acc);
            acc[c] = R(R(acc[c] * alpha, K->acc) + s, K->acc);
        }
        m = mnew;
    }
    const double os = R(p->out_scale, K->acc);
    for (int c = 0; c < dv; c++)
        o[c] = R(R(R(acc[c] / l, K->acc) * os, K->acc), K->out);
    *lse = R(R(R(m * R(0.69314718055994531, K->acc), K->acc) + R(log(l), K->acc), K->acc), K->lseout);
    free(acc);
    free(pb);
}

/* A plain einsum pipeline: scores rounded to int, the scale applied in int,
   softmax in acc with normalized weights rounded to w, then the value
   contraction one dimension at a time (product reducer), every partial
   result rounded to int. */
static void einsum_row(const erow *r, const int *list, size_t N, double *o, double *lse)
{
    const ekernel *K = r->K;
    const nsx_problem *p = r->p;
    const int n = p->n, L = p->L, dv = p->dv;
    const double s = R(nsx_problem_score_scale(p), K->inter);
    double *T = malloc(N * sizeof *T), m = -INFINITY, Z = 0;
    for (size_t t = 0; t < N; t++) {
        T[t] = R(R(raw_score(r, list + t * n, 0), K->inter) * s, K->inter);
        m = fmax(m, T[t]);
    }
    for (size_t t = 0; t < N; t++) {
        T[t] = R(exp(R(T[t] - m, K->acc)), K->acc);
        Z = R(Z + T[t], K->acc);
    }
    size_t dense = 1;
    for (int x = 0; x < n; x++)
        dense *= (size_t)L;
    double *Y = calloc(dense * (size_t)dv, sizeof *Y); /* [j_1..j_n][c], j_1 slowest */
    for (size_t t = 0; t < N; t++) {
        size_t at = 0;
        for (int x = 0; x < n; x++)
            at = at * (size_t)L + (size_t)list[t * n + x];
        double a = R(R(T[t] / Z, K->acc), K->w);
        for (int c = 0; c < dv; c++)
            Y[at * dv + c] = a;
    }
    /* contract j_1, then j_2, ...: Y[j_m..j_n][c] -> Y[j_{m+1}..j_n][c] */
    for (int x = 0; x < n; x++) {
        size_t rest = dense / (size_t)L;
        for (size_t y = 0; y < rest; y++)
            for (int c = 0; c < dv; c++) {
                double a = 0;
                for (int j = 0; j < L; j++)
                    a = R(a + Y[((size_t)j * rest + y) * dv + c] * val_op(r, x, j, c), K->acc);
                Y[y * dv + c] = R(a, K->inter);
            }
        dense = rest;
    }
    const double os = R(p->out_scale, K->inter);
    for (int c = 0; c < dv; c++)
        o[c] = R(R(Y[c] * os, K->inter), K->out);
    *lse = R(R(m + R(log(Z), K->acc), K->acc), K->lseout);
    free(T);
    free(Y);
}

/* The kernel's outputs for the whole problem; sel: S(i) lists or NULL. */
static void run_kernel(const ekernel *K, const tcase *t, const int32_t *sel, int block, double *o, double *lse)
{
    const nsx_problem *p = &t->p;
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            const int32_t *srow = sel ? sel + nsx_sel_at(p, b, i, 0) : NULL;
            size_t N;
            int *list = row_tuples(p, srow, i, &N);
            for (int h = 0; h < p->H; h++) {
                erow r = {K, p, t, b, h, nsx_kv_head(p, h), i};
                double *orow = o + nsx_o_at(p, b, i, h, 0), *l = lse + nsx_lse_at(p, b, h, i);
                if (N == 0) {
                    for (int c = 0; c < p->dv; c++)
                        orow[c] = 0;
                    *l = -INFINITY;
                } else if (K->kind == NAIVE) {
                    naive_row(&r, list, N, orow, l);
                } else if (K->kind == FLASH) {
                    flash_row(&r, list, N, block, orow, l);
                } else {
                    einsum_row(&r, list, N, orow, l);
                }
            }
            free(list);
        }
}

/* ---- problems ---------------------------------------------------------- */

enum { SHAPE_RANDOM, SHAPE_PEAKED, SHAPE_EQUAL_SCORES, SHAPE_EQUAL_KEYS };
/* which kernels judge a problem */
enum { KB = 1, KH = 2, KF = 4 };

typedef struct pspec {
    const char *name;
    int n, B, L, H, Hkv, d, dv, reduce, causal, distinct;
    int w[4];
    double kb[4], vb[4];
    double out_scale;   /* 0: 1 */
    double score_scale; /* 0: the exact 1/sqrt(d) */
    int src, k;         /* selection source and size (0: none) */
    unsigned dims;
    int fmt;            /* the vector's input format */
    int bits, frac;     /* inputs m 2^-frac, |m| < 2^bits */
    int qe, ke, ve;     /* extra binary exponents on q, k, v */
    int shape;
    unsigned kernels;
} pspec;

#define P NSX_REDUCE_PRODUCT
#define S NSX_REDUCE_SUM
#define M NSX_REDUCE_MEAN
#define BF NSX_FORMAT_BF16
#define H16 NSX_FORMAT_F16
#define F32 NSX_FORMAT_F32
#define F64 NSX_FORMAT_F64
#define GIV NSX_SEL_INDICES
#define SCO NSX_SEL_SCORES
#define IDX NSX_SEL_INDEXER

static const pspec problems[] = {
    /* name                         n  B  L  H Hkv d dv red c dst windows     kb                 vb            os   ss  src k dims fmt bits frac qe ke ve shape kernels */
    {"n1 dense",                    1, 1, 12, 2, 2, 8, 4, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 window 3, GQA 4:1",        1, 1, 10, 4, 1, 8, 4, P, 1, 0, {3},       {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 causal off, window 2",     1, 2, 9, 1, 1, 5, 3, P, 0, 0, {2},        {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 biases, out_scale",        1, 1, 9, 2, 1, 4, 3, P, 1, 0, {0},        {0.25},            {1},          -0.75, 0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 d=1 dv=1",                 1, 1, 16, 1, 1, 1, 1, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, BF, 8, 5, 0, 0, 0, 0, KB},
    {"n2 dense",                    2, 1, 8, 2, 1, 8, 4, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 SWA, Meta biases",         2, 1, 10, 2, 1, 4, 4, P, 1, 0, {5, 2},    {0, 0.25},         {0, 1},        0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 causal off",               2, 1, 7, 1, 1, 3, 3, P, 0, 0, {3, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 sum",                      2, 1, 8, 2, 2, 4, 3, S, 1, 0, {0, 0},     {0},               {0.5, -1},     0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 mean",                     2, 2, 7, 1, 1, 4, 3, M, 1, 0, {0, 4},     {0.125, 0},        {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 distinct (empty row 0)",   2, 1, 8, 1, 1, 4, 2, P, 1, 1, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 given selection dim 2",    2, 1, 10, 1, 1, 4, 2, P, 1, 0, {0, 0},    {0},               {0},           0,   0, GIV, 3, 2, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 given selection, empty",   2, 1, 9, 2, 1, 3, 2, P, 1, 0, {4, 0},     {0},               {0},           0,   0, GIV, 2, 3, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 top-k of given scores",    2, 1, 10, 1, 1, 4, 3, P, 1, 0, {0, 0},    {0},               {0},           0,   0, SCO, 4, 3, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 DSA relu indexer",         1, 1, 12, 2, 1, 4, 3, P, 1, 0, {0},       {0},               {0},           0,   0, IDX, 4, 1, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n3 windows",                  3, 1, 7, 1, 1, 3, 2, P, 1, 0, {3, 2, 0},  {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n3 sum, biases",              3, 1, 6, 2, 1, 3, 2, S, 1, 0, {0, 0, 0},  {0, 0.5, 0},       {0, 0, 0.25},  0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n4",                          4, 1, 5, 1, 1, 3, 2, P, 1, 0, {0, 0, 0, 0}, {0},             {0},           0,   0, 0, 0, 0, BF, 8, 5, 0, 0, 0, 0, KB},
    {"n4 mean, windows",            4, 1, 6, 1, 1, 2, 2, M, 1, 0, {2, 3, 0, 2}, {0},             {0},           0,   0, 0, 0, 0, BF, 8, 5, 0, 0, 0, 0, KB},
    {"n2 peaked scores",            2, 1, 8, 1, 1, 4, 3, P, 1, 0, {0, 0},     {0},               {0},           0,   8, 0, 0, 0, BF, 8, 4, 0, 0, 0, SHAPE_PEAKED, KB},
    {"n1 near one-hot",             1, 1, 12, 1, 1, 8, 4, P, 1, 0, {0},       {0},               {0},           0,   4, 0, 0, 0, BF, 8, 4, 0, 0, 0, SHAPE_PEAKED, KB},
    {"n2 all-equal scores",         2, 1, 8, 2, 1, 4, 3, P, 1, 0, {0, 0},     {0},               {0},           0, NAN, 0, 0, 0, BF, 8, 4, 0, 0, 0, SHAPE_EQUAL_SCORES, KB},
    {"n1 equal keys",               1, 1, 10, 1, 1, 4, 3, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, SHAPE_EQUAL_KEYS, KB},
    {"n2 tiny q (2^-60)",           2, 1, 7, 1, 1, 4, 2, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, -60, 0, 0, 0, KB},
    {"n2 tiny products underflow",  2, 1, 6, 1, 1, 4, 2, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, -50, -40, -30, 0, KB},
    {"n1 large q, small k",         1, 1, 9, 1, 1, 4, 3, P, 1, 0, {0},        {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 40, -40, 0, 0, KB},
    {"n2 large values (2^30)",      2, 1, 7, 1, 1, 4, 2, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 30, 0, KB},
    {"n2 tiny values (2^-100)",     2, 1, 7, 1, 1, 4, 2, S, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, -100, 0, KB},
    {"n2 large scores",             2, 1, 7, 1, 1, 4, 2, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 3, 2, 0, 0, KB},
    {"n2 f32 vector, bf16 kernel",  2, 1, 7, 2, 1, 4, 3, P, 1, 0, {0, 3},     {0, 0.1},          {0, 1},        0,   0, 0, 0, 0, F32, 20, 16, 0, 0, 0, 0, KB},
    {"n1 f64 vector",               1, 1, 9, 1, 1, 6, 3, P, 1, 0, {0},        {0},               {0},           0,   0, 0, 0, 0, F64, 30, 26, 0, 0, 0, 0, KB | KH | KF},
    {"f16: n1",                     1, 1, 12, 2, 1, 8, 4, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, H16, 11, 7, 0, 0, 0, 0, KH},
    {"f16: n2 SWA, biases",         2, 1, 9, 2, 1, 4, 4, P, 1, 0, {4, 2},     {0, 0.25},         {0, 1},        0,   0, 0, 0, 0, H16, 11, 8, 0, 0, 0, 0, KH},
    {"f16: n3 sum",                 3, 1, 6, 1, 1, 3, 2, S, 1, 0, {0, 0, 0},  {0},               {0},           0,   0, 0, 0, 0, H16, 10, 8, 0, 0, 0, 0, KH},
    {"f16: n2 small values",        2, 1, 7, 1, 1, 4, 2, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, H16, 11, 8, 0, 0, -8, 0, KH},
    {"f32: n1",                     1, 1, 12, 2, 1, 8, 4, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, F32, 24, 20, 0, 0, 0, 0, KF},
    {"f32: n1 d=1",                 1, 1, 10, 1, 1, 1, 2, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, F32, 24, 20, 0, 0, 0, 0, KF},
    {"f32: n2 SWA, biases",         2, 1, 9, 2, 1, 4, 4, P, 1, 0, {4, 2},     {0, 0.25},         {0, 1},        0,   0, 0, 0, 0, F32, 24, 20, 0, 0, 0, 0, KF},
    {"f32: n2 mean, causal off",    2, 1, 7, 1, 1, 3, 3, M, 0, 0, {0, 3},     {0},               {0},           0,   0, 0, 0, 0, F32, 24, 20, 0, 0, 0, 0, KF},
    {"f32: n3",                     3, 1, 6, 1, 1, 3, 2, P, 1, 0, {0, 0, 0},  {0},               {0},           0,   0, 0, 0, 0, F32, 24, 21, 0, 0, 0, 0, KF},
    {"f32: n2 selection",           2, 1, 9, 1, 1, 4, 2, P, 1, 0, {0, 0},     {0},               {0},           0,   0, GIV, 3, 3, F32, 24, 20, 0, 0, 0, 0, KF},
    {"f32: n2 tiny products",       2, 1, 6, 1, 1, 4, 2, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, F32, 24, 20, -50, -40, -30, 0, KF},
    {"f32: n1 peaked",              1, 1, 10, 1, 1, 8, 3, P, 1, 0, {0},       {0},               {0},           0,   4, 0, 0, 0, F32, 24, 20, 0, 0, 0, SHAPE_PEAKED, KF},
};
#define NPROBLEMS ((int)(sizeof problems / sizeof problems[0]))

/* A given selection: entries in -1..L, no valid index twice in a row. */
static void random_selection(tcase *t, rng *r)
{
    const nsx_problem *p = &t->p;
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            int32_t *row = t->sel + nsx_sel_at(p, b, i, 0);
            for (int x = 0; x < p->sel.k; x++) {
                int j, dup;
                do {
                    j = rng_int(r, -1, p->L);
                    dup = 0;
                    for (int y = 0; y < x; y++)
                        dup |= j >= 0 && j < p->L && row[y] == j;
                } while (dup);
                row[x] = j;
            }
        }
}

static void scale_all(double *x, size_t count, int e)
{
    for (size_t t = 0; t < count; t++)
        x[t] = ldexp(x[t], e);
}

/* The problem of spec s with random inputs and its golden outputs. */
static void make_problem(const pspec *s, unsigned seed, tcase *t)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = s->n, p.B = s->B, p.L = s->L, p.H = s->H, p.Hkv = s->Hkv, p.d = s->d, p.dv = s->dv;
    p.reduce = s->reduce, p.causal = s->causal, p.distinct = s->distinct;
    for (int m = 0; m < s->n; m++) {
        p.window[m] = s->w[m];
        p.k_bias[m] = s->kb[m];
        p.v_bias[m] = s->vb[m];
    }
    if (s->out_scale != 0)
        p.out_scale = s->out_scale;
    if (s->score_scale != 0) {
        p.score_scale_rsqrt_d = 0;
        p.score_scale = isnan(s->score_scale) ? 0.0 : s->score_scale;
    }
    if (s->src) {
        p.sel.source = s->src;
        p.sel.k = s->k;
        p.sel.dims = s->dims;
        if (s->src == NSX_SEL_INDEXER)
            p.sel.act = NSX_ACT_RELU, p.sel.idx_scale = 0.5, p.sel.Hi = 2, p.sel.di = 4;
    }
    p.input_format = s->fmt;
    rng r = {seed};
    tcase_alloc(t, &p);
    tcase_fill(t, &r, s->bits, s->frac);
    scale_all(t->q, nsx_q_size(&p), s->qe);
    for (int m = 0; m < p.n; m++) {
        scale_all(t->k[m], nsx_k_size(&p), s->ke);
        scale_all(t->v[m], nsx_v_size(&p), s->ve);
        if (s->shape == SHAPE_EQUAL_KEYS)
            for (size_t x = 0; x < nsx_k_size(&p); x++)
                t->k[m][x] = t->k[m][x % (size_t)p.d];
    }
    if (s->src == NSX_SEL_INDICES)
        random_selection(t, &r);
    nsx_err err;
    nsx_ref_opts opts = {0, 0, 1};
    int rc = nsx_ref_forward(&t->p, &t->in, &t->out, &opts, NULL, &err);
    ck_assert_msg(rc == 0, "%s: reference: %s", s->name, err.msg);
}

/* The selection the kernel receives: given, or the golden computed one. */
static const int32_t *kernel_sel(const tcase *t)
{
    return t->p.sel.source == NSX_SEL_NONE ? NULL : t->p.sel.source == NSX_SEL_INDICES ? t->sel : t->sel_out;
}

static nsx_model model_of(const char *text)
{
    nsx_model m;
    nsx_err err;
    ck_assert_msg(nsx_model_parse(text, &m, &err) == 0, "%s", err.msg);
    return m;
}

/* Runs the check; returns its code (the report in *rep). */
static int judge(const tcase *t, const nsx_case_info *info, const double *o, const double *lse,
                 const int32_t *sel, const char *model, nsx_check_report *rep, nsx_err *err)
{
    nsx_candidate cand = {o, lse, sel};
    nsx_model m = model_of(model);
    return nsx_check(&t->p, info, &t->in, &t->out, &cand, &m, rep, err);
}

static void print_failures(const char *what, const nsx_check_report *rep)
{
    fprintf(stderr, "%s: %zu failures\n", what, rep->failures);
    for (int x = 0; x < rep->nnotes; x++)
        fprintf(stderr, "  %s\n", rep->notes[x]);
}

/* ---- honest kernels pass, and the bound is tight --------------------- */

static int kernel_class(const ekernel *K)
{
    return K->in == NSX_FORMAT_BF16 ? KB : K->in == NSX_FORMAT_F16 ? KH : KF;
}

typedef struct tight {
    double o, lse;       /* worst error/bound ratios */
    int runs;
    char o_where[96], lse_where[96];
} tight;

/* Every problem under every kernel that applies: all pass; the worst
   ratios per kernel are printed (docs/ORACLE.md section 6 quotes them)
   and must exceed 0.01. */
START_TEST(honest_kernels_pass_with_tight_bounds)
{
    tight tk[NKERNELS];
    memset(tk, 0, sizeof tk);
    for (int pi = 0; pi < NPROBLEMS; pi++) {
        const pspec *s = &problems[pi];
        tcase t;
        make_problem(s, SEED + 17u * (unsigned)pi, &t);
        double *o = malloc(nsx_o_size(&t.p) * sizeof *o), *lse = malloc(nsx_lse_size(&t.p) * sizeof *lse);
        for (int ki = 0; ki < NKERNELS; ki++) {
            const ekernel *K = &kernels[ki];
            if (!(s->kernels & (unsigned)kernel_class(K)) || (K->kind == EINSUM && s->reduce != P))
                continue;
            int block = 1 + 5 * (pi % 4);
            run_kernel(K, &t, kernel_sel(&t), block, o, lse);
            nsx_check_report rep;
            nsx_err err;
            const int32_t *csel = t.p.sel.source >= NSX_SEL_INDEXER ? t.sel_out : NULL;
            int rc = judge(&t, NULL, o, lse, csel, K->model, &rep, &err);
            ck_assert_msg(rc == 0, "%s under %s: %s (seed %u)", s->name, K->name, err.msg, SEED);
            if (!rep.pass)
                print_failures(K->name, &rep);
            ck_assert_msg(rep.pass, "%s: honest kernel %s fails (seed %u)", s->name, K->name, SEED);
            tk[ki].runs++;
            if (rep.worst_o.found && rep.worst_o.ratio > tk[ki].o) {
                tk[ki].o = rep.worst_o.ratio;
                snprintf(tk[ki].o_where, sizeof tk[ki].o_where, "%s", s->name);
            }
            if (rep.worst_lse.found && rep.worst_lse.ratio > tk[ki].lse) {
                tk[ki].lse = rep.worst_lse.ratio;
                snprintf(tk[ki].lse_where, sizeof tk[ki].lse_where, "%s", s->name);
            }
        }
        free(o);
        free(lse);
        tcase_free(&t);
    }
    printf("worst honest error/bound ratios (seed %u):\n", SEED);
    printf("  %-12s %-12s %5s  %-8s %-30s %-8s %s\n", "kernel", "model", "runs", "o", "(problem)", "lse", "(problem)");
    for (int ki = 0; ki < NKERNELS; ki++) {
        printf("  %-12s %-12s %5d  %-8.3g %-30s %-8.3g %s\n", kernels[ki].name, kernels[ki].model, tk[ki].runs,
               tk[ki].o, tk[ki].o_where, tk[ki].lse, tk[ki].lse_where);
        ck_assert_msg(tk[ki].runs > 0, "%s never ran", kernels[ki].name);
        ck_assert_msg(tk[ki].o > 0.01, "%s: worst o ratio %g: the bound is more than 100x loose", kernels[ki].name,
                      tk[ki].o);
    }
}
END_TEST

static Suite *oracle_suite(void)
{
    Suite *s = suite_create("oracle");
    TCase *tc = tcase_create("honest");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, honest_kernels_pass_with_tight_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(oracle_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
