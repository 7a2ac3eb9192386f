/* One kernel call and where it runs (runner/iso.h), and the fork server
   (runner/runner.h, docs/FUZZING.md 4.1). */
#define _GNU_SOURCE /* sigabbrev_np, memfd_create, close_range, MAP_ANONYMOUS */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner/iso.h"
#include "simd/simd.h"

#define CANARY 0xa5

/* What the process that runs a call reports through the status page (the
   region's first page). */
typedef struct iso_status {
    volatile int done, rc;  /* the call returned rc */
    volatile int guard;     /* 1: it faulted on a guard page */
    volatile int buf;       /* ... next to this output */
    volatile long off;      /* ... at this element offset from its start */
    volatile uint64_t seq;  /* a server's runner: the call it took */
    volatile long gen;      /* ... and which runner it is (1, 2, ..) */
} iso_status;

static size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

/* ---- the call, in whichever process runs it -------------------------------- */

/* The kernel's call on the region at base (or, in process, on in[] and
   out[]): the ABI's return value. */
static int invoke(const nsx_kernel *k, const iso_req *rq, void *const *in, void *const *out)
{
    if (rq->op == ISO_INDEXER) {
        const nsx_indexer_io iio = {in[ISO_IDX_Q], in[ISO_IDX_K], in[ISO_IDX_W], out[0], out[1]};
        return nsx_kernel_index(k, &rq->ip, &iio);
    }
    nsx_kernel_problem kp = rq->kp;
    kp.sel = in[ISO_SEL];
    if (rq->op == ISO_FORWARD) {
        nsx_kernel_io io = {.q = in[ISO_Q], .o = out[0], .lse = out[1]};
        for (int m = 0; m < kp.n; m++) {
            io.k[m] = in[ISO_K + m];
            io.v[m] = in[ISO_V + m];
        }
        return nsx_kernel_call(k, &kp, &io);
    }
    nsx_kernel_bwd_io io = {.q = in[ISO_Q], .o = in[ISO_O], .lse = in[ISO_LSE], .dout = in[ISO_DOUT],
                            .dq = out[0]};
    for (int m = 0; m < kp.n; m++) {
        io.k[m] = in[ISO_K + m];
        io.v[m] = in[ISO_V + m];
        io.dk[m] = out[1 + 2 * m];
        io.dv[m] = out[2 + 2 * m];
    }
    return k->backward ? k->backward(&kp, &io) : nsx_simd_backward_isa(&kp, &io, k->threads, k->isa);
}

/* invoke on the region at base: rq's offsets made pointers. */
static int invoke_at(const nsx_kernel *k, const iso_req *rq, unsigned char *base)
{
    void *in[ISO_SLOTS], *out[ISO_MAX_BUFS];
    for (int s = 0; s < ISO_SLOTS; s++)
        in[s] = rq->in[s] >= 0 ? base + rq->in[s] : NULL;
    for (int x = 0; x < ISO_MAX_BUFS; x++)
        out[x] = x < rq->nbuf && rq->count[x] ? base + rq->buf[x] : NULL;
    return invoke(k, rq, in, out);
}

/* The region of the call that faults, for the SIGSEGV/SIGBUS handler. */
static struct {
    const iso_req *rq;
    unsigned char *base;
    size_t page;
} watched;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    const iso_req *rq = watched.rq;
    unsigned char *a = si->si_addr, *base = watched.base;
    iso_status *st = (iso_status *)base;
    if (rq && si->si_code > 0 && a >= base + watched.page && a < base + rq->len) { /* a fault, not a signal sent */
        st->guard = 1;
        /* the output whose guard page (or slack) holds a: the last one
           that begins at or before it */
        int x = 0;
        for (int y = 0; y < rq->nbuf; y++)
            if (rq->count[y] && base + rq->slack[y] <= a)
                x = y;
        st->buf = x;
        st->off = rq->count[x] ? (long)((a - (base + rq->buf[x])) / (long)sizeof(float)) : 0;
    }
    /* SA_RESETHAND: the default action again; the signal, blocked in the
       handler, ends the process once it returns (and a fault would recur) */
    raise(sig);
}

