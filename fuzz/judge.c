/*
 * Running a kernel on a fuzz case and judging it (fuzz/fuzz.h).
 *
 *   1. the selection the kernel receives: the given lists, or the computed
 *      top-k (nsx_ref_select);
 *   2. the kernel (nsx_kernel_run): returning 1 for a problem within its
 *      declared features, or any other error, is a failure;
 *   3. expected values: the MPFR reference (correctly rounded) or the
 *      binary64 loop with its uncertainty (fuzz/dref.h);
 *   4. the oracle under the kernel's model (nsx_check_unc): every element
 *      against its bound, empty slices, and the pairs bit for bit (leak
 *      pairs, mask probes, batch copies);
 *   5. the head permutation: the kv heads and the query heads within each
 *      group permuted, the outputs must be the same permutation of the
 *      first run's, bit for bit;
 *   6. for a backward case, the gradients (fuzz/bwd.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/dref.h"
#include "fuzz/fuzz.h"
#include "nsimplex/ref.h"
#include "nsimplex/slice.h"

unsigned nsx_fz_primary(unsigned kinds)
{
    for (unsigned bit = 1; bit <= NSX_FZ_LAST_KIND; bit <<= 1)
        if (kinds & bit)
            return bit;
    return 0;
}

const char *nsx_fz_kind_name(unsigned kind)
{
    switch (nsx_fz_primary(kind)) {
    case NSX_FZ_UNSUPPORTED: return "unsupported";
    case NSX_FZ_ERROR: return "error";
    case NSX_FZ_PAIR: return "pair";
    case NSX_FZ_EMPTY: return "empty-slice";
    case NSX_FZ_BOUND: return "bound";
    case NSX_FZ_HEADS: return "heads";
    case NSX_FZ_SIGNAL: return "signal";
    case NSX_FZ_TIMEOUT: return "timeout";
    case NSX_FZ_EXIT: return "exit";
    case NSX_FZ_OVERFLOW: return "overflow";
    case NSX_FZ_GRAD: return "gradient";
    case NSX_FZ_GRAD_PROBE: return "gradient-probe";
    default: return "none";
    }
}

void nsx_fz_verdict_free(nsx_fz_verdict *v)
{
    free(v->o);
    free(v->lse);
    free(v->unc_o);
    free(v->unc_lse);
    free(v->dq);
    for (int m = 0; m < NSX_MAX_ORDER; m++)
        free(v->dk[m]), free(v->dv[m]);
    memset(v, 0, sizeof *v);
}

/* Copies text, cut to the room there is. */
static void copy_text(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* prefix + text into dst. */
static void prefixed(char *dst, size_t len, const char *prefix, const char *text)
{
    copy_text(dst, len, prefix);
    size_t n = strlen(dst);
    copy_text(dst + n, len - n, text);
}

static void fail(nsx_fz_verdict *v, unsigned kind, const char *note)
{
    if (!v->kinds)
        copy_text(v->note, sizeof v->note, note);
    v->kinds |= kind;
    v->status = NSX_FZ_FAIL;
}

static void skip(nsx_fz_verdict *v, const char *why)
{
    v->status = NSX_FZ_SKIP;
    copy_text(v->note, sizeof v->note, why);
}

/* The failure kind of a kernel run that returned r (not 0, not
   NSX_E_UNSUPPORTED, not fatal); 0 when an isolated call was stopped at the
   end of the budget (no verdict). */
static unsigned run_kind(const nsx_kernel *k, int r)
{
    if (r == NSX_E_KERNEL_REFUSED)
        return NSX_FZ_UNSUPPORTED;
    switch (k->iso ? k->iso->fault : NSX_KFAULT_NONE) {
    case NSX_KFAULT_SIGNAL: return NSX_FZ_SIGNAL;
    case NSX_KFAULT_TIMEOUT: return NSX_FZ_TIMEOUT;
    case NSX_KFAULT_EXIT: return NSX_FZ_EXIT;
    case NSX_KFAULT_OVERFLOW: return NSX_FZ_OVERFLOW;
    case NSX_KFAULT_CUT: return 0;
    default: return NSX_FZ_ERROR;
    }
}

/* A random permutation of 0..n-1 other than the identity when n >= 2. */
static void permutation(nsx_rng *r, int *perm, int n)
{
    for (int x = 0; x < n; x++)
        perm[x] = x;
    for (int x = n - 1; x > 0; x--) {
        int y = nsx_rng_below(r, x + 1), t = perm[x];
        perm[x] = perm[y];
        perm[y] = t;
    }
    int identity = 1;
    for (int x = 0; x < n; x++)
        identity &= perm[x] == x;
    for (int x = 0; identity && n >= 2 && x < n; x++)
        perm[x] = (x + 1) % n;
}

/* Step 5.  Returns 0 or NSX_E_INTERNAL. */
static int heads_probe(const nsx_kernel *k, const nsx_fz_case *c, const int32_t *sel, const unsigned char *skiprow,
                       nsx_fz_verdict *v, nsx_err *err)
{
    const nsx_problem *p = &c->b.p;
    const int G = p->H / p->Hkv;
    int tau[64], sigma[64];
    if (p->Hkv > 64 || G > 64)
        return 0;
    nsx_rng r = {c->seed ^ 0x2545f4914f6cdd1dull};
    permutation(&r, tau, p->Hkv);
    permutation(&r, sigma, G);
    double *q = malloc(nsx_q_size(p) * sizeof *q), *kk[NSX_MAX_ORDER] = {0}, *vv[NSX_MAX_ORDER] = {0};
    double *o = malloc(nsx_o_size(p) * sizeof *o), *lse = malloc(nsx_lse_size(p) * sizeof *lse);
    int ok = q && o && lse, rc = 0;
    for (int m = 0; m < p->n; m++) {
        ok &= (kk[m] = malloc(nsx_k_size(p) * sizeof(double))) != NULL;
        ok &= (vv[m] = malloc(nsx_v_size(p) * sizeof(double))) != NULL;
    }
    if (!ok) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        goto done;
    }
    nsx_inputs in = c->b.in;
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            for (int h = 0; h < p->H; h++) {
                int hp = tau[h / G] * G + sigma[h % G];
                memcpy(q + nsx_q_at(p, b, i, hp, 0), c->b.q + nsx_q_at(p, b, i, h, 0), (size_t)p->d * sizeof *q);
            }
            for (int m = 0; m < p->n; m++)
                for (int g = 0; g < p->Hkv; g++) {
                    memcpy(kk[m] + nsx_k_at(p, b, i, tau[g], 0), c->b.k[m] + nsx_k_at(p, b, i, g, 0),
                           (size_t)p->d * sizeof(double));
                    memcpy(vv[m] + nsx_v_at(p, b, i, tau[g], 0), c->b.v[m] + nsx_v_at(p, b, i, g, 0),
                           (size_t)p->dv * sizeof(double));
                }
        }
    in.q = q;
    for (int m = 0; m < p->n; m++) {
        in.k[m] = kk[m];
        in.v[m] = vv[m];
    }
    int has_lse;
    nsx_err kerr = {0};
    int r2 = nsx_kernel_run(k, p, &in, sel, o, lse, &has_lse, &kerr);
    if (nsx_err_is_fatal(r2)) {
        rc = nsx_err_set(err, r2, "%s", kerr.msg);
        goto done;
    }
    if (r2) {
        char note[600] = "heads permuted: ";
        copy_text(note + strlen(note), sizeof note - strlen(note), kerr.msg);
        unsigned kind = r2 == NSX_E_UNSUPPORTED ? NSX_FZ_UNSUPPORTED : run_kind(k, r2);
        if (kind)
            fail(v, kind, note);
        else if (v->status != NSX_FZ_FAIL)
            skip(v, note);
        goto done;
    }
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            if (skiprow[(size_t)b * p->L + i])
                continue;
            for (int h = 0; h < p->H; h++) {
                int hp = tau[h / G] * G + sigma[h % G];
                const double *x = v->o + nsx_o_at(p, b, i, h, 0), *y = o + nsx_o_at(p, b, i, hp, 0);
                int bad = memcmp(x, y, (size_t)p->dv * sizeof *x) != 0;
                if (!bad && has_lse)
                    bad = memcmp(&v->lse[nsx_lse_at(p, b, h, i)], &lse[nsx_lse_at(p, b, hp, i)], sizeof *lse) != 0;
                if (bad) {
                    char note[256];
                    snprintf(note, sizeof note,
                             "heads permuted: head %d moved to %d, but o or lse of batch %d, query %d differ", h, hp,
                             b, i);
                    fail(v, NSX_FZ_HEADS, note);
                    goto done;
                }
            }
        }
