# nsimplex: reference, golden vectors, oracle, SIMD kernel and fuzzer for
# n-simplicial attention.  See README.md.
#
#   make              build build/nsimplex and build/libnsimplex.a
#   make check        build and run the tests (add SAN=1 for ASan + UBSan)
#   make demo         the main job on its built-in default (README.md)
#
# Sources are found by folder, so a new file needs no edit here:
#   core/ ref/ io/ oracle/ simd/ vectors/ fuzz/   -> libnsimplex.a
#   cli/                                          -> the nsimplex program
#   tests/test_*.c                                -> one Check runner each

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
STD      := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror
CPPFLAGS += -Iinclude -I. -MMD -MP
OMP      := -fopenmp
LDLIBS   += -lmpfr -lgmp -lcjson -lm -lpthread -ldl

ifeq ($(SAN),1)
BUILD    := build-san
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

LIB_DIRS := core ref io oracle simd vectors fuzz
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_SUP := $(filter-out tests/test_%,$(wildcard tests/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
SUP_OBJ  := $(TEST_SUP:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

LIB      := $(BUILD)/libnsimplex.a
PROG     := $(BUILD)/nsimplex
DEPS_OK  := $(BUILD)/.deps-ok

# One ISA per file, each compiled for its own instruction set only.
$(BUILD)/simd/%_avx512.o: ISA := -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx2 -mf16c
$(BUILD)/simd/%_avx2.o:   ISA := -mavx2 -mfma -mf16c
$(BUILD)/simd/%.o:        XFLAGS := $(OMP) -fPIC
$(BUILD)/ref/%.o:         XFLAGS :=

.PHONY: all check demo clean deps vectors
# test objects are intermediate files of a pattern chain: keep them
.SECONDARY:
all: $(PROG) $(LIB)

deps: $(DEPS_OK)
$(DEPS_OK): tools/deps.sh
	@mkdir -p $(@D)
	@sh tools/deps.sh
	@touch $@

$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(STD) $(CPPFLAGS) $(CFLAGS) $(ISA) $(XFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(PROG): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $(OMP) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(SUP_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $(OMP) -o $@ $< $(SUP_OBJ) $(LIB) $(shell pkg-config --libs check) $(LDLIBS)

# The tests find the program through NSX_BIN and write under NSX_TMP.
check: $(PROG) $(TESTS)
	@mkdir -p $(BUILD)/tmp
	@fail=0; for t in $(TESTS); do \
	    NSX_BIN=$(CURDIR)/$(PROG) NSX_TMP=$(CURDIR)/$(BUILD)/tmp $$t || fail=1; \
	done; \
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

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SUP_OBJ:.o=.d) $(TESTS:=.d)
