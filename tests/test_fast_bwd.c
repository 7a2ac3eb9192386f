/*
 * The fast certified backward (ref/fast_bwd.c) against the MPFR backward
 * (opts.fast = 0), bit for bit: every committed gradient vector (default
 * and tiles suites, whose expected values MPFR made), and random problems
 * of every feature (n = 1..4, reducers, biases, windows, causal off,
 * distinct, given selections, GQA, batches, scales, near one-hot rows,
 * ties, huge and tiny values, exact cases, zero dO rows, single-tuple
 * rows).  The fallback is exercised by the bound-shift hook, which leaves
 * blocks undecided, and by exact cases; exact zeros (masked keys,
 * single-tuple rows) are decided by the fast path itself.  The per-ISA
 * element sums are checked against the scalar table.
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
#include "ref/backward.h"
#include "ref/fast_kern.h"
#include "vectors/suites.h"
#include "tests/env.h"

#define SEED 20261207u

/* the gradient tensors of a problem, one block of memory per tensor */
typedef struct gbuf {
    nsx_outputs g;
} gbuf;

static void gbuf_alloc(gbuf *b, const nsx_problem *p)
{
    memset(b, 0, sizeof *b);
    b->g.dq = calloc(nsx_q_size(p), sizeof(double));
    for (int m = 0; m < p->n; m++) {
        b->g.dk[m] = calloc(nsx_k_size(p), sizeof(double));
        b->g.dv[m] = calloc(nsx_v_size(p), sizeof(double));
    }
}

static void gbuf_free(gbuf *b, const nsx_problem *p)
{
    free(b->g.dq);
    for (int m = 0; m < p->n; m++)
        free(b->g.dk[m]), free(b->g.dv[m]);
}

/* The first element where a and b differ in bits (every tensor), or NULL
   with *what unchanged. */
static int same_grads(const nsx_problem *p, const nsx_outputs *a, const nsx_outputs *b, char *what, size_t len)
{
    const double *x[1 + 2 * NSX_MAX_ORDER], *y[1 + 2 * NSX_MAX_ORDER];
    size_t cnt[1 + 2 * NSX_MAX_ORDER];
    int t = 0;
    x[t] = a->dq, y[t] = b->dq, cnt[t++] = nsx_q_size(p);
    for (int m = 0; m < p->n; m++) {
        x[t] = a->dk[m], y[t] = b->dk[m], cnt[t++] = nsx_k_size(p);
        x[t] = a->dv[m], y[t] = b->dv[m], cnt[t++] = nsx_v_size(p);
    }
    for (int s = 0; s < t; s++)
        for (size_t e = 0; e < cnt[s]; e++)
            if (memcmp(&x[s][e], &y[s][e], sizeof(double)) != 0) {
                snprintf(what, len, "%s%d[%zu]: %a vs %a", s == 0 ? "dq" : (s % 2) ? "dk" : "dv",
                         s == 0 ? 0 : (s + 1) / 2, e, x[s][e], y[s][e]);
                return 0;
            }
    return 1;
}

/* ---- every committed gradient vector ---- */

START_TEST(every_gradient_vector)
{
    static const char *const suites[] = {"default", "tiles"};
    nsx_ref_stats tot = {0};
    int files = 0;
    for (int s = 0; s < 2; s++) {
        const nsx_suite *su = nsx_suite_find(suites[s]);
        for (size_t ci = 0; ci < su->count; ci++) {
            if (strncmp(su->cases[ci].name, "bwd_", 4) != 0)
                continue;
            char path[512], what[160];
            nsx_case c;
            nsx_err err = {0};
            snprintf(path, sizeof path, "vectors/%s/%s.safetensors", suites[s], su->cases[ci].name);
            ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
            if (!c.expected.dq) {
                nsx_case_free(&c);
                continue;
            }
            const nsx_problem *p = &c.p;
            gbuf f;
            gbuf_alloc(&f, p);
            nsx_ref_opts fast = {.fast = 1, .threads = 2};
            nsx_ref_stats st = {0};
            ck_assert_msg(nsx_ref_backward(p, &c.in, &f.g, &fast, &st, &err) == 0, "%s: %s", path, err.msg);
            ck_assert_msg(same_grads(p, &f.g, &c.expected, what, sizeof what), "%s: fast vs the file: %s", path,
                          what);
            ck_assert(st.fast_values + st.mpfr_values == st.values);
            nsx_ref_stats_add(&tot, &st);
            files++;
            gbuf_free(&f, p);
            nsx_case_free(&c);
        }
    }
    ck_assert_int_ge(files, 15);
    /* most values are decided fast; the exact cases (bwd_n2_equal) go to MPFR */
    ck_assert_msg(tot.fast_values > 10 * tot.mpfr_values && tot.mpfr_values > 0, "fast %llu, MPFR %llu",
                  (unsigned long long)tot.fast_values, (unsigned long long)tot.mpfr_values);
    fprintf(stderr, "test_fast_bwd: %d gradient files: %llu values decided fast, %llu by MPFR\n", files,
            (unsigned long long)tot.fast_values, (unsigned long long)tot.mpfr_values);
}
END_TEST

