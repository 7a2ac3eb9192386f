/*
 * The reference's backward pass (ref/backward.c, E7): against independent
 * high-precision gradients (tests/hp_grad.c: automatic differentiation of
 * the forward for n = 1..4, the closed-form attention backward for n = 1),
 * symmetry of the dimensions, GQA sums, masked keys and empty slices,
 * causality, exact cases, correct rounding and the precision cap; and the
 * gradient vectors through the command line (eval --bwd, verify).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpfr.h>

#include "io/casefile.h"
#include "nsimplex/ref.h"
#include "ref/ival.h"
#include "tests/cli_run.h"
#include "tests/harness.h"
#include "tests/hp_grad.h"
#include "vectors/gen.h"
#include "tests/env.h"

#define SEED 20261206u
#define HP_PREC 1000

/* A problem from a compact spec; unspecified fields take the defaults. */
typedef struct spec {
    const char *name;
    int n, B, L, H, Hkv, d, dv, reduce, causal, distinct;
    int window[NSX_MAX_ORDER];
    double kb[NSX_MAX_ORDER], vb[NSX_MAX_ORDER], out_scale, score_scale; /* 0: defaults */
    int topk;                                                           /* given selection */
    unsigned dims;
} spec;

static nsx_problem problem_of(const spec *s)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = s->n, p.B = s->B, p.L = s->L, p.H = s->H, p.Hkv = s->Hkv, p.d = s->d, p.dv = s->dv;
    p.reduce = s->reduce, p.causal = s->causal, p.distinct = s->distinct;
    for (int m = 0; m < s->n; m++) {
        p.window[m] = s->window[m];
        p.k_bias[m] = s->kb[m];
        p.v_bias[m] = s->vb[m];
    }
    if (s->out_scale != 0)
        p.out_scale = s->out_scale;
    if (s->score_scale != 0) {
        p.score_scale_rsqrt_d = 0;
        p.score_scale = s->score_scale;
    }
    if (s->topk)
        p.sel = (nsx_selection){NSX_SEL_INDICES, s->topk, s->dims, 0, 0, 0, 0};
    return p;
}

/* Gradient buffers for a problem. */
typedef struct grads {
    nsx_outputs g;  /* dq, dk, dv */
    double *dout;
} grads;

static void grads_alloc(grads *gr, const nsx_problem *p)
{
    memset(gr, 0, sizeof *gr);
    gr->g.dq = calloc(nsx_q_size(p), sizeof(double));
    gr->dout = calloc(nsx_o_size(p), sizeof(double));
    for (int m = 0; m < p->n; m++) {
        gr->g.dk[m] = calloc(nsx_k_size(p), sizeof(double));
        gr->g.dv[m] = calloc(nsx_v_size(p), sizeof(double));
    }
}

static void grads_free(grads *gr, const nsx_problem *p)
{
    free(gr->g.dq);
    free(gr->dout);
    for (int m = 0; m < p->n; m++) {
        free(gr->g.dk[m]);
        free(gr->g.dv[m]);
    }
}

/* Random inputs and dO (dyadic, 8 bits: bf16-representable; below 2 in
   magnitude, so that no weight is below 2^-1000 and the independent
   gradients at HP_PREC bits keep hundreds of exact bits). */
static void fill(tcase *t, grads *gr, rng *r)
{
    tcase_fill(t, r, 8, 7);
    for (size_t x = 0; x < nsx_o_size(&t->p); x++)
        gr->dout[x] = rng_dyadic(r, 8, 4);
    if (t->p.sel.source == NSX_SEL_INDICES)
        tcase_random_sel(t, r);
}

static int run_bwd(tcase *t, grads *gr, const nsx_ref_opts *opts, nsx_ref_stats *st)
{
    nsx_err err = {0};
    t->in.dout = gr->dout;
    int rc = nsx_ref_backward(&t->p, &t->in, &gr->g, opts, st, &err);
    if (rc)
        fprintf(stderr, "nsx_ref_backward: %s\n", err.msg);
    return rc;
}

static void assert_same(const char *what, const char *name, const double *a, const double *b, size_t count)
{
    for (size_t x = 0; x < count; x++)
        ck_assert_msg(memcmp(&a[x], &b[x], sizeof a[x]) == 0,
                      "%s %s: element %zu: %.17g != %.17g (seed %u)", what, name, x, a[x], b[x], SEED);
}

/* Every gradient tensor of a and b bit for bit. */
static void assert_grads(const char *what, const nsx_problem *p, const nsx_outputs *a, const nsx_outputs *b)
{
    char name[16];
    assert_same(what, "dq", a->dq, b->dq, nsx_q_size(p));
    for (int m = 0; m < p->n; m++) {
        snprintf(name, sizeof name, "dk%d", m + 1);
        assert_same(what, name, a->dk[m], b->dk[m], nsx_k_size(p));
        snprintf(name, sizeof name, "dv%d", m + 1);
        assert_same(what, name, a->dv[m], b->dv[m], nsx_v_size(p));
    }
}

/* ---- against independent gradients ------------------------------------------ */

#define P_ NSX_REDUCE_PRODUCT
#define S_ NSX_REDUCE_SUM
#define M_ NSX_REDUCE_MEAN

