/* Measuring a kernel (runner/bench.h). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "io/json.h"
#include "nsimplex/names.h"
#include "nsimplex/problem.h"
#include "nsimplex/rng.h"
#include "runner/bench.h"
#include "runner/runner.h"
#include "simd/simd.h"
#include "vectors/recipe.h"

void nsx_bench_defaults(nsx_bench_opts *o)
{
    nsx_err err;
    memset(o, 0, sizeof *o);
    o->repeat = 3;
    o->naive_seconds = 10;
    o->peak_seconds = 0.3;
    o->seed = 1;
    if (nsx_bench_shape(o, "", &err)) /* the default shape always parses */
        abort();
}

/* ---- the shape, from a recipe ------------------------------------------- */

/* The value of the last KEY=VALUE token of text for key, copied into val
   (size len); 0 when key does not appear.  Only looks the key up: the
   recipe parser reads the values. */
static int recipe_value(const char *text, const char *key, char *val, size_t len)
{
    size_t klen = strlen(key);
    int found = 0;
    for (const char *t = text; *t;) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t n = strcspn(t, " \t");
        if (n > klen && strncmp(t, key, klen) == 0 && t[klen] == '=') {
            size_t vn = n - klen - 1 < len - 1 ? n - klen - 1 : len - 1;
            memcpy(val, t + klen + 1, vn);
            val[vn] = '\0';
            found = 1;
        }
        t += n;
    }
    return found;
}

int nsx_bench_shape(nsx_bench_opts *o, const char *recipe, nsx_err *err)
{
    static const char *const not_bench[] = {"fmt", "dist", "ties", "empty", "invalid", "leak", "probe",
                                            "act", "iscale", "Hi", "di"};
    char text[1200], val[256];
    nsx_recipe r;
    for (size_t t = 0; t < sizeof not_bench / sizeof not_bench[0]; t++)
        if (recipe_value(recipe, not_bench[t], val, sizeof val))
            return nsx_err_set(err, NSX_E_INPUT, "recipe: %s does not apply to bench (it draws uniform "
                               "float32 inputs and a random given selection)", not_bench[t]);
    if (snprintf(text, sizeof text, "%s %s", NSX_BENCH_SHAPE, recipe) >= (int)sizeof text)
        return nsx_err_set(err, NSX_E_INPUT, "recipe: too long");
    int rc = nsx_recipe_parse(text, &r, err);
    if (rc)
        return rc;
    nsx_problem *p = &r.p;
    if (p->sel.source != NSX_SEL_NONE && p->sel.source != NSX_SEL_INDICES)
        return nsx_err_set(err, NSX_E_INPUT, "recipe: sel: bench draws a random given selection (sel=indices)");
    int w[NSX_MAX_ORDER];
    if (recipe_value(recipe, "w", val, sizeof val)) {
        int windows = nsx_windows_parse(val, w); /* parsed already: the count */
        if (windows == 1) /* one window for every dimension */
            for (int m = 1; m < p->n; m++)
                p->window[m] = p->window[0];
        else if (windows != p->n)
            return nsx_err_set(err, NSX_E_INPUT, "recipe: w: %d values for n = %d (give 1 or n)", windows, p->n);
    } else if (p->n == 2) { /* the paper's windows */
        p->window[0] = 512;
        p->window[1] = 32;
    }
    nsx_problem_to_kernel(p, NULL, &o->p);
    return 0;
}

/* ---- inputs ---------------------------------------------------------- */

static nsx_rng bench_rng;

static uint64_t rng(void)
{
    return nsx_rng_next(&bench_rng);
}

typedef struct tensors {
    float *q, *k[NSX_MAX_ORDER], *v[NSX_MAX_ORDER], *o, *lse;
    float *dout, *dq, *dk[NSX_MAX_ORDER], *dv[NSX_MAX_ORDER]; /* --bwd only */
    int32_t *sel;
    size_t bytes; /* inputs and outputs */
} tensors;

static float *alloc_fill(size_t count, size_t *bytes)
{
    float *x = malloc(count * sizeof *x);
    if (x)
        for (size_t t = 0; t < count; t++) /* uniform in [-1, 1) */
            x[t] = (float)((double)(rng() >> 40) / (double)(1ull << 23) - 1.0);
    *bytes += count * sizeof *x;
    return x;
}

