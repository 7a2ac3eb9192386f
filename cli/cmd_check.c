/*
 * nsimplex check VECTOR CANDIDATE [--model M] [--json]: judges a kernel's
 * outputs against a golden vector (oracle/check.h, docs/ORACLE.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "io/casefile.h"
#include "io/safetensors.h"
#include "oracle/candidate.h"
#include "oracle/check.h"
#include "oracle/model.h"

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
            "              \"" NSX_MODEL_KEY "\", else bf16. M is a preset (bf16, f16, f32, f64,\n"
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
    nsx_candidate cand = {0};
    int pass = 0;
    int rc = nsx_case_read(files[0], &vec, &err);
    if (rc)
        return cli_fail_err("check", &err);
    const nsx_problem *p = &vec.p;
    if (!vec.expected.o || !vec.expected.lse) {
        rc = nsx_err_set(&err, NSX_E_INPUT, "%s: no expected %s: not a golden vector", files[0],
                         vec.expected.o ? "lse" : "o");
        goto done;
    }
    if ((rc = nsx_st_read(files[1], &cst, &err)) ||
        (rc = nsx_candidate_from_st(&cst, files[1], p, model_text ? &model : NULL, &cand, &model, &err)))
        goto done;

    nsx_check_report rep;
    if ((rc = nsx_check(p, &vec.info, &vec.in, &vec.expected, &cand, &model, &rep, &err))) {
        nsx_err_prefix(&err, files[0]);
        goto done;
    }
    if (json) {
        char *s = nsx_check_json(&rep, &vec.info, files[1]);
        if (!s) {
            rc = nsx_err_set(&err, NSX_E_NOMEM, "out of memory");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        nsx_check_print(stdout, &rep, &vec.info, files[1]);
    }
    pass = rep.pass;
done:
    nsx_candidate_free(&cand);
    nsx_st_free(&cst);
    nsx_case_free(&vec);
    if (rc)
        return cli_fail_err("check", &err);
    return pass ? NSX_EXIT_OK : NSX_EXIT_FAIL;
}
