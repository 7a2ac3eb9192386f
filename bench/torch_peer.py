#!/usr/bin/env python3
"""PyTorch CPU peer of `nsimplex bench`: the same operator, float32, written
as a PyTorch user would write it, timed on the same shapes and reported in
the same useful GFLOP/s (the exact count of allowed tuples times 2*(d+dv)
for the product reducer, 2*d+2 for sum and mean; runner/bench.h derives
them).

How it computes (per batch, kv head, and chunk of queries): the keys any
query of the chunk may use in dimension m form one contiguous block (causal
and windows); the scores of the whole block are a broadcast product
U = s q o K_1 o ... o K_{n-1} and one matmul with K_n^T; masks set the
disallowed tuples to -inf; the softmax runs over the whole slice of each
query (logsumexp); the values are matmuls too (P @ V_n, then the other V_m
multiplied in and summed out; for sum/mean, the marginals of P times each
V_m).  Larger query chunks mean fewer, larger matmuls but more masked work
(each block is the union of the chunk's windows), so the chunk is tuned:
each power of two whose U fits --mem-mib is timed (best of two) on the last
512 queries (full windows), and the fastest is used; the best of --repeat
runs counts.

n = 1 (ordinary attention) is the plain form, softmax(Q K^T) V per chunk
of queries: one matmul with the chunk's key range and a mask; with --topk K
(a random selection per query, as `nsimplex bench --topk` draws one) the
mask is the selection's.  (Gathering K[sel] and V[sel] per query instead
was 7x slower here at top-k 256 of 1024, so the peer masks.)  Chunks of 8
to 512 queries are tuned as above.

With --check-so LIB.so it also runs that kernel (nsx_kernel_forward, the
kernel ABI) on the same tensors and prints the largest differences, so the
comparison is between two implementations that agree.
"""
import argparse
import ctypes
import json
import math
import os
import sys
import time

import torch

NSX_MAX_ORDER = 8


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--L", type=int, default=2048)
    ap.add_argument("--H", type=int, default=4)
    ap.add_argument("--Hkv", type=int, default=1)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--dv", type=int, default=64)
    ap.add_argument("--window", default=None, help="w1,w2,... (512,32 for n=2, else none)")
    ap.add_argument("--causal", type=int, default=1, choices=[0, 1])
    ap.add_argument("--reduce", default="product", choices=["product", "sum", "mean"])
    ap.add_argument("--topk", type=int, default=0,
                    help="n = 1 only: a random selection of this many keys per query")
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    ap.add_argument("--mem-mib", type=float, default=64, help="budget for one chunk's U")
    ap.add_argument("--chunk", type=int, default=0, help="queries per chunk (0: tuned)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs; the best counts")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-so", default=None, help="a kernel ABI library to compare with")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not 1 <= a.n <= NSX_MAX_ORDER or a.H % a.Hkv:
        ap.error("need 1 <= n <= 8 and H a multiple of Hkv")
    if a.topk and (a.n != 1 or a.topk < 0):
        ap.error("--topk: n = 1 only")
    if a.window is None:
        a.windows = [512, 32] if a.n == 2 else [0] * a.n
    else:
        a.windows = [int(x) for x in a.window.split(",")]
        if len(a.windows) == 1:
            a.windows *= a.n
        if len(a.windows) != a.n or min(a.windows) < 0:
            ap.error("--window: give n non-negative values, or one")
    return a


def key_range(i0, i1, w, causal, L):
    """The keys [lo, hi) that any query in [i0, i1) may use in one dimension."""
    lo = max(0, i0 - w + 1) if w else 0
    hi = i1 if causal else (min(L, i1 - 1 + w) if w else L)
    return lo, hi


def dim_mask(i0, i1, lo, hi, w, causal):
    ii = torch.arange(i0, i1)[:, None]
    jj = torch.arange(lo, hi)[None, :]
    ok = torch.ones(i1 - i0, hi - lo, dtype=torch.bool)
    if causal:
        ok &= jj <= ii
    if w:
        ok &= jj > ii - w
        if not causal:
            ok &= jj < ii + w
    return ok


