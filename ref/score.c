/*
 * (E1) T[i,J] = s * sum_l Q[i,l] * prod_m (K_m[j_m,l] + kb_m)
 *
 * The sum is computed exactly (a dyadic rational, ref/exact.h); the scale s
 * is kept apart as an enclosure because the default s = 1/sqrt(d) is
 * irrational unless d is a perfect square.
 */
#include <assert.h>
#include <math.h>

#include "ref/exact.h"
#include "ref/internal.h"

void ref_score(mpfr_t t, ref_ctx *ctx, int b, int h, int i, const int *J)
{
    assert(ctx && J && b >= 0 && b < ctx->p->B && h >= 0 && h < ctx->p->H && i >= 0 && i < ctx->p->L);
    const nsx_problem *p = ctx->p;
    const nsx_inputs *in = ctx->in;
    int g = nsx_kv_head(p, h);

    mpfr_set_zero(t, 1);
    for (int l = 0; l < p->d; l++) {
        /* term = Q[i,l] */
        REF_EXACT(mpfr_set_d(ctx->term, in->q[nsx_q_at(p, b, i, h, l)], MPFR_RNDN));
        for (int m = 0; m < p->n; m++) {
            /* fac = K_m[j_m,l] + kb_m; term *= fac */
            REF_EXACT(mpfr_set_d(ctx->fac, in->k[m][nsx_k_at(p, b, J[m], g, l)], MPFR_RNDN));
            REF_EXACT(mpfr_add_d(ctx->fac, ctx->fac, p->k_bias[m], MPFR_RNDN));
            REF_EXACT(mpfr_mul(ctx->term, ctx->term, ctx->fac, MPFR_RNDN));
        }
        /* T_raw += term */
        REF_EXACT(mpfr_add(t, t, ctx->term, MPFR_RNDN));
    }
}

/* s = 1/sqrt(d) (rounded down and up: exact when d is a power of 4), or the
   binary64 score_scale, exact at any precision >= 53. */
void ref_score_scale(ival *s, const nsx_problem *p)
{
    assert(s && p && p->d >= 1 && (p->score_scale_rsqrt_d || isfinite(p->score_scale)));
    if (p->score_scale_rsqrt_d) {
        mpfr_set_ui(s->lo, (unsigned long)p->d, MPFR_RNDN);
        mpfr_set_ui(s->hi, (unsigned long)p->d, MPFR_RNDN);
        mpfr_rec_sqrt(s->lo, s->lo, MPFR_RNDD);
        mpfr_rec_sqrt(s->hi, s->hi, MPFR_RNDU);
    } else {
        mpfr_set_d(s->lo, p->score_scale, MPFR_RNDD);
        mpfr_set_d(s->hi, p->score_scale, MPFR_RNDU);
    }
}

int ref_score_scale_sign(const nsx_problem *p)
{
    assert(p);
    if (p->score_scale_rsqrt_d)
        return 1;
    return (p->score_scale > 0) - (p->score_scale < 0);
}
