/*
 * This file contains the PostgreSQL target's table writer
 * (postgres_target_internal.h): each entity's table model read from the
 * catalog, table creation, schema evolution (pg_columns.h decides, this file
 * runs the DDL and records it), and one coalesced batch applied in one
 * transaction: COPY into a temporary table, then per set of present columns
 * one INSERT ... ON CONFLICT DO UPDATE, the deletes, the sweeps and the
 * entity's position. Every statement skips rows whose _oplog_id is not older
 * than the change, so a batch replayed after a crash changes nothing.
 */
#include "apply/postgres_target_internal.h"

#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Bookkeeping columns every table has (the soft-delete column is the target's). */
static const char *const bookkeeping[] = {"_version", "_oplog_id", "_synced_at"};
#define EXTRA_COLUMN "_extra"
#define FIELD_COMMENT "cachewarp field: "
/* Columns a table keeps below PostgreSQL's 1,600 (dropped ones count). */
#define ATTRS_MAX 1590

/* ---- the table model ----------------------------------------------------- */

static void strings_free(char **items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i]);
	free(items);
}

static void columns_free(pgt_table_t *tbl)
{
	for (size_t i = 0; i < tbl->ncols; i++) {
		free(tbl->cols[i].name);
		free(tbl->cols[i].field);
		free(tbl->cols[i].type);
	}
	free(tbl->cols);
	tbl->cols = NULL;
	tbl->ncols = 0;
	strings_free(tbl->key, tbl->nkey);
	strings_free(tbl->key_types, tbl->nkey);
	strings_free(tbl->key_fields, tbl->nkey);
	tbl->key = tbl->key_types = tbl->key_fields = NULL;
	tbl->nkey = 0;
	tbl->has_extra = false;
	tbl->nattrs = 0;
	tbl->hint = 0;
}

void pgt_table_free(pgt_table_t *tbl)
{
	columns_free(tbl);
	cw_table_record_clear(&tbl->src);
	free(tbl->entity);
	free(tbl->qname);
}

void pgt_table_forget(pgt_table_t *tbl)
{
	tbl->loaded = false;
}

pgt_table_t *pgt_table_for(pg_target_t *t, const cw_entity_t *entity)
{
	for (size_t i = 0; i < t->ntables; i++)
		if (strcmp(t->tables[i].entity, entity->name) == 0)
			return &t->tables[i];
	t->tables = cw_xrealloc(t->tables, (t->ntables + 1) * sizeof *t->tables);
	pgt_table_t *tbl = &t->tables[t->ntables++];
	memset(tbl, 0, sizeof *tbl);
	tbl->entity = cw_xstrdup(entity->name);
	cw_buf_t q = CW_BUF_INIT;
	cw_buf_appendf(&q, "%s.", t->qschema);
	pgt_quote(&q, entity->name);
	tbl->qname = cw_buf_take(&q);
	tbl->layout = cw_layout_of(entity);
	return tbl;
}

static void add_column(pgt_table_t *tbl, const char *name, const char *field, const char *type)
{
	tbl->cols = cw_xrealloc(tbl->cols, (tbl->ncols + 1) * sizeof *tbl->cols);
	pgt_column_t *c = &tbl->cols[tbl->ncols++];
	c->name = cw_xstrdup(name);
	c->field = cw_xstrdup(field);
	c->type = cw_xstrdup(type);
	c->kind = cw_pgc_kind_of(type);
}

/* field: the data key the column holds; NULL for the "id" of a typed or document table. */
static void add_key(pgt_table_t *tbl, const char *name, const char *type, const char *field)
{
	tbl->key = cw_xrealloc(tbl->key, (tbl->nkey + 1) * sizeof *tbl->key);
	tbl->key_types = cw_xrealloc(tbl->key_types, (tbl->nkey + 1) * sizeof *tbl->key_types);
	tbl->key_fields = cw_xrealloc(tbl->key_fields, (tbl->nkey + 1) * sizeof *tbl->key_fields);
	tbl->key[tbl->nkey] = cw_xstrdup(name);
	tbl->key_types[tbl->nkey] = cw_xstrdup(type);
	tbl->key_fields[tbl->nkey++] = field != NULL ? cw_xstrdup(field) : NULL;
}

static bool is_bookkeeping(const pg_target_t *t, const char *name)
{
	for (size_t i = 0; i < sizeof bookkeeping / sizeof bookkeeping[0]; i++)
		if (strcmp(name, bookkeeping[i]) == 0)
			return true;
	return t->cfg->delete_mode == CW_DELETE_SOFT && strcmp(name, t->cfg->soft_delete_column) == 0;
}

#define CATALOG_SQL \
	"SELECT a.attname, format_type(a.atttypid, a.atttypmod), " \
	"col_description(a.attrelid, a.attnum), a.attisdropped, " \
	"(SELECT k.ord FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord) " \
	" WHERE k.attnum = a.attnum) " \
	"FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary " \
	"WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 ORDER BY a.attnum"

int pgt_table_load(pg_target_t *t, pgt_table_t *tbl, cw_err_t *err)
{
	const char *params[] = {tbl->qname};
	PGresult *res = pgt_exec(t, CATALOG_SQL, 1, params, "could not read a table's columns", err);
	if (res == NULL)
		return CW_EDB;
	columns_free(tbl);
	int n = PQntuples(res);
	tbl->exists = n > 0;
	/* the key in key order: positions are 1-based indexes into the primary key */
	char **key = cw_xcalloc((size_t)n + 1, sizeof *key);
	char **key_types = cw_xcalloc((size_t)n + 1, sizeof *key_types);
	char **key_fields = cw_xcalloc((size_t)n + 1, sizeof *key_fields);
	size_t nkey = 0;
	for (int r = 0; r < n; r++) {
		tbl->nattrs++;
		if (strcmp(PQgetvalue(res, r, 3), "t") == 0)
			continue;
		const char *name = PQgetvalue(res, r, 0), *type = PQgetvalue(res, r, 1);
		const char *comment = PQgetisnull(res, r, 2) ? NULL : PQgetvalue(res, r, 2);
		const char *field = comment != NULL && strncmp(comment, FIELD_COMMENT,
		                                               strlen(FIELD_COMMENT)) == 0
		                    ? comment + strlen(FIELD_COMMENT) : name;
		if (!PQgetisnull(res, r, 4)) {
			long pos = strtol(PQgetvalue(res, r, 4), NULL, 10);
			if (pos >= 1 && pos <= n && key[pos - 1] == NULL) {
				key[pos - 1] = cw_xstrdup(name);
				key_types[pos - 1] = cw_xstrdup(type);
				key_fields[pos - 1] = cw_xstrdup(field);
				nkey = (size_t)pos > nkey ? (size_t)pos : nkey;
			}
			continue;
		}
		if (is_bookkeeping(t, name))
			continue;
		if (strcmp(name, EXTRA_COLUMN) == 0) {
			tbl->has_extra = true;
			continue;
		}
		add_column(tbl, name, field, type);
	}
	/* the "id" of a typed or document table holds doc_id, no field of the data */
	bool id_key = tbl->layout != CW_LAYOUT_DYNAMIC;
	for (size_t i = 0; i < nkey; i++)
		add_key(tbl, key[i] ? key[i] : "id", key_types[i] ? key_types[i] : "text",
		        id_key ? NULL : key_fields[i]);
	strings_free(key, (size_t)n);
	strings_free(key_types, (size_t)n);
	strings_free(key_fields, (size_t)n);
	PQclear(res);
	tbl->loaded = true;
	return 0;
}

void pgt_table_set_record(pgt_table_t *tbl, const char *json, int64_t version)
{
	/* read after the generation a write asked for: the source records before it writes rows */
	tbl->src_version = version > tbl->src_wanted ? version : tbl->src_wanted;
	cw_table_record_parse(&tbl->src, json);
	tbl->reconcile = tbl->src.n > 0;
}

