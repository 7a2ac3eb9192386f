/*
 * The C entry layer of libnsimplex.so for foreign callers (the Python
 * package python/nsimplex calls it through ctypes).  Only plain C types
 * cross it: opaque handles, doubles, int32 and int64 arrays, strings.  Every
 * function that can fail returns 0 or an error kind (nsimplex/error.h) and
 * writes one line into err (size errlen).  Strings returned through char **
 * are malloc'd: free them with nsx_py_free.  These names, and only these, are
 * exported by libnsimplex.so (capi/exports.map); fields and functions are
 * only ever added, together with a bump of NSX_PY_ABI.
 */
#ifndef NSX_CAPI_CAPI_H
#define NSX_CAPI_CAPI_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/kernel.h"

#define NSX_PY_ABI 5 /* 2: nsx_py_check_indexer; 3: nsx_py_check_grads, nsx_py_write_candidate_grads;
                        4: nsx_py_fuzz_indexer; 5: nsx_py_fuzz_args.shapes, .orders and the backward */

typedef struct nsx_py_case nsx_py_case;

/* NSX_PY_ABI, and the program version (NSX_VERSION). */
int nsx_py_abi(void);
const char *nsx_py_version(void);

/* The name of an error kind ("bad input", ...). */
const char *nsx_py_err_kind_name(int kind);

void nsx_py_free(void *p);

/* Reads and validates a case file (a golden vector, or inputs only). */
int nsx_py_case_read(const char *path, nsx_py_case **out, char *err, size_t errlen);
void nsx_py_case_free(nsx_py_case *c);

/* The case's metadata as canonical JSON (the file's "nsimplex" key as the
   writer writes it: SPEC.md 4.3), malloc'd. */
int nsx_py_case_meta(const nsx_py_case *c, char **json, char *err, size_t errlen);

/*
 * One tensor of the case by its file name (q, k1.., v1.., sel, idx_q, idx_k,
 * idx_w, idx_s, o, lse, sel_scores): *data points into the case (binary64,
 * or int32 when *is_int), valid until nsx_py_case_free; shape has room for
 * 4 entries.  Returns 1 when the case has no such tensor, else 0.
 */
int nsx_py_case_tensor(const nsx_py_case *c, const char *name, const void **data, int *is_int, int *rank,
                       int64_t *shape);

/*
 * Judges a candidate's outputs in process, as `nsimplex check` does:
 * o [B,L,H,dv] required, lse [B,H,L] and sel [B,L,k] may be NULL (sel is
 * read only when the case computes its selection), all decoded exactly to
 * binary64 by the caller.  model NULL: the default (bf16).  label names the
 * candidate in the report.  *pass, and the report as JSON and as text
 * (malloc'd, either pointer may be NULL).  NSX_E_INPUT: a model that does
 * not parse, a case without expected values, or not applicable under the
 * model (the message says which).
 */
int nsx_py_check(const nsx_py_case *c, const double *o, const double *lse, const int32_t *sel, const char *model,
                 const char *label, int *pass, char **json, char **text, char *err, size_t errlen);

/*
 * nsx_py_check with the candidate's gradients (a backward case; docs/
 * ORACLE.md section 8): grads holds 1 + 2n pointers, dq [B,L,H,d], dk1..dkn
 * [B,L,Hkv,d], dv1..dvn [B,L,Hkv,dv], each NULL when absent (grads NULL:
 * none).  nsx_py_check is this with grads NULL.
 */
int nsx_py_check_grads(const nsx_py_case *c, const double *o, const double *lse, const int32_t *sel,
                       const double *const *grads, const char *model, const char *label, int *pass, char **json,
                       char **text, char *err, size_t errlen);

/*
 * Judges an indexer's outputs alone (ABI 2 of this layer), as `nsimplex
 * check` does for an indexer candidate (docs/ORACLE.md 5.2): scores
 * [B,L,L] (entries off the candidates not read) and/or sel [B,L,k] (either
 * may be NULL, not both) for a case whose indexer computes its selection.
 * model NULL: the default (bf16).  *pass, the report as JSON and as text.
 */
int nsx_py_check_indexer(const nsx_py_case *c, const double *scores, const int32_t *sel, const char *model,
                         const char *label, int *pass, char **json, char **text, char *err, size_t errlen);
/*
 * Writes a candidate file `nsimplex check` reads: o [B,L,H,dv] encoded in
 * o_dtype, lse (NULL: none) in lse_dtype, sel (NULL: none; written only
 * when the case computes its selection) as I32, and model (NULL: none) as
 * the metadata key "nsimplex.model".  dtypes: NSX_FORMAT_*; every value
 * must be representable in its dtype.
 */
int nsx_py_write_candidate(const nsx_py_case *c, const char *path, const double *o, int o_dtype,
                           const double *lse, int lse_dtype, const int32_t *sel, const char *model, char *err,
                           size_t errlen);

