/*
 * The per-element error bound (docs/ORACLE.md section 3): equations B1-B14
 * for one query row, one function per section of the document, in its
 * order: scores_B1_B2 (3.2), weights_B3_B5 (3.3, 3.4), values_B6_B11 and
 * identity_B7 (3.5, 3.6), output_B12_B13 (3.6's B8, 3.7), lse_B14 (3.8);
 * the applicability tests of 3.1 where their quantities arise.  The
 * selection's tolerance (section 5) is oracle/seltol.c.
 *
 * Notation (ORACLE.md 3.0): <k>_u = (1+u)^k - 1 (Higham's gamma_k without
 * its denominator; <k>_u <= gamma_k); u_f and lambda_f are the unit
 * roundoff and the smallest normal of format f.  A quantity named *_up is an
 * upper bound of the exact quantity, computed in binary64 and covered by the
 * final margin (ORACLE.md 3.9).
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "nsimplex/slice.h"
#include "oracle/bound.h"
#include "oracle/bound_model.h"
#include "oracle/bound_prob.h"

/* C's fmax and fmin (the other argument when one is a NaN; on a tie, signed
   zeros included, the second, as glibc's x86-64 fmax), inlined: the library
   calls from the per-tuple loops were about 5% of the fuzzer's time. */
static inline double max2(double a, double b)
{
    return a > b || b != b ? a : b;
}

static inline double min2(double a, double b)
{
    return a < b || b != b ? a : b;
}

int nsx_format_fits(int a, int b)
{
    assert((a == NSX_MODEL_TF32 || (a >= NSX_FORMAT_F64 && a <= NSX_FORMAT_BF16)) &&
           (b == NSX_MODEL_TF32 || (b >= NSX_FORMAT_F64 && b <= NSX_FORMAT_BF16)));
    nsx_fmt fa = nsx_fmt_of(a), fb = nsx_fmt_of(b);
    return fa.p <= fb.p && fa.emax <= fb.emax && fa.emin - fa.p >= fb.emin - fb.p;
}

/* ---- the model's constants (ORACLE.md 3.0, 3.1) ----------------------- */

void nsx_bound_consts(const nsx_bound_ctx *ctx, consts *k)
{
    const nsx_model *m = &ctx->model;
    k->fi = nsx_fmt_of(m->in);
    k->fo = nsx_fmt_of(m->op);
    k->fa = nsx_fmt_of(m->acc);
    k->ft = nsx_fmt_of(m->inter);
    k->fw = nsx_fmt_of(m->w);
    k->fout = nsx_fmt_of(m->out);
    k->flse = nsx_fmt_of(m->lseout);
    /* A1: the vector's values converted to `in`.  Data of no more precision
       than `in` (bf16 data under f16 or tf32) convert exactly within in's
       normal range, so only their range can make a conversion round: an
       element below in's normal minimum errs absolutely (lami), one above
       its range is refused (3.1) */
    const nsx_fmt fd = nsx_fmt_of(ctx->p->input_format);
    int rounds = !nsx_format_fits(ctx->p->input_format, m->in);
    k->ui = rounds && fd.p > k->fi.p ? k->fi.u : 0.0;
    /* A1: a conversion's absolute error is below lambda (flush to zero), or
       below lambda u when it rounds among the subnormals (sub=keep, ORACLE.md 9.1 R4) */
    const int keep = m->sub_keep;
    k->lami = rounds ? k->fi.lambda * (keep ? k->fi.u : 1.0) : 0.0;
    k->ux = max2(k->fo.u, k->ft.u);
    k->lamx = max2(k->fo.lambda * (keep ? k->fo.u : 1.0), k->ft.lambda * (keep ? k->ft.u : 1.0));
    k->lamw = k->fw.lambda * (keep ? k->fw.u : 1.0);
    k->lam_all = max2(max2(k->lami, k->lamx), k->fa.lambda);
    k->nmin_uf = max2(rounds ? k->fi.lambda : 0.0, max2(k->fo.lambda, k->ft.lambda));
    k->conv = !nsx_format_fits(m->in, m->op);
    k->ua = 2 * k->fa.u;
    k->eps_exp = 4 * k->fa.u;
}

int nsx_bound_not_applicable(const nsx_bound_ctx *ctx, nsx_err *err, int b, int h, int i, const char *why,
                             double value, double limit)
{
    char head[32] = "";
    if (h >= 0)
        snprintf(head, sizeof head, ", head %d", h);
    return nsx_err_set(err, NSX_E_NOT_APPLICABLE, "not applicable under model %s: batch %d%s, query %d: %s (%.6g, limit %.6g)",
                       ctx->model_text, b, head, i, why, value, limit);
}

/* ---- B1, B2: the scores --------------------------------------------- */

/*
 * 1 when 1/sqrt(d) is a binary64, which holds exactly when d is a power of 4.
 * If 1/sqrt(d) = m 2^e (m an odd integer), sqrt(d) is rational, so it is an
 * integer k (an integer's square root is an integer or irrational), and
 * k m = 2^-e makes k a divisor of a power of 2: k = 2^j, d = 4^j.
 * Conversely 1/sqrt(4^j) = 2^-j, a binary64 for every d <= NSX_MAX_DIM.
 * A test in binary64 such as RN(s)^2 d == 1 cannot decide it: the roundings
 * of the products hide the error of RN(s) for d = 3, 12, 48, 96, 192, ...
 */
static int rsqrt_is_binary64(int d)
{
    unsigned u = (unsigned)d;
    return d > 0 && (u & (u - 1)) == 0 && (u & 0x55555555u) != 0;
}

int nsx_bound_scale_inexact(const nsx_problem *p)
{
    /* the scale: exact real 1/sqrt(d) or binary64; one binary64 rounding
       when 1/sqrt(d) is not a binary64 */
    return p->score_scale_rsqrt_d && !rsqrt_is_binary64(p->d);
}

typedef struct {
    double gT;      /* Gamma_T of B2 */
    double gT_lin;  /* its linear part: the sum of its counts times their u (9.3) */
    double cT;      /* roundings along one term (Lemma 1's C) */
    double s;       /* the binary64 scale and |s| */
    double e64;     /* <2n + d + 2>_u64: binary64 recomputation of T (3.9) */
    double cX;      /* the roundings along one term in in, op or int (ORACLE.md 9.1) */
    double lam_uf;  /* the largest lambda of in (when rounding), op, int: charged to a
                       term only when one of its values may fall below it (ORACLE.md 9.1) */
    /* bound=prob (9.3): the linear counts of the global, key and per-tuple sites */
    double gTup, npk, fk[NSX_MAX_ORDER]; /* gTup: per |s| M_J, the root of the per-tuple
                                             sites' sum of squares (9.8 T2) */
    /* the global sites g_G = gQ + gS of 9.3, split by 9.9: */
    double gQ;      /* (T4) the sites per component l (Q's rounding and conversion, the
                       product Q s), charged in quadrature over l */
    double gS;      /* (T5) the scale's sites (s as binary64, its conversion to op),
                       charged by the signed sum G */
} score_consts;

