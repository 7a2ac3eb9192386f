/*
 * Measuring the optimized indexer (`nsimplex bench --indexer`): E8 and E9
 * on random float32 inputs (fixed seed) at DeepSeek V3.2's shape by
 * default (L = 4096, Hi = 64, di = 128, top-k 2048, relu, causal), timed as
 * scored (query, key) pairs per second, as useful GFLOP/s and as a share of
 * the machine's measured peak.  The CLI (cli/cmd_bench_indexer.c) parses
 * options and prints what this measures.
 *
 * Scored pairs: every candidate (i, j) of every batch, B L (L + 1) / 2 with
 * causal on, B L^2 off.  Useful flops per pair: Hi (2 di + 2), the Hi dot
 * products of width di and the weighted sum over the heads; the scale, the
 * activation and the top-k are not counted (softmax's second pass and its
 * exponentials neither).
 */
#ifndef NSX_RUNNER_IDX_BENCH_H
#define NSX_RUNNER_IDX_BENCH_H

#include <stdint.h>

#include "nsimplex/error.h"
#include "simd/indexer.h"

typedef struct nsx_idx_bench_opts {
    nsx_simd_idx_problem p;  /* the shape; source INDEXER */
    int repeat;              /* timed runs after a warm-up, >= 1 */
    int threads;             /* 0: all cores */
    double peak_seconds;     /* length of one peak FMA trial */
    uint64_t seed;           /* the inputs' seed */
    const char *sel_out;     /* not NULL: the selection [B, L, k] written there
                                as raw int32 in host order (bench/torch_indexer_peer.py
                                --check-sel compares with it) */
} nsx_idx_bench_opts;

/* DeepSeek V3.2's shape: B 1, L 4096, Hi 64, di 128, k 2048, relu,
   idx_scale 1/sqrt(di), causal; 3 repeats, all cores, 0.3 s peak trials,
   seed 1. */
void nsx_idx_bench_defaults(nsx_idx_bench_opts *o);

typedef struct nsx_idx_bench_result {
    const char *isa, *act;  /* static strings */
    int threads;
    uint64_t pairs;         /* scored (query, key) pairs */
    double flops_per_pair, seconds, pairs_per_s, gflops, peak;
    int runs;               /* timed runs the time is the best of */
    double scratch_kib;     /* per thread, besides the packed keys */
    double io_mib;          /* the inputs and the selection */
} nsx_idx_bench_result;

/*
 * Fills the inputs, measures the peak, times nsx_simd_indexer (a warm-up,
 * then the best of o->repeat).  0, or an error kind with err set:
 * NSX_E_INPUT (the shape is refused, or NSX_ISA is bad), NSX_E_NOMEM,
 * NSX_E_IO (sel_out cannot be written).
 */
int nsx_idx_bench_run(const nsx_idx_bench_opts *o, nsx_idx_bench_result *r, nsx_err *err);

#endif
