/* Building a case from a recipe (vectors/build.h). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/fpformat.h"
#include "nsimplex/rng.h"
#include "nsimplex/slice.h"
#include "vectors/build.h"
#include "vectors/bwd.h"

uint64_t nsx_seed_of(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* ---- values ------------------------------------------------------------------ */

enum role { ROLE_Q, ROLE_K, ROLE_V, ROLE_IDX };

/* Largest finite value and a power of two in the subnormal range. */
static double format_max(int fmt)
{
    switch (fmt) {
    case NSX_FORMAT_F32: return FLT_MAX;
    case NSX_FORMAT_F16: return 65504.0;
    case NSX_FORMAT_BF16: return 0x1.fep127;
    default: return DBL_MAX;
    }
}

static double subnormal_scale(int fmt)
{
    switch (fmt) {
    case NSX_FORMAT_F16: return 0x1p-17;
    case NSX_FORMAT_F64: return 0x1p-1030;
    default: return 0x1p-129; /* f32 and bf16 */
    }
}

/* Large magnitudes: scores (products of n + 1 inputs) stay below 2^100,
   inside binary32's range, and inputs inside the format's. */
static double large_scale(int fmt, int n)
{
    int e = 100 / (n + 1) - 4;
    if (fmt == NSX_FORMAT_F16 && e > 12)
        e = 12;
    if (fmt == NSX_FORMAT_F64)
        e = 1000 / (n + 1) - 4;
    return ldexp(1.0, e);
}

static double draw(nsx_rng *r, const nsx_recipe *rc, enum role role)
{
    int fmt = rc->p.input_format;
    double x = nsx_rng_normal(r);
    switch (rc->dist) {
    case NSX_DIST_UNIFORM:
        x = 2 * nsx_rng_uniform(r) - 1;
        break;
    case NSX_DIST_HEAVY:
        x /= sqrt(0.02 + nsx_rng_uniform(r));
        break;
    case NSX_DIST_ONEHOT:
        if (role == ROLE_Q)
            x *= 24;
        break;
    case NSX_DIST_EQUAL:
        if (role == ROLE_Q)
            x = 0;
        break;
    case NSX_DIST_ZEROS:
        if (role == ROLE_V)
            x = 0;
        break;
    case NSX_DIST_SUBNORMAL:
        if (role == ROLE_V)
            x *= subnormal_scale(fmt);
        break;
    case NSX_DIST_LARGE:
        if (role != ROLE_IDX)
            x *= large_scale(fmt, rc->p.n);
        break;
    default:
        break;
    }
    return nsx_round_to_format(x, fmt);
}

static void fill(double *x, size_t count, nsx_rng *r, const nsx_recipe *rc, enum role role)
{
    for (size_t t = 0; t < count; t++)
        x[t] = draw(r, rc, role);
}

/* ---- one batch's inputs ---------------------------------------------------------- */

/* The role of an input tensor in the value distributions. */
static enum role role_of(const nsx_tensor_view *v)
{
    return v->kind == NSX_T_Q ? ROLE_Q : v->kind == NSX_T_K ? ROLE_K : v->kind == NSX_T_V ? ROLE_V : ROLE_IDX;
}

/* A given selection row: k distinct candidates (all when fewer), ascending,
   -1 pads; with `invalid`, some entries become -1, out-of-range or future
   indices; with `empty`, every fifth row has no usable index. */
static void given_row(int32_t *row, nsx_rng *r, const nsx_recipe *rc, int i)
{
    const nsx_problem *p = &rc->p;
    int k = p->sel.k, C = p->causal ? i + 1 : p->L, count = 0;
    int *pool = malloc((size_t)C * sizeof *pool);
    for (int j = 0; j < C; j++)
        pool[j] = j;
    for (int x = 0; x < C && count < k; x++) { /* partial Fisher-Yates */
        int y = x + nsx_rng_below(r, C - x), t = pool[x];
        pool[x] = pool[y];
        pool[y] = t;
        row[count++] = pool[x];
    }
    free(pool);
    for (int x = 1; x < count; x++) /* ascending */
        for (int y = x; y > 0 && row[y - 1] > row[y]; y--) {
            int32_t t = row[y];
            row[y] = row[y - 1];
            row[y - 1] = t;
        }
    for (int x = count; x < k; x++)
        row[x] = -1;
    if (rc->empty && i % 5 == 3) {
        for (int x = 0; x < k; x++) /* pads, or only future keys */
            row[x] = p->causal && i + 1 + x < p->L && x % 2 ? i + 1 + x : -1;
    } else if (rc->invalid && k > 1) {
        static const int bad[] = {-1, -7, 0, 1}; /* 0, 1: L and L + 5 below */
        int pick = bad[nsx_rng_below(r, 4)];
        int32_t v = pick == 0 ? p->L : pick == 1 ? p->L + 5 : pick;
        if (p->causal && i + 1 < p->L && nsx_rng_below(r, 2))
            v = i + 1 + nsx_rng_below(r, p->L - i - 1); /* a future key */
        row[nsx_rng_below(r, k)] = v;
    }
}

