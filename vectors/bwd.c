/* Gradient cases (vectors/bwd.h). */
#include <stdlib.h>

#include "io/fpformat.h"
#include "nsimplex/rng.h"
#include "vectors/bwd.h"

int nsx_build_dout(nsx_built *b, uint64_t seed, nsx_err *err)
{
    const nsx_problem *p = &b->p;
    size_t count = nsx_o_size(p);
    double *d = malloc(count * sizeof *d);
    if (!d)
        return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    /* a stream apart from the inputs', so that adding bwd=1 to a recipe
       leaves its inputs as they were */
    nsx_rng r = {seed ^ 0x6477642d6772616full};
    for (size_t x = 0; x < count; x++)
        d[x] = nsx_round_to_format(nsx_rng_normal(&r), p->input_format);
    b->in.dout = d;
    return 0;
}

int nsx_build_grads(nsx_built *b, const nsx_ref_opts *opts, nsx_err *err)
{
    const nsx_problem *p = &b->p;
    int ok = (b->out.dq = malloc(nsx_q_size(p) * sizeof(double))) != NULL;
    for (int m = 0; m < p->n; m++) {
        ok &= (b->out.dk[m] = malloc(nsx_k_size(p) * sizeof(double))) != NULL;
        ok &= (b->out.dv[m] = malloc(nsx_v_size(p) * sizeof(double))) != NULL;
    }
    if (!ok)
        return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    return nsx_ref_backward(p, &b->in, &b->out, opts, NULL, err);
}

void nsx_build_free_bwd(nsx_built *b)
{
    free((void *)b->in.dout);
    free(b->out.dq);
    b->in.dout = NULL;
    b->out.dq = NULL;
    for (int m = 0; m < NSX_MAX_ORDER; m++) {
        free(b->out.dk[m]);
        free(b->out.dv[m]);
        b->out.dk[m] = b->out.dv[m] = NULL;
    }
}
