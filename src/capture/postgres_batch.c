/*
 * This file contains batch mode for PostgreSQL tables (docs/batch.md): a
 * poller per source, running as a component of its own beside the stream
 * worker, for the entities configured with `mode: batch`. It needs no
 * publication, slot or replication privilege: only SELECT on the tables.
 *
 * The poll itself is batch_poll.h's; this file is its PostgreSQL backend:
 * the entities and their checks, a page's rows turned into changes with the
 * snapshot's code (pg_rows.h, pg_push_row), and the table's keys (bucket
 * sums of key hashes for a single-column key, else every key as a doc_id).
 */
#include "capture/postgres_internal.h"

#include "capture/batch_poll.h"
#include "capture/batch_sql.h"
#include "capture/pg_rows.h"
#include "capture/source.h"
#include "capture/source_run.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "source.postgres.batch"

extern const cw_source_ops_t cw_postgres_source_ops;

/* The entity's settings from the configuration file (batch mode lives only there). */
static const cw_entity_t *settings_of(const cw_pg_source_t *src, const pg_entity_t *ent)
{
	return cw_config_entity(src->ctx->config, ent->entity.name);
}

static void append_table(cw_buf_t *buf, const pg_entity_t *ent)
{
	pg_quote_table(buf, ent->nspname, ent->relname);
}

int pg_batch_check_column(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err)
{
	const cw_entity_t *settings = settings_of(src, ent);
	if (settings == NULL)
		return cw_err_set(err, CW_ENOTFOUND, PG_DOMAIN, "entity \"%s\" is not configured",
		                  ent->entity.name);
	const char *column = settings->batch.column;
	const char *params[] = {ent->nspname, ent->relname, column};
	PGresult *res = pg_query(src,
		"SELECT t.typname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
		"JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid "
		"WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 "
		"AND NOT a.attisdropped", 3, params, "could not read a table's columns", err);
	if (res == NULL)
		return CW_EDB;
	cw_buf_t table = CW_BUF_INIT;
	append_table(&table, ent);
	int rc = 0;
	if (PQntuples(res) != 1) {
		rc = cw_err_set(err, CW_ENOTFOUND, PG_DOMAIN,
			"table %s of batch entity \"%s\" has no column \"%s\" (change_detection.column): "
			"add it (ALTER TABLE %s ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(), "
			"kept by a trigger) or name the column that grows on every change",
			cw_buf_cstr(&table), ent->entity.name, column, cw_buf_cstr(&table));
		goto cleanup;
	}
	const char *type = PQgetvalue(res, 0, 0);
	cw_batch_column_kind_t kind = CW_BATCH_COLUMN_OTHER;
	if (strcmp(type, "timestamptz") == 0)
		kind = CW_BATCH_COLUMN_TIME;
	else if (strcmp(type, "timestamp") == 0 || strcmp(type, "date") == 0)
		kind = CW_BATCH_COLUMN_LOCAL_TIME;
	PQclear(res);
	/* Orderable: the server sorts by it (json, point... cannot). */
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, "SELECT 1 FROM ");
	append_table(&sql, ent);
	cw_buf_append_str(&sql, " AS t ORDER BY t.");
	pg_quote_ident(&sql, column);
	cw_buf_append_str(&sql, " LIMIT 0");
	res = PQexec(src->sql, cw_buf_cstr(&sql));
	cw_buf_free(&sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state != NULL && strcmp(state, "42883") == 0)
			rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN, "column \"%s\" of table %s (batch entity "
			                "\"%s\") is of type %s, which cannot be ordered: name a timestamp "
			                "or number column in change_detection.column", column,
			                cw_buf_cstr(&table), ent->entity.name, type);
		else
			rc = pg_result_error(src->sql, res, "could not read the change column", err);
		goto cleanup;
	}
	if (kind == CW_BATCH_COLUMN_LOCAL_TIME) {
		PQclear(res);
		const char *zone[] = {settings->batch.timezone};
		res = PQexecParams(src->sql, "SELECT now() AT TIME ZONE $1", 1, NULL, zone, NULL, NULL,
		                   0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN, "batch entity \"%s\": the source does "
			                "not know time zone \"%s\" (change_detection.timezone): use a name "
			                "from pg_timezone_names", ent->entity.name, settings->batch.timezone);
			goto cleanup;
		}
	}
	ent->batch_kind = kind;
cleanup:
	PQclear(res);
	cw_buf_free(&table);
	return rc;
}

/* ---- the backend ------------------------------------------------------- */

static int backend_reload(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_pg_source_t *src = self;
	int rc = pg_reload_entities(src, false, cancel, err);
	for (size_t i = 0; i < src->nents && rc == 0; i++)
		rc = pg_check_entity(src, &src->ents[i], err);
	return rc;
}

static size_t backend_nentities(void *self)
{
	return ((cw_pg_source_t *)self)->nents;
}

static cw_entity_t *backend_entity(void *self, size_t i, bool *failed)
{
	pg_entity_t *ent = &((cw_pg_source_t *)self)->ents[i];
	*failed = ent->failed;
	return &ent->entity;
}

