/*
 * The fuzz loop (fuzz/fuzz.h): problems in seed order until the budget,
 * each failure shrunk and saved, a progress line every few seconds and a
 * summary at the end.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpfr.h>

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
                "fuzz: %6.1f s  %" PRIu64 " problems (%" PRIu64 " certified, %" PRIu64 " f64-loop, %" PRIu64
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
    /* nondeterminism: the same problem judged again at once; a failure
       that does not come back is reported as such, and not shrunk (a
       shrink step could not tell a smaller failing case from luck) */
    int rc;
    if (f->kind != NSX_FZ_TIMEOUT) {
        nsx_fz_case again;
        nsx_fz_verdict v2;
        if ((rc = nsx_fz_case_copy(c, &again, err)))
            return rc;
        rc = nsx_fz_judge(k, m, &again, NSX_FZ_REF_AUTO, &v2, err);
        f->flaky = !rc && v2.status == NSX_FZ_PASS;
        nsx_fz_verdict_free(&v2);
        nsx_fz_case_free(&again);
        if (rc)
            return rc;
    }
    nsx_fz_shrink_stats st = {0};
    if (!f->flaky && (rc = nsx_fz_shrink(k, m, c, f->kind, o->shrink_seconds, &st, err)))
        return rc;
    f->shrink = st.seconds;
    char shrunk_in[32];
    snprintf(shrunk_in, sizeof shrunk_in, " in %.1f s", st.seconds);
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
             "%s%s%s (%d of %d candidates kept): %s\n"
             "reproduce: nsimplex fuzz --seed %" PRIu64 " --start %" PRIu64 " --count 1%s%s%s%s%s",
             name, k->path ? " " : "", path, o->seed, f->index,
             f->seed, f->found, f->draw, nsx_fz_kind_name(f->kinds),
             f->flaky ? "NONDETERMINISTIC: the same problem passed when judged again at once, so the kernel's "
                        "result varies from run to run (threads? uninitialised memory?); not shrunk; rerun with "
                        "--threads 1 to see whether it is a race\n" : "",
             f->flaky ? "not shrunk" : "shrunk", f->flaky ? "" : shrunk_in, st.steps, st.tries, f->shrunk,
             o->seed, f->index, k->path ? " --kernel " : "", path, timeout, f->flaky ? " --threads 1" : "",
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
        fprintf(o->log, "FAIL %s%s\n  %s\n  %s\n", nsx_fz_kind_name(f->kind), f->flaky ? " (nondeterministic)" : "",
                about, f->note);
        if (f->path[0])
            fprintf(o->log, "  saved: %s%s\n", f->path,
                    f->replays ? " (nsimplex check VECTOR VECTOR.candidate fails it)" : "");
        fflush(o->log);
    }
    return 0;
}

int nsx_fz_d_band(int d)
{
    return d <= 32 ? 0 : d <= 64 ? 1 : d <= 128 ? 2 : d <= 192 ? 3 : 4;
}

/* A judged problem (passed or failed) into the summary. */
static void tally(nsx_fuzz_summary *s, const nsx_fz_case *c, const nsx_fz_draw *d, const nsx_fz_verdict *v,
                  uint64_t idx)
{
    const nsx_problem *p = &c->b.p;
    if (v->ref == NSX_FZ_REF_MPFR)
        s->mpfr++;
    else
        s->loop++;
    s->by_n[p->n]++;
    s->by_L[p->L < 10 ? 0 : p->L < 100 ? 1 : p->L < 1000 ? 2 : 3]++;
    s->by_d[nsx_fz_d_band(p->d)]++;
    s->cls_judged[d->cls]++;
    s->tuples += v->tuples;
    if (p->L > 128 || p->d >= 128 || p->dv >= 128)
        s->tile_tuples += v->tuples;
    if (v->worst_o > s->worst_o) {
        s->worst_o = v->worst_o;
        s->worst_o_index = idx;
    }
    if (v->worst_lse > s->worst_lse) {
        s->worst_lse = v->worst_lse;
        s->worst_lse_index = idx;
    }
}

