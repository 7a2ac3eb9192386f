/*
 * The exact number of allowed tuples (simd/simd.h, nsx_simd_count_tuples),
 * the denominator of every useful-GFLOP/s figure.
 *
 * Without distinct the allowed tuples of query i are C_1 x ... x C_n
 * (simd/cands.h), so the count is the product of the list lengths.  With
 * distinct it is the number of tuples of pairwise different keys drawn from
 * C_1..C_n, which Moebius inversion on the lattice of set partitions gives
 * exactly:
 *     #distinct = sum over partitions pi of {1..n} of
 *                 mu(pi) prod_{blocks B of pi} |intersection_{m in B} C_m|,
 *     mu(pi) = prod_B (-1)^(|B|-1) (|B|-1)!
 * (a partition's product counts the tuples equal within each block).  The
 * intersections come from one merge of the sorted lists.
 */
#include <assert.h>
#include <stdlib.h>

#include "simd/cands.h"
#include "simd/simd.h"

__extension__ typedef __int128 i128;

/* The set partitions of {0..n-1}: for each, its coefficient mu and its
   blocks as bit masks (restricted growth strings, in order). */
typedef struct partitions {
    int count;
    long long coef[4140];            /* Bell(8) = 4140 */
    unsigned char block[4140][NSX_MAX_ORDER];
    int nblocks[4140];
} partitions;

static void partitions_init(partitions *pt, int n)
{
    static const long long fact[NSX_MAX_ORDER] = {1, 1, 2, 6, 24, 120, 720, 5040};
    int a[NSX_MAX_ORDER] = {0}; /* a[m]: block of element m, a[m] <= 1 + max a[<m] */
    pt->count = 0;
    for (;;) {
        int nb = 0;
        unsigned char blk[NSX_MAX_ORDER] = {0};
        for (int m = 0; m < n; m++) {
            blk[a[m]] |= (unsigned char)(1u << m);
            if (a[m] + 1 > nb)
                nb = a[m] + 1;
        }
        long long mu = 1;
        for (int t = 0; t < nb; t++) {
            int size = __builtin_popcount(blk[t]);
            mu *= ((size - 1) % 2 ? -1 : 1) * fact[size - 1];
            pt->block[pt->count][t] = blk[t];
        }
        pt->coef[pt->count] = mu;
        pt->nblocks[pt->count++] = nb;
        /* next restricted growth string */
        int m = n - 1;
        for (; m > 0; m--) {
            int top = 0;
            for (int z = 0; z < m; z++)
                if (a[z] > top)
                    top = a[z];
            if (a[m] <= top) {
                a[m]++;
                break;
            }
            a[m] = 0;
        }
        if (m == 0)
            return;
    }
}

/* |intersection of C_m over the dimensions in mask| for every mask, from one
   n-way merge of the sorted lists. */
static void intersections(int n, int *const *list, const int *cnt, uint64_t inter[256])
{
    uint64_t exact[256] = {0}; /* keys lying in exactly the lists of mask */
    int pos[NSX_MAX_ORDER] = {0};
    for (;;) {
        int key = -1;
        for (int m = 0; m < n; m++)
            if (pos[m] < cnt[m] && (key < 0 || list[m][pos[m]] < key))
                key = list[m][pos[m]];
        if (key < 0)
            break;
        unsigned mask = 0;
        for (int m = 0; m < n; m++)
            if (pos[m] < cnt[m] && list[m][pos[m]] == key) {
                mask |= 1u << m;
                pos[m]++;
            }
        exact[mask]++;
    }
    for (unsigned s = 1; s < 1u << n; s++) {
        inter[s] = 0;
        for (unsigned t = s; t < 1u << n; t = (t + 1) | s) /* supersets of s */
            inter[s] += exact[t];
    }
}

int nsx_simd_count_tuples(const nsx_kernel_problem *p, int i0, int i1, int step,
                          uint64_t *rows, uint64_t *total)
{
    assert(p && total);
    nsx_kernel_io io = {0};
    float none = 0.0f; /* nsx_simd_check wants buffers; none is read here */
    io.q = io.o = &none;
    for (int m = 0; m < p->n; m++)
        io.k[m] = io.v[m] = &none;
    if (nsx_simd_check(p, &io, NULL, 0) || i0 < 0 || i1 > p->L || step < 1)
        return NSX_SIMD_UNSUPPORTED;
    partitions *pt = p->distinct ? malloc(sizeof *pt) : NULL;
    int *list[NSX_MAX_ORDER] = {0}, *selrow = malloc(((size_t)p->topk + 1) * sizeof(int));
    int ret = pt || !p->distinct ? NSX_SIMD_OK : NSX_SIMD_ENOMEM;
    for (int m = 0; m < p->n; m++) {
        list[m] = malloc((size_t)nsx_cands_cap(p, m) * sizeof(int));
        if (!list[m])
            ret = NSX_SIMD_ENOMEM;
    }
    if (!selrow)
        ret = NSX_SIMD_ENOMEM;
    if (pt)
        partitions_init(pt, p->n);
    uint64_t sum = 0;
    for (int i = i0; i < i1 && ret == NSX_SIMD_OK; i += step) {
        uint64_t row = 0;
        for (int b = 0; b < p->B && ret == NSX_SIMD_OK; b++) {
            int nsel = p->topk > 0 ? nsx_sel_row(p, b, i, selrow) : 0, cnt[NSX_MAX_ORDER];
            uint64_t all = 1;
            for (int m = 0; m < p->n; m++) {
                cnt[m] = nsx_cands(p, m, i, selrow, nsel, list[m]);
                if (__builtin_mul_overflow(all, (uint64_t)cnt[m], &all))
                    ret = NSX_SIMD_EOVERFLOW;
            }
            if (ret == NSX_SIMD_OK && pt && all > 0) {
                /* Each product is at most `all` < 2^64 and |mu| <= 7!, so the
                   4140 terms sum far inside 128 bits. */
                uint64_t inter[256];
                intersections(p->n, list, cnt, inter);
                i128 acc = 0;
                for (int t = 0; t < pt->count; t++) {
                    i128 term = pt->coef[t];
                    for (int k = 0; k < pt->nblocks[t]; k++)
                        term *= inter[pt->block[t][k]];
                    acc += term;
                }
                all = (uint64_t)acc;
            }
            if (__builtin_add_overflow(row, all, &row))
                ret = NSX_SIMD_EOVERFLOW;
        }
        uint64_t heads;
        if (rows)
            rows[(i - i0) / step] = row;
        if (__builtin_mul_overflow(row, (uint64_t)p->H, &heads) ||
            __builtin_add_overflow(sum, heads, &sum))
            ret = NSX_SIMD_EOVERFLOW;
    }
    for (int m = 0; m < p->n; m++)
        free(list[m]);
    free(selrow);
    free(pt);
    if (ret == NSX_SIMD_OK && total)
        *total = sum;
    return ret;
}
