/*
 * The description of one n-simplicial attention problem (docs/SPEC.md
 * sections 1-3) and views of its tensors in the contract's layouts.
 *
 * This is the reference's view: a superset of the kernel ABI's
 * nsx_kernel_problem (kernel.h).  It adds the selection's source (given
 * indices, a DSA indexer, or given scores), the exact real 1/sqrt(d) as a
 * score scale, and the input format the values are representable in.
 *
 * All tensors are row-major in these layouts (innermost last):
 *   q      [B, L, H,   d ]        k[m]   [B, L, Hkv, d ]
 *   v[m]   [B, L, Hkv, dv]        o      [B, L, H,   dv]
 *   lse    [B, H, L]              sel    [B, L, k]
 *   idx_q  [B, L, Hi, di]         idx_k  [B, L, di]
 *   idx_w  [B, L, Hi]             idx_s  [B, L, L]
 *   sel_scores [B, L, L]  (the E8 scores, an output of the indexer)
 * Dimension m of the equations (m = 1..n) is index m-1 of every array here.
 */
#ifndef NSIMPLEX_PROBLEM_H
#define NSIMPLEX_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NSX_SPEC_VERSION "1.1"
#define NSX_VERSION "0.1.0" /* the program and generator version */

/* Largest B, L, H, Hkv, d, dv, k, Hi, di the tools accept: products of them
   stay far from overflow in 64 bits, and every index fits an int. */
#define NSX_MAX_DIM (1 << 20)

/* Largest window w_m: any w >= L restricts nothing (SPEC E2), so every
   non-negative int (INT_MAX, without making every includer see limits.h). */
#define NSX_MAX_WINDOW 0x7fffffff

/* Where the selection S(i) comes from (section 2). */
enum nsx_sel_source {
    NSX_SEL_NONE = 0,    /* no selection */
    NSX_SEL_INDICES = 1, /* sel [B, L, k] given, as a sparse kernel receives it */
    NSX_SEL_INDEXER = 2, /* E8 from idx_q, idx_k, idx_w, then E9 */
    NSX_SEL_SCORES = 3   /* E9 on given scores idx_s */
};

/* Indexer activation (E8). */
enum nsx_act {
    NSX_ACT_RELU = 0,     /* DeepSeek V3.2 */
    NSX_ACT_SOFTMAX = 1,  /* softmax over the candidate keys j, per head */
    NSX_ACT_IDENTITY = 2
};

typedef struct nsx_selection {
    int source;        /* enum nsx_sel_source */
    int k;             /* top-k; k >= 1 when source != NONE */
    unsigned dims;     /* bit m-1: dimension m restricted to S(i); nonzero */
    int act;           /* enum nsx_act (source INDEXER) */
    double idx_scale;  /* E8 scale (source INDEXER) */
    int Hi, di;        /* indexer heads and width (source INDEXER) */
} nsx_selection;

typedef struct nsx_problem {
    int n;                      /* order, 1..NSX_MAX_ORDER */
    int B, L, H, Hkv, d, dv;    /* H a multiple of Hkv */
    int reduce;                 /* NSX_REDUCE_PRODUCT, _SUM, _MEAN */
    double score_scale;         /* the scale s of E1, a binary64 ... */
    int score_scale_rsqrt_d;    /* ... unless 1: s is the exact real 1/sqrt(d)
                                   (the default); score_scale then holds its
                                   nearest binary64 for display only */
    double out_scale;           /* E6 */
    double k_bias[NSX_MAX_ORDER], v_bias[NSX_MAX_ORDER];
    int causal;                 /* 1 (default): j_m <= i */
    int distinct;               /* 1: j_m pairwise different */
    int window[NSX_MAX_ORDER];  /* w_m, 0 = none */
    nsx_selection sel;
    int input_format;           /* NSX_FORMAT_*: every input is representable */
} nsx_problem;

/* Input tensors as binary64 (every input format embeds exactly). */
typedef struct nsx_inputs {
    const double *q;
    const double *k[NSX_MAX_ORDER];
    const double *v[NSX_MAX_ORDER];
    const int32_t *sel;   /* source INDICES */
    const double *idx_q, *idx_k, *idx_w; /* source INDEXER */
    const double *idx_s;  /* source SCORES */
    const double *dout;   /* do [B, L, H, dv]: the upstream gradient dO of
                             the backward pass (E7); NULL when absent */
} nsx_inputs;

