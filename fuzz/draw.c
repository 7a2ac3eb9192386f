/*
 * Random problems within a kernel's declared features (fuzz/fuzz.h).
 *
 * A problem is a recipe (vectors/recipe.h) plus the fuzzer's extras.  Two
 * size classes: small problems (most of them) that the MPFR reference
 * judges in milliseconds, and larger ones (longer sequences, several key
 * blocks, widths past two vectors) judged by the binary64 loop reference.
 * Sizes lean towards the boundaries of vector lanes and tiles (7, 8, 9, 15,
 * 16, 17, 31, 32, 33), where tails and padding live.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "io/meta.h"
#include "oracle/bound.h"
#include "nsimplex/kernel.h"
#include "nsimplex/slice.h"

uint64_t nsx_fz_problem_seed(uint64_t seed, uint64_t index)
{
    nsx_rng r = {seed ^ (index * 0xd1b54a32d192ed03ull)};
    nsx_rng_next(&r);
    return nsx_rng_next(&r);
}

/* An entry of a weighted table: value v with weight w. */
typedef struct {
    int v, w;
} weighted;

static int pick(nsx_rng *r, const weighted *t, int count)
{
    int total = 0;
    for (int x = 0; x < count; x++)
        total += t[x].w;
    int y = nsx_rng_below(r, total);
    for (int x = 0; x < count; x++)
        if ((y -= t[x].w) < 0)
            return t[x].v;
    return t[count - 1].v;
}

#define PICK(r, table) pick(r, table, (int)(sizeof table / sizeof table[0]))

/* A size in lo..hi, often at a lane or tile boundary. */
static int size_in(nsx_rng *r, int lo, int hi)
{
    static const int edges[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65};
    if (nsx_rng_chance(r, 0.4)) {
        int fit[sizeof edges / sizeof edges[0]], nfit = 0;
        for (size_t x = 0; x < sizeof edges / sizeof edges[0]; x++)
            if (edges[x] >= lo && edges[x] <= hi)
                fit[nfit++] = edges[x];
        if (nfit)
            return fit[nsx_rng_below(r, nfit)];
    }
    return lo + nsx_rng_below(r, hi - lo + 1);
}

