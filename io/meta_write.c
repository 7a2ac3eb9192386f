/*
 * The nsimplex metadata object: enum names, pair checks, and the writer
 * (meta.h).  The key order follows DECISIONS.md so that files diff well.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/fpformat.h"
#include "io/json.h"
#include "io/meta.h"

#define NAME_OF(table, v) \
    ((v) >= 0 && (size_t)(v) < sizeof table / sizeof table[0] ? table[v] : NULL)

static const char *const reduce_names[] = {
    [NSX_REDUCE_PRODUCT] = "product", [NSX_REDUCE_SUM] = "sum", [NSX_REDUCE_MEAN] = "mean"};
static const char *const source_names[] = {
    [NSX_SEL_INDICES] = "indices", [NSX_SEL_INDEXER] = "indexer", [NSX_SEL_SCORES] = "scores"};
static const char *const act_names[] = {
    [NSX_ACT_RELU] = "relu", [NSX_ACT_SOFTMAX] = "softmax", [NSX_ACT_IDENTITY] = "identity"};
static const char *const kind_names[] = {[NSX_PAIR_LEAK] = "leak", [NSX_PAIR_PROBE] = "probe"};
static const char *const future_names[] = {
    [NSX_FUTURE_RANDOM] = "random", [NSX_FUTURE_HUGE] = "huge", [NSX_FUTURE_NAN] = "nan",
    [NSX_FUTURE_INF] = "inf"};

const char *nsx_reduce_name(int v) { return NAME_OF(reduce_names, v); }
const char *nsx_source_name(int v) { return NAME_OF(source_names, v); }
const char *nsx_act_name(int v) { return NAME_OF(act_names, v); }
const char *nsx_pair_kind_name(int v) { return NAME_OF(kind_names, v); }
const char *nsx_future_name(int v) { return NAME_OF(future_names, v); }

static int in_range(int v, int lo, int hi) { return v >= lo && v <= hi; }

static int pair_bad(nsx_err *err, int idx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int pair_bad(nsx_err *err, int idx, const char *key, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nsx_err_set(err, NSX_E_INPUT, "metadata: pairs[%d].%s: %s", idx, key, msg);
}

int nsx_pair_check(const nsx_problem *p, const nsx_pair *q, int idx, nsx_err *err)
{
#define PBAD(key, ...) pair_bad(err, idx, key, __VA_ARGS__)
    if (!nsx_pair_kind_name(q->kind))
        return PBAD("kind", "%d is not leak or probe", q->kind);
    if (!in_range(q->a, 0, p->B - 1))
        return PBAD("a", "batch %d is outside 0..%d", q->a, p->B - 1);
    if (!in_range(q->b, 0, p->B - 1))
        return PBAD("b", "batch %d is outside 0..%d", q->b, p->B - 1);
    if (q->a == q->b)
        return PBAD("b", "is batch %d, the same as a", q->b);
    if (q->kind == NSX_PAIR_LEAK) {
        if (!in_range(q->t, 0, p->L - 1))
            return PBAD("t", "row %d is outside 0..%d", q->t, p->L - 1);
        if (!nsx_future_name(q->future))
            return PBAD("future", "%d is not random, huge, nan or inf", q->future);
        return 0;
    }
    if (!in_range(q->i, 0, p->L - 1))
        return PBAD("i", "row %d is outside 0..%d", q->i, p->L - 1);
    if (!in_range(q->dim, 1, p->n))
        return PBAD("dim", "%d is outside 1..%d", q->dim, p->n);
    if (!in_range(q->j, 0, p->L - 1))
        return PBAD("j", "position %d is outside 0..%d", q->j, p->L - 1);
    return 0;
#undef PBAD
}

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
