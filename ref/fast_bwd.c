/*
 * The fast certified backward (E7): the gradients dq, dk_m, dv_m in
 * binary64 and double-double (ref/dd.h) with an error bound proven step by
 * step, as the forward's fast path (ref/fast.c) does for O and LSE.  Every
 * element gets an enclosure [v - E, v + E] of its exact value; it is
 * emitted when both ends round to the same binary64 (ref_fast_decide); the
 * elements left undecided go to the MPFR backward, the spec, which visits
 * only the rows of the block (b, kv head g: its unit) that can reach them
 * (ref/backward.c, rows_needed).
 *
 * Per row (b, h, i) of the block, f = out_scale / den, with the forward's
 * prefixes P = (j_1..j_{n-1}) and inner keys j (tuples J = (P, j)):
 *   x_J   = s T_raw - M,  e_J = exp(x_J)                  (as ref/fast.c)
 *   Z     = sum_J e_J,  A_J = e_J / Z                       (E3, E4)
 *   p_J   = sum_c dO_c w_Jc  (w: E5's numerator), so dP_J = f p_J  (E7a)
 *   D'    = sum_K A_K (p_K - p*), so Delta = f (p* + D')  (E7b)
 *   dT'_J = A_J ((p_J - p*) - D'), so dT_J = f dT'_J        (E7c)
 * (p* = p_J* of a tuple of maximal score: the centre that keeps nearly
 * one-hot rows accurate, as ref/backward.c does over MPFR)
 * and, with G_P[l] = sum_j dT'_J K~_n[j,l] and H_P[c] = sum_j A_J V~_n[j,c]
 * (E_P = sum_j A_J for sum and mean):
 *   (E7d) dQ[i,l]      = s f sum_P cq_P[l] G_P[l],       cq_P = prod_{m<n} K~_m[j_m]
 *   (E7e) dK_n[j,l]    = s f sum dT'_J u_P[l],           u_P  = Q prod_{m<n} K~_m[j_m]
 *         dK_m[j_m,l]  = s f sum_P ck_m,P[l] G_P[l],     ck_m = Q prod_{m'<n, m' != m} K~_m'
 *   (E7f) dV_n[j,c]    = f' sum A_J w_P[c],              w_P  = dO prod_{m<n} V~_m (product)
 *                                                          or dO (sum, mean)
 *         dV_m[j_m,c]  = f' sum_P cv_m,P[c] H_P[c],      cv_m = dO prod_{m'<n, m' != m} V~_m'
 *                        (sum, mean: dO_c E_P)
 * with f' = out_scale / den (E7f's dW_m = 1/n of the mean), the sums over
 * the rows and the heads of the group (E7g) in per-thread accumulators.
 * Nothing of size L^n is held: a row streams its prefixes three times (pass
 * 1: M, ref/fast.c; pass 2: Z and D'; pass 3: the gradients, the scores
 * and weights recomputed bit for bit by the same kernel calls).
 *
 * The error terms, each named where it is made (u = 2^-53, eta = 2^-1074):
 *   Lemmas M, A, D: ref/dd.h; Lemmas S, B and the forward's Z: ref/fast.c.
 *   Lemma R (running sums, racc_add): an element's accumulator (S, C, E);
 *     adding a term t = (th, tl) with |t - exact term| <= te: two_sum(S, th)
 *     = (s', e) exactly, c1 = RN(tl + e), C' = RN(C + c1); the exact sum
 *     S' + C' differs from S + C + th + tl by two roundings, at most
 *     u (|c1| + |C'|) (additions are exact in the subnormal range); so
 *     E' = E + te + u (|c1| + |C'|) + 2 eta bounds the error (the 2 eta:
 *     u |x| may itself underflow).  The value is two_sum(S, C), exact.
 *   Every dd here comes out of a two_sum or fast_two_sum (ref/dd.h) or is
 *     exact with a zero low part, so |x_l| <= u |x_h| (half an ulp; exact
 *     in the subnormal range) and |x^| <= |x_h| (1 + 2^-52) ("UP").
 *   Lemma P (a product term x y of two enclosed factors): with x^, y^ the
 *     computed dd and |x^ - x| <= Ex, |y| <= ya, t = dd_mul(x^, y^):
 *     |t - x y| <= |t - x^ y^| + |x^| |y^ - y| + |y| |x^ - x|
 *              <= 7 u^2 |t_h| + 3 eta + |x_h| (1 + 2^-52) Ey + ya Ex.
 *   Bounds computed in binary64: every bound is a sum of products of
 *     nonnegative numbers.  A bound made of at most 16 roundings is
 *     multiplied by 1 + 2^-50 (>= (1 + u)^16) and gets 4 eta for underflow
 *     ("BI" below); an accumulated E, a sum of at most 3 T roundings for T
 *     terms, is multiplied by 1 + (3 T + 64) 2^-52 before the decision.
 *   Underflow (eta terms): each dd product adds at most 3 eta (Lemma M),
 *     written where it is made; a chain of products (u_P, cq, ck, w_P, cv)
 *     has its eta terms multiplied by the later factors, at most the row's
 *     amplitudes kamp (|Q| and every |K~_m|) and vamp |dO|max.
 *   Overflow: every value and bound is checked finite by the decision.
 *   Exact zeros: an element that no allowed tuple touches keeps S = C = E
 *     = 0 and is exactly 0 (+0, as the MPFR path rounds an exact zero); a
 *     row of one allowed tuple has A = 1 and dT = 0 exactly (Delta = dP),
 *     and a row whose dO is all zero adds exact zeros: both add nothing.
 *     Every other zero is undecided (MPFR decides it).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ref/dd.h"
#include "ref/fast.h"
#include "ref/fast_exp.h"
#include "ref/fast_int.h"
#include "ref/fast_kern.h"

/* U2, ETA, NB, ZB, INFL, FLUSH_BOUND: ref/fast_int.h */
#define BI (1 + 0x1p-50)   /* a bound of at most 16 roundings */
#define UP (1 + 0x1p-52)   /* |x_h + x_l| <= |x_h| UP for a normalized dd */
#define KM (7 * 0x1p-106)  /* Lemma M */

/* Lemma R, one term (the kernels' acc_axpy and acc_vmul are the same
   steps per element, ref/fast_kern.inc) */
static inline void racc_add(double *S, double *C, double *E, dd t, double te)
{
    double s = *S + t.h, bb = s - *S;
    double e = (*S - (s - bb)) + (t.h - bb);
    double c1 = t.l + e;
    double c = *C + c1;
    *S = s;
    *C = c;
    *E = *E + te + (DD_U * (fabs(c1) + fabs(c)) + 2 * ETA);
}

