/*
 * Support shared by the parser fuzz targets (fuzz/targets/NAME.c, one
 * LLVMFuzzerTestOneInput each): assertions that stay on in every build and
 * abort, a private scratch directory for round trips, and comparisons of
 * what the parsers produce.  Not part of libnsimplex.
 */
#ifndef NSX_FUZZ_TARGETS_COMMON_H
#define NSX_FUZZ_TARGETS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "io/casefile.h"
#include "io/meta.h"
#include "io/safetensors.h"
#include "nsimplex/error.h"
#include "nsimplex/problem.h"
#include "oracle/check.h"

/* The entry point every target defines (libFuzzer's, and replay.c's). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An assertion that NDEBUG cannot turn off: prints where and why, then
   aborts, which libFuzzer and the replay driver report as a crash. */
#define FZ_CHECK(cond, ...)                                                        \
    do {                                                                           \
        if (!(cond))                                                               \
            fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                       \
    } while (0)

_Noreturn void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The outcome of a parser's call is well formed: rc is 0 or a kind an input
   can cause (bad input, unsupported, too large, not applicable, out of
   memory, the precision cap; never internal or I/O), and an error is one nonempty line that starts with
   prefix (the file's label, "metadata: ", ...). */
void fz_check_outcome(int rc, const nsx_err *err, const char *prefix);

/* Both reports of a check (oracle/check.h) are well formed: the JSON one
   parses as one JSON document, the text one prints (to /dev/null). */
void fz_check_reports(const nsx_check_report *rep, const nsx_case_info *info, const char *label);

/* DIR/name in a directory private to this process, on tmpfs when there is
   one (/dev/shm), else under $TMPDIR or /tmp; created on first use and
   removed at exit.  The result is a static buffer, valid until the next
   call. */
const char *fz_path(const char *name);

/* Writes n bytes to path (replacing it); aborts on any error. */
void fz_write_file(const char *path, const void *buf, size_t n);
/* The whole file (malloc'd, *n set); aborts on any error. */
unsigned char *fz_read_file(const char *path, size_t *n);

/* 1 when a and b hold the same tensors (name, dtype, shape, bytes) and
   metadata, whatever their order and offsets. */
int fz_st_same(const nsx_st *a, const nsx_st *b);
/* 1 when every field of a and b is equal (doubles bit for bit). */
int fz_problem_same(const nsx_problem *a, const nsx_problem *b);
/* 1 when a and b hold the same case identity, flags and pairs (spec and a
   missing generator aside: the writer writes its own). */
int fz_info_same(const nsx_case_info *a, const nsx_case_info *b);
/* 1 when the inputs and expected outputs of cases a and b (same problem)
   are equal bit for bit. */
int fz_case_same(const nsx_case *a, const nsx_case *b);

#endif
