/*
 * Atomic file replacement: write to a temporary file in the destination's
 * directory, fsync it, rename it over the destination.  Readers see the old
 * file or the complete new one, never a part; on any error the temporary
 * file is removed, so nothing half-written is left behind (a process killed
 * mid-write can still leave a hidden ".NAME.XXXXXX" file, which nothing
 * mistakes for a result).  A file size limit is such an error, not a kill:
 * the program ignores SIGXFSZ (cli/main.c), so the write fails with EFBIG
 * (NSX_E_IO) and the temporary file is removed.
 */
#ifndef NSX_IO_ATOMIC_H
#define NSX_IO_ATOMIC_H

#include <stddef.h>

#include "nsimplex/error.h"

typedef struct nsx_atomic {
    int fd;        /* the temporary file, -1 when none is open */
    char *tmp;     /* its name, "DIR/.BASE.XXXXXX" */
    char *path;    /* the destination */
} nsx_atomic;

/* Creates the temporary file for path (mode 0666 less the umask, as open
   would give; close-on-exec).  Returns 0, or NSX_E_INPUT when path names
   no file ("", "dir/") or the directory is missing or not writable (err
   names path), NSX_E_NOMEM when out of memory. */
int nsx_atomic_open(nsx_atomic *a, const char *path, nsx_err *err);

/* Appends n bytes.  On error (disk full, file size limit: NSX_E_IO)
   the temporary file is removed (as nsx_atomic_abort) before returning. */
int nsx_atomic_write(nsx_atomic *a, const void *buf, size_t n, nsx_err *err);

/* fsync, close, rename into place, then fsync the directory (best effort:
   the rename has happened by then).  On error the temporary file is removed
   and the destination is untouched.  Returns 0 or an exit code. */
int nsx_atomic_commit(nsx_atomic *a, nsx_err *err);

/* Closes and removes the temporary file, if any; safe to call twice. */
void nsx_atomic_abort(nsx_atomic *a);

#endif