static void score_consts_of(const nsx_bound_ctx *ctx, const consts *k, score_consts *sc)
{
    const nsx_problem *p = ctx->p;
    int nkb = 0;
    for (int m = 0; m < p->n; m++)
        nkb += p->k_bias[m] != 0;
    sc->s = nsx_problem_score_scale(p);
    double s_inexact = nsx_bound_scale_inexact(p);
    /* a power of two within op's and int's normal range: its conversion and
       the product that brings it in are exact (an underflow of that product
       is charged by the absolute term, ORACLE.md 9.1) */
    int e2;
    const double sa = fabs(sc->s);
    /* not for a base-2 kernel (lseform log2 or mixed, ORACLE.md 3.8.1): its
       scale is s log2 e, never a power of two (FBGEMM's Triton forward
       rounds it to bf16 and multiplies q by it in bf16) */
    const int base2 = ctx->model.lse_form != NSX_LSE_LN;
    const int s_pow2 = !base2 && sa > 0 && frexp(sa, &e2) == 0.5 && sa >= max2(k->fo.lambda, k->ft.lambda) && sa <= min2(k->fo.max, k->ft.max);
    const double n_ux = s_pow2 ? p->n - 1.0 : p->n + 1.0;
    gam g = {0};
    gam_add(&g, p->n + 1, k->ui);                 /* B1: inputs rounded to `in` */
    gam_add(&g, 2.0 * nkb, k->ua);                /* B1: kb to acc, K + kb in acc */
    gam_add(&g, nkb + (double)k->conv * (p->n + 1 - nkb), k->fo.u); /* B1: to op */
    gam_add(&g, s_inexact, U64);                  /* s as binary64 */
    gam_add(&g, n_ux, k->ux);                     /* B2: s to op, n operand products */
    gam_add(&g, reduction(p->d), k->ua);          /* B2: the dot product over l */
    gam_add(&g, 1.0, k->ft.u);                    /* B2: score rounded to int */
    sc->gT = gam_val(&g);
    sc->gT_lin = (p->n + 1) * k->ui + 2.0 * nkb * k->ua + (nkb + (double)k->conv * (p->n + 1 - nkb)) * k->fo.u +
                 s_inexact * U64 + n_ux * k->ux + reduction(p->d) * k->ua + k->ft.u;
    sc->lam_uf = max2(k->lami, k->lamx);
    /* 9.3: the sites shared by every tuple (Q's rounding and conversion,
       the scale, the product Q s), by the tuples of one key j_m (K_m's
       rounding, bias and conversion; the products with keys, all npk of
       them charged to one left-operand factor), and by one tuple only (the
       dot product in acc, RN under 9.2: d products and d - 1 additions; the
       rounding of the score to int) */
    const double u_acc = k->fa.u;
    sc->gQ = k->ui + k->conv * k->fo.u + (s_pow2 ? 0.0 : k->ux);
    sc->gS = s_inexact * U64 + (s_pow2 ? 0.0 : k->ux);
    sc->npk = p->n == 1 ? 0.0 : s_pow2 ? p->n - 1.0 : p->n;
    for (int m = 0; m < p->n; m++)
        sc->fk[m] = k->ui + (p->k_bias[m] != 0 ? 2 * u_acc + k->fo.u : k->conv * k->fo.u);
    /* 9.8 (T2): the per-tuple sites are distinct roundings, each of its own
       magnitude: the d products (of magnitudes summing to |s| M_J), the
       d - 1 partial sums (each at most |s| M_J), a product of the score
       with a (folded) scale in acc, and the score's rounding to int; their
       squares sum to at most ((d + 1) u_acc^2 + (u_int (1 + Gamma_T))^2)
       (|s| M_J)^2, whose square root per |s| M_J is gTup */
    sc->gTup = sqrt((p->d + 1.0) * u_acc * u_acc + k->ft.u * (1 + sc->gT) * k->ft.u * (1 + sc->gT)) * (1 + 4 * U64);
    sc->cT = 5.0 * p->n + p->d + 8;
    sc->cX = 3.0 * p->n + 4; /* of those, in in, op, int: n + 1 inputs, n + 1 conversions, s and n products, int */
    sc->e64 = gamma_of(2.0 * p->n + p->d + 2, U64);
}

/* ---- setup ----------------------------------------------------------- */

/* The slots of ctx->cache per tuple: after the first pass the score, after
   the second the weight. */
enum { T_HAT, T_ERR, T_B, T_SM, T_SM2, T_CJ, T_WLO, T_A, T_RHI, T_SLOTS };
enum { T_RLO = T_B }; /* b_J is not read after the second pass; T_J and e_T are (9.9) */

/* How a row's N tuples are summed (ORACLE.md 9.8, the model key `tile`):
   with tile=none (A2, A4) any order and tree, a rescaling per tuple; with
   tile=B, at most K = min(N, ceil(N / B) + 1) tiles of at most B tuples
   (a window's first tile and the causal edge's last may be partial), each
   summed by any tree of r(min(B, N)) faithful operations, the K tile
   results added to the accumulator one after another (the first to an
   exact zero), each after at most one rescaling: K - 1 additions and
   K - 1 rescalings; tile=row: K = 1. */
typedef struct tiling {
    int sep;       /* 1: each tile summed on its own (tile=B or row; not B/acc) */
    double K;      /* tiles (N for none) */
    double B;      /* tuples in the largest tile (N for none) */
    double resc;   /* rescalings R (A4): N - 1, or K - 1 */
    double ops;    /* the faithful operations a term of the sum is charged (B7's Gamma_D) */
} tiling;

static tiling tiling_of(const nsx_model *m, double N)
{
    tiling t;
    t.sep = m->tile != 0 && !m->tile_acc;
    if (m->tile == 0) {
        t.K = t.B = N;
        t.resc = N - 1;
        t.ops = reduction(N) + (N - 1);
        return t;
    }
    t.B = m->tile == NSX_TILE_ROW ? N : min2((double)m->tile, N);
    t.K = m->tile == NSX_TILE_ROW ? 1.0 : min2(N, ceil(N / t.B) + 1);
    t.resc = t.K - 1;
    /* a tiled sum is one of the trees A2 allows, with at most N - 1
       rescalings: the smaller count holds (for tiny rows, r(1) = 2
       overcounts a tile of one tuple) */
    t.ops = min2(reduction(t.B) + 2 * (t.K - 1), reduction(N) + (N - 1));
    /* tile=B/acc: the products go straight into the accumulator, a
       reduction of all N terms (A2), with K - 1 rescalings */
    if (!t.sep)
        t.ops = reduction(N) + (t.K - 1);
    return t;
}

/* The accumulation bound of B7, <r(N) + N + 1>_u~ (ORACLE.md 9.8 with
   tiles), and the longest chain of binary64 operations of the bound itself
   (3.9), for N tuples. */
static double gamma_sum(const nsx_model *m, const consts *k, double N)
{
    return gamma_of(tiling_of(m, N).ops + 2.0, k->ua);
}

static double chain_len(const nsx_problem *p, double N)
{
    return 4.0 * N + 4.0 * p->d + 16.0 * p->n + 256;
}

/* The largest N with gamma_sum(N) <= 1/8, and the largest with
   chain_len(N) u64 <= 2^-12 (3.1): both grow with N, so a row is refused
   as soon as its slice passes one of them, before any work that grows
   with the tuple count beyond it. */
static void tuple_limits(const nsx_bound_ctx *ctx, const consts *k, size_t *acc_lim, size_t *chain_lim)
{
    size_t lo = 0, hi = (size_t)1 << 42; /* chain_len(2^42) u64 > 2^-12 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (gamma_sum(&ctx->model, k, (double)mid) <= 0.125)
            lo = mid;
        else
            hi = mid - 1;
    }
    *acc_lim = lo;
    lo = 0, hi = (size_t)1 << 42;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (chain_len(ctx->p, (double)mid) * U64 <= 0x1p-12)
            lo = mid;
        else
            hi = mid - 1;
    }
    *chain_lim = lo;
}

int nsx_bound_init(nsx_bound_ctx *ctx, const nsx_problem *p, const nsx_inputs *in,
                   const nsx_model *m, nsx_err *err)
{
    assert(ctx && p && in && m && err);
    memset(ctx, 0, sizeof *ctx);
    ctx->p = p;
    ctx->in = in;
    ctx->model = *m;
    nsx_model_format(m, ctx->model_text, sizeof ctx->model_text);
    consts k;
    nsx_bound_consts(ctx, &k);
    tuple_limits(ctx, &k, &ctx->acc_lim, &ctx->chain_lim);
    if (nsx_slice_init(&ctx->z, p))
        goto oom;
    /* the per-tuple cache: as many tuples as the largest slice may hold, at
       most NSX_BOUND_CACHE */
    size_t most = 0;
    for (int i = 0; i < p->L && most < NSX_BOUND_CACHE; i++) {
        size_t bound = nsx_slice_bound(p, i);
        most = bound > most ? bound : most;
    }
    ctx->cache_cap = most < NSX_BOUND_CACHE ? most : NSX_BOUND_CACHE;
    ctx->cache = malloc((ctx->cache_cap ? ctx->cache_cap : 1) * T_SLOTS * sizeof(double));
    ctx->acc = malloc((size_t)p->dv * NSX_BOUND_CHAN_SUMS * sizeof(double));
    ctx->xs = malloc(((size_t)p->L * 4 + 2 * (size_t)(p->sel.di > 0 ? p->sel.di : 0)) * sizeof(double));
    if (!ctx->cache || !ctx->acc || !ctx->xs)
        goto oom;
    if (m->bound == NSX_BOUND_PROB) {
        if (nsx_prob_groups_init(&ctx->pg, p->n, p->L, p->dv))
            goto oom;
        if (!(ctx->pg_sq = malloc((size_t)p->n * (size_t)p->dv * sizeof(double))))
            goto oom;
    }
    return 0;
oom:
    nsx_bound_free(ctx);
    return nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
}

void nsx_bound_free(nsx_bound_ctx *ctx)
{
    assert(ctx);
    if (ctx->z.store)
        nsx_slice_free(&ctx->z);
    free(ctx->cache);
    free(ctx->acc);
    free(ctx->xs);
    nsx_prob_groups_free(&ctx->pg);
    free(ctx->pg_sq);
    memset(ctx, 0, sizeof *ctx);
}

/* ---- one row, streamed over its slice Z(i) ----------------------------- */

/*
 * The bound of a row is computed in three passes over the slice
 * (core/slice.c's iterator, E2), which keep only sums and maxima.  A pass
 * reads the per-tuple quantities of the one before from ctx->cache for the
 * first ctx->cache_cap tuples, and recomputes them beyond, with the same
 * binary64 operations in the same order, so the values are the same either
 * way: a row needs O(n L + dv) memory and a cache of fixed size whatever
 * its tuple count.  What the passes share:
 */
