/* This file contains the entity validation and helpers declared in entity.h. */
#include "core/entity.h"

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "entity"
#define PATH_MAX_DEPTH 32
#define IDENTIFIER_HINT "use a-z, 0-9 and _, starting with a letter"
#define PATH_HINT "use A-Z, a-z, 0-9, _, $ and -, with . between segments"

static const char *const column_type_names[] = {
	[CW_COL_JSONB] = "jsonb",     [CW_COL_ANY] = "any",
	[CW_COL_BOOL] = "bool",       [CW_COL_NUMBER] = "number",
	[CW_COL_INTEGER] = "integer", [CW_COL_TEXT] = "text",
};
#define COLUMN_TYPE_COUNT (sizeof column_type_names / sizeof column_type_names[0])

static const char *const status_names[] = {
	[CW_ENTITY_PENDING] = "pending", [CW_ENTITY_SCANNING] = "scanning",
	[CW_ENTITY_LIVE] = "live",       [CW_ENTITY_DELETED] = "deleted",
};
#define STATUS_COUNT (sizeof status_names / sizeof status_names[0])

/*
 * Quotes untrusted text for a message: at most 64 characters, with '"', '\'
 * and bytes outside printable ASCII escaped, so a hostile name cannot forge
 * or garble a log line.
 */
static const char *quoted(const char *text, char out[300])
{
	size_t len = strlen(text);
	size_t n = 0;
	out[n++] = '"';
	for (size_t i = 0; i < len && i < 64; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '"' || c == '\\')
			n += (size_t)sprintf(out + n, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			n += (size_t)sprintf(out + n, "\\x%02x", c);
		else
			out[n++] = (char)c;
	}
	if (len > 64)
		n += (size_t)sprintf(out + n, "...");
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

/* Describes one byte for a message: 'x', or byte 0x0a when unprintable. */
static const char *describe_char(unsigned char c, char out[24])
{
	if (c == '\'')
		snprintf(out, 24, "character \"'\"");
	else if (c > 0x20 && c < 0x7f)
		snprintf(out, 24, "character '%c'", c);
	else if (c == ' ')
		snprintf(out, 24, "a space");
	else
		snprintf(out, 24, "byte 0x%02x", c);
	return out;
}

int cw_identifier_validate(const char *what, const char *name, cw_err_t *err)
{
	char q[300], ch[24];
	if (name == NULL || name[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s is empty (%s)", what,
		                  IDENTIFIER_HINT);
	size_t len = strlen(name);
	if (len > CW_ENTITY_NAME_MAX)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "%s %s is invalid: it is %zu characters long, the limit is %d",
		                  what, quoted(name, q), len, CW_ENTITY_NAME_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		bool lower = c >= 'a' && c <= 'z';
		if (lower || (i > 0 && ((c >= '0' && c <= '9') || c == '_')))
			continue;
		if (c >= 'A' && c <= 'Z')
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "%s %s is invalid: upper-case letters are not allowed "
			                  "(%s at position %zu); %s",
			                  what, quoted(name, q), describe_char(c, ch), i + 1,
			                  IDENTIFIER_HINT);
		if (i == 0 && ((c >= '0' && c <= '9') || c == '_'))
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "%s %s is invalid: it must start with a letter a-z, not "
			                  "'%c' (%s)",
			                  what, quoted(name, q), c, IDENTIFIER_HINT);
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "%s %s is invalid: %s at position %zu is not allowed (%s)",
		                  what, quoted(name, q), describe_char(c, ch), i + 1,
		                  IDENTIFIER_HINT);
	}
	return 0;
}

int cw_entity_name_validate(const char *name, cw_err_t *err)
{
	return cw_identifier_validate("entity name", name, err);
}

int cw_collection_name_validate(const char *name, cw_err_t *err)
{
	char q[300], ch[24];
	size_t len = name != NULL ? strlen(name) : 0;
	if (len == 0 || len > 120)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "collection name %s is invalid: it has 1 to "
		                  "120 characters", quoted(name != NULL ? name : "", q));
	if (strncmp(name, "system.", 7) == 0 || strncmp(name, "_cachewarp", 10) == 0)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "collection name %s is invalid: names "
		                  "starting with \"system.\" or \"_cachewarp\" are reserved", quoted(name, q));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		               (c >= '0' && c <= '9') || c == '_' || (i > 0 && (c == '.' || c == '-'));
		if (!allowed)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "collection name %s is invalid: %s at "
			                  "position %zu is not allowed (letters, digits, _ . -)",
			                  quoted(name, q), describe_char(c, ch), i + 1);
	}
	return 0;
}

