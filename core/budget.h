/*
 * Cost and memory of a problem, known before any work starts (issue 10).
 *
 * The reference's work grows with the allowed tuples |Z(i)| summed over the
 * rows (b, h, i), which can be L^(n+1) for a file of a few kilobytes, and its
 * memory with the largest single slice.  nsx_budget_of counts both without
 * overflow (saturating at UINT64_MAX); nsx_budget_check refuses a problem
 * over the limits with NSX_E_TOO_LARGE and one line that gives the count and
 * the estimated time, so every command can refuse up front (exit 2) instead
 * of running for hours or until the machine is out of memory.
 *
 * The counts: |Z(i)| per query from the slice's own bound (nsx_slice_bound,
 * nsimplex/slice.h), exact without a selection or the distinct flag and an
 * upper bound with them, summed over the rows.
 *
 * Used by cli/ (gen, eval, check, verify), fuzz/run.c, and any reference
 * that wants to refuse early; the time and memory figures are those of the
 * MPFR reference (ref/), measured on a 2-core AMD EPYC (family 25): 4e4 to
 * 1e5 allowed tuples per second at d = dv = 4.
 */
#ifndef NSX_CORE_BUDGET_H
#define NSX_CORE_BUDGET_H

#include <stdint.h>

#include "nsimplex/error.h"
#include "nsimplex/problem.h"

/* The default limit on allowed tuples: 3 to 7 minutes of the reference at
   d = 4 on the machine above.  Commands raise it with --max-tuples N. */
#define NSX_BUDGET_MAX_TUPLES ((uint64_t)1 << 24)

/* The default limit on the estimated peak memory of one command. */
#define NSX_BUDGET_MAX_BYTES ((uint64_t)4 << 30)

/* How many times faster than the MPFR loops the reference's fast certified
   path (ref/fast) works through an allowed tuple, for the default limits of
   commands that use it: measured 3.2e6 against 2.5e4 tuples per CPU-second
   (n = 2, L = 128, d = 64, windows 32, 8; ref/README.md), about 128 times;
   half of that is taken, for rows that fall back to MPFR. */
#define NSX_BUDGET_FAST_SPEED 64

typedef struct nsx_budget {
    uint64_t tuples;      /* allowed tuples summed over every row (b, h, i) */
    uint64_t row_tuples;  /* the most allowed tuples of one row */
    uint64_t visited;     /* tuples the reference enumerates: B*H*L * L^n,
                             plus the B*L*L scores of a computed selection */
    double seconds;       /* estimated time of the reference */
    uint64_t bytes;       /* estimated peak memory of the reference or oracle */
} nsx_budget;

/* The limits a command runs under; 0 members take the defaults above. */
typedef struct nsx_budget_limits {
    uint64_t max_tuples;
    uint64_t max_bytes;
    double speed;         /* the command's work per tuple is this many times
                             faster than the MPFR reference's (the time in
                             the message); 0: 1 */
} nsx_budget_limits;

/* Fills b for p (p passed nsx_problem_check).  Cost O(n L). */
void nsx_budget_of(const nsx_problem *p, nsx_budget *b);

/* nsx_budget_of, then 0 when p is within lim (NULL: the defaults), else
   NSX_E_TOO_LARGE with err = "<what>: n = 4, L = 100: 2.1e+09 allowed
   tuples (limit 16777216; 1e+10 enumerated), about 10 h of work;
   --max-tuples N raises the limit" (or the same for the memory estimate).  what names the
   file or case; b may be NULL. */
int nsx_budget_check(const nsx_problem *p, const nsx_budget_limits *lim, const char *what,
                     nsx_budget *b, nsx_err *err);

/* The limits of a command that works through a tuple `speed` times faster
   than the MPFR reference: lim's members (lim may be NULL), with a 0
   max_tuples made the default times speed, and lim->speed set to speed. */
nsx_budget_limits nsx_budget_scaled(const nsx_budget_limits *lim, double speed);

#endif