/* An enclosed vector: values (h, l), error bounds E, and a >= |exact|. */
typedef struct evec {
    double *h, *l, *E, *a;
} evec;

static int evec_alloc(evec *v, size_t len)
{
    v->h = malloc(len * sizeof(double));
    v->l = malloc(len * sizeof(double));
    v->E = malloc(len * sizeof(double));
    v->a = malloc(len * sizeof(double));
    return v->h && v->l && v->E && v->a ? 0 : -1;
}

static void evec_free(evec *v)
{
    free(v->h), free(v->l), free(v->E), free(v->a);
}

/* acc[k] += a x[k], k < len (Lemma P with the scalar a, Lemma R) */
static void acc_axpy(const fprob *fp, double *S, double *C, double *E, dd a, double Ea, const evec *x, int len)
{
    fp->kern->acc_axpy(S, C, E, a.h, a.l, Ea, x->h, x->l, x->E, x->a, len);
}

/* acc[k] += x[k] y[k], k < len (Lemma P, Lemma R) */
static void acc_vmul(const fprob *fp, double *S, double *C, double *E, const evec *x, const evec *y, int len)
{
    fp->kern->acc_vmul(S, C, E, x->h, x->l, x->E, y->h, y->l, y->E, y->a, len);
}

/* x = first (x) the nf factors f[0..nf-1] (dd arrays fh, fl), Lemma M nf
   times: |x^ - x| <= nf 7 u^2 1.01 |x_h| + uf (uf: the chain's eta terms
   times the later factors, from the caller); a = |x_h| UP + E. */
static void evec_chain(evec *x, const double *firsth, const double *firstl, const double *const *fh,
                       const double *const *fl, int nf, int len, double uf)
{
    for (int k = 0; k < len; k++) {
        x->h[k] = firsth[k];
        x->l[k] = firstl ? firstl[k] : 0.0;
    }
    for (int f = 0; f < nf; f++)
        for (int k = 0; k < len; k++) {
            dd r = dd_mul((dd){x->h[k], x->l[k]}, (dd){fh[f][k], fl[f][k]});
            x->h[k] = r.h;
            x->l[k] = r.l;
        }
    const double rel = nf * DD_MUL_REL * 1.01;
    for (int k = 0; k < len; k++) {
        x->E[k] = nf ? (rel * fabs(x->h[k]) + uf) * BI : 0.0;
        x->a[k] = (fabs(x->h[k]) * UP + x->E[k]) * BI;
    }
}

/* The problem's backward state. */
typedef struct bthread bthread;
struct ref_fast_bwd {
    fprob fp;
    const double *dout;
    dd sf;                 /* s out_scale / den, |sf^ - sf| <= Esf */
    double Esf;
    dd fv;                 /* out_scale / den, |fv^ - fv| <= Efv */
    double Efv;
    int nthreads;
    bthread *th;
    /* the current block */
    int b, g, h0, Hg;
    size_t rows;
    atomic_size_t next;
    atomic_int fail;       /* a row stopped before its enclosures */
    atomic_int undec;      /* a row's dq has an undecided element */
    nsx_outputs *grads;
    double *encl;          /* tests: NULL, or each element's (v.h, v.l, E) */
    unsigned char *done;   /* NULL, or per element (the MPFR block's order):
                              decided, with its value in res */
    double *res;
    /* progress (opts->progress): rows of earlier blocks, the next report */
    const nsx_ref_opts *opts;
    uint64_t rows_before;
    double next_report;
    pthread_mutex_t lock;
};

/* One thread's scratch and accumulators. */
struct bthread {
    struct ref_fast_bwd *fb;
    fscratch w;
    int ok;
    /* dk: n L d, dv: n L dv accumulators (Lemma R), by problem dimension */
    double *kS, *kC, *kE, *vS, *vC, *vE;
    double *qS, *qC, *qE;            /* the row's dq, d */
    evec u, cq, ck[NSX_MAX_ORDER], wP, cv[NSX_MAX_ORDER], G, H, dO;
    double *Sx, *Cx;                 /* Lemma B scratch, max(d, dv) */
    double *rh[NSX_MAX_ORDER], *rl[NSX_MAX_ORDER]; /* sum reducer: r_m by key position */
    double rmax[NSX_MAX_ORDER], Er[NSX_MAX_ORDER];
    double ph[NB], pl[NB], Ah[NB], Al[NB], EA[NB], dTh[NB], dTl[NB], EdT[NB];
    const double *pr[NB], *plr[NB];
    uint64_t N, NP;                  /* the block's tuples and prefixes, this thread */
};

static void bthread_free(bthread *t)
{
    ref_fast_scratch_clear(&t->w);
    free(t->kS), free(t->kC), free(t->kE), free(t->vS), free(t->vC), free(t->vE);
    free(t->qS), free(t->qC), free(t->qE), free(t->Sx), free(t->Cx);
    evec_free(&t->u), evec_free(&t->cq), evec_free(&t->wP), evec_free(&t->G), evec_free(&t->H);
    evec_free(&t->dO);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        evec_free(&t->ck[m]), evec_free(&t->cv[m]);
        free(t->rh[m]), free(t->rl[m]);
    }
}

static int bthread_init(bthread *t, struct ref_fast_bwd *fb)
{
    const nsx_problem *p = fb->fp.p;
    size_t L = (size_t)p->L, d = (size_t)p->d, dv = (size_t)p->dv, n = (size_t)p->n;
    size_t mx = d > dv ? d : dv;
    memset(t, 0, sizeof *t);
    t->fb = fb;
    if (ref_fast_scratch_init(&t->w, &fb->fp))
        return -1;
    int ok = 1;
    double **arr[] = {&t->kS, &t->kC, &t->kE};
    for (int x = 0; x < 3; x++)
        ok &= (*arr[x] = malloc(n * L * d * sizeof(double))) != NULL;
    double **arv[] = {&t->vS, &t->vC, &t->vE};
    for (int x = 0; x < 3; x++)
        ok &= (*arv[x] = malloc(n * L * dv * sizeof(double))) != NULL;
    double **arq[] = {&t->qS, &t->qC, &t->qE, &t->Sx, &t->Cx};
    for (int x = 0; x < 5; x++)
        ok &= (*arq[x] = malloc(mx * sizeof(double))) != NULL;
    ok &= !evec_alloc(&t->u, d) && !evec_alloc(&t->cq, d) && !evec_alloc(&t->G, d);
    ok &= !evec_alloc(&t->wP, dv) && !evec_alloc(&t->H, dv) && !evec_alloc(&t->dO, dv);
    for (size_t m = 0; m < n; m++) {
        ok &= !evec_alloc(&t->ck[m], d) && !evec_alloc(&t->cv[m], dv);
        ok &= (t->rh[m] = malloc(L * sizeof(double))) != NULL;
        ok &= (t->rl[m] = malloc(L * sizeof(double))) != NULL;
    }
    if (!ok) {
        bthread_free(t);
        return -1;
    }
    return 0;
}

