/* The C entry layer for foreign callers (capi/capi.h). */
#define _GNU_SOURCE /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi/callback.h"
#include "capi/capi.h"
#include "fuzz/fuzz.h"
#include "io/casefile.h"
#include "io/json.h"
#include "io/meta.h"
#include "io/safetensors.h"
#include "oracle/candidate.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "vectors/gen.h"

struct nsx_py_case {
    nsx_case c;
    char path[1024];
};

/* Copies e into (err, errlen) and returns its kind. */
static int out_err(const nsx_err *e, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", e->msg);
    return e->kind;
}

int nsx_py_abi(void)
{
    return NSX_PY_ABI;
}

const char *nsx_py_version(void)
{
    return NSX_VERSION;
}

const char *nsx_py_err_kind_name(int kind)
{
    return nsx_err_kind_name(kind);
}

void nsx_py_free(void *p)
{
    free(p);
}

int nsx_py_case_read(const char *path, nsx_py_case **out, char *err, size_t errlen)
{
    nsx_err e = {0};
    *out = NULL;
    nsx_py_case *c = calloc(1, sizeof *c);
    if (!c)
        return out_err(&(nsx_err){NSX_E_NOMEM, "out of memory"}, err, errlen);
    if (nsx_case_read(path, &c->c, &e)) {
        free(c);
        return out_err(&e, err, errlen);
    }
    snprintf(c->path, sizeof c->path, "%s", path);
    *out = c;
    return 0;
}

void nsx_py_case_free(nsx_py_case *c)
{
    if (!c)
        return;
    nsx_case_free(&c->c);
    free(c);
}

int nsx_py_case_meta(const nsx_py_case *c, char **json, char *err, size_t errlen)
{
    nsx_err e = {0};
    *json = nsx_meta_format(&c->c.p, &c->c.info, &e);
    return *json ? 0 : out_err(&e, err, errlen);
}

int nsx_py_case_tensor(const nsx_py_case *c, const char *name, const void **data, int *is_int, int *rank,
                       int64_t *shape)
{
    const nsx_problem *p = &c->c.p;
    const nsx_inputs *in = &c->c.in;
    const nsx_outputs *ex = &c->c.expected;
    const int64_t B = p->B, L = p->L, H = p->H, G = p->Hkv, d = p->d, dv = p->dv;
    const int64_t k = p->sel.k, Hi = p->sel.Hi, di = p->sel.di;
    const struct {
        const char *name;
        const void *data;
        int is_int, rank;
        int64_t shape[4];
    } t[] = {
        {"q", in->q, 0, 4, {B, L, H, d}},
        {"sel", in->sel ? (const void *)in->sel : (const void *)ex->sel, 1, 3, {B, L, k, 0}},
        {"idx_q", in->idx_q, 0, 4, {B, L, Hi, di}},
        {"idx_k", in->idx_k, 0, 3, {B, L, di, 0}},
        {"idx_w", in->idx_w, 0, 3, {B, L, Hi, 0}},
        {"idx_s", in->idx_s, 0, 3, {B, L, L, 0}},
        {"o", ex->o, 0, 4, {B, L, H, dv}},
        {"lse", ex->lse, 0, 3, {B, H, L, 0}},
        {"sel_scores", ex->sel_scores, 0, 3, {B, L, L, 0}},
        {"do", in->dout, 0, 4, {B, L, H, dv}},
        {"dq", ex->dq, 0, 4, {B, L, H, d}},
    };
    for (size_t x = 0; x < sizeof t / sizeof t[0]; x++)
        if (strcmp(name, t[x].name) == 0) {
            if (!t[x].data)
                return 1;
            *data = t[x].data;
            *is_int = t[x].is_int;
            *rank = t[x].rank;
            memcpy(shape, t[x].shape, sizeof t[x].shape);
            return 0;
        }
    for (int m = 0; m < p->n; m++) {
        /* k_m, v_m (inputs) and dk_m, dv_m (the expected gradients of a backward case) */
        const struct {
            const char *prefix;
            const double *data;
            int64_t width;
        } kv[] = {{"k", in->k[m], d}, {"v", in->v[m], dv}, {"dk", ex->dk[m], d}, {"dv", ex->dv[m], dv}};
        for (size_t x = 0; x < sizeof kv / sizeof kv[0]; x++) {
            char kn[16];
            snprintf(kn, sizeof kn, "%s%d", kv[x].prefix, m + 1);
            if (strcmp(name, kn) != 0)
                continue;
            if (!kv[x].data)
                return 1;
            *data = kv[x].data;
            *is_int = 0;
            *rank = 4;
            const int64_t s[4] = {B, L, G, kv[x].width};
            memcpy(shape, s, sizeof s);
            return 0;
        }
    }
    return 1;
}

