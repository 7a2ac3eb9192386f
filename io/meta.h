/*
 * The "nsimplex" metadata object of a vector file (DECISIONS.md, "Vector file
 * and metadata"; docs/SPEC.md section 4): the problem, the case's identity
 * and its leak / probe pairs, as one JSON object stored as a string under
 * the safetensors "__metadata__" key "nsimplex".
 *
 * Parsing is strict about every key it knows (type, enum strings, ranges,
 * lengths, consistency between keys) and ignores keys it does not know, so
 * that a newer 1.x writer's additions do not break this reader.  A spec
 * version with another major number is refused.
 */
#ifndef NSX_IO_META_H
#define NSX_IO_META_H

#include "nsimplex/error.h"
#include "nsimplex/problem.h"

/* The metadata key under which the object is stored. */
#define NSX_META_KEY "nsimplex"

enum nsx_pair_kind {
    NSX_PAIR_LEAK = 0,  /* inputs of batches a, b agree at positions <= t */
    NSX_PAIR_PROBE = 1  /* they differ only in k_dim, v_dim at position j */
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
    int t;           /* leak: last shared position, 0..L-1 */
    int future;      /* leak: enum nsx_future */
    int i;           /* probe: the query row, 0..L-1 */
    int dim;         /* probe: the dimension m, 1..n (1-based as in JSON) */
    int j;           /* probe: the changed key position, 0..L-1 */
} nsx_pair;

/* Everything in the metadata that is not the problem.  Filled by
   nsx_meta_parse, it owns its strings and arrays (nsx_case_info_free); a
   caller that only writes may point the fields at its own data. */
typedef struct nsx_case_info {
    char *id;            /* "case": the case's name */
    char *suite;         /* NULL when absent */
    char *description;
    char *spec;          /* as read ("1.0"); the writer always writes its own */
    char *generator;     /* NULL when absent */
    char **flags;        /* nflags names (EmptySlice, TieAtK, LeakPair, ...) */
    int nflags;
    nsx_pair *pairs;
    int npairs;
} nsx_case_info;

/*
 * Parses the metadata object json (a NUL-terminated JSON text) into p and
 * info (info may be NULL: then only p is filled).  Required: spec, case,
 * description, flags, n, B, L, H, Hkv, d, dv, reduce, score_scale,
 * out_scale, causal, windows, distinct, k_bias, v_bias, selection,
 * input_format; optional: suite, generator, score_scale_exact, pairs.
 * p passes nsx_problem_check afterwards.  Returns 0, or NSX_E_INPUT with
 * err = "metadata: KEY: <problem>" (the caller adds the file name), or
 * NSX_E_NOMEM when out of memory.  On error p and info hold nothing
 * to free.
 */
int nsx_meta_parse(const char *json, nsx_problem *p, nsx_case_info *info, nsx_err *err);

/*
 * The metadata object for p and info (info may be NULL: empty case name,
 * description and flags) as a one-line JSON text, every number exact
 * (integers as integers, others as the shortest decimal that reads back to
 * the same binary64).  spec is NSX_SPEC_VERSION; generator is info's or
 * "nsimplex NSX_VERSION".  p must pass nsx_problem_check and the pairs must
 * be in range: else NULL with NSX_E_INPUT in err (never writes what
 * nsx_meta_parse would refuse).  The caller frees the result with free().
 */
char *nsx_meta_format(const nsx_problem *p, const nsx_case_info *info, nsx_err *err);

/* Frees what nsx_meta_parse allocated in info and zeroes it. */
void nsx_case_info_free(nsx_case_info *info);

/* The pair's checks against p (batches, rows, dimension in range), for the
   parser, the writer and generators.  0, or NSX_E_INPUT with err =
   "metadata: pairs[idx].KEY: <problem>". */
int nsx_pair_check(const nsx_problem *p, const nsx_pair *pair, int idx, nsx_err *err);

/* The rows the pairs leave unjudged (docs/SPEC.md 4.5): skip[b * L + i] = 1
   for every row i > t of batch b of a leak pair whose future is huge, NaN
   or infinite, 0 elsewhere.  skip has B * L entries. */
void nsx_pairs_unjudged(const nsx_problem *p, const nsx_pair *pairs, int npairs, unsigned char *skip);

/* JSON names of the enums (NULL when out of range). */
const char *nsx_reduce_name(int reduce);      /* product, sum, mean */
const char *nsx_source_name(int source);      /* indices, indexer, scores */
const char *nsx_act_name(int act);            /* relu, softmax, identity */
const char *nsx_pair_kind_name(int kind);     /* leak, probe */
const char *nsx_future_name(int future);      /* random, huge, nan, inf */

#endif
