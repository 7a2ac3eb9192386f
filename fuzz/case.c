/*
 * Fuzz cases (fuzz/fuzz.h): a drawn recipe built by vectors/build.c, then
 * the fuzzer's extras, and the reshaping the shrinker needs.
 *
 * The extras change the values of the drawn batches only.  A pair's second
 * batch is a copy of batch 0 with some elements changed (a leak pair's
 * future, a probe's key), so every change made to an element of batch 0 is
 * repeated in the other batches wherever they still hold batch 0's old
 * value, bit for bit: the pairs keep their meaning (equal where they were
 * equal, different where they were different).  The extras never touch the
 * selection's scores or indexer inputs, so the selection, and with it every
 * probe's excluded key, stays what it was.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "io/fpformat.h"
#include "io/meta.h"
#include "nsimplex/ref.h"

/* ---- allocation ------------------------------------------------------------- */

/* Every array p needs, zeroed, views set; b->p = *p.  0 or -1. */
static int alloc_case(nsx_built *b, const nsx_problem *p)
{
    memset(b, 0, sizeof *b);
    b->p = *p;
    size_t BL = (size_t)p->B * p->L;
    int ok = (b->q = calloc(nsx_q_size(p), sizeof(double))) != NULL;
    for (int m = 0; m < p->n; m++) {
        ok &= (b->k[m] = calloc(nsx_k_size(p), sizeof(double))) != NULL;
        ok &= (b->v[m] = calloc(nsx_v_size(p), sizeof(double))) != NULL;
        b->in.k[m] = b->k[m];
        b->in.v[m] = b->v[m];
    }
    b->in.q = b->q;
    ok &= (b->o = calloc(nsx_o_size(p), sizeof(double))) != NULL;
    ok &= (b->lse = calloc(nsx_lse_size(p), sizeof(double))) != NULL;
    b->out.o = b->o;
    b->out.lse = b->lse;
    if (p->sel.source == NSX_SEL_INDICES) {
        ok &= (b->sel = calloc(nsx_sel_size(p), sizeof(int32_t))) != NULL;
        b->in.sel = b->sel;
    } else if (p->sel.source != NSX_SEL_NONE) {
        ok &= (b->sel_out = calloc(nsx_sel_size(p), sizeof(int32_t))) != NULL;
        b->out.sel = b->sel_out;
    }
    if (p->sel.source == NSX_SEL_INDEXER) {
        ok &= (b->idx_q = calloc(BL * p->sel.Hi * p->sel.di, sizeof(double))) != NULL;
        ok &= (b->idx_k = calloc(BL * p->sel.di, sizeof(double))) != NULL;
        ok &= (b->idx_w = calloc(BL * p->sel.Hi, sizeof(double))) != NULL;
        ok &= (b->sel_scores = calloc(BL * p->L, sizeof(double))) != NULL;
        b->in.idx_q = b->idx_q;
        b->in.idx_k = b->idx_k;
        b->in.idx_w = b->idx_w;
        b->out.sel_scores = b->sel_scores;
    }
    if (p->sel.source == NSX_SEL_SCORES) {
        ok &= (b->idx_s = calloc(BL * p->L, sizeof(double))) != NULL;
        b->in.idx_s = b->idx_s;
    }
    if (!ok)
        nsx_built_free(b);
    return ok ? 0 : -1;
}

void nsx_fz_case_free(nsx_fz_case *c)
{
    nsx_built_free(&c->b);
    memset(c, 0, sizeof *c);
}

/* ---- reshaping ----------------------------------------------------------------- */

/* The first index of keep[0..nb) equal to batch, or -1. */
static int kept_as(const nsx_fz_shape *s, int batch)
{
    for (int x = 0; x < s->nb; x++)
        if (s->keep[x] == batch)
            return x;
    return -1;
}

/* 1 when no allowed tuple of row i uses key j in dimension dim (1-based):
   the key is outside the causal mask, the window or the selection. */
