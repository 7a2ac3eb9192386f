/* The precision model: formats, presets, the --model syntax (model.h). */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fpformat.h"
#include "nsimplex/problem.h"
#include "oracle/model.h"

/* A model format's name: f64 f32 f16 bf16, tf32, e4m3, e5m2, none. */
static const char *fname_of(int f)
{
    return f == NSX_MODEL_NONE ? "none" : f == NSX_MODEL_TF32 ? "tf32" : f == NSX_MODEL_E4M3 ? "e4m3"
           : f == NSX_MODEL_E5M2 ? "e5m2" : nsx_format_name(f);
}

nsx_fmt nsx_fmt_of(int format)
{
    assert(format == NSX_MODEL_NONE || format == NSX_MODEL_TF32 || nsx_fmt_is_fp8(format) ||
           (format >= NSX_FORMAT_F64 && format <= NSX_FORMAT_BF16));
    /* p, emin, emax of IEEE 754 binary64, binary32, binary16, and bfloat16
       (binary32's exponent range with an 8-bit significand) */
    static const struct { int p, emin, emax; } t[] = {
        [NSX_FORMAT_F64] = {53, -1022, 1023},
        [NSX_FORMAT_F32] = {24, -126, 127},
        [NSX_FORMAT_F16] = {11, -14, 15},
        [NSX_FORMAT_BF16] = {8, -126, 127},
    };
    nsx_fmt f = {0, 0, 0, 0.0, 0.0, INFINITY};
    if (format == NSX_MODEL_NONE)
        return f;
    if (format == NSX_MODEL_TF32) {
        /* 10 stored significand bits (p = 11), binary32's range; u = 2^-10:
           a truncating conversion errs by less than one ulp (ORACLE.md 2.1) */
        f = nsx_fmt_of(NSX_FORMAT_F32);
        f.p = 11;
        f.u = ldexp(1.0, -10);
        f.max = ldexp(2.0 - ldexp(1.0, -10), f.emax);
        return f;
    }
    if (nsx_fmt_is_fp8(format)) {
        /* OCP FP8: E4M3 ("fn": no infinities, the all-ones significand of
           the top binade is NaN, so its largest value is 1.75 * 2^8 = 448,
           not 1.875 * 2^8) and E5M2 (IEEE-like, largest 1.75 * 2^15) */
        const int e4 = format == NSX_MODEL_E4M3;
        f.p = e4 ? 4 : 3;
        f.emin = e4 ? -6 : -14;
        f.emax = e4 ? 8 : 15;
        f.u = ldexp(1.0, -f.p);
        f.lambda = ldexp(1.0, f.emin);
        f.max = e4 ? 448.0 : 57344.0;
        return f;
    }
    f.p = t[format].p;
    f.emin = t[format].emin;
    f.emax = t[format].emax;
    f.u = ldexp(1.0, -f.p);
    f.lambda = ldexp(1.0, f.emin);
    f.max = ldexp(2.0 - ldexp(1.0, 1 - f.p), f.emax);
    return f;
}

double nsx_fmt_ulp(const nsx_fmt *f, double x)
{
    assert(f && !(x < 0));
    if (f->p == 0)
        return 0.0;
    if (!(x >= f->lambda))
        return f->lambda;
    int e;
    frexp(x, &e); /* x in [2^(e-1), 2^e) */
    return ldexp(1.0, e - f->p);
}

/* idx, idx_blk of the presets without FP8: the indexer reads q, k in `in` */
#define IDX_PLAIN NSX_MODEL_NONE, NSX_MODEL_IDX_BLOCK
/* bound, sub_keep, pfail, tile, tile_acc of every preset: the worst-case bound, subnormals may flush,
   sums in any order */
#define BOUND_PLAIN NSX_BOUND_WORST, 0, NSX_PFAIL_DEFAULT, 0, 0