/* A source column's type as the target creates it: a built-in type, else text. */
static const char *safe_type(const char *type, cw_buf_t *scratch)
{
	static const char *const builtin[] = {
		"smallint", "integer", "bigint", "numeric", "real", "double precision", "boolean",
		"text", "character varying", "character", "\"char\"", "date", "time without time zone",
		"time with time zone", "timestamp without time zone", "timestamp with time zone",
		"interval", "uuid", "json", "jsonb", "bytea", "inet", "cidr", "macaddr", "macaddr8",
		"money", "bit", "bit varying", "xml", "oid", "tsvector", "point", "line", "lseg", "box",
		"path", "polygon", "circle", "int4range", "int8range", "numrange", "tsrange",
		"tstzrange", "daterange",
	};
	/* the base type: typmods "(10,2)" and array brackets removed */
	cw_buf_reset(scratch);
	int depth = 0;
	for (const char *p = type; *p; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		else if (depth == 0 && *p != '[' && *p != ']')
			cw_buf_append_char(scratch, *p);
	}
	const char *base = cw_buf_cstr(scratch);
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
		if (strcmp(base, builtin[i]) == 0)
			return type;
	return "text";
}

/* Whether a mapped column name is taken by the table's own columns. */
typedef struct reserve_ctx {
	const pg_target_t *t;
	const pgt_table_t *tbl;
} reserve_ctx_t;

static bool reserved_name(const char *name, void *arg)
{
	const reserve_ctx_t *r = arg;
	if (is_bookkeeping(r->t, name) || strcmp(name, EXTRA_COLUMN) == 0 ||
	    strcmp(name, r->t->cfg->soft_delete_column) == 0)
		return true;
	for (size_t i = 0; i < r->tbl->nkey; i++)
		if (strcmp(name, r->tbl->key[i]) == 0)
			return true;
	return false;
}

/* The column name for a new field: the naming rule, then a longer hash on a collision. */
static void column_name_for(const pg_target_t *t, const pgt_table_t *tbl, const char *field,
                            size_t len, char out[CW_PGC_NAME_MAX + 1])
{
	reserve_ctx_t ctx = {t, tbl};
	for (int attempt = 0; attempt < 2; attempt++) {
		cw_pgc_column_name(field, len, reserved_name, &ctx, attempt == 1, out);
		bool taken = false;
		for (size_t i = 0; i < tbl->ncols && !taken; i++)
			taken = strcmp(tbl->cols[i].name, out) == 0;
		if (!taken)
			return;
	}
}

/* ---- recorded DDL ---------------------------------------------------------- */

/* A schema change made in the open transaction: logged and counted once it commits. */
typedef struct change_note {
	char change[24];
	char column[CW_PGC_NAME_MAX + 1];
	char old_type[64];
	char new_type[64];
} change_note_t;

/* One apply call's state. */
typedef struct apply_ctx {
	pg_target_t *t;
	pgt_table_t *tbl;
	const cw_entity_t *entity;
	bool careful;                /* one row per savepoint, failing rows quarantined */
	change_note_t *notes;
	size_t nnotes;
	size_t quarantined;
	size_t warnings;
} apply_ctx_t;

/*
 * One upsert's data, read once per batch for both passes (evolve, then
 * add_row): its fields and what each value is.
 */
typedef struct parsed_row {
	cw_json_fields_t store, nested;
	const cw_json_fields_t *fields;  /* store, nested, the write's merged fields, or NULL */
	cw_pgc_read_t *values;           /* one per field; owned */
	cw_err_t why;                    /* fields NULL: why the data cannot be read ("" for none) */
} parsed_row_t;

/* Runs ddl and records it in schema_history (same transaction). */
static int run_ddl(apply_ctx_t *a, const char *ddl, const char *change, const char *column,
                   const char *field, const char *old_type, const char *new_type,
                   int64_t oplog_id, cw_err_t *err)
{
	pg_target_t *t = a->t;
	char what[200];
	snprintf(what, sizeof what, "could not change table \"%s\" (%s)", a->tbl->entity, change);
	int rc = pgt_command(t, ddl, 0, NULL, what, err);
	if (rc != 0)
		return rc;
	char oplog[24];
	snprintf(oplog, sizeof oplog, "%lld", (long long)oplog_id);
	const char *params[] = {t->name, a->tbl->entity, change, column, field, old_type, new_type,
	                        oplog_id > 0 ? oplog : NULL, ddl};
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "INSERT INTO %s.schema_history (target, entity, change, column_name, "
	               "field, old_type, new_type, oplog_id, ddl) VALUES ($1, $2, $3, $4, $5, $6, $7, "
	               "$8::bigint, $9)", t->qmeta);
	rc = pgt_command(t, cw_buf_cstr(&sql), 9, params, "could not record a schema change", err);
	cw_buf_free(&sql);
	if (rc == 0) {
		a->notes = cw_xrealloc(a->notes, (a->nnotes + 1) * sizeof *a->notes);
		change_note_t *n = &a->notes[a->nnotes++];
		snprintf(n->change, sizeof n->change, "%s", change);
		snprintf(n->column, sizeof n->column, "%s", column != NULL ? column : "");
		snprintf(n->old_type, sizeof n->old_type, "%s", old_type != NULL ? old_type : "");
		snprintf(n->new_type, sizeof n->new_type, "%s", new_type != NULL ? new_type : "");
	}
	return rc;
}

/* COMMENT ON COLUMN naming the field a mapped column holds. */
static void append_field_comment(const pg_target_t *t, const pgt_table_t *tbl, const char *name,
                                 const char *field, cw_buf_t *ddl)
{
	(void)t;
	cw_buf_appendf(ddl, "; COMMENT ON COLUMN %s.", tbl->qname);
	pgt_quote(ddl, name);
	cw_buf_append_str(ddl, " IS ");
	cw_buf_t text = CW_BUF_INIT;
	cw_buf_append_str(&text, FIELD_COMMENT);
	cw_buf_append_str(&text, field);
	pgt_literal(ddl, cw_buf_cstr(&text));
	cw_buf_free(&text);
}

static const char *typed_column_type(const pg_target_t *t, cw_column_type_t type)
{
	switch (type) {
	case CW_COL_TEXT: return "text";
	case CW_COL_INTEGER: return "bigint";
	case CW_COL_NUMBER:
		return t->cfg->decimal_handling == CW_DECIMAL_DOUBLE ? "double precision" : "numeric";
	case CW_COL_BOOL: return "boolean";
	case CW_COL_JSONB:
	case CW_COL_ANY: return "jsonb";
	}
	return "text";
}

/* A field name that holds a NUL cannot name a column or a comment. */
static bool field_usable(const char *key, size_t len)
{
	return len > 0 && memchr(key, '\0', len) == NULL;
}

int pgt_table_create(pg_target_t *t, pgt_table_t *tbl, const cw_entity_t *entity, cw_err_t *err)
{
	(void)err;
	columns_free(tbl);
	cw_buf_t scratch = CW_BUF_INIT;
	if (tbl->layout == CW_LAYOUT_TYPED) {
		add_key(tbl, "id", "text", NULL);
		for (size_t i = 0; i < entity->ncolumns; i++)
			add_column(tbl, entity->columns[i].name, entity->columns[i].name,
			           typed_column_type(t, entity->columns[i].type));
	} else if (tbl->layout == CW_LAYOUT_DYNAMIC && tbl->src.nkey > 0) {
		for (size_t k = 0; k < tbl->src.nkey; k++) {
			const char *type = "text";
			for (size_t i = 0; i < tbl->src.n; i++)
				if (strcmp(tbl->src.names[i], tbl->src.key[k]) == 0)
					type = safe_type(tbl->src.types[i], &scratch);
			char name[CW_PGC_NAME_MAX + 1];
			column_name_for(t, tbl, tbl->src.key[k], strlen(tbl->src.key[k]), name);
			add_key(tbl, name, type, tbl->src.key[k]);
		}
		for (size_t i = 0; i < tbl->src.n; i++) {
			bool is_key = false;
			for (size_t k = 0; k < tbl->src.nkey; k++)
				is_key = is_key || strcmp(tbl->src.key[k], tbl->src.names[i]) == 0;
			if (is_key || !field_usable(tbl->src.names[i], strlen(tbl->src.names[i])))
				continue;
			char name[CW_PGC_NAME_MAX + 1];
			column_name_for(t, tbl, tbl->src.names[i], strlen(tbl->src.names[i]), name);
			add_column(tbl, name, tbl->src.names[i], safe_type(tbl->src.types[i], &scratch));
		}
	} else {
		/* a document, or a table whose source recorded no key: doc_id (a key field "id" too) */
		add_key(tbl, "id", "text", tbl->layout == CW_LAYOUT_DYNAMIC ? "id" : NULL);
	}
	cw_buf_free(&scratch);
	tbl->exists = true;
	tbl->loaded = true;
	tbl->nattrs = tbl->nkey + tbl->ncols + 3 + (t->cfg->delete_mode == CW_DELETE_SOFT);
	return 0;
}

