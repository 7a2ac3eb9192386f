/*
 * (E4) A[i,J] = exp(T[i,J] - LSE[i])   for allowed J (0 otherwise)
 *             = e_J / Z                 with e_J and Z from E3
 *
 * The weights enter only E6's sums, so the division is applied to each sum
 * once: sum_J A_J x_J = (sum_J e_J x_J) / Z (Z >= 1, enclosed in positive
 * numbers).
 */
#include <assert.h>

#include "ref/internal.h"

void ref_slice_softmax(ival *o, int dv, const ival *Z)
{
    assert(o && dv >= 1 && Z && ival_is_enclosure(Z) && mpfr_cmp_ui(Z->lo, 1) >= 0);
    for (int c = 0; c < dv; c++)
        ival_div_pos(&o[c], &o[c], Z);
}
