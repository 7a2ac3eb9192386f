/*
 * (E4) A[i,J] = exp(T[i,J] - LSE[i])   for allowed J (0 otherwise)
 *             = e_J / Z                 with e_J and Z from E3
 */
#include <assert.h>
#include "ref/internal.h"

void ref_slice_softmax(ref_row *row, const ival *Z)
{
    assert(row && Z && ival_is_enclosure(Z) && mpfr_cmp_ui(Z->lo, 1) >= 0);
    for (size_t t = 0; t < row->N; t++)
        ival_div_pos(&row->A[t], &row->e[t], Z);
}