/* Rows of x [rows][di] in blocks of blk elements, each times 2^e, e uniform
   in -12..10 (exact: a power of two; the inputs stay far inside binary32's
   and bf16's range and above their subnormals for the distributions drawn). */
static void scale_blocks(double *x, size_t rows, size_t di, size_t blk, nsx_rng *r)
{
    for (size_t row = 0; row < rows; row++)
        for (size_t l0 = 0; l0 < di; l0 += blk) {
            double f = ldexp(1.0, nsx_rng_below(r, 23) - 12);
            for (size_t l = l0; l < l0 + blk && l < di; l++)
                x[row * di + l] *= f;
        }
}

static void fill_batch(nsx_instance *b, const nsx_recipe *rc, nsx_rng *r, int batch)
{
    const nsx_problem *p = &rc->p;
    nsx_tensor_view t[NSX_MAX_INPUTS];
    int count = nsx_instance_inputs(b, t);
    for (int x = 0; x < count; x++) {
        size_t per = t[x].per_pos * p->L;
        fill(t[x].x + (size_t)batch * per, per, r, rc, role_of(&t[x]));
    }
    if (b->idx_k && rc->ties) /* duplicated indexer keys: exact ties */
        for (int j = 1; j < p->L; j += 2)
            memcpy(b->idx_k + ((size_t)batch * p->L + j) * p->sel.di,
                   b->idx_k + ((size_t)batch * p->L + j - 1) * p->sel.di, (size_t)p->sel.di * sizeof(double));
    if (b->idx_q && rc->iblocks) { /* blocks of qI and kI rows far apart in magnitude */
        const size_t rows = (size_t)p->L, di = (size_t)p->sel.di, Hi = (size_t)p->sel.Hi;
        scale_blocks(b->idx_q + (size_t)batch * rows * Hi * di, rows * Hi, di, (size_t)rc->iblocks, r);
        scale_blocks(b->idx_k + (size_t)batch * rows * di, rows, di, (size_t)rc->iblocks, r);
    }
    if (b->idx_s && rc->ties) /* equal given scores in pairs of keys */
        for (int i = 0; i < p->L; i++)
            for (int j = 1; j < p->L; j += 2) {
                double *row = b->idx_s + ((size_t)batch * p->L + i) * p->L;
                row[j] = row[j - 1];
            }
    if (b->sel)
        for (int i = 0; i < p->L; i++)
            given_row(b->sel + ((size_t)batch * p->L + i) * p->sel.k, r, rc, i);
}

/* Copies batch `from` to batch `to`, every tensor. */
static void copy_batch(nsx_instance *b, int from, int to)
{
    const nsx_problem *p = &b->p;
    nsx_tensor_view t[NSX_MAX_INPUTS];
    int count = nsx_instance_inputs(b, t);
    for (int x = 0; x < count; x++) {
        size_t per = t[x].per_pos * p->L;
        memcpy(t[x].x + (size_t)to * per, t[x].x + (size_t)from * per, per * sizeof(double));
    }
    if (b->sel) {
        size_t per = (size_t)p->L * p->sel.k;
        memcpy(b->sel + (size_t)to * per, b->sel + (size_t)from * per, per * sizeof(int32_t));
    }
}

/* ---- pairs ------------------------------------------------------------------------ */

