/*
 * The oracle's bound at scale (docs/ORACLE.md, "Tightness at scale"): the
 * honest emulated kernels of tests/emu.c (tests/test_oracle.c's, one
 * definition) on vectors of the
 * committed `tiles` suite, or on any case files given in NSX_TIGHTNESS_FILES
 * (space-separated), judged by the oracle's bound row by row (nsx_bound_row,
 * the bound nsx_check judges by); the worst error/bound ratio of o and lse
 * per kernel and per decade of tuples per row is printed
 * (NSX_TIGHTNESS_DEBUG=1: every row's N, t_max, b_max and bounds too).
 *
 * Each kernel runs on a sample of rows (the first rows, where the causal
 * edge clips the slice, then evenly spread ones, the last row) and of heads
 * (the first and the last); the other rows of the candidate are the golden
 * values themselves, error 0.  Every honest kernel must pass (ratio <= 1).
 *
 * make check runs three tiles cases with few rows; the table in ORACLE.md
 * comes from NSX_TIGHTNESS=full (every tiles case, more rows), by hand.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/casefile.h"
#include "nsimplex/ref.h"
#include "oracle/bound.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "tests/emu.h"
#include "tests/harness.h"
#include "vectors/recipe.h"
#include "vectors/suites.h"

/* The kernels measured: the tidy ones that round their outputs. */
static const char *const measured[] = {"naive-bf16", "flash-bf16", "naive-f16", "flash-f16", "naive-f32", "flash-f32"};
#define NMEAS ((int)(sizeof measured / sizeof measured[0]))
#define NDEC 7 /* decades of tuples per row: 1, 10, ..., 10^6 */
#define FLASH_BLOCK 64

static const ekernel *kernel_named(const char *name)
{
    for (int k = 0; k < NKERNELS; k++)
        if (strcmp(kernels[k].name, name) == 0)
            return &kernels[k];
    return NULL;
}

static int decade_of(size_t n)
{
    int d = 0;
    while (n >= 10 && d < NDEC - 1)
        n /= 10, d++;
    return d;
}

/* Row i is in the sample: the first `first`, every stride-th, the last. */
static int sampled(int i, int L, int first, int stride)
{
    return i < first || i % stride == 0 || i == L - 1;
}

/* Each kernel is judged by both bounds (ORACLE.md 3, 9): its model, and
   its model with bound=prob; sub=keep in both, since the emulated kernels
   round among the subnormals (tests/test_oracle.c's R). */
#define NBND 2
static const char *const bound_key[NBND] = {",sub=keep", ",sub=keep,bound=prob"};
static const char *const bound_name[NBND] = {"worst", "prob"};

typedef struct table {
    double o[NBND][NMEAS][NDEC], lse[NBND][NMEAS][NDEC];
    long rows[NDEC];   /* sampled rows (b, h, i) in each decade */
    int na[NMEAS];     /* cases not applicable under the kernel's model */
} table;

/* One case file under every measured kernel, into tb (and *worst_all):
   each sampled row's error against the oracle's own bound for it
   (nsx_bound_row: the bound nsx_check judges by, row by row, so that the
   rows not sampled cost nothing). */
