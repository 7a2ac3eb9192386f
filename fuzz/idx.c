/*
 * Fuzzing a kernel's indexer (nsx_kernel_indexer, kernel ABI 2-3; fuzz.h,
 * nsx_fuzz_indexer_run; docs/FUZZING.md "The indexer").  Each problem is a
 * recipe with a computed selection (sel=indexer) within the indexer
 * capabilities the kernel declares, its inputs sometimes reshaped: blocks
 * of idx_q and idx_k rows scaled by powers of two far apart (where a scale
 * per tensor, or per block of the wrong size, loses the small blocks),
 * weights of zero and of either sign, exact ties.  The MPFR reference gives
 * the exact scores and selection; oracle/idxcheck.c judges the kernel's
 * scores and selection under its declared model.  A failure is shrunk (one
 * batch, then the shortest failing prefix of positions) and saved as a
 * vector and an indexer candidate that `nsimplex check` replays.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz/fuzz.h"
#include "io/atomic.h"
#include "io/casefile.h"
#include "io/json.h"
#include "io/safetensors.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* A size in lo..hi, often at a lane or strip boundary. */
static int size_in(nsx_rng *r, int lo, int hi)
{
    static const int edges[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48};
    if (nsx_rng_chance(r, 0.4)) {
        int fit[sizeof edges / sizeof edges[0]], nfit = 0;
        for (size_t x = 0; x < sizeof edges / sizeof edges[0]; x++)
            if (edges[x] >= lo && edges[x] <= hi)
                fit[nfit++] = edges[x];
        if (nfit)
            return fit[nsx_rng_below(r, nfit)];
    }
    return lo + nsx_rng_below(r, hi - lo + 1);
}

/* One drawn indexer problem: the recipe and the reshaping of its inputs. */
typedef struct idraw {
    char recipe[256];
    int zero_w;      /* some weights set to 0 */
} idraw;

static void idraw_problem(uint64_t seed, unsigned caps, const nsx_model *m, idraw *d)
{
    nsx_rng r = {seed};
    memset(d, 0, sizeof *d);
    int acts[3], nact = 0;
    if (caps & NSX_IDX_RELU)
        acts[nact++] = NSX_IDX_ACT_RELU;
    if (caps & NSX_IDX_SOFTMAX)
        acts[nact++] = NSX_IDX_ACT_SOFTMAX;
    if (caps & NSX_IDX_IDENTITY)
        acts[nact++] = NSX_IDX_ACT_IDENTITY;
    static const char *const act_name[] = {"relu", "softmax", "identity"};
    const int act = acts[nsx_rng_below(&r, nact)];
    const int causal = !(caps & NSX_IDX_CAUSAL_OFF) || nsx_rng_chance(&r, 0.7);
    const int B = 1 + nsx_rng_chance(&r, 0.3);
    const int L = size_in(&r, 1, nsx_rng_chance(&r, 0.8) ? 24 : 48);
    const int Hi = size_in(&r, 1, nsx_rng_chance(&r, 0.7) ? 8 : 17);
    const int fp8 = nsx_fmt_is_fp8(m->idx);
    /* FP8 models: a few blocks of the model's size, sometimes a partial last one */
    int di;
    if (fp8 && m->idx_blk <= 64)
        di = m->idx_blk * (1 + nsx_rng_below(&r, 3)) - (nsx_rng_chance(&r, 0.2) ? nsx_rng_below(&r, m->idx_blk) : 0);
    else
        di = size_in(&r, 1, 33);
    /* k: 1, below, at and above the candidates (short rows) */
    const int ks[] = {1, 1 + nsx_rng_below(&r, L), L / 2 > 0 ? L / 2 : 1, L, L + 2};
    const int k = ks[nsx_rng_below(&r, 5)];
    static const char *const iscales[] = {"1", "0.25", "0.1875", "2", "-0.5", "0.0625"};
    const char *iscale = iscales[nsx_rng_below(&r, 6)];
    static const char *const dists[] = {"normal", "normal", "uniform", "heavy", "equal"};
    const char *dist = dists[nsx_rng_below(&r, 5)];
    const int ties = nsx_rng_chance(&r, 0.3);
    snprintf(d->recipe, sizeof d->recipe,
             "n=1 B=%d L=%d d=1 sel=indexer k=%d act=%s iscale=%s Hi=%d di=%d fmt=bf16 dist=%s%s%s", B, L, k,
             act_name[act], iscale, Hi, di, dist, causal ? "" : " causal=0", ties ? " ties=1" : "");
    if (fp8 ? nsx_rng_chance(&r, 0.8) : nsx_rng_chance(&r, 0.2)) /* vectors/recipe.h: iblocks */
        nsx_fz_put(d->recipe, sizeof d->recipe, " iblocks=%d", fp8 ? m->idx_blk : 1 + nsx_rng_below(&r, 8));
    d->zero_w = nsx_rng_chance(&r, 0.2);
}

