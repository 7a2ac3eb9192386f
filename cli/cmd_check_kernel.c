/*
 * nsimplex check --kernel LIB.so [VECTOR ...]: runs a kernel library on
 * golden vectors and judges each (docs/FUZZING.md section 7), so a kernel's
 * author needs no harness of their own.  The kernel runs as the fuzzer runs
 * it (runner/runner.h): isolated in a child process per call by default,
 * its declared features and precision model respected.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "io/casefile.h"
#include "io/json.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "runner/runner.h"

#define CMD "check"

/* Where the committed default suite lives, from the repository's root. */
#define DEFAULT_SUITE "vectors/default/*.safetensors"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nsimplex check --kernel LIB.so [VECTOR ...] [--model M] [--json]\n"
            "                      [--call-timeout S] [--threads N] [--in-process]\n\n"
            "Runs the kernel library (include/nsimplex/kernel.h) on each golden VECTOR and\n"
            "judges its outputs with the oracle under the kernel's declared precision model\n"
            "(or --model), as `nsimplex check VECTOR CANDIDATE` would: one line per vector,\n"
            "PASS, FAIL (with the oracle's first note, or the fault: a signal, a timeout, an\n"
            "exit or a write outside the outputs) or SKIP (a feature the kernel does not\n"
            "declare, inputs outside the model's range). Default VECTORs: the committed\n"
            "default suite, " DEFAULT_SUITE ".\n\n"
            "  --kernel LIB.so    the library to run\n"
            "  --model M          judge by this model instead of the declared one\n"
            "  --json             one JSON object per vector (the check report, or the fault)\n"
            "  --call-timeout S   a call with no result after S seconds fails (10)\n"
            "  --threads N        OpenMP threads for the kernel (0: its default) (0)\n"
            "  --in-process       no child process per call (for sanitizer runs)\n\n"
            "exit codes: 0 every judged vector passed (and at least one was judged), 1 a vector\n"
            "failed, 2 unusable arguments, kernel or vector, or nothing judged, 3 internal error\n");
}

/* {"vector":LABEL,"pass":false,KEY:TEXT} or {"vector":LABEL,"skipped":true,"why":TEXT}
   on one line, strings escaped. */
static void json_line(const char *label, const char *key, const char *text)
{
    nsx_buf b = {0};
    nsx_buf_puts(&b, "{\"vector\":");
    nsx_buf_json_string(&b, label);
    nsx_buf_puts(&b, strcmp(key, "why") == 0 ? ",\"skipped\":true,\"" : ",\"pass\":false,\"");
    nsx_buf_puts(&b, key);
    nsx_buf_puts(&b, "\":");
    nsx_buf_json_string(&b, text);
    nsx_buf_puts(&b, "}\n");
    if (b.s && !b.oom)
        fputs(b.s, stdout);
    nsx_buf_free(&b);
}

typedef struct tally {
    int pass, fail, skip, worst;
} tally;

static void raise_code(tally *t, int code)
{
    if (code > t->worst)
        t->worst = code;
}

/* One vector: run, judge, print. */
static void one(const nsx_kernel *k, const char *path, const nsx_model *forced, int json, tally *t)
{
    nsx_err err = {0};
    nsx_case vec;
    char label[512];
    nsx_printable(label, sizeof label, path);
    if (nsx_case_read(path, &vec, &err)) {
        raise_code(t, cli_fail_err(CMD, &err));
        return;
    }
    const nsx_problem *p = &vec.p;
    double *o = NULL, *lse = NULL;
    nsx_model m;
    char why[256];
    int rc;
    if (!vec.expected.o || !vec.expected.lse) {
        nsx_err_set(&err, NSX_E_INPUT, "%s: no expected %s: not a golden vector", label,
                    vec.expected.o ? "lse" : "o");
        raise_code(t, cli_fail_err(CMD, &err));
        goto done;
    }
    if (forced)
        m = *forced;
    else if ((rc = nsx_model_from_kernel(k->info, &m, &err))) {
        raise_code(t, cli_fail_err(CMD, &err));
        goto done;
    }
    if (nsx_kernel_supports(k->info, p, why, sizeof why)) {
        t->skip++;
        if (json)
            json_line(label, "why", why);
        else
            printf("SKIP %s: the kernel does not declare it (%s)\n", label, why);
        goto done;
    }
    o = malloc(nsx_o_size(p) * sizeof *o);
    lse = malloc(nsx_lse_size(p) * sizeof *lse);
    if (!o || !lse) {
        nsx_err_set(&err, NSX_E_NOMEM, "out of memory");
        raise_code(t, cli_fail_err(CMD, &err));
        goto done;
    }
    const int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    const int32_t *sel = computed ? vec.expected.sel : vec.in.sel;
    int has_lse = 0;
    rc = nsx_kernel_run(k, p, &vec.in, sel, o, lse, &has_lse, &err);
    if (rc == NSX_E_UNSUPPORTED) {
        t->skip++;
        if (json)
            json_line(label, "why", "not supported");
        else
            printf("SKIP %s: not supported\n", label);
        goto done;
    }
    if (rc == NSX_E_KERNEL_REFUSED || rc == NSX_E_KERNEL_ERROR) {
        /* a kernel that fails on a vector it declares is a failed check */
        char msg[512];
        nsx_printable(msg, sizeof msg, err.msg);
        t->fail++;
        raise_code(t, NSX_EXIT_FAIL);
        if (json)
            json_line(label, "kernel_error", msg);
        else
            printf("FAIL %s: %s\n", label, msg);
        goto done;
    }
    if (rc) {
        raise_code(t, cli_fail_err(CMD, &err));
        goto done;
    }
    nsx_candidate cand = {.o = o, .lse = has_lse ? lse : NULL};
    nsx_check_report rep;
    rc = nsx_check(p, &vec.info, &vec.in, &vec.expected, &cand, &m, &rep, &err);
    if (rc == NSX_E_NOT_APPLICABLE) {
        t->skip++;
        if (json)
            json_line(label, "why", err.msg);
        else
            printf("SKIP %s: %s\n", label, err.msg);
        goto done;
    }
    if (rc) {
        nsx_err_prefix(&err, label);
        raise_code(t, cli_fail_err(CMD, &err));
        goto done;
    }
    if (rep.pass)
        t->pass++;
    else {
        t->fail++;
        raise_code(t, NSX_EXIT_FAIL);
    }
    if (json) {
        char *s = nsx_check_json(&rep, &vec.info, label);
        if (s)
            printf("%s\n", s);
        else
            raise_code(t, cli_fail(CMD, "out of memory"));
        free(s);
    } else {
        printf("%s %s: worst ratio o %.3g, lse %.3g%s%s\n", rep.pass ? "PASS" : "FAIL", label,
               rep.worst_o.found ? rep.worst_o.ratio : 0.0, rep.worst_lse.found ? rep.worst_lse.ratio : 0.0,
               rep.pass || !rep.nnotes ? "" : "\n  ", rep.pass || !rep.nnotes ? "" : rep.notes[0]);
    }
done:
    cli_flush_stdout();
    free(o);
    free(lse);
    nsx_case_free(&vec);
}

