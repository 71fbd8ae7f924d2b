/* This file contains the writes into one SQLite cache (cache_write.h). */
#include "apply/cache_write.h"

#include "apply/layout.h"
#include "apply/typed_value.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/entity.h"
#include "core/failpoint.h"
#include "core/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "sqlite"

#define INLINE_COLUMNS 32

/* The columns a write sets: presence per cache column, plus "_extra". */
typedef struct present {
	char *key;               /* '1'/'0' per column, then 'x' when _extra is set */
	const cw_json_field_t **values;   /* per column, borrowed from the fields; NULL when absent */
	cw_buf_t extra;          /* JSON object text of the keys without a column, or empty */
	char key_inline[INLINE_COLUMNS + 2];       /* key and values live here for most shapes */
	const cw_json_field_t *values_inline[INLINE_COLUMNS + 1];
} present_t;

static ssize_t column_index(const cw_cache_t *cache, const char *name, size_t len)
{
	for (size_t i = 0; i < cache->ncolumns; i++)
		if (strlen(cache->columns[i]) == len && memcmp(cache->columns[i], name, len) == 0)
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
	cw_cache_keymap_clear(&cache->keymap);
	/* Statements prepared before keep working: their keys are shorter than the new ones. */
	return SQLITE_OK;
}


/* Where key stands in the source table's column order (past the end when unknown). */
static size_t source_rank(const cw_cache_t *cache, const cw_json_field_t *f)
{
	for (size_t i = 0; i < cache->nsource_order; i++)
		if (strlen(cache->source_order[i]) == f->key_len &&
		    memcmp(cache->source_order[i], f->key, f->key_len) == 0)
			return i;
	return cache->nsource_order;
}

/*
 * Adds a column for each key of fields that becomes one and is new, in the
 * source table's column order (a row written before hub schema version 8
 * holds jsonb's key order, a transformation may have its own).
 * SQLite result code.
 */
static int add_new_columns(cw_cache_t *cache, const cw_json_fields_t *fields)
{
	size_t *fresh = NULL, nfresh = 0;
	for (size_t k = 0; k < fields->len; k++) {
		const cw_json_field_t *f = &fields->items[k];
		/* "id" is reserved: the primary key, never a column of its own. */
		if (!cw_layout_key_is_column(f->key, f->key_len) ||
		    column_index(cache, f->key, f->key_len) >= 0)
			continue;
		if (fresh == NULL)
			fresh = cw_xmalloc(fields->len * sizeof *fresh);
		/* insertion by rank: a handful of keys, once per new column */
		size_t rank = source_rank(cache, f), j = nfresh++;
		for (; j > 0 && rank < source_rank(cache, &fields->items[fresh[j - 1]]); j--)
			fresh[j] = fresh[j - 1];
		fresh[j] = k;
	}
	int rc = SQLITE_OK;
	for (size_t i = 0; i < nfresh && rc == SQLITE_OK; i++) {
		char *name = cw_xstrndup(fields->items[fresh[i]].key, fields->items[fresh[i]].key_len);
		rc = add_dynamic_column(cache, name);
		free(name);
	}
	free(fresh);
	return rc;
}

/* Whether the keymap was made for fields' keys, in their order. */
static bool keymap_matches(const cw_cache_keymap_t *m, const cw_json_fields_t *fields)
{
	if (m->nfields == 0 || m->nfields != fields->len)
		return false;
	const char *key = m->keys;
	for (size_t k = 0; k < fields->len; k++) {
		const cw_json_field_t *f = &fields->items[k];
		if (m->key_lens[k] != f->key_len || memcmp(key, f->key, f->key_len) != 0)
			return false;
		key += f->key_len;
	}
	return true;
}

/*
 * Makes the cache's keymap for fields: which field sets each column (the
 * field of the column's name), which fields go into "_extra" (a dynamic
 * table's keys that are neither the primary key nor a column name of their
 * own), and the statement key: '1'/'0' per column, then 'x' when "_extra" is
 * set.
 */
static void keymap_make(cw_cache_t *cache, const cw_json_fields_t *fields)
{
	cw_cache_keymap_t *m = &cache->keymap;
	cw_cache_keymap_clear(m);
	size_t keys_len = 0;
	for (size_t k = 0; k < fields->len; k++)
		keys_len += fields->items[k].key_len;
	m->key_lens = cw_xcalloc(fields->len + 1, sizeof *m->key_lens);
	m->keys = cw_xmalloc(keys_len + 1);
	m->extra = cw_xcalloc(fields->len + 1, sizeof *m->extra);
	m->field_of = cw_xcalloc(cache->ncolumns + 1, sizeof *m->field_of);
	m->present = cw_xcalloc(cache->ncolumns + 2, 1);
	bool any_extra = false;
	char *key = m->keys;
	for (size_t k = 0; k < fields->len; k++) {
		const cw_json_field_t *f = &fields->items[k];
		m->key_lens[k] = f->key_len;
		memcpy(key, f->key, f->key_len);
		key += f->key_len;
		/* The primary key itself, or a column of its own, stays out of "_extra". */
		m->extra[k] = cache->dynamic && !cw_layout_key_is_id(f->key, f->key_len) &&
		              !cw_layout_key_is_column(f->key, f->key_len);
		any_extra = any_extra || m->extra[k];
	}
	for (size_t i = 0; i < cache->ncolumns; i++) {
		const cw_json_field_t *f =
			cw_json_fields_get(fields, cache->columns[i], strlen(cache->columns[i]));
		m->field_of[i] = f != NULL ? f - fields->items : -1;
		m->present[i] = f != NULL ? '1' : '0';
	}
	m->present[cache->ncolumns] = any_extra ? 'x' : '\0';
	m->nfields = fields->len;
}

