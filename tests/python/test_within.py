"""The judges' within-bound predicate (oracle/within.h) on gradients, through the package: an
element whose bound is infinite ("unbounded", docs/ORACLE.md 8.6) judges finiteness only, so a
finite value passes there and a NaN or an infinity fails (it used to pass: inf <= inf)."""
import os
import tempfile

import nsimplex

TMP = os.environ.get("NSX_TMP", tempfile.gettempdir())


def test_unbounded_gradient_elements_judge_finiteness_only():
    d = os.path.join(TMP, "python")
    os.makedirs(d, exist_ok=True)
    # f16 outputs with out_scale 8000: some gradients' |g| + bound pass f16's 65504
    c = nsimplex.gen("n=1 L=3 H=1 Hkv=1 d=4 dv=1 fmt=f16 bwd=1 scale=512 out=8000",
                     os.path.join(d, "within_unbounded.safetensors"))
    a = c.arrays()
    names = ["dq", "dk1", "dv1"]
    grads = {k: a[k] for k in names}
    r = nsimplex.check(c, o=a["o"], lse=a["lse"], grads=grads, model="f16")
    unbounded = r.json["gradients"]["unbounded"]
    assert r.passed and unbounded > 0, r.text
    far_passes = 0
    for name in names:
        for idx in range(grads[name].size):
            for value, must_fail in ((float("nan"), True), (float("inf"), True), (-float("inf"), True),
                                     (1e30, False)):
                g = {k: v.copy() for k, v in grads.items()}
                g[name].flat[idx] = value
                rr = nsimplex.check(c, o=a["o"], lse=a["lse"], grads=g, model="f16")
                if must_fail:
                    assert not rr.passed, "%s[%d] = %r passed" % (name, idx, value)
                else:
                    far_passes += rr.passed
    # a finite value however far passes exactly where the bound is infinite
    assert far_passes == unbounded
