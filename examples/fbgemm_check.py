#!/usr/bin/env python3
"""Judge Meta's FBGEMM 2-simplicial Triton forward with nsimplex (issue 14, docs/KERNELS.md).

FBGEMM's code is not part of nsimplex: point --fbgemm at a checkout's
fbgemm_gpu/experimental/simplicial_attention folder.  The kernel computes n = 2, the product
reducer, causal sliding windows on both key dimensions, the 1/sqrt(d) scale, bf16 inputs, one
key/value head per call (GQA: one call per kv head, its query heads a tile of at least 16 rows),
and stores a base-2 running max plus the natural log of the sum in place of the LSE (judged under
`lseform=mixed`, docs/ORACLE.md B15).

It computes no biases: `triton_fwd(..., k2_bias, v2_bias)` takes them, replaces a 0 by 1/d and 1,
and passes them to the kernel as K2_BIAS and V2_BIAS, which the kernel never reads (FBGEMM's own
test compares against its PyTorch reference with `disable_kv_bias=True`).  So problems with
biases are outside what it computes; the recipe `ignored_bias_L128` shows what a caller who
trusts the arguments gets.

    python3 examples/fbgemm_check.py --fbgemm third_party/simplicial_attention --out /tmp/fb
    python3 examples/fbgemm_check.py --fbgemm ... --out /tmp/fb --no-recipes --fuzz 60 vectors/tiles/*.safetensors

Prints one line per case and exits 1 when a verdict fails (the ignored-bias recipe is expected to
fail and is not counted).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402

MODEL = "bf16,lseform=mixed"

# Meta's own test shapes (tests/test_triton_fwd.py: N = 128..512, H = 16, D = 128, w1 in {32, 256},
# w2 in {4, 128, 256}), a d = 64 shape with L off the 64-key block, w1 > w2 (the wrapper swaps the
# two dimensions), and the biases the arguments promise.
RECIPES = [
    ("meta_L128_w32_4", "n=2 L=128 H=16 Hkv=1 d=128 w=32,4 fmt=bf16"),
    ("meta_L256_w32_128", "n=2 L=256 H=16 Hkv=1 d=128 w=32,128 fmt=bf16"),
    ("meta_L512_w32_4", "n=2 L=512 H=16 Hkv=1 d=128 w=32,4 fmt=bf16"),
    ("d64_L257_w64_33", "n=2 L=257 H=16 Hkv=1 d=64 w=64,33 fmt=bf16"),
    ("w1_gt_w2_L256_w128_32", "n=2 L=256 H=16 Hkv=1 d=128 w=128,32 fmt=bf16"),
    ("gqa_L200_H8_Hkv2", "n=2 L=200 H=8 Hkv=2 d=64 w=48,16 fmt=bf16"),
]
IGNORED_BIAS = ("ignored_bias_L128", "n=2 L=128 H=16 Hkv=1 d=128 w=32,32 kb=0,0.0078125 vb=0,1 fmt=bf16")

D_OK = (16, 32, 64, 128, 256)


def outside(p, biases=False):
    """Why the problem is outside what the kernel computes, or None."""
    if p.n != 2 or p.reduce != "product" or not p.causal or p.topk or p.distinct:
        return "not n = 2 causal product attention without selection"
    if p.d not in D_OK or p.dv > p.d:
        return "d must be a power of two 16..256 (tl.arange) and dv <= d"
    if abs(p.score_scale - p.d ** -0.5) > 1e-15 or p.out_scale != 1:
        return "the kernel's scale is 1/sqrt(d) and out_scale 1"
    if not biases and (any(p.k_bias) or any(p.v_bias)):
        return "biases (the kernel ignores its bias arguments)"
    if any(p.k_bias[:1]) or any(p.v_bias[:1]):
        return "biases on the first dimension"
    return None


def fbgemm_forward(triton_fwd):
    """fn(problem, tensors) -> (o, lse) for nsimplex: one triton_fwd call per kv head, its query
    heads padded with zero rows to a power of two >= 16 (the kernel's BLOCK_SIZE_Q is the head
    count and tl.dot needs 16 rows; rows are independent), v padded with zero columns to d."""
    def forward(p, t, biases=False):
        if outside(p, biases):
            raise nsimplex.Unsupported()
        q, (k1, k2), (v1, v2) = t["q"], t["k"], t["v"]
        B, L, H, d, dv, G = p.B, p.L, p.H, p.d, p.dv, p.groups
        gp = max(16, 1 << (G - 1).bit_length())
        w1, w2 = (w if w > 0 else L for w in p.windows)
        o = torch.empty((B, L, H, dv), device=q.device, dtype=torch.float32)
        lse = torch.empty((B, H, L), device=q.device, dtype=torch.float32)
        for g in range(p.Hkv):
            qg = torch.zeros((B, L, gp, d), device=q.device, dtype=q.dtype)
            qg[:, :, :G] = q[:, :, g * G:(g + 1) * G]
            vs = []
            for v in (v1, v2):
                vg = torch.zeros((B, L, 1, d), device=q.device, dtype=q.dtype)
                vg[..., :dv] = v[:, :, g:g + 1]
                vs.append(vg)
            kw = dict(k2_bias=p.k_bias[1], v2_bias=p.v_bias[1]) if biases else {}
            out, m = triton_fwd(qg, k1[:, :, g:g + 1].contiguous(), k2[:, :, g:g + 1].contiguous(),
                                vs[0], vs[1], w1, w2, **kw)
            o[:, :, g * G:(g + 1) * G] = out[:, :, :G, :dv].float()
            lse[:, g * G:(g + 1) * G] = m[:, :G]
        torch.cuda.synchronize()
        return o, lse
    return forward


def judge(case, fn, biases=False):
    o, lse = fn(case.problem, case.inputs(device="cuda", dtype=torch.bfloat16), biases=biases)
    return nsimplex.check(case, o=o.double().cpu().numpy(), lse=lse.double().cpu().numpy(), model=MODEL,
                          label="fbgemm-" + case.name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbgemm", required=True, help="FBGEMM's simplicial_attention folder")
    ap.add_argument("--out", required=True, help="where the vectors, candidates and fuzz failures go")
    ap.add_argument("--no-recipes", action="store_true", help="skip the built-in Meta shapes")
    ap.add_argument("--fuzz", type=float, metavar="SECONDS", help="then fuzz the forward for SECONDS")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default="all", choices=sorted(nsimplex.SIZE_CLASSES),
                    help="the fuzzer's size classes (default all: small; tiles, L up to 1024 and d up to 256; "
                         "production)")
    ap.add_argument("vectors", nargs="*")
    args = ap.parse_args()
    sys.path.insert(0, args.fbgemm)
    from simplicial.ops.triton.fwd import triton_fwd  # noqa: E402 (third-party, not committed)
    fn = fbgemm_forward(triton_fwd)

    os.makedirs(args.out, exist_ok=True)
    cases = []
    if not args.no_recipes:
        for name, recipe in RECIPES + [IGNORED_BIAS]:
            path = os.path.join(args.out, name + ".safetensors")
            nsimplex.gen(recipe, path, name=name)
            cases.append(path)
    failed = judged = 0
    for path in cases + args.vectors:
        case = nsimplex.load(path)
        biased = case.name == IGNORED_BIAS[0]
        why = outside(case.problem, biases=biased)
        if why:
            print("%-28s skipped: %s" % (case.name, why))
            continue
        try:
            rep = judge(case, fn, biases=biased)
        except nsimplex.NotApplicable as e:
            print("%-28s not applicable under %s: %s" % (case.name, MODEL, str(e).splitlines()[0][:200]))
            continue
        judged += not biased
        failed += not rep.passed and not biased
        print("%-28s %s worst o and lse ratio %.3g, %d failures%s" % (
            case.name, "PASS" if rep.passed else "FAIL", rep.ratio or 0, rep.failures,
            " (expected: biases passed, ignored by the kernel)" if biased else ""))
        if not rep.passed:
            print("  " + rep.text.replace("\n", "\n  ")[:800])
    print("fbgemm: %d of %d judged vectors pass" % (judged - failed, judged))
    if args.fuzz:
        res = nsimplex.fuzz(fn, seconds=args.fuzz, seed=args.seed, model=MODEL, device="cuda",
                            dtype=torch.bfloat16, features=["windows", "gqa", "lse"], max_order=2,
                            shapes=lambda p: outside(p) is None, out=os.path.join(args.out, "fuzz"),
                            name="fbgemm_triton_fwd", sizes=args.sizes)
        print(res)
        failed += not res.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
