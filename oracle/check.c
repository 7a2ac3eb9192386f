/*
 * Judging a candidate (check.h; docs/ORACLE.md section 4):
 *   1. rows that are not judged (second batch of a "nan"/"inf" leak pair);
 *   2. the selection, for computed sources, as a set with tie tolerance;
 *      a valid selection other than the golden one gets its expected
 *      values recomputed by the reference with the candidate's selection;
 *   3. every row: empty slices exactly, every element against its bound;
 *   4. leak pairs and mask probes, bit for bit.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nsimplex/ref.h"
#include "nsimplex/slice.h"
#include "oracle/bound.h"
#include "oracle/bound_bwd.h"
#include "oracle/check.h"
#include "oracle/check_internal.h"
#include "oracle/within.h"

static void note(nsx_check_report *rep, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void note(nsx_check_report *rep, int kind, const char *fmt, ...)
{
    rep->failures++;
    if (rep->nnotes >= NSX_CHECK_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    rep->note_kind[rep->nnotes] = kind;
    vsnprintf(rep->notes[rep->nnotes++], sizeof rep->notes[0], fmt, ap);
    va_end(ap);
}

/* 1 when a and b have the same binary64 bits (the candidate's own bits). */
static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- 1. rows not judged ----------------------------------------------- */

/* skip[b * L + i] = 1: a row the pairs leave unjudged.  An expected lse
   that is NaN anywhere else is a vector that contradicts itself (a NaN
   would leave its row unjudged, a pass on garbage): NSX_E_INPUT. */
static int unjudged_rows(const nsx_problem *p, const nsx_case_info *info, const nsx_outputs *ex,
                         unsigned char *skip, nsx_err *err)
{
    nsx_pairs_unjudged(p, info ? info->pairs : NULL, info ? info->npairs : 0, skip);
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->L; i++)
                if (isnan(ex->lse[nsx_lse_at(p, b, h, i)]) && !skip[(size_t)b * p->L + i])
                    return nsx_err_set(err, NSX_E_INPUT,
                                       "vector: expected lse[b=%d,h=%d,i=%d] is NaN, but no leak pair leaves "
                                       "row %d of batch %d unjudged", b, h, i, i, b);
    return 0;
}

/* ---- 0. the vector's own claims (nsx_pairs_consistent) ------------------ */

/* Rows lo..hi of batches a and b of a tensor [B, L, per] agree bit for
   bit, leaving out position `except` (-1: none). */
static int rows_agree(const void *x, size_t elem, size_t per, const nsx_problem *p, int a, int b, int lo,
                      int hi, int except)
{
    const char *base = x;
    for (int i = lo; i <= hi; i++) {
        if (i == except)
            continue;
        size_t row = per * elem;
        if (memcmp(base + ((size_t)a * p->L + i) * row, base + ((size_t)b * p->L + i) * row, row) != 0)
            return 0;
    }
    return 1;
}

/* Distinct keys for the other dimensions: a bipartite matching of
   dimensions to keys (Kuhn's augmenting paths, O(n^2 L) tests; a search
   over tuples would be exponential on a hostile vector).  owner[key] is
   the dimension holding it or -1; seen marks the keys of one search. */
typedef struct matching {
    const nsx_problem *p;
    const int32_t *sel_row;
    int i, m, j;          /* the probe: dimension m holds key j */
    int *owner;
    unsigned char *seen;
} matching;

static int augment(matching *mt, int x)
{
    for (int key = 0; key < mt->p->L; key++) {
        if (key == mt->j || mt->seen[key] || !nsx_key_allowed(mt->p, mt->sel_row, mt->i, x, key))
            continue;
        mt->seen[key] = 1;
        if (mt->owner[key] < 0 || augment(mt, mt->owner[key])) {
            mt->owner[key] = x;
            return 1;
        }
    }
    return 0;
}

/* 1 when some allowed tuple of query i has j_m = j, 0 when none, -1 out of
   memory. */
static int key_used(const nsx_problem *p, const int32_t *sel_row, int i, int m, int j)
{
    if (!nsx_key_allowed(p, sel_row, i, m, j))
        return 0;
    if (!p->distinct) {
        for (int x = 0; x < p->n; x++) {
            int any = x == m;
            for (int key = 0; key < p->L && !any; key++)
                any = nsx_key_allowed(p, sel_row, i, x, key);
            if (!any)
                return 0;
        }
        return 1;
    }
    matching mt = {p, sel_row, i, m, j, malloc((size_t)p->L * sizeof(int)), malloc((size_t)p->L)};
    int r = mt.owner && mt.seen;
    for (int key = 0; r && key < p->L; key++)
        mt.owner[key] = -1;
    for (int x = 0; r == 1 && x < p->n; x++) {
        if (x == m)
            continue;
        memset(mt.seen, 0, (size_t)p->L);
        r = augment(&mt, x);
    }
    if (!mt.owner || !mt.seen)
        r = -1;
    free(mt.owner);
    free(mt.seen);
    return r;
}

/* A gradient leak pair (SPEC 4.5): every input agrees at every position,
   except q and do at positions < t; the expected o, lse and dq of the rows
   >= t and dk_m, dv_m at the positions >= t agree. */
