/*
 * The probabilistic bound's shared pieces (docs/ORACLE.md section 9): the
 * key groups of 9.3, lambda of 9.2 and the key groups' variance bound.
 * The per-tuple coefficients and the terms P1-P4 are in oracle/bound.c,
 * next to the worst-case terms they replace.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/error.h"
#include "oracle/bound_prob.h"

int nsx_prob_groups_init(nsx_prob_groups *g, int n, int L, int dv)
{
    memset(g, 0, sizeof *g);
    g->n = n, g->L = L, g->dv = dv;
    size_t keys = (size_t)n * (size_t)L;
    g->sum = malloc(keys * (size_t)dv * NSX_PROB_GSUMS * sizeof *g->sum);
    g->seen = calloc(keys, 1);
    g->list = malloc(keys * sizeof *g->list);
    if (!g->sum || !g->seen || !g->list) {
        nsx_prob_groups_free(g);
        return NSX_E_NOMEM;
    }
    return 0;
}

void nsx_prob_groups_free(nsx_prob_groups *g)
{
    free(g->sum);
    free(g->seen);
    free(g->list);
    memset(g, 0, sizeof *g);
}

void nsx_prob_groups_take(nsx_prob_groups *g, double *sq)
{
    const int dv = g->dv;
    for (int m = 0; m < g->n; m++) {
        double *out = sq + (size_t)m * (size_t)dv;
        for (int c = 0; c < dv; c++)
            out[c] = 0;
        for (int t = 0; t < g->count[m]; t++) {
            size_t at = (size_t)m * (size_t)g->L + (size_t)g->list[(size_t)m * (size_t)g->L + (size_t)t];
            const double *x = g->sum + at * (size_t)dv * NSX_PROB_GSUMS;
            for (int c = 0; c < dv; c++, x += NSX_PROB_GSUMS)
                out[c] += nsx_prob_comp_sq(x[0], x[1], x[2]);
            g->seen[at] = 0;
        }
        g->count[m] = 0;
    }
}

double nsx_prob_lambda(double pfail)
{
    /* 2 exp(-lambda^2 / 2) = pfail / K  <=>  lambda = sqrt(2 ln(2 K / pfail)),
       enlarged by 2^-40 relative against the rounding of log and sqrt */
    return sqrt(2 * log(2.0 * NSX_PROB_APPS / pfail)) * (1 + 0x1p-40);
}

double nsx_prob_key_var(const double *fk, int n, double npk, double ux, const double *sq, int dv, int c)
{
    double best = 0;
    /* the left operand's factors are Q, s, K_1 .. K_{n-1}: a product that
       involves a key is assigned to the group of its lowest key, which is
       one of the first n - 1; the sum is convex in the assignment, so its
       largest value is at a vertex: all npk products in one group */
    int vertices = n > 1 && npk > 0 ? n - 1 : 1;
    for (int ms = 0; ms < vertices; ms++) {
        double v = 0;
        for (int m = 0; m < n; m++) {
            double f = fk[m] + (n > 1 && npk > 0 && m == ms ? npk * ux : 0.0);
            v += f * f * sq[(size_t)m * (size_t)dv + (size_t)c];
        }
        best = fmax(best, v);
    }
    return best;
}
