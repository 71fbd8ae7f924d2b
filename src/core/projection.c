/* This file contains the projecting of documents and the doc_id declared in projection.h. */
#include "core/projection_internal.h"

#include "core/json.h"
#include "core/json_fields.h"
#include "core/mem.h"

#include <jansson.h>

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "projection"

/* A source value reduced to what the typed columns need. */
typedef enum kind {
	K_NULL,
	K_BOOL,
	K_INT,
	K_DOUBLE,
	K_DECIMAL,  /* text: a BSON decimal128 */
	K_NUMBER,   /* span: a JSON number outside int64 or with a fraction, as printed */
	K_STRING,
	K_DATE,     /* i: milliseconds since the Unix epoch */
	K_OID,      /* text: 24 hex characters */
	K_OTHER,    /* objects, arrays and other BSON types */
} kind_t;

typedef struct scalar {
	kind_t kind;
	const char *what;             /* "a string", "an array": for messages */
	bool b;
	int64_t i;
	double d;
	const char *s;                /* K_STRING */
	size_t len;
	char text[BSON_DECIMAL128_STRING];
	const bson_iter_t *iter;      /* the source value, to write it as JSON */
	const char *span;             /* the value's JSON text, for values read from text */
	size_t span_len;
} scalar_t;

/* ---- numbers in text ---------------------------------------------------- */

enum { NUM_OK = 0, NUM_NOT_A_NUMBER, NUM_FRACTIONAL, NUM_OUT_OF_RANGE };

/*
 * Reads a JSON-grammar number ("12", "-1.50e2", decimal128's "1.2E+3") into
 * an exact int64: NUM_FRACTIONAL when it has a non-zero fraction,
 * NUM_OUT_OF_RANGE past int64.
 */
static int text_to_int64(const char *s, size_t len, int64_t *out)
{
	if (!cw_json_number_valid(s, len))
		return NUM_NOT_A_NUMBER;
	bool negative = s[0] == '-';
	char digits[24];
	size_t ndigits = 0;
	long shift = 0;     /* value = digits * 10^shift */
	bool fraction = false;
	size_t i = negative;
	for (; i < len && s[i] != 'e' && s[i] != 'E'; i++) {
		if (s[i] == '.') {
			fraction = true;
			continue;
		}
		if (fraction)
			shift--;
		if (ndigits == 0 && s[i] == '0')
			continue;   /* leading zero */
		if (ndigits == sizeof digits) {
			/* Too many significant digits: only zeros may follow. */
			if (s[i] != '0')
				return fraction ? NUM_FRACTIONAL : NUM_OUT_OF_RANGE;
			shift++;
			continue;
		}
		digits[ndigits++] = s[i];
	}
	if (i < len) {
		bool negative_exponent = s[++i] == '-';
		long exponent = 0;
		for (i += s[i] == '-' || s[i] == '+'; i < len; i++) {
			if (exponent < 100000)   /* past any int64, keeps the sum defined */
				exponent = exponent * 10 + (s[i] - '0');
		}
		shift += negative_exponent ? -exponent : exponent;
	}
	while (ndigits > 0 && digits[ndigits - 1] == '0') {
		ndigits--;
		shift++;
	}
	if (ndigits == 0) {
		*out = 0;
		return NUM_OK;
	}
	if (shift < 0)
		return NUM_FRACTIONAL;
	if ((long)ndigits + shift > 19)
		return NUM_OUT_OF_RANGE;
	uint64_t value = 0;
	for (long k = 0; k < (long)ndigits + shift; k++) {
		unsigned digit = k < (long)ndigits ? (unsigned)(digits[k] - '0') : 0;
		if (value > (UINT64_MAX - digit) / 10)
			return NUM_OUT_OF_RANGE;
		value = value * 10 + digit;
	}
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (value > limit)
		return NUM_OUT_OF_RANGE;
	*out = negative ? (int64_t)(0 - value) : (int64_t)value;
	return NUM_OK;
}

/*
 * Writes a numeric text as the JSON number it spells, every digit kept
 * ("2.50" stays 2.50; the target decides how to store it); false when it
 * is not a JSON number.
 */
