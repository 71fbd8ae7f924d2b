/*
 * This file contains the conversion every target shares from one JSON value
 * of a change's data (core/json_fields.h) to the value stored in a column of
 * a given shape type: SQL NULL, a 64-bit integer, a double or text. Numbers
 * are read from the digits the source printed and never pass through a
 * double unless the double holds them to their last digit or the target
 * chose decimal handling "double" (docs/targets-sqlite.md, "Numbers"):
 *
 *   exact   an integer within 64 bits is an integer; any other number is a
 *           double when the shortest text of that double has the same digits
 *           (12.34, 2.50 = 2.5, 1e-7), else text with the source's digits
 *           (123456789012345678901234567890, 0.1000000000000000055511);
 *   double  every number that is not a 64-bit integer is a double (may round);
 *   text    every number that is not a 64-bit integer is text with its digits
 *           as printed (2.50 stays "2.50").
 *
 * Strings are unescaped; objects and arrays are their compact JSON text; a
 * jsonb column holds every value as compact JSON text; a text column holds a
 * number or boolean as its JSON text.
 *
 * THREAD SAFETY: pure functions.
 */
#ifndef CW_APPLY_TYPED_VALUE_H
#define CW_APPLY_TYPED_VALUE_H

#include "core/entity.h"
#include "core/json_fields.h"

#include <stdint.h>

typedef enum cw_typed_kind {
	CW_TYPED_NULL = 0,
	CW_TYPED_INTEGER,
	CW_TYPED_REAL,
	CW_TYPED_TEXT,
} cw_typed_kind_t;

typedef struct cw_typed_value {
	cw_typed_kind_t kind;
	int64_t integer;
	double real;
	const char *text;        /* TEXT: borrowed from the field's data, or owned */
	size_t text_len;
	char *owned;             /* when text is owned: the allocation (== text), else NULL */
} cw_typed_value_t;

/*
 * Converts field (borrowed; its text must outlive out when out borrows it)
 * for a column of type under mode into out. out->owned, when set, belongs to
 * the caller (free it, or hand it to a binder that frees it).
 */
void cw_typed_value_from_field(const cw_json_field_t *field, cw_column_type_t type,
                               cw_decimal_mode_t mode, cw_typed_value_t *out);

/*
 * Converts the JSON number text (len bytes, valid JSON) under mode. Exposed
 * for the tests and for targets that read numbers elsewhere.
 */
void cw_typed_value_number(const char *number, size_t len, cw_decimal_mode_t mode,
                           cw_typed_value_t *out);

#endif
