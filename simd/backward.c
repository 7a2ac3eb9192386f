/*
 * The streaming backward (simd/simd.h, nsx_simd_backward): loops, candidate
 * lists, packing, threads and the scatter of the gradients.  The ISA file's
 * tile (simd/bwd_kern.h) does the arithmetic.  Like simd/forward.c, whose
 * tiling it follows, it shares the forward's setup (simd/plan.h) and takes
 * every decision of which tuples are visited from the proven functions of
 * simd/cands.c and simd/tiles.c (docs/PROOFS.md).  Nothing of size L^n is
 * held: P is recomputed from the LSE the forward saved, a tile at a time.
 *
 * Per work item (batch b, kv head g, query i), for the G = H / Hkv query
 * heads that read g (E7, docs/SPEC.md 1.7):
 *   1. C_m(i) for each dimension (simd/cands.h); an empty one empties the
 *      slice (dq = 0, nothing else).  Per head: Delta = dO . O (E7b, from the
 *      saved O), lse from the forward, s q.  A non-finite lse is an empty
 *      slice (the forward wrote -inf or +inf there).
 *   2. The inner dimension mi and the prefix dimensions as in the forward.
 *   3. Per chunk of inner keys: K~ and V~ packed both transposed and by rows
 *      (the tile reads each both ways); per-chunk accumulators of dK_mi and
 *      dV_mi for these keys, summed over the G heads.
 *   4. Every prefix tuple gives a row: u (product of its keys' K~), vp
 *      (product or sum of their V~), and for each prefix dimension the
 *      leave-one-out products (E7e's prod_{m' != m}, E7f's dW_m).  Every MR
 *      rows, their pairs with the heads fill tiles of MR rows, and each tile
 *      runs over the chunk's column blocks; then
 *      dq_h += u o x_h (E7d), and the prefix keys' dk, dv rows get
 *      sum_h s q_h o x_h o loo and sum_h out_scale dO_h o y_h o loo (E7e-f).
 *   5. At the chunk's end its dK_mi, dV_mi are added to the inner keys' rows;
 *      at the item's end dq = s dq_h (E7g: per head).
 *
 * Races on dk, dv (E7g sums over queries and heads): every key row gets
 * terms from many work items.  Items are dealt round-robin to S slots by
 * their query alone (query i to slot (L - 1 - i) mod S, whatever the batch
 * and kv head), each slot adds into its own partial dk, dv (slot 0 into the
 * outputs), one thread per slot at a time, in a fixed order (batch, kv
 * head, latest query first); then the partials are added in slot order.
 * A key row's terms thus arrive in an order that depends on the queries
 * alone, not on the batch: two batches with the same k, v whose q and dO
 * agree from position t on get the same bits in their key gradients at
 * positions >= t (with causal on, only queries i >= j reach key j).  S
 * depends on the sizes and the machine's processor count (twice it, 4 to
 * 64, at most L, as long as the partials fit PART_BYTES), never on the threads
 * asked for, so the result is the same bits for any thread count.  Ownership of key blocks
 * would need no partials, but a key of dimension m is touched by tuples whose
 * other keys range over every dimension, so each dimension would need its
 * own pass recomputing P: n + 1 passes instead of one.
 */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/bwd_kern.h"
#include "simd/kern.h"
#include "simd/plan.h"
#include "simd/simd.h"
#include "simd/tiles.h"

/* The memory the slots' partial gradients (see above) may take. */
#define PART_BYTES ((size_t)64 << 20)

typedef struct plan {
    const nsx_kernel_problem *p;
    const nsx_kernel_bwd_io *io;
    const nsx_bwd_kernels *ks;
    const nsx_isa_kernels *fk;  /* the forward's table of the same ISA: its vector helpers */
    nsx_plan_sizes s;           /* G, dvp, cap, kb, vb (simd/plan.h) */
    int ldd;                    /* d rounded up to 16: the tile's row stride */
    int chunk;                  /* inner keys per chunk, a multiple of nr */
    int npm;                    /* room for prefix dimensions: max(n - 1, 1) */
    float f;                    /* out_scale, / n for mean (the sum reducers' dW) */
    size_t ksize, vsize;        /* elements of one k_m, one v_m */
    int slots;
    float **part;               /* [slots][2n]: dk_0..dk_n-1, dv_0..dv_n-1 */
} plan;

