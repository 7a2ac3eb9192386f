/* The check report as text and as JSON (check.h). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "io/json.h"
#include "oracle/check.h"

static const char *sel_status_text(int s)
{
    return s == 1 ? "judged" : s == 2 ? "absent" : "none";
}

static void print_worst(FILE *f, const char *what, const nsx_check_worst *w)
{
    if (!w->found)
        return;
    if (w->c >= 0)
        fprintf(f, "  worst %s[b=%d,h=%d,i=%d,c=%d]", what, w->b, w->h, w->i, w->c);
    else
        fprintf(f, "  worst %s[b=%d,h=%d,i=%d]", what, w->b, w->h, w->i);
    fprintf(f, ": error %.3g, bound %.3g, ratio %.3g (expected %.17g, candidate %.17g; row: %zu tuples, "
               "max score %.6g)\n", w->err, w->bound, w->ratio, w->expected, w->candidate, w->tuples, w->max_score);
}

static void print_worst_grad(FILE *f, const char *what, const nsx_check_worst *w)
{
    if (!w->found)
        return;
    char name[16];
    snprintf(name, sizeof name, w->m ? "%s%d" : "%s", what, w->m);
    fprintf(f, "  worst %s[b=%d,%s=%d,h=%d,c=%d]: error %.3g, bound %.3g, ratio %.3g (expected %.17g, candidate "
               "%.17g", name, w->b, w->m ? "j" : "i", w->i, w->h, w->c, w->err, w->bound, w->ratio, w->expected,
            w->candidate);
    fprintf(f, "; %zu %s", w->tuples, w->m ? "terms" : "tuples in the row");
    fprintf(f, ")\n");
}

static const char *grad_status_text(int s)
{
    return s == NSX_GRAD_JUDGED ? "judged" : s == NSX_GRAD_ABSENT ? "absent" : s == NSX_GRAD_NO_EXPECTED ? "no_expected" : "none";
}

static double worst_ratio(const nsx_check_worst *w)
{
    return w->found ? w->ratio : 0.0;
}

/* Strings from files are printed through nsx_printable: no control
   characters reach the terminal, and JSON gets valid UTF-8. */
static const char *safe(char *buf, size_t len, const char *s)
{
    nsx_printable(buf, len, s ? s : "");
    return buf;
}

