/*
 * exp and log for the fast certified path, in double-double, with proven
 * bounds (libm's exp and log are never trusted for accuracy).
 *
 * fast_exp(x), for a dd x with -FAST_X_CUT <= x.h <= FAST_X_MAX:
 *   |fast_exp(x) - exp(x.h + x.l)| <= FAST_EXP_REL * exp(x.h + x.l).
 *
 * Method (the derivation is beside each step of fast_exp below):
 *   k = nearest integer to x.h * 128/ln2,  K = floor(k / 128),  j = k - 128 K,
 *   r = x - k ln2/128  (|r| <= R_MAX = 0.002708 < 2^-8.52),
 *   exp(x) = 2^K * 2^(j/128) * exp(r),
 *   exp(r) - 1 = r (1 + r (1/2 + r (1/6 + r (1/24 + r P(r))))),
 *   P(r) = sum_{k=5..9} r^(k-5)/k!   (truncated at degree 9).
 * The constants (ln2/128 in three parts, 2^(j/128) and 1/6, 1/24 as dd,
 * 1/k! for k = 5..9) are computed once with MPFR (fast_exp_init) and their
 * errors checked there.
 */
#ifndef NSX_REF_FAST_EXP_H
#define NSX_REF_FAST_EXP_H

#include <stdint.h>
#include <string.h>

#include "ref/dd.h"

/* exp(x) for x.h below -FAST_X_CUT is not evaluated: the caller drops the
   term and bounds it by exp(-FAST_X_CUT + its error).  At -650, exp(x) >=
   2^-938, so the low part of the result, 2^-53 below, is still normal. */
#define FAST_X_CUT 650.0
#define FAST_X_MAX 64.0
/* The relative error bound of fast_exp: the derivation in fast_exp gives
   2^-100.3 + 2^-137; one bit of slack. */
#define FAST_EXP_REL 0x1p-99

typedef struct fast_exp_tab {
    double inv;          /* RN(128/ln2) */
    double L1, L2, L3;   /* ln2/128 = L1 + L2 + L3 + lambda, |lambda| <= 2^-150;
                            L1 has at most 36 significant bits */
    dd T[128];           /* 2^(j/128), |T - 2^(j/128)| <= 2^-106 2^(j/128) */
    dd c3, c4;           /* 1/6, 1/24, each within 2^-106 relative */
    double c5, c6, c7, c8, c9; /* RN(1/k!) */
} fast_exp_tab;

extern fast_exp_tab fast_exp_t;

/* Fills fast_exp_t once (thread-safe). */
void fast_exp_init(void);

static inline uint64_t fast_bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline double fast_double(uint64_t b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static inline dd fast_exp(dd x)
{
    const fast_exp_tab *t = &fast_exp_t;
    /* k: any integer works for the identity; this one makes |r| <= R_MAX:
       |x.h| <= 650 gives |k| < 2^17 and |t - x.h 128/ln2| <= 2^-36. */
    double tk = x.h * t->inv + 0x1.8p52; /* 1.5 2^52 + k exactly */
    double kd = tk - 0x1.8p52;
    /* k, j = k mod 128 and 2^K from the bits of tk, in 64-bit integers
       (two's complement): k = bits(tk) - bits(1.5 2^52), and
       (k - j) 2^45 = K 2^52, the exponent field of 2^K less the bias */
    uint64_t k = fast_bits(tk) - fast_bits(0x1.8p52);
    uint64_t j = k & 127;
    double s = fast_double(((k - j) << 45) + ((uint64_t)1023 << 52));
    /* r = x.h + x.l - k L1 - k L2 - k L3 - k lambda:
       k L1 is exact (17 + 36 bits); two_sum and two_prod are exact here
       (no underflow: |k L2| >= 2^-44 when k != 0). */
    dd a = two_sum(x.h, -kd * t->L1);
    dd p2 = two_prod(kd, t->L2);
    dd b = two_sum(a.h, -p2.h);
    dd c = two_sum(b.h, x.l);
    /* lo: five roundings of magnitudes <= 2^-59: error <= 2^-109.6;
       |k L3| <= 2^-80, |k lambda| <= 2^-133:  |r^ - r| <= E_R = 2^-109.5 */
    double lo = ((a.l + b.l) + c.l) - p2.l - kd * t->L3;
    dd r = two_sum(c.h, lo);
    /* P(r) in double from r.h alone: coefficient roundings, four fma
       roundings, the dropped r.l and the truncation after r^9/9!:
       |P^ - P*(r)| <= 2^-59, where P*(r) = sum_{k>=5} r^(k-5)/k!. */
    double P = fma(fma(fma(fma(t->c9, r.h, t->c8), r.h, t->c7), r.h, t->c6), r.h, t->c5);
    /* H_k = 1/k! + r H_{k+1} in dd (Lemmas M, A); the error of level k is
       err_k <= |r| err_{k+1} + |H_{k+1}| E_R + 7u^2 |r H_{k+1}| + 5u^2 (|1/k!| + |r H_{k+1}|)
       + |1/k! - c_k|:  err_4 <= 2^-67.5, err_3 <= 2^-76, err_2 <= 2^-84.5,
       err_1 <= 2^-93, and q = r H_1: |q^ - (exp(r) - 1)| <= 2^-101. */
    dd h4 = dd_add(t->c4, dd_mul_d(r, P));
    dd h3 = dd_add(t->c3, dd_mul(r, h4));
    dd h2 = dd_add((dd){0.5, 0.0}, dd_mul(r, h3));
    dd h1 = dd_add((dd){1.0, 0.0}, dd_mul(r, h2));
    dd q = dd_mul(r, h1);
    /* 2^(j/128) (1 + q): Lemma M (<= 2^-111), Lemma A (<= 2^-102.7), the
       table (2^-106); with q's 2^-101 over exp(r) >= 0.997: <= 2^-100.3
       relative. */
    dd e = dd_add(t->T[j], dd_mul(t->T[j], q));
    /* 2^K (-940 <= K <= 93): exact for the high part (>= 2^-938); the low
       part may round in the subnormal range, by <= eta = 2^-137 relative. */
    return (dd){e.h * s, e.l * s};
}

/*
 * log of a dd z >= 1/2 (a sum of weights whose largest is about 1), as
 * M + log z: returns LSE^ = M + log z^ in dd with *err >= |LSE^ - (M +
 * log z^)| proven (z^ itself taken as exact here; the caller adds the
 * propagated error of z^).  *err = +inf when the check below fails.
 */
dd fast_log_shift(dd z, double M, double *err);

/*
 * log x correctly rounded to binary64, for 2^-90 < x < 2^90, when
 * fast_log_shift's enclosure decides it: *decided = 1 and the value;
 * else *decided = 0 (the caller asks MPFR).  core/rng.c's normals.
 */
double fast_log_rn(double x, int *decided);

#endif /* NSX_REF_FAST_EXP_H */
