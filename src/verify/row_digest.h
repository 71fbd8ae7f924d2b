/*
 * This file contains the row digests verify compares: a 64-bit digest of one
 * row of an entity as a target should hold it, computed the same way from
 * the two places a row can be read — a change's data (the source read and
 * projected as capture projects it) and the values a target stored.
 *
 * Each column's value is first turned into the value a target stores
 * (apply/typed_value.h, under the target's decimal handling), then into a
 * canonical text that does not depend on the storage class a database
 * picked for it: an integer and an integral double print as the integer
 * ("12"), other doubles as their shortest text ("2.5"), text as itself, and
 * NULL as a marker no text can equal. So a value the target converted on
 * the way in (SQLite's column affinity) still compares equal, and a value
 * that changed does not.
 *
 * Layouts (apply/layout.h):
 *   typed     the digest covers the shape's columns in order; a column absent
 *             from data counts as NULL (a verify read has every column)
 *   document  one column, "doc", the compact JSON text
 *   dynamic   an order-independent sum over the (name, value) pairs that are
 *             not NULL, "id" left out (it is the key): a column the table
 *             kept from an earlier schema and left NULL does not count
 *
 * The row digest mixes in the doc_id, so the same values under another key
 * differ. Summed (mod 2^64) over rows, digests summarize a set of rows
 * independently of the order it was read in.
 *
 * THREAD SAFETY: pure functions.
 */
#ifndef CW_VERIFY_ROW_DIGEST_H
#define CW_VERIFY_ROW_DIGEST_H

#include "apply/typed_value.h"
#include "core/entity.h"
#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

/* The most columns a digest names one by one (typed layout). */
#define CW_DIGEST_MAX_COLUMNS 1600

/* The digest of one value as a target stores it. */
uint64_t cw_digest_value(const cw_typed_value_t *value);

/* The digest of len bytes (FNV-1a, then mixed). */
uint64_t cw_digest_bytes(const void *bytes, size_t len);

/* A dynamic layout's pair: the column name and the value's digest. */
uint64_t cw_digest_pair(const char *name, size_t name_len, uint64_t value_digest);

/* The row digest of doc_id and its column digests (typed and document layouts). */
uint64_t cw_digest_row(const char *doc_id, const uint64_t *columns, size_t ncolumns);

/* The row digest of doc_id and the sum of its pair digests (dynamic layout). */
uint64_t cw_digest_row_pairs(const char *doc_id, uint64_t pairs_sum);

/*
 * The digest of a change's data (a JSON object, borrowed) for entity under
 * mode. columns (optional; cw_digest_columns(entity) entries, caller's)
 * receives each column's digest, for naming the columns that differ.
 * 0 or CW_EINVAL when data is not a JSON object.
 */
int cw_digest_data(const cw_entity_t *entity, cw_decimal_mode_t mode, const char *doc_id,
                   const char *data, uint64_t *row, uint64_t *columns, cw_err_t *err);

/* How many column digests a row of entity has: its columns, 1 for a document, 0 dynamic. */
size_t cw_digest_columns(const cw_entity_t *entity);

#endif
