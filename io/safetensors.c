/*
 * safetensors reader (safetensors.h): every file is hostile.
 *
 * Order of work: the 8-byte length against the limit and the file size, the
 * header as strict JSON (io/json.c), each entry on its own, then the layout
 * of all entries together, and only then any allocation for data, each one
 * the size of a byte range already checked to lie inside the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json.h"
#include "io/safetensors.h"
#include "io/st_layout.h"

#define BAD(...) nsx_err_set(err, NSX_E_INPUT, __VA_ARGS__)
#define OOM() nsx_err_set(err, NSX_E_NOMEM, "out of memory")

/* Dtypes of the format that nsimplex does not read: named in the error. */
static const char *const other_dtypes[] = {
    "BOOL", "U8", "I8", "I16", "U16", "U32", "I64", "U64", "C64",
    "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
};

static int dtype_from_name(const char *s)
{
    for (int d = NSX_DTYPE_F64; d <= NSX_DTYPE_I32; d++)
        if (strcmp(s, nsx_dtype_name(d)) == 0)
            return d;
    return -1;
}

static int is_other_dtype(const char *s)
{
    for (size_t i = 0; i < sizeof other_dtypes / sizeof other_dtypes[0]; i++)
        if (strcmp(s, other_dtypes[i]) == 0)
            return 1;
    return 0;
}

/* NULL when v is a non-negative integer, written as one (not 1.0 or 1e0),
   at most 2^53 - 1, else what is wrong with it.  Every real offset or
   dimension is far below: offsets are bounded by the file's size, and a
   larger dimension can only stand beside a zero one. */
static const char *json_index(const json_t *v, uint64_t *out)
{
    int64_t x;
    const char *why = nsx_json_exact_int(v, &x);
    if (why)
        return why;
    if (x < 0)
        return "is negative";
    *out = (uint64_t)x;
    return NULL;
}

/* Empty, or with a control character (C0, DEL, C1) anywhere. */
static int bad_name(const char *s)
{
    return !*s || nsx_has_control(s);
}

static int parse_meta(json_t *obj, const char *lab, nsx_st *st, nsx_err *err)
{
    if (!json_is_object(obj))
        return BAD("%s: __metadata__ is not an object", lab);
    const char *key;
    const json_t *v;
    json_object_foreach(obj, key, v) {
        char k[80];
        nsx_printable(k, sizeof k, key);
        if (!json_is_string(v))
            return BAD("%s: __metadata__ '%s' is not a string", lab, k);
        if (nsx_st_append_meta(st, key, json_string_value(v), err))
            return err->kind;
    }
    return 0;
}

/* One entry "name": {"dtype", "shape", "data_offsets"}, checked against the
   data buffer's size; fills t (name, dtype, shape, count, nbytes, offset). */
