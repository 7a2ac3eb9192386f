/*
 * The SIMD forward's and backward's whole-tile decisions (simd/forward.c,
 * simd/backward.c), each a small function proven by `make prove`
 * (docs/PROOFS.md): which work items are skipped whole, how the inner keys
 * are cut into chunks and column blocks,
 * which columns and rows of a block are live, and which prefixes the
 * odometer skips.  Together with the candidate lists (simd/cands.h) they fix
 * the tuples a query visits: exactly the allowed ones, none skipped, none
 * extra.
 */
#ifndef NSX_SIMD_TILES_H
#define NSX_SIMD_TILES_H

#include <stdint.h>

/* 1 when some cnt[m] (m < n) is 0: the slice C_1 x ... x C_n is then empty
   and the whole work item is skipped; 0 otherwise. */
int nsx_tile_empty(const int *cnt, int n);

/* The block of [0, total) that begins at start, blocks of at most width:
   its length min(width, total - start), 0 exactly when start = total.
   The kernel's walks take the next block at start + length, so the blocks
   tile [0, total).  Pre: 0 <= start <= total, width >= 1. */
int nsx_tile_len(int total, int start, int width);

/* The panel stride of a chunk of nk keys: nk rounded up to a multiple of
   nr, so a block of nr columns at any block start < nk stays inside it.
   Pre: nk >= 1, nr >= 1 (nk + nr fits an int). */
int nsx_tile_ld(int nk, int nr);

/* Bits 0..nc-1 set, the rest clear: the live columns of a block of nc
   keys (1 <= nc <= 32). */
uint32_t nsx_tile_cols(int nc);

/* Row r's mask of the block at chunk position cb: the columns of cols when
   the row is a real prefix (live != 0), less, with distinct, the column of
   each of the row's prefix keys found in the chunk (ex[0..np): their chunk
   positions, -1 when absent); 0 for a padding row. */
uint32_t nsx_tile_row_mask(uint32_t cols, int live, const int *ex, int np, int cb);

/* The chunk positions of a row's prefix keys: ex[k] = the position of
   keys[k] in inner[0..nk) (ascending), or -1 when it is not there. */
void nsx_tile_ex(const int *inner, int nk, const int *keys, int np, int *ex);

/* The lowest level a (0 < a < np) whose key repeats a key of a lower level,
   or -1 when keys[0..np) are pairwise different. */
int nsx_tile_dup_level(const int *keys, int np);

/* The odometer over the prefixes: digit k of idx walks 0..lim[k]-1, the
   last digit fastest.  Moves idx to the next prefix; with dup >= 0, past
   every prefix that shares digits 0..dup with this one (each repeats the
   key of level dup).  Returns the lowest digit that moved, or -1 when the
   walk is over (idx then all 0). */
int nsx_tile_next(int *idx, const int *lim, int np, int dup);

#endif /* NSX_SIMD_TILES_H */
