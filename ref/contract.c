/*
 * (E6) O[i,c] = out_scale * sum_{allowed J} A[i,J] * W[J,c]
 *
 * With W = w / den from E5 (den = n for the mean, else 1) and A_J = e_J / Z
 * from E4:
 *   O[i,c] = out_scale * (sum_J e_J w_Jc) / (Z den).
 * Each product e_J w_Jc is added to the enclosure with one rounding per
 * bound (a fused multiply-add rounded outward), one tuple at a time.
 */
#include <assert.h>
#include "ref/internal.h"

void ref_contract_add(ival *o, ref_ctx *ctx, const ref_row *row, const int *J, const ival *e, mpfr_t w)
{
    assert(o && ctx && row && J && e && ival_is_enclosure(e));
    for (int c = 0; c < ctx->p->dv; c++) {
        /* o_c += e_J * w_Jc */
        ref_reduce(w, ctx, row->b, row->g, J, c);
        ival_addmul_fr(&o[c], e, w);
    }
}

void ref_contract_scale(ival *o, const ref_ctx *ctx)
{
    assert(o && ctx);
    const nsx_problem *p = ctx->p;
    unsigned long den = ref_reduce_den(p);
    for (int c = 0; c < p->dv; c++) {
        /* o_c = out_scale * o_c / den */
        ival_mul_d(&o[c], &o[c], p->out_scale);
        if (den > 1)
            ival_div_ui(&o[c], &o[c], den);
    }
}
