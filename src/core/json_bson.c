/* This file contains the JSON writer's BSON values, as extended JSON (json.h). */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bson_value(cw_json_t *w, const bson_iter_t *iter, cw_json_bson_mode_t mode,
                      cw_err_t *err);

static int corrupt(cw_json_t *w, cw_err_t *err)
{
	w->code = CW_EPROTO;
	return cw_err_set(err, CW_EPROTO, "json", "BSON document is corrupt");
}

/* Writes the elements that child iterates, as an object or an array. */
static int bson_elements(cw_json_t *w, bson_iter_t *child, bool array,
                         cw_json_bson_mode_t mode, cw_err_t *err)
{
	if ((array ? cw_json_array_begin(w, err) : cw_json_object_begin(w, err)) != 0)
		return w->code;
	while (bson_iter_next(child)) {
		if (!array && cw_json_key_len(w, bson_iter_key(child),
		                              bson_iter_key_len(child), err) != 0)
			return w->code;
		if (bson_value(w, child, mode, err) != 0)
			return w->code;
	}
	if (child->err_off != 0)
		return corrupt(w, err);
	return array ? cw_json_array_end(w, err) : cw_json_object_end(w, err);
}

int cw_json_bson_document(cw_json_t *w, const bson_t *doc, cw_json_bson_mode_t mode,
                          cw_err_t *err)
{
	if (w->code)
		return w->code;
	bson_iter_t child;
	if (!bson_iter_init(&child, doc))
		return corrupt(w, err);
	return bson_elements(w, &child, false, mode, err);
}

/* Writes {"<wrapper>":"<text>"}. */
static int wrapped_string(cw_json_t *w, const char *wrapper, const char *text,
                          size_t len, cw_err_t *err)
{
	cw_json_object_begin(w, err);
	cw_json_key(w, wrapper, err);
	cw_json_string_len(w, text, len, err);
	return cw_json_object_end(w, err);
}

static void append_base64(cw_buf_t *buf, const uint8_t *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	cw_buf_reserve(buf, (len + 2) / 3 * 4);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t chunk = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			chunk |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			chunk |= data[i + 2];
		char quad[4] = {
			alphabet[chunk >> 18 & 63], alphabet[chunk >> 12 & 63],
			i + 1 < len ? alphabet[chunk >> 6 & 63] : '=',
			i + 2 < len ? alphabet[chunk & 63] : '=',
		};
		cw_buf_append(buf, quad, 4);
	}
}

static int bson_binary(cw_json_t *w, const bson_iter_t *iter, cw_err_t *err)
{
	bson_subtype_t subtype;
	uint32_t len;
	const uint8_t *data;
	bson_iter_binary(iter, &subtype, &len, &data);
	char subtype_hex[3];
	snprintf(subtype_hex, sizeof subtype_hex, "%02x", (unsigned)subtype & 0xff);
	cw_json_object_begin(w, err);
	cw_json_key(w, "$binary", err);
	cw_json_object_begin(w, err);
	cw_json_key(w, "base64", err);
	if (w->code)
		return w->code;
	cw_buf_t text = CW_BUF_INIT;
	cw_buf_append_char(&text, '"');
	append_base64(&text, data, len);
	cw_buf_append_char(&text, '"');
	cw_json_raw(w, text.data, text.len, err);
	cw_buf_free(&text);
	cw_json_key(w, "subType", err);
	cw_json_string(w, subtype_hex, err);
	cw_json_object_end(w, err);
	return cw_json_object_end(w, err);
}

