#!/usr/bin/env python3
"""`make bench`: the C kernel (`nsimplex bench --json`) and the PyTorch peer
(bench/torch_peer.py, which also checks that it agrees with the kernel's
shared library) on the 2-simplicial paper's shape, on w1 = w2 = 128, on
the paper's windows with d = dv = 128, and on ordinary attention (n = 1,
L = 4096, d = 128, dense causal and with a top-k 2048 selection), one line
per shape with the share of peak and the ratio of their useful GFLOP/s; then
the backward (`nsimplex bench --bwd`) and its PyTorch autograd peer
(bench/torch_bwd_peer.py, which also checks that its gradients agree with
the library's nsx_kernel_backward) on the paper's shape; then the SIMD
indexer (`nsimplex bench --indexer`) and its PyTorch peer
(bench/torch_indexer_peer.py, which checks that the two selections agree)
at DeepSeek V3.2's shape.  Without PyTorch the peers are skipped, and it
says so."""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

N1 = ["--n", "1", "--L", "4096", "--d", "128", "--dv", "128"]
SHAPES = [("paper n=2 w=512,32", ["--window", "512,32"]),
          ("n=2 w=128,128", ["--window", "128,128"]),
          ("n=2 w=512,32 d=dv=128", ["--window", "512,32", "--d", "128", "--dv", "128"]),
          ("n=1 L=4096 d=128 dense causal", N1),
          ("n=1 L=4096 d=128 top-k 2048", N1 + ["--topk", "2048"])]
# The backward on the paper's shape, L scaled down to 1024 for a CPU run (the
# autograd peer takes minutes at L = 2048).
BWD_SHAPES = [("backward paper n=2 w=512,32 L=1024", ["--window", "512,32", "--L", "1024"])]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prog", required=True)
    ap.add_argument("--so", required=True)
    ap.add_argument("--indexer-only", action="store_true")
    ap.add_argument("--backward-only", action="store_true")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    have_torch = importlib.util.find_spec("torch") is not None
    if not have_torch:
        print(f"make bench: PyTorch is not importable by {sys.executable}: the peers are skipped")
    if a.indexer_only:
        return indexer(a, here, have_torch)
    if a.backward_only:
        return backward(a, here, have_torch)
    if not have_torch:
        for name, args in SHAPES:
            c = run_json([a.prog, "bench", "--json", "--naive-seconds", "10"] + args)
            print(f"{name}: C {c['gflops']:.1f} GFLOP/s ({100 * c['peak_share']:.1f}% of "
                  f"{c['peak_gflops']:.0f} peak, {c['seconds']:.3f} s); torch peer skipped", flush=True)
        backward(a, here, have_torch)
        return indexer(a, here, have_torch)
    out = []
    for name, args in SHAPES:
        c = run_json([a.prog, "bench", "--json", "--naive-seconds", "10"] + args)
        t = run_json([sys.executable, os.path.join(here, "torch_peer.py"), "--json",
                      "--check-so", a.so] + args)
        out.append((name, c, t))
        print(f"{name}: C {c['gflops']:.1f} GFLOP/s ({100 * c['peak_share']:.1f}% of "
              f"{c['peak_gflops']:.0f} peak, {c['seconds']:.3f} s, naive ratio "
              f"{c['naive_ratio']:.0f}x); torch {t['torch']} {t['gflops']:.2f} GFLOP/s "
              f"({t['seconds']:.2f} s, query chunk {t['chunk']}); ratio {c['gflops'] / t['gflops']:.1f}x; "
              f"peer vs kernel max |o diff| {t['max_abs_diff_o']:.2g}, "
              f"|lse diff| {t['max_abs_diff_lse']:.2g}", flush=True)
    worst = min(c["gflops"] / t["gflops"] for _, c, t in out)
    print(f"make bench: C kernel / PyTorch peer >= {worst:.1f}x on every shape")
    backward(a, here, have_torch)
    indexer(a, here, have_torch)


def backward(a, here, have_torch):
    for name, args in BWD_SHAPES:
        c = run_json([a.prog, "bench", "--bwd", "--json"] + args)
        line = (f"{name}: C {c['gflops']:.1f} GFLOP/s ({100 * c['peak_share']:.1f}% of "
                f"{c['peak_gflops']:.0f} peak, {c['seconds']:.3f} s, {c['isa']}, {c['threads']} threads, "
                f"{c['flops_per_tuple']:.0f} flops per tuple)")
        if not have_torch:
            print(line + "; torch autograd peer skipped", flush=True)
            continue
        t = run_json([sys.executable, os.path.join(here, "torch_bwd_peer.py"), "--json", "--repeat", "1",
                      "--check-so", a.so] + args)
        print(line + f"; torch {t['torch']} autograd {t['gflops']:.2f} GFLOP/s ({t['seconds']:.2f} s "
              f"backward = {t['fwd_bwd_seconds']:.2f} s forward+backward less {t['fwd_no_grad_seconds']:.2f} s "
              f"no_grad forward, query chunk {t['chunk']}); ratio {c['gflops'] / t['gflops']:.1f}x; peer vs "
              f"kernel max |dq diff| {t['max_abs_diff_dq']:.2g}, |dk diff| {t['max_abs_diff_dk']:.2g}, "
              f"|dv diff| {t['max_abs_diff_dv']:.2g}", flush=True)


def indexer(a, here, have_torch):
    if not have_torch:
        c = run_json([a.prog, "bench", "--indexer", "--json"])
        print(f"indexer: C {c['gflops']:.1f} GFLOP/s ({100 * c['peak_share']:.1f}% of {c['peak_gflops']:.0f} "
              f"peak); torch peer skipped", flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sel = os.path.join(tmp, "sel.bin")
        c = run_json([a.prog, "bench", "--indexer", "--json", "--sel-out", sel])
        t = run_json([sys.executable, os.path.join(here, "torch_indexer_peer.py"), "--json",
                      "--check-sel", sel])
    print(f"indexer L={c['L']} Hi={c['Hi']} di={c['di']} top-k {c['topk']} {c['act']}: "
          f"C {c['pairs_per_s']:.3g} pairs/s, {c['gflops']:.1f} GFLOP/s ({100 * c['peak_share']:.1f}% of "
          f"{c['peak_gflops']:.0f} peak, {c['seconds']:.3f} s, {c['isa']}, {c['threads']} threads); "
          f"torch {t['peer']} {t['pairs_per_s']:.3g} pairs/s, {t['gflops']:.2f} GFLOP/s ({t['seconds']:.2f} s, "
          f"query chunk {t['chunk']}); ratio {c['gflops'] / t['gflops']:.1f}x; selections differ in "
          f"{t['rows_differ']} rows, {t['keys_beyond_tolerance']} keys beyond the peer's near-tie tolerance",
          flush=True)


if __name__ == "__main__":
    main()
