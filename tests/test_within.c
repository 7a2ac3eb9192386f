/*
 * The judges' one "within the bound" predicate (oracle/within.h,
 * nsx_within; docs/ORACLE.md section 4) over the matrix of candidates,
 * expected values and bounds: NaN, the infinities, signed zeros,
 * subnormals, the largest finite values, exact ties with the bound.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "oracle/within.h"

static const double SUB = 0x1p-1074;   /* the smallest subnormal */
static const double SUBMAX = 0x1.ffffffffffffep-1023;

/* A NaN candidate is outside whatever the expected value and the bound. */
START_TEST(nan_candidate_fails)
{
    const double xs[] = {0.0, -0.0, 1.0, -3.5, SUB, INFINITY, -INFINITY, DBL_MAX};
    const double bs[] = {0.0, -0.0, SUB, 1.0, DBL_MAX, INFINITY, NAN};
    for (size_t x = 0; x < sizeof xs / sizeof xs[0]; x++)
        for (size_t b = 0; b < sizeof bs / sizeof bs[0]; b++) {
            ck_assert(!nsx_within(NAN, xs[x], bs[b]));
            ck_assert(!nsx_within(-NAN, xs[x], bs[b]));
        }
}
END_TEST

/* A NaN bound passes nothing: not the exact value, not a finite one, not 0. */
START_TEST(nan_bound_fails)
{
    const double cs[] = {0.0, -0.0, 1.0, SUB, DBL_MAX, INFINITY, -INFINITY};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        ck_assert(!nsx_within(cs[c], cs[c], NAN));
        ck_assert(!nsx_within(cs[c], 1.0, NAN));
        ck_assert(!nsx_within(cs[c], 0.0, -NAN));
    }
}
END_TEST

/* An infinite bound judges finiteness only: every finite candidate passes,
   an infinity passes only where it is the expected value itself. */
START_TEST(infinite_bound_judges_finiteness)
{
    const double finite[] = {0.0, -0.0, SUB, -SUB, 1.0, -1e300, DBL_MAX, -DBL_MAX};
    for (size_t c = 0; c < sizeof finite / sizeof finite[0]; c++) {
        ck_assert(nsx_within(finite[c], 1.0, INFINITY));
        ck_assert(nsx_within(finite[c], -DBL_MAX, INFINITY));
    }
    ck_assert(!nsx_within(INFINITY, 1.0, INFINITY));
    ck_assert(!nsx_within(-INFINITY, 1.0, INFINITY));
    ck_assert(!nsx_within(INFINITY, DBL_MAX, INFINITY));
    ck_assert(!nsx_within(-INFINITY, INFINITY, INFINITY));
    ck_assert(nsx_within(INFINITY, INFINITY, INFINITY));   /* matching */
    ck_assert(nsx_within(-INFINITY, -INFINITY, INFINITY));
}
END_TEST

/* An infinite candidate is outside every finite bound unless it matches. */
START_TEST(infinite_candidate_needs_a_match)
{
    const double bs[] = {0.0, 1.0, DBL_MAX};
    for (size_t b = 0; b < sizeof bs / sizeof bs[0]; b++) {
        ck_assert(!nsx_within(INFINITY, DBL_MAX, bs[b]));
        ck_assert(!nsx_within(-INFINITY, 0.0, bs[b]));
        ck_assert(nsx_within(INFINITY, INFINITY, bs[b]));
    }
}
END_TEST

/* A bound of zero (either sign) demands the exact value; +0 and -0 are the
   same value (an empty slice's O = 0, an unreached gradient). */
START_TEST(zero_bound_and_signed_zeros)
{
    ck_assert(nsx_within(0.0, 0.0, 0.0));
    ck_assert(nsx_within(-0.0, 0.0, 0.0));
    ck_assert(nsx_within(0.0, -0.0, -0.0));
    ck_assert(nsx_within(1.5, 1.5, 0.0));
    ck_assert(!nsx_within(SUB, 0.0, 0.0));
    ck_assert(!nsx_within(-SUB, -0.0, 0.0));
    ck_assert(!nsx_within(nextafter(1.0, 2.0), 1.0, 0.0));
    /* a negative bound passes the exact value only */
    ck_assert(nsx_within(2.0, 2.0, -1.0));
    ck_assert(!nsx_within(2.0, 2.5, -1.0));
    ck_assert(!nsx_within(2.0, 2.5, -INFINITY));
}
END_TEST

/* Subnormals are neither flushed nor rounded: the difference is exact, and
   an error equal to the bound is within it, one spacing more is not. */
START_TEST(subnormals_and_ties_with_the_bound)
{
    ck_assert(nsx_within(SUB, 0.0, SUB));
    ck_assert(nsx_within(-SUB, 0.0, SUB));
    ck_assert(!nsx_within(2 * SUB, 0.0, SUB));
    ck_assert(nsx_within(3 * SUB, SUB, 2 * SUB));
    ck_assert(!nsx_within(4 * SUB, SUB, 2 * SUB));
    ck_assert(nsx_within(SUBMAX, 0.0, SUBMAX));
    ck_assert(!nsx_within(0x1p-1022, 0.0, SUBMAX));
    ck_assert(nsx_within(1.25, 1.0, 0.25));
    ck_assert(!nsx_within(1.25, 1.0, nextafter(0.25, 0.0)));
    ck_assert(nsx_within(-1.0, 1.0, 2.0));
    ck_assert(!nsx_within(-1.0, 1.0, nextafter(2.0, 0.0)));
    /* |c - x| overflowing to infinity is outside a finite bound, within an infinite one */
    ck_assert(!nsx_within(DBL_MAX, -DBL_MAX, DBL_MAX));
    ck_assert(nsx_within(DBL_MAX, -DBL_MAX, INFINITY));
}
END_TEST

static Suite *within_suite(void)
{
    Suite *s = suite_create("within");
    TCase *tc = tcase_create("matrix");
    tcase_add_test(tc, nan_candidate_fails);
    tcase_add_test(tc, nan_bound_fails);
    tcase_add_test(tc, infinite_bound_judges_finiteness);
    tcase_add_test(tc, infinite_candidate_needs_a_match);
    tcase_add_test(tc, zero_bound_and_signed_zeros);
    tcase_add_test(tc, subnormals_and_ties_with_the_bound);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(within_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
