/*
 * This file contains MySQL's binary JSON (a JSON column's row-image value)
 * written as JSON text, declared in mysql_binlog.h (cw_binlog_json_text).
 */
#include "capture/mysql_binlog_internal.h"

#include "core/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	JSONB_SMALL_OBJECT = 0, JSONB_LARGE_OBJECT, JSONB_SMALL_ARRAY, JSONB_LARGE_ARRAY,
	JSONB_LITERAL, JSONB_INT16, JSONB_UINT16, JSONB_INT32, JSONB_UINT32, JSONB_INT64,
	JSONB_UINT64, JSONB_DOUBLE, JSONB_STRING, JSONB_OPAQUE = 15,
};

typedef struct jsonb {
	const uint8_t *bytes;
	size_t len;
	cw_json_t *w;
	cw_err_t *err;
	int depth;
} jsonb_t;

static int jsonb_fail(const jsonb_t *j, size_t at, const char *what)
{
	return cw_err_set(j->err, CW_EPROTO, CW_BINLOG_DOMAIN, "binlog JSON value: %s at offset %zu",
		what, at);
}

static int jsonb_value(jsonb_t *j, uint8_t type, size_t at, size_t end);

/* A variable-length size: 7 bits a byte, low bits first. */
static int jsonb_varlen(const jsonb_t *j, size_t *at, size_t end, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < 5; i++) {
		if (*at >= end)
			return jsonb_fail(j, *at, "truncated length");
		uint8_t b = j->bytes[(*at)++];
		*v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return 0;
	}
	return jsonb_fail(j, *at, "length too long");
}

static int jsonb_string(jsonb_t *j, size_t at, size_t end)
{
	uint64_t len;
	if (jsonb_varlen(j, &at, end, &len))
		return CW_EPROTO;
	if (len > end - at)
		return jsonb_fail(j, at, "truncated string");
	return cw_json_string_len(j->w, (const char *)j->bytes + at, len, j->err);
}

static int jsonb_opaque(jsonb_t *j, size_t at, size_t end)
{
	uint64_t len;
	if (at >= end)
		return jsonb_fail(j, at, "truncated opaque value");
	uint8_t type = j->bytes[at++];
	if (jsonb_varlen(j, &at, end, &len))
		return CW_EPROTO;
	if (len > end - at)
		return jsonb_fail(j, at, "truncated opaque value");
	const uint8_t *p = j->bytes + at;
	cw_buf_t text = CW_BUF_INIT;
	cw_binlog_reader_t r = {p, len, 0, "JSON value", j->err, NULL};
	int rc;
	if (type == CW_MYSQL_TYPE_NEWDECIMAL && len >= 2) {
		size_t used;
		rc = cw_binlog_read_decimal(&r, p[0], p[1], p + 2, len - 2, &used, &text);
		if (rc == 0)
			rc = cw_json_raw(j->w, text.data, text.len, j->err);
	} else if ((type == CW_MYSQL_TYPE_DATETIME || type == CW_MYSQL_TYPE_TIMESTAMP ||
	            type == CW_MYSQL_TYPE_DATE || type == CW_MYSQL_TYPE_TIME) && len >= 8) {
		int64_t packed = (int64_t)cw_binlog_le(p, 8);
		if (type == CW_MYSQL_TYPE_TIME) {
			cw_binlog_put_time_packed(&text, packed, 6);
		} else {
			uint64_t a = (uint64_t)(packed < 0 ? -packed : packed);
			cw_binlog_put_datetime_packed(&text, a >> 24, 6, (uint32_t)(a % (1 << 24)));
			if (type == CW_MYSQL_TYPE_DATE)
				text.len = 10;
		}
		rc = cw_json_string_len(j->w, text.data, text.len, j->err);
	} else {
		/* as MySQL prints it: base64:type<N>:<base64> */
		static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		cw_buf_appendf(&text, "base64:type%u:", type);
		for (size_t i = 0; i < len; i += 3) {
			uint32_t n = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
				(i + 2 < len ? p[i + 2] : 0);
			cw_buf_append_char(&text, b64[n >> 18]);
			cw_buf_append_char(&text, b64[(n >> 12) & 63]);
			cw_buf_append_char(&text, i + 1 < len ? b64[(n >> 6) & 63] : '=');
			cw_buf_append_char(&text, i + 2 < len ? b64[n & 63] : '=');
		}
		rc = cw_json_string_len(j->w, text.data, text.len, j->err);
	}
	cw_buf_free(&text);
	return rc;
}

