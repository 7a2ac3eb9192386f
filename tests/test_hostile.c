/*
 * Hostile inputs and faults (issue 10): each is tried as an attacker would,
 * through the program, and must end in its exit code and one line on
 * stderr.  Limits (memory, file size, threads) are set with ulimit in a
 * subshell, so the runner itself is untouched; every run has a timeout, so
 * a regression to hanging or looping fails instead of stalling make check.
 *
 *   the work budget (core/budget.h)    exit 2: L^n overflow, hours of work,
 *                                      gigabytes of memory, --max-tuples
 *   vectors that contradict themselves exit 2 in check and verify
 *   FIFOs and devices                  verify 1, gen --manifest 2, never a hang
 *   a file size limit (SIGXFSZ)        exit 3, no temporary file left
 *   out of memory (GMP/MPFR included)  exit 3
 *   threads that cannot start          exit 3
 *   an unwritable standard output      exit 3
 *   fuzz --seconds 0                   exit 2 (nothing judged is not a pass)
 */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli/exit.h"
#include "core/budget.h"
#include "io/casefile.h"
#include "nsimplex/ref.h"
#include "oracle/check.h"
#include "vectors/build.h"
#include "vectors/gen.h"
#include "vectors/recipe.h"
#include "tests/harness.h"
#include "tests/env.h"

/* AddressSanitizer reserves terabytes of address space, so a program built
   with it (SAN=1: the tests and the program alike) cannot start under
   ulimit -v: the memory-limit tests say so and pass. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static const char *bin(void)
{
    const char *b = getenv("NSX_BIN");
    return b ? b : "build/nsimplex";
}

/* A path under the temporary directory. */
static const char *tmp(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/hostile_%s", test_tmpdir(), name);
    return buf;
}

/* What a shell command left on stderr, and its exit status. */
typedef struct shell_result {
    int status;        /* exit code, 128 + signal when killed */
    char err[4096];
} shell_result;

/* Runs `sh -c CMD` (CMD formatted; $B is the program) with stdout to
   /dev/null unless CMD redirects it, stderr captured, under a 120 s
   timeout. */
static shell_result shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static shell_result shell(const char *fmt, ...)
{
    char cmd[16384], inner[8192], errf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(inner, sizeof inner, fmt, ap);
    va_end(ap);
    tmp(errf, sizeof errf, "stderr.txt");
    snprintf(cmd, sizeof cmd, "B='%s' timeout 120 sh -c '%s' > /dev/null 2> '%s'", bin(), inner, errf);
    shell_result r = {0};
    int st = system(cmd);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    FILE *f = fopen(errf, "r");
    if (f) {
        r.err[fread(r.err, 1, sizeof r.err - 1, f)] = '\0';
        fclose(f);
    }
    return r;
}

/* Exactly one line on stderr, containing `want`. */
static void one_line(const shell_result *r, int status, const char *want)
{
    int lines = 0;
    for (const char *c = r->err; *c; c++)
        lines += *c == '\n';
    ck_assert_msg(r->status == status, "exit %d, want %d: %s", r->status, status, r->err);
    ck_assert_msg(lines == 1 && r->err[strlen(r->err) - 1] == '\n', "%d lines: %s", lines, r->err);
    ck_assert_msg(strstr(r->err, want) != NULL, "'%s' not in: %s", want, r->err);
}

/* Builds the case of recipe (seed 1) and writes it to path; with
   `expected`, zero outputs stand in for expected values (enough for the
   budget, which is judged before them). */
static void write_case(const char *path, const char *recipe, int expected)
{
    nsx_recipe r;
    nsx_instance b;
    nsx_err err = {0};
    ck_assert_msg(nsx_recipe_parse(recipe, &r, &err) == 0, "%s", err.msg);
    ck_assert_msg(nsx_build(&r, 1, &b, &err) == 0, "%s", err.msg);
    nsx_case_info info = nsx_build_info(&b, "hostile", "hostile", recipe);
    double *o = calloc(nsx_o_size(&b.p), sizeof *o), *lse = calloc(nsx_lse_size(&b.p), sizeof *lse);
    ck_assert(o && lse);
    nsx_outputs out = {.o = o, .lse = lse};
    ck_assert_msg(nsx_case_write(path, &b.p, &info, &b.in, expected ? &out : NULL, &err) == 0, "%s", err.msg);
    free(o);
    free(lse);
    nsx_instance_free(&b);
}

