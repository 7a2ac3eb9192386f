/*
 * ISA dispatch (simd/simd.h): one resolver that checks the CPU once, caches
 * the choice, and can be forced (NSX_ISA) or logged (NSX_ISA_DEBUG=1), as
 * BLIS's frame/base/bli_arch.c does with BLIS_ARCH_TYPE and BLIS_ARCH_DEBUG.
 * A leaf: it calls nothing else of simd/ (the ISA files' tables are looked
 * up by simd/forward.c, which calls this resolver).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/simd.h"

static const char *const isa_names[NSX_ISA_COUNT] = {"scalar", "avx2", "avx512"};

const char *nsx_simd_isa_name(int isa)
{
    return isa >= 0 && isa < NSX_ISA_COUNT ? isa_names[isa] : NULL;
}

int nsx_simd_isa_supported(int isa)
{
    /* __builtin_cpu_supports also checks that the OS saves the wide
       registers (XCR0), not just CPUID. */
    __builtin_cpu_init();
    switch (isa) {
    case NSX_ISA_SCALAR:
        return 1;
    case NSX_ISA_AVX2: /* the flags the AVX2 files are built with */
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("x86-64-v3");
    case NSX_ISA_AVX512:
        return nsx_simd_isa_supported(NSX_ISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
    default:
        return 0;
    }
}

static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static int isa_chosen = -1;
static char isa_why[160];

static void isa_resolve(void)
{
    const char *env = getenv("NSX_ISA");
    const char *dbg = getenv("NSX_ISA_DEBUG");
    int forced = env && *env;
    if (forced) {
        int want = -1;
        for (int isa = 0; isa < NSX_ISA_COUNT; isa++)
            if (strcmp(env, isa_names[isa]) == 0)
                want = isa;
        if (want < 0)
            snprintf(isa_why, sizeof isa_why,
                     "NSX_ISA=%.40s is not one of avx512, avx2, scalar", env);
        else if (!nsx_simd_isa_supported(want))
            snprintf(isa_why, sizeof isa_why, "NSX_ISA=%s: this CPU lacks %s", env, env);
        else
            isa_chosen = want;
    } else {
        for (int isa = NSX_ISA_COUNT - 1; isa >= 0 && isa_chosen < 0; isa--)
            if (nsx_simd_isa_supported(isa))
                isa_chosen = isa;
    }
    if (dbg && strcmp(dbg, "1") == 0) {
        if (isa_chosen >= 0)
            fprintf(stderr, "nsimplex: simd isa %s (%s)\n", isa_names[isa_chosen],
                    forced ? "forced by NSX_ISA" : "detected");
        else
            fprintf(stderr, "nsimplex: simd isa: %s\n", isa_why);
    }
}

int nsx_simd_isa(char *why, size_t whylen)
{
    pthread_once(&isa_once, isa_resolve);
    if (isa_chosen < 0 && why && whylen)
        snprintf(why, whylen, "%s", isa_why);
    return isa_chosen;
}
