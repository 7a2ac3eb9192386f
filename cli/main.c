/*
 * nsimplex: one program, subcommands from one table (docs/SPEC.md section 7).
 */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "nsimplex/error.h"
#include "nsimplex/problem.h"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("nsimplex %s (spec %s)\n", NSX_VERSION, NSX_SPEC_VERSION);
    return NSX_EXIT_OK;
}

static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    const char *help;
} commands[] = {
    {"gen", cmd_gen, "gen [--out DIR] [--suite NAME] [--shard I/N]",
     "write golden vectors and their manifest"},
    {"eval", cmd_eval, "eval FILE --out OUT [--impl ref|simd]", "compute o, lse (and sel) for the inputs in FILE"},
    {"check", cmd_check, "check VECTOR CANDIDATE [--model M] [--json]",
     "judge a candidate against a vector; 0 pass, 1 fail, 2 bad input"},
    {"verify", cmd_verify, "verify [DIR] [--all]", "check the manifest's checksums, re-derive expected values"},
    {"show", cmd_show, "show FILE [--values N] [--raw]", "print a file's metadata and tensors readably"},
    {"version", cmd_version, "version", "print the spec and program versions"},
    {"fuzz", cmd_fuzz, "fuzz [--seconds S] [--seed N] [--kernel LIB.so] [--out DIR]",
     "differential fuzzing; each failure shrunk and saved for check"},
    {"bench", cmd_bench, "bench [shape options] [--kernel LIB.so] [--threads N] [--json]",
     "throughput as a share of the machine's measured peak"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "nsimplex %s: reference, golden vectors, oracle and fuzzer for\n"
            "n-simplicial attention (docs/SPEC.md).\n\n"
            "usage: nsimplex COMMAND [options]   (nsimplex COMMAND --help for more)\n\n",
            NSX_SPEC_VERSION);
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        fprintf(f, "  %-52s %s\n", commands[c].usage, commands[c].help);
    fprintf(f, "\nexit codes: 0 success or pass, 1 a check failed, 2 unusable input or arguments\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return NSX_EXIT_BAD;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return NSX_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(argv[1], commands[c].name) == 0)
            return commands[c].fn(argc - 1, argv + 1);
    fprintf(stderr, "nsimplex: '%s' is not a command (nsimplex --help lists them)\n", argv[1]);
    return NSX_EXIT_BAD;
}
