/*
 * The differential fuzzer behind `nsimplex fuzz` (docs/FUZZING.md).
 *
 * A run draws random problems within a kernel's declared features
 * (nsx_kernel_supports), builds each one as a case (vectors/build.h: inputs,
 * leak pairs, mask probes) and adds what the golden suites do not: near-ties,
 * interesting values in random vector lanes, shuffled selection rows, copies
 * of the batches in another order, a permutation of the heads.  It runs the
 * kernel (runner/runner.h) and judges it with the oracle (oracle/check.h)
 * under the kernel's declared precision model, against the MPFR reference
 * on small problems and the binary64 loop reference (fuzz/dref.h) with its
 * stated uncertainty on larger ones.  A failure is shrunk and saved as a
 * vector that `nsimplex check` replays, with the kernel's outputs beside it.
 *
 * Everything follows from the run's seed: problem k of seed S is the same
 * problem in every run (nsx_fz_problem_seed), whatever the budget.
 *
 * Files: draw.c (problems), case.c (building cases), judge.c, shrink.c
 * (shrinking and reshaping cases), save.c, run.c (the loop), dref.c.
 */
#ifndef NSX_FUZZ_FUZZ_H
#define NSX_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nsimplex/rng.h"
#include "runner/runner.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "vectors/build.h"

struct nsx_buf;

/* ---- randomness (nsimplex/rng.h) ------------------------------------------ */

/* The seed of problem `index` of a run seeded with `seed`. */
uint64_t nsx_fz_problem_seed(uint64_t seed, uint64_t index);

/* ---- drawing a problem (draw.c) ------------------------------------------ */

/* Shape classes (docs/FUZZING.md section 2): small problems (most of them,
   fast to judge and to shrink), tile-crossing ones (d and dv up to 256 near
   64, 128, 192, 256; L, windows and top-k near multiples of 16..128), and
   production-sized ones (n = 1 up to L = 4096, windowed n = 2 up to 2048,
   GQA up to 16/1). */
enum { NSX_FZ_SMALL = 0, NSX_FZ_TILES = 1, NSX_FZ_PRODUCTION = 2, NSX_FZ_CLASSES = 3 };
/* --shapes: one class, or the mix of all three */
enum { NSX_FZ_SHAPES_ALL = -1 };

/* The work of one problem in each larger class, at most: allowed tuples
   times batches, heads and d + dv (nsx_fz_case_work, pairs included), plus
   16 per input value drawn.  The oracle's per-element bound (oracle/bound.c)
   and the inputs' normals dominate there, about 1e7 units per CPU-second;
   the certified reference takes a tenth of that. */
#define NSX_FZ_TILES_WORK 6.0e6
#define NSX_FZ_PRODUCTION_WORK 3.0e7

/* Steering (nsimplex fuzz --n, --max-L, --d, --features, --shapes): what
   may be drawn, within what the kernel declares. */
typedef struct nsx_fz_steer {
    unsigned orders;     /* bit n: order n may be drawn; 0: any the kernel takes */
    int max_L;           /* 0: the class's own limits */
    int nd;              /* d and dv from d[0..nd) when nd > 0 */
    int d[32];
    unsigned features;   /* NSX_FEAT_* that may be drawn (and the kernel declares) */
    int boost;           /* 1: those features are drawn in about half the problems each */
    int shapes;          /* NSX_FZ_SHAPES_ALL or one class */
} nsx_fz_steer;

/* Everything allowed, the default mix. */
void nsx_fz_steer_default(nsx_fz_steer *s);

/* 0 when s can draw something for ki (orders within max_order, features it
   declares); else -1 with the reason in why. */
int nsx_fz_steer_check(const nsx_fz_steer *s, const nsx_kernel_info *ki, char *why, size_t len);

/* The names of --features, in bit order of NSX_FEAT_* (windows, selection,
   gqa, causal-off, distinct, biases, sum, mean); the bit of a name, or 0. */
unsigned nsx_fz_feature_bit(const char *name);
extern const char *const nsx_fz_feature_names[8];
const char *nsx_fz_class_name(int cls);

