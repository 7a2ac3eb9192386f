/*
 * Writes the seed corpora of the metadata, check and vector fuzz targets
 * (fuzz/targets/README.md): ROOT/metadata/NAME.json, ROOT/check/NAME.safetensors
 * and ROOT/vector/NAME.safetensors, from the committed golden vectors and
 * the attack tables below.  The same
 * tree always gives the same files.
 *
 *   usage: seeds ROOT [VECTORS_DIR]      (make fuzz-seeds: ROOT = fuzz/corpus)
 *
 * metadata/: vec_CASE.json, the metadata of every vector in VECTORS_DIR
 * (vectors/default), and one file per attack on the metadata parser, each a
 * one-place edit of n2_sel_relu's metadata (or a whole text).
 * check/: candidates for the vectors the check target embeds: valid ones
 * (the expected outputs in several dtypes and models), wrong values, and
 * one file per attack on the candidate's framing, header and tensors, each
 * a one-place edit of the golden candidate for n2_ties_scores.
 * vector/: small golden vectors, and edits of their metadata that the
 * expected values no longer match.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/casefile.h"
#include "io/fpformat.h"
#include "io/meta.h"
#include "io/safetensors.h"
#include "oracle/candidate.h"

static const char *root;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "seeds: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void put(const char *dir, const char *name, const void *b, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, dir);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        die("mkdir %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
        die("cannot write %s", path);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap);
    for (;;) {
        if (!b)
            die("out of memory");
        len += fread(b + len, 1, cap - len, f);
        if (len < cap)
            break;
        b = realloc(b, cap *= 2);
    }
    fclose(f);
    *n = len;
    return b;
}

/* s with the first occurrence of from replaced by to (malloc'd; to may hold
   NUL bytes: tolen gives its length).  Dies when from is not in s. */
static char *replace(const char *s, size_t slen, const char *from, const char *to, size_t tolen,
                     size_t *outlen, const char *what)
{
    const char *at = NULL;
    size_t flen = strlen(from);
    for (size_t i = 0; i + flen <= slen && !at; i++)
        if (memcmp(s + i, from, flen) == 0)
            at = s + i;
    if (!at)
        die("%s: '%s' not found", what, from);
    size_t pre = (size_t)(at - s), n = slen - flen + tolen;
    char *r = malloc(n + 1);
    if (!r)
        die("out of memory");
    memcpy(r, s, pre);
    memcpy(r + pre, to, tolen);
    memcpy(r + pre + tolen, at + flen, slen - pre - flen);
    r[n] = '\0';
    *outlen = n;
    return r;
}

/* ---- metadata ---------------------------------------------------------- */

/* Edits of the base text (n2_sel_relu: n = 2, B = 6, L = 16, an indexer
   selection, a leak pair and mask probes).  to_len > 0 when to holds NUL
   bytes. */
typedef struct meta_edit {
    const char *name, *from, *to;
    size_t to_len;
} meta_edit;

#define E(name, from, to) {name, from, to, 0}
/* to holds NUL bytes */
#define ER(name, from, to) {name, from, to, sizeof(to) - 1}

