/*
 * The backward pass (E7): the gradients dq, dk_m, dv_m of
 * F = sum dO * O, and Ziv's loop per block (ref/backward.h).
 *
 * For each block (batch b, kv head g, its query heads), at a working
 * precision p: for every row (b, h, i) of the block, collect the allowed
 * tuples and their exact raw scores (E1, E2), enclose LSE and the weights
 * A (E3, E4, the forward's own functions), then
 *   (E7a) dP_J    = out_scale * sum_c dO_c W_Jc
 *   (E7b) Delta   = sum_J A_J dP_J
 *   (E7c) dT_J    = A_J (dP_J - Delta)
 * (the last two around the maximal tuple: see row_gradients)
 * and add each tuple's terms to the element sums it belongs to:
 *   (E7d) dQ[i,l]   += dT_J * prod_m K~_m[j_m,l]
 *   (E7e) dK_m[j,l] += dT_J * Q[i,l] prod_{m' != m} K~_m'[j_m',l]   (j = j_m)
 *   (E7f) dV_m[j,c] += A_J * dO_c * den dW_m[J,c]                    (j = j_m)
 * with an exact coefficient in each term, so a zero coefficient adds an
 * exact zero; the sums over rows and over the heads of the group (E7g) are
 * the block's accumulators.  At the end, dQ and dK are multiplied by s, dV
 * by out_scale / den.  Every element is an enclosure of the exact value: it
 * is done when both ends round to the same binary64.  After the first round
 * that leaves an element undecided, the exact cases (ref/bwd_exact.c) are
 * settled directly; what remains doubles p, up to the cap, where it is an
 * error (NSX_E_PRECISION_CAP), never an emitted value.
 *
 * Exact zeros need no special case: an element no allowed tuple touches (a
 * masked key, a row with an empty slice) keeps the exact enclosure [0, 0],
 * and rounds to +0.
 */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/ref.h"
#include "nsimplex/slice.h"
#include "ref/backward.h"
#include "ref/exact.h"
#include "ref/fast.h"
#include "ref/internal.h"

/* r = K~_m[j,l] = K_m[j,l] + kb_m, exact */
static void kfac(mpfr_t r, bwd_block *bk, int m, int j, int l)
{
    const nsx_problem *p = bk->ctx->p;
    REF_EXACT(mpfr_set_d(r, bk->ctx->in->k[m][nsx_k_at(p, bk->b, j, bk->g, l)], MPFR_RNDN));
    REF_EXACT(mpfr_add_d(r, r, p->k_bias[m], MPFR_RNDN));
}

/* x = prod_{m != skip} K~_m[j_m,l] (skip = -1: every m) */
static void kprod(mpfr_t x, bwd_block *bk, const int *J, int skip, int l)
{
    mpfr_set_ui(x, 1, MPFR_RNDN);
    for (int m = 0; m < bk->ctx->p->n; m++) {
        if (m == skip)
            continue;
        kfac(bk->fac, bk, m, J[m], l);
        REF_EXACT(mpfr_mul(x, x, bk->fac, MPFR_RNDN));
    }
}

void bwd_coef_q(mpfr_t x, bwd_block *bk, const int *J, int l)
{
    kprod(x, bk, J, -1, l);
}

void bwd_coef_k(mpfr_t x, bwd_block *bk, int h, int i, const int *J, int m, int l)
{
    const nsx_problem *p = bk->ctx->p;
    kprod(x, bk, J, m, l);
    REF_EXACT(mpfr_mul_d(x, x, bk->ctx->in->q[nsx_q_at(p, bk->b, i, h, l)], MPFR_RNDN));
}

