/*
 * The streaming forward (simd/simd.h): loops, candidate lists, packing and
 * threads.  The ISA file's tile (simd/kern.h) does the arithmetic.  Its
 * tests of E2's distinct are a deliberate independent copy (code under test).
 *
 * Per work item (batch b, kv head g, query i), for the G = H / Hkv query
 * heads that read g:
 *   1. C_m(i) for each dimension (simd/cands.h); an empty one empties the slice.
 * Every decision of which tuples are visited (the lists, the whole-item
 * skip, the chunks and column blocks, the column and row masks, the
 * odometer's skips) is a proven function of simd/cands.c or simd/tiles.c
 * (docs/PROOFS.md); this file only calls them.
 *   2. The inner dimension mi is the one whose padded tile area is smallest;
 *      the others are the prefix dimensions, enumerated by an odometer.
 *   3. The inner keys, in chunks that keep the panels in L2, are packed:
 *      per head h, K transposed and scaled by that head's query,
 *      Kq_h[l][c] = s q_h[l] (k_mi[c][l] + kb_mi), and V [ldk][dvp] + vb.
 *      Folding q into the panel (d x keys per head and query) leaves the
 *      rows below independent of the head, so they are built once for the
 *      G heads instead of once per head.
 *   4. Every prefix gives one tile row, u = (k_p1 + kb) o ... o (k_pn-1 + kb)
 *      (all ones for n = 1), and its reduced value row; every MR prefixes,
 *      each head's tile runs over the chunk's column blocks, updating that
 *      head's running max, sum and accumulator.
 *   5. O = out_scale acc / sum (/ n for mean), LSE = max + log(sum).
 * Items go to threads dynamically, latest query first: with a causal mask
 * the late rows cost the most, so they start first (longest job first).
 */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "simd/kern.h"
#include "simd/n1.h"
#include "simd/plan.h"
#include "simd/simd.h"
#include "simd/tiles.h"

/* Everything one call shares between threads. */
typedef struct plan {
    const nsx_kernel_problem *p;
    const nsx_kernel_io *io;
    const nsx_isa_kernels *ks;
    nsx_plan_sizes s;           /* G, dvp, cap, kb, vb (simd/plan.h) */
    int chunk;                  /* inner keys per panel, a multiple of nr */
} plan;

/* One thread's scratch, carved from one 64-byte aligned block. */
typedef struct work {
    int *list[NSX_MAX_ORDER];   /* C_m(i) */
    int *selrow;                /* valid entries of sel[b, i, :] */
    float *kpan, *vpan;         /* [G+1][d][chunk] (unscaled, then per head), [chunk][dvp] */
    float *u, *vp, *ptile;      /* [mr][d], [mr][dvp], [mr][nr] */
    float *lvl_u, *lvl_v;       /* odometer levels: [n-2][d], [n-2][dvp] */
    float *zero;                /* [max(d, dvp)] zeros: the padding rows */
    /* The tile's rows and the odometer's levels by address: a level-0
       factor without a bias is the input row itself, else the buffer row */
    const float *urow[NSX_TILE_MR_MAX], *vrow[NSX_TILE_MR_MAX];
    const float *lvl_up[NSX_MAX_ORDER], *lvl_vp[NSX_MAX_ORDER];
    float *qs;                  /* [G][d] s q of each head */
    float *acc, *colacc;        /* [G][dvp], [G][chunk] */
    nsx_row_state *st;          /* [G] */
    uint32_t *mask;             /* [mr] */
    int *ex;                    /* [mr][NSX_MAX_ORDER] inner column equal to a prefix key */
} work;

