/*
 * The kernel ABI (include/nsimplex/kernel.h, contract section 6) over the
 * SIMD implementation: build/libnsimplex_simd.so exports these symbols
 * and nothing else (simd/abi/exports.map), so it loads with dlopen like a
 * third party's kernel.  This file stays out of libnsimplex.a: the program
 * has the nsx_simd_* entry points directly.
 */
#include "nsimplex/kernel.h"
#include "simd/indexer.h"
#include "simd/simd.h"

_Static_assert(NSX_SIMD_ACT_RELU == NSX_IDX_ACT_RELU && NSX_SIMD_ACT_SOFTMAX == NSX_IDX_ACT_SOFTMAX &&
                   NSX_SIMD_ACT_IDENTITY == NSX_IDX_ACT_IDENTITY,
               "the indexer's activations are the ABI's");

const nsx_kernel_info *nsx_kernel_get_info(void)
{
    return nsx_simd_info();
}

/* 0 done; 1 unsupported problem (nothing written); 2 NSX_ISA is bad;
   3 out of memory (nothing written).  Threads: OpenMP's default. */
int nsx_kernel_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    return nsx_simd_forward(p, io, 0);
}

/* ABI 2: the SIMD indexer (simd/indexer.h).  0 done; 1 unsupported problem
   (nothing written); 2 NSX_ISA is bad; 3 out of memory (nothing written). */
int nsx_kernel_indexer(const nsx_indexer_problem *p, const nsx_indexer_io *io)
{
    if (!p || !io)
        return NSX_SIMD_UNSUPPORTED;
    nsx_simd_idx_problem ip = {
        .B = p->B, .L = p->L, .source = NSX_SIMD_IDX_INDEXER, .Hi = p->Hi, .di = p->di, .act = p->act,
        .idx_scale = p->idx_scale, .causal = p->causal, .k = p->topk,
    };
    nsx_simd_idx_io iio = {
        .idx_q = io->idx_q, .idx_k = io->idx_k, .idx_w = io->idx_w, .sel = io->sel, .scores = io->scores,
    };
    return nsx_simd_indexer(&ip, &iio, 0);
}

/* ABI 3: the SIMD backward (simd/simd.h).  0 done; 1 unsupported problem
   (nothing written); 2 NSX_ISA is bad; 3 out of memory (nothing written).
   Threads: OpenMP's default (the result does not depend on them). */
int nsx_kernel_backward(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io)
{
    return nsx_simd_backward(p, io, 0);
}
