/* What the SIMD implementation accepts, and what it declares (simd/simd.h). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>

#include "nsimplex/problem.h"
#include "simd/simd.h"

static const nsx_kernel_info simd_info = {
    .abi_version = NSX_KERNEL_ABI_VERSION,
    .name = "nsimplex-simd",
    .input_format = NSX_FORMAT_F32,
    .accum_format = NSX_FORMAT_F32,
    .weights_format = NSX_FORMAT_F32,
    .output_format = NSX_FORMAT_F32,
    .max_order = NSX_MAX_ORDER,
    .features = NSX_FEAT_WINDOWS | NSX_FEAT_SELECTION | NSX_FEAT_GQA | NSX_FEAT_CAUSAL_OFF |
                NSX_FEAT_DISTINCT | NSX_FEAT_BIASES | NSX_FEAT_SUM | NSX_FEAT_MEAN |
                NSX_FEAT_LSE,
    .indexer = NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL | NSX_IDX_RELU | NSX_IDX_SOFTMAX | NSX_IDX_IDENTITY |
               NSX_IDX_CAUSAL_OFF,
    .indexer_input_format = NSX_FORMAT_F32,
    .indexer_accum_format = NSX_FORMAT_F32,
    .indexer_output_format = NSX_FORMAT_F32,
    .backward_max_order = NSX_MAX_ORDER,
    .backward_features = NSX_FEAT_WINDOWS | NSX_FEAT_SELECTION | NSX_FEAT_GQA | NSX_FEAT_CAUSAL_OFF |
                         NSX_FEAT_DISTINCT | NSX_FEAT_BIASES | NSX_FEAT_SUM | NSX_FEAT_MEAN,
    .backward_accum_format = NSX_FORMAT_F32,
    .backward_output_format = NSX_FORMAT_F32,
};

const nsx_kernel_info *nsx_simd_info(void)
{
    return &simd_info;
}

#define WHY(...) (why ? (void)snprintf(why, whylen, __VA_ARGS__) : (void)0, -1)

/* a * b * c * e elements of 4 bytes stay indexable (and far from overflow). */
static int too_large(size_t a, size_t b, size_t c, size_t e)
{
    size_t x;
    return __builtin_mul_overflow(a, b, &x) || __builtin_mul_overflow(x, c, &x) ||
           __builtin_mul_overflow(x, e, &x) || x > (size_t)PTRDIFF_MAX / 8;
}

/* Deliberate independent copy of core/problem.c's checks: simd/ is code under test. */
int nsx_simd_check(const nsx_kernel_problem *p, const nsx_kernel_io *io, char *why,
                   size_t whylen)
{
    if (!p || !io)
        return WHY("no problem or no buffers");
    if (p->n < 1 || p->n > NSX_MAX_ORDER)
        return WHY("n = %d is outside 1..%d", p->n, NSX_MAX_ORDER);
    const int dims[] = {p->B, p->L, p->H, p->Hkv, p->d, p->dv};
    const char *names[] = {"B", "L", "H", "Hkv", "d", "dv"};
    for (int t = 0; t < 6; t++)
        if (dims[t] < 1 || dims[t] > NSX_MAX_DIM)
            return WHY("%s = %d is outside 1..%d", names[t], dims[t], NSX_MAX_DIM);
    if (p->H % p->Hkv)
        return WHY("H = %d is not a multiple of Hkv = %d", p->H, p->Hkv);
    if (too_large((size_t)p->B, (size_t)p->L, (size_t)p->H, (size_t)(p->d > p->dv ? p->d : p->dv)))
        return WHY("the tensors are too large to index");
    if (p->reduce < NSX_REDUCE_PRODUCT || p->reduce > NSX_REDUCE_MEAN)
        return WHY("reduce = %d is not 0, 1 or 2", p->reduce);
    if ((p->causal != 0 && p->causal != 1) || (p->distinct != 0 && p->distinct != 1))
        return WHY("causal and distinct must be 0 or 1");
    if (!isfinite(p->score_scale) || !isfinite(p->out_scale))
        return WHY("score_scale and out_scale must be finite");
    for (int m = 0; m < p->n; m++) {
        if (p->window[m] < 0)
            return WHY("window %d = %d is negative", m + 1, p->window[m]);
        if (!isfinite(p->k_bias[m]) || !isfinite(p->v_bias[m]))
            return WHY("a bias of dimension %d is not finite", m + 1);
    }
    if (p->topk < 0 || p->topk > NSX_MAX_DIM)
        return WHY("topk = %d is outside 0..%d", p->topk, NSX_MAX_DIM);
    if (p->topk > 0) {
        if (!p->sel)
            return WHY("topk = %d but no sel", p->topk);
        if (p->sel_dims == 0 || (p->sel_dims >> p->n) != 0)
            return WHY("sel_dims 0x%x is not a nonempty subset of the %d dimensions",
                       p->sel_dims, p->n);
        if (too_large((size_t)p->B, (size_t)p->L, (size_t)p->topk, 1))
            return WHY("sel is too large to index");
    }
    if (!io->q || !io->o)
        return WHY("q or o is NULL");
    for (int m = 0; m < p->n; m++)
        if (!io->k[m] || !io->v[m])
            return WHY("k%d or v%d is NULL", m + 1, m + 1);
    return 0;
}

int nsx_simd_threads(int threads)
{
    return threads > 0 ? threads : omp_get_max_threads();
}
