/*
 * (E3) LSE[i] = log sum_{allowed J} exp(T[i,J])
 *
 * With M = T_raw at a tuple of maximal score (ref_row_scan) and T = s T_raw:
 *   LSE = s M + log Z,   Z = sum_J e_J,   e_J = exp(s (T_raw_J - M)).
 * Every s (T_raw_J - M) <= 0, so each e_J lies in [0, 1], the maximal one is
 * exactly 1, and Z lies in [1, N]: no overflow however large the scores.
 * T_raw_J - M is exact (prec_T holds the difference of two raw scores); the
 * rest are enclosures.  The terms are added one tuple at a time, as a pass
 * over the row meets them (ref_row_pass), so no tuple is kept.
 */
#include <assert.h>

#include "ref/exact.h"
#include "ref/internal.h"

void ref_slice_lse_add(ival *Z, ival *e, mpfr_t D, mpfr_srcptr T, const ref_row *row, const ival *s)
{
    assert(Z && e && D && T && row && s && row->N >= 1 && ival_is_enclosure(s) && ival_is_enclosure(Z));
    /* D = T_raw_J - M, exact at prec_T (ref/context.c), checked */
    REF_EXACT(mpfr_sub(D, T, row->M, MPFR_RNDN));
    /* e_J = exp(s D) */
    ival_mul_fr(e, s, D);
    ival_exp(e, e);
    /* Z += e_J */
    ival_add(Z, Z, e);
}

void ref_slice_lse(ival *lse, const ival *Z, const ref_row *row, const ival *s)
{
    assert(lse && Z && row && s && row->N >= 1 && ival_is_enclosure(s) && ival_is_enclosure(Z) &&
           mpfr_cmp_ui(Z->lo, 1) >= 0);
    /* LSE = s M + log Z */
    ival_mul_fr(lse, s, row->M);
    ival logz;
    ival_init(&logz, mpfr_get_prec(lse->lo));
    ival_log(&logz, Z);
    ival_add(lse, lse, &logz);
    ival_clear(&logz);
}