/* A kernel that calls exit() ends the process there, with its status,
   before the handlers the fuzzer registered run (its atexit work, and under
   ASan the leak check, which scans a forked copy whose other threads are
   gone and takes longer than a call's timeout). */
static void exit_now(int status, void *arg)
{
    (void)arg;
    _exit(status);
}

/* What a process that runs kernel calls sets up once. */
static void callee_setup(void)
{
    on_exit(exit_now, NULL); /* registered last, so it runs first */
    /* no core file per crashing call (a shrink makes hundreds) */
    const struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* ---- preparing a call ---------------------------------------------------------- */

/* The fork server, as its parent sees it. */
struct nsx_iso_server {
    pid_t pid;            /* the supervisor */
    int ctl;              /* messages to and from the supervisor */
    int data;             /* requests to the current runner, its replies; -1: none yet */
    long gen;             /* the current runner (1, 2, ..) */
    int memfd;            /* the region, shared with every runner */
    unsigned char *base;  /* ... mapped here */
    size_t cap;
    uint64_t seq;
    nsx_kernel k;         /* the kernel the runners call */
    int broken;           /* the supervisor is gone: calls fail */
};

/* The server of iso when it serves k (the same library, ISA and threads). */
static nsx_iso_server *server_for(const nsx_kernel *k)
{
    nsx_iso_server *s = k->iso ? k->iso->srv : NULL;
    if (!s || s->k.lib != k->lib || s->k.info != k->info || s->k.forward != k->forward ||
        s->k.backward != k->backward || s->k.indexer != k->indexer || s->k.isa != k->isa ||
        s->k.threads != k->threads)
        return NULL;
    return s;
}

/* The server's region at least len bytes long. */
static int server_reserve(nsx_iso_server *s, size_t len)
{
    if (len <= s->cap)
        return 0;
    size_t cap = s->cap * 2 > len ? s->cap * 2 : len;
    if (cap < ((size_t)1 << 20))
        cap = (size_t)1 << 20;
    if (ftruncate(s->memfd, (off_t)cap) != 0)
        return -1;
    void *b = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
    if (b == MAP_FAILED)
        return -1;
    if (s->base)
        munmap(s->base, s->cap);
    s->base = b;
    s->cap = cap;
    return 0;
}

int iso_begin(const nsx_kernel *k, iso_call *c, int op, int nbuf, const size_t *count, const char *const *name,
              const size_t *in_bytes, nsx_err *err)
{
    memset(c, 0, sizeof *c);
    iso_req *rq = &c->rq;
    rq->op = op;
    rq->nbuf = nbuf;
    for (int x = 0; x < nbuf; x++) {
        rq->count[x] = count[x];
        c->name[x] = name[x];
    }
    if (!k->iso) { /* in process: plain allocations */
        for (int s = 0; s < ISO_SLOTS; s++) {
            rq->in[s] = -1;
            if (in_bytes[s] && !(c->in[s] = malloc(in_bytes[s])))
                return nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
        }
        for (int x = 0; x < nbuf; x++)
            if (count[x]) {
                if (!(c->out[x] = malloc(count[x] * sizeof(float))))
                    return nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
                memset(c->out[x], 0xff, count[x] * sizeof(float)); /* all-ones NaNs, -1 */
            }
        return 0;
    }
    /* the layout: [status][guard], per output [slack, buffer][guard], inputs */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t at = 2 * page;
    for (int x = 0; x < nbuf; x++) {
        if (!count[x])
            continue;
        const size_t r = round_up(count[x] * sizeof(float), page);
        rq->slack[x] = at;
        rq->buf[x] = at + r - count[x] * sizeof(float);
        rq->end[x] = at + r;
        at += r + page;
    }
    for (int s = 0; s < ISO_SLOTS; s++) {
        rq->in[s] = in_bytes[s] ? (int64_t)at : -1;
        at += round_up(in_bytes[s], 64);
    }
    rq->len = round_up(at, page);
    c->page = page;
    nsx_iso_server *srv = server_for(k);
    if (srv && srv->broken)
        return nsx_err_set(err, NSX_E_INTERNAL, "kernel: the fork server's supervisor process is gone");
    if (srv) {
        if (server_reserve(srv, rq->len) != 0)
            return nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot grow the shared buffers to %zu bytes: %s", rq->len,
                               strerror(errno));
        c->base = srv->base;
        c->served = 1;
    } else {
        void *b = mmap(NULL, rq->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED)
            return nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot map the shared buffers: %s", strerror(errno));
        c->base = b;
        c->mapped = 1;
        /* this mapping is the child's too: its guard pages are set here */
        int bad = mprotect(c->base + page, page, PROT_NONE);
        for (int x = 0; x < nbuf; x++)
            if (count[x])
                bad |= mprotect(c->base + rq->end[x], page, PROT_NONE);
        if (bad)
            return nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot protect the guard pages: %s", strerror(errno));
    }
    memset(c->base, 0, sizeof(iso_status));
    for (int s = 0; s < ISO_SLOTS; s++)
        c->in[s] = rq->in[s] >= 0 ? c->base + rq->in[s] : NULL;
    for (int x = 0; x < nbuf; x++) {
        if (!count[x])
            continue;
        c->out[x] = c->base + rq->buf[x];
        /* slack: canaries; outputs: all-ones NaNs, so an element the kernel
           does not write is a NaN the oracle fails */
        memset(c->base + rq->slack[x], CANARY, rq->buf[x] - rq->slack[x]);
        memset(c->out[x], 0xff, count[x] * sizeof(float));
    }
    return 0;
}