/* Batch `to` = batch 0 up to position t, the future replaced everywhere. */
static void make_leak(nsx_instance *b, const nsx_recipe *rc, nsx_rng *r, int to, int future, int t)
{
    const nsx_problem *p = &rc->p;
    nsx_tensor_view tr[NSX_MAX_INPUTS];
    int count = nsx_instance_inputs(b, tr);
    double huge = format_max(p->input_format);
    copy_batch(b, 0, to);
    for (int x = 0; x < count; x++) {
        size_t per = tr[x].per_pos;
        double *base = tr[x].x + (size_t)to * per * p->L;
        const enum role role = role_of(&tr[x]);
        for (size_t e = (size_t)(t + 1) * per; e < per * p->L; e++) {
            /* the indexer's inputs stay finite: the selection of the shared
               rows must not depend on them anyway */
            int wild = role != ROLE_IDX;
            if (wild && future == NSX_FUTURE_HUGE)
                base[e] = nsx_rng_below(r, 2) ? huge : -huge;
            else if (wild && future == NSX_FUTURE_NAN)
                base[e] = NAN;
            else if (wild && future == NSX_FUTURE_INF)
                base[e] = nsx_rng_below(r, 2) ? INFINITY : -INFINITY;
            else
                base[e] = draw(r, rc, role);
        }
    }
    if (b->sel) /* the future rows' selections change too */
        for (int i = t + 1; i < p->L; i++)
            given_row(b->sel + ((size_t)to * p->L + i) * p->sel.k, r, rc, i);
}

/* Batch `to` = batch 0 with K_m, V_m changed at position j only. */
static void make_probe(nsx_instance *b, const nsx_recipe *rc, nsx_rng *r, int to, int m, int j)
{
    const nsx_problem *p = &rc->p;
    copy_batch(b, 0, to);
    for (int g = 0; g < p->Hkv; g++) {
        double *kx = b->k[m] + nsx_k_at(p, to, j, g, 0);
        double *vx = b->v[m] + nsx_v_at(p, to, j, g, 0);
        for (int l = 0; l < p->d; l++) {
            double old = kx[l];
            do
                kx[l] = nsx_round_to_format(3 * nsx_rng_normal(r), p->input_format);
            while (kx[l] == old);
        }
        for (int c = 0; c < p->dv; c++) {
            double old = vx[c];
            do
                vx[c] = nsx_round_to_format(3 * nsx_rng_normal(r), p->input_format);
            while (vx[c] == old);
        }
    }
}

/* Batch `to` = batch 0 with q redrawn at the positions before t (a
   gradient leak pair: do is redrawn there by nsx_build_dout). */
static void make_gradleak(nsx_instance *b, const nsx_recipe *rc, nsx_rng *r, int to, int t)
{
    const nsx_problem *p = &rc->p;
    copy_batch(b, 0, to);
    double *q = b->q + nsx_q_at(p, to, 0, 0, 0);
    for (size_t e = 0; e < (size_t)t * p->H * p->d; e++)
        q[e] = draw(r, rc, ROLE_Q);
}

/* Every pair's batch b takes do from batch a where the pair's rows are
   shared: a leak's rows 0..t, a probe's every row, a gradient leak's rows
   t..L-1 (SPEC 4.5). */
static void share_dout(nsx_instance *b)
{
    const nsx_problem *p = &b->p;
    const size_t row = (size_t)p->H * p->dv;
    for (int x = 0; x < b->npairs; x++) {
        const nsx_pair *q = &b->pairs[x];
        int lo = q->kind == NSX_PAIR_GRADLEAK ? q->t : 0;
        int hi = q->kind == NSX_PAIR_LEAK ? q->t : p->L - 1;
        memcpy(b->dout + ((size_t)q->b * p->L + lo) * row, b->dout + ((size_t)q->a * p->L + lo) * row,
               (size_t)(hi - lo + 1) * row * sizeof *b->dout);
    }
}

/* S(i) of batch 0: given, or computed by the reference on batch 0 alone. */
static int batch0_selection(const nsx_instance *b, int32_t *sel0, nsx_err *err)
{
    nsx_problem one = b->p;
    one.B = 1;
    if (b->sel) {
        memcpy(sel0, b->sel, (size_t)one.L * one.sel.k * sizeof *sel0);
        return 0;
    }
    return nsx_ref_select(&one, &b->in, sel0, NULL, NULL, NULL, err);
}

/* Probes for every dimension m and every mask that excludes a key there:
   the key just past each edge of the keys C_m(i) allow (the causal edge of
   a middle row, the window's past edge of the last row), an unselected
   candidate inside the last row's range. */
