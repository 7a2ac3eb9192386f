/* Driving a kernel behind the ABI (runner/runner.h). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/json.h"
#include "runner/iso.h"
#include "runner/runner.h"
#include "simd/indexer.h"
#include "simd/n1.h"
#include "simd/simd.h"

#define ALL_FEATURES                                                                                        \
    (NSX_FEAT_WINDOWS | NSX_FEAT_SELECTION | NSX_FEAT_GQA | NSX_FEAT_CAUSAL_OFF | NSX_FEAT_DISTINCT |     \
     NSX_FEAT_BIASES | NSX_FEAT_SUM | NSX_FEAT_MEAN | NSX_FEAT_LSE)

double nsx_kernel_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

#define ALL_IDX_BITS                                                                                        \
    (NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL | NSX_IDX_RELU | NSX_IDX_SOFTMAX | NSX_IDX_IDENTITY |        \
     NSX_IDX_CAUSAL_OFF)

/* The indexer's declaration (ABI 2 on): known bits, its formats (ABI 3: FP8
   inputs with a block size). */
static int indexer_info_check(const nsx_kernel_info *info, const char *w, nsx_err *err)
{
    if (info->abi_version < 2 || !info->indexer)
        return 0;
    if (info->indexer & ~ALL_IDX_BITS)
        return nsx_err_set(err, NSX_E_INPUT, "%s: indexer has unknown bits 0x%x", w, info->indexer & ~ALL_IDX_BITS);
    const int fp8 = info->abi_version >= 3 &&
                    (info->indexer_input_format == NSX_FORMAT_E4M3 || info->indexer_input_format == NSX_FORMAT_E5M2);
    const struct {
        int v;
        const char *field;
    } f[] = {{fp8 ? NSX_FORMAT_F32 : info->indexer_input_format, "indexer_input_format"},
             {info->indexer_accum_format, "indexer_accum_format"},
             {info->indexer_output_format, "indexer_output_format"}};
    for (int t = 0; t < 3; t++)
        if (f[t].v < NSX_FORMAT_F64 || f[t].v > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "%s: %s %d is not a format (0 f64, 1 f32, 2 f16, 3 bf16%s)", w,
                               f[t].field, f[t].v, t == 0 && info->abi_version >= 3 ? "; 6 e4m3, 7 e5m2" : "");
    if (fp8 && (info->indexer_block < 1 || info->indexer_block > NSX_MAX_DIM))
        return nsx_err_set(err, NSX_E_INPUT, "%s: indexer_block %d is not in 1..%d (FP8 indexer inputs)", w,
                           info->indexer_block, NSX_MAX_DIM);
    return 0;
}

