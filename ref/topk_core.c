/* The integer core of (E9) top-k (ref/topk_core.h); contracts proven by make prove. */
#include "ref/topk_core.h"

/* a before b in E9's order is proven */
/*@ requires \valid_read(j + a) && \valid_read(j + b);
    assigns \nothing;
    ensures \result != 0 ==> before((void *)ctx, (int *)j, a, b);
*/
static int proven_first(const void *ctx, const int *j, size_t a, size_t b)
{
    if (ref_topk_tie(ctx, a, b))
        return j[a] < j[b];
    return ref_topk_above(ctx, a, b);
}

/* Every one of perm[0..K) before every one of perm[K..C), proven. */
/*@ requires K <= C && \valid_read(perm + (0 .. C - 1));
    requires \forall integer x; 0 <= x < C ==> perm[x] < C;
    requires \valid_read(j + (0 .. C - 1));
    assigns \nothing;
    ensures \result != 0 ==> \forall integer x, y; 0 <= x < K <= y < C ==>
        before((void *)ctx, (int *)j, perm[x], perm[y]);
*/
static int certify(const void *ctx, const int *j, const size_t *perm, size_t C, size_t K)
{
    /*@ loop invariant 0 <= x <= K;
        loop invariant \forall integer x1, y1; 0 <= x1 < x && K <= y1 < C ==>
            before((void *)ctx, (int *)j, perm[x1], perm[y1]);
        loop assigns x;
        loop variant K - x;
    */
    for (size_t x = 0; x < K; x++)
        /*@ loop invariant K <= y <= C;
            loop invariant \forall integer y1; K <= y1 < y ==>
                before((void *)ctx, (int *)j, perm[x], perm[y1]);
            loop assigns y;
            loop variant C - y;
        */
        for (size_t y = K; y < C; y++)
            if (!proven_first(ctx, j, perm[x], perm[y]))
                return 0;
    return 1;
}

/*@ // value v is the key of a marked candidate below c
  predicate from_marked(int *j, unsigned char *mark, integer c, integer v) =
      \exists integer c1; 0 <= c1 < c && mark[c1] != 0 && j[c1] == v;
  predicate in_row(int32_t *row, integer len, integer v) =
      \exists integer r; 0 <= r < len && row[r] == v;
*/

/* The keys of the marked candidates, in candidate order (ascending j), to
   sel_row, then -1 pads; returns 1, or -1 when more than k are marked. */
/*@ requires 1 <= k;
    requires \valid(sel_row + (0 .. k - 1));
    requires \valid_read(j + (0 .. C - 1)) && \valid_read(mark + (0 .. C - 1));
    requires ascending((int *)j, C) && \forall integer c; 0 <= c < C ==> 0 <= j[c];
    requires \separated(sel_row + (0 .. k - 1), j + (0 .. C - 1), mark + (0 .. C - 1));
    assigns sel_row[0 .. k - 1];
    ensures \result == 1 || \result == -1;
    ensures \result == 1 ==> \forall integer r; 0 <= r < k ==>
        sel_row[r] == -1 || from_marked((int *)j, (unsigned char *)mark, C, sel_row[r]);
    ensures \result == 1 ==> \forall integer r1, r2; 0 <= r1 < r2 < k && sel_row[r2] != -1 ==>
        sel_row[r1] != -1 && sel_row[r1] < sel_row[r2];
    ensures \result == 1 ==> \forall integer c; 0 <= c < C && mark[c] != 0 ==>
        in_row(sel_row, k, j[c]);
*/
static int emit_marked(int32_t *sel_row, int k, const int *j, const unsigned char *mark, size_t C)
{
    int len = 0;
    /*@ loop invariant 0 <= c <= C && 0 <= len <= k;
        loop invariant \forall integer r; 0 <= r < len ==> from_marked((int *)j, (unsigned char *)mark, c, sel_row[r]);
        loop invariant \forall integer c1; 0 <= c1 < c && mark[c1] != 0 ==> in_row(sel_row, len, j[c1]);
        loop invariant \forall integer r1, r2; 0 <= r1 < r2 < len ==> sel_row[r1] < sel_row[r2];
        loop invariant \forall integer r; 0 <= r < len ==> sel_row[r] >= 0;
        loop invariant len > 0 ==> \exists integer c1; 0 <= c1 < c && sel_row[len - 1] == j[c1];
        loop assigns c, len, sel_row[0 .. k - 1];
        loop variant C - c;
    */
    for (size_t c = 0; c < C; c++)
        if (mark[c]) {
            if (len == k) /* more than k marked */
                return -1;
            sel_row[len] = j[c];
            /*@ assert from_marked((int *)j, (unsigned char *)mark, c + 1, sel_row[len]); */
            /*@ assert in_row(sel_row, len + 1, j[c]); */
            len++;
        }
    /*@ loop invariant len <= r <= k;
        loop invariant \forall integer r1; len <= r1 < r ==> sel_row[r1] == -1;
        loop invariant \forall integer c1; 0 <= c1 < C && mark[c1] != 0 ==> in_row(sel_row, len, j[c1]);
        loop assigns r, sel_row[len .. k - 1];
        loop variant k - r;
    */
    for (int r = len; r < k; r++)
        sel_row[r] = -1;
    return 1;
}

