/*
 * Recipes: a case described in one line of text, e.g.
 *
 *   "n=2 L=16 H=2 Hkv=1 d=8 w=5,2 fmt=bf16 dist=normal leak=nan:7 probe=all"
 *
 * A recipe names the problem (keys as in the metadata), how its inputs are
 * drawn, and which leak pairs and mask probes it carries.  The golden suites
 * (vectors/suites.c) are tables of recipes; the fuzzer draws random ones.
 *
 * Keys (defaults in brackets):
 *   n [1]  B [1]  L [8]  H [1]  Hkv [1]  d [4]  dv [d]
 *   reduce=product|sum|mean [product]     causal=0|1 [1]   distinct=0|1 [0]
 *   w=W1,..,Wn [0: none]                  kb=B1,..,Bn  vb=B1,..,Bn [0]
 *      (a bias may be written 1/d: the binary64 1/d, exact for d a power of 2)
 *   scale=rsqrt|X [rsqrt: the exact 1/sqrt(d)]   out=X [1]
 *   fmt=bf16|f16|f32|f64 [bf16]
 *   sel=indices|indexer|scores  k=K  dims=M,.. [1..n]  act=relu|softmax|identity [relu]
 *      iscale=X [1]  Hi=H [2]  di=D [4]
 *   dist=normal|uniform|heavy|onehot|equal|zeros|subnormal|large [normal]
 *   ties=1       scores tie at the k-th place (computed selections)
 *   iblocks=N    the indexer's qI and kI rows scaled per block of N elements
 *                (along di) by 2^e, e uniform in -12..10: blocks far apart in
 *                magnitude, where an FP8 scale per tensor or per block of
 *                the wrong size loses the small ones (sel=indexer)
 *   empty=1      some rows have an empty slice (given selections: all pads
 *                or future indices only; otherwise as the masks allow)
 *   invalid=1    given selections carry -1 pads, out-of-range and future
 *                indices
 *   leak=F:T     a leak pair (F = random|huge|nan|inf, T = last shared
 *                position); may repeat
 *   probe=all    mask probes for every dimension and every mask that can
 *                exclude a key there (window, causal, selection)
 *   bwd=1        a gradient case: an upstream gradient do and the expected
 *                gradients dq, dk_m, dv_m (E7); its leak pairs have random
 *                futures, and every pair's batches share do where they share
 *                rows (SPEC 4.5)
 *   gleak=T      (bwd=1, causal) a gradient leak pair: q and do differ at
 *                the positions before T only, so the rows >= T and the key
 *                gradients at positions >= T agree bit for bit
 */
#ifndef NSX_VECTORS_RECIPE_H
#define NSX_VECTORS_RECIPE_H

#include "io/meta.h"
#include "nsimplex/error.h"
#include "nsimplex/problem.h"

enum nsx_dist {
    NSX_DIST_NORMAL,
    NSX_DIST_UNIFORM,
    NSX_DIST_HEAVY,     /* heavy-tailed (normal / sqrt(uniform)) */
    NSX_DIST_ONEHOT,    /* scores spread so widely the softmax is near one-hot */
    NSX_DIST_EQUAL,     /* q = 0: every score equal */
    NSX_DIST_ZEROS,     /* v = 0 */
    NSX_DIST_SUBNORMAL, /* values in the format's subnormal range */
    NSX_DIST_LARGE      /* large magnitudes within the format's range */
};

#define NSX_RECIPE_MAX_LEAKS 4

typedef struct nsx_recipe {
    nsx_problem p;      /* B counts the base batches: pairs add their own */
    int dist;           /* enum nsx_dist */
    int ties, empty, invalid, probes;
    int iblocks;        /* 0, or the block size of the indexer's scaled blocks */
    int bwd;            /* a gradient case (vectors/bwd.h) */
    int gleak;          /* gradient leak pair at T (0: none) */
    int nleaks;
    struct {
        int future;     /* enum nsx_future */
        int t;
    } leak[NSX_RECIPE_MAX_LEAKS];
} nsx_recipe;

/* Parses text into r.  0, or NSX_E_INPUT with err = "recipe: KEY: ..." */
int nsx_recipe_parse(const char *text, nsx_recipe *r, nsx_err *err);

/* The name of a distribution (NULL when out of range). */
const char *nsx_dist_name(int dist);

#endif
