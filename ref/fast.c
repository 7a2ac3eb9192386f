/*
 * The fast certified path: (E1)-(E6) per query row in binary64 and
 * double-double (ref/dd.h), with an error bound proven step by step; an
 * output is emitted when both ends of its enclosure round to the same
 * binary64, as in CORE-MATH's fast paths, and a row with any undecided
 * output goes to the MPFR reference (ref/forward.c), the spec.
 *
 * Per row (b, h, i), with the allowed keys of each dimension (E2) in lists:
 *   prefixes P = (j_1..j_{n-1}), inner keys j = j_n, tuples J = (P, j);
 *   u_P[l]  = Q[i,l] prod_{m<n} K~_m[j_m,l]          (K~ = K + kb, exact dd)
 *   T_raw   = sum_l u_P[l] K~_n[j,l]                  (E1, Lemma S)
 *   x_J     = s T_raw - M,  e_J = exp(x_J)           (M: any shift, here the
 *                                                     largest score estimated
 *                                                     in a first pass)
 *   Z       = sum_J e_J,   LSE = M + log Z            (E3)
 *   U_c     = sum_P f_P,c                             (E4-E6 numerators)
 *     product: f = vp_P,c * A_P,c,  vp = prod_{m<n} V~_m[j_m,c]
 *     sum:     f = vs_P,c * E_P + A_P,c,  vs = sum_{m<n} V~_m[j_m,c]
 *     A_P,c = sum_j e_J V~_n[j,c],  E_P = sum_j e_J   (Lemma B, blocks of NB)
 *   O_c     = out_scale * U_c / (den * Z)             (den = n for the mean)
 * Nothing of size L^n is held: a row streams its prefixes.
 *
 * The error terms, each named where it is made:
 *   Lemma S (scores): the Dot2-style sum of lane r (terms l = r mod 8, at
 *     most dl = ceil(d/8) of them) is within (8 + 3 dl (dl + 4)) u^2 A_r
 *     (Lemma B), and the lanes' combination adds 15 (dl + 12) u^2 A, where
 *     A = sum_l |u_h[l]| |K~_h[j,l]| <= A_T = sum_l |u_h[l]| kmax[l].
 *   Lemma B (a block of m terms (a_j)(b_j), a, b normalized dd): two_prod
 *     and two_sum are exact, so S + sum t = sum p; the cross terms c_j carry
 *     <= 6.5 u^2 |a_h b_h| + 3 eta each (Lemma M), and C's 2m roundings
 *     <= 2m (m + 3.3)(1.02) u^2 A: in all <= (8 + 3 m (m + 4)) u^2 A + 3 m eta.
 *   Lemma M, A, D: ref/dd.h.  fast_exp, fast_log_shift: ref/fast_exp.h, .c.
 *   The decision: decide() below.
 * Underflow: every multiplication may add eta = 2^-1075 absolutely (the
 * "eta" terms), amplified by the magnitudes that multiply it later (the
 * problem's uf_T and vamp); additions are exact in the subnormal range.
 * Overflow: every value and bound is checked finite before a decision.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpfr.h>

#include "ref/dd.h"
#include "ref/fast.h"
#include "ref/fast_exp.h"
#include "ref/fast_kern.h"
#include "ref/fast_int.h"

/* U2, ETA, NB, ZB, INFL, FLUSH_BOUND: ref/fast_int.h */

/*
 * The decision.  v = v.h + v.l and E >= 0 with the exact value X in
 * [v - E, v + E].  For any real y, nextbelow(RN(y)) <= y <= nextabove(RN(y)),
 * so lo <= v.l - E and hi >= v.l + E below; a = RN(v.h + lo) and
 * b = RN(v.h + hi) are the hardware sums, and RN is monotone: when a = b,
 * RN(X) = a.  Zeros are never decided (the MPFR path gives an exact zero
 * +0), nor anything not finite.
 */
int ref_fast_decide(dd v, double E, double *out)
{
    if (!(E >= 0) || !isfinite(E) || !isfinite(v.h) || !isfinite(v.l))
        return 0;
    double lo = nextafter(v.l - E, -INFINITY);
    double hi = nextafter(v.l + E, INFINITY);
    double a = v.h + lo, b = v.h + hi;
    if (a != b || a == 0)
        return 0;
    *out = a;
    return 1;
}

/* ---- the problem ---- */

static double *own_alloc(fprob *fp, size_t count)
{
    double *x = malloc((count ? count : 1) * sizeof *x);
    if (x)
        fp->own[fp->nown++] = x;
    return x;
}

/* X~ = X + bias as dd arrays: exact (two_sum); without a bias the input
   itself and a zero array. */
