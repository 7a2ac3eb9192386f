/*
 * The fast certified path (ref/fast.c) against MPFR (opts.fast = 0), bit for
 * bit: every committed vector of the default suite, and thousands of
 * random rows over every feature (n = 1..8, reducers, biases, windows,
 * causal off, distinct, given selections, GQA, batches, scales, near ties,
 * huge and subnormal values, exact cases).  The fallback is exercised by a
 * constructed hard case (an exact midpoint) and by the bound-shift hook
 * that leaves rows undecided.  fast_exp and fast_log_shift are checked
 * against MPFR, and every ISA table of the hot loops this CPU runs against
 * the scalar one.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpfr.h>

#include "cli_run.h"
#include "harness.h"
#include "io/casefile.h"
#include "nsimplex/ref.h"
#include "ref/exact.h"
#include "ref/fast.h"
#include "ref/fast_cos.h"
#include "ref/fast_exp.h"
#include "ref/fast_kern.h"
#include "ref/internal.h"
#include "vectors/suites.h"
#include "tests/env.h"

#define SEED 20261206u

static int same_bits(const double *a, const double *b, size_t count, size_t *at)
{
    for (size_t x = 0; x < count; x++)
        if (memcmp(&a[x], &b[x], sizeof a[x]) != 0) {
            *at = x;
            return 0;
        }
    return 1;
}

/* Runs the reference on t with opts, into o and lse; the stats into st. */
static void run_into(tcase *t, const nsx_ref_opts *opts, double *o, double *lse, nsx_ref_stats *st)
{
    nsx_err err = {0};
    nsx_outputs out = {.o = o, .lse = lse};
    int rc = nsx_ref_forward(&t->p, &t->in, &out, opts, st, &err);
    ck_assert_msg(rc == 0, "nsx_ref_forward: %s (seed %u)", err.msg, SEED);
}

/* fast and MPFR on t, bit for bit; adds the fast run's stats to tot.
   Where MPFR reaches its precision cap (extreme scores), the fast path
   must report the same. */
static void assert_fast_is_mpfr(tcase *t, int shift, nsx_ref_stats *tot, const char *what)
{
    const nsx_problem *p = &t->p;
    size_t no = nsx_o_size(p), nl = nsx_lse_size(p);
    double *o1 = calloc(no, sizeof *o1), *l1 = calloc(nl, sizeof *l1);
    double *o2 = calloc(no, sizeof *o2), *l2 = calloc(nl, sizeof *l2);
    nsx_ref_opts exact = {.prec_cap = 4096}, fast = {.prec_cap = 4096, .fast = 1, .threads = 2,
                                                     .fast_bound_shift = shift};
    nsx_ref_stats st = {0};
    nsx_err err = {0};
    nsx_outputs out1 = {.o = o1, .lse = l1}, out2 = {.o = o2, .lse = l2};
    int rc1 = nsx_ref_forward(p, &t->in, &out1, &exact, NULL, &err);
    ck_assert_msg(rc1 == 0 || rc1 == NSX_E_PRECISION_CAP, "%s: %s (seed %u)", what, err.msg, SEED);
    int rc2 = nsx_ref_forward(p, &t->in, &out2, &fast, &st, &err);
    ck_assert_msg(rc2 == rc1, "%s: MPFR %d, fast %d: %s (seed %u)", what, rc1, rc2, err.msg, SEED);
    if (rc1) {
        tot->mpfr_rows++;
        free(o1), free(l1), free(o2), free(l2);
        return;
    }
    size_t at = 0;
    ck_assert_msg(same_bits(o1, o2, no, &at), "%s: o[%zu]: MPFR %a, fast %a (n %d, seed %u)", what, at,
                  o1[at], o2[at], p->n, SEED);
    ck_assert_msg(same_bits(l1, l2, nl, &at), "%s: lse[%zu]: MPFR %a, fast %a (n %d, seed %u)", what, at,
                  l1[at], l2[at], p->n, SEED);
    ck_assert(st.fast_values + st.mpfr_values == st.values);
    tot->values += st.values;
    tot->fast_values += st.fast_values;
    tot->mpfr_values += st.mpfr_values;
    tot->fast_rows += st.fast_rows;
    tot->mpfr_rows += st.mpfr_rows;
    tot->fast_tuples += st.fast_tuples;
    free(o1), free(l1), free(o2), free(l2);
}

/* ---- every committed vector ---- */