int nsx_kernel_info_check(const nsx_kernel_info *info, const char *what, nsx_err *err)
{
    char w[256];
    nsx_printable(w, sizeof w, what ? what : "kernel");
    if (!info)
        return nsx_err_set(err, NSX_E_INPUT, "%s: nsx_kernel_get_info returned NULL", w);
    if (info->abi_version < NSX_KERNEL_ABI_MIN_VERSION || info->abi_version > NSX_KERNEL_ABI_VERSION)
        return nsx_err_set(err, NSX_E_INPUT, "%s: kernel ABI version %d, this program speaks %d to %d", w,
                           info->abi_version, NSX_KERNEL_ABI_MIN_VERSION, NSX_KERNEL_ABI_VERSION);
    if (!info->name)
        return nsx_err_set(err, NSX_E_INPUT, "%s: name is NULL", w);
    size_t len = strnlen(info->name, 128);
    if (len == 0 || len == 128)
        return nsx_err_set(err, NSX_E_INPUT, "%s: name is %s (1..127 printable characters)", w,
                           len ? "longer than 127 characters" : "empty");
    for (size_t t = 0; t < len; t++)
        if (info->name[t] < 0x20 || info->name[t] > 0x7e)
            return nsx_err_set(err, NSX_E_INPUT, "%s: name has a non-printable character (byte %zu)", w, t);
    if (info->max_order < 1 || info->max_order > NSX_MAX_ORDER)
        return nsx_err_set(err, NSX_E_INPUT, "%s: max_order %d is not in 1..%d", w, info->max_order,
                           NSX_MAX_ORDER);
    const struct {
        int v;
        const char *field;
    } fmt[] = {{info->input_format, "input_format"},
               {info->accum_format, "accum_format"},
               {info->weights_format, "weights_format"},
               {info->output_format, "output_format"}};
    for (int t = 0; t < 4; t++)
        if (fmt[t].v < NSX_FORMAT_F64 || fmt[t].v > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "%s: %s %d is not a format (0 f64, 1 f32, 2 f16, 3 bf16)", w,
                               fmt[t].field, fmt[t].v);
    if (info->features & ~ALL_FEATURES)
        return nsx_err_set(err, NSX_E_INPUT, "%s: features has unknown bits 0x%x", w,
                           info->features & ~ALL_FEATURES);
    int rc = indexer_info_check(info, w, err);
    if (rc)
        return rc;
    if (info->abi_version < 3 || info->backward_max_order == 0)
        return 0; /* ABI 1, 2: read no further */
    if (info->backward_max_order < 0 || info->backward_max_order > info->max_order)
        return nsx_err_set(err, NSX_E_INPUT, "%s: backward_max_order %d is not in 0..max_order (%d)", w,
                           info->backward_max_order, info->max_order);
    if (info->backward_features & ~info->features)
        return nsx_err_set(err, NSX_E_INPUT, "%s: backward_features has bits 0x%x that features lacks", w,
                           info->backward_features & ~info->features);
    if (!(info->features & NSX_FEAT_LSE))
        return nsx_err_set(err, NSX_E_INPUT, "%s: a backward needs the forward's lse, but features lacks bit 256", w);
    const int bfmt[2] = {info->backward_accum_format, info->backward_output_format};
    const char *bname[2] = {"backward_accum_format", "backward_output_format"};
    for (int t = 0; t < 2; t++)
        if (bfmt[t] < NSX_FORMAT_F64 || bfmt[t] > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "%s: %s %d is not a format (0 f64, 1 f32, 2 f16, 3 bf16)", w,
                               bname[t], bfmt[t]);
    return 0;
}

