/*
 * nsimplex verify [DIR] [--all]
 *
 * Checks a vector directory against its manifest (vectors/gen.h).
 */
#include <stdio.h>
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
    printf("usage: nsimplex verify [DIR] [--all] [--max-tuples N]\n\n"
           "Checks DIR/MANIFEST.json: every listed file exists with its sha256, and the\n"
           "expected values of a sample of the files (one in 4; every file with --all) are\n"
           "recomputed from their inputs by the reference and must agree bit for bit.\n\n"
           "  DIR     the vector directory (default: vectors)\n"
           "  --all          recompute every file\n"
           "  --exact-only   recompute with MPFR for every value (by default the fast\n"
           "                 certified path decides what it can, MPFR the rest: the same values)\n"
           "  --threads N    threads of the fast path (0: all cores) (0)\n"
           "  --stats        print the tuples, the time, the throughput and the values\n"
           "                 decided by the fast path and by MPFR\n"
           "  (a file that is not a regular file counts as missing)\n"
           CLI_BUDGET_HELP
           "                  (the fast path: 64 times the tuples by default)\n"
           "\nexit: 0 all agree, 1 a difference or a missing file, 2 unusable directory or\n"
           "manifest, a file that contradicts its own pairs, or one over the budget, 3\n"
           "internal or I/O error\n");
}

int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL;
    int all = 0, stats = 0;
    long threads = 0;
    nsx_ref_opts ref = {.fast = 1};
    nsx_budget_limits lim = {0};
    const char *val;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            help();
            return NSX_EXIT_OK;
        } else if (cli_opt("verify", argc, argv, &i, "--all", NULL, &bad)) {
            all = 1;
        } else if (cli_opt("verify", argc, argv, &i, "--exact-only", NULL, &bad)) {
            ref.fast = 0;
        } else if (cli_opt("verify", argc, argv, &i, "--stats", NULL, &bad)) {
            stats = 1;
        } else if (cli_opt("verify", argc, argv, &i, "--threads", &val, &bad)) {
            if (!bad && !cli_int("verify", "--threads", val, 0, 4096, &threads))
                return NSX_EXIT_BAD;
            ref.threads = (int)threads;
        } else if (cli_budget_opt("verify", argc, argv, &i, &lim, &bad)) {
        } else if (argv[i][0] == '-' || dir) {
            return cli_fail("verify", "unknown argument '%s' (nsimplex verify --help)", argv[i]);
        } else {
            dir = argv[i];
        }
        if (bad)
            return NSX_EXIT_BAD;
    }
    nsx_err err = {0};
    int failed = 0;
    nsx_ref_stats total = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (nsx_verify(dir ? dir : "vectors", all, &ref, &lim, stdout, &failed, &total, &err))
        return cli_fail_err("verify", &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (stats)
        cli_ref_stats("verify", &total,
                      (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return failed ? NSX_EXIT_FAIL : NSX_EXIT_OK;
}
