/*
 * Shrinking a failing case (fuzz/fuzz.h): greedy passes of smaller
 * candidates, each judged afresh; a candidate is kept when it still fails
 * by the same kind.  The passes, cheapest and most effective first:
 *
 *   batches      drop one (a pair goes with either of its batches)
 *   pairs        a leak pair's future starts earlier, a probe moves to
 *                earlier positions (so that fewer positions can follow)
 *   positions    L / 2, then L - 1; then positions from the front and the
 *                middle: a half, a quarter, one at a time
 *   order        drop the last dimension
 *   heads        one kv head, one query head per group, then one fewer
 *   widths       d / 2, d - 1, and dv likewise
 *   top-k        k / 2, k - 1
 *   features     selection, windows (all, then one at a time), biases,
 *                distinct, scales, reducer
 *   values       per tensor: zeros, ones, powers of two, small integers;
 *                on the whole tensor, else on each half of the positions
 *
 * until a whole round keeps nothing or the budget is spent.  Values are
 * changed by a function of the value, in every batch alike, so pairs keep
 * their meaning; NaN, infinities and magnitudes of 2^24 and more (the wild
 * futures of leak pairs) are left as they are.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz/fuzz.h"
#include "io/fpformat.h"
#include "nsimplex/ref.h"
#include "nsimplex/slice.h"

typedef struct shrinker {
    const nsx_kernel *k;
    const nsx_model *m;
    unsigned kind;
    double t0, budget;
    nsx_fz_shrink_stats *st;
    int max_tries;      /* 0: no limit on judged candidates */
} shrinker;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int out_of_time(const shrinker *s)
{
    return (s->max_tries > 0 && s->st->tries >= s->max_tries) || now() - s->t0 > s->budget;
}

/* 1 when cand fails by the kind; -1 on an internal error. */
static int still_fails(shrinker *s, nsx_fz_case *cand, nsx_err *err)
{
    nsx_fz_verdict v;
    int rc = nsx_fz_judge(s->k, s->m, cand, NSX_FZ_REF_AUTO, &v, err);
    s->st->tries++;
    int r = rc ? -1 : v.status == NSX_FZ_FAIL && (v.kinds & s->kind);
    nsx_fz_verdict_free(&v);
    return r;
}

/* Keeps cand in *c when it still fails (frees the loser).  1 kept, 0 not,
   -1 internal error. */
static int keep_if_fails(shrinker *s, nsx_fz_case *c, nsx_fz_case *cand, nsx_err *err)
{
    int r = still_fails(s, cand, err);
    if (r == 1) {
        nsx_fz_case_free(c);
        *c = *cand;
        s->st->steps++;
    } else {
        nsx_fz_case_free(cand);
    }
    return r;
}

static int try_shape(shrinker *s, nsx_fz_case *c, const nsx_fz_shape *sh, nsx_err *err)
{
    nsx_fz_case cand;
    nsx_err e = {0};
    if (out_of_time(s))
        return 0;
    int rc = nsx_fz_case_reshape(c, sh, &cand, &e);
    if (nsx_err_is_fatal(rc)) {
        *err = e;
        return -1;
    }
    if (rc)
        return 0; /* not a valid problem: not a candidate */
    return keep_if_fails(s, c, &cand, err);
}

/* Tries each value of the list for one field of c's shape, in order,
   keeping every one that still fails (values not below the current one
   are skipped). */
#define SHRINK_INT(s, c, field, err, ...)                                         \
    do {                                                                          \
        const int tries_[] = {__VA_ARGS__};                                       \
        for (size_t t_ = 0; t_ < sizeof tries_ / sizeof tries_[0]; t_++) {        \
            int keep_[64];                                                        \
            nsx_fz_shape sh_ = nsx_fz_shape_of(c, keep_);                         \
            if (tries_[t_] < 1 || tries_[t_] >= sh_.field)                        \
                continue;                                                         \
            sh_.field = tries_[t_];                                               \
            int r_ = try_shape(s, c, &sh_, err);                                  \
            if (r_ < 0)                                                           \
                return -1;                                                        \
            changed += r_;                                                        \
        }                                                                         \
    } while (0)

