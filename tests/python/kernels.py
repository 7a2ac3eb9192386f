"""Kernels for the Python package's tests, written here in numpy: honest emulations of a
float64, a float32 and a bf16-rounding kernel, and planted bugs.  A deliberate independent
implementation of E1-E6 (docs/SPEC.md), not nsimplex's: it is the code under test.

Every kernel is fn(problem, tensors) -> (o, lse), the package's kernel interface.
"""
import numpy as np


def bf16_round(x):
    """float32 values rounded to nearest-even bf16, held in float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, r)


def tf32_truncate(x):
    """float32 values truncated to TF32 (10 significand bits), as tensor cores read float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return (x.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)


def allowed(p, sel_b, leak=False, window_off_by_one=False):
    """The mask (E2) of one batch as a bool array [L(i), L(j1), ..., L(jn)]."""
    n, L = p.n, p.L
    i = np.arange(L).reshape(L, 1)
    j = np.arange(L).reshape(1, L)
    member = None
    if p.topk:
        member = np.zeros((L, L + 1), dtype=bool)
        s = np.where((sel_b >= 0) & (sel_b < L), sel_b, L)
        member[np.arange(L)[:, None], s] = True
        member = member[:, :L]
    mask = np.ones((L,) * (n + 1), dtype=bool)
    for m in range(n):
        ok = np.ones((L, L), dtype=bool)
        w = p.windows[m]
        if p.causal and not (leak and m == n - 1 and n > 1):
            ok &= j <= i
        if w > 0:
            ok &= (i - w <= j) if window_off_by_one else (i - w < j)
            if not p.causal:
                ok &= j < i + w
        if member is not None and (m + 1) in p.sel_dims:
            ok &= member
        shape = [L] + [1] * n
        shape[1 + m] = L
        mask &= ok.reshape(shape)
    if p.distinct:
        for a in range(n):
            for b in range(a + 1, n):
                sa, sb = [1] * (n + 1), [1] * (n + 1)
                sa[1 + a], sb[1 + b] = L, L
                mask &= np.arange(L).reshape(sa) != np.arange(L).reshape(sb)
    return mask


def simplicial(p, t, dt=np.float64, out_round=None, scale=None, operand=None, lse_form="ln", **bugs):
    """O [B,L,H,dv] and LSE [B,H,L] computed in dt; o rounded by out_round (a function) if given."""
    with np.errstate(all="ignore"):
        return _simplicial(p, t, dt, out_round, scale, operand or (lambda x: x), lse_form, **bugs)


# log2(e) as FBGEMM's Triton forward folds it into the score scale (simplicial/ops/triton/fwd.py)
FBGEMM_LOG2E = 1.44269504


