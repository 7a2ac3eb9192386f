/*
 * The optimized indexer and top-k (simd/indexer.h): loops, packing, the
 * running top-k, the softmax passes and the threads.  The ISA file's tile
 * (simd/idx_kern.h) does the dot products.  Code under test: an independent
 * implementation of E8 and E9, not derived from ref/indexer.c or ref/topk.c.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/problem.h"
#include "simd/idx_kern.h"
#include "simd/indexer.h"
#include "simd/simd.h"

/* The indexer tile table for isa; NULL for an unknown one.  Here, not in
   simd/dispatch.c, which stays a leaf (it calls no other simd/ code). */
const nsx_idx_kernels *nsx_simd_idx_kernels(int isa)
{
    switch (isa) {
    case NSX_ISA_SCALAR:
        return &nsx_idx_kernels_scalar;
    case NSX_ISA_AVX2:
        return &nsx_idx_kernels_avx2;
    case NSX_ISA_AVX512:
        return &nsx_idx_kernels_avx512;
    default:
        return NULL;
    }
}

/* ---- the running top-k ------------------------------------------------- */

/* One kept key. */
typedef struct ent {
    float s;
    int32_t j;
} ent;

/* The k best keys so far, as a heap with the lowest-ranked one at the root. */
typedef struct topk {
    ent *e;
    int n, k;
} topk;

/* (E9) a ranks below b: a lower score, or an equal one and a larger key. */
static inline int below(ent a, ent b)
{
    return a.s < b.s || (a.s == b.s && a.j > b.j);
}

static void topk_push(topk *t, float s, int32_t j)
{
    ent x = {s == s ? s : -INFINITY, j}; /* NaN ranks below everything */
    ent *e = t->e;
    int at;
    if (t->n < t->k) { /* not full: sift up */
        at = t->n++;
        while (at > 0 && below(x, e[(at - 1) / 2])) {
            e[at] = e[(at - 1) / 2];
            at = (at - 1) / 2;
        }
        e[at] = x;
        return;
    }
    if (!below(e[0], x))
        return;
    at = 0; /* replace the root, sift down */
    for (;;) {
        int c = 2 * at + 1;
        if (c >= t->n)
            break;
        if (c + 1 < t->n && below(e[c + 1], e[c]))
            c++;
        if (!below(e[c], x))
            break;
        e[at] = e[c];
        at = c;
    }
    e[at] = x;
}

/*
 * Keys j0 .. j0 + n - 1 with scores s[0..n), in ascending order of key.  Once
 * the heap is full only a score above the root's can enter: an equal one
 * belongs to a larger key than every kept one and ranks below them all, so
 * the threshold test is exact and never drops a key E9 keeps.
 */
static void topk_feed(topk *t, const nsx_idx_kernels *ks, const float *s, int n, int32_t j0)
{
    int c = 0;
    for (; c < n && t->n < t->k; c++)
        topk_push(t, s[c], j0 + c);
    if (c == n)
        return;
    uint32_t bits = ks->above(s, n, t->e[0].s) >> c << c;
    while (bits) {
        int b = __builtin_ctz(bits);
        bits &= bits - 1;
        topk_push(t, s[b], j0 + b);
    }
}

/* The kept keys ascending, then -1 pads up to k: marked in a bitmap of the
   keys j0 .. j0 + len - 1 (len / 64 + 1 words), which is then read in
   order (no sort). */
static void topk_write(const topk *t, int32_t j0, int len, uint64_t *mark, int32_t *sel)
{
    const int words = len / 64 + 1;
    for (int x = 0; x < words; x++)
        mark[x] = 0;
    for (int r = 0; r < t->n; r++) {
        int c = t->e[r].j - j0;
        mark[c / 64] |= 1ull << (c % 64);
    }
    int r = 0;
    for (int x = 0; x < words; x++)
        for (uint64_t m = mark[x]; m; m &= m - 1)
            sel[r++] = j0 + 64 * x + __builtin_ctzll(m);
    for (; r < t->k; r++)
        sel[r] = -1;
}

int nsx_simd_topk_row(const float *s, int len, int j0, int k, int32_t *sel, int isa)
{
    const nsx_idx_kernels *ks = nsx_simd_idx_kernels(isa);
    if (!ks || !nsx_simd_isa_supported(isa))
        return NSX_SIMD_EISA;
    topk t = {malloc((size_t)(k > 0 ? k : 1) * sizeof(ent)), 0, k};
    uint64_t *mark = malloc(((size_t)len / 64 + 1) * sizeof *mark);
    if (!t.e || !mark) {
        free(t.e);
        free(mark);
        return NSX_SIMD_ENOMEM;
    }
    for (int c = 0; c < len; c += ks->nr)
        topk_feed(&t, ks, s + c, len - c < ks->nr ? len - c : ks->nr, j0 + c);
    topk_write(&t, j0, len, mark, sel);
    free(t.e);
    free(mark);
    return NSX_SIMD_OK;
}

