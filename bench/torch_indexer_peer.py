#!/usr/bin/env python3
"""PyTorch CPU peer of `nsimplex bench --indexer`: the DSA lightning indexer
(E8) and its top-k (E9) in float32, written as a PyTorch user would write
it, on the same inputs (the same splitmix64 bits as runner/idx_bench.c),
timed and reported in the same units: scored (query, key) pairs per second
and useful GFLOP/s at Hi*(2*di+2) flops per pair (runner/idx_bench.h).

How it computes, per chunk of queries: the keys any query of the chunk may
see (0 .. last query, causal) form one block; the logits are one matmul
(queries*heads x di) @ (di x keys), times idx_scale, relu; the head weights
sum them out (a batched matmul); future keys are set to -inf; torch.topk
keeps min(k, keys) per query, and each row's own count of candidates
decides how many of those are kept.  The chunk is tuned: each power of two
from 16 to 512 is timed on the last queries, the fastest is used.

With --check-sel FILE (the selection `nsimplex bench --indexer --sel-out
FILE` wrote, int32 [B, L, k]) it compares the two selections as sets: rows
that differ must differ only in keys whose peer scores lie within a
relative 1e-4 of that row's k-th score (float32 summation order).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch


def splitmix_uniform(seed, first, count):
    """The fill of runner/idx_bench.c: ((next >> 40) - 2^23) * 2^-23 for
    draws first .. first + count - 1 of splitmix64 started at seed, as
    float32; and the next draw's number."""
    M = np.uint64(0xFFFFFFFFFFFFFFFF)
    out = np.empty(count, dtype=np.float32)
    step = 1 << 22
    for at in range(0, count, step):
        n = min(step, count - at)
        s = (np.uint64(seed) + np.arange(first + at + 1, first + at + n + 1, dtype=np.uint64) *
             np.uint64(0x9e3779b97f4a7c15)) & M
        z = s
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        z = z ^ (z >> np.uint64(31))
        v = (z >> np.uint64(40)).astype(np.int64) - (1 << 23)
        out[at:at + n] = (v.astype(np.float64) * 2.0 ** -23).astype(np.float32)
    return out, first + count


def inputs(a):
    rows = a.B * a.L
    with np.errstate(over="ignore"):
        q, nxt = splitmix_uniform(a.seed, 0, rows * a.Hi * a.di)
        k, nxt = splitmix_uniform(a.seed, nxt, rows * a.di)
        w, nxt = splitmix_uniform(a.seed, nxt, rows * a.Hi)
    return (torch.from_numpy(q).view(a.B, a.L, a.Hi, a.di), torch.from_numpy(k).view(a.B, a.L, a.di),
            torch.from_numpy(w).view(a.B, a.L, a.Hi))


def indexer(q, k, w, scale, topk, chunk, rows=None, keep_scores=False):
    """sel [B, L, topk] (ascending, -1 pads) for the query rows given (all)."""
    B, L, Hi, di = q.shape
    sel = torch.full((B, L, topk), -1, dtype=torch.int32)
    scores = {}
    lo_rows = 0 if rows is None else rows[0]
    hi_rows = L if rows is None else rows[1]
    for b in range(B):
        for i0 in range(lo_rows, hi_rows, chunk):
            i1 = min(i0 + chunk, hi_rows)
            nk = i1  # keys 0 .. i1 - 1
            x = (q[b, i0:i1].reshape(-1, di) @ k[b, :nk].T).view(i1 - i0, Hi, nk)
            x = torch.relu(x * scale)
            s = torch.bmm(w[b, i0:i1].unsqueeze(1), x).squeeze(1)  # [queries, keys]
            future = torch.arange(nk).unsqueeze(0) > torch.arange(i0, i1).unsqueeze(1)
            s.masked_fill_(future, -math.inf)
            kk = min(topk, nk)
            idx = torch.topk(s, kk, dim=1).indices  # by score, descending
            # row r has i0 + r + 1 candidates: the rest of its top-kk are
            # future keys (-inf, listed last); they become pads
            count = torch.clamp(torch.arange(i0, i1) + 1, max=kk).unsqueeze(1)
            idx = torch.where(torch.arange(kk).unsqueeze(0) < count, idx, torch.full_like(idx, L))
            idx = torch.sort(idx, dim=1).values
            idx[idx == L] = -1
            sel[b, i0:i1, :kk] = idx.to(torch.int32)
            if keep_scores:
                for r in range(i1 - i0):
                    scores[(b, i0 + r)] = s[r]
    return sel, scores


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--L", type=int, default=4096)
    ap.add_argument("--Hi", type=int, default=64)
    ap.add_argument("--di", type=int, default=128)
    ap.add_argument("--topk", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    ap.add_argument("--chunk", type=int, default=0, help="queries per chunk (0: tuned)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs; the best counts")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-sel", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads if a.threads else os.cpu_count())
    q, k, w = inputs(a)
    scale = float(np.float32(1.0 / math.sqrt(a.di)))
    chunk = a.chunk
    if not chunk:
        best = None
        tail = min(a.L, 512)
        for c in (16, 32, 64, 128, 256, 512):
            t0 = time.perf_counter()
            indexer(q[:1], k[:1], w[:1], scale, a.topk, c, rows=(a.L - tail, a.L))
            t = time.perf_counter() - t0
            if best is None or t < best[0]:
                best = (t, c)
        chunk = best[1]
    secs = math.inf
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        sel, _ = indexer(q, k, w, scale, a.topk, chunk)
        secs = min(secs, time.perf_counter() - t0)
    pairs = a.B * a.L * (a.L + 1) // 2
    fpp = a.Hi * (2 * a.di + 2)
    res = {"peer": "torch " + torch.__version__, "threads": torch.get_num_threads(), "chunk": chunk,
           "seconds": secs, "pairs": pairs, "pairs_per_s": pairs / secs, "gflops": pairs * fpp / secs * 1e-9}
    if a.check_sel:
        c = np.fromfile(a.check_sel, dtype=np.int32).reshape(a.B, a.L, a.topk)
        p = sel.numpy()
        differ, beyond = 0, 0
        for b in range(a.B):
            for i in range(a.L):
                A = set(c[b, i][c[b, i] >= 0].tolist())
                P = set(p[b, i][p[b, i] >= 0].tolist())
                if A == P:
                    continue
                differ += 1
                _, sc = indexer(q[b:b + 1], k[b:b + 1], w[b:b + 1], scale, a.topk, 1, rows=(i, i + 1),
                                keep_scores=True)
                s = sc[(0, i)]
                kth = min(s[j].item() for j in P)
                for j in A ^ P:
                    if abs(s[j].item() - kth) > 1e-4 * abs(kth):
                        beyond += 1
        res.update({"rows_differ": differ, "keys_beyond_tolerance": beyond})
    if a.json:
        print(json.dumps(res))
    else:
        print(res)
    if a.check_sel and res["keys_beyond_tolerance"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
