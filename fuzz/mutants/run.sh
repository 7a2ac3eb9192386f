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
# Environment: NSX_PROG (build/nsimplex), BUDGET (60), SEEDS ("1 2 3 4 5";
# SEED=N alone: that one), SHRINK (20, seconds per failure, first seed
# only), MUTANTS_OUT (build/mutants).
# Exit 1 when a patch no longer applies or does not build (loudly), when a
# mutant is not caught within the budget on some seed, or when the clean
# kernel fails on some seed; a median of 10 s or more is a warning.
set -eu
cd "$(dirname "$0")/../.."
PROG=${NSX_PROG:-build/nsimplex}
BUDGET=${BUDGET:-60}
SEEDS=${SEEDS:-${SEED:-1 2 3 4 5}}
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

# The ISA a mutant's code runs under: a patch that touches the files of one
# ISA only (NAME_avx2.c, NAME_avx512.c) is fuzzed with that ISA forced
# (NSX_ISA), so that its code runs whatever this CPU would choose (an AVX2
# mutant on an AVX-512 machine ran the AVX-512 path and was never
# exercised); empty: the CPU's own choice.
mutant_isa() { # name -> avx2, avx512 or nothing
    [ -f "fuzz/mutants/$1.patch" ] || return 0
    sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "fuzz/mutants/$1.patch" | awk '
        /_avx512\.c$/ {a512 = 1; next} /_avx2\.c$/ {a2 = 1; next} {other = 1}
        END {if (!other && a2 && !a512) print "avx2"; else if (!other && a512 && !a2) print "avx512"}'
}
cpu_has() { # isa -> 0 when this CPU runs it
    case $1 in
    avx2) grep -qw avx2 /proc/cpuinfo ;;
    avx512) grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo &&
        grep -qw avx512vl /proc/cpuinfo ;;
    *) return 0 ;;
    esac
}

# ---- fuzz each one, on each seed
run_one() { # name so seed shrink -> $OUT/name/SEED.{log,rc}
    name=$1 so=$2 seed=$3 shrink=$4 dir=$OUT/$1
    mkdir -p "$dir/out-$seed"
    set +e
    # backward mutants (bwd_*) and the clean backward runs: backward problems only
    case $name in bwd_*|clean-bwd) bwd=--bwd ;; *) bwd= ;; esac
    isa=$(mutant_isa "$name")
    env ${isa:+NSX_ISA=$isa} "$PROG" fuzz --kernel "$so" --seconds "$BUDGET" --seed "$seed" --shrink-seconds "$shrink" \
        --progress 0 --out "$dir/out-$seed" $bwd >"$dir/$seed.log" 2>&1
    echo "$?" >"$dir/$seed.rc"
    set -e
}
median() { [ $# -gt 0 ] || { echo -; return; }; printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

first=${SEEDS%% *}
printf '%-22s %-7s %-28s %7s  %-12s %s\n' mutant caught "seconds (seeds $SEEDS)" median kind "shrunk case (seed $first)"
all_times=""
missed=0
slow=0
for name in $names; do
    times="" row="" caught=yes kind=- shrunk=-
    isa=$(mutant_isa "$name")
    if [ -n "$isa" ] && ! cpu_has "$isa"; then
        printf '%-22s %-7s this CPU lacks %s, the only ISA the patch touches: not exercised here\n' "$name" skipped "$isa"
        continue
    fi
    for seed in $SEEDS; do
        # shrink on the first seed only: the others measure detection
        if [ "$seed" = "$first" ]; then shrink=$SHRINK; else shrink=0; fi
        run_one "$name" "$OUT/$name/libnsimplex_simd.so" "$seed" "$shrink"
        log=$OUT/$name/$seed.log
        if [ "$(cat "$OUT/$name/$seed.rc")" = 1 ]; then
            secs=$(sed -n 's/.*found after \([0-9.]*\) s.*/\1/p' "$log" | head -1)
            times="$times $secs"
            row="$row $secs"
            if [ "$seed" = "$first" ]; then
                kind=$(sed -n 's/^FAIL \(.*\)/\1/p' "$log" | head -1)
                shrunk=$(sed -n 's/.*candidates kept): \(.*\)/\1/p' "$log" | head -1)
            fi
        else
            row="$row NO"
            caught=NO
        fi
    done
    med=$(median $times)
    [ "$caught" = yes ] || missed=$((missed + 1))
    if [ "$med" != "-" ] && awk "BEGIN {exit !($med >= 10)}"; then slow=$((slow + 1)); fi
    all_times="$all_times $times"
    printf '%-22s %-7s %-28s %7s  %-12s %s\n' "$name" "$caught" "$row" "$med" "$kind" "$shrunk"
done

# ---- the unmutated kernel, same budget, every seed
mkdir -p "$OUT/clean"
dirty=0
for seed in $SEEDS; do
    run_one clean "$CLEAN_SO" "$seed" "$SHRINK"
    rc=$(cat "$OUT/clean/$seed.rc")
    summary=$(grep '^nsimplex fuzz: seed' "$OUT/clean/$seed.log" | tail -1)
    printf '%-22s %-7s %s\n' "(unmutated)" "$([ "$rc" = 0 ] && echo clean || echo FAILED)" "$summary"
    [ "$rc" = 0 ] || dirty=$((dirty + 1))
done

# ---- the unmutated backward, same budget, every seed, when a backward mutant ran
case " $names " in *" bwd_"*)
    mkdir -p "$OUT/clean-bwd"
    for seed in $SEEDS; do
        run_one clean-bwd "$CLEAN_SO" "$seed" "$SHRINK"
        rc=$(cat "$OUT/clean-bwd/$seed.rc")
        summary=$(grep '^nsimplex fuzz: seed' "$OUT/clean-bwd/$seed.log" | tail -1)
        printf '%-22s %-7s %s\n' "(unmutated, --bwd)" "$([ "$rc" = 0 ] && echo clean || echo FAILED)" "$summary"
        [ "$rc" = 0 ] || dirty=$((dirty + 1))
    done ;;
esac

count=$(printf '%s\n' $names | wc -l)
echo "mutants: $((count - missed)) of $count caught within ${BUDGET} s on every seed ($SEEDS), median $(median $all_times) s to detect over all runs; logs under $OUT/"
status=0
if [ "$missed" -gt 0 ]; then echo "mutants: FAIL: $missed not caught on every seed" >&2; status=1; fi
if [ "$dirty" -gt 0 ]; then echo "mutants: FAIL: the unmutated kernel did not run clean on $dirty seed(s) (see $OUT/clean/)" >&2; status=1; fi
if [ "$slow" -gt 0 ]; then
    echo "mutants: warning: $slow mutant(s) with a median detection time of 10 s or more (a loaded machine?)" >&2
fi
exit $status