/*
 * nsx_py_write_candidate with gradients: grads holds 1 + 2n pointers (dq,
 * dk1..dkn, dv1..dvn, each NULL when absent; grads NULL: none) written as
 * tensors dq, dk1.., dv1.. in grad_dtype (NSX_FORMAT_*).
 */
int nsx_py_write_candidate_grads(const nsx_py_case *c, const char *path, const double *o, int o_dtype,
                                 const double *lse, int lse_dtype, const int32_t *sel, const double *const *grads,
                                 int grad_dtype, const char *model, char *err, size_t errlen);

/* The canonical text of a model string (docs/ORACLE.md section 2) into out
   (len >= 160), and its input, accumulation, weight (-1: none; 5: tf32),
   output and LSE output formats into fmt[5] (may be NULL). */
int nsx_py_model(const char *model, char *out, size_t len, int *fmt, char *err, size_t errlen);

/* 1 and a warning into buf (len >= 512) when the model string parses but
   may not say what its author meant (nsx_model_warning), else 0. */
int nsx_py_model_warning(const char *model, char *buf, size_t len);

/* Writes a golden vector of any shape from a recipe (vectors/recipe.h) to
   path, named name (`nsimplex gen --recipe`); *tuples gets the allowed
   tuples the reference summed (may be NULL). */
int nsx_py_gen(const char *recipe, const char *name, const char *path, uint64_t *tuples, char *err,
               size_t errlen);

/* A fuzz run over a callback kernel (capi/callback.h); see nsx_fuzz_opts. */
typedef int (*nsx_py_accept_fn)(const nsx_kernel_problem *p);

typedef struct nsx_py_fuzz_args {
    const char *name;          /* the kernel's name in reports */
    const char *model;         /* the precision model it is judged by (NULL: bf16) */
    int max_order;             /* 1..NSX_MAX_ORDER */
    unsigned features;         /* NSX_FEAT_* */
    nsx_kernel_forward_fn forward;
    nsx_py_accept_fn accept;   /* NULL: every drawn problem; else 0 declines it */
    double seconds;
    uint64_t seed, start, count;
    int max_failures;
    double shrink_seconds;
    const char *out_dir;       /* NULL: failures not saved */
    int log;                   /* 1: progress and failures on stdout */
    double progress;
    int verbose;
    int shapes;                /* the size classes drawn: NSX_FZ_SMALL (a Python kernel over dense
                                  L^n tensors), _TILES, _PRODUCTION, or NSX_FZ_SHAPES_ALL (-1), as
                                  `nsimplex fuzz --shapes` (fuzz/fuzz.h) */
    unsigned orders;           /* bit n: order n may be drawn; 0: any up to max_order (--n) */
    nsx_kernel_backward_fn backward; /* NULL: none; else called for the backward problems */
    int backward_max_order;    /* 1..max_order, when backward */
    unsigned backward_features; /* NSX_FEAT_* of the problems it takes (within features) */
    int bwd;                   /* NSX_FZ_BWD_MIX (0: a share of the problems, with a backward),
                                  _ONLY (1: every problem), _NONE (-1), as --bwd, --no-bwd */
} nsx_py_fuzz_args;

/* Runs the fuzzer; *summary gets the summary as JSON (malloc'd): problems,
   mpfr, loop, skipped, declined, rejected, pairs, heads, bwd (problems whose
   gradients were judged), seconds, model,
   failures [{index, seed, kind, kinds, found, shrink, draw, shrunk, note,
   path, replays}]. */
int nsx_py_fuzz(const nsx_py_fuzz_args *a, char **summary, char *err, size_t errlen);

/* A fuzz run over a callback indexer (ABI 4 of this layer; `nsimplex fuzz
   --indexer`, fuzz/idx.c, nsx_fuzz_indexer_run). */
typedef struct nsx_py_fuzz_indexer_args {
    const char *name;          /* the indexer's name in reports */
    const char *model;         /* the precision model it is judged by (NULL: bf16) */
    unsigned caps;             /* NSX_IDX_*: what it writes, what it takes */
    nsx_kernel_indexer_fn indexer;
    double seconds;
    uint64_t seed, start, count;
    int max_failures;
    const char *out_dir;       /* NULL: failures not saved */
    int log;                   /* 1: failures and the summary on stdout */
    int verbose;               /* 1: every problem's line */
} nsx_py_fuzz_indexer_args;

/* Runs the indexer fuzzer; *summary as nsx_py_fuzz's, with "worst" the
   largest score error / bound over the passing problems (null: none) and
   "sel_differ" the selection rows valid but not the golden set (ties). */
int nsx_py_fuzz_indexer(const nsx_py_fuzz_indexer_args *a, char **summary, char *err, size_t errlen);

#endif
