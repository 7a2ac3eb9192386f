/*
 * nsimplex kernel interface, ABI version 3 (docs/SPEC.md section 6).
 *
 * A third-party CPU kernel, or a C shim over a GPU kernel, implements this
 * header in a shared library that exports nsx_kernel_get_info and
 * nsx_kernel_forward.  `nsimplex fuzz --kernel LIB.so` and
 * `nsimplex bench --kernel LIB.so` load it with dlopen and drive it.  The
 * project's own SIMD implementation is built against this header and is
 * loadable the same way (build/libnsimplex_simd.so).
 *
 * Names, types and field order are the ABI: fields are only ever added at
 * the end of a struct, together with a version bump.  ABI 2 adds an
 * optional indexer entry (nsx_kernel_indexer, declared by the info's
 * `indexer` field); an ABI 1 library (its info ends at `features`, and it
 * has no indexer) keeps loading and working unchanged.  ABI 3 adds an
 * optional backward entry (nsx_kernel_backward, declared by the info's
 * `backward_max_order`); ABI 1 and 2 libraries have none and load as before.
 * ABI 3 also adds the indexer's FP8 inputs: indexer_input_format may be
 * NSX_FORMAT_E4M3 or NSX_FORMAT_E5M2, with the scale block size in
 * indexer_block (an ABI 2 info ends at indexer_output_format).
 *
 * Layouts (row-major, innermost last), as in the golden vectors:
 *   q     [B, L, H,   d ]      k[m]  [B, L, Hkv, d ]
 *   v[m]  [B, L, Hkv, dv]      o     [B, L, H,   dv]
 *   lse   [B, H, L]            sel   [B, L, topk]
 *   dout  [B, L, H,   dv]      (ABI 3) dq as q, dk[m] as k[m], dv[m] as v[m]
 * Query head h reads key/value head h / (H / Hkv).  Dimension m of the
 * equations (m = 1..n, tensors k1..kn) is index m-1 of the arrays below and
 * bit m-1 of sel_dims.
 */
#ifndef NSIMPLEX_KERNEL_H
#define NSIMPLEX_KERNEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NSX_KERNEL_ABI_VERSION 3
/* The oldest version a driver built on this header still loads. */
#define NSX_KERNEL_ABI_MIN_VERSION 1
#define NSX_MAX_ORDER 8

/* Number formats of the precision model (nsx_kernel_info). */
#define NSX_FORMAT_F64 0
#define NSX_FORMAT_F32 1
#define NSX_FORMAT_F16 2
#define NSX_FORMAT_BF16 3
/* ABI 3, indexer_input_format only: the kernel quantizes idx_q and idx_k to
   FP8 (OCP E4M3 "fn", largest 448; E5M2, largest 57344) with one float32
   scale per block of indexer_block consecutive elements along di
   (docs/ORACLE.md 5.1); idx_w stays float32. */
#define NSX_FORMAT_E4M3 6
#define NSX_FORMAT_E5M2 7

/* Feature bits (nsx_kernel_info.features). */
#define NSX_FEAT_WINDOWS 1u
#define NSX_FEAT_SELECTION 2u
#define NSX_FEAT_GQA 4u
#define NSX_FEAT_CAUSAL_OFF 8u
#define NSX_FEAT_DISTINCT 16u
#define NSX_FEAT_BIASES 32u
#define NSX_FEAT_SUM 64u
#define NSX_FEAT_MEAN 128u
#define NSX_FEAT_LSE 256u

/* Reducers (nsx_kernel_problem.reduce). */
#define NSX_REDUCE_PRODUCT 0
#define NSX_REDUCE_SUM 1
#define NSX_REDUCE_MEAN 2

/* nsx_kernel_forward return values. */
#define NSX_KERNEL_OK 0
#define NSX_KERNEL_UNSUPPORTED 1

/* One problem. */
typedef struct nsx_kernel_problem {
    int n, B, L, H, Hkv, d, dv;
    int reduce;                   /* NSX_REDUCE_* */
    int causal;                   /* 1: j_m <= i for every m */
    int distinct;                 /* 1: the j_m pairwise different */
    int window[NSX_MAX_ORDER];    /* 0: none; else i - w < j (and j < i + w, causal off) */
    double score_scale, out_scale;
    double k_bias[NSX_MAX_ORDER], v_bias[NSX_MAX_ORDER];
    int topk;                     /* 0: no selection */
    unsigned sel_dims;            /* bit m-1: dimension m restricted to sel */
    const int32_t *sel;           /* [B, L, topk]; -1 pads; index < 0 or >= L is
                                     invalid; future indices must be masked */
} nsx_kernel_problem;

/* Buffers, float32, in the layouts above.  lse may be NULL. */
typedef struct nsx_kernel_io {
    const float *q;
    const float *k[NSX_MAX_ORDER];
    const float *v[NSX_MAX_ORDER];
    float *o;
    float *lse;
} nsx_kernel_io;

