#!/usr/bin/env python3
"""Run Meta's FBGEMM 2-simplicial Triton backward on nsimplex backward vectors (issue 13).

FBGEMM's code is not part of nsimplex: point --fbgemm at a checkout's
fbgemm_gpu/experimental/simplicial_attention folder.  Each vector must be a backward case (recipe
key bwd=1: it carries the upstream gradient `do` and the correctly rounded dq, dk1, dk2, dv1, dv2)
with n = 2, the product reducer, causal masking, w2 = 32 (the backward asserts it) and the
1/sqrt(d) scale.  Two ways of feeding the kernel a vector:

  golden  the kernel's inputs, the vector's o (rounded to bf16) and its natural-log LSE as `m`:
          the backward judged on its own;
  fwd     FBGEMM's own forward first, its o and its `m` (a base-2 running max plus a natural log
          of the sum) passed to the backward, as a training step would.

The gradients (GQA gradients summed over each group's query heads) are judged in process under
--model (nsimplex.check with grads=: docs/ORACLE.md section 8) together with the o the backward
was given, written as a candidate OUT/NAME.MODE.safetensors (float32, which holds them exactly:
`nsimplex check VECTOR CANDIDATE --model bf16` judges it again anywhere, and judges it alone with
--no-judge), and a first look (the largest error relative to the largest golden value, per
tensor) is printed.  Exits 1 when a verdict fails.

    python3 examples/fbgemm_bwd.py --fbgemm third_party/simplicial_attention --out /tmp/fbb V.safetensors...
    python3 examples/fbgemm_bwd.py --fbgemm ... --out /tmp/fbb --fuzz 60      # nsimplex.fuzz(..., backward=)

--fuzz runs once per --fuzz-lse source: `natural` feeds the backward FBGEMM's o and a natural-log
LSE computed here (natural_lse), `fbgemm` the forward's own m (judged under bf16,lseform=mixed).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsimplex  # noqa: E402
from fbgemm_check import MODEL as FWD_MODEL, fbgemm_forward, outside  # noqa: E402

GRADS = ["dq", "dk1", "dk2", "dv1", "dv2"]


def expand(x, groups):
    """[B, L, Hkv, d] -> [B, L, Hkv * groups, d]: the kv head of query head h is h // groups."""
    return x.repeat_interleave(groups, dim=2).contiguous()


