/*
 * The reference (ref/): against independent high-precision formulas
 * (tests/hp.c), symmetries, closed forms, mask truth tables, top-k rules,
 * edge values, and correct rounding.
 */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmp.h>
#include <mpfr.h>

#include "nsimplex/ref.h"
#include "nsimplex/slice.h"
#include "ref/exact.h"
#include "ref/internal.h"
#include "tests/harness.h"
#include "tests/hp.h"

#define SEED 20261124u
#define HP_PREC 3000

/* A problem from a compact spec; unspecified fields take the defaults. */
typedef struct spec {
    const char *name;
    int n, B, L, H, Hkv, d, dv, reduce, causal, distinct;
    int window[2];
    double kb[2], vb[2], out_scale, score_scale; /* score_scale 0: 1/sqrt(d) */
    int topk;                                    /* given selection on dims */
    unsigned dims;
} spec;

static nsx_problem problem_of(const spec *s)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = s->n;
    p.B = s->B;
    p.L = s->L;
    p.H = s->H;
    p.Hkv = s->Hkv;
    p.d = s->d;
    p.dv = s->dv;
    p.reduce = s->reduce;
    p.causal = s->causal;
    p.distinct = s->distinct;
    for (int m = 0; m < s->n && m < 2; m++) {
        p.window[m] = s->window[m];
        p.k_bias[m] = s->kb[m];
        p.v_bias[m] = s->vb[m];
    }
    p.out_scale = s->out_scale != 0 ? s->out_scale : 1.0;
    if (s->score_scale != 0) {
        p.score_scale_rsqrt_d = 0;
        p.score_scale = s->score_scale;
    }
    if (s->topk) {
        p.sel.source = NSX_SEL_INDICES;
        p.sel.k = s->topk;
        p.sel.dims = s->dims;
    }
    return p;
}

static int run_ref(tcase *t, const nsx_ref_opts *opts, nsx_ref_stats *st)
{
    nsx_err err = {0};
    int rc = nsx_ref_forward(&t->p, &t->in, &t->out, opts, st, &err);
    if (rc)
        fprintf(stderr, "nsx_ref_forward: %s\n", err.msg);
    return rc;
}

/* Bitwise equality of two binary64 arrays (NaN never expected). */
static void assert_same(const char *what, const char *name, const double *a, const double *b, size_t count)
{
    for (size_t x = 0; x < count; x++)
        ck_assert_msg(memcmp(&a[x], &b[x], sizeof a[x]) == 0,
                      "%s %s: element %zu: %.17g != %.17g (seed %u)", name, what, x, a[x], b[x], SEED);
}

/* ---- against independent formulas ---------------------------------------- */

static const spec n1_specs[] = {
    {"dense causal", 1, 1, 9, 2, 2, 5, 3, NSX_REDUCE_PRODUCT, 1, 0, {0}, {0}, {0}, 0, 0, 0, 0},
    {"window 3", 1, 1, 9, 1, 1, 4, 2, NSX_REDUCE_PRODUCT, 1, 0, {3}, {0}, {0}, 0, 0, 0, 0},
    {"causal off, window 2", 1, 2, 7, 1, 1, 3, 3, NSX_REDUCE_PRODUCT, 0, 0, {2}, {0}, {0}, 0, 0, 0, 0},
    {"causal off, dense", 1, 1, 6, 2, 1, 3, 2, NSX_REDUCE_PRODUCT, 0, 0, {0}, {0}, {0}, 0, 0, 0, 0},
    {"GQA 4:1, biases", 1, 1, 8, 4, 1, 4, 3, NSX_REDUCE_PRODUCT, 1, 0, {0}, {0.125}, {1}, 0, 0, 0, 0},
    {"scales", 1, 1, 7, 1, 1, 3, 2, NSX_REDUCE_SUM, 1, 0, {0}, {0}, {0}, -0.75, 1.5, 0, 0},
    {"selection", 1, 1, 10, 2, 1, 3, 2, NSX_REDUCE_PRODUCT, 1, 0, {0}, {0}, {0}, 0, 0, 3, 1},
    {"selection and window", 1, 1, 10, 1, 1, 3, 2, NSX_REDUCE_MEAN, 1, 0, {4}, {0}, {0}, 0, 0, 4, 1},
};

/* The reference equals an independent formula at high precision, bit for
   bit, on the problem s with random inputs (and a random given selection). */
typedef void (*hp_formula)(const tcase *t, const int32_t *sel, mpfr_prec_t prec, double *o, double *lse);

static void matches_independent(const spec *s, unsigned seed, hp_formula hp)
{
    nsx_problem p = problem_of(s);
    tcase t;
    rng r = {seed};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 4);
    if (p.sel.k)
        tcase_random_sel(&t, &r);
    ck_assert_int_eq(run_ref(&t, NULL, NULL), 0);
    double *o = calloc(nsx_o_size(&p), sizeof *o), *lse = calloc(nsx_lse_size(&p), sizeof *lse);
    hp(&t, t.sel, HP_PREC, o, lse);
    assert_same(s->name, "o", t.o, o, nsx_o_size(&p));
    assert_same(s->name, "lse", t.lse, lse, nsx_lse_size(&p));
    free(o);
    free(lse);
    tcase_free(&t);
}

START_TEST(n1_matches_plain_attention)
{
    matches_independent(&n1_specs[_i], SEED + (unsigned)_i, hp_attention_n1);
}
END_TEST

