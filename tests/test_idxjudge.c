/*
 * Judging an indexer alone (oracle/idxcheck.c, docs/ORACLE.md 5): the FP8
 * model formats and keys, nsx_check_indexer on the reference's own outputs
 * (pass) and on planted faults (an index listed twice, a future key, an
 * entry that is neither a key nor -1, a key missing, a score beyond its
 * bound: fail; a tie broken the other way: pass), `fuzz --indexer` on the
 * SIMD kernel and on the emulated FP8 indexers of tests/kernels/fp8idx.c
 * (honest ones pass, a per-tensor scale and a wrong block size fail), and
 * `check` on indexer candidate files.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "fuzz/fuzz.h"
#include "io/casefile.h"
#include "io/safetensors.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "vectors/build.h"
#include "tests/env.h"

START_TEST(fp8_model_formats_and_keys)
{
    nsx_fmt e4 = nsx_fmt_of(NSX_MODEL_E4M3), e5 = nsx_fmt_of(NSX_MODEL_E5M2);
    ck_assert_int_eq(e4.p, 4);
    ck_assert(e4.max == 448.0 && e4.u == 0x1p-4 && e4.lambda == 0x1p-6);
    ck_assert_int_eq(e5.p, 3);
    ck_assert(e5.max == 57344.0 && e5.u == 0x1p-3 && e5.lambda == 0x1p-14);
    nsx_model m;
    nsx_err err = {0};
    char buf[128];
    ck_assert_int_eq(nsx_model_parse("dsa-fp8", &m, &err), 0);
    ck_assert_str_eq(nsx_model_format(&m, buf, sizeof buf),
                     "in=f32,op=f32,acc=f32,int=none,w=none,out=f32,lseout=f32,lse=-inf,idx=e4m3,idxblk=128");
    ck_assert_int_eq(nsx_model_parse(buf, &m, &err), 0); /* reads back */
    ck_assert_int_eq(m.idx, NSX_MODEL_E4M3);
    ck_assert_int_eq(nsx_model_parse("f32,idx=e5m2,idxblk=64", &m, &err), 0);
    ck_assert_int_eq(m.idx, NSX_MODEL_E5M2);
    ck_assert_int_eq(m.idx_blk, 64);
    ck_assert_int_eq(nsx_model_parse("bf16", &m, &err), 0);
    ck_assert_ptr_null(strstr(nsx_model_format(&m, buf, sizeof buf), "idx")); /* unchanged text without idx */
    const char *bad[] = {"f32,idx=tf32", "f32,idx=e3m4", "f32,idxblk=0", "f32,idxblk=12x", "f32,idxblk="};
    for (size_t x = 0; x < sizeof bad / sizeof bad[0]; x++) {
        ck_assert_int_eq(nsx_model_parse(bad[x], &m, &err), NSX_E_INPUT);
        ck_assert_ptr_nonnull(strstr(err.msg, bad[x]));
    }
    /* the indexer's model a kernel declares: ABI 3 FP8, ABI 2 plain */
    nsx_kernel_info ki = {.abi_version = 3, .name = "k", .input_format = NSX_FORMAT_F32,
                          .accum_format = NSX_FORMAT_F32, .weights_format = NSX_FORMAT_F32,
                          .output_format = NSX_FORMAT_F32, .max_order = 1,
                          .indexer = NSX_IDX_WRITES_SEL | NSX_IDX_RELU, .indexer_input_format = NSX_FORMAT_E4M3,
                          .indexer_accum_format = NSX_FORMAT_F32, .indexer_output_format = NSX_FORMAT_BF16,
                          .indexer_block = 32};
    ck_assert_int_eq(nsx_model_from_kernel_indexer(&ki, &m, &err), 0);
    ck_assert(m.idx == NSX_MODEL_E4M3 && m.idx_blk == 32 && m.in == NSX_FORMAT_F32 && m.out == NSX_FORMAT_BF16);
    ki.indexer_block = 0;
    ck_assert_int_eq(nsx_model_from_kernel_indexer(&ki, &m, &err), NSX_E_INPUT);
    ki.abi_version = 2; /* FP8 is ABI 3's: an ABI 2 info cannot declare it */
    ck_assert_int_eq(nsx_model_from_kernel_indexer(&ki, &m, &err), NSX_E_INPUT);
    ki.indexer_input_format = NSX_FORMAT_BF16;
    ck_assert_int_eq(nsx_model_from_kernel_indexer(&ki, &m, &err), 0);
    ck_assert(m.idx == NSX_MODEL_NONE && m.in == NSX_FORMAT_BF16);
    ki.indexer = 0;
    ck_assert_int_eq(nsx_model_from_kernel_indexer(&ki, &m, &err), NSX_E_INPUT);
    /* a library's info is refused at load time for a bad indexer declaration */
    nsx_kernel_info good = {.abi_version = 3, .name = "k", .max_order = 1, .indexer = NSX_IDX_WRITES_SEL | NSX_IDX_RELU,
                            .indexer_input_format = NSX_FORMAT_E5M2, .indexer_block = 128};
    ck_assert_int_eq(nsx_kernel_info_check(&good, "lib.so", &err), 0);
    nsx_kernel_info bi = good;
    bi.indexer_block = 0;
    ck_assert_int_eq(nsx_kernel_info_check(&bi, "lib.so", &err), NSX_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "lib.so: indexer_block 0"));
    bi = good;
    bi.indexer_accum_format = 6;
    ck_assert_int_eq(nsx_kernel_info_check(&bi, "lib.so", &err), NSX_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "indexer_accum_format 6"));
    bi = good;
    bi.indexer |= 1u << 10;
    ck_assert_int_eq(nsx_kernel_info_check(&bi, "lib.so", &err), NSX_E_INPUT);
    bi = good;
    bi.abi_version = 2; /* FP8 is not an ABI 2 format */
    ck_assert_int_eq(nsx_kernel_info_check(&bi, "lib.so", &err), NSX_E_INPUT);
}
END_TEST

