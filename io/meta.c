/*
 * Parsing the nsimplex metadata object (meta.h).
 *
 * Every message is "metadata: KEY: problem", KEY the JSON path of the
 * offending key ("selection.k", "pairs[2].a"), so a user can find it.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fpformat.h"
#include "io/json.h"
#include "io/meta.h"

/* "metadata: PRE KEY: <fmt>" */
static int bad(nsx_err *err, const char *pre, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(nsx_err *err, const char *pre, const char *key, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nsx_err_set(err, NSX_E_INPUT, "metadata: %s%s: %s", pre, key, msg);
}

#define OOM() nsx_err_set(err, NSX_E_NOMEM, "out of memory")

static const json_t *get(const json_t *o, const char *key)
{
    return json_object_get(o, key);
}

/* Required member key of o, or an error naming it. */
static int need(const json_t *o, const char *pre, const char *key, const json_t **v, nsx_err *err)
{
    *v = get(o, key);
    return *v ? 0 : bad(err, pre, key, "missing");
}

/* A JSON number written as an integer (not 1.0 or 1e0) in lo..hi. */
static int as_int(const json_t *v, const char *pre, const char *key, long lo, long hi, int *out,
                  nsx_err *err)
{
    int64_t x;
    const char *why = nsx_json_exact_int(v, &x);
    if (why && json_is_number(v)) {
        char num[32];
        nsx_fmt_double(num, sizeof num, json_number_value(v));
        return bad(err, pre, key, "%s %s", num, why);
    }
    if (why)
        return bad(err, pre, key, "%s", why);
    if (x < lo || x > hi)
        return bad(err, pre, key, "%lld is outside %ld..%ld", (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_int(const json_t *o, const char *pre, const char *key, long lo, long hi, int *out,
                   nsx_err *err)
{
    const json_t *v;
    return need(o, pre, key, &v, err) || as_int(v, pre, key, lo, hi, out, err) ? err->kind : 0;
}

/* Jansson refused numbers that overflow, so every number is finite: a real
   is strtod's correctly rounded binary64, an integer (|x| < 2^63) converts
   to the nearest binary64 as strtod would ("-0", an integer, reads as 0). */
static int as_num(const json_t *v, const char *pre, const char *key, double *out, nsx_err *err)
{
    if (!json_is_number(v))
        return bad(err, pre, key, "is not a number");
    *out = json_number_value(v);
    return 0;
}

static int get_num(const json_t *o, const char *pre, const char *key, double *out, nsx_err *err)
{
    const json_t *v;
    return need(o, pre, key, &v, err) || as_num(v, pre, key, out, err) ? err->kind : 0;
}

static int get_bool(const json_t *o, const char *key, int *out, nsx_err *err)
{
    const json_t *v;
    if (need(o, "", key, &v, err))
        return err->kind;
    if (!json_is_boolean(v))
        return bad(err, "", key, "is not true or false");
    *out = json_is_true(v);
    return 0;
}

static int get_str(const json_t *o, const char *pre, const char *key, const char **out,
                   nsx_err *err)
{
    const json_t *v;
    if (need(o, pre, key, &v, err))
        return err->kind;
    if (!json_is_string(v))
        return bad(err, pre, key, "is not a string");
    *out = json_string_value(v);
    return 0;
}

/* A string member naming one value of an enum, whose names name(0..) gives
   until NULL. */
static int get_enum(const json_t *o, const char *pre, const char *key, const char *(*name)(int), int first,
                    int *out, nsx_err *err)
{
    const char *s;
    if (get_str(o, pre, key, &s, err))
        return err->kind;
    if ((*out = nsx_name_lookup(name, first, s)) >= 0)
        return 0;
    char ps[64], list[128];
    nsx_printable(ps, sizeof ps, s);
    return bad(err, pre, key, "unknown value '%s' (one of: %s)", ps, nsx_name_list(name, first, list, sizeof list));
}


/* An array member with exactly n entries. */
static int get_array(const json_t *o, const char *key, int n, const json_t **out, nsx_err *err)
{
    if (need(o, "", key, out, err))
        return err->kind;
    if (!json_is_array(*out))
        return bad(err, "", key, "is not an array");
    size_t len = json_array_size(*out);
    if (len != (size_t)n)
        return bad(err, "", key, "has %zu entries but n = %d", len, n);
    return 0;
}

/* "1.0", or any "1.x": the same major version reads the same way. */
static int check_spec(const char *s, nsx_err *err)
{
    char ps[40];
    nsx_printable(ps, sizeof ps, s);
    size_t a = strspn(s, "0123456789");
    size_t b = s[a] == '.' ? strspn(s + a + 1, "0123456789") : 0;
    if (a == 0 || b == 0 || s[a + 1 + b] != '\0')
        return bad(err, "", "spec", "'%s' is not a version MAJOR.MINOR", ps);
    if (a != 1 || s[0] != '1')
        return bad(err, "", "spec", "version %s is not supported: this nsimplex reads spec 1.x "
                   "(%s)", ps, NSX_SPEC_VERSION);
    return 0;
}

static int parse_selection(const json_t *root, nsx_problem *p, nsx_err *err)
{
    const char *pre = "selection.";
    const json_t *o;
    nsx_selection *s = &p->sel;
    if (need(root, "", "selection", &o, err))
        return err->kind;
    if (json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return bad(err, "", "selection", "is not null or an object");
    int src;
    if (get_enum(o, pre, "source", nsx_source_name, 1, &src, err) ||
        get_int(o, pre, "k", 1, NSX_MAX_DIM, &s->k, err))
        return err->kind;
    s->source = src;
    const json_t *dims;
    if (need(o, pre, "dims", &dims, err))
        return err->kind;
    if (!json_is_array(dims) || json_array_size(dims) == 0)
        return bad(err, pre, "dims", "is not a nonempty array of dimensions 1..n");
    size_t k;
    const json_t *v;
    json_array_foreach(dims, k, v) {
        char key[32];
        int m;
        snprintf(key, sizeof key, "dims[%zu]", k);
        if (as_int(v, pre, key, 1, p->n, &m, err))
            return err->kind;
        if (s->dims >> (m - 1) & 1)
            return bad(err, pre, key, "dimension %d is listed twice", m);
        s->dims |= 1u << (m - 1);
    }
    /* act, idx_scale, Hi, di belong to the indexer and only to it */
    static const char *const indexer_keys[] = {"act", "idx_scale", "Hi", "di"};
    if (s->source != NSX_SEL_INDEXER) {
        for (size_t i = 0; i < sizeof indexer_keys / sizeof indexer_keys[0]; i++)
            if (get(o, indexer_keys[i]))
                return bad(err, pre, indexer_keys[i], "only for source indexer, but source is %s",
                           nsx_source_name(s->source));
        return 0;
    }
    if (get_enum(o, pre, "act", nsx_act_name, 0, &s->act, err) ||
        get_num(o, pre, "idx_scale", &s->idx_scale, err) ||
        get_int(o, pre, "Hi", 1, NSX_MAX_DIM, &s->Hi, err) ||
        get_int(o, pre, "di", 1, NSX_MAX_DIM, &s->di, err))
        return err->kind;
    return 0;
}

/* score_scale, and score_scale_exact when the exact real 1/sqrt(d) is
   meant: score_scale must then be RN(1/sqrt(d)), or one ulp from it (what
   1.0 / sqrt(d) gives in binary64, as other tools compute it). */
static int parse_scale(const json_t *root, nsx_problem *p, nsx_err *err)
{
    double s;
    if (get_num(root, "", "score_scale", &s, err))
        return err->kind;
    const json_t *ex = get(root, "score_scale_exact");
    if (!ex) {
        p->score_scale = s;
        p->score_scale_rsqrt_d = 0;
        return 0;
    }
    if (!json_is_string(ex))
        return bad(err, "", "score_scale_exact", "is not a string");
    if (strcmp(json_string_value(ex), "1/sqrt(d)") != 0) {
        char ps[64];
        nsx_printable(ps, sizeof ps, json_string_value(ex));
        return bad(err, "", "score_scale_exact", "unknown value '%s' (only \"1/sqrt(d)\")", ps);
    }
    nsx_problem exact = *p; /* d is already read */
    exact.score_scale_rsqrt_d = 1;
    double rn = nsx_problem_score_scale(&exact);
    if (s != rn && s != nextafter(rn, 0) && s != nextafter(rn, 1)) {
        char sv[32], rv[32];
        nsx_fmt_double(sv, sizeof sv, s);
        nsx_fmt_double(rv, sizeof rv, rn);
        return bad(err, "", "score_scale", "%s is not 1/sqrt(d) = %s for d = %d", sv, rv, p->d);
    }
    p->score_scale = rn;
    p->score_scale_rsqrt_d = 1;
    return 0;
}

static int parse_problem(const json_t *root, nsx_problem *p, nsx_err *err)
{
    nsx_problem_defaults(p);
    struct { const char *key; int *v; } sizes[] = {
        {"B", &p->B}, {"L", &p->L}, {"H", &p->H}, {"Hkv", &p->Hkv}, {"d", &p->d}, {"dv", &p->dv},
    };
    if (get_int(root, "", "n", 1, NSX_MAX_ORDER, &p->n, err))
        return err->kind;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (get_int(root, "", sizes[k].key, 1, NSX_MAX_DIM, sizes[k].v, err))
            return err->kind;
    if (get_enum(root, "", "reduce", nsx_reduce_name, 0, &p->reduce, err) ||
        parse_scale(root, p, err) || get_num(root, "", "out_scale", &p->out_scale, err) ||
        get_bool(root, "causal", &p->causal, err) ||
        get_bool(root, "distinct", &p->distinct, err))
        return err->kind;
    const json_t *w, *kb, *vb;
    if (get_array(root, "windows", p->n, &w, err) || get_array(root, "k_bias", p->n, &kb, err) ||
        get_array(root, "v_bias", p->n, &vb, err))
        return err->kind;
    for (int m = 0; m < p->n; m++) {
        char key[32];
        snprintf(key, sizeof key, "windows[%d]", m);
        if (as_int(json_array_get(w, m), "", key, 0, NSX_MAX_WINDOW, &p->window[m], err))
            return err->kind;
        snprintf(key, sizeof key, "k_bias[%d]", m);
        if (as_num(json_array_get(kb, m), "", key, &p->k_bias[m], err))
            return err->kind;
        snprintf(key, sizeof key, "v_bias[%d]", m);
        if (as_num(json_array_get(vb, m), "", key, &p->v_bias[m], err))
            return err->kind;
    }
    if (parse_selection(root, p, err) ||
        get_enum(root, "", "input_format", nsx_format_name, 0, &p->input_format, err))
        return err->kind;
    char why[256];
    if (nsx_problem_check(p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "metadata: %s", why);
    return 0;
}

static int parse_pair(const json_t *o, int k, const nsx_problem *p, nsx_pair *q, nsx_err *err)
{
    char pre[32];
    snprintf(pre, sizeof pre, "pairs[%d].", k);
    if (!json_is_object(o))
        return bad(err, "pairs", "", "entry %d is not an object", k);
    *q = (nsx_pair){0};
    /* ranges are nsx_pair_check's; here only the types and int limits */
    if (get_enum(o, pre, "kind", nsx_pair_kind_name, 0, &q->kind, err) ||
        get_int(o, pre, "a", INT_MIN, INT_MAX, &q->a, err) ||
        get_int(o, pre, "b", INT_MIN, INT_MAX, &q->b, err))
        return err->kind;
    if (q->kind == NSX_PAIR_LEAK) {
        if (get_int(o, pre, "t", INT_MIN, INT_MAX, &q->t, err) ||
            get_enum(o, pre, "future", nsx_future_name, 0, &q->future, err))
            return err->kind;
    } else if (q->kind == NSX_PAIR_GRADLEAK) {
        if (get_int(o, pre, "t", INT_MIN, INT_MAX, &q->t, err))
            return err->kind;
    } else if (get_int(o, pre, "i", INT_MIN, INT_MAX, &q->i, err) ||
               get_int(o, pre, "dim", INT_MIN, INT_MAX, &q->dim, err) ||
               get_int(o, pre, "j", INT_MIN, INT_MAX, &q->j, err)) {
        return err->kind;
    }
    return nsx_pair_check(p, q, k, err);
}

static int dup_str(const char *s, char **out, nsx_err *err)
{
    *out = strdup(s);
    return *out ? 0 : OOM();
}

static int parse_info(const json_t *root, const nsx_problem *p, nsx_case_info *info, nsx_err *err)
{
    const char *s;
    if (get_str(root, "", "case", &s, err) || dup_str(s, &info->id, err) ||
        get_str(root, "", "description", &s, err) || dup_str(s, &info->description, err) ||
        get_str(root, "", "spec", &s, err) || dup_str(s, &info->spec, err))
        return err->kind;
    static const char *const optional[] = {"suite", "generator"};
    char **dst[] = {&info->suite, &info->generator};
    for (size_t k = 0; k < 2; k++)
        if (get(root, optional[k]) &&
            (get_str(root, "", optional[k], &s, err) || dup_str(s, dst[k], err)))
            return err->kind;

    const json_t *fl;
    if (need(root, "", "flags", &fl, err))
        return err->kind;
    if (!json_is_array(fl))
        return bad(err, "", "flags", "is not an array of strings");
    size_t n = json_array_size(fl), k;
    const json_t *v;
    if (n > INT_MAX)
        return bad(err, "", "flags", "has more than %d entries", INT_MAX);
    if (n && !(info->flags = calloc(n, sizeof *info->flags)))
        return OOM();
    json_array_foreach(fl, k, v) {
        if (!json_is_string(v))
            return bad(err, "", "flags", "entry %d is not a string", info->nflags);
        if (dup_str(json_string_value(v), &info->flags[info->nflags++], err))
            return err->kind;
    }

    const json_t *pa = get(root, "pairs");
    if (!pa || json_is_null(pa))
        return 0;
    if (!json_is_array(pa))
        return bad(err, "", "pairs", "is not an array");
    n = json_array_size(pa);
    if (n > INT_MAX)
        return bad(err, "", "pairs", "has more than %d entries", INT_MAX);
    if (n && !(info->pairs = calloc(n, sizeof *info->pairs)))
        return OOM();
    json_array_foreach(pa, k, v) {
        if (parse_pair(v, info->npairs, p, &info->pairs[info->npairs], err))
            return err->kind;
        info->npairs++;
    }
    return 0;
}

int nsx_meta_parse(const char *json, nsx_problem *p, nsx_case_info *info, nsx_err *err)
{
    nsx_err local;
    if (!err) /* the helpers read err->kind */
        err = &local;
    if (info)
        *info = (nsx_case_info){0};
    json_t *root;
    nsx_json_error je;
    const char *spec;
    int r = nsx_json_parse(json, strlen(json), NSX_JSON_DOC, &root, &je);
    if (r == -2)
        return OOM();
    if (r && je.dup)
        return nsx_err_set(err, NSX_E_INPUT, "metadata: %s", je.why);
    if (r)
        return nsx_err_set(err, NSX_E_INPUT, "metadata: not a valid JSON object: %s", je.why);
    /* spec first: a file of another major version may differ anywhere */
    if (!(r = get_str(root, "", "spec", &spec, err)))
        r = check_spec(spec, err);
    if (!r)
        r = parse_problem(root, p, err);
    if (!r && info) {
        if ((r = parse_info(root, p, info, err)))
            nsx_case_info_free(info);
    }
    json_decref(root);
    return r;
}