/* ---- random problems of every feature ---- */

enum style { PLAIN, WIDE, TIES, HUGE, TINY, EXACT, ZERO_DO, SINGLE, NSTYLES };

static void random_case(tcase *t, rng *r, int n, int style)
{
    static const int maxL[NSX_MAX_ORDER + 1] = {0, 12, 7, 5, 4, 3, 3, 3, 3};
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = n;
    p.L = rng_int(r, 1, maxL[n]);
    p.B = rng_int(r, 1, 2);
    p.Hkv = rng_int(r, 1, 2);
    p.H = p.Hkv * rng_int(r, 1, 3);
    p.d = rng_int(r, 1, n <= 2 ? 12 : 6);
    p.dv = rng_int(r, 1, 5);
    p.reduce = rng_int(r, 0, 2);
    p.causal = rng_int(r, 0, 3) != 0;
    p.distinct = n > 1 && rng_int(r, 0, 4) == 0;
    for (int m = 0; m < n; m++) {
        p.window[m] = style == SINGLE ? 1 : rng_int(r, 0, 2) == 0 ? rng_int(r, 1, p.L + 1) : 0;
        p.k_bias[m] = rng_int(r, 0, 3) == 0 ? rng_dyadic(r, 6, 3) : 0;
        p.v_bias[m] = rng_int(r, 0, 3) == 0 ? rng_dyadic(r, 6, 3) : 0;
    }
    if (style == SINGLE)
        p.distinct = 0;
    switch (rng_int(r, 0, 4)) {
    case 0:
        p.score_scale_rsqrt_d = 0;
        p.score_scale = rng_dyadic(r, 10, 8); /* either sign, or 0 */
        break;
    case 1:
        p.out_scale = rng_dyadic(r, 10, 6);
        break;
    default:
        break;
    }
    if (rng_int(r, 0, 3) == 0) {
        p.sel.source = NSX_SEL_INDICES;
        p.sel.k = rng_int(r, 1, p.L + 1);
        p.sel.dims = (unsigned)rng_int(r, 1, (1 << n) - 1);
    }
    tcase_alloc(t, &p);
    ck_assert(nsx_instance_alloc_grads(t) == 0);
    tcase_fill(t, r, style == WIDE ? 30 : 8, style == WIDE ? 20 : 7);
    size_t nq = nsx_q_size(&p), nk = nsx_k_size(&p), nv = nsx_v_size(&p), no = nsx_o_size(&p);
    for (size_t x = 0; x < no; x++)
        t->dout[x] = rng_dyadic(r, 8, 4);
    if (style == ZERO_DO) /* some rows of dO all zero */
        for (size_t x = 0; x < no; x++)
            if ((x / (size_t)p.dv) % 2 == 0)
                t->dout[x] = 0;
    for (int m = 0; m < n; m++)
        for (size_t x = 0; x < nk; x++) {
            if (style == TIES)
                t->k[m][x] = t->k[m][x % (size_t)p.d];
            if (style == HUGE)
                t->k[m][x] = ldexp(t->k[m][x], rng_int(r, 0, 2));
            if (style == TINY)
                t->k[m][x] = ldexp(t->k[m][x], -rng_int(r, 0, 40));
        }
    for (int m = 0; m < n; m++)
        for (size_t x = 0; x < nv; x++) {
            if (style == HUGE)
                t->v[m][x] = ldexp(t->v[m][x], 600 / n);
            if (style == TINY)
                t->v[m][x] = ldexp(t->v[m][x], -1000 / n);
            if (style == EXACT)
                t->v[m][x] = (x & 1) ? 1 + 0x1p-52 : 1;
        }
    if (style == EXACT)
        for (size_t x = 0; x < nq; x++)
            t->q[x] = 0;
    if (p.sel.k)
        tcase_random_sel(t, r);
}

