/*
 * This file contains the MySQL source's snapshot (mysql_internal.h): a
 * consistent read (START TRANSACTION WITH CONSISTENT SNAPSHOT) whose GTID
 * position comes from the same snapshot (MariaDB's binlog_snapshot_file and
 * _position, turned into a GTID position by BINLOG_GTID_POS), then each
 * table read in primary key order. Values are written in the forms the
 * binlog decoder writes (docs/binlog.md): numbers as the server prints
 * them, FLOAT and DOUBLE through the decoder's own formatting, binary
 * strings and geometries fetched as hex and formatted by the decoder, so a
 * row read here equals the same row read from the binlog.
 */
#include "capture/mysql_internal.h"

#include "capture/scan_log.h"
#include "capture/scan_progress.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/metadata.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_INTERVAL_MS 5000

my_col_kind_t my_col_kind_of(const char *data_type)
{
	static const struct { const char *type; my_col_kind_t kind; } kinds[] = {
		{"tinyint", COL_NUMBER}, {"smallint", COL_NUMBER}, {"mediumint", COL_NUMBER},
		{"int", COL_NUMBER}, {"bigint", COL_NUMBER}, {"decimal", COL_NUMBER},
		{"year", COL_NUMBER}, {"bit", COL_NUMBER}, {"float", COL_FLOAT}, {"double", COL_DOUBLE},
		{"timestamp", COL_TIMESTAMP}, {"binary", COL_BINARY}, {"varbinary", COL_BINARY},
		{"tinyblob", COL_BINARY}, {"blob", COL_BINARY}, {"mediumblob", COL_BINARY},
		{"longblob", COL_BINARY}, {"json", COL_JSON}, {"geometry", COL_GEOMETRY},
		{"point", COL_GEOMETRY}, {"linestring", COL_GEOMETRY}, {"polygon", COL_GEOMETRY},
		{"multipoint", COL_GEOMETRY}, {"multilinestring", COL_GEOMETRY},
		{"multipolygon", COL_GEOMETRY}, {"geometrycollection", COL_GEOMETRY},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].type, data_type) == 0)
			return kinds[i].kind;
	return COL_STRING;
}

int my_scan_columns(my_source_t *src, MYSQL *conn, const my_entity_t *ent, my_scan_col_t **cols,
                    size_t *ncols, cw_buf_t *select, cw_err_t *err)
{
	cw_buf_t sql = CW_BUF_INIT;
	size_t len = strlen(ent->schema) + strlen(ent->table);
	char *schema = cw_xmalloc(len * 2 + 2), *table = cw_xmalloc(len * 2 + 2);
	mysql_real_escape_string(conn, schema, ent->schema, (unsigned long)strlen(ent->schema));
	mysql_real_escape_string(conn, table, ent->table, (unsigned long)strlen(ent->table));
	cw_buf_appendf(&sql, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE "
	               "TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION",
	               schema, table);
	free(schema);
	free(table);
	int rc = 0;
	MYSQL_RES *res = NULL;
	if (mysql_query(conn, sql.data) != 0 || (res = mysql_store_result(conn)) == NULL) {
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "could not read the columns of %s.%s: %s",
		                ent->schema, ent->table, mysql_error(conn));
		goto out;
	}
	*cols = cw_xcalloc(mysql_num_rows(res) + 1, sizeof **cols);
	*ncols = 0;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res)) != NULL) {
		my_scan_col_t *col = &(*cols)[(*ncols)++];
		col->name = cw_xstrdup(row[0]);
		col->kind = my_col_kind_of(row[1]);
		snprintf(col->type, sizeof col->type, "%s", row[1]);
		if (*ncols > 1)
			cw_buf_append_str(select, ", ");
		my_scan_select(col, select);
	}
out:
	mysql_free_result(res);
	cw_buf_free(&sql);
	return rc;
}

