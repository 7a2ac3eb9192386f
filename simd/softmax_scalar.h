/*
 * The online softmax of the portable tiles (simd/fwd_scalar.c and
 * simd/bf16_portable.c): one definition of how a tile's scores update a
 * query head's running state, so that the bf16 variant weights its tuples
 * as the float32 tile does.  A template: define MR, NR and TILE (the
 * tile's type, nsx_tile or nsx_bf16_tile: both name the fields read here
 * alike) and TILE_VP(t, r, dvp) (the address of row r's dvp values: the
 * float32 tile holds row addresses, the bf16 tile one block) before
 * including; include only from a file built without ISA flags.
 */
#ifndef NSX_SIMD_SOFTMAX_SCALAR_H
#define NSX_SIMD_SOFTMAX_SCALAR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "simd/kern.h"

/*
 * The tile's scores s [MR][NR] into st: the running max (rescaled when an
 * allowed score exceeds it), the weights P[r][c] = exp(s[r][c] - max), 0
 * where bit c of t->mask[r] is clear, into t->ptile [MR][NR], and their
 * total into st->sum; for the sum reducer (t->sum) also acc += each row's
 * total times t->vp[r] (dvp = t->dvp) and t->colacc[0..nc) += the column
 * totals.  Returns the weights when the product reducer's value side is
 * left to the caller, NULL when the tile is done: every tuple masked
 * (nothing changed) or the sum reducer.
 */
static inline __attribute__((always_inline)) const float *
tile_softmax(const TILE *t, float s[MR][NR], int dvp, nsx_row_state *st)
{
    float tmax = -INFINITY;
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++)
            if ((t->mask[r] >> c & 1u) && !(s[r][c] <= tmax))
                tmax = s[r][c];
    if (tmax == -INFINITY) /* every tuple of the tile is masked */
        return NULL;
    if (tmax > st->m)
        nsx_row_state_rescale(st, tmax);
    float psum = 0.0f, col[NR] = {0};
    float *P = t->ptile;
    for (int r = 0; r < MR; r++) {
        float row = 0.0f;
        for (int c = 0; c < NR; c++) {
            float e = (t->mask[r] >> c & 1u) ? expf(s[r][c] - st->m) : 0.0f;
            P[r * NR + c] = e;
            row += e;
            col[c] += e;
        }
        psum += row;
        if (t->sum) /* the prefix's values, weighted by the row's total */
            for (int x = 0; x < dvp; x++)
                st->acc[x] += row * TILE_VP(t, r, dvp)[x];
    }
    st->sum += psum;
    if (t->sum) {
        for (int c = 0; c < t->nc; c++)
            t->colacc[c] += col[c];
        return NULL;
    }
    return P;
}

#endif /* NSX_SIMD_SOFTMAX_SCALAR_H */