/* 1 when p computes its selection (the candidate's sel is judged). */
static int computed_sel(const nsx_problem *p)
{
    return p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
}

int nsx_py_check(const nsx_py_case *c, const double *o, const double *lse, const int32_t *sel, const char *model,
                 const char *label, int *pass, char **json, char **text, char *err, size_t errlen)
{
    return nsx_py_check_grads(c, o, lse, sel, NULL, model, label, pass, json, text, err, errlen);
}

int nsx_py_check_grads(const nsx_py_case *c, const double *o, const double *lse, const int32_t *sel,
                       const double *const *grads, const char *model, const char *label, int *pass, char **json,
                       char **text, char *err, size_t errlen)
{
    nsx_err e = {0};
    nsx_model m;
    const nsx_problem *p = &c->c.p;
    *pass = 0;
    if (json)
        *json = NULL;
    if (text)
        *text = NULL;
    if (!label)
        label = "candidate";
    if (model ? nsx_model_parse(model, &m, &e) : (nsx_model_default(&m), 0))
        return out_err(&e, err, errlen);
    if (!c->c.expected.o || !c->c.expected.lse) {
        nsx_err_set(&e, NSX_E_INPUT, "%s: no expected %s: not a golden vector", c->path,
                    c->c.expected.o ? "lse" : "o");
        return out_err(&e, err, errlen);
    }
    if (!o)
        return out_err(&(nsx_err){NSX_E_INPUT, "no o"}, err, errlen);
    nsx_candidate cand = {.o = o, .lse = lse, .sel = computed_sel(p) ? sel : NULL};
    if (grads) {
        cand.dq = grads[0];
        for (int m = 0; m < p->n; m++)
            cand.dk[m] = grads[1 + m], cand.dv[m] = grads[1 + p->n + m];
    }
    nsx_check_report rep;
    if (nsx_check(p, &c->c.info, &c->c.in, &c->c.expected, &cand, &m, &rep, &e)) {
        nsx_err_prefix(&e, c->path);
        return out_err(&e, err, errlen);
    }
    *pass = rep.pass;
    if (json && !(*json = nsx_check_json(&rep, &c->c.info, label)))
        return out_err(&(nsx_err){NSX_E_NOMEM, "out of memory"}, err, errlen);
    if (text) {
        size_t len;
        FILE *f = open_memstream(text, &len);
        if (!f)
            return out_err(&(nsx_err){NSX_E_NOMEM, "out of memory"}, err, errlen);
        nsx_check_print(f, &rep, &c->c.info, label);
        fclose(f);
    }
    return 0;
}

int nsx_py_check_indexer(const nsx_py_case *c, const double *scores, const int32_t *sel, const char *model,
                         const char *label, int *pass, char **json, char **text, char *err, size_t errlen)
{
    nsx_err e = {0};
    nsx_model m;
    *pass = 0;
    if (json)
        *json = NULL;
    if (text)
        *text = NULL;
    if (!label)
        label = "indexer";
    if (model ? nsx_model_parse(model, &m, &e) : (nsx_model_default(&m), 0))
        return out_err(&e, err, errlen);
    const nsx_idx_candidate cand = {scores, sel};
    nsx_check_report rep;
    if (nsx_check_indexer(&c->c.p, &c->c.in, &c->c.expected, &cand, &m, &rep, &e)) {
        nsx_err_prefix(&e, c->path);
        return out_err(&e, err, errlen);
    }
    *pass = rep.pass;
    if (json && !(*json = nsx_check_indexer_json(&rep, &c->c.info, label)))
        return out_err(&(nsx_err){NSX_E_NOMEM, "out of memory"}, err, errlen);
    if (text) {
        size_t len;
        FILE *f = open_memstream(text, &len);
        if (!f)
            return out_err(&(nsx_err){NSX_E_NOMEM, "out of memory"}, err, errlen);
        nsx_check_indexer_print(f, &rep, &c->c.info, label);
        fclose(f);
    }
    return 0;
}

