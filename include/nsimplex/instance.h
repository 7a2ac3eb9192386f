/*
 * An instance of a problem: the problem, an owning set of its tensors in
 * the contract's layouts (include/nsimplex/problem.h), the pairs between its
 * batches and the flags that describe it.  The vector builder (vectors/)
 * and the fuzzer (fuzz/) build cases as instances; the tests allocate
 * theirs the same way.
 */
#ifndef NSIMPLEX_INSTANCE_H
#define NSIMPLEX_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/pairs.h"
#include "nsimplex/problem.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NSX_INSTANCE_MAX_FLAGS 32
#define NSX_INSTANCE_MAX_PAIRS 32

typedef struct nsx_instance {
    nsx_problem p;          /* the shape of every array below */
    nsx_inputs in;          /* views of the arrays below */
    nsx_outputs out;
    double *q, *k[NSX_MAX_ORDER], *v[NSX_MAX_ORDER];
    double *idx_q, *idx_k, *idx_w, *idx_s; /* the selection's inputs (E8) */
    int32_t *sel;           /* given selection (source INDICES) */
    double *o, *lse, *sel_scores;
    int32_t *sel_out;       /* computed selection (sources INDEXER, SCORES) */
    double *dout;           /* gradient cases (E7): the input do, and the */
    double *dq, *dk[NSX_MAX_ORDER], *dv[NSX_MAX_ORDER]; /* gradients; NULL
                               unless nsx_instance_alloc_grads ran */
    nsx_pair pairs[NSX_INSTANCE_MAX_PAIRS];
    int npairs;
    const char *flags[NSX_INSTANCE_MAX_FLAGS]; /* static strings */
    int nflags;
} nsx_instance;

/* Every array p needs, zeroed, with the views in t->in and t->out set, and
   t->p = *p; no pairs or flags.  The inputs: q, k_m, v_m; sel for source
   INDICES; idx_q, idx_k, idx_w for INDEXER; idx_s for SCORES.  The
   outputs: o, lse; sel_out for INDEXER and SCORES; sel_scores for
   INDEXER.  0, or NSX_E_NOMEM with nothing left to free.
   Pre: p passed nsx_problem_check. */
int nsx_instance_alloc(nsx_instance *t, const nsx_problem *p);

/* For a gradient case (E7): do (an input, t->in.dout) and the gradients
   dq, dk_m, dv_m (outputs, t->out.dq, dk[m], dv[m]), zeroed, for t->p as it
   is now.  0, or NSX_E_NOMEM (what was allocated is freed with t). */
int nsx_instance_alloc_grads(nsx_instance *t);

/* Frees every array and zeroes t (a zeroed t is fine). */
void nsx_instance_free(nsx_instance *t);

/* Adds flag once (the instance keeps the pointer); silently drops it when
   NSX_INSTANCE_MAX_FLAGS are set. */
void nsx_instance_add_flag(nsx_instance *t, const char *flag);

/* Appends q.  0, or -1 when NSX_INSTANCE_MAX_PAIRS are set. */
int nsx_instance_add_pair(nsx_instance *t, const nsx_pair *q);

/* Adds the flags q gives its instance (nsx_pair_flags). */
void nsx_instance_flag_pair(nsx_instance *t, const nsx_pair *q);

/* The input tensors of binary64 values, in this order: q, k_1, v_1, ...,
   k_n, v_n, then idx_q, idx_k, idx_w (INDEXER) or idx_s (SCORES). */
enum nsx_tensor_kind { NSX_T_Q, NSX_T_K, NSX_T_V, NSX_T_IDX_Q, NSX_T_IDX_K, NSX_T_IDX_W, NSX_T_IDX_S };
typedef struct nsx_tensor_view {
    int kind;               /* enum nsx_tensor_kind */
    int m;                  /* the dimension (0-based) of k_m, v_m; else 0 */
    double *x;
    size_t per_pos;         /* values per (batch, position): x[(b * L + i) * per_pos + e] */
} nsx_tensor_view;
#define NSX_MAX_INPUTS (2 * NSX_MAX_ORDER + 4)

/* Fills v (room for NSX_MAX_INPUTS) with t's input tensors; returns how
   many. */
int nsx_instance_inputs(nsx_instance *t, nsx_tensor_view *v);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_INSTANCE_H */
