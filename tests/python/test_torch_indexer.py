"""examples/torch_indexer.py on the CPU: the plain PyTorch indexer and top-k passes the indexer's
judge (nsimplex.check_indexer, docs/ORACLE.md 5) on its generated cases and on committed vectors;
each planted bug fails some case; its FP8 form passes under dsa-fp8 and one scale per tensor fails; and the judge's own rules through the package (a future key, a
duplicate, a wrong score; a tie broken the other way passes; FP8 models)."""
import importlib.util
import os
import tempfile

import numpy as np
import pytest

import nsimplex

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.environ.get("NSX_TMP", tempfile.gettempdir())


def _example():
    spec = importlib.util.spec_from_file_location("torch_indexer", os.path.join(ROOT, "examples", "torch_indexer.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    return ex


def test_honest_torch_indexer_passes_and_planted_bugs_fail():
    pytest.importorskip("torch")
    ex = _example()
    cases = ex.generated_cases(os.path.join(TMP, "torch-indexer-cases"))
    cases += [os.path.join(ROOT, "vectors", "default", n + ".safetensors")
              for n in ("n1_dsa_relu", "n2_sel_softmax", "n2_ties_relu", "n2_sel_causal_off")]
    for path in cases:
        r = ex.judge(path, "cpu")
        assert r.passed, r.text
        assert r.ratio is not None and r.ratio < 1
    for bug in ex.BUGS:
        failed = [p for p in cases if not ex.judge(p, "cpu", bug).passed]
        assert failed, "bug %s passed every case" % bug
    # FP8 E4M3 inputs with one scale per block of 4: honest under dsa-fp8,idxblk=4, not under f32;
    # one scale per tensor fails where the blocks differ in magnitude (the iblocks=4 case)
    gen = ex.generated_cases(os.path.join(TMP, "torch-indexer-cases"))
    for path in gen:
        assert ex.judge(path, "cpu", fp8=4).passed
    assert not all(ex.judge(p, "cpu", fp8=4, model="f32").passed for p in gen)
    blocks = [p for p, r in zip(gen, ex.RECIPES) if "iblocks" in r]
    assert blocks and not ex.judge(blocks[0], "cpu", "fp8-per-tensor", fp8=4).passed
    assert ex.main(["--dir", os.path.join(TMP, "torch-indexer-cases")]) == 0
    assert ex.main(["--dir", os.path.join(TMP, "torch-indexer-cases"), "--bug", "no-scale"]) == 1


def test_check_indexer_rules_through_the_package():
    c = nsimplex.load(os.path.join(ROOT, "vectors", "default", "n2_ties_relu.safetensors"))
    ex = c.expected
    s, sel = ex["sel_scores"].copy(), ex["sel"].copy()
    r = nsimplex.check_indexer(c, scores=s, sel=sel, model="f32")
    assert r.passed and r.failures == 0 and r.json["indexer"] is True, r.text
    settings, t = nsimplex.indexer_inputs(c)
    assert settings["act"] == "relu" and t["idx_q"].shape == (c.problem.B, c.problem.L, settings["Hi"], settings["di"])
    # a future key in row 5 (k = 3 of 6 candidates)
    bad = sel.copy()
    bad[0, 5, 0] = 9
    r = nsimplex.check_indexer(c, sel=bad, model="f32")
    assert not r.passed and "not a candidate key" in r.notes[0]
    bad = sel.copy()
    bad[0, 5, 1] = bad[0, 5, 0]
    assert "listed twice" in nsimplex.check_indexer(c, sel=bad, model="f32").notes[0]
    # a score off by 1e-3 relative: beyond f32's bound, within bf16's
    s2 = s.copy()
    j = int(np.argmax(np.abs(s[0, 7, :8])))  # a nonzero candidate score of row 7
    assert s[0, 7, j] != 0
    s2[0, 7, j] *= 1 + 1e-3
    assert not nsimplex.check_indexer(c, scores=s2, model="f32").passed
    assert nsimplex.check_indexer(c, scores=s2, model="bf16,idx=bf16").passed
    # FP8: e4m3 tolerates what f32 does not; the model text says idx and idxblk
    r = nsimplex.check_indexer(c, scores=s2, model="dsa-fp8")
    assert r.passed and "idx=e4m3,idxblk=128" in r.model
    with pytest.raises(nsimplex.InputError):
        nsimplex.check_indexer(c, model="f32")