/* ---- one row ---- */

/* The factor pointers of prefix J at place m: K~ and V~ rows (dd). */
typedef struct pref {
    const double *kh[NSX_MAX_ORDER], *kl[NSX_MAX_ORDER], *vh[NSX_MAX_ORDER], *vl[NSX_MAX_ORDER];
} pref;

static void prefix_rows(const fprob *fp, const frow *fr, int b, int g, const int *J, int last, pref *pf)
{
    const nsx_problem *p = fp->p;
    for (int m = 0; m < last; m++) {
        size_t ka = nsx_k_at(p, b, J[m], g, 0), va = nsx_v_at(p, b, J[m], g, 0);
        pf->kh[m] = fr->kh[m] + ka;
        pf->kl[m] = fr->kl[m] + (fr->kb[m] != 0 ? ka : 0);
        pf->vh[m] = fr->vh[m] + va;
        pf->vl[m] = fr->vl[m] + (fr->vb[m] != 0 ? va : 0);
    }
}

/* The inner keys' rows of one block of nb keys. */
static void block_rows(const fprob *fp, fscratch *w, const frow *fr, int b, int g, const int *keys,
                       int nb, int last)
{
    const nsx_problem *p = fp->p;
    for (int t = 0; t < nb; t++) {
        size_t ka = nsx_k_at(p, b, keys[t], g, 0), va = nsx_v_at(p, b, keys[t], g, 0);
        w->krh[t] = fr->kh[last] + ka;
        w->krl[t] = fr->kl[last] + (fr->kb[last] != 0 ? ka : 0);
        w->vrh[t] = fr->vh[last] + va;
        w->vrl[t] = fr->vl[last] + (fr->vb[last] != 0 ? va : 0);
    }
}

/* The row's constants of p_J (E7a).
 * product: per prefix, w_P = dO prod_{m<n} V~_m (evec_chain, n - 1
 *   products: |w^ - w| <= Ew) and p_J = sum_c w_P,c V~_n[j,c] by the
 *   scores kernel (Lemma S over dv terms, against Ap = sum_c |w_h| vmax_n[c]):
 *   Ep_P = (kS Ap + sum_c Ew_c vmax_n[c] + 3 dv eta) INFL.
 * sum, mean: r_m[j] = sum_c dO_c V~_m[j,c] per dimension and allowed key
 *   (Lemma S against Ar_m = sum_c |dO_c| vmax_m[c]: Er_m), and
 *   p_J = sum_m r_m[j_m] by Lemma A (n - 1 adds, each <= 5 u^2 (|a_h| +
 *   |b_h|) <= 5 u^2 sum_m rmax_m BI): Ep = (sum_m Er_m + 5.05 (n - 1) u^2
 *   sum_m rmax_m) INFL, the same for every tuple. */
static double kS_of(int len)
{
    const int dl = (len + FAST_LANES - 1) / FAST_LANES;
    return (8.0 + 3.0 * dl * (dl + 4) + 15.0 * (dl + 12)) * U2;
}

static double sum_reducer_r(bthread *t, const frow *fr, int b, int g)
{
    const fprob *fp = &t->fb->fp;
    const nsx_problem *p = fp->p;
    fscratch *w = &t->w;
    const int n = p->n, dv = p->dv;
    const double kS = kS_of(dv);
    double sumE = 0, sumr = 0;
    for (int m = 0; m < n; m++) {
        double Ar = 0, rmax = 0;
        for (int c = 0; c < dv; c++)
            Ar += fabs(t->dO.h[c]) * w->vmax[m][c];
        for (int t0 = 0; t0 < w->cnt[m]; t0 += NB) {
            int nb = w->cnt[m] - t0 < NB ? w->cnt[m] - t0 : NB;
            const double *rh[NB], *rl[NB];
            for (int k = 0; k < nb; k++) {
                size_t va = nsx_v_at(p, b, w->list[m][t0 + k], g, 0);
                rh[k] = fr->vh[m] + va;
                rl[k] = fr->vl[m] + (fr->vb[m] != 0 ? va : 0);
            }
            fp->kern->scores(t->dO.h, t->dO.l, dv, rh, rl, nb, t->ph, t->pl);
            for (int k = 0; k < nb; k++) {
                int j = w->list[m][t0 + k];
                t->rh[m][j] = t->ph[k];
                t->rl[m][j] = t->pl[k];
                rmax = fabs(t->ph[k]) > rmax ? fabs(t->ph[k]) : rmax;
            }
        }
        t->rmax[m] = rmax * BI;
        t->Er[m] = (kS * Ar + 3 * dv * ETA) * INFL;
        sumE += t->Er[m];
        sumr += t->rmax[m];
    }
    return (sumE + 5.05 * (n - 1) * U2 * sumr) * INFL;
}

/* p_J for the nb inner keys (ps: the prefix's part for the sum reducer) */
static void block_p(bthread *t, int product, int dv, dd ps, int last, const int *keys, int nb)
{
    const fprob *fp = &t->fb->fp;
    fscratch *w = &t->w;
    if (product) {
        fp->kern->scores(t->wP.h, t->wP.l, dv, w->vrh, w->vrl, nb, t->ph, t->pl);
        return;
    }
    for (int k = 0; k < nb; k++) {
        dd r = {t->rh[last][keys[k]], t->rl[last][keys[k]]};
        dd s = last ? dd_add(ps, r) : r;
        t->ph[k] = s.h;
        t->pl[k] = s.l;
    }
}

/* The prefix's part of p_J (E7a): product: w_P = dO prod_{m<n} V~_m
   (evec_chain) with *Ep (the head comment of block_p's caller) and *pm, a
   bound of |p_J| and |p^_J|; sum, mean: ps = sum_{m<n} r_m[j_m] (Lemma A),
   *Ep = Ep_row. */
static void prefix_p(bthread *t, int product, const pref *pf, const int *J, int last, int dv, const double *dO,
                     const double *vmaxn, double uf_v, double Ep_row, dd *ps, double *Ep, double *pm)
{
    *ps = (dd){0, 0};
    *Ep = Ep_row;
    *pm = 0;
    if (product) {
        evec_chain(&t->wP, dO, NULL, pf->vh, pf->vl, last, dv, uf_v);
        double Ap = 0, Ew = 0;
        for (int c = 0; c < dv; c++) {
            Ap += fabs(t->wP.h[c]) * vmaxn[c];
            Ew += t->wP.E[c] * vmaxn[c];
        }
        *Ep = (kS_of(dv) * Ap + Ew + 3 * dv * ETA) * INFL;
        *pm = (Ap * BI + 2 * *Ep) * BI;
        return;
    }
    for (int m = 0; m < last; m++) {
        dd r = {t->rh[m][J[m]], t->rl[m][J[m]]};
        *ps = m ? dd_add(*ps, r) : r;
    }
}

