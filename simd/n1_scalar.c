/*
 * The n = 1 micro-kernels (simd/n1.h) in portable C (tune "scalar"): the
 * fallback without AVX2, and the plainest statement of what the ISA files'
 * tiles compute.  Built with the baseline flags only.
 */
#include <math.h>

#include "simd/kern.h"
#include "simd/n1.h"
#include "simd/simd.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#error "simd/n1_scalar.c must be compiled without ISA flags (it is the portable fallback)"
#endif

static void scores_scalar(const float *q, int ldq, int rows, const float *const *krow, int nc,
                          int d, float *S, int lds)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < nc; c++) {
            float s = 0.0f;
            for (int l = 0; l < d; l++)
                s += q[(size_t)r * ldq + l] * krow[c][l];
            S[(size_t)r * lds + c] = s;
        }
}

static void values_scalar(const float *P, int ldp, int rows, const float *const *vrow, int nc,
                          int dv, float *acc, int lda)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < nc; c++) {
            const float p = P[(size_t)r * ldp + c];
            for (int x = 0; x < dv; x++)
                acc[(size_t)r * lda + x] += p * vrow[c][x];
        }
}

static float max_scalar(const float *x, int len)
{
    float best = -INFINITY;
    for (int c = 0; c < len; c++) {
        if (x[c] != x[c])
            return NAN;
        best = x[c] > best ? x[c] : best;
    }
    return best;
}

static float expsum_scalar(float *x, int len, float m)
{
    for (int c = 0; c < len; c++)
        x[c] -= m;
    nsx_kernels_scalar.exp_nonpos(x, len);
    float sum = 0.0f;
    for (int c = 0; c < len; c++)
        sum += x[c];
    return sum;
}

static void mask_scalar(float *x, const unsigned char *mk, int len, float fill)
{
    for (int c = 0; c < len; c++)
        x[c] = mk[c] ? x[c] : fill;
}

static int finite_scalar(const float *x, int len)
{
    for (int c = 0; c < len; c++)
        if (!isfinite(x[c]))
            return 0;
    return 1;
}

const nsx_n1_kernels nsx_n1_scalar = {
    .name = "scalar", .cores = "any x86-64 core", .isa = NSX_ISA_SCALAR,
    .smr = 1, .snc = 1, .vmr = 1, .vnx = 1, .nb = 64, .rows = 8,
    .scores = scores_scalar, .values = values_scalar, .max = max_scalar, .expsum = expsum_scalar,
    .mask = mask_scalar, .finite = finite_scalar,
};