static const spec ad_specs[] = {
    {"n1 causal, GQA 2:1, biases", 1, 1, 6, 2, 1, 3, 2, P_, 1, 0, {0}, {0.25}, {-1}, 0, 0, 0, 0},
    {"n1 causal off, window 2, two batches", 1, 2, 5, 1, 1, 2, 3, P_, 0, 0, {2}, {0}, {0}, 0, 0, 0, 0},
    {"n2 dense causal", 2, 1, 6, 1, 1, 3, 2, P_, 1, 0, {0, 0}, {0}, {0}, 0, 0, 0, 0},
    {"n2 windows, sum, out_scale", 2, 1, 6, 1, 1, 2, 2, S_, 1, 0, {4, 2}, {0}, {0}, -0.75, 0, 0, 0},
    {"n2 Meta biases, GQA 2:1", 2, 1, 5, 2, 1, 4, 2, P_, 1, 0, {0, 0}, {0, 0.25}, {0, 1}, 0, 0, 0, 0},
    {"n2 distinct, mean, selection on dim 2", 2, 1, 6, 1, 1, 2, 2, M_, 1, 1, {0, 0}, {0}, {0}, 0, 0, 3, 2},
    {"n2 causal off, binary64 scale", 2, 1, 5, 1, 1, 2, 2, P_, 0, 0, {2, 0}, {0}, {0}, 0, 0.375, 0, 0},
    {"n3 causal, biases", 3, 1, 5, 1, 1, 2, 2, P_, 1, 0, {0, 0, 0}, {0.5, 0, -0.25}, {0, 1, 0.5}, 0, 0, 0, 0},
    {"n3 windows, sum, GQA 2:1", 3, 1, 5, 2, 1, 2, 1, S_, 1, 0, {3, 0, 2}, {0}, {0}, 0, 0, 0, 0},
    {"n4 causal", 4, 1, 4, 1, 1, 2, 2, P_, 1, 0, {0}, {0}, {0}, 0, 0, 0, 0},
    {"n4 causal off, mean, window", 4, 1, 3, 1, 1, 2, 2, M_, 0, 0, {0, 2, 0, 0}, {0}, {0}, 0, 0, 0, 0},
};

/* Every gradient of the reference equals dF/dx by automatic
   differentiation at HP_PREC bits, rounded, bit for bit. */
START_TEST(matches_automatic_differentiation)
{
    const spec *s = &ad_specs[_i];
    nsx_problem p = problem_of(s);
    tcase t;
    grads ref, hp;
    rng r = {SEED + (unsigned)_i};
    tcase_alloc(&t, &p);
    grads_alloc(&ref, &p);
    grads_alloc(&hp, &p);
    fill(&t, &ref, &r);
    ck_assert_int_eq(run_bwd(&t, &ref, NULL, NULL), 0);
    hp_grad_ad(&t, t.sel, ref.dout, HP_PREC, hp.g.dq, hp.g.dk, hp.g.dv);
    assert_grads(s->name, &p, &ref.g, &hp.g);
    grads_free(&ref, &p);
    grads_free(&hp, &p);
    tcase_free(&t);
}
END_TEST

/* Random small problems: every setting drawn (order 1..3, sizes, reducer,
   causal, distinct, windows, biases, a binary64 score scale of either sign
   or 1/sqrt(d), out_scale of either sign, a given selection), against
   automatic differentiation.  The seed is printed on failure. */
START_TEST(random_problems_match_automatic_differentiation)
{
    unsigned seed = SEED + 5000 + (unsigned)_i;
    rng r = {seed};
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = rng_int(&r, 1, 3);
    p.L = rng_int(&r, 2, p.n == 3 ? 4 : 6);
    p.Hkv = rng_int(&r, 1, 2);
    p.H = p.Hkv * rng_int(&r, 1, 2);
    p.d = rng_int(&r, 1, 3);
    p.dv = rng_int(&r, 1, 3);
    p.reduce = rng_int(&r, 0, 2);
    p.causal = rng_int(&r, 0, 1);
    p.distinct = p.n > 1 && rng_int(&r, 0, 3) == 0;
    for (int m = 0; m < p.n; m++) {
        p.window[m] = rng_int(&r, 0, 1) ? rng_int(&r, 1, p.L) : 0;
        p.k_bias[m] = rng_int(&r, 0, 2) == 0 ? rng_dyadic(&r, 4, 3) : 0;
        p.v_bias[m] = rng_int(&r, 0, 2) == 0 ? rng_dyadic(&r, 4, 3) : 0;
    }
    if (rng_int(&r, 0, 1)) {
        p.score_scale_rsqrt_d = 0;
        p.score_scale = rng_dyadic(&r, 4, 3);
    }
    p.out_scale = rng_int(&r, 0, 1) ? rng_dyadic(&r, 4, 2) : 1;
    if (rng_int(&r, 0, 2) == 0)
        p.sel = (nsx_selection){NSX_SEL_INDICES, rng_int(&r, 1, p.L), (unsigned)rng_int(&r, 1, (1 << p.n) - 1),
                                0, 0, 0, 0};
    tcase t;
    grads ref, hp;
    tcase_alloc(&t, &p);
    grads_alloc(&ref, &p);
    grads_alloc(&hp, &p);
    fill(&t, &ref, &r);
    nsx_err err = {0};
    t.in.dout = ref.dout;
    int rc = nsx_ref_backward(&p, &t.in, &ref.g, NULL, NULL, &err);
    ck_assert_msg(rc == 0, "seed %u: %s", seed, err.msg);
    hp_grad_ad(&t, t.sel, ref.dout, HP_PREC, hp.g.dq, hp.g.dk, hp.g.dv);
    char what[64];
    snprintf(what, sizeof what, "random problem, seed %u", seed);
    assert_grads(what, &p, &ref.g, &hp.g);
    grads_free(&ref, &p);
    grads_free(&hp, &p);
    tcase_free(&t);
}
END_TEST

