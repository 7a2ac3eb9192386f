/*
 * Random problems within a kernel's declared features (fuzz/fuzz.h).
 *
 * A problem is a recipe (vectors/recipe.h) plus the fuzzer's extras.  Three
 * shape classes (docs/FUZZING.md section 2): small problems (most of the
 * count), judged in milliseconds and easy to shrink, whose sizes lean to
 * the boundaries of vector lanes (7, 8, 9, 15, 16, 17, 31, 32, 33); tiles,
 * with d and dv up to 256 near 64/128/192/256, L, windows and top-k near
 * multiples of 16..128, GQA up to 16/1, rows spanning several key blocks;
 * production, with L up to 4096 (n = 1) and 2048 (windowed n = 2).  Each
 * class has a work budget, and steering (nsx_fz_steer) narrows the draw.
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

/* Window kinds, resolved once L is known; kind 8 (larger problems only):
   near a multiple of 16, 32, 64 or 128 below L + 2; kind 9 (production):
   near 16, 32, 64 or 128 whatever L. */
static int window_of(int kind, int L, int rnd)
{
    static const int tiles[] = {16, 32, 64, 128};
    int t = tiles[rnd % 4], mult = (L + 1) / t;
    int near = mult > 0 ? (1 + (rnd >> 2) % mult) * t + (rnd >> 12) % 3 - 1 : 1 + rnd % (L + 1);
    static const int tile_w[] = {15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129};
    const int w[] = {0, 1, 2, L / 2, L - 1, L, L + 3, 1 + rnd % (L + 1), near, tile_w[rnd % 12]};
    return w[kind] > 0 ? w[kind] : 0;
}

/* Upper bound of the work of judging a problem: tuples (nsx_slice_bound:
   causal, windows, top-k) times heads, batches and widths, and the inputs
   drawn. */
static double work_of(int n, int B, int L, int H, int Hkv, int d, int dv, int causal, const int *w, int k,
                      unsigned dims)
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
    /* plus the inputs: each value drawn (a normal: a correctly rounded
       cos) costs about as much as 16 tuple-channels of the oracle */
    return total * B * H * (d + dv) + 16.0 * B * L * (H * d + n * Hkv * (d + dv));
}

/* ---- steering ---- */

const char *const nsx_fz_feature_names[8] = {"windows", "selection", "gqa", "causal-off",
                                             "distinct",  "biases",    "sum", "mean"};

unsigned nsx_fz_feature_bit(const char *name)
{
    for (int x = 0; x < 8; x++)
        if (strcmp(name, nsx_fz_feature_names[x]) == 0)
            return 1u << x;
    return 0;
}

const char *nsx_fz_class_name(int cls)
{
    static const char *const names[NSX_FZ_CLASSES] = {"small", "tiles", "production"};
    return cls >= 0 && cls < NSX_FZ_CLASSES ? names[cls] : "?";
}

void nsx_fz_steer_default(nsx_fz_steer *s)
{
    memset(s, 0, sizeof *s);
    s->features = 0xffu;
    s->shapes = NSX_FZ_SHAPES_ALL;
}

int nsx_fz_steer_check(const nsx_fz_steer *s, const nsx_kernel_info *ki, char *why, size_t len)
{
    for (int n = NSX_MAX_ORDER + 1; n < 32; n++)
        if (s->orders >> n & 1u) {
            snprintf(why, len, "--n: %d is not in 1..%d", n, NSX_MAX_ORDER);
            return -1;
        }
    for (int n = 1; n <= NSX_MAX_ORDER; n++)
        if ((s->orders >> n & 1u) && n > ki->max_order) {
            snprintf(why, len, "--n: %d is above the kernel's max_order %d", n, ki->max_order);
            return -1;
        }
    if (s->orders & 1u) {
        snprintf(why, len, "--n: 0 is not in 1..%d", NSX_MAX_ORDER);
        return -1;
    }
    for (int x = 0; x < 8; x++)
        if (s->boost && (s->features >> x & 1u) && !(ki->features >> x & 1u)) {
            snprintf(why, len, "--features: the kernel does not declare %s", nsx_fz_feature_names[x]);
            return -1;
        }
    for (int x = 0; x < s->nd; x++)
        if (s->d[x] < 1 || s->d[x] > 256) {
            snprintf(why, len, "--d: %d is not in 1..256", s->d[x]);
            return -1;
        }
    if (s->max_L < 0) {
        snprintf(why, len, "--max-L: %d is not positive", s->max_L);
        return -1;
    }
    return 0;
}

