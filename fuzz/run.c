/*
 * The fuzz loop (fuzz/fuzz.h): problems in seed order until the budget,
 * each failure shrunk and saved, a progress line every few seconds and a
 * summary at the end.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/budget.h"
#include "fuzz/fuzz.h"
#include "io/json.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void nsx_fuzz_opts_default(nsx_fuzz_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seconds = 10;
    o->seed = 1;
    o->max_failures = 1;
    o->shrink_seconds = 30;
    o->progress = 5;
}

static void progress(const nsx_fuzz_opts *o, const nsx_fuzz_summary *s, double t)
{
    if (o->log)
        fprintf(o->log,
                "fuzz: %6.1f s  %" PRIu64 " problems (%" PRIu64 " mpfr, %" PRIu64 " f64-loop, %" PRIu64
                " skipped)  %d failure%s\n",
                t, s->problems, s->mpfr, s->loop, s->skipped, s->nfail, s->nfail == 1 ? "" : "s");
    if (o->log)
        fflush(o->log);
}

/* Shrinks, saves and reports failure f of case c. */
static int on_failure(const nsx_kernel *k, const nsx_model *m, const nsx_fuzz_opts *o, nsx_fz_case *c,
                      nsx_fuzz_failure *f, nsx_err *err)
{
    /* shrinking and saving are not bounded by the search's budget */
    double deadline = k->iso ? k->iso->deadline : 0;
    if (k->iso)
        k->iso->deadline = 0;
    nsx_fz_shrink_stats st;
    int rc = nsx_fz_shrink(k, m, c, f->kind, o->shrink_seconds, &st, err);
    if (rc)
        return rc;
    f->shrink = st.seconds;
    nsx_fz_case_text(c, f->shrunk, sizeof f->shrunk);
    char about[2048], stem[96], name[128], path[256], timeout[48] = "";
    if (k->iso && f->kind == NSX_FZ_TIMEOUT) /* the limit it was found under */
        snprintf(timeout, sizeof timeout, " --call-timeout %g", k->iso->timeout);
    /* a library's name and path are printed, not interpreted: escapes out */
    nsx_printable(name, sizeof name, k->info->name ? k->info->name : "?");
    nsx_printable(path, sizeof path, k->path ? k->path : "");
    snprintf(stem, sizeof stem, "fail-%" PRIu64 "-%" PRIu64, o->seed, f->index);
    snprintf(about, sizeof about,
             "kernel: %s%s%s\n"
             "seed %" PRIu64 ", problem %" PRIu64 " (problem seed 0x%016" PRIx64 "), found after %.1f s\n"
             "drawn: %s\n"
             "failed: %s\n"
             "shrunk in %.1f s (%d of %d candidates kept): %s\n"
             "reproduce: nsimplex fuzz --seed %" PRIu64 " --start %" PRIu64 " --count 1%s%s%s%s",
             name, k->path ? " " : "", path, o->seed, f->index,
             f->seed, f->found, f->draw, nsx_fz_kind_name(f->kinds), st.seconds, st.steps, st.tries, f->shrunk,
             o->seed, f->index, k->path ? " --kernel " : "", path, timeout,
             o->bwd == NSX_FZ_BWD_ONLY ? " --bwd" : o->bwd == NSX_FZ_BWD_NONE ? " --no-bwd" : "");
    nsx_fz_verdict v = {0};
    int judged = 0;
    if (o->out_dir) {
        /* a failure found stays a failure (exit 1) when it cannot be saved:
           the save's own error gets a line of its own */
        nsx_err se = {0};
        snprintf(f->path, sizeof f->path, "%s/%s.safetensors", o->out_dir, stem);
        if (nsx_fz_save(o->out_dir, stem, k, m, c, about, &v, &f->replays, &se)) {
            fprintf(stderr, "nsimplex fuzz: problem %" PRIu64 " failed, but it could not be saved: %s\n",
                    f->index, se.msg);
            nsx_fz_verdict_free(&v);
            f->path[0] = '\0';
            f->replays = 0;
        } else {
            judged = 1;
            if (v.status != NSX_FZ_FAIL)
                f->path[0] = '\0';
        }
    }
    if (!judged && (rc = nsx_fz_judge(k, m, c, NSX_FZ_REF_AUTO, &v, err)))
        return rc;
    if (k->iso)
        k->iso->deadline = deadline;
    snprintf(f->note, sizeof f->note, "%s", v.status == NSX_FZ_FAIL ? v.note : "(the shrunk case no longer fails)");
    nsx_fz_verdict_free(&v);
    if (o->log) {
        fprintf(o->log, "FAIL %s\n  %s\n  %s\n", nsx_fz_kind_name(f->kind), about, f->note);
        if (f->path[0])
            fprintf(o->log, "  saved: %s%s\n", f->path,
                    f->replays ? " (nsimplex check VECTOR VECTOR.candidate fails it)" : "");
        fflush(o->log);
    }
    return 0;
}

