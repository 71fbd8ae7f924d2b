/*
 * This file contains batch mode for MySQL and MariaDB tables (docs/batch.md):
 * the poller of a source's `mode: batch` entities, a component of its own
 * beside the binlog stream. It needs no binlog and no replication
 * privilege: only SELECT on the tables.
 *
 * The poll is batch_poll.h's; this file is its MySQL backend. A page selects
 * every column in the form the snapshot selects it (mysql_snapshot.c), so a
 * polled row is turned into the change the snapshot (and the binlog
 * decoder) writes for it, then the marker's columns in a form that goes
 * back into the next page's query as a literal: numbers as numbers, binary
 * strings as X'...' hex, everything else a quoted string. TIMESTAMP columns
 * are points in time (the session is in UTC); DATETIME and DATE columns are
 * read in change_detection.timezone. Deletes are found by the poller's
 * bucket comparison: the server hashes each key's doc_id, written in SQL as
 * the snapshot writes it (batch_sql.h), and only the keys of the buckets
 * whose count or sum differ from the hub's are listed. A key of a FLOAT,
 * DOUBLE or JSON column, which SQL cannot write alike, lists every key.
 */
#include "capture/mysql_internal.h"
#include "capture/source_run.h"

#include "core/log.h"
#include "core/mem.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "source.mysql.batch"
#define BATCH_POS "batch"

void my_batch_table_free(my_batch_table_t *table)
{
	if (table == NULL)
		return;
	my_scan_columns_free(table->cols, table->ncols);
	cw_buf_free(&table->select);
	free(table);
}

/*
 * The page query with its parameters in place (the C API has no parameters
 * outside prepared statements): cw_batch_page_params's order is the zone
 * (a LOCAL_TIME column), the marker's value three times and its keys
 * (with a marker), the zone again. Question marks inside quoted names or strings are not
 * parameters.
 */
static void bind_params(MYSQL *conn, const my_batch_table_t *table, const cw_batch_query_t *q,
                        const char *sql, const char *const *params, int nparams, cw_buf_t *out)
{
	const my_scan_col_t *kinds[CW_BATCH_MAX_PARAMS] = {0};
	bool zone = q->kind == CW_BATCH_COLUMN_LOCAL_TIME;
	int marker_at = zone ? 1 : 0;
	if (nparams > (zone ? 2 : 0)) {
		for (int v = 0; v < 3; v++)
			kinds[marker_at + v] = &table->cols[table->column];
		for (size_t k = 0; k < table->nkey; k++)
			kinds[marker_at + 3 + (int)k] = &table->cols[table->key[k]];
	}
	int n = 0;
	char quote = 0;
	for (const char *p = sql; *p; p++) {
		if (quote != 0) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '`' || *p == '\'') {
			quote = *p;
		} else if (*p == '?' && n < nparams) {
			my_key_literal(conn, kinds[n], params[n], out);
			n++;
			continue;
		}
		cw_buf_append_char(out, *p);
	}
}

/* ---- the entity check ------------------------------------------------------ */

/* How the snapshot writes a key column's value in a doc_id (my_scan_doc_id). */
static cw_batch_key_form_t key_form(const my_scan_col_t *col)
{
	switch (col->kind) {
	case COL_NUMBER: return CW_BATCH_KEY_NUMBER;
	case COL_STRING: return CW_BATCH_KEY_TEXT;
	case COL_TIMESTAMP: return CW_BATCH_KEY_TIMESTAMP;
	case COL_BINARY: return CW_BATCH_KEY_BINARY;
	default: return CW_BATCH_KEY_UNHASHABLE;
	}
}

static cw_batch_column_kind_t column_kind(const my_scan_col_t *col)
{
	if (strcmp(col->type, "timestamp") == 0)
		return CW_BATCH_COLUMN_TIME;
	if (strcmp(col->type, "datetime") == 0 || strcmp(col->type, "date") == 0)
		return CW_BATCH_COLUMN_LOCAL_TIME;
	return CW_BATCH_COLUMN_OTHER;
}