/* A built case with its golden selection and scores. */
static void build(const char *recipe, uint64_t seed, nsx_recipe *rc, nsx_instance *b)
{
    nsx_err err = {0};
    ck_assert_msg(nsx_recipe_parse(recipe, rc, &err) == 0, "%s", err.msg);
    ck_assert_msg(nsx_build(rc, seed, b, &err) == 0, "%s", err.msg);
    ck_assert_msg(nsx_ref_select(&b->p, &b->in, b->sel_out, b->sel_scores, NULL, NULL, &err) == 0, "%s", err.msg);
}

static int judge(const nsx_instance *b, const double *s, const int32_t *sel, const char *model, nsx_check_report *rep)
{
    nsx_model m;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_model_parse(model, &m, &err), 0);
    const nsx_idx_candidate c = {s, sel};
    int rc = nsx_check_indexer(&b->p, &b->in, &b->out, &c, &m, rep, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    return rep->pass;
}

START_TEST(reference_passes_planted_faults_fail)
{
    nsx_recipe rc;
    nsx_instance b = {0};
    build("n=1 B=2 L=13 d=1 sel=indexer k=4 act=relu iscale=0.25 Hi=3 di=5 fmt=bf16", 11, &rc, &b);
    const nsx_problem *p = &b.p;
    const size_t nsel = nsx_sel_size(p), LL = (size_t)p->B * p->L * p->L;
    int32_t *sel = malloc(nsel * sizeof *sel);
    double *s = malloc(LL * sizeof *s);
    ck_assert(sel && s);
    nsx_check_report rep;
    memcpy(sel, b.sel_out, nsel * sizeof *sel);
    memcpy(s, b.sel_scores, LL * sizeof *s);
    ck_assert(judge(&b, s, sel, "f32", &rep));
    ck_assert_uint_eq(rep.s_failed + rep.sel_failed, 0);
    ck_assert_uint_eq(rep.sel_rows, (size_t)p->B * p->L);
    ck_assert(rep.s_judged > 0 && rep.worst_s.ratio == 0);
    /* row (0, 9): 4 of 10 candidates */
    int32_t *row = sel + nsx_sel_at(p, 0, 9, 0);
    const struct { int r; int32_t v; const char *why; } bad[] = {
        {1, -1, "valid keys selected"},        /* a key missing */
        {1, 10, "not a candidate key"},        /* a future key (causal) */
        {1, -7, "neither a key nor the pad"},  /* not a key, not -1 */
        {1, 13, "neither a key nor the pad"},  /* = L */
    };
    for (size_t x = 0; x < sizeof bad / sizeof bad[0]; x++) {
        int32_t keep = row[bad[x].r];
        row[bad[x].r] = bad[x].v;
        ck_assert(!judge(&b, NULL, sel, "f32", &rep));
        ck_assert_msg(strstr(rep.notes[0], bad[x].why), "%s", rep.notes[0]);
        row[bad[x].r] = keep;
    }
    int32_t keep = row[1];
    row[1] = row[0]; /* listed twice */
    ck_assert(!judge(&b, NULL, sel, "f32", &rep));
    ck_assert_ptr_nonnull(strstr(rep.notes[0], "listed twice"));
    row[1] = keep;
    /* a short row (0, 2): all 3 candidates, then -1; a future key as a pad fails */
    int32_t *srow = sel + nsx_sel_at(p, 0, 2, 0);
    ck_assert_int_eq(srow[3], -1);
    srow[3] = 3;
    ck_assert(!judge(&b, NULL, sel, "f32", &rep));
    srow[3] = -1;
    /* scores: within the f32 bound passes, beyond it fails */
    size_t at = nsx_idx_s_at(p, 1, 12, 5);
    s[at] = b.sel_scores[at] * (1 + 0x1p-22);
    ck_assert(judge(&b, s, NULL, "f32", &rep));
    s[at] = b.sel_scores[at] + 0.01 * (1 + fabs(b.sel_scores[at]));
    ck_assert(!judge(&b, s, NULL, "f32", &rep));
    ck_assert_uint_eq(rep.s_failed, 1);
    ck_assert(rep.worst_s.b == 1 && rep.worst_s.i == 12 && rep.worst_s.c == 5);
    /* ... but within bf16's (a coarser model tolerates more) */
    ck_assert(judge(&b, s, NULL, "bf16,idx=bf16", &rep));
    s[at] = NAN;
    ck_assert(!judge(&b, s, NULL, "bf16", &rep));
    free(sel);
    free(s);
    nsx_instance_free(&b);
}
END_TEST