START_TEST(every_golden_vector)
{
    const nsx_suite *s = nsx_suite_find("default");
    nsx_ref_stats tot = {0};
    for (size_t ci = 0; ci < s->count; ci++) {
        char path[512];
        nsx_case c;
        nsx_err err = {0};
        snprintf(path, sizeof path, "vectors/default/%s.safetensors", s->cases[ci].name);
        ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
        const nsx_problem *p = &c.p;
        unsigned char *skip = malloc((size_t)p->B * p->L);
        nsx_pairs_unjudged(p, c.info.pairs, c.info.npairs, skip);
        size_t no = nsx_o_size(p), nl = nsx_lse_size(p);
        double *o1 = calloc(no, sizeof *o1), *l1 = calloc(nl, sizeof *l1);
        double *o2 = calloc(no, sizeof *o2), *l2 = calloc(nl, sizeof *l2);
        nsx_outputs out1 = {.o = o1, .lse = l1}, out2 = {.o = o2, .lse = l2};
        nsx_ref_opts exact = {.skip = skip}, fast = {.skip = skip, .fast = 1};
        nsx_ref_stats st = {0};
        ck_assert_msg(nsx_ref_forward(p, &c.in, &out1, &exact, NULL, &err) == 0, "%s: %s", path, err.msg);
        ck_assert_msg(nsx_ref_forward(p, &c.in, &out2, &fast, &st, &err) == 0, "%s: %s", path, err.msg);
        size_t at = 0;
        ck_assert_msg(same_bits(o1, o2, no, &at), "%s: o[%zu]: MPFR %a, fast %a", path, at, o1[at], o2[at]);
        ck_assert_msg(same_bits(l1, l2, nl, &at), "%s: lse[%zu]: MPFR %a, fast %a", path, at, l1[at], l2[at]);
        /* and the committed expected values (files without leak pairs,
           whose unjudged rows are not computed) */
        if (!c.info.npairs) {
            ck_assert_msg(same_bits(o2, c.expected.o, no, &at), "%s: o[%zu] differs from the file", path, at);
            ck_assert_msg(same_bits(l2, c.expected.lse, nl, &at), "%s: lse[%zu] differs from the file", path, at);
        }
        tot.fast_values += st.fast_values;
        tot.mpfr_values += st.mpfr_values;
        free(o1), free(l1), free(o2), free(l2), free(skip);
        nsx_case_free(&c);
    }
    /* most values are decided fast; the exact cases go to MPFR */
    ck_assert_msg(tot.fast_values > 10 * tot.mpfr_values, "fast %llu, MPFR %llu",
                  (unsigned long long)tot.fast_values, (unsigned long long)tot.mpfr_values);
    ck_assert(tot.mpfr_values > 0);
}
END_TEST

/* ---- random rows over every feature ---- */

enum style { PLAIN, WIDE, TIES, HUGE, TINY, EXACT, NSTYLES };

/* A random problem of order n, small enough for MPFR, with inputs of the
   given style. */
static void random_case(tcase *t, rng *r, int n, int style)
{
    static const int maxL[NSX_MAX_ORDER + 1] = {0, 20, 9, 6, 4, 3, 3, 3, 3};
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = n;
    p.L = rng_int(r, 1, maxL[n]);
    p.B = rng_int(r, 1, 2);
    p.Hkv = rng_int(r, 1, 2);
    p.H = p.Hkv * rng_int(r, 1, 2);
    p.d = rng_int(r, 1, 20);
    p.dv = rng_int(r, 1, 5);
    p.reduce = rng_int(r, 0, 2);
    p.causal = rng_int(r, 0, 3) != 0;
    p.distinct = n > 1 && rng_int(r, 0, 4) == 0;
    for (int m = 0; m < n; m++) {
        p.window[m] = rng_int(r, 0, 2) == 0 ? rng_int(r, 1, p.L + 1) : 0;
        p.k_bias[m] = rng_int(r, 0, 3) == 0 ? rng_dyadic(r, 6, 3) : 0;
        p.v_bias[m] = rng_int(r, 0, 3) == 0 ? rng_dyadic(r, 6, 3) : 0;
    }
    switch (rng_int(r, 0, 4)) {
    case 0:
        p.score_scale_rsqrt_d = 0;
        p.score_scale = rng_dyadic(r, 10, 8); /* either sign, or 0 */
        break;
    case 1:
        p.out_scale = rng_dyadic(r, 10, 6);
        break;
    default:
        break; /* 1/sqrt(d), out_scale 1 */
    }
    if (rng_int(r, 0, 3) == 0) {
        p.sel.source = NSX_SEL_INDICES;
        p.sel.k = rng_int(r, 1, p.L + 1);
        p.sel.dims = (unsigned)rng_int(r, 1, (1 << n) - 1);
    }
    tcase_alloc(t, &p);
    tcase_fill(t, r, style == WIDE ? 30 : 8, style == WIDE ? 20 : 4);
    size_t nq = nsx_q_size(&p), nk = nsx_k_size(&p), nv = nsx_v_size(&p);
    for (int m = 0; m < n; m++)
        for (size_t x = 0; x < nk; x++) {
            if (style == TIES) /* few distinct key rows: equal scores */
                t->k[m][x] = t->k[m][x % (size_t)p.d];
            if (style == HUGE)
                t->k[m][x] = ldexp(t->k[m][x], rng_int(r, 0, 2));
            if (style == TINY)
                t->k[m][x] = ldexp(t->k[m][x], -rng_int(r, 0, 40));
        }
    for (int m = 0; m < n; m++)
        for (size_t x = 0; x < nv; x++) {
            if (style == HUGE)
                t->v[m][x] = ldexp(t->v[m][x], 900 / n);
            if (style == TINY) /* products down to the subnormal range */
                t->v[m][x] = ldexp(t->v[m][x], -1060 / n);
            if (style == EXACT) /* constant, or a midpoint's halves */
                t->v[m][x] = (x & 1) ? 1 + 0x1p-52 : 1;
        }
    if (style == EXACT || style == TIES)
        for (size_t x = 0; x < nq; x++)
            t->q[x] = style == EXACT ? 0 : t->q[x];
    if (style == HUGE)
        for (size_t x = 0; x < nq; x++)
            t->q[x] = ldexp(t->q[x], 1);
    if (p.sel.k)
        tcase_random_sel(t, r);
}

