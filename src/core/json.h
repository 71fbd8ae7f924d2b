/*
 * This file contains the streaming JSON writer: it appends compact JSON text
 * (no whitespace) to a cw_buf_t, places commas and colons itself, prints
 * 64-bit integers exactly and doubles as the shortest text that reads back to
 * the same value, and refuses what JSON cannot hold (invalid UTF-8, NaN,
 * infinities). It also writes BSON values as MongoDB extended JSON and jansson
 * values, so the projection, the API and the hub share one emitter.
 *
 * Errors are sticky: the first failing call records its code in the writer
 * (and fills err when given); every later call does nothing and returns that
 * code, so a caller may write a whole document and check once with
 * cw_json_finish(). Misuse of the structure (a value where a key is due,
 * closing an array with cw_json_object_end) is a programmer error and asserts.
 *
 * Doubles are printed with printf/strtod and so assume the "C" LC_NUMERIC
 * locale, which cachewarp never changes.
 *
 * THREAD SAFETY: a writer belongs to one thread at a time; writers share
 * nothing.
 */
#ifndef CW_CORE_JSON_H
#define CW_CORE_JSON_H

#include "core/buf.h"
#include "core/err.h"

#include <bson/bson.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of objects and arrays a writer accepts. */
#define CW_JSON_MAX_DEPTH 256

/* cw_json_init flags. */
enum {
	CW_JSON_DEFAULT = 0,
	/* Refuse strings and keys containing a NUL byte (PostgreSQL text and
	 * jsonb cannot store \u0000) instead of escaping it. */
	CW_JSON_NO_NUL = 1u << 0,
};

/* BSON to JSON modes (MongoDB Extended JSON v2). */
typedef enum cw_json_bson_mode {
	/* Relaxed: numbers as plain JSON numbers, dates in years 1970-9999 as
	 * {"$date":"2024-05-01T12:00:00.000Z"}, other BSON types as their
	 * canonical wrappers ({"$oid":"..."}, {"$numberDecimal":"..."}). */
	CW_JSON_BSON_RELAXED = 0,
	/* Canonical: every number keeps its BSON type ({"$numberInt":"5"},
	 * {"$numberLong":"5"}, {"$numberDouble":"1.0"}), dates as
	 * {"$date":{"$numberLong":"ms"}}. Used for doc_id text. */
	CW_JSON_BSON_CANONICAL = 1,
} cw_json_bson_mode_t;

typedef struct cw_json {
	cw_buf_t *buf;                          /* borrowed; output is appended */
	unsigned flags;                         /* CW_JSON_* */
	int code;                               /* first error, 0 while none */
	unsigned depth;                         /* open objects and arrays */
	bool key_done;                          /* a key was written, its value is due */
	unsigned char frames[CW_JSON_MAX_DEPTH]; /* per level: kind and "has items" */
} cw_json_t;

/* Starts a writer that appends to buf (borrowed for the writer's lifetime). */
void cw_json_init(cw_json_t *w, cw_buf_t *buf, unsigned flags);

/*
 * Returns the writer's sticky error code (0 when every call succeeded). Also
 * asserts, when it succeeded, that every object and array was closed.
 */
int cw_json_finish(const cw_json_t *w);

/* Structure. begin fails with CW_EINVAL past CW_JSON_MAX_DEPTH levels. */
int cw_json_object_begin(cw_json_t *w, cw_err_t *err);
int cw_json_object_end(cw_json_t *w, cw_err_t *err);
int cw_json_array_begin(cw_json_t *w, cw_err_t *err);
int cw_json_array_end(cw_json_t *w, cw_err_t *err);

/* A key inside an object; CW_EINVAL when it is not valid UTF-8. */
int cw_json_key(cw_json_t *w, const char *key, cw_err_t *err);
int cw_json_key_len(cw_json_t *w, const char *key, size_t len, cw_err_t *err);

/* A string value, escaped; CW_EINVAL when it is not valid UTF-8. */
int cw_json_string(cw_json_t *w, const char *s, cw_err_t *err);
int cw_json_string_len(cw_json_t *w, const char *s, size_t len, cw_err_t *err);

/* Exact integers. */
int cw_json_int64(cw_json_t *w, int64_t value, cw_err_t *err);
int cw_json_uint64(cw_json_t *w, uint64_t value, cw_err_t *err);

/* The shortest text that reads back as value; CW_EINVAL for NaN and infinities. */
int cw_json_double(cw_json_t *w, double value, cw_err_t *err);

int cw_json_bool(cw_json_t *w, bool value, cw_err_t *err);
int cw_json_null(cw_json_t *w, cw_err_t *err);

/*
 * Inserts text verbatim as one value. The caller guarantees it is one valid
 * JSON value (a PostgreSQL numeric or jsonb text); nothing is checked.
 */
int cw_json_raw(cw_json_t *w, const char *text, size_t len, cw_err_t *err);

/*
 * Writes the BSON value iter points at (a document or array recursively).
 * Fails with CW_EINVAL for invalid UTF-8, nesting past CW_JSON_MAX_DEPTH, or
 * with CW_EPROTO when the BSON is corrupt.
 */
int cw_json_bson_value(cw_json_t *w, const bson_iter_t *iter,
                       cw_json_bson_mode_t mode, cw_err_t *err);
/* Writes a whole BSON document as a JSON object. */
int cw_json_bson_document(cw_json_t *w, const bson_t *doc,
                          cw_json_bson_mode_t mode, cw_err_t *err);

/* Writes a jansson value (borrowed); integers stay exact. */
int cw_json_jansson(cw_json_t *w, const json_t *value, cw_err_t *err);

/*
 * Formats value as the shortest decimal text that strtod reads back to the
 * same double, into out (at least CW_JSON_DOUBLE_LEN bytes). Returns the
 * length, or 0 for NaN and infinities (out is then "").
 */
#define CW_JSON_DOUBLE_LEN 32
size_t cw_json_format_double(double value, char *out);

/*
 * Formats a BSON date (milliseconds since the Unix epoch, UTC) as ISO-8601
 * "2024-05-01T12:00:00.000Z" (always with milliseconds, so texts sort like the
 * dates) into out (at least CW_JSON_DATE_LEN bytes). Returns the length, or 0
 * when the year falls outside 0000-9999 (out is then "").
 */
#define CW_JSON_DATE_LEN 32
size_t cw_json_format_date(int64_t ms, char *out);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing past U+10FFFF, no truncated sequence). NUL bytes are allowed. */
bool cw_json_validate_utf8(const char *s, size_t len);

/* Offset of the first byte that is not well-formed UTF-8, or len. */
size_t cw_json_utf8_invalid_at(const char *s, size_t len);

/* True when s[0..len) is exactly one number in JSON's grammar ("-1.5e3"). */
bool cw_json_number_valid(const char *s, size_t len);

#endif
