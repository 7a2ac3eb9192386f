/*
 * Test kernels that misbehave, one per FAULT_* macro (the Makefile builds
 * build/tests/kernels/NAME.so with -DFAULT_NAME): tests/test_fuzz.c fuzzes
 * each and expects a saved failure of the right kind, or exit 2 for the
 * kernels whose info is invalid.
 *   segv      writes through a null pointer        abort    calls abort()
 *   hang      never returns                        exit     calls exit(0)
 *   overflow  writes one element past the end of o
 *   underflow writes one element before the start of o
 *   order0, orderm1  declare max_order 0, -1
 *   zeros     no fault: all outputs 0 (a wrong kernel that behaves)
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "nsimplex/kernel.h"

#if defined(FAULT_order0)
#define MAX_ORDER 0
#elif defined(FAULT_orderm1)
#define MAX_ORDER (-1)
#else
#define MAX_ORDER 2
#endif

static const nsx_kernel_info info = {
    .abi_version = NSX_KERNEL_ABI_VERSION,
    .name = "faulty",
    .input_format = NSX_FORMAT_F32,
    .accum_format = NSX_FORMAT_F32,
    .weights_format = NSX_FORMAT_F32,
    .output_format = NSX_FORMAT_F32,
    .max_order = MAX_ORDER,
    .features = 0,
};

const nsx_kernel_info *nsx_kernel_get_info(void)
{
    return &info;
}

int nsx_kernel_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    size_t n = (size_t)p->B * p->L * p->H * p->dv;
    for (size_t t = 0; t < n; t++)
        io->o[t] = 0;
#if defined(FAULT_segv)
    *(volatile int *)(uintptr_t)0 = 1;
#elif defined(FAULT_abort)
    abort();
#elif defined(FAULT_hang)
    for (;;)
        pause();
#elif defined(FAULT_exit)
    exit(0);
#elif defined(FAULT_overflow)
    io->o[n] = 1;
#elif defined(FAULT_underflow)
    io->o[-1] = 1;
#endif
    return NSX_KERNEL_OK;
}
