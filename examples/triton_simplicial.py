#!/usr/bin/env python3
"""A small, honest 2-simplicial attention forward in Triton, checked and fuzzed through nsimplex.

One program per query row (b, h, i) streams over blocks of key pairs (j1, j2) with an online
softmax in float32: scores T = s * sum_l q[i,l] k1[j1,l] k2[j2,l] (+ key biases), the causal mask
and a sliding window per key dimension (0 = none), GQA (kv head h // groups), value biases, the
product reducer, out_scale, and LSE.  Inputs of any float dtype are read and converted to float32;
o is stored in the input dtype, lse in float32.  The scores and the weighted values are tl.dot in
IEEE float32; with --dot they take tl.dot's default on float32 inputs, TF32: `--model f32` should
then fail (docs/ORACLE.md; issue 14).

    python3 examples/triton_simplicial.py                          # every applicable vector, then a 60 s fuzz
    python3 examples/triton_simplicial.py --dtype bfloat16 --model bf16 --seconds 120
    python3 examples/triton_simplicial.py --dot --model f32 --seconds 30    # TF32: expected to fail

The first verdict takes these lines:

    import nsimplex, torch
    case = nsimplex.load("vectors/default/n2_paper_windows.safetensors")
    o, lse = simplicial_forward(case.problem, case.inputs(device="cuda", dtype=torch.float32))
    print(nsimplex.check(case, o=o, lse=lse, model="f32"))

Exits 1 when a vector or the fuzz run fails.
"""
import argparse
import glob
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402


# sizes and windows as plain runtime integers: no recompilation per value (1, multiples of 16)
@triton.jit(do_not_specialize=["L", "H", "Hkv", "D", "DV", "W1", "W2"])
def _fwd(q_ptr, k1_ptr, k2_ptr, v1_ptr, v2_ptr, o_ptr, lse_ptr,
         L, H, Hkv, D, DV, W1, W2, scale, out_scale, kb1, kb2, vb1, vb2,
         BLOCK_J: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, PREC: tl.constexpr):
    i = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    g = h // (H // Hkv)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    offs_j = tl.arange(0, BLOCK_J)
    dmask = offs_d < D
    dvmask = offs_dv < DV
    # column DV of both value tiles is 1 for an allowed key: the weighted sum of values then carries
    # the sum of the weights in its column DV, from the same products (see below)
    ones = offs_dv == DV
    q = tl.load(q_ptr + ((b * L + i) * H + h) * D + offs_d, mask=dmask, other=0.0).to(tl.float32)

    # the keys each dimension allows: causal j <= i, window i - w < j (the host passes w = L + 1
    # for "no window", so no branch on the window is needed here)
    lo1 = tl.maximum(i - W1 + 1, 0)
    lo2 = tl.maximum(i - W2 + 1, 0)

    # the running max as a float32 scalar (a reduction gives a 0-d tensor)
    m = tl.max(tl.full([BLOCK_J], -float("inf"), tl.float32), axis=0)
    acc = tl.zeros([BLOCK_DV], dtype=tl.float32)
    for s1 in range(lo1, i + 1, BLOCK_J):
        j1 = s1 + offs_j
        ok1 = j1 <= i
        kv1 = (b * L + j1) * Hkv + g
        k1 = tl.load(k1_ptr + kv1[:, None] * D + offs_d[None, :], mask=ok1[:, None] & dmask[None, :], other=0.0)
        k1 = tl.where(ok1[:, None] & dmask[None, :], k1.to(tl.float32) + kb1, 0.0)
        v1 = tl.load(v1_ptr + kv1[:, None] * DV + offs_dv[None, :], mask=ok1[:, None] & dvmask[None, :], other=0.0)
        v1 = tl.where(ok1[:, None] & dvmask[None, :], v1.to(tl.float32) + vb1, 0.0)
        v1 = tl.where(ok1[:, None] & ones[None, :], 1.0, v1)
        u = q[None, :] * k1                                            # [J1, D]
        for s2 in range(lo2, i + 1, BLOCK_J):
            j2 = s2 + offs_j
            ok2 = j2 <= i
            kv2 = (b * L + j2) * Hkv + g
            k2 = tl.load(k2_ptr + kv2[:, None] * D + offs_d[None, :], mask=ok2[:, None] & dmask[None, :], other=0.0)
            k2 = tl.where(ok2[:, None] & dmask[None, :], k2.to(tl.float32) + kb2, 0.0)
            v2 = tl.load(v2_ptr + kv2[:, None] * DV + offs_dv[None, :], mask=ok2[:, None] & dvmask[None, :],
                         other=0.0)
            v2 = tl.where(ok2[:, None] & dvmask[None, :], v2.to(tl.float32) + vb2, 0.0)
            v2 = tl.where(ok2[:, None] & ones[None, :], 1.0, v2)
            t = tl.dot(u, tl.trans(k2), input_precision=PREC) * scale  # [J1, J2]
            ok = ok1[:, None] & ok2[None, :]
            t = tl.where(ok, t, -float("inf"))
            m_new = tl.maximum(m, tl.max(tl.max(t, axis=1), axis=0))
            m_safe = tl.where(m_new == -float("inf"), 0.0, m_new)
            alpha = tl.exp(m - m_safe)
            p = tl.where(ok, tl.exp(t - m_safe), 0.0)                  # [J1, J2]
            # [J1, DV + 1]: sum_j2 p v2, and sum_j2 p in column DV: the row sum l comes from the
            # same product as the values.  Computed on their own (tl.sum(p) beside a broadcast
            # p[:, :, None] * v2 reduced over j2), the weights summed and those multiplied into
            # the values differed on the H100 (Triton 3.6) by a factor exp(an ulp of the score):
            # a row of one tuple came out as exp(-ulp) times its exact value (found by
            # nsimplex.fuzz; docs/KERNELS.md, 2026-12-07)
            pv2 = tl.dot(p, v2, input_precision=PREC)
            acc = acc * alpha + tl.sum(pv2 * v1, axis=0)               # sum_j1 v1 (sum_j2 p v2), l
            m = m_new
    l = tl.sum(tl.where(ones, acc, 0.0), axis=0)
    empty = l == 0.0
    o = tl.where(empty, 0.0, acc / tl.where(empty, 1.0, l)) * out_scale
    tl.store(o_ptr + ((b * L + i) * H + h) * DV + offs_dv, o.to(o_ptr.dtype.element_ty), mask=dvmask)
    lse = tl.where(empty, -float("inf"), m + tl.log(tl.where(empty, 1.0, l)))
    tl.store(lse_ptr + (b * H + h) * L + i, lse)