static void summary_text(const nsx_fuzz_summary *s, FILE *f)
{
    fprintf(f, "nsimplex fuzz: worst error/bound ratio: o %.3g (problem %" PRIu64 "), lse %.3g (problem %" PRIu64 ")\n",
            s->worst_o, s->worst_o_index, s->worst_lse, s->worst_lse_index);
    fprintf(f, "nsimplex fuzz: shapes judged: n");
    for (int n = 1; n <= NSX_MAX_ORDER; n++)
        if (s->by_n[n])
            fprintf(f, " %d:%" PRIu64, n, s->by_n[n]);
    static const char *const Ls[NSX_FZ_LDEC] = {"1-9", "10-99", "100-999", "1000+"};
    static const char *const ds[NSX_FZ_DBANDS] = {"1-32", "33-64", "65-128", "129-192", "193-256"};
    fprintf(f, "; L");
    for (int x = 0; x < NSX_FZ_LDEC; x++)
        fprintf(f, " %s:%" PRIu64, Ls[x], s->by_L[x]);
    fprintf(f, "; d");
    for (int x = 0; x < NSX_FZ_DBANDS; x++)
        fprintf(f, " %s:%" PRIu64, ds[x], s->by_d[x]);
    fprintf(f, "\n");
    /* with several workers the seconds are summed over the problems (worker
       seconds), and the rate is per worker second times the workers */
    const int w = s->jobs > 1 ? s->jobs : 1;
    if (w > 1)
        fprintf(f, "nsimplex fuzz: by class (%d at once; seconds summed over the workers):", w);
    else
        fprintf(f, "nsimplex fuzz: by class:");
    for (int x = 0; x < NSX_FZ_CLASSES; x++)
        fprintf(f, "%s %s %" PRIu64 " in %.1f s (%.1f/s)", x ? "," : "", nsx_fz_class_name(x), s->cls_judged[x],
                s->cls_seconds[x], s->cls_seconds[x] > 0 ? w * (double)s->cls_judged[x] / s->cls_seconds[x] : 0.0);
    fprintf(f, "; %" PRIu64 " tuples judged, %.1f%% in problems with L > 128 or d >= 128\n", s->tuples,
            s->tuples ? 100.0 * (double)s->tile_tuples / (double)s->tuples : 0.0);
}

