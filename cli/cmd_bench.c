/*
 * nsimplex bench: throughput of a kernel (the project's SIMD one, or any
 * library behind the kernel ABI) as useful GFLOP/s and as a share of the
 * machine's measured peak, against the plain-loop baseline in the same
 * process, with the peak memory.
 *
 * Useful flops: each allowed tuple (counted exactly, simd/count.c) needs
 *   product reducer: 2 d (its score: u . k_n, u the prefix's factor) plus
 *                    2 dv (its weight times the inner key's values, added)
 *                    = 2 (d + dv);
 *   sum and mean:    2 d + 2: the score, then its weight added into the row
 *                    and the column marginal; the values enter per key, not
 *                    per tuple, since sum_J A_J sum_m v_m[j_m] =
 *                    sum_m sum_j (sum_{J: j_m = j} A_J) v_m[j].
 * Exponentials, masks and the prefix products are not counted.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "io/json.h"
#include "kernel/kernel.h"
#include "cli/exit.h"
#include "nsimplex/error.h"
#include "nsimplex/kernel.h"
#include "nsimplex/problem.h"
#include "nsimplex/rng.h"
#include "simd/simd.h"

#define CMD "bench"

static const char usage_text[] =
    "usage: nsimplex bench [options]\n"
    "Times one forward of n-simplicial attention on random float32 inputs (fixed seed).\n"
    "The default shape is the 2-simplicial paper's: n=2, B=1, L=2048, H=4, Hkv=1, d=dv=64,\n"
    "causal, windows 512,32, product reducer.\n\n"
    "  --n N              order, 1..8 (2)\n"
    "  --B, --L, --H, --Hkv, --d, --dv N   sizes (1, 2048, 4, 1, 64, 64)\n"
    "  --window W[,W..]   one window per dimension, or one for all (512,32 for n=2, else 0)\n"
    "  --causal 0|1       (1)\n"
    "  --reduce R         product | sum | mean (product)\n"
    "  --topk K           random selection of K keys per query (0: none)\n"
    "  --sel-dims M[,M..] the 1-based dimensions it restricts (all)\n"
    "  --distinct         keys of a tuple pairwise different\n"
    "  --repeat R         timed runs after a warm-up; the best counts (3); a warm-up\n"
    "                     of 10 s or more is the only run and counts\n"
    "  --threads N        threads (0: all cores) (0)\n"
    "  --kernel LIB.so    time this library through the kernel ABI instead\n"
    "  --naive-seconds S  budget for the plain-loop baseline (it may take up to\n"
    "                     twice that); rows are sampled beyond it (10; 0 skips it)\n"
    "  --peak-seconds S   length of one peak FMA trial (0.3)\n"
    "  --seed N           input seed (1)\n"
    "  --json             one JSON object instead of text\n"
    "  --indexer          time the SIMD indexer and top-k instead (bench --indexer --help)\n\n"
    "Useful flops per allowed tuple: 2*(d+dv) for product, 2*d+2 for sum and mean\n"
    "(cli/cmd_bench.c derives them).  Exit 0, or 2 for bad options, 3 out of memory.\n";

typedef struct bench_opts {
    nsx_kernel_problem p;
    int window_given, sel_dims_given, repeat, threads, json;
    const char *kernel;
    double naive_seconds, peak_seconds;
    unsigned long long seed;
} bench_opts;

/* A comma-separated list of ints in [lo, hi]; returns the count or -1. */
static int int_list(const char *opt, const char *s, int lo, int hi, int *out, int cap)
{
    int count = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return cli_fail(CMD, "%s: list too long", opt), -1;
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (count == cap)
            return cli_fail(CMD, "%s: more than %d values", opt, cap), -1;
        if (!cli_int(CMD, opt, tok, lo, hi, &v))
            return -1;
        out[count++] = (int)v;
    }
    if (count == 0)
        return cli_fail(CMD, "%s: no value", opt), -1;
    return count;
}

