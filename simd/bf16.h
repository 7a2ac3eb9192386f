/*
 * The bf16-input forward (issue 15): q, k_m, v_m read as bfloat16 (half
 * the bytes of float32), and both GEMMs (the scores, and for the product
 * reducer the weights times the inner key's values) on bf16 operands, two
 * products per f32 lane per instruction, as AVX512_BF16's VDPBF16PS does;
 * the softmax and the accumulators in float32.  Optional: the float32
 * path (simd/simd.h) stays the default.
 *
 * Precision model (docs/ORACLE.md 2): `bf16,out=f32`, canonically
 * in=bf16,op=bf16,acc=f32,int=none,w=bf16,out=f32,lseout=f32.  The score
 * GEMM's operands are bf16: per query head the panel column s q (k_mi + kb)
 * and per prefix the row (k_p1 + kb) o ... (n >= 2), or the row s q and the
 * panel column k + kb (n = 1), each formed in f32 and rounded once to bf16,
 * a subnormal result flushed to zero (A1, A8).  The value GEMM's are the
 * weights exp(T - m) rounded to bf16 (w, A5) and the inner key's v + vb
 * rounded to bf16 (A9); the prefix's value product and the sum reducer's
 * row and column sums stay f32.  A product of two bf16 is exact in f32 and
 * is accumulated in f32 (A2).  The kernel ABI declares it: input BF16,
 * accumulation F32, weights BF16, output F32 (nsx_simd_bf16_info).
 *
 * Variants, as the ISAs of simd/simd.h: `avx512bf16` (simd/bf16_avx512bf16.c,
 * VDPBF16PS; cores with AVX512_BF16: Cooper Lake, Sapphire Rapids and
 * later Xeons, Zen 4) and `portable` (simd/bf16_portable.c, plain C that
 * performs the instruction's arithmetic as Intel's SDM documents it, step
 * by step, so the path is tested on any machine; tests/test_bf16.c compares
 * the two bit for bit where the CPU has AVX512_BF16).  The
 * best the CPU runs is chosen once; NSX_BF16=portable|avx512bf16 forces
 * one, NSX_ISA_DEBUG=1 logs the choice.
 */
#ifndef NSX_SIMD_BF16_H
#define NSX_SIMD_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/kernel.h"
#include "simd/kern.h"

enum nsx_bf16_variant {
    NSX_BF16_PORTABLE = 0,   /* plain C emulation of VDPBF16PS */
    NSX_BF16_AVX512BF16 = 1, /* AVX512_BF16 + AVX-512 F/BW/DQ/VL + FMA */
    NSX_BF16_COUNT = 2
};

/* The inputs as bf16 bit patterns (the top half of a float32), in the
   layouts of include/nsimplex/kernel.h; outputs float32 as there. */
typedef struct nsx_bf16_io {
    const uint16_t *q;
    const uint16_t *k[NSX_MAX_ORDER];
    const uint16_t *v[NSX_MAX_ORDER];
    float *o;
    float *lse; /* may be NULL */
} nsx_bf16_io;

/* x rounded to bf16, to nearest even (a NaN stays a NaN, quiet; a finite x
   beyond bf16's range rounds to an infinity, as RN does).  Exact for a
   value of bf16, subnormals included: the input conversion. */
uint16_t nsx_bf16_round(float x);

/* The operand conversion: nsx_bf16_round, then a subnormal result flushed
   to zero of its sign (VDPBF16PS reads subnormals as zero; flushing at
   the conversion keeps every path's operands the same). */
uint16_t nsx_bf16_round_ftz(float x);

/* The float32 of a bf16 (exact). */
static inline float nsx_bf16_widen(uint16_t h)
{
    union {
        uint32_t u;
        float f;
    } x = {.u = (uint32_t)h << 16};
    return x.f;
}

/* dst[t] = nsx_bf16_round(src[t]), t < len. */
void nsx_bf16_round_array(uint16_t *dst, const float *src, size_t len);

/* "portable", "avx512bf16"; NULL for anything else. */
const char *nsx_bf16_variant_name(int v);

