#!/bin/sh
# The mutation matrix (docs/FUZZING.md): each fuzz/mutants/NAME.patch is a
# realistic bug planted in a copy of simd/, built by the project's own
# Makefile into build/mutants/NAME/libnsimplex_simd.so (a kernel behind the
# ABI), and fuzzed with `nsimplex fuzz --kernel` for at most BUDGET seconds.
# Then the unmutated kernel is fuzzed for the same budget and must stay
# clean.  Backward mutants (bwd_*.patch, docs/FUZZING.md 11.4) are fuzzed
# with --bwd, and the unmutated kernel then with --bwd too.  Prints a table: caught or not, seconds to detect, the shrunk case.
#
#   sh fuzz/mutants/run.sh [NAME...]      (make mutants runs them all)
#
# Environment: NSX_PROG (build/nsimplex), BUDGET (60), SEED (1),
# SHRINK (20, seconds per failure), MUTANTS_OUT (build/mutants).
# Exit 1 when a patch no longer applies or does not build (loudly), when a
# mutant is not caught within the budget, or when the clean kernel fails.
set -eu
cd "$(dirname "$0")/../.."
PROG=${NSX_PROG:-build/nsimplex}
BUDGET=${BUDGET:-60}
SEED=${SEED:-1}
SHRINK=${SHRINK:-20}
OUT=${MUTANTS_OUT:-build/mutants}
CLEAN_SO=build/libnsimplex_simd.so

[ -x "$PROG" ] && [ -f "$CLEAN_SO" ] || { echo "mutants: build $PROG and $CLEAN_SO first (make)" >&2; exit 2; }
if [ $# -gt 0 ]; then names="$*"; else names=$(ls fuzz/mutants/*.patch | sed 's|.*/||; s|\.patch$||'); fi

# ---- build every mutant first: a patch that no longer applies stops here
for name in $names; do
    patch_file=$(pwd)/fuzz/mutants/$name.patch
    [ -f "$patch_file" ] || { echo "mutants: no $patch_file" >&2; exit 2; }
    src=$OUT/$name/src
    rm -rf "$OUT/$name"
    mkdir -p "$src/build/simd/abi"
    cp -p Makefile "$src/"
    cp -pR include simd tools proofs "$src/"
    # start from the clean build's objects, so that only the patched files
    # are recompiled (they are newer than these objects once patched)
    if [ -f build/.deps-ok ]; then
        cp -p build/.deps-ok "$src/build/"
        cp -p build/simd/*.o build/simd/*.d "$src/build/simd/" 2>/dev/null || true
        cp -p build/simd/abi/*.o build/simd/abi/*.d "$src/build/simd/abi/" 2>/dev/null || true
    fi
    if ! (cd "$src" && patch -p1 --batch --forward --silent --no-backup-if-mismatch --dry-run <"$patch_file" >/dev/null 2>&1); then
        echo "mutants: FATAL: fuzz/mutants/$name.patch no longer applies to simd/ (regenerate it against the current sources)" >&2
        exit 1
    fi
    (cd "$src" && patch -p1 --batch --forward --silent --no-backup-if-mismatch <"$patch_file")
    if ! make -s -C "$src" SAN=0 BUILD=build build/libnsimplex_simd.so >"$OUT/$name/build.log" 2>&1; then
        echo "mutants: FATAL: mutant $name does not build (see $OUT/$name/build.log)" >&2
        tail -5 "$OUT/$name/build.log" >&2
        exit 1
    fi
    cp "$src/build/libnsimplex_simd.so" "$OUT/$name/libnsimplex_simd.so"
done

# ---- fuzz each one
run_one() { # name so -> prints "caught seconds kind|shrunk" into $OUT/name/result
    name=$1 so=$2 dir=$OUT/$name
    mkdir -p "$dir/out"
    set +e
    # backward mutants (bwd_*) and the clean backward run: backward problems only
    case $name in bwd_*|clean-bwd) bwd=--bwd ;; *) bwd= ;; esac
    "$PROG" fuzz --kernel "$so" --seconds "$BUDGET" --seed "$SEED" --shrink-seconds "$SHRINK" \
        --progress 0 --out "$dir/out" $bwd >"$dir/fuzz.log" 2>&1
    rc=$?
    set -e
    echo "$rc" >"$dir/rc"
}

printf '%-20s %-7s %9s  %-12s %s\n' mutant caught seconds kind "shrunk case"
times=""
missed=0
for name in $names; do
    run_one "$name" "$OUT/$name/libnsimplex_simd.so"
    log=$OUT/$name/fuzz.log
    rc=$(cat "$OUT/$name/rc")
    if [ "$rc" = 1 ]; then
        secs=$(sed -n 's/.*found after \([0-9.]*\) s.*/\1/p' "$log" | head -1)
        kind=$(sed -n 's/^FAIL \(.*\)/\1/p' "$log" | head -1)
        shrunk=$(sed -n 's/.*candidates kept): \(.*\)/\1/p' "$log" | head -1)
        printf '%-20s %-7s %9s  %-12s %s\n' "$name" yes "$secs" "$kind" "$shrunk"
        times="$times $secs"
    else
        printf '%-20s %-7s %9s  %-12s %s\n' "$name" NO "-" "-" "(exit $rc; see $log)"
        missed=$((missed + 1))
    fi
done

# ---- the unmutated kernel, same budget
mkdir -p "$OUT/clean"
run_one clean "$CLEAN_SO"
rc=$(cat "$OUT/clean/rc")
summary=$(grep '^nsimplex fuzz: seed' "$OUT/clean/fuzz.log" | tail -1)
printf '%-20s %-7s %9s  %s\n' "(unmutated)" "$([ "$rc" = 0 ] && echo clean || echo FAILED)" "$BUDGET" "$summary"

# ---- the unmutated backward, same budget, when a backward mutant ran
case " $names " in *" bwd_"*)
    mkdir -p "$OUT/clean-bwd"
    run_one clean-bwd "$CLEAN_SO"
    brc=$(cat "$OUT/clean-bwd/rc")
    bsummary=$(grep '^nsimplex fuzz: seed' "$OUT/clean-bwd/fuzz.log" | tail -1)
    printf '%-20s %-7s %9s  %s\n' "(unmutated, --bwd)" "$([ "$brc" = 0 ] && echo clean || echo FAILED)" "$BUDGET" "$bsummary"
    [ "$brc" = 0 ] || rc=$brc ;;
esac

median=$(printf '%s\n' $times | sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}')
count=$(printf '%s\n' $names | wc -l)
echo "mutants: $((count - missed)) of $count caught within ${BUDGET} s, median $median s to detect (seed $SEED); logs under $OUT/"
status=0
if [ "$missed" -gt 0 ]; then echo "mutants: FAIL: $missed not caught" >&2; status=1; fi
if [ "$rc" != 0 ]; then echo "mutants: FAIL: the unmutated kernel did not run clean (see $OUT/clean/fuzz.log)" >&2; status=1; fi
if [ "$median" != "-" ] && awk "BEGIN {exit !($median >= 10)}"; then
    echo "mutants: warning: median detection time $median s is not under 10 s (a loaded machine?)" >&2
fi
exit $status