static const nsx_model preset_table[] = {
    /*          in                op                acc              int             w                out              lseout           lse (empty)        idx, idxblk  form, bound */
    {NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NSX_MODEL_NONE, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NSX_LSE_MINUS_INF, IDX_PLAIN, NSX_LSE_LN, BOUND_PLAIN},
    {NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F32, NSX_MODEL_NONE, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F32, NSX_LSE_MINUS_INF, IDX_PLAIN, NSX_LSE_LN, BOUND_PLAIN},
    {NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_MODEL_NONE, NSX_MODEL_NONE, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_LSE_MINUS_INF, IDX_PLAIN, NSX_LSE_LN, BOUND_PLAIN},
    {NSX_FORMAT_F64, NSX_FORMAT_F64, NSX_FORMAT_F64, NSX_MODEL_NONE, NSX_MODEL_NONE, NSX_FORMAT_F64, NSX_FORMAT_F64, NSX_LSE_MINUS_INF, IDX_PLAIN, NSX_LSE_LN, BOUND_PLAIN},
    {NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_F32, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_FORMAT_BF16, NSX_LSE_MINUS_INF, IDX_PLAIN, NSX_LSE_LN, BOUND_PLAIN},
    {NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F32, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_FORMAT_F16, NSX_LSE_MINUS_INF, IDX_PLAIN, NSX_LSE_LN, BOUND_PLAIN},
    /* triton-f32: float32 tensors, tl.dot in TF32 (Triton's default on float32 operands) for
       the score and the weights-times-values products */
    {NSX_FORMAT_F32, NSX_MODEL_TF32, NSX_FORMAT_F32, NSX_MODEL_NONE, NSX_MODEL_TF32, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_LSE_MINUS_INF, IDX_PLAIN, NSX_LSE_LN, BOUND_PLAIN},
    /* dsa-fp8: DeepSeek V3.2's lightning indexer (ORACLE.md 5.1): idx_q and
       idx_k in E4M3 with one scale per 128 elements, the weights, the GEMM's
       accumulation and the scores in f32 */
    {NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_MODEL_NONE, NSX_MODEL_NONE, NSX_FORMAT_F32, NSX_FORMAT_F32, NSX_LSE_MINUS_INF, NSX_MODEL_E4M3, NSX_MODEL_IDX_BLOCK, NSX_LSE_LN, BOUND_PLAIN},
};

const char *const nsx_model_presets[] = {"bf16", "f16", "f32", "f64", "einsum-bf16", "einsum-f16", "triton-f32",
                                         "dsa-fp8", NULL};

void nsx_model_default(nsx_model *m)
{
    assert(m);
    *m = preset_table[0];
}

const char *nsx_lse_conv_name(int conv)
{
    return conv == NSX_LSE_MINUS_INF ? "-inf" : conv == NSX_LSE_PLUS_INF ? "+inf" : "any";
}

const char *nsx_lse_form_name(int form)
{
    return form == NSX_LSE_LOG2 ? "log2" : form == NSX_LSE_MIXED ? "mixed" : "ln";
}

/* A format name, or "none" and "tf32" where allowed; -2 when unknown. */
static int format_value(const char *v, int allow_none)
{
    if (allow_none && strcmp(v, "none") == 0)
        return NSX_MODEL_NONE;
    if (allow_none && strcmp(v, "tf32") == 0)
        return NSX_MODEL_TF32;
    int f = nsx_format_from_name(v);
    return f < 0 ? -2 : f;
}

