/*
 * The fuzzer (fuzz/fuzz.h, docs/FUZZING.md), piece by piece: seeds
 * reproduce problems; the binary64 loop reference stays within its stated
 * bound of the MPFR reference; the oracle takes expected values with an
 * uncertainty; reshaping keeps only pairs that still hold; shrinking keeps
 * the failure and makes the case smaller; a saved failure replays as a
 * failing `nsimplex check`; the clean SIMD kernel passes a short run; kernels
 * with planted bugs (a kernel struct whose forward wraps the SIMD kernel) are
 * caught: a leak, a kernel that returns 1 for a declared feature, a kernel
 * whose outputs depend on a head's position.
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
#include "simd/simd.h"

/* The small shape class only: what these tests run must stay fast (the
   larger classes are tested by drawing, in test_fuzz.c's steering tests). */
static const nsx_fz_steer small_shapes = {.features = 0xffu, .shapes = NSX_FZ_SMALL};

/* ---- kernels with planted bugs ------------------------------------------- */

enum { BUG_NONE, BUG_LEAK, BUG_UNSUPPORTED, BUG_HEAD, BUG_FLAKY };
static int bug;
static nsx_kernel_info bug_info;
static int calls, undeclared; /* forward calls, and problems outside bug_info */

/* The SIMD kernel (one thread), with the bug `bug` planted around it. */
static int buggy_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    nsx_kernel_problem q = *p;
    int windowed = 0, biased = 0;
    for (int m = 0; m < p->n; m++) {
        windowed |= p->window[m] > 0;
        biased |= p->k_bias[m] != 0 || p->v_bias[m] != 0;
    }
    const unsigned f = bug_info.features;
    calls++;
    undeclared += p->n > bug_info.max_order || (windowed && !(f & NSX_FEAT_WINDOWS)) ||
                  (p->topk && !(f & NSX_FEAT_SELECTION)) || (p->H != p->Hkv && !(f & NSX_FEAT_GQA)) ||
                  (!p->causal && !(f & NSX_FEAT_CAUSAL_OFF)) || (p->distinct && !(f & NSX_FEAT_DISTINCT)) ||
                  (biased && !(f & NSX_FEAT_BIASES)) || (p->reduce == NSX_REDUCE_SUM && !(f & NSX_FEAT_SUM)) ||
                  (p->reduce == NSX_REDUCE_MEAN && !(f & NSX_FEAT_MEAN));
    if (bug == BUG_LEAK && q.causal && q.L >= 3)
        q.causal = 0; /* the future of every row leaks in */
    if (bug == BUG_UNSUPPORTED && windowed)
        return NSX_KERNEL_UNSUPPORTED; /* though windows are declared */
    int rc = nsx_simd_forward(&q, io, 1);
    if (rc == 0 && bug == BUG_HEAD && p->H >= 2) /* head 1's outputs one ulp up: within bounds */
        for (int b = 0; b < p->B; b++)
            for (int i = 0; i < p->L; i++)
                for (int c = 0; c < p->dv; c++) {
                    float *x = io->o + (((size_t)b * p->L + i) * p->H + 1) * p->dv + c;
                    *x = nextafterf(*x, INFINITY);
                }
    if (rc == 0 && bug == BUG_FLAKY && calls == 3) /* one call in a run goes wrong */
        for (size_t x = 0; x < (size_t)p->B * p->L * p->H * p->dv; x++)
            io->o[x] += 1000.0f;
    return rc;
}

static nsx_kernel planted(int which)
{
    bug = which;
    bug_info = *nsx_simd_info();
    bug_info.name = "planted";
    nsx_kernel k = {0};
    k.info = &bug_info;
    k.forward = buggy_forward;
    return k;
}

static nsx_kernel clean_kernel(void)
{
    nsx_kernel k;
    nsx_err err = {0};
    ck_assert_msg(nsx_kernel_open(&k, NULL, -1, 1, &err) == 0, "%s", err.msg);
    return k;
}

static nsx_model model_of(const nsx_kernel *k)
{
    nsx_model m;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_model_from_kernel(k->info, &m, &err), 0);
    return m;
}

/* A case from a recipe (with the extras given), seed fixed. */
static void case_of(const char *recipe, int heads, uint64_t seed, nsx_fz_case *c)
{
    nsx_fz_draw d = {.seed = seed, .heads = heads};
    snprintf(d.recipe, sizeof d.recipe, "%s", recipe);
    nsx_err err = {0};
    ck_assert_msg(nsx_fz_case_build(&d, c, &err) == 0, "%s: %s", recipe, err.msg);
}

/* ---- seeds ------------------------------------------------------------------ */

static int same_doubles(const double *a, const double *b, size_t count)
{
    return memcmp(a, b, count * sizeof *a) == 0;
}

START_TEST(test_seed_reproducible)
{
    nsx_kernel k = clean_kernel();
    nsx_model m = model_of(&k);
    int differ = 0;
    for (uint64_t idx = 0; idx < 40; idx++) {
        nsx_fz_draw a, b, other;
        char ta[800], tb[800], to[800];
        nsx_fz_draw_steered(nsx_fz_problem_seed(7, idx), k.info, &m, &small_shapes, &a);
        nsx_fz_draw_steered(nsx_fz_problem_seed(7, idx), k.info, &m, &small_shapes, &b);
        nsx_fz_draw_steered(nsx_fz_problem_seed(8, idx), k.info, &m, &small_shapes, &other);
        ck_assert_str_eq(nsx_fz_draw_text(&a, ta, sizeof ta), nsx_fz_draw_text(&b, tb, sizeof tb));
        differ += strcmp(ta, nsx_fz_draw_text(&other, to, sizeof to)) != 0;
        nsx_fz_case ca, cb;
        nsx_err err = {0};
        if (nsx_fz_case_build(&a, &ca, &err))
            continue;
        ck_assert_int_eq(nsx_fz_case_build(&b, &cb, &err), 0);
        const nsx_problem *p = &ca.b.p;
        ck_assert_int_eq(p->B, cb.b.p.B);
        ck_assert(same_doubles(ca.b.q, cb.b.q, nsx_q_size(p)));
        for (int d = 0; d < p->n; d++) {
            ck_assert(same_doubles(ca.b.k[d], cb.b.k[d], nsx_k_size(p)));
            ck_assert(same_doubles(ca.b.v[d], cb.b.v[d], nsx_v_size(p)));
        }
        ck_assert_int_eq(ca.b.npairs, cb.b.npairs);
        nsx_fz_case_free(&ca);
        nsx_fz_case_free(&cb);
    }
    ck_assert_int_ge(differ, 35); /* another seed, other problems */

    /* two runs of the same seed judge the same problems the same way */
    nsx_fuzz_opts o;
    nsx_fuzz_summary s1, s2;
    nsx_err err = {0};
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 11;
    o.count = 12;
    o.seconds = 0;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s1, &err), 0);
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s2, &err), 0);
    ck_assert(s1.problems == s2.problems && s1.mpfr == s2.mpfr && s1.loop == s2.loop && s1.skipped == s2.skipped);
    ck_assert(s1.problems == 12);
    nsx_kernel_close(&k);
}
END_TEST

