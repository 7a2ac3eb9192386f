/*
 * "Within the bound": the one predicate every judge uses to decide whether a
 * candidate's element is close enough to the expected one (docs/ORACLE.md
 * section 4): the forward's o and lse (oracle/check.c), the gradients
 * (oracle/check.c with oracle/bound_bwd.c's bounds), an indexer's scores
 * (oracle/idxcheck.c), the fuzzer's backward probes (fuzz/bwd.c).
 *
 * For a candidate c, an expected value x (not NaN: rows whose expected
 * values are NaN are not judged) and a bound b:
 *
 *   c NaN             outside, whatever the bound;
 *   b NaN             outside: a bound that could not be computed passes
 *                     nothing (never everything);
 *   c == x            within (+0 == -0; an infinity matches the same one);
 *   b = +inf          within iff c is finite: "unbounded", only finiteness
 *                     is judged (ORACLE.md 8.6);
 *   otherwise         within iff |c - x| <= b, computed in binary64 (an
 *                     infinite c, or a negative b with c != x, is outside;
 *                     subnormal differences are exact).
 */
#ifndef NSX_ORACLE_WITHIN_H
#define NSX_ORACLE_WITHIN_H

#include <math.h>

static inline int nsx_within(double c, double x, double b)
{
    if (isnan(c) || isnan(b))
        return 0;
    if (c == x)
        return 1;
    if (b == INFINITY)
        return isfinite(c);
    return fabs(c - x) <= b;
}

#endif