/* The CREATE TABLE statement (with its comments) for the model pgt_table_create made. */
static void create_sql(const pg_target_t *t, const pgt_table_t *tbl, cw_buf_t *ddl)
{
	cw_buf_appendf(ddl, "CREATE TABLE IF NOT EXISTS %s (", tbl->qname);
	for (size_t k = 0; k < tbl->nkey; k++) {
		pgt_quote(ddl, tbl->key[k]);
		cw_buf_appendf(ddl, " %s NOT NULL, ", tbl->key_types[k]);
	}
	for (size_t i = 0; i < tbl->ncols; i++) {
		pgt_quote(ddl, tbl->cols[i].name);
		cw_buf_appendf(ddl, " %s, ", tbl->cols[i].type);
	}
	cw_buf_append_str(ddl, "_version bigint NOT NULL, _oplog_id bigint NOT NULL, "
	                       "_synced_at timestamptz NOT NULL DEFAULT now(), ");
	if (t->cfg->delete_mode == CW_DELETE_SOFT)
		cw_buf_appendf(ddl, "%s boolean NOT NULL DEFAULT false, ", t->qsoft);
	cw_buf_append_str(ddl, "PRIMARY KEY (");
	for (size_t k = 0; k < tbl->nkey; k++) {
		if (k > 0)
			cw_buf_append_str(ddl, ", ");
		pgt_quote(ddl, tbl->key[k]);
	}
	cw_buf_append_str(ddl, "))");
	for (size_t k = 0; k < tbl->nkey; k++)
		if (tbl->layout == CW_LAYOUT_DYNAMIC && tbl->src.nkey > k &&
		    strcmp(tbl->key[k], tbl->src.key[k]) != 0)
			append_field_comment(t, tbl, tbl->key[k], tbl->src.key[k], ddl);
	for (size_t i = 0; i < tbl->ncols; i++)
		if (strcmp(tbl->cols[i].name, tbl->cols[i].field) != 0)
			append_field_comment(t, tbl, tbl->cols[i].name, tbl->cols[i].field, ddl);
}

/* Creates the entity's table in the open transaction. */
static int create_table(apply_ctx_t *a, cw_err_t *err)
{
	int rc = pgt_table_create(a->t, a->tbl, a->entity, err);
	if (rc != 0)
		return rc;
	cw_buf_t ddl = CW_BUF_INIT;
	create_sql(a->t, a->tbl, &ddl);
	rc = run_ddl(a, cw_buf_cstr(&ddl), "create table", NULL, NULL, NULL, NULL, 0, err);
	cw_buf_free(&ddl);
	return rc;
}

/* ---- fields ----------------------------------------------------------------- */

/* The column of a data key, or -1; looks where the previous field's column ended first. */
static ssize_t find_column(pgt_table_t *tbl, const char *key, size_t len)
{
	for (size_t n = 0; n < tbl->ncols; n++) {
		size_t i = (tbl->hint + n) % tbl->ncols;
		const char *f = tbl->cols[i].field;
		if (strncmp(f, key, len) == 0 && f[len] == '\0') {
			tbl->hint = i + 1;
			return (ssize_t)i;
		}
	}
	return -1;
}

/* Whether a data key is the table's key (written from doc_id) or the document's _id. */
static bool is_key_field(const pgt_table_t *tbl, const char *key, size_t len)
{
	if (tbl->layout == CW_LAYOUT_DOCUMENT)
		return len == 3 && memcmp(key, "_id", 3) == 0;
	for (size_t k = 0; k < tbl->nkey; k++) {
		const char *f = tbl->key_fields[k];
		if (f != NULL && strlen(f) == len && memcmp(f, key, len) == 0)
			return true;
	}
	return false;
}

/*
 * The fields of an upsert: merged ones, or its raw text parsed into store;
 * for a document entity the fields of its "doc" object, parsed into nested.
 * NULL with *why when the data cannot be read; NULL without for none.
 */
static const cw_json_fields_t *upsert_fields(const pgt_table_t *tbl, const cw_write_t *w,
                                             cw_json_fields_t *store, cw_json_fields_t *nested,
                                             cw_err_t *why)
{
	const cw_json_fields_t *fields = w->fields;
	if (fields == NULL) {
		if (w->raw == NULL || cw_json_fields_parse(store, w->raw, why) != 0)
			return NULL;
		fields = store;
	}
	if (tbl->layout != CW_LAYOUT_DOCUMENT)
		return fields;
	const cw_json_field_t *doc = cw_json_fields_get(fields, "doc", 3);
	if (doc == NULL || doc->kind != CW_JSON_KIND_OBJECT)
		return NULL;
	if (cw_json_fields_parse_nested(nested, doc->value, why) != 0)
		return NULL;
	return nested;
}

/* Reads every upsert of writes once (NULL rows for the other writes). Owned: rows_free. */
static parsed_row_t *rows_parse(const pg_target_t *t, const pgt_table_t *tbl,
                                const cw_write_list_t *writes)
{
	parsed_row_t *rows = cw_xmalloc((writes->len + 1) * sizeof *rows);
	for (size_t i = 0; i < writes->len; i++) {
		parsed_row_t *r = &rows[i];
		cw_json_fields_init(&r->store);
		cw_json_fields_init(&r->nested);
		r->why = (cw_err_t){0};
		r->fields = NULL;
		r->values = NULL;
		if (writes->items[i].kind != CW_WRITE_UPSERT)
			continue;
		r->fields = upsert_fields(tbl, &writes->items[i], &r->store, &r->nested, &r->why);
		if (r->fields == NULL)
			continue;
		r->values = cw_xmalloc((r->fields->len + 1) * sizeof *r->values);
		for (size_t f = 0; f < r->fields->len; f++)
			cw_pgc_read(&r->fields->items[f], t->cfg->decimal_handling, &r->values[f]);
	}
	return rows;
}

static void rows_free(parsed_row_t *rows, size_t n)
{
	for (size_t i = 0; rows != NULL && i < n; i++) {
		cw_json_fields_clear(&rows[i].store);
		cw_json_fields_clear(&rows[i].nested);
		free(rows[i].values);
	}
	free(rows);
}

/* ---- evolution ---------------------------------------------------------------- */

static void log_drastic_once(apply_ctx_t *a, const pgt_column_t *col, const char *why)
{
	a->warnings++;
	cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "a value does not fit its column: written as NULL and "
	          "quarantined", "target", a->t->name, "entity", a->tbl->entity, "column", col->name,
	          "column_type", col->type, "value", why, NULL);
}

/* Adds a column for a new field whose first value is value (DDL in the open transaction). */
static int add_field_column(apply_ctx_t *a, const char *key, size_t len,
                            const cw_pgc_read_t *value, int64_t oplog_id, cw_err_t *err)
{
	pg_target_t *t = a->t;
	pgt_table_t *tbl = a->tbl;
	cw_buf_t scratch = CW_BUF_INIT;
	const char *type = cw_table_record_type(&tbl->src, key, len);
	if (type != NULL) {
		type = safe_type(type, &scratch);
	} else {
		bool ok = false;
		type = cw_pgc_type_name(cw_pgc_infer(value, t->cfg->decimal_handling, &ok));
	}
	char name[CW_PGC_NAME_MAX + 1];
	column_name_for(t, tbl, key, len, name);
	char *field = cw_xstrndup(key, len);
	cw_buf_t ddl = CW_BUF_INIT;
	cw_buf_appendf(&ddl, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS ", tbl->qname);
	pgt_quote(&ddl, name);
	cw_buf_appendf(&ddl, " %s", type);
	if (strcmp(name, field) != 0)
		append_field_comment(t, tbl, name, field, &ddl);
	int rc = run_ddl(a, cw_buf_cstr(&ddl), "add column", name, field, NULL, type, oplog_id, err);
	if (rc == 0) {
		add_column(tbl, name, field, type);
		tbl->nattrs++;
	}
	free(field);
	cw_buf_free(&ddl);
	cw_buf_free(&scratch);
	return rc;
}

static int add_extra_column(apply_ctx_t *a, int64_t oplog_id, cw_err_t *err)
{
	cw_buf_t ddl = CW_BUF_INIT;
	cw_buf_appendf(&ddl, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS " EXTRA_COLUMN " jsonb",
	               a->tbl->qname);
	int rc = run_ddl(a, cw_buf_cstr(&ddl), "add column", EXTRA_COLUMN, NULL, NULL, "jsonb",
	                 oplog_id, err);
	cw_buf_free(&ddl);
	if (rc == 0) {
		a->tbl->has_extra = true;
		a->tbl->nattrs++;
		cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "column budget reached: new fields go into _extra",
		          "target", a->t->name, "entity", a->tbl->entity, NULL);
	}
	return rc;
}

