/*
 * The per-element error bound (docs/ORACLE.md section 3): equations B1-B14
 * for one query row, in the order the document derives them.
 *
 * Notation (ORACLE.md 3.0): <k>_u = (1+u)^k - 1 (Higham's gamma_k without
 * its denominator; <k>_u <= gamma_k); u_f and lambda_f are the unit
 * roundoff and the smallest normal of format f.  A quantity named *_up is an
 * upper bound of the exact quantity, computed in binary64 and covered by the
 * final margin (ORACLE.md 3.9).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "oracle/bound.h"

#define U64 0x1p-53    /* binary64 unit roundoff */
#define L64 0x1p-1022  /* binary64 smallest normal */

/* Slots of ctx->tup per allowed tuple. */
enum { T_HAT, T_ERR, T_B, T_SPARE, T_SLOTS };
enum { T_A = T_HAT, T_RHI = T_ERR, T_RLO = T_B, T_DELTA = T_SPARE };

int nsx_format_fits(int a, int b)
{
    nsx_fmt fa = nsx_fmt_of(a), fb = nsx_fmt_of(b);
    return fa.p <= fb.p && fa.emax <= fb.emax && fa.emin - fa.p >= fb.emin - fb.p;
}

/* ---- the model's constants (ORACLE.md 3.0, 3.1) ----------------------- */

/* <k>_u accumulated as a logarithm, so that mixed formats multiply. */
typedef struct {
    double lg;
} gam;

static void gam_add(gam *g, double k, double u)
{
    g->lg += k * log1p(u);
}

static double gam_val(const gam *g)
{
    return expm1(g->lg);
}

static double gamma_of(double k, double u)
{
    return expm1(k * log1p(u));
}

/* The faithful operations a reduction of m terms in acc is counted as
   (ORACLE.md 3.0, A3): m + ceil(m/2), which covers sequential or tree
   summation, FMA chains, and multi-term adders that align a block of
   k >= 2 products to the largest and truncate. */
static double reduction(double m)
{
    return m + ceil(m / 2);
}

typedef struct {
    nsx_fmt fi, fo, fa, ft, fw, fout, flse;
    double ui, lami;   /* input rounding: 0 when the vector's format fits `in` */
    double ua;         /* acc arithmetic is faithful: relative error < 2 u_acc */
    double ux, lamx;   /* max of op and int: derived operands and intermediates */
    double lam_all;    /* the largest lambda of in (when rounding), op, int, acc */
    int conv;          /* 1: inputs are converted from `in` to `op` */
    double eps_exp;    /* exp and log: 2 ulps of acc, 4 u_acc relative */
} consts;

static void consts_of(const nsx_bound_ctx *ctx, consts *k)
{
    const nsx_model *m = &ctx->model;
    k->fi = nsx_fmt_of(m->in);
    k->fo = nsx_fmt_of(m->op);
    k->fa = nsx_fmt_of(m->acc);
    k->ft = nsx_fmt_of(m->inter);
    k->fw = nsx_fmt_of(m->w);
    k->fout = nsx_fmt_of(m->out);
    k->flse = nsx_fmt_of(m->lseout);
    int rounds = !nsx_format_fits(ctx->p->input_format, m->in);
    k->ui = rounds ? k->fi.u : 0.0;
    k->lami = rounds ? k->fi.lambda : 0.0;
    k->ux = fmax(k->fo.u, k->ft.u);
    k->lamx = fmax(k->fo.lambda, k->ft.lambda);
    k->lam_all = fmax(fmax(k->lami, k->lamx), k->fa.lambda);
    k->conv = !nsx_format_fits(m->in, m->op);
    k->ua = 2 * k->fa.u;
    k->eps_exp = 4 * k->fa.u;
}

/* h < 0: a selection row (b, i), shared by the heads */
static int not_applicable(const nsx_bound_ctx *ctx, nsx_err *err, int b, int h, int i,
                          const char *why, double value, double limit)
{
    char head[32] = "";
    if (h >= 0)
        snprintf(head, sizeof head, ", head %d", h);
    return nsx_err_set(err, NSX_E_NOT_APPLICABLE, "not applicable under model %s: batch %d%s, query %d: %s (%.6g, limit %.6g)",
                       ctx->model_text, b, head, i, why, value, limit);
}

/* ---- setup ----------------------------------------------------------- */