/* Row (b, h, i) of the block into the thread's accumulators and, for dq,
   the outputs.  1 when done with every dq element of the row decided, 2
   when done with some undecided, 0 when the row stopped before its
   enclosures (the block must go to MPFR whole). */
static int bwd_row(bthread *t, int hh, int i)
{
    struct ref_fast_bwd *fb = t->fb;
    const fprob *fp = &fb->fp;
    const nsx_problem *p = fp->p;
    fscratch *w = &t->w;
    const int n = p->n, d = p->d, dv = p->dv, last = n - 1, L = p->L;
    const int b = fb->b, g = fb->g, h = fb->h0 + hh;
    const int product = fp->product && n > 1;
    const double *q = fp->in->q + nsx_q_at(p, b, i, h, 0);
    const double *dO = fb->dout + nsx_o_at(p, b, i, h, 0);
    double *dq = fb->grads->dq + nsx_q_at(p, b, i, h, 0);
    int J[NSX_MAX_ORDER], idx[NSX_MAX_ORDER] = {0};
    const int *keys;
    frow fr;

    for (int l = 0; l < d; l++)
        t->qS[l] = t->qC[l] = t->qE[l] = 0;
    int su = ref_fast_row_setup(fp, w, b, h, i, &fr);
    if (su < 0)
        return 0; /* a non-finite q, k or v: MPFR reports it */
    double M;
    uint64_t N = 0, NP = 0;
    int max_in = 0, Jst[NSX_MAX_ORDER];
    if (su > 0)
        ref_fast_row_max(fp, w, &fr, b, h, i, &M, &N, &NP, &max_in, Jst);
    if (N == 0)
        goto write_dq; /* an empty slice: no contribution, dq = +0 */
    int zero = 1;
    for (int c = 0; c < dv; c++) {
        if (!isfinite(dO[c]))
            return 0; /* MPFR reports it */
        zero &= dO[c] == 0;
    }
    if (zero)
        goto write_dq; /* dT = 0 and A dO = 0 exactly: nothing to add */
    if (!isfinite(M))
        return 0;
    t->N += N;
    t->NP += NP;
    const int single = N == 1; /* A = 1, dT = 0 exactly */
    for (int c = 0; c < dv; c++) {
        t->dO.h[c] = dO[c];
        t->dO.l[c] = 0;
        t->dO.E[c] = 0;
        t->dO.a[c] = fabs(dO[c]);
    }
    double domax = 1;
    for (int c = 0; c < dv; c++)
        domax = fabs(dO[c]) > domax ? fabs(dO[c]) : domax;
    /* the chains' eta terms (see the head comment) */
    const double uf_k = 3.0 * n * ETA * fr.kamp;
    const double uf_v = 3.0 * (n + 1) * ETA * fr.vamp * domax;
    const double uf_T = 8.0 * (n + 1) * d * ETA * fr.kamp * (2 * fabs(fp->s.h) + 1); /* ref/fast.c */
    const double *kmax = w->kmax, *vmaxn = w->vmax[last];
    const int dl = (d + FAST_LANES - 1) / FAST_LANES;
    const double score_k = (8.0 + 3.0 * dl * (dl + 4) + 15.0 * (dl + 12)) * U2; /* Lemma S */
    const double eps_u = (n - 1) * DD_MUL_REL * 1.01;
    double Ep_row = 0, pmaxb = 0;
    if (!product) {
        Ep_row = sum_reducer_r(t, &fr, b, g);
        for (int m = 0; m < n; m++)
            pmaxb += t->rmax[m];
        pmaxb = (pmaxb + 2 * Ep_row) * BI;
    }
    pref pf;

    /* The centre p* = p_J* of a tuple J* of maximal estimated score (pass
       1): dP_J - Delta = f ((p_J - p*) - D'), D' = sum_K A_K (p_K - p*),
       since sum_K A_K = 1 (as ref/backward.c does over MPFR).  The computed
       p*^ is the same dd as J*'s own p^ in passes 2 and 3 (the same
       operations on the same data; checked), so J*'s difference is an
       exact 0 with no error: a nearly one-hot row keeps its relative
       accuracy.  Any other K: q_K = p^_K (-) p*^ (Lemma A), within
       Eq_K = Ep_K + Ep* + 5 u^2 (|p_K,h| + |p*_h|) of p_K - p*. */
    dd pst = {0, 0};
    double Epst = Ep_row;
    if (!single) {
        for (int m = 0; m < last; m++)
            J[m] = Jst[m];
        prefix_rows(fp, &fr, b, g, J, last, &pf);
        dd ps;
        double Ep, pm;
        prefix_p(t, product, &pf, J, last, dv, dO, vmaxn, uf_v, Ep_row, &ps, &Ep, &pm);
        block_rows(fp, w, &fr, b, g, &Jst[last], 1, last);
        block_p(t, product, dv, ps, last, &Jst[last], 1);
        pst = (dd){t->ph[0], t->pl[0]};
        Epst = Ep;
    }

    /* ---- pass 2: Z (as ref/fast.c) and Dn = sum_K e_K q_K ---- */
    dd Zb = {0, 0}, Zt = {0, 0}, Yb = {0, 0}, Yt = {0, 0};
    double dxmax = 0, MagD = 0, SEq = 0;
    unsigned long nflush = 0;
    int nbpref = 0;
    if (!single) {
        memset(idx, 0, sizeof idx);
        do {
            for (int m = 0; m < last; m++)
                J[m] = w->list[m][idx[m]];
            int nin = ref_fast_inner_keys(fp, w, J, &keys);
            if (nin == 0)
                continue;
            int isP = 1;
            for (int m = 0; m < last; m++)
                isP &= J[m] == Jst[m];
            prefix_rows(fp, &fr, b, g, J, last, &pf);
            double AT = fp->kern->prefix_u(q, d, pf.kh, pf.kl, last, kmax, w->uh, w->ul);
            const double dT = (eps_u + score_k) * AT * INFL + uf_T;
            dd ps;
            double Ep, pm;
            prefix_p(t, product, &pf, J, last, dv, dO, vmaxn, uf_v, Ep_row, &ps, &Ep, &pm);
            pmaxb = pm > pmaxb ? pm : pmaxb;
            dd EP = {0, 0}, YP = {0, 0};
            for (int t0 = 0; t0 < nin; t0 += NB) {
                int nb = nin - t0 < NB ? nin - t0 : NB;
                block_rows(fp, w, &fr, b, g, keys + t0, nb, last);
                fp->kern->scores(w->uh, w->ul, d, w->krh, w->krl, nb, w->Th, w->Tl);
                if (fp->kern->weights(w->Th, w->Tl, nb, fp->s.h, fp->s.l, M, 1.02 * fabs(fp->s.h) * dT,
                                      w->eh, w->el, &dxmax, &nflush))
                    return 0;
                block_p(t, product, dv, ps, last, keys + t0, nb);
                double SE = 0, CE = 0;
                for (int k = 0; k < nb; k++) {
                    /* E_P: Lemma B with b = 1, as ref/fast.c */
                    double s1 = SE + w->eh[k], bb = s1 - SE;
                    double tt = (SE - (s1 - bb)) + (w->eh[k] - bb);
                    SE = s1;
                    CE = (CE + tt) + w->el[k];
                    /* q_K = p_K - p* and its error (0 for J* itself) */
                    dd qk = dd_add((dd){t->ph[k], t->pl[k]}, (dd){-pst.h, -pst.l});
                    double Eq = isP && keys[t0 + k] == Jst[last] && t->ph[k] == pst.h && t->pl[k] == pst.l
                                    ? 0.0
                                    : (Ep + Epst + DD_ADD_REL * (fabs(t->ph[k]) + fabs(pst.h))) * BI;
                    SEq += w->eh[k] * Eq;
                    MagD += w->eh[k] * fabs(qk.h);
                    t->ph[k] = qk.h, t->pl[k] = qk.l;
                    t->pr[k] = &t->ph[k];
                    t->plr[k] = &t->pl[k];
                }
                EP = dd_add(EP, two_sum(SE, CE));
                /* Dn_P += sum e_K q_K: Lemma B (dv = 1), Lemma A */
                fp->kern->values(w->eh, w->el, nb, t->pr, t->plr, 1, t->Sx, t->Cx, &YP.h, &YP.l);
            }
            Zb = dd_add(Zb, EP);
            Yb = dd_add(Yb, YP);
            if (++nbpref == ZB) {
                Zt = dd_add(Zt, Zb);
                Yt = dd_add(Yt, Yb);
                Zb = Yb = (dd){0, 0};
                nbpref = 0;
            }
        } while (ref_fast_next_prefix(idx, w->cnt, last));
    }
    dd Z = dd_add(Zt, Zb), Dn = dd_add(Yt, Yb);

    /* The row's bounds (single: A = 1 exactly, dT = 0).
     * rho: a weight's relative error (ref/fast.c); EZ: Z's (ref/fast.c);
     * EDn: Lemma B per block and A per prefix and row (k_in, k_row, against
     *   MagD = sum e_h |q_h|), the weights' error (rho MagD), q's error
     *   (SEq = sum e_h Eq_K, times (1 + rho) for e against e_h), the dropped
     *   tuples (e <= FLUSH_BOUND, |q| <= 2 pmaxb), underflow (3 eta per
     *   product);
     * Zlo <= min(Z, Z^); invZ = 1/Z^ (Lemma D) within EiZ of 1/Z;
     * D' = Dn^/Z^ (Lemma D) within ED of D' = Dn/Z. */
    double rA = 0, EFl = 0, ED = 0;
    dd iZ = {1, 0}, Dp = {0, 0};
    if (!single) {
        if (!(dxmax <= 0x1p-20))
            return 0;
        const fterms ft = ref_fast_terms(dxmax, max_in, N, NP);
        const double rho = ft.rho, k_in = ft.k_in, k_row = ft.k_row, uf = ft.uf;
        const double Zh = Z.h;
        const double EZ = ref_fast_z_err(&ft, nflush, Zh);
        if (!(Zh > 2 * EZ))
            return 0;
        /* MagD and SEq are binary64 sums of N positive terms: INFN */
        const double INFN = 1 + (double)(N + 16) * 0x1p-51;
        const double EDn = (rho + k_in + k_row) * MagD * INFN * (1 + 0x1p-40) * INFL * INFL +
                           SEq * INFN * (1 + rho) * BI * BI * INFL +
                           (double)nflush * FLUSH_BOUND * 2 * pmaxb * INFL + uf * (1 + 2 * pmaxb);
        const double Zlo = (Zh * (1 - 0x1p-52) - EZ) * (1 - 0x1p-52);
        iZ = dd_div((dd){1, 0}, Z);
        const double EiZ = (DD_DIV_REL * fabs(iZ.h) + 4 * ETA / Zh + EZ / Zlo / Zlo) * BI;
        Dp = dd_div(Dn, Z);
        ED = (EDn / Zlo + (fabs(Dn.h) * UP + EDn) * EZ / Zlo / Zlo + DD_DIV_REL * fabs(Dp.h) + 4 * ETA / Zh) * BI;
        /* A^ = e^ (x) iZ: |A^ - A| <= 7 u^2 |A_h| + 3 eta + e_h rA, with
           |e^ - e| <= rho e_h UP and e <= e_h UP (1 + rho) */
        rA = (rho * fabs(iZ.h) * UP + (1 + rho) * EiZ) * UP * BI;
        /* a dropped tuple: A^ = 0, A = e / Z <= FLUSH_BOUND / Zlo */
        EFl = FLUSH_BOUND / Zlo * BI;
        if (!isfinite(rA) || !isfinite(ED) || !isfinite(Dp.h))
            return 0;
    }

    /* ---- pass 3: the gradients ---- */
    memset(idx, 0, sizeof idx);
    const int km_last = fr.src[last];
    double *kS = t->kS, *kC = t->kC, *kE = t->kE, *vS = t->vS, *vC = t->vC, *vE = t->vE;
    do {
        for (int m = 0; m < last; m++)
            J[m] = w->list[m][idx[m]];
        int nin = ref_fast_inner_keys(fp, w, J, &keys);
        if (nin == 0)
            continue;
        prefix_rows(fp, &fr, b, g, J, last, &pf);
        /* u_P (Lemma M, n - 1 times: eps_u |u_h| + uf_k) and the score's dT,
           as in pass 2 */
        double AT = fp->kern->prefix_u(q, d, pf.kh, pf.kl, last, kmax, w->uh, w->ul);
        const double dTs = (eps_u + score_k) * AT * INFL + uf_T;
        for (int l = 0; l < d; l++) {
            t->u.h[l] = w->uh[l];
            t->u.l[l] = w->ul[l];
            t->u.E[l] = (eps_u * fabs(w->uh[l]) + uf_k) * BI;
            t->u.a[l] = (fabs(w->uh[l]) * UP + t->u.E[l]) * BI;
        }
        dd ps;
        double Ep, pm;
        prefix_p(t, product, &pf, J, last, dv, dO, vmaxn, uf_v, Ep_row, &ps, &Ep, &pm);
        int isP = 1;
        for (int m = 0; m < last; m++)
            isP &= J[m] == Jst[m];
        const evec *cvn = product ? &t->wP : &t->dO;
        for (int l = 0; l < d; l++)
            t->G.h[l] = t->G.l[l] = 0;
        for (int c = 0; c < dv; c++)
            t->H.h[c] = t->H.l[c] = 0;
        double MdT = 0, SEdT = 0, MA = 0, SEA = 0;
        dd EPa = {0, 0};
        for (int t0 = 0; t0 < nin; t0 += NB) {
            int nb = nin - t0 < NB ? nin - t0 : NB;
            block_rows(fp, w, &fr, b, g, keys + t0, nb, last);
            if (!single) {
                fp->kern->scores(w->uh, w->ul, d, w->krh, w->krl, nb, w->Th, w->Tl);
                double dxm = 0;
                unsigned long nfl = 0;
                if (fp->kern->weights(w->Th, w->Tl, nb, fp->s.h, fp->s.l, M, 1.02 * fabs(fp->s.h) * dTs,
                                      w->eh, w->el, &dxm, &nfl))
                    return 0;
                if (!(dxm <= dxmax))
                    return 0; /* not the pass 2 weights: cannot happen */
                block_p(t, product, dv, ps, last, keys + t0, nb);
            }
            for (int k = 0; k < nb; k++) {
                if (single) {
                    t->Ah[k] = 1, t->Al[k] = 0, t->EA[k] = 0;
                    continue;
                }
                /* (E4) A_J = e_J / Z */
                dd A = dd_mul((dd){w->eh[k], w->el[k]}, iZ);
                t->Ah[k] = A.h, t->Al[k] = A.l;
                t->EA[k] = ((w->eh[k] == 0 ? EFl : w->eh[k] * rA) + KM * fabs(A.h)) * BI + 3 * ETA;
                /* (E7c) dT'_J = A_J ((p_J - p*) - D'): Lemma A twice (q_J as
                   in pass 2), then Lemma P */
                dd qk = dd_add((dd){t->ph[k], t->pl[k]}, (dd){-pst.h, -pst.l});
                double Eq = isP && keys[t0 + k] == Jst[last] && t->ph[k] == pst.h && t->pl[k] == pst.l
                                ? 0.0
                                : (Ep + Epst + DD_ADD_REL * (fabs(t->ph[k]) + fabs(pst.h))) * BI;
                dd df = dd_add(qk, (dd){-Dp.h, -Dp.l});
                double Edf = (Eq + ED + DD_ADD_REL * (fabs(qk.h) + fabs(Dp.h))) * BI;
                dd dT = dd_mul(A, df);
                t->dTh[k] = dT.h, t->dTl[k] = dT.l;
                t->EdT[k] = (KM * fabs(dT.h) + fabs(A.h) * UP * Edf + (fabs(df.h) * UP + Edf) * t->EA[k]) * BI +
                            7 * ETA;
                MdT += fabs(dT.h);
                SEdT += t->EdT[k];
            }
            for (int k = 0; k < nb; k++) {
                MA += fabs(t->Ah[k]);
                SEA += t->EA[k];
            }
            if (!single) {
                /* G_P[l] += sum_j dT'_J K~_n[j,l] (Lemma B, Lemma A) */
                fp->kern->values(t->dTh, t->dTl, nb, w->krh, w->krl, d, t->Sx, t->Cx, t->G.h, t->G.l);
                /* (E7e) dK_n[j,l] += dT'_J u_P[l] */
                for (int k = 0; k < nb; k++) {
                    size_t e0 = ((size_t)km_last * L + keys[t0 + k]) * d;
                    acc_axpy(fp, kS + e0, kC + e0, kE + e0, (dd){t->dTh[k], t->dTl[k]}, t->EdT[k], &t->u, d);
                }
            }
            /* H_P (product) or E_P (sum, mean): Lemma B, Lemma A */
            if (product) {
                fp->kern->values(t->Ah, t->Al, nb, w->vrh, w->vrl, dv, t->Sx, t->Cx, t->H.h, t->H.l);
            } else {
                double SE = 0, CE = 0;
                for (int k = 0; k < nb; k++) {
                    double s1 = SE + t->Ah[k], bb = s1 - SE;
                    double tt = (SE - (s1 - bb)) + (t->Ah[k] - bb);
                    SE = s1;
                    CE = (CE + tt) + t->Al[k];
                }
                EPa = dd_add(EPa, two_sum(SE, CE));
            }
            /* (E7f) dV_n[j,c] += A_J cv_n[c] */
            for (int k = 0; k < nb; k++) {
                size_t e0 = ((size_t)km_last * L + keys[t0 + k]) * dv;
                acc_axpy(fp, vS + e0, vC + e0, vE + e0, (dd){t->Ah[k], t->Al[k]}, t->EA[k], cvn, dv);
            }
        }
        /* The prefix's sums: Lemma B per block (m <= NB), Lemma A per block
           into the prefix (ref/fast.c's k_in), their weights' own errors */
        const int nblk = (nin + NB - 1) / NB;
        const double k_in = (8.0 + 3.0 * NB * (NB + 4) + 5.0 * 1.01 * nblk) * U2;
        if (!single) {
            for (int l = 0; l < d; l++) {
                t->G.E[l] = ((k_in * MdT + SEdT) * kmax[l] * INFL + 3 * nin * ETA) * BI;
                t->G.a[l] = (fabs(t->G.h[l]) * UP + t->G.E[l]) * BI;
            }
            if (n == 1) {
                /* (E7d) dQ[i,l] += G[l] */
                for (int l = 0; l < d; l++)
                    racc_add(&t->qS[l], &t->qC[l], &t->qE[l], (dd){t->G.h[l], t->G.l[l]}, t->G.E[l]);
            } else {
                /* (E7d) dQ[i,l] += cq_P[l] G_P[l], cq = prod_{m<n} K~_m */
                evec_chain(&t->cq, pf.kh[0], pf.kl[0], pf.kh + 1, pf.kl + 1, last - 1, d, uf_k);
                acc_vmul(fp, t->qS, t->qC, t->qE, &t->cq, &t->G, d);
                /* (E7e) dK_m[j_m,l] += ck_m[l] G_P[l], ck_m = Q prod_{m' != m} K~_m' */
                for (int m = 0; m < last; m++) {
                    const double *fh[NSX_MAX_ORDER], *fl[NSX_MAX_ORDER];
                    int nf = 0;
                    for (int mm = 0; mm < last; mm++)
                        if (mm != m)
                            fh[nf] = pf.kh[mm], fl[nf++] = pf.kl[mm];
                    evec_chain(&t->ck[m], q, NULL, fh, fl, nf, d, uf_k);
                    size_t e0 = ((size_t)fr.src[m] * L + J[m]) * d;
                    acc_vmul(fp, kS + e0, kC + e0, kE + e0, &t->ck[m], &t->G, d);
                }
            }
        }
        if (n > 1) {
            if (product) {
                for (int c = 0; c < dv; c++) {
                    t->H.E[c] = ((k_in * MA + SEA) * vmaxn[c] * INFL + 3 * nin * ETA) * BI;
                    t->H.a[c] = (fabs(t->H.h[c]) * UP + t->H.E[c]) * BI;
                }
            }
            const double EE = ((k_in * MA + SEA) * INFL + 3 * nin * ETA) * BI;
            for (int m = 0; m < last; m++) {
                size_t e0 = ((size_t)fr.src[m] * L + J[m]) * dv;
                if (product) {
                    /* (E7f) dV_m[j_m,c] += cv_m[c] H_P[c], cv_m = dO prod_{m' != m} V~_m' */
                    const double *fh[NSX_MAX_ORDER], *fl[NSX_MAX_ORDER];
                    int nf = 0;
                    for (int mm = 0; mm < last; mm++)
                        if (mm != m)
                            fh[nf] = pf.vh[mm], fl[nf++] = pf.vl[mm];
                    evec_chain(&t->cv[m], dO, NULL, fh, fl, nf, dv, uf_v);
                    acc_vmul(fp, vS + e0, vC + e0, vE + e0, &t->cv[m], &t->H, dv);
                } else {
                    /* (E7f) dV_m[j_m,c] += dO_c E_P */
                    acc_axpy(fp, vS + e0, vC + e0, vE + e0, EPa, EE, &t->dO, dv);
                }
            }
        }
    } while (ref_fast_next_prefix(idx, w->cnt, last));

write_dq:;
    /* (E7d, E7g) dq = sf (x) the row's sum: Lemma P; E inflated for its
       N + NP terms (Lemma R) */
    const double infl = 1 + (3.0 * (double)(N + NP) + 64) * 0x1p-52;
    int ok = 1;
    const size_t q0 = ((size_t)hh * L + i) * d;
    double *en = fb->encl ? fb->encl + 3 * q0 : NULL;
    for (int l = 0; l < d; l++) {
        if (t->qE[l] == 0 && t->qS[l] == 0 && t->qC[l] == 0) {
            dq[l] = 0.0; /* untouched: exactly 0 */
            if (en)
                en[3 * l] = en[3 * l + 1] = en[3 * l + 2] = 0;
            if (fb->done)
                fb->done[q0 + l] = 1, fb->res[q0 + l] = 0.0;
            continue;
        }
        dd v = two_sum(t->qS[l], t->qC[l]);
        double Ev = t->qE[l] * infl;
        dd r = dd_mul(v, fb->sf);
        double Er = ((KM * fabs(r.h) + fabs(v.h) * UP * fb->Esf + (fabs(fb->sf.h) * UP + fb->Esf) * Ev) * BI +
                     7 * ETA) * fp->shift;
        if (en)
            en[3 * l] = r.h, en[3 * l + 1] = r.l, en[3 * l + 2] = Er;
        int dec = ref_fast_decide(r, Er, &dq[l]);
        if (fb->done && dec)
            fb->done[q0 + l] = 1, fb->res[q0 + l] = dq[l];
        ok &= dec;
    }
    return ok ? 1 : 2;
}