int nsx_py_write_candidate(const nsx_py_case *c, const char *path, const double *o, int o_dtype,
                           const double *lse, int lse_dtype, const int32_t *sel, const char *model, char *err,
                           size_t errlen)
{
    return nsx_py_write_candidate_grads(c, path, o, o_dtype, lse, lse_dtype, sel, NULL, NSX_FORMAT_F64, model, err,
                                        errlen);
}

int nsx_py_write_candidate_grads(const nsx_py_case *c, const char *path, const double *o, int o_dtype,
                                 const double *lse, int lse_dtype, const int32_t *sel, const double *const *grads,
                                 int grad_dtype, const char *model, char *err, size_t errlen)
{
    const nsx_problem *p = &c->c.p;
    const int64_t os[4] = {p->B, p->L, p->H, p->dv}, ls[3] = {p->B, p->H, p->L}, ss[3] = {p->B, p->L, p->sel.k};
    nsx_err e = {0};
    nsx_st st = {0};
    int rc = 0;
    if (!nsx_dtype_is_float(o_dtype) || (lse && !nsx_dtype_is_float(lse_dtype)))
        rc = nsx_err_set(&e, NSX_E_INPUT, "%s: dtype code %d is not a float format", path,
                         nsx_dtype_is_float(o_dtype) ? lse_dtype : o_dtype);
    if (!rc)
        rc = nsx_st_add_f64(&st, "o", o_dtype, 4, os, o, &e);
    if (!rc && lse)
        rc = nsx_st_add_f64(&st, "lse", lse_dtype, 3, ls, lse, &e);
    if (!rc && sel && computed_sel(p))
        rc = nsx_st_add_i32(&st, "sel", 3, ss, sel, &e);
    if (!rc && grads && !nsx_dtype_is_float(grad_dtype))
        rc = nsx_err_set(&e, NSX_E_INPUT, "%s: dtype code %d is not a float format", path, grad_dtype);
    for (int x = 0; !rc && grads && x < 1 + 2 * p->n; x++) {
        /* dq, dk1..dkn, dv1..dvn, shaped like q, k_m, v_m */
        const int64_t gs[4] = {p->B, p->L, x == 0 ? p->H : p->Hkv, x <= p->n ? p->d : p->dv};
        char name[16];
        if (x == 0)
            snprintf(name, sizeof name, "dq");
        else
            snprintf(name, sizeof name, "d%c%d", x <= p->n ? 'k' : 'v', x <= p->n ? x : x - p->n);
        if (grads[x])
            rc = nsx_st_add_f64(&st, name, grad_dtype, 4, gs, grads[x], &e);
    }
    if (!rc && model) {
        nsx_model m;
        if (!(rc = nsx_model_parse(model, &m, &e)))
            rc = nsx_st_set_meta(&st, NSX_MODEL_KEY, model, &e);
    }
    if (!rc)
        rc = nsx_st_write(path, &st, &e);
    nsx_st_free(&st);
    return rc ? out_err(&e, err, errlen) : 0;
}

int nsx_py_model(const char *model, char *out, size_t len, int *fmt, char *err, size_t errlen)
{
    nsx_err e = {0};
    nsx_model m;
    if (model ? nsx_model_parse(model, &m, &e) : (nsx_model_default(&m), 0))
        return out_err(&e, err, errlen);
    nsx_model_format(&m, out, len);
    if (fmt) {
        fmt[0] = m.in;
        fmt[1] = m.acc;
        fmt[2] = m.w;
        fmt[3] = m.out;
        fmt[4] = m.lseout;
    }
    return 0;
}

int nsx_py_model_warning(const char *model, char *buf, size_t len)
{
    return model && nsx_model_warning(model, buf, len) ? 1 : 0;
}

int nsx_py_gen(const char *recipe, const char *name, const char *path, uint64_t *tuples, char *err,
               size_t errlen)
{
    nsx_err e = {0};
    nsx_ref_stats st = {0};
    if (!recipe || !name || !name[0] || !path)
        return out_err(&(nsx_err){NSX_E_INPUT, "gen: give a recipe, a name and a path"}, err, errlen);
    if (nsx_gen_recipe(recipe, name, path, &st, &e))
        return out_err(&e, err, errlen);
    if (tuples)
        *tuples = st.tuples;
    return 0;
}

/* ---- fuzz ---------------------------------------------------------------- */

