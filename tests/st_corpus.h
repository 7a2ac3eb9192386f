/*
 * Hostile and valid safetensors files, built from their parts, for the
 * reader's tests (tests/test_io.c) and as the seed corpus of the libFuzzer
 * targets (fuzz/corpus/safetensors/, written by st_corpus_write).  Linked
 * into every test runner (not named test_*).
 */
#ifndef NSX_TESTS_ST_CORPUS_H
#define NSX_TESTS_ST_CORPUS_H

#include <stddef.h>
#include <stdint.h>

/* One file: the 8-byte little-endian header length, the header text, then
   the data bytes; or, for the few attacks on the framing itself, exactly
   the bytes given. */
typedef struct st_file {
    const char *name;      /* file stem, [a-z0-9_] */
    const char *what;      /* the attack, in words */
    const char *header;    /* header text (may hold NUL bytes) ... */
    size_t header_len;     /* ... of this many bytes */
    const char *data;      /* bytes after the header */
    size_t data_len;
    int set_hlen;          /* 1: the length field says hlen, not header_len */
    uint64_t hlen;
    int raw;               /* 1: the file is data alone (no length field) */
    void (*make)(char **header, size_t *len); /* builds a header too long to
                                                 write out (malloc'd) */
    const char *expect;    /* a phrase the reader's message must contain */
} st_file;

extern const st_file st_hostile[];
extern const size_t st_nhostile;

/* The file's bytes (malloc'd, *len set), NULL when out of memory. */
unsigned char *st_file_bytes(const st_file *f, size_t *len);

/* Writes dir/NAME.safetensors for every hostile file and the valid files
   of st_corpus_write_valid.  Returns 0, or -1 with a message on stderr. */
int st_corpus_write(const char *dir);

/* The valid files (a file with no tensors, one tensor of each dtype with
   metadata, a small nsimplex case), written by the library's writer into
   dir.  Returns 0 or -1 with a message on stderr. */
int st_corpus_write_valid(const char *dir);

#endif
