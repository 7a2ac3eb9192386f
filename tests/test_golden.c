/*
 * The SIMD kernel against the golden vectors: every vector of the default
 * suite, with each ISA path this CPU has forced in turn, through the kernel
 * ABI and judged by the oracle under the precision model the kernel declares
 * (float32).  Vectors a float32 kernel cannot take (inputs beyond float32's
 * range) are refused as not applicable, never judged wrong; the test checks
 * that this is the only reason a vector is skipped.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/casefile.h"
#include "runner/runner.h"
#include "oracle/check.h"
#include "simd/simd.h"
#include "vectors/suites.h"

/* Any finite input beyond float32's range. */
static int beyond_f32(const double *x, size_t count)
{
    for (size_t t = 0; t < count; t++)
        if (isfinite(x[t]) && fabs(x[t]) > FLT_MAX)
            return 1;
    return 0;
}

static int case_beyond_f32(const nsx_case *c)
{
    const nsx_problem *p = &c->p;
    int r = beyond_f32(c->in.q, nsx_q_size(p));
    for (int m = 0; m < p->n; m++)
        r |= beyond_f32(c->in.k[m], nsx_k_size(p)) | beyond_f32(c->in.v[m], nsx_v_size(p));
    return r;
}

START_TEST(simd_passes_every_golden_vector)
{
    const int isa = _i;
    if (!nsx_simd_isa_supported(isa))
        return; /* this CPU cannot run the path: nothing to force */
    const nsx_suite *s = nsx_suite_find("default");
    nsx_kernel k;
    nsx_err err = {0};
    ck_assert_msg(nsx_kernel_open(&k, NULL, isa, 0, &err) == 0, "%s", err.msg);
    nsx_model m;
    ck_assert_int_eq(nsx_model_from_kernel(k.info, &m, &err), 0);
    int judged = 0, skipped = 0;
    for (size_t ci = 0; ci < s->count; ci++) {
        char path[512];
        nsx_case c;
        snprintf(path, sizeof path, "vectors/default/%s.safetensors", s->cases[ci].name);
        ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
        const nsx_problem *p = &c.p;
        int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
        double *o = calloc(nsx_o_size(p), sizeof *o), *lse = calloc(nsx_lse_size(p), sizeof *lse);
        int has_lse;
        ck_assert_msg(nsx_kernel_run(&k, p, &c.in, computed ? c.expected.sel : c.in.sel, o, lse, &has_lse, &err) == 0,
                      "%s, %s: %s", path, nsx_simd_isa_name(isa), err.msg);
        nsx_candidate cand = {.o = o, .lse = has_lse ? lse : NULL};
        nsx_check_report rep;
        int rc = nsx_check(p, &c.info, &c.in, &c.expected, &cand, &m, &rep, &err);
        if (rc == NSX_E_NOT_APPLICABLE && case_beyond_f32(&c)) {
            skipped++; /* not applicable to a float32 kernel */
        } else {
            ck_assert_msg(rc == 0, "%s, %s: %s", path, nsx_simd_isa_name(isa), err.msg);
            ck_assert_msg(rep.pass, "%s, %s: %s", path, nsx_simd_isa_name(isa),
                          rep.nnotes ? rep.notes[0] : "failed");
            judged++;
        }
        free(o);
        free(lse);
        nsx_case_free(&c);
    }
    nsx_kernel_close(&k);
    printf("golden vectors, %s: %d passed, %d not applicable (inputs beyond float32)\n", nsx_simd_isa_name(isa),
           judged, skipped);
    ck_assert_int_ge(judged, (int)s->count - 2);
}
END_TEST

/* A kernel that declares fewer features refuses problems beyond them
   clearly, before being called. */
START_TEST(undeclared_features_are_refused)
{
    nsx_kernel_info info = *nsx_simd_info();
    info.features &= ~(unsigned)NSX_FEAT_WINDOWS;
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.window[1] = 3;
    char why[200];
    ck_assert_int_eq(nsx_kernel_supports(&info, &p, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "windows"));
    p.window[1] = 0;
    ck_assert_int_eq(nsx_kernel_supports(&info, &p, why, sizeof why), 0);
    info.max_order = 1;
    ck_assert_int_eq(nsx_kernel_supports(&info, &p, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "order"));
}
END_TEST

static Suite *golden_suite(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("simd");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, simd_passes_every_golden_vector, 0, NSX_ISA_COUNT);
    tcase_add_test(tc, undeclared_features_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(golden_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
