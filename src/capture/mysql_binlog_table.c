/*
 * This file contains the table half of the binlog decoder declared in
 * mysql_binlog.h: the table map cache, the names and keys a source gives
 * (cw_binlog_set_table), and TABLE_MAP events with their column metadata
 * and optional metadata (binlog_row_metadata).
 */
#include "capture/mysql_binlog_internal.h"

#include "core/mem.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Optional metadata fields of TABLE_MAP. */
enum {
	META_SIGNEDNESS = 1, META_DEFAULT_CHARSET, META_COLUMN_CHARSET, META_COLUMN_NAME,
	META_SET_STR_VALUE, META_ENUM_STR_VALUE, META_GEOMETRY_TYPE, META_SIMPLE_PRIMARY_KEY,
	META_PRIMARY_KEY_WITH_PREFIX, META_ENUM_AND_SET_DEFAULT_CHARSET,
	META_ENUM_AND_SET_COLUMN_CHARSET,
};

/* ---- table cache and hints ---------------------------------------------- */

void cw_binlog_table_free(cw_binlog_table_t *table)
{
	if (table == NULL)
		return;
	for (uint32_t i = 0; i < table->ncolumns; i++) {
		cw_binlog_column_t *col = &table->columns[i];
		free(col->name);
		for (uint32_t k = 0; k < col->nvalues; k++)
			free(col->values[k]);
		free(col->values);
	}
	free(table->columns);
	free(table->key);
	free(table->schema);
	free(table->name);
	free(table);
}

void cw_binlog_hint_clear(cw_binlog_hint_t *hint)
{
	for (uint32_t i = 0; hint->columns != NULL && i < hint->ncolumns; i++)
		free(hint->columns[i]);
	free(hint->columns);
	free(hint->key);
	free(hint->schema);
	free(hint->table);
}

static cw_binlog_hint_t *hint_find(const cw_binlog_t *dec, const char *schema, const char *table)
{
	for (size_t i = 0; i < dec->nhints; i++)
		if (strcmp(dec->hints[i].schema, schema) == 0 && strcmp(dec->hints[i].table, table) == 0)
			return &dec->hints[i];
	return NULL;
}

int cw_binlog_set_table(cw_binlog_t *dec, const char *schema, const char *table,
	const char *const *columns, uint32_t ncolumns, const uint16_t *key, uint32_t nkey,
	cw_err_t *err)
{
	if (nkey > CW_BINLOG_MAX_COLUMNS || ncolumns > CW_BINLOG_MAX_COLUMNS)
		return cw_err_set(err, CW_EINVAL, CW_BINLOG_DOMAIN,
			"table \"%s.%s\": too many columns", schema, table);
	cw_binlog_hint_t *hint = hint_find(dec, schema, table);
	if (hint != NULL) {
		cw_binlog_hint_clear(hint);
	} else {
		dec->hints = cw_xrealloc(dec->hints, (dec->nhints + 1) * sizeof *dec->hints);
		hint = &dec->hints[dec->nhints++];
	}
	memset(hint, 0, sizeof *hint);
	hint->schema = cw_xstrdup(schema);
	hint->table = cw_xstrdup(table);
	if (columns != NULL) {
		hint->columns = cw_xcalloc(ncolumns ? ncolumns : 1, sizeof *hint->columns);
		for (uint32_t i = 0; i < ncolumns; i++)
			hint->columns[i] = cw_xstrdup(columns[i]);
		hint->ncolumns = ncolumns;
	}
	hint->key = cw_xcalloc(nkey ? nkey : 1, sizeof *hint->key);
	memcpy(hint->key, key, nkey * sizeof *key);
	hint->nkey = nkey;
	/* applies from the next TABLE_MAP: forget what is cached for the table */
	for (size_t i = 0; i < dec->ntables; i++)
		if (strcmp(dec->tables[i].table->schema, schema) == 0 &&
		    strcmp(dec->tables[i].table->name, table) == 0)
			dec->tables[i].body_len = 0;
	return 0;
}

cw_binlog_cached_t *cw_binlog_cache_find(const cw_binlog_t *dec, uint64_t table_id)
{
	for (size_t i = 0; i < dec->ntables; i++)
		if (dec->tables[i].table->table_id == table_id)
			return &dec->tables[i];
	return NULL;
}

