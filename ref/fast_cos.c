/*
 * cos in double-double with a proven bound (ref/fast_cos.h), for the
 * normals of core/rng.c.  Notation of ref/dd.h: u = 2^-53, eta = 2^-1074,
 * Lemmas M (dd_mul) and A (dd_add).
 *
 * 1. Reduction.  k = nearbyint(RN(x RN(2/pi))): for 0 <= x <= 8,
 *    |RN(x RN(2/pi)) - x 2/pi| <= 8 u 2/pi + u 5.1 < 2^-49, so
 *    |x 2/pi - k| <= 1/2 + 2^-49 and |r| = |x - k pi/2| <= pi/4 + 2^-48 < 0.786
 *    (any k gives the identity below; this one bounds |r|).  With
 *    pi/2 = P1 + P2 + P3 + lambda (P1 of 33 significant bits, P2, P3
 *    doubles, |lambda| <= 2^-135, checked when the table is made):
 *      k P1 exact (k <= 5: 36 bits); a = two_sum(x, -k P1) exact;
 *      p2 = two_prod(k, P2) exact (|k P2| >= 2^-40 or k = 0: no underflow);
 *      s = two_sum(a.h, -p2.h) exact;
 *      lo = ((a.l + s.l) - p2.l) - RN(k P3):  |a.l|, |s.l| <= u 8 = 2^-50,
 *      |p2.l| <= 2^-80, |k P3| <= 2^-80, so every partial sum is at most
 *      2^-48.9 and the three additions round by at most 2^-101.9 each, the
 *      product by 2^-133;
 *      rho = two_sum(s.h, lo), exact.
 *    rho.h + rho.l = x - k pi/2 + e_R with |e_R| <= 3 2^-101.9 + 2^-133 +
 *    5 |lambda| <= E_R = 2^-100.  cos and sin are 1-Lipschitz, so evaluating
 *    at rho instead of r costs at most E_R.
 * 2. cos x = cos rho, -sin rho, -cos rho, sin rho for k mod 4 = 0, 1, 2, 3
 *    (negation exact).  |rho| <= 0.787, z = rho^2 <= 0.62.
 * 3. cos rho = P_c(z) = sum_{j=0..12} (-1)^j z^j / (2j)!, and sin rho =
 *    rho P_s(z), P_s(z) = sum_{j=0..12} (-1)^j z^j / (2j+1)!.  Truncation: an
 *    alternating series of decreasing terms (z / ((2j+1)(2j+2)) < 1) errs by
 *    at most its first dropped term: |rho|^26/26! <= 2^-97.2 for cos,
 *    |rho|^27/27! <= 2^-102.3 for sin.
 * 4. Horner, in binary64 for the tail j = 5..12 and in dd for j = 4..0.
 *    z^ = dd_mul(rho, rho): |z^ - z| <= 7u^2 |z| (1 + 4u) + 3 eta (Lemma M).
 *    Let c*_j be the exact coefficients, P_j(z) = sum_{i >= j} c*_i z^(i-j)
 *    the exact tail polynomials, e_j the error of the computed H_j.
 *    Tail: t_12 = d_12, t_j = fma(t_{j+1}, z^.h, d_j), d_j = RN(c*_j).  The
 *    coefficients fall fast (|c*_{j+1}| <= |c*_j| / 100 from j = 5), so
 *    |P_j| and |t_j| are at most 1.01 |c*_j|; with |z^.h - z| <= u |z| +
 *    |z^ - z| <= 1.1 u |z|:
 *      e_j <= |d_j - c*_j| + |z^.h - z| |t_{j+1}| + |z| e_{j+1} + u |t_j|
 *          <= 0.62 e_{j+1} + 2.02 u |c*_j| + 0.69 u |c*_{j+1}|,
 *    so e_5 <= 2.1 u |c*_5| (1 + 0.62/100 + ...) <= 2.2 u |c*_5|, with
 *    |c*_5| = 1/10! (cos) or 1/11! (sin): e_5 <= 2^-73.5.
 *    Head: H_5 = (t_5, 0), H_j = dd_add(c_j, dd_mul(z^, H_{j+1})), c_j as dd
 *    within 2^-106 relative (checked); |P_j| <= 1, |H_j| <= 1.01, |c_j| <= 1:
 *      e_j <= |c_j - c*_j| + |z^ - z| |H_{j+1}| + |z| e_{j+1}
 *             + 7u^2 |z^ H_{j+1}| + 3 eta             (Lemma M)
 *             + 5u^2 (|c_j| + |z^ H_{j+1}|)           (Lemma A)
 *          <= 0.62 e_{j+1} + (1 + 4.4 + 4.4 + 8.2) u^2 + 7 eta,
 *    so e_0 <= 0.62^5 e_5 + (18 u^2 + 7 eta) / 0.38 <= 2^-76.9 + 48 u^2 + 19 eta.
 *    For sin the last product rho H_0 (Lemma M) adds 7u^2 |rho H_0| + 3 eta
 *    and scales e_0 by |rho| <= 0.787.
 * Total: 2^-76.9 + 48 u^2 + 19 eta + 2^-97.2 + E_R <= 2^-76.8 <= FAST_COS_ERR
 * = 2^-76.  An enclosure of 2^-76 leaves about one cos in 2^20 to MPFR.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpfr.h>

#include "ref/fast_cos.h"

enum { WP = 400, NC = 13 }; /* working precision of the constants; coefficients */

static struct {
    double two_pi_inv;   /* RN(2/pi) */
    double P1, P2, P3;   /* pi/2 = P1 + P2 + P3 + lambda, |lambda| <= 2^-135 */
    dd c[NC], s[NC];     /* (-1)^j / (2j)!, (-1)^j / (2j+1)!, within 2^-106 relative */
    double cd[NC], sd[NC]; /* the same rounded to binary64 */
} T;