def reduce_groups(g, groups):
    """The gradient of an expanded kv tensor summed back over each group's query heads."""
    B, L, H, d = g.shape
    return g.reshape(B, L, H // groups, groups, d).sum(dim=3)


def fbgemm_w2(p):
    """The w2 to pass to the backward, which asserts w2 = 32: 32 when the problem's second window
    is 32, or is none (0, or at least L) with L <= 32 (the same keys); else None."""
    w2 = p.windows[1]
    if w2 == 32 or ((w2 == 0 or w2 >= p.L) and p.L <= 32):
        return 32
    return None


def natural_lse(p, t):
    """The natural-log LSE of each row [B, H, L] (float32), computed here in float64 from the
    kernel's inputs over the causal windows only (L * w1 * w2 scores a head, never L^3): what
    FBGEMM's backward expects as `m`, which its forward does not store (ORACLE.md B15).  This is
    test-harness code, independent of the reference."""
    q = t["q"].double()
    k1, k2 = (expand(k.double(), p.H // p.Hkv) for k in t["k"])
    B, L, H, d = q.shape
    w1, w2 = (w if 0 < w < L else L for w in p.windows)
    i = torch.arange(L, device=q.device)

    def windows(k, w):
        """[B, L, H, d, w]: row i holds k[i - w + 1 .. i], zeros before position 0."""
        return torch.nn.functional.pad(k, (0, 0, 0, 0, w - 1, 0)).unfold(1, w, 1)

    def valid(w):
        """[L, w]: slot a of row i is key i - w + 1 + a, which exists when it is >= 0."""
        return (i[:, None] - w + 1 + torch.arange(w, device=q.device)[None, :]) >= 0

    ok = valid(w1)[:, None, :, None] & valid(w2)[:, None, None, :]               # [L, 1, w1, w2]
    lse = torch.empty((B, H, L), device=q.device, dtype=torch.float32)
    rows = max(1, (1 << 26) // (H * d * w1))  # query rows a step: about 0.5 GB of float64
    for b in range(B):
        kw1, kw2 = windows(k1[b:b + 1], w1)[0], windows(k2[b:b + 1], w2)[0]  # views
        for r in range(0, L, rows):
            qk1 = q[b, r:r + rows, :, :, None] * kw1[r:r + rows]                 # [rows, H, d, w1]
            s = torch.einsum("ihda,ihdc->ihac", qk1, kw2[r:r + rows]) * p.score_scale
            s = s.masked_fill(~ok[r:r + rows], float("-inf"))
            lse[b, :, r:r + rows] = torch.logsumexp(s.flatten(2), dim=-1).T.float()
    return lse


def fuzz_shapes(p):
    """What both FBGEMM kernels compute (the backward also needs dv = d and a w2 it takes)."""
    return outside(p) is None and p.dv == p.d and fbgemm_w2(p) is not None


def fbgemm_backward(triton_bwd):
    """backward(problem, tensors) -> gradients for nsimplex.fuzz: FBGEMM's backward fed the
    forward's own o and m (tensors "o", "lse"), kv tensors expanded to the query heads and their
    gradients summed back over each group."""
    def backward(p, t):
        if not fuzz_shapes(p):
            raise nsimplex.Unsupported()
        groups = p.H // p.Hkv
        q = t["q"].contiguous()
        k1, k2 = (expand(k, groups) for k in t["k"])
        v1, v2 = (expand(v, groups) for v in t["v"])
        w1 = p.windows[0] if p.windows[0] > 0 else p.L
        dq, dk1, dk2, dv1, dv2 = triton_bwd(q, k1, k2, v1, v2, t["o"].contiguous(), t["do"].contiguous(),
                                            t["lse"].contiguous(), w1, fbgemm_w2(p))
        torch.cuda.synchronize()
        grads = {"dq": dq.float()}
        for name, x in (("dk1", dk1), ("dk2", dk2), ("dv1", dv1), ("dv2", dv2)):
            grads[name] = reduce_groups(x.float(), groups)
        return grads
    return backward


def fuzz_backward(triton_fwd, triton_bwd, lse_from, device="cuda", **kw):
    """nsimplex.fuzz of FBGEMM's backward with its forward (bwd="only"), the backward fed the
    forward's o and either the natural LSE (lse_from "natural": computed here by natural_lse, the
    backward judged on its own, under bf16) or the forward's own m ("fbgemm": under
    bf16,lseform=mixed, as a training step would).  kw: nsimplex.fuzz's (seconds or count, seed,
    sizes, out)."""
    fwd, model = fbgemm_forward(triton_fwd), FWD_MODEL
    if lse_from == "natural":
        model = "bf16"

        def fwd(p, t, _o=fwd):
            return _o(p, t)[0], natural_lse(p, t)
    elif lse_from != "fbgemm":
        raise ValueError("lse_from: natural or fbgemm, not %r" % lse_from)
    return nsimplex.fuzz(fwd, backward=fbgemm_backward(triton_bwd), bwd="only", model=model, device=device,
                         dtype=torch.bfloat16, features=["windows", "gqa", "lse"], max_order=2,
                         shapes=fuzz_shapes, name="fbgemm_triton_bwd_" + lse_from, **kw)


def first_look(case, grads):
    a = case.arrays()
    parts = []
    for name in GRADS:
        exp = a[name]
        err = np.abs(grads[name] - exp).max()
        parts.append("%s %.2e" % (name, err / max(np.abs(exp).max(), 1e-300)))
    return "max |error| / max |golden|: " + ", ".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbgemm", required=True, help="FBGEMM's simplicial_attention folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--modes", default="golden,fwd")
    ap.add_argument("--model", default="bf16")
    ap.add_argument("--fuzz", type=float, metavar="SECONDS",
                    help="then fuzz the backward with FBGEMM's forward (bwd='only', under " + FWD_MODEL + ")")
    ap.add_argument("--fuzz-lse", default="natural,fbgemm",
                    help="the lse each fuzz feeds the backward: natural (computed here, the backward "
                         "judged on its own), fbgemm (the forward's own m, as a training step would)")
    ap.add_argument("--sizes", default="all", help="the fuzz's size classes (nsimplex.fuzz sizes=)")
    ap.add_argument("--no-judge", action="store_true",
                    help="write the candidates only (the production gradient checks take minutes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("vectors", nargs="*")
    args = ap.parse_args()
    sys.path.insert(0, args.fbgemm)
    from simplicial.ops.triton.bwd import triton_bwd  # noqa: E402 (third-party, not committed)
    from simplicial.ops.triton.fwd import triton_fwd  # noqa: E402

    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for path in args.vectors:
        case = nsimplex.load(path)
        p, a = case.problem, case.arrays()
        if p.n != 2 or "do" not in a:
            print("%s: skipped (not an n = 2 backward case)" % case.name)
            continue
        groups = p.H // p.Hkv
        t = case.inputs(device="cuda", dtype=torch.bfloat16)
        q = t["q"].contiguous()
        k1, k2 = (expand(k, groups) for k in t["k"])
        v1, v2 = (expand(v, groups) for v in t["v"])
        do = torch.tensor(a["do"], device="cuda", dtype=torch.bfloat16)
        w1, w2 = (w if w > 0 else p.L for w in p.windows)
        # the harness's natural_lse against the golden lse (what the fuzz's mode natural feeds)
        nat = natural_lse(p, case.inputs(device="cuda", dtype=torch.float64)).double().cpu().numpy()
        print("%s: natural_lse - golden lse: max %.2e" % (case.name, np.abs(nat - a["lse"]).max()))
        for mode in args.modes.split(","):
            try:
                if mode == "golden":
                    o = torch.tensor(a["o"], device="cuda", dtype=torch.bfloat16)
                    m = torch.tensor(a["lse"], device="cuda", dtype=torch.float32).contiguous()
                else:
                    # the forward packs the query heads of a kv head: it takes the unexpanded keys
                    kk1, kk2 = (k.contiguous() for k in t["k"])
                    vv1, vv2 = (v.contiguous() for v in t["v"])
                    o, m = triton_fwd(q, kk1, kk2, vv1, vv2, w1, w2, k2_bias=p.k_bias[1], v2_bias=p.v_bias[1])
                g = triton_bwd(q, k1, k2, v1, v2, o, do, m, w1, w2, k2_bias=p.k_bias[1], v2_bias=p.v_bias[1])
                torch.cuda.synchronize()
            except Exception as e:  # a kernel that refuses the shape is reported, not fatal
                print("%s %s: kernel error: %s" % (case.name, mode, str(e).splitlines()[0][:300]))
                continue
            dq, dk1, dk2, dv1, dv2 = g
            grads = {"dq": dq}
            for name, x in (("dk1", dk1), ("dk2", dk2), ("dv1", dv1), ("dv2", dv2)):
                grads[name] = reduce_groups(x.float(), groups)
            grads = {k: v.float().cpu().numpy() for k, v in grads.items()}  # exact: f32, bf16 sums
            o_np = o.float().cpu().numpy()
            cand = os.path.join(args.out, "%s.%s.safetensors" % (case.name, mode))
            nsimplex.save_candidate(case, cand, o=o_np, grads=grads, model=args.model)
            print("%s %s: %s (candidate %s)" % (case.name, mode, first_look(case, grads), cand))
            if args.no_judge:  # judged later, anywhere: nsimplex check VECTOR CANDIDATE
                continue
            rep = nsimplex.check(case, o=o_np, model=args.model, label="fbgemm-bwd-%s-%s" % (mode, case.name),
                                 grads=grads)
            failed += not rep.passed
            print("  %s: %s worst ratio %.3g, %d failures" % (mode, "PASS" if rep.passed else "FAIL",
                                                             rep.ratio or 0, rep.failures))
            if not rep.passed:
                print("  " + rep.text.replace("\n", "\n  ")[:1500])
    for lse_from in args.fuzz_lse.split(",") if args.fuzz else []:
        res = fuzz_backward(triton_fwd, triton_bwd, lse_from, seconds=args.fuzz, seed=args.seed,
                            sizes=args.sizes, out=os.path.join(args.out, "fuzz-" + lse_from))
        print("fuzz, the backward fed %s: %s" % ("the natural LSE" if lse_from == "natural"
                                                  else "the forward's own m", res))
        failed += not res.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