/* fast (shift: the bound-shift hook) and MPFR on t, bit for bit, or the
   same error; adds the fast run's stats to tot. */
static void assert_fast_is_mpfr(tcase *t, int shift, int threads, nsx_ref_stats *tot, const char *what)
{
    const nsx_problem *p = &t->p;
    gbuf a, f;
    gbuf_alloc(&a, p);
    gbuf_alloc(&f, p);
    nsx_ref_opts exact = {.prec_cap = 4096},
                 fast = {.prec_cap = 4096, .fast = 1, .threads = threads, .fast_bound_shift = shift};
    nsx_ref_stats st = {0};
    nsx_err e1 = {0}, e2 = {0};
    int rc1 = nsx_ref_backward(p, &t->in, &a.g, &exact, NULL, &e1);
    int rc2 = nsx_ref_backward(p, &t->in, &f.g, &fast, &st, &e2);
    ck_assert_msg(rc1 == rc2, "%s: MPFR %d (%s), fast %d (%s), n %d, seed %u", what, rc1, e1.msg, rc2, e2.msg,
                  p->n, SEED);
    char diff[160];
    if (!rc1) {
        ck_assert_msg(same_grads(p, &a.g, &f.g, diff, sizeof diff), "%s: MPFR vs fast: %s (n %d, seed %u)", what,
                      diff, p->n, SEED);
        ck_assert(st.fast_values + st.mpfr_values == st.values);
        nsx_ref_stats_add(tot, &st);
    }
    gbuf_free(&a, p);
    gbuf_free(&f, p);
}

START_TEST(random_problems_of_every_feature)
{
    const int n = _i + 1;
    rng r = {SEED + (unsigned)n};
    nsx_ref_stats tot = {0};
    int problems = n == 1 ? 160 : n == 2 ? 120 : 56;
    unsigned long long per[NSTYLES][2] = {{0}};
    for (int k = 0; k < problems; k++) {
        tcase t;
        char what[64];
        int style = k % NSTYLES;
        random_case(&t, &r, n, style);
        snprintf(what, sizeof what, "problem %d (style %d)", k, style);
        nsx_ref_stats one = {0};
        assert_fast_is_mpfr(&t, 0, 1 + k % 2, &one, what);
        per[style][0] += one.fast_rows;
        per[style][1] += one.mpfr_rows;
        nsx_ref_stats_add(&tot, &one);
        tcase_free(&t);
    }
    /* the fast path decides most blocks of plain data; nearly one-hot rows
       (WIDE), equal scores (TIES, EXACT) and the subnormal range (TINY) go
       to MPFR more often, as they should */
    ck_assert_msg(per[PLAIN][0] > 10 * per[PLAIN][1], "n %d: plain: fast rows %llu, MPFR rows %llu", n,
                  per[PLAIN][0], per[PLAIN][1]);
    ck_assert_msg(tot.fast_rows > tot.mpfr_rows / 2, "n %d: fast rows %llu, MPFR rows %llu", n,
                  (unsigned long long)tot.fast_rows, (unsigned long long)tot.mpfr_rows);
    fprintf(stderr, "test_fast_bwd: n = %d: %llu rows of blocks, %llu decided fast, %llu by MPFR\n", n,
            (unsigned long long)(tot.fast_rows + tot.mpfr_rows), (unsigned long long)tot.fast_rows,
            (unsigned long long)tot.mpfr_rows);
}
END_TEST

/* ---- the fallback ---- */

/* The bound-shift hook widens every enclosure: with 2^40 some blocks stay
   undecided, with 2^1000 all; the values never change. */
START_TEST(forced_undecided_blocks_go_to_mpfr)
{
    rng r = {SEED + 99};
    nsx_ref_stats mid = {0}, all = {0};
    for (int k = 0; k < 24; k++) {
        tcase t;
        random_case(&t, &r, 1 + k % 3, PLAIN);
        assert_fast_is_mpfr(&t, 40, 2, &mid, "shift 40");
        assert_fast_is_mpfr(&t, 1000, 2, &all, "shift 1000");
        tcase_free(&t);
    }
    ck_assert_msg(mid.mpfr_rows > 0 && mid.fast_rows > 0, "shift 40: fast rows %llu, MPFR rows %llu",
                  (unsigned long long)mid.fast_rows, (unsigned long long)mid.mpfr_rows);
    ck_assert(all.fast_tuples == 0 && all.mpfr_values > 0);
}
END_TEST