/* ---- checking ------------------------------------------------------------ */

#define WHY(...) (why ? (void)snprintf(why, whylen, __VA_ARGS__) : (void)0, -1)

static int too_large(size_t a, size_t b, size_t c)
{
    size_t x;
    return __builtin_mul_overflow(a, b, &x) || __builtin_mul_overflow(x, c, &x) ||
           x > (size_t)PTRDIFF_MAX / 8;
}

int nsx_simd_indexer_check(const nsx_simd_idx_problem *p, const nsx_simd_idx_io *io, char *why,
                           size_t whylen)
{
    if (!p || !io)
        return WHY("no problem or no buffers");
    const int indexer = p->source == NSX_SIMD_IDX_INDEXER;
    if (!indexer && p->source != NSX_SIMD_IDX_SCORES)
        return WHY("source = %d is not the indexer (2) or given scores (3)", p->source);
    const int dims[] = {p->B, p->L, p->k, indexer ? p->Hi : 1, indexer ? p->di : 1};
    const char *names[] = {"B", "L", "k", "Hi", "di"};
    for (int t = 0; t < 5; t++)
        if (dims[t] < 1 || dims[t] > NSX_MAX_DIM)
            return WHY("%s = %d is outside 1..%d", names[t], dims[t], NSX_MAX_DIM);
    if (p->causal != 0 && p->causal != 1)
        return WHY("causal must be 0 or 1");
    if (too_large((size_t)p->B, (size_t)p->L, (size_t)p->L) ||
        too_large((size_t)p->B, (size_t)p->L, (size_t)p->k) ||
        (indexer && too_large((size_t)p->B * p->L, (size_t)p->Hi, (size_t)p->di + 1)))
        return WHY("the tensors are too large to index");
    if (!indexer)
        return io->idx_s ? 0 : WHY("idx_s is NULL");
    if (p->act != NSX_SIMD_ACT_RELU && p->act != NSX_SIMD_ACT_SOFTMAX && p->act != NSX_SIMD_ACT_IDENTITY)
        return WHY("act = %d is not relu (0), softmax (1) or identity (2)", p->act);
    if (!isfinite(p->idx_scale))
        return WHY("idx_scale must be finite");
    if (!io->idx_q || !io->idx_k || !io->idx_w)
        return WHY("idx_q, idx_k or idx_w is NULL");
    return 0;
}

/* ---- the indexer ----------------------------------------------------------- */

typedef struct plan {
    const nsx_simd_idx_problem *p;
    const nsx_simd_idx_io *io;
    const nsx_idx_kernels *ks;
    int nr, nstrip;
    float *kp;          /* this batch's keys: [nstrip][di][nr] */
} plan;

/* One thread's scratch. */
typedef struct work {
    topk t;
    float *x, *xs;      /* [Hi][nr] logits, then shifted and exponentiated (softmax) */
    float *s;           /* [nr] */
    float *m, *z, *coef; /* [Hi] softmax: running max, sum, w / sum */
    uint64_t *mark;     /* [L / 64 + 1] the kept keys, for writing them in order */
} work;

/* Strips of batch b's keys, transposed: kp[s][l][c] = kI[s nr + c][l]. */
static void pack_keys(const plan *pl, int b)
{
    const nsx_simd_idx_problem *p = pl->p;
    const int nr = pl->nr, di = p->di, L = p->L;
#pragma omp for schedule(static)
    for (int st = 0; st < pl->nstrip; st++) {
        float *dst = pl->kp + (size_t)st * di * nr;
        for (int c = 0; c < nr; c++) {
            int j = st * nr + c;
            const float *src = pl->io->idx_k + ((size_t)b * L + j) * di;
            for (int l = 0; l < di; l++)
                dst[(size_t)l * nr + c] = j < L ? src[l] : 0.0f;
        }
    }
}

/* The candidates of query i: keys 0 .. count - 1 (SPEC 2.1). */
static int cand_count(const nsx_simd_idx_problem *p, int i)
{
    return p->causal ? i + 1 : p->L;
}

/* softmax (E8): each head's max and sum of exp(x - max) over C(i), streamed
   with the rescaling of the online softmax.  Per strip the heads' maxima
   first, then one call of the ISA's exp over all heads' shifted logits
   [Hi][nr] (and one over the rescale factors). */
