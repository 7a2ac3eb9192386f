/*
 * JSON helpers shared by the safetensors header and the nsimplex metadata:
 * strict parsing over Jansson, and a small writer (growable buffer, escaped
 * strings, exact numbers).
 *
 * Jansson (with JSON_REJECT_DUPLICATES, and without JSON_ALLOW_NUL) refuses
 * what hostile files try: invalid UTF-8 (overlong forms, surrogates), raw
 * control characters in strings, \u0000, leading zeros, numbers that
 * overflow (integers beyond 64 bits, reals beyond binary64), duplicate keys;
 * it keeps integers and reals apart, so "1.0", "1e0" and "1" differ.  What
 * it does not do is here: limits on the values and the nesting a text may
 * hold (checked before Jansson builds anything), naming a duplicate key and
 * where it sits, the safetensors header's padding rule, and a writer whose
 * numbers are the shortest that read back exactly (Jansson writes "%.17g":
 * 0.1 as 0.10000000000000001).
 */
#ifndef NSX_IO_JSON_H
#define NSX_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Most JSON values (objects, arrays, strings, numbers, literals) a text may
   hold: this caps Jansson's memory at about 200 MiB whatever the file
   (measured: 187 MB peak RSS for {"a":[{"k":{}},...]} at the limit, 44 MB
   for numbers); an nsimplex file has a few hundred values. */
#define NSX_JSON_MAX_VALUES (1u << 20)

/* Deepest nesting of arrays and objects (Jansson's own limit is 2048). */
#define NSX_JSON_MAX_DEPTH 1000

enum nsx_json_mode {
    NSX_JSON_DOC = 0,    /* a JSON document: whitespace allowed around it */
    NSX_JSON_HEADER = 1  /* a safetensors header: starts with '{', and only
                            spaces (the format's padding) may follow */
};

/* Why a text was refused. */
typedef struct nsx_json_error {
    char why[240];       /* one line, e.g. "invalid UTF-8 at byte 17" */
    /* a duplicate key (why then says "duplicate key 'K'", and where): */
    int dup;             /* 1 when the text repeats a key of an object */
    int depth;           /* 1: a key of the root object, 2: of an object
                            that is a member of the root, ... */
    char key[80];        /* the key, printable (nsx_printable) */
    char parent[80];     /* the key whose value is the object holding it;
                            "" for the root and for an array element */
} nsx_json_error;

/*
 * Parses text[0..len) (need not be NUL-terminated) as strict JSON (RFC 8259)
 * whose root is an object, with no duplicate keys and no \u0000, at most
 * NSX_JSON_MAX_VALUES values and NSX_JSON_MAX_DEPTH levels.  Returns 0 and
 * sets *out (free with json_decref), or -1 with e filled, or -2 when out of
 * memory.  Object members iterate in the text's order.
 */
int nsx_json_parse(const char *text, size_t len, int mode, json_t **out, nsx_json_error *e);

/* Largest magnitude nsx_json_exact_int accepts: below it every integer is a
   binary64. */
#define NSX_JSON_MAX_EXACT_INT 9007199254740991 /* 2^53 - 1 */

/* NULL when v is a number written as an integer of magnitude at most
   2^53 - 1, whose value then is *out; otherwise what is wrong, to follow
   the key's name: "is not a number", "is not an integer" (1.5), "is not
   written as an integer" (1.0, 1e0), "is too large". */
const char *nsx_json_exact_int(const json_t *v, int64_t *out);

/* 1 when s is valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
   nothing above U+10FFFF). */
int nsx_utf8_valid(const char *s);

/* 1 when s has a control character: C0 (below 0x20), DEL, or C1 (U+0080 to
   U+009F, in UTF-8 the pairs C2 80 to C2 9F). */
int nsx_has_control(const char *s);

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
   fraction ("1"), and -0 as "-0.0" (a JSON integer -0 reads back as 0). */
void nsx_buf_json_number(nsx_buf *b, double x);
/* ,"KEY":x with x as nsx_buf_json_number writes it, or null when x is not
   finite (JSON has no NaN or infinity). */
void nsx_buf_json_field(nsx_buf *b, const char *key, double x);
/* The shortest round-trip decimal of x, as above, into out (size >= 32);
   "nan", "inf", "-inf" for the non-finite. */
void nsx_fmt_double(char *out, size_t outlen, double x);
void nsx_buf_free(nsx_buf *b);

#endif
