/* Building a case from a recipe (vectors/build.h). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/fpformat.h"
#include "nsimplex/rng.h"
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

/* ---- allocation ---------------------------------------------------------------- */

static int alloc_all(nsx_built *b, int Bmax)
{
    nsx_problem q = b->p;
    q.B = Bmax;
    size_t BL = (size_t)Bmax * q.L;
    int ok = (b->q = calloc(nsx_q_size(&q), sizeof(double))) != NULL;
    for (int m = 0; m < q.n; m++) {
        ok &= (b->k[m] = calloc(nsx_k_size(&q), sizeof(double))) != NULL;
        ok &= (b->v[m] = calloc(nsx_v_size(&q), sizeof(double))) != NULL;
        b->in.k[m] = b->k[m];
        b->in.v[m] = b->v[m];
    }
    b->in.q = b->q;
    ok &= (b->o = calloc(nsx_o_size(&q), sizeof(double))) != NULL;
    ok &= (b->lse = calloc(nsx_lse_size(&q), sizeof(double))) != NULL;
    b->out.o = b->o;
    b->out.lse = b->lse;
    if (q.sel.source == NSX_SEL_INDICES) {
        ok &= (b->sel = calloc(nsx_sel_size(&q), sizeof(int32_t))) != NULL;
        b->in.sel = b->sel;
    } else if (q.sel.source != NSX_SEL_NONE) {
        ok &= (b->sel_out = calloc(nsx_sel_size(&q), sizeof(int32_t))) != NULL;
        b->out.sel = b->sel_out;
    }
    if (q.sel.source == NSX_SEL_INDEXER) {
        ok &= (b->idx_q = calloc(BL * q.sel.Hi * q.sel.di, sizeof(double))) != NULL;
        ok &= (b->idx_k = calloc(BL * q.sel.di, sizeof(double))) != NULL;
        ok &= (b->idx_w = calloc(BL * q.sel.Hi, sizeof(double))) != NULL;
        ok &= (b->sel_scores = calloc(BL * q.L, sizeof(double))) != NULL;
        b->in.idx_q = b->idx_q;
        b->in.idx_k = b->idx_k;
        b->in.idx_w = b->idx_w;
        b->out.sel_scores = b->sel_scores;
    }
    if (q.sel.source == NSX_SEL_SCORES) {
        ok &= (b->idx_s = calloc(BL * q.L, sizeof(double))) != NULL;
        b->in.idx_s = b->idx_s;
    }
    return ok ? 0 : -1;
}

void nsx_built_free(nsx_built *b)
{
    nsx_build_free_bwd(b);
    free(b->q);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(b->k[m]);
        free(b->v[m]);
    }
    free(b->idx_q), free(b->idx_k), free(b->idx_w), free(b->idx_s);
    free(b->sel), free(b->sel_out);
    free(b->o), free(b->lse), free(b->sel_scores);
    memset(b, 0, sizeof *b);
}

/* ---- one batch's inputs ---------------------------------------------------------- */

/* Element counts per batch and position of each tensor, for copies. */
typedef struct {
    double **x;
    size_t per_pos;   /* values per (batch, position) */
    enum role role;
} tensor_ref;

