/*
 * The probabilistic bound (docs/ORACLE.md section 9, model key bound=prob):
 * the key groups of 9.3 and the terms P1-P4 that replace X1, X2, X3 and
 * Theta of B8 for a row.  Internal to oracle/; oracle/bound.c computes the
 * per-tuple coefficients in its passes and calls these.
 */
#ifndef NSX_ORACLE_BOUND_PROB_H
#define NSX_ORACLE_BOUND_PROB_H

#include <stddef.h>

#include "nsimplex/problem.h"

/* Azuma-Hoeffding applications per element (P1-P4), among which the
   failure probability pfail is split (union bound, 9.2). */
#define NSX_PROB_APPS 4

/* The sums of 9.3 and 9.9 per key group: for each dimension m, key j and
   channel c, over the row's tuples J with J_m = j, NSX_PROB_GSUMS sums:
   C = sum a_J |s| M_J, A = sum a_J and B = sum a_J s^2 sum_l m_{J,l}^2;
   only the keys a row touches are cleared again. */
#define NSX_PROB_GSUMS 3
typedef struct nsx_prob_groups {
    int n, L, dv;
    double *sum;         /* n L dv NSX_PROB_GSUMS */
    unsigned char *seen; /* n L */
    int *list;           /* n L: the touched keys, per dimension */
    int count[NSX_MAX_ORDER];
} nsx_prob_groups;

/* 0 or NSX_E_NOMEM (nothing to free then). */
int nsx_prob_groups_init(nsx_prob_groups *g, int n, int L, int dv);
void nsx_prob_groups_free(nsx_prob_groups *g);

/* The dv NSX_PROB_GSUMS sums of key j in dimension m (zero on first touch
   in a row). */
static inline double *nsx_prob_group(nsx_prob_groups *g, int m, int j)
{
    size_t at = (size_t)m * (size_t)g->L + (size_t)j;
    double *x = g->sum + at * (size_t)g->dv * NSX_PROB_GSUMS;
    if (!g->seen[at]) {
        g->seen[at] = 1;
        g->list[(size_t)m * (size_t)g->L + (size_t)g->count[m]++] = j;
        for (int c = 0; c < g->dv * NSX_PROB_GSUMS; c++)
            x[c] = 0;
    }
    return x;
}

/* Tuple J's part of its group's sums at channel c: a = a_J, sM = |s| M_J,
   sM2 = s^2 sum_l m_{J,l}^2. */
static inline void nsx_prob_group_add(double *x, int c, double a, double sM, double sM2)
{
    double *y = x + (size_t)c * NSX_PROB_GSUMS;
    y[0] += a * sM;
    y[1] += a;
    y[2] += a * sM2;
}

/* 9.9 (T4): a bound of sum_l (sum_J a_J |s| m_{J,l})^2 over a set of tuples
   from C = sum a_J |s| M_J, A = sum a_J, B = sum a_J s^2 sum_l m_{J,l}^2:
   the smaller of C^2 (every component coherent) and A B (Cauchy-Schwarz
   with the weights a_J, for each l); C^2 when A B is not a number (an
   infinite B times a zero weight). */
static inline double nsx_prob_comp_sq(double C, double A, double B)
{
    double cc = C * C, ab = A * B;
    return ab < cc ? ab : cc;
}

/* sq[m dv + c] = sum over the touched keys j of nsx_prob_comp_sq of their
   sums (9.3, 9.9), rounded up (9.5); clears the groups for the next row. */
void nsx_prob_groups_take(nsx_prob_groups *g, double *sq);

/* lambda of 9.2: P(|sum| >= lambda sqrt(sum c_k^2)) <= 2 exp(-lambda^2/2) =
   pfail / NSX_PROB_APPS. */
double nsx_prob_lambda(double pfail);

/* 9.3 (P1): the key groups' variance bound, the largest over which
   left-operand factor m* (0 <= m* < n - 1) takes the npk products:
   max_m* sum_m (fk[m] + npk ux [m = m*])^2 sq[m dv + c]. */
double nsx_prob_key_var(const double *fk, int n, double npk, double ux, const double *sq, int dv, int c);

#endif