void bwd_coef_v(mpfr_t x, bwd_block *bk, int h, int i, const int *J, int m, int c)
{
    const nsx_problem *p = bk->ctx->p;
    REF_EXACT(mpfr_set_d(x, bk->dout[nsx_o_at(p, bk->b, i, h, c)], MPFR_RNDN));
    if (p->reduce != NSX_REDUCE_PRODUCT)
        return; /* dW_m = 1 (sum) or 1/n (mean, the 1/n in out_scale / den) */
    for (int mm = 0; mm < p->n; mm++) {
        if (mm == m)
            continue;
        /* fac = V~_mm[j_mm,c] = V_mm + vb_mm */
        REF_EXACT(mpfr_set_d(bk->fac, bk->ctx->in->v[mm][nsx_v_at(p, bk->b, J[mm], bk->g, c)],
                             MPFR_RNDN));
        REF_EXACT(mpfr_add_d(bk->fac, bk->fac, p->v_bias[mm], MPFR_RNDN));
        REF_EXACT(mpfr_mul(x, x, bk->fac, MPFR_RNDN));
    }
}

int bwd_row_collect(ref_row *row, ref_ctx *ctx, int b, int h, int i, int s_sign, nsx_err *err)
{
    int rc = ref_row_scan(row, ctx, b, h, i, s_sign, err);
    if (!rc && row->N > 0 && !row->nonfinite)
        rc = ref_row_store(row, ctx, err);
    return rc;
}

/* Scratch of one row's E7a-E7c, grown as rows need. */
typedef struct row_scratch {
    size_t cap;
    mpfr_t *p;            /* [cap] p_J, exact */
    ival *dT;             /* [cap] */
    ival *A;              /* [cap] E3's e_J, then E4's weights A_J */
    size_t argmax;        /* a tuple whose score s T_raw is maximal */
    ival Dp, t, s, Z, lse;
    mpfr_t w, x, diff, D; /* D: exact scratch of E3 at prec_T */
} row_scratch;

static int scratch_reserve(row_scratch *rs, size_t N)
{
    if (N <= rs->cap)
        return 0;
    size_t cap = rs->cap ? rs->cap : 64;
    while (cap < N)
        cap *= 2;
    mpfr_t *pp = realloc(rs->p, cap * sizeof *pp);
    if (pp)
        rs->p = pp;
    ival *dT = realloc(rs->dT, cap * sizeof *dT);
    if (dT)
        rs->dT = dT;
    ival *A = realloc(rs->A, cap * sizeof *A);
    if (A)
        rs->A = A;
    if (!pp || !dT || !A)
        return -1;
    for (size_t t = rs->cap; t < cap; t++) {
        mpfr_init2(rs->p[t], 2);
        ival_init(&rs->dT[t], 2);
        ival_init(&rs->A[t], 2);
    }
    rs->cap = cap;
    return 0;
}

static void scratch_clear(row_scratch *rs)
{
    for (size_t t = 0; t < rs->cap; t++) {
        mpfr_clear(rs->p[t]);
        ival_clear(&rs->dT[t]);
        ival_clear(&rs->A[t]);
    }
    free(rs->p);
    free(rs->dT);
    free(rs->A);
}

/* The precision at which a sum of `count` terms, each an integer multiple
   of 2^lo below 2^hi in magnitude, is exact: below count * 2^hi, so
   hi + ceil(log2 count) - lo bits, and one more for the sign's carry. */
static mpfr_prec_t exact_sum_prec(long hi, long lo, size_t count)
{
    long bits = 0;
    while (((size_t)1 << bits) < count)
        bits++;
    long prec = hi + bits - lo + 1;
    return prec < 2 ? 2 : (mpfr_prec_t)prec;
}

/* The binary range of an exact nonzero MPFR number: a multiple of 2^lo
   below 2^hi in magnitude. */
static void range_of_fr(const mpfr_t x, long *hi, long *lo)
{
    *hi = (long)mpfr_get_exp(x);
    *lo = *hi - (long)mpfr_min_prec(x);
}

/* p_J = sum_c dO_c w_Jc, exact: each product is exact at prec_W + 53 bits
   (w_Jc exact at prec_W, dO_c a binary64), and their sum at the precision
   its terms' range gives. */
