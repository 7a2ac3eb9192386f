/*
 * A float32 test kernel with a backward pass (tests/test_fuzz.c): plain
 * loops over every tuple of L^n, the forward of docs/SPEC.md E1-E6 and the
 * flash-style backward of E7 (P recomputed from the saved LSE, Delta from
 * dO and O).  A deliberate independent copy of the equations, written for
 * the fuzzer's tests; the Makefile builds it honest (bwdk_honest.so) and
 * with one planted backward bug per PLANT_* macro:
 *   scale2   the score scale applied twice to dq
 *   nodelta  Delta left out of dT
 *   kmask    dk_m also takes the terms of masked tuples whose key j_m is in
 *            the future (the causal mask missing in the dk path only)
 *   qleak    dk_m of keys j >= 1 nudged by 2^-22 relative, up or down by the
 *            sign of q at position 0: a leak far inside the bound, which only
 *            the causal probe sees
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nsimplex/kernel.h"


#define FEATURES                                                                                            \
    (NSX_FEAT_WINDOWS | NSX_FEAT_SELECTION | NSX_FEAT_GQA | NSX_FEAT_CAUSAL_OFF | NSX_FEAT_DISTINCT |     \
     NSX_FEAT_BIASES | NSX_FEAT_SUM | NSX_FEAT_MEAN | NSX_FEAT_LSE)

static const nsx_kernel_info info = {
    .abi_version = NSX_KERNEL_ABI_VERSION,
    .name = "bwdk",
    .input_format = NSX_FORMAT_F32,
    .accum_format = NSX_FORMAT_F32,
    .weights_format = NSX_FORMAT_F32,
    .output_format = NSX_FORMAT_F32,
    .max_order = 4,
    .features = FEATURES,
    .backward_max_order = 4,
    .backward_features = FEATURES,
    .backward_accum_format = NSX_FORMAT_F32,
    .backward_output_format = NSX_FORMAT_F32,
};

const nsx_kernel_info *nsx_kernel_get_info(void)
{
    return &info;
}

/* Key j for query i in dimension m (0-based), by the spec's E2 terms. */
static int key_ok(const nsx_kernel_problem *p, int b, int i, int m, int j, int ignore_causal)
{
    if (p->causal && j > i && !ignore_causal)
        return 0;
    int w = p->window[m];
    if (w > 0 && !(i - w < j && (p->causal || j - i < w)))
        return 0;
    if (p->topk > 0 && (p->sel_dims >> m & 1u)) {
        const int32_t *row = p->sel + ((size_t)b * p->L + i) * p->topk;
        int found = 0;
        for (int r = 0; r < p->topk; r++)
            found |= row[r] == j;
        if (!found)
            return 0;
    }
    return 1;
}

static int tuple_ok(const nsx_kernel_problem *p, int b, int i, const int *J, int ignore_causal_dim)
{
    for (int m = 0; m < p->n; m++)
        if (!key_ok(p, b, i, m, J[m], m == ignore_causal_dim))
            return 0;
    for (int m = 0; p->distinct && m < p->n; m++)
        for (int m2 = m + 1; m2 < p->n; m2++)
            if (J[m] == J[m2])
                return 0;
    return 1;
}

/* The next tuple of 0..L-1 ^ n; 0 after the last. */
static int next(int *J, int n, int L)
{
    for (int m = n - 1; m >= 0; m--) {
        if (++J[m] < L)
            return 1;
        J[m] = 0;
    }
    return 0;
}

static size_t qat(const nsx_kernel_problem *p, int b, int i, int h)
{
    return (((size_t)b * p->L + i) * p->H + h) * p->d;
}
static size_t kat(const nsx_kernel_problem *p, int b, int j, int g)
{
    return (((size_t)b * p->L + j) * p->Hkv + g) * p->d;
}
static size_t vat(const nsx_kernel_problem *p, int b, int j, int g)
{
    return (((size_t)b * p->L + j) * p->Hkv + g) * p->dv;
}
static size_t oat(const nsx_kernel_problem *p, int b, int i, int h)
{
    return (((size_t)b * p->L + i) * p->H + h) * p->dv;
}

static float score(const nsx_kernel_problem *p, const float *q, const float *const *k, int b, int g, const int *J)
{
    float t = 0;
    for (int l = 0; l < p->d; l++) {
        float f = q[l];
        for (int m = 0; m < p->n; m++)
            f *= k[m][kat(p, b, J[m], g) + l] + (float)p->k_bias[m];
        t += f;
    }
    return (float)p->score_scale * t;
}

static float value(const nsx_kernel_problem *p, const float *const *v, int b, int g, const int *J, int c, int skip)
{
    float w = p->reduce == NSX_REDUCE_PRODUCT ? 1.0f : 0.0f;
    for (int m = 0; m < p->n; m++) {
        if (m == skip)
            continue;
        float x = v[m][vat(p, b, J[m], g) + c] + (float)p->v_bias[m];
        w = p->reduce == NSX_REDUCE_PRODUCT ? w * x : w + x;
    }
    return w;
}

