/* Enclosures over MPFR with outward rounding (ref/ival.h). */
#include <assert.h>
#include <math.h>

#include "ref/ival.h"

void ival_init(ival *x, mpfr_prec_t prec)
{
    assert(prec >= MPFR_PREC_MIN && prec <= MPFR_PREC_MAX);
    mpfr_init2(x->lo, prec);
    mpfr_init2(x->hi, prec);
}

/* lo <= hi, neither NaN */
int ival_is_enclosure(const ival *x)
{
    return !mpfr_nan_p(x->lo) && !mpfr_nan_p(x->hi) && mpfr_lessequal_p(x->lo, x->hi);
}

void ival_clear(ival *x)
{
    mpfr_clear(x->lo);
    mpfr_clear(x->hi);
}

void ival_set_prec(ival *x, mpfr_prec_t prec)
{
    assert(prec >= MPFR_PREC_MIN && prec <= MPFR_PREC_MAX);
    mpfr_set_prec(x->lo, prec);
    mpfr_set_prec(x->hi, prec);
}

void ival_set_fr(ival *x, const mpfr_t v)
{
    assert(!mpfr_nan_p(v));
    mpfr_set(x->lo, v, MPFR_RNDD);
    mpfr_set(x->hi, v, MPFR_RNDU);
}

void ival_set_ui(ival *x, unsigned long v)
{
    mpfr_set_ui(x->lo, v, MPFR_RNDD);
    mpfr_set_ui(x->hi, v, MPFR_RNDU);
}

void ival_set_zero(ival *x)
{
    mpfr_set_zero(x->lo, 1);
    mpfr_set_zero(x->hi, 1);
}

void ival_set(ival *x, const ival *a)
{
    assert(ival_is_enclosure(a));
    mpfr_set(x->lo, a->lo, MPFR_RNDD);
    mpfr_set(x->hi, a->hi, MPFR_RNDU);
}

void ival_add(ival *r, const ival *a, const ival *b)
{
    assert(ival_is_enclosure(a) && ival_is_enclosure(b));
    mpfr_add(r->lo, a->lo, b->lo, MPFR_RNDD);
    mpfr_add(r->hi, a->hi, b->hi, MPFR_RNDU);
}

/* a - b is increasing in a and decreasing in b; the temporary keeps
   aliasing (r == b) safe. */
void ival_sub(ival *r, const ival *a, const ival *b)
{
    assert(ival_is_enclosure(a) && ival_is_enclosure(b));
    mpfr_t t;
    mpfr_init2(t, mpfr_get_prec(r->lo));
    mpfr_sub(t, a->lo, b->hi, MPFR_RNDD);
    mpfr_sub(r->hi, a->hi, b->lo, MPFR_RNDU);
    mpfr_swap(r->lo, t);
    mpfr_clear(t);
}

void ival_add_fr(ival *r, const mpfr_t w)
{
    assert(ival_is_enclosure(r) && mpfr_number_p(w));
    mpfr_add(r->lo, r->lo, w, MPFR_RNDD);
    mpfr_add(r->hi, r->hi, w, MPFR_RNDU);
}

/* The product's extremes are among the four products of the ends: the
   lower bound is the least of them rounded down, the upper the greatest
   rounded up. */
void ival_mul(ival *r, const ival *a, const ival *b)
{
    assert(ival_is_enclosure(a) && ival_is_enclosure(b));
    assert(mpfr_number_p(a->lo) && mpfr_number_p(a->hi) && mpfr_number_p(b->lo) && mpfr_number_p(b->hi));
    mpfr_prec_t prec = mpfr_get_prec(r->lo);
    mpfr_t lo, hi, t;
    mpfr_inits2(prec, lo, hi, t, (mpfr_ptr)0);
    mpfr_mul(lo, a->lo, b->lo, MPFR_RNDD);
    mpfr_mul(t, a->lo, b->hi, MPFR_RNDD);
    mpfr_min(lo, lo, t, MPFR_RNDD);
    mpfr_mul(t, a->hi, b->lo, MPFR_RNDD);
    mpfr_min(lo, lo, t, MPFR_RNDD);
    mpfr_mul(t, a->hi, b->hi, MPFR_RNDD);
    mpfr_min(lo, lo, t, MPFR_RNDD);
    mpfr_mul(hi, a->lo, b->lo, MPFR_RNDU);
    mpfr_mul(t, a->lo, b->hi, MPFR_RNDU);
    mpfr_max(hi, hi, t, MPFR_RNDU);
    mpfr_mul(t, a->hi, b->lo, MPFR_RNDU);
    mpfr_max(hi, hi, t, MPFR_RNDU);
    mpfr_mul(t, a->hi, b->hi, MPFR_RNDU);
    mpfr_max(hi, hi, t, MPFR_RNDU);
    mpfr_swap(r->lo, lo);
    mpfr_swap(r->hi, hi);
    mpfr_clears(lo, hi, t, (mpfr_ptr)0);
}

