#!/usr/bin/env python3
"""One FBGEMM case three ways: the Triton kernel, FBGEMM's own torch reference, nsimplex's golden
values (a diagnosis aid for examples/fbgemm_check.py; FBGEMM's code stays outside the repo)."""
import os, sys
import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402
sys.path.insert(0, sys.argv[1])
from simplicial.ops.triton.fwd import triton_fwd  # noqa: E402
from simplicial.ops.pytorch.two_simplicial_attention import torch_fwd_ref  # noqa: E402
for recipe in ["n=2 L=64 H=16 Hkv=1 d=128 w=8,16 kb=0,0.0078125 vb=0,1 fmt=bf16",
               "n=2 L=64 H=16 Hkv=1 d=128 w=16,8 kb=0,0.0078125 vb=0,1 fmt=bf16"]:
    nsimplex.gen(recipe, "/tmp/dbg.safetensors", name="dbg")
    c = nsimplex.load("/tmp/dbg.safetensors")
    p = c.problem
    t = c.inputs(device="cuda", dtype=torch.bfloat16)
    q, (k1, k2), (v1, v2) = t["q"], t["k"], t["v"]
    w1, w2 = p.windows
    print(recipe, "contiguous:", q.is_contiguous(), k1.is_contiguous(), v1.is_contiguous(), q.stride())
    out, _ = triton_fwd(q.contiguous(), k1.contiguous(), k2.contiguous(), v1.contiguous(), v2.contiguous(), w1, w2,
                        k2_bias=p.k_bias[1], v2_bias=p.v_bias[1])
    ref = torch_fwd_ref(q, k1, k2, v1, v2, w1=w1, w2=w2, k2_bias=p.k_bias[1], v2_bias=p.v_bias[1], use_fp32=True)
    gold = torch.tensor(c.expected["o"], device="cuda", dtype=torch.float32)
    o = out.float()
    print("  shapes", tuple(o.shape), tuple(ref.shape), tuple(gold.shape))
    print("  |triton - gold| max %.4g   |torchref - gold| max %.4g   |triton - torchref| max %.4g" % (
        (o - gold).abs().max().item(), (ref.float() - gold).abs().max().item(), (o - ref.float()).abs().max().item()))
    print("  row 0 head 0: gold", gold[0, 0, 0, :4].tolist(), "triton", o[0, 0, 0, :4].tolist(),
          "torchref", ref.float()[0, 0, 0, :4].tolist())
    rep = nsimplex.check(c, o=o.cpu().numpy().astype("float64"), model="bf16")
    print("  contiguous inputs: check", "PASS" if rep.passed else "FAIL", "ratio %.3g" % rep.ratio)
