/* Test support: a seeded generator and allocated problems (tests/harness.h). */
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

int rng_int(rng *r, int lo, int hi)
{
    return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

double rng_dyadic(rng *r, int bits, int frac)
{
    int m = rng_int(r, -((1 << bits) - 1), (1 << bits) - 1);
    double x = m;
    for (int t = 0; t < frac; t++)
        x /= 2;
    return x;
}

void tcase_alloc(tcase *t, const nsx_problem *p)
{
    if (nsx_instance_alloc(t, p))
        abort();
}

static void fill(double *x, size_t count, rng *r, int bits, int frac)
{
    for (size_t t = 0; t < count; t++)
        x[t] = rng_dyadic(r, bits, frac);
}

void tcase_fill(tcase *t, rng *r, int bits, int frac)
{
    const nsx_problem *p = &t->p;
    size_t BL = (size_t)p->B * p->L;
    fill(t->q, nsx_q_size(p), r, bits, frac);
    for (int m = 0; m < p->n; m++) {
        fill(t->k[m], nsx_k_size(p), r, bits, frac);
        fill(t->v[m], nsx_v_size(p), r, bits, frac);
    }
    if (t->idx_q) {
        fill(t->idx_q, BL * p->sel.Hi * p->sel.di, r, bits, frac);
        fill(t->idx_k, BL * p->sel.di, r, bits, frac);
        fill(t->idx_w, BL * p->sel.Hi, r, bits, frac);
    }
    if (t->idx_s)
        fill(t->idx_s, BL * p->L, r, bits, frac);
}

void tcase_free(tcase *t)
{
    nsx_instance_free(t);
}

void tcase_random_sel(tcase *t, rng *r)
{
    const nsx_problem *p = &t->p;
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            int32_t *row = t->sel + nsx_sel_at(p, b, i, 0);
            for (int x = 0; x < p->sel.k; x++) {
                int j, dup;
                do {
                    j = rng_int(r, -1, p->L);
                    dup = 0;
                    for (int y = 0; y < x; y++)
                        dup |= j >= 0 && j < p->L && row[y] == j;
                } while (dup);
                row[x] = j;
            }
        }
}
