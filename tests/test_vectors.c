/*
 * Golden vectors (vectors/): recipes, the builder's pairs, determinism, the
 * committed suite against its generator, verify, and coverage of the
 * features the suite promises (docs/VECTORS.md).
 */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <nettle/sha2.h>

#include "cli/exit.h"
#include "io/casefile.h"
#include "nsimplex/rng.h"
#include "vectors/build.h"
#include "vectors/gen.h"
#include "tests/env.h"

/* Runs a shell command; its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *bin(void)
{
    const char *b = getenv("NSX_BIN");
    return b ? b : "build/nsimplex";
}

/* The digests of rng_streams_are_pinned and built_inputs_are_pinned. */
#define RNG_STREAM_SHA256 "c6f2765f931a8ff12a96f72ab759efb31d3c56107a0f86d05b69b4787c995f5d"
#define BUILT_INPUTS_SHA256 "925dbe157ce2c65018575f7243905e8e5718ed6d195fda3d9a1808bfde43b719"

/* ---- recipes ---------------------------------------------------------------- */

static const struct {
    const char *text;
    const char *complaint; /* NULL: valid */
} recipes[] = {
    {"n=2 L=16 d=8 w=5,2 fmt=f16 dist=onehot leak=nan:7 probe=all", NULL},
    {"kb=0,1/d n=2 d=16", NULL}, /* 1/d is this recipe's d, whatever the order */
    {"n=3 sel=indexer act=softmax k=4 dims=1,3 Hi=3 di=5 ties=1", NULL},
    {"n=2 w=1,2,3", "w, kb and vb have at most n"},
    {"n=9", "n:"},
    {"L=0", "L:"},
    {"fmt=f8", "fmt:"},
    {"reduce=max", "reduce:"},
    {"sel=indices k=2 dims=3", "dims"},
    {"k=3", "need sel="},
    {"ties=1", "need a selection"},
    {"sel=scores k=2 invalid=1", "invalid needs sel=indices"},
    {"L=8 leak=nan:7", "no future position"},
    {"leak=soon:3", "leak:"},
    {"H=3 Hkv=2", "multiple"},
    {"n=2 bogus=1", "'bogus' is not a key"},
    {"n=2 d", "is not KEY=VALUE"},
};

START_TEST(recipe_parse)
{
    nsx_recipe r;
    nsx_err err = {0};
    int rc = nsx_recipe_parse(recipes[_i].text, &r, &err);
    if (!recipes[_i].complaint) {
        ck_assert_msg(rc == 0, "%s: %s", recipes[_i].text, err.msg);
    } else {
        ck_assert_int_eq(rc, NSX_E_INPUT);
        ck_assert_msg(strstr(err.msg, recipes[_i].complaint), "%s: got '%s'", recipes[_i].text, err.msg);
    }
}
END_TEST

START_TEST(recipe_bias_one_over_d)
{
    nsx_recipe r;
    nsx_err err;
    ck_assert_int_eq(nsx_recipe_parse("kb=0,1/d vb=0,1 n=2 d=16", &r, &err), 0);
    ck_assert(r.p.k_bias[1] == 1.0 / 16 && r.p.v_bias[1] == 1.0);
}
END_TEST

/* ---- the generator: the same bits everywhere ---------------------------------- */

/* SHA-256 of binary64 values as little-endian bytes, into hex[65]. */
static void hash_doubles(struct sha256_ctx *h, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        unsigned char b[8];
        memcpy(&u, &x[i], 8);
        for (int k = 0; k < 8; k++)
            b[k] = (unsigned char)(u >> 8 * k);
        sha256_update(h, 8, b);
    }
}

static void hash_hex(struct sha256_ctx *h, char hex[65])
{
    unsigned char d[SHA256_DIGEST_SIZE];
    sha256_digest(h, sizeof d, d);
    for (int k = 0; k < SHA256_DIGEST_SIZE; k++)
        snprintf(hex + 2 * k, 3, "%02x", d[k]);
}

/* The streams of nsimplex/rng.h from one seed, hashed: pinned bits, so a
   platform whose arithmetic or MPFR differs fails here (the digests were
   taken on x86-64, glibc, MPFR 4.2). */
