/*
 * (E3) LSE[i] = log sum_{allowed J} exp(T[i,J])
 *
 * With M = T_raw at a tuple of maximal score (row->argmax) and T = s T_raw:
 *   LSE = s M + log Z,   Z = sum_J e_J,   e_J = exp(s (T_raw_J - M)).
 * Every s (T_raw_J - M) <= 0, so each e_J lies in [0, 1], the maximal one is
 * exactly 1, and Z lies in [1, N]: no overflow however large the scores.
 * T_raw_J - M is exact (prec_T); the rest are enclosures.
 */
#include <assert.h>
#include "ref/exact.h"
#include "ref/internal.h"

void ref_slice_lse(ival *lse, ival *Z, ref_row *row, const ival *s)
{
    assert(lse && Z && row && s && row->N >= 1 && row->argmax < row->N && ival_is_enclosure(s));
    const mpfr_t *M = &row->T[row->argmax];
    mpfr_t D;
    mpfr_init2(D, mpfr_get_prec(row->T[0]));

    ival_set_zero(Z);
    for (size_t t = 0; t < row->N; t++) {
        ival *e = &row->e[t];
        /* D = T_raw_J - M, exact at prec_T (ref/context.c), checked */
        REF_EXACT(mpfr_sub(D, row->T[t], *M, MPFR_RNDN));
        /* e_J = exp(s D) */
        ival_mul_fr(e, s, D);
        ival_exp(e, e);
        /* Z += e_J */
        ival_add(Z, Z, e);
    }
    /* LSE = s M + log Z */
    ival_mul_fr(lse, s, *M);
    ival logz;
    ival_init(&logz, mpfr_get_prec(lse->lo));
    ival_log(&logz, Z);
    ival_add(lse, lse, &logz);
    ival_clear(&logz);
    mpfr_clear(D);
}