static void softmax_stats(const plan *pl, work *w, nsx_idx_tile *tl, int C)
{
    const int Hi = pl->p->Hi, nr = pl->nr;
    for (int h = 0; h < Hi; h++) {
        w->m[h] = -INFINITY;
        w->z[h] = 0.0f;
    }
    tl->x = w->x;
    tl->s = NULL;
    for (int st = 0; st * nr < C; st++) {
        const int nc = C - st * nr < nr ? C - st * nr : nr;
        tl->kp = pl->kp + (size_t)st * pl->p->di * nr;
        pl->ks->tile(tl);
        int grew = 0;
        for (int h = 0; h < Hi; h++) {
            const float *x = w->x + (size_t)h * nr;
            float mx = w->m[h];
            for (int c = 0; c < nc; c++)
                mx = x[c] > mx ? x[c] : mx;
            /* the rescale factor exp(m_old - m_new); exp(-inf) = 0 before
               the first key, and exp(0) = 1 where the max stays */
            w->coef[h] = mx > w->m[h] ? w->m[h] - mx : 0.0f;
            grew |= mx > w->m[h];
            w->m[h] = mx;
        }
        if (grew) {
            pl->ks->exp_nonpos(w->coef, Hi);
            for (int h = 0; h < Hi; h++)
                w->z[h] *= w->coef[h];
        }
        for (int h = 0; h < Hi; h++)
            for (int c = 0; c < nr; c++)
                w->xs[(size_t)h * nr + c] = c < nc ? w->x[(size_t)h * nr + c] - w->m[h] : 0.0f;
        pl->ks->exp_nonpos(w->xs, Hi * nr);
        for (int h = 0; h < Hi; h++) {
            float sum = 0.0f;
            for (int c = 0; c < nc; c++)
                sum += w->xs[(size_t)h * nr + c];
            w->z[h] += sum;
        }
    }
    for (int h = 0; h < Hi; h++)
        w->coef[h] = tl->w[h] == 0.0f ? 0.0f : tl->w[h] / w->z[h];
}

/* softmax (E8): s[c] = sum_h (w_h / Z_h) exp(x[h][c] - m_h), heads with
   w_h = 0 left out, as the reference leaves them out of its ties. */
static void softmax_scores(const plan *pl, work *w, nsx_idx_tile *tl)
{
    const int Hi = pl->p->Hi, nr = pl->nr;
    pl->ks->tile(tl);
    for (int h = 0; h < Hi; h++)
        for (int c = 0; c < nr; c++)
            w->xs[(size_t)h * nr + c] = w->x[(size_t)h * nr + c] - w->m[h];
    pl->ks->exp_nonpos(w->xs, Hi * nr);
    for (int c = 0; c < nr; c++)
        w->s[c] = 0.0f;
    for (int h = 0; h < Hi; h++) {
        if (tl->w[h] == 0.0f)
            continue;
        for (int c = 0; c < nr; c++)
            w->s[c] += w->coef[h] * w->xs[(size_t)h * nr + c];
    }
}

static void run_query(const plan *pl, work *w, int b, int i)
{
    const nsx_simd_idx_problem *p = pl->p;
    const nsx_simd_idx_io *io = pl->io;
    const int L = p->L, nr = pl->nr, C = cand_count(p, i);
    const size_t bi = (size_t)b * L + i;
    float *srow = io->scores ? io->scores + bi * L : NULL;
    /* a short row (E9): every candidate is kept, whatever the scores */
    const int all = C <= p->k;
    w->t.n = 0;
    if (p->source == NSX_SIMD_IDX_SCORES) {
        const float *given = io->idx_s + bi * L;
        for (int c = 0; c < C && !all; c += nr)
            topk_feed(&w->t, pl->ks, given + c, C - c < nr ? C - c : nr, c);
        if (srow)
            memcpy(srow, given, (size_t)C * sizeof *srow);
    } else {
        nsx_idx_tile tl = {
            .q = io->idx_q + bi * p->Hi * p->di, .w = io->idx_w + bi * p->Hi,
            .Hi = p->Hi, .di = p->di, .act = p->act, .scale = (float)p->idx_scale,
        };
        const int soft = p->act == NSX_SIMD_ACT_SOFTMAX;
        if (soft)
            softmax_stats(pl, w, &tl, C);
        else
            tl.s = w->s;
        for (int st = 0; st * nr < C; st++) {
            const int j0 = st * nr, nc = C - j0 < nr ? C - j0 : nr;
            tl.kp = pl->kp + (size_t)st * p->di * nr;
            if (soft)
                softmax_scores(pl, w, &tl);
            else
                pl->ks->tile(&tl);
            if (!all)
                topk_feed(&w->t, pl->ks, w->s, nc, j0);
            if (srow)
                memcpy(srow + j0, w->s, (size_t)nc * sizeof *srow);
        }
    }
    for (int j = C; srow && j < L; j++)
        srow[j] = -INFINITY;
    if (io->sel && all) {
        int32_t *sel = io->sel + bi * p->k;
        for (int r = 0; r < p->k; r++)
            sel[r] = r < C ? r : -1;
    } else if (io->sel) {
        topk_write(&w->t, 0, C, w->mark, io->sel + bi * p->k);
    }
}

