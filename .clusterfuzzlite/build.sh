#!/bin/bash -eu
# Builds the parser fuzz targets (fuzz/targets/README.md) for ClusterFuzzLite
# or OSS-Fuzz: each target with $CC $CFLAGS, linked with $LIB_FUZZING_ENGINE
# into $OUT/NAME_fuzzer, with NAME_fuzzer.options, NAME_fuzzer.dict and
# NAME_fuzzer_seed_corpus.zip beside it.
#
# In the base-builder image the environment is set.  Locally, from the
# repository root (clang with libFuzzer installed):
#   CC=clang CXX=clang++ CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/cflite-out SRC=.. \
#   .clusterfuzzlite/build.sh
# (the sources are $SRC/nsimplex, as the Dockerfile puts them, else the
# checkout this script lies in).
#
# GMP, MPFR and Jansson are the distribution's shared libraries; the runner
# image does not have them, so they are copied into $OUT/lib and the
# fuzzers find them there through their rpath.
: "${SRC:?}" "${OUT:?}" "${CC:?}" "${LIB_FUZZING_ENGINE:?}"
CXX=${CXX:-clang++}
CFLAGS=${CFLAGS:-}
CXXFLAGS=${CXXFLAGS:-$CFLAGS}
if [ -d "$SRC/nsimplex/fuzz/targets" ]; then
    cd "$SRC/nsimplex"
else
    cd "$(dirname "$0")/.."
fi
mkdir -p "$OUT"
WORKDIR=$(mktemp -d)
trap 'rm -rf "$WORKDIR"' EXIT

# No -Werror here: the image's clang is newer than the project's compilers,
# and a new warning must not stop the fuzzing (make checks -Werror).
NSX_CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Iinclude -I. -I$WORKDIR \
$(pkg-config --cflags jansson)"
LIBS="-lmpfr -lgmp $(pkg-config --libs jansson) -lm -lpthread"
TARGETS="safetensors metadata check vector"

# The golden vectors the check target judges candidates against, as bytes.
sh fuzz/targets/embed.sh $(cat fuzz/targets/check.vectors) > "$WORKDIR/check_vectors.h"

# The library code the targets reach (core ref io oracle) and their support.
objs=()
for f in core/*.c ref/*.c io/*.c oracle/*.c fuzz/targets/common.c; do
    o="$WORKDIR/$(echo "${f%.c}" | tr / _).o"
    $CC $CFLAGS $NSX_CFLAGS -c "$f" -o "$o"
    objs+=("$o")
done

for t in $TARGETS; do
    $CC $CFLAGS $NSX_CFLAGS -c "fuzz/targets/$t.c" -o "$WORKDIR/$t.o"
    # libFuzzer (and AFL's driver) are C++: link with $CXX
    $CXX $CXXFLAGS "$WORKDIR/$t.o" "${objs[@]}" $LIB_FUZZING_ENGINE $LIBS \
        -Wl,-rpath,'$ORIGIN/lib' -o "$OUT/${t}_fuzzer"
    cp "fuzz/targets/$t.options" "$OUT/${t}_fuzzer.options"
    cp "fuzz/targets/$t.dict" "$OUT/${t}_fuzzer.dict"
    rm -f "$OUT/${t}_fuzzer_seed_corpus.zip"
    (cd "fuzz/corpus/$t" && find . -type f | sort | zip -q -j "$OUT/${t}_fuzzer_seed_corpus.zip" -@)
done

# The shared libraries the runner image lacks.
mkdir -p "$OUT/lib"
for lib in $(ldd "$OUT/check_fuzzer" | awk '/libjansson|libmpfr|libgmp/ {print $3}'); do
    cp -L "$lib" "$OUT/lib/"
done
echo "build.sh: $(for t in $TARGETS; do printf '%s_fuzzer ' "$t"; done)in $OUT"