/* One row whose two keys are equal (window 2, K[7] = K[8]): its dq is an
   exact zero that no enclosure decides, while every other element is
   decided fast.  Only that row goes to MPFR, and the values are MPFR's. */
START_TEST(one_undecided_row_goes_to_mpfr_alone)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 16;
    p.d = 8;
    p.dv = 4;
    p.window[0] = 2;
    tcase t;
    rng r = {SEED + 17};
    tcase_alloc(&t, &p);
    ck_assert(nsx_instance_alloc_grads(&t) == 0);
    tcase_fill(&t, &r, 8, 7);
    for (size_t x = 0; x < nsx_o_size(&p); x++)
        t.dout[x] = (double)(1 + (int)(x % 5)) / 4;
    for (int l = 0; l < p.d; l++)
        t.k[0][nsx_k_at(&p, 0, 7, 0, l)] = t.k[0][nsx_k_at(&p, 0, 8, 0, l)];
    nsx_ref_stats st = {0};
    assert_fast_is_mpfr(&t, 0, 2, &st, "equal keys");
    ck_assert_msg(st.mpfr_rows == 1 && st.fast_rows == (uint64_t)p.L - 1,
                  "MPFR rows %llu, fast rows %llu", (unsigned long long)st.mpfr_rows,
                  (unsigned long long)st.fast_rows);
    ck_assert_msg(st.mpfr_values == (uint64_t)p.d, "MPFR values %llu", (unsigned long long)st.mpfr_values);
    gbuf f;
    gbuf_alloc(&f, &p);
    nsx_ref_opts fast = {.fast = 1};
    nsx_err err = {0};
    ck_assert(nsx_ref_backward(&p, &t.in, &f.g, &fast, NULL, &err) == 0);
    for (int l = 0; l < p.d; l++)
        ck_assert(f.g.dq[nsx_q_at(&p, 0, 8, 0, l)] == 0);
    gbuf_free(&f, &p);
    tcase_free(&t);
}
END_TEST

/* ---- exact zeros, decided by the fast path ---- */

/* Windows of 1: every row has the one tuple (i, .., i), so dT = 0 and dq,
   dk are exactly +0; a selection that leaves keys out gives them +0
   gradients.  Both are decided without MPFR. */
START_TEST(exact_zeros_are_decided_fast)
{
    for (int n = 1; n <= 3; n++) {
        nsx_problem p;
        nsx_problem_defaults(&p);
        p.n = n;
        p.L = 6;
        p.d = 4;
        p.dv = 3;
        for (int m = 0; m < n; m++)
            p.window[m] = 1;
        tcase t;
        rng r = {SEED + 7u * (unsigned)n};
        tcase_alloc(&t, &p);
        ck_assert(nsx_instance_alloc_grads(&t) == 0);
        tcase_fill(&t, &r, 8, 7);
        for (size_t x = 0; x < nsx_o_size(&p); x++)
            t.dout[x] = (double)(1 + (int)(x % 7)) / 8; /* nonzero */
        nsx_ref_stats st = {0};
        assert_fast_is_mpfr(&t, 0, 1, &st, "windows of 1");
        ck_assert_msg(st.mpfr_values == 0, "n %d: %llu values by MPFR", n, (unsigned long long)st.mpfr_values);
        gbuf f;
        gbuf_alloc(&f, &p);
        nsx_ref_opts fast = {.fast = 1};
        nsx_err err = {0};
        ck_assert(nsx_ref_backward(&p, &t.in, &f.g, &fast, NULL, &err) == 0);
        for (size_t x = 0; x < nsx_q_size(&p); x++)
            ck_assert(f.g.dq[x] == 0 && !signbit(f.g.dq[x]));
        gbuf_free(&f, &p);
        tcase_free(&t);
    }
    /* a given selection of keys {1, 3} in every dimension: the others get +0 */
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.L = 6;
    p.d = 4;
    p.dv = 2;
    p.causal = 0;
    p.sel = (nsx_selection){NSX_SEL_INDICES, 2, 3, 0, 0, 0, 0};
    tcase t;
    rng r = {SEED + 5};
    tcase_alloc(&t, &p);
    ck_assert(nsx_instance_alloc_grads(&t) == 0);
    tcase_fill(&t, &r, 8, 7);
    for (size_t x = 0; x < nsx_o_size(&p); x++)
        t.dout[x] = (double)(1 + (int)(x % 7)) / 8; /* nonzero */
    for (int i = 0; i < p.L; i++)
        t.sel[nsx_sel_at(&p, 0, i, 0)] = 1, t.sel[nsx_sel_at(&p, 0, i, 1)] = 3;
    nsx_ref_stats st = {0};
    assert_fast_is_mpfr(&t, 0, 2, &st, "selection {1, 3}");
    ck_assert_msg(st.mpfr_values == 0, "%llu values by MPFR", (unsigned long long)st.mpfr_values);
    gbuf f;
    gbuf_alloc(&f, &p);
    nsx_ref_opts fast = {.fast = 1};
    nsx_err err = {0};
    ck_assert(nsx_ref_backward(&p, &t.in, &f.g, &fast, NULL, &err) == 0);
    for (int m = 0; m < 2; m++)
        for (int j = 0; j < p.L; j++)
            for (int l = 0; l < p.d; l++) {
                double x = f.g.dk[m][nsx_k_at(&p, 0, j, 0, l)];
                ck_assert(j == 1 || j == 3 ? x != 0 : x == 0 && !signbit(x));
            }
    gbuf_free(&f, &p);
    tcase_free(&t);
}
END_TEST

