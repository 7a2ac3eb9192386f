/*
 * Exact gradients (docs/SPEC.md 3.4, "Gradients").
 *
 * Every element of a block is  factor * sum over rows of a row part:
 *   dq, dk_m:  factor = s * out_scale / den,
 *              part   = sum_J x_J A_J (p_J - sum_K A_K p_K)
 *   dv_m:      factor = out_scale / den,
 *              part   = sum_J x_J A_J
 * with p_J = sum_c dO_c w_Jc (w the exact numerator of E5, so that
 * dP_J = (out_scale / den) p_J) and x_J the element's exact coefficient
 * (ref/backward.h; 0 for a tuple that does not touch the element).
 *
 * Group the row's tuples by raw score, T_1 < ... < T_U, N_u tuples each,
 * X_u = sum_u x_J, Y_u = sum_u x_J p_J, B_u = sum_u p_J.  By the
 * Lindemann-Weierstrass theorem (SPEC 3.4):
 *   - a dv part is rational exactly when every X_u / N_u is the same,
 *     and is then that value;
 *   - a dq/dk part is rational exactly when, for every value sigma of
 *     T_u + T_v, sum_{T_u + T_v = sigma} (C_uv - r N_u N_v) = 0, where
 *     C_uv = N_v Y_u - X_u B_v and r = C_UU / N_U^2; it is then r.
 * (With s = 0 every tuple is in one group.)  An element whose parts are
 * all rational is rounded directly: factor * (sum of parts) is rational
 * when s is (a binary64, or 1/sqrt(d) with d a perfect square), and with
 * an irrational s it is either 0 or irrational, hence decided by Ziv's
 * loop.  Everything here is exact rational arithmetic (GMP's mpq).
 *
 * The pairing costs U^2; it is done for rows with at most MAX_PAIRED
 * groups.  The cases that need no pairing are tested first for every row:
 * every x_J = 0 (part 0), every p_J equal (dT = 0, part 0), every x_J
 * equal (part x * sum_J dT_J = 0), and U = 1.
 */
#include <gmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/backward.h"
#include "ref/exact.h"
#include "ref/internal.h"

enum { MAX_PAIRED = 64 };

/* One row's grouping and exact p_J, and scratch for one element. */
typedef struct xrow {
    size_t N, U;
    size_t *grp;          /* [N] the group of tuple t */
    unsigned long *Nu;    /* [U] */
    mpq_t *p;             /* [N] p_J */
    mpq_t *B, *X, *Y;     /* [U] */
    mpq_t *x;             /* [N] the element's coefficients */
    int p_const;          /* every p_J equal */
    size_t *pair;         /* [U*U] pairs u*U + v by T_u + T_v, when U <= MAX_PAIRED */
    size_t *cls_end;      /* [U*U] end of each pair's class in pair[] */
    mpq_t C, r, t;
} xrow;

/* ---- rational arithmetic helpers ----------------------------------------- */

static void q_of_fr(mpq_t q, const mpfr_t x)
{
    if (mpfr_zero_p(x))
        mpq_set_ui(q, 0, 1);
    else
        mpfr_get_q(q, x); /* exact: x is a dyadic rational */
}

/* RN(q) to binary64 through round-to-odd at 64 bits (ref_round_ratio's
   argument); an exact zero gives +0. */
static double round_q(const mpq_t q)
{
    if (mpq_sgn(q) == 0)
        return 0.0;
    mpfr_t y;
    mpfr_init2(y, 64);
    int inexact = mpfr_set_q(y, q, MPFR_RNDZ);
    if (inexact && mpfr_min_prec(y) < 64) {
        if (mpfr_sgn(y) > 0)
            mpfr_nextabove(y);
        else
            mpfr_nextbelow(y);
    }
    double r = mpfr_get_d(y, MPFR_RNDN);
    mpfr_clear(y);
    return r;
}

/* ---- the row ------------------------------------------------------------------ */