done:
    free(q);
    free(o);
    free(lse);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(kk[m]);
        free(vv[m]);
    }
    return rc;
}

/*
 * The rows whose exact outputs are another row's by the case's own pairs,
 * which the oracle checks bit for bit on the same premise (core/pairs.h): a
 * leak pair's second batch up to t (a batch copy is one with t = L - 1), a
 * mask probe's row.  src[b L + i] = the batch whose row i holds the same
 * values and is computed, or -1.  Chains (a copy of a pair's batch) are
 * followed to their end; an unjudged end (skiprow) or a cycle leaves the
 * row computed.  Returns the count of such rows.
 */
static size_t pair_sources(const nsx_instance *b, const unsigned char *skiprow, int *src)
{
    const nsx_problem *p = &b->p;
    const size_t L = (size_t)p->L, rows = (size_t)p->B * L;
    for (size_t x = 0; x < rows; x++)
        src[x] = -1;
    for (int x = 0; x < b->npairs; x++) {
        const nsx_pair *q = &b->pairs[x];
        if (q->a < 0 || q->a >= p->B || q->b < 0 || q->b >= p->B || q->a == q->b)
            continue;
        if (q->kind == NSX_PAIR_LEAK)
            for (size_t i = 0; i <= (size_t)q->t && i < L; i++)
                src[(size_t)q->b * L + i] = q->a;
        else if (q->kind == NSX_PAIR_PROBE && q->i >= 0 && (size_t)q->i < L)
            src[(size_t)q->b * L + (size_t)q->i] = q->a;
    }
    size_t count = 0;
    for (size_t x = 0; x < rows; x++) {
        if (src[x] < 0)
            continue;
        const size_t i = x % L;
        int s = src[x], steps = 0;
        while (src[(size_t)s * L + i] >= 0 && steps++ <= p->B)
            s = src[(size_t)s * L + i];
        if (steps > p->B || skiprow[x] || skiprow[(size_t)s * L + i])
            src[x] = -1;
        else
            src[x] = s, count++;
    }
    /* a row another row copies is computed: no chain ends at a copied row */
    return count;
}