def fits(a, c):
    """Whether a chunk of c queries keeps U within --mem-mib (n = 1: the
    scores, or the gathered keys and values)."""
    if a.n == 1:
        G = a.H // a.Hkv
        elems = c * G * a.L
        return elems * 4 <= a.mem_mib * 2**20
    widths = [(w + c - 1 if w else a.L) for w in a.windows[:-1]]
    elems = c * (a.H // a.Hkv) * math.prod(min(x, a.L) for x in widths) * a.d
    return elems * 4 <= a.mem_mib * 2**20


def tune_chunk(a, q, ks, vs):
    """The fastest power-of-two chunk on the last 512 queries."""
    first = max(0, a.L - 512)
    best, best_t = 1, math.inf
    sizes = (1, 2, 4, 8, 16, 32, 64) if a.n > 1 else (8, 16, 32, 64, 128, 256, 512)
    for c in sizes:
        if c > a.L - first or (c > sizes[0] and not fits(a, c)):
            break
        t = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            run_forward(a, q, ks, vs, c, first)
            t = min(t, time.perf_counter() - t0)
        if t < best_t:
            best, best_t = c, t
    return best


def run_forward(a, q, ks, vs, chunk, first=0):
    if a.n == 1:
        return forward_n1(a, q, ks[0], vs[0], a.sel, chunk, first)
    return forward(a, q, ks, vs, chunk, first)


def chunk_forward(a, qc, K, V, rng, i0, i1):
    """O [C, G, dv] and LSE [C, G] of the queries i0..i1-1 of one batch and kv
    head: qc [C, G, d] their queries, K[m], V[m] the key and value blocks
    rng[m] = (lo, hi) of dimension m (key_range).  bench/torch_bwd_peer.py
    differentiates this with autograd."""
    n, G, dv, d = a.n, a.H // a.Hkv, a.dv, a.d
    C = i1 - i0
    scale = 1.0 / math.sqrt(d)
    W = [hi - lo for lo, hi in rng]
    # scores of every tuple of the blocks: [C, G, W1, ..., Wn]
    U = (qc * scale).reshape(C, G, *[1] * (n - 1), d)
    for m in range(n - 1):
        shape = [1, 1] + [1] * (n - 1) + [d]
        shape[2 + m] = W[m]
        U = U * K[m].reshape(shape)
    S = U @ K[n - 1].T
    mask = torch.ones([C, 1] + W, dtype=torch.bool)
    for m, (lo, hi) in enumerate(rng):
        shape = [C, 1] + [1] * n
        shape[2 + m] = W[m]
        mask = mask & dim_mask(i0, i1, lo, hi, a.windows[m], a.causal).reshape(shape)
    S = S.masked_fill(~mask, -math.inf)
    flat = S.reshape(C, G, -1)
    l = torch.logsumexp(flat, dim=-1)  # [C, G]
    P = torch.exp(flat - l[..., None]).nan_to_num(0.0).reshape(S.shape)
    if a.reduce == "product":
        R = P @ V[n - 1]  # [C, G, W1..W_{n-1}, dv]
        for m in range(n - 2, -1, -1):
            shape = [1, 1] + [1] * m + [W[m], dv]
            R = (R * V[m].reshape(shape)).sum(dim=2 + m)
        out = R
    else:
        out = torch.zeros(C, G, dv)
        for m in range(n):
            other = [2 + x for x in range(n) if x != m]
            marg = P.sum(dim=other) if other else P  # [C, G, W_m]
            out = out + marg @ V[m]
        if a.reduce == "mean":
            out = out / n
    return out, l


def forward(a, q, ks, vs, chunk, first=0):
    """O [B,L,H,dv] and LSE [B,H,L] of the queries first..L-1 (the other
    rows are left 0 and -inf)."""
    B, L, H, d = q.shape
    G, dv = a.H // a.Hkv, a.dv
    o = torch.zeros(B, L, H, dv)
    lse = torch.full((B, H, L), -math.inf)
    for b in range(B):
        for g in range(a.Hkv):
            for i0 in range(first, L, chunk):
                i1 = min(L, i0 + chunk)
                rng = [key_range(i0, i1, w, a.causal, L) for w in a.windows]
                K = [ks[m][b, lo:hi, g, :] for m, (lo, hi) in enumerate(rng)]
                V = [vs[m][b, lo:hi, g, :] for m, (lo, hi) in enumerate(rng)]
                out, l = chunk_forward(a, q[b, i0:i1, g * G:(g + 1) * G, :], K, V, rng, i0, i1)
                o[b, i0:i1, g * G:(g + 1) * G, :] = out
                lse[b, g * G:(g + 1) * G, i0:i1] = l.T
    return o, lse


def make_sel(a, gen):
    """Per (b, i): topk distinct keys among those a causal query may use
    (all keys with causal off), -1 pads, as `nsimplex bench` draws them."""
    sel = torch.full((a.B, a.L, a.topk), -1, dtype=torch.int32)
    for b in range(a.B):
        for i in range(a.L):
            pool = i + 1 if a.causal else a.L
            take = min(pool, a.topk)
            sel[b, i, :take] = torch.randperm(pool, generator=gen)[:take].to(torch.int32)
    return sel


def allowed_sel(a, idx, i0, i1):
    """Which entries of the selection rows idx [C, k] of queries i0..i1-1
    are allowed: valid, not in the future (causal), inside the window."""
    ii = torch.arange(i0, i1)[:, None]
    ok = (idx >= 0) & (idx < a.L)
    w = a.windows[0]
    if a.causal:
        ok &= idx <= ii
    if w:
        ok &= idx > ii - w
        if not a.causal:
            ok &= idx < ii + w
    return ok


def forward_n1(a, q, k, v, sel, chunk, first=0):
    """n = 1, as a PyTorch user writes attention: per chunk of queries,
    softmax(Q K^T) V over the chunk's key range with a mask, or with a
    selection over the gathered keys K[sel], V[sel]."""
    B, L, H, d = q.shape
    G, dv, w = a.H // a.Hkv, a.dv, a.windows[0]
    scale = 1.0 / math.sqrt(d)
    o = torch.zeros(B, L, H, dv)
    lse = torch.full((B, H, L), -math.inf)
    for b in range(B):
        for g in range(a.Hkv):
            K, V = k[b, :, g, :], v[b, :, g, :]
            for i0 in range(first, L, chunk):
                i1 = min(L, i0 + chunk)
                Q = q[b, i0:i1, g * G:(g + 1) * G, :] * scale  # [C, G, d]
                lo, hi = key_range(i0, i1, w, a.causal, L)
                S = Q @ K[lo:hi].T  # [C, G, W]
                Vb = V[lo:hi]
                if sel is None:
                    ok = dim_mask(i0, i1, lo, hi, w, a.causal)[:, None, :]
                else:  # the selected keys of each query, as a mask
                    idx = sel[b, i0:i1].long()  # [C, k]
                    W = hi - lo
                    pos = torch.where(allowed_sel(a, idx, i0, i1), idx - lo, W)
                    ok = torch.zeros(i1 - i0, W + 1, dtype=torch.bool)
                    ok = ok.scatter_(1, pos, True)[:, None, :W]
                S = S.masked_fill(~ok, -math.inf)
                l = torch.logsumexp(S, dim=-1)  # [C, G]
                P = torch.exp(S - l[..., None]).nan_to_num(0.0)
                o[b, i0:i1, g * G:(g + 1) * G, :] = P @ Vb
                lse[b, g * G:(g + 1) * G, i0:i1] = l.T
    return o, lse


def tuples(a):
    """The exact count of allowed tuples (no distinct here)."""
    if a.topk:
        return sum(int(allowed_sel(a, a.sel[b].long(), 0, a.L).sum()) for b in range(a.B)) * a.H
    total = 0
    for i in range(a.L):
        c = 1
        for w in a.windows:
            lo, hi = key_range(i, i + 1, w, a.causal, a.L)
            c *= hi - lo
        total += c
    return total * a.B * a.H


class Problem(ctypes.Structure):
    """nsx_kernel_problem of include/nsimplex/kernel.h (ABI version 1)."""
    _fields_ = [(x, ctypes.c_int) for x in ("n", "B", "L", "H", "Hkv", "d", "dv", "reduce",
                                            "causal", "distinct")] + [
        ("window", ctypes.c_int * NSX_MAX_ORDER),
        ("score_scale", ctypes.c_double), ("out_scale", ctypes.c_double),
        ("k_bias", ctypes.c_double * NSX_MAX_ORDER), ("v_bias", ctypes.c_double * NSX_MAX_ORDER),
        ("topk", ctypes.c_int), ("sel_dims", ctypes.c_uint), ("sel", ctypes.c_void_p)]


class IO(ctypes.Structure):
    """nsx_kernel_io."""
    _fields_ = [("q", ctypes.c_void_p), ("k", ctypes.c_void_p * NSX_MAX_ORDER),
                ("v", ctypes.c_void_p * NSX_MAX_ORDER), ("o", ctypes.c_void_p),
                ("lse", ctypes.c_void_p)]


def run_so(a, path, q, ks, vs):
    lib = ctypes.CDLL(path)
    lib.nsx_kernel_forward.restype = ctypes.c_int
    lib.nsx_kernel_forward.argtypes = [ctypes.POINTER(Problem), ctypes.POINTER(IO)]
    p = Problem(n=a.n, B=a.B, L=a.L, H=a.H, Hkv=a.Hkv, d=a.d, dv=a.dv,
                reduce=["product", "sum", "mean"].index(a.reduce), causal=a.causal,
                score_scale=1.0 / math.sqrt(a.d), out_scale=1.0)
    for m, w in enumerate(a.windows):
        p.window[m] = w
    if a.topk:
        p.topk, p.sel_dims, p.sel = a.topk, 1, a.sel.data_ptr()
    o = torch.empty(a.B, a.L, a.H, a.dv)
    lse = torch.empty(a.B, a.H, a.L)
    io = IO(q=q.data_ptr(), o=o.data_ptr(), lse=lse.data_ptr())
    for m in range(a.n):
        io.k[m] = ks[m].data_ptr()
        io.v[m] = vs[m].data_ptr()
    t0 = time.perf_counter()
    rc = lib.nsx_kernel_forward(ctypes.byref(p), ctypes.byref(io))
    secs = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"torch_peer: {path}: nsx_kernel_forward returned {rc}")
    return o, lse, secs


