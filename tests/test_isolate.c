/*
 * Isolation of the kernel under test (runner/runner.h, docs/FUZZING.md):
 * a kernel's info is validated when it is loaded (exit 2 naming the library
 * and the field); an isolated call gives the in-process call's outputs bit
 * for bit; a kernel that segfaults, aborts, hangs, calls exit(0) or writes
 * outside its outputs ends as a saved failure of its own kind with exit 1;
 * a hanging kernel cannot hold a run past --seconds.  The misbehaving
 * kernels are tests/kernels/faulty.c, built by the Makefile into
 * $NSX_TEST_KERNELS.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_run.h"
#include "env.h"
#include "fuzz/fuzz.h"
#include "simd/simd.h"

/* The small shape class only: what these tests run must stay fast (the
   larger classes are tested by drawing, in test_fuzz.c's steering tests). */
static const nsx_fz_steer small_shapes = {.features = 0xffu, .shapes = NSX_FZ_SMALL};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- the kernel's info --------------------------------------------------- */

START_TEST(test_info_check)
{
    nsx_kernel_info good = *nsx_simd_info();
    nsx_err err = {0};
    ck_assert_int_eq(nsx_kernel_info_check(&good, "lib.so", &err), 0);
    const struct {
        const char *field;
        nsx_kernel_info info;
    } bad[] = {
        {"ABI version 4", {.abi_version = 4}},
        {"name is NULL", {.abi_version = 1}},
        {"name has a non-printable", {.abi_version = 1, .name = "a\x1b[31m"}},
        {"name is empty", {.abi_version = 1, .name = ""}},
        {"max_order 0 is not in 1..8", {.abi_version = 1, .name = "k", .max_order = 0}},
        {"max_order -1 is not in 1..8", {.abi_version = 1, .name = "k", .max_order = -1}},
        {"max_order 9 is not in 1..8", {.abi_version = 1, .name = "k", .max_order = 9}},
        {"accum_format 7 is not a format", {.abi_version = 1, .name = "k", .max_order = 2, .accum_format = 7}},
        {"output_format -1 is not a format", {.abi_version = 1, .name = "k", .max_order = 2, .output_format = -1}},
        {"features has unknown bits 0x1000", {.abi_version = 1, .name = "k", .max_order = 2, .features = 0x1001}},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        err = (nsx_err){0};
        ck_assert_int_eq(nsx_kernel_info_check(&bad[t].info, "lib.so", &err), NSX_E_INPUT);
        ck_assert_msg(strncmp(err.msg, "lib.so: ", 8) == 0 && strstr(err.msg, bad[t].field), "%s: %s",
                      bad[t].field, err.msg);
    }
    err = (nsx_err){0};
    ck_assert_int_eq(nsx_kernel_info_check(NULL, "lib.so", &err), NSX_E_INPUT);
}
END_TEST

START_TEST(test_bad_order_exit_2)
{
    const char *names[] = {"order0", "orderm1"}, *what[] = {"max_order 0 ", "max_order -1 "};
    for (int t = 0; t < 2; t++) {
        char so[512], out[512];
        if (!test_kernel_path(so, sizeof so, names[t]))
            return;
        snprintf(out, sizeof out, "%s/iso-%s", test_tmpdir(), names[t]);
        const char *args[] = {"fuzz", "--kernel", so, "--count", "2", "--out", out, NULL};
        cli_result r;
        ck_assert_int_eq(cli_run(&r, args), 0);
        ck_assert_msg(r.status == 2, "%s: status %d\n%s%s", names[t], r.status, r.out, r.err);
        ck_assert_msg(strstr(r.err, so) && strstr(r.err, what[t]) && cli_count_lines(r.err) == 1, "%s", r.err);
        cli_result_free(&r);
    }
}
END_TEST

/* ---- isolated calls in process ------------------------------------------- */

static nsx_kernel_info crash_info;

static int crash_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    (void)p;
    (void)io;
    raise(SIGSEGV);
    return 0;
}

/* The SIMD kernel isolated gives its in-process outputs bit for bit, and
   passes; a forward that raises SIGSEGV fails as NSX_FZ_SIGNAL; a deadline
   already past stops the call without a verdict of failure. */