typedef struct work {
    int *list[NSX_MAX_ORDER];
    int *selrow;
    float *kt, *kr, *vt, *vr;   /* [d][chunk], [chunk][ldd], [dvp][chunk], [chunk][dvp] */
    float *dkt, *dvt;           /* [d][chunk], [dvp][chunk] */
    float *cola, *dpcol;        /* [G][chunk] */
    float *u, *vp;              /* [mr][d], [mr][dvp] */
    float *loo_k, *loo_v;       /* [npm][mr][d], [npm][mr][dvp] */
    int *rk, *ex;               /* [mr][NSX_MAX_ORDER]: row keys, their inner columns */
    float *uq, *dov, *dprow;    /* [mr][ldd], [mr][dvp], [mr] */
    float *x, *y, *rowa;        /* [mr][ldd], [mr][dvp], [mr] */
    float *xq, *yo;             /* [mr][d], [mr][dvp]: summed over heads */
    float *qs, *dq;             /* [G][d] */
    float *lse, *delta;         /* [G] */
    int *heads;                 /* [G]: the heads with a non-empty slice */
    float *lse_row, *delta_row; /* [mr]: each tile row's head's */
    int *pr, *ph;               /* [mr]: each tile row's prefix row and head */
    uint32_t *mask;             /* [mr] */
    float *ptile;               /* [2][mr][nr] */
} work;

static size_t work_layout(const plan *pl, work *w, char *base)
{
    const nsx_kernel_problem *p = pl->p;
    const size_t mr = (size_t)pl->ks->mr, nr = (size_t)pl->ks->nr, d = (size_t)p->d;
    const size_t dvp = (size_t)pl->s.dvp, ldd = (size_t)pl->ldd, ch = (size_t)pl->chunk, G = (size_t)pl->s.G;
    size_t off = 0;
#define CARVE(ptr, count) NSX_CARVE(base, off, ptr, count)
    for (int m = 0; m < p->n; m++)
        CARVE(w->list[m], pl->s.cap[m]);
    CARVE(w->selrow, p->topk > 0 ? p->topk : 1);
    CARVE(w->kt, d * ch);
    CARVE(w->kr, ch * ldd);
    CARVE(w->vt, dvp * ch);
    CARVE(w->vr, ch * dvp);
    CARVE(w->dkt, d * ch);
    CARVE(w->dvt, dvp * ch);
    CARVE(w->cola, G * ch);
    CARVE(w->dpcol, G * ch);
    CARVE(w->u, mr * d);
    CARVE(w->vp, mr * dvp);
    CARVE(w->loo_k, (size_t)pl->npm * mr * d);
    CARVE(w->loo_v, (size_t)pl->npm * mr * dvp);
    CARVE(w->rk, mr * NSX_MAX_ORDER);
    CARVE(w->ex, mr * NSX_MAX_ORDER);
    CARVE(w->uq, mr * ldd);
    CARVE(w->dov, mr * dvp);
    CARVE(w->dprow, mr);
    CARVE(w->x, mr * ldd);
    CARVE(w->y, mr * dvp);
    CARVE(w->rowa, mr);
    CARVE(w->xq, mr * d);
    CARVE(w->yo, mr * dvp);
    CARVE(w->qs, G * d);
    CARVE(w->dq, G * d);
    CARVE(w->lse, G);
    CARVE(w->delta, G);
    CARVE(w->heads, G);
    CARVE(w->lse_row, mr);
    CARVE(w->delta_row, mr);
    CARVE(w->pr, mr);
    CARVE(w->ph, mr);
    CARVE(w->mask, mr);
    CARVE(w->ptile, 2 * mr * nr);
#undef CARVE
    return off;
}

