/*
 * Case files (casefile.h): the contract's tensors checked against the
 * metadata on the way in and on the way out.
 *
 * One table (slots_for) says, for a given problem, which tensor names exist,
 * their shapes, dtype class and role; the reader, the writer and the value
 * checks all walk it, so they cannot disagree about the layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/casefile.h"
#include "io/fpformat.h"
#include "io/json.h"

#define BAD(...) nsx_err_set(err, NSX_E_INPUT, __VA_ARGS__)
#define OOM() nsx_err_set(err, NSX_E_NOMEM, "out of memory")

enum role {
    IN_FLOAT,   /* required input, any float dtype, representable values */
    IN_SEL,     /* required input, I32: the given selection */
    IN_OPT_FLOAT, /* optional input, any float dtype, representable values
                     (do: gradient cases only) */
    OUT_FLOAT,  /* optional expected output, any float dtype */
    OUT_SEL,    /* optional expected output, I32: a computed selection */
    ABSENT      /* a contract name this problem does not have */
};

struct slot {
    char name[16];
    int role;
    int rank;
    int64_t shape[4];
    const double **fin;    /* where the array goes (IN_FLOAT) */
    const int32_t **sin;   /* (IN_SEL) */
    double **fout;         /* (OUT_FLOAT) */
    int32_t **sout;        /* (OUT_SEL) */
};

#define MAX_SLOTS (4 * NSX_MAX_ORDER + 12)

static struct slot *add(struct slot *s, int *n, const char *name, int role, int rank,
                        int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    struct slot *t = &s[(*n)++];
    *t = (struct slot){.role = role, .rank = rank, .shape = {d0, d1, d2, d3}};
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

/* The tensors of problem p (docs/SPEC.md section 4), pointing into in and
   out.  Returns the number of slots. */
static int slots_for(const nsx_problem *p, nsx_inputs *in, nsx_outputs *out, struct slot *s)
{
    int n = 0, src = p->sel.source;
    int64_t B = p->B, L = p->L, H = p->H, G = p->Hkv, d = p->d, dv = p->dv;
    int64_t k = p->sel.k, Hi = p->sel.Hi, di = p->sel.di;
    add(s, &n, "q", IN_FLOAT, 4, B, L, H, d)->fin = &in->q;
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        char nm[8];
        snprintf(nm, sizeof nm, "k%d", m + 1);
        add(s, &n, nm, m < p->n ? IN_FLOAT : ABSENT, 4, B, L, G, d)->fin = &in->k[m];
        snprintf(nm, sizeof nm, "v%d", m + 1);
        add(s, &n, nm, m < p->n ? IN_FLOAT : ABSENT, 4, B, L, G, dv)->fin = &in->v[m];
    }
    struct slot *sel = add(s, &n, "sel", src == NSX_SEL_NONE ? ABSENT
                                         : src == NSX_SEL_INDICES ? IN_SEL : OUT_SEL,
                           3, B, L, k, 0);
    sel->sin = &in->sel;
    sel->sout = &out->sel;
    int idx = src == NSX_SEL_INDEXER ? IN_FLOAT : ABSENT;
    add(s, &n, "idx_q", idx, 4, B, L, Hi, di)->fin = &in->idx_q;
    add(s, &n, "idx_k", idx, 3, B, L, di, 0)->fin = &in->idx_k;
    add(s, &n, "idx_w", idx, 3, B, L, Hi, 0)->fin = &in->idx_w;
    add(s, &n, "idx_s", src == NSX_SEL_SCORES ? IN_FLOAT : ABSENT, 3, B, L, L, 0)->fin =
        &in->idx_s;
    add(s, &n, "o", OUT_FLOAT, 4, B, L, H, dv)->fout = &out->o;
    add(s, &n, "lse", OUT_FLOAT, 3, B, H, L, 0)->fout = &out->lse;
    add(s, &n, "sel_scores", src == NSX_SEL_INDEXER ? OUT_FLOAT : ABSENT, 3, B, L, L, 0)->fout =
        &out->sel_scores;
    /* the backward pass (E7): do, and the expected gradients */
    add(s, &n, "do", IN_OPT_FLOAT, 4, B, L, H, dv)->fin = &in->dout;
    add(s, &n, "dq", OUT_FLOAT, 4, B, L, H, d)->fout = &out->dq;
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        char nm[8];
        snprintf(nm, sizeof nm, "dk%d", m + 1);
        add(s, &n, nm, m < p->n ? OUT_FLOAT : ABSENT, 4, B, L, G, d)->fout = &out->dk[m];
        snprintf(nm, sizeof nm, "dv%d", m + 1);
        add(s, &n, nm, m < p->n ? OUT_FLOAT : ABSENT, 4, B, L, G, dv)->fout = &out->dv[m];
    }
    return n;
}

