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
#include "nsimplex/names.h"
#include "nsimplex/pairs.h"
#include "nsimplex/problem.h"

/* The metadata key under which the object is stored. */
#define NSX_META_KEY "nsimplex"

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

#endif