typedef struct nsx_fz_draw {
    uint64_t seed;       /* the problem's seed: inputs and transforms */
    char recipe[640];    /* the case in one line (vectors/recipe.h) */
    int ties;            /* 0; 1: key rows duplicated (exact score ties); 2: and
                            nudged by one unit in the last place (near ties) */
    int lanes;           /* interesting values put at this many random elements */
    int big;             /* the largest of them is 2^big: a score's n + 1 factors
                            stay within the model's operand range */
    int shuffle;         /* given selection rows shuffled (-1 pads anywhere) */
    int copies;          /* the drawn batches appended again in reverse order,
                            each copy paired with its original (t = L - 1) */
    int heads;           /* the head-permutation probe */
    int rejected;        /* recipes redrawn before this one was accepted */
    int cls;             /* NSX_FZ_SMALL, _TILES, _PRODUCTION */
    int bwd;             /* a backward problem (fuzz/bwd.c): do drawn, gradients judged */
} nsx_fz_draw;

/* Draws problem d from seed, within what ki declares (order, features) and
   the range of its precision model m. */
void nsx_fz_draw_problem(uint64_t seed, const nsx_kernel_info *ki, const nsx_model *m, nsx_fz_draw *d);

/* Likewise within steering st (NULL: nsx_fz_steer_default), which must pass
   nsx_fz_steer_check for ki. */
void nsx_fz_draw_steered(uint64_t seed, const nsx_kernel_info *ki, const nsx_model *m, const nsx_fz_steer *st,
                         nsx_fz_draw *d);