START_TEST(random_rows_of_every_feature)
{
    const int n = _i + 1;
    rng r = {SEED + (unsigned)n};
    nsx_ref_stats tot = {0};
    int problems = n <= 2 ? 90 : 45;
    for (int k = 0; k < problems; k++) {
        tcase t;
        char what[64];
        int style = k % NSTYLES;
        random_case(&t, &r, n, style);
        snprintf(what, sizeof what, "problem %d (style %d)", k, style);
        assert_fast_is_mpfr(&t, 0, &tot, what);
        tcase_free(&t);
    }
    /* the fast path is exercised: it decides most rows */
    ck_assert_msg(tot.fast_rows > tot.mpfr_rows, "n %d: fast rows %llu, MPFR rows %llu", n,
                  (unsigned long long)tot.fast_rows, (unsigned long long)tot.mpfr_rows);
    fprintf(stderr, "test_fast: n = %d: %llu rows, %llu decided fast, %llu by MPFR\n", n,
            (unsigned long long)(tot.fast_rows + tot.mpfr_rows), (unsigned long long)tot.fast_rows,
            (unsigned long long)tot.mpfr_rows);
}
END_TEST

/* ---- the fallback ---- */

/* O = (1 + (1 + 2^-52)) / 2 = 1 + 2^-53 exactly, a midpoint: no enclosure
   decides it, MPFR's exact case rounds it to even (1). */
START_TEST(midpoint_goes_to_mpfr)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 2;
    p.d = 2;
    p.dv = 1;
    p.causal = 0;
    tcase t;
    tcase_alloc(&t, &p);
    t.v[0][0] = 1;
    t.v[0][1] = 1 + 0x1p-52;
    double o[2], lse[2];
    nsx_ref_opts fast = {.fast = 1};
    nsx_ref_stats st = {0};
    run_into(&t, &fast, o, lse, &st);
    ck_assert(o[0] == 1.0 && o[1] == 1.0);
    ck_assert_msg(st.mpfr_rows == 2 && st.fast_rows == 0, "fast rows %llu", (unsigned long long)st.fast_rows);
    tcase_free(&t);
}
END_TEST

/* Exact zeros are decided by the fast path, as MPFR rounds them (+0):
   out_scale = 0, a product whose values of one dimension are all 0 (with
   and without a bias that cancels them), a sum whose values are all 0.
   The row's LSE is decided as usual, so no row goes to MPFR. */
