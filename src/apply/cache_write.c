/* This file contains the writes into one SQLite cache (cache_write.h). */
#include "apply/cache_write.h"

#include "core/buf.h"
#include "core/entity.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#define COMPONENT "sqlite"

#define INLINE_COLUMNS 32

/* The columns a write sets: presence per cache column, plus "_extra". */
typedef struct present {
	char *key;               /* '1'/'0' per column, then 'x' when _extra is set */
	json_t **values;         /* per column, borrowed from the data; NULL when absent */
	json_t *extra;           /* owned object of the other keys, or NULL */
	char key_inline[INLINE_COLUMNS + 2];       /* key and values live here for most shapes */
	json_t *values_inline[INLINE_COLUMNS + 1];
} present_t;

static bool is_reserved(const char *key)
{
	return strcmp(key, "id") == 0 || strcmp(key, "_version") == 0 ||
	       strcmp(key, "_oplog_id") == 0 || strcmp(key, "_extra") == 0;
}

static ssize_t column_index(const cw_cache_t *cache, const char *name)
{
	for (size_t i = 0; i < cache->ncolumns; i++)
		if (strcmp(cache->columns[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

/* Adds a dynamic column for key. SQLite result code. */
static int add_dynamic_column(cw_cache_t *cache, const char *key)
{
	char *sql = cw_xasprintf("ALTER TABLE \"%s\" ADD COLUMN \"%s\"", cache->name, key);
	int rc = sqlite3_exec(cache->db, sql, NULL, NULL, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return rc;
	cache->columns = cw_xrealloc(cache->columns, (cache->ncolumns + 1) * sizeof *cache->columns);
	cache->types = cw_xrealloc(cache->types, (cache->ncolumns + 1) * sizeof *cache->types);
	cache->columns[cache->ncolumns] = cw_xstrdup(key);
	cache->types[cache->ncolumns] = CW_COL_ANY;
	cache->ncolumns++;
	/* Statements prepared before keep working: their keys are shorter than the new ones. */
	return SQLITE_OK;
}

/* Fills p for data. SQLite result code (a dynamic column may be added). */
static int find_present(cw_cache_t *cache, json_t *data, present_t *p)
{
	if (cache->dynamic) {
		const char *key;
		json_t *value;
		json_object_foreach(data, key, value) {
			if (strcmp(key, "id") == 0)
				continue;
			if (!is_reserved(key) && cw_identifier_validate("column name", key, NULL) == 0) {
				if (column_index(cache, key) < 0) {
					int rc = add_dynamic_column(cache, key);
					if (rc != SQLITE_OK)
						return rc;
				}
			} else {
				if (p->extra == NULL)
					p->extra = json_object();
				json_object_set(p->extra, key, value);
			}
		}
	}
	if (cache->ncolumns <= INLINE_COLUMNS) {
		p->values = p->values_inline;
		p->key = p->key_inline;
	} else {
		p->values = cw_xcalloc(cache->ncolumns + 1, sizeof *p->values);
		p->key = cw_xcalloc(cache->ncolumns + 2, 1);
	}
	for (size_t i = 0; i < cache->ncolumns; i++) {
		p->values[i] = json_object_get(data, cache->columns[i]);
		p->key[i] = p->values[i] != NULL ? '1' : '0';
	}
	p->key[cache->ncolumns] = p->extra != NULL ? 'x' : '\0';
	p->key[cache->ncolumns + 1] = '\0';
	return SQLITE_OK;
}

static void present_clear(present_t *p)
{
	if (p->key != p->key_inline)
		free(p->key);
	if (p->values != p->values_inline)
		free(p->values);
	json_decref(p->extra);
}

static char *upsert_sql(const cw_cache_t *cache, const present_t *p)
{
	cw_buf_t sql = CW_BUF_INIT, values = CW_BUF_INIT, set = CW_BUF_INIT;
	int n = 1;
	cw_buf_appendf(&sql, "INSERT INTO \"%s\" (\"id\"", cache->name);
	cw_buf_append_str(&values, "?1");
	for (size_t i = 0; i < cache->ncolumns; i++) {
		if (p->key[i] != '1')
			continue;
		cw_buf_appendf(&sql, ", \"%s\"", cache->columns[i]);
		cw_buf_appendf(&values, ", ?%d", ++n);
		cw_buf_appendf(&set, "\"%s\" = excluded.\"%s\", ", cache->columns[i], cache->columns[i]);
	}
	if (p->extra != NULL) {
		cw_buf_append_str(&sql, ", \"_extra\"");
		cw_buf_appendf(&values, ", ?%d", ++n);
		cw_buf_append_str(&set, "\"_extra\" = json_patch(coalesce(\"_extra\", '{}'), "
		                        "excluded.\"_extra\"), ");
	}
	cw_buf_appendf(&sql, ", \"_version\", \"_oplog_id\") VALUES (%s, ?%d, ?%d) "
	               "ON CONFLICT (\"id\") DO UPDATE SET %s"
	               "\"_version\" = excluded.\"_version\", \"_oplog_id\" = excluded.\"_oplog_id\"",
	               cw_buf_cstr(&values), n + 1, n + 2, cw_buf_cstr(&set));
	cw_buf_free(&values);
	cw_buf_free(&set);
	return cw_buf_take(&sql);
}

/* The prepared upsert for p's columns, from the cache's statement cache. */
static int upsert_stmt(cw_cache_t *cache, const present_t *p, sqlite3_stmt **out)
{
	cw_cache_stmt_t *victim = &cache->stmts[0];
	for (size_t i = 0; i < CW_CACHE_STMTS; i++) {
		cw_cache_stmt_t *s = &cache->stmts[i];
		if (s->key != NULL && strcmp(s->key, p->key) == 0) {
			s->used = ++cache->stmt_clock;
			*out = s->stmt;
			return SQLITE_OK;
		}
		if (s->used < victim->used)
			victim = s;
	}
	char *sql = upsert_sql(cache, p);
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v3(cache->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_finalize(victim->stmt);
	free(victim->key);
	victim->key = cw_xstrdup(p->key);
	victim->stmt = stmt;
	victim->used = ++cache->stmt_clock;
	*out = stmt;
	return SQLITE_OK;
}

static void bind_json_text(sqlite3_stmt *stmt, int index, const json_t *value)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	sqlite3_bind_text(stmt, index, text, -1, free);
}

static void bind_value(sqlite3_stmt *stmt, int index, cw_column_type_t type, const json_t *value)
{
	if (json_is_null(value)) {
		sqlite3_bind_null(stmt, index);
		return;
	}
	if (type == CW_COL_JSONB) {
		bind_json_text(stmt, index, value);
		return;
	}
	switch (json_typeof(value)) {
	case JSON_STRING:
		sqlite3_bind_text(stmt, index, json_string_value(value), (int)json_string_length(value),
		                  SQLITE_STATIC);
		return;
	case JSON_INTEGER:
		if (type == CW_COL_TEXT)
			break;
		sqlite3_bind_int64(stmt, index, json_integer_value(value));
		return;
	case JSON_REAL:
		if (type == CW_COL_TEXT)
			break;
		sqlite3_bind_double(stmt, index, json_real_value(value));
		return;
	case JSON_TRUE:
	case JSON_FALSE:
		if (type == CW_COL_TEXT)
			break;
		sqlite3_bind_int(stmt, index, json_is_true(value));
		return;
	default:
		break;
	}
	bind_json_text(stmt, index, value);
}

/* One upsert. SQLite result code. */
static int write_upsert(cw_cache_t *cache, const cw_write_t *w)
{
	present_t p;
	sqlite3_stmt *stmt = NULL;
	p.key = NULL;
	p.values = NULL;
	p.extra = NULL;
	int rc = SQLITE_OK;
	if (w->replace) {
		sqlite3_bind_text(cache->del, 1, w->doc_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(cache->del) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(cache->db);
		sqlite3_reset(cache->del);
	}
	if (rc == SQLITE_OK)
		rc = find_present(cache, w->data, &p);
	if (rc == SQLITE_OK)
		rc = upsert_stmt(cache, &p, &stmt);
	if (rc == SQLITE_OK) {
		int n = 1;
		sqlite3_bind_text(stmt, 1, w->doc_id, -1, SQLITE_STATIC);
		for (size_t i = 0; i < cache->ncolumns; i++)
			if (p.key[i] == '1')
				bind_value(stmt, ++n, cache->types[i], p.values[i]);
		if (p.extra != NULL)
			bind_json_text(stmt, ++n, p.extra);
		sqlite3_bind_int64(stmt, n + 1, w->version);
		sqlite3_bind_int64(stmt, n + 2, w->oplog_id);
		rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(cache->db);
		sqlite3_reset(stmt);   /* every parameter is bound again by the next use */
	}
	present_clear(&p);
	return rc;
}

static int step_reset(sqlite3 *db, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
	sqlite3_reset(stmt);
	return rc;
}

int cw_cache_apply(cw_cache_t *cache, const cw_write_list_t *writes, int64_t upto, bool *corrupt,
                   cw_err_t *err)
{
	if (corrupt != NULL)
		*corrupt = false;
	int rc = step_reset(cache->db, cache->begin);
	for (size_t i = 0; i < writes->len && rc == SQLITE_OK; i++) {
		const cw_write_t *w = &writes->items[i];
		switch (w->kind) {
		case CW_WRITE_UPSERT:
			rc = write_upsert(cache, w);
			break;
		case CW_WRITE_DELETE:
			sqlite3_bind_text(cache->del, 1, w->doc_id, -1, SQLITE_STATIC);
			rc = step_reset(cache->db, cache->del);
			break;
		case CW_WRITE_SWEEP:
			sqlite3_bind_int64(cache->sweep, 1, w->version);
			rc = step_reset(cache->db, cache->sweep);
			break;
		}
	}
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(cache->set_applied, 1, upto);
		rc = step_reset(cache->db, cache->set_applied);
	}
	if (rc == SQLITE_OK)
		rc = step_reset(cache->db, cache->commit);
	if (rc == SQLITE_OK) {
		cache->applied = upto;
		return 0;
	}
	cw_err_set(err, CW_EDB, COMPONENT, "could not apply to cache \"%s\": %s", cache->name,
	           sqlite3_errmsg(cache->db));
	if (corrupt != NULL)
		*corrupt = cw_cachedb_is_corruption(rc);
	if (!sqlite3_get_autocommit(cache->db))
		sqlite3_exec(cache->db, "ROLLBACK", NULL, NULL, NULL);
	return CW_EDB;
}
