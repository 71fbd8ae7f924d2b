/* This file contains the conversion of a change's data into BSON (mongodb_doc.h). */
#include "apply/mongodb_doc.h"

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "mongodb_target"
/* Nesting a converted value may have (MongoDB allows 100 levels; JSON text is checked to 256). */
#define DEPTH_MAX 200
/* Nesting the relaxed rewrite takes itself (deeper documents go through BSON). */
#define RELAX_DEPTH_MAX 90
/* Significant digits a Decimal128 holds. */
#define DECIMAL_DIGITS 34

static int append_value(bson_t *out, const char *key, size_t key_len, const char *span,
                        size_t len, cw_json_kind_t kind, unsigned depth, cw_err_t *err);

static int refuse(cw_err_t *err, const char *what, const char *key, size_t key_len)
{
	return cw_err_set(err, CW_EINVAL, DOMAIN, "field \"%.*s\": %s", (int)(key_len > 64 ? 64 : key_len),
	                  key, what);
}

/* Significant digits of a JSON number's text (leading zeros and the exponent left out). */
static size_t significant_digits(const char *text, size_t len)
{
	size_t digits = 0;
	bool leading = true;
	for (size_t i = 0; i < len && text[i] != 'e' && text[i] != 'E'; i++) {
		if (!isdigit((unsigned char)text[i]))
			continue;
		if (leading && text[i] == '0')
			continue;
		leading = false;
		digits++;
	}
	return digits;
}

static bool append_decimal(bson_t *out, const char *key, size_t key_len, const char *text)
{
	bson_decimal128_t dec;
	if (!bson_decimal128_from_string(text, &dec))
		return false;
	return bson_append_decimal128(out, key, (int)key_len, &dec);
}

static int append_number(bson_t *out, const char *key, size_t key_len, const char *span,
                         size_t len, cw_err_t *err)
{
	char small[64];
	char *text = len < sizeof small ? small : cw_xmalloc(len + 1);
	memcpy(text, span, len);
	text[len] = '\0';
	bool integer = strpbrk(text, ".eE") == NULL;
	bool ok = false;
	if (integer) {
		errno = 0;
		char *end = NULL;
		long long value = strtoll(text, &end, 10);
		if (errno == 0 && end != NULL && *end == '\0') {
			ok = value >= INT32_MIN && value <= INT32_MAX
			   ? bson_append_int32(out, key, (int)key_len, (int32_t)value)
			   : bson_append_int64(out, key, (int)key_len, (int64_t)value);
			goto done;
		}
	} else {
		double value = strtod(text, NULL);
		char shortest[CW_JSON_DOUBLE_LEN];
		size_t n = cw_json_format_double(value, shortest);
		if (n > 0 && n == len && memcmp(shortest, text, len) == 0) {
			ok = bson_append_double(out, key, (int)key_len, value);
			goto done;
		}
	}
	if (significant_digits(text, len) <= DECIMAL_DIGITS && append_decimal(out, key, key_len, text))
		ok = true;
	else   /* more digits than a Decimal128 holds: the digits, as text */
		ok = bson_append_utf8(out, key, (int)key_len, text, (int)len);
done:
	if (text != small)
		free(text);
	return ok ? 0 : refuse(err, "could not be written as BSON", key, key_len);
}

static int append_string(bson_t *out, const char *key, size_t key_len, const char *span,
                         size_t len, cw_err_t *err)
{
	cw_buf_t text = CW_BUF_INIT;
	cw_json_string_unescape(span, len, &text);
	bool ok = bson_append_utf8(out, key, (int)key_len, text.len ? text.data : "", (int)text.len);
	cw_buf_free(&text);
	return ok ? 0 : refuse(err, "could not be written as BSON", key, key_len);
}

/* An object whose first key starts with "$": MongoDB extended JSON, read by libbson. */
static bool is_extended(const cw_json_fields_t *members)
{
	return members->len > 0 && members->items[0].key_len > 0 && members->items[0].key[0] == '$';
}

