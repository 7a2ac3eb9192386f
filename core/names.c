/* The enums' names, one table each, and the list grammar (names.h). */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/names.h"
#include "nsimplex/pairs.h"
#include "nsimplex/problem.h"

#define NAME_OF(table, v) ((v) >= 0 && (size_t)(v) < sizeof table / sizeof table[0] ? table[v] : NULL)

const char *const nsx_format_names[] = {
    [NSX_FORMAT_F64] = "f64", [NSX_FORMAT_F32] = "f32", [NSX_FORMAT_F16] = "f16", [NSX_FORMAT_BF16] = "bf16"};
const char *const nsx_reduce_names[] = {
    [NSX_REDUCE_PRODUCT] = "product", [NSX_REDUCE_SUM] = "sum", [NSX_REDUCE_MEAN] = "mean"};
const char *const nsx_source_names[] = {
    [NSX_SEL_INDICES] = "indices", [NSX_SEL_INDEXER] = "indexer", [NSX_SEL_SCORES] = "scores"};
const char *const nsx_act_names[] = {
    [NSX_ACT_RELU] = "relu", [NSX_ACT_SOFTMAX] = "softmax", [NSX_ACT_IDENTITY] = "identity"};
static const char *const kind_names[] = {[NSX_PAIR_LEAK] = "leak", [NSX_PAIR_PROBE] = "probe",
                                         [NSX_PAIR_GRADLEAK] = "gradleak"};
const char *const nsx_future_names[] = {
    [NSX_FUTURE_RANDOM] = "random", [NSX_FUTURE_HUGE] = "huge", [NSX_FUTURE_NAN] = "nan",
    [NSX_FUTURE_INF] = "inf"};

const char *nsx_format_name(int v) { return NAME_OF(nsx_format_names, v); }
const char *nsx_reduce_name(int v) { return NAME_OF(nsx_reduce_names, v); }
const char *nsx_source_name(int v) { return NAME_OF(nsx_source_names, v); }
const char *nsx_act_name(int v) { return NAME_OF(nsx_act_names, v); }
const char *nsx_pair_kind_name(int v) { return NAME_OF(kind_names, v); }
const char *nsx_future_name(int v) { return NAME_OF(nsx_future_names, v); }

int nsx_name_lookup(const char *(*name)(int), int first, const char *s)
{
    assert(name != NULL && first >= 0 && s != NULL);
    for (int v = first; name(v); v++)
        if (strcmp(s, name(v)) == 0)
            return v;
    return -1;
}

int nsx_format_from_name(const char *s)
{
    return nsx_name_lookup(nsx_format_name, 0, s);
}

char *nsx_name_list(const char *(*name)(int), int first, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int v = first; name(v) && strlen(buf) + 1 < len; v++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", v == first ? "" : name(v + 1) ? ", " : " or ", name(v));
    }
    return buf;
}

int nsx_int_list_parse(const char *text, long lo, long hi, int *out, int cap)
{
    assert(text != NULL && out != NULL && cap >= 1 && lo <= hi && lo >= INT_MIN && hi <= INT_MAX);
    int count = 0;
    const char *s = text;
    for (;;) {
        const char *digits = *s == '-' && lo < 0 ? s + 1 : s;
        if (!isdigit((unsigned char)*digits) || count == cap)
            return -1;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || v < lo || v > hi)
            return -1;
        out[count++] = (int)v;
        if (*end == '\0')
            return count;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
}

int nsx_windows_parse(const char *text, int *w)
{
    return nsx_int_list_parse(text, 0, NSX_MAX_WINDOW, w, NSX_MAX_ORDER);
}