static const spec n2_specs[] = {
    {"dense causal", 2, 1, 7, 1, 1, 4, 3, NSX_REDUCE_PRODUCT, 1, 0, {0, 0}, {0}, {0}, 0, 0, 0, 0},
    {"windows w1 > w2", 2, 1, 8, 2, 1, 3, 2, NSX_REDUCE_PRODUCT, 1, 0, {5, 2}, {0}, {0}, 0, 0, 0, 0},
    {"windows w1 < w2", 2, 1, 8, 1, 1, 3, 2, NSX_REDUCE_PRODUCT, 1, 0, {2, 6}, {0}, {0}, 0, 0, 0, 0},
    {"w = 1 and w >= L", 2, 1, 6, 1, 1, 3, 2, NSX_REDUCE_PRODUCT, 1, 0, {1, 9}, {0}, {0}, 0, 0, 0, 0},
    {"causal off", 2, 1, 6, 1, 1, 3, 2, NSX_REDUCE_PRODUCT, 0, 0, {3, 0}, {0}, {0}, 0, 0, 0, 0},
    {"sum", 2, 1, 6, 2, 2, 3, 3, NSX_REDUCE_SUM, 1, 0, {0, 0}, {0}, {0}, 0, 0, 0, 0},
    {"mean", 2, 2, 6, 1, 1, 3, 3, NSX_REDUCE_MEAN, 1, 0, {0, 0}, {0}, {0}, 0, 0, 0, 0},
    {"distinct", 2, 1, 7, 1, 1, 3, 2, NSX_REDUCE_PRODUCT, 1, 1, {0, 0}, {0}, {0}, 0, 0, 0, 0},
    {"Meta biases k2 + 1/d, v2 + 1", 2, 1, 7, 2, 1, 4, 2, NSX_REDUCE_PRODUCT, 1, 0, {0, 0}, {0, 0.25}, {0, 1}, 0, 0, 0, 0},
    {"GQA 2:1", 2, 1, 6, 4, 2, 3, 2, NSX_REDUCE_PRODUCT, 1, 0, {0, 0}, {0}, {0}, 0, 0, 0, 0},
    {"selection on dim 2", 2, 1, 8, 1, 1, 3, 2, NSX_REDUCE_PRODUCT, 1, 0, {0, 0}, {0}, {0}, 0, 0, 3, 2},
    {"selection on both dims", 2, 1, 8, 1, 1, 3, 2, NSX_REDUCE_PRODUCT, 1, 0, {4, 0}, {0}, {0}, 0, 0, 4, 3},
    {"d = 5, irrational scale", 2, 1, 6, 1, 1, 5, 2, NSX_REDUCE_PRODUCT, 1, 0, {0, 0}, {0}, {0}, 0, 0, 0, 0},
};

START_TEST(n2_matches_einsum)
{
    matches_independent(&n2_specs[_i], SEED + 100 + (unsigned)_i, hp_attention_n2);
}
END_TEST

/* ---- symmetries and closed forms ----------------------------------------- */

/* (K1,V1) <-> (K2,V2) with equal windows: the same exact values, so the
   same correctly rounded outputs, for every order n (dims 1 and n swap). */
START_TEST(swapping_dimensions_changes_nothing)
{
    static const int orders[] = {2, 3, 4};
    int n = orders[_i];
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = n;
    p.L = n == 2 ? 7 : 5;
    p.H = 2;
    p.d = 3;
    p.dv = 2;
    for (int m = 0; m < n; m++)
        p.window[m] = 3;
    tcase a, b;
    rng r = {SEED + 200};
    tcase_alloc(&a, &p);
    tcase_alloc(&b, &p);
    tcase_fill(&a, &r, 8, 4);
    memcpy(b.q, a.q, nsx_q_size(&p) * sizeof *b.q);
    for (int m = 0; m < n; m++) {
        int from = m == 0 ? n - 1 : m == n - 1 ? 0 : m;
        memcpy(b.k[m], a.k[from], nsx_k_size(&p) * sizeof *b.k[m]);
        memcpy(b.v[m], a.v[from], nsx_v_size(&p) * sizeof *b.v[m]);
    }
    ck_assert_int_eq(run_ref(&a, NULL, NULL), 0);
    ck_assert_int_eq(run_ref(&b, NULL, NULL), 0);
    assert_same("swap", "o", a.o, b.o, nsx_o_size(&p));
    assert_same("swap", "lse", a.lse, b.lse, nsx_lse_size(&p));
    tcase_free(&a);
    tcase_free(&b);
}
END_TEST

/* All scores equal (q = 0): A = 1/N, so O is the mean of the reduced values
   over the allowed tuples, an exact rational rounded once. */
START_TEST(equal_scores_give_the_mean)
{
    static const int reduces[] = {NSX_REDUCE_PRODUCT, NSX_REDUCE_SUM, NSX_REDUCE_MEAN};
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 3;
    p.L = 5;
    p.d = 2;
    p.dv = 3;
    p.reduce = reduces[_i];
    p.window[0] = 2;
    tcase t;
    rng r = {SEED + 300 + (unsigned)_i};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 3);
    memset(t.q, 0, nsx_q_size(&p) * sizeof *t.q);
    ck_assert_int_eq(run_ref(&t, NULL, NULL), 0);

    mpq_t sum, w, f;
    mpq_inits(sum, w, f, NULL);
    mpfr_t x;
    mpfr_init2(x, 53);
    for (int i = 0; i < p.L; i++)
        for (int c = 0; c < p.dv; c++) {
            long count = 0;
            mpq_set_ui(sum, 0, 1);
            int J[3];
            for (J[0] = 0; J[0] < p.L; J[0]++)
                for (J[1] = 0; J[1] < p.L; J[1]++)
                    for (J[2] = 0; J[2] < p.L; J[2]++) {
                        if (!nsx_ref_allowed(&p, NULL, i, J))
                            continue;
                        mpq_set_ui(w, p.reduce == NSX_REDUCE_PRODUCT, 1);
                        for (int m = 0; m < 3; m++) {
                            mpq_set_d(f, t.v[m][nsx_v_at(&p, 0, J[m], 0, c)]);
                            if (p.reduce == NSX_REDUCE_PRODUCT)
                                mpq_mul(w, w, f);
                            else
                                mpq_add(w, w, f);
                        }
                        mpq_add(sum, sum, w);
                        count++;
                    }
            mpq_set_ui(f, (unsigned long)count * (p.reduce == NSX_REDUCE_MEAN ? 3 : 1), 1);
            mpq_div(sum, sum, f);
            mpfr_set_q(x, sum, MPFR_RNDN);
            double want = mpfr_get_d(x, MPFR_RNDN) + 0.0;
            ck_assert_msg(t.o[nsx_o_at(&p, 0, i, 0, c)] == want, "reduce %d, i %d, c %d: %.17g != %.17g",
                          p.reduce, i, c, t.o[nsx_o_at(&p, 0, i, 0, c)], want);
        }
    mpq_clears(sum, w, f, NULL);
    mpfr_clear(x);
    tcase_free(&t);
}
END_TEST

/* (E3, E4) the weights of every row sum to 1: a pass adds up Z, a second
   one the weights e_J / Z, whose enclosures' sum holds 1 and is no wider
   than a few units of 2^-p.  The passes see every allowed tuple once. */