void my_scan_select(const my_scan_col_t *col, cw_buf_t *select)
{
	cw_buf_t quoted = CW_BUF_INIT;
	my_quote_ident(&quoted, col->name);
	switch (col->kind) {
	case COL_FLOAT: cw_buf_appendf(select, "CAST(%s AS DOUBLE)", quoted.data); break;
	case COL_BINARY:
	case COL_GEOMETRY: cw_buf_appendf(select, "HEX(%s)", quoted.data); break;
	case COL_NUMBER: cw_buf_appendf(select, "%s + 0", quoted.data); break;   /* BIT, YEAR */
	default: cw_buf_append_str(select, quoted.data); break;
	}
	cw_buf_free(&quoted);
}

void my_scan_columns_free(my_scan_col_t *cols, size_t ncols)
{
	for (size_t c = 0; c < ncols; c++)
		free(cols[c].name);
	free(cols);
}

void my_key_select(const my_scan_col_t *col, cw_buf_t *out)
{
	cw_buf_append_str(out, ", ");
	if (col->kind == COL_BINARY)
		cw_buf_append_str(out, "HEX(");
	cw_buf_append_str(out, "t.");
	my_quote_ident(out, col->name);
	if (col->kind == COL_BINARY)
		cw_buf_append_char(out, ')');
	else if (col->kind == COL_NUMBER)
		cw_buf_append_str(out, " + 0");   /* BIT and YEAR as numbers */
}

static bool is_number(const char *text)
{
	const char *p = text;
	if (*p == '-' || *p == '+')
		p++;
	size_t digits = strspn(p, "0123456789");
	if (digits == 0)
		return false;
	p += digits;
	if (*p == '.')
		p += 1 + strspn(p + 1, "0123456789");
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (strspn(p, "0123456789") == 0)
			return false;
		p += strspn(p, "0123456789");
	}
	return *p == '\0';
}

void my_key_literal(MYSQL *conn, const my_scan_col_t *col, const char *value,
                           cw_buf_t *out)
{
	size_t len = strlen(value);
	if (col != NULL && col->kind == COL_NUMBER && is_number(value)) {
		cw_buf_append_str(out, value);
	} else if (col != NULL && col->kind == COL_BINARY && len % 2 == 0 &&
	           strspn(value, "0123456789ABCDEFabcdef") == len) {
		cw_buf_appendf(out, "X'%s'", value);
	} else {
		my_quote_literal(conn, out, value);
	}
}

static int unhex(const char *hex, size_t len, cw_buf_t *out)
{
	if (len % 2 != 0)
		return CW_EPROTO;
	for (size_t i = 0; i < len; i += 2) {
		char pair[3] = {hex[i], hex[i + 1], '\0'};
		cw_buf_append_char(out, (char)strtol(pair, NULL, 16));
	}
	return 0;
}

/* Writes one selected value in its JSON form to w. */
static int write_value(cw_json_t *w, const my_scan_col_t *col, const char *text, unsigned long len,
                       cw_buf_t *scratch, cw_err_t *err)
{
	if (text == NULL)
		return cw_json_null(w, err);
	cw_binlog_column_t bcol = {.name = col->name};
	cw_binlog_value_kind_t kind;
	size_t pos = 0;
	cw_buf_reset(scratch);
	switch (col->kind) {
	case COL_NUMBER:
		return cw_json_raw(w, text, len, err);
	case COL_TIMESTAMP:
		cw_buf_append(scratch, text, len);
		if (strncmp(text, "0000-00-00", 10) != 0)
			cw_buf_append_str(scratch, "+00");
		return cw_json_string_len(w, scratch->data, scratch->len, err);
	case COL_JSON:
		return cw_json_raw(w, text, len, err);
	case COL_BINARY:
		cw_buf_append_str(scratch, "\\x");
		for (unsigned long i = 0; i < len; i++)
			cw_buf_append_char(scratch, (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] + 32 : text[i]));
		return cw_json_string_len(w, scratch->data, scratch->len, err);
	case COL_FLOAT:
	case COL_DOUBLE: {
		double d = strtod(text, NULL);
		uint8_t bytes[8];
		bcol.type = col->kind == COL_FLOAT ? CW_MYSQL_TYPE_FLOAT : CW_MYSQL_TYPE_DOUBLE;
		if (col->kind == COL_FLOAT) {
			float f = (float)d;
			memcpy(bytes, &f, 4);
		} else {
			memcpy(bytes, &d, 8);
		}
		cw_buf_t out = CW_BUF_INIT;
		int rc = cw_binlog_value_read(&bcol, bytes, &pos, col->kind == COL_FLOAT ? 4 : 8, &out,
		                              &kind, err);
		if (rc == 0)
			rc = cw_json_raw(w, out.data, out.len, err);
		cw_buf_free(&out);
		return rc;
	}
	case COL_GEOMETRY: {
		uint8_t prefix[4] = {(uint8_t)(len / 2), (uint8_t)(len / 2 >> 8), (uint8_t)(len / 2 >> 16),
		                     (uint8_t)(len / 2 >> 24)};
		cw_buf_append(scratch, prefix, 4);
		if (unhex(text, len, scratch) != 0)
			return cw_err_set(err, CW_EPROTO, MY_DOMAIN, "column \"%s\": invalid hex", col->name);
		bcol.type = CW_MYSQL_TYPE_GEOMETRY;
		bcol.meta = 4;
		cw_buf_t out = CW_BUF_INIT;
		int rc = cw_binlog_value_read(&bcol, (const uint8_t *)scratch->data, &pos, scratch->len,
		                              &out, &kind, err);
		if (rc == 0)
			rc = cw_json_string_len(w, out.data, out.len, err);
		cw_buf_free(&out);
		return rc;
	}
	default:
		return cw_json_string_len(w, text, len, err);
	}
}