/* ---- the block ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* about every 10 s: the gradient rows taken so far, of B H L */
static void report(struct ref_fast_bwd *fb, size_t r)
{
    const nsx_problem *p = fb->fp.p;
    double t = now_s();
    pthread_mutex_lock(&fb->lock);
    if (t >= fb->next_report) {
        fb->next_report = t + 10;
        fb->opts->progress(fb->opts->progress_arg, fb->rows_before + r, (uint64_t)p->B * p->H * p->L);
    }
    pthread_mutex_unlock(&fb->lock);
}

static void *bworker(void *arg)
{
    bthread *t = arg;
    struct ref_fast_bwd *fb = t->fb;
    const nsx_problem *p = fb->fp.p;
    size_t nk = (size_t)p->n * p->L * p->d, nv = (size_t)p->n * p->L * p->dv;
    memset(t->kS, 0, nk * sizeof(double)), memset(t->kC, 0, nk * sizeof(double));
    memset(t->kE, 0, nk * sizeof(double));
    memset(t->vS, 0, nv * sizeof(double)), memset(t->vC, 0, nv * sizeof(double));
    memset(t->vE, 0, nv * sizeof(double));
    t->N = t->NP = 0;
    for (;;) {
        if (atomic_load(&fb->fail))
            break;
        size_t r = atomic_fetch_add(&fb->next, 1);
        if (r >= fb->rows)
            break;
        if (fb->opts->progress && (r & 63) == 0)
            report(fb, r);
        int rr = bwd_row(t, (int)(r / (size_t)p->L), (int)(r % (size_t)p->L));
        if (rr == 0)
            atomic_store(&fb->fail, 1);
        else if (rr == 2)
            atomic_store(&fb->undec, 1);
    }
    return NULL;
}