/* Random selection: per (b, i), topk distinct keys among those a causal
   query may select (all keys with causal off), -1 pads when fewer. */
static void fill_sel(const nsx_kernel_problem *p, int32_t *sel)
{
    /* taken[j]: key j is in the row so far (Floyd's test, without a scan
       of the row: top-k 2048 took seconds with one) */
    unsigned char *taken = calloc((size_t)p->L, 1);
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            int32_t *row = sel + ((size_t)b * p->L + i) * p->topk;
            int pool = p->causal ? i + 1 : p->L;
            int take = pool < p->topk ? pool : p->topk;
            /* Floyd's sampling of take keys from [0, pool). */
            int got = 0;
            for (int j = pool - take; j < pool; j++) {
                int t = (int)(rng() % (uint64_t)(j + 1)), dup = 0;
                if (taken)
                    dup = taken[t];
                else
                    for (int z = 0; z < got; z++)
                        dup |= row[z] == t;
                row[got++] = dup ? j : t;
                if (taken)
                    taken[dup ? j : t] = 1;
            }
            for (int r = 0; r < got && taken; r++)
                taken[row[r]] = 0;
            for (int r = got; r < p->topk; r++)
                row[r] = -1;
        }
    free(taken);
}

static int make_tensors(const nsx_bench_opts *o, tensors *t)
{
    const nsx_kernel_problem *p = &o->p;
    memset(t, 0, sizeof *t);
    bench_rng.s = o->seed;
    size_t B = (size_t)p->B, L = (size_t)p->L;
    int ok = (t->q = alloc_fill(B * L * p->H * p->d, &t->bytes)) != NULL;
    for (int m = 0; m < p->n && ok; m++) {
        ok = (t->k[m] = alloc_fill(B * L * p->Hkv * p->d, &t->bytes)) != NULL;
        ok = ok && (t->v[m] = alloc_fill(B * L * p->Hkv * p->dv, &t->bytes)) != NULL;
    }
    ok = ok && (t->o = alloc_fill(B * L * p->H * p->dv, &t->bytes)) != NULL;
    ok = ok && (t->lse = alloc_fill(B * p->H * L, &t->bytes)) != NULL;
    if (o->bwd) { /* dO random; the gradients filled only to be allocated */
        ok = ok && (t->dout = alloc_fill(B * L * p->H * p->dv, &t->bytes)) != NULL;
        ok = ok && (t->dq = alloc_fill(B * L * p->H * p->d, &t->bytes)) != NULL;
        for (int m = 0; m < p->n && ok; m++) {
            ok = (t->dk[m] = alloc_fill(B * L * p->Hkv * p->d, &t->bytes)) != NULL;
            ok = ok && (t->dv[m] = alloc_fill(B * L * p->Hkv * p->dv, &t->bytes)) != NULL;
        }
    }
    if (ok && p->topk > 0) {
        t->sel = malloc(B * L * p->topk * sizeof *t->sel);
        t->bytes += B * L * p->topk * sizeof *t->sel;
        ok = t->sel != NULL;
        if (ok)
            fill_sel(p, t->sel);
    }
    return ok;
}

static void free_tensors(const nsx_kernel_problem *p, tensors *t)
{
    free(t->q);
    for (int m = 0; m < p->n; m++) {
        free(t->k[m]);
        free(t->v[m]);
    }
    free(t->o);
    free(t->lse);
    free(t->sel);
    free(t->dout);
    free(t->dq);
    for (int m = 0; m < p->n; m++) {
        free(t->dk[m]);
        free(t->dv[m]);
    }
}

static nsx_kernel_io io_of(const nsx_kernel_problem *p, const tensors *t, float *o, float *lse)
{
    nsx_kernel_io io = {.q = t->q, .o = o, .lse = lse};
    for (int m = 0; m < p->n; m++) {
        io.k[m] = t->k[m];
        io.v[m] = t->v[m];
    }
    return io;
}

/* ---- the plain-loop baseline --------------------------------------------- */

/*
 * Times nsx_simd_naive on the rows it can finish within the budget: all of
 * them, or every step-th (ending at the last row), or if even one row is
 * too long, one calibration row; the full time is then the measured one
 * scaled by the exact tuple counts.  Also compares its o and lse with the
 * kernel's on those rows.
 */