typedef struct row {
    nsx_bound_ctx *ctx;
    const nsx_problem *p;
    consts k;
    score_consts sc;
    int b, h, g, i;
    const double *Q;      /* the query row */
    double lse, lse_unc;  /* the golden LSE and its uncertainty (3.10) */
    size_t N;             /* |Z(i)| */
    /* after B1, B2 */
    double t_hat_max, t_max_up, eT_max, b_max;
    double tabs;          /* max_J |T-hat_J| + eT_J >= max_J |T_J| (9.9) */
    /* after B3-B5 */
    double g3, lg_hi, lg_lo;
    double dh, dl, beta_max, rlo_max, dz_int, xi_max, S_lo, D_lo;
    double kap_max;       /* max_J kap_J: |A_J - A-hat_J| <= (2 kap_max + 16 u64) A-hat_J (9.9) */
    int wild;
    tiling tl;            /* the row's tiles (9.8) */
    double amax;          /* bound=prob: max_J (1 + delta_J) A_J, >= every A'_J (P4) */
    /* after B6-B11 */
    double W_max, gNw, aN, Theta, Theta_p;
} row;

/* One tuple's score (B1, B2). */
typedef struct tscore {
    double T;       /* T_J, binary64 */
    double eT;      /* >= |T_J - exact T_J| (3.9) */
    double b;       /* b_J of B2 */
    double sM;      /* |s| M_J */
    double sM2;     /* >= s^2 sum_l m_{J,l}^2, m_{J,l} = |Q_l| prod_m |K_m + kb_m|_l: M_J = sum_l m_{J,l} (9.9) */
    double in_max;  /* the largest |input| it reads */
    double op_max;  /* the largest operand product max(1,|s|) max(1,|Q|) prod max(1, K+) */
} tscore;

/* The score quantities of tuple J; -1 when it reads a NaN or an infinity
   (or its sums overflow), else 0. */
static int tuple_score(const row *r, const int *J, tscore *ts)
{
    const nsx_problem *p = r->p;
    const double as = fabs(r->sc.s), gs = max2(1.0, as);
    const double *K[NSX_MAX_ORDER];
    for (int m = 0; m < p->n; m++)
        K[m] = r->ctx->in->k[m] + nsx_k_at(p, r->b, J[m], r->g, 0);
    /* ORACLE.md 9.1 (R2): a term whose factors' subproducts all stay at least
       2 nmin_uf (twice the normal minimum, under sub=keep too: a result below
       it rounds among the subnormals, with an absolute error up to lam_uf)
       cannot underflow in in, op or int (its computed subproducts are within
       a factor 1 -+ 1/4 of the exact ones, Lemma 1); G_u sums its G over the
       terms that may */
    const double thr = 2 * r->k.nmin_uf, slack = 4 * r->k.ua;
    double P = 0, M = 0, M2 = 0, G = 0, G_u = 0, in_max = 0, op_max = 0;
    for (int l = 0; l < p->d; l++) {
        double x = r->Q[l], xa = fabs(r->Q[l]), xg = max2(1.0, xa);
        /* the smallest subproduct of the factors' lower bounds: the product
           of those below 1, or the smallest; an exact zero factor (no bias)
           makes every error of the term vanish */
        double lo = xa * (1 - r->k.ui), below = lo < 1 ? lo : 1, least = lo;
        int zero = xa == 0;
        in_max = max2(in_max, xa);
        for (int m = 0; m < p->n; m++) {
            double kv = K[m][l], kb = p->k_bias[m], ka = fabs(kv) + fabs(kb);
            in_max = max2(in_max, fabs(kv));
            x *= kv + kb;
            xa *= ka;
            xg *= max2(1.0, ka);
            double f = kb == 0 ? fabs(kv) * (1 - r->k.ui) : max2(0.0, fabs(kv + kb) - slack * ka - 4 * r->k.fa.lambda);
            zero |= kb == 0 && kv == 0;
            below *= f < 1 ? f : 1;
            least = min2(least, f);
        }
        double fs = as * (1 - 2 * U64);
        below *= fs < 1 ? fs : 1;
        least = min2(least, fs);
        P += x;
        M += xa;
        M2 += xa * xa;
        G += gs * xg;
        if (!zero && min2(below, least) < thr)
            G_u += gs * xg;
        op_max = max2(op_max, gs * xg);
    }
    if (!isfinite(P) || !isfinite(M) || !isfinite(G))
        return -1;
    ts->T = r->sc.s * P;
    ts->eT = r->sc.e64 * as * M * (1 + 4 * U64) + 8.0 * (2 * p->n + p->d) * L64 * G;
    /* Lemma 1 per term: lambda_acc for every term, lam_all for those that
       may underflow in in, op or int */
    ts->b = r->sc.gT * as * M + 2 * (r->sc.cT * r->k.fa.lambda * G + r->sc.cX * r->sc.lam_uf * G_u) +
            4 * r->k.ft.lambda; /* the score's roundings to int (and its scaling there) */
    ts->sM = as * M;
    /* n + 1 factors squared, d terms, s^2: at most 2n + d + 4 roundings of
       nonnegative values; an overflow (huge inputs) leaves it infinite, and
       nsx_prob_comp_sq then takes the coherent sum */
    ts->sM2 = as * as * M2 * (1 + gamma_of(2.0 * p->n + p->d + 4, U64));
    ts->in_max = in_max;
    ts->op_max = op_max;
    return 0;
}

/*
 * ORACLE.md 3.2 (B1, B2), the first pass: every tuple's score T_J (binary
 * 64), its recomputation error eT_J (3.9) and the kernel's score error
 * bound b_J = Gamma_T |s| M_J + 2 C_T lambda G_J.  The row keeps N, the
 * largest score, score error and recomputation error, and refuses (3.1) a
 * slice with more tuples than the accumulation or the bound's arithmetic
 * can carry as soon as it passes that count, inputs out of `in`'s range,
 * operand products that may overflow `op` and scores that may overflow.
 * Returns 0 (with rb->nonfinite set when a tuple reads a NaN or an
 * infinity: nothing more is computed), or NSX_E_NOT_APPLICABLE.
 */
static int scores_B1_B2(row *r, nsx_row_bound *rb, nsx_err *err)
{
    const nsx_bound_ctx *ctx = r->ctx;
    const consts *k = &r->k;
    double in_max = 0, op_max = 0, sM_max = 0;
    r->t_hat_max = r->t_max_up = -INFINITY;
    r->eT_max = r->b_max = r->tabs = 0;
    r->N = 0;
    while (nsx_slice_next(&r->ctx->z)) {
        tscore ts;
        if (++r->N > ctx->acc_lim)
            return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i,
                                  "the accumulation format cannot bound a sum of this many tuples",
                                  (double)r->N, (double)ctx->acc_lim);
        if (r->N > ctx->chain_lim)
            return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i, "too many tuples for the bound's binary64 arithmetic",
                                  (double)r->N, (double)ctx->chain_lim);
        if (tuple_score(r, ctx->z.J, &ts)) {
            rb->nonfinite = 1;
            return 0;
        }
        if (r->N <= ctx->cache_cap) {
            double *x = ctx->cache + (r->N - 1) * T_SLOTS;
            x[T_HAT] = ts.T, x[T_ERR] = ts.eT, x[T_B] = ts.b, x[T_SM] = ts.sM, x[T_SM2] = ts.sM2;
        }
        in_max = max2(in_max, ts.in_max);
        op_max = max2(op_max, ts.op_max);
        sM_max = max2(sM_max, ts.sM);
        r->t_hat_max = max2(r->t_hat_max, ts.T);
        r->t_max_up = max2(r->t_max_up, ts.T + ts.eT);
        r->tabs = max2(r->tabs, fabs(ts.T) + ts.eT);
        r->eT_max = max2(r->eT_max, ts.eT);
        r->b_max = max2(r->b_max, ts.b);
    }
    rb->N = r->N;
    if (r->N == 0 || !isfinite(r->lse))
        return 0; /* empty, or an inconsistent vector: the caller reports it */

    /* 3.1: the scores' applicability */
    const double lim_in = nsx_format_fits(r->p->input_format, ctx->model.in) ? INFINITY : k->fi.max;
    const double lim_op = min2(k->fo.max, k->ft.max) / 4, lim_acc = min2(k->fa.max, k->ft.max) / 4;
    if (in_max > lim_in)
        return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i, "an input exceeds the input format's range", in_max, lim_in);
    if (op_max > lim_op)
        return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i, "score operand products may overflow the op format",
                              op_max, lim_op);
    if (sM_max > lim_acc)
        return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i, "scores may overflow", sM_max, lim_acc);
    /* Lemma 1's preconditions */
    if (r->sc.gT > 0.25 || r->sc.cT * k->lam_all > 0.01)
        return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i, "the score's rounding errors exceed Lemma 1's range",
                              r->sc.gT, 0.25);
    rb->t_max = r->t_hat_max;
    rb->b_max = r->b_max;
    return 0;
}

/* The score of the t-th tuple J of the slice, from the cache or recomputed. */
static void score_at(const row *r, size_t t, const int *J, tscore *ts)
{
    if (t < r->ctx->cache_cap) {
        const double *x = r->ctx->cache + t * T_SLOTS;
        ts->T = x[T_HAT], ts->eT = x[T_ERR], ts->b = x[T_B], ts->sM = x[T_SM], ts->sM2 = x[T_SM2];
    } else {
        tuple_score(r, J, ts); /* finite: the first pass read every tuple */
    }
}