START_TEST(a_tie_broken_either_way_passes)
{
    nsx_recipe rc;
    nsx_instance b = {0};
    /* ties=1: key rows duplicated in pairs (1 = 0, 3 = 2, ...): exact ties */
    build("n=1 B=1 L=16 d=1 sel=indexer k=5 act=identity Hi=2 di=4 fmt=bf16 ties=1", 5, &rc, &b);
    const nsx_problem *p = &b.p;
    int32_t *sel = malloc(nsx_sel_size(p) * sizeof *sel);
    ck_assert_ptr_nonnull(sel);
    memcpy(sel, b.sel_out, nsx_sel_size(p) * sizeof *sel);
    int swapped = 0;
    for (int i = 0; i < p->L; i++) {
        int32_t *row = sel + nsx_sel_at(p, 0, i, 0);
        for (int r = 0; r < p->sel.k && !swapped; r++) {
            int j = row[r], twin = j ^ 1, listed = 0;
            if (j < 0 || twin > i)
                continue;
            for (int x = 0; x < p->sel.k; x++)
                listed |= row[x] == twin;
            if (!listed) {
                row[r] = twin; /* the tied twin instead */
                swapped++;
            }
        }
    }
    ck_assert_int_gt(swapped, 0);
    /* the recipe key iblocks scales blocks of qI and kI by powers of two; it needs the indexer */
    nsx_recipe r2;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_recipe_parse("n=1 L=4 sel=scores k=2 iblocks=4", &r2, &err), NSX_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "iblocks needs sel=indexer"));
    /* the same draw without iblocks, then each block of kI times one power of two, not all alike */
    nsx_instance b2 = {0}, b3 = {0};
    build("n=1 L=6 d=1 sel=indexer k=2 Hi=1 di=8 dist=uniform iblocks=4", 5, &r2, &b2);
    build("n=1 L=6 d=1 sel=indexer k=2 Hi=1 di=8 dist=uniform", 5, &r2, &b3);
    int differ = 0;
    for (int j = 0; j < 6; j++)
        for (int blk = 0; blk < 2; blk++) {
            const double *x = b2.idx_k + j * 8 + 4 * blk, *y = b3.idx_k + j * 8 + 4 * blk;
            double f = x[0] / y[0];
            int e;
            ck_assert(frexp(f, &e) == 0.5 && e >= -11 && e <= 11);
            for (int l = 1; l < 4; l++)
                ck_assert(x[l] == y[l] * f);
            differ |= f != b2.idx_k[0] / b3.idx_k[0];
        }
    ck_assert(differ);
    nsx_instance_free(&b2);
    nsx_instance_free(&b3);
    nsx_check_report rep;
    ck_assert(judge(&b, NULL, sel, "f32", &rep));
    ck_assert_uint_eq(rep.sel_differ, (size_t)swapped);
    free(sel);
    nsx_instance_free(&b);
}
END_TEST

