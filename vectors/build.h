/*
 * Building a case from a recipe (vectors/recipe.h): inputs drawn from a
 * seeded generator and rounded to the input format, leak pairs and mask
 * probes appended as extra batches (batch 0 is the first member of every
 * pair), expected outputs from the reference, and the case's flags derived
 * from what it holds.  A case is an instance (include/nsimplex/instance.h):
 * its B is the recipe's B plus one batch per pair.  Used by `gen` and by
 * the fuzzer.
 */
#ifndef NSX_VECTORS_BUILD_H
#define NSX_VECTORS_BUILD_H

#include <stdint.h>

#include "io/meta.h"
#include "nsimplex/instance.h"
#include "nsimplex/ref.h"
#include "vectors/recipe.h"

/* The inputs of r drawn with seed (deterministic), and its pairs.  0, or an
   exit code with err set (NSX_E_INPUT: a recipe the builder cannot honour,
   e.g. a probe that has no excluded position). */
int nsx_build(const nsx_recipe *r, uint64_t seed, nsx_instance *b, nsx_err *err);

/* The expected outputs (reference), rows that pairs leave unjudged set to
   NaN, and the flags.  stats may be NULL. */
int nsx_build_expect(nsx_instance *b, const nsx_recipe *r, const nsx_ref_opts *opts,
                     nsx_ref_stats *stats, nsx_err *err);

/* The info to write with the case (flags and pairs point into b). */
nsx_case_info nsx_build_info(const nsx_instance *b, const char *id, const char *suite,
                             const char *description);


/* FNV-1a of s: a case's seed from its name. */
uint64_t nsx_seed_of(const char *s);

#endif