static const spec n1_specs[] = {
    {"dense causal", 1, 1, 8, 2, 2, 4, 3, P_, 1, 0, {0}, {0}, {0}, 0, 0, 0, 0},
    {"GQA 4:1, biases, out_scale", 1, 1, 7, 4, 1, 3, 2, P_, 1, 0, {0}, {0.125}, {1}, 1.5, 0, 0, 0},
    {"causal off, window 3", 1, 1, 7, 1, 1, 5, 2, P_, 0, 0, {3}, {0}, {0}, 0, 0, 0, 0},
    {"selection", 1, 1, 9, 2, 1, 3, 2, P_, 1, 0, {0}, {0}, {0}, 0, 0, 3, 1},
};

/* A computed selection (given scores, top-3 on both dimensions; a relu
   indexer, top-2 on dimension 2) is held constant: the gradients are those
   of the problem with that selection given, by automatic differentiation. */
START_TEST(computed_selection_is_held_constant)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2, p.L = 7, p.d = 2, p.dv = 2;
    if (_i == 0)
        p.sel = (nsx_selection){NSX_SEL_SCORES, 3, 3, 0, 0, 0, 0};
    else
        p.sel = (nsx_selection){NSX_SEL_INDEXER, 2, 2, NSX_ACT_RELU, 0.5, 2, 3};
    tcase t;
    grads ref, hp;
    rng r = {SEED + 150 + (unsigned)_i};
    tcase_alloc(&t, &p);
    grads_alloc(&ref, &p);
    grads_alloc(&hp, &p);
    fill(&t, &ref, &r);
    nsx_err err = {0};
    ck_assert_msg(nsx_ref_select(&p, &t.in, t.sel_out, t.sel_scores, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(run_bwd(&t, &ref, NULL, NULL), 0);
    hp_grad_ad(&t, t.sel_out, ref.dout, HP_PREC, hp.g.dq, hp.g.dk, hp.g.dv);
    assert_grads("computed selection", &p, &ref.g, &hp.g);
    grads_free(&ref, &p);
    grads_free(&hp, &p);
    tcase_free(&t);
}
END_TEST

/* n = 1 is attention: the reference equals FlashAttention's closed form. */
START_TEST(n1_matches_closed_form)
{
    const spec *s = &n1_specs[_i];
    nsx_problem p = problem_of(s);
    tcase t;
    grads ref, hp;
    rng r = {SEED + 100 + (unsigned)_i};
    tcase_alloc(&t, &p);
    grads_alloc(&ref, &p);
    grads_alloc(&hp, &p);
    fill(&t, &ref, &r);
    ck_assert_int_eq(run_bwd(&t, &ref, NULL, NULL), 0);
    hp_grad_n1(&t, t.sel, ref.dout, HP_PREC, hp.g.dq, hp.g.dk[0], hp.g.dv[0]);
    assert_grads(s->name, &p, &ref.g, &hp.g);
    grads_free(&ref, &p);
    grads_free(&hp, &p);
    tcase_free(&t);
}
END_TEST

/* ---- symmetries -------------------------------------------------------------- */

/* (K1,V1) <-> (Kn,Vn) with equal windows: dq is the same and the gradients
   of the two dimensions trade places, bit for bit, for n = 2, 3, 4. */
START_TEST(swapping_dimensions_swaps_gradients)
{
    static const int orders[] = {2, 3, 4};
    int n = orders[_i];
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = n;
    p.L = n == 2 ? 6 : 4;
    p.H = 2;
    p.d = 2;
    p.dv = 2;
    for (int m = 0; m < n; m++)
        p.window[m] = 3;
    tcase a, b;
    grads ga, gb;
    rng r = {SEED + 200 + (unsigned)_i};
    tcase_alloc(&a, &p);
    tcase_alloc(&b, &p);
    grads_alloc(&ga, &p);
    grads_alloc(&gb, &p);
    fill(&a, &ga, &r);
    memcpy(b.q, a.q, nsx_q_size(&p) * sizeof *b.q);
    memcpy(gb.dout, ga.dout, nsx_o_size(&p) * sizeof *gb.dout);
    for (int m = 0; m < n; m++) {
        int from = m == 0 ? n - 1 : m == n - 1 ? 0 : m;
        memcpy(b.k[m], a.k[from], nsx_k_size(&p) * sizeof *b.k[m]);
        memcpy(b.v[m], a.v[from], nsx_v_size(&p) * sizeof *b.v[m]);
    }
    ck_assert_int_eq(run_bwd(&a, &ga, NULL, NULL), 0);
    ck_assert_int_eq(run_bwd(&b, &gb, NULL, NULL), 0);
    assert_same("swap", "dq", ga.g.dq, gb.g.dq, nsx_q_size(&p));
    for (int m = 0; m < n; m++) {
        int from = m == 0 ? n - 1 : m == n - 1 ? 0 : m;
        assert_same("swap", "dk", ga.g.dk[from], gb.g.dk[m], nsx_k_size(&p));
        assert_same("swap", "dv", ga.g.dv[from], gb.g.dv[m], nsx_v_size(&p));
    }
    grads_free(&ga, &p);
    grads_free(&gb, &p);
    tcase_free(&a);
    tcase_free(&b);
}
END_TEST

/* GQA sums over the heads of a group: two query heads with the same q and
   dO on one kv head give the same dq in both heads and twice the dk, dv of
   one head alone (an exact doubling, so bit for bit). */
START_TEST(gqa_sums_over_the_group)
{
    nsx_problem p1, p2;
    nsx_problem_defaults(&p1);
    p1.n = 2, p1.L = 6, p1.d = 3, p1.dv = 2, p1.window[1] = 3;
    p2 = p1;
    p2.H = 2; /* Hkv = 1 */
    tcase t1, t2;
    grads g1, g2;
    rng r = {SEED + 300};
    tcase_alloc(&t1, &p1);
    tcase_alloc(&t2, &p2);
    grads_alloc(&g1, &p1);
    grads_alloc(&g2, &p2);
    fill(&t1, &g1, &r);
    for (int m = 0; m < 2; m++) {
        memcpy(t2.k[m], t1.k[m], nsx_k_size(&p1) * sizeof *t1.k[m]);
        memcpy(t2.v[m], t1.v[m], nsx_v_size(&p1) * sizeof *t1.v[m]);
    }
    for (int i = 0; i < p1.L; i++)
        for (int h = 0; h < 2; h++) {
            memcpy(t2.q + nsx_q_at(&p2, 0, i, h, 0), t1.q + nsx_q_at(&p1, 0, i, 0, 0), (size_t)p1.d * sizeof(double));
            memcpy(g2.dout + nsx_o_at(&p2, 0, i, h, 0), g1.dout + nsx_o_at(&p1, 0, i, 0, 0), (size_t)p1.dv * sizeof(double));
        }
    ck_assert_int_eq(run_bwd(&t1, &g1, NULL, NULL), 0);
    ck_assert_int_eq(run_bwd(&t2, &g2, NULL, NULL), 0);
    for (int i = 0; i < p1.L; i++)
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < p1.d; l++)
                ck_assert(g2.g.dq[nsx_q_at(&p2, 0, i, h, l)] == g1.g.dq[nsx_q_at(&p1, 0, i, 0, l)]);
    for (int m = 0; m < 2; m++) {
        for (size_t x = 0; x < nsx_k_size(&p1); x++)
            ck_assert(g2.g.dk[m][x] == 2 * g1.g.dk[m][x]);
        for (size_t x = 0; x < nsx_v_size(&p1); x++)
            ck_assert(g2.g.dv[m][x] == 2 * g1.g.dv[m][x]);
    }
    grads_free(&g1, &p1);
    grads_free(&g2, &p2);
    tcase_free(&t1);
    tcase_free(&t2);
}
END_TEST