int my_scan_doc_id(const my_entity_t *ent, const my_scan_col_t *cols, const uint16_t *key,
                   size_t nkey, MYSQL_ROW row, const unsigned long *lengths, cw_buf_t *id,
                   cw_buf_t *scratch, cw_err_t *err)
{
	int rc = 0;
	if (nkey == 1) {
		size_t c = key[0];
		if (row[c] == NULL)
			return cw_err_set(err, CW_EINVAL, MY_DOMAIN, "entity \"%s\": key column \"%s\" is "
			                  "NULL", ent->entity.name, cols[c].name);
		if (cols[c].kind == COL_STRING || cols[c].kind == COL_NUMBER)
			cw_buf_append(id, row[c], lengths[c]);
		else
			rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "entity \"%s\": key column \"%s\" has a "
			                "type cachewarp does not key on", ent->entity.name, cols[c].name);
		return rc;
	}
	cw_json_t w;
	cw_json_init(&w, id, CW_JSON_NO_NUL);
	cw_json_array_begin(&w, err);
	for (size_t k = 0; k < nkey && rc == 0; k++)
		rc = write_value(&w, &cols[key[k]], row[key[k]], lengths[key[k]], scratch, err);
	cw_json_array_end(&w, err);
	if (rc == 0)
		rc = cw_json_finish(&w);
	return rc;
}

int my_scan_row(const my_entity_t *ent, const my_scan_col_t *cols, size_t ncols,
                const uint16_t *key, size_t nkey, MYSQL_ROW row, const unsigned long *lengths,
                cw_binlog_row_t *out, cw_buf_t *scratch, cw_err_t *err)
{
	cw_buf_t data = CW_BUF_INIT, id = CW_BUF_INIT;
	cw_json_t w;
	int rc = 0;
	memset(out, 0, sizeof *out);
	cw_json_init(&w, &data, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, err);
	for (size_t c = 0; c < ncols && rc == 0; c++) {
		cw_json_key(&w, cols[c].name, err);
		rc = write_value(&w, &cols[c], row[c], lengths[c], scratch, err);
	}
	cw_json_object_end(&w, err);
	if (rc == 0)
		rc = cw_json_finish(&w);
	if (rc == 0)
		rc = my_scan_doc_id(ent, cols, key, nkey, row, lengths, &id, scratch, err);
	if (rc == 0) {
		out->op = CW_OP_UPSERT;
		cw_buf_append_str(&id, "");
		out->doc_id = cw_buf_take(&id);
		out->data = cw_buf_take(&data);
	}
	cw_buf_free(&id);
	cw_buf_free(&data);
	return rc;
}

