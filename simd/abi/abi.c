/*
 * The kernel ABI (include/nsimplex/kernel.h, contract section 6) over the
 * SIMD implementation: build/libnsimplex_simd.so exports these two symbols
 * and nothing else (simd/abi/exports.map), so it loads with dlopen like a
 * third party's kernel.  This file stays out of libnsimplex.a: the program
 * has the nsx_simd_* entry points directly.
 */
#include "nsimplex/kernel.h"
#include "simd/simd.h"

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