int nsx_kernel_open(nsx_kernel *k, const char *path, int isa, int threads, nsx_err *err)
{
    char why[200];
    memset(k, 0, sizeof *k);
    k->threads = nsx_simd_threads(threads);
    if (!path) {
        k->isa = isa >= 0 ? isa : nsx_simd_isa(why, sizeof why);
        if (k->isa < 0)
            return nsx_err_set(err, NSX_E_INPUT, "%s", why);
        if (!nsx_simd_isa_supported(k->isa))
            return nsx_err_set(err, NSX_E_INPUT, "this CPU cannot run the %s path", nsx_simd_isa_name(k->isa));
        if (!nsx_n1_tune(k->isa, why, sizeof why)) /* NSX_TUNE names no tune of this isa */
            return nsx_err_set(err, NSX_E_INPUT, "%s", why);
        k->info = nsx_simd_info();
        return 0;
    }
    k->path = path;
    if (!(k->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
        return nsx_err_set(err, NSX_E_INPUT, "%s", dlerror());
    nsx_kernel_get_info_fn info_fn;
    *(void **)&info_fn = dlsym(k->lib, "nsx_kernel_get_info");
    *(void **)&k->forward = dlsym(k->lib, "nsx_kernel_forward");
    if (!info_fn || !k->forward) {
        nsx_kernel_close(k);
        return nsx_err_set(err, NSX_E_INPUT, "%s: does not export nsx_kernel_get_info and nsx_kernel_forward",
                           path);
    }
    k->info = info_fn();
    int rc = nsx_kernel_info_check(k->info, path, err);
    if (rc) {
        nsx_kernel_close(k);
        return rc;
    }
    if (nsx_kernel_indexer_caps(k->info)) {
        *(void **)&k->indexer = dlsym(k->lib, "nsx_kernel_indexer");
        if (!k->indexer) {
            nsx_kernel_close(k);
            return nsx_err_set(err, NSX_E_INPUT, "%s: declares an indexer but does not export nsx_kernel_indexer",
                               path);
        }
    }
    if (nsx_kernel_backward_order(k->info)) {
        *(void **)&k->backward = dlsym(k->lib, "nsx_kernel_backward");
        if (!k->backward) {
            nsx_kernel_close(k);
            return nsx_err_set(err, NSX_E_INPUT,
                               "%s: declares a backward but does not export nsx_kernel_backward", path);
        }
    }
    return 0;
}

void nsx_kernel_close(nsx_kernel *k)
{
    if (k->lib)
        dlclose(k->lib);
    memset(k, 0, sizeof *k);
}

int nsx_kernel_call(const nsx_kernel *k, const nsx_kernel_problem *p, const nsx_kernel_io *io)
{
    return k->forward ? k->forward(p, io) : nsx_simd_forward_isa(p, io, k->threads, k->isa);
}

int nsx_kernel_index(const nsx_kernel *k, const nsx_indexer_problem *p, const nsx_indexer_io *io)
{
    if (k->indexer)
        return k->indexer(p, io);
    if (k->lib || !nsx_kernel_indexer_caps(k->info))
        return NSX_KERNEL_UNSUPPORTED;
    nsx_simd_idx_problem ip = {
        .B = p->B, .L = p->L, .source = NSX_SIMD_IDX_INDEXER, .Hi = p->Hi, .di = p->di, .act = p->act,
        .idx_scale = p->idx_scale, .causal = p->causal, .k = p->topk,
    };
    nsx_simd_idx_io iio = {
        .idx_q = io->idx_q, .idx_k = io->idx_k, .idx_w = io->idx_w, .sel = io->sel, .scores = io->scores,
    };
    return nsx_simd_indexer_isa(&ip, &iio, k->threads, k->isa);
}

/* 0 when features f and order max_order cover p, else -1 and why. */
static int covers(unsigned f, int max_order, const char *whose, const nsx_problem *p, char *why, size_t whylen)
{
    int windows = 0, biases = 0;
    for (int m = 0; m < p->n; m++) {
        windows |= p->window[m] > 0;
        biases |= p->k_bias[m] != 0 || p->v_bias[m] != 0;
    }
    const struct {
        int needed;
        unsigned bit;
        const char *what;
    } need[] = {
        {windows, NSX_FEAT_WINDOWS, "windows"},
        {p->sel.source != NSX_SEL_NONE, NSX_FEAT_SELECTION, "selection"},
        {p->H != p->Hkv, NSX_FEAT_GQA, "GQA"},
        {!p->causal, NSX_FEAT_CAUSAL_OFF, "causal off"},
        {p->distinct, NSX_FEAT_DISTINCT, "distinct"},
        {biases, NSX_FEAT_BIASES, "biases"},
        {p->reduce == NSX_REDUCE_SUM, NSX_FEAT_SUM, "the sum reducer"},
        {p->reduce == NSX_REDUCE_MEAN, NSX_FEAT_MEAN, "the mean reducer"},
    };
    if (p->n > max_order) {
        snprintf(why, whylen, "order n = %d above the %s %d", p->n, whose, max_order);
        return -1;
    }
    for (size_t t = 0; t < sizeof need / sizeof need[0]; t++)
        if (need[t].needed && !(f & need[t].bit)) {
            snprintf(why, whylen, "%s, which the %s does not declare", need[t].what, whose);
            return -1;
        }
    return 0;
}

int nsx_kernel_supports(const nsx_kernel_info *info, const nsx_problem *p, char *why, size_t whylen)
{
    return covers(info->features, info->max_order, "kernel", p, why, whylen);
}

int nsx_kernel_supports_bwd(const nsx_kernel_info *info, const nsx_problem *p, char *why, size_t whylen)
{
    if (!nsx_kernel_backward_order(info)) {
        snprintf(why, whylen, "the kernel has no backward");
        return -1;
    }
    return covers(info->backward_features, nsx_kernel_backward_order(info), "kernel's backward", p, why, whylen);
}

/* x as float32 into dst (inputs are converted as the kernel ABI takes them:
   exact for values representable in f32, rounded to nearest otherwise). */
static void put_f32(void *dst, const double *x, size_t count)
{
    float *f = dst;
    for (size_t t = 0; t < count; t++)
        f[t] = (float)x[t];
}

/* The bytes of count float32 or int32 elements (a buffer of at least one). */
static size_t bytes4(size_t count)
{
    return (count ? count : 1) * 4;
}

/* The ABI's return value r of a call of what ("", "indexer", "backward")
   as an error: 0 done, NSX_E_KERNEL_REFUSED for 1, NSX_E_KERNEL_ERROR. */
static int returned(int r, const char *what, nsx_err *err)
{
    if (r == NSX_KERNEL_UNSUPPORTED)
        return nsx_err_set(err, NSX_E_KERNEL_REFUSED, "unsupported problem: the kernel%s%s returned 1",
                           *what ? "'s " : "", what);
    if (r != NSX_KERNEL_OK)
        return nsx_err_set(err, NSX_E_KERNEL_ERROR, "the kernel%s%s returned error %d", *what ? "'s " : "", what, r);
    return 0;
}

/* The inputs of p's forward (and backward) into c: q, K_m, V_m, sel. */
static void put_inputs(iso_call *c, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel)
{
    put_f32(c->in[ISO_Q], in->q, nsx_q_size(p));
    for (int m = 0; m < p->n; m++) {
        put_f32(c->in[ISO_K + m], in->k[m], nsx_k_size(p));
        put_f32(c->in[ISO_V + m], in->v[m], nsx_v_size(p));
    }
    if (sel)
        memcpy(c->in[ISO_SEL], sel, nsx_sel_size(p) * sizeof *sel);
}

/* Their sizes. */
static void input_sizes(const nsx_problem *p, const int32_t *sel, size_t *in_bytes)
{
    in_bytes[ISO_Q] = bytes4(nsx_q_size(p));
    for (int m = 0; m < p->n; m++) {
        in_bytes[ISO_K + m] = bytes4(nsx_k_size(p));
        in_bytes[ISO_V + m] = bytes4(nsx_v_size(p));
    }
    in_bytes[ISO_SEL] = sel ? bytes4(nsx_sel_size(p)) : 0;
}

int nsx_kernel_run(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                   double *o, double *lse, int *has_lse, nsx_err *err)
{
    char why[200];
    *has_lse = (k->info->features & NSX_FEAT_LSE) != 0;
    if (nsx_kernel_supports(k->info, p, why, sizeof why))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s", why);
    size_t in_bytes[ISO_SLOTS] = {0};
    input_sizes(p, sel, in_bytes);
    const size_t counts[2] = {nsx_o_size(p), *has_lse ? nsx_lse_size(p) : 0};
    const char *const names[2] = {"o", "lse"};
    iso_call c;
    int r = 0, rc = iso_begin(k, &c, ISO_FORWARD, 2, counts, names, in_bytes, err);
    if (!rc) {
        put_inputs(&c, p, in, sel);
        nsx_problem_to_kernel(p, NULL, &c.rq.kp);
        rc = iso_run(k, &c, &r, err);
    }
    if (!rc)
        rc = returned(r, "", err);
    if (!rc) {
        const float *fo = c.out[0], *fl = c.out[1];
        for (size_t t = 0; t < counts[0]; t++)
            o[t] = fo[t];
        for (size_t t = 0; t < counts[1]; t++)
            lse[t] = fl[t];
    }
    iso_end(&c);
    return rc;
}

/* ---- the indexer --------------------------------------------------------- */

int nsx_kernel_run_indexer(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, int32_t *sel,
                           double *scores, nsx_err *err)
{
    const unsigned caps = nsx_kernel_indexer_caps(k->info);
    const nsx_selection *S = &p->sel;
    if (S->source != NSX_SEL_INDEXER)
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: its selection is not an indexer's");
    const unsigned act_bit = S->act == NSX_ACT_RELU ? NSX_IDX_RELU : S->act == NSX_ACT_SOFTMAX ? NSX_IDX_SOFTMAX
                                                                                             : NSX_IDX_IDENTITY;
    if (!caps || !(caps & act_bit) || (!p->causal && !(caps & NSX_IDX_CAUSAL_OFF)))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s, which the kernel does not declare",
                           !caps ? "an indexer" : !(caps & act_bit) ? "this activation" : "causal off");
    if (!(caps & NSX_IDX_WRITES_SCORES))
        scores = NULL;
    if (!(caps & NSX_IDX_WRITES_SEL))
        sel = NULL;
    const size_t rows = (size_t)p->B * p->L, LL = rows * p->L, nsel = nsx_sel_size(p);
    size_t in_bytes[ISO_SLOTS] = {0};
    in_bytes[ISO_IDX_Q] = bytes4(rows * S->Hi * S->di);
    in_bytes[ISO_IDX_K] = bytes4(rows * S->di);
    in_bytes[ISO_IDX_W] = bytes4(rows * S->Hi);
    /* scores (float32) in the first output, sel (int32, the size of a
       float) in the second; what the kernel does not write reads NaN, -1 */
    const size_t counts[2] = {scores ? LL : 0, sel ? nsel : 0};
    const char *const names[2] = {"scores", "sel"};
    iso_call c;
    int r = 0, rc = iso_begin(k, &c, ISO_INDEXER, 2, counts, names, in_bytes, err);
    if (!rc) {
        put_f32(c.in[ISO_IDX_Q], in->idx_q, rows * S->Hi * S->di);
        put_f32(c.in[ISO_IDX_K], in->idx_k, rows * S->di);
        put_f32(c.in[ISO_IDX_W], in->idx_w, rows * S->Hi);
        c.rq.ip = (nsx_indexer_problem){p->B, p->L, S->Hi, S->di, S->act, p->causal, S->k, S->idx_scale};
        rc = iso_run(k, &c, &r, err);
    }
    if (!rc)
        rc = returned(r, "indexer", err);
    if (!rc) {
        const float *fs = c.out[0];
        for (size_t t = 0; fs && t < LL; t++)
            scores[t] = fs[t];
        if (sel)
            memcpy(sel, c.out[1], nsel * sizeof *sel);
    }
    iso_end(&c);
    return rc;
}

/* ---- the backward pass ----------------------------------------------------- */

int nsx_kernel_run_backward(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                            const double *o, const double *lse, int has_lse, double *dq, double *const *dk,
                            double *const *dv, nsx_err *err)
{
    char why[200];
    if (nsx_kernel_supports_bwd(k->info, p, why, sizeof why))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s", why);
    const int n = p->n;
    size_t in_bytes[ISO_SLOTS] = {0};
    input_sizes(p, sel, in_bytes);
    in_bytes[ISO_O] = in_bytes[ISO_DOUT] = bytes4(nsx_o_size(p));
    in_bytes[ISO_LSE] = has_lse ? bytes4(nsx_lse_size(p)) : 0;
    /* outputs: dq, dk1, dv1, ..., dkn, dvn */
    const int nout = 1 + 2 * n;
    size_t counts[ISO_MAX_BUFS] = {0};
    const char *names[ISO_MAX_BUFS] = {"dq"};
    static const char *const knames[NSX_MAX_ORDER] = {"dk1", "dk2", "dk3", "dk4", "dk5", "dk6", "dk7", "dk8"};
    static const char *const vnames[NSX_MAX_ORDER] = {"dv1", "dv2", "dv3", "dv4", "dv5", "dv6", "dv7", "dv8"};
    counts[0] = nsx_q_size(p);
    for (int m = 0; m < n; m++) {
        counts[1 + 2 * m] = nsx_k_size(p);
        counts[2 + 2 * m] = nsx_v_size(p);
        names[1 + 2 * m] = knames[m];
        names[2 + 2 * m] = vnames[m];
    }
    iso_call c;
    int r = 0, rc = iso_begin(k, &c, ISO_BACKWARD, nout, counts, names, in_bytes, err);
    if (!rc) {
        put_inputs(&c, p, in, sel);
        put_f32(c.in[ISO_O], o, nsx_o_size(p));
        put_f32(c.in[ISO_DOUT], in->dout, nsx_o_size(p));
        if (has_lse)
            put_f32(c.in[ISO_LSE], lse, nsx_lse_size(p));
        nsx_problem_to_kernel(p, NULL, &c.rq.kp);
        rc = iso_run(k, &c, &r, err);
    }
    if (!rc)
        rc = returned(r, "backward", err);
    if (!rc) {
        const float *g = c.out[0];
        for (size_t t = 0; t < counts[0]; t++)
            dq[t] = g[t];
        for (int m = 0; m < n; m++) {
            const float *gk = c.out[1 + 2 * m], *gv = c.out[2 + 2 * m];
            for (size_t t = 0; t < counts[1 + 2 * m]; t++)
                dk[m][t] = gk[t];
            for (size_t t = 0; t < counts[2 + 2 * m]; t++)
                dv[m][t] = gv[t];
        }
    }
    iso_end(&c);
    return rc;
}