static void xrow_free(xrow *xr)
{
    for (size_t t = 0; t < xr->N; t++) {
        mpq_clear(xr->p[t]);
        mpq_clear(xr->x[t]);
    }
    for (size_t u = 0; u < xr->U; u++) {
        mpq_clear(xr->B[u]);
        mpq_clear(xr->X[u]);
        mpq_clear(xr->Y[u]);
    }
    mpq_clear(xr->C), mpq_clear(xr->r), mpq_clear(xr->t);
    free(xr->grp), free(xr->Nu), free(xr->p), free(xr->x);
    free(xr->B), free(xr->X), free(xr->Y), free(xr->pair), free(xr->cls_end);
    memset(xr, 0, sizeof *xr);
}

typedef struct sig_arg {
    mpfr_t *sig;
} sig_arg;

static int lower_sigma(size_t a, size_t b, void *arg)
{
    const sig_arg *sa = arg;
    return mpfr_cmp(sa->sig[a], sa->sig[b]) < 0;
}

/* The pairs (u, v) sorted by T_u + T_v, and the end of each one's class. */
static int xrow_pairs(xrow *xr, const ref_row *row, const size_t *rep, mpfr_prec_t prec_T)
{
    size_t U = xr->U, P = U * U;
    mpfr_t *sig = malloc(P * sizeof *sig);
    xr->pair = malloc(P * sizeof *xr->pair);
    xr->cls_end = malloc(P * sizeof *xr->cls_end);
    if (!sig || !xr->pair || !xr->cls_end) {
        free(sig);
        return -1;
    }
    for (size_t u = 0; u < U; u++)
        for (size_t v = 0; v < U; v++) {
            /* sigma = T_u + T_v, exact at prec_T (ref_ctx_init) */
            mpfr_init2(sig[u * U + v], prec_T);
            REF_EXACT(mpfr_add(sig[u * U + v], row->T[rep[u]], row->T[rep[v]], MPFR_RNDN));
        }
    sig_arg sa = {sig};
    int rc = ref_sort(xr->pair, P, lower_sigma, &sa);
    if (!rc)
        for (size_t a = P; a-- > 0;)
            xr->cls_end[a] = a + 1 < P && mpfr_equal_p(sig[xr->pair[a]], sig[xr->pair[a + 1]])
                                 ? xr->cls_end[a + 1]
                                 : a + 1;
    for (size_t e = 0; e < P; e++)
        mpfr_clear(sig[e]);
    free(sig);
    return rc;
}

/* Groups the tuples of row by raw score and computes p_J exactly. */
static int xrow_build(xrow *xr, bwd_block *bk, const ref_row *row, size_t *perm, mpfr_t w)
{
    const nsx_problem *p = bk->ctx->p;
    size_t N = row->N;
    int one_group = ref_score_scale_sign(p) == 0; /* s = 0: every score is 0 */

    memset(xr, 0, sizeof *xr);
    mpq_inits(xr->C, xr->r, xr->t, (mpq_ptr)0);
    if (ref_row_sort(perm, row))
        return -1;
    xr->grp = malloc(N * sizeof *xr->grp);
    size_t *rep = malloc(N * sizeof *rep); /* a tuple of each group */
    if (!xr->grp || !rep) {
        free(rep);
        return -1;
    }
    size_t U = 0;
    for (size_t t = 0; t < N; t++) {
        if (t == 0 || !(one_group || mpfr_equal_p(row->T[perm[t]], row->T[perm[t - 1]])))
            rep[U++] = perm[t];
        xr->grp[perm[t]] = U - 1;
    }
    xr->p = malloc(N * sizeof *xr->p);
    xr->x = malloc(N * sizeof *xr->x);
    xr->Nu = calloc(U, sizeof *xr->Nu);
    xr->B = malloc(U * sizeof *xr->B);
    xr->X = malloc(U * sizeof *xr->X);
    xr->Y = malloc(U * sizeof *xr->Y);
    if (!xr->p || !xr->x || !xr->Nu || !xr->B || !xr->X || !xr->Y) {
        free(rep);
        return -1;
    }
    for (size_t u = 0; u < U; u++)
        mpq_inits(xr->B[u], xr->X[u], xr->Y[u], (mpq_ptr)0);
    xr->U = U;
    const double *dO = bk->dout + nsx_o_at(p, row->b, row->i, row->h, 0);
    xr->p_const = 1;
    for (size_t t = 0; t < N; t++) {
        mpq_inits(xr->p[t], xr->x[t], (mpq_ptr)0);
        xr->N = t + 1;
        /* p_J = sum_c dO_c w_Jc */
        for (int c = 0; c < p->dv; c++) {
            ref_reduce(w, bk->ctx, row->b, row->g, row->J + t * (size_t)p->n, c);
            q_of_fr(xr->t, w);
            mpq_set_d(xr->C, dO[c]);
            mpq_mul(xr->t, xr->t, xr->C);
            mpq_add(xr->p[t], xr->p[t], xr->t);
        }
        size_t u = xr->grp[t];
        xr->Nu[u]++;
        mpq_add(xr->B[u], xr->B[u], xr->p[t]);
        if (!mpq_equal(xr->p[t], xr->p[0]))
            xr->p_const = 0;
    }
    int rc = 0;
    if (U > 1 && U <= MAX_PAIRED)
        rc = xrow_pairs(xr, row, rep, bk->ctx->prec_T);
    free(rep);
    return rc;
}

