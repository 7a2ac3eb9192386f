/*
 * Writing and verifying golden vectors (vectors/gen.c, vectors/verify.c).
 *
 * Layout of a vector directory DIR (default vectors/):
 *   DIR/SUITE/CASE.safetensors   one case per file (docs/VECTORS.md)
 *   DIR/MANIFEST.json            every file present: its path, sha256, case,
 *                                suite, flags, description, recipe, spec and
 *                                generator version
 * The manifest is a function of the files: `gen --manifest` rebuilds it
 * from whatever DIR holds, so shards generated in parallel need no merge.
 */
#ifndef NSX_VECTORS_GEN_H
#define NSX_VECTORS_GEN_H

#include <stdio.h>

#include "core/budget.h"
#include "nsimplex/error.h"
#include "nsimplex/ref.h"
#include "vectors/suites.h"

/* Writes case c of suite s to path, its expected values from the reference
   with the fast path (the same values as MPFR alone).  lim (NULL: the
   defaults, scaled for the fast path) bounds the work: a case over it is
   refused up front (NSX_E_TOO_LARGE, core/budget.h).  stats may be NULL. */
int nsx_gen_case(const nsx_suite *s, const nsx_suite_case *c, const char *path,
                 const nsx_budget_limits *lim, nsx_ref_stats *stats, nsx_err *err);
/* The same with the reference's options (fast, threads; skip is set here);
   ref NULL: the defaults of nsx_gen_case. */
int nsx_gen_case_ref(const nsx_suite *s, const nsx_suite_case *c, const char *path,
                     const nsx_ref_opts *ref, const nsx_budget_limits *lim, nsx_ref_stats *stats,
                     nsx_err *err);

/* Writes one case of any shape from a recipe (vectors/recipe.h) to path,
   named name, in the suite "custom" (its inputs are drawn from a seed of
   that suite and name: the same recipe and name give the same file).
   stats may be NULL. */
int nsx_gen_recipe(const char *recipe, const char *name, const char *path, nsx_ref_stats *stats,
                   nsx_err *err);
/* The same with the reference's options (fast or exact-only, threads,
   progress; NULL: the defaults) and the work limits lim (NULL: the
   defaults). */
int nsx_gen_recipe_ref(const char *recipe, const char *name, const char *path, const nsx_ref_opts *ref,
                       const nsx_budget_limits *lim, nsx_ref_stats *stats, nsx_err *err);

/* Writes the cases of s that belong to shard (1..nshards) into DIR/SUITE/,
   one progress line per case to log (may be NULL), with the reference's
   options ref (NULL: nsx_gen_case's) and the work limits lim (NULL: the
   defaults); the statistics of every case are added to total (may be
   NULL). */
int nsx_gen_suite(const nsx_suite *s, const char *dir, int shard, int nshards, const nsx_ref_opts *ref,
                  const nsx_budget_limits *lim, FILE *log, nsx_ref_stats *total, nsx_err *err);

/* The SHA-256 (nettle's) of the file at path as 64 lowercase hex digits and
   a NUL into hex[65]: 0, or -1 when it cannot be read or is not a regular
   file (opened without blocking: a FIFO or a device never hangs it). */
int nsx_sha256_file(const char *path, char hex[65]);

/* Rebuilds DIR/MANIFEST.json from the case files present (atomic write);
   *count gets the number of files listed. */
int nsx_manifest_write(const char *dir, int *count, nsx_err *err);

/* Opens path for reading when it is a regular file, without blocking on a
   FIFO or a device: the descriptor, or -1 with err = "PATH: not a regular
   file" or "PATH: cannot open: ..." (NSX_E_INPUT). */
int nsx_open_regular(const char *path, nsx_err *err);

/* Checks DIR against its manifest: every listed file exists with its
   checksum; the expected values of a sample (every case when all is set)
   are recomputed from the file's inputs and must agree bit for bit (rows a
   leak pair leaves unjudged aside).  Reports to log; *failed gets the
   number of files with a bad checksum or values.  Returns 0 (whatever
   *failed), or an error kind: NSX_E_INPUT for an unusable directory or
   manifest, or a file that contradicts itself (oracle/check.h,
   nsx_pairs_consistent); NSX_E_TOO_LARGE for a file whose recomputation is
   over lim (NULL: the defaults of core/budget.h, scaled for the fast path).
   ref: the reference's options (NULL: the fast path, as nsx_gen_case);
   total (may be NULL) gets the recomputations' statistics. */
int nsx_verify(const char *dir, int all, const nsx_ref_opts *ref, const nsx_budget_limits *lim, FILE *log,
               int *failed, nsx_ref_stats *total, nsx_err *err);

#endif
