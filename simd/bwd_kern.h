/*
 * What an ISA file of the backward (simd/bwd_<isa>.c) provides to its driver
 * (simd/backward.c): one tile, BLIS-style, as simd/kern.h does for the
 * forward.  The driver owns the loops, the candidate lists, the packing, the
 * threads and the scatter of the gradients; the tile owns the arithmetic of
 * MR prefix rows (tuples less their inner key) of one query head against NR
 * inner keys.
 *
 * Per tile, with m the mask bit of (row r, column c) (E7a-E7f, docs/SPEC.md 1.7):
 *   S[r,c]  = sum_l uq[r][l] kt[l][c]                       the score T
 *   A[r,c]  = m ? exp(S[r,c] - lse[r]) : 0                  E4 from the saved LSE
 *   dP[r,c] = sum_x dov[r][x] vt[x][c]                      product (E7a)
 *           = dprow[r] + dpcol[c]                           sum, mean
 *   dT[r,c] = m ? A[r,c] (dP[r,c] - delta[r]) : 0           E7c
 *   dkt[l][c] += sum_r dT[r,c] uq[r][l]                     E7e, inner keys
 *   x[r][l]   += sum_c dT[r,c] kr[c][l]                     E7d and E7e, prefix keys
 *   product: dvt[x][c] += sum_r A[r,c] dov[r][x]            E7f, inner keys
 *            y[r][x]   += sum_c A[r,c] vr[c][x]             E7f, prefix keys
 *   sum:     rowa[r] += sum_c A[r,c], cola[c] += sum_r A[r,c]
 * where row r is a pair (prefix, head h), uq[r] = s q_h o u (u the product of
 * the prefix keys' K~), dov[r] = out_scale dO_h o vp (vp the product of the
 * prefix keys' V~; with sum and mean every row is of one head), kt / kr the
 * inner keys' K~ transposed / by rows, vt / vr their V~ likewise.  Padding
 * (rows past the prefixes, columns past the keys) is zero in every operand
 * and masked, so it adds exact zeros.
 */
#ifndef NSX_SIMD_BWD_KERN_H
#define NSX_SIMD_BWD_KERN_H

#include <stdint.h>

typedef struct nsx_bwd_tile {
    int d, dvp;            /* dvp: dv rounded up to 16 */
    int ldd;               /* row stride of uq, kr, x: d rounded up to 16 (zeros past d) */
    int nc;                /* keys in this block, 1..NR */
    int sum;               /* 1: sum or mean reducer; 0: product */
    int ldk;               /* row stride of kt, vt, dkt, dvt (a multiple of NR) */
    const float *uq;       /* [MR][ldd] */
    const float *dov;      /* [MR][dvp] (product) */
    const float *kt;       /* [d][ldk], this block's first column */
    const float *kr;       /* [NR][ldd], this block's first key */
    const float *vt;       /* [dvp][ldk] (product), this block's first column */
    const float *vr;       /* [NR][dvp] (product), this block's first key */
    const uint32_t *mask;  /* [MR]: bit c of row r, the tuple is allowed */
    const float *lse, *delta; /* [MR]: each row's head's saved LSE and Delta (0 past the rows) */
    const float *dprow;    /* [MR] (sum) */
    const float *dpcol;    /* [NR] (sum), this block's first column */
    float *dkt;            /* [d][ldk] accumulated, this block's first column */
    float *dvt;            /* [dvp][ldk] accumulated (product) */
    float *x;              /* [MR][ldd] accumulated */
    float *y;              /* [MR][dvp] accumulated (product) */
    float *rowa;           /* [MR] accumulated (sum) */
    float *cola;           /* [NR] accumulated (sum), this block's first column */
    float *ptile;          /* scratch [2][MR][NR], 64-byte aligned: A, then dT */
} nsx_bwd_tile;

typedef struct nsx_bwd_kernels {
    int isa;               /* enum nsx_isa */
    int mr, nr;            /* tile rows and columns (nr <= 32: one mask word) */
    void (*tile)(const nsx_bwd_tile *t);
} nsx_bwd_kernels;

extern const nsx_bwd_kernels nsx_bwd_kernels_scalar;
extern const nsx_bwd_kernels nsx_bwd_kernels_avx2;
extern const nsx_bwd_kernels nsx_bwd_kernels_avx512;

/* The table for isa (simd/backward.c); NULL for an unknown one. */
const nsx_bwd_kernels *nsx_simd_bwd_kernels(int isa);

#endif /* NSX_SIMD_BWD_KERN_H */