static bool write_number_text(cw_json_t *w, const char *s, size_t len, cw_err_t *err)
{
	if (!cw_json_number_valid(s, len))
		return false;
	cw_json_raw(w, s, len, err);
	return true;
}

/* ---- coercion ----------------------------------------------------------- */

/* A double as text: its shortest round-trip form, or NaN, Infinity, -Infinity. */
static void format_double_text(double d, char out[CW_JSON_DOUBLE_LEN])
{
	if (cw_json_format_double(d, out) == 0)
		snprintf(out, CW_JSON_DOUBLE_LEN, "%s",
		         isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
}

/* Describes a value for a message: string "abc", number 1.5, an array. */
static const char *describe(const scalar_t *v, char *out, size_t size)
{
	char number[CW_JSON_DOUBLE_LEN];
	switch (v->kind) {
	case K_STRING: {
		size_t n = (size_t)snprintf(out, size, "string \"");
		for (size_t i = 0; i < v->len && i < 40 && n + 8 < size; i++) {
			unsigned char c = (unsigned char)v->s[i];
			out[n++] = (c < 0x20 || c >= 0x7f || c == '"') ? '?' : (char)c;
		}
		snprintf(out + n, size - n, "%s\"", v->len > 40 ? "..." : "");
		return out;
	}
	case K_INT:
		snprintf(out, size, "number %" PRId64, v->i);
		return out;
	case K_DOUBLE:
		format_double_text(v->d, number);
		snprintf(out, size, "number %s", number);
		return out;
	case K_DECIMAL:
		snprintf(out, size, "decimal %s", v->text);
		return out;
	case K_NUMBER:
		snprintf(out, size, "number %.*s%s", v->span_len > 40 ? 40 : (int)v->span_len, v->span,
		         v->span_len > 40 ? "..." : "");
		return out;
	case K_BOOL:
		snprintf(out, size, "bool %s", v->b ? "true" : "false");
		return out;
	default:
		snprintf(out, size, "%s", v->what);
		return out;
	}
}

static int cannot(const scalar_t *v, const char *type, const char *why, cw_err_t *err)
{
	char desc[96];
	return cw_err_set(err, CW_EINVAL, DOMAIN, "cannot convert %s to %s%s%s",
	                  describe(v, desc, sizeof desc), type, why ? ": " : "",
	                  why ? why : "");
}

/*
 * Ends writing a value as a string of its JSON text: rc is how writing that
 * text into json_text went; when it is 0, json_text is written as one JSON
 * string. Frees json_text.
 */
static int write_json_text_string(cw_json_t *w, cw_buf_t *json_text, int rc, cw_err_t *err)
{
	if (rc == 0)
		rc = cw_json_string_len(w, cw_buf_cstr(json_text), json_text->len, err);
	cw_buf_free(json_text);
	return rc;
}

static int write_value_json(cw_json_t *w, const scalar_t *v, cw_err_t *err)
{
	if (v->span != NULL)
		return cw_json_raw(w, v->span, v->span_len, err);
	return cw_json_bson_value(w, v->iter, CW_JSON_BSON_RELAXED, err);
}

static int to_bool(cw_json_t *w, const scalar_t *v, cw_err_t *err)
{
	switch (v->kind) {
	case K_BOOL:
		return cw_json_bool(w, v->b, err);
	case K_INT:
		if (v->i == 0 || v->i == 1)
			return cw_json_bool(w, v->i == 1, err);
		return cannot(v, "bool", "only 0 and 1 are accepted", err);
	case K_DOUBLE:
		if (v->d == 0 || v->d == 1)
			return cw_json_bool(w, v->d == 1, err);
		return cannot(v, "bool", "only 0 and 1 are accepted", err);
	case K_NUMBER: {
		int64_t value;
		if (text_to_int64(v->span, v->span_len, &value) == NUM_OK && (value == 0 || value == 1))
			return cw_json_bool(w, value == 1, err);
		return cannot(v, "bool", "only 0 and 1 are accepted", err);
	}
	case K_STRING:
		if (v->len == 4 && memcmp(v->s, "true", 4) == 0)
			return cw_json_bool(w, true, err);
		if (v->len == 5 && memcmp(v->s, "false", 5) == 0)
			return cw_json_bool(w, false, err);
		return cannot(v, "bool", "only \"true\" and \"false\" are accepted", err);
	default:
		return cannot(v, "bool", NULL, err);
	}
}

static int to_number(cw_json_t *w, const scalar_t *v, cw_err_t *err)
{
	switch (v->kind) {
	case K_INT:
	case K_DATE:
		return cw_json_int64(w, v->i, err);
	case K_DOUBLE:
		if (!isfinite(v->d))
			return cannot(v, "number", "JSON has no NaN or infinity", err);
		return cw_json_double(w, v->d, err);
	case K_DECIMAL:
		if (!write_number_text(w, v->text, strlen(v->text), err))
			return cannot(v, "number", "it is not a finite number", err);
		return w->code;
	case K_NUMBER:
		return cw_json_raw(w, v->span, v->span_len, err);
	case K_STRING:
		if (!write_number_text(w, v->s, v->len, err))
			return cannot(v, "number", "it is not a JSON number", err);
		return w->code;
	default:
		return cannot(v, "number", NULL, err);
	}
}

static int integer_text(cw_json_t *w, const scalar_t *v, const char *s, size_t len,
                        cw_err_t *err)
{
	int64_t value;
	switch (text_to_int64(s, len, &value)) {
	case NUM_OK:
		return cw_json_int64(w, value, err);
	case NUM_FRACTIONAL:
		return cannot(v, "integer", "it has a fractional part", err);
	case NUM_OUT_OF_RANGE:
		return cannot(v, "integer", "it is outside the 64-bit range", err);
	default:
		return cannot(v, "integer", "it is not a JSON number", err);
	}
}

static int to_integer(cw_json_t *w, const scalar_t *v, cw_err_t *err)
{
	switch (v->kind) {
	case K_INT:
	case K_DATE:
		return cw_json_int64(w, v->i, err);
	case K_DOUBLE:
		if (!isfinite(v->d))
			return cannot(v, "integer", "it is not finite", err);
		if (v->d != trunc(v->d))
			return cannot(v, "integer", "it has a fractional part", err);
		/* 2^63 is exact in a double; every integral double below it fits. */
		if (v->d < -9223372036854775808.0 || v->d >= 9223372036854775808.0)
			return cannot(v, "integer", "it is outside the 64-bit range", err);
		return cw_json_int64(w, (int64_t)v->d, err);
	case K_DECIMAL:
		return integer_text(w, v, v->text, strlen(v->text), err);
	case K_NUMBER:
		return integer_text(w, v, v->span, v->span_len, err);
	case K_STRING:
		return integer_text(w, v, v->s, v->len, err);
	default:
		return cannot(v, "integer", NULL, err);
	}
}

static int to_text(cw_json_t *w, const scalar_t *v, cw_err_t *err)
{
	char text[CW_JSON_DATE_LEN + CW_JSON_DOUBLE_LEN];
	switch (v->kind) {
	case K_STRING:
		return cw_json_string_len(w, v->s, v->len, err);
	case K_INT:
		snprintf(text, sizeof text, "%" PRId64, v->i);
		return cw_json_string(w, text, err);
	case K_DOUBLE:
		format_double_text(v->d, text);
		return cw_json_string(w, text, err);
	case K_DECIMAL:
	case K_OID:
		return cw_json_string(w, v->text, err);
	case K_NUMBER:
		return cw_json_string_len(w, v->span, v->span_len, err);
	case K_BOOL:
		return cw_json_string(w, v->b ? "true" : "false", err);
	case K_DATE:
		if (cw_json_format_date(v->i, text) == 0)
			return cannot(v, "text", "its year is outside 0000-9999", err);
		return cw_json_string(w, text, err);
	default: {
		cw_buf_t json_text = CW_BUF_INIT;
		cw_json_t inner;
		cw_json_init(&inner, &json_text, CW_JSON_NO_NUL);
		int rc = write_value_json(&inner, v, err);
		return write_json_text_string(w, &json_text, rc, err);
	}
	}
}

/* Writes v as the column's type; the key is already written. */
static int coerce(cw_json_t *w, const column_t *column, const scalar_t *v, cw_err_t *err)
{
	if (v->kind == K_NULL)
		return cw_json_null(w, err);
	switch (column->type) {
	case CW_COL_BOOL:
		return to_bool(w, v, err);
	case CW_COL_NUMBER:
		return to_number(w, v, err);
	case CW_COL_INTEGER:
		return to_integer(w, v, err);
	case CW_COL_TEXT:
		return to_text(w, v, err);
	default:
		return write_value_json(w, v, err);
	}
}

static int column_failed(const column_t *column, int rc, cw_err_t *err)
{
	if (column->nsegments == 0)
		cw_err_prefix(err, "column \"%s\" (whole document)", column->name);
	else
		cw_err_prefix(err, "column \"%s\" (path \"%s\")", column->name, column->path);
	if (err != NULL)
		snprintf(err->domain, sizeof err->domain, "%s", DOMAIN);
	return rc;
}

/* Empties v for a value read from iter (BSON) or span (JSON text; NULL for BSON). */
static void scalar_init(scalar_t *v, const bson_iter_t *iter, const char *span, size_t span_len)
{
	memset(v, 0, offsetof(scalar_t, text));
	v->text[0] = '\0';
	v->iter = iter;
	v->span = span;
	v->span_len = span_len;
}

/* ---- BSON documents ----------------------------------------------------- */

static void scalar_from_bson(const bson_iter_t *iter, scalar_t *v)
{
	uint32_t len;
	scalar_init(v, iter, NULL, 0);
	v->kind = K_OTHER;
	switch (bson_iter_type(iter)) {
	case BSON_TYPE_DOUBLE:
		v->kind = K_DOUBLE;
		v->d = bson_iter_double(iter);
		break;
	case BSON_TYPE_UTF8:
		v->kind = K_STRING;
		v->s = bson_iter_utf8(iter, &len);
		v->len = len;
		break;
	case BSON_TYPE_INT32:
		v->kind = K_INT;
		v->i = bson_iter_int32(iter);
		break;
	case BSON_TYPE_INT64:
		v->kind = K_INT;
		v->i = bson_iter_int64(iter);
		break;
	case BSON_TYPE_BOOL:
		v->kind = K_BOOL;
		v->b = bson_iter_bool(iter);
		break;
	case BSON_TYPE_NULL:
	case BSON_TYPE_UNDEFINED:
		v->kind = K_NULL;
		break;
	case BSON_TYPE_DATE_TIME:
		v->kind = K_DATE;
		v->what = "a date";
		v->i = bson_iter_date_time(iter);
		break;
	case BSON_TYPE_OID:
		v->kind = K_OID;
		v->what = "an ObjectId";
		bson_oid_to_string(bson_iter_oid(iter), v->text);
		break;
	case BSON_TYPE_DECIMAL128: {
		bson_decimal128_t dec;
		v->kind = K_DECIMAL;
		bson_iter_decimal128(iter, &dec);
		bson_decimal128_to_string(&dec, v->text);
		break;
	}
	case BSON_TYPE_DOCUMENT: v->what = "an object"; break;
	case BSON_TYPE_ARRAY: v->what = "an array"; break;
	case BSON_TYPE_BINARY: v->what = "a binary value"; break;
	case BSON_TYPE_REGEX: v->what = "a regular expression"; break;
	case BSON_TYPE_TIMESTAMP: v->what = "a timestamp"; break;
	default: v->what = "a BSON value of a legacy type"; break;
	}
}

/* Finds the column's path in doc: 1 found (*found set), 0 missing, CW_EPROTO. */
static int bson_lookup(const bson_t *doc, const column_t *column, bson_iter_t *found)
{
	bson_iter_t it;
	if (!bson_iter_init(&it, doc))
		return CW_EPROTO;
	for (size_t s = 0;; s++) {
		const segment_t *seg = &column->segments[s];
		bool hit = false;
		while (bson_iter_next(&it)) {
			if (bson_iter_key_len(&it) == seg->len &&
			    memcmp(bson_iter_key(&it), seg->name, seg->len) == 0) {
				hit = true;
				break;
			}
		}
		if (!hit)
			return it.err_off != 0 ? CW_EPROTO : 0;
		if (s + 1 == column->nsegments) {
			*found = it;
			return 1;
		}
		bson_type_t type = bson_iter_type(&it);
		if (type != BSON_TYPE_DOCUMENT && type != BSON_TYPE_ARRAY)
			return 0;
		bson_iter_t child;
		if (!bson_iter_recurse(&it, &child))
			return CW_EPROTO;
		it = child;
	}
}

/* ---- JSON documents ----------------------------------------------------- */

/* A JSON literal or container: its kind alone says what it is. */
static void scalar_from_kind(cw_json_kind_t kind, scalar_t *v)
{
	switch (kind) {
	case CW_JSON_KIND_TRUE:
	case CW_JSON_KIND_FALSE:
		v->kind = K_BOOL;
		v->b = kind == CW_JSON_KIND_TRUE;
		break;
	case CW_JSON_KIND_NULL:
		v->kind = K_NULL;
		break;
	default:
		v->kind = K_OTHER;
		v->what = kind == CW_JSON_KIND_OBJECT ? "an object" : "an array";
		break;
	}
}

/* A parsed document's top-level value, for the message that it is not an object. */
static void scalar_from_json(const json_t *json, scalar_t *v)
{
	scalar_init(v, NULL, NULL, 0);
	switch (json_typeof(json)) {
	case JSON_STRING:
		v->kind = K_STRING;
		v->s = json_string_value(json);
		v->len = json_string_length(json);
		break;
	case JSON_INTEGER:
		v->kind = K_INT;
		v->i = (int64_t)json_integer_value(json);
		break;
	case JSON_REAL:
		v->kind = K_DOUBLE;
		v->d = json_real_value(json);
		break;
	case JSON_TRUE:
		scalar_from_kind(CW_JSON_KIND_TRUE, v);
		break;
	case JSON_FALSE:
		scalar_from_kind(CW_JSON_KIND_FALSE, v);
		break;
	case JSON_NULL:
		scalar_from_kind(CW_JSON_KIND_NULL, v);
		break;
	case JSON_OBJECT:
		scalar_from_kind(CW_JSON_KIND_OBJECT, v);
		break;
	default:
		scalar_from_kind(CW_JSON_KIND_ARRAY, v);
		break;
	}
}

/*
 * JSON text is read as spans (json_fields.h), never through a C double or
 * int64: a number keeps the digits its source printed, a jsonb value the
 * text PostgreSQL wrote.
 */
static void scalar_from_span(const cw_json_field_t *field, cw_buf_t *scratch, scalar_t *v)
{
	scalar_init(v, NULL, field->value, field->value_len);
	switch (field->kind) {
	case CW_JSON_KIND_STRING:
		v->kind = K_STRING;
		if (field->escaped) {
			cw_buf_reset(scratch);
			cw_json_string_unescape(field->value, field->value_len, scratch);
			v->s = cw_buf_cstr(scratch);
			v->len = scratch->len;
		} else {
			v->s = field->value + 1;
			v->len = field->value_len - 2;
		}
		break;
	case CW_JSON_KIND_NUMBER:
		v->kind = memchr(field->value, '.', field->value_len) == NULL &&
		          memchr(field->value, 'e', field->value_len) == NULL &&
		          memchr(field->value, 'E', field->value_len) == NULL &&
		          text_to_int64(field->value, field->value_len, &v->i) == NUM_OK
		          ? K_INT : K_NUMBER;
		break;
	default:
		scalar_from_kind(field->kind, v);
		break;
	}
}

/*
 * Finds the column's path among the document's fields: 1 found (*found
 * set; its spans point into the document text), 0 missing. Nested levels
 * are read into level, which must outlive *found.
 */
static int span_lookup(const cw_json_fields_t *top, const column_t *column,
                       cw_json_fields_t level[2], cw_json_field_t *found)
{
	const cw_json_fields_t *current = top;
	bool array = false;
	for (size_t s = 0;; s++) {
		const segment_t *seg = &column->segments[s];
		const cw_json_field_t *hit = NULL;
		if (!array)
			hit = cw_json_fields_get(current, seg->name, seg->len);
		else if (seg->index >= 0 && (size_t)seg->index < current->len)
			hit = &current->items[seg->index];
		if (hit == NULL)
			return 0;
		if (s + 1 == column->nsegments) {
			*found = *hit;
			return 1;
		}
		if (hit->kind != CW_JSON_KIND_OBJECT && hit->kind != CW_JSON_KIND_ARRAY)
			return 0;
		/* The next level goes to the list current is not, so hit stays valid while read. */
		cw_json_fields_t *next = current == &level[0] ? &level[1] : &level[0];
		cw_json_fields_clear(next);
		cw_json_fields_init(next);
		if (cw_json_fields_parse_nested(next, hit->value, NULL) != 0)
			return 0;   /* cannot happen: the document was read whole */
		array = hit->kind == CW_JSON_KIND_ARRAY;
		current = next;
	}
}

/* The reason json is not one JSON object, in the words of the jansson path. */
static int json_refused(const char *json, const cw_err_t *why, cw_err_t *err)
{
	json_error_t jerr;
	json_t *doc = json_loads(json, JSON_DECODE_ANY, &jerr);
	if (doc == NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "document is not valid JSON: %s (line %d, column %d)", jerr.text,
		                  jerr.line, jerr.column);
	int rc;
	if (!json_is_object(doc)) {
		scalar_t value;
		scalar_from_json(doc, &value);
		char desc[96];
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "document is %s, not an object",
		                value.kind == K_NULL ? "null" : describe(&value, desc, sizeof desc));
	} else {
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "document %s", why->message);
	}
	json_decref(doc);
	return rc;
}

