/*
 * What an ISA file (simd/fwd_<isa>.c) provides to the driver
 * (simd/forward.c): one table of micro-kernels, BLIS-style.  The driver owns
 * the loops, the candidate lists, the packing and the threads; the ISA file
 * owns the register-blocked tile and the elementwise prefix products.
 *
 * Shapes.  A tile is MR rows (prefix tuples of one query head) by NR columns
 * (keys of the inner dimension):
 *   u     [MR] -> [d]    row r: (k_{p1}[j]+kb) o ... , the prefix's score factor
 *                        (ones for n = 1)
 *   vp    [MR] -> [dvp]  row r: the prefix's reduced value vector (product or sum)
 *   kp    [d][ldk]     the head's K panel, column c = key c of the block:
 *                      s q[l] (k[c][l] + kb), zero beyond the last key (ldk a
 *                      multiple of NR), so score(r, c) = sum_l u[r][l] kp[l][c]
 *   vpan  [NR][dvp]    the V panel rows of the block, bias added
 *   mask  [MR]         bit c of row r: the tuple (prefix r, key c) is allowed
 * dvp = dv rounded up to 16; entries beyond dv are zero in vpan and vp.
 * u and vp are arrays of MR row addresses, not one block: a prefix that is
 * one key without a bias (n = 2) is read in place from the inputs, with no
 * copy per prefix (rows need no alignment: the tiles load them unaligned).
 */
#ifndef NSX_SIMD_KERN_H
#define NSX_SIMD_KERN_H

#include <stdint.h>

/* The running softmax of one query head over its whole slice. */
typedef struct nsx_row_state {
    float m;        /* the largest allowed score so far; -inf before the first */
    float sum;      /* sum of exp(T - m) over the allowed tuples so far */
    float *acc;     /* [dvp] sum of exp(T - m) W (sum reducer: less the inner
                       dimension's values, which colacc carries) */
    float *colacc;  /* sum reducer: [ncol] per inner key of the current panel,
                       sum of exp(T - m); NULL for the product */
    int ncol;
    int dvp;
} nsx_row_state;

typedef struct nsx_tile {
    int d, dvp;
    int nc;                /* keys in this block, 1..NR */
    int sum;               /* 1: sum/mean reducer (row and column sums), 0: product */
    const float *const *u, *const *vp; /* [MR] row addresses: d and dvp floats */
    const float *kp;
    int ldk;
    const float *vpan;
    const uint32_t *mask;
    float *colacc;         /* sum reducer: this block's NR entries of state->colacc */
    float *ptile;          /* scratch [MR][NR], 64-byte aligned */
} nsx_tile;

/* The most rows a tile of any ISA has (the driver's row address arrays). */
#define NSX_TILE_MR_MAX 16

typedef struct nsx_isa_kernels {
    int isa;               /* enum nsx_isa */
    int mr, nr;            /* tile rows and columns (nr <= 32: one mask word) */
    /* Scores of the tile, the online softmax update of st, then the value
       side into st (the product: acc += sum_r vp[r] o (P[r,:] vpan); the sum
       reducer: acc += rowsum(P)[r] vp[r], colacc += colsum(P)). */
    void (*tile)(const nsx_tile *t, nsx_row_state *st);
    /* dst[l] = a[l] * (x[l] + bias), l < len */
    void (*mul_bias)(float *dst, const float *a, const float *x, float bias, int len);
    /* dst[l] = a[l] + (x[l] + bias), l < len; a NULL: dst[l] = x[l] + bias */
    void (*add_bias)(float *dst, const float *a, const float *x, float bias, int len);
    /* dst[l] = s * x[l], l < len */
    void (*scale)(float *dst, const float *x, float s, int len);
    /* x[l] = exp(x[l]) for x[l] <= 0, as the tile computes it (tests) */
    void (*exp_nonpos)(float *x, int len);
} nsx_isa_kernels;

extern const nsx_isa_kernels nsx_kernels_scalar;
extern const nsx_isa_kernels nsx_kernels_avx2;
extern const nsx_isa_kernels nsx_kernels_avx512;

/* The table for isa (forward.c); NULL for an unknown one. */
const nsx_isa_kernels *nsx_simd_kernels(int isa);

/* Rescales the running state to a new max m_new > st->m (shared by the ISA
   files; the rescale is rare, so it need not be vectorized).  Pre
   (asserted): m_new > st->m. */
void nsx_row_state_rescale(nsx_row_state *st, float m_new);

#endif /* NSX_SIMD_KERN_H */