static int gradleak_consistent(const nsx_problem *p, const nsx_pair *pr, int x, const nsx_inputs *in,
                               const nsx_outputs *ex, nsx_err *err)
{
    const size_t D = sizeof(double);
    const int a = pr->a, b = pr->b, t = pr->t, L = p->L;
    const char *what = NULL;
    char name[32];
    if (!rows_agree(in->q, D, (size_t)p->H * p->d, p, a, b, t, L - 1, -1))
        what = "q";
    else if (in->dout && !rows_agree(in->dout, D, (size_t)p->H * p->dv, p, a, b, t, L - 1, -1))
        what = "do";
    for (int k = 0; k < p->n && !what; k++) {
        if (!rows_agree(in->k[k], D, (size_t)p->Hkv * p->d, p, a, b, 0, L - 1, -1))
            snprintf(name, sizeof name, "k%d", k + 1), what = name;
        else if (!rows_agree(in->v[k], D, (size_t)p->Hkv * p->dv, p, a, b, 0, L - 1, -1))
            snprintf(name, sizeof name, "v%d", k + 1), what = name;
    }
    if (!what && p->sel.source == NSX_SEL_INDICES &&
        !rows_agree(in->sel, sizeof(int32_t), (size_t)p->sel.k, p, a, b, 0, L - 1, -1))
        what = "sel";
    if (!what && p->sel.source == NSX_SEL_INDEXER &&
        (!rows_agree(in->idx_q, D, (size_t)p->sel.Hi * p->sel.di, p, a, b, 0, L - 1, -1) ||
         !rows_agree(in->idx_k, D, (size_t)p->sel.di, p, a, b, 0, L - 1, -1) ||
         !rows_agree(in->idx_w, D, (size_t)p->sel.Hi, p, a, b, 0, L - 1, -1)))
        what = "the indexer's inputs";
    if (!what && p->sel.source == NSX_SEL_SCORES && !rows_agree(in->idx_s, D, (size_t)L, p, a, b, 0, L - 1, -1))
        what = "idx_s";
    if (what)
        return nsx_err_set(err, NSX_E_INPUT, "vector: pair %d (gradleak, batches %d and %d): %s differs at a position "
                           "other than q's and do's before t = %d", x, a, b, what, t);
    int bad = ex && ex->o && ex->lse &&
              (!rows_agree(ex->o, D, (size_t)p->H * p->dv, p, a, b, t, L - 1, -1));
    for (int h = 0; ex && ex->lse && h < p->H && !bad; h++)
        bad = memcmp(ex->lse + nsx_lse_at(p, a, h, t), ex->lse + nsx_lse_at(p, b, h, t), (size_t)(L - t) * D) != 0;
    if (!bad && ex && ex->dq)
        bad = !rows_agree(ex->dq, D, (size_t)p->H * p->d, p, a, b, t, L - 1, -1);
    for (int k = 0; ex && ex->dq && k < p->n && !bad; k++)
        bad = !rows_agree(ex->dk[k], D, (size_t)p->Hkv * p->d, p, a, b, t, L - 1, -1) ||
              !rows_agree(ex->dv[k], D, (size_t)p->Hkv * p->dv, p, a, b, t, L - 1, -1);
    if (bad)
        return nsx_err_set(err, NSX_E_INPUT, "vector: pair %d (gradleak, batches %d and %d): the expected outputs or "
                           "gradients at positions >= %d differ across the pair", x, a, b, t);
    return 0;
}

int nsx_pairs_consistent(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
                         const nsx_outputs *ex, nsx_err *err)
{
    const size_t D = sizeof(double);
    for (int x = 0; info && x < info->npairs; x++) {
        const nsx_pair *pr = &info->pairs[x];
        if (pr->kind == NSX_PAIR_GRADLEAK) {
            int rc = gradleak_consistent(p, pr, x, in, ex, err);
            if (rc)
                return rc;
            continue;
        }
        int leak = pr->kind == NSX_PAIR_LEAK, a = pr->a, b = pr->b;
        /* the rows the claim is about, and the positions they read */
        int lo = leak ? 0 : pr->i, hi = leak ? pr->t : pr->i;
        int last = leak && p->causal ? pr->t : p->L - 1;
        int m = leak ? -1 : pr->dim - 1, jx = leak ? -1 : pr->j;
        const char *what = NULL;
        char name[32];
        if (!rows_agree(in->q, D, (size_t)p->H * p->d, p, a, b, 0, last, -1))
            what = "q";
        for (int k = 0; k < p->n && !what; k++) {
            int except = k == m ? jx : -1; /* the probe's own change */
            if (!rows_agree(in->k[k], D, (size_t)p->Hkv * p->d, p, a, b, 0, last, except)) {
                snprintf(name, sizeof name, "k%d", k + 1);
                what = name;
            } else if (!rows_agree(in->v[k], D, (size_t)p->Hkv * p->dv, p, a, b, 0, last, except)) {
                snprintf(name, sizeof name, "v%d", k + 1);
                what = name;
            }
        }
        if (!what && p->sel.source == NSX_SEL_INDICES &&
            !rows_agree(in->sel, sizeof(int32_t), (size_t)p->sel.k, p, a, b, lo, hi, -1))
            what = "sel";
        if (!what && p->sel.source == NSX_SEL_INDEXER &&
            (!rows_agree(in->idx_q, D, (size_t)p->sel.Hi * p->sel.di, p, a, b, 0, last, -1) ||
             !rows_agree(in->idx_k, D, (size_t)p->sel.di, p, a, b, 0, last, -1) ||
             !rows_agree(in->idx_w, D, (size_t)p->sel.Hi, p, a, b, 0, last, -1)))
            what = "the indexer's inputs";
        for (int i = lo; i <= hi && !what && p->sel.source == NSX_SEL_SCORES; i++)
            if (memcmp(in->idx_s + ((size_t)a * p->L + i) * p->L, in->idx_s + ((size_t)b * p->L + i) * p->L,
                       (size_t)(last + 1) * D) != 0)
                what = "idx_s";
        if (what)
            return nsx_err_set(err, NSX_E_INPUT,
                               "vector: pair %d (%s, batches %d and %d): %s differs at a position %s", x,
                               nsx_pair_kind_name(pr->kind), a, b, what,
                               leak ? "its shared rows read" : "other than the probe's");
        /* a probe's key must be one that no allowed tuple of row i uses */
        if (!leak) {
            const int32_t *sel = p->sel.source == NSX_SEL_INDICES ? in->sel : ex ? ex->sel : NULL;
            for (int bb = 0; bb < 2; bb++) {
                int batch = bb ? b : a;
                const int32_t *row = sel ? sel + nsx_sel_at(p, batch, pr->i, 0) : NULL;
                if (p->sel.source != NSX_SEL_NONE && !row)
                    continue; /* S(i) unknown here: not checked */
                int used = key_used(p, row, pr->i, m, pr->j);
                if (used < 0)
                    return nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
                if (used)
                    return nsx_err_set(err, NSX_E_INPUT,
                                       "vector: pair %d (probe, batches %d and %d): key %d is used by an "
                                       "allowed tuple of query %d in dimension %d", x, a, b, pr->j, pr->i,
                                       pr->dim);
            }
        }
        /* a gradient case's upstream gradient of the shared rows */
        if (in->dout && !rows_agree(in->dout, D, (size_t)p->H * p->dv, p, a, b, lo, hi, -1))
            return nsx_err_set(err, NSX_E_INPUT, "vector: pair %d (%s, batches %d and %d): do differs in a shared row",
                               x, nsx_pair_kind_name(pr->kind), a, b);
        if (ex && ex->dq && !rows_agree(ex->dq, D, (size_t)p->H * p->d, p, a, b, lo, hi, -1))
            return nsx_err_set(err, NSX_E_INPUT, "vector: pair %d (%s, batches %d and %d): the expected dq of a shared "
                               "row differs across the pair", x, nsx_pair_kind_name(pr->kind), a, b);
        /* the expected values obey the claim */
        for (int i = lo; ex && ex->o && ex->lse && i <= hi; i++)
            for (int h = 0; h < p->H; h++)
                if (memcmp(ex->o + nsx_o_at(p, a, i, h, 0), ex->o + nsx_o_at(p, b, i, h, 0), (size_t)p->dv * D) ||
                    memcmp(ex->lse + nsx_lse_at(p, a, h, i), ex->lse + nsx_lse_at(p, b, h, i), D))
                    return nsx_err_set(err, NSX_E_INPUT,
                                       "vector: pair %d (%s, batches %d and %d): the expected outputs of row "
                                       "%d, head %d differ across the pair", x, nsx_pair_kind_name(pr->kind), a,
                                       b, i, h);
    }
    return 0;
}

