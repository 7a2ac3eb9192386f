/*
 * The plain-loop float32 baseline (simd/simd.h, nsx_simd_naive): what the
 * equations say, written the obvious way, for the benchmark's ratio.  No
 * candidate lists, no factoring of the score, no blocking, no intrinsics.
 * Each dimension's loop runs over all of 0..L-1 and tests that dimension's
 * part of the mask (E2) (causal, window, selection by scanning the row), so
 * a disallowed j_m skips the tuples below it; distinct is tested per tuple.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "simd/simd.h"

typedef struct naive_row {
    const nsx_kernel_problem *p;
    const nsx_kernel_io *io;
    int b, h, g, i;
    int J[NSX_MAX_ORDER];
    int pass;       /* 1: the max; 2: the sum and the values */
    float max, sum;
    float *acc;     /* [dv] */
} naive_row;

/* Dimension m's own part of (E2) for key j.  Deliberate independent copy of
   core/slice.c's nsx_key_allowed: simd/ is code under test. */
static int dim_allowed(const naive_row *r, int m, int j)
{
    const nsx_kernel_problem *p = r->p;
    const int i = r->i, w = p->window[m];
    if (p->causal && j > i)
        return 0;
    if (w > 0 && (j <= i - w || (!p->causal && j - i >= w))) /* i + w may overflow */
        return 0;
    if (p->topk > 0 && (p->sel_dims >> m & 1u)) {
        const int32_t *row = p->sel + ((size_t)r->b * p->L + i) * p->topk;
        for (int t = 0; t < p->topk; t++)
            if (row[t] == j)
                return 1;
        return 0;
    }
    return 1;
}

/* (E1) */
static float score(const naive_row *r)
{
    const nsx_kernel_problem *p = r->p;
    const float *q = r->io->q + (((size_t)r->b * p->L + r->i) * p->H + r->h) * p->d;
    float t = 0.0f;
    for (int l = 0; l < p->d; l++) {
        float prod = q[l];
        for (int m = 0; m < p->n; m++) {
            const float *k = r->io->k[m] + (((size_t)r->b * p->L + r->J[m]) * p->Hkv + r->g) * p->d;
            prod *= k[l] + (float)p->k_bias[m];
        }
        t += prod;
    }
    return (float)p->score_scale * t;
}

/* (E5) times the weight a, added to acc. */
static void add_values(naive_row *r, float a)
{
    const nsx_kernel_problem *p = r->p;
    for (int c = 0; c < p->dv; c++) {
        float w = p->reduce == NSX_REDUCE_PRODUCT ? 1.0f : 0.0f;
        for (int m = 0; m < p->n; m++) {
            const float *v = r->io->v[m] + (((size_t)r->b * p->L + r->J[m]) * p->Hkv + r->g) * p->dv;
            float x = v[c] + (float)p->v_bias[m];
            w = p->reduce == NSX_REDUCE_PRODUCT ? w * x : w + x;
        }
        if (p->reduce == NSX_REDUCE_MEAN)
            w /= (float)p->n;
        r->acc[c] += a * w;
    }
}

static void visit(naive_row *r, int m)
{
    const nsx_kernel_problem *p = r->p;
    if (m == p->n) {
        for (int a = 1; a < p->n && p->distinct; a++)
            for (int z = 0; z < a; z++)
                if (r->J[a] == r->J[z])
                    return;
        float t = score(r);
        if (r->pass == 1) {
            if (t > r->max)
                r->max = t;
        } else {
            float e = expf(t - r->max);
            r->sum += e;
            add_values(r, e);
        }
        return;
    }
    for (int j = 0; j < p->L; j++) {
        if (!dim_allowed(r, m, j))
            continue;
        r->J[m] = j;
        visit(r, m + 1);
    }
}

int nsx_simd_naive(const nsx_kernel_problem *p, const nsx_kernel_io *io, int i0, int i1,
                   int step, int threads)
{
    if (nsx_simd_check(p, io, NULL, 0) || i0 < 0 || i1 > p->L || step < 1)
        return NSX_SIMD_UNSUPPORTED;
    if (i1 <= i0)
        return NSX_SIMD_OK;
    const long rows = (i1 - i0 + step - 1) / step, items = rows * p->B * p->H;
    const int T = nsx_simd_threads(threads);
    float *accs = malloc((size_t)T * p->dv * sizeof *accs);
    if (!accs)
        return NSX_SIMD_ENOMEM;
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
    for (long it = 0; it < items; it++) {
        naive_row r = {.p = p, .io = io, .pass = 1, .max = -INFINITY, .sum = 0.0f};
        r.i = i0 + (int)(it / ((long)p->B * p->H)) * step;
        r.b = (int)(it / p->H % p->B);
        r.h = (int)(it % p->H);
        r.g = r.h / (p->H / p->Hkv);
        r.acc = accs + (size_t)omp_get_thread_num() * p->dv;
        memset(r.acc, 0, (size_t)p->dv * sizeof *r.acc);
        visit(&r, 0);
        r.pass = 2;
        if (r.max != -INFINITY)
            visit(&r, 0);
        float *o = io->o + (((size_t)r.b * p->L + r.i) * p->H + r.h) * p->dv;
        for (int c = 0; c < p->dv; c++)
            o[c] = r.sum > 0.0f ? (float)p->out_scale * r.acc[c] / r.sum : 0.0f;
        if (io->lse)
            io->lse[((size_t)r.b * p->H + r.h) * p->L + r.i] =
                r.sum > 0.0f ? r.max + logf(r.sum) : -INFINITY;
    }
    free(accs);
    return NSX_SIMD_OK;
}
