/*
 * The optimized indexer and top-k (simd/indexer.h) against the MPFR
 * reference's selection (nsx_ref_select), with every ISA path this CPU has
 * forced in turn:
 *   - every committed vector with a computed selection, and random problems
 *     of every activation and of given scores, causal on and off, k below,
 *     at and above the candidates;
 *   - each row is judged as a set: a valid top-k (min(k, |C(i)|) distinct
 *     candidates) whose difference from the reference's set lies within
 *     the tie tolerance the float32 scores imply (the oracle's bound,
 *     nsx_bound_sel_tol under model f32), and equal to it exactly where the
 *     scores are exact (small integers: the float32 arithmetic is exact) or
 *     exactly tied (equal key rows: the smaller key wins);
 *   - the float32 scores within that bound of the reference's, and the
 *     selection the E9 top-k of the implementation's own scores (the tie
 *     rule, by an independent sort here);
 *   - the top-k alone on ties, short rows and NaN; threads do not change a
 *     bit; the scratch does not grow with L.
 * Randomness is seeded; a failure names the seed's case.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/casefile.h"
#include "nsimplex/ref.h"
#include "oracle/bound.h"
#include "oracle/model.h"
#include "runner/runner.h"
#include "simd/indexer.h"
#include "simd/simd.h"
#include "tests/cli_run.h"
#include "tests/harness.h"
#include "vectors/suites.h"
#include "tests/env.h"

/* ---- judging one selection ------------------------------------------------ */

static int is_cand(const nsx_problem *p, int i, int j)
{
    return j >= 0 && j < p->L && (!p->causal || j <= i);
}

/* The test's own E9 (an independent copy of the rule, by sorting): the
   top-k of scores f[0..C) by score descending, then key ascending. */
static const float *sort_f;
static int by_rank(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    float fa = sort_f[a] == sort_f[a] ? sort_f[a] : -INFINITY;
    float fb = sort_f[b] == sort_f[b] ? sort_f[b] : -INFINITY;
    if (fa != fb)
        return fa > fb ? -1 : 1;
    return (a > b) - (a < b);
}

/* 1 when j is in the row's first `count` entries. */
static int in_row(const int32_t *row, int count, int j)
{
    for (int r = 0; r < count; r++)
        if (row[r] == j)
            return 1;
    return 0;
}

typedef struct judge {
    const nsx_problem *p;
    const nsx_inputs *in;
    const int32_t *gold;    /* the reference's sel */
    const double *gscore;   /* the reference's scores [B,L,L] (idx_s for SCORES) */
    const int32_t *sel;     /* the candidate's */
    const double *score;    /* the candidate's float32 scores [B,L,L], or NULL */
    int exact;              /* 1: the float32 scores are exact: sets must be equal */
    const int *dupkey;      /* exact ties: [b*L+j] the smallest key with j's row of idx_k */
    const char *label;
    int rows_differ;
} judge;