/* ---- the binary64 loop reference --------------------------------------------- */

static const char *const dref_recipes[] = {
    "n=1 L=16 d=8",
    "n=2 L=12 H=2 Hkv=1 d=8 leak=nan:5 probe=all",
    "n=3 L=7 d=5 distinct=1 reduce=mean vb=1,2,-1",
    "n=2 L=10 d=8 dist=large",
    "n=2 L=10 d=8 dist=onehot fmt=f64",
    "n=2 L=10 d=8 dist=subnormal reduce=sum",
    "n=4 L=5 d=3 kb=0.5,1,1,-2 dist=heavy",
    "n=2 L=12 d=8 sel=indices k=4 invalid=1 empty=1",
    "n=2 L=12 d=8 sel=indexer act=softmax k=3 causal=0 w=3,4",
    "n=1 L=24 d=3 dist=equal out=-2 scale=3",
};

/* The rows a pair makes equal to another (leak pairs up to t, batch copies,
   mask probes) are computed once by the judge and copied: its expected
   values, selection and tuple count are those of the reference run on every
   row. */
START_TEST(test_pair_rows_copied)
{
    static const char *const recipes[] = {
        "n=2 L=12 H=2 Hkv=1 d=8 leak=nan:5 probe=all",
        "n=1 L=14 d=5 leak=huge:6 leak=random:3",
        "n=2 L=12 d=8 sel=indexer act=relu k=3 w=3,4 leak=inf:7 probe=all",
        "n=2 L=9 d=4 sel=indices k=3 probe=all",
    };
    nsx_kernel k = clean_kernel();
    nsx_model m = model_of(&k);
    for (size_t r = 0; r < sizeof recipes / sizeof recipes[0]; r++) {
        nsx_fz_draw d = {.seed = 300 + r, .copies = 1};
        snprintf(d.recipe, sizeof d.recipe, "%s", recipes[r]);
        nsx_fz_case c;
        nsx_fz_verdict v;
        nsx_err err = {0};
        ck_assert_msg(nsx_fz_case_build(&d, &c, &err) == 0, "%s: %s", recipes[r], err.msg);
        ck_assert_msg(c.b.npairs >= 2, "%s: %d pairs", recipes[r], c.b.npairs);
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_MPFR, &v, &err), 0);
        ck_assert_msg(v.status == NSX_FZ_PASS, "%s: %s", recipes[r], v.note);
        const nsx_problem *p = &c.b.p;
        size_t no = nsx_o_size(p), nl = nsx_lse_size(p), ns = p->sel.source >= NSX_SEL_INDEXER ? nsx_sel_size(p) : 0;
        nsx_outputs out = {.o = malloc(no * sizeof(double)), .lse = malloc(nl * sizeof(double)),
                           .sel = ns ? malloc(ns * sizeof(int32_t)) : NULL};
        unsigned char *skip = malloc((size_t)p->B * p->L);
        nsx_pairs_unjudged(p, c.b.pairs, c.b.npairs, skip);
        nsx_ref_opts opts = {.fast = 1, .skip = skip};
        nsx_ref_stats st = {0};
        ck_assert_msg(nsx_ref_forward(p, &c.b.in, &out, &opts, &st, &err) == 0, "%s", err.msg);
        ck_assert_msg(memcmp(out.o, c.b.o, no * sizeof(double)) == 0, "%s: o differs", recipes[r]);
        ck_assert_msg(memcmp(out.lse, c.b.lse, nl * sizeof(double)) == 0, "%s: lse differs", recipes[r]);
        for (size_t x = 0; x < ns; x++) /* the unjudged rows' selection is not compared */
            if (!skip[x / (size_t)p->sel.k])
                ck_assert_msg(out.sel[x] == c.b.sel_out[x], "%s: sel[%zu]", recipes[r], x);
        ck_assert_msg(v.tuples == st.tuples, "%s: %llu tuples judged, %llu in all", recipes[r],
                      (unsigned long long)v.tuples, (unsigned long long)st.tuples);
        free(out.o), free(out.lse), free(out.sel), free(skip);
        nsx_fz_verdict_free(&v);
        nsx_fz_case_free(&c);
    }
    /* problem 78 of seed 3: a computed selection, leak pairs and a batch
       copy, where the certified reference gives up (precision cap) and the
       loop reference judges: it reads the selection of the copied rows,
       which must be the kernel's, not the reference's "skipped" marks */
    nsx_fz_draw d;
    nsx_fz_case c;
    nsx_fz_verdict v;
    nsx_err err = {0};
    nsx_fz_draw_problem(nsx_fz_problem_seed(3, 78), k.info, &m, &d);
    ck_assert_msg(nsx_fz_case_build(&d, &c, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_AUTO, &v, &err), 0);
    ck_assert_msg(v.status == NSX_FZ_PASS && v.ref == NSX_FZ_REF_LOOP && c.b.npairs > 0, "%d %d: %s", v.status,
                  v.ref, v.note);
    nsx_fz_verdict_free(&v);
    nsx_fz_case_free(&c);
    nsx_kernel_close(&k);
}
END_TEST