/* ALTER TABLE ... ALTER COLUMN col TYPE type USING col::type. */
static void alter_type_sql(const pgt_table_t *tbl, const pgt_column_t *col, const char *type,
                           cw_buf_t *ddl)
{
	cw_buf_appendf(ddl, "ALTER TABLE %s ALTER COLUMN ", tbl->qname);
	pgt_quote(ddl, col->name);
	cw_buf_appendf(ddl, " TYPE %s USING ", type);
	pgt_quote(ddl, col->name);
	cw_buf_appendf(ddl, "::%s", type);
}

static int widen_column(apply_ctx_t *a, pgt_column_t *col, cw_pgc_kind_t wider, int64_t oplog_id,
                        cw_err_t *err)
{
	const char *type = cw_pgc_type_name(wider);
	cw_buf_t ddl = CW_BUF_INIT;
	alter_type_sql(a->tbl, col, type, &ddl);
	int rc = run_ddl(a, cw_buf_cstr(&ddl), "widen column", col->name, col->field, col->type, type,
	                 oplog_id, err);
	cw_buf_free(&ddl);
	if (rc == 0) {
		free(col->type);
		col->type = cw_xstrdup(type);
		col->kind = wider;
	}
	return rc;
}

/*
 * A PostgreSQL source's new record (a column added or retyped there): a
 * column the target made from the values before the record said its type
 * takes the source's type. Each change in a savepoint of its own: one the
 * data cannot take is logged and the column kept.
 */
static int reconcile_record(apply_ctx_t *a, int64_t oplog_id, cw_err_t *err)
{
	pg_target_t *t = a->t;
	pgt_table_t *tbl = a->tbl;
	tbl->reconcile = false;
	cw_buf_t scratch = CW_BUF_INIT, ddl = CW_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < tbl->src.n && rc == 0; i++) {
		ssize_t c = find_column(tbl, tbl->src.names[i], strlen(tbl->src.names[i]));
		if (c < 0)
			continue;
		pgt_column_t *col = &tbl->cols[c];
		const char *type = safe_type(tbl->src.types[i], &scratch);
		if (strcmp(col->type, type) == 0)
			continue;
		char *want = cw_xstrdup(type);
		cw_buf_reset(&ddl);
		alter_type_sql(tbl, col, want, &ddl);
		if ((rc = pgt_command(t, "SAVEPOINT cw_retype", 0, NULL, "could not set a savepoint",
		                      err)) != 0) {
			free(want);
			break;
		}
		rc = run_ddl(a, cw_buf_cstr(&ddl), "retype column", col->name, col->field, col->type,
		             want, oplog_id, err);
		if (rc == 0) {
			free(col->type);
			col->type = want;
			col->kind = cw_pgc_kind_of(want);
			rc = pgt_command(t, "RELEASE SAVEPOINT cw_retype", 0, NULL, "could not release", err);
			continue;
		}
		cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "the source's column type cannot be applied: the "
		          "column keeps its type", "target", t->name, "entity", tbl->entity, "column",
		          col->name, "column_type", col->type, "source_type", want, "reason",
		          err->message, NULL);
		free(want);
		cw_err_clear(err);
		rc = pgt_command(t, "ROLLBACK TO SAVEPOINT cw_retype", 0, NULL, "could not roll back",
		                 err);
	}
	cw_buf_free(&scratch);
	cw_buf_free(&ddl);
	return rc;
}

/* Whether a new field may have a column of its own, or goes into _extra. */
static bool within_budget(const apply_ctx_t *a)
{
	const pgt_table_t *tbl = a->tbl;
	return tbl->ncols + tbl->nkey < (size_t)a->t->cfg->column_budget && tbl->nattrs < ATTRS_MAX;
}

/* Pass one: the columns every upsert of writes needs, added or widened before any row is copied. */
static int evolve(apply_ctx_t *a, const cw_write_list_t *writes, const parsed_row_t *rows,
                  cw_err_t *err)
{
	int rc = 0;
	if (a->tbl->layout == CW_LAYOUT_TYPED)
		return 0;   /* the shape decides the columns */
	for (size_t i = 0; i < writes->len && rc == 0; i++) {
		const cw_write_t *w = &writes->items[i];
		const cw_json_fields_t *fields = rows[i].fields;
		for (size_t f = 0; fields != NULL && f < fields->len && rc == 0; f++) {
			const cw_json_field_t *field = &fields->items[f];
			if (!field_usable(field->key, field->key_len) ||
			    is_key_field(a->tbl, field->key, field->key_len))
				continue;
			const cw_pgc_read_t *value = &rows[i].values[f];
			ssize_t c = find_column(a->tbl, field->key, field->key_len);
			if (c < 0) {
				if (value->value == CW_PGV_NULL)
					continue;
				if (within_budget(a))
					rc = add_field_column(a, field->key, field->key_len, value, w->oplog_id, err);
				else if (!a->tbl->has_extra)
					rc = add_extra_column(a, w->oplog_id, err);
				continue;
			}
			cw_pgc_kind_t wider;
			const char *why = NULL;
			pgt_column_t *col = &a->tbl->cols[c];
			if (cw_pgc_fit(col->kind, value, a->t->cfg->decimal_handling, &wider, &why) ==
			    CW_PGC_WIDEN)
				rc = widen_column(a, col, wider, w->oplog_id, err);
		}
	}
	return rc;
}

/* ---- rows ---------------------------------------------------------------------- */

/* Appends len bytes escaped for COPY's text format (runs without an escape in one piece). */
static void copy_text(cw_buf_t *out, const char *s, size_t len)
{
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		const char *escape;
		switch (s[i]) {
		case '\\': escape = "\\\\"; break;
		case '\t': escape = "\\t"; break;
		case '\n': escape = "\\n"; break;
		case '\r': escape = "\\r"; break;
		default: continue;
		}
		cw_buf_append(out, s + run, i - run);
		cw_buf_append_str(out, escape);
		run = i + 1;
	}
	cw_buf_append(out, s + run, len - run);
}

/* A value quarantined while the row is built: inserted once the row's statements ran. */
typedef struct quarantined {
	char *doc_id;
	char *column;              /* NULL: the whole row */
	char *field;
	char *value;               /* JSON text */
	char *reason;
	int64_t oplog_id;
} quarantined_t;

typedef struct row_set {
	cw_buf_t copy;             /* COPY text of the rows */
	char **masks;              /* distinct masks of the upserts */
	size_t nmasks;
	bool has_replace, has_delete, has_upsert;
	quarantined_t *q;
	size_t nq;
} row_set_t;

static void row_set_reset(row_set_t *rs)
{
	cw_buf_reset(&rs->copy);
	strings_free(rs->masks, rs->nmasks);
	rs->masks = NULL;
	rs->nmasks = 0;
	rs->has_replace = rs->has_delete = rs->has_upsert = false;
	for (size_t i = 0; i < rs->nq; i++) {
		free(rs->q[i].doc_id);
		free(rs->q[i].column);
		free(rs->q[i].field);
		free(rs->q[i].value);
		free(rs->q[i].reason);
	}
	free(rs->q);
	rs->q = NULL;
	rs->nq = 0;
}