/* One tuple's weight (B3, B4). */
typedef struct tweight {
    double beta;    /* beta_J of B3 */
    double A;       /* an upper bound of A_J = exp(T_J - LSE) (3.9), never 0 */
    double rhi;     /* rho-hi_J - 1 (B4) */
    double rlo;     /* 1 - rho-lo_J (B4) */
    double dT;      /* >= T_max - T_J */
    double z, kap;  /* T_J - LSE and its error */
    double sM;      /* |s| M_J (B2) */
    double sM2;     /* s^2 sum_l m_{J,l}^2 (9.9) */
    double T, eT;   /* T_J, binary64, and its recomputation error (B1, 3.9) */
    double cJ;      /* bound=prob: the coherent part of |rho_J - 1| (9.3) */
    double wlo;     /* a lower bound of the weight rounded to w, before 1/(1 + dh) (B7) */
} tweight;

static void tuple_weight(const row *r, const tscore *ts, tweight *tw)
{
    const double T = ts->T, eT = ts->eT, bJ = ts->b;
    tw->dT = (r->t_max_up - T + eT) * (1 + U64);
    tw->beta = bJ + r->g3 * (tw->dT + bJ + r->b_max) + 4.0 * r->N * r->k.fa.lambda; /* B3 */
    tw->z = T - r->lse;
    tw->kap = eT + 2 * U64 * fabs(r->lse) + U64 * fabs(tw->z) + r->lse_unc;
    /* A_J upward; never 0, so that A * rho stays a bound */
    tw->A = max2(exp(tw->z) * exp(tw->kap) * (1 + 8 * U64), 0x1p-1074);
    tw->rhi = expm1(tw->beta + r->lg_hi); /* B4 */
    tw->rlo = -expm1(-tw->beta + r->lg_lo);
    tw->sM = ts->sM;
    tw->sM2 = ts->sM2;
    tw->T = ts->T;
    tw->eT = ts->eT;
    /* 9.3: rho_J - 1 = (linear in the sites) + a remainder of at most
       rhi_J - (the linear part of B4's majorant); the coherent part is the
       arguments, the absolute terms, p_J's own exp error and that remainder
       (the global sites, once coherent here, are charged per row by
       prob_X1, 9.9) */
    const double eps = r->k.eps_exp, nexp = r->tl.resc + 1; /* p_J's exp and the rescalings (B4) */
    const double lin_other = tw->beta - (r->sc.gT - r->sc.gT_lin) * ts->sM; /* beta's linear part */
    const double rem = max2(0.0, tw->rhi - lin_other - nexp * eps) * (1 + 4 * U64);
    tw->cJ = (tw->beta - r->sc.gT * ts->sM) + eps + rem;
    /* ORACLE.md 9.1 (R3, B7): the weight rounded to w is p_J >= e^{T_J - T_max - b_max} rho-lo_J
       (unnormalized, whatever the running max) or A'_J >= A_J rho-lo_J / D_hi
       (normalized), A_J >= exp(T_J - LSE - kap) (1 - 8 u64) */
    tw->wlo = min2(exp(-tw->dT - r->b_max), exp(tw->z - tw->kap) * (1 - 8 * U64)) * (1 - tw->rlo);
}

/* The weight of the t-th tuple J of the slice (A, rhi, rlo), from the cache
   or recomputed. */
static void weight_at(const row *r, size_t t, const int *J, tweight *tw)
{
    if (t < r->ctx->cache_cap) {
        const double *x = r->ctx->cache + t * T_SLOTS;
        tw->A = x[T_A], tw->rhi = x[T_RHI], tw->rlo = x[T_RLO], tw->sM = x[T_SM], tw->sM2 = x[T_SM2], tw->cJ = x[T_CJ],
        tw->wlo = x[T_WLO], tw->T = x[T_HAT], tw->eT = x[T_ERR];
    } else {
        tscore ts;
        tuple_score(r, J, &ts);
        tuple_weight(r, &ts, tw);
    }
}

/* (B5) delta_J: |A'_J - A_J| <= delta_J A_J; infinite in a wild row. */
static double tuple_delta(const row *r, const tweight *tw)
{
    if (r->wild)
        return INFINITY;
    return max2((tw->rhi + r->dl) / (1 - r->dl), (tw->rlo + r->dh) / (1 + r->dh));
}

/*
 * ORACLE.md 3.3, 3.4 (B3-B5), the second pass: per tuple the exponent
 * error beta_J (B3), the range [rho-lo_J, rho-hi_J] (B4) and an upper
 * bound of the weight A_J; the row keeps dh = sum A_J (rho-hi_J - 1) and
 * dl = sum A_J (1 - rho-lo_J) (B5; with dl >= 1/2 the row is "wild" and
 * only the caps of B9-B11 remain), the largest beta_J, and for B7 the
 * lower bound S_lo of the sum of the effective weights:
 *
 *   S >= max( e^{-b_max} D_lo, (1 - eps)^N ),  D_lo >= max(1 - dl, min_J rho-lo_J)
 *
 * The second form of D_lo (every rho_J >= min_J rho-lo_J and the A_J sum
 * to 1) is tighter than the doc's 1 - dl where one tuple dominates, and
 * holds in wild rows too.
 */
static void weights_B3_B5(row *r)
{
    nsx_slice *z = &r->ctx->z;
    r->g3 = gamma_of(3, r->k.ua);
    /* B4: one exp and at most R rescalings (A4; R = K - 1 with tiles, 9.8) */
    r->lg_hi = (r->tl.resc + 1) * log1p(r->k.eps_exp);
    r->lg_lo = (r->tl.resc + 1) * log1p(-r->k.eps_exp);
    r->dh = r->dl = r->beta_max = r->rlo_max = r->dz_int = r->xi_max = r->kap_max = 0;
    for (size_t t = 0; nsx_slice_next(z); t++) {
        tscore ts;
        tweight tw;
        score_at(r, t, z->J, &ts);
        tuple_weight(r, &ts, &tw);
        if (t < r->ctx->cache_cap) {
            double *x = r->ctx->cache + t * T_SLOTS;
            x[T_A] = tw.A, x[T_RHI] = tw.rhi, x[T_RLO] = tw.rlo, x[T_CJ] = tw.cJ, x[T_WLO] = tw.wlo; /* T_HAT, T_ERR, T_SM, T_SM2 stay */
        }
        r->dh += tw.A * tw.rhi;
        r->dl += tw.A * tw.rlo;
        /* B14, fl_int(T_J - m): A_J expm1(x_J), taken as exp(log A_J + x_J)
           when x_J >= 1 so that an underflowed weight (A_J floored at the
           least subnormal) times a huge factor stays e^{z(1 - u_t)}, tiny */
        double xi = r->k.ft.u * (tw.dT + ts.b + r->b_max);
        r->dz_int += xi < 1 ? tw.A * expm1(xi) : exp(tw.z + tw.kap + 8 * U64 + xi);
        r->xi_max = max2(r->xi_max, xi);
        r->beta_max = max2(r->beta_max, tw.beta);
        r->rlo_max = max2(r->rlo_max, tw.rlo);
        r->kap_max = max2(r->kap_max, tw.kap);
    }
    /* B5: D_hi <= 1 + dh, D_lo >= 1 - dl */
    r->wild = !(r->dl < 0.5) || !isfinite(r->dh);
    double D_lo = max2(r->wild ? 0.0 : 1 - r->dl, 1 - r->rlo_max);
    r->D_lo = D_lo * (1 - 4 * U64);
    /* B7: S >= e^{-b_max} D_lo, and S >= (1 - eps)^N from the tuple whose
       computed score is the maximum (its exponent arguments are exactly 0) */
    r->S_lo = max2(exp(-r->b_max) * D_lo, exp(r->lg_lo)) * (1 - 4 * U64);
}

void nsx_bound_value_consts(const nsx_problem *p, const consts *k, double *gW, double *cW)
{
    const int n = p->n;
    int nvb = 0;
    for (int m = 0; m < n; m++)
        nvb += p->v_bias[m] != 0;
    gam gw = {0};
    if (p->reduce == NSX_REDUCE_PRODUCT) {
        gam_add(&gw, n, k->ui);
        gam_add(&gw, 2.0 * nvb, k->ua);
        gam_add(&gw, nvb + (double)k->conv * (n - nvb), k->fo.u);
        gam_add(&gw, n - 1.0, k->ux);
    } else {
        gam_add(&gw, 1, k->ui);
        gam_add(&gw, nvb ? 2.0 : 0.0, k->ua);
        gam_add(&gw, nvb || k->conv ? 1.0 : 0.0, k->fo.u);
        gam_add(&gw, n - 1.0, k->ux);
        if (p->reduce == NSX_REDUCE_MEAN) {
            gam_add(&gw, 1, k->ua);
            gam_add(&gw, 1, k->ux);
        }
    }
    *gW = gam_val(&gw);
    *cW = 5.0 * n + 4; /* per factor: input, bias (3); n - 1 products; mean (2) */
}

