#!/usr/bin/env python3
"""A plain PyTorch lightning indexer and top-k (DeepSeek Sparse Attention, docs/SPEC.md E8, E9),
judged alone through the nsimplex package (python/nsimplex, check_indexer; docs/ORACLE.md 5).

For each case (golden vectors whose selection an indexer computes, or, by default, a set of
recipes generated into a scratch directory: relu, softmax and identity heads, causal on and off,
exact ties, short rows and k >= L, weights of either sign, blocks of qI and kI far apart in
magnitude (iblocks=4)), it runs the
indexer in float32 on --device (cpu or cuda; TF32 off), and judges its scores and its selection
under the `f32` model: the scores elementwise against the derived bound, the selection as a set
with the tie tolerance that bound implies.  --bug NAME plants a bug instead:

    causal-after-topk  the top-k over every key, the future ones dropped afterwards
    softmax-all-keys   softmax heads normalized over every key, not the candidates
    no-scale           idx_scale not applied
    relu-after-weight  relu(w * x) instead of w * relu(x)
    ties-descending    equal scores ordered by descending key index (E9 says ascending): the
                       judge passes a tie broken either way (docs/ORACLE.md 5.2) and counts
                       the rows that are not the golden set ("differ"), which the line shows
    fp8-per-tensor     (with --fp8) one scale per tensor instead of one per block

--fuzz SECONDS fuzzes the same indexer with nsimplex.fuzz_indexer instead of judging fixed cases:
the C fuzzer draws indexer problems (every activation, causal on and off, short rows, exact
ties, weights of zero and either sign, blocks far apart in magnitude), judges each under the
model, shrinks a failure and saves it under --out (default fuzz-out) with the call that runs it
again.

--fp8 BLOCK quantizes idx_q and idx_k to FP8 E4M3 as DeepSeek V3.2's indexer does (one float32
scale max(amax, 1e-4) / 448 per block of BLOCK elements along di, emulated in float32 ops: PyTorch
1.13 has no float8 dtype) and judges under `dsa-fp8,idxblk=BLOCK` (docs/ORACLE.md 5.1).

    python3 examples/torch_indexer.py                      # honest: every case passes
    python3 examples/torch_indexer.py --device cuda        # the same on a GPU
    python3 examples/torch_indexer.py --bug causal-after-topk   # fails (exit 1)
    python3 examples/torch_indexer.py vectors/default/n1_dsa_relu.safetensors
    python3 examples/torch_indexer.py --device cuda --fuzz 60   # fuzzed: PASS, exit 0
    python3 examples/torch_indexer.py --fuzz 20 --bug softmax-all-keys   # a failure, saved (exit 1)

It prints one line per case (with --fuzz, the fuzzer's lines and summary) and exits 1 when any
case fails (0 when all pass).
"""
import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402

BUGS = ("causal-after-topk", "softmax-all-keys", "no-scale", "relu-after-weight")
TIE_BUGS = ("ties-descending",)  # not a failure under the judge: ties may go either way
FP8_BUGS = ("fp8-per-tensor",)

RECIPES = [
    "n=1 L=24 d=1 sel=indexer act=relu k=6 Hi=4 di=16 iscale=0.125",
    "n=1 B=2 L=17 d=1 sel=indexer act=relu k=5 Hi=3 di=9 iscale=-0.5 dist=heavy",
    "n=1 L=20 d=1 sel=indexer act=softmax k=4 Hi=4 di=8 iscale=0.25",
    "n=1 L=16 d=1 sel=indexer act=identity k=3 Hi=2 di=8 ties=1",
    "n=1 L=14 d=1 sel=indexer act=relu k=3 Hi=2 di=4 ties=1",
    "n=1 L=12 d=1 causal=0 sel=indexer act=softmax k=4 Hi=3 di=5",
    "n=1 L=9 d=1 sel=indexer act=relu k=12 Hi=2 di=3",
    "n=1 L=16 d=1 sel=indexer act=relu k=4 Hi=2 di=8 iblocks=4",  # blocks 2^-12 .. 2^10 apart (FP8)
]


