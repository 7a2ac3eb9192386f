/*
 * What oracle/check.c lends the indexer's judge (oracle/idxcheck.c): one
 * definition of a failure note and of the selection row's judgement
 * (ORACLE.md section 5).  Internal to oracle/.
 */
#ifndef NSX_ORACLE_CHECK_INTERNAL_H
#define NSX_ORACLE_CHECK_INTERNAL_H

#include "oracle/bound.h"
#include "oracle/check.h"

/* Counts a failure in rep and keeps text as one of its first notes. */
void nsx_check_note(nsx_check_report *rep, int kind, const char *text);

/*
 * The candidate's selection row crow (k entries) of query (b, i) as a set
 * against the golden row grow, with the tie tolerance of nsx_bound_sel_tol:
 * duplicates and a count other than min(k, |C(i)|) valid candidate keys
 * fail; entries < 0, >= L or not candidates count as pads (the caller
 * rejects them first where they are not allowed).  score: the exact scores
 * rounded to binary64 [B, L, L] (widened by half an ulp).  in_c and tol:
 * scratch of L entries.  Returns 1 valid and the golden set, 2 valid and
 * another set, 0 invalid (noted in rep); *rc an error kind of the tolerance
 * (NSX_E_NOT_APPLICABLE), else 0.
 */
int nsx_check_sel_row(const nsx_problem *p, nsx_bound_ctx *bc, int b, int i, const int32_t *crow,
                      const int32_t *grow, const double *score, unsigned char *in_c, double *tol,
                      nsx_check_report *rep, nsx_err *err, int *rc);

#endif