/* ---- values ------------------------------------------------------------ */

enum simpler { TO_ZERO, TO_ONE, TO_POW2, TO_INT, SIMPLER_COUNT };

static double simplify(double x, int how, int fmt)
{
    if (!isfinite(x) || fabs(x) >= 0x1p24 || x == 0)
        return x;
    double y;
    switch (how) {
    case TO_ZERO: y = 0.0; break;
    case TO_ONE: y = x < 0 ? -1.0 : 1.0; break;
    case TO_POW2: y = copysign(exp2(round(log2(fabs(x)))), x); break;
    default: y = fmax(-4.0, fmin(4.0, round(x))); break;
    }
    return nsx_round_to_format(y, fmt);
}

/* A copy of c with f applied to positions [j0, j1) of tensor `which` (0: q,
   then k_m, v_m) in every batch; 0 when nothing changed. */
static int simplified(const nsx_fz_case *c, int which, int how, int j0, int j1, nsx_fz_case *cand, nsx_err *err)
{
    if (nsx_fz_case_copy(c, cand, err))
        return -1;
    const nsx_problem *p = &cand->b.p;
    double *x;
    size_t per_pos;
    if (which == 0) {
        x = cand->b.q;
        per_pos = (size_t)p->H * p->d;
    } else if (which % 2 == 1) {
        x = cand->b.k[(which - 1) / 2];
        per_pos = (size_t)p->Hkv * p->d;
    } else {
        x = cand->b.v[(which - 1) / 2];
        per_pos = (size_t)p->Hkv * p->dv;
    }
    int changed = 0;
    for (int b = 0; b < p->B; b++)
        for (size_t e = ((size_t)b * p->L + j0) * per_pos; e < ((size_t)b * p->L + j1) * per_pos; e++) {
            double y = simplify(x[e], how, p->input_format);
            if (memcmp(&y, &x[e], sizeof y) != 0) {
                x[e] = y;
                changed = 1;
            }
        }
    if (!changed)
        nsx_fz_case_free(cand);
    return changed;
}

static int shrink_values(shrinker *s, nsx_fz_case *c, nsx_err *err)
{
    int changed = 0;
    for (int which = 0; which < 1 + 2 * c->b.p.n; which++)
        for (int how = 0; how < SIMPLER_COUNT; how++) {
            const int L = c->b.p.L;
            const int ranges[3][2] = {{0, L}, {0, L / 2}, {L / 2, L}};
            for (int x = 0; x < 3 && !out_of_time(s); x++) {
                if (ranges[x][0] >= ranges[x][1])
                    continue;
                nsx_fz_case cand;
                int r = simplified(c, which, how, ranges[x][0], ranges[x][1], &cand, err);
                if (r < 0)
                    return -1;
                if (r == 0)
                    continue;
                if ((r = keep_if_fails(s, c, &cand, err)) < 0)
                    return -1;
                changed += r;
                if (r && x == 0)
                    break; /* the whole tensor went: no halves to try */
            }
        }
    return changed;
}

/* ---- pairs moved earlier ------------------------------------------------ */

/* The rows of tensor `which` of batch b at position j (every head). */
static double *row_at(nsx_fz_case *c, int which, int b, int j, size_t *len)
{
    const nsx_problem *p = &c->b.p;
    if (which == 0) {
        *len = (size_t)p->H * p->d;
        return c->b.q + nsx_q_at(p, b, j, 0, 0);
    }
    int m = (which - 1) / 2;
    if (which % 2 == 1) {
        *len = (size_t)p->Hkv * p->d;
        return c->b.k[m] + nsx_k_at(p, b, j, 0, 0);
    }
    *len = (size_t)p->Hkv * p->dv;
    return c->b.v[m] + nsx_v_at(p, b, j, 0, 0);
}