static void exact_p(mpfr_t pJ, bwd_block *bk, row_scratch *rs, const ref_row *row, const int *J,
                    const double *dO)
{
    const nsx_problem *p = bk->ctx->p;
    long hi = 0, lo = 0;
    int any = 0;
    for (int c = 0; c < p->dv; c++) { /* the range of the terms */
        ref_reduce(rs->w, bk->ctx, row->b, row->g, J, c);
        REF_EXACT(mpfr_mul_d(rs->x, rs->w, dO[c], MPFR_RNDN));
        if (mpfr_zero_p(rs->x))
            continue;
        long h, l;
        range_of_fr(rs->x, &h, &l);
        hi = !any || h > hi ? h : hi;
        lo = !any || l < lo ? l : lo;
        any = 1;
    }
    mpfr_set_prec(pJ, any ? exact_sum_prec(hi, lo, (size_t)p->dv) : 2);
    mpfr_set_zero(pJ, 1);
    for (int c = 0; c < p->dv && any; c++) {
        ref_reduce(rs->w, bk->ctx, row->b, row->g, J, c);
        REF_EXACT(mpfr_mul_d(rs->x, rs->w, dO[c], MPFR_RNDN));
        REF_EXACT(mpfr_add(pJ, pJ, rs->x, MPFR_RNDN));
    }
}

/* diff = a - b for exact a, b, exactly. */
static void exact_sub(mpfr_t diff, const mpfr_t a, const mpfr_t b)
{
    long hi = 0, lo = 0;
    int any = 0;
    const mpfr_ptr ab[2] = {(mpfr_ptr)a, (mpfr_ptr)b};
    for (int x = 0; x < 2; x++) {
        if (mpfr_zero_p(ab[x]))
            continue;
        long h, l;
        range_of_fr(ab[x], &h, &l);
        hi = !any || h > hi ? h : hi;
        lo = !any || l < lo ? l : lo;
        any = 1;
    }
    mpfr_set_prec(diff, any ? exact_sum_prec(hi, lo, 2) : 2);
    REF_EXACT(mpfr_sub(diff, a, b, MPFR_RNDN));
}

/*
 * E7a-E7f for one row with N >= 1 allowed tuples whose weights A are
 * enclosed (row->A), at the precision prec.
 *
 * With f = out_scale / den and p_J = sum_c dO_c w_Jc (exact), E7a reads
 * dP_J = f p_J.  E7b and E7c are evaluated around p* = p at the tuple of
 * maximal score (row->argmax), as E3 is evaluated around the maximal score:
 *   Delta       = f p* + f D',      D' = sum_K A_K (p_K - p*)
 *   dP_J - Delta = f ((p_J - p*) - D')
 * (because sum_K A_K = 1).  The differences p_K - p* are exact and the
 * maximal tuple's is an exact 0, so D' and every dT_J keep their relative
 * accuracy however close the weights are to one-hot: subtracting Delta
 * from dP_J directly would cancel to the width of the enclosures when one
 * weight is 1 - 1e-400, and no precision below the cap would decide dT.
 */
static void row_gradients(bwd_block *bk, ref_row *row, row_scratch *rs, int hh, mpfr_prec_t prec)
{
    const nsx_problem *p = bk->ctx->p;
    unsigned long den = ref_reduce_den(p);
    const double *dO = bk->dout + nsx_o_at(p, row->b, row->i, row->h, 0);
    int n = p->n;
    const mpfr_t *pstar = &rs->p[rs->argmax];

    /* (E7a) dP_J = f p_J: the exact p_J */
    for (size_t t = 0; t < row->N; t++)
        exact_p(rs->p[t], bk, rs, row, row->J + t * (size_t)n, dO);
    /* (E7b) Delta = f (p* + D'), D' = sum_K A_K (p_K - p*) */
    ival_set_prec(&rs->Dp, prec);
    ival_set_prec(&rs->t, prec);
    ival_set_zero(&rs->Dp);
    for (size_t t = 0; t < row->N; t++) {
        exact_sub(rs->diff, rs->p[t], *pstar);
        ival_addmul_fr(&rs->Dp, &rs->A[t], rs->diff);
    }
    for (size_t t = 0; t < row->N; t++) {
        const int *J = row->J + t * (size_t)n;
        ival *dT = &rs->dT[t];
        ival_set_prec(dT, prec);
        /* (E7c) dT_J = A_J (dP_J - Delta) = f A_J ((p_J - p*) - D') */
        exact_sub(rs->diff, rs->p[t], *pstar);
        ival_set_fr(&rs->t, rs->diff);
        ival_sub(&rs->t, &rs->t, &rs->Dp);
        ival_mul(dT, &rs->A[t], &rs->t);
        ival_mul_d(dT, dT, p->out_scale);
        if (den > 1)
            ival_div_ui(dT, dT, den);
        /* (E7d) dQ[i,l] += dT_J prod_m K~_m[j_m,l] */
        for (int l = 0; l < p->d; l++) {
            bwd_coef_q(rs->x, bk, J, l);
            ival_addmul_fr(&bk->eq[bwd_q_el(bk, hh, row->i, l)], dT, rs->x);
        }
        for (int m = 0; m < n; m++) {
            /* (E7e) dK_m[j_m,l] += dT_J Q[i,l] prod_{m' != m} K~_m'[j_m',l] */
            for (int l = 0; l < p->d; l++) {
                bwd_coef_k(rs->x, bk, row->h, row->i, J, m, l);
                ival_addmul_fr(&bk->ek[bwd_k_el(bk, m, J[m], l)], dT, rs->x);
            }
            /* (E7f) dV_m[j_m,c] += A_J dO_c den dW_m[J,c] */
            for (int c = 0; c < p->dv; c++) {
                bwd_coef_v(rs->x, bk, row->h, row->i, J, m, c);
                ival_addmul_fr(&bk->ev[bwd_v_el(bk, m, J[m], c)], &rs->A[t], rs->x);
            }
        }
    }
}