/* An object or array at [at, end): count, size, then entries. */
static int jsonb_container(jsonb_t *j, bool object, bool large, size_t at, size_t end)
{
	size_t w = large ? 4 : 2;
	if (end - at < 2 * w)
		return jsonb_fail(j, at, "truncated container");
	uint64_t count = cw_binlog_le(j->bytes + at, w), size = cw_binlog_le(j->bytes + at + w, w);
	if (size > end - at || size < 2 * w)
		return jsonb_fail(j, at, "container size out of range");
	end = at + size;
	size_t key_entry = w + 2, value_entry = 1 + w;
	size_t header = 2 * w + (object ? count * key_entry : 0) + count * value_entry;
	if (count > size || header > size)
		return jsonb_fail(j, at, "container count out of range");
	if (++j->depth > CW_JSON_MAX_DEPTH - 4)
		return jsonb_fail(j, at, "nested too deep");
	int rc = object ? cw_json_object_begin(j->w, j->err) : cw_json_array_begin(j->w, j->err);
	for (uint64_t i = 0; rc == 0 && i < count; i++) {
		if (object) {
			size_t k = at + 2 * w + i * key_entry;
			uint64_t koff = cw_binlog_le(j->bytes + k, w), klen = cw_binlog_le(j->bytes + k + w, 2);
			if (koff > size || klen > size - koff)
				return jsonb_fail(j, k, "key out of range");
			rc = cw_json_key_len(j->w, (const char *)j->bytes + at + koff, klen, j->err);
			if (rc)
				break;
		}
		size_t v = at + 2 * w + (object ? count * key_entry : 0) + i * value_entry;
		uint8_t type = j->bytes[v];
		bool inlined = type == JSONB_LITERAL || type == JSONB_INT16 || type == JSONB_UINT16 ||
			(large && (type == JSONB_INT32 || type == JSONB_UINT32));
		if (inlined) {
			rc = jsonb_value(j, type, v + 1, v + 1 + w);
			continue;
		}
		uint64_t off = cw_binlog_le(j->bytes + v + 1, w);
		if (off < header || off >= size)
			return jsonb_fail(j, v, "value out of range");
		rc = jsonb_value(j, type, at + off, end);
	}
	if (rc == 0)
		rc = object ? cw_json_object_end(j->w, j->err) : cw_json_array_end(j->w, j->err);
	j->depth--;
	return rc;
}

static int jsonb_value(jsonb_t *j, uint8_t type, size_t at, size_t end)
{
	static const size_t sizes[] = {
		[JSONB_INT16] = 2, [JSONB_UINT16] = 2, [JSONB_INT32] = 4, [JSONB_UINT32] = 4,
		[JSONB_INT64] = 8, [JSONB_UINT64] = 8, [JSONB_DOUBLE] = 8,
	};
	if (at > end)
		return jsonb_fail(j, at, "value out of range");
	if (type >= JSONB_INT16 && type <= JSONB_DOUBLE && end - at < sizes[type])
		return jsonb_fail(j, at, "truncated number");
	uint64_t v = type >= JSONB_INT16 && type <= JSONB_DOUBLE ?
		cw_binlog_le(j->bytes + at, sizes[type]) : 0;
	double d;
	switch (type) {
	case JSONB_SMALL_OBJECT: return jsonb_container(j, true, false, at, end);
	case JSONB_LARGE_OBJECT: return jsonb_container(j, true, true, at, end);
	case JSONB_SMALL_ARRAY: return jsonb_container(j, false, false, at, end);
	case JSONB_LARGE_ARRAY: return jsonb_container(j, false, true, at, end);
	case JSONB_LITERAL:
		if (at >= end || j->bytes[at] > 2)
			return jsonb_fail(j, at, "invalid literal");
		return j->bytes[at] == 0 ? cw_json_null(j->w, j->err) :
			cw_json_bool(j->w, j->bytes[at] == 1, j->err);
	case JSONB_INT16: return cw_json_int64(j->w, (int16_t)v, j->err);
	case JSONB_UINT16: return cw_json_uint64(j->w, v, j->err);
	case JSONB_INT32: return cw_json_int64(j->w, (int32_t)v, j->err);
	case JSONB_UINT32: return cw_json_uint64(j->w, v, j->err);
	case JSONB_INT64: return cw_json_int64(j->w, (int64_t)v, j->err);
	case JSONB_UINT64: return cw_json_uint64(j->w, v, j->err);
	case JSONB_DOUBLE:
		memcpy(&d, &v, 8);
		return cw_json_double(j->w, d, j->err);
	case JSONB_STRING: return jsonb_string(j, at, end);
	case JSONB_OPAQUE: return jsonb_opaque(j, at, end);
	default: return jsonb_fail(j, at, "unknown value type");
	}
}

int cw_binlog_json_text(const uint8_t *bytes, size_t len, cw_buf_t *out, cw_err_t *err)
{
	cw_json_t w;
	size_t mark = out->len;
	cw_json_init(&w, out, CW_JSON_NO_NUL);
	jsonb_t j = {bytes, len, &w, err, 0};
	int rc = len == 0 ? cw_json_null(&w, err) : jsonb_value(&j, bytes[0], 1, len);
	if (rc == 0 && w.depth != 0)
		rc = CW_EINTERNAL;
	if (rc != 0) {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		return rc == CW_EPROTO ? rc : cw_err_set(err, CW_EPROTO, CW_BINLOG_DOMAIN,
			"binlog JSON value: %s", err != NULL ? err->message : "invalid");
	}
	return cw_json_finish(&w);
}
