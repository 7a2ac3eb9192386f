/* The problem description: defaults, validation, sizes (problem.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <mpfr.h>

#include "nsimplex/problem.h"

void nsx_problem_defaults(nsx_problem *p)
{
    memset(p, 0, sizeof *p);
    p->n = 1;
    p->B = p->L = p->H = p->Hkv = p->d = p->dv = 1;
    p->reduce = NSX_REDUCE_PRODUCT;
    p->score_scale_rsqrt_d = 1;
    p->score_scale = 1.0;
    p->out_scale = 1.0;
    p->causal = 1;
    p->sel.source = NSX_SEL_NONE;
    p->input_format = NSX_FORMAT_F64;
}

/* RN(1/sqrt(d)): MPFR's rec_sqrt is correctly rounded at 53 bits, where
   1.0 / sqrt(d) in binary64 rounds twice (wrong for d = 8, 32, 128, ...). */
double nsx_problem_score_scale(const nsx_problem *p)
{
    if (!p->score_scale_rsqrt_d)
        return p->score_scale;
    mpfr_t x;
    mpfr_init2(x, 53);
    mpfr_set_ui(x, (unsigned long)p->d, MPFR_RNDN);
    mpfr_rec_sqrt(x, x, MPFR_RNDN);
    double s = mpfr_get_d(x, MPFR_RNDN);
    mpfr_clear(x);
    return s;
}

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -1)

static int check_dim(const char *name, int v, char *why, size_t whylen)
{
    if (v < 1 || v > NSX_MAX_DIM)
        return WHY("%s = %d is outside 1..%d", name, v, NSX_MAX_DIM);
    return 0;
}

int nsx_problem_check(const nsx_problem *p, char *why, size_t whylen)
{
    const struct { const char *name; int v; } dims[] = {
        {"B", p->B}, {"L", p->L}, {"H", p->H}, {"Hkv", p->Hkv},
        {"d", p->d}, {"dv", p->dv},
    };
    if (p->n < 1 || p->n > NSX_MAX_ORDER)
        return WHY("n = %d is outside 1..%d", p->n, NSX_MAX_ORDER);
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++)
        if (check_dim(dims[t].name, dims[t].v, why, whylen))
            return -1;
    if (p->H % p->Hkv != 0)
        return WHY("H = %d is not a multiple of Hkv = %d", p->H, p->Hkv);
    if (p->reduce < NSX_REDUCE_PRODUCT || p->reduce > NSX_REDUCE_MEAN)
        return WHY("reduce = %d is not product (0), sum (1) or mean (2)", p->reduce);
    if (p->causal != 0 && p->causal != 1)
        return WHY("causal = %d is not 0 or 1", p->causal);
    if (p->distinct != 0 && p->distinct != 1)
        return WHY("distinct = %d is not 0 or 1", p->distinct);
    if (!p->score_scale_rsqrt_d && !isfinite(p->score_scale))
        return WHY("score_scale is not finite");
    if (!isfinite(p->out_scale))
        return WHY("out_scale is not finite");
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        if (m >= p->n && (p->window[m] || p->k_bias[m] || p->v_bias[m]))
            return WHY("dimension %d is set but n = %d", m + 1, p->n);
        if (p->window[m] < 0)
            return WHY("window %d = %d is negative", m + 1, p->window[m]);
        if (!isfinite(p->k_bias[m]) || !isfinite(p->v_bias[m]))
            return WHY("bias of dimension %d is not finite", m + 1);
    }
    if (p->input_format < NSX_FORMAT_F64 || p->input_format > NSX_FORMAT_BF16)
        return WHY("input_format = %d is not one of f64, f32, f16, bf16", p->input_format);

    const nsx_selection *s = &p->sel;
    if (s->source == NSX_SEL_NONE)
        return 0;
    if (s->source < NSX_SEL_NONE || s->source > NSX_SEL_SCORES)
        return WHY("selection source = %d is unknown", s->source);
    if (check_dim("selection k", s->k, why, whylen))
        return -1;
    if (s->dims == 0 || (s->dims >> p->n) != 0)
        return WHY("selection dims 0x%x: need a nonempty subset of 1..%d", s->dims, p->n);
    if (s->source == NSX_SEL_INDEXER) {
        if (s->act < NSX_ACT_RELU || s->act > NSX_ACT_IDENTITY)
            return WHY("indexer act = %d is not relu, softmax or identity", s->act);
        if (!isfinite(s->idx_scale))
            return WHY("indexer idx_scale is not finite");
        if (check_dim("indexer Hi", s->Hi, why, whylen) || check_dim("indexer di", s->di, why, whylen))
            return -1;
    }
    return 0;
}

size_t nsx_q_size(const nsx_problem *p) { return (size_t)p->B * p->L * p->H * p->d; }
size_t nsx_k_size(const nsx_problem *p) { return (size_t)p->B * p->L * p->Hkv * p->d; }
size_t nsx_v_size(const nsx_problem *p) { return (size_t)p->B * p->L * p->Hkv * p->dv; }
size_t nsx_o_size(const nsx_problem *p) { return (size_t)p->B * p->L * p->H * p->dv; }
size_t nsx_lse_size(const nsx_problem *p) { return (size_t)p->B * p->H * p->L; }
size_t nsx_sel_size(const nsx_problem *p)
{
    return p->sel.source == NSX_SEL_NONE ? 0 : (size_t)p->B * p->L * p->sel.k;
}

void nsx_problem_to_kernel(const nsx_problem *p, const int32_t *sel, nsx_kernel_problem *kp)
{
    memset(kp, 0, sizeof *kp);
    kp->n = p->n;
    kp->B = p->B;
    kp->L = p->L;
    kp->H = p->H;
    kp->Hkv = p->Hkv;
    kp->d = p->d;
    kp->dv = p->dv;
    kp->reduce = p->reduce;
    kp->causal = p->causal;
    kp->distinct = p->distinct;
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        kp->window[m] = p->window[m];
        kp->k_bias[m] = p->k_bias[m];
        kp->v_bias[m] = p->v_bias[m];
    }
    kp->score_scale = nsx_problem_score_scale(p);
    kp->out_scale = p->out_scale;
    if (p->sel.source != NSX_SEL_NONE) {
        kp->topk = p->sel.k;
        kp->sel_dims = p->sel.dims;
        kp->sel = sel;
    }
}