/* Whether the server knows zone (its time zone tables hold it). */
static int check_zone(my_source_t *src, const my_entity_t *ent, const char *zone, cw_err_t *err)
{
	if (cw_batch_zone_is_utc(zone))
		return 0;
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, "SELECT CONVERT_TZ('2000-01-01 00:00:00', ");
	my_quote_literal(src->sql, &sql, zone);
	cw_buf_append_str(&sql, ", '+00:00') IS NOT NULL");
	char *known = my_query_value(src, src->sql, sql.data, "could not check a time zone", err);
	cw_buf_free(&sql);
	if (known == NULL)
		return CW_EDB;
	int rc = 0;
	if (strcmp(known, "1") != 0)
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "batch entity \"%s\": the source does not "
		                "know time zone \"%s\" (change_detection.timezone): load the server's "
		                "time zone tables (mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb "
		                "mysql) or give an offset such as +09:00", ent->entity.name, zone);
	free(known);
	return rc;
}

int my_batch_check(my_source_t *src, my_entity_t *ent, cw_err_t *err)
{
	const cw_entity_t *settings = cw_config_entity(src->ctx.config, ent->entity.name);
	if (settings == NULL)
		return cw_err_set(err, CW_ENOTFOUND, MY_DOMAIN, "entity \"%s\" is not configured",
		                  ent->entity.name);
	const char *column = settings->batch.column;
	my_batch_table_t *table = cw_xcalloc(1, sizeof *table);
	uint16_t key[CW_BINLOG_MAX_COLUMNS];
	cw_buf_t order = CW_BUF_INIT;
	int rc = my_scan_columns(src, src->sql, ent, &table->cols, &table->ncols, &table->select,
	                         err);
	if (rc != 0)
		goto out;
	table->column = table->ncols;
	for (size_t c = 0; c < table->ncols; c++)
		if (strcmp(table->cols[c].name, column) == 0)
			table->column = c;
	if (table->column == table->ncols) {
		rc = cw_err_set(err, CW_ENOTFOUND, MY_DOMAIN, "table %s.%s of batch entity \"%s\" has "
		                "no column \"%s\" (change_detection.column): add it (ALTER TABLE `%s`.`%s` "
		                "ADD COLUMN updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) "
		                "ON UPDATE CURRENT_TIMESTAMP(6)) or name the column that grows on every "
		                "change", ent->schema, ent->table, ent->entity.name, column, ent->schema,
		                ent->table);
		goto out;
	}
	const my_scan_col_t *col = &table->cols[table->column];
	if (col->kind == COL_JSON || col->kind == COL_GEOMETRY) {
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "column \"%s\" of table %s.%s (batch entity "
		                "\"%s\") is of type %s, which cannot be ordered: name a timestamp or "
		                "number column in change_detection.column", column, ent->schema,
		                ent->table, ent->entity.name, col->type);
		goto out;
	}
	table->kind = column_kind(col);
	size_t nkey = my_scan_key(src, ent, table->cols, table->ncols, key, &order);
	if (nkey == 0 || nkey > CW_BATCH_MAX_KEYS) {
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "batch entity \"%s\": table %s.%s has no "
		                "usable primary key", ent->entity.name, ent->schema, ent->table);
		goto out;
	}
	table->nkey = nkey;
	for (size_t k = 0; k < nkey; k++) {
		table->key[k] = key[k];
		table->key_names[k] = table->cols[key[k]].name;
		table->key_forms[k] = key_form(&table->cols[key[k]]);
	}
	my_key_select(col, &table->select);
	for (size_t k = 0; k < nkey; k++)
		my_key_select(&table->cols[key[k]], &table->select);
	if (table->kind == CW_BATCH_COLUMN_LOCAL_TIME &&
	    (rc = check_zone(src, ent, settings->batch.timezone, err)) != 0)
		goto out;
	my_batch_table_free(ent->batch);
	ent->batch = table;
	table = NULL;
