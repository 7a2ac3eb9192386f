/* The emulated honest kernels and the oracle tests' problems (tests/emu.h). */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "tests/emu.h"

/* ---- emulated number formats ------------------------------------------ */

/* x rounded to nearest even in format f (NSX_FORMAT_*; NONE or F64: x),
   with gradual underflow and overflow to infinity. */
double R(double x, int f)
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
double ulp_of(double x, int f)
{
    static const int p[] = {53, 24, 11, 8}, emin[] = {-1022, -126, -14, -126};
    int e;
    frexp(x, &e);
    return ldexp(1.0, (e - 1 >= emin[f] ? e - 1 : emin[f]) - (p[f] - 1));
}

/* ---- emulated kernels ------------------------------------------------- */


const ekernel kernels[] = {
    {"naive-bf16", NAIVE, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NONE, NSX_FORMAT_BF16,
     NSX_FORMAT_BF16, NSX_FORMAT_F32, "bf16", 0},
    {"flash-bf16", FLASH, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NONE, NSX_FORMAT_BF16,
     NSX_FORMAT_BF16, NSX_FORMAT_F32, "bf16", 0},
    {"einsum-bf16", EINSUM, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NSX_FORMAT_BF16, NSX_FORMAT_BF16,
     NSX_FORMAT_BF16, NSX_FORMAT_BF16, "einsum-bf16", 0},
    {"naive-f16", NAIVE, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F32, NONE, NSX_FORMAT_F16, NSX_FORMAT_F16,
     NSX_FORMAT_F32, "f16", 0},
    {"flash-f16", FLASH, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F32, NONE, NSX_FORMAT_F16, NSX_FORMAT_F16,
     NSX_FORMAT_F32, "f16", 0},
    {"naive-f32", NAIVE, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NONE, NONE, NSX_FORMAT_F32,
     NSX_FORMAT_F32, "f32", 0},
    {"flash-f32", FLASH, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NONE, NONE, NSX_FORMAT_F32,
     NSX_FORMAT_F32, "f32", 0},
    {"flash-bf16/rough", FLASH, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NONE, NSX_FORMAT_BF16,
     NSX_FORMAT_BF16, NSX_FORMAT_F32, "bf16", 1},
    {"naive-f32/rough", NAIVE, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NONE, NONE, NSX_FORMAT_F32,
     NSX_FORMAT_F32, "f32", 1},
    /* the same without the output rounding: the tightness of the
       computational part of the bound alone */
    {"naive-bf16/o64", NAIVE, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NONE, NSX_FORMAT_BF16,
     NSX_FORMAT_F64, NSX_FORMAT_F64, "bf16,out=f64,lseout=f64", 0},
    {"flash-bf16/o64", FLASH, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NONE, NSX_FORMAT_BF16,
     NSX_FORMAT_F64, NSX_FORMAT_F64, "bf16,out=f64,lseout=f64", 0},
    {"naive-f32/o64", NAIVE, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NONE, NONE, NSX_FORMAT_F64,
     NSX_FORMAT_F64, "f32,out=f64,lseout=f64", 0},
    {"flash-f32/o64", FLASH, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NONE, NONE, NSX_FORMAT_F64,
     NSX_FORMAT_F64, "f32,out=f64,lseout=f64", 0},
};
_Static_assert(sizeof kernels / sizeof kernels[0] == NKERNELS, "NKERNELS counts kernels[]");

/* Rough arithmetic (ekernel.rough): what the bound allows and the tidy
   kernels never do.  Acc operations truncate (round toward zero) and flush
   results below the smallest normal to zero; exp, exp2 and log are off by
   up to 1.9 ulps (a pseudo-random function of the argument); the output conversions
   truncate. */
static double trunc_to(double x, int f)
{
    if (f == NONE || f == NSX_FORMAT_F64 || !isfinite(x) || x == 0)
        return x;
    double r = R(x, f);
    if (fabs(r) <= fabs(x))
        return r;
    /* the next value of f toward zero from r */
    double y = r - copysign(ulp_of(nextafter(fabs(r), 0), f), r);
    return y;
}

