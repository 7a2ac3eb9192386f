#!/usr/bin/env python3
"""Check a plain PyTorch implementation of n-simplicial attention against nsimplex's vectors.

For each golden vector: load it (safetensors), run a plain torch.einsum implementation in bf16 on
whatever device PyTorch finds (CUDA if present, else CPU), save the outputs as a candidate file,
and ask `nsimplex check` for a verdict under the `einsum-bf16` precision model (docs/ORACLE.md).

    python3 examples/torch_check.py vectors/default/*.safetensors
    python3 examples/torch_check.py --nsimplex build/nsimplex --out /tmp/cand vectors/default/n2_dense.safetensors

It prints one line per vector and a summary, and exits 1 when a vector fails.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

KEYS = "jkmnpqrs"  # einsum letters of the n key dimensions


def load(path):
    with safe_open(path, "pt") as f:
        meta = json.loads(f.metadata()["nsimplex"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    return tensors, meta


def allowed_mask(meta, sel, device):
    """The mask (E2) as a boolean tensor [B, L(i), L(j1), ..., L(jn)]."""
    n, B, L = meta["n"], meta["B"], meta["L"]
    i = torch.arange(L, device=device).view(L, 1)
    j = torch.arange(L, device=device).view(1, L)
    mask = torch.ones((B, L) + (L,) * n, dtype=torch.bool, device=device)
    selection = meta["selection"]
    if selection is not None:  # S(i) as a [B, L, L] membership table (invalid entries dropped)
        valid = (sel >= 0) & (sel < L)
        member = torch.zeros(B, L, L + 1, dtype=torch.bool, device=device)
        member.scatter_(2, torch.where(valid, sel, L).long(), True)
        member = member[..., :L]
    for m in range(n):
        ok = torch.ones(L, L, dtype=torch.bool, device=device)
        w = meta["windows"][m]
        if meta["causal"]:
            ok &= j <= i
        if w > 0:
            ok &= i - w < j
            if not meta["causal"]:
                ok &= j < i + w
        ok = ok.expand(B, L, L)
        if selection is not None and (m + 1) in selection["dims"]:
            ok = ok & member
        shape = [B, L] + [1] * n
        shape[2 + m] = L
        mask = mask & ok.reshape(shape)
    if meta["distinct"]:
        for a in range(n):
            for b in range(a + 1, n):
                shape_a, shape_b = [1] * (n + 2), [1] * (n + 2)
                shape_a[2 + a], shape_b[2 + b] = L, L
                mask = mask & (torch.arange(L, device=device).view(shape_a)
                               != torch.arange(L, device=device).view(shape_b))
    return mask


def simplicial_attention(t, meta, device, dtype=torch.bfloat16):
    """O and LSE for the inputs of one vector, as a user would write it in bf16."""
    n, H, Hkv = meta["n"], meta["H"], meta["Hkv"]
    keys = KEYS[:n]
    q = t["q"].to(device, dtype)
    ks = [(t[f"k{m + 1}"].to(device, dtype) + meta["k_bias"][m]).repeat_interleave(H // Hkv, dim=2)
          for m in range(n)]
    vs = [(t[f"v{m + 1}"].to(device, dtype) + meta["v_bias"][m]).repeat_interleave(H // Hkv, dim=2)
          for m in range(n)]
    scale = (1 / math.sqrt(meta["d"]) if meta.get("score_scale_exact") == "1/sqrt(d)"
             else meta["score_scale"])

    # scores T[b, h, i, j1..jn] = s * sum_l q[b,i,h,l] prod_m k_m[b,j_m,h,l]   (E1)
    spec = ",".join(["bihl"] + [f"b{c}hl" for c in keys]) + "->bhi" + keys
    scores = torch.einsum(spec, q, *ks) * scale
    sel = t["sel"].to(device) if "sel" in t else None
    mask = allowed_mask(meta, sel, device).unsqueeze(1)  # [B, 1, L, L..]
    scores = scores.masked_fill(~mask, float("-inf"))

    # slice softmax and log-sum-exp over all n key dimensions   (E3, E4)
    flat = scores.flatten(start_dim=3)
    lse = torch.logsumexp(flat, dim=-1)                               # [B, H, L]
    weights = torch.softmax(flat, dim=-1).nan_to_num(0.0).view_as(scores)  # empty slices: 0

    # contraction with the reduced values   (E5, E6)
    reduce = meta["reduce"]
    if reduce == "product":
        spec = ",".join(["bhi" + keys] + [f"b{c}hc" for c in keys]) + "->bihc"
        o = torch.einsum(spec, weights, *vs)
    else:
        o = sum(torch.einsum(f"bhi{keys},b{c}hc->bihc", weights, v) for c, v in zip(keys, vs))
        if reduce == "mean":
            o = o / n
    return o * meta["out_scale"], lse


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vectors", nargs="+")
    ap.add_argument("--nsimplex", default=os.environ.get("NSIMPLEX", "build/nsimplex"))
    ap.add_argument("--model", default="einsum-bf16")
    ap.add_argument("--out", default="/tmp/nsimplex-candidates")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; model {args.model}")
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for path in args.vectors:
        t, meta = load(path)
        o, lse = simplicial_attention(t, meta, device)
        cand = os.path.join(args.out, os.path.basename(path))
        save_file({"o": o.contiguous().cpu(), "lse": lse.contiguous().cpu()}, cand,
                  metadata={"nsimplex.model": args.model})
        run = subprocess.run([args.nsimplex, "check", path, cand, "--json"], capture_output=True, text=True)
        if run.returncode == 2:
            why = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "exit 2"
            print(f"n/a   {meta['case']:28s} {why}")
            continue
        r = json.loads(run.stdout)
        verdict = "pass" if run.returncode == 0 else "FAIL"
        failed += run.returncode != 0
        ratio = (r["o"].get("worst") or {}).get("ratio")
        ratio = "-" if ratio is None else f"{ratio:.3g}"
        print(f"{verdict}  {meta['case']:28s} o: {r['o']['failed']}/{r['o']['judged']} over the bound "
              f"(worst ratio {ratio}); lse: {r['lse']['failed']} over; "
              f"pairs: {r['pairs']['failed']}/{r['pairs']['rows']} rows differ")
    print(f"{len(args.vectors)} vectors, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
