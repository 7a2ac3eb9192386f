/* splitmix64 and what is drawn from it (include/nsimplex/rng.h). */
#include <float.h>
#include <math.h>
#include <mpfr.h>

#include "nsimplex/rng.h"
#include "ref/fast_cos.h"
#include "ref/fast_exp.h"

/* Each binary64 operation below is rounded once, to binary64: no x87
   excess precision (the C compiler may not contract them either: each
   statement is one operation on rounded values). */
_Static_assert(FLT_EVAL_METHOD == 0, "binary64 arithmetic must be evaluated in binary64");

uint64_t nsx_rng_next(nsx_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double nsx_rng_uniform(nsx_rng *r)
{
    return ((double)(nsx_rng_next(r) >> 11) + 0.5) * 0x1p-53; /* exact */
}

/* f(x) for MPFR's log or cos, correctly rounded to 53 bits: a function of
   x alone, the same bits on every platform (unlike libm's). */
static double rn(int (*f)(mpfr_ptr, mpfr_srcptr, mpfr_rnd_t), double x)
{
    mpfr_t t;
    mpfr_init2(t, 53);
    mpfr_set_d(t, x, MPFR_RNDN); /* exact */
    f(t, t, MPFR_RNDN);
    double y = mpfr_get_d(t, MPFR_RNDN); /* exact for a normal t of 53 bits */
    mpfr_clear(t);
    return y;
}

/* log u correctly rounded: the fast path's proven enclosure decides it
   (ref/fast_exp.h, fast_log_rn) for all but a few in 2^40 draws, MPFR the
   rest; the same bits as MPFR's alone, several times faster. */
static double log_rn(double u)
{
    int decided;
    double y = fast_log_rn(u, &decided);
    return decided ? y : rn(mpfr_log, u);
}

/* cos x correctly rounded: the fast path's proven enclosure decides it
   (ref/fast_cos.h) for all but about one x in 2^40, MPFR the rest; the
   same bits as MPFR's alone. */
static double cos_rn(double x)
{
    int decided;
    double y = fast_cos_rn(x, &decided);
    return decided ? y : rn(mpfr_cos, x);
}

double nsx_rng_normal(nsx_rng *r)
{
    double l = log_rn(nsx_rng_uniform(r));
    double radius = sqrt(-2 * l);                   /* -2 l exact; sqrt is IEEE's */
    double angle = 6.283185307179586 * nsx_rng_uniform(r); /* RN(2 pi) u, one rounding */
    return radius * cos_rn(angle);
}

int nsx_rng_below(nsx_rng *r, int n)
{
    return (int)(nsx_rng_next(r) % (uint64_t)n);
}

int nsx_rng_chance(nsx_rng *r, double p)
{
    return (double)(nsx_rng_next(r) >> 11) * 0x1p-53 < p;
}