static const meta_edit meta_edits[] = {
    /* numbers: too large, not integers, written as floats */
    E("huge_L", "\"L\": 16", "\"L\": 99999999999999999999999999"),
    E("overflow_inf", "\"out_scale\": 1", "\"out_scale\": 1e999"),
    E("overflow_score_scale", "\"score_scale\": 0.3535533905932738,", "\"score_scale\": -1e400,"),
    E("int_past_2p53", "\"B\": 6", "\"B\": 9007199254740993"),
    E("int_as_float", "\"n\": 2", "\"n\": 2.0"),
    E("int_as_exponent", "\"d\": 8", "\"d\": 8e0"),
    E("int_fraction", "\"H\": 1", "\"H\": 1.5"),
    E("negative_size", "\"Hkv\": 1", "\"Hkv\": -1"),
    E("zero_size", "\"dv\": 8", "\"dv\": 0"),
    E("size_over_max", "\"L\": 16", "\"L\": 1048577"),
    E("size_int_overflow", "\"B\": 6", "\"B\": 4294967302"),
    E("leading_zero", "\"d\": 8", "\"d\": 08"),
    E("window_int_max", "\"windows\": [0, 0]", "\"windows\": [2147483647, 2147483648]"),
    E("subnormal_bias", "\"k_bias\": [0, 0]", "\"k_bias\": [4.9e-324, -0]"),
    E("negative_zero_scale", "\"out_scale\": 1", "\"out_scale\": -0"),
    /* duplicate keys, at the root and inside */
    E("dup_root", "\"n\": 2,", "\"n\": 2, \"n\": 3,"),
    E("dup_selection", "\"k\": 4,", "\"k\": 4, \"k\": 4,"),
    E("dup_pair", "\"t\": 7,", "\"t\": 7, \"t\": 8,"),
    E("dup_escaped", "\"n\": 2,", "\"n\": 2, \"\\u006e\": 2,"),
    /* wrong types */
    E("type_n_string", "\"n\": 2", "\"n\": \"2\""),
    E("type_causal_int", "\"causal\": true", "\"causal\": 1"),
    E("type_windows_object", "\"windows\": [0, 0]", "\"windows\": {\"0\": 0}"),
    E("type_selection_array", "\"selection\": {", "\"selection\": [{"),
    E("type_flags_string", "\"flags\": [", "\"flags\": \"x\", \"f\": ["),
    E("type_flag_number", "\"flags\": [", "\"flags\": [1, "),
    E("type_pairs_object", "\"pairs\": [", "\"pairs\": {\"x\": 1}, \"p\": ["),
    E("type_pair_null", "\"pairs\": [", "\"pairs\": [null, "),
    E("type_bias_string", "\"k_bias\": [0, 0]", "\"k_bias\": [\"0\", 0]"),
    E("type_spec_number", "\"spec\": \"1.0\"", "\"spec\": 1.0"),
    E("type_case_null", "\"case\": \"n2_sel_relu\"", "\"case\": null"),
    E("type_idx_scale_bool", "\"idx_scale\": 1", "\"idx_scale\": true"),
    E("type_dims_nested", "\"dims\": [1, 2]", "\"dims\": [[1], 2]"),
    /* unknown enum values */
    E("enum_reduce", "\"reduce\": \"product\"", "\"reduce\": \"max\""),
    E("enum_format", "\"input_format\": \"bf16\"", "\"input_format\": \"f8\""),
    E("enum_format_case", "\"input_format\": \"bf16\"", "\"input_format\": \"BF16\""),
    E("enum_source", "\"source\": \"indexer\"", "\"source\": \"topk\""),
    E("enum_act", "\"act\": \"relu\"", "\"act\": \"gelu\""),
    E("enum_kind", "\"kind\": \"probe\"", "\"kind\": \"swap\""),
    E("enum_future", "\"future\": \"random\"", "\"future\": \"zero\""),
    E("enum_scale_exact", "\"score_scale_exact\": \"1/sqrt(d)\"", "\"score_scale_exact\": \"1/d\""),
    E("scale_not_rsqrt", "\"score_scale\": 0.3535533905932738", "\"score_scale\": 0.36"),
    E("scale_one_ulp", "\"score_scale\": 0.3535533905932738", "\"score_scale\": 0.35355339059327373"),
    /* arrays of the wrong length, values out of range */
    E("windows_short", "\"windows\": [0, 0]", "\"windows\": [0]"),
    E("windows_long", "\"windows\": [0, 0]", "\"windows\": [0, 0, 0]"),
    E("windows_negative", "\"windows\": [0, 0]", "\"windows\": [-1, 0]"),
    E("windows_set", "\"windows\": [0, 0]", "\"windows\": [4, 1]"),
    E("k_bias_long", "\"k_bias\": [0, 0]", "\"k_bias\": [0, 0, 0]"),
    E("v_bias_empty", "\"v_bias\": [0, 0]", "\"v_bias\": []"),
    E("gqa_not_multiple", "\"H\": 1, \"Hkv\": 1", "\"H\": 3, \"Hkv\": 2"),
    E("sel_k_zero", "\"k\": 4", "\"k\": 0"),
    E("sel_k_ge_L", "\"k\": 4", "\"k\": 64"),
    E("sel_dims_empty", "\"dims\": [1, 2]", "\"dims\": []"),
    E("sel_dims_out_of_range", "\"dims\": [1, 2]", "\"dims\": [3]"),
    E("sel_dims_zero", "\"dims\": [1, 2]", "\"dims\": [0]"),
    E("sel_dims_twice", "\"dims\": [1, 2]", "\"dims\": [2, 2]"),
    E("sel_hi_missing", ", \"Hi\": 2", ""),
    E("sel_act_for_indices", "\"source\": \"indexer\"", "\"source\": \"indices\""),
    E("sel_null", "\"selection\": {\"source\": \"indexer\", \"k\": 4, \"dims\": [1, 2], \"act\": \"relu\", "
                 "\"idx_scale\": 1, \"Hi\": 2, \"di\": 4}", "\"selection\": null"),
    E("pair_a_past_B", "\"a\": 0, \"b\": 1", "\"a\": 6, \"b\": 1"),
    E("pair_b_negative", "\"a\": 0, \"b\": 1", "\"a\": 0, \"b\": -1"),
    E("pair_a_equals_b", "\"a\": 0, \"b\": 1", "\"a\": 1, \"b\": 1"),
    E("pair_t_past_L", "\"t\": 7", "\"t\": 16"),
    E("pair_t_int_min", "\"t\": 7", "\"t\": -2147483648"),
    E("pair_t_below_int", "\"t\": 7", "\"t\": -2147483649"),
    E("pair_i_past_L", "\"i\": 7", "\"i\": 16"),
    E("pair_dim_past_n", "\"dim\": 1", "\"dim\": 3"),
    E("pair_dim_zero", "\"dim\": 1", "\"dim\": 0"),
    E("pair_j_negative", "\"j\": 8", "\"j\": -1"),
    E("pair_leak_missing_t", "\"t\": 7, ", ""),
    E("pairs_null", "\"pairs\": [", "\"pairs\": null, \"x\": ["),
    /* missing keys, version */
    E("missing_n", "\"n\": 2, ", ""),
    E("missing_selection", "\"selection\":", "\"selectio\":"),
    E("missing_description", "\"description\":", "\"descriptio\":"),
    E("spec_2", "\"spec\": \"1.0\"", "\"spec\": \"2.0\""),
    E("spec_minor", "\"spec\": \"1.0\"", "\"spec\": \"1.7\""),
    E("spec_bad", "\"spec\": \"1.0\"", "\"spec\": \"1.\""),
    E("spec_leading_zero", "\"spec\": \"1.0\"", "\"spec\": \"01.0\""),
    E("unknown_key", "\"n\": 2,", "\"n\": 2, \"future_key\": {\"a\": [1, {\"b\": null}]},"),
    E("generator_missing", "\"generator\": \"nsimplex 0.1.0\", ", ""),
    E("suite_missing", "\"suite\": \"default\", ", ""),
    /* NUL bytes and invalid text */
    ER("nul_raw_in_string", "relu indexer", "relu\0indexer"),
    ER("nul_raw_after_object", "\"di\": 4}", "\"di\": 4}\0}"),
    E("nul_escaped", "relu indexer", "relu\\u0000indexer"),
    E("nul_escaped_key", "\"suite\":", "\"su\\u0000ite\":"),
    E("utf8_invalid_byte", "relu indexer", "relu \xff indexer"),
    E("utf8_overlong", "relu indexer", "relu \xc0\xaf indexer"),
    E("utf8_surrogate", "relu indexer", "relu \xed\xa0\x80 indexer"),
    E("utf8_above_max", "relu indexer", "relu \xf4\x90\x80\x80 indexer"),
    E("utf8_truncated", "relu indexer", "relu \xe2\x82 indexer"),
    E("escape_lone_surrogate", "relu indexer", "relu \\ud800 indexer"),
    E("escape_pair", "relu indexer", "relu \\ud83d\\ude00 indexer"),
    E("escape_bad", "relu indexer", "relu \\x41 indexer"),
    E("control_raw", "relu indexer", "relu\tindexer"),
    E("control_c1_flag", "\"LeakPair\"", "\"Leak\xc2\x85Pair\""),
    E("unterminated_string", "\"di\": 4}", "\"di\": 4}, \"x\": \"abc"),
    E("trailing_comma", "\"di\": 4}", "\"di\": 4,}"),
    E("trailing_garbage", "\"future\": \"random\"}", "\"future\": \"random\"} x"),
    E("single_quotes", "\"reduce\": \"product\"", "'reduce': 'product'"),
    E("literal_nan", "\"out_scale\": 1", "\"out_scale\": NaN"),
    E("literal_true_misspelt", "\"causal\": true", "\"causal\": tru"),
};