static void judge_rows(judge *J)
{
    const nsx_problem *p = J->p;
    const int L = p->L, k = p->sel.k;
    nsx_model m;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_model_parse("f32", &m, &err), 0);
    nsx_bound_ctx bc;
    ck_assert_int_eq(nsx_bound_init(&bc, p, J->in, &m, &err), 0);
    double *tol = malloc((size_t)L * sizeof *tol);
    int *order = malloc((size_t)L * sizeof *order);
    float *f = malloc((size_t)L * sizeof *f);
    ck_assert(tol && order && f);
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < L; i++) {
            const size_t bi = (size_t)b * L + i;
            const int32_t *row = J->sel + bi * k, *grow = J->gold + bi * k;
            const int C = p->causal ? i + 1 : L, K = k < C ? k : C;
            /* a valid row: K candidates ascending, then -1 pads */
            for (int r = 0; r < k; r++) {
                if (r < K)
                    ck_assert_msg(is_cand(p, i, row[r]) && (r == 0 || row[r] > row[r - 1]),
                                  "%s: sel[%d,%d][%d] = %d is not an ascending candidate", J->label, b, i, r, row[r]);
                else
                    ck_assert_msg(row[r] == -1, "%s: sel[%d,%d][%d] = %d, not the pad", J->label, b, i, r, row[r]);
            }
            /* the selection is the E9 top-k of the candidate's own scores */
            if (J->score) {
                for (int j = 0; j < C; j++) {
                    f[j] = (float)J->score[bi * L + j];
                    order[j] = j;
                }
                for (int j = C; j < L; j++)
                    ck_assert_msg(J->score[bi * L + j] == -INFINITY, "%s: score[%d,%d,%d] of a non-candidate",
                                  J->label, b, i, j);
                sort_f = f;
                qsort(order, (size_t)C, sizeof *order, by_rank);
                for (int r = 0; r < K; r++)
                    ck_assert_msg(in_row(row, K, order[r]), "%s: [%d,%d]: key %d is in the top-%d of the "
                                  "implementation's own scores but not selected", J->label, b, i, order[r], k);
            }
            int same = 1;
            for (int r = 0; r < K; r++)
                same &= in_row(grow, K, row[r]);
            if (J->exact)
                ck_assert_msg(same, "%s: [%d,%d]: exact scores, yet not the reference's set", J->label, b, i);
            /* exact ties: a selected key with an equal, smaller unselected one */
            for (int r = 0; J->dupkey && r < K; r++) {
                int d = J->dupkey[(size_t)b * L + row[r]];
                ck_assert_msg(d == row[r] || in_row(row, K, d),
                              "%s: [%d,%d]: key %d selected but its exact tie %d (smaller) is not", J->label, b,
                              i, row[r], d);
            }
            if (same)
                continue;
            J->rows_differ++;
            /* within the tie tolerance: min over selected (S + tol) >= max
               over unselected (S - tol), S the reference's scores (their
               rounding to binary64 counted) */
            ck_assert_int_eq(nsx_bound_sel_tol(&bc, b, i, tol, &err), 0);
            double lo_in = INFINITY, hi_out = -INFINITY;
            for (int j = 0; j < C; j++) {
                double s = J->gscore[bi * L + j];
                double u = p->sel.source == NSX_SEL_SCORES ? 0 : fabs(s) * 0x1p-53;
                if (in_row(row, K, j))
                    lo_in = fmin(lo_in, s + u + tol[j]);
                else
                    hi_out = fmax(hi_out, s - u - tol[j]);
            }
            ck_assert_msg(lo_in >= hi_out, "%s: [%d,%d]: the selection differs from the reference's beyond the "
                          "tie tolerance (%.17g < %.17g)", J->label, b, i, lo_in, hi_out);
        }
    /* the scores elementwise within the same bound */
    for (int b = 0; J->score && p->sel.source == NSX_SEL_INDEXER && b < p->B; b++)
        for (int i = 0; i < L; i++) {
            ck_assert_int_eq(nsx_bound_sel_tol(&bc, b, i, tol, &err), 0);
            for (int j = 0; j < (p->causal ? i + 1 : L); j++) {
                double s = J->gscore[((size_t)b * L + i) * L + j], c = J->score[((size_t)b * L + i) * L + j];
                ck_assert_msg(fabs(c - s) <= tol[j] + fabs(s) * 0x1p-53, "%s: score[%d,%d,%d] = %.9g, the "
                              "reference's %.17g, beyond the bound %.3g", J->label, b, i, j, c, s, tol[j]);
            }
        }
    nsx_bound_free(&bc);
    free(tol), free(order), free(f);
}

/* ---- the committed vectors -------------------------------------------------- */

