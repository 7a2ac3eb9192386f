/*
 * nsimplex eval FILE --out OUT [--impl ref|simd]
 *
 * Computes the outputs for the inputs in FILE (a case file: docs/SPEC.md
 * section 4; expected values in it are ignored) and writes them to OUT as a
 * file `nsimplex check` accepts as a candidate: o and lse, and sel (plus
 * sel_scores for an indexer) when the selection is computed.  OUT carries
 * FILE's metadata, and "nsimplex.impl" naming the implementation (and for
 * simd "nsimplex.model", the precision model `check` then judges it by).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "core/budget.h"
#include "io/casefile.h"
#include "runner/runner.h"
#include "nsimplex/ref.h"
#include "simd/bf16.h"
#include "simd/indexer.h"
#include "simd/simd.h"

static void help(void)
{
    printf("usage: nsimplex eval FILE --out OUT [--impl ref|simd|simd-bf16] [--threads N] [--exact-only] [--stats]\n"
           "                     [--bwd] [--max-tuples N] [--max-memory MIB]\n\n"
           "Computes o and lse (and sel, sel_scores for a computed selection) for the\n"
           "inputs in FILE and writes them to OUT, a candidate file for `nsimplex check`.\n\n"
           "  --out OUT     the output file (written atomically)\n"
           "  --impl NAME   ref: the reference, correctly rounded binary64 (default): the fast\n"
           "                certified path (binary64 and double-double with a proven bound)\n"
           "                decides what it can, MPFR the rest\n"
           "                simd: the float32 SIMD kernel (NSX_ISA forces its ISA), run on the\n"
           "                selection FILE gives, or for a computed one on the SIMD indexer's\n"
           "                (written as sel, and sel_scores for an indexer)\n"
           "                simd-bf16: the bf16-input path (simd/bf16.h; NSX_BF16 forces its\n"
           "                variant) on the inputs rounded to bf16, judged by " NSX_BF16_MODEL "\n"
           "  --threads N   threads of simd and of the ref's fast path (0: all cores) (0)\n"
           "  --exact-only  ref: MPFR for every value (the same values, slower)\n"
           "  --stats       ref: print the allowed tuples, the time, the throughput and the\n"
           "                values decided by the fast path and by MPFR\n"
           "  --bwd         also the gradients dq, dk1.., dv1.. of sum(do * o) (E7), from the\n"
           "                tensor do in FILE: ref, correctly rounded (MPFR); simd, the float32\n"
           "                backward from the forward's o and lse\n"
           CLI_BUDGET_HELP
           "                  (the fast path: 64 times the tuples by default; --impl simd: 1024\n"
           "                  times, no memory limit)\n"
           "\nexit codes: 0 written, 2 unusable input or a problem over the budget, 3 internal\n"
           "or I/O error\n");
}

/* Progress of a long reference run, on stderr. */
static void progress(void *arg, uint64_t done, uint64_t rows)
{
    fprintf(stderr, "nsimplex eval: %s: %llu of %llu rows (%.0f%%)\n", (const char *)arg,
            (unsigned long long)done, (unsigned long long)rows, 100.0 * (double)done / (double)rows);
}

typedef struct eval_opts {
    int threads;    /* --threads */
    int exact_only; /* --exact-only */
    int stats;      /* --stats */
    int bwd;        /* --bwd */
} eval_opts;

/* nsx_ref_forward, with its statistics printed when asked.  Rows the
   file's pairs leave unjudged are not computed (their outputs are NaN). */
static int forward_timed(const nsx_case *c, nsx_outputs *out, const eval_opts *eo, nsx_err *err)
{
    const nsx_problem *p = &c->p;
    nsx_ref_stats st = {0};
    unsigned char *skip = malloc((size_t)p->B * p->L);
    if (!skip)
        return nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
    nsx_pairs_unjudged(p, c->info.pairs, c->info.npairs, skip);
    nsx_ref_opts opts = {.skip = skip, .fast = !eo->exact_only, .threads = eo->threads,
                         .progress = progress, .progress_arg = (void *)c->info.id};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = nsx_ref_forward(p, &c->in, out, &opts, &st, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(skip);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!rc && eo->stats)
        cli_ref_stats("eval", &st, s);
    return rc;
}