int nsx_model_parse(const char *s, nsx_model *out, nsx_err *err)
{
    assert(s && out && err);
    static const struct { const char *key; size_t off; int allow_none; } keys[] = {
        {"in", offsetof(nsx_model, in), 0},
        {"op", offsetof(nsx_model, op), 2},
        {"acc", offsetof(nsx_model, acc), 0},
        {"int", offsetof(nsx_model, inter), 1},
        {"w", offsetof(nsx_model, w), 1},
        {"out", offsetof(nsx_model, out), 0},
        {"lseout", offsetof(nsx_model, lseout), 0},
    };
    nsx_model m;
    int op_set = 0, lseout_set = 0, pfail_set = 0;
    char buf[256];

    nsx_model_default(&m);
    if (strlen(s) >= sizeof buf)
        return nsx_err_set(err, NSX_E_INPUT, "model '%.40s...': longer than %zu characters", s,
                           sizeof buf - 1);
    if (*s == '\0')
        return nsx_err_set(err, NSX_E_INPUT, "model '': empty (presets: bf16, f16, f32, f64, "
                                              "einsum-bf16, einsum-f16, triton-f32, dsa-fp8)");
    strcpy(buf, s);
    int first = 1;
    for (char *item = buf, *next; item; item = next, first = 0) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq) {
            int p = -1;
            for (int t = 0; nsx_model_presets[t]; t++)
                if (strcmp(item, nsx_model_presets[t]) == 0)
                    p = t;
            if (p < 0 || !first)
                return nsx_err_set(err, NSX_E_INPUT,
                                   p < 0 ? "model '%s': '%s' is neither a preset (bf16, f16, f32, f64, "
                                           "einsum-bf16, einsum-f16, triton-f32, dsa-fp8) nor KEY=VALUE"
                                         : "model '%s': preset '%s' must come first",
                                   s, item);
            int bound = m.bound, sub_keep = m.sub_keep, tile = m.tile, tile_acc = m.tile_acc;
            double pfail = m.pfail;
            m = preset_table[p];
            m.bound = bound, m.pfail = pfail, m.sub_keep = sub_keep, m.tile = tile, m.tile_acc = tile_acc;
            continue;
        }
        *eq = '\0';
        const char *key = item, *val = eq + 1;
        if (strcmp(key, "lse") == 0) {
            if (strcmp(val, "-inf") == 0)
                m.lse_conv = NSX_LSE_MINUS_INF;
            else if (strcmp(val, "+inf") == 0 || strcmp(val, "inf") == 0)
                m.lse_conv = NSX_LSE_PLUS_INF;
            else if (strcmp(val, "any") == 0)
                m.lse_conv = NSX_LSE_ANY;
            else
                return nsx_err_set(err, NSX_E_INPUT,
                                   "model '%s': lse=%s: the empty-slice convention is -inf, +inf or any",
                                   s, val);
            continue;
        }
        if (strcmp(key, "lseform") == 0) {
            int form = -1;
            for (int f = NSX_LSE_LN; f <= NSX_LSE_MIXED; f++)
                if (strcmp(val, nsx_lse_form_name(f)) == 0)
                    form = f;
            if (form < 0)
                return nsx_err_set(err, NSX_E_INPUT,
                                   "model '%s': lseform=%s: the LSE's form is ln, log2 (the max in log2 units "
                                   "plus log2 of the sum) or mixed (the max in log2 units plus ln of the sum)",
                                   s, val);
            m.lse_form = form;
            continue;
        }
        if (strcmp(key, "idx") == 0) {
            int f = strcmp(val, "e4m3") == 0 ? NSX_MODEL_E4M3 : strcmp(val, "e5m2") == 0 ? NSX_MODEL_E5M2
                                                                                          : format_value(val, 1);
            if (f == -2 || f == NSX_MODEL_TF32)
                return nsx_err_set(err, NSX_E_INPUT,
                                   "model '%s': idx=%s: the indexer's input formats are e4m3, e5m2, f64, f32, f16, "
                                   "bf16, none", s, val);
            m.idx = f;
            continue;
        }
        if (strcmp(key, "idxblk") == 0) {
            char *end;
            long v = strtol(val, &end, 10);
            if (end == val || *end || v < 1 || v > NSX_MAX_DIM)
                return nsx_err_set(err, NSX_E_INPUT, "model '%s': idxblk=%s: a block size from 1 to %d", s, val,
                                   NSX_MAX_DIM);
            m.idx_blk = (int)v;
            continue;
        }
        if (strcmp(key, "bound") == 0) {
            if (strcmp(val, "worst") == 0)
                m.bound = NSX_BOUND_WORST;
            else if (strcmp(val, "prob") == 0)
                m.bound = NSX_BOUND_PROB;
            else
                return nsx_err_set(err, NSX_E_INPUT, "model '%s': bound=%s: the bound is worst or prob", s, val);
            continue;
        }
        if (strcmp(key, "sub") == 0) {
            if (strcmp(val, "keep") == 0 || strcmp(val, "flush") == 0)
                m.sub_keep = strcmp(val, "keep") == 0;
            else
                return nsx_err_set(err, NSX_E_INPUT, "model '%s': sub=%s: subnormals are keep or flush", s, val);
            continue;
        }
        if (strcmp(key, "tile") == 0) {
            /* none, row, B or B/acc (ORACLE.md 9.8) */
            char *end;
            long v = strtol(val, &end, 10);
            int acc = strcmp(end, "/acc") == 0;
            if (strcmp(val, "none") == 0)
                m.tile = 0, m.tile_acc = 0;
            else if (strcmp(val, "row") == 0)
                m.tile = NSX_TILE_ROW, m.tile_acc = 0;
            else if (end != val && (*end == '\0' || acc) && v >= 1 && v <= NSX_TILE_MAX && val[0] >= '0' && val[0] <= '9')
                m.tile = (int)v, m.tile_acc = acc;
            else
                return nsx_err_set(err, NSX_E_INPUT,
                                   "model '%s': tile=%s: the tuples per tile, 1 to %d, summed on their own (B) or into "
                                   "the running accumulator (B/acc), or row (two-pass) or none", s, val, NSX_TILE_MAX);
            continue;
        }
        if (strcmp(key, "pfail") == 0) {
            char *end;
            double v = strtod(val, &end);
            if (end == val || *end != '\0' || !(v > 0 && v <= 0.25))
                return nsx_err_set(err, NSX_E_INPUT,
                                   "model '%s': pfail=%s: a probability in (0, 0.25] (e.g. 1e-9)", s, val);
            m.pfail = v;
            pfail_set = 1;
            continue;
        }
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && strcmp(key, keys[k].key) != 0)
            k++;
        if (k == sizeof keys / sizeof keys[0])
            return nsx_err_set(err, NSX_E_INPUT,
                               "model '%s': unknown key '%s' (keys: in, op, acc, int, w, out, lseout, lse, "
                               "lseform, idx, idxblk, sub, tile, bound, pfail)",
                               s, key);
        /* allow_none: 1 none and tf32 (int, w), 2 tf32 only (op) */
        int f = format_value(val, keys[k].allow_none);
        if (f == NSX_MODEL_NONE && keys[k].allow_none == 2)
            f = -2;
        if (f == -2)
            return nsx_err_set(err, NSX_E_INPUT, "model '%s': %s=%s: formats are f64, f32, f16, bf16%s", s,
                               key, val, keys[k].allow_none == 1 ? ", tf32, none" : keys[k].allow_none ? ", tf32" : "");
        *(int *)((char *)&m + keys[k].off) = f;
        op_set |= strcmp(key, "op") == 0;
        lseout_set |= strcmp(key, "lseout") == 0;
        if (strcmp(key, "in") == 0 && !op_set)
            m.op = f;
        if (strcmp(key, "acc") == 0 && !lseout_set)
            m.lseout = f;
    }
    if (pfail_set && m.bound != NSX_BOUND_PROB)
        return nsx_err_set(err, NSX_E_INPUT, "model '%s': pfail= applies to bound=prob only", s);
    *out = m;
    return 0;
}

