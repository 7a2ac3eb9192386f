/* Driving a kernel behind the ABI (runner/runner.h). */
#define _GNU_SOURCE /* sigabbrev_np, MAP_ANONYMOUS */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/json.h"
#include "runner/runner.h"
#include "simd/indexer.h"
#include "simd/n1.h"
#include "simd/simd.h"

#define ALL_FEATURES                                                                                        \
    (NSX_FEAT_WINDOWS | NSX_FEAT_SELECTION | NSX_FEAT_GQA | NSX_FEAT_CAUSAL_OFF | NSX_FEAT_DISTINCT |     \
     NSX_FEAT_BIASES | NSX_FEAT_SUM | NSX_FEAT_MEAN | NSX_FEAT_LSE)

double nsx_kernel_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

#define ALL_IDX_BITS                                                                                        \
    (NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL | NSX_IDX_RELU | NSX_IDX_SOFTMAX | NSX_IDX_IDENTITY |        \
     NSX_IDX_CAUSAL_OFF)

/* The indexer's declaration (ABI 2 on): known bits, its formats (ABI 3: FP8
   inputs with a block size). */
static int indexer_info_check(const nsx_kernel_info *info, const char *w, nsx_err *err)
{
    if (info->abi_version < 2 || !info->indexer)
        return 0;
    if (info->indexer & ~ALL_IDX_BITS)
        return nsx_err_set(err, NSX_E_INPUT, "%s: indexer has unknown bits 0x%x", w, info->indexer & ~ALL_IDX_BITS);
    const int fp8 = info->abi_version >= 3 &&
                    (info->indexer_input_format == NSX_FORMAT_E4M3 || info->indexer_input_format == NSX_FORMAT_E5M2);
    const struct {
        int v;
        const char *field;
    } f[] = {{fp8 ? NSX_FORMAT_F32 : info->indexer_input_format, "indexer_input_format"},
             {info->indexer_accum_format, "indexer_accum_format"},
             {info->indexer_output_format, "indexer_output_format"}};
    for (int t = 0; t < 3; t++)
        if (f[t].v < NSX_FORMAT_F64 || f[t].v > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "%s: %s %d is not a format (0 f64, 1 f32, 2 f16, 3 bf16%s)", w,
                               f[t].field, f[t].v, t == 0 && info->abi_version >= 3 ? "; 6 e4m3, 7 e5m2" : "");
    if (fp8 && (info->indexer_block < 1 || info->indexer_block > NSX_MAX_DIM))
        return nsx_err_set(err, NSX_E_INPUT, "%s: indexer_block %d is not in 1..%d (FP8 indexer inputs)", w,
                           info->indexer_block, NSX_MAX_DIM);
    return 0;
}