static int excluded(const nsx_problem *p, const int32_t *sel_row, int i, int dim, int j)
{
    int m = dim - 1, w = p->window[m];
    if (p->causal && j > i)
        return 1;
    if (w > 0 && (!(i - w < j) || (!p->causal && !(j - i < w))))
        return 1;
    if (p->sel.source != NSX_SEL_NONE && (p->sel.dims >> m & 1u)) {
        for (int r = 0; r < p->sel.k; r++)
            if (sel_row[r] == j)
                return 0;
        return 1;
    }
    return 0;
}

static void add_flag(nsx_built *b, const char *flag)
{
    for (int f = 0; f < b->nflags; f++)
        if (strcmp(b->flags[f], flag) == 0)
            return;
    if (b->nflags < NSX_BUILD_MAX_FLAGS)
        b->flags[b->nflags++] = flag;
}

/* The flags a pair gives its case (as vectors/build.c names them). */
static void pair_flags(nsx_built *b, const nsx_pair *q)
{
    static const char *const futures[] = {"FutureRandom", "FutureHuge", "FutureNaN", "FutureInf"};
    if (q->kind == NSX_PAIR_PROBE) {
        add_flag(b, "MaskProbe");
    } else if (q->t == b->p.L - 1 && q->future == NSX_FUTURE_RANDOM) {
        add_flag(b, "BatchCopy");
    } else {
        add_flag(b, "LeakPair");
        add_flag(b, futures[q->future]);
    }
}

nsx_fz_shape nsx_fz_shape_of(const nsx_fz_case *c, int *keep)
{
    const nsx_problem *p = &c->b.p;
    for (int b = 0; b < p->B && b < 64; b++)
        keep[b] = b;
    return (nsx_fz_shape){p->L, p->n, p->d, p->dv, p->Hkv, p->H / p->Hkv, keep, p->B < 64 ? p->B : 64, p->sel.k, 0,
                          NULL};
}

