/*
 * Tests of io/: number formats, the strict JSON front end, the safetensors
 * reader and writer, atomic writes, the nsimplex metadata, case files, and
 * `nsimplex show` on top of them.  One Check suite ("io"), one test case per
 * module.  Files go under $NSX_TMP (make check sets it).
 *
 * References are independent of the code under test: MPFR (and the
 * compiler's float and _Float16 conversions) for the number formats, the
 * reference safetensors writer's published bytes for the layout, and the
 * hostile-file table of tests/st_corpus.c for the reader.
 *
 * NSX_WRITE_CORPUS=DIR build/tests/test_io writes the fuzzers' seed corpus
 * into DIR instead of testing (tests/st_corpus.c says when).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpfr.h>

#include "io/atomic.h"
#include "io/casefile.h"
#include "io/fpformat.h"
#include "io/json.h"
#include "io/meta.h"
#include "io/safetensors.h"
#include "nsimplex/rng.h"
#include "tests/cli_run.h"
#include "tests/st_corpus.h"
#include "tests/env.h"

#define SEED 0x6e73696d706c6578ull /* "nsimplex"; printed on failure */

/* ---- helpers ---- */

static uint64_t rnd_state = SEED;
static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rnd_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* $NSX_TMP/io_<printf(fmt, ...)> into out. */
static char *tmp_path(char *out, size_t n, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(out, n, "%s/io_%s", test_tmpdir(), name);
    return out;
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file (malloc'd), or NULL when it does not exist. */
static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0, k;
    unsigned char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    while ((k = fread(b + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) {
            b = realloc(b, cap *= 2);
            ck_assert_ptr_nonnull(b);
        }
    }
    fclose(f);
    *n = len;
    return b;
}

/* Bitwise equality of doubles, except that any NaN equals a NaN of the
   same sign (payloads are not kept by the formats). */
static int same_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) && !signbit(a) == !signbit(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- number formats ---- */

struct fmtdesc {
    int format, p, emin, emax;
};
static const struct fmtdesc F32 = {NSX_FORMAT_F32, 24, -126, 127};
static const struct fmtdesc F16 = {NSX_FORMAT_F16, 11, -14, 15};
static const struct fmtdesc BF16 = {NSX_FORMAT_BF16, 8, -126, 127};

/* x rounded to nearest-even into a format of precision p and normal
   exponents emin..emax (1 <= m < 2), subnormals included: MPFR with the
   format's exponent range, mpfr_subnormalize, overflow to infinity. */
static double ref_round(double x, const struct fmtdesc *f)
{
    if (x == 0 || !isfinite(x))
        return x;
    mpfr_exp_t emin = mpfr_get_emin(), emax = mpfr_get_emax();
    mpfr_set_emin(f->emin - f->p + 2); /* MPFR's exponents: 1/2 <= m < 1 */
    mpfr_set_emax(f->emax + 1);
    mpfr_t y;
    mpfr_init2(y, f->p);
    int t = mpfr_set_d(y, x, MPFR_RNDN);
    t = mpfr_check_range(y, t, MPFR_RNDN);
    mpfr_subnormalize(y, t, MPFR_RNDN);
    double r = mpfr_get_d(y, MPFR_RNDN);
    mpfr_clear(y);
    mpfr_set_emin(emin);
    mpfr_set_emax(emax);
    return r;
}

static uint32_t encode(int format, double x)
{
    switch (format) {
    case NSX_FORMAT_F32: return nsx_f32_encode(x);
    case NSX_FORMAT_F16: return nsx_f16_encode(x);
    default: return nsx_bf16_encode(x);
    }
}

static double decode(int format, uint32_t b)
{
    switch (format) {
    case NSX_FORMAT_F32: return nsx_f32_decode(b);
    case NSX_FORMAT_F16: return nsx_f16_decode((uint16_t)b);
    default: return nsx_bf16_decode((uint16_t)b);
    }
}

/* The value of a bit pattern by other means than io/fpformat.c: the
   hardware's float for f32 and bf16 (the upper half of an f32), the
   compiler's _Float16 where it has one, else MPFR's check that the decoded
   value is in the format (with the pattern's sign and class). */
static int ref_decode(int format, uint32_t b, double *out)
{
    float f;
    uint32_t u = format == NSX_FORMAT_BF16 ? b << 16 : b;
    switch (format) {
    case NSX_FORMAT_F32:
    case NSX_FORMAT_BF16:
        memcpy(&f, &u, 4);
        *out = f;
        return 1;
    default:
#ifdef __FLT16_MAX__
    {
        _Float16 h;
        uint16_t s = (uint16_t)b;
        memcpy(&h, &s, 2);
        *out = (double)h;
        return 1;
    }
#else
        return 0;
#endif
    }
}

/* Every pattern of a 16-bit format (infinity inf, quiet NaN qnan): decodes
   as the reference says, encodes back to itself, and each midpoint between
   neighbours rounds to the even one (and a hair off it, to the nearer). */
static void all_patterns(const struct fmtdesc *f, uint32_t inf, uint32_t qnan)
{
    for (uint32_t b = 0; b <= 0xFFFF; b++) {
        uint32_t mag = b & 0x7FFF, sign = b & 0x8000;
        double v = decode(f->format, b), r;
        if (mag > inf) { /* NaN: kept as the quiet NaN of its sign */
            ck_assert_msg(isnan(v) && !signbit(v) == !sign, "pattern 0x%04x", b);
            ck_assert_uint_eq(encode(f->format, v), sign | qnan);
            continue;
        }
        if (ref_decode(f->format, b, &r))
            ck_assert_msg(same_double(v, r), "pattern 0x%04x decodes to %a, reference %a", b, v,
                          r);
        ck_assert_msg(same_double(ref_round(v, f), v), "0x%04x: %a not in the format", b, v);
        ck_assert_msg(encode(f->format, v) == b, "0x%04x -> %a -> 0x%04x", b, v,
                      encode(f->format, v));
        ck_assert(nsx_representable(v, f->format));
        if (mag >= inf - 1)
            continue; /* the largest finite and infinity: see the rounding table */
        /* the midpoint to the next pattern away from zero */
        uint32_t nb = b + 1, even = (b & 1) ? nb : b;
        double w = decode(f->format, nb), mid = (v + w) / 2; /* exact */
        ck_assert_msg(encode(f->format, mid) == even, "midpoint %a of 0x%04x: got 0x%04x", mid, b,
                      encode(f->format, mid));
        ck_assert_msg(encode(f->format, nextafter(mid, 0)) == b, "below midpoint of 0x%04x", b);
        ck_assert_msg(encode(f->format, nextafter(mid, 2 * w)) == nb,
                      "above midpoint of 0x%04x", b);
        ck_assert_msg(same_double(ref_round(mid, f), decode(f->format, even)),
                      "MPFR disagrees at the midpoint of 0x%04x", b);
        ck_assert(!nsx_representable(mid, f->format));
    }
}

START_TEST(test_f16_every_pattern)
{
    all_patterns(&F16, 0x7C00, 0x7E00);
}
END_TEST

START_TEST(test_bf16_every_pattern)
{
    all_patterns(&BF16, 0x7F80, 0x7FC0);
}
END_TEST

/* NaN encodings: the quiet NaN with x's sign, whatever the payload. */
START_TEST(test_nan_encoding)
{
    ck_assert_uint_eq(nsx_f16_encode(NAN), 0x7E00);
    ck_assert_uint_eq(nsx_f16_encode(-NAN), 0xFE00);
    ck_assert_uint_eq(nsx_bf16_encode(NAN), 0x7FC0);
    ck_assert_uint_eq(nsx_bf16_encode(-NAN), 0xFFC0);
    ck_assert_uint_eq(nsx_f32_encode(NAN), 0x7FC00000u);
    ck_assert_uint_eq(nsx_f32_encode(-NAN), 0xFFC00000u);
    ck_assert(isnan(nsx_f16_decode(0x7C01)) && isnan(nsx_bf16_decode(0xFF81)));
    ck_assert(signbit(nsx_bf16_decode(0xFF81)));
}
END_TEST

/* Rounding at the places where it goes wrong: ties, subnormals, overflow. */
static const struct {
    const char *what;
    int format;
    double x;
    uint32_t bits;
} rounding[] = {
    {"f16 one", NSX_FORMAT_F16, 1.0, 0x3C00},
    {"f16 tie to even, down", NSX_FORMAT_F16, 1 + 0x1p-11, 0x3C00},
    {"f16 tie to even, up", NSX_FORMAT_F16, 1 + 3 * 0x1p-11, 0x3C02},
    {"f16 just above a tie", NSX_FORMAT_F16, 1 + 0x1p-11 + 0x1p-40, 0x3C01},
    {"f16 largest finite", NSX_FORMAT_F16, 65504, 0x7BFF},
    {"f16 just below the overflow tie", NSX_FORMAT_F16, 65519.99999999999, 0x7BFF},
    {"f16 overflow tie goes to infinity", NSX_FORMAT_F16, 65520, 0x7C00},
    {"f16 negative overflow", NSX_FORMAT_F16, -65520, 0xFC00},
    {"f16 huge", NSX_FORMAT_F16, 1e300, 0x7C00},
    {"f16 smallest subnormal", NSX_FORMAT_F16, 0x1p-24, 0x0001},
    {"f16 half the smallest subnormal: tie to zero", NSX_FORMAT_F16, 0x1p-25, 0x0000},
    {"f16 a hair above that", NSX_FORMAT_F16, 0x1.0000000000001p-25, 0x0001},
    {"f16 subnormal tie to even", NSX_FORMAT_F16, 3 * 0x1p-25, 0x0002},
    {"f16 negative underflow keeps the sign", NSX_FORMAT_F16, -0x1p-26, 0x8000},
    {"f16 largest subnormal", NSX_FORMAT_F16, 0x1p-14 - 0x1p-24, 0x03FF},
    {"f16 tie from subnormal to normal", NSX_FORMAT_F16, 0x1p-14 - 0x1p-25, 0x0400},
    {"f16 double subnormal", NSX_FORMAT_F16, 0x1p-1074, 0x0000},
    {"f16 negative zero", NSX_FORMAT_F16, -0.0, 0x8000},
    {"f16 infinity", NSX_FORMAT_F16, INFINITY, 0x7C00},
    {"f16 -infinity", NSX_FORMAT_F16, -INFINITY, 0xFC00},
    {"bf16 one third", NSX_FORMAT_BF16, 1.0 / 3, 0x3EAB},
    {"bf16 tie to even, down", NSX_FORMAT_BF16, 1 + 0x1p-8, 0x3F80},
    {"bf16 tie to even, up", NSX_FORMAT_BF16, 1 + 3 * 0x1p-8, 0x3F82},
    {"bf16 largest finite", NSX_FORMAT_BF16, 0x1.fep127, 0x7F7F},
    {"bf16 overflow tie goes to infinity", NSX_FORMAT_BF16, 0x1.ffp127, 0x7F80},
    {"bf16 just below the overflow tie", NSX_FORMAT_BF16, 0x1.fefffffffffffp127, 0x7F7F},
    {"bf16 smallest subnormal", NSX_FORMAT_BF16, 0x1p-133, 0x0001},
    {"bf16 half the smallest subnormal", NSX_FORMAT_BF16, 0x1p-134, 0x0000},
    {"bf16 subnormal tie to even", NSX_FORMAT_BF16, 3 * 0x1p-134, 0x0002},
    {"bf16 smallest normal", NSX_FORMAT_BF16, 0x1p-126, 0x0080},
    {"bf16 tie from subnormal to normal", NSX_FORMAT_BF16, 0x1p-126 - 0x1p-134, 0x0080},
    {"bf16 -huge", NSX_FORMAT_BF16, -DBL_MAX, 0xFF80},
    {"f32 one tenth", NSX_FORMAT_F32, 0.1, 0x3DCCCCCDu},
    {"f32 tie to even, down", NSX_FORMAT_F32, 1 + 0x1p-24, 0x3F800000u},
    {"f32 tie to even, up", NSX_FORMAT_F32, 1 + 3 * 0x1p-24, 0x3F800002u},
    {"f32 largest finite", NSX_FORMAT_F32, FLT_MAX, 0x7F7FFFFFu},
    {"f32 overflow tie goes to infinity", NSX_FORMAT_F32, 0x1.ffffffp127, 0x7F800000u},
    {"f32 smallest subnormal", NSX_FORMAT_F32, 0x1p-149, 0x00000001u},
    {"f32 half the smallest subnormal", NSX_FORMAT_F32, 0x1p-150, 0x00000000u},
    {"f32 subnormal tie to even", NSX_FORMAT_F32, 3 * 0x1p-150, 0x00000002u},
    {"f32 negative zero", NSX_FORMAT_F32, -0.0, 0x80000000u},
};

START_TEST(test_rounding_table)
{
    uint32_t got = encode(rounding[_i].format, rounding[_i].x);
    ck_assert_msg(got == rounding[_i].bits, "%s: %a gives 0x%x, expected 0x%x",
                  rounding[_i].what, rounding[_i].x, got, rounding[_i].bits);
    /* nsx_round_to_format agrees with the encoder */
    double r = nsx_round_to_format(rounding[_i].x, rounding[_i].format);
    ck_assert_msg(same_double(r, decode(rounding[_i].format, got)), "%s: round_to_format",
                  rounding[_i].what);
}
END_TEST

/* Random doubles across each format's range against MPFR (and, for f32,
   against the hardware's double -> float conversion). */
START_TEST(test_random_against_mpfr)
{
    static const struct fmtdesc *const fmts[] = {&F32, &F16, &BF16};
    rnd_state = SEED;
    for (int n = 0; n < 30000; n++) {
        const struct fmtdesc *f = fmts[n % 3];
        /* exponents from below the subnormals to beyond the overflow */
        int span = f->emax - f->emin + 2 * f->p + 8;
        int e = f->emin - f->p - 3 + (int)(rnd() % (uint64_t)span);
        double x = ldexp(1.0 + (double)(rnd() >> 12) * 0x1p-52, e);
        if (rnd() & 1)
            x = -x;
        double want = ref_round(x, f);
        double got = decode(f->format, encode(f->format, x));
        ck_assert_msg(same_double(got, want), "seed %#llx, draw %d: %a -> %a, MPFR %a",
                      (unsigned long long)SEED, n, x, got, want);
        ck_assert(same_double(nsx_round_to_format(x, f->format), want));
        if (f == &F32) {
            float h = (float)x;
            uint32_t hb;
            memcpy(&hb, &h, 4);
            ck_assert_msg(nsx_f32_encode(x) == hb, "%a: 0x%08x, hardware 0x%08x", x,
                          nsx_f32_encode(x), hb);
        }
    }
}
END_TEST

/* f32 patterns: decode as the hardware does, encode back. */
START_TEST(test_f32_patterns)
{
    rnd_state = SEED;
    for (int n = 0; n < 100000; n++) {
        uint32_t b = (uint32_t)rnd();
        if (n < 16) /* the edges: zeros, subnormals, largest, infinities */
            b = (uint32_t[]){0, 0x80000000u, 1, 0x807FFFFFu, 0x00800000u, 0x7F7FFFFFu,
                             0x7F800000u, 0xFF800000u, 0x3F800000u, 0x7F800001u, 0xFFC00000u,
                             0x00400000u, 0x33800000u, 0x4B800000u, 0x7EFFFFFFu, 0x80000001u}[n];
        double v = nsx_f32_decode(b), r;
        ref_decode(NSX_FORMAT_F32, b, &r);
        ck_assert_msg(same_double(v, r), "0x%08x", b);
        if (!isnan(v))
            ck_assert_msg(nsx_f32_encode(v) == b, "0x%08x round trip", b);
    }
}
END_TEST

START_TEST(test_representable)
{
    static const struct {
        double x;
        int format, yes;
    } t[] = {
        {0.1, NSX_FORMAT_F64, 1},       {0.1, NSX_FORMAT_F32, 0},
        {(float)0.1, NSX_FORMAT_F32, 1}, {(float)0.1, NSX_FORMAT_BF16, 0},
        {1 + 0x1p-7, NSX_FORMAT_BF16, 1}, {1 + 0x1p-8, NSX_FORMAT_BF16, 0},
        {1 + 0x1p-8, NSX_FORMAT_F16, 1}, {65504, NSX_FORMAT_F16, 1},
        {65536, NSX_FORMAT_F16, 0},      {0x1p-24, NSX_FORMAT_F16, 1},
        {0x1p-25, NSX_FORMAT_F16, 0},    {0x1p-133, NSX_FORMAT_BF16, 1},
        {-0.0, NSX_FORMAT_BF16, 1},      {NAN, NSX_FORMAT_F16, 1},
        {INFINITY, NSX_FORMAT_BF16, 1},  {-INFINITY, NSX_FORMAT_F32, 1},
        {1e300, NSX_FORMAT_F32, 0},      {0x1p-1074, NSX_FORMAT_F64, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        ck_assert_msg(nsx_representable(t[i].x, t[i].format) == t[i].yes, "case %zu: %a in %s",
                      i, t[i].x, nsx_format_name(t[i].format));
    for (int f = NSX_FORMAT_F64; f <= NSX_FORMAT_BF16; f++)
        ck_assert_int_eq(nsx_format_from_name(nsx_format_name(f)), f);
    ck_assert_int_eq(nsx_format_from_name("F32"), -1);
    ck_assert_int_eq(nsx_format_from_name(""), -1);
    ck_assert_ptr_null(nsx_format_name(4));
}
END_TEST

/* ---- the JSON front end ---- */

/* Integers must be written as integers: the one number in {"v": TEXT}. */
static const struct {
    const char *text;
    const char *why; /* NULL: accepted with value */
    int64_t value;
} ints[] = {
    {"1", NULL, 1},
    {"-7", NULL, -7},
    {"-0", NULL, 0},
    {"9007199254740991", NULL, 9007199254740991},
    {"9007199254740992", "too large", 0},
    {"9007199254740993", "too large", 0},
    {"1.0", "not written as an integer", 0},
    {"1e0", "not written as an integer", 0},
    {"1E+2", "not written as an integer", 0},
    {"1.5", "is not an integer", 0},
    {"\"1\"", "is not a number", 0},
    {"true", "is not a number", 0},
};

START_TEST(test_json_exact_int)
{
    char text[64];
    snprintf(text, sizeof text, "{\"v\": %s}", ints[_i].text);
    json_t *root;
    nsx_json_error e;
    ck_assert_int_eq(nsx_json_parse(text, strlen(text), NSX_JSON_DOC, &root, &e), 0);
    int64_t v = -1;
    const char *r = nsx_json_exact_int(json_object_get(root, "v"), &v);
    if (ints[_i].why)
        ck_assert_msg(r && strstr(r, ints[_i].why), "%s: got '%s'", ints[_i].text, r ? r : "ok");
    else
        ck_assert_msg(!r && v == ints[_i].value, "%s: got '%s'", ints[_i].text, r ? r : "ok");
    json_decref(root);
}
END_TEST

/* Documents refused as a whole (headers are in the hostile table). */
static const struct {
    const char *text;
    const char *why;
} bad_docs[] = {
    {"{\"a\": 1} x", "after the JSON value"},
    {"{\"a\": 1} 5", "after the JSON value"},
    {"[1, 2]", "not a JSON object"},
    {"\"s\"", "not a JSON object"},
    {"{\"a\": +1}", "not valid JSON"},
    {"{\"a\": .5}", "not valid JSON"},
    {"{\"a\": 1.}", "invalid token"},
    {"{\"a\": -}", "invalid token"},
    {"{\"a\": 01}", "invalid token"},
    {"{\"a\": 1.2.3}", "not valid JSON"},
    {"{\"a\": NaN}", "not valid JSON"},
    {"{\"a\": \"\\u12\"}", "invalid escape"},
    {"{\"a\": \"\\ud800\"}", "invalid Unicode"},
    {"{\"a\": \"x\\u0000\"}", "escaped NUL"},
    {"{\"a\": \"\x01\"}", "control character"},
    {"{\"a\": \"\xc0\xaf\"}", "invalid UTF-8"},
    {"{\"a\": 1e999}", "number out of range"},
    {"{\"a\": 9223372036854775808}", "number out of range"},
    {"{\"a\": 'x'}", "not valid JSON"},
    {"{\"a\": 1,}", "not valid JSON"},
    {"", "not valid JSON"},
};

START_TEST(test_json_bad_docs)
{
    nsx_json_error e;
    json_t *root = (json_t *)1;
    const char *t = bad_docs[_i].text;
    ck_assert_int_eq(nsx_json_parse(t, strlen(t), NSX_JSON_DOC, &root, &e), -1);
    ck_assert_ptr_null(root);
    ck_assert_msg(strstr(e.why, bad_docs[_i].why), "%s: got '%s'", t, e.why);
    ck_assert_ptr_null(strchr(e.why, '\n'));
    ck_assert_int_eq(e.dup, 0);
}
END_TEST

/* {"a": [0, 0, ...]} with m zeros: m + 2 values. */
static int parse_zeros(size_t m, nsx_json_error *e)
{
    char *t = malloc(2 * m + 16);
    ck_assert_ptr_nonnull(t);
    size_t k = (size_t)sprintf(t, "{\"a\":[");
    for (size_t i = 0; i < m; i++)
        t[k++] = '0', t[k++] = ',';
    t[k - 1] = ']';
    t[k++] = '}';
    json_t *root;
    int r = nsx_json_parse(t, k, NSX_JSON_DOC, &root, e);
    if (r == 0) {
        ck_assert_uint_eq(json_array_size(json_object_get(root, "a")), m);
        json_decref(root);
    }
    free(t);
    return r;
}

/* More values than NSX_JSON_MAX_VALUES: refused before Jansson builds them;
   exactly as many pass. */
START_TEST(test_json_value_limit)
{
    nsx_json_error e;
    ck_assert_msg(parse_zeros(NSX_JSON_MAX_VALUES - 2, &e) == 0, "%s", e.why);
    ck_assert_int_eq(parse_zeros(NSX_JSON_MAX_VALUES - 1, &e), -1);
    ck_assert_msg(strstr(e.why, "more than 1048576 JSON values"), "%s", e.why);
}
END_TEST

/* {"[[": [[...]]} nested depth levels in all (the root is one); the
   brackets inside the key do not count. */
static int parse_nested(int depth, nsx_json_error *e)
{
    size_t n = (size_t)depth - 1, k = 0;
    char *t = malloc(2 * n + 16);
    ck_assert_ptr_nonnull(t);
    k += (size_t)sprintf(t, "{\"[[\":");
    memset(t + k, '[', n), k += n;
    memset(t + k, ']', n), k += n;
    t[k++] = '}';
    json_t *root;
    int r = nsx_json_parse(t, k, NSX_JSON_DOC, &root, e);
    if (r == 0)
        json_decref(root);
    free(t);
    return r;
}

/* Nesting deeper than NSX_JSON_MAX_DEPTH: refused before Jansson recurses. */
START_TEST(test_json_depth_limit)
{
    nsx_json_error e;
    ck_assert_msg(parse_nested(NSX_JSON_MAX_DEPTH, &e) == 0, "%s", e.why);
    ck_assert_int_eq(parse_nested(NSX_JSON_MAX_DEPTH + 1, &e), -1);
    ck_assert_msg(strstr(e.why, "nested more than 1000 deep"), "%s", e.why);
}
END_TEST

/* A repeated key is refused, named with the object that holds it. */
START_TEST(test_json_dup_keys)
{
    static const struct {
        const char *text, *key, *parent, *why;
        int depth;
    } t[] = {
        {"{\"a\":1,\"b\":2,\"a\":3}", "a", "", "duplicate key 'a'", 1},
        {"{\"x\":{\"k\":1,\"j\":2,\"k\":3},\"y\":{\"m\":1,\"m\":2}}", "k", "x",
         "duplicate key 'k' in 'x'", 2},
        {"{\"x\":[{\"q\":1},{\"q\":1,\"q\":2}]}", "q", "", "in an array element", 3},
        {"{\"b\":1,\"a\":1,\"b\":2,\"a\":2}", "b", "", "duplicate key 'b'", 1}, /* the first repeat */
        {"{\"a\":1, \"\\u0061\" : 2}", "a", "", "duplicate key 'a'", 1},   /* escaped: the same key */
        {"{\"p\\\"{\":{\"s\":\"}[\\\"\",\"s\":0}}", "s", "p\"{", "in 'p\"{'", 2}, /* brackets in strings */
        {"{\"a\":{\"b\":{}},\"c\":{\"d\":1,\"d\":2}}", "d", "c", "in 'c'", 2},  /* closed levels */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_t *root = (json_t *)1;
        nsx_json_error e;
        ck_assert_int_eq(nsx_json_parse(t[i].text, strlen(t[i].text), NSX_JSON_DOC, &root, &e), -1);
        ck_assert_ptr_null(root);
        ck_assert_msg(e.dup == 1 && e.depth == t[i].depth && strcmp(e.key, t[i].key) == 0 &&
                          strcmp(e.parent, t[i].parent) == 0 && strstr(e.why, t[i].why),
                      "%s: dup %d depth %d key '%s' parent '%s' why '%s'", t[i].text, e.dup, e.depth,
                      e.key, e.parent, e.why);
    }
    /* the same keys in different objects are fine */
    const char *ok = "{\"a\":{\"k\":1},\"b\":{\"k\":2},\"c\":[{\"k\":1},{\"k\":2}]}";
    json_t *root;
    nsx_json_error e;
    ck_assert_int_eq(nsx_json_parse(ok, strlen(ok), NSX_JSON_DOC, &root, &e), 0);
    json_decref(root);
}
END_TEST

START_TEST(test_printable)
{
    static const struct {
        const char *in;
        size_t outlen;
        const char *out;
    } t[] = {
        {"abc", 80, "abc"},
        {"a\x01" "b\x7f", 80, "a?b?"},
        {"a\xc2\x9b" "b", 80, "a?b"},        /* C1 CSI */
        {"\xff\xc3", 80, "??"},              /* invalid UTF-8, truncated sequence */
        {"caf\xc3\xa9", 80, "caf\xc3\xa9"},  /* valid UTF-8 kept */
        {"abcdefghij", 8, "abcd..."},
        {"abcdefg", 8, "abcdefg"},
        {"ab\xc3\xa9\xc3\xa9xyz", 8, "ab\xc3\xa9..."}, /* cut at a character boundary */
        {"\xf0\x9d\x84\x9e\xf0\x9d\x84\x9e", 8, "\xf0\x9d\x84\x9e..."},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[80];
        nsx_printable(out, t[i].outlen, t[i].in);
        ck_assert_msg(strcmp(out, t[i].out) == 0, "case %zu: '%s'", i, out);
        ck_assert_uint_lt(strlen(out), t[i].outlen);
    }
}
END_TEST

START_TEST(test_fmt_double)
{
    static const struct {
        double x;
        const char *s;
    } t[] = {
        {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"}, {0.1 + 0.2, "0.30000000000000004"},
        {-0.0, "-0"}, {1, "1"}, {0x1p-1074, "5e-324"}, {0x1p53, "9007199254740992"},
        {1e300, "1e+300"}, {-1.5e-7, "-1.5e-07"}, {NAN, "nan"}, {-INFINITY, "-inf"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[32];
        nsx_fmt_double(out, sizeof out, t[i].x);
        ck_assert_msg(strcmp(out, t[i].s) == 0, "%a: '%s', expected '%s'", t[i].x, out, t[i].s);
        if (isfinite(t[i].x))
            ck_assert(same_double(strtod(out, NULL), t[i].x));
    }
    rnd_state = SEED;
    for (int n = 0; n < 20000; n++) { /* shortest and exact on random bits */
        uint64_t u = rnd();
        double x;
        memcpy(&x, &u, 8);
        if (!isfinite(x))
            continue;
        char out[32];
        nsx_fmt_double(out, sizeof out, x);
        ck_assert_msg(same_double(strtod(out, NULL), x), "%a -> %s", x, out);
    }
}
END_TEST

/* ---- safetensors: round trips and the writer's layout ---- */

/* Values each float dtype holds exactly: zeros, signs, the extremes of its
   range, infinities and NaN. */
static const struct {
    int dtype;
    double v[10];
} dtype_values[] = {
    {NSX_DTYPE_F64, {0.0, -0.0, 0.1, -DBL_MAX, 0x1p-1074, INFINITY, -INFINITY, NAN, -NAN, 1e300}},
    {NSX_DTYPE_F32, {0.0, -0.0, 0x1.99999ap-4, -FLT_MAX, 0x1p-149, INFINITY, -INFINITY, NAN, -NAN,
                     0x1.fffffcp-127}},
    {NSX_DTYPE_F16, {0.0, -0.0, 0x1.998p-4, -65504, 0x1p-24, INFINITY, -INFINITY, NAN, -NAN,
                     0x1.ff8p-15}},
    {NSX_DTYPE_BF16, {0.0, -0.0, 0x1.98p-4, -0x1.fep127, 0x1p-133, INFINITY, -INFINITY, NAN, -NAN,
                      0x1.fcp-127}},
};

START_TEST(test_st_roundtrip)
{
    char path[4096];
    tmp_path(path, sizeof path, "roundtrip.safetensors");
    nsx_st st = {0}, back;
    nsx_err err = {0};
    const int64_t shape10[] = {2, 5}, shape5[] = {5}, none[] = {3, 0}, big[8] = {1, 1, 1, 1, 1, 1,
                                                                               1, 2};
    const int32_t i32[] = {INT32_MIN, -1, 0, 1, INT32_MAX};
    for (size_t d = 0; d < sizeof dtype_values / sizeof dtype_values[0]; d++)
        ck_assert_msg(nsx_st_add_f64(&st, nsx_dtype_name(dtype_values[d].dtype),
                                     dtype_values[d].dtype, 2, shape10, dtype_values[d].v,
                                     &err) == 0, "%s", err.msg);
    ck_assert_int_eq(nsx_st_add_i32(&st, "I32", 1, shape5, i32, &err), 0);
    ck_assert_int_eq(nsx_st_add_f64(&st, "empty", NSX_DTYPE_BF16, 2, none, NULL, &err), 0);
    ck_assert_int_eq(nsx_st_add_f64(&st, "scalar", NSX_DTYPE_F16, 0, NULL, (double[]){-2}, &err),
                     0);
    ck_assert_int_eq(nsx_st_add_f64(&st, "rank8", NSX_DTYPE_F32, 8, big, (double[]){1, 2}, &err),
                     0);
    ck_assert_int_eq(nsx_st_add_f64(&st, "caf\xc3\xa9/\xf0\x9d\x84\x9e \"q\"", NSX_DTYPE_F64, 0,
                                    NULL, (double[]){3}, &err), 0);
    static const char *const meta[][2] = {
        {"format", "pt"}, {"quote\"back\\slash", "line\nbreak\ttab"},
        {"unicode", "\xc3\xa9\xe2\x86\x92\xf0\x9d\x84\x9e"}, {"", "empty key"},
        {"nsimplex", "{\"spec\": \"1.0\"}"},
    };
    for (size_t k = 0; k < sizeof meta / sizeof meta[0]; k++)
        ck_assert_int_eq(nsx_st_set_meta(&st, meta[k][0], meta[k][1], &err), 0);
    ck_assert_msg(nsx_st_write(path, &st, &err) == 0, "%s", err.msg);
    ck_assert_msg(nsx_st_read(path, &back, &err) == 0, "%s", err.msg);

    ck_assert_uint_eq(back.nt, st.nt);
    for (size_t i = 0; i < st.nt; i++) {
        const nsx_tensor *a = &st.t[i], *b = nsx_st_get(&back, a->name);
        ck_assert_msg(b != NULL, "tensor %s lost", a->name);
        ck_assert_int_eq(b->dtype, a->dtype);
        ck_assert_int_eq(b->rank, a->rank);
        for (int r = 0; r < a->rank; r++)
            ck_assert_int_eq(b->shape[r], a->shape[r]);
        ck_assert_uint_eq(b->count, a->count);
        ck_assert_uint_eq(b->nbytes, a->nbytes);
        ck_assert(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    for (size_t d = 0; d < sizeof dtype_values / sizeof dtype_values[0]; d++) {
        const nsx_tensor *t = nsx_st_get(&back, nsx_dtype_name(dtype_values[d].dtype));
        for (size_t i = 0; i < 10; i++)
            ck_assert_msg(same_double(nsx_tensor_f64_at(t, i), dtype_values[d].v[i]),
                          "%s element %zu: %a", t->name, i, nsx_tensor_f64_at(t, i));
    }
    const nsx_tensor *t = nsx_st_get(&back, "I32");
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(nsx_tensor_i32_at(t, i), i32[i]);
    ck_assert(nsx_tensor_f64_at(nsx_st_get(&back, "scalar"), 0) == -2);
    ck_assert_uint_eq(back.nmeta, sizeof meta / sizeof meta[0]);
    for (size_t k = 0; k < sizeof meta / sizeof meta[0]; k++) {
        const char *v = nsx_st_meta(&back, meta[k][0]);
        ck_assert_msg(v && strcmp(v, meta[k][1]) == 0, "metadata '%s'", meta[k][0]);
    }
    nsx_st_free(&back);
    nsx_st_free(&st);
    unlink(path);
}
END_TEST

/* Byte for byte what the reference implementation writes for the same
   content (its published test vectors): space padding to 8 bytes, no
   whitespace in the JSON, "__metadata__" first. */
START_TEST(test_st_reference_bytes)
{
#define H8(n) n, 0, 0, 0, 0, 0, 0, 0
    static const unsigned char empty[] = {H8(8), '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    static const char meta_hdr[] = "{\"__metadata__\":{\"framework\":\"pt\"}}     ";
    static const char attn_hdr[] =
        "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ";
    static const unsigned char attn_data[] = {0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64,
                                              0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
#undef H8
    char path[4096];
    tmp_path(path, sizeof path, "reference.safetensors");
    nsx_err err = {0};
    size_t n;
    unsigned char *b;

    nsx_st st = {0};
    ck_assert_int_eq(nsx_st_write(path, &st, &err), 0);
    b = read_file(path, &n);
    ck_assert(b && n == sizeof empty && memcmp(b, empty, n) == 0);
    free(b);

    ck_assert_int_eq(nsx_st_set_meta(&st, "framework", "pt", &err), 0);
    ck_assert_int_eq(nsx_st_write(path, &st, &err), 0);
    b = read_file(path, &n);
    ck_assert(b && n == 8 + 40 && b[0] == 40 && memcmp(b + 8, meta_hdr, 40) == 0);
    free(b);
    nsx_st_free(&st);

    const int64_t shape[] = {1, 1, 2, 3};
    ck_assert_int_eq(nsx_st_add_f64(&st, "attn0", NSX_DTYPE_F32, 4, shape,
                                    (double[]){0, 1, 2, 3, 4, 5}, &err), 0);
    ck_assert_int_eq(nsx_st_write(path, &st, &err), 0);
    b = read_file(path, &n);
    ck_assert(b && n == 8 + 72 + 24 && b[0] == 72);
    ck_assert(memcmp(b + 8, attn_hdr, 72) == 0 && memcmp(b + 80, attn_data, 24) == 0);
    free(b);
    nsx_st_free(&st);
    unlink(path);
}
END_TEST

/* Tensors laid out largest element first, then by name, each aligned to
   its element size; the same content always gives the same bytes. */
START_TEST(test_st_layout_deterministic)
{
    static const struct {
        const char *name;
        int dtype;
    } t[] = {{"z16", NSX_DTYPE_F16}, {"a32", NSX_DTYPE_F32}, {"b64", NSX_DTYPE_F64},
             {"i", NSX_DTYPE_I32},   {"a16", NSX_DTYPE_BF16}, {"a64", NSX_DTYPE_F64}};
    static const char *const order[] = {"a64", "b64", "a32", "i", "a16", "z16"};
    enum { NT = sizeof t / sizeof t[0] };
    char p1[4096], p2[4096];
    tmp_path(p1, sizeof p1, "layout1.safetensors");
    tmp_path(p2, sizeof p2, "layout2.safetensors");
    nsx_err err = {0};
    for (int pass = 0; pass < 2; pass++) {
        nsx_st st = {0};
        for (int k = 0; k < NT; k++) { /* the second pass adds them backwards */
            int j = pass ? NT - 1 - k : k;
            const int64_t shape[] = {3};
            int r = t[j].dtype == NSX_DTYPE_I32
                        ? nsx_st_add_i32(&st, t[j].name, 1, shape, (int32_t[]){1, 2, 3}, &err)
                        : nsx_st_add_f64(&st, t[j].name, t[j].dtype, 1, shape,
                                         (double[]){1, 2, 3}, &err);
            ck_assert_int_eq(r, 0);
        }
        ck_assert_int_eq(nsx_st_set_meta(&st, pass ? "b" : "a", "1", &err), 0);
        ck_assert_int_eq(nsx_st_set_meta(&st, pass ? "a" : "b", "1", &err), 0);
        ck_assert_int_eq(nsx_st_write(pass ? p2 : p1, &st, &err), 0);
        nsx_st_free(&st);
    }
    size_t n1, n2;
    unsigned char *b1 = read_file(p1, &n1), *b2 = read_file(p2, &n2);
    ck_assert(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--)
        hlen = hlen << 8 | b1[k];
    ck_assert_uint_eq(hlen % 8, 0);
    nsx_st back;
    ck_assert_int_eq(nsx_st_parse(b1, n1, "layout", &back, &err), 0);
    ck_assert_uint_eq(back.nt, NT);
    for (int k = 0; k < NT; k++) { /* back.t is in offset order */
        ck_assert_str_eq(back.t[k].name, order[k]);
        ck_assert_uint_eq((8 + hlen + back.t[k].offset) % nsx_dtype_size(back.t[k].dtype), 0);
    }
    ck_assert_str_eq(back.meta[0].key, "a"); /* metadata keys sorted */
    nsx_st_free(&back);
    free(b1);
    free(b2);
    unlink(p1);
    unlink(p2);
}
END_TEST

/* What nsx_st_add and friends refuse, leaving st as it was. */
START_TEST(test_st_add_errors)
{
    static const struct {
        const char *name;
        int dtype, rank;
        int64_t shape[9];
        double v;
        const char *expect;
    } t[] = {
        {"", NSX_DTYPE_F32, 1, {1}, 0, "empty, reserved, not UTF-8"},
        {"a\nb", NSX_DTYPE_F32, 1, {1}, 0, "control characters"},
        {"a\xc2\x85", NSX_DTYPE_F32, 1, {1}, 0, "control characters"},
        {"a\xff", NSX_DTYPE_F32, 1, {1}, 0, "not UTF-8"},
        {"__metadata__", NSX_DTYPE_F32, 1, {1}, 0, "reserved"},
        {"x", NSX_DTYPE_F32, 1, {1}, 0, "already present"},
        {"y", 7, 1, {1}, 0, "not a float dtype"},
        {"y", NSX_DTYPE_F32, 9, {1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, "rank 9"},
        {"y", NSX_DTYPE_F32, -1, {1}, 0, "rank -1"},
        {"y", NSX_DTYPE_F32, 2, {1, -2}, 0, "shape[1] = -2 is negative"},
        {"y", NSX_DTYPE_F32, 2, {INT64_MAX, 4}, 0, "too many elements"},
        {"y", NSX_DTYPE_F16, 1, {1}, 0.1, "element 0 (0.1) is not representable in F16"},
        {"y", NSX_DTYPE_BF16, 1, {1}, 1e300, "not representable in BF16"},
    };
    nsx_st st = {0};
    nsx_err err = {0};
    ck_assert_int_eq(nsx_st_add_f64(&st, "x", NSX_DTYPE_F32, 1, (int64_t[]){1}, (double[]){1},
                                    &err), 0);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        err = (nsx_err){0};
        int r = nsx_st_add_f64(&st, t[i].name, t[i].dtype, t[i].rank, t[i].shape, &t[i].v, &err);
        ck_assert_msg(r == NSX_E_INPUT && strstr(err.msg, t[i].expect),
                      "case %zu: %d '%s'", i, r, err.msg);
        ck_assert_uint_eq(st.nt, 1);
    }
    ck_assert_int_eq(nsx_st_add_i32(&st, "x", 0, NULL, (int32_t[]){1}, &err), NSX_E_INPUT);
    ck_assert_int_eq(nsx_st_set_meta(&st, "k\xff", "v", &err), NSX_E_INPUT);
    ck_assert_int_eq(nsx_st_set_meta(&st, "k", "\xc0\xaf", &err), NSX_E_INPUT);
    ck_assert_uint_eq(st.nmeta, 0);
    ck_assert_int_eq(nsx_st_set_meta(&st, "k", "1", &err), 0);
    ck_assert_int_eq(nsx_st_set_meta(&st, "k", "2", &err), 0); /* replaces */
    ck_assert_uint_eq(st.nmeta, 1);
    ck_assert_str_eq(nsx_st_meta(&st, "k"), "2");
    nsx_st_free(&st);
}
END_TEST

/* Paths that are not readable files: one line naming them, exit 2. */
START_TEST(test_st_read_not_a_file)
{
    char dir[4096], fifo[4096], missing[4096];
    tmp_path(dir, sizeof dir, "a_directory");
    tmp_path(fifo, sizeof fifo, "a_fifo");
    tmp_path(missing, sizeof missing, "no_such_file.safetensors");
    mkdir(dir, 0777);
    unlink(fifo);
    ck_assert_int_eq(mkfifo(fifo, 0666), 0);
    const struct {
        const char *path, *expect;
    } t[] = {{dir, "not a regular file"}, {fifo, "not a regular file"},
             {missing, "cannot open"}};
    for (size_t i = 0; i < 3; i++) {
        nsx_st st;
        nsx_err err = {0};
        ck_assert_int_eq(nsx_st_read(t[i].path, &st, &err), NSX_E_INPUT);
        ck_assert_msg(strncmp(err.msg, t[i].path, strlen(t[i].path)) == 0 &&
                          strstr(err.msg, t[i].expect), "%s", err.msg);
        ck_assert_uint_eq(st.nt, 0);
    }
    unlink(fifo);
    rmdir(dir);
}
END_TEST

/* ---- hostile files (tests/st_corpus.c): the reader's table ---- */

/* err is one line that starts with label and names the problem. */
static void check_one_line(const nsx_err *err, const char *label, const char *expect,
                           const char *what)
{
    ck_assert_msg(err->kind == NSX_E_INPUT, "%s: code %d", what, err->kind);
    ck_assert_msg(strncmp(err->msg, label, strlen(label)) == 0 &&
                      strncmp(err->msg + strlen(label), ": ", 2) == 0,
                  "%s: message does not name the file: '%s'", what, err->msg);
    ck_assert_msg(strstr(err->msg, expect) != NULL, "%s: expected '%s' in '%s'", what, expect,
                  err->msg);
    ck_assert_msg(strchr(err->msg, '\n') == NULL, "%s: more than one line", what);
}

START_TEST(test_hostile_parse)
{
    const st_file *f = &st_hostile[_i];
    size_t n;
    unsigned char *b = st_file_bytes(f, &n);
    ck_assert_ptr_nonnull(b);
    char label[128];
    snprintf(label, sizeof label, "corpus/%s.safetensors", f->name);
    nsx_st st = {.nt = 99};
    nsx_err err = {0};
    ck_assert_msg(nsx_st_parse(b, n, label, &st, &err) == NSX_E_INPUT, "%s (%s): accepted",
                  f->name, f->what);
    check_one_line(&err, label, f->expect, f->name);
    ck_assert(st.nt == 0 && st.t == NULL && st.nmeta == 0 && st.meta == NULL);
    free(b);
}
END_TEST

START_TEST(test_hostile_read)
{
    const st_file *f = &st_hostile[_i];
    size_t n;
    unsigned char *b = st_file_bytes(f, &n);
    char path[4096];
    tmp_path(path, sizeof path, "hostile_%s.safetensors", f->name);
    write_file(path, b, n);
    nsx_st st;
    nsx_err err = {0};
    ck_assert_msg(nsx_st_read(path, &st, &err) == NSX_E_INPUT, "%s (%s): accepted", f->name,
                  f->what);
    check_one_line(&err, path, f->expect, f->name);
    ck_assert(st.nt == 0 && st.t == NULL);
    free(b);
    unlink(path);
}
END_TEST

/* The committed seed corpus is the table's (skipped outside the source
   tree, where there is no fuzz/corpus/safetensors). */
START_TEST(test_corpus_matches_table)
{
    const char *dir = "fuzz/corpus/safetensors";
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return;
    for (size_t i = 0; i < st_nhostile; i++) {
        char path[4096];
        size_t n, m;
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, st_hostile[i].name);
        unsigned char *want = st_file_bytes(&st_hostile[i], &n), *got = read_file(path, &m);
        ck_assert_msg(got && m == n && memcmp(got, want, n) == 0,
                      "%s differs from the table: regenerate it (tests/st_corpus.c)", path);
        free(want);
        free(got);
    }
    static const char *const valid[] = {"ok_empty", "ok_dtypes", "ok_case"};
    for (size_t i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, valid[i]);
        nsx_st st;
        nsx_err err = {0};
        ck_assert_msg(nsx_st_read(path, &st, &err) == 0, "%s", err.msg);
        nsx_st_free(&st);
    }
}
END_TEST

/* ---- atomic writes: a failed write leaves nothing behind ---- */

/* The names in dir, sorted and joined by '/' (for comparing listings). */
static void listing(const char *dir, char *out, size_t n)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char names[32][256];
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && k < 32)
            snprintf(names[k++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)k, 256, (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < k; i++)
        snprintf(out + strlen(out), n - strlen(out), "/%s", names[i]);
}

enum fail_mode { NO_DIR, DEST_IS_DIR, INVALID_ST, FILE_TOO_BIG, NOT_A_NAME, NFAIL };
static const char *const fail_names[] = {"directory missing", "destination is a directory",
                                         "invalid st", "file size limit", "path names no file"};

START_TEST(test_write_failure_leaves_nothing)
{
    char dir[1024], dest[4096], before[4096], after[4096];
    tmp_path(dir, sizeof dir, "wfail.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(dest, sizeof dest, "%s/x.safetensors", dir);
    static const unsigned char old[] = "the old content";
    if (_i == DEST_IS_DIR)
        ck_assert_int_eq(mkdir(dest, 0777), 0);
    else
        write_file(dest, old, sizeof old);
    listing(dir, before, sizeof before);

    nsx_st st = {0};
    nsx_err err = {0};
    double big[4096] = {0};
    ck_assert_int_eq(nsx_st_add_f64(&st, "t", NSX_DTYPE_F64, 1, (int64_t[]){4096}, big, &err), 0);
    const char *path = dest;
    char nodir[4096], slash[4096];
    snprintf(nodir, sizeof nodir, "%s/missing/x.safetensors", dir);
    snprintf(slash, sizeof slash, "%s/", dir);
    int want = NSX_E_INPUT, r;
    struct rlimit saved;
    void (*saved_sig)(int) = SIG_DFL;
    switch (_i) {
    case NO_DIR: path = nodir; break;
    case INVALID_ST: /* two tensors of one name, made by hand */
        ck_assert_int_eq(nsx_st_add_f64(&st, "u", NSX_DTYPE_F64, 0, NULL, big, &err), 0);
        st.t[1].name[0] = 't';
        break;
    case FILE_TOO_BIG:
        want = NSX_E_IO;
        getrlimit(RLIMIT_FSIZE, &saved);
        saved_sig = signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &(struct rlimit){.rlim_cur = 4096, .rlim_max = saved.rlim_max});
        break;
    case NOT_A_NAME: path = slash; break;
    }
    r = nsx_st_write(path, &st, &err);
    if (_i == FILE_TOO_BIG) {
        setrlimit(RLIMIT_FSIZE, &saved);
        signal(SIGXFSZ, saved_sig);
    }
    ck_assert_msg(r == want, "%s: got %d (%s)", fail_names[_i], r, err.msg);
    ck_assert_msg(strchr(err.msg, '\n') == NULL &&
                      (strstr(err.msg, "x.safetensors") != NULL || _i == NOT_A_NAME),
                  "%s: '%s'", fail_names[_i], err.msg);
    listing(dir, after, sizeof after);
    ck_assert_msg(strcmp(before, after) == 0, "%s: left '%s' (before: '%s')", fail_names[_i],
                  after, before);
    if (_i != DEST_IS_DIR) {
        size_t n;
        unsigned char *b = read_file(dest, &n);
        ck_assert_msg(b && n == sizeof old && memcmp(b, old, n) == 0,
                      "%s: the old file changed", fail_names[_i]);
        free(b);
        unlink(dest);
    } else {
        rmdir(dest);
    }
    nsx_st_free(&st);
    rmdir(dir);
}
END_TEST

/* A written file gets the mode open() would give it, and replaces the old
   file whole. */
START_TEST(test_write_mode_and_replace)
{
    char path[4096];
    tmp_path(path, sizeof path, "mode.safetensors");
    write_file(path, "old", 3);
    chmod(path, 0600);
    mode_t um = umask(022);
    nsx_st st = {0};
    nsx_err err = {0};
    ck_assert_int_eq(nsx_st_write(path, &st, &err), 0);
    umask(um);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0644);
    ck_assert_int_eq(sb.st_size, 16);
    unlink(path);
}
END_TEST

/* ---- metadata: every field round-trips, every bad value is named ---- */

typedef struct meta_case {
    const char *name;
    void (*setup)(nsx_problem *p, nsx_case_info *info);
} meta_case;

static char *flags3[] = {"Windows", "GQA", "LeakPair"};
static nsx_pair pairs2[] = {
    {.kind = NSX_PAIR_LEAK, .a = 0, .b = 1, .t = 2, .future = NSX_FUTURE_NAN},
    {.kind = NSX_PAIR_PROBE, .a = 2, .b = 3, .i = 4, .dim = 3, .j = 1},
};

/* Every key set away from its default: an explicit score scale, the
   indexer, the f16 format, both pair kinds, a foreign generator. */
static void setup_full(nsx_problem *p, nsx_case_info *info)
{
    p->n = 3;
    p->B = 4, p->L = 5, p->H = 4, p->Hkv = 2, p->d = 3, p->dv = 2;
    p->reduce = NSX_REDUCE_MEAN;
    p->score_scale_rsqrt_d = 0;
    p->score_scale = 0.1;
    p->out_scale = 1.5;
    p->causal = 0;
    p->distinct = 1;
    int w[] = {0, 2, 7};
    double kb[] = {0.1, -0.25, 1e-300}, vb[] = {1, -0.0, -3.5};
    for (int m = 0; m < 3; m++)
        p->window[m] = w[m], p->k_bias[m] = kb[m], p->v_bias[m] = vb[m];
    p->sel = (nsx_selection){.source = NSX_SEL_INDEXER, .k = 3, .dims = 1 | 4,
                             .act = NSX_ACT_SOFTMAX, .idx_scale = 0.125, .Hi = 2, .di = 4};
    p->input_format = NSX_FORMAT_F16;
    *info = (nsx_case_info){.id = "full_case", .suite = "tests",
                            .description = "every key: \"quoted\", caf\xc3\xa9, tab\there",
                            .generator = "other 2.0", .flags = flags3, .nflags = 3,
                            .pairs = pairs2, .npairs = 2};
}

static void setup_defaults(nsx_problem *p, nsx_case_info *info)
{
    (void)p;
    *info = (nsx_case_info){.id = "", .description = ""};
}

static void setup_indices(nsx_problem *p, nsx_case_info *info)
{
    p->n = 2;
    p->B = 2, p->L = 7, p->H = 6, p->Hkv = 3, p->d = 8, p->dv = 5;
    p->reduce = NSX_REDUCE_SUM;
    p->window[1] = 1;
    p->sel = (nsx_selection){.source = NSX_SEL_INDICES, .k = 2, .dims = 2};
    p->input_format = NSX_FORMAT_BF16;
    *info = (nsx_case_info){.id = "indices", .description = "given indices, d = 8"};
}

static void setup_scores(nsx_problem *p, nsx_case_info *info)
{
    static nsx_pair pairs[] = {
        {.kind = NSX_PAIR_LEAK, .a = 0, .b = 1, .t = 0, .future = NSX_FUTURE_RANDOM},
        {.kind = NSX_PAIR_LEAK, .a = 1, .b = 0, .t = 3, .future = NSX_FUTURE_HUGE},
        {.kind = NSX_PAIR_LEAK, .a = 0, .b = 1, .t = 1, .future = NSX_FUTURE_INF},
        {.kind = NSX_PAIR_GRADLEAK, .a = 1, .b = 0, .t = 2},
    };
    p->B = 2, p->L = 4, p->d = 2;
    p->out_scale = -0.0;
    p->sel = (nsx_selection){.source = NSX_SEL_SCORES, .k = 1, .dims = 1};
    p->input_format = NSX_FORMAT_F32;
    *info = (nsx_case_info){.id = "scores", .description = "", .pairs = pairs, .npairs = 4};
}

static void setup_relu(nsx_problem *p, nsx_case_info *info)
{
    p->n = 2;
    p->sel = (nsx_selection){.source = NSX_SEL_INDEXER, .k = 1, .dims = 3,
                             .act = NSX_ACT_RELU, .idx_scale = -2.5e-8, .Hi = 1, .di = 1};
    *info = (nsx_case_info){.id = "relu", .description = "x"};
}

static void setup_identity(nsx_problem *p, nsx_case_info *info)
{
    setup_relu(p, info);
    p->sel.act = NSX_ACT_IDENTITY;
    p->d = 1048576; /* the largest dimension */
}

static void setup_n8(nsx_problem *p, nsx_case_info *info)
{
    p->n = 8;
    for (int m = 0; m < 8; m++)
        p->window[m] = m * 1000, p->k_bias[m] = ldexp(1, -m * 100), p->v_bias[m] = -m / 3.0;
    *info = (nsx_case_info){.id = "n8", .description = "order 8"};
}

static const meta_case meta_cases[] = {
    {"full", setup_full},         {"defaults", setup_defaults}, {"indices", setup_indices},
    {"scores", setup_scores},     {"relu", setup_relu},         {"identity", setup_identity},
    {"n8", setup_n8},
};

static void assert_same_problem(const nsx_problem *a, const nsx_problem *b, const char *what)
{
#define EQ(f) ck_assert_msg(a->f == b->f, "%s: " #f " differs", what)
#define EQD(f) ck_assert_msg(same_double(a->f, b->f), "%s: " #f " %a vs %a", what, a->f, b->f)
    EQ(n), EQ(B), EQ(L), EQ(H), EQ(Hkv), EQ(d), EQ(dv), EQ(reduce), EQ(score_scale_rsqrt_d);
    EQ(causal), EQ(distinct), EQ(input_format), EQD(out_scale);
    ck_assert(same_double(nsx_problem_score_scale(a), nsx_problem_score_scale(b)));
    for (int m = 0; m < NSX_MAX_ORDER; m++)
        EQ(window[m]), EQD(k_bias[m]), EQD(v_bias[m]);
    EQ(sel.source), EQ(sel.k), EQ(sel.dims);
    if (a->sel.source == NSX_SEL_INDEXER)
        EQ(sel.act), EQD(sel.idx_scale), EQ(sel.Hi), EQ(sel.di);
#undef EQ
#undef EQD
}

static void assert_same_info(const nsx_case_info *a, const nsx_case_info *b, const char *what)
{
    ck_assert_msg(strcmp(a->id, b->id) == 0, "%s: case", what);
    ck_assert_msg(strcmp(a->description, b->description) == 0, "%s: description", what);
    ck_assert_msg(!a->suite == !b->suite && (!a->suite || strcmp(a->suite, b->suite) == 0),
                  "%s: suite", what);
    ck_assert_str_eq(b->spec, NSX_SPEC_VERSION);
    ck_assert_str_eq(b->generator, a->generator ? a->generator : "nsimplex " NSX_VERSION);
    ck_assert_int_eq(a->nflags, b->nflags);
    for (int k = 0; k < a->nflags; k++)
        ck_assert_str_eq(a->flags[k], b->flags[k]);
    ck_assert_int_eq(a->npairs, b->npairs);
    for (int k = 0; k < a->npairs; k++) {
        const nsx_pair *x = &a->pairs[k], *y = &b->pairs[k];
        ck_assert(x->kind == y->kind && x->a == y->a && x->b == y->b);
        if (x->kind == NSX_PAIR_LEAK)
            ck_assert(x->t == y->t && x->future == y->future);
        else if (x->kind == NSX_PAIR_GRADLEAK)
            ck_assert(x->t == y->t);
        else
            ck_assert(x->i == y->i && x->dim == y->dim && x->j == y->j);
    }
}

START_TEST(test_meta_roundtrip)
{
    const meta_case *c = &meta_cases[_i];
    nsx_problem p, q;
    nsx_case_info info, back;
    nsx_err err = {0};
    nsx_problem_defaults(&p);
    c->setup(&p, &info);
    char why[256];
    ck_assert_msg(nsx_problem_check(&p, why, sizeof why) == 0, "%s: %s", c->name, why);
    char *text = nsx_meta_format(&p, &info, &err);
    ck_assert_msg(text != NULL, "%s: %s", c->name, err.msg);
    ck_assert_ptr_null(strchr(text, '\n'));
    ck_assert_msg(nsx_meta_parse(text, &q, &back, &err) == 0, "%s: %s\n%s", c->name, err.msg,
                  text);
    assert_same_problem(&p, &q, c->name);
    assert_same_info(&info, &back, c->name);
    char *again = nsx_meta_format(&q, &back, &err); /* the text is a fixed point */
    ck_assert_str_eq(again, text);
    if (p.score_scale_rsqrt_d) { /* the exact real is written with its binary64 */
        char want[128], num[32];
        nsx_fmt_double(num, sizeof num, nsx_problem_score_scale(&p));
        snprintf(want, sizeof want, "\"score_scale\": %s, \"score_scale_exact\": \"1/sqrt(d)\"",
                 num);
        ck_assert_msg(strstr(text, want) != NULL, "%s: %s", c->name, text);
    } else {
        ck_assert_ptr_null(strstr(text, "score_scale_exact"));
    }
    free(again);
    free(text);
    nsx_case_info_free(&back);
}
END_TEST

/* One edit of the "full" case's text, and the key the error names. */
static const struct {
    const char *find, *replace, *expect;
} meta_errors[] = {
    {"\"spec\": \"" NSX_SPEC_VERSION "\"", "\"spec\": \"2.0\"", "spec: version 2.0 is not supported"},
    {"\"spec\": \"" NSX_SPEC_VERSION "\"", "\"spec\": \"1\"", "spec: '1' is not a version MAJOR.MINOR"},
    {"\"spec\": \"" NSX_SPEC_VERSION "\", ", "", "spec: missing"},
    {"\"n\": 3", "\"n\": 3.0", "n: 3 is not written as an integer"},
    {"\"n\": 3", "\"n\": 9", "n: 9 is outside 1..8"},
    {"\"n\": 3", "\"n\": 2", "windows: has 3 entries but n = 2"},
    {"\"n\": 3, ", "", "n: missing"},
    {"\"B\": 4", "\"B\": 0", "B: 0 is outside 1..1048576"},
    {"\"L\": 5", "\"L\": \"5\"", "L: is not a number"},
    {"\"H\": 4", "\"H\": 3", "H = 3 is not a multiple of Hkv = 2"},
    {"\"reduce\": \"mean\"", "\"reduce\": \"max\"", "reduce: unknown value 'max'"},
    {"\"causal\": false", "\"causal\": 0", "causal: is not true or false"},
    {"\"windows\": [0, 2, 7]", "\"windows\": [0, -2, 7]", "windows[1]: -2 is outside"},
    {"\"k_bias\": [0.1", "\"k_bias\": [\"0.1\"", "k_bias[0]: is not a number"},
    {"\"out_scale\"", "\"score_scale_exact\": \"1/sqrt(d)\", \"out_scale\"",
     "score_scale: 0.1 is not 1/sqrt(d)"},
    {"\"out_scale\"", "\"score_scale_exact\": \"1/d\", \"out_scale\"",
     "score_scale_exact: unknown value '1/d'"},
    {"\"input_format\": \"f16\"", "\"input_format\": \"fp16\"", "input_format: unknown value"},
    {"\"act\": \"softmax\"", "\"act\": \"gelu\"", "selection.act: unknown value 'gelu'"},
    {"\"source\": \"indexer\"", "\"source\": \"indices\"",
     "selection.act: only for source indexer"},
    {"\"dims\": [1, 3]", "\"dims\": [1, 1]", "dimension 1 is listed twice"},
    {"\"dims\": [1, 3]", "\"dims\": [4]", "selection.dims[0]: 4 is outside 1..3"},
    {"\"dims\": [1, 3]", "\"dims\": []", "selection.dims: is not a nonempty array"},
    {"\"k\": 3", "\"k\": 0", "selection.k: 0 is outside"},
    {"\"Hi\": 2", "\"Hi\": 2.5", "selection.Hi: 2.5 is not an integer"},
    {"\"a\": 0, \"b\": 1", "\"a\": 0, \"b\": 0", "pairs[0].b: is batch 0, the same as a"},
    {"\"t\": 2", "\"t\": 5", "pairs[0].t: row 5 is outside 0..4"},
    {"\"dim\": 3", "\"dim\": 4", "pairs[1].dim: 4 is outside 1..3"},
    {"\"future\": \"nan\"", "\"future\": \"zero\"", "pairs[0].future: unknown value 'zero'"},
    {"\"flags\": [", "\"flags\": [1, ", "flags: entry 0 is not a string"},
    {"\"description\": ", "\"description\": 5, \"x\": ", "description: is not a string"},
    {"{", "{\"n\": 3, ", "duplicate key 'n'"},
    {"\"selection\": {", "\"selection\": {\"k\": 1, ", "duplicate key 'k' in 'selection'"},
    {"{", "[", "not a valid JSON object"},
    {"\"case\": \"full_case\"", "\"case\": \"a\\u0000b\"", "escaped NUL"},
};

START_TEST(test_meta_errors)
{
    nsx_problem p, q;
    nsx_case_info info, back;
    nsx_err err = {0};
    nsx_problem_defaults(&p);
    setup_full(&p, &info);
    char *text = nsx_meta_format(&p, &info, &err);
    const char *at = strstr(text, meta_errors[_i].find);
    ck_assert_msg(at != NULL, "'%s' not in the text: fix the table", meta_errors[_i].find);
    char edited[4096];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, meta_errors[_i].replace,
             at + strlen(meta_errors[_i].find));
    int r = nsx_meta_parse(edited, &q, &back, &err);
    ck_assert_msg(r == NSX_E_INPUT, "accepted: %s", edited);
    ck_assert_msg(strncmp(err.msg, "metadata: ", 10) == 0 &&
                      strstr(err.msg, meta_errors[_i].expect) != NULL,
                  "expected '%s', got '%s'", meta_errors[_i].expect, err.msg);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    free(text);
}
END_TEST

/* nsx_pairs_unjudged against the rule as SPEC.md 4.5 states it, row by
   row (a deliberate independent copy): random pairs, overlapping. */
START_TEST(test_pairs_unjudged)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.B = 5, p.L = 9;
    nsx_rng r = {77};
    for (int round = 0; round < 200; round++) {
        nsx_pair pairs[6];
        int np = nsx_rng_below(&r, 7);
        for (int x = 0; x < np; x++)
            pairs[x] = (nsx_pair){.kind = nsx_rng_below(&r, 2), .a = 0, .b = 1 + nsx_rng_below(&r, 4),
                                  .t = nsx_rng_below(&r, p.L), .future = nsx_rng_below(&r, 4)};
        unsigned char skip[5 * 9];
        nsx_pairs_unjudged(&p, pairs, np, skip);
        for (int b = 0; b < p.B; b++)
            for (int i = 0; i < p.L; i++) {
                int want = 0;
                for (int x = 0; x < np; x++)
                    want |= pairs[x].kind == NSX_PAIR_LEAK && pairs[x].future != NSX_FUTURE_RANDOM &&
                            pairs[x].b == b && i > pairs[x].t;
                ck_assert_int_eq(skip[b * p.L + i], want);
            }
    }
}
END_TEST

/* score_scale_exact: the binary64 beside it may be RN(1/sqrt(d)) or one
   ulp off (as 1.0 / sqrt(d) computes it), no further. */
START_TEST(test_meta_score_scale_ulps)
{
    nsx_problem p, q;
    nsx_case_info info;
    nsx_err err = {0};
    nsx_problem_defaults(&p);
    setup_indices(&p, &info); /* d = 8 */
    double rn = nsx_problem_score_scale(&p);
    char *text = nsx_meta_format(&p, &info, &err), num[32];
    nsx_fmt_double(num, sizeof num, rn);
    const char *at = strstr(text, num);
    ck_assert_ptr_nonnull(at);
    for (int ulps = -2; ulps <= 2; ulps++) {
        double s = rn;
        for (int k = 0; k < abs(ulps); k++)
            s = nextafter(s, ulps < 0 ? 0 : 1);
        char edited[4096], sv[32];
        nsx_fmt_double(sv, sizeof sv, s);
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, sv,
                 at + strlen(num));
        int r = nsx_meta_parse(edited, &q, NULL, &err);
        ck_assert_msg(r == (abs(ulps) <= 1 ? 0 : NSX_E_INPUT), "%d ulps: %d", ulps, r);
        if (r == 0)
            ck_assert(q.score_scale_rsqrt_d && nsx_problem_score_scale(&q) == rn);
    }
    free(text);
}
END_TEST

/* ---- case files ---- */

/* A problem with all its tensors, filled with values every input format
   holds (multiples of 1/8 below 2), for the case-file tests. */
typedef struct owned_case {
    nsx_problem p;
    nsx_case_info info;
    nsx_inputs in;
    nsx_outputs out;
    double *buf[2 * NSX_MAX_ORDER + 8];
    int nbuf;
    int32_t *sel, *sel_out;
} owned_case;

static double *filled(owned_case *c, size_t n, int salt)
{
    double *a = malloc((n ? n : 1) * sizeof *a);
    ck_assert_ptr_nonnull(a);
    for (size_t i = 0; i < n; i++)
        a[i] = (double)((int)((i * 7 + (size_t)salt * 3) % 31) - 15) / 8;
    c->buf[c->nbuf++] = a;
    return a;
}

/* n = 2 with the given input format and selection source. */
static void make_case(owned_case *c, int format, int source)
{
    *c = (owned_case){0};
    nsx_problem *p = &c->p;
    nsx_problem_defaults(p);
    p->n = 2;
    p->B = 2, p->L = 3, p->H = 2, p->Hkv = 1, p->d = 2, p->dv = 3;
    p->window[0] = 2;
    p->v_bias[1] = 0.25;
    p->input_format = format;
    if (source != NSX_SEL_NONE)
        p->sel = (nsx_selection){.source = source, .k = 2, .dims = 2, .act = NSX_ACT_RELU,
                                 .idx_scale = 0.5, .Hi = 2, .di = 2};
    size_t BL = (size_t)p->B * p->L;
    c->in.q = filled(c, nsx_q_size(p), 1);
    for (int m = 0; m < p->n; m++) {
        c->in.k[m] = filled(c, nsx_k_size(p), 2 + m);
        c->in.v[m] = filled(c, nsx_v_size(p), 5 + m);
    }
    c->out.o = filled(c, nsx_o_size(p), 9);
    c->out.lse = filled(c, nsx_lse_size(p), 10);
    c->out.lse[1] = -INFINITY; /* an empty slice */
    c->out.o[2] = 1.0 / 3;     /* outputs are F64: any binary64 */
    static const int32_t sel[] = {0, -1, 1, 0, -1, 2, 7, 0, 1, -5, 2, 1};
    static const int32_t sel_out[] = {0, -1, 0, 1, 1, 2, 0, -1, 0, 1, 0, 2};
    if (source == NSX_SEL_INDICES) {
        c->in.sel = c->sel = malloc(sizeof sel);
        memcpy(c->sel, sel, sizeof sel);
    }
    if (source == NSX_SEL_INDEXER || source == NSX_SEL_SCORES) {
        c->out.sel = c->sel_out = malloc(sizeof sel_out);
        memcpy(c->sel_out, sel_out, sizeof sel_out);
    }
    if (source == NSX_SEL_INDEXER) {
        c->in.idx_q = filled(c, BL * 2 * 2, 11);
        c->in.idx_k = filled(c, BL * 2, 12);
        c->in.idx_w = filled(c, BL * 2, 13);
        c->out.sel_scores = filled(c, BL * p->L, 14);
        c->out.sel_scores[0] = -INFINITY;
    }
    if (source == NSX_SEL_SCORES)
        c->in.idx_s = filled(c, BL * p->L, 15);
    static char *flags[] = {"Windows"};
    c->info = (nsx_case_info){.id = "case", .description = "a test case", .flags = flags,
                              .nflags = 1};
}

static void free_case(owned_case *c)
{
    for (int k = 0; k < c->nbuf; k++)
        free(c->buf[k]);
    free(c->sel);
    free(c->sel_out);
}

static void assert_same_array(const double *a, const double *b, size_t n, const char *what)
{
    ck_assert_msg(!a == !b, "%s: present in one only", what);
    for (size_t i = 0; a && i < n; i++)
        ck_assert_msg(same_double(a[i], b[i]), "%s[%zu]: %a vs %a", what, i, a[i], b[i]);
}

/* Written and read back: the problem, every input in its format's dtype,
   every output as F64, sel as I32. */
START_TEST(test_case_roundtrip)
{
    int format = _i % 4, source = _i / 4;
    owned_case c;
    make_case(&c, format, source);
    char path[4096];
    tmp_path(path, sizeof path, "case_%d_%d.safetensors", format, source);
    nsx_err err = {0};
    ck_assert_msg(nsx_case_write(path, &c.p, &c.info, &c.in, &c.out, &err) == 0, "%s", err.msg);
    nsx_case back;
    ck_assert_msg(nsx_case_read(path, &back, &err) == 0, "%s", err.msg);
    assert_same_problem(&c.p, &back.p, "case");
    assert_same_info(&c.info, &back.info, "case");
    const nsx_problem *p = &c.p;
    size_t BL = (size_t)p->B * p->L;
    assert_same_array(c.in.q, back.in.q, nsx_q_size(p), "q");
    for (int m = 0; m < p->n; m++) {
        assert_same_array(c.in.k[m], back.in.k[m], nsx_k_size(p), "k");
        assert_same_array(c.in.v[m], back.in.v[m], nsx_v_size(p), "v");
    }
    ck_assert_ptr_null(back.in.k[2]);
    assert_same_array(c.in.idx_q, back.in.idx_q, BL * 4, "idx_q");
    assert_same_array(c.in.idx_k, back.in.idx_k, BL * 2, "idx_k");
    assert_same_array(c.in.idx_w, back.in.idx_w, BL * 2, "idx_w");
    assert_same_array(c.in.idx_s, back.in.idx_s, BL * p->L, "idx_s");
    assert_same_array(c.out.o, back.expected.o, nsx_o_size(p), "o");
    assert_same_array(c.out.lse, back.expected.lse, nsx_lse_size(p), "lse");
    assert_same_array(c.out.sel_scores, back.expected.sel_scores, BL * p->L, "sel_scores");
    size_t ns = nsx_sel_size(p);
    ck_assert(!c.in.sel == !back.in.sel && !c.out.sel == !back.expected.sel);
    ck_assert(!c.in.sel || memcmp(c.in.sel, back.in.sel, ns * 4) == 0);
    ck_assert(!c.out.sel || memcmp(c.out.sel, back.expected.sel, ns * 4) == 0);
    /* dtypes in the file */
    ck_assert_int_eq(nsx_st_get(&back.st, "q")->dtype, format);
    ck_assert_int_eq(nsx_st_get(&back.st, "v2")->dtype, format);
    ck_assert_int_eq(nsx_st_get(&back.st, "o")->dtype, NSX_DTYPE_F64);
    if (ns)
        ck_assert_int_eq(nsx_st_get(&back.st, "sel")->dtype, NSX_DTYPE_I32);
    nsx_case_free(&back);
    free_case(&c);
    unlink(path);
}
END_TEST

/* Edits of a valid file (n = 2, bf16 inputs, given selection) that make it
   an invalid case. */
static void st_drop(nsx_st *st, const char *name)
{
    for (size_t i = 0; i < st->nt; i++)
        if (strcmp(st->t[i].name, name) == 0) {
            free(st->t[i].name);
            free(st->t[i].data);
            memmove(&st->t[i], &st->t[i + 1], (st->nt - i - 1) * sizeof st->t[0]);
            st->nt--;
            return;
        }
    ck_abort_msg("no tensor %s to drop", name);
}

static void st_put(nsx_st *st, const char *name, int dtype, int rank, const int64_t *shape,
                   double value)
{
    size_t n = 1;
    for (int r = 0; r < rank; r++)
        n *= (size_t)shape[r];
    double *v = malloc(n * sizeof *v);
    int32_t *iv = malloc(n * sizeof *iv);
    for (size_t i = 0; i < n; i++)
        v[i] = value, iv[i] = (int32_t)value;
    nsx_err err = {0};
    if (nsx_st_get(st, name))
        st_drop(st, name);
    int r = dtype == NSX_DTYPE_I32 ? nsx_st_add_i32(st, name, rank, shape, iv, &err)
                                   : nsx_st_add_f64(st, name, dtype, rank, shape, v, &err);
    ck_assert_msg(r == 0, "%s", err.msg);
    free(v);
    free(iv);
}

static void st_edit_meta(nsx_st *st, const char *find, const char *replace)
{
    const char *m = nsx_st_meta(st, NSX_META_KEY), *at = m ? strstr(m, find) : NULL;
    ck_assert_msg(at != NULL, "'%s' not in the metadata", find);
    char edited[4096];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - m), m, replace, at + strlen(find));
    nsx_err err = {0};
    ck_assert_int_eq(nsx_st_set_meta(st, NSX_META_KEY, edited, &err), 0);
}

/* shapes of the base case (B 2, L 3, H 2, Hkv 1, d 2, dv 3, k 2) */
static const int64_t q_shape[] = {2, 3, 2, 2}, k_shape[] = {2, 3, 1, 2},
                     q_wide[] = {2, 3, 2, 3}, sel_shape[] = {2, 3, 2}, s_shape[] = {2, 3, 3};

static void e_wrong_shape(nsx_st *st) { st_put(st, "q", NSX_DTYPE_BF16, 4, q_wide, 0); }
static void e_missing(nsx_st *st) { st_drop(st, "k2"); }
static void e_extra_k3(nsx_st *st) { st_put(st, "k3", NSX_DTYPE_BF16, 4, k_shape, 0); }
static void e_extra_idx_s(nsx_st *st) { st_put(st, "idx_s", NSX_DTYPE_F32, 3, s_shape, 0); }
static void e_not_bf16(nsx_st *st) { st_put(st, "q", NSX_DTYPE_F32, 4, q_shape, 0.1f); }
static void e_q_i32(nsx_st *st) { st_put(st, "q", NSX_DTYPE_I32, 4, q_shape, 1); }
static void e_sel_f32(nsx_st *st) { st_put(st, "sel", NSX_DTYPE_F32, 3, sel_shape, 0); }
static void e_o_i32(nsx_st *st) { st_put(st, "o", NSX_DTYPE_I32, 4, q_wide, 0); }
static void e_dup_index(nsx_st *st) { st_put(st, "sel", NSX_DTYPE_I32, 3, sel_shape, 1); }
static void e_spec2(nsx_st *st) { st_edit_meta(st, "\"spec\": \"" NSX_SPEC_VERSION "\"", "\"spec\": \"2.0\""); }
static void e_meta_int(nsx_st *st) { st_edit_meta(st, "\"L\": 3", "\"L\": 3.0"); }
static void e_no_meta(nsx_st *st)
{
    nsx_st_set_meta(st, NSX_META_KEY, "", NULL);
    free(st->meta[0].key);
    st->meta[0].key = strdup("other");
}
static void e_meta_not_json(nsx_st *st)
{
    nsx_err err;
    nsx_st_set_meta(st, NSX_META_KEY, "{\"spec\": \"1.0\",}", &err);
}

static const struct {
    const char *name;
    void (*edit)(nsx_st *st);
    const char *expect;
} case_errors[] = {
    {"wrong shape", e_wrong_shape, "tensor q: shape [2,3,2,3] but metadata says [2,3,2,2]"},
    {"missing tensor", e_missing, "tensor k2: missing"},
    {"tensor the problem does not have", e_extra_k3,
     "tensor k3: present, but the metadata's problem has no such tensor"},
    {"indexer scores without an indexer", e_extra_idx_s, "tensor idx_s: present"},
    {"value not representable", e_not_bf16,
     "tensor q: element [0,0,0,0] = 0.10000000149011612 is not representable in bf16"},
    {"input as I32", e_q_i32, "tensor q: dtype I32, but it must be a float dtype"},
    {"selection as F32", e_sel_f32, "tensor sel: dtype F32, but it must be I32"},
    {"output as I32", e_o_i32, "tensor o: dtype I32"},
    {"duplicate given index", e_dup_index, "tensor sel: row [0,0]: index 1 appears twice"},
    {"spec major version 2", e_spec2, "spec: version 2.0 is not supported"},
    {"integer written as 3.0", e_meta_int, "L: 3 is not written as an integer"},
    {"no nsimplex metadata", e_no_meta, "not an nsimplex case file"},
    {"metadata not JSON", e_meta_not_json, "metadata: not a valid JSON object"},
};

START_TEST(test_case_errors)
{
    owned_case c;
    make_case(&c, NSX_FORMAT_BF16, NSX_SEL_INDICES);
    char base[4096], path[4096];
    tmp_path(base, sizeof base, "case_base.safetensors");
    tmp_path(path, sizeof path, "case_error_%d.safetensors", _i);
    nsx_err err = {0};
    ck_assert_msg(nsx_case_write(base, &c.p, &c.info, &c.in, &c.out, &err) == 0, "%s", err.msg);
    nsx_st st;
    ck_assert_int_eq(nsx_st_read(base, &st, &err), 0);
    case_errors[_i].edit(&st);
    ck_assert_msg(nsx_st_write(path, &st, &err) == 0, "%s", err.msg);
    nsx_st_free(&st);
    nsx_case back;
    int r = nsx_case_read(path, &back, &err);
    ck_assert_msg(r == NSX_E_INPUT, "%s: accepted", case_errors[_i].name);
    check_one_line(&err, path, case_errors[_i].expect, case_errors[_i].name);
    free_case(&c);
    unlink(base);
    unlink(path);
}
END_TEST

/* Invalid indices in a given selection are ignored, not errors; a computed
   selection must be ascending with -1 pads last. */
START_TEST(test_case_selection_rules)
{
    owned_case c;
    nsx_err err = {0};
    char path[4096];
    tmp_path(path, sizeof path, "case_sel.safetensors");
    make_case(&c, NSX_FORMAT_F32, NSX_SEL_INDICES);
    int32_t *s = c.sel;
    s[0] = 3, s[1] = 3, s[2] = -1, s[3] = -1, s[4] = INT32_MIN, s[5] = 100; /* invalid, repeated */
    ck_assert_msg(nsx_case_write(path, &c.p, &c.info, &c.in, &c.out, &err) == 0, "%s", err.msg);
    s[4] = 2, s[5] = 2; /* a valid index twice: refused before anything is written */
    unlink(path);
    ck_assert_int_eq(nsx_case_write(path, &c.p, &c.info, &c.in, &c.out, &err), NSX_E_INPUT);
    ck_assert_msg(strstr(err.msg, "appears twice") && strncmp(err.msg, path, strlen(path)) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(access(path, F_OK), -1);
    free_case(&c);

    make_case(&c, NSX_FORMAT_F32, NSX_SEL_SCORES);
    c.sel_out[0] = 1, c.sel_out[1] = 0; /* descending */
    ck_assert_int_eq(nsx_case_write(path, &c.p, &c.info, &c.in, &c.out, &err), NSX_E_INPUT);
    ck_assert_msg(strstr(err.msg, "breaks ascending valid indices"), "%s", err.msg);
    c.sel_out[0] = -1, c.sel_out[1] = 0; /* a pad before an index */
    ck_assert_int_eq(nsx_case_write(path, &c.p, &c.info, &c.in, &c.out, &err), NSX_E_INPUT);
    c.in.q = NULL; /* a missing input */
    c.sel_out[0] = 0, c.sel_out[1] = 1;
    ck_assert_int_eq(nsx_case_write(path, &c.p, &c.info, &c.in, &c.out, &err), NSX_E_INPUT);
    ck_assert_msg(strstr(err.msg, "tensor q: missing"), "%s", err.msg);
    ck_assert_int_eq(access(path, F_OK), -1);
    free_case(&c);
}
END_TEST

/* ---- nsimplex show ---- */

static char valid_dir[1024];

/* The valid files of the seed corpus, written once under $NSX_TMP. */
static const char *valid_file(const char *name, char *out, size_t n)
{
    if (!valid_dir[0]) {
        tmp_path(valid_dir, sizeof valid_dir, "valid");
        mkdir(valid_dir, 0777);
        ck_assert_int_eq(st_corpus_write_valid(valid_dir), 0);
    }
    snprintf(out, n, "%s/%s.safetensors", valid_dir, name);
    return out;
}

static cli_result run(const char *a0, const char *a1, const char *a2, const char *a3)
{
    const char *args[] = {a0, a1, a2, a3, NULL};
    cli_result r;
    ck_assert_msg(cli_run(&r, args) == 0, "cannot run $NSX_BIN (%s)",
                  getenv("NSX_BIN") ? getenv("NSX_BIN") : "unset");
    return r;
}

/* Exit 2 and exactly one line on stderr that contains want (and, when
   given, the file). */
static void assert_bad_usage(cli_result *r, const char *want, const char *file)
{
    ck_assert_msg(r->status == 2, "exit %d, stderr: %s", r->status, r->err);
    ck_assert_msg(cli_count_lines(r->err) == 1, "stderr is not one line: '%s'", r->err);
    ck_assert_msg(strncmp(r->err, "nsimplex show: ", 15) == 0 && strstr(r->err, want),
                  "expected '%s' in '%s'", want, r->err);
    ck_assert_msg(!file || strstr(r->err, file), "the file is not named: '%s'", r->err);
    ck_assert_str_eq(r->out, "");
    cli_result_free(r);
}

START_TEST(test_show_valid)
{
    char path[4096];
    static const struct {
        const char *file, *flag, *want;
    } t[] = {
        {"ok_case", NULL, "a valid nsimplex case"},
        {"ok_case", "--raw", "\"spec\":"},
        {"ok_case", "--values=0", "tensors (in file order):"},
        {"ok_dtypes", NULL, "bf16"},
        {"ok_dtypes", "--values", "metadata \"format\": pt"},
        {"ok_empty", NULL, "0 tensors, 0 bytes of data"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        valid_file(t[i].file, path, sizeof path);
        cli_result r = t[i].flag && strcmp(t[i].flag, "--values") == 0
                           ? run("show", path, "--values", "100")
                           : run("show", path, t[i].flag, NULL);
        ck_assert_msg(r.status == 0, "%s %s: exit %d: %s", t[i].file, t[i].flag ? t[i].flag : "",
                      r.status, r.err);
        ck_assert_str_eq(r.err, "");
        ck_assert_msg(strstr(r.out, path) && strstr(r.out, t[i].want), "%s: no '%s' in:\n%s",
                      t[i].file, t[i].want, r.out);
        cli_result_free(&r);
    }
}
END_TEST

/* A header whose __metadata__ has MANY_KEYS keys "k0".."k<MANY_KEYS-1>"
   (value "v"), then tail (e.g. ',"bad":1'), and no tensors: written to
   path.  Reading it is linear in the keys (Jansson's hash table, and the
   reader appends keys it knows are new): 520k keys took 14 minutes when
   each key was looked up among the earlier ones. */
#define MANY_KEYS 300000
static void write_many_keys(const char *path, const char *tail)
{
    size_t cap = (size_t)MANY_KEYS * 16 + 64, k = 8;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    k += (size_t)sprintf(b + k, "{\"__metadata__\":{");
    for (int i = 0; i < MANY_KEYS; i++)
        k += (size_t)sprintf(b + k, "%s\"k%d\":\"v\"", i ? "," : "", i);
    k += (size_t)sprintf(b + k, "%s}}", tail);
    uint64_t hlen = k - 8;
    for (int t = 0; t < 8; t++)
        b[t] = (char)(hlen >> 8 * t);
    write_file(path, b, k);
    free(b);
}

START_TEST(test_many_metadata_keys)
{
    char path[4096];
    tmp_path(path, sizeof path, "many_keys.safetensors");
    /* all valid: every key kept, in the file's order */
    write_many_keys(path, "");
    nsx_st st;
    nsx_err err = {0};
    ck_assert_msg(nsx_st_read(path, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.nmeta, MANY_KEYS);
    ck_assert_str_eq(st.meta[MANY_KEYS - 1].key, "k299999");
    nsx_st_free(&st);
    /* one bad entry after them all, one repeated key: exit 2 naming it */
    static const struct {
        const char *tail, *want;
    } t[] = {
        {",\"bad\":1", "__metadata__ 'bad' is not a string"},
        {",\"k7\":\"w\"", "duplicate __metadata__ key 'k7'"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        write_many_keys(path, t[i].tail);
        cli_result r = run("show", path, NULL, NULL);
        assert_bad_usage(&r, t[i].want, path);
    }
    unlink(path);

    /* the nsimplex object itself with as many keys it does not know: ignored */
    nsx_problem pr, q;
    nsx_case_info info, back;
    nsx_problem_defaults(&pr);
    setup_full(&pr, &info);
    char *text = nsx_meta_format(&pr, &info, &err);
    ck_assert_ptr_nonnull(text);
    char *big = malloc((size_t)MANY_KEYS * 32 + strlen(text) + 8);
    ck_assert_ptr_nonnull(big);
    size_t k = (size_t)sprintf(big, "{");
    for (int i = 0; i < MANY_KEYS; i++)
        k += (size_t)sprintf(big + k, "\"x%d\": %d, ", i, i);
    strcpy(big + k, text + 1);
    ck_assert_msg(nsx_meta_parse(big, &q, &back, &err) == 0, "%s", err.msg);
    assert_same_problem(&pr, &q, "many keys");
    nsx_case_info_free(&back);
    free(big);
    free(text);
}
END_TEST

START_TEST(test_show_usage)
{
    cli_result r = run("show", "--help", NULL, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out, "usage: nsimplex show FILE"), "%s", r.out);
    ck_assert_str_eq(r.err, "");
    cli_result_free(&r);
    r = run("--help", NULL, NULL, NULL);
    ck_assert(r.status == 0 && strstr(r.out, "show FILE"));
    cli_result_free(&r);

    char path[4096];
    valid_file("ok_empty", path, sizeof path);
    r = run("show", path, "--bogus", NULL);
    assert_bad_usage(&r, "unknown option '--bogus'", NULL);
    r = run("show", NULL, NULL, NULL);
    assert_bad_usage(&r, "no FILE given", NULL);
    r = run("show", path, path, NULL);
    assert_bad_usage(&r, "one FILE only", NULL);
    r = run("show", path, "--values", "many");
    assert_bad_usage(&r, "--values: 'many' is not an integer", NULL);
    r = run("show", path, "--values", NULL);
    assert_bad_usage(&r, "--values needs a value", NULL);
    r = run("show", path, "--raw=yes", NULL);
    assert_bad_usage(&r, "--raw takes no value", NULL);
    char missing[4096];
    tmp_path(missing, sizeof missing, "no_such_file.safetensors");
    r = run("show", missing, NULL, NULL);
    assert_bad_usage(&r, "cannot open", missing);
}
END_TEST

START_TEST(test_show_hostile)
{
    const st_file *f = &st_hostile[_i];
    size_t n;
    unsigned char *b = st_file_bytes(f, &n);
    char path[4096];
    tmp_path(path, sizeof path, "show_%s.safetensors", f->name);
    write_file(path, b, n);
    free(b);
    cli_result r = run("show", path, NULL, NULL);
    ck_assert_msg(r.status == 2, "%s: exit %d", f->name, r.status);
    assert_bad_usage(&r, f->expect, path);
    unlink(path);
}
END_TEST

/* A valid safetensors file that is not a valid case: refused unless --raw. */
START_TEST(test_show_invalid_case)
{
    owned_case c;
    make_case(&c, NSX_FORMAT_BF16, NSX_SEL_INDICES);
    char path[4096];
    tmp_path(path, sizeof path, "show_bad_case.safetensors");
    nsx_err err = {0};
    ck_assert_int_eq(nsx_case_write(path, &c.p, &c.info, &c.in, &c.out, &err), 0);
    nsx_st st;
    ck_assert_int_eq(nsx_st_read(path, &st, &err), 0);
    e_spec2(&st);
    ck_assert_int_eq(nsx_st_write(path, &st, &err), 0);
    nsx_st_free(&st);
    cli_result r = run("show", path, NULL, NULL);
    assert_bad_usage(&r, "spec: version 2.0 is not supported", path);
    r = run("show", "--raw", path, NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    cli_result_free(&r);
    free_case(&c);
    unlink(path);
}
END_TEST

/* ---- the suite ---- */

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc;

    tc = tcase_create("fpformat");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_f16_every_pattern);
    tcase_add_test(tc, test_bf16_every_pattern);
    tcase_add_test(tc, test_nan_encoding);
    tcase_add_loop_test(tc, test_rounding_table, 0, sizeof rounding / sizeof rounding[0]);
    tcase_add_test(tc, test_random_against_mpfr);
    tcase_add_test(tc, test_f32_patterns);
    tcase_add_test(tc, test_representable);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_json_exact_int, 0, sizeof ints / sizeof ints[0]);
    tcase_add_loop_test(tc, test_json_bad_docs, 0, sizeof bad_docs / sizeof bad_docs[0]);
    tcase_add_test(tc, test_json_value_limit);
    tcase_add_test(tc, test_json_dup_keys);
    tcase_add_test(tc, test_json_depth_limit);
    tcase_add_test(tc, test_printable);
    tcase_add_test(tc, test_fmt_double);
    suite_add_tcase(s, tc);

    tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_st_roundtrip);
    tcase_add_test(tc, test_st_reference_bytes);
    tcase_add_test(tc, test_st_layout_deterministic);
    tcase_add_test(tc, test_st_add_errors);
    tcase_add_test(tc, test_st_read_not_a_file);
    tcase_add_loop_test(tc, test_hostile_parse, 0, (int)st_nhostile);
    tcase_add_loop_test(tc, test_hostile_read, 0, (int)st_nhostile);
    tcase_add_test(tc, test_many_metadata_keys);
    tcase_add_test(tc, test_corpus_matches_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("atomic");
    tcase_add_loop_test(tc, test_write_failure_leaves_nothing, 0, NFAIL);
    tcase_add_test(tc, test_write_mode_and_replace);
    suite_add_tcase(s, tc);

    tc = tcase_create("meta");
    tcase_add_loop_test(tc, test_meta_roundtrip, 0, sizeof meta_cases / sizeof meta_cases[0]);
    tcase_add_loop_test(tc, test_meta_errors, 0, sizeof meta_errors / sizeof meta_errors[0]);
    tcase_add_test(tc, test_meta_score_scale_ulps);
    tcase_add_test(tc, test_pairs_unjudged);
    suite_add_tcase(s, tc);

    tc = tcase_create("casefile");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_case_roundtrip, 0, 16);
    tcase_add_loop_test(tc, test_case_errors, 0, sizeof case_errors / sizeof case_errors[0]);
    tcase_add_test(tc, test_case_selection_rules);
    suite_add_tcase(s, tc);

    tc = tcase_create("cli_show");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_show_valid);
    tcase_add_test(tc, test_show_usage);
    tcase_add_loop_test(tc, test_show_hostile, 0, (int)st_nhostile);
    tcase_add_test(tc, test_show_invalid_case);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *corpus = getenv("NSX_WRITE_CORPUS");
    if (corpus && *corpus) {
        if (st_corpus_write(corpus) != 0)
            return 1;
        printf("wrote %zu hostile and 3 valid files to %s\n", st_nhostile, corpus);
        return 0;
    }
    SRunner *sr = srunner_create(io_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