/* Element e of the threads' accumulators (S, C, E arrays of each thread),
   merged (Lemma A per thread, in thread order), scaled by f (x) (Lemma P)
   and decided: 1 with *out set, 0 when undecided. */
static int merge_decide(struct ref_fast_bwd *fb, int nt, size_t e, int kind, dd f, double Ef, double infl,
                        double *out, double *en)
{
    dd v = {0, 0};
    double E = 0;
    int touched = 0;
    for (int x = 0; x < nt; x++) {
        const bthread *t = &fb->th[x];
        double S = kind ? t->vS[e] : t->kS[e], C = kind ? t->vC[e] : t->kC[e];
        double Ee = kind ? t->vE[e] : t->kE[e];
        if (S == 0 && C == 0 && Ee == 0)
            continue;
        dd a = two_sum(S, C);
        if (touched)
            E += DD_ADD_REL * (fabs(v.h) + fabs(a.h));
        v = touched ? dd_add(v, a) : a;
        E += Ee * infl;
        touched = 1;
    }
    if (!touched) {
        *out = 0.0; /* no allowed tuple touches it: exactly 0 */
        if (en)
            en[0] = en[1] = en[2] = 0;
        return 1;
    }
    E *= BI;
    dd r = dd_mul(v, f);
    double Er = ((KM * fabs(r.h) + fabs(v.h) * UP * Ef + (fabs(f.h) * UP + Ef) * E) * BI + 7 * ETA) *
                fb->fp.shift;
    if (en)
        en[0] = r.h, en[1] = r.l, en[2] = Er;
    return ref_fast_decide(r, Er, out);
}

