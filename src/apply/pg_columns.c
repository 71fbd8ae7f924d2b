/* This file contains the PostgreSQL target's column rules (pg_columns.h). */
#include "apply/pg_columns.h"

#include "apply/typed_value.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of a mapped name before its hash suffix. */
#define MAPPED_PREFIX_MAX 54

static const struct {
	const char *type;
	cw_pgc_kind_t kind;
} known_types[] = {
	{"text", CW_PGC_TEXT},
	{"smallint", CW_PGC_SMALLINT},
	{"integer", CW_PGC_INTEGER},
	{"bigint", CW_PGC_BIGINT},
	{"double precision", CW_PGC_DOUBLE},
	{"numeric", CW_PGC_NUMERIC},
	{"boolean", CW_PGC_BOOLEAN},
	{"jsonb", CW_PGC_JSONB},
	{"json", CW_PGC_JSONB},
	{"timestamp with time zone", CW_PGC_TIMESTAMPTZ},
};

cw_pgc_kind_t cw_pgc_kind_of(const char *type)
{
	for (size_t i = 0; i < sizeof known_types / sizeof known_types[0]; i++)
		if (strcmp(type, known_types[i].type) == 0)
			return known_types[i].kind;
	return CW_PGC_OTHER;
}

const char *cw_pgc_type_name(cw_pgc_kind_t kind)
{
	switch (kind) {
	case CW_PGC_TEXT: return "text";
	case CW_PGC_SMALLINT: return "smallint";
	case CW_PGC_INTEGER: return "integer";
	case CW_PGC_BIGINT: return "bigint";
	case CW_PGC_DOUBLE: return "double precision";
	case CW_PGC_NUMERIC: return "numeric";
	case CW_PGC_BOOLEAN: return "boolean";
	case CW_PGC_JSONB: return "jsonb";
	case CW_PGC_TIMESTAMPTZ: return "timestamp with time zone";
	case CW_PGC_OTHER: return NULL;
	}
	return NULL;
}

/* The span of the string value of the only member named key in an object span, or NULL. */
static const char *single_string_member(const char *span, size_t len, const char *key,
                                        size_t *inner_len)
{
	(void)len;
	cw_json_fields_t members;
	cw_json_fields_init(&members);
	const char *inner = NULL;
	if (cw_json_fields_parse_nested(&members, span, NULL) == 0 && members.len == 1 &&
	    members.items[0].key_len == strlen(key) &&
	    memcmp(members.items[0].key, key, members.items[0].key_len) == 0 &&
	    members.items[0].kind == CW_JSON_KIND_STRING) {
		inner = members.items[0].value;
		*inner_len = members.items[0].value_len;
	}
	cw_json_fields_clear(&members);
	return inner;
}

/* Whether an object span holds "$ (an extended JSON key, perhaps). */
static bool has_dollar_key(const char *span, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (span[i] == '"' && span[i + 1] == '$')
			return true;
	return false;
}

void cw_pgc_read(const cw_json_field_t *field, cw_decimal_mode_t mode, cw_pgc_read_t *out)
{
	(void)mode;
	memset(out, 0, sizeof *out);
	switch (field->kind) {
	case CW_JSON_KIND_NULL:
		out->value = CW_PGV_NULL;
		return;
	case CW_JSON_KIND_TRUE:
	case CW_JSON_KIND_FALSE:
		out->value = CW_PGV_BOOL;
		return;
	case CW_JSON_KIND_STRING:
		out->value = CW_PGV_STRING;
		return;
	case CW_JSON_KIND_ARRAY:
		out->value = CW_PGV_ARRAY;
		return;
	case CW_JSON_KIND_OBJECT:
		out->value = CW_PGV_OBJECT;
		if (field->value_len < 96 && has_dollar_key(field->value, field->value_len)) {
			if ((out->inner = single_string_member(field->value, field->value_len, "$date",
			                                       &out->inner_len)) != NULL)
				out->value = CW_PGV_DATE;
			else if ((out->inner = single_string_member(field->value, field->value_len,
			                                            "$numberDecimal", &out->inner_len)) != NULL)
				out->value = CW_PGV_DECIMAL128;
			else if ((out->inner = single_string_member(field->value, field->value_len, "$oid",
			                                            &out->inner_len)) != NULL)
				out->value = CW_PGV_OID;
		}
		return;
	case CW_JSON_KIND_NUMBER: {
		cw_typed_value_t tv;
		cw_typed_value_number(field->value, field->value_len, CW_DECIMAL_EXACT, &tv);
		if (tv.kind == CW_TYPED_INTEGER) {
			out->value = CW_PGV_INT;
			out->integer = (long long)tv.integer;
		} else {
			out->value = tv.kind == CW_TYPED_REAL ? CW_PGV_REAL : CW_PGV_DECIMAL;
		}
		free(tv.owned);
		return;
	}
	}
}

