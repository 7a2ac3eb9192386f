/*
 * The forward pass (E1)-(E6), with (E8)-(E9) first when the selection is
 * computed, and Ziv's loop per query row.
 *
 * For each row (b, h, i): collect the allowed tuples and their exact raw
 * scores (E1, E2); then, at a working precision p, enclose LSE (E3), the
 * weights (E4) and the outputs (E6, with E5); an output is done when both
 * ends of its enclosure round to the same binary64.  After the first
 * undecided round, the exact cases (ref/exactcase.c) are settled directly;
 * what remains doubles p, up to the cap, where it is an error.  A single
 * allowed tuple with a rational score gives LSE = T directly.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "ref/exact.h"
#include "ref/internal.h"

/* Given selections: a valid index may appear once per row. */
static int check_given_selection(const nsx_problem *p, const int32_t *sel, nsx_err *err)
{
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            const int32_t *r = sel + nsx_sel_at(p, b, i, 0);
            for (int x = 0; x < p->sel.k; x++)
                for (int y = x + 1; y < p->sel.k; y++)
                    if (r[x] == r[y] && r[x] >= 0 && r[x] < p->L)
                        return nsx_err_set(err, NSX_E_INPUT,
                                           "sel: batch %d, query %d lists index %d twice", b, i, (int)r[x]);
        }
    return 0;
}

typedef struct {
    ref_ctx *ctx;
    ref_row *row;
    ival *o;          /* dv enclosures */
    size_t *perm;     /* tuples by score, for the exact cases */
    int *done;        /* dv + 1: outputs decided (the last is LSE) */
    const nsx_ref_opts *opts;
    nsx_ref_stats *st;
} row_solver;

/* Ziv's loop for one row with N >= 1 allowed tuples. */
static int solve_row(row_solver *rs, double *o_out, size_t o_stride, double *lse_out, nsx_err *err)
{
    ref_ctx *ctx = rs->ctx;
    ref_row *row = rs->row;
    const nsx_problem *p = ctx->p;
    int dv = p->dv, exact_tried = 0;
    mpfr_prec_t prec = ref_prec_start(rs->opts->prec0, row->N);
    ival s, Z, lse;

    ival_init(&s, prec);
    ival_init(&Z, prec);
    ival_init(&lse, prec);
    memset(rs->done, 0, (size_t)(dv + 1) * sizeof *rs->done);
    /* a single tuple with a rational score: LSE = T exactly */
    if (ref_exact_lse(lse_out, ctx, row)) {
        rs->done[dv] = 1;
        rs->st->exact++;
    }
    for (;;) {
        ival_set_prec(&s, prec);
        ival_set_prec(&Z, prec);
        ival_set_prec(&lse, prec);
        for (int c = 0; c < dv; c++)
            ival_set_prec(&rs->o[c], prec);
        ref_row_set_prec(row, prec);
        if (prec > rs->st->max_prec)
            rs->st->max_prec = prec;

        ref_score_scale(&s, p);
        ref_slice_lse(&lse, &Z, row, &s);  /* E3 */
        ref_slice_softmax(row, &Z);        /* E4 */
        ref_contract(rs->o, ctx, row);     /* E5, E6 */

        int all = 1;
        for (int c = 0; c < dv; c++)
            if (!rs->done[c])
                all &= rs->done[c] = ival_round_d(&rs->o[c], &o_out[c * o_stride]);
        if (!rs->done[dv])
            all &= rs->done[dv] = ival_round_d(&lse, lse_out);
        if (!all && !exact_tried) {
            /* the exact cases, once: they need the tuples sorted by score */
            exact_tried = 1;
            if (ref_row_sort(rs->perm, row)) {
                ival_clear(&s), ival_clear(&Z), ival_clear(&lse);
                return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
            }
            all = rs->done[dv];
            for (int c = 0; c < dv; c++) {
                if (!rs->done[c] && ref_exact_output(&o_out[c * o_stride], ctx, row, rs->perm, c)) {
                    rs->done[c] = 1;
                    rs->st->exact++;
                }
                all &= rs->done[c];
            }
        }
        if (all)
            break;
        if (2 * prec > ref_prec_cap(rs->opts->prec_cap)) {
            ival_clear(&s), ival_clear(&Z), ival_clear(&lse);
            return nsx_err_set(err, NSX_E_PRECISION_CAP,
                               "reference: output of batch %d, head %d, query %d is not decided at "
                               "%ld bits (the precision cap)", row->b, row->h, row->i, (long)prec);
        }
        prec *= 2;
        rs->st->retries++;
    }
    ival_clear(&s);
    ival_clear(&Z);
    ival_clear(&lse);
    return 0;
}

static int forward_rows(ref_ctx *ctx, nsx_outputs *out, const nsx_ref_opts *opts,
                        nsx_ref_stats *st, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    size_t max_tuples = 1;
    for (int m = 0; m < p->n; m++)
        max_tuples *= (size_t)p->L;
    ref_row row;
    ref_row_init(&row);
    row_solver rs = {ctx, &row, malloc((size_t)p->dv * sizeof(ival)),
                     malloc(max_tuples * sizeof(size_t)), malloc((size_t)(p->dv + 1) * sizeof(int)),
                     opts, st};
    int rc = 0;
    if (!rs.o || !rs.perm || !rs.done) {
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
                if (opts->skip && opts->skip[(size_t)b * p->L + i]) {
                    for (int c = 0; c < p->dv; c++)
                        o[c] = NAN;
                    *lse = NAN;
                    st->skipped_rows++;
                    continue;
                }
                if ((rc = ref_row_collect(&row, ctx, b, h, i, s_sign, err)))
                    break;
                st->tuples += row.N;
                st->values += (uint64_t)p->dv + 1;
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

int nsx_ref_forward(const nsx_problem *p, const nsx_inputs *in, nsx_outputs *out,
                    const nsx_ref_opts *opts, nsx_ref_stats *stats, nsx_err *err)
{
    assert(p && in && out && err && out->o && out->lse);
    nsx_ref_opts dflt = {0};
    nsx_ref_stats st = {0};
    char why[256];
    int32_t *sel = NULL, *own_sel = NULL;
    int rc;

    if (nsx_problem_check(p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "%s", why);
    if (!opts)
        opts = &dflt;
    /* the selection: given, or computed first (E8, E9) */
    if (p->sel.source == NSX_SEL_INDICES) {
        if ((rc = check_given_selection(p, in->sel, err)))
            return rc;
        sel = (int32_t *)in->sel;
    } else if (p->sel.source != NSX_SEL_NONE) {
        sel = out->sel;
        if (!sel && !(sel = own_sel = malloc(nsx_sel_size(p) * sizeof *sel)))
            return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
        if ((rc = nsx_ref_select(p, in, sel, out->sel_scores, opts, &st, err))) {
            free(own_sel);
            return rc;
        }
    }

    ref_erange saved = ref_erange_widen();
    ref_ctx ctx;
    rc = ref_ctx_init(&ctx, p, in, sel, err);
    if (!rc)
        rc = forward_rows(&ctx, out, opts, &st, err);
    ref_ctx_clear(&ctx);
    ref_erange_restore(saved);
    free(own_sel);
    if (stats)
        *stats = st;
    return rc;
}