/* ---- masks, empty slices, causality ------------------------------------------ */

/* A key that no query selects in dimension 2 gets dk2 = dv2 = +0 exactly,
   while dimension 1 (not restricted) still uses it. */
START_TEST(masked_keys_get_exact_zeros)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2, p.L = 6, p.d = 2, p.dv = 2;
    p.sel = (nsx_selection){NSX_SEL_INDICES, 2, 2, 0, 0, 0, 0};
    tcase t;
    grads g;
    rng r = {SEED + 400};
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    fill(&t, &g, &r);
    for (int i = 0; i < p.L; i++) { /* S(i) = {0, 1}: key 2..5 never in dim 2 */
        t.sel[nsx_sel_at(&p, 0, i, 0)] = 0;
        t.sel[nsx_sel_at(&p, 0, i, 1)] = 1;
    }
    ck_assert_int_eq(run_bwd(&t, &g, NULL, NULL), 0);
    int nonzero1 = 0;
    for (int j = 2; j < p.L; j++) {
        for (int l = 0; l < p.d; l++) {
            double x = g.g.dk[1][nsx_k_at(&p, 0, j, 0, l)];
            ck_assert_msg(x == 0 && !signbit(x), "dk2[%d,%d] = %g", j, l, x);
            nonzero1 |= g.g.dk[0][nsx_k_at(&p, 0, j, 0, l)] != 0;
        }
        for (int c = 0; c < p.dv; c++) {
            double x = g.g.dv[1][nsx_v_at(&p, 0, j, 0, c)];
            ck_assert_msg(x == 0 && !signbit(x), "dv2[%d,%d] = %g", j, c, x);
        }
    }
    ck_assert(nonzero1);
    grads_free(&g, &p);
    tcase_free(&t);
}
END_TEST

/* Empty slices (distinct: query 0; all pads: query 3) give dq = +0 and add
   nothing; their dO is not read (NaN there is fine); the rest matches
   automatic differentiation. */
START_TEST(empty_slices_contribute_nothing)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2, p.L = 4, p.d = 2, p.dv = 2, p.distinct = 1;
    p.sel = (nsx_selection){NSX_SEL_INDICES, 2, 2, 0, 0, 0, 0};
    tcase t;
    grads g, hp;
    rng r = {SEED + 500};
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    grads_alloc(&hp, &p);
    fill(&t, &g, &r);
    for (size_t x = 0; x < nsx_sel_size(&p); x++)
        t.sel[x] = -1;   /* query 3: all pads: empty */
    t.sel[1 * 2] = 0;    /* query 1: (1, 0) */
    t.sel[2 * 2] = 1;    /* query 2: (0, 1), (2, 1) */
    hp_grad_ad(&t, t.sel, g.dout, HP_PREC, hp.g.dq, hp.g.dk, hp.g.dv);
    for (int c = 0; c < p.dv; c++) /* not read: the slices are empty */
        g.dout[nsx_o_at(&p, 0, 0, 0, c)] = g.dout[nsx_o_at(&p, 0, 3, 0, c)] = NAN;
    ck_assert_int_eq(run_bwd(&t, &g, NULL, NULL), 0);
    for (int l = 0; l < p.d; l++)
        for (int i = 0; i < 4; i += 3) {
            double x = g.g.dq[nsx_q_at(&p, 0, i, 0, l)];
            ck_assert(x == 0 && !signbit(x));
        }
    assert_grads("empty slices", &p, &g.g, &hp.g);
    grads_free(&g, &p);
    grads_free(&hp, &p);
    tcase_free(&t);
}
END_TEST

/* Causal: dk_m, dv_m at positions j >= t depend only on queries i >= j, so
   changing q and dO at positions before t leaves them bit-identical. */