void iso_end(iso_call *c)
{
    if (c->mapped)
        munmap(c->base, c->rq.len);
    if (!c->base) {
        for (int s = 0; s < ISO_SLOTS; s++)
            free(c->in[s]);
        for (int x = 0; x < ISO_MAX_BUFS; x++)
            free(c->out[x]);
    }
    memset(c, 0, sizeof *c);
}

/* ---- the outcome of an isolated call -------------------------------------------- */

/* The element offset from buf of the lowest changed canary byte, or 0. */
static long canary_hit(const unsigned char *slack, const unsigned char *buf)
{
    for (const unsigned char *x = slack; x < buf; x++)
        if (*x != CANARY)
            return -(long)((buf - x + sizeof(float) - 1) / sizeof(float));
    return 0;
}

/* How the call ended: the process that ran it ended with wait status
   `status` (ended), or was killed at the timeout or the deadline (killed,
   cut), after took seconds.  0 with *r, or NSX_E_KERNEL_ERROR with the
   fault in iso. */
static int outcome(nsx_kernel_iso *iso, const iso_call *c, int ended, int status, int killed, int cut, double took,
                   int *r, nsx_err *err)
{
    const iso_req *rq = &c->rq;
    const iso_status *st = (const iso_status *)c->base;
    if (killed && !st->done) {
        iso->fault = cut ? NSX_KFAULT_CUT : NSX_KFAULT_TIMEOUT;
        return nsx_err_set(err, NSX_E_KERNEL_ERROR,
                           cut ? "the call was stopped at the end of the time budget after %.2f s"
                               : "timeout: no result after %.2f s (the per-call timeout); the process was killed",
                           took);
    }
    if (ended && !killed && WIFSIGNALED(status) && st->guard) {
        iso->fault = NSX_KFAULT_OVERFLOW;
        iso->sig = WTERMSIG(status);
        const long off = st->off;
        const int x = st->buf >= 0 && st->buf < rq->nbuf ? st->buf : 0;
        const char *nm = c->name[x];
        if (off >= 0 && (size_t)off < rq->count[x] + c->page / sizeof(float))
            return nsx_err_set(err, NSX_E_KERNEL_ERROR,
                               "wrote outside its outputs: %s[%ld], past the end of %s (%s has %zu): "
                               "SIG%s on a guard page",
                               nm, off, nm, nm, rq->count[x], sigabbrev_np(iso->sig));
        return nsx_err_set(err, NSX_E_KERNEL_ERROR,
                           "wrote outside its outputs: a guard page around its outputs (%s[%ld]): SIG%s", nm, off,
                           sigabbrev_np(iso->sig));
    }
    if (ended && !killed && WIFSIGNALED(status)) {
        iso->fault = NSX_KFAULT_SIGNAL;
        iso->sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(iso->sig);
        return nsx_err_set(err, NSX_E_KERNEL_ERROR, "killed by SIG%s (%s)%s", abbrev ? abbrev : "?",
                           strsignal(iso->sig), WCOREDUMP(status) ? ", core dumped" : "");
    }
    if (!st->done) {
        iso->fault = NSX_KFAULT_EXIT;
        return nsx_err_set(err, NSX_E_KERNEL_ERROR,
                           "the process exited inside the call (exit status %d), without returning",
                           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    for (int x = 0; x < rq->nbuf; x++) {
        long off;
        if (!rq->count[x] || !(off = canary_hit(c->base + rq->slack[x], c->base + rq->buf[x])))
            continue;
        iso->fault = NSX_KFAULT_OVERFLOW;
        return nsx_err_set(err, NSX_E_KERNEL_ERROR, "wrote outside its outputs: %s[%ld], before the start of %s",
                           c->name[x], off, c->name[x]);
    }
    *r = st->rc;
    return 0;
}

/* ---- a child forked for the call --------------------------------------------- */

static int forked_call(const nsx_kernel *k, iso_call *c, int *r, nsx_err *err)
{
    nsx_kernel_iso *iso = k->iso;
    iso_status *st = (iso_status *)c->base;
    iso->runner = 0;
    fflush(NULL); /* a kernel that calls exit() flushes its copy of our buffers */
    /* a pipe whose write end only the child holds: poll() on the read end
       wakes when the child ends (its end closes), not a nap later; without
       it (or once it has woken), naps of 20 us doubling to 1 ms.  Another
       child forked meanwhile may hold the write end a little longer: poll()
       waits 1 ms at most before waitpid looks again */
    int wake[2];
    if (pipe2(wake, O_CLOEXEC) != 0)
        wake[0] = wake[1] = -1;
    pid_t pid = fork();
    if (pid < 0) {
        if (wake[0] >= 0)
            close(wake[0]), close(wake[1]);
        return nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot fork a process for the call: %s", strerror(errno));
    }
    if (pid == 0) {
        if (wake[0] >= 0)
            close(wake[0]);
        callee_setup();
        watched.rq = &c->rq;
        watched.base = c->base;
        watched.page = c->page;
        st->rc = invoke_at(k, &c->rq, c->base);
        st->done = 1;
        _exit(0);
    }
    if (wake[1] >= 0)
        close(wake[1]);
    const double t0 = nsx_kernel_clock();
    double end = t0 + iso->timeout;
    const int cut = iso->deadline > 0 && iso->deadline < end;
    if (cut)
        end = iso->deadline;
    long nap = 20000; /* ns, doubling to 1 ms */
    int status = 0, killed = 0, rc = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            rc = nsx_err_set(err, NSX_E_INTERNAL, "kernel: waitpid: %s", strerror(errno));
            break;
        }
        if (nsx_kernel_clock() >= end) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            killed = 1;
            break;
        }
        if (wake[0] >= 0) {
            struct pollfd pf = {.fd = wake[0], .events = POLLIN};
            if (poll(&pf, 1, 1) > 0) { /* the write end closed (or was written to): naps from here */
                close(wake[0]);
                wake[0] = -1;
            }
            continue;
        }
        struct timespec ts = {0, nap};
        nanosleep(&ts, NULL);
        nap = nap < 1000000 ? nap * 2 : 1000000;
    }
    if (wake[0] >= 0)
        close(wake[0]);
    if (rc)
        return rc;
    return outcome(iso, c, 1, status, killed, cut, nsx_kernel_clock() - t0, r, err);
}

