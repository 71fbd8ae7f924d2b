/*
 * This file contains the configuration's key table (config_keys.h): every
 * key with its type, default, range, validation and help text, in reference
 * order, and the lookups of a key in it. config_values.c reads and writes
 * values through the table; config_names.c names keys for people.
 */
#include "core/config_keys.h"

#include "core/auth.h"
#include "core/cron.h"
#include "core/entity.h"
#include "core/time_window.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "config"
#define DAY_MS INT64_C(86400000)

_Static_assert(sizeof(cw_source_type_t) == sizeof(int) && sizeof(cw_watch_scope_t) == sizeof(int) &&
	               sizeof(cw_position_lost_t) == sizeof(int) &&
	               sizeof(cw_target_type_t) == sizeof(int) &&
	               sizeof(cw_delete_mode_t) == sizeof(int) && sizeof(cw_log_level_t) == sizeof(int) &&
	               sizeof(cw_log_format_t) == sizeof(int) && sizeof(cw_decimal_mode_t) == sizeof(int) &&
	               sizeof(cw_entity_delete_t) == sizeof(int) &&
	               sizeof(cw_on_error_t) == sizeof(int) &&
	               sizeof(cw_entity_mode_t) == sizeof(int) &&
	               sizeof(((cw_stream_config_t *)0)->enabled) == sizeof(int) &&
	               sizeof(((cw_transformation_config_t *)0)->type) == sizeof(int) &&
	               sizeof(cw_auth_type_t) == sizeof(int) &&
	               sizeof(((cw_config_t *)0)->verify.repair) == sizeof(int) &&
	               sizeof(((cw_config_t *)0)->watch.enabled) == sizeof(int),
               "enum keys are stored as int");
_Static_assert(CW_ON_ERROR_RETRY == 0 && CW_ON_ERROR_SKIP == 1 && CW_ON_ERROR_FAIL_STREAM == 2 &&
	               CW_ON_ERROR_DEAD_LETTER == 3,
               "on_errors[] follows cw_on_error_t");
_Static_assert(CW_LOG_DEBUG == 0 && CW_LOG_INFO == 1 && CW_LOG_WARN == 2 && CW_LOG_ERROR == 3,
               "log_levels[] follows cw_log_level_t");
_Static_assert(CW_LOG_FORMAT_AUTO == 0 && CW_LOG_FORMAT_JSON == 1 && CW_LOG_FORMAT_TEXT == 2,
               "log_formats[] follows cw_log_format_t");

static const char *const source_types[] = {"postgres", "mongodb", "mysql", NULL};
static const char *const watch_scopes[] = {"database", "collection", NULL};
static const char *const position_lost[] = {"rescan", "fail", NULL};
static const char *const booleans[] = {"false", "true", NULL};
static const char *const target_types[] = {"sqlite", "postgres", "mongodb", NULL};
static const char *const delete_modes[] = {"hard", "soft", NULL};
static const char *const entity_deletes[] = {"drop", "keep", NULL};
static const char *const decimal_modes[] = {"exact", "double", "text", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"auto", "json", "text", NULL};
static const char *const on_errors[] = {"retry", "skip", "fail_stream", "dead_letter", NULL};
static const char *const transformation_types[] = {"kazaam", NULL};
static const char *const entity_modes[] = {"stream", "batch", NULL};

/* The file format this cachewarp reads. */
static int check_version(const char *value, cw_err_t *err)
{
	if (strcmp(value, "1") == 0)
		return 0;
	cw_buf_t quoted = CW_BUF_INIT;
	cw_config_quote(&quoted, value);
	cw_err_set(err, CW_EINVAL, DOMAIN,
	           "unsupported configuration version %s: this cachewarp reads version 1",
	           cw_buf_cstr(&quoted));
	cw_buf_free(&quoted);
	return CW_EINVAL;
}

/* A human-readable name: 1 to 200 bytes, no control characters. */
static int check_label(const char *value, cw_err_t *err)
{
	size_t len = strlen(value);
	bool ok = len > 0 && len <= 200;
	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)value[i] >= 0x20 && value[i] != 0x7f;
	if (!ok)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "invalid value: a name has 1 to 200 characters, no control characters");
	return 0;
}
static const char *const auth_types[] = {"username_password", "certificate", "command", NULL};

static int check_window(const char *value, cw_err_t *err)
{
	int start, end;
	return cw_time_window_parse(value, &start, &end, err);
}

static int check_source_name(const char *value, cw_err_t *err)
{
	return cw_identifier_validate("source name", value, err);
}

static int check_target_name(const char *value, cw_err_t *err)
{
	return cw_identifier_validate("target name", value, err);
}

static int check_auth_id(const char *value, cw_err_t *err)
{
	return cw_identifier_validate("authentication id", value, err);
}

static int check_column_name(const char *value, cw_err_t *err)
{
	return cw_identifier_validate("column name", value, err);
}

/* A column batch mode polls: any name PostgreSQL could hold (it is quoted in SQL). */
static int check_change_column(const char *value, cw_err_t *err)
{
	size_t len = strlen(value);
	if (len == 0 || len > CW_TABLE_PART_MAX)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "a column name is 1 to %d bytes",
		                  CW_TABLE_PART_MAX);
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "column name has a control character");
	return 0;
}

/* A time zone name ("UTC", "Europe/Paris", "+02:00"); PostgreSQL checks it exists. */
static int check_timezone(const char *value, cw_err_t *err)
{
	if (value[0] == '\0' || strlen(value) > 64 ||
	    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_/+-:") !=
	        strlen(value))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "a time zone is a name such as UTC or "
		                  "Europe/Paris, or an offset such as +02:00");
	return 0;
}

static int check_publication(const char *value, cw_err_t *err)
{
	return cw_identifier_validate("publication name", value, err);
}