int nsx_kernel_info_check(const nsx_kernel_info *info, const char *what, nsx_err *err)
{
    char w[256];
    nsx_printable(w, sizeof w, what ? what : "kernel");
    if (!info)
        return nsx_err_set(err, NSX_E_INPUT, "%s: nsx_kernel_get_info returned NULL", w);
    if (info->abi_version < NSX_KERNEL_ABI_MIN_VERSION || info->abi_version > NSX_KERNEL_ABI_VERSION)
        return nsx_err_set(err, NSX_E_INPUT, "%s: kernel ABI version %d, this program speaks %d to %d", w,
                           info->abi_version, NSX_KERNEL_ABI_MIN_VERSION, NSX_KERNEL_ABI_VERSION);
    if (!info->name)
        return nsx_err_set(err, NSX_E_INPUT, "%s: name is NULL", w);
    size_t len = strnlen(info->name, 128);
    if (len == 0 || len == 128)
        return nsx_err_set(err, NSX_E_INPUT, "%s: name is %s (1..127 printable characters)", w,
                           len ? "longer than 127 characters" : "empty");
    for (size_t t = 0; t < len; t++)
        if (info->name[t] < 0x20 || info->name[t] > 0x7e)
            return nsx_err_set(err, NSX_E_INPUT, "%s: name has a non-printable character (byte %zu)", w, t);
    if (info->max_order < 1 || info->max_order > NSX_MAX_ORDER)
        return nsx_err_set(err, NSX_E_INPUT, "%s: max_order %d is not in 1..%d", w, info->max_order,
                           NSX_MAX_ORDER);
    const struct {
        int v;
        const char *field;
    } fmt[] = {{info->input_format, "input_format"},
               {info->accum_format, "accum_format"},
               {info->weights_format, "weights_format"},
               {info->output_format, "output_format"}};
    for (int t = 0; t < 4; t++)
        if (fmt[t].v < NSX_FORMAT_F64 || fmt[t].v > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "%s: %s %d is not a format (0 f64, 1 f32, 2 f16, 3 bf16)", w,
                               fmt[t].field, fmt[t].v);
    if (info->features & ~ALL_FEATURES)
        return nsx_err_set(err, NSX_E_INPUT, "%s: features has unknown bits 0x%x", w,
                           info->features & ~ALL_FEATURES);
    int rc = indexer_info_check(info, w, err);
    if (rc)
        return rc;
    if (info->abi_version < 3 || info->backward_max_order == 0)
        return 0; /* ABI 1, 2: read no further */
    if (info->backward_max_order < 0 || info->backward_max_order > info->max_order)
        return nsx_err_set(err, NSX_E_INPUT, "%s: backward_max_order %d is not in 0..max_order (%d)", w,
                           info->backward_max_order, info->max_order);
    if (info->backward_features & ~info->features)
        return nsx_err_set(err, NSX_E_INPUT, "%s: backward_features has bits 0x%x that features lacks", w,
                           info->backward_features & ~info->features);
    if (!(info->features & NSX_FEAT_LSE))
        return nsx_err_set(err, NSX_E_INPUT, "%s: a backward needs the forward's lse, but features lacks bit 256", w);
    const int bfmt[2] = {info->backward_accum_format, info->backward_output_format};
    const char *bname[2] = {"backward_accum_format", "backward_output_format"};
    for (int t = 0; t < 2; t++)
        if (bfmt[t] < NSX_FORMAT_F64 || bfmt[t] > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "%s: %s %d is not a format (0 f64, 1 f32, 2 f16, 3 bf16)", w,
                               bname[t], bfmt[t]);
    return 0;
}

