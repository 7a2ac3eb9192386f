#!/usr/bin/env python3
"""Judge lucidrains' 2-simplicial Triton kernel (simplicial-attention, forward and backward).

Its code is not part of nsimplex: point --repo at a checkout of lucidrains/simplicial-attention.
The kernel computes n = 2, the product reducer, causal sliding windows (q - w < j <= q on each
dimension), the 1/sqrt(d) scale, no biases, bf16 inputs; sequences are padded to a multiple of 64
as its own wrapper does.  For each vector it runs SlidingTwoSimplicialAttention (forward; and
backward when the vector carries `do`), judges o and lse in process under --model, and writes
the gradients (GQA gradients summed over each group's query heads) judged in process too and
written to OUT/NAME.grads.npz (float64).

    python3 examples/lucidrains_check.py --repo third_party/simplicial-attention --out /tmp/luc V...

Exits 1 when a verdict fails.
"""
import argparse
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402

GRADS = ["dq", "dk1", "dk2", "dv1", "dv2"]


def _stub(name):
    """A module whose every attribute refuses to be called."""
    mod = types.ModuleType(name)

    def refuse(*a, **k):
        raise RuntimeError("%s is not installed (only the kernel's module wrappers use it)" % name)
    mod.__getattr__ = lambda attr: refuse
    mod.__path__ = []
    return mod


def import_kernel(repo):
    """The kernel's autograd Function.  The package imports einops and opt_einsum for its modules
    and wrappers, which are not used here: where they are not installed, stand-ins that refuse
    every call are registered."""
    for name in ("einops", "einops.layers", "einops.layers.torch", "opt_einsum"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _stub(name)
    sys.path.insert(0, repo)
    from simplicial_attention.triton_two_simplicial_attention import SlidingTwoSimplicialAttention
    return SlidingTwoSimplicialAttention


def pad(x, mult=64):
    L = x.shape[1]
    extra = (-L) % mult
    if not extra:
        return x.contiguous()
    shape = list(x.shape)
    shape[1] = extra
    return torch.cat([x, torch.zeros(shape, device=x.device, dtype=x.dtype)], dim=1).contiguous()


def outside(p):
    """1 when the problem is outside what the kernel computes."""
    return (p.n != 2 or p.reduce != "product" or not p.causal or p.topk or p.distinct or p.d != p.dv
            or any(p.k_bias) or any(p.v_bias) or abs(p.score_scale - p.d ** -0.5) > 1e-15
            or p.out_scale != 1)


def forward_fn(kernel):
    """fn(problem, tensors) -> o for nsimplex.fuzz: the kernel's forward on bf16 CUDA tensors,
    padded as its wrapper pads, GQA heads repeated per group."""
    def lucidrains_forward(p, t):
        if outside(p):
            raise nsimplex.Unsupported()
        L, groups = p.L, p.H // p.Hkv
        q = pad(t["q"])
        ks = [pad(k.repeat_interleave(groups, dim=2)) for k in t["k"]]
        vs = [pad(v.repeat_interleave(groups, dim=2)) for v in t["v"]]
        w1, w2 = (w if w > 0 else L for w in p.windows)
        with torch.no_grad():
            out = kernel.apply(q, ks[0], ks[1], vs[0], vs[1], w1, w2, True)
        torch.cuda.synchronize()
        return out[:, :L], None
    return lucidrains_forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz", type=float, metavar="SECONDS",
                    help="after the vectors, fuzz the forward through nsimplex.fuzz for SECONDS")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default="all", choices=sorted(nsimplex.SIZE_CLASSES),
                    help="the fuzzer's size classes (default all: small; tiles, L up to 1024 and d up to 256; "
                         "production)")
    ap.add_argument("--repo", required=True, help="a checkout of lucidrains/simplicial-attention")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="bf16,int=bf16")
    ap.add_argument("vectors", nargs="*")
    args = ap.parse_args()
    fn = import_kernel(args.repo)
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for path in args.vectors:
        case = nsimplex.load(path)
        p, a = case.problem, case.arrays()
        if outside(p):
            print("%s: skipped (outside what the kernel computes)" % case.name)
            continue
        L, groups = p.L, p.H // p.Hkv
        t = case.inputs(device="cuda", dtype=torch.bfloat16)
        q = pad(t["q"]).requires_grad_()
        ks = [pad(k.repeat_interleave(groups, dim=2)).requires_grad_() for k in t["k"]]
        vs = [pad(v.repeat_interleave(groups, dim=2)).requires_grad_() for v in t["v"]]
        w1, w2 = (w if w > 0 else L for w in p.windows)
        try:
            out = fn.apply(q, ks[0], ks[1], vs[0], vs[1], w1, w2, True)
            torch.cuda.synchronize()
        except Exception as e:
            print("%s: kernel error: %s" % (case.name, str(e).splitlines()[0][:300]))
            failed += 1
            continue
        o = out[:, :L].float().double().detach().cpu().numpy()
        try:
            rep = nsimplex.check(case, o=o, model=args.model, label="lucidrains-" + case.name)
        except nsimplex.NotApplicable as e:  # e.g. an f64 vector whose inputs exceed bf16's range
            print("%s: not applicable under %s: %s" % (case.name, args.model, str(e).splitlines()[0][:300]))
            continue
        failed += not rep.passed
        print("%s forward: %s worst o ratio %.3g, %d failures" % (
            case.name, "PASS" if rep.passed else "FAIL", rep.ratio or 0, rep.failures))
        if not rep.passed:
            print("  " + rep.text.replace("\n", "\n  ")[:1200])
        if "do" in a:
            do = pad(torch.tensor(a["do"], device="cuda", dtype=torch.bfloat16))
            out.backward(do)
            torch.cuda.synchronize()
            grads = {"dq": q.grad[:, :L]}
            for m in range(2):
                for name, x in (("dk%d" % (m + 1), ks[m]), ("dv%d" % (m + 1), vs[m])):
                    g = x.grad[:, :L].float()
                    B, _, H, d = g.shape
                    grads[name] = g.reshape(B, L, H // groups, groups, d).sum(dim=3)
            grads = {k: v.double().cpu().numpy() for k, v in grads.items()}
            np.savez(os.path.join(args.out, case.name + ".grads.npz"), **grads)
            look = ", ".join("%s %.2e" % (n, np.abs(grads[n] - a[n]).max() / max(np.abs(a[n]).max(), 1e-300))
                             for n in GRADS)
            print("%s backward: max |error| / max |golden|: %s" % (case.name, look))
            rep = nsimplex.check(case, o=o, model=args.model, label="lucidrains-bwd-" + case.name, grads=grads)
            failed += not rep.passed
            print("%s backward: %s worst ratio %.3g, %d failures" % (
                case.name, "PASS" if rep.passed else "FAIL", rep.ratio or 0, rep.failures))
            if not rep.passed:
                print("  " + rep.text.replace("\n", "\n  ")[:1500])
    if args.fuzz:
        res = nsimplex.fuzz(forward_fn(fn), seconds=args.fuzz, seed=args.seed, model=args.model, device="cuda",
                            dtype=torch.bfloat16, features=["windows", "gqa"], max_order=2,
                            shapes=lambda p: p.n == 2 and p.d == p.dv and p.d in (32, 64, 128),
                            out=os.path.join(args.out, "fuzz"), name="lucidrains", sizes=args.sizes)
        print(res)
        failed += not res.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