int nsx_fz_case_reshape(const nsx_fz_case *src, const nsx_fz_shape *s, nsx_fz_case *dst, nsx_err *err)
{
    const nsx_problem *sp = &src->b.p;
    nsx_problem p = *sp;
    char why[256];
    const int G0 = sp->H / sp->Hkv;
    memset(dst, 0, sizeof *dst);
    if (s->L < 1 || s->L > sp->L || s->n < 1 || s->n > sp->n || s->d < 1 || s->d > sp->d || s->dv < 1 ||
        s->dv > sp->dv || s->Hkv < 1 || s->Hkv > sp->Hkv || s->G < 1 || s->G > G0 || s->nb < 1 ||
        (sp->sel.source != NSX_SEL_NONE && (s->k < 1 || s->k > sp->sel.k)))
        return nsx_err_set(err, NSX_E_INPUT, "reshape: out of range");
    for (int x = 0; x < s->nb; x++)
        if (s->keep[x] < 0 || s->keep[x] >= sp->B)
            return nsx_err_set(err, NSX_E_INPUT, "reshape: batch %d out of range", s->keep[x]);
    for (int i = 0; s->pos && i < s->L; i++)
        if (s->pos[i] < 0 || s->pos[i] >= sp->L || (i > 0 && s->pos[i] <= s->pos[i - 1]))
            return nsx_err_set(err, NSX_E_INPUT, "reshape: positions not ascending in 0..%d", sp->L - 1);
    p.B = s->nb;
    p.L = s->L;
    p.n = s->n;
    p.d = s->d;
    p.dv = s->dv;
    p.Hkv = s->Hkv;
    p.H = s->Hkv * s->G;
    for (int m = p.n; m < NSX_MAX_ORDER; m++) {
        p.window[m] = 0;
        p.k_bias[m] = p.v_bias[m] = 0;
    }
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        if ((s->drop & NSX_FZ_DROP_WINDOWS) || (s->drop & NSX_FZ_DROP_WINDOW(m)))
            p.window[m] = 0;
        if (s->drop & NSX_FZ_DROP_BIASES)
            p.k_bias[m] = p.v_bias[m] = 0;
    }
    if (s->drop & NSX_FZ_DROP_DISTINCT)
        p.distinct = 0;
    if (s->drop & NSX_FZ_DROP_SCALES) {
        p.score_scale_rsqrt_d = 1;
        p.out_scale = 1;
    }
    if (p.score_scale_rsqrt_d)
        p.score_scale = nsx_problem_score_scale(&p); /* RN(1/sqrt(d)) for the new d */
    if (s->drop & NSX_FZ_DROP_REDUCE)
        p.reduce = NSX_REDUCE_PRODUCT;
    if (s->drop & NSX_FZ_DROP_SELECTION)
        memset(&p.sel, 0, sizeof p.sel);
    if (p.sel.source != NSX_SEL_NONE) {
        p.sel.k = s->k;
        p.sel.dims &= (1u << p.n) - 1u;
        if (!p.sel.dims)
            return nsx_err_set(err, NSX_E_INPUT, "reshape: no selected dimension left");
    }
    if (nsx_problem_check(&p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "reshape: %s", why);
    /* the kept positions P[i] of the source, and the inverse map */
    int *P = malloc((size_t)p.L * sizeof *P), *inv = malloc((size_t)sp->L * sizeof *inv);
    if (!P || !inv) {
        free(P), free(inv);
        return nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    }
    for (int j = 0; j < sp->L; j++)
        inv[j] = -1;
    for (int i = 0; i < p.L; i++) {
        P[i] = s->pos ? s->pos[i] : i;
        inv[P[i]] = i;
    }
    int rc = 0;
    /* a batch with a huge or non-finite future within the kept positions
       needs its leak pair, which leaves its rows after t unjudged */
    for (int x = 0; x < src->b.npairs; x++) {
        const nsx_pair *q = &src->b.pairs[x];
        if (q->kind == NSX_PAIR_LEAK && q->future != NSX_FUTURE_RANDOM && P[p.L - 1] > q->t &&
            kept_as(s, q->b) >= 0 && (kept_as(s, q->a) < 0 || P[0] > q->t))
            rc = nsx_err_set(err, NSX_E_INPUT, "reshape: a batch with a wild future would lose its pair");
    }
    if (!rc && alloc_case(&dst->b, &p))
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    if (rc) {
        free(P), free(inv);
        return rc;
    }
    dst->r = src->r;
    dst->r.p = p;
    if (p.sel.source == NSX_SEL_NONE)
        dst->r.ties = dst->r.invalid = dst->r.empty = 0;
    dst->heads = src->heads;
    dst->seed = src->seed;

    /* the values */
    for (int b = 0; b < p.B; b++) {
        const int sb = s->keep[b];
        for (int i = 0; i < p.L; i++) {
            const int si = P[i];
            for (int h = 0; h < p.H; h++) {
                int sh = h / s->G * G0 + h % s->G; /* kv head h / G', member h % G' */
                memcpy(dst->b.q + nsx_q_at(&p, b, i, h, 0), src->b.q + nsx_q_at(sp, sb, si, sh, 0),
                       (size_t)p.d * sizeof(double));
            }
            for (int m = 0; m < p.n; m++)
                for (int g = 0; g < p.Hkv; g++) {
                    memcpy(dst->b.k[m] + nsx_k_at(&p, b, i, g, 0), src->b.k[m] + nsx_k_at(sp, sb, si, g, 0),
                           (size_t)p.d * sizeof(double));
                    memcpy(dst->b.v[m] + nsx_v_at(&p, b, i, g, 0), src->b.v[m] + nsx_v_at(sp, sb, si, g, 0),
                           (size_t)p.dv * sizeof(double));
                }
            /* the first k entries, renumbered: a dropped key becomes a -1
               pad, an invalid index stays invalid */
            for (int r = 0; dst->b.sel && r < p.sel.k; r++) {
                int32_t e = src->b.sel[nsx_sel_at(sp, sb, si, r)];
                dst->b.sel[nsx_sel_at(&p, b, i, r)] =
                    e < 0 ? e : e >= sp->L ? e - sp->L + p.L : inv[e];
            }
            const int Hi = p.sel.Hi, di = p.sel.di;
            if (dst->b.idx_q) {
                size_t to = (size_t)b * p.L + i, from = (size_t)sb * sp->L + si;
                memcpy(dst->b.idx_q + to * Hi * di, src->b.idx_q + from * Hi * di, (size_t)Hi * di * sizeof(double));
                memcpy(dst->b.idx_k + to * di, src->b.idx_k + from * di, (size_t)di * sizeof(double));
                memcpy(dst->b.idx_w + to * Hi, src->b.idx_w + from * Hi, (size_t)Hi * sizeof(double));
            }
            for (int j = 0; dst->b.idx_s && j < p.L; j++)
                dst->b.idx_s[((size_t)b * p.L + i) * p.L + j] = src->b.idx_s[((size_t)sb * sp->L + si) * sp->L + P[j]];
        }
    }

    /* the pairs that still hold */
    int32_t *sel0 = NULL;
    if (p.sel.source == NSX_SEL_INDEXER || p.sel.source == NSX_SEL_SCORES) {
        if (!(sel0 = malloc(nsx_sel_size(&p) * sizeof *sel0))) {
            rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        } else if (nsx_ref_select(&p, &dst->b.in, sel0, NULL, NULL, NULL, err)) {
            rc = err->kind;
        }
    }
    for (int x = 0; x < src->b.npairs && !rc; x++) {
        nsx_pair q = src->b.pairs[x];
        int a = kept_as(s, q.a), b = kept_as(s, q.b);
        if (a < 0 || b < 0)
            continue;
        q.a = a;
        q.b = b;
        if (q.kind == NSX_PAIR_LEAK) {
            int shared = 0; /* kept positions up to t */
            while (shared < p.L && P[shared] <= q.t)
                shared++;
            if (shared == 0)
                continue;
            q.t = shared - 1;
            if (q.t < p.L - 1 && !p.causal)
                continue;
        } else {
            if (inv[q.i] < 0 || inv[q.j] < 0 || q.dim > p.n)
                continue;
            q.i = inv[q.i];
            q.j = inv[q.j];
            const int32_t *row = p.sel.source == NSX_SEL_INDICES ? dst->b.sel + nsx_sel_at(&p, a, q.i, 0)
                                 : sel0                         ? sel0 + nsx_sel_at(&p, a, q.i, 0)
                                                                : NULL;
            if (!excluded(&p, row, q.i, q.dim, q.j))
                continue;
        }
        dst->b.pairs[dst->b.npairs++] = q;
        pair_flags(&dst->b, &q);
    }
    free(sel0);
    free(P);
    free(inv);
    if (rc)
        nsx_fz_case_free(dst);
    return rc;
}