/* ---- 2. the selection (ORACLE.md section 5) --------------------------- */

/* Half the larger binary64 spacing at s: |S - s| for s = RN(S). */
static double half_ulp(double s)
{
    return fmax(nextafter(s, INFINITY) - s, s - nextafter(s, -INFINITY)) / 2;
}

/* Judges the candidate's row (b, i).  Returns 1 valid and equal to the
   golden set, 2 valid and different, 0 invalid (noted). */
static int judge_sel_row(const nsx_problem *p, nsx_bound_ctx *bc, int b, int i, const int32_t *crow,
                         const int32_t *grow, const double *score, int score_exact, unsigned char *in_c,
                         double *tol, nsx_check_report *rep, nsx_err *err, int *rc)
{
    const int L = p->L, k = p->sel.k;
    int nc = 0, nx = 0;
    for (int j = 0; j < L; j++) {
        in_c[j] = 0;
        nc += nsx_ref_is_candidate(p, i, j);
    }
    /* the set: valid candidate keys; -1, out of range and non-candidate
       (future) entries are all pads */
    for (int r = 0; r < k; r++) {
        int j = crow[r];
        if (j < 0 || j >= L || !nsx_ref_is_candidate(p, i, j))
            continue;
        if (in_c[j]) {
            note(rep, NSX_NOTE_SEL, "sel[b=%d,i=%d]: index %d is listed twice", b, i, j);
            return 0;
        }
        in_c[j] = 1;
        nx++;
    }
    int want = nc < k ? nc : k;
    if (nx != want) {
        note(rep, NSX_NOTE_SEL, "sel[b=%d,i=%d]: %d valid keys selected, a top-%d of %d candidates has %d", b, i, nx, k, nc, want);
        return 0;
    }
    if ((*rc = nsx_bound_sel_tol(bc, b, i, tol, err)))
        return 0;
    /* valid iff some scores within tolerance make it a top-k:
       min over selected (S + tol) >= max over unselected (S - tol) */
    double lo_in = INFINITY, hi_out = -INFINITY;
    int j_in = -1, j_out = -1;
    for (int j = 0; j < L; j++) {
        if (!nsx_ref_is_candidate(p, i, j))
            continue;
        double s = score[((size_t)b * L + i) * L + j];
        double r = score_exact ? 0.0 : half_ulp(s);
        if (isnan(tol[j])) { /* as nsx_within: a NaN bound passes nothing */
            note(rep, NSX_NOTE_SEL, "sel[b=%d,i=%d]: the tolerance of key %d could not be computed (NaN)", b, i, j);
            return 0;
        }
        if (in_c[j] && s + r + tol[j] < lo_in)
            lo_in = s + r + tol[j], j_in = j;
        if (!in_c[j] && s - r - tol[j] > hi_out)
            hi_out = s - r - tol[j], j_out = j;
    }
    if (lo_in < hi_out) {
        note(rep, NSX_NOTE_SEL, "sel[b=%d,i=%d]: key %d (score %.17g) is selected but key %d (score %.17g) is not, beyond "
                  "the tolerance", b, i, j_in, score[((size_t)b * L + i) * L + j_in], j_out,
             score[((size_t)b * L + i) * L + j_out]);
        return 0;
    }
    for (int r = 0; r < k; r++)
        if (grow[r] >= 0 && grow[r] < L && !in_c[grow[r]])
            return 2;
    return 1;
}

/* The selection used for the expected values: the golden one, or for rows
   where the candidate's valid selection differs, the candidate's.  Fills
   *use (owned by the caller) and reports; recomputes expected values into
   own (o, lse) when any row differs.  Returns 0 or an exit code. */
static int check_selection(const nsx_problem *p, const nsx_inputs *in, const nsx_outputs *ex,
                           const nsx_candidate *cand, const unsigned char *skip, nsx_bound_ctx *bc,
                           int32_t *use, double **own_o, double **own_lse, nsx_check_report *rep,
                           nsx_err *err)
{
    const int L = p->L, k = p->sel.k;
    int rc = 0;
    int32_t *golden = NULL;
    double *scores = NULL;
    const int32_t *gsel = ex->sel;
    const double *score = p->sel.source == NSX_SEL_SCORES ? in->idx_s : ex->sel_scores;
    unsigned char *in_c = malloc((size_t)L);
    double *tol = malloc((size_t)L * sizeof *tol);

    if (!in_c || !tol)
        goto oom;
    if (!gsel || !score) {
        golden = malloc(nsx_sel_size(p) * sizeof *golden);
        scores = p->sel.source == NSX_SEL_INDEXER ? malloc((size_t)p->B * L * L * sizeof *scores) : NULL;
        if (!golden || (p->sel.source == NSX_SEL_INDEXER && !scores))
            goto oom;
        if ((rc = nsx_ref_select(p, in, golden, scores, NULL, NULL, err)))
            goto done;
        if (!gsel)
            gsel = golden;
        if (!score)
            score = scores;
    }
    memcpy(use, gsel, nsx_sel_size(p) * sizeof *use);
    rep->sel_status = cand->sel ? 1 : 2;
    if (!cand->sel)
        goto done;
    for (int b = 0; b < p->B && !rc; b++)
        for (int i = 0; i < L && !rc; i++) {
            if (skip[(size_t)b * L + i])
                continue;
            const int32_t *crow = cand->sel + nsx_sel_at(p, b, i, 0);
            int v = judge_sel_row(p, bc, b, i, crow, gsel + nsx_sel_at(p, b, i, 0), score,
                                  p->sel.source == NSX_SEL_SCORES, in_c, tol, rep, err, &rc);
            rep->sel_rows++;
            if (rc)
                break;
            if (v == 0) {
                rep->sel_failed++;
            } else if (v == 2) {
                /* the candidate's set, ascending, -1 pads */
                int32_t *urow = use + nsx_sel_at(p, b, i, 0);
                int x = 0;
                for (int j = 0; j < L; j++)
                    if (in_c[j])
                        urow[x++] = j;
                while (x < k)
                    urow[x++] = -1;
                rep->sel_differ++;
            }
        }
    if (rc || !rep->sel_differ)
        goto done;
    /* E1-E6 with the candidate's selection given as indices */
    nsx_problem q = *p;
    nsx_inputs qin = *in;
    q.sel.source = NSX_SEL_INDICES;
    qin.sel = use;
    *own_o = malloc(nsx_o_size(p) * sizeof **own_o);
    *own_lse = malloc(nsx_lse_size(p) * sizeof **own_lse);
    if (!*own_o || !*own_lse)
        goto oom;
    nsx_outputs out = {.o = *own_o, .lse = *own_lse};
    /* unjudged rows are not recomputed: a huge future can make them
       undecidable at any precision (ref.h, opts.skip) */
    nsx_ref_opts opts = {.allow_nonfinite = 1, .skip = skip};
    if ((rc = nsx_ref_forward(&q, &qin, &out, &opts, NULL, err)))
        nsx_err_prefix(err, "reference with the candidate's selection");
    goto done;
oom:
    rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
done:
    free(in_c);
    free(tol);
    free(golden);
    free(scores);
    return rc;
}

