/*
 * cos x correctly rounded to binary64 by a double-double enclosure with a
 * proven bound, MPFR left for the rare x it does not decide: the angles of
 * core/rng.c's normals (x = RN(2 pi) u in (0, 2 pi)), which MPFR's cos
 * alone made about a tenth of the fuzzer's time.  The derivation is beside
 * each step in ref/fast_cos.c; tests/test_fast.c checks the values against
 * MPFR's and the enclosure against a 400-bit cos.
 */
#ifndef NSX_REF_FAST_COS_H
#define NSX_REF_FAST_COS_H

#include "ref/dd.h"

/* The enclosure's radius: |fast_cos(x) - cos x| <= FAST_COS_ERR for
   0 <= x <= FAST_COS_XMAX (ref/fast_cos.c derives 2^-76.8). */
#define FAST_COS_ERR 0x1p-76
#define FAST_COS_XMAX 8.0

/* cos x as a dd within FAST_COS_ERR, for 0 <= x <= FAST_COS_XMAX; NaN
   outside. */
dd fast_cos(double x);

/* cos x correctly rounded (to nearest, ties to even: MPFR's RNDN) when the
   enclosure decides it: *decided = 1 and the value; else *decided = 0 (the
   caller asks MPFR). */
double fast_cos_rn(double x, int *decided);

#endif /* NSX_REF_FAST_COS_H */
