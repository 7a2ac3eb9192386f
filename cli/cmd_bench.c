/*
 * nsimplex bench: the options, and the figures that runner/bench.c
 * measures, as text or as its JSON.  The shape options are recipe keys
 * (vectors/recipe.h), handed to the recipe parser with --recipe's text.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "io/json.h"
#include "nsimplex/error.h"
#include "nsimplex/kernel.h"
#include "nsimplex/names.h"
#include "nsimplex/problem.h"
#include "runner/bench.h"
#include "runner/bf16_bench.h"
#include "simd/simd.h"

#define CMD "bench"

static const char usage_text[] =
    "usage: nsimplex bench [options]\n"
    "Times one forward of n-simplicial attention on random float32 inputs (fixed seed).\n"
    "The default shape is the 2-simplicial paper's: n=2, B=1, L=2048, H=4, Hkv=1, d=dv=64,\n"
    "causal, windows 512,32, product reducer.\n\n"
    "  --recipe TEXT      the shape as a recipe, e.g. \"n=3 L=512 w=64 reduce=sum\"\n"
    "                     (keys of docs/VECTORS.md: n B L H Hkv d dv reduce causal\n"
    "                     distinct w kb vb scale out sel=indices k dims); the options\n"
    "                     below are the same keys and follow it\n"
    "  --n N              order, 1..8 (2)\n"
    "  --B, --L, --H, --Hkv, --d, --dv N   sizes (1, 2048, 4, 1, 64, 64; B at most 64)\n"
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
    "  --indexer          time the SIMD indexer and top-k instead (bench --indexer --help)\n"
    "  --bwd              time the backward (E7: dq, dk, dv from a random dO) instead,\n"
    "                     after one untimed forward for its o and lse; no baseline\n"
    "  --bf16             time the bf16-input path (simd/bf16.h) and the float32 path on\n"
    "                     the same bf16-valued inputs, as GEMM products per second\n"
    "                     (NSX_BF16 forces its variant); no baseline, no peak\n\n"
    "Useful flops per allowed tuple: forward 2*(d+dv) for product, 2*d+2 for sum and\n"
    "mean; backward (--bwd) 6*(d+dv) for product (6*d+4*dv for n=1), 6*d+4 for sum and\n"
    "mean (runner/bench.h derives them).  Exit 0, or 2 for bad options, 3 out of memory.\n";

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

/* Appends " key=val" to the recipe text; the value must be one token. */
static int add_key(char *text, size_t len, const char *opt, const char *key, const char *val)
{
    if (!*val || strpbrk(val, " \t=") || strlen(text) + strlen(key) + strlen(val) + 3 > len)
        return cli_fail(CMD, "%s: '%s' is not a value", opt, val);
    strcat(text, " ");
    strcat(text, key);
    strcat(text, "=");
    strcat(text, val);
    return 0;
}

/* --bf16 (runner/bf16_bench.h) */
static int bf16_path;