START_TEST(golden_vectors_select_as_the_reference)
{
    const int isa = _i;
    if (!nsx_simd_isa_supported(isa)) {
        /* the path compiles, and is refused here */
        ck_assert_int_eq(nsx_simd_topk_row(NULL, 0, 0, 1, NULL, isa), NSX_SIMD_EISA);
        return;
    }
    const nsx_suite *s = nsx_suite_find("default");
    int judged = 0, differ = 0;
    for (size_t ci = 0; ci < s->count; ci++) {
        char path[512];
        nsx_case c;
        nsx_err err = {0};
        snprintf(path, sizeof path, "vectors/default/%s.safetensors", s->cases[ci].name);
        ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
        const nsx_problem *p = &c.p;
        if (p->sel.source != NSX_SEL_INDEXER && p->sel.source != NSX_SEL_SCORES) {
            nsx_case_free(&c);
            continue;
        }
        const size_t LL = (size_t)p->B * p->L * p->L;
        int32_t *sel = malloc(nsx_sel_size(p) * sizeof *sel);
        double *score = malloc(LL * sizeof *score);
        ck_assert(sel && score);
        ck_assert_int_eq(nsx_simd_select(p, &c.in, sel, p->sel.source == NSX_SEL_INDEXER ? score : NULL, 0, isa),
                         NSX_SIMD_OK);
        ck_assert_ptr_nonnull(c.expected.sel);
        char label[600];
        snprintf(label, sizeof label, "%s, %s", path, nsx_simd_isa_name(isa));
        judge J = {.p = p, .in = &c.in, .gold = c.expected.sel, .sel = sel, .label = label,
                   .gscore = p->sel.source == NSX_SEL_SCORES ? c.in.idx_s : c.expected.sel_scores,
                   .score = p->sel.source == NSX_SEL_INDEXER ? score : NULL};
        ck_assert_ptr_nonnull(J.gscore);
        judge_rows(&J);
        differ += J.rows_differ;
        judged++;
        free(sel), free(score);
        nsx_case_free(&c);
    }
    printf("indexer, golden vectors, %s: %d with a computed selection agree (%d rows differ within the tie "
           "tolerance)\n", nsx_simd_isa_name(isa), judged, differ);
    ck_assert_int_ge(judged, 8);
}
END_TEST

/* ---- random problems ---------------------------------------------------------- */

enum kind { K_RELU_EXACT, K_IDENTITY_EXACT, K_SCORES_EXACT, K_RELU, K_IDENTITY, K_SOFTMAX, K_COUNT };
static const char *const kind_names[K_COUNT] = {"relu exact", "identity exact", "scores exact", "relu",
                                                "identity", "softmax"};

