/*
 * The golden suites: each case is a name, a recipe (vectors/recipe.h) and a
 * sentence.  The flags are derived from what a case holds (vectors/build.c)
 * and listed in docs/VECTORS.md.
 *
 * "default" is committed under vectors/default/: small shapes, every
 * feature, a few MB.  "large" has shapes closer to real models and is
 * generated on demand (`nsimplex gen --suite large`).
 */
#include <string.h>

#include "vectors/suites.h"

static const nsx_suite_case default_cases[] = {
    /* order 1: ordinary attention */
    {"n1_dense", "n=1 L=16 H=2 d=8 probe=all", "ordinary causal attention, two heads"},
    {"n1_gqa4_causal_off", "n=1 L=12 H=4 Hkv=1 d=8 causal=0", "non-causal attention, four query heads per kv head"},
    {"n1_window", "n=1 L=16 d=8 w=5 probe=all leak=random:9", "sliding-window attention"},
    {"n1_f32", "n=1 L=12 H=2 d=8 fmt=f32 leak=random:5", "float32 inputs"},
    {"n1_leaks", "n=1 L=16 d=8 leak=random:4 leak=huge:7 leak=nan:9 leak=inf:12",
     "one leak pair of each kind of future"},
    {"n1_subnormal", "n=1 L=12 d=8 dist=subnormal", "values in the subnormal range of bf16"},
    {"n1_dsa_relu", "n=1 L=24 H=2 d=8 sel=indexer act=relu k=6 Hi=4 di=8 probe=all leak=random:11",
     "DeepSeek sparse attention: relu indexer, top-6"},

    /* order 2: 2-simplicial attention */
    {"n2_dense", "n=2 L=16 H=2 d=8 probe=all", "dense causal 2-simplicial attention"},
    {"n2_paper_windows", "n=2 L=24 H=2 d=8 w=12,4 probe=all leak=random:11",
     "sliding windows w1 > w2 as in the 2-simplicial paper"},
    {"n2_reversed_windows", "n=2 L=24 d=8 w=4,12 probe=all", "sliding windows w1 < w2"},
    {"n2_window_one", "n=2 L=12 d=8 w=1,5 probe=all", "w1 = 1: the first key is the query's own position"},
    {"n2_window_wide", "n=2 L=12 d=8 w=20,12", "windows at least L: no restriction"},
    {"n2_causal_off", "n=2 L=10 d=8 causal=0", "non-causal, no windows"},
    {"n2_causal_off_windows", "n=2 L=12 d=8 causal=0 w=3,5", "non-causal two-sided windows"},
    {"n2_distinct", "n=2 L=12 d=8 distinct=1 probe=all", "distinct keys only (non-degenerate triangles)"},
    {"n2_gqa2", "n=2 L=12 H=4 Hkv=2 d=8 w=6,3", "two query heads per kv head"},
    {"n2_gqa4", "n=2 L=12 H=4 Hkv=1 d=8 probe=all", "four query heads per kv head"},
    {"n2_meta_biases", "n=2 L=16 H=2 d=8 w=8,4 kb=0,1/d vb=0,1 probe=all",
     "k2 + 1/d and v2 + 1, the defaults of Meta's public reference"},
    {"n2_biases", "n=2 L=12 d=8 kb=0.25,-0.5 vb=1,-1", "biases on both projections"},
    {"n2_sum", "n=2 L=12 d=8 reduce=sum w=8,3 probe=all", "sum reducer"},
    {"n2_mean", "n=2 L=12 d=8 reduce=mean", "mean reducer"},
    {"n2_scales", "n=2 L=12 d=8 scale=0.5 out=0.125", "explicit score scale and output scale"},
    {"n2_odd_sizes", "n=2 L=13 d=7 dv=5 w=9,4", "L, d, dv not multiples of a vector width; s = 1/sqrt(7)"},
    {"n2_d64", "n=2 L=12 d=64 w=8,4", "head width 64"},
    {"n2_f16", "n=2 L=16 d=8 w=8,4 fmt=f16 probe=all", "binary16 inputs"},
    {"n2_f32", "n=2 L=16 d=8 w=8,4 fmt=f32 probe=all", "binary32 inputs"},
    {"n2_f64", "n=2 L=16 d=8 w=8,4 fmt=f64", "binary64 inputs"},
    {"n2_b3", "n=2 B=3 L=10 d=8 w=6,3", "three independent batches"},
    {"n2_l1", "n=2 L=1 d=4", "a single position"},

    /* selections on 2-simplicial attention */
    {"n2_sel_indices_dim2", "n=2 L=16 d=8 sel=indices k=4 dims=2 probe=all", "given top-4 on the second key"},
    {"n2_sel_indices_both", "n=2 L=16 d=8 w=10,0 sel=indices k=5 dims=1,2 invalid=1 probe=all",
     "given top-5 on both keys with -1 pads, out-of-range and future indices"},
    {"n2_sel_indices_empty", "n=2 L=12 d=8 sel=indices k=3 dims=1,2 empty=1",
     "rows whose selection is empty or in the future"},
    {"n2_sel_relu", "n=2 L=16 d=8 sel=indexer act=relu k=4 dims=1,2 probe=all leak=random:7",
     "relu indexer (DeepSeek V3.2) on both keys"},
    {"n2_sel_softmax", "n=2 L=16 d=8 sel=indexer act=softmax k=4 dims=2 probe=all",
     "softmax indexer on the second key"},
    {"n2_sel_identity", "n=2 L=16 d=8 sel=indexer act=identity iscale=0.5 k=5 dims=1", "identity indexer"},
    {"n2_sel_scores", "n=2 L=16 d=8 sel=scores k=5 dims=1,2 probe=all", "given indexer scores"},
    {"n2_ties_relu", "n=2 L=14 d=8 sel=indexer act=relu k=3 dims=2 ties=1", "relu scores tied at the k-th place"},
    {"n2_ties_softmax", "n=2 L=14 d=8 sel=indexer act=softmax k=3 dims=1,2 ties=1",
     "softmax scores tied at the k-th place"},
    {"n2_ties_scores", "n=2 L=14 d=8 sel=scores k=4 dims=1 ties=1", "given scores tied at the k-th place"},
    {"n2_sel_k_ge_L", "n=2 L=12 d=8 sel=scores k=20 dims=1,2", "k >= L: every causal key"},
    {"n2_sel_causal_off", "n=2 L=12 d=8 causal=0 sel=indexer act=relu k=4 dims=2", "selection without causality"},

    /* edge values */
    {"n2_onehot", "n=2 L=16 d=8 w=10,5 dist=onehot probe=all", "scores spread so far the softmax is near one-hot"},
    {"n2_equal_scores", "n=2 L=12 d=8 dist=equal", "q = 0: every score equal, O the mean of the values"},
    {"n2_zero_values", "n=2 L=12 d=8 dist=zeros", "v = 0: O = 0 exactly"},
    {"n2_subnormal_sum", "n=2 L=12 d=8 reduce=sum dist=subnormal", "subnormal values, sum reducer"},
    {"n2_large_bf16", "n=2 L=12 d=8 dist=large", "large magnitudes within bf16"},
    {"n2_large_f16", "n=2 L=12 d=8 dist=large fmt=f16", "large magnitudes within binary16"},
    {"n2_large_f64", "n=2 L=10 d=8 dist=large fmt=f64", "magnitudes beyond binary32: scores near 2^330"},
    {"n2_heavy", "n=2 L=16 d=8 dist=heavy w=8,4", "heavy-tailed values"},
    {"n2_uniform", "n=2 L=16 d=8 dist=uniform", "uniform values"},

    /* leak pairs */
    {"n2_leak_random", "n=2 L=16 d=8 w=8,4 leak=random:7", "leak pair with random future values"},
    {"n2_leak_huge", "n=2 L=16 d=8 leak=huge:7", "leak pair with the largest bf16 values in the future"},
    {"n2_leak_nan", "n=2 L=16 d=8 w=8,4 leak=nan:7", "leak pair with NaN in the future"},
    {"n2_leak_inf", "n=2 L=16 d=8 leak=inf:9", "leak pair with infinities in the future"},
    {"n2_leak_sel", "n=2 L=16 d=8 sel=indices k=4 dims=1,2 leak=nan:6 leak=random:10",
     "leak pairs with a given selection"},

    /* higher orders */
    {"n3_dense", "n=3 L=8 d=8 probe=all", "dense 3-simplicial attention"},
    {"n3_windows", "n=3 L=12 d=8 w=8,4,2 probe=all leak=random:6", "three sliding windows"},
    {"n3_sum", "n=3 L=8 d=8 reduce=sum", "3-simplicial, sum reducer"},
    {"n3_mean", "n=3 L=8 d=8 reduce=mean", "3-simplicial, mean reducer (1/3 is not a binary fraction)"},
    {"n3_distinct", "n=3 L=7 d=4 distinct=1", "distinct keys (rows 0, 1 empty)"},
    {"n3_sel", "n=3 L=10 d=4 sel=indices k=3 dims=3 probe=all", "given selection on the third key"},
    {"n3_gqa_biases", "n=3 L=8 H=4 Hkv=2 d=4 kb=0,0,0.25 vb=0,0,1", "GQA and biases"},
    {"n4_dense", "n=4 L=6 d=4", "dense 4-simplicial attention"},
    {"n4_windows", "n=4 L=8 d=4 w=6,4,3,2 probe=all", "four sliding windows"},
    {"n4_mean", "n=4 L=6 d=4 reduce=mean", "4-simplicial, mean reducer"},
    {"n4_f32_leak", "n=4 L=7 d=4 fmt=f32 leak=nan:3", "4-simplicial, binary32, NaN leak"},
    {"n5_dense", "n=5 L=4 d=4", "order 5"},
    {"n6_sum", "n=6 L=4 d=3 dv=2 reduce=sum", "order 6, sum reducer"},
    {"n7_windows", "n=7 L=4 d=3 dv=2 w=2,3,4,1,2,3,4", "order 7 with windows"},
    {"n8_dense", "n=8 L=3 d=2 dv=2", "order 8, the largest"},

    /* gradient cases (E7): do, and the expected dq, dk_m, dv_m */
    {"bwd_n1_dense", "n=1 L=12 H=2 d=8 bwd=1", "attention backward, two heads"},
    {"bwd_n1_gqa_biases", "n=1 L=10 H=4 Hkv=2 d=8 causal=0 w=3 kb=0.5 vb=1 bwd=1",
     "attention backward: GQA sums, non-causal window, biases"},
    {"bwd_n2_dense", "n=2 L=10 d=8 bwd=1", "dense 2-simplicial backward"},
    {"bwd_n2_paper", "n=2 L=16 H=2 Hkv=1 d=8 w=8,4 kb=0,1/d vb=0,1 bwd=1",
     "2-simplicial backward: the paper's windows and Meta's biases, GQA"},
    {"bwd_n2_sum_scales", "n=2 L=10 d=8 reduce=sum scale=0.25 out=0.5 bwd=1",
     "sum reducer, explicit scales"},
    {"bwd_n2_mean", "n=2 L=10 d=4 dv=3 reduce=mean w=6,3 bwd=1", "mean reducer (dW = 1/2)"},
    {"bwd_n2_sel_empty", "n=2 L=12 d=8 sel=indices k=3 dims=1,2 empty=1 bwd=1",
     "given selection with empty slices: masked keys get zero gradients"},
    {"bwd_n2_sel_relu", "n=2 L=12 d=8 sel=indexer act=relu k=4 dims=2 bwd=1",
     "indexer selection, held constant"},
    {"bwd_n2_distinct_f32", "n=2 L=9 d=4 distinct=1 fmt=f32 bwd=1", "distinct keys, binary32 inputs"},
    {"bwd_n2_onehot", "n=2 L=12 d=8 w=8,4 dist=onehot bwd=1", "near one-hot rows: tiny gradients"},
    {"bwd_n2_equal", "n=2 L=8 d=4 dist=equal bwd=1", "equal scores: rational gradients"},
    {"bwd_n3_windows", "n=3 L=8 d=4 w=6,4,3 bwd=1", "3-simplicial backward with windows"},
    {"bwd_n4_dense", "n=4 L=5 d=4 dv=2 bwd=1", "4-simplicial backward"},
    {"bwd_n2_pairs", "n=2 L=10 d=8 w=6,3 bwd=1 leak=random:4 gleak=5 probe=all",
     "2-simplicial backward with a leak pair, a gradient leak pair and mask probes"},
    {"bwd_n1_pairs", "n=1 L=12 H=2 Hkv=1 d=8 w=5 bwd=1 gleak=6 probe=all",
     "attention backward with GQA, a gradient leak pair and mask probes"},
};