static int dd_of_biased(fprob *fp, const double *x, size_t count, double bias, const double *zeros,
                        const double **h, const double **l)
{
    if (bias == 0) {
        *h = x;
        *l = zeros;
        return 0;
    }
    double *hh = own_alloc(fp, count), *ll = own_alloc(fp, count);
    if (!hh || !ll)
        return -1;
    for (size_t t = 0; t < count; t++) {
        dd v = two_sum(x[t], bias);
        hh[t] = v.h;
        ll[t] = v.l;
    }
    *h = hh;
    *l = ll;
    return 0;
}

void ref_fast_prob_clear(fprob *fp)
{
    for (int t = 0; t < fp->nown; t++)
        free(fp->own[t]);
}

int ref_fast_prob_init(fprob *fp, const ref_ctx *ctx, const nsx_ref_opts *opts, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    const nsx_inputs *in = ctx->in;
    char why[160];
    memset(fp, 0, sizeof *fp);
    fp->p = p;
    fp->in = in;
    fp->ctx = ctx;
    fp->n = p->n;
    fp->d = p->d;
    fp->dv = p->dv;
    fp->product = p->reduce == NSX_REDUCE_PRODUCT;
    fp->den = ref_reduce_den(p);
    if (!(fp->kern = fast_kern_get(why, sizeof why)))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "%s", why);
    fast_exp_init();

    /* s: the binary64 score_scale (exact), or 1/sqrt(d) to 300 bits, then
       h = RN(s), l = RN(s - h): |s - h - l| <= u^2 |h| (1 + u) + 2^-299 |s| */
    if (p->score_scale_rsqrt_d) {
        mpfr_t x, r;
        mpfr_inits2(300, x, r, (mpfr_ptr)0);
        mpfr_set_ui(x, (unsigned long)p->d, MPFR_RNDN);
        mpfr_rec_sqrt(x, x, MPFR_RNDN);
        fp->s.h = mpfr_get_d(x, MPFR_RNDN);
        mpfr_sub_d(r, x, fp->s.h, MPFR_RNDN);
        fp->s.l = mpfr_get_d(r, MPFR_RNDN);
        mpfr_clears(x, r, (mpfr_ptr)0);
    } else {
        fp->s = (dd){p->score_scale, 0.0};
    }
    int shift = opts->fast_bound_shift;
    const char *env = getenv("NSX_FAST_BOUND_SHIFT");
    if (!shift && env)
        shift = atoi(env);
    if (shift < 0 || shift > 1000)
        shift = 0;
    fp->shift = ldexp(1.0, shift);

    size_t ksz = nsx_k_size(p), vsz = nsx_v_size(p);
    int zw = p->d > p->dv ? p->d : p->dv;
    double *zeros = own_alloc(fp, (size_t)zw);
    if (!zeros)
        goto nomem;
    memset(zeros, 0, (size_t)zw * sizeof *zeros);
    for (int m = 0; m < p->n; m++)
        if (dd_of_biased(fp, in->k[m], ksz, p->k_bias[m], zeros, &fp->kh[m], &fp->kl[m]) ||
            dd_of_biased(fp, in->v[m], vsz, p->v_bias[m], zeros, &fp->vh[m], &fp->vl[m]))
            goto nomem;
    return 0;
nomem:
    ref_fast_prob_clear(fp);
    return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
}

/* ---- a thread's scratch ---- */

void ref_fast_scratch_clear(fscratch *w)
{
    for (int m = 0; m < NSX_MAX_ORDER; m++)
        free(w->list[m]);
    free(w->inner), free(w->insel), free(w->uh), free(w->ul), free(w->ua);
    free(w->S), free(w->C), free(w->vabs), free(w->MagU);
    free(w->Ah), free(w->Al), free(w->vph), free(w->vpl);
    free(w->Ubh), free(w->Ubl), free(w->Uth), free(w->Utl);
    free(w->kmax);
    for (int m = 0; m < NSX_MAX_ORDER; m++)
        free(w->vmax[m]);
}