/* ---- one walker for both formats ---------------------------------------- */

/* One source document as the column walker reads it: BSON, or JSON text read as spans. */
typedef struct document {
	const bson_t *bson;               /* NULL for JSON text */
	const char *json;                 /* the JSON text */
	const cw_json_fields_t *top;      /* its top-level fields */
	cw_buf_t *scratch;                /* unescaped strings */
} document_t;

/* The value at a column's path: iter for BSON, field for JSON text. */
typedef struct found {
	bson_iter_t iter;
	cw_json_field_t field;
} found_t;

/* Writes one column of doc (its key, then its value); a missing path writes nothing or null. */
static int project_column(const cw_projection_t *proj, const column_t *column,
                          const document_t *doc, cw_json_t *w, cw_err_t *err)
{
	if (column->nsegments == 0) {
		cw_json_key(w, column->name, err);
		if (doc->bson == NULL)
			return cw_json_raw(w, doc->json, strlen(doc->json), err);
		/*
		 * The text of the canonical extended JSON, as a string: the hub's
		 * jsonb would reorder an object's keys, and a MongoDB target writes
		 * the document back BSON-equal, types and field order. The other
		 * targets read it as a relaxed object (apply_stream.c).
		 */
		cw_buf_t text = CW_BUF_INIT;
		cw_json_t inner;
		cw_json_init(&inner, &text, CW_JSON_NO_NUL);
		int rc = cw_json_bson_document(&inner, doc->bson, CW_JSON_BSON_CANONICAL, err);
		return write_json_text_string(w, &text, rc, err);
	}
	cw_json_fields_t level[2];   /* JSON text: the nested levels the path goes through */
	cw_json_fields_init(&level[0]);
	cw_json_fields_init(&level[1]);
	found_t found;
	int rc = doc->bson != NULL ? bson_lookup(doc->bson, column, &found.iter)
	                           : span_lookup(doc->top, column, level, &found.field);
	if (rc < 0) {
		rc = cw_err_set(err, CW_EPROTO, DOMAIN, "BSON document is corrupt");
	} else if (rc == 0) {
		if (proj->flags & CW_PROJECTION_MISSING_NULL) {
			cw_json_key(w, column->name, err);
			rc = cw_json_null(w, err);
		}
	} else {
		cw_json_key(w, column->name, err);
		bool as_json = column->type == CW_COL_JSONB || column->type == CW_COL_ANY;
		scalar_t value;
		if (doc->bson != NULL && as_json) {   /* every BSON type, undefined included */
			rc = cw_json_bson_value(w, &found.iter, CW_JSON_BSON_RELAXED, err);
		} else {
			if (doc->bson != NULL)
				scalar_from_bson(&found.iter, &value);
			else
				scalar_from_span(&found.field, doc->scratch, &value);
			rc = coerce(w, column, &value, err);
		}
	}
	cw_json_fields_clear(&level[0]);
	cw_json_fields_clear(&level[1]);
	return rc;
}