int cw_path_validate(const char *path, cw_err_t *err)
{
	char q[300], ch[24];
	if (path == NULL || path[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "path is empty (%s)", PATH_HINT);
	size_t segments = 1;
	size_t segment_len = 0;
	for (size_t i = 0;; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c == '.' || c == '\0') {
			if (segment_len == 0)
				return cw_err_set(err, CW_EINVAL, DOMAIN,
				                  "path %s is invalid: segment %zu is empty (%s)",
				                  quoted(path, q), segments, PATH_HINT);
			if (c == '\0')
				break;
			if (++segments > PATH_MAX_DEPTH)
				return cw_err_set(err, CW_EINVAL, DOMAIN,
				                  "path %s is invalid: it has more than %d segments",
				                  quoted(path, q), PATH_MAX_DEPTH);
			segment_len = 0;
			continue;
		}
		bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		               (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '-';
		if (!allowed)
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "path %s is invalid: %s at position %zu is not allowed (%s)",
			                  quoted(path, q), describe_char(c, ch), i + 1, PATH_HINT);
		segment_len++;
	}
	return 0;
}

const char *cw_column_type_name(cw_column_type_t type)
{
	if ((size_t)type >= COLUMN_TYPE_COUNT)
		return "unknown";
	return column_type_names[type];
}

int cw_column_type_parse(const char *name, cw_column_type_t *type, cw_err_t *err)
{
	char q[300];
	for (size_t i = 0; name != NULL && i < COLUMN_TYPE_COUNT; i++) {
		if (strcmp(name, column_type_names[i]) == 0) {
			*type = (cw_column_type_t)i;
			return 0;
		}
	}
	return cw_err_set(err, CW_EINVAL, DOMAIN,
	                  "unknown column type %s (use jsonb, any, bool, number, integer or "
	                  "text)",
	                  quoted(name ? name : "", q));
}

const char *cw_entity_status_name(cw_entity_status_t status)
{
	if ((size_t)status >= STATUS_COUNT)
		return "unknown";
	return status_names[status];
}

int cw_entity_status_parse(const char *name, cw_entity_status_t *status, cw_err_t *err)
{
	char q[300];
	for (size_t i = 0; name != NULL && i < STATUS_COUNT; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*status = (cw_entity_status_t)i;
			return 0;
		}
	}
	return cw_err_set(err, CW_EINVAL, DOMAIN,
	                  "unknown entity status %s (use pending, scanning, live or deleted)",
	                  quoted(name ? name : "", q));
}

bool cw_entity_is_paused(const cw_entity_t *entity)
{
	return entity->paused_reason != NULL && entity->status != CW_ENTITY_DELETED;
}

const char *cw_entity_shown_status(const cw_entity_t *entity)
{
	return cw_entity_is_paused(entity) ? "paused" : cw_entity_status_name(entity->status);
}

const char *cw_entity_origin_name(cw_entity_origin_t origin)
{
	switch (origin) {
	case CW_ENTITY_ORIGIN_FILE: return "file";
	case CW_ENTITY_ORIGIN_API: return "api";
	case CW_ENTITY_ORIGIN_UNKNOWN: break;
	}
	return NULL;
}

cw_entity_origin_t cw_entity_origin_parse(const char *name)
{
	if (name != NULL && strcmp(name, "file") == 0)
		return CW_ENTITY_ORIGIN_FILE;
	if (name != NULL && strcmp(name, "api") == 0)
		return CW_ENTITY_ORIGIN_API;
	return CW_ENTITY_ORIGIN_UNKNOWN;
}

bool cw_entity_is_captured(const cw_entity_t *entity)
{
	return entity->status != CW_ENTITY_DELETED && entity->paused_reason == NULL;
}

bool cw_column_name_reserved(const char *name, size_t len)
{
	static const char *const reserved[] = {"id", "_version", "_oplog_id", "_extra"};
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strlen(reserved[i]) == len && memcmp(name, reserved[i], len) == 0)
			return true;
	return false;
}

/* Why a column name is reserved, or NULL when it is not. */
static const char *reserved_reason(const char *name)
{
	if (strcmp(name, "id") == 0)
		return "every cache table keeps the document id in its \"id\" column";
	if (strcmp(name, "_version") == 0)
		return "cachewarp keeps each row's capture generation in \"_version\"";
	if (strcmp(name, "_oplog_id") == 0)
		return "cachewarp keeps the oplog id of each row's last change in \"_oplog_id\"";
	return NULL;
}

