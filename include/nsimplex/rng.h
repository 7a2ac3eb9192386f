/*
 * The one seeded generator (splitmix64) for everything that draws random
 * numbers: the vector builder, the fuzzer, the benchmark's inputs, the
 * tests.  The same seed gives the same bits on every platform, compiler and
 * C library: each function draws in a fixed order, and every floating-point
 * step is either exact, a single IEEE 754 operation (correctly rounded by
 * the hardware), or MPFR's correctly rounded log and cos; libm is not used.
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
/* Standard normal (Box-Muller): two uniforms u1, u2, the radius's first;
   sqrt(-2 RN(log u1)) * RN(cos(RN(2 pi) u2)), each step rounded to nearest
   (RN: correctly rounded by MPFR). */
double nsx_rng_normal(nsx_rng *r);
/* Uniform integer in [0, n), n >= 1. */
int nsx_rng_below(nsx_rng *r, int n);
/* 1 with probability p: 53 random bits as a fraction in [0, 1), below p. */
int nsx_rng_chance(nsx_rng *r, double p);

#endif
