#!/usr/bin/env python3
"""Judge Meta's FBGEMM 2-simplicial Triton forward with nsimplex (issue 14, docs/KERNELS.md).

FBGEMM's code is not part of nsimplex: point --fbgemm at a checkout's
fbgemm_gpu/experimental/simplicial_attention folder.  For each recipe below, nsimplex writes a
golden vector (`nsimplex.gen`), the Triton kernel runs on its inputs in bf16 on CUDA, and the
output is judged in process under the `bf16` model (the one docs/ORACLE.md derives from this
kernel).  The kernel's second output is a base-2 running max, not an LSE, so only o is judged.

    python3 examples/fbgemm_check.py --fbgemm third_party/simplicial_attention --out /tmp/fb

Prints one line per case and exits 1 when a case fails.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402

# Meta's own test shapes (tests/test_triton_fwd.py: N = 128..512, H = 16, D = 128, w1 in {32, 256},
# w2 in {4, 128, 256}), the paper's windows, and the cases where the kernel's conventions differ
# from its docstring: kb/vb of 0 (it treats a 0 bias as "not given") and w1 > w2 (it swaps the
# dimensions to put the smaller window first, and the K2/V2 bias with them).
CASES = [
    ("meta_L128_w32_4", "n=2 L=128 H=16 Hkv=1 d=128 w=32,4 kb=0,0.0078125 vb=0,1 fmt=bf16"),
    ("meta_L256_w32_128", "n=2 L=256 H=16 Hkv=1 d=128 w=32,128 kb=0,0.0078125 vb=0,1 fmt=bf16"),
    ("meta_L512_w256_256", "n=2 L=512 H=16 Hkv=1 d=128 w=256,256 kb=0,0.0078125 vb=0,1 fmt=bf16"),
    ("d64_L257_w64_33", "n=2 L=257 H=16 Hkv=1 d=64 w=64,33 kb=0,0.015625 vb=0,1 fmt=bf16"),
    ("w1_gt_w2_L256_w128_32", "n=2 L=256 H=16 Hkv=1 d=128 w=128,32 kb=0,0.0078125 vb=0,1 fmt=bf16"),
    ("no_bias_L128_w32_32", "n=2 L=128 H=16 Hkv=1 d=128 w=32,32 fmt=bf16"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fbgemm", required=True, help="FBGEMM's simplicial_attention folder")
    ap.add_argument("--out", required=True, help="where the vectors and candidates go")
    args = ap.parse_args()
    sys.path.insert(0, args.fbgemm)
    from simplicial.ops.triton.fwd import triton_fwd  # noqa: E402 (third-party, not committed)

    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for name, recipe in CASES:
        path = os.path.join(args.out, name + ".safetensors")
        nsimplex.gen(recipe, path, name=name)
        case = nsimplex.load(path)
        p = case.problem
        t = case.inputs(device="cuda", dtype=torch.bfloat16)
        k1, k2 = t["k"]
        v1, v2 = t["v"]
        w1, w2 = (w if w > 0 else p.L for w in p.windows)
        out, m = triton_fwd(t["q"], k1, k2, v1, v2, w1, w2, k2_bias=p.k_bias[1], v2_bias=p.v_bias[1])
        torch.cuda.synchronize()
        o = out.float().cpu().numpy().astype("float64")
        # FBGEMM's m is a base-2 running max plus the natural log of the sum: lseform=mixed (ORACLE.md B15)
        lse = m.float().cpu().numpy().astype("float64")
        rep = nsimplex.check(case, o=o, lse=lse, model="bf16,lseform=mixed", label="fbgemm-" + name)
        failed += not rep.passed
        print(f"{name}: {'PASS' if rep.passed else 'FAIL'} worst o and lse ratio {rep.ratio:.3g}, "
              f"{rep.failures} failures; recipe \"{recipe}\"")
        if not rep.passed:
            print("  " + rep.text.replace("\n", "\n  ")[:1500])
    print(f"fbgemm: {len(CASES) - failed} of {len(CASES)} cases pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