static int append_extended(bson_t *out, const char *key, size_t key_len, const char *span,
                           size_t len, cw_err_t *err)
{
	cw_buf_t text = CW_BUF_INIT;
	cw_buf_append_str(&text, "{\"v\":");
	cw_buf_append(&text, span, len);
	cw_buf_append_char(&text, '}');
	bson_t doc;
	bson_error_t error;
	int rc = 0;
	if (!bson_init_from_json(&doc, text.data, (ssize_t)text.len, &error)) {
		cw_buf_free(&text);
		return cw_err_set(err, CW_EINVAL, DOMAIN, "field \"%.*s\": extended JSON: %s",
		                  (int)(key_len > 64 ? 64 : key_len), key, error.message);
	}
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, &doc, "v") || !bson_append_iter(out, key, (int)key_len, &iter))
		rc = refuse(err, "could not be written as BSON", key, key_len);
	bson_destroy(&doc);
	cw_buf_free(&text);
	return rc;
}

static int append_nested(bson_t *out, const char *key, size_t key_len, const char *span,
                         size_t len, bool array, unsigned depth, cw_err_t *err)
{
	if (depth >= DEPTH_MAX)
		return refuse(err, "nested too deeply", key, key_len);
	cw_json_fields_t members;
	cw_json_fields_init(&members);
	int rc = cw_json_fields_parse_nested(&members, span, err);
	if (rc == 0 && !array && is_extended(&members)) {
		cw_json_fields_clear(&members);
		return append_extended(out, key, key_len, span, len, err);
	}
	bson_t child;
	bool ok = rc == 0 && (array ? bson_append_array_begin(out, key, (int)key_len, &child)
	                            : bson_append_document_begin(out, key, (int)key_len, &child));
	if (rc == 0 && !ok)
		rc = refuse(err, "could not be written as BSON", key, key_len);
	for (size_t i = 0; ok && rc == 0 && i < members.len; i++) {
		const cw_json_field_t *m = &members.items[i];
		char index[24];
		const char *child_key = m->key;
		size_t child_len = m->key_len;
		if (array) {
			child_len = (size_t)snprintf(index, sizeof index, "%zu", i);
			child_key = index;
		}
		rc = append_value(&child, child_key, child_len, m->value, m->value_len, m->kind, depth + 1,
		                  err);
	}
	if (ok && !(array ? bson_append_array_end(out, &child) : bson_append_document_end(out, &child)))
		rc = rc != 0 ? rc : refuse(err, "could not be written as BSON", key, key_len);
	cw_json_fields_clear(&members);
	return rc;
}

static int append_value(bson_t *out, const char *key, size_t key_len, const char *span,
                        size_t len, cw_json_kind_t kind, unsigned depth, cw_err_t *err)
{
	if (memchr(key, '\0', key_len) != NULL)
		return refuse(err, "a field name holding a NUL byte", key, key_len);
	bool ok = true;
	switch (kind) {
	case CW_JSON_KIND_STRING: return append_string(out, key, key_len, span, len, err);
	case CW_JSON_KIND_NUMBER: return append_number(out, key, key_len, span, len, err);
	case CW_JSON_KIND_TRUE: ok = bson_append_bool(out, key, (int)key_len, true); break;
	case CW_JSON_KIND_FALSE: ok = bson_append_bool(out, key, (int)key_len, false); break;
	case CW_JSON_KIND_NULL: ok = bson_append_null(out, key, (int)key_len); break;
	case CW_JSON_KIND_OBJECT:
	case CW_JSON_KIND_ARRAY:
		return append_nested(out, key, key_len, span, len, kind == CW_JSON_KIND_ARRAY, depth, err);
	}
	return ok ? 0 : refuse(err, "could not be written as BSON", key, key_len);
}

int cw_mdoc_append_json(bson_t *out, const char *key, size_t key_len,
                        const cw_json_field_t *field, cw_err_t *err)
{
	return append_value(out, key, key_len, field->value, field->value_len, field->kind, 0, err);
}

/* ---- PostgreSQL types ----------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *p into *value. */
static bool digits(const char **p, const char *end, int n, int64_t *value)
{
	*value = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (*p >= end || !isdigit((unsigned char)**p))
			return false;
		*value = *value * 10 + (**p - '0');
	}
	return true;
}