START_TEST(exact_zeros_decided)
{
    for (int k = 0; k < 4; k++) {
        nsx_problem p;
        nsx_problem_defaults(&p);
        p.n = 2;
        p.L = 5;
        p.d = 3;
        p.dv = 2;
        if (k == 0)
            p.out_scale = 0;
        if (k == 2)
            p.v_bias[1] = -0.5;
        if (k == 3)
            p.reduce = NSX_REDUCE_SUM;
        tcase t;
        tcase_alloc(&t, &p);
        for (size_t x = 0; x < nsx_q_size(&p); x++)
            t.q[x] = 0.25 * (double)(x % 5) - 0.4;
        for (int m = 0; m < 2; m++)
            for (size_t x = 0; x < nsx_k_size(&p); x++)
                t.k[m][x] = 0.125 * (double)((x + 3 * m) % 7) - 0.3;
        for (size_t x = 0; x < nsx_v_size(&p); x++) {
            t.v[0][x] = k == 0 ? 0.7 - 0.1 * (double)x : k == 3 ? 0 : 0.3 + 0.01 * (double)x;
            t.v[1][x] = k == 0 ? 0.2 : k == 2 ? 0.5 : 0;
        }
        nsx_ref_stats tot = {0};
        assert_fast_is_mpfr(&t, 0, &tot, "exact zeros");
        ck_assert_msg(tot.mpfr_rows == 0 && tot.fast_rows == 5, "case %d: fast rows %llu, MPFR rows %llu", k,
                      (unsigned long long)tot.fast_rows, (unsigned long long)tot.mpfr_rows);
        double o[10], lse[5];
        nsx_ref_opts fast = {.fast = 1};
        nsx_ref_stats st = {0};
        run_into(&t, &fast, o, lse, &st);
        for (int x = 0; x < 10; x++)
            ck_assert_msg(o[x] == 0 && !signbit(o[x]), "case %d: o[%d] = %a", k, x, o[x]);
        tcase_free(&t);
    }
}
END_TEST

/* The bound-shift hook widens every enclosure: with 2^28 some outputs stay
   undecided, with 2^1000 all; the values never change. */
START_TEST(forced_undecided_rows_go_to_mpfr)
{
    rng r = {SEED + 99};
    nsx_ref_stats mid = {0}, all = {0};
    for (int k = 0; k < 30; k++) {
        tcase t;
        random_case(&t, &r, 1 + k % 3, PLAIN);
        assert_fast_is_mpfr(&t, 28, &mid, "shift 28");
        assert_fast_is_mpfr(&t, 1000, &all, "shift 1000");
        tcase_free(&t);
    }
    ck_assert_msg(mid.mpfr_rows > 0 && mid.fast_tuples > 0, "shift 28: fast rows %llu, MPFR rows %llu",
                  (unsigned long long)mid.fast_rows, (unsigned long long)mid.mpfr_rows);
    /* with 2^1000 only empty slices are decided without MPFR */
    ck_assert(all.mpfr_rows > mid.mpfr_rows && all.fast_tuples == 0);
}
END_TEST

/* ---- the bound itself ---- */

/* X's MPFR enclosure [lo, hi] (400 bits) lies in the fast path's
   [v - E, v + E]; returns |X - v| / E at its widest. */
static double inside(const ival *X, const double *e, const char *what)
{
    mpfr_t t, u;
    mpfr_inits2(2400, t, u, (mpfr_ptr)0);
    mpfr_sub_d(t, X->hi, e[0], MPFR_RNDU);
    mpfr_sub_d(t, t, e[1], MPFR_RNDU);
    mpfr_sub_d(u, X->lo, e[0], MPFR_RNDD);
    mpfr_sub_d(u, u, e[1], MPFR_RNDD);
    ck_assert_msg(mpfr_cmp_d(t, e[2]) <= 0 && mpfr_cmp_d(u, -e[2]) >= 0,
                  "%s: the exact value is outside the fast enclosure %a + %a +- %a (seed %u)", what, e[0],
                  e[1], e[2], SEED);
    mpfr_abs(t, t, MPFR_RNDU);
    mpfr_abs(u, u, MPFR_RNDU);
    mpfr_max(t, t, u, MPFR_RNDU);
    double r = e[2] > 0 ? mpfr_get_d(t, MPFR_RNDU) / e[2] : 0;
    mpfr_clears(t, u, (mpfr_ptr)0);
    return r;
}

/* Every enclosure of the fast path, decided or not, holds the exact value
   (enclosed by MPFR at 400 bits): the proof's bound, checked. */
