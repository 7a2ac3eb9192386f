/*
 * Fuzzing the backward pass (fuzz/fuzz.h; docs/FUZZING.md section 11).
 *
 * A backward case is a forward case with an upstream gradient do (recipe
 * key bwd=1; no forward leak pairs or probes, batch copies allowed).  After
 * the forward judging (judge.c, steps 1-5):
 *
 *   6a. the kernel's backward (nsx_kernel_run_backward) on its own o, lse;
 *   6b. the expected gradients: MPFR (correctly rounded, computed with the
 *       forward's expected values when nsx_fz_bwd_mpfr) or the binary64
 *       loop (fuzz/dref_bwd.c) with its allowance; the loop's magnitudes
 *       are computed in every case (the bound below needs them);
 *   6c. every element of dq, dk_m, dv_m against the oracle's gradient
 *       bound (docs/ORACLE.md section 8; nsx_check_unc with the loop
 *       reference's allowance as the expected values' uncertainty);
 *   6d. probes that need no reference: keys no allowed tuple uses get
 *       exactly 0, batch copies alike within G5, and one of (by the case's
 *       seed) the causal probe (q and dO changed before t: dq at i >= t,
 *       dk_m and dv_m at j >= t unchanged), dO scaled by 2 (the gradients
 *       double: bit for bit, or within the bound), (K1,V1) <-> (K2,V2) for
 *       n = 2 with the product reducer (the gradients swap, within the
 *       bound).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/dref.h"
#include "fuzz/fuzz.h"
#include "io/fpformat.h"
#include "nsimplex/slice.h"
#include "oracle/within.h"

/* ---- drawing ------------------------------------------------------------- */

/* Removes every " KEY=..." token whose key is `key` from recipe. */
static void drop_token(char *recipe, const char *key)
{
    size_t klen = strlen(key);
    char *s = recipe;
    while ((s = strstr(s, key)) != NULL) {
        if (s > recipe && s[-1] == ' ' && s[klen] == '=') {
            char *end = strchr(s, ' ');
            if (!end)
                end = s + strlen(s);
            memmove(s - 1, end, strlen(end) + 1);
            s = s - 1 > recipe ? s - 1 : recipe;
        } else {
            s += klen;
        }
    }
}

int nsx_fz_bwd_pick(uint64_t seed, int mode, const nsx_kernel_info *ki)
{
    nsx_rng r = {seed ^ 0x62776466757a7a31ull};
    if (!nsx_kernel_backward_order(ki) || mode == NSX_FZ_BWD_NONE)
        return 0;
    return mode == NSX_FZ_BWD_ONLY || nsx_rng_chance(&r, NSX_FZ_BWD_SHARE);
}

const nsx_kernel_info *nsx_fz_bwd_info(const nsx_kernel_info *ki, nsx_kernel_info *tmp)
{
    *tmp = *ki;
    const int order = nsx_kernel_backward_order(ki);
    tmp->max_order = order < ki->max_order ? order : ki->max_order;
    /* what both passes take (an info edited after the fact may declare a
       backward feature the forward lacks) */
    tmp->features = (ki->backward_features & ki->features) | (ki->features & NSX_FEAT_LSE);
    return tmp;
}

void nsx_fz_draw_bwd(nsx_fz_draw *d)
{
    drop_token(d->recipe, "leak");
    drop_token(d->recipe, "probe");
    /* scores of 2^60 (dist=large, big lanes) leave a float32 backward that
       recomputes P from the saved LSE nothing to stand on: its scores and
       the forward's differ by far more than exp's range, so exp(S - lse)
       overflows (docs/FUZZING.md 11); the forward fuzzes such magnitudes */
    char *large = strstr(d->recipe, " dist=large");
    if (large)
        memmove(large, large + 11, strlen(large + 11) + 1);
    int n = 1;
    if (sscanf(d->recipe, "n=%d", &n) == 1 && n >= 1 && d->big > 12 / (n + 1))
        d->big = 12 / (n + 1);
    nsx_fz_put(d->recipe, sizeof d->recipe, " bwd=1");
    d->bwd = 1;
}