static const nsx_suite_case large_cases[] = {
    {"n2_paper_L128", "n=2 L=128 H=2 d=64 w=32,8 probe=all", "the paper's window ratio at L = 128, d = 64"},
    {"n2_dense_L48", "n=2 L=48 H=2 d=32", "dense 2-simplicial at L = 48"},
    {"n3_windows_L48", "n=3 L=48 d=32 w=16,8,4", "3-simplicial windows at L = 48"},
    {"n1_dsa_L256", "n=1 L=256 H=4 d=64 sel=indexer act=relu k=32 Hi=4 di=32 leak=random:100",
     "DeepSeek sparse attention at L = 256"},
    {"n2_dsa_L64", "n=2 L=64 d=32 sel=indexer act=relu k=8 dims=1,2 probe=all",
     "2-simplicial attention over an indexer's top-8"},
    {"bwd_n2_paper_L128", "n=2 L=128 H=2 d=64 w=32,8 kb=0,1/d vb=0,1 bwd=1",
     "2-simplicial backward with the paper's window ratio and Meta's biases at L = 128, d = 64"},
};

/* The production shapes, generated on demand (minutes each with
   the fast path; the MPFR path alone would take hours). */
static const nsx_suite_case production_cases[] = {
    {"n2_paper_d64", "n=2 L=2048 H=4 d=64 w=512,32", "the 2-simplicial paper's shape, d = 64"},
    {"n2_paper_d128", "n=2 L=2048 H=4 d=128 w=512,32", "the 2-simplicial paper's shape, d = 128"},
    {"n2_meta_L512", "n=2 L=512 H=16 d=128 w=256,32", "Meta's test shape: L = 512, d = 128, H = 16"},
    {"n2_w128", "n=2 L=2048 H=4 d=64 w=128,128", "windows 128 and 128"},
    {"n1_dsa_L4096", "n=1 L=4096 d=128 sel=indices k=2048",
     "DeepSeek-style sparse attention: top-2048 of 4096 keys, d = 128"},
    {"bwd_n2_paper_d64", "n=2 L=2048 H=4 d=64 w=512,32 bwd=1",
     "gradients at the 2-simplicial paper's shape, d = 64"},
    {"bwd_n2_meta_L512", "n=2 L=512 H=16 d=128 w=256,32 bwd=1", "gradients at Meta's test shape"},
    {"bwd_n1_dsa_L4096", "n=1 L=4096 d=128 sel=indices k=2048 bwd=1",
     "gradients of DeepSeek-style sparse attention: top-2048 of 4096 keys"},
};