/* ---- 3. rows ----------------------------------------------------------- */

static void track(nsx_check_worst *w, int b, int h, int i, int c, double err, double bound, double ex,
                  double cv, const nsx_row_bound *rb)
{
    double ratio = bound > 0 ? err / bound : err > 0 ? INFINITY : 0.0;
    if (w->found && !(ratio > w->ratio))
        return;
    *w = (nsx_check_worst){1, b, h, i, c, err, bound, ratio, ex, cv, rb->N, rb->t_max, 0};
}

static int lse_conv_ok(int conv, double v)
{
    if (conv == NSX_LSE_MINUS_INF)
        return v == -INFINITY;
    if (conv == NSX_LSE_PLUS_INF)
        return v == INFINITY;
    return isinf(v);
}

/* The bounds of every judged row, computed before any is judged so that
   the expensive part runs in threads (as ref/fast.c's rows: pthreads, no
   OpenMP, whose GNU runtime hangs a child forked after a parallel region,
   and the kernels under test run in such children: runner/runner.c).
   Each row's bound depends on that row alone (a context per thread holds
   all the scratch), so the values are the same for any thread count and
   schedule; the judging stays sequential, in row order, so the report is
   too. */
typedef struct row_bounds {
    double *o;          /* dv bounds per row, row r = (b L + i) H + h */
    nsx_row_bound *rb;  /* per row */
    int *rc;            /* per row: 0, or the bound's error kind */
    long first;         /* the first row in row order whose bound failed; -1 none */
    nsx_err err;        /* its error */
} row_bounds;

typedef struct rb_shared {
    const nsx_problem *p;
    const double *ex_o, *ex_lse;
    const nsx_expected_unc *unc;
    const int32_t *sel;
    const unsigned char *skip;
    row_bounds *rbs;
    long rows;
    atomic_long next;   /* the next row to take */
    atomic_long first;  /* as row_bounds.first, while they run */
    pthread_mutex_t lock;
} rb_shared;

typedef struct rb_worker {
    rb_shared *sh;
    nsx_bound_ctx *ctx;
} rb_worker;

static void row_bounds_free(row_bounds *rbs)
{
    free(rbs->o);
    free(rbs->rb);
    free(rbs->rc);
}

static void *row_bounds_worker(void *arg)
{
    const rb_worker *w = arg;
    rb_shared *sh = w->sh;
    const nsx_problem *p = sh->p;
    const int dv = p->dv;
    for (;;) {
        long r = atomic_fetch_add(&sh->next, 1);
        if (r >= sh->rows)
            break;
        long f = atomic_load(&sh->first);
        if (f >= 0 && r > f) /* the judging stops at row f */
            continue;
        const int h = (int)(r % p->H), i = (int)(r / p->H % p->L), b = (int)(r / p->H / p->L);
        if (sh->skip[(size_t)b * p->L + i])
            continue;
        const double *eo = sh->ex_o + nsx_o_at(p, b, i, h, 0);
        int finite = 1;
        for (int x = 0; x < dv; x++)
            finite &= isfinite(eo[x]) != 0;
        if (!finite) /* the judging reports it before reading a bound */
            continue;
        const int32_t *srow = sh->sel ? sh->sel + nsx_sel_at(p, b, i, 0) : NULL;
        const double *uo = sh->unc && sh->unc->o ? sh->unc->o + nsx_o_at(p, b, i, h, 0) : NULL;
        double el = sh->ex_lse[nsx_lse_at(p, b, h, i)];
        double ul = sh->unc && sh->unc->lse ? sh->unc->lse[nsx_lse_at(p, b, h, i)] : 0.0;
        nsx_err e = {0};
        row_bounds *rbs = sh->rbs;
        int rc = nsx_bound_row_unc(w->ctx, b, h, i, srow, eo, uo, el, ul, rbs->o + (size_t)r * dv, &rbs->rb[r], &e);
        rbs->rc[r] = rc;
        if (rc) {
            pthread_mutex_lock(&sh->lock);
            f = atomic_load(&sh->first);
            if (f < 0 || r < f) {
                rbs->err = e;
                atomic_store(&sh->first, r);
            }
            pthread_mutex_unlock(&sh->lock);
        }
    }
    return NULL;
}

/* Phase 1: the bound of every row that the judging loop of check_rows
   would compute (not skipped, expected o finite), into rbs, in threads
   (0: one per online CPU), at most one per NSX_CHECK_TUPLES_PER_THREAD
   tuples of the slices' sizes; a row after the first failed one may be left out
   (the judging stops there).  0 or NSX_E_NOMEM. */
