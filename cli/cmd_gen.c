/*
 * nsimplex gen [--out DIR] [--suite NAME] [--shard I/N] [--manifest]
 *
 * Writes the golden vectors of a suite and their manifest (vectors/gen.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "core/budget.h"
#include "nsimplex/error.h"
#include "vectors/gen.h"

static void help(void)
{
    printf("usage: nsimplex gen [--out DIR] [--suite NAME] [--shard I/N] [--manifest] [--max-tuples N]\n\n"
           "Writes the golden vectors of a suite to DIR/SUITE/CASE.safetensors and rebuilds\n"
           "DIR/MANIFEST.json from the files DIR holds.\n\n"
           "  --out DIR      where to write (default: vectors)\n"
           "  --suite NAME   which suite (default: default); suites:");
    for (int s = 0; nsx_suite_at(s); s++)
        printf(" %s (%zu cases)", nsx_suite_at(s)->name, nsx_suite_at(s)->count);
    printf("\n  --shard I/N    only cases I, I+N, I+2N, ... (I from 1); no manifest is\n"
           "                 written, run `gen --manifest` after the last shard\n"
           "  --manifest     only rebuild the manifest from the files present\n"
           CLI_BUDGET_HELP
           "\nexit codes: 0 written, 2 unusable arguments or a case over the budget, 3 internal\n"
           "or I/O error\n");
}

int cmd_gen(int argc, char **argv)
{
    const char *dir = "vectors", *suite = "default", *shard_s = NULL, *val;
    int manifest_only = 0, shard = 1, nshards = 1;
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
        } else if (cli_opt("gen", argc, argv, &i, "--manifest", NULL, &bad)) {
            manifest_only = 1;
        } else if (cli_budget_opt("gen", argc, argv, &i, &lim, &bad)) {
        } else {
            return cli_fail("gen", "unknown argument '%s' (nsimplex gen --help)", argv[i]);
        }
        if (bad)
            return NSX_EXIT_BAD;
    }
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
    if (!manifest_only && nsx_gen_suite(s, dir, shard, nshards, stdout, &lim, &err)) {
        return cli_fail_err("gen", &err);
    }
    if (shard_s && !manifest_only)
        return NSX_EXIT_OK;
    if (nsx_manifest_write(dir, &count, &err)) {
        return cli_fail_err("gen", &err);
    }
    printf("gen: %s/MANIFEST.json lists %d files\n", dir, count);
    return NSX_EXIT_OK;
}