START_TEST(enclosures_hold_the_exact_values)
{
    rng r = {SEED + 5};
    double worst = 0;
    long checked = 0;
    for (int k = 0; k < 30; k++) {
        tcase t;
        random_case(&t, &r, 1 + k % 3, k % 3 == 0 ? WIDE : k % 3 == 1 ? TINY : PLAIN);
        const nsx_problem *p = &t.p;
        nsx_err err = {0};
        nsx_ref_opts opts = {0};
        ref_erange saved = ref_erange_widen();
        ref_ctx ctx;
        ck_assert_int_eq(ref_ctx_init(&ctx, p, &t.in, p->sel.k ? t.sel : NULL, &err), 0);
        ref_row row;
        ref_row_init(&row);
        double *encl = malloc(3 * ((size_t)p->dv + 1) * sizeof *encl);
        ival lse, *o = malloc((size_t)p->dv * sizeof *o);
        ival_init(&lse, 400);
        for (int c = 0; c < p->dv; c++)
            ival_init(&o[c], 400);
        for (int b = 0; b < p->B; b++)
            for (int h = 0; h < p->H; h++)
                for (int i = 0; i < p->L; i++) {
                    int rc = ref_fast_enclosures(&ctx, &opts, b, h, i, encl, &err);
                    ck_assert_msg(rc >= 0, "%s", err.msg);
                    if (!rc)
                        continue;
                    ck_assert_int_eq(ref_row_scan(&row, &ctx, b, h, i, ref_score_scale_sign(p), &err), 0);
                    ck_assert(row.N > 0 && !row.nonfinite);
                    ref_row_enclose(&ctx, &row, 400, &lse, o); /* one MPFR round at 400 bits */
                    double x = inside(&lse, encl + 3 * p->dv, "lse");
                    worst = x > worst ? x : worst;
                    for (int c = 0; c < p->dv; c++) {
                        x = inside(&o[c], encl + 3 * c, "o");
                        worst = x > worst ? x : worst;
                    }
                    checked += p->dv + 1;
                }
        ival_clear(&lse);
        for (int c = 0; c < p->dv; c++)
            ival_clear(&o[c]);
        free(o), free(encl);
        ref_row_clear(&row);
        ref_ctx_clear(&ctx);
        ref_erange_restore(saved);
        tcase_free(&t);
    }
    ck_assert(checked > 1000);
    fprintf(stderr, "test_fast: %ld enclosures hold the exact value; largest |X - v| / E = %.3g\n", checked,
            worst);
}
END_TEST

/* ---- exp and log against MPFR ---- */

/* |fast_exp(x) - exp(x)| <= FAST_EXP_REL exp(x) at many points. */
START_TEST(exp_within_its_bound)
{
    fast_exp_init();
    rng r = {SEED};
    mpfr_t x, e, f;
    mpfr_inits2(300, x, e, f, (mpfr_ptr)0);
    double worst = 0;
    for (int k = 0; k < 20000; k++) {
        double h;
        if (k < 8) {
            static const double pts[] = {0, -0.0, -650, 64, -1e-300, 0.00270, -0.00270, -649.99};
            h = pts[k];
        } else if (k % 3 == 0) {
            h = (double)rng_int(&r, -120000, 11000) * 0.0054152123481245725; /* near k ln2/128 */
        } else {
            h = -650 + 714 * ((double)(rng_next(&r) >> 11) * 0x1p-53);
        }
        double l = h * 0x1p-53 * ((double)(rng_next(&r) >> 11) * 0x1p-53 - 0.5);
        dd v = fast_exp((dd){h, l});
        mpfr_set_d(x, h, MPFR_RNDN);
        mpfr_add_d(x, x, l, MPFR_RNDN);
        mpfr_exp(e, x, MPFR_RNDN);
        mpfr_set_d(f, v.h, MPFR_RNDN);
        mpfr_add_d(f, f, v.l, MPFR_RNDN);
        mpfr_sub(f, f, e, MPFR_RNDN);
        mpfr_div(f, f, e, MPFR_RNDN);
        double rel = fabs(mpfr_get_d(f, MPFR_RNDU));
        if (rel > worst)
            worst = rel;
        ck_assert_msg(rel <= FAST_EXP_REL, "exp(%a + %a): relative error %a", h, l, rel);
    }
    fprintf(stderr, "test_fast: fast_exp: worst relative error 2^%.1f (bound 2^-99)\n", log2(worst));
    mpfr_clears(x, e, f, (mpfr_ptr)0);
}
END_TEST

/* |fast_log_shift(z, M) - (M + log z)| <= its err. */
/* fast_cos (core/rng.c's normals): within FAST_COS_ERR of a 300-bit cos,
   and fast_cos_rn, where it decides, MPFR's correctly rounded cos bit for
   bit; the angles as the normals draw them, and ones near the multiples of
   pi/2 (where cos is small and the reduction cancels) and the ends. */
