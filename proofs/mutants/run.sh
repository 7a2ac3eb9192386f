#!/bin/sh
# make prove-mutants: each planted off-by-one of proofs/mutants/list is
# applied to a copy of the sources (build/prove-mutants/NAME/) and the
# mutated function's proof is run there (proofs/prove.sh, PROVE_FNS); it
# must fail.  Prints a table: caught or not, and the goals not proven.
#
#   sh proofs/mutants/run.sh [NAME...]
#
# Environment: as proofs/prove.sh (PROVE_TIMEOUT defaults to 10 here).
# Exit 1 when a mutation no longer applies (changes other than one line of
# its function) or when a mutant's proof passes.
set -eu
cd "$(dirname "$0")/../.."
OUT=build/prove-mutants
export PROVE_TIMEOUT=${PROVE_TIMEOUT:-10}
mkdir -p "$OUT"
lines=$(grep -v '^#' proofs/mutants/list | grep .)
[ $# -gt 0 ] && lines=$(for n in "$@"; do echo "$lines" | awk -v n="$n" '$1 == n'; done)
bad=0
printf '%-22s %-24s %-10s %s\n' mutant function result "goals not proven (first 3)"
echo "$lines" >"$OUT/.list"
while read -r name file fn expr; do
    dir=$OUT/$name
    rm -rf "$dir"
    mkdir -p "$dir/src"
    cp -pR include proofs core ref simd io "$dir/src/"
    sed -e "$expr" "$file" >"$dir/src/$file"
    changed=$(diff "$file" "$dir/src/$file" | grep -c '^>' || true)
    if [ "$changed" -ne 1 ]; then
        echo "prove-mutants: FATAL: $name changes $changed lines of $file (the list no longer matches the sources)" >&2
        exit 1
    fi
    if PROVE_ROOT="$(pwd)/$dir/src" PROVE_OUT="$(pwd)/$dir" PROVE_FNS="$fn" \
        sh proofs/prove.sh "$file" >"$dir/prove.txt" 2>&1; then
        result="NOT-CAUGHT" goals="-"
        bad=1
    else
        result=caught
        goals=$(sed -n 's/^    typed_//p' "$dir/prove.txt" | head -3 | tr '\n' ' ')
        [ -n "$goals" ] || goals="(see $dir/prove.txt)"
    fi
    printf '%-22s %-24s %-10s %s\n' "$name" "$fn" "$result" "$goals"
done <"$OUT/.list"
[ "$bad" -eq 0 ] && echo "prove-mutants: every planted off-by-one makes its proof fail"
[ "$bad" -eq 0 ]