/* Allowed tuples of row (b, i) (one head), for the count of judged tuples. */
static uint64_t row_tuples(nsx_slice *z, const nsx_instance *b, int bb, int i)
{
    const nsx_problem *p = &b->p;
    const int32_t *sel = p->sel.source == NSX_SEL_NONE ? NULL
                         : p->sel.source == NSX_SEL_INDICES ? b->sel + nsx_sel_at(p, bb, i, 0)
                                                            : b->sel_out + nsx_sel_at(p, bb, i, 0);
    uint64_t n = 0;
    nsx_slice_start(z, i, sel);
    while (nsx_slice_next(z))
        n++;
    return n;
}

int nsx_fz_judge(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, int ref, nsx_fz_verdict *v,
                 nsx_err *err)
{
    nsx_instance *b = &c->b;
    const nsx_problem *p = &b->p;
    const int computed = p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES;
    char note[600];
    nsx_err e = {0};
    int rc = 0;
    memset(v, 0, sizeof *v);
    const int automatic = ref == NSX_FZ_REF_AUTO;
    if (automatic)
        ref = NSX_FZ_REF_MPFR;
    v->ref = ref;
    unsigned char *skiprow = malloc((size_t)p->B * p->L);
    v->o = malloc(nsx_o_size(p) * sizeof *v->o);
    v->lse = malloc(nsx_lse_size(p) * sizeof *v->lse);
    if (!skiprow || !v->o || !v->lse)
        goto oom;
    nsx_pairs_unjudged(p, b->pairs, b->npairs, skiprow);

    /* 1. the selection the kernel receives */
    if (computed && nsx_ref_select(p, &b->in, b->sel_out, b->sel_scores, NULL, NULL, &e)) {
        if (nsx_err_is_fatal(e.kind))
            goto fatal;
        prefixed(note, sizeof note, "reference selection: ", e.msg);
        skip(v, note);
        goto done;
    }
    const int32_t *sel = computed ? b->sel_out : b->sel;

    /* 2. the kernel */
    int r2 = nsx_kernel_run(k, p, &b->in, sel, v->o, v->lse, &v->has_lse, &e);
    if (nsx_err_is_fatal(r2))
        goto fatal;
    if (r2 == NSX_E_UNSUPPORTED) {
        prefixed(note, sizeof note, "drawn outside the declared features: ", e.msg);
        skip(v, note);
        free(v->o), free(v->lse);
        v->o = v->lse = NULL;
        goto done;
    }
    if (r2) {
        unsigned kind = run_kind(k, r2);
        if (kind)
            fail(v, kind, e.msg);
        else
            skip(v, e.msg);
        free(v->o), free(v->lse);
        v->o = v->lse = NULL;
        goto done;
    }

    /* 3. expected values: the certified reference (the fast path, MPFR for
       the rows it leaves undecided), correctly rounded.  Chosen
       automatically, its MPFR part is bounded: a precision cap keeps a rare
       hard row (an output within 2^-2000 of a rounding boundary) from
       taking minutes, and a limit on the tuples left to MPFR keeps a large
       problem the fast path cannot decide from taking hours; such a problem
       goes to the loop reference when its work fits NSX_FZ_LOOP_WORK, and
       is skipped otherwise. */
    if (ref == NSX_FZ_REF_MPFR) {
        nsx_ref_opts opts = {.prec_cap = c->exact_cap ? 0 : NSX_FZ_PREC_CAP, .fast = 1, .threads = c->ref_threads,
                             .mpfr_tuples_max = automatic ? NSX_FZ_MPFR_TUPLES : 0};
        nsx_ref_stats stats = {0};
        nsx_recipe rc3 = c->r;
        rc3.bwd = nsx_fz_bwd_mpfr(c, ref); /* MPFR gradients (fuzz/bwd.c) */
        /* the rows a pair makes equal to another are computed once and
           copied (not for gradients, whose sums run over every row) */
        const size_t rows = (size_t)p->B * p->L;
        int *src = !rc3.bwd && b->npairs ? malloc(rows * sizeof *src) : NULL;
        unsigned char *dup = src ? calloc(rows, 1) : NULL;
        size_t ndup = src && dup ? pair_sources(b, skiprow, src) : 0;
        int32_t *sel_keep = NULL;
        double *scores_keep = NULL;
        const size_t nsel = computed ? nsx_sel_size(p) : 0, nscores = b->sel_scores ? rows * (size_t)p->L : 0;
        if (ndup && computed) { /* the selection the kernel got, for the copied rows */
            sel_keep = malloc(nsel * sizeof *sel_keep);
            scores_keep = nscores ? malloc(nscores * sizeof *scores_keep) : NULL;
            if (!sel_keep || (nscores && !scores_keep))
                ndup = 0;
            else {
                memcpy(sel_keep, b->sel_out, nsel * sizeof *sel_keep);
                if (nscores)
                    memcpy(scores_keep, b->sel_scores, nscores * sizeof *scores_keep);
            }
        }
        for (size_t x = 0; ndup && x < rows; x++)
            dup[x] = src[x] >= 0;
        opts.skip = ndup ? dup : NULL;
        int r3 = nsx_build_expect(b, &rc3, &opts, &stats, &e);
        /* the reference marks a row it skips unselected: the copied rows get
           the selection the kernel got back, whatever the reference did (the
           loop reference below reads it when the certified one gave up) */
        for (size_t x = 0; ndup && computed && x < rows; x++)
            if (dup[x]) {
                memcpy(b->sel_out + x * (size_t)p->sel.k, sel_keep + x * (size_t)p->sel.k,
                       (size_t)p->sel.k * sizeof *sel_keep);
                if (nscores)
                    memcpy(b->sel_scores + x * (size_t)p->L, scores_keep + x * (size_t)p->L,
                           (size_t)p->L * sizeof *scores_keep);
            }
        if (!r3 && ndup) {
            nsx_slice z;
            int zok = nsx_slice_init(&z, p) == 0;
            for (size_t x = 0; x < rows; x++) {
                if (!dup[x])
                    continue;
                const int bb = (int)(x / (size_t)p->L), i = (int)(x % (size_t)p->L), a = src[x];
                for (int h = 0; h < p->H; h++) {
                    memcpy(b->o + nsx_o_at(p, bb, i, h, 0), b->o + nsx_o_at(p, a, i, h, 0),
                           (size_t)p->dv * sizeof *b->o);
                    b->lse[nsx_lse_at(p, bb, h, i)] = b->lse[nsx_lse_at(p, a, h, i)];
                }
                if (zok)
                    stats.tuples += row_tuples(&z, b, bb, i) * (uint64_t)p->H;
            }
            if (zok)
                nsx_slice_free(&z);
        }
        free(src), free(dup), free(sel_keep), free(scores_keep);
        if (r3) {
            if (nsx_err_is_fatal(e.kind))
                goto fatal;
            if ((e.kind != NSX_E_PRECISION_CAP && e.kind != NSX_E_TOO_LARGE) || c->exact_cap || !automatic ||
                nsx_fz_case_work(c) > NSX_FZ_LOOP_WORK) {
                prefixed(note, sizeof note, "reference: ", e.msg);
                skip(v, note);
                goto done;
            }
            ref = v->ref = NSX_FZ_REF_LOOP;
        } else {
            v->tuples = stats.tuples;
        }
    }
    if (ref == NSX_FZ_REF_LOOP) {
        v->unc_o = malloc(nsx_o_size(p) * sizeof *v->unc_o);
        v->unc_lse = malloc(nsx_lse_size(p) * sizeof *v->unc_lse);
        if (!v->unc_o || !v->unc_lse)
            goto oom;
        uint64_t tuples = 0;
        int r3 = nsx_dref_forward(p, &b->in, sel, skiprow, b->o, b->lse, v->unc_o, v->unc_lse, &tuples, &e);
        v->tuples = tuples;
        if (nsx_err_is_fatal(r3))
            goto fatal;
        if (r3) {
            skip(v, e.msg);
            goto done;
        }
    }

    /* 4. the oracle */
    nsx_case_info info = nsx_build_info(b, "fuzz", "fuzz", "");
    nsx_candidate cand = {.o = v->o, .lse = v->has_lse ? v->lse : NULL};
    nsx_expected_unc unc = {.o = v->unc_o, .lse = v->unc_lse};
    nsx_check_report rep;
    int r4 = nsx_check_unc(p, &info, &b->in, &b->out, v->unc_o ? &unc : NULL, &cand, m, &rep, &e);
    if (nsx_err_is_fatal(r4)) {
        rc = nsx_err_set(err, r4, "%s", e.msg);
        goto done;
    }
    if (r4) {
        prefixed(note, sizeof note, "oracle: ", e.msg);
        skip(v, note);
        goto done;
    }
    v->worst_o = rep.worst_o.found ? rep.worst_o.ratio : 0;
    v->worst_lse = rep.worst_lse.found ? rep.worst_lse.ratio : 0;
    v->worst = fmax(v->worst_o, v->worst_lse);
    const char *first = rep.nnotes ? rep.notes[0] : "failed";
    if (rep.pair_failed)
        fail(v, NSX_FZ_PAIR, first);
    if (rep.rows_empty_failed)
        fail(v, NSX_FZ_EMPTY, first);
    if ((rep.worst_o.found && rep.worst_o.ratio > 1) || (rep.worst_lse.found && rep.worst_lse.ratio > 1) ||
        (!rep.pass && !v->kinds))
        fail(v, NSX_FZ_BOUND, first);
    /* the first note names the first failure the oracle found; for the
       primary kind, find its own note */
    for (int x = 0; x < rep.nnotes; x++) {
        unsigned kind = nsx_fz_primary(v->kinds);
        int is_pair = rep.note_kind[x] == NSX_NOTE_PAIR;
        int is_empty = rep.note_kind[x] == NSX_NOTE_EMPTY;
        if ((kind == NSX_FZ_PAIR && is_pair) || (kind == NSX_FZ_EMPTY && is_empty) ||
            (kind == NSX_FZ_BOUND && !is_pair && !is_empty)) {
            copy_text(v->note, sizeof v->note, rep.notes[x]);
            break;
        }
    }

    /* 5. the head permutation */
    if (c->heads && p->H >= 2 && (rc = heads_probe(k, c, sel, skiprow, v, err)))
        goto done;
    /* 6. the backward pass (fuzz/bwd.c) */
    if ((rc = nsx_fz_bwd_judge(k, m, c, sel, ref, v, err)))
        goto done;
    if (v->status != NSX_FZ_FAIL && v->status != NSX_FZ_SKIP)
        v->status = NSX_FZ_PASS;
    goto done;
oom:
    rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
    goto done;
fatal:
    rc = nsx_err_set(err, e.kind, "%s", e.msg);
done:
    free(skiprow);
    return rc;
}