double RA(const ekernel *K, double x)
{
    if (!K->rough)
        return R(x, K->acc);
    double r = trunc_to(x, K->acc);
    return fabs(r) < 0x1p-126 && K->acc == NSX_FORMAT_F32 ? copysign(0.0, r) : r;
}

double EXPA(const ekernel *K, double x)
{
    if (!K->rough)
        return R(x, K->acc);
    /* the error is a function of the argument, as in a real exp: a
       pseudo-random error per call would make equal inputs give unequal
       bits, which no deterministic kernel does (the pairs presume it) */
    uint64_t h;
    memcpy(&h, &x, sizeof h);
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    double e = ((double)(h >> 11) * 0x1p-53 * 2 - 1) * 1.9; /* ulps, in (-1.9, 1.9) */
    double r = R(x, K->acc);
    if (r == 0 || r == 1 || !isfinite(r))
        return r; /* exp(0) = 1 exactly, as the bound assumes */
    return R(r + e * ulp_of(r, K->acc), K->acc);
}

double RO(const ekernel *K, double x)
{
    return K->rough ? trunc_to(x, K->out) : R(x, K->out);
}

double RL(const ekernel *K, double x)
{
    return K->rough ? trunc_to(x, K->lseout) : R(x, K->lseout);
}

/* K~_m[j, l] as a GEMM operand: rounded to in, biased in acc, then op. */
double key_op(const erow *r, int m, int j, int l)
{
    const ekernel *K = r->K;
    double x = R(r->t->k[m][nsx_k_at(r->p, r->b, j, r->g, l)], K->in);
    if (r->p->k_bias[m] != 0)
        x = RA(K, x + RA(K, r->p->k_bias[m]));
    return R(x, K->op);
}

double val_op(const erow *r, int m, int j, int c)
{
    const ekernel *K = r->K;
    double x = R(r->t->v[m][nsx_v_at(r->p, r->b, j, r->g, c)], K->in);
    if (r->p->v_bias[m] != 0)
        x = RA(K, x + RA(K, r->p->v_bias[m]));
    return R(x, K->op);
}

/* The reduced value W[J, c] (E5): elementwise in acc, rounded to op. */
double reduced(const erow *r, const int *J, int c)
{
    const ekernel *K = r->K;
    const int n = r->p->n;
    double w = val_op(r, 0, J[0], c);
    for (int m = 1; m < n; m++)
        w = r->p->reduce == NSX_REDUCE_PRODUCT ? R(RA(K, w * val_op(r, m, J[m], c)), K->op)
                                               : R(RA(K, w + val_op(r, m, J[m], c)), K->op);
    if (r->p->reduce == NSX_REDUCE_MEAN)
        w = R(w * RA(K, 1.0 / n), K->op);
    return w;
}

/* The raw score sum_l (Q s K~_1 ... K~_{n-1}) K~_n: the left operand built
   elementwise in op (FBGEMM's qk1 * scale), the GEMM accumulating in acc.
   with_scale 0: the scale is left to the caller. */
double raw_score(const erow *r, const int *J, int with_scale)
{
    const ekernel *K = r->K;
    const nsx_problem *p = r->p;
    const double s = R(RA(K, nsx_problem_score_scale(p)), K->op);
    double a = 0;
    for (int l = 0; l < p->d; l++) {
        double x = R(r->t->q[nsx_q_at(p, r->b, r->i, r->h, l)], K->in);
        if (with_scale)
            x = R(x * s, K->op);
        for (int m = 0; m < p->n - 1; m++)
            x = R(x * key_op(r, m, J[m], l), K->op);
        a = RA(K, a + x * key_op(r, p->n - 1, J[p->n - 1], l)); /* exact product, one rounding */
    }
    return a;
}

