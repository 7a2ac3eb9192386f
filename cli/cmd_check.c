/*
 * nsimplex check VECTOR CANDIDATE [--model M] [--json]: judges a kernel's
 * outputs against a golden vector (oracle/check.h, docs/ORACLE.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "io/casefile.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "oracle/check.h"
#include "oracle/model.h"

/* The candidate's metadata key that declares its precision model. */
#define MODEL_KEY "nsimplex.model"

static void check_usage(FILE *f)
{
    fprintf(f,
            "usage: nsimplex check VECTOR CANDIDATE [--model M] [--json]\n\n"
            "Judges a kernel's outputs against a golden vector (docs/ORACLE.md). CANDIDATE is a\n"
            "safetensors file with o [B,L,H,dv] and optionally lse [B,H,L] (any float dtype) and,\n"
            "where the vector computes its selection, sel [B,L,k] (I32). It checks every element\n"
            "against its derived error bound under the precision model, empty-slice rows, NaN and\n"
            "infinities, the selection as a set of valid top-k keys (with tie tolerance), and leak\n"
            "pairs and mask probes bit for bit; the report names the worst element.\n\n"
            "  --model M   the precision model; default: the candidate's metadata key\n"
            "              \"" MODEL_KEY "\", else bf16. M is a preset (bf16, f16, f32, f64,\n"
            "              einsum-bf16, einsum-f16), optionally followed by KEY=VALUE items, or\n"
            "              KEY=VALUE items alone (starting from bf16):\n"
            "                in, op, acc, out, lseout   f64 f32 f16 bf16\n"
            "                int, w                     f64 f32 f16 bf16 none\n"
            "                lse                        -inf +inf any (empty-slice LSE)\n"
            "              e.g. --model in=bf16,acc=f32,w=bf16,out=bf16,lse=-inf (the default)\n"
            "  --json      the report as one JSON object on one line (for CI)\n\n"
            "exit codes: 0 pass, 1 a check failed, 2 unusable input (unreadable or malformed\n"
            "file, wrong shapes or dtypes, unknown model, vector not applicable under the\n"
            "model), 3 internal error\n");
}

/* The float tensor name of st with exactly the given shape, decoded to
   binary64 into *out (malloc'd), or *out = NULL when absent and optional. */
static int get_float(const char *label, const nsx_st *st, const char *name, int rank, const int64_t *shape,
                     int required, double **out, nsx_err *err)
{
    *out = NULL;
    const nsx_tensor *t = nsx_st_get(st, name);
    if (!t)
        return required ? nsx_err_set(err, NSX_EXIT_BAD, "%s: no tensor %s", label, name) : 0;
    if (!nsx_dtype_is_float(t->dtype))
        return nsx_err_set(err, NSX_EXIT_BAD, "%s: tensor %s: dtype %s, not a float dtype", label, name,
                           nsx_dtype_name(t->dtype));
    if (t->rank != rank || memcmp(t->shape, shape, (size_t)rank * sizeof *shape) != 0) {
        char have[96], want[96];
        nsx_shape_str(have, sizeof have, t->rank, t->shape);
        nsx_shape_str(want, sizeof want, rank, shape);
        return nsx_err_set(err, NSX_EXIT_BAD, "%s: tensor %s: shape %s but the vector has %s", label, name, have,
                           want);
    }
    if (!(*out = malloc((t->count ? t->count : 1) * sizeof **out)))
        return nsx_err_set(err, NSX_EXIT_INTERNAL, "out of memory");
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
        return nsx_err_set(err, NSX_EXIT_BAD, "%s: tensor sel: dtype %s, not I32", label, nsx_dtype_name(t->dtype));
    if (t->rank != 3 || memcmp(t->shape, shape, 3 * sizeof *shape) != 0) {
        char have[96], want[96];
        nsx_shape_str(have, sizeof have, t->rank, t->shape);
        nsx_shape_str(want, sizeof want, 3, shape);
        return nsx_err_set(err, NSX_EXIT_BAD, "%s: tensor sel: shape %s but the vector has %s", label, have, want);
    }
    if (!(*out = malloc((t->count ? t->count : 1) * sizeof **out)))
        return nsx_err_set(err, NSX_EXIT_INTERNAL, "out of memory");
    nsx_tensor_get_i32(t, *out);
    return 0;
}