START_TEST(rng_streams_are_pinned)
{
    enum { N = 20000 };
    static double x[5][N];
    nsx_rng r = {20260101};
    for (int i = 0; i < N; i++) {
        x[0][i] = (double)(nsx_rng_next(&r) >> 11);
        x[1][i] = nsx_rng_uniform(&r);
        x[2][i] = nsx_rng_normal(&r);
        x[3][i] = nsx_rng_below(&r, 1000);
        x[4][i] = nsx_rng_chance(&r, 0.3);
    }
    struct sha256_ctx h;
    char hex[65];
    sha256_init(&h);
    hash_doubles(&h, &x[0][0], 5 * N);
    hash_hex(&h, hex);
    ck_assert_str_eq(hex, RNG_STREAM_SHA256);
    /* and the normals look normal: mean 0, variance 1 within 5 sigma */
    double m = 0, v = 0;
    for (int i = 0; i < N; i++)
        m += x[2][i], v += x[2][i] * x[2][i];
    m /= N;
    v = v / N - m * m;
    ck_assert_msg(fabs(m) < 5 / sqrt(N) && fabs(v - 1) < 5 * sqrt(2.0 / N), "mean %g var %g", m, v);
}
END_TEST

/* A built case's inputs, hashed: the vector builder draws through the
   pinned generator and rounds exactly, so its inputs are pinned too. */
START_TEST(built_inputs_are_pinned)
{
    nsx_recipe rc;
    nsx_instance b;
    nsx_err err;
    ck_assert_int_eq(nsx_recipe_parse("n=2 L=16 H=2 d=8 dv=4 fmt=f32 dist=heavy", &rc, &err), 0);
    ck_assert_int_eq(nsx_build(&rc, 7, &b, &err), 0);
    const nsx_problem *p = &b.p;
    size_t rows = (size_t)p->B * p->L;
    struct sha256_ctx h;
    char hex[65];
    sha256_init(&h);
    hash_doubles(&h, b.q, rows * p->H * p->d);
    for (int m = 0; m < p->n; m++) {
        hash_doubles(&h, b.k[m], rows * p->Hkv * p->d);
        hash_doubles(&h, b.v[m], rows * p->Hkv * p->dv);
    }
    hash_hex(&h, hex);
    ck_assert_str_eq(hex, BUILT_INPUTS_SHA256);
    nsx_instance_free(&b);
}
END_TEST

/* ---- the builder ------------------------------------------------------------- */

/* Inputs are representable in the format, and each pair's batches agree
   where they must and differ where they should. */
START_TEST(builder_pairs_are_well_formed)
{
    nsx_recipe r;
    nsx_instance b;
    nsx_err err;
    ck_assert_int_eq(nsx_recipe_parse("n=2 L=12 H=2 d=4 w=6,3 fmt=f16 sel=indices k=3 dims=2 "
                                      "leak=random:5 leak=nan:8 probe=all", &r, &err), 0);
    ck_assert_int_eq(nsx_build(&r, 42, &b, &err), 0);
    ck_assert_int_eq(nsx_case_check_inputs(&b.p, &b.in, &err), 0);
    const nsx_problem *p = &b.p;
    ck_assert_int_ge(b.npairs, 2 + 4); /* 2 leaks; causal and window probes in each dim */
    for (int x = 0; x < b.npairs; x++) {
        const nsx_pair *pr = &b.pairs[x];
        for (int j = 0; j < p->L; j++)
            for (int l = 0; l < p->d; l++) {
                double qa = b.q[nsx_q_at(p, pr->a, j, 0, l)], qb = b.q[nsx_q_at(p, pr->b, j, 0, l)];
                double ka = b.k[1][nsx_k_at(p, pr->a, j, 0, l)], kb = b.k[1][nsx_k_at(p, pr->b, j, 0, l)];
                if (pr->kind == NSX_PAIR_LEAK && j <= pr->t)
                    ck_assert(qa == qb && ka == kb);
                if (pr->kind == NSX_PAIR_PROBE) {
                    ck_assert(qa == qb);
                    if (pr->dim == 2 && j == pr->j)
                        ck_assert(ka != kb);
                    else if (pr->dim != 2 || j != pr->j)
                        ck_assert(ka == kb);
                }
            }
    }
    nsx_instance_free(&b);
}
END_TEST

/* ---- the manifest's checksum ---------------------------------------------------- */

/* FIPS 180-2's known answers (appendix B), through files: the empty
   message, one block, two blocks, and a million bytes (several reads). */