static int accept_shim(void *ctx, const nsx_kernel_problem *p)
{
    return (*(nsx_py_accept_fn *)ctx)(p);
}

static void put_str(nsx_buf *b, const char *key, const char *v)
{
    nsx_buf_printf(b, ",\"%s\":", key);
    nsx_buf_json_string(b, v);
}

static void put_num(nsx_buf *b, const char *key, double x)
{
    nsx_buf_printf(b, ",\"%s\":", key);
    nsx_buf_json_number(b, x);
}

static void failure_json(nsx_buf *b, const nsx_fuzz_failure *f)
{
    char seed[32];
    snprintf(seed, sizeof seed, "0x%016llx", (unsigned long long)f->seed);
    nsx_buf_printf(b, "{\"index\":%llu", (unsigned long long)f->index);
    put_str(b, "seed", seed);
    put_str(b, "kind", nsx_fz_kind_name(f->kind));
    put_str(b, "kinds", nsx_fz_kind_name(f->kinds));
    put_num(b, "found", f->found);
    put_num(b, "shrink", f->shrink);
    put_str(b, "draw", f->draw);
    put_str(b, "shrunk", f->shrunk);
    put_str(b, "note", f->note);
    if (f->path[0])
        put_str(b, "path", f->path);
    else
        nsx_buf_puts(b, ",\"path\":null");
    nsx_buf_printf(b, ",\"replays\":%s}", f->replays ? "true" : "false");
}

/* The summary as one JSON object (malloc'd; NULL when out of memory); an
   indexer run's adds "worst", its scores' worst passing ratio (null: none),
   and "sel_differ", its selection rows valid but not the golden set. */
static char *summary_json(const nsx_fuzz_summary *s, const char *model, int indexer)
{
    nsx_buf b = {0};
    nsx_buf_puts(&b, "{\"model\":");
    nsx_buf_json_string(&b, model);
    nsx_buf_printf(&b,
                   ",\"problems\":%llu,\"mpfr\":%llu,\"loop\":%llu,\"skipped\":%llu,\"declined\":%llu"
                   ",\"rejected\":%llu,\"pairs\":%llu,\"heads\":%llu",
                   (unsigned long long)s->problems, (unsigned long long)s->mpfr, (unsigned long long)s->loop,
                   (unsigned long long)s->skipped, (unsigned long long)s->declined,
                   (unsigned long long)s->rejected, (unsigned long long)s->pairs, (unsigned long long)s->heads);
    put_num(&b, "seconds", s->seconds);
    if (indexer && s->mpfr > (uint64_t)s->nfail)
        put_num(&b, "worst", s->worst_o);
    else if (indexer)
        nsx_buf_puts(&b, ",\"worst\":null");
    if (indexer)
        nsx_buf_printf(&b, ",\"sel_differ\":%llu", (unsigned long long)s->sel_differ);
    else
        nsx_buf_printf(&b, ",\"bwd\":%llu", (unsigned long long)s->bwd);
    nsx_buf_puts(&b, ",\"failures\":[");
    for (int x = 0; x < s->nfail; x++) {
        nsx_buf_puts(&b, x ? "," : "");
        failure_json(&b, &s->fail[x]);
    }
    nsx_buf_puts(&b, "]}");
    if (b.oom) {
        nsx_buf_free(&b);
        return NULL;
    }
    return b.s;
}

/* o: the defaults, then the model m and the fields that both argument
   structs (nsx_py_fuzz_args, nsx_py_fuzz_indexer_args) name alike.  A
   macro, since the two are different types (the Python package's ctypes
   mirror their layouts). */
#define FUZZ_OPTS(o, a, m)                                                  \
    do {                                                                    \
        nsx_fuzz_opts_default(&(o));                                        \
        (o).seconds = (a)->seconds;                                         \
        (o).seed = (a)->seed;                                               \
        (o).start = (a)->start;                                             \
        (o).count = (a)->count;                                             \
        (o).max_failures = (a)->max_failures;                               \
        (o).out_dir = (a)->out_dir;                                         \
        (o).log = (a)->log ? stdout : NULL;                                 \
        (o).verbose = (a)->verbose;                                         \
        (o).model = &(m);                                                   \
    } while (0)

