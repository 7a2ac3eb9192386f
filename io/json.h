/*
 * JSON helpers shared by the safetensors header and the nsimplex metadata:
 * a strict parser front end over cJSON, duplicate-key detection, and a small
 * writer (growable buffer, escaped strings, exact numbers).
 *
 * cJSON alone is lenient where hostile files go: it accepts raw control
 * characters and invalid UTF-8 in strings, leading zeros ("01"), numbers
 * that overflow to infinity ("1e999"), an escaped NUL that silently cuts a
 * string short, keeps duplicate keys (GetObjectItem then sees only the
 * first), and keeps only a binary64 of each number, so "1.0", "1e0" and
 * "9007199254740993" all look like integers.  nsx_json_parse closes all of
 * these: a lexical pass checks the text before cJSON sees it (so cJSON never
 * meets an unterminated string or escape), and numbers written as integers
 * are marked so that nsx_json_exact_int can tell them apart.
 */
#ifndef NSX_IO_JSON_H
#define NSX_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Most JSON values (objects, arrays, strings, numbers, literals) a text may
   hold.  cJSON spends ~64 bytes per value, so this caps its memory at about
   64 MiB whatever the file; an nsimplex file has a few hundred values. */
#define NSX_JSON_MAX_VALUES (1u << 20)

enum nsx_json_mode {
    NSX_JSON_DOC = 0,    /* a JSON document: whitespace allowed around it */
    NSX_JSON_HEADER = 1  /* a safetensors header: starts with '{', and only
                            spaces (the format's padding) may follow */
};

/*
 * Parses text[0..len) (need not be NUL-terminated) as strict JSON (RFC 8259)
 * whose root is an object: valid UTF-8, no raw control characters in
 * strings, valid escapes and no \u0000, numbers in JSON's grammar and
 * finite, at most NSX_JSON_MAX_VALUES values.  Duplicate keys are NOT
 * rejected here (see nsx_json_find_dup) so that callers can name them.
 * Numbers written as integers carry NSX_JSON_INT_TEXT in their type.
 * Returns 0 and sets *out (free with cJSON_Delete), or -1 with a one-line
 * reason in why (e.g. "invalid UTF-8 at byte 17"); -2 when out of memory.
 */
int nsx_json_parse(const char *text, size_t len, int mode, cJSON **out,
                   char *why, size_t whylen);

/* The mark nsx_json_parse sets in the type of a number written as an
   integer (no fraction, no exponent).  cJSON's own type tests (cJSON_IsNumber
   and the rest) look at the low 8 bits only, and cJSON_Delete only at
   cJSON_IsReference and cJSON_StringIsConst, so the mark is invisible to
   cJSON. */
#define NSX_JSON_INT_TEXT (1 << 12)

/* Largest magnitude nsx_json_exact_int accepts: below it every integer is a
   binary64, and no longer integer text rounds into the range. */
#define NSX_JSON_MAX_EXACT_INT 9007199254740991.0 /* 2^53 - 1 */

/* NULL when v (from nsx_json_parse) is a number written as an integer of
   magnitude at most 2^53 - 1, whose value then is exactly *out; otherwise
   what is wrong, to follow the key's name: "is not a number", "is not an
   integer" (1.5), "is not written as an integer" (1.0, 1e0), "is too
   large". */
const char *nsx_json_exact_int(const cJSON *v, int64_t *out);

/* 1 when s is valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
   nothing above U+10FFFF). */
int nsx_utf8_valid(const char *s);

/* 1 when s has a control character: C0 (below 0x20), DEL, or C1 (U+0080 to
   U+009F, in UTF-8 the pairs C2 80 to C2 9F). */
int nsx_has_control(const char *s);

/* Finds a key that repeats an earlier key of the same object, anywhere in
   the tree (the first such object in document order, the repeat that comes
   first in it).  Returns 0 and sets *dup to it (NULL when there is none)
   and *parent to the object holding it (whose ->string is NULL for the root
   and for an array element); -2 when out of memory.  O(k log k) per object
   of k keys. */
int nsx_json_find_dup(const cJSON *root, const cJSON **dup, const cJSON **parent);

/* Copies s into out (size outlen >= 4) for use in a one-line message or on
   a terminal: each control character (C0, DEL, C1 as nsx_has_control) and
   each byte of invalid UTF-8 becomes '?', and a string too long is cut at a
   character boundary and ends in "...". */
void nsx_printable(char *out, size_t outlen, const char *s);

/* A growable text buffer.  Start with nsx_buf b = {0}.  After a failed
   allocation b.oom is set, further appends do nothing, and the caller
   checks oom once at the end. */
typedef struct nsx_buf {
    char *s;       /* NUL-terminated once anything was appended */
    size_t len, cap;
    int oom;
} nsx_buf;

void nsx_buf_add(nsx_buf *b, const char *s, size_t n);
void nsx_buf_puts(nsx_buf *b, const char *s);
void nsx_buf_printf(nsx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal: quoted, with ", \ and control characters
   escaped; other bytes (UTF-8) are copied. */
void nsx_buf_json_string(nsx_buf *b, const char *s);
/* x (finite) as the shortest decimal that reads back as the same binary64
   (at most 17 significant digits, as "%.17g"); integers print without a
   fraction ("1", "-0"). */
void nsx_buf_json_number(nsx_buf *b, double x);
/* The shortest round-trip decimal of x, as above, into out (size >= 32);
   "nan", "inf", "-inf" for the non-finite. */
void nsx_fmt_double(char *out, size_t outlen, double x);
void nsx_buf_free(nsx_buf *b);

#endif