START_TEST(sha256_known_answers)
{
    static const struct {
        const char *text;
        size_t repeat;
        const char *hex;
    } t[] = {
        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    char path[4096], hex[65];
    snprintf(path, sizeof path, "%s/sha256_kat", test_tmpdir());
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        for (size_t r = 0; r < t[i].repeat; r++)
            fputs(t[i].text, f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(nsx_sha256_file(path, hex), 0);
        ck_assert_str_eq(hex, t[i].hex);
    }
    remove(path);
    ck_assert_int_eq(nsx_sha256_file(path, hex), -1); /* no such file */
}
END_TEST

/* ---- generation ---------------------------------------------------------------- */

START_TEST(generation_is_deterministic)
{
    const nsx_suite *s = nsx_suite_find("default");
    char a[4096], b[4096], ha[65], hb[65];
    nsx_err err;
    snprintf(a, sizeof a, "%s/det_a.safetensors", test_tmpdir());
    snprintf(b, sizeof b, "%s/det_b.safetensors", test_tmpdir());
    for (size_t c = 0; c < s->count; c += 9) {
        ck_assert_msg(nsx_gen_case(s, &s->cases[c], a, NULL, NULL, &err) == 0, "%s", err.msg);
        ck_assert_msg(nsx_gen_case(s, &s->cases[c], b, NULL, NULL, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(nsx_sha256_file(a, ha), 0);
        ck_assert_int_eq(nsx_sha256_file(b, hb), 0);
        ck_assert_str_eq(ha, hb);
    }
}
END_TEST

/* Of the committed suites other than default, the cases regenerated by
   committed_suite_matches_the_generator: one in TILES_SAMPLE, the same on
   every run; the others are held to the manifest's checksums (and `verify`
   recomputes their expected values).  NSX_REGEN_ALL=1 regenerates all. */
#define TILES_SAMPLE 3

/* The committed vectors are exactly what the generator writes today: the
   default suite regenerated whole, the tiles suite by a sample (its files
   take seconds, not minutes, but make check stays short), and the
   manifest over both byte for byte. */
START_TEST(committed_suite_matches_the_generator)
{
    char dir[2048], path[4096];
    nsx_err err;
    snprintf(dir, sizeof dir, "%s/regen", test_tmpdir());
    ck_assert_int_eq(run("rm -rf '%s' && '%s' gen --out '%s' > /dev/null", dir, bin(), dir), 0);
    const nsx_suite *s = nsx_suite_find("tiles");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(run("mkdir -p '%s/tiles'", dir), 0);
    int all = getenv("NSX_REGEN_ALL") && strcmp(getenv("NSX_REGEN_ALL"), "1") == 0;
    for (size_t c = 0; c < s->count; c++) {
        snprintf(path, sizeof path, "%s/tiles/%s.safetensors", dir, s->cases[c].name);
        if (all || c % TILES_SAMPLE == 2)
            ck_assert_msg(nsx_gen_case(s, &s->cases[c], path, NULL, NULL, &err) == 0, "%s", err.msg);
        else
            ck_assert_int_eq(run("cp vectors/tiles/%s.safetensors '%s'", s->cases[c].name, path), 0);
    }
    ck_assert_int_eq(run("'%s' gen --manifest --out '%s' > /dev/null", bin(), dir), 0);
    ck_assert_msg(run("cmp -s '%s/MANIFEST.json' vectors/MANIFEST.json", dir) == 0,
                  "vectors/ is out of date: run `make vectors`, `nsimplex gen --suite tiles --out vectors`, "
                  "`nsimplex gen --manifest --out vectors` and commit the result");
}
END_TEST

START_TEST(verify_accepts_the_suite_and_catches_tampering)
{
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tamper", test_tmpdir());
    ck_assert_int_eq(run("'%s' verify vectors > /dev/null", bin()), 0);
    /* a changed expected value, with the manifest's checksum updated: only
       recomputation can find it */
    ck_assert_int_eq(run("rm -rf '%s' && mkdir -p '%s/default' && cp vectors/default/n2_dense.safetensors "
                         "'%s/default/'", dir, dir, dir), 0);
    nsx_st st;
    nsx_err err;
    char path[4096];
    snprintf(path, sizeof path, "%s/default/n2_dense.safetensors", dir);
    ck_assert_int_eq(nsx_st_read(path, &st, &err), 0);
    nsx_tensor *o = (nsx_tensor *)nsx_st_get(&st, "o");
    ck_assert_ptr_nonnull(o);
    double v;
    memcpy(&v, o->data, sizeof v);
    v = nextafter(v, INFINITY); /* one ulp */
    memcpy(o->data, &v, sizeof v);
    ck_assert_int_eq(nsx_st_write(path, &st, &err), 0);
    nsx_st_free(&st);
    int count;
    ck_assert_int_eq(nsx_manifest_write(dir, &count, &err), 0);
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(run("'%s' verify '%s' --all > /dev/null", bin(), dir), NSX_EXIT_FAIL);
    /* a changed byte without a manifest update: the checksum */
    ck_assert_int_eq(nsx_manifest_write(dir, &count, &err), 0);
    ck_assert_int_eq(run("printf 'x' | dd of='%s' bs=1 seek=100 conv=notrunc 2>/dev/null", path), 0);
    ck_assert_int_eq(run("'%s' verify '%s' > /dev/null", bin(), dir), NSX_EXIT_FAIL);
    /* no manifest: unusable */
    ck_assert_int_eq(run("rm '%s/MANIFEST.json' && '%s' verify '%s' 2> /dev/null", dir, bin(), dir), NSX_EXIT_BAD);
    ck_assert_int_eq(run("'%s' gen --suite nope 2> /dev/null", bin()), NSX_EXIT_BAD);
    ck_assert_int_eq(run("'%s' gen --shard 3/2 2> /dev/null", bin()), NSX_EXIT_BAD);
}
END_TEST

/* ---- the committed suite's promises ------------------------------------------- */

/* Every committed case: its leak pairs give bit-identical expected rows up
   to t, its probes a bit-identical row i (so every probe position is one
   the masks exclude), and its flags are documented. */
START_TEST(committed_pairs_hold_under_the_reference)
{
    static const char *const committed[] = {"default", "tiles"};
    FILE *f = fopen("docs/VECTORS.md", "r");
    ck_assert_msg(f != NULL, "docs/VECTORS.md is missing");
    static char doc[1 << 16];
    doc[fread(doc, 1, sizeof doc - 1, f)] = '\0';
    fclose(f);
    for (size_t si = 0; si < sizeof committed / sizeof committed[0]; si++) {
        const nsx_suite *s = nsx_suite_find(committed[si]);
        for (size_t ci = 0; ci < s->count; ci++) {
            char path[4096], flag[80];
            nsx_case c;
            nsx_err err;
            snprintf(path, sizeof path, "vectors/%s/%s.safetensors", s->name, s->cases[ci].name);
            ck_assert_msg(nsx_case_read(path, &c, &err) == 0, "%s", err.msg);
            const nsx_problem *p = &c.p;
            for (int x = 0; x < c.info.npairs; x++) {
                const nsx_pair *pr = &c.info.pairs[x];
                int lo = pr->kind == NSX_PAIR_LEAK ? 0 : pr->kind == NSX_PAIR_GRADLEAK ? pr->t : pr->i;
                int hi = pr->kind == NSX_PAIR_LEAK ? pr->t : pr->kind == NSX_PAIR_GRADLEAK ? p->L - 1 : pr->i;
                for (int i = lo; i <= hi; i++)
                    for (int h = 0; h < p->H; h++) {
                        ck_assert_msg(!memcmp(&c.expected.lse[nsx_lse_at(p, pr->a, h, i)],
                                              &c.expected.lse[nsx_lse_at(p, pr->b, h, i)], sizeof(double)),
                                      "%s: pair %d, row %d", path, x, i);
                        ck_assert(!memcmp(&c.expected.o[nsx_o_at(p, pr->a, i, h, 0)],
                                          &c.expected.o[nsx_o_at(p, pr->b, i, h, 0)], (size_t)p->dv * sizeof(double)));
                    }
            }
            for (int t = 0; t < c.info.nflags; t++) {
                snprintf(flag, sizeof flag, "`%s`", c.info.flags[t]);
                ck_assert_msg(strstr(doc, flag), "%s: flag %s is not in docs/VECTORS.md", path, c.info.flags[t]);
            }
            nsx_case_free(&c);
        }
    }
}
END_TEST

/* Every committed file has its generation record (vectors/gen.c), and the
   record describes these very bytes. */
START_TEST(committed_files_have_their_generation_records)
{
    static const char *const committed[] = {"default", "tiles"};
    for (size_t si = 0; si < sizeof committed / sizeof committed[0]; si++) {
        const nsx_suite *s = nsx_suite_find(committed[si]);
        for (size_t ci = 0; ci < s->count; ci++) {
            char path[4096], hex[65], want[96], rec[4096];
            snprintf(path, sizeof path, "vectors/%s/%s.safetensors", s->name, s->cases[ci].name);
            ck_assert_int_eq(nsx_sha256_file(path, hex), 0);
            snprintf(path, sizeof path, "vectors/%s/%s.gen.json", s->name, s->cases[ci].name);
            FILE *f = fopen(path, "r");
            ck_assert_msg(f != NULL, "%s is missing", path);
            rec[fread(rec, 1, sizeof rec - 1, f)] = '\0';
            fclose(f);
            snprintf(want, sizeof want, "\"sha256\": \"%s\"", hex);
            ck_assert_msg(strstr(rec, want), "%s describes other bytes than its file", path);
            ck_assert_msg(strstr(rec, "\"seconds\": ") && strstr(rec, "\"fast_values\": ") &&
                              strstr(rec, "\"mpfr_values\": ") && strstr(rec, "\"generated\": \""),
                          "%s: %s", path, rec);
        }
    }
}
END_TEST

/* The default suite covers what docs/VECTORS.md promises. */
START_TEST(default_suite_coverage)
{
    static const char *const needed[] = {
        "InputBF16", "InputF16", "InputF32", "InputF64", "ReduceProduct", "ReduceSum", "ReduceMean",
        "Windows", "WindowOne", "WindowWide", "PaperWindows", "ReversedWindows", "CausalOff", "Distinct",
        "GQA", "Biases", "MetaBiases", "ScoreScale", "OutScale", "OddSizes", "HighOrder", "Dense",
        "GivenIndices", "InvalidIndices", "IndexerRelu", "IndexerSoftmax", "IndexerIdentity", "GivenScores",
        "TopKAll", "TieAtK", "NearOneHot", "EqualScores", "ZeroValues", "Subnormal", "LargeMagnitude",
        "HeavyTailed", "EmptySlice", "LeakPair", "FutureRandom", "FutureHuge", "FutureNaN", "FutureInf",
        "MaskProbe", "ProbeCausal", "ProbeWindow", "ProbeSelection", "Backward",
    };
    FILE *f = fopen("vectors/MANIFEST.json", "r");
    ck_assert_ptr_nonnull(f);
    static char man[1 << 20];
    man[fread(man, 1, sizeof man - 1, f)] = '\0';
    fclose(f);
    for (size_t t = 0; t < sizeof needed / sizeof needed[0]; t++) {
        char q[80];
        snprintf(q, sizeof q, "\"%s\"", needed[t]);
        ck_assert_msg(strstr(man, q), "no case in the default suite has flag %s", needed[t]);
    }
    /* every order 1..8 */
    const nsx_suite *s = nsx_suite_find("default");
    int orders = 0;
    for (size_t c = 0; c < s->count; c++) {
        nsx_recipe r;
        nsx_err err;
        ck_assert_int_eq(nsx_recipe_parse(s->cases[c].recipe, &r, &err), 0);
        orders |= 1 << r.p.n;
    }
    ck_assert_int_eq(orders, 0x1fe);
}
END_TEST

static Suite *vectors_suite(void)
{
    Suite *s = suite_create("vectors");
    TCase *tc = tcase_create("recipes");
    tcase_add_loop_test(tc, recipe_parse, 0, sizeof recipes / sizeof recipes[0]);
    tcase_add_test(tc, recipe_bias_one_over_d);
    tcase_add_test(tc, rng_streams_are_pinned);
    tcase_add_test(tc, built_inputs_are_pinned);
    tcase_add_test(tc, builder_pairs_are_well_formed);
    suite_add_tcase(s, tc);
    tc = tcase_create("generation");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sha256_known_answers);
    tcase_add_test(tc, generation_is_deterministic);
    tcase_add_test(tc, committed_suite_matches_the_generator);
    tcase_add_test(tc, verify_accepts_the_suite_and_catches_tampering);
    suite_add_tcase(s, tc);
    tc = tcase_create("committed suite");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, committed_pairs_hold_under_the_reference);
    tcase_add_test(tc, default_suite_coverage);
    tcase_add_test(tc, committed_files_have_their_generation_records);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vectors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
