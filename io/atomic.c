/* Atomic file replacement (atomic.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic.h"
#include "io/json.h"

/* Errors the user can fix by naming another path are bad arguments; the
   rest (disk full, I/O error) are the machine's. */
static int errno_code(int e)
{
    switch (e) {
    case ENOENT: case ENOTDIR: case EACCES: case EPERM: case EISDIR:
    case EROFS: case ENAMETOOLONG: case ELOOP: case EEXIST: case EXDEV:
        return NSX_EXIT_BAD;
    default:
        return NSX_EXIT_INTERNAL;
    }
}

static int fail(nsx_atomic *a, int e, const char *what, nsx_err *err)
{
    char p[256];
    nsx_printable(p, sizeof p, a->path ? a->path : "?");
    nsx_atomic_abort(a);
    return nsx_err_set(err, errno_code(e), "%s: %s: %s", p, what, strerror(e));
}

int nsx_atomic_open(nsx_atomic *a, const char *path, nsx_err *err)
{
    *a = (nsx_atomic){.fd = -1};
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0; /* with the '/' */
    size_t n = strlen(path);
    a->path = malloc(n + 1);
    a->tmp = malloc(n + 10);
    if (!a->path || !a->tmp) {
        nsx_atomic_abort(a);
        return nsx_err_set(err, NSX_EXIT_INTERNAL, "out of memory");
    }
    memcpy(a->path, path, n + 1);
    /* DIR/.BASE.XXXXXX: same directory (so rename is atomic), hidden */
    snprintf(a->tmp, n + 10, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
    a->fd = mkstemp(a->tmp);
    if (a->fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL; /* nothing was created: nothing to remove */
        return fail(a, e, "cannot create a temporary file beside it", err);
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(a->fd, 0666 & ~um) != 0)
        return fail(a, errno, "cannot set the mode of the temporary file", err);
    return 0;
}

int nsx_atomic_write(nsx_atomic *a, const void *buf, size_t n, nsx_err *err)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(a->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return fail(a, w < 0 ? errno : EIO, "write failed", err);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int nsx_atomic_commit(nsx_atomic *a, nsx_err *err)
{
    if (fsync(a->fd) != 0)
        return fail(a, errno, "fsync failed", err);
    int fd = a->fd;
    a->fd = -1;
    if (close(fd) != 0)
        return fail(a, errno, "close failed", err);
    if (rename(a->tmp, a->path) != 0)
        return fail(a, errno, "cannot rename the temporary file into place", err);
    /* Make the rename itself durable. */
    const char *slash = strrchr(a->path, '/');
    if (slash)
        a->path[slash == a->path ? 1 : slash - a->path] = '\0';
    int dfd = open(slash ? a->path : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(a->tmp);
    free(a->path);
    *a = (nsx_atomic){.fd = -1};
    return 0;
}

void nsx_atomic_abort(nsx_atomic *a)
{
    if (a->fd >= 0)
        close(a->fd);
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    *a = (nsx_atomic){.fd = -1};
}
