/*
 * nsimplex fuzz [--seconds S] [--seed N] [--kernel LIB.so] [--out DIR]:
 * differential fuzzing of a kernel against the references, judged by the
 * oracle (fuzz/fuzz.h, docs/FUZZING.md).
 */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "fuzz/fuzz.h"
#include "io/json.h"
#include "simd/simd.h"

#define CMD "fuzz"

static void fuzz_usage(FILE *f)
{
    fprintf(f,
            "usage: nsimplex fuzz [--seconds S] [--seed N] [--kernel LIB.so] [--out DIR] [options]\n\n"
            "Draws random problems within the kernel's declared features (every order, shape,\n"
            "window, selection, GQA, bias, reducer, input format, causal off, distinct) and value\n"
            "distributions (normal, heavy-tailed, near-ties, huge, zeros, subnormal, interesting\n"
            "values in random vector lanes), runs the kernel and judges it with the oracle under\n"
            "its declared precision model: against the certified reference (the fast path with a\n"
            "proven bound, MPFR for what it leaves; the binary64 loop reference with a stated bound\n"
            "where that would take too long), and bit for bit\n"
            "on leak pairs, mask probes, copies of the batches and a permutation of the heads.\n"
            "Each failure is shrunk and saved as a vector `nsimplex check` replays, with the\n"
            "kernel's outputs beside it. The same seed gives the same problems. Shapes come in\n"
            "three classes (small; tiles: d, dv to 256, L, windows and top-k near multiples of\n"
            "16-128; production: L to 4096) and the summary gives the worst error/bound ratio\n"
            "per output and the shapes covered.\n\n"
            "  --seconds S        time for the search; shrinking is extra (10)\n"
            "  --seed N           the run's seed (1)\n"
            "  --kernel LIB.so    fuzz this library through the kernel ABI\n"
            "                     (include/nsimplex/kernel.h); default: the in-process SIMD kernel\n"
            "  --indexer          fuzz the kernel's indexer (nsx_kernel_indexer, declared by its\n"
            "                     info) instead of its forward: scores and selection judged by\n"
            "                     the indexer's declared model (docs/ORACLE.md 5)\n"
            "  --out DIR          where failures are saved, created if missing (fuzz-out)\n"
            "  --start K          the first problem's index (0)\n"
            "  --count N          at most N problems (0: as many as the time allows) (0)\n"
            "  --failures N       stop after N failures, 1..%d (1)\n"
            "  --shrink-seconds S time to shrink each failure (30)\n"
            "  --threads N        OpenMP threads for the kernel (0: OpenMP's default) (0)\n"
            "  --jobs N           problems judged at once, each in a thread of its own (0: one\n"
            "                     per online CPU); the same problems, verdicts and summary\n"
            "                     whatever N; 1 with --in-process (0)\n"
            "  --isa NAME         the in-process SIMD kernel's path: avx512, avx2, scalar (best)\n"
            "  --call-timeout S   a kernel call with no result after S seconds is a failure\n"
            "                     (timeout), its process killed (10)\n"
            "  --in-process       call the kernel in this process, not in a worker process\n"
            "                     (for sanitizer runs; a crash of the kernel is then nsimplex's)\n"
            "  --bwd              backward problems only: do drawn, the kernel's gradients judged\n"
            "                     (a kernel with nsx_kernel_backward; by default a share of the\n"
            "                     problems is backward when the kernel has one)\n"
            "  --no-bwd           forward problems only\n"
            "  --progress S       seconds between progress lines (5)\n"
            "  --verbose          a line per problem\n"
            "  --json             the summary as one JSON object on stdout (the log goes to stderr)\n\n"
            "Steering (within what the kernel declares; docs/FUZZING.md section 2):\n"
            "  --n N[,N..]        only these orders\n"
            "  --max-L L          sequences of at most L positions\n"
            "  --d D[,D..]        d and dv from this list (1..256)\n"
            "  --features LIST    only these features, each in about half the problems:\n"
            "                     windows, selection, gqa, causal-off, distinct, biases, sum, mean\n"
            "  --shapes CLASS     small, tiles, production or all (the mix by count: 88%%, 11.7%%, 0.3%%\n"
            "                     of the forward problems; backward ones are small) (all)\n\n"
            "To reproduce one problem: nsimplex fuzz --seed N --start K --count 1.\n\n"
            "Each kernel call runs in a worker process of its job (started before any thread,\n"
            "replaced after a fault), its inputs and outputs in shared memory, the outputs\n"
            "between guard pages: a crash, a signal, a timeout, an exit() or a write outside the\n"
            "outputs is a failure (kinds signal, timeout, exit, overflow), shrunk and saved like\n"
            "any other. A call still running when --seconds ends is stopped there, not judged.\n\n"
            "Problems over the work budget (core/budget.h: 16777216 allowed tuples) are\n"
            "redrawn.\n\n"
            "exit codes: 0 no failure, 1 a failure was found (saved under --out; a failure that\n"
            "cannot be saved is still 1, the save's error on a line of its own), 2 unusable\n"
            "arguments or kernel, or nothing judged (--seconds 0), 3 internal error\n",
            NSX_FUZZ_MAX_FAILURES);
}

