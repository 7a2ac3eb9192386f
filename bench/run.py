#!/usr/bin/env python3
"""`make bench`: the C kernel (`nsimplex bench --json`) and the PyTorch peer
(bench/torch_peer.py, which also checks that it agrees with the kernel's
shared library) on the 2-simplicial paper's shape, on w1 = w2 = 128, on
the paper's windows with d = dv = 128, and on ordinary attention (n = 1,
L = 4096, d = 128, dense causal and with a top-k 2048 selection), one line
per shape with the share of peak and the ratio of their useful GFLOP/s; then the SIMD indexer
(`nsimplex bench --indexer`) and its PyTorch peer (bench/torch_indexer_peer.py,
which checks that the two selections agree) at DeepSeek V3.2's shape."""
import argparse
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


def run_json(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prog", required=True)
    ap.add_argument("--so", required=True)
    ap.add_argument("--indexer-only", action="store_true")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if a.indexer_only:
        return indexer(a, here)
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
    indexer(a, here)


def indexer(a, here):
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