/* Lays out w from base (NULL: only sizes it); returns the bytes needed. */
static size_t work_layout(const plan *pl, work *w, char *base)
{
    const nsx_kernel_problem *p = pl->p;
    const int mr = pl->ks->mr, nr = pl->ks->nr, n = p->n, G = pl->s.G, dvp = pl->s.dvp;
    const size_t zlen = (size_t)(p->d > dvp ? p->d : dvp); /* the zero row: a u or a vp row */
    size_t off = 0;
#define CARVE(ptr, count) NSX_CARVE(base, off, ptr, count)
    for (int m = 0; m < n; m++)
        CARVE(w->list[m], pl->s.cap[m]);
    CARVE(w->selrow, p->topk > 0 ? p->topk : 1);
    CARVE(w->kpan, (size_t)(G + 1) * p->d * pl->chunk);
    CARVE(w->vpan, (size_t)pl->chunk * dvp);
    CARVE(w->u, (size_t)mr * p->d);
    CARVE(w->vp, (size_t)mr * dvp);
    CARVE(w->ptile, (size_t)mr * nr);
    CARVE(w->lvl_u, (size_t)(n > 2 ? n - 2 : 1) * p->d);
    CARVE(w->lvl_v, (size_t)(n > 2 ? n - 2 : 1) * dvp);
    CARVE(w->zero, zlen);
    CARVE(w->qs, (size_t)G * p->d);
    CARVE(w->acc, (size_t)G * dvp);
    CARVE(w->colacc, (size_t)G * pl->chunk);
    CARVE(w->st, G);
    CARVE(w->mask, mr);
    CARVE(w->ex, (size_t)mr * NSX_MAX_ORDER);
#undef CARVE
    if (base) {
        memset(w->zero, 0, zlen * sizeof *w->zero);
        for (int r = 0; r < NSX_TILE_MR_MAX; r++)
            w->urow[r] = w->vrow[r] = w->zero;
    }
    return off;
}

static void plan_init(plan *pl, const nsx_kernel_problem *p, const nsx_kernel_io *io,
                      const nsx_isa_kernels *ks)
{
    pl->p = p;
    pl->io = io;
    pl->ks = ks;
    assert(ks->mr <= NSX_TILE_MR_MAX);
    nsx_plan_sizes_init(&pl->s, p);
    /* per key: the G + 1 K panels (unscaled, then per head) and the V panel */
    size_t per_key = ((size_t)(pl->s.G + 1) * p->d + pl->s.dvp) * sizeof(float);
    pl->chunk = nsx_plan_chunk(per_key, pl->s.most, ks->nr);
}

size_t nsx_simd_scratch_bytes(const nsx_kernel_problem *p)
{
    assert(p);
    plan pl;
    work w;
    int isa = nsx_simd_isa(NULL, 0);
    const nsx_n1_kernels *kt = p->n == 1 ? nsx_n1_tune(isa < 0 ? NSX_ISA_SCALAR : isa, NULL, 0) : NULL;
    if (kt) /* ordinary attention: simd/n1.c */
        return nsx_n1_scratch_bytes(p, kt);
    plan_init(&pl, p, NULL, nsx_simd_kernels(isa < 0 ? NSX_ISA_SCALAR : isa));
    return work_layout(&pl, &w, NULL);
}

void nsx_row_state_rescale(nsx_row_state *st, float m_new)
{
    assert(st && m_new > st->m);
    /* exp(-inf) = 0: the first allowed tuple finds acc, sum and colacc zero. */
    float a = expf(st->m - m_new);
    st->sum *= a;
    for (int c = 0; c < st->dvp; c++)
        st->acc[c] *= a;
    for (int c = 0; c < st->ncol; c++)
        st->colacc[c] *= a;
    st->m = m_new;
}

/* The inner dimension: the padded tile work (rows rounded to mr, keys to nr)
   plus the rows' prefix products plus the packing, smallest. */
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

static const float *k_row(const plan *pl, int m, int b, int j, int g)
{
    return nsx_plan_row(pl->p, pl->io->k[m], pl->p->d, b, j, g);
}

static const float *v_row(const plan *pl, int m, int b, int j, int g)
{
    return nsx_plan_row(pl->p, pl->io->v[m], pl->p->dv, b, j, g);
}

/* Per head hh the K panel [d][ldk] at kpan + (hh + 1) d ldk, transposed (a
   tile row's scores are then one broadcast-FMA per l) and scaled by the
   head's s q; the V panel [ldk][dvp]; biases added, zero beyond the keys.
   The transpose is done once, into the slot before the heads' panels, and
   each head's copy is a vectorized scaling of its rows. */
