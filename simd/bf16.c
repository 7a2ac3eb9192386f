/*
 * The bf16-input forward's driver (simd/bf16.h): the loops of
 * simd/forward.c (its steps 1-5, the same proven functions of simd/cands.c
 * and simd/tiles.c for every decision of which tuples are visited) over
 * bf16 inputs, with the score operands packed as bf16 pairs for the
 * variant's tile.  A deliberate near-copy of forward.c's loops: those read
 * float32 rows and hand float32 operands to their tiles; here every row is
 * widened from bf16 as it is read and the operands are rounded to bf16
 * once, where they are formed.  n = 1 runs here too, not in simd/n1.c's
 * float32 flash kernel: each head's row s q against a panel of k + kb (one
 * live row per tile, since the rows are prefixes and n = 1 has one: correct,
 * not fast).
 *
 * Also: the variant's resolver (as simd/dispatch.c's, NSX_BF16 and
 * NSX_ISA_DEBUG), the conversions and the ABI description.
 */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/bf16.h"
#include "simd/plan.h"
#include "simd/simd.h"
#include "simd/tiles.h"

/* ---- conversions ---------------------------------------------------------- */

uint16_t nsx_bf16_round(float x)
{
    union {
        float f;
        uint32_t u;
    } b = {.f = x};
    if ((b.u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it one, quiet */
        return (uint16_t)(b.u >> 16 | 0x40u);
    /* Round to nearest even at bit 16: add half an ulp less one, plus the
       kept lowest bit (a tie goes up exactly when that bit is odd).  A
       carry into the exponent is the right result (up to infinity). */
    b.u += 0x7fffu + (b.u >> 16 & 1u);
    return (uint16_t)(b.u >> 16);
}

uint16_t nsx_bf16_round_ftz(float x)
{
    uint16_t h = nsx_bf16_round(x);
    return (h & 0x7f80u) == 0 ? (uint16_t)(h & 0x8000u) : h;
}

void nsx_bf16_round_array(uint16_t *dst, const float *src, size_t len)
{
    for (size_t t = 0; t < len; t++)
        dst[t] = nsx_bf16_round(src[t]);
}

/* ---- the variant ------------------------------------------------------------ */

static const char *const variant_names[NSX_BF16_COUNT] = {"portable", "avx512bf16"};

const char *nsx_bf16_variant_name(int v)
{
    return v >= 0 && v < NSX_BF16_COUNT ? variant_names[v] : NULL;
}

int nsx_bf16_variant_supported(int v)
{
    __builtin_cpu_init();
    switch (v) {
    case NSX_BF16_PORTABLE:
        return 1;
    case NSX_BF16_AVX512BF16: /* the flags simd/bf16_avx512bf16.c is built with */
        return nsx_simd_isa_supported(NSX_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
    default:
        return 0;
    }
}

const nsx_bf16_kernels *nsx_bf16_kernels_get(int v)
{
    switch (v) {
    case NSX_BF16_PORTABLE:
        return &nsx_bf16_portable;
    case NSX_BF16_AVX512BF16:
        return &nsx_bf16_avx512bf16;
    default:
        return NULL;
    }
}

static pthread_once_t variant_once = PTHREAD_ONCE_INIT;
static int variant_chosen = -1;
static char variant_why[160];

static void variant_resolve(void)
{
    const char *env = getenv("NSX_BF16"), *dbg = getenv("NSX_ISA_DEBUG");
    const int forced = env && *env;
    if (forced) {
        int want = -1;
        for (int v = 0; v < NSX_BF16_COUNT; v++)
            if (strcmp(env, variant_names[v]) == 0)
                want = v;
        if (want < 0)
            snprintf(variant_why, sizeof variant_why, "NSX_BF16=%.40s is not one of avx512bf16, portable",
                     env);
        else if (!nsx_bf16_variant_supported(want))
            snprintf(variant_why, sizeof variant_why, "NSX_BF16=%s: this CPU lacks AVX512_BF16", env);
        else
            variant_chosen = want;
    } else {
        for (int v = NSX_BF16_COUNT - 1; v >= 0 && variant_chosen < 0; v--)
            if (nsx_bf16_variant_supported(v))
                variant_chosen = v;
    }
    if (dbg && strcmp(dbg, "1") == 0) {
        if (variant_chosen >= 0)
            fprintf(stderr, "nsimplex: bf16 path %s (%s)\n", variant_names[variant_chosen],
                    forced ? "forced by NSX_BF16" : "detected");
        else
            fprintf(stderr, "nsimplex: bf16 path: %s\n", variant_why);
    }
}

int nsx_bf16_variant(char *why, size_t whylen)
{
    pthread_once(&variant_once, variant_resolve);
    if (variant_chosen < 0 && why && whylen)
        snprintf(why, whylen, "%s", variant_why);
    return variant_chosen;
}

/* ---- the ABI description ---------------------------------------------------- */

static nsx_kernel_info bf16_info;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static void info_init(void)
{
    const nsx_kernel_info *f32 = nsx_simd_info();
    bf16_info = (nsx_kernel_info){
        .abi_version = NSX_KERNEL_ABI_VERSION,
        .name = "nsimplex-simd-bf16",
        .input_format = NSX_FORMAT_BF16,
        .accum_format = NSX_FORMAT_F32,
        .weights_format = NSX_FORMAT_BF16, /* the value GEMM's operand */
        .output_format = NSX_FORMAT_F32,
        .max_order = f32->max_order,
        .features = f32->features,
    };
}

const nsx_kernel_info *nsx_simd_bf16_info(void)
{
    pthread_once(&info_once, info_init);
    return &bf16_info;
}

/* ---- the driver ------------------------------------------------------------- */

typedef struct plan {
    const nsx_kernel_problem *p;
    const nsx_bf16_io *io;
    const nsx_bf16_kernels *ks;
    nsx_plan_sizes s;           /* G, dvp, cap, kb, vb (simd/plan.h) */
    int d2;                     /* bf16 pairs in a row of d, (d + 1) / 2 */
    int chunk;                  /* inner keys per panel, a multiple of nr */
} plan;

typedef struct work {
    int *list[NSX_MAX_ORDER];
    int *selrow;
    float *kt;                  /* [d][chunk] k_mi + kb, transposed, float32 */
    uint32_t *kpan;             /* [G][d2][chunk] bf16 pairs of s q_h (k_mi + kb) */
    float *vpan;                /* [chunk][dvp] */
    uint32_t *vpan2;            /* product reducer: [chunk / 2][dvp] bf16 pairs of keys 2p, 2p + 1 */
    float *uf;                  /* [d] one row's u in float32 */
    uint32_t *u;                /* [mr][d2] */
    float *vp, *ptile;          /* [mr][dvp], [mr][nr] */
    float *lvl_u, *lvl_v;       /* [n-2][d], [n-2][dvp] */
    float *qs;                  /* [G][d] */
    uint32_t *uq;               /* n = 1: [G][d2] bf16 pairs of s q_h, the heads' rows */
    float *acc, *colacc;        /* [G][dvp], [G][chunk] */
    nsx_row_state *st;          /* [G] */
    uint32_t *mask;             /* [mr] */
    int *ex;                    /* [mr][NSX_MAX_ORDER] */
} work;

/* Lays out w from base (NULL: only sizes it); returns the bytes needed. */
static size_t work_layout(const plan *pl, work *w, char *base)
{
    const nsx_kernel_problem *p = pl->p;
    const int mr = pl->ks->mr, nr = pl->ks->nr, n = p->n, G = pl->s.G, dvp = pl->s.dvp;
    size_t off = 0;
#define CARVE(ptr, count) NSX_CARVE(base, off, ptr, count)
    for (int m = 0; m < n; m++)
        CARVE(w->list[m], pl->s.cap[m]);
    CARVE(w->selrow, p->topk > 0 ? p->topk : 1);
    CARVE(w->kt, (size_t)p->d * pl->chunk);
    CARVE(w->kpan, (size_t)G * pl->d2 * pl->chunk);
    CARVE(w->vpan, (size_t)pl->chunk * dvp);
    CARVE(w->vpan2, (size_t)pl->chunk / 2 * dvp);
    CARVE(w->uf, p->d);
    CARVE(w->u, (size_t)mr * pl->d2);
    CARVE(w->vp, (size_t)mr * dvp);
    CARVE(w->ptile, (size_t)mr * nr);
    CARVE(w->lvl_u, (size_t)(n > 2 ? n - 2 : 1) * p->d);
    CARVE(w->lvl_v, (size_t)(n > 2 ? n - 2 : 1) * dvp);
    CARVE(w->qs, (size_t)G * p->d);
    CARVE(w->uq, (size_t)G * pl->d2);
    CARVE(w->acc, (size_t)G * dvp);
    CARVE(w->colacc, (size_t)G * pl->chunk);
    CARVE(w->st, G);
    CARVE(w->mask, mr);
    CARVE(w->ex, (size_t)mr * NSX_MAX_ORDER);
#undef CARVE
    return off;
}

static void plan_init(plan *pl, const nsx_kernel_problem *p, const nsx_bf16_io *io,
                      const nsx_bf16_kernels *ks)
{
    pl->p = p;
    pl->io = io;
    pl->ks = ks;
    nsx_plan_sizes_init(&pl->s, p);
    pl->d2 = (p->d + 1) / 2;
    /* per key: its float32 column, G bf16 pair columns, its value row in
       float32 and in bf16 */
    size_t per_key = (size_t)p->d * 4 + (size_t)pl->s.G * pl->d2 * 4 + (size_t)pl->s.dvp * 6;
    pl->chunk = nsx_plan_chunk(per_key, pl->s.most, ks->nr);
}

/* As forward.c's inner_dim: the padded tile work plus the rows' products
   plus the packing, smallest. */
static int inner_dim(const plan *pl, const int *cnt)
{
    const nsx_kernel_problem *p = pl->p;
    const double mr = pl->ks->mr, nr = pl->ks->nr, width = p->d + p->dv;
    int best = 0;
    double best_cost = INFINITY;
    for (int m = 0; m < p->n; m++) {
        double rows = 1;
        for (int o = 0; o < p->n; o++)
            if (o != m)
                rows *= cnt[o];
        double cost = ceil(rows / mr) * mr * ceil(cnt[m] / nr) * nr * width + rows * width +
                      2.0 * cnt[m] * width;
        if (cost < best_cost) {
            best_cost = cost;
            best = m;
        }
    }
    return best;
}

static const uint16_t *k_row(const plan *pl, int m, int b, int j, int g)
{
    return pl->io->k[m] + nsx_plan_row_at(pl->p, pl->p->d, b, j, g);
}

static const uint16_t *v_row(const plan *pl, int m, int b, int j, int g)
{
    return pl->io->v[m] + nsx_plan_row_at(pl->p, pl->p->dv, b, j, g);
}

/* dst[l] = a[l] * (x[l] + bias) (a not NULL, mul) or a[l] + (x[l] + bias)
   (a NULL: x[l] + bias), x widened from bf16: forward.c's mul_bias and
   add_bias, in float32. */
static void mul_bias(float *dst, const float *a, const uint16_t *x, float bias, int len)
{
    for (int l = 0; l < len; l++)
        dst[l] = a[l] * (nsx_bf16_widen(x[l]) + bias);
}

static void add_bias(float *dst, const float *a, const uint16_t *x, float bias, int len)
{
    for (int l = 0; l < len; l++)
        dst[l] = a ? a[l] + (nsx_bf16_widen(x[l]) + bias) : nsx_bf16_widen(x[l]) + bias;
}

/* The operand conversion of a float32 row into pairs. */
static void to_pairs(uint32_t *dst, const float *x, int d)
{
    for (int l = 0; l < d; l += 2) {
        uint32_t lo = nsx_bf16_round_ftz(x[l]);
        uint32_t hi = l + 1 < d ? nsx_bf16_round_ftz(x[l + 1]) : 0u;
        dst[l / 2] = lo | hi << 16;
    }
}

/* The chunk's panels: k + kb transposed (float32, once), per head the bf16
   pairs of s q_h[l] (k[c][l] + kb) (each product rounded once), and the
   value rows with their bias; zero beyond the keys.  For n = 1 one panel,
   the bf16 pairs of k + kb, shared by the heads: the model's left operand
   is s q (A8), and rounding the product q k to bf16 would be a rounding the
   model does not allow n = 1 (ORACLE.md 3.2: with s a power of two and
   bf16 inputs it charges none; the golden vector tiles/n1_dsa_L4096 fails
   by a ratio of 36 that way).  The heads' rows are then s q_h (uq). */
static void pack(const plan *pl, work *w, int b, int g, int mi, const int *keys, int nk, int ldk)
{
    const int d = pl->p->d, dv = pl->p->dv, dvp = pl->s.dvp, d2 = pl->d2;
    const float kb = pl->s.kb[mi], vb = pl->s.vb[mi];
    float *kt = w->kt;
    for (int c = 0; c < nk; c++) {
        const uint16_t *kr = k_row(pl, mi, b, keys[c], g);
        for (int l = 0; l < d; l++)
            kt[(size_t)l * ldk + c] = nsx_bf16_widen(kr[l]) + kb;
        float *vo = w->vpan + (size_t)c * dvp;
        add_bias(vo, NULL, v_row(pl, mi, b, keys[c], g), vb, dv);
        memset(vo + dv, 0, (size_t)(dvp - dv) * sizeof *vo);
    }
    for (int l = 0; l < d && nk < ldk; l++)
        memset(kt + (size_t)l * ldk + nk, 0, (size_t)(ldk - nk) * sizeof *kt);
    memset(w->vpan + (size_t)nk * dvp, 0, (size_t)(ldk - nk) * dvp * sizeof(float));
    /* The value GEMM's operand (product reducer): keys 2p and 2p + 1 of
       each value column as one bf16 pair (ldk is even). */
    for (int pp = 0; pp < ldk / 2 && pl->p->reduce == NSX_REDUCE_PRODUCT; pp++) {
        const float *v0 = w->vpan + (size_t)(2 * pp) * dvp, *v1 = v0 + dvp;
        uint32_t *dst = w->vpan2 + (size_t)pp * dvp;
        for (int x = 0; x < dvp; x++)
            dst[x] = (uint32_t)nsx_bf16_round_ftz(v0[x]) | (uint32_t)nsx_bf16_round_ftz(v1[x]) << 16;
    }
    if (pl->p->n == 1) {
        for (int pp = 0; pp < d2; pp++) {
            const int l = 2 * pp;
            uint32_t *dst = w->kpan + (size_t)pp * ldk;
            for (int c = 0; c < ldk; c++) {
                uint32_t lo = nsx_bf16_round_ftz(kt[(size_t)l * ldk + c]);
                uint32_t hi = l + 1 < d ? nsx_bf16_round_ftz(kt[(size_t)(l + 1) * ldk + c]) : 0u;
                dst[c] = lo | hi << 16;
            }
        }
        return;
    }
    for (int hh = 0; hh < pl->s.G; hh++) {
        const float *qs = w->qs + (size_t)hh * d;
        uint32_t *kp = w->kpan + (size_t)hh * d2 * ldk;
        for (int pp = 0; pp < d2; pp++) {
            const int l = 2 * pp;
            const float *k0 = kt + (size_t)l * ldk, *k1 = kt + (size_t)(l + 1) * ldk;
            uint32_t *dst = kp + (size_t)pp * ldk;
            for (int c = 0; c < ldk; c++) {
                uint32_t lo = nsx_bf16_round_ftz(qs[l] * k0[c]);
                uint32_t hi = l + 1 < d ? nsx_bf16_round_ftz(qs[l + 1] * k1[c]) : 0u;
                dst[c] = lo | hi << 16;
            }
        }
    }
}

static void flush_rows(const plan *pl, work *w, int rows, int nk, int ldk, int np)
{
    const nsx_kernel_problem *p = pl->p;
    const int mr = pl->ks->mr, nr = pl->ks->nr;
    nsx_bf16_tile t = {
        .d2 = pl->d2, .dvp = pl->s.dvp, .sum = p->reduce != NSX_REDUCE_PRODUCT,
        .u = w->u, .vp = w->vp, .ldk = ldk, .mask = w->mask, .ptile = w->ptile,
    };
    /* Padding rows are zero (forward.c's flush_rows says why). */
    if (rows < mr) {
        memset(w->u + (size_t)rows * pl->d2, 0, (size_t)(mr - rows) * pl->d2 * sizeof *w->u);
        memset(w->vp + (size_t)rows * pl->s.dvp, 0, (size_t)(mr - rows) * pl->s.dvp * sizeof(float));
    }
    for (int cb = 0; (t.nc = nsx_tile_len(nk, cb, nr)) > 0; cb += t.nc) {
        const uint32_t cols = nsx_tile_cols(t.nc);
        for (int r = 0; r < mr; r++)
            w->mask[r] = nsx_tile_row_mask(cols, r < rows, w->ex + r * NSX_MAX_ORDER,
                                           p->distinct ? np : 0, cb);
        t.vpan = w->vpan + (size_t)cb * pl->s.dvp;
        t.vpan2 = w->vpan2 + (size_t)(cb / 2) * pl->s.dvp;
        for (int hh = 0; hh < pl->s.G; hh++) {
            nsx_row_state *st = &w->st[hh];
            if (p->n == 1) { /* the head's row s q_h against the shared panel */
                memcpy(w->u, w->uq + (size_t)hh * pl->d2, (size_t)pl->d2 * sizeof *w->u);
                t.kp = w->kpan + cb;
                t.colacc = st->colacc ? st->colacc + cb : NULL;
                pl->ks->tile(&t, st);
                continue;
            }
            t.kp = w->kpan + (size_t)hh * pl->d2 * ldk + cb;
            t.colacc = st->colacc ? st->colacc + cb : NULL;
            pl->ks->tile(&t, st);
        }
    }
}

/* forward.c's prefix_level over bf16 rows. */
static void prefix_level(const plan *pl, work *w, int b, int g, int m, int j, int lv,
                         float *u_out, float *v_out)
{
    const nsx_kernel_problem *p = pl->p;
    const uint16_t *kr = k_row(pl, m, b, j, g), *vr = v_row(pl, m, b, j, g);
    if (lv == 0) {
        add_bias(u_out, NULL, kr, pl->s.kb[m], p->d);
        add_bias(v_out, NULL, vr, pl->s.vb[m], p->dv);
        return;
    }
    const float *u_in = w->lvl_u + (size_t)(lv - 1) * p->d;
    const float *v_in = w->lvl_v + (size_t)(lv - 1) * pl->s.dvp;
    mul_bias(u_out, u_in, kr, pl->s.kb[m], p->d);
    if (p->reduce != NSX_REDUCE_PRODUCT)
        add_bias(v_out, v_in, vr, pl->s.vb[m], p->dv);
    else
        mul_bias(v_out, v_in, vr, pl->s.vb[m], p->dv);
}

/* forward.c's sweep (the odometer over the prefix tuples); each row's u is
   formed in float32 and rounded to bf16 pairs once. */
static void sweep(const plan *pl, work *w, int b, int g, const int *pd, int np, const int *cnt,
                  const int *inner_keys, int nk, int ldk)
{
    const nsx_kernel_problem *p = pl->p;
    const int d = p->d, dvp = pl->s.dvp, mr = pl->ks->mr;
    int idx[NSX_MAX_ORDER] = {0}, lim[NSX_MAX_ORDER], keys[NSX_MAX_ORDER];
    int valid = 0, rows = 0;
    for (int k = 0; k < np; k++)
        lim[k] = cnt[pd[k]];
    for (;;) {
        for (int k = 0; k < np; k++)
            keys[k] = w->list[pd[k]][idx[k]];
        int dup = p->distinct ? nsx_tile_dup_level(keys, np) : -1;
        if (dup < 0) {
            for (int lv = valid; lv < np - 1; lv++)
                prefix_level(pl, w, b, g, pd[lv], keys[lv], lv, w->lvl_u + (size_t)lv * d,
                             w->lvl_v + (size_t)lv * dvp);
            valid = np > 0 ? np - 1 : 0;
            float *vr = w->vp + (size_t)rows * dvp;
            if (np == 0) { /* n = 1: one row, each head's s q (flush_rows) */
                for (int x = 0; x < dvp; x++)
                    vr[x] = p->reduce == NSX_REDUCE_PRODUCT ? 1.0f : 0.0f;
            } else {
                prefix_level(pl, w, b, g, pd[np - 1], keys[np - 1], np - 1, w->uf, vr);
                to_pairs(w->u + (size_t)rows * pl->d2, w->uf, d);
            }
            if (p->distinct)
                nsx_tile_ex(inner_keys, nk, keys, np, w->ex + rows * NSX_MAX_ORDER);
            if (++rows == mr) {
                flush_rows(pl, w, rows, nk, ldk, np);
                rows = 0;
            }
        }
        int k = nsx_tile_next(idx, lim, np, dup);
        if (k < 0)
            break;
        if (k < valid)
            valid = k;
    }
    if (rows)
        flush_rows(pl, w, rows, nk, ldk, np);
}

/* (E3), (E6) for query head h, as forward.c's finish. */
static void finish(const plan *pl, const nsx_row_state *st, int b, int h, int i)
{
    const nsx_kernel_problem *p = pl->p;
    float *o = pl->io->o + (((size_t)b * p->L + i) * p->H + h) * p->dv;
    float *lse = pl->io->lse ? pl->io->lse + ((size_t)b * p->H + h) * p->L + i : NULL;
    if (st->m == -INFINITY) { /* empty slice */
        memset(o, 0, (size_t)p->dv * sizeof *o);
        if (lse)
            *lse = -INFINITY;
        return;
    }
    double f = p->out_scale / st->sum;
    if (p->reduce == NSX_REDUCE_MEAN)
        f /= p->n;
    for (int c = 0; c < p->dv; c++)
        o[c] = (float)(st->acc[c] * f);
    if (lse)
        *lse = (float)(st->m + log((double)st->sum));
}

static void run_item(const plan *pl, work *w, int b, int g, int i)
{
    const nsx_kernel_problem *p = pl->p;
    const int n = p->n, G = pl->s.G, dvp = pl->s.dvp, nr = pl->ks->nr;
    const int sum = p->reduce != NSX_REDUCE_PRODUCT;
    int cnt[NSX_MAX_ORDER];
    const int empty = nsx_plan_lists(p, b, i, w->selrow, w->list, cnt);
    for (int hh = 0; hh < G; hh++) {
        nsx_row_state *st = &w->st[hh];
        st->m = -INFINITY;
        st->sum = 0.0f;
        st->acc = w->acc + (size_t)hh * dvp;
        st->dvp = dvp;
        st->colacc = sum ? w->colacc + (size_t)hh * pl->chunk : NULL;
        st->ncol = 0;
        memset(st->acc, 0, (size_t)dvp * sizeof *st->acc);
    }
    if (!empty) {
        const int mi = inner_dim(pl, cnt);
        int pd[NSX_MAX_ORDER], np = 0;
        for (int m = 0; m < n; m++)
            if (m != mi)
                pd[np++] = m;
        for (int hh = 0; hh < G; hh++) {
            const uint16_t *q = pl->io->q + (((size_t)b * p->L + i) * p->H + g * G + hh) * p->d;
            for (int l = 0; l < p->d; l++)
                w->qs[(size_t)hh * p->d + l] = (float)(p->score_scale * nsx_bf16_widen(q[l]));
            if (n == 1)
                to_pairs(w->uq + (size_t)hh * pl->d2, w->qs + (size_t)hh * p->d, p->d);
        }
        for (int c0 = 0, nk; (nk = nsx_tile_len(cnt[mi], c0, pl->chunk)) > 0; c0 += nk) {
            const int *keys = w->list[mi] + c0;
            const int ldk = nsx_tile_ld(nk, nr);
            pack(pl, w, b, g, mi, keys, nk, ldk);
            for (int hh = 0; hh < G && sum; hh++) {
                w->st[hh].ncol = ldk;
                memset(w->st[hh].colacc, 0, (size_t)ldk * sizeof(float));
            }
            sweep(pl, w, b, g, pd, np, cnt, keys, nk, ldk);
            for (int hh = 0; hh < G && sum; hh++) {
                nsx_row_state *st = &w->st[hh];
                for (int c = 0; c < nk; c++)
                    for (int x = 0; x < dvp; x++)
                        st->acc[x] += st->colacc[c] * w->vpan[(size_t)c * dvp + x];
                st->ncol = 0;
            }
        }
    }
    for (int hh = 0; hh < G; hh++)
        finish(pl, &w->st[hh], b, g * G + hh, i);
}

/* nsx_simd_check's rules on the problem; the buffers here are bf16. */
static int bf16_check(const nsx_kernel_problem *p, const nsx_bf16_io *io)
{
    if (!p || !io || !io->q || !io->o)
        return -1;
    nsx_kernel_io probe = {.q = (const float *)io->q, .o = io->o, .lse = io->lse};
    for (int m = 0; m < p->n && m < NSX_MAX_ORDER; m++) {
        if (!io->k[m] || !io->v[m])
            return -1;
        probe.k[m] = (const float *)io->k[m]; /* only compared with NULL */
        probe.v[m] = (const float *)io->v[m];
    }
    return nsx_simd_check(p, &probe, NULL, 0);
}

int nsx_simd_forward_bf16_with(const nsx_kernel_problem *p, const nsx_bf16_io *io, int threads,
                               const nsx_bf16_kernels *ks)
{
    if (bf16_check(p, io))
        return NSX_SIMD_UNSUPPORTED;
    assert(ks && nsx_bf16_variant_supported(ks->variant));
    plan pl;
    plan_init(&pl, p, io, ks);
    const long items = (long)p->L * p->B * p->Hkv;
    const int T = nsx_plan_threads(threads, items);
    /* All scratch first (zero: forward.c's driver says why). */
    work *ws = calloc((size_t)T, sizeof *ws);
    void **blocks = ws ? nsx_plan_blocks(T, work_layout(&pl, &ws[0], NULL)) : NULL;
    const int fail = !blocks;
    for (int t = 0; t < T && !fail; t++)
        work_layout(&pl, &ws[t], blocks[t]);
    if (!fail) {
        const long per_i = (long)p->B * p->Hkv;
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            const int i = p->L - 1 - (int)(it / per_i);
            const int b = (int)(it % per_i / p->Hkv), g = (int)(it % p->Hkv);
            run_item(&pl, &ws[omp_get_thread_num()], b, g, i);
        }
    }
    nsx_plan_blocks_free(blocks, T);
    free(ws);
    return fail ? NSX_SIMD_ENOMEM : NSX_SIMD_OK;
}

int nsx_simd_forward_bf16_variant(const nsx_kernel_problem *p, const nsx_bf16_io *io, int threads,
                                  int variant)
{
    if (bf16_check(p, io))
        return NSX_SIMD_UNSUPPORTED;
    if (!nsx_bf16_variant_supported(variant) || !nsx_bf16_kernels_get(variant))
        return NSX_SIMD_EISA;
    return nsx_simd_forward_bf16_with(p, io, threads, nsx_bf16_kernels_get(variant));
}

int nsx_simd_forward_bf16(const nsx_kernel_problem *p, const nsx_bf16_io *io, int threads)
{
    if (bf16_check(p, io))
        return NSX_SIMD_UNSUPPORTED;
    int v = nsx_bf16_variant(NULL, 0);
    if (v < 0)
        return NSX_SIMD_EISA;
    return nsx_simd_forward_bf16_variant(p, io, threads, v);
}