void nsx_fuzz_summary_json(const nsx_fuzz_summary *s, const nsx_fuzz_opts *o, nsx_buf *b)
{
    nsx_buf_printf(b, "{\"seed\":%" PRIu64 ",\"start\":%" PRIu64 ",\"problems\":%" PRIu64
                      ",\"judged\":%" PRIu64 ",\"certified\":%" PRIu64 ",\"loop\":%" PRIu64
                      ",\"skipped\":%" PRIu64 ",\"failures\":%d",
                   o->seed, o->start, s->problems, s->mpfr + s->loop, s->mpfr, s->loop, s->skipped, s->nfail);
    nsx_buf_printf(b, ",\"jobs\":%d", s->jobs > 1 ? s->jobs : 1);
    nsx_buf_json_field(b, "seconds", s->seconds);
    nsx_buf_printf(b, ",\"pass\":%s", !s->nfail && s->mpfr + s->loop ? "true" : "false");
    nsx_buf_printf(b, ",\"worst\":{\"o\":{");
    nsx_buf_printf(b, "\"ratio\":");
    nsx_buf_json_number(b, s->worst_o);
    nsx_buf_printf(b, ",\"problem\":%" PRIu64 "},\"lse\":{\"ratio\":", s->worst_o_index);
    nsx_buf_json_number(b, s->worst_lse);
    nsx_buf_printf(b, ",\"problem\":%" PRIu64 "}}", s->worst_lse_index);
    nsx_buf_printf(b, ",\"shapes\":{\"n\":{");
    for (int n = 1, first = 1; n <= NSX_MAX_ORDER; n++)
        if (s->by_n[n]) {
            nsx_buf_printf(b, "%s\"%d\":%" PRIu64, first ? "" : ",", n, s->by_n[n]);
            first = 0;
        }
    static const char *const Ls[NSX_FZ_LDEC] = {"1-9", "10-99", "100-999", "1000+"};
    static const char *const ds[NSX_FZ_DBANDS] = {"1-32", "33-64", "65-128", "129-192", "193-256"};
    nsx_buf_printf(b, "},\"L\":{");
    for (int x = 0; x < NSX_FZ_LDEC; x++)
        nsx_buf_printf(b, "%s\"%s\":%" PRIu64, x ? "," : "", Ls[x], s->by_L[x]);
    nsx_buf_printf(b, "},\"d\":{");
    for (int x = 0; x < NSX_FZ_DBANDS; x++)
        nsx_buf_printf(b, "%s\"%s\":%" PRIu64, x ? "," : "", ds[x], s->by_d[x]);
    nsx_buf_printf(b, "}},\"classes\":{");
    for (int x = 0; x < NSX_FZ_CLASSES; x++) {
        nsx_buf_printf(b, "%s\"%s\":{\"judged\":%" PRIu64, x ? "," : "", nsx_fz_class_name(x), s->cls_judged[x]);
        nsx_buf_json_field(b, "seconds", s->cls_seconds[x]);
        nsx_buf_printf(b, "}");
    }
    nsx_buf_printf(b, "},\"tuples\":%" PRIu64 ",\"tile_tuples\":%" PRIu64, s->tuples, s->tile_tuples);
    nsx_buf_printf(b, ",\"failed\":[");
    for (int x = 0; x < s->nfail; x++) {
        const nsx_fuzz_failure *f = &s->fail[x];
        nsx_buf_printf(b, "%s{\"problem\":%" PRIu64 ",\"kind\":", x ? "," : "", f->index);
        nsx_buf_json_string(b, nsx_fz_kind_name(f->kind));
        nsx_buf_printf(b, ",\"nondeterministic\":%s,\"saved\":", f->flaky ? "true" : "false");
        nsx_buf_json_string(b, f->path);
        nsx_buf_printf(b, ",\"note\":");
        nsx_buf_json_string(b, f->note);
        nsx_buf_printf(b, "}");
    }
    nsx_buf_printf(b, "]}\n");
}

/* ---- one problem ------------------------------------------------------------ */

enum { RES_JUDGED = 0, RES_REJECTED, RES_DECLINED, RES_FATAL };

/* Problem idx drawn, built and judged: what the run's loop needs of it. */
typedef struct fz_result {
    int kind;             /* RES_* */
    int rejected;         /* recipes redrawn (d.rejected) */
    int cut;              /* the kernel's call was stopped at the end of the budget */
    nsx_fz_draw d;
    char text[800];
    nsx_fz_case c;        /* RES_JUDGED: the case and its verdict (owned) */
    nsx_fz_verdict v;
    double seconds;       /* drawing, building, running, judging */
    int rc;               /* RES_FATAL: the exit code, with err */
    nsx_err err;
} fz_result;

static void result_free(fz_result *res)
{
    if (res->kind == RES_JUDGED) {
        nsx_fz_verdict_free(&res->v);
        nsx_fz_case_free(&res->c);
    }
    res->kind = RES_REJECTED;
}

/* Draws, builds and judges problem idx with kernel k (a worker's own copy
   when problems are judged at once: its iso holds that call's fault). */