/* One random problem of the kind, judged on every ISA path this CPU has. */
static void random_case(int kind, uint64_t seed)
{
    rng r = {seed};
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.B = rng_int(&r, 1, 2);
    p.L = rng_int(&r, 1, 48);
    p.causal = rng_int(&r, 0, 3) != 0;
    p.input_format = NSX_FORMAT_F32;
    const int exact = kind <= K_SCORES_EXACT;
    p.sel.source = kind == K_SCORES_EXACT ? NSX_SEL_SCORES : NSX_SEL_INDEXER;
    p.sel.k = rng_int(&r, 1, p.L + 3); /* below, at and above the candidates */
    p.sel.dims = 1;
    p.sel.act = kind == K_RELU_EXACT || kind == K_RELU         ? NSX_ACT_RELU
                : kind == K_IDENTITY_EXACT || kind == K_IDENTITY ? NSX_ACT_IDENTITY
                                                               : NSX_ACT_SOFTMAX;
    p.sel.Hi = rng_int(&r, 1, 9);
    p.sel.di = rng_int(&r, 1, 24);
    p.sel.idx_scale = ldexp(1.0, rng_int(&r, -3, 1)) * (rng_int(&r, 0, 4) ? 1 : -1);
    char why[200];
    ck_assert_msg(nsx_problem_check(&p, why, sizeof why) == 0, "%s", why);
    tcase t;
    tcase_alloc(&t, &p);
    const size_t BL = (size_t)p.B * p.L, Hi = p.sel.Hi, di = p.sel.di;
    int *dupkey = malloc(BL * sizeof *dupkey);
    ck_assert_ptr_nonnull(dupkey);
    for (size_t x = 0; x < BL; x++)
        dupkey[x] = (int)(x % p.L);
    if (p.sel.source == NSX_SEL_SCORES) {
        /* small integers, many equal; non-candidates hold NaN (never read) */
        for (size_t x = 0; x < BL * p.L; x++) {
            int i = (int)(x / p.L % p.L), j = (int)(x % p.L);
            t.idx_s[x] = is_cand(&p, i, j) ? rng_int(&r, -3, 3) : NAN;
        }
    } else {
        /* exact: small integers (every float32 step exact); else dyadics of
           12 bits, which float32 rounds */
        const int bits = exact ? 2 : 12, frac = exact ? 0 : 6;
        for (size_t x = 0; x < BL * Hi * di; x++)
            t.idx_q[x] = rng_dyadic(&r, bits, frac);
        for (size_t x = 0; x < BL * di; x++)
            t.idx_k[x] = rng_dyadic(&r, bits, frac);
        for (size_t x = 0; x < BL * Hi; x++)
            t.idx_w[x] = exact ? rng_int(&r, -1, 3) : rng_dyadic(&r, 8, 4);
        /* exact ties: some keys repeat an earlier key's row */
        for (int b = 0; b < p.B; b++)
            for (int j = 1; j < p.L; j++)
                if (rng_int(&r, 0, 3) == 0) {
                    int from = rng_int(&r, 0, j - 1);
                    memcpy(t.idx_k + ((size_t)b * p.L + j) * di, t.idx_k + ((size_t)b * p.L + from) * di,
                           di * sizeof(double));
                    dupkey[(size_t)b * p.L + j] = dupkey[(size_t)b * p.L + from];
                }
    }
    nsx_err err = {0};
    ck_assert_msg(nsx_ref_select(&p, &t.in, t.sel_out, t.sel_scores, NULL, NULL, &err) == 0, "seed %llu: %s",
                  (unsigned long long)seed, err.msg);
    int indexer = p.sel.source == NSX_SEL_INDEXER;
    for (int isa = 0; isa < NSX_ISA_COUNT; isa++) {
        if (!nsx_simd_isa_supported(isa))
            continue;
        int32_t *sel = malloc(nsx_sel_size(&p) * sizeof *sel);
        double *score = malloc(BL * p.L * sizeof *score);
        ck_assert(sel && score);
        ck_assert_int_eq(nsx_simd_select(&p, &t.in, sel, indexer ? score : NULL, 0, isa), NSX_SIMD_OK);
        char label[200];
        snprintf(label, sizeof label, "%s, %s, seed %llu (B %d L %d Hi %d di %d k %d causal %d)",
                 nsx_simd_isa_name(isa), kind_names[kind], (unsigned long long)seed, p.B, p.L, p.sel.Hi, p.sel.di,
                 p.sel.k, p.causal);
        judge J = {.p = &p, .in = &t.in, .gold = t.sel_out, .sel = sel, .label = label, .exact = exact,
                   .gscore = indexer ? t.sel_scores : t.idx_s, .score = indexer ? score : NULL,
                   .dupkey = indexer ? dupkey : NULL};
        judge_rows(&J);
        /* one thread or two: the same bits */
        int32_t *sel1 = malloc(nsx_sel_size(&p) * sizeof *sel1);
        double *score1 = malloc(BL * p.L * sizeof *score1);
        ck_assert(sel1 && score1);
        ck_assert_int_eq(nsx_simd_select(&p, &t.in, sel1, indexer ? score1 : NULL, 1, isa), NSX_SIMD_OK);
        ck_assert_msg(memcmp(sel, sel1, nsx_sel_size(&p) * sizeof *sel) == 0, "%s: threads change sel", label);
        ck_assert_msg(!indexer || memcmp(score, score1, BL * p.L * sizeof *score) == 0, "%s: threads change the scores",
                      label);
        free(sel), free(score), free(sel1), free(score1);
    }
    free(dupkey);
    tcase_free(&t);
}

START_TEST(random_problems_select_as_the_reference)
{
    for (int kind = 0; kind < K_COUNT; kind++)
        for (uint64_t n = 0; n < 16; n++)
            random_case(kind, 0x1d0 + 1000 * (uint64_t)kind + n);
}
END_TEST

/* ---- the top-k alone ----------------------------------------------------------- */

