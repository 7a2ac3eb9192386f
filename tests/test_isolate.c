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
#include <unistd.h>

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

/* ---- the fork server ------------------------------------------------------- */

/* The SIMD kernel, but for inputs whose q[0] is a magic value: a fault of
   the kind the value names (q[0] = -77 .. -81). */
enum { MOOD_SEGV = -77, MOOD_EXIT = -78, MOOD_PAST = -79, MOOD_BEFORE = -80, MOOD_HANG = -81 };
static nsx_kernel mood_simd;

static int moody_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    const size_t n = (size_t)p->B * p->L * p->H * p->dv;
    switch ((int)io->q[0]) {
    case MOOD_SEGV:
        raise(SIGSEGV);
        break;
    case MOOD_EXIT:
        exit(3);
    case MOOD_PAST:
        io->o[n] = 1;
        break;
    case MOOD_BEFORE:
        io->o[-1] = 1;
        break;
    case MOOD_HANG:
        for (;;)
            pause();
    }
    return nsx_simd_forward_isa(p, io, mood_simd.threads, mood_simd.isa);
}

/* Problems judged one after the other by one fork server: a fault ends the
   runner that had the call, and only that call fails; the next problems
   pass with the in-process outputs bit for bit, in the next runner.  The
   runner counts: the same process for every call until a fault, one more
   after each (a write before an output too, though that runner returned). */
START_TEST(test_server_restarts)
{
    nsx_err err = {0};
    ck_assert_msg(nsx_kernel_open(&mood_simd, NULL, -1, 1, &err) == 0, "%s", err.msg);
    nsx_model m;
    ck_assert_int_eq(nsx_model_from_kernel(mood_simd.info, &m, &err), 0);
    nsx_kernel k = mood_simd;
    k.forward = moody_forward;
    nsx_kernel_iso iso = {.timeout = 30};
    k.iso = &iso;
    ck_assert_msg(nsx_kernel_iso_start(&iso, &k, &err) == 0, "%s", err.msg);
    const struct {
        int mood;
        unsigned kind;
        const char *note;
    } seq[] = {
        {0, 0, NULL},
        {MOOD_SEGV, NSX_FZ_SIGNAL, "killed by SIGSEGV"},
        {0, 0, NULL},
        {0, 0, NULL},
        {MOOD_EXIT, NSX_FZ_EXIT, "exited inside the call (exit status 3)"},
        {0, 0, NULL},
        {MOOD_PAST, NSX_FZ_OVERFLOW, "past the end of o"},
        {0, 0, NULL},
        {MOOD_BEFORE, NSX_FZ_OVERFLOW, "before the start of o"},
        {0, 0, NULL},
        {MOOD_HANG, NSX_FZ_TIMEOUT, "timeout"},
        {0, 0, NULL},
    };
    long runner = 1;
    uint64_t idx = 0;
    for (size_t t = 0; t < sizeof seq / sizeof seq[0]; idx++) {
        nsx_fz_draw d;
        nsx_fz_case c;
        nsx_fz_draw_steered(nsx_fz_problem_seed(5, idx), mood_simd.info, &m, &small_shapes, &d);
        if (nsx_fz_case_build(&d, &c, &err))
            continue;
        if (seq[t].mood)
            c.b.q[0] = seq[t].mood;
        iso.timeout = seq[t].mood == MOOD_HANG ? 0.3 : 30;
        nsx_fz_verdict v, want;
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_LOOP, &v, &err), 0);
        ck_assert_int_eq(iso.runner, runner);
        if (seq[t].mood) {
            ck_assert_msg(v.status == NSX_FZ_FAIL && nsx_fz_primary(v.kinds) == seq[t].kind &&
                              strstr(v.note, seq[t].note), "call %zu: %s", t, v.note);
            runner++;
        } else {
            nsx_kernel inproc = mood_simd;
            ck_assert_int_eq(nsx_fz_judge(&inproc, &m, &c, NSX_FZ_REF_LOOP, &want, &err), 0);
            ck_assert_msg(v.status == want.status && v.status != NSX_FZ_FAIL, "call %zu: %s", t, v.note);
            if (v.o && want.o)
                ck_assert(memcmp(v.o, want.o, nsx_o_size(&c.b.p) * sizeof *v.o) == 0);
            nsx_fz_verdict_free(&want);
        }
        nsx_fz_verdict_free(&v);
        nsx_fz_case_free(&c);
        t++;
    }
    nsx_kernel_iso_stop(&iso);
    ck_assert_ptr_null(iso.srv);
    nsx_kernel_close(&mood_simd);
}
END_TEST

/* A kernel that faults on some problems (a function of their inputs):
   judged by two workers, each with a fork server of its own, the run finds
   the same failures, of the same kinds, at the same problems, with the same
   summary as one problem at a time. */
static int spotty_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    uint32_t u;
    memcpy(&u, &io->q[0], sizeof u);
    switch (u % 13) {
    case 0:
        raise(SIGSEGV);
        break;
    case 1:
        exit(1);
    case 2:
        io->o[-1] = 1;
        break;
    }
    return nsx_simd_forward_isa(p, io, mood_simd.threads, mood_simd.isa);
}

START_TEST(test_faults_jobs_same)
{
    nsx_err err = {0};
    ck_assert_msg(nsx_kernel_open(&mood_simd, NULL, -1, 1, &err) == 0, "%s", err.msg);
    nsx_kernel k = mood_simd;
    k.forward = spotty_forward;
    nsx_kernel_iso iso = {.timeout = 30};
    k.iso = &iso;
    nsx_fuzz_opts o;
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 11;
    o.count = 60;
    o.seconds = 0;
    o.progress = 0;
    o.shrink_seconds = 0;
    o.max_failures = 6;
    nsx_fuzz_summary a, b;
    o.jobs = 1;
    ck_assert_msg(nsx_fuzz_run(&k, &o, &a, &err) == 0, "%s", err.msg);
    o.jobs = 2;
    ck_assert_msg(nsx_fuzz_run(&k, &o, &b, &err) == 0, "%s", err.msg);
    ck_assert_ptr_null(iso.srv);
    ck_assert_int_eq(a.nfail, 6);
    ck_assert_int_eq(b.jobs, 2);
    unsigned kinds = 0;
    ck_assert_int_eq(a.nfail, b.nfail);
    ck_assert_uint_eq(a.problems, b.problems);
    ck_assert_uint_eq(a.skipped, b.skipped);
    ck_assert_uint_eq(a.tuples, b.tuples);
    ck_assert(a.worst_o == b.worst_o && a.worst_lse == b.worst_lse);
    for (int x = 0; x < a.nfail; x++) {
        ck_assert_uint_eq(a.fail[x].index, b.fail[x].index);
        ck_assert_uint_eq(a.fail[x].kinds, b.fail[x].kinds);
        ck_assert_str_eq(a.fail[x].note, b.fail[x].note);
        kinds |= a.fail[x].kind;
    }
    /* the three faults all seen */
    ck_assert_uint_eq(kinds, NSX_FZ_SIGNAL | NSX_FZ_EXIT | NSX_FZ_OVERFLOW);
    nsx_kernel_close(&mood_simd);
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
    tcase_add_test(tc, test_server_restarts);
    tcase_add_test(tc, test_faults_jobs_same);
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