START_TEST(cos_within_its_bound)
{
    rng r = {SEED + 2};
    mpfr_t x, y, e;
    mpfr_inits2(300, x, y, e, (mpfr_ptr)0);
    mpfr_set_d(e, FAST_COS_ERR, MPFR_RNDN);
    int undecided = 0;
    const int count = 40000;
    for (int k = 0; k < count; k++) {
        double a = 6.283185307179586 * (((double)(rng_next(&r) >> 11) + 0.5) * 0x1p-53);
        if (k % 8 == 1) /* near j pi/2, j = 0..5 */
            a = nextafter(1.5707963267948966 * (k / 8 % 6), INFINITY) + (double)rng_int(&r, -1000, 1000) * 0x1p-50;
        if (k % 8 == 2)
            a = ldexp((double)(rng_next(&r) >> 11) * 0x1p-53, -rng_int(&r, 0, 60));
        if (k % 997 == 3)
            a = k % 2 ? FAST_COS_XMAX : 0;
        if (!(a >= 0 && a <= FAST_COS_XMAX))
            continue;
        dd c = fast_cos(a);
        mpfr_set_d(x, a, MPFR_RNDN);
        mpfr_cos(x, x, MPFR_RNDN);
        mpfr_set_d(y, c.h, MPFR_RNDN);
        mpfr_add_d(y, y, c.l, MPFR_RNDN);
        mpfr_sub(y, y, x, MPFR_RNDN);
        ck_assert_msg(mpfr_cmpabs(y, e) <= 0, "cos(%a): off by %g", a, mpfr_get_d(y, MPFR_RNDN));
        int decided;
        double v = fast_cos_rn(a, &decided);
        mpfr_set_d(x, a, MPFR_RNDN);
        mpfr_set_prec(y, 53);
        mpfr_cos(y, x, MPFR_RNDN);
        double want = mpfr_get_d(y, MPFR_RNDN);
        mpfr_set_prec(y, 300);
        if (decided)
            ck_assert_msg(memcmp(&v, &want, sizeof v) == 0, "cos(%a): fast %a, MPFR %a", a, v, want);
        undecided += !decided && k % 8 != 1; /* cos near 0 may need MPFR */
    }
    ck_assert_msg(undecided < count / 1000, "%d of %d undecided", undecided, count);
    int decided;
    fast_cos_rn(-1.0, &decided);
    ck_assert(!decided);
    fast_cos_rn(NAN, &decided);
    ck_assert(!decided);
    mpfr_clears(x, y, e, (mpfr_ptr)0);
}
END_TEST

START_TEST(log_within_its_bound)
{
    fast_exp_init();
    rng r = {SEED + 1};
    mpfr_t x, y;
    mpfr_inits2(300, x, y, (mpfr_ptr)0);
    for (int k = 0; k < 5000; k++) {
        double zh = ldexp(1 + (double)(rng_next(&r) >> 11) * 0x1p-53, rng_int(&r, -1, 40));
        double zl = zh * 0x1p-54 * ((double)(rng_next(&r) >> 11) * 0x1p-53 - 0.5);
        double M = k % 2 ? rng_dyadic(&r, 20, 10) : 0;
        double err;
        dd L = fast_log_shift((dd){zh, zl}, M, &err);
        ck_assert(isfinite(err));
        mpfr_set_d(x, zh, MPFR_RNDN);
        mpfr_add_d(x, x, zl, MPFR_RNDN);
        mpfr_log(x, x, MPFR_RNDN);
        mpfr_add_d(x, x, M, MPFR_RNDN);
        mpfr_set_d(y, L.h, MPFR_RNDN);
        mpfr_add_d(y, y, L.l, MPFR_RNDN);
        mpfr_sub(y, y, x, MPFR_RNDN);
        ck_assert_msg(mpfr_cmpabs(y, (mpfr_set_d(x, err, MPFR_RNDN), x)) <= 0, "log(%a + %a) + %a", zh, zl, M);
    }
    mpfr_clears(x, y, (mpfr_ptr)0);
}
END_TEST

/* ---- the ISA tables ---- */