static int plan_probes(nsx_instance *b, const nsx_recipe *rc, nsx_rng *r, int *Btot, nsx_err *err)
{
    const nsx_problem *p = &rc->p;
    int32_t *sel0 = NULL;
    if (p->sel.source != NSX_SEL_NONE) {
        sel0 = malloc((size_t)p->L * p->sel.k * sizeof *sel0);
        if (!sel0)
            return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
        if (batch0_selection(b, sel0, err)) {
            free(sel0);
            return err->kind;
        }
    }
    const int last = p->L - 1, mid = p->L / 2 - 1;
    for (int m = 0; m < p->n; m++) {
        /* C_m's range [lo, hi] for a middle row and for the last row */
        int lo, hi;
        if (p->causal && p->L >= 2) {
            nsx_key_range(p->L, p->causal, p->window[m], mid, &lo, &hi);
            nsx_instance_add_pair(b, &(nsx_pair){NSX_PAIR_PROBE, 0, *Btot, 0, 0, mid, m + 1, hi + 1});
            make_probe(b, rc, r, (*Btot)++, m, hi + 1);
            nsx_instance_add_flag(b, "ProbeCausal");
        }
        nsx_key_range(p->L, p->causal, p->window[m], last, &lo, &hi);
        if (lo > 0) { /* the window's past edge */
            nsx_instance_add_pair(b, &(nsx_pair){NSX_PAIR_PROBE, 0, *Btot, 0, 0, last, m + 1, lo - 1});
            make_probe(b, rc, r, (*Btot)++, m, lo - 1);
            nsx_instance_add_flag(b, "ProbeWindow");
        }
        if (sel0 && (p->sel.dims >> m & 1u)) {
            const int32_t *row = sel0 + (size_t)last * p->sel.k;
            for (int j = hi; j >= lo; j--)
                if (!nsx_key_selected(row, p->sel.k, p->L, j)) {
                    nsx_instance_add_pair(b, &(nsx_pair){NSX_PAIR_PROBE, 0, *Btot, 0, 0, last, m + 1, j});
                    make_probe(b, rc, r, (*Btot)++, m, j);
                    nsx_instance_add_flag(b, "ProbeSelection");
                    break;
                }
        }
    }
    free(sel0);
    if (b->npairs)
        nsx_instance_add_flag(b, "MaskProbe");
    return 0;
}

int nsx_build(const nsx_recipe *rc, uint64_t seed, nsx_instance *b, nsx_err *err)
{
    const nsx_problem *p = &rc->p;
    nsx_rng r = {seed};
    memset(b, 0, sizeof *b);
    b->p = *p;
    int Btot = p->B;
    if (rc->nleaks && !p->causal)
        return nsx_err_set(err, NSX_E_INPUT, "recipe: leak pairs need a causal problem");
    nsx_problem room = *p; /* batches for every pair the recipe may add */
    room.B = p->B + rc->nleaks + (rc->probes ? 3 * p->n : 0) + (rc->gleak ? 1 : 0);
    if (nsx_instance_alloc(b, &room))
        return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    b->p.B = p->B;
    for (int batch = 0; batch < p->B; batch++)
        fill_batch(b, rc, &r, batch);
    for (int l = 0; l < rc->nleaks; l++) {
        nsx_pair leak = {NSX_PAIR_LEAK, 0, Btot, rc->leak[l].t, rc->leak[l].future, 0, 0, 0};
        nsx_instance_add_pair(b, &leak);
        make_leak(b, rc, &r, Btot++, rc->leak[l].future, rc->leak[l].t);
        nsx_instance_flag_pair(b, &leak);
    }
    if (rc->probes) {
        b->p.B = Btot;
        if (plan_probes(b, rc, &r, &Btot, err)) {
            nsx_instance_free(b);
            return err->kind;
        }
    }
    if (rc->gleak) {
        nsx_pair gl = {NSX_PAIR_GRADLEAK, 0, Btot, rc->gleak, 0, 0, 0, 0};
        nsx_instance_add_pair(b, &gl);
        make_gradleak(b, rc, &r, Btot++, rc->gleak);
        nsx_instance_flag_pair(b, &gl);
    }
    b->p.B = Btot;
    if (rc->bwd && nsx_build_dout(b, seed, err)) {
        nsx_instance_free(b);
        return err->kind;
    }
    if (rc->bwd)
        share_dout(b);
    return 0;
}

/* ---- expected values and flags --------------------------------------------------- */