static void quarantine_later(row_set_t *rs, const char *doc_id, const char *column,
                             const char *field, const char *value, const char *reason,
                             int64_t oplog_id)
{
	rs->q = cw_xrealloc(rs->q, (rs->nq + 1) * sizeof *rs->q);
	rs->q[rs->nq++] = (quarantined_t){cw_xstrdup(doc_id), cw_xstrdup(column), cw_xstrdup(field),
	                                  cw_xstrdup(value), cw_xstrdup(reason), oplog_id};
}

static void add_mask(row_set_t *rs, const char *mask)
{
	for (size_t i = 0; i < rs->nmasks; i++)
		if (strcmp(rs->masks[i], mask) == 0)
			return;
	rs->masks = cw_xrealloc(rs->masks, (rs->nmasks + 1) * sizeof *rs->masks);
	rs->masks[rs->nmasks++] = cw_xstrdup(mask);
}

/* Appends value in decimal (the COPY rows' hot path: no format string to read). */
static void append_int64(cw_buf_t *out, int64_t value)
{
	char digits[24];
	size_t at = sizeof digits;
	uint64_t magnitude = value < 0 ? -(uint64_t)value : (uint64_t)value;
	do {
		digits[--at] = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude > 0);
	if (value < 0)
		digits[--at] = '-';
	cw_buf_append(out, digits + at, sizeof digits - at);
}

/* Appends the row's fixed columns: op, doc_id, mask, version, oplog_id. */
static void row_head(cw_buf_t *copy, char op, const cw_write_t *w, const char *mask)
{
	cw_buf_append_char(copy, op);
	cw_buf_append_char(copy, '\t');
	copy_text(copy, w->doc_id, strlen(w->doc_id));
	cw_buf_append_char(copy, '\t');
	cw_buf_append_str(copy, mask);
	cw_buf_append_char(copy, '\t');
	append_int64(copy, w->version);
	cw_buf_append_char(copy, '\t');
	append_int64(copy, w->oplog_id);
}

/* Appends one write (row: its data as rows_parse read it) as a row of the temporary table. */
static void add_row(apply_ctx_t *a, const cw_write_t *w, const parsed_row_t *row, row_set_t *rs)
{
	pg_target_t *t = a->t;
	pgt_table_t *tbl = a->tbl;
	size_t ncols = tbl->ncols;
	if (w->kind == CW_WRITE_DELETE) {
		char *mask = cw_xcalloc(ncols + 2, 1);
		memset(mask, '0', ncols + 1);
		row_head(&rs->copy, 'd', w, mask);
		cw_buf_append_str(&rs->copy, "\t\\N");
		for (size_t i = 0; i < ncols; i++)
			cw_buf_append_str(&rs->copy, "\t\\N");
		cw_buf_append_char(&rs->copy, '\n');
		rs->has_delete = true;
		free(mask);
		return;
	}
	const cw_json_fields_t *fields = row->fields;
	if (fields == NULL && row->why.message[0] != '\0') {
		quarantine_later(rs, w->doc_id, NULL, NULL, w->raw, row->why.message, w->oplog_id);
		return;
	}
	/* each column's value: an offset into text, or -1 for NULL; absent unless in mask */
	char *mask = cw_xcalloc(ncols + 2, 1);
	/* a document's upsert carries the whole document: a field it lacks is NULL */
	memset(mask, tbl->layout == CW_LAYOUT_DOCUMENT && fields != NULL ? '1' : '0', ncols + 1);
	if (!tbl->has_extra)
		mask[ncols] = '0';
	long *start = cw_xcalloc(ncols + 1, sizeof *start);
	size_t *len = cw_xcalloc(ncols + 1, sizeof *len);
	for (size_t i = 0; i < ncols; i++)
		start[i] = -1;
	cw_buf_t *text = &t->text;
	cw_buf_reset(text);
	cw_buf_t extra = CW_BUF_INIT;
	cw_json_t ew;
	cw_json_init(&ew, &extra, CW_JSON_NO_NUL);
	cw_json_object_begin(&ew, NULL);
	bool any_extra = false;
	for (size_t f = 0; fields != NULL && f < fields->len; f++) {
		const cw_json_field_t *field = &fields->items[f];
		if (!field_usable(field->key, field->key_len) ||
		    is_key_field(tbl, field->key, field->key_len))
			continue;
		const cw_pgc_read_t value = row->values[f];
		ssize_t c = find_column(tbl, field->key, field->key_len);
		if (c < 0) {
			if (value.value != CW_PGV_NULL && tbl->has_extra) {
				cw_json_key_len(&ew, field->key, field->key_len, NULL);
				cw_json_raw(&ew, field->value, field->value_len, NULL);
				any_extra = true;
			}
			continue;
		}
		const pgt_column_t *col = &tbl->cols[c];
		mask[c] = '1';
		if (value.value == CW_PGV_NULL)
			continue;   /* SQL NULL */
		cw_pgc_kind_t wider;
		const char *drastic = NULL;
		cw_pgc_fit_t fit = cw_pgc_fit(col->kind, &value, t->cfg->decimal_handling, &wider, &drastic);
		size_t at = text->len;
		if (fit == CW_PGC_FITS && cw_pgc_text(field, &value, col->kind, col->type, text)) {
			start[c] = (long)at;
			len[c] = text->len - at;
			continue;
		}
		text->len = at;
		cw_buf_t reason = CW_BUF_INIT, json = CW_BUF_INIT;
		if (fit == CW_PGC_FITS)
			cw_buf_appendf(&reason, "the value holds a NUL character, which column \"%s\" "
			               "(%s) cannot store", col->name, col->type);
		else
			cw_buf_appendf(&reason, "%s where column \"%s\" is %s", drastic ? drastic : "a value",
			               col->name, col->type);
		cw_json_compact(field->value, field->value_len, &json);
		quarantine_later(rs, w->doc_id, col->name, col->field, cw_buf_cstr(&json),
		                 cw_buf_cstr(&reason), w->oplog_id);
		log_drastic_once(a, col, cw_buf_cstr(&reason));
		cw_buf_free(&reason);
		cw_buf_free(&json);
	}
	cw_json_object_end(&ew, NULL);
	if (any_extra)
		mask[ncols] = '1';
	row_head(&rs->copy, w->replace ? 'r' : 'u', w, mask);
	cw_buf_append_char(&rs->copy, '\t');
	if (any_extra && cw_json_finish(&ew) == 0)
		copy_text(&rs->copy, extra.data, extra.len);
	else
		cw_buf_append_str(&rs->copy, "\\N");
	for (size_t i = 0; i < ncols; i++) {
		cw_buf_append_char(&rs->copy, '\t');
		if (start[i] < 0)
			cw_buf_append_str(&rs->copy, "\\N");
		else
			copy_text(&rs->copy, text->data + start[i], len[i]);
	}
	cw_buf_append_char(&rs->copy, '\n');
	add_mask(rs, mask);
	rs->has_upsert = true;
	if (w->replace)
		rs->has_replace = true;
	free(mask);
	free(start);
	free(len);
	cw_buf_free(&extra);
}

/* ---- statements ------------------------------------------------------------------ */

/*
 * The session's batch table: created once per connection (emptied at every
 * commit), with value columns v0.. for the widest table written so far; a
 * table with fewer columns uses the first ones.
 */
static int ensure_temp(apply_ctx_t *a, cw_err_t *err)
{
	pg_target_t *t = a->t;
	if (t->temp_cols > 0 && t->temp_cols >= a->tbl->ncols)
		return 0;
	cw_buf_t *sql = &t->sql;
	cw_buf_reset(sql);
	cw_buf_append_str(sql, "CREATE TEMP TABLE IF NOT EXISTS _cw_rows (op text, doc_id text, "
	                       "mask text, version bigint, oplog_id bigint, extra text) "
	                       "ON COMMIT DELETE ROWS");
	if (a->tbl->ncols > 0) {
		cw_buf_append_str(sql, "; ALTER TABLE pg_temp._cw_rows");
		for (size_t i = 0; i < a->tbl->ncols; i++)
			cw_buf_appendf(sql, "%s ADD COLUMN IF NOT EXISTS v%zu text", i ? "," : "", i);
	}
	int rc = pgt_command(t, cw_buf_cstr(sql), 0, NULL, "could not create the batch table", err);
	if (rc == 0)
		t->temp_cols = a->tbl->ncols > 0 ? a->tbl->ncols : 1;
	return rc;
}