/* Elements of a slot; shapes of checked problems are < 2^80 at worst, so
   the product is checked (an absurd problem is refused, not wrapped). */
static int slot_count(const struct slot *s, size_t *count)
{
    size_t c = 1;
    for (int r = 0; r < s->rank; r++) {
        size_t x = (size_t)s->shape[r];
        if (x != 0 && c > SIZE_MAX / x / sizeof(double))
            return -1;
        c *= x;
    }
    *count = c;
    return 0;
}

/* "[b=0, i=3, h=1, l=2]"-style position of element e of slot s. */
static void where(char *out, size_t outlen, const struct slot *s, size_t e)
{
    size_t idx[4];
    for (int r = s->rank - 1; r >= 0; r--) {
        idx[r] = e % (size_t)s->shape[r];
        e /= (size_t)s->shape[r];
    }
    nsx_buf b = {0};
    nsx_buf_puts(&b, "[");
    for (int r = 0; r < s->rank; r++)
        nsx_buf_printf(&b, r ? ",%zu" : "%zu", idx[r]);
    nsx_buf_puts(&b, "]");
    snprintf(out, outlen, "%s", b.oom ? "[?]" : b.s);
    nsx_buf_free(&b);
}

/* A given selection: per row (b, i), each valid index at most once. */
static int check_given_sel(const nsx_problem *p, const int32_t *sel, nsx_err *err)
{
    /* seen[j] holds 1 + the number of the last row where j was met */
    size_t *seen = calloc((size_t)p->L, sizeof *seen);
    if (!seen)
        return OOM();
    int r = 0;
    for (int b = 0; b < p->B && !r; b++)
        for (int i = 0; i < p->L && !r; i++) {
            size_t row = (size_t)b * (size_t)p->L + (size_t)i + 1;
            for (int t = 0; t < p->sel.k && !r; t++) {
                int32_t j = sel[nsx_sel_at(p, b, i, t)];
                if (j < 0 || j >= p->L)
                    continue; /* invalid: ignored, as kernels do */
                if (seen[j] == row)
                    r = BAD("tensor sel: row [%d,%d]: index %d appears twice", b, i, (int)j);
                seen[j] = row;
            }
        }
    free(seen);
    return r;
}

/* A computed selection as the reference writes it: valid indices strictly
   ascending, then -1 pads. */
static int check_computed_sel(const nsx_problem *p, const int32_t *sel, nsx_err *err)
{
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            int32_t prev = -1;
            int pad = 0;
            for (int t = 0; t < p->sel.k; t++) {
                int32_t j = sel[nsx_sel_at(p, b, i, t)];
                int ok = pad ? j == -1 : j == -1 || (j > prev && j < p->L);
                if (!ok)
                    return BAD("tensor sel: row [%d,%d]: entry %d = %d breaks ascending valid "
                               "indices followed by -1 pads", b, i, t, (int)j);
                pad = j == -1;
                prev = j;
            }
        }
    return 0;
}

