/*
 * The portable bf16 tile (simd/bf16.h): plain C that performs VDPBF16PS's
 * documented arithmetic step by step, so the bf16 path runs, and is tested,
 * on any CPU, with the scores the AVX512_BF16 tile computes, bit for bit.
 *
 * VDPBF16PS (Intel SDM, vol. 2): for each float32 lane i,
 *     dst[i] += a.bf16[2i+1] * b.bf16[2i+1]      (one FMA)
 *     dst[i] += a.bf16[2i]   * b.bf16[2i]        (one FMA)
 * with round to nearest even on each accumulation, input subnormals
 * (both bf16 factors and the accumulator) read as zero and subnormal
 * results flushed to zero; MXCSR is neither read nor written.  A product
 * of two bf16 (8-bit significands) is exact in float32 unless it falls
 * below float32's normal range, and the FMA rounds only the sum, so each
 * step is fmaf with the flushes around it.  Flushing after the rounding
 * is x86's tininess-after-rounding.
 *
 * After the scores the tile is fwd_scalar.c's (the online softmax in
 * float32, expf: simd/softmax_scalar.h, shared), but for the product
 * reducer's value side, which is the same VDPBF16PS chain over key pairs,
 * its weights rounded to bf16 as VCVTNE2PS2BF16 rounds (the same SDM rules).
 */
#include <float.h>
#include <math.h>

#include "simd/bf16.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#error "simd/bf16_portable.c must be compiled without ISA flags (it is the portable variant)"
#endif

#define MR 4
#define NR 16
#define TILE nsx_bf16_tile
#define TILE_VP(t, r, dvp) ((t)->vp + (size_t)(r) * (dvp))
#include "simd/softmax_scalar.h"

/* x, or zero of its sign when x is subnormal (NaN and infinities stay). */
static inline float flush(float x)
{
    return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x;
}

static inline float lo(uint32_t w)
{
    return nsx_bf16_widen((uint16_t)(w & 0xffffu));
}

static inline float hi(uint32_t w)
{
    return nsx_bf16_widen((uint16_t)(w >> 16));
}

/* One lane of VDPBF16PS: acc plus the pair (a, b), high halves first. */
static inline float dp_step(float acc, uint32_t a, uint32_t b)
{
    acc = flush(fmaf(flush(hi(a)), flush(hi(b)), flush(acc)));
    return flush(fmaf(flush(lo(a)), flush(lo(b)), acc));
}

static float dot_portable(const uint32_t *a, const uint32_t *b, int d2)
{
    float acc = 0.0f;
    for (int p = 0; p < d2; p++)
        acc = dp_step(acc, a[p], b[p]);
    return acc;
}

static void tile_portable(const nsx_bf16_tile *t, nsx_row_state *st)
{
    const int d2 = t->d2, dvp = t->dvp, ldk = t->ldk;
    float s[MR][NR] = {{0}};
    for (int p = 0; p < d2; p++) {
        const uint32_t *k = t->kp + (size_t)p * ldk;
        for (int r = 0; r < MR; r++) {
            const uint32_t a = t->u[r * d2 + p];
            for (int c = 0; c < NR; c++)
                s[r][c] = dp_step(s[r][c], a, k[c]);
        }
    }
    const float *P = tile_softmax(t, s, dvp, st);
    if (!P) /* every tuple masked, or the sum reducer: done */
        return;
    /* Product: the weights as bf16 pairs of keys (2p, 2p + 1), as
       VCVTNE2PS2BF16 writes them (subnormal inputs read as zero, to
       nearest even, subnormal results flushed), then per value column the
       VDPBF16PS chain against the panel's pairs; acc += vp[r] o a. */
    const int np = (t->nc + 1) / 2;
    uint32_t pw[MR][NR / 2];
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NR / 2; p++)
            pw[r][p] = (uint32_t)nsx_bf16_round_ftz(flush(P[r * NR + 2 * p])) |
                       (uint32_t)nsx_bf16_round_ftz(flush(P[r * NR + 2 * p + 1])) << 16;
    for (int r = 0; r < MR; r++) {
        for (int x = 0; x < dvp; x++) {
            float a = 0.0f;
            for (int p = 0; p < np; p++)
                a = dp_step(a, pw[r][p], t->vpan2[(size_t)p * dvp + x]);
            st->acc[x] += t->vp[r * dvp + x] * a;
        }
    }
}

const nsx_bf16_kernels nsx_bf16_portable = {
    .variant = NSX_BF16_PORTABLE, .mr = MR, .nr = NR, .tile = tile_portable, .dot = dot_portable,
};
