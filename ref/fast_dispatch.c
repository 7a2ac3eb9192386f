/*
 * ISA dispatch of the fast path's hot loops (ref/fast_kern.h): one resolver
 * that checks the CPU once, caches the choice, and can be forced
 * (NSX_FAST_ISA) or logged (NSX_FAST_ISA_DEBUG=1), in the style of
 * simd/dispatch.c (which ref/ does not include).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/fast_kern.h"

static const char *const isa_names[FAST_ISA_COUNT] = {"scalar", "avx2", "avx512"};
static const fast_kern *const tables[FAST_ISA_COUNT] = {&fast_kern_scalar, &fast_kern_avx2,
                                                        &fast_kern_avx512};

int fast_isa_supported(int isa)
{
    /* __builtin_cpu_supports also checks that the OS saves the wide
       registers (XCR0), not just CPUID */
    __builtin_cpu_init();
    switch (isa) {
    case FAST_ISA_SCALAR:
        return 1;
    case FAST_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FAST_ISA_AVX512:
        return fast_isa_supported(FAST_ISA_AVX2) && __builtin_cpu_supports("avx512f");
    default:
        return 0;
    }
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int chosen = -1;
static char chosen_why[160];

static void resolve(void)
{
    const char *env = getenv("NSX_FAST_ISA");
    const char *dbg = getenv("NSX_FAST_ISA_DEBUG");
    int forced = env && *env;
    if (forced) {
        int want = -1;
        for (int isa = 0; isa < FAST_ISA_COUNT; isa++)
            if (strcmp(env, isa_names[isa]) == 0)
                want = isa;
        if (want < 0)
            snprintf(chosen_why, sizeof chosen_why,
                     "NSX_FAST_ISA=%.40s is not one of avx512, avx2, scalar", env);
        else if (!fast_isa_supported(want))
            snprintf(chosen_why, sizeof chosen_why, "NSX_FAST_ISA=%s: this CPU lacks %s", env, env);
        else
            chosen = want;
    } else {
        for (int isa = FAST_ISA_COUNT - 1; isa >= 0 && chosen < 0; isa--)
            if (fast_isa_supported(isa))
                chosen = isa;
    }
    if (dbg && strcmp(dbg, "1") == 0) {
        if (chosen >= 0)
            fprintf(stderr, "nsimplex: fast path isa %s (%s)\n", isa_names[chosen],
                    forced ? "forced by NSX_FAST_ISA" : "detected");
        else
            fprintf(stderr, "nsimplex: fast path isa: %s\n", chosen_why);
    }
}

const fast_kern *fast_kern_get(char *why, size_t whylen)
{
    pthread_once(&once, resolve);
    if (chosen < 0) {
        if (why && whylen)
            snprintf(why, whylen, "%s", chosen_why);
        return NULL;
    }
    return tables[chosen];
}
