/* This file contains the position checksums declared in position_check.h. */
#include "hub/position_check.h"

#include "core/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRC32C_REFLECTED 0x82f63b78u

uint32_t cw_crc32c(uint32_t crc, const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (CRC32C_REFLECTED & (0u - (crc & 1u)));
	}
	return ~crc;
}

/*
 * json as compact text with sorted keys (owned, free()), or NULL when it is
 * not JSON. An integer too large for 64 bits is read as a double on both
 * sides, so the text stays the same however it was spelt.
 */
static char *canonical_json(const char *json)
{
	json_error_t error;
	json_t *root = json_loads(json, JSON_DECODE_ANY, &error);
	if (root == NULL)
		root = json_loads(json, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &error);
	if (root == NULL)
		return NULL;
	char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(root);
	return text;
}

int cw_position_checksum(const char *key, const char *json, char out[CW_POSITION_CHECKSUM_LEN])
{
	out[0] = '\0';
	char *canonical = json != NULL ? canonical_json(json) : NULL;
	if (canonical == NULL)
		return CW_EINVAL;
	uint32_t crc = cw_crc32c(0, key, strlen(key));
	crc = cw_crc32c(crc, "\n", 1);
	crc = cw_crc32c(crc, canonical, strlen(canonical));
	free(canonical);
	snprintf(out, CW_POSITION_CHECKSUM_LEN, "crc32c:%08x", (unsigned)crc);
	return 0;
}

cw_position_verdict_t cw_position_verify(const char *key, const char *json, const char *stored)
{
	if (stored == NULL)
		return CW_POSITION_UNCHECKED;
	char computed[CW_POSITION_CHECKSUM_LEN];
	if (cw_position_checksum(key, json, computed) != 0 || strcmp(computed, stored) != 0)
		return CW_POSITION_CORRUPT;
	return CW_POSITION_VALID;
}
