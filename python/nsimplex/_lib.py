"""ctypes bindings of libnsimplex.so's C entry layer (capi/capi.h, capi/callback.h).

The structures mirror include/nsimplex/kernel.h (the kernel ABI: its forward and indexer entries)
and capi/capi.h's nsx_py_fuzz_args and nsx_py_fuzz_indexer_args field for field: all only ever
grow at the end.
"""
import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_uint, c_uint64, c_void_p)

MAX_ORDER = 8      # NSX_MAX_ORDER
PY_ABI = 5         # NSX_PY_ABI

# Number formats (NSX_FORMAT_* in include/nsimplex/kernel.h); -1 is the model's "none".
FORMATS = {"f64": 0, "f32": 1, "f16": 2, "bf16": 3}
FORMAT_NAMES = {v: k for k, v in FORMATS.items()}

# Feature bits (NSX_FEAT_*) by the names the package takes.
FEATURES = {"windows": 1, "selection": 2, "gqa": 4, "causal_off": 8, "distinct": 16, "biases": 32,
            "sum": 64, "mean": 128, "lse": 256}

REDUCERS = ("product", "sum", "mean")  # NSX_REDUCE_*

# Indexer capabilities (NSX_IDX_*) and activations (NSX_IDX_ACT_*), by the names the package takes.
IDX_WRITES = {"scores": 1, "sel": 2}
IDX_ACTS = {"relu": 4, "softmax": 8, "identity": 16}
IDX_CAUSAL_OFF = 32
IDX_ACT_NAMES = ("relu", "softmax", "identity")

# Error kinds (enum nsx_err_kind in include/nsimplex/error.h).
E_INPUT, E_UNSUPPORTED, E_NOT_APPLICABLE, E_TOO_LARGE = 1, 2, 3, 4


class KernelProblem(Structure):
    _fields_ = [("n", c_int), ("B", c_int), ("L", c_int), ("H", c_int), ("Hkv", c_int), ("d", c_int),
                ("dv", c_int), ("reduce", c_int), ("causal", c_int), ("distinct", c_int),
                ("window", c_int * MAX_ORDER), ("score_scale", c_double), ("out_scale", c_double),
                ("k_bias", c_double * MAX_ORDER), ("v_bias", c_double * MAX_ORDER), ("topk", c_int),
                ("sel_dims", c_uint), ("sel", POINTER(c_int32))]


class KernelIO(Structure):
    _fields_ = [("q", POINTER(c_float)), ("k", POINTER(c_float) * MAX_ORDER),
                ("v", POINTER(c_float) * MAX_ORDER), ("o", POINTER(c_float)), ("lse", POINTER(c_float))]


FORWARD = CFUNCTYPE(c_int, POINTER(KernelProblem), POINTER(KernelIO))


class KernelBwdIO(Structure):  # nsx_kernel_bwd_io
    _fields_ = [("q", POINTER(c_float)), ("k", POINTER(c_float) * MAX_ORDER),
                ("v", POINTER(c_float) * MAX_ORDER), ("o", POINTER(c_float)), ("lse", POINTER(c_float)),
                ("dout", POINTER(c_float)), ("dq", POINTER(c_float)), ("dk", POINTER(c_float) * MAX_ORDER),
                ("dv", POINTER(c_float) * MAX_ORDER)]


BACKWARD = CFUNCTYPE(c_int, POINTER(KernelProblem), POINTER(KernelBwdIO))


class IndexerProblem(Structure):  # nsx_indexer_problem
    _fields_ = [("B", c_int), ("L", c_int), ("Hi", c_int), ("di", c_int), ("act", c_int), ("causal", c_int),
                ("topk", c_int), ("idx_scale", c_double)]


class IndexerIO(Structure):  # nsx_indexer_io
    _fields_ = [("idx_q", POINTER(c_float)), ("idx_k", POINTER(c_float)), ("idx_w", POINTER(c_float)),
                ("scores", POINTER(c_float)), ("sel", POINTER(c_int32))]


INDEXER = CFUNCTYPE(c_int, POINTER(IndexerProblem), POINTER(IndexerIO))
ACCEPT = CFUNCTYPE(c_int, POINTER(KernelProblem))


