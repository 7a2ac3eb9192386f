/*
 * SHA-256 (FIPS 180-4), for the vector manifest's checksums.
 */
#ifndef NSX_IO_SHA256_H
#define NSX_IO_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct nsx_sha256 {
    uint32_t h[8];
    uint64_t bytes;      /* message length so far */
    unsigned char buf[64];
    size_t fill;         /* bytes waiting in buf */
} nsx_sha256;

void nsx_sha256_init(nsx_sha256 *s);
void nsx_sha256_update(nsx_sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits and a NUL into hex[65]. */
void nsx_sha256_final(nsx_sha256 *s, char hex[65]);

/* The digest of a whole file into hex[65]: 0, or -1 when it cannot be read. */
int nsx_sha256_file(const char *path, char hex[65]);

#endif