out:
	my_batch_table_free(table);
	cw_buf_free(&order);
	return rc;
}

/* ---- the backend ----------------------------------------------------------- */

static int backend_reload(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	bool changed = false;
	(void)cancel;
	return my_load_entities(self, &changed, err);
}

static size_t backend_nentities(void *self)
{
	return ((my_source_t *)self)->nents;
}

static cw_entity_t *backend_entity(void *self, size_t i, bool *failed)
{
	my_entity_t *ent = &((my_source_t *)self)->ents[i];
	*failed = ent->failed || ent->batch == NULL;
	return &ent->entity;
}

static int backend_describe(void *self, size_t i, cw_batch_query_t *q, const char **zone,
                            cw_err_t *err)
{
	my_entity_t *ent = &((my_source_t *)self)->ents[i];
	my_batch_table_t *table = ent->batch;
	(void)err;
	q->dialect = CW_BATCH_MYSQL;
	q->schema = ent->schema;
	q->table = ent->table;
	q->kind = table->kind;
	q->keys = table->key_names;
	q->key_forms = table->key_forms;
	q->nkeys = table->nkey;
	q->select = cw_buf_cstr(&table->select);
	/* A server without time zone tables still knows UTC as an offset. */
	if (cw_batch_zone_is_utc(*zone))
		*zone = "+00:00";
	return 0;
}

static int backend_begin(void *self, size_t i, cw_err_t *err)
{
	my_source_t *src = self;
	const my_entity_t *ent = &src->ents[i];
	if (ent->entity.ncolumns > 0)
		return 0;
	return my_record_columns(src, ent, ent->batch->cols, ent->batch->ncols, err);
}

/* Turns a page's rows into changes on src->batch and moves the marker to its last row. */
static int push_rows(my_source_t *src, size_t i, MYSQL_RES *res, cw_batch_marker_t *marker,
                     int64_t *rows, int64_t *newest_commit_us, cw_err_t *err)
{
	const my_entity_t *ent = &src->ents[i];
	const my_batch_table_t *table = ent->batch;
	size_t marker_at = table->ncols, time_at = table->ncols + 1 + table->nkey;
	cw_buf_t scratch = CW_BUF_INIT;
	const char *keys[CW_BATCH_MAX_KEYS];
	int rc = 0;
	MYSQL_ROW row;
	if (mysql_num_fields(res) != time_at + 1)
		return cw_err_set(err, CW_EPROTO, MY_DOMAIN, "a poll of entity \"%s\" returned %u "
		                  "columns, want %zu", ent->entity.name, mysql_num_fields(res),
		                  time_at + 1);
	while (rc == 0 && (row = mysql_fetch_row(res)) != NULL) {
		const unsigned long *lengths = mysql_fetch_lengths(res);
		int64_t commit_us = row[time_at] != NULL ? strtoll(row[time_at], NULL, 10) : 0;
		cw_binlog_row_t change;
		cw_err_t why = {0};
		if (my_scan_row(ent, table->cols, table->ncols, table->key, table->nkey, row, lengths,
		                &change, &scratch, &why) != 0) {
			rc = my_quarantine(src, ent, NULL, BATCH_POS, why.message, NULL, err);
		} else {
			rc = my_push_row(src, &i, 1, &change, BATCH_POS, commit_us, err);
			cw_binlog_row_clear(&change);
		}
		if (commit_us > *newest_commit_us)
			*newest_commit_us = commit_us;
		for (size_t k = 0; k < table->nkey; k++)
			keys[k] = row[marker_at + 1 + k] != NULL ? row[marker_at + 1 + k] : "";
		if (rc == 0 && row[marker_at] != NULL)
			cw_batch_marker_set(marker, row[marker_at], keys, table->nkey);
		(*rows)++;
	}
	cw_buf_free(&scratch);
	return rc;
}

