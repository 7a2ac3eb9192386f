/*
 * nsimplex check VECTOR CANDIDATE [CANDIDATE ...] [--model M] [--json]: judges
 * kernels' outputs against a golden vector (oracle/check.h, docs/ORACLE.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "core/budget.h"
#include "io/casefile.h"
#include "io/safetensors.h"
#include "oracle/candidate.h"
#include "oracle/check.h"
#include "oracle/model.h"

static void check_usage(FILE *f)
{
    fprintf(f,
            "usage: nsimplex check VECTOR CANDIDATE [CANDIDATE ...] [--model M] [--json]\n"
            "                      [--max-tuples N] [--max-memory MIB]\n"
            "       nsimplex check --kernel LIB.so [VECTOR ...]   (runs a kernel on golden vectors:\n"
            "                      nsimplex check --kernel x --help)\n\n"
            "Judges kernels' outputs against a golden vector (docs/ORACLE.md): each CANDIDATE in\n"
            "turn, one report (or JSON line) each. A CANDIDATE is a safetensors file with\n"
            "o [B,L,H,dv] and optionally lse [B,H,L] (any float dtype) and,\n"
            "where the vector computes its selection, sel [B,L,k] (I32); for a backward case\n"
            "also any of dq, dk1.., dv1.. (the gradients, shaped like q, k_m, v_m); or, for a\n"
            "vector whose indexer computes its selection, an indexer's outputs alone: sel_scores\n"
            "[B,L,L] and/or sel [B,L,k], no o (docs/ORACLE.md 5.2). It checks every element\n"
            "against its derived error bound under the precision model, empty-slice rows, NaN and\n"
            "infinities, the selection as a set of valid top-k keys (with tie tolerance), gradient\n"
            "elements no allowed tuple reaches (exactly 0), and leak pairs, mask probes and gradient\n"
            "leak pairs bit for bit; the report names the worst element.\n\n"
            "  --model M   the precision model; default: the candidate's metadata key\n"
            "              \"" NSX_MODEL_KEY "\", else bf16. M is a preset (bf16, f16, f32, f64,\n"
            "              einsum-bf16, einsum-f16, triton-f32), optionally followed by KEY=VALUE\n"
            "              items, or KEY=VALUE items alone (starting from bf16):\n"
            "                in, acc, out, lseout       f64 f32 f16 bf16\n"
            "                op                         f64 f32 f16 bf16 tf32\n"
            "                int, w                     f64 f32 f16 bf16 tf32 none\n"
            "                lse                        -inf +inf any (empty-slice LSE)\n"
            "                lseform                    ln log2 mixed (the stored LSE's form:\n"
            "                                           mixed = max in log2 units + ln of the sum)\n"
            "                idx                        the indexer's q, k: e4m3 e5m2 (per-block\n"
            "                                           scales) f64 f32 f16 bf16 none\n"
            "                idxblk                     the FP8 scale block (default 128)\n"
            "                sub                        flush keep (subnormals, ORACLE.md 9.1)\n"
            "                tile                       none, row (two-pass), B (sums in tiles of\n"
            "                                           B tuples) or B/acc (ORACLE.md 9.8)\n"
            "                bound                      worst prob (probabilistic, ORACLE.md 9)\n"
            "                pfail                      bound=prob's failure probability (1e-9)\n"
            "              e.g. --model in=bf16,acc=f32,w=bf16,out=bf16,lse=-inf (the default)\n"
            "  --json      the report as one JSON object on one line (for CI)\n"
            CLI_BUDGET_HELP
            "                  (check: 268435456 by default, 16 times: the oracle works through\n"
            "                  a tuple about 20 times faster than the reference)\n"
            "\nexit codes, the worst over the candidates: 0 pass, 1 a check failed, 2 unusable\n"
            "input (unreadable or malformed file, wrong shapes or dtypes, unknown model, vector\n"
            "not applicable under the model, a vector that contradicts itself, a problem over\n"
            "the budget), 3 internal or I/O error (out of memory, stdout unwritable)\n");
}

/* Judges an indexer's candidate file (sel_scores and/or sel, no o) against
   the vector (docs/ORACLE.md 5.2); its exit code. */
static int check_indexer_one(const nsx_case *vec, const char *vpath, const char *cpath, const nsx_st *cst,
                             const nsx_model *forced, int json)
{
    nsx_err err = {0};
    nsx_idx_candidate cand = {0};
    nsx_model model;
    nsx_check_report rep;
    int rc;
    if ((rc = nsx_idx_candidate_from_st(cst, cpath, &vec->p, forced, &cand, &model, &err)))
        return cli_fail_err("check", &err);
    if ((rc = nsx_check_indexer(&vec->p, &vec->in, &vec->expected, &cand, &model, &rep, &err))) {
        nsx_err_prefix(&err, vpath);
        nsx_idx_candidate_free(&cand);
        return cli_fail_err("check", &err);
    }
    nsx_idx_candidate_free(&cand);
    if (json) {
        char *s = nsx_check_indexer_json(&rep, &vec->info, cpath);
        if (!s) {
            nsx_err_set(&err, NSX_E_NOMEM, "out of memory");
            return cli_fail_err("check", &err);
        }
        printf("%s\n", s);
        free(s);
    } else {
        nsx_check_indexer_print(stdout, &rep, &vec->info, cpath);
    }
    cli_flush_stdout();
    return rep.pass ? NSX_EXIT_OK : NSX_EXIT_FAIL;
}

