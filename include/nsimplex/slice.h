/*
 * The slice Z(i) of docs/SPEC.md (E2), one definition for everything that
 * enumerates or tests allowed tuples (oracle/, fuzz/, vectors/):
 *
 *   allowed(i,J) = causal(i,J) and window(i,J) and select(i,J) and distinct(J)
 *
 * Every term but distinct is a per-dimension predicate on one key j_m, so
 * Z(i) = (C_1(i) x ... x C_n(i)) minus the tuples with a repeated key (when
 * distinct), with C_m(i) the keys dimension m may use.  The first group of
 * functions is those predicates and the key range [lo, hi] that the causal
 * edge and a window leave: small, pure, integer-only and overflow-free
 * (`j - i < w`, never `j < i + w`: w may be as large as INT_MAX), so that
 * they can be proved (Frama-C WP).  The second is an iterator over Z(i).
 *
 * ref/mask.c keeps the spec's text of the same predicate, deliberately
 * apart (the reference reads like the spec); tests/test_ref.c checks that
 * the two agree on every small problem.
 */
#ifndef NSIMPLEX_SLICE_H
#define NSIMPLEX_SLICE_H

#include <stddef.h>
#include <stdint.h>

#include "nsimplex/problem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the terms of E2, per dimension --------------------------------------- */

/* causal_m(i, j): 1 when causal is off, else j <= i.
   Pre: causal is 0 or 1; i >= 0, j >= 0. */
int nsx_key_causal(int causal, int i, int j);

/* window_m(i, j) for the window w of dimension m: 1 when w = 0; else
   i - w < j, and also j - i < w when causal is off (SPEC E2).
   Pre: causal is 0 or 1; w >= 0; i >= 0, j >= 0. */
int nsx_key_window(int causal, int w, int i, int j);

/* j in S(i): 1 when some entry of row[0..k-1] equals j and is a valid
   position (0 <= row[r] < L); -1 pads and out-of-range entries select
   nothing.  Pre: k >= 1, L >= 1, row points to k entries. */
int nsx_key_selected(const int32_t *row, int k, int L, int j);

/* distinct(J): 1 when J[0..n-1] are pairwise different.
   Pre: 1 <= n <= NSX_MAX_ORDER, J points to n entries. */
int nsx_tuple_distinct(int n, const int *J);

/* The keys the causal edge and a window w leave query i, as one range:
   for every j in 0..L-1, lo <= j <= hi exactly when nsx_key_causal and
   nsx_key_window hold.  Never empty: lo <= i <= hi.
   Pre: L >= 1; 0 <= i < L; w >= 0; causal is 0 or 1. */
void nsx_key_range(int L, int causal, int w, int i, int *lo, int *hi);

/* Every term of dimension m (0-based) for key j of query i: causal,
   window, and selection when m is a restricted dimension (sel_row is
   then the row S(i), k entries; it is not read otherwise and may be NULL).
   Pre: p passed nsx_problem_check; 0 <= i, j < p->L; 0 <= m < p->n. */
int nsx_key_allowed(const nsx_problem *p, const int32_t *sel_row, int i, int m, int j);

/* allowed(i, J) of E2: nsx_key_allowed for every dimension, and distinct.
   Pre: as nsx_key_allowed; J points to p->n keys in 0..p->L-1. */
int nsx_slice_allowed(const nsx_problem *p, const int32_t *sel_row, int i, const int *J);

/* An upper bound of |Z(i)|, exact without selection and distinct: the
   product over m of the size of C_m's range, at most k on a restricted
   dimension.  Saturates at SIZE_MAX (n = 8, L = 2^20 is 2^160 tuples).
   Pre: p passed nsx_problem_check; 0 <= i < p->L. */
size_t nsx_slice_bound(const nsx_problem *p, int i);

/* ---- the iterator over Z(i) --------------------------------------------------- */

/*
 * For one problem, reused row after row:
 *
 *     nsx_slice z;
 *     if (nsx_slice_init(&z, p)) ... out of memory
 *     nsx_slice_start(&z, i, sel_row);
 *     while (nsx_slice_next(&z))
 *         ... z.J[0..n-1] is the next allowed tuple
 *     nsx_slice_free(&z);
 *
 * The tuples come in lexicographic order of (j_1, ..., j_n), the last
 * dimension fastest (the order of ref/context.c's odometer).
 */
typedef struct nsx_slice {
    const nsx_problem *p;
    int *keys[NSX_MAX_ORDER]; /* C_m(i), ascending (after nsx_slice_start) */
    int len[NSX_MAX_ORDER];   /* |C_m(i)| */
    int J[NSX_MAX_ORDER];     /* the current tuple (after nsx_slice_next) */
    int moved;                /* the lowest dimension whose key changed since
                                 the previous tuple (0 for the first) */
    int pos[NSX_MAX_ORDER];   /* J[m] = keys[m][pos[m]] */
    int state;                /* 0: not started, 1: running, 2: done */
    int *store;               /* n * L keys */
    unsigned char *selmap;    /* L flags: j in S(i) */
} nsx_slice;

/* Scratch for p (p->n * p->L ints, p->L bytes).  0, or NSX_E_NOMEM.
   Pre: p passed nsx_problem_check; p outlives z. */
int nsx_slice_init(nsx_slice *z, const nsx_problem *p);

/* The key lists C_m(i) of query i (sel_row: S(i), k entries, read when
   the problem has a selection; else may be NULL), and the iteration reset
   to before the first tuple.  Returns the size of their product
   (saturating at SIZE_MAX): |Z(i)| without distinct, 0 when some C_m(i)
   is empty.  Pre: 0 <= i < p->L. */
size_t nsx_slice_start(nsx_slice *z, int i, const int32_t *sel_row);

/* Moves to the next tuple of Z(i): 1 with z->J and z->moved set, or 0 when
   there is none left. */
int nsx_slice_next(nsx_slice *z);

/* Back to before the first tuple of the same Z(i), for a second pass. */
void nsx_slice_rewind(nsx_slice *z);

void nsx_slice_free(nsx_slice *z);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_SLICE_H */