size_t my_scan_key(my_source_t *src, const my_entity_t *ent, const my_scan_col_t *cols,
                   size_t ncols, uint16_t *key, cw_buf_t *order)
{
	cw_buf_t sql = CW_BUF_INIT;
	size_t nkey = 0;
	cw_buf_appendf(&sql, "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
	               "CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA = '");
	char *esc = cw_xmalloc(strlen(ent->schema) * 2 + strlen(ent->table) * 2 + 2);
	mysql_real_escape_string(src->sql, esc, ent->schema, (unsigned long)strlen(ent->schema));
	cw_buf_appendf(&sql, "%s' AND TABLE_NAME = '", esc);
	mysql_real_escape_string(src->sql, esc, ent->table, (unsigned long)strlen(ent->table));
	cw_buf_appendf(&sql, "%s' ORDER BY ORDINAL_POSITION", esc);
	free(esc);
	if (mysql_query(src->sql, sql.data) == 0) {
		MYSQL_RES *res = mysql_store_result(src->sql);
		MYSQL_ROW row;
		while (res != NULL && (row = mysql_fetch_row(res)) != NULL)
			for (size_t c = 0; c < ncols; c++)
				if (strcmp(cols[c].name, row[0]) == 0 && nkey < CW_BINLOG_MAX_COLUMNS) {
					if (nkey > 0)
						cw_buf_append_str(order, ", ");
					my_quote_ident(order, cols[c].name);
					key[nkey++] = (uint16_t)c;
				}
		mysql_free_result(res);
	}
	cw_buf_free(&sql);
	return nkey;
}

int my_record_columns(my_source_t *src, const my_entity_t *ent, const my_scan_col_t *cols,
                          size_t ncols, cw_err_t *err)
{
	cw_buf_t json = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &json, CW_JSON_NO_NUL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < ncols; i++)
		cw_json_string(&w, cols[i].name, NULL);
	cw_json_array_end(&w, NULL);
	char *key = cw_xasprintf("table_columns:%s", ent->entity.name);
	int rc = cw_json_finish(&w);
	if (rc == 0)
		rc = cw_metadata_set(src->hub, key, cw_buf_cstr(&json), err);
	free(key);
	cw_buf_free(&json);
	return rc;
}

/* The server's estimate of a table's rows (information_schema.TABLES), -1 when unknown. */
static int64_t estimate_rows(my_source_t *src, const my_entity_t *ent)
{
	cw_buf_t sql = CW_BUF_INIT;
	size_t len = strlen(ent->schema) + strlen(ent->table);
	char *esc = cw_xmalloc(len * 2 + 2);
	mysql_real_escape_string(src->sql, esc, ent->schema, (unsigned long)strlen(ent->schema));
	cw_buf_appendf(&sql, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
	               "'%s' AND TABLE_NAME = '", esc);
	mysql_real_escape_string(src->sql, esc, ent->table, (unsigned long)strlen(ent->table));
	cw_buf_appendf(&sql, "%s'", esc);
	free(esc);
	cw_err_t ignored = {0};
	char *value = my_query_value(src, src->sql, sql.data, "could not estimate the rows", &ignored);
	int64_t rows = value != NULL && value[0] != '\0' ? strtoll(value, NULL, 10) : -1;
	free(value);
	cw_buf_free(&sql);
	return rows;
}

static char *progress_key(const my_source_t *src, const my_entity_t *ent)
{
	return cw_xasprintf("mysql_scan:%s:%s", src->cfg->name, ent->entity.name);
}

/*
 * Hands src->batch to the writer with ent's scan progress record
 * (capture/scan_progress.h: the last key read, its values as my_key_select
 * read them; the snapshot's GTID position as its origin) in the same hub
 * transaction.
 */
static int flush_progress(my_source_t *src, const my_entity_t *ent,
                          const cw_scan_progress_t *progress, cw_err_t *err)
{
	char *key = progress_key(src, ent);
	char *json = cw_scan_progress_encode(progress);
	cw_capture_job_t job = {key, json, src->scanning, 0, 0, false};
	int rc = cw_capture_writer_submit(src->writer, &src->batch, &job, -1, err);
	src->batch_started_ms = 0;
	free(json);
	free(key);
	return rc;
}

/*
 * The progress of ent's unfinished scan of its current version from the
 * hub, if any (else cleared: a record that fails its checksum, of another
 * version, finished, or without a key is not resumed from).
 */
