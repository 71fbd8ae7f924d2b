/*
 * This file contains the PostgreSQL source's view of its tables' columns
 * (postgres_internal.h). A scan records the columns it read (attribute
 * number, name, type, default) in the hub; while streaming, the source
 * compares each live entity's table with that record every few seconds. A
 * column added, dropped, renamed or changed in type is logged with the DDL
 * it amounts to, and the entity starts a new generation: the table is
 * scanned again, so existing rows get an added column's default, and the
 * targets drop what the table no longer has once the generation's sweep is
 * applied. A changed default alone changes no row: it is logged only.
 * docs/sources-postgres.md, "Schema changes", is the user's view.
 */
#include "capture/postgres_internal.h"

#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"
#include "hub/table_record.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One column of a table as the catalog describes it. */
typedef struct column {
	long attnum;
	char *name;
	char *type;
	char *def;               /* the default's expression, or NULL */
} column_t;

typedef struct table_columns {
	column_t *items;
	size_t len;
} table_columns_t;

/* The record of one entity's columns, as its current generation's scan saw them. */
struct pg_schema {
	char *entity;
	int64_t version;
	table_columns_t columns;
};

/* Columns of the table $1 (a quoted, qualified name); none when it does not exist. */
#define COLUMNS_SQL \
	"SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), " \
	"pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a " \
	"LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum " \
	"WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped " \
	"ORDER BY a.attnum"

static void columns_clear(table_columns_t *cols)
{
	for (size_t i = 0; i < cols->len; i++) {
		free(cols->items[i].name);
		free(cols->items[i].type);
		free(cols->items[i].def);
	}
	free(cols->items);
	cols->items = NULL;
	cols->len = 0;
}

static void columns_push(table_columns_t *cols, long attnum, const char *name, const char *type,
                         const char *def)
{
	cols->items = cw_xrealloc(cols->items, (cols->len + 1) * sizeof *cols->items);
	column_t *c = &cols->items[cols->len++];
	c->attnum = attnum;
	c->name = cw_xstrdup(name);
	c->type = cw_xstrdup(type);
	c->def = def != NULL ? cw_xstrdup(def) : NULL;
}

static char *qualified_name(const pg_entity_t *ent)
{
	cw_buf_t name = CW_BUF_INIT;
	pg_quote_table(&name, ent->nspname, ent->relname);
	return cw_buf_take(&name);
}

/* Reads ent's table's columns on conn into cols (emptied first). */
static int read_columns(PGconn *conn, const pg_entity_t *ent, table_columns_t *cols,
                        cw_err_t *err)
{
	columns_clear(cols);
	char *name = qualified_name(ent);
	const char *params[] = {name};
	PGresult *res = PQexecParams(conn, COLUMNS_SQL, 1, NULL, params, NULL, NULL, 0);
	free(name);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char what[200];
		snprintf(what, sizeof what, "could not read the columns of table %s of entity \"%s\"",
		         ent->entity.table, ent->entity.name);
		int rc = pg_result_error(conn, res, what, err);
		PQclear(res);
		return rc;
	}
	for (int r = 0; r < PQntuples(res); r++)
		columns_push(cols, strtol(PQgetvalue(res, r, 0), NULL, 10), PQgetvalue(res, r, 1),
		             PQgetvalue(res, r, 2), PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3));
	PQclear(res);
	return 0;
}

/* The record as JSON: [[attnum, name, type, default or null], ...]. */
static char *columns_json(const table_columns_t *cols)
{
	cw_buf_t json = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &json, CW_JSON_NO_NUL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < cols->len; i++) {
		const column_t *c = &cols->items[i];
		cw_json_array_begin(&w, NULL);
		cw_json_int64(&w, c->attnum, NULL);
		cw_json_string(&w, c->name, NULL);
		cw_json_string(&w, c->type, NULL);
		if (c->def != NULL)
			cw_json_string(&w, c->def, NULL);
		else
			cw_json_null(&w, NULL);
		cw_json_array_end(&w, NULL);
	}
	cw_json_array_end(&w, NULL);
	if (cw_json_finish(&w) != 0) {
		cw_buf_free(&json);
		return NULL;
	}
	return cw_buf_take(&json);
}

