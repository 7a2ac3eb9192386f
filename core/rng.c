/* splitmix64 and what is drawn from it (include/nsimplex/rng.h). */
#include <math.h>

#include "nsimplex/rng.h"

uint64_t nsx_rng_next(nsx_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double nsx_rng_uniform(nsx_rng *r)
{
    return ((double)(nsx_rng_next(r) >> 11) + 0.5) * 0x1p-53;
}

double nsx_rng_normal(nsx_rng *r)
{
    double radius = sqrt(-2 * log(nsx_rng_uniform(r)));
    double angle = 6.283185307179586 * nsx_rng_uniform(r);
    return radius * cos(angle);
}

int nsx_rng_below(nsx_rng *r, int n)
{
    return (int)(nsx_rng_next(r) % (uint64_t)n);
}