/* The COPY into the batch table of the table's value columns. */
static void copy_sql(const apply_ctx_t *a, cw_buf_t *sql)
{
	cw_buf_append_str(sql, "COPY pg_temp._cw_rows (op, doc_id, mask, version, oplog_id, extra");
	for (size_t i = 0; i < a->tbl->ncols; i++)
		cw_buf_appendf(sql, ", v%zu", i);
	cw_buf_append_str(sql, ") FROM STDIN");
}

/* Appends the condition matching table row t to batch row r by key. */
static void key_match(const pgt_table_t *tbl, cw_buf_t *sql)
{
	for (size_t k = 0; k < tbl->nkey; k++) {
		if (k > 0)
			cw_buf_append_str(sql, " AND ");
		cw_buf_append_str(sql, "t.");
		pgt_quote(sql, tbl->key[k]);
		if (tbl->nkey == 1)
			cw_buf_appendf(sql, " = CAST(r.doc_id AS %s)", tbl->key_types[k]);
		else
			cw_buf_appendf(sql, " = CAST((r.doc_id::jsonb) ->> %zu AS %s)", k, tbl->key_types[k]);
	}
}

static void key_values(const pgt_table_t *tbl, cw_buf_t *sql)
{
	for (size_t k = 0; k < tbl->nkey; k++) {
		if (tbl->nkey == 1)
			cw_buf_appendf(sql, "CAST(r.doc_id AS %s), ", tbl->key_types[k]);
		else
			cw_buf_appendf(sql, "CAST((r.doc_id::jsonb) ->> %zu AS %s), ", k, tbl->key_types[k]);
	}
}

/* The INSERT ... ON CONFLICT DO UPDATE of the upserts whose present columns are mask. */
static void upsert_sql(const apply_ctx_t *a, const char *mask, cw_buf_t *sql)
{
	const pg_target_t *t = a->t;
	const pgt_table_t *tbl = a->tbl;
	size_t ncols = tbl->ncols;
	bool extra = mask[ncols] == '1';
	bool soft = t->cfg->delete_mode == CW_DELETE_SOFT;
	cw_buf_appendf(sql, "INSERT INTO %s AS t (", tbl->qname);
	for (size_t k = 0; k < tbl->nkey; k++) {
		pgt_quote(sql, tbl->key[k]);
		cw_buf_append_str(sql, ", ");
	}
	for (size_t i = 0; i < ncols; i++) {
		if (mask[i] != '1')
			continue;
		pgt_quote(sql, tbl->cols[i].name);
		cw_buf_append_str(sql, ", ");
	}
	if (extra)
		cw_buf_append_str(sql, EXTRA_COLUMN ", ");
	cw_buf_append_str(sql, "_version, _oplog_id, _synced_at");
	if (soft)
		cw_buf_appendf(sql, ", %s", t->qsoft);
	cw_buf_append_str(sql, ") SELECT ");
	key_values(tbl, sql);
	for (size_t i = 0; i < ncols; i++)
		if (mask[i] == '1')
			cw_buf_appendf(sql, "CAST(r.v%zu AS %s), ", i, tbl->cols[i].type);
	if (extra)
		cw_buf_append_str(sql, "CAST(r.extra AS jsonb), ");
	cw_buf_append_str(sql, "r.version, r.oplog_id, now()");
	if (soft)
		cw_buf_append_str(sql, ", false");
	cw_buf_append_str(sql, " FROM pg_temp._cw_rows r WHERE r.op IN ('u', 'r') AND r.mask = ");
	pgt_literal(sql, mask);
	cw_buf_append_str(sql, " ON CONFLICT (");
	for (size_t k = 0; k < tbl->nkey; k++) {
		if (k > 0)
			cw_buf_append_str(sql, ", ");
		pgt_quote(sql, tbl->key[k]);
	}
	cw_buf_append_str(sql, ") DO UPDATE SET ");
	for (size_t i = 0; i < ncols; i++) {
		if (mask[i] != '1')
			continue;
		pgt_quote(sql, tbl->cols[i].name);
		cw_buf_append_str(sql, " = EXCLUDED.");
		pgt_quote(sql, tbl->cols[i].name);
		cw_buf_append_str(sql, ", ");
	}
	if (extra && tbl->layout == CW_LAYOUT_DOCUMENT)
		cw_buf_append_str(sql, EXTRA_COLUMN " = EXCLUDED." EXTRA_COLUMN ", ");
	else if (extra)
		cw_buf_append_str(sql, EXTRA_COLUMN " = COALESCE(t." EXTRA_COLUMN ", '{}'::jsonb) || "
		                       "EXCLUDED." EXTRA_COLUMN ", ");
	cw_buf_append_str(sql, "_version = EXCLUDED._version, _oplog_id = EXCLUDED._oplog_id, "
	                       "_synced_at = EXCLUDED._synced_at");
	if (soft)
		cw_buf_appendf(sql, ", %s = false", t->qsoft);
	cw_buf_append_str(sql, " WHERE t._oplog_id < EXCLUDED._oplog_id");
}

/*
 * The batch's statements as one message, the COPY first: replaced rows, one
 * upsert per set of present columns, the deletes, then the batch table
 * emptied. labels[i] says what the i-th statement does (for its error).
 */
static size_t batch_sql(const apply_ctx_t *a, const row_set_t *rs, cw_buf_t *sql,
                        const char **labels)
{
	const pg_target_t *t = a->t;
	const pgt_table_t *tbl = a->tbl;
	size_t n = 0;
	copy_sql(a, sql);
	labels[n++] = "could not copy a batch";
	if (rs->has_replace) {
		cw_buf_appendf(sql, ";\nDELETE FROM %s t USING pg_temp._cw_rows r WHERE r.op = 'r' AND ",
		               tbl->qname);
		key_match(tbl, sql);
		cw_buf_append_str(sql, " AND t._oplog_id < r.oplog_id");
		labels[n++] = "could not replace rows";
	}
	for (size_t m = 0; m < rs->nmasks; m++) {
		cw_buf_append_str(sql, ";\n");
		upsert_sql(a, rs->masks[m], sql);
		labels[n++] = "could not upsert rows";
	}
	if (rs->has_delete) {
		if (t->cfg->delete_mode == CW_DELETE_SOFT)
			cw_buf_appendf(sql, ";\nUPDATE %s t SET %s = true, _version = r.version, "
			               "_oplog_id = r.oplog_id, _synced_at = now() FROM pg_temp._cw_rows r "
			               "WHERE r.op = 'd' AND ", tbl->qname, t->qsoft);
		else
			cw_buf_appendf(sql, ";\nDELETE FROM %s t USING pg_temp._cw_rows r WHERE r.op = 'd' AND ",
			               tbl->qname);
		key_match(tbl, sql);
		cw_buf_append_str(sql, " AND t._oplog_id < r.oplog_id");
		labels[n++] = "could not delete rows";
	}
	cw_buf_append_str(sql, ";\nDELETE FROM pg_temp._cw_rows");
	labels[n++] = "could not empty the batch table";
	return n;
}

/*
 * Copies the rows and runs their statements in one round trip after the
 * COPY's: the server runs the message's statements in order and skips the
 * rest after one fails, whose error is returned with what it was doing.
 */
static int copy_and_run(apply_ctx_t *a, const row_set_t *rs, cw_err_t *err)
{
	pg_target_t *t = a->t;
	const char **labels = cw_xcalloc(rs->nmasks + 4, sizeof *labels);
	cw_buf_t *sql = &t->sql;
	cw_buf_reset(sql);
	size_t n = batch_sql(a, rs, sql, labels);
	int rc = 0;
	if (PQsendQuery(t->conn, cw_buf_cstr(sql)) != 1) {
		rc = pgt_result_error(t, NULL, labels[0], err);
		free(labels);
		return rc;
	}
	PGresult *res;
	size_t at = 0;
	while ((res = PQgetResult(t->conn)) != NULL) {
		ExecStatusType status = PQresultStatus(res);
		if (status == PGRES_COPY_IN) {
			PQclear(res);
			if (PQputCopyData(t->conn, rs->copy.data, (int)rs->copy.len) == 1 &&
			    PQputCopyEnd(t->conn, NULL) == 1)
				continue;
			rc = pgt_result_error(t, NULL, labels[0], err);
			break;   /* the connection failed: it is closed and opened again */
		}
		if (status != PGRES_COMMAND_OK && rc == 0)
			rc = pgt_result_error(t, res, labels[at < n ? at : n - 1], err);
		PQclear(res);
		at++;
	}
	free(labels);
	return rc;
}