/* Gradient buffers for p (binary64); 0 or NSX_E_NOMEM. */
static int grads_alloc(const nsx_problem *p, nsx_outputs *g, nsx_err *err)
{
    int ok = (g->dq = malloc(nsx_q_size(p) * sizeof *g->dq)) != NULL;
    for (int m = 0; m < p->n; m++) {
        ok &= (g->dk[m] = malloc(nsx_k_size(p) * sizeof *g->dk[m])) != NULL;
        ok &= (g->dv[m] = malloc(nsx_v_size(p) * sizeof *g->dv[m])) != NULL;
    }
    return ok ? 0 : nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
}

static void grads_free(const nsx_problem *p, nsx_outputs *g)
{
    free(g->dq);
    for (int m = 0; m < p->n; m++)
        free(g->dk[m]), free(g->dv[m]);
}

/* dq, dk1.., dv1.. into st as dtype. */
static int grads_add(const nsx_problem *p, const nsx_outputs *g, int dtype, nsx_st *st, nsx_err *err)
{
    int64_t qshape[4] = {p->B, p->L, p->H, p->d}, kshape[4] = {p->B, p->L, p->Hkv, p->d};
    int64_t vshape[4] = {p->B, p->L, p->Hkv, p->dv};
    int rc = nsx_st_add_f64(st, "dq", dtype, 4, qshape, g->dq, err);
    for (int m = 0; m < p->n && !rc; m++) {
        char name[16];
        snprintf(name, sizeof name, "dk%d", m + 1);
        if (!(rc = nsx_st_add_f64(st, name, dtype, 4, kshape, g->dk[m], err))) {
            snprintf(name, sizeof name, "dv%d", m + 1);
            rc = nsx_st_add_f64(st, name, dtype, 4, vshape, g->dv[m], err);
        }
    }
    return rc;
}

/* The gradients (E7) into st, as binary64. */
static int backward_ref(const nsx_case *c, nsx_st *st, const eval_opts *eo, nsx_err *err)
{
    const nsx_problem *p = &c->p;
    nsx_outputs g = {0};
    nsx_ref_stats rs = {0};
    if (!c->in.dout)
        return nsx_err_set(err, NSX_E_INPUT, "--bwd: no tensor do (the upstream gradient)");
    int rc = grads_alloc(p, &g, err);
    nsx_ref_opts bopts = {.fast = !eo->exact_only, .threads = eo->threads, .progress = progress,
                          .progress_arg = (void *)c->info.id};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!rc)
        rc = nsx_ref_backward(p, &c->in, &g, &bopts, &rs, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!rc && eo->stats)
        cli_ref_stats("eval: backward", &rs, s);
    if (!rc)
        rc = grads_add(p, &g, NSX_DTYPE_F64, st, err);
    grads_free(p, &g);
    return rc;
}

/* The outputs of the reference into st, as binary64. */
static int eval_ref(const nsx_case *c, nsx_st *st, const eval_opts *eo, nsx_err *err)
{
    const nsx_problem *p = &c->p;
    nsx_outputs out = {0};
    int64_t oshape[4] = {p->B, p->L, p->H, p->dv}, lshape[3] = {p->B, p->H, p->L};
    int64_t sshape[3] = {p->B, p->L, p->sel.k}, scshape[3] = {p->B, p->L, p->L};
    int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    int rc = NSX_E_NOMEM;
    out.o = malloc(nsx_o_size(p) * sizeof *out.o);
    out.lse = malloc(nsx_lse_size(p) * sizeof *out.lse);
    if (computed)
        out.sel = malloc(nsx_sel_size(p) * sizeof *out.sel);
    if (p->sel.source == NSX_SEL_INDEXER)
        out.sel_scores = malloc((size_t)p->B * p->L * p->L * sizeof *out.sel_scores);
    if (!out.o || !out.lse || (computed && !out.sel) || (p->sel.source == NSX_SEL_INDEXER && !out.sel_scores))
        nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
    else if (!(rc = forward_timed(c, &out, eo, err)) &&
             !(rc = nsx_st_add_f64(st, "o", NSX_DTYPE_F64, 4, oshape, out.o, err)) &&
             !(rc = nsx_st_add_f64(st, "lse", NSX_DTYPE_F64, 3, lshape, out.lse, err)) && computed &&
             !(rc = nsx_st_add_i32(st, "sel", 3, sshape, out.sel, err)) && out.sel_scores)
        rc = nsx_st_add_f64(st, "sel_scores", NSX_DTYPE_F64, 3, scshape, out.sel_scores, err);
    free(out.o), free(out.lse), free(out.sel), free(out.sel_scores);
    if (!rc && eo->bwd)
        rc = backward_ref(c, st, eo, err);
    return rc;
}

