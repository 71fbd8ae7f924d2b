/*
 * This file contains the entity and its shape (DESIGN.md §2): the name that
 * becomes a file path and an SQL identifier, the source and collection or
 * table it comes from, and the columns projected from each document.
 * Validation lives here and only here: config, CLI, API and hub all call it.
 */
#ifndef CW_CORE_ENTITY_H
#define CW_CORE_ENTITY_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_ENTITY_NAME_MAX 63

typedef enum cw_column_type {
	CW_COL_JSONB = 0,
	CW_COL_ANY,
	CW_COL_BOOL,
	CW_COL_NUMBER,
	CW_COL_INTEGER,
	CW_COL_TEXT,
} cw_column_type_t;

/* How a target stores a number that is not a 64-bit integer (apply/typed_value.h;
 * the names are the config's targets[].decimal_handling values). */
typedef enum cw_decimal_mode {
	CW_DECIMAL_EXACT = 0,
	CW_DECIMAL_DOUBLE,
	CW_DECIMAL_TEXT,
} cw_decimal_mode_t;

typedef struct cw_column {
	char *name;              /* owned; [a-z][a-z0-9_]{0,62}, not id/_version/_oplog_id */
	cw_column_type_t type;
	char *path;              /* owned; dot path into the document: "pricing.amount", "tags.0" */
} cw_column_t;

typedef enum cw_entity_status {
	CW_ENTITY_PENDING = 0,
	CW_ENTITY_SCANNING,
	CW_ENTITY_LIVE,
	CW_ENTITY_DELETED,
} cw_entity_status_t;

/*
 * Where an entity was declared: the configuration file's entities are
 * paused when the file no longer lists them; an entity added through the
 * API or the CLI never is. UNKNOWN: stored before the hub recorded it.
 */
typedef enum cw_entity_origin {
	CW_ENTITY_ORIGIN_UNKNOWN = 0,
	CW_ENTITY_ORIGIN_FILE,
	CW_ENTITY_ORIGIN_API,
} cw_entity_origin_t;

/* An entity's settings for one target (configuration only; never stored in the hub). */
typedef struct cw_entity_target {
	char *name;              /* owned; a configured target's name */
	int64_t write_batch_size;  /* postgres: rows per statement for this entity; 0 = the target's */
	char *collection;        /* owned; mongodb: the entity's collection there; NULL = default */
	int exclude;             /* mongodb: 1 = the target leaves this entity out (enum false/true) */
} cw_entity_target_t;

/* How a PostgreSQL entity is captured: from the replication stream, or by polling its table. */
typedef enum cw_entity_mode {
	CW_ENTITY_MODE_STREAM = 0,
	CW_ENTITY_MODE_BATCH,
} cw_entity_mode_t;

/* Batch mode's settings (docs/batch.md; configuration only, never stored in the hub). */
typedef struct cw_entity_batch {
	char *column;                /* owned; change_detection.column, default "updated_at" */
	char *timezone;              /* owned; change_detection.timezone, default "UTC" */
	int64_t lag_ms;              /* change_detection.lag: rows newer than now - lag wait */
	char *schedule;              /* owned; cron (core/cron.h) or NULL */
	int64_t polling_interval_ms; /* 0 = unset: the schedule, else 1m (cw_entity_poll_ms) */
	int64_t delete_interval_ms;  /* delete_detection.interval; 0 = off */
} cw_entity_batch_t;

typedef struct cw_entity {
	char *name;              /* owned */
	char *source;            /* owned; a configured source name */
	char *collection;        /* owned; MongoDB sources, else NULL */
	char *table;             /* owned; PostgreSQL sources ("schema.table" or "table", parts
	                            may be double-quoted: cw_entity_table_parse), else NULL */
	cw_column_t *columns;    /* owned array of ncolumns */
	size_t ncolumns;         /* 0 = columns omitted: every table column / whole document as "doc" */
	cw_entity_status_t status;
	int64_t version;         /* capture generation, starts at 1 */
	/* Per-target settings from the configuration file (entities[].targets); owned by the
	 * configuration and freed with it, never copied by cw_entity_copy nor kept in the hub. */
	cw_entity_target_t *targets;
	size_t ntargets;
	/* Batch mode (configuration only, like targets: never copied nor kept in the hub). */
	cw_entity_mode_t mode;
	cw_entity_batch_t batch;
	/* Kept in the hub (last, after the configuration-only fields, so positional
	 * initializers of the fields above stay valid). */
	cw_entity_origin_t origin;
	/* Paused (removed from the configuration file): why, owned; NULL when not paused.
	 * Its source does not capture it and its targets keep their data. */
	char *paused_reason;
	int64_t paused_at_us;    /* wall clock, when paused_reason is set */
} cw_entity_t;

/* The polling interval of a batch entity without a schedule: polling_interval, else 1m. */
int64_t cw_entity_poll_ms(const cw_entity_t *entity);