void nsx_bound_reduced_value(const nsx_problem *p, const double *const *V, int c, double *W, double *Wp, double *Wg,
                          double *v_in_max)
{
    if (p->reduce == NSX_REDUCE_PRODUCT) {
        *W = 1, *Wp = 1, *Wg = 1;
        for (int m = 0; m < p->n; m++) {
            double va = fabs(V[m][c]) + fabs(p->v_bias[m]);
            *v_in_max = max2(*v_in_max, fabs(V[m][c]));
            *W *= V[m][c] + p->v_bias[m];
            *Wp *= va;
            *Wg *= max2(1.0, va);
        }
        return;
    }
    const double inv_n = p->reduce == NSX_REDUCE_MEAN ? 1.0 / p->n : 1.0;
    *W = 0, *Wp = 0, *Wg = 1;
    for (int m = 0; m < p->n; m++) {
        *v_in_max = max2(*v_in_max, fabs(V[m][c]));
        *W += V[m][c] + p->v_bias[m];
        *Wp += fabs(V[m][c]) + fabs(p->v_bias[m]);
    }
    *W *= inv_n;
    *Wp *= inv_n;
}

/*
 * ORACLE.md 9.1 (R2, B6): 1 when no value formed for channel c of the tuple can fall below
 * thr = 2 nmin_uf (the largest normal minimum of in when rounding, op, int), so that
 * B6's absolute term needs only lambda_acc: every subproduct of the factors
 * (product), or every subset sum (sum and mean, n <= 4; their roundings are
 * then relative only), stays above thr after the relative errors of
 * Lemma 1 (at most 1/4).  An exact zero factor of a product makes every
 * error of it vanish.
 */
static int value_cannot_underflow(const nsx_problem *p, const consts *k, const double *const *V, int c, double thr)
{
    const double slack = 4 * k->ua + k->ui;
    if (p->reduce == NSX_REDUCE_PRODUCT) {
        double below = 1, least = INFINITY;
        for (int m = 0; m < p->n; m++) {
            double v = V[m][c], vb = p->v_bias[m];
            if (vb == 0 && v == 0)
                return 1;
            double f = vb == 0 ? fabs(v) * (1 - k->ui) : max2(0.0, fabs(v + vb) - slack * (fabs(v) + fabs(vb)) - 4 * k->fa.lambda);
            below *= f < 1 ? f : 1;
            least = min2(least, f);
        }
        return min2(below, least) >= thr;
    }
    if (p->n > 4)
        return 0;
    const double den = p->reduce == NSX_REDUCE_MEAN ? (1 - 2 * k->ux) / p->n : 1.0;
    for (unsigned S = 1; S < 1u << p->n; S++) {
        double sum = 0, mag = 0;
        for (int m = 0; m < p->n; m++)
            if (S >> m & 1) {
                sum += V[m][c] + p->v_bias[m];
                mag += fabs(V[m][c]) + fabs(p->v_bias[m]);
            }
        if ((fabs(sum) - (slack + 4 * U64) * mag - 8 * k->fa.lambda) * den < thr)
            return 0;
    }
    return 1;
}

static int identity_B7(row *r, nsx_err *err);

/* The per-channel sums and caps of B9-B11, of the weights' underflow (B7)
   and of P1-P3 (9.3-9.4, 9.9), in ctx->acc (NSX_BOUND_CHAN_SUMS dv doubles). */
typedef struct chan_sums {
    double *S1, *C1;    /* X1: sum delta_J A_J |W_J - w0|, max |W_J - w0| */
    double *S2, *C2;    /* X2: sum (1 + delta_J) A_J e^W_J, max e^W_J */
    double *S3, *C3;    /* X3 / Gamma_N: sum (1 + delta_J) A_J (|W|_J + e^W_J), its max */
    double *MU;         /* w0 = mu-hat = O-hat / os */
    /* bound=prob, with a_J = A_J |W_J - w0| and y_J = (1 + delta_J) A_J (|W|_J + e^W_J) */
    double *P1, *V1, *Y1; /* sum a_J c_J, sum (a_J t_J)^2, sum a_J (P1) */
    double *P2, *V2;      /* sum (1 + delta_J) A_J (e^W_J - e^W'_J), sum ((1 + delta_J) A_J e^W'_J)^2 (P2) */
    double *V3;           /* sum (t3 y_J)^2 (P3) */
    double *UW;           /* B7: sum (1 + delta_J) A_J (|W|_J + e^W_J) over the tuples whose
                             weight may fall below 2 lambda_w */
    double *YM;           /* bound=prob with tiles: max_J y_J (P3, 9.8) */
    double *Q1, *Q2;      /* bound=prob: sum a_J |s| M_J, sum a_J s^2 sum_l m_{J,l}^2 (Q's components, 9.9) */
    double *G, *GE, *GA;  /* bound=prob: G = sum A_J T_J (W_J - w0) (signed), a bound of its
                             evaluation error, and sum |A_J T_J (W_J - w0)| (the scale's sites, 9.9) */
} chan_sums;

static chan_sums chan_sums_of(const row *r)
{
    const int dv = r->p->dv;
    double *a = r->ctx->acc;
    chan_sums s = {a, a + dv, a + 2 * dv, a + 3 * dv, a + 4 * dv, a + 5 * dv, a + 6 * dv,
                   a + 7 * dv, a + 8 * dv, a + 9 * dv, a + 10 * dv, a + 11 * dv, a + 12 * dv, a + 13 * dv,
                   a + 14 * dv, a + 15 * dv, a + 16 * dv, a + 17 * dv, a + 18 * dv, a + 19 * dv};
    return s;
}

/*
 * ORACLE.md 3.5, 3.6 (B6-B11), the third pass: per tuple and channel the
 * reduced value W_J (binary64, with its recomputation error, 3.9), its
 * error bound e^W_J = Gamma_W W+_J + 2 C_W lambda (prod max(1, V+) or 1)
 * (B6), and the terms of X1-X3 (B9-B11) with w0 = mu-hat, summed with the
 * weights of the second pass and delta_J of B5 (B11's |W|_J is sum_m
 * |V_m + vb_m| / den for sum and mean: A9); then B7 (identity_B7).
 * Refuses (3.1) values out of `in`'s range and reduced values that may
 * overflow.  Returns 0 (rb->nonfinite set when a value is not finite),
 * or NSX_E_NOT_APPLICABLE.
 */
