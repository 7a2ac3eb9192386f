/*
 * Saving a failure (fuzz/fuzz.h): the shrunk case as a vector with
 * expected values from the MPFR reference, the kernel's outputs as a
 * candidate next to it, and a text file that says what failed, how to
 * reproduce it and how to replay it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "io/atomic.h"
#include "io/casefile.h"
#include "io/fpformat.h"
#include "io/safetensors.h"

/* The candidate file: o and lse (float32 outputs are exact in F32), and the
   model `check` judges it by. */
static int write_candidate(const char *path, const nsx_problem *p, const nsx_fz_verdict *v, const nsx_kernel *k,
                           const nsx_model *m, nsx_err *err)
{
    nsx_st st = {0};
    char model[160];
    const int64_t oshape[4] = {p->B, p->L, p->H, p->dv}, lshape[3] = {p->B, p->H, p->L};
    int fits = 1;
    for (size_t t = 0; t < nsx_o_size(p) && fits; t++)
        fits = nsx_representable(v->o[t], NSX_FORMAT_F32);
    for (size_t t = 0; v->has_lse && t < nsx_lse_size(p) && fits; t++)
        fits = nsx_representable(v->lse[t], NSX_FORMAT_F32);
    const int dt = fits ? NSX_DTYPE_F32 : NSX_DTYPE_F64;
    int rc = nsx_st_add_f64(&st, "o", dt, 4, oshape, v->o, err);
    if (!rc && v->has_lse)
        rc = nsx_st_add_f64(&st, "lse", dt, 3, lshape, v->lse, err);
    /* a backward case's gradients (float32: exact in F32) */
    if (!rc && v->bwd && v->dq) {
        const int64_t qshape[4] = {p->B, p->L, p->H, p->d}, kshape[4] = {p->B, p->L, p->Hkv, p->d},
                      vshape[4] = {p->B, p->L, p->Hkv, p->dv};
        char name[16]; /* "dk" or "dv" and any int: 13 bytes */
        rc = nsx_st_add_f64(&st, "dq", NSX_DTYPE_F32, 4, qshape, v->dq, err);
        for (int m = 0; m < p->n && !rc; m++) {
            snprintf(name, sizeof name, "dk%d", m + 1);
            rc = nsx_st_add_f64(&st, name, NSX_DTYPE_F32, 4, kshape, v->dk[m], err);
            snprintf(name, sizeof name, "dv%d", m + 1);
            if (!rc)
                rc = nsx_st_add_f64(&st, name, NSX_DTYPE_F32, 4, vshape, v->dv[m], err);
        }
    }
    if (!rc)
        rc = nsx_st_set_meta(&st, "nsimplex.model", nsx_model_format(m, model, sizeof model), err);
    if (!rc && k->info->name)
        rc = nsx_st_set_meta(&st, "nsimplex.kernel", k->info->name, err);
    if (!rc)
        rc = nsx_st_write(path, &st, err);
    nsx_st_free(&st);
    return rc;
}

int nsx_fz_save(const char *dir, const char *stem, const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c,
                const char *about, nsx_fz_verdict *v, int *replays, nsx_err *err)
{
    char vec[1024], cand[1024], txt[1024], model[160];
    snprintf(vec, sizeof vec, "%s/%s.safetensors", dir, stem);
    snprintf(cand, sizeof cand, "%s/%s.candidate.safetensors", dir, stem);
    snprintf(txt, sizeof txt, "%s/%s.txt", dir, stem);
    *replays = 0;

    /* judged again against the exact values: the vector's expected values */
    c->exact_cap = 1;
    int rc = nsx_fz_judge(k, m, c, NSX_FZ_REF_MPFR, v, err);
    c->exact_cap = 0;
    if (rc)
        return rc;
    int saved_vec = 0, saved_cand = 0;
    char why[600] = "";
    if (v->status != NSX_FZ_SKIP) {
        char desc[700];
        snprintf(desc, sizeof desc, "nsimplex fuzz failure (%s): %.600s", nsx_fz_kind_name(v->kinds), about);
        for (char *x = desc; *x; x++)
            if (*x == '\n')
                *x = ' ';
        nsx_case_info info = nsx_build_info(&c->b, stem, "fuzz", desc);
        nsx_outputs out = c->b.out;
        if ((rc = nsx_case_write(vec, &c->b.p, &info, &c->b.in, &out, err)))
            return rc;
        saved_vec = 1;
        if (v->o) {
            if ((rc = write_candidate(cand, &c->b.p, v, k, m, err)))
                return rc;
            saved_cand = 1;
        }
        *replays = saved_cand && v->status == NSX_FZ_FAIL && (v->kinds & (NSX_FZ_PAIR | NSX_FZ_EMPTY | NSX_FZ_BOUND | NSX_FZ_GRAD));
    } else {
        snprintf(why, sizeof why, "%s", v->note);
    }

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    fprintf(f, "%s\n", about);
    fprintf(f, "model: %s\n", nsx_model_format(m, model, sizeof model));
    if (saved_vec) {
        fprintf(f, "vector: %s\n", vec);
        if (saved_cand)
            fprintf(f, "candidate: %s (the kernel's outputs)\n", cand);
        if (v->status == NSX_FZ_FAIL)
            fprintf(f, "against the MPFR reference: FAIL (%s)\n", nsx_fz_kind_name(v->kinds));
        else
            fprintf(f, "against the MPFR reference: pass\n");
        if (v->status == NSX_FZ_FAIL)
            fprintf(f, "  %s\n", v->note);
        if (*replays)
            fprintf(f, "replay: nsimplex check %s %s   (exit 1: the failure)\n", vec, cand);
        else if (v->kinds & (NSX_FZ_GRAD | NSX_FZ_GRAD_PROBE))
            fprintf(f, "the failure is in the backward pass: the vector holds do and the expected gradients\n"
                       "(flag Backward), the candidate the kernel's dq, dk1.., dv1..; reproduce with the\n"
                       "command above\n");
        else if (v->kinds & NSX_FZ_HEADS)
            fprintf(f, "the failure is the head permutation, which `check` does not see (it judges one run);\n"
                       "the candidate is the unpermuted run; reproduce with the command above\n");
        else if (v->kinds & (NSX_FZ_UNSUPPORTED | NSX_FZ_ERROR))
            fprintf(f, "the kernel did not run (no candidate): run it on the vector's inputs to see\n");
        else if (v->kinds & (NSX_FZ_SIGNAL | NSX_FZ_TIMEOUT | NSX_FZ_EXIT | NSX_FZ_OVERFLOW))
            fprintf(f, "the kernel's call faulted in its child process (no candidate): run it on the vector's\n"
                       "inputs to see, or reproduce with the command above\n");
    } else {
        fprintf(f, "not saved as a vector: the MPFR reference cannot judge the shrunk case: %s\n", why);
    }
    if (fclose(f) || !text) {
        free(text);
        return nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    }
    nsx_atomic a;
    if (!(rc = nsx_atomic_open(&a, txt, err)) && !(rc = nsx_atomic_write(&a, text, len, err)))
        rc = nsx_atomic_commit(&a, err);
    free(text);
    return rc;
}