static int backend_describe(void *self, size_t i, cw_batch_query_t *q, const char **zone,
                            cw_err_t *err)
{
	cw_pg_source_t *src = self;
	const pg_entity_t *ent = &src->ents[i];
	const char *const *key = NULL;
	size_t nkey = cw_pgoutput_primary_key(src->dec, ent->nspname, ent->relname, &key);
	(void)zone;
	(void)err;
	q->dialect = CW_BATCH_POSTGRES;
	q->schema = ent->nspname;
	q->table = ent->relname;
	q->kind = ent->batch_kind;
	q->keys = key;
	q->nkeys = nkey;
	return 0;
}

static int backend_begin(void *self, size_t i, cw_err_t *err)
{
	cw_pg_source_t *src = self;
	return pg_schema_record(src, src->sql, &src->ents[i], err);
}

/* Where the marker's columns are in a page's result (the last column is the change time). */
static int locate_columns(const PGresult *res, const cw_batch_query_t *q, int *column_index,
                          int key_index[CW_BATCH_MAX_KEYS], cw_err_t *err)
{
	*column_index = -1;
	for (size_t k = 0; k < q->nkeys; k++)
		key_index[k] = -1;
	for (int c = 0; c < PQnfields(res) - 1; c++) {
		if (strcmp(PQfname(res, c), q->column) == 0)
			*column_index = c;
		for (size_t k = 0; k < q->nkeys; k++)
			if (strcmp(PQfname(res, c), q->keys[k]) == 0)
				key_index[k] = c;
	}
	bool found = *column_index >= 0;
	for (size_t k = 0; k < q->nkeys; k++)
		found = found && key_index[k] >= 0;
	if (!found)
		return cw_err_set(err, CW_EPROTO, PG_DOMAIN, "a poll's result lacks the change column "
		                  "or a key column");
	return 0;
}

/* Turns a page's rows into changes of ent on src->batch and moves the marker to the last. */
static int backend_page(void *self, size_t i, const cw_batch_query_t *q, const char *sql,
                        const char *const *params, int nparams, cw_change_batch_t *batch,
                        cw_batch_marker_t *marker, int64_t *rows, int64_t *newest_commit_us,
                        cw_err_t *err)
{
	cw_pg_source_t *src = self;
	const pg_entity_t *ent = &src->ents[i];
	int column_index, key_index[CW_BATCH_MAX_KEYS];
	assert(batch == &src->batch);
	*rows = 0;
	PGresult *res = PQexecParams(src->sql, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char what[200];
		snprintf(what, sizeof what, "could not poll table %s of entity \"%s\"",
		         ent->entity.table, ent->entity.name);
		int rc = pg_result_error(src->sql, res, what, err);
		PQclear(res);
		return rc;
	}
	cw_pg_rows_t page;
	int rc = locate_columns(res, q, &column_index, key_index, err);
	if (rc == 0)
		rc = cw_pg_rows_init(&page, res, ent->nspname, ent->relname, err);
	if (rc != 0) {
		PQclear(res);
		return rc;
	}
	/* The last column is the change time, not a table column. */
	page.rel.ncolumns--;
	page.msg.row.new_tuple.ncolumns--;
	int n = PQntuples(res);
	int time_col = PQnfields(res) - 1;
	src->only = ent;
	for (int r = 0; r < n && rc == 0; r++) {
		const char *value = PQgetvalue(res, r, column_index);
		int64_t commit_us = PQgetisnull(res, r, time_col) ? 0 :
		                    strtoll(PQgetvalue(res, r, time_col), NULL, 10);
		rc = pg_push_row(src, cw_pg_rows_at(&page, r), value, commit_us, err);
		if (commit_us > *newest_commit_us)
			*newest_commit_us = commit_us;
	}
	src->only = NULL;
	if (*newest_commit_us > src->newest_commit_us)
		src->newest_commit_us = *newest_commit_us;
	cw_pg_rows_clear(&page);
	if (rc == 0 && n > 0) {
		const char *keys[CW_BATCH_MAX_KEYS];
		for (size_t k = 0; k < q->nkeys; k++)
			keys[k] = PQgetvalue(res, n - 1, key_index[k]);
		cw_batch_marker_set(marker, PQgetvalue(res, n - 1, column_index), keys, q->nkeys);
		*rows = n;
	}
	PQclear(res);
	return rc;
}

/* A single-column key's buckets; a composite key's doc_id is JSON SQL cannot hash alike. */
static int backend_buckets(void *self, size_t i, const cw_batch_query_t *q,
                           cw_batch_bucket_t buckets[CW_BATCH_BUCKETS], cw_err_t *err)
{
	cw_pg_source_t *src = self;
	(void)i;
	if (q->nkeys != 1)
		return 1;
	cw_buf_t sql = CW_BUF_INIT;
	cw_batch_sql_buckets(q, &sql);
	PGresult *res = pg_query(src, cw_buf_cstr(&sql), 0, NULL, "could not hash the table's keys",
	                         err);
	cw_buf_free(&sql);
	if (res == NULL)
		return CW_EDB;
	cw_batch_read_buckets(res, buckets);
	PQclear(res);
	return 0;
}