/* A size in lo..hi near a multiple of 16, 32, 64 or 128 (and +-1), or any. */
static int tile_size(nsx_rng *r, int lo, int hi)
{
    if (hi < lo)
        return hi;
    if (nsx_rng_chance(r, 0.7)) {
        static const int tiles[] = {16, 32, 64, 128};
        int t = tiles[nsx_rng_below(r, 4)];
        if (hi >= t) {
            int mult = 1 + nsx_rng_below(r, hi / t);
            int v = mult * t + nsx_rng_below(r, 3) - 1;
            if (v >= lo && v <= hi)
                return v;
        }
    }
    return lo + nsx_rng_below(r, hi - lo + 1);
}

/* A head width in 1..256: mostly 64, 128, 192, 256 and their neighbours,
   then multiples of 16 and their neighbours, then any. */
static int tile_width(nsx_rng *r)
{
    int u = nsx_rng_below(r, 100), v;
    if (u < 55)
        v = 64 * (1 + nsx_rng_below(r, 4)) + (nsx_rng_chance(r, 0.5) ? 0 : nsx_rng_chance(r, 0.5) ? 1 : -1);
    else if (u < 75)
        v = 16 * (1 + nsx_rng_below(r, 16)) + nsx_rng_below(r, 3) - 1;
    else
        v = 1 + nsx_rng_below(r, 256);
    return v < 1 ? 1 : v > 256 ? 256 : v;
}

/* The order: weighted by class, within the kernel's max_order and --n. */
static int draw_order(nsx_rng *r, int cls, const nsx_kernel_info *ki, const nsx_fz_steer *st)
{
    static const int small_w[NSX_MAX_ORDER + 1] = {0, 28, 40, 17, 9, 2, 2, 1, 1};
    static const int tiles_w[NSX_MAX_ORDER + 1] = {0, 58, 32, 10, 0, 0, 0, 0, 0};
    static const int prod_w[NSX_MAX_ORDER + 1] = {0, 50, 45, 5, 0, 0, 0, 0, 0};
    const int *w = cls == NSX_FZ_SMALL ? small_w : cls == NSX_FZ_TILES ? tiles_w : prod_w;
    weighted t[NSX_MAX_ORDER];
    int count = 0;
    for (int pass = 0; pass < 2 && !count; pass++)
        for (int n = 1; n <= ki->max_order && n <= NSX_MAX_ORDER; n++)
            if (!st->orders || (st->orders >> n & 1u))
                t[count++] = (weighted){n, pass ? 1 : w[n]};
    int total = 0;
    for (int x = 0; x < count; x++)
        total += t[x].w;
    if (!total) /* only orders this class never draws: equally */
        for (int x = 0; x < count; x++)
            t[x].w = 1;
    return pick(r, t, count);
}