static int run_naive(const nsx_bench_opts *o, const tensors *t, const uint64_t *rows_tuples,
                     uint64_t total, nsx_bench_naive *nr)
{
    const nsx_kernel_problem *p = &o->p;
    const int L = p->L, T = nsx_simd_threads(o->threads);
    memset(nr, 0, sizeof *nr);
    size_t no = (size_t)p->B * L * p->H * p->dv, nl = (size_t)p->B * p->H * L;
    float *on = malloc(no * sizeof *on), *ln = malloc(nl * sizeof *ln);
    if (!on || !ln) {
        free(on);
        free(ln);
        return NSX_E_NOMEM;
    }
    nsx_kernel_io io = io_of(p, t, on, ln);
    /* Calibration row: the largest with at most ~2e5 tuples, else the smallest. */
    int cal = -1;
    for (int i = 0; i < L; i++) {
        uint64_t c = rows_tuples[i] * (uint64_t)p->H;
        if (c == 0)
            continue;
        if (cal < 0 || (c <= 200000 && c > rows_tuples[cal] * (uint64_t)p->H) ||
            (rows_tuples[cal] * (uint64_t)p->H > 200000 && c < rows_tuples[cal] * (uint64_t)p->H))
            cal = i;
    }
    double t0 = omp_get_wtime();
    nsx_simd_naive(p, &io, cal, cal + 1, 1, T);
    double tcal = omp_get_wtime() - t0;
    double per_tuple = tcal / ((double)rows_tuples[cal] * p->H);
    /* The densest stride whose estimate fits a quarter of the budget... */
    int step = 1, i0 = 0;
    for (;; step *= 2) {
        double est = 0;
        for (int i = (L - 1) % step; i < L; i += step)
            est += (double)rows_tuples[i] * p->H * per_tuple / T;
        if (est <= o->naive_seconds / 4 || step >= L)
            break;
    }
    double est_rows = 0;
    for (int i = (L - 1) % step; i < L; i += step)
        est_rows += (double)rows_tuples[i] * p->H * per_tuple / T;
    if (est_rows > o->naive_seconds && est_rows > 2 * tcal) {
        /* Even one row is over budget: the calibration row is the sample. */
        nr->seconds = tcal;
        nr->rows = 1;
        nr->step = 0;
    } else {
        /* ... then measured, and halved while the measured time says the
           next round (twice the rows) still fits the budget. */
        for (;;) {
            i0 = (L - 1) % step;
            t0 = omp_get_wtime();
            nsx_simd_naive(p, &io, i0, L, step, T);
            nr->seconds = omp_get_wtime() - t0;
            if (step == 1 || 2 * nr->seconds > o->naive_seconds)
                break;
            step /= 2;
        }
        nr->rows = (L - 1 - i0) / step + 1;
        nr->step = step;
    }
    uint64_t sample = 0;
    for (int i = nr->step ? i0 : cal; i < L; i += nr->step ? step : L)
        sample += rows_tuples[i] * (uint64_t)p->H;
    nr->estimate = nr->seconds * (double)total / (double)sample;
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = nr->step ? i0 : cal; i < L; i += nr->step ? step : L) {
                size_t at = (((size_t)b * L + i) * p->H + h) * p->dv;
                for (int c = 0; c < p->dv; c++) {
                    double e = fabs((double)on[at + c] - t->o[at + c]);
                    if (!(e <= nr->max_abs_diff))
                        nr->max_abs_diff = e;
                }
                size_t al = ((size_t)b * p->H + h) * L + i;
                double e = ln[al] == t->lse[al] ? 0 : fabs((double)ln[al] - t->lse[al]);
                if (!(e <= nr->max_lse_diff))
                    nr->max_lse_diff = e;
            }
    free(on);
    free(ln);
    return 0;
}

/* ---- the measurement --------------------------------------------------- */

double nsx_bench_flops_per_tuple(const nsx_kernel_problem *p, int bwd)
{
    const double d = p->d, dv = p->dv;
    if (!bwd)
        return p->reduce == NSX_REDUCE_PRODUCT ? 2 * (d + dv) : 2 * d + 2;
    if (p->reduce != NSX_REDUCE_PRODUCT)
        return 6 * d + 4;
    return p->n == 1 ? 6 * d + 4 * dv : 6 * (d + dv);
}