/* Whole texts: not an edit of one place. */
static const struct {
    const char *name, *text;
} meta_texts[] = {
    {"empty", ""},
    {"whitespace", " \n\t "},
    {"array_root", "[]"},
    {"string_root", "\"nsimplex\""},
    {"number_root", "1"},
    {"empty_object", "{}"},
    {"two_objects", "{}{}"},
    {"bom", "\xef\xbb\xbf{}"},
    {"minimal_n1", "{\"spec\": \"1.0\", \"case\": \"\", \"description\": \"\", \"flags\": [], \"n\": 1, "
                   "\"B\": 1, \"L\": 1, \"H\": 1, \"Hkv\": 1, \"d\": 1, \"dv\": 1, \"reduce\": \"sum\", "
                   "\"score_scale\": 1, \"out_scale\": 1, \"causal\": false, \"windows\": [0], "
                   "\"distinct\": false, \"k_bias\": [0], \"v_bias\": [0], \"selection\": null, "
                   "\"input_format\": \"f64\"}"},
    {"minimal_scores", "{\"spec\": \"1.0\", \"case\": \"c\", \"description\": \"d\", \"flags\": [\"A\"], "
                       "\"n\": 3, \"B\": 2, \"L\": 5, \"H\": 4, \"Hkv\": 2, \"d\": 3, \"dv\": 2, "
                       "\"reduce\": \"mean\", \"score_scale\": 0.125, \"out_scale\": -2.5, "
                       "\"causal\": true, \"windows\": [0, 2, 5], \"distinct\": true, "
                       "\"k_bias\": [0.5, -1, 1e-300], \"v_bias\": [0, 0, 3], "
                       "\"selection\": {\"source\": \"scores\", \"k\": 2, \"dims\": [3, 1]}, "
                       "\"input_format\": \"f16\", \"pairs\": [{\"kind\": \"probe\", \"a\": 1, "
                       "\"b\": 0, \"i\": 4, \"dim\": 3, \"j\": 0}]}"},
};