/* 1 when every value of dO[b,i,h,:] is finite. */
static int dout_row_finite(const bwd_block *bk, int h, int i)
{
    const nsx_problem *p = bk->ctx->p;
    for (int c = 0; c < p->dv; c++)
        if (!isfinite(bk->dout[nsx_o_at(p, bk->b, i, h, c)]))
            return 0;
    return 1;
}

/* One round of the block at precision prec: every element's enclosure. */
static int block_round(bwd_block *bk, ref_row *row, row_scratch *rs, mpfr_prec_t prec,
                       int first, nsx_ref_stats *st, nsx_err *err)
{
    ref_ctx *ctx = bk->ctx;
    const nsx_problem *p = ctx->p;
    int s_sign = ref_score_scale_sign(p);
    ival *all[3] = {bk->eq, bk->ek, bk->ev};
    size_t count[3] = {bk->nq, bk->nk, bk->nv};

    for (int x = 0; x < 3; x++)
        for (size_t e = 0; e < count[x]; e++) {
            ival_set_prec(&all[x][e], prec);
            ival_set_zero(&all[x][e]);
        }
    ival_set_prec(&rs->s, prec);
    ival_set_prec(&rs->Z, prec);
    ival_set_prec(&rs->lse, prec);
    ref_score_scale(&rs->s, p);
    for (int hh = 0; hh < bk->Hg; hh++)
        for (int i = 0; i < p->L; i++) {
            int h = bk->h0 + hh, rc;
            if (bk->rowneed && !bk->rowneed[(size_t)hh * p->L + i])
                continue;
            if ((rc = bwd_row_collect(row, ctx, bk->b, h, i, s_sign, err)))
                return rc;
            if (row->nonfinite)
                return nsx_err_set(err, NSX_E_INPUT,
                                   "batch %d, head %d, query %d: an allowed tuple reads a NaN or an "
                                   "infinity in q, k or v", bk->b, h, i);
            if (row->N == 0)
                continue; /* empty slice: no contribution (E7) */
            if (!dout_row_finite(bk, h, i))
                return nsx_err_set(err, NSX_E_INPUT,
                                   "do: batch %d, head %d, query %d: a NaN or an infinity in a row "
                                   "with a non-empty slice", bk->b, h, i);
            if (scratch_reserve(rs, row->N))
                return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
            if (first)
                st->tuples += row->N;
            /* E3: e_J = exp(s (T_raw - M)), Z = sum e_J, LSE; E4: A_J = e_J / Z */
            assert(row->N <= INT_MAX);
            ival_set_zero(&rs->Z);
            rs->argmax = row->N;
            for (size_t t = 0; t < row->N; t++) {
                ival_set_prec(&rs->A[t], prec);
                ref_slice_lse_add(&rs->Z, &rs->A[t], rs->D, row->T[t], row, &rs->s);
                if (rs->argmax == row->N && mpfr_equal_p(row->T[t], row->M))
                    rs->argmax = t;
            }
            assert(rs->argmax < row->N);
            ref_slice_lse(&rs->lse, &rs->Z, row, &rs->s);
            ref_slice_softmax(rs->A, (int)row->N, &rs->Z);
            row_gradients(bk, row, rs, hh, prec);         /* E7a-E7f */
        }
    /* dQ, dK times s; dV times out_scale / den */
    unsigned long den = ref_reduce_den(p);
    for (size_t e = 0; e < bk->nq; e++)
        ival_mul(&bk->eq[e], &bk->eq[e], &rs->s);
    for (size_t e = 0; e < bk->nk; e++)
        ival_mul(&bk->ek[e], &bk->ek[e], &rs->s);
    for (size_t e = 0; e < bk->nv; e++) {
        ival_mul_d(&bk->ev[e], &bk->ev[e], p->out_scale);
        if (den > 1)
            ival_div_ui(&bk->ev[e], &bk->ev[e], den);
    }
    return 0;
}