/* Writes doc's columns as one JSON object into out (emptied on error). */
static int project_document(const cw_projection_t *proj, const document_t *doc, cw_buf_t *out,
                            cw_err_t *err)
{
	cw_json_t w;
	cw_buf_reset(out);
	cw_json_init(&w, out, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, err);
	for (size_t i = 0; i < proj->ncolumns; i++) {
		int rc = project_column(proj, &proj->columns[i], doc, &w, err);
		if (rc != 0) {
			cw_buf_reset(out);
			return column_failed(&proj->columns[i], rc, err);
		}
	}
	cw_json_object_end(&w, err);
	return cw_json_finish(&w);
}

int cw_projection_bson(const cw_projection_t *proj, const bson_t *doc, cw_buf_t *out,
                       cw_err_t *err)
{
	document_t document = {doc, NULL, NULL, NULL};
	return project_document(proj, &document, out, err);
}

int cw_projection_json(const cw_projection_t *proj, const char *json, cw_buf_t *out,
                       cw_err_t *err)
{
	cw_buf_reset(out);
	size_t len = strlen(json);
	if (!cw_json_validate_utf8(json, len))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "document is not valid JSON: "
		                  "it is not valid UTF-8");
	if (cw_json_span_has_nul(json, len))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "document is not valid JSON: "
		                  "a string holds a NUL character (\\u0000)");
	cw_json_fields_t top;
	cw_json_fields_init(&top);
	cw_err_t why;
	cw_err_clear(&why);
	if (cw_json_fields_parse(&top, json, &why) != 0) {
		cw_json_fields_clear(&top);
		return json_refused(json, &why, err);
	}
	cw_buf_t scratch = CW_BUF_INIT;
	document_t doc = {NULL, json, &top, &scratch};
	int rc = project_document(proj, &doc, out, err);
	cw_buf_free(&scratch);
	cw_json_fields_clear(&top);
	return rc;
}