void nsx_check_print(FILE *f, const nsx_check_report *r, const nsx_case_info *info, const char *label)
{
    assert(f && r);
    char buf[256];
    fprintf(f, "nsimplex check: %s", label ? safe(buf, sizeof buf, label) : "candidate");
    if (info && info->id)
        fprintf(f, " against case %s", safe(buf, sizeof buf, info->id));
    if (info && info->nflags) {
        fprintf(f, " (flags:");
        for (int x = 0; x < info->nflags; x++)
            fprintf(f, "%s %s", x ? "," : "", safe(buf, sizeof buf, info->flags[x]));
        fprintf(f, ")");
    }
    fprintf(f, "\nmodel: %s (empty-slice LSE %s assumed)\n", r->model,
            r->lse_conv == NSX_LSE_ANY ? "-inf or +inf" : nsx_lse_conv_name(r->lse_conv));
    fprintf(f, "o: %zu elements judged, %zu failed (%zu not finite)\n", r->o_judged, r->o_failed, r->o_nonfinite);
    print_worst(f, "o", &r->worst_o);
    if (r->lse_present) {
        fprintf(f, "lse: %zu judged, %zu failed\n", r->lse_judged, r->lse_failed);
        print_worst(f, "lse", &r->worst_lse);
    } else {
        fprintf(f, "lse: absent, not judged\n");
    }
    fprintf(f, "rows: %zu judged (%zu empty slices, %zu of them failed), %zu not judged (leak-pair rows that read "
               "NaN/Inf)\n", r->rows, r->rows_empty, r->rows_empty_failed, r->rows_unjudged);
    if (r->sel_status == 1)
        fprintf(f, "selection: %zu rows judged as sets (valid top-k under exact scores, tie tolerance), %zu failed, "
                   "%zu valid but not the golden set (their o judged against the reference recomputed with the "
                   "candidate's selection)\n", r->sel_rows, r->sel_failed, r->sel_differ);
    else if (r->sel_status == 2)
        fprintf(f, "selection: computed by the case but absent from the candidate: o judged against the golden "
                   "selection\n");
    if (r->grad_status == NSX_GRAD_JUDGED) {
        fprintf(f, "gradients: %d tensors judged, %d absent; %zu elements judged, %zu failed (%zu not finite); %zu "
                   "reached by no allowed tuple (exactly 0), %zu of them failed; %zu without a finite bound\n", r->grad_tensors,
                r->grad_absent, r->grad_judged, r->grad_failed, r->grad_nonfinite, r->grad_zero, r->grad_zero_failed,
                r->grad_unbounded);
        print_worst_grad(f, "dq", &r->worst_dq);
        print_worst_grad(f, "dk", &r->worst_dk);
        print_worst_grad(f, "dv", &r->worst_dv);
    } else if (r->grad_status == NSX_GRAD_ABSENT) {
        fprintf(f, "gradients: the case has expected gradients, the candidate none: not judged\n");
    } else if (r->grad_status == NSX_GRAD_NO_EXPECTED) {
        fprintf(f, "gradients: the candidate has gradients but the case none (not a Backward case): not judged\n");
    }
    fprintf(f, "pairs: %zu leak, %zu probe", r->pairs_leak, r->pairs_probe);
    if (r->pairs_gradleak)
        fprintf(f, ", %zu gradleak (%zu key gradient blocks)", r->pairs_gradleak, r->pair_keys);
    fprintf(f, ": %zu rows compared bit for bit, %zu differ\n", r->pair_rows, r->pair_failed);
    for (int x = 0; x < r->nnotes; x++)
        fprintf(f, "  failure: %s\n", r->notes[x]);
    if (r->failures > (size_t)r->nnotes)
        fprintf(f, "  (%zu more failures not shown)\n", r->failures - (size_t)r->nnotes);
    if (r->pass)
        fprintf(f, "PASS: every check passed; worst o ratio %.3g, worst lse ratio %.3g%s",
                worst_ratio(&r->worst_o), worst_ratio(&r->worst_lse), r->grad_status == NSX_GRAD_JUDGED ? "" : "\n");
    else
        fprintf(f, "FAIL: %zu failures (o %zu, lse %zu, selection %zu, pair rows %zu%s", r->failures, r->o_failed,
                r->lse_failed, r->sel_failed, r->pair_failed, r->grad_status == NSX_GRAD_JUDGED ? "" : ")\n");
    if (r->grad_status == NSX_GRAD_JUDGED && r->pass)
        fprintf(f, ", worst dq ratio %.3g, dk %.3g, dv %.3g\n", worst_ratio(&r->worst_dq), worst_ratio(&r->worst_dk),
                worst_ratio(&r->worst_dv));
    else if (r->grad_status == NSX_GRAD_JUDGED)
        fprintf(f, ", gradients %zu)\n", r->grad_failed);
}

static void put_worst(nsx_buf *b, const nsx_check_worst *w)
{
    if (!w->found) {
        nsx_buf_puts(b, "null");
        return;
    }
    nsx_buf_printf(b, "{\"b\":%d,\"h\":%d,\"i\":%d", w->b, w->h, w->i);
    if (w->c >= 0)
        nsx_buf_printf(b, ",\"c\":%d", w->c);
    nsx_buf_json_field(b, "error", w->err);
    nsx_buf_json_field(b, "bound", w->bound);
    nsx_buf_json_field(b, "ratio", w->ratio);
    nsx_buf_json_field(b, "expected", w->expected);
    nsx_buf_json_field(b, "candidate", w->candidate);
    nsx_buf_printf(b, ",\"%s\":%zu", w->m ? "terms" : "tuples", w->tuples);
    if (!isnan(w->max_score))
        nsx_buf_json_field(b, "max_score", w->max_score);
    nsx_buf_puts(b, "}");
}