int nsx_fz_case_copy(const nsx_fz_case *src, nsx_fz_case *dst, nsx_err *err)
{
    const nsx_problem *p = &src->b.p;
    int keep[64];
    if (p->B > 64)
        return nsx_err_set(err, NSX_E_TOO_LARGE, "fuzz: too many batches to copy");
    nsx_fz_shape s = nsx_fz_shape_of(src, keep);
    int rc = nsx_fz_case_reshape(src, &s, dst, err);
    if (!rc) {
        memcpy(dst->b.flags, src->b.flags, sizeof dst->b.flags);
        dst->b.nflags = src->b.nflags;
        /* the pairs as they were, even those a fresh check would drop */
        memcpy(dst->b.pairs, src->b.pairs, sizeof dst->b.pairs);
        dst->b.npairs = src->b.npairs;
    }
    return rc;
}

/* ---- the extras ------------------------------------------------------------------ */

typedef struct tensor {
    double *x;
    size_t per_batch;
} tensor;

/* Repeats batch 0's changes (old -> now) in the batches from..B-1 where
   they still hold the old value, bit for bit. */
static void propagate(const tensor *t, const double *old, int from, int B)
{
    for (size_t e = 0; e < t->per_batch; e++) {
        if (memcmp(&old[e], &t->x[e], sizeof(double)) == 0)
            continue;
        for (int b = from; b < B; b++) {
            double *y = t->x + (size_t)b * t->per_batch + e;
            if (memcmp(y, &old[e], sizeof(double)) == 0)
                *y = t->x[e];
        }
    }
}