/* a*w is increasing in a for w >= 0 and decreasing for w < 0: the bounds
   swap with the sign of w.  mpfr_swap keeps aliasing (r == a) safe. */
void ival_mul_fr(ival *r, const ival *a, const mpfr_t w)
{
    assert(ival_is_enclosure(a) && mpfr_number_p(a->lo) && mpfr_number_p(a->hi) && mpfr_number_p(w));
    if (mpfr_sgn(w) >= 0) {
        mpfr_mul(r->lo, a->lo, w, MPFR_RNDD);
        mpfr_mul(r->hi, a->hi, w, MPFR_RNDU);
    } else {
        mpfr_t t;
        mpfr_init2(t, mpfr_get_prec(r->lo));
        mpfr_mul(t, a->hi, w, MPFR_RNDD);
        mpfr_mul(r->hi, a->lo, w, MPFR_RNDU);
        mpfr_swap(r->lo, t);
        mpfr_clear(t);
    }
}

void ival_mul_d(ival *r, const ival *a, double w)
{
    assert(isfinite(w));
    mpfr_t x;
    mpfr_init2(x, 53);
    mpfr_set_d(x, w, MPFR_RNDN); /* exact: a binary64 in 53 bits */
    ival_mul_fr(r, a, x);
    mpfr_clear(x);
}

void ival_addmul_fr(ival *r, const ival *a, const mpfr_t w)
{
    assert(ival_is_enclosure(r) && ival_is_enclosure(a));
    assert(mpfr_number_p(a->lo) && mpfr_number_p(a->hi) && mpfr_number_p(w));
    if (mpfr_sgn(w) >= 0) {
        mpfr_fma(r->lo, a->lo, w, r->lo, MPFR_RNDD);
        mpfr_fma(r->hi, a->hi, w, r->hi, MPFR_RNDU);
    } else {
        mpfr_fma(r->lo, a->hi, w, r->lo, MPFR_RNDD);
        mpfr_fma(r->hi, a->lo, w, r->hi, MPFR_RNDU);
    }
}

/* For z > 0, a/z is decreasing in z when a >= 0 and increasing when a < 0:
   the lower bound divides by z.hi if lo >= 0, else by z.lo; likewise hi. */
void ival_div_pos(ival *r, const ival *a, const ival *z)
{
    assert(ival_is_enclosure(a) && ival_is_enclosure(z));
    assert(mpfr_sgn(z->lo) > 0 && mpfr_number_p(z->hi));
    mpfr_t t;
    mpfr_init2(t, mpfr_get_prec(r->lo));
    mpfr_div(t, a->lo, mpfr_sgn(a->lo) >= 0 ? z->hi : z->lo, MPFR_RNDD);
    mpfr_div(r->hi, a->hi, mpfr_sgn(a->hi) >= 0 ? z->lo : z->hi, MPFR_RNDU);
    mpfr_swap(r->lo, t);
    mpfr_clear(t);
}

void ival_div_ui(ival *r, const ival *a, unsigned long u)
{
    assert(ival_is_enclosure(a) && u >= 1);
    mpfr_div_ui(r->lo, a->lo, u, MPFR_RNDD);
    mpfr_div_ui(r->hi, a->hi, u, MPFR_RNDU);
}

/* exp and log are increasing. */
void ival_exp(ival *r, const ival *a)
{
    assert(ival_is_enclosure(a));
    mpfr_exp(r->lo, a->lo, MPFR_RNDD);
    mpfr_exp(r->hi, a->hi, MPFR_RNDU);
}

void ival_log(ival *r, const ival *a)
{
    assert(ival_is_enclosure(a) && mpfr_sgn(a->lo) > 0);
    mpfr_log(r->lo, a->lo, MPFR_RNDD);
    mpfr_log(r->hi, a->hi, MPFR_RNDU);
}

int ival_round_d(const ival *x, double *out)
{
    assert(ival_is_enclosure(x) && out);
    /* special case: an exact value, zero included (+0 by convention) */
    if (mpfr_equal_p(x->lo, x->hi)) {
        *out = mpfr_zero_p(x->lo) ? 0.0 : mpfr_get_d(x->lo, MPFR_RNDN);
        return 1;
    }
    /* a zero end is the number 0, whose rounding is +0, whatever the sign
       of the MPFR zero (an upper end of -0 still admits the exact value 0) */
    double lo = mpfr_zero_p(x->lo) ? 0.0 : mpfr_get_d(x->lo, MPFR_RNDN);
    double hi = mpfr_zero_p(x->hi) ? 0.0 : mpfr_get_d(x->hi, MPFR_RNDN);
    if (lo != hi || signbit(lo) != signbit(hi))
        return 0;
    *out = lo;
    return 1;
}