int nsx_bound_init(nsx_bound_ctx *ctx, const nsx_problem *p, const nsx_inputs *in,
                   const nsx_model *m, nsx_err *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->p = p;
    ctx->in = in;
    ctx->model = *m;
    nsx_model_format(m, ctx->model_text, sizeof ctx->model_text);
    for (int d = 0; d < p->n; d++)
        if (!(ctx->list[d] = malloc((size_t)p->L * sizeof(int))))
            goto oom;
    ctx->selmap = malloc((size_t)p->L);
    ctx->acc = malloc((size_t)p->dv * 7 * sizeof(double));
    ctx->xs = malloc((size_t)p->L * 3 * sizeof(double));
    if (!ctx->selmap || !ctx->acc || !ctx->xs)
        goto oom;
    return 0;
oom:
    nsx_bound_free(ctx);
    return nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory");
}

void nsx_bound_free(nsx_bound_ctx *ctx)
{
    free(ctx->tup);
    for (int d = 0; d < NSX_MAX_ORDER; d++)
        free(ctx->list[d]);
    free(ctx->selmap);
    free(ctx->acc);
    free(ctx->xs);
    memset(ctx, 0, sizeof *ctx);
}

/* ---- the slice Z(i) (E2) ---------------------------------------------- */

/* The allowed keys of each dimension (causal, window, selection); returns
   the size of their product (0 when a list is empty). */
static size_t key_lists(nsx_bound_ctx *ctx, int i, const int32_t *sel_row, int *len)
{
    const nsx_problem *p = ctx->p;
    size_t prod = 1;
    if (p->sel.source != NSX_SEL_NONE) {
        memset(ctx->selmap, 0, (size_t)p->L);
        for (int r = 0; r < p->sel.k; r++)
            if (sel_row[r] >= 0 && sel_row[r] < p->L)
                ctx->selmap[sel_row[r]] = 1;
    }
    for (int m = 0; m < p->n; m++) {
        int w = p->window[m];
        len[m] = 0;
        for (int j = 0; j < p->L; j++) {
            if (p->causal && j > i)
                continue;
            if (w > 0 && !(i - w < j))
                continue;
            if (w > 0 && !p->causal && !(j - i < w)) /* i + w may overflow: w <= INT_MAX */
                continue;
            if (p->sel.source != NSX_SEL_NONE && (p->sel.dims >> m & 1u) && !ctx->selmap[j])
                continue;
            ctx->list[m][len[m]++] = j;
        }
        prod *= (size_t)len[m];
    }
    return prod;
}

/* Odometer over the product of the lists; J gets the keys.  Returns 0 when
   done.  pos starts zeroed with *started = 0. */
