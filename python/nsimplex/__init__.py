"""nsimplex from Python: golden vectors, the oracle and the fuzzer for n-simplicial attention kernels.

    import nsimplex
    case = nsimplex.load("vectors/default/n2_paper_windows.safetensors")
    t = case.inputs(device="cuda")                  # q, k [n], v [n], sel: torch tensors
    o, lse = my_kernel(case.problem, t)
    print(nsimplex.check(case, o=o, lse=lse, model="bf16"))

    nsimplex.fuzz(lambda p, t: my_kernel(p, t), seconds=60, model="bf16", device="cuda",
                  features=["windows", "gqa", "lse"])
    nsimplex.fuzz_indexer(my_indexer, seconds=60, model="f32", device="cuda")  # (scores, sel)

A kernel is a callable fn(problem, tensors) -> (o, lse) or o or {"o": .., "lse": ..}: problem
is a Problem (the settings in the terms kernels take), tensors a dict with q [B,L,H,d],
k and v (lists of n tensors [B,L,Hkv,d] / [B,L,Hkv,dv]) and sel ([B,L,topk] int32, or None).
It may raise nsimplex.Unsupported for a problem it cannot take.  The whole package runs on the
C library (libnsimplex.so): the verdicts are those of `nsimplex check` and `nsimplex fuzz`.
"""
import ctypes
import json
import os
import sys
import warnings
from ctypes import POINTER, byref, c_double, c_float, c_int, c_int32, c_int64, c_void_p

import numpy as np

from . import _lib
from ._lib import FEATURES, FORMAT_NAMES, FORMATS, IDX_ACT_NAMES, IDX_ACTS, IDX_WRITES, MAX_ORDER, REDUCERS, lib

__version__ = _lib.lib.nsx_py_version().decode()
__all__ = ["load", "gen", "check", "check_indexer", "indexer_inputs", "fuzz", "fuzz_indexer", "run", "save_candidate",
           "model",
           "Case", "Problem", "Report", "IndexerReport",
           "FuzzResult", "Error", "InputError", "NotApplicable", "Unsupported", "ModelWarning", "FEATURE_NAMES",
           "SIZE_CLASSES"]

FEATURE_NAMES = tuple(FEATURES)