/* The JSON object of the fields the keymap sends to "_extra", each value's own text. */
static void extra_object(const cw_cache_keymap_t *m, const cw_json_fields_t *fields,
                         cw_buf_t *out)
{
	cw_json_t w;
	cw_json_init(&w, out, CW_JSON_DEFAULT);
	cw_json_object_begin(&w, NULL);
	for (size_t k = 0; k < fields->len; k++) {
		const cw_json_field_t *f = &fields->items[k];
		if (!m->extra[k])
			continue;
		cw_json_key_len(&w, f->key, f->key_len, NULL);
		cw_buf_t value = CW_BUF_INIT;   /* the value's own text, digits untouched */
		cw_json_compact(f->value, f->value_len, &value);
		cw_json_raw(&w, value.data, value.len, NULL);
		cw_buf_free(&value);
	}
	cw_json_object_end(&w, NULL);
}

/* Fills p for fields. SQLite result code (a dynamic column may be added). */
static int find_present(cw_cache_t *cache, const cw_json_fields_t *fields, present_t *p)
{
	cw_cache_keymap_t *m = &cache->keymap;
	if (!keymap_matches(m, fields)) {
		if (cache->dynamic) {
			int rc = add_new_columns(cache, fields);
			if (rc != SQLITE_OK)
				return rc;
		}
		keymap_make(cache, fields);
	}
	if (m->present[cache->ncolumns] == 'x')
		extra_object(m, fields, &p->extra);
	if (cache->ncolumns <= INLINE_COLUMNS) {
		p->values = p->values_inline;
		p->key = p->key_inline;
	} else {
		p->values = cw_xcalloc(cache->ncolumns + 1, sizeof *p->values);
		p->key = cw_xcalloc(cache->ncolumns + 2, 1);
	}
	for (size_t i = 0; i < cache->ncolumns; i++)
		p->values[i] = m->field_of[i] >= 0 ? &fields->items[m->field_of[i]] : NULL;
	memcpy(p->key, m->present, cache->ncolumns + 2);
	return SQLITE_OK;
}

