/*
 * binary64 <-> f32, f16, bf16 (fpformat.h).
 *
 * One description per format, one rounding routine and one packer for all
 * three: a format with p bits of precision (the leading bit included),
 * smallest normal exponent emin and largest exponent emax has values
 * m * 2^(e - p + 1) with integer m < 2^p and emin <= e <= emax; below 2^emin
 * the quantum stays 2^(emin - p + 1) (subnormals).
 */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "io/fpformat.h"

struct fmt {
    int p;      /* precision in bits, the implicit leading bit included */
    int emin;   /* exponent of the smallest normal number */
    int emax;   /* exponent of the largest finite number (= the bias) */
    int ebits;  /* width of the exponent field */
};

static const struct fmt fmt_f32 = {24, -126, 127, 8};
static const struct fmt fmt_f16 = {11, -14, 15, 5};
static const struct fmt fmt_bf16 = {8, -126, 127, 8};

static const struct fmt *fmt_of(int format)
{
    switch (format) {
    case NSX_FORMAT_F32: return &fmt_f32;
    case NSX_FORMAT_F16: return &fmt_f16;
    case NSX_FORMAT_BF16: return &fmt_bf16;
    default: return NULL;
    }
}

/* Round x to the format, to nearest with ties to even. */
static double round_fmt(double x, const struct fmt *f)
{
    if (x == 0 || !isfinite(x))
        return x;
    /* Exponent of x's last kept bit: p - 1 bits below the leading one, but
       never below the subnormal quantum. */
    int e = ilogb(x);
    int q = (e < f->emin ? f->emin : e) - (f->p - 1);
    /* a = |x| / 2^q is exact (a power-of-two scaling that stays within
       binary64's range) and below 2^p; its integer part is the kept
       significand, its fraction what is rounded off. */
    double a = ldexp(fabs(x), -q);
    double m = floor(a);
    double frac = a - m; /* exact: a's low bits */
    if (frac > 0.5 || (frac == 0.5 && fmod(m, 2.0) != 0))
        m += 1; /* may carry to 2^p: still exact, the exponent just grows */
    double y = ldexp(m, q);
    double max_finite = ldexp(2.0 - ldexp(1.0, 1 - f->p), f->emax);
    if (y > max_finite)
        y = INFINITY;
    return copysign(y, x); /* keeps the sign of an underflowed zero */
}

/* The bits of v, a value of the format (already rounded). */
static uint32_t pack(double v, const struct fmt *f)
{
    int fbits = f->p - 1;
    uint32_t emask = (1u << f->ebits) - 1;
    uint32_t sign = signbit(v) ? 1u << (f->ebits + fbits) : 0;
    if (isnan(v))
        return sign | emask << fbits | 1u << (fbits - 1); /* quiet NaN */
    if (isinf(v))
        return sign | emask << fbits;
    if (v == 0)
        return sign;
    double a = fabs(v);
    int e = ilogb(a);
    if (e < f->emin) /* subnormal: the significand in units of the quantum */
        return sign | (uint32_t)ldexp(a, fbits - f->emin);
    uint32_t m = (uint32_t)ldexp(a, fbits - e) - (1u << fbits);
    return sign | (uint32_t)(e + f->emax) << fbits | m;
}

static double unpack(uint32_t bits, const struct fmt *f)
{
    int fbits = f->p - 1;
    uint32_t emask = (1u << f->ebits) - 1;
    uint32_t ef = bits >> fbits & emask;
    uint32_t m = bits & ((1u << fbits) - 1);
    double s = bits >> (f->ebits + fbits) & 1 ? -1.0 : 1.0;
    if (ef == emask)
        return m ? copysign(NAN, s) : s * INFINITY;
    if (ef == 0) /* zero or subnormal */
        return s * ldexp((double)m, f->emin - fbits);
    return s * ldexp((double)(m | 1u << fbits), (int)ef - f->emax - fbits);
}

double nsx_f32_decode(uint32_t bits) { return unpack(bits, &fmt_f32); }
double nsx_f16_decode(uint16_t bits) { return unpack(bits, &fmt_f16); }
double nsx_bf16_decode(uint16_t bits) { return unpack(bits, &fmt_bf16); }

uint32_t nsx_f32_encode(double x) { return pack(round_fmt(x, &fmt_f32), &fmt_f32); }
uint16_t nsx_f16_encode(double x) { return (uint16_t)pack(round_fmt(x, &fmt_f16), &fmt_f16); }
uint16_t nsx_bf16_encode(double x) { return (uint16_t)pack(round_fmt(x, &fmt_bf16), &fmt_bf16); }

double nsx_round_to_format(double x, int format)
{
    assert(format >= NSX_FORMAT_F64 && format <= NSX_FORMAT_BF16);
    const struct fmt *f = fmt_of(format);
    return f ? round_fmt(x, f) : x;
}

int nsx_representable(double x, int format)
{
    if (isnan(x))
        return 1;
    return nsx_round_to_format(x, format) == x;
}