int ref_fast_scratch_init(fscratch *w, const fprob *fp)
{
    const nsx_problem *p = fp->p;
    size_t L = (size_t)p->L, d = (size_t)p->d, dv = (size_t)p->dv;
    memset(w, 0, sizeof *w);
    int ok = 1;
    for (int m = 0; m < p->n; m++) {
        ok &= (w->list[m] = malloc(L * sizeof(int))) != NULL;
        ok &= (w->vmax[m] = malloc(dv * sizeof(double))) != NULL;
    }
    ok &= (w->kmax = malloc(d * sizeof(double))) != NULL;
    w->inner = malloc(L * sizeof(int));
    w->insel = calloc(L, 1);
    w->uh = malloc(d * sizeof(double));
    w->ul = malloc(d * sizeof(double));
    w->ua = malloc(d * sizeof(double));
    w->S = malloc(dv * sizeof(double));
    w->C = malloc(dv * sizeof(double));
    w->vabs = malloc(dv * sizeof(double));
    w->MagU = malloc(dv * sizeof(double));
    double **dvs[] = {&w->Ah, &w->Al, &w->vph, &w->vpl, &w->Ubh, &w->Ubl, &w->Uth, &w->Utl};
    for (size_t t = 0; t < sizeof dvs / sizeof dvs[0]; t++)
        ok &= (*dvs[t] = malloc(dv * sizeof(double))) != NULL;
    if (!ok || !w->inner || !w->insel || !w->uh || !w->ul || !w->ua || !w->S || !w->C || !w->vabs ||
        !w->MagU) {
        ref_fast_scratch_clear(w);
        return -1;
    }
    return 0;
}

/* ---- one row ---- */

/* The next prefix (indices into the lists of dimensions 0..n-2), in
   lexicographic order; 0 after the last. */
int ref_fast_next_prefix(int *idx, const int *cnt, int len)
{
    for (int m = len - 1; m >= 0; m--) {
        if (++idx[m] < cnt[m])
            return 1;
        idx[m] = 0;
    }
    return 0;
}

/* The inner keys of prefix J[0..n-2]: list n-1 less the tuples that
   distinct removes (ref_distinct_ok on the whole tuple). */
int ref_fast_inner_keys(const fprob *fp, fscratch *w, int *J, const int **keys)
{
    const nsx_problem *p = fp->p;
    int last = p->n - 1, nin = 0;
    if (!p->distinct) {
        *keys = w->list[last];
        return w->cnt[last];
    }
    for (int t = 0; t < w->cnt[last]; t++) {
        J[last] = w->list[last][t];
        if (ref_distinct_ok(p, J))
            w->inner[nin++] = J[last];
    }
    *keys = w->inner;
    return nin;
}

int ref_fast_row_setup(const fprob *fp, fscratch *w, int b, int h, int i, frow *fr)
{
    const nsx_problem *p = fp->p;
    const ref_ctx *ctx = fp->ctx;
    const int n = p->n, d = p->d, dv = p->dv, last = n - 1;
    const int g = nsx_kv_head(p, h);
    const double *q = fp->in->q + nsx_q_at(p, b, i, h, 0);

    /* (E2) the allowed keys of each dimension */
    const int32_t *sel_row = ctx->sel ? ctx->sel + nsx_sel_at(p, b, i, 0) : NULL;
    if (sel_row)
        for (int r = 0; r < p->sel.k; r++)
            if (sel_row[r] >= 0 && sel_row[r] < p->L)
                w->insel[sel_row[r]] = 1;
    for (int m = 0; m < n; m++) {
        w->cnt[m] = 0;
        for (int j = 0; j < p->L; j++)
            if (ref_allowed_dim(p, i, m, j, w->insel[j]))
                w->list[m][w->cnt[m]++] = j;
    }
    if (sel_row)
        for (int r = 0; r < p->sel.k; r++)
            if (sel_row[r] >= 0 && sel_row[r] < p->L)
                w->insel[sel_row[r]] = 0;
    for (int m = 0; m < n; m++)
        if (w->cnt[m] == 0)
            return 0;
    /* The dimension with the most keys goes last, as the inner one: fewer
       prefixes, fuller blocks.  Every equation is symmetric in the order of
       the dimensions (the product and the sums of E1 and E5, the mask's
       terms, distinct), so the row's value is the same; only the rounding
       of the computation changes, and its bound is the same proof. */
    const double **kh = fr->kh, **kl = fr->kl, **vh = fr->vh, **vl = fr->vl;
    double *kb = fr->kb, *vb = fr->vb;
    int big = last;
    for (int m = 0; m < n; m++)
        if (w->cnt[m] > w->cnt[big])
            big = m;
    for (int m = 0; m < n; m++) {
        int src = m == big ? last : m == last ? big : m;
        kh[m] = fp->kh[src], kl[m] = fp->kl[src], vh[m] = fp->vh[src], vl[m] = fp->vl[src];
        kb[m] = p->k_bias[src], vb[m] = p->v_bias[src];
        fr->src[m] = src;
    }
    if (big != last) {
        int *tl = w->list[big], tc = w->cnt[big];
        w->list[big] = w->list[last], w->cnt[big] = w->cnt[last];
        w->list[last] = tl, w->cnt[last] = tc;
    }
    /* a NaN or an infinity that a tuple may read: MPFR says what it means */
    if (!ctx->qfin[((size_t)b * p->L + i) * p->H + h])
        return -1;
    for (int m = 0; m < n; m++)
        for (int t = 0; t < w->cnt[m]; t++) {
            size_t r = ((size_t)b * p->L + w->list[m][t]) * p->Hkv + g;
            if (!ctx->kfin[m][r] || !ctx->vfin[m][r])
                return -1;
        }

    /* The row's maxima: |Q|, and per dimension the largest |K~_m,h| and
       |V~_m,h| over its allowed keys (kmax[l] for the inner dimension, per
       l; vmax[m][c] per c); times 1 + 2^-51, they bound |X~_h| + |X~_l|.
       kamp, vamp: the largest product of later factors that can multiply
       an underflow term (eta) of a score or of a value. */
    double kamp = 1, vamp = n;
    for (int l = 0; l < d; l++)
        kamp = fabs(q[l]) > kamp ? fabs(q[l]) : kamp;
    for (int m = 0; m < n; m++) {
        double km = 1, vm = 1;
        for (int c = 0; c < dv; c++)
            w->vmax[m][c] = 0;
        if (m == last)
            for (int l = 0; l < d; l++)
                w->kmax[l] = 0;
        for (int t = 0; t < w->cnt[m]; t++) {
            const double *kr = kh[m] + nsx_k_at(p, b, w->list[m][t], g, 0);
            const double *vr = vh[m] + nsx_v_at(p, b, w->list[m][t], g, 0);
            for (int l = 0; l < d; l++) {
                double a = fabs(kr[l]);
                km = a > km ? a : km;
                if (m == last && a > w->kmax[l])
                    w->kmax[l] = a;
            }
            for (int c = 0; c < dv; c++)
                if (fabs(vr[c]) > w->vmax[m][c])
                    w->vmax[m][c] = fabs(vr[c]);
        }
        for (int c = 0; c < dv; c++) {
            w->vmax[m][c] *= 1 + 0x1p-51;
            vm = w->vmax[m][c] > vm ? w->vmax[m][c] : vm;
        }
        kamp *= km * (1 + 0x1p-51);
        vamp *= vm;
    }
    for (int l = 0; l < d; l++)
        w->kmax[l] *= 1 + 0x1p-51;
    fr->kamp = kamp;
    fr->vamp = vamp;
    return 1;
}

