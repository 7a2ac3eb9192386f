/*
 * The nsimplex metadata object's writer (meta.h).  The key order follows DECISIONS.md so that files diff well.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/fpformat.h"
#include "io/json.h"
#include "io/meta.h"

static void put_key(nsx_buf *b, const char *key)
{
    nsx_buf_puts(b, b->len > 1 ? ", \"" : "\"");
    nsx_buf_puts(b, key);
    nsx_buf_puts(b, "\": ");
}

static void put_str(nsx_buf *b, const char *key, const char *v)
{
    put_key(b, key);
    nsx_buf_json_string(b, v ? v : "");
}

static void put_num(nsx_buf *b, const char *key, double v)
{
    put_key(b, key);
    nsx_buf_json_number(b, v);
}

static void put_int(nsx_buf *b, const char *key, int v)
{
    put_key(b, key);
    nsx_buf_printf(b, "%d", v);
}

static void put_selection(nsx_buf *b, const nsx_problem *p)
{
    const nsx_selection *s = &p->sel;
    put_key(b, "selection");
    if (s->source == NSX_SEL_NONE) {
        nsx_buf_puts(b, "null");
        return;
    }
    nsx_buf_printf(b, "{\"source\": \"%s\", \"k\": %d, \"dims\": [", nsx_source_name(s->source),
                   s->k);
    const char *sep = "";
    for (int m = 0; m < p->n; m++)
        if (s->dims >> m & 1) {
            nsx_buf_printf(b, "%s%d", sep, m + 1);
            sep = ", ";
        }
    nsx_buf_puts(b, "]");
    if (s->source == NSX_SEL_INDEXER) {
        nsx_buf_printf(b, ", \"act\": \"%s\", \"idx_scale\": ", nsx_act_name(s->act));
        nsx_buf_json_number(b, s->idx_scale);
        nsx_buf_printf(b, ", \"Hi\": %d, \"di\": %d", s->Hi, s->di);
    }
    nsx_buf_puts(b, "}");
}

static void put_pairs(nsx_buf *b, const nsx_case_info *info)
{
    put_key(b, "pairs");
    nsx_buf_puts(b, "[");
    for (int k = 0; info && k < info->npairs; k++) {
        const nsx_pair *q = &info->pairs[k];
        nsx_buf_printf(b, "%s{\"kind\": \"%s\", \"a\": %d, \"b\": %d, ", k ? ", " : "",
                       nsx_pair_kind_name(q->kind), q->a, q->b);
        if (q->kind == NSX_PAIR_LEAK)
            nsx_buf_printf(b, "\"t\": %d, \"future\": \"%s\"}", q->t, nsx_future_name(q->future));
        else if (q->kind == NSX_PAIR_GRADLEAK)
            nsx_buf_printf(b, "\"t\": %d}", q->t);
        else
            nsx_buf_printf(b, "\"i\": %d, \"dim\": %d, \"j\": %d}", q->i, q->dim, q->j);
    }
    nsx_buf_puts(b, "]");
}

static void put_array(nsx_buf *b, const char *key, int n, const int *iv, const double *dv)
{
    put_key(b, key);
    nsx_buf_puts(b, "[");
    for (int m = 0; m < n; m++) {
        nsx_buf_puts(b, m ? ", " : "");
        if (iv)
            nsx_buf_printf(b, "%d", iv[m]);
        else
            nsx_buf_json_number(b, dv[m]);
    }
    nsx_buf_puts(b, "]");
}

char *nsx_meta_format(const nsx_problem *p, const nsx_case_info *info, nsx_err *err)
{
    char why[256];
    if (nsx_problem_check(p, why, sizeof why)) {
        nsx_err_set(err, NSX_E_INPUT, "metadata: %s", why);
        return NULL;
    }
    for (int k = 0; info && k < info->npairs; k++)
        if (nsx_pair_check(p, &info->pairs[k], k, err))
            return NULL;
    nsx_buf b = {0};
    nsx_buf_puts(&b, "{");
    put_str(&b, "spec", NSX_SPEC_VERSION);
    if (info && info->generator)
        put_str(&b, "generator", info->generator);
    else
        put_str(&b, "generator", "nsimplex " NSX_VERSION);
    put_str(&b, "case", info ? info->id : "");
    if (info && info->suite)
        put_str(&b, "suite", info->suite);
    put_str(&b, "description", info ? info->description : "");
    put_key(&b, "flags");
    nsx_buf_puts(&b, "[");
    for (int k = 0; info && k < info->nflags; k++) {
        nsx_buf_puts(&b, k ? ", " : "");
        nsx_buf_json_string(&b, info->flags[k] ? info->flags[k] : "");
    }
    nsx_buf_puts(&b, "]");
    const struct { const char *key; int v; } sizes[] = {
        {"n", p->n}, {"B", p->B}, {"L", p->L}, {"H", p->H}, {"Hkv", p->Hkv}, {"d", p->d},
        {"dv", p->dv},
    };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        put_int(&b, sizes[k].key, sizes[k].v);
    put_str(&b, "reduce", nsx_reduce_name(p->reduce));
    if (p->score_scale_rsqrt_d) {
        put_num(&b, "score_scale", nsx_problem_score_scale(p)); /* RN(1/sqrt(d)) */
        put_str(&b, "score_scale_exact", "1/sqrt(d)");
    } else {
        put_num(&b, "score_scale", p->score_scale);
    }
    put_num(&b, "out_scale", p->out_scale);
    put_key(&b, "causal");
    nsx_buf_puts(&b, p->causal ? "true" : "false");
    put_array(&b, "windows", p->n, p->window, NULL);
    put_key(&b, "distinct");
    nsx_buf_puts(&b, p->distinct ? "true" : "false");
    put_array(&b, "k_bias", p->n, NULL, p->k_bias);
    put_array(&b, "v_bias", p->n, NULL, p->v_bias);
    put_selection(&b, p);
    put_str(&b, "input_format", nsx_format_name(p->input_format));
    put_pairs(&b, info);
    nsx_buf_puts(&b, "}");
    if (b.oom) {
        nsx_buf_free(&b);
        nsx_err_set(err, NSX_E_NOMEM, "out of memory");
        return NULL;
    }
    return b.s;
}

void nsx_case_info_free(nsx_case_info *info)
{
    free(info->id);
    free(info->suite);
    free(info->description);
    free(info->spec);
    free(info->generator);
    for (int k = 0; k < info->nflags; k++)
        free(info->flags[k]);
    free(info->flags);
    free(info->pairs);
    *info = (nsx_case_info){0};
}