/* Appends printf-formatted text to buf (size len), truncating. */
void nsx_fz_put(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The draw as one line: "RECIPE | ties=1 lanes=3 ..." (the extras only when
   set).  Returns buf. */
char *nsx_fz_draw_text(const nsx_fz_draw *d, char *buf, size_t len);

/* ---- cases (case.c) ---------------------------------------------------------- */

typedef struct nsx_fz_case {
    nsx_instance b;         /* problem, inputs, pairs, flags; expected values once judged */
    nsx_recipe r;        /* the recipe; r.p = b.p (the reference's flags come from it) */
    int heads;           /* run the head-permutation probe */
    uint64_t seed;       /* the problem's seed */
    int exact_cap;       /* 1: the MPFR reference's own precision cap (golden
                            values to save), else NSX_FZ_PREC_CAP with the loop
                            reference behind it */
    int bwd;             /* the gradients are judged too (b.dout drawn; fuzz/bwd.c) */
    int ref_threads;     /* threads of the certified reference's fast path
                            (nsx_ref_opts.threads); 0: one per online CPU.
                            The values are the same whatever the count */
} nsx_fz_case;

/* The MPFR reference's precision cap while fuzzing, in bits. */
#define NSX_FZ_PREC_CAP 2048

/* Builds the case of a draw.  0, or an exit code with err set (a recipe
   the builder cannot honour: NSX_E_INPUT). */
int nsx_fz_case_build(const nsx_fz_draw *d, nsx_fz_case *c, nsx_err *err);

void nsx_fz_case_free(nsx_fz_case *c);

/* The case's shape in one line ("n=2 B=2 L=5 H=1 Hkv=1 d=3 dv=3 ... pairs:
   leak(0,1,t=2,nan)"); returns buf. */
char *nsx_fz_case_text(const nsx_fz_case *c, char *buf, size_t len);

/* Work of the reference on c: allowed tuples (an upper bound) times heads,
   batches and d + dv. */
double nsx_fz_case_work(const nsx_fz_case *c);

/* The small class's limit on work (nsx_fz_case_work): tuple-channels. */
#define NSX_FZ_MPFR_WORK 4.0e5

/* Automatic reference choice (nsx_fz_judge): the certified reference (the
   fast path, MPFR for the rows it leaves) unless it would leave more than
   NSX_FZ_MPFR_TUPLES allowed tuples to MPFR or a row needs more than
   NSX_FZ_PREC_CAP bits; then the binary64 loop reference when the work
   fits NSX_FZ_LOOP_WORK (tuple-channels, a few seconds), else skipped. */
#define NSX_FZ_MPFR_TUPLES 200000
#define NSX_FZ_LOOP_WORK 1.0e8

/* ---- judging (judge.c) --------------------------------------------------- */

/* Failure kinds, as bits. */
#define NSX_FZ_UNSUPPORTED 1u /* the kernel returned 1 for a problem it declares */
#define NSX_FZ_ERROR 2u       /* the kernel returned another error code */
#define NSX_FZ_PAIR 4u        /* a leak pair, mask probe or batch copy is not bit-identical */
#define NSX_FZ_EMPTY 8u       /* an empty slice's row is not O = 0 and LSE = +-inf */
#define NSX_FZ_BOUND 16u      /* an element beyond its bound, or NaN or infinite */
#define NSX_FZ_HEADS 32u      /* permuting the heads did not permute the outputs */
/* Faults, seen when the kernel runs isolated (nsx_kernel.iso, runner.h): */
#define NSX_FZ_SIGNAL 64u     /* the call was killed by a signal (SIGSEGV, SIGABRT, ...) */
#define NSX_FZ_TIMEOUT 128u   /* no result within the per-call timeout */
#define NSX_FZ_EXIT 256u      /* the process exited inside the call */
#define NSX_FZ_OVERFLOW 512u  /* a write outside o and lse (guard page or canary) */
/* The backward pass (fuzz/bwd.c): */
#define NSX_FZ_GRAD 1024u     /* a gradient beyond its bound, or NaN or infinite */
#define NSX_FZ_GRAD_PROBE 2048u /* a backward probe: a masked key's gradient not 0, batch
                                 copies, the causal probe, dO scaled, (K1,V1)<->(K2,V2) */
#define NSX_FZ_LAST_KIND NSX_FZ_GRAD_PROBE

/* The kind a failure is shrunk and reported by: the first of the bits
   in the order above. */
unsigned nsx_fz_primary(unsigned kinds);
const char *nsx_fz_kind_name(unsigned kind);

enum { NSX_FZ_PASS = 0, NSX_FZ_FAIL = 1, NSX_FZ_SKIP = 2 };
enum { NSX_FZ_REF_AUTO = 0, NSX_FZ_REF_MPFR = 1, NSX_FZ_REF_LOOP = 2 };

typedef struct nsx_fz_verdict {
    int status;          /* NSX_FZ_PASS, _FAIL, _SKIP (not applicable, undecidable) */
    unsigned kinds;      /* failure kinds */
    int ref;             /* the reference that judged: NSX_FZ_REF_MPFR (the
                            certified one: fast path and MPFR) or _LOOP */
    char note[256];      /* the first failure, or why it was skipped */
    double worst;        /* largest error/bound ratio (o and lse) */
    double worst_o, worst_lse; /* ... of o, of lse (0: none judged) */
    uint64_t tuples;     /* allowed tuples the reference summed (rows, heads) */
    double *o, *lse;     /* the kernel's outputs (owned; NULL when it failed to run) */
    int has_lse;
    double *unc_o, *unc_lse; /* the loop reference's uncertainty (owned), else NULL */
    /* the backward pass (fuzz/bwd.c), when the case is a backward one: */
    int bwd;             /* 1: the kernel's gradients were judged */
    int bwd_ref;         /* against NSX_FZ_REF_MPFR or _LOOP */
    double worst_grad;   /* largest error/bound ratio of dq, dk, dv */
    double *dq, *dk[NSX_MAX_ORDER], *dv[NSX_MAX_ORDER]; /* the kernel's gradients (owned) */
} nsx_fz_verdict;

/*
 * Runs k on c and judges it under m against the reference ref (AUTO: the
 * certified reference within NSX_FZ_MPFR_TUPLES, else the loop reference;
 * MPFR: the certified reference, unbounded; LOOP).  Fills c's expected values (c->b.o, lse, sel_out,
 * sel_scores) and v.  Returns 0 whatever the verdict, or NSX_E_INTERNAL
 * (out of memory) with err set.
 */
int nsx_fz_judge(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, int ref, nsx_fz_verdict *v,
                 nsx_err *err);

void nsx_fz_verdict_free(nsx_fz_verdict *v);

/* ---- shrinking (shrink.c) ------------------------------------------------ */

typedef struct nsx_fz_shrink_stats {
    int tries, steps;    /* candidates judged, candidates kept */
    double seconds;
} nsx_fz_shrink_stats;

/*
 * Makes c smaller while it keeps failing by `kind` (a primary kind): fewer
 * batches, positions, dimensions, heads, components; features switched off
 * (windows, selection, biases, distinct, scales); simpler values (zeros,
 * small integers, fewer significant bits).  Stops after budget seconds or
 * when no step helps.  c is replaced by the smallest failing case found.
 */
int nsx_fz_shrink(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, unsigned kind, double budget,
                  nsx_fz_shrink_stats *st, nsx_err *err);

/* nsx_fz_shrink that also stops after max_tries judged candidates (0: no
   limit): with budget = INFINITY, a result that does not depend on the
   machine's speed or load (the tests' form). */
int nsx_fz_shrink_tries(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, unsigned kind, double budget,
                        int max_tries, nsx_fz_shrink_stats *st, nsx_err *err);

/* A reshaped copy (the shrinker's steps; case.c appends copies with it): L positions (the first, or those of
   pos: keys renumbered, dropped selected keys become -1 pads), the first n
   dimensions (the last ones dropped), the first d and dv components, the
   first Hkv kv heads and G query heads per group, the batches keep[0..nb)
   (in that order; pairs whose members are dropped go with them), top-k and
   features as the shape says.  Pairs
   that no longer hold (a probe whose key is no longer excluded, a leak pair
   past L) are dropped.  0, NSX_E_INPUT when the result is not a valid
   problem, or NSX_E_INTERNAL. */
typedef struct nsx_fz_shape {
    int L, n, d, dv, Hkv, G;
    const int *keep;
    int nb;
    int k;               /* top-k: the first k entries of given rows, or a
                            smaller computed top-k */
    unsigned drop;       /* features switched off: NSX_FZ_DROP_* */
    const int *pos;      /* NULL: the first L positions; else L ascending
                            positions of the source (the others dropped) */
} nsx_fz_shape;
#define NSX_FZ_DROP_WINDOWS 1u
#define NSX_FZ_DROP_BIASES 2u
#define NSX_FZ_DROP_DISTINCT 4u
#define NSX_FZ_DROP_SELECTION 8u
#define NSX_FZ_DROP_SCALES 16u   /* score scale 1/sqrt(d), out_scale 1 */
#define NSX_FZ_DROP_REDUCE 32u   /* the product reducer */
#define NSX_FZ_DROP_WINDOW(m) (256u << (m)) /* the window of dimension m (0-based) */

/* The shape of c as it is (nothing reshaped); keep gets 0..B-1 (room for
   64). */
nsx_fz_shape nsx_fz_shape_of(const nsx_fz_case *c, int *keep);
int nsx_fz_case_reshape(const nsx_fz_case *src, const nsx_fz_shape *s, nsx_fz_case *dst, nsx_err *err);

/* A deep copy.  0 or NSX_E_INTERNAL. */
int nsx_fz_case_copy(const nsx_fz_case *src, nsx_fz_case *dst, nsx_err *err);


/* ---- saving (save.c) ----------------------------------------------------- */

/*
 * Saves a failure: DIR/STEM.safetensors (the case, its pairs, expected values
 * from the MPFR reference), DIR/STEM.candidate.safetensors (the kernel's
 * outputs, with "nsimplex.model" = m), DIR/STEM.txt (about: the lines of
 * `about`, and `nsimplex check`'s verdict on the pair).  Judges c again
 * against the MPFR reference and fills v.  *replays = 1 when `check` fails
 * the candidate (it always should, but for a head-permutation failure).
 */
int nsx_fz_save(const char *dir, const char *stem, const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c,
                const char *about, nsx_fz_verdict *v, int *replays, nsx_err *err);

/* ---- the backward pass (bwd.c) ------------------------------------------------ */

enum { NSX_FZ_BWD_MIX = 0, NSX_FZ_BWD_ONLY = 1, NSX_FZ_BWD_NONE = -1 };

/* Share of backward problems in a mixed run. */
#define NSX_FZ_BWD_SHARE 0.3

/* Backward cases up to this work (nsx_fz_case_work) get MPFR gradients;
   larger ones the binary64 loop's (fuzz/dref.h). */
#define NSX_FZ_BWD_MPFR_WORK 1.5e4

/* 1 when the problem of this seed is a backward one, by mode (NSX_FZ_BWD_*)
   and a draw from the seed; 0 when ki declares no backward. */
int nsx_fz_bwd_pick(uint64_t seed, int mode, const nsx_kernel_info *ki);

/* What a backward problem is drawn within: ki with the backward's order
   and features (tmp holds it). */
const nsx_kernel_info *nsx_fz_bwd_info(const nsx_kernel_info *ki, nsx_kernel_info *tmp);

/* Makes d a backward problem: " bwd=1" in the recipe, the leak pairs and
   probes (forward probes) out of it. */
void nsx_fz_draw_bwd(nsx_fz_draw *d);

/* 1 when the expected gradients of c come from MPFR under reference ref. */
int nsx_fz_bwd_mpfr(const nsx_fz_case *c, int ref);

/*
 * Step 6 of nsx_fz_judge for a backward case: the kernel's backward on the
 * forward outputs in v, the expected gradients (MPFR, already in c->b.out
 * when nsx_fz_bwd_mpfr, else the loop reference), the oracle on dq, dk_m,
 * dv_m, and the backward probes.  sel: the S(i) lists the kernel got.
 * Returns 0 whatever the verdict, or a fatal kind with err set.
 */
int nsx_fz_bwd_judge(const nsx_kernel *k, const nsx_model *m, nsx_fz_case *c, const int32_t *sel, int ref,
                     nsx_fz_verdict *v, nsx_err *err);

/* ---- a run (run.c) -------------------------------------------------------- */

#define NSX_FUZZ_MAX_FAILURES 16
#define NSX_FUZZ_MAX_JOBS 64 /* --jobs at most */

typedef struct nsx_fuzz_opts {
    double seconds;       /* budget for the search (shrinking not counted) */
    uint64_t seed;
    uint64_t start;       /* first problem index */
    uint64_t count;       /* problems at most; 0: no limit */
    int max_failures;     /* stop after this many, 1..NSX_FUZZ_MAX_FAILURES */
    double shrink_seconds;/* per failure */
    const char *out_dir;  /* where failures are saved; NULL: not saved */
    FILE *log;            /* progress lines and the summary; NULL: silent */
    double progress;      /* seconds between progress lines */
    int verbose;          /* every problem's line */
    const nsx_model *model; /* the model to judge by; NULL: the kernel's
                             declared one (nsx_model_from_kernel) */
    /* NULL, or 0 for a drawn problem the caller declines (e.g. a shape its
       kernel cannot take): counted, not run */
    int (*accept)(void *ctx, const nsx_kernel_problem *p);
    void *accept_ctx;
    const nsx_fz_steer *steer; /* NULL: the default mix, every declared feature */
    int bwd;              /* backward problems (fuzz/bwd.c): NSX_FZ_BWD_MIX
                             (default: some, when the kernel has a backward),
                             _ONLY (--bwd), _NONE (--no-bwd) */
    int jobs;             /* problems judged at once, each by a thread of its
                             own (--jobs); 0 or 1: one at a time.  Only with
                             an isolated kernel (k->iso) and no accept
                             callback: else one at a time.  The problems,
                             their verdicts and the summary are the same
                             whatever the count (the order of the log and
                             where a time budget ends aside) */
} nsx_fuzz_opts;

void nsx_fuzz_opts_default(nsx_fuzz_opts *o);

typedef struct nsx_fuzz_failure {
    uint64_t index, seed; /* the problem and its seed */
    unsigned kinds, kind; /* every kind seen, the one shrunk for */
    double found;         /* seconds from the start of the run */
    double shrink;        /* seconds spent shrinking */
    char draw[800];       /* the problem as drawn */
    char shrunk[400];     /* the shrunk case */
    char note[256];       /* the first failure of the shrunk case */
    char path[512];       /* the saved vector, "" when not saved */
    int replays;          /* 1: `nsimplex check` fails the saved candidate */
    int flaky;            /* 1: judged again at once, the same problem passed
                             (a nondeterministic kernel: not shrunk) */
} nsx_fuzz_failure;

/* Shapes covered: L by decade (1-9, 10-99, 100-999, 1000+), d by band. */
#define NSX_FZ_LDEC 4
#define NSX_FZ_DBANDS 5 /* 1-32, 33-64, 65-128, 129-192, 193-256 */
int nsx_fz_d_band(int d);

typedef struct nsx_fuzz_summary {
    uint64_t problems;    /* drawn and run */
    uint64_t mpfr, loop;  /* judged against each reference */
    uint64_t skipped;     /* not applicable under the model, or undecidable */
    uint64_t declined;    /* declined by opts->accept */
    uint64_t rejected;    /* recipes redrawn */
    uint64_t pairs, heads;/* problems with pairs, with the head probe */
    uint64_t bwd;         /* problems whose gradients were judged */
    int cut;              /* 1: the last problem's kernel call was stopped at
                             the end of the budget (isolated; not judged) */
    uint64_t cut_index;   /* ... that problem */
    double seconds;
    int nfail;
    nsx_fuzz_failure fail[NSX_FUZZ_MAX_FAILURES];
    /* of the judged problems (failures included, skips not): */
    double worst_o, worst_lse;          /* largest error/bound ratio seen
                                           (an indexer run: worst_o the scores', passing problems) */
    uint64_t worst_o_index, worst_lse_index; /* ... in that problem */
    uint64_t sel_differ;  /* an indexer run: selection rows valid but not the golden set
                             (ties broken otherwise, or near-ties within the tolerance) */
    uint64_t by_n[NSX_MAX_ORDER + 1], by_L[NSX_FZ_LDEC], by_d[NSX_FZ_DBANDS];
    uint64_t cls_judged[NSX_FZ_CLASSES];
    double cls_seconds[NSX_FZ_CLASSES]; /* drawing, building, running, judging
                                           (summed over the problems: with
                                           several workers, worker seconds) */
    int jobs;                           /* problems judged at once (workers) */
    uint64_t tuples, tile_tuples;       /* allowed tuples judged; of them in
                                           problems with L > 128 or d >= 128 */
} nsx_fuzz_summary;

/* The summary as one JSON object (for CI); buf must be freed. */
void nsx_fuzz_summary_json(const nsx_fuzz_summary *s, const nsx_fuzz_opts *o, struct nsx_buf *buf);

/*
 * The run: problems start, start + 1, ... of seed until the budget, count or
 * max_failures is reached.  Returns 0 (s->nfail says whether anything
 * failed), or an exit code with err set (NSX_E_INPUT: the kernel's model
 * cannot be judged; NSX_E_INTERNAL).  With k->iso (an isolated kernel) a
 * kernel call still running at the end of o->seconds is stopped there
 * (s->cut), so a hanging kernel cannot hold the run past its budget.
 */
int nsx_fuzz_run(const nsx_kernel *k, const nsx_fuzz_opts *o, nsx_fuzz_summary *s, nsx_err *err);

/*
 * The same for the kernel's indexer alone (fuzz/idx.c; kernel ABI 2-3,
 * nsx_kernel_indexer): indexer problems within its declared capabilities,
 * judged by nsx_check_indexer against the MPFR reference under o->model or
 * the indexer's declared model (nsx_model_from_kernel_indexer).  Failures
 * are shrunk (one batch, the shortest failing prefix of positions) and saved
 * (o->out_dir).  s->mpfr counts the judged problems.
 */
int nsx_fuzz_indexer_run(const nsx_kernel *k, const nsx_fuzz_opts *o, nsx_fuzz_summary *s, nsx_err *err);

#endif