char *nsx_check_json(const nsx_check_report *r, const nsx_case_info *info, const char *label)
{
    assert(r && label);
    nsx_buf b = {0};
    char buf[256];
    nsx_buf_puts(&b, "{\"candidate\":");
    nsx_buf_json_string(&b, safe(buf, sizeof buf, label));
    nsx_buf_puts(&b, ",\"case\":");
    nsx_buf_json_string(&b, safe(buf, sizeof buf, info ? info->id : NULL));
    nsx_buf_puts(&b, ",\"flags\":[");
    for (int x = 0; info && x < info->nflags; x++) {
        nsx_buf_puts(&b, x ? "," : "");
        nsx_buf_json_string(&b, safe(buf, sizeof buf, info->flags[x]));
    }
    nsx_buf_puts(&b, "],\"model\":");
    nsx_buf_json_string(&b, r->model);
    nsx_buf_puts(&b, ",\"lse_convention\":");
    nsx_buf_json_string(&b, nsx_lse_conv_name(r->lse_conv));
    nsx_buf_printf(&b, ",\"pass\":%s,\"failures\":%zu", r->pass ? "true" : "false", r->failures);
    nsx_buf_printf(&b, ",\"o\":{\"judged\":%zu,\"failed\":%zu,\"nonfinite\":%zu,\"worst\":",
                   r->o_judged, r->o_failed, r->o_nonfinite);
    put_worst(&b, &r->worst_o);
    nsx_buf_printf(&b, "},\"lse\":{\"present\":%s,\"judged\":%zu,\"failed\":%zu,\"worst\":",
                   r->lse_present ? "true" : "false", r->lse_judged, r->lse_failed);
    put_worst(&b, &r->worst_lse);
    nsx_buf_printf(&b, "},\"rows\":{\"judged\":%zu,\"empty\":%zu,\"empty_failed\":%zu,"
                   "\"unjudged\":%zu}", r->rows, r->rows_empty, r->rows_empty_failed, r->rows_unjudged);
    nsx_buf_puts(&b, ",\"selection\":{\"status\":");
    nsx_buf_json_string(&b, sel_status_text(r->sel_status));
    nsx_buf_printf(&b, ",\"rows\":%zu,\"failed\":%zu,\"differ\":%zu}", r->sel_rows,
                   r->sel_failed, r->sel_differ);
    nsx_buf_printf(&b, ",\"pairs\":{\"leak\":%zu,\"probe\":%zu,\"gradleak\":%zu,\"rows\":%zu,\"keys\":%zu,"
                   "\"failed\":%zu}", r->pairs_leak, r->pairs_probe, r->pairs_gradleak, r->pair_rows, r->pair_keys,
                   r->pair_failed);
    nsx_buf_puts(&b, ",\"gradients\":{\"status\":");
    nsx_buf_json_string(&b, grad_status_text(r->grad_status));
    nsx_buf_printf(&b, ",\"tensors\":%d,\"absent\":%d,\"judged\":%zu,\"failed\":%zu,\"nonfinite\":%zu,"
                   "\"zero\":%zu,\"zero_failed\":%zu,\"unbounded\":%zu", r->grad_tensors, r->grad_absent,
                   r->grad_judged, r->grad_failed, r->grad_nonfinite, r->grad_zero, r->grad_zero_failed,
                   r->grad_unbounded);
    const char *gname[] = {"dq", "dk", "dv"};
    const nsx_check_worst *gw[] = {&r->worst_dq, &r->worst_dk, &r->worst_dv};
    for (int t = 0; t < 3; t++) {
        nsx_buf_printf(&b, ",\"worst_%s\":", gname[t]);
        put_worst(&b, gw[t]);
    }
    nsx_buf_puts(&b, "}");
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
