/*
 * Exact outputs (docs/SPEC.md section 3).
 *
 * Group the allowed tuples of a row by their score: t_1 < ... < t_G with
 * N_g tuples and a sum S_g of reduced values (numerators) in group g. Then
 *
 *   O[i,c] = (out_scale / den) * sum_g exp(t_g) S_g / sum_g exp(t_g) N_g.
 *
 * The scores t_g = s T_raw are algebraic (s is a binary64 or 1/sqrt(d)) and
 * distinct, so by the Lindemann-Weierstrass theorem exp(t_1), ..., exp(t_G)
 * are linearly independent over the algebraic numbers.  Hence O equals a
 * rational r (out_scale / den) exactly when sum_g exp(t_g) (S_g - r N_g) = 0,
 * that is when S_g = r N_g for every g: when every group has the same mean.
 * In that case O = out_scale * S_1 / (N_1 den), rounded directly
 * (ref_round_ratio).  Otherwise O is irrational, hence neither a binary64
 * nor a midpoint between two, and Ziv's loop terminates on its own.
 *
 * This is what decides all-equal scores (one group), constant values,
 * exact zeros and cancelling groups, where enclosures alone never would.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "ref/exact.h"
#include "ref/internal.h"

static int lower_score(size_t a, size_t b, void *arg)
{
    const ref_row *row = arg;
    return mpfr_cmp(row->T[a], row->T[b]) < 0;
}

int ref_row_sort(size_t *perm, const ref_row *row)
{
    assert(row && (perm || row->N == 0));
    return ref_sort(perm, row->N, lower_score, (void *)row);
}

int ref_exact_output(double *out, ref_ctx *ctx, const ref_row *row, const size_t *perm, int c)
{
    assert(out && ctx && row && perm && row->N >= 1 && c >= 0 && c < ctx->p->dv);
    const nsx_problem *p = ctx->p;
    size_t N = row->N;
    /* S_g is a sum of at most N numerators: prec_W plus log2 N bits, and
       S_g * N_h needs 64 more */
    mpfr_prec_t prec = ctx->prec_W + 64 + 2;
    mpfr_t w, S1, Sg, x, y;
    mpfr_inits2(prec + 64, w, S1, Sg, x, y, (mpfr_ptr)0);
    int one_group = ref_score_scale_sign(p) == 0; /* s = 0: every score is 0 */
    unsigned long N1 = 0;
    int rational = 1;

    for (size_t start = 0; start < N && rational;) {
        /* the group of perm[start]: tuples with the same raw score */
        size_t end = start + 1;
        while (end < N && (one_group || mpfr_equal_p(row->T[perm[end]], row->T[perm[start]])))
            end++;
        mpfr_set_zero(Sg, 1);
        for (size_t t = start; t < end; t++) {
            ref_reduce(w, ctx, row->b, row->g, row->J + perm[t] * (size_t)p->n, c);
            REF_EXACT(mpfr_add(Sg, Sg, w, MPFR_RNDN));
        }
        unsigned long Ng = (unsigned long)(end - start);
        if (start == 0) {
            mpfr_set(S1, Sg, MPFR_RNDN);
            N1 = Ng;
        } else {
            /* same mean: S_g N_1 = S_1 N_g */
            REF_EXACT(mpfr_mul_ui(x, Sg, N1, MPFR_RNDN));
            REF_EXACT(mpfr_mul_ui(y, S1, Ng, MPFR_RNDN));
            rational = mpfr_equal_p(x, y);
        }
        start = end;
    }
    if (rational) {
        /* O = out_scale * S_1 / (N_1 * den) */
        REF_EXACT(mpfr_mul_d(x, S1, p->out_scale, MPFR_RNDN));
        *out = ref_round_ratio(x, N1 * ref_reduce_den(p));
    }
    mpfr_clears(w, S1, Sg, x, y, (mpfr_ptr)0);
    return rational;
}

/*
 * LSE = log(sum_u N_u exp(t_u)) is algebraic only for a single allowed
 * tuple (docs/SPEC.md 3.4), where LSE = T = s T_raw: rational when s is a
 * binary64 (an exact product) or 1/sqrt(k^2) = 1/k, and T_raw = 0 included.
 */
int ref_exact_lse(double *out, ref_ctx *ctx, const ref_row *row)
{
    assert(out && ctx && row && row->N >= 1);
    const nsx_problem *p = ctx->p;
    const mpfr_t *T = &row->M; /* the only tuple's raw score */
    if (row->N != 1)
        return 0;
    if (!p->score_scale_rsqrt_d) {
        /* T = score_scale * T_raw, exact at prec_T + 53 bits */
        mpfr_t x;
        mpfr_init2(x, ctx->prec_T + 53);
        REF_EXACT(mpfr_mul_d(x, *T, p->score_scale, MPFR_RNDN));
        *out = mpfr_zero_p(x) ? 0.0 : mpfr_get_d(x, MPFR_RNDN);
        mpfr_clear(x);
        return 1;
    }
    unsigned long k = (unsigned long)sqrt((double)p->d);
    while (k * k > (unsigned long)p->d)
        k--;
    while ((k + 1) * (k + 1) <= (unsigned long)p->d)
        k++;
    if (k * k != (unsigned long)p->d && !mpfr_zero_p(*T))
        return 0; /* T_raw / sqrt(d) is irrational: Ziv's loop decides it */
    /* T = T_raw / k */
    *out = ref_round_ratio(*T, k);
    return 1;
}