static int insert_quarantine(apply_ctx_t *a, const quarantined_t *q, cw_err_t *err)
{
	pg_target_t *t = a->t;
	char oplog[24];
	snprintf(oplog, sizeof oplog, "%lld", (long long)q->oplog_id);
	const char *params[] = {t->name, a->tbl->entity, q->doc_id, q->column, q->field, q->value,
	                        q->reason, oplog};
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "INSERT INTO %s.quarantine (target, entity, doc_id, column_name, field, "
	               "value, reason, oplog_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint)",
	               t->qmeta);
	int rc = pgt_command(t, cw_buf_cstr(&sql), 8, params, "could not quarantine a value", err);
	cw_buf_free(&sql);
	if (rc == 0)
		a->quarantined++;
	return rc;
}

/* Copies the rows, runs their statements, records their quarantined values; rs is reset. */
static int write_rows(apply_ctx_t *a, row_set_t *rs, cw_err_t *err)
{
	int rc = 0;
	if (rs->copy.len > 0) {
		if ((rc = ensure_temp(a, err)) == 0)
			rc = copy_and_run(a, rs, err);
	}
	for (size_t i = 0; i < rs->nq && rc == 0; i++)
		rc = insert_quarantine(a, &rs->q[i], err);
	row_set_reset(rs);
	return rc;
}

static int sweep(apply_ctx_t *a, const cw_write_t *w, cw_err_t *err)
{
	pg_target_t *t = a->t;
	char version[24];
	snprintf(version, sizeof version, "%lld", (long long)w->version);
	const char *params[] = {version};
	cw_buf_t *sql = &t->sql;
	cw_buf_reset(sql);
	if (t->cfg->delete_mode == CW_DELETE_SOFT)
		cw_buf_appendf(sql, "UPDATE %s SET %s = true, _synced_at = now() "
		               "WHERE _version < $1::bigint AND NOT %s", a->tbl->qname, t->qsoft, t->qsoft);
	else
		cw_buf_appendf(sql, "DELETE FROM %s WHERE _version < $1::bigint", a->tbl->qname);
	return pgt_command(t, cw_buf_cstr(sql), 1, params, "could not sweep a generation", err);
}

/* Whether a statement's failure is the row's doing (its values, a constraint): quarantine it. */
static bool row_refused(const char *sqlstate)
{
	return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
	       strcmp(sqlstate, "42804") == 0 || strcmp(sqlstate, "42846") == 0 ||
	       strcmp(sqlstate, "54000") == 0 || strcmp(sqlstate, "P0001") == 0;
}

/*
 * Careful mode: each write in a savepoint of its own; a write the table
 * refuses is rolled back to its savepoint and quarantined whole.
 */
static int write_one(apply_ctx_t *a, const cw_write_t *w, const parsed_row_t *row, row_set_t *rs,
                     cw_err_t *err)
{
	pg_target_t *t = a->t;
	int rc = ensure_temp(a, err);
	if (rc == 0)
		rc = pgt_command(t, "SAVEPOINT cw_row", 0, NULL, "could not set a savepoint", err);
	if (rc != 0)
		return rc;
	add_row(a, w, row, rs);
	rc = write_rows(a, rs, err);
	if (rc == 0)
		return pgt_command(t, "RELEASE SAVEPOINT cw_row", 0, NULL, "could not release", err);
	if (!row_refused(t->sqlstate))
		return rc;
	char reason[CW_ERR_MESSAGE_LEN];
	snprintf(reason, sizeof reason, "%s", err->message);
	cw_err_clear(err);
	if ((rc = pgt_command(t, "ROLLBACK TO SAVEPOINT cw_row", 0, NULL, "could not roll back",
	                      err)) != 0)
		return rc;
	char *json = cw_write_json(w);
	quarantined_t q = {(char *)w->doc_id, NULL, NULL, json, reason, w->oplog_id};
	rc = insert_quarantine(a, &q, err);
	free(json);
	if (rc == 0)
		cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "row refused by the target table: quarantined",
		          "target", t->name, "entity", a->tbl->entity, "doc_id", w->doc_id, "reason",
		          reason, NULL);
	return rc;
}


/* Rows per statement for entity: its entities[].targets.<target> setting, else the target's. */
static size_t write_batch_for(const pg_target_t *t, const char *entity)
{
	const cw_entity_t *e = cw_config_entity(t->ctx->config, entity);
	for (size_t i = 0; e != NULL && i < e->ntargets; i++)
		if (e->targets[i].name != NULL && strcmp(e->targets[i].name, t->name) == 0 &&
		    e->targets[i].write_batch_size > 0)
			return (size_t)e->targets[i].write_batch_size;
	return (size_t)t->cfg->write_batch_size;
}

/* One transaction: evolution, the writes in segments split by sweeps, the position. */
static int apply_once(apply_ctx_t *a, const cw_write_list_t *writes, int64_t upto, cw_err_t *err)
{
	pg_target_t *t = a->t;
	int rc = pgt_command(t, "BEGIN", 0, NULL, "could not begin", err);
	if (rc == 0 && !a->tbl->exists)
		rc = create_table(a, err);
	else if (rc == 0 && a->tbl->reconcile && a->tbl->layout == CW_LAYOUT_DYNAMIC)
		rc = reconcile_record(a, writes->len ? writes->items[0].oplog_id : 0, err);
	parsed_row_t *rows = rc == 0 ? rows_parse(t, a->tbl, writes) : NULL;
	if (rc == 0)
		rc = evolve(a, writes, rows, err);
	row_set_t rs = {CW_BUF_INIT, NULL, 0, false, false, false, NULL, 0};
	size_t chunk = write_batch_for(t, a->tbl->entity), in_chunk = 0;
	for (size_t i = 0; i < writes->len && rc == 0; i++) {
		const cw_write_t *w = &writes->items[i];
		if (w->kind == CW_WRITE_SWEEP) {
			if ((rc = write_rows(a, &rs, err)) == 0)
				rc = sweep(a, w, err);
			in_chunk = 0;
			continue;
		}
		if (a->careful) {
			rc = write_one(a, w, &rows[i], &rs, err);
			continue;
		}
		add_row(a, w, &rows[i], &rs);
		if (++in_chunk >= chunk) {
			rc = write_rows(a, &rs, err);
			in_chunk = 0;
		}
	}
	if (rc == 0)
		rc = write_rows(a, &rs, err);
	row_set_reset(&rs);
	cw_buf_free(&rs.copy);
	rows_free(rows, writes->len);
	if (rc == 0)
		rc = pgt_position_commit(t, a->tbl->entity, upto, err);
	if (rc != 0 && t->conn != NULL && PQstatus(t->conn) == CONNECTION_OK)
		PQclear(PQexec(t->conn, "ROLLBACK"));
	if (rc != 0)
		t->temp_cols = 0;   /* its creation may have been rolled back with the batch */
	return rc;
}

static void notes_published(apply_ctx_t *a)
{
	pg_target_t *t = a->t;
	char labels[256];
	for (size_t i = 0; i < a->nnotes; i++) {
		const change_note_t *n = &a->notes[i];
		if (n->column[0] == '\0')
			cw_log_kv(CW_LOG_INFO, PGT_COMPONENT, "schema change applied", "target", t->name,
			          "entity", a->tbl->entity, "change", n->change, "table", a->tbl->qname, NULL);
		else
			cw_log_kv(CW_LOG_INFO, PGT_COMPONENT, "schema change applied", "target", t->name,
			          "entity", a->tbl->entity, "change", n->change, "column", n->column,
			          "old_type", n->old_type[0] ? n->old_type : "-", "new_type", n->new_type,
			          NULL);
		snprintf(labels, sizeof labels, "%s,entity=\"%s\",change=\"%s\"", t->labels,
		         a->tbl->entity, n->change);
		cw_metrics_counter_add(t->ctx->metrics, "cachewarp_schema_changes_total", labels, 1);
	}
	snprintf(labels, sizeof labels, "%s,entity=\"%s\"", t->labels, a->tbl->entity);
	if (a->warnings > 0)
		cw_metrics_counter_add(t->ctx->metrics, "cachewarp_type_conversion_warnings_total", labels,
		                       (double)a->warnings);
	if (a->quarantined > 0)
		cw_metrics_counter_add(t->ctx->metrics, "cachewarp_target_quarantined_total", labels,
		                       (double)a->quarantined);
}