static void measure_file(const char *path, int first, int stride, table *tb, double *worst_all)
{
    nsx_case c;
    nsx_err err;
    ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
    tcase t;
    view_of(&c, &t);
    const nsx_problem *p = &t.p;
    const int32_t *sel = kernel_sel(&t);
    double *o = malloc((size_t)p->dv * sizeof *o), *ob = malloc((size_t)p->dv * sizeof *ob);
    ck_assert(o && ob);
    int counted = 0;
    for (int ki = 0; ki < NMEAS; ki++) {
        const ekernel *K = kernel_named(measured[ki]);
        ck_assert_ptr_nonnull(K);
        nsx_bound_ctx ctx[NBND];
        for (int bk = 0; bk < NBND; bk++) {
            char text[128];
            snprintf(text, sizeof text, "%s%s", K->model, bound_key[bk]);
            nsx_model m = model_of(text);
            ck_assert_int_eq(nsx_bound_init(&ctx[bk], p, &t.in, &m, &err), 0);
        }
        double wo[NBND][NDEC] = {{0}}, wl[NBND][NDEC] = {{0}};
        size_t wN[NBND][NDEC] = {{0}};
        int used = 0, na = 0;
        for (int b = 0; b < p->B && !na; b++)
            for (int i = 0; i < p->L && !na; i++) {
                if (!sampled(i, p->L, first, stride))
                    continue;
                const int32_t *srow = sel ? sel + nsx_sel_at(p, b, i, 0) : NULL;
                size_t N;
                int *list = row_tuples(p, srow, i, &N);
                for (int h = 0; N && h < p->H && !na; h += p->H > 1 ? p->H - 1 : 1) {
                    erow r = {K, p, &t, b, h, nsx_kv_head(p, h), i};
                    double l;
                    if (K->kind == NAIVE)
                        naive_row(&r, list, N, o, &l);
                    else
                        flash_row(&r, list, N, FLASH_BLOCK, o, &l);
                    const double *eo = t.out.o + nsx_o_at(p, b, i, h, 0), el = t.out.lse[nsx_lse_at(p, b, h, i)];
                    int d = decade_of(N);
                    for (int bk = 0; bk < NBND && !na; bk++) {
                        nsx_row_bound rb;
                        int rc = nsx_bound_row(&ctx[bk], b, h, i, srow, eo, el, ob, &rb, &err);
                        if (rc == NSX_E_NOT_APPLICABLE) {
                            na = 1;
                            break;
                        }
                        ck_assert_msg(rc == 0, "%s under %s: %s", path, K->name, err.msg);
                        ck_assert_uint_eq(rb.N, N);
                        if (getenv("NSX_TIGHTNESS_DEBUG"))
                            printf("    %s/%s b%d h%d i%d N %zu t_max %g b_max %g lse_bound %g ob0 %g\n", K->name, bound_name[bk], b, h, i, N,
                                   rb.t_max, rb.b_max, rb.lse, ob[0]);
                        for (int ch = 0; ch < p->dv; ch++) {
                            double e = fabs(o[ch] - eo[ch]), ratio = ob[ch] > 0 ? e / ob[ch] : e > 0 ? INFINITY : 0;
                            ck_assert_msg(ratio <= 1, "%s: honest kernel %s beyond the %s bound: o[%d,%d,%d,%d] error %g bound %g",
                                          path, K->name, bound_name[bk], b, i, h, ch, e, ob[ch]);
                            if (ratio > wo[bk][d])
                                wo[bk][d] = ratio, wN[bk][d] = N;
                        }
                        double e = fabs(l - el), ratio = rb.lse > 0 ? e / rb.lse : e > 0 ? INFINITY : 0;
                        ck_assert_msg(ratio <= 1, "%s: honest kernel %s beyond the %s lse bound", path, K->name, bound_name[bk]);
                        if (ratio > wl[bk][d])
                            wl[bk][d] = ratio;
                    }
                    if (na)
                        break;
                    used |= 1 << d;
                    if (!counted)
                        tb->rows[d]++;
                }
                free(list);
            }
        for (int bk = 0; bk < NBND; bk++)
            nsx_bound_free(&ctx[bk]);
        counted = 1;
        if (na) {
            tb->na[ki]++;
            printf("  %-20s %-11s not applicable: %s\n", c.info.id, K->name, err.msg);
            continue;
        }
        for (int d = 0; d < NDEC; d++) {
            if (!(used & 1 << d))
                continue;
            printf("  %-20s %-11s 10^%d  o %-9.3g (N %zu)  lse %-9.3g  prob: o %-9.3g (N %zu)  lse %.3g\n", c.info.id, K->name, d,
                   wo[0][d], wN[0][d], wl[0][d], wo[1][d], wN[1][d], wl[1][d]);
            for (int bk = 0; bk < NBND; bk++) {
                if (wo[bk][d] > tb->o[bk][ki][d])
                    tb->o[bk][ki][d] = wo[bk][d];
                if (wl[bk][d] > tb->lse[bk][ki][d])
                    tb->lse[bk][ki][d] = wl[bk][d];
                if (wo[bk][d] > *worst_all)
                    *worst_all = wo[bk][d];
            }
        }
        fflush(stdout);
    }
    free(o), free(ob);
    nsx_case_free(&c);
}

static void print_table(const char *title, const table *tb)
{
    for (int bk = 0; bk < NBND; bk++) {
        printf("%s, bound=%s: worst o ratio (lse ratio) per decade of tuples per row\n", title, bound_name[bk]);
        printf("  %-8s %7s", "tuples", "rows");
        for (int k = 0; k < NMEAS; k++)
            printf("  %-17s", measured[k]);
        printf("\n");
        for (int d = 0; d < NDEC; d++) {
            if (!tb->rows[d])
                continue;
            printf("  10^%-5d %7ld", d, tb->rows[d]);
            for (int k = 0; k < NMEAS; k++)
                printf("  %-7.3g (%-7.3g)", tb->o[bk][k][d], tb->lse[bk][k][d]);
            printf("\n");
        }
    }
    for (int k = 0; k < NMEAS; k++)
        if (tb->na[k])
            printf("  %s: %d file(s) not applicable\n", measured[k], tb->na[k]);
}