bool cw_mdoc_parse_pg_time(const char *text, size_t len, int64_t *ms)
{
	const char *p = text, *end = text + len;
	int64_t y, mo, d, h = 0, mi = 0, s = 0, frac_ms = 0, off = 0;
	if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
	    p >= end || *p++ != '-' || !digits(&p, end, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	if (p < end && (*p == ' ' || *p == 'T')) {
		p++;
		if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi) ||
		    p >= end || *p++ != ':' || !digits(&p, end, 2, &s))
			return false;
		if (p < end && *p == '.') {
			p++;
			int scale = 100;
			for (; p < end && isdigit((unsigned char)*p); p++, scale /= 10)
				frac_ms += (*p - '0') * scale;   /* past milliseconds: truncated */
		}
	}
	if (p < end && (*p == '+' || *p == '-')) {
		int sign = *p++ == '-' ? -1 : 1;
		int64_t oh = 0, om = 0, os = 0;
		if (!digits(&p, end, 2, &oh))
			return false;
		if (p < end && *p == ':') {
			p++;
			if (!digits(&p, end, 2, &om))
				return false;
			if (p < end && *p == ':') {
				p++;
				if (!digits(&p, end, 2, &os))
					return false;
			}
		}
		off = sign * (oh * 3600 + om * 60 + os);
	} else if (p < end && *p == 'Z') {
		p++;
	}
	if (p != end)
		return false;   /* BC dates, infinity, other forms: kept as text */
	int64_t seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off;
	*ms = seconds * 1000 + frac_ms;
	return true;
}

/* The base type: typmods "(10,2)" dropped; *array when it ends in "[]". */
static void base_type(const char *type, char *out, size_t size, bool *array)
{
	size_t n = 0;
	int depth = 0;
	*array = false;
	for (const char *p = type; *p && n + 1 < size; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		else if (*p == '[')
			*array = true;
		else if (depth == 0 && *p != ']')
			out[n++] = *p;
	}
	out[n] = '\0';
}

static bool append_bytea(bson_t *out, const char *key, size_t key_len, const char *text, size_t len)
{
	if (len < 2 || text[0] != '\\' || text[1] != 'x' || (len - 2) % 2 != 0)
		return false;
	size_t n = (len - 2) / 2;
	uint8_t *bytes = cw_xmalloc(n ? n : 1);
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		unsigned int byte = 0;
		ok = isxdigit((unsigned char)text[2 + 2 * i]) && isxdigit((unsigned char)text[3 + 2 * i]) &&
		     sscanf(text + 2 + 2 * i, "%2x", &byte) == 1;
		bytes[i] = (uint8_t)byte;
	}
	ok = ok && bson_append_binary(out, key, (int)key_len, BSON_SUBTYPE_BINARY, bytes, (uint32_t)n);
	free(bytes);
	return ok;
}

/* A typed value; false when the type's reader does not take it (the caller falls back). */
static bool append_typed(bson_t *out, const char *key, size_t key_len, const char *base,
                         const cw_json_field_t *field)
{
	if (field->kind == CW_JSON_KIND_NUMBER) {
		char text[128];
		if (field->value_len >= sizeof text)
			return false;
		memcpy(text, field->value, field->value_len);
		text[field->value_len] = '\0';
		if (strcmp(base, "smallint") == 0 || strcmp(base, "integer") == 0) {
			errno = 0;
			long long v = strtoll(text, NULL, 10);
			return errno == 0 && v >= INT32_MIN && v <= INT32_MAX &&
			       bson_append_int32(out, key, (int)key_len, (int32_t)v);
		}
		if (strcmp(base, "bigint") == 0) {
			errno = 0;
			char *end = NULL;
			long long v = strtoll(text, &end, 10);
			return errno == 0 && *end == '\0' && bson_append_int64(out, key, (int)key_len, v);
		}
		if (strcmp(base, "numeric") == 0)
			return significant_digits(text, field->value_len) <= DECIMAL_DIGITS &&
			       append_decimal(out, key, key_len, text);
		if (strcmp(base, "real") == 0 || strcmp(base, "double precision") == 0)
			return bson_append_double(out, key, (int)key_len, strtod(text, NULL));
		return false;
	}
	if (field->kind != CW_JSON_KIND_STRING)
		return false;
	cw_buf_t text = CW_BUF_INIT;
	cw_json_string_unescape(field->value, field->value_len, &text);
	cw_buf_append_str(&text, "");
	bool ok = false;
	int64_t ms;
	if (strncmp(base, "timestamp", 9) == 0 || strcmp(base, "date") == 0)
		ok = cw_mdoc_parse_pg_time(text.data, text.len, &ms) &&
		     bson_append_date_time(out, key, (int)key_len, ms);
	else if (strcmp(base, "bytea") == 0)
		ok = append_bytea(out, key, key_len, text.data, text.len);
	else if (strcmp(base, "numeric") == 0 && strcmp(text.data, "NaN") == 0)
		ok = append_decimal(out, key, key_len, "NaN");
	cw_buf_free(&text);
	return ok;
}