/* ---- the budget, counted --------------------------------------------------- */

/* Without a selection and the distinct flag the count is exact: the
   reference's own count of allowed tuples; with them an upper bound. */
START_TEST(budget_counts_what_the_reference_enumerates)
{
    static const struct { const char *recipe; int exact; } cases[] = {
        {"n=1 L=9", 1},
        {"n=2 L=9 H=2 B=2", 1},
        {"n=2 L=11 w=3,5", 1},
        {"n=2 L=10 causal=0", 1},
        {"n=2 L=12 causal=0 w=2,4", 1},
        {"n=3 L=7 w=0,2,3 causal=0", 1},
        {"n=3 L=8 w=4,1,0", 1},
        {"n=2 L=9 distinct=1", 0},
        {"n=2 L=12 sel=indices k=3", 0},
        {"n=2 L=12 sel=scores k=4 dims=2 w=5,0", 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        nsx_recipe r;
        nsx_instance b;
        nsx_err err = {0};
        ck_assert_msg(nsx_recipe_parse(cases[t].recipe, &r, &err) == 0, "%s", err.msg);
        ck_assert_msg(nsx_build(&r, 1, &b, &err) == 0, "%s", err.msg);
        const nsx_problem *p = &b.p;
        double *o = malloc(nsx_o_size(p) * sizeof *o), *lse = malloc(nsx_lse_size(p) * sizeof *lse);
        nsx_outputs out = {.o = o, .lse = lse};
        nsx_ref_stats st;
        ck_assert_msg(nsx_ref_forward(p, &b.in, &out, NULL, &st, &err) == 0, "%s", err.msg);
        nsx_budget bud;
        nsx_budget_of(p, &bud);
        if (cases[t].exact)
            ck_assert_msg(bud.tuples == st.tuples, "%s: budget %llu, reference %llu", cases[t].recipe,
                          (unsigned long long)bud.tuples, (unsigned long long)st.tuples);
        else
            ck_assert_msg(bud.tuples >= st.tuples, "%s: budget %llu below the reference's %llu", cases[t].recipe,
                          (unsigned long long)bud.tuples, (unsigned long long)st.tuples);
        uint64_t visited = (uint64_t)p->B * p->H * p->L;
        for (int m = 0; m < p->n; m++)
            visited *= (uint64_t)p->L;
        if (p->sel.source == NSX_SEL_SCORES)
            visited += (uint64_t)p->B * p->L * p->L;
        ck_assert(bud.visited == visited && bud.row_tuples <= bud.tuples && bud.seconds > 0);
        free(o);
        free(lse);
        nsx_instance_free(&b);
    }
}
END_TEST

/* L^n past 64 bits saturates instead of wrapping (n = 8, L = 256 wrapped
   to 0 and looped for ever; L = 2^20 claimed to be out of memory), and
   windows keep the count far below L^(n+1). */
START_TEST(budget_saturates_and_refuses)
{
    nsx_problem p;
    nsx_budget b;
    nsx_err err = {0};
    nsx_problem_defaults(&p);
    p.n = 8;
    p.L = 256;
    ck_assert_int_eq(nsx_budget_check(&p, NULL, "x", &b, &err), NSX_E_TOO_LARGE);
    ck_assert(b.tuples == UINT64_MAX && b.visited == UINT64_MAX);
    ck_assert_msg(strstr(err.msg, "over 1.8e+19 allowed tuples") != NULL, "%s", err.msg);
    p.L = NSX_MAX_DIM;
    ck_assert_int_eq(nsx_budget_check(&p, NULL, "x", &b, &err), NSX_E_TOO_LARGE);
    ck_assert(b.tuples == UINT64_MAX && b.seconds > 1e9);
    /* causal windows of 4: sum over i of min(i + 1, 4)^2 */
    nsx_problem_defaults(&p);
    p.n = 2;
    p.L = 4096;
    p.window[0] = p.window[1] = 4;
    nsx_budget_of(&p, &b);
    ck_assert_uint_eq(b.tuples, 1 + 4 + 9 + 16 * (uint64_t)(4096 - 3));
    ck_assert_uint_eq(b.row_tuples, 16);
    /* a limit of one's own */
    nsx_budget_limits lim = {.max_tuples = 1000};
    p.window[0] = p.window[1] = 0;
    p.L = 40; /* 22140 tuples */
    ck_assert_int_eq(nsx_budget_check(&p, &lim, "x", NULL, &err), NSX_E_TOO_LARGE);
    lim.max_tuples = 22140;
    ck_assert_int_eq(nsx_budget_check(&p, &lim, "x", NULL, &err), 0);
    /* the memory estimate: one dense row of 64^3 tuples, causal off */
    nsx_problem_defaults(&p);
    p.n = 3;
    p.L = 64;
    p.causal = 0;
    lim = (nsx_budget_limits){.max_tuples = UINT64_MAX, .max_bytes = 16 << 20};
    ck_assert_int_eq(nsx_budget_check(&p, &lim, "x", &b, &err), NSX_E_TOO_LARGE);
    ck_assert_msg(strstr(err.msg, "MiB of memory") != NULL, "%s", err.msg);
}
END_TEST

/* The reference keeps no tuple of a row between passes: rows of 4^8 =
   65536 tuples (n = 8, L = 4, causal off) ran in 30 MB (one row's tuples
   held at once), now in about 4 MB, the program's own size. */
START_TEST(reference_memory_does_not_grow_with_the_row)
{
    char path[4096], out[4096];
    tmp(path, sizeof path, "dense_n8");
    tmp(out, sizeof out, "dense_n8.out");
    write_case(path, "n=8 L=4 causal=0 d=1 dv=1", 0);
    shell_result r = shell("$B eval %s --out %s", path, out);
    ck_assert_msg(r.status == 0, "%s", r.err);
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_CHILDREN, &ru), 0);
#if defined(__SANITIZE_ADDRESS__)
    /* ASan's shadow memory and quarantine are part of the RSS: no size to pin */
    printf("hostile: peak RSS under ASan %ld KB, not compared\n", ru.ru_maxrss);
