/*
 * What the SIMD drivers share (simd/forward.c, simd/backward.c, simd/n1.c,
 * simd/bf16.c): the sizes a problem fixes, the chunk of inner keys that
 * fits L2, the rows of K and V, one work item's candidate lists, the
 * carving of a thread's scratch and the threads' blocks.  Each driver's
 * plan holds these beside its own; the arithmetic and the loops stay in
 * the drivers.
 */
#ifndef NSX_SIMD_PLAN_H
#define NSX_SIMD_PLAN_H

#include <stddef.h>

#include "nsimplex/kernel.h"

/* Bytes of one chunk's packed panels (with the backward, its
   accumulators): small enough for L2 (1 MiB here). */
#define NSX_PANEL_BYTES (256u * 1024u)

/* The sizes both n >= 2 drivers derive from a problem. */
typedef struct nsx_plan_sizes {
    int G;                            /* query heads per kv head, H / Hkv */
    int dvp;                          /* dv rounded up to 16 */
    int most;                         /* the largest cap, at least 1 */
    int cap[NSX_MAX_ORDER];           /* room for C_m(i): nsx_cands_cap */
    float kb[NSX_MAX_ORDER], vb[NSX_MAX_ORDER]; /* the biases in float32 */
} nsx_plan_sizes;

/* s from p (p->n dimensions; the entries past n are left as they were). */
void nsx_plan_sizes_init(nsx_plan_sizes *s, const nsx_kernel_problem *p);

/* Inner keys per chunk: the most multiples of nr whose panels, per_key
   bytes a key, fit NSX_PANEL_BYTES, but no more than most keys need (most
   rounded up to nr), and at least nr.  Pre: nr >= 1, per_key >= 1. */
int nsx_plan_chunk(size_t per_key, int most, int nr);

static inline size_t nsx_round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

/* The offset, in elements, of row j of batch b, kv head g in a key or
   value tensor of rows of width elements ([B, L, Hkv, width]). */
static inline size_t nsx_plan_row_at(const nsx_kernel_problem *p, int width, int b, int j, int g)
{
    return (((size_t)b * p->L + j) * p->Hkv + g) * (size_t)width;
}

/* That row in a float32 tensor x. */
static inline const float *nsx_plan_row(const nsx_kernel_problem *p, const float *x, int width,
                                        int b, int j, int g)
{
    return x + nsx_plan_row_at(p, width, b, j, g);
}

/* Query i of batch b: list[m][0..cnt[m]) = C_m(i) for m < n (simd/cands.h;
   sel_row is scratch of max(topk, 1) entries, list[m] of cap[m]).  Returns
   1 when some list is empty (the slice is empty: nsx_tile_empty), else 0. */
int nsx_plan_lists(const nsx_kernel_problem *p, int b, int i, int *sel_row, int *const *list,
                   int *cnt);

/* In a layout function: ptr gets count elements at base + off, off moves
   on by their bytes rounded up to 64 (so every array starts on a cache
   line); base NULL only adds up the bytes. */
#define NSX_CARVE(base, off, ptr, count)                                    \
    do {                                                                    \
        if (base)                                                           \
            (ptr) = (void *)((char *)(base) + (off));                       \
        (off) += nsx_round_up((size_t)(count) * sizeof *(ptr), 64);         \
    } while (0)

/* The threads for units (>= 1) independent pieces of work:
   nsx_simd_threads' count, at most units. */
int nsx_plan_threads(int threads, long units);

/* T blocks of bytes each, 64-byte aligned and zero (padding rows and the
   selection bitmap are read before they are written), for the threads'
   scratch.  Every block is allocated before the caller writes anything,
   so that running out of memory writes nothing.  Returns the array of
   blocks, or NULL (nothing kept). */
void **nsx_plan_blocks(int T, size_t bytes);

/* Frees what nsx_plan_blocks returned (NULL: nothing). */
void nsx_plan_blocks_free(void **blocks, int T);

#endif /* NSX_SIMD_PLAN_H */