/* One attempt at a recipe; the extras go to d. */
static void draw_once(nsx_rng *r, const nsx_kernel_info *ki, const nsx_model *mod, const nsx_fz_steer *st,
                      nsx_fz_draw *d)
{
    const unsigned f = ki->features & (st->features | ~0xffu);
    char *s = d->recipe;
    const size_t len = sizeof d->recipe;
    s[0] = '\0';

    /* size class, order, shape */
    int cls = st->shapes;
    if (cls == NSX_FZ_SHAPES_ALL) {
        /* by count (of the forward problems; the backward ones are all
           small); by time (about 0.012, 0.1 and 2 CPU-seconds each)
           about half to small, a third to tiles, the rest to production.
           Tiles at 11.7% keep the tile-crossing problems above a fifth of
           the judged tuples from the first minute of any seed (at 5.5%,
           seed 1 had 13% after 60 s); the same y below 880 and above 996
           still picks small and production, so those problems did not
           change (docs/FUZZING.md 2) */
        static const weighted classes[] = {{NSX_FZ_SMALL, 880}, {NSX_FZ_TILES, 117}, {NSX_FZ_PRODUCTION, 3}};
        cls = PICK(r, classes);
    }
    d->cls = cls;
    const int big = cls != NSX_FZ_SMALL;
    const double boost = st->boost ? 0.5 : 0;
    int n = draw_order(r, cls, ki, st);
    /* production: long sequences need a window or a top-k to fit the work */
    const int long_seq = cls == NSX_FZ_PRODUCTION && nsx_rng_chance(r, 0.5);
    /* tiles, n = 1: a third are long rows of wide heads, one or two query
       heads per kv head, no window: every row past 64-128 keys spans
       several key tiles and a kernel's cache-sized blocks of K and V */
    const int wide_rows = cls == NSX_FZ_TILES && n == 1 && nsx_rng_chance(r, 0.35);
    const double wprob = cls == NSX_FZ_SMALL ? 0.35 : cls == NSX_FZ_TILES ? 0.5 : 0.8;
    int windows = !wide_rows && (f & NSX_FEAT_WINDOWS) &&
                  nsx_rng_chance(r, fmax(boost, long_seq && n == 1 ? 0.5 : wprob));
    static const int small_L[NSX_MAX_ORDER + 1] = {0, 40, 20, 10, 7, 5, 4, 3, 3};
    int L, B, Hkv, G = 1, d_, dv;
    static const weighted Bs[] = {{1, 70}, {2, 22}, {3, 8}};
    static const weighted Hkvs[] = {{1, 60}, {2, 30}, {3, 10}};
    if (cls == NSX_FZ_SMALL) {
        L = size_in(r, 1, small_L[n]);
        B = PICK(r, Bs);
        Hkv = PICK(r, Hkvs);
        static const weighted Gs[] = {{1, 50}, {2, 25}, {3, 10}, {4, 15}};
        if (f & NSX_FEAT_GQA)
            G = PICK(r, Gs);
        d_ = size_in(r, 1, 40);
        dv = nsx_rng_chance(r, 0.6) ? d_ : size_in(r, 1, 40);
    } else {
        /* L: n = 1 up to 1024 (tiles) or 4096 (production); n = 2 up to
           320 dense, 1024 or 2048 windowed; n = 3 up to 64 or 160 */
        static const int tiles_hi[4][2] = {{0, 0}, {1024, 1024}, {320, 1024}, {64, 160}};
        static const int prod_lo[4] = {0, 1024, 512, 64}, prod_hi[4][2] = {{0, 0}, {4096, 4096}, {320, 2048},
                                                                           {96, 192}};
        int nn = n < 3 ? n : 3;
        if (cls == NSX_FZ_TILES) {
            L = tile_size(r, n <= 3 ? 17 : 2, n <= 3 ? tiles_hi[nn][windows] : small_L[n] + 4);
        } else {
            int hi = n <= 3 ? prod_hi[nn][windows] : small_L[n] + 8;
            int lo = n <= 3 && prod_lo[nn] < hi ? prod_lo[nn] : hi / 2;
            L = tile_size(r, lo, hi);
        }
        static const weighted bigB[] = {{1, 80}, {2, 20}};
        B = PICK(r, bigB);
        static const weighted bigHkv[] = {{1, 70}, {2, 30}};
        Hkv = PICK(r, bigHkv);
        /* n = 1 leans to many query heads per kv head: with d past 128
           that is the most bytes of K and V panels per key, so a row of a
           few dozen keys already spans several key tiles or chunks */
        static const weighted bigG[] = {{1, 35}, {2, 10}, {4, 15}, {8, 20}, {16, 20}};
        static const weighted bigG1[] = {{1, 20}, {2, 10}, {4, 20}, {8, 25}, {16, 25}};
        if (f & NSX_FEAT_GQA)
            G = n == 1 ? PICK(r, bigG1) : PICK(r, bigG);
        if (G == 16)
            Hkv = 1;
        d_ = tile_width(r);
        /* many query heads per kv head with wide heads (DeepSeek-like
           d = 192): the K and V panels of a few dozen keys fill a cache-sized
           block, so rows span several blocks at a small L */
        if (n == 1 && G >= 8 && nsx_rng_chance(r, 0.6))
            d_ = 64 * (2 + nsx_rng_below(r, 3)) + nsx_rng_below(r, 3) - 1;
        if (d_ > 256)
            d_ = 256;
        dv = nsx_rng_chance(r, 0.5) ? d_ : tile_width(r);
        if (wide_rows) {
            L = tile_size(r, 96, 192);
            B = Hkv = 1;
            G = (f & NSX_FEAT_GQA) ? 1 + nsx_rng_below(r, 2) : 1;
            static const int wide[] = {192, 255, 256};
            d_ = wide[nsx_rng_below(r, 3)];
            dv = nsx_rng_chance(r, 0.7) ? d_ : tile_width(r);
        }
    }
    if (st->nd) {
        d_ = st->d[nsx_rng_below(r, st->nd)];
        dv = nsx_rng_chance(r, 0.5) ? d_ : st->d[nsx_rng_below(r, st->nd)];
    }
    if (st->max_L && L > st->max_L)
        L = st->max_L;

    /* masks and reducer */
    int causal = !((f & NSX_FEAT_CAUSAL_OFF) && nsx_rng_chance(r, fmax(boost, 0.12)));
    int distinct = (f & NSX_FEAT_DISTINCT) && n >= 2 && nsx_rng_chance(r, fmax(boost, 0.15));
    int wkind[NSX_MAX_ORDER] = {0}, wrnd[NSX_MAX_ORDER] = {0}, w[NSX_MAX_ORDER] = {0};
    const int wide_dim = windows && cls == NSX_FZ_PRODUCTION && n == 2 ? nsx_rng_below(r, 2) : 0;
    for (int m = 0; m < n && windows; m++) {
        if (cls == NSX_FZ_PRODUCTION && n == 2) /* the paper's shape: one wide window, one narrow */
            wkind[m] = m == wide_dim ? 9 : 1 + nsx_rng_below(r, 2);
        else if (cls == NSX_FZ_PRODUCTION)
            wkind[m] = nsx_rng_chance(r, 0.75) ? 9 : 1 + nsx_rng_below(r, 8);
        else
            wkind[m] = nsx_rng_chance(r, 0.3) ? 0 : 1 + nsx_rng_below(r, big ? 8 : 7);
        wrnd[m] = nsx_rng_below(r, 1 << 20);
    }
    int source = NSX_SEL_NONE, kdraw = 0;
    unsigned dims = 0;
    if ((f & NSX_FEAT_SELECTION) && nsx_rng_chance(r, fmax(boost, long_seq && n == 1 && !windows ? 1 : 0.3))) {
        static const weighted sources[] = {{NSX_SEL_INDICES, 55}, {NSX_SEL_SCORES, 25}, {NSX_SEL_INDEXER, 20}};
        source = PICK(r, sources);
        /* a computed selection's L x L scores are MPFR's: given lists past 256 */
        if (L > 256)
            source = NSX_SEL_INDICES;
        kdraw = nsx_rng_below(r, 1 << 20);
        while (!dims)
            dims = (unsigned)nsx_rng_next(r) & ((1u << n) - 1u);
    }
    int reduce = NSX_REDUCE_PRODUCT;
    if ((f & NSX_FEAT_SUM) && nsx_rng_chance(r, fmax(boost * 0.8, 0.2)))
        reduce = NSX_REDUCE_SUM;
    else if ((f & NSX_FEAT_MEAN) && nsx_rng_chance(r, fmax(boost * 0.8, 0.25)))
        reduce = NSX_REDUCE_MEAN;

    /* pairs and copies: batches the reference computes too */
    int nleaks = causal && nsx_rng_chance(r, cls == NSX_FZ_PRODUCTION ? 0.3 : 0.45)
                     ? 1 + (cls == NSX_FZ_SMALL ? nsx_rng_below(r, 2) : 0) : 0;
    int probes = !wide_rows && nsx_rng_chance(r, cls == NSX_FZ_SMALL ? 0.35 : cls == NSX_FZ_TILES ? 0.25 : 0);
    d->copies = !wide_rows && nsx_rng_chance(r, cls == NSX_FZ_PRODUCTION ? 0 : 0.15);

    /* keep the work (tuple-channels) within the class: no pairs, fewer
       batches, then (tiles) shorter sequences down to 64 before fewer heads,
       (production) fewer heads before shorter sequences */
    int k = 0;
    for (;;) {
        int batches = B * (1 + d->copies) + nleaks + (probes ? 3 * n : 0);
        for (int m = 0; m < n; m++)
            w[m] = window_of(wkind[m], L, wrnd[m]);
        k = source == NSX_SEL_NONE ? 0 : 1 + kdraw % (kdraw % 10 < 7 ? (L / 2 > 1 ? L / 2 : 1) : L + 1);
        if (big && source != NSX_SEL_NONE && kdraw % 10 < 6) { /* near a multiple of 16..128, +-1 */
            static const int tiles[] = {16, 32, 64, 128};
            int t = tiles[kdraw / 10 % 4];
            k = t * (1 + kdraw / 40 % (cls == NSX_FZ_PRODUCTION ? 2 : 4)) + kdraw / 320 % 3 - 1;
            if (k > L + 1)
                k = 1 + kdraw % (L + 1);
        }
        static const double limit[NSX_FZ_CLASSES] = {NSX_FZ_MPFR_WORK, NSX_FZ_TILES_WORK, NSX_FZ_PRODUCTION_WORK};
        if (L == 1 || work_of(n, batches, L, Hkv * G, Hkv, d_, dv, causal, w, k, dims) <= limit[cls])
            break;
        if (big && (d->copies || probes))
            d->copies = probes = 0;
        else if (big && B > 1)
            B--;
        else if (cls == NSX_FZ_TILES && L > 64) /* tiles: GQA kept over length */
            L = L * 3 / 4;
        else if (big && G > 1)
            G /= 2;
        else
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
    /* exact zeros and subnormals leave the fast path's enclosures
       straddling a rounding boundary: MPFR then, affordable on small
       problems only */
    if ((dist == NSX_DIST_ZEROS || dist == NSX_DIST_SUBNORMAL) && big)
        dist = NSX_DIST_UNIFORM;
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
    nsx_fz_draw_steered(seed, ki, m, NULL, d);
}

void nsx_fz_draw_steered(uint64_t seed, const nsx_kernel_info *ki, const nsx_model *m, const nsx_fz_steer *st,
                         nsx_fz_draw *d)
{
    nsx_fz_steer dflt;
    if (!st) {
        nsx_fz_steer_default(&dflt);
        st = &dflt;
    }
    nsx_rng r = {seed};
    memset(d, 0, sizeof *d);
    d->seed = seed;
    for (;;) {
        nsx_fz_draw t = {.seed = seed};
        draw_once(&r, ki, m, st, &t);
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