static void pack(const plan *pl, work *w, int b, int g, int mi, const int *keys, int nk, int ldk)
{
    const int d = pl->p->d, dv = pl->p->dv, dvp = pl->s.dvp;
    const float kb = pl->s.kb[mi], vb = pl->s.vb[mi];
    float *kt = w->kpan;
    for (int c = 0; c < nk; c++) {
        const float *kr = k_row(pl, mi, b, keys[c], g);
        for (int l = 0; l < d; l++)
            kt[(size_t)l * ldk + c] = kr[l] + kb;
        float *vo = w->vpan + (size_t)c * dvp;
        pl->ks->add_bias(vo, NULL, v_row(pl, mi, b, keys[c], g), vb, dv);
        memset(vo + dv, 0, (size_t)(dvp - dv) * sizeof *vo);
    }
    for (int l = 0; l < d && nk < ldk; l++)
        memset(kt + (size_t)l * ldk + nk, 0, (size_t)(ldk - nk) * sizeof *kt);
    memset(w->vpan + (size_t)nk * dvp, 0, (size_t)(ldk - nk) * dvp * sizeof(float));
    for (int hh = 0; hh < pl->s.G; hh++)
        for (int l = 0; l < d; l++)
            pl->ks->scale(w->kpan + ((size_t)(hh + 1) * d + l) * ldk, kt + (size_t)l * ldk,
                          w->qs[(size_t)hh * d + l], ldk);
}

/* Runs the rows [0, rows) against every column block of the chunk, for
   every head. */
static void flush_rows(const plan *pl, work *w, int rows, int nk, int ldk, int np)
{
    const nsx_kernel_problem *p = pl->p;
    const int mr = pl->ks->mr, nr = pl->ks->nr;
    nsx_tile t = {
        .d = p->d, .dvp = pl->s.dvp, .sum = p->reduce != NSX_REDUCE_PRODUCT,
        .u = w->urow, .vp = w->vrow, .ldk = ldk, .mask = w->mask, .ptile = w->ptile,
    };
    /* Rows past `rows` are padding: zero, like the columns past the keys
       (pack).  The tiles multiply them by zero weights, and a previous work
       item's row left there (a NaN or an infinity of another batch's
       future) would make 0 * NaN leak into this row. */
    for (int r = rows; r < mr; r++)
        w->urow[r] = w->vrow[r] = w->zero;
    /* The column blocks tile the chunk [0, nk): each begins where the one
       before ended. */
    for (int cb = 0; (t.nc = nsx_tile_len(nk, cb, nr)) > 0; cb += t.nc) {
        const uint32_t cols = nsx_tile_cols(t.nc);
        /* Padding rows are out; with distinct, so is the inner key equal to
           one of the row's prefix keys. */
        for (int r = 0; r < mr; r++)
            w->mask[r] = nsx_tile_row_mask(cols, r < rows, w->ex + r * NSX_MAX_ORDER,
                                           p->distinct ? np : 0, cb);
        t.vpan = w->vpan + (size_t)cb * pl->s.dvp;
        for (int hh = 0; hh < pl->s.G; hh++) {
            nsx_row_state *st = &w->st[hh];
            t.kp = w->kpan + (size_t)(hh + 1) * p->d * ldk + cb;
            t.colacc = st->colacc ? st->colacc + cb : NULL;
            pl->ks->tile(&t, st);
        }
    }
}

/* Odometer level lv of prefix dimension m at key j:
   u = u_in o (k_m[j] + kb_m), and v = v_in o (v_m[j] + vb_m) (product) or
   v_in + (v_m[j] + vb_m) (sum), with u_in, v_in the level below; at level
   0 u = k_m[j] + kb_m and v = v_m[j] + vb_m.  Written to u_buf, v_buf, and
   *u, *v set to where the level is: at level 0 without a bias, the input
   row itself (a value row only when dv = dvp: the tiles read dvp floats). */
static void prefix_level(const plan *pl, work *w, int b, int g, int m, int j, int lv, float *u_buf,
                         float *v_buf, const float **u, const float **v)
{
    const nsx_kernel_problem *p = pl->p;
    const nsx_isa_kernels *ks = pl->ks;
    const float *kr = k_row(pl, m, b, j, g), *vr = v_row(pl, m, b, j, g);
    if (lv == 0) {
        if (pl->s.kb[m] == 0)
            *u = kr;
        else
            ks->add_bias(u_buf, NULL, kr, pl->s.kb[m], p->d), *u = u_buf;
        if (pl->s.vb[m] == 0 && p->dv == pl->s.dvp)
            *v = vr;
        else
            ks->add_bias(v_buf, NULL, vr, pl->s.vb[m], p->dv), *v = v_buf;
        return;
    }
    ks->mul_bias(u_buf, w->lvl_up[lv - 1], kr, pl->s.kb[m], p->d);
    if (p->reduce != NSX_REDUCE_PRODUCT)
        ks->add_bias(v_buf, w->lvl_vp[lv - 1], vr, pl->s.vb[m], p->dv);
    else
        ks->mul_bias(v_buf, w->lvl_vp[lv - 1], vr, pl->s.vb[m], p->dv);
    *u = u_buf, *v = v_buf;
}