/* A decimal128's digits that are not a number PostgreSQL reads (NaN, Infinity) stay exact as text. */
static bool decimal128_numeric(const cw_pgc_read_t *value)
{
	for (size_t i = 1; i + 1 < value->inner_len; i++) {
		char c = value->inner[i];
		if (!(c >= '0' && c <= '9') && c != '-' && c != '+' && c != '.' && c != 'E' && c != 'e')
			return false;
	}
	return value->inner_len > 2;
}

cw_pgc_kind_t cw_pgc_infer(const cw_pgc_read_t *value, cw_decimal_mode_t mode, bool *ok)
{
	*ok = true;
	switch (value->value) {
	case CW_PGV_NULL: *ok = false; return CW_PGC_TEXT;
	case CW_PGV_BOOL: return CW_PGC_BOOLEAN;
	case CW_PGV_INT: return CW_PGC_BIGINT;
	case CW_PGV_REAL: return mode == CW_DECIMAL_TEXT ? CW_PGC_NUMERIC : CW_PGC_DOUBLE;
	case CW_PGV_DECIMAL: return mode == CW_DECIMAL_DOUBLE ? CW_PGC_DOUBLE : CW_PGC_NUMERIC;
	case CW_PGV_STRING:
	case CW_PGV_OID: return CW_PGC_TEXT;
	case CW_PGV_DATE: return CW_PGC_TIMESTAMPTZ;
	case CW_PGV_DECIMAL128:
		if (!decimal128_numeric(value))
			return CW_PGC_TEXT;
		return mode == CW_DECIMAL_DOUBLE ? CW_PGC_DOUBLE : CW_PGC_NUMERIC;
	case CW_PGV_OBJECT:
	case CW_PGV_ARRAY: return CW_PGC_JSONB;
	}
	return CW_PGC_TEXT;
}

bool cw_pgc_integer_fits(cw_pgc_kind_t kind, long long value)
{
	switch (kind) {
	case CW_PGC_SMALLINT: return value >= INT16_MIN && value <= INT16_MAX;
	case CW_PGC_INTEGER: return value >= INT32_MIN && value <= INT32_MAX;
	case CW_PGC_BIGINT: return true;
	default: return false;
	}
}

/* Whether a double holds the integer exactly (|i| <= 2^53). */
static bool double_holds_integer(long long value)
{
	const long long limit = 9007199254740992LL;
	return value >= -limit && value <= limit;
}

/* A number that does not fit kind (an integer or double kind): what it widens to. */
static cw_pgc_fit_t widen_number(cw_pgc_kind_t kind, const cw_pgc_read_t *value,
                                 cw_decimal_mode_t mode, cw_pgc_kind_t *wider)
{
	bool integral = kind == CW_PGC_SMALLINT || kind == CW_PGC_INTEGER || kind == CW_PGC_BIGINT;
	if (value->value == CW_PGV_INT) {
		if (integral) {
			*wider = CW_PGC_BIGINT;
			return kind == CW_PGC_BIGINT ? CW_PGC_FITS : CW_PGC_WIDEN;
		}
		/* double precision */
		if (double_holds_integer(value->integer) || mode == CW_DECIMAL_DOUBLE)
			return CW_PGC_FITS;
		*wider = CW_PGC_NUMERIC;
		return CW_PGC_WIDEN;
	}
	if (value->value == CW_PGV_REAL && mode != CW_DECIMAL_TEXT) {
		if (kind == CW_PGC_DOUBLE)
			return CW_PGC_FITS;
		*wider = CW_PGC_DOUBLE;
		return CW_PGC_WIDEN;
	}
	/* a decimal, or any fraction under decimal_handling text */
	if (mode == CW_DECIMAL_DOUBLE) {
		if (kind == CW_PGC_DOUBLE)
			return CW_PGC_FITS;
		*wider = CW_PGC_DOUBLE;
		return CW_PGC_WIDEN;
	}
	*wider = CW_PGC_NUMERIC;
	return CW_PGC_WIDEN;
}