START_TEST(key_gradients_do_not_see_earlier_queries)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2, p.L = 7, p.d = 2, p.dv = 2, p.H = 2, p.window[0] = 4;
    int tpos = 3;
    tcase a, b;
    grads ga, gb;
    rng r = {SEED + 600};
    tcase_alloc(&a, &p);
    tcase_alloc(&b, &p);
    grads_alloc(&ga, &p);
    grads_alloc(&gb, &p);
    fill(&a, &ga, &r);
    memcpy(b.q, a.q, nsx_q_size(&p) * sizeof *b.q);
    memcpy(gb.dout, ga.dout, nsx_o_size(&p) * sizeof *gb.dout);
    for (int m = 0; m < 2; m++) {
        memcpy(b.k[m], a.k[m], nsx_k_size(&p) * sizeof *b.k[m]);
        memcpy(b.v[m], a.v[m], nsx_v_size(&p) * sizeof *b.v[m]);
    }
    for (int i = 0; i < tpos; i++)
        for (int h = 0; h < p.H; h++) {
            for (int l = 0; l < p.d; l++)
                b.q[nsx_q_at(&p, 0, i, h, l)] = rng_dyadic(&r, 8, 2);
            for (int c = 0; c < p.dv; c++)
                gb.dout[nsx_o_at(&p, 0, i, h, c)] = rng_dyadic(&r, 8, 2);
        }
    ck_assert_int_eq(run_bwd(&a, &ga, NULL, NULL), 0);
    ck_assert_int_eq(run_bwd(&b, &gb, NULL, NULL), 0);
    size_t from_k = nsx_k_at(&p, 0, tpos, 0, 0), from_v = nsx_v_at(&p, 0, tpos, 0, 0);
    for (int m = 0; m < 2; m++) {
        assert_same("causal", "dk", ga.g.dk[m] + from_k, gb.g.dk[m] + from_k, nsx_k_size(&p) - from_k);
        assert_same("causal", "dv", ga.g.dv[m] + from_v, gb.g.dv[m] + from_v, nsx_v_size(&p) - from_v);
    }
    ck_assert(memcmp(ga.g.dk[0], gb.g.dk[0], from_k * sizeof(double)) != 0); /* earlier keys do see them */
    grads_free(&ga, &p);
    grads_free(&gb, &p);
    tcase_free(&a);
    tcase_free(&b);
}
END_TEST

/* ---- exact cases and correct rounding ---------------------------------------- */

/* dq of a row whose part cancels only through the score groups (SPEC 3.4,
   gradients): keys 0 and 1 tie, key 2 does not, and x_2 is the mean of x_0
   and x_1 with p_0 = p_1, so dq[2,0] = 0 exactly, with s = 1/sqrt(2)
   irrational; enclosures alone never decide it. */
START_TEST(exact_zero_by_score_groups)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 3, p.d = 2, p.dv = 1;
    tcase t;
    grads g;
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    const double K[3][2] = {{1, 2}, {2, 1}, {1.5, 0.5}};
    for (int j = 0; j < 3; j++)
        for (int l = 0; l < 2; l++)
            t.k[0][j * 2 + l] = K[j][l];
    t.q[2 * 2 + 0] = t.q[2 * 2 + 1] = 1; /* scores 3, 3, 2 */
    t.v[0][0] = t.v[0][1] = 1;           /* p_0 = p_1 = 1, p_2 = 0 */
    g.dout[0] = g.dout[1] = g.dout[2] = 1;
    nsx_ref_stats st = {0};
    ck_assert_int_eq(run_bwd(&t, &g, NULL, &st), 0);
    ck_assert(g.g.dq[2 * 2 + 0] == 0 && !signbit(g.g.dq[2 * 2 + 0]));
    ck_assert(g.g.dq[2 * 2 + 1] != 0);
    ck_assert_uint_ge(st.exact, 1);
    grads_free(&g, &p);
    tcase_free(&t);
}
END_TEST

/* All scores equal (q = 0): the weights are 1/N, so dv is rational; here
   dv[0] = 1 + 0/2 + (3 * 2^-53)/3 is the midpoint 1 + 2^-53 and rounds to
   even, 1.0 (enclosures alone never decide it), and dv[1] = dv[2] = 2^-53
   (a binary64: enclosures decide it); a constant key channel
   gives dq = +0 by the row sum (n = 2). */
START_TEST(exact_midpoint_and_row_sum)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 3, p.d = 1, p.dv = 1;
    tcase t;
    grads g;
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    t.k[0][0] = 1, t.k[0][1] = 2, t.k[0][2] = 3;
    g.dout[0] = 1, g.dout[1] = 0, g.dout[2] = 3 * 0x1p-53;
    nsx_ref_stats st = {0};
    ck_assert_int_eq(run_bwd(&t, &g, NULL, &st), 0);
    ck_assert(g.g.dv[0][0] == 1.0);
    ck_assert(g.g.dv[0][1] == 0x1p-53 && g.g.dv[0][2] == 0x1p-53);
    ck_assert_uint_ge(st.exact, 1);
    grads_free(&g, &p);
    tcase_free(&t);

    nsx_problem_defaults(&p);
    p.n = 2, p.L = 5, p.d = 2, p.dv = 2;
    rng r = {SEED + 700};
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    fill(&t, &g, &r);
    for (int j = 0; j < p.L; j++) {
        t.k[0][nsx_k_at(&p, 0, j, 0, 0)] = 0.5;
        t.k[1][nsx_k_at(&p, 0, j, 0, 0)] = -0.25;
    }
    ck_assert_int_eq(run_bwd(&t, &g, NULL, &st), 0);
    for (int i = 0; i < p.L; i++) {
        double x = g.g.dq[nsx_q_at(&p, 0, i, 0, 0)];
        ck_assert_msg(x == 0 && !signbit(x), "dq[%d,0] = %g", i, x);
    }
    ck_assert(g.g.dq[nsx_q_at(&p, 0, p.L - 1, 0, 1)] != 0);
    grads_free(&g, &p);
    tcase_free(&t);
}
END_TEST

