/*
 * The bf16-input path (simd/bf16.h): its conversions, the portable
 * variant's score chain against VDPBF16PS's documented arithmetic (order,
 * fusion, subnormals), the AVX512_BF16 variant bit for bit against the
 * portable one where this CPU has it, and every variant this CPU runs on
 * every vector of the default suite, judged by the oracle under the path's
 * own model; a planted bug and a too-narrow model must fail.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "io/casefile.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "runner/runner.h"
#include "simd/bf16.h"
#include "simd/simd.h"
#include "vectors/suites.h"

static float f_of(uint32_t u)
{
    union {
        uint32_t u;
        float f;
    } x = {.u = u};
    return x.f;
}

static uint32_t u_of(float f)
{
    union {
        float f;
        uint32_t u;
    } x = {.f = f};
    return x.u;
}

/* Deliberate independent copy (test oracle): round to nearest even by
   comparing x with its two bf16 neighbours in binary64. */
static uint16_t rne_by_distance(float x)
{
    uint32_t down = u_of(x) & 0xffff0000u;
    float lo = f_of(down), hi = f_of(down + 0x10000u); /* the next bf16 away from zero */
    double dl = fabs((double)x - lo), dh = isinf(hi) ? INFINITY : fabs((double)hi - x);
    if (isinf(hi)) { /* above the largest bf16: RN overflows at its midpoint with 2^128 */
        double mid = (fabs((double)lo) + ldexp(1.0, 128)) / 2;
        if (fabs((double)x) >= mid)
            return (uint16_t)((down >> 16 & 0x8000u) | 0x7f80u);
        return (uint16_t)(down >> 16);
    }
    if (dl < dh || (dl == dh && !(down >> 16 & 1u)))
        return (uint16_t)(down >> 16);
    return (uint16_t)((down + 0x10000u) >> 16);
}

