/*
 * Fuzz target: a hostile VECTOR file, the other input of `nsimplex check`
 * (cli/cmd_check.c).  The bytes are a golden vector: nsx_st_parse, then
 * nsx_case_from_st (the case validated against its metadata), then, for a
 * golden vector small enough to judge quickly, nsx_check of the vector's own
 * expected outputs against it under the default model, and both reports.
 *
 * Whatever the file holds (huge windows, odd pairs, selections and scores
 * that disagree, NaN where the metadata says a row is judged), the oracle
 * must end cleanly: a verdict, NSX_E_INPUT with one line saying why the
 * vector is unusable, or NSX_E_INTERNAL only for the reference's
 * precision cap.  The vector's own outputs have error 0, so no o or lse
 * element may fail, unless the oracle recomputed a row because the
 * vector's selection is not a valid top-k of its own scores (then the
 * vector's values are judged against the reference's); a selection or a
 * pair the vector contradicts itself on is a failed row, accepted.
 *
 *   libFuzzer: build-fuzz/vector_fuzzer fuzz/corpus/vector
 *   replay:    build-san/fuzz/vector_replay fuzz/corpus/vector
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/targets/common.h"
#include "oracle/check.h"
#include "oracle/model.h"

#define MAX_INPUT (1u << 20)
/* Rows times tuples times widths the oracle is asked to judge per input:
   about a millisecond; larger vectors are only parsed and validated. */
#define MAX_WORK 4e5
#define LABEL "vector.safetensors"

/* B H L L^n (d + dv): the work of judging every row, in double (no
   overflow whatever the sizes). */
static double work(const nsx_problem *p)
{
    double w = (double)p->B * p->H * p->L * (p->d + p->dv);
    for (int m = 0; m < p->n; m++)
        w *= p->L;
    return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    nsx_st st;
    nsx_err err = {0};
    int rc = nsx_st_parse(data, size, LABEL, &st, &err);
    fz_check_outcome(rc, &err, LABEL);
    if (rc)
        return 0;
    nsx_case vec;
    rc = nsx_case_from_st(&st, LABEL, &vec, &err);
    fz_check_outcome(rc, &err, LABEL);
    if (rc)
        return 0;
    if (!vec.expected.o || !vec.expected.lse || work(&vec.p) > MAX_WORK) {
        nsx_case_free(&vec);
        return 0;
    }

    /* the vector's own outputs as the candidate */
    nsx_candidate cand = {.o = vec.expected.o, .lse = vec.expected.lse, .sel = vec.expected.sel};
    nsx_model model;
    nsx_model_default(&model);
    nsx_check_report rep;
    rc = nsx_check(&vec.p, &vec.info, &vec.in, &vec.expected, &cand, &model, &rep, &err);
    fz_check_outcome(rc, &err, "");
    FZ_CHECK(rc != NSX_E_INTERNAL && rc != NSX_E_NOMEM && rc != NSX_E_IO, "%s error: %s",
             nsx_err_kind_name(rc), err.msg);
    if (rc == 0) {
        FZ_CHECK(rep.pass == (rep.failures == 0), "pass %d with %zu failures", rep.pass, rep.failures);
        /* error 0 everywhere: only the selection or the pairs can fail,
           unless a row's golden set is not a valid top-k (an index that is
           no candidate key, say): the oracle then judges that row against
           the reference recomputed with the candidate's (here: the same)
           selection, which the vector's values need not match */
        FZ_CHECK(rep.sel_differ > 0 || (rep.o_failed == 0 && rep.lse_failed == 0),
                 "the vector's own outputs fail: o %zu, lse %zu: %s", rep.o_failed, rep.lse_failed,
                 rep.nnotes ? rep.notes[0] : "");
        fz_check_reports(&rep, &vec.info, LABEL);
    }
    nsx_case_free(&vec);
    return 0;
}