static int check_slot(const char *value, cw_err_t *err)
{
	return cw_identifier_validate("slot name", value, err);
}

static int check_schema(const char *value, cw_err_t *err)
{
	return cw_identifier_validate("schema name", value, err);
}

static int check_collection(const char *value, cw_err_t *err)
{
	return cw_collection_name_validate(value, err);
}

/* A write concern: "majority" or a number of members from 1 to 50. */
static int check_write_concern(const char *value, cw_err_t *err)
{
	if (strcmp(value, "majority") == 0)
		return 0;
	char *end = NULL;
	long members = strtol(value, &end, 10);
	if (value[0] != '\0' && *end == '\0' && members >= 1 && members <= 50)
		return 0;
	return cw_err_set(err, CW_EINVAL, DOMAIN,
	                  "invalid value: expected \"majority\" or a number of members from 1 to 50");
}

static int check_entity_name(const char *value, cw_err_t *err)
{
	return cw_entity_name_validate(value, err);
}

static int check_not_empty(const char *value, cw_err_t *err)
{
	if (value[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid value: empty");
	return 0;
}

/* MongoDB database names: non-empty, at most 63 bytes, none of /\. "$ */
static int check_database(const char *value, cw_err_t *err)
{
	if (value[0] == '\0' || strlen(value) > 63 || strpbrk(value, "/\\. \"$") != NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "invalid value: a MongoDB database name has 1 to 63 characters, "
		                  "none of / \\ . space \" $");
	return 0;
}

/* HOST:PORT, PORT 0..65535, HOST a name, an IPv4 address or [IPv6]. */
static int check_listen(const char *value, cw_err_t *err)
{
	const char *colon = strrchr(value, ':');
	const char *port = colon ? colon + 1 : "";
	size_t port_len = strlen(port);
	bool ok = colon != NULL && colon != value && port_len > 0 && port_len <= 5 &&
	          strspn(port, "0123456789") == port_len && atoi(port) <= 65535;
	if (ok && value[0] == '[')
		ok = colon[-1] == ']';
	else if (ok)
		ok = memchr(value, ':', (size_t)(colon - value)) == NULL;
	if (!ok)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "invalid value: expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080");
	return 0;
}

#define GROUP(p, h) {.path = p, .kind = CW_KEY_GROUP, .help = h}
#define LIST(p, parent_t, field, item_t, most, h)                                          \
	{.path = p, .kind = CW_KEY_LIST, .offset = offsetof(parent_t, field),                  \
	 .count_offset = offsetof(parent_t, n##field), .item_size = sizeof(item_t),            \
	 .max_items = most, .help = h}
#define CFG(field) offsetof(cw_config_t, field)
#define SRC(field) offsetof(cw_source_config_t, field)
#define TGT(field) offsetof(cw_target_config_t, field)
#define ENT(field) offsetof(cw_entity_t, field)
#define COL(field) offsetof(cw_column_t, field)
#define ETG(field) offsetof(cw_entity_target_t, field)
#define STR(field) offsetof(cw_stream_config_t, field)
#define TRF(field) offsetof(cw_transformation_config_t, field)
#define AUT(field) offsetof(cw_auth_config_t, field)
#define AUTH_ID_HELP                                                                         \
	"The `authentication` entry (its `id`) whose credentials are used to connect; the url "  \
	"then carries no password. See docs/authentication.md."

static const cw_config_key_t keys[] = {
	{.path = "version", .kind = CW_KEY_STRING, .offset = CFG(version), .default_text = "1",
	 .check = check_version,
	 .help = "The format of this file: `1` (a number or a string). A file without it is "
	         "read as version 1; any other version is refused rather than misread."},

	GROUP("hub", "The oplog hub: the PostgreSQL database every change is written to once "
	             "(schema `cachewarp`, created and migrated on startup)."),
	{.path = "hub.url", .kind = CW_KEY_URL, .offset = CFG(hub.url), .flags = CW_KEY_REQUIRED,
	 .help = "PostgreSQL URL (`postgresql://user:password@host:5432/db`) or libpq conninfo "
	         "string of the hub."},
	{.path = "hub.pool_size", .kind = CW_KEY_INT, .offset = CFG(hub.pool_size),
	 .default_text = "4", .min = 1, .max = 256,
	 .help = "Hub connections kept open for the REST API and administrative work."},
	{.path = "hub.retention", .kind = CW_KEY_DURATION, .offset = CFG(hub.retention_ms),
	 .default_text = "7d", .min = 0, .max = 3650 * DAY_MS,
	 .help = "Oplog rows appended to the hub longer ago than this are deleted (checked every "
	         "minute) once every live consumer has applied them; a consumer not seen for 10 "
	         "minutes no longer holds them back, and with no live consumer nothing is deleted. "
	         "0 keeps every row."},
	{.path = "hub.auth_id", .kind = CW_KEY_STRING, .offset = CFG(hub.auth_id),
	 .default_doc = "none", .check = check_auth_id, .help = AUTH_ID_HELP},

	LIST("sources", cw_config_t, sources, cw_source_config_t, 256,
	     "Databases whose changes are captured, each by one worker."),
	{.path = "sources[].name", .kind = CW_KEY_STRING, .offset = SRC(name),
	 .flags = CW_KEY_REQUIRED, .check = check_source_name,
	 .help = "Unique name of the source (`[a-z][a-z0-9_]*`); entities refer to it."},
	{.path = "sources[].type", .kind = CW_KEY_ENUM, .offset = SRC(type),
	 .flags = CW_KEY_REQUIRED, .values = source_types,
	 .help = "`postgres` (logical replication with pgoutput), `mongodb` (change streams) or "
	         "`mysql` (MySQL or MariaDB row-based binlog)."},
	{.path = "sources[].url", .kind = CW_KEY_URL, .offset = SRC(url), .flags = CW_KEY_REQUIRED,
	 .help = "Connection URL: `postgresql://user:password@host/db` (or a libpq conninfo "
	         "string) for postgres, `mongodb://` or `mongodb+srv://` for mongodb, "
	         "`mysql://user:password@host:3306/db` for mysql."},
	{.path = "sources[].publication", .kind = CW_KEY_STRING, .offset = SRC(publication),
	 .default_text = "cachewarp", .applies_to = "postgres", .check = check_publication,
	 .help = "Publication to stream from; created (for the entities' tables) when missing."},
	{.path = "sources[].slot", .kind = CW_KEY_STRING, .offset = SRC(slot),
	 .default_doc = "`cachewarp_` + name", .applies_to = "postgres", .check = check_slot,
	 .help = "Logical replication slot; created when missing."},
	{.path = "sources[].database", .kind = CW_KEY_STRING, .offset = SRC(database),
	 .flags = CW_KEY_REQUIRED, .applies_to = "mongodb", .check = check_database,
	 .help = "Database holding the entities' collections."},
	{.path = "sources[].watch", .kind = CW_KEY_ENUM, .offset = SRC(watch),
	 .default_text = "database", .applies_to = "mongodb", .values = watch_scopes,
	 .help = "`database`: one change stream on the whole database, one resume token; "
	         "`collection`: one change stream per collection."},
	{.path = "sources[].on_position_lost", .kind = CW_KEY_ENUM, .offset = SRC(on_position_lost),
	 .default_text = "rescan", .values = position_lost,
	 .help = "When the stored position is gone (MongoDB history lost, slot dropped, or the "
	         "stored position fails its checksum): `rescan` "
	         "starts a new generation (full scan, then a sweep of rows it did not see); "
	         "`fail` stops the source with an error."},
	{.path = "sources[].auth_id", .kind = CW_KEY_STRING, .offset = SRC(auth_id),
	 .default_doc = "none", .check = check_auth_id, .help = AUTH_ID_HELP},

	LIST("entities", cw_config_t, entities, cw_entity_t, 10000,
	     "The file's entities, stored in the hub at start and on reload; one the file no "
	     "longer lists is paused, not deleted: its targets keep their data (docs/operations.md, "
	     "\"Paused entities\"). Entities added through the API or CLI live in the hub, "
	     "survive restarts and are never paused by the file."),
	{.path = "entities[].name", .kind = CW_KEY_STRING, .offset = ENT(name),
	 .flags = CW_KEY_REQUIRED, .check = cw_entity_name_validate,
	 .help = "Unique name (`[a-z][a-z0-9_]{0,62}`): it names the cache file and the SQL table."},
	{.path = "entities[].source", .kind = CW_KEY_STRING, .offset = ENT(source),
	 .flags = CW_KEY_REQUIRED, .check = check_source_name,
	 .help = "Name of the configured source the entity comes from."},
	{.path = "entities[].collection", .kind = CW_KEY_STRING, .offset = ENT(collection),
	 .help = "MongoDB collection; required for, and only allowed with, a mongodb source."},
	{.path = "entities[].table", .kind = CW_KEY_STRING, .offset = ENT(table),
	 .help = "PostgreSQL table, `schema.table` or `table` (schema `public`); a part created "
	         "with upper-case or other characters is written in double quotes as in SQL, "
	         "`public.\"Orders\"`. Required for, and only allowed with, a postgres or mysql "
	         "source (mysql: `database.table`, or `table` in the url's database)."},
	LIST("entities[].columns", cw_entity_t, columns, cw_column_t, 1600,
	     "The shape: columns projected from each document, in order; a flow mapping per "
	     "column such as `- {name: price, type: number, path: pricing.amount}` is fine. "
	     "Omitted (or `auto`): a postgres entity takes every column of its table, a mongodb "
	     "entity keeps the whole document in one jsonb column `doc`."),
	{.path = "entities[].columns[].name", .kind = CW_KEY_STRING, .offset = COL(name),
	 .flags = CW_KEY_REQUIRED, .check = check_column_name,
	 .help = "Column name (`[a-z][a-z0-9_]*`; not `id`, `_version` or `_oplog_id`)."},
	{.path = "entities[].columns[].type", .kind = CW_KEY_COLUMN_TYPE, .offset = COL(type),
	 .flags = CW_KEY_REQUIRED, .help = "Column type."},
	{.path = "entities[].columns[].path", .kind = CW_KEY_STRING, .offset = COL(path),
	 .flags = CW_KEY_REQUIRED, .check = cw_path_validate,
	 .help = "Dot path into the document: `pricing.amount`, `tags.0`."},
	{.path = "entities[].targets", .kind = CW_KEY_LIST, .offset = ENT(targets),
	 .count_offset = ENT(ntargets), .item_size = sizeof(cw_entity_target_t), .max_items = 256,
	 .flags = CW_KEY_BY_NAME,
	 .help = "The entity's settings for some targets, a mapping keyed by target name: "
	         "`targets: {warehouse: {write_batch_size: 100}}`."},
	{.path = "entities[].targets[].name", .kind = CW_KEY_STRING, .offset = ETG(name),
	 .flags = CW_KEY_REQUIRED, .check = check_target_name,
	 .help = "The target (the mapping's key; a configured target)."},
	{.path = "entities[].targets[].write_batch_size", .kind = CW_KEY_INT,
	 .offset = ETG(write_batch_size), .default_text = "0", .min = 0, .max = 100000,
	 .help = "postgres targets: most rows of this entity copied and upserted by one statement; "
	         "0 takes the target's `write_batch_size`."},
	{.path = "entities[].targets[].collection", .kind = CW_KEY_STRING, .offset = ETG(collection),
	 .default_doc = "the entity's source collection, else its name", .check = check_collection,
	 .help = "mongodb targets: the collection the entity is written to (1 to 120 characters "
	         "of letters, digits, `_ . -`; not `system.*` or `_cachewarp*`)."},
	{.path = "entities[].targets[].exclude", .kind = CW_KEY_ENUM, .offset = ETG(exclude),
	 .default_text = "false", .values = booleans,
	 .help = "mongodb targets: `true` leaves the entity out of this target (seed 003's "
	         "excluded collections); the other targets still receive it."},
	{.path = "entities[].mode", .kind = CW_KEY_ENUM, .offset = ENT(mode),
	 .default_text = "stream", .values = entity_modes,
	 .help = "`stream`: changes come from the source's change log (logical replication, "
	         "change streams); `batch` (postgres and mysql sources, docs/batch.md): the table "
	         "is polled for rows whose `change_detection.column` grew, for databases where "
	         "logical replication or the binlog is not available."},
	GROUP("entities[].change_detection", "Batch mode: how changed rows are found."),
	{.path = "entities[].change_detection.column", .kind = CW_KEY_STRING,
	 .offset = ENT(batch.column), .default_text = "updated_at", .check = check_change_column,
	 .help = "The column every insert and update sets to a larger value: a timestamp, or a "
	         "number a trigger or sequence keeps; it must be of an orderable type."},
	{.path = "entities[].change_detection.timezone", .kind = CW_KEY_STRING,
	 .offset = ENT(batch.timezone), .default_text = "UTC", .check = check_timezone,
	 .help = "For a `timestamp without time zone` column (MySQL: `DATETIME`, `DATE`): the "
	         "zone its values are written in (`UTC`, `Europe/Paris`, `+09:00`); sets the "
	         "changes' times and the lag window."},
	{.path = "entities[].change_detection.lag", .kind = CW_KEY_DURATION,
	 .offset = ENT(batch.lag_ms), .default_text = "0", .min = 0, .max = DAY_MS,
	 .help = "Rows whose column is newer than the source's clock minus this wait for the "
	         "next poll, so a transaction that commits up to this long after setting the "
	         "column is not missed (timestamp columns only)."},
	{.path = "entities[].schedule", .kind = CW_KEY_STRING, .offset = ENT(batch.schedule),
	 .default_doc = "none", .check = cw_cron_check,
	 .help = "Batch mode: when to poll, as cron's five fields in UTC (`*/15 * * * *`); "
	         "instead of `polling_interval`."},
	{.path = "entities[].polling_interval", .kind = CW_KEY_DURATION,
	 .offset = ENT(batch.polling_interval_ms), .default_doc = "1m (without a schedule)",
	 .min = 10, .max = 7 * DAY_MS,
	 .help = "Batch mode: the time between the end of one poll and the start of the next; "
	         "instead of `schedule`."},
	GROUP("entities[].delete_detection", "Batch mode: how deleted rows are found."),
	{.path = "entities[].delete_detection.interval", .kind = CW_KEY_DURATION,
	 .offset = ENT(batch.delete_interval_ms), .default_text = "1h", .min = 0,
	 .max = 30 * DAY_MS,
	 .help = "How often the source's keys are compared with the hub's (by buckets of key "
	         "hashes, then key by key in the buckets that differ) and a delete written for "
	         "each key the table no longer has; 0 turns it off."},

	LIST("targets", cw_config_t, targets, cw_target_config_t, 256,
	     "Where the hub is applied, each by one consumer."),
	{.path = "targets[].name", .kind = CW_KEY_STRING, .offset = TGT(name),
	 .flags = CW_KEY_REQUIRED, .check = check_target_name,
	 .help = "Unique name of the target (`[a-z][a-z0-9_]*`); also its consumer name in the hub."},
	{.path = "targets[].type", .kind = CW_KEY_ENUM, .offset = TGT(type),
	 .flags = CW_KEY_REQUIRED, .values = target_types,
	 .help = "`sqlite` (one cache database per entity), `postgres` (one table per entity) or "
	         "`mongodb` (one collection per entity)."},
	{.path = "targets[].dir", .kind = CW_KEY_STRING, .offset = TGT(dir),
	 .flags = CW_KEY_REQUIRED, .applies_to = "sqlite", .check = check_not_empty,
	 .help = "Directory of the caches: `{dir}/{entity}/db.sqlite`. A relative path is taken "
	         "relative to the configuration file's directory."},
	{.path = "targets[].url", .kind = CW_KEY_URL, .offset = TGT(url), .flags = CW_KEY_REQUIRED,
	 .applies_to = "postgres mongodb",
	 .help = "Connection URL of the target database."},
	{.path = "targets[].auth_id", .kind = CW_KEY_STRING, .offset = TGT(auth_id),
	 .default_doc = "none", .applies_to = "postgres mongodb", .check = check_auth_id,
	 .help = AUTH_ID_HELP},
	{.path = "targets[].schema", .kind = CW_KEY_STRING, .offset = TGT(schema),
	 .default_text = "public", .applies_to = "postgres", .check = check_schema,
	 .help = "Schema holding the entity tables (created when missing)."},
	{.path = "targets[].meta_schema", .kind = CW_KEY_STRING, .offset = TGT(meta_schema),
	 .default_text = "cachewarp_meta", .applies_to = "postgres", .check = check_schema,
	 .help = "Schema of the target's bookkeeping tables `positions`, `schema_history`, "
	         "`runs` and `quarantine` (created when missing). See docs/targets-postgres.md."},
	{.path = "targets[].database", .kind = CW_KEY_STRING, .offset = TGT(database),
	 .default_doc = "the database in `url`", .applies_to = "mongodb", .check = check_database,
	 .help = "Database receiving the entity collections."},
	{.path = "targets[].write_concern", .kind = CW_KEY_STRING, .offset = TGT(write_concern),
	 .default_text = "majority", .applies_to = "mongodb", .check = check_write_concern,
	 .help = "Write concern of every write: `majority`, or the number of members that "
	         "acknowledge it (`1` .. `50`). Unacknowledged writes (`0`) are not offered: "
	         "the position must never pass data the server may lose."},
	{.path = "targets[].entities", .kind = CW_KEY_WORDS, .offset = TGT(entities),
	 .default_doc = "every entity", .applies_to = "mongodb", .check = check_entity_name,
	 .max_items = 10000,
	 .help = "The entities this target receives, by entity name (`[orders, customers]`); "
	         "the others are left out. Not together with `exclude`. See "
	         "docs/targets-mongodb.md."},
	{.path = "targets[].exclude", .kind = CW_KEY_WORDS, .offset = TGT(exclude),
	 .default_doc = "none", .applies_to = "mongodb", .check = check_not_empty,
	 .max_items = 10000,
	 .help = "Left out of this target (seed 003's excluded collections): each name is an "
	         "entity's name, or the source collection or table it captures (`sessions`, "
	         "`public.audit` or `audit`), so a list written for the application's "
	         "collections works as it is. Not together with `entities`."},
	{.path = "targets[].idle_timeout", .kind = CW_KEY_DURATION, .offset = TGT(idle_timeout_ms),
	 .default_text = "1m", .min = 1000, .max = DAY_MS, .applies_to = "sqlite",
	 .help = "A cache's connections are closed after this long without use."},
	{.path = "targets[].delete_mode", .kind = CW_KEY_ENUM, .offset = TGT(delete_mode),
	 .default_text = "hard", .applies_to = "postgres", .values = delete_modes,
	 .help = "`hard` deletes the row; `soft` keeps it and sets the soft-delete column to true "
	         "(a later upsert of the key sets it back to false)."},
	{.path = "targets[].soft_delete_column", .kind = CW_KEY_STRING,
	 .offset = TGT(soft_delete_column), .default_text = "is_deleted", .applies_to = "postgres",
	 .check = check_column_name,
	 .help = "The boolean column `delete_mode: soft` sets (`[a-z][a-z0-9_]*`)."},
	{.path = "targets[].on_entity_delete", .kind = CW_KEY_ENUM, .offset = TGT(on_entity_delete),
	 .default_text = "drop", .applies_to = "postgres", .values = entity_deletes,
	 .help = "An entity deleted in the hub: `drop` drops its table; `keep` keeps the table and "
	         "its rows and stops applying to it."},
	{.path = "targets[].write_batch_size", .kind = CW_KEY_INT, .offset = TGT(write_batch_size),
	 .default_text = "500", .min = 1, .max = 100000, .applies_to = "postgres",
	 .help = "Most rows copied and upserted by one statement; a coalesced batch larger than "
	         "this is written in several, in one transaction."},
	{.path = "targets[].column_budget", .kind = CW_KEY_INT, .offset = TGT(column_budget),
	 .default_text = "400", .min = 8, .max = 1500, .applies_to = "postgres",
	 .help = "Columns an entity's table may grow to through new fields; past it new fields "
	         "go into one `_extra jsonb` column (PostgreSQL allows 1,600, dropped columns "
	         "included)."},
	{.path = "targets[].decimal_handling", .kind = CW_KEY_ENUM, .offset = TGT(decimal_handling),
	 .default_text = "exact", .applies_to = "sqlite postgres", .values = decimal_modes,
	 .help = "Numbers that are not 64-bit integers. sqlite: `exact` stores a `REAL` when it "
	         "holds every digit and the digits as `TEXT` otherwise; `double` always a `REAL` "
	         "(may round); `text` always the digits as `TEXT` (`2.50` stays `2.50`). postgres: "
	         "`exact` and `text` make `number` columns `numeric` (every digit kept) and a new "
	         "field `double precision` only while a double holds its digits, else `numeric`; "
	         "`double` makes them `double precision`. See docs/targets-sqlite.md and "
	         "docs/targets-postgres.md."},

	LIST("targets[].streams", cw_target_config_t, streams, cw_stream_config_t, 10000,
	     "Streams (docs/streams.md): the target's settings for some entities, one item per "
	     "entity. An entity without an item flows to the target with the defaults."),
	{.path = "targets[].streams[].entity", .kind = CW_KEY_STRING, .offset = STR(entity),
	 .flags = CW_KEY_REQUIRED, .check = cw_entity_name_validate,
	 .help = "The entity (`[a-z][a-z0-9_]{0,62}`); at most one item per entity and target. "
	         "It need not be among `entities`: an entity added through the API lives in the "
	         "hub."},
	{.path = "targets[].streams[].transformation_id", .kind = CW_KEY_STRING,
	 .offset = STR(transformation_id), .default_doc = "none",
	 .check = cw_config_check_transformation_id,
	 .help = "The `id` of a transformation reshaping each change before it is written; "
	         "unset: changes are written as the hub holds them."},
	{.path = "targets[].streams[].enabled", .kind = CW_KEY_ENUM, .offset = STR(enabled),
	 .default_text = "true", .values = booleans,
	 .help = "`false` stops the stream: the target applies none of the entity's changes "
	         "(they wait in the hub)."},
	{.path = "targets[].streams[].batch_size", .kind = CW_KEY_INT, .offset = STR(batch_size),
	 .default_text = "0", .min = 0, .max = 100000,
	 .help = "Most changes of this entity written at once; 0 takes `apply.batch_size`."},
	{.path = "targets[].streams[].on_error", .kind = CW_KEY_ENUM, .offset = STR(on_error),
	 .default_text = "retry", .values = on_errors,
	 .help = "A change the target refuses, once `retry_policy` is spent (or at once for a "
	         "permanent error code): `retry` keeps retrying and the stream waits; `skip` "
	         "drops the change (logged and counted); `fail_stream` stops this stream, the "
	         "others go on; `dead_letter` sets it aside in `cachewarp.dead_letters` and "
	         "goes on. The default drops nothing."},
	GROUP("targets[].streams[].retry_policy",
	      "How a failed write of the stream is retried: exponential delays with jitter. "
	      "Each key left out takes the global `retry` setting."),
	{.path = "targets[].streams[].retry_policy.max_attempts", .kind = CW_KEY_INT,
	 .offset = STR(retry_policy.max_attempts), .default_text = "0", .min = 0, .max = 1000000,
	 .help = "Attempts before `on_error` decides; 0 retries until `retry.give_up_after` "
	         "has passed."},
	{.path = "targets[].streams[].retry_policy.initial_delay", .kind = CW_KEY_DURATION,
	 .offset = STR(retry_policy.initial_delay_ms), .default_doc = "`retry.initial`", .min = 1,
	 .max = 3600000, .help = "First delay."},
	{.path = "targets[].streams[].retry_policy.max_delay", .kind = CW_KEY_DURATION,
	 .offset = STR(retry_policy.max_delay_ms), .default_doc = "`retry.max`", .min = 1,
	 .max = DAY_MS, .help = "Longest delay; at least the stream's initial delay."},
	{.path = "targets[].streams[].retry_policy.backoff_multiplier", .kind = CW_KEY_FLOAT,
	 .offset = STR(retry_policy.backoff_multiplier), .default_doc = "`retry.multiplier`",
	 .fmin = 1.0, .fmax = 10.0, .help = "Each delay is the previous one times this."},
	{.path = "targets[].streams[].retry_policy.permanent_error_codes", .kind = CW_KEY_WORDS,
	 .offset = STR(retry_policy.permanent_error_codes), .default_doc = "none", .max_items = 32,
	 .check = cw_config_check_error_code,
	 .help = "Error codes no retry can fix: such an error goes to `on_error` at once. "
	         "SQLSTATEs for a postgres target (`23505` unique violation, `22P02` invalid "
	         "text), server error codes for a mongodb target (`11000` duplicate key); each 1 "
	         "to 15 letters and digits, at most 32: `[23505, 22P02]`."},

	LIST("transformations", cw_config_t, transformations, cw_transformation_config_t, 1000,
	     "Transformations (docs/streams.md): reshape each change of a stream on its way to "
	     "a target; the hub keeps the source's shape. Streams refer to one by `id`."),
	{.path = "transformations[].id", .kind = CW_KEY_STRING, .offset = TRF(id),
	 .flags = CW_KEY_REQUIRED, .check = cw_config_check_transformation_id,
	 .help = "Unique id (`[a-z][a-z0-9_-]*`, at most 63 characters) that streams' "
	         "`transformation_id` names."},
	{.path = "transformations[].name", .kind = CW_KEY_STRING, .offset = TRF(name),
	 .default_doc = "none", .check = check_label,
	 .help = "Human-readable name (1 to 200 characters)."},
	{.path = "transformations[].type", .kind = CW_KEY_ENUM, .offset = TRF(type),
	 .default_text = "kazaam", .values = transformation_types,
	 .help = "The engine: `kazaam`, kazaam's JSON spec format."},
	{.path = "transformations[].spec", .kind = CW_KEY_STRING, .offset = TRF(spec),
	 .flags = CW_KEY_REQUIRED, .check = cw_config_check_transformation_spec,
	 .help = "The engine's spec as JSON text, usually a YAML literal block: for "
	         "kazaam an array of operations, each an object with an `operation` string "
	         "(`shift`, `concat`, `coalesce`, `extract`, `default`, `delete`, `pass`, "
	         "`timestamp`, `uuid`) and its `spec` (docs/transformations.md). `config check` "
	         "compiles it: a spec the engine refuses is refused here."},
	GROUP("transformations[].error_handling", "What happens to a change the transformation "
	                                          "fails on."),
	{.path = "transformations[].error_handling.on_error", .kind = CW_KEY_ENUM,
	 .offset = TRF(on_error), .default_text = "dead_letter", .values = on_errors,
	 .help = "`dead_letter` sets the change aside in `cachewarp.dead_letters` (replayable "
	         "once the spec is fixed) and goes on; `skip` drops it (logged and counted); "
	         "`fail_stream` stops the stream; `retry` retries it on the stream's "
	         "`retry_policy`. A transformation fails the same way every time, so retrying "
	         "rarely helps: the default keeps the change and the stream going."},

	GROUP("api", "The REST API, health checks and metrics."),
	{.path = "api.listen", .kind = CW_KEY_STRING, .offset = CFG(api.listen),
	 .default_text = "127.0.0.1:8080", .check = check_listen,
	 .help = "Address to listen on, `HOST:PORT`; port 0 picks a free port."},
	{.path = "api.token", .kind = CW_KEY_SECRET, .offset = CFG(api.token),
	 .default_doc = "none",
	 .help = "Bearer token required by every API route but `/healthz`; unset: no authentication "
	         "(keep `listen` on a loopback address then)."},
	{.path = "api.max_body", .kind = CW_KEY_SIZE, .offset = CFG(api.max_body_bytes),
	 .default_text = "1MiB", .min = 1024, .max = INT64_C(1) << 30,
	 .help = "Largest request body accepted; larger requests get 413."},

	GROUP("log", "Logging to standard error."),
	{.path = "log.level", .kind = CW_KEY_ENUM, .offset = CFG(log.level), .default_text = "info",
	 .values = log_levels, .help = "Least severe level written."},
	{.path = "log.format", .kind = CW_KEY_ENUM, .offset = CFG(log.format),
	 .default_text = "auto", .values = log_formats,
	 .help = "`json`: one JSON object per line; `text`: readable lines; `auto`: text on a "
	         "terminal, json otherwise."},

	GROUP("capture", "Capturing sources into the hub."),
	{.path = "capture.batch_size", .kind = CW_KEY_INT, .offset = CFG(capture.batch_size),
	 .default_text = "5000", .min = 1, .max = 100000,
	 .help = "Most changes written to the hub in one transaction (and, in batch mode and a "
	         "MongoDB scan, read from the source at once). Fewer, larger hub transactions "
	         "cost the hub less per change; each batch is held in memory until committed."},
	{.path = "capture.flush_interval", .kind = CW_KEY_DURATION,
	 .offset = CFG(capture.flush_interval_ms), .default_text = "100ms", .min = 1,
	 .max = 60000, .help = "A partial batch is written after waiting this long (a PostgreSQL "
	         "source writes it sooner, once its stream has caught up with the server)."},
	{.path = "capture.queue_depth", .kind = CW_KEY_INT, .offset = CFG(capture.queue_depth),
	 .default_text = "2", .min = 1, .max = 1024,
	 .help = "Batches that may wait between a source and the oplog writer; when full the "
	         "source waits (backpressure). With the batch being written and the one being "
	         "filled, a source holds at most this plus two batches."},
	{.path = "capture.snapshot_batch_size", .kind = CW_KEY_INT,
	 .offset = CFG(capture.snapshot_batch_size), .default_text = "1000", .min = 1,
	 .max = 100000,
	 .help = "Most rows a PostgreSQL source's snapshot writes to the hub in one transaction "
	         "(read 1000 at a time; a batch also ends past 4 MiB of row data), apart from "
	         "the stream's capture.batch_size. Larger batches take fewer round trips per "
	         "row (a hub far away gains) and hold more memory."},

	GROUP("apply", "Applying the hub to targets."),
	{.path = "apply.batch_size", .kind = CW_KEY_INT, .offset = CFG(apply.batch_size),
	 .default_text = "1000", .min = 1, .max = 100000,
	 .help = "Most oplog rows read and applied in one target transaction."},
	{.path = "apply.poll_interval", .kind = CW_KEY_DURATION,
	 .offset = CFG(apply.poll_interval_ms), .default_text = "1s", .min = 10, .max = 3600000,
	 .help = "How often a caught-up consumer reads the oplog when no notification woke it."},

	GROUP("retry", "Reconnecting and retrying after failures: exponential backoff with jitter."),
	{.path = "retry.initial", .kind = CW_KEY_DURATION, .offset = CFG(retry.initial_ms),
	 .default_text = "100ms", .min = 1, .max = 3600000, .help = "First delay."},
	{.path = "retry.max", .kind = CW_KEY_DURATION, .offset = CFG(retry.max_ms),
	 .default_text = "30s", .min = 1, .max = DAY_MS,
	 .help = "Longest delay; at least `retry.initial`."},
	{.path = "retry.multiplier", .kind = CW_KEY_FLOAT, .offset = CFG(retry.multiplier),
	 .default_text = "2.0", .fmin = 1.0, .fmax = 10.0,
	 .help = "Each delay is the previous one times this."},
	{.path = "retry.give_up_after", .kind = CW_KEY_DURATION,
	 .offset = CFG(retry.give_up_after_ms), .default_text = "10m", .min = 0, .max = 30 * DAY_MS,
	 .help = "A component that has failed for this long gives up and reports an error; 0 "
	         "retries forever. Errors retrying cannot fix are not retried this long: refused "
	         "hub credentials stop `cachewarp run` at once (exit 1), and a PostgreSQL source "
	         "with refused credentials, a missing privilege or `wal_level` below logical is "
	         "marked `failed` and checked again every 30 s, logged once."},

	GROUP("verify", "Verify and repair (docs/verify.md): the scheduled health check."),
	{.path = "verify.interval", .kind = CW_KEY_DURATION, .offset = CFG(verify.interval_ms),
	 .default_text = "0", .min = 0, .max = 30 * DAY_MS,
	 .help = "Run verify over every entity and target this often (within `verify.window`); "
	         "0 turns the scheduled health check off."},
	{.path = "verify.window", .kind = CW_KEY_STRING, .offset = CFG(verify.window),
	 .default_doc = "any time", .check = check_window,
	 .help = "Local time of day the scheduled check may start in, `HH:MM-HH:MM` (e.g. "
	         "`02:00-05:00`, a low-traffic period); a window may pass midnight (`22:00-04:00`)."},
	{.path = "verify.repair", .kind = CW_KEY_ENUM, .offset = CFG(verify.repair),
	 .default_text = "false", .values = booleans,
	 .help = "Whether the scheduled check repairs what differs, as `cachewarp verify --repair`."},
	{.path = "verify.settle_timeout", .kind = CW_KEY_DURATION,
	 .offset = CFG(verify.settle_timeout_ms), .default_text = "60s", .min = 100, .max = DAY_MS,
	 .help = "How long verify's re-check waits for capture and a target to catch up before it "
	         "counts a difference anyway (the report then says `target_behind`)."},

	GROUP("config", "This file itself: reloading it while `cachewarp run` runs "
	      "(docs/operations.md#reloading-the-configuration)."),
	{.path = "config.watch", .kind = CW_KEY_ENUM, .offset = CFG(watch.enabled),
	 .default_text = "false", .values = booleans,
	 .help = "Reload the file when its content changes, as on `SIGHUP`: it is read every "
	         "`config.watch_interval` and compared with the content last seen (an editor that "
	         "writes a new file and renames it over this one is seen too)."},
	{.path = "config.watch_interval", .kind = CW_KEY_DURATION,
	 .offset = CFG(watch.interval_ms), .default_text = "2s", .min = 100, .max = DAY_MS,
	 .help = "How often `config.watch` reads the file."},

	LIST("authentication", cw_config_t, authentication, cw_auth_config_t, 256,
	     "Credentials kept out of the urls, referred to by `auth_id` from `hub`, sources and "
	     "targets. See docs/authentication.md."),
	{.path = "authentication[].id", .kind = CW_KEY_STRING, .offset = AUT(id),
	 .flags = CW_KEY_REQUIRED, .check = check_auth_id,
	 .help = "Unique id (`[a-z][a-z0-9_]*`) that `auth_id` refers to."},
	{.path = "authentication[].type", .kind = CW_KEY_ENUM, .offset = AUT(type),
	 .flags = CW_KEY_REQUIRED, .values = auth_types,
	 .help = "`username_password`, `certificate` (TLS client certificate) or `command` (a "
	         "command that prints a password or token)."},
	GROUP("authentication[].config", "The settings of the entry's type."),
	{.path = "authentication[].config.username", .kind = CW_KEY_STRING, .offset = AUT(username),
	 .default_doc = "the url's user", .check = check_not_empty,
	 .help = "User name to connect as; it replaces the url's. Required for "
	         "`username_password`."},
	{.path = "authentication[].config.password", .kind = CW_KEY_SECRET, .offset = AUT(password),
	 .applies_to = "username_password",
	 .help = "The password; give it or `password_file`, not both."},
	{.path = "authentication[].config.password_file", .kind = CW_KEY_STRING,
	 .offset = AUT(password_file), .applies_to = "username_password", .check = check_not_empty,
	 .help = "File whose content (without the final line break) is the password, read at "
	         "every connection; relative to the configuration file's directory."},
	{.path = "authentication[].config.cert_file", .kind = CW_KEY_STRING, .offset = AUT(cert_file),
	 .flags = CW_KEY_REQUIRED, .applies_to = "certificate", .check = check_not_empty,
	 .help = "PEM file of the client certificate."},
	{.path = "authentication[].config.key_file", .kind = CW_KEY_STRING, .offset = AUT(key_file),
	 .flags = CW_KEY_REQUIRED, .applies_to = "certificate", .check = check_not_empty,
	 .help = "PEM file of the client certificate's private key (mode 0600: libpq refuses a key "
	         "others can read)."},
	{.path = "authentication[].config.ca_file", .kind = CW_KEY_STRING, .offset = AUT(ca_file),
	 .flags = CW_KEY_REQUIRED, .applies_to = "certificate", .check = check_not_empty,
	 .help = "PEM file of the certificate authority the server's certificate must chain to; "
	         "the server's name is verified too (PostgreSQL `sslmode=verify-full`)."},
	{.path = "authentication[].config.key_password", .kind = CW_KEY_SECRET,
	 .offset = AUT(key_password), .default_doc = "none", .applies_to = "certificate",
	 .help = "Passphrase of an encrypted private key."},
	{.path = "authentication[].config.command", .kind = CW_KEY_STRING, .offset = AUT(command),
	 .flags = CW_KEY_REQUIRED, .applies_to = "command", .check = check_not_empty,
	 .help = "The command whose standard output (trimmed) is the password or token. Without "
	         "`shell` it is split into words (\"double\" and 'single' quotes group, no "
	         "other shell syntax) and run directly, the program found in `PATH`."},
	{.path = "authentication[].config.shell", .kind = CW_KEY_ENUM, .offset = AUT(shell),
	 .default_text = "false", .applies_to = "command", .values = booleans,
	 .help = "`true` runs `command` with `/bin/sh -c` (pipes, variables, `$(...)`)."},
	{.path = "authentication[].config.refresh", .kind = CW_KEY_DURATION,
	 .offset = AUT(refresh_ms), .default_text = "15m", .min = 1000, .max = DAY_MS,
	 .applies_to = "command",
	 .help = "The output is reused for new connections this long, then the command runs again "
	         "(keep it below the token's lifetime); a refused login runs it again at once."},
	{.path = "authentication[].config.timeout", .kind = CW_KEY_DURATION,
	 .offset = AUT(timeout_ms), .default_text = "30s", .min = 100, .max = 600000,
	 .applies_to = "command",
	 .help = "The command is killed after this long and the connection attempt fails."},
};

#define NKEYS (sizeof keys / sizeof keys[0])

const char *cw_source_type_name(cw_source_type_t type)
{
	return (size_t)type < 3 ? source_types[type] : "unknown";
}

const char *cw_target_type_name(cw_target_type_t type)
{
	return (size_t)type < 3 ? target_types[type] : "unknown";
}

const cw_config_key_t *cw_config_keys(size_t *nkeys)
{
	*nkeys = NKEYS;
	return keys;
}

const cw_config_key_t *cw_config_key_find(const char *pattern, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strlen(keys[i].path) == len && memcmp(keys[i].path, pattern, len) == 0)
			return &keys[i];
	}
	return NULL;
}

size_t cw_config_key_parent_len(const cw_config_key_t *key)
{
	const char *dot = strrchr(key->path, '.');
	return dot ? (size_t)(dot - key->path) : 0;
}

const char *cw_config_key_leaf(const cw_config_key_t *key)
{
	const char *dot = strrchr(key->path, '.');
	return dot ? dot + 1 : key->path;
}

void *cw_config_key_field(const cw_config_key_t *key, void *base)
{
	return (char *)base + key->offset;
}

bool cw_config_key_in_base(const cw_config_key_t *key, const char *scope)
{
	size_t len = strlen(scope);
	return strncmp(key->path, scope, len) == 0 && strstr(key->path + len, "[].") == NULL;
}

const char *cw_on_error_name(cw_on_error_t action)
{
	return (size_t)action < 4 ? on_errors[action] : "unknown";
}