/* Every allowed tuple of row i, in lexicographic order (nsx_ref_allowed). */
int *row_tuples(const nsx_problem *p, const int32_t *sel_row, int i, size_t *N)
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
void naive_row(const erow *r, const int *list, size_t N, double *o, double *lse)
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
        T[t] = EXPA(K, exp(RA(K, T[t] - m))); /* now p_J */
        Z = RA(K, Z + T[t]);
    }
    const double os = RA(K, p->out_scale);
    for (int c = 0; c < p->dv; c++) {
        double a = 0;
        for (size_t t = 0; t < N; t++)
            a = RA(K, a + R(RA(K, T[t] / Z), K->w) * reduced(r, list + t * n, c));
        o[c] = RO(K, RA(K, a * os));
    }
    *lse = RL(K, RA(K, m + EXPA(K, log(Z))));
    free(T);
}

/* Online softmax over blocks of `block` tuples, base 2 with the scale
   folded into log2(e) (FlashAttention-2), unnormalized weights rounded to
   w before the value product, one division at the end. */
void flash_row(const erow *r, const int *list, size_t N, int block, double *o, double *lse)
{
    flash_row_planted(r, list, N, block, EMU_BUG_NONE, o, lse);
}

/* flash_row with one planted bug (tests/test_tightness.c, ORACLE.md 9.6):
   EMU_BUG_RESCALE adds a block's sum to l without multiplying l by alpha;
   EMU_BUG_DROP_TILE skips the tuples of the middle block; EMU_BUG_SCALE
   multiplies the outputs by 1 + 1e-3. */
void flash_row_planted(const erow *r, const int *list, size_t N, int block, int bug, double *o, double *lse)
{
    const ekernel *K = r->K;
    const nsx_problem *p = r->p;
    const int n = p->n, dv = p->dv;
    const size_t skip = N / 2 / (size_t)block * (size_t)block;
    const double c2 = RA(K, RA(K, nsx_problem_score_scale(p)) * RA(K, 1.4426950408889634));
    double m = -INFINITY, l = 0, *acc = calloc((size_t)dv, sizeof *acc), *pb = malloc((size_t)block * sizeof *pb);
    for (size_t t0 = 0; t0 < N; t0 += (size_t)block) {
        size_t t1 = t0 + (size_t)block < N ? t0 + (size_t)block : N;
        if (bug == EMU_BUG_DROP_TILE && t0 == skip && N > (size_t)block)
            continue;
        double mnew = m;
        for (size_t t = t0; t < t1; t++) {
            pb[t - t0] = RA(K, raw_score(r, list + t * n, 0) * c2);
            mnew = fmax(mnew, pb[t - t0]);
        }
        double alpha = m == -INFINITY ? 0 : EXPA(K, exp2(RA(K, m - mnew))), lb = 0;
        for (size_t t = t0; t < t1; t++) {
            pb[t - t0] = EXPA(K, exp2(RA(K, pb[t - t0] - mnew)));
            lb = RA(K, lb + pb[t - t0]);
        }
        l = bug == EMU_BUG_RESCALE && m != -INFINITY ? RA(K, l + lb) : RA(K, RA(K, alpha * l) + lb);
        for (int c = 0; c < dv; c++) {
            double s = 0;
            for (size_t t = t0; t < t1; t++)
                s = RA(K, s + R(pb[t - t0], K->w) * reduced(r, list + t * n, c));
            acc[c] = RA(K, RA(K, acc[c] * alpha) + s);
        }
        m = mnew;
    }
    const double os = RA(K, p->out_scale);
    for (int c = 0; c < dv; c++)
        o[c] = RO(K, RA(K, RA(K, acc[c] / l) * os) * (bug == EMU_BUG_SCALE ? 1 + 1e-3 : 1.0));
    *lse = RL(K, RA(K, RA(K, m * RA(K, 0.69314718055994531)) + EXPA(K, log(l))));
    free(acc);
    free(pb);
}

/* A plain einsum pipeline: scores rounded to int, the scale applied in int,
   softmax in acc with normalized weights rounded to w, then the value
   contraction one dimension at a time (product reducer), every partial
   result rounded to int; LSE as torch.logsumexp's composite of int tensors. */