static void columns_from_json(const char *text, table_columns_t *cols)
{
	json_t *all = json_loads(text, 0, NULL);
	for (size_t i = 0; json_is_array(all) && i < json_array_size(all); i++) {
		json_t *c = json_array_get(all, i);
		if (json_is_integer(json_array_get(c, 0)) && json_is_string(json_array_get(c, 1)) &&
		    json_is_string(json_array_get(c, 2)))
			columns_push(cols, (long)json_integer_value(json_array_get(c, 0)),
			             json_string_value(json_array_get(c, 1)),
			             json_string_value(json_array_get(c, 2)),
			             json_string_value(json_array_get(c, 3)));
	}
	json_decref(all);
}

static int store_record(cw_pg_source_t *src, const pg_entity_t *ent, const table_columns_t *cols,
                        cw_err_t *err)
{
	char *json = columns_json(cols);
	if (json == NULL)
		return 0;   /* a name that is not UTF-8 cannot be recorded; nothing is compared */
	char *key = cw_xasprintf("table_schema:%s", ent->entity.name);
	int rc = cw_metadata_set(src->hub, key, json, err);
	free(key);
	free(json);
	return rc;
}

/* The table's key columns in key order: its primary key, else its replica identity index. */
#define KEY_SQL \
	"SELECT a.attname, i.indexrelid FROM pg_index i " \
	"CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) " \
	"JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum " \
	"WHERE i.indrelid = to_regclass($1) AND (i.indisprimary OR i.indisreplident) " \
	"ORDER BY i.indisprimary DESC, i.indexrelid, k.ord"

/*
 * Records "table_types:<entity>" for the targets that create typed tables
 * (apply/postgres_target.c): {"columns": [[name, type], ...], "key": [name,
 * ...]} with each type as format_type() prints it and the key in key order.
 */
static int record_types(cw_pg_source_t *src, PGconn *conn, const pg_entity_t *ent,
                        const table_columns_t *cols, cw_err_t *err)
{
	char *name = qualified_name(ent);
	const char *params[] = {name};
	PGresult *res = PQexecParams(conn, KEY_SQL, 1, NULL, params, NULL, NULL, 0);
	free(name);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int rc = pg_result_error(conn, res, "could not read a table's key", err);
		PQclear(res);
		return rc;
	}
	cw_buf_t json = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &json, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "columns", NULL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < cols->len; i++) {
		cw_json_array_begin(&w, NULL);
		cw_json_string(&w, cols->items[i].name, NULL);
		cw_json_string(&w, cols->items[i].type, NULL);
		cw_json_array_end(&w, NULL);
	}
	cw_json_array_end(&w, NULL);
	cw_json_key(&w, "key", NULL);
	cw_json_array_begin(&w, NULL);
	/* Only the first index's columns: the primary key sorts first. */
	for (int r = 0; r < PQntuples(res); r++) {
		if (strcmp(PQgetvalue(res, r, 1), PQgetvalue(res, 0, 1)) != 0)
			break;
		cw_json_string(&w, PQgetvalue(res, r, 0), NULL);
	}
	cw_json_array_end(&w, NULL);
	cw_json_object_end(&w, NULL);
	PQclear(res);
	int rc = 0;
	char *key = cw_table_record_key(ent->entity.name);
	if (cw_json_finish(&w) == 0)   /* a name that is not UTF-8 cannot be recorded */
		rc = cw_metadata_set(src->hub, key, cw_buf_cstr(&json), err);
	free(key);
	cw_buf_free(&json);
	return rc;
}

