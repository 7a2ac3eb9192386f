/*
 * nsimplex: one program, subcommands from one table (docs/SPEC.md section 7).
 *
 * Faults end in one line and exit 3 whatever the command: GMP and MPFR
 * running out of memory (they would abort), a file size limit (SIGXFSZ
 * would kill the program mid-write; ignored, the write fails with EFBIG and
 * io/atomic.c removes its temporary file), and a standard output that
 * cannot be written (checked when the command ends).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmp.h>

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

/* The command running, for the fault messages. */
static const char *current = "";

/* GMP and MPFR cannot recover from a failed allocation: end the program
   with one line and exit 3 (NSX_EXIT_INTERNAL) instead of their abort. */
static void mp_oom(size_t n)
{
    fprintf(stderr, "nsimplex%s%s: out of memory (GMP/MPFR could not allocate %zu bytes)\n", *current ? " " : "",
            current, n);
    exit(NSX_EXIT_INTERNAL);
}

static void *mp_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        mp_oom(n);
    return p;
}

static void *mp_realloc(void *old, size_t o, size_t n)
{
    (void)o;
    void *p = realloc(old, n);
    if (!p)
        mp_oom(n);
    return p;
}

static void mp_free(void *p, size_t n)
{
    (void)n;
    free(p);
}

/* The command's results must reach standard output: a full disk or a closed
   pipe is an I/O error (exit 3), not a silent success. */
static int finish_stdout(int rc)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    int e = errno ? errno : cli_stdout_errno();
    fprintf(stderr, "nsimplex%s%s: cannot write to standard output: %s\n", *current ? " " : "", current,
            e ? strerror(e) : "write error");
    return rc >= NSX_EXIT_BAD ? rc : NSX_EXIT_INTERNAL;
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
    {"check", cmd_check, "check VECTOR CANDIDATE [--model M] [--json] | check --kernel LIB.so [VECTOR...]",
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
    fprintf(f, "\nexit codes: 0 success or pass, 1 a check failed, 2 unusable input or arguments\n"
               "(a problem over the work budget included: --max-tuples), 3 internal, out of memory\n"
               "or I/O error\n");
}

int main(int argc, char **argv)
{
    mp_set_memory_functions(mp_alloc, mp_realloc, mp_free);
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return NSX_EXIT_BAD;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return finish_stdout(NSX_EXIT_OK);
    }
    if (strcmp(argv[1], "--version") == 0)
        return finish_stdout(cmd_version(argc - 1, argv + 1));
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(argv[1], commands[c].name) == 0) {
            current = commands[c].name;
            return finish_stdout(commands[c].fn(argc - 1, argv + 1));
        }
    fprintf(stderr, "nsimplex: '%s' is not a command (nsimplex --help lists them)\n", argv[1]);
    return NSX_EXIT_BAD;
}