/* The outputs of the SIMD kernel into st, as float32: for a computed
   selection, first the SIMD indexer's (simd/indexer.h), written as sel (and
   sel_scores for an indexer) and given to the kernel as indices. */
static int eval_simd(const nsx_case *c, nsx_st *st, const eval_opts *eo, nsx_err *err)
{
    const nsx_problem *p = &c->p;
    int64_t oshape[4] = {p->B, p->L, p->H, p->dv}, lshape[3] = {p->B, p->H, p->L};
    int64_t sshape[3] = {p->B, p->L, p->sel.k}, scshape[3] = {p->B, p->L, p->L};
    int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    int32_t *sel = NULL;
    double *scores = NULL;
    double *o = malloc(nsx_o_size(p) * sizeof *o), *lse = malloc(nsx_lse_size(p) * sizeof *lse);
    nsx_kernel k = {0};
    nsx_outputs g = {0};
    int rc, has_lse;
    if (eo->bwd && !c->in.dout) {
        rc = nsx_err_set(err, NSX_E_INPUT, "--bwd: no tensor do (the upstream gradient)");
        goto done;
    }
    if (eo->bwd && (rc = grads_alloc(p, &g, err)))
        goto done;
    if (computed) {
        sel = malloc(nsx_sel_size(p) * sizeof *sel);
        if (p->sel.source == NSX_SEL_INDEXER)
            scores = malloc((size_t)p->B * p->L * p->L * sizeof *scores);
    }
    if (!o || !lse || (computed && !sel) || (p->sel.source == NSX_SEL_INDEXER && !scores)) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
        goto done;
    }
    if ((rc = nsx_kernel_open(&k, NULL, -1, eo->threads, err)))
        goto done;
    if (computed) {
        int r = nsx_simd_select(p, &c->in, sel, scores, k.threads, k.isa);
        if (r == NSX_SIMD_ENOMEM)
            rc = nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
        else if (r != NSX_SIMD_OK)
            rc = nsx_err_set(err, NSX_E_UNSUPPORTED, "the SIMD indexer refused the selection (code %d)", r);
        if (rc)
            goto done;
    }
    if (eo->bwd) { /* the forward and then the backward */
        has_lse = 1;
        rc = nsx_kernel_run_bwd(&k, p, &c->in, computed ? sel : c->in.sel, c->in.dout, &g, o, lse, err);
    } else {
        rc = nsx_kernel_run(&k, p, &c->in, computed ? sel : c->in.sel, o, lse, &has_lse, err);
    }
    if (!rc && eo->bwd)
        rc = grads_add(p, &g, NSX_DTYPE_F32, st, err);
    if (!rc && !(rc = nsx_st_add_f64(st, "o", NSX_DTYPE_F32, 4, oshape, o, err)) && has_lse)
        rc = nsx_st_add_f64(st, "lse", NSX_DTYPE_F32, 3, lshape, lse, err);
    if (!rc && computed && !(rc = nsx_st_add_i32(st, "sel", 3, sshape, sel, err)) && scores)
        rc = nsx_st_add_f64(st, "sel_scores", NSX_DTYPE_F32, 3, scshape, scores, err);
    if (!rc)
        rc = nsx_st_set_meta(st, "nsimplex.model", "f32", err);
done:
    nsx_kernel_close(&k);
    free(o), free(lse), free(sel), free(scores);
    if (eo->bwd)
        grads_free(p, &g);
    return rc;
}

/* The outputs of the bf16-input path (simd/bf16.h) into st, as float32:
   the inputs rounded to bf16 (through float32, as the ABI library's are),
   a computed selection the SIMD indexer's as for simd, and the path's model
   (NSX_BF16_MODEL) for check. */