/* Lays out one thread's scratch from base (NULL: sizes only); returns bytes. */
static size_t work_layout(const nsx_simd_idx_problem *p, int nr, work *w, char *base)
{
    const int Hi = p->source == NSX_SIMD_IDX_INDEXER ? p->Hi : 1;
    size_t off = 0;
#define CARVE(ptr, count)                                                   \
    do {                                                                    \
        if (base)                                                           \
            (ptr) = (void *)(base + off);                                   \
        off += ((size_t)(count) * sizeof *(ptr) + 63) / 64 * 64;            \
    } while (0)
    CARVE(w->t.e, p->k);
    CARVE(w->x, (size_t)Hi * nr);
    CARVE(w->xs, (size_t)Hi * nr);
    CARVE(w->s, nr);
    CARVE(w->m, Hi);
    CARVE(w->z, Hi);
    CARVE(w->coef, Hi);
    CARVE(w->mark, p->L / 64 + 1);
#undef CARVE
    if (base)
        w->t.k = p->k;
    return off;
}

size_t nsx_simd_indexer_scratch_bytes(const nsx_simd_idx_problem *p)
{
    work w;
    int isa = nsx_simd_isa(NULL, 0);
    const nsx_idx_kernels *ks = nsx_simd_idx_kernels(isa < 0 ? NSX_ISA_SCALAR : isa);
    return work_layout(p, ks->nr, &w, NULL);
}

int nsx_simd_indexer_isa(const nsx_simd_idx_problem *p, const nsx_simd_idx_io *io, int threads,
                         int isa)
{
    if (nsx_simd_indexer_check(p, io, NULL, 0))
        return NSX_SIMD_UNSUPPORTED;
    if (!nsx_simd_isa_supported(isa) || !nsx_simd_idx_kernels(isa))
        return NSX_SIMD_EISA;
    plan pl = {.p = p, .io = io, .ks = nsx_simd_idx_kernels(isa)};
    pl.nr = pl.ks->nr;
    pl.nstrip = (p->L + pl.nr - 1) / pl.nr;
    int T = nsx_simd_threads(threads);
    if (T > p->L)
        T = p->L;
    /* All scratch first, so that a failure writes nothing. */
    const int indexer = p->source == NSX_SIMD_IDX_INDEXER;
    work *ws = calloc((size_t)T, sizeof *ws);
    size_t bytes = work_layout(p, pl.nr, &(work){0}, NULL);
    char *block = aligned_alloc(64, bytes * (size_t)T);
    if (indexer)
        pl.kp = aligned_alloc(64, ((size_t)pl.nstrip * p->di * pl.nr * sizeof(float) + 63) / 64 * 64);
    if (!ws || !block || (indexer && !pl.kp)) {
        free(ws);
        free(block);
        free(pl.kp);
        return NSX_SIMD_ENOMEM;
    }
    for (int t = 0; t < T; t++)
        work_layout(p, pl.nr, &ws[t], block + (size_t)t * bytes);
    for (int b = 0; b < p->B; b++) {
#pragma omp parallel num_threads(T)
        {
            if (indexer)
                pack_keys(&pl, b); /* ends with the loop's barrier */
            /* latest query first: with causal on it has the most keys */
#pragma omp for schedule(dynamic, 1)
            for (int it = 0; it < p->L; it++)
                run_query(&pl, &ws[omp_get_thread_num()], b, p->L - 1 - it);
        }
    }
    free(ws);
    free(block);
    free(pl.kp);
    return NSX_SIMD_OK;
}

int nsx_simd_indexer(const nsx_simd_idx_problem *p, const nsx_simd_idx_io *io, int threads)
{
    if (nsx_simd_indexer_check(p, io, NULL, 0))
        return NSX_SIMD_UNSUPPORTED;
    int isa = nsx_simd_isa(NULL, 0);
    if (isa < 0)
        return NSX_SIMD_EISA;
    return nsx_simd_indexer_isa(p, io, threads, isa);
}