/* Rounds every undecided element whose enclosure decides it; 1 when all
   are done. */
static int block_decide(bwd_block *bk)
{
    ival *all[3] = {bk->eq, bk->ek, bk->ev};
    double *res[3] = {bk->rq, bk->rk, bk->rv};
    size_t count[3] = {bk->nq, bk->nk, bk->nv};
    unsigned char *done = bk->done;
    int alldone = 1;
    for (int x = 0; x < 3; x++) {
        for (size_t e = 0; e < count[x]; e++)
            if (!done[e])
                alldone &= done[e] = (unsigned char)ival_round_d(&all[x][e], &res[x][e]);
        done += count[x];
    }
    return alldone;
}

/* The name of the first undecided element, for the cap's message. */
static void first_undecided(const bwd_block *bk, char *buf, size_t len)
{
    const nsx_problem *p = bk->ctx->p;
    size_t e = 0;
    while (bk->done[e])
        e++;
    if (e < bk->nq) {
        int l = (int)(e % p->d), i = (int)(e / p->d % p->L), hh = (int)(e / p->d / p->L);
        snprintf(buf, len, "dq[%d,%d,%d,%d]", bk->b, i, bk->h0 + hh, l);
    } else if ((e -= bk->nq) < bk->nk) {
        int l = (int)(e % p->d), j = (int)(e / p->d % p->L), m = (int)(e / p->d / p->L);
        snprintf(buf, len, "dk%d[%d,%d,%d,%d]", m + 1, bk->b, j, bk->g, l);
    } else {
        e -= bk->nk;
        int c = (int)(e % p->dv), j = (int)(e / p->dv % p->L), m = (int)(e / p->dv / p->L);
        snprintf(buf, len, "dv%d[%d,%d,%d,%d]", m + 1, bk->b, j, bk->g, c);
    }
}

/* Ziv's loop for one block. */
static int solve_block(bwd_block *bk, ref_row *row, row_scratch *rs, const nsx_ref_opts *opts,
                       nsx_ref_stats *st, int preset, nsx_err *err)
{
    const nsx_problem *p = bk->ctx->p;
    /* an element sums at most Hg * L^(n+1) terms (saturated at 2^40) */
    size_t terms = (size_t)p->L * (size_t)bk->Hg;
    for (int m = 0; m < p->n && terms < ((size_t)1 << 40); m++)
        terms *= (size_t)p->L;
    mpfr_prec_t prec = ref_prec_start(opts->prec0, terms);
    int exact_tried = 0, rc;

    if (!preset) /* preset: the fast path's decided elements are done */
        memset(bk->done, 0, bk->nq + bk->nk + bk->nv);
    for (int first = 1;; first = 0) {
        if (prec > st->max_prec)
            st->max_prec = prec;
        if ((rc = block_round(bk, row, rs, prec, first, st, err)))
            return rc;
        if (block_decide(bk))
            break;
        if (!exact_tried) {
            exact_tried = 1;
            if ((rc = bwd_exact_cases(bk, st, err)))
                return rc;
            if (block_decide(bk))
                break;
        }
        if (2 * prec > ref_prec_cap(opts->prec_cap)) {
            char what[96];
            first_undecided(bk, what, sizeof what);
            return nsx_err_set(err, NSX_E_PRECISION_CAP,
                               "reference backward: %s is not decided at %ld bits (the precision "
                               "cap)", what, (long)prec);
        }
        prec *= 2;
        st->retries++;
    }
    return 0;
}