/* Takes over table, replacing the entry of its id or of its name. */
static void cache_put(cw_binlog_t *dec, cw_binlog_table_t *table, const uint8_t *body, size_t len)
{
	cw_binlog_cached_t *slot = cw_binlog_cache_find(dec, table->table_id);
	for (size_t i = 0; slot == NULL && i < dec->ntables; i++)
		if (strcmp(dec->tables[i].table->schema, table->schema) == 0 &&
		    strcmp(dec->tables[i].table->name, table->name) == 0)
			slot = &dec->tables[i];
	if (slot == NULL) {
		if (dec->ntables == dec->tables_cap) {
			dec->tables_cap = dec->tables_cap ? dec->tables_cap * 2 : 8;
			dec->tables = cw_xrealloc(dec->tables, dec->tables_cap * sizeof *dec->tables);
		}
		slot = &dec->tables[dec->ntables++];
		memset(slot, 0, sizeof *slot);
	}
	cw_binlog_table_free(slot->table);
	free(slot->body);
	slot->table = table;
	slot->body = cw_xmalloc(len ? len : 1);
	memcpy(slot->body, body, len);
	slot->body_len = len;
}

/* ---- TABLE_MAP ------------------------------------------------------------ */

static int read_name(cw_binlog_reader_t *r, const char *what, char **name)
{
	uint64_t len;
	if (cw_binlog_read_uint(r, 1, what, &len) || cw_binlog_need(r, len + 1, what))
		return CW_EPROTO;
	const char *s = (const char *)r->bytes + r->pos;
	if (len == 0 || s[len] != '\0' || memchr(s, '\0', len) != NULL)
		return cw_binlog_fail(r, r->pos, "invalid %s", what);
	*name = cw_xstrndup(s, len);
	r->pos += len + 1;
	return 0;
}

/* The per-column metadata of the type block, normalised (see cw_binlog_column_t). */
static int read_column_meta(cw_binlog_reader_t *r, cw_binlog_column_t *col)
{
	uint64_t v;
	switch (col->type) {
	case CW_MYSQL_TYPE_FLOAT: case CW_MYSQL_TYPE_DOUBLE: case CW_MYSQL_TYPE_BLOB:
	case CW_MYSQL_TYPE_GEOMETRY: case CW_MYSQL_TYPE_JSON: case CW_MYSQL_TYPE_TIMESTAMP2:
	case CW_MYSQL_TYPE_DATETIME2: case CW_MYSQL_TYPE_TIME2:
	case CW_MYSQL_TYPE_TINY_BLOB: case CW_MYSQL_TYPE_MEDIUM_BLOB: case CW_MYSQL_TYPE_LONG_BLOB:
		if (cw_binlog_read_uint(r, 1, "column metadata", &v))
			return CW_EPROTO;
		col->meta = (uint16_t)v;
		return 0;
	case CW_MYSQL_TYPE_VARCHAR: case CW_MYSQL_TYPE_VAR_STRING:
		if (cw_binlog_read_uint(r, 2, "column metadata", &v))
			return CW_EPROTO;
		col->meta = (uint16_t)v;
		return 0;
	case CW_MYSQL_TYPE_BIT:
		if (cw_binlog_need(r, 2, "column metadata"))
			return CW_EPROTO;
		col->meta = (uint16_t)(r->bytes[r->pos + 1] * 8 + r->bytes[r->pos]);   /* bits */
		r->pos += 2;
		return 0;
	case CW_MYSQL_TYPE_NEWDECIMAL:
		if (cw_binlog_need(r, 2, "column metadata"))
			return CW_EPROTO;
		col->meta = (uint16_t)(r->bytes[r->pos] << 8 | r->bytes[r->pos + 1]); /* precision, scale */
		r->pos += 2;
		return 0;
	case CW_MYSQL_TYPE_STRING:
	case CW_MYSQL_TYPE_ENUM:
	case CW_MYSQL_TYPE_SET: {
		if (cw_binlog_need(r, 2, "column metadata"))
			return CW_EPROTO;
		uint8_t real = r->bytes[r->pos], len = r->bytes[r->pos + 1];
		r->pos += 2;
		if (real == CW_MYSQL_TYPE_ENUM || real == CW_MYSQL_TYPE_SET) {
			col->type = real;
			col->meta = len;   /* bytes of the index or bitmap */
		} else {
			col->type = CW_MYSQL_TYPE_STRING;
			col->meta = (uint16_t)((((real & 0x30) ^ 0x30) << 4) | len);   /* max bytes */
		}
		return 0;
	}
	default:
		return 0;
	}
}