/* Every table this CPU runs gives the scalar table's bits. */
START_TEST(isa_tables_agree)
{
    const fast_kern *tabs[FAST_ISA_COUNT] = {&fast_kern_scalar, &fast_kern_avx2, &fast_kern_avx512};
    const int isa = _i;
    if (!fast_isa_supported(isa))
        return;
    rng r = {SEED + 7};
    enum { D = 37, NK = 16, DV = 19 };
    double uh[D], ul[D], kh[NK][D], kl[NK][D], vh[NK][DV], vl[NK][DV], eh[NK], el[NK];
    const double *khp[NK], *klp[NK], *vhp[NK], *vlp[NK];
    for (int l = 0; l < D; l++) {
        uh[l] = rng_dyadic(&r, 30, 15);
        ul[l] = uh[l] * 0x1p-60;
    }
    for (int j = 0; j < NK; j++) {
        for (int l = 0; l < D; l++) {
            kh[j][l] = rng_dyadic(&r, 30, 15);
            kl[j][l] = kh[j][l] * 0x1p-58;
        }
        for (int c = 0; c < DV; c++) {
            vh[j][c] = rng_dyadic(&r, 30, 15);
            vl[j][c] = vh[j][c] * 0x1p-57;
        }
        eh[j] = (double)(rng_next(&r) >> 11) * 0x1p-53;
        el[j] = eh[j] * 0x1p-55;
        khp[j] = kh[j], klp[j] = kl[j], vhp[j] = vh[j], vlp[j] = vl[j];
    }
    for (int d = 1; d <= D; d += 4) {
        double T0h[NK], T0l[NK], T1h[NK], T1l[NK];
        tabs[0]->scores(uh, ul, d, khp, klp, NK, T0h, T0l);
        tabs[isa]->scores(uh, ul, d, khp, klp, NK, T1h, T1l);
        size_t at;
        ck_assert_msg(same_bits(T0h, T1h, NK, &at) && same_bits(T0l, T1l, NK, &at), "%s scores, d %d",
                      tabs[isa]->name, d);
    }
    double S0[DV], C0[DV], S1[DV], C1[DV], A0h[DV] = {0}, A0l[DV] = {0}, A1h[DV] = {0}, A1l[DV] = {0};
    tabs[0]->values(eh, el, NK, vhp, vlp, DV, S0, C0, A0h, A0l);
    tabs[isa]->values(eh, el, NK, vhp, vlp, DV, S1, C1, A1h, A1l);
    size_t at;
    ck_assert_msg(same_bits(A0h, A1h, DV, &at) && same_bits(A0l, A1l, DV, &at), "%s values", tabs[isa]->name);
    /* the prefix's factors and terms, both reducers */
    double u0h[D], u0l[D], u1h[D], u1l[D], kmax[D];
    for (int l = 0; l < D; l++)
        kmax[l] = fabs(kh[0][l]);
    double a0 = tabs[0]->prefix_u(uh, D, khp, klp, 3, kmax, u0h, u0l);
    double a1 = tabs[isa]->prefix_u(uh, D, khp, klp, 3, kmax, u1h, u1l);
    ck_assert_msg(a0 == a1 && same_bits(u0h, u1h, D, &at) && same_bits(u0l, u1l, D, &at), "%s prefix_u",
                  tabs[isa]->name);
    for (int product = 0; product <= 1; product++) {
        double p0h[DV], p0l[DV], p1h[DV], p1l[DV], va0[DV], va1[DV], M0[DV] = {0}, M1[DV] = {0};
        double U0h[DV] = {0}, U0l[DV] = {0}, U1h[DV] = {0}, U1l[DV] = {0};
        tabs[0]->prefix_v(product, DV, vhp, vlp, 3, p0h, p0l, va0);
        tabs[isa]->prefix_v(product, DV, vhp, vlp, 3, p1h, p1l, va1);
        ck_assert(same_bits(p0h, p1h, DV, &at) && same_bits(p0l, p1l, DV, &at) && same_bits(va0, va1, DV, &at));
        tabs[0]->prefix_end(product, DV, p0h, p0l, A0h, A0l, 3.5, 0x1p-60, va0, va0, U0h, U0l, M0);
        tabs[isa]->prefix_end(product, DV, p1h, p1l, A1h, A1l, 3.5, 0x1p-60, va1, va1, U1h, U1l, M1);
        ck_assert(same_bits(U0h, U1h, DV, &at) && same_bits(U0l, U1l, DV, &at) && same_bits(M0, M1, DV, &at));
    }
    /* pass 1 and the weights */
    double Mx0 = -INFINITY, Mx1 = -INFINITY;
    tabs[0]->max_score(uh, D, khp, NK, 0.125, &Mx0);
    tabs[isa]->max_score(uh, D, khp, NK, 0.125, &Mx1);
    ck_assert(Mx0 == Mx1);
    double Th[NK], Tl[NK], w0h[NK], w0l[NK], w1h[NK], w1l[NK], dx0 = 0, dx1 = 0;
    unsigned long f0 = 0, f1 = 0;
    for (int j = 0; j < NK; j++) {
        Th[j] = j % 5 == 0 ? -1e4 : rng_dyadic(&r, 30, 24);
        Tl[j] = Th[j] * 0x1p-56;
    }
    ck_assert_int_eq(tabs[0]->weights(Th, Tl, NK, 0.3, 1e-18, 0.5, 1e-30, w0h, w0l, &dx0, &f0), 0);
    ck_assert_int_eq(tabs[isa]->weights(Th, Tl, NK, 0.3, 1e-18, 0.5, 1e-30, w1h, w1l, &dx1, &f1), 0);
    ck_assert(same_bits(w0h, w1h, NK, &at) && same_bits(w0l, w1l, NK, &at) && dx0 == dx1 && f0 == f1 && f0 > 0);
}
END_TEST

