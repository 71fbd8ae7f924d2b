/*
 * This file contains the reader of a change's data as its top-level fields:
 * a JSON object's text split into keys and value spans without parsing the
 * values, so a number keeps every digit the source printed (2.50 stays 2.50,
 * 123456789012345678901234567890 stays itself) and nested objects and arrays
 * stay the text they arrived as. Merging two upserts, building the "_extra"
 * object and binding values into a target all work on these spans; nothing
 * on the apply path turns a number into a C double unless the target's
 * column asks for one (apply/typed_value.h).
 *
 * The text is borrowed: a field points into it and must not outlive it.
 * Keys are unescaped (an escaped key is copied into memory the list owns).
 *
 * THREAD SAFETY: pure functions over caller-owned values.
 */
#ifndef CW_CORE_JSON_FIELDS_H
#define CW_CORE_JSON_FIELDS_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

/* The kind of a value, from its first byte. */
typedef enum cw_json_kind {
	CW_JSON_KIND_STRING = 's',
	CW_JSON_KIND_NUMBER = 'n',
	CW_JSON_KIND_TRUE = 't',
	CW_JSON_KIND_FALSE = 'f',
	CW_JSON_KIND_NULL = 'z',
	CW_JSON_KIND_OBJECT = 'o',
	CW_JSON_KIND_ARRAY = 'a',
} cw_json_kind_t;

typedef struct cw_json_field {
	const char *key;         /* unescaped; borrowed from the text or owned by the list */
	size_t key_len;
	const char *value;       /* the value's JSON text, borrowed from the text */
	size_t value_len;
	cw_json_kind_t kind;
	bool escaped;            /* a string value holding a backslash escape */
	bool key_owned;          /* key was unescaped into memory of the list */
} cw_json_field_t;

#define CW_JSON_FIELDS_INLINE 24

typedef struct cw_json_fields {
	cw_json_field_t *items;  /* inline_items or owned */
	size_t len, cap;
	cw_json_field_t inline_items[CW_JSON_FIELDS_INLINE];
} cw_json_fields_t;

/* Prepares an empty list (no allocation). */
void cw_json_fields_init(cw_json_fields_t *fields);
/* Frees what the list owns; it may be reused after cw_json_fields_init. NULL is a no-op. */
void cw_json_fields_clear(cw_json_fields_t *fields);

/*
 * Splits text (borrowed; NUL-terminated; must outlive fields) holding one
 * JSON object into fields (initialised by the caller; appended to). A key
 * repeated in the object keeps its last value, at the place of its first.
 * Returns 0, or CW_EINVAL with err when the text is not one JSON object
 * (the fields read so far stay in the list, to be cleared).
 */
int cw_json_fields_parse(cw_json_fields_t *fields, const char *text, cw_err_t *err);

/*
 * Same for the span of an object or array value that cw_json_fields_parse
 * (or this function) read: an object's members, or an array's elements with
 * empty keys, in order. The span needs no NUL after it.
 */
int cw_json_fields_parse_nested(cw_json_fields_t *fields, const char *span, cw_err_t *err);

/* True when the JSON text span holds a \u0000 escape (a NUL character). */
bool cw_json_span_has_nul(const char *span, size_t len);

/* The field named key (len bytes), or NULL. */
const cw_json_field_t *cw_json_fields_get(const cw_json_fields_t *fields, const char *key,
                                          size_t key_len);

/*
 * Folds later onto into: a key of later replaces the value in into, a new
 * key is appended; keys absent from later keep their value (absent =
 * unchanged). later's spans (and owned keys, which are copied) must outlive into.
 */
void cw_json_fields_merge(cw_json_fields_t *into, const cw_json_fields_t *later);

/*
 * Appends the text of a JSON string value span (quotes included) to out
 * with its escapes resolved (\uXXXX and surrogate pairs as UTF-8). The span
 * must come from cw_json_fields_parse or another validated text.
 */
void cw_json_string_unescape(const char *span, size_t len, cw_buf_t *out);

/* Appends the JSON text span to out without whitespace outside strings. */
void cw_json_compact(const char *span, size_t len, cw_buf_t *out);

#endif