static void plan_init(plan *pl, const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io,
                      const nsx_bwd_kernels *ks)
{
    memset(pl, 0, sizeof *pl);
    pl->p = p;
    pl->io = io;
    pl->ks = ks;
    pl->fk = nsx_simd_kernels(ks->isa);
    nsx_plan_sizes_init(&pl->s, p);
    pl->ldd = (int)nsx_round_up((size_t)p->d, 16);
    pl->npm = p->n > 1 ? p->n - 1 : 1;
    pl->f = (float)(p->reduce == NSX_REDUCE_MEAN ? p->out_scale / p->n : p->out_scale);
    /* per key: K~ twice (kt, kr), V~ twice, dkt, dvt, and the G heads' cola, dpcol */
    size_t per_key = (2 * (size_t)p->d + (size_t)pl->ldd + 3 * (size_t)pl->s.dvp + 2 * (size_t)pl->s.G) * sizeof(float);
    pl->chunk = nsx_plan_chunk(per_key, pl->s.most, ks->nr);
    pl->ksize = (size_t)p->B * p->L * p->Hkv * p->d;
    pl->vsize = (size_t)p->B * p->L * p->Hkv * p->dv;
    size_t per_slot = (size_t)p->n * (pl->ksize + pl->vsize) * sizeof(float);
    size_t fits = PART_BYTES / per_slot;
    int want = 2 * omp_get_num_procs();
    want = want < 4 ? 4 : want > 64 ? 64 : want;
    pl->slots = p->L < want ? p->L : want; /* a slot per query at most */
    if ((size_t)pl->slots > fits)
        pl->slots = fits > 0 ? (int)fits : 1;
}

static const float *k_row(const plan *pl, int m, int b, int j, int g)
{
    return nsx_plan_row(pl->p, pl->io->k[m], pl->p->d, b, j, g);
}

static const float *v_row(const plan *pl, int m, int b, int j, int g)
{
    return nsx_plan_row(pl->p, pl->io->v[m], pl->p->dv, b, j, g);
}

/* Slot s's partial dk_m (dv_m: dv = 1) row of key j. */
static float *grad_row(const plan *pl, int s, int dv, int m, int b, int j, int g)
{
    const nsx_kernel_problem *p = pl->p;
    size_t width = dv ? (size_t)p->dv : (size_t)p->d;
    return pl->part[(size_t)s * 2 * p->n + (size_t)dv * p->n + m] +
           (((size_t)b * p->L + j) * p->Hkv + g) * width;
}

/* The inner dimension, by a cost in multiply-adds: the padded tiles' six
   products, 3 (d + dv) per tuple; per row, chunk and head the tile's setup
   and the fold of its results (about 5 (d + dv) scalar steps, 8 times the
   cost of a lane of a vector FMA); per row and chunk the products and the
   scatter into dk, dv (n (d + dv)); the packing. */
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
        double chunks = ceil((double)cnt[m] / pl->chunk);
        double cost = 3.0 * ceil(rows / mr) * mr * ceil(cnt[m] / nr) * nr * width +
                      rows * chunks * (40.0 * pl->s.G + 8.0 * p->n) * width + 4.0 * cnt[m] * width;
        if (cost < best_cost) {
            best_cost = cost;
            best = m;
        }
    }
    return best;
}

/* t[l][c] = r[c][l] for c < cols (a multiple of 8), l < len: eight source
   rows at a time, so that each destination row is written in runs of 8. */
static void transpose(float *t, size_t ldt, const float *r, size_t ldr, int cols, int len)
{
    for (int c0 = 0; c0 < cols; c0 += 8)
        for (int l = 0; l < len; l++)
            for (int e = 0; e < 8; e++)
                t[(size_t)l * ldt + c0 + e] = r[(size_t)(c0 + e) * ldr + l];
}

/* K~ and V~ of the chunk's keys by rows (the forward's vectorized bias add)
   and transposed, zero past nk and past d, dv. */
static void pack(const plan *pl, work *w, int b, int g, int mi, const int *keys, int nk, int ldk)
{
    const int d = pl->p->d, dv = pl->p->dv, dvp = pl->s.dvp, ldd = pl->ldd;
    const float kb = pl->s.kb[mi], vb = pl->s.vb[mi];
    for (int c = 0; c < nk; c++) {
        float *kr = w->kr + (size_t)c * ldd, *vr = w->vr + (size_t)c * dvp;
        pl->fk->add_bias(kr, NULL, k_row(pl, mi, b, keys[c], g), kb, d);
        pl->fk->add_bias(vr, NULL, v_row(pl, mi, b, keys[c], g), vb, dv);
        memset(kr + d, 0, (size_t)(ldd - d) * sizeof(float));
        memset(vr + dv, 0, (size_t)(dvp - dv) * sizeof(float));
    }
    memset(w->kr + (size_t)nk * ldd, 0, (size_t)(ldk - nk) * ldd * sizeof(float));
    memset(w->vr + (size_t)nk * dvp, 0, (size_t)(ldk - nk) * dvp * sizeof(float));
    transpose(w->kt, (size_t)ldk, w->kr, (size_t)ldd, ldk, d);
    transpose(w->vt, (size_t)ldk, w->vr, (size_t)dvp, ldk, dvp);
}