/* A value one unit in the last place of the input format above x. */
static double nudge(double x, int fmt)
{
    nsx_fmt f = nsx_fmt_of(fmt);
    double u = nsx_fmt_ulp(&f, fabs(x));
    double y = nsx_round_to_format(x + (x < 0 ? -u : u), fmt);
    return isfinite(y) ? y : x;
}

/* Interesting values of the input format: signed zeros, the least
   subnormal and normal, one and its neighbour, powers of two, and a large
   value 2^big (nsx_fz_draw.big). */
static double interesting(nsx_rng *r, const nsx_problem *p, int big)
{
    static const double tiny[4][2] = {{0x1p-1074, 0x1p-1022}, {0x1p-149, 0x1p-126}, {0x1p-24, 0x1p-14},
                                      {0x1p-133, 0x1p-126}};
    const int fmt = p->input_format;
    int e = big > 1 ? big : 1;
    if (fmt == NSX_FORMAT_F16 && e > 13)
        e = 13;
    double v;
    switch (nsx_rng_below(r, 8)) {
    case 0: v = 0.0; break;
    case 1: v = tiny[fmt][0]; break;
    case 2: v = tiny[fmt][1]; break;
    case 3: v = 1.0; break;
    case 4: v = nudge(1.0, fmt); break;
    case 5: v = ldexp(1.0, nsx_rng_below(r, e + 25) - 24); break;
    case 6: v = ldexp(1.0, e); break;
    default: v = nsx_round_to_format(ldexp(1.0, e) * 0.75, fmt); break;
    }
    return nsx_rng_chance(r, 0.5) ? -v : v;
}

/* A lane index in 0..width-1, often at a vector boundary or the tail. */
static int lane(nsx_rng *r, int width)
{
    const int edges[] = {0, 7, 8, 15, 16, 31, 32, width - 1};
    int l = nsx_rng_chance(r, 0.6) ? edges[nsx_rng_below(r, 8)] : nsx_rng_below(r, width);
    return l < width ? l : width - 1;
}

/* The extras on the drawn batches 0..B0-1, then batch 0's changes repeated
   in the pair batches. */
