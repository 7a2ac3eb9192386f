/* Driving a kernel behind the ABI (runner/runner.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner.h"
#include "simd/simd.h"

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
    if (!k->info || k->info->abi_version != NSX_KERNEL_ABI_VERSION) {
        int v = k->info ? k->info->abi_version : -1;
        nsx_kernel_close(k);
        return nsx_err_set(err, NSX_E_INPUT, "%s: kernel ABI version %d, this program speaks %d", path, v,
                           NSX_KERNEL_ABI_VERSION);
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

int nsx_kernel_supports(const nsx_kernel_info *info, const nsx_problem *p, char *why, size_t whylen)
{
    unsigned f = info->features;
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
    if (p->n > info->max_order) {
        snprintf(why, whylen, "order n = %d above the kernel's %d", p->n, info->max_order);
        return -1;
    }
    for (size_t t = 0; t < sizeof need / sizeof need[0]; t++)
        if (need[t].needed && !(f & need[t].bit)) {
            snprintf(why, whylen, "%s, which the kernel does not declare", need[t].what);
            return -1;
        }
    return 0;
}

static float *to_f32(const double *x, size_t count)
{
    float *f = malloc((count ? count : 1) * sizeof *f);
    for (size_t t = 0; f && t < count; t++)
        f[t] = (float)x[t];
    return f;
}

int nsx_kernel_run(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                   double *o, double *lse, int *has_lse, nsx_err *err)
{
    char why[200];
    nsx_kernel_problem kp;
    nsx_kernel_io io = {0};
    float *buf[2 * NSX_MAX_ORDER + 3] = {0};
    int nbuf = 0, rc = 0;
    *has_lse = (k->info->features & NSX_FEAT_LSE) != 0;
    if (nsx_kernel_supports(k->info, p, why, sizeof why))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s", why);
    nsx_problem_to_kernel(p, sel, &kp);
    io.q = buf[nbuf++] = to_f32(in->q, nsx_q_size(p));
    for (int m = 0; m < p->n; m++) {
        io.k[m] = buf[nbuf++] = to_f32(in->k[m], nsx_k_size(p));
        io.v[m] = buf[nbuf++] = to_f32(in->v[m], nsx_v_size(p));
    }
    float *fo = buf[nbuf++] = malloc(nsx_o_size(p) * sizeof *fo);
    float *fl = buf[nbuf++] = *has_lse ? malloc(nsx_lse_size(p) * sizeof *fl) : NULL;
    for (int t = 0; t < nbuf; t++)
        if (!buf[t] && !(t == nbuf - 1 && !*has_lse))
            rc = nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
    if (!rc) {
        io.o = fo;
        io.lse = fl;
        int r = nsx_kernel_call(k, &kp, &io);
        if (r == NSX_KERNEL_UNSUPPORTED)
            rc = nsx_err_set(err, NSX_E_KERNEL_REFUSED, "unsupported problem: the kernel returned 1");
        else if (r != NSX_KERNEL_OK)
            rc = nsx_err_set(err, NSX_E_KERNEL_ERROR, "the kernel returned error %d", r);
    }
    if (!rc) {
        for (size_t t = 0; t < nsx_o_size(p); t++)
            o[t] = fo[t];
        for (size_t t = 0; fl && t < nsx_lse_size(p); t++)
            lse[t] = fl[t];
    }
    for (int t = 0; t < nbuf; t++)
        free(buf[t]);
    return rc;
}