/* Row r of the prefix keys keys[0..np) (dimensions pd): u, vp and the
   leave-one-out products (np > 1). */
static void prefix_row(const plan *pl, work *w, int b, int g, const int *pd, int np,
                       const int *keys, int r)
{
    const nsx_kernel_problem *p = pl->p;
    const int d = p->d, dv = p->dv, dvp = pl->s.dvp, mr = pl->ks->mr;
    const int prod = p->reduce == NSX_REDUCE_PRODUCT;
    float *u = w->u + (size_t)r * d, *vp = w->vp + (size_t)r * dvp;
    for (int l = 0; l < d; l++)
        u[l] = 1.0f;
    for (int x = 0; x < dvp; x++)
        vp[x] = prod && x < dv ? 1.0f : 0.0f;
    for (int k = 0; k < np; k++) {
        const float *kr = k_row(pl, pd[k], b, keys[k], g), *vr = v_row(pl, pd[k], b, keys[k], g);
        const float kb = pl->s.kb[pd[k]], vb = pl->s.vb[pd[k]];
        for (int l = 0; l < d; l++)
            u[l] *= kr[l] + kb;
        for (int x = 0; x < dv; x++)
            vp[x] = prod ? vp[x] * (vr[x] + vb) : vp[x] + (vr[x] + vb);
    }
    for (int k = 0; k < np && np > 1; k++) {
        float *lk = w->loo_k + ((size_t)k * mr + r) * d, *lv = w->loo_v + ((size_t)k * mr + r) * dvp;
        for (int l = 0; l < d; l++)
            lk[l] = 1.0f;
        for (int x = 0; x < dv; x++)
            lv[x] = 1.0f;
        for (int o = 0; o < np; o++) {
            if (o == k)
                continue;
            const float *kr = k_row(pl, pd[o], b, keys[o], g), *vr = v_row(pl, pd[o], b, keys[o], g);
            const float kb = pl->s.kb[pd[o]], vb = pl->s.vb[pd[o]];
            for (int l = 0; l < d; l++)
                lk[l] *= kr[l] + kb;
            for (int x = 0; x < dv && prod; x++)
                lv[x] *= vr[x] + vb;
        }
    }
}


/* One work item: where it is, its slot, its prefix dimensions. */
typedef struct item {
    int b, g, i, s;
    int pd[NSX_MAX_ORDER], np;
} item;

static const float *dout_row(const plan *pl, const item *it, int hh)
{
    const nsx_kernel_problem *p = pl->p;
    return pl->io->dout + (((size_t)it->b * p->L + it->i) * p->H + it->g * pl->s.G + hh) * p->dv;
}

/*
 * The prefix rows [0, rows) against every column block of the chunk, for
 * every head whose slice is not empty; then the prefix keys' dk, dv rows in
 * the item's slot.  A tile row is a pair (prefix row r, head h): uq = s q_h o
 * u[r], with that head's lse and Delta, so the G heads of a kv head fill the
 * tiles together and only the last tile is padded.  The pairs go head by
 * head; with the product reducer a tile may hold two heads, with sum and
 * mean each tile holds one (its dP and dV use the head's column terms).
 */