static void extras(nsx_fz_case *c, const nsx_fz_draw *d, int B0)
{
    nsx_built *b = &c->b;
    const nsx_problem *p = &b->p;
    nsx_rng r = {d->seed ^ 0x5851f42d4c957f2dull};
    tensor t[2 * NSX_MAX_ORDER + 1];
    int nt = 0;
    t[nt++] = (tensor){b->q, (size_t)p->L * p->H * p->d};
    for (int m = 0; m < p->n; m++) {
        t[nt++] = (tensor){b->k[m], (size_t)p->L * p->Hkv * p->d};
        t[nt++] = (tensor){b->v[m], (size_t)p->L * p->Hkv * p->dv};
    }
    double *old[2 * NSX_MAX_ORDER + 1];
    for (int x = 0; x < nt; x++) {
        old[x] = malloc(t[x].per_batch * sizeof(double));
        if (old[x])
            memcpy(old[x], t[x].x, t[x].per_batch * sizeof(double));
    }
    for (int bb = 0; bb < B0; bb++) {
        /* ties: key rows copied to other positions (every kv head), so
           tuples that differ there score exactly alike; near: one element
           of the copy one unit in the last place off */
        for (int x = 0; d->ties && x < 1 + p->L / 3 && p->L >= 2; x++) {
            int m = nsx_rng_below(&r, p->n), j1 = nsx_rng_below(&r, p->L), j2 = nsx_rng_below(&r, p->L);
            if (j1 == j2)
                continue;
            for (int g = 0; g < p->Hkv; g++) {
                double *dst = b->k[m] + nsx_k_at(p, bb, j2, g, 0);
                memcpy(dst, b->k[m] + nsx_k_at(p, bb, j1, g, 0), (size_t)p->d * sizeof(double));
                if (d->ties == 2) {
                    int l = nsx_rng_below(&r, p->d);
                    dst[l] = nudge(dst[l], p->input_format);
                }
            }
        }
        /* interesting values in random lanes of q, k_m, v_m */
        for (int x = 0; x < d->lanes; x++) {
            int which = nsx_rng_below(&r, nt);
            int width = which == 0 || which % 2 == 1 ? p->d : p->dv;
            int heads = which == 0 ? p->H : p->Hkv;
            size_t e = (((size_t)bb * p->L + nsx_rng_below(&r, p->L)) * heads + nsx_rng_below(&r, heads)) * width +
                       lane(&r, width);
            t[which].x[e] = interesting(&r, p, d->big);
        }
    }
    for (int x = 0; x < nt; x++)
        if (old[x])
            propagate(&t[x], old[x], B0, p->B);
    for (int x = 0; x < nt; x++)
        free(old[x]);

    /* given selection rows in another order: S(i) is a set, -1 pads may be
       anywhere; a pair batch's row equal to batch 0's gets the same order */
    if (d->shuffle && b->sel) {
        const int k = p->sel.k;
        int32_t *row0 = malloc((size_t)k * sizeof *row0);
        for (int bb = 0; bb < B0 && row0; bb++)
            for (int i = 0; i < p->L; i++) {
                int32_t *row = b->sel + nsx_sel_at(p, bb, i, 0);
                memcpy(row0, row, (size_t)k * sizeof *row0);
                for (int x = k - 1; x > 0; x--) {
                    int y = nsx_rng_below(&r, x + 1);
                    int32_t tmp = row[x];
                    row[x] = row[y];
                    row[y] = tmp;
                }
                for (int pb = B0; bb == 0 && pb < p->B; pb++) {
                    int32_t *other = b->sel + nsx_sel_at(p, pb, i, 0);
                    if (memcmp(other, row0, (size_t)k * sizeof *row0) == 0)
                        memcpy(other, row, (size_t)k * sizeof *row0);
                }
            }
        free(row0);
    }
}

/* The drawn batches appended again in reverse order, each copy paired with
   its original over every position (t = L - 1): a kernel's outputs may not
   depend on where in the batch a problem sits. */
static int add_copies(nsx_fz_case *c, int B0, nsx_err *err)
{
    const nsx_problem *p = &c->b.p;
    int keep[64], nb = 0;
    if (p->B + B0 > 64 || c->b.npairs + B0 > NSX_BUILD_MAX_PAIRS)
        return 0;
    for (int b = 0; b < p->B; b++)
        keep[nb++] = b;
    for (int x = B0 - 1; x >= 0; x--)
        keep[nb++] = x;
    nsx_fz_shape s = {p->L, p->n, p->d, p->dv, p->Hkv, p->H / p->Hkv, keep, nb, p->sel.k, 0, NULL};
    nsx_fz_case t;
    int rc = nsx_fz_case_reshape(c, &s, &t, err);
    if (rc)
        return rc;
    memcpy(t.b.flags, c->b.flags, sizeof t.b.flags);
    t.b.nflags = c->b.nflags;
    for (int x = 0; x < B0; x++) {
        t.b.pairs[t.b.npairs] = (nsx_pair){NSX_PAIR_LEAK, B0 - 1 - x, p->B + x, p->L - 1, NSX_FUTURE_RANDOM, 0, 0, 0};
        pair_flags(&t.b, &t.b.pairs[t.b.npairs++]);
    }
    nsx_fz_case_free(c);
    *c = t;
    return 0;
}

int nsx_fz_case_build(const nsx_fz_draw *d, nsx_fz_case *c, nsx_err *err)
{
    memset(c, 0, sizeof *c);
    int rc = nsx_recipe_parse(d->recipe, &c->r, err);
    if (rc)
        return rc;
    if ((rc = nsx_build(&c->r, d->seed, &c->b, err)))
        return rc;
    const int B0 = c->r.p.B;
    c->seed = d->seed;
    c->heads = d->heads;
    extras(c, d, B0);
    if (d->copies && (rc = add_copies(c, B0, err)))
        nsx_fz_case_free(c);
    if (!rc)
        c->r.p = c->b.p;
    return rc;
}