START_TEST(topk_ties_short_rows_and_nan)
{
    const int isa = _i;
    if (!nsx_simd_isa_supported(isa))
        return;
    enum { N = 77 };
    float s[N];
    int32_t sel[N + 5];
    /* all equal: the smallest keys */
    for (int j = 0; j < N; j++)
        s[j] = 1.5f;
    ck_assert_int_eq(nsx_simd_topk_row(s, N, 0, 10, sel, isa), NSX_SIMD_OK);
    for (int r = 0; r < 10; r++)
        ck_assert_int_eq(sel[r], r);
    /* a short row: every key, ascending, then pads; keys offset by j0 */
    ck_assert_int_eq(nsx_simd_topk_row(s, 7, 100, 12, sel, isa), NSX_SIMD_OK);
    for (int r = 0; r < 12; r++)
        ck_assert_int_eq(sel[r], r < 7 ? 100 + r : -1);
    /* a tie at the k-th place goes to the smaller key; NaN ranks last */
    for (int j = 0; j < N; j++)
        s[j] = (float)(j % 5);
    s[3] = NAN;
    ck_assert_int_eq(nsx_simd_topk_row(s, N, 0, 17, sel, isa), NSX_SIMD_OK);
    /* 15 keys score 4 (j = 4, 9, ..., 74); then the two smallest with 3 */
    int want[17], w = 0;
    for (int j = 0; j < N; j++)
        if (j % 5 == 4)
            want[w++] = j;
    want[w++] = 8;
    want[w++] = 13;
    int32_t sorted[17];
    memcpy(sorted, want, sizeof sorted);
    for (int a = 0; a < 17; a++)
        for (int b = a + 1; b < 17; b++)
            if (sorted[b] < sorted[a]) {
                int32_t x = sorted[a];
                sorted[a] = sorted[b];
                sorted[b] = x;
            }
    for (int r = 0; r < 17; r++)
        ck_assert_int_eq(sel[r], sorted[r]);
    /* NaN is kept only when nothing else is left */
    ck_assert_int_eq(nsx_simd_topk_row(s, N, 0, N, sel, isa), NSX_SIMD_OK);
    for (int r = 0; r < N; r++)
        ck_assert_int_eq(sel[r], r);
    /* random rows with many duplicates against the test's own sort */
    rng r = {0x70b};
    for (int round = 0; round < 200; round++) {
        int len = rng_int(&r, 1, N), k = rng_int(&r, 1, N + 3), order[N];
        for (int j = 0; j < len; j++) {
            s[j] = (float)rng_int(&r, -4, 4) * 0.25f;
            order[j] = j;
        }
        ck_assert_int_eq(nsx_simd_topk_row(s, len, 0, k, sel, isa), NSX_SIMD_OK);
        sort_f = s;
        qsort(order, (size_t)len, sizeof *order, by_rank);
        int K = k < len ? k : len;
        for (int x = 0; x < K; x++)
            ck_assert_msg(in_row(sel, K, order[x]), "round %d: key %d of the top-%d missing", round, order[x], k);
        for (int x = K; x < k; x++)
            ck_assert_int_eq(sel[x], -1);
    }
}
END_TEST

/* Nothing of size L^2: the scratch depends on k and Hi, and on L only by
   one bit per key. */
START_TEST(scratch_does_not_grow_with_L)
{
    nsx_simd_idx_problem p = {.B = 1, .L = 4096, .source = NSX_SIMD_IDX_INDEXER, .Hi = 64, .di = 128,
                              .act = NSX_SIMD_ACT_RELU, .idx_scale = 1, .causal = 1, .k = 2048};
    size_t at4k = nsx_simd_indexer_scratch_bytes(&p);
    p.L = 1 << 16;
    ck_assert_uint_le(nsx_simd_indexer_scratch_bytes(&p), at4k + ((1 << 16) - 4096) / 8 + 64);
    ck_assert_uint_lt(at4k, 64 * 1024);
}
END_TEST

/* Bad problems are refused with a reason, and nothing is written. */
START_TEST(bad_problems_are_refused)
{
    float q[4] = {1, 2, 3, 4}, kk[4] = {1, 2, 3, 4}, w[2] = {1, 1};
    int32_t sel[4] = {7, 7, 7, 7};
    nsx_simd_idx_problem p = {.B = 1, .L = 2, .source = NSX_SIMD_IDX_INDEXER, .Hi = 1, .di = 2,
                              .act = NSX_SIMD_ACT_RELU, .idx_scale = 1, .causal = 1, .k = 2};
    nsx_simd_idx_io io = {.idx_q = q, .idx_k = kk, .idx_w = w, .sel = sel};
    char why[200];
    ck_assert_int_eq(nsx_simd_indexer_check(&p, &io, why, sizeof why), 0);
    const struct {
        nsx_simd_idx_problem p;
        const char *says;
    } bad[] = {
        {{.B = 1, .L = 2, .source = 1, .Hi = 1, .di = 2, .k = 2, .causal = 1}, "source"},
        {{.B = 1, .L = 2, .source = 2, .Hi = 1, .di = 2, .k = 0, .causal = 1}, "k = 0"},
        {{.B = 1, .L = 2, .source = 2, .Hi = 0, .di = 2, .k = 2, .causal = 1}, "Hi = 0"},
        {{.B = 1, .L = 2, .source = 2, .Hi = 1, .di = 2, .k = 2, .causal = 1, .act = 5}, "act"},
        {{.B = 1, .L = 2, .source = 2, .Hi = 1, .di = 2, .k = 2, .causal = 1, .idx_scale = NAN}, "idx_scale"},
        {{.B = 1, .L = 2, .source = 2, .Hi = 1, .di = 2, .k = 2, .causal = 2}, "causal"},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        ck_assert_int_eq(nsx_simd_indexer_check(&bad[t].p, &io, why, sizeof why), -1);
        ck_assert_msg(strstr(why, bad[t].says), "%s: %s", bad[t].says, why);
        ck_assert_int_eq(nsx_simd_indexer(&bad[t].p, &io, 1), NSX_SIMD_UNSUPPORTED);
    }
    for (int r = 0; r < 4; r++)
        ck_assert_int_eq(sel[r], 7);
    io.idx_k = NULL;
    ck_assert_int_eq(nsx_simd_indexer_check(&p, &io, why, sizeof why), -1);
}
END_TEST