/* The text of n levels of nesting: open repeated, then close. */
static char *nested(const char *head, const char *open, const char *close, const char *tail, int n)
{
    size_t lo = strlen(open), lc = strlen(close), lh = strlen(head), lt = strlen(tail);
    char *s = malloc(lh + (size_t)n * (lo + lc) + lt + 1), *p = s;
    if (!s)
        die("out of memory");
    memcpy(p, head, lh), p += lh;
    for (int i = 0; i < n; i++)
        memcpy(p, open, lo), p += lo;
    for (int i = 0; i < n; i++)
        memcpy(p, close, lc), p += lc;
    memcpy(p, tail, lt), p += lt;
    *p = '\0';
    return s;
}

static int is_st(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 12 && strcmp(e->d_name + n - 12, ".safetensors") == 0;
}

static int metadata_seeds(const char *vdir)
{
    struct dirent **names;
    int nv = scandir(vdir, &names, is_st, alphasort);
    if (nv <= 0)
        die("%s: no vectors", vdir);
    char *base = NULL;
    for (int i = 0; i < nv; i++) {
        char path[4096], name[300];
        snprintf(path, sizeof path, "%s/%s", vdir, names[i]->d_name);
        nsx_st st;
        nsx_err err = {0};
        if (nsx_st_read(path, &st, &err))
            die("%s", err.msg);
        const char *json = nsx_st_meta(&st, NSX_META_KEY);
        if (!json)
            die("%s: no metadata", path);
        snprintf(name, sizeof name, "vec_%.*s.json", (int)(strlen(names[i]->d_name) - 12), names[i]->d_name);
        put("metadata", name, json, strlen(json));
        if (strcmp(names[i]->d_name, "n2_sel_relu.safetensors") == 0 && !(base = strdup(json)))
            die("out of memory");
        nsx_st_free(&st);
        free(names[i]);
    }
    free(names);
    if (!base)
        die("%s: no n2_sel_relu", vdir);
    int n = 0;
    for (size_t k = 0; k < sizeof meta_edits / sizeof meta_edits[0]; k++, n++) {
        const meta_edit *e = &meta_edits[k];
        char name[128];
        size_t len;
        char *s = replace(base, strlen(base), e->from, e->to, e->to_len ? e->to_len : strlen(e->to), &len,
                          e->name);
        snprintf(name, sizeof name, "%s.json", e->name);
        put("metadata", name, s, len);
        free(s);
    }
    for (size_t k = 0; k < sizeof meta_texts / sizeof meta_texts[0]; k++, n++) {
        char name[128];
        snprintf(name, sizeof name, "%s.json", meta_texts[k].name);
        put("metadata", name, meta_texts[k].text, strlen(meta_texts[k].text));
    }
    /* nesting far deeper than any parser should follow */
    char *deep[] = {
        nested("{\"flags\": ", "[", "]", "}", 5000),
        nested("", "{\"a\": ", "}", "", 3000),
        nested("{\"spec\": \"1.0\", \"x\": ", "[{\"y\": ", "}]", "}", 2000),
    };
    const char *deep_names[] = {"deep_arrays.json", "deep_objects.json", "deep_mixed.json"};
    for (int k = 0; k < 3; k++, n++) {
        put("metadata", deep_names[k], deep[k], strlen(deep[k]));
        free(deep[k]);
    }
    free(base);
    return nv + n;
}

/* ---- candidates -------------------------------------------------------- */

/* A candidate file's bytes: the writer's canonical file (header padded,
   tensors laid out by element size, then name). */
