/*
 * Case files: one golden vector (or an input file for `eval`) as a
 * safetensors file whose tensors are those of docs/SPEC.md section 4 and
 * whose "__metadata__" key "nsimplex" describes the problem (io/meta.h).
 *
 * Reading validates every tensor against the metadata: the inputs the
 * problem needs are present with exactly the contract's shapes, dtypes are
 * allowed (inputs: any float dtype; sel: I32; o, lse, sel_scores and the
 * gradients dq, dk_m, dv_m: any float dtype; do, the one optional input, of
 * gradient cases: any float dtype), every input value is representable in the input format (NaN and
 * infinities allowed: leak pairs put them in masked positions), and a given
 * selection repeats no valid index within a row.  Tensors the problem does
 * not have (k3 when n = 2, sel without a selection, ...) are refused;
 * tensors with names nsimplex does not know are ignored.
 */
#ifndef NSX_IO_CASEFILE_H
#define NSX_IO_CASEFILE_H

#include "io/meta.h"
#include "io/safetensors.h"
#include "nsimplex/error.h"
#include "nsimplex/problem.h"

typedef struct nsx_case {
    nsx_problem p;
    nsx_case_info info;
    nsx_inputs in;          /* binary64 / int32 arrays owned by the case */
    nsx_outputs expected;   /* o, lse, sel (computed selections only),
                               sel_scores: owned, NULL when absent */
    nsx_st st;              /* the file as read */
} nsx_case;

/* Reads and validates the case file at path into c (overwritten).  Returns
   0, or NSX_E_INPUT with err = "PATH: <problem>" (e.g. "x.safetensors:
   tensor k1: shape [1,8,2,4] but metadata says [1,8,1,4]"), or
   NSX_E_NOMEM or NSX_E_IO (out of memory, read error).  On error c holds nothing
   to free.  err must not be NULL. */
int nsx_case_read(const char *path, nsx_case *c, nsx_err *err);

/* As nsx_case_read, from a parsed file: takes st (freed on error, else
   kept in c->st; *st is zeroed either way); label names it in messages.
   The entry point of a fuzz target over case files. */
int nsx_case_from_st(nsx_st *st, const char *label, nsx_case *c, nsx_err *err);

/* Frees what c owns and zeroes it. */
void nsx_case_free(nsx_case *c);

/*
 * Checks the values of in against p (which passed nsx_problem_check): the
 * tensors p needs are present (non-NULL), every float input is
 * representable in p->input_format, and for a given selection (source
 * INDICES) no valid index (0 <= j < L) appears twice in a row.  Returns 0
 * or NSX_E_INPUT with err = "tensor NAME: <problem>".  err not NULL.
 */
int nsx_case_check_inputs(const nsx_problem *p, const nsx_inputs *in, nsx_err *err);

/*
 * Writes a case file atomically (io/atomic.h): the metadata of p and info
 * (info may be NULL), the inputs in the dtype of p->input_format (BF16,
 * F16, F32 or F64; sel as I32), and the outputs present in out (out may be
 * NULL; NULL members are skipped) as F64, a computed sel as I32.  The file
 * is one nsx_case_read accepts: p, info and in are checked first
 * (nsx_meta_format, nsx_case_check_inputs), and nothing is written when they
 * fail.  Returns 0 or an exit code with err = "PATH: <problem>".
 */
int nsx_case_write(const char *path, const nsx_problem *p, const nsx_case_info *info,
                   const nsx_inputs *in, const nsx_outputs *out, nsx_err *err);

#endif