static int tensors_of(nsx_built *b, tensor_ref *t)
{
    const nsx_problem *p = &b->p;
    int count = 0;
    t[count++] = (tensor_ref){&b->q, (size_t)p->H * p->d, ROLE_Q};
    for (int m = 0; m < p->n; m++) {
        t[count++] = (tensor_ref){&b->k[m], (size_t)p->Hkv * p->d, ROLE_K};
        t[count++] = (tensor_ref){&b->v[m], (size_t)p->Hkv * p->dv, ROLE_V};
    }
    if (b->idx_q) {
        t[count++] = (tensor_ref){&b->idx_q, (size_t)p->sel.Hi * p->sel.di, ROLE_IDX};
        t[count++] = (tensor_ref){&b->idx_k, (size_t)p->sel.di, ROLE_IDX};
        t[count++] = (tensor_ref){&b->idx_w, (size_t)p->sel.Hi, ROLE_IDX};
    }
    if (b->idx_s)
        t[count++] = (tensor_ref){&b->idx_s, (size_t)p->L, ROLE_IDX};
    return count;
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

static void fill_batch(nsx_built *b, const nsx_recipe *rc, nsx_rng *r, int batch)
{
    const nsx_problem *p = &rc->p;
    tensor_ref t[2 * NSX_MAX_ORDER + 4];
    int count = tensors_of(b, t);
    for (int x = 0; x < count; x++) {
        size_t per = t[x].per_pos * p->L;
        fill(*t[x].x + (size_t)batch * per, per, r, rc, t[x].role);
    }
    if (b->idx_k && rc->ties) /* duplicated indexer keys: exact ties */
        for (int j = 1; j < p->L; j += 2)
            memcpy(b->idx_k + ((size_t)batch * p->L + j) * p->sel.di,
                   b->idx_k + ((size_t)batch * p->L + j - 1) * p->sel.di, (size_t)p->sel.di * sizeof(double));
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
static void copy_batch(nsx_built *b, int from, int to)
{
    const nsx_problem *p = &b->p;
    tensor_ref t[2 * NSX_MAX_ORDER + 4];
    int count = tensors_of(b, t);
    for (int x = 0; x < count; x++) {
        size_t per = t[x].per_pos * p->L;
        memcpy(*t[x].x + (size_t)to * per, *t[x].x + (size_t)from * per, per * sizeof(double));
    }
    if (b->sel) {
        size_t per = (size_t)p->L * p->sel.k;
        memcpy(b->sel + (size_t)to * per, b->sel + (size_t)from * per, per * sizeof(int32_t));
    }
}

/* ---- pairs ------------------------------------------------------------------------ */

static int add_flag(nsx_built *b, const char *flag)
{
    for (int f = 0; f < b->nflags; f++)
        if (strcmp(b->flags[f], flag) == 0)
            return 0;
    if (b->nflags < NSX_BUILD_MAX_FLAGS)
        b->flags[b->nflags++] = flag;
    return 0;
}

/* Batch `to` = batch 0 up to position t, the future replaced everywhere. */
static void make_leak(nsx_built *b, const nsx_recipe *rc, nsx_rng *r, int to, int future, int t)
{
    const nsx_problem *p = &rc->p;
    tensor_ref tr[2 * NSX_MAX_ORDER + 4];
    int count = tensors_of(b, tr);
    double huge = format_max(p->input_format);
    copy_batch(b, 0, to);
    for (int x = 0; x < count; x++) {
        size_t per = tr[x].per_pos;
        double *base = *tr[x].x + (size_t)to * per * p->L;
        for (size_t e = (size_t)(t + 1) * per; e < per * p->L; e++) {
            /* the indexer's inputs stay finite: the selection of the shared
               rows must not depend on them anyway */
            int wild = tr[x].role != ROLE_IDX;
            if (wild && future == NSX_FUTURE_HUGE)
                base[e] = nsx_rng_below(r, 2) ? huge : -huge;
            else if (wild && future == NSX_FUTURE_NAN)
                base[e] = NAN;
            else if (wild && future == NSX_FUTURE_INF)
                base[e] = nsx_rng_below(r, 2) ? INFINITY : -INFINITY;
            else
                base[e] = draw(r, rc, tr[x].role);
        }
    }
    if (b->sel) /* the future rows' selections change too */
        for (int i = t + 1; i < p->L; i++)
            given_row(b->sel + ((size_t)to * p->L + i) * p->sel.k, r, rc, i);
}

/* Batch `to` = batch 0 with K_m, V_m changed at position j only. */
static void make_probe(nsx_built *b, const nsx_recipe *rc, nsx_rng *r, int to, int m, int j)
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

/* S(i) of batch 0: given, or computed by the reference on batch 0 alone. */
static int batch0_selection(const nsx_built *b, int32_t *sel0, nsx_err *err)
{
    nsx_problem one = b->p;
    one.B = 1;
    if (b->sel) {
        memcpy(sel0, b->sel, (size_t)one.L * one.sel.k * sizeof *sel0);
        return 0;
    }
    return nsx_ref_select(&one, &b->in, sel0, NULL, NULL, NULL, err);
}

static int in_row(const int32_t *row, int k, int j)
{
    for (int x = 0; x < k; x++)
        if (row[x] == j)
            return 1;
    return 0;
}

static int add_pair(nsx_built *b, nsx_pair pair)
{
    if (b->npairs == NSX_BUILD_MAX_PAIRS)
        return -1;
    b->pairs[b->npairs++] = pair;
    return 0;
}

/* Probes for every dimension m and every mask that excludes a key there:
   the future key just after a query, the key just outside the window on
   the past side, an unselected candidate inside the window. */
static int plan_probes(nsx_built *b, const nsx_recipe *rc, nsx_rng *r, int *Btot, nsx_err *err)
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
    for (int m = 0; m < p->n; m++) {
        int w = p->window[m], last = p->L - 1;
        if (p->causal && p->L >= 2) {
            int i = p->L / 2 - 1;
            add_pair(b, (nsx_pair){NSX_PAIR_PROBE, 0, *Btot, 0, 0, i, m + 1, i + 1});
            make_probe(b, rc, r, (*Btot)++, m, i + 1);
            add_flag(b, "ProbeCausal");
        }
        if (w > 0 && last - w >= 0) {
            add_pair(b, (nsx_pair){NSX_PAIR_PROBE, 0, *Btot, 0, 0, last, m + 1, last - w});
            make_probe(b, rc, r, (*Btot)++, m, last - w);
            add_flag(b, "ProbeWindow");
        }
        if (sel0 && (p->sel.dims >> m & 1u)) {
            const int32_t *row = sel0 + (size_t)last * p->sel.k;
            int lo = w > 0 ? last - w + 1 : 0, hi = p->causal ? last : p->L - 1;
            for (int j = hi; j >= (lo < 0 ? 0 : lo); j--)
                if (!in_row(row, p->sel.k, j)) {
                    add_pair(b, (nsx_pair){NSX_PAIR_PROBE, 0, *Btot, 0, 0, last, m + 1, j});
                    make_probe(b, rc, r, (*Btot)++, m, j);
                    add_flag(b, "ProbeSelection");
                    break;
                }
        }
    }
    free(sel0);
    if (b->npairs)
        add_flag(b, "MaskProbe");
    return 0;
}

int nsx_build(const nsx_recipe *rc, uint64_t seed, nsx_built *b, nsx_err *err)
{
    const nsx_problem *p = &rc->p;
    nsx_rng r = {seed};
    memset(b, 0, sizeof *b);
    b->p = *p;
    int Btot = p->B, Bmax = p->B + rc->nleaks + (rc->probes ? 3 * p->n : 0);
    if (rc->nleaks && !p->causal)
        return nsx_err_set(err, NSX_E_INPUT, "recipe: leak pairs need a causal problem");
    if (alloc_all(b, Bmax)) {
        nsx_built_free(b);
        return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    }
    for (int batch = 0; batch < p->B; batch++)
        fill_batch(b, rc, &r, batch);
    static const char *const future_flags[] = {"FutureRandom", "FutureHuge", "FutureNaN", "FutureInf"};
    for (int l = 0; l < rc->nleaks; l++) {
        add_pair(b, (nsx_pair){NSX_PAIR_LEAK, 0, Btot, rc->leak[l].t, rc->leak[l].future, 0, 0, 0});
        make_leak(b, rc, &r, Btot++, rc->leak[l].future, rc->leak[l].t);
        add_flag(b, "LeakPair");
        add_flag(b, future_flags[rc->leak[l].future]);
    }
    if (rc->probes) {
        b->p.B = Btot;
        if (plan_probes(b, rc, &r, &Btot, err)) {
            nsx_built_free(b);
            return err->kind;
        }
    }
    b->p.B = Btot;
    if (rc->bwd && nsx_build_dout(b, seed, err)) {
        nsx_built_free(b);
        return err->kind;
    }
    return 0;
}

/* ---- expected values and flags --------------------------------------------------- */

static void derive_flags(nsx_built *b, const nsx_recipe *rc)
{
    const nsx_problem *p = &rc->p;
    static const char *const formats[] = {"InputF64", "InputF32", "InputF16", "InputBF16"};
    static const char *const reduces[] = {"ReduceProduct", "ReduceSum", "ReduceMean"};
    static const char *const sources[] = {NULL, "GivenIndices", NULL, "GivenScores"};
    static const char *const acts[] = {"IndexerRelu", "IndexerSoftmax", "IndexerIdentity"};
    static const char *const dists[] = {NULL, NULL, "HeavyTailed", "NearOneHot", "EqualScores",
                                        "ZeroValues", "Subnormal", "LargeMagnitude"};
    int windows = 0;
    add_flag(b, formats[p->input_format]);
    add_flag(b, reduces[p->reduce]);
    if (dists[rc->dist])
        add_flag(b, dists[rc->dist]);
    if (p->n >= 5)
        add_flag(b, "HighOrder");
    for (int m = 0; m < p->n; m++) {
        windows |= p->window[m] > 0;
        if (p->window[m] == 1)
            add_flag(b, "WindowOne");
        if (p->window[m] >= p->L)
            add_flag(b, "WindowWide");
        if (p->k_bias[m] != 0 || p->v_bias[m] != 0)
            add_flag(b, "Biases");
    }
    if (windows)
        add_flag(b, "Windows");
    if (p->n == 2 && p->window[0] > p->window[1] && p->window[1] > 0)
        add_flag(b, "PaperWindows");
    if (p->n == 2 && p->window[1] > p->window[0] && p->window[0] > 0)
        add_flag(b, "ReversedWindows");
    if (p->n >= 2 && p->k_bias[1] == 1.0 / p->d && p->v_bias[1] == 1.0)
        add_flag(b, "MetaBiases");
    if (!windows && p->sel.source == NSX_SEL_NONE && p->causal && !p->distinct)
        add_flag(b, "Dense");
    if (!p->causal)
        add_flag(b, "CausalOff");
    if (p->distinct)
        add_flag(b, "Distinct");
    if (p->H > p->Hkv)
        add_flag(b, "GQA");
    if (!p->score_scale_rsqrt_d)
        add_flag(b, "ScoreScale");
    if (p->out_scale != 1)
        add_flag(b, "OutScale");
    if (p->L % 8 || p->d % 8 || p->dv % 8)
        add_flag(b, "OddSizes");
    if (p->sel.source == NSX_SEL_INDEXER)
        add_flag(b, acts[p->sel.act]);
    else if (p->sel.source != NSX_SEL_NONE)
        add_flag(b, sources[p->sel.source]);
    if (p->sel.source != NSX_SEL_NONE && p->sel.k >= p->L)
        add_flag(b, "TopKAll");
    if (rc->ties)
        add_flag(b, "TieAtK");
    if (rc->invalid)
        add_flag(b, "InvalidIndices");
    if (rc->bwd)
        add_flag(b, "Backward");
    for (size_t x = 0; x < nsx_lse_size(&b->p); x++)
        if (isinf(b->lse[x]) && b->lse[x] < 0) {
            add_flag(b, "EmptySlice");
            break;
        }
}

int nsx_build_expect(nsx_built *b, const nsx_recipe *rc, const nsx_ref_opts *opts,
                     nsx_ref_stats *stats, nsx_err *err)
{
    nsx_ref_opts o = opts ? *opts : (nsx_ref_opts){0};
    /* unjudged rows are not computed: their exact values may be undecidable */
    unsigned char *skip = malloc((size_t)b->p.B * b->p.L);
    if (!skip)
        return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    nsx_pairs_unjudged(&b->p, b->pairs, b->npairs, skip);
    o.skip = skip;
    int code = nsx_ref_forward(&b->p, &b->in, &b->out, &o, stats, err);
    if (!code && rc->bwd) /* gradient cases have no pairs: skip marks no row */
        code = nsx_build_grads(b, &o, err);
    free(skip);
    if (code)
        return code;
    derive_flags(b, rc);
    return 0;
}

nsx_case_info nsx_build_info(const nsx_built *b, const char *id, const char *suite,
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