START_TEST(honest_kernels_at_scale)
{
    table tb;
    memset(&tb, 0, sizeof tb);
    double worst = 0;
    const char *files = getenv("NSX_TIGHTNESS_FILES");
    int full = getenv("NSX_TIGHTNESS") && strcmp(getenv("NSX_TIGHTNESS"), "full") == 0;
    if (files) {
        char *copy = strdup(files), *save = NULL;
        for (char *f = strtok_r(copy, " ", &save); f; f = strtok_r(NULL, " ", &save))
            measure_file(f, 8, 64, &tb, &worst);
        free(copy);
        print_table(files, &tb);
    } else {
        /* make check: three cases, few rows; full: every case */
        static const char *const quick[] = {"n2_L65_d64", "n2_mean_L129", "n1_dsa_L4096"};
        const nsx_suite *s = nsx_suite_find("tiles");
        for (size_t ci = 0; ci < s->count; ci++) {
            int in_quick = 0;
            for (size_t q = 0; q < sizeof quick / sizeof quick[0]; q++)
                in_quick |= strcmp(quick[q], s->cases[ci].name) == 0;
            if (!full && !in_quick)
                continue;
            char path[512];
            snprintf(path, sizeof path, "vectors/tiles/%s.safetensors", s->cases[ci].name);
            int L = 0;
            {
                nsx_recipe r;
                nsx_err err;
                ck_assert_int_eq(nsx_recipe_parse(s->cases[ci].recipe, &r, &err), 0);
                L = r.p.L;
            }
            measure_file(path, full ? 8 : 3, full ? (L > 1024 ? 256 : 16) : (L > 1024 ? 1024 : 64), &tb, &worst);
        }
        print_table(full ? "tiles suite" : "tiles suite, 3 cases (NSX_TIGHTNESS=full for all)", &tb);
    }
    ck_assert(worst <= 1);
    ck_assert(worst > 0);
    /* bound=prob is never looser than the worst case (ORACLE.md 9.4: each
       term is the smaller of the two), so no ratio may drop */
    for (int k = 0; k < NMEAS; k++)
        for (int d = 0; d < NDEC; d++)
            ck_assert_msg(tb.o[1][k][d] >= tb.o[0][k][d], "%s 10^%d: bound=prob looser than the worst case", measured[k], d);
}
END_TEST

/* ---- planted bugs at scale (ORACLE.md 9.6) ----------------------------- */

enum { BUG_SCALE, BUG_DROP_TILE, BUG_RESCALE, NBUGS };
static const char *const bug_name[NBUGS] = {"o scaled by 1 + 1e-3", "one key tile of 64 tuples dropped",
                                            "l not rescaled when the max moves"};

/* flash_row (tests/test_oracle.c) with one planted bug, a deliberate
   variant of it: BUG_RESCALE adds a block's sum to l without multiplying l
   by alpha; BUG_DROP_TILE skips the tuples of the middle block; BUG_SCALE
   multiplies the outputs by 1 + 1e-3. */
static void flash_row_bug(const erow *r, const int *list, size_t N, int bug, double *o, double *lse)
{
    const ekernel *K = r->K;
    const nsx_problem *p = r->p;
    const int n = p->n, dv = p->dv, block = FLASH_BLOCK;
    const size_t skip = N / 2 / (size_t)block * (size_t)block;
    const double c2 = RA(K, RA(K, nsx_problem_score_scale(p)) * RA(K, 1.4426950408889634));
    double m = -INFINITY, l = 0, *acc = calloc((size_t)dv, sizeof *acc), pb[FLASH_BLOCK];
    for (size_t t0 = 0; t0 < N; t0 += (size_t)block) {
        size_t t1 = t0 + (size_t)block < N ? t0 + (size_t)block : N;
        if (bug == BUG_DROP_TILE && t0 == skip && N > (size_t)block)
            continue;
        double mnew = m;
        for (size_t t = t0; t < t1; t++) {
            pb[t - t0] = RA(K, raw_score(r, list + t * n, 0) * c2);
            mnew = fmax(mnew, pb[t - t0]);
        }
        double alpha = m == -INFINITY ? 0 : EXPA(K, exp2(RA(K, m - mnew))), lb = 0;
        for (size_t t = t0; t < t1; t++) {
            pb[t - t0] = EXPA(K, exp2(RA(K, pb[t - t0] - mnew)));
            lb = RA(K, lb + pb[t - t0]);
        }
        l = bug == BUG_RESCALE && m != -INFINITY ? RA(K, l + lb) : RA(K, RA(K, alpha * l) + lb);
        for (int c = 0; c < dv; c++) {
            double sum = 0;
            for (size_t t = t0; t < t1; t++)
                sum = RA(K, sum + R(pb[t - t0], K->w) * reduced(r, list + t * n, c));
            acc[c] = RA(K, RA(K, acc[c] * alpha) + sum);
        }
        m = mnew;
    }
    const double os = RA(K, p->out_scale);
    for (int c = 0; c < dv; c++)
        o[c] = RO(K, RA(K, RA(K, acc[c] / l) * os) * (bug == BUG_SCALE ? 1 + 1e-3 : 1.0));
    *lse = RL(K, RA(K, RA(K, m * RA(K, 0.69314718055994531)) + EXPA(K, log(l))));
    free(acc);
}