static int eval_simd_bf16(const nsx_case *c, nsx_st *st, const eval_opts *eo, nsx_err *err)
{
    const nsx_problem *p = &c->p;
    if (eo->bwd)
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "--bwd: the bf16 path has no backward");
    int64_t oshape[4] = {p->B, p->L, p->H, p->dv}, lshape[3] = {p->B, p->H, p->L};
    int64_t sshape[3] = {p->B, p->L, p->sel.k}, scshape[3] = {p->B, p->L, p->L};
    const int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    const size_t no = nsx_o_size(p), nl = nsx_lse_size(p);
    const double *src[1 + 2 * NSX_MAX_ORDER] = {c->in.q};
    size_t len[1 + 2 * NSX_MAX_ORDER] = {nsx_q_size(p)};
    for (int m = 0; m < p->n; m++) {
        src[1 + 2 * m] = c->in.k[m], len[1 + 2 * m] = nsx_k_size(p);
        src[2 + 2 * m] = c->in.v[m], len[2 + 2 * m] = nsx_v_size(p);
    }
    uint16_t *h[1 + 2 * NSX_MAX_ORDER] = {0};
    float *o = malloc(no * sizeof *o), *lse = malloc(nl * sizeof *lse);
    double *od = malloc((no + nl) * sizeof *od), *scores = NULL;
    int32_t *sel = NULL;
    int rc = 0, ok = o && lse && od;
    for (int t = 0; t < 1 + 2 * p->n && ok; t++)
        if ((ok = (h[t] = malloc(len[t] * sizeof *h[t])) != NULL))
            for (size_t x = 0; x < len[t]; x++)
                h[t][x] = nsx_bf16_round((float)src[t][x]);
    if (ok && computed) {
        ok = (sel = malloc(nsx_sel_size(p) * sizeof *sel)) != NULL;
        if (ok && p->sel.source == NSX_SEL_INDEXER)
            ok = (scores = malloc((size_t)p->B * p->L * p->L * sizeof *scores)) != NULL;
    }
    if (!ok) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
        goto done;
    }
    if (computed) {
        int isa = nsx_simd_isa(NULL, 0);
        int r = isa < 0 ? NSX_SIMD_EISA : nsx_simd_select(p, &c->in, sel, scores, eo->threads, isa);
        if (r == NSX_SIMD_ENOMEM)
            rc = nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
        else if (r != NSX_SIMD_OK)
            rc = nsx_err_set(err, NSX_E_UNSUPPORTED, "the SIMD indexer refused the selection (code %d)", r);
        if (rc)
            goto done;
    }
    nsx_kernel_problem kp;
    nsx_problem_to_kernel(p, computed ? sel : c->in.sel, &kp);
    nsx_bf16_io io = {.q = h[0], .o = o, .lse = lse};
    for (int m = 0; m < p->n; m++)
        io.k[m] = h[1 + 2 * m], io.v[m] = h[2 + 2 * m];
    int r = nsx_simd_forward_bf16(&kp, &io, eo->threads);
    if (r == NSX_SIMD_ENOMEM)
        rc = nsx_err_set(err, NSX_E_NOMEM, "eval: out of memory");
    else if (r == NSX_SIMD_EISA)
        rc = nsx_err_set(err, NSX_E_INPUT, "NSX_BF16 names no variant this CPU runs (NSX_ISA_DEBUG=1 says why)");
    else if (r != NSX_SIMD_OK)
        rc = nsx_err_set(err, NSX_E_UNSUPPORTED, "the bf16 path refused the problem (code %d)", r);
    if (rc)
        goto done;
    for (size_t t = 0; t < no; t++)
        od[t] = o[t];
    for (size_t t = 0; t < nl; t++)
        od[no + t] = lse[t];
    if (!(rc = nsx_st_add_f64(st, "o", NSX_DTYPE_F32, 4, oshape, od, err)))
        rc = nsx_st_add_f64(st, "lse", NSX_DTYPE_F32, 3, lshape, od + no, err);
    if (!rc && computed && !(rc = nsx_st_add_i32(st, "sel", 3, sshape, sel, err)) && scores)
        rc = nsx_st_add_f64(st, "sel_scores", NSX_DTYPE_F32, 3, scshape, scores, err);
    if (!rc)
        rc = nsx_st_set_meta(st, "nsimplex.model", NSX_BF16_MODEL, err);