/* Shapes that cross real kernels' tiles (blocks of 16, 32, 64 and 128 over
   queries, keys and the head dimension): L, d and windows just below, at
   and above a block, causal edges clipping query tiles, GQA 16/2 and 8/1,
   every reducer, biases, a long DSA row, n = 3 at L = 128, and their
   gradients.  About 14.5 MB. */
static const nsx_suite_case tiles_cases[] = {
    {"n2_L63_d64", "n=2 L=63 H=2 d=64 w=33,17", "L = 63, windows 33 and 17"},
    {"n2_L64_d64", "n=2 L=64 H=2 d=64 w=32,16", "L = 64, windows 32 and 16"},
    {"n2_L65_d64", "n=2 L=65 H=2 d=64 w=64,31", "L = 65, windows 64 and 31"},
    {"n2_L127_d128", "n=2 L=127 H=2 d=128 w=63,33", "L = 127, d = 128"},
    {"n2_L128_d128", "n=2 L=128 H=2 d=128 w=64,32", "L = 128, d = 128"},
    {"n2_L129_d128", "n=2 L=129 H=2 d=128 w=65,32", "L = 129, d = 128"},
    {"n2_L255_d64", "n=2 L=255 d=64 w=127,31", "L = 255, windows 127 and 31"},
    {"n2_L257_d64", "n=2 L=257 d=64 w=129,33", "L = 257, windows 129 and 33"},
    {"n2_d192", "n=2 L=65 d=192 w=33,16", "d = 192 (DeepSeek-style heads)"},
    {"n2_d256", "n=2 L=64 d=256 w=32,32", "d = 256"},
    {"n2_gqa16_2", "n=2 L=64 H=16 Hkv=2 d=64 w=32,16", "GQA: 16 query heads over 2 kv heads"},
    {"n2_gqa8_1", "n=2 L=65 H=8 Hkv=1 d=64 w=31,31", "GQA: 8 query heads over 1 kv head"},
    {"n2_sum_L128", "n=2 L=128 H=2 d=64 w=64,32 reduce=sum", "sum reducer at L = 128"},
    {"n2_mean_L129", "n=2 L=129 d=64 w=65,17 reduce=mean", "mean reducer at L = 129"},
    {"n2_biases_L128", "n=2 L=128 H=2 d=64 w=63,32 kb=0,1/d vb=0,1", "Meta's biases at L = 128"},
    {"n2_causal_off_L127", "n=2 L=127 d=64 causal=0 w=33,17", "two-sided windows at L = 127"},
    {"n1_dsa_L4096", "n=1 L=4096 d=64 dv=16 sel=indices k=64", "a top-64 of 4096 keys per query"},
    {"n3_L128", "n=3 L=128 d=32 dv=16 w=33,17,9", "3-simplicial at L = 128"},
    /* gradient cases (MPFR: seconds to tens of seconds each); the last is
       among those make check regenerates (test_vectors: every third) */
    {"bwd_n2_L64_d64", "n=2 L=64 H=2 Hkv=1 d=64 w=32,16 bwd=1", "gradients: windows on blocks, GQA 2/1"},
    {"bwd_n1_L128_d128", "n=1 L=128 H=2 d=128 bwd=1 gleak=64",
     "gradients of dense attention at d = 128, a gradient leak pair at the second 64-block"},
    {"bwd_n2_sum_L33", "n=2 L=33 d=32 w=17,9 reduce=sum kb=0,1/d bwd=1",
     "gradients: sum reducer, a key bias, L one past 32"},
    /* gradient cases at tile-crossing shapes (the fast certified backward,
       ref/fast_bwd.c: a second or less each) */
    {"bwd_n2_L129_d128", "n=2 L=129 d=128 w=65,32 bwd=1", "gradients: L = 129, d = 128, windows 65 and 32"},
    {"bwd_n2_L257_d64", "n=2 L=257 d=64 w=129,33 bwd=1", "gradients: L = 257, windows 129 and 33"},
    {"bwd_n2_gqa8_1", "n=2 L=65 H=8 Hkv=1 d=64 w=31,31 bwd=1", "gradients: GQA sums over 8 query heads"},
    {"bwd_n2_mean_L129", "n=2 L=129 d=64 w=65,17 reduce=mean bwd=1", "gradients: mean reducer at L = 129"},
    {"bwd_n2_biases_L128", "n=2 L=128 H=2 Hkv=1 d=64 w=63,32 kb=0,1/d vb=0,1 bwd=1",
     "gradients: Meta's biases at L = 128, GQA 2/1"},
    {"bwd_n2_causal_off_L127", "n=2 L=127 d=64 causal=0 w=33,17 bwd=1",
     "gradients: two-sided windows at L = 127"},
    {"bwd_n3_L128", "n=3 L=128 d=32 dv=16 w=33,17,9 bwd=1", "gradients: 3-simplicial at L = 128"},
    {"bwd_n1_dsa_L256", "n=1 L=256 d=32 dv=16 sel=indices k=64 bwd=1",
     "gradients: a top-64 of 256 keys per query (keys left out get exact zeros)"},
};

/* Shapes for the fast path's throughput figure (README). */
static const nsx_suite_case bench_cases[] = {
    {"n2_d64", "n=2 L=512 d=64 w=128,32", "2-simplicial, d = 64, windows 128 and 32"},
    {"n2_d128", "n=2 L=512 d=128 w=128,32", "2-simplicial, d = 128, windows 128 and 32"},
};

static const nsx_suite suites[] = {
    {"default", default_cases, sizeof default_cases / sizeof default_cases[0]},
    {"large", large_cases, sizeof large_cases / sizeof large_cases[0]},
    {"tiles", tiles_cases, sizeof tiles_cases / sizeof tiles_cases[0]},
    {"production", production_cases, sizeof production_cases / sizeof production_cases[0]},
    {"bench", bench_cases, sizeof bench_cases / sizeof bench_cases[0]},
};

const nsx_suite *nsx_suite_find(const char *name)
{
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++)
        if (strcmp(suites[s].name, name) == 0)
            return &suites[s];
    return NULL;
}

const nsx_suite *nsx_suite_at(int index)
{
    return index >= 0 && index < (int)(sizeof suites / sizeof suites[0]) ? &suites[index] : NULL;
}