static int row_bounds_compute(const nsx_problem *p, const double *ex_o, const double *ex_lse,
                              const nsx_expected_unc *unc, const int32_t *sel, const unsigned char *skip,
                              nsx_bound_ctx *bc, int threads, row_bounds *rbs, nsx_err *err)
{
    const long rows = (long)p->B * p->L * p->H;
    memset(rbs, 0, sizeof *rbs);
    rbs->first = -1;
    rbs->o = malloc((size_t)rows * p->dv * sizeof *rbs->o);
    rbs->rb = malloc((size_t)rows * sizeof *rbs->rb);
    rbs->rc = calloc((size_t)rows, sizeof *rbs->rc);
    if (!rbs->o || !rbs->rb || !rbs->rc) {
        row_bounds_free(rbs);
        return nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
    }
    long nt = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
    size_t work = 0; /* the slices' tuples, saturating */
    for (int i = 0; i < p->L && work / NSX_CHECK_TUPLES_PER_THREAD < (size_t)nt; i++) {
        size_t z = nsx_slice_bound(p, i), bh = (size_t)p->B * p->H;
        work = z > (SIZE_MAX - work) / bh ? SIZE_MAX : work + z * bh;
    }
    if ((size_t)nt > work / NSX_CHECK_TUPLES_PER_THREAD)
        nt = (long)(work / NSX_CHECK_TUPLES_PER_THREAD);
    if (nt > rows)
        nt = rows;
    if (nt > 256)
        nt = 256;
    if (nt < 1)
        nt = 1;
    rb_shared sh = {.p = p, .ex_o = ex_o, .ex_lse = ex_lse, .unc = unc, .sel = sel, .skip = skip, .rbs = rbs,
                    .rows = rows};
    atomic_init(&sh.next, 0);
    atomic_init(&sh.first, -1);
    pthread_mutex_init(&sh.lock, NULL);
    /* a context per thread; the first is the caller's */
    nsx_bound_ctx ctx[256];
    rb_worker wk[256];
    pthread_t tid[256];
    wk[0] = (rb_worker){&sh, bc};
    long started = 1;
    for (; started < nt; started++) {
        nsx_err e;
        if (nsx_bound_init(&ctx[started], p, bc->in, &bc->model, &e))
            break; /* out of memory: fewer threads */
        if (ctx[started].cache_cap > bc->cache_cap) /* a lowered cache: the same values, the same reach */
            ctx[started].cache_cap = bc->cache_cap;
        wk[started] = (rb_worker){&sh, &ctx[started]};
        if (pthread_create(&tid[started], NULL, row_bounds_worker, &wk[started])) {
            nsx_bound_free(&ctx[started]);
            break;
        }
    }
    row_bounds_worker(&wk[0]); /* this thread too; rows left by failed starts are taken here */
    for (long t = 1; t < started; t++) {
        pthread_join(tid[t], NULL);
        nsx_bound_free(&ctx[t]);
    }
    pthread_mutex_destroy(&sh.lock);
    rbs->first = atomic_load(&sh.first);
    return 0;
}

static int check_rows(const nsx_problem *p, const nsx_candidate *cand, const double *ex_o,
                      const double *ex_lse, const nsx_expected_unc *unc, const int32_t *sel,
                      const unsigned char *skip, nsx_bound_ctx *bc, const nsx_model *m, int threads,
                      nsx_check_report *rep, nsx_err *err)
{
    const int dv = p->dv;
    row_bounds rbs;
    int rc = row_bounds_compute(p, ex_o, ex_lse, unc, sel, skip, bc, threads, &rbs, err);
    if (rc)
        return rc;
    /* Phase 2: the judging, in row order */
    for (int b = 0; b < p->B && !rc; b++)
        for (int i = 0; i < p->L && !rc; i++) {
            for (int h = 0; h < p->H && !rc; h++) {
                if (skip[(size_t)b * p->L + i]) {
                    rep->rows_unjudged++;
                    continue;
                }
                rep->rows++;
                const double *eo = ex_o + nsx_o_at(p, b, i, h, 0), *co = cand->o + nsx_o_at(p, b, i, h, 0);
                double el = ex_lse[nsx_lse_at(p, b, h, i)];
                /* uncertain expected values (ORACLE.md 3.10): the bound holds
                   around them, and the uncertainty is added to it */
                const double *uo = unc && unc->o ? unc->o + nsx_o_at(p, b, i, h, 0) : NULL;
                double ul = unc && unc->lse ? unc->lse[nsx_lse_at(p, b, h, i)] : 0.0;
                for (int c = 0; c < dv && !rc; c++)
                    if (!isfinite(eo[c]))
                        rc = nsx_err_set(err, NSX_E_INPUT, "vector: expected o[b=%d,h=%d,i=%d,c=%d] is not finite",
                                         b, h, i, c);
                if (rc)
                    break;
                const size_t r = ((size_t)b * p->L + i) * p->H + h;
                if (rbs.rc[r]) { /* the first failed bound in row order: rows before it all passed */
                    assert((long)r == rbs.first);
                    *err = rbs.err;
                    rc = rbs.rc[r];
                    break;
                }
                double *bound = rbs.o + r * dv;
                nsx_row_bound rb = rbs.rb[r];
                for (int c = 0; c < dv && uo && rb.N > 0; c++)
                    bound[c] += uo[c];
                /* the LSE's form scales its uncertainty by log2(e) (log2) or keeps it (mixed) */
                rb.lse += m->lse_form == NSX_LSE_LOG2 ? ul * 0x1.71547652b82ffp+0 * (1 + 0x1p-52) : ul;
                if (rb.nonfinite) {
                    rc = nsx_err_set(err, NSX_E_INPUT,
                                     "vector: batch %d, head %d, query %d reads a NaN or an infinity but is "
                                     "not an unjudged leak-pair row", b, h, i);
                    break;
                }
                if ((rb.N == 0) != (el == -INFINITY) || (rb.N > 0 && !isfinite(el))) {
                    rc = nsx_err_set(err, NSX_E_INPUT,
                                     "vector: batch %d, head %d, query %d: expected lse %g but the slice has %zu "
                                     "tuples", b, h, i, el, rb.N);
                    break;
                }
                for (int c = 0; rb.N == 0 && c < dv && !rc; c++)
                    if (eo[c] != 0) /* (E6) for an empty slice: the vector contradicts its own slice */
                        rc = nsx_err_set(err, NSX_E_INPUT,
                                         "vector: batch %d, head %d, query %d: expected o[c=%d] = %g but the "
                                         "slice is empty (O = 0)", b, h, i, c, eo[c]);
                if (rc)
                    break;
                if (rb.N == 0) {
                    /* empty slice: O = 0 exactly (either sign), LSE by convention */
                    rep->rows_empty++;
                    int bad = 0;
                    for (int c = 0; c < dv; c++) {
                        rep->o_judged++;
                        if (!nsx_within(co[c], 0.0, 0.0)) {
                            rep->o_failed++;
                            bad = 1;
                            if (!isfinite(co[c]))
                                rep->o_nonfinite++;
                            note(rep, NSX_NOTE_EMPTY, "o[b=%d,h=%d,i=%d,c=%d] = %.9g but the slice is empty (O = 0)", b, h, i, c,
                                 co[c]);
                        }
                    }
                    if (cand->lse) {
                        double cl = cand->lse[nsx_lse_at(p, b, h, i)];
                        rep->lse_judged++;
                        if (!lse_conv_ok(m->lse_conv, cl)) {
                            rep->lse_failed++;
                            bad = 1;
                            note(rep, NSX_NOTE_EMPTY, "lse[b=%d,h=%d,i=%d] = %.9g but the slice is empty (LSE = %s)", b, h, i, cl,
                                 m->lse_conv == NSX_LSE_ANY ? "-inf or +inf" : nsx_lse_conv_name(m->lse_conv));
                        }
                    }
                    rep->rows_empty_failed += bad;
                    continue;
                }
                el = rb.lse_form; /* the exact LSE in the model's form (ORACLE.md 3.8.1) */
                for (int c = 0; c < dv; c++) {
                    double v = co[c], e = fabs(v - eo[c]);
                    rep->o_judged++;
                    if (!isfinite(v)) {
                        rep->o_failed++;
                        rep->o_nonfinite++;
                        track(&rep->worst_o, b, h, i, c, INFINITY, bound[c], eo[c], v, &rb);
                        note(rep, NSX_NOTE_BOUND, "o[b=%d,h=%d,i=%d,c=%d] = %g where the exact value is %.17g", b, h, i, c, v,
                             eo[c]);
                        continue;
                    }
                    track(&rep->worst_o, b, h, i, c, e, bound[c], eo[c], v, &rb);
                    if (!nsx_within(v, eo[c], bound[c])) {
                        rep->o_failed++;
                        note(rep, NSX_NOTE_BOUND, "o[b=%d,h=%d,i=%d,c=%d] = %.17g, exact %.17g: error %.3g > bound %.3g", b, h, i, c,
                             v, eo[c], e, bound[c]);
                    }
                }
                if (cand->lse) {
                    double v = cand->lse[nsx_lse_at(p, b, h, i)], e = fabs(v - el);
                    rep->lse_judged++;
                    if (!isfinite(v))
                        e = INFINITY;
                    track(&rep->worst_lse, b, h, i, -1, e, rb.lse, el, v, &rb);
                    if (!nsx_within(v, el, rb.lse)) {
                        rep->lse_failed++;
                        note(rep, NSX_NOTE_BOUND, "lse[b=%d,h=%d,i=%d] = %.17g, exact %.17g: error %.3g > bound %.3g", b, h, i, v, el,
                             e, rb.lse);
                    }
                }
            }
        }
    row_bounds_free(&rbs);
    return rc;
}