/* The rows whose tuples can reach an element not done: dq of row (hh, i)
   needs that row; dk_m, dv_m of key j need every row whose mask lets j
   stand in dimension m (a superset of the rows that use it).  Returns the
   number of rows marked. */
static size_t rows_needed(const bwd_block *bk, unsigned char *need)
{
    const ref_ctx *ctx = bk->ctx;
    const nsx_problem *p = ctx->p;
    const size_t L = (size_t)p->L;
    unsigned char *key = calloc((size_t)p->n * L, 1);
    size_t marked = 0;
    memset(need, 0, (size_t)bk->Hg * L);
    if (!key) { /* every row, then */
        memset(need, 1, (size_t)bk->Hg * L);
        return (size_t)bk->Hg * L;
    }
    for (size_t e = 0; e < bk->nq; e++)
        if (!bk->done[e])
            need[e / (size_t)p->d] = 1; /* bwd_q_el: (hh L + i) d + l */
    for (size_t e = 0; e < bk->nk; e++)
        if (!bk->done[bk->nq + e])
            key[e / (size_t)p->d] = 1; /* bwd_k_el: (m L + j) d + l */
    for (size_t e = 0; e < bk->nv; e++)
        if (!bk->done[bk->nq + bk->nk + e])
            key[e / (size_t)p->dv] = 1;
    for (int i = 0; i < p->L; i++) {
        const int32_t *sel = ctx->sel ? ctx->sel + nsx_sel_at(p, bk->b, i, 0) : NULL;
        int any = 0;
        for (int m = 0; m < p->n && !any; m++)
            for (int j = 0; j < p->L && !any; j++) {
                if (!key[(size_t)m * L + j])
                    continue;
                int in_sel = 0;
                for (int r = 0; sel && r < p->sel.k; r++)
                    in_sel |= sel[r] == j;
                any = ref_allowed_dim(p, i, m, j, in_sel);
            }
        for (int hh = 0; hh < bk->Hg && any; hh++)
            need[(size_t)hh * L + i] = 1;
    }
    for (size_t r = 0; r < (size_t)bk->Hg * L; r++)
        marked += need[r];
    free(key);
    return marked;
}

/* Every block (b, g): its elements solved, then written out (E7g). */
/* The test hook of ref_bwd_enclosures: after the fast path's enclosures
   of a block, one MPFR round at prec, and visit. */
typedef struct bwd_probe {
    mpfr_prec_t prec;
    void (*visit)(void *arg, const ival *el, const double *encl, size_t count);
    void *arg;
} bwd_probe;