START_TEST(test_isolated_judge)
{
    nsx_kernel k;
    nsx_err err = {0};
    ck_assert_msg(nsx_kernel_open(&k, NULL, -1, 1, &err) == 0, "%s", err.msg);
    nsx_model m;
    ck_assert_int_eq(nsx_model_from_kernel(k.info, &m, &err), 0);
    nsx_kernel_iso iso = {.timeout = 30};
    int judged = 0;
    for (uint64_t idx = 0; idx < 6; idx++) {
        nsx_fz_draw d;
        nsx_fz_case c;
        nsx_fz_draw_steered(nsx_fz_problem_seed(3, idx), k.info, &m, &small_shapes, &d);
        if (nsx_fz_case_build(&d, &c, &err))
            continue;
        nsx_fz_verdict a, b;
        k.iso = NULL;
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_LOOP, &a, &err), 0);
        k.iso = &iso;
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_LOOP, &b, &err), 0);
        ck_assert_int_eq(a.status, b.status);
        ck_assert_int_eq(iso.fault, NSX_KFAULT_NONE);
        if (a.o && b.o) {
            ck_assert(memcmp(a.o, b.o, nsx_o_size(&c.b.p) * sizeof *a.o) == 0);
            judged++;
        }
        ck_assert_int_eq(a.has_lse, b.has_lse);
        if (a.has_lse && a.o && b.o)
            ck_assert(memcmp(a.lse, b.lse, nsx_lse_size(&c.b.p) * sizeof *a.lse) == 0);
        nsx_fz_verdict_free(&a);
        nsx_fz_verdict_free(&b);

        /* a deadline in the past: stopped, not failed */
        iso.deadline = nsx_kernel_clock() - 1;
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_LOOP, &b, &err), 0);
        ck_assert_int_eq(iso.fault, NSX_KFAULT_CUT);
        ck_assert_int_eq(b.status, NSX_FZ_SKIP);
        nsx_fz_verdict_free(&b);
        iso.deadline = 0;

        nsx_kernel crash = {0};
        crash_info = *k.info;
        crash.info = &crash_info;
        crash.forward = crash_forward;
        crash.iso = &iso;
        ck_assert_int_eq(nsx_fz_judge(&crash, &m, &c, NSX_FZ_REF_LOOP, &b, &err), 0);
        ck_assert_int_eq(b.status, NSX_FZ_FAIL);
        ck_assert_uint_eq(nsx_fz_primary(b.kinds), NSX_FZ_SIGNAL);
        ck_assert_msg(strstr(b.note, "SIGSEGV"), "%s", b.note);
        nsx_fz_verdict_free(&b);
        nsx_fz_case_free(&c);
    }
    ck_assert_int_gt(judged, 0);
    nsx_kernel_close(&k);
}
END_TEST

/* ---- misbehaving libraries through the command line ---------------------- */

START_TEST(test_faults_saved)
{
    const struct {
        const char *lib, *kind, *note;
    } f[] = {
        {"segv", "signal", "killed by SIGSEGV"},
        {"abort", "signal", "killed by SIGABRT"},
        {"hang", "timeout", "timeout: no result after"},
        {"exit", "exit", "exited inside the call"},
        {"overflow", "overflow", "past the end of o"},
        {"underflow", "overflow", "before the start of o"},
    };
    for (size_t t = 0; t < sizeof f / sizeof f[0]; t++) {
        char so[512], out[512], want[64], file[700];
        if (!test_kernel_path(so, sizeof so, f[t].lib))
            return;
        snprintf(out, sizeof out, "%s/iso-%s", test_tmpdir(), f[t].lib);
        snprintf(file, sizeof file, "%s/fail-7-0.safetensors", out);
        remove(file);
        const char *args[] = {"fuzz",  "--kernel",         so,  "--seed", "7",   "--count", "2",
                              "--out", out, "--call-timeout", "0.2", "--shrink-seconds", "1", NULL};
        cli_result r;
        ck_assert_int_eq(cli_run(&r, args), 0);
        snprintf(want, sizeof want, "FAIL %s\n", f[t].kind);
        ck_assert_msg(r.status == 1 && strstr(r.out, want) && strstr(r.out, f[t].note) &&
                          strstr(r.out, "seed 7, problem 0") && strstr(r.out, "saved: "),
                      "%s: status %d\n%s%s", f[t].lib, r.status, r.out, r.err);
        struct stat sb;
        ck_assert_msg(stat(file, &sb) == 0, "%s: %s not saved", f[t].lib, file);
        snprintf(file, sizeof file, "%s/fail-7-0.txt", out);
        ck_assert_msg(stat(file, &sb) == 0, "%s: %s not saved", f[t].lib, file);
        if (strcmp(f[t].lib, "hang") == 0)
            ck_assert_msg(strstr(r.out, "--count 1 --kernel ") && strstr(r.out, " --call-timeout 0.2\n"), "%s",
                          r.out);
        cli_result_free(&r);
    }
}
END_TEST

/* A hanging kernel under the default call timeout (10 s): --seconds 1 ends
   the run at about 1 s, the call stopped and not judged (exit 2). */
