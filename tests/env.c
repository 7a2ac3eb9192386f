/* The environment of the test runners (tests/env.h). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tests/env.h"

const char *test_tmpdir(void)
{
    const char *t = getenv("NSX_TMP");
    if (!t || !*t)
        return "/tmp";
    mkdir(t, 0777);
    return t;
}

int test_kernel_path(char *path, size_t len, const char *name)
{
    const char *dir = getenv("NSX_TEST_KERNELS");
    if (!dir || !*dir)
        return 0;
    snprintf(path, len, "%s/%s.so", dir, name);
    return 1;
}