/* ---- doc_id ------------------------------------------------------------- */

char *cw_projection_doc_id(const bson_iter_t *id, cw_err_t *err)
{
	char hex[25];
	uint32_t len;
	switch (bson_iter_type(id)) {
	case BSON_TYPE_OID:
		bson_oid_to_string(bson_iter_oid(id), hex);
		return cw_xstrdup(hex);
	case BSON_TYPE_UTF8: {
		const char *text = bson_iter_utf8(id, &len);
		if (!cw_json_validate_utf8(text, len) || memchr(text, '\0', len) != NULL) {
			cw_err_set(err, CW_EINVAL, DOMAIN,
			           "_id is a string that is not valid UTF-8 or holds a NUL byte");
			return NULL;
		}
		return cw_xstrndup(text, len);
	}
	default: {
		cw_buf_t text = CW_BUF_INIT;
		cw_json_t w;
		cw_json_init(&w, &text, CW_JSON_NO_NUL);
		if (cw_json_bson_value(&w, id, CW_JSON_BSON_CANONICAL, err) != 0) {
			cw_err_prefix(err, "_id");
			cw_buf_free(&text);
			return NULL;
		}
		return cw_buf_take(&text);
	}
	}
}

char *cw_projection_doc_id_of(const bson_t *doc, cw_err_t *err)
{
	bson_iter_t id;
	if (!bson_iter_init_find(&id, doc, "_id")) {
		cw_err_set(err, CW_ENOTFOUND, DOMAIN, "document has no _id");
		return NULL;
	}
	return cw_projection_doc_id(&id, err);
}