int nsx_kernel_open(nsx_kernel *k, const char *path, int isa, int threads, nsx_err *err)
{
    char why[200];
    memset(k, 0, sizeof *k);
    k->threads = nsx_simd_threads(threads);
    if (!path) {
        k->isa = isa >= 0 ? isa : nsx_simd_isa(why, sizeof why);
        if (k->isa < 0)
            return nsx_err_set(err, NSX_E_INPUT, "%s", why);
        if (!nsx_simd_isa_supported(k->isa))
            return nsx_err_set(err, NSX_E_INPUT, "this CPU cannot run the %s path", nsx_simd_isa_name(k->isa));
        if (!nsx_n1_tune(k->isa, why, sizeof why)) /* NSX_TUNE names no tune of this isa */
            return nsx_err_set(err, NSX_E_INPUT, "%s", why);
        k->info = nsx_simd_info();
        return 0;
    }
    k->path = path;
    if (!(k->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
        return nsx_err_set(err, NSX_E_INPUT, "%s", dlerror());
    nsx_kernel_get_info_fn info_fn;
    *(void **)&info_fn = dlsym(k->lib, "nsx_kernel_get_info");
    *(void **)&k->forward = dlsym(k->lib, "nsx_kernel_forward");
    if (!info_fn || !k->forward) {
        nsx_kernel_close(k);
        return nsx_err_set(err, NSX_E_INPUT, "%s: does not export nsx_kernel_get_info and nsx_kernel_forward",
                           path);
    }
    k->info = info_fn();
    int rc = nsx_kernel_info_check(k->info, path, err);
    if (rc) {
        nsx_kernel_close(k);
        return rc;
    }
    if (nsx_kernel_indexer_caps(k->info)) {
        *(void **)&k->indexer = dlsym(k->lib, "nsx_kernel_indexer");
        if (!k->indexer) {
            nsx_kernel_close(k);
            return nsx_err_set(err, NSX_E_INPUT, "%s: declares an indexer but does not export nsx_kernel_indexer",
                               path);
        }
    }
    if (nsx_kernel_backward_order(k->info)) {
        *(void **)&k->backward = dlsym(k->lib, "nsx_kernel_backward");
        if (!k->backward) {
            nsx_kernel_close(k);
            return nsx_err_set(err, NSX_E_INPUT,
                               "%s: declares a backward but does not export nsx_kernel_backward", path);
        }
    }
    return 0;
}

void nsx_kernel_close(nsx_kernel *k)
{
    if (k->lib)
        dlclose(k->lib);
    memset(k, 0, sizeof *k);
}

int nsx_kernel_call(const nsx_kernel *k, const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    return k->forward ? k->forward(p, io) : nsx_simd_forward_isa(p, io, k->threads, k->isa);
}

int nsx_kernel_index(const nsx_kernel *k, const nsx_indexer_problem *p, const nsx_indexer_io *io)
{
    if (k->indexer)
        return k->indexer(p, io);
    if (k->lib || !nsx_kernel_indexer_caps(k->info))
        return NSX_KERNEL_UNSUPPORTED;
    nsx_simd_idx_problem ip = {
        .B = p->B, .L = p->L, .source = NSX_SIMD_IDX_INDEXER, .Hi = p->Hi, .di = p->di, .act = p->act,
        .idx_scale = p->idx_scale, .causal = p->causal, .k = p->topk,
    };
    nsx_simd_idx_io iio = {
        .idx_q = io->idx_q, .idx_k = io->idx_k, .idx_w = io->idx_w, .sel = io->sel, .scores = io->scores,
    };
    return nsx_simd_indexer_isa(&ip, &iio, k->threads, k->isa);
}

/* 0 when features f and order max_order cover p, else -1 and why. */
static int covers(unsigned f, int max_order, const char *whose, const nsx_problem *p, char *why, size_t whylen)
{
    int windows = 0, biases = 0;
    for (int m = 0; m < p->n; m++) {
        windows |= p->window[m] > 0;
        biases |= p->k_bias[m] != 0 || p->v_bias[m] != 0;
    }
    const struct {
        int needed;
        unsigned bit;
        const char *what;
    } need[] = {
        {windows, NSX_FEAT_WINDOWS, "windows"},
        {p->sel.source != NSX_SEL_NONE, NSX_FEAT_SELECTION, "selection"},
        {p->H != p->Hkv, NSX_FEAT_GQA, "GQA"},
        {!p->causal, NSX_FEAT_CAUSAL_OFF, "causal off"},
        {p->distinct, NSX_FEAT_DISTINCT, "distinct"},
        {biases, NSX_FEAT_BIASES, "biases"},
        {p->reduce == NSX_REDUCE_SUM, NSX_FEAT_SUM, "the sum reducer"},
        {p->reduce == NSX_REDUCE_MEAN, NSX_FEAT_MEAN, "the mean reducer"},
    };
    if (p->n > max_order) {
        snprintf(why, whylen, "order n = %d above the %s %d", p->n, whose, max_order);
        return -1;
    }
    for (size_t t = 0; t < sizeof need / sizeof need[0]; t++)
        if (need[t].needed && !(f & need[t].bit)) {
            snprintf(why, whylen, "%s, which the %s does not declare", need[t].what, whose);
            return -1;
        }
    return 0;
}

int nsx_kernel_supports(const nsx_kernel_info *info, const nsx_problem *p, char *why, size_t whylen)
{
    return covers(info->features, info->max_order, "kernel", p, why, whylen);
}

int nsx_kernel_supports_bwd(const nsx_kernel_info *info, const nsx_problem *p, char *why, size_t whylen)
{
    if (!nsx_kernel_backward_order(info)) {
        snprintf(why, whylen, "the kernel has no backward");
        return -1;
    }
    return covers(info->backward_features, nsx_kernel_backward_order(info), "kernel's backward", p, why, whylen);
}

static float *to_f32(const double *x, size_t count)
{
    float *f = malloc((count ? count : 1) * sizeof *f);
    for (size_t t = 0; f && t < count; t++)
        f[t] = (float)x[t];
    return f;
}

/* ---- isolation (runner.h) ------------------------------------------------ */

/* What the child reports through the shared status page. */
typedef struct iso_status {
    volatile int done, rc;   /* the call returned rc */
    volatile int guard;      /* 1: the child faulted on a guard page */
    volatile int buf;        /* ... next to this buffer */
    volatile long off;       /* ... at this element offset from its start */
} iso_status;

/* The shared mapping: [status][guard] then per output buffer
   [slack, buffer][guard].  Each buffer ends where its guard page begins;
   the slack before it holds CANARY bytes.  Buffer 0 is o (forward) or dq
   (backward). */
#define ISO_MAX_BUFS (2 * NSX_MAX_ORDER + 3)
typedef struct iso_map {
    const char *name_o, *name_lse; /* the buffers' names in messages (o, lse; scores, sel) */
    unsigned char *base;
    size_t len, page;
    int nbuf;
    float *buf[ISO_MAX_BUFS];
    size_t count[ISO_MAX_BUFS];
    unsigned char *slack[ISO_MAX_BUFS]; /* where each region begins */
    unsigned char *end[ISO_MAX_BUFS];   /* its guard page */
    const char *name[ISO_MAX_BUFS];
} iso_map;

#define CANARY 0xa5

static size_t round_up(size_t n, size_t page)
{
    return (n + page - 1) / page * page;
}

/* Maps nbuf buffers of count[x] floats (a count of 0 gets no buffer). */
static int iso_map_open(iso_map *mp, int nbuf, const size_t *count, const char *const *name)
{
    memset(mp, 0, sizeof *mp);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = 2 * page;
    for (int x = 0; x < nbuf; x++)
        if (count[x])
            len += round_up(count[x] * sizeof(float), page) + page;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return -1;
    mp->name_o = "o";
    mp->name_lse = "lse";
    mp->base = base;
    mp->len = len;
    mp->page = page;
    mp->nbuf = nbuf;
    int bad = mprotect(mp->base + page, page, PROT_NONE);
    unsigned char *at = mp->base + 2 * page;
    for (int x = 0; x < nbuf; x++) {
        mp->name[x] = name[x];
        if (!count[x])
            continue;
        size_t r = round_up(count[x] * sizeof(float), page);
        mp->slack[x] = at;
        mp->end[x] = at + r;
        mp->buf[x] = (float *)(at + r) - count[x];
        mp->count[x] = count[x];
        bad |= mprotect(at + r, page, PROT_NONE);
        /* slack: canaries; outputs: all-ones NaNs, so an element the kernel
           does not write is a NaN the oracle fails */
        memset(mp->slack[x], CANARY, (size_t)((unsigned char *)mp->buf[x] - mp->slack[x]));
        memset(mp->buf[x], 0xff, count[x] * sizeof(float));
        at += r + page;
    }
    if (bad) {
        munmap(base, len);
        return -1;
    }
    return 0;
}

/* The element offset from buf of the lowest changed canary byte, or 0. */
static long canary_hit(const unsigned char *slack, const float *buf, const char **which)
{
    for (const unsigned char *x = slack; x < (const unsigned char *)buf; x++)
        if (*x != CANARY) {
            *which = "before";
            return -(long)(((const unsigned char *)buf - x + sizeof(float) - 1) / sizeof(float));
        }
    return 0;
}

/* The child's view, for its SIGSEGV/SIGBUS handler. */
static iso_map *child_map;

static void child_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    iso_map *mp = child_map;
    unsigned char *a = si->si_addr, *lo = mp->base + mp->page, *hi = mp->base + mp->len;
    iso_status *st = (iso_status *)mp->base;
    if (si->si_code > 0 && a >= lo && a < hi) { /* a fault, not a signal sent */
        st->guard = 1;
        /* the buffer whose guard page (or slack) holds a: the last one
           that begins at or before it */
        int x = 0;
        for (int y = 0; y < mp->nbuf; y++)
            if (mp->count[y] && mp->slack[y] <= a)
                x = y;
        st->buf = x;
        st->off = mp->buf[x] ? (long)((a - (unsigned char *)mp->buf[x]) / (long)sizeof(float)) : 0;
    }
    /* SA_RESETHAND: the default action again; the signal, blocked in the
       handler, ends the process once it returns (and a fault would recur) */
    raise(sig);
}

/* The call a child makes: the kernel's forward or backward. */
typedef int (*iso_call_fn)(const void *ctx);

/* A kernel that calls exit() in the child ends the child there, with its
   status, before the handlers the parent registered run (the parent's
   atexit work, and under ASan the leak check, which scans a forked copy
   whose other threads are gone and takes longer than a call's timeout). */
static void child_exit_now(int status, void *arg)
{
    (void)arg;
    _exit(status);
}

static void child_run(iso_call_fn call, const void *ctx, iso_map *mp)
{
    on_exit(child_exit_now, NULL); /* registered last, so it runs first */
    /* no core file per crashing call (a shrink makes hundreds) */
    const struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    child_map = mp;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = child_fault;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    iso_status *st = (iso_status *)mp->base;
    st->rc = call(ctx);
    st->done = 1;
    _exit(0);
}

/* One call in a child process: 0 with *r the kernel's return value, or
   NSX_E_KERNEL_ERROR with k->iso->fault set, or NSX_E_NOMEM. */
static int isolated_call(const nsx_kernel *k, iso_call_fn call, const void *ctx, iso_map *mp, int *r, nsx_err *err)
{
    nsx_kernel_iso *iso = k->iso;
    iso_status *st = (iso_status *)mp->base;
    iso->fault = NSX_KFAULT_NONE;
    iso->sig = 0;
    if (iso->deadline > 0 && nsx_kernel_clock() >= iso->deadline) {
        iso->fault = NSX_KFAULT_CUT;
        return nsx_err_set(err, NSX_E_KERNEL_ERROR, "the time budget ended before the call");
    }
    fflush(NULL); /* a kernel that calls exit() flushes its copy of our buffers */
    /* a pipe whose write end only the child holds: poll() on the read end
       wakes when the child ends (its end closes), not a nap later; without
       it (or once it has woken), naps of 20 us doubling to 1 ms.  Another
       worker's child forked meanwhile may hold the write end a little
       longer: poll() waits 1 ms at most before waitpid looks again */
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
        child_run(call, ctx, mp);
    }
    if (wake[1] >= 0)
        close(wake[1]);
    const double t0 = nsx_kernel_clock();
    double end = t0 + iso->timeout;
    int cut = iso->deadline > 0 && iso->deadline < end;
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
        const double t = nsx_kernel_clock();
        if (t >= end) {
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
    const double took = nsx_kernel_clock() - t0;
    const char *which = "";
    long off;
    if (killed && !st->done) {
        iso->fault = cut ? NSX_KFAULT_CUT : NSX_KFAULT_TIMEOUT;
        return nsx_err_set(err, NSX_E_KERNEL_ERROR,
                           cut ? "the call was stopped at the end of the time budget after %.2f s"
                               : "timeout: no result after %.2f s (the per-call timeout); the process was killed",
                           took);
    }
    if (WIFSIGNALED(status) && st->guard) {
        iso->fault = NSX_KFAULT_OVERFLOW;
        iso->sig = WTERMSIG(status);
        off = st->off;
        int x = st->buf >= 0 && st->buf < mp->nbuf ? st->buf : 0;
        const char *nm = mp->name[x];
        if (off >= 0 && (size_t)off < mp->count[x] + mp->page / sizeof(float))
            return nsx_err_set(err, NSX_E_KERNEL_ERROR,
                               "wrote outside its outputs: %s[%ld], past the end of %s (%s has %zu): "
                               "SIG%s on a guard page",
                               nm, off, nm, nm, mp->count[x], sigabbrev_np(iso->sig));
        return nsx_err_set(err, NSX_E_KERNEL_ERROR,
                           "wrote outside its outputs: a guard page around its outputs (%s[%ld]): SIG%s", nm, off,
                           sigabbrev_np(iso->sig));
    }
    if (WIFSIGNALED(status)) {
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
                           WEXITSTATUS(status));
    }
    for (int x = 0; x < mp->nbuf; x++) {
        if (!mp->count[x] || !(off = canary_hit(mp->slack[x], mp->buf[x], &which)))
            continue;
        iso->fault = NSX_KFAULT_OVERFLOW;
        return nsx_err_set(err, NSX_E_KERNEL_ERROR, "wrote outside its outputs: %s[%ld], %s the start of %s",
                           mp->name[x], off, which, mp->name[x]);
    }
    *r = st->rc;
    return 0;
}

