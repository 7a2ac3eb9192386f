/*
 * A candidate file's outputs for a vector (candidate.h), moved here from
 * cli/cmd_check.c so that the parser fuzzer runs the command's own code.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "oracle/candidate.h"

/* The float tensor name of st with exactly the given shape, decoded to
   binary64 into *out (malloc'd), or *out = NULL when absent and optional. */
static int get_float(const char *label, const nsx_st *st, const char *name, int rank, const int64_t *shape,
                     int required, double **out, nsx_err *err)
{
    *out = NULL;
    const nsx_tensor *t = nsx_st_get(st, name);
    if (!t)
        return required ? nsx_err_set(err, NSX_E_INPUT, "%s: no tensor %s", label, name) : 0;
    if (!nsx_dtype_is_float(t->dtype))
        return nsx_err_set(err, NSX_E_INPUT, "%s: tensor %s: dtype %s, not a float dtype", label, name,
                           nsx_dtype_name(t->dtype));
    if (t->rank != rank || memcmp(t->shape, shape, (size_t)rank * sizeof *shape) != 0) {
        char have[96], want[96];
        nsx_shape_str(have, sizeof have, t->rank, t->shape);
        nsx_shape_str(want, sizeof want, rank, shape);
        return nsx_err_set(err, NSX_E_INPUT, "%s: tensor %s: shape %s but the vector has %s", label, name, have,
                           want);
    }
    if (!(*out = malloc((t->count ? t->count : 1) * sizeof **out)))
        return nsx_err_set(err, NSX_E_NOMEM, "out of memory");
    nsx_tensor_get_f64(t, *out);
    return 0;
}

static int get_sel(const char *label, const nsx_st *st, const int64_t *shape, int32_t **out, nsx_err *err)
{
    *out = NULL;
    const nsx_tensor *t = nsx_st_get(st, "sel");
    if (!t)
        return 0;
    if (t->dtype != NSX_DTYPE_I32)
        return nsx_err_set(err, NSX_E_INPUT, "%s: tensor sel: dtype %s, not I32", label, nsx_dtype_name(t->dtype));
    if (t->rank != 3 || memcmp(t->shape, shape, 3 * sizeof *shape) != 0) {
        char have[96], want[96];
        nsx_shape_str(have, sizeof have, t->rank, t->shape);
        nsx_shape_str(want, sizeof want, 3, shape);
        return nsx_err_set(err, NSX_E_INPUT, "%s: tensor sel: shape %s but the vector has %s", label, have, want);
    }
    if (!(*out = malloc((t->count ? t->count : 1) * sizeof **out)))
        return nsx_err_set(err, NSX_E_NOMEM, "out of memory");
    nsx_tensor_get_i32(t, *out);
    return 0;
}

/* The model: forced, else the declared one, else the default. */
static int model_of(const nsx_st *cst, const char *clabel, const nsx_model *forced, nsx_model *model, nsx_err *err)
{
    const char *declared = nsx_st_meta(cst, NSX_MODEL_KEY);
    int rc;
    if (forced) {
        *model = *forced;
    } else if (!declared) {
        nsx_model_default(model);
    } else if ((rc = nsx_model_parse(declared, model, err))) {
        char prefix[300];
        snprintf(prefix, sizeof prefix, "%s: metadata %s", clabel, NSX_MODEL_KEY);
        nsx_err_prefix(err, prefix);
        return rc;
    }
    return 0;
}

int nsx_candidate_from_st(const nsx_st *cst, const char *label, const nsx_problem *p,
                          const nsx_model *forced, nsx_candidate *cand, nsx_model *model,
                          nsx_err *err)
{
    assert(cst && label && p && cand && model && err);
    char clabel[256];
    nsx_printable(clabel, sizeof clabel, label);
    *cand = (nsx_candidate){0};
    int rc = model_of(cst, clabel, forced, model, err);
    if (rc)
        return rc;
    const int64_t oshape[4] = {p->B, p->L, p->H, p->dv}, lshape[3] = {p->B, p->H, p->L};
    const int64_t sshape[3] = {p->B, p->L, p->sel.k};
    double *o = NULL, *lse = NULL;
    int32_t *sel = NULL;
    if ((rc = get_float(clabel, cst, "o", 4, oshape, 1, &o, err)) ||
        (rc = get_float(clabel, cst, "lse", 3, lshape, 0, &lse, err)) ||
        ((p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES) &&
         (rc = get_sel(clabel, cst, sshape, &sel, err)))) {
        free(o);
        free(lse);
        free(sel);
        return rc;
    }
    *cand = (nsx_candidate){.o = o, .lse = lse, .sel = sel};
    /* the gradients (SPEC E7), each optional, shaped like their inputs */
    const int64_t qshape[4] = {p->B, p->L, p->H, p->d}, kshape[4] = {p->B, p->L, p->Hkv, p->d};
    const int64_t vshape[4] = {p->B, p->L, p->Hkv, p->dv};
    double *g = NULL;
    rc = get_float(clabel, cst, "dq", 4, qshape, 0, &g, err);
    cand->dq = g;
    for (int m = 0; m < p->n && !rc; m++) {
        char name[8];
        snprintf(name, sizeof name, "dk%d", m + 1);
        rc = get_float(clabel, cst, name, 4, kshape, 0, &g, err);
        cand->dk[m] = g;
        snprintf(name, sizeof name, "dv%d", m + 1);
        if (!rc)
            rc = get_float(clabel, cst, name, 4, vshape, 0, &g, err);
        cand->dv[m] = rc ? NULL : g;
    }
    if (rc)
        nsx_candidate_free(cand);
    return rc;
}

void nsx_candidate_free(nsx_candidate *cand)
{
    assert(cand);
    /* the arrays are nsx_candidate_from_st's; const is the judge's promise */
    free((void *)cand->o);
    free((void *)cand->lse);
    free((void *)cand->sel);
    free((void *)cand->dq);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free((void *)cand->dk[m]);
        free((void *)cand->dv[m]);
    }
    *cand = (nsx_candidate){0};
}

int nsx_candidate_is_indexer(const nsx_st *cst)
{
    assert(cst);
    return !nsx_st_get(cst, "o") && (nsx_st_get(cst, "sel_scores") || nsx_st_get(cst, "sel"));
}

int nsx_idx_candidate_from_st(const nsx_st *cst, const char *label, const nsx_problem *p, const nsx_model *forced,
                              nsx_idx_candidate *cand, nsx_model *model, nsx_err *err)
{
    assert(cst && label && p && cand && model && err);
    char clabel[256];
    nsx_printable(clabel, sizeof clabel, label);
    *cand = (nsx_idx_candidate){0};
    int rc = model_of(cst, clabel, forced, model, err);
    if (rc)
        return rc;
    const int64_t shape[3] = {p->B, p->L, p->L}, sshape[3] = {p->B, p->L, p->sel.k};
    double *s = NULL;
    int32_t *sel = NULL;
    if ((rc = get_float(clabel, cst, "sel_scores", 3, shape, 0, &s, err)) ||
        (rc = get_sel(clabel, cst, sshape, &sel, err))) {
        free(s);
        free(sel);
        return rc;
    }
    *cand = (nsx_idx_candidate){s, sel};
    return 0;
}

void nsx_idx_candidate_free(nsx_idx_candidate *cand)
{
    assert(cand);
    free((void *)cand->scores);
    free((void *)cand->sel);
    *cand = (nsx_idx_candidate){0};
}