/* The first column of res as owned strings. */
static char **column_copy(const PGresult *res, size_t *n)
{
	*n = (size_t)PQntuples(res);
	char **ids = cw_xcalloc(*n + 1, sizeof *ids);
	for (size_t r = 0; r < *n; r++)
		ids[r] = cw_xstrdup(PQgetvalue(res, (int)r, 0));
	return ids;
}

static int backend_keys(void *self, size_t i, const cw_batch_query_t *q, const char *bucket_list,
                        char ***ids, size_t *nids, cw_err_t *err)
{
	cw_pg_source_t *src = self;
	const pg_entity_t *ent = &src->ents[i];
	cw_buf_t sql = CW_BUF_INIT;
	*ids = NULL;
	*nids = 0;
	if (bucket_list != NULL) {
		cw_batch_sql_bucket_keys(q, &sql);
		const char *params[] = {bucket_list};
		PGresult *res = pg_query(src, cw_buf_cstr(&sql), 1, params,
		                         "could not list the table's keys", err);
		cw_buf_free(&sql);
		if (res == NULL)
			return CW_EDB;
		*ids = column_copy(res, nids);
		PQclear(res);
		return 0;
	}
	/* Every key, as doc_ids capture's own code writes them (cw_pgoutput_row_change). */
	cw_buf_append_str(&sql, "SELECT ");
	for (size_t k = 0; k < q->nkeys; k++) {
		if (k > 0)
			cw_buf_append_str(&sql, ", ");
		pg_quote_ident(&sql, q->keys[k]);
	}
	cw_buf_append_str(&sql, " FROM ");
	append_table(&sql, ent);
	PGresult *res = pg_query(src, cw_buf_cstr(&sql), 0, NULL, "could not list the table's keys",
	                         err);
	cw_buf_free(&sql);
	if (res == NULL)
		return CW_EDB;
	cw_pg_rows_t rows;
	int rc = cw_pg_rows_init(&rows, res, ent->nspname, ent->relname, err);
	int n = PQntuples(res);
	*ids = cw_xcalloc((size_t)n + 1, sizeof **ids);
	for (int r = 0; r < n && rc == 0; r++) {
		cw_pgoutput_row_t row;
		if (cw_pgoutput_row_change(src->dec, cw_pg_rows_at(&rows, r), &row, NULL) != 0)
			continue;   /* a key capture cannot read: never in the hub either */
		(*ids)[(*nids)++] = row.doc_id;
		row.doc_id = NULL;
		cw_pgoutput_row_clear(&row);
	}
	cw_pg_rows_clear(&rows);
	PQclear(res);
	return rc;
}

/* A poll's query failed with the source still connected: is the table or column gone? */
static int backend_recheck(void *self, size_t i, int rc, cw_err_t *err)
{
	cw_pg_source_t *src = self;
	if (rc != CW_EDB || PQstatus(src->sql) != CONNECTION_OK)
		return 1;
	return pg_check_entity(src, &src->ents[i], err);
}

static void backend_set_state(void *self, const char *state, bool healthy)
{
	pg_set_state(self, state, healthy);
}

static const cw_batch_backend_ops_t backend_ops = {
	backend_reload, backend_nentities, backend_entity, backend_describe, backend_begin,
	backend_page, backend_buckets, backend_keys, backend_recheck, backend_set_state,
};

void pg_batch_forget(cw_pg_source_t *src)
{
	cw_batch_poller_forget(&src->poller);
}

/* ---- the run ------------------------------------------------------------- */

static int run_once(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_pg_source_t *src = self;
	int rc = pg_run_begin(src, cancel, err);
	if (rc != 0)
		return rc;
	/* A generation's first read goes to the oplog directly, as a scan does. */
	cw_oplog_writer_set_scan(src->writer, true);
	cw_oplog_writer_track_keys(src->writer, true);
	cw_batch_poller_t *p = &src->poller;
	p->ops = &backend_ops;
	p->self = src;
	p->source = src->cfg->name;
	p->component = COMPONENT;
	p->config = src->ctx->config;
	p->metrics = src->ctx->metrics;
	p->registry = src->ctx->registry;
	p->hub = src->hub;
	p->writer = src->writer;
	p->batch = &src->batch;
	return cw_batch_poller_run(p, PG_RELOAD_INTERVAL_MS, cancel, err);
}

static void cleanup_run(void *self)
{
	pg_run_end(self);
}

static int batch_run(void *source, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_pg_source_t *src = source;
	cw_source_run_t run = {"batch poller of source", src->cfg->name, PG_DOMAIN, &src->mutex,
	                       &src->status, NULL, run_once, cleanup_run};
	return cw_source_run(&run, src, cancel, err);
}

static void *batch_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	return pg_source_new(ctx, true, err);
}

static void batch_status(void *source, cw_component_status_t *out)
{
	cw_postgres_source_ops.status(source, out);
}

static void batch_close(void *source)
{
	cw_postgres_source_ops.close(source);
}

const cw_source_ops_t cw_postgres_batch_ops = {"postgres", batch_open, batch_run, batch_status,
                                               batch_close};