int pg_schema_record(cw_pg_source_t *src, PGconn *conn, const pg_entity_t *ent, cw_err_t *err)
{
	table_columns_t cols = {0};
	int rc = read_columns(conn, ent, &cols, err);
	if (rc == 0)
		rc = store_record(src, ent, &cols, err);
	/* The targets' column order: names in table order (entities without columns). */
	if (rc == 0 && ent->entity.ncolumns == 0) {
		cw_buf_t json = CW_BUF_INIT;
		cw_json_t w;
		cw_json_init(&w, &json, CW_JSON_NO_NUL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < cols.len; i++)
			cw_json_string(&w, cols.items[i].name, NULL);
		cw_json_array_end(&w, NULL);
		char *key = cw_xasprintf("table_columns:%s", ent->entity.name);
		if (cw_json_finish(&w) == 0)
			rc = cw_metadata_set(src->hub, key, cw_buf_cstr(&json), err);
		free(key);
		cw_buf_free(&json);
		if (rc == 0)
			rc = record_types(src, conn, ent, &cols, err);
	}
	columns_clear(&cols);
	return rc;
}

/* ---- comparing ----------------------------------------------------------- */

static const column_t *by_attnum(const table_columns_t *cols, long attnum)
{
	for (size_t i = 0; i < cols->len; i++)
		if (cols->items[i].attnum == attnum)
			return &cols->items[i];
	return NULL;
}

static bool same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Starts the next clause of ddl. */
static void clause(cw_buf_t *ddl)
{
	if (ddl->len > 0)
		cw_buf_append_str(ddl, ", ");
}

/* How a table's columns changed since its record. */
enum { SCHEMA_SAME, SCHEMA_DEFAULTS, SCHEMA_ROWS };

/*
 * Describes how now differs from was as the DDL it amounts to; SCHEMA_ROWS
 * when rows change (a column added, dropped, renamed or retyped),
 * SCHEMA_DEFAULTS when only defaults did.
 */
static int describe_change(const table_columns_t *was, const table_columns_t *now, cw_buf_t *ddl)
{
	int kind = SCHEMA_SAME;
	for (size_t i = 0; i < was->len; i++) {
		const column_t *old = &was->items[i];
		const column_t *cur = by_attnum(now, old->attnum);
		if (cur == NULL) {
			clause(ddl);
			cw_buf_appendf(ddl, "DROP COLUMN \"%s\"", old->name);
			kind = SCHEMA_ROWS;
			continue;
		}
		if (strcmp(old->name, cur->name) != 0) {
			clause(ddl);
			cw_buf_appendf(ddl, "RENAME COLUMN \"%s\" TO \"%s\"", old->name, cur->name);
			kind = SCHEMA_ROWS;
		}
		if (strcmp(old->type, cur->type) != 0) {
			clause(ddl);
			cw_buf_appendf(ddl, "ALTER COLUMN \"%s\" TYPE %s", cur->name, cur->type);
			kind = SCHEMA_ROWS;
		}
		if (!same_text(old->def, cur->def)) {
			clause(ddl);
			if (cur->def != NULL)
				cw_buf_appendf(ddl, "ALTER COLUMN \"%s\" SET DEFAULT %s", cur->name, cur->def);
			else
				cw_buf_appendf(ddl, "ALTER COLUMN \"%s\" DROP DEFAULT", cur->name);
			if (kind == SCHEMA_SAME)
				kind = SCHEMA_DEFAULTS;
		}
	}
	for (size_t i = 0; i < now->len; i++) {
		const column_t *cur = &now->items[i];
		if (by_attnum(was, cur->attnum) != NULL)
			continue;
		clause(ddl);
		cw_buf_appendf(ddl, "ADD COLUMN \"%s\" %s", cur->name, cur->type);
		if (cur->def != NULL)
			cw_buf_appendf(ddl, " DEFAULT %s", cur->def);
		kind = SCHEMA_ROWS;
	}
	return kind;
}

