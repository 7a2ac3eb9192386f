/* Recipes: one line of text per case (vectors/recipe.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/fpformat.h"
#include "vectors/recipe.h"

static const char *const dist_names[] = {"normal", "uniform", "heavy", "onehot",
                                         "equal", "zeros", "subnormal", "large"};

const char *nsx_dist_name(int dist)
{
    return dist >= 0 && dist < (int)(sizeof dist_names / sizeof dist_names[0]) ? dist_names[dist] : NULL;
}

/* The index of s in names[0..count-1], or -1. */
static int lookup(const char *s, const char *const *names, int count)
{
    for (int t = 0; t < count; t++)
        if (names[t] && strcmp(s, names[t]) == 0)
            return t;
    return -1;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* A number, or "1/d" for the binary64 nearest 1/d. */
static int parse_num(const char *s, int d, double *out)
{
    char *end;
    if (strcmp(s, "1/d") == 0) {
        *out = 1.0 / d;
        return 0;
    }
    errno = 0;
    *out = strtod(s, &end);
    return errno || end == s || *end || !isfinite(*out) ? -1 : 0;
}

/* A comma list of up to max numbers (parse_num). */
static int parse_list(char *s, int max, double *nums, int d)
{
    int count = 0;
    char *save = NULL; /* strtok_r: recipes are parsed in several threads at once (fuzz/run.c) */
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (count == max || parse_num(tok, d, &nums[count]))
            return -1;
        count++;
    }
    return count;
}

#define BAD(...) nsx_err_set(err, NSX_E_INPUT, __VA_ARGS__)

/* One key=value; lists are checked against n after every key is read. */
static int set_key(nsx_recipe *r, const char *key, char *val, nsx_err *err, int lists[4])
{
    nsx_problem *p = &r->p;
    const struct {
        const char *name;
        int *field;
        long lo, hi;
    } ints[] = {
        {"n", &p->n, 1, NSX_MAX_ORDER}, {"B", &p->B, 1, 64},         {"L", &p->L, 1, NSX_MAX_DIM},
        {"H", &p->H, 1, NSX_MAX_DIM},   {"Hkv", &p->Hkv, 1, NSX_MAX_DIM}, {"d", &p->d, 1, NSX_MAX_DIM},
        {"dv", &p->dv, 1, NSX_MAX_DIM}, {"causal", &p->causal, 0, 1}, {"distinct", &p->distinct, 0, 1},
        {"k", &p->sel.k, 1, NSX_MAX_DIM}, {"Hi", &p->sel.Hi, 1, NSX_MAX_DIM}, {"di", &p->sel.di, 1, NSX_MAX_DIM},
        {"ties", &r->ties, 0, 1},       {"empty", &r->empty, 0, 1},   {"invalid", &r->invalid, 0, 1},
        {"bwd", &r->bwd, 0, 1},         {"gleak", &r->gleak, 1, NSX_MAX_DIM},
        {"iblocks", &r->iblocks, 0, NSX_MAX_DIM},
    };
    for (size_t t = 0; t < sizeof ints / sizeof ints[0]; t++)
        if (strcmp(key, ints[t].name) == 0)
            return parse_int(val, ints[t].lo, ints[t].hi, ints[t].field)
                       ? BAD("recipe: %s: '%s' is not an integer in %ld..%ld", key, val, ints[t].lo, ints[t].hi)
                       : 0;
    int v;
    char names[80];
    if (strcmp(key, "reduce") == 0) {
        if ((p->reduce = nsx_name_lookup(nsx_reduce_name, 0, val)) < 0)
            return BAD("recipe: reduce: '%s' is not %s", val, nsx_name_list(nsx_reduce_name, 0, names, sizeof names));
    } else if (strcmp(key, "sel") == 0) {
        if ((p->sel.source = nsx_name_lookup(nsx_source_name, 1, val)) < 0)
            return BAD("recipe: sel: '%s' is not %s", val, nsx_name_list(nsx_source_name, 1, names, sizeof names));
    } else if (strcmp(key, "act") == 0) {
        if ((p->sel.act = nsx_name_lookup(nsx_act_name, 0, val)) < 0)
            return BAD("recipe: act: '%s' is not %s", val, nsx_name_list(nsx_act_name, 0, names, sizeof names));
    } else if (strcmp(key, "fmt") == 0) {
        if ((p->input_format = nsx_format_from_name(val)) < 0)
            return BAD("recipe: fmt: '%s' is not %s", val, nsx_name_list(nsx_format_name, 0, names, sizeof names));
    } else if (strcmp(key, "dist") == 0) {
        if ((r->dist = lookup(val, dist_names, (int)(sizeof dist_names / sizeof dist_names[0]))) < 0)
            return BAD("recipe: dist: '%s' is not a distribution", val);
    } else if (strcmp(key, "scale") == 0) {
        p->score_scale_rsqrt_d = strcmp(val, "rsqrt") == 0;
        if (!p->score_scale_rsqrt_d && parse_num(val, p->d, &p->score_scale))
            return BAD("recipe: scale: '%s' is not rsqrt or a number", val);
    } else if (strcmp(key, "out") == 0) {
        if (parse_num(val, p->d, &p->out_scale))
            return BAD("recipe: out: '%s' is not a number", val);
    } else if (strcmp(key, "iscale") == 0) {
        if (parse_num(val, p->d, &p->sel.idx_scale))
            return BAD("recipe: iscale: '%s' is not a number", val);
    } else if (strcmp(key, "w") == 0) {
        if ((lists[0] = nsx_windows_parse(val, p->window)) < 0)
            return BAD("recipe: w: need 1 to %d non-negative integers separated by commas", NSX_MAX_ORDER);
    } else if (strcmp(key, "kb") == 0 || strcmp(key, "vb") == 0) {
        int kb = key[0] == 'k';
        if ((lists[kb ? 1 : 2] = parse_list(val, NSX_MAX_ORDER, kb ? p->k_bias : p->v_bias, p->d)) < 0)
            return BAD("recipe: %s: need up to %d numbers", key, NSX_MAX_ORDER);
    } else if (strcmp(key, "dims") == 0) {
        int dims[NSX_MAX_ORDER], count = nsx_int_list_parse(val, 1, NSX_MAX_ORDER, dims, NSX_MAX_ORDER);
        if (count <= 0)
            return BAD("recipe: dims: need a list of dimensions 1..%d", NSX_MAX_ORDER);
        p->sel.dims = 0;
        for (int t = 0; t < count; t++)
            p->sel.dims |= 1u << (dims[t] - 1);
        lists[3] = 1;
    } else if (strcmp(key, "probe") == 0) {
        if (strcmp(val, "all") != 0)
            return BAD("recipe: probe: only 'all' is known");
        r->probes = 1;
    } else if (strcmp(key, "leak") == 0) {
        char *colon = strchr(val, ':');
        if (r->nleaks == NSX_RECIPE_MAX_LEAKS)
            return BAD("recipe: leak: at most %d leak pairs", NSX_RECIPE_MAX_LEAKS);
        if (!colon)
            return BAD("recipe: leak: '%s' is not FUTURE:T", val);
        *colon = '\0';
        if ((r->leak[r->nleaks].future = nsx_name_lookup(nsx_future_name, 0, val)) < 0 ||
            parse_int(colon + 1, 0, NSX_MAX_DIM, &v))
            return BAD("recipe: leak: need FUTURE:T, FUTURE one of %s",
                       nsx_name_list(nsx_future_name, 0, names, sizeof names));
        r->leak[r->nleaks++].t = v;
    } else {
        return BAD("recipe: '%s' is not a key", key);
    }
    return 0;
}