static int next_tuple(const nsx_bound_ctx *ctx, const int *len, int *pos, int *J, int *started)
{
    const nsx_problem *p = ctx->p;
    for (;;) {
        if (!*started) {
            *started = 1;
        } else {
            int m = p->n - 1;
            while (m >= 0 && ++pos[m] == len[m])
                pos[m--] = 0;
            if (m < 0)
                return 0;
        }
        for (int m = 0; m < p->n; m++)
            J[m] = ctx->list[m][pos[m]];
        int ok = 1;
        if (p->distinct)
            for (int a = 0; a < p->n && ok; a++)
                for (int c = a + 1; c < p->n; c++)
                    ok &= J[a] != J[c];
        if (ok)
            return 1;
    }
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

typedef struct {
    double gT;      /* Gamma_T of B2 */
    double cT;      /* roundings along one term (Lemma 1's C) */
    double s;       /* the binary64 scale and |s| */
    double e64;     /* <2n + d + 2>_u64: binary64 recomputation of T (3.9) */
} score_consts;

static void score_consts_of(const nsx_bound_ctx *ctx, const consts *k, score_consts *sc)
{
    const nsx_problem *p = ctx->p;
    int nkb = 0;
    for (int m = 0; m < p->n; m++)
        nkb += p->k_bias[m] != 0;
    sc->s = nsx_problem_score_scale(p);
    /* the scale: exact real 1/sqrt(d) or binary64; one binary64 rounding
       when 1/sqrt(d) is not a binary64 */
    double s_inexact = p->score_scale_rsqrt_d && !rsqrt_is_binary64(p->d);
    gam g = {0};
    gam_add(&g, p->n + 1, k->ui);                 /* B1: inputs rounded to `in` */
    gam_add(&g, 2.0 * nkb, k->ua);                /* B1: kb to acc, K + kb in acc */
    gam_add(&g, nkb + (double)k->conv * (p->n + 1 - nkb), k->fo.u); /* B1: to op */
    gam_add(&g, s_inexact, U64);                  /* s as binary64 */
    gam_add(&g, p->n + 1.0, k->ux);               /* B2: s to op, n operand products */
    gam_add(&g, reduction(p->d), k->ua);          /* B2: the dot product over l */
    gam_add(&g, 1.0, k->ft.u);                    /* B2: score rounded to int */
    sc->gT = gam_val(&g);
    sc->cT = 5.0 * p->n + p->d + 8;
    sc->e64 = gamma_of(2.0 * p->n + p->d + 2, U64);
}

/* ---- pass 1 ------------------------------------------------------------ */

static int grow(nsx_bound_ctx *ctx, size_t N, nsx_err *err)
{
    if (N <= ctx->cap)
        return 0;
    double *t = realloc(ctx->tup, N * T_SLOTS * sizeof *t);
    if (!t)
        return nsx_err_set(err, NSX_E_NOMEM, "oracle: out of memory (%zu tuples)", N);
    ctx->tup = t;
    ctx->cap = N;
    return 0;
}

int nsx_bound_row(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row,
                  const double *o_exact, double lse_exact, double *o_bound, nsx_row_bound *rb,
                  nsx_err *err)
{
    return nsx_bound_row_unc(ctx, b, h, i, sel_row, o_exact, NULL, lse_exact, 0.0, o_bound, rb, err);
}

/* The golden values enter the bound in five places (ORACLE.md 3.10): the
   weights A_J = exp(T_J - LSE) (kap), LSE - T_max (gap), |LSE|, the cap
   |W_J - mu| and |mu| (mu_err, mu_abs), and |O| for the output's ulp.  Each
   takes the worst case over the interval the uncertainty allows. */
int nsx_bound_row_unc(nsx_bound_ctx *ctx, int b, int h, int i, const int32_t *sel_row,
                      const double *o_exact, const double *o_unc, double lse_exact, double lse_unc,
                      double *o_bound, nsx_row_bound *rb, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    const nsx_inputs *in = ctx->in;
    const int n = p->n, d = p->d, dv = p->dv, g = nsx_kv_head(p, h);
    consts k;
    score_consts sc;
    int len[NSX_MAX_ORDER], pos[NSX_MAX_ORDER], J[NSX_MAX_ORDER], started;

    memset(rb, 0, sizeof *rb);
    consts_of(ctx, &k);
    score_consts_of(ctx, &k, &sc);
    size_t prod = key_lists(ctx, i, sel_row, len);
    if (prod == 0)
        return 0;
    int rc = grow(ctx, prod, err);
    if (rc)
        return rc;

    /* B1, B2 per tuple: T_J (binary64), its recomputation error eT_J, and
       the kernel's score error bound b_J = Gamma_T |s| M_J + 2 C lambda G_J */
    const double *Q = in->q + nsx_q_at(p, b, i, h, 0);
    const double as = fabs(sc.s), gs = fmax(1.0, as);
    double in_max = 0, op_max = 0, sM_max = 0;
    size_t N = 0;
    memset(pos, 0, sizeof pos);
    started = 0;
    while (next_tuple(ctx, len, pos, J, &started)) {
        const double *K[NSX_MAX_ORDER];
        for (int m = 0; m < n; m++)
            K[m] = in->k[m] + nsx_k_at(p, b, J[m], g, 0);
        double P = 0, M = 0, G = 0;
        for (int l = 0; l < d; l++) {
            double x = Q[l], xa = fabs(Q[l]), xg = fmax(1.0, xa);
            in_max = fmax(in_max, xa);
            for (int m = 0; m < n; m++) {
                double kv = K[m][l], ka = fabs(kv) + fabs(p->k_bias[m]);
                in_max = fmax(in_max, fabs(kv));
                x *= kv + p->k_bias[m];
                xa *= ka;
                xg *= fmax(1.0, ka);
            }
            P += x;
            M += xa;
            G += gs * xg;
            op_max = fmax(op_max, gs * xg);
        }
        if (!isfinite(P) || !isfinite(M) || !isfinite(G)) {
            rb->nonfinite = 1;
            return 0;
        }
        double *t = ctx->tup + N * T_SLOTS;
        t[T_HAT] = sc.s * P;
        t[T_ERR] = sc.e64 * as * M * (1 + 4 * U64) + 8.0 * (2 * n + d) * L64 * G;
        t[T_B] = sc.gT * as * M + 2 * sc.cT * k.lam_all * G;
        sM_max = fmax(sM_max, as * M);
        N++;
    }
    rb->N = N;
    if (N == 0 || !isfinite(lse_exact))
        return 0; /* empty, or an inconsistent vector: the caller reports it */

    /* 3.1: applicability */
    const double lim_in = nsx_format_fits(p->input_format, ctx->model.in) ? INFINITY : k.fi.max;
    if (in_max > lim_in)
        return not_applicable(ctx, err, b, h, i, "an input exceeds the input format's range", in_max, lim_in);
    if (op_max > fmin(k.fo.max, k.ft.max) / 4)
        return not_applicable(ctx, err, b, h, i, "score operand products may overflow the op format",
                              op_max, fmin(k.fo.max, k.ft.max) / 4);
    if (sM_max > fmin(k.fa.max, k.ft.max) / 4)
        return not_applicable(ctx, err, b, h, i, "scores may overflow", sM_max, fmin(k.fa.max, k.ft.max) / 4);
    /* Lemma 1's and B7's preconditions */
    double gN = gamma_of(reduction((double)N) + N + 1.0, k.ua), gT = sc.gT;
    if (gN > 0.125)
        return not_applicable(ctx, err, b, h, i, "the accumulation format cannot bound a sum of this many tuples",
                              gN, 0.125);
    if (gT > 0.25 || sc.cT * k.lam_all > 0.01)
        return not_applicable(ctx, err, b, h, i, "the score's rounding errors exceed Lemma 1's range", gT, 0.25);
    double K_chain = 4.0 * N + 4.0 * d + 16.0 * n + 256;
    if (K_chain * U64 > 0x1p-12)
        return not_applicable(ctx, err, b, h, i, "too many tuples for the bound's binary64 arithmetic",
                              (double)N, 0x1p-12 / U64 / 4);

    /* the largest score and the largest score error */
    double t_hat_max = -INFINITY, t_max_up = -INFINITY, eT_max = 0, b_max = 0;
    for (size_t t = 0; t < N; t++) {
        const double *x = ctx->tup + t * T_SLOTS;
        t_hat_max = fmax(t_hat_max, x[T_HAT]);
        t_max_up = fmax(t_max_up, x[T_HAT] + x[T_ERR]);
        eT_max = fmax(eT_max, x[T_ERR]);
        b_max = fmax(b_max, x[T_B]);
    }
    rb->t_max = t_hat_max;
    rb->b_max = b_max;

    /* B3-B5: per-tuple exponent errors beta_J, the ranges of rho_J, the
       weights A_J (upper bounds), and D_lo, D_hi */
    const double g3 = gamma_of(3, k.ua), lse = lse_exact;
    const double lg_hi = N * log1p(k.eps_exp), lg_lo = N * log1p(-k.eps_exp);
    double dh = 0, dl = 0, beta_max = 0, rlo_max = 0, dz_int = 0, xi_max = 0;
    for (size_t t = 0; t < N; t++) {
        double *x = ctx->tup + t * T_SLOTS;
        double T = x[T_HAT], eT = x[T_ERR], bJ = x[T_B];
        double dT = (t_max_up - T + eT) * (1 + U64);                     /* >= T_max - T_J */
        double beta = bJ + g3 * (dT + bJ + b_max) + 4.0 * N * k.fa.lambda; /* B3 */
        double z = T - lse;
        double kap = eT + 2 * U64 * fabs(lse) + U64 * fabs(z) + lse_unc;
        /* A_J upward; never 0, so that A * rho stays a bound */
        double A = fmax(exp(z) * exp(kap) * (1 + 8 * U64), 0x1p-1074);
        double rhi = expm1(beta + lg_hi), rlo = -expm1(-beta + lg_lo);  /* B4 */
        x[T_A] = A;
        x[T_RHI] = rhi;
        x[T_RLO] = rlo;
        dh += A * rhi;
        dl += A * rlo;
        /* B14, fl_int(T_J - m): A_J expm1(x_J), taken as exp(log A_J + x_J)
           when x_J >= 1 so that an underflowed weight (A_J floored at the
           least subnormal) times a huge factor stays e^{z(1 - u_t)}, tiny */
        double xi = k.ft.u * (dT + bJ + b_max);
        dz_int += xi < 1 ? A * expm1(xi) : exp(z + kap + 8 * U64 + xi);
        xi_max = fmax(xi_max, xi);
        beta_max = fmax(beta_max, beta);
        rlo_max = fmax(rlo_max, rlo);
    }
    /* B5: D_hi <= 1 + dh, D_lo >= 1 - dl; with dl >= 1/2 the per-tuple
       bound is not used ("wild" rows keep only the caps of B8) */
    const int wild = !(dl < 0.5) || !isfinite(dh);
    for (size_t t = 0; t < N; t++) {
        double *x = ctx->tup + t * T_SLOTS;
        x[T_DELTA] = wild ? INFINITY : fmax((x[T_RHI] + dl) / (1 - dl), (x[T_RLO] + dh) / (1 + dh));
    }
    double D_lo = fmax(wild ? 0.0 : 1 - dl, 1 - rlo_max); /* every rho_J >= 1 - rlo_max */
    /* B7: S >= e^{-b_max} D_lo, and S >= (1 - eps)^N from the tuple whose
       computed score is the maximum (its exponent arguments are exactly 0) */
    double S_lo = fmax(exp(-b_max) * D_lo, exp(lg_lo)) * (1 - 4 * U64);

    /* B6-B8: pass 2 over tuples and channels */
    int nvb = 0;
    for (int m = 0; m < n; m++)
        nvb += p->v_bias[m] != 0;
    gam gw = {0};
    double cW;
    if (p->reduce == NSX_REDUCE_PRODUCT) {
        gam_add(&gw, n, k.ui);
        gam_add(&gw, 2.0 * nvb, k.ua);
        gam_add(&gw, nvb + (double)k.conv * (n - nvb), k.fo.u);
        gam_add(&gw, n - 1.0, k.ux);
    } else {
        gam_add(&gw, 1, k.ui);
        gam_add(&gw, nvb ? 2.0 : 0.0, k.ua);
        gam_add(&gw, nvb || k.conv ? 1.0 : 0.0, k.fo.u);
        gam_add(&gw, n - 1.0, k.ux);
        if (p->reduce == NSX_REDUCE_MEAN) {
            gam_add(&gw, 1, k.ua);
            gam_add(&gw, 1, k.ux);
        }
    }
    const double gW = gam_val(&gw);
    cW = 5.0 * n + 4; /* per factor: input, bias (3); n - 1 products; mean (2) */
    const double e64W = gamma_of(3.0 * n + 2, U64);
    const double inv_n = p->reduce == NSX_REDUCE_MEAN ? 1.0 / n : 1.0;
    const double os = p->out_scale;
    double *S1 = ctx->acc, *C1 = S1 + dv, *S2 = C1 + dv, *C2 = S2 + dv, *S3 = C2 + dv, *C3 = S3 + dv,
           *MU = C3 + dv;
    for (int c = 0; c < dv; c++) {
        S1[c] = C1[c] = S2[c] = C2[c] = S3[c] = C3[c] = 0;
        MU[c] = os != 0 ? o_exact[c] / os : 0.0; /* w0 = mu-hat */
    }
    double W_max = 0, wg_max = 0, v_in_max = 0;
    memset(pos, 0, sizeof pos);
    started = 0;
    for (size_t t = 0; next_tuple(ctx, len, pos, J, &started); t++) {
        const double *x = ctx->tup + t * T_SLOTS;
        const double A = x[T_A], delta = x[T_DELTA];
        const double *V[NSX_MAX_ORDER];
        for (int m = 0; m < n; m++)
            V[m] = in->v[m] + nsx_v_at(p, b, J[m], g, 0);
        for (int c = 0; c < dv; c++) {
            double W, Wp, Wg;
            if (p->reduce == NSX_REDUCE_PRODUCT) {
                W = 1, Wp = 1, Wg = 1;
                for (int m = 0; m < n; m++) {
                    double va = fabs(V[m][c]) + fabs(p->v_bias[m]);
                    v_in_max = fmax(v_in_max, fabs(V[m][c]));
                    W *= V[m][c] + p->v_bias[m];
                    Wp *= va;
                    Wg *= fmax(1.0, va);
                }
            } else {
                W = 0, Wp = 0, Wg = 1;
                for (int m = 0; m < n; m++) {
                    v_in_max = fmax(v_in_max, fabs(V[m][c]));
                    W += V[m][c] + p->v_bias[m];
                    Wp += fabs(V[m][c]) + fabs(p->v_bias[m]);
                }
                W *= inv_n;
                Wp *= inv_n;
                wg_max = fmax(wg_max, Wp);
            }
            if (!isfinite(W) || !isfinite(Wp) || !isfinite(Wg)) {
                rb->nonfinite = 1;
                return 0;
            }
            double eW = gW * Wp + 2 * cW * k.lam_all * Wg; /* B6 */
            double e64 = e64W * Wp * (1 + 4 * U64) + 16.0 * n * L64 * Wg;
            double dw = fabs(W - MU[c]) * (1 + U64) + e64;
            /* X3's magnitude: |W_J|, or for sum and mean sum_m |v_m| / den, since
               such a reducer may be computed factored, as row and column sums
               of the weights times each v_m (the SIMD kernel does), whose
               rounding scales with the terms, not with their sum (A9) */
            double Wa = (p->reduce == NSX_REDUCE_PRODUCT ? fabs(W) : Wp) + e64 + eW;
            if (!wild) {
                S1[c] += A * delta * dw;
                S2[c] += A * (1 + delta) * eW;
                S3[c] += A * (1 + delta) * Wa;
            }
            C1[c] = fmax(C1[c], dw);
            C2[c] = fmax(C2[c], eW);
            C3[c] = fmax(C3[c], Wa);
            W_max = fmax(W_max, Wa);
            wg_max = fmax(wg_max, Wg);
        }
    }
    if (v_in_max > lim_in)
        return not_applicable(ctx, err, b, h, i, "a value exceeds the input format's range", v_in_max, lim_in);
    if (wg_max > fmin(k.fo.max, k.ft.max) / 4 || W_max * N > k.fa.max / 4)
        return not_applicable(ctx, err, b, h, i, "reduced values may overflow", fmax(wg_max, W_max * N),
                              fmin(fmin(k.fo.max, k.ft.max), k.fa.max / N) / 4);

    /* B7: the denominator's relative error Theta and the underflow terms */
    /* B7: the value and weight sums: a reduction over N tuples, at most
       N - 1 rescalings, for the numerator the product and the division */
    const double gD = gamma_of(reduction((double)N) + (N - 1.0), k.ua);
    const double gNw =
        expm1(log1p(k.fw.u) + (reduction((double)N) + (N - 1.0) + 2) * log1p(k.ua) + n * log1p(k.ft.u));
    const double l_hi = N * exp(lg_hi) * (1 + gD);
    const double aN = 8.0 * N * (k.fa.lambda + k.fw.lambda * fmax(1.0, l_hi)) * (1 + W_max);
    const double aD = 6.0 * N * k.fa.lambda;
    const double Theta = gD + aD / S_lo;
    if (!(Theta < 0.5))
        return not_applicable(ctx, err, b, h, i, "the sum of weights cannot be bounded", Theta, 0.5);
    double aos = fabs(os), gos;
    int e2;
    gos = frexp(aos, &e2) == 0.5 ? 0.0 : gamma_of(2, fmax(k.ua, k.ft.u)); /* exact for 2^k */
    const double margin = 1 + 8 * K_chain * U64;

    /* B8-B13 per channel */
    for (int c = 0; c < dv; c++) {
        if (os == 0) {
            o_bound[c] = nsx_fmt_ulp(&k.fout, 0.0) * margin; /* O = 0 exactly, 0 * finite = 0 */
            continue;
        }
        double mu_unc = o_unc ? o_unc[c] / aos * (1 + 2 * U64) : 0.0; /* |O-hat - O| / |os| */
        double mu_abs = fabs(MU[c]) * (1 + 3 * U64) + 2 * L64 + mu_unc;
        double mu_err = 3 * U64 * fabs(MU[c]) + 2 * L64 + mu_unc; /* |mu-hat - mu| */
        double X1 = fmin(wild ? INFINITY : S1[c], C1[c] + mu_err);
        double X2 = fmin(wild ? INFINITY : S2[c], C2[c]);
        double X3 = gNw * fmin(wild ? INFINITY : S3[c], C3[c]);
        double Emu = (X1 + X2 + X3 + aN / S_lo + mu_abs * Theta) / (1 - Theta); /* B8 */
        double Epre = aos * (Emu * (1 + gos) + gos * mu_abs) + k.fa.lambda;      /* B12 */
        double Oabs = fabs(o_exact[c]) * (1 + U64) + (o_unc ? o_unc[c] : 0.0);
        double E = Epre + nsx_fmt_ulp(&k.fout, Oabs + Epre);                   /* B13 */
        if (Oabs + E > k.fout.max)
            return not_applicable(ctx, err, b, h, i, "the output may overflow the output format", Oabs + E,
                                  k.fout.max);
        o_bound[c] = E * margin;
    }

    /* B14: the LSE */
    double lD_cap_hi = beta_max + lg_hi, lD_cap_lo = beta_max - lg_lo;
    double lD = fmax(wild ? lD_cap_hi : fmin(log1p(dh), lD_cap_hi),
                     wild ? lD_cap_lo : fmin(-log1p(-dl), lD_cap_lo));
    double lTh = -log1p(-Theta);
    double Tmax_abs = fabs(t_hat_max) + eT_max;
    double gap = fmax(0.0, lse - t_hat_max) + U64 * fabs(lse) + eT_max + lse_unc; /* >= LSE - T_max */
    double Lam = gap + b_max + lD + lTh;
    /* an LSE through int tensors (torch.logsumexp's composite: the shifted
       arguments, the exponentials, their sum and the log each rounded to
       int, ORACLE.md 3.8); 0 for fused kernels (int = none) */
    const double ut = k.ft.u;
    /* the per-tuple sum, capped by its global form max_J x_J (the exact
       weights sum to 1) for rows whose score errors are too large for it */
    double E_args = fmin(log1p(dz_int), xi_max);
    double E_int = ut > 0 ? E_args - 2 * log1p(-ut) + ut * Lam + N * k.ft.lambda : 0.0;
    double E1 = lD + lTh + k.eps_exp * Lam + k.fa.lambda + E_int;
    double g2 = gamma_of(2, k.ua);
    double lse_abs = fabs(lse) * (1 + U64) + lse_unc;
    double Epre = (1 + g2) * E1 + g2 * lse_abs + g3 * (1 + g2) * (Tmax_abs + b_max);
    double E = Epre + nsx_fmt_ulp(&k.flse, lse_abs + Epre);
    if (lse_abs + E > k.flse.max)
        return not_applicable(ctx, err, b, h, i, "LSE may overflow its output format", lse_abs + E, k.flse.max);
    rb->lse = E * margin;
    return 0;
}

/* ---- selection tolerance (ORACLE.md section 5) --------------------- */

/* Indexer logits of query (b, i), head hh, for the candidate keys: x[j]
   (binary64), xa[j] = |idx_scale| sum_l |qI kI|, xg[j] (Lemma 1's G). */
static void indexer_logits(const nsx_bound_ctx *ctx, int b, int i, int hh, double *x, double *xa, double *xg)
{
    const nsx_problem *p = ctx->p;
    const int di = p->sel.di;
    const double *qI = ctx->in->idx_q + (((size_t)b * p->L + i) * p->sel.Hi + hh) * di;
    const double sc = p->sel.idx_scale;
    for (int j = 0; j < p->L; j++) {
        if (!nsx_ref_is_candidate(p, i, j))
            continue;
        const double *kI = ctx->in->idx_k + ((size_t)b * p->L + j) * di;
        double s = 0, sa = 0, sg = 0;
        for (int l = 0; l < di; l++) {
            s += qI[l] * kI[l];
            sa += fabs(qI[l] * kI[l]);
            sg += fmax(1.0, fabs(qI[l])) * fmax(1.0, fabs(kI[l]));
        }
        x[j] = sc * s;
        xa[j] = fabs(sc) * sa;
        xg[j] = fmax(1.0, fabs(sc)) * sg;
    }
}

int nsx_bound_sel_tol(nsx_bound_ctx *ctx, int b, int i, double *tol, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    const nsx_selection *S = &p->sel;
    consts k;
    consts_of(ctx, &k);
    const double lim_in = nsx_format_fits(p->input_format, ctx->model.in) ? INFINITY : k.fi.max;
    const int L = p->L;

    for (int j = 0; j < L; j++)
        tol[j] = 0;
    if (S->source == NSX_SEL_SCORES) {
        /* the given scores are inputs: only their rounding to `in` */
        for (int j = 0; j < L; j++) {
            if (!nsx_ref_is_candidate(p, i, j))
                continue;
            double s = fabs(ctx->in->idx_s[((size_t)b * L + i) * L + j]);
            if (s > lim_in)
                return not_applicable(ctx, err, b, -1, i, "an indexer score exceeds the input format's range",
                                      s, lim_in);
            tol[j] = (k.ui * s + k.lami) * (1 + 0x1p-30);
        }
        return 0;
    }

    /* source INDEXER: x[h,j] = idx_scale <qI[h,:], kI[j,:]>, S = sum_h w_h act(x) */
    const int Hi = S->Hi, di = S->di;
    const double *w = ctx->in->idx_w + ((size_t)b * L + i) * Hi;
    double *x = ctx->xs, *xa = x + L, *xg = xa + L;
    gam gx = {0};
    gam_add(&gx, 2, k.ui);        /* qI, kI rounded to in */
    gam_add(&gx, 2, k.ux);        /* idx_scale to op, its product */
    gam_add(&gx, reduction(di), k.ua); /* the dot product in acc */
    const double gX = gam_val(&gx), e64 = gamma_of(di + 2, U64), cx = 2.0 * di + 12;
    gam gs = {0};
    gam_add(&gs, 1, k.ui);        /* w rounded to in */
    gam_add(&gs, 1, k.ux);        /* w_h * act */
    gam_add(&gs, reduction(Hi), k.ua); /* the sum over heads */
    gam_add(&gs, 1, k.ft.u);
    const double gS = gam_val(&gs);
    const int Nc = p->causal ? i + 1 : L;

    for (int hh = 0; hh < Hi; hh++) {
        double wa = fabs(w[hh]);
        if (wa > lim_in)
            return not_applicable(ctx, err, b, -1, i, "an indexer weight exceeds the input format's range", wa,
                                  lim_in);
        indexer_logits(ctx, b, i, hh, x, xa, xg);
        /* bx[j] >= |x'[j] - x[j]| (Lemma 1) plus the binary64 error of x[j] */
        double xmax = -INFINITY, xmin = INFINITY, bmax = 0, e64max = 0;
        for (int j = 0; j < L; j++) {
            if (!nsx_ref_is_candidate(p, i, j))
                continue;
            if (!isfinite(x[j]) || !isfinite(xa[j]) || !isfinite(xg[j]) || xa[j] > k.fa.max / 4)
                return not_applicable(ctx, err, b, -1, i, "an indexer logit is out of range", xa[j], k.fa.max / 4);
            double bx = gX * xa[j] + 2 * cx * k.lam_all * xg[j];
            double ex = e64 * xa[j] + 4.0 * di * L64 * xg[j];
            if (S->act != NSX_ACT_SOFTMAX) {
                /* relu and identity are 1-Lipschitz: |act(x') - act(x)| <= |x' - x| */
                tol[j] += gS * wa * (xa[j] + bx) + wa * bx;
                continue;
            }
            xmax = fmax(xmax, x[j]);
            xmin = fmin(xmin, x[j]);
            bmax = fmax(bmax, bx);
            e64max = fmax(e64max, ex);
        }
        if (S->act != NSX_ACT_SOFTMAX)
            continue;
        /* softmax over the Nc candidates, in the global form of B3-B5: every
           score error <= B, so each weight moves by a factor within
           [e^-2B, e^2B] times the exp, sum and division roundings */
        double range = (xmax - xmin) * (1 + U64) + 2 * e64max;
        double B = bmax + gamma_of(3, k.ua) * (range + 2 * bmax) + 4.0 * Nc * k.fa.lambda;
        double rel = expm1(2 * B + 2 * log1p(k.eps_exp) - log1p(-k.eps_exp) + (reduction(Nc) + 1.0) * log1p(k.ua));
        double z = 0;
        for (int j = 0; j < L; j++)
            if (nsx_ref_is_candidate(p, i, j))
                z += exp(x[j] - xmax);
        /* binary64 softmax, upward: x errors e64max, Nc + 4 roundings */
        double up = exp(2 * e64max + 2 * U64 * (fabs(xmax) + range)) * (1 + (2.0 * Nc + 16) * U64);
        for (int j = 0; j < L; j++) {
            if (!nsx_ref_is_candidate(p, i, j))
                continue;
            double a = exp(x[j] - xmax) / z * up;
            double ea = a * rel + 4.0 * Nc * k.fa.lambda;
            tol[j] += gS * wa * (a + ea) + wa * ea;
        }
    }
    for (int j = 0; j < L; j++)
        tol[j] *= 1 + 0x1p-30;
    return 0;
}