START_TEST(test_dref_within_its_bound)
{
    size_t judged = 0;
    double tight = 0;
    for (size_t r = 0; r < sizeof dref_recipes / sizeof dref_recipes[0]; r++) {
        nsx_fz_case c;
        nsx_err err = {0};
        case_of(dref_recipes[r], 0, 100 + r, &c);
        nsx_instance *b = &c.b;
        const nsx_problem *p = &b->p;
        ck_assert_msg(nsx_build_expect(b, &c.r, NULL, NULL, &err) == 0, "%s", err.msg);
        size_t no = nsx_o_size(p), nl = nsx_lse_size(p);
        double *o = malloc(no * sizeof *o), *l = malloc(nl * sizeof *l);
        double *ou = malloc(no * sizeof *ou), *lu = malloc(nl * sizeof *lu);
        unsigned char *skip = malloc((size_t)p->B * p->L);
        nsx_pairs_unjudged(p, b->pairs, b->npairs, skip);
        const int32_t *sel = p->sel.source == NSX_SEL_INDICES ? b->sel : b->sel_out;
        ck_assert_msg(nsx_dref_forward(p, &b->in, sel, skip, o, l, ou, lu, NULL, &err) == 0, "%s", err.msg);
        for (size_t t = 0; t < no; t++) {
            if (isnan(b->o[t])) {
                ck_assert(isnan(o[t]));
                continue;
            }
            ck_assert_msg(fabs(o[t] - b->o[t]) <= ou[t], "%s: o[%zu] = %.17g, exact %.17g, bound %.3g",
                          dref_recipes[r], t, o[t], b->o[t], ou[t]);
            if (b->o[t] == 0)
                ck_assert_msg(o[t] == 0 || ou[t] > 0, "%s", dref_recipes[r]);
            if (r == 0 && b->o[t] != 0)
                tight = fmax(tight, ou[t] / fabs(b->o[t]));
            judged++;
        }
        for (size_t t = 0; t < nl; t++) {
            if (isnan(b->lse[t]) || isinf(b->lse[t])) {
                ck_assert(isnan(b->lse[t]) ? isnan(l[t]) : l[t] == b->lse[t]);
                continue;
            }
            ck_assert_msg(fabs(l[t] - b->lse[t]) <= lu[t], "%s: lse[%zu] = %.17g, exact %.17g, bound %.3g",
                          dref_recipes[r], t, l[t], b->lse[t], lu[t]);
        }
        free(o), free(l), free(ou), free(lu), free(skip);
        nsx_fz_case_free(&c);
    }
    ck_assert_int_gt(judged, 1000);
    /* the bound is far below what any float32 kernel is allowed */
    ck_assert_msg(tight > 0 && tight < 1e-9, "relative bound %g", tight);
}
END_TEST

/* ---- the oracle with uncertain expected values ------------------------------ */

START_TEST(test_check_uncertainty)
{
    nsx_kernel k = clean_kernel();
    nsx_model m = model_of(&k);
    nsx_fz_case c;
    nsx_err err = {0};
    case_of("n=2 L=8 H=2 d=4 fmt=f32", 0, 5, &c);
    nsx_fz_verdict v;
    ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_MPFR, &v, &err), 0);
    ck_assert_int_eq(v.status, NSX_FZ_PASS);
    const nsx_problem *p = &c.b.p;
    size_t no = nsx_o_size(p), nl = nsx_lse_size(p);
    /* expected values moved by delta, far beyond any bound */
    double *eo = malloc(no * sizeof *eo), *el = malloc(nl * sizeof *el);
    double *uo = malloc(no * sizeof *uo), *ul = malloc(nl * sizeof *ul);
    for (size_t t = 0; t < no; t++) {
        uo[t] = 1e-3 * (fabs(c.b.o[t]) + 1);
        eo[t] = c.b.o[t] + uo[t];
    }
    for (size_t t = 0; t < nl; t++) {
        ul[t] = 1e-3;
        el[t] = c.b.lse[t] - ul[t];
    }
    nsx_outputs ex = {.o = eo, .lse = el};
    nsx_expected_unc unc = {.o = uo, .lse = ul};
    nsx_candidate cand = {.o = v.o, .lse = v.lse};
    nsx_case_info info = nsx_build_info(&c.b, "u", "u", "");
    nsx_check_report rep;
    ck_assert_int_eq(nsx_check(p, &info, &c.b.in, &ex, &cand, &m, &rep, &err), 0);
    ck_assert_msg(!rep.pass, "moved expected values without their uncertainty must fail");
    ck_assert_int_eq(nsx_check_unc(p, &info, &c.b.in, &ex, &unc, &cand, &m, &rep, &err), 0);
    ck_assert_msg(rep.pass, "%s", rep.nnotes ? rep.notes[0] : "");
    /* and the uncertainty is not a blank cheque: a candidate off by ten
       times the uncertainty fails */
    for (size_t t = 0; t < no; t++)
        v.o[t] += 10 * uo[t] + 1e-2;
    ck_assert_int_eq(nsx_check_unc(p, &info, &c.b.in, &ex, &unc, &cand, &m, &rep, &err), 0);
    ck_assert(!rep.pass);
    free(eo), free(el), free(uo), free(ul);
    nsx_fz_verdict_free(&v);
    nsx_fz_case_free(&c);
    nsx_kernel_close(&k);
}
END_TEST

/* ---- reshaping ----------------------------------------------------------------- */

/* c's shape with the positions pos (7 of them). */
static nsx_fz_shape shape_without(const nsx_fz_case *c, int *keep, const int *pos)
{
    nsx_fz_shape s = nsx_fz_shape_of(c, keep);
    s.L = 7;
    s.pos = pos;
    return s;
}