def _simplicial(p, t, dt, out_round, scale, operand, lse_form, **bugs):
    """operand: the conversion of the GEMM operands (the left score operand, the last key, the
    weights and the reduced values), identity by default.  lse_form "ln" computes in natural
    units; "mixed" and "log2" as FBGEMM's Triton forward does: log2(e) folded into the scale, the
    scores, max and exponentials in base 2 (exp2), and the stored LSE the max in log2 units plus
    the natural log ("mixed", what FBGEMM stores) or the log2 ("log2") of the sum."""
    base2 = lse_form != "ln"
    n, B, L, H, dv = p.n, p.B, p.L, p.H, p.dv
    s = dt((p.score_scale if scale is None else scale(p)) * (FBGEMM_LOG2E if base2 else 1))
    kvh = np.arange(H) // p.groups
    q = np.asarray(t["q"], dtype=dt)
    ks = [np.asarray(k, dtype=dt) + dt(b) for k, b in zip(t["k"], p.k_bias)]
    vs = [np.asarray(v, dtype=dt) + dt(b) for v, b in zip(t["v"], p.v_bias)]
    o = np.zeros((B, L, H, dv), dtype=dt)
    lse = np.full((B, H, L), -np.inf, dtype=dt)
    for b in range(B):
        mask = allowed(p, t["sel"][b] if p.topk else None, **bugs).reshape(L, -1)
        for h in range(H):
            g = kvh[h]
            u = q[b, :, h, :]                                  # [i, l]
            for m in range(n - 1):                             # [i, j1..jm+1, l]
                u = u[..., None, :] * ks[m][b, :, g, :].reshape((1,) * (m + 1) + (L, -1))
            T = (operand(u.reshape(-1, p.d)) @ operand(ks[n - 1][b, :, g, :]).T).reshape(L, -1) * s  # [i, J]
            T = np.where(mask, T, dt(-np.inf))
            mx = T.max(axis=1, keepdims=True)
            empty = ~mask.any(axis=1)
            mx = np.where(empty[:, None], dt(0), mx)
            e = np.exp2(T - mx) if base2 else np.exp(T - mx)
            den = e.sum(axis=1)
            A = e / np.where(empty, dt(1), den)[:, None]
            W = None
            for m in range(n):                                 # W [J, c]
                v = vs[m][b, :, g, :].reshape((1,) * m + (L,) + (1,) * (n - 1 - m) + (dv,))
                if W is None:
                    W = v
                elif p.reduce == "product":
                    W = W * v
                else:
                    W = W + v
            W = np.broadcast_to(W, (L,) * n + (dv,)).reshape(-1, dv)
            if p.reduce == "mean":
                W = W / dt(n)
            # a kernel never reads a masked tuple: values that are not finite (the futures of
            # leak pairs) would turn its zero weight into NaN here
            W = np.where(np.isfinite(W), W, dt(0))
            o[b, :, h, :] = (operand(A) @ operand(W)) * dt(p.out_scale)
            log = np.log2 if lse_form == "log2" else np.log
            lse[b, h, :] = np.where(empty, -np.inf, mx[:, 0] + log(np.where(empty, dt(1), den)))
    o = o.astype(np.float32)
    if out_round is not None:
        o = out_round(o)
    return o, lse.astype(np.float32)


# honest kernels, and the model each is judged by
def honest_f64(p, t):
    """binary64 arithmetic, o rounded to bf16: passes the default model (bf16)."""
    return simplicial(p, t, np.float64, out_round=bf16_round)


def honest_f32(p, t):
    """float32 arithmetic throughout: passes the model f32."""
    return simplicial(p, t, np.float32)


def honest_tf32(p, t):
    """float32 arithmetic with the GEMM operands truncated to TF32, as Triton's tl.dot on float32
    does by default: passes the model triton-f32, fails f32."""
    return simplicial(p, t, np.float32, operand=tf32_truncate)


def fbgemm_lse(p, t):
    """float32 arithmetic in base 2, storing the max in log2 units plus the natural log of the sum,
    as FBGEMM's Triton forward does: passes f32,lseform=mixed."""
    return simplicial(p, t, np.float32, lse_form="mixed")


def log2_lse(p, t):
    """the same, storing the max in log2 units plus the log2 of the sum: passes f32,lseform=log2."""
    return simplicial(p, t, np.float32, lse_form="log2")


def bf16_operands(p, t):
    """float32 arithmetic with the GEMM operands rounded to bf16: beyond triton-f32."""
    return simplicial(p, t, np.float32, operand=bf16_round)


# planted bugs
def leak(p, t):
    """the causal mask applied to every key dimension but the last."""
    return simplicial(p, t, np.float64, out_round=bf16_round, leak=True)


def wrong_scale(p, t):
    """the score scale taken as 1/d whatever the problem says."""
    return simplicial(p, t, np.float64, out_round=bf16_round, scale=lambda p: 1.0 / p.d)


def window_off_by_one(p, t):
    """a window of w admits w + 1 keys (i - w <= j)."""
    return simplicial(p, t, np.float64, out_round=bf16_round, window_off_by_one=True)


MUTANTS = {"leak": leak, "wrong_scale": wrong_scale, "window_off_by_one": window_off_by_one}
