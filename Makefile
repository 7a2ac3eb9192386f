# nsimplex: reference, golden vectors, oracle, SIMD kernel and fuzzer for
# n-simplicial attention.  See README.md.
#
#   make              build build/nsimplex, build/libnsimplex.a and the
#                     shared build/libnsimplex.so (the Python package's)
#   make check        build and run the tests (add SAN=1 for ASan + UBSan)
#   make demo         the main job on its built-in default (README.md)
#   make bench        the SIMD kernel and the SIMD indexer against their PyTorch
#                     CPU peers (installs python3-torch and libopenblas0-pthread
#                     if missing); make bench-indexer: the indexer alone;
#                     make bench-bwd: the backward alone (bench --bwd, autograd peer)
#   make mutants      the fuzzer against each bug planted in simd/ by
#                     fuzz/mutants/*.patch, and the clean kernel (FUZZING.md)
#   make prove        Frama-C WP proofs of the masks, candidate key ranges,
#                     top-k and the safetensors layout checks (installs
#                     frama-c-base, why3, z3 and cvc4 if missing; docs/PROOFS.md)
#   make prove-mutants  each planted off-by-one of proofs/mutants/ must make
#                     the proof fail
#   make fuzz-replay  the parser fuzz targets over their corpora, no libFuzzer
#                     (gcc, ASan + UBSan; seconds): what CI runs
#   make fuzz-parsers the libFuzzer targets (clang) into build-fuzz/, each
#                     run FUZZ_SECONDS (60) seconds (fuzz/targets/README.md)
#
# Sources are found by folder, so a new file needs no edit here:
#   core/ ref/ io/ oracle/ simd/ runner/ vectors/ fuzz/ capi/
#                                                 -> libnsimplex.a, .so
#   cli/                                          -> the nsimplex program
#   tests/test_*.c                                -> one Check runner each

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
STD      := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror
CPPFLAGS += -Iinclude -I. -MMD -MP
OMP      := -fopenmp
LDLIBS   += -lmpfr -lgmp -ljansson -lnettle -lm -lpthread -ldl

ifeq ($(SAN),1)
BUILD    := build-san
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