static int parse_entry(const char *name, json_t *e, uint64_t bufsize, const char *lab,
                       nsx_tensor *t, nsx_err *err)
{
    char nm[80];
    nsx_printable(nm, sizeof nm, name);
    if (bad_name(name))
        return BAD("%s: tensor name '%s' is empty or has control characters", lab, nm);
    if (!json_is_object(e))
        return BAD("%s: tensor '%s': entry is not an object", lab, nm);
    t->name = strdup(name);
    if (!t->name)
        return OOM();
    /* Only the three keys of the format: anything else would be data this
       reader silently drops (the reference implementation ignores it). */
    const char *key;
    const json_t *kv;
    json_object_foreach(e, key, kv)
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets")) {
            char kn[80];
            nsx_printable(kn, sizeof kn, key);
            return BAD("%s: tensor '%s': unknown key '%s' (an entry has dtype, shape and "
                       "data_offsets only)", lab, nm, kn);
        }

    /* dtype */
    const json_t *dt = json_object_get(e, "dtype");
    if (!dt)
        return BAD("%s: tensor '%s': dtype is missing", lab, nm);
    if (!json_is_string(dt))
        return BAD("%s: tensor '%s': dtype is not a string", lab, nm);
    char dn[40];
    nsx_printable(dn, sizeof dn, json_string_value(dt));
    t->dtype = dtype_from_name(json_string_value(dt));
    if (t->dtype < 0 && is_other_dtype(json_string_value(dt)))
        return BAD("%s: tensor '%s': dtype %s is not supported (nsimplex reads F64, F32, F16, "
                   "BF16, I32)", lab, nm, dn);
    if (t->dtype < 0)
        return BAD("%s: tensor '%s': unknown dtype '%s'", lab, nm, dn);

    /* shape, and its element count by checked multiplication */
    const json_t *sh = json_object_get(e, "shape");
    if (!sh)
        return BAD("%s: tensor '%s': shape is missing", lab, nm);
    if (!json_is_array(sh))
        return BAD("%s: tensor '%s': shape is not an array", lab, nm);
    size_t rank = json_array_size(sh);
    if (rank > NSX_ST_MAX_RANK)
        return BAD("%s: tensor '%s': shape has rank %zu (at most %d)", lab, nm, rank,
                   NSX_ST_MAX_RANK);
    t->rank = (int)rank;
    size_t r;
    const json_t *v;
    json_array_foreach(sh, r, v) {
        uint64_t dim;
        const char *why = json_index(v, &dim);
        if (why)
            return BAD("%s: tensor '%s': shape[%zu] %s", lab, nm, r, why);
        t->shape[r] = (int64_t)dim; /* dim < 2^53 */
    }
    /* the element count by checked multiplication (io/st_layout.c) */
    if (nsx_st_shape_bytes(t->shape, t->rank, nsx_dtype_size(t->dtype), &t->count, &t->nbytes))
        return BAD("%s: tensor '%s': shape has more elements than fit in 64 bits", lab, nm);

    /* data_offsets [begin, end], inside the buffer, holding exactly nbytes */
    const json_t *off = json_object_get(e, "data_offsets");
    if (!off)
        return BAD("%s: tensor '%s': data_offsets is missing", lab, nm);
    if (!json_is_array(off) || json_array_size(off) != 2)
        return BAD("%s: tensor '%s': data_offsets is not an array of two integers", lab, nm);
    uint64_t be[2];
    for (int k = 0; k < 2; k++) {
        const char *why = json_index(json_array_get(off, k), &be[k]);
        if (why)
            return BAD("%s: tensor '%s': data_offsets[%d] %s", lab, nm, k, why);
    }
    switch (nsx_st_check_range(be[0], be[1], bufsize, t->nbytes)) {
    case 1:
        return BAD("%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", lab, nm,
                   (unsigned long long)be[0], (unsigned long long)be[1]);
    case 2:
        return BAD("%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the "
                   "%llu-byte data buffer", lab, nm, (unsigned long long)be[0],
                   (unsigned long long)be[1], (unsigned long long)bufsize);
    case 3:
        return BAD("%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s shape "
                   "of %zu elements needs %zu", lab, nm, (unsigned long long)be[0],
                   (unsigned long long)be[1], (unsigned long long)(be[1] - be[0]),
                   nsx_dtype_name(t->dtype), t->count, t->nbytes);
    }
    t->offset = be[0];
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const nsx_tensor *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) /* empty tensors first at a shared offset */
        return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Sorted by offset, the tensors must tile the buffer exactly from 0 to its
   end (as the reference implementation validates): no overlap, no gap, no
   unclaimed bytes at the end. */
static int check_layout(nsx_st *st, uint64_t bufsize, const char *lab, nsx_err *err)
{
    if (st->nt > 1) /* st->t is NULL when there is no tensor: qsort's UB */
        qsort(st->t, st->nt, sizeof *st->t, cmp_offset);
    /* tiled exactly (io/st_layout.c) */
    size_t i;
    uint64_t at;
    int r = nsx_st_check_tiling(st->t, st->nt, bufsize, &i, &at);
    char a[80], b[80];
    if (r == 1 || r == 2)
        nsx_printable(b, sizeof b, st->t[i].name);
    if (r == 1) {
        const nsx_tensor *t = &st->t[i];
        nsx_printable(a, sizeof a, st->t[i - 1].name);
        return BAD("%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", lab, a,
                   (unsigned long long)st->t[i - 1].offset, (unsigned long long)at, b,
                   (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes));
    }
    if (r == 2)
        return BAD("%s: bytes [%llu, %llu) of the data buffer belong to no tensor (a gap "
                   "before '%s')", lab, (unsigned long long)at,
                   (unsigned long long)st->t[i].offset, b);
    if (r == 3)
        return BAD("%s: bytes [%llu, %llu) at the end of the data buffer belong to no tensor",
                   lab, (unsigned long long)at, (unsigned long long)bufsize);
    return 0;
}

/* The message for a repeated key (nsx_json_parse found it). */
static int dup_error(const nsx_json_error *je, const char *lab, nsx_err *err)
{
    int meta = strcmp(je->parent, "__metadata__") == 0;
    if (je->depth == 1)
        return strcmp(je->key, "__metadata__") == 0
                   ? BAD("%s: __metadata__ appears twice", lab)
                   : BAD("%s: duplicate tensor name '%s'", lab, je->key);
    if (je->depth == 2 && meta)
        return BAD("%s: duplicate __metadata__ key '%s'", lab, je->key);
    return BAD("%s: %s", lab, je->why);
}

/* The header text hdr[0..hlen) of a file whose data buffer is bufsize
   bytes: fills st's tensors (no data yet) and metadata. */