static int load_progress(my_source_t *src, const my_entity_t *ent, cw_scan_progress_t *progress,
                         cw_err_t *err)
{
	char *key = progress_key(src, ent);
	char *json = NULL;
	cw_position_verdict_t verdict = CW_POSITION_VALID;
	int rc = cw_metadata_get_position(src->hub, key, &json, &verdict, err);
	free(key);
	cw_scan_progress_clear(progress);
	if (rc == CW_ENOTFOUND) {
		cw_err_clear(err);
		return 0;
	}
	if (rc == 0 && (verdict != CW_POSITION_VALID ||
	                cw_scan_progress_decode(json, progress, NULL) != 0 ||
	                progress->version != ent->entity.version || progress->done ||
	                progress->keys == NULL))
		cw_scan_progress_clear(progress);
	free(json);
	return rc;
}

/* Appends " WHERE (k1, k2...) > (v1, v2...)": the keys after where a scan stopped. */
static void append_resume(MYSQL *conn, const my_scan_col_t *cols, const uint16_t *key,
                          size_t nkey, const cw_scan_progress_t *resume, cw_buf_t *sql)
{
	cw_buf_append_str(sql, " WHERE (");
	for (size_t k = 0; k < nkey; k++) {
		if (k > 0)
			cw_buf_append_str(sql, ", ");
		cw_buf_append_str(sql, "t.");
		my_quote_ident(sql, cols[key[k]].name);
	}
	cw_buf_append_str(sql, ") > (");
	for (size_t k = 0; k < nkey; k++) {
		if (k > 0)
			cw_buf_append_str(sql, ", ");
		my_key_literal(conn, &cols[key[k]], resume->keys[k], sql);
	}
	cw_buf_append_char(sql, ')');
}

/*
 * Reads ent's table on conn (inside the snapshot) into the hub, in key
 * order, after resume's keys when it holds some (a scan of this version cut
 * short); each batch carries the progress in its hub transaction.
 */