static unsigned char *write_st(const nsx_st *st, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.seed.safetensors", root);
    nsx_err err = {0};
    if (nsx_st_write(path, st, &err))
        die("%s", err.msg);
    unsigned char *b = slurp(path, n);
    remove(path);
    return b;
}

enum { O_F64, O_F32, O_BF16, O_F16 };

typedef struct cand_opts {
    int dtype;            /* of o and lse */
    int no_lse, no_sel;
    const char *model;    /* the metadata key nsimplex.model, or NULL */
    int mutate;           /* 0 none, 1 o + 1 binary64 ulp everywhere, 2 o NaN, 3 lse +inf, 4 o zeros,
                             5 sel rows reversed, 6 sel as -1, 7 leak row 0 of batch b changed */
} cand_opts;

/* The candidate of vector c's expected outputs, as opts says. */
static unsigned char *candidate(const nsx_case *c, const cand_opts *opts, size_t *n)
{
    const nsx_problem *p = &c->p;
    size_t no = nsx_o_size(p), nl = nsx_lse_size(p), ns = nsx_sel_size(p);
    double *o = malloc(no * sizeof *o), *lse = malloc(nl * sizeof *lse);
    int32_t *sel = malloc((ns ? ns : 1) * sizeof *sel);
    if (!o || !lse || !sel)
        die("out of memory");
    memcpy(o, c->expected.o, no * sizeof *o);
    memcpy(lse, c->expected.lse, nl * sizeof *lse);
    if (c->expected.sel)
        memcpy(sel, c->expected.sel, ns * sizeof *sel);
    int dt = opts->dtype == O_F64   ? NSX_DTYPE_F64
             : opts->dtype == O_F32 ? NSX_DTYPE_F32
             : opts->dtype == O_F16 ? NSX_DTYPE_F16
                                    : NSX_DTYPE_BF16;
    int fmt = dt; /* the float dtypes are the NSX_FORMAT_* codes */
    for (size_t i = 0; i < no; i++) {
        o[i] = nsx_round_to_format(o[i], fmt);
        if (opts->mutate == 1)
            o[i] = nextafter(o[i], INFINITY);
        if (opts->mutate == 2)
            o[i] = NAN;
        if (opts->mutate == 4)
            o[i] = 0;
    }
    for (size_t i = 0; i < nl; i++)
        lse[i] = opts->mutate == 3 ? INFINITY : nsx_round_to_format(lse[i], fmt);
    for (int b = 0; b < p->B && p->sel.k; b++)
        for (int i = 0; i < p->L; i++) {
            int32_t *row = sel + nsx_sel_at(p, b, i, 0);
            for (int r = 0; r < p->sel.k; r++) {
                if (opts->mutate == 5 && r < p->sel.k - 1 - r) {
                    int32_t t = row[r];
                    row[r] = row[p->sel.k - 1 - r];
                    row[p->sel.k - 1 - r] = t;
                }
                if (opts->mutate == 6)
                    row[r] = -1;
            }
        }
    if (opts->mutate == 7 && c->info.npairs > 0) {
        const nsx_pair *q = &c->info.pairs[0];
        o[nsx_o_at(p, q->b, 0, 0, 0)] = nextafter(o[nsx_o_at(p, q->a, 0, 0, 0)], 0);
    }
    nsx_st st = {0};
    nsx_err err = {0};
    const int64_t oshape[4] = {p->B, p->L, p->H, p->dv}, lshape[3] = {p->B, p->H, p->L},
                  sshape[3] = {p->B, p->L, p->sel.k};
    int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    if (nsx_st_add_f64(&st, "o", dt, 4, oshape, o, &err) ||
        (!opts->no_lse && nsx_st_add_f64(&st, "lse", dt, 3, lshape, lse, &err)) ||
        (computed && !opts->no_sel && nsx_st_add_i32(&st, "sel", 3, sshape, sel, &err)) ||
        (opts->model && nsx_st_set_meta(&st, NSX_MODEL_KEY, opts->model, &err)))
        die("candidate: %s", err.msg);
    unsigned char *b = write_st(&st, n);
    nsx_st_free(&st);
    free(o);
    free(lse);
    free(sel);
    return b;
}

/* Edits of the golden F64 candidate of n2_ties_scores (the writer's
   layout: lse [1,1,14] at [0, 112), o [1,14,1,8] at [112, 1008), sel
   [1,14,4] I32 at [1008, 1232)), in its header; data stays unless the edit
   says. */
typedef struct cand_edit {
    const char *name, *from, *to;
    int hlen_mode;        /* 0 the true length, 1 hlen given, 2 cut the data */
    uint64_t hlen;
} cand_edit;

#define C(name, from, to) {name, from, to, 0, 0}
#define CL(name, mode, hlen) {name, "", "", mode, hlen}