/* ---- the fork server ------------------------------------------------------------ */

/*
 * Three kinds of process.  The fuzzer (the parent) starts a supervisor per
 * server while it has no other thread; the supervisor, which never runs
 * the kernel and so stays single-threaded, forks a runner, and a new one
 * whenever the runner ends.  The parent sends each call to the runner over
 * a socket of that runner's own (made by the supervisor for it and passed
 * to the parent), its inputs and outputs in a memfd region all three map;
 * the runner replies when the call returns.  The supervisor reports each
 * runner's start (with the socket) and end (with its wait status) on the
 * control socket, and kills the runner when the parent asks (a timeout).
 * A request sent to a runner that ended before taking it dies with that
 * runner's socket, and the parent sends it again to the next.
 */
enum { MSG_SPAWNED = 1, MSG_DIED, MSG_FAILED, MSG_KILL, MSG_QUIT };

typedef struct srv_msg {
    int type;   /* MSG_* */
    int status; /* MSG_DIED: the runner's wait status; MSG_FAILED: errno */
    long gen;   /* which runner */
} srv_msg;

typedef struct srv_reply {
    uint64_t seq;
    int err;    /* 0, or the errno of a region the runner could not map */
} srv_reply;

/* A message with an optional descriptor (fd >= 0). */
static int send_msg(int sock, const srv_msg *m, int fd)
{
    struct iovec iov = {(void *)m, sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    ssize_t n;
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)sizeof *m ? 0 : -1;
}

