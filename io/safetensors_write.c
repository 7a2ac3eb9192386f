/*
 * safetensors in memory and on disk (safetensors.h): building an nsx_st,
 * writing it atomically, reading its elements.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"
#include "io/fpformat.h"
#include "io/json.h"
#include "io/safetensors.h"

#define BAD(...) nsx_err_set(err, NSX_E_INPUT, __VA_ARGS__)
#define OOM() nsx_err_set(err, NSX_E_NOMEM, "out of memory")

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [NSX_DTYPE_F64] = {"F64", 8}, [NSX_DTYPE_F32] = {"F32", 4}, [NSX_DTYPE_F16] = {"F16", 2},
    [NSX_DTYPE_BF16] = {"BF16", 2}, [NSX_DTYPE_I32] = {"I32", 4},
};

static int dtype_ok(int dtype) { return dtype >= NSX_DTYPE_F64 && dtype <= NSX_DTYPE_I32; }

const char *nsx_dtype_name(int dtype) { return dtype_ok(dtype) ? dtypes[dtype].name : NULL; }
size_t nsx_dtype_size(int dtype) { return dtype_ok(dtype) ? dtypes[dtype].size : 0; }
int nsx_dtype_is_float(int dtype) { return dtype_ok(dtype) && dtype != NSX_DTYPE_I32; }

/* ---- little-endian element access ---- */

static uint64_t get_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    while (n--)
        v = v << 8 | p[n];
    return v;
}

static void put_le(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t k = 0; k < n; k++, v >>= 8)
        p[k] = (unsigned char)v;
}

double nsx_tensor_f64_at(const nsx_tensor *t, size_t i)
{
    const unsigned char *p = t->data + i * nsx_dtype_size(t->dtype);
    switch (t->dtype) {
    case NSX_DTYPE_F64: {
        uint64_t u = get_le(p, 8);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    case NSX_DTYPE_F32: return nsx_f32_decode((uint32_t)get_le(p, 4));
    case NSX_DTYPE_F16: return nsx_f16_decode((uint16_t)get_le(p, 2));
    default: return nsx_bf16_decode((uint16_t)get_le(p, 2));
    }
}

int32_t nsx_tensor_i32_at(const nsx_tensor *t, size_t i)
{
    uint32_t u = (uint32_t)get_le(t->data + 4 * i, 4);
    int32_t v;
    memcpy(&v, &u, 4); /* two's complement reinterpretation, no UB */
    return v;
}

void nsx_tensor_get_f64(const nsx_tensor *t, double *out)
{
    for (size_t i = 0; i < t->count; i++)
        out[i] = nsx_tensor_f64_at(t, i);
}

void nsx_tensor_get_i32(const nsx_tensor *t, int32_t *out)
{
    for (size_t i = 0; i < t->count; i++)
        out[i] = nsx_tensor_i32_at(t, i);
}

void nsx_shape_str(char *out, size_t outlen, int rank, const int64_t *shape)
{
    nsx_buf b = {0};
    nsx_buf_puts(&b, "[");
    for (int r = 0; r < rank; r++)
        nsx_buf_printf(&b, r ? ",%lld" : "%lld", (long long)shape[r]);
    nsx_buf_puts(&b, "]");
    snprintf(out, outlen, "%s", b.oom ? "[?]" : b.s);
    nsx_buf_free(&b);
}

/* ---- building ---- */

const nsx_tensor *nsx_st_get(const nsx_st *st, const char *name)
{
    for (size_t i = 0; i < st->nt; i++)
        if (strcmp(st->t[i].name, name) == 0)
            return &st->t[i];
    return NULL;
}

const char *nsx_st_meta(const nsx_st *st, const char *key)
{
    for (size_t i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[i].key, key) == 0)
            return st->meta[i].value;
    return NULL;
}

/* A name the format can carry and a message can print: nonempty valid
   UTF-8 without control characters, not the metadata's key. */
static int name_ok(const char *s)
{
    return *s && nsx_utf8_valid(s) && !nsx_has_control(s) && strcmp(s, "__metadata__") != 0;
}