/* A comma list of integers lo..hi into out (at most max); the count, or -1
   after printing the error line. */
static int int_list(const char *opt, const char *val, long lo, long hi, int *out, int max)
{
    int count = 0;
    const char *p = val;
    for (;;) {
        char tok[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof tok) {
            cli_fail(CMD, "%s: '%s' is not a comma list of integers", opt, val);
            return -1;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        long v;
        if (!cli_int(CMD, opt, tok, lo, hi, &v))
            return -1;
        if (count == max) {
            cli_fail(CMD, "%s: more than %d values", opt, max);
            return -1;
        }
        out[count++] = (int)v;
        if (!p[len])
            return count;
        p += len + 1;
    }
}

static int make_dir(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? 0 : -1;
    return mkdir(dir, 0777) == 0 || errno == EEXIST ? 0 : -1;
}

int cmd_fuzz(int argc, char **argv)
{
    nsx_fuzz_opts o;
    nsx_fuzz_opts_default(&o);
    o.out_dir = "fuzz-out";
    o.log = stdout;
    const char *kernel = NULL, *isa_name = NULL, *val;
    long threads = 0, jobs = 0;
    bool bad = false, in_process = false, indexer = false;
    nsx_kernel_iso iso = {.timeout = 10};
    nsx_fz_steer steer;
    nsx_fz_steer_default(&steer);
    bool json = false;
    for (int i = 1; i < argc; i++) {
        long v;
        if (cli_is_help(argv[i])) {
            fuzz_usage(stdout);
            return NSX_EXIT_OK;
        }
        if (cli_opt(CMD, argc, argv, &i, "--indexer", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            indexer = true;
        } else if (cli_opt(CMD, argc, argv, &i, "--seconds", &val, &bad)) {
            if (bad || !cli_double(CMD, "--seconds", val, &o.seconds))
                return NSX_EXIT_BAD;
            if (o.seconds < 0)
                return cli_fail(CMD, "--seconds: %s is negative", val);
        } else if (cli_opt(CMD, argc, argv, &i, "--seed", &val, &bad)) {
            if (bad || !cli_int(CMD, "--seed", val, 0, 0x7fffffffffffffffL, &v))
                return NSX_EXIT_BAD;
            o.seed = (uint64_t)v;
        } else if (cli_opt(CMD, argc, argv, &i, "--kernel", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            kernel = val;
        } else if (cli_opt(CMD, argc, argv, &i, "--out", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            o.out_dir = val;
        } else if (cli_opt(CMD, argc, argv, &i, "--start", &val, &bad)) {
            if (bad || !cli_int(CMD, "--start", val, 0, 0x7fffffffffffffffL, &v))
                return NSX_EXIT_BAD;
            o.start = (uint64_t)v;
        } else if (cli_opt(CMD, argc, argv, &i, "--count", &val, &bad)) {
            if (bad || !cli_int(CMD, "--count", val, 0, 0x7fffffffffffffffL, &v))
                return NSX_EXIT_BAD;
            o.count = (uint64_t)v;
        } else if (cli_opt(CMD, argc, argv, &i, "--failures", &val, &bad)) {
            if (bad || !cli_int(CMD, "--failures", val, 1, NSX_FUZZ_MAX_FAILURES, &v))
                return NSX_EXIT_BAD;
            o.max_failures = (int)v;
        } else if (cli_opt(CMD, argc, argv, &i, "--shrink-seconds", &val, &bad)) {
            if (bad || !cli_double(CMD, "--shrink-seconds", val, &o.shrink_seconds))
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--progress", &val, &bad)) {
            if (bad || !cli_double(CMD, "--progress", val, &o.progress))
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--threads", &val, &bad)) {
            if (bad || !cli_int(CMD, "--threads", val, 0, 4096, &threads))
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--jobs", &val, &bad)) {
            if (bad || !cli_int(CMD, "--jobs", val, 0, NSX_FUZZ_MAX_JOBS, &jobs))
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--isa", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            isa_name = val;
        } else if (cli_opt(CMD, argc, argv, &i, "--call-timeout", &val, &bad)) {
            if (bad || !cli_double(CMD, "--call-timeout", val, &iso.timeout))
                return NSX_EXIT_BAD;
            if (!(iso.timeout > 0))
                return cli_fail(CMD, "--call-timeout: %s is not positive", val);
        } else if (cli_opt(CMD, argc, argv, &i, "--in-process", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            in_process = true;
        } else if (cli_opt(CMD, argc, argv, &i, "--n", &val, &bad)) {
            int ns[NSX_MAX_ORDER], count;
            if (bad || (count = int_list("--n", val, 1, NSX_MAX_ORDER, ns, NSX_MAX_ORDER)) < 0)
                return NSX_EXIT_BAD;
            steer.orders = 0;
            for (int x = 0; x < count; x++)
                steer.orders |= 1u << ns[x];
        } else if (cli_opt(CMD, argc, argv, &i, "--max-L", &val, &bad)) {
            if (bad || !cli_int(CMD, "--max-L", val, 1, 4096, &v))
                return NSX_EXIT_BAD;
            steer.max_L = (int)v;
        } else if (cli_opt(CMD, argc, argv, &i, "--d", &val, &bad)) {
            if (bad || (steer.nd = int_list("--d", val, 1, 256, steer.d, 32)) < 0)
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--features", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            steer.features = 0;
            steer.boost = 1;
            for (const char *p = val;;) {
                char tok[32];
                size_t len = strcspn(p, ",");
                if (len == 0 || len >= sizeof tok)
                    return cli_fail(CMD, "--features: '%s' is not a comma list of windows, selection, gqa, "
                                         "causal-off, distinct, biases, sum, mean", val);
                memcpy(tok, p, len);
                tok[len] = '\0';
                unsigned bit = nsx_fz_feature_bit(tok);
                if (!bit)
                    return cli_fail(CMD, "--features: unknown feature '%s' (windows, selection, gqa, causal-off, "
                                         "distinct, biases, sum, mean)", tok);
                steer.features |= bit;
                if (!p[len])
                    break;
                p += len + 1;
            }
        } else if (cli_opt(CMD, argc, argv, &i, "--shapes", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            steer.shapes = -2;
            if (strcmp(val, "all") == 0)
                steer.shapes = NSX_FZ_SHAPES_ALL;
            for (int x = 0; x < NSX_FZ_CLASSES; x++)
                if (strcmp(val, nsx_fz_class_name(x)) == 0)
                    steer.shapes = x;
            if (steer.shapes == -2)
                return cli_fail(CMD, "--shapes: '%s' is not small, tiles, production or all", val);
        } else if (cli_opt(CMD, argc, argv, &i, "--json", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            json = true;
        } else if (cli_opt(CMD, argc, argv, &i, "--bwd", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            o.bwd = NSX_FZ_BWD_ONLY;
        } else if (cli_opt(CMD, argc, argv, &i, "--no-bwd", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            o.bwd = NSX_FZ_BWD_NONE;
        } else if (cli_opt(CMD, argc, argv, &i, "--verbose", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            o.verbose = 1;
        } else {
            return cli_fail(CMD, "unknown argument '%s' (nsimplex fuzz --help)", argv[i]);
        }
    }
    /* --count alone runs exactly that many problems, whatever the time */
    int count_given = o.count > 0, seconds_given = 0;
    for (int i = 1; i < argc; i++)
        seconds_given |= strncmp(argv[i], "--seconds", 9) == 0;
    if (count_given && !seconds_given)
        o.seconds = 0;

    int isa = -1;
    if (isa_name) {
        if (kernel)
            return cli_fail(CMD, "--isa picks the in-process SIMD kernel's path; not with --kernel");
        for (int x = 0; x < NSX_ISA_COUNT; x++)
            if (strcmp(isa_name, nsx_simd_isa_name(x)) == 0)
                isa = x;
        if (isa < 0)
            return cli_fail(CMD, "--isa: '%s' is not avx512, avx2 or scalar", isa_name);
    }
    /* isolated calls: the kernel's OpenMP threads in the worker process
       should sleep, not spin, while they wait (at a barrier, for the next
       region): spinning threads of short calls took about 40% of the CPU
       the fuzzer had (docs/FUZZING.md 2.2).  libgomp reads OMP_WAIT_POLICY
       once, when it is loaded, so the program runs itself again with it
       set; a policy the caller set is kept, and a failed exec goes on as is */
    if (!in_process && !getenv("OMP_WAIT_POLICY") && argc < 1000) {
        char *again[1002];
        again[0] = "nsimplex";
        for (int i = 0; i < argc; i++)
            again[i + 1] = argv[i];
        again[argc + 1] = NULL;
        if (setenv("OMP_WAIT_POLICY", "passive", 1) == 0) {
            fflush(NULL);
            execv("/proc/self/exe", again);
        }
    }
    if (make_dir(o.out_dir))
        return cli_fail(CMD, "--out: %s: cannot create the directory", o.out_dir);
    if (threads > 0) /* a library's OpenMP is this process's */
        omp_set_num_threads((int)threads);
    if (cli_threads_probe(CMD, (int)threads))
        return NSX_EXIT_INTERNAL;
    nsx_kernel k;
    nsx_err err = {0};
    if (nsx_kernel_open(&k, kernel, isa, (int)threads, &err))
        return cli_fail(CMD, "%s", err.msg);
    if (o.bwd == NSX_FZ_BWD_ONLY && !nsx_kernel_backward_order(k.info)) {
        nsx_kernel_close(&k);
        return cli_fail(CMD, "--bwd: the kernel %s has no backward pass (nsx_kernel_backward)",
                        kernel ? kernel : "(in process)");
    }
    /* isolated: this process runs no OpenMP region of its own (runner.h);
       problems judged at once only then (a kernel in this process may not
       be reentrant) */
    if (!in_process)
        k.iso = &iso;
    if (jobs == 0)
        jobs = sysconf(_SC_NPROCESSORS_ONLN);
    o.jobs = in_process || jobs < 1 ? 1 : jobs > NSX_FUZZ_MAX_JOBS ? NSX_FUZZ_MAX_JOBS : (int)jobs;
    nsx_model m;
    char model[160], why[160];
    if (nsx_model_from_kernel(k.info, &m, &err)) {
        nsx_kernel_close(&k);
        return cli_fail(CMD, "%s", err.msg);
    }
    if (nsx_fz_steer_check(&steer, k.info, why, sizeof why)) {
        nsx_kernel_close(&k);
        return cli_fail(CMD, "%s", why);
    }
    o.steer = &steer;
    FILE *log = json ? stderr : stdout;
    o.log = log;
    /* --indexer: the indexer's own model (docs/ORACLE.md 5) */
    if (indexer && nsx_model_from_kernel_indexer(k.info, &m, &err)) {
        nsx_kernel_close(&k);
        return cli_fail(CMD, "%s", err.msg);
    }
    if (!indexer && nsx_kernel_indexer_caps(k.info))
        fprintf(log, "nsimplex fuzz: the kernel also declares an indexer: nsimplex fuzz --indexer fuzzes it\n");
    char name[128], path[256];
    nsx_printable(name, sizeof name, k.info->name ? k.info->name : "?");
    nsx_printable(path, sizeof path, kernel ? kernel : "in process, ");
    fprintf(log, "nsimplex fuzz: kernel %s (%s%s), model %s\n", name, path, kernel ? "" : nsx_simd_isa_name(k.isa),
           nsx_model_format(&m, model, sizeof model));
    fprintf(log, "nsimplex fuzz: seed %llu, from problem %llu, ", (unsigned long long)o.seed, (unsigned long long)o.start);
    if (o.count)
        fprintf(log, "at most %llu problems", (unsigned long long)o.count);
    if (o.count && o.seconds > 0)
        fprintf(log, " or ");
    if (o.seconds > 0)
        fprintf(log, "%.0f s", o.seconds);
    fprintf(log, "; failures go to %s/\n", o.out_dir);
    if (in_process)
        fprintf(log, "nsimplex fuzz: the kernel runs in this process (--in-process)\n");
    else
        fprintf(log, "nsimplex fuzz: each kernel call in a worker process (restarted after a fault), %g s per call at most; %d problem%s judged at once\n",
                iso.timeout, o.jobs, o.jobs == 1 ? "" : "s");
    fflush(log);
    nsx_fuzz_summary s;
    int rc = indexer ? nsx_fuzz_indexer_run(&k, &o, &s, &err) : nsx_fuzz_run(&k, &o, &s, &err);
    nsx_kernel_close(&k);
    if (rc)
        return cli_fail_err(CMD, &err);
    if (json) {
        nsx_buf b = {0};
        nsx_fuzz_summary_json(&s, &o, &b);
        if (b.s && !b.oom)
            fputs(b.s, stdout);
        nsx_buf_free(&b);
    }
    if (!s.nfail && s.mpfr + s.loop == 0)
        return cli_fail(CMD, "no problem was judged (%llu drawn, %llu skipped): not a pass; give more "
                             "--seconds or --count", (unsigned long long)s.problems, (unsigned long long)s.skipped);
    return s.nfail ? NSX_EXIT_FAIL : NSX_EXIT_OK;
}