/* 1 with a message (and *fd its descriptor, or -1), 0 at the end of the
   stream, -1 on an error (EAGAIN: none waiting, with MSG_DONTWAIT). */
static int recv_msg(int sock, srv_msg *m, int *fd, int flags)
{
    struct iovec iov = {m, sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    *fd = -1;
    ssize_t n;
    while ((n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return (int)n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(cm), sizeof *fd);
    if (n != (ssize_t)sizeof *m) {
        if (*fd >= 0)
            close(*fd);
        errno = EPROTO;
        return -1;
    }
    return 1;
}

/* Closes every descriptor from 3 up but keep[0..n-1] (ascending). */
static void close_others(const int *keep, int n)
{
    unsigned lo = 3;
    for (int t = 0; t < n; t++) {
        if (keep[t] < (int)lo)
            continue;
        if ((unsigned)keep[t] > lo)
            close_range(lo, (unsigned)keep[t] - 1, 0);
        lo = (unsigned)keep[t] + 1;
    }
    close_range(lo, ~0u, 0);
}

/* A runner: calls k as the requests on sock say, in the region of memfd,
   until the socket ends.  Never returns. */
static void runner(int sock, int memfd, const nsx_kernel *k, long gen, pid_t supervisor)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor)
        _exit(0);
    callee_setup();
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *base = NULL;
    size_t maplen = 0, guard[ISO_MAX_BUFS + 1];
    int nguard = 0;
    static iso_req rq;
    for (;;) {
        ssize_t n;
        while ((n = recv(sock, &rq, sizeof rq, 0)) < 0 && errno == EINTR)
            ;
        if (n <= 0)
            _exit(0);
        srv_reply rp = {rq.seq, 0};
        if (n != (ssize_t)sizeof rq)
            _exit(3);
        if (rq.len > maplen) {
            if (base)
                munmap(base, maplen);
            base = mmap(NULL, rq.len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
            maplen = rq.len;
            nguard = 0;
            if (base == MAP_FAILED) {
                base = NULL;
                maplen = 0;
                rp.err = errno ? errno : ENOMEM;
                send(sock, &rp, sizeof rp, MSG_NOSIGNAL);
                continue;
            }
        }
        iso_status *st = (iso_status *)base;
        st->gen = gen;
        st->seq = rq.seq;
        /* this call's guard pages (the last call's open again) */
        for (int g = 0; g < nguard; g++)
            mprotect(base + guard[g], page, PROT_READ | PROT_WRITE);
        nguard = 0;
        guard[nguard++] = page;
        for (int x = 0; x < rq.nbuf; x++)
            if (rq.count[x])
                guard[nguard++] = rq.end[x];
        for (int g = 0; g < nguard && !rp.err; g++)
            if (mprotect(base + guard[g], page, PROT_NONE) != 0)
                rp.err = errno;
        if (!rp.err) {
            watched.rq = &rq;
            watched.base = base;
            watched.page = page;
            st->rc = invoke_at(k, &rq, base);
            st->done = 1;
        }
        send(sock, &rp, sizeof rp, MSG_NOSIGNAL);
    }
}

static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* The supervisor: a runner at a time, each one's start and end reported
   on ctl.  Never returns. */
static void supervise(int ctl, int memfd, const nsx_kernel *k, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    const int keep[2] = {ctl < memfd ? ctl : memfd, ctl < memfd ? memfd : ctl};
    close_others(keep, 2);
    const pid_t self = getpid();
    for (long gen = 1;; gen++) {
        int sp[2];
        pid_t r = -1;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0 && (r = fork()) == 0) {
            close(sp[0]);
            close(ctl);
            runner(sp[1], memfd, k, gen, self);
        }
        if (r < 0) {
            const srv_msg m = {MSG_FAILED, errno, gen};
            send_msg(ctl, &m, -1);
            _exit(1);
        }
        close(sp[1]);
        const srv_msg up = {MSG_SPAWNED, 0, gen};
        send_msg(ctl, &up, sp[0]);
        close(sp[0]);
        const int pfd = pidfd_of(r);
        int status = 0;
        for (;;) {
            struct pollfd pf[2] = {{.fd = ctl, .events = POLLIN}, {.fd = pfd, .events = POLLIN}};
            /* without a pidfd (Linux before 5.3), a look every millisecond */
            int n = poll(pf, pfd >= 0 ? 2 : 1, pfd >= 0 ? -1 : 1);
            if (n < 0 && errno != EINTR)
                _exit(1);
            if (n > 0 && pf[0].revents) {
                srv_msg m;
                int fd, got = recv_msg(ctl, &m, &fd, 0);
                if (fd >= 0)
                    close(fd);
                if (got <= 0 || m.type == MSG_QUIT) { /* the parent is done, or gone */
                    kill(r, SIGKILL);
                    while (waitpid(r, &status, 0) < 0 && errno == EINTR)
                        ;
                    _exit(0);
                }
                if (m.type == MSG_KILL && m.gen == gen)
                    kill(r, SIGKILL); /* not reaped yet: r is still this runner */
            }
            if ((pfd >= 0 && n > 0 && pf[1].revents) || pfd < 0) {
                pid_t w = waitpid(r, &status, pfd >= 0 ? 0 : WNOHANG);
                if (w == r)
                    break;
            }
        }
        if (pfd >= 0)
            close(pfd);
        const srv_msg down = {MSG_DIED, status, gen};
        if (send_msg(ctl, &down, -1))
            _exit(0);
    }
}

