/*
 * The fast certified path's internals, shared by the forward (ref/fast.c)
 * and the backward (ref/fast_bwd.c): the problem's dd factors, a thread's
 * row scratch, a row's allowed keys and maxima, and the decision.  The
 * proofs of each step are in ref/fast.c (forward) and ref/fast_bwd.c
 * (backward).
 */
#ifndef NSX_REF_FAST_INT_H
#define NSX_REF_FAST_INT_H

#include <stdint.h>

#include "ref/dd.h"
#include "ref/fast.h"
#include "ref/fast_exp.h"
#include "ref/fast_kern.h"

/* The problem's fixed data: dd factors, maxima, constants. */
typedef struct fprob {
    const nsx_problem *p;
    const nsx_inputs *in;
    const ref_ctx *ctx;
    const fast_kern *kern;
    int n, d, dv, product;
    unsigned long den;
    dd s;                          /* |s - s.h - s.l| <= 2^-104 |s.h| */
    /* K~_m, V~_m as dd in the layouts of k and v; without a bias, the
       input itself and, for the low parts, a zero row (d or dv long) */
    const double *kh[NSX_MAX_ORDER], *kl[NSX_MAX_ORDER];
    const double *vh[NSX_MAX_ORDER], *vl[NSX_MAX_ORDER];
    double *own[4 * NSX_MAX_ORDER + 4];
    int nown;
    double shift;                  /* 2^fast_bound_shift */
} fprob;

/* One thread's row scratch. */
typedef struct fscratch {
    int *list[NSX_MAX_ORDER], cnt[NSX_MAX_ORDER];
    int *inner;
    unsigned char *insel;
    double *uh, *ul, *ua;
    const double *krh[FAST_NB], *krl[FAST_NB], *vrh[FAST_NB], *vrl[FAST_NB];
    double Th[FAST_NB], Tl[FAST_NB], eh[FAST_NB], el[FAST_NB];
    double *S, *C, *vabs, *MagU;
    /* dd arrays as high and low parts: the prefix's A_c and vp_c, the row's
       first and second level U_c */
    double *Ah, *Al, *vph, *vpl, *Ubh, *Ubl, *Uth, *Utl;
    const double *kph[NSX_MAX_ORDER], *kpl[NSX_MAX_ORDER], *vrowh[NSX_MAX_ORDER], *vrowl[NSX_MAX_ORDER];
    double *kmax;                 /* [d]: max over list n-1 of |K~_n,h[j,l]| (1 + 2^-51) */
    double *vmax[NSX_MAX_ORDER];  /* [dv]: max over list m of |V~_m,h[j,c]| (1 + 2^-51) */
} fscratch;

/* A row's setup (ref_fast_row_setup): its dimensions reordered so that
   the one with the most allowed keys is the last (the inner one); src[m]
   is the problem's dimension that stands at place m. */
typedef struct frow {
    int src[NSX_MAX_ORDER];
    const double *kh[NSX_MAX_ORDER], *kl[NSX_MAX_ORDER], *vh[NSX_MAX_ORDER], *vl[NSX_MAX_ORDER];
    double kb[NSX_MAX_ORDER], vb[NSX_MAX_ORDER];
    double kamp, vamp; /* the underflow amplitudes of ref/fast.c */
} frow;

/* The constants of the fast path's proofs (ref/fast.c's Lemmas A, B, M),
   shared by the forward and the backward (ref/fast_bwd.c). */
#define U2 0x1p-106        /* u^2 */
#define ETA DD_ETA
#define NB FAST_NB         /* inner keys per block (Lemma B's m) */
#define ZB 64              /* prefixes per first-level row block */
#define INFL (1 + 0x1p-30) /* covers the roundings of a bound's own
                              computation: sums of at most 2^21 positive
                              terms, and a few products */
/* exp(-FAST_X_CUT + 1): the largest weight a dropped tuple may have */
#define FLUSH_BOUND 0x1p-936

/* The error terms of a row's sums (ref/fast.c, E2), one definition for the
   forward and the backward: rho, a weight's relative error from fast_exp and
   the score's dx (at most 2^-20: |e^ - e| <= e^ (FAST_EXP_REL + e^dx - 1) /
   (1 - FAST_EXP_REL), e^dx - 1 <= dx (1 + dx)); k_in, Lemma B per block
   (m <= NB) and Lemma A per block into the prefix (max_in inner keys at
   most); k_row, Lemma A per prefix into the row's two levels (NP
   prefixes); uf, underflow over the N tuples and NP prefixes. */
typedef struct fterms {
    double rho, k_in, k_row, uf;
} fterms;

static inline fterms ref_fast_terms(double dxmax, int max_in, uint64_t N, uint64_t NP)
{
    const int nblk = (max_in + NB - 1) / NB;
    return (fterms){.rho = (FAST_EXP_REL + dxmax * (1 + dxmax)) * (1 + 0x1p-40),
                    .k_in = (8.0 + 3.0 * NB * (NB + 4) + 5.0 * 1.01 * nblk) * U2,
                    .k_row = 5.0 * 1.01 * (ZB + (double)(NP / ZB) + 2) * U2,
                    .uf = 16.0 * (double)(N + NP) * ETA};
}

/* The error of the row sum Z^ (high part Zh), nflush tuples dropped below
   the cut. */
static inline double ref_fast_z_err(const fterms *t, unsigned long nflush, double Zh)
{
    return (t->rho + t->k_in + t->k_row) * Zh * INFL * INFL + (double)nflush * FLUSH_BOUND + t->uf;
}

int ref_fast_prob_init(fprob *fp, const ref_ctx *ctx, const nsx_ref_opts *opts, nsx_err *err);
void ref_fast_prob_clear(fprob *fp);
int ref_fast_scratch_init(fscratch *w, const fprob *fp);
void ref_fast_scratch_clear(fscratch *w);
/* The decision: 1 with *out = RN(X) when both ends of [v - E, v + E] round
   to the same nonzero binary64 (ref/fast.c). */
int ref_fast_decide(dd v, double E, double *out);
/* The next prefix (indices into the lists of dimensions 0..len-1), in
   lexicographic order; 0 after the last. */
int ref_fast_next_prefix(int *idx, const int *cnt, int len);
/* The inner keys of the prefix J[0..n-2] (distinct applied); their count. */
int ref_fast_inner_keys(const fprob *fp, fscratch *w, int *J, const int **keys);
/* Row (b, h, i): the allowed keys of each dimension into w->list, w->cnt,
   reordered (fr->src), the maxima w->kmax, w->vmax, fr->kamp, fr->vamp.
   Returns 1, 0 when a dimension has no allowed key (an empty slice), -1
   when a tuple may read a non-finite q, k or v (MPFR says what it means). */
int ref_fast_row_setup(const fprob *fp, fscratch *w, int b, int h, int i, frow *fr);
/* Pass 1 over the set-up row: *M the largest score s T_raw estimated in
   binary64 (no bound needed: any M is an exact shift), *N the allowed
   tuples, *NP the prefixes with at least one inner key, *max_in the most
   inner keys of a prefix; Jmax (NULL, or n ints): a tuple (in the row's
   order of dimensions) whose estimate is M, when M is finite. */
void ref_fast_row_max(const fprob *fp, fscratch *w, const frow *fr, int b, int h, int i, double *M,
                      uint64_t *N, uint64_t *NP, int *max_in, int *Jmax);

#endif