/* The record of ent's current generation: from memory, else from the hub (NULL: none). */
static struct pg_schema *record_of(cw_pg_source_t *src, const pg_entity_t *ent, cw_err_t *err,
                                   int *rc)
{
	*rc = 0;
	struct pg_schema *rec = NULL;
	for (size_t i = 0; i < src->nschemas && rec == NULL; i++)
		if (strcmp(src->schemas[i].entity, ent->entity.name) == 0)
			rec = &src->schemas[i];
	if (rec != NULL && rec->version == ent->entity.version)
		return rec;
	char *key = cw_xasprintf("table_schema:%s", ent->entity.name), *json = NULL;
	*rc = cw_metadata_get(src->hub, key, &json, err);
	free(key);
	if (*rc == CW_ENOTFOUND)
		*rc = 0;
	if (*rc != 0 || json == NULL) {
		free(json);
		return NULL;
	}
	if (rec == NULL) {
		src->schemas = cw_xrealloc(src->schemas, (src->nschemas + 1) * sizeof *src->schemas);
		rec = &src->schemas[src->nschemas++];
		memset(rec, 0, sizeof *rec);
		rec->entity = cw_xstrdup(ent->entity.name);
	}
	rec->version = ent->entity.version;
	columns_clear(&rec->columns);
	columns_from_json(json, &rec->columns);
	free(json);
	return rec;
}

/* Starts a new generation of ent: scanned by the next reload of the entity set. */
static int refresh(cw_pg_source_t *src, const pg_entity_t *ent, cw_err_t *err)
{
	int rc = cw_entity_store_bump_version(src->hub, ent->entity.name, NULL, err);
	if (rc == 0)
		rc = cw_entity_store_set_status(src->hub, ent->entity.name, CW_ENTITY_PENDING, err);
	cw_entity_registry_invalidate(src->ctx->registry);
	return rc;
}

int pg_schema_check(cw_pg_source_t *src, cw_err_t *err)
{
	int rc = 0;
	table_columns_t now = {0};
	for (size_t i = 0; i < src->nents && rc == 0; i++) {
		const pg_entity_t *ent = &src->ents[i];
		if (ent->entity.status != CW_ENTITY_LIVE)
			continue;
		struct pg_schema *rec = record_of(src, ent, err, &rc);
		if (rc != 0 || (rec != NULL && rec->columns.len == 0))
			continue;
		if ((rc = read_columns(src->sql, ent, &now, err)) != 0 || now.len == 0)
			continue;   /* a table gone is not a column change */
		if (rec == NULL) {   /* scanned before columns were recorded: start from now */
			rc = store_record(src, ent, &now, err);
			continue;
		}
		cw_buf_t ddl = CW_BUF_INIT;
		int kind = describe_change(&rec->columns, &now, &ddl);
		if (kind != SCHEMA_SAME)
			cw_log_kv(CW_LOG_INFO, PG_COMPONENT,
			          kind == SCHEMA_ROWS ? "table columns changed: entity scanned again"
			                                 : "column default changed: existing rows keep "
			                                   "their values",
			          "source", src->cfg->name, "entity", ent->entity.name, "table",
			          ent->entity.table, "ddl", cw_buf_cstr(&ddl), NULL);
		cw_buf_free(&ddl);
		if (kind == SCHEMA_ROWS) {
			/*
			 * The new columns' record before the new generation: a target
			 * that sees the generation reads the record at once, and must
			 * not find the old one (it would type a new column from its
			 * values and keep that type).
			 */
			rc = pg_schema_record(src, src->sql, ent, err);
			if (rc == 0)
				rc = refresh(src, ent, err);
			rec->version = -1;   /* read again once the new generation is recorded */
		} else if (kind == SCHEMA_DEFAULTS) {
			rc = store_record(src, ent, &now, err);
			if (rc == 0) {
				columns_clear(&rec->columns);
				rec->columns = now;
				now = (table_columns_t){0};
			}
		}
	}
	columns_clear(&now);
	return rc;
}

void pg_schema_forget(cw_pg_source_t *src)
{
	for (size_t i = 0; i < src->nschemas; i++) {
		free(src->schemas[i].entity);
		columns_clear(&src->schemas[i].columns);
	}
	free(src->schemas);
	src->schemas = NULL;
	src->nschemas = 0;
}