/* One case: built, reshaped, its golden selection and scores. */
static int icase_build(const idraw *d, uint64_t seed, nsx_recipe *rc, nsx_instance *b, nsx_err *err)
{
    int rcode = nsx_recipe_parse(d->recipe, rc, err);
    if (!rcode)
        rcode = nsx_build(rc, seed, b, err);
    if (rcode)
        return rcode;
    nsx_rng r = {seed ^ 0x5eedb10c5ull};
    const nsx_problem *p = &b->p;
    const size_t rows = (size_t)p->B * p->L;
    if (d->zero_w)
        for (size_t t = 0; t < rows * p->sel.Hi; t++)
            if (nsx_rng_chance(&r, 0.3))
                b->idx_w[t] = 0.0;
    return nsx_ref_select(p, &b->in, b->sel_out, b->sel_scores, NULL, NULL, err);
}

/* The kernel's outputs as an indexer candidate file (float32 scores are
   exact in F32; entries off the candidates written as they came). */
static int write_icand(const char *path, const nsx_problem *p, const double *scores, const int32_t *sel,
                       const nsx_kernel *k, const nsx_model *m, nsx_err *err)
{
    nsx_st st = {0};
    char model[160];
    const int64_t sshape[3] = {p->B, p->L, p->L}, kshape[3] = {p->B, p->L, p->sel.k};
    int rc = 0;
    if (scores)
        rc = nsx_st_add_f64(&st, "sel_scores", NSX_DTYPE_F64, 3, sshape, scores, err);
    if (!rc && sel)
        rc = nsx_st_add_i32(&st, "sel", 3, kshape, sel, err);
    if (!rc)
        rc = nsx_st_set_meta(&st, "nsimplex.model", nsx_model_format(m, model, sizeof model), err);
    if (!rc && k->info->name)
        rc = nsx_st_set_meta(&st, "nsimplex.kernel", k->info->name, err);
    if (!rc)
        rc = nsx_st_write(path, &st, err);
    nsx_st_free(&st);
    return rc;
}

/* Saves the failing case: the vector (expected values from the reference),
   the candidate and a text file. */
static int isave(const char *dir, const char *stem, nsx_instance *b, const nsx_recipe *rc, const double *scores,
                 const int32_t *sel, const nsx_kernel *k, const nsx_model *m, const char *about, char *vpath,
                 size_t vlen, nsx_err *err)
{
    char cand[1024], txt[1024];
    snprintf(vpath, vlen, "%s/%s.safetensors", dir, stem);
    snprintf(cand, sizeof cand, "%s/%s.candidate.safetensors", dir, stem);
    snprintf(txt, sizeof txt, "%s/%s.txt", dir, stem);
    int r = nsx_build_expect(b, rc, NULL, NULL, err);
    if (r)
        return r;
    char desc[700];
    snprintf(desc, sizeof desc, "nsimplex fuzz --indexer failure: %.600s", about);
    for (char *x = desc; *x; x++)
        if (*x == '\n')
            *x = ' ';
    nsx_case_info info = nsx_build_info(b, stem, "fuzz", desc);
    if ((r = nsx_case_write(vpath, &b->p, &info, &b->in, &b->out, err)) ||
        (r = write_icand(cand, &b->p, scores, sel, k, m, err)))
        return r;
    char text[6000];
    snprintf(text, sizeof text, "%s\nvector: %s\ncandidate: %s (the kernel's indexer outputs)\n"
                                "replay: nsimplex check %s %s   (exit 1: the failure)\n",
             about, vpath, cand, vpath, cand);
    nsx_atomic a;
    if (!(r = nsx_atomic_open(&a, txt, err)) && !(r = nsx_atomic_write(&a, text, strlen(text), err)))
        r = nsx_atomic_commit(&a, err);
    return r;
}

