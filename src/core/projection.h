/*
 * This file contains the projection: it turns one source document (BSON from
 * MongoDB, or JSON text from PostgreSQL) into the JSON object of an entity's
 * columns that an oplog row carries in `data` (DESIGN.md §2), and computes a
 * MongoDB document's canonical doc_id. docs/projection.md is the user-facing
 * description of the rules below.
 *
 * - A column's path is a dot path ("pricing.amount", "tags.0"); a numeric
 *   segment also indexes an array.
 * - A path that does not exist in the document (a missing key, an index past
 *   the end, a segment below a scalar or null) leaves the column's key ABSENT
 *   from the output, which means "unchanged"; an explicit null gives the key
 *   with null. CW_PROJECTION_MISSING_NULL turns absent into null, for sources
 *   that always deliver the full document.
 * - Values are coerced to the column type (bool, number, integer, text) or
 *   written as JSON (jsonb, any; BSON types as MongoDB relaxed extended JSON).
 *   A number, or a decimal128, written as a number keeps all of its digits.
 *   A value that cannot be coerced is an error naming the column, the path and
 *   the reason: the caller quarantines the record.
 * - An entity without columns projects the whole document into one jsonb
 *   column "doc". A BSON document is written as the text of its canonical
 *   extended JSON, a JSON string: every type ({"$numberInt":"5"},
 *   {"$numberLong":"5"}, {"$numberDouble":"5.0"}) and the field order
 *   (which a jsonb column would sort) are kept, so a MongoDB target writes
 *   it back BSON-equal. Targets that read JSON see a relaxed object
 *   (apply_stream.c).
 *
 * A cw_projection_t is compiled once per entity and is immutable afterwards.
 *
 * THREAD SAFETY: a compiled projection may be used by any number of threads
 * at once; each call needs its own output buffer.
 */
#ifndef CW_CORE_PROJECTION_H
#define CW_CORE_PROJECTION_H

#include "core/buf.h"
#include "core/entity.h"
#include "core/err.h"

#include <bson/bson.h>
#include <stddef.h>

typedef struct cw_projection cw_projection_t;

/* cw_projection_new flags. */
enum {
	CW_PROJECTION_DEFAULT = 0,
	/* A missing path yields null instead of an absent key. */
	CW_PROJECTION_MISSING_NULL = 1u << 0,
};

/*
 * Compiles entity's columns (entity is borrowed for the call only; the
 * projection copies what it needs). Returns NULL with err filled (CW_EINVAL)
 * when a column name, type or path is invalid. Free with cw_projection_free.
 */
cw_projection_t *cw_projection_new(const cw_entity_t *entity, unsigned flags,
                                   cw_err_t *err);
/* NULL is a no-op. */
void cw_projection_free(cw_projection_t *proj);

/* Number of output columns (1, "doc", for an entity without columns). */
size_t cw_projection_ncolumns(const cw_projection_t *proj);

/*
 * Projects a BSON document (borrowed) into out, whose contents are replaced
 * with the JSON object text. Returns 0, or CW_EINVAL when a value cannot be
 * coerced or written (invalid UTF-8, a NUL byte, nesting deeper than
 * CW_JSON_MAX_DEPTH), or CW_EPROTO when the BSON is corrupt; err names the
 * column and path, and out is then empty. No allocation happens once out has
 * grown to its working size, except for text columns holding objects.
 */
int cw_projection_bson(const cw_projection_t *proj, const bson_t *doc, cw_buf_t *out,
                       cw_err_t *err);

/*
 * Same for a JSON document: json (NUL-terminated) must be one JSON object.
 * Values are read from the text, never through a C double: a number keeps
 * the digits it was printed with (2.50, 123456789012345678901234567890) in
 * number, any and jsonb columns, and an object or array the text it arrived
 * as. Returns CW_EINVAL for text that is not a JSON object (invalid UTF-8,
 * a \u0000 escape), or for coercion errors.
 */
int cw_projection_json(const cw_projection_t *proj, const char *json, cw_buf_t *out,
                       cw_err_t *err);

/*
 * The canonical doc_id (DESIGN.md §2) of the BSON `_id` value iter points at:
 * an ObjectId is its 24 lower-case hex characters, a string is itself, any
 * other type its canonical extended JSON ({"$numberInt":"5"}). Returns an
 * owned string, or NULL with err filled (CW_EINVAL) when the string is not
 * valid UTF-8 or holds a NUL byte.
 */
char *cw_projection_doc_id(const bson_iter_t *id, cw_err_t *err);

/* cw_projection_doc_id of doc's top-level `_id`; CW_ENOTFOUND when it has none. */
char *cw_projection_doc_id_of(const bson_t *doc, cw_err_t *err);

#endif
