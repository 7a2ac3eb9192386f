#!/bin/sh
# make demo: the main job on its built-in default.  Generates the default
# suite of golden vectors from the MPFR reference, verifies it, then runs
# the SIMD kernel on every vector and judges it with `nsimplex check` under
# the precision model the kernel declares (float32).
set -u
prog=${1:-build/nsimplex}
dir=${2:-build/demo}
rm -rf "$dir" && mkdir -p "$dir/candidates" || exit 2

echo "== 1. golden vectors from the reference: $prog gen --out $dir/vectors"
"$prog" gen --out "$dir/vectors" > "$dir/gen.log" || { cat "$dir/gen.log"; exit 1; }
tail -n 1 "$dir/gen.log"
if cmp -s "$dir/vectors/MANIFEST.json" vectors/MANIFEST.json; then
    echo "   identical to the committed vectors/ (same sha256 for every file)"
else
    echo "   differs from the committed vectors/: run make vectors"
fi

echo "== 2. $prog verify --all: checksums, expected values recomputed"
"$prog" verify "$dir/vectors" --all | tail -n 1 || exit 1

echo "== 3. the SIMD kernel on every vector (eval --impl simd, then check)"
pass=0 fail=0 na=0
for v in "$dir"/vectors/default/*.safetensors; do
    case_name=$(basename "$v" .safetensors)
    c="$dir/candidates/$case_name.safetensors"
    if ! "$prog" eval "$v" --impl simd --out "$c" 2> "$dir/err.txt"; then
        echo "   FAIL  $case_name: $(cat "$dir/err.txt")"
        fail=$((fail + 1))
        continue
    fi
    "$prog" check "$v" "$c" > "$dir/check.txt" 2> "$dir/err.txt"
    case $? in
    0) pass=$((pass + 1)); printf '   pass  %-24s %s\n' "$case_name" "$(tail -n 1 "$dir/check.txt" | sed 's/^PASS: every check passed; //')" ;;
    1) fail=$((fail + 1)); printf '   FAIL  %-24s %s\n' "$case_name" "$(tail -n 1 "$dir/check.txt")" ;;
    *) na=$((na + 1)); printf '   n/a   %-24s %s\n' "$case_name" "$(sed 's/.*not applicable/not applicable/' "$dir/err.txt" | cut -c1-100)" ;;
    esac
done
echo "== $pass passed, $fail failed, $na not applicable (ISA: ${NSX_ISA:-the CPU's best}; NSX_ISA=avx2|scalar forces another)"
[ "$fail" -eq 0 ]