int nsx_kernel_iso_start(nsx_kernel_iso *iso, const nsx_kernel *k, nsx_err *err)
{
    nsx_iso_server *s = calloc(1, sizeof *s);
    if (!s)
        return nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
    s->k = *k;
    s->k.iso = NULL;
    s->data = -1;
    int ctl[2];
    s->memfd = memfd_create("nsimplex-kernel-calls", MFD_CLOEXEC);
    if (s->memfd < 0 || server_reserve(s, 1) != 0) {
        int e = errno;
        if (s->memfd >= 0)
            close(s->memfd);
        free(s);
        return nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot make the fork server's shared region: %s",
                           strerror(e));
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) != 0) {
        int e = errno;
        munmap(s->base, s->cap);
        close(s->memfd);
        free(s);
        return nsx_err_set(err, NSX_E_INTERNAL, "kernel: fork server: socketpair: %s", strerror(e));
    }
    const pid_t parent = getpid();
    fflush(NULL);
    s->pid = fork();
    if (s->pid == 0) {
        close(ctl[0]);
        supervise(ctl[1], s->memfd, &s->k, parent);
    }
    int e = errno;
    close(ctl[1]);
    if (s->pid < 0) {
        close(ctl[0]);
        munmap(s->base, s->cap);
        close(s->memfd);
        free(s);
        return nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot fork the fork server: %s", strerror(e));
    }
    s->ctl = ctl[0];
    iso->srv = s;
    return 0;
}