int ref_fast_bwd_block(ref_fast_bwd *fb, int b, int g, nsx_outputs *grads, nsx_ref_stats *st,
                       unsigned char *done, double *res)
{
    const nsx_problem *p = fb->fp.p;
    const int Hg = p->H / p->Hkv;
    fb->b = b, fb->g = g, fb->h0 = g * Hg, fb->Hg = Hg;
    fb->rows = (size_t)Hg * p->L;
    fb->grads = grads;
    fb->done = done;
    fb->res = res;
    const size_t nq = (size_t)Hg * p->L * p->d, nk = (size_t)p->n * p->L * p->d;
    const size_t total = nq + (size_t)p->n * p->L * (p->d + p->dv);
    if (fb->encl)
        for (size_t e = 0; e < 3 * total; e++)
            fb->encl[e] = NAN;
    if (done)
        memset(done, 0, total);
    atomic_store(&fb->next, 0);
    atomic_store(&fb->fail, 0);
    atomic_store(&fb->undec, 0);
    int nt = fb->nthreads;
    if ((size_t)nt > fb->rows)
        nt = (int)fb->rows;
    pthread_t tid[256];
    int started = 0;
    for (int x = 1; x < nt; x++, started++)
        if (pthread_create(&tid[x], NULL, bworker, &fb->th[x]))
            break;
    bworker(&fb->th[0]);
    for (int x = 1; x <= started; x++)
        pthread_join(tid[x], NULL);
    nt = started + 1;
    fb->rows_before += fb->rows;
    if (atomic_load(&fb->fail)) {
        if (done)
            memset(done, 0, total);
        return 0;
    }
    /* go on past an undecided element when its neighbours are wanted */
    const int every = fb->encl || done;
    int all = !atomic_load(&fb->undec);
    if (!all && !every)
        return 0;
    uint64_t N = 0, NP = 0;
    for (int x = 0; x < nt; x++)
        N += fb->th[x].N, NP += fb->th[x].NP;
    const double infl = 1 + (3.0 * (double)(N + NP) + 64) * 0x1p-52;
    /* (E7g) dk_m, dv_m of (b, g) */
    for (int m = 0; m < p->n; m++)
        for (int j = 0; j < p->L; j++) {
            for (int l = 0; l < p->d; l++) {
                size_t e = ((size_t)m * p->L + j) * p->d + l;
                double *out = &grads->dk[m][nsx_k_at(p, b, j, g, l)];
                int dec = merge_decide(fb, nt, e, 0, fb->sf, fb->Esf, infl, out,
                                       fb->encl ? fb->encl + 3 * (nq + e) : NULL);
                if (done && dec)
                    done[nq + e] = 1, res[nq + e] = *out;
                if (!dec && !every)
                    return 0;
                all &= dec;
            }
            for (int c = 0; c < p->dv; c++) {
                size_t e = ((size_t)m * p->L + j) * p->dv + c;
                double *out = &grads->dv[m][nsx_v_at(p, b, j, g, c)];
                int dec = merge_decide(fb, nt, e, 1, fb->fv, fb->Efv, infl, out,
                                       fb->encl ? fb->encl + 3 * (nq + nk + e) : NULL);
                if (done && dec)
                    done[nq + nk + e] = 1, res[nq + nk + e] = *out;
                if (!dec && !every)
                    return 0;
                all &= dec;
            }
        }
    if (!all)
        return done ? 2 : 0;
    st->tuples += N;
    st->fast_tuples += N;
    st->fast_rows += fb->rows;
    st->values += total;
    st->fast_values += total;
    return 1;
}

