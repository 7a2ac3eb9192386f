/* Independent high-precision gradients for the tests (tests/hp_grad.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/hp.h"
#include "tests/hp_grad.h"

/* ---- dual numbers: x = v + d * eps, eps^2 = 0 ------------------------------ */

typedef struct dual {
    mpfr_t v, d;
} dual;

static void dinit(dual *x, mpfr_prec_t prec)
{
    mpfr_inits2(prec, x->v, x->d, (mpfr_ptr)0);
}

static void dclear(dual *x)
{
    mpfr_clears(x->v, x->d, (mpfr_ptr)0);
}

static void dzero(dual *x)
{
    mpfr_set_zero(x->v, 1);
    mpfr_set_zero(x->d, 1);
}

/* r = a + b (r may alias a or b) */
static void dadd(dual *r, const dual *a, const dual *b)
{
    mpfr_add(r->v, a->v, b->v, MPFR_RNDN);
    mpfr_add(r->d, a->d, b->d, MPFR_RNDN);
}

/* r = a * b (r may alias a; tmp is scratch) */
static void dmul(dual *r, const dual *a, const dual *b, mpfr_t tmp)
{
    mpfr_mul(tmp, a->v, b->d, MPFR_RNDN);
    mpfr_fma(r->d, a->d, b->v, tmp, MPFR_RNDN);
    mpfr_mul(r->v, a->v, b->v, MPFR_RNDN);
}

/* r = a * w for a constant w */
static void dscale(dual *r, const dual *a, const mpfr_t w)
{
    mpfr_mul(r->v, a->v, w, MPFR_RNDN);
    mpfr_mul(r->d, a->d, w, MPFR_RNDN);
}

/* r = a / b (r distinct from b; tmp is scratch) */
static void ddiv(dual *r, const dual *a, const dual *b, mpfr_t tmp)
{
    /* (a/b)' = (a' - (a/b) b') / b */
    mpfr_div(r->v, a->v, b->v, MPFR_RNDN);
    mpfr_mul(tmp, r->v, b->d, MPFR_RNDN);
    mpfr_sub(tmp, a->d, tmp, MPFR_RNDN);
    mpfr_div(r->d, tmp, b->v, MPFR_RNDN);
}

/* ---- the forward pass on dual numbers -------------------------------------- */

/* Which input element carries the derivative 1. */
enum { T_Q = 0, T_K = 1, T_V = 1 + NSX_MAX_ORDER };

typedef struct ad {
    const tcase *t;
    const int32_t *sel;
    const double *dout;
    int seed_tensor;
    size_t seed_index;
    dual *T;              /* [L^n] scores, then exponentials */
    char *ok;             /* [L^n] allowed */
    dual prod, fac, w, z, num, o;
    mpfr_t s, mx, tmp;
} ad;

/* x = value + bias, with derivative 1 when (tensor, index) is the seed */
static void load(ad *a, dual *x, int tensor, size_t index, double value, double bias)
{
    mpfr_set_d(x->v, value, MPFR_RNDN);
    mpfr_add_d(x->v, x->v, bias, MPFR_RNDN);
    mpfr_set_ui(x->d, tensor == a->seed_tensor && index == a->seed_index, MPFR_RNDN);
}

static int next_tuple(int *J, int n, int L)
{
    for (int m = n - 1; m >= 0; m--) {
        if (++J[m] < L)
            return 1;
        J[m] = 0;
    }
    return 0;
}