def e4m3(y):
    """y rounded to FP8 E4M3 (to nearest even, gradual underflow below 2^-6, saturating at 448)."""
    e = torch.floor(torch.log2(y.abs().clamp(min=2.0 ** -6)))
    quantum = torch.pow(2.0, e - 3)
    return (torch.round(y / quantum) * quantum).clamp(-448.0, 448.0)


def quantize(x, block, per_tensor=False):
    """x [..., di] as (FP8 values [..., nb, block], float32 scales [..., nb, 1]), blocks along di
    (the last one zero-padded), one scale max(amax, 1e-4) / 448 per block (or per tensor)."""
    di = x.shape[-1]
    nb = (di + block - 1) // block
    xb = torch.nn.functional.pad(x, (0, nb * block - di)).reshape(x.shape[:-1] + (nb, block))
    amax = xb.abs().amax(dim=-1, keepdim=True)
    if per_tensor:
        amax = torch.full_like(amax, float(x.abs().max()))
    s = amax.clamp(min=1e-4) / 448.0
    return e4m3(xb / s), s


def logits(q, k, fp8=None, bug=None):
    """sum_l q[b,i,h,l] k[b,j,l] as [B, L(i), Hi, L(j)]: in float32, or from FP8 values per block."""
    if not fp8:
        return torch.einsum("bihl,bjl->bihj", q, k)
    qq, qs = quantize(q, fp8, bug == "fp8-per-tensor")  # [B,L,Hi,nb,blk], [B,L,Hi,nb,1]
    kq, ks = quantize(k, fp8, bug == "fp8-per-tensor")  # [B,L,nb,blk], [B,L,nb,1]
    part = torch.einsum("bihcl,bjcl->bihjc", qq, kq)  # per block, in float32
    return torch.einsum("bihjc,bihc,bjc->bihj", part, qs[..., 0], ks[..., 0])


def indexer(settings, t, bug=None, fp8=None):
    """E8 and E9 in float32 (FP8 inputs per block of fp8 elements when given): (scores [B,L,L],
    sel [B,L,k] int32 with -1 pads)."""
    q, k, w = t["idx_q"], t["idx_k"], t["idx_w"]  # [B,L,Hi,di], [B,L,di], [B,L,Hi]
    B, L, Hi, di = q.shape
    scale = 1.0 if bug == "no-scale" else settings["idx_scale"]
    x = logits(q, k, fp8, bug) * scale  # the logits [B, L(i), Hi, L(j)]
    i = torch.arange(L, device=q.device).view(L, 1)
    j = torch.arange(L, device=q.device).view(1, L)
    cand = (j <= i) if settings["causal"] else torch.ones(L, L, dtype=torch.bool, device=q.device)
    cand4 = cand.view(1, L, 1, L)
    act = settings["act"]
    if act == "relu" and bug == "relu-after-weight":
        S = torch.relu(w.unsqueeze(-1) * x).sum(dim=2)
    else:
        if act == "relu":
            a = torch.relu(x)
        elif act == "identity":
            a = x
        else:  # softmax over the candidates j of i, per head
            over = torch.ones_like(cand4) if bug == "softmax-all-keys" else cand4
            a = torch.softmax(x.masked_fill(~over, float("-inf")), dim=-1)
        S = torch.einsum("bih,bihj->bij", w, a)
    S = S.masked_fill(~cand.view(1, L, L), float("-inf"))
    kk = settings["topk"]
    ranked = S
    if bug == "causal-after-topk":  # the top-k over every key, the mask afterwards
        ranked = torch.einsum("bih,bihj->bij", w, torch.relu(x) if act == "relu" else
                              x if act == "identity" else torch.softmax(x, dim=-1))
    # E9: by score descending, equal scores by key index ascending (a stable sort; torch.topk
    # leaves the order of ties unspecified)
    if bug == "ties-descending":
        top = (L - 1) - torch.sort(ranked.flip(-1), dim=-1, descending=True, stable=True).indices[..., :min(kk, L)]
    else:
        top = torch.sort(ranked, dim=-1, descending=True, stable=True).indices[..., :min(kk, L)]
    sel = top.to(torch.int32)
    valid = cand.view(1, L, L).expand(B, L, L).gather(2, top)
    sel = torch.where(valid, sel, torch.full_like(sel, -1))  # short rows: non-candidates are pads
    if kk > L:
        sel = torch.cat([sel, torch.full((B, L, kk - L), -1, dtype=torch.int32, device=sel.device)], dim=-1)
    return S, sel