START_TEST(test_reshape_keeps_valid_pairs)
{
    nsx_fz_case c, r;
    nsx_err err = {0};
    case_of("n=2 L=10 d=4 w=3,0 probe=all leak=random:4", 0, 9, &c);
    int probes = 0, leaks = 0;
    for (int x = 0; x < c.b.npairs; x++)
        c.b.pairs[x].kind == NSX_PAIR_PROBE ? probes++ : leaks++;
    ck_assert(probes >= 3 && leaks == 1);
    int keep[64];
    /* a copy keeps everything, bit for bit */
    ck_assert_int_eq(nsx_fz_case_copy(&c, &r, &err), 0);
    ck_assert_int_eq(r.b.npairs, c.b.npairs);
    ck_assert(same_doubles(r.b.k[1], c.b.k[1], nsx_k_size(&c.b.p)));
    nsx_fz_case_free(&r);
    /* without the window, the window's probe no longer holds and goes */
    nsx_fz_shape s = nsx_fz_shape_of(&c, keep);
    s.drop = NSX_FZ_DROP_WINDOWS;
    ck_assert_int_eq(nsx_fz_case_reshape(&c, &s, &r, &err), 0);
    ck_assert_int_eq(r.b.npairs, c.b.npairs - 1);
    ck_assert_int_eq(r.b.p.window[0], 0);
    nsx_fz_case_free(&r);
    /* four positions: the leak pair's t = 4 is past them: the batches are
       equal there (a copy) */
    s = nsx_fz_shape_of(&c, keep);
    s.L = 4;
    ck_assert_int_eq(nsx_fz_case_reshape(&c, &s, &r, &err), 0);
    for (int x = 0; x < r.b.npairs; x++)
        if (r.b.pairs[x].kind == NSX_PAIR_LEAK)
            ck_assert_int_eq(r.b.pairs[x].t, 3);
    nsx_fz_case_free(&r);
    nsx_fz_case_free(&c);

    /* position 3 dropped: keys renumbered, the dropped key a -1 pad, the
       inputs of position 4 now at 3 */
    case_of("n=1 L=8 d=2 sel=indices k=3 leak=random:5", 0, 21, &c);
    const int pos[7] = {0, 1, 2, 4, 5, 6, 7};
    s = shape_without(&c, keep, pos);
    ck_assert_int_eq(nsx_fz_case_reshape(&c, &s, &r, &err), 0);
    ck_assert_int_eq(r.b.p.L, 7);
    for (int b = 0; b < r.b.p.B; b++)
        for (int i = 0; i < 7; i++) {
            ck_assert(same_doubles(r.b.q + nsx_q_at(&r.b.p, b, i, 0, 0), c.b.q + nsx_q_at(&c.b.p, b, pos[i], 0, 0), 2));
            for (int x = 0; x < 3; x++) {
                int32_t old = c.b.sel[nsx_sel_at(&c.b.p, b, pos[i], x)], now = r.b.sel[nsx_sel_at(&r.b.p, b, i, x)];
                ck_assert_int_eq(now, old < 0 ? old : old >= 8 ? old - 1 : old == 3 ? -1 : old > 3 ? old - 1 : old);
            }
        }
    ck_assert_int_eq(r.b.npairs, 1);
    ck_assert_int_eq(r.b.pairs[0].t, 4); /* positions 0..5 shared, one of them gone */
    nsx_fz_case_free(&r);
    nsx_fz_case_free(&c);

    /* a batch with a NaN future cannot lose its pair */
    case_of("n=1 L=6 d=2 leak=nan:2", 0, 3, &c);
    s = nsx_fz_shape_of(&c, keep);
    keep[0] = 1;
    s.nb = 1;
    ck_assert_int_eq(nsx_fz_case_reshape(&c, &s, &r, &err), NSX_E_INPUT);
    nsx_fz_case_free(&c);
}
END_TEST

/* ---- planted bugs: caught, shrunk, saved, replayed ---------------------------- */

/* The first failing problem of seed for kernel k within count problems. */
static int first_failure(const nsx_kernel *k, const nsx_model *m, uint64_t seed, int count, nsx_fz_case *c,
                         unsigned *kinds)
{
    for (int idx = 0; idx < count; idx++) {
        nsx_fz_draw d;
        nsx_err err = {0};
        nsx_fz_draw_steered(nsx_fz_problem_seed(seed, (uint64_t)idx), k->info, m, &small_shapes, &d);
        if (nsx_fz_case_build(&d, c, &err))
            continue;
        nsx_fz_verdict v;
        ck_assert_int_eq(nsx_fz_judge(k, m, c, NSX_FZ_REF_AUTO, &v, &err), 0);
        int failed = v.status == NSX_FZ_FAIL;
        *kinds = v.kinds;
        nsx_fz_verdict_free(&v);
        if (failed)
            return idx;
        nsx_fz_case_free(c);
    }
    return -1;
}

/* Judged candidates for one shrink in test_shrink_keeps_failure: the three
   seeds' shrinks end on their own (a round that keeps nothing) after 55, 34
   and 18, well within it. */
#define SHRINK_TRIES 1000

START_TEST(test_shrink_keeps_failure)
{
    nsx_kernel k = planted(BUG_LEAK);
    nsx_model m = model_of(&k);
    nsx_fz_case c, orig;
    unsigned kinds;
    nsx_err err = {0};
    int found = 0;
    /* failures from several problems, each shrunk */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        ck_assert_int_ge(first_failure(&k, &m, seed, 200, &c, &kinds), 0);
        ck_assert_int_eq(nsx_fz_case_copy(&c, &orig, &err), 0);
        unsigned kind = nsx_fz_primary(kinds);
        nsx_fz_shrink_stats st;
        /* a step budget, not a clock: the same result on a loaded machine */
        ck_assert_int_eq(nsx_fz_shrink_tries(&k, &m, &c, kind, INFINITY, SHRINK_TRIES, &st, &err), 0);
        nsx_fz_verdict v;
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_AUTO, &v, &err), 0);
        ck_assert_int_eq(v.status, NSX_FZ_FAIL);
        ck_assert(v.kinds & kind);
        nsx_fz_verdict_free(&v);
        const nsx_problem *a = &orig.b.p, *b = &c.b.p;
        ck_assert(b->B <= a->B && b->L <= a->L && b->n <= a->n && b->H <= a->H && b->d <= a->d && b->dv <= a->dv);
        ck_assert_msg(nsx_fz_case_work(&c) < nsx_fz_case_work(&orig), "work %g, was %g", nsx_fz_case_work(&c),
                      nsx_fz_case_work(&orig));
        ck_assert(st.steps > 0 && st.tries >= st.steps);
        /* a leak needs three positions for this bug and no more */
        ck_assert_int_eq(b->L, 3);
        found++;
        nsx_fz_case_free(&orig);
        nsx_fz_case_free(&c);
    }
    ck_assert_int_eq(found, 3);
}
END_TEST