/* dF_row / dx for row (b, h, i): F_row = sum_c dO[i,c] O[i,c]. */
static void row_derivative(ad *a, int b, int h, int i, mpfr_t dF)
{
    const nsx_problem *p = &a->t->p;
    int n = p->n, L = p->L, g = h / (p->H / p->Hkv);
    int J[NSX_MAX_ORDER] = {0};
    size_t x = 0;
    int any = 0;

    /* scores T[J] = s sum_l Q[i,l] prod_m (K_m[j_m,l] + kb_m), masked */
    do {
        int ok = 1;
        for (int m = 0; m < n; m++)
            ok &= hp_key_ok(p, a->sel, b, i, m, J[m]);
        if (p->distinct)
            for (int m = 0; m < n; m++)
                for (int mm = m + 1; mm < n; mm++)
                    ok &= J[m] != J[mm];
        a->ok[x] = (char)ok;
        if (ok) {
            dual *t = &a->T[x];
            dzero(t);
            for (int l = 0; l < p->d; l++) {
                size_t qi = nsx_q_at(p, b, i, h, l);
                load(a, &a->prod, T_Q, qi, a->t->q[qi], 0);
                for (int m = 0; m < n; m++) {
                    size_t ki = nsx_k_at(p, b, J[m], g, l);
                    load(a, &a->fac, T_K + m, ki, a->t->k[m][ki], p->k_bias[m]);
                    dmul(&a->prod, &a->prod, &a->fac, a->tmp);
                }
                dadd(t, t, &a->prod);
            }
            dscale(t, t, a->s);
            if (!any || mpfr_cmp(t->v, a->mx) > 0)
                mpfr_set(a->mx, t->v, MPFR_RNDN);
            any = 1;
        }
        x++;
    } while (next_tuple(J, n, L));
    mpfr_set_zero(dF, 1);
    if (!any)
        return; /* empty slice: O = 0, whatever the inputs */
    /* e_J = exp(T_J - max), Z = sum e_J (the max is a constant shift) */
    size_t count = x;
    dzero(&a->z);
    for (x = 0; x < count; x++) {
        if (!a->ok[x])
            continue;
        dual *t = &a->T[x];
        mpfr_sub(t->v, t->v, a->mx, MPFR_RNDN);
        mpfr_exp(t->v, t->v, MPFR_RNDN);
        mpfr_mul(t->d, t->d, t->v, MPFR_RNDN);
        dadd(&a->z, &a->z, t);
    }
    for (int c = 0; c < p->dv; c++) {
        /* O[i,c] = out_scale sum_J e_J W[J,c] / Z */
        dzero(&a->num);
        for (int m = 0; m < n; m++)
            J[m] = 0;
        x = 0;
        do {
            if (a->ok[x]) {
                for (int m = 0; m < n; m++) {
                    size_t vi = nsx_v_at(p, b, J[m], g, c);
                    load(a, &a->fac, T_V + m, vi, a->t->v[m][vi], p->v_bias[m]);
                    if (m == 0)
                        mpfr_set(a->w.v, a->fac.v, MPFR_RNDN), mpfr_set(a->w.d, a->fac.d, MPFR_RNDN);
                    else if (p->reduce == NSX_REDUCE_PRODUCT)
                        dmul(&a->w, &a->w, &a->fac, a->tmp);
                    else
                        dadd(&a->w, &a->w, &a->fac);
                }
                if (p->reduce == NSX_REDUCE_MEAN) {
                    mpfr_div_ui(a->w.v, a->w.v, (unsigned long)n, MPFR_RNDN);
                    mpfr_div_ui(a->w.d, a->w.d, (unsigned long)n, MPFR_RNDN);
                }
                dmul(&a->w, &a->w, &a->T[x], a->tmp);
                dadd(&a->num, &a->num, &a->w);
            }
            x++;
        } while (next_tuple(J, n, L));
        ddiv(&a->o, &a->num, &a->z, a->tmp);
        /* dF += dO[i,c] out_scale dO/dx */
        mpfr_mul_d(a->tmp, a->o.d, p->out_scale, MPFR_RNDN);
        mpfr_mul_d(a->tmp, a->tmp, a->dout[nsx_o_at(p, b, i, h, c)], MPFR_RNDN);
        mpfr_add(dF, dF, a->tmp, MPFR_RNDN);
    }
}

static void scale_of(mpfr_t s, const nsx_problem *p)
{
    if (p->score_scale_rsqrt_d) {
        mpfr_set_ui(s, (unsigned long)p->d, MPFR_RNDN);
        mpfr_rec_sqrt(s, s, MPFR_RNDN);
    } else {
        mpfr_set_d(s, p->score_scale, MPFR_RNDN);
    }
}

static double to_d(const mpfr_t x)
{
    return mpfr_zero_p(x) ? 0.0 : mpfr_get_d(x, MPFR_RNDN);
}