int nsx_fz_bwd_mpfr(const nsx_fz_case *c, int ref)
{
    return c->bwd && ref == NSX_FZ_REF_MPFR && (c->exact_cap || nsx_fz_case_work(c) <= NSX_FZ_BWD_MPFR_WORK);
}

/* ---- gradient buffers ---------------------------------------------------- */

typedef struct grads {
    double *q, *k[NSX_MAX_ORDER], *v[NSX_MAX_ORDER];
} grads;

static void grads_free(grads *g)
{
    free(g->q);
    for (int m = 0; m < NSX_MAX_ORDER; m++)
        free(g->k[m]), free(g->v[m]);
    memset(g, 0, sizeof *g);
}

static int grads_alloc(grads *g, const nsx_problem *p)
{
    memset(g, 0, sizeof *g);
    int ok = (g->q = malloc(nsx_q_size(p) * sizeof(double))) != NULL;
    for (int m = 0; m < p->n; m++) {
        ok &= (g->k[m] = malloc(nsx_k_size(p) * sizeof(double))) != NULL;
        ok &= (g->v[m] = malloc(nsx_v_size(p) * sizeof(double))) != NULL;
    }
    if (!ok)
        grads_free(g);
    return ok ? 0 : -1;
}

/* Tensor t of a gradient set: 0 dq, then dk_m, dv_m (m = (t-1)/2). */
static double *tensor(const grads *g, int t)
{
    return t == 0 ? g->q : t % 2 ? g->k[(t - 1) / 2] : g->v[(t - 1) / 2];
}

static size_t tensor_size(const nsx_problem *p, int t)
{
    return t == 0 ? nsx_q_size(p) : t % 2 ? nsx_k_size(p) : nsx_v_size(p);
}

static const char *tensor_name(int t, char *buf, size_t len)
{
    if (t == 0)
        snprintf(buf, len, "dq");
    else
        snprintf(buf, len, "%s%d", t % 2 ? "dk" : "dv", ((t - 1) / 2 + 1) % 10);
    return buf;
}

/* (b, position, head, component) of element e of tensor t. */
static void coords(const nsx_problem *p, int t, size_t e, int *b, int *j, int *h, int *c)
{
    const int w = t == 0 || t % 2 ? p->d : p->dv, heads = t == 0 ? p->H : p->Hkv;
    *c = (int)(e % (size_t)w);
    e /= (size_t)w;
    *h = (int)(e % (size_t)heads);
    e /= (size_t)heads;
    *j = (int)(e % (size_t)p->L);
    *b = (int)(e / (size_t)p->L);
}

/* ---- the probes' tolerance (G5 of docs/FUZZING.md 11.2) ---------------------- */

static double gam_u(double k, double u)
{
    return expm1(k * log1p(u));
}

typedef struct bound_ctx {
    double rel;    /* G5: the relative part, times the magnitude */
    double abs;    /* the absolute part */
} bound_ctx;

/* G5 for the kernel's model m on the problem whose loop reference gave g: the
   tolerance of the probes, which compare two runs of the kernel. */
static bound_ctx kernel_bound(const nsx_problem *p, const nsx_model *m, const nsx_dref_grads *g)
{
    const int fmts[] = {m->op, m->acc, m->inter, m->w, m->out, m->lseout};
    double u = 0, lambda = 0;
    for (size_t x = 0; x < sizeof fmts / sizeof fmts[0]; x++) {
        if (fmts[x] < NSX_FORMAT_F64 || fmts[x] > NSX_FORMAT_BF16)
            continue; /* no such stage */
        nsx_fmt f = nsx_fmt_of(fmts[x]);
        u = fmax(u, f.u);
        lambda = fmax(lambda, f.lambda);
    }
    const double n = p->n, d = p->d, dv = p->dv;
    const double beta = gam_u(2 * n + d + 2, u) * g->smax + 4 * u * (g->tabs + log(g->nmax + 1) + 1) + 5 * u;
    const double rho = expm1(2 * beta) + gam_u(g->nmax + 2, u);
    const double k = g->terms + 4 * n + d + dv + 16;
    bound_ctx b;
    b.rel = 4 * (2 * rho * (1 + rho) + gam_u(k, u) + gam_u(4 * n + dv + 8, u));
    b.abs = 4 * k * lambda * (g->pmax + 1) * (g->cmax + 1);
    if (!(rho < 0.5)) /* the weights are not bounded: finiteness only */
        b.rel = b.abs = INFINITY;
    return b;
}