START_TEST(test_run_catches_and_saves)
{
    nsx_kernel k = planted(BUG_LEAK);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fuzz-saved", test_tmpdir());
    mkdir(dir, 0777);
    nsx_fuzz_opts o;
    nsx_fuzz_summary s;
    nsx_err err = {0};
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 4;
    o.count = 300;
    o.seconds = 0;
    o.shrink_seconds = 5;
    o.out_dir = dir;
    ck_assert_msg(nsx_fuzz_run(&k, &o, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.nfail, 1);
    const nsx_fuzz_failure *f = &s.fail[0];
    ck_assert_msg(f->path[0] && f->replays, "%s", f->note);

    /* `nsimplex check` fails the saved candidate, exit 1 */
    char cand[600];
    snprintf(cand, sizeof cand, "%.*s.candidate.safetensors", (int)(strlen(f->path) - strlen(".safetensors")), f->path);
    const char *args[] = {"check", f->path, cand, NULL};
    cli_result r;
    ck_assert_int_eq(cli_run(&r, args), 0);
    ck_assert_msg(r.status == 1, "check exit %d: %s%s", r.status, r.out, r.err);
    ck_assert(strstr(r.out, "FAIL") != NULL);
    cli_result_free(&r);

    /* the same problem, alone, from the printed seed and index */
    o.start = f->index;
    o.count = 1;
    o.out_dir = NULL;
    o.shrink_seconds = 0;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s, &err), 0);
    ck_assert_int_eq(s.nfail, 1);
}
END_TEST

START_TEST(test_returning_one_is_a_failure)
{
    nsx_kernel k = planted(BUG_UNSUPPORTED);
    nsx_model m = model_of(&k);
    nsx_fz_case c;
    unsigned kinds;
    ck_assert_int_ge(first_failure(&k, &m, 2, 200, &c, &kinds), 0);
    ck_assert_uint_eq(nsx_fz_primary(kinds), NSX_FZ_UNSUPPORTED);
    nsx_fz_case_free(&c);
}
END_TEST

START_TEST(test_head_permutation)
{
    nsx_err err = {0};
    for (int which = BUG_NONE; which <= BUG_HEAD; which += BUG_HEAD) {
        nsx_kernel k = planted(which);
        nsx_model m = model_of(&k);
        nsx_fz_case c;
        nsx_fz_verdict v;
        case_of("n=2 L=6 H=4 Hkv=2 d=4", 1, 12, &c);
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_AUTO, &v, &err), 0);
        if (which == BUG_NONE) {
            ck_assert_msg(v.status == NSX_FZ_PASS, "%s", v.note);
        } else {
            /* one ulp is within the bound; only the permutation sees it */
            ck_assert_uint_eq(v.kinds, NSX_FZ_HEADS);
        }
        nsx_fz_verdict_free(&v);
        nsx_fz_case_free(&c);
    }
}
END_TEST

START_TEST(test_only_declared_features)
{
    /* a kernel of order 2 without windows, selection, GQA, causal off,
       distinct, biases, sum and mean: nothing of those is drawn */
    nsx_kernel k = planted(BUG_NONE);
    bug_info.max_order = 2;
    bug_info.features = NSX_FEAT_LSE;
    nsx_fuzz_opts o;
    nsx_fuzz_summary s;
    nsx_err err = {0};
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 6;
    o.count = 40;
    o.seconds = 0;
    calls = undeclared = 0;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s, &err), 0);
    ck_assert_msg(s.nfail == 0, "%s", s.fail[0].note);
    ck_assert_int_ge(calls, 40);
    ck_assert_int_eq(undeclared, 0);
    /* the same seed with every feature declared draws some of them */
    nsx_fz_draw d;
    nsx_model m = model_of(&k);
    int featured = 0;
    for (uint64_t idx = 0; idx < 40; idx++) {
        nsx_fz_draw_steered(nsx_fz_problem_seed(6, idx), nsx_simd_info(), &m, &small_shapes, &d);
        featured += strstr(d.recipe, " w=") || strstr(d.recipe, "sel=") || strstr(d.recipe, "distinct") ||
                    strstr(d.recipe, "reduce=") || strstr(d.recipe, "causal=0");
    }
    ck_assert_int_gt(featured, 5);
}
END_TEST


/* A failure that does not come back when the problem is judged again is
   reported as nondeterministic, not shrunk, with the hint to rerun with
   --threads 1; it is still a failure. */
START_TEST(test_nondeterministic)
{
    nsx_kernel k = planted(BUG_FLAKY);
    nsx_fuzz_opts o;
    nsx_fuzz_summary s;
    nsx_err err = {0};
    char *text = NULL;
    size_t len = 0;
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 9;
    o.count = 10;
    o.seconds = 0;
    o.log = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(o.log);
    calls = 0;
    ck_assert_msg(nsx_fuzz_run(&k, &o, &s, &err) == 0, "%s", err.msg);
    fclose(o.log);
    ck_assert_int_eq(s.nfail, 1);
    ck_assert_int_eq(s.fail[0].flaky, 1);
    ck_assert_msg(strstr(text, " (nondeterministic)\n") && strstr(text, "NONDETERMINISTIC") &&
                      strstr(text, "--threads 1"), "%s", text);
    free(text);
    /* a failure that does come back is not */
    k = planted(BUG_LEAK);
    o.log = NULL;
    o.count = 300;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s, &err), 0);
    ck_assert_int_eq(s.nfail, 1);
    ck_assert_int_eq(s.fail[0].flaky, 0);
}
END_TEST

/* ---- the clean kernel ----------------------------------------------------------- */

START_TEST(test_clean_short_run)
{
    nsx_kernel k = clean_kernel();
    nsx_fuzz_opts o;
    nsx_fuzz_summary s;
    nsx_err err = {0};
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 3;
    o.count = 60;
    o.seconds = 0;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s, &err), 0);
    ck_assert_msg(s.nfail == 0, "%s: %s", s.fail[0].draw, s.fail[0].note);
    ck_assert_int_eq(s.problems, 60);
    ck_assert(s.mpfr > 30 && s.skipped < 5);
    nsx_kernel_close(&k);
}
END_TEST

/* A failure that cannot be saved is still a failure (the run returns 0
   with nfail = 1, so `nsimplex fuzz` exits 1; it returned the save's error,
   exit 2 or 3), and a kernel's name is printed with its escape sequences
   made harmless (issue 10). */
