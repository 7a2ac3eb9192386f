/* Atomic file replacement (atomic.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
        return NSX_E_INPUT;
    default:
        return NSX_E_IO;
    }
}

static int fail(nsx_atomic *a, int e, const char *what, nsx_err *err)
{
    char p[256];
    nsx_printable(p, sizeof p, a->path ? a->path : "?");
    nsx_atomic_abort(a);
    return nsx_err_set(err, errno_code(e), "%s: %s: %s", p, what, strerror(e));
}

/* Six characters for a temporary name: the pid, a per-process counter and
   the clock, mixed.  They need not be unpredictable (O_EXCL refuses an
   existing file, and the caller tries again), only unlikely to repeat. */
static void tmp_suffix(char out[7])
{
    static const char digits[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static atomic_ulong counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)getpid() * 0x9E3779B97F4A7C15u ^
                 (uint64_t)atomic_fetch_add(&counter, 1) * 0xBF58476D1CE4E5B9u ^
                 ((uint64_t)ts.tv_sec << 30 ^ (uint64_t)ts.tv_nsec);
    x ^= x >> 31;
    x *= 0x94D049BB133111EBu;
    x ^= x >> 29;
    for (int k = 0; k < 6; k++, x /= 62)
        out[k] = digits[x % 62];
    out[6] = '\0';
}

int nsx_atomic_open(nsx_atomic *a, const char *path, nsx_err *err)
{
    *a = (nsx_atomic){.fd = -1};
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0; /* with the '/' */
    size_t n = strlen(path);
    if (dirlen == n) { /* "" or "dir/": no file name to replace */
        char p[256];
        nsx_printable(p, sizeof p, *path ? path : "''");
        return nsx_err_set(err, NSX_E_INPUT, "%s: not a file name", p);
    }
    /* a->tmp is set only once the file exists: abort removes what it names */
    char *tmp = malloc(n + 9); /* ".", ".XXXXXX" and the NUL */
    a->path = strdup(path);
    if (!tmp || !a->path) {
        free(tmp);
        nsx_atomic_abort(a);
        return nsx_err_set(err, NSX_E_NOMEM, "out of memory");
    }
    /* DIR/.BASE.XXXXXX: the same directory, so that rename is atomic, and
       hidden.  Opened as mkstemp would, but with mode 0666 less the umask
       (what the destination would get from open) and close-on-exec: mkstemp
       gives 0600, and correcting that needs a umask() round trip that races
       with other threads. */
    for (int tries = 0; tries < 100; tries++) {
        char sfx[7];
        tmp_suffix(sfx);
        snprintf(tmp, n + 9, "%.*s.%s.%s", (int)dirlen, path, path + dirlen, sfx);
        a->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (a->fd >= 0 || errno != EEXIST)
            break;
    }
    if (a->fd < 0) {
        int e = errno;
        free(tmp);
        return fail(a, e, "cannot create a temporary file beside it", err);
    }
    a->tmp = tmp;
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
    int dfd = open(slash ? a->path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