def _pow2(x, lo):
    return max(lo, triton.next_power_of_2(x))


def simplicial_forward(p, t, tf32=False):
    """o [B,L,H,dv] (the input dtype) and lse [B,H,L] (float32) for an nsimplex Problem and its
    tensors on a CUDA device.  Both products are tl.dot, in IEEE float32 (input_precision "ieee"),
    or with tf32=True in TF32, what tl.dot does on float32 by default."""
    if p.n != 2 or p.reduce != "product" or not p.causal or p.topk or p.distinct:
        raise nsimplex.Unsupported()
    q = t["q"].contiguous()
    k1, k2 = (k.contiguous() for k in t["k"])
    v1, v2 = (v.contiguous() for v in t["v"])
    B, L, H, d, dv = p.B, p.L, p.H, p.d, p.dv
    o = torch.empty((B, L, H, dv), device=q.device, dtype=q.dtype)
    lse = torch.empty((B, H, L), device=q.device, dtype=torch.float32)
    # few distinct block sizes (each is a compilation); tl.dot needs 16 or more
    block_d = _pow2(d, 16)
    w1, w2 = (w if w > 0 else L + 1 for w in p.windows)
    _fwd[(L, B * H)](q, k1, k2, v1, v2, o, lse, L, H, p.Hkv, d, dv, w1, w2,
                     p.score_scale, p.out_scale, p.k_bias[0], p.k_bias[1], p.v_bias[0], p.v_bias[1],
                     BLOCK_J=16, BLOCK_D=block_d, BLOCK_DV=_pow2(dv + 1, 16), PREC="tf32" if tf32 else "ieee")
    return o, lse


FEATURES = ["windows", "gqa", "biases", "lse"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vectors", nargs="*")
    ap.add_argument("--model", default="f32")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--dot", action="store_true", help="tl.dot's default precision on float32: TF32")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default="all", choices=sorted(nsimplex.SIZE_CLASSES),
                    help="the fuzzer's size classes (default all: small; tiles, L up to 1024 and d up to 256; "
                         "production)")
    ap.add_argument("--out", default="fuzz-out-triton")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    fn = (lambda p, t: simplicial_forward(p, t, tf32=True)) if args.dot else simplicial_forward
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    paths = args.vectors or sorted(glob.glob(os.path.join(root, "vectors", "default", "*.safetensors")))
    print("device: %s; torch %s; triton %s; model %s; inputs %s%s" % (
        torch.cuda.get_device_name(), torch.__version__, triton.__version__, nsimplex.model(args.model),
        args.dtype, "; tl.dot in TF32" if args.dot else ""))
    failed = judged = 0
    for path in paths:
        case = nsimplex.load(path)
        try:
            o, lse = nsimplex.run(fn, case, device="cuda", dtype=dtype)
        except nsimplex.Unsupported:
            continue
        try:
            rep = nsimplex.check(case, o=o, lse=lse, model=args.model)
        except nsimplex.NotApplicable as e:
            print("n/a   %-28s %s" % (case.name, e))
            continue
        judged += 1
        failed += not rep.passed
        print("%s  %-28s worst ratio %.3g, %d failures%s" % ("pass" if rep.passed else "FAIL", case.name,
              rep.ratio or 0, rep.failures, ("\n      " + rep.notes[0]) if rep.notes else ""))
    print("%d vectors judged, %d failed" % (judged, failed))
    res = nsimplex.fuzz(fn, seconds=args.seconds, seed=args.seed, model=args.model, device="cuda", dtype=dtype,
                        features=FEATURES, max_order=2, shapes={"n": (2,)}, sizes=args.sizes, out=args.out,
                        name="triton_simplicial")
    print(res)
    return 1 if failed or not res.passed else 0


if __name__ == "__main__":
    sys.exit(main())
