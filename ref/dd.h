/*
 * Error-free transformations and double-double (dd) arithmetic for the fast
 * certified path (ref/fast.c).  Every function states its error; the proofs
 * use only IEEE 754 binary64 round-to-nearest and a correctly rounded fma
 * (C11 fma; compiled with -ffp-contract=off so that no other fma appears).
 *
 * Notation: u = 2^-53 (unit roundoff), eta = 2^-1074 (bounds the absolute error of
 * a multiplication or an fma whose result is subnormal; additions are exact
 * when their result is subnormal).  A dd number is a pair (h, l) standing for
 * h + l with |l| <= u |h| + eta ("normalized"); every dd produced here is
 * normalized.  Overflow is never assumed away: the callers check that every
 * value and bound they use is finite.
 *
 *   two_sum(a, b)      = (s, e):  s + e = a + b exactly, s = RN(a + b)      [Knuth]
 *   fast_two_sum(a, b) = (s, e):  exact when a = 0 or |a| >= |b|            [Dekker]
 *   two_prod(a, b)     = (p, e):  |p + e - ab| <= eta, p = RN(ab)           [fma]
 *
 *   dd_mul(a, b):   |r - ab| <= DD_MUL_REL |r.h| + 3 eta      (Lemma M below)
 *   dd_mul_d(a, b): |r - ab| <= DD_MUL_REL |r.h| + 3 eta      (b a double: Lemma M with bl = 0)
 *   dd_add(a, b):   |r - (a+b)| <= DD_ADD_REL (|a.h| + |b.h|)  (Lemma A)
 *   dd_div(a, b):   |r - a/b| <= DD_DIV_REL |r.h| + 4 eta / |b.h| (Lemma D)
 */
#ifndef NSX_REF_DD_H
#define NSX_REF_DD_H

#include <math.h>

typedef struct dd {
    double h, l;
} dd;

#define DD_U 0x1p-53
#define DD_ETA 0x1p-1074 /* >= the 2^-1075 bound, and representable */

/* Lemma M: for normalized a, b,
 *   ab = ah bh + ah bl + al bh + al bl,   (p, e) = two_prod(ah, bh),
 *   c  = fma(ah, bl, fma(al, bh, e))      (two roundings),
 *   dropped |al bl| <= u^2 |ah bh| (+ eta terms),
 *   |e| <= u |p|, |al bh|, |ah bl| <= u |ah bh|: the inner fma's error is
 *   <= u (2u + u^2) |ah bh|, the outer's <= u (3u + 3u^2) |ah bh|,
 *   so |ab - (p + c)| <= (1 + 2 + 3 + 1/8) u^2 |ah bh| + 3 eta, and
 *   |c| <= 3.1 u |p| <= |p|: fast_two_sum(p, c) is exact; |ah bh| <= (1 + u)|p|
 *   and |p| <= (1 + 4u) |r.h|.  DD_MUL_REL = 7 u^2 covers 6.2 u^2 (1+u)(1+4u). */
#define DD_MUL_REL (7 * 0x1p-106)
/* Lemma A (accurate dd + dd): two_sum of the high parts (exact) and of the
 * low parts (exact), then two renormalizations by two_sum (exact, whatever
 * the magnitudes).  Two roundings remain: sl + th, of a magnitude
 * <= 2.1 u (|ah| + |bh|), and, after the first renormalization, sl' + tl,
 * of a magnitude <= 1.1 u (|ah| + |bh|): together <= 3.2 u^2 (|ah| + |bh|).
 * (Joldes, Muller, Popescu, ACM TOMS 44(2), 2017, Algorithm 6, prove the
 * sharper 3u^2 |a + b|; the bound here is cruder but needs no case split.) */
#define DD_ADD_REL (5 * 0x1p-106)
/* Lemma D (dd / dd): q1 = RN(ah / bh); r = ((ah - p) - e) + al - q1 bl with
 * (p, e) = two_prod(q1, bh), where ah - p is exact (Sterbenz: p is within a
 * factor 2 of ah); the exact remainder a - q1 b differs from the computed r
 * by three roundings of terms <= 3u |a| and the dropped nothing (q1 bl is an
 * fma): <= 10 u^2 |a|; q2 = RN(r / bh) adds u |q2| <= 3 u^2 |q1|, and using
 * bh for b adds |r| |1/bh - 1/b| <= 3u |a/b| u.  Total <= 16 u^2 |q1| (1 + 4u)
 * + 4 eta / |bh| (the products' underflow, divided by b). */
#define DD_DIV_REL (20 * 0x1p-106)

static inline dd two_sum(double a, double b)
{
    double s = a + b;
    double bb = s - a;
    double e = (a - (s - bb)) + (b - bb);
    return (dd){s, e};
}

static inline dd fast_two_sum(double a, double b)
{
    double s = a + b;
    double e = b - (s - a);
    return (dd){s, e};
}

static inline dd two_prod(double a, double b)
{
    double p = a * b;
    double e = fma(a, b, -p);
    return (dd){p, e};
}

/* Lemma M */
static inline dd dd_mul(dd a, dd b)
{
    dd p = two_prod(a.h, b.h);
    double c = fma(a.h, b.l, fma(a.l, b.h, p.l));
    return fast_two_sum(p.h, c);
}

/* Lemma M with bl = 0 */
static inline dd dd_mul_d(dd a, double b)
{
    dd p = two_prod(a.h, b);
    double c = fma(a.l, b, p.l);
    return fast_two_sum(p.h, c);
}

/* Lemma A */
static inline dd dd_add(dd a, dd b)
{
    dd s = two_sum(a.h, b.h);
    dd t = two_sum(a.l, b.l);
    s.l += t.h;
    s = two_sum(s.h, s.l);
    s.l += t.l;
    return two_sum(s.h, s.l);
}

/* Lemma D, b.h != 0 */
static inline dd dd_div(dd a, dd b)
{
    double q1 = a.h / b.h;
    dd p = two_prod(q1, b.h);
    double r = ((a.h - p.h) - p.l) + a.l;
    r = fma(-q1, b.l, r);
    double q2 = r / b.h;
    return fast_two_sum(q1, q2);
}

/* (h, l) renormalized from any pair: exact (two_sum). */
static inline dd dd_norm(double h, double l)
{
    return two_sum(h, l);
}

#endif /* NSX_REF_DD_H */