void hp_grad_ad(const tcase *t, const int32_t *sel, const double *dout, mpfr_prec_t prec,
                double *dq, double **dk, double **dv)
{
    const nsx_problem *p = &t->p;
    size_t Ln = 1;
    for (int m = 0; m < p->n; m++)
        Ln *= (size_t)p->L;
    ad a;
    memset(&a, 0, sizeof a);
    a.t = t, a.sel = sel, a.dout = dout;
    a.T = malloc(Ln * sizeof *a.T);
    a.ok = malloc(Ln);
    if (!a.T || !a.ok)
        abort();
    for (size_t x = 0; x < Ln; x++)
        dinit(&a.T[x], prec);
    dinit(&a.prod, prec), dinit(&a.fac, prec), dinit(&a.w, prec);
    dinit(&a.z, prec), dinit(&a.num, prec), dinit(&a.o, prec);
    mpfr_inits2(prec, a.s, a.mx, a.tmp, (mpfr_ptr)0);
    scale_of(a.s, p);
    mpfr_t dF, acc;
    mpfr_inits2(prec, dF, acc, (mpfr_ptr)0);
    int Hg = p->H / p->Hkv;

    /* dq[b,i,h,l]: only row (b, h, i) reads q[b,i,h,:] */
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++)
            for (int h = 0; h < p->H; h++)
                for (int l = 0; l < p->d; l++) {
                    a.seed_tensor = T_Q;
                    a.seed_index = nsx_q_at(p, b, i, h, l);
                    row_derivative(&a, b, h, i, dF);
                    dq[a.seed_index] = to_d(dF);
                }
    /* dk_m, dv_m of (b, j, g): every row of the heads of g */
    for (int tensor = T_K; tensor < T_V + p->n; tensor++) {
        if (tensor >= T_K + p->n && tensor < T_V)
            continue;
        int is_k = tensor < T_V, m = is_k ? tensor - T_K : tensor - T_V;
        int width = is_k ? p->d : p->dv;
        for (int b = 0; b < p->B; b++)
            for (int j = 0; j < p->L; j++)
                for (int g = 0; g < p->Hkv; g++)
                    for (int l = 0; l < width; l++) {
                        a.seed_tensor = tensor;
                        a.seed_index = is_k ? nsx_k_at(p, b, j, g, l) : nsx_v_at(p, b, j, g, l);
                        mpfr_set_zero(acc, 1);
                        for (int h = g * Hg; h < (g + 1) * Hg; h++)
                            for (int i = 0; i < p->L; i++) {
                                row_derivative(&a, b, h, i, dF);
                                mpfr_add(acc, acc, dF, MPFR_RNDN);
                            }
                        (is_k ? dk : dv)[m][a.seed_index] = to_d(acc);
                    }
    }
    for (size_t x = 0; x < Ln; x++)
        dclear(&a.T[x]);
    dclear(&a.prod), dclear(&a.fac), dclear(&a.w);
    dclear(&a.z), dclear(&a.num), dclear(&a.o);
    mpfr_clears(a.s, a.mx, a.tmp, dF, acc, (mpfr_ptr)0);
    free(a.T);
    free(a.ok);
}

/* ---- n = 1: the closed-form attention backward ---------------------------- */

