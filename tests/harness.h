/*
 * Test support shared by every runner: a seeded generator and problems
 * with their tensors allocated (tests/harness.c).  Randomness is always
 * seeded; tests print the seed when they fail.
 */
#ifndef NSX_TESTS_HARNESS_H
#define NSX_TESTS_HARNESS_H

#include <stdint.h>

#include "nsimplex/instance.h"
#include "nsimplex/problem.h"
#include "nsimplex/rng.h"

typedef nsx_rng rng;

#define rng_next nsx_rng_next
/* Uniform integer in [lo, hi]. */
int rng_int(rng *r, int lo, int hi);
/* A random dyadic number m * 2^-frac with |m| < 2^bits: exactly
   representable in bf16 when bits <= 8. */
double rng_dyadic(rng *r, int bits, int frac);

/* A problem with every tensor it needs allocated (zeroed), and outputs:
   core's instance (include/nsimplex/instance.h). */
typedef nsx_instance tcase;

/* nsx_instance_alloc, aborting when out of memory. */
void tcase_alloc(tcase *t, const nsx_problem *p);
/* Fills q, k, v (and the indexer inputs) with rng_dyadic(bits, frac). */
void tcase_fill(tcase *t, rng *r, int bits, int frac);
void tcase_free(tcase *t);
/* A random given selection into t->sel: entries in -1..L (so -1 pads,
   invalid L and future keys all occur), no valid index twice in a row. */
void tcase_random_sel(tcase *t, rng *r);

#endif
