/*
 * The domain model (core/): the enums' names, the list grammar, pair flags
 * and an instance's tensor set.  The slice (core/slice.c) is tested against
 * ref/mask.c in test_ref.c; nsx_pairs_unjudged against SPEC 4.5 in
 * test_io.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/instance.h"
#include "nsimplex/names.h"
#include "nsimplex/pairs.h"

/* ---- names ---------------------------------------------------------------- */

static const struct {
    const char *(*name)(int);
    int first;
    const char *list; /* nsx_name_list */
} tables[] = {
    {nsx_format_name, 0, "f64, f32, f16 or bf16"},
    {nsx_reduce_name, 0, "product, sum or mean"},
    {nsx_source_name, 1, "indices, indexer or scores"},
    {nsx_act_name, 0, "relu, softmax or identity"},
    {nsx_pair_kind_name, 0, "leak, probe or gradleak"},
    {nsx_future_name, 0, "random, huge, nan or inf"},
};

START_TEST(names_round_trip)
{
    const char *(*name)(int) = tables[_i].name;
    const int first = tables[_i].first;
    int count = 0;
    for (int v = first; name(v); v++, count++)
        ck_assert_int_eq(nsx_name_lookup(name, first, name(v)), v);
    ck_assert_int_ge(count, 2);
    ck_assert_ptr_null(name(-1));
    ck_assert_ptr_null(name(first + count));
    ck_assert_int_eq(nsx_name_lookup(name, first, "nothing"), -1);
    ck_assert_int_eq(nsx_name_lookup(name, first, ""), -1);
    char buf[80];
    ck_assert_str_eq(nsx_name_list(name, first, buf, sizeof buf), tables[_i].list);
}
END_TEST

START_TEST(names_match_the_enums)
{
    ck_assert_str_eq(nsx_format_name(NSX_FORMAT_BF16), "bf16");
    ck_assert_int_eq(nsx_format_from_name("f16"), NSX_FORMAT_F16);
    ck_assert_int_eq(nsx_format_from_name("F16"), -1);
    ck_assert_str_eq(nsx_reduce_name(NSX_REDUCE_MEAN), "mean");
    ck_assert_ptr_null(nsx_source_name(NSX_SEL_NONE));
    ck_assert_str_eq(nsx_source_name(NSX_SEL_SCORES), "scores");
    ck_assert_str_eq(nsx_act_name(NSX_ACT_SOFTMAX), "softmax");
    ck_assert_str_eq(nsx_future_name(NSX_FUTURE_INF), "inf");
    ck_assert_str_eq(nsx_act_names[NSX_ACT_IDENTITY], "identity");
    ck_assert_str_eq(nsx_future_names[NSX_FUTURE_NAN], "nan");
}
END_TEST

/* ---- the list grammar -------------------------------------------------------- */

static const struct {
    const char *text;
    int count; /* -1: refused */
    int first, last;
} windows[] = {
    {"512,32", 2, 512, 32},
    {"0", 1, 0, 0},
    {"2147483647", 1, 2147483647, 2147483647},
    {"1,2,3,4,5,6,7,8", 8, 1, 8},
    {"1,2,3,4,5,6,7,8,9", -1, 0, 0}, /* more than NSX_MAX_ORDER */
    {"2147483648", -1, 0, 0},
    {"-1", -1, 0, 0},
    {"+1", -1, 0, 0},
    {" 1", -1, 0, 0},
    {"1 ", -1, 0, 0},
    {"", -1, 0, 0},
    {",", -1, 0, 0},
    {"1,", -1, 0, 0},
    {",1", -1, 0, 0},
    {"1,,2", -1, 0, 0},
    {"1;2", -1, 0, 0},
    {"0x10", -1, 0, 0},
    {"1.5", -1, 0, 0},
};

START_TEST(windows_grammar)
{
    int w[NSX_MAX_ORDER];
    int count = nsx_windows_parse(windows[_i].text, w);
    ck_assert_msg(count == windows[_i].count, "'%s': %d", windows[_i].text, count);
    if (count > 0) {
        ck_assert_int_eq(w[0], windows[_i].first);
        ck_assert_int_eq(w[count - 1], windows[_i].last);
    }
}
END_TEST