#else
    ck_assert_msg(ru.ru_maxrss < 16000, "eval's peak RSS %ld KB", ru.ru_maxrss);
#endif
}
END_TEST

/* ---- the budget, through the commands ----------------------------------------- */

START_TEST(commands_refuse_over_the_budget)
{
    static const struct { const char *name, *recipe; } big[] = {
        {"n8L256", "n=8 L=256 d=1 dv=1"},     /* L^n wrapped to 0: looped for ever */
        {"n4L100", "n=4 L=100"},              /* hours of the reference */
        {"n3L200", "n=3 L=200 causal=0"},     /* 3 GB in a minute */
        {"n4L128", "n=4 L=128 causal=0"},     /* check: 8.4 GB, then "not applicable" */
    };
    char path[4096], out[4096];
    tmp(out, sizeof out, "out.safetensors");
    for (size_t t = 0; t < sizeof big / sizeof big[0]; t++) {
        tmp(path, sizeof path, big[t].name);
        write_case(path, big[t].recipe, 1);
        shell_result r = shell("$B eval %s --out %s", path, out);
        one_line(&r, NSX_EXIT_BAD, "allowed tuples (limit 1.1e+09;"); /* the fast path's: 64 times */
        r = shell("$B eval %s --out %s --exact-only", path, out);
        one_line(&r, NSX_EXIT_BAD, "allowed tuples (limit 16777216;");
        r = shell("$B check %s %s", path, path);
        one_line(&r, NSX_EXIT_BAD, "allowed tuples (limit 268435456;");
        if (t == 0) { /* over even the SIMD kernel's larger limit */
            r = shell("$B eval --impl simd %s --out %s", path, out);
            one_line(&r, NSX_EXIT_BAD, "over 1.8e+19 allowed tuples (limit 1.7e+10;");
        }
    }
    /* --max-tuples: 22140 tuples, under and over a limit of one's own */
    tmp(path, sizeof path, "n2L40");
    write_case(path, "n=2 L=40", 0);
    shell_result r = shell("$B eval %s --out %s --max-tuples 1000", path, out);
    one_line(&r, NSX_EXIT_BAD, "22140 allowed tuples (limit 1000;");
    r = shell("$B eval %s --out %s --max-tuples 22140", path, out);
    ck_assert_msg(r.status == 0, "%s", r.err);
    r = shell("$B eval %s --out %s --max-tuples 0", path, out);
    one_line(&r, NSX_EXIT_BAD, "--max-tuples: 0 is outside");
    /* verify and gen, the same limit */
    r = shell("$B verify vectors --all --max-tuples 10");
    one_line(&r, NSX_EXIT_BAD, "allowed tuples (limit 10;");
    tmp(path, sizeof path, "gen");
    r = shell("$B gen --out %s --max-tuples 10", path);
    one_line(&r, NSX_EXIT_BAD, "allowed tuples (limit 10;");
    r = shell("$B eval vectors/default/n2_dense.safetensors --out %s --max-memory 1", out);
    ck_assert_msg(r.status == 0, "%s", r.err);
    /* every command documents the limit */
    static const char *const cmds[] = {"gen", "eval", "check", "verify"};
    for (size_t c = 0; c < 4; c++) {
        char help[256];
        snprintf(help, sizeof help, "$B %s --help | grep -q -- \"--max-tuples N\"", cmds[c]);
        ck_assert_msg(shell("%s", help).status == 0, "%s --help", cmds[c]);
    }
}
END_TEST