/* mark[c] set exactly for the candidates perm[0..K). */
/*@ requires K <= C;
    requires \valid_read(perm + (0 .. C - 1)) && \valid(mark + (0 .. C - 1));
    requires \forall integer x; 0 <= x < C ==> perm[x] < C;
    requires \separated(perm + (0 .. C - 1), mark + (0 .. C - 1));
    assigns mark[0 .. C - 1];
    ensures \forall integer c; 0 <= c < C ==> (mark[c] != 0 <==> chosen((size_t *)perm, K, c));
*/
static void mark_chosen(unsigned char *mark, const size_t *perm, size_t C, size_t K)
{
    /*@ loop invariant 0 <= c <= C && \forall integer x; 0 <= x < c ==> mark[x] == 0;
        loop assigns c, mark[0 .. C - 1];
        loop variant C - c;
    */
    for (size_t c = 0; c < C; c++)
        mark[c] = 0;
    /*@ loop invariant 0 <= x <= K;
        loop invariant \forall integer c; 0 <= c < C ==> (mark[c] != 0 <==> chosen((size_t *)perm, x, c));
        loop assigns x, mark[0 .. C - 1];
        loop variant K - x;
    */
    for (size_t x = 0; x < K; x++)
        mark[perm[x]] = 1;
}

/*@ requires 1 <= k;
    requires \valid(sel_row + (0 .. k - 1));
    requires \valid_read(j + (0 .. C - 1)) && \valid_read(perm + (0 .. C - 1));
    requires \valid(mark + (0 .. C - 1));
    requires ascending((int *)j, C) && \forall integer c; 0 <= c < C ==> 0 <= j[c];
    requires \forall integer x; 0 <= x < C ==> perm[x] < C;
    requires \separated(sel_row + (0 .. k - 1), j + (0 .. C - 1), perm + (0 .. C - 1), mark + (0 .. C - 1));
    assigns sel_row[0 .. k - 1], mark[0 .. C - 1];
    ensures -1 <= \result <= 1;
    // proven: E9's top-k, the first min(k, C) of E9's order
    // (of the inputs as given: \old)
    ensures \result == 1 ==> \old(topk((void *)ctx, (int *)j, (size_t *)perm, C, k));
    // the row: keys of chosen candidates or -1, ascending, then -1 pads
    ensures \result == 1 ==> \forall integer r; 0 <= r < k ==>
        sel_row[r] == -1 || from_marked((int *)j, mark, C, sel_row[r]);
    ensures \result == 1 ==> \forall integer r1, r2; 0 <= r1 < r2 < k && sel_row[r2] != -1 ==>
        sel_row[r1] != -1 && sel_row[r1] < sel_row[r2];
    // and every chosen candidate's key is in it
    ensures \result == 1 ==> \forall integer c; 0 <= c < C && mark[c] != 0 ==> in_row(sel_row, k, j[c]);
    // mark[c] says whether candidate c is chosen
    ensures \result == 1 ==> \forall integer c; 0 <= c < C ==>
        (mark[c] != 0 <==> chosen((size_t *)perm, topk_size(k, C), c));
*/
int ref_topk_choose(int32_t *sel_row, int k, const int *j, const size_t *perm, size_t C,
                    unsigned char *mark, const void *ctx)
{
    const size_t K = (size_t)k < C ? (size_t)k : C;
    if (!certify(ctx, j, perm, C, K))
        return 0;
    /*@ assert K == topk_size(k, C); */
    /*@ assert topk((void *)ctx, (int *)j, (size_t *)perm, C, k); */
    mark_chosen(mark, perm, C, K);
    return emit_marked(sel_row, k, j, mark, C);
}
