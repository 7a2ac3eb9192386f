/* The safetensors reader's integer checks (io/st_layout.h); the contracts
   are proven by make prove (docs/PROOFS.md). */
#include "io/st_layout.h"

/*@ // the end of tensor i's bytes
  logic integer end_of(nsx_tensor *t, integer i) = t[i].offset + t[i].nbytes;
  // t[0..n) tile [0, size): each begins where the one before ends
  predicate tiles(nsx_tensor *t, integer n, integer size) =
      (n == 0 ==> size == 0) &&
      (n > 0 ==> t[0].offset == 0 && end_of(t, n - 1) == size) &&
      (\forall integer i; 0 < i < n ==> t[i].offset == end_of(t, i - 1));
  // the product of shape[0..n)
  logic integer prod(int64_t *shape, integer n) =
      n <= 0 ? 1 : prod(shape, n - 1) * shape[n - 1];
*/

/*@ requires size >= 8;
    assigns \nothing;
    ensures 0 <= \result <= 2;
    ensures \result == 0 <==> hlen <= NSX_ST_MAX_HEADER && 8 + hlen <= size;
*/
int nsx_st_check_header_len(uint64_t hlen, uint64_t size)
{
    if (hlen > NSX_ST_MAX_HEADER)
        return 1;
    if (hlen > size - 8)
        return 2;
    return 0;
}

/*@ requires 0 <= rank <= NSX_ST_MAX_RANK && esize >= 1;
    requires \valid_read(shape + (0 .. rank - 1));
    requires \forall integer r; 0 <= r < rank ==> shape[r] >= 0;
    requires \valid(count) && \valid(nbytes) && \separated(count, nbytes, shape + (0 .. rank - 1));
    assigns *count, *nbytes;
    ensures \result == 0 || \result == 1;
    ensures \result == 0 ==> *count == prod((int64_t *)shape, rank) &&
                             *nbytes == *count * esize && *nbytes <= SIZE_MAX;
*/
int nsx_st_shape_bytes(const int64_t *shape, int rank, size_t esize, size_t *count,
                       size_t *nbytes)
{
    uint64_t c = 1;
    int overflow = 0;
    /*@ loop invariant 0 <= r <= rank;
        loop invariant !overflow ==> c == prod((int64_t *)shape, r);
        loop assigns r, c, overflow;
        loop variant rank - r;
    */
    for (int r = 0; r < rank; r++) {
        uint64_t dim = (uint64_t)shape[r];
        if (dim != 0 && c > UINT64_MAX / dim)
            overflow = 1;
        /*@ assert !overflow ==> c * dim <= UINT64_MAX; */
        c *= dim;
    }
    if (overflow || c > SIZE_MAX / esize)
        return 1;
    /*@ assert c * esize <= SIZE_MAX; */
    size_t nb = (size_t)c * esize;
    /*@ assert nb == c * esize; */
    *count = (size_t)c;
    *nbytes = nb;
    return 0;
}

/*@ assigns \nothing;
    ensures 0 <= \result <= 3;
    ensures \result == 0 <==> begin <= end <= bufsize && end - begin == nbytes;
    ensures \result == 1 <==> end < begin;
*/
int nsx_st_check_range(uint64_t begin, uint64_t end, uint64_t bufsize, uint64_t nbytes)
{
    if (begin > end)
        return 1;
    if (end > bufsize)
        return 2;
    if (end - begin != nbytes)
        return 3;
    return 0;
}

/*@ requires \valid_read(t + (0 .. n - 1));
    requires \forall integer i; 0 <= i < n ==> end_of((nsx_tensor *)t, i) <= bufsize;
    requires \valid(where) && \valid(at) && \separated(where, at, t + (0 .. n - 1));
    assigns *where, *at;
    ensures 0 <= \result <= 3;
    // (of the tensors as given: \old)
    ensures \result == 0 ==> \old(tiles((nsx_tensor *)t, n, bufsize));
    ensures \result != 0 ==> !\old(tiles((nsx_tensor *)t, n, bufsize));
    // accepted: in bounds and no two overlap
    ensures \result == 0 ==> \forall integer a, b; 0 <= a < b < n ==>
        end_of((nsx_tensor *)t, a) <= t[b].offset;
    ensures \result == 1 || \result == 2 ==> *where < n &&
        *at == (*where == 0 ? 0 : end_of((nsx_tensor *)t, *where - 1));
    ensures \result == 1 ==> t[*where].offset < *at;
    ensures \result == 2 ==> t[*where].offset > *at;
    ensures \result == 3 ==> *at != bufsize && *at == (n == 0 ? 0 : end_of((nsx_tensor *)t, n - 1));
*/
int nsx_st_check_tiling(const nsx_tensor *t, size_t n, uint64_t bufsize, size_t *where,
                        uint64_t *at)
{
    uint64_t e = 0;
    /*@ loop invariant 0 <= i <= n;
        loop invariant e == (i == 0 ? 0 : end_of((nsx_tensor *)t, i - 1));
        loop invariant tiles((nsx_tensor *)t, i, e);
        loop invariant \forall integer a; 0 <= a < i ==> end_of((nsx_tensor *)t, a) <= e;
        loop invariant \forall integer a, b; 0 <= a < b < i ==>
            end_of((nsx_tensor *)t, a) <= t[b].offset;
        loop assigns i, e;
        loop variant n - i;
    */
    for (size_t i = 0; i < n; i++) {
        if (t[i].offset != e) {
            /*@ assert i == 0 ==> t[0].offset != 0; */
            /*@ assert i > 0 ==> t[i].offset != end_of((nsx_tensor *)t, i - 1); */
            /*@ assert !tiles((nsx_tensor *)t, n, bufsize); */
            *where = i;
            *at = e;
            return t[i].offset < e ? 1 : 2;
        }
        e = t[i].offset + t[i].nbytes;
    }
    /*@ assert e != bufsize ==> !tiles((nsx_tensor *)t, n, bufsize); */
    *where = n;
    *at = e;
    return e != bufsize ? 3 : 0;
}
