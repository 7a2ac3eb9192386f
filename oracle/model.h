/*
 * The precision model a candidate is judged by (docs/ORACLE.md section 2):
 * which number format each stage of an honest kernel computes in, and which
 * empty-slice LSE convention it follows.
 *
 *   in      the input format: q, k_m, v_m (and the indexer inputs) as the
 *           kernel reads them.  A vector whose input format is wider is
 *           rounded to it (to nearest) by the kernel.
 *   op      the format of derived GEMM operands: elementwise products of
 *           inputs (q*k1 for n = 2, v1*v2), biased inputs (k + kb), the scale
 *           s.  Default: the input format (Meta's FBGEMM 2-simplicial kernel
 *           rounds them to bf16); op=f32 models a kernel that keeps them in
 *           f32 (FlashAttention-style n = 1).
 *   acc     the accumulation format: dot products, the softmax's max, exp,
 *           sum and division, the value accumulators.
 *   int     the format intermediate tensors are rounded to (scores before the
 *           softmax, partial contractions of the value side), as a plain
 *           einsum pipeline does; none for fused kernels.
 *   w       the format the softmax weights are rounded to before the value
 *           product (flash-style kernels: P.to(bf16)); none when not rounded.
 *   out     the output format of o.
 *   lseout  the output format of lse (default: the accumulation format, as
 *           FlashAttention, FlashMLA and FBGEMM store it).
 *   lse     the empty-slice convention: -inf (the spec), +inf (FlashMLA), any.
 *   idx     the format the indexer reads its queries and keys (idx_q, idx_k)
 *           in (docs/ORACLE.md 5.1): none (the default) follows `in`; a
 *           plain format (f64 f32 f16 bf16) rounds them to it; e4m3 or e5m2
 *           quantizes them as DeepSeek V3.2's indexer does: each block of
 *           idxblk consecutive elements along di (of one query head's row,
 *           of one key's row) shares one float32 scale s, and the kernel
 *           uses s * RN_fp8(x / s) with amax / fmax <= s <= 2 max(amax, 1e-4)
 *           / fmax (amax the block's largest |x|, fmax the format's largest
 *           finite value; a power-of-two scale rounded up qualifies).
 *   idxblk  the FP8 block size in elements (default 128, DeepSeek's).
 *   bound   worst (the rigorous bound, default) or prob (ORACLE.md section 9:
 *           rounding errors modelled as independent and mean zero, after
 *           Higham and Mary 2019; for round-to-nearest kernels at scale).
 *   sub     flush (default: conversions to in, op, int and w may flush results
 *           below the smallest normal to zero) or keep (they round among the
 *           subnormals, as IEEE 754 and CUDA's cvt.rn do: |eta| <= lambda u).
 *   pfail   with bound=prob: the modelled probability that one element of
 *           an honest kernel exceeds its bound (default 1e-9).
 *   tile    how the kernel sums over a row's tuples (ORACLE.md 9.8): none
 *           (the default: any order, any tree, a rescaling per tuple), a
 *           tile size B (the tuples summed in tiles of at most B, any tree
 *           inside a tile, the tile results added to the accumulators one
 *           after another with at most one rescaling each: a flash kernel's
 *           key block), or row (one tile: a two-pass softmax, no rescaling).
 *           tile=B sums each tile on its own, from zero, and adds its
 *           result to the accumulator; tile=B/acc adds the tile's products
 *           straight into the running accumulator, as Triton's
 *           tl.dot(p, v, acc) does (only the rescalings are fewer).
 *
 * Syntax (--model, and the candidate's metadata key "nsimplex.model"): a
 * comma-separated list whose first item may name a preset, followed by
 * key=value items that override it, e.g.
 *     bf16                                   the default
 *     in=bf16,acc=f32,w=bf16,out=bf16,lse=-inf
 *     f32,lse=any
 * Items start from the preset named first (bf16 when none is named).  op
 * follows in, and lseout follows acc, unless given explicitly.  Presets:
 * bf16, f16, f32, f64, einsum-bf16, einsum-f16, triton-f32, dsa-fp8
 * (nsx_model_presets; dsa-fp8: DeepSeek V3.2's indexer, f32 with idx=e4m3,
 * idxblk=128).
 */
#ifndef NSX_ORACLE_MODEL_H
#define NSX_ORACLE_MODEL_H

#include <stddef.h>

#include "nsimplex/error.h"
#include "nsimplex/kernel.h"

