/*
 * safetensors files: an 8-byte little-endian header length N, N bytes of
 * JSON header, then the tensors' bytes.  The header maps each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte
 * buffer after the header) and may hold "__metadata__": an object of string
 * values.  Format: https://github.com/huggingface/safetensors (README).
 *
 * The reader treats every file as hostile: it checks everything the
 * reference implementation checks, and is stricter where that one is
 * lenient: duplicate keys (which its JSON parser would silently merge),
 * integers written as 1.0 or 1e0, keys other than dtype, shape and
 * data_offsets in an entry, empty names or names with control characters,
 * anything but spaces after the header's JSON object.  It never allocates
 * more than the file's size on a header's say-so, and fails with
 * NSX_E_INPUT and one line that names the file and the problem.
 *
 * Tensor data is kept as the file's little-endian bytes; the accessors
 * below decode it on any host.
 */
#ifndef NSX_IO_SAFETENSORS_H
#define NSX_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/kernel.h"

#define NSX_ST_MAX_RANK 8
/* Largest header, as the reference implementation (MAX_HEADER_SIZE,
   100 MB, a little under 100 MiB): a file this reader takes, it takes too. */
#define NSX_ST_MAX_HEADER 100000000u

/* The dtypes nsimplex reads and writes; the float ones equal NSX_FORMAT_*. */
enum nsx_dtype {
    NSX_DTYPE_F64 = NSX_FORMAT_F64,
    NSX_DTYPE_F32 = NSX_FORMAT_F32,
    NSX_DTYPE_F16 = NSX_FORMAT_F16,
    NSX_DTYPE_BF16 = NSX_FORMAT_BF16,
    NSX_DTYPE_I32 = 4
};

typedef struct nsx_tensor {
    char *name;               /* nonempty UTF-8, no control characters */
    int dtype;                /* enum nsx_dtype */
    int rank;                 /* 0..NSX_ST_MAX_RANK */
    int64_t shape[NSX_ST_MAX_RANK];
    size_t count;             /* product of the shape (1 for rank 0) */
    size_t nbytes;            /* count * nsx_dtype_size(dtype) */
    uint64_t offset;          /* where the data began in the file read
                                 (informational: the writer lays out anew) */
    unsigned char *data;      /* nbytes bytes, little-endian; owned; NULL
                                 when nbytes is 0 */
} nsx_tensor;

typedef struct nsx_st_kv {
    char *key, *value;
} nsx_st_kv;

/* A file in memory.  A zeroed nsx_st is empty and ready to fill. */
typedef struct nsx_st {
    nsx_tensor *t;            /* in data-offset order when read */
    size_t nt, cap_t;
    nsx_st_kv *meta;          /* "__metadata__", in the file's order */
    size_t nmeta, cap_meta;
} nsx_st;

/* "F64", "F32", "F16", "BF16", "I32", or NULL for another value. */
const char *nsx_dtype_name(int dtype);
/* Bytes per element (8, 4, 2, 2, 4); 0 for another value. */
size_t nsx_dtype_size(int dtype);
/* 1 for F64, F32, F16, BF16. */
int nsx_dtype_is_float(int dtype);

/*
 * Parses a whole file image buf[0..len) into st (zeroed or freed first: it
 * is overwritten).  label names the file in messages.  Returns 0, or
 * NSX_E_INPUT with err = "LABEL: <problem>" for any malformed or hostile
 * input, NSX_E_NOMEM when out of memory; st is then empty.  This is
 * the libFuzzer entry point: no input makes it crash, leak or allocate more
 * than about len bytes beyond the JSON parser's (bounded) tree.
 */
int nsx_st_parse(const void *buf, size_t len, const char *label, nsx_st *st, nsx_err *err);

/* As nsx_st_parse, from the file at path (a regular file).  Errors: as
   above, plus NSX_E_INPUT when it cannot be opened or is not a regular
   file, NSX_E_IO for a read error. */
int nsx_st_read(const char *path, nsx_st *st, nsx_err *err);

/* The tensor called name, or NULL. */
const nsx_tensor *nsx_st_get(const nsx_st *st, const char *name);

/* The "__metadata__" value of key, or NULL. */
const char *nsx_st_meta(const nsx_st *st, const char *key);

/*
 * Appends a tensor, copying name and count * size bytes of little-endian
 * data (data may be NULL when the count is 0).  shape has rank entries, each
 * >= 0.  Returns 0, or NSX_E_INPUT (err says why) when the name is empty,
 * not valid UTF-8, has control characters, is "__metadata__" or is already
 * present, or the dtype, rank or shape is invalid; NSX_E_INTERNAL when
 * out of memory.
 */
int nsx_st_add(nsx_st *st, const char *name, int dtype, int rank, const int64_t *shape,
               const void *data, nsx_err *err);

/* As nsx_st_add, from binary64 values encoded into dtype (a float dtype).
   Encoding is exact: a value that dtype cannot hold (nsx_representable; NaN
   and infinities can be held) is NSX_E_INPUT naming the tensor and the
   element, and nothing is added. */
int nsx_st_add_f64(nsx_st *st, const char *name, int dtype, int rank, const int64_t *shape,
                   const double *vals, nsx_err *err);

/* As nsx_st_add, from int32 values (dtype I32). */
int nsx_st_add_i32(nsx_st *st, const char *name, int rank, const int64_t *shape,
                   const int32_t *vals, nsx_err *err);

/* Sets "__metadata__" key to value (both copied; replaces an existing key).
   Returns 0, NSX_E_INPUT when key or value is not valid UTF-8, or
   NSX_E_NOMEM when out of memory. */
int nsx_st_set_meta(nsx_st *st, const char *key, const char *value, nsx_err *err);
/* As nsx_st_set_meta for a key known to be absent and both strings known
   to be valid UTF-8 (the reader's case: its JSON parser checked them):
   appends without looking, so reading k keys costs O(k), not O(k^2). */
int nsx_st_append_meta(nsx_st *st, const char *key, const char *value, nsx_err *err);

/*
 * Writes st to path atomically (io/atomic.h): the header is padded with
 * spaces to a multiple of 8 bytes, tensors are laid out by element size,
 * largest first, then by name (so every tensor is aligned to its element
 * size, as the reference writer does) and "__metadata__" keys are sorted:
 * the same st always gives the same bytes.  Returns 0, or an exit code with
 * err set (NSX_E_INPUT for a bad path or an invalid st); on error no file
 * and no temporary file is left.
 */
int nsx_st_write(const char *path, const nsx_st *st, nsx_err *err);

/* Frees everything st owns and leaves it empty. */
void nsx_st_free(nsx_st *st);

/* Element i of a float tensor, exactly, as binary64.  Preconditions: float
   dtype, i < count. */
double nsx_tensor_f64_at(const nsx_tensor *t, size_t i);
/* Element i of an I32 tensor.  Preconditions: dtype I32, i < count. */
int32_t nsx_tensor_i32_at(const nsx_tensor *t, size_t i);

/* All elements of a float tensor as binary64 (exact), into out[0..count). */
void nsx_tensor_get_f64(const nsx_tensor *t, double *out);
/* All elements of an I32 tensor into out[0..count). */
void nsx_tensor_get_i32(const nsx_tensor *t, int32_t *out);

/* "[1,16,2,8]" into out (size outlen). */
void nsx_shape_str(char *out, size_t outlen, int rank, const int64_t *shape);

#endif
