/*
 * An emulated FP8 lightning indexer behind the kernel ABI (ABI 3), as
 * DeepSeek V3.2 computes it: idx_q and idx_k quantized per block of BLOCK
 * elements along di to FP8 with one float32 scale s = max(amax, 1e-4) / fmax
 * per block, the dot products of the FP8 values in float32 per block, each
 * block's sum times its two scales, relu/identity, the head weights and the
 * sum over heads in float32, then the top-k.  A deliberate independent
 * implementation (it shares no code with oracle/ or simd/).  The Makefile
 * builds one library per variant (-DFP8_NAME):
 *   honest   E4M3, block 16, declared so                (must pass)
 *   pow2     honest, each scale rounded up to a power of two (ue8m0; must pass)
 *   e5m2     honest in E5M2                             (must pass)
 *   tensor   one scale per tensor instead of per block  (must fail)
 *   block2x  blocks of 32 while declaring 16            (must fail)
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/kernel.h"

#define BLOCK 16
#if defined(FP8_e5m2)
#define FORMAT NSX_FORMAT_E5M2
#define P 3
#define EMIN (-14)
#define FMAX 57344.0f
#else
#define FORMAT NSX_FORMAT_E4M3
#define P 4
#define EMIN (-6)
#define FMAX 448.0f
#endif
#if defined(FP8_block2x)
#define QBLOCK (2 * BLOCK)
#else
#define QBLOCK BLOCK
#endif

static const nsx_kernel_info info = {
    .abi_version = 3,
    .name = "fp8-indexer-emulated",
    .input_format = NSX_FORMAT_F32,
    .accum_format = NSX_FORMAT_F32,
    .weights_format = NSX_FORMAT_F32,
    .output_format = NSX_FORMAT_F32,
    .max_order = 1,
    .features = 0,
    .indexer = NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL | NSX_IDX_RELU | NSX_IDX_IDENTITY | NSX_IDX_CAUSAL_OFF,
    .indexer_input_format = FORMAT,
    .indexer_accum_format = NSX_FORMAT_F32,
    .indexer_output_format = NSX_FORMAT_F32,
    .indexer_block = BLOCK,
};

const nsx_kernel_info *nsx_kernel_get_info(void)
{
    return &info;
}

int nsx_kernel_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    (void)p, (void)io;
    return NSX_KERNEL_UNSUPPORTED;
}

/* y rounded to the FP8 format, to nearest even, saturating at FMAX. */
static float fp8(float y)
{
    if (y == 0.0f)
        return y;
    int e;
    frexpf(y, &e); /* |y| in [2^(e-1), 2^e) */
    e -= 1;
    if (e < EMIN)
        e = EMIN;
    float quantum = ldexpf(1.0f, e - (P - 1));
    float r = nearbyintf(y / quantum) * quantum;
    return r > FMAX ? FMAX : r < -FMAX ? -FMAX : r;
}

/* The scale of x[0..n): max(amax, 1e-4) / FMAX (pow2: rounded up to a
   power of two). */
static float scale_of(const float *x, size_t n)
{
    float amax = 1e-4f;
    for (size_t t = 0; t < n; t++)
        amax = fabsf(x[t]) > amax ? fabsf(x[t]) : amax;
    float s = amax / FMAX;
#if defined(FP8_pow2)
    int e;
    float m = frexpf(s, &e);
    s = m == 0.5f ? s : ldexpf(1.0f, e);
#endif
    return s;
}

/* rows of x [rows][di] quantized in place: xq = fp8(x / s) and the scales
   s[row][block] (per tensor: one scale for all). */
static void quantize(const float *x, size_t rows, int di, float *xq, float *s)
{
    const int nb = (di + QBLOCK - 1) / QBLOCK;
#if defined(FP8_tensor)
    float st = scale_of(x, rows * (size_t)di);
#endif
    for (size_t r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            int l0 = b * QBLOCK, n = di - l0 < QBLOCK ? di - l0 : QBLOCK;
#if defined(FP8_tensor)
            float sc = st;
#else
            float sc = scale_of(x + r * di + l0, (size_t)n);
#endif
            s[r * nb + b] = sc;
            for (int l = l0; l < l0 + n; l++)
                xq[r * di + l] = fp8(x[r * di + l] / sc);
        }
}

static const float *rank_s;
static int by_rank(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (rank_s[x] != rank_s[y])
        return rank_s[x] > rank_s[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static int ascending(const void *a, const void *b)
{
    int x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int nsx_kernel_indexer(const nsx_indexer_problem *p, const nsx_indexer_io *io)
{
    if (p->act == NSX_IDX_ACT_SOFTMAX || p->topk < 1)
        return NSX_KERNEL_UNSUPPORTED;
    const int L = p->L, Hi = p->Hi, di = p->di, nb = (di + QBLOCK - 1) / QBLOCK;
    const size_t rows = (size_t)p->B * L;
    float *qq = malloc(rows * Hi * di * sizeof *qq), *kq = malloc(rows * di * sizeof *kq);
    float *qs = malloc(rows * Hi * nb * sizeof *qs), *ks = malloc(rows * nb * sizeof *ks);
    float *row = malloc((size_t)L * sizeof *row);
    int *order = malloc((size_t)L * sizeof *order);
    if (!qq || !kq || !qs || !ks || !row || !order) {
        free(qq), free(kq), free(qs), free(ks), free(row), free(order);
        return 3;
    }
    quantize(io->idx_q, rows * Hi, di, qq, qs);
    quantize(io->idx_k, rows, di, kq, ks);
    const float sc = (float)p->idx_scale;
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < L; i++) {
            const size_t bi = (size_t)b * L + i;
            const int C = p->causal ? i + 1 : L;
            for (int j = 0; j < C; j++) {
                const size_t bj = (size_t)b * L + j;
                float S = 0.0f;
                for (int h = 0; h < Hi; h++) {
                    const size_t qh = bi * Hi + h;
                    float x = 0.0f;
                    for (int blk = 0; blk < nb; blk++) {
                        float part = 0.0f;
                        for (int l = blk * QBLOCK; l < di && l < (blk + 1) * QBLOCK; l++)
                            part += qq[qh * di + l] * kq[bj * di + l];
                        x += part * qs[qh * nb + blk] * ks[bj * nb + blk];
                    }
                    x *= sc;
                    if (p->act == NSX_IDX_ACT_RELU && x < 0.0f)
                        x = 0.0f;
                    S += io->idx_w[bi * Hi + h] * x;
                }
                row[j] = S;
                if (io->scores)
                    io->scores[bi * L + j] = S;
            }
            if (!io->sel)
                continue;
            for (int j = 0; j < C; j++)
                order[j] = j;
            rank_s = row;
            qsort(order, (size_t)C, sizeof *order, by_rank);
            int32_t *sel = io->sel + bi * p->topk;
            int n = C < p->topk ? C : p->topk;
            for (int r = 0; r < p->topk; r++)
                sel[r] = r < n ? order[r] : -1;
            qsort(sel, (size_t)n, sizeof *sel, ascending);
        }
    free(qq), free(kq), free(qs), free(ks), free(row), free(order);
    return NSX_KERNEL_OK;
}