/* Judges one candidate file against the vector; its exit code. */
static int check_one(const nsx_case *vec, const char *vpath, const char *cpath, const nsx_model *forced,
                     int json)
{
    nsx_err err = {0};
    nsx_st cst = {0};
    nsx_candidate cand = {0};
    nsx_model model;
    int rc, pass = 0;
    if (!(rc = nsx_st_read(cpath, &cst, &err)) && nsx_candidate_is_indexer(&cst)) {
        int code = check_indexer_one(vec, vpath, cpath, &cst, forced, json);
        nsx_st_free(&cst);
        return code;
    }
    if (rc ||
        (rc = nsx_candidate_from_st(&cst, cpath, &vec->p, forced, &cand, &model, &err)))
        goto done;
    const char *declared = nsx_st_meta(&cst, NSX_MODEL_KEY);
    char warning[512];
    if (!forced && declared && nsx_model_warning(declared, warning, sizeof warning))
        fprintf(stderr, "nsimplex check: warning: %s: %s\n", cpath, warning);
    nsx_check_report rep;
    if ((rc = nsx_check(&vec->p, &vec->info, &vec->in, &vec->expected, &cand, &model, &rep, &err))) {
        nsx_err_prefix(&err, vpath);
        goto done;
    }
    if (json) {
        char *s = nsx_check_json(&rep, &vec->info, cpath);
        if (!s) {
            rc = nsx_err_set(&err, NSX_E_NOMEM, "out of memory");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        nsx_check_print(stdout, &rep, &vec->info, cpath);
    }
    cli_flush_stdout(); /* each report before the next candidate's lines on stderr */
    pass = rep.pass;
done:
    nsx_candidate_free(&cand);
    nsx_st_free(&cst);
    if (rc)
        return cli_fail_err("check", &err);
    return pass ? NSX_EXIT_OK : NSX_EXIT_FAIL;
}

/* The work budget (core/budget.h): the oracle's work per tuple (a few
   binary64 operations) is about 20 times faster than the reference's
   (measured: n = 2, L = 128, 707264 tuples, check 0.21 s, eval 4.8 s of
   CPU), so 16 times the reference's tuples by default.  0 or an error kind. */
static int budget_ok(const nsx_case *vec, const char *vpath, const nsx_budget_limits *lim, nsx_err *err)
{
    nsx_budget_limits scaled = nsx_budget_scaled(lim, 16);
    return nsx_budget_check(&vec->p, &scaled, vpath, NULL, err);
}

int cmd_check(int argc, char **argv)
{
    const char *model_text = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0, json = 0;
    nsx_budget_limits lim = {0};
    bool bad = false;
    if (!files)
        return cli_fail("check", "out of memory");
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--kernel") == 0 || strncmp(argv[i], "--kernel=", 9) == 0) {
            free(files);
            return cmd_check_kernel(argc, argv);
        }
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            check_usage(stdout);
            free(files);
            return NSX_EXIT_OK;
        }
        if (cli_opt("check", argc, argv, &i, "--model", &model_text, &bad)) {
            if (bad)
                goto bad_args;
        } else if (cli_opt("check", argc, argv, &i, "--json", NULL, &bad)) {
            if (bad)
                goto bad_args;
            json = 1;
        } else if (cli_budget_opt("check", argc, argv, &i, &lim, &bad)) {
            if (bad)
                goto bad_args;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            free(files);
            return cli_fail("check", "unknown option '%s' (nsimplex check --help)", argv[i]);
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles < 2) {
        free(files);
        return cli_fail("check", "give VECTOR and CANDIDATE (nsimplex check --help)");
    }

    nsx_err err = {0};
    nsx_model model;
    if (model_text && nsx_model_parse(model_text, &model, &err)) {
        free(files);
        return cli_fail("check", "--model: %s", err.msg);
    }
    char warning[512];
    if (model_text && nsx_model_warning(model_text, warning, sizeof warning))
        fprintf(stderr, "nsimplex check: warning: --model: %s\n", warning);
    nsx_case vec;
    if (nsx_case_read(files[0], &vec, &err)) {
        free(files);
        return cli_fail_err("check", &err);
    }
    int worst = NSX_EXIT_OK;
    if (!vec.expected.o || !vec.expected.lse) {
        nsx_err_set(&err, NSX_E_INPUT, "%s: no expected %s: not a golden vector", files[0],
                    vec.expected.o ? "lse" : "o");
        worst = cli_fail_err("check", &err);
    } else if (budget_ok(&vec, files[0], &lim, &err)) {
        worst = cli_fail_err("check", &err);
    } else {
        /* every candidate is judged; the exit code is the worst one (3 > 2 > 1 > 0) */
        for (int f = 1; f < nfiles; f++) {
            int code = check_one(&vec, files[0], files[f], model_text ? &model : NULL, json);
            if (code > worst)
                worst = code;
        }
    }
    nsx_case_free(&vec);
    free(files);
    return worst;
bad_args:
    free(files);
    return NSX_EXIT_BAD;
}