/* "no rounding at this stage" (int, w) */
#define NSX_MODEL_NONE (-1)
/* TF32, the tensor cores' float32 operand format (a model format only, for
   op, int and w: no tensor is stored in it): float32's exponent range with
   10 significand bits.  Hardware may truncate to it (mma with .tf32
   operands ignores the low 13 bits of a float32), so its u is one ulp,
   2^-10, not half (docs/ORACLE.md 2.1). */
#define NSX_MODEL_TF32 5
/* FP8 (OCP 8-bit floating point), model formats for the indexer's inputs
   only (key idx), always with per-block scales: E4M3 (4 significand bits,
   emin -6, largest 448, no infinities: the "fn" variant) and E5M2 (3 bits,
   emin -14, largest 57344).  The values of NSX_FORMAT_E4M3/E5M2 (kernel.h). */
#define NSX_MODEL_E4M3 NSX_FORMAT_E4M3
#define NSX_MODEL_E5M2 NSX_FORMAT_E5M2
/* The default FP8 block (DeepSeek V3.2's indexer: one scale per 128). */
#define NSX_MODEL_IDX_BLOCK 128

/* Empty-slice LSE conventions. */
enum nsx_lse_conv {
    NSX_LSE_MINUS_INF = 0, /* the spec: log of an empty sum */
    NSX_LSE_PLUS_INF = 1,  /* FlashMLA: exp(-LSE) = 0 in the backward */
    NSX_LSE_ANY = 2        /* either infinity */
};

/* The form in which a kernel stores its LSE (docs/ORACLE.md 3.8.1), with
   M the largest score of the slice (natural units, the scores T of E3). */
enum nsx_lse_form {
    NSX_LSE_LN = 0,    /* LSE = log sum_J exp(T_J): the spec */
    NSX_LSE_LOG2 = 1,  /* LSE log2(e): the max in log2 units plus log2 of the sum */
    NSX_LSE_MIXED = 2  /* M log2(e) + log(sum_J exp(T_J - M)) = LSE + M (log2(e) - 1): the max in
                          log2 units plus the natural log of the sum (FBGEMM's Triton forward) */
};

/* Which bound the oracle judges by (docs/ORACLE.md section 9). */
enum nsx_bound_kind {
    NSX_BOUND_WORST = 0, /* the rigorous worst case of section 3 (the default) */
    NSX_BOUND_PROB = 1   /* the probabilistic bound of section 9: rounding errors
                            modelled as independent, mean zero (Higham and Mary) */
};

/* tile=row (ORACLE.md 9.8): the whole row is one tile, no rescaling. */
#define NSX_TILE_ROW (-1)
/* The largest tile size the key accepts (a larger one is tile=row for
   every row the oracle can judge in reasonable time). */
#define NSX_TILE_MAX (1 << 16)

/* The probabilistic bound's default failure probability per element. */
#define NSX_PFAIL_DEFAULT 1e-9

typedef struct nsx_model {
    int in, op, acc, inter, w, out, lseout; /* NSX_FORMAT_*; inter, w may be NSX_MODEL_NONE */
    int lse_conv;                           /* enum nsx_lse_conv */
    int idx;                                /* the indexer's q, k format: NSX_MODEL_NONE
                                               (follows in), NSX_FORMAT_*, _E4M3, _E5M2 */
    int idx_blk;                            /* the FP8 scale block, >= 1 */
    int lse_form;                           /* enum nsx_lse_form */
    int bound;                              /* enum nsx_bound_kind */
    int sub_keep;                           /* 1: conversions to in, op, int, w keep subnormals
                                               (|eta| <= lambda u); 0: they may flush (<= lambda) */
    double pfail;                           /* bound=prob: the probability, under the model of
                                               ORACLE.md 9.2, that one element of an honest
                                               kernel exceeds its bound; 0 < pfail <= 1/4 */
    int tile;                               /* 0: none (A2, A4); 1 .. NSX_TILE_MAX: tiles of at
                                               most that many tuples; NSX_TILE_ROW: one tile per
                                               row (ORACLE.md 9.8) */
    int tile_acc;                           /* with tile > 0: 1 when the tile's products are added
                                               straight into the running accumulator (tile=B/acc),
                                               0 when each tile is summed on its own (tile=B) */
} nsx_model;

