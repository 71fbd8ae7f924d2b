/* This file contains the writes into one SQLite cache (cache_write.h). */
#include "apply/cache_write.h"

#include "core/buf.h"
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

/* One upsert from parsed data. SQLite result code. */
static int upsert_json(cw_cache_t *cache, const cw_write_t *w, json_t *data)
{
	present_t p;
	sqlite3_stmt *stmt = NULL;
	p.key = NULL;
	p.values = NULL;
	p.extra = NULL;
	int rc = find_present(cache, data, &p);
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

/* ---- the fast path: bind straight from the JSON text of one change ---- */

#define MAX_FIELDS 64
#define FALLBACK (-1)     /* not handled here: parse the text with jansson instead */
#define BAD_DATA (-2)     /* the data is not a JSON object */

typedef struct field {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
	char kind;            /* 's' string, 'n' number, 't' true, 'f' false, 'z' null, 'o' object/array */
	bool escaped;         /* a string value holding a backslash escape */
} field_t;

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

/* Past the string starting at s (on the quote); NULL when unterminated. */
static const char *skip_string(const char *s, bool *escaped)
{
	for (s++; *s != '"'; s++) {
		if (*s == '\0')
			return NULL;
		if (*s == '\\') {
			*escaped = true;
			if (*++s == '\0')
				return NULL;
		}
	}
	return s + 1;
}

/* Past the object or array starting at s; NULL when malformed. */
static const char *skip_nested(const char *s)
{
	int depth = 0;
	bool escaped = false;
	do {
		if (*s == '"') {
			s = skip_string(s, &escaped);
			if (s == NULL)
				return NULL;
			continue;
		}
		if (*s == '\0')
			return NULL;
		if (*s == '{' || *s == '[')
			depth++;
		else if (*s == '}' || *s == ']')
			depth--;
		s++;
	} while (depth > 0);
	return s;
}

/*
 * Splits the top-level object text into fields without allocating. FALLBACK
 * for what this scanner leaves to jansson (escaped keys, too many fields,
 * anything unexpected, so jansson reports real errors).
 */
static int scan_object(const char *s, field_t *fields, size_t *nfields)
{
	size_t n = 0;
	s = skip_ws(s);
	if (*s++ != '{')
		return FALLBACK;
	s = skip_ws(s);
	if (*s == '}')
		return *skip_ws(s + 1) == '\0' ? (*nfields = 0, SQLITE_OK) : FALLBACK;
	for (;;) {
		if (n == MAX_FIELDS || *s != '"')
			return FALLBACK;
		field_t *f = &fields[n++];
		bool escaped = false;
		const char *end = skip_string(s, &escaped);
		if (end == NULL || escaped)
			return FALLBACK;
		f->key = s + 1;
		f->key_len = (size_t)(end - s - 2);
		s = skip_ws(end);
		if (*s++ != ':')
			return FALLBACK;
		s = skip_ws(s);
		f->value = s;
		f->escaped = false;
		if (*s == '"') {
			f->kind = 's';
			end = skip_string(s, &f->escaped);
		} else if (*s == '{' || *s == '[') {
			f->kind = 'o';
			end = skip_nested(s);
		} else if (strncmp(s, "true", 4) == 0) {
			f->kind = 't';
			end = s + 4;
		} else if (strncmp(s, "false", 5) == 0) {
			f->kind = 'f';
			end = s + 5;
		} else if (strncmp(s, "null", 4) == 0) {
			f->kind = 'z';
			end = s + 4;
		} else {
			f->kind = 'n';
			end = s;
			while (*end == '-' || *end == '+' || *end == '.' || *end == 'e' || *end == 'E' ||
			       (*end >= '0' && *end <= '9'))
				end++;
			if (end == s)
				return FALLBACK;
		}
		if (end == NULL)
			return FALLBACK;
		f->value_len = (size_t)(end - s);
		s = skip_ws(end);
		if (*s == ',') {
			s = skip_ws(s + 1);
			continue;
		}
		if (*s == '}' && *skip_ws(s + 1) == '\0')
			break;
		return FALLBACK;
	}
	*nfields = n;
	return SQLITE_OK;
}

/* The JSON text of span without whitespace outside strings, owned (sqlite3 frees it). */
static char *compact(const char *span, size_t len)
{
	char *out = cw_xmalloc(len + 1), *o = out;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = span[i];
		if (in_string) {
			*o++ = c;
			if (c == '\\' && i + 1 < len)
				*o++ = span[++i];
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
			*o++ = c;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			*o++ = c;
		}
	}
	*o = '\0';
	return out;
}

/* Binds one field to a column of type. FALLBACK when it needs a real parser. */
static int bind_field(sqlite3_stmt *stmt, int index, cw_column_type_t type, const field_t *f)
{
	if (f->kind == 'z')
		return sqlite3_bind_null(stmt, index), SQLITE_OK;
	if (type == CW_COL_JSONB || f->kind == 'o') {
		if (f->kind == 'o')
			sqlite3_bind_text(stmt, index, compact(f->value, f->value_len), -1, free);
		else
			sqlite3_bind_text(stmt, index, f->value, (int)f->value_len, SQLITE_STATIC);
		return SQLITE_OK;
	}
	if (f->kind == 's') {
		if (f->escaped)
			return FALLBACK;
		sqlite3_bind_text(stmt, index, f->value + 1, (int)f->value_len - 2, SQLITE_STATIC);
		return SQLITE_OK;
	}
	if (type == CW_COL_TEXT) {   /* a number or boolean in a text column: its JSON text */
		sqlite3_bind_text(stmt, index, f->value, (int)f->value_len, SQLITE_STATIC);
		return SQLITE_OK;
	}
	if (f->kind == 't' || f->kind == 'f')
		return sqlite3_bind_int(stmt, index, f->kind == 't'), SQLITE_OK;
	char number[64];
	if (f->value_len >= sizeof number)
		return FALLBACK;
	memcpy(number, f->value, f->value_len);
	number[f->value_len] = '\0';
	char *end = NULL;
	if (strpbrk(number, ".eE") == NULL) {
		errno = 0;
		long long value = strtoll(number, &end, 10);
		if (errno != 0 || *end != '\0')
			return FALLBACK;
		sqlite3_bind_int64(stmt, index, value);
	} else {
		double value = strtod(number, &end);
		if (*end != '\0')
			return FALLBACK;
		sqlite3_bind_double(stmt, index, value);
	}
	return SQLITE_OK;
}

