/*
 * This file contains cw_buf_t, a growable byte buffer that always keeps a
 * terminating NUL after its contents, used to build JSON, SQL and COPY data.
 */
#ifndef CW_CORE_BUF_H
#define CW_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_buf {
	char *data;   /* owned; NULL until the first append; NUL-terminated after */
	size_t len;
	size_t cap;
} cw_buf_t;

#define CW_BUF_INIT {NULL, 0, 0}

void cw_buf_reserve(cw_buf_t *buf, size_t extra);
void cw_buf_append(cw_buf_t *buf, const void *bytes, size_t len);
void cw_buf_append_str(cw_buf_t *buf, const char *s);
void cw_buf_append_char(cw_buf_t *buf, char c);
void cw_buf_appendf(cw_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends value in decimal, as "%" PRIu64 and "%" PRId64 print it, without printf. */
void cw_buf_append_u64(cw_buf_t *buf, uint64_t value);
void cw_buf_append_i64(cw_buf_t *buf, int64_t value);
/* Appends the last width (at most 10) decimal digits of value, zero-padded ("%0*u"). */
void cw_buf_append_digits(cw_buf_t *buf, uint32_t value, unsigned width);
void cw_buf_reset(cw_buf_t *buf);   /* len = 0, keeps the memory */
void cw_buf_free(cw_buf_t *buf);    /* frees the memory; the struct may be reused */
/* Hands the contents to the caller (never NULL) and leaves buf empty. */
char *cw_buf_take(cw_buf_t *buf);
/* Contents as a C string; "" when empty. Borrowed until the next change. */
const char *cw_buf_cstr(const cw_buf_t *buf);

#endif