/* The dd nearest x (within 2^-106 relative), aborting when it is not: a
   broken table is a bug. */
static dd dd_checked(const mpfr_t x, const char *what)
{
    mpfr_t r;
    mpfr_init2(r, WP);
    double h = mpfr_get_d(x, MPFR_RNDN);
    mpfr_sub_d(r, x, h, MPFR_RNDN);
    double l = mpfr_get_d(r, MPFR_RNDN);
    mpfr_sub_d(r, r, l, MPFR_RNDN); /* x - h - l */
    mpfr_abs(r, r, MPFR_RNDN);
    mpfr_t t;
    mpfr_init2(t, WP);
    mpfr_abs(t, x, MPFR_RNDN);
    mpfr_div_2ui(t, t, 106, MPFR_RNDN);
    if (mpfr_cmp(r, t) > 0) {
        fprintf(stderr, "nsimplex: internal error: fast_cos constant %s is off\n", what);
        abort();
    }
    mpfr_clears(r, t, (mpfr_ptr)0);
    return (dd){h, l};
}

static void init_table(void)
{
    mpfr_t x, y, p1;
    mpfr_inits2(WP, x, y, (mpfr_ptr)0);
    mpfr_init2(p1, 33);
    mpfr_const_pi(x, MPFR_RNDN);
    mpfr_div_2ui(x, x, 1, MPFR_RNDN); /* pi/2 */
    mpfr_set(p1, x, MPFR_RNDZ);        /* 33 significant bits */
    T.P1 = mpfr_get_d(p1, MPFR_RNDN);
    mpfr_sub_d(y, x, T.P1, MPFR_RNDN);
    T.P2 = mpfr_get_d(y, MPFR_RNDN);
    mpfr_sub_d(y, y, T.P2, MPFR_RNDN);
    T.P3 = mpfr_get_d(y, MPFR_RNDN);
    mpfr_sub_d(y, y, T.P3, MPFR_RNDN); /* lambda */
    mpfr_abs(y, y, MPFR_RNDN);
    if (mpfr_cmp_ui_2exp(y, 1, -135) > 0) {
        fprintf(stderr, "nsimplex: internal error: pi/2 in three parts is off\n");
        abort();
    }
    mpfr_ui_div(y, 1, x, MPFR_RNDN);
    T.two_pi_inv = mpfr_get_d(y, MPFR_RNDN);
    /* 1/n!, alternating */
    mpfr_set_ui(x, 1, MPFR_RNDN);
    for (int n = 0; n < 2 * NC; n++) {
        if (n > 0)
            mpfr_div_ui(x, x, (unsigned long)n, MPFR_RNDN);
        mpfr_set(y, x, MPFR_RNDN);
        if ((n / 2) % 2)
            mpfr_neg(y, y, MPFR_RNDN);
        if (n % 2)
            T.s[n / 2] = dd_checked(y, "1/(2j+1)!"), T.sd[n / 2] = mpfr_get_d(y, MPFR_RNDN);
        else
            T.c[n / 2] = dd_checked(y, "1/(2j)!"), T.cd[n / 2] = mpfr_get_d(y, MPFR_RNDN);
    }
    mpfr_clears(x, y, p1, (mpfr_ptr)0);
}

static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* Step 4: sum_j c[j] z^j by Horner, the tail from HEAD on in binary64
   (cd), the head in dd (c). */
enum { HEAD = 5 };
static dd horner(const dd *c, const double *cd, dd z)
{
    double t = cd[NC - 1];
    for (int j = NC - 2; j >= HEAD; j--)
        t = fma(t, z.h, cd[j]);
    dd h = {t, 0.0};
    for (int j = HEAD - 1; j >= 0; j--)
        h = dd_add(c[j], dd_mul(z, h));
    return h;
}

dd fast_cos(double x)
{
    if (!(x >= 0 && x <= FAST_COS_XMAX))
        return (dd){NAN, NAN};
    pthread_once(&table_once, init_table);
    /* step 1 */
    double kd = nearbyint(x * T.two_pi_inv);
    int k = (int)kd;
    dd a = two_sum(x, -kd * T.P1);
    dd p2 = two_prod(kd, T.P2);
    dd s = two_sum(a.h, -p2.h);
    double lo = ((a.l + s.l) - p2.l) - kd * T.P3;
    dd rho = two_sum(s.h, lo);
    /* steps 2-4 */
    dd z = dd_mul(rho, rho);
    dd y = k % 2 ? dd_mul(rho, horner(T.s, T.sd, z)) : horner(T.c, T.cd, z);
    if (k % 4 == 1 || k % 4 == 2)
        y = (dd){-y.h, -y.l};
    return y;
}

/* As fast_log_rn (ref/fast_exp.c): [y.h + y.l - E, y.h + y.l + E] widened
   outward to doubles lo <= y.l - E, hi >= y.l + E; RN is monotone, so when
   RN(y.h + lo) = RN(y.h + hi) every real between, cos x among them,
   rounds to it. */
double fast_cos_rn(double x, int *decided)
{
    *decided = 0;
    dd y = fast_cos(x);
    if (!isfinite(y.h) || !isfinite(y.l))
        return NAN;
    double lo = nextafter(y.l - FAST_COS_ERR, -INFINITY), hi = nextafter(y.l + FAST_COS_ERR, INFINITY);
    double a = y.h + lo, b = y.h + hi;
    if (a != b || a == 0)
        return NAN;
    *decided = 1;
    return a;
}