static int values_B6_B11(row *r, const double *o_exact, nsx_row_bound *rb, nsx_err *err)
{
    const nsx_bound_ctx *ctx = r->ctx;
    const nsx_problem *p = r->p;
    const consts *k = &r->k;
    const int n = p->n, dv = p->dv;
    nsx_slice *z = &r->ctx->z;
    double gW, cW;
    nsx_bound_value_consts(p, k, &gW, &cW);
    const double e64W = gamma_of(3.0 * n + 2, U64);
    const double os = p->out_scale;
    chan_sums s = chan_sums_of(r);
    for (int c = 0; c < dv; c++) {
        s.S1[c] = s.C1[c] = s.S2[c] = s.C2[c] = s.S3[c] = s.C3[c] = 0;
        s.P1[c] = s.V1[c] = s.Y1[c] = s.P2[c] = s.V2[c] = s.V3[c] = s.UW[c] = s.YM[c] = s.Q1[c] = s.Q2[c] = 0;
        s.G[c] = s.GE[c] = s.GA[c] = 0;
        s.MU[c] = os != 0 ? o_exact[c] / os : 0.0; /* w0 = mu-hat */
    }
    /* bound=prob (9.3, 9.4): per-tuple sites of the values (the last of the
       n - 1 products, which involves every key) and of the weights (the
       rounding to w, the product with W' and a division in acc) */
    const int prob = ctx->model.bound == NSX_BOUND_PROB && !r->wild;
    const double ux_last = p->reduce == NSX_REDUCE_PRODUCT && n >= 2 ? k->ux : 0.0;
    const double t3 = k->fw.u + 2 * k->fa.u;
    const double thr = 2 * k->nmin_uf;
    double *grp[NSX_MAX_ORDER];
    if (ctx->model.bound == NSX_BOUND_PROB)
        nsx_prob_groups_take(&r->ctx->pg, ctx->pg_sq); /* clears what a refused row left */
    double W_max = 0, wg_max = 0, v_in_max = 0;
    const double kapr = 2 * r->kap_max + 16 * U64; /* |A_J - A-hat_J| / A-hat_J */
    r->amax = 0;
    for (size_t t = 0; nsx_slice_next(z); t++) {
        tweight tw;
        weight_at(r, t, z->J, &tw);
        const double A = tw.A, delta = tuple_delta(r, &tw);
        r->amax = max2(r->amax, A * (1 + delta));
        /* B7: a weight that may fall below 2 lambda_w errs by at most itself
           (flushed or rounded among the subnormals), <= (1 + delta_J) A_J */
        const int w_uf = k->fw.lambda > 0 && !r->wild && tw.wlo / (1 + r->dh) < 2 * k->fw.lambda;
        /* its error: at most itself, and at most lamw (in the frame of
           normalized weights, or of p <= 1 divided by S >= S_lo) */
        const double w_err = min2(1.0, k->lamw * max2(1.0, 1 / r->S_lo) / (A * (1 + delta)));
        const double *V[NSX_MAX_ORDER];
        for (int m = 0; m < n; m++)
            V[m] = ctx->in->v[m] + nsx_v_at(p, r->b, z->J[m], r->g, 0);
        if (prob)
            for (int m = 0; m < n; m++)
                grp[m] = nsx_prob_group(&r->ctx->pg, m, z->J[m]);
        for (int c = 0; c < dv; c++) {
            double W, Wp, Wg;
            nsx_bound_reduced_value(p, V, c, &W, &Wp, &Wg, &v_in_max);
            if (p->reduce != NSX_REDUCE_PRODUCT)
                wg_max = max2(wg_max, Wp);
            if (!isfinite(W) || !isfinite(Wp) || !isfinite(Wg)) {
                rb->nonfinite = 1;
                return 0;
            }
            /* B6, with lambda of in, op and int only where a value may underflow (ORACLE.md 9.1) */
            double lam = k->lam_all > k->fa.lambda && value_cannot_underflow(p, k, V, c, thr) ? k->fa.lambda : k->lam_all;
            double eW = value_err_B6_lam(gW, cW, Wp, Wg, lam);
            double e64 = e64W * Wp * (1 + 4 * U64) + 16.0 * n * L64 * Wg;
            double dw = fabs(W - s.MU[c]) * (1 + U64) + e64;
            /* X3's magnitude: |W_J|, or for sum and mean sum_m |v_m| / den, since
               such a reducer may be computed factored, as row and column sums
               of the weights times each v_m (the SIMD kernel does), whose
               rounding scales with the terms, not with their sum (A9) */
            double Wa = (p->reduce == NSX_REDUCE_PRODUCT ? fabs(W) : Wp) + e64 + eW;
            if (!r->wild) {
                s.S1[c] += A * delta * dw;
                s.S2[c] += A * (1 + delta) * eW;
                s.S3[c] += A * (1 + delta) * Wa;
                if (w_uf)
                    s.UW[c] += A * (1 + delta) * Wa * w_err;
            }
            if (prob) {
                const double a = A * dw, a2 = A * (1 + delta), eWt = min2(eW, ux_last * Wp);
                s.P1[c] += a * tw.cJ;
                s.V1[c] += (a * r->sc.gTup * tw.sM) * (a * r->sc.gTup * tw.sM);
                s.Y1[c] += a;
                s.Q1[c] += a * tw.sM;
                s.Q2[c] += a * tw.sM2;
                /* 9.9 (T5): A_J T_J (W_J - w0), its evaluation error from A-hat, T-hat
                   (eT) and W-hat (e64, the subtraction) */
                const double wd = W - s.MU[c], T = tw.T, Ta = fabs(T), g = A * T * wd;
                s.G[c] += g;
                s.GA[c] += fabs(g);
                s.GE[c] += A * (kapr * (Ta + tw.eT) * dw + tw.eT * dw + Ta * (U64 * fabs(wd) + e64));
                for (int m = 0; m < n; m++)
                    nsx_prob_group_add(grp[m], c, a, tw.sM, tw.sM2);
                s.P2[c] += a2 * (eW - eWt);
                s.V2[c] += (a2 * eWt) * (a2 * eWt);
                s.V3[c] += (t3 * a2 * Wa) * (t3 * a2 * Wa);
                s.YM[c] = max2(s.YM[c], a2 * Wa);
            }
            s.C1[c] = max2(s.C1[c], dw);
            s.C2[c] = max2(s.C2[c], eW);
            s.C3[c] = max2(s.C3[c], Wa);
            W_max = max2(W_max, Wa);
            wg_max = max2(wg_max, Wg);
        }
    }
    const double N = (double)r->N;
    const double lim_in = nsx_format_fits(p->input_format, ctx->model.in) ? INFINITY : k->fi.max;
    if (v_in_max > lim_in)
        return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i, "a value exceeds the input format's range", v_in_max, lim_in);
    if (wg_max > min2(k->fo.max, k->ft.max) / 4 || W_max * N > k->fa.max / 4)
        return nsx_bound_not_applicable(ctx, err, r->b, r->h, r->i, "reduced values may overflow", max2(wg_max, W_max * N),
                              min2(min2(k->fo.max, k->ft.max), k->fa.max / N) / 4);
    r->W_max = W_max;
    if (prob)
        nsx_prob_groups_take(&r->ctx->pg, ctx->pg_sq);
    return identity_B7(r, err);
}

/*
 * ORACLE.md 3.6 (B7): the value and weight sums are reductions over N
 * tuples with at most N - 1 rescalings, the numerator's also the product
 * with W' and the division: Gamma_N; the underflow terms a^N and a^D; and
 * the denominator's relative error Theta = Gamma_D + a^D / S_lo, refused
 * (3.1) unless below 1/2.
 */
static int identity_B7(row *r, nsx_err *err)
{
    const consts *k = &r->k;
    const double N = (double)r->N;
    const int n = r->p->n;
    const double W_max = r->W_max;
    const double gD = gamma_of(r->tl.ops, k->ua); /* r(N) + N - 1, or with tiles r(B) + 2 (K - 1) (9.8) */
    r->gNw = expm1(log1p(k->fw.u) + (r->tl.ops + 2) * log1p(k->ua) + n * log1p(k->ft.u));
    const double l_hi = N * exp(r->lg_hi) * (1 + gD);
    /* the weights' underflow: per tuple (chan_sums.UW) unless the row is wild */
    r->aN = 8.0 * N * (k->fa.lambda + (r->wild ? k->lamw * max2(1.0, l_hi) : 0.0)) * (1 + W_max);
    const double aD = 6.0 * N * k->fa.lambda;
    r->Theta = gD + aD / r->S_lo;
    /* P4 (9.4): the denominator's additions and rescalings, 2N roundings
       in acc of partial sums at most S (1 + Gamma_D); with tiles (9.8),
       2 (K - 1) such and B - 1 per tile of partial sums at most min(1,
       B max_J A'_J) S (1 + Gamma_D), whose squares sum to at most that
       times S (1 + Gamma_D) */
    r->Theta_p = r->Theta;
    if (r->ctx->model.bound == NSX_BOUND_PROB) {
        const double cnt = r->ctx->model.tile == 0 ? 2 * N
                           : !r->tl.sep          ? min2(2 * N, N + r->tl.K - 2) /* B/acc: N - 1 additions */
                                                 : min2(2 * N, 2 * (r->tl.K - 1) + (r->tl.B - 1) * min2(1.0, r->tl.B * r->amax));
        r->Theta_p = min2(r->Theta, nsx_prob_lambda(r->ctx->model.pfail) * k->fa.u * sqrt(cnt) * (1 + 4 * U64) * (1 + gD) +
                                        aD / r->S_lo);
    }
    if (!(r->Theta < 0.5))
        return nsx_bound_not_applicable(r->ctx, err, r->b, r->h, r->i, "the sum of weights cannot be bounded", r->Theta, 0.5);
    return 0;
}

/*
 * ORACLE.md 9.3 (P1), channel c: the softmax perturbation under bound=prob,
 *
 *   X1 <= [ sum_J a_J c_J + g_S G' + lam sqrt( sum_J (a_J t_J)^2 + V_K
 *           + V_Q + (N - 1) (eps Y1)^2 ) + |mu-hat - mu| ] / D_lo
 *
 * with a_J = A_J |W_J - w0|: the coherent part c_J (arguments, absolute
 * terms, p_J's exp, the remainder), the scale's sites (G' bounds the
 * signed sum |G|, 9.9), the per-tuple sites t_J (the score's dot product
 * and rounding to int), the key groups V_K and Q's components V_Q, each
 * split by component l (9.9; V_Q may stay coherent instead), and the
 * N - 1 rescalings' exp errors, each coefficient at most eps Y1,
 * Y1 = sum_J a_J.
 */