/* eval --impl simd on a vector with a computed selection writes the SIMD
   indexer's sel (and sel_scores for an indexer), and check passes it, on
   every ISA path this CPU has. */
START_TEST(eval_simd_selects_with_the_simd_indexer)
{
    const int isa = _i;
    if (!nsx_simd_isa_supported(isa) || !getenv("NSX_BIN"))
        return;
    const char *tmp = test_tmpdir();
    const char *names[] = {"n1_dsa_relu", "n2_sel_softmax", "n2_ties_relu", "n2_ties_scores", "n2_sel_k_ge_L"};
    setenv("NSX_ISA", nsx_simd_isa_name(isa), 1);
    for (size_t t = 0; t < sizeof names / sizeof names[0]; t++) {
        char vec[256], out[512];
        snprintf(vec, sizeof vec, "vectors/default/%s.safetensors", names[t]);
        snprintf(out, sizeof out, "%s/idx_eval_%s_%d.safetensors", tmp, names[t], isa);
        cli_result r;
        const char *eval[] = {"eval", vec, "--impl", "simd", "--out", out, NULL};
        ck_assert_int_eq(cli_run(&r, eval), 0);
        ck_assert_msg(r.status == 0, "%s: eval: %s", vec, r.err);
        cli_result_free(&r);
        /* the candidate's sel is the SIMD indexer's, not the vector's */
        nsx_case c;
        nsx_err err = {0};
        ck_assert_msg(nsx_case_read(vec, &c, &err) == 0, "%s", err.msg);
        int32_t *sel = malloc(nsx_sel_size(&c.p) * sizeof *sel);
        ck_assert_ptr_nonnull(sel);
        ck_assert_int_eq(nsx_simd_select(&c.p, &c.in, sel, NULL, 0, isa), NSX_SIMD_OK);
        nsx_st st = {0};
        ck_assert_msg(nsx_st_read(out, &st, &err) == 0, "%s", err.msg);
        const nsx_tensor *ts = nsx_st_get(&st, "sel");
        ck_assert_ptr_nonnull(ts);
        ck_assert_msg(memcmp(ts->data, sel, nsx_sel_size(&c.p) * sizeof *sel) == 0, "%s: sel", out);
        ck_assert(!nsx_st_get(&st, "sel_scores") == (c.p.sel.source != NSX_SEL_INDEXER));
        nsx_st_free(&st);
        free(sel);
        nsx_case_free(&c);
        const char *check[] = {"check", vec, out, NULL};
        ck_assert_int_eq(cli_run(&r, check), 0);
        ck_assert_msg(r.status == 0, "%s: check: %s%s", out, r.out, r.err);
        cli_result_free(&r);
        remove(out);
    }
    unsetenv("NSX_ISA");
}
END_TEST

/* ABI 2: the shared library's nsx_kernel_indexer, through the driver, gives
   the in-process indexer's bits; an ABI 1 info (no indexer field) reads as
   no indexer, and is never read past its end. */