bool cw_binlog_is_numeric(uint8_t type)
{
	switch (type) {
	case CW_MYSQL_TYPE_TINY: case CW_MYSQL_TYPE_SHORT: case CW_MYSQL_TYPE_INT24:
	case CW_MYSQL_TYPE_LONG: case CW_MYSQL_TYPE_LONGLONG: case CW_MYSQL_TYPE_FLOAT:
	case CW_MYSQL_TYPE_DOUBLE: case CW_MYSQL_TYPE_DECIMAL: case CW_MYSQL_TYPE_NEWDECIMAL:
		return true;
	default:
		return false;
	}
}

bool cw_binlog_is_character(uint8_t type)
{
	switch (type) {
	case CW_MYSQL_TYPE_STRING: case CW_MYSQL_TYPE_VAR_STRING: case CW_MYSQL_TYPE_VARCHAR:
	case CW_MYSQL_TYPE_BLOB: case CW_MYSQL_TYPE_TINY_BLOB: case CW_MYSQL_TYPE_MEDIUM_BLOB:
	case CW_MYSQL_TYPE_LONG_BLOB: case CW_MYSQL_TYPE_GEOMETRY:
		return true;
	default:
		return false;
	}
}

static bool is_enum_or_set(uint8_t type)
{
	return type == CW_MYSQL_TYPE_ENUM || type == CW_MYSQL_TYPE_SET;
}

/* The index of the nth column for which pick is true, or ncolumns. */
static uint32_t nth_column(const cw_binlog_table_t *t, bool (*pick)(uint8_t), uint64_t n)
{
	for (uint32_t i = 0; i < t->ncolumns; i++)
		if (pick(t->columns[i].type) && n-- == 0)
			return i;
	return t->ncolumns;
}

/* DEFAULT_CHARSET-style: a default collation, then (index, collation) pairs. */
static int read_default_charset(cw_binlog_reader_t *r, cw_binlog_table_t *t, bool (*pick)(uint8_t))
{
	uint64_t def, index, coll;
	if (cw_binlog_read_lenenc(r, "default charset", &def))
		return CW_EPROTO;
	for (uint32_t i = 0; i < t->ncolumns; i++)
		if (pick(t->columns[i].type))
			t->columns[i].collation = (uint16_t)def;
	while (r->pos < r->len) {
		if (cw_binlog_read_lenenc(r, "charset column", &index) ||
		    cw_binlog_read_lenenc(r, "charset", &coll))
			return CW_EPROTO;
		uint32_t col = nth_column(t, pick, index);
		if (col == t->ncolumns)
			return cw_binlog_fail(r, r->pos, "charset of column %" PRIu64 " out of range", index);
		t->columns[col].collation = (uint16_t)coll;
	}
	return 0;
}

static int read_column_charset(cw_binlog_reader_t *r, cw_binlog_table_t *t, bool (*pick)(uint8_t))
{
	for (uint64_t n = 0; r->pos < r->len; n++) {
		uint64_t coll;
		if (cw_binlog_read_lenenc(r, "charset", &coll))
			return CW_EPROTO;
		uint32_t col = nth_column(t, pick, n);
		if (col == t->ncolumns)
			return cw_binlog_fail(r, r->pos, "more charsets than columns");
		t->columns[col].collation = (uint16_t)coll;
	}
	return 0;
}

static bool pick_enum(uint8_t type) { return type == CW_MYSQL_TYPE_ENUM; }
static bool pick_set(uint8_t type) { return type == CW_MYSQL_TYPE_SET; }

static int read_str_values(cw_binlog_reader_t *r, cw_binlog_table_t *t, bool (*pick)(uint8_t))
{
	for (uint64_t n = 0; r->pos < r->len; n++) {
		uint32_t col = nth_column(t, pick, n), count;
		if (col == t->ncolumns)
			return cw_binlog_fail(r, r->pos, "more value lists than columns");
		if (cw_binlog_read_count(r, "value count", 1, 65535, &count))
			return CW_EPROTO;
		cw_binlog_column_t *c = &t->columns[col];
		if (c->values != NULL)   /* ENUM and SET lists both naming one column */
			return cw_binlog_fail(r, r->pos, "a second value list for one column");
		c->values = cw_xcalloc(count ? count : 1, sizeof *c->values);
		for (uint32_t k = 0; k < count; k++) {
			uint64_t len;
			if (cw_binlog_read_lenenc(r, "value", &len) || cw_binlog_need(r, len, "value"))
				return CW_EPROTO;
			c->values[k] = cw_xstrndup((const char *)r->bytes + r->pos, len);
			c->nvalues = k + 1;
			r->pos += len;
		}
	}
	return 0;
}

