/*
 * nsimplex gen [--out DIR] [--suite NAME] [--shard I/N] [--manifest]
 * nsimplex gen --recipe "n=2 L=64 d=32 w=16,8" --out FILE [--name NAME]
 *
 * Writes the golden vectors of a suite and their manifest (vectors/gen.h),
 * or one vector of any shape from a recipe (vectors/recipe.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "core/budget.h"
#include "nsimplex/error.h"
#include "nsimplex/ref.h"
#include "vectors/gen.h"

static void help(void)
{
    printf("usage: nsimplex gen [--out DIR] [--suite NAME] [--shard I/N] [--manifest] [--max-tuples N]\n"
           "       nsimplex gen --recipe RECIPE --out FILE [--name NAME]\n\n"
           "Writes the golden vectors of a suite to DIR/SUITE/CASE.safetensors and rebuilds\n"
           "DIR/MANIFEST.json from the files DIR holds; or, with --recipe, one vector of any\n"
           "shape to FILE (no manifest).\n\n"
           "  --out DIR      where to write (default: vectors)\n"
           "  --suite NAME   which suite (default: default); suites:");
    for (int s = 0; nsx_suite_at(s); s++)
        printf(" %s (%zu cases)", nsx_suite_at(s)->name, nsx_suite_at(s)->count);
    printf("\n  --shard I/N    only cases I, I+N, I+2N, ... (I from 1); no manifest is\n"
           "                 written, run `gen --manifest` after the last shard\n"
           "  --manifest     only rebuild the manifest from the files present\n"
           "  --recipe TEXT  one case from a recipe, e.g. \"n=2 L=64 H=2 Hkv=1 d=32 w=16,8\n"
           "                 fmt=bf16 leak=nan:40 probe=all\" (keys: vectors/recipe.h; n, B, L,\n"
           "                 H, Hkv, d, dv, reduce, causal, distinct, w, kb, vb, scale, out, fmt,\n"
           "                 sel, k, dims, act, dist, ties, empty, invalid, leak, probe)\n"
           "  --name NAME    the case's name (default: FILE's name without .safetensors);\n"
           "                 the inputs are drawn from a seed derived from it\n"
           "  --exact-only   MPFR for every expected value (the same values as the default,\n"
           "                 where the fast certified path decides what it can)\n"
           "  --threads N    threads of the fast path (0: all cores) (0)\n"
           "  --stats        print the tuples, the time, the throughput and the values\n"
           "                 decided by the fast path and by MPFR\n"
           CLI_BUDGET_HELP
           "                  (the fast path: 64 times the tuples by default)\n"
           "\nexit codes: 0 written, 2 unusable arguments or a case over the budget, 3 internal\n"
           "or I/O error\n");
}

/* Progress of a long case, on stderr. */
static void progress(void *arg, uint64_t done, uint64_t rows)
{
    fprintf(stderr, "nsimplex gen: %s: %llu of %llu rows (%.0f%%)\n", (const char *)arg, (unsigned long long)done,
            (unsigned long long)rows, 100.0 * (double)done / (double)rows);
}