/* 1 for the kinds of a kernel that did not return outputs (nothing to shrink by or save) */
static int krc_fault(const char *kind)
{
    return kind && strcmp(kind, "scores") != 0 && strcmp(kind, "selection") != 0;
}

/* The NSX_FZ_* bit of a failure kind ijudge names */
static unsigned kind_bit(const char *kind)
{
    static const struct {
        const char *name;
        unsigned bit;
    } t[] = {{"unsupported", NSX_FZ_UNSUPPORTED}, {"error", NSX_FZ_ERROR},     {"signal", NSX_FZ_SIGNAL},
             {"timeout", NSX_FZ_TIMEOUT},         {"exit", NSX_FZ_EXIT},       {"overflow", NSX_FZ_OVERFLOW}};
    for (size_t x = 0; x < sizeof t / sizeof t[0]; x++)
        if (strcmp(kind, t[x].name) == 0)
            return t[x].bit;
    return NSX_FZ_BOUND; /* scores, selection */
}

/* The failure kind of a kernel error (runner.h's faults) */
static const char *fault_kind(const nsx_kernel *k, int rc)
{
    if (rc == NSX_E_KERNEL_REFUSED)
        return "unsupported";
    if (!k->iso)
        return "error";
    switch (k->iso->fault) {
    case NSX_KFAULT_SIGNAL: return "signal";
    case NSX_KFAULT_TIMEOUT: return "timeout";
    case NSX_KFAULT_EXIT: return "exit";
    case NSX_KFAULT_OVERFLOW: return "overflow";
    default: return "error";
    }
}

/* Runs k's indexer on b and judges it under m: *kind NULL (a pass, *ratio its worst score
   error/bound; *differ its selection rows valid but not the golden set), a failure kind with its
   first note, or *skip (not applicable under m); *cut when the call was stopped at the deadline
   (not judged).  The kernel's outputs go to *ps, *psel
   (malloc'd, the caller frees).  Returns 0, or a fatal error kind with err set. */
static int ijudge(const nsx_kernel *k, const nsx_model *m, unsigned caps, const nsx_instance *b, double **ps,
                  int32_t **psel, const char **kind, char *note, size_t nlen, int *skip, int *cut, double *ratio,
                  size_t *differ, nsx_err *err)
{
    const nsx_problem *p = &b->p;
    const size_t LL = (size_t)p->B * p->L * p->L, nsel = nsx_sel_size(p);
    double *scores = *ps = malloc(LL * sizeof *scores);
    int32_t *sel = *psel = malloc(nsel * sizeof *sel);
    *kind = NULL, *skip = 0, *cut = 0, *ratio = 0, *differ = 0, note[0] = '\0';
    if (!scores || !sel)
        return nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    for (size_t t = 0; t < LL; t++)
        scores[t] = NAN;
    for (size_t t = 0; t < nsel; t++)
        sel[t] = -1;
    nsx_err e = {0};
    int krc = nsx_kernel_run_indexer(k, p, &b->in, sel, scores, &e);
    if (krc && k->iso && k->iso->fault == NSX_KFAULT_CUT) {
        *cut = 1;
        return 0;
    }
    if (krc && nsx_err_is_fatal(krc) && krc != NSX_E_KERNEL_ERROR)
        return nsx_err_set(err, krc, "%s", e.msg);
    if (krc) {
        *kind = fault_kind(k, krc);
        snprintf(note, nlen, "%s", e.msg);
        return 0;
    }
    const nsx_idx_candidate cand = {caps & NSX_IDX_WRITES_SCORES ? scores : NULL,
                                    caps & NSX_IDX_WRITES_SEL ? sel : NULL};
    nsx_check_report rep;
    int jr = nsx_check_indexer(p, &b->in, &b->out, &cand, m, &rep, &e);
    if (jr == NSX_E_NOT_APPLICABLE) {
        *skip = 1;
        return 0;
    }
    if (jr)
        return nsx_err_set(err, jr, "%s", e.msg);
    if (!rep.pass) {
        *kind = rep.s_failed ? "scores" : "selection";
        snprintf(note, nlen, "%s", rep.nnotes ? rep.notes[0] : "");
    } else {
        *ratio = rep.worst_s.found ? rep.worst_s.ratio : 0;
        *differ = rep.sel_differ;
    }
    return 0;
}

