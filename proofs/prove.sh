#!/bin/sh
# make prove: Frama-C WP proves every function of proofs/units against its
# ACSL contract (proofs/spec.h, docs/PROOFS.md), with -wp-rte (no overflow,
# no out-of-bounds access, no division by zero, no bad shift).  Prints the
# goals per function; exit 1 when any goal is not proven, naming it.
#
#   sh proofs/prove.sh [FILE...]     (make prove runs every unit)
#
# Environment: PROVE_ROOT (the tree to prove, default .: the mutants use a
# copy), PROVE_OUT (logs, default build/prove), PROVE_TIMEOUT (seconds per
# goal and prover, 20), PROVE_PROVERS (cvc4,z3), PROVE_PAR (goals at once, 2),
# PROVE_FNS (only these functions, comma-separated: the mutants).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${PROVE_ROOT:-$here}
OUT=${PROVE_OUT:-$here/build/prove}
TIMEOUT=${PROVE_TIMEOUT:-20}
PROVERS=${PROVE_PROVERS:-cvc4,z3}
PAR=${PROVE_PAR:-2}
mkdir -p "$OUT"
# why3's prover list in the build tree, not in $HOME
export WHY3CONFIG="$OUT/why3.conf"
[ -s "$WHY3CONFIG" ] || why3 config detect -C "$WHY3CONFIG" >/dev/null 2>&1
cd "$ROOT"
units=$(grep -v '^#' "$here/proofs/units" | grep .)
[ $# -gt 0 ] && units=$(for f in "$@"; do echo "$units" | awk -v f="$f" '$1 == f'; done)
[ -n "$units" ] || { echo "prove: no unit for: $*" >&2; exit 2; }

fail=0 total=0 proved=0
echo "$units" | while read -r file fns; do echo "$file $fns"; done >"$OUT/.units"
while read -r file fns; do
    [ -n "${PROVE_FNS:-}" ] && fns=$PROVE_FNS
    log="$OUT/$(echo "$file" | tr / _).log"
    set -- -machdep x86_64 -cpp-extra-args="-I$ROOT/include -I$ROOT" "$file" -wp -wp-rte \
        -wp-prover "$PROVERS" -wp-timeout "$TIMEOUT" -wp-par "$PAR"
    frama-c "$@" -wp-fct "$fns" >"$log" 2>&1 || { echo "prove: frama-c failed on $file (see $log)"; fail=1; continue; }
    # the lemmas of the file and of the headers it includes
    frama-c "$@" -wp-prop=@lemma >>"$log" 2>&1 || { echo "prove: frama-c failed on $file's lemmas (see $log)"; fail=1; continue; }
    # one line per goal: "[wp] [PROVER] Goal typed_FN_WHAT : STATUS" or
    # "[wp] [Failed] Goal typed_FN_WHAT" with the provers' answers below
    # each goal belongs to the longest listed function its name starts with
    grep -E 'Goal typed_[A-Za-z0-9_]* *(:|$)' "$log" | awk -v fns="$fns,lemma" -v file="$file" '
        BEGIN { n = split(fns, f, ",") }
        {
            g = $0; sub(/.*Goal typed_/, "", g); ok = (g ~ / : Valid/); sub(/ .*/, "", g)
            best = ""
            for (k = 1; k <= n; k++)
                if (index(g, f[k] "_") == 1 && length(f[k]) > length(best)) best = f[k]
            if (best == "") best = "?"
            goals[best]++; if (ok) valid[best]++
        }
        END {
            for (k = 1; k <= n; k++) {
                if (f[k] == "lemma" && !goals["lemma"]) continue
                printf "  %-14s %-22s %4d / %-4d goals proven\n", file, f[k], valid[f[k]], goals[f[k]]
            }
            if (goals["?"]) printf "  %-14s %-22s %4d / %-4d goals proven\n", file, "(other)", valid["?"], goals["?"]
        }'
    sum=$(grep -E '^\[wp\] Proved goals:' "$log" | sed 's/.*: *//' | awk -F/ '{p += $1; t += $2} END {print p + 0, t + 0}')
    p=${sum% *} t=${sum#* }
    total=$((total + t)) proved=$((proved + p))
    if [ "$p" -ne "$t" ] || [ "$t" -eq 0 ]; then
        fail=1
        echo "prove: $file: $p of $t goals proven; not proven:"
        grep -E 'Goal typed_[A-Za-z0-9_]* *(:|$)' "$log" | grep -v ': Valid' | sed 's/.*Goal /    /'
    fi
done <"$OUT/.units"
echo "prove: $proved / $total goals proven (provers $PROVERS, timeout ${TIMEOUT}s, log $OUT)"
[ "$fail" -eq 0 ] && [ "$proved" -eq "$total" ]