static const cand_edit cand_edits[] = {
    /* the framing */
    CL("hlen_max", 1, UINT64_MAX),
    CL("hlen_2p63", 1, 1ull << 63),
    CL("hlen_past_end", 1, 1u << 20),
    CL("hlen_one_short", 1, 0),   /* set below: true length - 1 */
    CL("hlen_zero", 1, 0),
    CL("data_cut", 2, 0),
    /* offsets */
    C("offsets_overlap", "\"data_offsets\":[112,1008]", "\"data_offsets\":[104,1000]"),
    C("offsets_negative", "\"data_offsets\":[0,112]", "\"data_offsets\":[-8,104]"),
    C("offsets_reversed", "\"data_offsets\":[112,1008]", "\"data_offsets\":[1008,112]"),
    C("offsets_past_end", "\"data_offsets\":[1008,1232]", "\"data_offsets\":[1008,123200]"),
    C("offsets_huge", "\"data_offsets\":[1008,1232]", "\"data_offsets\":[18446744073709551392,18446744073709551615]"),
    C("offsets_float", "\"data_offsets\":[0,112]", "\"data_offsets\":[0.0,112]"),
    C("offsets_three", "\"data_offsets\":[0,112]", "\"data_offsets\":[0,56,112]"),
    C("offsets_gap", "\"data_offsets\":[1008,1232]", "\"data_offsets\":[1016,1232]"),
    /* keys */
    C("dup_tensor", "\"o\":{", "\"o\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[0,0]},\"o\":{"),
    C("dup_entry_key", "\"o\":{\"dtype\":\"F64\",", "\"o\":{\"dtype\":\"F64\",\"dtype\":\"F32\","),
    C("dup_metadata", "{", "{\"__metadata__\":{},\"__metadata__\":{},"),
    C("entry_unknown_key", "\"o\":{\"dtype\":\"F64\",", "\"o\":{\"dtype\":\"F64\",\"offset\":0,"),
    /* shapes and counts */
    C("shape_overflow", "\"shape\":[1,14,1,8]", "\"shape\":[4294967296,4294967296,1,8]"),
    C("shape_overflow_zero", "\"shape\":[1,14,1,8]", "\"shape\":[18014398509481984,1024,1,0]"),
    C("shape_2p53", "\"shape\":[1,14,1,8]", "\"shape\":[9007199254740993,1,1,8]"),
    C("shape_rank9", "\"shape\":[1,14,1,8]", "\"shape\":[1,14,1,8,1,1,1,1,1]"),
    C("shape_negative", "\"shape\":[1,14,1,8]", "\"shape\":[-1,-14,1,8]"),
    C("shape_wrong_o", "\"shape\":[1,14,1,8]", "\"shape\":[1,14,8,1]"),
    C("shape_rank3_o", "\"shape\":[1,14,1,8]", "\"shape\":[14,1,8]"),
    C("shape_wrong_lse", "\"shape\":[1,1,14]", "\"shape\":[1,14,1]"),
    C("shape_wrong_sel", "\"shape\":[1,14,4]", "\"shape\":[1,4,14]"),
    C("shape_scalar_o", "\"shape\":[1,14,1,8],\"data_offsets\":[112,1008]",
     "\"shape\":[],\"data_offsets\":[112,120]},\"pad\":{\"dtype\":\"F64\",\"shape\":[111],\"data_offsets\":[120,1008]"),
    /* dtypes */
    C("dtype_bytes_mismatch", "\"o\":{\"dtype\":\"F64\"", "\"o\":{\"dtype\":\"F32\""),
    C("dtype_o_i32", "\"o\":{\"dtype\":\"F64\",\"shape\":[1,14,1,8]",
     "\"o\":{\"dtype\":\"I32\",\"shape\":[1,14,1,16]"),
    C("dtype_sel_f32", "\"sel\":{\"dtype\":\"I32\"", "\"sel\":{\"dtype\":\"F32\""),
    C("dtype_sel_f64", "\"sel\":{\"dtype\":\"I32\",\"shape\":[1,14,4]",
     "\"sel\":{\"dtype\":\"F64\",\"shape\":[1,14,2]"),
    C("dtype_sel_i64", "\"sel\":{\"dtype\":\"I32\",\"shape\":[1,14,4]",
     "\"sel\":{\"dtype\":\"I64\",\"shape\":[1,14,2]"),
    C("dtype_unknown", "\"o\":{\"dtype\":\"F64\"", "\"o\":{\"dtype\":\"F65\""),
    C("dtype_lowercase", "\"o\":{\"dtype\":\"F64\"", "\"o\":{\"dtype\":\"f64\""),
    /* names */
    C("no_o", "\"o\":", "\"O\":"),
    C("name_empty", "\"o\":", "\"\":"),
    C("name_control", "\"o\":", "\"o\\u0001\":"),
    /* the model key */
    C("model_bad_format", "{", "{\"__metadata__\":{\"nsimplex.model\":\"in=f12\"},"),
    C("model_bad_key", "{", "{\"__metadata__\":{\"nsimplex.model\":\"bf16,speed=fast\"},"),
    C("model_no_equals", "{", "{\"__metadata__\":{\"nsimplex.model\":\"bf16,acc\"},"),
    C("model_empty", "{", "{\"__metadata__\":{\"nsimplex.model\":\"\"},"),
    C("model_commas", "{", "{\"__metadata__\":{\"nsimplex.model\":\",,,\"},"),
    C("model_not_string", "{", "{\"__metadata__\":{\"nsimplex.model\":1},"),
    C("model_invalid_utf8", "{", "{\"__metadata__\":{\"nsimplex.model\":\"bf16\xff\"},"),
};

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | b[k];
    return v;
}

