/* An instance of a problem: tensors, pairs, flags (instance.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/instance.h"

/* count zeroed doubles (at least one, so that NULL means failure) */
static double *zeros(size_t count, int *ok)
{
    double *x = calloc(count ? count : 1, sizeof *x);
    *ok &= x != NULL;
    return x;
}

static int32_t *zeros32(size_t count, int *ok)
{
    int32_t *x = calloc(count ? count : 1, sizeof *x);
    *ok &= x != NULL;
    return x;
}

int nsx_instance_alloc(nsx_instance *t, const nsx_problem *p)
{
    assert(p != NULL && p->n >= 1 && p->n <= NSX_MAX_ORDER);
    memset(t, 0, sizeof *t);
    t->p = *p;
    const size_t BL = (size_t)p->B * p->L;
    const int src = p->sel.source;
    int ok = 1;
    t->in.q = t->q = zeros(nsx_q_size(p), &ok);
    for (int m = 0; m < p->n; m++) {
        t->in.k[m] = t->k[m] = zeros(nsx_k_size(p), &ok);
        t->in.v[m] = t->v[m] = zeros(nsx_v_size(p), &ok);
    }
    if (src == NSX_SEL_INDICES)
        t->in.sel = t->sel = zeros32(nsx_sel_size(p), &ok);
    if (src == NSX_SEL_INDEXER) {
        t->in.idx_q = t->idx_q = zeros(BL * p->sel.Hi * p->sel.di, &ok);
        t->in.idx_k = t->idx_k = zeros(BL * p->sel.di, &ok);
        t->in.idx_w = t->idx_w = zeros(BL * p->sel.Hi, &ok);
        t->out.sel_scores = t->sel_scores = zeros(BL * p->L, &ok);
    }
    if (src == NSX_SEL_SCORES)
        t->in.idx_s = t->idx_s = zeros(BL * p->L, &ok);
    if (src == NSX_SEL_INDEXER || src == NSX_SEL_SCORES)
        t->out.sel = t->sel_out = zeros32(nsx_sel_size(p), &ok);
    t->out.o = t->o = zeros(nsx_o_size(p), &ok);
    t->out.lse = t->lse = zeros(nsx_lse_size(p), &ok);
    if (!ok) {
        nsx_instance_free(t);
        return NSX_E_NOMEM;
    }
    return 0;
}

int nsx_instance_alloc_grads(nsx_instance *t)
{
    const nsx_problem *p = &t->p;
    int ok = 1;
    t->in.dout = t->dout = zeros(nsx_o_size(p), &ok);
    t->out.dq = t->dq = zeros(nsx_q_size(p), &ok);
    for (int m = 0; m < p->n; m++) {
        t->out.dk[m] = t->dk[m] = zeros(nsx_k_size(p), &ok);
        t->out.dv[m] = t->dv[m] = zeros(nsx_v_size(p), &ok);
    }
    return ok ? 0 : NSX_E_NOMEM;
}

void nsx_instance_free(nsx_instance *t)
{
    free(t->dout), free(t->dq);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(t->dk[m]);
        free(t->dv[m]);
    }
    free(t->q);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(t->k[m]);
        free(t->v[m]);
    }
    free(t->idx_q), free(t->idx_k), free(t->idx_w), free(t->idx_s);
    free(t->sel), free(t->sel_out);
    free(t->o), free(t->lse), free(t->sel_scores);
    memset(t, 0, sizeof *t);
}

void nsx_instance_add_flag(nsx_instance *t, const char *flag)
{
    for (int f = 0; f < t->nflags; f++)
        if (strcmp(t->flags[f], flag) == 0)
            return;
    if (t->nflags < NSX_INSTANCE_MAX_FLAGS)
        t->flags[t->nflags++] = flag;
}

int nsx_instance_add_pair(nsx_instance *t, const nsx_pair *q)
{
    if (t->npairs == NSX_INSTANCE_MAX_PAIRS)
        return -1;
    t->pairs[t->npairs++] = *q;
    return 0;
}

void nsx_instance_flag_pair(nsx_instance *t, const nsx_pair *q)
{
    const char *flags[2];
    for (int f = 0, count = nsx_pair_flags(q, t->p.L, flags); f < count; f++)
        nsx_instance_add_flag(t, flags[f]);
}

int nsx_instance_inputs(nsx_instance *t, nsx_tensor_view *v)
{
    const nsx_problem *p = &t->p;
    int count = 0;
    v[count++] = (nsx_tensor_view){NSX_T_Q, 0, t->q, (size_t)p->H * p->d};
    for (int m = 0; m < p->n; m++) {
        v[count++] = (nsx_tensor_view){NSX_T_K, m, t->k[m], (size_t)p->Hkv * p->d};
        v[count++] = (nsx_tensor_view){NSX_T_V, m, t->v[m], (size_t)p->Hkv * p->dv};
    }
    if (t->idx_q) {
        v[count++] = (nsx_tensor_view){NSX_T_IDX_Q, 0, t->idx_q, (size_t)p->sel.Hi * p->sel.di};
        v[count++] = (nsx_tensor_view){NSX_T_IDX_K, 0, t->idx_k, (size_t)p->sel.di};
        v[count++] = (nsx_tensor_view){NSX_T_IDX_W, 0, t->idx_w, (size_t)p->sel.Hi};
    }
    if (t->idx_s)
        v[count++] = (nsx_tensor_view){NSX_T_IDX_S, 0, t->idx_s, (size_t)p->L};
    return count;
}
