/* A kernel whose forward is a function pointer (capi/callback.h). */
#include <stdio.h>
#include <string.h>

#include "capi/callback.h"

#define ALL_FEATURES                                                                                        \
    (NSX_FEAT_WINDOWS | NSX_FEAT_SELECTION | NSX_FEAT_GQA | NSX_FEAT_CAUSAL_OFF | NSX_FEAT_DISTINCT |     \
     NSX_FEAT_BIASES | NSX_FEAT_SUM | NSX_FEAT_MEAN | NSX_FEAT_LSE)

int nsx_cb_kernel_open(nsx_cb_kernel *cb, const char *name, const nsx_model *m, int max_order, unsigned features,
                       nsx_kernel_forward_fn forward, nsx_err *err)
{
    memset(cb, 0, sizeof *cb);
    if (!forward)
        return nsx_err_set(err, NSX_E_INPUT, "callback kernel: no forward function");
    if (max_order < 1 || max_order > NSX_MAX_ORDER)
        return nsx_err_set(err, NSX_E_INPUT, "callback kernel: max_order %d is not in 1..%d", max_order,
                           NSX_MAX_ORDER);
    if (features & ~ALL_FEATURES)
        return nsx_err_set(err, NSX_E_INPUT, "callback kernel: unknown feature bits 0x%x",
                           features & ~ALL_FEATURES);
    snprintf(cb->name, sizeof cb->name, "%s", name && name[0] ? name : "callback");
    cb->info = (nsx_kernel_info){
        .abi_version = NSX_KERNEL_ABI_VERSION,
        .name = cb->name,
        .input_format = m->in,
        .accum_format = m->acc,
        /* the ABI has no "none" and no TF32 (held in float32) */
        .weights_format = m->w == NSX_MODEL_NONE ? NSX_FORMAT_F64 : m->w == NSX_MODEL_TF32 ? NSX_FORMAT_F32 : m->w,
        .output_format = m->out,
        .max_order = max_order,
        .features = features,
    };
    cb->k.info = &cb->info;
    cb->k.forward = forward;
    return 0;
}

int nsx_cb_kernel_set_backward(nsx_cb_kernel *cb, const nsx_model *m, int max_order, unsigned features,
                               nsx_kernel_backward_fn backward, nsx_err *err)
{
    if (!backward)
        return nsx_err_set(err, NSX_E_INPUT, "callback kernel: no backward function");
    if (max_order < 1 || max_order > cb->info.max_order)
        return nsx_err_set(err, NSX_E_INPUT, "callback kernel: the backward's max_order %d is not in 1..%d (the "
                           "forward's)", max_order, cb->info.max_order);
    if (!(cb->info.features & NSX_FEAT_LSE))
        return nsx_err_set(err, NSX_E_INPUT, "callback kernel: a backward needs the forward's lse: declare the "
                           "feature lse");
    if (features & ~cb->info.features)
        return nsx_err_set(err, NSX_E_INPUT, "callback kernel: the backward declares features (0x%x) the "
                           "forward lacks", features & ~cb->info.features);
    cb->info.backward_max_order = max_order;
    cb->info.backward_features = features & ~NSX_FEAT_LSE;
    cb->info.backward_accum_format = m->acc;
    cb->info.backward_output_format = m->out;
    cb->k.backward = backward;
    return 0;
}

#define ALL_IDX_CAPS                                                                                        \
    (NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL | NSX_IDX_RELU | NSX_IDX_SOFTMAX | NSX_IDX_IDENTITY |       \
     NSX_IDX_CAUSAL_OFF)

int nsx_cb_kernel_open_indexer(nsx_cb_kernel *cb, const char *name, const nsx_model *m, unsigned caps,
                               nsx_kernel_indexer_fn indexer, nsx_err *err)
{
    memset(cb, 0, sizeof *cb);
    if (!indexer)
        return nsx_err_set(err, NSX_E_INPUT, "callback indexer: no indexer function");
    if (caps & ~ALL_IDX_CAPS)
        return nsx_err_set(err, NSX_E_INPUT, "callback indexer: unknown capability bits 0x%x", caps & ~ALL_IDX_CAPS);
    if (!(caps & (NSX_IDX_WRITES_SCORES | NSX_IDX_WRITES_SEL)) ||
        !(caps & (NSX_IDX_RELU | NSX_IDX_SOFTMAX | NSX_IDX_IDENTITY)))
        return nsx_err_set(err, NSX_E_INPUT, "callback indexer: it must write scores or a selection (or both) "
                                             "for at least one activation (capabilities 0x%x)", caps);
    snprintf(cb->name, sizeof cb->name, "%s", name && name[0] ? name : "callback");
    const int fp8 = nsx_fmt_is_fp8(m->idx);
    cb->info = (nsx_kernel_info){
        .abi_version = NSX_KERNEL_ABI_VERSION,
        .name = cb->name,
        .input_format = m->in,
        .accum_format = m->acc,
        .weights_format = NSX_FORMAT_F64,
        .output_format = m->out,
        .max_order = 1,
        .features = 0,
        .indexer = caps,
        .indexer_input_format = fp8 ? m->idx : m->in,
        .indexer_accum_format = m->acc,
        .indexer_output_format = m->out,
        .indexer_block = fp8 ? m->idx_blk : 0,
    };
    cb->k.info = &cb->info;
    cb->k.indexer = indexer;
    return 0;
}
