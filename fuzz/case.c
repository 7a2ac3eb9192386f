/*
 * Fuzz cases (fuzz/fuzz.h): a drawn recipe built by vectors/build.c, then
 * the fuzzer's extras.  (Reshaping a case is the shrinker's: shrink.c.)
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "io/fpformat.h"
#include "nsimplex/slice.h"

void nsx_fz_case_free(nsx_fz_case *c)
{
    nsx_instance_free(&c->b);
    memset(c, 0, sizeof *c);
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
    nsx_instance *b = &c->b;
    const nsx_problem *p = &b->p;
    nsx_rng r = {d->seed ^ 0x5851f42d4c957f2dull};
    nsx_tensor_view views[NSX_MAX_INPUTS];
    nsx_instance_inputs(b, views);
    tensor t[2 * NSX_MAX_ORDER + 1]; /* q, k_m, v_m: the first 1 + 2n views */
    const int nt = 1 + 2 * p->n;
    for (int x = 0; x < nt; x++)
        t[x] = (tensor){views[x].x, views[x].per_pos * p->L};
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
    if (p->B + B0 > 64 || c->b.npairs + B0 > NSX_INSTANCE_MAX_PAIRS)
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
        nsx_pair copy = {NSX_PAIR_LEAK, B0 - 1 - x, p->B + x, p->L - 1, NSX_FUTURE_RANDOM, 0, 0, 0};
        nsx_instance_add_pair(&t.b, &copy);
        nsx_instance_flag_pair(&t.b, &copy);
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
    c->bwd = c->r.bwd; /* do drawn by the builder (vectors/bwd.h) */
    extras(c, d, B0);
    if (d->copies && (rc = add_copies(c, B0, err)))
        nsx_fz_case_free(c);
    if (!rc)
        c->r.p = c->b.p;
    return rc;
}

/* ---- description --------------------------------------------------------------------- */

char *nsx_fz_case_text(const nsx_fz_case *c, char *buf, size_t len)
{
    const nsx_problem *p = &c->b.p;
    buf[0] = '\0';
    nsx_fz_put(buf, len, "n=%d B=%d L=%d H=%d Hkv=%d d=%d dv=%d", p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv);
    if (p->reduce != NSX_REDUCE_PRODUCT)
        nsx_fz_put(buf, len, " reduce=%s", nsx_reduce_name(p->reduce));
    if (!p->causal)
        nsx_fz_put(buf, len, " causal=0");
    if (p->distinct)
        nsx_fz_put(buf, len, " distinct=1");
    int any = 0;
    for (int m = 0; m < p->n; m++)
        any |= p->window[m] > 0;
    for (int m = 0; m < p->n && any; m++)
        nsx_fz_put(buf, len, "%s%d", m ? "," : " w=", p->window[m]);
    any = 0;
    for (int m = 0; m < p->n; m++)
        any |= p->k_bias[m] != 0 || p->v_bias[m] != 0;
    for (int m = 0; m < p->n && any; m++)
        nsx_fz_put(buf, len, "%s%.17g", m ? "," : " kb=", p->k_bias[m]);
    for (int m = 0; m < p->n && any; m++)
        nsx_fz_put(buf, len, "%s%.17g", m ? "," : " vb=", p->v_bias[m]);
    if (!p->score_scale_rsqrt_d)
        nsx_fz_put(buf, len, " scale=%.17g", p->score_scale);
    if (p->out_scale != 1)
        nsx_fz_put(buf, len, " out=%.17g", p->out_scale);
    nsx_fz_put(buf, len, " fmt=%s", nsx_format_name(p->input_format));
    if (p->sel.source != NSX_SEL_NONE) {
        nsx_fz_put(buf, len, " sel=%s k=%d dims=", nsx_source_name(p->sel.source), p->sel.k);
        for (int m = 0, first = 1; m < p->n; m++)
            if (p->sel.dims >> m & 1u) {
                nsx_fz_put(buf, len, "%s%d", first ? "" : ",", m + 1);
                first = 0;
            }
    }
    for (int x = 0; x < c->b.npairs; x++) {
        const nsx_pair *q = &c->b.pairs[x];
        if (nsx_pair_is_copy(q, p->L))
            nsx_fz_put(buf, len, " copy(%d,%d)", q->a, q->b);
        else if (q->kind == NSX_PAIR_LEAK)
            nsx_fz_put(buf, len, " leak(%d,%d,t=%d,%s)", q->a, q->b, q->t, nsx_future_name(q->future));
        else
            nsx_fz_put(buf, len, " probe(%d,%d,i=%d,dim=%d,j=%d)", q->a, q->b, q->i, q->dim, q->j);
    }
    if (c->heads && p->H >= 2)
        nsx_fz_put(buf, len, " heads");
    if (c->bwd)
        nsx_fz_put(buf, len, " bwd");
    return buf;
}

double nsx_fz_case_work(const nsx_fz_case *c)
{
    const nsx_problem *p = &c->b.p;
    double total = 0;
    for (int i = 0; i < p->L; i++)
        total += (double)nsx_slice_bound(p, i);
    return total * p->B * p->H * (p->d + p->dv);
}
