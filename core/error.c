/* Errors: one line and a kind (include/nsimplex/error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nsimplex/error.h"

int nsx_err_set(nsx_err *err, int kind, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->kind = kind;
    }
    return kind;
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

const char *nsx_err_kind_name(int kind)
{
    switch (kind) {
    case NSX_E_NONE: return "no error";
    case NSX_E_INPUT: return "bad input";
    case NSX_E_UNSUPPORTED: return "unsupported";
    case NSX_E_NOT_APPLICABLE: return "not applicable";
    case NSX_E_TOO_LARGE: return "too large";
    case NSX_E_NOMEM: return "out of memory";
    case NSX_E_PRECISION_CAP: return "precision cap";
    case NSX_E_IO: return "I/O error";
    case NSX_E_KERNEL_REFUSED: return "kernel refused";
    case NSX_E_KERNEL_ERROR: return "kernel error";
    case NSX_E_INTERNAL: return "internal error";
    }
    return "unknown error";
}