static void present_clear(present_t *p)
{
	if (p->key != p->key_inline)
		free(p->key);
	if (p->values != p->values_inline)
		free((void *)p->values);
	cw_buf_free(&p->extra);
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
	if (p->extra.len > 0) {
		cw_buf_append_str(&sql, ", \"" CW_LAYOUT_EXTRA_COLUMN "\"");
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

/* Binds one field to a column of type (apply/typed_value.h decides the value). */
static void bind_field(sqlite3_stmt *stmt, int index, cw_column_type_t type,
                       cw_decimal_mode_t mode, const cw_json_field_t *field)
{
	cw_typed_value_t value;
	cw_typed_value_from_field(field, type, mode, &value);
	switch (value.kind) {
	case CW_TYPED_NULL:
		sqlite3_bind_null(stmt, index);
		break;
	case CW_TYPED_INTEGER:
		sqlite3_bind_int64(stmt, index, value.integer);
		break;
	case CW_TYPED_REAL:
		sqlite3_bind_double(stmt, index, value.real);
		break;
	case CW_TYPED_TEXT:
		if (value.owned != NULL)
			sqlite3_bind_text(stmt, index, value.owned, (int)value.text_len, free);
		else
			sqlite3_bind_text(stmt, index, value.text, (int)value.text_len, SQLITE_STATIC);
		break;
	}
}

/* One upsert from its fields. SQLite result code. */
static int upsert_fields(cw_cache_t *cache, const cw_write_t *w, const cw_json_fields_t *fields)
{
	present_t p;
	sqlite3_stmt *stmt = NULL;
	p.key = NULL;
	p.values = NULL;
	p.extra = (cw_buf_t)CW_BUF_INIT;
	int rc = find_present(cache, fields, &p);
	if (rc == SQLITE_OK)
		rc = upsert_stmt(cache, &p, &stmt);
	if (rc == SQLITE_OK) {
		int n = 1;
		sqlite3_bind_text(stmt, 1, w->doc_id, -1, SQLITE_STATIC);
		for (size_t i = 0; i < cache->ncolumns; i++)
			if (p.key[i] == '1')
				bind_field(stmt, ++n, cache->types[i], cache->decimal_mode, p.values[i]);
		if (p.extra.len > 0)
			sqlite3_bind_text(stmt, ++n, p.extra.data, (int)p.extra.len, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, n + 1, w->version);
		sqlite3_bind_int64(stmt, n + 2, w->oplog_id);
		rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(cache->db);
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);   /* bound text borrowed from this write goes with it */
	}
	present_clear(&p);
	return rc;
}

/* One upsert. SQLite result code; *bad_data when the data is not a JSON object (SQLITE_OK). */
static int write_upsert(cw_cache_t *cache, const cw_write_t *w, bool *bad_data)
{
	int rc = SQLITE_OK;
	if (w->replace) {
		sqlite3_bind_text(cache->del, 1, w->doc_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(cache->del) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(cache->db);
		sqlite3_reset(cache->del);
	}
	if (rc != SQLITE_OK)
		return rc;
	if (w->fields != NULL)
		return upsert_fields(cache, w, w->fields);
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	if (cw_json_fields_parse(&fields, w->raw, NULL) != 0)
		*bad_data = true;
	else
		rc = upsert_fields(cache, w, &fields);
	cw_json_fields_clear(&fields);
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
	int64_t failed_id = 0;
	bool bad_data = false;
	for (size_t i = 0; i < writes->len && rc == SQLITE_OK && !bad_data; i++) {
		const cw_write_t *w = &writes->items[i];
		failed_id = w->oplog_id;
		switch (w->kind) {
		case CW_WRITE_UPSERT:
			rc = write_upsert(cache, w, &bad_data);
			break;
		case CW_WRITE_DELETE:
			sqlite3_bind_text(cache->del, 1, w->doc_id, -1, SQLITE_STATIC);
			rc = step_reset(cache->db, cache->del);
			break;
		case CW_WRITE_SWEEP:
			sqlite3_bind_int64(cache->sweep, 1, w->version);
			rc = step_reset(cache->db, cache->sweep);
			if (rc == SQLITE_OK && w->version > cache->swept_version)
				cache->swept_version = w->version;
			break;
		}
	}
	if (bad_data) {
		sqlite3_exec(cache->db, "ROLLBACK", NULL, NULL, NULL);
		return cw_err_set(err, CW_EINVAL, COMPONENT, "could not apply to cache \"%s\": the data "
		                  "of oplog row %lld is not a JSON object", cache->name,
		                  (long long)failed_id);
	}
	if (rc == SQLITE_OK && CW_FAILPOINT("inside_sqlite_apply")) {
		/* As if the disk failed inside the transaction: nothing of it may stay. */
		sqlite3_exec(cache->db, "ROLLBACK", NULL, NULL, NULL);
		return cw_err_set(err, CW_EDB, COMPONENT,
		                  "could not apply to cache \"%s\": failpoint inside_sqlite_apply",
		                  cache->name);
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

/* Forgets every prepared upsert: they name columns by position. */
static void forget_upserts(cw_cache_t *cache)
{
	for (size_t i = 0; i < CW_CACHE_STMTS; i++) {
		sqlite3_finalize(cache->stmts[i].stmt);
		free(cache->stmts[i].key);
	}
	memset(cache->stmts, 0, sizeof cache->stmts);
}

static bool listed(char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

int cw_cache_drop_columns_outside(cw_cache_t *cache, char *const *keep, size_t nkeep,
                                  cw_buf_t *handled, cw_err_t *err)
{
	if (!cache->dynamic || nkeep == 0)
		return 0;
	for (size_t i = 0; i < cache->ncolumns;) {
		const char *column = cache->columns[i];
		if (strcmp(column, CW_LAYOUT_EXTRA_COLUMN) == 0 || listed(keep, nkeep, column)) {
			i++;
			continue;
		}
		if (handled->len > 0)
			cw_buf_append_char(handled, ',');
		cw_buf_append_str(handled, column);
		char *sql = cw_xasprintf("ALTER TABLE \"%s\" DROP COLUMN \"%s\"", cache->name, column);
		int rc = sqlite3_exec(cache->db, sql, NULL, NULL, NULL);
		free(sql);
		if (rc != SQLITE_OK) {
			/* An index (made by a reader) names it: keep the column, drop its values. */
			sql = cw_xasprintf("UPDATE \"%s\" SET \"%s\" = NULL", cache->name, column);
			rc = sqlite3_exec(cache->db, sql, NULL, NULL, NULL);
			free(sql);
			if (rc != SQLITE_OK)
				return cw_err_set(err, CW_EDB, COMPONENT,
				                  "could not remove column \"%s\" of cache \"%s\": %s",
				                  column, cache->name, sqlite3_errmsg(cache->db));
			i++;
			continue;
		}
		forget_upserts(cache);
		cw_cache_keymap_clear(&cache->keymap);
		free(cache->columns[i]);
		memmove(&cache->columns[i], &cache->columns[i + 1],
		        (cache->ncolumns - i - 1) * sizeof *cache->columns);
		memmove(&cache->types[i], &cache->types[i + 1],
		        (cache->ncolumns - i - 1) * sizeof *cache->types);
		cache->ncolumns--;
	}
	return 0;
}