const char *nsx_model_warning(const char *s, char *buf, size_t len)
{
    nsx_model start, m;
    nsx_err err;
    char tmp[300];
    if (nsx_model_parse(s, &m, &err))
        return NULL;
    /* the preset the string starts from: its first item when that is a preset */
    snprintf(tmp, sizeof tmp, "%s", s);
    char *comma = strchr(tmp, ',');
    if (comma)
        *comma = '\0';
    if (strchr(tmp, '=') || nsx_model_parse(tmp, &start, &err))
        nsx_model_default(&start);
    int op_given = 0, in_given = 0;
    for (const char *q = s; q; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL) {
        op_given |= strncmp(q, "op=", 3) == 0;
        in_given |= strncmp(q, "in=", 3) == 0;
    }
    if (in_given && !op_given && m.op != start.op) {
        snprintf(buf, len,
                 "model '%s': op=%s follows in=%s silently (the starting preset's op is %s); a kernel that casts "
                 "its GEMM operands (q*k1, the scale, k + kb, v1*v2) to %s needs op=%s given explicitly",
                 s, fname_of(m.op), fname_of(m.in), fname_of(start.op), fname_of(start.op), fname_of(start.op));
        return buf;
    }
    /* self-contradictory: a rounding to a format wider than the one the
       value is computed in (acc) rounds nothing */
    const struct { const char *key; int f; } wide[] = {{"w", m.w}, {"int", m.inter}};
    nsx_fmt acc = nsx_fmt_of(m.acc);
    for (size_t x = 0; x < sizeof wide / sizeof wide[0]; x++) {
        if (wide[x].f == NSX_MODEL_NONE)
            continue;
        nsx_fmt f = nsx_fmt_of(wide[x].f);
        if (f.p > acc.p && f.emax >= acc.emax) {
            snprintf(buf, len,
                     "model '%s': %s=%s is wider than acc=%s, in which those values are computed: rounding "
                     "to it changes nothing; say %s=none (or the format the kernel really rounds to)",
                     s, wide[x].key, fname_of(wide[x].f), fname_of(m.acc), wide[x].key);
            return buf;
        }
    }
    /* an LSE through int tensors is torch.logsumexp's composite (ORACLE.md
       3.8), which returns the natural LSE: no base-2 max to store */
    if (m.inter != NSX_MODEL_NONE && m.lse_form != NSX_LSE_LN) {
        snprintf(buf, len,
                 "model '%s': lseform=%s with int=%s: an LSE computed through intermediate tensors "
                 "(torch.logsumexp's composite) is the natural one; a fused kernel that stores a base-2 max "
                 "has no int stage (say int=none), or its LSE is lseform=ln",
                 s, nsx_lse_form_name(m.lse_form), fname_of(m.inter));
        return buf;
    }
    return NULL;
}