static int backend_page(void *self, size_t i, const cw_batch_query_t *q, const char *sql,
                        const char *const *params, int nparams, cw_change_batch_t *batch,
                        cw_batch_marker_t *marker, int64_t *rows, int64_t *newest_commit_us,
                        cw_err_t *err)
{
	my_source_t *src = self;
	const my_entity_t *ent = &src->ents[i];
	assert(batch == &src->batch);
	(void)batch;
	*rows = 0;
	cw_buf_t bound = CW_BUF_INIT;
	bind_params(src->sql, ent->batch, q, sql, params, nparams, &bound);
	MYSQL_RES *res = NULL;
	int rc = 0;
	if (mysql_query(src->sql, cw_buf_cstr(&bound)) != 0 ||
	    (res = mysql_store_result(src->sql)) == NULL)
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "could not poll table %s of entity \"%s\": %s",
		                ent->entity.table, ent->entity.name, mysql_error(src->sql));
	else
		rc = push_rows(src, i, res, marker, rows, newest_commit_us, err);
	if (*newest_commit_us > src->newest_commit_us)
		src->newest_commit_us = *newest_commit_us;
	mysql_free_result(res);
	cw_buf_free(&bound);
	return rc;
}

/* The per-bucket counts and hash sums of the table's keys, hashed by the server. */
static int backend_buckets(void *self, size_t i, const cw_batch_query_t *q,
                           cw_batch_bucket_t buckets[CW_BATCH_BUCKETS], cw_err_t *err)
{
	my_source_t *src = self;
	const my_entity_t *ent = &src->ents[i];
	if (!cw_batch_sql_hashable(q))
		return 1;
	cw_buf_t sql = CW_BUF_INIT;
	cw_batch_sql_buckets(q, &sql);
	int rc = 0;
	MYSQL_RES *res = NULL;
	if (mysql_query(src->sql, sql.data) != 0 || (res = mysql_store_result(src->sql)) == NULL) {
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "could not hash the keys of table %s of entity "
		                "\"%s\": %s", ent->entity.table, ent->entity.name, mysql_error(src->sql));
	} else {
		MYSQL_ROW row;
		while ((row = mysql_fetch_row(res)) != NULL)
			if (row[0] != NULL && row[1] != NULL && row[2] != NULL)
				cw_batch_bucket_set(buckets, row[0], row[1], row[2]);
	}
	mysql_free_result(res);
	cw_buf_free(&sql);
	return rc;
}

/*
 * The table's keys as doc_ids, as the snapshot writes them (the other
 * columns NULL): every one, or those the server hashes into the buckets of
 * bucket_list.
 */
static int backend_keys(void *self, size_t i, const cw_batch_query_t *q, const char *bucket_list,
                        char ***ids, size_t *nids, cw_err_t *err)
{
	my_source_t *src = self;
	const my_entity_t *ent = &src->ents[i];
	const my_batch_table_t *table = ent->batch;
	cw_buf_t select = CW_BUF_INIT, sql = CW_BUF_INIT, id = CW_BUF_INIT, scratch = CW_BUF_INIT;
	size_t cap = 1024;
	*nids = 0;
	*ids = cw_xcalloc(cap, sizeof **ids);
	for (size_t c = 0; c < table->ncols; c++) {
		bool is_key = false;
		for (size_t k = 0; k < table->nkey; k++)
			is_key = is_key || table->key[k] == c;
		if (c > 0)
			cw_buf_append_str(&select, ", ");
		if (is_key)
			my_scan_select(&table->cols[c], &select);
		else
			cw_buf_append_str(&select, "NULL");
	}
	cw_batch_query_t rows = *q;
	rows.select = cw_buf_cstr(&select);
	int rc = 0;
	if (bucket_list != NULL && cw_batch_sql_bucket_rows(&rows, bucket_list, &sql) != 0) {
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "bucket list \"%s\" is not {n,...}",
		                bucket_list);
		goto out;
	}
	if (bucket_list == NULL) {
		cw_buf_appendf(&sql, "SELECT %s FROM ", rows.select);
		my_quote_ident(&sql, ent->schema);
		cw_buf_append_char(&sql, '.');
		my_quote_ident(&sql, ent->table);
	}
	MYSQL_RES *res = NULL;
	if (mysql_query(src->sql, sql.data) != 0 || (res = mysql_use_result(src->sql)) == NULL) {
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "could not list the keys of table %s of entity "
		                "\"%s\": %s", ent->entity.table, ent->entity.name, mysql_error(src->sql));
		goto out;
	}
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res)) != NULL) {
		cw_buf_reset(&id);
		if (my_scan_doc_id(ent, table->cols, table->key, table->nkey, row,
		                   mysql_fetch_lengths(res), &id, &scratch, NULL) != 0)
			continue;   /* a key capture cannot read: never in the hub either */
		if (*nids == cap) {
			cap *= 2;
			*ids = cw_xrealloc(*ids, cap * sizeof **ids);
		}
		(*ids)[(*nids)++] = cw_xstrndup(id.data != NULL ? id.data : "", id.len);
	}
	if (mysql_errno(src->sql) != 0)
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "could not list the keys of table %s of entity "
		                "\"%s\": %s", ent->entity.table, ent->entity.name, mysql_error(src->sql));
	mysql_free_result(res);
