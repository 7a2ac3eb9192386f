#!/usr/bin/env python3
"""Check a plain PyTorch implementation of n-simplicial attention against nsimplex's vectors.

For each golden vector: load it through the nsimplex package (python/nsimplex), run a plain
torch.einsum implementation in bf16 on whatever device PyTorch finds (CUDA if present, else CPU),
and judge its outputs in process under the `einsum-bf16` precision model (docs/ORACLE.md); then
fuzz the same function for a while (--seconds, 0 for none).

    python3 examples/torch_check.py vectors/default/*.safetensors
    python3 examples/torch_check.py --seconds 30 vectors/default/n2_dense.safetensors

It prints one line per vector, the fuzz summary, and exits 1 when anything fails.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402

KEYS = "jkmnpqrs"  # einsum letters of the n key dimensions


def allowed_mask(p, sel, device):
    """The mask (E2) as a boolean tensor [B, L(i), L(j1), ..., L(jn)]."""
    n, B, L = p.n, p.B, p.L
    i = torch.arange(L, device=device).view(L, 1)
    j = torch.arange(L, device=device).view(1, L)
    mask = torch.ones((B, L) + (L,) * n, dtype=torch.bool, device=device)
    if p.topk:  # S(i) as a [B, L, L] membership table (invalid entries dropped)
        valid = (sel >= 0) & (sel < L)
        member = torch.zeros(B, L, L + 1, dtype=torch.bool, device=device)
        member.scatter_(2, torch.where(valid, sel, L).long(), True)
        member = member[..., :L]
    for m in range(n):
        ok = torch.ones(L, L, dtype=torch.bool, device=device)
        w = p.windows[m]
        if p.causal:
            ok &= j <= i
        if w > 0:
            ok &= i - w < j
            if not p.causal:
                ok &= j < i + w
        ok = ok.expand(B, L, L)
        if p.topk and (m + 1) in p.sel_dims:
            ok = ok & member
        shape = [B, L] + [1] * n
        shape[2 + m] = L
        mask = mask & ok.reshape(shape)
    if p.distinct:
        for a in range(n):
            for b in range(a + 1, n):
                shape_a, shape_b = [1] * (n + 2), [1] * (n + 2)
                shape_a[2 + a], shape_b[2 + b] = L, L
                mask = mask & (torch.arange(L, device=device).view(shape_a)
                               != torch.arange(L, device=device).view(shape_b))
    return mask


def simplicial_attention(p, t):
    """O and LSE for an nsimplex Problem and its tensors (torch, any device), as a user would
    write it: every intermediate in the tensors' dtype (bf16 here)."""
    n, G = p.n, p.groups
    keys = KEYS[:n]
    q = t["q"]
    device = q.device
    ks = [(k + p.k_bias[m]).repeat_interleave(G, dim=2) for m, k in enumerate(t["k"])]
    # A weight of 0 times a value that is not finite is NaN: a masked key's NaN or infinity (the
    # future of a leak pair) would reach every row through the contractions below.  A row that
    # allows such a key is not judged (its exact value is NaN), so zeroing them changes no judged
    # output.  (Found by nsimplex.fuzz: the first version of this example leaked NaN into the past.)
    vs = [(v.nan_to_num(0.0, 0.0, 0.0) + p.v_bias[m]).repeat_interleave(G, dim=2) for m, v in enumerate(t["v"])]

    # scores T[b, h, i, j1..jn] = s * sum_l q[b,i,h,l] prod_m k_m[b,j_m,h,l]   (E1)
    spec = ",".join(["bihl"] + [f"b{c}hl" for c in keys]) + "->bhi" + keys
    scores = torch.einsum(spec, q, *ks) * p.score_scale
    mask = allowed_mask(p, t["sel"], device).unsqueeze(1)  # [B, 1, L, L..]
    scores = scores.masked_fill(~mask, float("-inf"))

    # slice softmax and log-sum-exp over all n key dimensions   (E3, E4)
    flat = scores.flatten(start_dim=3)
    lse = torch.logsumexp(flat, dim=-1)                               # [B, H, L]
    weights = torch.softmax(flat, dim=-1).nan_to_num(0.0).view_as(scores)  # empty slices: 0

    # contraction with the reduced values   (E5, E6)
    if p.reduce == "product":
        spec = ",".join(["bhi" + keys] + [f"b{c}hc" for c in keys]) + "->bihc"
        o = torch.einsum(spec, weights, *vs)
    else:
        o = sum(torch.einsum(f"bhi{keys},b{c}hc->bihc", weights, v) for c, v in zip(keys, vs))
        if p.reduce == "mean":
            o = o / n
    return o * p.out_scale, lse


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vectors", nargs="+")
    ap.add_argument("--model", default="einsum-bf16")
    ap.add_argument("--seconds", type=float, default=0, help="then fuzz for this long (0: no fuzzing)")
    ap.add_argument("--out", default="fuzz-out-torch", help="where fuzz failures are saved")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; model {nsimplex.model(args.model)}")
    failed = 0
    for path in args.vectors:
        case = nsimplex.load(path)
        o, lse = nsimplex.run(simplicial_attention, case, device=device, dtype=torch.bfloat16)
        try:
            r = nsimplex.check(case, o=o, lse=lse, model=args.model)
        except nsimplex.NotApplicable as e:
            print(f"n/a   {case.name:28s} {e}")
            continue
        failed += not r.passed
        j = r.json
        ratio = (r.worst_o or {}).get("ratio")
        ratio = "-" if ratio is None else f"{ratio:.3g}"
        print(f"{'pass' if r.passed else 'FAIL'}  {case.name:28s} o: {j['o']['failed']}/{j['o']['judged']} over "
              f"the bound (worst ratio {ratio}); lse: {j['lse']['failed']} over; "
              f"pairs: {j['pairs']['failed']}/{j['pairs']['rows']} rows differ")
    print(f"{len(args.vectors)} vectors, {failed} failed")
    fuzzed = True
    if args.seconds > 0:
        res = nsimplex.fuzz(simplicial_attention, seconds=args.seconds, model=args.model, device=device,
                            dtype=torch.bfloat16, out=args.out, name="torch_einsum")
        print(res)
        fuzzed = res.passed
    return 1 if failed or not fuzzed else 0


if __name__ == "__main__":
    sys.exit(main())
