/* This file contains the growable byte buffer declared in buf.h. */
#include "core/buf.h"

#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cw_buf_reserve(cw_buf_t *buf, size_t extra)
{
	size_t need = buf->len + extra + 1;
	if (need <= buf->cap)
		return;
	size_t cap = buf->cap ? buf->cap : 64;
	while (cap < need)
		cap *= 2;
	buf->data = cw_xrealloc(buf->data, cap);
	buf->cap = cap;
}

void cw_buf_append(cw_buf_t *buf, const void *bytes, size_t len)
{
	cw_buf_reserve(buf, len);
	if (len)
		memcpy(buf->data + buf->len, bytes, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void cw_buf_append_str(cw_buf_t *buf, const char *s)
{
	cw_buf_append(buf, s, strlen(s));
}

void cw_buf_append_char(cw_buf_t *buf, char c)
{
	cw_buf_reserve(buf, 1);
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
}

void cw_buf_append_u64(cw_buf_t *buf, uint64_t value)
{
	char digits[24];
	char *end = digits + sizeof digits, *p = end;
	do {
		*--p = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	cw_buf_append(buf, p, (size_t)(end - p));
}

void cw_buf_append_i64(cw_buf_t *buf, int64_t value)
{
	if (value < 0)
		cw_buf_append_char(buf, '-');
	/* Negate in unsigned arithmetic so INT64_MIN stays defined. */
	cw_buf_append_u64(buf, value < 0 ? 0 - (uint64_t)value : (uint64_t)value);
}

void cw_buf_append_digits(cw_buf_t *buf, uint32_t value, unsigned width)
{
	char digits[10];
	if (width > sizeof digits)
		width = sizeof digits;
	for (unsigned d = width; d > 0; d--) {
		digits[d - 1] = (char)('0' + value % 10);
		value /= 10;
	}
	cw_buf_append(buf, digits, width);
}

void cw_buf_appendf(cw_buf_t *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		abort();
	cw_buf_reserve(buf, (size_t)len);
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t)len + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t)len;
}

void cw_buf_reset(cw_buf_t *buf)
{
	buf->len = 0;
	if (buf->data)
		buf->data[0] = '\0';
}

void cw_buf_free(cw_buf_t *buf)
{
	if (buf == NULL)
		return;
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

char *cw_buf_take(cw_buf_t *buf)
{
	char *out = buf->data ? buf->data : cw_xstrdup("");
	buf->data = NULL;
	buf->len = buf->cap = 0;
	return out;
}

const char *cw_buf_cstr(const cw_buf_t *buf)
{
	return buf->data ? buf->data : "";
}
