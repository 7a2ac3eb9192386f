/* Measuring the optimized indexer (runner/idx_bench.h). */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "io/atomic.h"
#include "nsimplex/rng.h"
#include "runner/idx_bench.h"
#include "simd/simd.h"

void nsx_idx_bench_defaults(nsx_idx_bench_opts *o)
{
    *o = (nsx_idx_bench_opts){
        .p = {.B = 1, .L = 4096, .source = NSX_SIMD_IDX_INDEXER, .Hi = 64, .di = 128,
              .act = NSX_SIMD_ACT_RELU, .idx_scale = 1.0 / sqrt(128.0), .causal = 1, .k = 2048},
        .repeat = 3, .threads = 0, .peak_seconds = 0.3, .seed = 1,
    };
}

/* Uniform in [-1, 1), 24 random bits: fast enough for 10^8 values (the
   normals of nsimplex/rng.h go through MPFR). */
static void fill(float *x, size_t count, nsx_rng *r)
{
    for (size_t t = 0; t < count; t++)
        x[t] = (float)((int32_t)(nsx_rng_next(r) >> 40) - (1 << 23)) * 0x1p-23f;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *act_name(int act)
{
    return act == NSX_SIMD_ACT_RELU ? "relu" : act == NSX_SIMD_ACT_SOFTMAX ? "softmax" : "identity";
}

int nsx_idx_bench_run(const nsx_idx_bench_opts *o, nsx_idx_bench_result *r, nsx_err *err)
{
    const nsx_simd_idx_problem *p = &o->p;
    char why[200];
    *r = (nsx_idx_bench_result){0};
    if (nsx_simd_indexer_check(p, &(nsx_simd_idx_io){.idx_q = (float *)1, .idx_k = (float *)1,
                                                     .idx_w = (float *)1}, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "indexer shape: %s", why);
    int isa = nsx_simd_isa(why, sizeof why);
    if (isa < 0)
        return nsx_err_set(err, NSX_E_INPUT, "%s", why);
    const size_t rows = (size_t)p->B * p->L;
    float *q = malloc(rows * p->Hi * p->di * sizeof *q), *k = malloc(rows * p->di * sizeof *k);
    float *w = malloc(rows * p->Hi * sizeof *w);
    int32_t *sel = malloc(rows * p->k * sizeof *sel);
    int rc = 0;
    if (!q || !k || !w || !sel) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "indexer bench: out of memory");
        goto done;
    }
    nsx_rng g = {o->seed};
    fill(q, rows * p->Hi * p->di, &g);
    fill(k, rows * p->di, &g);
    fill(w, rows * p->Hi, &g);
    nsx_simd_idx_io io = {.idx_q = q, .idx_k = k, .idx_w = w, .sel = sel};
    r->isa = nsx_simd_isa_name(isa);
    r->act = act_name(p->act);
    r->threads = nsx_simd_threads(o->threads);
    r->pairs = (uint64_t)p->B * (p->causal ? (uint64_t)p->L * (p->L + 1) / 2 : (uint64_t)p->L * p->L);
    r->flops_per_pair = (double)p->Hi * (2.0 * p->di + 2);
    r->scratch_kib = (double)nsx_simd_indexer_scratch_bytes(p) / 1024;
    r->io_mib = (double)((rows * p->Hi * p->di + rows * p->di + rows * p->Hi) * sizeof(float) +
                         rows * p->k * sizeof(int32_t)) / (1 << 20);
    r->peak = nsx_simd_peak_gflops(isa, o->threads, o->peak_seconds);
    r->seconds = INFINITY;
    for (int run = 0; run <= o->repeat; run++) { /* run 0 is the warm-up */
        double t0 = now();
        int s = nsx_simd_indexer_isa(p, &io, o->threads, isa);
        double t = now() - t0;
        if (s == NSX_SIMD_ENOMEM) {
            rc = nsx_err_set(err, NSX_E_NOMEM, "indexer bench: out of memory");
            goto done;
        }
        if (s != NSX_SIMD_OK) {
            rc = nsx_err_set(err, NSX_E_INTERNAL, "indexer bench: the indexer returned %d", s);
            goto done;
        }
        if (run > 0 && t < r->seconds)
            r->seconds = t;
    }
    r->runs = o->repeat;
    if (o->sel_out) {
        nsx_atomic a;
        if ((rc = nsx_atomic_open(&a, o->sel_out, err)))
            goto done;
        if ((rc = nsx_atomic_write(&a, sel, rows * p->k * sizeof *sel, err)) || (rc = nsx_atomic_commit(&a, err))) {
            nsx_atomic_abort(&a);
            goto done;
        }
    }
    r->pairs_per_s = (double)r->pairs / r->seconds;
    r->gflops = r->pairs_per_s * r->flops_per_pair * 1e-9;
done:
    free(q), free(k), free(w), free(sel);
    return rc;
}