static void put_le64(unsigned char *b, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)(v >> (8 * k));
}

/* Applies edit e to the file g[0..gn): header text edited, its length
   rewritten, data kept. */
static void cand_attack(const unsigned char *g, size_t gn, const cand_edit *e)
{
    uint64_t hlen = le64(g);
    const char *hdr = (const char *)g + 8;
    const unsigned char *data = g + 8 + hlen;
    size_t dn = gn - 8 - (size_t)hlen, nh = (size_t)hlen;
    char *h;
    if (*e->from) {
        h = replace(hdr, (size_t)hlen, e->from, e->to, strlen(e->to), &nh, e->name);
    } else {
        if (!(h = malloc(nh)))
            die("out of memory");
        memcpy(h, hdr, nh);
    }
    if (e->hlen_mode == 2)
        dn /= 2;
    unsigned char *f = malloc(8 + nh + dn);
    if (!f)
        die("out of memory");
    uint64_t len = nh;
    if (e->hlen_mode == 1)
        len = strcmp(e->name, "hlen_one_short") == 0 ? nh - 1 : e->hlen;
    put_le64(f, len);
    memcpy(f + 8, h, nh);
    memcpy(f + 8 + nh, data, dn);
    char name[128];
    snprintf(name, sizeof name, "bad_%s.safetensors", e->name);
    put("check", name, f, 8 + nh + dn);
    free(f);
    free(h);
}

static int check_seeds(const char *vdir)
{
    static const char *const vnames[] = {"n2_ties_scores", "n2_sel_relu", "n4_f32_leak"};
    static const struct {
        const char *name;
        cand_opts o;
    } valid[] = {
        {"golden", {O_F64, 0, 0, NULL, 0}},
        {"golden_f32", {O_F32, 0, 0, NULL, 0}},
        {"golden_bf16", {O_BF16, 0, 0, "bf16", 0}},
        {"golden_f16_model", {O_F16, 0, 0, "f16,lse=any", 0}},
        {"einsum_model", {O_F32, 0, 0, "einsum-bf16,acc=f32,w=none", 0}},
        {"no_lse", {O_F64, 1, 0, NULL, 0}},
        {"no_sel", {O_F64, 0, 1, NULL, 0}},
        {"ulp_off", {O_F64, 0, 0, "f32", 1}},
        {"nan_o", {O_BF16, 0, 0, NULL, 2}},
        {"lse_plus_inf", {O_F64, 0, 0, "bf16,lse=+inf", 3}},
        {"zeros", {O_F64, 0, 0, NULL, 4}},
        {"sel_reversed", {O_F64, 0, 0, NULL, 5}},
        {"sel_none", {O_F64, 0, 0, NULL, 6}},
        {"leak_broken", {O_F64, 0, 0, NULL, 7}},
    };
    int n = 0;
    unsigned char *golden = NULL;
    size_t golden_n = 0;
    for (size_t v = 0; v < sizeof vnames / sizeof vnames[0]; v++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.safetensors", vdir, vnames[v]);
        nsx_case c;
        nsx_err err = {0};
        if (nsx_case_read(path, &c, &err))
            die("%s", err.msg);
        int computed = c.p.sel.source == NSX_SEL_INDEXER || c.p.sel.source == NSX_SEL_SCORES;
        for (size_t k = 0; k < sizeof valid / sizeof valid[0]; k++) {
            const cand_opts *o = &valid[k].o;
            /* sel variants only where the vector computes its selection;
               the others once, for the first vector, where they differ */
            if ((o->no_sel || o->mutate == 5 || o->mutate == 6) && !computed)
                continue;
            if (o->mutate == 7 && c.info.npairs == 0)
                continue;
            if (v > 0 && k != 0 && k != 2 && o->mutate < 5)
                continue;
            size_t fn;
            unsigned char *f = candidate(&c, o, &fn);
            char name[128];
            snprintf(name, sizeof name, "%s_%s.safetensors", vnames[v], valid[k].name);
            put("check", name, f, fn);
            n++;
            if (v == 0 && k == 0) {
                golden = f;
                golden_n = fn;
            } else {
                free(f);
            }
        }
        nsx_case_free(&c);
    }
    for (size_t k = 0; k < sizeof cand_edits / sizeof cand_edits[0]; k++, n++)
        cand_attack(golden, golden_n, &cand_edits[k]);
    free(golden);
    return n;
}