typedef struct weight_sum {
    const ref_row *row;
    const ival *s, *Z;   /* Z: NULL in the first pass */
    ival *acc, *e, *a;
    mpfr_t D;
    size_t seen;
} weight_sum;

static void add_weight(void *arg, const int *J, mpfr_srcptr T)
{
    weight_sum *ws = arg;
    (void)J;
    ws->seen++;
    if (!ws->Z) {
        ref_slice_lse_add(ws->acc, ws->e, ws->D, T, ws->row, ws->s); /* Z */
        return;
    }
    ival Zdummy;
    ival_init(&Zdummy, mpfr_get_prec(ws->e->lo));
    ival_set_zero(&Zdummy);
    ref_slice_lse_add(&Zdummy, ws->e, ws->D, T, ws->row, ws->s); /* e_J */
    ival_div_pos(ws->a, ws->e, ws->Z);                          /* A_J = e_J / Z */
    ival_add(ws->acc, ws->acc, ws->a);
    ival_clear(&Zdummy);
}

START_TEST(softmax_weights_sum_to_one)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.L = 6;
    p.H = 2;
    p.d = 4;
    p.window[1] = 3;
    tcase t;
    rng r = {SEED + 400};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 2);
    nsx_err err;
    ref_ctx ctx;
    ref_row row;
    ref_row_init(&row);
    ck_assert_int_eq(ref_ctx_init(&ctx, &p, &t.in, NULL, &err), 0);
    mpfr_prec_t prec = 128;
    ival s, Z, e, a, sum;
    ival_init(&s, prec), ival_init(&Z, prec), ival_init(&e, prec), ival_init(&a, prec), ival_init(&sum, prec);
    for (int h = 0; h < p.H; h++)
        for (int i = 0; i < p.L; i++) {
            ck_assert_int_eq(ref_row_scan(&row, &ctx, 0, h, i, 1, &err), 0);
            ref_score_scale(&s, &p);
            weight_sum ws = {&row, &s, NULL, &Z, &e, &a, {{0}}, 0};
            mpfr_init2(ws.D, ctx.prec_T);
            ival_set_zero(&Z);
            ref_row_pass(&row, &ctx, add_weight, &ws);
            ck_assert_uint_eq(ws.seen, row.N);
            ws.Z = &Z;
            ws.acc = &sum;
            ws.seen = 0;
            ival_set_zero(&sum);
            ref_row_pass(&row, &ctx, add_weight, &ws);
            ck_assert_uint_eq(ws.seen, row.N);
            mpfr_clear(ws.D);
            ck_assert(mpfr_cmp_ui(sum.lo, 1) <= 0 && mpfr_cmp_ui(sum.hi, 1) >= 0);
            mpfr_sub(sum.hi, sum.hi, sum.lo, MPFR_RNDU);
            ck_assert(mpfr_cmp_d(sum.hi, ldexp(1.0, -120)) < 0);
        }
    ival_clear(&s), ival_clear(&Z), ival_clear(&e), ival_clear(&a), ival_clear(&sum);
    ref_row_clear(&row);
    ref_ctx_clear(&ctx);
    tcase_free(&t);
}
END_TEST

/* ---- the mask (E2) --------------------------------------------------------- */

typedef struct mask_case {
    const char *name;
    int n, L, causal, distinct, w1, w2, k, dims;
    int32_t sel[8];     /* S(i), the same list for every i */
    const char *table;  /* n = 1: L rows i of L chars j; n = 2: for each i, L rows j1 of L chars j2 */
} mask_case;

static const mask_case masks[] = {
    {"causal", 1, 4, 1, 0, 0, 0, 0, 0, {0}, "1000" "1100" "1110" "1111"},
    {"causal off", 1, 3, 0, 0, 0, 0, 0, 0, {0}, "111" "111" "111"},
    {"window 1", 1, 4, 1, 0, 1, 0, 0, 0, {0}, "1000" "0100" "0010" "0001"},
    {"window 2", 1, 4, 1, 0, 2, 0, 0, 0, {0}, "1000" "1100" "0110" "0011"},
    {"window >= L", 1, 3, 1, 0, 7, 0, 0, 0, {0}, "100" "110" "111"},
    {"window 2, causal off", 1, 4, 0, 0, 2, 0, 0, 0, {0}, "1100" "1110" "0111" "0011"},
    /* i + w overflowed int here (a hostile file may hold any w >= 0) */
    {"window INT_MAX, causal off", 1, 3, 0, 0, INT_MAX, 0, 0, 0, {0}, "111" "111" "111"},
    {"selection {1, 3}, -1 and L ignored", 1, 4, 1, 0, 0, 0, 4, 1, {3, -1, 1, 4}, "0000" "0100" "0100" "0101"},
    {"causal, w2 = 1", 2, 3, 1, 0, 0, 1, 0, 0, {0},
     "100" "000" "000"  "010" "010" "000"  "001" "001" "001"},
    {"distinct, causal", 2, 3, 1, 1, 0, 0, 0, 0, {0},
     "000" "000" "000"  "010" "100" "000"  "011" "101" "110"},
    {"selection on dim 1 only {0}", 2, 3, 1, 0, 0, 0, 1, 1, {0},
     "100" "000" "000"  "110" "000" "000"  "111" "000" "000"},
};

START_TEST(mask_truth_table)
{
    const mask_case *mc = &masks[_i];
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = mc->n;
    p.L = mc->L;
    p.causal = mc->causal;
    p.distinct = mc->distinct;
    p.window[0] = mc->w1;
    if (mc->n > 1)
        p.window[1] = mc->w2;
    if (mc->k) {
        p.sel.source = NSX_SEL_INDICES;
        p.sel.k = mc->k;
        p.sel.dims = (unsigned)mc->dims;
    }
    const char *cell = mc->table;
    int J[2];
    for (int i = 0; i < p.L; i++) {
        if (p.n == 1) {
            for (J[0] = 0; J[0] < p.L; J[0]++, cell++)
                ck_assert_msg(nsx_ref_allowed(&p, mc->sel, i, J) == (*cell == '1'), "%s: i %d, j %d", mc->name, i, J[0]);
        } else {
            for (J[0] = 0; J[0] < p.L; J[0]++)
                for (J[1] = 0; J[1] < p.L; J[1]++, cell++)
                    ck_assert_msg(nsx_ref_allowed(&p, mc->sel, i, J) == (*cell == '1'), "%s: i %d, J (%d, %d)",
                                  mc->name, i, J[0], J[1]);
        }
    }
}
END_TEST

