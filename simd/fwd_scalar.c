/*
 * The portable tile (simd/kern.h): plain C, the fallback for a CPU without
 * AVX2 and the first rung of the ISA ladder the tests walk.  Built with the
 * baseline flags only; the ISA files are its faster twins.
 */
#include <math.h>

#include "simd/kern.h"
#include "simd/simd.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#error "simd/fwd_scalar.c must be compiled without ISA flags (it is the portable fallback)"
#endif

#define MR 4
#define NR 16
#define TILE nsx_tile
#define TILE_VP(t, r, dvp) ((t)->vp[r])
#include "simd/softmax_scalar.h"

static void tile_scalar(const nsx_tile *t, nsx_row_state *st)
{
    const int d = t->d, dvp = t->dvp, ldk = t->ldk;
    float s[MR][NR] = {{0}};
    /* Scores: row r of u against the panel's columns. */
    for (int l = 0; l < d; l++) {
        const float *k = t->kp + (size_t)l * ldk;
        for (int r = 0; r < MR; r++) {
            const float a = t->u[r][l];
            for (int c = 0; c < NR; c++)
                s[r][c] += a * k[c];
        }
    }
    const float *P = tile_softmax(t, s, dvp, st);
    if (!P) /* every tuple masked, or the sum reducer: done */
        return;
    /* Product: acc += sum_r vp[r] o (P[r,:] V). */
    for (int r = 0; r < MR; r++) {
        for (int x = 0; x < dvp; x++) {
            float a = 0.0f;
            for (int c = 0; c < t->nc; c++)
                a += P[r * NR + c] * t->vpan[(size_t)c * dvp + x];
            st->acc[x] += t->vp[r][x] * a;
        }
    }
}

static void mul_bias_scalar(float *dst, const float *a, const float *x, float bias, int len)
{
    for (int l = 0; l < len; l++)
        dst[l] = a[l] * (x[l] + bias);
}

static void add_bias_scalar(float *dst, const float *a, const float *x, float bias, int len)
{
    for (int l = 0; l < len; l++)
        dst[l] = a ? a[l] + (x[l] + bias) : x[l] + bias;
}

static void scale_scalar(float *dst, const float *x, float s, int len)
{
    for (int l = 0; l < len; l++)
        dst[l] = s * x[l];
}

static void exp_scalar(float *x, int len)
{
    for (int l = 0; l < len; l++)
        x[l] = expf(x[l]);
}

const nsx_isa_kernels nsx_kernels_scalar = {
    .isa = NSX_ISA_SCALAR, .mr = MR, .nr = NR,
    .tile = tile_scalar, .mul_bias = mul_bias_scalar, .add_bias = add_bias_scalar,
    .scale = scale_scalar, .exp_nonpos = exp_scalar,
};