/* ---- vectors ----------------------------------------------------------- */

/* Small golden vectors, whole: every selection source, pairs, n = 1..7. */
static const char *const vector_copies[] = {
    "n2_l1", "n3_distinct", "n5_dense", "n7_windows", "n1_subnormal", "n2_odd_sizes",
    "n2_causal_off", "n2_causal_off_windows", "n2_sel_indices_empty", "n3_gqa_biases",
    "n4_f32_leak", "n2_ties_scores", "n2_sel_k_ge_L", "n2_ties_relu",
};

/* Edits of a vector's metadata (the tensors kept): problems the expected
   values no longer match, or limits of the format. */
static const struct {
    const char *name, *vector, *from, *to;
} vector_edits[] = {
    {"window_int_max", "n2_causal_off", "\"windows\": [0, 0]", "\"windows\": [2147483647, 0]"},
    {"window_int_max_causal", "n2_ties_scores", "\"windows\": [0, 0]", "\"windows\": [2147483647, 1]"},
    {"causal_flipped", "n2_ties_scores", "\"causal\": true", "\"causal\": false"},
    {"dims_changed", "n2_sel_k_ge_L", "\"dims\": [1, 2]", "\"dims\": [2]"},
    {"leak_t_last", "n4_f32_leak", "\"t\": 3", "\"t\": 6"},
    {"leak_random", "n4_f32_leak", "\"future\": \"nan\"", "\"future\": \"random\""},
    {"distinct_off", "n3_distinct", "\"distinct\": true", "\"distinct\": false"},
    {"out_scale_huge", "n2_l1", "\"out_scale\": 1", "\"out_scale\": 1e300"},
    {"k_bias_huge", "n2_odd_sizes", "\"k_bias\": [0, 0]", "\"k_bias\": [1e300, -1e300]"},
    {"reduce_sum", "n2_causal_off_windows", "\"reduce\": \"product\"", "\"reduce\": \"sum\""},
};

static int vector_seeds(const char *vdir)
{
    int n = 0;
    for (size_t k = 0; k < sizeof vector_copies / sizeof vector_copies[0]; k++, n++) {
        char path[4096], name[128];
        size_t len;
        snprintf(path, sizeof path, "%s/%s.safetensors", vdir, vector_copies[k]);
        unsigned char *b = slurp(path, &len);
        snprintf(name, sizeof name, "%s.safetensors", vector_copies[k]);
        put("vector", name, b, len);
        free(b);
    }
    for (size_t k = 0; k < sizeof vector_edits / sizeof vector_edits[0]; k++, n++) {
        char path[4096], name[128];
        snprintf(path, sizeof path, "%s/%s.safetensors", vdir, vector_edits[k].vector);
        nsx_st st;
        nsx_err err = {0};
        if (nsx_st_read(path, &st, &err))
            die("%s", err.msg);
        const char *json = nsx_st_meta(&st, NSX_META_KEY);
        size_t len;
        char *edited = replace(json, strlen(json), vector_edits[k].from, vector_edits[k].to,
                               strlen(vector_edits[k].to), &len, vector_edits[k].name);
        if (nsx_st_set_meta(&st, NSX_META_KEY, edited, &err))
            die("%s", err.msg);
        unsigned char *b = write_st(&st, &len);
        snprintf(name, sizeof name, "edit_%s.safetensors", vector_edits[k].name);
        put("vector", name, b, len);
        free(b);
        free(edited);
        nsx_st_free(&st);
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: seeds ROOT [VECTORS_DIR]\n");
        return 2;
    }
    root = argv[1];
    const char *vdir = argc > 2 ? argv[2] : "vectors/default";
    int nm = metadata_seeds(vdir);
    int nc = check_seeds(vdir);
    int nv = vector_seeds(vdir);
    printf("seeds: %d metadata, %d check and %d vector files under %s\n", nm, nc, nv, root);
    return 0;
}