/* One timed call: the forward, or the backward with its buffers. */
static int bench_call(const nsx_kernel *k, const nsx_kernel_problem *p, const tensors *t, int bwd)
{
    if (!bwd) {
        nsx_kernel_io io = io_of(p, t, t->o, t->lse);
        return nsx_kernel_call(k, p, &io);
    }
    nsx_kernel_bwd_io bio = {.q = t->q, .o = t->o, .lse = t->lse, .dout = t->dout, .dq = t->dq};
    for (int m = 0; m < p->n; m++) {
        bio.k[m] = t->k[m], bio.v[m] = t->v[m];
        bio.dk[m] = t->dk[m], bio.dv[m] = t->dv[m];
    }
    return k->backward ? k->backward(p, &bio) : nsx_simd_backward_isa(p, &bio, k->threads, k->isa);
}

int nsx_bench_run(nsx_bench_opts *o, nsx_bench_result *r, nsx_err *err)
{
    nsx_kernel_problem *p = &o->p;
    nsx_kernel k = {0};
    tensors t;
    uint64_t *rows = NULL;
    int rc;
    memset(r, 0, sizeof *r);
    if (o->threads > 0) /* the library's OpenMP is this process's */
        omp_set_num_threads(o->threads);
    if ((rc = nsx_kernel_open(&k, o->kernel, -1, o->threads, err)))
        return rc;
    if (o->bwd && k.lib && !k.backward) {
        rc = nsx_err_set(err, NSX_E_UNSUPPORTED, "%s: the kernel has no backward (ABI 3's nsx_kernel_backward)",
                         o->kernel);
        goto done_early;
    }
    if (!make_tensors(o, &t)) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "out of memory for the inputs");
        goto done;
    }
    p->sel = t.sel;
    snprintf(r->kernel, sizeof r->kernel, "%s", k.info->name ? k.info->name : "(unnamed)");
    r->isa = k.lib ? "library" : nsx_simd_isa_name(k.isa);
    r->threads = k.threads;
    r->io_mib = (double)t.bytes / (1 << 20);
    if (o->bwd) {
        size_t part = 0;
        r->scratch_kib = (double)nsx_simd_bwd_scratch_bytes(p, &part) / 1024;
        r->partial_mib = (double)part / (1 << 20);
    } else {
        r->scratch_kib = (double)nsx_simd_scratch_bytes(p) / 1024;
    }

    /* the machine's peak, with the widest ISA it has */
    int best = NSX_ISA_COUNT - 1;
    while (best > 0 && !nsx_simd_isa_supported(best))
        best--;
    r->peak_isa = nsx_simd_isa_name(best);
    r->peak = nsx_simd_peak_gflops(best, k.threads, o->peak_seconds);

    rows = malloc((size_t)p->L * sizeof *rows);
    if (!rows) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "out of memory for the tuple counts");
        goto done;
    }
    if (nsx_simd_count_tuples(p, 0, p->L, 1, rows, &r->tuples) != NSX_SIMD_OK) {
        rc = nsx_err_set(err, NSX_E_TOO_LARGE, "the tuple count overflows 64 bits or memory ran out");
        goto done;
    }
    r->flops_per_tuple = nsx_bench_flops_per_tuple(p, o->bwd);

    if (o->bwd) { /* the forward once, for the o and lse the backward reads */
        nsx_kernel_io io = io_of(p, &t, t.o, t.lse);
        int kr = nsx_kernel_call(&k, p, &io);
        if (kr != 0) {
            rc = nsx_err_set(err, kr == NSX_KERNEL_UNSUPPORTED ? NSX_E_KERNEL_REFUSED : NSX_E_KERNEL_ERROR,
                             "kernel %s: the forward returned %d", r->kernel, kr);
            goto done;
        }
    }
    r->seconds = INFINITY;
    for (int rep = -1; rep < o->repeat; rep++) { /* rep -1: the warm-up */
        double t0 = omp_get_wtime();
        int kr = bench_call(&k, p, &t, o->bwd);
        double dt = omp_get_wtime() - t0;
        if (kr != 0) {
            rc = kr == NSX_KERNEL_UNSUPPORTED
                     ? nsx_err_set(err, NSX_E_KERNEL_REFUSED, "kernel %s: unsupported problem", r->kernel)
                     : nsx_err_set(err, NSX_E_KERNEL_ERROR, "kernel %s: error %d", r->kernel, kr);
            goto done;
        }
        if (rep >= 0 && dt < r->seconds)
            r->seconds = dt;
        r->runs += rep >= 0;
        if (rep < 0 && dt >= 10) { /* a long run needs no warm-up: it is the measurement */
            r->seconds = dt;
            r->runs = 1;
            break;
        }
    }
    r->gflops = (double)r->tuples * r->flops_per_tuple / r->seconds * 1e-9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->rss_mib = (double)ru.ru_maxrss / 1024; /* before the baseline's own buffers */

    if (o->naive_seconds > 0 && r->tuples > 0 && !o->bwd) { /* no plain-loop backward */
        if ((rc = run_naive(o, &t, rows, r->tuples, &r->nr))) {
            nsx_err_set(err, rc, "out of memory for the baseline");
            goto done;
        }
        r->naive_done = 1;
    }