void nsx_kernel_iso_stop(nsx_kernel_iso *iso)
{
    nsx_iso_server *s = iso->srv;
    if (!s)
        return;
    const srv_msg quit = {MSG_QUIT, 0, 0};
    send_msg(s->ctl, &quit, -1);
    close(s->ctl);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (s->data >= 0)
        close(s->data);
    munmap(s->base, s->cap);
    close(s->memfd);
    free(s);
    iso->srv = NULL;
}

/* One message from the supervisor, waiting up to ms milliseconds (-1:
   forever): 1 (the runner's start or end recorded in s, the message in
   *m), 0 none within ms, -1 the supervisor is gone or failed (s broken). */
static int server_hear(nsx_iso_server *s, int ms, srv_msg *m)
{
    struct pollfd pf = {.fd = s->ctl, .events = POLLIN};
    int n;
    while ((n = poll(&pf, 1, ms)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        return 0;
    int fd, got = n > 0 ? recv_msg(s->ctl, m, &fd, 0) : -1;
    if (got <= 0 || m->type == MSG_FAILED) {
        s->broken = 1;
        return -1;
    }
    if (m->type == MSG_SPAWNED) {
        if (s->data >= 0)
            close(s->data);
        s->data = fd;
        s->gen = m->gen;
    } else if (fd >= 0) {
        close(fd);
    }
    if (m->type == MSG_DIED && m->gen == s->gen && s->data >= 0) {
        close(s->data);
        s->data = -1;
    }
    return 1;
}

static int server_broken(nsx_err *err)
{
    return nsx_err_set(err, NSX_E_INTERNAL, "kernel: the fork server's supervisor process is gone");
}

static int served_call(const nsx_kernel *k, iso_call *c, int *r, nsx_err *err)
{
    nsx_kernel_iso *iso = k->iso;
    nsx_iso_server *s = iso->srv;
    iso_status *st = (iso_status *)c->base;
    srv_msg m;
    /* what the supervisor said between calls: a runner that ended after
       its last reply, and the next one's start */
    int h;
    while ((h = server_hear(s, 0, &m)) > 0)
        ;
    if (h < 0)
        return server_broken(err);
    c->rq.seq = ++s->seq;
    const double t0 = nsx_kernel_clock();
    double end = t0 + iso->timeout;
    const int cut = iso->deadline > 0 && iso->deadline < end;
    if (cut)
        end = iso->deadline;
    long sent_to = 0;  /* the runner that has the request */
    int ended = 0, status = 0, killed = 0, replied = 0;
    while (!replied && !ended) {
        const double left = end - nsx_kernel_clock();
        if (left <= 0)
            break;
        const int ms = left < 3600 ? (int)(left * 1000) + 1 : 3600000; /* poll's int milliseconds */
        if (s->data < 0) { /* between runners: the next one's start */
            if ((h = server_hear(s, ms, &m)) < 0)
                return server_broken(err);
            continue;
        }
        if (sent_to != s->gen) {
            if (send(s->data, &c->rq, sizeof c->rq, MSG_NOSIGNAL) != (ssize_t)sizeof c->rq) {
                /* the runner has ended: its end is reported next */
                if ((h = server_hear(s, ms, &m)) < 0)
                    return server_broken(err);
                continue;
            }
            sent_to = s->gen;
        }
        struct pollfd pf[2] = {{.fd = s->ctl, .events = POLLIN}, {.fd = s->data, .events = POLLIN}};
        const struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        int n = ppoll(pf, 2, &ts, NULL);
        if (n < 0 && errno != EINTR)
            return nsx_err_set(err, NSX_E_INTERNAL, "kernel: fork server: poll: %s", strerror(errno));
        if (n <= 0)
            continue;
        int hup = (pf[1].revents & (POLLHUP | POLLERR)) != 0;
        if (pf[1].revents & POLLIN) {
            srv_reply rp;
            ssize_t got = recv(s->data, &rp, sizeof rp, MSG_DONTWAIT);
            hup |= got == 0;
            if (got == (ssize_t)sizeof rp && rp.seq == c->rq.seq) {
                if (rp.err)
                    return nsx_err_set(err, NSX_E_NOMEM, "kernel: the runner cannot map the shared buffers: %s",
                                       strerror(rp.err));
                replied = 1;
                break;
            }
        }
        if (pf[0].revents || hup) {
            /* the supervisor speaks (or the runner's socket ended: it will) */
            if ((h = server_hear(s, pf[0].revents ? 0 : ms < 60000 ? ms : 60000, &m)) < 0)
                return server_broken(err);
            if (h > 0 && m.type == MSG_DIED && m.gen == sent_to) {
                if (st->seq == c->rq.seq && st->gen == sent_to) {
                    ended = 1; /* it took this call, and ended in it */
                    status = m.status;
                } else {
                    sent_to = 0; /* ended before taking it: to the next runner */
                }
            }
        }
    }
    if (!replied && !ended) {
        /* the timeout or the deadline: the runner that has the call killed,
           its end awaited (none has it: nothing to kill) */
        const long victim = sent_to;
        killed = 1;
        if (victim) {
            const srv_msg kill_it = {MSG_KILL, 0, victim};
            if (send_msg(s->ctl, &kill_it, -1))
                return server_broken(err);
            do
                if (server_hear(s, 60000, &m) <= 0)
                    return server_broken(err);
            while (m.type != MSG_DIED || m.gen != victim);
            status = m.status;
        }
    }
    iso->runner = st->seq == c->rq.seq ? st->gen : s->gen;
    int rc = outcome(iso, c, ended || killed, status, killed, cut, nsx_kernel_clock() - t0, r, err);
    if (replied && iso->fault != NSX_KFAULT_NONE) {
        /* it returned, but wrote before an output: a runner whose memory
           the kernel may have damaged takes no further call */
        const srv_msg kill_it = {MSG_KILL, 0, sent_to};
        if (send_msg(s->ctl, &kill_it, -1) == 0)
            do
                if (server_hear(s, 60000, &m) <= 0)
                    break;
            while (m.type != MSG_DIED || m.gen != sent_to);
    }
    return rc;
}

/* ---- running a call -------------------------------------------------------------- */

int iso_run(const nsx_kernel *k, iso_call *c, int *r, nsx_err *err)
{
    if (!k->iso) {
        *r = invoke(k, &c->rq, c->in, c->out);
        return 0;
    }
    nsx_kernel_iso *iso = k->iso;
    iso->fault = NSX_KFAULT_NONE;
    iso->sig = 0;
    if (iso->deadline > 0 && nsx_kernel_clock() >= iso->deadline) {
        iso->fault = NSX_KFAULT_CUT;
        return nsx_err_set(err, NSX_E_KERNEL_ERROR, "the time budget ended before the call");
    }
    return c->served ? served_call(k, c, r, err) : forked_call(k, c, r, err);
}