/* ---- 3b. gradients (ORACLE.md section 8) ------------------------------- */

/* One gradient tensor [B, L, heads, cols] of the candidate against its
   expected values and bounds: a bound of 0 marks an element no allowed
   tuple reaches, which must be exactly 0 (either sign). */
static void judge_grad(const char *name, int m, const double *cv, const double *ex, double *bd, const double *unc,
                       const size_t *terms, const size_t *terms_q, const nsx_problem *p, int heads, int cols,
                       nsx_check_worst *w, nsx_check_report *rep)
{
    const size_t count = (size_t)p->B * p->L * heads * cols;
    for (size_t x = 0; x < count; x++) {
        int c = (int)(x % (size_t)cols), h = (int)(x / (size_t)cols % (size_t)heads);
        int i = (int)(x / ((size_t)cols * heads) % (size_t)p->L), b = (int)(x / ((size_t)cols * heads * p->L));
        double v = cv[x], e = fabs(v - ex[x]);
        if (unc && bd[x] > 0)
            bd[x] += unc[x]; /* expected values within unc of the exact ones (ORACLE.md 3.10) */
        rep->grad_judged++;
        if (bd[x] == 0) {
            rep->grad_zero++;
            if (!nsx_within(v, 0.0, 0.0)) {
                rep->grad_zero_failed++;
                rep->grad_failed++;
                rep->grad_nonfinite += !isfinite(v);
                note(rep, NSX_NOTE_GRAD, "%s[b=%d,%s=%d,h=%d,c=%d] = %.9g but no allowed tuple reaches it (exactly 0)",
                     name, b, m ? "j" : "i", i, h, c, v);
            }
            continue;
        }
        if (!isfinite(v))
            e = INFINITY, rep->grad_nonfinite++;
        if (bd[x] == INFINITY && isfinite(v)) {
            rep->grad_unbounded++; /* no finite bound: only finiteness judged */
            continue;
        }
        double ratio = e / bd[x];
        if (!w->found || ratio > w->ratio) {
            size_t t = terms_q ? terms_q[nsx_lse_at(p, b, h, i)]
                               : terms[(((size_t)b * p->Hkv + h) * p->n + (m - 1)) * p->L + i];
            *w = (nsx_check_worst){1, b, h, i, c, e, bd[x], ratio, ex[x], v, t, NAN, m};
        }
        if (!nsx_within(v, ex[x], bd[x])) {
            rep->grad_failed++;
            note(rep, NSX_NOTE_GRAD, "%s[b=%d,%s=%d,h=%d,c=%d] = %.17g, exact %.17g: error %.3g > bound %.3g", name,
                 b, m ? "j" : "i", i, h, c, v, ex[x], e, bd[x]);
        }
    }
}

static int has_grads(const nsx_problem *p, const nsx_candidate *cand)
{
    int any = cand->dq != NULL;
    for (int m = 0; m < p->n; m++)
        any |= cand->dk[m] != NULL || cand->dv[m] != NULL;
    return any;
}

/* Judges the candidate's gradients.  sel: the selection of the expected
   values (NULL without one); o, lse: the expected outputs (recomputed with
   the candidate's selection where it differs: then the gradients are
   recomputed too). */