static int scan_table(my_source_t *src, MYSQL *conn, my_entity_t *ent, const char *source_pos,
                      cw_scan_progress_t *resume, cw_cancel_t *cancel, cw_err_t *err)
{
	my_scan_col_t *cols = NULL;
	size_t ncols = 0;
	uint16_t key[CW_BINLOG_MAX_COLUMNS];
	cw_buf_t select = CW_BUF_INIT, order = CW_BUF_INIT, sql = CW_BUF_INIT, scratch = CW_BUF_INIT;
	MYSQL_RES *res = NULL;
	const cw_scan_log_t scan_log = {MY_COMPONENT, src->cfg->name, ent->entity.name,
	                                ent->entity.table, cw_clock_now_ms(cw_clock_system())};
	int64_t rows = 0;
	int64_t estimate = estimate_rows(src, ent);
	int64_t next_log = scan_log.started_ms + PROGRESS_INTERVAL_MS;
	char labels[160];
	snprintf(labels, sizeof labels, "entity=\"%s\"", ent->entity.name);
	int rc = my_scan_columns(src, conn, ent, &cols, &ncols, &select, err);
	if (rc != 0)
		goto out;
	if (ent->entity.ncolumns == 0 && (rc = my_record_columns(src, ent, cols, ncols, err)) != 0)
		goto out;
	size_t nkey = my_scan_key(src, ent, cols, ncols, key, &order);
	if (nkey == 0) {
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "entity \"%s\": table %s.%s has no primary key",
		                ent->entity.name, ent->schema, ent->table);
		goto out;
	}
	/* The progress needs the key as a literal: only keys a marker holds. */
	bool tracked = nkey <= CW_SCAN_PROGRESS_MAX_KEYS;
	for (size_t k = 0; tracked && k < nkey; k++)
		my_key_select(&cols[key[k]], &select);
	cw_buf_appendf(&sql, "SELECT %s FROM ", select.data);
	my_quote_ident(&sql, ent->schema);
	cw_buf_append_char(&sql, '.');
	my_quote_ident(&sql, ent->table);
	cw_buf_append_str(&sql, " AS t");
	bool resumed = tracked && resume->keys != NULL && resume->nkeys == nkey;
	if (resumed) {
		append_resume(conn, cols, key, nkey, resume, &sql);
		rows = resume->rows;
		cw_log_kv(CW_LOG_INFO, MY_COMPONENT, "snapshot of table resumes after the last key "
		          "committed", "source", src->cfg->name, "entity", ent->entity.name, NULL);
	} else {
		cw_scan_progress_clear(resume);
	}
	resume->version = ent->entity.version;
	cw_scan_progress_set_origin(resume, NULL, source_pos);
	cw_buf_appendf(&sql, " ORDER BY %s", order.data);
	if (mysql_query(conn, sql.data) != 0 || (res = mysql_use_result(conn)) == NULL) {
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "could not read table %s of entity \"%s\": %s",
		                ent->entity.table, ent->entity.name, mysql_error(conn));
		goto out;
	}
	size_t idx = (size_t)(ent - src->ents);
	MYSQL_ROW row;
	src->scanning = true;
	while (rc == 0 && (row = mysql_fetch_row(res)) != NULL) {
		cw_binlog_row_t change;
		cw_err_t why = {0};
		if (my_scan_row(ent, cols, ncols, key, nkey, row, mysql_fetch_lengths(res), &change,
		               &scratch, &why) != 0) {
			rc = my_quarantine(src, ent, NULL, source_pos, why.message, NULL, err);
		} else {
			rc = my_push_row(src, &idx, 1, &change, source_pos, 0, err);
			cw_binlog_row_clear(&change);
		}
		rows++;
		if (tracked) {
			const char *last[CW_SCAN_PROGRESS_MAX_KEYS];
			for (size_t k = 0; k < nkey; k++)
				last[k] = row[ncols + k] != NULL ? row[ncols + k] : "";
			cw_scan_progress_set_key(resume, last, nkey);
			resume->rows = rows;
		}
		if (rc == 0 && cw_capture_batch_full(&src->batch, src->ctx.config->capture.batch_size)) {
			cw_metrics_counter_add(src->ctx.metrics, "cachewarp_snapshot_rows_total", labels,
			                       (double)src->batch.len);
			rc = tracked ? flush_progress(src, ent, resume, err) : my_flush(src, NULL, false, err);
		}
		if (rc == 0 && cw_cancel_is_set(cancel))
			rc = CW_ECANCELED;
		if (cw_clock_now_ms(cw_clock_system()) >= next_log) {
			cw_scan_log_progress(&scan_log, rows, estimate, false, -1);
			next_log = cw_clock_now_ms(cw_clock_system()) + PROGRESS_INTERVAL_MS;
		}
	}
	if (rc == 0 && mysql_errno(conn) != 0)
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "could not read table %s of entity \"%s\": %s",
		                ent->entity.table, ent->entity.name, mysql_error(conn));
	if (rc == 0) {
		cw_metrics_counter_add(src->ctx.metrics, "cachewarp_snapshot_rows_total", labels,
		                       (double)src->batch.len);
		my_push_sweep(src, ent, source_pos);
		resume->done = true;
		rc = tracked ? flush_progress(src, ent, resume, err) : my_flush(src, NULL, false, err);
	}
	src->scanning = false;
	if (rc == 0)
		cw_scan_log_progress(&scan_log, rows, estimate, true, -1);
out:
	mysql_free_result(res);
	my_scan_columns_free(cols, ncols);
	cw_buf_free(&select);
	cw_buf_free(&order);
	cw_buf_free(&sql);
	cw_buf_free(&scratch);
	return rc;
}