/* A copy of c with pair x moved earlier: a leak pair's future starts after
   t2 (batch b's positions t2 + 1 .. t take the values of its position
   t + 1), a probe moves from (i, j) to (i - delta, j - delta).  Pairs are
   checked again (a probe whose key is no longer excluded goes).  0, 1 when
   there is nothing to try, -1 on an internal error. */
static int moved_pair(const nsx_fz_case *c, int x, int arg, nsx_fz_case *cand, nsx_err *err)
{
    nsx_fz_case t;
    nsx_pair q = c->b.pairs[x];
    const int ntensors = 1 + 2 * c->b.p.n;
    if (q.kind == NSX_PAIR_LEAK ? arg < 0 || arg >= q.t || q.t >= c->b.p.L - 1
                                : arg < 1 || q.i - arg < 0 || q.j - arg < 0)
        return 1;
    if (nsx_fz_case_copy(c, &t, err))
        return -1;
    size_t len;
    if (q.kind == NSX_PAIR_LEAK) {
        for (int w = 0; w < ntensors; w++)
            for (int j = arg + 1; j <= q.t; j++) {
                double *dst = row_at(&t, w, q.b, j, &len), *src = row_at(&t, w, q.b, q.t + 1, &len);
                memcpy(dst, src, len * sizeof *dst);
            }
        t.b.pairs[x].t = arg;
    } else {
        for (int w = 2 * q.dim - 1; w <= 2 * q.dim; w++) {
            double *old = row_at(&t, w, q.b, q.j, &len), *to = row_at(&t, w, q.b, q.j - arg, &len);
            memcpy(to, old, len * sizeof *to);
            memcpy(old, row_at(&t, w, q.a, q.j, &len), len * sizeof *old);
        }
        t.b.pairs[x].i -= arg;
        t.b.pairs[x].j -= arg;
    }
    int keep[64];
    nsx_fz_shape sh = nsx_fz_shape_of(&t, keep);
    int rc = nsx_fz_case_reshape(&t, &sh, cand, err);
    nsx_fz_case_free(&t);
    return nsx_err_is_fatal(rc) ? -1 : rc ? 1 : 0;
}

static int shrink_pairs(shrinker *s, nsx_fz_case *c, nsx_err *err)
{
    int changed = 0;
    for (int x = 0; x < c->b.npairs && !out_of_time(s); x++) {
        const nsx_pair q = c->b.pairs[x];
        const int args[2] = {q.kind == NSX_PAIR_LEAK ? q.t / 2 : q.i / 2, q.kind == NSX_PAIR_LEAK ? q.t - 1 : 1};
        for (int y = 0; y < 2; y++) {
            nsx_fz_case cand;
            int r = moved_pair(c, x, args[y], &cand, err);
            if (r < 0)
                return -1;
            if (r > 0)
                continue;
            if ((r = keep_if_fails(s, c, &cand, err)) < 0)
                return -1;
            changed += r;
            if (r)
                break;
        }
    }
    return changed;
}

/* ---- positions dropped from the front and the middle ------------------------ */

/* Tries c without the positions [j0, j1) (the tail goes by cutting L). */
static int try_drop_positions(shrinker *s, nsx_fz_case *c, int j0, int j1, nsx_err *err)
{
    const int L = c->b.p.L;
    if (j0 < 0 || j1 <= j0 || j1 >= L)
        return 0;
    int *pos = malloc((size_t)L * sizeof *pos), keep[64], n = 0;
    if (!pos) {
        nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        return -1;
    }
    for (int j = 0; j < L; j++)
        if (j < j0 || j >= j1)
            pos[n++] = j;
    nsx_fz_shape sh = nsx_fz_shape_of(c, keep);
    sh.L = n;
    sh.pos = pos;
    int r = try_shape(s, c, &sh, err);
    free(pos);
    return r;
}