/* --shard I/N past INT_MAX was read modulo 2^32. */
START_TEST(shard_does_not_wrap)
{
    shell_result r = shell("$B gen --shard 4294967297/4294967298 --out /nonexistent/x");
    one_line(&r, NSX_EXIT_BAD, "--shard:");
    r = shell("$B gen --shard 1/2x --out /nonexistent/x");
    one_line(&r, NSX_EXIT_BAD, "--shard:");
}
END_TEST

/* ---- vectors that contradict themselves ------------------------------------------ */

/* dir/default/NAME.safetensors: the committed case, changed by edit, with
   a manifest listing it (so that verify reads it). */
static void tampered(const char *dir, const char *name, void (*edit)(nsx_case *), char *path, size_t n)
{
    nsx_case c;
    nsx_err err = {0};
    char src[4096];
    snprintf(src, sizeof src, "vectors/default/%s.safetensors", name);
    ck_assert_int_eq(shell("rm -rf %s && mkdir -p %s/default", dir, dir).status, 0);
    ck_assert_msg(nsx_case_read(src, &c, &err) == 0, "%s", err.msg);
    edit(&c);
    snprintf(path, n, "%s/default/%s.safetensors", dir, name);
    ck_assert_msg(nsx_case_write(path, &c.p, &c.info, &c.in, &c.expected, &err) == 0, "%s", err.msg);
    nsx_case_free(&c);
    int count;
    ck_assert_msg(nsx_manifest_write(dir, &count, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(count, 1);
}

/* The leak pair of n2_leak_nan: batches 0 and 1, shared up to t. */
static const nsx_pair *leak_of(const nsx_case *c)
{
    for (int x = 0; x < c->info.npairs; x++)
        if (c->info.pairs[x].kind == NSX_PAIR_LEAK)
            return &c->info.pairs[x];
    ck_abort_msg("no leak pair");
    return NULL;
}

/* An expected lse of NaN in a row no pair leaves unjudged (nor claims
   anything about): the last row of the pair's first batch. */
static void nan_lse(nsx_case *c)
{
    ck_assert_int_lt(leak_of(c)->t, c->p.L - 1);
    c->expected.lse[nsx_lse_at(&c->p, leak_of(c)->a, 0, c->p.L - 1)] = NAN;
}

/* q of the pair's second batch changed at a shared position: the pair's
   claim is false, and so are the expected values (recomputed, so that
   verify's recomputation agrees with them). */
static void recompute(nsx_case *c)
{
    nsx_err err = {0};
    unsigned char *skip = malloc((size_t)c->p.B * c->p.L);
    nsx_pairs_unjudged(&c->p, c->info.pairs, c->info.npairs, skip);
    nsx_ref_opts opts = {.skip = skip};
    ck_assert_msg(nsx_ref_forward(&c->p, &c->in, &c->expected, &opts, NULL, &err) == 0, "%s", err.msg);
    free(skip);
}

static void shared_q(nsx_case *c)
{
    double *q = (double *)c->in.q + nsx_q_at(&c->p, leak_of(c)->b, 0, 0, 0);
    *q = *q == 1 ? 2 : 1;
    recompute(c);
}

/* The expected o of the pair's second batch one ulp off in a shared row. */
static void shared_o(nsx_case *c)
{
    double *o = c->expected.o + nsx_o_at(&c->p, leak_of(c)->b, 0, 0, 0);
    *o = nextafter(*o, INFINITY);
}

/* A probe moved to a key its row uses: batch b is batch a with k_dim, v_dim
   changed at j = i (within every causal window), expected values
   recomputed. */
static void used_probe(nsx_case *c)
{
    const nsx_problem *p = &c->p;
    nsx_pair *pr = NULL;
    for (int x = 0; x < c->info.npairs && !pr; x++)
        if (c->info.pairs[x].kind == NSX_PAIR_PROBE)
            pr = &c->info.pairs[x];
    ck_assert_ptr_nonnull(pr);
    int m = pr->dim - 1;
    double *k = (double *)c->in.k[m], *v = (double *)c->in.v[m];
    /* undo the probe's change, then change position i instead */
    memcpy(k + nsx_k_at(p, pr->b, pr->j, 0, 0), k + nsx_k_at(p, pr->a, pr->j, 0, 0),
           (size_t)p->Hkv * p->d * sizeof *k);
    memcpy(v + nsx_v_at(p, pr->b, pr->j, 0, 0), v + nsx_v_at(p, pr->a, pr->j, 0, 0),
           (size_t)p->Hkv * p->dv * sizeof *v);
    pr->j = pr->i;
    double *kx = k + nsx_k_at(p, pr->b, pr->j, 0, 0), *vx = v + nsx_v_at(p, pr->b, pr->j, 0, 0);
    *kx = *kx == 1 ? 2 : 1;
    *vx = *vx == 1 ? 2 : 1;
    recompute(c);
}

/* A probe's key is unused exactly when no allowed tuple of its row has it
   in its dimension: with distinct keys that is a matching of the other
   dimensions to other keys (n = 2, causal, L = 4). */
START_TEST(probe_keys_used_or_not)
{
    static const struct { int distinct, i, dim, j, used; } cases[] = {
        {1, 0, 1, 0, 0}, /* row 0: only (0, 0), not distinct */
        {0, 0, 1, 0, 1}, /* (0, 0) allowed */
        {1, 1, 1, 0, 1}, /* (0, 1) */
        {1, 1, 2, 1, 1}, /* (0, 1) */
        {1, 2, 1, 3, 0}, /* the future */
        {0, 3, 2, 3, 1},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        nsx_problem p;
        nsx_problem_defaults(&p);
        p.n = 2;
        p.B = 2;
        p.L = 4;
        p.distinct = cases[t].distinct;
        tcase tc;
        tcase_alloc(&tc, &p);
        int m = cases[t].dim - 1;
        tc.k[m][nsx_k_at(&p, 1, cases[t].j, 0, 0)] = 1;
        tc.v[m][nsx_v_at(&p, 1, cases[t].j, 0, 0)] = 1;
        nsx_pair pr = {NSX_PAIR_PROBE, 0, 1, 0, 0, cases[t].i, cases[t].dim, cases[t].j};
        nsx_case_info info = {.pairs = &pr, .npairs = 1};
        nsx_err err = {0};
        int rc = nsx_pairs_consistent(&p, &info, &tc.in, NULL, &err);
        ck_assert_msg(rc == (cases[t].used ? NSX_E_INPUT : 0), "case %zu: %d %s", t, rc, err.msg);
        if (cases[t].used)
            ck_assert(strstr(err.msg, "is used by an allowed tuple") != NULL);
        /* and a change anywhere else breaks the claim */
        tc.q[nsx_q_at(&p, 1, 0, 0, 0)] = 1;
        ck_assert_int_eq(nsx_pairs_consistent(&p, &info, &tc.in, NULL, &err), NSX_E_INPUT);
        ck_assert_msg(strstr(err.msg, "q differs at a position other than the probe's") != NULL, "%s", err.msg);
        tcase_free(&tc);
    }
}
END_TEST

START_TEST(contradictory_vectors_are_refused)
{
    static const struct {
        const char *name;           /* the committed case */
        void (*edit)(nsx_case *);
        const char *why;            /* in check's and verify's line */
        int verify_reads;           /* verify --all meets it (else check only) */
    } cases[] = {
        {"n2_leak_nan", nan_lse, "lse[b=0,h=0,i=15] is NaN, but no leak pair leaves row 15 of batch 0 unjudged", 0},
        {"n2_leak_nan", shared_q, "(leak, batches 0 and 1): q differs at a position its shared rows read", 1},
        {"n2_leak_nan", shared_o, "(leak, batches 0 and 1): the expected outputs of row 0, head 0 differ", 1},
        {"n2_paper_windows", used_probe, "is used by an allowed tuple of query", 1},
    };
    char dir[1024], path[4096], cand[1024];
    tmp(dir, sizeof dir, "contra");
    tmp(cand, sizeof cand, "contra.candidate.safetensors");
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        tampered(dir, cases[t].name, cases[t].edit, path, sizeof path);
        /* the candidate: the reference's own outputs, a pass before */
        ck_assert_int_eq(shell("$B eval %s --out %s", path, cand).status, 0);
        shell_result r = shell("$B check %s %s", path, cand);
        one_line(&r, NSX_EXIT_BAD, cases[t].why);
        ck_assert(strstr(r.err, path) != NULL);
        r = shell("$B verify %s --all", dir);
        if (cases[t].verify_reads)
            one_line(&r, NSX_EXIT_BAD, cases[t].why);
        else /* verify recomputes the row: the NaN is a difference */
            ck_assert_msg(r.status == NSX_EXIT_FAIL, "verify exit %d: %s", r.status, r.err);
    }
}
END_TEST

/* ---- FIFOs and devices ---------------------------------------------------------- */

START_TEST(fifos_and_devices_do_not_hang)
{
    char dir[1024], path[4096];
    tmp(dir, sizeof dir, "fifo");
    snprintf(path, sizeof path, "%s/default/n2_dense.safetensors", dir);
    ck_assert_int_eq(shell("rm -rf %s && mkdir -p %s/default && cp vectors/default/n2_dense.safetensors %s",
                           dir, dir, path).status, 0);
    int count;
    nsx_err err = {0};
    ck_assert_int_eq(nsx_manifest_write(dir, &count, &err), 0);
    /* a FIFO where the manifest lists a file: no writer, so open blocked */
    ck_assert_int_eq(shell("rm %s && mkfifo %s", path, path).status, 0);
    shell_result r = shell("$B verify %s --all", dir);
    ck_assert_msg(r.status == NSX_EXIT_FAIL, "verify exit %d: %s", r.status, r.err);
    r = shell("$B verify %s 2>&1 | grep -q \"n2_dense.safetensors: not a regular file\"", dir);
    ck_assert_int_eq(r.status, 0);
    r = shell("$B gen --manifest --out %s", dir);
    one_line(&r, NSX_EXIT_BAD, "n2_dense.safetensors: not a regular file");
    /* a device: /dev/zero never ends */
    ck_assert_int_eq(shell("rm %s && ln -s /dev/zero %s", path, path).status, 0);
    r = shell("$B verify %s --all", dir);
    ck_assert_msg(r.status == NSX_EXIT_FAIL, "verify exit %d: %s", r.status, r.err);
    r = shell("$B gen --manifest --out %s", dir);
    one_line(&r, NSX_EXIT_BAD, "not a regular file");
    /* the manifest itself a FIFO */
    ck_assert_int_eq(shell("rm %s/MANIFEST.json && mkfifo %s/MANIFEST.json", dir, dir).status, 0);
    r = shell("$B verify %s", dir);
    one_line(&r, NSX_EXIT_BAD, "MANIFEST.json: not a regular file");
    /* a bad entry is named by the manifest, not by the file before it */
    ck_assert_int_eq(shell("rm -rf %s && mkdir -p %s/default && cp vectors/default/n2_dense.safetensors %s",
                           dir, dir, path).status, 0);
    ck_assert_int_eq(nsx_manifest_write(dir, &count, &err), 0);
    /* entry 1, after n2_dense: the message named n2_dense's file */
    ck_assert_int_eq(shell("sed -i \"s/^  \\]\\$/  , {\\\"file\\\": 1}]/\" %s/MANIFEST.json", dir).status, 0);
    r = shell("$B verify %s", dir);
    one_line(&r, NSX_EXIT_BAD, "MANIFEST.json: entry 1: needs a relative");
}
END_TEST

/* ---- faults of the machine ------------------------------------------------------- */

/* A file size limit: the write fails (EFBIG), exit 3, and the temporary
   file is gone (SIGXFSZ killed the program and left it). */
START_TEST(file_size_limit)
{
    char dir[1024];
    tmp(dir, sizeof dir, "fsize");
    ck_assert_int_eq(shell("rm -rf %s && mkdir -p %s", dir, dir).status, 0);
    shell_result r = shell("ulimit -f 1; $B eval vectors/default/n2_paper_windows.safetensors --out %s/o.st", dir);
    one_line(&r, NSX_EXIT_INTERNAL, "o.st: write failed: File too large");
    ck_assert_int_eq(shell("test -z \"$(ls -A %s)\"", dir).status, 0);
    r = shell("ulimit -f 1; $B gen --out %s", dir);
    one_line(&r, NSX_EXIT_INTERNAL, "File too large");
    ck_assert_int_eq(shell("test -z \"$(ls -A %s/default)\"", dir).status, 0);
}
END_TEST

/* Out of memory, wherever the allocation fails (GMP and MPFR aborted with
   134): one line, exit 3.  The reference keeps no tuple of a row, except
   for the exact cases: n = 1, causal off, L = 2^18, keys in equal pairs
   whose values are +1 and -1, so every output is an exact 0 that only the
   exact cases decide, from the row's 2^18 tuples stored (about 30 MB).
   The limits fail the read, the reference's arrays and GMP's limbs
   (measured: 12000 and 20000 KB in the read or the arrays, 36000 in GMP;
   it depends on the build, the exit code and the one line do not). */
START_TEST(out_of_memory)
{
    char path[4096], out[4096];
    if (UNDER_ASAN) {
        fprintf(stderr, "out_of_memory: not run under AddressSanitizer (ulimit -v)\n");
        return;
    }
    tmp(path, sizeof path, "oom");
    tmp(out, sizeof out, "oom.out");
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.L = 1 << 18;
    p.causal = 0;
    tcase t;
    tcase_alloc(&t, &p);
    for (int j = 0; j < p.L; j++) {
        t.q[j] = 1;
        t.k[0][j] = (j / 2) % 8;
        t.v[0][j] = j % 2 ? -1 : 1;
    }
    nsx_err err = {0};
    ck_assert_msg(nsx_case_write(path, &p, NULL, &t.in, NULL, &err) == 0, "%s", err.msg);
    tcase_free(&t);
    static const int limits_kb[] = {12000, 20000, 28000, 36000};
    for (size_t x = 0; x < sizeof limits_kb / sizeof limits_kb[0]; x++) {
        /* the MPFR path's arrays and GMP's own memory (the fast path holds
           too little to fail here) */
        shell_result r = shell("ulimit -v %d; $B eval %s --out %s --exact-only --max-tuples 100000000000",
                               limits_kb[x], path, out);
        one_line(&r, NSX_EXIT_INTERNAL, "out of memory");
    }
}
END_TEST

/* Threads that cannot start (their stacks do not fit a memory limit, as
   under ulimit -u or a huge OMP_NUM_THREADS): libgomp's two lines and
   exit 1 before. */
START_TEST(threads_that_cannot_start)
{
    char out[4096];
    if (UNDER_ASAN) {
        fprintf(stderr, "threads_that_cannot_start: not run under AddressSanitizer (ulimit -v)\n");
        return;
    }
    tmp(out, sizeof out, "threads.out");
    shell_result r = shell("ulimit -s 8192; ulimit -v 1000000; $B eval vectors/default/n2_dense.safetensors "
                           "--impl simd --threads 500 --out %s", out);
    one_line(&r, NSX_EXIT_INTERNAL, "cannot start 500 threads");
    r = shell("ulimit -s 8192; ulimit -v 1000000; OMP_NUM_THREADS=100000 $B eval "
              "vectors/default/n2_dense.safetensors --impl simd --out %s", out);
    one_line(&r, NSX_EXIT_INTERNAL, "cannot start 100000 threads");
    r = shell("ulimit -s 8192; ulimit -v 1000000; OMP_NUM_THREADS=100000 $B fuzz --count 1 --out %s.d", out);
    one_line(&r, NSX_EXIT_INTERNAL, "cannot start 100000 threads");
}
END_TEST

/* A standard output that cannot be written is an I/O error, not a pass. */
START_TEST(unwritable_stdout)
{
    shell_result r = shell("$B check vectors/default/n2_dense.safetensors vectors/default/n2_dense.safetensors "
                           "--json > /dev/full");
    one_line(&r, NSX_EXIT_INTERNAL, "cannot write to standard output: No space left on device");
    r = shell("$B show vectors/default/n2_dense.safetensors > /dev/full");
    one_line(&r, NSX_EXIT_INTERNAL, "nsimplex show: cannot write to standard output");
    r = shell("$B --help > /dev/full");
    one_line(&r, NSX_EXIT_INTERNAL, "cannot write to standard output");
}
END_TEST

/* fuzz --seconds 0 judges nothing: not a pass. */
START_TEST(fuzz_nothing_judged)
{
    char out[4096];
    tmp(out, sizeof out, "fuzz0");
    shell_result r = shell("$B fuzz --seconds 0 --out %s", out);
    one_line(&r, NSX_EXIT_BAD, "no problem was judged (0 drawn, 0 skipped): not a pass");
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("budget");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, budget_counts_what_the_reference_enumerates);
    tcase_add_test(tc, budget_saturates_and_refuses);
    tcase_add_test(tc, reference_memory_does_not_grow_with_the_row);
    tcase_add_test(tc, commands_refuse_over_the_budget);
    tcase_add_test(tc, shard_does_not_wrap);
    suite_add_tcase(s, tc);
    tc = tcase_create("inputs");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, probe_keys_used_or_not);
    tcase_add_test(tc, contradictory_vectors_are_refused);
    tcase_add_test(tc, fifos_and_devices_do_not_hang);
    suite_add_tcase(s, tc);
    tc = tcase_create("faults");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, file_size_limit);
    tcase_add_test(tc, out_of_memory);
    tcase_add_test(tc, threads_that_cannot_start);
    tcase_add_test(tc, unwritable_stdout);
    tcase_add_test(tc, fuzz_nothing_judged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hostile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