static void flush_rows(const plan *pl, work *w, const item *it, int rows, int nk, int ldk)
{
    const nsx_kernel_problem *p = pl->p;
    const int mr = pl->ks->mr, nr = pl->ks->nr, d = p->d, dv = p->dv, dvp = pl->s.dvp;
    const int ldd = pl->ldd, sum = p->reduce != NSX_REDUCE_PRODUCT, np = it->np;
    const float os = (float)p->out_scale;
    nsx_bwd_tile t = {
        .d = d, .dvp = dvp, .ldd = ldd, .sum = sum, .ldk = ldk, .uq = w->uq, .dov = w->dov,
        .mask = w->mask, .lse = w->lse_row, .delta = w->delta_row, .dprow = w->dprow, .x = w->x,
        .y = w->y, .rowa = w->rowa, .ptile = w->ptile,
    };
    int nlive = 0;
    for (int hh = 0; hh < pl->s.G; hh++)
        if (isfinite(w->lse[hh]))
            w->heads[nlive++] = hh; /* an empty slice has no term */
    memset(w->xq, 0, (size_t)mr * d * sizeof(float));
    memset(w->yo, 0, (size_t)mr * dvp * sizeof(float));
    const int total = nlive * rows;
    for (int t0 = 0; t0 < total;) {
        int end = t0 + mr < total ? t0 + mr : total;
        if (sum && end > (t0 / rows + 1) * rows)
            end = (t0 / rows + 1) * rows; /* one head per tile */
        const int nt = end - t0;
        /* Rows past nt are padding: zero, masked. */
        memset(w->uq, 0, (size_t)mr * ldd * sizeof(float));
        memset(w->dov, 0, (size_t)mr * dvp * sizeof(float));
        memset(w->dprow, 0, (size_t)mr * sizeof(float));
        memset(w->lse_row, 0, (size_t)mr * sizeof(float));
        memset(w->delta_row, 0, (size_t)mr * sizeof(float));
        for (int j = 0; j < nt; j++) {
            const int r = (t0 + j) % rows, hh = w->heads[(t0 + j) / rows];
            const float *u = w->u + (size_t)r * d, *vp = w->vp + (size_t)r * dvp;
            const float *qs = w->qs + (size_t)hh * d, *dO = dout_row(pl, it, hh);
            w->pr[j] = r, w->ph[j] = hh;
            w->lse_row[j] = w->lse[hh];
            w->delta_row[j] = w->delta[hh];
            float *uq = w->uq + (size_t)j * ldd, *dov = w->dov + (size_t)j * dvp;
            for (int l = 0; l < d; l++)
                uq[l] = qs[l] * u[l];
            if (sum) {
                float a = 0.0f;
                for (int x = 0; x < dv; x++)
                    a += dO[x] * vp[x];
                w->dprow[j] = pl->f * a;
            } else {
                for (int x = 0; x < dv; x++)
                    dov[x] = os * dO[x] * vp[x];
            }
        }
        memset(w->x, 0, (size_t)mr * ldd * sizeof(float));
        memset(w->y, 0, (size_t)mr * dvp * sizeof(float));
        memset(w->rowa, 0, (size_t)mr * sizeof(float));
        const int h0 = w->heads[t0 / rows];
        /* The column blocks tile the chunk [0, nk): each begins where the
           one before ended. */
        for (int cb = 0; (t.nc = nsx_tile_len(nk, cb, nr)) > 0; cb += t.nc) {
            const uint32_t cols = nsx_tile_cols(t.nc);
            /* Padding rows are out; with distinct, so is the inner key equal
               to one of the row's prefix keys. */
            for (int j = 0; j < mr; j++)
                w->mask[j] = nsx_tile_row_mask(cols, j < nt, w->ex + (j < nt ? w->pr[j] : 0) * NSX_MAX_ORDER,
                                               p->distinct ? np : 0, cb);
            t.kt = w->kt + cb;
            t.kr = w->kr + (size_t)cb * ldd;
            t.vt = w->vt + cb;
            t.vr = w->vr + (size_t)cb * dvp;
            t.dpcol = w->dpcol + (size_t)h0 * pl->chunk + cb;
            t.cola = w->cola + (size_t)h0 * pl->chunk + cb;
            t.dkt = w->dkt + cb;
            t.dvt = w->dvt + cb;
            pl->ks->tile(&t);
        }
        /* E7d: dQ_h += u o x (s at the end); E7e, E7f for the prefix keys:
           summed over the heads into xq, yo. */
        for (int j = 0; j < nt; j++) {
            const int r = w->pr[j], hh = w->ph[j];
            const float *u = w->u + (size_t)r * d, *x = w->x + (size_t)j * ldd;
            const float *qs = w->qs + (size_t)hh * d, *dO = dout_row(pl, it, hh);
            float *dq = w->dq + (size_t)hh * d, *xq = w->xq + (size_t)r * d, *yo = w->yo + (size_t)r * dvp;
            for (int l = 0; l < d; l++) {
                dq[l] += u[l] * x[l];
                xq[l] += qs[l] * x[l];
            }
            if (sum) {
                const float ra = pl->f * w->rowa[j];
                for (int c = 0; c < dv; c++)
                    yo[c] += ra * dO[c];
            } else {
                const float *y = w->y + (size_t)j * dvp;
                for (int c = 0; c < dv; c++)
                    yo[c] += os * dO[c] * y[c];
            }
        }
        t0 = end;
    }
    if (np == 0)
        return; /* n = 1: no prefix keys */
    for (int r = 0; r < rows; r++) {
        const float *xq = w->xq + (size_t)r * d, *yo = w->yo + (size_t)r * dvp;
        for (int k = 0; k < np; k++) {
            const int j = w->rk[r * NSX_MAX_ORDER + k];
            float *gk = grad_row(pl, it->s, 0, it->pd[k], it->b, j, it->g);
            float *gv = grad_row(pl, it->s, 1, it->pd[k], it->b, j, it->g);
            if (np == 1) { /* n = 2: the products over the other prefix keys are empty */
                for (int l = 0; l < d; l++)
                    gk[l] += xq[l];
                for (int x = 0; x < dv; x++)
                    gv[x] += yo[x];
                continue;
            }
            const float *lk = w->loo_k + ((size_t)k * mr + r) * d;
            const float *lv = w->loo_v + ((size_t)k * mr + r) * dvp;
            for (int l = 0; l < d; l++)
                gk[l] += xq[l] * lk[l];
            for (int x = 0; x < dv; x++)
                gv[x] += sum ? yo[x] : yo[x] * lv[x];
        }
    }
}

