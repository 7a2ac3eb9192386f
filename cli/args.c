/* Option helpers shared by the subcommands (cli/args.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/exit.h"
#include "nsimplex/error.h"

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nsimplex %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return NSX_EXIT_BAD;
}

int cli_fail_err(const char *cmd, const nsx_err *err)
{
    fprintf(stderr, "nsimplex %s: %s\n", cmd, err->msg);
    return cli_exit_code(err->kind);
}

bool cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
             const char **val, bool *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return false;
    if (!val) {
        if (a[n] == '=') {
            cli_fail(cmd, "%s takes no value", name);
            *bad = true;
        }
        return true;
    }
    if (a[n] == '=') {
        *val = a + n + 1;
    } else if (*i + 1 < argc) {
        *val = argv[++*i];
    } else {
        cli_fail(cmd, "%s needs a value", name);
        *bad = true;
    }
    return true;
}

bool cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        cli_fail(cmd, "%s: '%s' is not an integer", opt, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_fail(cmd, "%s: %ld is outside %ld..%ld", opt, v, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) {
        cli_fail(cmd, "%s: '%s' is not a finite number", opt, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}
