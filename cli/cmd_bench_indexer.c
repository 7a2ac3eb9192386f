/*
 * nsimplex bench --indexer: throughput of the optimized indexer and top-k
 * (simd/indexer.h) at DeepSeek V3.2's shape by default, as scored
 * (query, key) pairs per second, useful GFLOP/s and share of the measured
 * peak.  runner/idx_bench.c measures; this parses and prints.
 */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "runner/idx_bench.h"

#define CMD "bench"

static const char usage_text[] =
    "usage: nsimplex bench --indexer [options]\n"
    "Times the SIMD indexer and top-k (E8, E9) on random float32 inputs (fixed seed).\n"
    "The default shape is DeepSeek V3.2's: B=1, L=4096, Hi=64, di=128, top-k 2048, relu,\n"
    "idx_scale 1/sqrt(di), causal.\n\n"
    "  --B, --L, --Hi, --di N   sizes (1, 4096, 64, 128)\n"
    "  --topk K           keys kept per query (2048)\n"
    "  --act A            relu | identity | softmax (relu)\n"
    "  --causal 0|1       (1)\n"
    "  --repeat R         timed runs after a warm-up; the best counts (3)\n"
    "  --threads N        threads (0: all cores) (0)\n"
    "  --peak-seconds S   length of one peak FMA trial (0.3)\n"
    "  --seed N           input seed (1)\n"
    "  --json             one JSON object instead of text\n"
    "  --sel-out FILE     write the selection there, raw int32 [B, L, topk] (for\n"
    "                     bench/torch_indexer_peer.py --check-sel)\n\n"
    "Useful flops per scored pair: Hi*(2*di+2) (runner/idx_bench.h).  NSX_ISA forces\n"
    "the ISA.  Exit 0, or 2 for bad options, 3 out of memory.\n";

int cmd_bench_indexer(int argc, char **argv)
{
    nsx_idx_bench_opts o;
    nsx_idx_bench_defaults(&o);
    int json = 0;
    const char *val;
    bool bad = false;
    const struct {
        const char *name;
        int *at;
        long lo, hi;
    } ints[] = {
        {"--B", &o.p.B, 1, 1 << 20},       {"--L", &o.p.L, 1, 1 << 20},
        {"--Hi", &o.p.Hi, 1, 1 << 20},     {"--di", &o.p.di, 1, 1 << 20},
        {"--topk", &o.p.k, 1, 1 << 20},    {"--causal", &o.p.causal, 0, 1},
        {"--repeat", &o.repeat, 1, 1000},  {"--threads", &o.threads, 0, 4096},
    };
    for (int i = 1; i < argc; i++) {
        int done = 0;
        if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return NSX_EXIT_OK;
        }
        if (cli_opt(CMD, argc, argv, &i, "--indexer", NULL, &bad) || cli_opt(CMD, argc, argv, &i, "--json", NULL, &bad)) {
            json |= strcmp(argv[i], "--json") == 0;
            continue;
        }
        for (size_t t = 0; t < sizeof ints / sizeof ints[0] && !done; t++)
            if (cli_opt(CMD, argc, argv, &i, ints[t].name, &val, &bad)) {
                long v;
                if (bad || !cli_int(CMD, ints[t].name, val, ints[t].lo, ints[t].hi, &v))
                    return NSX_EXIT_BAD;
                *ints[t].at = (int)v;
                done = 1;
            }
        if (done)
            continue;
        if (cli_opt(CMD, argc, argv, &i, "--act", &val, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            if (strcmp(val, "relu") == 0)
                o.p.act = NSX_SIMD_ACT_RELU;
            else if (strcmp(val, "identity") == 0)
                o.p.act = NSX_SIMD_ACT_IDENTITY;
            else if (strcmp(val, "softmax") == 0)
                o.p.act = NSX_SIMD_ACT_SOFTMAX;
            else
                return cli_fail(CMD, "--act: '%s' is not relu, identity or softmax", val);
        } else if (cli_opt(CMD, argc, argv, &i, "--peak-seconds", &val, &bad)) {
            if (bad || !cli_double(CMD, "--peak-seconds", val, &o.peak_seconds))
                return NSX_EXIT_BAD;
            if (o.peak_seconds <= 0 || o.peak_seconds > 60)
                return cli_fail(CMD, "--peak-seconds: %s is not in (0, 60]", val);
        } else if (cli_opt(CMD, argc, argv, &i, "--sel-out", &val, &bad)) {
            o.sel_out = val;
        } else if (cli_opt(CMD, argc, argv, &i, "--seed", &val, &bad)) {
            long v;
            if (bad || !cli_int(CMD, "--seed", val, 0, 1L << 62, &v))
                return NSX_EXIT_BAD;
            o.seed = (uint64_t)v;
        } else {
            return cli_fail(CMD, "unknown argument '%s' (nsimplex bench --indexer --help)", argv[i]);
        }
        if (bad)
            return NSX_EXIT_BAD;
    }
    o.p.idx_scale = 1.0 / __builtin_sqrt((double)o.p.di);
    nsx_idx_bench_result r;
    nsx_err err = {0};
    if (nsx_idx_bench_run(&o, &r, &err))
        return cli_fail_err(CMD, &err);
    const nsx_simd_idx_problem *p = &o.p;
    if (json) {
        printf("{\"bench\": \"indexer\", \"B\": %d, \"L\": %d, \"Hi\": %d, \"di\": %d, \"topk\": %d, "
               "\"act\": \"%s\", \"causal\": %d, \"isa\": \"%s\", \"threads\": %d, \"pairs\": %llu, "
               "\"flops_per_pair\": %.17g, \"seconds\": %.17g, \"pairs_per_s\": %.17g, \"gflops\": %.17g, "
               "\"peak_gflops\": %.17g, \"peak_share\": %.17g, \"runs\": %d, \"scratch_kib\": %.17g, "
               "\"io_mib\": %.17g}\n",
               p->B, p->L, p->Hi, p->di, p->k, r.act, p->causal, r.isa, r.threads, (unsigned long long)r.pairs,
               r.flops_per_pair, r.seconds, r.pairs_per_s, r.gflops, r.peak, r.gflops / r.peak, r.runs,
               r.scratch_kib, r.io_mib);
        return NSX_EXIT_OK;
    }
    printf("indexer: B=%d L=%d Hi=%d di=%d top-k %d, %s, causal %d; %s, %d threads\n", p->B, p->L, p->Hi, p->di,
           p->k, r.act, p->causal, r.isa, r.threads);
    printf("  %llu scored pairs in %.3f s (best of %d): %.3g pairs/s\n", (unsigned long long)r.pairs, r.seconds,
           r.runs, r.pairs_per_s);
    printf("  %.1f useful GFLOP/s (%.0f flops per pair) = %.1f%% of the measured peak %.1f GFLOP/s\n", r.gflops,
           r.flops_per_pair, 100 * r.gflops / r.peak, r.peak);
    printf("  scratch %.1f KiB per thread (no L^2 buffer); inputs and selection %.1f MiB\n", r.scratch_kib,
           r.io_mib);
    return NSX_EXIT_OK;
}