/* Nearly one-hot rows (score gaps in the thousands): the gradients are
   as small as e^-2000, of either sign, many below the binary64 range (then
   RN is a signed zero).  They match automatic differentiation at 6000
   bits, which keeps about 3000 exact bits after the cancellation. */
START_TEST(one_hot_rows_keep_tiny_gradients)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 6, p.d = 2, p.dv = 2;
    tcase t;
    grads g, hp;
    rng r = {SEED + 750};
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    grads_alloc(&hp, &p);
    tcase_fill(&t, &r, 8, 4);
    for (size_t x = 0; x < nsx_q_size(&p); x++)
        t.q[x] *= 8;
    for (size_t x = 0; x < nsx_o_size(&p); x++)
        g.dout[x] = rng_dyadic(&r, 8, 4);
    ck_assert_int_eq(run_bwd(&t, &g, NULL, NULL), 0);
    hp_grad_ad(&t, NULL, g.dout, 6000, hp.g.dq, hp.g.dk, hp.g.dv);
    assert_grads("one-hot", &p, &g.g, &hp.g);
    int tiny = 0;
    for (size_t x = 0; x < nsx_q_size(&p); x++)
        tiny += g.g.dq[x] != 0 && fabs(g.g.dq[x]) < 0x1p-600;
    ck_assert_int_ge(tiny, 1);
    grads_free(&g, &p);
    grads_free(&hp, &p);
    tcase_free(&t);
}
END_TEST

/* Score gaps of 2^16 (weights near e^-65536 = 2^-94548, inside MPFR's
   range, far outside binary64's): evaluated around the maximal tuple
   (ref/backward.c, row_gradients), the reference decides every gradient at
   its first working precision, signed zeros included, and they equal
   automatic differentiation at 250000 bits.  (Subtracting Delta from dP
   directly would need about 2^17 bits, past the cap.) */
START_TEST(extreme_one_hot_rows_decide_at_low_precision)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 3, p.d = 1, p.dv = 2;
    tcase t;
    grads g, hp;
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    grads_alloc(&hp, &p);
    t.q[0] = t.q[1] = t.q[2] = 256;
    t.k[0][0] = 0, t.k[0][1] = 256, t.k[0][2] = -256; /* row 2: scores 0, 65536, -65536 */
    const double v[3][2] = {{1, -2}, {0.5, 3}, {-1, 1}};
    for (int j = 0; j < 3; j++)
        for (int c = 0; c < 2; c++)
            t.v[0][j * 2 + c] = v[j][c];
    const double dO[3][2] = {{1, 0.25}, {-0.5, 2}, {1.5, -1}};
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 2; c++)
            g.dout[i * 2 + c] = dO[i][c];
    nsx_ref_stats st = {0};
    ck_assert_int_eq(run_bwd(&t, &g, NULL, &st), 0);
    ck_assert_int_le(st.max_prec, 256);
    hp_grad_ad(&t, NULL, g.dout, 250000, hp.g.dq, hp.g.dk, hp.g.dv);
    assert_grads("extreme one-hot", &p, &g.g, &hp.g);
    int negzero = 0;
    for (size_t x = 0; x < nsx_q_size(&p); x++)
        negzero += g.g.dq[x] == 0 && signbit(g.g.dq[x]);
    for (size_t x = 0; x < nsx_k_size(&p); x++)
        negzero += g.g.dk[0][x] == 0 && signbit(g.g.dk[0][x]);
    ck_assert_int_ge(negzero, 1); /* a negative gradient far below binary64 */
    grads_free(&g, &p);
    grads_free(&hp, &p);
    tcase_free(&t);
}
END_TEST

/* Recomputation from a far higher starting precision rounds to the same
   binary64 values (a sample). */
START_TEST(far_higher_precision_rounds_the_same)
{
    static const int sample[] = {2, 4, 7, 10};
    const spec *s = &ad_specs[sample[_i]];
    nsx_problem p = problem_of(s);
    tcase t;
    grads a, b;
    rng r = {SEED + 800 + (unsigned)_i};
    tcase_alloc(&t, &p);
    grads_alloc(&a, &p);
    grads_alloc(&b, &p);
    fill(&t, &a, &r);
    memcpy(b.dout, a.dout, nsx_o_size(&p) * sizeof *b.dout);
    nsx_ref_opts hi = {.prec0 = 5000, .prec_cap = 1 << 16};
    nsx_ref_stats st = {0};
    ck_assert_int_eq(run_bwd(&t, &a, NULL, NULL), 0);
    ck_assert_int_eq(run_bwd(&t, &b, &hi, &st), 0);
    ck_assert_int_ge(st.max_prec, 5000);
    assert_grads(s->name, &p, &a.g, &b.g);
    grads_free(&a, &p);
    grads_free(&b, &p);
    tcase_free(&t);
}
END_TEST

/* An enclosure with a zero end admits the exact value 0, which rounds to
   +0, whatever the sign of MPFR's zero there: [-2^-2000, -0] is undecided
   (0 or a tiny negative, -0), [-0, 2^-2000] is +0 either way. */
