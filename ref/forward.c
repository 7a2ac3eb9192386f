/*
 * The forward pass (E1)-(E6), with (E8)-(E9) first when the selection is
 * computed, and Ziv's loop per query row.
 *
 * For each row (b, h, i): count the allowed tuples and find the largest
 * exact raw score (E1, E2); then, at a working precision p, one pass over
 * the tuples encloses LSE (E3), the weights (E4) and the outputs (E6, with
 * E5); an output is done when both ends of its enclosure round to the same
 * binary64.  No tuple is kept between passes (memory independent of
 * |Z(i)|).  After the first undecided round, the exact cases
 * (ref/exactcase.c) are settled directly, from the row's tuples stored for
 * that; what remains doubles p, up to the cap, where it is an error.  A
 * single allowed tuple with a rational score gives LSE = T directly.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "nsimplex/slice.h"
#include "ref/exact.h"
#include "ref/fast.h"
#include "ref/internal.h"

/* Given selections: a valid index may appear once per row (a mark per
   position, so linear in k per row). */
int ref_check_given_selection(const nsx_problem *p, const int32_t *sel, nsx_err *err)
{
    unsigned char *seen = calloc((size_t)p->L, 1);
    int rc = 0;
    if (!seen)
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    for (int b = 0; b < p->B && !rc; b++)
        for (int i = 0; i < p->L && !rc; i++) {
            const int32_t *r = sel + nsx_sel_at(p, b, i, 0);
            for (int x = 0; x < p->sel.k && !rc; x++)
                if (r[x] >= 0 && r[x] < p->L && seen[r[x]]++)
                    rc = nsx_err_set(err, NSX_E_INPUT, "sel: batch %d, query %d lists index %d twice", b, i,
                                     (int)r[x]);
            for (int x = 0; x < p->sel.k; x++)
                if (r[x] >= 0 && r[x] < p->L)
                    seen[r[x]] = 0;
        }
    free(seen);
    return rc;
}

typedef struct {
    ref_ctx *ctx;
    ref_row *row;
    ival *o;          /* dv enclosures */
    size_t *perm;     /* tuples by score, for the exact cases */
    size_t perm_cap;  /* its room: the largest row sorted so far (not L^n,
                         which overflows and is far more than a row holds) */
    int *done;        /* dv + 1: outputs decided (the last is LSE) */
    const nsx_ref_opts *opts;
    nsx_ref_stats *st;
} row_solver;

/* What one pass over a row's tuples accumulates (E3, E5, E6). */
typedef struct {
    ref_ctx *ctx;
    const ref_row *row;
    const ival *s;
    ival *Z, *e, *o;
    mpfr_t D, w;      /* exact scratch: prec_T, prec_W */
} row_pass;

static void accumulate(void *arg, const int *J, mpfr_srcptr T)
{
    row_pass *rp = arg;
    ref_slice_lse_add(rp->Z, rp->e, rp->D, T, rp->row, rp->s); /* E3: e_J, Z += e_J */
    ref_contract_add(rp->o, rp->ctx, rp->row, J, rp->e, rp->w); /* E5, E6: o_c += e_J w_Jc */
}

void ref_row_enclose(ref_ctx *ctx, ref_row *row, mpfr_prec_t prec, ival *lse, ival *o)
{
    assert(row->N >= 1 && !row->nonfinite && prec >= MPFR_PREC_MIN);
    const int dv = ctx->p->dv;
    ival s, Z, e;
    row_pass rp = {ctx, row, &s, &Z, &e, o, {{0}}, {{0}}};
    ival_init(&s, prec);
    ival_init(&Z, prec);
    ival_init(&e, prec);
    mpfr_init2(rp.D, ctx->prec_T);
    mpfr_init2(rp.w, ctx->prec_W);
    ival_set_prec(lse, prec);
    for (int c = 0; c < dv; c++) {
        ival_set_prec(&o[c], prec);
        ival_set_zero(&o[c]);
    }
    ref_score_scale(&s, ctx->p);
    ival_set_zero(&Z);
    ref_row_pass(row, ctx, accumulate, &rp); /* E3, E5, E6's sums */
    ref_slice_lse(lse, &Z, row, &s);                    /* E3 */
    ref_slice_softmax(o, dv, &Z);                       /* E4 */
    ref_contract_scale(o, ctx);                         /* E6 */
    ival_clear(&s), ival_clear(&Z), ival_clear(&e);
    mpfr_clear(rp.D);
    mpfr_clear(rp.w);
}

/* The exact cases, once a round leaves outputs undecided: the row's tuples
   stored (the only time they are) and sorted by score.  Sets done[] for
   the outputs it decides; 0, or NSX_E_NOMEM. */
