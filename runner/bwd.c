/*
 * The backward of a kernel behind the ABI (runner.h, nsx_kernel_run_bwd):
 * its forward for o and lse, then its backward, on float32 copies of the
 * inputs.  In process only: isolating the backward in a child is the
 * fuzzer's concern.
 */
#include <stdlib.h>
#include <string.h>

#include "runner/runner.h"
#include "simd/simd.h"

/* The ABI's return value of one call to k's backward. */
static int call_bwd(const nsx_kernel *k, const nsx_kernel_problem *kp, const nsx_kernel_bwd_io *io)
{
    return k->backward ? k->backward(kp, io) : nsx_simd_backward_isa(kp, io, k->threads, k->isa);
}

static int verdict(int r, const char *which, nsx_err *err)
{
    if (r == NSX_KERNEL_OK)
        return 0;
    if (r == NSX_KERNEL_UNSUPPORTED)
        return nsx_err_set(err, NSX_E_KERNEL_REFUSED, "unsupported problem: the kernel's %s returned 1", which);
    return nsx_err_set(err, NSX_E_KERNEL_ERROR, "the kernel's %s returned error %d", which, r);
}

int nsx_kernel_run_bwd(const nsx_kernel *k, const nsx_problem *p, const nsx_inputs *in, const int32_t *sel,
                       const double *dout, nsx_outputs *g, double *o, double *lse, nsx_err *err)
{
    char why[200];
    if (k->lib && !k->backward)
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: the kernel has no backward");
    if (nsx_kernel_supports(k->info, p, why, sizeof why) || nsx_kernel_supports_bwd(k->info, p, why, sizeof why))
        return nsx_err_set(err, NSX_E_UNSUPPORTED, "unsupported problem: %s", why);
    nsx_kernel_problem kp;
    nsx_problem_to_kernel(p, sel, &kp);
    const size_t nq = nsx_q_size(p), nk = nsx_k_size(p), nv = nsx_v_size(p);
    const size_t no = nsx_o_size(p), nl = nsx_lse_size(p);
    /* one block: inputs, o, lse, dout, then the gradients */
    size_t total = 2 * nq + 2 * no + nl + (size_t)p->n * 2 * (nk + nv);
    float *buf = malloc(total * sizeof *buf), *at = buf;
    if (!buf)
        return nsx_err_set(err, NSX_E_NOMEM, "kernel: out of memory");
    nsx_kernel_io io = {0};
    nsx_kernel_bwd_io bio = {0};
    float *fq = at;
    at += nq;
    for (size_t t = 0; t < nq; t++)
        fq[t] = (float)in->q[t];
    io.q = bio.q = fq;
    for (int m = 0; m < p->n; m++) {
        float *fk = at, *fv = at + nk;
        at += nk + nv;
        for (size_t t = 0; t < nk; t++)
            fk[t] = (float)in->k[m][t];
        for (size_t t = 0; t < nv; t++)
            fv[t] = (float)in->v[m][t];
        io.k[m] = bio.k[m] = fk;
        io.v[m] = bio.v[m] = fv;
    }
    io.o = at, at += no;
    io.lse = at, at += nl;
    float *fd = at;
    at += no;
    for (size_t t = 0; t < no; t++)
        fd[t] = (float)dout[t];
    bio.o = io.o, bio.lse = io.lse, bio.dout = fd;
    bio.dq = at, at += nq;
    for (int m = 0; m < p->n; m++) {
        bio.dk[m] = at, at += nk;
        bio.dv[m] = at, at += nv;
    }
    int rc = verdict(nsx_kernel_call(k, &kp, &io), "forward", err);
    if (!rc)
        rc = verdict(call_bwd(k, &kp, &bio), "backward", err);
    if (!rc) {
        for (size_t t = 0; t < nq; t++)
            g->dq[t] = bio.dq[t];
        for (int m = 0; m < p->n; m++) {
            for (size_t t = 0; t < nk; t++)
                g->dk[m][t] = bio.dk[m][t];
            for (size_t t = 0; t < nv; t++)
                g->dv[m][t] = bio.dv[m][t];
        }
        for (size_t t = 0; o && t < no; t++)
            o[t] = io.o[t];
        for (size_t t = 0; lse && t < nl; t++)
            lse[t] = io.lse[t];
    }
    free(buf);
    return rc;
}