/* The forward call of a child. */
typedef struct fwd_call {
    const nsx_kernel *k;
    const nsx_kernel_problem *kp;
    const nsx_kernel_io *io;
} fwd_call;

static int call_forward(const void *ctx)
{
    const fwd_call *c = ctx;
    return nsx_kernel_call(c->k, c->kp, c->io);
}

int nsx_kernel_run(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                   double *o, double *lse, int *has_lse, nsx_err *err)
{
    char why[200];
    nsx_kernel_problem kp;
    nsx_kernel_io io = {0};
    float *buf[2 * NSX_MAX_ORDER + 3] = {0};
    int nbuf = 0, rc = 0;
    *has_lse = (k->info->features & NSX_FEAT_LSE) != 0;
    if (nsx_kernel_supports(k->info, p, why, sizeof why))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s", why);
    nsx_problem_to_kernel(p, sel, &kp);
    io.q = buf[nbuf++] = to_f32(in->q, nsx_q_size(p));
    for (int m = 0; m < p->n; m++) {
        io.k[m] = buf[nbuf++] = to_f32(in->k[m], nsx_k_size(p));
        io.v[m] = buf[nbuf++] = to_f32(in->v[m], nsx_v_size(p));
    }
    iso_map mp = {0};
    float *fo, *fl;
    if (k->iso) {
        const size_t counts[2] = {nsx_o_size(p), *has_lse ? nsx_lse_size(p) : 0};
        const char *const names[2] = {"o", "lse"};
        if (iso_map_open(&mp, 2, counts, names))
            rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot map the shared outputs: %s", strerror(errno));
        fo = mp.buf[0];
        fl = mp.buf[1];
    } else {
        fo = buf[nbuf++] = malloc(nsx_o_size(p) * sizeof *fo);
        fl = buf[nbuf++] = *has_lse ? malloc(nsx_lse_size(p) * sizeof *fl) : NULL;
    }
    for (int t = 0; t < nbuf; t++)
        if (!buf[t] && !(!k->iso && t == nbuf - 1 && !*has_lse))
            rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
    if (!rc) {
        io.o = fo;
        io.lse = fl;
        int r = 0;
        fwd_call call = {k, &kp, &io};
        if (k->iso)
            rc = isolated_call(k, call_forward, &call, &mp, &r, err);
        else
            r = nsx_kernel_call(k, &kp, &io);
        if (rc)
            ;
        else if (r == NSX_KERNEL_UNSUPPORTED)
            rc = nsx_err_set(err, NSX_E_KERNEL_REFUSED, "unsupported problem: the kernel returned 1");
        else if (r != NSX_KERNEL_OK)
            rc = nsx_err_set(err, NSX_E_KERNEL_ERROR, "the kernel returned error %d", r);
    }
    if (!rc) {
        for (size_t t = 0; t < nsx_o_size(p); t++)
            o[t] = fo[t];
        for (size_t t = 0; fl && t < nsx_lse_size(p); t++)
            lse[t] = fl[t];
    }
    for (int t = 0; t < nbuf; t++)
        free(buf[t]);
    if (mp.base)
        munmap(mp.base, mp.len);
    return rc;
}