void nsx_fz_put(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/* Window kinds, resolved once L is known. */
static int window_of(int kind, int L, int rnd)
{
    const int w[] = {0, 1, 2, L / 2, L - 1, L, L + 3, 1 + rnd % (L + 1)};
    return w[kind] > 0 ? w[kind] : 0;
}

/* Upper bound of the reference's work: tuples (nsx_slice_bound: causal,
   windows, top-k), heads, batches, widths. */
static double work_of(int n, int B, int L, int H, int d, int dv, int causal, const int *w, int k, unsigned dims)
{
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = n;
    p.L = L;
    p.causal = causal;
    for (int m = 0; m < n; m++)
        p.window[m] = w[m];
    if (k > 0)
        p.sel = (nsx_selection){.source = NSX_SEL_INDICES, .k = k, .dims = dims};
    double total = 0;
    for (int i = 0; i < L; i++)
        total += (double)nsx_slice_bound(&p, i);
    return total * B * H * (d + dv);
}

/* One attempt at a recipe; the extras go to d. */
static void draw_once(nsx_rng *r, const nsx_kernel_info *ki, const nsx_model *mod, nsx_fz_draw *d)
{
    const unsigned f = ki->features;
    char *s = d->recipe;
    const size_t len = sizeof d->recipe;
    s[0] = '\0';

    /* size class, order, shape */
    const int big = nsx_rng_chance(r, 0.22);
    static const weighted small_n[] = {{1, 28}, {2, 40}, {3, 17}, {4, 9}, {5, 2}, {6, 2}, {7, 1}, {8, 1}};
    static const weighted big_n[] = {{1, 45}, {2, 42}, {3, 13}};
    int n = big ? PICK(r, big_n) : PICK(r, small_n);
    if (n > ki->max_order)
        n = 1 + nsx_rng_below(r, ki->max_order);
    static const int small_L[NSX_MAX_ORDER + 1] = {0, 40, 20, 10, 7, 5, 4, 3, 3};
    static const int big_lo[4] = {0, 33, 17, 9}, big_hi[4] = {0, 400, 72, 24};
    int L = big && n <= 3 ? size_in(r, big_lo[n], big_hi[n]) : size_in(r, 1, small_L[n]);
    static const weighted Bs[] = {{1, 70}, {2, 22}, {3, 8}};
    int B = PICK(r, Bs);
    static const weighted Hkvs[] = {{1, 60}, {2, 30}, {3, 10}};
    static const weighted Gs[] = {{1, 50}, {2, 25}, {3, 10}, {4, 15}};
    int Hkv = PICK(r, Hkvs), G = (f & NSX_FEAT_GQA) ? PICK(r, Gs) : 1;
    int d_ = size_in(r, 1, big ? 96 : 40);
    int dv = nsx_rng_chance(r, 0.6) ? d_ : size_in(r, 1, big ? 96 : 40);

    /* masks and reducer */
    int causal = !((f & NSX_FEAT_CAUSAL_OFF) && nsx_rng_chance(r, 0.12));
    int distinct = (f & NSX_FEAT_DISTINCT) && n >= 2 && nsx_rng_chance(r, 0.15);
    int wkind[NSX_MAX_ORDER] = {0}, wrnd[NSX_MAX_ORDER] = {0}, w[NSX_MAX_ORDER] = {0};
    int windows = (f & NSX_FEAT_WINDOWS) && nsx_rng_chance(r, 0.35);
    for (int m = 0; m < n && windows; m++) {
        wkind[m] = nsx_rng_chance(r, 0.3) ? 0 : 1 + nsx_rng_below(r, 7);
        wrnd[m] = nsx_rng_below(r, 1 << 20);
    }
    int source = NSX_SEL_NONE, kdraw = 0;
    unsigned dims = 0;
    if ((f & NSX_FEAT_SELECTION) && nsx_rng_chance(r, 0.3)) {
        static const weighted sources[] = {{NSX_SEL_INDICES, 55}, {NSX_SEL_SCORES, 25}, {NSX_SEL_INDEXER, 20}};
        source = PICK(r, sources);
        kdraw = nsx_rng_below(r, 1 << 20);
        while (!dims)
            dims = (unsigned)nsx_rng_next(r) & ((1u << n) - 1u);
    }
    int reduce = NSX_REDUCE_PRODUCT;
    if ((f & NSX_FEAT_SUM) && nsx_rng_chance(r, 0.2))
        reduce = NSX_REDUCE_SUM;
    else if ((f & NSX_FEAT_MEAN) && nsx_rng_chance(r, 0.25))
        reduce = NSX_REDUCE_MEAN;

    /* pairs and copies: batches the reference computes too */
    int nleaks = causal && nsx_rng_chance(r, 0.45) ? 1 + nsx_rng_below(r, 2) : 0;
    int probes = nsx_rng_chance(r, 0.35);
    d->copies = nsx_rng_chance(r, 0.15);
    int batches = B * (1 + d->copies) + nleaks + (probes ? 3 * n : 0);

    /* keep the reference's work within the class */
    const double limit = big ? 2.5e7 : NSX_FZ_MPFR_WORK;
    int k = 0;
    for (;;) {
        for (int m = 0; m < n; m++)
            w[m] = window_of(wkind[m], L, wrnd[m]);
        k = source == NSX_SEL_NONE ? 0 : 1 + kdraw % (kdraw % 10 < 7 ? (L / 2 > 1 ? L / 2 : 1) : L + 1);
        if (L == 1 || work_of(n, batches, L, Hkv * G, d_, dv, causal, w, k, dims) <= limit)
            break;
        L = L * 3 / 4;
    }
    if (L < 2)
        nleaks = 0;

    nsx_fz_put(s, len, "n=%d B=%d L=%d H=%d Hkv=%d d=%d dv=%d", n, B, L, Hkv * G, Hkv, d_, dv);
    if (reduce != NSX_REDUCE_PRODUCT)
        nsx_fz_put(s, len, " reduce=%s", nsx_reduce_name(reduce));
    if (!causal)
        nsx_fz_put(s, len, " causal=0");
    if (distinct)
        nsx_fz_put(s, len, " distinct=1");
    if (windows) {
        nsx_fz_put(s, len, " w=");
        for (int m = 0; m < n; m++)
            nsx_fz_put(s, len, "%s%d", m ? "," : "", w[m]);
    }
    if ((f & NSX_FEAT_BIASES) && nsx_rng_chance(r, 0.2)) {
        static const char *const kbs[] = {"0", "0", "1/d", "1", "-0.5", "0.25", "2"};
        static const char *const vbs[] = {"0", "0", "1", "-1", "0.5", "1/d"};
        nsx_fz_put(s, len, " kb=");
        for (int m = 0; m < n; m++)
            nsx_fz_put(s, len, "%s%s", m ? "," : "", kbs[nsx_rng_below(r, 7)]);
        nsx_fz_put(s, len, " vb=");
        for (int m = 0; m < n; m++)
            nsx_fz_put(s, len, "%s%s", m ? "," : "", vbs[nsx_rng_below(r, 6)]);
    }
    if (nsx_rng_chance(r, 0.15)) {
        static const char *const scales[] = {"0.125", "0.5", "1", "2", "1/d"};
        nsx_fz_put(s, len, " scale=%s", scales[nsx_rng_below(r, 5)]);
    }
    if (nsx_rng_chance(r, 0.15)) {
        static const char *const outs[] = {"0.5", "2", "-1", "0.125", "0", "3"};
        nsx_fz_put(s, len, " out=%s", outs[nsx_rng_below(r, 6)]);
    }
    static const weighted fmts[] = {{NSX_FORMAT_BF16, 40}, {NSX_FORMAT_F32, 25}, {NSX_FORMAT_F16, 20},
                                    {NSX_FORMAT_F64, 15}};
    int fmt = PICK(r, fmts);
    nsx_fz_put(s, len, " fmt=%s", nsx_format_name(fmt));

    /* value distribution; large magnitudes only where the model's operand
       format has the range, and only for the MPFR class (the loop
       reference's uncertainty grows with the scores) */
    static const weighted dists[] = {{NSX_DIST_NORMAL, 36}, {NSX_DIST_UNIFORM, 10}, {NSX_DIST_HEAVY, 10},
                                     {NSX_DIST_ONEHOT, 8},  {NSX_DIST_EQUAL, 5},    {NSX_DIST_ZEROS, 5},
                                     {NSX_DIST_SUBNORMAL, 6}, {NSX_DIST_LARGE, 7}};
    int dist = PICK(r, dists);
    int wide_op = nsx_format_fits(NSX_FORMAT_F32, mod->op) && nsx_format_fits(NSX_FORMAT_F32, mod->acc);
    if (dist == NSX_DIST_LARGE && (big || fmt == NSX_FORMAT_F64 || !wide_op))
        dist = NSX_DIST_NORMAL;
    if (dist == NSX_DIST_ONEHOT && big)
        dist = NSX_DIST_HEAVY;
    if (dist != NSX_DIST_NORMAL)
        nsx_fz_put(s, len, " dist=%s", nsx_dist_name(dist));

    if (source != NSX_SEL_NONE) {
        nsx_fz_put(s, len, " sel=%s k=%d dims=", nsx_source_name(source), k);
        for (int m = 0, first = 1; m < n; m++)
            if (dims >> m & 1u) {
                nsx_fz_put(s, len, "%s%d", first ? "" : ",", m + 1);
                first = 0;
            }
        if (source == NSX_SEL_INDEXER) {
            const char *const *acts = nsx_act_names;
            static const char *const iscales[] = {"1", "0.5", "0.125"};
            nsx_fz_put(s, len, " act=%s iscale=%s Hi=%d di=%d", acts[nsx_rng_below(r, 3)], iscales[nsx_rng_below(r, 3)],
                1 + nsx_rng_below(r, 3), 1 + nsx_rng_below(r, 8));
        }
        if (source != NSX_SEL_INDICES && nsx_rng_chance(r, 0.3))
            nsx_fz_put(s, len, " ties=1");
        if (source == NSX_SEL_INDICES && nsx_rng_chance(r, 0.4))
            nsx_fz_put(s, len, " invalid=1");
        if (source == NSX_SEL_INDICES && nsx_rng_chance(r, 0.2))
            nsx_fz_put(s, len, " empty=1");
        d->shuffle = source == NSX_SEL_INDICES && nsx_rng_chance(r, 0.5);
    }
    const char *const *futures = nsx_future_names;
    for (int x = 0; x < nleaks; x++)
        nsx_fz_put(s, len, " leak=%s:%d", futures[nsx_rng_below(r, 4)], nsx_rng_below(r, L - 1));
    if (probes)
        nsx_fz_put(s, len, " probe=all");

    /* the fuzzer's extras */
    d->ties = nsx_rng_chance(r, 0.15) ? 1 + nsx_rng_below(r, 2) : 0;
    d->lanes = nsx_rng_chance(r, 0.25) ? 1 + nsx_rng_below(r, 6) : 0;
    /* products of the n + 1 factors of a score within 2^60, and within a
       quarter of the square root of the operand format's largest value */
    nsx_fmt op = nsx_fmt_of(mod->op);
    int range = (int)(log2(op.max) / 2) - 2;
    d->big = (range < 60 ? range : 60) / (n + 1);
    d->heads = Hkv * G >= 2 && nsx_rng_chance(r, 0.15);
}

void nsx_fz_draw_problem(uint64_t seed, const nsx_kernel_info *ki, const nsx_model *m, nsx_fz_draw *d)
{
    nsx_rng r = {seed};
    memset(d, 0, sizeof *d);
    d->seed = seed;
    for (;;) {
        nsx_fz_draw t = {.seed = seed};
        draw_once(&r, ki, m, &t);
        nsx_recipe rc;
        nsx_err err = {0};
        if (nsx_recipe_parse(t.recipe, &rc, &err) == 0) {
            t.rejected = d->rejected;
            *d = t;
            return;
        }
        d->rejected++;
    }
}

char *nsx_fz_draw_text(const nsx_fz_draw *d, char *buf, size_t len)
{
    buf[0] = '\0';
    nsx_fz_put(buf, len, "%s", d->recipe);
    if (d->ties || d->lanes || d->shuffle || d->copies || d->heads) {
        nsx_fz_put(buf, len, " |");
        if (d->ties)
            nsx_fz_put(buf, len, " ties=%s", d->ties == 1 ? "exact" : "near");
        if (d->lanes)
            nsx_fz_put(buf, len, " lanes=%d", d->lanes);
        if (d->shuffle)
            nsx_fz_put(buf, len, " shuffle=1");
        if (d->copies)
            nsx_fz_put(buf, len, " copies=1");
        if (d->heads)
            nsx_fz_put(buf, len, " heads=1");
    }
    return buf;
}