static bool is_number(const cw_pgc_read_t *value)
{
	return value->value == CW_PGV_INT || value->value == CW_PGV_REAL ||
	       value->value == CW_PGV_DECIMAL ||
	       (value->value == CW_PGV_DECIMAL128 && decimal128_numeric(value));
}

static const char *value_name(cw_pgc_value_t value)
{
	switch (value) {
	case CW_PGV_NULL: return "null";
	case CW_PGV_BOOL: return "a boolean";
	case CW_PGV_INT: return "an integer";
	case CW_PGV_REAL: return "a number";
	case CW_PGV_DECIMAL: return "a decimal";
	case CW_PGV_STRING: return "a string";
	case CW_PGV_DATE: return "a date";
	case CW_PGV_DECIMAL128: return "a decimal128";
	case CW_PGV_OID: return "an ObjectId";
	case CW_PGV_OBJECT: return "an object";
	case CW_PGV_ARRAY: return "an array";
	}
	return "a value";
}

cw_pgc_fit_t cw_pgc_fit(cw_pgc_kind_t kind, const cw_pgc_read_t *value, cw_decimal_mode_t mode,
                        cw_pgc_kind_t *wider, const char **why)
{
	*wider = kind;
	*why = NULL;
	if (value->value == CW_PGV_NULL)
		return CW_PGC_FITS;
	switch (kind) {
	case CW_PGC_TEXT:
	case CW_PGC_JSONB:
	case CW_PGC_OTHER:
		/* text takes every value's text, jsonb its JSON; another type parses the text itself */
		return CW_PGC_FITS;
	case CW_PGC_BOOLEAN:
		if (value->value == CW_PGV_BOOL)
			return CW_PGC_FITS;
		break;
	case CW_PGC_TIMESTAMPTZ:
		if (value->value == CW_PGV_DATE || value->value == CW_PGV_STRING)
			return CW_PGC_FITS;
		break;
	case CW_PGC_NUMERIC:
		if (is_number(value))
			return CW_PGC_FITS;
		break;
	case CW_PGC_SMALLINT:
	case CW_PGC_INTEGER:
	case CW_PGC_BIGINT:
		if (value->value == CW_PGV_INT && cw_pgc_integer_fits(kind, value->integer))
			return CW_PGC_FITS;
		if (is_number(value))
			return widen_number(kind, value->value == CW_PGV_DECIMAL128
			                    ? &(cw_pgc_read_t){.value = CW_PGV_DECIMAL} : value, mode, wider);
		break;
	case CW_PGC_DOUBLE:
		if (is_number(value))
			return widen_number(kind, value->value == CW_PGV_DECIMAL128
			                    ? &(cw_pgc_read_t){.value = CW_PGV_DECIMAL} : value, mode, wider);
		break;
	}
	*why = value_name(value->value);
	return CW_PGC_DRASTIC;
}

/* Appends a JSON string span's text, unescaped; false when it holds a NUL. */
static bool append_string(const char *span, size_t len, cw_buf_t *out)
{
	if (cw_json_span_has_nul(span, len))
		return false;
	cw_json_string_unescape(span, len, out);
	return true;
}

/* Appends a PostgreSQL array literal element quoted: "a\"b". */
static void append_quoted_element(const char *s, size_t len, cw_buf_t *out)
{
	cw_buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			cw_buf_append_char(out, '\\');
		cw_buf_append_char(out, s[i]);
	}
	cw_buf_append_char(out, '"');
}

