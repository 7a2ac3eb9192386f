/*
 * nsimplex verify [DIR] [--all]
 *
 * Checks a vector directory against its manifest (vectors/gen.h).
 */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "nsimplex/error.h"
#include "vectors/gen.h"

static void help(void)
{
    printf("usage: nsimplex verify [DIR] [--all]\n\n"
           "Checks DIR/MANIFEST.json: every listed file exists with its sha256, and the\n"
           "expected values of a sample of the files (one in 4; every file with --all) are\n"
           "recomputed from their inputs by the reference and must agree bit for bit.\n\n"
           "  DIR     the vector directory (default: vectors)\n"
           "  --all   recompute every file\n\n"
           "exit: 0 all agree, 1 a difference, 2 unusable directory or manifest\n");
}

int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL;
    int all = 0;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            help();
            return NSX_EXIT_OK;
        } else if (cli_opt("verify", argc, argv, &i, "--all", NULL, &bad)) {
            all = 1;
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
    if (nsx_verify(dir ? dir : "vectors", all, stdout, &failed, &err))
        return cli_fail_err("verify", &err);
    return failed ? NSX_EXIT_FAIL : NSX_EXIT_OK;
}
