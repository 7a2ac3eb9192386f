/*
 * The portable indexer tile (simd/idx_kern.h): plain C, the fallback for a
 * CPU without AVX2 and the first rung of the ISA ladder the tests walk.
 * Built with the baseline flags only (ISO C: no contraction into FMAs).
 */
#include <math.h>

#include "simd/idx_kern.h"
#include "simd/indexer.h"
#include "simd/simd.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#error "simd/idx_scalar.c must be compiled without ISA flags (it is the portable fallback)"
#endif

#define NR 8

static void tile_scalar(const nsx_idx_tile *t)
{
    float s[NR] = {0};
    for (int h = 0; h < t->Hi; h++) {
        const float *q = t->q + (size_t)h * t->di;
        float x[NR] = {0};
        for (int l = 0; l < t->di; l++)
            for (int c = 0; c < NR; c++)
                x[c] += q[l] * t->kp[l * NR + c];
        for (int c = 0; c < NR; c++) {
            x[c] *= t->scale;
            if (t->x)
                t->x[h * NR + c] = x[c];
            else
                s[c] += t->w[h] * (t->act == NSX_SIMD_ACT_RELU ? fmaxf(x[c], 0.0f) : x[c]);
        }
    }
    for (int c = 0; c < NR && t->s; c++)
        t->s[c] = s[c];
}

static uint32_t above_scalar(const float *s, int n, float thr)
{
    uint32_t bits = 0;
    for (int c = 0; c < n; c++)
        if (s[c] > thr)
            bits |= 1u << c;
    return bits;
}

static void exp_scalar(float *x, int len)
{
    for (int l = 0; l < len; l++)
        x[l] = expf(x[l]);
}

const nsx_idx_kernels nsx_idx_kernels_scalar = {
    .isa = NSX_ISA_SCALAR, .nr = NR, .tile = tile_scalar, .above = above_scalar, .exp_nonpos = exp_scalar,
};