class FuzzArgs(Structure):
    _fields_ = [("name", c_char_p), ("model", c_char_p), ("max_order", c_int), ("features", c_uint),
                ("forward", FORWARD), ("accept", ACCEPT), ("seconds", c_double), ("seed", c_uint64),
                ("start", c_uint64), ("count", c_uint64), ("max_failures", c_int),
                ("shrink_seconds", c_double), ("out_dir", c_char_p), ("log", c_int), ("progress", c_double),
                ("verbose", c_int), ("shapes", c_int), ("orders", c_uint), ("backward", BACKWARD),
                ("backward_max_order", c_int), ("backward_features", c_uint), ("bwd", c_int)]


class FuzzIndexerArgs(Structure):
    _fields_ = [("name", c_char_p), ("model", c_char_p), ("caps", c_uint), ("indexer", INDEXER),
                ("seconds", c_double), ("seed", c_uint64), ("start", c_uint64), ("count", c_uint64),
                ("max_failures", c_int), ("out_dir", c_char_p), ("log", c_int), ("verbose", c_int)]


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ.get("NSIMPLEX_LIB")
    if env:
        return [env]
    build = os.environ.get("NSIMPLEX_BUILD", "build")
    return [os.path.join(here, "libnsimplex.so"),                     # installed with pip
            os.path.join(here, "..", "..", build, "libnsimplex.so")]  # the build tree


def _load():
    tried = []
    for path in _candidates():
        path = os.path.normpath(path)
        if os.path.exists(path):
            return ctypes.CDLL(path), path
        tried.append(path)
    raise ImportError("nsimplex: libnsimplex.so not found (tried %s); run `make` in the repository, "
                      "or set NSIMPLEX_LIB" % ", ".join(tried))


lib, lib_path = _load()

_sigs = {
    "nsx_py_abi": (c_int, []),
    "nsx_py_version": (c_char_p, []),
    "nsx_py_err_kind_name": (c_char_p, [c_int]),
    "nsx_py_free": (None, [c_void_p]),
    "nsx_py_case_read": (c_int, [c_char_p, POINTER(c_void_p), c_char_p, c_size_t]),
    "nsx_py_case_free": (None, [c_void_p]),
    "nsx_py_case_meta": (c_int, [c_void_p, POINTER(c_void_p), c_char_p, c_size_t]),
    "nsx_py_case_tensor": (c_int, [c_void_p, c_char_p, POINTER(c_void_p), POINTER(c_int), POINTER(c_int),
                                   POINTER(c_int64)]),
    "nsx_py_check": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_char_p, c_char_p, POINTER(c_int),
                             POINTER(c_void_p), POINTER(c_void_p), c_char_p, c_size_t]),
    "nsx_py_check_grads": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_char_p, c_char_p,
                                   POINTER(c_int), POINTER(c_void_p), POINTER(c_void_p), c_char_p, c_size_t]),
    "nsx_py_write_candidate_grads": (c_int, [c_void_p, c_char_p, c_void_p, c_int, c_void_p, c_int, c_void_p,
                                             c_void_p, c_int, c_char_p, c_char_p, c_size_t]),
    "nsx_py_check_indexer": (c_int, [c_void_p, c_void_p, c_void_p, c_char_p, c_char_p, POINTER(c_int),
                                     POINTER(c_void_p), POINTER(c_void_p), c_char_p, c_size_t]),
    "nsx_py_write_candidate": (c_int, [c_void_p, c_char_p, c_void_p, c_int, c_void_p, c_int, c_void_p,
                                       c_char_p, c_char_p, c_size_t]),
    "nsx_py_model": (c_int, [c_char_p, c_char_p, c_size_t, POINTER(c_int), c_char_p, c_size_t]),
    "nsx_py_model_warning": (c_int, [c_char_p, c_char_p, c_size_t]),
    "nsx_py_gen": (c_int, [c_char_p, c_char_p, c_char_p, POINTER(c_uint64), c_char_p, c_size_t]),
    "nsx_py_fuzz": (c_int, [POINTER(FuzzArgs), POINTER(c_void_p), c_char_p, c_size_t]),
    "nsx_py_fuzz_indexer": (c_int, [POINTER(FuzzIndexerArgs), POINTER(c_void_p), c_char_p, c_size_t]),
}
for _name, (_res, _args) in _sigs.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

if lib.nsx_py_abi() != PY_ABI:
    raise ImportError("nsimplex: %s speaks C entry layer %d, this package %d: rebuild with `make`"
                      % (lib_path, lib.nsx_py_abi(), PY_ABI))


def take_string(ptr):
    """The malloc'd C string at ptr as str, freed."""
    if not ptr.value:
        return None
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace")
    finally:
        lib.nsx_py_free(ptr.value)
