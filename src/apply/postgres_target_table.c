/*
 * This file contains the PostgreSQL target's table model
 * (postgres_target_internal.h): each entity's table read from the catalog,
 * table creation, column naming, and schema evolution (pg_columns.h decides,
 * this file runs the DDL and records it in schema_history): columns added
 * for new fields, widened for wider values, retyped to a source's record.
 */
#include "apply/postgres_target_internal.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Bookkeeping columns every table has (the soft-delete column is the target's). */
static const char *const bookkeeping[] = {"_version", "_oplog_id", "_synced_at"};
#define FIELD_COMMENT "cachewarp field: "
/* Columns a table keeps below PostgreSQL's 1,600 (dropped ones count). */
#define ATTRS_MAX 1590

/* ---- the table model ----------------------------------------------------- */

void pgt_strings_free(char **items, size_t n)
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
	pgt_strings_free(tbl->key, tbl->nkey);
	pgt_strings_free(tbl->key_types, tbl->nkey);
	pgt_strings_free(tbl->key_fields, tbl->nkey);
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
		if (strcmp(name, PGT_EXTRA_COLUMN) == 0) {
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
	pgt_strings_free(key, (size_t)n);
	pgt_strings_free(key_types, (size_t)n);
	pgt_strings_free(key_fields, (size_t)n);
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
	if (is_bookkeeping(r->t, name) || strcmp(name, PGT_EXTRA_COLUMN) == 0 ||
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

/* Runs ddl and records it in schema_history (same transaction). */
static int run_ddl(pgt_apply_ctx_t *a, const char *ddl, const char *change, const char *column,
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
		pgt_change_note_t *n = &a->notes[a->nnotes++];
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
			if (is_key || !pgt_field_usable(tbl->src.names[i], strlen(tbl->src.names[i])))
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

void pgt_key_list(const pgt_table_t *tbl, cw_buf_t *sql)
{
	for (size_t k = 0; k < tbl->nkey; k++) {
		if (k > 0)
			cw_buf_append_str(sql, ", ");
		pgt_quote(sql, tbl->key[k]);
	}
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
	pgt_key_list(tbl, ddl);
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
int pgt_create_table(pgt_apply_ctx_t *a, cw_err_t *err)
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

/* ---- evolution ---------------------------------------------------------------- */

/* Adds a column for a new field whose first value is value (DDL in the open transaction). */
static int add_field_column(pgt_apply_ctx_t *a, const char *key, size_t len,
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

static int add_extra_column(pgt_apply_ctx_t *a, int64_t oplog_id, cw_err_t *err)
{
	cw_buf_t ddl = CW_BUF_INIT;
	cw_buf_appendf(&ddl, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS " PGT_EXTRA_COLUMN " jsonb",
	               a->tbl->qname);
	int rc = run_ddl(a, cw_buf_cstr(&ddl), "add column", PGT_EXTRA_COLUMN, NULL, NULL, "jsonb",
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

static int widen_column(pgt_apply_ctx_t *a, pgt_column_t *col, cw_pgc_kind_t wider,
                        int64_t oplog_id, cw_err_t *err)
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
int pgt_reconcile_record(pgt_apply_ctx_t *a, int64_t oplog_id, cw_err_t *err)
{
	pg_target_t *t = a->t;
	pgt_table_t *tbl = a->tbl;
	tbl->reconcile = false;
	cw_buf_t scratch = CW_BUF_INIT, ddl = CW_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < tbl->src.n && rc == 0; i++) {
		ssize_t c = pgt_find_column(tbl, tbl->src.names[i], strlen(tbl->src.names[i]));
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
static bool within_budget(const pgt_apply_ctx_t *a)
{
	const pgt_table_t *tbl = a->tbl;
	return tbl->ncols + tbl->nkey < (size_t)a->t->cfg->column_budget && tbl->nattrs < ATTRS_MAX;
}

/* Pass one: the columns every upsert of writes needs, added or widened before any row is copied. */
int pgt_evolve(pgt_apply_ctx_t *a, const cw_write_list_t *writes, const pgt_parsed_row_t *rows,
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
			if (!pgt_field_usable(field->key, field->key_len) ||
			    pgt_is_key_field(a->tbl, field->key, field->key_len))
				continue;
			const cw_pgc_read_t *value = &rows[i].values[f];
			ssize_t c = pgt_find_column(a->tbl, field->key, field->key_len);
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

