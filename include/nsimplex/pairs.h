/*
 * Pairs of batches that a case's outputs must relate bit for bit
 * (docs/SPEC.md 4.5): leak pairs (the inputs agree up to position t, so
 * causal rows up to t must agree) and mask probes (the inputs differ only in
 * one key that the mask excludes from row i, so row i must agree).  io/meta.c
 * reads and writes them; the builder (vectors/) and the fuzzer make them;
 * the oracle (oracle/) judges them.
 */
#ifndef NSIMPLEX_PAIRS_H
#define NSIMPLEX_PAIRS_H

#include "nsimplex/error.h"
#include "nsimplex/problem.h"

#ifdef __cplusplus
extern "C" {
#endif

enum nsx_pair_kind {
    NSX_PAIR_LEAK = 0,  /* inputs of batches a, b agree at positions <= t */
    NSX_PAIR_PROBE = 1, /* they differ only in k_dim, v_dim at position j */
    NSX_PAIR_GRADLEAK = 2 /* gradient cases: they differ only in q and do at
                             positions < t, so the rows >= t and the key
                             gradients at positions >= t agree */
};

/* What a leak pair puts in the future positions of batch b. */
enum nsx_future {
    NSX_FUTURE_RANDOM = 0,
    NSX_FUTURE_HUGE = 1,
    NSX_FUTURE_NAN = 2,
    NSX_FUTURE_INF = 3
};

typedef struct nsx_pair {
    int kind;        /* enum nsx_pair_kind */
    int a, b;        /* the two batches, 0..B-1, different */
    int t;           /* leak: last shared position, 0..L-1; gradleak: the
                        first position where q and do agree, 1..L-1 */
    int future;      /* leak: enum nsx_future */
    int i;           /* probe: the query row, 0..L-1 */
    int dim;         /* probe: the dimension m, 1..n (1-based as in JSON) */
    int j;           /* probe: the changed key position, 0..L-1 */
} nsx_pair;

/* The pair's checks against p (batches, rows, dimension in range), for the
   parser, the writer and generators.  0, or NSX_E_INPUT with err =
   "metadata: pairs[idx].KEY: <problem>". */
int nsx_pair_check(const nsx_problem *p, const nsx_pair *pair, int idx, nsx_err *err);

/* The rows the pairs leave unjudged (docs/SPEC.md 4.5): skip[b * L + i] = 1
   for every row i > t of batch b of a leak pair whose future is huge, NaN
   or infinite, 0 elsewhere.  skip has B * L entries. */
void nsx_pairs_unjudged(const nsx_problem *p, const nsx_pair *pairs, int npairs, unsigned char *skip);

/* A leak pair over every position (t = L - 1) with a random future: batch
   b is a copy of batch a. */
int nsx_pair_is_copy(const nsx_pair *q, int L);

/* The flags a pair gives its case ("LeakPair" and its future's
   "FutureNaN", ..., "BatchCopy", "MaskProbe", "GradLeakPair"), into
   flags[0..1]; returns how many (1 or 2). */
int nsx_pair_flags(const nsx_pair *q, int L, const char **flags);

/* The flag of a leak future: "FutureRandom", "FutureHuge", "FutureNaN",
   "FutureInf" (NULL when out of range). */
const char *nsx_future_flag(int future);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_PAIRS_H */