static int bson_double(cw_json_t *w, double value, cw_json_bson_mode_t mode,
                       cw_err_t *err)
{
	if (mode == CW_JSON_BSON_RELAXED && isfinite(value))
		return cw_json_double(w, value, err);
	char text[CW_JSON_DOUBLE_LEN + 2];
	size_t len = cw_json_format_double(value, text);
	if (len == 0) {
		snprintf(text, sizeof text, "%s",
		         isnan(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
		len = strlen(text);
	} else if (strpbrk(text, ".e") == NULL) {
		memcpy(text + len, ".0", 3); /* canonical form keeps it a double */
		len += 2;
	}
	return wrapped_string(w, "$numberDouble", text, len, err);
}

static int bson_date(cw_json_t *w, int64_t ms, cw_json_bson_mode_t mode, cw_err_t *err)
{
	char text[CW_JSON_DATE_LEN];
	cw_json_object_begin(w, err);
	cw_json_key(w, "$date", err);
	if (mode == CW_JSON_BSON_RELAXED && ms >= 0 && cw_json_format_date(ms, text) > 0) {
		cw_json_string(w, text, err);
	} else {
		snprintf(text, sizeof text, "%" PRId64, ms);
		wrapped_string(w, "$numberLong", text, strlen(text), err);
	}
	return cw_json_object_end(w, err);
}

static int bson_number(cw_json_t *w, int64_t value, bool is_long,
                       cw_json_bson_mode_t mode, cw_err_t *err)
{
	if (mode == CW_JSON_BSON_RELAXED)
		return cw_json_int64(w, value, err);
	char text[24];
	snprintf(text, sizeof text, "%" PRId64, value);
	return wrapped_string(w, is_long ? "$numberLong" : "$numberInt", text,
	                      strlen(text), err);
}

static int bson_oid(cw_json_t *w, const bson_oid_t *oid, cw_err_t *err)
{
	char hex[25];
	bson_oid_to_string(oid, hex);
	return wrapped_string(w, "$oid", hex, 24, err);
}

/* Regular expressions, DB pointers, code with scope and timestamps. */
static int bson_rare(cw_json_t *w, const bson_iter_t *iter, cw_json_bson_mode_t mode,
                     cw_err_t *err)
{
	cw_json_object_begin(w, err);
	switch (bson_iter_type(iter)) {
	case BSON_TYPE_REGEX: {
		const char *options;
		const char *pattern = bson_iter_regex(iter, &options);
		cw_json_key(w, "$regularExpression", err);
		cw_json_object_begin(w, err);
		cw_json_key(w, "pattern", err);
		cw_json_string(w, pattern, err);
		cw_json_key(w, "options", err);
		cw_json_string(w, options, err);
		cw_json_object_end(w, err);
		break;
	}
	case BSON_TYPE_DBPOINTER: {
		uint32_t len;
		const char *collection;
		const bson_oid_t *oid;
		bson_iter_dbpointer(iter, &len, &collection, &oid);
		cw_json_key(w, "$dbPointer", err);
		cw_json_object_begin(w, err);
		cw_json_key(w, "$ref", err);
		cw_json_string_len(w, collection, len, err);
		cw_json_key(w, "$id", err);
		bson_oid(w, oid, err);
		cw_json_object_end(w, err);
		break;
	}
	case BSON_TYPE_CODEWSCOPE: {
		uint32_t len, scope_len;
		const uint8_t *scope_data;
		const char *code = bson_iter_codewscope(iter, &len, &scope_len, &scope_data);
		bson_t scope;
		cw_json_key(w, "$code", err);
		cw_json_string_len(w, code, len, err);
		cw_json_key(w, "$scope", err);
		if (!bson_init_static(&scope, scope_data, scope_len))
			return corrupt(w, err);
		cw_json_bson_document(w, &scope, mode, err);
		break;
	}
	default: { /* BSON_TYPE_TIMESTAMP */
		uint32_t seconds, increment;
		bson_iter_timestamp(iter, &seconds, &increment);
		cw_json_key(w, "$timestamp", err);
		cw_json_object_begin(w, err);
		cw_json_key(w, "t", err);
		cw_json_int64(w, seconds, err);
		cw_json_key(w, "i", err);
		cw_json_int64(w, increment, err);
		cw_json_object_end(w, err);
		break;
	}
	}
	return cw_json_object_end(w, err);
}

static int bson_value(cw_json_t *w, const bson_iter_t *iter, cw_json_bson_mode_t mode,
                      cw_err_t *err)
{
	uint32_t len;
	const char *text;
	switch (bson_iter_type(iter)) {
	case BSON_TYPE_DOUBLE:
		return bson_double(w, bson_iter_double(iter), mode, err);
	case BSON_TYPE_UTF8:
		text = bson_iter_utf8(iter, &len);
		return cw_json_string_len(w, text, len, err);
	case BSON_TYPE_DOCUMENT:
	case BSON_TYPE_ARRAY: {
		bson_iter_t child;
		if (!bson_iter_recurse(iter, &child))
			return corrupt(w, err);
		return bson_elements(w, &child, bson_iter_type(iter) == BSON_TYPE_ARRAY,
		                     mode, err);
	}
	case BSON_TYPE_BINARY:
		return bson_binary(w, iter, err);
	case BSON_TYPE_UNDEFINED:
		cw_json_object_begin(w, err);
		cw_json_key(w, "$undefined", err);
		cw_json_bool(w, true, err);
		return cw_json_object_end(w, err);
	case BSON_TYPE_OID:
		return bson_oid(w, bson_iter_oid(iter), err);
	case BSON_TYPE_BOOL:
		return cw_json_bool(w, bson_iter_bool(iter), err);
	case BSON_TYPE_DATE_TIME:
		return bson_date(w, bson_iter_date_time(iter), mode, err);
	case BSON_TYPE_NULL:
		return cw_json_null(w, err);
	case BSON_TYPE_CODE:
		text = bson_iter_code(iter, &len);
		return wrapped_string(w, "$code", text, len, err);
	case BSON_TYPE_SYMBOL:
		text = bson_iter_symbol(iter, &len);
		return wrapped_string(w, "$symbol", text, len, err);
	case BSON_TYPE_INT32:
		return bson_number(w, bson_iter_int32(iter), false, mode, err);
	case BSON_TYPE_INT64:
		return bson_number(w, bson_iter_int64(iter), true, mode, err);
	case BSON_TYPE_DECIMAL128: {
		bson_decimal128_t dec;
		char dec_text[BSON_DECIMAL128_STRING];
		bson_iter_decimal128(iter, &dec);
		bson_decimal128_to_string(&dec, dec_text);
		return wrapped_string(w, "$numberDecimal", dec_text, strlen(dec_text), err);
	}
	case BSON_TYPE_MAXKEY:
	case BSON_TYPE_MINKEY:
		cw_json_object_begin(w, err);
		cw_json_key(w, bson_iter_type(iter) == BSON_TYPE_MAXKEY ? "$maxKey" : "$minKey",
		            err);
		cw_json_int64(w, 1, err);
		return cw_json_object_end(w, err);
	case BSON_TYPE_REGEX:
	case BSON_TYPE_DBPOINTER:
	case BSON_TYPE_CODEWSCOPE:
	case BSON_TYPE_TIMESTAMP:
		return bson_rare(w, iter, mode, err);
	default:
		return corrupt(w, err);
	}
}

int cw_json_bson_value(cw_json_t *w, const bson_iter_t *iter, cw_json_bson_mode_t mode,
                       cw_err_t *err)
{
	if (w->code)
		return w->code;
	return bson_value(w, iter, mode, err);
}