/* Outputs.  sel, sel_scores and the gradients may be NULL; sel is written when the
   selection is computed (INDEXER or SCORES), sel_scores for INDEXER. */
typedef struct nsx_outputs {
    double *o;
    double *lse;
    int32_t *sel;
    double *sel_scores;   /* -inf where j is not a candidate key of i */
    /* The gradients of the backward pass (E7), NULL when absent: dq
       [B, L, H, d], dk[m] [B, L, Hkv, d] and dv[m] [B, L, Hkv, dv] for
       m = 0..n-1, in the layouts of q, k, v. */
    double *dq;
    double *dk[NSX_MAX_ORDER];
    double *dv[NSX_MAX_ORDER];
} nsx_outputs;

/* Fills the contract's defaults: n = 1, sizes 1, product, s = 1/sqrt(d),
   out_scale = 1, causal, no windows, no selection, no biases, f64 input. */
void nsx_problem_defaults(nsx_problem *p);

/* 0 when p is well formed, else -1 with a one-line reason in why (size
   whylen) naming the field, e.g. "H = 6 is not a multiple of Hkv = 4". */
int nsx_problem_check(const nsx_problem *p, char *why, size_t whylen);

/* The binary64 value of the score scale (RN(1/sqrt(d)) when rsqrt_d). */
double nsx_problem_score_scale(const nsx_problem *p);

/* Element counts of the tensors (no overflow for checked problems). */
size_t nsx_q_size(const nsx_problem *p);   /* B*L*H*d   */
size_t nsx_k_size(const nsx_problem *p);   /* B*L*Hkv*d */
size_t nsx_v_size(const nsx_problem *p);   /* B*L*Hkv*dv */
size_t nsx_o_size(const nsx_problem *p);   /* B*L*H*dv  */
size_t nsx_lse_size(const nsx_problem *p); /* B*H*L     */
size_t nsx_sel_size(const nsx_problem *p); /* B*L*k     */

/* Offsets of element (b, i, h, l) and friends in the layouts above. */
static inline size_t nsx_q_at(const nsx_problem *p, int b, int i, int h, int l)
{
    return (((size_t)b * p->L + i) * p->H + h) * p->d + l;
}
static inline size_t nsx_k_at(const nsx_problem *p, int b, int j, int g, int l)
{
    return (((size_t)b * p->L + j) * p->Hkv + g) * p->d + l;
}
static inline size_t nsx_v_at(const nsx_problem *p, int b, int j, int g, int c)
{
    return (((size_t)b * p->L + j) * p->Hkv + g) * p->dv + c;
}
static inline size_t nsx_o_at(const nsx_problem *p, int b, int i, int h, int c)
{
    return (((size_t)b * p->L + i) * p->H + h) * p->dv + c;
}
static inline size_t nsx_lse_at(const nsx_problem *p, int b, int h, int i)
{
    return ((size_t)b * p->H + h) * p->L + i;
}
static inline size_t nsx_sel_at(const nsx_problem *p, int b, int i, int r)
{
    return ((size_t)b * p->L + i) * p->sel.k + r;
}
/* The selection's inputs (source INDEXER, SCORES) in their layouts. */
static inline size_t nsx_idx_q_at(const nsx_problem *p, int b, int i, int h, int l)
{
    return (((size_t)b * p->L + i) * p->sel.Hi + h) * p->sel.di + l;
}
static inline size_t nsx_idx_k_at(const nsx_problem *p, int b, int j, int l)
{
    return ((size_t)b * p->L + j) * p->sel.di + l;
}
static inline size_t nsx_idx_w_at(const nsx_problem *p, int b, int i, int h)
{
    return ((size_t)b * p->L + i) * p->sel.Hi + h;
}
static inline size_t nsx_idx_s_at(const nsx_problem *p, int b, int i, int j)
{
    return ((size_t)b * p->L + i) * p->L + j;
}
/* The key/value head that query head h reads (GQA). */
static inline int nsx_kv_head(const nsx_problem *p, int h)
{
    return h / (p->H / p->Hkv);
}

/* The kernel ABI's view of p (sel pointer from in, may be NULL). */
void nsx_problem_to_kernel(const nsx_problem *p, const int32_t *sel,
                           nsx_kernel_problem *kp);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_PROBLEM_H */