int nsx_recipe_parse(const char *text, nsx_recipe *r, nsx_err *err)
{
    char buf[1024], why[256];
    int lists[4] = {0, 0, 0, 0}, dv_set = 0;
    memset(r, 0, sizeof *r);
    nsx_problem_defaults(&r->p);
    r->p.L = 8;
    r->p.d = 4;
    r->p.input_format = NSX_FORMAT_BF16;
    r->p.sel.idx_scale = 1;
    r->p.sel.Hi = 2;
    r->p.sel.di = 4;
    if (strlen(text) >= sizeof buf)
        return BAD("recipe: longer than %zu characters", sizeof buf - 1);
    strcpy(buf, text);
    /* every key=value, separated by spaces; d first, so that a bias 1/d
       means this recipe's d whatever the order of the keys */
    char *tok[64], *save = NULL;
    int ntok = 0;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(t, '=');
        if (!eq)
            return BAD("recipe: '%s' is not KEY=VALUE", t);
        if (ntok == 64)
            return BAD("recipe: more than 64 keys");
        *eq = '\0';
        tok[ntok++] = t;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int t = 0; t < ntok; t++) {
            int is_d = strcmp(tok[t], "d") == 0;
            if (is_d != (pass == 0))
                continue;
            dv_set |= strcmp(tok[t], "dv") == 0;
            if (set_key(r, tok[t], tok[t] + strlen(tok[t]) + 1, err, lists))
                return err->kind;
        }
    nsx_problem *p = &r->p;
    if (!dv_set)
        p->dv = p->d;
    if (lists[0] > p->n || lists[1] > p->n || lists[2] > p->n)
        return BAD("recipe: w, kb and vb have at most n = %d entries", p->n);
    if (p->sel.source != NSX_SEL_NONE && !lists[3])
        p->sel.dims = (1u << p->n) - 1;
    if (p->sel.source == NSX_SEL_NONE && (p->sel.k || lists[3]))
        return BAD("recipe: k and dims need sel=");
    if (p->sel.source == NSX_SEL_NONE)
        memset(&p->sel, 0, sizeof p->sel);
    if (nsx_problem_check(p, why, sizeof why))
        return BAD("recipe: %s", why);
    for (int l = 0; l < r->nleaks; l++)
        if (r->leak[l].t >= p->L - 1)
            return BAD("recipe: leak: t = %d leaves no future position (L = %d)", r->leak[l].t, p->L);
    if ((r->ties || r->invalid) && p->sel.source == NSX_SEL_NONE)
        return BAD("recipe: ties and invalid need a selection");
    if (r->iblocks && p->sel.source != NSX_SEL_INDEXER)
        return BAD("recipe: iblocks needs sel=indexer");
    if (r->invalid && p->sel.source != NSX_SEL_INDICES)
        return BAD("recipe: invalid needs sel=indices");
    for (int l = 0; r->bwd && l < r->nleaks; l++)
        if (r->leak[l].future != NSX_FUTURE_RANDOM)
            return BAD("recipe: leak: a gradient case's leak pairs have random futures (every row contributes to dk, dv)");
    if (r->gleak && (!r->bwd || !p->causal || r->gleak >= p->L))
        return BAD("recipe: gleak: needs bwd=1, a causal problem and 1 <= T <= L - 1 = %d", p->L - 1);
    return 0;
}
