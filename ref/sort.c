/* A stable merge sort of indices with a caller's comparator (ref/internal.h). */
#include <assert.h>
#include <stdlib.h>

#include "ref/internal.h"

int ref_sort(size_t *perm, size_t N, int (*before)(size_t a, size_t b, void *arg), void *arg)
{
    assert((perm || N == 0) && before);
    size_t *tmp = malloc((N ? N : 1) * sizeof *tmp);
    if (!tmp)
        return -1;
    for (size_t t = 0; t < N; t++)
        perm[t] = t;
    for (size_t w = 1; w < N; w *= 2) {
        for (size_t lo = 0; lo < N; lo += 2 * w) {
            size_t mid = lo + w < N ? lo + w : N, hi = lo + 2 * w < N ? lo + 2 * w : N;
            size_t a = lo, b = mid, o = lo;
            /* take from the right run only when it strictly comes first */
            while (a < mid && b < hi)
                tmp[o++] = before(perm[b], perm[a], arg) ? perm[b++] : perm[a++];
            while (a < mid)
                tmp[o++] = perm[a++];
            while (b < hi)
                tmp[o++] = perm[b++];
        }
        for (size_t t = 0; t < N; t++)
            perm[t] = tmp[t];
    }
    free(tmp);
    return 0;
}