int cw_mdoc_append_pg(bson_t *out, const char *key, size_t key_len, const char *pg_type,
                      const cw_json_field_t *field, cw_err_t *err)
{
	if (pg_type != NULL && field->kind != CW_JSON_KIND_NULL) {
		char base[64];
		bool array = false;
		base_type(pg_type, base, sizeof base, &array);
		if (!array && memchr(key, '\0', key_len) == NULL &&
		    append_typed(out, key, key_len, base, field))
			return 0;
	}
	return cw_mdoc_append_json(out, key, key_len, field, err);
}

/* ---- extended JSON ----------------------------------------------------------- */

int cw_mdoc_from_extended_json(bson_t *out, const char *text, size_t len, cw_err_t *err)
{
	bson_error_t error;
	bson_t parsed;
	if (!bson_init_from_json(&parsed, text, (ssize_t)len, &error))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "document is not extended JSON: %s",
		                  error.message);
	bson_destroy(out);
	bson_init(out);
	bson_concat(out, &parsed);
	bson_destroy(&parsed);
	return 0;
}

int cw_mdoc_doc_field(bson_t *out, const cw_json_field_t *doc, cw_err_t *err)
{
	if (doc->kind == CW_JSON_KIND_OBJECT)
		return cw_mdoc_from_extended_json(out, doc->value, doc->value_len, err);
	if (doc->kind != CW_JSON_KIND_STRING)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "\"doc\" is neither a document nor its text");
	cw_buf_t text = CW_BUF_INIT;
	cw_json_string_unescape(doc->value, doc->value_len, &text);
	int rc = cw_mdoc_from_extended_json(out, cw_buf_cstr(&text), text.len, err);
	cw_buf_free(&text);
	return rc;
}

/* ---- relaxed text without BSON ------------------------------------------ */

/*
 * The common case of cw_mdoc_relaxed_data without libbson's reader, whose
 * set-up per document cost more than the rest of the apply: the canonical
 * text rewritten value by value into exactly the bytes the BSON round trip
 * writes. It takes plain values and the wrappers the capture writes for
 * most fields ($numberInt, $numberLong, a finite $numberDouble, $oid, $date
 * with $numberLong); anything else returns false and the caller goes
 * through BSON, as it always did.
 */
static bool relax_value(cw_json_t *w, const cw_json_field_t *v, unsigned depth, cw_buf_t *scratch);

/* A wrapper's string content: the span without quotes; false when it holds an escape. */
static bool wrapped_text(const cw_json_field_t *v, const char **text, size_t *len)
{
	if (v->kind != CW_JSON_KIND_STRING || v->escaped)
		return false;
	*text = v->value + 1;
	*len = v->value_len - 2;
	return true;
}

/* An integer's text ("-"? digits, within [min, max]) as a number. */
static bool integer_text(const char *text, size_t len, int64_t min, int64_t max, int64_t *value)
{
	char digits[24];
	size_t at = len > 0 && text[0] == '-';
	if (len == at || len >= sizeof digits)
		return false;
	for (size_t i = at; i < len; i++)
		if (!isdigit((unsigned char)text[i]))
			return false;
	memcpy(digits, text, len);
	digits[len] = '\0';
	errno = 0;
	long long parsed = strtoll(digits, NULL, 10);
	if (errno != 0 || parsed < min || parsed > max)
		return false;
	*value = parsed;
	return true;
}

/* A decimal number's text as a finite double (no hex, no words: what a JSON number may be). */
static bool double_text(const char *text, size_t len, double *value)
{
	char number[64];
	if (len == 0 || len >= sizeof number || strspn(text, "0123456789.eE+-") < len)
		return false;
	memcpy(number, text, len);
	number[len] = '\0';
	char *end = NULL;
	errno = 0;
	*value = strtod(number, &end);
	return end == number + len && errno == 0 && isfinite(*value);
}