START_TEST(int_lists_with_bounds)
{
    int v[4];
    ck_assert_int_eq(nsx_int_list_parse("1,3", 1, 8, v, 4), 2);
    ck_assert_int_eq(v[1], 3);
    ck_assert_int_eq(nsx_int_list_parse("0", 1, 8, v, 4), -1);
    ck_assert_int_eq(nsx_int_list_parse("9", 1, 8, v, 4), -1);
    ck_assert_int_eq(nsx_int_list_parse("-3,2", -5, 5, v, 4), 2);
    ck_assert_int_eq(v[0], -3);
    ck_assert_int_eq(nsx_int_list_parse("1,2,3,4,5", 0, 9, v, 4), -1);
}
END_TEST

/* ---- pairs ---------------------------------------------------------------------- */

START_TEST(pair_flags)
{
    const char *f[2];
    nsx_pair probe = {NSX_PAIR_PROBE, 0, 1, 0, 0, 2, 1, 3};
    ck_assert_int_eq(nsx_pair_flags(&probe, 8, f), 1);
    ck_assert_str_eq(f[0], "MaskProbe");
    nsx_pair leak = {NSX_PAIR_LEAK, 0, 1, 3, NSX_FUTURE_NAN, 0, 0, 0};
    ck_assert(!nsx_pair_is_copy(&leak, 8));
    ck_assert_int_eq(nsx_pair_flags(&leak, 8, f), 2);
    ck_assert_str_eq(f[0], "LeakPair");
    ck_assert_str_eq(f[1], "FutureNaN");
    /* a random future over every position is a batch copy */
    nsx_pair copy = {NSX_PAIR_LEAK, 0, 1, 7, NSX_FUTURE_RANDOM, 0, 0, 0};
    ck_assert(nsx_pair_is_copy(&copy, 8));
    ck_assert_int_eq(nsx_pair_flags(&copy, 8, f), 1);
    ck_assert_str_eq(f[0], "BatchCopy");
    copy.future = NSX_FUTURE_HUGE;
    ck_assert(!nsx_pair_is_copy(&copy, 8));
}
END_TEST

START_TEST(pair_check_names_the_key)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.B = 2;
    p.L = 4;
    nsx_err err;
    nsx_pair q = {NSX_PAIR_PROBE, 0, 1, 0, 0, 3, 1, 2};
    ck_assert_int_eq(nsx_pair_check(&p, &q, 0, &err), 0);
    q.dim = 2; /* n = 1 */
    ck_assert_int_eq(nsx_pair_check(&p, &q, 5, &err), NSX_E_INPUT);
    ck_assert_str_eq(err.msg, "metadata: pairs[5].dim: 2 is outside 1..1");
    q = (nsx_pair){NSX_PAIR_LEAK, 1, 1, 0, 0, 0, 0, 0};
    ck_assert_int_eq(nsx_pair_check(&p, &q, 0, &err), NSX_E_INPUT);
    ck_assert_str_eq(err.msg, "metadata: pairs[0].b: is batch 1, the same as a");
}
END_TEST

/* ---- instances --------------------------------------------------------------------- */