START_TEST(zero_end_of_an_enclosure_is_the_number_zero)
{
    ival x;
    double out = 1;
    ival_init(&x, 64);
    mpfr_set_si_2exp(x.lo, -1, -2000, MPFR_RNDN);
    mpfr_set_zero(x.hi, -1);
    ck_assert_int_eq(ival_round_d(&x, &out), 0);
    mpfr_set_zero(x.lo, -1);
    mpfr_set_si_2exp(x.hi, 1, -2000, MPFR_RNDN);
    ck_assert_int_eq(ival_round_d(&x, &out), 1);
    ck_assert(out == 0 && !signbit(out));
    mpfr_set_si_2exp(x.lo, -3, -2000, MPFR_RNDN);
    mpfr_set_si_2exp(x.hi, -1, -2000, MPFR_RNDN);
    ck_assert_int_eq(ival_round_d(&x, &out), 1);
    ck_assert(out == 0 && signbit(out));
    ival_clear(&x);
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

/* Below the precision needed, the reference reports the cap and emits
   nothing it has not proven. */
START_TEST(precision_cap_is_an_error)
{
    nsx_problem p = problem_of(&ad_specs[2]);
    tcase t;
    grads g;
    rng r = {SEED + 900};
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    fill(&t, &g, &r);
    nsx_ref_opts low = {.prec0 = 24, .prec_cap = 40};
    nsx_err err = {0};
    t.in.dout = g.dout;
    ck_assert_int_eq(nsx_ref_backward(&p, &t.in, &g.g, &low, NULL, &err), NSX_E_PRECISION_CAP);
    ck_assert_ptr_nonnull(strstr(err.msg, "precision cap"));
    grads_free(&g, &p);
    tcase_free(&t);
}
END_TEST

/* Score gaps beyond MPFR's exponent range (2^70 here): row 1's gradients
   are nonzero numbers far below binary64.  dk1[0] = s dT_0 Q is about
   -exp(-2^71), so RN gives -0, but its enclosure [-tiny, 0] (the weight of
   key 0 underflows to [0, tiny]) also admits an exact 0 (+0); the reference
   stops at the cap (a small one here) rather than guess (SPEC 3.4).  The
   positive ones are decided: [0, tiny] rounds to +0 either way. */
START_TEST(score_gaps_beyond_mpfr_range_end_at_the_cap)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 2, p.d = 1, p.dv = 1;
    tcase t;
    grads g;
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    t.q[1] = 0x1p35;
    t.k[0][0] = -0x1p35, t.k[0][1] = 0x1p35; /* row 1: scores -2^70 and 2^70 */
    t.v[0][0] = 1, t.v[0][1] = 2;
    g.dout[0] = g.dout[1] = 1;
    nsx_ref_opts opts = {.prec_cap = 4096};
    nsx_err err = {0};
    t.in.dout = g.dout;
    ck_assert_int_eq(nsx_ref_backward(&p, &t.in, &g.g, &opts, NULL, &err), NSX_E_PRECISION_CAP);
    ck_assert_ptr_nonnull(strstr(err.msg, "dk1[0,0,0,0]"));
    grads_free(&g, &p);
    tcase_free(&t);
}
END_TEST

/* No dO, or a non-finite dO in a row that reads it, is bad input; a skip
   that marks a row is refused. */
START_TEST(bad_inputs_are_reported)
{
    nsx_problem p = problem_of(&ad_specs[2]);
    tcase t;
    grads g;
    rng r = {SEED + 1000};
    tcase_alloc(&t, &p);
    grads_alloc(&g, &p);
    fill(&t, &g, &r);
    nsx_err err = {0};
    ck_assert_int_eq(nsx_ref_backward(&p, &t.in, &g.g, NULL, NULL, &err), NSX_E_INPUT); /* no do */
    ck_assert_ptr_nonnull(strstr(err.msg, "tensor do"));
    t.in.dout = g.dout;
    g.dout[nsx_o_at(&p, 0, 2, 0, 1)] = INFINITY;
    ck_assert_int_eq(nsx_ref_backward(&p, &t.in, &g.g, NULL, NULL, &err), NSX_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "do:"));
    g.dout[nsx_o_at(&p, 0, 2, 0, 1)] = 0;
    t.k[1][nsx_k_at(&p, 0, 1, 0, 0)] = NAN;
    ck_assert_int_eq(nsx_ref_backward(&p, &t.in, &g.g, NULL, NULL, &err), NSX_E_INPUT);
    unsigned char skip[6] = {0, 0, 1};
    nsx_ref_opts opts = {.skip = skip};
    t.k[1][nsx_k_at(&p, 0, 1, 0, 0)] = 0;
    ck_assert_int_eq(nsx_ref_backward(&p, &t.in, &g.g, &opts, NULL, &err), NSX_E_UNSUPPORTED);
    skip[2] = 0; /* a skip that marks no row is fine */
    ck_assert_int_eq(nsx_ref_backward(&p, &t.in, &g.g, &opts, NULL, &err), 0);
    grads_free(&g, &p);
    tcase_free(&t);
}
END_TEST

/* ---- the command line and the gradient vectors -------------------------------- */