/* gen --recipe: one case to the file out. */
static int gen_recipe(const char *recipe, const char *out, const char *name, int conflicting, nsx_ref_opts ref,
                      const nsx_budget_limits *lim, int stats)
{
    if (conflicting)
        return cli_fail("gen", "--recipe writes one file: not with --suite, --shard or --manifest");
    size_t len = strlen(out);
    const char *ext = ".safetensors";
    if (strcmp(out, "vectors") == 0 || len <= strlen(ext) || strcmp(out + len - strlen(ext), ext) != 0)
        return cli_fail("gen", "--recipe: give --out FILE.safetensors ('%s')", out);
    char stem[256];
    if (!name) {
        const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
        snprintf(stem, sizeof stem, "%.*s", (int)(strlen(base) - strlen(ext)), base);
        name = stem;
    }
    if (!name[0])
        return cli_fail("gen", "--name: empty");
    nsx_err err = {0};
    nsx_ref_stats st = {0};
    ref.progress_arg = (void *)name; /* for progress() */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (nsx_gen_recipe_ref(recipe, name, out, &ref, lim, &st, &err))
        return cli_fail_err("gen", &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("gen: %s: %llu tuples, recipe \"%s\"\n", out, (unsigned long long)st.tuples, recipe);
    if (stats)
        cli_ref_stats("gen", &st, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return NSX_EXIT_OK;
}

int cmd_gen(int argc, char **argv)
{
    const char *dir = "vectors", *suite = "default", *shard_s = NULL, *val, *recipe = NULL, *name = NULL;
    int manifest_only = 0, shard = 1, nshards = 1, stats = 0;
    long threads = 0;
    nsx_ref_opts ref = {.fast = 1, .progress = progress};
    nsx_budget_limits lim = {0};
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            help();
            return NSX_EXIT_OK;
        } else if (cli_opt("gen", argc, argv, &i, "--out", &val, &bad)) {
            dir = val;
        } else if (cli_opt("gen", argc, argv, &i, "--suite", &val, &bad)) {
            suite = val;
        } else if (cli_opt("gen", argc, argv, &i, "--shard", &val, &bad)) {
            shard_s = val;
        } else if (cli_opt("gen", argc, argv, &i, "--recipe", &val, &bad)) {
            recipe = val;
        } else if (cli_opt("gen", argc, argv, &i, "--name", &val, &bad)) {
            name = val;
        } else if (cli_opt("gen", argc, argv, &i, "--manifest", NULL, &bad)) {
            manifest_only = 1;
        } else if (cli_opt("gen", argc, argv, &i, "--exact-only", NULL, &bad)) {
            ref.fast = 0;
        } else if (cli_opt("gen", argc, argv, &i, "--stats", NULL, &bad)) {
            stats = 1;
        } else if (cli_opt("gen", argc, argv, &i, "--threads", &val, &bad)) {
            if (!bad && !cli_int("gen", "--threads", val, 0, 4096, &threads))
                return NSX_EXIT_BAD;
            ref.threads = (int)threads;
        } else if (cli_budget_opt("gen", argc, argv, &i, &lim, &bad)) {
        } else {
            return cli_fail("gen", "unknown argument '%s' (nsimplex gen --help)", argv[i]);
        }
        if (bad)
            return NSX_EXIT_BAD;
    }
    if (recipe)
        return gen_recipe(recipe, dir, name, shard_s || manifest_only || strcmp(suite, "default") != 0, ref, &lim,
                          stats);
    if (name)
        return cli_fail("gen", "--name goes with --recipe");
    if (shard_s) {
        /* each part parsed whole and range-checked: no wrap past INT_MAX */
        char *end;
        errno = 0;
        long i = strtol(shard_s, &end, 10), n = 0;
        int ok = !errno && end != shard_s && *end == '/';
        if (ok) {
            const char *s2 = end + 1;
            n = strtol(s2, &end, 10);
            ok = !errno && end != s2 && *end == '\0' && n >= 1 && n <= 1000000 && i >= 1 && i <= n;
        }
        if (!ok)
            return cli_fail("gen", "--shard: '%s' is not I/N with 1 <= I <= N <= 1000000", shard_s);
        shard = (int)i;
        nshards = (int)n;
    }
    const nsx_suite *s = nsx_suite_find(suite);
    if (!s)
        return cli_fail("gen", "--suite: no suite '%s' (nsimplex gen --help lists them)", suite);
    nsx_err err = {0};
    int count;
    nsx_ref_stats total = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!manifest_only && nsx_gen_suite(s, dir, shard, nshards, &ref, &lim, stdout, &total, &err)) {
        return cli_fail_err("gen", &err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (stats && !manifest_only)
        cli_ref_stats("gen", &total,
                      (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    if (shard_s && !manifest_only)
        return NSX_EXIT_OK;
    if (nsx_manifest_write(dir, &count, &err)) {
        return cli_fail_err("gen", &err);
    }
    printf("gen: %s/MANIFEST.json lists %d files\n", dir, count);
    return NSX_EXIT_OK;
}