/* Every prefix tuple (an odometer over the prefix dimensions' lists)
   against one chunk of inner keys. */
static void sweep(const plan *pl, work *w, const item *it, const int *cnt, const int *inner_keys,
                  int nk, int ldk)
{
    const nsx_kernel_problem *p = pl->p;
    const int np = it->np, mr = pl->ks->mr;
    int idx[NSX_MAX_ORDER] = {0}, lim[NSX_MAX_ORDER], keys[NSX_MAX_ORDER];
    int rows = 0;
    for (int k = 0; k < np; k++)
        lim[k] = cnt[it->pd[k]];
    for (;;) {
        for (int k = 0; k < np; k++)
            keys[k] = w->list[it->pd[k]][idx[k]];
        int dup = p->distinct ? nsx_tile_dup_level(keys, np) : -1;
        if (dup < 0) {
            prefix_row(pl, w, it->b, it->g, it->pd, np, keys, rows);
            for (int k = 0; k < np; k++)
                w->rk[rows * NSX_MAX_ORDER + k] = keys[k];
            if (p->distinct)
                nsx_tile_ex(inner_keys, nk, keys, np, w->ex + rows * NSX_MAX_ORDER);
            if (++rows == mr) {
                flush_rows(pl, w, it, rows, nk, ldk);
                rows = 0;
            }
        }
        /* A repeated key at level dup: every prefix that shares levels
           0..dup repeats it, and is skipped. */
        if (nsx_tile_next(idx, lim, np, dup) < 0)
            break;
    }
    if (rows)
        flush_rows(pl, w, it, rows, nk, ldk);
}