LIB_DIRS := core ref io oracle simd runner vectors fuzz capi
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_SUP := $(filter-out tests/test_%,$(wildcard tests/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
SUP_OBJ  := $(TEST_SUP:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

LIB      := $(BUILD)/libnsimplex.a
# The same objects as a shared library exporting the C entry layer only
# (capi/capi.h), for python/nsimplex: every library object is -fPIC.
SO       := $(BUILD)/libnsimplex.so
# The SIMD kernel behind the kernel ABI, loadable with dlopen (simd/abi/).
SIMD_SO  := $(BUILD)/libnsimplex_simd.so
SIMD_OBJ := $(filter $(BUILD)/simd/%,$(LIB_OBJ))
ABI_OBJ  := $(BUILD)/simd/abi/abi.o
# The bf16-input path behind the same ABI, declaring its own model (simd/bf16.h).
SIMD_BF16_SO := $(BUILD)/libnsimplex_simd_bf16.so
ABI_BF16_OBJ := $(BUILD)/simd/abi/abi_bf16.o
PROG     := $(BUILD)/nsimplex
DEPS_OK  := $(BUILD)/.deps-ok

# One ISA per file, each compiled for its own instruction set only.
$(BUILD)/simd/%_avx512.o: ISA := -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx2 -mf16c
$(BUILD)/simd/%_avx2.o:   ISA := -mavx2 -mfma -mf16c
$(BUILD)/simd/%_avx512bf16.o: ISA := -mavx512bf16 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx2
$(BUILD)/simd/%.o:        XFLAGS := $(OMP) -fPIC
$(BUILD)/ref/%.o:         XFLAGS :=
# The fast path: no implicit fma (its error-free transformations need
# exactly the roundings written), its hot loops vectorized per ISA.
$(BUILD)/ref/fast.o $(BUILD)/ref/fast_%.o: XFLAGS := -ffp-contract=off
$(BUILD)/ref/fast_kern_%.o: XFLAGS := -ffp-contract=off -O3
$(BUILD)/ref/fast_kern_avx2.o:   ISA := -mavx2 -mfma
$(BUILD)/ref/fast_kern_avx512.o: ISA := -mavx512f -mavx512dq -mavx512vl -mavx2 -mfma
# The backward's driver: its per-row loops (products, folds, scatters) vectorized.
$(BUILD)/simd/backward.o: XFLAGS := $(OMP) -fPIC -O3
# The benchmark's plain-loop baseline stays at -O2 whatever OPT says.
$(BUILD)/simd/naive.o:    XFLAGS := $(OMP) -fPIC -O2

.PHONY: all check demo clean deps vectors bench bench-deps bench-indexer bench-bwd
# test objects are intermediate files of a pattern chain: keep them
.SECONDARY:
all: $(PROG) $(LIB) $(SIMD_SO) $(SIMD_BF16_SO) $(SO)

deps: $(DEPS_OK)
$(DEPS_OK): tools/deps.sh
	@mkdir -p $(@D)
	@sh tools/deps.sh
	@touch $@

$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(CFLAGS) $(ISA) $(XFLAGS) $(PIC) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SIMD_SO): $(ABI_OBJ) $(SIMD_OBJ) simd/abi/exports.map
	$(CC) -shared $(CFLAGS) $(LDFLAGS) $(OMP) -Wl,--version-script=simd/abi/exports.map \
	    -o $@ $(ABI_OBJ) $(SIMD_OBJ) -lm -lpthread

$(SIMD_BF16_SO): $(ABI_BF16_OBJ) $(SIMD_OBJ) simd/abi/exports_bf16.map
	$(CC) -shared $(CFLAGS) $(LDFLAGS) $(OMP) -Wl,--version-script=simd/abi/exports_bf16.map \
	    -o $@ $(ABI_BF16_OBJ) $(SIMD_OBJ) -lm -lpthread

$(LIB_OBJ): PIC := -fPIC
# A build folder from before -fPIC: its library objects are removed once, so
# they are rebuilt with it (.SECONDARY keeps a stamp rule from doing this).
ifeq ($(wildcard $(BUILD)/.pic),)
$(shell rm -f $(LIB_OBJ) $(LIB); mkdir -p $(BUILD) && touch $(BUILD)/.pic)
endif

$(SO): $(LIB_OBJ) capi/exports.map
	$(CC) -shared $(CFLAGS) $(LDFLAGS) $(OMP) -Wl,--version-script=capi/exports.map -o $@ $(LIB_OBJ) $(LDLIBS)

$(PROG): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $(OMP) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(SUP_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $(OMP) -o $@ $< $(SUP_OBJ) $(LIB) $(shell pkg-config --libs check) $(LDLIBS)

# Misbehaving test kernels (tests/kernels/faulty.c), one library per fault;
# never instrumented (under SAN=1 UBSan would report the planted segfault
# and exit 1 itself, before the fault the tests expect).
FAULTS   := segv abort hang exit overflow underflow order0 orderm1 zeros
FAULT_SO := $(FAULTS:%=$(BUILD)/tests/kernels/%.so)
$(BUILD)/tests/kernels/%.so: tests/kernels/faulty.c include/nsimplex/kernel.h
	@mkdir -p $(@D)
	$(CC) $(STD) -Iinclude $(CFLAGS) -fno-sanitize=all -fPIC -shared -DFAULT_$* -o $@ $<
# A float32 kernel with a backward pass (tests/kernels/bwdk.c), honest and
# with planted backward bugs.
BWDKS   := honest scale2 nodelta kmask qleak
BWDK_SO := $(BWDKS:%=$(BUILD)/tests/kernels/bwdk_%.so)
$(BUILD)/tests/kernels/bwdk_%.so: tests/kernels/bwdk.c include/nsimplex/kernel.h
	@mkdir -p $(@D)
	$(CC) $(STD) -Iinclude $(CFLAGS) -fPIC -shared -DPLANT_$* -o $@ $< -lm

# Emulated FP8 indexers (tests/kernels/fp8idx.c), one library per variant.
FP8S     := honest pow2 e5m2 tensor block2x
FP8_SO   := $(FP8S:%=$(BUILD)/tests/kernels/fp8_%.so)
$(BUILD)/tests/kernels/fp8_%.so: tests/kernels/fp8idx.c include/nsimplex/kernel.h
	@mkdir -p $(@D)
	$(CC) $(STD) -Iinclude $(CFLAGS) -fPIC -shared -DFP8_$* -o $@ $< -lm

# The tests find the program through NSX_BIN, the test kernels under
# NSX_TEST_KERNELS, the SIMD kernel's shared
# library through NSX_SIMD_SO, and write under NSX_TMP; then the Python
# package's tests (tests/python, pytest, Debian's python3) over $(SO).
check: $(PROG) $(SIMD_SO) $(SIMD_BF16_SO) $(SO) $(TESTS) $(FAULT_SO) $(FP8_SO) $(BWDK_SO)
	@mkdir -p $(BUILD)/tmp
	@fail=0; for t in $(TESTS); do \
	    NSX_BIN=$(CURDIR)/$(PROG) NSX_SIMD_SO=$(CURDIR)/$(SIMD_SO) NSX_SIMD_BF16_SO=$(CURDIR)/$(SIMD_BF16_SO) \
	    NSX_TEST_KERNELS=$(CURDIR)/$(BUILD)/tests/kernels \
	    NSX_TMP=$(CURDIR)/$(BUILD)/tmp $$t || fail=1; \
	done; \
	$(if $(filter 1,$(SAN)),echo "make check: the Python package's tests skipped under SAN=1 (python cannot load an ASan library)";,\
	NSX_BIN=$(CURDIR)/$(PROG) NSX_BUILD=$(BUILD) NSX_TMP=$(CURDIR)/$(BUILD)/tmp PYTHONDONTWRITEBYTECODE=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/python || fail=1;) \
	if [ $$fail -ne 0 ]; then echo "make check: FAILED"; exit 1; fi; \
	echo "make check: all tests passed ($(BUILD))"

# Golden vectors: the default suite into vectors/, in shards (make -j vectors),
# then the manifest from the files.
SHARDS   ?= 4
SHARD_GOALS := $(addprefix vectors-shard-,$(shell seq 1 $(SHARDS)))
.PHONY: $(SHARD_GOALS)
vectors: $(SHARD_GOALS)
	$(PROG) gen --manifest --out vectors
$(SHARD_GOALS): vectors-shard-%: $(PROG)
	@$(PROG) gen --shard $*/$(SHARDS) --out vectors

# The peer needs PyTorch and a BLAS from Debian; deps.sh installs them once,
# for Debian's own interpreter (a python3 earlier on PATH may not see them).
PYTHON   ?= /usr/bin/python3
bench-deps:
	@NSX_DEPS_EXTRA="python3-torch libopenblas0-pthread" sh tools/deps.sh

# The shapes of bench/run.py (n = 2 paper windows at d = 64 and 128, w = 128, 128;
# n = 1 at L = 4096, d = 128, dense causal and top-k 2048): C kernel, PyTorch peer, ratio.
bench: $(PROG) $(SIMD_SO) bench-deps
	$(PYTHON) bench/run.py --prog $(PROG) --so $(SIMD_SO)

# The backward part of bench alone: bench --bwd and its PyTorch autograd peer.
bench-bwd: $(PROG) $(SIMD_SO) bench-deps
	$(PYTHON) bench/run.py --prog $(PROG) --so $(SIMD_SO) --backward-only

# The indexer part of bench alone: the SIMD indexer and its PyTorch peer at
# DeepSeek V3.2's shape (L 4096, Hi 64, di 128, top-k 2048).
bench-indexer: $(PROG) $(SIMD_SO) bench-deps
	$(PYTHON) bench/run.py --prog $(PROG) --so $(SIMD_SO) --indexer-only

# The main job on its built-in default (README.md): vectors from the
# reference, verified, and the SIMD kernel judged against every one.
demo: $(PROG)
	@sh tools/demo.sh $(PROG) $(BUILD)/demo

# The mutation matrix: each fuzz/mutants/NAME.patch applied to a copy of
# simd/, built into build/mutants/NAME/ and fuzzed (docs/FUZZING.md); fails
# loudly when a patch no longer applies.  BUDGET=60 SEEDS="1 2 3 4 5" by default.
.PHONY: mutants
mutants: $(PROG) $(SIMD_SO)
	@sh fuzz/mutants/run.sh
	@NSX_PROG=fuzz/mutants/indexer/nsimplex-indexer MUTANTS_OUT=build/mutants-idx sh fuzz/mutants/run.sh \
	    $(patsubst fuzz/mutants/%.patch,%,$(wildcard fuzz/mutants/indexer/*.patch))

# ---- proofs (docs/PROOFS.md) ----
# The provers are Debian packages like the rest, installed by deps.sh when a
# proof target first runs; make and make check do not need them.
.PHONY: prove prove-deps prove-mutants
prove-deps:
	@NSX_DEPS_EXTRA="frama-c-base why3 z3 cvc4" sh tools/deps.sh
prove: prove-deps
	@sh proofs/prove.sh
prove-mutants: prove-deps
	@sh proofs/mutants/run.sh

# ---- parser fuzzing (fuzz/targets/README.md) ----
# One LLVMFuzzerTestOneInput per target (fuzz/targets/NAME.c), linked either
# with replay.c (a plain main that runs the corpus: fuzz-replay, in
# build-san/ with ASan + UBSan) or with libFuzzer (fuzz-parsers, in
# build-fuzz/ with clang).  The targets need core/ ref/ io/ oracle/ only.
FUZZ_TARGETS := safetensors metadata check vector
FUZZ_LIB_OBJ := $(foreach d,core ref io oracle,$(filter $(BUILD)/$(d)/%,$(LIB_OBJ)))
FUZZ_SUP_OBJ := $(BUILD)/fuzz/targets/common.o
# The golden vectors the check target embeds (fuzz/targets/check.c), in order.
FUZZ_VECTORS := $(shell cat fuzz/targets/check.vectors)
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SECONDS ?= 60
# Prefix of each fuzzing run: keep it off the other users of the machine
# (e.g. FUZZ_WRAP="nice -n 19 taskset -c 1").
FUZZ_WRAP    ?= nice -n 19

.PHONY: fuzz-replay fuzz-replay-run fuzz-parsers fuzz-parsers-build fuzz-deps fuzz-seeds \
        fuzz-coverage fuzz-coverage-run

$(BUILD)/fuzz/targets/check_vectors.h: fuzz/targets/embed.sh fuzz/targets/check.vectors $(FUZZ_VECTORS)
	@mkdir -p $(@D)
	sh fuzz/targets/embed.sh $(FUZZ_VECTORS) > $@.tmp && mv $@.tmp $@
$(BUILD)/fuzz/targets/check.o: $(BUILD)/fuzz/targets/check_vectors.h
$(BUILD)/fuzz/targets/check.o: CPPFLAGS += -I$(BUILD)/fuzz/targets

$(BUILD)/fuzz/%_replay: $(BUILD)/fuzz/targets/%.o $(BUILD)/fuzz/targets/replay.o $(FUZZ_SUP_OBJ) $(FUZZ_LIB_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%_fuzzer: $(BUILD)/fuzz/targets/%.o $(FUZZ_SUP_OBJ) $(FUZZ_LIB_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-replay:
	@$(MAKE) --no-print-directory SAN=1 fuzz-replay-run
fuzz-replay-run: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%_replay)
	@for t in $(FUZZ_TARGETS); do $(BUILD)/fuzz/$${t}_replay fuzz/corpus/$$t || exit 1; done

fuzz-deps:
	@NSX_DEPS_EXTRA="clang libclang-rt-dev" sh tools/deps.sh

# Each target's options (max_len, rss_limit_mb, ...) come from
# fuzz/targets/NAME.options, its dictionary from NAME.dict; new inputs go to
# build-fuzz/corpus/NAME, crashes to build-fuzz/NAME-crash-*.
fuzz-parsers: fuzz-deps
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
	    CFLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" LDFLAGS="$(FUZZ_SAN)" fuzz-parsers-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    opts=$$(sed -n 's/^\([a-z_]*\) *= *\(.*\)/-\1=\2/p' fuzz/targets/$$t.options); \
	    echo "== $$t: $(FUZZ_SECONDS) s"; \
	    $(FUZZ_WRAP) $(FUZZ_BUILD)/$${t}_fuzzer $$opts -dict=fuzz/targets/$$t.dict \
	        -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/$$t-crash- \
	        $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t || exit 1; \
	done
fuzz-parsers-build: $(FUZZ_TARGETS:%=$(BUILD)/%_fuzzer)

# Line and branch coverage of io/ and oracle/ by each committed corpus (the
# replay drivers built with clang's source-based coverage): where the
# corpora do not reach.  Extra corpus directories: FUZZ_COV_EXTRA=DIR (one
# per target, DIR/NAME).
FUZZ_COV_BUILD ?= $(FUZZ_BUILD)/cov
LLVM_PROFDATA  ?= llvm-profdata
LLVM_COV       ?= llvm-cov
fuzz-coverage:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_COV_BUILD) CC=$(FUZZ_CC) \
	    CFLAGS="-O1 -g -fprofile-instr-generate -fcoverage-mapping" \
	    LDFLAGS="-fprofile-instr-generate" fuzz-coverage-run
fuzz-coverage-run: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%_replay)
	@for t in $(FUZZ_TARGETS); do \
	    rm -f $(BUILD)/$$t.profraw; \
	    LLVM_PROFILE_FILE=$(BUILD)/$$t.profraw $(BUILD)/fuzz/$${t}_replay fuzz/corpus/$$t \
	        $(if $(FUZZ_COV_EXTRA),$(FUZZ_COV_EXTRA)/$$t) >/dev/null || exit 1; \
	    $(LLVM_PROFDATA) merge -o $(BUILD)/$$t.profdata $(BUILD)/$$t.profraw || exit 1; \
	    echo "== $$t"; \
	    $(LLVM_COV) report $(BUILD)/fuzz/$${t}_replay -instr-profile=$(BUILD)/$$t.profdata \
	        $(wildcard io/*.c oracle/*.c) || exit 1; \
	done

# The seed corpora of the metadata, check and vector targets, regenerated
# from the committed vectors and the attack tables of fuzz/targets/seeds.c.
fuzz-seeds: $(BUILD)/fuzz/seeds
	rm -f fuzz/corpus/metadata/*.json fuzz/corpus/check/*.safetensors fuzz/corpus/vector/*.safetensors
	$(BUILD)/fuzz/seeds fuzz/corpus
$(BUILD)/fuzz/seeds: $(BUILD)/fuzz/targets/seeds.o $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(ABI_OBJ:.o=.d) $(ABI_BF16_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SUP_OBJ:.o=.d) $(TESTS:=.d) \
         $(wildcard $(BUILD)/fuzz/targets/*.d)
