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

#include "nsimplex/error.h"
#include "nsimplex/ref.h"
#include "vectors/suites.h"

/* Writes case c of suite s to path.  stats may be NULL. */
int nsx_gen_case(const nsx_suite *s, const nsx_suite_case *c, const char *path,
                 nsx_ref_stats *stats, nsx_err *err);

/* Writes the cases of s that belong to shard (1..nshards) into DIR/SUITE/,
   one progress line per case to log (may be NULL). */
int nsx_gen_suite(const nsx_suite *s, const char *dir, int shard, int nshards, FILE *log,
                  nsx_err *err);

/* The SHA-256 (nettle's) of the file at path as 64 lowercase hex digits and
   a NUL into hex[65]: 0, or -1 when it cannot be read. */
int nsx_sha256_file(const char *path, char hex[65]);

/* Rebuilds DIR/MANIFEST.json from the case files present (atomic write);
   *count gets the number of files listed. */
int nsx_manifest_write(const char *dir, int *count, nsx_err *err);

/* Checks DIR against its manifest: every listed file exists with its
   checksum; the expected values of a sample (every case when all is set)
   are recomputed from the file's inputs and must agree bit for bit (rows a
   leak pair leaves unjudged aside).  Reports to log; *failed gets the
   number of files with a bad checksum or values.  Returns 0 (whatever
   *failed), or an error kind: NSX_E_INPUT for an unusable directory or
   manifest. */
int nsx_verify(const char *dir, int all, FILE *log, int *failed, nsx_err *err);

#endif