/* The element count of a shape, or 0 with *bad set on a negative entry or
   overflow (of the count or of its bytes in dtype). */
static size_t shape_count(int rank, const int64_t *shape, int dtype, int *bad)
{
    size_t count = 1;
    *bad = 0;
    for (int r = 0; r < rank; r++) {
        if (shape[r] < 0) {
            *bad = 1;
            return 0;
        }
        size_t d = (size_t)shape[r];
        if (d != 0 && count > SIZE_MAX / d)
            *bad = 1; /* as the reader: any overflow on the way counts */
        count *= d;
    }
    if (*bad || count > SIZE_MAX / nsx_dtype_size(dtype)) {
        *bad = 1;
        return 0;
    }
    return count;
}

/* A new zeroed slot at the end of st->t, or NULL when out of memory. */
static nsx_tensor *new_tensor(nsx_st *st)
{
    if (st->nt == st->cap_t) {
        size_t cap = st->cap_t ? 2 * st->cap_t : 16;
        nsx_tensor *t = realloc(st->t, cap * sizeof *t);
        if (!t)
            return NULL;
        st->t = t;
        st->cap_t = cap;
    }
    nsx_tensor *t = &st->t[st->nt];
    memset(t, 0, sizeof *t);
    return t;
}

/* Fills a new slot's header fields from the arguments, checking them; the
   slot is not yet counted in st->nt. */
static int prepare(nsx_st *st, const char *name, int dtype, int rank, const int64_t *shape,
                   nsx_tensor **out, nsx_err *err)
{
    char nm[80];
    nsx_printable(nm, sizeof nm, name);
    if (!name_ok(name))
        return BAD("tensor name '%s' is empty, reserved, not UTF-8 or has control characters",
                   nm);
    if (nsx_st_get(st, name))
        return BAD("tensor '%s' is already present", nm);
    if (!dtype_ok(dtype))
        return BAD("tensor '%s': dtype %d is unknown", nm, dtype);
    if (rank < 0 || rank > NSX_ST_MAX_RANK)
        return BAD("tensor '%s': rank %d is outside 0..%d", nm, rank, NSX_ST_MAX_RANK);
    for (int r = 0; r < rank; r++)
        if (shape[r] < 0)
            return BAD("tensor '%s': shape[%d] = %lld is negative", nm, r, (long long)shape[r]);
    int bad;
    size_t count = shape_count(rank, shape, dtype, &bad);
    if (bad)
        return BAD("tensor '%s': shape has too many elements", nm);
    nsx_tensor *t = new_tensor(st);
    if (!t)
        return OOM();
    t->dtype = dtype;
    t->rank = rank;
    for (int r = 0; r < rank; r++)
        t->shape[r] = shape[r];
    t->count = count;
    t->nbytes = count * nsx_dtype_size(dtype);
    if (!(t->name = strdup(name)))
        return OOM();
    if (t->nbytes && !(t->data = malloc(t->nbytes))) {
        free(t->name);
        return OOM();
    }
    *out = t;
    return 0;
}

int nsx_st_add(nsx_st *st, const char *name, int dtype, int rank, const int64_t *shape,
               const void *data, nsx_err *err)
{
    nsx_tensor *t;
    int r = prepare(st, name, dtype, rank, shape, &t, err);
    if (r)
        return r;
    if (t->nbytes)
        memcpy(t->data, data, t->nbytes);
    st->nt++;
    return 0;
}

int nsx_st_add_f64(nsx_st *st, const char *name, int dtype, int rank, const int64_t *shape,
                   const double *vals, nsx_err *err)
{
    nsx_tensor *t;
    if (!nsx_dtype_is_float(dtype)) {
        char nm[80];
        nsx_printable(nm, sizeof nm, name);
        return BAD("tensor '%s': dtype %d is not a float dtype", nm, dtype);
    }
    int r = prepare(st, name, dtype, rank, shape, &t, err);
    if (r)
        return r;
    size_t es = nsx_dtype_size(dtype);
    for (size_t i = 0; i < t->count; i++) {
        double x = vals[i];
        if (!nsx_representable(x, dtype)) {
            char nm[80], v[32];
            nsx_printable(nm, sizeof nm, name);
            nsx_fmt_double(v, sizeof v, x);
            free(t->name);
            free(t->data);
            return BAD("tensor '%s': element %zu (%s) is not representable in %s", nm, i, v,
                       nsx_dtype_name(dtype));
        }
        uint64_t u;
        switch (dtype) {
        case NSX_DTYPE_F64: memcpy(&u, &x, 8); break;
        case NSX_DTYPE_F32: u = nsx_f32_encode(x); break;
        case NSX_DTYPE_F16: u = nsx_f16_encode(x); break;
        default: u = nsx_bf16_encode(x); break;
        }
        put_le(t->data + i * es, u, es);
    }
    st->nt++;
    return 0;
}