void hp_grad_n1(const tcase *t, const int32_t *sel, const double *dout, mpfr_prec_t prec,
                double *dq, double *dk, double *dv)
{
    const nsx_problem *p = &t->p;
    int L = p->L, d = p->d, dvw = p->dv, Hg = p->H / p->Hkv;
    size_t nk = nsx_k_size(p), nv = nsx_v_size(p);
    mpfr_t s, x, y, mx, z, delta, *P = malloc((size_t)L * sizeof *P), *dS = malloc((size_t)L * sizeof *dS);
    mpfr_t *DK = malloc(nk * sizeof *DK), *DV = malloc(nv * sizeof *DV);
    mpfr_inits2(prec, s, x, y, mx, z, delta, (mpfr_ptr)0);
    for (int j = 0; j < L; j++)
        mpfr_inits2(prec, P[j], dS[j], (mpfr_ptr)0);
    for (size_t e = 0; e < nk; e++)
        mpfr_init2(DK[e], prec), mpfr_set_zero(DK[e], 1);
    for (size_t e = 0; e < nv; e++)
        mpfr_init2(DV[e], prec), mpfr_set_zero(DV[e], 1);
    scale_of(s, p);
#define KV(r, arr, bias, b, j, g, w, c) (mpfr_set_d(r, arr[(((size_t)(b) * L + (j)) * p->Hkv + (g)) * (w) + (c)], MPFR_RNDN), \
                                         mpfr_add_d(r, r, bias, MPFR_RNDN))
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++) {
            int g = h / Hg;
            for (int i = 0; i < L; i++) {
                const double *qrow = t->q + (((size_t)b * L + i) * p->H + h) * d;
                const double *dO = dout + (((size_t)b * L + i) * p->H + h) * dvw;
                double *dqrow = dq + (((size_t)b * L + i) * p->H + h) * d;
                int any = 0;
                /* S = s q . (k + kb); P = softmax(S) */
                for (int j = 0; j < L; j++) {
                    if (!hp_key_ok(p, sel, b, i, 0, j))
                        continue;
                    mpfr_set_zero(P[j], 1);
                    for (int l = 0; l < d; l++) {
                        KV(x, t->k[0], p->k_bias[0], b, j, g, d, l);
                        mpfr_mul_d(x, x, qrow[l], MPFR_RNDN);
                        mpfr_add(P[j], P[j], x, MPFR_RNDN);
                    }
                    mpfr_mul(P[j], P[j], s, MPFR_RNDN);
                    if (!any || mpfr_cmp(P[j], mx) > 0)
                        mpfr_set(mx, P[j], MPFR_RNDN);
                    any = 1;
                }
                for (int l = 0; l < d; l++)
                    dqrow[l] = 0;
                if (!any)
                    continue;
                mpfr_set_zero(z, 1);
                for (int j = 0; j < L; j++)
                    if (hp_key_ok(p, sel, b, i, 0, j)) {
                        mpfr_sub(P[j], P[j], mx, MPFR_RNDN);
                        mpfr_exp(P[j], P[j], MPFR_RNDN);
                        mpfr_add(z, z, P[j], MPFR_RNDN);
                    }
                for (int j = 0; j < L; j++)
                    if (hp_key_ok(p, sel, b, i, 0, j))
                        mpfr_div(P[j], P[j], z, MPFR_RNDN);
                /* delta = rowsum(dO * O), O = out_scale P (V + vb) */
                mpfr_set_zero(delta, 1);
                for (int c = 0; c < dvw; c++) {
                    mpfr_set_zero(y, 1);
                    for (int j = 0; j < L; j++)
                        if (hp_key_ok(p, sel, b, i, 0, j)) {
                            KV(x, t->v[0], p->v_bias[0], b, j, g, dvw, c);
                            mpfr_mul(x, x, P[j], MPFR_RNDN);
                            mpfr_add(y, y, x, MPFR_RNDN);
                        }
                    mpfr_mul_d(y, y, p->out_scale, MPFR_RNDN);
                    mpfr_mul_d(y, y, dO[c], MPFR_RNDN);
                    mpfr_add(delta, delta, y, MPFR_RNDN);
                }
                for (int j = 0; j < L; j++) {
                    if (!hp_key_ok(p, sel, b, i, 0, j))
                        continue;
                    /* dP_j = out_scale dO . (V_j + vb); dS_j = P_j (dP_j - delta) */
                    mpfr_set_zero(y, 1);
                    for (int c = 0; c < dvw; c++) {
                        KV(x, t->v[0], p->v_bias[0], b, j, g, dvw, c);
                        mpfr_mul_d(x, x, dO[c], MPFR_RNDN);
                        mpfr_add(y, y, x, MPFR_RNDN);
                    }
                    mpfr_mul_d(y, y, p->out_scale, MPFR_RNDN);
                    mpfr_sub(y, y, delta, MPFR_RNDN);
                    mpfr_mul(dS[j], y, P[j], MPFR_RNDN);
                    /* dV_j += out_scale P_j dO; dK_j += s dS_j q */
                    for (int c = 0; c < dvw; c++) {
                        mpfr_mul_d(x, P[j], dO[c], MPFR_RNDN);
                        mpfr_mul_d(x, x, p->out_scale, MPFR_RNDN);
                        size_t e = (((size_t)b * L + j) * p->Hkv + g) * dvw + c;
                        mpfr_add(DV[e], DV[e], x, MPFR_RNDN);
                    }
                    for (int l = 0; l < d; l++) {
                        mpfr_mul_d(x, dS[j], qrow[l], MPFR_RNDN);
                        mpfr_mul(x, x, s, MPFR_RNDN);
                        size_t e = (((size_t)b * L + j) * p->Hkv + g) * d + l;
                        mpfr_add(DK[e], DK[e], x, MPFR_RNDN);
                    }
                }
                /* dQ = s dS K (the key bias's term is s kb sum_j dS_j = 0) */
                for (int l = 0; l < d; l++) {
                    mpfr_set_zero(y, 1);
                    for (int j = 0; j < L; j++)
                        if (hp_key_ok(p, sel, b, i, 0, j)) {
                            mpfr_mul_d(x, dS[j], t->k[0][(((size_t)b * L + j) * p->Hkv + g) * d + l], MPFR_RNDN);
                            mpfr_add(y, y, x, MPFR_RNDN);
                        }
                    mpfr_mul(y, y, s, MPFR_RNDN);
                    dqrow[l] = to_d(y);
                }
            }
        }
#undef KV
    for (size_t e = 0; e < nk; e++)
        dk[e] = to_d(DK[e]), mpfr_clear(DK[e]);
    for (size_t e = 0; e < nv; e++)
        dv[e] = to_d(DV[e]), mpfr_clear(DV[e]);
    for (int j = 0; j < L; j++)
        mpfr_clears(P[j], dS[j], (mpfr_ptr)0);
    mpfr_clears(s, x, y, mx, z, delta, (mpfr_ptr)0);
    free(P), free(dS), free(DK), free(DV);
}