/* ---- the indexer --------------------------------------------------------- */

typedef struct idx_call {
    const nsx_kernel *k;
    const nsx_indexer_problem *ip;
    const nsx_indexer_io *iio;
} idx_call;

static int call_indexer(const void *ctx)
{
    const idx_call *c = ctx;
    return nsx_kernel_index(c->k, c->ip, c->iio);
}

int nsx_kernel_run_indexer(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, int32_t *sel,
                           double *scores, nsx_err *err)
{
    const unsigned caps = nsx_kernel_indexer_caps(k->info);
    const nsx_selection *S = &p->sel;
    if (S->source != NSX_SEL_INDEXER)
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: its selection is not an indexer's");
    const unsigned act_bit = S->act == NSX_ACT_RELU ? NSX_IDX_RELU : S->act == NSX_ACT_SOFTMAX ? NSX_IDX_SOFTMAX
                                                                                             : NSX_IDX_IDENTITY;
    if (!caps || !(caps & act_bit) || (!p->causal && !(caps & NSX_IDX_CAUSAL_OFF)))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s, which the kernel does not declare",
                           !caps ? "an indexer" : !(caps & act_bit) ? "this activation" : "causal off");
    if (!(caps & NSX_IDX_WRITES_SCORES))
        scores = NULL;
    if (!(caps & NSX_IDX_WRITES_SEL))
        sel = NULL;
    const nsx_indexer_problem ip = {p->B, p->L, S->Hi, S->di, S->act, p->causal, S->k, S->idx_scale};
    const size_t rows = (size_t)p->B * p->L, LL = rows * p->L, nsel = nsx_sel_size(p);
    float *q = to_f32(in->idx_q, rows * S->Hi * S->di), *kk = to_f32(in->idx_k, rows * S->di),
          *w = to_f32(in->idx_w, rows * S->Hi);
    float *fs = NULL;
    int32_t *is = NULL;
    iso_map mp = {0};
    int rc = 0;
    if (k->iso) {
        /* scores in the first region, sel (int32, the size of a float) in the second */
        const size_t counts[2] = {scores ? LL : 1, sel ? nsel : 0};
        const char *const names[2] = {"scores", "sel"};
        if (iso_map_open(&mp, 2, counts, names))
            rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot map the shared outputs: %s", strerror(errno));
        fs = scores ? mp.buf[0] : NULL;
        is = sel ? (int32_t *)(void *)mp.buf[1] : NULL;
    } else {
        fs = scores ? malloc(LL * sizeof *fs) : NULL;
        is = sel ? malloc(nsel * sizeof *is) : NULL;
        if ((scores && !fs) || (sel && !is))
            rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
        /* as the isolated maps: what the kernel does not write reads NaN, -1 */
        if (fs)
            memset(fs, 0xff, LL * sizeof *fs);
        if (is)
            memset(is, 0xff, nsel * sizeof *is);
    }
    if (!q || !kk || !w)
        rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
    if (!rc) {
        const nsx_indexer_io iio = {q, kk, w, fs, is};
        int r = 0;
        const idx_call call = {k, &ip, &iio};
        if (k->iso)
            rc = isolated_call(k, call_indexer, &call, &mp, &r, err);
        else
            r = nsx_kernel_index(k, &ip, &iio);
        if (rc)
            ;
        else if (r == NSX_KERNEL_UNSUPPORTED)
            rc = nsx_err_set(err, NSX_E_KERNEL_REFUSED, "unsupported problem: the kernel's indexer returned 1");
        else if (r != NSX_KERNEL_OK)
            rc = nsx_err_set(err, NSX_E_KERNEL_ERROR, "the kernel's indexer returned error %d", r);
    }
    if (!rc) {
        for (size_t t = 0; fs && t < LL; t++)
            scores[t] = fs[t];
        if (is)
            memcpy(sel, is, nsel * sizeof *sel);
    }
    free(q);
    free(kk);
    free(w);
    if (mp.base) {
        munmap(mp.base, mp.len);
    } else {
        free(fs);
        free(is);
    }
    return rc;
}