START_TEST(test_failed_save_stays_a_failure)
{
    nsx_kernel k = planted(BUG_LEAK);
    bug_info.name = "planted\x1b]0;owned\x07\x1b[31m";
    nsx_fuzz_opts o;
    nsx_fuzz_summary s;
    nsx_err err = {0};
    char *text = NULL;
    size_t len = 0;
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 4;
    o.count = 300;
    o.seconds = 0;
    o.shrink_seconds = 0;
    o.out_dir = "/nonexistent-nsimplex/fuzz-out"; /* every save fails */
    o.log = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(o.log);
    ck_assert_msg(nsx_fuzz_run(&k, &o, &s, &err) == 0, "%s", err.msg);
    fclose(o.log);
    ck_assert_int_eq(s.nfail, 1);
    ck_assert_str_eq(s.fail[0].path, "");
    ck_assert_msg(strstr(text, "kernel: planted?]0;owned??[31m") != NULL, "%s", text);
    ck_assert_ptr_null(memchr(text, 0x1b, len));
    ck_assert_ptr_null(memchr(text, 0x07, len));
    free(text);
}
END_TEST

/* ---- the command line ------------------------------------------------------------ */

START_TEST(test_cli)
{
    char out[512];
    snprintf(out, sizeof out, "%s/fuzz-cli", test_tmpdir());
    const char *ok[] = {"fuzz", "--count", "4", "--seed", "5", "--shapes", "small", "--out", out, NULL};
    cli_result r;
    ck_assert_int_eq(cli_run(&r, ok), 0);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    ck_assert(strstr(r.out, "seed 5") && strstr(r.out, "PASS"));
    cli_result_free(&r);
    const char *so = getenv("NSX_SIMD_SO");
    if (so) {
        const char *lib[] = {"fuzz", "--kernel", so, "--count", "3", "--out", out, NULL};
        ck_assert_int_eq(cli_run(&r, lib), 0);
        ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
        cli_result_free(&r);
    }
    const char *missing[] = {"fuzz", "--kernel", "/nonexistent/lib.so", "--count", "1", "--out", out, NULL};
    ck_assert_int_eq(cli_run(&r, missing), 0);
    ck_assert_int_eq(r.status, 2);
    cli_result_free(&r);
    const char *bad[] = {"fuzz", "--seed", "x", NULL};
    ck_assert_int_eq(cli_run(&r, bad), 0);
    ck_assert_int_eq(r.status, 2);
    cli_result_free(&r);
}
END_TEST


/* ---- steering and the shape mix ------------------------------------------------ */

/* The problem a draw describes (its recipe parsed). */
static nsx_problem drawn(const nsx_fz_draw *d)
{
    nsx_recipe rc;
    nsx_err err = {0};
    ck_assert_msg(nsx_recipe_parse(d->recipe, &rc, &err) == 0, "%s: %s", d->recipe, err.msg);
    return rc.p;
}

START_TEST(test_shape_mix)
{
    /* the default mix: small problems most of the count; the tiles class
       reaches d and dv up to 256 near 64/128/192/256, windows near tile
       multiples, GQA 16/1; the production class L past 2048 (n = 1) and
       1024 (n = 2, windowed) */
    nsx_model m;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_model_from_kernel(nsx_simd_info(), &m, &err), 0);
    int cls[NSX_FZ_CLASSES] = {0}, wide = 0, tile_d = 0, long_L = 0, tile_w = 0, gqa16 = 0, over = 0;
    int max_L[3] = {0};
    const int count = 3000, tiles = 1000, prod = 300;
    nsx_fz_steer st;
    nsx_fz_steer_default(&st);
    for (int idx = 0; idx < count + tiles + prod; idx++) {
        nsx_fz_draw d;
        st.shapes = idx < count ? NSX_FZ_SHAPES_ALL : idx < count + tiles ? NSX_FZ_TILES : NSX_FZ_PRODUCTION;
        nsx_fz_draw_steered(nsx_fz_problem_seed(21, (uint64_t)idx), nsx_simd_info(), &m, &st, &d);
        nsx_problem p = drawn(&d);
        ck_assert(p.d >= 1 && p.d <= 256 && p.dv >= 1 && p.dv <= 256);
        ck_assert(p.L <= (p.n == 1 ? 4096 : 2048));
        over += p.n == 2 && p.L > 1024 && !p.window[0] && !p.window[1];
        if (idx < count) {
            cls[d.cls]++;
            continue;
        }
        ck_assert_int_eq(d.cls, st.shapes);
        if (d.cls == NSX_FZ_TILES) {
            wide += p.d > 128;
            tile_d += p.d == 64 || p.d == 128 || p.d == 192 || p.d == 256 || p.d == 127 || p.d == 129;
            gqa16 += p.H / p.Hkv == 16;
            for (int w = 0; w < p.n; w++)
                tile_w += p.window[w] > 16 && (p.window[w] % 16 <= 1 || p.window[w] % 16 == 15);
        } else {
            long_L += p.L >= 1000;
            if (p.n <= 2 && p.L > max_L[p.n])
                max_L[p.n] = p.L;
        }
    }
    /* forward problems: 88% small, 11.7% tiles (backward ones are all small) */
    ck_assert_msg(cls[NSX_FZ_SMALL] > count * 0.85, "small %d of %d", cls[NSX_FZ_SMALL], count);
    ck_assert_int_gt(cls[NSX_FZ_TILES], count / 12);
    ck_assert_int_ge(cls[NSX_FZ_PRODUCTION], 1);
    ck_assert_int_gt(wide, tiles / 5);
    ck_assert_int_gt(tile_d, tiles / 5);
    ck_assert_int_gt(tile_w, tiles / 20);
    ck_assert_int_gt(gqa16, tiles / 50);
    ck_assert_int_gt(long_L, prod / 5);
    ck_assert_msg(max_L[1] > 2048 && max_L[2] > 1024, "longest n = 1: %d, n = 2: %d", max_L[1], max_L[2]);
    ck_assert_int_eq(over, 0); /* n = 2 past 1024 only windowed */
}
END_TEST