int nsx_case_check_inputs(const nsx_problem *p, const nsx_inputs *in, nsx_err *err)
{
    struct slot s[MAX_SLOTS];
    nsx_inputs inc = *in;
    nsx_outputs none = {0};
    int ns = slots_for(p, &inc, &none, s);
    const char *fmt = nsx_format_name(p->input_format);
    for (int t = 0; t < ns; t++) {
        size_t count;
        if (s[t].role != IN_FLOAT && s[t].role != IN_SEL && s[t].role != IN_OPT_FLOAT)
            continue;
        if (s[t].role == IN_OPT_FLOAT && !*s[t].fin)
            continue;
        if (s[t].role == IN_SEL ? !*s[t].sin : !*s[t].fin)
            return BAD("tensor %s: missing (the problem needs it)", s[t].name);
        if (slot_count(&s[t], &count))
            return BAD("tensor %s: too many elements", s[t].name);
        if (s[t].role == IN_SEL) {
            int r = check_given_sel(p, *s[t].sin, err);
            if (r)
                return r;
            continue;
        }
        const double *v = *s[t].fin;
        for (size_t e = 0; e < count; e++)
            if (!nsx_representable(v[e], p->input_format)) {
                char at[64], val[32];
                where(at, sizeof at, &s[t], e);
                nsx_fmt_double(val, sizeof val, v[e]);
                return BAD("tensor %s: element %s = %s is not representable in %s "
                           "(input_format)", s[t].name, at, val, fmt);
            }
    }
    return 0;
}

/* ---- reading ---- */

/* The file's tensor for slot s: present when required, absent when the
   problem has no such tensor, with the slot's shape and an allowed dtype. */
static int check_tensor(const struct slot *s, const nsx_tensor *t, nsx_err *err)
{
    if (!t) {
        if (s->role == IN_FLOAT || s->role == IN_SEL)
            return BAD("tensor %s: missing (the metadata's problem needs it)", s->name);
        return 0;
    }
    if (s->role == ABSENT)
        return BAD("tensor %s: present, but the metadata's problem has no such tensor",
                   s->name);
    int want_i32 = s->role == IN_SEL || s->role == OUT_SEL;
    if (want_i32 ? t->dtype != NSX_DTYPE_I32 : !nsx_dtype_is_float(t->dtype))
        return BAD("tensor %s: dtype %s, but it must be %s", s->name, nsx_dtype_name(t->dtype),
                   want_i32 ? "I32" : "a float dtype (F64, F32, F16, BF16)");
    int same = t->rank == s->rank;
    for (int r = 0; same && r < s->rank; r++)
        same = t->shape[r] == s->shape[r];
    if (!same) {
        char got[128], want[128];
        nsx_shape_str(got, sizeof got, t->rank, t->shape);
        nsx_shape_str(want, sizeof want, s->rank, s->shape);
        return BAD("tensor %s: shape %s but metadata says %s", s->name, got, want);
    }
    return 0;
}

/* Copies tensor t of slot s, converted, into a new array at the slot. */
static int take_tensor(const struct slot *s, const nsx_tensor *t, nsx_err *err)
{
    if (!t || s->role == ABSENT)
        return 0;
    if (s->role == IN_SEL || s->role == OUT_SEL) {
        int32_t *a = malloc(t->count * sizeof *a);
        if (!a)
            return OOM();
        nsx_tensor_get_i32(t, a);
        if (s->role == IN_SEL)
            *s->sin = a;
        else
            *s->sout = a;
        return 0;
    }
    double *a = malloc(t->count * sizeof *a);
    if (!a)
        return OOM();
    nsx_tensor_get_f64(t, a);
    if (s->role == IN_FLOAT || s->role == IN_OPT_FLOAT)
        *s->fin = a;
    else
        *s->fout = a;
    return 0;
}