START_TEST(abi_indexer_entry)
{
    const char *path = getenv("NSX_SIMD_SO");
    if (!path)
        path = "build/libnsimplex_simd.so";
    nsx_kernel k;
    nsx_err err = {0};
    ck_assert_msg(nsx_kernel_open(&k, path, -1, 0, &err) == 0, "%s", err.msg);
    unsigned caps = nsx_kernel_indexer_caps(k.info);
    ck_assert_uint_eq(caps & (NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL | NSX_IDX_RELU | NSX_IDX_SOFTMAX),
                      NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL | NSX_IDX_RELU | NSX_IDX_SOFTMAX);
    ck_assert_ptr_nonnull(k.indexer);
    rng r = {0xab12};
    for (int act = 0; act < 3; act++) {
        nsx_indexer_problem p = {.B = 2, .L = 37, .Hi = 5, .di = 19, .act = act, .causal = act != 1, .topk = 9,
                                 .idx_scale = 0.25};
        size_t rows = (size_t)p.B * p.L, LL = rows * p.L;
        float *q = malloc(rows * p.Hi * p.di * sizeof *q), *kk = malloc(rows * p.di * sizeof *kk);
        float *w = malloc(rows * p.Hi * sizeof *w), *s1 = malloc(LL * sizeof *s1), *s2 = malloc(LL * sizeof *s2);
        int32_t *sel1 = malloc(rows * p.topk * sizeof *sel1), *sel2 = malloc(rows * p.topk * sizeof *sel2);
        ck_assert(q && kk && w && s1 && s2 && sel1 && sel2);
        for (size_t x = 0; x < rows * p.Hi * p.di; x++)
            q[x] = (float)rng_dyadic(&r, 10, 5);
        for (size_t x = 0; x < rows * p.di; x++)
            kk[x] = (float)rng_dyadic(&r, 10, 5);
        for (size_t x = 0; x < rows * p.Hi; x++)
            w[x] = (float)rng_dyadic(&r, 6, 3);
        nsx_indexer_io io = {.idx_q = q, .idx_k = kk, .idx_w = w, .scores = s1, .sel = sel1};
        ck_assert_int_eq(nsx_kernel_index(&k, &p, &io), 0);
        nsx_simd_idx_problem ip = {.B = p.B, .L = p.L, .source = NSX_SIMD_IDX_INDEXER, .Hi = p.Hi, .di = p.di,
                                   .act = act, .idx_scale = p.idx_scale, .causal = p.causal, .k = p.topk};
        nsx_simd_idx_io iio = {.idx_q = q, .idx_k = kk, .idx_w = w, .scores = s2, .sel = sel2};
        ck_assert_int_eq(nsx_simd_indexer(&ip, &iio, 1), NSX_SIMD_OK);
        ck_assert(memcmp(sel1, sel2, rows * p.topk * sizeof *sel1) == 0);
        ck_assert(memcmp(s1, s2, LL * sizeof *s1) == 0);
        p.topk = 0; /* refused, nothing written */
        sel1[0] = -7;
        ck_assert_int_eq(nsx_kernel_index(&k, &p, &io), 1);
        ck_assert_int_eq(sel1[0], -7);
        free(q), free(kk), free(w), free(s1), free(s2), free(sel1), free(sel2);
    }
    nsx_kernel_close(&k);
    /* ABI 1's info, exactly its size (ASan sees a read past it) */
    struct abi1_info {
        int abi_version;
        const char *name;
        int input_format, accum_format, weights_format, output_format;
        int max_order;
        unsigned features;
    } *old = malloc(sizeof *old);
    ck_assert_ptr_nonnull(old);
    *old = (struct abi1_info){1, "abi1", NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, 1, 0};
    ck_assert_uint_eq(nsx_kernel_indexer_caps((const nsx_kernel_info *)old), 0);
    free(old);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("indexer");
    TCase *tc = tcase_create("indexer");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, golden_vectors_select_as_the_reference, 0, NSX_ISA_COUNT);
    tcase_add_test(tc, random_problems_select_as_the_reference);
    tcase_add_loop_test(tc, topk_ties_short_rows_and_nan, 0, NSX_ISA_COUNT);
    tcase_add_test(tc, scratch_does_not_grow_with_L);
    tcase_add_test(tc, bad_problems_are_refused);
    tcase_add_test(tc, abi_indexer_entry);
    tcase_add_loop_test(tc, eval_simd_selects_with_the_simd_indexer, 0, NSX_ISA_COUNT);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