/* Indexer capabilities (nsx_kernel_info.indexer, ABI 2): what
   nsx_kernel_indexer writes and which problems it takes.  0: no indexer. */
#define NSX_IDX_WRITES_SCORES 1u  /* the E8 scores S[i,j] */
#define NSX_IDX_WRITES_SEL 2u     /* the E9 selection */
#define NSX_IDX_RELU 4u
#define NSX_IDX_SOFTMAX 8u
#define NSX_IDX_IDENTITY 16u
#define NSX_IDX_CAUSAL_OFF 32u    /* candidates every j, not only j <= i */

/* Indexer activations (nsx_indexer_problem.act), as docs/SPEC.md 2.2. */
#define NSX_IDX_ACT_RELU 0
#define NSX_IDX_ACT_SOFTMAX 1
#define NSX_IDX_ACT_IDENTITY 2

/* One indexer problem (E8 then E9, docs/SPEC.md section 2). */
typedef struct nsx_indexer_problem {
    int B, L, Hi, di;
    int act;                      /* NSX_IDX_ACT_* */
    int causal;                   /* 1: candidates j <= i */
    int topk;                     /* k of E9, >= 1 */
    double idx_scale;
} nsx_indexer_problem;

/* Indexer buffers: float32 inputs in the layouts of SPEC 0.2, outputs the
   driver asks for (NULL: not wanted; never asked beyond what info declares). */
typedef struct nsx_indexer_io {
    const float *idx_q;           /* [B, L, Hi, di] */
    const float *idx_k;           /* [B, L, di] */
    const float *idx_w;           /* [B, L, Hi] */
    float *scores;                /* [B, L, L]: S[i,j] for candidates; others not read */
    int32_t *sel;                 /* [B, L, topk]: S(i) as a set, -1 pads (any order) */
} nsx_indexer_io;

/* What the kernel is and supports. */
typedef struct nsx_kernel_info {
    int abi_version;              /* NSX_KERNEL_ABI_VERSION */
    const char *name;
    int input_format, accum_format, weights_format, output_format; /* NSX_FORMAT_* */
    int max_order;
    unsigned features;            /* NSX_FEAT_* */
    /* ABI 2 (absent, and never read, in an ABI 1 library's info): */
    unsigned indexer;             /* NSX_IDX_* bits; 0: no nsx_kernel_indexer */
    int indexer_input_format, indexer_accum_format, indexer_output_format; /* NSX_FORMAT_* */
    /* ABI 3 (absent, and never read, in an ABI 1 or 2 library's info): */
    int backward_max_order;       /* 0: no nsx_kernel_backward; else it takes n = 1..this
                                     (at most max_order) */
    unsigned backward_features;   /* NSX_FEAT_* of the problems the backward takes (a
                                     subset of features; NSX_FEAT_LSE is not used) */
    int backward_accum_format, backward_output_format; /* NSX_FORMAT_*: the gradients' model */
    int indexer_block;            /* the FP8 scale block (>= 1) when
                                     indexer_input_format is E4M3 or E5M2 */
} nsx_kernel_info;

/* The backward's buffers (ABI 3), float32 in the layouts above.  o and lse
   are what the library's own nsx_kernel_forward wrote for these inputs (lse
   -inf, or +inf, for an empty slice); dout is dO, the gradient of the loss
   with respect to o.  The kernel writes every element of dq, dk[m], dv[m]
   (m < n): the gradients of sum(dout * o) (docs/SPEC.md E7). */
typedef struct nsx_kernel_bwd_io {
    const float *q;
    const float *k[NSX_MAX_ORDER];
    const float *v[NSX_MAX_ORDER];
    const float *o;
    const float *lse;
    const float *dout;
    float *dq;
    float *dk[NSX_MAX_ORDER];
    float *dv[NSX_MAX_ORDER];
} nsx_kernel_bwd_io;

typedef const nsx_kernel_info *(*nsx_kernel_get_info_fn)(void);
typedef int (*nsx_kernel_forward_fn)(const nsx_kernel_problem *p, const nsx_kernel_io *io);
typedef int (*nsx_kernel_indexer_fn)(const nsx_indexer_problem *p, const nsx_indexer_io *io);
typedef int (*nsx_kernel_backward_fn)(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io);

/* Exported by the library. */
const nsx_kernel_info *nsx_kernel_get_info(void);

/* 0 done, 1 unsupported problem (nothing written), other: error. */
int nsx_kernel_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io);

/* ABI 2, optional: exported when info->indexer != 0.  E8 and E9 for p into
   the outputs io asks for.  0 done, 1 unsupported problem (nothing
   written), other: error. */
int nsx_kernel_indexer(const nsx_indexer_problem *p, const nsx_indexer_io *io);

/* ABI 3, optional: exported when info->backward_max_order != 0 (the info
   then declares NSX_FEAT_LSE: the driver runs the forward first for o and
   lse).  The gradients (E7) of p into io's dq, dk, dv.  0 done, 1
   unsupported problem (nothing written), other: error. */
int nsx_kernel_backward(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_KERNEL_H */