static int check_grads(const nsx_problem *p, const nsx_inputs *in, const nsx_outputs *expected,
                       const nsx_expected_unc *unc, const nsx_candidate *cand, const int32_t *sel, const double *o,
                       const double *lse, int own, nsx_bound_ctx *bc, nsx_check_report *rep, nsx_err *err)
{
    const int n = p->n;
    int expect = expected->dq != NULL;
    for (int m = 0; m < n; m++)
        expect &= expected->dk[m] != NULL && expected->dv[m] != NULL;
    if (!has_grads(p, cand)) {
        rep->grad_status = expect ? NSX_GRAD_ABSENT : NSX_GRAD_NONE;
        return 0;
    }
    if (!expect) {
        rep->grad_status = NSX_GRAD_NO_EXPECTED;
        return 0;
    }
    if (!in->dout)
        return nsx_err_set(err, NSX_E_INPUT, "vector: expected gradients but no upstream gradient do");
    if (rep->rows_unjudged)
        return nsx_err_set(err, NSX_E_INPUT, "vector: gradients with rows that are not judged (a NaN or huge future)");
    rep->grad_status = NSX_GRAD_JUDGED;
    nsx_outputs ex = *expected;
    ex.o = (double *)o, ex.lse = (double *)lse;
    nsx_grad_bound gb = {0};
    double *own_g = NULL;
    int rc = 0;
    const size_t nq = nsx_q_size(p), nk = nsx_k_size(p), nv = nsx_v_size(p);
    const size_t total = nq + (size_t)n * (nk + nv);
    double *bnd = malloc(total * sizeof *bnd);
    gb.terms_k = malloc((size_t)p->B * p->Hkv * n * p->L * sizeof *gb.terms_k);
    gb.terms_q = malloc(nsx_lse_size(p) * sizeof *gb.terms_q);
    if (own)
        own_g = malloc(total * sizeof *own_g);
    if (!bnd || !gb.terms_k || !gb.terms_q || (own && !own_g)) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
        goto done;
    }
    gb.dq = bnd;
    for (int m = 0; m < n; m++) {
        gb.dk[m] = bnd + nq + (size_t)m * (nk + nv);
        gb.dv[m] = gb.dk[m] + nk;
    }
    if (own) {
        /* E7 with the candidate's selection given as indices */
        nsx_problem q = *p;
        nsx_inputs qin = *in;
        q.sel.source = NSX_SEL_INDICES;
        qin.sel = sel;
        ex.dq = own_g;
        for (int m = 0; m < n; m++) {
            ex.dk[m] = own_g + nq + (size_t)m * (nk + nv);
            ex.dv[m] = ex.dk[m] + nk;
        }
        if ((rc = nsx_ref_backward(&q, &qin, &ex, NULL, NULL, err))) {
            nsx_err_prefix(err, "reference gradients with the candidate's selection");
            goto done;
        }
    }
    /* values recomputed with the candidate's selection are exact */
    const nsx_expected_unc *u = own ? NULL : unc;
    const double *g_unc[1 + 2 * NSX_MAX_ORDER] = {u ? u->dq : NULL};
    for (int m = 0; u && m < n; m++)
        g_unc[1 + m] = u->dk[m], g_unc[1 + n + m] = u->dv[m];
    if ((rc = nsx_bound_grads_unc(bc, sel, &ex, u ? u->o : NULL, u ? u->lse : NULL, u ? g_unc : NULL, &gb, err)))
        goto done;
    if (cand->dq) {
        rep->grad_tensors++;
        judge_grad("dq", 0, cand->dq, ex.dq, gb.dq, g_unc[0], NULL, gb.terms_q, p, p->H, p->d, &rep->worst_dq, rep);
    } else {
        rep->grad_absent++;
    }
    for (int m = 0; m < n; m++) {
        char name[16];
        snprintf(name, sizeof name, "dk%d", m + 1);
        if (cand->dk[m]) {
            rep->grad_tensors++;
            judge_grad(name, m + 1, cand->dk[m], ex.dk[m], gb.dk[m], g_unc[1 + m], gb.terms_k, NULL, p, p->Hkv, p->d,
                       &rep->worst_dk, rep);
        } else {
            rep->grad_absent++;
        }
        snprintf(name, sizeof name, "dv%d", m + 1);
        if (cand->dv[m]) {
            rep->grad_tensors++;
            judge_grad(name, m + 1, cand->dv[m], ex.dv[m], gb.dv[m], g_unc[1 + n + m], gb.terms_k, NULL, p, p->Hkv,
                       p->dv, &rep->worst_dv, rep);
        } else {
            rep->grad_absent++;
        }
    }
done:
    free(bnd);
    free(gb.terms_k);
    free(gb.terms_q);
    free(own_g);
    return rc;
}

/* ---- 4. pairs ----------------------------------------------------------- */

/* Positions j0..j1 of batches a and b of a gradient tensor [B, L, heads,
   cols]: bit for bit.  Returns 1 when they agree (or the tensor is absent). */
static int grad_rows_agree(const double *g, const nsx_problem *p, int heads, int cols, const nsx_pair *pr, int x,
                           int j0, int j1, const char *name, nsx_check_report *rep)
{
    for (int j = j0; g && j <= j1; j++)
        for (int h = 0; h < heads; h++)
            for (int c = 0; c < cols; c++) {
                size_t ea = (((size_t)pr->a * p->L + j) * heads + h) * cols + c;
                size_t eb = (((size_t)pr->b * p->L + j) * heads + h) * cols + c;
                if (!same_bits(g[ea], g[eb])) {
                    note(rep, NSX_NOTE_PAIR, "%s pair %d (batches %d, %d): %s[j=%d,h=%d,c=%d] differs: %.17g vs %.17g",
                         nsx_pair_kind_name(pr->kind), x, pr->a, pr->b, name, j, h, c, g[ea], g[eb]);
                    return 0;
                }
            }
    return 1;
}