done:
    for (int t = 0; t < 1 + 2 * p->n; t++)
        free(h[t]);
    free(o), free(lse), free(od), free(sel), free(scores);
    return rc;
}

static const struct impl {
    const char *name;
    int (*run)(const nsx_case *c, nsx_st *st, const eval_opts *eo, nsx_err *err);
} impls[] = {
    {"ref", eval_ref},
    {"simd", eval_simd},
    {"simd-bf16", eval_simd_bf16},
};

int cmd_eval(int argc, char **argv)
{
    const char *file = NULL, *outpath = NULL, *impl_name = "ref", *val;
    int stats = 0, exact_only = 0, bwd = 0;
    long threads = 0;
    nsx_budget_limits lim = {0};
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            help();
            return NSX_EXIT_OK;
        } else if (cli_opt("eval", argc, argv, &i, "--out", &val, &bad)) {
            outpath = val;
        } else if (cli_opt("eval", argc, argv, &i, "--impl", &val, &bad)) {
            impl_name = val;
        } else if (cli_opt("eval", argc, argv, &i, "--threads", &val, &bad)) {
            if (!bad && !cli_int("eval", "--threads", val, 0, 4096, &threads))
                return NSX_EXIT_BAD;
        } else if (cli_opt("eval", argc, argv, &i, "--stats", NULL, &bad)) {
            stats = 1;
        } else if (cli_opt("eval", argc, argv, &i, "--bwd", NULL, &bad)) {
            bwd = 1;
        } else if (cli_opt("eval", argc, argv, &i, "--exact-only", NULL, &bad)) {
            exact_only = 1;
        } else if (cli_budget_opt("eval", argc, argv, &i, &lim, &bad)) {
            ;
        } else if (argv[i][0] == '-' || file) {
            return cli_fail("eval", "unknown argument '%s' (nsimplex eval --help)", argv[i]);
        } else {
            file = argv[i];
        }
        if (bad)
            return NSX_EXIT_BAD;
    }
    if (!file || !outpath)
        return cli_fail("eval", "need FILE and --out OUT (nsimplex eval --help)");
    const struct impl *impl = NULL;
    for (size_t t = 0; t < sizeof impls / sizeof impls[0]; t++)
        if (strcmp(impls[t].name, impl_name) == 0)
            impl = &impls[t];
    if (!impl)
        return cli_fail("eval", "--impl: '%s' is not an implementation (nsimplex eval --help)", impl_name);

    nsx_err err = {0};
    nsx_case c;
    nsx_st st = {0};
    int rc = nsx_case_read(file, &c, &err);
    if (rc)
        return cli_fail_err("eval", &err);
    eval_opts eo = {(int)threads, exact_only, stats, bwd};
    /* the SIMD kernel is about a thousand times the reference's speed and
       holds no tuples: a default limit 1024 times larger, no memory limit;
       the reference's fast path is NSX_BUDGET_FAST_SPEED times MPFR's */
    lim = nsx_budget_scaled(&lim, impl->run != eval_ref ? 1024 : exact_only ? 1 : NSX_BUDGET_FAST_SPEED);
    if (impl->run != eval_ref && !lim.max_bytes)
        lim.max_bytes = UINT64_MAX;
    if ((rc = nsx_budget_check(&c.p, &lim, file, NULL, &err)))
        ;
    else if (impl->run != eval_ref && cli_threads_probe("eval", (int)threads)) {
        nsx_case_free(&c);
        return NSX_EXIT_INTERNAL;
    } else if ((rc = impl->run(&c, &st, &eo, &err)))
        nsx_err_prefix(&err, file); /* a problem of the inputs: name them */
    else if (!(rc = nsx_st_set_meta(&st, NSX_META_KEY, nsx_st_meta(&c.st, NSX_META_KEY), &err)) &&
             !(rc = nsx_st_set_meta(&st, "nsimplex.impl", impl->name, &err)))
        rc = nsx_st_write(outpath, &st, &err); /* its errors name OUT */
    if (rc)
        rc = cli_fail_err("eval", &err);
    nsx_st_free(&st);
    nsx_case_free(&c);
    return rc;
}
