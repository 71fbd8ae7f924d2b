/*
 * This file contains how a change's data becomes a MongoDB document for the
 * MongoDB target (docs/targets-mongodb.md, "Types"): JSON values read from
 * their text, never through a C double unless a double holds the digits
 * exactly, and a PostgreSQL source's values typed by the column types the
 * source recorded (numeric -> Decimal128, timestamptz -> Date, bigint ->
 * Int64, jsonb -> an embedded document).
 *
 *   JSON value            BSON
 *   string                String
 *   integer               Int32 when it fits, else Int64, else Decimal128
 *   other number          Double when the shortest double text is the same
 *                         text, else Decimal128 (2.5 -> Double, 2.50 ->
 *                         Decimal128 "2.50"), else String (past 34 digits)
 *   true/false, null      Boolean, Null
 *   array                 Array, element by element
 *   object                Document, member by member; an object whose first
 *                         key starts with "$" is read as MongoDB extended
 *                         JSON ({"$oid": ...} -> ObjectId, {"$date": ...} ->
 *                         Date, canonical or relaxed)
 *
 * THREAD SAFETY: pure functions over caller-owned values.
 */
#ifndef CW_APPLY_MONGODB_DOC_H
#define CW_APPLY_MONGODB_DOC_H

#include "core/err.h"
#include "core/json_fields.h"

#include <bson/bson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Appends the JSON value of field (borrowed; a span from cw_json_fields_parse)
 * to out under key (key_len bytes) following the table above. Returns 0, or
 * CW_EINVAL with err when the value cannot be read (out then holds whatever
 * was appended before; the caller discards it).
 */
int cw_mdoc_append_json(bson_t *out, const char *key, size_t key_len,
                        const cw_json_field_t *field, cw_err_t *err);

/*
 * Same, typed by a PostgreSQL source's column type as format_type() prints
 * it (NULL: untyped, the table above): smallint, integer -> Int32; bigint ->
 * Int64; numeric -> Decimal128 (String past 34 digits); real, double
 * precision -> Double; boolean -> Boolean; timestamp with or without time
 * zone, date -> Date (milliseconds; timestamp without time zone read as
 * UTC); json, jsonb -> the JSON value; bytea -> Binary (subtype 0); any other
 * type -> the JSON value (text stays a String). A value the type's reader
 * refuses (an out-of-range date) falls back to the JSON value.
 */
int cw_mdoc_append_pg(bson_t *out, const char *key, size_t key_len, const char *pg_type,
                      const cw_json_field_t *field, cw_err_t *err);

/*
 * Parses MongoDB extended JSON text (canonical or relaxed; len bytes) holding
 * one document into out (initialised by the caller with bson_init; replaced).
 * Returns 0, or CW_EINVAL with err.
 */
int cw_mdoc_from_extended_json(bson_t *out, const char *text, size_t len, cw_err_t *err);

/*
 * A document entity's "doc" field as BSON into out (as for
 * cw_mdoc_from_extended_json): the hub's string holding canonical extended
 * JSON text (core/projection.h), or an object (rows written before it kept
 * the text: their field order is the hub's). 0 or CW_EINVAL with err.
 */
int cw_mdoc_doc_field(bson_t *out, const cw_json_field_t *doc, cw_err_t *err);

/*
 * The text of a document entity's data with "doc" rewritten as a relaxed
 * extended JSON object, the form the SQLite and PostgreSQL targets read.
 * Owned; NULL when the data holds no "doc" or it cannot be read (the caller
 * keeps the text).
 */
char *cw_mdoc_relaxed_data(const char *data);

/* Milliseconds since the epoch of a PostgreSQL timestamp or date text; false when unreadable. */
bool cw_mdoc_parse_pg_time(const char *text, size_t len, int64_t *ms);

#endif