/* 1 when this CPU (and the OS) runs variant v. */
int nsx_bf16_variant_supported(int v);

/* The variant nsx_simd_forward_bf16 uses, resolved once: the one NSX_BF16
   names, else the best this CPU runs.  -1 when NSX_BF16 is unknown or
   names a variant this CPU lacks; then why (may be NULL) gets one line. */
int nsx_bf16_variant(char *why, size_t whylen);

/* The ABI description of the bf16 path (the model above; the forward's
   features as nsx_simd_info's, no indexer, no backward). */
const nsx_kernel_info *nsx_simd_bf16_info(void);

/* The model string check judges the bf16 path by (canonical form). */
#define NSX_BF16_MODEL "bf16,out=f32"

/*
 * (E1)-(E6) from bf16 inputs: nsx_simd_forward's contract (simd/simd.h),
 * every n (ordinary attention too, through the same tiles), the result the
 * same for any threads.  NSX_SIMD_EISA when NSX_BF16 is bad.
 */
int nsx_simd_forward_bf16(const nsx_kernel_problem *p, const nsx_bf16_io *io, int threads);

/* The same with the variant given; NSX_SIMD_EISA when the CPU lacks it. */
int nsx_simd_forward_bf16_variant(const nsx_kernel_problem *p, const nsx_bf16_io *io, int threads,
                                  int variant);

/* ---- the tile interface (simd/bf16_<variant>.c) -------------------------- */

/* As nsx_tile (simd/kern.h), the score operands in bf16 pairs: word p of a
   row or a panel column holds elements 2p (low half) and 2p + 1 (high half;
   zero beyond d), as VDPBF16PS reads them. */
typedef struct nsx_bf16_tile {
    int d2;                 /* pairs: (d + 1) / 2 */
    int dvp;
    int nc;                 /* keys in this block, 1..nr */
    int sum;                /* 1: sum/mean reducer, 0: product */
    const uint32_t *u;      /* [mr][d2] the rows */
    const uint32_t *kp;     /* [d2][ldk] the panel: pair p of key c at kp[p ldk + c] */
    int ldk;
    const float *vp;        /* [mr][dvp] */
    const float *vpan;      /* [nr][dvp] */
    const uint32_t *vpan2;  /* product: [nr / 2][dvp] bf16 pairs of keys 2p, 2p + 1 */
    const uint32_t *mask;   /* [mr] */
    float *colacc;
    float *ptile;           /* scratch [mr][nr], 64-byte aligned */
} nsx_bf16_tile;

typedef struct nsx_bf16_kernels {
    int variant;            /* enum nsx_bf16_variant */
    int mr, nr;             /* nr <= 32 */
    /* Scores S[r][c] = the VDPBF16PS chain over p < d2 of u[r][p] and
       kp[p][c] from 0, then as nsx_isa_kernels.tile: the online softmax
       update of st and the value side; for the product reducer the row's
       weights P[r][c] are rounded to bf16 (VCVTNE2PS2BF16: to nearest even,
       subnormals flushed) and a[r][x] = the VDPBF16PS chain over key pairs
       of P[r] and vpan2[.][x], then acc += vp[r] o a[r] in f32. */
    void (*tile)(const nsx_bf16_tile *t, nsx_row_state *st);
    /* The score chain of one row and one column: acc = 0, then for
       p < d2, VDPBF16PS's lane step on (a[p], b[p]) (tests). */
    float (*dot)(const uint32_t *a, const uint32_t *b, int d2);
} nsx_bf16_kernels;

extern const nsx_bf16_kernels nsx_bf16_portable;
extern const nsx_bf16_kernels nsx_bf16_avx512bf16;

/* The table of variant v; NULL for an unknown one. */
const nsx_bf16_kernels *nsx_bf16_kernels_get(int v);

/* nsx_simd_forward_bf16 with the tiles of ks (tests plant bugs through
   it).  Pre: this CPU runs ks's variant. */
int nsx_simd_forward_bf16_with(const nsx_kernel_problem *p, const nsx_bf16_io *io, int threads,
                               const nsx_bf16_kernels *ks);

#endif /* NSX_SIMD_BF16_H */