int nsx_case_from_st(nsx_st *st, const char *label, nsx_case *c, nsx_err *err)
{
    char lab[256];
    nsx_printable(lab, sizeof lab, label);
    *c = (nsx_case){.st = *st};
    *st = (nsx_st){0};
    const char *json = nsx_st_meta(&c->st, NSX_META_KEY);
    int r = 0;
    if (!json)
        r = BAD("no \"%s\" key in __metadata__: not an nsimplex case file", NSX_META_KEY);
    if (!r)
        r = nsx_meta_parse(json, &c->p, &c->info, err);
    struct slot s[MAX_SLOTS];
    int ns = r ? 0 : slots_for(&c->p, &c->in, &c->expected, s);
    for (int t = 0; t < ns && !r; t++)
        r = check_tensor(&s[t], nsx_st_get(&c->st, s[t].name), err);
    for (int t = 0; t < ns && !r; t++)
        r = take_tensor(&s[t], nsx_st_get(&c->st, s[t].name), err);
    if (!r)
        r = nsx_case_check_inputs(&c->p, &c->in, err);
    if (!r && c->expected.sel)
        r = check_computed_sel(&c->p, c->expected.sel, err);
    if (r) {
        nsx_err_prefix(err, lab);
        nsx_case_free(c);
    }
    return r;
}

int nsx_case_read(const char *path, nsx_case *c, nsx_err *err)
{
    nsx_st st;
    *c = (nsx_case){0};
    int r = nsx_st_read(path, &st, err);
    return r ? r : nsx_case_from_st(&st, path, c, err);
}

void nsx_case_free(nsx_case *c)
{
    /* every array in in and expected was allocated by take_tensor; the
       const of nsx_inputs is the consumers' promise, not ownership */
    free((void *)c->in.q);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free((void *)c->in.k[m]);
        free((void *)c->in.v[m]);
    }
    free((void *)c->in.sel);
    free((void *)c->in.idx_q);
    free((void *)c->in.idx_k);
    free((void *)c->in.idx_w);
    free((void *)c->in.idx_s);
    free((void *)c->in.dout);
    free(c->expected.dq);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(c->expected.dk[m]);
        free(c->expected.dv[m]);
    }
    free(c->expected.o);
    free(c->expected.lse);
    free(c->expected.sel);
    free(c->expected.sel_scores);
    nsx_case_info_free(&c->info);
    nsx_st_free(&c->st);
    *c = (nsx_case){0};
}

/* ---- writing ---- */

static int add_slot(nsx_st *st, const struct slot *s, int in_dtype, nsx_err *err)
{
    switch (s->role) {
    case IN_FLOAT:
        return nsx_st_add_f64(st, s->name, in_dtype, s->rank, s->shape, *s->fin, err);
    case IN_SEL:
        return nsx_st_add_i32(st, s->name, s->rank, s->shape, *s->sin, err);
    case IN_OPT_FLOAT:
        return *s->fin ? nsx_st_add_f64(st, s->name, in_dtype, s->rank, s->shape, *s->fin, err) : 0;
    case OUT_FLOAT:
        return *s->fout ? nsx_st_add_f64(st, s->name, NSX_DTYPE_F64, s->rank, s->shape,
                                         *s->fout, err)
                        : 0;
    case OUT_SEL:
        return *s->sout ? nsx_st_add_i32(st, s->name, s->rank, s->shape, *s->sout, err) : 0;
    default:
        return 0;
    }
}

int nsx_case_write(const char *path, const nsx_problem *p, const nsx_case_info *info,
                   const nsx_inputs *in, const nsx_outputs *out, nsx_err *err)
{
    char lab[256];
    nsx_err local;
    if (!err) /* err->kind is read below */
        err = &local;
    nsx_printable(lab, sizeof lab, path);
    nsx_st st = {0};
    nsx_inputs inc = *in;
    nsx_outputs outc = out ? *out : (nsx_outputs){0};
    struct slot s[MAX_SLOTS];
    char *json = nsx_meta_format(p, info, err);
    int r = json ? nsx_case_check_inputs(p, in, err) : err->kind;
    int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    if (!r && computed && outc.sel)
        r = check_computed_sel(p, outc.sel, err);
    if (!r)
        r = nsx_st_set_meta(&st, NSX_META_KEY, json, err);
    int ns = r ? 0 : slots_for(p, &inc, &outc, s);
    for (int t = 0; t < ns && !r; t++)
        r = add_slot(&st, &s[t], p->input_format, err);
    if (r)
        nsx_err_prefix(err, lab);
    else
        r = nsx_st_write(path, &st, err); /* its messages name the path */
    nsx_st_free(&st);
    free(json);
    return r;
}