/* fuzz --indexer in process on a library (NULL: the SIMD kernel) for
   problems start .. start + count - 1 of seed 1; its failures. */
static int fuzz_lib(const char *lib, uint64_t start, uint64_t count)
{
    char path[512];
    const char *dir = getenv("NSX_TEST_KERNELS");
    if (lib)
        snprintf(path, sizeof path, "%s/%s", dir ? dir : "build/tests/kernels", lib);
    nsx_kernel k;
    nsx_err err = {0};
    ck_assert_msg(nsx_kernel_open(&k, lib ? path : NULL, -1, 1, &err) == 0, "%s", err.msg);
    nsx_fuzz_opts o;
    nsx_fuzz_opts_default(&o);
    o.seconds = 0;
    o.start = start;
    o.count = count;
    o.progress = 0;
    nsx_fuzz_summary s;
    ck_assert_msg(nsx_fuzz_indexer_run(&k, &o, &s, &err) == 0, "%s", err.msg);
    if (!s.nfail)
        ck_assert_uint_eq(s.mpfr + s.skipped, count);
    nsx_kernel_close(&k);
    return s.nfail;
}

START_TEST(fuzz_indexer_simd_and_fp8_kernels)
{
    ck_assert_int_eq(fuzz_lib(NULL, 0, 25), 0);
    ck_assert_int_eq(fuzz_lib("fp8_honest.so", 0, 25), 0);
    ck_assert_int_eq(fuzz_lib("fp8_pow2.so", 0, 15), 0);
    ck_assert_int_eq(fuzz_lib("fp8_e5m2.so", 0, 15), 0);
    /* a scale per tensor: problem 1 of seed 1 already (iblocks: blocks 2^-12 .. 2^10) */
    ck_assert_int_eq(fuzz_lib("fp8_tensor.so", 0, 2), 1);
    /* blocks of 32 declared as 16: problem 9 of seed 1 */
    ck_assert_int_eq(fuzz_lib("fp8_block2x.so", 9, 1), 1);
}
END_TEST

/* `check` on an indexer candidate file: the reference's outputs pass, a
   planted future key fails, and the JSON says it is an indexer's. */
