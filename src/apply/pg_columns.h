/*
 * This file contains the column rules of the PostgreSQL target
 * (docs/targets-postgres.md, "Columns" and "Schema evolution"): what a
 * field's name becomes as a column, what type a new field's first value
 * gives its column, whether a value fits a column as it is, widens it, or is
 * a drastic change that is quarantined, and the text a value is copied as.
 * The backend (postgres_target.c) runs the DDL these decisions ask for.
 *
 * Values are read as spans (core/json_fields.h): a number keeps the digits
 * its source printed and never passes through a double.
 *
 * THREAD SAFETY: pure functions.
 */
#ifndef CW_APPLY_PG_COLUMNS_H
#define CW_APPLY_PG_COLUMNS_H

#include "core/buf.h"
#include "core/entity.h"
#include "core/json_fields.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest column name PostgreSQL keeps (NAMEDATALEN - 1), in bytes. */
#define CW_PGC_NAME_MAX 63

/* What the rules know of a column's type. */
typedef enum cw_pgc_kind {
	CW_PGC_TEXT = 0,         /* text */
	CW_PGC_SMALLINT,
	CW_PGC_INTEGER,
	CW_PGC_BIGINT,
	CW_PGC_DOUBLE,           /* double precision */
	CW_PGC_NUMERIC,          /* numeric without a typmod */
	CW_PGC_BOOLEAN,
	CW_PGC_JSONB,            /* jsonb or json */
	CW_PGC_TIMESTAMPTZ,
	CW_PGC_OTHER,            /* any other type (a PostgreSQL source's date, uuid, text[],
	                            numeric(10,2), varchar(20)...): values go in as their text */
} cw_pgc_kind_t;

/* What a value is, for these rules. */
typedef enum cw_pgc_value {
	CW_PGV_NULL = 0,
	CW_PGV_BOOL,
	CW_PGV_INT,              /* an integer within 64 bits */
	CW_PGV_REAL,             /* a number a double holds to its last digit */
	CW_PGV_DECIMAL,          /* a number only numeric holds exactly */
	CW_PGV_STRING,
	CW_PGV_DATE,             /* MongoDB extended JSON {"$date": "<ISO 8601>"} */
	CW_PGV_DECIMAL128,       /* MongoDB extended JSON {"$numberDecimal": "<digits>"} */
	CW_PGV_OID,              /* MongoDB extended JSON {"$oid": "<hex>"} */
	CW_PGV_OBJECT,
	CW_PGV_ARRAY,
} cw_pgc_value_t;

/* A value read from a field, with what the rules need of it. */
typedef struct cw_pgc_read {
	cw_pgc_value_t value;
	long long integer;       /* CW_PGV_INT */
	const char *inner;       /* DATE, DECIMAL128, OID: the string span inside (quotes included) */
	size_t inner_len;
} cw_pgc_read_t;

/* The decision for one value and one column. */
typedef enum cw_pgc_fit {
	CW_PGC_FITS = 0,         /* write it as it is */
	CW_PGC_WIDEN,            /* alter the column to the wider kind first */
	CW_PGC_DRASTIC,          /* keep the column; NULL in the row, the value quarantined */
} cw_pgc_fit_t;

/* The kind of a type as format_type() prints it ("bigint", "numeric(10,2)", "text[]"). */
cw_pgc_kind_t cw_pgc_kind_of(const char *type);

/* The SQL type a kind is created as ("bigint"); CW_PGC_OTHER: NULL. */
const char *cw_pgc_type_name(cw_pgc_kind_t kind);

/* Reads field (borrowed) into out; DATE and DECIMAL128 spans point into the field's text. */
void cw_pgc_read(const cw_json_field_t *field, cw_decimal_mode_t mode, cw_pgc_read_t *out);

/*
 * The kind a new column takes from its first non-null value (integers start
 * as bigint, objects and arrays are jsonb); *ok false for null (no column
 * yet).
 */
cw_pgc_kind_t cw_pgc_infer(const cw_pgc_read_t *value, cw_decimal_mode_t mode, bool *ok);

/*
 * Whether value fits a column of kind: as it is, after widening the column
 * to *wider (integer → bigint → double precision or numeric), or not at
 * all (a narrowing or drastic change: *why says what, for the quarantine).
 */
cw_pgc_fit_t cw_pgc_fit(cw_pgc_kind_t kind, const cw_pgc_read_t *value, cw_decimal_mode_t mode,
                        cw_pgc_kind_t *wider, const char **why);

/*
 * Appends the text the value is copied as into a column of kind (type is
 * the column's SQL type, for arrays): a string unescaped, a number's digits,
 * a boolean true/false, an object or array as compact JSON (a PostgreSQL
 * array literal for an array type), a jsonb column's value as its JSON text.
 * false when the text would hold a NUL character, which PostgreSQL's text
 * cannot store.
 */
bool cw_pgc_text(const cw_json_field_t *field, const cw_pgc_read_t *value, cw_pgc_kind_t kind,
                 const char *type, cw_buf_t *out);

/*
 * The column name of a field (key_len bytes): the field's own name when it
 * is [a-z_][a-z0-9_]* in at most 63 bytes and reserved() (may be NULL)
 * does not claim it; otherwise the name lower-cased, every other byte
 * turned into '_', prefixed "f_" unless it starts with a letter or '_',
 * cut to 54 bytes, then '_' and 8 hex digits of the FNV-1a hash of the
 * field's bytes (16 digits when long is set: a second try after a
 * collision). out holds CW_PGC_NAME_MAX + 1 bytes.
 */
void cw_pgc_column_name(const char *key, size_t key_len, bool (*reserved)(const char *name, void *arg),
                        void *arg, bool long_hash, char out[CW_PGC_NAME_MAX + 1]);

/* Whether kind is one of the integer kinds and value fits it. */
bool cw_pgc_integer_fits(cw_pgc_kind_t kind, long long value);

#endif