/* core's slice (include/nsimplex/slice.h) against ref/mask.c, the spec's
   text: every tuple of every small problem (n <= 3, L <= 5) under every
   combination of causal, distinct, windows (0, 1, 2, L - 1, L, INT_MAX per
   dimension) and selections (none, or given rows with pads and
   out-of-range entries on every subset of dimensions).  The iterator must
   give exactly the allowed tuples, in order; the key ranges exactly the
   keys that causal and the window allow. */
/* NULL when core agrees with the spec on p, else what differs (no
   ck_assert in the loops: each one costs a system call in fork mode). */
static const char *slice_disagrees(const nsx_problem *p, const int32_t *sel, nsx_slice *z)
{
    for (int i = 0; i < p->L; i++) {
        const int32_t *row = sel ? sel + (size_t)i * p->sel.k : NULL;
        for (int m = 0; m < p->n; m++) {
            int lo, hi;
            nsx_key_range(p->L, p->causal, p->window[m], i, &lo, &hi);
            for (int j = 0; j < p->L; j++)
                if ((lo <= j && j <= hi) !=
                    (nsx_key_causal(p->causal, i, j) && nsx_key_window(p->causal, p->window[m], i, j)))
                    return "key range";
        }
        size_t product = nsx_slice_start(z, i, row), count = 0;
        int J[NSX_MAX_ORDER] = {0}, prev[NSX_MAX_ORDER] = {0};
        for (;;) {
            int spec = nsx_ref_allowed(p, row, i, J);
            if (nsx_slice_allowed(p, row, i, J) != spec)
                return "nsx_slice_allowed";
            if (spec) {
                if (!nsx_slice_next(z) || memcmp(z->J, J, (size_t)p->n * sizeof *J) != 0)
                    return "iterator: a tuple missing or out of order";
                for (int m = 0; count && m < z->moved; m++)
                    if (z->J[m] != prev[m])
                        return "iterator: moved too high";
                if (count && z->J[z->moved] == prev[z->moved])
                    return "iterator: moved too low";
                memcpy(prev, J, sizeof prev);
                count++;
            }
            int m = p->n - 1; /* the next tuple of {0..L-1}^n */
            while (m >= 0 && ++J[m] == p->L)
                J[m--] = 0;
            if (m < 0)
                break;
        }
        if (nsx_slice_next(z))
            return "iterator: a tuple too many";
        if (nsx_slice_bound(p, i) < count)
            return "nsx_slice_bound below the count";
        if (!p->distinct && product != count)
            return "nsx_slice_start's product";
        if (!p->distinct && p->sel.source == NSX_SEL_NONE && nsx_slice_bound(p, i) != count)
            return "nsx_slice_bound not exact";
    }
    return NULL;
}

START_TEST(core_slice_matches_the_spec_mask)
{
    const int n = 1 + _i;
    int32_t sel[5 * 2];
    for (int L = 1; L <= 5; L++) {
        const int ws[] = {0, 1, 2, L - 1, L, INT_MAX};
        const int nw = sizeof ws / sizeof ws[0];
        int combos = 1;
        for (int m = 0; m < n; m++)
            combos *= nw;
        for (int c = 0; c < combos; c++)
            for (int flags = 0; flags < 4; flags++)
                for (unsigned dims = 0; dims < 1u << n; dims++)
                    for (int pattern = 0; pattern < (dims ? 3 : 1); pattern++) {
                        nsx_problem p;
                        nsx_problem_defaults(&p);
                        p.n = n;
                        p.L = L;
                        p.causal = flags & 1;
                        p.distinct = flags >> 1;
                        for (int m = 0, x = c; m < n; m++, x /= nw)
                            p.window[m] = ws[x % nw];
                        if (dims) {
                            p.sel.source = NSX_SEL_INDICES;
                            p.sel.k = 2;
                            p.sel.dims = dims;
                            /* entries in -1..L: pads and an out-of-range index among them */
                            for (int i = 0; i < L; i++) {
                                sel[2 * i] = (i + pattern) % (L + 2) - 1;
                                sel[2 * i + 1] = (3 * i + 2 * pattern + 1) % (L + 2) - 1;
                            }
                        }
                        char why[128];
                        nsx_slice z;
                        if (nsx_problem_check(&p, why, sizeof why) || nsx_slice_init(&z, &p))
                            ck_abort_msg("%s", why);
                        const char *bad = slice_disagrees(&p, dims ? sel : NULL, &z);
                        nsx_slice_free(&z);
                        ck_assert_msg(!bad, "%s: n %d L %d causal %d distinct %d windows %d,%d,%d dims %u pattern %d",
                                      bad, n, L, p.causal, p.distinct, p.window[0], p.window[1], p.window[2], dims,
                                      pattern);
                    }
    }
}
END_TEST

/* ---- the selection (E8, E9) ------------------------------------------------ */

static nsx_problem scores_problem(int L, int k, int causal)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = L;
    p.causal = causal;
    p.sel.source = NSX_SEL_SCORES;
    p.sel.k = k;
    p.sel.dims = 1;
    return p;
}

static void select_ok(tcase *t)
{
    nsx_err err;
    int rc = nsx_ref_select(&t->p, &t->in, t->sel_out, NULL, NULL, NULL, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
}

START_TEST(topk_ties_go_to_the_smaller_key)
{
    /* query 5 sees keys 0..5 with scores 1 3 2 3 3 0: top-2 is {1, 3}
       (3 at keys 1, 3, 4: the smaller keys win) */
    nsx_problem p = scores_problem(6, 2, 1);
    tcase t;
    tcase_alloc(&t, &p);
    const double s[6] = {1, 3, 2, 3, 3, 0};
    for (int j = 0; j < 6; j++)
        t.idx_s[5 * 6 + j] = s[j];
    select_ok(&t);
    ck_assert_int_eq(t.sel_out[5 * 2 + 0], 1);
    ck_assert_int_eq(t.sel_out[5 * 2 + 1], 3);
    tcase_free(&t);
}
END_TEST

START_TEST(topk_short_rows_and_k_at_least_L)
{
    /* k = 3: query 1 has 2 causal keys -> {0, 1, -1}; k = L = 4 and k = 9 -> all causal keys */
    static const int ks[] = {3, 4, 9};
    int k = ks[_i];
    nsx_problem p = scores_problem(4, k, 1);
    tcase t;
    rng r = {SEED + 500};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 2);
    select_ok(&t);
    for (int i = 0; i < 4; i++)
        for (int x = 0; x < k; x++) {
            if (i >= k) /* only k = 3, query 3: the top 3 of 4 keys */
                continue;
            int want = x <= i ? x : -1;
            ck_assert_int_eq(t.sel_out[i * k + x], want);
        }
    tcase_free(&t);
}
END_TEST