/* X_u (and Y_u when with_y) of the coefficients xr->x; 0 when every x_J is
   0, 1 when they are all equal and nonzero, else 2. */
static int xrow_sums(xrow *xr, int with_y)
{
    int kind = mpq_sgn(xr->x[0]) == 0 ? 0 : 1;
    for (size_t u = 0; u < xr->U; u++) {
        mpq_set_ui(xr->X[u], 0, 1);
        mpq_set_ui(xr->Y[u], 0, 1);
    }
    for (size_t t = 0; t < xr->N; t++) {
        size_t u = xr->grp[t];
        if (!mpq_equal(xr->x[t], xr->x[0]))
            kind = 2;
        mpq_add(xr->X[u], xr->X[u], xr->x[t]);
        if (with_y) {
            mpq_mul(xr->t, xr->x[t], xr->p[t]);
            mpq_add(xr->Y[u], xr->Y[u], xr->t);
        }
    }
    return kind;
}

/* C = C_uv = N_v Y_u - X_u B_v */
static void c_uv(xrow *xr, size_t u, size_t v)
{
    mpq_set_ui(xr->t, xr->Nu[v], 1);
    mpq_mul(xr->C, xr->t, xr->Y[u]);
    mpq_mul(xr->t, xr->X[u], xr->B[v]);
    mpq_sub(xr->C, xr->C, xr->t);
}

/* The dq/dk row part sum_J x_J A_J (p_J - sum_K A_K p_K): 1 with r set when
   it is rational, else 0. */
static int part_dT(mpq_t r, xrow *xr)
{
    int kind = xrow_sums(xr, 1);
    if (kind == 0 || kind == 1 || xr->p_const) {
        mpq_set_ui(r, 0, 1); /* x = 0; x constant (row sum 0); dT = 0 */
        return 1;
    }
    size_t U = xr->U, top = U - 1;
    /* r = C_UU / N_U^2 */
    c_uv(xr, top, top);
    mpq_set_ui(xr->t, xr->Nu[top], 1);
    mpq_mul(xr->t, xr->t, xr->t);
    mpq_div(r, xr->C, xr->t);
    if (U == 1)
        return 1;
    if (!xr->pair)
        return 0; /* too many groups to pair: left to Ziv's loop */
    mpq_t acc, acc2;
    mpq_inits(acc, acc2, (mpq_ptr)0);
    int rational = 1;
    for (size_t a = 0; a < U * U && rational; a = xr->cls_end[a]) {
        /* the class of pair[a]: sum (C_uv - r N_u N_v) must vanish */
        mpq_set_ui(acc, 0, 1);
        for (size_t e = a; e < xr->cls_end[a]; e++) {
            size_t u = xr->pair[e] / U, v = xr->pair[e] % U;
            c_uv(xr, u, v);
            mpq_add(acc, acc, xr->C);
            mpq_set_ui(xr->t, xr->Nu[u], 1);
            mpq_mul(xr->t, xr->t, r);
            mpq_set_ui(acc2, xr->Nu[v], 1);
            mpq_mul(xr->t, xr->t, acc2);
            mpq_sub(acc, acc, xr->t);
        }
        rational = mpq_sgn(acc) == 0;
    }
    mpq_clears(acc, acc2, (mpq_ptr)0);
    return rational;
}