/*
 * Validates an identifier that becomes an SQL identifier or a path component
 * against [a-z][a-z0-9_]{0,62}. `what` names it in the message ("entity
 * name", "column name"). Returns 0 or CW_EINVAL with a message that says why
 * (empty, too long, upper case, forbidden character and its position).
 */
int cw_identifier_validate(const char *what, const char *name, cw_err_t *err);

/* Longest schema or table name PostgreSQL keeps (NAMEDATALEN - 1), in bytes. */
#define CW_TABLE_PART_MAX 63

/*
 * Parses an entity's table, "table" or "schema.table" (schema "public" when
 * omitted), into the names PostgreSQL's catalog holds. Each part is either
 * unquoted, [a-z][a-z0-9_]* (upper case is refused: PostgreSQL would fold it,
 * so the name meant is ambiguous), or double-quoted, any 1..CW_TABLE_PART_MAX
 * bytes but control characters, with "" for a '"' (public."Orders",
 * "My Schema"."a.b"). schema and name (CW_TABLE_PART_MAX + 1 bytes each,
 * owned by the caller) receive the unquoted names. 0 or CW_EINVAL saying
 * what is wrong and where.
 */
int cw_entity_table_parse(const char *table, char schema[CW_TABLE_PART_MAX + 1],
                          char name[CW_TABLE_PART_MAX + 1], cw_err_t *err);

/* cw_identifier_validate for an entity name. */
int cw_entity_name_validate(const char *name, cw_err_t *err);

/* Validates a dot path: non-empty segments of [A-Za-z0-9_$-], at most 32 deep. */
int cw_path_validate(const char *path, cw_err_t *err);

/*
 * Validates a MongoDB collection name a target writes to: 1 to 120 bytes of
 * [A-Za-z0-9_.-], starting with a letter, a digit or '_', not "system."
 * nor "_cachewarp" at its start (the server's and cachewarp's own
 * collections). 0 or CW_EINVAL with a message saying why.
 */
int cw_collection_name_validate(const char *name, cw_err_t *err);

/*
 * Whether a column name (len bytes) is one a target's table keeps for itself:
 * "id" (the doc_id), "_version", "_oplog_id" and "_extra" (a dynamic table's
 * other keys). Defined here once for every target's layout.
 */
bool cw_column_name_reserved(const char *name, size_t len);

/* "jsonb", "any", "bool", "number", "integer", "text" and back. */
const char *cw_column_type_name(cw_column_type_t type);
int cw_column_type_parse(const char *name, cw_column_type_t *type, cw_err_t *err);

/* "pending", "scanning", "live", "deleted" and back. */
const char *cw_entity_status_name(cw_entity_status_t status);
int cw_entity_status_parse(const char *name, cw_entity_status_t *status, cw_err_t *err);

/* The status users see: "paused" for a paused entity that is not deleted, else its status. */
const char *cw_entity_shown_status(const cw_entity_t *entity);

/* "file", "api", or NULL for CW_ENTITY_ORIGIN_UNKNOWN; parse maps NULL and unknown text to it. */
const char *cw_entity_origin_name(cw_entity_origin_t origin);
cw_entity_origin_t cw_entity_origin_parse(const char *name);

/* Whether a source captures the entity: neither deleted nor paused. */
bool cw_entity_is_captured(const cw_entity_t *entity);

/* Whether the entity is paused (paused_reason set) and not deleted. */
bool cw_entity_is_paused(const cw_entity_t *entity);

/*
 * Validates the whole entity: name, source present, exactly one of
 * collection/table, table name parts valid identifiers, column names valid and
 * unique and not reserved (id, _version, _oplog_id), paths valid.
 */
int cw_entity_validate(const cw_entity_t *entity, cw_err_t *err);

/*
 * cw_entity_validate that also names the key at fault, relative to the
 * entity, in key (cap bytes, owned by the caller): "name", "table",
 * "columns[2].path"; "" when the entity is valid. For messages that point
 * at the key's own line.
 */
int cw_entity_validate_key(const cw_entity_t *entity, char *key, size_t cap, cw_err_t *err);

/* True when both have the same source, collection/table and columns (in order). */
bool cw_entity_shape_equal(const cw_entity_t *a, const cw_entity_t *b);

/* The columns as a JSON array [{"name","type","path"}], owned by the caller. */
char *cw_entity_columns_json(const cw_entity_t *entity);
/* Parses such an array into entity->columns (replacing them). */
int cw_entity_columns_from_json(cw_entity_t *entity, const char *json, cw_err_t *err);

/* Deep copy into dst (which is overwritten, not freed). */
void cw_entity_copy(cw_entity_t *dst, const cw_entity_t *src);
/* Frees the members and zeroes the struct; NULL is a no-op. */
void cw_entity_clear(cw_entity_t *entity);

#endif
