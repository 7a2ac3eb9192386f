/* What the SIMD drivers share (simd/plan.h). */
#include <stdlib.h>
#include <string.h>

#include "simd/cands.h"
#include "simd/plan.h"
#include "simd/simd.h"
#include "simd/tiles.h"

void nsx_plan_sizes_init(nsx_plan_sizes *s, const nsx_kernel_problem *p)
{
    s->G = p->H / p->Hkv;
    s->dvp = (int)nsx_round_up((size_t)p->dv, 16);
    s->most = 1;
    for (int m = 0; m < p->n; m++) {
        s->cap[m] = nsx_cands_cap(p, m);
        if (s->cap[m] > s->most)
            s->most = s->cap[m];
        s->kb[m] = (float)p->k_bias[m];
        s->vb[m] = (float)p->v_bias[m];
    }
}

int nsx_plan_chunk(size_t per_key, int most, int nr)
{
    size_t fit = NSX_PANEL_BYTES / per_key / (size_t)nr * (size_t)nr;
    size_t need = nsx_round_up((size_t)most, (size_t)nr);
    return (int)(fit < (size_t)nr ? (size_t)nr : fit < need ? fit : need);
}

int nsx_plan_lists(const nsx_kernel_problem *p, int b, int i, int *sel_row, int *const *list,
                   int *cnt)
{
    int nsel = p->topk > 0 ? nsx_sel_row(p, b, i, sel_row) : 0;
    for (int m = 0; m < p->n; m++)
        cnt[m] = nsx_cands(p, m, i, sel_row, nsel, list[m]);
    return nsx_tile_empty(cnt, p->n);
}

int nsx_plan_threads(int threads, long units)
{
    int T = nsx_simd_threads(threads);
    return T > units ? (int)units : T;
}

void **nsx_plan_blocks(int T, size_t bytes)
{
    void **blocks = calloc((size_t)T, sizeof *blocks);
    for (int t = 0; blocks && t < T; t++) {
        if (!(blocks[t] = aligned_alloc(64, nsx_round_up(bytes, 64)))) {
            nsx_plan_blocks_free(blocks, T);
            return NULL;
        }
        memset(blocks[t], 0, bytes);
    }
    return blocks;
}

void nsx_plan_blocks_free(void **blocks, int T)
{
    for (int t = 0; blocks && t < T; t++)
        free(blocks[t]);
    free(blocks);
}
