/*
 * Exact arithmetic on binary64 inputs (ref/exact.c).
 *
 * Every binary64 number is a dyadic rational m * 2^e.  Products and sums of
 * such numbers are dyadic too, so the multilinear scores (E1) and the reduced
 * values (E5) are computed EXACTLY in MPFR at a precision derived from the
 * inputs' exponent ranges, and every such operation is checked: MPFR's
 * ternary value is 0 exactly when its result is exact.  A nonzero ternary is
 * a bug in the precision analysis and aborts (REF_EXACT), so an inexact
 * "exact" value can never reach an output.
 */
#ifndef NSX_REF_EXACT_H
#define NSX_REF_EXACT_H

#include <stddef.h>

#include <mpfr.h>

/*
 * The binary range of a set of dyadic numbers: every member is an integer
 * multiple of 2^lsb and has magnitude below 2^msb.  An empty set (or zeros
 * only) has msb = lsb = 0 and empty = 1.
 */
typedef struct ref_range {
    long msb, lsb;
    int empty;
} ref_range;

/* Range of x[0..count-1], every stride-th element; non-finite values are
   skipped (they are never read by an allowed tuple, or reported earlier).
   Pre: x not NULL unless count = 0; stride >= 1. */
ref_range ref_range_of(const double *x, size_t count, size_t stride);
/* Range of the single value x. */
ref_range ref_range_d(double x);
/* Range that holds a + b for a in ra, b in rb (exact sum). */
ref_range ref_range_add(ref_range ra, ref_range rb);
/* Range that holds a * b. */
ref_range ref_range_mul(ref_range ra, ref_range rb);
/* Range that holds a sum of up to `terms` members of r.  Pre: terms >= 1. */
ref_range ref_range_sum(ref_range r, unsigned long terms);
/* The precision (bits) at which every member of r is exact in MPFR.
   Pre: r empty, or r.msb >= r.lsb. */
mpfr_prec_t ref_range_prec(ref_range r);

/* Aborts with file and line unless the MPFR call returned ternary 0. */
#define REF_EXACT(call) ref_exact_check((call), #call, __FILE__, __LINE__)
void ref_exact_check(int ternary, const char *what, const char *file, int line);

/*
 * The binary64 nearest to num / den (ties to even), for an exact num and an
 * integer den >= 1, through a round-to-odd intermediate: q = num/den
 * truncated to P >= 53 + 2 bits with its last bit forced to 1 when inexact,
 * then rounded to binary64 (also subnormal), which equals the direct
 * rounding of the exact quotient.  An exact zero gives +0.
 * Pre: num is a number (not NaN, not infinite); den >= 1.
 */
double ref_round_ratio(const mpfr_t num, unsigned long den);

/* MPFR's exponent range, widened to its extremes while the reference runs
   so that no intermediate overflows or underflows, then restored. */
typedef struct ref_erange {
    mpfr_exp_t emin, emax;
} ref_erange;
ref_erange ref_erange_widen(void);
void ref_erange_restore(ref_erange saved);

/* The working precision Ziv's loop starts from, and its cap (prec0, cap
   <= 0: the defaults).  Pre: a positive prec0 or cap is a valid MPFR
   precision. */
mpfr_prec_t ref_prec_start(long prec0, size_t terms);
mpfr_prec_t ref_prec_cap(long cap);

#endif
