/*
 * Fuzzing the backward pass (fuzz/bwd.c, docs/FUZZING.md section 11): the
 * binary64 loop reference of the gradients stays within its allowance of
 * the MPFR reference; `fuzz --bwd` passes the honest float32 test kernel
 * (tests/kernels/bwdk.c) and catches each planted backward bug, shrinks it
 * and saves it as a Backward vector (do and the expected gradients, the
 * kernel's gradients beside it) that replays.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "env.h"
#include "fuzz/dref.h"
#include "fuzz/fuzz.h"
#include "io/casefile.h"
#include "io/safetensors.h"

/* The test kernel bwdk_NAME.so (tests/kernels/bwdk.c) into path, as
   test_kernel_path. */
static int bwdk_path(char *path, size_t len, const char *name)
{
    char lib[64];
    snprintf(lib, sizeof lib, "bwdk_%s", name);
    return test_kernel_path(path, len, lib);
}

/* ---- the loop reference against MPFR ---------------------------------------- */

static const char *const recipes[] = {
    "n=1 B=2 L=9 H=2 Hkv=1 d=5 dv=3 bwd=1",
    "n=2 L=7 H=2 Hkv=2 d=4 dv=4 kb=0.5,-1 vb=1,2 out=-2 bwd=1",
    "n=2 L=6 d=3 dv=2 reduce=mean w=2,3 fmt=bf16 dist=heavy bwd=1",
    "n=3 L=5 d=3 dv=2 reduce=sum causal=0 distinct=1 bwd=1",
    "n=2 L=8 d=4 dv=3 sel=indices k=3 dims=1 invalid=1 bwd=1",
    "n=4 L=4 d=2 dv=2 dist=onehot scale=2 bwd=1",
};

START_TEST(test_dref_bwd_within_allowance)
{
    size_t judged = 0;
    double worst = 0;
    for (size_t r = 0; r < sizeof recipes / sizeof recipes[0]; r++) {
        nsx_fz_draw d = {.seed = 7 + r};
        snprintf(d.recipe, sizeof d.recipe, "%s", recipes[r]);
        nsx_fz_case c;
        nsx_err err = {0};
        ck_assert_msg(nsx_fz_case_build(&d, &c, &err) == 0, "%s: %s", recipes[r], err.msg);
        ck_assert(c.bwd && c.b.dout);
        nsx_instance *b = &c.b;
        const nsx_problem *p = &b->p;
        ck_assert_msg(nsx_build_expect(b, &c.r, NULL, NULL, &err) == 0, "%s", err.msg);
        nsx_dref_grads g = {0};
        const size_t nq = nsx_q_size(p), nk = nsx_k_size(p), nv = nsx_v_size(p);
        g.dq = malloc(nq * sizeof(double)), g.uq = malloc(nq * sizeof(double)), g.mq = malloc(nq * sizeof(double));
        for (int m = 0; m < p->n; m++) {
            g.dk[m] = malloc(nk * sizeof(double)), g.uk[m] = malloc(nk * sizeof(double));
            g.mk[m] = malloc(nk * sizeof(double));
            g.dv[m] = malloc(nv * sizeof(double)), g.uv[m] = malloc(nv * sizeof(double));
            g.mv[m] = malloc(nv * sizeof(double));
        }
        const int32_t *sel = p->sel.source == NSX_SEL_INDICES ? b->sel : b->sel_out;
        ck_assert_msg(nsx_dref_backward(p, &b->in, sel, &g, &err) == 0, "%s: %s", recipes[r], err.msg);
        for (int t = 0; t < 1 + 2 * p->n; t++) {
            const double *x = t == 0 ? g.dq : t % 2 ? g.dk[(t - 1) / 2] : g.dv[(t - 1) / 2];
            const double *u = t == 0 ? g.uq : t % 2 ? g.uk[(t - 1) / 2] : g.uv[(t - 1) / 2];
            const double *mg = t == 0 ? g.mq : t % 2 ? g.mk[(t - 1) / 2] : g.mv[(t - 1) / 2];
            const double *ex = t == 0 ? b->dq : t % 2 ? b->dk[(t - 1) / 2] : b->dv[(t - 1) / 2];
            const size_t count = t == 0 ? nq : t % 2 ? nk : nv;
            for (size_t e = 0; e < count; e++) {
                ck_assert_msg(fabs(x[e] - ex[e]) <= u[e], "%s: tensor %d [%zu] = %.17g, exact %.17g, allowance %.3g",
                              recipes[r], t, e, x[e], ex[e], u[e]);
                /* the magnitude bounds the value */
                ck_assert_msg(fabs(ex[e]) <= mg[e] * (1 + 1e-12) + 1e-300, "%s: |%.17g| > magnitude %.17g",
                              recipes[r], ex[e], mg[e]);
                if (mg[e] > 0)
                    worst = fmax(worst, u[e] / mg[e]);
                judged++;
            }
        }
        free(g.dq), free(g.uq), free(g.mq);
        for (int m = 0; m < p->n; m++)
            free(g.dk[m]), free(g.uk[m]), free(g.mk[m]), free(g.dv[m]), free(g.uv[m]), free(g.mv[m]);
        nsx_fz_case_free(&c);
    }
    ck_assert_int_gt(judged, 500);
    /* the allowance is far below any float32 kernel's bound */
    ck_assert_msg(worst > 0 && worst < 1e-9, "allowance/magnitude %g", worst);
}
END_TEST