/* 1 when format f is an FP8 format (NSX_MODEL_E4M3, _E5M2). */
static inline int nsx_fmt_is_fp8(int f)
{
    return f == NSX_MODEL_E4M3 || f == NSX_MODEL_E5M2;
}

/* Parameters of a binary floating-point format with p-bit significands. */
typedef struct nsx_fmt {
    int p;          /* precision in bits, hidden bit included */
    int emin, emax; /* exponent range of normal numbers */
    double u;       /* unit roundoff 2^-p: the relative error of rounding to nearest */
    double lambda;  /* smallest positive normal 2^emin: the absolute error of an
                       underflowing operation, flush-to-zero included */
    double max;     /* largest finite value */
} nsx_fmt;

/* The parameters of format (NSX_FORMAT_*, NSX_MODEL_TF32, _E4M3, _E5M2); for NSX_MODEL_NONE, a format with
   u = lambda = 0 and max = +inf (no rounding).  Pre (asserted): one of those. */
nsx_fmt nsx_fmt_of(int format);

/* ulp(x) in fmt for x >= 0: the spacing of fmt at x's binade, and lambda
   below lambda (covers subnormals and flush-to-zero).  For NSX_MODEL_NONE's
   format: 0.  Pre (asserted): f not NULL, x not negative. */
double nsx_fmt_ulp(const nsx_fmt *f, double x);

/* The default model (preset "bf16"). */
void nsx_model_default(nsx_model *m);

/*
 * Parses s (the syntax above) into m.  Returns 0, or NSX_E_INPUT with err =
 * "model 'S': <problem>" naming the item (unknown key, preset or format, a
 * missing '=').  m is untouched on error.  Pre (asserted): s, m, err not
 * NULL.
 */
int nsx_model_parse(const char *s, nsx_model *m, nsx_err *err);

/*
 * A warning about a model string that parses but may not say what its
 * author meant, into buf (size len), or NULL when there is none: `op`
 * inherited silently from an `in=` item where the starting preset had a
 * different op (e.g. "bf16,in=f32" models a kernel that keeps f32 GEMM
 * operands, not one that casts them to bf16; say op= explicitly); or a
 * self-contradictory model: w or int wider than acc (a rounding that
 * rounds nothing, e.g. "f32,w=f64"), or an LSE form other than ln with
 * an intermediate format (int: torch.logsumexp's composite, which returns
 * the natural LSE).
 * Precondition: s parses.
 */
const char *nsx_model_warning(const char *s, char *buf, size_t len);

/* The canonical text of m (every key, in the order in,op,acc,int,w,out,
   lseout,lse, then lseform when it is not ln, then idx and idxblk when idx
   is not none, sub=keep when subnormals are kept, tile=B, B/acc or row when
   the kernel declares its tiles, bound=prob,pfail=P when the bound is
   probabilistic) into buf (size len; 160 bytes always
   suffice); returns buf.
   nsx_model_parse reads it back to the same model.  Pre (asserted): m and
   buf not NULL, len >= 1. */
char *nsx_model_format(const nsx_model *m, char *buf, size_t len);

/* The names of the presets, NULL-terminated, for help texts. */
extern const char *const nsx_model_presets[];

/* The empty-slice convention's name: "-inf", "+inf" or "any". */
const char *nsx_lse_conv_name(int conv);

/* The LSE form's name: "ln", "log2" or "mixed". */
const char *nsx_lse_form_name(int form);

/* The model a kernel declares through the ABI (nsx_kernel_info): in, acc,
   w (F64 weights are taken as "none": no rounding below binary64), out; op =
   in, lseout = acc, no intermediate rounding, LSE convention "any" (ABI 1
   cannot declare it), LSE form ln (the ABI's).  Formats outside 0..3 give NSX_E_INPUT.  Pre
   (asserted): ki, m, err not NULL. */
int nsx_model_from_kernel(const nsx_kernel_info *ki, nsx_model *m, nsx_err *err);

/* The indexer's model a kernel declares (ABI 2: indexer_input_format,
   _accum_format, _output_format; ABI 3: FP8 inputs with indexer_block):
   in = op = the input format (f32 beside FP8 queries and keys), acc, out;
   idx = the FP8 format and idx_blk its block, else none.  NSX_E_INPUT for a
   kernel without an indexer or with a format outside those.  Pre
   (asserted): ki, m, err not NULL. */
int nsx_model_from_kernel_indexer(const nsx_kernel_info *ki, nsx_model *m, nsx_err *err);

#endif