static void run_item(const plan *pl, work *w, item *it)
{
    const nsx_kernel_problem *p = pl->p;
    const int n = p->n, G = pl->s.G, d = p->d, dv = p->dv, dvp = pl->s.dvp;
    const int b = it->b, g = it->g, i = it->i;
    const int sum = p->reduce != NSX_REDUCE_PRODUCT;
    int cnt[NSX_MAX_ORDER], live = 0;
    const int empty = nsx_plan_lists(p, b, i, w->selrow, w->list, cnt);
    memset(w->dq, 0, (size_t)G * d * sizeof(float));
    for (int hh = 0; hh < G; hh++) {
        const size_t h = (size_t)g * G + hh;
        const float lse = pl->io->lse[((size_t)b * p->H + h) * p->L + i];
        w->lse[hh] = empty ? INFINITY : lse;
        live |= isfinite(w->lse[hh]);
        const float *q = pl->io->q + (((size_t)b * p->L + i) * p->H + h) * d;
        for (int l = 0; l < d; l++)
            w->qs[(size_t)hh * d + l] = (float)(p->score_scale * q[l]);
        if (!isfinite(w->lse[hh]))
            continue;
        /* E7b: Delta = dO . O, from the saved O */
        const float *o = pl->io->o + (((size_t)b * p->L + i) * p->H + h) * dv;
        const float *dO = dout_row(pl, it, hh);
        double delta = 0.0;
        for (int c = 0; c < dv; c++)
            delta += (double)dO[c] * o[c];
        w->delta[hh] = (float)delta;
    }
    if (live) {
        const int mi = inner_dim(pl, cnt);
        it->np = 0;
        for (int m = 0; m < n; m++)
            if (m != mi)
                it->pd[it->np++] = m;
        /* The chunks tile the inner list [0, cnt[mi]): each begins where
           the one before ended. */
        for (int c0 = 0, nk; (nk = nsx_tile_len(cnt[mi], c0, pl->chunk)) > 0; c0 += nk) {
            const int *keys = w->list[mi] + c0;
            const int ldk = nsx_tile_ld(nk, pl->ks->nr);
            pack(pl, w, b, g, mi, keys, nk, ldk);
            memset(w->dkt, 0, (size_t)d * ldk * sizeof(float));
            memset(w->dvt, 0, (size_t)dvp * ldk * sizeof(float));
            for (int hh = 0; hh < G && sum; hh++) {
                float *cola = w->cola + (size_t)hh * pl->chunk, *dpcol = w->dpcol + (size_t)hh * pl->chunk;
                const float *dO = dout_row(pl, it, hh);
                memset(cola, 0, (size_t)ldk * sizeof(float));
                for (int c = 0; c < ldk; c++) {
                    float a = 0.0f;
                    for (int x = 0; x < dv; x++)
                        a += dO[x] * w->vr[(size_t)c * dvp + x];
                    dpcol[c] = pl->f * a;
                }
            }
            sweep(pl, w, it, cnt, keys, nk, ldk);
            /* The chunk's inner keys: their dk, dv rows in the slot, eight
               keys at a time (dkt, dvt are transposed). */
            for (int c0 = 0; c0 < nk; c0 += 8) {
                const int ne = nk - c0 < 8 ? nk - c0 : 8;
                float *gk[8], *gv[8];
                for (int e = 0; e < ne; e++) {
                    gk[e] = grad_row(pl, it->s, 0, mi, b, keys[c0 + e], g);
                    gv[e] = grad_row(pl, it->s, 1, mi, b, keys[c0 + e], g);
                }
                for (int l = 0; l < d; l++)
                    for (int e = 0; e < ne; e++)
                        gk[e][l] += w->dkt[(size_t)l * ldk + c0 + e];
                if (!sum) {
                    for (int x = 0; x < dv; x++)
                        for (int e = 0; e < ne; e++)
                            gv[e][x] += w->dvt[(size_t)x * ldk + c0 + e];
                    continue;
                }
                for (int e = 0; e < ne; e++)
                    for (int hh = 0; hh < G; hh++) {
                        if (!isfinite(w->lse[hh]))
                            continue;
                        const float a = pl->f * w->cola[(size_t)hh * pl->chunk + c0 + e];
                        const float *dO = dout_row(pl, it, hh);
                        for (int x = 0; x < dv; x++)
                            gv[e][x] += a * dO[x];
                    }
            }
        }
    }
    /* E7d, E7g: dq of each head (+0 for an empty slice) */
    for (int hh = 0; hh < G; hh++) {
        float *dq = pl->io->dq + (((size_t)b * p->L + i) * p->H + (size_t)g * G + hh) * d;
        for (int l = 0; l < d; l++)
            dq[l] = (float)p->score_scale * w->dq[(size_t)hh * d + l];
    }
}

size_t nsx_simd_bwd_scratch_bytes(const nsx_kernel_problem *p, size_t *partials)
{
    assert(p);
    plan pl;
    work w;
    int isa = nsx_simd_isa(NULL, 0);
    plan_init(&pl, p, NULL, nsx_simd_bwd_kernels(isa < 0 ? NSX_ISA_SCALAR : isa));
    if (partials)
        *partials = (size_t)(pl.slots - 1) * (size_t)p->n * (pl.ksize + pl.vsize) * sizeof(float);
    return work_layout(&pl, &w, NULL);
}

/* The ABI's checks of the forward, and the backward's own buffers. */
int nsx_simd_bwd_check(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io, char *why,
                       size_t whylen)
{
    if (!p || !io) {
        if (why && whylen)
            snprintf(why, whylen, "no problem or no buffers");
        return -1;
    }
    nsx_kernel_io fio = {.q = io->q, .o = (float *)io->o};
    for (int m = 0; m < NSX_MAX_ORDER; m++)
        fio.k[m] = io->k[m], fio.v[m] = io->v[m];
    if (nsx_simd_check(p, &fio, why, whylen))
        return -1;
    int bad = !io->lse || !io->dout || !io->dq;
    for (int m = 0; m < p->n; m++)
        bad |= !io->dk[m] || !io->dv[m];
    if (bad && why && whylen)
        snprintf(why, whylen, "lse, dout, dq or a dk, dv is NULL");
    return bad ? -1 : 0;
}