/* A duration in 0..3600 seconds. */
static bool seconds_opt(const char *opt, const char *s, double *out)
{
    if (!cli_double(CMD, opt, s, out))
        return false;
    if (*out < 0 || *out > 3600) {
        cli_fail(CMD, "%s: %s is outside 0..3600 seconds", opt, s);
        return false;
    }
    return true;
}

/* Parses argv into o; 0 or an exit code (help: -1). */
static int parse(int argc, char **argv, bench_opts *o)
{
    nsx_kernel_problem *p = &o->p;
    memset(o, 0, sizeof *o);
    p->n = 2; p->B = 1; p->L = 2048; p->H = 4; p->Hkv = 1; p->d = 64; p->dv = 64;
    p->causal = 1;
    p->out_scale = 1.0;
    o->repeat = 3;
    o->naive_seconds = 10;
    o->peak_seconds = 0.3;
    o->seed = 1;
    int windows[NSX_MAX_ORDER] = {0}, nwin = 0, dims[NSX_MAX_ORDER], ndims = 0;
    struct { const char *name; int *dst; long lo, hi; } ints[] = {
        {"--n", &p->n, 1, NSX_MAX_ORDER}, {"--B", &p->B, 1, NSX_MAX_DIM},
        {"--L", &p->L, 1, NSX_MAX_DIM},   {"--H", &p->H, 1, NSX_MAX_DIM},
        {"--Hkv", &p->Hkv, 1, NSX_MAX_DIM}, {"--d", &p->d, 1, NSX_MAX_DIM},
        {"--dv", &p->dv, 1, NSX_MAX_DIM}, {"--causal", &p->causal, 0, 1},
        {"--topk", &p->topk, 0, NSX_MAX_DIM}, {"--repeat", &o->repeat, 1, 1000},
        {"--threads", &o->threads, 0, 4096},
    };
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        bool bad = false, hit = false;
        if (cli_is_help(argv[i]))
            return -1;
        for (size_t t = 0; t < sizeof ints / sizeof ints[0] && !hit; t++)
            if (cli_opt(CMD, argc, argv, &i, ints[t].name, &val, &bad)) {
                long v;
                hit = true;
                if (bad || !cli_int(CMD, ints[t].name, val, ints[t].lo, ints[t].hi, &v))
                    return NSX_EXIT_BAD;
                *ints[t].dst = (int)v;
            }
        if (hit)
            continue;
        if (cli_opt(CMD, argc, argv, &i, "--window", &val, &bad)) {
            if (bad || (nwin = int_list("--window", val, 0, NSX_MAX_DIM, windows, NSX_MAX_ORDER)) < 0)
                return NSX_EXIT_BAD;
            o->window_given = 1;
        } else if (cli_opt(CMD, argc, argv, &i, "--sel-dims", &val, &bad)) {
            if (bad || (ndims = int_list("--sel-dims", val, 1, NSX_MAX_ORDER, dims, NSX_MAX_ORDER)) < 0)
                return NSX_EXIT_BAD;
            o->sel_dims_given = 1;
        } else if (cli_opt(CMD, argc, argv, &i, "--reduce", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            if (strcmp(val, "product") == 0)
                p->reduce = NSX_REDUCE_PRODUCT;
            else if (strcmp(val, "sum") == 0)
                p->reduce = NSX_REDUCE_SUM;
            else if (strcmp(val, "mean") == 0)
                p->reduce = NSX_REDUCE_MEAN;
            else
                return cli_fail(CMD, "--reduce: '%s' is not product, sum or mean", val);
        } else if (cli_opt(CMD, argc, argv, &i, "--distinct", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            p->distinct = 1;
        } else if (cli_opt(CMD, argc, argv, &i, "--json", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            o->json = 1;
        } else if (cli_opt(CMD, argc, argv, &i, "--kernel", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            o->kernel = val;
        } else if (cli_opt(CMD, argc, argv, &i, "--naive-seconds", &val, &bad)) {
            if (bad || !seconds_opt("--naive-seconds", val, &o->naive_seconds))
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--peak-seconds", &val, &bad)) {
            if (bad || !seconds_opt("--peak-seconds", val, &o->peak_seconds))
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--seed", &val, &bad)) {
            long v;
            if (bad || !cli_int(CMD, "--seed", val, 0, 0x7fffffffL, &v))
                return NSX_EXIT_BAD;
            o->seed = (unsigned long long)v;
        } else {
            return cli_fail(CMD, "unknown option '%s' (nsimplex bench --help lists them)", argv[i]);
        }
    }
    if (p->H % p->Hkv)
        return cli_fail(CMD, "--H %d is not a multiple of --Hkv %d", p->H, p->Hkv);
    if (!o->window_given && p->n == 2) {
        windows[0] = 512;
        windows[1] = 32;
        nwin = 2;
    }
    if (o->window_given && nwin != 1 && nwin != p->n)
        return cli_fail(CMD, "--window: %d values for n = %d (give 1 or n)", nwin, p->n);
    for (int m = 0; m < p->n; m++)
        p->window[m] = nwin == 1 ? windows[0] : nwin ? windows[m] : 0;
    if (o->sel_dims_given && p->topk == 0)
        return cli_fail(CMD, "--sel-dims needs --topk");
    if (p->topk > 0) {
        p->sel_dims = o->sel_dims_given ? 0 : (1u << p->n) - 1;
        for (int t = 0; t < ndims; t++) {
            if (dims[t] > p->n)
                return cli_fail(CMD, "--sel-dims: %d is not a dimension of n = %d", dims[t], p->n);
            p->sel_dims |= 1u << (dims[t] - 1);
        }
    }
    p->score_scale = 1.0 / sqrt((double)p->d);
    return 0;
}

/* ---- inputs ---------------------------------------------------------- */

static nsx_rng bench_rng;

static uint64_t rng(void)
{
    return nsx_rng_next(&bench_rng);
}

typedef struct tensors {
    float *q, *k[NSX_MAX_ORDER], *v[NSX_MAX_ORDER], *o, *lse;
    int32_t *sel;
    size_t bytes; /* inputs and outputs */
} tensors;

static float *alloc_fill(size_t count, size_t *bytes)
{
    float *x = malloc(count * sizeof *x);
    if (x)
        for (size_t t = 0; t < count; t++) /* uniform in [-1, 1) */
            x[t] = (float)((double)(rng() >> 40) / (double)(1ull << 23) - 1.0);
    *bytes += count * sizeof *x;
    return x;
}

/* Random selection: per (b, i), topk distinct keys among those a causal
   query may select (all keys with causal off), -1 pads when fewer. */
static void fill_sel(const nsx_kernel_problem *p, int32_t *sel)
{
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            int32_t *row = sel + ((size_t)b * p->L + i) * p->topk;
            int pool = p->causal ? i + 1 : p->L;
            int take = pool < p->topk ? pool : p->topk;
            /* Floyd's sampling of take keys from [0, pool). */
            int got = 0;
            for (int j = pool - take; j < pool; j++) {
                int t = (int)(rng() % (uint64_t)(j + 1)), dup = 0;
                for (int z = 0; z < got; z++)
                    dup |= row[z] == t;
                row[got++] = dup ? j : t;
            }
            for (int r = got; r < p->topk; r++)
                row[r] = -1;
        }
}

static int make_tensors(const bench_opts *o, tensors *t)
{
    const nsx_kernel_problem *p = &o->p;
    memset(t, 0, sizeof *t);
    bench_rng.s = o->seed;
    size_t B = (size_t)p->B, L = (size_t)p->L;
    int ok = (t->q = alloc_fill(B * L * p->H * p->d, &t->bytes)) != NULL;
    for (int m = 0; m < p->n && ok; m++) {
        ok = (t->k[m] = alloc_fill(B * L * p->Hkv * p->d, &t->bytes)) != NULL;
        ok = ok && (t->v[m] = alloc_fill(B * L * p->Hkv * p->dv, &t->bytes)) != NULL;
    }
    ok = ok && (t->o = alloc_fill(B * L * p->H * p->dv, &t->bytes)) != NULL;
    ok = ok && (t->lse = alloc_fill(B * p->H * L, &t->bytes)) != NULL;
    if (ok && p->topk > 0) {
        t->sel = malloc(B * L * p->topk * sizeof *t->sel);
        t->bytes += B * L * p->topk * sizeof *t->sel;
        ok = t->sel != NULL;
        if (ok)
            fill_sel(p, t->sel);
    }
    return ok;
}

static void free_tensors(const nsx_kernel_problem *p, tensors *t)
{
    free(t->q);
    for (int m = 0; m < p->n; m++) {
        free(t->k[m]);
        free(t->v[m]);
    }
    free(t->o);
    free(t->lse);
    free(t->sel);
}

static nsx_kernel_io io_of(const nsx_kernel_problem *p, const tensors *t, float *o, float *lse)
{
    nsx_kernel_io io = {.q = t->q, .o = o, .lse = lse};
    for (int m = 0; m < p->n; m++) {
        io.k[m] = t->k[m];
        io.v[m] = t->v[m];
    }
    return io;
}

/* ---- the kernel -------------------------------------------------------- */

/* The in-process SIMD kernel, or o->kernel through the ABI (kernel/kernel.h). */
static int kernel_open(const bench_opts *o, nsx_kernel *k)
{
    nsx_err err = {0};
    if (o->threads > 0) /* the library's OpenMP is this process's */
        omp_set_num_threads(o->threads);
    if (nsx_kernel_open(k, o->kernel, -1, o->threads, &err))
        return cli_fail(CMD, "%s", err.msg);
    return 0;
}

/* ---- the plain-loop baseline --------------------------------------------- */

typedef struct naive_result {
    double seconds;     /* measured */
    double estimate;    /* for every row: measured, or scaled by the tuple counts */
    int rows, step;     /* rows measured, every step-th */
    double max_abs_diff, max_lse_diff;
} naive_result;

/*
 * Times nsx_simd_naive on the rows it can finish within the budget: all of
 * them, or every step-th (ending at the last row), or if even one row is
 * too long, one calibration row; the full time is then the measured one
 * scaled by the exact tuple counts.  Also compares its o and lse with the
 * kernel's on those rows.
 */
static int run_naive(const bench_opts *o, const tensors *t, const uint64_t *rows_tuples,
                     uint64_t total, naive_result *nr)
{
    const nsx_kernel_problem *p = &o->p;
    const int L = p->L, T = nsx_simd_threads(o->threads);
    memset(nr, 0, sizeof *nr);
    size_t no = (size_t)p->B * L * p->H * p->dv, nl = (size_t)p->B * p->H * L;
    float *on = malloc(no * sizeof *on), *ln = malloc(nl * sizeof *ln);
    if (!on || !ln) {
        free(on);
        free(ln);
        return NSX_EXIT_INTERNAL;
    }
    nsx_kernel_io io = io_of(p, t, on, ln);
    /* Calibration row: the largest with at most ~2e5 tuples, else the smallest. */
    int cal = -1;
    for (int i = 0; i < L; i++) {
        uint64_t c = rows_tuples[i] * (uint64_t)p->H;
        if (c == 0)
            continue;
        if (cal < 0 || (c <= 200000 && c > rows_tuples[cal] * (uint64_t)p->H) ||
            (rows_tuples[cal] * (uint64_t)p->H > 200000 && c < rows_tuples[cal] * (uint64_t)p->H))
            cal = i;
    }
    double t0 = omp_get_wtime();
    nsx_simd_naive(p, &io, cal, cal + 1, 1, T);
    double tcal = omp_get_wtime() - t0;
    double per_tuple = tcal / ((double)rows_tuples[cal] * p->H);
    /* The densest stride whose estimate fits a quarter of the budget... */
    int step = 1, i0 = 0;
    for (;; step *= 2) {
        double est = 0;
        for (int i = (L - 1) % step; i < L; i += step)
            est += (double)rows_tuples[i] * p->H * per_tuple / T;
        if (est <= o->naive_seconds / 4 || step >= L)
            break;
    }
    double est_rows = 0;
    for (int i = (L - 1) % step; i < L; i += step)
        est_rows += (double)rows_tuples[i] * p->H * per_tuple / T;
    if (est_rows > o->naive_seconds && est_rows > 2 * tcal) {
        /* Even one row is over budget: the calibration row is the sample. */
        nr->seconds = tcal;
        nr->rows = 1;
        nr->step = 0;
    } else {
        /* ... then measured, and halved while the measured time says the
           next round (twice the rows) still fits the budget. */
        for (;;) {
            i0 = (L - 1) % step;
            t0 = omp_get_wtime();
            nsx_simd_naive(p, &io, i0, L, step, T);
            nr->seconds = omp_get_wtime() - t0;
            if (step == 1 || 2 * nr->seconds > o->naive_seconds)
                break;
            step /= 2;
        }
        nr->rows = (L - 1 - i0) / step + 1;
        nr->step = step;
    }
    uint64_t sample = 0;
    for (int i = nr->step ? i0 : cal; i < L; i += nr->step ? step : L)
        sample += rows_tuples[i] * (uint64_t)p->H;
    nr->estimate = nr->seconds * (double)total / (double)sample;
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = nr->step ? i0 : cal; i < L; i += nr->step ? step : L) {
                size_t at = (((size_t)b * L + i) * p->H + h) * p->dv;
                for (int c = 0; c < p->dv; c++) {
                    double e = fabs((double)on[at + c] - t->o[at + c]);
                    if (!(e <= nr->max_abs_diff))
                        nr->max_abs_diff = e;
                }
                size_t al = ((size_t)b * p->H + h) * L + i;
                double e = ln[al] == t->lse[al] ? 0 : fabs((double)ln[al] - t->lse[al]);
                if (!(e <= nr->max_lse_diff))
                    nr->max_lse_diff = e;
            }
    free(on);
    free(ln);
    return 0;
}

/* ---- the report ---------------------------------------------------------- */

static const char *reduce_name(int r)
{
    return r == NSX_REDUCE_SUM ? "sum" : r == NSX_REDUCE_MEAN ? "mean" : "product";
}

static void windows_str(const nsx_kernel_problem *p, char *buf, size_t len)
{
    size_t at = 0;
    for (int m = 0; m < p->n; m++)
        at += (size_t)snprintf(buf + at, len - at, "%s%d", m ? "," : "", p->window[m]);
}

typedef struct report {
    const char *kernel, *isa, *peak_isa;
    int threads;
    uint64_t tuples;
    double flops_per_tuple, seconds, gflops, peak, rss_mib, io_mib, scratch_kib;
    int runs; /* timed runs the time is the best of */
    int naive_done;
    naive_result nr;
} report;

/* ,"KEY":x (null when not finite) */
static void put_num(nsx_buf *b, const char *key, double x)
{
    nsx_buf_printf(b, ",\"%s\":", key);
    if (isfinite(x))
        nsx_buf_json_number(b, x);
    else
        nsx_buf_puts(b, "null");
}

static void print_json(const bench_opts *o, const report *r)
{
    const nsx_kernel_problem *p = &o->p;
    nsx_buf b = {0};
    nsx_buf_printf(&b, "{\"shape\":{\"n\":%d,\"B\":%d,\"L\":%d,\"H\":%d,\"Hkv\":%d,\"d\":%d,"
                   "\"dv\":%d,\"windows\":[", p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv);
    for (int m = 0; m < p->n; m++)
        nsx_buf_printf(&b, "%s%d", m ? "," : "", p->window[m]);
    nsx_buf_printf(&b, "],\"causal\":%s,\"reduce\":", p->causal ? "true" : "false");
    nsx_buf_json_string(&b, reduce_name(p->reduce));
    nsx_buf_printf(&b, ",\"topk\":%d,\"sel_dims\":%u,\"distinct\":%s},\"kernel\":", p->topk,
                   p->sel_dims, p->distinct ? "true" : "false");
    nsx_buf_json_string(&b, r->kernel);
    nsx_buf_puts(&b, ",\"isa\":");
    nsx_buf_json_string(&b, r->isa);
    nsx_buf_printf(&b, ",\"threads\":%d,\"tuples\":%llu", r->threads, (unsigned long long)r->tuples);
    put_num(&b, "flops_per_tuple", r->flops_per_tuple);
    put_num(&b, "seconds", r->seconds);
    put_num(&b, "gflops", r->gflops);
    put_num(&b, "peak_gflops", r->peak);
    nsx_buf_puts(&b, ",\"peak_isa\":");
    nsx_buf_json_string(&b, r->peak_isa);
    put_num(&b, "peak_share", r->peak > 0 ? r->gflops / r->peak : 0);
    if (r->naive_done) {
        put_num(&b, "naive_ratio", r->nr.estimate / r->seconds);
        put_num(&b, "naive_seconds", r->nr.estimate);
        nsx_buf_printf(&b, ",\"naive_rows_measured\":%d,\"naive_scaled\":%s", r->nr.rows,
                       r->nr.rows < p->L ? "true" : "false");
        put_num(&b, "naive_max_abs_diff", r->nr.max_abs_diff);
    } else {
        nsx_buf_puts(&b, ",\"naive_ratio\":null");
    }
    put_num(&b, "peak_rss_mib", r->rss_mib);
    put_num(&b, "io_mib", r->io_mib);
    put_num(&b, "rss_bound_mib", r->io_mib + 64);
    put_num(&b, "scratch_kib_per_thread", r->scratch_kib);
    nsx_buf_puts(&b, "}");
    if (!b.oom)
        puts(b.s);
    nsx_buf_free(&b);
}

static void print_text(const bench_opts *o, const report *r)
{
    const nsx_kernel_problem *p = &o->p;
    char win[128];
    windows_str(p, win, sizeof win);
    printf("shape: n=%d B=%d L=%d H=%d Hkv=%d d=%d dv=%d reduce=%s causal=%d windows=%s "
           "distinct=%d topk=%d sel_dims=0x%x\n",
           p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv, reduce_name(p->reduce), p->causal, win,
           p->distinct, p->topk, p->sel_dims);
    printf("kernel: %s (%s, %d threads)\n", r->kernel, r->isa, r->threads);
    printf("peak fp32 FMA: %.1f GFLOP/s (%s, %d threads)\n", r->peak, r->peak_isa, r->threads);
    printf("allowed tuples: %llu (exact count); useful flops per tuple: %.0f (%s)\n",
           (unsigned long long)r->tuples, r->flops_per_tuple,
           p->reduce == NSX_REDUCE_PRODUCT ? "2*(d+dv)" : "2*d+2");
    printf("time: %.4f s (best of %d)\n", r->seconds, r->runs);
    printf("useful: %.1f GFLOP/s = %.1f%% of peak\n", r->gflops,
           r->peak > 0 ? 100 * r->gflops / r->peak : 0);
    if (r->naive_done) {
        if (r->nr.rows >= p->L)
            printf("naive (simd/naive.c, %d threads): %.3f s, all rows -> ratio %.1fx\n",
                   r->threads, r->nr.estimate, r->nr.estimate / r->seconds);
        else
            printf("naive (simd/naive.c, %d threads): %.3f s measured on %d of %d rows (%s), "
                   "%.1f s scaled by the exact tuple counts -> ratio %.1fx\n",
                   r->threads, r->nr.seconds, r->nr.rows, p->L,
                   r->nr.step ? "every few, ending at the last" : "one calibration row",
                   r->nr.estimate, r->nr.estimate / r->seconds);
        printf("naive vs kernel on those rows: max |o diff| %.3g, max |lse diff| %.3g\n",
               r->nr.max_abs_diff, r->nr.max_lse_diff);
    } else {
        printf("naive: skipped\n");
    }
    printf("peak RSS: %.1f MiB (inputs + outputs %.1f MiB; bound %.1f MiB: %s); "
           "kernel scratch %.0f KiB per thread\n",
           r->rss_mib, r->io_mib, r->io_mib + 64,
           r->rss_mib <= r->io_mib + 64 ? "within" : "EXCEEDED", r->scratch_kib);
}

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--indexer") == 0)
            return cmd_bench_indexer(argc, argv);
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc == -1) {
        fputs(usage_text, stdout);
        return NSX_EXIT_OK;
    }
    if (rc)
        return rc;
    nsx_kernel_problem *p = &o.p;
    nsx_kernel k = {0};
    tensors t;
    report r = {0};
    uint64_t *rows = NULL;
    if ((rc = kernel_open(&o, &k)))
        goto done;
    if (!make_tensors(&o, &t)) {
        rc = NSX_EXIT_INTERNAL;
        fprintf(stderr, "nsimplex bench: out of memory for the inputs\n");
        goto done_tensors;
    }
    p->sel = t.sel;
    r.kernel = k.info->name ? k.info->name : "(unnamed)";
    r.isa = k.lib ? "library" : nsx_simd_isa_name(k.isa);
    r.threads = k.threads;
    r.io_mib = (double)t.bytes / (1 << 20);
    r.scratch_kib = (double)nsx_simd_scratch_bytes(p) / 1024;

    /* The machine's peak, with the widest ISA it has. */
    int best = NSX_ISA_COUNT - 1;
    while (best > 0 && !nsx_simd_isa_supported(best))
        best--;
    r.peak_isa = nsx_simd_isa_name(best);
    r.peak = nsx_simd_peak_gflops(best, k.threads, o.peak_seconds);

    rows = malloc((size_t)p->L * sizeof *rows);
    if (!rows || nsx_simd_count_tuples(p, 0, p->L, 1, rows, &r.tuples) != NSX_SIMD_OK) {
        rc = cli_fail(CMD, "the tuple count overflows 64 bits or memory ran out");
        goto done_tensors;
    }
    r.flops_per_tuple = p->reduce == NSX_REDUCE_PRODUCT ? 2.0 * (p->d + p->dv) : 2.0 * p->d + 2;

    nsx_kernel_io io = io_of(p, &t, t.o, t.lse);
    r.seconds = INFINITY;
    for (int rep = -1; rep < o.repeat; rep++) { /* rep -1: the warm-up */
        double t0 = omp_get_wtime();
        int kr = nsx_kernel_call(&k, p, &io);
        double dt = omp_get_wtime() - t0;
        if (kr != 0) {
            rc = kr == 1 ? cli_fail(CMD, "kernel %s: unsupported problem", r.kernel)
                         : cli_fail(CMD, "kernel %s: error %d", r.kernel, kr);
            goto done_tensors;
        }
        if (rep >= 0 && dt < r.seconds)
            r.seconds = dt;
        r.runs += rep >= 0;
        if (rep < 0 && dt >= 10) { /* a long run needs no warm-up: it is the measurement */
            r.seconds = dt;
            r.runs = 1;
            break;
        }
    }
    r.gflops = (double)r.tuples * r.flops_per_tuple / r.seconds * 1e-9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.rss_mib = (double)ru.ru_maxrss / 1024; /* before the baseline's own buffers */

    if (o.naive_seconds > 0 && r.tuples > 0) {
        if ((rc = run_naive(&o, &t, rows, r.tuples, &r.nr))) {
            fprintf(stderr, "nsimplex bench: out of memory for the baseline\n");
            goto done_tensors;
        }
        r.naive_done = 1;
    }
    if (o.json)
        print_json(&o, &r);
    else
        print_text(&o, &r);
done_tensors:
    free_tensors(p, &t);
done:
    free(rows);
    nsx_kernel_close(&k);
    return rc;
}