void ref_fast_row_max(const fprob *fp, fscratch *w, const frow *fr, int b, int h, int i, double *M_,
                      uint64_t *N_, uint64_t *NP_, int *max_in_, int *Jmax)
{
    const nsx_problem *p = fp->p;
    const int n = p->n, d = p->d, last = n - 1;
    const int g = nsx_kv_head(p, h);
    const double *q = fp->in->q + nsx_q_at(p, b, i, h, 0);
    const double *const *kh = fr->kh;

    /* Pass 1: M, the largest score, estimated in binary64 (no bound is
       needed: any M is an exact shift), and the counts. */
    double M = -INFINITY;
    uint64_t N = 0, NP = 0;
    int max_in = 0, J[NSX_MAX_ORDER], idx[NSX_MAX_ORDER] = {0};
    const int *keys;
    do {
        for (int m = 0; m < last; m++)
            J[m] = w->list[m][idx[m]];
        int nin = ref_fast_inner_keys(fp, w, J, &keys);
        if (nin == 0)
            continue;
        NP++;
        N += (uint64_t)nin;
        if (nin > max_in)
            max_in = nin;
        for (int l = 0; l < d; l++) {
            double x = q[l];
            for (int m = 0; m < last; m++)
                x *= kh[m][nsx_k_at(p, b, J[m], g, l)];
            w->ua[l] = x;
        }
        for (int t0 = 0; t0 < nin; t0 += NB) {
            int nb = nin - t0 < NB ? nin - t0 : NB;
            for (int t = 0; t < nb; t++)
                w->krh[t] = kh[last] + nsx_k_at(p, b, keys[t0 + t], g, 0);
            double M0 = M;
            fp->kern->max_score(w->ua, d, w->krh, nb, fp->s.h, &M);
            if (Jmax && M > M0) {
                /* a key of this block attains the new M: find it, one key
                   at a time (each key's estimate is computed alone, so the
                   same value) */
                for (int t = 0; t < nb; t++) {
                    double x = -INFINITY;
                    fp->kern->max_score(w->ua, d, w->krh + t, 1, fp->s.h, &x);
                    if (x == M) {
                        for (int m = 0; m < last; m++)
                            Jmax[m] = J[m];
                        Jmax[last] = keys[t0 + t];
                        break;
                    }
                }
            }
        }
    } while (ref_fast_next_prefix(idx, w->cnt, last));
    *M_ = M;
    *N_ = N;
    *NP_ = NP;
    *max_in_ = max_in;
}