/* ---- the bound itself ---- */

typedef struct encl_stat {
    long checked;
    double worst; /* the largest |X - v| / E */
    const char *what;
} encl_stat;

/* Every element the fast path enclosed: MPFR's enclosure [lo, hi] (2000
   bits) lies in [v - E, v + E]. */
static void check_encl(void *arg, const ival *el, const double *encl, size_t count)
{
    encl_stat *es = arg;
    mpfr_t a, b2;
    mpfr_inits2(2400, a, b2, (mpfr_ptr)0);
    for (size_t e = 0; e < count; e++) {
        const double *x = encl + 3 * e;
        if (isnan(x[0]) || isnan(x[2]))
            continue; /* not reached */
        /* a = hi - v, b2 = lo - v, both exact at 2400 bits */
        mpfr_sub_d(a, el[e].hi, x[0], MPFR_RNDU);
        mpfr_sub_d(a, a, x[1], MPFR_RNDU);
        mpfr_sub_d(b2, el[e].lo, x[0], MPFR_RNDD);
        mpfr_sub_d(b2, b2, x[1], MPFR_RNDD);
        ck_assert_msg(mpfr_cmp_d(a, x[2]) <= 0 && mpfr_cmp_d(b2, -x[2]) >= 0,
                      "%s: element %zu: the exact value is outside %a + %a +- %a (seed %u)", es->what, e, x[0],
                      x[1], x[2], SEED);
        if (x[2] > 0) {
            double r = fmax(fabs(mpfr_get_d(a, MPFR_RNDU)), fabs(mpfr_get_d(b2, MPFR_RNDD))) / x[2];
            es->worst = r > es->worst ? r : es->worst;
        }
        es->checked++;
    }
    mpfr_clears(a, b2, (mpfr_ptr)0);
}

START_TEST(every_enclosure_holds_the_exact_value)
{
    rng r = {SEED + 11};
    encl_stat es = {0, 0, NULL};
    for (int k = 0; k < 48; k++) {
        tcase t;
        char what[64];
        int n = 1 + k % 3, style = (k / 3) % NSTYLES;
        if (style == EXACT)
            style = PLAIN;
        random_case(&t, &r, n, style);
        snprintf(what, sizeof what, "problem %d (n %d, style %d)", k, n, style);
        es.what = what;
        gbuf f;
        gbuf_alloc(&f, &t.p);
        nsx_err err = {0};
        int rc = ref_bwd_enclosures(&t.p, &t.in, &f.g, 2000, check_encl, &es, &err);
        ck_assert_msg(rc == 0, "%s: %s", what, err.msg);
        gbuf_free(&f, &t.p);
        tcase_free(&t);
    }
    ck_assert(es.checked > 1000);
    ck_assert(es.worst <= 1);
    fprintf(stderr, "test_fast_bwd: %ld enclosures hold the exact value; largest |X - v| / E = %.3g\n", es.checked,
            es.worst);
}
END_TEST