void einsum_row(const erow *r, const int *list, size_t N, double *o, double *lse)
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
    /* torch.logsumexp on the int score tensor is a composite (amax, sub,
       exp, sum, log, add): every step's result is an int tensor */
    double l = 0;
    for (size_t t = 0; t < N; t++)
        l = RA(K, l + R(EXPA(K, exp(R(T[t] - m, K->inter))), K->inter));
    double lse_composite = RL(K, R(m + R(log(R(l, K->inter)), K->inter), K->inter));
    for (size_t t = 0; t < N; t++) {
        T[t] = EXPA(K, exp(RA(K, T[t] - m)));
        Z = RA(K, Z + T[t]);
    }
    size_t dense = 1;
    for (int x = 0; x < n; x++)
        dense *= (size_t)L;
    double *Y = calloc(dense * (size_t)dv, sizeof *Y); /* [j_1..j_n][c], j_1 slowest */
    for (size_t t = 0; t < N; t++) {
        size_t at = 0;
        for (int x = 0; x < n; x++)
            at = at * (size_t)L + (size_t)list[t * n + x];
        double a = R(RA(K, T[t] / Z), K->w);
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
                    a = RA(K, a + Y[((size_t)j * rest + y) * dv + c] * val_op(r, x, j, c));
                Y[y * dv + c] = R(a, K->inter);
            }
        dense = rest;
    }
    const double os = R(p->out_scale, K->inter);
    for (int c = 0; c < dv; c++)
        o[c] = RO(K, R(Y[c] * os, K->inter));
    *lse = lse_composite;
    free(T);
    free(Y);
}

/* The kernel's outputs for the whole problem; sel: S(i) lists or NULL. */
void run_kernel(const ekernel *K, const tcase *t, const int32_t *sel, int block, double *o, double *lse)
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

