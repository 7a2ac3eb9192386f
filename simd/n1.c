/*
 * Ordinary attention (n = 1) as a flash kernel (simd/n1.h): blocks of query
 * rows against blocks of keys, the ISA file's register-blocked tiles for
 * S = Q K^T and ACC += P V, an online softmax per row and block.
 *
 * Work items, per (batch b, kv head g): `rows` query rows at a time, i.e.
 * BQ = rows / G consecutive queries times the G heads that read g, against
 * the span of their keys C(i) (simd/cands.h) in blocks of nb keys.
 * With a selection (sel_block) each query's keys in a block are marked and
 * its other scores masked; when the query's selection is sparse in its span
 * (sel_gathered) each query runs alone over its own keys, gathered nb at a
 * time as row addresses.  Without one, per block each query's allowed keys
 * are one range [a, e) of the block (C(i) is contiguous):
 *   - none: the row skips the block;
 *   - all (an inner tile): the row joins the multi-row value tiles;
 *   - part (an edge tile, only near the diagonal or a window's edge): the
 *     softmax and the values of that row run over [a, e) alone, so keys
 *     outside C(i) are never read for it (a future value that is NaN or
 *     huge cannot leak through 0 * NaN).
 * The scores are computed for every row of the block's active queries
 * (garbage outside [a, e) is never read).
 * Biases: k + kb and v + vb are rounded once into copies of K and V made
 * before the items (when a bias is nonzero), as the float32 model says.
 * Items go to threads dynamically, latest queries first (causal rows cost
 * the most); each item is one thread's in a fixed order, so the result does
 * not depend on the thread count.
 */
#include <assert.h>
#include <cpuid.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/cands.h"
#include "simd/n1.h"
#include "simd/plan.h"
#include "simd/simd.h"

/* ---- the tunes ---------------------------------------------------------- */

static const nsx_n1_kernels *const tunes[] = {&nsx_n1_scalar, &nsx_n1_avx2, &nsx_n1_zen4,
                                              &nsx_n1_xeon};
#define NTUNES ((int)(sizeof tunes / sizeof tunes[0]))

int nsx_n1_tune_count(void)
{
    return NTUNES;
}

const nsx_n1_kernels *nsx_n1_tune_get(int t)
{
    return t >= 0 && t < NTUNES ? tunes[t] : NULL;
}