/* ---- the ISA tables ---- */

/* acc_axpy and acc_vmul of every table this CPU runs give the scalar
   table's bits. */
START_TEST(element_sums_of_every_isa)
{
    const fast_kern *tabs[FAST_ISA_COUNT] = {&fast_kern_scalar, &fast_kern_avx2, &fast_kern_avx512};
    enum { LEN = 37 };
    rng r = {SEED + 3};
    double x[4][LEN], y[4][LEN], acc[FAST_ISA_COUNT][3][LEN];
    for (int k = 0; k < LEN; k++)
        for (int a = 0; a < 4; a++) {
            x[a][k] = a == 1 ? ldexp(rng_dyadic(&r, 20, 10), -60) : fabs(rng_dyadic(&r, 20, 10));
            y[a][k] = a == 1 ? ldexp(rng_dyadic(&r, 20, 10), -60) : fabs(rng_dyadic(&r, 20, 10));
            if (a == 0)
                x[a][k] = rng_dyadic(&r, 20, 10), y[a][k] = rng_dyadic(&r, 20, 10);
        }
    for (int isa = 0; isa < FAST_ISA_COUNT; isa++) {
        memset(acc[isa], 0, sizeof acc[isa]);
        if (!fast_isa_supported(isa))
            continue;
        for (int rep = 0; rep < 5; rep++) {
            tabs[isa]->acc_axpy(acc[isa][0], acc[isa][1], acc[isa][2], 1.5 + rep, 0x1p-60, 0x1p-100, x[0], x[1], x[2],
                                x[3], LEN);
            tabs[isa]->acc_vmul(acc[isa][0], acc[isa][1], acc[isa][2], x[0], x[1], x[2], y[0], y[1], y[2], y[3],
                                LEN);
        }
        ck_assert_msg(memcmp(acc[isa], acc[0], sizeof acc[0]) == 0, "%s differs from scalar", tabs[isa]->name);
    }
}
END_TEST

/* ---- the command line ---- */

/* eval --bwd takes the fast path by default and says so with --stats;
   --exact-only gives the same file through MPFR alone. */
START_TEST(eval_bwd_fast_and_exact_only)
{
    const char *tmp = test_tmpdir();
    char out1[512], out2[512];
    snprintf(out1, sizeof out1, "%s/fast_bwd_eval.safetensors", tmp);
    snprintf(out2, sizeof out2, "%s/fast_bwd_eval_exact.safetensors", tmp);
    const char *file = "vectors/default/bwd_n2_paper.safetensors";
    const char *a1[] = {"eval", file, "--out", out1, "--bwd", "--stats", NULL};
    const char *a2[] = {"eval", file, "--out", out2, "--bwd", "--stats", "--exact-only", NULL};
    cli_result r;
    ck_assert_int_eq(cli_run(&r, a1), 0);
    ck_assert_msg(r.status == 0, "%s", r.err);
    const char *line = strstr(r.out, "eval: backward: ref:");
    ck_assert_msg(line && strstr(line, " 0 by MPFR"), "%s", r.out);
    cli_result_free(&r);
    ck_assert_int_eq(cli_run(&r, a2), 0);
    ck_assert_msg(r.status == 0, "%s", r.err);
    line = strstr(r.out, "eval: backward: ref:");
    ck_assert_msg(line && strstr(line, ": 0 decided by the fast path"), "%s", r.out);
    cli_result_free(&r);
    ck_assert_msg(cli_same_file(out1, out2), "eval --bwd: fast and --exact-only files differ");
}
END_TEST

static Suite *fast_bwd_suite(void)
{
    Suite *s = suite_create("fast_bwd");
    TCase *tc = tcase_create("vectors");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_gradient_vector);
    tcase_add_test(tc, eval_bwd_fast_and_exact_only);
    suite_add_tcase(s, tc);
    tc = tcase_create("random");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, random_problems_of_every_feature, 0, 4);
    tcase_add_test(tc, forced_undecided_blocks_go_to_mpfr);
    tcase_add_test(tc, exact_zeros_are_decided_fast);
    tcase_add_test(tc, one_undecided_row_goes_to_mpfr_alone);
    tcase_add_test(tc, element_sums_of_every_isa);
    tcase_add_test(tc, every_enclosure_holds_the_exact_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fast_bwd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
