/*
 * Ordinary attention (n = 1) as a flash kernel (simd/n1.c), and its
 * per-microarchitecture sub-configurations, BLIS-style: one table entry
 * ("tune") per kind of core, each with its own register-blocked tiles
 * (simd/n1_<isa>.c), chosen at run time from CPUID, forceable with
 * NSX_TUNE=<name> and logged with NSX_ISA_DEBUG=1.
 *
 * The arithmetic is split into four micro-kernels, each given rows of
 * queries (one query head each, s q rounded to float32 once) and a block of
 * keys as row addresses, so that a contiguous key range (causal, window) and
 * a gathered selection run the same code:
 *   scores  S = Q K^T        (dot products along d, rows x keys tiles)
 *   max     the row's largest score
 *   expsum  P = exp(S - m), and its sum (the ISA's exp, simd/kern.h)
 *   values  ACC += P V       (rows x value-vectors tiles)
 * The driver owns the blocks, the masks (at block granularity: a block every
 * row of a tile allows runs the tiles; a row that allows part of a range's
 * block runs alone over just its keys, so a masked key's value is never
 * read; a selection's rows are masked per key, see simd/n1.c) and the
 * online softmax.
 */
#ifndef NSX_SIMD_N1_H
#define NSX_SIMD_N1_H

#include <stddef.h>

#include "nsimplex/kernel.h"

typedef struct nsx_n1_kernels {
    const char *name;   /* NSX_TUNE's value: "scalar", "avx2", "zen4", "xeon" */
    const char *cores;  /* the cores it is for, one phrase */
    int isa;            /* enum nsx_isa */
    int smr, snc;       /* score tile: rows x keys */
    int vmr, vnx;       /* value tile: rows x floats */
    int nb;             /* keys per block, a multiple of 16 */
    int rows;           /* query rows (queries x heads) per dense work item */
    /* S[r lds + c] = sum_{l<d} q[r ldq + l] krow[c][l], r < rows, c < nc.
       Writes S[r lds + c] for c < nc rounded up to 8, plus 8 at most: the
       caller's lds is at least nc rounded up to 8, plus 8. */
    void (*scores)(const float *q, int ldq, int rows, const float *const *krow, int nc, int d,
                   float *S, int lds);
    /* acc[r lda + x] += sum_{c<nc} P[r ldp + c] vrow[c][x], r < rows, x < dv;
       lda >= dv rounded up to 16 (entries dv.. of acc stay what they were
       plus zero).  Reads vrow[c][x] for x < dv only. */
    void (*values)(const float *P, int ldp, int rows, const float *const *vrow, int nc, int dv,
                   float *acc, int lda);
    /* The largest of x[0..len) (len >= 1); NaN when one is NaN. */
    float (*max)(const float *x, int len);
    /* x[c] = exp(x[c] - m) for c < len (each x[c] - m <= 0, or NaN), as the
       ISA's exp_nonpos computes it; returns their float32 sum. */
    float (*expsum)(float *x, int len, float m);
    /* x[c] = fill where mk[c] == 0, c < len. */
    void (*mask)(float *x, const unsigned char *mk, int len, float fill);
    /* 1 when x[0..len) holds no NaN and no infinity, else 0 (whether a
       selection's masked rows may multiply a block's values by 0). */
    int (*finite)(const float *x, int len);
} nsx_n1_kernels;

extern const nsx_n1_kernels nsx_n1_scalar;
extern const nsx_n1_kernels nsx_n1_avx2;
extern const nsx_n1_kernels nsx_n1_zen4;
extern const nsx_n1_kernels nsx_n1_xeon;

/* The table: every tune, index 0 .. nsx_n1_tune_count() - 1. */
int nsx_n1_tune_count(void);
const nsx_n1_kernels *nsx_n1_tune_get(int t);

/*
 * The tune for isa: the one NSX_TUNE names, else the one CPUID picks for
 * this core (AVX-512: one 512-bit FMA pipe on AMD family 25 (Zen 4) -> zen4,
 * any other -> xeon; AVX2 -> avx2; scalar -> scalar).  NULL when NSX_TUNE
 * names no tune or a tune of another ISA; then why (may be NULL) gets one
 * line.  NSX_ISA_DEBUG=1 logs the choice for the process's ISA once.
 */
const nsx_n1_kernels *nsx_n1_tune(int isa, char *why, size_t whylen);

/* (E1)-(E6) for n = 1 with the tiles of kt (simd/simd.h's
   nsx_simd_forward contract).  Pre: p passes nsx_simd_check, p->n == 1, and
   this CPU runs kt->isa.  Returns NSX_SIMD_OK or NSX_SIMD_ENOMEM (nothing
   written). */
int nsx_n1_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads,
                   const nsx_n1_kernels *kt);

/* The hook of nsx_simd_forward_isa: nsx_n1_forward with isa's tune;
   NSX_SIMD_EISA when NSX_TUNE is bad. */
int nsx_n1_forward_isa(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads,
                       int isa);

/* Bytes of scratch one thread of nsx_n1_forward allocates for p with kt. */
size_t nsx_n1_scratch_bytes(const nsx_kernel_problem *p, const nsx_n1_kernels *kt);

#endif /* NSX_SIMD_N1_H */