static void notes_clear(apply_ctx_t *a)
{
	free(a->notes);
	a->notes = NULL;
	a->nnotes = 0;
	a->quarantined = 0;
	a->warnings = 0;
}

int pgt_apply(pg_target_t *t, const cw_entity_t *entity, const cw_write_list_t *writes,
              int64_t upto, bool *lost, cw_err_t *err)
{
	*lost = false;
	pgt_table_t *tbl = pgt_table_for(t, entity);
	int rc = tbl->loaded ? 0 : pgt_table_load(t, tbl, err);
	if (rc != 0)
		return rc;
	if (!tbl->exists && tbl->layout == CW_LAYOUT_DYNAMIC && tbl->src.nkey == 0 &&
	    !tbl->waited_for_record) {
		/* Its source's record of the table's key comes with the scan: open it again to read it. */
		tbl->waited_for_record = true;
		*lost = true;
		return 0;
	}
	/*
	 * A write of a newer generation than the source's record was read for
	 * (the loop's entity list lags behind the oplog): open it again first,
	 * which reads the record the source wrote before that generation's rows.
	 */
	int64_t newest = 0;
	for (size_t i = 0; i < writes->len; i++)
		newest = writes->items[i].version > newest ? writes->items[i].version : newest;
	if (tbl->layout == CW_LAYOUT_DYNAMIC && tbl->exists && newest > tbl->src_version &&
	    newest > tbl->src_wanted) {
		tbl->src_wanted = newest;
		*lost = true;
		return 0;
	}
	apply_ctx_t a = {t, tbl, entity, false, NULL, 0, 0, 0};
	t->sqlstate[0] = '\0';
	rc = apply_once(&a, writes, upto, err);
	if (rc != 0 && strcmp(t->sqlstate, "42P01") == 0) {   /* the table went away */
		pgt_table_forget(tbl);
		notes_clear(&a);
		cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "table gone: the entity is applied again",
		          "target", t->name, "entity", entity->name, NULL);
		cw_err_clear(err);
		*lost = true;
		return 0;
	}
	if (rc != 0 && row_refused(t->sqlstate)) {
		/* A row the table refuses: again, one row at a time, the refused ones quarantined. */
		pgt_table_forget(tbl);
		notes_clear(&a);
		cw_err_clear(err);
		if ((rc = pgt_table_load(t, tbl, err)) == 0) {
			a.careful = true;
			rc = apply_once(&a, writes, upto, err);
		}
	}
	if (rc != 0) {
		pgt_table_forget(tbl);   /* its DDL was rolled back */
		tbl->reconcile = tbl->src.n > 0;
	}
	else
		notes_published(&a);
	notes_clear(&a);
	return rc;
}

/* ---- quarantined values, again ------------------------------------------------ */

static pgt_table_t *loaded_table(pg_target_t *t, const char *entity)
{
	for (size_t i = 0; i < t->ntables; i++)
		if (strcmp(t->tables[i].entity, entity) == 0)
			return &t->tables[i];
	return NULL;
}

/* Writes one quarantined value (JSON text) into its row when its column holds it now. */
static int retry_value(pg_target_t *t, pgt_table_t *tbl, const char *doc_id, const char *column,
                       const char *value, const char *oplog_id, bool *written, cw_err_t *err)
{
	*written = false;
	const pgt_column_t *col = NULL;
	for (size_t i = 0; i < tbl->ncols && col == NULL; i++)
		if (strcmp(tbl->cols[i].name, column) == 0)
			col = &tbl->cols[i];
	if (col == NULL)
		return 0;
	char *wrapped = cw_xasprintf("{\"v\":%s}", value);
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	int rc = 0;
	if (cw_json_fields_parse(&fields, wrapped, NULL) == 0 && fields.len == 1) {
		cw_pgc_read_t read;
		cw_pgc_read(&fields.items[0], t->cfg->decimal_handling, &read);
		cw_pgc_kind_t wider;
		const char *why = NULL;
		cw_buf_t text = CW_BUF_INIT;
		if (cw_pgc_fit(col->kind, &read, t->cfg->decimal_handling, &wider, &why) == CW_PGC_FITS &&
		    cw_pgc_text(&fields.items[0], &read, col->kind, col->type, &text)) {
			cw_buf_append_str(&text, "");
			cw_buf_t sql = CW_BUF_INIT;
			cw_buf_appendf(&sql, "UPDATE %s t SET ", tbl->qname);
			pgt_quote(&sql, col->name);
			cw_buf_appendf(&sql, " = CAST($1 AS %s) FROM (SELECT $2::text AS doc_id) r WHERE ",
			               col->type);
			key_match(tbl, &sql);
			cw_buf_append_str(&sql, " AND t._oplog_id = $3::bigint");
			const char *params[] = {cw_buf_cstr(&text), doc_id, oplog_id};
			rc = pgt_command(t, cw_buf_cstr(&sql), 3, params, "could not write a quarantined value",
			                 err);
			*written = rc == 0;
			cw_buf_free(&sql);
		}
		cw_buf_free(&text);
	}
	cw_json_fields_clear(&fields);
	free(wrapped);
	return rc;
}

int pgt_quarantine_retry(pg_target_t *t, size_t *resolved, cw_err_t *err)
{
	*resolved = 0;
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "SELECT id, entity, doc_id, column_name, value, oplog_id FROM %s.quarantine "
	               "WHERE target = $1 AND resolved_at IS NULL AND column_name IS NOT NULL "
	               "AND value IS NOT NULL ORDER BY id LIMIT 200", t->qmeta);
	const char *params[] = {t->name};
	PGresult *res = pgt_exec(t, cw_buf_cstr(&sql), 1, params, "could not read the quarantine", err);
	cw_buf_free(&sql);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	/* each table read once per pass: its column types may have changed by hand */
	bool *reloaded = cw_xcalloc(t->ntables + 1, sizeof *reloaded);
	for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
		pgt_table_t *tbl = loaded_table(t, PQgetvalue(res, r, 1));
		if (tbl == NULL || !tbl->exists)
			continue;
		size_t at = (size_t)(tbl - t->tables);
		if (!reloaded[at] && (rc = pgt_table_load(t, tbl, err)) != 0)
			break;
		reloaded[at] = true;
		bool written = false;
		rc = pgt_command(t, "BEGIN", 0, NULL, "could not begin", err);
		if (rc == 0)
			rc = retry_value(t, tbl, PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
			                 PQgetvalue(res, r, 4), PQgetvalue(res, r, 5), &written, err);
		if (rc == 0 && written) {
			cw_buf_t done = CW_BUF_INIT;
			cw_buf_appendf(&done, "UPDATE %s.quarantine SET resolved_at = now() WHERE id = $1::bigint",
			               t->qmeta);
			const char *id[] = {PQgetvalue(res, r, 0)};
			rc = pgt_command(t, cw_buf_cstr(&done), 1, id, "could not resolve a quarantined value",
			                 err);
			cw_buf_free(&done);
		}
		if (rc == 0)
			rc = pgt_command(t, "COMMIT", 0, NULL, "could not commit", err);
		if (rc != 0 && row_refused(t->sqlstate)) {
			/* still refused (a constraint): it stays quarantined */
			PQclear(PQexec(t->conn, "ROLLBACK"));
			cw_err_clear(err);
			rc = 0;
			continue;
		}
		if (rc != 0)
			PQclear(PQexec(t->conn, "ROLLBACK"));
		else if (written)
			(*resolved)++;
	}
	free(reloaded);
	PQclear(res);
	return rc;
}