/* Rows i0..i1 of batches a and b, every head: o and lse (and dq) bit for bit. */
static void pair_rows(const nsx_problem *p, const nsx_candidate *cand, const nsx_pair *pr, int x, int i0, int i1,
                      nsx_check_report *rep)
{
    for (int i = i0; i <= i1; i++) {
        int bad = !grad_rows_agree(cand->dq, p, p->H, p->d, pr, x, i, i, "dq", rep);
        for (int h = 0; h < p->H && !bad; h++) {
            for (int c = 0; c < p->dv && !bad; c++) {
                double va = cand->o[nsx_o_at(p, pr->a, i, h, c)], vb = cand->o[nsx_o_at(p, pr->b, i, h, c)];
                if (!same_bits(va, vb)) {
                    bad = 1;
                    note(rep, NSX_NOTE_PAIR, "%s pair %d (batches %d, %d): o[i=%d,h=%d,c=%d] differs: %.17g vs %.17g",
                         nsx_pair_kind_name(pr->kind), x, pr->a, pr->b, i, h, c, va, vb);
                }
            }
            if (!bad && cand->lse) {
                double va = cand->lse[nsx_lse_at(p, pr->a, h, i)], vb = cand->lse[nsx_lse_at(p, pr->b, h, i)];
                if (!same_bits(va, vb)) {
                    bad = 1;
                    note(rep, NSX_NOTE_PAIR, "%s pair %d (batches %d, %d): lse[h=%d,i=%d] differs: %.17g vs %.17g",
                         nsx_pair_kind_name(pr->kind), x, pr->a, pr->b, h, i, va, vb);
                }
            }
        }
        rep->pair_rows++;
        rep->pair_failed += bad;
    }
}

static void check_pairs(const nsx_problem *p, const nsx_case_info *info, const nsx_candidate *cand_in,
                        nsx_check_report *rep)
{
    /* gradients take part only in a gradient case */
    nsx_candidate c0 = *cand_in, *cand = &c0;
    if (rep->grad_status != NSX_GRAD_JUDGED) {
        c0.dq = NULL;
        for (int m = 0; m < NSX_MAX_ORDER; m++)
            c0.dk[m] = c0.dv[m] = NULL;
    }
    for (int x = 0; info && x < info->npairs; x++) {
        const nsx_pair *pr = &info->pairs[x];
        if (pr->kind == NSX_PAIR_LEAK) {
            rep->pairs_leak++;
            pair_rows(p, cand, pr, x, 0, pr->t, rep);
        } else if (pr->kind == NSX_PAIR_GRADLEAK) {
            /* rows >= t, and every key gradient at positions >= t */
            rep->pairs_gradleak++;
            pair_rows(p, cand, pr, x, pr->t, p->L - 1, rep);
            for (int m = 0; m < p->n; m++) {
                char name[16];
                snprintf(name, sizeof name, "dk%d", m + 1);
                int ok = grad_rows_agree(cand->dk[m], p, p->Hkv, p->d, pr, x, pr->t, p->L - 1, name, rep);
                snprintf(name, sizeof name, "dv%d", m + 1);
                ok = ok && grad_rows_agree(cand->dv[m], p, p->Hkv, p->dv, pr, x, pr->t, p->L - 1, name, rep);
                rep->pair_keys++;
                rep->pair_failed += !ok;
            }
        } else {
            rep->pairs_probe++;
            pair_rows(p, cand, pr, x, pr->i, pr->i, rep);
        }
    }
}

/* ---- the whole check ------------------------------------------------ */

int nsx_check(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
              const nsx_outputs *expected, const nsx_candidate *cand, const nsx_model *m,
              nsx_check_report *rep, nsx_err *err)
{
    return nsx_check_unc(p, info, in, expected, NULL, cand, m, rep, err);
}

int nsx_check_unc(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
                  const nsx_outputs *expected, const nsx_expected_unc *unc, const nsx_candidate *cand,
                  const nsx_model *m, nsx_check_report *rep, nsx_err *err)
{
    return nsx_check_threads(p, info, in, expected, unc, cand, m, 0, rep, err);
}

int nsx_check_threads(const nsx_problem *p, const nsx_case_info *info, const nsx_inputs *in,
                      const nsx_outputs *expected, const nsx_expected_unc *unc, const nsx_candidate *cand,
                      const nsx_model *m, int threads, nsx_check_report *rep, nsx_err *err)
{
    assert(p && in && expected && cand && m && rep && err);
    assert(expected->o && expected->lse && cand->o);
    char why[256];
    if (nsx_problem_check(p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "vector: %s", why);
    for (int x = 0; info && x < info->npairs; x++)
        if (nsx_pair_check(p, &info->pairs[x], x, err))
            return NSX_E_INPUT;
    /* expected values known only within unc need not agree bit for bit */
    int rc = nsx_pairs_consistent(p, info, in, unc ? NULL : expected, err);
    if (rc)
        return rc;
    memset(rep, 0, sizeof *rep);
    nsx_model_format(m, rep->model, sizeof rep->model);
    rep->lse_conv = m->lse_conv;
    rep->lse_present = cand->lse != NULL;

    nsx_bound_ctx bc;
    rc = nsx_bound_init(&bc, p, in, m, err);
    if (rc)
        return rc;
    unsigned char *skip = malloc((size_t)p->B * p->L);
    int32_t *use = NULL;
    double *own_o = NULL, *own_lse = NULL;
    const int32_t *sel = p->sel.source == NSX_SEL_INDICES ? in->sel : NULL;
    if (!skip) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
        goto done;
    }
    if ((rc = unjudged_rows(p, info, expected, skip, err)))
        goto done;
    if (p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES) {
        if (!(use = malloc(nsx_sel_size(p) * sizeof *use))) {
            rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
            goto done;
        }
        if ((rc = check_selection(p, in, expected, cand, skip, &bc, use, &own_o, &own_lse, rep, err)))
            goto done;
        sel = use;
    }
    /* values recomputed with the candidate's selection are exact */
    rc = check_rows(p, cand, own_o ? own_o : expected->o, own_lse ? own_lse : expected->lse, own_o ? NULL : unc,
                    sel, skip, &bc, m, threads, rep, err);
    if (rc)
        goto done;
    rc = check_grads(p, in, expected, unc, cand, sel, own_o ? own_o : expected->o,
                     own_lse ? own_lse : expected->lse, own_o != NULL, &bc, rep, err);
    if (rc)
        goto done;
    check_pairs(p, info, cand, rep);
    rep->pass = rep->failures == 0;
done:
    nsx_bound_free(&bc);
    free(skip);
    free(use);
    free(own_o);
    free(own_lse);
    return rc;
}

/* ---- for the indexer's judge (oracle/idxcheck.c, check_internal.h) ------ */

void nsx_check_note(nsx_check_report *rep, int kind, const char *text)
{
    note(rep, kind, "%s", text);
}

int nsx_check_sel_row(const nsx_problem *p, nsx_bound_ctx *bc, int b, int i, const int32_t *crow,
                      const int32_t *grow, const double *score, unsigned char *in_c, double *tol,
                      nsx_check_report *rep, nsx_err *err, int *rc)
{
    return judge_sel_row(p, bc, b, i, crow, grow, score, 0, in_c, tol, rep, err, rc);
}
