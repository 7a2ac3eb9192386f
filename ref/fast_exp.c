/*
 * The constants of fast_exp (ref/fast_exp.h), computed once with MPFR and
 * checked, and the logarithm of the fast path (one Newton step on
 * fast_exp, with a bound that does not trust libm's log).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpfr.h>

#include "ref/fast_exp.h"

fast_exp_tab fast_exp_t;

enum { WP = 400 }; /* working precision of the constants */

/* (h, l) = the dd nearest x: h = RN(x), l = RN(x - h); then
   |x - h - l| <= u |l| <= u^2 |h| (1 + u): within 2^-106 relative. */
static dd dd_of(const mpfr_t x)
{
    mpfr_t r;
    mpfr_init2(r, WP);
    double h = mpfr_get_d(x, MPFR_RNDN);
    mpfr_sub_d(r, x, h, MPFR_RNDN); /* exact: x has WP bits, h is near x */
    double l = mpfr_get_d(r, MPFR_RNDN);
    mpfr_clear(r);
    return (dd){h, l};
}

/* Aborts unless |x - (d.h + d.l)| <= rel |x|: a broken table is a bug. */
static void check_dd(const mpfr_t x, dd d, double rel, const char *what)
{
    mpfr_t e, t;
    mpfr_inits2(WP, e, t, (mpfr_ptr)0);
    mpfr_sub_d(e, x, d.h, MPFR_RNDN);
    mpfr_sub_d(e, e, d.l, MPFR_RNDN);
    mpfr_abs(e, e, MPFR_RNDN);
    mpfr_abs(t, x, MPFR_RNDN);
    mpfr_mul_d(t, t, rel, MPFR_RNDN);
    if (mpfr_cmp(e, t) > 0) {
        fprintf(stderr, "nsimplex: internal error: fast_exp constant %s is off\n", what);
        abort();
    }
    mpfr_clears(e, t, (mpfr_ptr)0);
}

static void init_tables(void)
{
    fast_exp_tab *t = &fast_exp_t;
    mpfr_t x, y, l1;
    mpfr_inits2(WP, x, y, (mpfr_ptr)0);
    mpfr_init2(l1, 36);

    /* ln2/128 = L1 + L2 + L3 + lambda */
    mpfr_const_log2(x, MPFR_RNDN);
    mpfr_div_2ui(x, x, 7, MPFR_RNDN);
    mpfr_set(l1, x, MPFR_RNDZ); /* 36 significant bits */
    t->L1 = mpfr_get_d(l1, MPFR_RNDN);
    mpfr_sub_d(y, x, t->L1, MPFR_RNDN);
    t->L2 = mpfr_get_d(y, MPFR_RNDN);
    mpfr_sub_d(y, y, t->L2, MPFR_RNDN);
    t->L3 = mpfr_get_d(y, MPFR_RNDN);
    mpfr_sub_d(y, y, t->L3, MPFR_RNDN); /* lambda (to WP bits) */
    mpfr_abs(y, y, MPFR_RNDN);
    if (mpfr_cmp_ui_2exp(y, 1, -150) > 0) {
        fprintf(stderr, "nsimplex: internal error: ln2/128 in three parts is off\n");
        abort();
    }
    /* 128/ln2 */
    mpfr_ui_div(y, 1, x, MPFR_RNDN);
    t->inv = mpfr_get_d(y, MPFR_RNDN);
    /* 2^(j/128) */
    for (int j = 0; j < 128; j++) {
        mpfr_set_ui(x, (unsigned long)j, MPFR_RNDN);
        mpfr_div_2ui(x, x, 7, MPFR_RNDN);
        mpfr_ui_pow(x, 2, x, MPFR_RNDN);
        t->T[j] = dd_of(x);
        check_dd(x, t->T[j], 0x1p-106, "2^(j/128)");
    }
    /* 1/6, 1/24 as dd; 1/k! for k = 5..9 rounded */
    mpfr_set_ui(x, 1, MPFR_RNDN);
    mpfr_div_ui(x, x, 6, MPFR_RNDN);
    t->c3 = dd_of(x);
    check_dd(x, t->c3, 0x1p-106, "1/6");
    mpfr_div_ui(x, x, 4, MPFR_RNDN);
    t->c4 = dd_of(x);
    check_dd(x, t->c4, 0x1p-106, "1/24");
    double *c[5] = {&t->c5, &t->c6, &t->c7, &t->c8, &t->c9};
    for (int k = 5; k <= 9; k++) {
        mpfr_div_ui(x, x, (unsigned long)k, MPFR_RNDN);
        *c[k - 5] = mpfr_get_d(x, MPFR_RNDN);
    }
    mpfr_clears(x, y, l1, (mpfr_ptr)0);
}

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