/* ---- runs ----------------------------------------------------------------------------- */

static void run_kernel(const char *name, uint64_t seed, int count, const char *out, nsx_fuzz_summary *s)
{
    char path[512];
    nsx_kernel k;
    nsx_err err = {0};
    bwdk_path(path, sizeof path, name);
    ck_assert_msg(nsx_kernel_open(&k, path, -1, 1, &err) == 0, "%s", err.msg);
    ck_assert(k.backward != NULL && nsx_kernel_backward_order(k.info) > 0);
    nsx_kernel_iso iso = {.timeout = 20};
    k.iso = &iso;
    nsx_fuzz_opts o;
    nsx_fuzz_opts_default(&o);
    o.seed = seed;
    o.count = (uint64_t)count;
    o.seconds = 0;
    o.shrink_seconds = 5;
    o.out_dir = out;
    o.bwd = NSX_FZ_BWD_ONLY;
    ck_assert_msg(nsx_fuzz_run(&k, &o, s, &err) == 0, "%s", err.msg);
    nsx_kernel_close(&k);
}

START_TEST(test_honest_passes)
{
    char path[512];
    if (!bwdk_path(path, sizeof path, "honest"))
        return;
    nsx_fuzz_summary s;
    run_kernel("honest", 3, 40, NULL, &s);
    ck_assert_msg(s.nfail == 0, "%s", s.fail[0].note);
    ck_assert_uint_ge(s.bwd, 30);
}
END_TEST

/* Each planted bug: caught, shrunk, saved as a Backward vector with do and
   the expected gradients, and the kernel's gradients beside it; the
   reproduce line fails again. */