START_TEST(topk_causal_off_considers_every_key)
{
    nsx_problem p = scores_problem(4, 1, 0);
    tcase t;
    tcase_alloc(&t, &p);
    for (int i = 0; i < 4; i++)
        t.idx_s[i * 4 + 3] = 1; /* the future key 3 has the best score */
    select_ok(&t);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(t.sel_out[i], 3);
    tcase_free(&t);
}
END_TEST

/* relu indexer: S[i,j] = sum_h w_h max(0, s <qI_h, kI_j>) recomputed here */
START_TEST(relu_indexer_scores_and_choice)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 7;
    p.sel = (nsx_selection){NSX_SEL_INDEXER, 3, 1, NSX_ACT_RELU, 0.5, 2, 3};
    tcase t;
    rng r = {SEED + 600};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 6, 2);
    nsx_err err;
    ck_assert_int_eq(nsx_ref_select(&p, &t.in, t.sel_out, t.sel_scores, NULL, NULL, &err), 0);
    for (int i = 0; i < p.L; i++) {
        double S[7];
        for (int j = 0; j < p.L; j++) {
            double sum = 0; /* small dyadic values: every step below is exact in binary64 */
            for (int h = 0; h < 2; h++) {
                double x = 0;
                for (int l = 0; l < 3; l++)
                    x += t.idx_q[(i * 2 + h) * 3 + l] * t.idx_k[j * 3 + l];
                x *= 0.5;
                sum += t.idx_w[i * 2 + h] * (x > 0 ? x : 0);
            }
            S[j] = j <= i ? sum : -INFINITY;
            ck_assert_msg(t.sel_scores[i * 7 + j] == S[j], "i %d j %d", i, j);
        }
        /* the chosen keys: none outside beats one inside */
        for (int x = 0; x < 3 && x <= i; x++) {
            int a = t.sel_out[i * 3 + x];
            ck_assert(a >= 0 && a <= i);
            for (int j = 0; j <= i; j++) {
                int in = 0;
                for (int y = 0; y < 3; y++)
                    in |= t.sel_out[i * 3 + y] == j;
                if (!in)
                    ck_assert(S[j] < S[a] || (S[j] == S[a] && j > a));
            }
        }
    }
    tcase_free(&t);
}
END_TEST

/* idx_scale = 0: every logit is 0, every relu score 0, the top-k the
   smallest candidate keys.  The reference's precision analysis sized the
   logit's accumulator from the scaled (empty) range and aborted on the
   first inexact sum (found by fuzz/targets/vector.c). */
START_TEST(zero_idx_scale_ties_everything)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 6;
    p.sel = (nsx_selection){NSX_SEL_INDEXER, 2, 1, NSX_ACT_RELU, 0.0, 2, 4};
    tcase t;
    rng r = {SEED + 650};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 3);
    nsx_err err;
    ck_assert_int_eq(nsx_ref_select(&p, &t.in, t.sel_out, t.sel_scores, NULL, NULL, &err), 0);
    for (int i = 0; i < p.L; i++) {
        for (int j = 0; j < p.L; j++)
            ck_assert(t.sel_scores[i * p.L + j] == (j <= i ? 0.0 : -INFINITY));
        ck_assert_int_eq(t.sel_out[i * 2], 0);
        ck_assert_int_eq(t.sel_out[i * 2 + 1], i >= 1 ? 1 : -1);
    }
    tcase_free(&t);
}
END_TEST

/* softmax indexer with duplicated keys: exact ties, decided toward the
   smaller key although the scores are transcendental */
START_TEST(softmax_indexer_ties)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 6;
    p.sel = (nsx_selection){NSX_SEL_INDEXER, 2, 1, NSX_ACT_SOFTMAX, 1.0, 2, 2};
    tcase t;
    rng r = {SEED + 700};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 6, 2);
    for (int i = 0; i < p.L; i++)
        for (int h = 0; h < 2; h++)
            t.idx_w[i * 2 + h] = 1;
    /* keys 1, 2 and 4 are the same and the best */
    for (int l = 0; l < 2; l++) {
        t.idx_k[1 * 2 + l] = t.idx_k[2 * 2 + l] = t.idx_k[4 * 2 + l] = 4;
        t.idx_k[0 * 2 + l] = t.idx_k[3 * 2 + l] = t.idx_k[5 * 2 + l] = -4;
    }
    for (size_t x = 0; x < (size_t)p.L * 2 * 2; x++)
        t.idx_q[x] = 1;
    nsx_err err;
    ck_assert_int_eq(nsx_ref_select(&p, &t.in, t.sel_out, t.sel_scores, NULL, NULL, &err), 0);
    ck_assert_int_eq(t.sel_out[5 * 2 + 0], 1);
    ck_assert_int_eq(t.sel_out[5 * 2 + 1], 2);
    ck_assert_int_eq(t.sel_out[2 * 2 + 0], 1);
    ck_assert_int_eq(t.sel_out[2 * 2 + 1], 2);
    /* query 0 has one candidate: weight 1 per head, score 2 exactly */
    ck_assert(t.sel_scores[0] == 2.0);
    tcase_free(&t);
}
END_TEST

/* ---- edge values ------------------------------------------------------------ */

static void fill_scaled(tcase *t, rng *r, double scale_q, double scale_k, double scale_v)
{
    const nsx_problem *p = &t->p;
    for (size_t x = 0; x < nsx_q_size(p); x++)
        t->q[x] = rng_dyadic(r, 8, 4) * scale_q;
    for (int m = 0; m < p->n; m++) {
        for (size_t x = 0; x < nsx_k_size(p); x++)
            t->k[m][x] = rng_dyadic(r, 8, 4) * scale_k;
        for (size_t x = 0; x < nsx_v_size(p); x++)
            t->v[m][x] = rng_dyadic(r, 8, 4) * scale_v;
    }
}