char *nsx_model_format(const nsx_model *m, char *buf, size_t len)
{
    assert(m && buf && len >= 1);
    int n = snprintf(buf, len, "in=%s,op=%s,acc=%s,int=%s,w=%s,out=%s,lseout=%s,lse=%s", fname_of(m->in),
                     fname_of(m->op), fname_of(m->acc), fname_of(m->inter), fname_of(m->w), fname_of(m->out),
                     fname_of(m->lseout), nsx_lse_conv_name(m->lse_conv));
    if (m->lse_form != NSX_LSE_LN && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ",lseform=%s", nsx_lse_form_name(m->lse_form));
    if (m->idx != NSX_MODEL_NONE && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ",idx=%s,idxblk=%d", fname_of(m->idx), m->idx_blk);
    if (m->sub_keep && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ",sub=keep");
    if (m->tile == NSX_TILE_ROW && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ",tile=row");
    else if (m->tile > 0 && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, m->tile_acc ? ",tile=%d/acc" : ",tile=%d", m->tile);
    if (m->bound == NSX_BOUND_PROB && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ",bound=prob,pfail=%.3g", m->pfail);
    return buf;
}

int nsx_model_from_kernel(const nsx_kernel_info *ki, nsx_model *m, nsx_err *err)
{
    assert(ki && m && err);
    const int f[4] = {ki->input_format, ki->accum_format, ki->weights_format, ki->output_format};
    for (int t = 0; t < 4; t++)
        if (f[t] < NSX_FORMAT_F64 || f[t] > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "kernel %s: format %d is not 0 (f64), 1 (f32), 2 (f16) "
                                                  "or 3 (bf16)", ki->name ? ki->name : "?", f[t]);
    m->in = m->op = f[0];
    m->acc = m->lseout = f[1];
    m->w = f[2] == NSX_FORMAT_F64 ? NSX_MODEL_NONE : f[2];
    m->out = f[3];
    m->inter = NSX_MODEL_NONE;
    m->lse_conv = NSX_LSE_ANY;
    m->lse_form = NSX_LSE_LN;
    m->bound = NSX_BOUND_WORST;
    m->sub_keep = 0;
    m->pfail = NSX_PFAIL_DEFAULT;
    m->tile = 0;
    m->tile_acc = 0;
    m->idx = NSX_MODEL_NONE;
    m->idx_blk = NSX_MODEL_IDX_BLOCK;
    return 0;
}

int nsx_model_from_kernel_indexer(const nsx_kernel_info *ki, nsx_model *m, nsx_err *err)
{
    assert(ki && m && err);
    const char *name = ki->name ? ki->name : "?";
    if (ki->abi_version < 2 || !ki->indexer)
        return nsx_err_set(err, NSX_E_INPUT, "kernel %s: declares no indexer", name);
    const int fin = ki->indexer_input_format, fa = ki->indexer_accum_format, fo = ki->indexer_output_format;
    const int fp8 = ki->abi_version >= 3 && nsx_fmt_is_fp8(fin);
    const int f[3] = {fp8 ? NSX_FORMAT_F32 : fin, fa, fo};
    for (int t = 0; t < 3; t++)
        if (f[t] < NSX_FORMAT_F64 || f[t] > NSX_FORMAT_BF16)
            return nsx_err_set(err, NSX_E_INPUT, "kernel %s: indexer format %d is not 0 (f64), 1 (f32), 2 (f16), "
                                                  "3 (bf16)%s", name, f[t],
                               t == 0 && ki->abi_version >= 3 ? ", 6 (e4m3) or 7 (e5m2)" : "");
    if (fp8 && (ki->indexer_block < 1 || ki->indexer_block > NSX_MAX_DIM))
        return nsx_err_set(err, NSX_E_INPUT, "kernel %s: indexer_block %d is not in 1..%d", name, ki->indexer_block,
                           NSX_MAX_DIM);
    /* the weights are read in `in` (float32 beside FP8 keys and queries),
       every stage of the indexer in acc, the scores written in out */
    m->in = m->op = f[0];
    m->acc = m->lseout = fa;
    m->inter = m->w = NSX_MODEL_NONE;
    m->out = fo;
    m->lse_conv = NSX_LSE_ANY;
    m->idx = fp8 ? fin : NSX_MODEL_NONE;
    m->idx_blk = fp8 ? ki->indexer_block : NSX_MODEL_IDX_BLOCK;
    m->lse_form = NSX_LSE_LN;
    m->bound = NSX_BOUND_WORST;
    m->sub_keep = 0;
    m->pfail = NSX_PFAIL_DEFAULT;
    m->tile = 0;
    m->tile_acc = 0;
    return 0;
}