int cmd_check_kernel(int argc, char **argv)
{
    const char *kernel = NULL, *model_text = NULL, *val;
    const char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0, json = 0;
    long threads = 0;
    bool bad = false, in_process = false;
    nsx_kernel_iso iso = {.timeout = 10};
    if (!files)
        return cli_fail(CMD, "out of memory");
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            free(files);
            return NSX_EXIT_OK;
        }
        if (cli_opt(CMD, argc, argv, &i, "--kernel", &val, &bad)) {
            kernel = val;
        } else if (cli_opt(CMD, argc, argv, &i, "--model", &val, &bad)) {
            model_text = val;
        } else if (cli_opt(CMD, argc, argv, &i, "--json", NULL, &bad)) {
            json = 1;
        } else if (cli_opt(CMD, argc, argv, &i, "--threads", &val, &bad)) {
            bad = bad || !cli_int(CMD, "--threads", val, 0, 4096, &threads);
        } else if (cli_opt(CMD, argc, argv, &i, "--call-timeout", &val, &bad)) {
            bad = bad || !cli_double(CMD, "--call-timeout", val, &iso.timeout);
            if (!bad && !(iso.timeout > 0)) {
                free(files);
                return cli_fail(CMD, "--call-timeout: %s is not positive", val);
            }
        } else if (cli_opt(CMD, argc, argv, &i, "--in-process", NULL, &bad)) {
            in_process = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            free(files);
            return cli_fail(CMD, "unknown option '%s' (nsimplex check --help)", argv[i]);
        } else {
            files[nfiles++] = argv[i];
        }
        if (bad) {
            free(files);
            return NSX_EXIT_BAD;
        }
    }
    nsx_err err = {0};
    nsx_model model;
    if (model_text && nsx_model_parse(model_text, &model, &err)) {
        free(files);
        return cli_fail(CMD, "--model: %s", err.msg);
    }
    glob_t g = {0};
    if (!nfiles) {
        if (glob(DEFAULT_SUITE, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
            globfree(&g);
            free(files);
            return cli_fail(CMD, "no VECTOR given, and %s matches nothing (run from the repository's root, "
                                 "or name the vectors)", DEFAULT_SUITE);
        }
    }
    if (cli_threads_probe(CMD, (int)threads)) {
        globfree(&g);
        free(files);
        return NSX_EXIT_INTERNAL;
    }
    nsx_kernel k;
    if (nsx_kernel_open(&k, kernel, -1, (int)threads, &err)) {
        globfree(&g);
        free(files);
        return cli_fail(CMD, "%s", err.msg);
    }
    if (!in_process)
        k.iso = &iso;
    tally t = {0};
    size_t count = nfiles ? (size_t)nfiles : g.gl_pathc;
    for (size_t x = 0; x < count; x++)
        one(&k, nfiles ? files[x] : g.gl_pathv[x], model_text ? &model : NULL, json, &t);
    char name[128];
    nsx_printable(name, sizeof name, k.info->name ? k.info->name : "?");
    fprintf(json ? stderr : stdout, "nsimplex check: kernel %s: %zu vectors: %d passed, %d failed, %d skipped%s\n",
            name, count, t.pass, t.fail, t.skip, t.worst > NSX_EXIT_FAIL ? ", some unusable (above)" : "");
    nsx_kernel_close(&k);
    globfree(&g);
    free(files);
    if (t.worst == NSX_EXIT_OK && t.pass == 0)
        return cli_fail(CMD, "no vector was judged (%d skipped): not a pass", t.skip);
    return t.worst;
}