/*
 * Reads one part of a table name at *p into out (CW_TABLE_PART_MAX + 1
 * bytes) and moves *p past it. what: "schema name" or "table name".
 */
static int table_part(const char **p, const char *what, char out[CW_TABLE_PART_MAX + 1],
                      cw_err_t *err)
{
	char ch[24];
	const char *at = *p;
	size_t len = 0;
	if (*at != '"') {
		size_t n = strcspn(at, ".");
		char *part = cw_xstrndup(at, n);
		int rc = cw_identifier_validate(what, part, err);
		if (rc != 0 && strpbrk(part, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL)
			cw_err_set(err, CW_EINVAL, DOMAIN,
			           "%s \"%.64s\" has upper-case letters: PostgreSQL folds unquoted names "
			           "to lower case, so write it in double quotes (\"%.64s\") for the "
			           "name as created, or in lower case", what, part, part);
		free(part);
		if (rc != 0)
			return rc;
		memcpy(out, at, n);   /* valid identifiers are at most CW_ENTITY_NAME_MAX long */
		out[n] = '\0';
		*p = at + n;
		return 0;
	}
	for (at++;; at++) {
		unsigned char c = (unsigned char)*at;
		if (c == '\0')
			return cw_err_set(err, CW_EINVAL, DOMAIN, "%s: the closing '\"' is missing", what);
		if (c == '"' && at[1] != '"')
			break;
		if (c == '"')
			at++;   /* "" is one '"' */
		else if (c < 0x20 || c == 0x7f)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "%s: %s is not allowed in a name",
			                  what, describe_char(c, ch));
		if (len == CW_TABLE_PART_MAX)
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "%s: longer than %d bytes, PostgreSQL's limit", what,
			                  CW_TABLE_PART_MAX);
		out[len++] = (char)c;
	}
	if (len == 0)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s: \"\" is empty", what);
	out[len] = '\0';
	*p = at + 1;
	return 0;
}

/* Whether table has a '.' outside double quotes, that is, names its schema. */
static bool names_schema(const char *table)
{
	bool in_quotes = false;
	for (const char *p = table; *p != '\0'; p++) {
		if (*p == '"')
			in_quotes = !in_quotes;   /* "" inside quotes toggles twice */
		else if (*p == '.' && !in_quotes)
			return true;
	}
	return false;
}

int cw_entity_table_parse(const char *table, char schema[CW_TABLE_PART_MAX + 1],
                          char name[CW_TABLE_PART_MAX + 1], cw_err_t *err)
{
	char q[300], ch[24];
	const char *p = table ? table : "";
	int rc = table_part(&p, names_schema(p) ? "schema name" : "table name", name, err);
	if (rc == 0 && *p == '.') {
		memcpy(schema, name, strlen(name) + 1);
		p++;
		rc = table_part(&p, "table name", name, err);
	} else if (rc == 0) {
		snprintf(schema, CW_TABLE_PART_MAX + 1, "public");
	}
	if (rc == 0 && *p != '\0')
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "unexpected %s after the table name",
		                describe_char((unsigned char)*p, ch));
	if (rc != 0)
		cw_err_prefix(err, "table %s must be \"schema.table\" or \"table\", each part a "
		              "lower-case name or a double-quoted one", quoted(table ? table : "", q));
	return rc;
}

static int validate_table(const cw_entity_t *entity, cw_err_t *err)
{
	char schema[CW_TABLE_PART_MAX + 1], name[CW_TABLE_PART_MAX + 1];
	int rc = cw_entity_table_parse(entity->table, schema, name, err);
	if (rc != 0)
		cw_err_prefix(err, "entity \"%s\"", entity->name);
	return rc;
}

/* Names the faulty key of an entity ("table", "columns[2].path") in key (cap bytes, may be NULL). */
static void name_key(char *key, size_t cap, const char *fmt, size_t index)
{
	if (key != NULL)
		snprintf(key, cap, fmt, index);
}

