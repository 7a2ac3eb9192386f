/*
 * The optimized float32 CPU implementation of (E1)-(E6) (docs/SPEC.md
 * section 1) behind the kernel ABI (include/nsimplex/kernel.h), its ISA
 * dispatch, the plain-loop baseline it is benchmarked against, the exact
 * tuple count the benchmark's flop count rests on, and the machine's peak.
 *
 * Every entry point takes the ABI's problem and buffers (float32, layouts of
 * kernel.h).  simd/abi/abi.c wraps nsx_simd_forward as the exported
 * nsx_kernel_forward of build/libnsimplex_simd.so.
 *
 * How the forward works (simd/forward.c): per (batch, kv head, query) the
 * candidate keys of each dimension are listed (causal, window, selection);
 * one dimension, the "inner" one, is packed into a panel (per query head,
 * with s q folded in); the others are enumerated as prefix tuples by an
 * odometer.  Each prefix gives a row u = (k_1 + kb_1) o ... (elementwise)
 * and its reduced value vector, and blocks of rows times blocks of inner keys
 * are GEMM-like tiles: scores, an online softmax over the whole slice (one
 * running max and sum per query head), then the value side.  Nothing of size
 * L^n is held; scratch per thread is O(MR d + panel) (nsx_simd_scratch_bytes).
 *
 * The backward (simd/backward.c, nsx_simd_backward) follows the same
 * tiling from the forward's saved o and lse: its tile (simd/bwd_kern.h,
 * one file per ISA, simd/bwd_<isa>.c) recomputes P and forms the six
 * products of E7; simd/abi/abi.c exports it as nsx_kernel_backward (ABI 3).
 */
#ifndef NSX_SIMD_H
#define NSX_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The instruction sets, one file each (simd/fwd_<isa>.c). */
enum nsx_isa {
    NSX_ISA_SCALAR = 0, /* portable C, the fallback */
    NSX_ISA_AVX2 = 1,   /* AVX2 + FMA */
    NSX_ISA_AVX512 = 2, /* AVX-512 F/BW/DQ/VL + FMA */
    NSX_ISA_COUNT = 3
};

/* Return values of the nsx_simd_* entry points (0 and 1 as in the ABI). */
#define NSX_SIMD_OK 0
#define NSX_SIMD_UNSUPPORTED 1 /* the problem is outside what this code does; nothing written */
#define NSX_SIMD_EISA 2        /* NSX_ISA names an unknown ISA or one this CPU lacks */
#define NSX_SIMD_ENOMEM 3      /* scratch could not be allocated; nothing written */
#define NSX_SIMD_EOVERFLOW 4   /* nsx_simd_count_tuples: the count exceeds 64 bits */

/* "scalar", "avx2", "avx512"; NULL for anything else. */
const char *nsx_simd_isa_name(int isa);

/* 1 when this CPU (and the OS's saved register state) runs isa, else 0. */
int nsx_simd_isa_supported(int isa);

/*
 * The ISA that nsx_simd_forward uses, resolved once per process and cached:
 * the best one the CPU supports, or the one named by the environment
 * variable NSX_ISA (avx512, avx2, scalar).  With NSX_ISA_DEBUG=1 the choice
 * is logged to stderr once ("nsimplex: isa avx512 (detected)").  Returns the
 * isa, or -1 when NSX_ISA is unknown or names an ISA this CPU lacks; then
 * why (size whylen, may be NULL) gets one line saying so.
 */
int nsx_simd_isa(char *why, size_t whylen);

/* The ABI description of this implementation: name "nsimplex-simd", the
   header's ABI version, f32 input/accumulation/weights/output, max order 8,
   every feature bit; the indexer; the backward (order 8, every feature, f32). */
const nsx_kernel_info *nsx_simd_info(void);

/*
 * 0 when nsx_simd_forward can compute p with io, else -1 and one line in
 * why (may be NULL): n outside 1..8, a size outside 1..NSX_MAX_DIM, H not a
 * multiple of Hkv, a tensor too large to index, an unknown reducer, causal or
 * distinct not 0/1, a negative window, a non-finite scale or bias, a
 * selection without sel or with sel_dims outside the n dimensions, a NULL
 * buffer.  Entries of window, k_bias, v_bias beyond n are ignored.
 */
int nsx_simd_check(const nsx_kernel_problem *p, const nsx_kernel_io *io, char *why,
                   size_t whylen);