int nsx_st_add_i32(nsx_st *st, const char *name, int rank, const int64_t *shape,
                   const int32_t *vals, nsx_err *err)
{
    nsx_tensor *t;
    int r = prepare(st, name, NSX_DTYPE_I32, rank, shape, &t, err);
    if (r)
        return r;
    for (size_t i = 0; i < t->count; i++) {
        uint32_t u;
        memcpy(&u, &vals[i], 4);
        put_le(t->data + 4 * i, u, 4);
    }
    st->nt++;
    return 0;
}

int nsx_st_set_meta(nsx_st *st, const char *key, const char *value, nsx_err *err)
{
    if (!nsx_utf8_valid(key) || !nsx_utf8_valid(value)) {
        char k[80];
        nsx_printable(k, sizeof k, key);
        return BAD("__metadata__ '%s': key or value is not valid UTF-8", k);
    }
    for (size_t i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v)
                return OOM();
            free(st->meta[i].value);
            st->meta[i].value = v;
            return 0;
        }
    return nsx_st_append_meta(st, key, value, err);
}

int nsx_st_append_meta(nsx_st *st, const char *key, const char *value, nsx_err *err)
{
    if (st->nmeta == st->cap_meta) {
        size_t cap = st->cap_meta ? 2 * st->cap_meta : 4;
        nsx_st_kv *m = realloc(st->meta, cap * sizeof *m);
        if (!m)
            return OOM();
        st->meta = m;
        st->cap_meta = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return OOM();
    }
    st->meta[st->nmeta++] = (nsx_st_kv){k, v};
    return 0;
}

void nsx_st_free(nsx_st *st)
{
    for (size_t i = 0; i < st->nt; i++) {
        free(st->t[i].name);
        free(st->t[i].data);
    }
    free(st->t);
    for (size_t i = 0; i < st->nmeta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    *st = (nsx_st){0};
}

/* ---- writing ---- */

static int cmp_layout(const void *a, const void *b)
{
    const nsx_tensor *x = *(const nsx_tensor *const *)a, *y = *(const nsx_tensor *const *)b;
    size_t sx = nsx_dtype_size(x->dtype), sy = nsx_dtype_size(y->dtype);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp((*(const nsx_st_kv *const *)a)->key, (*(const nsx_st_kv *const *)b)->key);
}

/* The header text, padded with spaces so that 8 + its length is a multiple
   of 8, for tensors in the order `order`. */
static int build_header(const nsx_st *st, const nsx_tensor **order, nsx_buf *h, nsx_err *err)
{
    const nsx_st_kv **meta = malloc((st->nmeta ? st->nmeta : 1) * sizeof *meta);
    if (!meta)
        return OOM();
    for (size_t i = 0; i < st->nmeta; i++)
        meta[i] = &st->meta[i];
    qsort(meta, st->nmeta, sizeof *meta, cmp_meta);
    nsx_buf_puts(h, "{");
    if (st->nmeta) {
        nsx_buf_puts(h, "\"__metadata__\":{");
        for (size_t i = 0; i < st->nmeta; i++) {
            nsx_buf_puts(h, i ? "," : "");
            nsx_buf_json_string(h, meta[i]->key);
            nsx_buf_puts(h, ":");
            nsx_buf_json_string(h, meta[i]->value);
        }
        nsx_buf_puts(h, "}");
    }
    free(meta);
    uint64_t at = 0;
    for (size_t i = 0; i < st->nt; i++) {
        const nsx_tensor *t = order[i];
        nsx_buf_puts(h, i || st->nmeta ? "," : "");
        nsx_buf_json_string(h, t->name);
        nsx_buf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", nsx_dtype_name(t->dtype));
        for (int r = 0; r < t->rank; r++)
            nsx_buf_printf(h, r ? ",%lld" : "%lld", (long long)t->shape[r]);
        nsx_buf_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
                       (unsigned long long)(at + t->nbytes));
        at += t->nbytes;
    }
    nsx_buf_puts(h, "}");
    while (!h->oom && h->len % 8 != 0)
        nsx_buf_puts(h, " ");
    if (h->oom)
        return OOM();
    if (h->len > NSX_ST_MAX_HEADER)
        return BAD("header of %zu bytes exceeds the limit of %u", h->len, NSX_ST_MAX_HEADER);
    return 0;
}