/* Appends a JSON array span as a PostgreSQL array literal: {1,"a",NULL,{2,3}}. */
static bool append_array_literal(const char *span, cw_buf_t *out)
{
	cw_json_fields_t items;
	cw_json_fields_init(&items);
	if (cw_json_fields_parse_nested(&items, span, NULL) != 0) {
		cw_json_fields_clear(&items);
		return false;
	}
	bool ok = true;
	cw_buf_t scratch = CW_BUF_INIT;
	cw_buf_append_char(out, '{');
	for (size_t i = 0; i < items.len && ok; i++) {
		const cw_json_field_t *item = &items.items[i];
		if (i > 0)
			cw_buf_append_char(out, ',');
		switch (item->kind) {
		case CW_JSON_KIND_NULL:
			cw_buf_append_str(out, "NULL");
			break;
		case CW_JSON_KIND_ARRAY:
			ok = append_array_literal(item->value, out);
			break;
		case CW_JSON_KIND_STRING:
			cw_buf_reset(&scratch);
			ok = append_string(item->value, item->value_len, &scratch);
			append_quoted_element(scratch.data, scratch.len, out);
			break;
		case CW_JSON_KIND_OBJECT:
			cw_buf_reset(&scratch);
			cw_json_compact(item->value, item->value_len, &scratch);
			append_quoted_element(scratch.data, scratch.len, out);
			break;
		default:
			cw_buf_append(out, item->value, item->value_len);
			break;
		}
	}
	cw_buf_append_char(out, '}');
	cw_buf_free(&scratch);
	cw_json_fields_clear(&items);
	return ok;
}

bool cw_pgc_text(const cw_json_field_t *field, const cw_pgc_read_t *value, cw_pgc_kind_t kind,
                 const char *type, cw_buf_t *out)
{
	if (kind == CW_PGC_JSONB) {
		if (cw_json_span_has_nul(field->value, field->value_len))
			return false;   /* jsonb refuses \u0000 too */
		cw_json_compact(field->value, field->value_len, out);
		return true;
	}
	switch (value->value) {
	case CW_PGV_STRING:
		return append_string(field->value, field->value_len, out);
	case CW_PGV_DATE:
	case CW_PGV_DECIMAL128:
	case CW_PGV_OID:
		if (kind == CW_PGC_TEXT || kind == CW_PGC_OTHER || kind == CW_PGC_TIMESTAMPTZ ||
		    kind == CW_PGC_NUMERIC || kind == CW_PGC_DOUBLE)
			return append_string(value->inner, value->inner_len, out);
		cw_json_compact(field->value, field->value_len, out);
		return true;
	case CW_PGV_ARRAY: {
		size_t len = type != NULL ? strlen(type) : 0;
		if (kind == CW_PGC_OTHER && len > 2 && strcmp(type + len - 2, "[]") == 0)
			return append_array_literal(field->value, out);
		if (cw_json_span_has_nul(field->value, field->value_len))
			return false;
		cw_json_compact(field->value, field->value_len, out);
		return true;
	}
	case CW_PGV_OBJECT:
		if (cw_json_span_has_nul(field->value, field->value_len))
			return false;
		cw_json_compact(field->value, field->value_len, out);
		return true;
	default:   /* numbers, booleans: their JSON text (true/false read as booleans) */
		cw_buf_append(out, field->value, field->value_len);
		return true;
	}
}

static bool plain_name(const char *key, size_t len)
{
	if (len == 0 || len > CW_PGC_NAME_MAX || !((key[0] >= 'a' && key[0] <= 'z') || key[0] == '_'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

void cw_pgc_column_name(const char *key, size_t key_len, bool (*reserved)(const char *name, void *arg),
                        void *arg, bool long_hash, char out[CW_PGC_NAME_MAX + 1])
{
	if (plain_name(key, key_len) && !long_hash) {
		memcpy(out, key, key_len);
		out[key_len] = '\0';
		if (reserved == NULL || !reserved(out, arg))
			return;
	}
	uint64_t hash = 14695981039346656037ULL;
	for (size_t i = 0; i < key_len; i++) {
		hash ^= (unsigned char)key[i];
		hash *= 1099511628211ULL;
	}
	size_t n = 0;
	if (key_len == 0 || !((key[0] >= 'a' && key[0] <= 'z') || (key[0] >= 'A' && key[0] <= 'Z') ||
	                      key[0] == '_')) {
		out[n++] = 'f';
		out[n++] = '_';
	}
	for (size_t i = 0; i < key_len && n < MAPPED_PREFIX_MAX; i++) {
		char c = key[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			c = '_';
		out[n++] = c;
	}
	if (long_hash)
		n = n > MAPPED_PREFIX_MAX - 8 ? MAPPED_PREFIX_MAX - 8 : n;
	snprintf(out + n, CW_PGC_NAME_MAX + 1 - n, long_hash ? "_%016llx" : "_%08llx",
	         long_hash ? (unsigned long long)hash : (unsigned long long)(hash >> 32));
}
