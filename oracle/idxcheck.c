/*
 * Judging an indexer alone (check.h, nsx_check_indexer; docs/ORACLE.md
 * 5.2): its E8 scores elementwise against the selection's tolerance tau
 * (oracle/seltol.c) plus their output rounding, its E9 selection as a set
 * with the tie tolerance the same tau implies (check.c's row judge).
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "nsimplex/ref.h"
#include "oracle/bound.h"
#include "oracle/check_internal.h"
#include "oracle/within.h"

/* Half the larger binary64 spacing at s: |S - s| for s = RN(S). */
static double half_ulp(double s)
{
    return fmax(nextafter(s, INFINITY) - s, s - nextafter(s, -INFINITY)) / 2;
}

static void notef(nsx_check_report *rep, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void notef(nsx_check_report *rep, int kind, const char *fmt, ...)
{
    char text[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    nsx_check_note(rep, kind, text);
}

/* The scores of row (b, i) against their bounds (ORACLE.md 5.2, (I3)). */
static void judge_scores(const nsx_problem *p, const nsx_model *m, int b, int i, const double *cs, const double *es,
                         const double *tol, nsx_check_report *rep)
{
    const nsx_fmt fo = nsx_fmt_of(m->out);
    const double eta_out = fo.p ? ldexp(1.0, fo.emin - fo.p) : 0.0;
    for (int j = 0; j < p->L; j++) {
        if (!nsx_ref_is_candidate(p, i, j))
            continue;
        size_t at = nsx_idx_s_at(p, b, i, j);
        double s = es[at], c = cs[at], r = half_ulp(s);
        /* |S'' - S| <= tau, S' = RN_out(S''): |S' - s| <= r + tau + u_out |S''| + eta_out */
        double bound = (r + tol[j] + fo.u * (fabs(s) + r + tol[j]) + eta_out) * (1 + 0x1p-30);
        double e = fabs(c - s);
        double ratio = bound > 0 ? e / bound : (e > 0 ? INFINITY : 0.0);
        rep->s_judged++;
        int bad = !nsx_within(c, s, bound); /* a NaN bound is a failure, never a pass */
        if (!isfinite(c))
            ratio = INFINITY;
        nsx_check_worst *w = &rep->worst_s;
        if (!w->found || ratio > w->ratio || (isnan(c) && !isnan(w->candidate))) {
            *w = (nsx_check_worst){1, b, -1, i, j, e, bound, ratio, s, c, 0, 0, 0};
        }
        if (bad) {
            rep->s_failed++;
            notef(rep, NSX_NOTE_SCORE, "scores[b=%d,i=%d,j=%d]: %.9g, expected %.9g: error %.3g beyond the bound %.3g",
                  b, i, j, c, s, e, bound);
        }
    }
}

/* The selection row (b, i): entries other than -1 must be candidate keys,
   then the set with tolerance (check.c). */
static int judge_sel(const nsx_problem *p, nsx_bound_ctx *bc, int b, int i, const int32_t *crow, const int32_t *grow,
                     const double *es, unsigned char *in_c, double *tol, nsx_check_report *rep, nsx_err *err)
{
    rep->sel_rows++;
    for (int r = 0; r < p->sel.k; r++) {
        int j = crow[r];
        if (j != -1 && (j < 0 || j >= p->L || !nsx_ref_is_candidate(p, i, j))) {
            rep->sel_failed++;
            notef(rep, NSX_NOTE_SEL, "sel[b=%d,i=%d]: entry %d is %s", b, i, j,
                  j < -1 || j >= p->L ? "neither a key nor the pad -1" : "not a candidate key (causal: j <= i)");
            return 0;
        }
    }
    int rc = 0, v = nsx_check_sel_row(p, bc, b, i, crow, grow, es, in_c, tol, rep, err, &rc);
    if (rc)
        return rc;
    rep->sel_failed += v == 0;
    rep->sel_differ += v == 2;
    return 0;
}

int nsx_check_indexer(const nsx_problem *p, const nsx_inputs *in, const nsx_outputs *expected,
                      const nsx_idx_candidate *cand, const nsx_model *m, nsx_check_report *rep, nsx_err *err)
{
    assert(p && in && expected && cand && m && rep && err);
    memset(rep, 0, sizeof *rep);
    rep->indexer = 1;
    rep->lse_conv = m->lse_conv;
    nsx_model_format(m, rep->model, sizeof rep->model);
    if (p->sel.source != NSX_SEL_INDEXER)
        return nsx_err_set(err, NSX_E_INPUT, "the vector's selection is not computed by an indexer (selection "
                                             "source \"indexer\")");
    if (!cand->scores && !cand->sel)
        return nsx_err_set(err, NSX_E_INPUT, "the indexer candidate has neither scores nor sel");
    const int L = p->L;
    const size_t LL = (size_t)p->B * L * L;
    int32_t *gsel = expected->sel, *own_sel = NULL;
    double *es = expected->sel_scores, *own_s = NULL;
    double *tol = malloc((size_t)L * sizeof *tol);
    unsigned char *in_c = malloc((size_t)L);
    nsx_bound_ctx bc;
    int rc = 0, have_bc = 0;
    if (!tol || !in_c) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
        goto done;
    }
    if (!gsel || !es) {
        own_sel = malloc(nsx_sel_size(p) * sizeof *own_sel);
        own_s = malloc(LL * sizeof *own_s);
        if (!own_sel || !own_s) {
            rc = nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
            goto done;
        }
        if ((rc = nsx_ref_select(p, in, own_sel, own_s, NULL, NULL, err)))
            goto done;
        gsel = gsel ? gsel : own_sel;
        es = es ? es : own_s;
    }
    if ((rc = nsx_bound_init(&bc, p, in, m, err)))
        goto done;
    have_bc = 1;
    rep->s_present = cand->scores != NULL;
    rep->sel_status = cand->sel ? 1 : 2;
    for (int b = 0; b < p->B && !rc; b++)
        for (int i = 0; i < L && !rc; i++) {
            /* a row with a NaN expected score is unjudged (SPEC 3.2: the
               second batch of a nan/inf leak pair, rows after t) */
            int unjudged = 0;
            for (int j = 0; j < L; j++)
                unjudged |= nsx_ref_is_candidate(p, i, j) && isnan(es[nsx_idx_s_at(p, b, i, j)]);
            if (unjudged) {
                rep->rows_unjudged++;
                continue;
            }
            if (cand->scores) {
                if ((rc = nsx_bound_sel_tol(&bc, b, i, tol, err)))
                    break;
                judge_scores(p, m, b, i, cand->scores, es, tol, rep);
            }
            if (cand->sel)
                rc = judge_sel(p, &bc, b, i, cand->sel + nsx_sel_at(p, b, i, 0), gsel + nsx_sel_at(p, b, i, 0), es,
                               in_c, tol, rep, err);
        }
    rep->pass = !rc && rep->failures == 0;
done:
    if (have_bc)
        nsx_bound_free(&bc);
    free(tol);
    free(in_c);
    free(own_sel);
    free(own_s);
    return rc;
}

/* ---- the report -------------------------------------------------------- */

void nsx_check_indexer_print(FILE *f, const nsx_check_report *r, const nsx_case_info *info, const char *label)
{
    assert(f && r);
    char buf[256];
    nsx_printable(buf, sizeof buf, label ? label : "indexer");
    fprintf(f, "nsimplex check: %s (indexer: E8 scores, E9 selection)", buf);
    if (info && info->id) {
        nsx_printable(buf, sizeof buf, info->id);
        fprintf(f, " against case %s", buf);
    }
    fprintf(f, "\n  model: %s\n", r->model);
    if (r->s_present) {
        fprintf(f, "  scores: %zu judged, %zu beyond their bound\n", r->s_judged, r->s_failed);
        const nsx_check_worst *w = &r->worst_s;
        if (w->found)
            fprintf(f, "  worst scores[b=%d,i=%d,j=%d]: error %.3g, bound %.3g, ratio %.3g (expected %.17g, "
                       "candidate %.17g)\n", w->b, w->i, w->c, w->err, w->bound, w->ratio, w->expected, w->candidate);
    } else {
        fprintf(f, "  scores: absent\n");
    }
    if (r->sel_status == 1)
        fprintf(f, "  selection: %zu rows judged, %zu failed, %zu valid but not the golden set (ties)\n", r->sel_rows,
                r->sel_failed, r->sel_differ);
    else
        fprintf(f, "  selection: absent\n");
    for (int x = 0; x < r->nnotes; x++)
        fprintf(f, "  %s\n", r->notes[x]);
    if (r->failures > (size_t)r->nnotes)
        fprintf(f, "  ... %zu failures in all\n", r->failures);
    fprintf(f, "%s: %zu failure%s\n", r->pass ? "PASS" : "FAIL", r->failures, r->failures == 1 ? "" : "s");
}

char *nsx_check_indexer_json(const nsx_check_report *r, const nsx_case_info *info, const char *label)
{
    assert(r && label);
    nsx_buf b = {0};
    char buf[256];
    nsx_buf_puts(&b, "{\"candidate\":");
    nsx_printable(buf, sizeof buf, label);
    nsx_buf_json_string(&b, buf);
    nsx_buf_puts(&b, ",\"case\":");
    nsx_printable(buf, sizeof buf, info && info->id ? info->id : "");
    nsx_buf_json_string(&b, buf);
    nsx_buf_puts(&b, ",\"indexer\":true,\"model\":");
    nsx_buf_json_string(&b, r->model);
    nsx_buf_printf(&b, ",\"pass\":%s,\"failures\":%zu", r->pass ? "true" : "false", r->failures);
    nsx_buf_printf(&b, ",\"scores\":{\"present\":%s,\"judged\":%zu,\"failed\":%zu", r->s_present ? "true" : "false",
                   r->s_judged, r->s_failed);
    if (r->worst_s.found) {
        nsx_buf_printf(&b, ",\"worst\":{\"b\":%d,\"i\":%d,\"j\":%d", r->worst_s.b, r->worst_s.i, r->worst_s.c);
        nsx_buf_json_field(&b, "error", r->worst_s.err);
        nsx_buf_json_field(&b, "bound", r->worst_s.bound);
        nsx_buf_json_field(&b, "ratio", r->worst_s.ratio);
        nsx_buf_json_field(&b, "expected", r->worst_s.expected);
        nsx_buf_json_field(&b, "candidate", r->worst_s.candidate);
        nsx_buf_puts(&b, "}");
    }
    nsx_buf_printf(&b, "},\"selection\":{\"status\":\"%s\",\"rows\":%zu,\"failed\":%zu,\"differ\":%zu}",
                   r->sel_status == 1 ? "judged" : "absent", r->sel_rows, r->sel_failed, r->sel_differ);
    nsx_buf_puts(&b, ",\"notes\":[");
    for (int x = 0; x < r->nnotes; x++) {
        nsx_buf_puts(&b, x ? "," : "");
        nsx_buf_json_string(&b, r->notes[x]);
    }
    nsx_buf_puts(&b, "]}");
    if (b.oom) {
        nsx_buf_free(&b);
        return NULL;
    }
    return b.s;
}