static int solve_exact(row_solver *rs, double *o_out, size_t o_stride, nsx_err *err)
{
    ref_row *row = rs->row;
    int rc = ref_row_store(row, rs->ctx, err);
    if (rc)
        return rc;
    if (row->N > rs->perm_cap) {
        size_t *np = realloc(rs->perm, row->N * sizeof *np);
        if (!np)
            return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
        rs->perm = np;
        rs->perm_cap = row->N;
    }
    if (ref_row_sort(rs->perm, row))
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    for (int c = 0; c < rs->ctx->p->dv; c++)
        if (!rs->done[c] && ref_exact_output(&o_out[c * o_stride], rs->ctx, row, rs->perm, c)) {
            rs->done[c] = 1;
            rs->st->exact++;
        }
    return 0;
}

/* Ziv's loop for one row with N >= 1 allowed tuples: each round one pass
   over the tuples at the working precision. */
static int solve_row(row_solver *rs, double *o_out, size_t o_stride, double *lse_out, nsx_err *err)
{
    ref_ctx *ctx = rs->ctx;
    ref_row *row = rs->row;
    const nsx_problem *p = ctx->p;
    int dv = p->dv, exact_tried = 0, rc = 0;
    mpfr_prec_t prec = ref_prec_start(rs->opts->prec0, row->N);
    ival lse;

    ival_init(&lse, prec);
    memset(rs->done, 0, (size_t)(dv + 1) * sizeof *rs->done);
    /* a single tuple with a rational score: LSE = T exactly */
    if (ref_exact_lse(lse_out, ctx, row)) {
        rs->done[dv] = 1;
        rs->st->exact++;
    }
    for (;;) {
        if (prec > rs->st->max_prec)
            rs->st->max_prec = prec;
        ref_row_enclose(ctx, row, prec, &lse, rs->o); /* E3-E6 */

        int all = 1;
        for (int c = 0; c < dv; c++)
            if (!rs->done[c])
                all &= rs->done[c] = ival_round_d(&rs->o[c], &o_out[c * o_stride]);
        if (!rs->done[dv])
            all &= rs->done[dv] = ival_round_d(&lse, lse_out);
        if (!all && !exact_tried) {
            exact_tried = 1;
            if ((rc = solve_exact(rs, o_out, o_stride, err)))
                break;
            all = 1;
            for (int c = 0; c <= dv; c++)
                all &= rs->done[c];
        }
        if (all)
            break;
        if (2 * prec > ref_prec_cap(rs->opts->prec_cap)) {
            rc = nsx_err_set(err, NSX_E_PRECISION_CAP,
                             "reference: output of batch %d, head %d, query %d is not decided at "
                             "%ld bits (the precision cap)", row->b, row->h, row->i, (long)prec);
            break;
        }
        prec *= 2;
        rs->st->retries++;
    }
    ival_clear(&lse);
    return rc;
}

