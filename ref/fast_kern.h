/*
 * The hot loops of the fast certified path (ref/fast.c), one table per ISA,
 * BLIS-style: ref/fast_kern_<isa>.c compiles the same plain loops
 * (ref/fast_kern.inc) with its own instruction set, and ref/fast_dispatch.c
 * picks one table per process.  Every table computes the same
 * floating-point operations in the same order per lane, so the error bounds
 * of ref/fast.c (Lemmas B and S) hold for all of them; they differ only in
 * speed.  No fma is contracted implicitly (-ffp-contract=off).
 */
#ifndef NSX_REF_FAST_KERN_H
#define NSX_REF_FAST_KERN_H

#include <stddef.h>

/* Lanes of the score's dot product: lane r sums the terms l = r (mod 8). */
#define FAST_LANES 8
/* The largest nk of a call: inner keys per block (Lemma B's m). */
#define FAST_NB 16

typedef struct fast_kern {
    const char *name;
    /* Lemma S: for each of nk keys, T_j = sum_{l<d} (uh_l + ul_l)(kh_j,l + kl_j,l)
       as a normalized dd (Th[j], Tl[j]); the rows kh[j], kl[j] are d long
       (kl zero when there is no bias), uh, ul likewise. */
    void (*scores)(const double *uh, const double *ul, int d, const double *const *kh,
                   const double *const *kl, int nk, double *Th, double *Tl);
    /* Lemma B: for c < dv, (S[c], C[c]) accumulates sum_j (eh_j + el_j)(vh_j,c + vl_j,c)
       over nk keys from zero, each product through two_prod and two_sum into
       S, the rest into C; then A_c = A_c (+) two_sum(S_c, C_c) (Lemma A),
       A as (Ah, Al). */
    void (*values)(const double *eh, const double *el, int nk, const double *const *vh,
                   const double *const *vl, int dv, double *S, double *C, double *Ah, double *Al);
    /* u_P[l] = q[l] (x) (kh_0 + kl_0)[l] (x) ... over nm factors (Lemma M),
       as (uh, ul); returns sum_l |uh[l]| kmax[l] (any order: a bound). */
    double (*prefix_u)(const double *q, int d, const double *const *kh, const double *const *kl, int nm,
                       const double *kmax, double *uh, double *ul);
    /* vp[c] = the nm factors V~_m[c] multiplied (Lemma M; product = 1) or
       added (Lemma A; sum = 0), as (vph, vpl); vabs[c] = sum_m |V~_m,h[c]| (1 + 2^-50). */
    void (*prefix_v)(int product, int dv, const double *const *vh, const double *const *vl, int nm,
                     double *vph, double *vpl, double *vabs);
    /* The prefix's terms into the row: f_c = vp_c (x) A_c (product) or
       (vp_c (x) E) (+) A_c (sum); Ub_c = Ub_c (+) f_c; MagU_c += E_h |vp_h,c|
       vmax_c (product) or E_h (vabs_c + vmax_c), times 1 + 2^-40. */
    void (*prefix_end)(int product, int dv, const double *vph, const double *vpl, const double *Ah,
                       const double *Al, double Eh, double El, const double *vabs, const double *vmax,
                       double *Ubh, double *Ubl, double *MagU);
    /* Pass 1 (no bound needed): the largest s_h * sum_l ua_l kh_j,l over nk
       keys, in binary64; *M is raised to it. */
    void (*max_score)(const double *ua, int d, const double *const *kh, int nk, double sh, double *M);
    /* The weights of nk tuples (ref/fast.c, steps (E3, E4)): from the raw
       scores (Th, Tl), x = s (x) T - M (Lemma M and two two_sums), its error
       bound dx = dTs + 13 u^2 (|sT_h| + |x_h|) + 4 eta (dTs: the score's own
       term), e = fast_exp(x), or e = 0 when x_h < -FAST_X_CUT (counted in
       *nflush); *dxmax is raised to every dx (NaN sticks).  Returns 0, or -1
       when some x_h is not <= FAST_X_MAX (NaN included). */
    int (*weights)(const double *Th, const double *Tl, int nk, double sh, double sl, double M,
                   double dTs, double *eh, double *el, double *dxmax, unsigned long *nflush);
    /* The backward's element sums (ref/fast_bwd.c, Lemmas P and R): for
       k < len, t = (ah + al) (x) (xh_k + xl_k) (dd_mul), then the running sum
       (S_k, C_k) += t and E_k += te + u (|c1| + |C'|) + 2 eta with
       te = (7 u^2 |t_h| + |ah| (1 + 2^-52) xE_k + xa_k Ea) (1 + 2^-50) + 7 eta. */
    void (*acc_axpy)(double *S, double *C, double *E, double ah, double al, double Ea, const double *xh,
                     const double *xl, const double *xE, const double *xa, int len);
    /* The same with a vector factor: t = x_k (x) y_k, te = (7 u^2 |t_h| +
       |xh_k| (1 + 2^-52) yE_k + ya_k xE_k) (1 + 2^-50) + 7 eta. */
    void (*acc_vmul)(double *S, double *C, double *E, const double *xh, const double *xl, const double *xE,
                     const double *yh, const double *yl, const double *yE, const double *ya, int len);
} fast_kern;

enum fast_isa { FAST_ISA_SCALAR = 0, FAST_ISA_AVX2 = 1, FAST_ISA_AVX512 = 2, FAST_ISA_COUNT = 3 };

extern const fast_kern fast_kern_scalar;
extern const fast_kern fast_kern_avx2;
extern const fast_kern fast_kern_avx512;

/* The table for this process: the widest ISA the CPU runs, or the one
   NSX_FAST_ISA names (scalar, avx2, avx512); NSX_FAST_ISA_DEBUG=1 logs the
   choice.  NULL with why set when NSX_FAST_ISA names an ISA the CPU lacks
   or no ISA at all. */
const fast_kern *fast_kern_get(char *why, size_t whylen);
/* 1 when the CPU (and OS) runs isa. */
int fast_isa_supported(int isa);

#endif /* NSX_REF_FAST_KERN_H */