/* eval --bwd writes the gradients of a gradient vector bit for bit. */
START_TEST(eval_bwd_reproduces_the_vector)
{
    const char *vec = "vectors/default/bwd_n2_paper.safetensors";
    char out[4096];
    snprintf(out, sizeof out, "%s/bwd_eval.safetensors", test_tmpdir());
    cli_result r;
    const char *args[] = {"eval", vec, "--out", out, "--bwd", NULL};
    ck_assert_int_eq(cli_run(&r, args), 0);
    ck_assert_msg(r.status == 0, "eval --bwd: %s", r.err);
    cli_result_free(&r);
    nsx_case c;
    nsx_st st;
    nsx_err err;
    ck_assert_msg(nsx_case_read(vec, &c, &err) == 0, "%s", err.msg);
    ck_assert_msg(nsx_st_read(out, &st, &err) == 0, "%s", err.msg);
    const nsx_problem *p = &c.p;
    ck_assert_ptr_nonnull(c.in.dout);
    const char *names[] = {"dq", "dk1", "dv1", "dk2", "dv2"};
    const double *want[] = {c.expected.dq, c.expected.dk[0], c.expected.dv[0], c.expected.dk[1],
                            c.expected.dv[1]};
    size_t count[] = {nsx_q_size(p), nsx_k_size(p), nsx_v_size(p), nsx_k_size(p), nsx_v_size(p)};
    for (int x = 0; x < 5; x++) {
        const nsx_tensor *t = nsx_st_get(&st, names[x]);
        ck_assert_msg(t && want[x] && t->count == count[x], "%s", names[x]);
        double *got = malloc(count[x] * sizeof *got);
        nsx_tensor_get_f64(t, got);
        assert_same("eval --bwd", names[x], got, want[x], count[x]);
        free(got);
    }
    nsx_st_free(&st);
    nsx_case_free(&c);
}
END_TEST

/* --bwd without a tensor do, for the reference or the SIMD kernel: exit 2,
   one line (eval --bwd --impl simd itself: tests/test_simd_bwd.c). */
START_TEST(eval_bwd_refuses_what_it_cannot_do)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/bwd_eval_bad.safetensors", test_tmpdir());
    cli_result r;
    const char *nodo[] = {"eval", "vectors/default/n2_dense.safetensors", "--out", out, "--bwd", NULL};
    ck_assert_int_eq(cli_run(&r, nodo), 0);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "tensor do"));
    ck_assert_int_eq(cli_count_lines(r.err), 1);
    cli_result_free(&r);
    const char *simd[] = {"eval", "vectors/default/n2_dense.safetensors", "--out", out, "--bwd",
                          "--impl", "simd", NULL};
    ck_assert_int_eq(cli_run(&r, simd), 0);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "tensor do"));
    ck_assert_int_eq(cli_count_lines(r.err), 1);
    cli_result_free(&r);
}
END_TEST

/* verify recomputes the gradients: one ulp off in one dk2 element (with
   the manifest's checksum updated) fails it. */
START_TEST(verify_catches_a_wrong_gradient)
{
    char dir[2048], cmd[8192], path[4096];
    snprintf(dir, sizeof dir, "%s/bwd_tamper", test_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/default' && cp vectors/default/bwd_n2_dense.safetensors '%s/default/'",
             dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/default/bwd_n2_dense.safetensors", dir);
    nsx_st st;
    nsx_err err;
    int count;
    ck_assert_int_eq(nsx_manifest_write(dir, &count, &err), 0);
    cli_result r;
    const char *args[] = {"verify", dir, "--all", NULL};
    ck_assert_int_eq(cli_run(&r, args), 0);
    ck_assert_msg(r.status == 0, "verify: %s", r.err);
    cli_result_free(&r);
    ck_assert_int_eq(nsx_st_read(path, &st, &err), 0);
    nsx_tensor *t = (nsx_tensor *)nsx_st_get(&st, "dk2");
    ck_assert_ptr_nonnull(t);
    double v;
    memcpy(&v, (char *)t->data + 5 * sizeof v, sizeof v);
    v = nextafter(v, INFINITY);
    memcpy((char *)t->data + 5 * sizeof v, &v, sizeof v);
    ck_assert_int_eq(nsx_st_write(path, &st, &err), 0);
    nsx_st_free(&st);
    ck_assert_int_eq(nsx_manifest_write(dir, &count, &err), 0);
    ck_assert_int_eq(cli_run(&r, args), 0);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.out, "dk2"));
    cli_result_free(&r);
}
END_TEST

static Suite *backward_suite(void)
{
    Suite *s = suite_create("backward");
    TCase *tc = tcase_create("independent");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, matches_automatic_differentiation, 0, sizeof ad_specs / sizeof ad_specs[0]);
    tcase_add_loop_test(tc, n1_matches_closed_form, 0, sizeof n1_specs / sizeof n1_specs[0]);
    tcase_add_loop_test(tc, computed_selection_is_held_constant, 0, 2);
    tcase_add_loop_test(tc, random_problems_match_automatic_differentiation, 0, 40);
    suite_add_tcase(s, tc);
    tc = tcase_create("properties");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, swapping_dimensions_swaps_gradients, 0, 3);
    tcase_add_test(tc, gqa_sums_over_the_group);
    tcase_add_test(tc, masked_keys_get_exact_zeros);
    tcase_add_test(tc, empty_slices_contribute_nothing);
    tcase_add_test(tc, key_gradients_do_not_see_earlier_queries);
    suite_add_tcase(s, tc);
    tc = tcase_create("rounding");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exact_zero_by_score_groups);
    tcase_add_test(tc, exact_midpoint_and_row_sum);
    tcase_add_test(tc, one_hot_rows_keep_tiny_gradients);
    tcase_add_test(tc, extreme_one_hot_rows_decide_at_low_precision);
    tcase_add_loop_test(tc, far_higher_precision_rounds_the_same, 0, 4);
    tcase_add_test(tc, zero_end_of_an_enclosure_is_the_number_zero);
    tcase_add_test(tc, precision_cap_is_an_error);
    tcase_add_test(tc, score_gaps_beyond_mpfr_range_end_at_the_cap);
    tcase_add_test(tc, bad_inputs_are_reported);
    suite_add_tcase(s, tc);
    tc = tcase_create("command line");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, eval_bwd_reproduces_the_vector);
    tcase_add_test(tc, eval_bwd_refuses_what_it_cannot_do);
    tcase_add_test(tc, verify_catches_a_wrong_gradient);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backward_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