START_TEST(check_cli_indexer_candidates)
{
    char vec[600], good[600], bad[600];
    const char *t = test_tmpdir();
    snprintf(vec, sizeof vec, "%s/idxj_vec.safetensors", t);
    snprintf(good, sizeof good, "%s/idxj_good.safetensors", t);
    snprintf(bad, sizeof bad, "%s/idxj_bad.safetensors", t);
    const char *recipe = "n=1 B=1 L=9 d=2 sel=indexer k=3 act=softmax Hi=2 di=3 fmt=bf16";
    cli_result r;
    const char *gen[] = {"gen", "--recipe", recipe, "--out", vec, NULL};
    ck_assert_int_eq(cli_run(&r, gen), 0);
    ck_assert_msg(r.status == 0, "%s", r.err);
    cli_result_free(&r);
    nsx_case vc;
    nsx_err err = {0};
    ck_assert_msg(nsx_case_read(vec, &vc, &err) == 0, "%s", err.msg);
    const nsx_problem *p = &vc.p;
    const int64_t sshape[3] = {p->B, p->L, p->L}, kshape[3] = {p->B, p->L, p->sel.k};
    int32_t *sel = malloc(nsx_sel_size(p) * sizeof *sel);
    ck_assert_ptr_nonnull(sel);
    memcpy(sel, vc.expected.sel, nsx_sel_size(p) * sizeof *sel);
    for (int pass = 0; pass < 2; pass++) {
        nsx_st st = {0};
        ck_assert(nsx_st_add_f64(&st, "sel_scores", NSX_DTYPE_F64, 3, sshape, vc.expected.sel_scores, &err) == 0);
        ck_assert(nsx_st_add_i32(&st, "sel", 3, kshape, sel, &err) == 0);
        ck_assert(nsx_st_set_meta(&st, "nsimplex.model", "f32", &err) == 0);
        ck_assert_msg(nsx_st_write(pass ? bad : good, &st, &err) == 0, "%s", err.msg);
        nsx_st_free(&st);
        sel[nsx_sel_at(p, 0, 6, 1)] = 8; /* a future key in row 6 */
    }
    const char *ok[] = {"check", vec, good, NULL};
    ck_assert_int_eq(cli_run(&r, ok), 0);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "indexer"));
    cli_result_free(&r);
    const char *no[] = {"check", vec, bad, "--json", NULL};
    ck_assert_int_eq(cli_run(&r, no), 0);
    ck_assert_msg(r.status == 1, "%s%s", r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "\"indexer\":true"));
    ck_assert_ptr_nonnull(strstr(r.out, "not a candidate key"));
    cli_result_free(&r);
    free(sel);
    nsx_case_free(&vc);
}
END_TEST

/* fuzz --indexer through the program: the per-tensor FP8 kernel fails (exit 1), the failure is
   saved, and `check` replays it (exit 1); the honest one passes (exit 0); a kernel without an
   indexer is refused (exit 2). */