int nsx_fuzz_run(const nsx_kernel *k, const nsx_fuzz_opts *o, nsx_fuzz_summary *s, nsx_err *err)
{
    nsx_model m;
    memset(s, 0, sizeof *s);
    int rc = o->model ? (m = *o->model, 0) : nsx_model_from_kernel(k->info, &m, err);
    if (rc)
        return rc;
    const double t0 = now();
    double paused = 0, next_progress = o->progress;
    int max_failures = o->max_failures < 1 ? 1 : o->max_failures;
    if (max_failures > NSX_FUZZ_MAX_FAILURES)
        max_failures = NSX_FUZZ_MAX_FAILURES;
    uint64_t end = o->start;
    if (k->iso)
        k->iso->deadline = o->seconds > 0 ? nsx_kernel_clock() + o->seconds : 0;
    for (uint64_t idx = o->start;; idx++) {
        /* the count, and the time (which alone bounds a run without a
           count, so --seconds 0 without --count runs nothing) */
        double t = now() - t0 - paused;
        if ((o->count && idx - o->start >= o->count) || ((o->seconds > 0 || !o->count) && t >= o->seconds))
            break;
        if (o->progress > 0 && t >= next_progress) {
            progress(o, s, t);
            next_progress += o->progress;
        }
        nsx_fz_draw d;
        char text[800];
        const uint64_t pseed = nsx_fz_problem_seed(o->seed, idx);
        const int bwd = nsx_fz_bwd_pick(pseed, o->bwd, k->info);
        nsx_kernel_info bwd_info;
        nsx_fz_draw_problem(pseed, bwd ? nsx_fz_bwd_info(k->info, &bwd_info) : k->info, &m, &d);
        if (bwd)
            nsx_fz_draw_bwd(&d);
        nsx_fz_draw_text(&d, text, sizeof text);
        s->rejected += (uint64_t)d.rejected;
        nsx_fz_case c;
        nsx_err e = {0};
        end = idx + 1;
        if (nsx_fz_case_build(&d, &c, &e)) {
            if (nsx_err_is_fatal(e.kind))
                return nsx_err_set(err, e.kind, "%s", e.msg);
            s->rejected++;
            continue;
        }
        /* a problem over the default work budget is not run (core/budget.h) */
        if (nsx_budget_check(&c.b.p, NULL, "fuzz", NULL, &e)) {
            nsx_fz_case_free(&c);
            s->rejected++;
            continue;
        }
        if (o->accept) {
            nsx_kernel_problem kp;
            nsx_problem_to_kernel(&c.b.p, NULL, &kp);
            if (!o->accept(o->accept_ctx, &kp)) {
                s->declined++;
                nsx_fz_case_free(&c);
                continue;
            }
        }
        s->problems++;
        s->pairs += c.b.npairs > 0;
        s->heads += c.heads;
        nsx_fz_verdict v;
        if ((rc = nsx_fz_judge(k, &m, &c, NSX_FZ_REF_AUTO, &v, err))) {
            nsx_fz_case_free(&c);
            return rc;
        }
        if (v.status == NSX_FZ_SKIP && k->iso && k->iso->fault == NSX_KFAULT_CUT) {
            /* the budget ended inside the kernel's call: not judged */
            s->problems--;
            s->pairs -= c.b.npairs > 0;
            s->heads -= (uint64_t)c.heads;
            s->cut = 1;
            s->cut_index = idx;
            nsx_fz_verdict_free(&v);
            nsx_fz_case_free(&c);
            break;
        }
        if (v.status == NSX_FZ_SKIP)
            s->skipped++;
        else if (v.ref == NSX_FZ_REF_MPFR)
            s->mpfr++;
        else
            s->loop++;
        s->bwd += (uint64_t)v.bwd;
        if (o->log && o->verbose)
            fprintf(o->log, "%s problem %" PRIu64 ": %s%s%s\n",
                    v.status == NSX_FZ_PASS ? "pass" : v.status == NSX_FZ_SKIP ? "skip" : "FAIL", idx, text,
                    v.status == NSX_FZ_PASS ? "" : "\n  ", v.status == NSX_FZ_PASS ? "" : v.note);
        if (v.status == NSX_FZ_FAIL) {
            nsx_fuzz_failure *f = &s->fail[s->nfail++];
            memset(f, 0, sizeof *f);
            f->index = idx;
            f->seed = d.seed;
            f->kinds = v.kinds;
            f->kind = nsx_fz_primary(v.kinds);
            f->found = now() - t0 - paused;
            snprintf(f->draw, sizeof f->draw, "%s", text);
            nsx_fz_verdict_free(&v);
            double t1 = now();
            rc = on_failure(k, &m, o, &c, f, err);
            paused += now() - t1;
            nsx_fz_case_free(&c);
            if (rc)
                return rc;
            if (s->nfail == max_failures)
                break;
            continue;
        }
        nsx_fz_verdict_free(&v);
        nsx_fz_case_free(&c);
    }
    s->seconds = now() - t0 - paused;
    if (o->log) {
        progress(o, s, s->seconds);
        fprintf(o->log,
                "nsimplex fuzz: seed %" PRIu64 ", problems %" PRIu64 "..%" PRIu64 " in %.1f s: %" PRIu64
                " judged (%" PRIu64 " against MPFR, %" PRIu64 " against the f64 loop), %" PRIu64
                " skipped, %d failure%s: %s\n",
                o->seed, o->start, end > o->start ? end - 1 : o->start, s->seconds,
                s->mpfr + s->loop, s->mpfr, s->loop, s->skipped, s->nfail, s->nfail == 1 ? "" : "s",
                s->nfail ? "FAIL" : s->mpfr + s->loop ? "PASS" : "NOTHING JUDGED (not a pass)");
        fprintf(o->log, "nsimplex fuzz: %" PRIu64 " problems carried leak pairs, probes or batch copies, %" PRIu64
                        " the head permutation\n", s->pairs, s->heads);
        if (nsx_kernel_backward_order(k->info) && o->bwd != NSX_FZ_BWD_NONE)
            fprintf(o->log, "nsimplex fuzz: %" PRIu64 " problems had their gradients judged (the backward pass)\n",
                    s->bwd);
        if (s->cut)
            fprintf(o->log,
                    "nsimplex fuzz: problem %" PRIu64 " was stopped at the end of the budget, inside the kernel's "
                    "call (not judged; a hang? nsimplex fuzz --seed %" PRIu64 " --start %" PRIu64
                    " --count 1 judges it under --call-timeout)\n",
                    s->cut_index, o->seed, s->cut_index);
        if (s->declined)
            fprintf(o->log, "nsimplex fuzz: %" PRIu64 " drawn problems declined by the caller (not run)\n",
                    s->declined);
    }
    return 0;
}