static int backward_blocks(ref_ctx *ctx, const double *dout, nsx_outputs *grads,
                           const nsx_ref_opts *opts, nsx_ref_stats *st, const bwd_probe *probe, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    int Hg = p->H / p->Hkv, rc = 0;
    bwd_block bk = {0};
    bk.ctx = ctx;
    bk.dout = dout;
    bk.Hg = Hg;
    bk.nq = (size_t)Hg * p->L * p->d;
    bk.nk = (size_t)p->n * p->L * p->d;
    bk.nv = (size_t)p->n * p->L * p->dv;
    size_t total = bk.nq + bk.nk + bk.nv;
    /* a coefficient is a product of at most n + 1 exact numbers: Q or dO
       (53 bits) and n - 1 or n factors K~ (prec_score_scratch bits each) or
       V~ (prec_W bits each); a product is exact at the sum of its factors'
       precisions */
    mpfr_prec_t fac = ctx->prec_score_scratch > ctx->prec_W ? ctx->prec_score_scratch : ctx->prec_W;
    bk.prec_x = 53 + (mpfr_prec_t)p->n * fac;
    ival *el = malloc(total * sizeof *el);
    double *res = malloc(total * sizeof *res);
    bk.done = malloc(total);
    if (!el || !res || !bk.done) {
        free(el), free(res), free(bk.done);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    for (size_t e = 0; e < total; e++)
        ival_init(&el[e], 2);
    bk.eq = el, bk.ek = el + bk.nq, bk.ev = el + bk.nq + bk.nk;
    bk.rq = res, bk.rk = res + bk.nq, bk.rv = res + bk.nq + bk.nk;
    mpfr_init2(bk.fac, fac);

    row_scratch rs = {0};
    ival_init(&rs.Dp, 2), ival_init(&rs.t, 2), ival_init(&rs.s, 2);
    ival_init(&rs.Z, 2), ival_init(&rs.lse, 2);
    mpfr_init2(rs.w, ctx->prec_W);
    mpfr_init2(rs.x, bk.prec_x);
    mpfr_init2(rs.diff, 2);
    mpfr_init2(rs.D, ctx->prec_T);
    ref_row row;
    ref_row_init(&row);
    ref_fast_bwd *fb = NULL;
    double *encl = NULL;
    unsigned char *rowneed = malloc((size_t)Hg * p->L);
    if (!rowneed)
        rc = nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    if (!rc && (opts->fast || probe))
        rc = ref_fast_bwd_init(&fb, ctx, dout, opts, err);
    if (!rc && probe) {
        if (!(encl = malloc(3 * total * sizeof *encl)))
            rc = nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
        else
            ref_fast_bwd_set_encl(fb, encl);
    }

    for (int b = 0; b < p->B && !rc; b++)
        for (int g = 0; g < p->Hkv && !rc; g++) {
            bk.b = b, bk.g = g, bk.h0 = g * Hg;
            if (probe) {
                nsx_ref_stats bs = {0};
                ref_fast_bwd_block(fb, b, g, grads, &bs, NULL, NULL);
                if ((rc = block_round(&bk, &row, &rs, probe->prec, 1, &bs, err)))
                    break;
                probe->visit(probe->arg, el, encl, total);
                continue;
            }
            /* the fast certified path first (ref/fast_bwd.c); MPFR for a
               block it leaves undecided */
            int preset = 0;
            if (fb) {
                memset(bk.done, 0, total);
                int fr = ref_fast_bwd_block(fb, b, g, grads, st, bk.done, res);
                if (fr == 1)
                    continue;
                preset = fr == 2; /* some elements decided: MPFR for the rest */
            }
            nsx_ref_stats bs = {0};
            size_t nrows = (size_t)Hg * p->L, ndone = 0;
            if (preset) {
                for (size_t e = 0; e < total; e++)
                    ndone += bk.done[e];
                nrows = rows_needed(&bk, rowneed);
                bk.rowneed = rowneed;
            }
            if (fb && opts->mpfr_tuples_max) {
                /* the bounded work of the forward's fast path: the rows
                   left to MPFR */
                uint64_t left = 0;
                for (int hh = 0; hh < Hg; hh++)
                    for (int i = 0; i < p->L; i++)
                        if (!bk.rowneed || rowneed[(size_t)hh * p->L + i])
                            left += nsx_slice_bound(p, i);
                if (left > opts->mpfr_tuples_max) {
                    rc = nsx_err_set(err, NSX_E_TOO_LARGE,
                                     "reference backward: the fast path left rows of batch %d, kv head %d "
                                     "(%llu tuples) to MPFR, over the limit of %llu",
                                     b, g, (unsigned long long)left, (unsigned long long)opts->mpfr_tuples_max);
                    break;
                }
            }
            rc = solve_block(&bk, &row, &rs, opts, &bs, preset, err);
            bk.rowneed = NULL;
            if (rc)
                break;
            bs.values += total;
            bs.fast_values += ndone;
            bs.mpfr_values += total - ndone;
            bs.mpfr_rows += nrows;
            bs.fast_rows += (uint64_t)Hg * p->L - nrows;
            nsx_ref_stats_add(st, &bs);
            /* E7g: dq of each head of the group; dk_m, dv_m of (b, g) */
            for (int hh = 0; hh < Hg; hh++)
                for (int i = 0; i < p->L; i++)
                    for (int l = 0; l < p->d; l++)
                        grads->dq[nsx_q_at(p, b, i, bk.h0 + hh, l)] = bk.rq[bwd_q_el(&bk, hh, i, l)];
            for (int m = 0; m < p->n; m++)
                for (int j = 0; j < p->L; j++) {
                    for (int l = 0; l < p->d; l++)
                        grads->dk[m][nsx_k_at(p, b, j, g, l)] = bk.rk[bwd_k_el(&bk, m, j, l)];
                    for (int c = 0; c < p->dv; c++)
                        grads->dv[m][nsx_v_at(p, b, j, g, c)] = bk.rv[bwd_v_el(&bk, m, j, c)];
                }
        }

    ref_fast_bwd_free(fb);
    free(encl);
    free(rowneed);
    ref_row_clear(&row);
    scratch_clear(&rs);
    ival_clear(&rs.Dp), ival_clear(&rs.t), ival_clear(&rs.s);
    ival_clear(&rs.Z), ival_clear(&rs.lse);
    mpfr_clears(rs.w, rs.x, rs.diff, rs.D, bk.fac, (mpfr_ptr)0);
    for (size_t e = 0; e < total; e++)
        ival_clear(&el[e]);
    free(el), free(res), free(bk.done);
    return rc;
}

int nsx_ref_backward(const nsx_problem *p, const nsx_inputs *in, nsx_outputs *out,
                     const nsx_ref_opts *opts, nsx_ref_stats *stats, nsx_err *err)
{
    nsx_ref_opts dflt = {0};
    nsx_ref_stats st = {0};
    char why[256];
    const int32_t *sel;
    int32_t *own_sel;
    int rc;

    if (nsx_problem_check(p, why, sizeof why))
        return nsx_err_set(err, NSX_E_INPUT, "%s", why);
    assert(in && out && out->dq);
    for (int m = 0; m < p->n; m++)
        assert(out->dk[m] && out->dv[m]);
    if (!opts)
        opts = &dflt;
    for (size_t r = 0; opts->skip && r < (size_t)p->B * p->L; r++)
        if (opts->skip[r])
            return nsx_err_set(err, NSX_E_UNSUPPORTED,
                               "reference backward: skipped rows are not supported (every row "
                               "contributes to dk and dv)");
    if (!in->dout)
        return nsx_err_set(err, NSX_E_INPUT, "reference backward: no upstream gradient (tensor do)");
    /* the selection, held constant (E7) */
    if ((rc = ref_selection(p, in, NULL, NULL, opts, &st, &sel, &own_sel, err)))
        return rc;

    ref_erange saved = ref_erange_widen();
    ref_ctx ctx;
    rc = ref_ctx_init(&ctx, p, in, sel, err);
    if (!rc)
        rc = backward_blocks(&ctx, in->dout, out, opts, &st, NULL, err);
    ref_ctx_clear(&ctx);
    ref_erange_restore(saved);
    free(own_sel);
    if (stats)
        *stats = st;
    return rc;
}

int ref_bwd_enclosures(const nsx_problem *p, const nsx_inputs *in, nsx_outputs *scratch, mpfr_prec_t prec,
                       void (*visit)(void *arg, const ival *el, const double *encl, size_t count), void *arg,
                       nsx_err *err)
{
    nsx_ref_opts opts = {.fast = 1, .threads = 2};
    nsx_ref_stats st = {0};
    const int32_t *sel;
    int32_t *own_sel;
    int rc = ref_selection(p, in, NULL, NULL, &opts, &st, &sel, &own_sel, err);
    if (rc)
        return rc;
    bwd_probe probe = {prec, visit, arg};
    ref_erange saved = ref_erange_widen();
    ref_ctx ctx;
    rc = ref_ctx_init(&ctx, p, in, sel, err);
    if (!rc)
        rc = backward_blocks(&ctx, in->dout, scratch, &opts, &st, &probe, err);
    ref_ctx_clear(&ctx);
    ref_erange_restore(saved);
    free(own_sel);
    return rc;
}