def main():
    a = parse_args()
    torch.set_num_threads(a.threads or os.cpu_count())
    gen = torch.Generator().manual_seed(a.seed)

    def rand(*shape):
        return torch.rand(*shape, generator=gen) * 2 - 1

    q = rand(a.B, a.L, a.H, a.d)
    ks = [rand(a.B, a.L, a.Hkv, a.d) for _ in range(a.n)]
    vs = [rand(a.B, a.L, a.Hkv, a.dv) for _ in range(a.n)]
    a.sel = make_sel(a, gen) if a.topk else None
    with torch.no_grad():
        chunk = a.chunk or tune_chunk(a, q, ks, vs)
    secs = math.inf
    for _ in range(max(1, a.repeat)):
        t0 = time.perf_counter()
        with torch.no_grad():
            o, lse = run_forward(a, q, ks, vs, chunk)
        secs = min(secs, time.perf_counter() - t0)
    count = tuples(a)
    fpt = 2 * (a.d + a.dv) if a.reduce == "product" else 2 * a.d + 2
    res = {"peer": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "chunk": chunk, "shape": {"n": a.n, "B": a.B, "L": a.L, "H": a.H, "Hkv": a.Hkv,
                                     "d": a.d, "dv": a.dv, "windows": a.windows,
                                     "causal": bool(a.causal), "reduce": a.reduce,
                                     "topk": a.topk},
           "tuples": count, "flops_per_tuple": fpt, "seconds": secs,
           "gflops": count * fpt / secs * 1e-9}
    if a.check_so:
        o2, lse2, secs2 = run_so(a, a.check_so, q, ks, vs)
        res["check_so"] = a.check_so
        res["so_seconds"] = secs2
        res["max_abs_diff_o"] = (o - o2).abs().max().item()
        finite = torch.isfinite(lse)
        res["max_abs_diff_lse"] = (lse[finite] - lse2[finite]).abs().max().item()
        res["lse_inf_agree"] = bool(torch.equal(~finite, ~torch.isfinite(lse2)))
    if a.json:
        print(json.dumps(res))
    else:
        print(f"torch {torch.__version__} peer, {res['threads']} threads, query chunk {chunk}: "
              f"{secs:.3f} s, {res['gflops']:.2f} useful GFLOP/s ({count} tuples x {fpt} flops)")
        if a.check_so:
            print(f"vs {a.check_so}: max |o diff| {res['max_abs_diff_o']:.3g}, "
                  f"max |lse diff| {res['max_abs_diff_lse']:.3g} (kernel {secs2:.3f} s)")


if __name__ == "__main__":
    main()