typedef struct row_out {
    uint64_t N;    /* allowed tuples */
    int empty;
    double *encl;  /* NULL, or 3 (dv + 1) doubles: each output's enclosure
                      (v.h, v.l, E), LSE last, recorded whether decided or
                      not (tests: ref_fast_enclosures) */
    int reached;   /* the enclosures were computed */
} row_out;

/* Row (b, h, i): 1 when every output is decided (o[0..dv-1], *lse written),
   0 when the row goes to MPFR. */
static int fast_row(const fprob *fp, fscratch *w, int b, int h, int i, double *o, double *lse,
                    row_out *ro)
{
    const nsx_problem *p = fp->p;
    const int n = p->n, d = p->d, dv = p->dv, last = n - 1;
    const int g = nsx_kv_head(p, h);
    const double *q = fp->in->q + nsx_q_at(p, b, i, h, 0);
    int J[NSX_MAX_ORDER], idx[NSX_MAX_ORDER] = {0};
    const int *keys;
    ro->N = 0;
    ro->empty = 0;
    ro->reached = 0;

    frow fr;
    int su = ref_fast_row_setup(fp, w, b, h, i, &fr);
    if (su == 0)
        goto empty;
    if (su < 0)
        return 0;
    const double *const *kh = fr.kh, *const *kl = fr.kl, *const *vh = fr.vh, *const *vl = fr.vl;
    const double *kb = fr.kb, *vb = fr.vb;
    const double kamp = fr.kamp, vamp = fr.vamp;
    /* a score's underflow terms: per l, n dd multiplications (3 eta each)
       and Lemma B's 3 eta, times the later factors; d terms; times |s| */
    const double uf_T = 8.0 * (n + 1) * d * ETA * kamp * (2 * fabs(fp->s.h) + 1);


    double M;
    uint64_t N, NP;
    int max_in;
    ref_fast_row_max(fp, w, &fr, b, h, i, &M, &N, &NP, &max_in, NULL);
    ro->N = N;
    if (N == 0)
        goto empty;
    if (!isfinite(M))
        return 0;

    /* Pass 2: the certified sums. */
    const double *kmax = w->kmax;
    const double *vmaxn = w->vmax[last];
    const int dl = (d + FAST_LANES - 1) / FAST_LANES;
    /* Lemma S's constant, and u's relative error: n - 1 products (Lemma M) */
    const double score_k = (8.0 + 3.0 * dl * (dl + 4) + 15.0 * (dl + 12)) * U2;
    const double eps_u = (n - 1) * DD_MUL_REL * 1.01;
    dd Zb = {0, 0}, Zt = {0, 0};
    double dxmax = 0;
    unsigned long nflush = 0;
    int nbpref = 0;
    for (int c = 0; c < dv; c++)
        w->Ubh[c] = w->Ubl[c] = w->Uth[c] = w->Utl[c] = w->MagU[c] = 0;
    memset(idx, 0, sizeof idx);
    do {
        for (int m = 0; m < last; m++)
            J[m] = w->list[m][idx[m]];
        int nin = ref_fast_inner_keys(fp, w, J, &keys);
        if (nin == 0)
            continue;
        /* u_P[l] = Q[l] prod_{m<n} K~_m[j_m,l] (Lemma M, n - 1 times):
           eps_u |u_h| + eta terms; AT = sum_l |u_h[l]| kmax[l] */
        for (int m = 0; m < last; m++) {
            size_t ka = nsx_k_at(p, b, J[m], g, 0), va = nsx_v_at(p, b, J[m], g, 0);
            w->kph[m] = kh[m] + ka;
            w->kpl[m] = kl[m] + (kb[m] != 0 ? ka : 0);
            w->vrowh[m] = vh[m] + va;
            w->vrowl[m] = vl[m] + (vb[m] != 0 ? va : 0);
        }
        double AT = fp->kern->prefix_u(q, d, w->kph, w->kpl, last, kmax, w->uh, w->ul);
        /* |T^_raw - T_raw| <= dT for every inner key (Lemma S, u's error,
           underflow) */
        const double dT = (eps_u + score_k) * AT * INFL + uf_T;
        /* the prefix's value factor: vp = prod_{m<n} V~_m (Lemma M, n - 2
           times), or vs = sum_{m<n} V~_m (Lemma A) with vabs = sum |V~_m| */
        fp->kern->prefix_v(fp->product, dv, w->vrowh, w->vrowl, last, w->vph, w->vpl, w->vabs);
        for (int c = 0; c < dv; c++)
            w->Ah[c] = w->Al[c] = 0;
        dd EP = {0, 0};
        for (int t0 = 0; t0 < nin; t0 += NB) {
            int nb = nin - t0 < NB ? nin - t0 : NB;
            for (int t = 0; t < nb; t++) {
                size_t ka = nsx_k_at(p, b, keys[t0 + t], g, 0), va = nsx_v_at(p, b, keys[t0 + t], g, 0);
                w->krh[t] = kh[last] + ka;
                w->krl[t] = kl[last] + (kb[last] != 0 ? ka : 0);
                w->vrh[t] = vh[last] + va;
                w->vrl[t] = vl[last] + (vb[last] != 0 ? va : 0);
            }
            /* (E1) T_raw, Lemma S */
            fp->kern->scores(w->uh, w->ul, d, w->krh, w->krl, nb, w->Th, w->Tl);
            /* (E3, E4) x = s T_raw - M: Lemma M (7u^2 |sT_h| + 3 eta), s's own
               2^-104 |s_h| |T|, one rounding of the low parts
               (1.02 u^2 (|x_h| + |sT_h|)), and |s| dT:
               |x^ - x| <= dx = 1.02 |s_h| dT + 13 u^2 (|sT_h| + |x_h|) + 4 eta;
               e_J = fast_exp(x) (FAST_EXP_REL), or dropped below -FAST_X_CUT:
               e_J <= exp(-FAST_X_CUT + dx) <= FLUSH_BOUND */
            if (fp->kern->weights(w->Th, w->Tl, nb, fp->s.h, fp->s.l, M, 1.02 * fabs(fp->s.h) * dT,
                                  w->eh, w->el, &dxmax, &nflush))
                return 0; /* NaN, or a score far above the estimated max */
            double SE = 0, CE = 0;
            for (int t = 0; t < nb; t++) {
                /* E_P: Lemma B with b = 1 (the products are exact) */
                double s1 = SE + w->eh[t], bb = s1 - SE;
                double tt = (SE - (s1 - bb)) + (w->eh[t] - bb);
                SE = s1;
                CE = (CE + tt) + w->el[t];
            }
            EP = dd_add(EP, two_sum(SE, CE)); /* Lemma A */
            /* (E5, E6) A_c += sum_j e_j V~_n[j,c]: Lemma B, then Lemma A */
            fp->kern->values(w->eh, w->el, nb, w->vrh, w->vrl, dv, w->S, w->C, w->Ah, w->Al);
        }
        /* the prefix's terms into the row: Lemma M (and A for the sum
           reducer) and Lemma A; MagU bounds sum_J e_J |W_J,c| */
        fp->kern->prefix_end(fp->product, dv, w->vph, w->vpl, w->Ah, w->Al, EP.h, EP.l, w->vabs, vmaxn,
                             w->Ubh, w->Ubl, w->MagU);
        Zb = dd_add(Zb, EP);
        if (++nbpref == ZB) {
            /* two levels: each first-level add is bounded by its own
               block's magnitude (Lemma A) */
            for (int c = 0; c < dv; c++) {
                dd u = dd_add((dd){w->Uth[c], w->Utl[c]}, (dd){w->Ubh[c], w->Ubl[c]});
                w->Uth[c] = u.h;
                w->Utl[c] = u.l;
                w->Ubh[c] = w->Ubl[c] = 0;
            }
            Zt = dd_add(Zt, Zb);
            Zb = (dd){0, 0};
            nbpref = 0;
        }
    } while (ref_fast_next_prefix(idx, w->cnt, last));
    for (int c = 0; c < dv; c++) {
        dd u = dd_add((dd){w->Uth[c], w->Utl[c]}, (dd){w->Ubh[c], w->Ubl[c]});
        w->Uth[c] = u.h;
        w->Utl[c] = u.l;
    }
    dd Z = dd_add(Zt, Zb);

    /* The bounds.  rho: a weight's relative error, from fast_exp and the
       score's dx: |e^ - e| <= e^ (FAST_EXP_REL + e^dx - 1) / (1 - FAST_EXP_REL),
       with e^dx - 1 <= dx (1 + dx) for dx <= 1. */
    if (!(dxmax <= 0x1p-20))
        return 0;
    const fterms ft = ref_fast_terms(dxmax, max_in, N, NP);
    const double rho = ft.rho, k_in = ft.k_in, k_row = ft.k_row, uf = ft.uf;
    const double Zh = Z.h;
    const double EZ = ref_fast_z_err(&ft, nflush, Zh);
    if (!(Zh > 2 * EZ))
        return 0;

    /* (E3) LSE = M + log Z: log's error, and Z's propagated (log is
       1/Z-Lipschitz on [Zh - EZ, ...]) */
    double elog;
    dd L = fast_log_shift(Z, M, &elog);
    double EL = (EZ / (Zh - EZ) * INFL + elog) * INFL * fp->shift;
    int all = 1;
    ro->reached = 1;
    if (ro->encl) {
        ro->encl[3 * dv] = L.h, ro->encl[3 * dv + 1] = L.l, ro->encl[3 * dv + 2] = EL;
    }
    if (!ref_fast_decide(L, EL, lse)) {
        if (!ro->encl)
            return 0;
        all = 0;
    }

    /* (E6) O_c = out_scale U_c / (den Z) */
    const double k_v = n * DD_MUL_REL * 1.01;
    for (int c = 0; c < dv; c++) {
        /* An exact zero, which ref_fast_decide() never decides, is decided when
           it is known exactly: out_scale = 0 (O = 0 times the finite
           U / (den Z)), or every W_J,c = 0, seen in the maxima vmax[m][c]
           of |V~_m[j,c].h| over the allowed keys of dimension m (every
           tuple takes its key of dimension m from them): a maximum of 0
           means every V~_m[j,c] = 0 exactly (two_sum's sum is 0 only for an
           exact 0, and its error term is then 0; without a bias V~ is the
           input).  The product reducer needs one such dimension, the sum
           and the mean all of them.  The MPFR path rounds an exact zero to
           +0 (ref/ival.c), so this is the same value.  (Not under the
           test hook fast_bound_shift, which sends rows to MPFR, nor when
           the enclosures are recorded for the tests.) */
        int zero = p->out_scale == 0 || !fp->product;
        for (int m = 0; p->out_scale != 0 && m < n; m++)
            zero = fp->product ? zero || w->vmax[m][c] == 0 : zero && w->vmax[m][c] == 0;
        if (zero && fp->shift == 1 && !ro->encl) {
            o[c] = 0.0;
            continue;
        }
        double wmax = fp->product ? 1.0 : 0.0;
        for (int m = 0; m < n; m++) {
            double v = w->vmax[m][c];
            wmax = fp->product ? wmax * v : wmax + v;
        }
        /* U's error: the weights (rho), the blocks (k_in), vp or vs (k_v),
           the prefix product and sum (12 u^2), the row's adds (k_row), the
           dropped tuples, underflow */
        double EU = (rho + k_in + k_v + 12 * U2 + k_row) * w->MagU[c] * INFL * INFL +
                    (double)nflush * FLUSH_BOUND * wmax * INFL + uf * vamp;
        dd U = {w->Uth[c], w->Utl[c]};
        dd qd = dd_div(U, Z); /* Lemma D */
        double Eq = (EU / (Zh - EZ) + fabs(U.h) * (1 + 0x1p-50) * EZ / (Zh * (Zh - EZ))) * INFL +
                    DD_DIV_REL * fabs(qd.h) + 4 * ETA / Zh;
        dd ov = dd_mul_d(qd, p->out_scale); /* Lemma M */
        double Eo = fabs(p->out_scale) * Eq * INFL + DD_MUL_REL * fabs(ov.h) + 3 * ETA;
        if (fp->den > 1) {
            ov = dd_div(ov, (dd){(double)fp->den, 0.0}); /* Lemma D */
            Eo = Eo / (double)fp->den * INFL + DD_DIV_REL * fabs(ov.h) + 4 * ETA;
        }
        Eo *= INFL * fp->shift;
        if (ro->encl) {
            ro->encl[3 * c] = ov.h, ro->encl[3 * c + 1] = ov.l, ro->encl[3 * c + 2] = Eo;
        }
        if (!ref_fast_decide(ov, Eo, &o[c])) {
            if (!ro->encl)
                return 0;
            all = 0;
        }
    }
    return all;
empty:
    /* (E3, E6) an empty slice: LSE = -inf, O = +0 */
    for (int c = 0; c < dv; c++)
        o[c] = 0.0;
    *lse = -INFINITY;
    ro->empty = 1;
    return 1;
}