/*
 * (E1)-(E6) in float32: writes io->o [B,L,H,dv] and, when not NULL,
 * io->lse [B,H,L] (natural log; -inf and O = 0 for an empty slice).
 * threads: OpenMP threads, 0 = OpenMP's default (every core unless
 * OMP_NUM_THREADS says otherwise).  Each (batch, head, query) is computed
 * by one thread in a fixed order, so the result does not depend on threads.
 * Returns NSX_SIMD_OK, NSX_SIMD_UNSUPPORTED (nsx_simd_check fails; nothing
 * written), NSX_SIMD_EISA (NSX_ISA is bad; nothing written) or
 * NSX_SIMD_ENOMEM (nothing written).
 */
int nsx_simd_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads);

/* The same with the ISA given (every path testable on one machine);
   NSX_SIMD_EISA when the CPU lacks isa. */
int nsx_simd_forward_isa(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads,
                         int isa);

/*
 * The gradients (E7, docs/SPEC.md 1.7) in float32: from p's inputs, the
 * forward's o and lse (as nsx_simd_forward wrote them; a non-finite lse is
 * an empty slice) and dO (io->dout), writes every element of io->dq,
 * io->dk[m], io->dv[m] (m < n).  Streaming, as the forward: P is recomputed
 * tile by tile from lse (simd/backward.c says how, and how dk, dv are
 * summed without races).  The result is the same bits for any `threads`.
 * Same returns as nsx_simd_forward.
 */
int nsx_simd_backward(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io, int threads);

/* The same with the ISA given; NSX_SIMD_EISA when the CPU lacks isa. */
int nsx_simd_backward_isa(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io, int threads,
                          int isa);

/* 0 when nsx_simd_backward can compute p with io (nsx_simd_check's rules,
   and lse, dout, dq, dk, dv not NULL), else -1 and one line in why. */
int nsx_simd_bwd_check(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io, char *why,
                       size_t whylen);

/* Bytes of scratch one thread of nsx_simd_backward allocates for p, and in
   *partials (when not NULL) the bytes of the slots' partial dk, dv beside
   the outputs.  Pre (asserted): p not NULL, and p passes nsx_simd_check. */
size_t nsx_simd_bwd_scratch_bytes(const nsx_kernel_problem *p, size_t *partials);

/* Bytes of scratch one thread of nsx_simd_forward allocates for p.
   Pre (asserted): p not NULL, and p passes nsx_simd_check. */
size_t nsx_simd_scratch_bytes(const nsx_kernel_problem *p);

/*
 * The plain-loop baseline (simd/naive.c, compiled -O2, no intrinsics, no
 * blocking): for each query row i in {i0, i0 + step, ... < i1} of every
 * batch and head, every tuple of [0,L)^n is visited by nested loops that test
 * the mask one dimension at a time (a disallowed j_m skips the tuples below
 * it), in two passes: the max score, then the sum of exponentials and the
 * weighted values, all in float32.  Writes those rows of io->o (and io->lse
 * when not NULL) only.  threads as above.  Same returns as nsx_simd_forward
 * less NSX_SIMD_EISA.
 */
int nsx_simd_naive(const nsx_kernel_problem *p, const nsx_kernel_io *io, int i0, int i1,
                   int step, int threads);

/*
 * The exact number of allowed tuples (E2) of query row i, summed over the B
 * batches (the same for every head), for each i in {i0, i0 + step, ... < i1}:
 * rows[(i - i0) / step] when rows is not NULL, and the sum over those rows
 * and the H heads in *total.  With distinct the count is exact by
 * inclusion-exclusion over the set partitions of the n dimensions.  Returns
 * NSX_SIMD_OK, NSX_SIMD_UNSUPPORTED, NSX_SIMD_ENOMEM or NSX_SIMD_EOVERFLOW.
 * Pre (asserted): p and total not NULL; the rest is checked and refused.
 */
int nsx_simd_count_tuples(const nsx_kernel_problem *p, int i0, int i1, int step,
                          uint64_t *rows, uint64_t *total);

/*
 * The machine's peak float32 FMA throughput in GFLOP/s with isa's widest
 * vectors on `threads` threads at once (0: OpenMP's default): independent
 * FMA chains, enough of them to cover the latency, for about `seconds`
 * seconds per trial, best of three trials after a warm-up.  Returns 0 when
 * the CPU lacks isa.  Pre (asserted): 0 <= seconds <= 3600.
 */
double nsx_simd_peak_gflops(int isa, int threads, double seconds);

/* The threads nsx_simd_forward uses for a `threads` argument. */
int nsx_simd_threads(int threads);

#ifdef __cplusplus
}
#endif

#endif /* NSX_SIMD_H */
