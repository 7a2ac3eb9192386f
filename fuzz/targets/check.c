/*
 * Fuzz target: a hostile candidate file judged as `nsimplex check` judges
 * it (cli/cmd_check.c): nsx_st_parse, then nsx_candidate_from_st (the
 * outputs o, lse, sel against the vector's shapes, and the precision model
 * the candidate's metadata declares), then nsx_check and both reports.
 *
 * The vectors are golden files of vectors/default/ embedded at build time
 * (embed.sh, the list in check.vectors): n2_ties_scores (given scores
 * tied at the k-th place), n2_sel_relu (a relu indexer's computed
 * selection, a leak pair, mask probes) and n4_f32_leak (n = 4, a NaN leak
 * pair).  A candidate is judged against the vector whose o shape its own o
 * has ([1,14,1,8], [6,16,1,8], [2,7,1,4]), else against the first, so each
 * corpus file is also a candidate the command line judges against that
 * vector.
 *
 * Every malformed candidate must end in a clean error (one line naming the
 * candidate); a well-formed one must be judged (pass or fail, or an error
 * when its declared model does not apply to the vector), never an internal
 * error; the JSON report must be valid JSON; and a candidate whose outputs
 * are the vector's own expected values, bit for bit, under the default
 * model, must pass.
 *
 *   libFuzzer: build-fuzz/check_fuzzer fuzz/corpus/check
 *   replay:    build-san/fuzz/check_replay fuzz/corpus/check
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/targets/common.h"
#include "oracle/candidate.h"
#include "oracle/check.h"

#include "check_vectors.h"

#define MAX_INPUT (1u << 20)
#define NVEC (sizeof fz_vectors / sizeof fz_vectors[0])
#define LABEL "candidate.safetensors"

static nsx_case vecs[NVEC];
static int loaded;

static void unload(void)
{
    for (size_t v = 0; v < NVEC; v++)
        nsx_case_free(&vecs[v]);
}

static void load(void)
{
    if (loaded)
        return;
    for (size_t v = 0; v < NVEC; v++) {
        nsx_st st;
        nsx_err err = {0};
        int rc = nsx_st_parse(fz_vectors[v].bytes, fz_vectors[v].len, fz_vectors[v].name, &st, &err);
        if (!rc)
            rc = nsx_case_from_st(&st, fz_vectors[v].name, &vecs[v], &err);
        FZ_CHECK(rc == 0, "embedded vector: %s", err.msg);
        FZ_CHECK(vecs[v].expected.o && vecs[v].expected.lse, "%s: not a golden vector", fz_vectors[v].name);
    }
    loaded = 1;
    atexit(unload);
}

/* The vector whose o shape the candidate's o tensor has, else the first. */
static const nsx_case *pick(const nsx_st *cst)
{
    const nsx_tensor *o = nsx_st_get(cst, "o");
    for (size_t v = 0; o && o->rank == 4 && v < NVEC; v++) {
        const nsx_problem *p = &vecs[v].p;
        if (o->shape[0] == p->B && o->shape[1] == p->L && o->shape[2] == p->H && o->shape[3] == p->dv)
            return &vecs[v];
    }
    return &vecs[0];
}

/* The candidate's outputs are the vector's expected values, bit for bit. */
static int is_golden(const nsx_case *vec, const nsx_candidate *cand)
{
    const nsx_problem *p = &vec->p;
    int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    return cand->lse && memcmp(cand->o, vec->expected.o, nsx_o_size(p) * sizeof *cand->o) == 0 &&
           memcmp(cand->lse, vec->expected.lse, nsx_lse_size(p) * sizeof *cand->lse) == 0 &&
           (!computed || (cand->sel && vec->expected.sel &&
                          memcmp(cand->sel, vec->expected.sel, nsx_sel_size(p) * sizeof *cand->sel) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    load();
    nsx_st cst;
    nsx_err err = {0};
    int rc = nsx_st_parse(data, size, LABEL, &cst, &err);
    fz_check_outcome(rc, &err, LABEL);
    if (rc)
        return 0;

    const nsx_case *vec = pick(&cst);
    nsx_candidate cand;
    nsx_model model;
    rc = nsx_candidate_from_st(&cst, LABEL, &vec->p, NULL, &cand, &model, &err);
    fz_check_outcome(rc, &err, LABEL);
    FZ_CHECK(rc != NSX_E_NOMEM, "out of memory on a small candidate: %s", err.msg);
    if (rc) {
        FZ_CHECK(cand.o == NULL && cand.lse == NULL && cand.sel == NULL, "a failed load left arrays");
        nsx_st_free(&cst);
        return 0;
    }

    nsx_check_report rep;
    rc = nsx_check(&vec->p, &vec->info, &vec->in, &vec->expected, &cand, &model, &rep, &err);
    /* not applicable under the declared model: a clean error, as the
       command line gives it; anything else is the oracle's failure */
    FZ_CHECK(rc == 0 || rc == NSX_E_NOT_APPLICABLE, "nsx_check: %s: %s", nsx_err_kind_name(rc), err.msg);
    if (rc == NSX_E_NOT_APPLICABLE) {
        /* the golden vector is valid: the only refusal left is a declared
           model it does not apply to (oracle/bound.c) */
        fz_check_outcome(rc, &err, "not applicable under model ");
    } else {
        FZ_CHECK(rep.pass == (rep.failures == 0), "pass %d with %zu failures", rep.pass, rep.failures);
        FZ_CHECK(rep.nnotes >= 0 && rep.nnotes <= NSX_CHECK_NOTES, "nnotes %d", rep.nnotes);
        if (!nsx_st_meta(&cst, NSX_MODEL_KEY) && is_golden(vec, &cand))
            FZ_CHECK(rep.pass, "the vector's own outputs fail: %s", rep.nnotes ? rep.notes[0] : "");
        fz_check_reports(&rep, &vec->info, LABEL);
    }
    nsx_candidate_free(&cand);
    nsx_st_free(&cst);
    return 0;
}
