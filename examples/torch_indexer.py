#!/usr/bin/env python3
"""A plain PyTorch lightning indexer and top-k (DeepSeek Sparse Attention, docs/SPEC.md E8, E9),
judged alone through the nsimplex package (python/nsimplex, check_indexer; docs/ORACLE.md 5).

For each case (golden vectors whose selection an indexer computes, or, by default, a set of
recipes generated into a scratch directory: relu, softmax and identity heads, causal on and off,
exact ties, short rows and k >= L, weights of either sign and scales in powers of two), it runs the
indexer in float32 on --device (cpu or cuda; TF32 off), and judges its scores and its selection
under the `f32` model: the scores elementwise against the derived bound, the selection as a set
with the tie tolerance that bound implies.  --bug NAME plants a bug instead:

    causal-after-topk  the top-k over every key, the future ones dropped afterwards
    softmax-all-keys   softmax heads normalized over every key, not the candidates
    no-scale           idx_scale not applied
    relu-after-weight  relu(w * x) instead of w * relu(x)

    python3 examples/torch_indexer.py                      # honest: every case passes
    python3 examples/torch_indexer.py --device cuda        # the same on a GPU
    python3 examples/torch_indexer.py --bug causal-after-topk   # fails (exit 1)
    python3 examples/torch_indexer.py vectors/default/n1_dsa_relu.safetensors

It prints one line per case and exits 1 when any case fails (0 when all pass).
"""
import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import nsimplex  # noqa: E402

BUGS = ("causal-after-topk", "softmax-all-keys", "no-scale", "relu-after-weight")

RECIPES = [
    "n=1 L=24 d=1 sel=indexer act=relu k=6 Hi=4 di=16 iscale=0.125",
    "n=1 B=2 L=17 d=1 sel=indexer act=relu k=5 Hi=3 di=9 iscale=-0.5 dist=heavy",
    "n=1 L=20 d=1 sel=indexer act=softmax k=4 Hi=4 di=8 iscale=0.25",
    "n=1 L=16 d=1 sel=indexer act=identity k=3 Hi=2 di=8 ties=1",
    "n=1 L=14 d=1 sel=indexer act=relu k=3 Hi=2 di=4 ties=1",
    "n=1 L=12 d=1 causal=0 sel=indexer act=softmax k=4 Hi=3 di=5",
    "n=1 L=9 d=1 sel=indexer act=relu k=12 Hi=2 di=3",
]


def indexer(settings, t, bug=None):
    """E8 and E9 in float32: (scores [B,L,L], sel [B,L,k] int32 with -1 pads)."""
    q, k, w = t["idx_q"], t["idx_k"], t["idx_w"]  # [B,L,Hi,di], [B,L,di], [B,L,Hi]
    B, L, Hi, di = q.shape
    scale = 1.0 if bug == "no-scale" else settings["idx_scale"]
    x = torch.einsum("bihl,bjl->bihj", q, k) * scale  # the logits [B, L(i), Hi, L(j)]
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
    top = torch.topk(ranked, min(kk, L), dim=-1)
    sel = top.indices.to(torch.int32)
    valid = cand.view(1, L, L).expand(B, L, L).gather(2, top.indices)
    sel = torch.where(valid, sel, torch.full_like(sel, -1))  # short rows: non-candidates are pads
    if kk > L:
        sel = torch.cat([sel, torch.full((B, L, kk - L), -1, dtype=torch.int32, device=sel.device)], dim=-1)
    return S, sel


def judge(path, device, bug=None, model="f32"):
    """Runs the indexer on one case and judges it: an nsimplex.IndexerReport."""
    settings, t = nsimplex.indexer_inputs(path, device=device, dtype=torch.float32)
    S, sel = indexer(settings, t, bug)
    return nsimplex.check_indexer(path, scores=S, sel=sel, model=model, label="torch-indexer")


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
    ap.add_argument("--bug", choices=BUGS, help="plant this bug")
    ap.add_argument("--model", default="f32", help="the precision model (default f32)")
    ap.add_argument("--dir", help="where the generated cases go (default: a temporary directory)")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 GEMMs, as the f32 model says
        torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as tmp:
        paths = a.vectors or generated_cases(a.dir or tmp)
        failed = 0
        for path in paths:
            r = judge(path, a.device, a.bug, a.model)
            failed += not r.passed
            print("%s %s: worst score ratio %s, %d failure%s%s" % (
                "PASS" if r.passed else "FAIL", os.path.basename(path),
                "%.3g" % r.ratio if r.ratio is not None else "-", r.failures, "" if r.failures == 1 else "s",
                (" (" + r.notes[0] + ")") if r.notes else ""))
        print("torch indexer%s on %s: %d of %d cases failed" % (
            " with bug " + a.bug if a.bug else "", a.device, failed, len(paths)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
