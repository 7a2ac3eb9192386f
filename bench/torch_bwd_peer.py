#!/usr/bin/env python3
"""PyTorch CPU autograd peer of `nsimplex bench --bwd`: the gradients of
sum(dO * O) with respect to q, k_m, v_m (docs/SPEC.md E7), float32, as a
PyTorch user gets them: the forward of bench/torch_peer.py (chunk_forward,
one definition) recorded by autograd, then torch.autograd.grad, chunk by
chunk of queries (a whole-sequence graph would hold every chunk's scores;
per chunk, the gradients of its key and value blocks are added into dk, dv).

Timing: the backward alone is what `nsimplex bench --bwd` times (after an
untimed forward).  Autograd cannot run a backward without its own recorded
forward, so the peer's backward time is (forward with autograd + backward)
minus the forward without autograd (torch.no_grad, as torch_peer.py times
it); the no_grad forward is the cheaper one, so the difference flatters the
peer.  Useful flops as runner/bench.h counts them for the backward: per
allowed tuple 6*(d+dv) for product (6*d+4*dv for n = 1), 6*d+4 for sum and
mean.  The query chunk is tuned for the forward plus backward: each power
of two from 8 to 64 whose U fits --mem-mib is timed on the last 128 queries
(best of two) and the fastest is used (fewer, shorter trials than
torch_peer.py's: autograd is slow enough that the forward's tuning would
take longer than the run; chunks below 8 were never the fastest at the
paper's shape).

With --check-so LIB.so it also runs that kernel (nsx_kernel_forward, then
nsx_kernel_backward: the kernel ABI, version 3) on the same tensors and
prints the largest differences of dq, dk, dv, so the comparison is between
two implementations that agree.
"""
import ctypes
import json
import math
import os
import sys
import time

import torch

from torch_peer import IO, NSX_MAX_ORDER, Problem, chunk_forward, key_range, parse_args, run_so, tuples


def chunk_grads(a, q, ks, vs, do, b, g, i0, i1, grads):
    """Forward and backward of the queries i0..i1-1 of batch b, kv head g;
    adds their gradients into grads = (dq, dks, dvs)."""
    G = a.H // a.Hkv
    rng = [key_range(i0, i1, w, a.causal, a.L) for w in a.windows]
    qc = q[b, i0:i1, g * G:(g + 1) * G, :].detach().requires_grad_()
    K = [ks[m][b, lo:hi, g, :].detach().requires_grad_() for m, (lo, hi) in enumerate(rng)]
    V = [vs[m][b, lo:hi, g, :].detach().requires_grad_() for m, (lo, hi) in enumerate(rng)]
    out, _ = chunk_forward(a, qc, K, V, rng, i0, i1)
    got = torch.autograd.grad(out, [qc] + K + V, grad_outputs=do[b, i0:i1, g * G:(g + 1) * G, :])
    dq, dks, dvs = grads
    dq[b, i0:i1, g * G:(g + 1) * G, :] += got[0]
    for m, (lo, hi) in enumerate(rng):
        dks[m][b, lo:hi, g, :] += got[1 + m]
        dvs[m][b, lo:hi, g, :] += got[1 + a.n + m]


def fwd_bwd(a, q, ks, vs, do, chunk, first=0):
    """dq, dk, dv of the queries first..L-1."""
    grads = (torch.zeros_like(q), [torch.zeros_like(k) for k in ks], [torch.zeros_like(v) for v in vs])
    for b in range(a.B):
        for g in range(a.Hkv):
            for i0 in range(first, a.L, chunk):
                chunk_grads(a, q, ks, vs, do, b, g, i0, min(a.L, i0 + chunk), grads)
    return grads


def fwd_only(a, q, ks, vs, chunk):
    G = a.H // a.Hkv
    with torch.no_grad():
        for b in range(a.B):
            for g in range(a.Hkv):
                for i0 in range(0, a.L, chunk):
                    i1 = min(a.L, i0 + chunk)
                    rng = [key_range(i0, i1, w, a.causal, a.L) for w in a.windows]
                    K = [ks[m][b, lo:hi, g, :] for m, (lo, hi) in enumerate(rng)]
                    V = [vs[m][b, lo:hi, g, :] for m, (lo, hi) in enumerate(rng)]
                    chunk_forward(a, q[b, i0:i1, g * G:(g + 1) * G, :], K, V, rng, i0, i1)


