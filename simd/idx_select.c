/*
 * The optimized indexer on a problem of the reference's kind
 * (simd/indexer.h, nsx_simd_select): binary64 views to float32, then
 * nsx_simd_indexer_isa.  Uses only the types of nsimplex/problem.h, no
 * functions of core/, so that the kernel's shared library stays
 * self-contained.
 */
#include <math.h>
#include <stdlib.h>

#include "nsimplex/problem.h"
#include "simd/indexer.h"
#include "simd/simd.h"

static float *to_f32(const double *x, size_t count)
{
    float *f = malloc((count ? count : 1) * sizeof *f);
    for (size_t t = 0; f && t < count; t++)
        f[t] = (float)x[t];
    return f;
}

int nsx_simd_select(const nsx_problem *p, const nsx_inputs *in, int32_t *sel, double *scores,
                    int threads, int isa)
{
    const nsx_selection *S = &p->sel;
    if (S->source != NSX_SEL_INDEXER && S->source != NSX_SEL_SCORES)
        return NSX_SIMD_UNSUPPORTED;
    if (isa < 0 && (isa = nsx_simd_isa(NULL, 0)) < 0)
        return NSX_SIMD_EISA;
    nsx_simd_idx_problem ip = {
        .B = p->B, .L = p->L, .source = S->source, .Hi = S->Hi, .di = S->di, .act = S->act,
        .idx_scale = S->idx_scale, .causal = p->causal, .k = S->k,
    };
    const size_t rows = (size_t)p->B * p->L, LL = rows * p->L;
    float *q = NULL, *k = NULL, *w = NULL, *s = NULL, *fs = NULL;
    int rc = NSX_SIMD_ENOMEM;
    if (S->source == NSX_SEL_INDEXER) {
        q = to_f32(in->idx_q, rows * S->Hi * S->di);
        k = to_f32(in->idx_k, rows * S->di);
        w = to_f32(in->idx_w, rows * S->Hi);
        if (!q || !k || !w)
            goto done;
    } else if (!(s = to_f32(in->idx_s, LL))) {
        goto done;
    }
    if (scores && !(fs = malloc(LL * sizeof *fs)))
        goto done;
    nsx_simd_idx_io io = {.idx_q = q, .idx_k = k, .idx_w = w, .idx_s = s, .sel = sel, .scores = fs};
    rc = nsx_simd_indexer_isa(&ip, &io, threads, isa);
    for (size_t t = 0; rc == NSX_SIMD_OK && fs && t < LL; t++)
        scores[t] = fs[t];
done:
    free(q), free(k), free(w), free(s), free(fs);
    return rc;
}
