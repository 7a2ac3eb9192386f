"""The Python package (python/nsimplex): loading, checking, fuzzing, the pytest helpers, pip."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import kernels
import nsimplex
import nsimplex.testing as nt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("NSX_BUILD", "build"))
PROG = os.environ.get("NSX_BIN", os.path.join(BUILD, "nsimplex"))
TMP = os.environ.get("NSX_TMP", tempfile.gettempdir())
VECTORS = sorted(glob.glob(os.path.join(ROOT, "vectors", "default", "*.safetensors")))
FORMAT_DTYPES = {"bf16": np.float32, "f16": np.float16, "f32": np.float32, "f64": np.float64}


def scratch(name):
    d = os.path.join(TMP, "python")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def cli(*args):
    return subprocess.run([PROG] + [str(a) for a in args], capture_output=True, text=True)


# ---- loading ------------------------------------------------------------------------------------

def test_every_vector_loads_with_its_settings():
    assert len(VECTORS) >= 70
    for path in VECTORS:
        c = nsimplex.load(path)
        p, m = c.problem, c.meta
        assert c.name == os.path.basename(path)[:-len(".safetensors")]
        assert (p.n, p.B, p.L, p.H, p.Hkv, p.d, p.dv) == tuple(m[k] for k in ("n", "B", "L", "H", "Hkv", "d", "dv"))
        assert p.groups * p.Hkv == p.H
        assert len(p.windows) == p.n and all(isinstance(w, int) and w >= 0 for w in p.windows)
        assert p.windows == tuple(m["windows"])
        if m.get("score_scale_exact") == "1/sqrt(d)":
            # the binary64 the kernel receives: RN(1/sqrt(d)), within half an ulp of the real
            assert p.scale_exact == "1/sqrt(d)"
            assert abs(p.score_scale * np.sqrt(np.float64(p.d)) - 1) <= 2 ** -52
        t = c.inputs()
        dt = FORMAT_DTYPES[p.input_format]
        assert t["q"].shape == (p.B, p.L, p.H, p.d) and t["q"].dtype == dt
        assert [k.shape for k in t["k"]] == [(p.B, p.L, p.Hkv, p.d)] * p.n
        assert [v.shape for v in t["v"]] == [(p.B, p.L, p.Hkv, p.dv)] * p.n
        if p.selection:
            assert t["sel"].shape == (p.B, p.L, p.topk) and t["sel"].dtype == np.int32
            assert set(p.sel_dims) <= set(range(1, p.n + 1)) and p.sel_dims
        else:
            assert t["sel"] is None and p.topk == 0
        # the inputs as the file holds them: float64 of the same values
        raw = c.arrays()
        assert np.array_equal(t["q"].astype(np.float64), raw["q"], equal_nan=True)
        e = c.expected
        assert e["o"].shape == (p.B, p.L, p.H, p.dv) and e["lse"].shape == (p.B, p.H, p.L)


def test_backward_vectors_expose_do_and_the_gradients():
    paths = [p for p in VECTORS if os.path.basename(p).startswith("bwd_")]
    assert len(paths) >= 10
    for path in paths:
        c = nsimplex.load(path)
        p, a = c.problem, c.arrays()
        assert a["do"].shape == (p.B, p.L, p.H, p.dv), path
        assert a["dq"].shape == (p.B, p.L, p.H, p.d), path
        for m in range(1, p.n + 1):
            assert a["dk%d" % m].shape == (p.B, p.L, p.Hkv, p.d), path
            assert a["dv%d" % m].shape == (p.B, p.L, p.Hkv, p.dv), path
    fwd = nsimplex.load(os.path.join(ROOT, "vectors", "default", "n2_paper_windows.safetensors")).arrays()
    assert "do" not in fwd and "dq" not in fwd


def test_load_errors_name_the_file():
    with pytest.raises(nsimplex.InputError, match="nope.safetensors"):
        nsimplex.load(scratch("nope.safetensors"))
    bad = scratch("bad.safetensors")
    with open(bad, "wb") as f:
        f.write(b"\x05\x00\x00\x00\x00\x00\x00\x00{}   ")
    with pytest.raises(nsimplex.InputError, match="bad.safetensors"):
        nsimplex.load(bad)


# ---- checking: the package agrees with the CLI --------------------------------------------------

KERNELS = [("honest_f64", kernels.honest_f64, None), ("honest_f32", kernels.honest_f32, "f32")] + \
    [(name, fn, None) for name, fn in kernels.MUTANTS.items()]


def strip(js):
    js = dict(js)
    js.pop("candidate")
    return js


@pytest.mark.parametrize("name,fn,model", KERNELS, ids=[k[0] for k in KERNELS])
def test_check_agrees_with_the_cli_on_every_vector(name, fn, model):
    verdicts = {"pass": 0, "fail": 0, "n/a": 0}
    for path in VECTORS:
        c = nsimplex.load(path)
        o, lse = nsimplex.run(fn, c)
        sel = c.inputs()["sel"]
        cand = scratch("%s-%s.safetensors" % (name, c.name))
        nsimplex.save_candidate(c, cand, o, lse, sel)
        r = cli("check", path, cand, "--json", *(["--model", model] if model else []))
        try:
            rep = nsimplex.check(c, o=o, lse=lse, sel=sel, model=model)
        except nsimplex.NotApplicable as e:
            assert r.returncode == 2 and "not applicable" in r.stderr, (path, r.stderr)
            assert str(e) in r.stderr
            verdicts["n/a"] += 1
            continue
        assert r.returncode == (0 if rep.passed else 1), (path, r.returncode, r.stderr)
        assert strip(json.loads(r.stdout)) == strip(rep.json), path
        verdicts["pass" if rep.passed else "fail"] += 1
    if name.startswith("honest"):
        assert verdicts == {"pass": len(VECTORS) - 1, "fail": 0, "n/a": 1}, verdicts  # n2_large_f64
    else:
        assert verdicts["fail"] >= 10, verdicts


def test_check_takes_torch_or_numpy_of_any_float_dtype_and_names_bad_shapes():
    c = nsimplex.load(os.path.join(ROOT, "vectors", "default", "n2_paper_windows.safetensors"))
    o, lse = kernels.honest_f64(c.problem, c.inputs())
    r64 = nsimplex.check(c, o=o.astype(np.float64), lse=lse)
    r32 = nsimplex.check(c, o=o, lse=lse.tolist())
    assert r64.passed and r32.passed and r64.json == r32.json
    assert r64.ratio == max(r64.worst_o["ratio"], r64.worst_lse["ratio"]) and r64.ratio < 1
    no_lse = nsimplex.check(c, o=o)
    assert no_lse.passed and not no_lse.json["lse"]["present"]
    with pytest.raises(nsimplex.InputError, match=r"o: shape \[1, 2\]"):
        nsimplex.check(c, o=np.zeros((1, 2)))
    with pytest.raises(nsimplex.InputError, match="model"):
        nsimplex.check(c, o=o, model="bf17")
    bad = o.copy()
    bad[0, 5, 0, 0] += 0.25
    r = nsimplex.check(c, o=bad, lse=lse)
    assert not r and r.failures >= 1 and r.worst_o["i"] == 5 and r.worst_o["ratio"] > 1
    assert "FAIL" in r.text.splitlines()[-1]


def test_cli_check_judges_several_candidates():
    path = os.path.join(ROOT, "vectors", "default", "n2_window_one.safetensors")
    c = nsimplex.load(path)
    good, bad = scratch("several-good.safetensors"), scratch("several-bad.safetensors")
    nsimplex.save_candidate(c, good, *kernels.honest_f64(c.problem, c.inputs()))
    nsimplex.save_candidate(c, bad, *kernels.window_off_by_one(c.problem, c.inputs()))
    r = cli("check", path, good, good, "--json")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    r = cli("check", path, good, bad, good, "--json")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 1 and [x["pass"] for x in lines] == [True, False, True]
    r = cli("check", path, bad, scratch("missing.safetensors"), good)
    assert r.returncode == 2 and "missing.safetensors" in r.stderr and r.stdout.count("PASS") == 1


def test_cli_gen_recipe_writes_any_shape_the_package_loads():
    out = scratch("recipe_case.safetensors")
    r = cli("gen", "--recipe", "n=2 B=2 L=11 H=4 Hkv=2 d=6 dv=5 w=4,2 fmt=f16 leak=nan:5 probe=all", "--out", out)
    assert r.returncode == 0, r.stderr
    c = nsimplex.load(out)
    p = c.problem
    assert (p.n, p.L, p.H, p.Hkv, p.d, p.dv, p.windows, p.input_format) == (2, 11, 4, 2, 6, 5, (4, 2), "f16")
    assert c.name == "recipe_case" and "LeakPair" in c.flags and "MaskProbe" in c.flags
    assert nsimplex.check(c, *kernels.honest_f64(p, c.inputs())).passed
    assert not nsimplex.check(c, *kernels.window_off_by_one(p, c.inputs())).passed
    # the package writes the same file as the CLI
    same = nsimplex.gen("n=2 B=2 L=11 H=4 Hkv=2 d=6 dv=5 w=4,2 fmt=f16 leak=nan:5 probe=all",
                        scratch("other.safetensors"), name="recipe_case")
    with open(out, "rb") as f1, open(same.path, "rb") as f2:
        assert f1.read() == f2.read()
    with pytest.raises(nsimplex.InputError, match="L"):
        nsimplex.gen("n=2 L=0", scratch("bad_recipe.safetensors"))
    r = cli("gen", "--recipe", "n=2 L=0", "--out", out)
    assert r.returncode == 2 and "L" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("gen", "--recipe", "n=2", "--out", scratch("no_extension"))
    assert r.returncode == 2 and "safetensors" in r.stderr


# ---- fuzzing ------------------------------------------------------------------------------------

FEATURES = ["windows", "gqa", "causal_off", "distinct", "biases", "sum", "mean", "lse", "selection"]


def test_fuzz_passes_honest_kernels():
    for fn, model in ((kernels.honest_f64, "bf16"), (kernels.honest_f32, "f32")):
        res = nsimplex.fuzz(fn, seconds=0, count=12, seed=7, model=model, features=FEATURES,
                            out=scratch("fuzz-honest"), log=False)
        assert res.passed and res.problems == 12, str(res)
        assert res.summary["mpfr"] + res.summary["loop"] + res.summary["skipped"] == res.problems


@pytest.mark.parametrize("name", sorted(kernels.MUTANTS))
def test_fuzz_finds_planted_mutants_within_seconds(name):
    out = scratch("fuzz-" + name)
    res = nsimplex.fuzz(kernels.MUTANTS[name], seconds=10, seed=1, model="bf16", features=FEATURES, out=out,
                        shrink_seconds=3, log=False)
    assert not res.passed and len(res.failures) == 1
    f = res.failures[0]
    assert f["found"] < 10 and f["path"] and os.path.exists(f["path"])
    # the saved vector replays: the CLI fails the kernel's saved outputs, and the package agrees
    cand = f["path"][:-len(".safetensors")] + ".candidate.safetensors"
    r = cli("check", f["path"], cand, "--json")
    assert r.returncode == 1, r.stderr
    c = nsimplex.load(f["path"])
    o, lse = nsimplex.run(kernels.MUTANTS[name], c)
    assert not nsimplex.check(c, o=o, lse=lse, model="bf16").passed
    assert nsimplex.check(c, *nsimplex.run(kernels.honest_f64, c), model="bf16").passed
    # the reproduce line is a call of this package (not the CLI, which would fuzz the SIMD kernel),
    # and that call, run, fails again on the same problem
    assert f["reproduce"].startswith("nsimplex.fuzz(%s, seed=1, start=%d, count=1, model='bf16'"
                                     % (kernels.MUTANTS[name].__name__, f["index"])), f["reproduce"]
    again = nsimplex.fuzz(kernels.MUTANTS[name], seconds=0, seed=1, start=f["index"], count=1, model="bf16",
                          features=FEATURES, out=None, shrink_seconds=0.5, log=False)
    assert not again.passed and again.failures[0]["index"] == f["index"]


def test_fuzz_shapes_decline_problems_and_errors_come_back():
    seen = []

    def only_n2(p, t):
        seen.append((p.n, p.L))
        return kernels.honest_f64(p, t)

    res = nsimplex.fuzz(only_n2, seconds=0, count=40, seed=3, model="bf16", features=FEATURES,
                        shapes={"n": (2,), "L": 12}, out=None, log=False)
    assert res.passed and res.summary["declined"] > 0 and seen
    assert all(n == 2 and L <= 12 for n, L in seen)

    def broken(p, t):
        raise ZeroDivisionError("planted")

    with pytest.raises(ZeroDivisionError, match="planted"):
        nsimplex.fuzz(broken, seconds=0, count=1, model="bf16", out=None, shrink_seconds=0.5, log=False)

    def refuses(p, t):
        raise nsimplex.Unsupported()

    res = nsimplex.fuzz(refuses, seconds=0, count=1, model="bf16", out=None, shrink_seconds=0.5, log=False)
    assert not res.passed and res.failures[0]["kind"] == "unsupported"
    with pytest.raises(nsimplex.InputError, match="feature"):
        nsimplex.fuzz(kernels.honest_f64, features=["windowz"], log=False)
    with pytest.raises(nsimplex.InputError, match="float32"):
        nsimplex.fuzz(kernels.honest_f64, model="f64", log=False)


def test_fuzz_sizes_and_orders_steer_the_draws():
    # a callable shapes sees every drawn problem; declining them all runs nothing
    def drawn(sizes, count=60):
        seen = []

        def record(p):
            seen.append((p.n, p.L, p.d))
            return False

        res = nsimplex.fuzz(kernels.honest_f64, seconds=0, count=count, seed=11, model="bf16", features=FEATURES,
                            shapes=record, sizes=sizes, out=None, log=False)
        assert res.passed and res.summary["declined"] == len(seen) > 0
        return seen

    small = drawn("small")
    assert max(L for n, L, d in small) <= 40 and max(d for n, L, d in small) <= 40
    tiles = drawn("tiles")                      # L 17-1024, d up to 256 around multiples of 16-128
    assert max(L for n, L, d in tiles) > 64 and max(d for n, L, d in tiles) > 64
    assert max(L for n, L, d in drawn("production", 20)) >= 512
    assert max(L for n, L, d in drawn("all", 200)) > 40
    # shapes' "n" steers the orders drawn: no problem is drawn only to be declined for its order
    seen = []

    def order_two(p, t):
        seen.append(p.n)
        return kernels.honest_f64(p, t)

    res = nsimplex.fuzz(order_two, seconds=0, count=20, seed=3, model="bf16", features=FEATURES,
                        shapes={"n": (2,)}, out=None, log=False)
    assert res.passed and res.summary["declined"] == 0 and seen == [2] * len(seen) and len(seen) >= 15
    with pytest.raises(nsimplex.InputError, match="sizes"):
        nsimplex.fuzz(kernels.honest_f64, sizes="huge", log=False)
    with pytest.raises(nsimplex.InputError, match="max_order"):
        nsimplex.fuzz(kernels.honest_f64, shapes={"n": (3,)}, max_order=2, log=False)


# ---- pytest helpers ---------------------------------------------------------------------------

@nt.golden_vectors(flags=["Windows"])
def test_golden_vectors_helper(vector):
    rep = nt.check_kernel(kernels.honest_f64, vector)
    assert rep.passed


def test_helpers_fail_planted_bugs():
    path = os.path.join(ROOT, "vectors", "default", "n2_paper_windows.safetensors")
    with pytest.raises(AssertionError, match="nsimplex check failed"):
        nt.check_kernel(kernels.wrong_scale, path)
    with pytest.raises(AssertionError, match="found a failure"):
        nt.fuzz_budget(kernels.wrong_scale, 5, features=FEATURES, out=scratch("fuzz-budget"), log=False)
    assert len(nt.golden_vectors(as_list=True)) == len(VECTORS)


# ---- pip ----------------------------------------------------------------------------------------

def test_pip_installs_offline_into_a_fresh_venv():
    venv = scratch("venv")
    subprocess.run(["rm", "-rf", venv], check=True)
    # Debian's pip from the system site-packages installs into the venv (numpy, setuptools and
    # wheel come from there too; nothing is fetched)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv], check=True)
    env = dict(os.environ)
    env.pop("NSIMPLEX_LIB", None)
    env["NSIMPLEX_LIB"] = os.path.join(BUILD, "libnsimplex.so")  # setup.py copies this one
    env.pop("PYTHONPATH", None)
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--no-index",
                        "--no-build-isolation",
                        os.path.join(ROOT, "python")], capture_output=True, text=True, env=env, cwd=venv)
    assert r.returncode == 0, r.stdout + r.stderr
    env.pop("NSIMPLEX_LIB")
    code = ("import nsimplex, nsimplex.testing as nt; v = nt.golden_vectors(as_list=True); "
            "c = nsimplex.load(v[0]); e = c.expected; "
            "print(nsimplex.__file__, nsimplex._lib.lib_path, len(v), nsimplex.check(c, e['o'], e['lse'], model='f64').passed)")
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code], capture_output=True, text=True, env=env,
                       cwd=venv)
    assert r.returncode == 0, r.stderr
    mod, lib, count, passed = r.stdout.split()
    assert mod.startswith(venv) and lib.startswith(venv) and int(count) == len(VECTORS) and passed == "True"


# ---- TF32 (docs/ORACLE.md 2.1) and the model warning ----------------------------------------------

def verdicts(fn, model):
    out = {"pass": 0, "fail": 0, "n/a": 0, "worst": 0.0}
    for path in VECTORS:
        c = nsimplex.load(path)
        o, lse = nsimplex.run(fn, c)
        try:
            r = nsimplex.check(c, o, lse, c.inputs()["sel"], model=model)
        except nsimplex.NotApplicable:
            out["n/a"] += 1
            continue
        out["pass" if r.passed else "fail"] += 1
        if r.passed and r.ratio is not None:
            out["worst"] = max(out["worst"], r.ratio)
    return out


def test_tf32_model_passes_an_emulated_tf32_kernel_and_bites():
    assert nsimplex.model("triton-f32") == "in=f32,op=tf32,acc=f32,int=none,w=tf32,out=f32,lseout=f32,lse=-inf"
    honest = verdicts(kernels.honest_tf32, "triton-f32")
    assert honest["fail"] == 0 and honest["pass"] == len(VECTORS) - 1 and honest["worst"] < 1, honest
    assert verdicts(kernels.honest_tf32, "f32")["fail"] >= 50          # TF32 is not f32
    assert verdicts(kernels.bf16_operands, "triton-f32")["fail"] >= 1  # bf16 operands are not TF32
    assert verdicts(kernels.wrong_scale, "triton-f32")["fail"] >= 50
    assert verdicts(kernels.honest_f32, "triton-f32")["fail"] == 0     # more precise passes
    for bad in ("in=tf32", "out=tf32", "acc=tf32", "op=none"):
        with pytest.raises(nsimplex.InputError, match="formats are"):
            nsimplex.model(bad)
    F = ["windows", "gqa", "biases", "sum", "mean", "lse"]
    res = nsimplex.fuzz(kernels.honest_tf32, seconds=0, count=10, seed=5, model="triton-f32", features=F, out=None,
                        log=False)
    assert res.passed and res.problems == 10
    res = nsimplex.fuzz(kernels.honest_tf32, seconds=0, count=10, seed=5, model="f32", features=F, out=None,
                        shrink_seconds=0.5, log=False)
    assert not res.passed


def verdicts_models(fn, models):
    """verdicts(fn, model) for several models, the kernel run once per vector."""
    out = {m: {"pass": 0, "fail": 0, "n/a": 0, "worst": 0.0} for m in models}
    for path in VECTORS:
        c = nsimplex.load(path)
        o, lse = nsimplex.run(fn, c)
        for m in models:
            try:
                r = nsimplex.check(c, o, lse, c.inputs()["sel"], model=m)
            except nsimplex.NotApplicable:
                out[m]["n/a"] += 1
                continue
            out[m]["pass" if r.passed else "fail"] += 1
            if r.passed and r.ratio is not None:
                out[m]["worst"] = max(out[m]["worst"], r.ratio)
    return out


def test_lse_forms_judge_a_base2_kernel_and_bite():
    """docs/ORACLE.md 3.8.1: FBGEMM's LSE (the max in log2 units plus ln of the sum) and the log2
    form, each passed by the kernel that stores it and failed by the others."""
    assert nsimplex.model("f32,lseform=mixed").endswith(",lse=-inf,lseform=mixed")
    assert nsimplex.model("f32,lseform=ln") == nsimplex.model("f32")
    with pytest.raises(nsimplex.InputError, match="lseform=e: the LSE's form is ln, log2"):
        nsimplex.model("f32,lseform=e")
    models = ("f32", "f32,lseform=mixed", "f32,lseform=log2")
    mixed = verdicts_models(kernels.fbgemm_lse, models)
    log2 = verdicts_models(kernels.log2_lse, models)
    ln = verdicts_models(kernels.honest_f32, models)
    for v, honest in ((mixed, "f32,lseform=mixed"), (log2, "f32,lseform=log2"), (ln, "f32")):
        assert v[honest]["fail"] == 0 and v[honest]["pass"] == len(VECTORS) - 1 and v[honest]["worst"] < 1, (honest, v)
        for other in models:
            if other != honest:
                assert v[other]["fail"] >= 50, (honest, other, v)
    # through the fuzz loop too: the C fuzzer judges the Python kernel under the form's model
    F = ["windows", "gqa", "biases", "lse"]
    res = nsimplex.fuzz(kernels.fbgemm_lse, seconds=0, count=6, seed=5, model="f32,lseform=mixed", features=F,
                        out=None, log=False)
    assert res.passed and res.problems == 6
    res = nsimplex.fuzz(kernels.fbgemm_lse, seconds=0, count=6, seed=5, model="f32", features=F, out=None,
                        shrink_seconds=0.5, log=False)
    assert not res.passed


def test_op_inherited_silently_from_in_warns():
    c = nsimplex.load(os.path.join(ROOT, "vectors", "default", "n2_f32.safetensors"))
    o, lse = kernels.honest_f32(c.problem, c.inputs())
    with pytest.warns(nsimplex.ModelWarning, match="op=f32 follows in=f32"):
        nsimplex.check(c, o, lse, model="bf16,in=f32")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nsimplex.check(c, o, lse, model="bf16,in=f32,op=bf16")
        nsimplex.check(c, o, lse, model="f32,in=f32")
    cand = scratch("warn.safetensors")
    nsimplex.save_candidate(c, cand, o, lse, model="bf16,in=f32")
    r = cli("check", c.path, cand)
    assert "warning" in r.stderr and "op=f32 follows in=f32" in r.stderr and cand in r.stderr
    r = cli("check", c.path, cand, "--model", "in=f32")
    assert r.stderr.count("warning") == 1 and "--model" in r.stderr
    r = cli("check", c.path, cand, "--model", "f32")
    assert "warning" not in r.stderr
    # self-contradictory: a rounding to a format wider than acc rounds nothing
    for bad in ("f32,w=f64", "bf16,int=f64"):
        with pytest.warns(nsimplex.ModelWarning, match="wider than acc=f32"):
            nsimplex.check(c, o, lse, model=bad)
    # self-contradictory: a base-2 LSE form through torch.logsumexp's int tensors
    with pytest.warns(nsimplex.ModelWarning, match="lseform=mixed with int=bf16"):
        nsimplex.check(c, o, lse, model="einsum-bf16,lseform=mixed")


# ---- torch (optional): examples/torch_check.py's einsum kernel through the package on the CPU -----

def test_torch_inputs_check_and_fuzz_on_the_cpu():
    torch = pytest.importorskip("torch")
    import importlib.util
    spec = importlib.util.spec_from_file_location("torch_check", os.path.join(ROOT, "examples", "torch_check.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    c = nsimplex.load(os.path.join(ROOT, "vectors", "default", "n2_leak_nan.safetensors"))
    t = c.inputs(device="cpu")
    assert t["q"].dtype == torch.bfloat16 and t["q"].device.type == "cpu"
    assert c.inputs(device="cpu", dtype=torch.float64)["k"][1].dtype == torch.float64
    assert np.array_equal(t["q"].double().numpy(), c.arrays()["q"], equal_nan=True)
    for name in ("n2_leak_nan", "n2_gqa4", "n3_sel", "n2_sel_relu", "n2_paper_windows"):
        c = nsimplex.load(os.path.join(ROOT, "vectors", "default", name + ".safetensors"))
        o, lse = nsimplex.run(ex.simplicial_attention, c, device="cpu")
        assert o.dtype == torch.bfloat16
        rep = nsimplex.check(c, o=o, lse=lse, model="einsum-bf16")
        assert rep.passed, rep.text
    res = nsimplex.fuzz(ex.simplicial_attention, seconds=0, count=8, seed=2, model="einsum-bf16", device="cpu",
                        out=scratch("fuzz-torch"), log=False)
    assert res.passed and res.problems == 8, str(res)


def test_fuzz_judges_a_python_backward():
    # the backward of the torch example by autograd, in float64: honest under f32; the same with
    # dk1 and dk2 swapped (a classic of hand-written backward kernels) is found
    torch = pytest.importorskip("torch")
    import importlib.util
    spec = importlib.util.spec_from_file_location("torch_check", os.path.join(ROOT, "examples", "torch_check.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)

    def forward(p, t):
        with torch.no_grad():
            return ex.simplicial_attention(p, t)

    def autograd(p, t, swap=False):
        q = t["q"].clone().requires_grad_()
        ks = [k.clone().requires_grad_() for k in t["k"]]
        vs = [v.clone().requires_grad_() for v in t["v"]]
        assert t["o"].shape == t["do"].shape == q.shape[:3] + (p.dv,) and t["lse"].dtype == torch.float32
        o, _ = ex.simplicial_attention(p, {"q": q, "k": ks, "v": vs, "sel": t["sel"]})
        gs = torch.autograd.grad(o, [q] + ks + vs, t["do"], allow_unused=True)
        gs = [torch.zeros_like(x) if g is None else g for g, x in zip(gs, [q] + ks + vs)]
        dk = gs[1:1 + p.n]
        if swap and p.n >= 2:
            dk = [dk[1], dk[0]] + dk[2:]
        grads = {"dq": gs[0]}
        grads.update({"dk%d" % (m + 1): g for m, g in enumerate(dk)})
        grads.update({"dv%d" % (m + 1): g for m, g in enumerate(gs[1 + p.n:])})
        return grads

    kw = dict(seconds=0, seed=4, model="f32", device="cpu", dtype=torch.float64, max_order=3,
              features=FEATURES, bwd="only", out=scratch("fuzz-bwd"), shrink_seconds=3, log=False)
    res = nsimplex.fuzz(forward, backward=autograd, count=40, **kw)
    assert res.passed and res.summary["bwd"] >= 30, str(res)

    def swapped(p, t):
        return autograd(p, t, swap=True)

    res = nsimplex.fuzz(forward, backward=swapped, count=200, **kw)
    f = res.failures[0]
    assert not res.passed and f["kind"] == "gradient" and f["note"].startswith("dk"), str(res)
    assert ", backward=swapped, bwd='only'" in f["reproduce"], f["reproduce"]
    assert os.path.exists(f["path"])
    with pytest.raises(nsimplex.InputError, match="lse"):
        nsimplex.fuzz(forward, backward=autograd, features=["windows"], log=False)
    with pytest.raises(nsimplex.InputError, match="bwd"):
        nsimplex.fuzz(forward, backward=autograd, bwd="sometimes", log=False)


def test_importable_from_the_build_tree_and_examples_parse():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), NSIMPLEX_BUILD=os.path.basename(BUILD))
    env.pop("NSIMPLEX_LIB", None)
    r = subprocess.run([sys.executable, "-c", "import nsimplex; print(nsimplex._lib.lib_path)"],
                       capture_output=True, text=True, env=env, cwd=TMP)
    assert r.returncode == 0 and os.path.samefile(r.stdout.strip(), os.path.join(BUILD, "libnsimplex.so")), r.stderr
    import ast
    for name in ("triton_simplicial.py", "torch_check.py", "fbgemm_check.py", "fbgemm_bwd.py",
                 "first_verdict.py"):
        with open(os.path.join(ROOT, "examples", name)) as f:
            ast.parse(f.read(), name)


def test_check_judges_gradients():
    # a backward case: the vector's own gradients pass (rounded to bf16, within the bound); a wrong
    # scale on dq fails; an unknown tensor name is an input error
    c = nsimplex.load(os.path.join(ROOT, "vectors", "default", "bwd_n2_paper.safetensors"))
    a = c.arrays()
    p = c.problem
    grads = {name: a[name] for name in ["dq"] + ["dk%d" % (m + 1) for m in range(p.n)] +
             ["dv%d" % (m + 1) for m in range(p.n)]}
    rep = nsimplex.check(c, o=a["o"], lse=a["lse"], grads=grads, model="f64")
    assert rep.passed and rep.gradients["status"] == "judged" and rep.worst_dq["ratio"] == 0, rep.text
    bad = dict(grads, dq=grads["dq"] * 4)
    rep = nsimplex.check(c, o=a["o"], lse=a["lse"], grads=bad)
    assert not rep.passed and rep.gradients["failed"] > 0 and rep.worst_dq["ratio"] > 1, rep.text
    rep = nsimplex.check(c, o=a["o"], lse=a["lse"], grads={"dk1": grads["dk1"]})
    assert rep.passed and rep.gradients["absent"] == 2 * p.n, rep.text
    with pytest.raises(nsimplex.InputError):
        nsimplex.check(c, o=a["o"], grads={"dk9": grads["dk1"]})
    # bf16 gradients, in process and through a candidate file (torch tensors: numpy has no bf16)
    torch = pytest.importorskip("torch")
    bf = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in grads.items()}
    rep = c.check(a["o"], a["lse"], grads=bf)
    assert rep.passed and rep.gradients["tensors"] == 1 + 2 * p.n and 0 < rep.ratio <= 1, rep.text
    # a candidate file with gradients, judged by the command line
    path = scratch("grad_candidate.safetensors")
    nsimplex.save_candidate(c, path, o=a["o"], lse=a["lse"], grads=bf)
    r = cli("check", c.path, path, "--json")
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["gradients"]["status"] == "judged" and rep["gradients"]["tensors"] == 5, r.stdout
    nsimplex.save_candidate(c, path, o=a["o"], lse=a["lse"], grads=dict(bf, dq=bf["dq"] * 4))
    r = cli("check", c.path, path)
    assert r.returncode == 1 and "dq[" in r.stdout, r.stdout


def _fbgemm_stand_in(q, k1, k2, v1, v2, w1, w2, k2_bias=None, v2_bias=None):
    """A torch stand-in with triton_fwd's interface (one kv head, a query tile of at least 16 rows,
    o in bf16 with v's width d, the mixed-form m) for testing examples/fbgemm_check.py's harness."""
    import math
    import torch
    B, L, H, D = q.shape
    assert H >= 16 and H & (H - 1) == 0 and k1.shape[2] == 1 and v1.shape[3] == D, (q.shape, k1.shape, v1.shape)
    q, k1, k2, v1, v2 = (x.double() for x in (q, k1, k2, v1, v2))
    o = torch.zeros((B, L, H, D), dtype=torch.float64)
    m = torch.zeros((B, H, L), dtype=torch.float64)
    for i in range(L):
        a1, a2 = max(0, i - w1 + 1), max(0, i - w2 + 1)
        s = torch.einsum("bhd,bjd,bkd->bhjk", q[:, i], k1[:, a1:i + 1, 0], k2[:, a2:i + 1, 0]) * D ** -0.5
        mx = s.amax(dim=(2, 3), keepdim=True)
        p = torch.exp(s - mx)
        z = p.sum(dim=(2, 3))
        o[:, i] = torch.einsum("bhjk,bjd,bkd->bhd", p, v1[:, a1:i + 1, 0], v2[:, a2:i + 1, 0]) / z[..., None]
        m[:, :, i] = mx[..., 0, 0] * math.log2(math.e) + torch.log(z)
    return o.to(torch.bfloat16), m.float()


def test_fbgemm_harness_with_a_torch_stand_in(monkeypatch):
    # the harness's padding (query heads to 16 rows, v to d columns), per-kv-head calls and the
    # mixed LSE form, driven through a CPU stand-in: an honest stand-in passes a GQA vector and a
    # short fuzz; a stand-in that drops V2's last key fails
    torch = pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import fbgemm_check as fc
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    fn = fc.fbgemm_forward(_fbgemm_stand_in)
    path = os.path.join(TMP, "fb_gqa.safetensors")
    nsimplex.gen("n=2 L=20 H=4 Hkv=2 d=16 dv=8 w=6,3 fmt=bf16", path, name="fb_gqa")
    case = nsimplex.load(path)
    assert fc.outside(case.problem) is None
    o, lse = fn(case.problem, case.inputs(device="cpu", dtype=torch.bfloat16))
    rep = nsimplex.check(case, o=o.double().numpy(), lse=lse.double().numpy(), model=fc.MODEL)
    assert rep.passed and 0 < rep.ratio <= 1, rep.text

    def short(q, k1, k2, v1, v2, w1, w2, **kw):
        v2 = v2.clone()
        v2[:, -1] = 0
        return _fbgemm_stand_in(q, k1, k2, v1, v2, w1, w2, **kw)
    o, lse = fc.fbgemm_forward(short)(case.problem, case.inputs(device="cpu", dtype=torch.bfloat16))
    assert not nsimplex.check(case, o=o.double().numpy(), lse=lse.double().numpy(), model=fc.MODEL).passed
    res = nsimplex.fuzz(fn, count=400, seed=1, model=fc.MODEL, device="cpu", dtype=torch.bfloat16,
                        features=["windows", "gqa", "lse"], max_order=2, shapes=lambda p: fc.outside(p) is None,
                        out=os.path.join(TMP, "fbfuzz"), name="stand_in", log=False)
    assert res.passed and res.problems >= 10, (res, res.summary)   # problems: judged, declined apart


def _fbgemm_bwd_stand_in(q, k1, k2, v1, v2, o, dO, m, w1, w2, k2_bias=None, v2_bias=None, swap=False):
    """A torch stand-in with triton_bwd's interface (kv tensors expanded to the query heads) and its
    arithmetic's shape: P recomputed as exp(S - m) from the m it is given, Delta = rowsum(dO o),
    dS = P (dP - Delta), in float64.  swap: dk1 and dk2 returned swapped (a planted bug)."""
    import torch
    B, L, H, D = q.shape
    q, k1, k2, v1, v2, o, dO = (x.double() for x in (q, k1, k2, v1, v2, o, dO))
    g = {x: torch.zeros((B, L, H, D), dtype=torch.float64) for x in ("dq", "dk1", "dk2", "dv1", "dv2")}
    s = D ** -0.5
    for i in range(L):
        a1, a2 = max(0, i - w1 + 1), max(0, i - w2 + 1)
        K1, K2, V1, V2 = k1[:, a1:i + 1], k2[:, a2:i + 1], v1[:, a1:i + 1], v2[:, a2:i + 1]
        S = torch.einsum("bhd,bjhd,bkhd->bhjk", q[:, i], K1, K2) * s
        P = torch.exp(S - m[:, :, i].double()[..., None, None])
        dP = torch.einsum("bhc,bjhc,bkhc->bhjk", dO[:, i], V1, V2)
        dS = P * (dP - (dO[:, i] * o[:, i]).sum(-1)[..., None, None])
        g["dq"][:, i] = torch.einsum("bhjk,bjhd,bkhd->bhd", dS, K1, K2) * s
        g["dk1"][:, a1:i + 1] += torch.einsum("bhjk,bhd,bkhd->bjhd", dS, q[:, i], K2) * s
        g["dk2"][:, a2:i + 1] += torch.einsum("bhjk,bhd,bjhd->bkhd", dS, q[:, i], K1) * s
        g["dv1"][:, a1:i + 1] += torch.einsum("bhjk,bhc,bkhc->bjhc", P, dO[:, i], V2)
        g["dv2"][:, a2:i + 1] += torch.einsum("bhjk,bhc,bjhc->bkhc", P, dO[:, i], V1)
    if swap:
        g["dk1"], g["dk2"] = g["dk2"], g["dk1"]
    return (g["dq"].float(),) + tuple(g[x].to(torch.bfloat16) for x in ("dk1", "dk2", "dv1", "dv2"))


def test_fbgemm_bwd_harness_with_a_torch_stand_in(monkeypatch):
    # examples/fbgemm_bwd.py's fuzz (kv heads expanded and their gradients summed back, the natural
    # LSE it computes, the w2 = 32 rule) through CPU stand-ins of FBGEMM's two kernels: fed the
    # natural LSE an honest stand-in passes; with dk1 and dk2 swapped it fails; fed the forward's
    # own m (a base-2 max plus a natural log) the honest stand-in fails, as FBGEMM's pair would
    torch = pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import fbgemm_bwd as fb
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)

    def fuzz(bwd, lse_from, name):
        return fb.fuzz_backward(_fbgemm_stand_in, bwd, lse_from, device="cpu", count=800, seed=3,
                                out=os.path.join(TMP, name), log=False)
    res = fuzz(_fbgemm_bwd_stand_in, "natural", "fbb_honest")
    assert res.passed and res.summary["bwd"] >= 5, (res, res.summary)
    res = fuzz(lambda *a, **kw: _fbgemm_bwd_stand_in(*a, swap=True, **kw), "natural", "fbb_swap")
    assert not res.passed and res.failures[0]["kind"] == "gradient", (res, res.summary)
    res = fuzz(_fbgemm_bwd_stand_in, "fbgemm", "fbb_mixed")
    assert not res.passed and res.failures[0]["kind"] == "gradient", (res, res.summary)
