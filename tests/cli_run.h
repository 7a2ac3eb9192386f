/*
 * Test support: runs the nsimplex program ($NSX_BIN) as a child process and
 * captures what it did, for tests of the command line.  Linked into every
 * test runner (not named test_*).
 */
#ifndef NSX_TESTS_CLI_RUN_H
#define NSX_TESTS_CLI_RUN_H

typedef struct cli_result {
    int status;   /* exit code; 128 + N when killed by signal N; -1: not run */
    char *out;    /* everything written to stdout, NUL-terminated */
    char *err;    /* everything written to stderr */
} cli_result;

/* Runs "$NSX_BIN args[0] args[1] ..." (args ends with NULL), with stdin
   from /dev/null, stdout and stderr captured through temporary files under
   $NSX_TMP (or /tmp).  Returns 0, or -1 when the program could not be run
   (NSX_BIN unset, spawn failed); r->status is then -1.  Free r with
   cli_result_free. */
int cli_run(cli_result *r, const char *const args[]);

void cli_result_free(cli_result *r);

/* The number of lines in s (a final line without '\n' counts). */
int cli_count_lines(const char *s);

/* 1 when the files a and b (two runs' outputs) hold the same bytes, and
   some; 0 when they differ or either cannot be read. */
int cli_same_file(const char *a, const char *b);

#endif
