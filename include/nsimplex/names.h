/*
 * The problem's words as the metadata, the recipes, the fuzzer and the
 * command line write and read them (docs/SPEC.md section 4.3): the names of
 * its enums, one table each (input formats, reducers, selection sources,
 * indexer activations, pair kinds, leak futures), and the one grammar of
 * integer lists ("512,32": windows, selected dimensions).
 */
#ifndef NSIMPLEX_NAMES_H
#define NSIMPLEX_NAMES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The name of a value, or NULL when v is out of range. */
const char *nsx_format_name(int v);     /* NSX_FORMAT_*: f64, f32, f16, bf16 */
const char *nsx_reduce_name(int v);     /* NSX_REDUCE_*: product, sum, mean */
const char *nsx_source_name(int v);     /* NSX_SEL_*: indices, indexer, scores (NONE: NULL) */
const char *nsx_act_name(int v);        /* NSX_ACT_*: relu, softmax, identity */
const char *nsx_pair_kind_name(int v);  /* NSX_PAIR_*: leak, probe, gradleak */
const char *nsx_future_name(int v);     /* NSX_FUTURE_*: random, huge, nan, inf */

/* The same tables, indexed by value (an entry may be NULL: source NONE). */
extern const char *const nsx_format_names[4];
extern const char *const nsx_reduce_names[3];
extern const char *const nsx_source_names[4];
extern const char *const nsx_act_names[3];
extern const char *const nsx_future_names[4];

/* The value that name (one of the functions above) gives s: the first v >=
   first with name(v) equal to s, looking until name(v) is NULL past first.
   -1 when none does. */
int nsx_name_lookup(const char *(*name)(int), int first, const char *s);

/* The NSX_FORMAT_* named s, or -1. */
int nsx_format_from_name(const char *s);

/* The names of name(first..) as "a, b or c" into buf (size len); returns buf. */
char *nsx_name_list(const char *(*name)(int), int first, char *buf, size_t len);

/* A list of 1..cap integers in lo..hi separated by commas, each written
   as decimal digits (a leading '-' allowed when lo < 0), nothing else:
   "512,32".  Returns the count, or -1 (out[] then undefined). */
int nsx_int_list_parse(const char *text, long lo, long hi, int *out, int cap);

/* The windows w_1..w_k "W1,W2,...": 1..NSX_MAX_ORDER integers
   0..NSX_MAX_WINDOW (nsx_int_list_parse).  Returns k, or -1. */
int nsx_windows_parse(const char *text, int *w);

#ifdef __cplusplus
}
#endif

#endif /* NSIMPLEX_NAMES_H */