static int shrink_positions(shrinker *s, nsx_fz_case *c, nsx_err *err)
{
    int changed = 0, r;
    const int L = c->b.p.L;
    const int blocks[3][2] = {{0, L / 2}, {0, L / 4}, {L / 4, L / 2}};
    for (int x = 0; x < 3; x++) {
        if ((r = try_drop_positions(s, c, blocks[x][0], blocks[x][1], err)) < 0)
            return -1;
        changed += r;
        if (r)
            return changed; /* positions renumbered: start again next round */
    }
    for (int j = 0; j < c->b.p.L - 1 && !out_of_time(s); j++) {
        if ((r = try_drop_positions(s, c, j, j + 1, err)) < 0)
            return -1;
        changed += r;
        j -= r; /* the next position now sits at j */
    }
    return changed;
}

/* ---- one round ----------------------------------------------------------- */

static int round_once(shrinker *s, nsx_fz_case *c, nsx_err *err)
{
    int changed = 0;
    /* batches, from the last */
    for (int x = c->b.p.B - 1; x >= 0 && c->b.p.B > 1; x--) {
        int keep[64];
        nsx_fz_shape sh = nsx_fz_shape_of(c, keep);
        if (x >= sh.nb)
            continue;
        for (int y = x; y < sh.nb - 1; y++)
            keep[y] = keep[y + 1];
        sh.nb--;
        int r = try_shape(s, c, &sh, err);
        if (r < 0)
            return -1;
        changed += r;
    }
    int r = shrink_pairs(s, c, err);
    if (r < 0)
        return -1;
    changed += r;
    const int L = c->b.p.L;
    SHRINK_INT(s, c, L, err, L / 2, L - 1);
    if ((r = shrink_positions(s, c, err)) < 0)
        return -1;
    changed += r;
    for (int n = c->b.p.n - 1; n >= 1; n--)
        SHRINK_INT(s, c, n, err, n);
    SHRINK_INT(s, c, Hkv, err, 1, c->b.p.Hkv - 1);
    SHRINK_INT(s, c, G, err, 1, c->b.p.H / c->b.p.Hkv - 1);
    SHRINK_INT(s, c, d, err, 1, c->b.p.d / 2, c->b.p.d - 1);
    SHRINK_INT(s, c, dv, err, 1, c->b.p.dv / 2, c->b.p.dv - 1);
    if (c->b.p.sel.source != NSX_SEL_NONE)
        SHRINK_INT(s, c, k, err, 1, c->b.p.sel.k / 2, c->b.p.sel.k - 1);

    /* features */
    unsigned drops[6 + NSX_MAX_ORDER];
    int nd = 0;
    const nsx_problem *p = &c->b.p;
    if (p->sel.source != NSX_SEL_NONE)
        drops[nd++] = NSX_FZ_DROP_SELECTION;
    int windows = 0;
    for (int m = 0; m < p->n; m++)
        windows += p->window[m] > 0;
    if (windows)
        drops[nd++] = NSX_FZ_DROP_WINDOWS;
    for (int m = 0; m < p->n && windows > 1; m++)
        if (p->window[m] > 0)
            drops[nd++] = NSX_FZ_DROP_WINDOW(m);
    drops[nd++] = NSX_FZ_DROP_BIASES;
    if (p->distinct)
        drops[nd++] = NSX_FZ_DROP_DISTINCT;
    if (!p->score_scale_rsqrt_d || p->out_scale != 1)
        drops[nd++] = NSX_FZ_DROP_SCALES;
    if (p->reduce != NSX_REDUCE_PRODUCT)
        drops[nd++] = NSX_FZ_DROP_REDUCE;
    for (int x = 0; x < nd; x++) {
        int keep[64];
        nsx_fz_shape sh = nsx_fz_shape_of(c, keep);
        if (drops[x] == NSX_FZ_DROP_BIASES) {
            int any = 0;
            for (int m = 0; m < c->b.p.n; m++)
                any |= c->b.p.k_bias[m] != 0 || c->b.p.v_bias[m] != 0;
            if (!any)
                continue;
        }
        if (drops[x] == NSX_FZ_DROP_SELECTION && c->b.p.sel.source == NSX_SEL_NONE)
            continue;
        sh.drop = drops[x];
        int r = try_shape(s, c, &sh, err);
        if (r < 0)
            return -1;
        changed += r;
    }
    if ((r = shrink_values(s, c, err)) < 0)
        return -1;
    return changed + r;
}