/* ---- the rows, in threads ---- */

typedef struct fshared {
    const fprob *fp;
    nsx_outputs *out;
    const nsx_ref_opts *opts;
    unsigned char *todo;
    atomic_size_t next;
    size_t rows;
    pthread_mutex_t lock;
    nsx_ref_stats st;
    double next_report;       /* the monotonic second of the next progress call */
} fshared;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *worker(void *arg)
{
    fshared *sh = arg;
    const fprob *fp = sh->fp;
    const nsx_problem *p = fp->p;
    nsx_ref_stats st = {0};
    fscratch w;
    if (ref_fast_scratch_init(&w, fp))
        return NULL; /* out of memory: this thread's rows go to MPFR */
    for (;;) {
        size_t r = atomic_fetch_add(&sh->next, 1);
        if (r >= sh->rows)
            break;
        /* todo[r] stays 1 (MPFR) unless the row is decided or skipped */
        if (sh->opts->progress && (r & 63) == 0) {
            double t = now_s();
            pthread_mutex_lock(&sh->lock);
            if (t >= sh->next_report) {
                sh->next_report = t + 10;
                sh->opts->progress(sh->opts->progress_arg, r, sh->rows);
            }
            pthread_mutex_unlock(&sh->lock);
        }
        int i = (int)(r % (size_t)p->L), bh = (int)(r / (size_t)p->L);
        int h = bh % p->H, b = bh / p->H;
        double *o = sh->out->o + nsx_o_at(p, b, i, h, 0);
        double *lse = sh->out->lse + nsx_lse_at(p, b, h, i);
        if (sh->opts->skip && sh->opts->skip[(size_t)b * p->L + i]) {
            /* as the MPFR path: a row a leak pair leaves unjudged */
            for (int c = 0; c < p->dv; c++)
                o[c] = NAN;
            *lse = NAN;
            st.skipped_rows++;
            sh->todo[r] = 0;
            continue;
        }
        row_out ro = {0};
        if (fast_row(fp, &w, b, h, i, o, lse, &ro)) {
            st.tuples += ro.N;
            st.fast_tuples += ro.N;
            st.values += (uint64_t)p->dv + 1;
            st.fast_values += (uint64_t)p->dv + 1;
            st.fast_rows++;
            sh->todo[r] = 0;
        }
    }
    ref_fast_scratch_clear(&w);
    pthread_mutex_lock(&sh->lock);
    sh->st.tuples += st.tuples;
    sh->st.fast_tuples += st.fast_tuples;
    sh->st.values += st.values;
    sh->st.fast_values += st.fast_values;
    sh->st.fast_rows += st.fast_rows;
    sh->st.skipped_rows += st.skipped_rows;
    pthread_mutex_unlock(&sh->lock);
    return NULL;
}