/*
 * Planted bugs on the large rows of a tiles case (n2_L65_d64, or the file
 * in NSX_TIGHTNESS_BUG_FILE; three rows of 1,000 or more tuples), run by flash-f32 and flash-bf16: the
 * largest error/bound ratio of any element of the sampled rows under the
 * worst-case bound and under bound=prob.  On n2_L65_d64 each bug must
 * fail the probabilistic bound (ratio > 1) for f32; the worst-case figures
 * are printed, to show what it misses (with a file given: printed only).
 */
START_TEST(planted_bugs_at_scale)
{
    const char *path = getenv("NSX_TIGHTNESS_BUG_FILE") ? getenv("NSX_TIGHTNESS_BUG_FILE") : "vectors/tiles/n2_L65_d64.safetensors";
    nsx_case c;
    nsx_err err;
    ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
    tcase t;
    view_of(&c, &t);
    const nsx_problem *p = &t.p;
    double *o = malloc((size_t)p->dv * sizeof *o), *ob = malloc((size_t)p->dv * sizeof *ob);
    static const char *const kn[] = {"flash-f32", "flash-bf16"};
    for (int ki = 0; ki < 2; ki++) {
        const ekernel *K = kernel_named(kn[ki]);
        nsx_bound_ctx ctx[NBND];
        for (int bk = 0; bk < NBND; bk++) {
            char text[128];
            snprintf(text, sizeof text, "%s%s", K->model, bound_key[bk]);
            nsx_model m = model_of(text);
            ck_assert_int_eq(nsx_bound_init(&ctx[bk], p, &t.in, &m, &err), 0);
        }
        for (int bug = 0; bug < NBUGS; bug++) {
            double worst[NBND] = {0};
            size_t rows = 0;
            for (int i = p->L - 1; i >= 0 && rows < 3; i -= 7) {
                size_t N;
                int *list = row_tuples(p, NULL, i, &N);
                if (N < 1000) {
                    free(list);
                    continue;
                }
                rows++;
                erow r = {K, p, &t, 0, 0, nsx_kv_head(p, 0), i};
                double l;
                flash_row_bug(&r, list, N, bug, o, &l);
                const double *eo = t.out.o + nsx_o_at(p, 0, i, 0, 0);
                for (int bk = 0; bk < NBND; bk++) {
                    nsx_row_bound rb;
                    ck_assert_int_eq(nsx_bound_row(&ctx[bk], 0, 0, i, NULL, eo, t.out.lse[nsx_lse_at(p, 0, 0, i)], ob, &rb, &err), 0);
                    for (int ch = 0; ch < p->dv; ch++)
                        worst[bk] = fmax(worst[bk], fabs(o[ch] - eo[ch]) / ob[ch]);
                }
                free(list);
            }
            ck_assert_uint_gt(rows, 0);
            printf("planted bug at scale: %-11s %-34s worst o ratio: worst-case bound %.3g, bound=prob %.3g\n", K->name,
                   bug_name[bug], worst[0], worst[1]);
            if (ki == 0 && !getenv("NSX_TIGHTNESS_BUG_FILE"))
                ck_assert_msg(worst[1] > 1, "%s: %s passes bound=prob (ratio %g)", K->name, bug_name[bug], worst[1]);
        }
        for (int bk = 0; bk < NBND; bk++)
            nsx_bound_free(&ctx[bk]);
    }
    free(o), free(ob);
    nsx_case_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tightness");
    TCase *tc = tcase_create("at scale");
    tcase_set_timeout(tc, 3600); /* by hand: minutes; make check: seconds */
    tcase_add_test(tc, honest_kernels_at_scale);
    if (!getenv("NSX_TIGHTNESS_FILES"))
        tcase_add_test(tc, planted_bugs_at_scale);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