done:
    p->sel = NULL;
    free_tensors(p, &t);
    free(rows);
done_early:
    nsx_kernel_close(&k);
    return rc;
}

/* ---- the JSON report ------------------------------------------------------ */

char *nsx_bench_json(const nsx_bench_opts *o, const nsx_bench_result *r)
{
    const nsx_kernel_problem *p = &o->p;
    nsx_buf b = {0};
    nsx_buf_printf(&b, "{\"shape\":{\"n\":%d,\"B\":%d,\"L\":%d,\"H\":%d,\"Hkv\":%d,\"d\":%d,"
                   "\"dv\":%d,\"windows\":[", p->n, p->B, p->L, p->H, p->Hkv, p->d, p->dv);
    for (int m = 0; m < p->n; m++)
        nsx_buf_printf(&b, "%s%d", m ? "," : "", p->window[m]);
    nsx_buf_printf(&b, "],\"causal\":%s,\"reduce\":", p->causal ? "true" : "false");
    nsx_buf_json_string(&b, nsx_reduce_name(p->reduce));
    nsx_buf_printf(&b, ",\"topk\":%d,\"sel_dims\":%u,\"distinct\":%s},\"kernel\":", p->topk,
                   p->sel_dims, p->distinct ? "true" : "false");
    nsx_buf_json_string(&b, r->kernel);
    nsx_buf_puts(&b, ",\"isa\":");
    nsx_buf_json_string(&b, r->isa);
    nsx_buf_printf(&b, ",\"pass\":\"%s\",\"threads\":%d,\"tuples\":%llu", o->bwd ? "backward" : "forward",
                   r->threads, (unsigned long long)r->tuples);
    nsx_buf_json_field(&b, "flops_per_tuple", r->flops_per_tuple);
    nsx_buf_json_field(&b, "seconds", r->seconds);
    nsx_buf_json_field(&b, "gflops", r->gflops);
    nsx_buf_json_field(&b, "peak_gflops", r->peak);
    nsx_buf_puts(&b, ",\"peak_isa\":");
    nsx_buf_json_string(&b, r->peak_isa);
    nsx_buf_json_field(&b, "peak_share", r->peak > 0 ? r->gflops / r->peak : 0);
    if (r->naive_done) {
        nsx_buf_json_field(&b, "naive_ratio", r->nr.estimate / r->seconds);
        nsx_buf_json_field(&b, "naive_seconds", r->nr.estimate);
        nsx_buf_printf(&b, ",\"naive_rows_measured\":%d,\"naive_scaled\":%s", r->nr.rows,
                       r->nr.rows < p->L ? "true" : "false");
        nsx_buf_json_field(&b, "naive_max_abs_diff", r->nr.max_abs_diff);
    } else {
        nsx_buf_puts(&b, ",\"naive_ratio\":null");
    }
    nsx_buf_json_field(&b, "peak_rss_mib", r->rss_mib);
    nsx_buf_json_field(&b, "io_mib", r->io_mib);
    nsx_buf_json_field(&b, "rss_bound_mib", r->io_mib + r->partial_mib + NSX_BENCH_RSS_SLACK_MIB);
    if (o->bwd)
        nsx_buf_json_field(&b, "partial_mib", r->partial_mib);
    nsx_buf_json_field(&b, "scratch_kib_per_thread", r->scratch_kib);
    nsx_buf_puts(&b, "}");
    if (b.oom) {
        nsx_buf_free(&b);
        return NULL;
    }
    return b.s;
}
