/*
 * Independent high-precision formulas for the tests (tests/hp.c): no code
 * shared with ref/.  Plain attention for n = 1, and the einsum form for
 * n = 2 (the full L x L x L score tensor, masked, normalised, contracted),
 * computed at a fixed precision (thousands of bits, rounding to nearest at
 * every step) and rounded to binary64 at the end.
 */
#ifndef NSX_TESTS_HP_H
#define NSX_TESTS_HP_H

#include <mpfr.h>

#include "tests/harness.h"

/* 1 when dimension m (0-based) of query i may use key j: causal, window and
   selection, as a range check (independently of ref/mask.c's predicate).
   sel: the S(i) lists or NULL. */
int hp_key_ok(const nsx_problem *p, const int32_t *sel, int b, int i, int m, int j);

/* n = 1: O = softmax(s Q K^T + mask) V.  sel: the S(i) lists or NULL. */
void hp_attention_n1(const tcase *t, const int32_t *sel, mpfr_prec_t prec, double *o, double *lse);

/* n = 2: T[i,j,k] = s sum_l Q[i,l] K1[j,l] K2[k,l] over the full tensor. */
void hp_attention_n2(const tcase *t, const int32_t *sel, mpfr_prec_t prec, double *o, double *lse);

#endif