/*
 * Every prefix tuple against one chunk of inner keys, for all G heads.  The
 * odometer's digit k walks C_{pd[k]}; level k holds
 * (k_{pd[0]} + kb) o ... o (k_{pd[k]} + kb) (and the value product likewise)
 * and is recomputed only when a digit at or below k moved (`valid` counts
 * the levels still current), so a row costs one d-vector product, not n-1.
 */
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
                             w->lvl_v + (size_t)lv * dvp, &w->lvl_up[lv], &w->lvl_vp[lv]);
            valid = np > 0 ? np - 1 : 0;
            float *ur = w->u + (size_t)rows * d, *vr = w->vp + (size_t)rows * dvp;
            if (np == 0) { /* n = 1: the panel alone is the score */
                for (int l = 0; l < d; l++)
                    ur[l] = 1.0f;
                for (int x = 0; x < dvp; x++)
                    vr[x] = p->reduce == NSX_REDUCE_PRODUCT ? 1.0f : 0.0f;
                w->urow[rows] = ur, w->vrow[rows] = vr;
            } else {
                prefix_level(pl, w, b, g, pd[np - 1], keys[np - 1], np - 1, ur, vr, &w->urow[rows],
                             &w->vrow[rows]);
            }
            if (p->distinct)
                nsx_tile_ex(inner_keys, nk, keys, np, w->ex + rows * NSX_MAX_ORDER);
            if (++rows == mr) {
                flush_rows(pl, w, rows, nk, ldk, np);
                rows = 0;
            }
        }
        /* A repeated key at level dup: every prefix that shares levels
           0..dup repeats it, and is skipped. */
        int k = nsx_tile_next(idx, lim, np, dup);
        if (k < 0)
            break;
        if (k < valid)
            valid = k;
    }
    if (rows)
        flush_rows(pl, w, rows, nk, ldk, np);
}

/* (E3), (E6) for query head h from its running state. */
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
    /* The last scaling in double: one rounding per output, not three. */
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
            const float *q = pl->io->q + (((size_t)b * p->L + i) * p->H + g * G + hh) * p->d;
            for (int l = 0; l < p->d; l++)
                w->qs[(size_t)hh * p->d + l] = (float)(p->score_scale * q[l]);
        }
        /* The chunks tile the inner list [0, cnt[mi]): each begins where
           the one before ended. */
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
                /* sum reducer: the inner dimension's values, weighted by
                   their column sums (sum_J A_J v_mi[j_mi] = sum_j colsum_j v_mi[j]). */
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

int nsx_simd_forward_isa(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads,
                         int isa)
{
    if (nsx_simd_check(p, io, NULL, 0))
        return NSX_SIMD_UNSUPPORTED;
    if (!nsx_simd_isa_supported(isa) || !nsx_simd_kernels(isa))
        return NSX_SIMD_EISA;
    if (p->n == 1) /* ordinary attention: the flash kernel of simd/n1.c */
        return nsx_n1_forward_isa(p, io, threads, isa);
    plan pl;
    plan_init(&pl, p, io, nsx_simd_kernels(isa));
    const long items = (long)p->L * p->B * p->Hkv;
    const int T = nsx_plan_threads(threads, items);
    /* All scratch first, so that a failure writes nothing; zeros: rows past
       the last prefix are read (and masked) by the tile. */
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

int nsx_simd_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads)
{
    if (nsx_simd_check(p, io, NULL, 0))
        return NSX_SIMD_UNSUPPORTED;
    int isa = nsx_simd_isa(NULL, 0);
    if (isa < 0)
        return NSX_SIMD_EISA;
    return nsx_simd_forward_isa(p, io, threads, isa);
}

/* The ISA files' tables (simd/kern.h), looked up here so that the
   resolver (simd/dispatch.c) stays a leaf. */
const nsx_isa_kernels *nsx_simd_kernels(int isa)
{
    switch (isa) {
    case NSX_ISA_SCALAR:
        return &nsx_kernels_scalar;
    case NSX_ISA_AVX2:
        return &nsx_kernels_avx2;
    case NSX_ISA_AVX512:
        return &nsx_kernels_avx512;
    default:
        return NULL;
    }
}