/* b's batch bsel and its first L positions, as a new case with its golden selection. */
static int iprefix(const nsx_instance *b, int bsel, int L, nsx_instance *out, nsx_err *err)
{
    nsx_problem p = b->p;
    p.B = 1;
    p.L = L;
    memset(out, 0, sizeof *out);
    if (nsx_instance_alloc(out, &p))
        return nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    nsx_tensor_view from[NSX_MAX_INPUTS], to[NSX_MAX_INPUTS];
    int n = nsx_instance_inputs((nsx_instance *)b, from);
    nsx_instance_inputs(out, to);
    for (int t = 0; t < n; t++)
        memcpy(to[t].x, from[t].x + (size_t)bsel * b->p.L * from[t].per_pos, (size_t)L * to[t].per_pos * sizeof(double));
    return nsx_ref_select(&out->p, &out->in, out->sel_out, out->sel_scores, NULL, NULL, err);
}

/*
 * Shrinks a failing case b (in place): one batch, then the shortest prefix of positions found
 * (doubling, then bisection) on which the kernel still fails.  Only failing cases are kept, so
 * the result fails whatever the bug; *tries and *kept count the candidates.  0 or a fatal error.
 */
static int ishrink(const nsx_kernel *k, const nsx_model *m, unsigned caps, nsx_instance *b, int *tries, int *kept,
                   nsx_err *err)
{
    *tries = *kept = 0;
    for (int stage = 0; stage < 2; stage++) {
        int lo = 0, hi = b->p.L; /* stage 1: a prefix of length in (lo, hi] fails at hi */
        for (int step = 0; step < 64; step++) {
            int bsel = 0, L = b->p.L;
            if (stage == 0) {
                if (step >= b->p.B || b->p.B == 1)
                    break;
                bsel = step;
            } else {
                if (hi - lo <= 1)
                    break;
                /* doubling from 1 while nothing smaller failed yet, then bisection */
                L = lo == 0 && step < 30 && (1 << step) < hi ? 1 << step : lo + (hi - lo) / 2;
                if (L <= lo)
                    L = lo + 1;
            }
            nsx_instance c;
            int rc = iprefix(b, bsel, L, &c, err);
            if (rc) {
                nsx_instance_free(&c);
                if (nsx_err_is_fatal(rc))
                    return rc;
                if (stage == 1)
                    lo = L;
                continue;
            }
            double *sc = NULL, ratio;
            size_t differ;
            int32_t *se = NULL;
            const char *kind;
            char note[256];
            int skip, cut;
            (*tries)++;
            rc = ijudge(k, m, caps, &c, &sc, &se, &kind, note, sizeof note, &skip, &cut, &ratio, &differ, err);
            free(sc), free(se);
            if (rc) {
                nsx_instance_free(&c);
                return rc;
            }
            if (kind && !skip && !cut) {
                (*kept)++;
                nsx_instance_free(b);
                *b = c;
                if (stage == 0)
                    break;
                hi = L;
            } else {
                nsx_instance_free(&c);
                if (stage == 1)
                    lo = L;
            }
        }
    }
    return 0;
}

/* A case in one line, as drawn by a recipe. */
static void icase_text(const nsx_instance *b, char *buf, size_t len)
{
    static const char *const act_name[] = {"relu", "softmax", "identity"};
    const nsx_problem *p = &b->p;
    snprintf(buf, len, "B=%d L=%d k=%d act=%s iscale=%.17g Hi=%d di=%d causal=%d", p->B, p->L, p->sel.k,
             act_name[p->sel.act], p->sel.idx_scale, p->sel.Hi, p->sel.di, p->causal);
}

