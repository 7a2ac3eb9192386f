/*
 * A candidate file as `nsimplex check` reads it: the outputs o, lse and sel
 * of a parsed safetensors file, checked against the vector's problem, and
 * the precision model it declares.  One function, so that the command and
 * the parser fuzzer (fuzz/targets/check.c) run the same code on a hostile
 * candidate.
 */
#ifndef NSX_ORACLE_CANDIDATE_H
#define NSX_ORACLE_CANDIDATE_H

#include "io/safetensors.h"
#include "nsimplex/error.h"
#include "nsimplex/problem.h"
#include "oracle/check.h"
#include "oracle/model.h"

/* The candidate's metadata key that declares its precision model. */
#define NSX_MODEL_KEY "nsimplex.model"

/*
 * Takes the outputs of the candidate file cst (label names it in messages)
 * for the vector's problem p into cand (arrays malloc'd, decoded exactly to
 * binary64): o [B,L,H,dv] required, lse [B,H,L] optional, both any float
 * dtype; sel [B,L,k] I32, optional, read only when p computes its selection
 * (source indexer or scores); the gradients dq [B,L,H,d], dk1.. [B,L,Hkv,d],
 * dv1.. [B,L,Hkv,dv], each optional, any float dtype.  The model is *forced when forced is not NULL,
 * else the one the metadata key NSX_MODEL_KEY declares, else the default.
 * Returns 0, or NSX_E_INPUT with err = "LABEL: <problem>" (a tensor
 * missing, of the wrong dtype or shape; a declared model that does not
 * parse), NSX_E_NOMEM when out of memory; cand then holds nothing.
 * Pre (asserted): every pointer but forced is not NULL.
 */
int nsx_candidate_from_st(const nsx_st *cst, const char *label, const nsx_problem *p,
                          const nsx_model *forced, nsx_candidate *cand, nsx_model *model,
                          nsx_err *err);

/*
 * An indexer's candidate file (docs/ORACLE.md 5.2): sel_scores [B,L,L] (any
 * float dtype; the entries of non-candidate keys are not read) and/or sel
 * [B,L,k] (I32), no o.  The model as nsx_candidate_from_st takes it.
 * 1 when cst is one (it has no o, and has sel_scores or sel), else 0.
 */
int nsx_candidate_is_indexer(const nsx_st *cst);
int nsx_idx_candidate_from_st(const nsx_st *cst, const char *label, const nsx_problem *p, const nsx_model *forced,
                              nsx_idx_candidate *cand, nsx_model *model, nsx_err *err);
void nsx_idx_candidate_free(nsx_idx_candidate *cand);

/* Frees the arrays nsx_candidate_from_st allocated and zeroes cand. */
void nsx_candidate_free(nsx_candidate *cand);

#endif