out:
	cw_buf_free(&select);
	cw_buf_free(&sql);
	cw_buf_free(&id);
	cw_buf_free(&scratch);
	return rc;
}

/* A poll failed with the server still there: is the table or column gone? */
static int backend_recheck(void *self, size_t i, int rc, cw_err_t *err)
{
	my_source_t *src = self;
	if (rc != CW_EDB || src->sql == NULL || mysql_ping(src->sql) != 0)
		return 1;
	return my_check_entity(src, &src->ents[i], err);
}

static void backend_set_state(void *self, const char *state, bool healthy)
{
	my_set_state(self, state, healthy, NULL);
}

static const cw_batch_backend_ops_t backend_ops = {
	backend_reload, backend_nentities, backend_entity, backend_describe, backend_begin,
	backend_page, backend_buckets, backend_keys, backend_recheck, backend_set_state,
};

/* ---- the component --------------------------------------------------------- */

static int run_once(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	my_source_t *src = self;
	my_set_state(src, "starting", false, NULL);
	src->hub = cw_hub_connect_auth(src->ctx.config->hub.url, src->ctx.config->hub.auth, err);
	if (src->hub == NULL)
		return CW_EDB;
	src->batch_writer = cw_oplog_writer_new(src->hub);
	/* A generation's first read goes to the oplog directly, as a scan does. */
	cw_oplog_writer_set_scan(src->batch_writer, true);
	cw_oplog_writer_track_keys(src->batch_writer, true);
	src->dec = cw_binlog_new();
	int rc = my_connect(src, &src->sql, err);
	if (rc != 0)
		return rc;
	cw_batch_poller_t *p = &src->poller;
	p->ops = &backend_ops;
	p->self = src;
	p->source = src->cfg->name;
	p->component = COMPONENT;
	p->config = src->ctx.config;
	p->metrics = src->ctx.metrics;
	p->registry = src->ctx.registry;
	p->hub = src->hub;
	p->writer = src->batch_writer;
	p->batch = &src->batch;
	return cw_batch_poller_run(p, MY_RELOAD_MS, cancel, err);
}

static void end_run(void *self)
{
	my_source_t *src = self;
	cw_oplog_writer_free(src->batch_writer);
	src->batch_writer = NULL;
	my_end_run(src);
}

static int batch_run(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	my_source_t *src = self;
	cw_source_run_t run = {"batch poller of source", src->cfg->name, MY_DOMAIN, &src->mutex,
	                       &src->status, NULL, run_once, end_run};
	return cw_source_run(&run, src, cancel, err);
}

static void *batch_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	return my_source_open(ctx, true, err);
}

const cw_source_ops_t cw_mysql_batch_ops = {"mysql", batch_open, batch_run, my_source_status,
                                            my_source_close};