static int indexer_run(const nsx_kernel *k, const nsx_fuzz_opts *o, nsx_fuzz_summary *s, nsx_err *err)
{
    nsx_model m;
    memset(s, 0, sizeof *s);
    int rc = o->model ? (m = *o->model, 0) : nsx_model_from_kernel_indexer(k->info, &m, err);
    if (rc)
        return rc;
    const unsigned caps = nsx_kernel_indexer_caps(k->info);
    if (!(caps & (NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL)) ||
        !(caps & (NSX_IDX_RELU | NSX_IDX_SOFTMAX | NSX_IDX_IDENTITY)))
        return nsx_err_set(err, NSX_E_INPUT, "the kernel declares no indexer that writes scores or a selection "
                                             "for some activation (info->indexer = 0x%x)", caps);
    if (o->log)
        fprintf(o->log, "nsimplex fuzz: the kernel's indexer (nsx_kernel_indexer) alone, judged under %s\n",
                nsx_model_format(&m, (char[128]){0}, 128));
    const double t0 = now();
    double paused = 0;
    int max_failures = o->max_failures < 1 ? 1 : o->max_failures > NSX_FUZZ_MAX_FAILURES ? NSX_FUZZ_MAX_FAILURES
                                                                                        : o->max_failures;
    uint64_t end = o->start;
    double worst = 0; /* the largest score error / bound over the passing problems (tightness) */
    if (k->iso)
        k->iso->deadline = o->seconds > 0 ? nsx_kernel_clock() + o->seconds : 0;
    for (uint64_t idx = o->start;; idx++) {
        double t = now() - t0 - paused;
        if ((o->count && idx - o->start >= o->count) || ((o->seconds > 0 || !o->count) && t >= o->seconds))
            break;
        const uint64_t pseed = nsx_fz_problem_seed(o->seed, idx);
        idraw d;
        idraw_problem(pseed, caps, &m, &d);
        char text[400];
        snprintf(text, sizeof text, "%s%s", d.recipe, d.zero_w ? " | zero-weights" : "");
        nsx_recipe rc_;
        nsx_instance b = {0};
        nsx_err e = {0};
        end = idx + 1;
        if (icase_build(&d, pseed, &rc_, &b, &e)) {
            nsx_instance_free(&b);
            if (nsx_err_is_fatal(e.kind))
                return nsx_err_set(err, e.kind, "%s", e.msg);
            s->skipped++; /* an undecidable comparison at the precision cap */
            continue;
        }
        s->problems++;
        const char *kind = NULL;
        char note[512] = "";
        double *scores = NULL, ratio = 0;
        int32_t *sel = NULL;
        int skip = 0, cut = 0;
        size_t differ = 0;
        int jr = ijudge(k, &m, caps, &b, &scores, &sel, &kind, note, sizeof note, &skip, &cut, &ratio, &differ, &e);
        if (cut) {
            s->problems--;
            s->cut = 1;
            s->cut_index = idx;
            free(scores), free(sel), nsx_instance_free(&b);
            break;
        }
        if (jr) {
            free(scores), free(sel), nsx_instance_free(&b);
            return nsx_err_set(err, jr, "%s", e.msg);
        }
        if (skip) {
            s->skipped++;
        } else {
            s->mpfr++;
            if (!kind && ratio > worst)
                worst = ratio, s->worst_o_index = idx;
            s->sel_differ += differ;
        }
        if (o->log && o->verbose)
            fprintf(o->log, "%s problem %" PRIu64 ": %s%s%s\n", kind ? "FAIL" : "pass", idx, text, kind ? "\n  " : "",
                    kind ? note : "");
        if (kind) {
            nsx_fuzz_failure *f = &s->fail[s->nfail++];
            memset(f, 0, sizeof *f);
            f->index = idx;
            f->seed = pseed;
            f->kinds = f->kind = kind_bit(kind);
            f->found = now() - t0 - paused;
            snprintf(f->draw, sizeof f->draw, "%s", text);
            snprintf(f->note, sizeof f->note, "%.250s", note);
            double t1 = now();
            /* shrinking and saving are not bounded by the search's budget */
            double deadline = k->iso ? k->iso->deadline : 0;
            if (k->iso)
                k->iso->deadline = 0;
            int tries = 0, kept = 0;
            const char *kind0 = kind;
            char shrunk[200];
            if (!krc_fault(kind)) {
                int sr = ishrink(k, &m, caps, &b, &tries, &kept, &e);
                if (sr) {
                    free(scores), free(sel), nsx_instance_free(&b);
                    return nsx_err_set(err, sr, "%s", e.msg);
                }
                if (kept) { /* the shrunk case's outputs and note */
                    double ratio;
                    int skip, cut;
                    free(scores), free(sel);
                    size_t differ;
                    if ((sr = ijudge(k, &m, caps, &b, &scores, &sel, &kind, note, sizeof note, &skip, &cut, &ratio,
                                     &differ, &e))) {
                        free(scores), free(sel), nsx_instance_free(&b);
                        return nsx_err_set(err, sr, "%s", e.msg);
                    }
                    if (!kind)
                        kind = kind0;
                }
            }
            icase_text(&b, shrunk, sizeof shrunk);
            if (k->iso)
                k->iso->deadline = deadline;
            char name[128], path[256], about[1600];
            nsx_printable(name, sizeof name, k->info->name ? k->info->name : "?");
            nsx_printable(path, sizeof path, k->path ? k->path : "");
            snprintf(about, sizeof about,
                     "kernel: %s%s%s (indexer)\n"
                     "seed %" PRIu64 ", problem %" PRIu64 " (problem seed 0x%016" PRIx64 "), found after %.1f s\n"
                     "drawn: %s\n"
                     "failed: %s\n"
                     "shrunk (%d of %d candidates kept): %s\n"
                     "reproduce: %s --seed %" PRIu64 " --start %" PRIu64 " --count 1%s%s",
                     name, k->path ? " " : "", path, o->seed, idx, pseed, f->found, text, kind0, kept, tries, shrunk,
                     /* a callback (the Python package's fuzz_indexer) has no command line of its own */
                     !k->path && k->indexer ? "the same fuzz run (a callback indexer) with" : "nsimplex fuzz --indexer",
                     o->seed, idx, k->path ? " --kernel " : "", path);
            snprintf(f->shrunk, sizeof f->shrunk, "%s", shrunk);
            snprintf(f->note, sizeof f->note, "%.250s", note); /* the shrunk case's */
            nsx_recipe rs = rc_;
            rs.p = b.p; /* the flags follow the shrunk shape */
            if (o->out_dir && !krc_fault(kind)) {
                char stem[96];
                nsx_err se = {0};
                snprintf(stem, sizeof stem, "fail-%" PRIu64 "-%" PRIu64, o->seed, idx);
                if (isave(o->out_dir, stem, &b, &rs, caps & NSX_IDX_WRITES_SCORES ? scores : NULL,
                          caps & NSX_IDX_WRITES_SEL ? sel : NULL, k, &m, about, f->path, sizeof f->path, &se)) {
                    fprintf(stderr, "nsimplex fuzz: problem %" PRIu64 " failed, but it could not be saved: %s\n", idx,
                            se.msg);
                    f->path[0] = '\0';
                } else {
                    f->replays = 1;
                }
            }
            if (o->log) {
                fprintf(o->log, "FAIL %s\n  %s\n  %s\n", kind0, about, note);
                if (f->path[0])
                    fprintf(o->log, "  saved: %s (nsimplex check VECTOR VECTOR.candidate fails it)\n", f->path);
                fflush(o->log);
            }
            paused += now() - t1;
        }
        free(scores);
        free(sel);
        nsx_instance_free(&b);
        if (s->nfail == max_failures)
            break;
    }
    s->seconds = now() - t0 - paused;
    s->worst_o = worst; /* the scores' */
    if (o->log) {
        char mt[128];
        fprintf(o->log,
                "nsimplex fuzz: seed %" PRIu64 ", indexer problems %" PRIu64 "..%" PRIu64 " in %.1f s: %" PRIu64
                " judged against MPFR under %s (worst score error/bound %.3g where passing; %" PRIu64
                " selection rows valid but not the golden set: ties), %" PRIu64 " skipped, %d failure%s: %s\n",
                o->seed, o->start, end > o->start ? end - 1 : o->start, s->seconds, s->mpfr,
                nsx_model_format(&m, mt, sizeof mt), worst, s->sel_differ, s->skipped, s->nfail,
                s->nfail == 1 ? "" : "s",
                s->nfail ? "FAIL" : s->mpfr ? "PASS" : "NOTHING JUDGED (not a pass)");
        if (s->cut)
            fprintf(o->log, "nsimplex fuzz: problem %" PRIu64 " was stopped at the end of the budget, inside the "
                            "kernel's call (not judged)\n", s->cut_index);
    }
    return 0;
}

int nsx_fuzz_indexer_run(const nsx_kernel *k, const nsx_fuzz_opts *o, nsx_fuzz_summary *s, nsx_err *err)
{
    /* isolated calls to a fork server (runner.h), when one starts; else a
       child forked per call (this loop runs no thread) */
    nsx_err e = {0};
    const int own_srv = k->iso && !k->iso->srv && nsx_kernel_iso_start(k->iso, k, &e) == 0;
    int rc = indexer_run(k, o, s, err);
    if (own_srv)
        nsx_kernel_iso_stop(k->iso);
    return rc;
}
