/*
 * This file contains the layout rules every target shares: how an entity's
 * rows are laid out as columns (docs/targets-sqlite.md, "Tables"), so the
 * SQLite caches and the other targets agree on them.
 *
 *   typed     the entity has columns: one column per shape column, typed
 *   document  a MongoDB entity without columns: the whole document in the
 *             JSON column "doc"
 *   dynamic   a PostgreSQL entity without columns: each data key that is a
 *             valid identifier ([a-z][a-z0-9_]{0,62}) and not reserved
 *             (cw_column_name_reserved: id, _version, _oplog_id, _extra) is a
 *             column of its own; the key "id" is the primary key itself;
 *             every other key goes into the JSON object in column "_extra"
 *
 * Values are converted by apply/typed_value.h.
 *
 * THREAD SAFETY: pure functions.
 */
#ifndef CW_APPLY_LAYOUT_H
#define CW_APPLY_LAYOUT_H

#include "core/entity.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum cw_layout_kind {
	CW_LAYOUT_TYPED,
	CW_LAYOUT_DOCUMENT,
	CW_LAYOUT_DYNAMIC,
} cw_layout_kind_t;

/* The document layout's one column. */
#define CW_LAYOUT_DOC_COLUMN "doc"
/* The dynamic layout's column for the keys without a column of their own. */
#define CW_LAYOUT_EXTRA_COLUMN "_extra"

cw_layout_kind_t cw_layout_of(const cw_entity_t *entity);

/* "typed", "document", "dynamic". */
const char *cw_layout_name(cw_layout_kind_t kind);

/* Dynamic layout: whether the data key (len bytes, not NUL-terminated) is the primary key. */
bool cw_layout_key_is_id(const char *key, size_t len);

/* Dynamic layout: whether the data key (len bytes) is a column of its own. */
bool cw_layout_key_is_column(const char *key, size_t len);

#endif