/* {"$<wrapper>": ...} as the BSON value's relaxed text. */
static bool relax_wrapper(cw_json_t *w, const cw_json_fields_t *f)
{
	const cw_json_field_t *v = &f->items[0];
	const char *text;
	size_t len;
	int64_t number;
	double real;
	if (f->len != 1)
		return false;
	if (v->key_len == 10 && memcmp(v->key, "$numberInt", 10) == 0)
		return wrapped_text(v, &text, &len) &&
		       integer_text(text, len, INT32_MIN, INT32_MAX, &number) &&
		       cw_json_int64(w, number, NULL) == 0;
	if (v->key_len == 11 && memcmp(v->key, "$numberLong", 11) == 0)
		return wrapped_text(v, &text, &len) &&
		       integer_text(text, len, INT64_MIN, INT64_MAX, &number) &&
		       cw_json_int64(w, number, NULL) == 0;
	if (v->key_len == 13 && memcmp(v->key, "$numberDouble", 13) == 0)
		return wrapped_text(v, &text, &len) && double_text(text, len, &real) &&
		       cw_json_double(w, real, NULL) == 0;
	if (v->key_len == 4 && memcmp(v->key, "$oid", 4) == 0) {
		if (!wrapped_text(v, &text, &len) || len != 24 || strspn(text, "0123456789abcdef") < 24)
			return false;
		cw_json_object_begin(w, NULL);
		cw_json_key(w, "$oid", NULL);
		cw_json_string_len(w, text, len, NULL);
		return cw_json_object_end(w, NULL) == 0;
	}
	if (v->key_len != 5 || memcmp(v->key, "$date", 5) != 0 || v->kind != CW_JSON_KIND_OBJECT)
		return false;
	cw_json_fields_t inner;
	cw_json_fields_init(&inner);
	bool ok = cw_json_fields_parse_nested(&inner, v->value, NULL) == 0 && inner.len == 1 &&
	          inner.items[0].key_len == 11 && memcmp(inner.items[0].key, "$numberLong", 11) == 0 &&
	          wrapped_text(&inner.items[0], &text, &len) &&
	          integer_text(text, len, INT64_MIN, INT64_MAX, &number);
	cw_json_fields_clear(&inner);
	if (!ok)
		return false;
	char date[CW_JSON_DATE_LEN];
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "$date", NULL);
	if (number >= 0 && cw_json_format_date(number, date) > 0) {
		cw_json_string(w, date, NULL);
	} else {
		cw_json_object_begin(w, NULL);
		cw_json_key(w, "$numberLong", NULL);
		snprintf(date, sizeof date, "%" PRId64, number);
		cw_json_string(w, date, NULL);
		cw_json_object_end(w, NULL);
	}
	return cw_json_object_end(w, NULL) == 0;
}

/* An object's members or an array's elements; a leading "$" key is a wrapper. */
static bool relax_fields(cw_json_t *w, const cw_json_fields_t *f, bool array, unsigned depth,
                         cw_buf_t *scratch)
{
	if (!array && f->len > 0 && f->items[0].key_len > 0 && f->items[0].key[0] == '$')
		return depth > 1 && relax_wrapper(w, f);
	if (array)
		cw_json_array_begin(w, NULL);
	else
		cw_json_object_begin(w, NULL);
	for (size_t i = 0; i < f->len; i++) {
		const cw_json_field_t *item = &f->items[i];
		if (!array && ((item->key_len > 0 && item->key[0] == '$') ||
		               memchr(item->key, '\0', item->key_len) != NULL ||
		               cw_json_key_len(w, item->key, item->key_len, NULL) != 0))
			return false;
		if (!relax_value(w, item, depth, scratch))
			return false;
	}
	return (array ? cw_json_array_end(w, NULL) : cw_json_object_end(w, NULL)) == 0;
}

