/* `nsimplex bench --bf16` (runner/bf16_bench.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nsimplex/rng.h"
#include "runner/bf16_bench.h"
#include "simd/bf16.h"
#include "simd/simd.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* count values uniform in [-1, 1), rounded to bf16, both as bf16 and widened. */
static int fill(nsx_rng *g, size_t count, uint16_t **h, float **f)
{
    *h = malloc(count * sizeof **h);
    *f = malloc(count * sizeof **f);
    if (!*h || !*f)
        return -1;
    for (size_t t = 0; t < count; t++) {
        (*h)[t] = nsx_bf16_round((float)(nsx_rng_uniform(g) * 2.0 - 1.0));
        (*f)[t] = nsx_bf16_widen((*h)[t]);
    }
    return 0;
}

/* Per (b, i), topk distinct keys among those the query may select (j <= i
   when causal), a partial Fisher-Yates draw; -1 pads when fewer. */
static int fill_sel(nsx_rng *g, const nsx_kernel_problem *p, int32_t *sel)
{
    int *pool = malloc((size_t)p->L * sizeof *pool);
    if (!pool)
        return -1;
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            int32_t *row = sel + ((size_t)b * p->L + i) * p->topk;
            const int n = p->causal ? i + 1 : p->L, take = n < p->topk ? n : p->topk;
            for (int j = 0; j < n; j++)
                pool[j] = j;
            for (int r = 0; r < take; r++) {
                int x = r + nsx_rng_below(g, n - r), tmp = pool[r];
                pool[r] = pool[x];
                pool[x] = tmp;
                row[r] = pool[r];
            }
            for (int r = take; r < p->topk; r++)
                row[r] = -1;
        }
    free(pool);
    return 0;
}

typedef struct bufs {
    uint16_t *hq, *hk[NSX_MAX_ORDER], *hv[NSX_MAX_ORDER];
    float *fq, *fk[NSX_MAX_ORDER], *fv[NSX_MAX_ORDER];
    float *o16, *o32, *lse;
    int32_t *sel;
} bufs;

static void bufs_free(bufs *x)
{
    free(x->hq), free(x->fq), free(x->o16), free(x->o32), free(x->lse), free(x->sel);
    for (int m = 0; m < NSX_MAX_ORDER; m++)
        free(x->hk[m]), free(x->hv[m]), free(x->fk[m]), free(x->fv[m]);
}

/* One path, warm-up then the best of repeat; -1 and *rc on a refusal. */
static int time_path(const nsx_bench_opts *o, const nsx_kernel_problem *p, const bufs *x, int bf16,
                     int variant, int isa, double *best, int *rc)
{
    nsx_bf16_io hio = {.q = x->hq, .o = x->o16, .lse = x->lse};
    nsx_kernel_io fio = {.q = x->fq, .o = x->o32, .lse = x->lse};
    for (int m = 0; m < p->n; m++) {
        hio.k[m] = x->hk[m], hio.v[m] = x->hv[m];
        fio.k[m] = x->fk[m], fio.v[m] = x->fv[m];
    }
    *best = INFINITY;
    for (int run = 0; run <= o->repeat; run++) { /* run 0 is the warm-up */
        double t0 = now();
        *rc = bf16 ? nsx_simd_forward_bf16_variant(p, &hio, o->threads, variant)
                   : nsx_simd_forward_isa(p, &fio, o->threads, isa);
        double s = now() - t0;
        if (*rc != NSX_SIMD_OK)
            return -1;
        if (run > 0 && s < *best)
            *best = s;
    }
    return 0;
}

double nsx_bf16_products_per_tuple(const nsx_kernel_problem *p)
{
    return p->reduce == NSX_REDUCE_PRODUCT ? (double)p->d + p->dv : (double)p->d;
}

