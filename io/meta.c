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

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* Required member key of o, or an error naming it. */
static int need(const cJSON *o, const char *pre, const char *key, const cJSON **v, nsx_err *err)
{
    *v = get(o, key);
    return *v ? 0 : bad(err, pre, key, "missing");
}

/* A JSON number written as an integer (not 1.0 or 1e0) in lo..hi. */
static int as_int(const cJSON *v, const char *pre, const char *key, long lo, long hi, int *out,
                  nsx_err *err)
{
    int64_t x;
    const char *why = nsx_json_exact_int(v, &x);
    if (why && cJSON_IsNumber(v)) {
        char num[32];
        nsx_fmt_double(num, sizeof num, v->valuedouble);
        return bad(err, pre, key, "%s %s", num, why);
    }
    if (why)
        return bad(err, pre, key, "%s", why);
    if (x < lo || x > hi)
        return bad(err, pre, key, "%lld is outside %ld..%ld", (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_int(const cJSON *o, const char *pre, const char *key, long lo, long hi, int *out,
                   nsx_err *err)
{
    const cJSON *v;
    return need(o, pre, key, &v, err) || as_int(v, pre, key, lo, hi, out, err) ? err->kind : 0;
}

/* The lexer already refused numbers that overflow, so every number is
   finite; it is its exact binary64 value (strtod rounds correctly). */
static int as_num(const cJSON *v, const char *pre, const char *key, double *out, nsx_err *err)
{
    if (!cJSON_IsNumber(v))
        return bad(err, pre, key, "is not a number");
    *out = v->valuedouble;
    return 0;
}

static int get_num(const cJSON *o, const char *pre, const char *key, double *out, nsx_err *err)
{
    const cJSON *v;
    return need(o, pre, key, &v, err) || as_num(v, pre, key, out, err) ? err->kind : 0;
}

static int get_bool(const cJSON *o, const char *key, int *out, nsx_err *err)
{
    const cJSON *v;
    if (need(o, "", key, &v, err))
        return err->kind;
    if (!cJSON_IsBool(v))
        return bad(err, "", key, "is not true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_str(const cJSON *o, const char *pre, const char *key, const char **out,
                   nsx_err *err)
{
    const cJSON *v;
    if (need(o, pre, key, &v, err))
        return err->kind;
    if (!cJSON_IsString(v))
        return bad(err, pre, key, "is not a string");
    *out = v->valuestring;
    return 0;
}

/* A string member naming one value of an enum, whose names name(0..) gives
   until NULL. */
static int get_enum(const cJSON *o, const char *pre, const char *key, const char *(*name)(int),
                    int *out, nsx_err *err)
{
    const char *s;
    if (get_str(o, pre, key, &s, err))
        return err->kind;
    for (int v = 0; name(v); v++)
        if (strcmp(s, name(v)) == 0) {
            *out = v;
            return 0;
        }
    char ps[64], list[128] = "";
    nsx_printable(ps, sizeof ps, s);
    for (int v = 0; name(v); v++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", v ? ", " : "", name(v));
    return bad(err, pre, key, "unknown value '%s' (one of: %s)", ps, list);
}

/* The sources start at 1 (0 is "no selection"), the other enums at 0. */
static const char *source_name1(int v) { return nsx_source_name(v + 1); }

/* An array member with exactly n entries. */
static int get_array(const cJSON *o, const char *key, int n, const cJSON **out, nsx_err *err)
{
    if (need(o, "", key, out, err))
        return err->kind;
    if (!cJSON_IsArray(*out))
        return bad(err, "", key, "is not an array");
    int len = cJSON_GetArraySize(*out);
    if (len != n)
        return bad(err, "", key, "has %d entries but n = %d", len, n);
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

static int parse_selection(const cJSON *root, nsx_problem *p, nsx_err *err)
{
    const char *pre = "selection.";
    const cJSON *o;
    nsx_selection *s = &p->sel;
    if (need(root, "", "selection", &o, err))
        return err->kind;
    if (cJSON_IsNull(o))
        return 0;
    if (!cJSON_IsObject(o))
        return bad(err, "", "selection", "is not null or an object");
    int src;
    if (get_enum(o, pre, "source", source_name1, &src, err) ||
        get_int(o, pre, "k", 1, NSX_MAX_DIM, &s->k, err))
        return err->kind;
    s->source = src + 1;
    const cJSON *dims;
    if (need(o, pre, "dims", &dims, err))
        return err->kind;
    if (!cJSON_IsArray(dims) || cJSON_GetArraySize(dims) == 0)
        return bad(err, pre, "dims", "is not a nonempty array of dimensions 1..n");
    int k = 0;
    for (const cJSON *v = dims->child; v; v = v->next, k++) {
        char key[32];
        int m;
        snprintf(key, sizeof key, "dims[%d]", k);
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
    if (get_enum(o, pre, "act", nsx_act_name, &s->act, err) ||
        get_num(o, pre, "idx_scale", &s->idx_scale, err) ||
        get_int(o, pre, "Hi", 1, NSX_MAX_DIM, &s->Hi, err) ||
        get_int(o, pre, "di", 1, NSX_MAX_DIM, &s->di, err))
        return err->kind;
    return 0;
}

/* score_scale, and score_scale_exact when the exact real 1/sqrt(d) is
   meant: score_scale must then be RN(1/sqrt(d)), or one ulp from it (what
   1.0 / sqrt(d) gives in binary64, as other tools compute it). */
static int parse_scale(const cJSON *root, nsx_problem *p, nsx_err *err)
{
    double s;
    if (get_num(root, "", "score_scale", &s, err))
        return err->kind;
    const cJSON *ex = get(root, "score_scale_exact");
    if (!ex) {
        p->score_scale = s;
        p->score_scale_rsqrt_d = 0;
        return 0;
    }
    if (!cJSON_IsString(ex))
        return bad(err, "", "score_scale_exact", "is not a string");
    if (strcmp(ex->valuestring, "1/sqrt(d)") != 0) {
        char ps[64];
        nsx_printable(ps, sizeof ps, ex->valuestring);
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

static int parse_problem(const cJSON *root, nsx_problem *p, nsx_err *err)
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
    if (get_enum(root, "", "reduce", nsx_reduce_name, &p->reduce, err) ||
        parse_scale(root, p, err) || get_num(root, "", "out_scale", &p->out_scale, err) ||
        get_bool(root, "causal", &p->causal, err) ||
        get_bool(root, "distinct", &p->distinct, err))
        return err->kind;
    const cJSON *w, *kb, *vb;
    if (get_array(root, "windows", p->n, &w, err) || get_array(root, "k_bias", p->n, &kb, err) ||
        get_array(root, "v_bias", p->n, &vb, err))
        return err->kind;
    for (int m = 0; m < p->n; m++) {
        char key[32];
        snprintf(key, sizeof key, "windows[%d]", m);
        if (as_int(cJSON_GetArrayItem(w, m), "", key, 0, INT_MAX, &p->window[m], err))
            return err->kind;
        snprintf(key, sizeof key, "k_bias[%d]", m);
        if (as_num(cJSON_GetArrayItem(kb, m), "", key, &p->k_bias[m], err))
            return err->kind;
        snprintf(key, sizeof key, "v_bias[%d]", m);
        if (as_num(cJSON_GetArrayItem(vb, m), "", key, &p->v_bias[m], err))
            return err->kind;
    }
    if (parse_selection(root, p, err) ||
        get_enum(root, "", "input_format", nsx_format_name, &p->input_format, err))
        return err->kind;
    char why[256];
    if (nsx_problem_check(p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "metadata: %s", why);
    return 0;
}

static int parse_pair(const cJSON *o, int k, const nsx_problem *p, nsx_pair *q, nsx_err *err)
{
    char pre[32];
    snprintf(pre, sizeof pre, "pairs[%d].", k);
    if (!cJSON_IsObject(o))
        return bad(err, "pairs", "", "entry %d is not an object", k);
    *q = (nsx_pair){0};
    /* ranges are nsx_pair_check's; here only the types and int limits */
    if (get_enum(o, pre, "kind", nsx_pair_kind_name, &q->kind, err) ||
        get_int(o, pre, "a", INT_MIN, INT_MAX, &q->a, err) ||
        get_int(o, pre, "b", INT_MIN, INT_MAX, &q->b, err))
        return err->kind;
    if (q->kind == NSX_PAIR_LEAK) {
        if (get_int(o, pre, "t", INT_MIN, INT_MAX, &q->t, err) ||
            get_enum(o, pre, "future", nsx_future_name, &q->future, err))
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

static int parse_info(const cJSON *root, const nsx_problem *p, nsx_case_info *info, nsx_err *err)
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

    const cJSON *fl;
    if (need(root, "", "flags", &fl, err))
        return err->kind;
    if (!cJSON_IsArray(fl))
        return bad(err, "", "flags", "is not an array of strings");
    int n = cJSON_GetArraySize(fl);
    if (n && !(info->flags = calloc((size_t)n, sizeof *info->flags)))
        return OOM();
    for (const cJSON *v = fl->child; v; v = v->next) {
        if (!cJSON_IsString(v))
            return bad(err, "", "flags", "entry %d is not a string", info->nflags);
        if (dup_str(v->valuestring, &info->flags[info->nflags++], err))
            return err->kind;
    }

    const cJSON *pa = get(root, "pairs");
    if (!pa || cJSON_IsNull(pa))
        return 0;
    if (!cJSON_IsArray(pa))
        return bad(err, "", "pairs", "is not an array");
    n = cJSON_GetArraySize(pa);
    if (n && !(info->pairs = calloc((size_t)n, sizeof *info->pairs)))
        return OOM();
    for (const cJSON *v = pa->child; v; v = v->next, info->npairs++)
        if (parse_pair(v, info->npairs, p, &info->pairs[info->npairs], err))
            return err->kind;
    return 0;
}

static int check_dups(const cJSON *root, nsx_err *err)
{
    const cJSON *dup, *parent;
    if (nsx_json_find_dup(root, &dup, &parent))
        return OOM();
    if (!dup)
        return 0;
    char k[80], in[100] = "";
    nsx_printable(k, sizeof k, dup->string);
    if (parent != root) {
        char ps[80];
        nsx_printable(ps, sizeof ps, parent->string ? parent->string : "an array entry");
        snprintf(in, sizeof in, " in '%s'", ps);
    }
    return nsx_err_set(err, NSX_E_INPUT, "metadata: duplicate key '%s'%s", k, in);
}

int nsx_meta_parse(const char *json, nsx_problem *p, nsx_case_info *info, nsx_err *err)
{
    nsx_err local;
    if (!err) /* the helpers read err->kind */
        err = &local;
    if (info)
        *info = (nsx_case_info){0};
    cJSON *root;
    char why[200];
    const char *spec;
    int r = nsx_json_parse(json, strlen(json), NSX_JSON_DOC, &root, why, sizeof why);
    if (r == -2)
        return OOM();
    if (r)
        return nsx_err_set(err, NSX_E_INPUT, "metadata: not a valid JSON object: %s", why);
    /* spec first: a file of another major version may differ anywhere */
    if (!(r = check_dups(root, err)) && !(r = get_str(root, "", "spec", &spec, err)))
        r = check_spec(spec, err);
    if (!r)
        r = parse_problem(root, p, err);
    if (!r && info) {
        if ((r = parse_info(root, p, info, err)))
            nsx_case_info_free(info);
    }
    cJSON_Delete(root);
    return r;
}