int nsx_kernel_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    const int G = p->H / p->Hkv;
    const float den = p->reduce == NSX_REDUCE_MEAN ? (float)p->n : 1.0f;
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->L; i++) {
                const int g = h / G;
                const float *q = io->q + qat(p, b, i, h);
                float *o = io->o + oat(p, b, i, h);
                float mx = -INFINITY, s = 0;
                int J[NSX_MAX_ORDER] = {0};
                do
                    if (tuple_ok(p, b, i, J, -1))
                        mx = fmaxf(mx, score(p, q, io->k, b, g, J));
                while (next(J, p->n, p->L));
                for (int c = 0; c < p->dv; c++)
                    o[c] = 0;
                if (mx == -INFINITY) {
                    if (io->lse)
                        io->lse[((size_t)b * p->H + h) * p->L + i] = -INFINITY;
                    continue;
                }
                memset(J, 0, sizeof J);
                do
                    if (tuple_ok(p, b, i, J, -1)) {
                        float e = expf(score(p, q, io->k, b, g, J) - mx);
                        s += e;
                        for (int c = 0; c < p->dv; c++)
                            o[c] += e * value(p, io->v, b, g, J, c, -1);
                    }
                while (next(J, p->n, p->L));
                for (int c = 0; c < p->dv; c++)
                    o[c] = (float)p->out_scale * (o[c] / s) / den;
                if (io->lse)
                    io->lse[((size_t)b * p->H + h) * p->L + i] = mx + logf(s);
            }
    return NSX_KERNEL_OK;
}

int nsx_kernel_backward(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io)
{
    const int G = p->H / p->Hkv;
    const float den = p->reduce == NSX_REDUCE_MEAN ? (float)p->n : 1.0f, s = (float)p->score_scale;
    const float os = (float)p->out_scale;
    memset(io->dq, 0, (size_t)p->B * p->L * p->H * p->d * sizeof(float));
    for (int m = 0; m < p->n; m++) {
        memset(io->dk[m], 0, (size_t)p->B * p->L * p->Hkv * p->d * sizeof(float));
        memset(io->dv[m], 0, (size_t)p->B * p->L * p->Hkv * p->dv * sizeof(float));
    }
    if (!io->lse)
        return 2;
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->L; i++) {
                const int g = h / G;
                const float lse = io->lse[((size_t)b * p->H + h) * p->L + i];
                if (lse == -INFINITY)
                    continue;
                const float *q = io->q + qat(p, b, i, h), *dO = io->dout + oat(p, b, i, h);
                const float *o = io->o + oat(p, b, i, h);
                float *dq = io->dq + qat(p, b, i, h);
                float delta = 0;
                for (int c = 0; c < p->dv; c++)
                    delta += dO[c] * o[c];
#if defined(PLANT_nodelta)
                delta = 0;
#endif
                int J[NSX_MAX_ORDER] = {0};
                do {
                    int ok = tuple_ok(p, b, i, J, -1), kdim = -1;
#if defined(PLANT_kmask)
                    /* a tuple masked only by the causal edge in one
                       dimension still feeds that dimension's dk */
                    for (int m = 0; !ok && m < p->n; m++)
                        if (tuple_ok(p, b, i, J, m))
                            kdim = m;
#endif
                    if (!ok && kdim < 0)
                        continue;
                    const float P = ok ? expf(score(p, q, io->k, b, g, J) - lse)
                                       : expf(fminf(score(p, q, io->k, b, g, J) - lse, 0.0f));
                    float dP = 0;
                    for (int c = 0; c < p->dv; c++)
                        dP += dO[c] * value(p, io->v, b, g, J, c, -1);
                    dP = os * dP / den;
                    const float dT = P * (dP - delta);
                    for (int l = 0; l < p->d; l++) {
                        float all = s;
                        for (int m = 0; m < p->n; m++)
                            all *= io->k[m][kat(p, b, J[m], g) + l] + (float)p->k_bias[m];
#if defined(PLANT_scale2)
                        all *= s;
#endif
                        if (ok)
                            dq[l] += dT * all;
                        for (int m = 0; m < p->n; m++) {
                            if (!ok && m != kdim)
                                continue;
                            float co = s * q[l];
                            for (int m2 = 0; m2 < p->n; m2++)
                                if (m2 != m)
                                    co *= io->k[m2][kat(p, b, J[m2], g) + l] + (float)p->k_bias[m2];
                            io->dk[m][kat(p, b, J[m], g) + l] += dT * co;
                        }
                    }
                    for (int c = 0; ok && c < p->dv; c++)
                        for (int m = 0; m < p->n; m++) {
                            float dW = p->reduce == NSX_REDUCE_PRODUCT ? value(p, io->v, b, g, J, c, m) : 1.0f;
                            io->dv[m][vat(p, b, J[m], g) + c] += P * os * dO[c] * dW / den;
                        }
                } while (next(J, p->n, p->L));
            }
#if defined(PLANT_qleak)
    for (int b = 0; b < p->B; b++)
        for (int j = 1; j < p->L; j++)
            for (int g = 0; g < p->Hkv; g++)
                for (int l = 0; l < p->d; l++) {
                    const float q0 = io->q[qat(p, b, 0, g * G) + l];
                    for (int m = 0; m < p->n; m++)
                        io->dk[m][kat(p, b, j, g) + l] *= 1.0f + (q0 > 0 ? 0x1p-22f : -0x1p-22f);
                }
#endif
    return NSX_KERNEL_OK;
}