/* ---- judging ------------------------------------------------------------------ */

static void copy_note(nsx_fz_verdict *v, unsigned kind, const char *note)
{
    if (!v->kinds) {
        size_t n = strlen(note);
        if (n >= sizeof v->note)
            n = sizeof v->note - 1;
        memcpy(v->note, note, n);
        v->note[n] = '\0';
    }
    v->kinds |= kind;
    v->status = NSX_FZ_FAIL;
}

static int same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* Runs the kernel's forward and backward on (p, in) into o, lse, g.  0, a
   fatal kind, or -1 when the kernel failed (note in e). */
static int run_both(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel, double *o,
                    double *lse, grads *g, nsx_err *e)
{
    int has_lse;
    int rc = nsx_kernel_run(k, p, in, sel, o, lse, &has_lse, e);
    if (!rc)
        rc = nsx_kernel_run_backward(k, p, in, sel, o, lse, has_lse, g->q, g->k, g->v, e);
    return nsx_err_is_fatal(rc) ? rc : rc ? -1 : 0;
}

/* The keys no allowed tuple uses: used[(m * B + b) * L + j] = 0. */
static unsigned char *used_keys(const nsx_problem *p, const int32_t *sel)
{
    unsigned char *used = calloc((size_t)p->n * p->B * p->L, 1);
    nsx_slice z;
    if (!used || nsx_slice_init(&z, p)) {
        free(used);
        return NULL;
    }
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->L; i++) {
            const int32_t *row = p->sel.source != NSX_SEL_NONE ? sel + nsx_sel_at(p, b, i, 0) : NULL;
            nsx_slice_start(&z, i, row);
            while (nsx_slice_next(&z))
                for (int m = 0; m < p->n; m++)
                    used[((size_t)m * p->B + b) * p->L + z.J[m]] = 1;
        }
    nsx_slice_free(&z);
    return used;
}

/* The probes of 6d that rerun the kernel.  ctx: what they compare with. */
typedef struct probe_ctx {
    const nsx_kernel *k;
    const nsx_fz_case *c;
    const int32_t *sel;
    const double *o, *lse;
    int has_lse;
    const grads *g;          /* the kernel's gradients */
    const nsx_dref_grads *mag; /* magnitudes (may be NULL: no bound-based probe) */
    bound_ctx kb;
} probe_ctx;

static double bound_of(const probe_ctx *x, int t, size_t e)
{
    const double *mt = t == 0 ? x->mag->mq : t % 2 ? x->mag->mk[(t - 1) / 2] : x->mag->mv[(t - 1) / 2];
    /* a magnitude of 0 has no relative part, even where the weights'
       relative error is unbounded (inf * 0) */
    return (mt[e] > 0 ? x->kb.rel * mt[e] : 0) + x->kb.abs;
}

/* The causal probe: q and dO of positions < t replaced.  0, fatal, or the
   verdict updated. */