/* Parses argv into o; 0 or an exit code (help: -1). */
static int parse(int argc, char **argv, nsx_bench_opts *o)
{
    /* the shape options and the recipe keys they set */
    static const struct { const char *opt, *key; } shape[] = {
        {"--n", "n"}, {"--B", "B"}, {"--L", "L"}, {"--H", "H"}, {"--Hkv", "Hkv"}, {"--d", "d"},
        {"--dv", "dv"}, {"--causal", "causal"}, {"--reduce", "reduce"}, {"--window", "w"},
        {"--sel-dims", "dims"},
    };
    char recipe[1024] = "", topk[32] = "";
    int sel_dims = 0;
    nsx_bench_defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        bool bad = false, hit = false;
        long v;
        if (cli_is_help(argv[i]))
            return -1;
        for (size_t t = 0; t < sizeof shape / sizeof shape[0] && !hit; t++)
            if (cli_opt(CMD, argc, argv, &i, shape[t].opt, &val, &bad)) {
                hit = true;
                sel_dims |= strcmp(shape[t].key, "dims") == 0;
                if (bad || add_key(recipe, sizeof recipe, shape[t].opt, shape[t].key, val))
                    return NSX_EXIT_BAD;
            }
        if (hit)
            continue;
        if (cli_opt(CMD, argc, argv, &i, "--recipe", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            if (strlen(recipe) + strlen(val) + 2 > sizeof recipe)
                return cli_fail(CMD, "--recipe: too long");
            memmove(recipe + strlen(val) + 1, recipe, strlen(recipe) + 1); /* before the options */
            memcpy(recipe, val, strlen(val));
            recipe[strlen(val)] = ' ';
        } else if (cli_opt(CMD, argc, argv, &i, "--topk", &val, &bad)) {
            if (bad || !cli_int(CMD, "--topk", val, 0, NSX_MAX_DIM, &v))
                return NSX_EXIT_BAD;
            snprintf(topk, sizeof topk, "%ld", v);
        } else if (cli_opt(CMD, argc, argv, &i, "--distinct", NULL, &bad)) {
            if (bad || add_key(recipe, sizeof recipe, "--distinct", "distinct", "1"))
                return NSX_EXIT_BAD;
        } else if (cli_opt(CMD, argc, argv, &i, "--repeat", &val, &bad)) {
            if (bad || !cli_int(CMD, "--repeat", val, 1, 1000, &v))
                return NSX_EXIT_BAD;
            o->repeat = (int)v;
        } else if (cli_opt(CMD, argc, argv, &i, "--threads", &val, &bad)) {
            if (bad || !cli_int(CMD, "--threads", val, 0, 4096, &v))
                return NSX_EXIT_BAD;
            o->threads = (int)v;
        } else if (cli_opt(CMD, argc, argv, &i, "--bwd", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            o->bwd = 1;
        } else if (cli_opt(CMD, argc, argv, &i, "--bf16", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            bf16_path = 1;
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
            if (bad || !cli_int(CMD, "--seed", val, 0, 0x7fffffffL, &v))
                return NSX_EXIT_BAD;
            o->seed = (unsigned long long)v;
        } else {
            return cli_fail(CMD, "unknown option '%s' (nsimplex bench --help lists them)", argv[i]);
        }
    }
    if (sel_dims && (!*topk || strcmp(topk, "0") == 0) && !strstr(recipe, "sel="))
        return cli_fail(CMD, "--sel-dims needs --topk");
    /* --topk K: a random given selection of K keys (0: none) */
    if (*topk && strcmp(topk, "0") != 0 &&
        (add_key(recipe, sizeof recipe, "--topk", "sel", "indices") || add_key(recipe, sizeof recipe, "--topk", "k", topk)))
        return NSX_EXIT_BAD;
    nsx_err err;
    if (nsx_bench_shape(o, recipe, &err))
        return cli_fail_err(CMD, &err);
    return 0;
}

static void windows_str(const nsx_kernel_problem *p, char *buf, size_t len)
{
    size_t at = 0;
    for (int m = 0; m < p->n; m++)
        at += (size_t)snprintf(buf + at, len - at, "%s%d", m ? "," : "", p->window[m]);
}

static void print_text(const nsx_bench_opts *o, const nsx_bench_result *r)
{
    const nsx_kernel_problem *p = &o->p;
    char win[128];
    windows_str(p, win, sizeof win);
    printf("shape: n=%d B=%d L=%d H=%d Hkv=%d d=%d dv=%d reduce=%s causal=%d windows=%s "
           "distinct=%d topk=%d sel_dims=0x%x\n",
           p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv, nsx_reduce_name(p->reduce), p->causal, win,
           p->distinct, p->topk, p->sel_dims);
    char name[sizeof r->kernel]; /* a library's name is printed, not interpreted */
    nsx_printable(name, sizeof name, r->kernel);
    printf("kernel: %s (%s, %d threads), %s pass\n", name, r->isa, r->threads, o->bwd ? "backward" : "forward");
    printf("peak fp32 FMA: %.1f GFLOP/s (%s, %d threads)\n", r->peak, r->peak_isa, r->threads);
    const char *per = !o->bwd ? (p->reduce == NSX_REDUCE_PRODUCT ? "2*(d+dv)" : "2*d+2")
                      : p->reduce != NSX_REDUCE_PRODUCT ? "6*d+4" : p->n == 1 ? "6*d+4*dv" : "6*(d+dv)";
    printf("allowed tuples: %llu (exact count); useful flops per tuple: %.0f (%s)\n",
           (unsigned long long)r->tuples, r->flops_per_tuple, per);
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
        printf("naive: skipped%s\n", o->bwd ? " (no plain-loop backward)" : "");
    }
    const double bound = r->io_mib + r->partial_mib + NSX_BENCH_RSS_SLACK_MIB;
    printf("peak RSS: %.1f MiB (inputs + outputs %.1f MiB%s; bound %.1f MiB: %s); "
           "kernel scratch %.0f KiB per thread",
           r->rss_mib, r->io_mib, o->bwd ? " + partial dk, dv" : "", bound,
           r->rss_mib <= bound ? "within" : "EXCEEDED", r->scratch_kib);
    if (o->bwd)
        printf("; the slots' partial dk, dv %.1f MiB", r->partial_mib);
    printf("\n");
}

/* bench --bf16: both paths, text or one JSON object. */
static int bench_bf16(const nsx_bench_opts *o)
{
    const nsx_kernel_problem *p = &o->p;
    nsx_bf16_bench r;
    nsx_err err;
    if (o->bwd || o->kernel)
        return cli_fail(CMD, "--bf16 times the in-process forward paths: not with --bwd or --kernel");
    if (nsx_bench_bf16(o, &r, &err))
        return cli_fail_err(CMD, &err);
    const int emulated = strcmp(r.variant, "portable") == 0;
    if (o->json) {
        printf("{\"n\":%d,\"B\":%d,\"L\":%d,\"H\":%d,\"Hkv\":%d,\"d\":%d,\"dv\":%d,\"topk\":%d,"
               "\"threads\":%d,\"tuples\":%llu,\"bf16\":{\"variant\":\"%s\",\"emulated\":%s,"
               "\"seconds\":%.6g,\"products_per_s\":%.6g,\"gflops\":%.6g},\"f32\":{\"isa\":\"%s\","
               "\"seconds\":%.6g,\"products_per_s\":%.6g,\"gflops\":%.6g},\"speedup\":%.4g,"
               "\"max_o_diff\":%.3g}\n",
               p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv, p->topk, r.threads,
               (unsigned long long)r.tuples, r.variant, emulated ? "true" : "false", r.bf16.seconds,
               r.bf16.products, r.bf16.gflops, r.isa, r.f32.seconds, r.f32.products, r.f32.gflops,
               r.f32.seconds / r.bf16.seconds, r.max_o_diff);
        return NSX_EXIT_OK;
    }
    char win[128];
    windows_str(p, win, sizeof win);
    printf("shape: n=%d B=%d L=%d H=%d Hkv=%d d=%d dv=%d reduce=%s causal=%d windows=%s "
           "distinct=%d topk=%d\n",
           p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv, nsx_reduce_name(p->reduce), p->causal, win,
           p->distinct, p->topk);
    printf("allowed tuples: %llu (exact count); GEMM products per tuple: %.0f (%s); %d threads, "
           "best of %d\n", (unsigned long long)r.tuples, nsx_bf16_products_per_tuple(p),
           p->reduce == NSX_REDUCE_PRODUCT ? "d+dv" : "d", r.threads, r.runs);
    printf("bf16 path (%s%s): %.4f s, %.3g products/s, %.1f useful GFLOP/s, inputs %.1f MiB\n",
           r.variant, emulated ? ": plain C emulation of VDPBF16PS, not the target" : ", VDPBF16PS",
           r.bf16.seconds, r.bf16.products, r.bf16.gflops, r.bf16.input_mib);
    printf("f32 path  (%s): %.4f s, %.3g products/s, %.1f useful GFLOP/s, inputs %.1f MiB\n",
           r.isa, r.f32.seconds, r.f32.products, r.f32.gflops, r.f32.input_mib);
    printf("bf16 / f32 throughput: %.3gx; max |o diff| %.3g (the bf16 operands and weights)\n",
           r.f32.seconds / r.bf16.seconds, r.max_o_diff);
    return NSX_EXIT_OK;
}

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--indexer") == 0)
            return cmd_bench_indexer(argc, argv);
    nsx_bench_opts o;
    nsx_bench_result r;
    nsx_err err;
    int rc = parse(argc, argv, &o);
    if (rc == -1) {
        fputs(usage_text, stdout);
        return NSX_EXIT_OK;
    }
    if (rc)
        return rc;
    if (o.threads > 0) /* the probe's team is the one OpenMP will start */
        omp_set_num_threads(o.threads);
    if (cli_threads_probe(CMD, o.threads))
        return NSX_EXIT_INTERNAL;
    if (bf16_path)
        return bench_bf16(&o);
    if (nsx_bench_run(&o, &r, &err))
        return cli_fail_err(CMD, &err);
    if (o.json) {
        char *s = nsx_bench_json(&o, &r);
        if (!s) {
            nsx_err_set(&err, NSX_E_NOMEM, "out of memory for the report");
            return cli_fail_err(CMD, &err);
        }
        puts(s);
        free(s);
    } else {
        print_text(&o, &r);
    }
    return NSX_EXIT_OK;
}