/* Every row, or with todo ([B, H, L], may be NULL) the rows marked 1. */
static int forward_rows(ref_ctx *ctx, nsx_outputs *out, const nsx_ref_opts *opts,
                        const unsigned char *todo, nsx_ref_stats *st, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    ref_row row;
    ref_row_init(&row);
    row_solver rs = {ctx, &row, malloc((size_t)p->dv * sizeof(ival)), NULL, 0,
                     malloc((size_t)(p->dv + 1) * sizeof(int)), opts, st};
    int rc = 0;
    if (!rs.o || !rs.done) {
        free(rs.o), free(rs.perm), free(rs.done);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    for (int c = 0; c < p->dv; c++)
        ival_init(&rs.o[c], 2);

    int s_sign = ref_score_scale_sign(p);
    for (int b = 0; b < p->B && !rc; b++)
        for (int h = 0; h < p->H && !rc; h++)
            for (int i = 0; i < p->L && !rc; i++) {
                double *o = out->o + nsx_o_at(p, b, i, h, 0);
                double *lse = out->lse + nsx_lse_at(p, b, h, i);
                if (todo && !todo[((size_t)b * p->H + h) * p->L + i])
                    continue;
                if (opts->skip && opts->skip[(size_t)b * p->L + i]) {
                    for (int c = 0; c < p->dv; c++)
                        o[c] = NAN;
                    *lse = NAN;
                    st->skipped_rows++;
                    continue;
                }
                if ((rc = ref_row_scan(&row, ctx, b, h, i, s_sign, err)))
                    break;
                st->tuples += row.N;
                st->values += (uint64_t)p->dv + 1;
                st->mpfr_values += (uint64_t)p->dv + 1;
                st->mpfr_rows++;
                if (row.nonfinite) {
                    /* a NaN or an infinity read by an allowed tuple */
                    if (!opts->allow_nonfinite)
                        rc = nsx_err_set(err, NSX_E_INPUT,
                                         "batch %d, head %d, query %d: an allowed tuple reads a NaN "
                                         "or an infinity in q, k or v", b, h, i);
                    for (int c = 0; c < p->dv; c++)
                        o[c] = NAN;
                    *lse = NAN;
                    st->nonfinite_rows++;
                } else if (row.N == 0) {
                    /* empty slice */
                    for (int c = 0; c < p->dv; c++)
                        o[c] = 0.0;
                    *lse = -INFINITY;
                } else {
                    rc = solve_row(&rs, o, 1, lse, err);
                }
            }
    for (int c = 0; c < p->dv; c++)
        ival_clear(&rs.o[c]);
    free(rs.o), free(rs.perm), free(rs.done);
    ref_row_clear(&row);
    return rc;
}

void nsx_ref_stats_add(nsx_ref_stats *total, const nsx_ref_stats *st)
{
    total->tuples += st->tuples;
    total->values += st->values;
    total->retries += st->retries;
    total->exact += st->exact;
    total->nonfinite_rows += st->nonfinite_rows;
    total->skipped_rows += st->skipped_rows;
    if (st->max_prec > total->max_prec)
        total->max_prec = st->max_prec;
    total->fast_values += st->fast_values;
    total->mpfr_values += st->mpfr_values;
    total->fast_rows += st->fast_rows;
    total->mpfr_rows += st->mpfr_rows;
    total->fast_tuples += st->fast_tuples;
}

int ref_selection(const nsx_problem *p, const nsx_inputs *in, int32_t *dst, double *scores,
                  const nsx_ref_opts *opts, nsx_ref_stats *st, const int32_t **sel, int32_t **own, nsx_err *err)
{
    *sel = NULL;
    *own = NULL;
    if (p->sel.source == NSX_SEL_NONE)
        return 0;
    if (p->sel.source == NSX_SEL_INDICES) {
        int rc = ref_check_given_selection(p, in->sel, err);
        if (!rc)
            *sel = in->sel;
        return rc;
    }
    if (!dst && !(dst = *own = malloc(nsx_sel_size(p) * sizeof *dst)))
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    int rc = nsx_ref_select(p, in, dst, scores, opts, st, err);
    if (rc) {
        free(*own);
        *own = NULL;
        return rc;
    }
    *sel = dst;
    return 0;
}

int nsx_ref_forward(const nsx_problem *p, const nsx_inputs *in, nsx_outputs *out,
                    const nsx_ref_opts *opts, nsx_ref_stats *stats, nsx_err *err)
{
    assert(p && in && out && err && out->o && out->lse);
    nsx_ref_opts dflt = {0};
    nsx_ref_stats st = {0};
    char why[256];
    const int32_t *sel;
    int32_t *own_sel;
    int rc;

    if (nsx_problem_check(p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "%s", why);
    if (!opts)
        opts = &dflt;
    if ((rc = ref_selection(p, in, out->sel, out->sel_scores, opts, &st, &sel, &own_sel, err)))
        return rc;
    st.mpfr_values = st.values; /* a computed selection's scores: MPFR */

    ref_erange saved = ref_erange_widen();
    ref_ctx ctx;
    rc = ref_ctx_init(&ctx, p, in, sel, err);
    unsigned char *todo = NULL;
    if (!rc && opts->fast) {
        /* the fast certified path first; MPFR for the rows it leaves */
        if (!(todo = malloc((size_t)p->B * p->H * p->L)))
            rc = nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
        else
            rc = ref_fast_forward(&ctx, out, opts, &st, todo, err);
        uint64_t left = 0, rows = 0;
        for (size_t r = 0; !rc && opts->mpfr_tuples_max && r < (size_t)p->B * p->H * p->L; r++)
            if (todo[r]) {
                left += nsx_slice_bound(p, (int)(r % (size_t)p->L));
                rows++;
            }
        if (left > opts->mpfr_tuples_max)
            rc = nsx_err_set(err, NSX_E_TOO_LARGE,
                             "reference: the fast path left %llu rows (%llu tuples) to MPFR, over the limit of %llu",
                             (unsigned long long)rows, (unsigned long long)left,
                             (unsigned long long)opts->mpfr_tuples_max);
    }
    if (!rc)
        rc = forward_rows(&ctx, out, opts, todo, &st, err);
    free(todo);
    ref_ctx_clear(&ctx);
    ref_erange_restore(saved);
    free(own_sel);
    if (stats)
        *stats = st;
    return rc;
}