static int probe_causal(const probe_ctx *x, nsx_rng *r, nsx_fz_verdict *v, nsx_err *err)
{
    const nsx_problem *p = &x->c->b.p;
    if (!p->causal || p->L < 2)
        return 0;
    const int t = 1 + nsx_rng_below(r, p->L - 1);
    double *q = malloc(nsx_q_size(p) * sizeof *q), *dout = malloc(nsx_o_size(p) * sizeof *dout);
    double *o = malloc(nsx_o_size(p) * sizeof *o), *lse = malloc(nsx_lse_size(p) * sizeof *lse);
    grads g2;
    int rc = 0, galloc = grads_alloc(&g2, p);
    if (!q || !dout || !o || !lse || galloc) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        goto done;
    }
    memcpy(q, x->c->b.q, nsx_q_size(p) * sizeof *q);
    memcpy(dout, x->c->b.dout, nsx_o_size(p) * sizeof *dout);
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < t; i++)
            for (int h = 0; h < p->H; h++) {
                for (int l = 0; l < p->d; l++)
                    q[nsx_q_at(p, b, i, h, l)] = nsx_round_to_format(nsx_rng_normal(r), p->input_format);
                for (int c = 0; c < p->dv; c++)
                    dout[nsx_o_at(p, b, i, h, c)] = nsx_round_to_format(4 * nsx_rng_normal(r), p->input_format);
            }
    nsx_inputs in = x->c->b.in;
    in.q = q;
    in.dout = dout;
    nsx_err e = {0};
    int r2 = run_both(x->k, p, &in, x->sel, o, lse, &g2, &e);
    if (r2 > 0) {
        rc = nsx_err_set(err, r2, "%s", e.msg);
        goto done;
    }
    if (r2 < 0)
        goto done; /* the kernel failed on the changed inputs: the main run judges it */
    for (int tt = 0; tt < 1 + 2 * p->n; tt++) {
        const double *a = tensor(x->g, tt), *b2 = tensor(&g2, tt);
        for (size_t e2 = 0; e2 < tensor_size(p, tt); e2++) {
            int b, j, h, c;
            coords(p, tt, e2, &b, &j, &h, &c);
            if (j < t || same(a[e2], b2[e2]))
                continue;
            char note[256], nm[16];
            snprintf(note, sizeof note,
                     "causal probe: q and do changed at positions < %d only, but %s[b=%d, pos=%d, head=%d, %d] "
                     "changed from %.9g to %.9g",
                     t, tensor_name(tt, nm, sizeof nm), b, j, h, c, a[e2], b2[e2]);
            copy_note(v, NSX_FZ_GRAD_PROBE, note);
            goto done;
        }
    }
done:
    free(q), free(dout), free(o), free(lse);
    if (!galloc)
        grads_free(&g2);
    return rc;
}

/* dO scaled by 2: the backward alone (the forward is unchanged). */
static int probe_scale(const probe_ctx *x, nsx_fz_verdict *v, nsx_err *err)
{
    const nsx_problem *p = &x->c->b.p;
    double *dout = malloc(nsx_o_size(p) * sizeof *dout);
    grads g2;
    int rc = 0, galloc = grads_alloc(&g2, p);
    if (!dout || galloc) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        goto done;
    }
    for (size_t e = 0; e < nsx_o_size(p); e++)
        dout[e] = 2 * x->c->b.dout[e];
    nsx_inputs in = x->c->b.in;
    in.dout = dout;
    nsx_err e = {0};
    int r2 = nsx_kernel_run_backward(x->k, p, &in, x->sel, x->o, x->lse, x->has_lse, g2.q, g2.k, g2.v, &e);
    if (nsx_err_is_fatal(r2)) {
        rc = nsx_err_set(err, r2, "%s", e.msg);
        goto done;
    }
    if (r2)
        goto done;
    for (int tt = 0; tt < 1 + 2 * p->n; tt++) {
        const double *a = tensor(x->g, tt), *b2 = tensor(&g2, tt);
        for (size_t e2 = 0; e2 < tensor_size(p, tt); e2++) {
            double want = 2 * a[e2];
            if (same(want, b2[e2]) || nsx_within(b2[e2], want, 2 * bound_of(x, tt, e2)))
                continue;
            int b, j, h, c;
            char note[256], nm[16];
            coords(p, tt, e2, &b, &j, &h, &c);
            snprintf(note, sizeof note,
                     "dO scaled by 2: %s[b=%d, pos=%d, head=%d, %d] went from %.9g to %.9g, not twice it (within "
                     "%.3g)",
                     tensor_name(tt, nm, sizeof nm), b, j, h, c, a[e2], b2[e2], 2 * bound_of(x, tt, e2));
            copy_note(v, NSX_FZ_GRAD_PROBE, note);
            goto done;
        }
    }
done:
    free(dout);
    if (!galloc)
        grads_free(&g2);
    return rc;
}

/* (K1,V1) <-> (K2,V2): n = 2, product reducer; windows, biases and the
   selected dimensions swapped with them. */