static int validate_column(const cw_entity_t *entity, size_t index, char *key, size_t cap,
                           cw_err_t *err)
{
	const cw_column_t *column = &entity->columns[index];
	const char *reason = column->name ? reserved_reason(column->name) : NULL;
	name_key(key, cap, "columns[%zu].name", index);
	if (reason != NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "entity \"%s\": column name \"%s\" is reserved: %s (pick "
		                  "another name; id, _version and _oplog_id are reserved)",
		                  entity->name, column->name, reason);
	int rc = cw_identifier_validate("column name", column->name, err);
	if (rc == 0 && (size_t)column->type >= COLUMN_TYPE_COUNT) {
		name_key(key, cap, "columns[%zu].type", index);
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "column \"%s\" has an unknown type %d",
		                column->name, (int)column->type);
	}
	if (rc == 0 && (rc = cw_path_validate(column->path, err)) != 0) {
		name_key(key, cap, "columns[%zu].path", index);
		cw_err_prefix(err, "column \"%s\"", column->name);
	}
	for (size_t j = 0; rc == 0 && j < index; j++) {
		if (strcmp(entity->columns[j].name, column->name) == 0) {
			name_key(key, cap, "columns[%zu].name", index);
			rc = cw_err_set(err, CW_EINVAL, DOMAIN,
			                "column \"%s\" appears twice (columns %zu and %zu)",
			                column->name, j + 1, index + 1);
		}
	}
	if (rc != 0)
		cw_err_prefix(err, "entity \"%s\"", entity->name);
	return rc;
}

int cw_entity_validate_key(const cw_entity_t *entity, char *key, size_t cap, cw_err_t *err)
{
	char q[300];
	name_key(key, cap, "name", 0);
	int rc = cw_entity_name_validate(entity->name, err);
	if (rc != 0)
		return rc;
	name_key(key, cap, "source", 0);
	if (entity->source == NULL || entity->source[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "entity \"%s\" has no source",
		                  entity->name);
	name_key(key, cap, entity->table != NULL ? "table" : "collection", 0);
	if ((entity->collection == NULL) == (entity->table == NULL))
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "entity \"%s\" needs exactly one of collection (MongoDB) or "
		                  "table (PostgreSQL)",
		                  entity->name);
	if (entity->collection != NULL &&
	    (entity->collection[0] == '\0' || strchr(entity->collection, '$') != NULL))
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "entity \"%s\": collection name %s is invalid: it must be "
		                  "non-empty and hold no '$'",
		                  entity->name, quoted(entity->collection, q));
	if (entity->table != NULL && (rc = validate_table(entity, err)) != 0)
		return rc;
	name_key(key, cap, "columns", 0);
	if (entity->ncolumns > 0 && entity->columns == NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "entity \"%s\" has no column array",
		                  entity->name);
	for (size_t i = 0; i < entity->ncolumns; i++) {
		if ((rc = validate_column(entity, i, key, cap, err)) != 0)
			return rc;
	}
	name_key(key, cap, "", 0);
	return 0;
}

int cw_entity_validate(const cw_entity_t *entity, cw_err_t *err)
{
	return cw_entity_validate_key(entity, NULL, 0, err);
}

static bool same_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool cw_entity_shape_equal(const cw_entity_t *a, const cw_entity_t *b)
{
	if (!same_text(a->source, b->source) || !same_text(a->collection, b->collection) ||
	    !same_text(a->table, b->table) || a->ncolumns != b->ncolumns)
		return false;
	for (size_t i = 0; i < a->ncolumns; i++) {
		const cw_column_t *x = &a->columns[i];
		const cw_column_t *y = &b->columns[i];
		if (x->type != y->type || !same_text(x->name, y->name) ||
		    !same_text(x->path, y->path))
			return false;
	}
	return true;
}

char *cw_entity_columns_json(const cw_entity_t *entity)
{
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_NO_NUL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < entity->ncolumns; i++) {
		const cw_column_t *column = &entity->columns[i];
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "name", NULL);
		cw_json_string(&w, column->name ? column->name : "", NULL);
		cw_json_key(&w, "type", NULL);
		cw_json_string(&w, cw_column_type_name(column->type), NULL);
		cw_json_key(&w, "path", NULL);
		cw_json_string(&w, column->path ? column->path : "", NULL);
		cw_json_object_end(&w, NULL);
	}
	cw_json_array_end(&w, NULL);
	if (cw_json_finish(&w) != 0) {
		/* Only an entity that never passed validation gets here. */
		cw_buf_free(&buf);
		return NULL;
	}
	return cw_buf_take(&buf);
}

static void free_columns(cw_column_t *columns, size_t ncolumns)
{
	for (size_t i = 0; i < ncolumns; i++) {
		free(columns[i].name);
		free(columns[i].path);
	}
	free(columns);
}