/* The dv row part sum_J x_J A_J: 1 with r set when every group has the
   same mean X_u / N_u (then r is it), else 0. */
static int part_A(mpq_t r, xrow *xr)
{
    if (xrow_sums(xr, 0) == 0) {
        mpq_set_ui(r, 0, 1);
        return 1;
    }
    mpq_set_ui(xr->t, xr->Nu[0], 1);
    mpq_div(r, xr->X[0], xr->t);
    for (size_t u = 1; u < xr->U; u++) {
        mpq_set_ui(xr->t, xr->Nu[u], 1);
        mpq_mul(xr->t, xr->t, r);
        if (!mpq_equal(xr->t, xr->X[u]))
            return 0;
    }
    return 1;
}

/* ---- the block ----------------------------------------------------------- */

/* The exact factor of dq and dk (with_s) or of dv: 1 with f set when it is
   rational; 0 for an irrational s (1/sqrt(d), d not a perfect square). */
static int factor(mpq_t f, const nsx_problem *p, int with_s)
{
    mpq_t t;
    mpq_init(t);
    mpq_set_d(f, p->out_scale);
    mpq_set_ui(t, ref_reduce_den(p), 1);
    mpq_div(f, f, t);
    int rational = 1;
    if (with_s && !p->score_scale_rsqrt_d) {
        mpq_set_d(t, p->score_scale);
        mpq_mul(f, f, t);
    } else if (with_s) {
        unsigned long k = (unsigned long)sqrt((double)p->d);
        while (k * k > (unsigned long)p->d)
            k--;
        while ((k + 1) * (k + 1) <= (unsigned long)p->d)
            k++;
        rational = k * k == (unsigned long)p->d;
        mpq_set_ui(t, 1, k);
        mpq_mul(f, f, t);
    }
    mpq_clear(t);
    return rational;
}

