/*
 * The selection S(i) computed by the indexer: (E8) then (E9), for every
 * (b, i), with Ziv's loop where the scores are enclosures (softmax act).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "nsimplex/ref.h"
#include "ref/exact.h"
#include "ref/internal.h"

/* The scores output of one row: -inf where j is not a candidate. */
static int write_scores(double *scores, const nsx_problem *p, ref_irow *row,
                        const ref_ictx *ictx, int *done)
{
    double *out = scores + ((size_t)row->b * p->L + row->i) * p->L;
    double uniform;
    int all = 1;
    for (int j = 0; j < p->L; j++)
        if (!nsx_ref_is_candidate(p, row->i, j))
            out[j] = -INFINITY;
    if (row->exact) {
        for (size_t c = 0; c < row->C; c++) {
            /* an exact value: MPFR's RN is the correct rounding */
            out[row->j[c]] = mpfr_zero_p(row->S[c]) ? 0.0 : mpfr_get_d(row->S[c], MPFR_RNDN);
        }
        return 1;
    }
    if (ref_indexer_uniform(&uniform, row, ictx)) {
        for (size_t c = 0; c < row->C; c++)
            out[row->j[c]] = uniform;
        return 2;
    }
    for (size_t c = 0; c < row->C; c++) {
        if (done[c])
            continue;
        done[c] = ival_round_d(&row->Se[c], &out[row->j[c]]);
        all &= done[c];
    }
    return all;
}

int nsx_ref_select(const nsx_problem *p, const nsx_inputs *in, int32_t *sel,
                   double *scores, const nsx_ref_opts *opts, nsx_ref_stats *stats,
                   nsx_err *err)
{
    assert(p && in && sel && err);
    nsx_ref_opts dflt = {0};
    nsx_ref_stats st = {0};
    ref_ictx ictx;
    ref_irow row = {0};
    char why[256];
    int rc = 0;

    if (nsx_problem_check(p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "%s", why);
    if (p->sel.source != NSX_SEL_INDEXER && p->sel.source != NSX_SEL_SCORES)
        return nsx_err_set(err, NSX_E_INPUT, "the selection is not computed (source is not indexer or scores)");
    if (!opts)
        opts = &dflt;
    if (p->sel.source != NSX_SEL_INDEXER)
        scores = NULL;
    ref_erange saved = ref_erange_widen();
    ref_ictx_init(&ictx, p, in);
    int *done = calloc((size_t)p->L, sizeof *done);
    if (!done) {
        ref_erange_restore(saved);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }

    for (int b = 0; b < p->B && !rc; b++) {
        for (int i = 0; i < p->L && !rc; i++) {
            int32_t *sel_row = sel + nsx_sel_at(p, b, i, 0);
            if (opts->skip && opts->skip[(size_t)b * p->L + i]) {
                for (int r = 0; r < p->sel.k; r++)
                    sel_row[r] = -1;
                for (int j = 0; scores && j < p->L; j++)
                    scores[((size_t)b * p->L + i) * p->L + j] = NAN;
                continue;
            }
            if ((rc = ref_indexer_collect(&row, &ictx, b, i, err)))
                break;
            mpfr_prec_t prec = ref_prec_start(opts->prec0, (size_t)p->sel.Hi * row.C);
            int chosen = 0, scored = scores == NULL;
            for (size_t c = 0; c < row.C; c++)
                done[c] = 0;
            for (int round = 0;; round++) {
                if (!row.exact)
                    ref_indexer_softmax(&row, &ictx, prec);
                if (!chosen && (chosen = ref_topk(sel_row, &row, &ictx, p->sel.k)) < 0) {
                    rc = nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
                    break;
                }
                if (!scored) {
                    scored = write_scores(scores, p, &row, &ictx, done);
                    st.exact += scored == 2 || row.exact ? row.C : 0;
                }
                if (prec > st.max_prec)
                    st.max_prec = prec;
                if (chosen && scored)
                    break;
                if (row.exact || 2 * prec > ref_prec_cap(opts->prec_cap)) {
                    rc = nsx_err_set(err, NSX_E_PRECISION_CAP,
                                     "reference: the selection of batch %d, query %d is not decided "
                                     "at %ld bits (the precision cap)", b, i, (long)prec);
                    break;
                }
                prec *= 2;
                st.retries++;
            }
            st.values += scores ? row.C : 0;
            ref_irow_clear(&row);
        }
    }
    free(done);
    ref_erange_restore(saved);
    if (stats) {
        stats->values += st.values;
        stats->retries += st.retries;
        stats->exact += st.exact;
        if (st.max_prec > stats->max_prec)
            stats->max_prec = st.max_prec;
    }
    return rc;
}
