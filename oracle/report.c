/* The check report as text and as JSON (check.h). */
#include <math.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

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

/* Strings from files are printed through nsx_printable: no control
   characters reach the terminal, and JSON gets valid UTF-8. */
static const char *safe(char *buf, size_t len, const char *s)
{
    nsx_printable(buf, len, s ? s : "");
    return buf;
}

void nsx_check_print(FILE *f, const nsx_check_report *r, const nsx_case_info *info, const char *label)
{
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
    fprintf(f, "pairs: %zu leak, %zu probe: %zu rows compared bit for bit, %zu differ\n", r->pairs_leak,
            r->pairs_probe, r->pair_rows, r->pair_failed);
    for (int x = 0; x < r->nnotes; x++)
        fprintf(f, "  failure: %s\n", r->notes[x]);
    if (r->failures > (size_t)r->nnotes)
        fprintf(f, "  (%zu more failures not shown)\n", r->failures - (size_t)r->nnotes);
    if (r->pass)
        fprintf(f, "PASS: every check passed; worst o ratio %.3g, worst lse ratio %.3g\n",
                r->worst_o.found ? r->worst_o.ratio : 0.0, r->worst_lse.found ? r->worst_lse.ratio : 0.0);
    else
        fprintf(f, "FAIL: %zu failures (o %zu, lse %zu, selection %zu, pair rows %zu)\n", r->failures, r->o_failed,
                r->lse_failed, r->sel_failed, r->pair_failed);
}

/* x as a JSON number that reads back as the same binary64 (null when not
   finite).  cJSON's own printing tries 15 digits first and keeps them when
   they read back within a relative DBL_EPSILON, which is not the same
   double, and for DBL_MAX is a number past the binary64 range. */
static void add_double(cJSON *o, const char *key, double x)
{
    char buf[32];
    if (!isfinite(x)) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    nsx_fmt_double(buf, sizeof buf, x);
    cJSON_AddRawToObject(o, key, buf);
}

static cJSON *worst_json(const nsx_check_worst *w)
{
    if (!w->found)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "b", w->b);
    cJSON_AddNumberToObject(o, "h", w->h);
    cJSON_AddNumberToObject(o, "i", w->i);
    if (w->c >= 0)
        cJSON_AddNumberToObject(o, "c", w->c);
    add_double(o, "error", w->err);
    add_double(o, "bound", w->bound);
    add_double(o, "ratio", w->ratio);
    add_double(o, "expected", w->expected);
    add_double(o, "candidate", w->candidate);
    cJSON_AddNumberToObject(o, "tuples", (double)w->tuples);
    add_double(o, "max_score", w->max_score);
    return o;
}

char *nsx_check_json(const nsx_check_report *r, const nsx_case_info *info, const char *label)
{
    cJSON *j = cJSON_CreateObject(), *o, *a;
    char buf[256];
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "candidate", safe(buf, sizeof buf, label));
    cJSON_AddStringToObject(j, "case", safe(buf, sizeof buf, info ? info->id : NULL));
    a = cJSON_AddArrayToObject(j, "flags");
    for (int x = 0; info && a && x < info->nflags; x++)
        cJSON_AddItemToArray(a, cJSON_CreateString(safe(buf, sizeof buf, info->flags[x])));
    cJSON_AddStringToObject(j, "model", r->model);
    cJSON_AddStringToObject(j, "lse_convention", nsx_lse_conv_name(r->lse_conv));
    cJSON_AddBoolToObject(j, "pass", r->pass);
    cJSON_AddNumberToObject(j, "failures", (double)r->failures);
    o = cJSON_AddObjectToObject(j, "o");
    cJSON_AddNumberToObject(o, "judged", (double)r->o_judged);
    cJSON_AddNumberToObject(o, "failed", (double)r->o_failed);
    cJSON_AddNumberToObject(o, "nonfinite", (double)r->o_nonfinite);
    cJSON_AddItemToObject(o, "worst", worst_json(&r->worst_o));
    o = cJSON_AddObjectToObject(j, "lse");
    cJSON_AddBoolToObject(o, "present", r->lse_present);
    cJSON_AddNumberToObject(o, "judged", (double)r->lse_judged);
    cJSON_AddNumberToObject(o, "failed", (double)r->lse_failed);
    cJSON_AddItemToObject(o, "worst", worst_json(&r->worst_lse));
    o = cJSON_AddObjectToObject(j, "rows");
    cJSON_AddNumberToObject(o, "judged", (double)r->rows);
    cJSON_AddNumberToObject(o, "empty", (double)r->rows_empty);
    cJSON_AddNumberToObject(o, "empty_failed", (double)r->rows_empty_failed);
    cJSON_AddNumberToObject(o, "unjudged", (double)r->rows_unjudged);
    o = cJSON_AddObjectToObject(j, "selection");
    cJSON_AddStringToObject(o, "status", sel_status_text(r->sel_status));
    cJSON_AddNumberToObject(o, "rows", (double)r->sel_rows);
    cJSON_AddNumberToObject(o, "failed", (double)r->sel_failed);
    cJSON_AddNumberToObject(o, "differ", (double)r->sel_differ);
    o = cJSON_AddObjectToObject(j, "pairs");
    cJSON_AddNumberToObject(o, "leak", (double)r->pairs_leak);
    cJSON_AddNumberToObject(o, "probe", (double)r->pairs_probe);
    cJSON_AddNumberToObject(o, "rows", (double)r->pair_rows);
    cJSON_AddNumberToObject(o, "failed", (double)r->pair_failed);
    a = cJSON_AddArrayToObject(j, "notes");
    for (int x = 0; a && x < r->nnotes; x++)
        cJSON_AddItemToArray(a, cJSON_CreateString(r->notes[x]));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}