const pspec problems[] = {
    /* name                         n  B  L  H Hkv d dv red c dst windows     kb                 vb            os   ss  src k dims fmt bits frac qe ke ve shape kernels */
    {"n1 dense",                    1, 1, 12, 2, 2, 8, 4, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 window 3, GQA 4:1",        1, 1, 10, 4, 1, 8, 4, P, 1, 0, {3},       {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 causal off, window 2",     1, 2, 9, 1, 1, 5, 3, P, 0, 0, {2},        {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 biases, out_scale",        1, 1, 9, 2, 1, 4, 3, P, 1, 0, {0},        {0.25},            {1},          -0.75, 0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n1 d=1 dv=1",                 1, 1, 16, 1, 1, 1, 1, P, 1, 0, {0},       {0},               {0},           0,   0, 0, 0, 0, BF, 8, 5, 0, 0, 0, 0, KB},
    {"n2 dense",                    2, 1, 8, 2, 1, 8, 4, P, 1, 0, {0, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 SWA, Meta biases",         2, 1, 10, 2, 1, 4, 4, P, 1, 0, {5, 2},    {0, 0.25},         {0, 1},        0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    {"n2 causal off",               2, 1, 7, 1, 1, 3, 3, P, 0, 0, {3, 0},     {0},               {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
    /* w >= L is no restriction; i + w overflowed int in the bound's mask */
    {"n2 causal off, w1 INT_MAX",   2, 1, 6, 1, 1, 3, 3, P, 0, 0, {INT_MAX, 2}, {0},             {0},           0,   0, 0, 0, 0, BF, 8, 4, 0, 0, 0, 0, KB},
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
_Static_assert(sizeof problems / sizeof problems[0] == NPROBLEMS, "NPROBLEMS counts problems[]");

/* A random problem of kernel class cls (KB, KH, KF), drawn from r. */
void random_spec(rng *r, unsigned cls, pspec *s)
{
    static const double biases[] = {0, 0, 0.25, 1, -0.5, 0.1};
    static const double oscales[] = {0, 0, -0.75, 0.3};
    static const double sscales[] = {0, 0, 0, 0.5, 2};
    static const int maxL[] = {0, 14, 9, 6, 5};
    memset(s, 0, sizeof *s);
    s->name = "random";
    s->n = rng_int(r, 1, 4);
    s->B = rng_int(r, 1, 2);
    s->L = rng_int(r, 2, maxL[s->n]);
    s->Hkv = rng_int(r, 1, 2);
    s->H = s->Hkv * rng_int(r, 1, 2);
    s->d = rng_int(r, 1, 8);
    s->dv = rng_int(r, 1, 4);
    s->reduce = rng_int(r, 0, 2);
    s->causal = rng_int(r, 0, 3) != 0;
    s->distinct = rng_int(r, 0, 7) == 0;
    for (int m = 0; m < s->n; m++) {
        s->w[m] = rng_int(r, 0, 1) ? 0 : rng_int(r, 1, s->L);
        s->kb[m] = biases[rng_int(r, 0, 5)];
        s->vb[m] = biases[rng_int(r, 0, 5)];
    }
    s->out_scale = oscales[rng_int(r, 0, 3)];
    s->score_scale = sscales[rng_int(r, 0, 4)];
    int sel = rng_int(r, 0, 5);
    if (sel >= 4) {
        s->src = sel == 4 ? NSX_SEL_INDICES : NSX_SEL_SCORES;
        s->k = rng_int(r, 1, s->L);
        s->dims = (unsigned)rng_int(r, 1, (1 << s->n) - 1);
    }
    s->fmt = cls == KB ? NSX_FORMAT_BF16 : cls == KH ? NSX_FORMAT_F16 : NSX_FORMAT_F32;
    s->bits = cls == KB ? 8 : cls == KH ? 11 : 24;
    s->frac = s->bits - 1 + rng_int(r, 0, 3); /* |values| < 2^(1 - 0..3) */
    if (cls != KH) {
        s->qe = rng_int(r, -6, 3);
        s->ke = rng_int(r, -6, 3);
        s->ve = rng_int(r, -20, 20);
    }
    s->kernels = cls;
}

void scale_all(double *x, size_t count, int e)
{
    for (size_t t = 0; t < count; t++)
        x[t] = ldexp(x[t], e);
}

/* The problem of spec s with random inputs and its golden outputs.
   Returns 0, or 1 (t freed) when the reference reaches its precision cap:
   a random problem can put an output within 2^-40000 of a rounding
   boundary (a huge score gap over a reduced value that is a midpoint). */
int make_problem(const pspec *s, unsigned seed, tcase *t)
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
        tcase_random_sel(t, &r);
    nsx_err err;
    nsx_ref_opts opts = {.allow_nonfinite = 1};
    int rc = nsx_ref_forward(&t->p, &t->in, &t->out, &opts, NULL, &err);
    if (rc == NSX_E_PRECISION_CAP) {
        printf("%s: skipped: the reference reports %s\n", s->name, err.msg);
        tcase_free(t);
        return 1;
    }
    ck_assert_msg(rc == 0, "%s: reference: %s", s->name, err.msg);
    return 0;
}

/* The selection the kernel receives: given, or the golden computed one. */
const int32_t *kernel_sel(const tcase *t)
{
    return t->p.sel.source == NSX_SEL_NONE ? NULL : t->p.sel.source == NSX_SEL_INDICES ? t->sel : t->sel_out;
}

nsx_model model_of(const char *text)
{
    nsx_model m;
    nsx_err err;
    ck_assert_msg(nsx_model_parse(text, &m, &err) == 0, "%s", err.msg);
    return m;
}

void print_failures(const char *what, const nsx_check_report *rep)
{
    fprintf(stderr, "%s: %zu failures\n", what, rep->failures);
    for (int x = 0; x < rep->nnotes; x++)
        fprintf(stderr, "  %s\n", rep->notes[x]);
}

/* A committed vector as a tcase view (nothing owned: never tcase_free it). */
void view_of(const nsx_case *c, tcase *t)
{
    memset(t, 0, sizeof *t);
    t->p = c->p;
    t->in = c->in;
    t->out = c->expected;
    t->q = (double *)c->in.q;
    for (int m = 0; m < c->p.n; m++) {
        t->k[m] = (double *)c->in.k[m];
        t->v[m] = (double *)c->in.v[m];
    }
    t->sel = (int32_t *)c->in.sel;
    t->sel_out = (int32_t *)c->expected.sel;
}

int kernel_class(const ekernel *K)
{
    return K->in == NSX_FORMAT_BF16 ? KB : K->in == NSX_FORMAT_F16 ? KH : KF;
}