/* ---- description --------------------------------------------------------------------- */

static void put(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void put(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

char *nsx_fz_case_text(const nsx_fz_case *c, char *buf, size_t len)
{
    const nsx_problem *p = &c->b.p;
    buf[0] = '\0';
    put(buf, len, "n=%d B=%d L=%d H=%d Hkv=%d d=%d dv=%d", p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv);
    if (p->reduce != NSX_REDUCE_PRODUCT)
        put(buf, len, " reduce=%s", nsx_reduce_name(p->reduce));
    if (!p->causal)
        put(buf, len, " causal=0");
    if (p->distinct)
        put(buf, len, " distinct=1");
    int any = 0;
    for (int m = 0; m < p->n; m++)
        any |= p->window[m] > 0;
    for (int m = 0; m < p->n && any; m++)
        put(buf, len, "%s%d", m ? "," : " w=", p->window[m]);
    any = 0;
    for (int m = 0; m < p->n; m++)
        any |= p->k_bias[m] != 0 || p->v_bias[m] != 0;
    for (int m = 0; m < p->n && any; m++)
        put(buf, len, "%s%.17g", m ? "," : " kb=", p->k_bias[m]);
    for (int m = 0; m < p->n && any; m++)
        put(buf, len, "%s%.17g", m ? "," : " vb=", p->v_bias[m]);
    if (!p->score_scale_rsqrt_d)
        put(buf, len, " scale=%.17g", p->score_scale);
    if (p->out_scale != 1)
        put(buf, len, " out=%.17g", p->out_scale);
    static const char *const fmts[] = {"f64", "f32", "f16", "bf16"};
    put(buf, len, " fmt=%s", fmts[p->input_format]);
    if (p->sel.source != NSX_SEL_NONE) {
        put(buf, len, " sel=%s k=%d dims=", nsx_source_name(p->sel.source), p->sel.k);
        for (int m = 0, first = 1; m < p->n; m++)
            if (p->sel.dims >> m & 1u) {
                put(buf, len, "%s%d", first ? "" : ",", m + 1);
                first = 0;
            }
    }
    for (int x = 0; x < c->b.npairs; x++) {
        const nsx_pair *q = &c->b.pairs[x];
        if (q->kind == NSX_PAIR_LEAK && q->t == p->L - 1 && q->future == NSX_FUTURE_RANDOM)
            put(buf, len, " copy(%d,%d)", q->a, q->b);
        else if (q->kind == NSX_PAIR_LEAK)
            put(buf, len, " leak(%d,%d,t=%d,%s)", q->a, q->b, q->t, nsx_future_name(q->future));
        else
            put(buf, len, " probe(%d,%d,i=%d,dim=%d,j=%d)", q->a, q->b, q->i, q->dim, q->j);
    }
    if (c->heads && p->H >= 2)
        put(buf, len, " heads");
    return buf;
}

double nsx_fz_case_work(const nsx_fz_case *c)
{
    const nsx_problem *p = &c->b.p;
    double total = 0;
    for (int i = 0; i < p->L; i++) {
        double row = 1;
        for (int m = 0; m < p->n; m++) {
            int lo = 0, hi = p->causal ? i : p->L - 1, w = p->window[m];
            if (w > 0) {
                lo = i - w + 1 > 0 ? i - w + 1 : 0;
                if (!p->causal && w - 1 < hi - i) /* i + w may overflow */
                    hi = i + w - 1;
            }
            int cnt = hi - lo + 1;
            if (p->sel.source != NSX_SEL_NONE && (p->sel.dims >> m & 1u) && p->sel.k < cnt)
                cnt = p->sel.k;
            row *= cnt > 0 ? cnt : 0;
        }
        total += row;
    }
    return total * p->B * p->H * (p->d + p->dv);
}