static void path_figures(const nsx_kernel_problem *p, uint64_t tuples, nsx_bf16_bench_path *f,
                         double elem_bytes)
{
    f->products = (double)tuples * nsx_bf16_products_per_tuple(p) / f->seconds;
    f->gflops = (double)tuples * nsx_bench_flops_per_tuple(p, 0) / f->seconds * 1e-9;
    const double rows = (double)p->B * p->L;
    f->input_mib = rows * (p->H * p->d + p->n * p->Hkv * (double)(p->d + p->dv)) * elem_bytes / (1 << 20);
}

int nsx_bench_bf16(const nsx_bench_opts *o, nsx_bf16_bench *r, nsx_err *err)
{
    nsx_kernel_problem p = o->p;
    memset(r, 0, sizeof *r);
    char why[200];
    const int variant = nsx_bf16_variant(why, sizeof why);
    if (variant < 0)
        return nsx_err_set(err, NSX_E_INPUT, "%s", why);
    const int isa = nsx_simd_isa(why, sizeof why);
    if (isa < 0)
        return nsx_err_set(err, NSX_E_INPUT, "%s", why);
    r->variant = nsx_bf16_variant_name(variant);
    r->isa = nsx_simd_isa_name(isa);
    r->threads = nsx_simd_threads(o->threads);
    r->runs = o->repeat;
    bufs x = {0};
    nsx_rng g = {.s = o->seed};
    const size_t rows = (size_t)p.B * p.L;
    int bad = fill(&g, rows * p.H * p.d, &x.hq, &x.fq);
    for (int m = 0; m < p.n && !bad; m++)
        bad = fill(&g, rows * p.Hkv * p.d, &x.hk[m], &x.fk[m]) ||
              fill(&g, rows * p.Hkv * p.dv, &x.hv[m], &x.fv[m]);
    x.o16 = malloc(rows * p.H * p.dv * sizeof *x.o16);
    x.o32 = malloc(rows * p.H * p.dv * sizeof *x.o32);
    x.lse = malloc(rows * p.H * sizeof *x.lse);
    bad = bad || !x.o16 || !x.o32 || !x.lse;
    if (!bad && p.topk > 0) {
        x.sel = malloc(rows * p.topk * sizeof *x.sel);
        bad = !x.sel || fill_sel(&g, &p, x.sel);
        p.sel = x.sel;
    }
    int rc = 0, krc = 0;
    if (bad) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "bench: out of memory for the inputs");
    } else {
        int c = nsx_simd_count_tuples(&p, 0, p.L, 1, NULL, &r->tuples);
        if (c == NSX_SIMD_EOVERFLOW)
            rc = nsx_err_set(err, NSX_E_TOO_LARGE, "bench: the tuple count exceeds 64 bits");
        else if (c == NSX_SIMD_ENOMEM)
            rc = nsx_err_set(err, NSX_E_NOMEM, "bench: out of memory counting the tuples");
        else if (c != NSX_SIMD_OK)
            rc = nsx_err_set(err, NSX_E_KERNEL_REFUSED, "bench: the shape is refused (code %d)", c);
    }
    if (!rc && (time_path(o, &p, &x, 1, variant, isa, &r->bf16.seconds, &krc) ||
                time_path(o, &p, &x, 0, variant, isa, &r->f32.seconds, &krc)))
        rc = krc == NSX_SIMD_ENOMEM ? nsx_err_set(err, NSX_E_NOMEM, "bench: out of memory in the kernel")
                                    : nsx_err_set(err, NSX_E_KERNEL_REFUSED, "bench: a path refused the shape (code %d)", krc);
    if (!rc) {
        path_figures(&p, r->tuples, &r->bf16, 2);
        path_figures(&p, r->tuples, &r->f32, 4);
        for (size_t t = 0; t < rows * p.H * p.dv; t++) {
            double e = fabs((double)x.o16[t] - (double)x.o32[t]);
            if (!(e <= r->max_o_diff))
                r->max_o_diff = e;
        }
    }
    bufs_free(&x);
    return rc;
}