int cmd_check(int argc, char **argv)
{
    const char *files[2] = {NULL, NULL}, *model_text = NULL;
    int nfiles = 0, json = 0;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            check_usage(stdout);
            return NSX_EXIT_OK;
        }
        if (cli_opt("check", argc, argv, &i, "--model", &model_text, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
        } else if (cli_opt("check", argc, argv, &i, "--json", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_fail("check", "unknown option '%s' (nsimplex check --help)", argv[i]);
        } else if (nfiles == 2) {
            return cli_fail("check", "two files only: VECTOR CANDIDATE ('%s' is a third)", argv[i]);
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles < 2)
        return cli_fail("check", "give VECTOR and CANDIDATE (nsimplex check --help)");

    nsx_err err = {0};
    nsx_model model;
    if (model_text && nsx_model_parse(model_text, &model, &err))
        return cli_fail("check", "--model: %s", err.msg);

    nsx_case vec;
    nsx_st cst = {0};
    double *o = NULL, *lse = NULL;
    int32_t *sel = NULL;
    int rc = nsx_case_read(files[0], &vec, &err);
    if (rc)
        return cli_fail("check", "%s", err.msg), rc;
    const nsx_problem *p = &vec.p;
    char clabel[256];
    nsx_printable(clabel, sizeof clabel, files[1]);
    if (!vec.expected.o || !vec.expected.lse) {
        rc = nsx_err_set(&err, NSX_EXIT_BAD, "%s: no expected %s: not a golden vector", files[0],
                         vec.expected.o ? "lse" : "o");
        goto done;
    }
    if ((rc = nsx_st_read(files[1], &cst, &err)))
        goto done;
    const char *declared = nsx_st_meta(&cst, MODEL_KEY);
    if (!model_text && declared && (rc = nsx_model_parse(declared, &model, &err))) {
        char prefix[300];
        snprintf(prefix, sizeof prefix, "%s: metadata %s", clabel, MODEL_KEY);
        nsx_err_prefix(&err, prefix);
        goto done;
    }
    if (!model_text && !declared)
        nsx_model_default(&model);
    const int64_t oshape[4] = {p->B, p->L, p->H, p->dv}, lshape[3] = {p->B, p->H, p->L};
    const int64_t sshape[3] = {p->B, p->L, p->sel.k};
    if ((rc = get_float(clabel, &cst, "o", 4, oshape, 1, &o, &err)) ||
        (rc = get_float(clabel, &cst, "lse", 3, lshape, 0, &lse, &err)))
        goto done;
    if ((p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES) &&
        (rc = get_sel(clabel, &cst, sshape, &sel, &err)))
        goto done;

    nsx_candidate cand = {o, lse, sel};
    nsx_check_report rep;
    if ((rc = nsx_check(p, &vec.info, &vec.in, &vec.expected, &cand, &model, &rep, &err))) {
        nsx_err_prefix(&err, files[0]);
        goto done;
    }
    if (json) {
        char *s = nsx_check_json(&rep, &vec.info, files[1]);
        if (!s) {
            rc = nsx_err_set(&err, NSX_EXIT_INTERNAL, "out of memory");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        nsx_check_print(stdout, &rep, &vec.info, files[1]);
    }
    rc = rep.pass ? NSX_EXIT_OK : NSX_EXIT_FAIL;
done:
    if (rc && rc != NSX_EXIT_FAIL)
        cli_fail("check", "%s", err.msg);
    free(o);
    free(lse);
    free(sel);
    nsx_st_free(&cst);
    nsx_case_free(&vec);
    return rc;
}
