/*
 * The safetensors reader's integer checks (io/safetensors.c), apart from
 * the JSON and the messages so that they are proven by `make prove`
 * (docs/PROOFS.md): every size and offset computed without overflow, and a
 * data buffer accepted only when its tensors tile it exactly.
 */
#ifndef NSX_IO_ST_LAYOUT_H
#define NSX_IO_ST_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

/* The 8-byte header length hlen of a file of size >= 8 bytes: 0 when
   hlen <= NSX_ST_MAX_HEADER and 8 + hlen <= size (the data buffer is then
   size - 8 - hlen bytes), 1 over the limit, 2 past the end of the file. */
int nsx_st_check_header_len(uint64_t hlen, uint64_t size);

/* The elements of shape[0..rank) and their bytes at esize >= 1 each: 0 with
   *count and *nbytes set when both fit (64 bits, size_t), else 1 (any
   overflow on the way, as the reference implementation). */
int nsx_st_shape_bytes(const int64_t *shape, int rank, size_t esize, size_t *count,
                       size_t *nbytes);

/* data_offsets [begin, end] of a tensor of nbytes in a bufsize-byte data
   buffer: 0 when begin <= end <= bufsize and end - begin = nbytes, 1 when
   end < begin, 2 past the buffer, 3 a size other than nbytes. */
int nsx_st_check_range(uint64_t begin, uint64_t end, uint64_t bufsize, uint64_t nbytes);

/* t[0..n), sorted by offset, each inside the buffer: 0 when they tile
   [0, bufsize) exactly (each begins where the one before ends, the first at
   0, the last ends at bufsize), so contiguous, in bounds and without
   overlap; else 1 (t[*where] overlaps the one before, which ends at *at),
   2 (a gap [*at, t[*where].offset) before it), 3 (bytes [*at, bufsize)
   after the last). */
int nsx_st_check_tiling(const nsx_tensor *t, size_t n, uint64_t bufsize, size_t *where,
                        uint64_t *at);

#endif