int ref_fast_forward(const ref_ctx *ctx, nsx_outputs *out, const nsx_ref_opts *opts,
                     nsx_ref_stats *st, unsigned char *todo, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    fprob fp;
    int rc = ref_fast_prob_init(&fp, ctx, opts, err);
    if (rc)
        return rc;
    fshared sh = {.fp = &fp, .out = out, .opts = opts, .todo = todo};
    sh.rows = (size_t)p->B * p->H * p->L;
    memset(todo, 1, sh.rows);
    sh.next_report = now_s() + 10;
    atomic_init(&sh.next, 0);
    pthread_mutex_init(&sh.lock, NULL);
    long nthreads = opts->threads > 0 ? opts->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    if ((size_t)nthreads > sh.rows)
        nthreads = (long)sh.rows;
    if (nthreads > 256)
        nthreads = 256;
    pthread_t tid[256];
    long started = 0;
    for (long t = 1; t < nthreads; t++, started++)
        if (pthread_create(&tid[t], NULL, worker, &sh))
            break;
    worker(&sh); /* this thread too; rows left by failed starts are taken here */
    for (long t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&sh.lock);
    ref_fast_prob_clear(&fp);
    st->tuples += sh.st.tuples;
    st->fast_tuples += sh.st.fast_tuples;
    st->values += sh.st.values;
    st->fast_values += sh.st.fast_values;
    st->fast_rows += sh.st.fast_rows;
    st->skipped_rows += sh.st.skipped_rows;
    return 0;
}

int ref_fast_enclosures(const ref_ctx *ctx, const nsx_ref_opts *opts, int b, int h, int i,
                        double *encl, nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    fprob fp;
    fscratch w;
    int rc = ref_fast_prob_init(&fp, ctx, opts, err);
    if (rc)
        return -rc;
    if (ref_fast_scratch_init(&w, &fp)) {
        ref_fast_prob_clear(&fp);
        return -nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    double *o = malloc((size_t)p->dv * sizeof *o), lse;
    row_out ro = {.encl = encl};
    if (o)
        fast_row(&fp, &w, b, h, i, o, &lse, &ro);
    free(o);
    ref_fast_scratch_clear(&w);
    ref_fast_prob_clear(&fp);
    return o ? ro.reached : -nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
}