START_TEST(rounding_is_nearest_even)
{
    /* Every bf16 converts back to itself; NaNs stay NaN. */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float x = nsx_bf16_widen((uint16_t)h);
        if (isnan(x))
            ck_assert(isnan(nsx_bf16_widen(nsx_bf16_round(x))));
        else
            ck_assert_uint_eq(nsx_bf16_round(x), h);
    }
    /* Ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7. */
    ck_assert_float_eq(nsx_bf16_widen(nsx_bf16_round(1.0f + 0x1p-8f)), 1.0f);
    ck_assert_float_eq(nsx_bf16_widen(nsx_bf16_round(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
    ck_assert_float_eq(nsx_bf16_widen(nsx_bf16_round(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
    ck_assert(isinf(nsx_bf16_widen(nsx_bf16_round(FLT_MAX))));
    /* Random floats (every exponent) against the distance rule. */
    uint64_t s = 88172645463325252ull;
    for (int t = 0; t < 200000; t++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float x = f_of((uint32_t)s);
        if (isnan(x))
            continue;
        ck_assert_msg(nsx_bf16_round(x) == rne_by_distance(x), "x = %a", (double)x);
    }
    /* The operand conversion flushes a subnormal result, after rounding. */
    ck_assert_uint_eq(nsx_bf16_round_ftz(0x1p-130f), 0);
    ck_assert_uint_eq(nsx_bf16_round_ftz(-0x1p-130f), 0x8000u);
    ck_assert_float_eq(nsx_bf16_widen(nsx_bf16_round_ftz(FLT_MIN)), FLT_MIN);
    ck_assert_float_eq(nsx_bf16_widen(nsx_bf16_round_ftz(FLT_MIN * (1 - 0x1p-10f))), FLT_MIN);
}
END_TEST

static uint32_t pair(float lo, float hi)
{
    return (uint32_t)nsx_bf16_round(lo) | (uint32_t)nsx_bf16_round(hi) << 16;
}

/* Deliberate independent copy (test oracle) of VDPBF16PS's lane on normal
   values with exponents near 0: each step's exact sum in long double (64
   bits hold it) rounded once to float32, the high pair first. */
static float dot_model(const uint32_t *a, const uint32_t *b, int d2)
{
    float acc = 0.0f;
    for (int p = 0; p < d2; p++) {
        long double hi = (long double)nsx_bf16_widen((uint16_t)(a[p] >> 16)) * nsx_bf16_widen((uint16_t)(b[p] >> 16));
        acc = (float)((long double)acc + hi);
        long double lo = (long double)nsx_bf16_widen((uint16_t)a[p]) * nsx_bf16_widen((uint16_t)b[p]);
        acc = (float)((long double)acc + lo);
    }
    return acc;
}

START_TEST(portable_dot_is_vdpbf16ps)
{
    const nsx_bf16_kernels *k = &nsx_bf16_portable;
    /* Order and fusion: -2^25, then 2^25 (high) before 1 (low): 1.  A chain
       taking the low product first gives 0, and one that adds the pair's
       exact sum 2^25 + 1 (rounded to 2^25) gives 0 too. */
    uint32_t a[2] = {pair(0, -0x1p25f), pair(1, 0x1p25f)}, b[2] = {pair(0, 1), pair(1, 1)};
    ck_assert_float_eq(k->dot(a, b, 2), 1.0f);
    /* Subnormal bf16 inputs read as zero: 2^-133 * 2^100 would be 2^-33. */
    uint32_t sa = 0x0001u, sb = pair(0x1p100f, 0);
    ck_assert_float_eq(k->dot(&sa, &sb, 1), 0.0f);
    /* Subnormal results flushed: 2^-70 * 2^-70 = 2^-140. */
    uint32_t ta = pair(0x1p-70f, 0), tb = pair(0x1p-70f, 0);
    ck_assert_float_eq(k->dot(&ta, &tb, 1), 0.0f);
    ck_assert(!signbit(k->dot(&ta, &tb, 1)));
    /* A product is exact: (1 + 2^-7)^2 = 1 + 2^-6 + 2^-14 needs 15 bits. */
    uint32_t ea = pair(1 + 0x1p-7f, 0);
    ck_assert_float_eq(k->dot(&ea, &ea, 1), 1 + 0x1p-6f + 0x1p-14f);
    /* Random chains of normal values in [2^-8, 2^8] against the model. */
    uint64_t s = 2463534242ull;
    uint32_t ra[64], rb[64];
    for (int t = 0; t < 2000; t++) {
        for (int p = 0; p < 64; p++) {
            float v[4];
            for (int z = 0; z < 4; z++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                v[z] = ldexpf(1.0f + (float)(s % 128) / 128.0f, (int)(s >> 20 & 15) - 8) * ((s >> 30 & 1) ? -1 : 1);
            }
            ra[p] = pair(v[0], v[1]);
            rb[p] = pair(v[2], v[3]);
        }
        const int d2 = 1 + t % 64;
        ck_assert_msg(u_of(k->dot(ra, rb, d2)) == u_of(dot_model(ra, rb, d2)), "chain %d", t);
    }
}
END_TEST

/* Where this CPU has AVX512_BF16: the instruction and the portable chain
   agree bit for bit, subnormals, infinities and NaNs included. */
START_TEST(variants_agree_bit_for_bit)
{
    if (!nsx_bf16_variant_supported(NSX_BF16_AVX512BF16)) {
        printf("bf16: this CPU lacks AVX512_BF16; avx512bf16 vs portable not compared here\n");
        return;
    }
    const nsx_bf16_kernels *p = &nsx_bf16_portable, *v = &nsx_bf16_avx512bf16;
    uint64_t s = 1234567ull;
    uint32_t a[32], b[32];
    for (int t = 0; t < 100000; t++) {
        for (int z = 0; z < 32; z++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            a[z] = (uint32_t)s;
            b[z] = (uint32_t)(s >> 32);
        }
        const int d2 = 1 + t % 32;
        float x = p->dot(a, b, d2), y = v->dot(a, b, d2);
        ck_assert_msg(u_of(x) == u_of(y) || (isnan(x) && isnan(y)), "chain %d: %a vs %a", t, (double)x,
                      (double)y);
    }
}
END_TEST

/* The model the path declares through the ABI is NSX_BF16_MODEL, with the
   ABI's empty-slice convention. */
START_TEST(declared_model_is_the_documented_one)
{
    nsx_model a, b;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_model_from_kernel(nsx_simd_bf16_info(), &a, &err), 0);
    ck_assert_int_eq(nsx_model_parse(NSX_BF16_MODEL ",lse=any", &b, &err), 0);
    char fa[256], fb[256];
    ck_assert_str_eq(nsx_model_format(&a, fa, sizeof fa), nsx_model_format(&b, fb, sizeof fb));
    ck_assert_str_eq(fa, "in=bf16,op=bf16,acc=f32,int=none,w=bf16,out=f32,lseout=f32,lse=any");
}
END_TEST

/* A tile with a planted bug: the last pair of l never reaches the scores. */
static void tile_drops_last_pair(const nsx_bf16_tile *t, nsx_row_state *st)
{
    nsx_bf16_tile c = *t;
    c.d2 = t->d2 - 1;
    nsx_bf16_portable.tile(&c, st);
}

static const nsx_bf16_kernels planted = {
    .variant = NSX_BF16_PORTABLE, .mr = 4, .nr = 16, .tile = tile_drops_last_pair,
};

/* Any finite input beyond bf16's range. */
static int beyond_bf16(const double *x, size_t count)
{
    const double most = ldexp(2.0 - 0x1p-7, 127);
    for (size_t t = 0; t < count; t++)
        if (isfinite(x[t]) && fabs(x[t]) > most)
            return 1;
    return 0;
}

static uint16_t *to_bf16(const double *x, size_t count, int *beyond)
{
    uint16_t *h = malloc(count * sizeof *h);
    ck_assert_ptr_nonnull(h);
    for (size_t t = 0; t < count; t++)
        h[t] = nsx_bf16_round((float)x[t]); /* as the ABI library: via float32 */
    *beyond |= beyond_bf16(x, count);
    return h;
}

typedef struct tally {
    int judged, passed, skipped;
    char first_fail[1024];
} tally;

/* Runs ks (or, when ks is NULL, the variant) on every vector of the default
   suite and judges it under model. */
static void run_suite(const nsx_bf16_kernels *ks, int variant, const char *model, int threads, tally *tl)
{
    const nsx_suite *s = nsx_suite_find("default");
    nsx_model m;
    nsx_err err = {0};
    ck_assert_msg(nsx_model_parse(model, &m, &err) == 0, "%s", err.msg);
    memset(tl, 0, sizeof *tl);
    for (size_t ci = 0; ci < s->count; ci++) {
        char path[512];
        nsx_case c;
        snprintf(path, sizeof path, "vectors/default/%s.safetensors", s->cases[ci].name);
        ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
        const nsx_problem *p = &c.p;
        int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
        nsx_kernel_problem kp;
        nsx_problem_to_kernel(p, computed ? c.expected.sel : c.in.sel, &kp);
        int beyond = 0;
        float *o = calloc(nsx_o_size(p), sizeof *o), *lse = calloc(nsx_lse_size(p), sizeof *lse);
        nsx_bf16_io io = {.q = to_bf16(c.in.q, nsx_q_size(p), &beyond), .o = o, .lse = lse};
        for (int mm = 0; mm < p->n; mm++) {
            io.k[mm] = to_bf16(c.in.k[mm], nsx_k_size(p), &beyond);
            io.v[mm] = to_bf16(c.in.v[mm], nsx_v_size(p), &beyond);
        }
        int rc = ks ? nsx_simd_forward_bf16_with(&kp, &io, threads, ks)
                    : nsx_simd_forward_bf16_variant(&kp, &io, threads, variant);
        ck_assert_msg(rc == NSX_SIMD_OK, "%s: code %d", path, rc);
        double *od = malloc(nsx_o_size(p) * sizeof *od), *ld = malloc(nsx_lse_size(p) * sizeof *ld);
        for (size_t t = 0; t < nsx_o_size(p); t++)
            od[t] = o[t];
        for (size_t t = 0; t < nsx_lse_size(p); t++)
            ld[t] = lse[t];
        nsx_candidate cand = {.o = od, .lse = ld};
        nsx_check_report rep;
        rc = nsx_check(p, &c.info, &c.in, &c.expected, &cand, &m, &rep, &err);
        if (rc == NSX_E_NOT_APPLICABLE && beyond) {
            tl->skipped++; /* inputs bf16 cannot hold */
        } else {
            ck_assert_msg(rc == 0, "%s: %s", path, err.msg);
            tl->judged++;
            tl->passed += rep.pass;
            if (!rep.pass && !tl->first_fail[0])
                snprintf(tl->first_fail, sizeof tl->first_fail, "%s: %s", path,
                         rep.nnotes ? rep.notes[0] : "failed");
        }
        free((void *)io.q);
        for (int mm = 0; mm < p->n; mm++)
            free((void *)io.k[mm]), free((void *)io.v[mm]);
        free(o), free(lse), free(od), free(ld);
        nsx_case_free(&c);
    }
}

START_TEST(every_golden_vector_passes_under_its_model)
{
    const int v = _i;
    if (!nsx_bf16_variant_supported(v)) {
        printf("bf16 %s: this CPU lacks it; not run here\n", nsx_bf16_variant_name(v));
        return;
    }
    tally tl;
    run_suite(NULL, v, NSX_BF16_MODEL, 0, &tl);
    printf("golden vectors, bf16 path %s under %s: %d judged, %d passed, %d not applicable (inputs beyond bf16)\n",
           nsx_bf16_variant_name(v), NSX_BF16_MODEL, tl.judged, tl.passed, tl.skipped);
    ck_assert_msg(tl.passed == tl.judged, "%s", tl.first_fail);
    ck_assert_int_le(tl.skipped, 1);
    ck_assert_int_ge(tl.judged, (int)nsx_suite_find("default")->count - 1);
}
END_TEST

/* The oracle has bite here: a tile that drops the last pair of l fails,
   and the honest path fails a model that allows it no bf16 operands. */
START_TEST(planted_bug_and_narrow_model_fail)
{
    tally tl;
    run_suite(&planted, NSX_BF16_PORTABLE, NSX_BF16_MODEL, 0, &tl);
    printf("bf16 path with the last pair dropped: %d of %d vectors fail (first: %s)\n", tl.judged - tl.passed,
           tl.judged, tl.first_fail);
    ck_assert_int_ge(tl.judged - tl.passed, tl.judged / 2);
    run_suite(NULL, NSX_BF16_PORTABLE, "f32", 0, &tl);
    printf("bf16 path judged under f32: %d of %d vectors fail (first: %s)\n", tl.judged - tl.passed, tl.judged,
           tl.first_fail);
    ck_assert_int_gt(tl.judged - tl.passed, 0);
}
END_TEST

/* The result does not depend on the threads. */
START_TEST(threads_do_not_change_the_bits)
{
    nsx_case c;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_case_read("vectors/default/n3_gqa_biases.safetensors", &c, &err), 0);
    const nsx_problem *p = &c.p;
    nsx_kernel_problem kp;
    nsx_problem_to_kernel(p, c.in.sel, &kp);
    int beyond = 0;
    float *o[2], *lse[2];
    nsx_bf16_io io = {.q = to_bf16(c.in.q, nsx_q_size(p), &beyond)};
    for (int m = 0; m < p->n; m++) {
        io.k[m] = to_bf16(c.in.k[m], nsx_k_size(p), &beyond);
        io.v[m] = to_bf16(c.in.v[m], nsx_v_size(p), &beyond);
    }
    for (int r = 0; r < 2; r++) {
        o[r] = calloc(nsx_o_size(p), sizeof(float));
        lse[r] = calloc(nsx_lse_size(p), sizeof(float));
        io.o = o[r];
        io.lse = lse[r];
        ck_assert_int_eq(nsx_simd_forward_bf16_variant(&kp, &io, r ? 3 : 1, NSX_BF16_PORTABLE), NSX_SIMD_OK);
    }
    ck_assert(memcmp(o[0], o[1], nsx_o_size(p) * sizeof(float)) == 0);
    ck_assert(memcmp(lse[0], lse[1], nsx_lse_size(p) * sizeof(float)) == 0);
    free((void *)io.q);
    for (int m = 0; m < p->n; m++)
        free((void *)io.k[m]), free((void *)io.v[m]);
    for (int r = 0; r < 2; r++)
        free(o[r]), free(lse[r]);
    nsx_case_free(&c);
}
END_TEST

/* The library behind the ABI: `check --kernel` judges it under its own
   declared model; NSX_BF16 names a variant or is refused. */
START_TEST(abi_library_passes_check_kernel)
{
    const char *so = getenv("NSX_SIMD_BF16_SO");
    if (!so) {
        printf("bf16: NSX_SIMD_BF16_SO unset (make check sets it); skipped\n");
        return;
    }
    cli_result r;
    const char *args[] = {"check", "--kernel", so, "vectors/default/n1_dense.safetensors",
                          "vectors/default/n2_biases.safetensors", "vectors/default/n4_windows.safetensors", NULL};
    ck_assert_int_eq(cli_run(&r, args), 0);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "kernel nsimplex-simd-bf16: 3 vectors: 3 passed"));
    cli_result_free(&r);
}
END_TEST

/* bench --bf16 times both paths and names the variant; NSX_BF16 forces
   it, and a name this CPU cannot run is refused by the library and the
   bench alike. */
START_TEST(bench_and_forcing)
{
    cli_result r;
    const char *bench[] = {"bench", "--bf16", "--L", "24", "--repeat", "1", "--threads", "1", "--json", NULL};
    setenv("NSX_BF16", "portable", 1);
    ck_assert_int_eq(cli_run(&r, bench), 0);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "\"variant\":\"portable\",\"emulated\":true"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"products_per_s\":"));
    cli_result_free(&r);
    setenv("NSX_BF16", "bogus", 1);
    ck_assert_int_eq(cli_run(&r, bench), 0);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "NSX_BF16=bogus is not one of avx512bf16, portable"));
    cli_result_free(&r);
    const char *so = getenv("NSX_SIMD_BF16_SO");
    if (so) {
        const char *chk[] = {"check", "--kernel", so, "vectors/default/n1_dense.safetensors", NULL};
        ck_assert_int_eq(cli_run(&r, chk), 0);
        ck_assert_msg(r.status != 0, "%s", r.out);
        ck_assert_ptr_nonnull(strstr(r.out, "FAIL"));
        cli_result_free(&r);
    }
    unsetenv("NSX_BF16");
}
END_TEST

static Suite *bf16_suite(void)
{
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rounding_is_nearest_even);
    tcase_add_test(tc, portable_dot_is_vdpbf16ps);
    tcase_add_test(tc, variants_agree_bit_for_bit);
    tcase_add_test(tc, declared_model_is_the_documented_one);
    tcase_add_loop_test(tc, every_golden_vector_passes_under_its_model, 0, NSX_BF16_COUNT);
    tcase_add_test(tc, planted_bug_and_narrow_model_fail);
    tcase_add_test(tc, threads_do_not_change_the_bits);
    tcase_add_test(tc, abi_library_passes_check_kernel);
    tcase_add_test(tc, bench_and_forcing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bf16_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