static int probe_swap(const probe_ctx *x, nsx_fz_verdict *v, nsx_err *err)
{
    const nsx_problem *p0 = &x->c->b.p;
    if (p0->n != 2 || p0->reduce != NSX_REDUCE_PRODUCT)
        return 0;
    nsx_problem p = *p0;
    p.window[0] = p0->window[1], p.window[1] = p0->window[0];
    p.k_bias[0] = p0->k_bias[1], p.k_bias[1] = p0->k_bias[0];
    p.v_bias[0] = p0->v_bias[1], p.v_bias[1] = p0->v_bias[0];
    if (p.sel.source != NSX_SEL_NONE)
        p.sel.dims = (p0->sel.dims & 1u) << 1 | (p0->sel.dims >> 1 & 1u);
    nsx_inputs in = x->c->b.in;
    in.k[0] = x->c->b.in.k[1], in.k[1] = x->c->b.in.k[0];
    in.v[0] = x->c->b.in.v[1], in.v[1] = x->c->b.in.v[0];
    double *o = malloc(nsx_o_size(&p) * sizeof *o), *lse = malloc(nsx_lse_size(&p) * sizeof *lse);
    grads g2;
    int rc = 0, galloc = grads_alloc(&g2, &p);
    if (!o || !lse || galloc) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        goto done;
    }
    nsx_err e = {0};
    int r2 = run_both(x->k, &p, &in, x->sel, o, lse, &g2, &e);
    if (r2 > 0) {
        rc = nsx_err_set(err, r2, "%s", e.msg);
        goto done;
    }
    if (r2 < 0)
        goto done;
    static const int swapped[5] = {0, 3, 4, 1, 2}; /* dq, dk1 <-> dk2, dv1 <-> dv2 */
    for (int tt = 0; tt < 5; tt++) {
        const double *a = tensor(x->g, swapped[tt]), *b2 = tensor(&g2, tt);
        for (size_t e2 = 0; e2 < tensor_size(&p, tt); e2++) {
            double bd = 2 * bound_of(x, swapped[tt], e2);
            if (same(a[e2], b2[e2]) || nsx_within(b2[e2], a[e2], bd))
                continue;
            int b, j, h, c;
            char note[256], n1[16], n2[16];
            coords(&p, tt, e2, &b, &j, &h, &c);
            snprintf(note, sizeof note,
                     "(K1,V1) <-> (K2,V2): %s[b=%d, pos=%d, head=%d, %d] of the swapped problem is %.9g, %s of the "
                     "original %.9g (beyond %.3g)",
                     tensor_name(tt, n1, sizeof n1), b, j, h, c, b2[e2], tensor_name(swapped[tt], n2, sizeof n2),
                     a[e2], bd);
            copy_note(v, NSX_FZ_GRAD_PROBE, note);
            goto done;
        }
    }
done:
    free(o), free(lse);
    if (!galloc)
        grads_free(&g2);
    return rc;
}

static void dref_free(nsx_dref_grads *r)
{
    free(r->dq), free(r->uq), free(r->mq);
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(r->dk[m]), free(r->uk[m]), free(r->mk[m]);
        free(r->dv[m]), free(r->uv[m]), free(r->mv[m]);
    }
}

static int dref_alloc(nsx_dref_grads *r, const nsx_problem *p)
{
    memset(r, 0, sizeof *r);
    int ok = (r->dq = malloc(nsx_q_size(p) * sizeof(double))) && (r->uq = malloc(nsx_q_size(p) * sizeof(double))) &&
             (r->mq = malloc(nsx_q_size(p) * sizeof(double)));
    for (int m = 0; m < p->n && ok; m++) {
        ok &= (r->dk[m] = malloc(nsx_k_size(p) * sizeof(double))) != NULL;
        ok &= (r->uk[m] = malloc(nsx_k_size(p) * sizeof(double))) != NULL;
        ok &= (r->mk[m] = malloc(nsx_k_size(p) * sizeof(double))) != NULL;
        ok &= (r->dv[m] = malloc(nsx_v_size(p) * sizeof(double))) != NULL;
        ok &= (r->uv[m] = malloc(nsx_v_size(p) * sizeof(double))) != NULL;
        ok &= (r->mv[m] = malloc(nsx_v_size(p) * sizeof(double))) != NULL;
    }
    if (!ok)
        dref_free(r);
    return ok ? 0 : -1;
}

