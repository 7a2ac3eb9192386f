/*
 * Measuring a kernel (`nsimplex bench`): one forward of n-simplicial
 * attention on random float32 inputs (fixed seed), timed as useful GFLOP/s
 * and as a share of the machine's measured peak, against the plain-loop
 * baseline (simd/naive.c) in the same process, with the peak memory.  The
 * CLI (cli/cmd_bench.c) parses options and prints what this measures.
 *
 * Useful flops: each allowed tuple (counted exactly, simd/count.c) needs
 *   product reducer: 2 d (its score: u . k_n, u the prefix's factor) plus
 *                    2 dv (its weight times the inner key's values, added)
 *                    = 2 (d + dv);
 *   sum and mean:    2 d + 2: the score, then its weight added into the row
 *                    and the column marginal; the values enter per key, not
 *                    per tuple, since sum_J A_J sum_m v_m[j_m] =
 *                    sum_m sum_j (sum_{J: j_m = j} A_J) v_m[j].
 * Exponentials, masks and the prefix products are not counted.
 *
 * The backward (--bwd: nsx_kernel_backward, timed alone after one forward
 * that gives it o and lse) per allowed tuple, counted as FlashAttention
 * counts its backward (the score is recomputed, and that counts):
 *   product reducer: 2 d (the score again) + 2 dv (dP, dO . W) +
 *                    2 d (dT times the inner key, into the prefix's dQ, dK
 *                    side) + 2 d (dT times the prefix row, into the inner
 *                    key's dK) + 2 dv (A times the prefix's dO o vp, into
 *                    the inner key's dV) + 2 dv (A times the inner key's
 *                    values, into the prefix keys' dV)
 *                    = 6 (d + dv); for n = 1 there are no prefix keys, so
 *                    the last term goes: 6 d + 4 dv;
 *   sum and mean:    2 d + 2 d + 2 d + 4 = 6 d + 4: the score and the two
 *                    products with dT; dP is a row term plus a column term
 *                    (1), dT = A (dP - Delta) (2), and A enters dV through
 *                    its row and column sums (1, counted once).
 * The forward run before it is not timed.
 */
#ifndef NSX_RUNNER_BENCH_H
#define NSX_RUNNER_BENCH_H

#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/kernel.h"

/* The shape every bench starts from, as a recipe (vectors/recipe.h): the
   2-simplicial paper's, with windows 512,32 when n = 2 and none given. */
#define NSX_BENCH_SHAPE "n=2 B=1 L=2048 H=4 Hkv=1 d=64 dv=64 causal=1 reduce=product"

typedef struct nsx_bench_opts {
    nsx_kernel_problem p;   /* the shape (nsx_bench_shape); p.sel is set by nsx_bench_run */
    int repeat;             /* timed runs after a warm-up, >= 1 */
    int threads;            /* 0: all cores */
    const char *kernel;     /* a library behind the ABI, or NULL: the in-process SIMD kernel */
    double naive_seconds;   /* budget for the baseline; 0 skips it */
    double peak_seconds;    /* length of one peak FMA trial */
    uint64_t seed;          /* the inputs' seed */
    int json;               /* for the caller: print the JSON report */
    int bwd;                /* 1: time the backward (the forward once first, untimed) */
} nsx_bench_opts;

/* The defaults: NSX_BENCH_SHAPE, 3 repeats, all cores, the SIMD kernel,
   10 s for the baseline, 0.3 s peak trials, seed 1. */
void nsx_bench_defaults(nsx_bench_opts *o);

/*
 * The shape of o from a recipe (nsx_recipe_parse's keys, after
 * NSX_BENCH_SHAPE): n B L H Hkv d dv reduce causal distinct w kb vb scale
 * out, and a random selection with sel=indices k=K [dims=...].  A single
 * window w=W applies to every dimension; otherwise give n.  Keys about
 * the inputs (fmt, dist, ties, empty, invalid, leak, probe) and computed
 * selections do not apply.  0, or NSX_E_INPUT with err = "recipe: ...".
 */
int nsx_bench_shape(nsx_bench_opts *o, const char *recipe, nsx_err *err);

/* Useful flops per allowed tuple of p (above): the forward's, or with bwd
   the backward's. */
double nsx_bench_flops_per_tuple(const nsx_kernel_problem *p, int bwd);

/* The plain-loop baseline's measurement. */
typedef struct nsx_bench_naive {
    double seconds;     /* measured */
    double estimate;    /* for every row: measured, or scaled by the tuple counts */
    int rows, step;     /* rows measured, every step-th (0: one calibration row) */
    double max_abs_diff, max_lse_diff; /* against the kernel on those rows */
} nsx_bench_naive;

typedef struct nsx_bench_result {
    char kernel[128];       /* the kernel's name */
    const char *isa, *peak_isa; /* static strings */
    int threads;
    uint64_t tuples;        /* allowed tuples, exact */
    double flops_per_tuple, seconds, gflops, peak, rss_mib, io_mib, scratch_kib;
    double partial_mib;     /* --bwd: the partial dk, dv of the backward's slots (in the RSS bound) */
    int runs;               /* timed runs the time is the best of */
    int naive_done;
    nsx_bench_naive nr;
} nsx_bench_result;

/* The peak RSS allowed beyond the inputs and outputs, in MiB. */
#define NSX_BENCH_RSS_SLACK_MIB 64

/*
 * Opens the kernel, fills the inputs, measures the peak, counts the
 * tuples, times the kernel (a warm-up, then the best of o->repeat; a
 * warm-up of 10 s or more is the only run) and the baseline.  0, or an
 * error kind with err set: NSX_E_INPUT (the kernel cannot be opened),
 * NSX_E_KERNEL_REFUSED or NSX_E_KERNEL_ERROR (the kernel's return),
 * NSX_E_TOO_LARGE (the tuple count overflows 64 bits), NSX_E_NOMEM.
 */
int nsx_bench_run(nsx_bench_opts *o, nsx_bench_result *r, nsx_err *err);

/* The result as one JSON object on one line (malloc'd; NULL when out of
   memory): the shape, the kernel and the figures. */
char *nsx_bench_json(const nsx_bench_opts *o, const nsx_bench_result *r);

#endif