/* ---- the backward pass ----------------------------------------------------- */

typedef struct bwd_call {
    const nsx_kernel *k;
    const nsx_kernel_problem *kp;
    const nsx_kernel_bwd_io *io;
} bwd_call;

static int call_backward(const void *ctx)
{
    const bwd_call *c = ctx;
    const nsx_kernel *k = c->k;
    return k->backward ? k->backward(c->kp, c->io) : nsx_simd_backward_isa(c->kp, c->io, k->threads, k->isa);
}

int nsx_kernel_run_backward(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                            const double *o, const double *lse, int has_lse, double *dq, double *const *dk,
                            double *const *dv, nsx_err *err)
{
    char why[200];
    if (nsx_kernel_supports_bwd(k->info, p, why, sizeof why))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s", why);
    nsx_kernel_problem kp;
    nsx_problem_to_kernel(p, sel, &kp);
    const int n = p->n;
    /* inputs */
    float *in_buf[2 * NSX_MAX_ORDER + 4] = {0};
    int nin = 0, rc = 0;
    nsx_kernel_bwd_io io = {0};
    io.q = in_buf[nin++] = to_f32(in->q, nsx_q_size(p));
    for (int m = 0; m < n; m++) {
        io.k[m] = in_buf[nin++] = to_f32(in->k[m], nsx_k_size(p));
        io.v[m] = in_buf[nin++] = to_f32(in->v[m], nsx_v_size(p));
    }
    io.o = in_buf[nin++] = to_f32(o, nsx_o_size(p));
    io.dout = in_buf[nin++] = to_f32(in->dout, nsx_o_size(p));
    if (has_lse)
        io.lse = in_buf[nin++] = to_f32(lse, nsx_lse_size(p));
    for (int t = 0; t < nin; t++)
        if (!in_buf[t])
            rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
    /* outputs: dq, dk1, dv1, ..., dkn, dvn */
    const int nout = 1 + 2 * n;
    size_t counts[ISO_MAX_BUFS] = {0};
    const char *names[ISO_MAX_BUFS] = {"dq"};
    static const char *const knames[NSX_MAX_ORDER] = {"dk1", "dk2", "dk3", "dk4", "dk5", "dk6", "dk7", "dk8"};
    static const char *const vnames[NSX_MAX_ORDER] = {"dv1", "dv2", "dv3", "dv4", "dv5", "dv6", "dv7", "dv8"};
    counts[0] = nsx_q_size(p);
    for (int m = 0; m < n; m++) {
        counts[1 + 2 * m] = nsx_k_size(p);
        counts[2 + 2 * m] = nsx_v_size(p);
        names[1 + 2 * m] = knames[m];
        names[2 + 2 * m] = vnames[m];
    }
    iso_map mp = {0};
    float *out[ISO_MAX_BUFS] = {0};
    int owned = 0;
    if (!rc && k->iso) {
        if (iso_map_open(&mp, nout, counts, names))
            rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: cannot map the shared outputs: %s", strerror(errno));
        for (int x = 0; !rc && x < nout; x++)
            out[x] = mp.buf[x];
    } else if (!rc) {
        owned = 1;
        for (int x = 0; x < nout; x++) {
            out[x] = malloc((counts[x] ? counts[x] : 1) * sizeof(float));
            if (!out[x])
                rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
            else /* all-ones NaNs: an element not written fails */
                memset(out[x], 0xff, counts[x] * sizeof(float));
        }
    }
    if (!rc) {
        io.dq = out[0];
        for (int m = 0; m < n; m++) {
            io.dk[m] = out[1 + 2 * m];
            io.dv[m] = out[2 + 2 * m];
        }
        int r = 0;
        bwd_call call = {k, &kp, &io};
        if (k->iso)
            rc = isolated_call(k, call_backward, &call, &mp, &r, err);
        else
            r = call_backward(&call);
        if (rc)
            ;
        else if (r == NSX_KERNEL_UNSUPPORTED)
            rc = nsx_err_set(err, NSX_E_KERNEL_REFUSED, "unsupported problem: the kernel's backward returned 1");
        else if (r != NSX_KERNEL_OK)
            rc = nsx_err_set(err, NSX_E_KERNEL_ERROR, "the kernel's backward returned error %d", r);
    }
    if (!rc) {
        for (size_t t = 0; t < counts[0]; t++)
            dq[t] = out[0][t];
        for (int m = 0; m < n; m++) {
            for (size_t t = 0; t < counts[1 + 2 * m]; t++)
                dk[m][t] = out[1 + 2 * m][t];
            for (size_t t = 0; t < counts[2 + 2 * m]; t++)
                dv[m][t] = out[2 + 2 * m][t];
        }
    }
    for (int t = 0; t < nin; t++)
        free(in_buf[t]);
    for (int x = 0; owned && x < nout; x++)
        free(out[x]);
    if (mp.base)
        munmap(mp.base, mp.len);
    return rc;
}