int nsx_fz_bwd_judge(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, const int32_t *sel, int ref,
                     nsx_fz_verdict *v, nsx_err *err)
{
    nsx_instance *b = &c->b;
    const nsx_problem *p = &b->p;
    if (!c->bwd || !nsx_kernel_backward_order(k->info) || !v->o || !b->dout)
        return 0;
    grads g = {0};
    nsx_dref_grads r = {0};
    unsigned char *used = NULL;
    int rc = 0, dref_ok = 0;
    nsx_err e = {0};
    char note[300];
    if (grads_alloc(&g, p) || dref_alloc(&r, p)) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        goto done;
    }

    /* 6a. the kernel's backward */
    int r6 = nsx_kernel_run_backward(k, p, &b->in, sel, v->o, v->lse, v->has_lse, g.q, g.k, g.v, &e);
    if (nsx_err_is_fatal(r6)) {
        rc = nsx_err_set(err, r6, "%s", e.msg);
        goto done;
    }
    if (r6) {
        snprintf(note, sizeof note, "backward: %.280s", e.msg);
        unsigned kind = r6 == NSX_E_KERNEL_REFUSED ? NSX_FZ_UNSUPPORTED : NSX_FZ_ERROR;
        if (r6 == NSX_E_UNSUPPORTED)
            goto done; /* not declared: nothing to judge */
        if (k->iso)
            switch (k->iso->fault) {
            case NSX_KFAULT_SIGNAL: kind = NSX_FZ_SIGNAL; break;
            case NSX_KFAULT_TIMEOUT: kind = NSX_FZ_TIMEOUT; break;
            case NSX_KFAULT_EXIT: kind = NSX_FZ_EXIT; break;
            case NSX_KFAULT_OVERFLOW: kind = NSX_FZ_OVERFLOW; break;
            case NSX_KFAULT_CUT: goto done;
            default: break;
            }
        copy_note(v, kind, note);
        goto done;
    }
    v->bwd = 1;
    v->dq = g.q;
    for (int x = 0; x < p->n; x++)
        v->dk[x] = g.k[x], v->dv[x] = g.v[x];

    /* 6b. expected values and magnitudes */
    int rl = nsx_dref_backward(p, &b->in, sel, &r, &e);
    if (nsx_err_is_fatal(rl)) {
        rc = nsx_err_set(err, rl, "%s", e.msg);
        goto done;
    }
    dref_ok = rl == 0;
    const int mpfr = nsx_fz_bwd_mpfr(c, ref);
    v->bwd_ref = mpfr ? NSX_FZ_REF_MPFR : NSX_FZ_REF_LOOP;
    if (!dref_ok) {
        /* no magnitudes: no bound (the forward verdict stands) */
        v->bwd = 0;
        goto done;
    }
    probe_ctx px = {k, c, sel, v->o, v->lse, v->has_lse, &g, &r, kernel_bound(p, m, &r)};

    /* 6c. every element against the oracle's gradient bound (docs/ORACLE.md
       section 8; the one definition: `nsimplex check` replays the saved pair
       with it), against MPFR or against the loop's values within their
       allowance (nsx_check_unc) */
    if (!v->kinds) {
        nsx_case_info info = nsx_build_info(b, "fuzz", "fuzz", "");
        nsx_candidate cand = {v->o, v->has_lse ? v->lse : NULL, NULL, g.q, {0}, {0}};
        nsx_outputs exo = b->out;
        nsx_expected_unc eu = {v->unc_o, v->unc_lse, mpfr ? NULL : r.uq, {0}, {0}};
        if (!mpfr)
            exo.dq = r.dq;
        for (int x = 0; x < p->n; x++) {
            cand.dk[x] = g.k[x], cand.dv[x] = g.v[x];
            if (!mpfr) {
                exo.dk[x] = r.dk[x], exo.dv[x] = r.dv[x];
                eu.dk[x] = r.uk[x], eu.dv[x] = r.uv[x];
            }
        }
        const int any_unc = !mpfr || v->unc_o;
        nsx_check_report rep;
        int r4 = nsx_check_unc(p, &info, &b->in, &exo, any_unc ? &eu : NULL, &cand, m, &rep, &e);
        if (nsx_err_is_fatal(r4)) {
            rc = nsx_err_set(err, r4, "%s", e.msg);
            goto done;
        }
        if (!r4 && rep.grad_status == NSX_GRAD_JUDGED) {
            const nsx_check_worst *w[3] = {&rep.worst_dq, &rep.worst_dk, &rep.worst_dv};
            for (int x = 0; x < 3; x++)
                if (w[x]->found && !(w[x]->ratio <= v->worst_grad))
                    v->worst_grad = isnan(w[x]->ratio) ? INFINITY : w[x]->ratio;
            if (rep.grad_nonfinite)
                v->worst_grad = INFINITY;
        }
        if (!r4 && rep.grad_status == NSX_GRAD_JUDGED && (rep.grad_failed || rep.grad_zero_failed))
            for (int x = 0; x < rep.nnotes; x++)
                if (rep.note_kind[x] == NSX_NOTE_GRAD) {
                    copy_note(v, NSX_FZ_GRAD, rep.notes[x]);
                    break;
                }
    }

    /* 6d. keys no allowed tuple uses: exactly 0 */
    if (!(used = used_keys(p, sel))) {
        rc = nsx_err_set(err, NSX_E_NOMEM, "fuzz: out of memory");
        goto done;
    }
    for (int t = 1; t < 1 + 2 * p->n && !(v->kinds & NSX_FZ_GRAD_PROBE); t++) {
        const double *cand = tensor(&g, t);
        for (size_t x = 0; x < tensor_size(p, t); x++) {
            int bb, j, h, cc;
            coords(p, t, x, &bb, &j, &h, &cc);
            if (used[((size_t)((t - 1) / 2) * p->B + bb) * p->L + j] || cand[x] == 0)
                continue;
            char nm[16];
            snprintf(note, sizeof note,
                     "masked key: no allowed tuple uses key %d of batch %d in dimension %d, but %s[b=%d, pos=%d, "
                     "head=%d, %d] = %.9g, not 0",
                     j, bb, (t - 1) / 2 + 1, tensor_name(t, nm, sizeof nm), bb, j, h, cc, cand[x]);
            copy_note(v, NSX_FZ_GRAD_PROBE, note);
            break;
        }
    }
    /* batch copies: the same gradients within the bound (not bit for bit:
       a backward may add a dk, dv element's terms in an order that depends
       on the batch's place, e.g. work items dealt to slots by their global
       index, as simd/backward.c does) */
    for (int x = 0; x < b->npairs && !(v->kinds & NSX_FZ_GRAD_PROBE); x++) {
        const nsx_pair *q = &b->pairs[x];
        if (!nsx_pair_is_copy(q, p->L))
            continue;
        for (int t = 0; t < 1 + 2 * p->n; t++) {
            const double *cand = tensor(&g, t);
            size_t per = tensor_size(p, t) / (size_t)p->B;
            for (size_t y = 0; y < per; y++) {
                const size_t ea = q->a * per + y, eb = q->b * per + y;
                const double bd = bound_of(&px, t, ea) + bound_of(&px, t, eb);
                if (same(cand[ea], cand[eb]) || nsx_within(cand[eb], cand[ea], bd))
                    continue;
                char nm[16];
                int bb, j, h, cc;
                coords(p, t, ea, &bb, &j, &h, &cc);
                snprintf(note, sizeof note,
                         "batch copy: batches %d and %d are equal, but %s[pos=%d, head=%d, %d] differ: %.9g and "
                         "%.9g (beyond %.3g)",
                         q->a, q->b, tensor_name(t, nm, sizeof nm), j, h, cc, cand[ea], cand[eb], bd);
                copy_note(v, NSX_FZ_GRAD_PROBE, note);
                t = 1 + 2 * p->n;
                break;
            }
        }
    }
    /* one probe that reruns the kernel, by the case's seed */
    if (!v->kinds) {
        nsx_rng rr = {c->seed ^ 0x70726f6265627764ull};
        switch (nsx_rng_below(&rr, 4)) {
        case 0: rc = probe_causal(&px, &rr, v, err); break;
        case 1: rc = probe_scale(&px, v, err); break;
        case 2: rc = probe_swap(&px, v, err); break;
        default: break;
        }
    }
done:
    if (!v->bwd) {
        grads_free(&g);
        v->dq = NULL;
        memset(v->dk, 0, sizeof v->dk);
        memset(v->dv, 0, sizeof v->dv);
    }
    dref_free(&r);
    free(used);
    return rc;
}