static int read_names(cw_binlog_reader_t *r, cw_binlog_table_t *t)
{
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		uint64_t len;
		if (cw_binlog_read_lenenc(r, "column name", &len) || cw_binlog_need(r, len, "column name"))
			return CW_EPROTO;
		const char *s = (const char *)r->bytes + r->pos;
		if (len == 0 || memchr(s, '\0', len) != NULL)
			return cw_binlog_fail(r, r->pos, "invalid column name");
		t->columns[i].name = cw_xstrndup(s, len);
		r->pos += len;
	}
	return 0;
}

static int read_key(cw_binlog_reader_t *r, cw_binlog_table_t *t, bool with_prefix)
{
	uint16_t key[CW_BINLOG_MAX_COLUMNS];
	uint32_t nkey = 0;
	while (r->pos < r->len) {
		uint64_t index, prefix;
		size_t at = r->pos;
		if (cw_binlog_read_lenenc(r, "key column", &index) ||
		    (with_prefix && cw_binlog_read_lenenc(r, "key prefix", &prefix)))
			return CW_EPROTO;
		if (index >= t->ncolumns || nkey == CW_BINLOG_MAX_COLUMNS)
			return cw_binlog_fail(r, at, "key column %" PRIu64 " out of range", index);
		key[nkey++] = (uint16_t)index;
	}
	free(t->key);
	t->key = cw_xcalloc(nkey ? nkey : 1, sizeof *t->key);
	memcpy(t->key, key, nkey * sizeof *key);
	t->nkey = nkey;
	return 0;
}

/* The optional metadata after the null bitmap (binlog_row_metadata). */
static int read_optional_meta(cw_binlog_reader_t *r, cw_binlog_table_t *t)
{
	size_t end = r->len;
	int rc = 0;
	bool seen[256] = {false};   /* a server writes each field once; a repeat is malformed */
	while (rc == 0 && r->pos < end) {
		uint64_t type, len;
		if (cw_binlog_read_uint(r, 1, "metadata type", &type) ||
		    cw_binlog_read_lenenc(r, "metadata length", &len) ||
		    cw_binlog_need(r, len, "metadata field"))
			return CW_EPROTO;
		if (seen[type & 0xff])
			return cw_binlog_fail(r, r->pos, "metadata field %" PRIu64 " given twice", type);
		seen[type & 0xff] = true;
		r->len = r->pos + len;   /* each field reads its own bytes only */
		switch (type) {
		case META_SIGNEDNESS:
			for (uint32_t i = 0, n = 0; i < t->ncolumns; i++) {
				if (!cw_binlog_is_numeric(t->columns[i].type))
					continue;
				if (n / 8 >= len) {
					rc = cw_binlog_fail(r, r->pos, "signedness shorter than the numeric columns");
					break;
				}
				t->columns[i].is_unsigned = (r->bytes[r->pos + n / 8] & (0x80 >> (n % 8))) != 0;
				n++;
			}
			r->pos = r->len;
			break;
		case META_DEFAULT_CHARSET: rc = read_default_charset(r, t, cw_binlog_is_character); break;
		case META_COLUMN_CHARSET: rc = read_column_charset(r, t, cw_binlog_is_character); break;
		case META_COLUMN_NAME: rc = read_names(r, t); break;
		case META_SET_STR_VALUE: rc = read_str_values(r, t, pick_set); break;
		case META_ENUM_STR_VALUE: rc = read_str_values(r, t, pick_enum); break;
		case META_SIMPLE_PRIMARY_KEY: rc = read_key(r, t, false); break;
		case META_PRIMARY_KEY_WITH_PREFIX: rc = read_key(r, t, true); break;
		case META_ENUM_AND_SET_DEFAULT_CHARSET: rc = read_default_charset(r, t, is_enum_or_set); break;
		case META_ENUM_AND_SET_COLUMN_CHARSET: rc = read_column_charset(r, t, is_enum_or_set); break;
		default: r->pos = r->len; break;   /* GEOMETRY_TYPE, COLUMN_VISIBILITY, newer */
		}
		if (rc == 0 && r->pos != r->len)
			rc = cw_binlog_fail(r, r->pos, "metadata field %" PRIu64 " has trailing bytes", type);
		r->len = end;
	}
	return rc;
}

