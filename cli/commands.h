/*
 * The nsimplex subcommands, one file each (cli/cmd_*.c), dispatched from the
 * table in cli/main.c.  Each returns an exit code (cli/exit.h): 0 success or
 * pass, 1 a check failed, 2 unusable input or arguments, 3 internal.
 */
#ifndef NSX_CLI_COMMANDS_H
#define NSX_CLI_COMMANDS_H

/* nsimplex check VECTOR CANDIDATE [--model M] [--json]: judges a
   candidate's outputs against a golden vector (docs/ORACLE.md). */
int cmd_check(int argc, char **argv);
/* nsimplex check --kernel LIB.so [VECTOR ...]: a kernel library run on
   golden vectors and judged (cmd_check_kernel.c; cmd_check hands over). */
int cmd_check_kernel(int argc, char **argv);

/* nsimplex show FILE: metadata and tensors of a file, readably. */
int cmd_show(int argc, char **argv);

/* nsimplex eval FILE --out OUT: outputs for the inputs in FILE. */
int cmd_eval(int argc, char **argv);
/* nsimplex gen: golden vectors and their manifest. */
int cmd_gen(int argc, char **argv);
/* nsimplex verify [DIR]: checksums, expected values re-derived. */
int cmd_verify(int argc, char **argv);

/* nsimplex fuzz: differential fuzzing of a kernel, each failure shrunk and
   saved as a vector that check replays (cmd_fuzz.c). */
int cmd_fuzz(int argc, char **argv);

/* nsimplex bench: throughput against the peak and the plain loops (cmd_bench.c,
   measured by runner/bench.c). */
int cmd_bench(int argc, char **argv);
/* nsimplex bench --indexer: the SIMD indexer's throughput (cmd_bench_indexer.c). */
int cmd_bench_indexer(int argc, char **argv);

#endif
