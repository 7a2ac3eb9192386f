/* Exact arithmetic on binary64 inputs: ranges, checks, a rounded ratio. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ref/exact.h"

/* binary64: x = m * 2^(e-53) with frexp's e, never finer than 2^-1074. */
ref_range ref_range_d(double x)
{
    ref_range r = {0, 0, 1};
    if (!isfinite(x) || x == 0)
        return r;
    int e;
    frexp(x, &e); /* 2^(e-1) <= |x| < 2^e */
    r.msb = e;
    r.lsb = e - 53 < -1074 ? -1074 : e - 53;
    r.empty = 0;
    return r;
}

static ref_range range_union(ref_range a, ref_range b)
{
    if (a.empty)
        return b;
    if (b.empty)
        return a;
    ref_range r = {a.msb > b.msb ? a.msb : b.msb, a.lsb < b.lsb ? a.lsb : b.lsb, 0};
    return r;
}

ref_range ref_range_of(const double *x, size_t count, size_t stride)
{
    assert((x || count == 0) && stride >= 1);
    ref_range r = {0, 0, 1};
    for (size_t t = 0; t < count; t++)
        r = range_union(r, ref_range_d(x[t * stride]));
    return r;
}

/* |a + b| < 2^max(msb) + 2^max(msb) = 2^(max(msb)+1); multiples of 2^min(lsb). */
ref_range ref_range_add(ref_range ra, ref_range rb)
{
    if (ra.empty || rb.empty)
        return range_union(ra, rb);
    ref_range r = range_union(ra, rb);
    r.msb += 1;
    return r;
}

/* |a * b| < 2^(msb_a + msb_b); multiples of 2^(lsb_a + lsb_b). */
ref_range ref_range_mul(ref_range ra, ref_range rb)
{
    ref_range r = {0, 0, 1};
    if (ra.empty || rb.empty)
        return r;
    r.msb = ra.msb + rb.msb;
    r.lsb = ra.lsb + rb.lsb;
    r.empty = 0;
    return r;
}

/* A sum of t terms each below 2^msb is below t * 2^msb <= 2^(msb + ceil(log2 t)). */
ref_range ref_range_sum(ref_range r, unsigned long terms)
{
    assert(terms >= 1);
    long bits = 0;
    while (terms > 1 && (1ul << bits) < terms)
        bits++;
    if (!r.empty)
        r.msb += bits;
    return r;
}

/* An integer multiple of 2^lsb below 2^msb has at most msb - lsb significant
   bits; one more absorbs a carry from a sign change, two are MPFR's minimum. */
mpfr_prec_t ref_range_prec(ref_range r)
{
    assert(r.empty || r.msb >= r.lsb);
    long p = r.empty ? 2 : r.msb - r.lsb + 1;
    return p < 2 ? 2 : (mpfr_prec_t)p;
}

void ref_exact_check(int ternary, const char *what, const char *file, int line)
{
    assert(what && file && line > 0);
    if (ternary == 0)
        return;
    fprintf(stderr, "nsimplex: %s:%d: internal error: %s was not exact "
                    "(a bug in the reference's precision analysis)\n",
            file, line, what);
    abort();
}

double ref_round_ratio(const mpfr_t num, unsigned long den)
{
    assert(mpfr_number_p(num) && den >= 1);
    enum { P = 64 }; /* >= 53 + 2: round-to-odd then RN equals RN */
    mpfr_t q;
    mpfr_init2(q, P);
    /* truncated quotient */
    int inexact = mpfr_div_ui(q, num, den, MPFR_RNDZ);
    /* round to odd: an inexact result gets its last bit set, which is
       moving one unit away from zero when that bit is 0 */
    if (inexact && mpfr_min_prec(q) < P) {
        if (mpfr_sgn(q) > 0)
            mpfr_nextabove(q);
        else
            mpfr_nextbelow(q);
    }
    double r = mpfr_zero_p(q) ? 0.0 : mpfr_get_d(q, MPFR_RNDN);
    mpfr_clear(q);
    return r;
}

ref_erange ref_erange_widen(void)
{
    ref_erange saved = {mpfr_get_emin(), mpfr_get_emax()};
    mpfr_set_emin(mpfr_get_emin_min());
    mpfr_set_emax(mpfr_get_emax_max());
    return saved;
}

void ref_erange_restore(ref_erange saved)
{
    assert(saved.emin <= saved.emax);
    mpfr_set_emin(saved.emin);
    mpfr_set_emax(saved.emax);
}

/* 53 bits for the result, 2 log2(terms) for the accumulated roundings of a
   sum of terms, and a margin that makes a second iteration rare. */
mpfr_prec_t ref_prec_start(long prec0, size_t terms)
{
    assert(prec0 <= 0 || (prec0 >= MPFR_PREC_MIN && prec0 <= MPFR_PREC_MAX));
    if (prec0 > 0)
        return (mpfr_prec_t)prec0;
    long bits = 0;
    while (terms >> bits)
        bits++;
    return 64 + 2 * bits + 16;
}

mpfr_prec_t ref_prec_cap(long cap)
{
    assert(cap <= 0 || (cap >= MPFR_PREC_MIN && cap <= MPFR_PREC_MAX));
    return cap > 0 ? (mpfr_prec_t)cap : (mpfr_prec_t)1 << 16;
}
