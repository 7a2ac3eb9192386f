"""pytest helpers for a kernel repository's CI: two lines give every golden vector and a fuzz budget.

    import nsimplex.testing as nt

    @nt.golden_vectors()                        # one test per committed golden vector
    def test_golden(vector): nt.check_kernel(my_kernel, vector, model="bf16", device="cuda")

    def test_fuzz(): nt.fuzz_budget(my_kernel, 60, model="bf16", device="cuda", features=["windows", "lse"])

golden_vectors() is a pytest.mark.parametrize over "vector" (or, with as_list=True, the list of
paths).  check_kernel runs fn(problem, tensors) -> (o, lse) on the vector and fails the test with
the oracle's report; a vector not applicable under the model is skipped.  fuzz_budget fuzzes fn
for a number of seconds (the environment's NSIMPLEX_FUZZ_SECONDS overrides it) and fails the test
with every failure's note and the path of its saved vector.
"""
import glob
import os

from . import NotApplicable, check, fuzz, load, run


def vector_dir(suite="default"):
    """Where the golden vectors of a suite are: the package's copy when installed with pip, else
    the repository's vectors/ (NSIMPLEX_VECTORS overrides both)."""
    env = os.environ.get("NSIMPLEX_VECTORS")
    here = os.path.dirname(os.path.abspath(__file__))
    for root in ([env] if env else []) + [os.path.join(here, "vectors"), os.path.join(here, "..", "..", "vectors")]:
        d = os.path.normpath(os.path.join(root, suite))
        if os.path.isdir(d):
            return d
    raise FileNotFoundError("nsimplex: no golden vectors of suite %r (set NSIMPLEX_VECTORS)" % suite)


def golden_vectors(suite="default", flags=None, exclude_flags=(), as_list=False):
    """The golden vectors of a suite: a pytest parametrize mark over "vector" with the case names
    as ids, or the sorted list of paths (as_list).  flags: keep only cases with every one of these
    flags (docs/VECTORS.md); exclude_flags: drop cases with any of these."""
    paths = sorted(glob.glob(os.path.join(vector_dir(suite), "*.safetensors")))
    if flags or exclude_flags:
        keep = []
        for p in paths:
            f = set(load(p).flags)
            if set(flags or ()) <= f and not (set(exclude_flags) & f):
                keep.append(p)
        paths = keep
    if as_list:
        return paths
    import pytest
    return pytest.mark.parametrize("vector", paths, ids=[os.path.basename(p)[:-len(".safetensors")] for p in paths])


def check_kernel(fn, vector, model=None, device=None, dtype=None):
    """Runs fn on a golden vector and asserts the oracle passes it; returns the Report.  Skips
    (pytest.skip) a vector that is not applicable under the model."""
    case = load(vector)
    o, lse = run(fn, case, device=device, dtype=dtype)
    sel = case.inputs()["sel"] if case.problem.selection in ("indexer", "scores") else None
    try:
        rep = check(case, o=o, lse=lse, sel=sel, model=model)
    except NotApplicable as e:
        import pytest
        pytest.skip(str(e))
    assert rep.passed, "nsimplex check failed on %s:\n%s" % (vector, rep.text)
    return rep


def fuzz_budget(fn, seconds=30.0, **kw):
    """Fuzzes fn for `seconds` (NSIMPLEX_FUZZ_SECONDS overrides) with nsimplex.fuzz's keyword
    arguments, and asserts no failure; returns the FuzzResult."""
    seconds = float(os.environ.get("NSIMPLEX_FUZZ_SECONDS", seconds))
    kw.setdefault("shrink_seconds", min(30.0, max(5.0, seconds / 2)))
    res = fuzz(fn, seconds=seconds, **kw)
    assert res.passed, "nsimplex fuzz found a failure:\n%s" % res
    return res
