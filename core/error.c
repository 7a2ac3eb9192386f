/* Errors: one line, one exit code (include/nsimplex/error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nsimplex/error.h"

int nsx_err_set(nsx_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void nsx_err_prefix(nsx_err *err, const char *prefix)
{
    char tmp[sizeof err->msg];
    if (!err || !prefix)
        return;
    size_t n = strlen(prefix);
    if (n + 2 >= sizeof tmp)
        n = sizeof tmp - 3;
    memcpy(tmp, prefix, n);
    memcpy(tmp + n, ": ", 2);
    size_t rest = sizeof tmp - n - 3; /* room left before the terminator */
    size_t m = strlen(err->msg);
    if (m > rest)
        m = rest;
    memcpy(tmp + n + 2, err->msg, m);
    tmp[n + 2 + m] = '\0';
    memcpy(err->msg, tmp, sizeof tmp);
}
