/*
 * A small seeded generator (splitmix64) for everything that draws random
 * numbers: the vector builder, the fuzzer, the benchmark's inputs, the
 * tests.  The same seed gives the same sequence on every platform and
 * compiler: each function draws in a fixed order.
 */
#ifndef NSIMPLEX_RNG_H
#define NSIMPLEX_RNG_H

#include <stdint.h>

typedef struct nsx_rng {
    uint64_t s;
} nsx_rng;

/* The next 64 random bits. */
uint64_t nsx_rng_next(nsx_rng *r);
/* Uniform in (0, 1): a multiple of 2^-53 plus 2^-54, never 0 or 1. */
double nsx_rng_uniform(nsx_rng *r);
/* Standard normal (Box-Muller): two uniforms, the radius's first. */
double nsx_rng_normal(nsx_rng *r);
/* Uniform integer in [0, n), n >= 1. */
int nsx_rng_below(nsx_rng *r, int n);

#endif