def judge(path, device, bug=None, model=None, fp8=None):
    """Runs the indexer on one case and judges it (model default: f32, or dsa-fp8 with the block
    under --fp8): an nsimplex.IndexerReport."""
    settings, t = nsimplex.indexer_inputs(path, device=device, dtype=torch.float32)
    S, sel = indexer(settings, t, bug, fp8)
    if model is None:
        model = "dsa-fp8,idxblk=%d" % fp8 if fp8 else "f32"
    return nsimplex.check_indexer(path, scores=S, sel=sel, model=model, label="torch-indexer")


def fuzz(seconds, device, bug=None, model=None, fp8=None, seed=1, out="fuzz-out", count=0, log=True):
    """Fuzzes the indexer (with bug, FP8 inputs per block of fp8) through nsimplex.fuzz_indexer
    under model (default as judge's): an nsimplex.FuzzResult."""
    if model is None:
        model = "dsa-fp8,idxblk=%d" % fp8 if fp8 else "f32"

    def torch_indexer(settings, t):
        return indexer(settings, t, bug, fp8)
    return nsimplex.fuzz_indexer(torch_indexer, seconds=seconds, seed=seed, model=model, device=device,
                                 dtype=torch.float32, out=out, count=count, log=log)


def generated_cases(directory):
    """The recipes as golden vectors under directory (generated once)."""
    paths = []
    os.makedirs(directory, exist_ok=True)
    for x, recipe in enumerate(RECIPES):
        path = os.path.join(directory, "torch_indexer_%d.safetensors" % x)
        if not os.path.exists(path):
            nsimplex.gen(recipe, path, name="torch_indexer_%d" % x)
        paths.append(path)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("vectors", nargs="*", help="golden vectors whose selection an indexer computes")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--bug", choices=BUGS + TIE_BUGS + FP8_BUGS, help="plant this bug")
    ap.add_argument("--fp8", type=int, metavar="BLOCK", help="FP8 E4M3 inputs, one scale per BLOCK elements")
    ap.add_argument("--model", help="the precision model (default f32, or dsa-fp8,idxblk=BLOCK)")
    ap.add_argument("--dir", help="where the generated cases go (default: a temporary directory)")
    ap.add_argument("--fuzz", type=float, metavar="SECONDS", help="fuzz for SECONDS (nsimplex.fuzz_indexer)")
    ap.add_argument("--seed", type=int, default=1, help="the fuzz run's seed (default 1)")
    ap.add_argument("--out", default="fuzz-out", help="where fuzz failures are saved (default fuzz-out)")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 GEMMs, as the f32 model says
        torch.backends.cudnn.allow_tf32 = False
    if a.fuzz is not None:
        if a.vectors:
            ap.error("--fuzz draws its own problems: give no vectors")
        r = fuzz(a.fuzz, a.device, a.bug, a.model, a.fp8, a.seed, a.out)
        print(r)
        print("torch indexer%s on %s, fuzzed: %s" % (" with bug " + a.bug if a.bug else "", a.device,
                                                     "PASS" if r.passed else "FAIL"))
        return 0 if r.passed else 1
    with tempfile.TemporaryDirectory() as tmp:
        paths = a.vectors or generated_cases(a.dir or tmp)
        failed = 0
        for path in paths:
            r = judge(path, a.device, a.bug, a.model, a.fp8)
            failed += not r.passed
            print("%s %s: worst score ratio %s, %d failure%s, %d row%s not the golden set (ties)%s" % (
                "PASS" if r.passed else "FAIL", os.path.basename(path),
                "%.3g" % r.ratio if r.ratio is not None else "-", r.failures, "" if r.failures == 1 else "s",
                r.json["selection"]["differ"], "" if r.json["selection"]["differ"] == 1 else "s",
                (" (" + r.notes[0] + ")") if r.notes else ""))
        print("torch indexer%s on %s: %d of %d cases failed" % (
            " with bug " + a.bug if a.bug else "", a.device, failed, len(paths)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