/* q, k and v scaled by powers of two (exact): huge scores (one-hot), tiny
   scores, subnormal values, values near the binary64 limit; compared with
   the einsum at high precision. */
START_TEST(edge_magnitudes_match_einsum)
{
    static const double scales[][3] = {
        {0x1p100, 0x1p100, 1},         /* scores ~ 2^300: one-hot softmax */
        {0x1p-300, 0x1p-300, 1},       /* scores ~ 2^-900: uniform softmax */
        {1, 1, 0x1p-1060},             /* subnormal values and outputs */
        {1, 1, 0x1p1000},              /* outputs near the binary64 limit */
        {0x1p300, 0x1p300, 0x1p-1000}, /* both at once */
    };
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.L = 6;
    p.d = 3;
    p.dv = 2;
    p.window[0] = 4;
    tcase t;
    rng r = {SEED + 800 + (unsigned)_i};
    tcase_alloc(&t, &p);
    fill_scaled(&t, &r, scales[_i][0], scales[_i][1], scales[_i][2]);
    ck_assert_int_eq(run_ref(&t, NULL, NULL), 0);
    double *o = calloc(nsx_o_size(&p), sizeof *o), *lse = calloc(nsx_lse_size(&p), sizeof *lse);
    hp_attention_n2(&t, NULL, 4000, o, lse);
    assert_same("edge", "o", t.o, o, nsx_o_size(&p));
    assert_same("edge", "lse", t.lse, lse, nsx_lse_size(&p));
    free(o);
    free(lse);
    tcase_free(&t);
}
END_TEST

START_TEST(zero_values_give_exact_zeros)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.L = 5;
    p.d = 3;
    tcase t;
    rng r = {SEED + 900};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 4);
    for (int m = 0; m < 2; m++)
        memset(t.v[m], 0, nsx_v_size(&p) * sizeof *t.v[m]);
    ck_assert_int_eq(run_ref(&t, NULL, NULL), 0);
    for (size_t x = 0; x < nsx_o_size(&p); x++)
        ck_assert(t.o[x] == 0 && !signbit(t.o[x]));
    tcase_free(&t);
}
END_TEST

START_TEST(empty_slices_give_zero_and_minus_infinity)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.L = 4;
    p.d = 2;
    p.dv = 2;
    p.distinct = 1; /* query 0: (0, 0) only, not distinct: empty */
    p.sel = (nsx_selection){NSX_SEL_INDICES, 2, 2, 0, 0, 0, 0};
    tcase t;
    rng r = {SEED + 1000};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 4);
    for (size_t x = 0; x < nsx_sel_size(&p); x++)
        t.sel[x] = -1; /* query 3: all pads: empty */
    t.sel[1 * 2] = 0;  /* query 1: (1, 0) */
    t.sel[2 * 2] = 1;  /* query 2: (0, 1), (2, 1) */
    ck_assert_int_eq(run_ref(&t, NULL, NULL), 0);
    const int empty[4] = {1, 0, 0, 1};
    for (int i = 0; i < 4; i++) {
        ck_assert(isinf(t.lse[i]) == (empty[i] ? -1 : 0));
        for (int c = 0; c < 2; c++)
            ck_assert(!isnan(t.o[i * 2 + c]) && (!empty[i] || t.o[i * 2 + c] == 0));
    }
    tcase_free(&t);
}
END_TEST

/* ---- correct rounding -------------------------------------------------------- */

/* For a random sample, recomputation from a far higher starting precision
   rounds to the same binary64 values. */
START_TEST(far_higher_precision_rounds_the_same)
{
    static const spec sample[] = {
        {"n3 windows", 3, 1, 6, 2, 1, 3, 3, NSX_REDUCE_PRODUCT, 1, 0, {3, 2}, {0}, {0}, 0, 0, 0, 0},
        {"n2 mean, biases", 2, 1, 8, 1, 1, 5, 2, NSX_REDUCE_MEAN, 1, 0, {0, 0}, {0.5, 0.25}, {1, -1}, 0, 0, 0, 0},
        {"n1 causal off", 1, 2, 9, 2, 1, 7, 4, NSX_REDUCE_PRODUCT, 0, 0, {0}, {0}, {0}, 0, 0, 0, 0},
    };
    const spec *s = &sample[_i];
    nsx_problem p = problem_of(s);
    tcase a, b;
    rng r = {SEED + 1100 + (unsigned)_i};
    tcase_alloc(&a, &p);
    tcase_alloc(&b, &p);
    tcase_fill(&a, &r, 8, 4);
    memcpy(b.q, a.q, nsx_q_size(&p) * sizeof *b.q);
    for (int m = 0; m < p.n; m++) {
        memcpy(b.k[m], a.k[m], nsx_k_size(&p) * sizeof *b.k[m]);
        memcpy(b.v[m], a.v[m], nsx_v_size(&p) * sizeof *b.v[m]);
    }
    nsx_ref_opts hi = {.prec0 = 6000, .prec_cap = 1 << 16};
    ck_assert_int_eq(run_ref(&a, NULL, NULL), 0);
    ck_assert_int_eq(run_ref(&b, &hi, NULL), 0);
    assert_same(s->name, "o", a.o, b.o, nsx_o_size(&p));
    assert_same(s->name, "lse", a.lse, b.lse, nsx_lse_size(&p));
    tcase_free(&a);
    tcase_free(&b);
}
END_TEST

/* Exact outputs that are midpoints between two binary64 numbers round to
   even, and rows whose groups cancel exactly give +0: enclosures alone
   would never decide these (the weights 1/3 and e^-1 are inexact). */