class Error(Exception):
    """A failure of nsimplex itself or of its input: .kind is the error kind's name (error.h)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind_code = kind
        self.kind = lib.nsx_py_err_kind_name(kind).decode()


class InputError(Error, ValueError):
    """Unusable input: a malformed file, a bad shape or dtype, an unknown model (the CLI's exit 2)."""


class NotApplicable(InputError):
    """The vector cannot be judged under the model (docs/ORACLE.md 3.1)."""


class Unsupported(Exception):
    """Raised by a kernel function for a problem it does not support (the ABI's return 1)."""


def _raise(kind, msg):
    text = msg.value.decode("utf-8", "replace") if hasattr(msg, "value") else str(msg)
    if kind == _lib.E_NOT_APPLICABLE:
        raise NotApplicable(kind, text)
    if kind in (_lib.E_INPUT, _lib.E_UNSUPPORTED, _lib.E_TOO_LARGE):
        raise InputError(kind, text)
    raise Error(kind, text)


def _errbuf():
    return ctypes.create_string_buffer(1024)


def _enc(s):
    return None if s is None else os.fsencode(s) if isinstance(s, os.PathLike) else str(s).encode()


def model(text=None):
    """The canonical form of a precision model string (docs/ORACLE.md section 2); InputError if bad."""
    out, err, fmt = ctypes.create_string_buffer(256), _errbuf(), (c_int * 5)()
    rc = lib.nsx_py_model(_enc(text), out, 256, fmt, err, 1024)
    if rc:
        _raise(rc, err)
    return out.value.decode()


class ModelWarning(UserWarning):
    """A model string that parses but may not say what its author meant (op inherited from in)."""


def _warn_model(text):
    buf = ctypes.create_string_buffer(512)
    if text is not None and lib.nsx_py_model_warning(_enc(text), buf, 512):
        warnings.warn(buf.value.decode(), ModelWarning, stacklevel=3)


def _model_formats(text):
    out, err, fmt = ctypes.create_string_buffer(256), _errbuf(), (c_int * 5)()
    rc = lib.nsx_py_model(_enc(text), out, 256, fmt, err, 1024)
    if rc:
        _raise(rc, err)
    return {"in": fmt[0], "acc": fmt[1], "w": fmt[2], "out": fmt[3], "lseout": fmt[4]}


# ---- problems ---------------------------------------------------------------------------------

class Problem:
    """One problem in the terms a kernel takes (docs/SPEC.md; include/nsimplex/kernel.h).

    n, B, L, H, Hkv, d, dv; groups = H // Hkv (query heads per key/value head, GQA: head h reads
    kv head h // groups); reduce ("product", "sum", "mean"); causal, distinct (bools);
    windows (n ints, 0 = none: a key j is allowed when i - w < j, and j < i + w with causal off);
    score_scale (the binary64 the kernel receives) and scale_exact ("1/sqrt(d)" when the scale is
    that exact real, else None); out_scale; k_bias, v_bias (n floats); topk (0: no selection)
    and sel_dims (the dimensions 1..n restricted to sel).  A loaded case adds selection (the
    source: "indices", "indexer", "scores" or None), input_format and name.
    """

    def __init__(self, **kw):
        self.scale_exact = None
        self.selection = None
        self.input_format = None
        self.name = None
        self.__dict__.update(kw)

    @property
    def groups(self):
        return self.H // self.Hkv

    def __repr__(self):
        keys = ["n", "B", "L", "H", "Hkv", "d", "dv", "reduce", "causal", "distinct", "windows", "score_scale",
                "out_scale", "k_bias", "v_bias", "topk", "sel_dims"]
        return "Problem(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in keys)

    @classmethod
    def from_meta(cls, m):
        n = m["n"]
        sel = m.get("selection")
        return cls(n=n, B=m["B"], L=m["L"], H=m["H"], Hkv=m["Hkv"], d=m["d"], dv=m["dv"], reduce=m["reduce"],
                   causal=bool(m["causal"]), distinct=bool(m["distinct"]), windows=tuple(int(w) for w in m["windows"]),
                   score_scale=float(m["score_scale"]), scale_exact=m.get("score_scale_exact"),
                   out_scale=float(m["out_scale"]), k_bias=tuple(float(x) for x in m["k_bias"]),
                   v_bias=tuple(float(x) for x in m["v_bias"]), topk=sel["k"] if sel else 0,
                   sel_dims=tuple(sel["dims"]) if sel else (), selection=sel["source"] if sel else None,
                   input_format=m.get("input_format"), name=m.get("case"))

    @classmethod
    def from_kernel(cls, p):
        n = p.n
        return cls(n=n, B=p.B, L=p.L, H=p.H, Hkv=p.Hkv, d=p.d, dv=p.dv, reduce=REDUCERS[p.reduce],
                   causal=bool(p.causal), distinct=bool(p.distinct), windows=tuple(p.window[:n]),
                   score_scale=p.score_scale, out_scale=p.out_scale, k_bias=tuple(p.k_bias[:n]),
                   v_bias=tuple(p.v_bias[:n]), topk=p.topk,
                   sel_dims=tuple(m + 1 for m in range(n) if p.sel_dims >> m & 1) if p.topk else ())


# ---- tensors ----------------------------------------------------------------------------------

def _np_dtype(fmt):
    """numpy's dtype for a format's values: bf16 has none, its values are held in float32."""
    return {"f64": np.float64, "f32": np.float32, "f16": np.float16, "bf16": np.float32}[fmt]


def _torch_dtype(torch, fmt):
    return {"f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[fmt]


def _torch_wanted(device, dtype):
    return device is not None or (dtype is not None and "torch" in type(dtype).__module__)


def _convert(arrays, fmt, device, dtype):
    """numpy arrays (float64/float32 values of format fmt, int32 sel) as the caller asked: numpy in
    fmt's dtype (device None and dtype None or a numpy dtype), else torch tensors on device."""
    if not _torch_wanted(device, dtype):
        dt = np.dtype(dtype) if dtype is not None else _np_dtype(fmt)

        def cv(a):
            return None if a is None else a if a.dtype == np.int32 else a.astype(dt)
    else:
        import torch
        dt = dtype if dtype is not None else _torch_dtype(torch, fmt)

        def cv(a):
            if a is None:
                return None
            t = torch.from_numpy(np.ascontiguousarray(a))
            return t.to(device=device) if a.dtype == np.int32 else t.to(device=device, dtype=dt)
    res = {"q": cv(arrays["q"]), "k": [cv(a) for a in arrays["k"]], "v": [cv(a) for a in arrays["v"]],
           "sel": cv(arrays.get("sel"))}
    for extra in ("o", "do"):  # a backward's inputs
        if extra in arrays:
            res[extra] = cv(arrays[extra])
    return res


def _to_numpy(x, name, dtype=np.float64):
    """A numpy array of x (numpy, torch on any device, nested lists), its values kept exactly."""
    if x is None:
        return None
    if hasattr(x, "detach"):  # torch
        import torch
        x = x.detach()
        if x.dtype.is_floating_point:
            x = x.to(device="cpu", dtype=torch.float64 if dtype == np.float64 else torch.float32)
        else:
            x = x.to(device="cpu")
        x = x.numpy()
    a = np.asarray(x)
    if dtype == np.int32:
        if a.dtype.kind not in "iu":
            raise InputError(_lib.E_INPUT, "%s: dtype %s, not an integer type" % (name, a.dtype))
    elif a.dtype.kind != "f":
        raise InputError(_lib.E_INPUT, "%s: dtype %s, not a float type" % (name, a.dtype))
    return np.ascontiguousarray(a, dtype=dtype)


def _shape_ok(a, shape, name):
    if a is not None and tuple(a.shape) != tuple(shape):
        raise InputError(_lib.E_INPUT, "%s: shape %s but the problem needs %s"
                         % (name, list(a.shape), list(shape)))


def _outputs(out):
    """(o, lse) from what a kernel function returned."""
    if isinstance(out, dict):
        return out.get("o"), out.get("lse")
    if isinstance(out, (tuple, list)):
        if len(out) == 2:
            return out[0], out[1]
        if len(out) == 1:
            return out[0], None
        raise InputError(_lib.E_INPUT, "the kernel returned %d values; give o, or (o, lse)" % len(out))
    return out, None


# ---- cases ------------------------------------------------------------------------------------

class Case:
    """A case file (a golden vector, or a saved fuzz failure) read and validated by the C library.

    .problem (Problem), .meta (the metadata as a dict), .name, .flags, .pairs, .path;
    .arrays() every tensor of the file by name (a backward case: do, dq, dk1.., dv1.. too);
    .inputs(device=None, dtype=None) the kernel's inputs; .expected {"o", "lse", "sel",
    "sel_scores"} as float64 numpy arrays (None when absent); .check(...) as nsimplex.check.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        h, err = c_void_p(), _errbuf()
        rc = lib.nsx_py_case_read(_enc(self.path), byref(h), err, 1024)
        if rc:
            _raise(rc, err)
        self._h = h
        s = c_void_p()
        rc = lib.nsx_py_case_meta(self._h, byref(s), err, 1024)
        if rc:
            _raise(rc, err)
        self.meta = json.loads(_lib.take_string(s))
        self.problem = Problem.from_meta(self.meta)
        self.name = self.meta.get("case")
        self.flags = tuple(self.meta.get("flags", ()))
        self.pairs = self.meta.get("pairs", [])
        self.description = self.meta.get("description")
        self._arrays = {}
        for name in ["q", "sel", "idx_q", "idx_k", "idx_w", "idx_s", "o", "lse", "sel_scores", "do", "dq"] + \
                ["%s%d" % (kv, m + 1) for kv in ("k", "v", "dk", "dv") for m in range(self.problem.n)]:
            a = self._tensor(name)
            if a is not None:
                self._arrays[name] = a

    def _tensor(self, name):
        data, is_int, rank, shape = c_void_p(), c_int(), c_int(), (c_int64 * 4)()
        if lib.nsx_py_case_tensor(self._h, name.encode(), byref(data), byref(is_int), byref(rank), shape):
            return None
        shp = tuple(shape[:rank.value])
        count = int(np.prod(shp)) if shp else 1
        ctype = c_int32 if is_int.value else c_double
        if count == 0:
            return np.zeros(shp, dtype=np.int32 if is_int.value else np.float64)
        buf = ctypes.cast(data, POINTER(ctype * count)).contents
        return np.frombuffer(buf, dtype=np.int32 if is_int.value else np.float64).reshape(shp).copy()

    def __del__(self):
        h = getattr(self, "_h", None)
        if h and lib is not None:
            lib.nsx_py_case_free(h)
            self._h = None

    def __repr__(self):
        return "Case(%r, %r)" % (self.name, self.path)

    @property
    def expected(self):
        computed = self.problem.selection in ("indexer", "scores")
        return {"o": self._arrays.get("o"), "lse": self._arrays.get("lse"),
                "sel": self._arrays.get("sel") if computed else None, "sel_scores": self._arrays.get("sel_scores")}

    def arrays(self):
        """The raw tensors of the file, as float64 / int32 numpy arrays, by file name."""
        return dict(self._arrays)

    def inputs(self, device=None, dtype=None):
        """q, k [n], v [n] and sel (the S(i) lists the kernel receives: the given selection, or the
        golden one for a computed selection; None without selection).  numpy arrays in the input
        format's dtype (bf16 values in float32) when device is None and dtype is None or a numpy
        dtype; else torch tensors on device (default "cpu") in dtype (default: the input format)."""
        p, a = self.problem, self._arrays
        arrays = {"q": a["q"], "k": [a["k%d" % (m + 1)] for m in range(p.n)],
                  "v": [a["v%d" % (m + 1)] for m in range(p.n)], "sel": a.get("sel")}
        return _convert(arrays, p.input_format, device, dtype)

    def check(self, o, lse=None, sel=None, model=None, label="candidate", grads=None):
        return check(self, o=o, lse=lse, sel=sel, model=model, label=label, grads=grads)


def load(path):
    """Reads a case file: nsimplex.load("vectors/default/n2_dense.safetensors") -> Case."""
    return Case(path)


def gen(recipe, path, name=None):
    """Writes a golden vector of any shape, as `nsimplex gen --recipe RECIPE --out PATH` does, and
    loads it: nsimplex.gen("n=2 L=64 H=4 Hkv=1 d=32 w=32,8 fmt=bf16 leak=nan:40 probe=all",
    "/tmp/my.safetensors").  Recipe keys: vectors/recipe.h (n, B, L, H, Hkv, d, dv, reduce, causal,
    distinct, w, kb, vb, scale, out, fmt, sel, k, dims, act, dist, ties, empty, invalid, leak,
    probe).  name: the case's name (default: the file's name), which seeds its inputs."""
    path = os.fspath(path)
    if name is None:
        name = os.path.basename(path)
        if name.endswith(".safetensors"):
            name = name[:-len(".safetensors")]
    err = _errbuf()
    rc = lib.nsx_py_gen(_enc(recipe), _enc(name), _enc(path), None, err, 1024)
    if rc:
        _raise(rc, err)
    return load(path)


def run(fn, case, device=None, dtype=None):
    """fn(case.problem, case.inputs(device, dtype)) -> (o, lse): a kernel function on a case."""
    return _outputs(fn(case.problem, case.inputs(device=device, dtype=dtype)))


# ---- checking ---------------------------------------------------------------------------------

class Report:
    """The oracle's verdict, the same as `nsimplex check --json`: .passed, .json (the dict),
    .text (the report for people), .worst_o and .worst_lse (dicts with b, h, i, c, error, bound,
    ratio, expected, candidate; None when nothing was judged), .gradients (the JSON's "gradients":
    status, counts) and .worst_dq, .worst_dk, .worst_dv (a backward case), .ratio (the largest
    worst ratio),
    .failures (the count), .notes (the first failures, one line each), .model."""

    def __init__(self, passed, js, text):
        self.passed = bool(passed)
        self.json = json.loads(js)
        self.text = text
        self.model = self.json["model"]
        self.failures = self.json["failures"]
        self.notes = list(self.json["notes"])
        self.worst_o = self.json["o"]["worst"]
        self.worst_lse = self.json["lse"]["worst"]
        g = self.json.get("gradients", {})
        self.gradients = g
        self.worst_dq, self.worst_dk, self.worst_dv = g.get("worst_dq"), g.get("worst_dk"), g.get("worst_dv")
        ratios = [w["ratio"] for w in (self.worst_o, self.worst_lse, self.worst_dq, self.worst_dk, self.worst_dv)
                  if w and w.get("ratio") is not None]
        self.ratio = max(ratios) if ratios else None

    def __bool__(self):
        return self.passed

    def __str__(self):
        return self.text

    def __repr__(self):
        return "Report(passed=%s, case=%r, model=%r, ratio=%r, failures=%d)" % (
            self.passed, self.json.get("case"), self.model, self.ratio, self.failures)


def _candidate_arrays(case, o, lse, sel):
    p = case.problem
    o = _to_numpy(o, "o")
    lse = _to_numpy(lse, "lse")
    sel = _to_numpy(sel, "sel", np.int32) if sel is not None and p.selection in ("indexer", "scores") else None
    if o is None:
        raise InputError(_lib.E_INPUT, "no o")
    _shape_ok(o, (p.B, p.L, p.H, p.dv), "o")
    _shape_ok(lse, (p.B, p.H, p.L), "lse")
    _shape_ok(sel, (p.B, p.L, p.topk), "sel")
    return o, lse, sel


def _ptr(a):
    return None if a is None else a.ctypes.data_as(c_void_p)


def _grad_arrays(case, grads):
    """The candidate's gradients {"dq": .., "dk1": .., "dv1": ..} as 1 + 2n float64 arrays (None:
    absent), shapes checked."""
    p = case.problem
    if not grads:
        return None
    names = ["dq"] + ["dk%d" % (m + 1) for m in range(p.n)] + ["dv%d" % (m + 1) for m in range(p.n)]
    unknown = set(grads) - set(names)
    if unknown:
        raise InputError(_lib.E_INPUT, "grads: unknown tensor %s (names: %s)" % (sorted(unknown)[0], ", ".join(names)))
    shapes = [(p.B, p.L, p.H, p.d)] + [(p.B, p.L, p.Hkv, p.d)] * p.n + [(p.B, p.L, p.Hkv, p.dv)] * p.n
    out = []
    for name, shape in zip(names, shapes):
        a = _to_numpy(grads.get(name), name)
        _shape_ok(a, shape, name)
        out.append(a)
    return out


def check(case, o, lse=None, sel=None, model=None, label="candidate", grads=None):
    """Judges a kernel's outputs against a golden vector in process, as `nsimplex check` does.

    case: a Case or a path; o [B,L,H,dv], lse [B,H,L] (optional), sel [B,L,k] (optional; read
    only when the vector computes its selection): numpy arrays or torch tensors of any float dtype
    on any device, decoded exactly.  model: a precision model string (default bf16).  grads: a
    backward case's gradients, a dict of any of "dq", "dk1".., "dv1".. (same array types), judged
    against the bound of docs/ORACLE.md section 8 (absent ones are reported).
    Returns a Report; raises NotApplicable when the vector cannot be judged under the model,
    InputError for a bad model or wrong shapes."""
    if not isinstance(case, Case):
        case = load(case)
    o, lse, sel = _candidate_arrays(case, o, lse, sel)
    g = _grad_arrays(case, grads)
    _warn_model(model)
    passed, js, text, err = c_int(), c_void_p(), c_void_p(), _errbuf()
    gp = None if g is None else (c_void_p * len(g))(*[_ptr(a) for a in g])
    rc = lib.nsx_py_check_grads(case._h, _ptr(o), _ptr(lse), _ptr(sel), gp, _enc(model), _enc(label),
                                byref(passed), byref(js), byref(text), err, 1024)
    js, text = _lib.take_string(js), _lib.take_string(text)
    if rc:
        _raise(rc, err)
    return Report(passed.value, js, text)


class IndexerReport:
    """The oracle's verdict on an indexer alone (check_indexer), the same as `nsimplex check --json`
    on an indexer candidate: .passed, .json, .text, .model, .failures, .notes, .worst (the worst
    score: b, i, j, error, bound, ratio, expected, candidate; None without scores), .ratio."""

    def __init__(self, passed, js, text):
        self.passed = bool(passed)
        self.json = json.loads(js)
        self.text = text
        self.model = self.json["model"]
        self.failures = self.json["failures"]
        self.notes = list(self.json["notes"])
        self.worst = self.json["scores"].get("worst")
        self.ratio = self.worst["ratio"] if self.worst else None

    def __bool__(self):
        return self.passed

    def __str__(self):
        return self.text

    def __repr__(self):
        return "IndexerReport(passed=%s, case=%r, model=%r, ratio=%r, failures=%d)" % (
            self.passed, self.json.get("case"), self.model, self.ratio, self.failures)


def indexer_inputs(case, device=None, dtype=None):
    """The indexer's inputs and settings of a case whose selection an indexer computes:
    (settings, tensors) with settings = dict(act="relu"|"softmax"|"identity", idx_scale, Hi, di,
    topk, causal) and tensors = dict(idx_q [B,L,Hi,di], idx_k [B,L,di], idx_w [B,L,Hi]) as numpy
    arrays (device None) or torch tensors on device in dtype (default float32)."""
    if not isinstance(case, Case):
        case = load(case)
    sel = case.meta.get("selection") or {}
    if sel.get("source") != "indexer":
        raise InputError(_lib.E_INPUT, "%s: the selection is not computed by an indexer" % case.path)
    settings = dict(act=sel.get("act", "relu"), idx_scale=float(sel.get("idx_scale", 1.0)), Hi=int(sel["Hi"]),
                    di=int(sel["di"]), topk=int(sel["k"]), causal=bool(case.problem.causal))
    a = case._arrays
    tensors = {name: a[name] for name in ("idx_q", "idx_k", "idx_w")}
    if device is None and (dtype is None or not hasattr(dtype, "is_floating_point")):
        return settings, {k: v.astype(dtype or np.float32) for k, v in tensors.items()}
    import torch
    return settings, {k: torch.as_tensor(v, dtype=dtype or torch.float32, device=device)
                      for k, v in tensors.items()}


def check_indexer(case, scores=None, sel=None, model=None, label="indexer"):
    """Judges an indexer's outputs alone against a golden vector whose selection an indexer
    computes (docs/ORACLE.md 5.2): scores [B,L,L] (the E8 scores S[i,j]; entries of non-candidate
    keys are not read) and/or sel [B,L,k] (the E9 selection as a set, -1 pads), numpy arrays or
    torch tensors on any device.  model: e.g. "f32", "bf16,idx=bf16", "dsa-fp8"
    (FP8 e4m3 with per-block scales).  Returns an IndexerReport."""
    if not isinstance(case, Case):
        case = load(case)
    p = case.problem
    scores = _to_numpy(scores, "scores")
    sel = _to_numpy(sel, "sel", np.int32)
    if scores is None and sel is None:
        raise InputError(_lib.E_INPUT, "give scores, sel or both")
    _shape_ok(scores, (p.B, p.L, p.L), "scores")
    _shape_ok(sel, (p.B, p.L, p.topk), "sel")
    _warn_model(model)
    passed, js, text, err = c_int(), c_void_p(), c_void_p(), _errbuf()
    rc = lib.nsx_py_check_indexer(case._h, _ptr(scores), _ptr(sel), _enc(model), _enc(label), byref(passed),
                                  byref(js), byref(text), err, 1024)
    js, text = _lib.take_string(js), _lib.take_string(text)
    if rc:
        _raise(rc, err)
    return IndexerReport(passed.value, js, text)


def _dtype_code(x, default):
    name = getattr(x, "dtype", None)
    s = str(name)
    for key, code in (("bfloat16", 3), ("float16", 2), ("float32", 1), ("float64", 0)):
        if s.endswith(key):
            return code
    return default


def save_candidate(case, path, o, lse=None, sel=None, model=None, grads=None):
    """Writes a candidate file for `nsimplex check VECTOR PATH`: o and lse in their own dtypes
    (bfloat16, float16, float32, float64), sel as int32, the model in its metadata; grads (a
    backward case: a dict of any of "dq", "dk1".., "dv1..") in the dtype of the first one given."""
    if not isinstance(case, Case):
        case = load(case)
    oc, lc = _dtype_code(o, 0), _dtype_code(lse, 0)
    gc = _dtype_code(next(iter(grads.values())), 0) if grads else 0
    o, lse, sel = _candidate_arrays(case, o, lse, sel)
    g = _grad_arrays(case, grads)
    gp = None if g is None else (c_void_p * len(g))(*[_ptr(a) for a in g])
    err = _errbuf()
    rc = lib.nsx_py_write_candidate_grads(case._h, _enc(path), _ptr(o), oc, _ptr(lse), lc, _ptr(sel), gp, gc,
                                          _enc(model), err, 1024)
    if rc:
        _raise(rc, err)


# ---- fuzzing ----------------------------------------------------------------------------------

class FuzzResult:
    """The outcome of a fuzz run: .passed, .summary (the dict: problems, mpfr, loop, skipped,
    declined, seconds, model, failures; an indexer run's also worst, the largest score error /
    bound where passing, as .ratio, and sel_differ, the selection rows valid but not the golden
    set: ties broken the other way, which the judge passes), .failures (each a dict: kind, note, draw, shrunk, path of
    the saved vector, index, seed (the problem's), and for an indexer run reproduce, the call
    that runs that problem alone)."""

    def __init__(self, summary, indexer=False):
        self.summary = summary
        self.failures = summary["failures"]
        self.passed = not self.failures
        self.problems = summary["problems"]
        self.indexer = indexer
        self.ratio = summary.get("worst")

    def __bool__(self):
        return self.passed

    def __repr__(self):
        return "FuzzResult(passed=%s, problems=%d, failures=%d)" % (self.passed, self.problems,
                                                                    len(self.failures))

    def __str__(self):
        s = self.summary
        if self.indexer:
            lines = ["nsimplex fuzz_indexer (%s): %d problems in %.1f s (%d against MPFR, %d skipped; worst score "
                     "error/bound %s where passing; %d selection rows valid but not the golden set: ties): %s"
                     % (s["model"], s["problems"], s["seconds"], s["mpfr"], s["skipped"],
                        "-" if self.ratio is None else "%.3g" % self.ratio, s["sel_differ"],
                        "PASS" if self.passed else "FAIL")]
        else:
            lines = ["nsimplex fuzz (%s): %d problems in %.1f s (%d against MPFR, %d against the f64 loop, "
                     "%d skipped, %d declined): %s" % (s["model"], s["problems"], s["seconds"], s["mpfr"], s["loop"],
                                                       s["skipped"], s["declined"], "PASS" if self.passed else "FAIL")]
        for f in self.failures:
            lines.append("FAIL %s: %s\n  drawn: %s\n  shrunk: %s\n  saved: %s"
                         % (f["kind"], f["note"], f["draw"], f["shrunk"], f["path"]))
            if f.get("reproduce"):
                lines.append("  reproduce: " + f["reproduce"])
        return "\n".join(lines)


def _feature_bits(features):
    if features is None or features == "all":
        return sum(FEATURES.values())
    bits = 0
    for f in features:
        if f not in FEATURES:
            raise InputError(_lib.E_INPUT, "features: unknown feature %r (known: %s)" % (f, ", ".join(FEATURES)))
        bits |= FEATURES[f]
    return bits


def _accepts(shapes, prob):
    if callable(shapes):
        return bool(shapes(prob))
    for key, allowed in shapes.items():
        v = getattr(prob, key)
        if isinstance(allowed, range) or isinstance(allowed, (list, tuple, set, frozenset)):
            if v not in allowed:
                return False
        elif isinstance(allowed, int):
            if v > allowed:
                return False
        else:
            raise InputError(_lib.E_INPUT, "shapes: %s: give a maximum, a collection of values or a range" % key)
    return True


def _f32_array(ptr, shape):
    """A copy of a kernel ABI float32 buffer as a float32 numpy array of shape."""
    count = int(np.prod(shape))
    if count == 0:
        return np.zeros(shape, dtype=np.float32)
    return np.frombuffer(ctypes.cast(ptr, POINTER(c_float * count)).contents, dtype=np.float32).reshape(shape).copy()


def _guarded(state, on_error, on_unsupported=1):
    """A ctypes callback's body made safe to call from C: its result; on_unsupported when it raises
    Unsupported (None: an error like any other); on_error for any other exception, the first of
    which is kept in state["exc"] and raised again when the run ends."""
    def wrap(body):
        def call(*args):
            try:
                return body(*args)
            except BaseException as e:  # noqa: B902 - reported by the fuzzer, raised again at the end
                if isinstance(e, Unsupported) and on_unsupported is not None:
                    return on_unsupported
                if state["exc"] is None:
                    state["exc"] = e
                return on_error
        return call
    return wrap


def _kernel_arrays(p, io):
    """The kernel ABI's float32 buffers as numpy arrays (copies), and sel."""
    B, L, H, G, d, dv = p.B, p.L, p.H, p.Hkv, p.d, p.dv
    sel = None
    if p.topk and p.sel:
        count = B * L * p.topk
        sel = np.frombuffer(ctypes.cast(p.sel, POINTER(c_int32 * count)).contents, dtype=np.int32) \
            .reshape(B, L, p.topk).copy()
    return {"q": _f32_array(io.q, (B, L, H, d)), "k": [_f32_array(io.k[m], (B, L, G, d)) for m in range(p.n)],
            "v": [_f32_array(io.v[m], (B, L, G, dv)) for m in range(p.n)], "sel": sel}


def _write(ptr, a, shape, name):
    a = _to_numpy(a, name, np.float32)
    _shape_ok(a, shape, name)
    count = int(np.prod(shape))
    if count:
        ctypes.memmove(ptr, a.ctypes.data, count * 4)


SIZE_CLASSES = {"all": -1, "small": 0, "tiles": 1, "production": 2}  # fuzz/fuzz.h NSX_FZ_*


def _orders(shapes, max_order):
    """The fuzzer's order bits from shapes' "n" (a collection or range, or a maximum), so that the
    draws are spent on orders fn takes; 0 (any up to max_order) otherwise."""
    if not isinstance(shapes, dict) or "n" not in shapes:
        return 0
    allowed = shapes["n"]
    ns = range(1, allowed + 1) if isinstance(allowed, int) else allowed
    bits = 0
    for n in ns:
        if not isinstance(n, int) or not 1 <= n <= max_order:
            raise InputError(_lib.E_INPUT, "shapes: n: %r is not an order in 1..max_order (%d)" % (n, max_order))
        bits |= 1 << n
    if not bits:
        raise InputError(_lib.E_INPUT, "shapes: n allows no order")
    return bits


BWD_MODES = {"mix": 0, "only": 1, "none": -1}  # fuzz/fuzz.h NSX_FZ_BWD_*


def fuzz(fn, seconds=10.0, seed=1, features="all", shapes=None, model="bf16", device=None, dtype=None,
         out="fuzz-out", count=0, start=0, max_failures=1, shrink_seconds=30.0, max_order=MAX_ORDER,
         name=None, log=True, progress=5.0, verbose=False, sizes="small", backward=None, bwd="mix",
         backward_features=None, backward_max_order=None):
    """Fuzzes the kernel function fn(problem, tensors) -> (o, lse) against the reference.

    The C fuzzer draws problems within `features` (names from FEATURE_NAMES, or "all"; include
    "lse" when fn returns lse) and orders 1..max_order, judges fn's outputs with the oracle under
    `model`, shrinks each failure and saves it under `out` as a vector with fn's outputs beside it
    (`nsimplex check VECTOR VECTOR.candidate` replays it).  shapes: None, a callable
    shapes(problem) -> bool, or a dict of limits on Problem fields ({"n": (2,), "L": 128, "d":
    range(16, 129, 16)}: a collection or range of values, or an int maximum); problems outside
    are declined (drawn, counted, not run); its "n" also steers the draws to those orders.  sizes:
    the size classes drawn (docs/FUZZING.md 2), "small" (the default: L up to 40, d up to 40, what a
    function over dense L^n tensors takes on a CPU), "tiles" (L 17-1024 and d up to 256 around
    multiples of 16-128: a GPU kernel's tile boundaries), "production" (L up to 4096, the
    paper's windows) or "all" (`nsimplex fuzz`'s mix: 88%, 11.7%, 0.3% by count).  Inputs reach
    fn as numpy float32 arrays (device None
    and dtype None), else as torch tensors on device in dtype (default: the model's input format).
    Outputs pass through the kernel ABI's float32 buffers.

    backward: a function backward(problem, tensors) -> gradients, fuzzed with fn as its forward
    (docs/FUZZING.md 11): tensors holds fn's inputs and "o", "lse" (what fn returned for them),
    "do" (the upstream gradient dO, in the inputs' format); it returns {"dq", "dk1".., "dv1"..}
    (the gradients of sum(do * o), as nsimplex.check's grads=).  bwd: "mix" (a share of the
    problems, with small shapes, are backward ones), "only", or "none", as `nsimplex fuzz --bwd`
    and `--no-bwd`; backward_features (default: features) and backward_max_order (default:
    max_order) declare what it takes.  Its gradients are judged under `model` (ORACLE.md 8).

    Returns a FuzzResult.  An exception raised by fn or backward is a kernel error to the fuzzer,
    and is raised again when the run ends."""
    if sizes not in SIZE_CLASSES:
        raise InputError(_lib.E_INPUT, "fuzz: sizes %r is not one of %s" % (sizes, ", ".join(SIZE_CLASSES)))
    if bwd not in BWD_MODES:
        raise InputError(_lib.E_INPUT, "fuzz: bwd %r is not one of %s" % (bwd, ", ".join(BWD_MODES)))
    if backward is not None and "lse" not in (FEATURES if features in (None, "all") else features):
        raise InputError(_lib.E_INPUT, "fuzz: a backward needs the forward's lse: include 'lse' in features")
    orders = _orders(shapes, max_order)
    fmts = _model_formats(model)
    _warn_model(model)
    if FORMATS["f64"] in (fmts["in"], fmts["out"], fmts["lseout"]):
        raise InputError(_lib.E_UNSUPPORTED, "fuzz: model %s: the kernel ABI passes inputs and outputs as "
                         "float32, so in, out or lseout f64 cannot be fuzzed through it" % model)
    in_fmt = FORMAT_NAMES[fmts["in"]]
    state = {"exc": None}

    @_guarded(state, on_error=2)
    def forward(pp, iop):
        p, io = pp.contents, iop.contents
        prob = Problem.from_kernel(p)
        tensors = _convert(_kernel_arrays(p, io), in_fmt, device, dtype)
        o, lse = _outputs(fn(prob, tensors))
        _write(io.o, o, (p.B, p.L, p.H, p.dv), "o")
        if io.lse:
            if lse is None:
                raise InputError(_lib.E_INPUT, "fn returned no lse, but features include 'lse'")
            _write(io.lse, lse, (p.B, p.H, p.L), "lse")
        return 0

    @_guarded(state, on_error=0, on_unsupported=None)
    def accept(pp):
        return 1 if _accepts(shapes, Problem.from_kernel(pp.contents)) else 0

    @_guarded(state, on_error=2)
    def grads_of(pp, iop):
        p, io = pp.contents, iop.contents
        B, L, H, G, d, dv, n = p.B, p.L, p.H, p.Hkv, p.d, p.dv, p.n
        arrays = _kernel_arrays(p, io)
        arrays["o"] = _f32_array(io.o, (B, L, H, dv))
        arrays["do"] = _f32_array(io.dout, (B, L, H, dv))
        tensors = _convert(arrays, in_fmt, device, dtype)
        # the lse in float32 whatever the inputs' format, on the inputs' device
        lse = _f32_array(io.lse, (B, H, L)) if io.lse else None
        if lse is not None and _torch_wanted(device, dtype):
            import torch
            lse = torch.from_numpy(lse).to(device=device or "cpu")
        tensors["lse"] = lse
        g = backward(Problem.from_kernel(p), tensors)
        if not isinstance(g, dict):
            raise InputError(_lib.E_INPUT, "the backward returned %s; give a dict of dq, dk1.., dv1.."
                             % type(g).__name__)
        want = ["dq"] + ["dk%d" % (m + 1) for m in range(n)] + ["dv%d" % (m + 1) for m in range(n)]
        missing = [x for x in want if g.get(x) is None]
        if missing:
            raise InputError(_lib.E_INPUT, "the backward returned no %s" % missing[0])
        _write(io.dq, g["dq"], (B, L, H, d), "dq")
        for m in range(n):
            _write(io.dk[m], g["dk%d" % (m + 1)], (B, L, G, d), "dk%d" % (m + 1))
            _write(io.dv[m], g["dv%d" % (m + 1)], (B, L, G, dv), "dv%d" % (m + 1))
        return 0

    fwd = _lib.FORWARD(forward)
    bwd_cb = _lib.BACKWARD(grads_of) if backward is not None else _lib.BACKWARD()
    acc = _lib.ACCEPT(accept) if shapes is not None else _lib.ACCEPT()
    if out is not None:
        os.makedirs(out, exist_ok=True)
    args = _lib.FuzzArgs(name=_enc(name or getattr(fn, "__name__", "python")), model=_enc(model),
                         max_order=max_order, features=_feature_bits(features), forward=fwd, accept=acc,
                         seconds=seconds, seed=seed, start=start, count=count, max_failures=max_failures,
                         shrink_seconds=shrink_seconds, out_dir=_enc(out), log=1 if log else 0,
                         progress=progress, verbose=1 if verbose else 0, shapes=SIZE_CLASSES[sizes],
                         orders=orders, backward=bwd_cb,
                         backward_max_order=backward_max_order or max_order if backward is not None else 0,
                         backward_features=_feature_bits(features if backward_features is None
                                                         else backward_features) if backward is not None else 0,
                         bwd=BWD_MODES[bwd])
    if log:
        sys.stdout.flush()
    summary, err = c_void_p(), _errbuf()
    rc = lib.nsx_py_fuzz(byref(args), byref(summary), err, 1024)
    s = _lib.take_string(summary)
    if state["exc"] is not None:
        raise state["exc"]
    if rc:
        _raise(rc, err)
    res = FuzzResult(json.loads(s))
    # the saved text's command line names the CLI; a Python function is run again through this call
    # (with what steers the draw: features, orders and sizes; the rest of shapes only declines)
    label = name or getattr(fn, "__name__", "python")
    for f in res.failures:
        f["reproduce"] = "nsimplex.fuzz(%s, seed=%d, start=%d, count=1, model=%r, max_order=%d%s%s%s%s%s%s)" % (
            label, seed, f["index"], model, max_order, "" if features == "all" else ", features=%r" % (features,),
            "" if backward is None else ", backward=%s, bwd=%r" % (getattr(backward, "__name__", "backward"), bwd),
            "" if not orders else ", shapes={'n': %r}" % (tuple(n for n in range(1, 32) if orders >> n & 1),),
            "" if sizes == "small" else ", sizes=%r" % (sizes,),
            "" if device is None else ", device=%r" % (device,), "" if dtype is None else ", dtype=%s" % (dtype,))
    return res


def _idx_caps(outputs, activations, causal_off):
    """The NSX_IDX_* capability bits of fuzz_indexer's declaration."""
    outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
    activations = (activations,) if isinstance(activations, str) else tuple(activations)
    caps = 0
    for name in outputs:
        if name not in IDX_WRITES:
            raise InputError(_lib.E_INPUT, "outputs: unknown output %r (known: scores, sel)" % (name,))
        caps |= IDX_WRITES[name]
    for name in activations:
        if name not in IDX_ACTS:
            raise InputError(_lib.E_INPUT, "activations: unknown activation %r (known: %s)"
                             % (name, ", ".join(IDX_ACT_NAMES)))
        caps |= IDX_ACTS[name]
    if not outputs or not activations:
        raise InputError(_lib.E_INPUT, "fuzz_indexer: give at least one output and one activation")
    return caps | (_lib.IDX_CAUSAL_OFF if causal_off else 0)


def _indexer_outputs(out, caps):
    """(scores, sel) from what an indexer function returned."""
    if isinstance(out, dict):
        unknown = set(out) - {"scores", "sel"}
        if unknown:
            raise InputError(_lib.E_INPUT, "the indexer returned %s; give scores and/or sel" % sorted(unknown)[0])
        return out.get("scores"), out.get("sel")
    if isinstance(out, (tuple, list)):
        if len(out) != 2:
            raise InputError(_lib.E_INPUT, "the indexer returned %d values; give (scores, sel)" % len(out))
        return out[0], out[1]
    writes = caps & (IDX_WRITES["scores"] | IDX_WRITES["sel"])
    if writes == IDX_WRITES["scores"]:
        return out, None
    if writes == IDX_WRITES["sel"]:
        return None, out
    raise InputError(_lib.E_INPUT, "the indexer returned one value; give (scores, sel), or declare one output")


def fuzz_indexer(fn, seconds=10.0, seed=1, model="bf16", device=None, dtype=None, outputs=("scores", "sel"),
                 activations=IDX_ACT_NAMES, causal_off=True, out="fuzz-out", count=0, start=0, max_failures=1,
                 name=None, log=True, verbose=False):
    """Fuzzes an indexer function fn(settings, tensors) -> (scores, sel) against the reference, as
    `nsimplex fuzz --indexer` does for a library (fuzz/idx.c; docs/FUZZING.md "The indexer").

    The C fuzzer draws indexer problems (E8 then E9, docs/SPEC.md: every activation declared in
    `activations`, causal on and, with causal_off, off; short rows and k >= L; exact ties; zero
    and negative head weights; blocks of idx_q and idx_k far apart in magnitude), computes the
    exact scores and selection with MPFR and judges fn's outputs under `model` (docs/ORACLE.md 5:
    the scores elementwise against the derived bound, the selection as a set with the tie
    tolerance that bound implies; e.g. "f32", "bf16,idx=bf16", "dsa-fp8,idxblk=64").
    settings and tensors are those of indexer_inputs: settings = dict(act, idx_scale, Hi, di,
    topk, causal), tensors = dict(idx_q [B,L,Hi,di], idx_k [B,L,di], idx_w [B,L,Hi]) as numpy
    float32 arrays (device None and dtype None), else torch tensors on device in dtype (default
    float32).  fn returns scores [B,L,L] (S[i,j]; entries of non-candidate keys are not read)
    and sel [B,L,topk] (S(i) as a set, -1 pads, any order) as numpy arrays or torch tensors, as
    a pair, a dict {"scores": .., "sel": ..}, or the one output declared; `outputs` declares
    which are judged ("scores", "sel" or both).  It may raise Unsupported for a problem it cannot
    take (a failure: the problem is within what it declares).  Outputs pass through the kernel
    ABI's float32 scores and int32 sel.  A failure is shrunk (one batch, the shortest failing
    prefix of positions) and saved under `out` as a vector and an indexer candidate
    (`nsimplex check VECTOR VECTOR.candidate` replays it); its dict in the result's .failures
    says how to run the problem again (reproduce).  Returns a FuzzResult.  An exception raised
    by fn is a kernel error to the fuzzer, and is raised again when the run ends."""
    caps = _idx_caps(outputs, activations, causal_off)
    fmts = _model_formats(model)
    _warn_model(model)
    if FORMATS["f64"] in (fmts["in"], fmts["out"]):
        raise InputError(_lib.E_UNSUPPORTED, "fuzz_indexer: model %s: the kernel ABI passes the indexer's inputs "
                         "and scores as float32, so in or out f64 cannot be fuzzed through it" % model)
    state = {"exc": None}

    @_guarded(state, on_error=2)
    def indexer(pp, iop):
        p, io = pp.contents, iop.contents
        B, L, Hi, di, k = p.B, p.L, p.Hi, p.di, p.topk
        settings = dict(act=IDX_ACT_NAMES[p.act], idx_scale=float(p.idx_scale), Hi=Hi, di=di, topk=k,
                        causal=bool(p.causal))
        t = {"idx_q": _f32_array(io.idx_q, (B, L, Hi, di)), "idx_k": _f32_array(io.idx_k, (B, L, di)),
             "idx_w": _f32_array(io.idx_w, (B, L, Hi))}
        if device is not None or dtype is not None:
            import torch
            t = {key: torch.as_tensor(v).to(device=device or "cpu", dtype=dtype or torch.float32)
                 for key, v in t.items()}
        scores, sel = _indexer_outputs(fn(settings, t), caps)
        if io.scores:
            if scores is None:
                raise InputError(_lib.E_INPUT, "fn returned no scores, but outputs include 'scores'")
            _write(io.scores, scores, (B, L, L), "scores")
        if io.sel:
            if sel is None:
                raise InputError(_lib.E_INPUT, "fn returned no sel, but outputs include 'sel'")
            a = _to_numpy(sel, "sel", np.int32)
            _shape_ok(a, (B, L, k), "sel")
            if a.size:
                ctypes.memmove(io.sel, a.ctypes.data, a.size * 4)
        return 0

    cb = _lib.INDEXER(indexer)
    if out is not None:
        os.makedirs(out, exist_ok=True)
    label = name or getattr(fn, "__name__", "python")
    args = _lib.FuzzIndexerArgs(name=_enc(label), model=_enc(model), caps=caps, indexer=cb, seconds=seconds,
                                seed=seed, start=start, count=count, max_failures=max_failures, out_dir=_enc(out),
                                log=1 if log else 0, verbose=1 if verbose else 0)
    if log:
        sys.stdout.flush()
    summary, err = c_void_p(), _errbuf()
    rc = lib.nsx_py_fuzz_indexer(byref(args), byref(summary), err, 1024)
    s = _lib.take_string(summary)
    if state["exc"] is not None:
        raise state["exc"]
    if rc:
        _raise(rc, err)
    res = FuzzResult(json.loads(s), indexer=True)
    for f in res.failures:
        f["reproduce"] = "nsimplex.fuzz_indexer(%s, seed=%d, start=%d, count=1, model=%r%s%s%s)" % (
            label, seed, f["index"], model, "" if device is None else ", device=%r" % (device,),
            "" if tuple(outputs) == ("scores", "sel") else ", outputs=%r" % (tuple(outputs),),
            "" if causal_off else ", causal_off=False")
    return res