static int parse_header(const char *hdr, size_t hlen, uint64_t bufsize, const char *lab,
                        nsx_st *st, nsx_err *err)
{
    json_t *root;
    nsx_json_error je;
    int r = nsx_json_parse(hdr, hlen, NSX_JSON_HEADER, &root, &je);
    if (r == -2)
        return OOM();
    if (r && je.dup)
        return dup_error(&je, lab, err);
    if (r)
        return BAD("%s: header is not a valid JSON object: %s", lab, je.why);
    size_t n = json_object_size(root);
    if (n > 0) {
        st->t = calloc(n, sizeof *st->t);
        st->cap_t = n;
        if (!st->t)
            r = OOM();
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (r)
            break;
        if (strcmp(key, "__metadata__") == 0)
            r = parse_meta(v, lab, st, err);
        else
            r = parse_entry(key, v, bufsize, lab, &st->t[st->nt++], err);
    }
    if (!r)
        r = check_layout(st, bufsize, lab, err);
    json_decref(root);
    return r;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* The 8-byte length of a file of size bytes: under the limit and inside. */
static int check_header_len(uint64_t hlen, uint64_t size, const char *lab, nsx_err *err)
{
    int r = nsx_st_check_header_len(hlen, size);
    if (r == 1)
        return BAD("%s: header length %llu exceeds the limit of %u bytes", lab,
                   (unsigned long long)hlen, NSX_ST_MAX_HEADER);
    if (r == 2)
        return BAD("%s: header length %llu runs past the end of the file (%llu bytes)", lab,
                   (unsigned long long)hlen, (unsigned long long)size);
    return 0;
}

int nsx_st_parse(const void *buf, size_t len, const char *label, nsx_st *st, nsx_err *err)
{
    const unsigned char *b = buf;
    char lab[256];
    nsx_printable(lab, sizeof lab, label);
    *st = (nsx_st){0};
    if (len < 8)
        return BAD("%s: file is %zu bytes, shorter than the 8-byte header length", lab, len);
    uint64_t hlen = le64(b);
    int r = check_header_len(hlen, len, lab, err);
    if (!r)
        r = parse_header((const char *)b + 8, (size_t)hlen, len - 8 - hlen, lab, st, err);
    /* b + 8 + hlen only once hlen is known to lie inside the buffer: with
       an unchecked hlen (2^63, say) the sum overflows, undefined even unused */
    for (size_t i = 0; i < st->nt && !r; i++) {
        nsx_tensor *t = &st->t[i];
        if (t->nbytes == 0)
            continue;
        if (!(t->data = malloc(t->nbytes)))
            r = OOM();
        else
            memcpy(t->data, b + 8 + hlen + t->offset, t->nbytes);
    }
    if (r)
        nsx_st_free(st);
    return r;
}

/* Reads exactly n bytes; -1 with errno, or 1 at a premature end of file. */
static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            return 1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_error(int rc, const char *lab, nsx_err *err)
{
    if (rc > 0)
        return BAD("%s: file ended early (was it changed while being read?)", lab);
    return nsx_err_set(err, NSX_E_IO, "%s: read failed: %s", lab, strerror(errno));
}

/* The file's tensors, in offset order, straight into their own buffers:
   the file is read once and never held whole in memory. */
static int read_body(int fd, uint64_t size, const char *lab, nsx_st *st, nsx_err *err)
{
    unsigned char len8[8];
    if (size < 8)
        return BAD("%s: file is %llu bytes, shorter than the 8-byte header length", lab,
                   (unsigned long long)size);
    int rc = read_full(fd, len8, 8);
    if (rc)
        return read_error(rc, lab, err);
    uint64_t hlen = le64(len8);
    int r = check_header_len(hlen, size, lab, err);
    if (r)
        return r;
    char *hdr = malloc(hlen ? (size_t)hlen : 1);
    if (!hdr)
        return OOM();
    rc = read_full(fd, hdr, (size_t)hlen);
    r = rc ? read_error(rc, lab, err)
           : parse_header(hdr, (size_t)hlen, size - 8 - hlen, lab, st, err);
    free(hdr);
    for (size_t i = 0; i < st->nt && !r; i++) {
        nsx_tensor *t = &st->t[i];
        if (t->nbytes == 0)
            continue;
        if (!(t->data = malloc(t->nbytes)))
            return OOM();
        rc = read_full(fd, t->data, t->nbytes);
        if (rc)
            r = read_error(rc, lab, err);
    }
    return r;
}

int nsx_st_read(const char *path, nsx_st *st, nsx_err *err)
{
    char lab[256];
    nsx_printable(lab, sizeof lab, path);
    *st = (nsx_st){0};
    /* O_NONBLOCK: opening a FIFO must not hang before fstat rejects it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return BAD("%s: cannot open: %s", lab, strerror(errno));
    struct stat sb;
    int r;
    if (fstat(fd, &sb) != 0)
        r = nsx_err_set(err, NSX_E_IO, "%s: cannot stat: %s", lab, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        r = BAD("%s: not a regular file", lab);
    else
        r = read_body(fd, (uint64_t)sb.st_size, lab, st, err);
    close(fd);
    if (r)
        nsx_st_free(st);
    return r;
}
