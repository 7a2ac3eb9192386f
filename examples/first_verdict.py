"""A first verdict on a Triton kernel: the lines below, run from the repository root on a CUDA machine."""
import sys; sys.path[:0] = ["python", "examples"]  # noqa: E702 (not needed after `pip install ./python`)
import nsimplex, torch  # noqa: E401
from triton_simplicial import simplicial_forward
case = nsimplex.load("vectors/default/n2_paper_windows.safetensors")
o, lse = simplicial_forward(case.problem, case.inputs(device="cuda", dtype=torch.float32))
print(nsimplex.check(case, o=o, lse=lse, model="f32"))
print(nsimplex.fuzz(simplicial_forward, seconds=30, model="f32", device="cuda", max_order=2, shapes={"n": (2,)},
                    features=["windows", "gqa", "biases", "lse"]))