static bool relax_value(cw_json_t *w, const cw_json_field_t *v, unsigned depth, cw_buf_t *scratch)
{
	switch (v->kind) {
	case CW_JSON_KIND_STRING:
		if (cw_json_span_has_nul(v->value, v->value_len))
			return false;
		if (!v->escaped)
			return cw_json_string_len(w, v->value + 1, v->value_len - 2, NULL) == 0;
		cw_buf_reset(scratch);
		cw_json_string_unescape(v->value, v->value_len, scratch);
		return cw_json_string_len(w, scratch->data, scratch->len, NULL) == 0;
	case CW_JSON_KIND_NUMBER: {
		int64_t number;
		double real;
		if (memchr(v->value, '.', v->value_len) == NULL &&
		    memchr(v->value, 'e', v->value_len) == NULL &&
		    memchr(v->value, 'E', v->value_len) == NULL)
			return integer_text(v->value, v->value_len, INT64_MIN, INT64_MAX, &number) &&
			       cw_json_int64(w, number, NULL) == 0;
		return double_text(v->value, v->value_len, &real) && cw_json_double(w, real, NULL) == 0;
	}
	case CW_JSON_KIND_TRUE:
	case CW_JSON_KIND_FALSE:
		return cw_json_bool(w, v->kind == CW_JSON_KIND_TRUE, NULL) == 0;
	case CW_JSON_KIND_NULL:
		return cw_json_null(w, NULL) == 0;
	case CW_JSON_KIND_OBJECT:
	case CW_JSON_KIND_ARRAY: {
		if (depth >= RELAX_DEPTH_MAX)
			return false;
		cw_json_fields_t f;
		cw_json_fields_init(&f);
		bool ok = cw_json_fields_parse_nested(&f, v->value, NULL) == 0 &&
		          relax_fields(w, &f, v->kind == CW_JSON_KIND_ARRAY, depth + 1, scratch);
		cw_json_fields_clear(&f);
		return ok;
	}
	}
	return false;
}

/* The "doc" field (an object, or the hub's string holding its text) as relaxed text. */
static bool relax_doc(cw_json_t *w, const cw_json_field_t *doc)
{
	cw_buf_t scratch = CW_BUF_INIT, text = CW_BUF_INIT;
	bool ok = false;
	if (doc->kind == CW_JSON_KIND_OBJECT) {
		ok = relax_value(w, doc, 0, &scratch);
	} else if (doc->kind == CW_JSON_KIND_STRING) {
		cw_json_string_unescape(doc->value, doc->value_len, &text);
		cw_json_fields_t f;
		cw_json_fields_init(&f);
		ok = cw_json_fields_parse(&f, cw_buf_cstr(&text), NULL) == 0 &&
		     relax_fields(w, &f, false, 1, &scratch);
		cw_json_fields_clear(&f);
	}
	cw_buf_free(&scratch);
	cw_buf_free(&text);
	return ok;
}

/* The data with "doc" rewritten by relax_doc, or through BSON (bson_doc) when that is NULL. */
static char *relaxed_with(const cw_json_fields_t *fields, const cw_json_field_t *doc,
                          const bson_t *bson_doc)
{
	cw_buf_t text = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &text, CW_JSON_DEFAULT);
	cw_json_object_begin(&w, NULL);
	bool ok = true;
	for (size_t i = 0; i < fields->len && ok; i++) {
		const cw_json_field_t *f = &fields->items[i];
		cw_json_key_len(&w, f->key, f->key_len, NULL);
		if (f != doc)
			cw_json_raw(&w, f->value, f->value_len, NULL);
		else if (bson_doc != NULL)
			cw_json_bson_document(&w, bson_doc, CW_JSON_BSON_RELAXED, NULL);
		else
			ok = relax_doc(&w, doc);
	}
	/* a rewrite that gave up left its objects open: the text is dropped unfinished */
	char *result = ok && cw_json_object_end(&w, NULL) == 0 && cw_json_finish(&w) == 0
	               ? cw_buf_take(&text) : NULL;
	cw_buf_free(&text);
	return result;
}

char *cw_mdoc_relaxed_data(const char *data)
{
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	char *result = NULL;
	if (data == NULL || cw_json_fields_parse(&fields, data, NULL) != 0)
		goto out;
	const cw_json_field_t *doc = cw_json_fields_get(&fields, "doc", 3);
	if (doc == NULL)
		goto out;
	if ((result = relaxed_with(&fields, doc, NULL)) != NULL)
		goto out;
	bson_t parsed = BSON_INITIALIZER;
	if (cw_mdoc_doc_field(&parsed, doc, NULL) == 0)
		result = relaxed_with(&fields, doc, &parsed);
	bson_destroy(&parsed);
out:
	cw_json_fields_clear(&fields);
	return result;
}
