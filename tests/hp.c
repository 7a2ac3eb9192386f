/* Independent high-precision attention for the tests (tests/hp.h). */
#include <math.h>
#include <stdlib.h>

#include "tests/hp.h"

/* The keys dimension m of query i may use, written as a range check: a
   deliberate independent copy of E2 (test oracle), apart from ref/mask.c and core/slice.c. */
int hp_key_ok(const nsx_problem *p, const int32_t *sel, int b, int i, int m, int j)
{
    int w = p->window[m];
    int lo = w > 0 ? i - w + 1 : 0;
    int hi = p->causal ? i : (w > 0 ? i + w - 1 : p->L - 1);
    if (j < lo || j > hi)
        return 0;
    if (p->sel.source == NSX_SEL_NONE || !((p->sel.dims >> m) & 1))
        return 1;
    for (int r = 0; r < p->sel.k; r++)
        if (sel[((size_t)b * p->L + i) * p->sel.k + r] == j)
            return 1;
    return 0;
}

static void scale(mpfr_t s, const nsx_problem *p)
{
    if (p->score_scale_rsqrt_d) {
        mpfr_set_ui(s, (unsigned long)p->d, MPFR_RNDN);
        mpfr_rec_sqrt(s, s, MPFR_RNDN);
    } else {
        mpfr_set_d(s, p->score_scale, MPFR_RNDN);
    }
}

/* RN to binary64; an exact zero is +0, a tiny nonzero keeps its sign */
static double to_d(const mpfr_t x)
{
    return mpfr_zero_p(x) ? 0.0 : mpfr_get_d(x, MPFR_RNDN);
}

void hp_attention_n1(const tcase *t, const int32_t *sel, mpfr_prec_t prec, double *o, double *lse)
{
    const nsx_problem *p = &t->p;
    int L = p->L, d = p->d, dv = p->dv;
    mpfr_t s, acc, x, mx, z, *S = malloc((size_t)L * sizeof *S);
    mpfr_inits2(prec, s, acc, x, mx, z, (mpfr_ptr)0);
    for (int j = 0; j < L; j++)
        mpfr_init2(S[j], prec);
    scale(s, p);
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++) {
            int g = h / (p->H / p->Hkv);
            for (int i = 0; i < L; i++) {
                int any = 0;
                /* S[j] = s * q_i . (k_j + kb) */
                for (int j = 0; j < L; j++) {
                    if (!hp_key_ok(p, sel, b, i, 0, j))
                        continue;
                    mpfr_set_zero(acc, 1);
                    for (int l = 0; l < d; l++) {
                        mpfr_set_d(x, t->k[0][(((size_t)b * L + j) * p->Hkv + g) * d + l], MPFR_RNDN);
                        mpfr_add_d(x, x, p->k_bias[0], MPFR_RNDN);
                        mpfr_mul_d(x, x, t->q[(((size_t)b * L + i) * p->H + h) * d + l], MPFR_RNDN);
                        mpfr_add(acc, acc, x, MPFR_RNDN);
                    }
                    mpfr_mul(S[j], acc, s, MPFR_RNDN);
                    if (!any || mpfr_cmp(S[j], mx) > 0)
                        mpfr_set(mx, S[j], MPFR_RNDN);
                    any = 1;
                }
                double *orow = o + (((size_t)b * L + i) * p->H + h) * dv;
                if (!any) {
                    for (int c = 0; c < dv; c++)
                        orow[c] = 0;
                    lse[((size_t)b * p->H + h) * L + i] = -INFINITY;
                    continue;
                }
                /* softmax */
                mpfr_set_zero(z, 1);
                for (int j = 0; j < L; j++)
                    if (hp_key_ok(p, sel, b, i, 0, j)) {
                        mpfr_sub(S[j], S[j], mx, MPFR_RNDN);
                        mpfr_exp(S[j], S[j], MPFR_RNDN);
                        mpfr_add(z, z, S[j], MPFR_RNDN);
                    }
                for (int c = 0; c < dv; c++) {
                    mpfr_set_zero(acc, 1);
                    for (int j = 0; j < L; j++)
                        if (hp_key_ok(p, sel, b, i, 0, j)) {
                            mpfr_set_d(x, t->v[0][(((size_t)b * L + j) * p->Hkv + g) * dv + c], MPFR_RNDN);
                            mpfr_add_d(x, x, p->v_bias[0], MPFR_RNDN);
                            mpfr_mul(x, x, S[j], MPFR_RNDN);
                            mpfr_add(acc, acc, x, MPFR_RNDN);
                        }
                    mpfr_div(acc, acc, z, MPFR_RNDN);
                    mpfr_mul_d(acc, acc, p->out_scale, MPFR_RNDN);
                    orow[c] = to_d(acc);
                }
                mpfr_log(z, z, MPFR_RNDN);
                mpfr_add(z, z, mx, MPFR_RNDN);
                lse[((size_t)b * p->H + h) * L + i] = to_d(z);
            }
        }
    for (int j = 0; j < L; j++)
        mpfr_clear(S[j]);
    free(S);
    mpfr_clears(s, acc, x, mx, z, (mpfr_ptr)0);
}