int nsx_simd_backward_isa(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io, int threads,
                          int isa)
{
    if (nsx_simd_bwd_check(p, io, NULL, 0))
        return NSX_SIMD_UNSUPPORTED;
    if (!nsx_simd_isa_supported(isa) || !nsx_simd_bwd_kernels(isa))
        return NSX_SIMD_EISA;
    plan pl;
    plan_init(&pl, p, io, nsx_simd_bwd_kernels(isa));
    const int T = nsx_plan_threads(threads, pl.slots);
    /* All memory first, so that a failure writes nothing. */
    const int n = p->n, S = pl.slots;
    work *ws = calloc((size_t)T, sizeof *ws);
    pl.part = calloc((size_t)S * 2 * n, sizeof *pl.part);
    void **blocks = ws && pl.part ? nsx_plan_blocks(T, work_layout(&pl, &ws[0], NULL)) : NULL;
    int fail = !blocks;
    for (int t = 0; t < T && !fail; t++)
        work_layout(&pl, &ws[t], blocks[t]);
    for (int s = 1; s < S && !fail; s++)
        for (int m = 0; m < 2 * n && !fail; m++) {
            size_t len = m < n ? pl.ksize : pl.vsize;
            if (!(pl.part[(size_t)s * 2 * n + m] = calloc(len, sizeof(float))))
                fail = 1;
        }
    if (!fail) {
        /* slot 0 adds into the outputs themselves */
        for (int m = 0; m < n; m++) {
            pl.part[m] = io->dk[m];
            pl.part[n + m] = io->dv[m];
            memset(io->dk[m], 0, pl.ksize * sizeof(float));
            memset(io->dv[m], 0, pl.vsize * sizeof(float));
        }
        const long per_i = (long)p->B * p->Hkv;
#pragma omp parallel num_threads(T)
        {
            work *w = &ws[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
            for (int s = 0; s < S; s++)
                for (long bg = 0; bg < per_i; bg++)
                    for (int r = s; r < p->L; r += S) {
                        item it = {.i = p->L - 1 - r, .b = (int)(bg / p->Hkv), .g = (int)(bg % p->Hkv), .s = s};
                        run_item(&pl, w, &it);
                    }
            /* the partials, added in slot order */
            for (int m = 0; m < 2 * n && S > 1; m++) {
                const long len = (long)(m < n ? pl.ksize : pl.vsize);
                float *out = pl.part[m];
#pragma omp for schedule(static)
                for (long e = 0; e < len; e++) {
                    float a = out[e];
                    for (int s = 1; s < S; s++)
                        a += pl.part[(size_t)s * 2 * n + m][e];
                    out[e] = a;
                }
            }
        }
    }
    nsx_plan_blocks_free(blocks, T);
    free(ws);
    for (int s = 1; pl.part && s < S; s++)
        for (int m = 0; m < 2 * n; m++)
            free(pl.part[(size_t)s * 2 * n + m]);
    free(pl.part);
    return fail ? NSX_SIMD_ENOMEM : NSX_SIMD_OK;
}

int nsx_simd_backward(const nsx_kernel_problem *p, const nsx_kernel_bwd_io *io, int threads)
{
    if (nsx_simd_bwd_check(p, io, NULL, 0))
        return NSX_SIMD_UNSUPPORTED;
    int isa = nsx_simd_isa(NULL, 0);
    if (isa < 0)
        return NSX_SIMD_EISA;
    return nsx_simd_backward_isa(p, io, threads, isa);
}

const nsx_bwd_kernels *nsx_simd_bwd_kernels(int isa)
{
    switch (isa) {
    case NSX_ISA_SCALAR:
        return &nsx_bwd_kernels_scalar;
    case NSX_ISA_AVX2:
        return &nsx_bwd_kernels_avx2;
    case NSX_ISA_AVX512:
        return &nsx_bwd_kernels_avx512;
    default:
        return NULL;
    }
}
