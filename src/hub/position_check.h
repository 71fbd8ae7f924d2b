/*
 * This file contains the integrity check of the positions the hub stores in
 * cachewarp.metadata (PostgreSQL checkpoints, MongoDB resume tokens, scan
 * progress): a CRC32C of a canonical text of the key and its JSON value,
 * written with the value and checked when it is read back. A position whose
 * checksum fails is treated as lost (the source's `on_position_lost`), never
 * used.
 *
 * The canonical text is the key, a line feed, and the value as compact JSON
 * with object keys sorted, so it does not depend on how the value was spelt
 * when written or how jsonb prints it when read ({"b": 1, "a": "x"} and
 * {"a":"x","b":1} are one position). The stored checksum reads
 * "crc32c:" followed by 8 lower-case hex digits.
 *
 * THREAD SAFETY: pure functions.
 */
#ifndef CW_HUB_POSITION_CHECK_H
#define CW_HUB_POSITION_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* "crc32c:" + 8 hex digits + NUL. */
#define CW_POSITION_CHECKSUM_LEN 16

/* CRC-32C (Castagnoli, reflected, as iSCSI and ext4 use) of len bytes, continuing from crc (0 to start). */
uint32_t cw_crc32c(uint32_t crc, const void *bytes, size_t len);

/*
 * Writes the checksum of key's value json (both borrowed) into out. Returns
 * 0, or CW_EINVAL when json is not JSON (out is then "").
 */
int cw_position_checksum(const char *key, const char *json, char out[CW_POSITION_CHECKSUM_LEN]);

typedef enum cw_position_verdict {
	CW_POSITION_VALID = 0,     /* the stored checksum matches */
	CW_POSITION_UNCHECKED,     /* stored before checksums existed: accepted once, then rewritten */
	CW_POSITION_CORRUPT,       /* the checksum does not match (or the value is not JSON): lost */
} cw_position_verdict_t;

/* Checks json (key's value as read back) against stored (the checksum column; NULL = none). */
cw_position_verdict_t cw_position_verify(const char *key, const char *json, const char *stored);

#endif
