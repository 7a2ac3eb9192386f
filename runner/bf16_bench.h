/*
 * `nsimplex bench --bf16`: the bf16-input path (simd/bf16.h) against the
 * float32 path (simd/simd.h) in the same run, on the same inputs (uniform
 * in [-1, 1), rounded to bf16, so both read the same values), as GEMM
 * products per second (the work VDPBF16PS does two per lane per
 * instruction): per allowed tuple, d for its score and, for the product
 * reducer, dv for its weight times the inner key's values; and as the
 * useful GFLOP/s of `nsimplex bench` (runner/bench.h).
 */
#ifndef NSX_RUNNER_BF16_BENCH_H
#define NSX_RUNNER_BF16_BENCH_H

#include <stdint.h>

#include "nsimplex/error.h"
#include "runner/bench.h"

typedef struct nsx_bf16_bench_path {
    double seconds;         /* best of the timed runs */
    double products;        /* GEMM products per second (nsx_bf16_products_per_tuple) */
    double gflops;          /* useful, nsx_bench_flops_per_tuple */
    double input_mib;       /* the inputs it reads (q, k, v) */
} nsx_bf16_bench_path;

typedef struct nsx_bf16_bench {
    const char *variant;    /* the bf16 path's: "portable" or "avx512bf16" */
    const char *isa;        /* the float32 path's */
    int threads, runs;
    uint64_t tuples;        /* allowed tuples, exact */
    nsx_bf16_bench_path bf16, f32;
    double max_o_diff;      /* max |o_bf16 - o_f32| (the operands' and weights' rounding) */
} nsx_bf16_bench;

/*
 * Fills the inputs of o->p (seed o->seed; a random given selection when
 * o->p.topk > 0), counts the tuples, then times each path: a warm-up, then
 * the best of o->repeat.  NSX_BF16 and NSX_ISA force the paths' variants.
 * 0, or NSX_E_INPUT (a forced variant this CPU lacks), NSX_E_TOO_LARGE,
 * NSX_E_NOMEM, NSX_E_KERNEL_REFUSED (a shape the paths refuse).
 */
/* GEMM products per allowed tuple of p: d + dv for the product reducer,
   d for sum and mean (their values enter per key, not per tuple). */
double nsx_bf16_products_per_tuple(const nsx_kernel_problem *p);

int nsx_bench_bf16(const nsx_bench_opts *o, nsx_bf16_bench *r, nsx_err *err);

#endif