static void problem(const nsx_kernel *k, const nsx_model *m, const nsx_fuzz_opts *o, uint64_t idx, int ref_threads,
                    fz_result *res)
{
    memset(res, 0, sizeof *res);
    const double t_problem = now();
    const uint64_t pseed = nsx_fz_problem_seed(o->seed, idx);
    const int bwd = nsx_fz_bwd_pick(pseed, o->bwd, k->info);
    nsx_kernel_info bwd_info;
    /* backward problems keep to the small class, whatever --shapes says: their
       references (MPFR, the gradient loop of fuzz/dref_bwd.c) are sized for it
       (docs/FUZZING.md 11) */
    nsx_fz_steer bwd_steer;
    const nsx_fz_steer *steer = o->steer;
    if (bwd) {
        if (steer)
            bwd_steer = *steer;
        else
            nsx_fz_steer_default(&bwd_steer);
        bwd_steer.shapes = NSX_FZ_SMALL;
        steer = &bwd_steer;
    }
    nsx_fz_draw *d = &res->d;
    nsx_fz_draw_steered(pseed, bwd ? nsx_fz_bwd_info(k->info, &bwd_info) : k->info, m, steer, d);
    if (bwd)
        nsx_fz_draw_bwd(d);
    nsx_fz_draw_text(d, res->text, sizeof res->text);
    res->rejected = d->rejected;
    nsx_fz_case *c = &res->c;
    nsx_err e = {0};
    if (nsx_fz_case_build(d, c, &e)) {
        if (nsx_err_is_fatal(e.kind)) {
            res->kind = RES_FATAL;
            res->rc = nsx_err_set(&res->err, e.kind, "%s", e.msg);
        } else {
            res->kind = RES_REJECTED;
        }
        return;
    }
    c->ref_threads = ref_threads;
    /* a problem over the default work budget is not run (core/budget.h) */
    if (nsx_budget_check(&c->b.p, NULL, "fuzz", NULL, &e)) {
        nsx_fz_case_free(c);
        res->kind = RES_REJECTED;
        return;
    }
    if (o->accept) {
        nsx_kernel_problem kp;
        nsx_problem_to_kernel(&c->b.p, NULL, &kp);
        if (!o->accept(o->accept_ctx, &kp)) {
            nsx_fz_case_free(c);
            res->kind = RES_DECLINED;
            return;
        }
    }
    if ((res->rc = nsx_fz_judge(k, m, c, NSX_FZ_REF_AUTO, &res->v, &res->err))) {
        nsx_fz_case_free(c);
        res->kind = RES_FATAL;
        return;
    }
    res->kind = RES_JUDGED;
    res->cut = res->v.status == NSX_FZ_SKIP && k->iso && k->iso->fault == NSX_KFAULT_CUT;
    res->seconds = now() - t_problem;
}

/* ---- problems judged at once (opts.jobs) ---------------------------------------- */

/*
 * Workers claim the problems in index order and judge them, each with a
 * copy of the kernel (its own isolation state); the run's loop takes their
 * results in index order, as it would judge them one at a time, so the
 * summary, the failures and what is saved do not depend on the number of
 * workers.  Workers run at most `window` problems ahead of the loop; they
 * stop claiming at the count or when the search's time is up (the clock of
 * the loop: the time spent on failures not counted), and while a failure is
 * shrunk and saved.
 */
typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t work, done; /* for workers: room or a stop; for the loop: a result */
    const nsx_kernel *k;
    const nsx_model *m;
    const nsx_fuzz_opts *o;
    fz_result *ring;           /* problem idx in ring[idx % window] */
    unsigned char *ready;
    uint64_t window;
    uint64_t next;             /* the next problem to claim */
    uint64_t base;             /* the problem the loop takes next */
    int stop;                  /* no more claims */
    int paused;                /* a failure is being shrunk: no claims */
    double t0, paused_s;       /* the search's clock */
} pool;

typedef struct worker {
    pool *pl;
    pthread_t tid;
    nsx_kernel k;
    nsx_kernel_iso iso;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    pool *pl = w->pl;
    const nsx_fuzz_opts *o = pl->o;
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        while (!pl->stop && (pl->paused || pl->next >= pl->base + pl->window))
            pthread_cond_wait(&pl->work, &pl->mu);
        if (pl->stop)
            break;
        /* the count, and the time (the loop's test, nsx_fuzz_run) */
        const double t = now() - pl->t0 - pl->paused_s;
        if ((o->count && pl->next - o->start >= o->count) || ((o->seconds > 0 || !o->count) && t >= o->seconds)) {
            pl->stop = 1;
            pthread_cond_broadcast(&pl->work);
            pthread_cond_broadcast(&pl->done);
            break;
        }
        const uint64_t idx = pl->next++;
        pthread_mutex_unlock(&pl->mu);
        fz_result *res = &pl->ring[idx % pl->window];
        problem(&w->k, pl->m, o, idx, 1, res);
        pthread_mutex_lock(&pl->mu);
        pl->ready[idx % pl->window] = 1;
        pthread_cond_broadcast(&pl->done);
    }
    pthread_mutex_unlock(&pl->mu);
    mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE); /* this thread's MPFR constants (pi, log 2, ...) */
    return NULL;
}