START_TEST(instance_holds_what_the_problem_needs)
{
    static const int sources[] = {NSX_SEL_NONE, NSX_SEL_INDICES, NSX_SEL_INDEXER, NSX_SEL_SCORES};
    const int src = sources[_i];
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2, p.B = 2, p.L = 5, p.H = 4, p.Hkv = 2, p.d = 3, p.dv = 6;
    if (src != NSX_SEL_NONE)
        p.sel = (nsx_selection){src, 2, 1u, NSX_ACT_RELU, 1.0, 3, 7};
    nsx_instance t;
    ck_assert_int_eq(nsx_instance_alloc(&t, &p), 0);
    ck_assert(t.in.q == t.q && t.in.k[1] == t.k[1] && t.in.v[1] == t.v[1] && t.out.o == t.o && t.out.lse == t.lse);
    ck_assert(t.k[2] == NULL && t.v[2] == NULL);
    ck_assert(!t.sel == (src != NSX_SEL_INDICES) && t.in.sel == t.sel);
    ck_assert(!t.sel_out == (src != NSX_SEL_INDEXER && src != NSX_SEL_SCORES) && t.out.sel == t.sel_out);
    ck_assert(!t.idx_q == (src != NSX_SEL_INDEXER) && !t.sel_scores == (src != NSX_SEL_INDEXER));
    ck_assert(!t.idx_s == (src != NSX_SEL_SCORES));
    /* every element addressable and zero: the last one of each tensor */
    ck_assert(t.q[nsx_q_at(&p, 1, 4, 3, 2)] == 0 && t.v[1][nsx_v_at(&p, 1, 4, 1, 5)] == 0);
    ck_assert(t.o[nsx_o_at(&p, 1, 4, 3, 5)] == 0 && t.lse[nsx_lse_at(&p, 1, 3, 4)] == 0);
    if (t.idx_q)
        ck_assert(t.idx_q[nsx_idx_q_at(&p, 1, 4, 2, 6)] == 0 && t.idx_k[nsx_idx_k_at(&p, 1, 4, 6)] == 0 &&
                  t.idx_w[nsx_idx_w_at(&p, 1, 4, 2)] == 0);
    if (t.idx_s)
        ck_assert(t.idx_s[nsx_idx_s_at(&p, 1, 4, 4)] == 0);
    /* the input views: q, k1, v1, k2, v2, then the selection's */
    nsx_tensor_view v[NSX_MAX_INPUTS];
    int count = nsx_instance_inputs(&t, v);
    ck_assert_int_eq(count, 5 + (src == NSX_SEL_INDEXER ? 3 : src == NSX_SEL_SCORES ? 1 : 0));
    ck_assert(v[0].kind == NSX_T_Q && v[0].x == t.q && v[0].per_pos == 4 * 3);
    ck_assert(v[3].kind == NSX_T_K && v[3].m == 1 && v[3].x == t.k[1] && v[3].per_pos == 2 * 3);
    ck_assert(v[4].kind == NSX_T_V && v[4].x == t.v[1] && v[4].per_pos == 2 * 6);
    if (src == NSX_SEL_INDEXER)
        ck_assert(v[5].per_pos == 21 && v[6].per_pos == 7 && v[7].per_pos == 3);
    if (src == NSX_SEL_SCORES)
        ck_assert(v[5].kind == NSX_T_IDX_S && v[5].per_pos == 5);
    /* flags once each; pairs up to the limit */
    nsx_instance_add_flag(&t, "Windows");
    nsx_instance_add_flag(&t, "Windows");
    nsx_pair leak = {NSX_PAIR_LEAK, 0, 1, 2, NSX_FUTURE_INF, 0, 0, 0};
    ck_assert_int_eq(nsx_instance_add_pair(&t, &leak), 0);
    nsx_instance_flag_pair(&t, &leak);
    ck_assert_int_eq(t.npairs, 1);
    ck_assert_int_eq(t.nflags, 3);
    ck_assert_str_eq(t.flags[2], "FutureInf");
    for (int x = 1; x < NSX_INSTANCE_MAX_PAIRS; x++)
        ck_assert_int_eq(nsx_instance_add_pair(&t, &leak), 0);
    ck_assert_int_eq(nsx_instance_add_pair(&t, &leak), -1);
    nsx_instance_free(&t);
    ck_assert(t.q == NULL && t.npairs == 0);
    nsx_instance_free(&t); /* a freed instance frees again harmlessly */
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("names");
    tcase_add_loop_test(tc, names_round_trip, 0, sizeof tables / sizeof tables[0]);
    tcase_add_test(tc, names_match_the_enums);
    tcase_add_loop_test(tc, windows_grammar, 0, sizeof windows / sizeof windows[0]);
    tcase_add_test(tc, int_lists_with_bounds);
    suite_add_tcase(s, tc);

    tc = tcase_create("pairs");
    tcase_add_test(tc, pair_flags);
    tcase_add_test(tc, pair_check_names_the_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("instances");
    tcase_add_loop_test(tc, instance_holds_what_the_problem_needs, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
