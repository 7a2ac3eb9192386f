#!/bin/sh
# The Python package on a CUDA machine (issue 14): the Triton example (examples/triton_simplicial.py)
# on every applicable golden vector and through nsimplex.fuzz, in float32 (--model f32), in bf16
# (--model bf16), with tl.dot on float32 (TF32: expected to FAIL under f32), and the plain torch
# einsum example (examples/torch_check.py) on CUDA.  Each run's output goes to $OUT/NAME.txt, fuzz
# failures to $OUT/fuzz-NAME/, the environment to $OUT/env.txt, a summary to $OUT/summary.txt.
#
#   sh examples/gpu_run.sh              # about 6 minutes on an H100 (SECONDS_EACH=60 of fuzzing per run)
#
# It needs python3 with torch and triton, and build/libnsimplex.so: built here by make when the
# build tools are present, else carried from the build machine (its ldd is printed when it does
# not load).
set -u
OUT=${OUT:-gpu-out}
SECONDS_EACH=${SECONDS_EACH:-60}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
{
    date -u
    nvidia-smi 2>&1 | head -15
    $PY -c "import sys, numpy, torch, triton; print(sys.version); print('numpy', numpy.__version__, 'torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
if [ ! -e build/libnsimplex.so ]; then
    make -j"$(nproc)" build/libnsimplex.so build/nsimplex > "$OUT/make.txt" 2>&1 || { tail -20 "$OUT/make.txt"; exit 2; }
fi
if ! $PY -c "import sys; sys.path.insert(0, 'python'); import nsimplex" 2> "$OUT/import.txt"; then
    cat "$OUT/import.txt"; ldd build/libnsimplex.so; exit 2
fi

: > "$OUT/summary.txt"
run() { # NAME LIMIT COMMAND...
    name=$1; limit=$2; shift 2
    start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    rc=$?
    echo "$name: exit $rc in $(( $(date +%s) - start )) s: $*" | tee -a "$OUT/summary.txt"
    grep -E "vectors judged|vectors, |^nsimplex fuzz \(|^FAIL" "$OUT/$name.txt" | head -8 | tee -a "$OUT/summary.txt"
}
run triton-f32 170 $PY examples/triton_simplicial.py --model f32 --dtype float32 --seconds "$SECONDS_EACH" --out "$OUT/fuzz-triton-f32"
run triton-bf16 170 $PY examples/triton_simplicial.py --model bf16 --dtype bfloat16 --seconds "$SECONDS_EACH" --out "$OUT/fuzz-triton-bf16"
run triton-tf32-dot 100 $PY examples/triton_simplicial.py --dot --model f32 --dtype float32 --seconds 20 --out "$OUT/fuzz-triton-tf32"
run torch-einsum 120 $PY examples/torch_check.py --seconds "$SECONDS_EACH" --out "$OUT/fuzz-torch" vectors/default/*.safetensors
