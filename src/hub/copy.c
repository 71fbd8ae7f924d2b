/* This file contains the binary COPY encoder declared in copy.h. */
#include "hub/copy.h"

#include "hub/hub.h"

#include <string.h>

/* Appends the low `bytes` bytes of value, most significant first. */
static void append_be(cw_buf_t *buf, uint64_t value, int bytes)
{
	unsigned char out[8];
	for (int i = 0; i < bytes; i++)
		out[i] = (unsigned char)(value >> (8 * (bytes - 1 - i)));
	cw_buf_append(buf, out, (size_t)bytes);
}

void cw_copy_binary_header(cw_buf_t *buf)
{
	static const char signature[11] = "PGCOPY\n\377\r\n";   /* the 11th byte is its NUL */
	cw_buf_append(buf, signature, sizeof signature);
	append_be(buf, 0, 4);   /* flags: no OIDs */
	append_be(buf, 0, 4);   /* no header extension */
}

void cw_copy_binary_row(cw_buf_t *buf, int ncolumns)
{
	append_be(buf, (uint16_t)ncolumns, 2);
}

void cw_copy_binary_text(cw_buf_t *buf, const char *value)
{
	if (value == NULL) {
		append_be(buf, UINT32_MAX, 4);   /* -1: NULL */
		return;
	}
	size_t len = strlen(value);
	append_be(buf, (uint32_t)len, 4);
	cw_buf_append(buf, value, len);
}

void cw_copy_binary_int4(cw_buf_t *buf, int32_t value)
{
	append_be(buf, 4, 4);
	append_be(buf, (uint32_t)value, 4);
}

void cw_copy_binary_int8(cw_buf_t *buf, int64_t value)
{
	append_be(buf, 8, 4);
	append_be(buf, (uint64_t)value, 8);
}

void cw_copy_binary_timestamp(cw_buf_t *buf, int64_t unix_us)
{
	append_be(buf, 8, 4);
	append_be(buf, (uint64_t)(unix_us - CW_HUB_PG_EPOCH_UNIX_US), 8);
}

void cw_copy_binary_trailer(cw_buf_t *buf)
{
	append_be(buf, UINT16_MAX, 2);   /* -1: no more rows */
}