START_TEST(test_steering_draws)
{
    /* --n 2 --max-L 100 --d 64,128 --features windows --shapes tiles:
       only that is drawn, and windows in about half the problems */
    nsx_model m;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_model_from_kernel(nsx_simd_info(), &m, &err), 0);
    nsx_fz_steer st;
    nsx_fz_steer_default(&st);
    st.orders = 1u << 2;
    st.max_L = 100;
    st.nd = 2;
    st.d[0] = 64;
    st.d[1] = 128;
    st.features = NSX_FEAT_WINDOWS;
    st.boost = 1;
    st.shapes = NSX_FZ_TILES;
    char why[160];
    ck_assert_int_eq(nsx_fz_steer_check(&st, nsx_simd_info(), why, sizeof why), 0);
    int windowed = 0;
    const int count = 400;
    for (int idx = 0; idx < count; idx++) {
        nsx_fz_draw d;
        nsx_fz_draw_steered(nsx_fz_problem_seed(5, (uint64_t)idx), nsx_simd_info(), &m, &st, &d);
        nsx_problem p = drawn(&d);
        ck_assert_int_eq(d.cls, NSX_FZ_TILES);
        ck_assert_int_eq(p.n, 2);
        ck_assert_int_le(p.L, 100);
        ck_assert_msg((p.d == 64 || p.d == 128) && (p.dv == 64 || p.dv == 128), "%s", d.recipe);
        ck_assert_msg(p.H == p.Hkv && p.causal && !p.distinct && p.sel.source == NSX_SEL_NONE &&
                          p.reduce == NSX_REDUCE_PRODUCT && p.k_bias[0] == 0 && p.v_bias[1] == 0,
                      "%s", d.recipe);
        windowed += p.window[0] || p.window[1];
    }
    ck_assert_msg(windowed > count / 3, "%d of %d windowed", windowed, count);

    /* the kernel's declared features still bound what is drawn */
    nsx_kernel_info narrow = *nsx_simd_info();
    narrow.features = NSX_FEAT_LSE;
    narrow.max_order = 2;
    ck_assert_int_eq(nsx_fz_steer_check(&st, &narrow, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "does not declare windows"), "%s", why);
    nsx_fz_steer_default(&st);
    st.orders = 1u << 3;
    ck_assert_int_eq(nsx_fz_steer_check(&st, &narrow, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "max_order 2"), "%s", why);
    nsx_fz_steer_default(&st); /* no --features: everything the kernel has */
    for (int idx = 0; idx < 300; idx++) {
        nsx_fz_draw d;
        nsx_fz_draw_steered(nsx_fz_problem_seed(6, (uint64_t)idx), &narrow, &m, &st, &d);
        nsx_problem p = drawn(&d);
        ck_assert_msg(p.n <= 2 && p.H == p.Hkv && p.causal && !p.distinct && !p.window[0] && !p.window[1] &&
                          p.sel.source == NSX_SEL_NONE && p.reduce == NSX_REDUCE_PRODUCT,
                      "%s", d.recipe);
    }
}
END_TEST

START_TEST(test_steer_cli)
{
    char out[512];
    snprintf(out, sizeof out, "%s/fuzz-steer", test_tmpdir());
    /* drawn as asked: --verbose prints every problem */
    const char *ok[] = {"fuzz", "--count", "6", "--seed", "3", "--n", "1,3", "--max-L", "9", "--d", "5,7",
                        "--features", "gqa,sum", "--shapes", "small", "--verbose", "--out", out, NULL};
    cli_result r;
    ck_assert_int_eq(cli_run(&r, ok), 0);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    int lines = 0;
    for (const char *l = strstr(r.out, "problem "); l; l = strstr(l + 1, "\npass problem ")) {
        const char *rec = strstr(l, ": n=");
        ck_assert_ptr_nonnull(rec);
        ck_assert_msg(rec[4] == '1' || rec[4] == '3', "%.80s", rec);
        lines++;
    }
    ck_assert_int_ge(lines, 5);
    ck_assert_ptr_null(strstr(r.out, " w="));
    ck_assert_ptr_null(strstr(r.out, "sel="));
    ck_assert_ptr_null(strstr(r.out, "d=6"));
    cli_result_free(&r);
    /* --json: the summary as one object on stdout, with the worst ratios */
    const char *json[] = {"fuzz", "--count", "5", "--seed", "3", "--shapes", "small", "--json", "--out", out, NULL};
    ck_assert_int_eq(cli_run(&r, json), 0);
    ck_assert_msg(r.status == 0 && cli_count_lines(r.out) == 1 && strstr(r.out, "\"worst\":{\"o\":{\"ratio\":") &&
                      strstr(r.out, "\"pass\":true") && strstr(r.out, "\"shapes\":{\"n\":{"),
                  "%s", r.out);
    cli_result_free(&r);
    /* bad values: exit 2 and one line */
    const char *bad[][3] = {
        {"--n", "9", "--n"},          {"--n", "0", "--n"},           {"--n", "1,,2", "--n"},
        {"--d", "300", "--d"},        {"--d", "0", "--d"},           {"--max-L", "0", "--max-L"},
        {"--max-L", "x", "--max-L"}, {"--features", "bogus", "unknown feature 'bogus'"},
        {"--shapes", "huge", "--shapes"}, {"--features", "", "--features"},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        const char *args[] = {"fuzz", "--count", "1", bad[t][0], bad[t][1], "--out", out, NULL};
        ck_assert_int_eq(cli_run(&r, args), 0);
        ck_assert_msg(r.status == 2 && cli_count_lines(r.err) == 1 && strstr(r.err, bad[t][2]),
                      "%s %s: status %d: %s", bad[t][0], bad[t][1], r.status, r.err);
        cli_result_free(&r);
    }
}
END_TEST

/* The summary's worst ratio is the true worst: every judged problem of the
   run judged again, one by one, and the largest ratio taken. */