/* Names and key the table lacks, from cw_binlog_set_table. */
static void apply_hint(const cw_binlog_t *dec, cw_binlog_table_t *t)
{
	const cw_binlog_hint_t *hint = hint_find(dec, t->schema, t->name);
	if (hint == NULL)
		return;
	if (hint->columns != NULL && hint->ncolumns == t->ncolumns && t->columns[0].name == NULL)
		for (uint32_t i = 0; i < t->ncolumns; i++)
			t->columns[i].name = cw_xstrdup(hint->columns[i]);
	if (t->nkey == 0 && hint->nkey > 0) {
		for (uint32_t k = 0; k < hint->nkey; k++)
			if (hint->key[k] >= t->ncolumns)
				return;
		free(t->key);
		t->key = cw_xcalloc(hint->nkey, sizeof *t->key);
		memcpy(t->key, hint->key, hint->nkey * sizeof *t->key);
		t->nkey = hint->nkey;
	}
}

int cw_binlog_read_table_id(const cw_binlog_t *dec, cw_binlog_reader_t *r, uint8_t type, uint64_t *id)
{
	size_t n = dec->post_header[type] == 6 ? 4 : 6;
	return cw_binlog_read_uint(r, n, "table id", id);
}

int cw_binlog_decode_table_map(cw_binlog_t *dec, cw_binlog_reader_t *r, cw_binlog_event_t *out)
{
	uint64_t table_id, flags;
	if (cw_binlog_read_table_id(dec, r, out->type, &table_id) ||
	    cw_binlog_read_uint(r, 2, "flags", &flags))
		return CW_EPROTO;
	const uint8_t *body = r->bytes + r->pos;
	size_t body_len = r->len - r->pos;
	cw_binlog_cached_t *cached = cw_binlog_cache_find(dec, table_id);
	if (cached != NULL && cached->body_len == body_len && body_len > 0 &&
	    memcmp(cached->body, body, body_len) == 0) {
		out->table_map = cached->table;
		r->pos = r->len;
		return 0;
	}
	int rc = CW_EPROTO;
	uint32_t ncolumns;
	uint64_t meta_len;
	cw_binlog_table_t *t = cw_xcalloc(1, sizeof *t);
	t->table_id = table_id;
	if (read_name(r, "schema name", &t->schema) || read_name(r, "table name", &t->name) ||
	    cw_binlog_read_count(r, "column count", 1, CW_BINLOG_MAX_COLUMNS, &ncolumns))
		goto cleanup;
	if (ncolumns == 0) {
		cw_binlog_fail(r, r->pos, "no columns");
		goto cleanup;
	}
	t->columns = cw_xcalloc(ncolumns, sizeof *t->columns);
	t->ncolumns = ncolumns;
	for (uint32_t i = 0; i < ncolumns; i++)
		t->columns[i].type = r->bytes[r->pos + i];
	r->pos += ncolumns;
	if (cw_binlog_read_lenenc(r, "metadata length", &meta_len) ||
	    cw_binlog_need(r, meta_len, "column metadata"))
		goto cleanup;
	size_t meta_end = r->pos + meta_len, end = r->len;
	r->len = meta_end;
	for (uint32_t i = 0; i < ncolumns; i++)
		if (read_column_meta(r, &t->columns[i]))
			goto cleanup;
	r->len = end;
	if (r->pos != meta_end) {
		cw_binlog_fail(r, r->pos, "column metadata has %zu bytes left", meta_end - r->pos);
		goto cleanup;
	}
	if (cw_binlog_need(r, (ncolumns + 7) / 8, "null bitmap"))
		goto cleanup;
	for (uint32_t i = 0; i < ncolumns; i++)
		t->columns[i].nullable = (r->bytes[r->pos + i / 8] >> (i % 8)) & 1;
	r->pos += (ncolumns + 7) / 8;
	if (read_optional_meta(r, t))
		goto cleanup;
	apply_hint(dec, t);
	cache_put(dec, t, body, body_len);
	out->table_map = t;
	t = NULL;
	rc = 0;
cleanup:
	cw_binlog_table_free(t);
	return rc;
}

