/*
 * (E5) W[J,c] = reduce(V_1[j1,c] + vb_1, ..., V_n[jn,c] + vb_n)
 *
 *   product: prod_m (V_m[j_m,c] + vb_m)
 *   sum:     sum_m  (V_m[j_m,c] + vb_m)
 *   mean:    sum_m  (V_m[j_m,c] + vb_m) / n
 *
 * ref_reduce computes the numerator exactly (prec_W); the mean's division by
 * n is left to the contraction (E6), since 1/n is not a binary fraction for
 * n = 3, 5, 6, 7.
 */
#include <assert.h>
#include "ref/exact.h"
#include "ref/internal.h"

unsigned long ref_reduce_den(const nsx_problem *p)
{
    assert(p && p->n >= 1);
    return p->reduce == NSX_REDUCE_MEAN ? (unsigned long)p->n : 1;
}

void ref_reduce(mpfr_t w, ref_ctx *ctx, int b, int g, const int *J, int c)
{
    assert(ctx && J && b >= 0 && b < ctx->p->B && g >= 0 && g < ctx->p->Hkv && c >= 0 && c < ctx->p->dv);
    const nsx_problem *p = ctx->p;
    int product = p->reduce == NSX_REDUCE_PRODUCT;

    if (product)
        mpfr_set_ui(w, 1, MPFR_RNDN);
    else
        mpfr_set_zero(w, 1);
    for (int m = 0; m < p->n; m++) {
        /* wfac = V_m[j_m,c] + vb_m */
        REF_EXACT(mpfr_set_d(ctx->wfac, ctx->in->v[m][nsx_v_at(p, b, J[m], g, c)], MPFR_RNDN));
        REF_EXACT(mpfr_add_d(ctx->wfac, ctx->wfac, p->v_bias[m], MPFR_RNDN));
        if (product)
            REF_EXACT(mpfr_mul(w, w, ctx->wfac, MPFR_RNDN));
        else
            REF_EXACT(mpfr_add(w, w, ctx->wfac, MPFR_RNDN));
    }
}