int bwd_exact_cases(bwd_block *bk, nsx_ref_stats *st, nsx_err *err)
{
    ref_ctx *ctx = bk->ctx;
    const nsx_problem *p = ctx->p;
    int L = p->L, n = p->n, s_sign = ref_score_scale_sign(p);
    size_t total = bk->nq + bk->nk + bk->nv;
    size_t max_tuples = 1;
    for (int m = 0; m < n; m++)
        max_tuples *= (size_t)L;

    /* ok[e]: undecided and every row part so far rational; sum[e]: their sum */
    unsigned char *ok = malloc(total);
    unsigned char *qneed = calloc((size_t)bk->Hg * L, 1), *kneed = calloc((size_t)n * L, 1);
    unsigned char *used = malloc((size_t)n * L);
    mpq_t *sum = malloc(total * sizeof *sum);
    size_t *perm = malloc(max_tuples * sizeof *perm);
    if (!ok || !qneed || !kneed || !used || !sum || !perm) {
        free(ok), free(qneed), free(kneed), free(used), free(sum), free(perm);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    for (size_t e = 0; e < total; e++) {
        mpq_init(sum[e]);
        ok[e] = !bk->done[e];
    }
    for (size_t e = 0; e < bk->nq; e++)
        qneed[e / p->d] |= ok[e];
    for (size_t e = 0; e < bk->nk; e++)
        kneed[e / p->d] |= ok[bk->nq + e];
    for (size_t e = 0; e < bk->nv; e++)
        kneed[e / p->dv] |= ok[bk->nq + bk->nk + e];

    ref_row row;
    ref_row_init(&row);
    mpfr_t w, x;
    mpfr_init2(w, ctx->prec_W);
    mpfr_init2(x, bk->prec_x);
    mpq_t r;
    mpq_init(r);
    int rc = 0;
    for (int hh = 0; hh < bk->Hg && !rc; hh++)
        for (int i = 0; i < L && !rc; i++) {
            int h = bk->h0 + hh;
            if ((rc = bwd_row_collect(&row, ctx, bk->b, h, i, s_sign, err)))
                break;
            if (row.N == 0)
                continue;
            /* the keys the row uses, and whether it touches an undecided element */
            memset(used, 0, (size_t)n * L);
            int touched = qneed[(size_t)hh * L + i];
            for (size_t t = 0; t < row.N; t++)
                for (int m = 0; m < n; m++) {
                    int j = row.J[t * (size_t)n + m];
                    used[(size_t)m * L + j] = 1;
                    touched |= kneed[(size_t)m * L + j];
                }
            if (!touched)
                continue;
            xrow xr;
            if (xrow_build(&xr, bk, &row, perm, w)) {
                xrow_free(&xr);
                rc = nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
                break;
            }
            /* dq[i,l] of head h */
            for (int l = 0; l < p->d; l++) {
                size_t e = bwd_q_el(bk, hh, i, l);
                if (!ok[e])
                    continue;
                for (size_t t = 0; t < row.N; t++) {
                    bwd_coef_q(x, bk, row.J + t * (size_t)n, l);
                    q_of_fr(xr.x[t], x);
                }
                if ((ok[e] = (unsigned char)part_dT(r, &xr)))
                    mpq_add(sum[e], sum[e], r);
            }
            /* dk_m[j,l] and dv_m[j,c] of every key j the row uses */
            for (int m = 0; m < n; m++)
                for (int j = 0; j < L; j++) {
                    if (!used[(size_t)m * L + j] || !kneed[(size_t)m * L + j])
                        continue;
                    for (int l = 0; l < p->d; l++) {
                        size_t e = bk->nq + bwd_k_el(bk, m, j, l);
                        if (!ok[e])
                            continue;
                        for (size_t t = 0; t < row.N; t++) {
                            const int *J = row.J + t * (size_t)n;
                            if (J[m] == j) {
                                bwd_coef_k(x, bk, h, i, J, m, l);
                                q_of_fr(xr.x[t], x);
                            } else {
                                mpq_set_ui(xr.x[t], 0, 1);
                            }
                        }
                        if ((ok[e] = (unsigned char)part_dT(r, &xr)))
                            mpq_add(sum[e], sum[e], r);
                    }
                    for (int c = 0; c < p->dv; c++) {
                        size_t e = bk->nq + bk->nk + bwd_v_el(bk, m, j, c);
                        if (!ok[e])
                            continue;
                        for (size_t t = 0; t < row.N; t++) {
                            const int *J = row.J + t * (size_t)n;
                            if (J[m] == j) {
                                bwd_coef_v(x, bk, h, i, J, m, c);
                                q_of_fr(xr.x[t], x);
                            } else {
                                mpq_set_ui(xr.x[t], 0, 1);
                            }
                        }
                        if ((ok[e] = (unsigned char)part_A(r, &xr)))
                            mpq_add(sum[e], sum[e], r);
                    }
                }
            xrow_free(&xr);
        }

    /* the elements whose parts are all rational: factor * sum, rounded once */
    if (!rc) {
        mpq_t fqk, fv;
        mpq_inits(fqk, fv, (mpq_ptr)0);
        int qk_rational = factor(fqk, p, 1);
        factor(fv, p, 0);
        double *res = bk->rq; /* rq, rk, rv are consecutive (backward.c) */
        for (size_t e = 0; e < total; e++) {
            if (!ok[e])
                continue;
            int is_v = e >= bk->nq + bk->nk;
            if (!is_v && !qk_rational && mpq_sgn(sum[e]) != 0)
                continue; /* s * nonzero rational: irrational, Ziv decides it */
            mpq_mul(sum[e], sum[e], is_v ? fv : fqk);
            res[e] = round_q(sum[e]);
            bk->done[e] = 1;
            st->exact++;
        }
        mpq_clears(fqk, fv, (mpq_ptr)0);
    }

    for (size_t e = 0; e < total; e++)
        mpq_clear(sum[e]);
    mpq_clear(r);
    mpfr_clears(w, x, (mpfr_ptr)0);
    ref_row_clear(&row);
    free(ok), free(qneed), free(kneed), free(used), free(sum), free(perm);
    return rc;
}