START_TEST(test_summary_worst)
{
    nsx_kernel k = clean_kernel();
    nsx_model m = model_of(&k);
    nsx_fuzz_opts o;
    nsx_fuzz_summary s;
    nsx_err err = {0};
    nsx_fuzz_opts_default(&o);
    o.steer = &small_shapes;
    o.seed = 17;
    o.count = 30;
    o.seconds = 0;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s, &err), 0);
    ck_assert_int_eq(s.nfail, 0);
    double wo = 0, wl = 0;
    uint64_t io = 0, il = 0, judged = 0, by_n = 0;
    for (uint64_t idx = 0; idx < 30; idx++) {
        nsx_fz_draw d;
        nsx_fz_case c;
        nsx_fz_verdict v;
        nsx_fz_draw_steered(nsx_fz_problem_seed(17, idx), k.info, &m, &small_shapes, &d);
        if (nsx_fz_case_build(&d, &c, &err))
            continue;
        ck_assert_int_eq(nsx_fz_judge(&k, &m, &c, NSX_FZ_REF_AUTO, &v, &err), 0);
        if (v.status != NSX_FZ_SKIP) {
            judged++;
            if (v.worst_o > wo)
                wo = v.worst_o, io = idx;
            if (v.worst_lse > wl)
                wl = v.worst_lse, il = idx;
            ck_assert(v.worst == fmax(v.worst_o, v.worst_lse));
        }
        nsx_fz_verdict_free(&v);
        nsx_fz_case_free(&c);
    }
    for (int n = 0; n <= NSX_MAX_ORDER; n++)
        by_n += s.by_n[n];
    ck_assert_uint_eq(judged, s.mpfr + s.loop);
    ck_assert_uint_eq(by_n, judged);
    ck_assert_msg(wo > 0 && wo == s.worst_o && io == s.worst_o_index, "%g at %llu vs %g at %llu", wo,
                  (unsigned long long)io, s.worst_o, (unsigned long long)s.worst_o_index);
    ck_assert_msg(wl > 0 && wl == s.worst_lse && il == s.worst_lse_index, "%g vs %g", wl, s.worst_lse);

    /* the same with three problems judged at once (isolated calls): the
       summary's worst is still the true worst */
    nsx_kernel_iso iso = {.timeout = 30};
    nsx_fuzz_summary sj;
    k.iso = &iso;
    o.jobs = 3;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &sj, &err), 0);
    ck_assert_uint_eq(sj.mpfr + sj.loop, judged);
    ck_assert_msg(wo == sj.worst_o && io == sj.worst_o_index && wl == sj.worst_lse && il == sj.worst_lse_index,
                  "jobs 3: %g at %llu, %g at %llu", sj.worst_o, (unsigned long long)sj.worst_o_index, sj.worst_lse,
                  (unsigned long long)sj.worst_lse_index);
    k.iso = NULL;
    nsx_kernel_close(&k);
}
END_TEST

/* Problems judged at once (opts.jobs) give the run of one at a time: the
   same problems, verdicts, counts and shapes, and the same first failure
   of a planted bug (each worker's kernel isolated in its own copy). */
static void same_summary(const nsx_fuzz_summary *a, const nsx_fuzz_summary *b)
{
    ck_assert_uint_eq(a->problems, b->problems);
    ck_assert_uint_eq(a->mpfr, b->mpfr);
    ck_assert_uint_eq(a->loop, b->loop);
    ck_assert_uint_eq(a->skipped, b->skipped);
    ck_assert_uint_eq(a->rejected, b->rejected);
    ck_assert_uint_eq(a->pairs, b->pairs);
    ck_assert_uint_eq(a->heads, b->heads);
    ck_assert_uint_eq(a->bwd, b->bwd);
    ck_assert_uint_eq(a->tuples, b->tuples);
    ck_assert_uint_eq(a->tile_tuples, b->tile_tuples);
    ck_assert(a->worst_o == b->worst_o && a->worst_lse == b->worst_lse);
    ck_assert(a->worst_o_index == b->worst_o_index && a->worst_lse_index == b->worst_lse_index);
    ck_assert(memcmp(a->by_n, b->by_n, sizeof a->by_n) == 0 && memcmp(a->by_L, b->by_L, sizeof a->by_L) == 0 &&
              memcmp(a->by_d, b->by_d, sizeof a->by_d) == 0);
    ck_assert(memcmp(a->cls_judged, b->cls_judged, sizeof a->cls_judged) == 0);
    ck_assert_int_eq(a->nfail, b->nfail);
    for (int x = 0; x < a->nfail; x++) {
        ck_assert_uint_eq(a->fail[x].index, b->fail[x].index);
        ck_assert_uint_eq(a->fail[x].kinds, b->fail[x].kinds);
        ck_assert_str_eq(a->fail[x].draw, b->fail[x].draw);
    }
}

START_TEST(test_jobs_same_run)
{
    nsx_kernel_iso iso = {.timeout = 30};
    nsx_fuzz_opts o;
    nsx_fuzz_summary s1, s2;
    nsx_err err = {0};
    nsx_fuzz_opts_default(&o);
    o.seed = 23;
    o.count = 40;
    o.seconds = 0;
    o.progress = 0;
    nsx_kernel k = clean_kernel();
    k.iso = &iso;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s1, &err), 0);
    o.jobs = 2;
    ck_assert_int_eq(nsx_fuzz_run(&k, &o, &s2, &err), 0);
    ck_assert_uint_eq(s1.problems, 40 - s1.rejected);
    same_summary(&s1, &s2);
    k.iso = NULL;
    nsx_kernel_close(&k);

    /* a planted leak: the first failure is the same problem */
    k = planted(BUG_LEAK);
    k.iso = &iso;
    o.steer = &small_shapes;
    o.seed = 4;
    o.count = 300;
    o.shrink_seconds = 0;
    o.jobs = 0;
    ck_assert_msg(nsx_fuzz_run(&k, &o, &s1, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s1.nfail, 1);
    o.jobs = 4;
    ck_assert_msg(nsx_fuzz_run(&k, &o, &s2, &err) == 0, "%s", err.msg);
    same_summary(&s1, &s2);
}
END_TEST

static Suite *fuzz_suite(void)
{
    Suite *s = suite_create("fuzz");
    TCase *tc = tcase_create("pieces");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_seed_reproducible);
    tcase_add_test(tc, test_dref_within_its_bound);
    tcase_add_test(tc, test_pair_rows_copied);
    tcase_add_test(tc, test_check_uncertainty);
    tcase_add_test(tc, test_reshape_keeps_valid_pairs);
    suite_add_tcase(s, tc);
    tc = tcase_create("planted");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shrink_keeps_failure);
    tcase_add_test(tc, test_run_catches_and_saves);
    tcase_add_test(tc, test_failed_save_stays_a_failure);
    tcase_add_test(tc, test_returning_one_is_a_failure);
    tcase_add_test(tc, test_head_permutation);
    tcase_add_test(tc, test_only_declared_features);
    tcase_add_test(tc, test_nondeterministic);
    suite_add_tcase(s, tc);
    tc = tcase_create("clean");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_clean_short_run);
    tcase_add_test(tc, test_summary_worst);
    tcase_add_test(tc, test_jobs_same_run);
    tcase_add_test(tc, test_shape_mix);
    tcase_add_test(tc, test_steering_draws);
    tcase_add_test(tc, test_steer_cli);
    tcase_add_test(tc, test_cli);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fuzz_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