START_TEST(exact_midpoints_and_cancellation)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 4;
    p.dv = 2;
    tcase t;
    tcase_alloc(&t, &p);
    /* query 2, q = 0: equal scores over keys 0, 1, 2; c = 0: the mean of
       1 + 2^-52, 1 + 2^-52, 1 - 2^-53 is the midpoint 1 + 2^-53 -> 1 */
    t.v[0][0 * 2 + 0] = t.v[0][1 * 2 + 0] = 1 + 0x1p-52, t.v[0][2 * 2 + 0] = 1 - 0x1p-53;
    t.v[0][0 * 2 + 1] = t.v[0][1 * 2 + 1] = t.v[0][2 * 2 + 1] = 1 + 0x1p-52;
    /* query 3, q = 1: keys 0 and 1 score 1, key 2 scores 2, key 3 scores 3;
       c = 0 of query 3 is 1, -1, 0, 0 with the values below */
    t.q[3] = 1;
    t.k[0][0] = t.k[0][1] = 1, t.k[0][2] = 2, t.k[0][3] = 3;
    nsx_ref_stats st = {0};
    ck_assert_int_eq(run_ref(&t, NULL, &st), 0);
    ck_assert(t.o[2 * 2 + 0] == 1.0);
    ck_assert(t.o[2 * 2 + 1] == 1 + 0x1p-52);
    ck_assert_uint_ge(st.exact, 1);
    t.v[0][0 * 2 + 0] = 1, t.v[0][1 * 2 + 0] = -1, t.v[0][2 * 2 + 0] = t.v[0][3 * 2 + 0] = 0;
    ck_assert_int_eq(run_ref(&t, NULL, &st), 0);
    ck_assert(t.o[3 * 2 + 0] == 0 && !signbit(t.o[3 * 2 + 0]));
    ck_assert_uint_ge(st.exact, 1);
    tcase_free(&t);
}
END_TEST

/* A single allowed tuple (query 0, causal) whose score is exactly the
   midpoint 1 + 2^-53: LSE = T rounds to even, 1.0, for a binary64 scale
   and for s = 1/sqrt(4). */
START_TEST(single_tuple_lse_midpoint)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 2;
    p.d = _i == 0 ? 2 : 4;
    if (_i == 0) {
        p.score_scale_rsqrt_d = 0;
        p.score_scale = 1.0;
    }
    tcase t;
    tcase_alloc(&t, &p);
    /* T_raw = 1 * 1 + 2^-53 * 1 (times 2 for s = 1/2) */
    double f = _i == 0 ? 1 : 2;
    t.q[0] = f, t.q[1] = f * 0x1p-53;
    t.k[0][0] = t.k[0][1] = 1;
    nsx_ref_stats st = {0};
    ck_assert_int_eq(run_ref(&t, NULL, &st), 0);
    ck_assert_msg(t.lse[0] == 1.0, "%a", t.lse[0]);
    ck_assert_uint_ge(st.exact, 1);
    tcase_free(&t);
}
END_TEST

/* The binary64 score scale is RN(1/sqrt(d)), not 1.0 / sqrt(d) rounded twice. */
START_TEST(score_scale_is_correctly_rounded)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.d = 8;
    ck_assert(nsx_problem_score_scale(&p) == 0x1.6a09e667f3bcdp-2);
    p.d = 64;
    ck_assert(nsx_problem_score_scale(&p) == 0.125);
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

START_TEST(bad_inputs_are_reported)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.L = 4;
    p.d = 2;
    tcase t;
    rng r = {SEED + 1200};
    tcase_alloc(&t, &p);
    tcase_fill(&t, &r, 8, 4);
    nsx_err err;
    /* a NaN at a future position: read only by later rows */
    t.k[1][nsx_k_at(&p, 0, 2, 0, 1)] = NAN;
    ck_assert_int_eq(nsx_ref_forward(&p, &t.in, &t.out, NULL, NULL, &err), NSX_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "query 2"));
    nsx_ref_opts allow = {.allow_nonfinite = 1};
    nsx_ref_stats st = {0};
    ck_assert_int_eq(nsx_ref_forward(&p, &t.in, &t.out, &allow, &st, &err), 0);
    ck_assert(!isnan(t.o[0]) && !isnan(t.o[1]) && isnan(t.o[2]) && isnan(t.o[3]));
    ck_assert_uint_eq(st.nonfinite_rows, 2);
    /* a precision cap too low to decide anything */
    t.k[1][nsx_k_at(&p, 0, 2, 0, 1)] = 0.5;
    nsx_ref_opts low = {.prec0 = 8, .prec_cap = 12};
    ck_assert_int_eq(nsx_ref_forward(&p, &t.in, &t.out, &low, NULL, &err), NSX_E_PRECISION_CAP);
    ck_assert_ptr_nonnull(strstr(err.msg, "precision cap"));
    tcase_free(&t);
}
END_TEST

START_TEST(duplicate_given_index_is_bad_input)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 4;
    p.sel = (nsx_selection){NSX_SEL_INDICES, 2, 1, 0, 0, 0, 0};
    tcase t;
    tcase_alloc(&t, &p);
    t.sel[3 * 2 + 0] = t.sel[3 * 2 + 1] = 2;
    nsx_err err;
    ck_assert_int_eq(nsx_ref_forward(&p, &t.in, &t.out, NULL, NULL, &err), NSX_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    tcase_free(&t);
}
END_TEST

/* ---- exact helpers ------------------------------------------------------------- */

/* RN(num / den) through round-to-odd agrees with MPFR's own rounding of the
   exact rational at 53 bits (normal range) and with the subnormal grid. */
START_TEST(round_ratio_is_correct)
{
    mpfr_t num, x;
    mpfr_inits2(200, num, x, (mpfr_ptr)0);
    mpq_t q;
    mpq_init(q);
    rng r = {SEED + 1300};
    for (int t = 0; t < 2000; t++) {
        unsigned long den = (unsigned long)rng_int(&r, 1, 1000);
        mpfr_set_d(num, rng_dyadic(&r, 30, 10), MPFR_RNDN);
        mpfr_mul_2si(num, num, rng_int(&r, -40, 40), MPFR_RNDN);
        mpfr_get_q(q, num);
        mpq_div_2exp(q, q, 0);
        mpz_mul_ui(mpq_denref(q), mpq_denref(q), den);
        mpq_canonicalize(q);
        mpfr_set_prec(x, 53);
        mpfr_set_q(x, q, MPFR_RNDN);
        double want = mpfr_get_d(x, MPFR_RNDN) + 0.0;
        ck_assert_msg(ref_round_ratio(num, den) == want, "trial %d", t);
    }
    /* subnormal: (2^-1074 * 3) / 2 = 1.5 ulp -> ties to even -> 2 ulp */
    mpfr_set_d(num, 3 * 0x1p-1074, MPFR_RNDN);
    ck_assert(ref_round_ratio(num, 2) == 2 * 0x1p-1074);
    /* just above the tie: (2^-1074 * 3 + 2^-1100) / 2 -> 2 ulp; 5/4 ulp -> 1 ulp */
    mpfr_set_d(num, 5 * 0x1p-1074, MPFR_RNDN);
    ck_assert(ref_round_ratio(num, 4) == 0x1p-1074);
    mpq_clear(q);
    mpfr_clears(num, x, (mpfr_ptr)0);
}
END_TEST

