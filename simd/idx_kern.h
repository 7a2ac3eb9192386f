/*
 * What an ISA file (simd/idx_<isa>.c) provides to the indexer's driver
 * (simd/indexer.c): the tile that scores one query against one strip of NR
 * keys from all its heads, and the threshold test of the running top-k.
 *
 * Shapes.  q [Hi][di] is the query's rows of idx_q; the strip kp [di][NR]
 * holds NR keys transposed, kp[l][c] = kI[j0 + c][l] (zero past L).  Every
 * lane c computes its logit by the same operations in the same order
 * (x = scale * (sum over l = 0, 1, ... of q[h][l] kp[l][c])), and its score
 * likewise (S = sum over h = 0, 1, ... of w[h] act(x)), so two keys with
 * equal rows of kI get bit-identical scores wherever they sit: exact ties
 * stay exact ties.
 */
#ifndef NSX_SIMD_IDX_KERN_H
#define NSX_SIMD_IDX_KERN_H

#include <stdint.h>

typedef struct nsx_idx_tile {
    const float *q;  /* [Hi][di] */
    const float *kp; /* [di][NR], 64-byte aligned */
    const float *w;  /* [Hi] */
    int Hi, di;
    int act;         /* NSX_SIMD_ACT_RELU or _IDENTITY when s is set */
    float scale;
    float *x;        /* not NULL: x[h][c] = the scaled logits, [Hi][NR] (softmax) */
    float *s;        /* not NULL: s[c] = S of key j0 + c, [NR] (relu, identity) */
} nsx_idx_tile;

typedef struct nsx_idx_kernels {
    int isa;   /* enum nsx_isa */
    int nr;    /* keys per strip, <= 32 */
    void (*tile)(const nsx_idx_tile *t);
    /* bit c (c < n) set when s[c] > thr (NaN: never) */
    uint32_t (*above)(const float *s, int n, float thr);
    /* x[l] = exp(x[l]) for x[l] <= 0, l < len (softmax): relative error
       within 2 ulps, exp(0) = 1 exactly (docs/ORACLE.md A3) */
    void (*exp_nonpos)(float *x, int len);
} nsx_idx_kernels;

extern const nsx_idx_kernels nsx_idx_kernels_scalar;
extern const nsx_idx_kernels nsx_idx_kernels_avx2;
extern const nsx_idx_kernels nsx_idx_kernels_avx512;

/* The table for isa (simd/indexer.c); NULL for an unknown one. */
const nsx_idx_kernels *nsx_simd_idx_kernels(int isa);

#endif /* NSX_SIMD_IDX_KERN_H */