START_TEST(test_seconds_hold)
{
    char so[512], out[512];
    if (!test_kernel_path(so, sizeof so, "hang"))
        return;
    snprintf(out, sizeof out, "%s/iso-hang-seconds", test_tmpdir());
    const char *args[] = {"fuzz", "--kernel", so, "--seconds", "1", "--out", out, NULL};
    cli_result r;
    double t0 = now();
    ck_assert_int_eq(cli_run(&r, args), 0);
    double took = now() - t0;
    ck_assert_msg(r.status == 2 && strstr(r.out, "stopped at the end of the budget"), "status %d\n%s%s", r.status,
                  r.out, r.err);
    ck_assert_msg(took < 8, "took %.1f s", took);
    cli_result_free(&r);
}
END_TEST


/* ---- check --kernel ------------------------------------------------------ */

/* nsimplex check --kernel runs a library on golden vectors through the same
   isolated runner: the SIMD kernel passes, a kernel that crashes, hangs or
   writes zeros fails (exit 1, the fault named), an invalid info is exit 2. */
START_TEST(test_check_kernel)
{
    const char *simd = getenv("NSX_SIMD_SO");
    const char *v1 = "vectors/default/n2_l1.safetensors", *v2 = "vectors/default/n1_leaks.safetensors";
    cli_result r;
    if (simd) {
        const char *args[] = {"check", "--kernel", simd, v1, v2, NULL};
        ck_assert_int_eq(cli_run(&r, args), 0);
        ck_assert_msg(r.status == 0, "status %d\n%s%s", r.status, r.out, r.err);
        ck_assert_msg(strstr(r.out, "PASS vectors/default/n2_l1") && strstr(r.out, "PASS vectors/default/n1_leaks") &&
                          strstr(r.out, "2 passed, 0 failed"), "%s", r.out);
        cli_result_free(&r);
        const char *json[] = {"check", "--kernel", simd, "--json", v1, NULL};
        ck_assert_int_eq(cli_run(&r, json), 0);
        ck_assert_msg(r.status == 0 && cli_count_lines(r.out) == 1 && strstr(r.out, "\"pass\":true"), "%s", r.out);
        cli_result_free(&r);
        /* the default suite: every vector the kernel declares passes */
        const char *dflt[] = {"check", "--kernel", simd, NULL};
        ck_assert_int_eq(cli_run(&r, dflt), 0);
        ck_assert_msg(r.status == 0 && !strstr(r.out, "FAIL"), "status %d\n%s%s", r.status, r.out, r.err);
        cli_result_free(&r);
    }
    const struct {
        const char *name, *timeout;
        int status;
        const char *says;
    } bad[] = {
        {"segv", "10", 1, "SIGSEGV"}, {"abort", "10", 1, "SIGABRT"}, {"exit", "10", 1, "exit"},
        {"overflow", "10", 1, "past the end of o"}, {"hang", "0.5", 1, "timeout"}, {"zeros", "10", 1, "FAIL"},
        {"order0", "10", 2, "max_order 0 "},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        char so[512];
        if (!test_kernel_path(so, sizeof so, bad[t].name))
            return;
        const char *args[] = {"check", "--kernel", so, "--call-timeout", bad[t].timeout, v1, v2, NULL};
        ck_assert_int_eq(cli_run(&r, args), 0);
        ck_assert_msg(r.status == bad[t].status, "%s: status %d\n%s%s", bad[t].name, r.status, r.out, r.err);
        ck_assert_msg(strstr(r.out, bad[t].says) || strstr(r.err, bad[t].says), "%s:\n%s%s", bad[t].name, r.out,
                      r.err);
        if (bad[t].status == 2)
            ck_assert_msg(cli_count_lines(r.err) == 1, "%s", r.err);
        cli_result_free(&r);
    }
    /* a vector no kernel can be judged on: nothing judged is exit 2 */
    char so[512];
    if (test_kernel_path(so, sizeof so, "zeros")) {
        const char *none[] = {"check", "--kernel", so, "vectors/default/n1_dense.safetensors", NULL};
        ck_assert_int_eq(cli_run(&r, none), 0);
        ck_assert_msg(r.status == 2 && strstr(r.out, "SKIP"), "status %d\n%s%s", r.status, r.out, r.err);
        cli_result_free(&r);
    }
}
END_TEST

static Suite *isolate_suite(void)
{
    Suite *s = suite_create("isolate");
    TCase *tc = tcase_create("isolate");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_info_check);
    tcase_add_test(tc, test_check_kernel);
    tcase_add_test(tc, test_bad_order_exit_2);
    tcase_add_test(tc, test_isolated_judge);
    tcase_add_test(tc, test_faults_saved);
    tcase_add_test(tc, test_seconds_hold);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(isolate_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