/* NSX_FAST_ISA forces a table for the whole program; one the CPU lacks is
   refused with one line. */
START_TEST(forced_isa_on_the_command_line)
{
    static const char *const names[FAST_ISA_COUNT] = {"scalar", "avx2", "avx512"};
    const int isa = _i;
    char out[512];
    const char *tmp = test_tmpdir();
    snprintf(out, sizeof out, "%s/fast_isa_%s.safetensors", tmp, names[isa]);
    setenv("NSX_FAST_ISA", names[isa], 1);
    cli_result res;
    const char *args[] = {"eval", "vectors/default/n2_meta_biases.safetensors", "--out", out, "--stats", NULL};
    ck_assert_int_eq(cli_run(&res, args), 0);
    if (fast_isa_supported(isa)) {
        ck_assert_msg(res.status == 0, "%s: %s", names[isa], res.err);
        ck_assert_msg(strstr(res.out, " 0 by MPFR") != NULL, "%s: %s", names[isa], res.out);
        /* the same file as MPFR's */
        char out2[512];
        snprintf(out2, sizeof out2, "%s/fast_isa_%s_exact.safetensors", tmp, names[isa]);
        const char *args2[] = {"eval", "vectors/default/n2_meta_biases.safetensors", "--out", out2,
                               "--exact-only", NULL};
        cli_result res2;
        ck_assert_int_eq(cli_run(&res2, args2), 0);
        ck_assert_int_eq(res2.status, 0);
        cli_result_free(&res2);
        ck_assert_msg(cli_same_file(out, out2), "%s: the fast path's file is not MPFR's", names[isa]);
    } else {
        ck_assert_int_eq(res.status, 2);
        ck_assert_msg(strstr(res.err, "lacks") != NULL, "%s", res.err);
        ck_assert_int_eq(cli_count_lines(res.err), 1);
    }
    cli_result_free(&res);
    unsetenv("NSX_FAST_ISA");
}
END_TEST

/* gen --recipe takes the reference's options like a suite: --exact-only
   forces MPFR (the same bytes) and --stats says which path decided. */
START_TEST(gen_recipe_takes_exact_only_and_stats)
{
    const char *tmp = test_tmpdir();
    char fast[512], exact[512];
    snprintf(fast, sizeof fast, "%s/recipe_fast.safetensors", tmp);
    snprintf(exact, sizeof exact, "%s/recipe_exact.safetensors", tmp);
    const char *recipe = "n=2 L=24 H=2 Hkv=1 d=8 w=8,4 kb=0,0.5";
    const char *a1[] = {"gen", "--recipe", recipe, "--out", fast, "--name", "r", "--stats", NULL};
    const char *a2[] = {"gen", "--recipe", recipe, "--out", exact, "--name", "r", "--stats", "--exact-only", NULL};
    cli_result r1, r2;
    ck_assert_int_eq(cli_run(&r1, a1), 0);
    ck_assert_int_eq(cli_run(&r2, a2), 0);
    ck_assert_msg(r1.status == 0 && r2.status == 0, "%s%s", r1.err, r2.err);
    ck_assert_msg(strstr(r1.out, " 0 by MPFR") != NULL, "%s", r1.out);
    ck_assert_msg(strstr(r2.out, " 0 decided by the fast path") != NULL, "%s", r2.out);
    ck_assert_msg(cli_same_file(fast, exact), "gen --recipe: fast and --exact-only files differ");
    cli_result_free(&r1);
    cli_result_free(&r2);
}
END_TEST

static Suite *fast_suite(void)
{
    Suite *s = suite_create("fast");
    TCase *tc = tcase_create("against MPFR");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_golden_vector);
    tcase_add_loop_test(tc, random_rows_of_every_feature, 0, NSX_MAX_ORDER);
    tcase_add_test(tc, midpoint_goes_to_mpfr);
    tcase_add_test(tc, exact_zeros_decided);
    tcase_add_test(tc, forced_undecided_rows_go_to_mpfr);
    tcase_add_test(tc, enclosures_hold_the_exact_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("exp and log");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exp_within_its_bound);
    tcase_add_test(tc, log_within_its_bound);
    tcase_add_test(tc, cos_within_its_bound);
    suite_add_tcase(s, tc);

    tc = tcase_create("isa");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, isa_tables_agree, 0, FAST_ISA_COUNT);
    tcase_add_loop_test(tc, forced_isa_on_the_command_line, 0, FAST_ISA_COUNT);
    tcase_add_test(tc, gen_recipe_takes_exact_only_and_stats);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fast_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