/* A row of two tuples with raw scores 1 and 2^-10, held at precision prec,
   through E3 with s = 1: T_raw_J - M needs 11 bits. */
static void two_tuple_lse(mpfr_prec_t prec, ival *lse)
{
    ref_row row;
    ref_row_init(&row);
    row.N = 2;
    mpfr_t T[2], D;
    ival e, Z, s;
    mpfr_init2(D, prec); /* the scratch of T_raw_J - M, at the scores' precision */
    for (int t = 0; t < 2; t++)
        mpfr_init2(T[t], prec);
    mpfr_set_ui(T[0], 1, MPFR_RNDN);
    mpfr_set_ui_2exp(T[1], 1, -10, MPFR_RNDN);
    mpfr_set_prec(row.M, prec);
    mpfr_set(row.M, T[0], MPFR_RNDN); /* the maximal score for s = 1 */
    ival_init(&e, 64);
    ival_init(&Z, 64);
    ival_init(&s, 64);
    ival_set_ui(&s, 1);
    ival_set_zero(&Z);
    for (int t = 0; t < 2; t++)
        ref_slice_lse_add(&Z, &e, D, T[t], &row, &s);
    ref_slice_lse(lse, &Z, &row, &s);
    for (int t = 0; t < 2; t++)
        mpfr_clear(T[t]);
    mpfr_clear(D);
    ival_clear(&e);
    ival_clear(&Z);
    ival_clear(&s);
    ref_row_clear(&row);
}

/* (E3) at the precision the differences need: LSE = log(e + e^(2^-10)). */
START_TEST(slice_lse_difference_is_exact)
{
    ival lse;
    ival_init(&lse, 64);
    two_tuple_lse(11, &lse);
    double want = log(exp(1.0) + exp(0x1p-10));
    ck_assert(mpfr_cmp_d(lse.lo, want * (1 + 0x1p-50)) <= 0 && mpfr_cmp_d(lse.hi, want * (1 - 0x1p-50)) >= 0);
    ival_clear(&lse);
}
END_TEST

/* The same row held at 2 bits: T_raw_J - M is not exact there, and the
   reference must stop (abort) as every other exact operation does, never
   pass an inexact difference on. */
START_TEST(slice_lse_inexact_difference_aborts)
{
    ival lse;
    ival_init(&lse, 64);
    two_tuple_lse(2, &lse);
    ival_clear(&lse);
}
END_TEST

/* The enclosure preconditions are asserted (MPFR's style): a division by
   an enclosure that reaches 0, the log of one that reaches 0, an operand
   that is not an enclosure (lo > hi), and ref_round_ratio by 0 abort. */
START_TEST(enclosure_preconditions_abort)
{
    ival a, z;
    ival_init(&a, 64);
    ival_init(&z, 64);
    ival_set_ui(&a, 1);
    mpfr_set_zero(z.lo, 1);
    mpfr_set_ui(z.hi, 1, MPFR_RNDN);
    switch (_i) {
    case 0:
        ival_div_pos(&a, &a, &z); /* z.lo = 0 */
        break;
    case 1:
        ival_log(&a, &z); /* z.lo = 0 */
        break;
    case 2:
        mpfr_set_ui(z.lo, 2, MPFR_RNDN); /* [2, 1] encloses nothing */
        ival_exp(&a, &z);
        break;
    default:
        ref_round_ratio(a.lo, 0);
        break;
    }
    ival_clear(&a);
    ival_clear(&z);
}
END_TEST

static Suite *ref_suite(void)
{
    Suite *s = suite_create("ref");
    TCase *tc = tcase_create("independent formulas");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, n1_matches_plain_attention, 0, sizeof n1_specs / sizeof n1_specs[0]);
    tcase_add_loop_test(tc, n2_matches_einsum, 0, sizeof n2_specs / sizeof n2_specs[0]);
    tcase_add_loop_test(tc, edge_magnitudes_match_einsum, 0, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("properties");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, swapping_dimensions_changes_nothing, 0, 3);
    tcase_add_loop_test(tc, equal_scores_give_the_mean, 0, 3);
    tcase_add_test(tc, softmax_weights_sum_to_one);
    tcase_add_test(tc, zero_values_give_exact_zeros);
    tcase_add_test(tc, empty_slices_give_zero_and_minus_infinity);
    suite_add_tcase(s, tc);

    tc = tcase_create("masks");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, mask_truth_table, 0, sizeof masks / sizeof masks[0]);
    tcase_add_loop_test(tc, core_slice_matches_the_spec_mask, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("selection");
    tcase_add_test(tc, topk_ties_go_to_the_smaller_key);
    tcase_add_loop_test(tc, topk_short_rows_and_k_at_least_L, 0, 3);
    tcase_add_test(tc, topk_causal_off_considers_every_key);
    tcase_add_test(tc, relu_indexer_scores_and_choice);
    tcase_add_test(tc, zero_idx_scale_ties_everything);
    tcase_add_test(tc, softmax_indexer_ties);
    suite_add_tcase(s, tc);

    tc = tcase_create("rounding");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, far_higher_precision_rounds_the_same, 0, 3);
    tcase_add_test(tc, exact_midpoints_and_cancellation);
    tcase_add_loop_test(tc, single_tuple_lse_midpoint, 0, 2);
    tcase_add_test(tc, score_scale_is_correctly_rounded);
    tcase_add_test(tc, round_ratio_is_correct);
    tcase_add_test(tc, slice_lse_difference_is_exact);
    tcase_add_test_raise_signal(tc, slice_lse_inexact_difference_aborts, SIGABRT);
    tcase_add_loop_test_raise_signal(tc, enclosure_preconditions_abort, SIGABRT, 0, 4);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, bad_inputs_are_reported);
    tcase_add_test(tc, duplicate_given_index_is_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ref_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
