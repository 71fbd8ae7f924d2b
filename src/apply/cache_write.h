/*
 * This file contains the writes into one SQLite cache (apply/cachedb.h): a
 * coalesced write list (apply/coalesce.h) applied in one transaction
 * together with the cache's metadata 'oplog_id'.
 *
 * An upsert is `INSERT ... ON CONFLICT("id") DO UPDATE SET` of the columns
 * present in its data only (absent = unchanged), plus "_version" and
 * "_oplog_id"; a replacing upsert deletes the row first. A delete removes
 * the row by id; a sweep removes the rows whose "_version" is lower than the
 * sweep's. Values are read from the data's text without re-encoding it
 * (core/json_fields.h) and bound as apply/typed_value.h converts them under
 * the cache's decimal handling: no number loses a digit. A JSON null is SQL
 * NULL.
 *
 * Entities without columns: a MongoDB entity's data key "doc" goes to the
 * jsonb column "doc". A PostgreSQL entity's data keys become columns (added
 * with ALTER TABLE, no declared type) when the key is a valid identifier
 * ([a-z][a-z0-9_]{0,62}) other than id, _version, _oplog_id and _extra; the
 * key "id" is the primary key itself and is not stored twice; every other
 * key goes into the JSON object in column "_extra", merged with
 * json_patch (so a key set to null there is removed).
 *
 * THREAD SAFETY: as cachedb.h: one thread.
 */
#ifndef CW_APPLY_CACHE_WRITE_H
#define CW_APPLY_CACHE_WRITE_H

#include "apply/cachedb.h"
#include "apply/coalesce.h"
#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Applies writes (borrowed) to cache in one transaction that also sets its
 * metadata 'oplog_id' to upto (and cache->applied after the commit). On
 * failure the transaction is rolled back and CW_EDB (or CW_EINVAL for data
 * that is not a JSON object) returned with err;
 * *corrupt (optional) tells whether SQLite reported the file damaged.
 */
int cw_cache_apply(cw_cache_t *cache, const cw_write_list_t *writes, int64_t upto, bool *corrupt,
                   cw_err_t *err);

/*
 * Dynamic tables: drops each column that is not in keep (the source table's
 * columns; "_extra" always stays), as after a DROP or RENAME COLUMN at the
 * source; a column SQLite cannot drop (an index names it) is set to NULL
 * instead. Each column handled is appended to handled (comma-separated).
 * Does nothing with an empty keep. CW_EDB with err.
 */
int cw_cache_drop_columns_outside(cw_cache_t *cache, char *const *keep, size_t nkeep,
                                  cw_buf_t *handled, cw_err_t *err);

#endif
