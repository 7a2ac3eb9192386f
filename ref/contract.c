/*
 * (E6) O[i,c] = out_scale * sum_{allowed J} A[i,J] * W[J,c]
 *
 * With W = w / den from E5 (den = n for the mean, else 1):
 *   O[i,c] = out_scale * (sum_J A_J w_Jc) / den.
 * Each product A_J w_Jc is added to the enclosure with one rounding per
 * bound (a fused multiply-add rounded outward).
 */
#include <assert.h>
#include "ref/internal.h"

void ref_contract(ival *o, ref_ctx *ctx, const ref_row *row)
{
    assert(o && ctx && row && row->N >= 1);
    const nsx_problem *p = ctx->p;
    unsigned long den = ref_reduce_den(p);
    mpfr_t w;
    mpfr_init2(w, ctx->prec_W);

    for (int c = 0; c < p->dv; c++)
        ival_set_zero(&o[c]);
    for (size_t t = 0; t < row->N; t++) {
        const int *J = row->J + t * (size_t)p->n;
        for (int c = 0; c < p->dv; c++) {
            /* o_c += A_J * w_Jc */
            ref_reduce(w, ctx, row->b, row->g, J, c);
            ival_addmul_fr(&o[c], &row->A[t], w);
        }
    }
    for (int c = 0; c < p->dv; c++) {
        /* o_c = out_scale * o_c / den */
        ival_mul_d(&o[c], &o[c], p->out_scale);
        if (den > 1)
            ival_div_ui(&o[c], &o[c], den);
    }
    mpfr_clear(w);
}
