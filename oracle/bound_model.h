/*
 * What the row bound (oracle/bound.c) and the selection's tolerance
 * (oracle/seltol.c) share: ORACLE.md 3.0's notation and the model's
 * constants.  Internal to oracle/.
 */
#ifndef NSX_ORACLE_BOUND_MODEL_H
#define NSX_ORACLE_BOUND_MODEL_H

#include <math.h>

#include "nsimplex/error.h"
#include "oracle/bound.h"
#include "oracle/model.h"

#define U64 0x1p-53    /* binary64 unit roundoff */
#define L64 0x1p-1022  /* binary64 smallest normal */

/* ---- the model's constants (ORACLE.md 3.0, 3.1) ----------------------- */

/* <k>_u accumulated as a logarithm, so that mixed formats multiply. */
typedef struct {
    double lg;
} gam;

static inline void gam_add(gam *g, double k, double u)
{
    g->lg += k * log1p(u);
}

static inline double gam_val(const gam *g)
{
    return expm1(g->lg);
}

static inline double gamma_of(double k, double u)
{
    return expm1(k * log1p(u));
}

/* The faithful operations a reduction of m terms in acc is counted as
   (ORACLE.md 3.0, A3): m + ceil(m/2), which covers sequential or tree
   summation, FMA chains, and multi-term adders that align a block of
   k >= 2 products to the largest and truncate. */
static inline double reduction(double m)
{
    return m + ceil(m / 2);
}

typedef struct {
    nsx_fmt fi, fo, fa, ft, fw, fout, flse;
    double ui, lami;   /* input rounding: 0 when the vector's format fits `in` */
    double ua;         /* acc arithmetic is faithful: relative error < 2 u_acc */
    double ux, lamx;   /* max of op and int: derived operands and intermediates */
    double lam_all;    /* the largest lambda of in (when rounding), op, int, acc */
    double nmin_uf;    /* the largest normal minimum of in (when rounding), op, int: a
                          result at least this large has no absolute error (9.1 R2),
                          whatever sub= says of the error below it (lami, lamx) */
    double lamw;       /* the weights' conversion: lambda_w, or lambda_w u_w with sub=keep */
    int conv;          /* 1: inputs are converted from `in` to `op` */
    double eps_exp;    /* exp and log: 2 ulps of acc, 4 u_acc relative */
} consts;

/* The constants of ctx's model and vector (ORACLE.md 3.0). */
void nsx_bound_consts(const nsx_bound_ctx *ctx, consts *k);

/* "not applicable under model M: batch b, head h, query i: <why> (value,
   limit)" into err; h < 0 for a selection row (b, i), shared by the heads.
   Returns NSX_E_NOT_APPLICABLE. */
int nsx_bound_not_applicable(const nsx_bound_ctx *ctx, nsx_err *err, int b, int h, int i, const char *why,
                             double value, double limit);

/* 1 when the kernel receives s as a rounded binary64 (s = 1/sqrt(d) with d
   not a power of 4), else 0 (B2). */
int nsx_bound_scale_inexact(const nsx_problem *p);

/* Gamma_W and C_W of B6 (A9's operations on the value side) for p under
   the constants k. */
void nsx_bound_value_consts(const nsx_problem *p, const consts *k, double *gW, double *cW);

/* (E5) the reduced value of channel c recomputed in binary64 from the
   tuple's value rows V[m]: W, W+ (B6) and prod max(1, V+) (1 for sum and
   mean); *v_in_max gains the largest |V| read. */
void nsx_bound_reduced_value(const nsx_problem *p, const double *const *V, int c, double *W, double *Wp, double *Wg,
                             double *v_in_max);

/* (B6) e^W_J = Gamma_W W+_J + 2 C_W lambda (prod max(1, V+) or 1). */
/* B6 with the absolute term's lambda given: lam_all, or lambda_acc where no
   value of the tuple's channel can underflow in in, op, int (ORACLE.md 9.1) */
static inline double value_err_B6_lam(double gW, double cW, double Wp, double Wg, double lam)
{
    return gW * Wp + 2 * cW * lam * Wg;
}

static inline double value_err_B6(const consts *k, double gW, double cW, double Wp, double Wg)
{
    return value_err_B6_lam(gW, cW, Wp, Wg, k->lam_all);
}

#endif