int ref_fast_bwd_init(ref_fast_bwd **out, const ref_ctx *ctx, const double *dout, const nsx_ref_opts *opts,
                      nsx_err *err)
{
    const nsx_problem *p = ctx->p;
    *out = NULL;
    ref_fast_bwd *fb = calloc(1, sizeof *fb);
    if (!fb)
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    int rc = ref_fast_prob_init(&fb->fp, ctx, opts, err);
    if (rc) {
        free(fb);
        return rc;
    }
    fb->dout = dout;
    fb->opts = opts;
    fb->next_report = now_s() + 10;
    pthread_mutex_init(&fb->lock, NULL);
    /* f' = out_scale / den: Lemma D (den = 1: exact) */
    fb->fv = (dd){p->out_scale, 0};
    fb->Efv = 0;
    if (fb->fp.den > 1) {
        fb->fv = dd_div(fb->fv, (dd){(double)fb->fp.den, 0});
        fb->Efv = (DD_DIV_REL * fabs(fb->fv.h) + 4 * ETA) * BI;
    }
    /* sf = s f': s within 2^-104 |s_h| (ref/fast.c), Lemma P */
    fb->sf = dd_mul(fb->fp.s, fb->fv);
    fb->Esf = ((KM * fabs(fb->sf.h) + fabs(fb->fp.s.h) * UP * fb->Efv +
                (fabs(fb->fv.h) * UP + fb->Efv) * 0x1p-104 * fabs(fb->fp.s.h)) * BI + 7 * ETA);
    long nthreads = opts->threads > 0 ? opts->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > 256)
        nthreads = 256;
    fb->th = calloc((size_t)nthreads, sizeof *fb->th);
    if (!fb->th) {
        ref_fast_bwd_free(fb);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    for (long x = 0; x < nthreads; x++) {
        if (bthread_init(&fb->th[x], fb))
            break;
        fb->th[x].ok = 1;
        fb->nthreads = (int)x + 1;
    }
    if (fb->nthreads == 0) {
        ref_fast_bwd_free(fb);
        return nsx_err_set(err, NSX_E_NOMEM, "reference: out of memory");
    }
    *out = fb;
    return 0;
}

void ref_fast_bwd_set_encl(ref_fast_bwd *fb, double *encl)
{
    fb->encl = encl;
}

void ref_fast_bwd_free(ref_fast_bwd *fb)
{
    if (!fb)
        return;
    for (int x = 0; x < fb->nthreads; x++)
        bthread_free(&fb->th[x]);
    free(fb->th);
    ref_fast_prob_clear(&fb->fp);
    if (fb->opts)
        pthread_mutex_destroy(&fb->lock);
    free(fb);
}
