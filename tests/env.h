/*
 * Test support: the environment `make check` gives the runners, for the
 * tests that write files or load the test kernels.  Linked into every test
 * runner (not named test_*).
 */
#ifndef NSX_TESTS_ENV_H
#define NSX_TESTS_ENV_H

#include <stddef.h>

/* $NSX_TMP (created if missing), else /tmp. */
const char *test_tmpdir(void);

/* $NSX_TEST_KERNELS/NAME.so (tests/kernels/, built by the Makefile) into
   path; 0 when NSX_TEST_KERNELS is unset (the caller skips its test). */
int test_kernel_path(char *path, size_t len, const char *name);

#endif /* NSX_TESTS_ENV_H */