void hp_attention_n2(const tcase *t, const int32_t *sel, mpfr_prec_t prec, double *o, double *lse)
{
    const nsx_problem *p = &t->p;
    int L = p->L, d = p->d, dv = p->dv;
    size_t L3 = (size_t)L * L * L;
    mpfr_t s, acc, x, w, z, mx, *T = malloc(L3 * sizeof *T);
    char *mask = malloc(L3);
    mpfr_inits2(prec, s, acc, x, w, z, mx, (mpfr_ptr)0);
    for (size_t e = 0; e < L3; e++)
        mpfr_init2(T[e], prec);
    scale(s, p);
/* r = X_m[j, l] + bias_m, in MPFR (exact at this precision) */
#define K(r, m, b, j, g, l) (mpfr_set_d(r, t->k[m][(((size_t)(b) * L + (j)) * p->Hkv + (g)) * d + (l)], MPFR_RNDN), \
                             mpfr_add_d(r, r, p->k_bias[m], MPFR_RNDN))
#define V(r, m, b, j, g, c) (mpfr_set_d(r, t->v[m][(((size_t)(b) * L + (j)) * p->Hkv + (g)) * dv + (c)], MPFR_RNDN), \
                             mpfr_add_d(r, r, p->v_bias[m], MPFR_RNDN))
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++) {
            int g = h / (p->H / p->Hkv);
            /* the full tensor T[i,j,k] = s sum_l Q[i,l] K1[j,l] K2[k,l], and its mask */
            for (int i = 0; i < L; i++)
                for (int j = 0; j < L; j++)
                    for (int k = 0; k < L; k++) {
                        size_t e = ((size_t)i * L + j) * L + k;
                        mask[e] = hp_key_ok(p, sel, b, i, 0, j) && hp_key_ok(p, sel, b, i, 1, k) &&
                                  !(p->distinct && j == k);
                        mpfr_set_zero(acc, 1);
                        for (int l = 0; l < d; l++) {
                            mpfr_set_d(x, t->q[(((size_t)b * L + i) * p->H + h) * d + l], MPFR_RNDN);
                            K(w, 0, b, j, g, l);
                            mpfr_mul(x, x, w, MPFR_RNDN);
                            K(w, 1, b, k, g, l);
                            mpfr_mul(x, x, w, MPFR_RNDN);
                            mpfr_add(acc, acc, x, MPFR_RNDN);
                        }
                        mpfr_mul(T[e], acc, s, MPFR_RNDN);
                    }
            for (int i = 0; i < L; i++) {
                size_t base = (size_t)i * L * L;
                int any = 0;
                for (size_t e = base; e < base + (size_t)L * L; e++)
                    if (mask[e] && (!any || mpfr_cmp(T[e], mx) > 0)) {
                        mpfr_set(mx, T[e], MPFR_RNDN);
                        any = 1;
                    }
                double *orow = o + (((size_t)b * L + i) * p->H + h) * dv;
                if (!any) {
                    for (int c = 0; c < dv; c++)
                        orow[c] = 0;
                    lse[((size_t)b * p->H + h) * L + i] = -INFINITY;
                    continue;
                }
                mpfr_set_zero(z, 1);
                for (size_t e = base; e < base + (size_t)L * L; e++)
                    if (mask[e]) {
                        mpfr_sub(T[e], T[e], mx, MPFR_RNDN);
                        mpfr_exp(T[e], T[e], MPFR_RNDN);
                        mpfr_add(z, z, T[e], MPFR_RNDN);
                    }
                for (int c = 0; c < dv; c++) {
                    mpfr_set_zero(acc, 1);
                    for (int j = 0; j < L; j++)
                        for (int k = 0; k < L; k++) {
                            size_t e = base + (size_t)j * L + k;
                            if (!mask[e])
                                continue;
                            V(w, 0, b, j, g, c);
                            V(x, 1, b, k, g, c);
                            if (p->reduce == NSX_REDUCE_PRODUCT)
                                mpfr_mul(w, w, x, MPFR_RNDN);
                            else
                                mpfr_add(w, w, x, MPFR_RNDN);
                            if (p->reduce == NSX_REDUCE_MEAN)
                                mpfr_div_ui(w, w, 2, MPFR_RNDN);
                            mpfr_mul(w, w, T[e], MPFR_RNDN);
                            mpfr_add(acc, acc, w, MPFR_RNDN);
                        }
                    mpfr_div(acc, acc, z, MPFR_RNDN);
                    mpfr_mul_d(acc, acc, p->out_scale, MPFR_RNDN);
                    orow[c] = to_d(acc);
                }
                mpfr_log(z, z, MPFR_RNDN);
                mpfr_add(z, z, mx, MPFR_RNDN);
                lse[((size_t)b * p->H + h) * L + i] = to_d(z);
            }
        }
#undef K
#undef V
    for (size_t e = 0; e < L3; e++)
        mpfr_clear(T[e]);
    free(T);
    free(mask);
    mpfr_clears(s, acc, x, w, z, mx, (mpfr_ptr)0);
}
