/*
 * Enclosures: intervals over MPFR with outward rounding (ref/ival.c).
 *
 * An ival x encloses a real number X: x.lo <= X <= x.hi.  Every operation
 * rounds lo down (MPFR_RNDD) and hi up (MPFR_RNDU), so the enclosure of a
 * result holds the exact result whenever the operands' enclosures hold
 * theirs.  The width hi - lo is the error bound tracked through the
 * computation; when every step is exact, lo = hi.
 *
 * Results may alias operands.
 *
 * Preconditions (asserted, MPFR's style): every operand is an enclosure,
 * lo <= hi with neither NaN (ival_is_enclosure); the further conditions of
 * an operation are stated with it.  Outward rounding then makes every
 * result an enclosure too.
 */
#ifndef NSX_REF_IVAL_H
#define NSX_REF_IVAL_H

#include <mpfr.h>

typedef struct ival {
    mpfr_t lo, hi;
} ival;

/* Pre: MPFR_PREC_MIN <= prec <= MPFR_PREC_MAX.  x holds NaNs until set. */
void ival_init(ival *x, mpfr_prec_t prec);
void ival_clear(ival *x);
/* Changes the precision; the value is lost.  Pre: as ival_init. */
void ival_set_prec(ival *x, mpfr_prec_t prec);

/* 1 when x is an enclosure: lo <= hi, neither NaN (infinite ends allowed). */
int ival_is_enclosure(const ival *x);

/* x = [v, v] rounded outward to x's precision.  Pre: v is not NaN. */
void ival_set_fr(ival *x, const mpfr_t v);
void ival_set_ui(ival *x, unsigned long v);
void ival_set_zero(ival *x);
/* x = a */
void ival_set(ival *x, const ival *a);

/* r = a + b */
void ival_add(ival *r, const ival *a, const ival *b);
/* r = a - b.  Pre: a, b enclosures. */
void ival_sub(ival *r, const ival *a, const ival *b);
/* r = r + w for an exact w.  Pre: r an enclosure, w finite. */
void ival_add_fr(ival *r, const mpfr_t w);
/* r = a * b for enclosures of either sign.  Pre: a, b finite. */
void ival_mul(ival *r, const ival *a, const ival *b);
/* r = a * w for an exact w of either sign.  Pre: w finite (a's ends
   times w are then never 0 * inf), a finite. */
void ival_mul_fr(ival *r, const ival *a, const mpfr_t w);
/* r = a * w for a binary64 w of either sign.  Pre: as ival_mul_fr. */
void ival_mul_d(ival *r, const ival *a, double w);
/* r = r + a * w for an exact w of either sign (one rounding per bound).
   Pre: r and a enclosures, a and w finite. */
void ival_addmul_fr(ival *r, const ival *a, const mpfr_t w);
/* r = a / z for z enclosed in positive numbers.  Pre: z.lo > 0, z.hi
   finite. */
void ival_div_pos(ival *r, const ival *a, const ival *z);
/* r = a / u for an integer u.  Pre: u >= 1. */
void ival_div_ui(ival *r, const ival *a, unsigned long u);
/* r = exp(a) */
void ival_exp(ival *r, const ival *a);
/* r = log(a).  Pre: a.lo > 0 (a enclosed in positive numbers). */
void ival_log(ival *r, const ival *a);

/*
 * Decides the binary64 rounding (to nearest, ties to even) of the enclosed
 * number: 1 with *out set when RN(lo) and RN(hi) are the same binary64 (RN
 * is monotone, so every number in between rounds to it too; a zero needs
 * the same sign at both ends; an exact zero, lo = hi = 0, gives +0,
 * and a tiny nonzero number keeps its sign: RN(-2^-2000) = -0), else 0.
 * Pre: x an enclosure, out not NULL.
 */
int ival_round_d(const ival *x, double *out);

#endif