static void derive_flags(nsx_instance *b, const nsx_recipe *rc)
{
    const nsx_problem *p = &rc->p;
    static const char *const formats[] = {"InputF64", "InputF32", "InputF16", "InputBF16"};
    static const char *const reduces[] = {"ReduceProduct", "ReduceSum", "ReduceMean"};
    static const char *const sources[] = {NULL, "GivenIndices", NULL, "GivenScores"};
    static const char *const acts[] = {"IndexerRelu", "IndexerSoftmax", "IndexerIdentity"};
    static const char *const dists[] = {NULL, NULL, "HeavyTailed", "NearOneHot", "EqualScores",
                                        "ZeroValues", "Subnormal", "LargeMagnitude"};
    int windows = 0;
    nsx_instance_add_flag(b, formats[p->input_format]);
    nsx_instance_add_flag(b, reduces[p->reduce]);
    if (dists[rc->dist])
        nsx_instance_add_flag(b, dists[rc->dist]);
    if (p->n >= 5)
        nsx_instance_add_flag(b, "HighOrder");
    for (int m = 0; m < p->n; m++) {
        windows |= p->window[m] > 0;
        if (p->window[m] == 1)
            nsx_instance_add_flag(b, "WindowOne");
        if (p->window[m] >= p->L)
            nsx_instance_add_flag(b, "WindowWide");
        if (p->k_bias[m] != 0 || p->v_bias[m] != 0)
            nsx_instance_add_flag(b, "Biases");
    }
    if (windows)
        nsx_instance_add_flag(b, "Windows");
    if (p->n == 2 && p->window[0] > p->window[1] && p->window[1] > 0)
        nsx_instance_add_flag(b, "PaperWindows");
    if (p->n == 2 && p->window[1] > p->window[0] && p->window[0] > 0)
        nsx_instance_add_flag(b, "ReversedWindows");
    if (p->n >= 2 && p->k_bias[1] == 1.0 / p->d && p->v_bias[1] == 1.0)
        nsx_instance_add_flag(b, "MetaBiases");
    if (!windows && p->sel.source == NSX_SEL_NONE && p->causal && !p->distinct)
        nsx_instance_add_flag(b, "Dense");
    if (!p->causal)
        nsx_instance_add_flag(b, "CausalOff");
    if (p->distinct)
        nsx_instance_add_flag(b, "Distinct");
    if (p->H > p->Hkv)
        nsx_instance_add_flag(b, "GQA");
    if (!p->score_scale_rsqrt_d)
        nsx_instance_add_flag(b, "ScoreScale");
    if (p->out_scale != 1)
        nsx_instance_add_flag(b, "OutScale");
    if (p->L % 8 || p->d % 8 || p->dv % 8)
        nsx_instance_add_flag(b, "OddSizes");
    if (p->sel.source == NSX_SEL_INDEXER)
        nsx_instance_add_flag(b, acts[p->sel.act]);
    else if (p->sel.source != NSX_SEL_NONE)
        nsx_instance_add_flag(b, sources[p->sel.source]);
    if (p->sel.source != NSX_SEL_NONE && p->sel.k >= p->L)
        nsx_instance_add_flag(b, "TopKAll");
    if (rc->ties)
        nsx_instance_add_flag(b, "TieAtK");
    if (rc->invalid)
        nsx_instance_add_flag(b, "InvalidIndices");
    if (rc->bwd)
        nsx_instance_add_flag(b, "Backward");
    for (size_t x = 0; x < nsx_lse_size(&b->p); x++)
        if (isinf(b->lse[x]) && b->lse[x] < 0) {
            nsx_instance_add_flag(b, "EmptySlice");
            break;
        }
}

int nsx_build_expect(nsx_instance *b, const nsx_recipe *rc, const nsx_ref_opts *opts,
                     nsx_ref_stats *stats, nsx_err *err)
{
    nsx_ref_opts o = opts ? *opts : (nsx_ref_opts){0};
    /* unjudged rows are not computed: their exact values may be undecidable */
    unsigned char *skip = malloc((size_t)b->p.B * b->p.L);
    if (!skip)
        return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    nsx_pairs_unjudged(&b->p, b->pairs, b->npairs, skip);
    if (opts && opts->skip) /* and the rows the caller fills itself (fuzz/judge.c) */
        for (size_t x = 0; x < (size_t)b->p.B * b->p.L; x++)
            skip[x] |= opts->skip[x];
    o.skip = skip;
    int code = nsx_ref_forward(&b->p, &b->in, &b->out, &o, stats, err);
    if (!code && rc->bwd) /* a gradient case's leak futures are random: skip marks no row */
        code = nsx_build_grads(b, &o, stats, err);
    free(skip);
    if (code)
        return code;
    derive_flags(b, rc);
    return 0;
}

nsx_case_info nsx_build_info(const nsx_instance *b, const char *id, const char *suite,
                             const char *description)
{
    nsx_case_info info = {0};
    info.id = (char *)id;
    info.suite = (char *)suite;
    info.description = (char *)description;
    info.flags = (char **)b->flags;
    info.nflags = b->nflags;
    info.pairs = (nsx_pair *)b->pairs;
    info.npairs = b->npairs;
    return info;
}