START_TEST(fuzz_cli_saves_a_failure_check_replays)
{
    char out[600], lib[600], vec[700], cand[700];
    const char *dir = getenv("NSX_TEST_KERNELS");
    snprintf(out, sizeof out, "%s/idxj_fuzz_out", test_tmpdir());
    snprintf(lib, sizeof lib, "%s/fp8_tensor.so", dir ? dir : "build/tests/kernels");
    cli_result r;
    const char *fz[] = {"fuzz", "--indexer", "--kernel", lib, "--count", "3", "--progress", "0", "--out", out, NULL};
    ck_assert_int_eq(cli_run(&r, fz), 0);
    ck_assert_msg(r.status == 1, "%s%s", r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "FAIL scores"));
    ck_assert_ptr_nonnull(strstr(r.out, "reproduce: nsimplex fuzz --indexer --seed 1 --start 1 --count 1"));
    cli_result_free(&r);
    snprintf(vec, sizeof vec, "%s/fail-1-1.safetensors", out);
    snprintf(cand, sizeof cand, "%s/fail-1-1.candidate.safetensors", out);
    const char *ck[] = {"check", vec, cand, NULL};
    ck_assert_int_eq(cli_run(&r, ck), 0);
    ck_assert_msg(r.status == 1, "%s%s", r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "idx=e4m3,idxblk=16")); /* the kernel's model, from the candidate */
    cli_result_free(&r);
    snprintf(lib, sizeof lib, "%s/fp8_honest.so", dir ? dir : "build/tests/kernels");
    const char *ok[] = {"fuzz", "--indexer", "--kernel", lib, "--count", "4", "--progress", "0", "--out", out, NULL};
    ck_assert_int_eq(cli_run(&r, ok), 0);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    cli_result_free(&r);
    snprintf(lib, sizeof lib, "%s/segv.so", dir ? dir : "build/tests/kernels");
    const char *none[] = {"fuzz", "--indexer", "--kernel", lib, "--count", "1", NULL};
    ck_assert_int_eq(cli_run(&r, none), 0);
    ck_assert_msg(r.status == 2 && strstr(r.err, "declares no indexer"), "%d %s", r.status, r.err);
    cli_result_free(&r);
}
END_TEST

/* Runs the SIMD indexer on problem `start` of fuzz seed `seed` alone and asserts a pass with a
   finite worst ratio of at most 1. */
static void replay_passes(const char *seed, const char *start, const char *name)
{
    const char *so = getenv("NSX_SIMD_SO");
    char lib[600], out[600];
    snprintf(lib, sizeof lib, "%s", so ? so : "build/libnsimplex_simd.so");
    snprintf(out, sizeof out, "%s/%s", test_tmpdir(), name);
    cli_result r;
    const char *fz[] = {"fuzz", "--indexer", "--kernel", lib, "--seed", seed, "--start", start, "--count", "1",
                        "--progress", "0", "--out", out, NULL};
    ck_assert_int_eq(cli_run(&r, fz), 0);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    const char *w = strstr(r.out, "worst score error/bound ");
    ck_assert_msg(w != NULL, "%s%s", r.out, r.err);
    double ratio = strtod(w + strlen("worst score error/bound "), NULL);
    ck_assert_msg(isfinite(ratio) && ratio <= 1, "%s", r.out);
    cli_result_free(&r);
}

/* Seed 1's problem 4618 (n=1 L=20 act=softmax dist=heavy iblocks=7): a softmax head whose score
   errors exceed exp's range, where a binary64 weight underflows to 0.  Its tolerance was
   0 * inf = NaN, and a NaN bound let every score pass with a ratio of inf; the tolerance is now
   infinite there (no claim) and a NaN bound fails. */
START_TEST(softmax_underflow_gives_no_nan_bound)
{
    replay_passes("1", "4618", "idxj_nan_out");
}
END_TEST

/* Seed 2's problem 1949 (n=1 L=32 act=softmax dist=heavy, zero-weights): the same infinite
   tolerance in a head whose weight is 0, where 0 * inf made the row's bound NaN and the
   unmutated SIMD kernel failed (`make mutants`, 2026-12-07).  A zero-weight head adds nothing. */
START_TEST(zero_weight_head_gives_no_nan_bound)
{
    replay_passes("2", "1949", "idxj_zero_w_out");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idxjudge");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fp8_model_formats_and_keys);
    tcase_add_test(tc, reference_passes_planted_faults_fail);
    tcase_add_test(tc, a_tie_broken_either_way_passes);
    tcase_add_test(tc, fuzz_indexer_simd_and_fp8_kernels);
    tcase_add_test(tc, check_cli_indexer_candidates);
    tcase_add_test(tc, fuzz_cli_saves_a_failure_check_replays);
    tcase_add_test(tc, softmax_underflow_gives_no_nan_bound);
    tcase_add_test(tc, zero_weight_head_gives_no_nan_bound);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
