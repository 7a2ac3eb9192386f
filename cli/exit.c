/* Error kinds to exit codes (cli/exit.h): the only such mapping. */
#include "cli/exit.h"
#include "nsimplex/error.h"

int cli_exit_code(int kind)
{
    switch (kind) {
    case NSX_E_NONE:
        return NSX_EXIT_OK;
    case NSX_E_INPUT:
    case NSX_E_UNSUPPORTED:
    case NSX_E_NOT_APPLICABLE:
    case NSX_E_TOO_LARGE:
    case NSX_E_KERNEL_REFUSED: /* the kernel does not take this problem */
        return NSX_EXIT_BAD;
    case NSX_E_KERNEL_ERROR:   /* the kernel under test failed */
        return NSX_EXIT_FAIL;
    case NSX_E_NOMEM:
    case NSX_E_PRECISION_CAP:
    case NSX_E_IO:
    case NSX_E_INTERNAL:
    default:
        return NSX_EXIT_INTERNAL;
    }
}