int nsx_fz_shrink(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, unsigned kind, double budget,
                  nsx_fz_shrink_stats *st, nsx_err *err)
{
    return nsx_fz_shrink_tries(k, m, c, kind, budget, 0, st, err);
}

int nsx_fz_shrink_tries(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, unsigned kind, double budget,
                        int max_tries, nsx_fz_shrink_stats *st, nsx_err *err)
{
    shrinker s = {k, m, kind, now(), budget, st, max_tries};
    memset(st, 0, sizeof *st);
    int r;
    while ((r = round_once(&s, c, err)) > 0 && !out_of_time(&s))
        ;
    st->seconds = now() - s.t0;
    return r < 0 ? err->kind ? err->kind : NSX_E_INTERNAL : 0;
}

/* ---- reshaping (fuzz/fuzz.h: nsx_fz_case_reshape) ---------------------------- */

/* The first index of keep[0..nb) equal to batch, or -1. */
static int kept_as(const nsx_fz_shape *s, int batch)
{
    for (int x = 0; x < s->nb; x++)
        if (s->keep[x] == batch)
            return x;
    return -1;
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
    if (!rc && nsx_instance_alloc(&dst->b, &p))
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    else if (!rc && src->b.dout && nsx_instance_alloc_grads(&dst->b)) /* a backward case's do */
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
    dst->bwd = src->bwd;

    /* the values */
    for (int b = 0; b < p.B; b++) {
        const int sb = s->keep[b];
        for (int i = 0; i < p.L; i++) {
            const int si = P[i];
            for (int h = 0; h < p.H; h++) {
                int sh = h / s->G * G0 + h % s->G; /* kv head h / G', member h % G' */
                memcpy(dst->b.q + nsx_q_at(&p, b, i, h, 0), src->b.q + nsx_q_at(sp, sb, si, sh, 0),
                       (size_t)p.d * sizeof(double));
                if (dst->b.dout)
                    memcpy(dst->b.dout + nsx_o_at(&p, b, i, h, 0), src->b.dout + nsx_o_at(sp, sb, si, sh, 0),
                           (size_t)p.dv * sizeof(double));
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
                memcpy(dst->b.idx_q + nsx_idx_q_at(&p, b, i, 0, 0), src->b.idx_q + nsx_idx_q_at(sp, sb, si, 0, 0),
                       (size_t)Hi * di * sizeof(double));
                memcpy(dst->b.idx_k + nsx_idx_k_at(&p, b, i, 0), src->b.idx_k + nsx_idx_k_at(sp, sb, si, 0),
                       (size_t)di * sizeof(double));
                memcpy(dst->b.idx_w + nsx_idx_w_at(&p, b, i, 0), src->b.idx_w + nsx_idx_w_at(sp, sb, si, 0),
                       (size_t)Hi * sizeof(double));
            }
            for (int j = 0; dst->b.idx_s && j < p.L; j++)
                dst->b.idx_s[nsx_idx_s_at(&p, b, i, j)] = src->b.idx_s[nsx_idx_s_at(sp, sb, si, P[j])];
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
            if (nsx_key_allowed(&p, row, q.i, q.dim - 1, q.j))
                continue; /* some allowed tuple of row i uses the key */
        }
        nsx_instance_add_pair(&dst->b, &q);
        nsx_instance_flag_pair(&dst->b, &q);
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