/* Reads one string member of a column object; "what" names it in errors. */
static int column_member(json_t *item, size_t index, const char *key, const char **out,
                         cw_err_t *err)
{
	json_t *value = json_object_get(item, key);
	if (value == NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "columns: item %zu has no \"%s\"",
		                  index + 1, key);
	if (!json_is_string(value))
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "columns: item %zu: \"%s\" must be a string", index + 1, key);
	*out = json_string_value(value);
	return 0;
}

static int parse_column(json_t *item, size_t index, cw_column_t *column, cw_err_t *err)
{
	const char *name, *type, *path, *key;
	json_t *value;
	if (!json_is_object(item))
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "columns: item %zu must be an object {name, type, path}",
		                  index + 1);
	json_object_foreach(item, key, value) {
		if (strcmp(key, "name") != 0 && strcmp(key, "type") != 0 &&
		    strcmp(key, "path") != 0)
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "columns: item %zu has an unknown key \"%s\" (use name, "
			                  "type and path)",
			                  index + 1, key);
	}
	int rc;
	if ((rc = column_member(item, index, "name", &name, err)) != 0 ||
	    (rc = column_member(item, index, "type", &type, err)) != 0 ||
	    (rc = column_member(item, index, "path", &path, err)) != 0)
		return rc;
	if ((rc = cw_column_type_parse(type, &column->type, err)) != 0) {
		cw_err_prefix(err, "columns: item %zu", index + 1);
		return rc;
	}
	column->name = cw_xstrdup(name);
	column->path = cw_xstrdup(path);
	return 0;
}

int cw_entity_columns_from_json(cw_entity_t *entity, const char *json, cw_err_t *err)
{
	json_error_t jerr;
	cw_column_t *columns = NULL;
	size_t ncolumns = 0;
	int rc = 0;
	json_t *root = json_loads(json, JSON_DECODE_ANY, &jerr);
	if (root == NULL) {
		rc = cw_err_set(err, CW_EINVAL, DOMAIN,
		                "columns are not valid JSON: %s (line %d, column %d)", jerr.text,
		                jerr.line, jerr.column);
		goto cleanup;
	}
	if (!json_is_array(root)) {
		rc = cw_err_set(err, CW_EINVAL, DOMAIN,
		                "columns must be a JSON array of {name, type, path}");
		goto cleanup;
	}
	columns = cw_xcalloc(json_array_size(root), sizeof *columns);
	for (; ncolumns < json_array_size(root); ncolumns++) {
		rc = parse_column(json_array_get(root, ncolumns), ncolumns, &columns[ncolumns],
		                  err);
		if (rc != 0)
			goto cleanup;
	}
	free_columns(entity->columns, entity->ncolumns);
	entity->columns = columns;
	entity->ncolumns = ncolumns;
	columns = NULL;
cleanup:
	if (columns != NULL)
		free_columns(columns, ncolumns);
	json_decref(root);
	return rc;
}

void cw_entity_copy(cw_entity_t *dst, const cw_entity_t *src)
{
	dst->name = cw_xstrdup(src->name);
	dst->source = cw_xstrdup(src->source);
	dst->collection = cw_xstrdup(src->collection);
	dst->table = cw_xstrdup(src->table);
	dst->ncolumns = src->ncolumns;
	dst->columns = NULL;
	if (src->ncolumns > 0) {
		dst->columns = cw_xcalloc(src->ncolumns, sizeof *dst->columns);
		for (size_t i = 0; i < src->ncolumns; i++) {
			dst->columns[i].name = cw_xstrdup(src->columns[i].name);
			dst->columns[i].type = src->columns[i].type;
			dst->columns[i].path = cw_xstrdup(src->columns[i].path);
		}
	}
	dst->status = src->status;
	dst->version = src->version;
	dst->origin = src->origin;
	dst->paused_reason = cw_xstrdup(src->paused_reason);
	dst->paused_at_us = src->paused_at_us;
}

void cw_entity_clear(cw_entity_t *entity)
{
	if (entity == NULL)
		return;
	free(entity->name);
	free(entity->source);
	free(entity->collection);
	free(entity->table);
	free_columns(entity->columns, entity->ncolumns);
	free(entity->paused_reason);
	memset(entity, 0, sizeof *entity);
}

int64_t cw_entity_poll_ms(const cw_entity_t *entity)
{
	return entity->batch.polling_interval_ms > 0 ? entity->batch.polling_interval_ms : 60000;
}