/*
 * Whether every key of a dynamic table's row (but "id", the key column) is
 * one of its columns already, so the row can be bound straight from its text.
 */
static bool dynamic_fields_known(const cw_cache_t *cache, const field_t *fields, size_t nfields)
{
	for (size_t k = 0; k < nfields; k++) {
		if (fields[k].key_len == 2 && memcmp(fields[k].key, "id", 2) == 0)
			continue;
		bool known = false;
		for (size_t i = 0; i < cache->ncolumns && !known; i++)
			known = strlen(cache->columns[i]) == fields[k].key_len &&
			        memcmp(fields[k].key, cache->columns[i], fields[k].key_len) == 0;
		if (!known)
			return false;
	}
	return true;
}

/* One upsert straight from w->raw. SQLite result code, or FALLBACK. */
static int upsert_raw(cw_cache_t *cache, const cw_write_t *w)
{
	field_t fields[MAX_FIELDS];
	size_t nfields = 0;
	if (cache->ncolumns > INLINE_COLUMNS || scan_object(w->raw, fields, &nfields) != SQLITE_OK)
		return FALLBACK;
	present_t p;
	const field_t *by_column[INLINE_COLUMNS];
	p.key = p.key_inline;
	p.values = NULL;
	p.extra = NULL;
	for (size_t i = 0; i < cache->ncolumns; i++) {
		by_column[i] = NULL;
		size_t len = strlen(cache->columns[i]);
		for (size_t k = 0; k < nfields; k++)
			if (fields[k].key_len == len && memcmp(fields[k].key, cache->columns[i], len) == 0)
				by_column[i] = &fields[k];   /* the last of duplicate keys wins, as in jansson */
		p.key[i] = by_column[i] != NULL ? '1' : '0';
	}
	p.key[cache->ncolumns] = '\0';
	if (cache->dynamic && !dynamic_fields_known(cache, fields, nfields))
		return FALLBACK;   /* a new column to add, or a key for _extra: the parsed path does it */
	sqlite3_stmt *stmt = NULL;
	int rc = upsert_stmt(cache, &p, &stmt);
	if (rc != SQLITE_OK)
		return rc;
	int n = 1;
	sqlite3_bind_text(stmt, 1, w->doc_id, -1, SQLITE_STATIC);
	for (size_t i = 0; i < cache->ncolumns; i++) {
		if (by_column[i] == NULL)
			continue;
		if (bind_field(stmt, ++n, cache->types[i], by_column[i]) == FALLBACK) {
			sqlite3_reset(stmt);
			sqlite3_clear_bindings(stmt);   /* drops bound text that may point at nothing later */
			return FALLBACK;
		}
	}
	sqlite3_bind_int64(stmt, n + 1, w->version);
	sqlite3_bind_int64(stmt, n + 2, w->oplog_id);
	rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(cache->db);
	sqlite3_reset(stmt);
	return rc;
}

static json_t *parse_raw(const char *raw)
{
	json_error_t jerr;
	json_t *data = json_loads(raw, JSON_DECODE_ANY, &jerr);
	if (data == NULL)   /* an integer past 64 bits: keep it as a double */
		data = json_loads(raw, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
	if (data != NULL && !json_is_object(data)) {
		json_decref(data);
		data = NULL;
	}
	return data;
}

/* One upsert. SQLite result code or BAD_DATA. */
static int write_upsert(cw_cache_t *cache, const cw_write_t *w)
{
	int rc = SQLITE_OK;
	if (w->replace) {
		sqlite3_bind_text(cache->del, 1, w->doc_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(cache->del) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(cache->db);
		sqlite3_reset(cache->del);
	}
	if (rc != SQLITE_OK)
		return rc;
	if (w->data != NULL)
		return upsert_json(cache, w, w->data);
	if ((rc = upsert_raw(cache, w)) != FALLBACK)
		return rc;
	json_t *data = parse_raw(w->raw);
	if (data == NULL)
		return BAD_DATA;
	rc = upsert_json(cache, w, data);
	json_decref(data);
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
	for (size_t i = 0; i < writes->len && rc == SQLITE_OK; i++) {
		const cw_write_t *w = &writes->items[i];
		failed_id = w->oplog_id;
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
	if (rc == BAD_DATA)
		cw_err_set(err, CW_EINVAL, COMPONENT, "could not apply to cache \"%s\": the data of "
		           "oplog row %lld is not a JSON object", cache->name, (long long)failed_id);
	else
		cw_err_set(err, CW_EDB, COMPONENT, "could not apply to cache \"%s\": %s", cache->name,
		           sqlite3_errmsg(cache->db));
	if (corrupt != NULL)
		*corrupt = cw_cachedb_is_corruption(rc);
	if (!sqlite3_get_autocommit(cache->db))
		sqlite3_exec(cache->db, "ROLLBACK", NULL, NULL, NULL);
	return rc == BAD_DATA ? CW_EINVAL : CW_EDB;
}