void fast_exp_init(void)
{
    pthread_once(&tables_once, init_tables);
}

/*
 * log z by one Newton step on exp, y0 = log(z.h) from libm taken as an
 * arbitrary guess:  w = z exp(-y0) - 1 exactly, log z = y0 + log(1 + w).
 *   w^ = z (x) fast_exp(-y0) - 1:
 *        |w^ - w| <= E_w = (FAST_EXP_REL + 8u^2)(1 + |w^|)(1 + 2^-50) + u |w^| + 2^-1000
 *        (fast_exp's error times |z exp(-y0)| = |1 + w|; Lemma M on the
 *        product; two_sum exact for the subtraction of 1; the rounding of
 *        the low parts, u^2 (1 + |w^|), and of w^ itself, u |w^|)
 *   log(1 + w) = w - w^2/2 + R,  |R| <= |w|^3 / (3 (1 - |w|))  for |w| < 1,
 *   |(w - w^2/2) - (w^ - w^^2/2)| <= |w - w^| (1 + |w| + |w^|) / 1 ... = E_w (1 + 2|w^| + E_w),
 *   and two roundings in forming M + y0 + (w^ - w^^2/2): <= u |c| + u |lo|.
 * Needs |w^| + E_w <= 1/2 (else *err = inf): a wild y0 only costs a
 * decision, never a wrong bound.
 */
dd fast_log_shift(dd z, double M, double *err)
{
    double y0 = log(z.h);
    if (!(z.h > 0) || !isfinite(y0) || !(-y0 >= -FAST_X_CUT && -y0 <= FAST_X_MAX)) {
        *err = INFINITY;
        return (dd){NAN, NAN};
    }
    dd ey = fast_exp((dd){-y0, 0.0});
    dd m = dd_mul(z, ey);
    dd s = two_sum(m.h, -1.0);
    double w = s.h + (s.l + m.l);
    double aw = fabs(w);
    double Ew = (FAST_EXP_REL + 8 * 0x1p-106) * (1 + aw) * (1 + 0x1p-50) + 0x1p-53 * aw + 0x1p-1000;
    double wmax = aw + Ew;
    if (!(wmax <= 0.5)) {
        *err = INFINITY;
        return (dd){NAN, NAN};
    }
    double R = wmax * wmax * wmax / (3 * (1 - wmax)) * (1 + 0x1p-40);
    double c = fma(-0.5 * w, w, w); /* w - w^2/2 */
    dd a = two_sum(M, y0);
    double lo = a.l + c;
    *err = (R + Ew * (1 + 2 * aw + Ew) + 0x1p-52 * (fabs(c) + fabs(lo))) * (1 + 0x1p-40);
    return two_sum(a.h, lo);
}

/*
 * The enclosure [h + l - err, h + l + err] of log x, widened outward to
 * doubles lo <= l - err and hi >= l + err (one step of nextafter past each
 * rounded end): RN is monotone, so when RN(h + lo) = RN(h + hi) every real
 * in between, log x among them, rounds to that value.
 */
double fast_log_rn(double x, int *decided)
{
    *decided = 0;
    if (!(x > 0x1p-90 && x < 0x1p90))
        return NAN;
    fast_exp_init();
    double err;
    dd y = fast_log_shift((dd){x, 0.0}, 0.0, &err);
    if (!isfinite(err) || !isfinite(y.h))
        return NAN;
    double lo = nextafter(y.l - err, -INFINITY), hi = nextafter(y.l + err, INFINITY);
    double a = y.h + lo, b = y.h + hi;
    if (a != b)
        return NAN;
    *decided = 1;
    return a;
}
