/*
 * The emulated honest forward kernels and the problems of the oracle's
 * tests (tests/emu.c): tests/test_oracle.c judges them, and
 * tests/test_grad_oracle.c builds its backward kernels on their rounding
 * and tuple loop (one definition of both).
 *
 * The emulated kernels share nothing with the oracle: their own rounding
 * (round to nearest even with gradual underflow, written here), their own
 * tuple loop over nsx_ref_allowed, their own order of operations.  Linked
 * into every test runner (not named test_*).
 */
#ifndef NSX_TESTS_EMU_H
#define NSX_TESTS_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "io/casefile.h"
#include "nsimplex/problem.h"
#include "oracle/check.h"
#include "oracle/model.h"
#include "tests/harness.h"

#define SEED 20261124u
#define NONE (-1)

/* ---- emulated number formats ------------------------------------------ */

/* x rounded to nearest even in format f (NSX_FORMAT_*; NONE or F64: x),
   with gradual underflow and overflow to infinity. */
double R(double x, int f);

/* One ulp of format f at binary64 value x (x representable in f). */
double ulp_of(double x, int f);

/* ---- emulated kernels ------------------------------------------------- */

enum { NAIVE, FLASH, EINSUM };

typedef struct ekernel {
    const char *name;
    int kind;
    int in, op, acc, inter, w, out, lseout; /* NSX_FORMAT_* or NONE */
    const char *model;                      /* what it is judged by */
    int rough;                              /* truncating, flushing, inexact exp */
} ekernel;

enum { NKERNELS = 13 };
extern const ekernel kernels[NKERNELS];

/* Roundings of kernel K (rough ones truncate, flush and err in exp, log):
   to acc, of acc's exp, exp2 and log, to out, to lseout. */
double RA(const ekernel *K, double x);
double EXPA(const ekernel *K, double x);
double RO(const ekernel *K, double x);
double RL(const ekernel *K, double x);

/* What the kernel reads for one row. */
typedef struct erow {
    const ekernel *K;
    const nsx_problem *p;
    const tcase *t;
    int b, h, g, i;
} erow;

/* K~_m[j, l] and V~_m[j, c] as GEMM operands: rounded to in, biased in
   acc, then op. */
double key_op(const erow *r, int m, int j, int l);
double val_op(const erow *r, int m, int j, int c);

/* The reduced value W[J, c] (E5): elementwise in acc, rounded to op. */
double reduced(const erow *r, const int *J, int c);

/* The raw score sum_l (Q s K~_1 ... K~_{n-1}) K~_n; with_scale 0: the
   scale is left to the caller. */
double raw_score(const erow *r, const int *J, int with_scale);

/* Every allowed tuple of row i, in lexicographic order (malloc'd, n ints a
   tuple), their count in *N. */
int *row_tuples(const nsx_problem *p, const int32_t *sel_row, int i, size_t *N);

/* One row's o[0..dv) and lse over its N allowed tuples list (row_tuples),
   as each kind of kernel computes it: two passes (NAIVE); the online
   softmax over blocks of `block` tuples (FLASH); the einsum pipeline
   (EINSUM). */
void naive_row(const erow *r, const int *list, size_t N, double *o, double *lse);
void flash_row(const erow *r, const int *list, size_t N, int block, double *o, double *lse);
enum { EMU_BUG_NONE = -1, EMU_BUG_SCALE, EMU_BUG_DROP_TILE, EMU_BUG_RESCALE, EMU_NBUGS };
void flash_row_planted(const erow *r, const int *list, size_t N, int block, int bug, double *o, double *lse);
void einsum_row(const erow *r, const int *list, size_t N, double *o, double *lse);

/* The kernel's outputs for the whole problem; sel: S(i) lists or NULL;
   block: the flash kernels' tuples per block. */
void run_kernel(const ekernel *K, const tcase *t, const int32_t *sel, int block, double *o, double *lse);

/* KB, KH or KF: the problems K is judged on (its input format's). */
int kernel_class(const ekernel *K);

/* ---- problems ---------------------------------------------------------- */

enum { SHAPE_RANDOM, SHAPE_PEAKED, SHAPE_EQUAL_SCORES, SHAPE_EQUAL_KEYS };
/* which kernels judge a problem */
enum { KB = 1, KH = 2, KF = 4 };

typedef struct pspec {
    const char *name;
    int n, B, L, H, Hkv, d, dv, reduce, causal, distinct;
    int w[4];
    double kb[4], vb[4];
    double out_scale;   /* 0: 1 */
    double score_scale; /* 0: the exact 1/sqrt(d) */
    int src, k;         /* selection source and size (0: none) */
    unsigned dims;
    int fmt;            /* the vector's input format */
    int bits, frac;     /* inputs m 2^-frac, |m| < 2^bits */
    int qe, ke, ve;     /* extra binary exponents on q, k, v */
    int shape;
    unsigned kernels;
} pspec;

/* The problem tables' shorthands. */
#define P NSX_REDUCE_PRODUCT
#define S NSX_REDUCE_SUM
#define M NSX_REDUCE_MEAN
#define BF NSX_FORMAT_BF16
#define H16 NSX_FORMAT_F16
#define F32 NSX_FORMAT_F32
#define F64 NSX_FORMAT_F64
#define GIV NSX_SEL_INDICES
#define SCO NSX_SEL_SCORES
#define IDX NSX_SEL_INDEXER

enum { NPROBLEMS = 44 };
extern const pspec problems[NPROBLEMS];

/* A random problem of kernel class cls (KB, KH, KF), drawn from r. */
void random_spec(rng *r, unsigned cls, pspec *s);

/* x[0..count) times 2^e. */
void scale_all(double *x, size_t count, int e);

/* The problem of spec s with random inputs and its golden outputs.
   Returns 0, or 1 (t freed) when the reference reaches its precision cap. */
int make_problem(const pspec *s, unsigned seed, tcase *t);

/* The selection the kernel receives: given, or the golden computed one. */
const int32_t *kernel_sel(const tcase *t);

/* The model text parses (asserted). */
nsx_model model_of(const char *text);

/* The report's failures and notes on stderr. */
void print_failures(const char *what, const nsx_check_report *rep);

/* A committed vector as a tcase view (nothing owned: never tcase_free it). */
void view_of(const nsx_case *c, tcase *t);

#endif /* NSX_TESTS_EMU_H */