START_TEST(test_planted_caught_and_saved)
{
    static const char *const planted[] = {"scale2", "nodelta", "kmask"};
    const char *name = planted[_i];
    char path[512], dir[512];
    if (!bwdk_path(path, sizeof path, name))
        return;
    snprintf(dir, sizeof dir, "%s/fuzz-bwd-%s", test_tmpdir(), name);
    mkdir(dir, 0777);
    nsx_fuzz_summary s;
    run_kernel(name, 1, 60, dir, &s);
    ck_assert_int_eq(s.nfail, 1);
    const nsx_fuzz_failure *f = &s.fail[0];
    ck_assert_msg(f->kind == NSX_FZ_GRAD || f->kind == NSX_FZ_GRAD_PROBE, "%s: kind %s: %s", name,
                  nsx_fz_kind_name(f->kind), f->note);
    ck_assert_msg(f->path[0], "%s: not saved: %s", name, f->note);

    nsx_case v;
    nsx_err err = {0};
    ck_assert_msg(nsx_case_read(f->path, &v, &err) == 0, "%s", err.msg);
    int backward = 0;
    for (int x = 0; x < v.info.nflags; x++)
        backward |= strcmp(v.info.flags[x], "Backward") == 0;
    ck_assert_msg(backward, "%s: no Backward flag", f->path);
    ck_assert(v.in.dout && v.expected.dq && v.expected.dk[0] && v.expected.dv[0]);
    nsx_case_free(&v);
    char cand[600];
    snprintf(cand, sizeof cand, "%.*s.candidate.safetensors", (int)(strlen(f->path) - strlen(".safetensors")), f->path);
    nsx_st st = {0};
    ck_assert_msg(nsx_st_read(cand, &st, &err) == 0, "%s", err.msg);
    ck_assert(nsx_st_get(&st, "dq") != NULL && nsx_st_get(&st, "dk1") != NULL && nsx_st_get(&st, "dv1") != NULL);
    nsx_st_free(&st);

    /* `nsimplex check` fails the saved pair on the gradients: exit 1 */
    const char *chk[] = {"check", f->path, cand, NULL};
    cli_result r0;
    ck_assert_int_eq(cli_run(&r0, chk), 0);
    ck_assert_msg(f->kind != NSX_FZ_GRAD || (r0.status == 1 && strstr(r0.out, "gradients")), "check exit %d: %s%s",
                  r0.status, r0.out, r0.err);
    cli_result_free(&r0);

    /* the reproduce line: the same problem alone fails again */
    char seed[32], start[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)1);
    snprintf(start, sizeof start, "%llu", (unsigned long long)f->index);
    const char *args[] = {"fuzz", "--seed", seed, "--start", start, "--count", "1", "--kernel", path, "--bwd",
                          "--shrink-seconds", "0", "--out", dir, NULL};
    cli_result r;
    ck_assert_int_eq(cli_run(&r, args), 0);
    ck_assert_msg(r.status == 1, "exit %d: %s%s", r.status, r.out, r.err);
    cli_result_free(&r);
}
END_TEST

/* A leak far inside the bound (dk of later keys depends on q at position
   0 by 2^-22): only the causal probe sees it. */
START_TEST(test_causal_probe_sees_a_small_leak)
{
    char path[512];
    if (!bwdk_path(path, sizeof path, "qleak"))
        return;
    nsx_fuzz_summary s;
    run_kernel("qleak", 1, 200, NULL, &s);
    ck_assert_int_eq(s.nfail, 1);
    ck_assert_msg(s.fail[0].kind == NSX_FZ_GRAD_PROBE && strstr(s.fail[0].note, "causal probe"), "%s: %s",
                  nsx_fz_kind_name(s.fail[0].kind), s.fail[0].note);
}
END_TEST

START_TEST(test_bwd_needs_a_backward)
{
    const char *args[] = {"fuzz", "--bwd", "--count", "1", "--kernel", NULL, NULL};
    char path[512];
    if (!test_kernel_path(path, sizeof path, "segv")) /* a kernel without one */
        return;
    args[5] = path;
    cli_result r;
    ck_assert_int_eq(cli_run(&r, args), 0);
    ck_assert_msg(r.status == 2 && strstr(r.err, "no backward"), "exit %d: %s", r.status, r.err);
    ck_assert_int_eq(cli_count_lines(r.err), 1);
    cli_result_free(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fuzz_bwd");
    TCase *tc = tcase_create("bwd");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_dref_bwd_within_allowance);
    tcase_add_test(tc, test_honest_passes);
    tcase_add_loop_test(tc, test_planted_caught_and_saved, 0, 3);
    tcase_add_test(tc, test_causal_probe_sees_a_small_leak);
    tcase_add_test(tc, test_bwd_needs_a_backward);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