/* What nsx_st_add guarantees, checked again: st is a public struct, and a
   file the reader would refuse must never be written. */
static int check_st(const nsx_st *st, nsx_err *err)
{
    for (size_t i = 0; i < st->nt; i++) {
        const nsx_tensor *t = &st->t[i];
        char nm[80];
        nsx_printable(nm, sizeof nm, t->name ? t->name : "(null)");
        if (!t->name || !name_ok(t->name))
            return BAD("tensor name '%s' is empty, reserved, not UTF-8 or has control "
                       "characters", nm);
        int bad = !dtype_ok(t->dtype) || t->rank < 0 || t->rank > NSX_ST_MAX_RANK;
        size_t count = bad ? 0 : shape_count(t->rank, t->shape, t->dtype, &bad);
        if (bad || count != t->count || t->nbytes != count * nsx_dtype_size(t->dtype) ||
            (t->nbytes && !t->data))
            return BAD("tensor '%s': inconsistent dtype, shape, size or data", nm);
        for (size_t j = 0; j < i; j++)
            if (strcmp(st->t[j].name, t->name) == 0)
                return BAD("duplicate tensor name '%s'", nm);
    }
    for (size_t i = 0; i < st->nmeta; i++) {
        const nsx_st_kv *kv = &st->meta[i];
        char k[80];
        nsx_printable(k, sizeof k, kv->key ? kv->key : "(null)");
        if (!kv->key || !kv->value || !nsx_utf8_valid(kv->key) || !nsx_utf8_valid(kv->value))
            return BAD("__metadata__ '%s': key or value is missing or not valid UTF-8", k);
        for (size_t j = 0; j < i; j++)
            if (strcmp(st->meta[j].key, kv->key) == 0)
                return BAD("duplicate __metadata__ key '%s'", k);
    }
    return 0;
}

int nsx_st_write(const char *path, const nsx_st *st, nsx_err *err)
{
    char lab[256];
    nsx_printable(lab, sizeof lab, path);
    int r = check_st(st, err);
    if (r) {
        nsx_err_prefix(err, lab);
        return r;
    }
    const nsx_tensor **order = malloc((st->nt ? st->nt : 1) * sizeof *order);
    if (!order)
        return OOM();
    for (size_t i = 0; i < st->nt; i++)
        order[i] = &st->t[i];
    qsort(order, st->nt, sizeof *order, cmp_layout);
    nsx_buf h = {0};
    r = build_header(st, order, &h, err);
    if (r) {
        nsx_err_prefix(err, lab);
    } else {
        unsigned char len8[8];
        put_le(len8, h.len, 8);
        nsx_atomic a;
        r = nsx_atomic_open(&a, path, err);
        if (!r)
            r = nsx_atomic_write(&a, len8, 8, err);
        if (!r)
            r = nsx_atomic_write(&a, h.s, h.len, err);
        for (size_t i = 0; i < st->nt && !r; i++)
            if (order[i]->nbytes)
                r = nsx_atomic_write(&a, order[i]->data, order[i]->nbytes, err);
        if (!r)
            r = nsx_atomic_commit(&a, err);
    }
    nsx_buf_free(&h);
    free(order);
    return r;
}