def fits(a, c):
    widths = [(w + c - 1 if w else a.L) for w in a.windows[:-1]]
    elems = c * (a.H // a.Hkv) * math.prod(min(x, a.L) for x in widths) * a.d
    return elems * 4 <= a.mem_mib * 2**20


def tune_chunk(a, q, ks, vs, do):
    first = max(0, a.L - 128)
    best, best_t = 8, math.inf
    for c in (8, 16, 32, 64):
        if c > a.L - first or (c > 1 and not fits(a, c)):
            break
        t = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            fwd_bwd(a, q, ks, vs, do, c, first)
            t = min(t, time.perf_counter() - t0)
        if t < best_t:
            best, best_t = c, t
    return best


class BwdIO(ctypes.Structure):
    """nsx_kernel_bwd_io (ABI 3)."""
    _fields_ = [("q", ctypes.c_void_p), ("k", ctypes.c_void_p * NSX_MAX_ORDER),
                ("v", ctypes.c_void_p * NSX_MAX_ORDER), ("o", ctypes.c_void_p),
                ("lse", ctypes.c_void_p), ("dout", ctypes.c_void_p), ("dq", ctypes.c_void_p),
                ("dk", ctypes.c_void_p * NSX_MAX_ORDER), ("dv", ctypes.c_void_p * NSX_MAX_ORDER)]


def run_so_bwd(a, path, q, ks, vs, do):
    o, lse, _ = run_so(a, path, q, ks, vs)
    lib = ctypes.CDLL(path)
    lib.nsx_kernel_backward.restype = ctypes.c_int
    lib.nsx_kernel_backward.argtypes = [ctypes.POINTER(Problem), ctypes.POINTER(BwdIO)]
    p = Problem(n=a.n, B=a.B, L=a.L, H=a.H, Hkv=a.Hkv, d=a.d, dv=a.dv,
                reduce=["product", "sum", "mean"].index(a.reduce), causal=a.causal,
                score_scale=1.0 / math.sqrt(a.d), out_scale=1.0)
    for m, w in enumerate(a.windows):
        p.window[m] = w
    dq = torch.empty_like(q)
    dks = [torch.empty_like(k) for k in ks]
    dvs = [torch.empty_like(v) for v in vs]
    io = BwdIO(q=q.data_ptr(), o=o.data_ptr(), lse=lse.data_ptr(), dout=do.data_ptr(), dq=dq.data_ptr())
    for m in range(a.n):
        io.k[m], io.v[m] = ks[m].data_ptr(), vs[m].data_ptr()
        io.dk[m], io.dv[m] = dks[m].data_ptr(), dvs[m].data_ptr()
    t0 = time.perf_counter()
    rc = lib.nsx_kernel_backward(ctypes.byref(p), ctypes.byref(io))
    secs = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"torch_bwd_peer: {path}: nsx_kernel_backward returned {rc}")
    return (dq, dks, dvs), secs


def main():
    a = parse_args()
    if a.topk:
        sys.exit("torch_bwd_peer: --topk is not supported (the backward peer has no selection)")
    a.sel = None
    torch.set_num_threads(a.threads or os.cpu_count())
    gen = torch.Generator().manual_seed(a.seed)

    def rand(*shape):
        return torch.rand(*shape, generator=gen) * 2 - 1

    q = rand(a.B, a.L, a.H, a.d)
    ks = [rand(a.B, a.L, a.Hkv, a.d) for _ in range(a.n)]
    vs = [rand(a.B, a.L, a.Hkv, a.dv) for _ in range(a.n)]
    do = rand(a.B, a.L, a.H, a.dv)
    chunk = a.chunk or tune_chunk(a, q, ks, vs, do)
    both = fwd = math.inf
    for _ in range(max(1, a.repeat)):
        t0 = time.perf_counter()
        grads = fwd_bwd(a, q, ks, vs, do, chunk)
        both = min(both, time.perf_counter() - t0)
        t0 = time.perf_counter()
        fwd_only(a, q, ks, vs, chunk)
        fwd = min(fwd, time.perf_counter() - t0)
    secs = max(both - fwd, 1e-9)
    count = tuples(a)
    if a.reduce != "product":
        fpt = 6 * a.d + 4
    else:
        fpt = 6 * a.d + 4 * a.dv if a.n == 1 else 6 * (a.d + a.dv)
    res = {"peer": "torch-autograd", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "chunk": chunk, "shape": {"n": a.n, "B": a.B, "L": a.L, "H": a.H, "Hkv": a.Hkv,
                                     "d": a.d, "dv": a.dv, "windows": a.windows,
                                     "causal": bool(a.causal), "reduce": a.reduce},
           "tuples": count, "flops_per_tuple": fpt, "seconds": secs,
           "fwd_bwd_seconds": both, "fwd_no_grad_seconds": fwd, "gflops": count * fpt / secs * 1e-9}
    if a.check_so:
        (dq2, dks2, dvs2), secs2 = run_so_bwd(a, a.check_so, q, ks, vs, do)
        dq, dks, dvs = grads
        res["check_so"] = a.check_so
        res["so_seconds"] = secs2
        res["max_abs_diff_dq"] = (dq - dq2).abs().max().item()
        res["max_abs_diff_dk"] = max((x - y).abs().max().item() for x, y in zip(dks, dks2))
        res["max_abs_diff_dv"] = max((x - y).abs().max().item() for x, y in zip(dvs, dvs2))
        res["max_abs_dq"] = dq.abs().max().item()
        res["max_abs_dk"] = max(x.abs().max().item() for x in dks)
        res["max_abs_dv"] = max(x.abs().max().item() for x in dvs)
    if a.json:
        print(json.dumps(res))
    else:
        print(f"torch {torch.__version__} autograd peer, {res['threads']} threads, query chunk {chunk}: "
              f"backward {secs:.3f} s (forward+backward {both:.3f} s less the no_grad forward {fwd:.3f} s), "
              f"{res['gflops']:.2f} useful GFLOP/s ({count} tuples x {fpt} flops)")
        if a.check_so:
            print(f"vs {a.check_so}: max |dq diff| {res['max_abs_diff_dq']:.3g} (of {res['max_abs_dq']:.3g}), "
                  f"|dk diff| {res['max_abs_diff_dk']:.3g} (of {res['max_abs_dk']:.3g}), "
                  f"|dv diff| {res['max_abs_diff_dv']:.3g} (of {res['max_abs_dv']:.3g}) (kernel {secs2:.3f} s)")


if __name__ == "__main__":
    main()
