/*
 * The SIMD kernel tests' problems (tests/test_simd.c, the forward, and
 * tests/test_simd_bwd.c, the backward): a row of their case tables, its
 * random instance (seeded, exact binary32 inputs, a selection with valid,
 * repeated, invalid and padding entries), and the mask predicate and tuple
 * walk of their binary64 loop references.
 */
#ifndef NSX_TESTS_SIMD_CASE_H
#define NSX_TESTS_SIMD_CASE_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/kernel.h"

#define U32 (1.0 / 16777216.0)

/* The case tables' reducers. */
#define P_ NSX_REDUCE_PRODUCT
#define S_ NSX_REDUCE_SUM
#define M_ NSX_REDUCE_MEAN

/* g(k) = k u / (1 - k u), u = 2^-24: the bound on k roundings. */
static inline double gam(double k)
{
    return k * U32 / (1.0 - k * U32);
}

/* A case's selection: none; mixed (valid keys, mostly past, some future;
   invalid entries past L and below -1; pads); every third row empty; and
   with repeated keys (SEL_DUPS; the others keep a valid key once a row). */
enum { SEL_NONE, SEL_MIXED, SEL_EMPTY_ROWS, SEL_DUPS };

typedef struct tcase {
    const char *name;
    int n, B, L, H, Hkv, d, dv;
    int reduce, causal, distinct;
    int window[NSX_MAX_ORDER];
    int sel;            /* SEL_* */
    int topk;
    unsigned sel_dims;
    double kb, vb;      /* bias of dimension m: kb * (m + 1) (exact in binary32) */
    double score_scale; /* 0: 1/sqrt(d) */
    double out_scale;   /* 0: 1 */
    int no_lse;         /* the forward asked for no LSE */
} tcase;

/* One instance of a case: the problem and its float32 inputs. */
typedef struct inst {
    nsx_kernel_problem p;
    float *q, *k[NSX_MAX_ORDER], *v[NSX_MAX_ORDER], *dout; /* dout: NULL unless asked */
    int32_t *sel;
    size_t nq, nk, nv, no, nl; /* elements of q (and dq), of one k, one v, of o (dout), of lse */
} inst;

/* x[0..len) uniform in [-1, 1), exact in binary32, from the seeded stream
   (inst_make seeds it). */
void fill(float *x, size_t len);

/* s for c from seed: q, then dout when with_dout, then each k_m, v_m, then
   the selection, all from one stream (so an instance is the same whether
   or not dout is drawn, up to dout). */
void inst_make(const tcase *c, inst *s, uint64_t seed, int with_dout);

void inst_free(inst *s);

/* (E2) as the spec states it, for query i of batch b and the tuple J: a
   deliberate independent copy (test oracle), apart from ref/mask.c,
   core/slice.c and simd/. */
int ref_allowed(const nsx_kernel_problem *p, int b, int i, const int *J);

/* Advances J over [0,L)^n; 0 when done. */
int next_tuple(int *J, int n, int L);

/* The SIMD kernel's shared library ($NSX_SIMD_SO, which make check sets)
   through dlopen, asserted (Check); its path into *path.  dlclose it. */
void *simd_so_open(const char **path);

#endif /* NSX_TESTS_SIMD_CASE_H */