static double prob_X1(const row *r, const chan_sums *s, int c, double lam, double mu_err, double *part)
{
    const double eps = r->k.eps_exp, D = r->D_lo;
    double VK = nsx_prob_key_var(r->sc.fk, r->p->n, r->sc.npk, r->k.ux, r->ctx->pg_sq, r->p->dv, c);
    double ey = eps * s->Y1[c];
    double resc = r->tl.resc * ey * ey; /* N - 1 rescalings, K - 1 with tiles (9.8) */
    double v = s->V1[c] + VK + resc;
    /* 9.9: Q's components charged coherently (as before T4) or in the root,
       split by l, whichever is smaller: a choice made from the row's
       coefficients alone, not from the errors */
    double VQ = r->sc.gQ * r->sc.gQ * nsx_prob_comp_sq(s->Q1[c], s->Y1[c], s->Q2[c]);
    double q_coh = r->sc.gQ * s->Q1[c];
    double root = sqrt(v) * (1 + 4 * U64), root_q = sqrt(v + VQ) * (1 + 4 * U64);
    int split = lam * root_q < q_coh + lam * root;
    /* 9.9 (T5): the scale's sites, one rounding each shared by every term of
       every score: their linear coefficient is |sum_J A_J (T_J - c0)(W_J - w0)|
       for the kernel's common shift c0 (|c0| <= tabs + b_max), at most |G|,
       its evaluation error and the summation's, and (tabs + b_max) |mu - w0| */
    double Gb = fabs(s->G[c]) + s->GE[c] + gamma_of((double)r->N + 3, U64) * s->GA[c] + (r->tabs + r->b_max) * mu_err;
    double scale = r->sc.gS * Gb * (1 + 4 * U64);
    if (!(scale < INFINITY))
        scale = r->sc.gS > 0 ? INFINITY : 0.0; /* G overflowed (huge inputs): P1 gives way to B9 */
    if (part) {
        part[NSX_BT_X1_COH] = (s->P1[c] + scale + mu_err) / D;
        part[NSX_BT_X1_TUP] = lam * sqrt(s->V1[c]) / D;
        part[NSX_BT_X1_KEY] = lam * sqrt(VK) / D;
        part[NSX_BT_X1_QRY] = (split ? lam * sqrt(VQ) : q_coh) / D;
        part[NSX_BT_X1_RESC] = lam * sqrt(resc) / D;
    }
    double rest = split ? lam * root_q : q_coh + lam * root;
    double x1 = (s->P1[c] + scale + rest + mu_err) / D * (1 + 4 * U64);
    return isnan(x1) ? INFINITY : x1;
}

/*
 * ORACLE.md 9.4 (P3), channel c: the weight rounding and the numerator's
 * accumulation under bound=prob, for the product reducer without int (the
 * others keep B11):
 *
 *   X3 <= lam sqrt( sum_J (t3 y_J)^2 + V_acc ) + u_acc Y3 + r3 Y,     Y3 = Y (1 + Gamma_N)
 *
 * with y_J = (1 + delta_J) A_J (|W_J| + e^W_J), Y = min(sum_J y_J, max_J
 * (|W_J| + e^W_J)) (B11's), t3 = u_w + 2 u_acc the per-tuple roundings (to
 * w, the product with W', a division) and r3 = (1 + u_w)(1 + u_acc)^2 - 1
 * - t3 their second order, coherent; the division, coherent; V_acc the
 * partial sums' roundings: 2N of magnitude at most Y3 (N - 1 additions,
 * N - 1 rescalings), or with tiles (9.8) 2 (K - 1) such and, inside the
 * tiles, B - 1 per tile of magnitude at most min(Y3, B ym3), ym3 = (1 +
 * Gamma_N) max_J y_J, whose squares sum to at most that times Y3.
 */
static double prob_X3(const row *r, const chan_sums *s, int c, double lam, double *part)
{
    const consts *k = &r->k;
    if (r->p->reduce != NSX_REDUCE_PRODUCT || k->ft.u > 0)
        return INFINITY;
    const double N = (double)r->N, ua = k->fa.u, uw = k->fw.u;
    const double Y = min2(s->S3[c], s->C3[c]), Y3 = Y * (1 + r->gNw);
    const tiling *t = &r->tl;
    double vacc = 2 * N * (ua * Y3) * (ua * Y3);
    if (r->ctx->model.tile != 0 && !t->sep) {
        /* tile=B/acc: N - 1 additions and K - 1 rescalings of partial sums at most Y3 */
        vacc = min2(vacc, (N + t->K - 2) * (ua * Y3) * (ua * Y3));
    } else if (r->ctx->model.tile != 0) {
        const double ym3 = s->YM[c] * (1 + r->gNw);
        vacc = min2(vacc, (2 * (t->K - 1) * Y3 + (t->B - 1) * min2(Y3, t->B * ym3)) * Y3 * ua * ua * (1 + 4 * U64));
    }
    const double r3 = (2 * uw * ua + ua * ua + uw * ua * ua) * (1 + 4 * U64);
    if (part) {
        part[NSX_BT_X3_TUP] = lam * sqrt(s->V3[c]);
        part[NSX_BT_X3_ACC] = lam * sqrt(vacc);
        part[NSX_BT_X3_COH] = ua * Y3 + r3 * Y;
    }
    return (lam * sqrt(s->V3[c] + vacc) + ua * Y3 + r3 * Y) * (1 + 4 * U64);
}

/*
 * ORACLE.md 3.6, 3.7 (B8, B12, B13), per channel: X1-X3 as the smaller of
 * their per-tuple sums and their caps (B9-B11), |mu' - mu| (B8), the output
 * scale (B12, Gamma_os = 0 when |os| is a power of two) and the output's
 * own rounding, one ulp of `out` at |O| + E_pre (B13); with the final
 * margin of 3.9.  O-hat's uncertainty enters |mu|, the cap of X1 and |O|
 * (3.10).  Refuses an output that may overflow `out`.
 */
static int output_B12_B13(const row *r, const double *o_exact, const double *o_unc, double margin,
                          double *o_bound, nsx_err *err)
{
    const consts *k = &r->k;
    const double os = r->p->out_scale, aos = fabs(os);
    const chan_sums s = chan_sums_of(r);
    int e2;
    const double gos = frexp(aos, &e2) == 0.5 ? 0.0 : gamma_of(2, max2(k->ua, k->ft.u)); /* exact for 2^k */
    const int prob = r->ctx->model.bound == NSX_BOUND_PROB && !r->wild;
    const double lam = prob ? nsx_prob_lambda(r->ctx->model.pfail) : 0.0;
    for (int c = 0; c < r->p->dv; c++) {
        if (os == 0) {
            o_bound[c] = nsx_fmt_ulp(&k->fout, 0.0) * margin; /* O = 0 exactly, 0 * finite = 0 */
            if (r->ctx->terms) {
                double *t = r->ctx->terms + (size_t)c * NSX_BT_COUNT;
                for (int x = 0; x < NSX_BT_COUNT; x++)
                    t[x] = 0;
                t[NSX_BT_ULP] = nsx_fmt_ulp(&k->fout, 0.0);
            }
            continue;
        }
        double mu_unc = o_unc ? o_unc[c] / aos * (1 + 2 * U64) : 0.0; /* |O-hat - O| / |os| */
        double mu_abs = fabs(s.MU[c]) * (1 + 3 * U64) + 2 * L64 + mu_unc;
        double mu_err = 3 * U64 * fabs(s.MU[c]) + 2 * L64 + mu_unc; /* |mu-hat - mu| */
        double X1 = min2(r->wild ? INFINITY : s.S1[c], s.C1[c] + mu_err); /* B9 */
        double X2 = min2(r->wild ? INFINITY : s.S2[c], s.C2[c]);          /* B10 */
        double X3 = r->gNw * min2(r->wild ? INFINITY : s.S3[c], s.C3[c]); /* B11 */
        double Th = r->Theta;
        if (prob) {
            X1 = min2(X1, prob_X1(r, &s, c, lam, mu_err, NULL));
            X2 = min2(X2, s.P2[c] + lam * sqrt(s.V2[c]) * (1 + 4 * U64)); /* P2 */
            X3 = min2(X3, prob_X3(r, &s, c, lam, NULL));
            Th = r->Theta_p;
        }
        double Emu = (X1 + X2 + X3 + r->aN / r->S_lo + s.UW[c] + mu_abs * Th) / (1 - Th); /* B8 */
        double Epre = aos * (Emu * (1 + gos) + gos * mu_abs) + k->fa.lambda;                 /* B12 */
        double Oabs = fabs(o_exact[c]) * (1 + U64) + (o_unc ? o_unc[c] : 0.0);
        double E = Epre + nsx_fmt_ulp(&k->fout, Oabs + Epre);                                 /* B13 */
        if (r->ctx->terms) {
            double *t = r->ctx->terms + (size_t)c * NSX_BT_COUNT;
            for (int x = 0; x < NSX_BT_COUNT; x++)
                t[x] = 0;
            t[NSX_BT_X1] = X1, t[NSX_BT_X2] = X2, t[NSX_BT_X3] = X3;
            t[NSX_BT_X1W] = min2(r->wild ? INFINITY : s.S1[c], s.C1[c] + mu_err);
            t[NSX_BT_X2W] = min2(r->wild ? INFINITY : s.S2[c], s.C2[c]);
            t[NSX_BT_X3W] = r->gNw * min2(r->wild ? INFINITY : s.S3[c], s.C3[c]);
            if (prob) {
                prob_X1(r, &s, c, lam, mu_err, t);
                prob_X3(r, &s, c, lam, t);
            }
            t[NSX_BT_UNDER] = r->aN / r->S_lo + s.UW[c];
            t[NSX_BT_THETA] = Th, t[NSX_BT_MUTH] = mu_abs * Th;
            t[NSX_BT_SCALE] = aos / (1 - Th), t[NSX_BT_EPRE] = Epre, t[NSX_BT_ULP] = E - Epre;
        }
        if (Oabs + E > k->fout.max)
            return nsx_bound_not_applicable(r->ctx, err, r->b, r->h, r->i, "the output may overflow the output format",
                                  Oabs + E, k->fout.max);
        o_bound[c] = E * margin;
    }
    return 0;
}