/* ---- the run ---------------------------------------------------------------------- */

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

    /* isolated calls go to fork servers started here, while this process
       has no other thread (runner.h): the loop's own (failures are shrunk
       and saved here) and one per worker; then no thread forks.  A server
       that cannot start leaves its calls to a child forked per call, and
       problems one at a time */
    int own_srv = 0, served = 1;
    if (k->iso && !k->iso->srv) {
        nsx_err e = {0};
        own_srv = nsx_kernel_iso_start(k->iso, k, &e) == 0;
        served = own_srv;
    }
    /* workers, when problems are judged at once: each with a copy of the
       kernel whose isolation state (and server) is its own */
    int jobs = o->jobs > 1 && k->iso && served && !o->accept ? o->jobs : 0;
    if (jobs > NSX_FUZZ_MAX_JOBS)
        jobs = NSX_FUZZ_MAX_JOBS;
    pool pl = {.k = k, .m = &m, .o = o, .next = o->start, .base = o->start, .t0 = t0};
    worker *wk = NULL;
    int started = 0;
    if (jobs) {
        pl.window = 64 * (uint64_t)jobs;
        pl.ring = calloc(pl.window, sizeof *pl.ring);
        pl.ready = calloc(pl.window, 1);
        wk = calloc((size_t)jobs, sizeof *wk);
        if (!pl.ring || !pl.ready || !wk) {
            free(pl.ring), free(pl.ready), free(wk);
            if (own_srv)
                nsx_kernel_iso_stop(k->iso);
            return nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        }
        pthread_mutex_init(&pl.mu, NULL);
        pthread_cond_init(&pl.work, NULL);
        pthread_cond_init(&pl.done, NULL);
        int servers = 0;
        for (; servers < jobs; servers++) {
            nsx_err e = {0};
            wk[servers].pl = &pl;
            wk[servers].k = *k;
            wk[servers].iso = *k->iso;
            wk[servers].iso.srv = NULL;
            wk[servers].k.iso = &wk[servers].iso;
            if (nsx_kernel_iso_start(&wk[servers].iso, &wk[servers].k, &e))
                break;
        }
        for (int x = 0; x < servers; x++) {
            if (pthread_create(&wk[x].tid, NULL, worker_main, &wk[x]))
                break;
            started++;
        }
        if (!started) { /* no thread: one at a time, here */
            for (int x = 0; x < servers; x++)
                nsx_kernel_iso_stop(&wk[x].iso);
            jobs = 0;
            free(pl.ring), free(pl.ready), free(wk);
            pl.ring = NULL, pl.ready = NULL, wk = NULL;
        } else {
            for (int x = started; x < servers; x++)
                nsx_kernel_iso_stop(&wk[x].iso);
            jobs = started;
        }
    }

    s->jobs = jobs ? jobs : 1;
    fz_result one, *res = &one;
    for (uint64_t idx = o->start;; idx++) {
        if (jobs) {
            /* the workers' result for idx, or none: they stopped before it */
            pthread_mutex_lock(&pl.mu);
            while (!pl.ready[idx % pl.window] && !(pl.stop && idx >= pl.next))
                pthread_cond_wait(&pl.done, &pl.mu);
            const int have = pl.ready[idx % pl.window];
            pthread_mutex_unlock(&pl.mu);
            if (!have)
                break;
            res = &pl.ring[idx % pl.window];
        } else {
            /* the count, and the time (which alone bounds a run without a
               count, so --seconds 0 without --count runs nothing) */
            double t = now() - t0 - paused;
            if ((o->count && idx - o->start >= o->count) || ((o->seconds > 0 || !o->count) && t >= o->seconds))
                break;
        }
        double t = now() - t0 - paused;
        if (o->progress > 0 && t >= next_progress) {
            progress(o, s, t);
            next_progress += o->progress;
        }
        if (!jobs)
            problem(k, &m, o, idx, 0, res);
        end = idx + 1;
        s->rejected += (uint64_t)res->rejected;
        int stop = 0;
        if (res->kind == RES_FATAL) {
            rc = nsx_err_set(err, res->rc, "%s", res->err.msg);
            stop = 1;
        } else if (res->kind == RES_REJECTED) {
            s->rejected++;
        } else if (res->kind == RES_DECLINED) {
            s->declined++;
        } else if (res->cut) {
            /* the budget ended inside the kernel's call: not judged */
            s->cut = 1;
            s->cut_index = idx;
            stop = 1;
        } else {
            nsx_fz_case *c = &res->c;
            nsx_fz_verdict *v = &res->v;
            s->problems++;
            s->pairs += c->b.npairs > 0;
            s->heads += c->heads;
            s->cls_seconds[res->d.cls] += res->seconds;
            if (v->status == NSX_FZ_SKIP)
                s->skipped++;
            else
                tally(s, c, &res->d, v, idx);
            s->bwd += (uint64_t)v->bwd;
            if (o->log && o->verbose)
                fprintf(o->log, "%s problem %" PRIu64 ": %s%s%s\n",
                        v->status == NSX_FZ_PASS ? "pass" : v->status == NSX_FZ_SKIP ? "skip" : "FAIL", idx,
                        res->text, v->status == NSX_FZ_PASS ? "" : "\n  ", v->status == NSX_FZ_PASS ? "" : v->note);
            if (v->status == NSX_FZ_FAIL) {
                nsx_fuzz_failure *f = &s->fail[s->nfail++];
                memset(f, 0, sizeof *f);
                f->index = idx;
                f->seed = res->d.seed;
                f->kinds = v->kinds;
                f->kind = nsx_fz_primary(v->kinds);
                f->found = now() - t0 - paused;
                snprintf(f->draw, sizeof f->draw, "%.*s", (int)sizeof f->draw - 1, res->text); /* cut if long */
                nsx_fz_verdict_free(v);
                if (jobs) { /* no claims while the failure is handled */
                    pthread_mutex_lock(&pl.mu);
                    pl.paused = 1;
                    pthread_mutex_unlock(&pl.mu);
                }
                double t1 = now();
                rc = on_failure(k, &m, o, c, f, err);
                paused += now() - t1;
                if (jobs) {
                    pthread_mutex_lock(&pl.mu);
                    pl.paused = 0;
                    pl.paused_s = paused;
                    pthread_cond_broadcast(&pl.work);
                    pthread_mutex_unlock(&pl.mu);
                }
                stop = rc || s->nfail == max_failures;
            }
        }
        result_free(res);
        if (jobs) {
            pthread_mutex_lock(&pl.mu);
            pl.ready[idx % pl.window] = 0;
            pl.base = idx + 1;
            if (stop)
                pl.stop = 1;
            pthread_cond_broadcast(&pl.work);
            pthread_mutex_unlock(&pl.mu);
        }
        if (stop)
            break;
    }
    s->seconds = now() - t0 - paused;
    if (jobs) {
        /* the workers finish the problems they hold; those results go unused */
        pthread_mutex_lock(&pl.mu);
        pl.stop = 1;
        pthread_cond_broadcast(&pl.work);
        pthread_mutex_unlock(&pl.mu);
        for (int x = 0; x < started; x++) {
            pthread_join(wk[x].tid, NULL);
            nsx_kernel_iso_stop(&wk[x].iso);
        }
        for (uint64_t x = 0; x < pl.window; x++)
            if (pl.ready[x])
                result_free(&pl.ring[x]);
        pthread_mutex_destroy(&pl.mu);
        pthread_cond_destroy(&pl.work);
        pthread_cond_destroy(&pl.done);
        free(pl.ring), free(pl.ready), free(wk);
    }
    if (own_srv)
        nsx_kernel_iso_stop(k->iso);
    if (rc)
        return rc;
    if (o->log) {
        progress(o, s, s->seconds);
        fprintf(o->log,
                "nsimplex fuzz: seed %" PRIu64 ", problems %" PRIu64 "..%" PRIu64 " in %.1f s: %" PRIu64
                " judged (%" PRIu64 " against the certified reference, %" PRIu64 " against the f64 loop), %" PRIu64
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
        if (s->mpfr + s->loop)
            summary_text(s, o->log);
    }
    return 0;
}