/* The tune CPUID picks for isa, and how (one phrase into how). */
static const nsx_n1_kernels *detect(int isa, char *how, size_t len)
{
    switch (isa) {
    case NSX_ISA_SCALAR:
        snprintf(how, len, "no AVX2");
        return &nsx_n1_scalar;
    case NSX_ISA_AVX2:
        snprintf(how, len, "AVX2 + FMA");
        return &nsx_n1_avx2;
    case NSX_ISA_AVX512: {
        unsigned a = 0, b = 0, c = 0, d = 0;
        int amd = 0, family = 0;
        if (__get_cpuid(0, &a, &b, &c, &d))
            amd = b == signature_AMD_ebx && c == signature_AMD_ecx && d == signature_AMD_edx;
        if (__get_cpuid(1, &a, &b, &c, &d)) {
            family = (int)(a >> 8 & 0xfu);
            if (family == 0xf)
                family += (int)(a >> 20 & 0xffu);
        }
        /* Zen 4 (AMD family 25) runs a 512-bit FMA as two halves on its two
           256-bit pipes: one zmm FMA per cycle.  Intel's Xeons (and Zen 5)
           have two 512-bit FMA pipes. */
        snprintf(how, len, "%s family %d with AVX-512", amd ? "AMD" : "non-AMD", family);
        return amd && family == 25 ? &nsx_n1_zen4 : &nsx_n1_xeon;
    }
    default:
        return NULL;
    }
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_tune(void)
{
    const char *dbg = getenv("NSX_ISA_DEBUG");
    if (!dbg || strcmp(dbg, "1") != 0)
        return;
    int isa = nsx_simd_isa(NULL, 0);
    if (isa < 0)
        return;
    char why[160];
    const nsx_n1_kernels *kt = nsx_n1_tune(isa, why, sizeof why);
    if (!kt) {
        fprintf(stderr, "nsimplex: n1 tune: %s\n", why);
        return;
    }
    const char *env = getenv("NSX_TUNE");
    char how[96];
    detect(isa, how, sizeof how);
    fprintf(stderr,
            "nsimplex: n1 tune %s (%s; scores %dx%d, values %dx%d, %d keys per block, %d rows per "
            "item; %s%s)\n",
            kt->name, kt->cores, kt->smr, kt->snc, kt->vmr, kt->vnx, kt->nb, kt->rows,
            env && *env ? "forced by NSX_TUNE" : "detected: ", env && *env ? "" : how);
}

const nsx_n1_kernels *nsx_n1_tune(int isa, char *why, size_t whylen)
{
    const char *env = getenv("NSX_TUNE");
    char how[96];
    if (!env || !*env)
        return detect(isa, how, sizeof how);
    for (int t = 0; t < NTUNES; t++) {
        if (strcmp(env, tunes[t]->name) != 0)
            continue;
        if (tunes[t]->isa == isa)
            return tunes[t];
        if (why && whylen)
            snprintf(why, whylen, "NSX_TUNE=%s is a tune for %s, not for the isa in use (%s)",
                     env, nsx_simd_isa_name(tunes[t]->isa), nsx_simd_isa_name(isa));
        return NULL;
    }
    if (why && whylen)
        snprintf(why, whylen, "NSX_TUNE=%.40s is not one of scalar, avx2, zen4, xeon", env);
    return NULL;
}

/* ---- the forward ---------------------------------------------------------- */

typedef struct plan {
    const nsx_kernel_problem *p;
    const nsx_kernel_io *io;
    const nsx_n1_kernels *kt;
    int G, bq, R;          /* heads per kv head, queries per item, rows per item */
    int lds, lda;          /* row strides of S and ACC */
    int cap;               /* room for C(i) */
    int sel;               /* dimension 1 restricted to a selection */
    const float *k, *v;    /* K + kb and V + vb (the inputs when the bias is 0) */
} plan;

typedef struct work {
    float *q, *S, *acc, *m, *sum; /* [R][d], [R][lds], [R][lda], [R], [R] */
    int *lo, *hi;                 /* [bq]: C(i) within [lo, hi) */
    int *cnt, *pos;               /* [bq]: |C(i)|; selection: C(i)'s next key */
    int *ra, *re;                 /* [R]: the row's keys in the block, [ra, re) */
    const float **krow, **vrow;   /* [nb] */
    int *list, *selrow;           /* [bq][cap]: C(i) of each query (dense: one), [topk] */
    unsigned char *mk;            /* selection: [bq][nb], key c of the block in C(i) */
    float *pc;                    /* selection: [nb] one row's P, compacted */
    const float **vc;             /* selection: [nb] its value rows */
    uint64_t *bits;               /* [L / 64 rounded up], zero between queries */
} work;

static void plan_init(plan *pl, const nsx_kernel_problem *p, const nsx_kernel_io *io,
                      const nsx_n1_kernels *kt)
{
    pl->p = p;
    pl->io = io;
    pl->kt = kt;
    pl->G = p->H / p->Hkv;
    pl->sel = p->topk > 0 && (p->sel_dims & 1u);
    pl->bq = kt->rows / pl->G > 1 ? kt->rows / pl->G : 1;
    if (pl->bq > p->L)
        pl->bq = p->L;
    pl->R = pl->bq * pl->G;
    pl->lds = kt->nb + 8;
    pl->lda = (int)nsx_round_up((size_t)p->dv, 16);
    pl->cap = nsx_cands_cap(p, 0);
    pl->k = io ? io->k[0] : NULL;
    pl->v = io ? io->v[0] : NULL;
}

static size_t work_layout(const plan *pl, work *w, char *base)
{
    const nsx_kernel_problem *p = pl->p;
    const size_t R = (size_t)pl->R;
    size_t off = 0;
#define CARVE(ptr, count) NSX_CARVE(base, off, ptr, count)
    CARVE(w->q, R * p->d);
    CARVE(w->S, R * pl->lds);
    CARVE(w->acc, R * pl->lda);
    CARVE(w->m, R);
    CARVE(w->sum, R);
    CARVE(w->lo, pl->bq);
    CARVE(w->hi, pl->bq);
    CARVE(w->cnt, pl->bq);
    CARVE(w->pos, pl->bq);
    CARVE(w->ra, R);
    CARVE(w->re, R);
    CARVE(w->krow, pl->kt->nb);
    CARVE(w->vrow, pl->kt->nb);
    CARVE(w->list, (size_t)(pl->sel ? pl->bq : 1) * (pl->cap > 0 ? pl->cap : 1));
    CARVE(w->mk, pl->sel ? (size_t)pl->bq * pl->kt->nb : 1);
    CARVE(w->pc, pl->kt->nb);
    CARVE(w->vc, pl->kt->nb);
    CARVE(w->selrow, p->topk > 0 ? p->topk : 1);
    CARVE(w->bits, pl->sel ? (p->L + 63) / 64 : 1);
#undef CARVE
    return off;
}

size_t nsx_n1_scratch_bytes(const nsx_kernel_problem *p, const nsx_n1_kernels *kt)
{
    assert(p && kt && p->n == 1);
    plan pl;
    work w;
    plan_init(&pl, p, NULL, kt);
    return work_layout(&pl, &w, NULL);
}

static const float *k_row(const plan *pl, int b, int j, int g)
{
    return nsx_plan_row(pl->p, pl->k, pl->p->d, b, j, g);
}

static const float *v_row(const plan *pl, int b, int j, int g)
{
    return nsx_plan_row(pl->p, pl->v, pl->p->dv, b, j, g);
}

/* The online softmax of row r over its keys [ra, re) of the block's scores:
   the running max moves up (acc and sum rescaled), S becomes P.  A row
   whose scores are all -inf keeps nothing of the block (re = ra). */
static void softmax_row(const plan *pl, work *w, int r)
{
    const nsx_n1_kernels *kt = pl->kt;
    float *s = w->S + (size_t)r * pl->lds + w->ra[r];
    const int len = w->re[r] - w->ra[r];
    float mx = kt->max(s, len);
    if (mx == -INFINITY) {
        w->re[r] = w->ra[r];
        return;
    }
    if (!(mx <= w->m[r])) { /* a new max, or NaN (which then stays) */
        float f = expf(w->m[r] - mx); /* 0 at the first block: m = -inf */
        float *acc = w->acc + (size_t)r * pl->lda;
        w->sum[r] *= f;
        for (int x = 0; x < pl->p->dv; x++)
            acc[x] *= f;
        w->m[r] = mx;
    }
    w->sum[r] += kt->expsum(s, len, w->m[r]);
}

/* The value side of the block: runs of rows that take every key of the
   block (nc) as multi-row tiles, each other row alone over its own keys. */
static void values_block(const plan *pl, work *w, int r0, int r1, int nc)
{
    const nsx_n1_kernels *kt = pl->kt;
    const int dv = pl->p->dv;
    for (int r = r0; r < r1;) {
        if (w->re[r] <= w->ra[r]) {
            r++;
            continue;
        }
        if (w->ra[r] == 0 && w->re[r] == nc) {
            int z = r + 1;
            while (z < r1 && w->ra[z] == 0 && w->re[z] == nc)
                z++;
            kt->values(w->S + (size_t)r * pl->lds, pl->lds, z - r, w->vrow, nc, dv,
                       w->acc + (size_t)r * pl->lda, pl->lda);
            r = z;
        } else {
            kt->values(w->S + (size_t)r * pl->lds + w->ra[r], pl->lds, 1, w->vrow + w->ra[r],
                       w->re[r] - w->ra[r], dv, w->acc + (size_t)r * pl->lda, pl->lda);
            r++;
        }
    }
}

/* (E3), (E6) of row r, query i, head h (as simd/forward.c's finish; the
   mean of one dimension is the sum). */
static void finish(const plan *pl, const work *w, int r, int b, int h, int i)
{
    const nsx_kernel_problem *p = pl->p;
    float *o = pl->io->o + (((size_t)b * p->L + i) * p->H + h) * p->dv;
    float *lse = pl->io->lse ? pl->io->lse + ((size_t)b * p->H + h) * p->L + i : NULL;
    const float *acc = w->acc + (size_t)r * pl->lda;
    if (w->m[r] == -INFINITY) { /* empty slice */
        memset(o, 0, (size_t)p->dv * sizeof *o);
        if (lse)
            *lse = -INFINITY;
        return;
    }
    double f = p->out_scale / w->sum[r];
    for (int c = 0; c < p->dv; c++)
        o[c] = (float)(acc[c] * f);
    if (lse)
        *lse = (float)(w->m[r] + log((double)w->sum[r]));
}

/*
 * The valid entries of sel[b, i, :] (0 <= j < L), ascending, each once:
 * nsx_sel_row's contract (simd/cands.h), computed with a bitmap of the L
 * keys instead of a sort, which at top-k 2048 cost as much as the
 * attention itself.  A deliberate second implementation of that contract;
 * its output goes through nsx_cands like nsx_sel_row's, and test_simd's
 * oracle checks the result on invalid, repeated and empty rows.  The
 * bitmap is left zero.
 */
static int sel_row_bits(const nsx_kernel_problem *p, int b, int i, uint64_t *bits, int *out)
{
    const int32_t *row = p->sel + ((size_t)b * p->L + i) * p->topk;
    int lo = p->L, hi = -1, len = 0;
    for (int r = 0; r < p->topk; r++) {
        const int32_t j = row[r];
        if (j < 0 || j >= p->L)
            continue;
        bits[j >> 6] |= 1ull << (j & 63);
        lo = j < lo ? j : lo;
        hi = j > hi ? j : hi;
    }
    for (int wd = hi < 0 ? 1 : lo >> 6; wd <= hi >> 6; wd++) {
        for (uint64_t x = bits[wd]; x; x &= x - 1)
            out[len++] = wd * 64 + __builtin_ctzll(x);
        bits[wd] = 0;
    }
    return len;
}

/* Whether vrow[0..nc) hold only finite values in their dv channels. */
static int values_finite(const plan *pl, const float *const *vrow, int nc)
{
    for (int c = 0; c < nc; c++)
        if (!pl->kt->finite(vrow[c], pl->p->dv))
            return 0;
    return 1;
}

/*
 * A selection, queries qa..qz of the item against the block [c0, c1) of the
 * range their keys span, as the dense tiles: mk marks each query's keys in
 * the block (its list's next ones).  A query with all of the block's keys
 * runs as a dense row; one with some of them is masked: its other scores
 * become -inf before the max and its weights exactly 0 after the exp (the
 * AVX2 exp of -inf is ~1e-38, which the sum keeps: far below the f32
 * model's tiny term).  Masked rows join the multi-row value tiles (0 x v
 * adds nothing) when the block's values are finite; otherwise (a NaN or an
 * infinity that such a row must not read) each masked row runs alone over
 * its own keys, compacted.
 */
static void sel_block(const plan *pl, work *w, int b, int g, int nq, int c0, int c1)
{
    const nsx_kernel_problem *p = pl->p;
    const nsx_n1_kernels *kt = pl->kt;
    const int G = pl->G, d = p->d, nb = kt->nb, nc = c1 - c0;
    int qa = nq, qz = -1, masked = 0;
    for (int qi = 0; qi < nq; qi++) {
        unsigned char *mk = w->mk + (size_t)qi * nb;
        const int *list = w->list + (size_t)qi * pl->cap;
        int in = 0;
        memset(mk, 0, (size_t)nc);
        for (; w->pos[qi] < w->cnt[qi] && list[w->pos[qi]] < c1; w->pos[qi]++, in++)
            mk[list[w->pos[qi]] - c0] = 1;
        if (in) {
            qa = qa < qi ? qa : qi;
            qz = qi;
        }
        masked |= in > 0 && in < nc;
        /* the softmax runs over [0, the query's last key in the block]:
           its own keys and the block's grid fix its lanes, not nc */
        const int last = in ? list[w->pos[qi] - 1] - c0 + 1 : 0;
        for (int hh = 0; hh < G; hh++) {
            w->ra[qi * G + hh] = 0;
            w->re[qi * G + hh] = last;
        }
    }
    if (qz < 0)
        return;
    for (int c = 0; c < nc; c++) {
        w->krow[c] = k_row(pl, b, c0 + c, g);
        w->vrow[c] = v_row(pl, b, c0 + c, g);
    }
    const int r0 = qa * G, r1 = (qz + 1) * G;
    kt->scores(w->q + (size_t)r0 * d, d, r1 - r0, w->krow, nc, d, w->S + (size_t)r0 * pl->lds,
               pl->lds);
    for (int r = r0; r < r1; r++) {
        const unsigned char *mk = w->mk + (size_t)(r / G) * nb;
        float *s = w->S + (size_t)r * pl->lds;
        if (w->re[r] == 0)
            continue;
        kt->mask(s, mk, nc, -INFINITY);
        softmax_row(pl, w, r);
        kt->mask(s, mk, nc, 0.0f);
        if (w->re[r] > 0) /* the values take the whole block: 0 x v adds +0 */
            w->re[r] = nc;
    }
    if (masked && !values_finite(pl, w->vrow, nc)) {
        for (int r = r0; r < r1; r++) {
            const unsigned char *mk = w->mk + (size_t)(r / G) * nb;
            const float *s = w->S + (size_t)r * pl->lds;
            int len = 0;
            if (w->re[r] == 0)
                continue;
            for (int c = 0; c < nc; c++)
                if (mk[c]) {
                    w->pc[len] = s[c];
                    w->vc[len++] = w->vrow[c];
                }
            if (len == nc)
                continue; /* all of the block: the runs below */
            kt->values(w->pc, nb, 1, w->vc, len, p->dv, w->acc + (size_t)r * pl->lda, pl->lda);
            w->re[r] = 0;
        }
    }
    values_block(pl, w, r0, r1, nc);
}

/* A selection, one query (row block qi) against its own keys, gathered. */
static void sel_gathered(const plan *pl, work *w, int b, int g, int qi)
{
    const nsx_kernel_problem *p = pl->p;
    const nsx_n1_kernels *kt = pl->kt;
    const int G = pl->G, d = p->d, nb = kt->nb, r0 = qi * G, cnt = w->cnt[qi];
    const int *list = w->list + (size_t)qi * pl->cap;
    for (int c0 = 0; c0 < cnt; c0 += nb) {
        const int nc = cnt - c0 < nb ? cnt - c0 : nb;
        for (int c = 0; c < nc; c++) {
            w->krow[c] = k_row(pl, b, list[c0 + c], g);
            w->vrow[c] = v_row(pl, b, list[c0 + c], g);
        }
        kt->scores(w->q + (size_t)r0 * d, d, G, w->krow, nc, d, w->S + (size_t)r0 * pl->lds,
                   pl->lds);
        for (int r = r0; r < r0 + G; r++) {
            w->ra[r] = 0;
            w->re[r] = nc;
            softmax_row(pl, w, r);
        }
        values_block(pl, w, r0, r0 + G, nc);
    }
}

static void run_item(const plan *pl, work *w, int b, int g, int i0)
{
    const nsx_kernel_problem *p = pl->p;
    const nsx_n1_kernels *kt = pl->kt;
    const int G = pl->G, d = p->d, nb = kt->nb;
    const int i1 = i0 + pl->bq < p->L ? i0 + pl->bq : p->L, nq = i1 - i0;
    int klo = p->L, khi = 0;
    for (int qi = 0; qi < nq; qi++) {
        const int i = i0 + qi;
        int *list = w->list + (pl->sel ? (size_t)qi * pl->cap : 0); /* dense: [lo, hi) is kept */
        int nsel = pl->sel ? sel_row_bits(p, b, i, w->bits, w->selrow)
                   : p->topk > 0 ? nsx_sel_row(p, b, i, w->selrow) : 0;
        const int cnt = nsx_cands(p, 0, i, w->selrow, nsel, list);
        /* Without a selection C(i) is a range (causal, window). */
        w->lo[qi] = cnt ? list[0] : 0;
        w->hi[qi] = cnt ? list[cnt - 1] + 1 : 0;
        w->cnt[qi] = cnt;
        w->pos[qi] = 0;
        assert(pl->sel || w->hi[qi] - w->lo[qi] == cnt);
        if (cnt && w->lo[qi] < klo)
            klo = w->lo[qi];
        if (cnt && w->hi[qi] > khi)
            khi = w->hi[qi];
        for (int hh = 0; hh < G; hh++) {
            const int r = qi * G + hh;
            const float *q = pl->io->q + (((size_t)b * p->L + i) * p->H + g * G + hh) * d;
            for (int l = 0; l < d; l++)
                w->q[(size_t)r * d + l] = (float)(p->score_scale * q[l]);
            w->m[r] = -INFINITY;
            w->sum[r] = 0.0f;
            memset(w->acc + (size_t)r * pl->lda, 0, (size_t)pl->lda * sizeof(float));
        }
    }
    /* The gathered rows (G rows a tile) ran at about 55% of the dense
       tiles' speed with G = 4 and 90% with G = 16 (AVX2, 2-core EPYC,
       L = 4096, d = 128): below that share of selected keys in the span
       of the item's queries, the masked dense tiles lose. */
    const double gathered_share = G < 8 ? 0.55 : 0.9;
    if (pl->sel) {
        /* Each query's path and blocks follow from its own keys alone (the
           item's other queries, which a batch may change, must not move
           its sums): a query sparse in its own span runs gathered; the
           others share blocks on the grid of multiples of nb. */
        klo = p->L;
        khi = 0;
        for (int qi = 0; qi < nq; qi++) {
            const int cnt = w->cnt[qi];
            if (!cnt)
                continue;
            if ((double)cnt < gathered_share * (w->hi[qi] - w->lo[qi])) {
                sel_gathered(pl, w, b, g, qi);
                w->pos[qi] = cnt; /* no key left for the blocks */
                continue;
            }
            klo = w->lo[qi] < klo ? w->lo[qi] : klo;
            khi = w->hi[qi] > khi ? w->hi[qi] : khi;
        }
        for (int c0 = klo / nb * nb; c0 < khi; c0 += nb)
            sel_block(pl, w, b, g, nq, c0, khi - c0 < nb ? khi : c0 + nb);
    } else {
        for (int c0 = klo; c0 < khi; c0 += nb) {
            const int c1 = khi - c0 < nb ? khi : c0 + nb, nc = c1 - c0;
            int qa = nq, qz = -1; /* the queries with a key in the block */
            for (int qi = 0; qi < nq; qi++) {
                int a = w->lo[qi] > c0 ? w->lo[qi] : c0, e = w->hi[qi] < c1 ? w->hi[qi] : c1;
                if (e <= a)
                    a = e = 0;
                else if (qa == nq)
                    qa = qi;
                if (e > a)
                    qz = qi;
                for (int hh = 0; hh < G; hh++) {
                    w->ra[qi * G + hh] = a > c0 ? a - c0 : 0;
                    w->re[qi * G + hh] = e > c0 ? e - c0 : 0;
                }
            }
            if (qz < 0)
                continue;
            for (int c = 0; c < nc; c++) {
                w->krow[c] = k_row(pl, b, c0 + c, g);
                w->vrow[c] = v_row(pl, b, c0 + c, g);
            }
            const int r0 = qa * G, r1 = (qz + 1) * G;
            kt->scores(w->q + (size_t)r0 * d, d, r1 - r0, w->krow, nc, d,
                       w->S + (size_t)r0 * pl->lds, pl->lds);
            for (int r = r0; r < r1; r++)
                if (w->re[r] > w->ra[r])
                    softmax_row(pl, w, r);
            values_block(pl, w, r0, r1, nc);
        }
    }
    for (int qi = 0; qi < nq; qi++)
        for (int hh = 0; hh < G; hh++)
            finish(pl, w, qi * G + hh, b, g * G + hh, i0 + qi);
}

/* A copy of x[0..len) + bias, each sum rounded once; NULL when out of
   memory. */
static float *biased(const float *x, size_t len, float bias)
{
    float *y = malloc(len * sizeof *y);
    if (y)
        for (size_t t = 0; t < len; t++)
            y[t] = x[t] + bias;
    return y;
}

int nsx_n1_forward(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads,
                   const nsx_n1_kernels *kt)
{
    assert(p && io && kt && p->n == 1 && nsx_simd_isa_supported(kt->isa));
    plan pl;
    plan_init(&pl, p, io, kt);
    const float kb = (float)p->k_bias[0], vb = (float)p->v_bias[0];
    float *kcopy = NULL, *vcopy = NULL;
    const size_t nk = (size_t)p->B * p->L * p->Hkv;
    if (kb != 0.0f && !(pl.k = kcopy = biased(io->k[0], nk * p->d, kb)))
        return NSX_SIMD_ENOMEM;
    if (vb != 0.0f && !(pl.v = vcopy = biased(io->v[0], nk * p->dv, vb))) {
        free(kcopy);
        return NSX_SIMD_ENOMEM;
    }
    const long per_bg = (p->L + pl.bq - 1) / pl.bq, groups = (long)p->B * p->Hkv;
    const long items = per_bg * groups;
    const int T = nsx_plan_threads(threads, items);
    /* zeros: the selection bitmap starts zero */
    work *ws = calloc((size_t)T, sizeof *ws);
    void **blocks = ws ? nsx_plan_blocks(T, work_layout(&pl, &ws[0], NULL)) : NULL;
    const int fail = !blocks;
    for (int t = 0; t < T && !fail; t++)
        work_layout(&pl, &ws[t], blocks[t]);
    if (!fail) {
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            const int qb = (int)(per_bg - 1 - it / groups);
            const int b = (int)(it % groups / p->Hkv), g = (int)(it % p->Hkv);
            run_item(&pl, &ws[omp_get_thread_num()], b, g, qb * pl.bq);
        }
    }
    nsx_plan_blocks_free(blocks, T);
    free(ws);
    free(kcopy);
    free(vcopy);
    return fail ? NSX_SIMD_ENOMEM : NSX_SIMD_OK;
}

int nsx_n1_forward_isa(const nsx_kernel_problem *p, const nsx_kernel_io *io, int threads,
                       int isa)
{
    pthread_once(&log_once, log_tune);
    const nsx_n1_kernels *kt = nsx_n1_tune(isa, NULL, 0);
    if (!kt)
        return NSX_SIMD_EISA;
    return nsx_n1_forward(p, io, threads, kt);
}