/*
 * ORACLE.md 3.8 (B14): the LSE's error E_1 from the weights' perturbation
 * ell_D, the denominator's ell_Theta and the log's error on Lambda, then
 * the final addition and the conversion to `lseout`.  ell_D is the larger
 * of the two sides of log(sum_J A_J rho_J), each side the smaller of its
 * per-tuple and its global form:
 *
 *   ell_D = max( min(log1p(dh), max_J beta_J + N log(1 + eps)),
 *                min(-log1p(-dl), max_J beta_J - N log(1 - eps)) )
 *
 * which is at most the doc's min(max(...), max_J beta_J - N log(1 - eps)),
 * and tighter on the upper side.  With an intermediate format, the terms
 * of torch.logsumexp's composite (E_int).  Refuses an LSE that may
 * overflow `lseout`.
 */
static int lse_B14(const row *r, double margin, nsx_row_bound *rb, nsx_err *err)
{
    const consts *k = &r->k;
    const double lse = r->lse, N = (double)r->N;
    double lD_cap_hi = r->beta_max + r->lg_hi, lD_cap_lo = r->beta_max - r->lg_lo;
    double lD = max2(r->wild ? lD_cap_hi : min2(log1p(r->dh), lD_cap_hi),
                     r->wild ? lD_cap_lo : min2(-log1p(-r->dl), lD_cap_lo));
    double lTh = -log1p(-r->Theta);
    double Tmax_abs = fabs(r->t_hat_max) + r->eT_max;
    double gap = max2(0.0, lse - r->t_hat_max) + U64 * fabs(lse) + r->eT_max + r->lse_unc; /* >= LSE - T_max */
    double Lam = gap + r->b_max + lD + lTh;
    /* an LSE through int tensors (torch.logsumexp's composite: the shifted
       arguments, the exponentials, their sum and the log each rounded to
       int, ORACLE.md 3.8); 0 for fused kernels (int = none) */
    const double ut = k->ft.u;
    /* the per-tuple sum, capped by its global form max_J x_J (the exact
       weights sum to 1) for rows whose score errors are too large for it */
    double E_args = min2(log1p(r->dz_int), r->xi_max);
    double E_int = ut > 0 ? E_args - 2 * log1p(-ut) + ut * Lam + N * k->ft.lambda : 0.0;
    double E1 = lD + lTh + k->eps_exp * Lam + k->fa.lambda + E_int;
    double g2 = gamma_of(2, k->ua);
    double lse_abs = fabs(lse) * (1 + U64) + r->lse_unc;
    double Epre = (1 + g2) * E1 + g2 * lse_abs + r->g3 * (1 + g2) * (Tmax_abs + r->b_max);
    /* B15 (ORACLE.md 3.8.1): the LSE in base-2 or mixed form, X.  Epre holds
       for every rounding of the model, none included, so it bounds the
       unrounded m~ + log~(l') too.  The mixed form adds the error of the
       kernel's max (|m_fin - T_max| <= b_max), the log2 form scales it all by
       log2(e); then one more acc rounding of the sum, and e64 >= |X^ - X|
       for the binary64 X^ the candidate is compared with. */
    rb->lse_form = lse;
    if (r->ctx->model.lse_form != NSX_LSE_LN) {
        const double log2e = 0x1.71547652b82ffp+0; /* log2(e) rounded to binary64 */
        const double log2e_up = log2e * (1 + U64), D = (log2e_up - 1) * (1 + U64);
        double X, e64;
        if (r->ctx->model.lse_form == NSX_LSE_MIXED) {
            /* X = LSE + (log2 e - 1) T_max; |t_hat_max - T_max| <= eT_max */
            X = lse + (log2e - 1) * r->t_hat_max;
            e64 = D * r->eT_max + 2 * U64 * (lse_abs + 2 * Tmax_abs + fabs(X));
            Epre += D * r->b_max;
        } else {
            /* X = log2(e) LSE */
            X = log2e * lse;
            e64 = 3 * U64 * (fabs(X) + log2e_up * lse_abs);
            Epre *= log2e_up;
        }
        double Xabs = fabs(X) + e64;
        Epre += k->ua * (Xabs + Epre) + e64;
        lse_abs = Xabs;
        rb->lse_form = X;
    }
    double E = Epre + nsx_fmt_ulp(&k->flse, lse_abs + Epre);
    if (lse_abs + E > k->flse.max)
        return nsx_bound_not_applicable(r->ctx, err, r->b, r->h, r->i, "LSE may overflow its output format", lse_abs + E,
                              k->flse.max);
    rb->lse = E * margin;
    return 0;
}

int nsx_bound_row(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row,
                  const double *o_exact, double lse_exact, double *o_bound, nsx_row_bound *rb,
                  nsx_err *err)
{
    assert(ctx);
    return nsx_bound_row_unc(ctx, b, h, i, sel_row, o_exact, NULL, lse_exact, 0.0, o_bound, rb, err);
}

/* The golden values enter the bound in five places (ORACLE.md 3.10): the
   weights A_J = exp(T_J - LSE) (kap), LSE - T_max (gap), |LSE|, the cap
   |W_J - mu| and |mu| (mu_err, mu_abs), and |O| for the output's ulp.  Each
   takes the worst case over the interval the uncertainty allows. */
static int bound_row(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row, const double *o_exact,
                     const double *o_unc, double lse_exact, double lse_unc, double *o_bound, nsx_row_bound *rb,
                     row *rr, nsx_err *err);

int nsx_bound_row_unc(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row,
                      const double *o_exact, const double *o_unc, double lse_exact, double lse_unc,
                      double *o_bound, nsx_row_bound *rb, nsx_err *err)
{
    row r;
    return bound_row(ctx, b, h, i, sel_row, o_exact, o_unc, lse_exact, lse_unc, o_bound, rb, &r, err);
}

int nsx_bound_row_visit(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row, const double *o_exact,
                        const double *o_unc, double lse_exact, double lse_unc, double *o_bound, nsx_row_bound *rb,
                        nsx_bound_visit visit, void *arg, nsx_err *err)
{
    assert(visit);
    row r;
    int rc = bound_row(ctx, b, h, i, sel_row, o_exact, o_unc, lse_exact, lse_unc, o_bound, rb, &r, err);
    if (rc || rb->N == 0 || rb->nonfinite || !isfinite(lse_exact))
        return rc;
    /* a fourth pass: every tuple's quantities of the first two, as they
       entered the row's bound */
    nsx_bound_tuple bt = {.theta = r.Theta, .s_lo = r.S_lo, .wild = r.wild};
    nsx_slice_start(&ctx->z, i, sel_row);
    for (size_t t = 0; nsx_slice_next(&ctx->z); t++) {
        tscore ts;
        tweight tw;
        (void)t;
        tuple_score(&r, ctx->z.J, &ts); /* the cache holds weights now: recomputed, to the same values */
        tuple_weight(&r, &ts, &tw);
        bt.J = ctx->z.J;
        bt.T = ts.T, bt.eT = ts.eT, bt.b = ts.b;
        bt.A = tw.A;
        bt.delta = tuple_delta(&r, &tw);
        visit(arg, &bt);
    }
    return 0;
}

static int bound_row(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row, const double *o_exact,
                     const double *o_unc, double lse_exact, double lse_unc, double *o_bound, nsx_row_bound *rb,
                     row *rr, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    assert(b >= 0 && b < p->B && h >= 0 && h < p->H && i >= 0 && i < p->L);
    assert(o_exact && o_bound && rb && err && lse_unc >= 0);
    assert(p->sel.source == NSX_SEL_NONE || sel_row);
    row r = {.ctx = ctx, .p = p, .b = b, .h = h, .g = nsx_kv_head(p, h), .i = i, .lse = lse_exact,
             .lse_unc = lse_unc};
    memset(rb, 0, sizeof *rb);
    rb->lse_form = lse_exact; /* the form's value once B14 has run */
    nsx_bound_consts(ctx, &r.k);
    score_consts_of(ctx, &r.k, &r.sc);
    r.Q = ctx->in->q + nsx_q_at(p, b, i, h, 0);
    if (nsx_slice_start(&ctx->z, i, sel_row) == 0)
        return 0; /* an empty slice */
    int rc = scores_B1_B2(&r, rb, err);
    if (rc || rb->nonfinite || r.N == 0 || !isfinite(r.lse))
        return rc;
    r.tl = tiling_of(&ctx->model, (double)r.N);
    nsx_slice_start(&ctx->z, i, sel_row);
    weights_B3_B5(&r);
    nsx_slice_start(&ctx->z, i, sel_row);
    if ((rc = values_B6_B11(&r, o_exact, rb, err)) || rb->nonfinite)
        return rc;
    const double margin = 1 + 8 * chain_len(p, (double)r.N) * U64; /* 3.9 */
    if ((rc = output_B12_B13(&r, o_exact, o_unc, margin, o_bound, err)))
        return rc;
    rc = lse_B14(&r, margin, rb, err);
    *rr = r;
    return rc;
}