/* The GTID position of the snapshot conn just opened (MariaDB). */
static int snapshot_position(my_source_t *src, MYSQL *conn, my_position_t *pos, cw_err_t *err)
{
	char *file = NULL, *offset = NULL, *gtid = NULL;
	int rc = CW_EDB;
	cw_buf_t sql = CW_BUF_INIT;
	file = my_query_value(src, conn, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
	                      "WHERE VARIABLE_NAME = 'BINLOG_SNAPSHOT_FILE'",
	                      "could not read the snapshot's binlog file", err);
	if (file != NULL)
		offset = my_query_value(src, conn, "SELECT VARIABLE_VALUE FROM "
		                        "information_schema.SESSION_STATUS WHERE VARIABLE_NAME = "
		                        "'BINLOG_SNAPSHOT_POSITION'",
		                        "could not read the snapshot's binlog position", err);
	if (offset == NULL)
		goto out;
	char *escaped = cw_xmalloc(strlen(file) * 2 + 1);
	mysql_real_escape_string(conn, escaped, file, (unsigned long)strlen(file));
	cw_buf_appendf(&sql, "SELECT BINLOG_GTID_POS('%s', %lld)", escaped, strtoll(offset, NULL, 10));
	free(escaped);
	gtid = my_query_value(src, conn, sql.data, "could not turn the snapshot's position into a GTID",
	                      err);
	if (gtid != NULL)
		rc = my_position_parse(gtid, pos, err);
	if (rc == 0)
		cw_log_kv(CW_LOG_INFO, MY_COMPONENT, "consistent snapshot", "source", src->cfg->name,
		          "binlog_file", file, "binlog_position", offset, "gtid", gtid, NULL);
out:
	free(file);
	free(offset);
	free(gtid);
	cw_buf_free(&sql);
	return rc;
}

int my_snapshot(my_source_t *src, bool have_position, my_position_t *start, cw_cancel_t *cancel,
                cw_err_t *err)
{
	size_t todo = 0;
	for (size_t i = 0; i < src->nents; i++)
		if (!src->ents[i].failed && (!have_position || src->ents[i].entity.status != CW_ENTITY_LIVE))
			todo++;
	if (have_position && todo == 0)
		return 0;
	MYSQL *conn = NULL;
	cw_scan_progress_t *resume = NULL;   /* per entity: where its scan resumes */
	my_position_t snap;
	char pos_text[MY_POSITION_LEN];
	bool lost = src->position_lost;
	my_set_state(src, lost ? "rescan" : "snapshot", !lost, NULL);
	int rc = my_connect(src, &conn, err);
	if (rc == 0)
		rc = my_exec(src, conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		             "could not set the isolation level", err);
	if (rc == 0)
		rc = my_exec(src, conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
		             "could not start a consistent snapshot", err);
	if (rc == 0)
		rc = snapshot_position(src, conn, &snap, err);
	if (rc != 0)
		goto out;
	my_position_format(&snap, pos_text);
	/* New generations first; the position next, so a restart streams from it and scans
	 * only what is not finished (changes streamed again replay over the scan): a table
	 * whose scan of this generation was cut short resumes after its last key committed. */
	resume = cw_xcalloc(src->nents + 1, sizeof *resume);
	for (size_t i = 0; i < src->nents && rc == 0; i++) {
		my_entity_t *ent = &src->ents[i];
		if (ent->failed || (have_position && ent->entity.status == CW_ENTITY_LIVE))
			continue;
		if (have_position && ent->entity.status == CW_ENTITY_SCANNING &&
		    (rc = load_progress(src, ent, &resume[i], err)) == 0 && resume[i].keys != NULL)
			continue;
		if (rc == 0)
			rc = my_begin_generation(src, ent, err);
	}
	if (rc == 0 && !have_position) {
		*start = snap;
		src->committed = src->current = snap;
		if ((rc = my_flush(src, &snap, false, err)) == 0)
			rc = my_sync(src, err);
	}
	for (size_t i = 0; i < src->nents && rc == 0; i++) {
		my_entity_t *ent = &src->ents[i];
		if (ent->failed || ent->entity.status != CW_ENTITY_SCANNING)
			continue;
		if ((rc = scan_table(src, conn, ent, pos_text, &resume[i], cancel, err)) == 0)
			rc = my_go_live(src, ent, err);
	}
	if (rc == 0)
		rc = my_exec(src, conn, "COMMIT", "could not end the snapshot", err);
out:
	for (size_t i = 0; resume != NULL && i < src->nents; i++)
		cw_scan_progress_clear(&resume[i]);
	free(resume);
	cw_change_batch_clear(&src->batch);
	if (conn != NULL)
		mysql_close(conn);
	my_set_state(src, "streaming", rc == 0, NULL);
	return rc;
}
