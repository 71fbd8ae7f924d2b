/*
 * This file contains the row digests of the targets that store a row in a
 * form of their own rather than the values of the change's data
 * (row_digest.h covers those): each form digests a row read back from the
 * target and, the same way, a source row turned into what that target
 * writes for it, so equal data digests equal.
 *
 * BSON form — a MongoDB target's typed documents (a PostgreSQL entity, or a
 * MongoDB entity with columns): the source row's data is built into BSON
 * field by field as the target builds it (apply/mongodb_doc.h: typed by the
 * PostgreSQL source's recorded column types, an integer column as Int64),
 * and a field's digest is its BSON type and bytes, an embedded document's
 * members taken in any order (the hub may have sorted them).
 *   typed    one digest per shape column, a missing field as BSON null
 *   dynamic  the sum of the (field, value) pairs that are not null; the
 *            key's fields (they make the _id) left out
 *
 * Column form — a PostgreSQL target's table of a MongoDB entity or of a
 * MySQL table, whose columns the target made from the values
 * (apply/pg_columns.h): each field goes into the column the target made
 * for it (found by the field the column's comment names), else a new
 * column of the type its value gives, or "_extra" when the table has one;
 * the value is what the column rules make of it — widened like the column,
 * NULL when the rules quarantine it — and is digested by the column's kind
 * from its text (a number's value, a timestamp's instant, a jsonb value
 * with its object members in any order, text as itself).
 *   typed     one digest per shape column
 *   document  the sum of the (field, value) pairs that are not NULL, "_id"
 *             left out (it is the key), "_extra" members counted as fields
 *   dynamic   the same over the row's columns, "id" left out (the key)
 *
 * THREAD SAFETY: a model is built by one thread, then read by any number.
 */
#ifndef CW_VERIFY_FORMS_H
#define CW_VERIFY_FORMS_H

#include "apply/layout.h"
#include "apply/pg_columns.h"
#include "core/entity.h"
#include "core/err.h"
#include "hub/table_record.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- BSON form ---- */

typedef struct cw_verify_bson_form {
	const cw_entity_t *entity;     /* borrowed */
	cw_layout_kind_t layout;       /* typed or dynamic */
	cw_table_record_t record;      /* owned: the source's record of its table (dynamic) */
} cw_verify_bson_form_t;

/*
 * The digest of a stored document (its _id and `_cachewarp` left out) into
 * *row, and per column into columns (cw_digest_columns(entity) entries).
 */
void cw_verify_bson_digest_doc(const cw_verify_bson_form_t *form, const char *doc_id,
                               const bson_t *doc, uint64_t *row, uint64_t *columns);

/*
 * The same digest of a change's data (borrowed JSON object) built into the
 * document the target writes for it. 0, or CW_EINVAL when the target could
 * not build it either (it quarantines such a change).
 */
int cw_verify_bson_digest_data(const cw_verify_bson_form_t *form, const char *doc_id,
                               const char *data, uint64_t *row, uint64_t *columns, cw_err_t *err);

/* ---- column form ---- */

/* One column of the table that holds a field. */
typedef struct cw_verify_pg_column {
	char *name;                    /* the column */
	char *field;                   /* the field it holds */
	char *type;                    /* as format_type() prints it */
	cw_pgc_kind_t kind;
} cw_verify_pg_column_t;

typedef struct cw_verify_pg_model {
	const cw_entity_t *entity;     /* borrowed */
	cw_decimal_mode_t mode;
	cw_verify_pg_column_t *cols;   /* owned; the data columns in table order */
	size_t ncols;
	bool has_extra;
} cw_verify_pg_model_t;

/* Adds a column (strings copied). */
void cw_verify_pg_model_add(cw_verify_pg_model_t *model, const char *name, const char *field,
                            const char *type);

/* Frees the columns; the model may be filled again. */
void cw_verify_pg_model_clear(cw_verify_pg_model_t *model);

/* The column holding field (len bytes), or NULL. */
const cw_verify_pg_column_t *cw_verify_pg_model_find(const cw_verify_pg_model_t *model,
                                                     const char *field, size_t len);

/*
 * The digest of a column's value as the target prints it (text, len bytes;
 * a timestamp as UTC ISO 8601 with milliseconds, a boolean as true/false).
 */
uint64_t cw_verify_pg_text_digest(cw_pgc_kind_t kind, const char *text, size_t len,
                                  cw_decimal_mode_t mode);

/* The digest of a JSON value as a jsonb value (an "_extra" member). */
uint64_t cw_verify_json_digest(const char *span, size_t len, cw_decimal_mode_t mode);

/*
 * The row digest of a change's data (borrowed JSON object; a MongoDB
 * entity without columns: its "doc" in relaxed form) laid into model's
 * table. 0 or CW_EINVAL when the data cannot be read.
 */
int cw_verify_pg_digest_data(const cw_verify_pg_model_t *model, const char *doc_id,
                             const char *data, uint64_t *row, uint64_t *columns, cw_err_t *err);

#endif
