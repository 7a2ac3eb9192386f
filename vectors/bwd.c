/* Gradient cases (vectors/bwd.h). */
#include "io/fpformat.h"
#include "nsimplex/rng.h"
#include "vectors/bwd.h"

int nsx_build_dout(nsx_instance *b, uint64_t seed, nsx_err *err)
{
    if (nsx_instance_alloc_grads(b))
        return nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    /* a stream apart from the inputs', so that adding bwd=1 to a recipe
       leaves its inputs as they were */
    nsx_rng r = {seed ^ 0x6477642d6772616full};
    for (size_t x = 0; x < nsx_o_size(&b->p); x++)
        b->dout[x] = nsx_round_to_format(nsx_rng_normal(&r), b->p.input_format);
    return 0;
}

int nsx_build_grads(nsx_instance *b, const nsx_ref_opts *opts, nsx_ref_stats *stats, nsx_err *err)
{
    nsx_ref_stats st = {0};
    int rc = nsx_ref_backward(&b->p, &b->in, &b->out, opts, &st, err);
    if (!rc && stats)
        nsx_ref_stats_add(stats, &st);
    return rc;
}
