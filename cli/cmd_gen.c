/*
 * nsimplex gen [--out DIR] [--suite NAME] [--shard I/N] [--manifest]
 *
 * Writes the golden vectors of a suite and their manifest (vectors/gen.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "nsimplex/error.h"
#include "vectors/gen.h"

static void help(void)
{
    printf("usage: nsimplex gen [--out DIR] [--suite NAME] [--shard I/N] [--manifest]\n\n"
           "Writes the golden vectors of a suite to DIR/SUITE/CASE.safetensors and rebuilds\n"
           "DIR/MANIFEST.json from the files DIR holds.\n\n"
           "  --out DIR      where to write (default: vectors)\n"
           "  --suite NAME   which suite (default: default); suites:");
    for (int s = 0; nsx_suite_at(s); s++)
        printf(" %s (%zu cases)", nsx_suite_at(s)->name, nsx_suite_at(s)->count);
    printf("\n  --shard I/N    only cases I, I+N, I+2N, ... (I from 1); no manifest is\n"
           "                 written, run `gen --manifest` after the last shard\n"
           "  --manifest     only rebuild the manifest from the files present\n");
}

int cmd_gen(int argc, char **argv)
{
    const char *dir = "vectors", *suite = "default", *shard_s = NULL, *val;
    int manifest_only = 0, shard = 1, nshards = 1;
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
        } else {
            return cli_fail("gen", "unknown argument '%s' (nsimplex gen --help)", argv[i]);
        }
        if (bad)
            return NSX_EXIT_BAD;
    }
    if (shard_s) {
        char extra;
        if (sscanf(shard_s, "%d/%d%c", &shard, &nshards, &extra) != 2 || nshards < 1 || shard < 1 || shard > nshards)
            return cli_fail("gen", "--shard: '%s' is not I/N with 1 <= I <= N", shard_s);
    }
    const nsx_suite *s = nsx_suite_find(suite);
    if (!s)
        return cli_fail("gen", "--suite: no suite '%s' (nsimplex gen --help lists them)", suite);
    nsx_err err = {0};
    int count;
    if (!manifest_only && nsx_gen_suite(s, dir, shard, nshards, stdout, &err)) {
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