int nsx_py_fuzz(const nsx_py_fuzz_args *a, char **summary, char *err, size_t errlen)
{
    nsx_err e = {0};
    nsx_model m;
    char mtext[160];
    *summary = NULL;
    if (a->model ? nsx_model_parse(a->model, &m, &e) : (nsx_model_default(&m), 0))
        return out_err(&e, err, errlen);
    nsx_model_format(&m, mtext, sizeof mtext);
    nsx_cb_kernel cb;
    if (nsx_cb_kernel_open(&cb, a->name, &m, a->max_order, a->features, a->forward, &e))
        return out_err(&e, err, errlen);
    if (a->backward &&
        nsx_cb_kernel_set_backward(&cb, &m, a->backward_max_order, a->backward_features, a->backward, &e))
        return out_err(&e, err, errlen);
    nsx_fuzz_opts o;
    FUZZ_OPTS(o, a, m);
    o.shrink_seconds = a->shrink_seconds;
    o.progress = a->progress;
    if (a->bwd != NSX_FZ_BWD_MIX && a->bwd != NSX_FZ_BWD_ONLY && a->bwd != NSX_FZ_BWD_NONE) {
        nsx_err_set(&e, NSX_E_INPUT, "fuzz: backward mode %d is not mix (0), only (1) or none (-1)", a->bwd);
        return out_err(&e, err, errlen);
    }
    if (a->bwd == NSX_FZ_BWD_ONLY && !a->backward) {
        nsx_err_set(&e, NSX_E_INPUT, "fuzz: backward problems only, but no backward function");
        return out_err(&e, err, errlen);
    }
    o.bwd = a->bwd;
    /* the size classes and orders the caller asked for (the package's
       default is the small class: a Python kernel over dense L^n tensors,
       as the torch examples are, cannot take the tile and production
       classes' L = 1000-4096; a GPU kernel asks for them all) */
    nsx_fz_steer steer;
    nsx_fz_steer_default(&steer);
    steer.orders = a->orders;
    if (a->shapes < NSX_FZ_SHAPES_ALL || a->shapes >= NSX_FZ_CLASSES) {
        nsx_err_set(&e, NSX_E_INPUT, "fuzz: size class %d is not small, tiles, production or all", a->shapes);
        return out_err(&e, err, errlen);
    }
    steer.shapes = a->shapes;
    char why[160];
    if (nsx_fz_steer_check(&steer, cb.k.info, why, sizeof why)) {
        nsx_err_set(&e, NSX_E_INPUT, "fuzz: %s", why);
        return out_err(&e, err, errlen);
    }
    o.steer = &steer;
    nsx_py_accept_fn accept = a->accept;
    if (accept) {
        o.accept = accept_shim;
        o.accept_ctx = &accept;
    }
    nsx_fuzz_summary *s = malloc(sizeof *s);
    if (!s)
        return out_err(&(nsx_err){NSX_E_NOMEM, "out of memory"}, err, errlen);
    int rc = nsx_fuzz_run(&cb.k, &o, s, &e);
    if (a->log)
        fflush(stdout);
    if (!rc && !(*summary = summary_json(s, mtext, 0)))
        rc = nsx_err_set(&e, NSX_E_NOMEM, "out of memory");
    free(s);
    return rc ? out_err(&e, err, errlen) : 0;
}

int nsx_py_fuzz_indexer(const nsx_py_fuzz_indexer_args *a, char **summary, char *err, size_t errlen)
{
    nsx_err e = {0};
    nsx_model m;
    char mtext[160];
    *summary = NULL;
    if (a->model ? nsx_model_parse(a->model, &m, &e) : (nsx_model_default(&m), 0))
        return out_err(&e, err, errlen);
    nsx_model_format(&m, mtext, sizeof mtext);
    nsx_cb_kernel cb;
    if (nsx_cb_kernel_open_indexer(&cb, a->name, &m, a->caps, a->indexer, &e))
        return out_err(&e, err, errlen);
    nsx_fuzz_opts o;
    FUZZ_OPTS(o, a, m);
    nsx_fuzz_summary *s = malloc(sizeof *s);
    if (!s)
        return out_err(&(nsx_err){NSX_E_NOMEM, "out of memory"}, err, errlen);
    int rc = nsx_fuzz_indexer_run(&cb.k, &o, s, &e);
    if (a->log)
        fflush(stdout);
    if (!rc && !(*summary = summary_json(s, mtext, 1)))
        rc = nsx_err_set(&e, NSX_E_NOMEM, "out of memory");
    free(s);
    return rc ? out_err(&e, err, errlen) : 0;
}
