/*
 * This file contains SHA-256 (FIPS 180-4) of a byte string, as lowercase
 * hex: what `sha256sum` prints for a file, so a user can compare the hash
 * /v1/status shows for the configuration with the file on disk.
 */
#ifndef CW_CORE_SHA256_H
#define CW_CORE_SHA256_H

#include <stddef.h>

/* Length of the hex digest plus its NUL. */
#define CW_SHA256_HEX_LEN 65

/* Writes the digest of len bytes at data (borrowed; NULL only when len is 0) into hex. */
void cw_sha256_hex(const void *data, size_t len, char hex[CW_SHA256_HEX_LEN]);

#endif
