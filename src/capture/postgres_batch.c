/*
 * This file contains batch mode for PostgreSQL tables (docs/batch.md): a
 * poller per source, running as a component of its own beside the stream
 * worker, for the entities configured with `mode: batch`. It needs no
 * publication, slot or replication privilege: only SELECT on the tables.
 *
 * Each poll reads the rows whose change column passed the entity's marker,
 * page by page with keyset pagination on (column, key...) (batch_sql.h),
 * turns them into changes with the snapshot's code (pg_rows.h,
 * pg_push_row) and appends each page to the hub with the marker in the
 * same transaction: after a crash the next poll starts at the last page
 * committed, so no row is written twice and none is skipped. The same
 * transaction records the upserted keys in cachewarp.batch_keys.
 *
 * Every delete_detection.interval the poller compares the table's keys with
 * that key set, by buckets of key hashes first, and appends a delete for
 * each key the table no longer has.
 */
#include "capture/postgres_internal.h"

#include "capture/batch_sql.h"
#include "capture/pg_rows.h"
#include "capture/source.h"
#include "core/clock.h"
#include "core/cron.h"
#include "core/failpoint.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "source.postgres.batch"

extern const cw_source_ops_t cw_postgres_source_ops;

/* One batch entity's poll state, kept across runs and reloads. */
typedef struct pg_poll {
	char entity[CW_ENTITY_NAME_MAX + 1];
	cw_batch_column_kind_t kind;    /* set by the column check */
	cw_batch_marker_t marker;
	bool loaded;                    /* marker read from the hub this run */
	int64_t next_poll_ms;           /* monotonic; 0 = now */
	int64_t next_delete_ms;         /* monotonic; 0 = after the first complete poll */
	bool caught_up;                 /* the last poll read to the end */
} pg_poll_t;

static pg_poll_t *poll_of(cw_pg_source_t *src, const char *entity)
{
	for (size_t i = 0; i < src->npolls; i++)
		if (strcmp(src->polls[i].entity, entity) == 0)
			return &src->polls[i];
	src->polls = cw_xrealloc(src->polls, (src->npolls + 1) * sizeof *src->polls);
	pg_poll_t *poll = &src->polls[src->npolls++];
	memset(poll, 0, sizeof *poll);
	snprintf(poll->entity, sizeof poll->entity, "%s", entity);
	return poll;
}

void pg_batch_forget(cw_pg_source_t *src)
{
	for (size_t i = 0; i < src->npolls; i++)
		cw_batch_marker_clear(&src->polls[i].marker);
	free(src->polls);
	src->polls = NULL;
	src->npolls = 0;
}

/* The entity's settings from the configuration file (batch mode lives only there). */
static const cw_entity_t *settings_of(const cw_pg_source_t *src, const pg_entity_t *ent)
{
	return cw_config_entity(src->ctx->config, ent->entity.name);
}

static void append_table(cw_buf_t *buf, const pg_entity_t *ent)
{
	pg_quote_table(buf, ent->nspname, ent->relname);
}

int pg_batch_check_column(cw_pg_source_t *src, const pg_entity_t *ent, cw_err_t *err)
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
	poll_of(src, ent->entity.name)->kind = kind;
cleanup:
	PQclear(res);
	cw_buf_free(&table);
	return rc;
}

/* ---- polling ------------------------------------------------------------- */

static char *marker_key(const pg_entity_t *ent)
{
	return cw_xasprintf("batch_marker:%s", ent->entity.name);
}

/* Reads the entity's marker from the hub; a marker of another generation starts over. */
static int load_marker(cw_pg_source_t *src, const pg_entity_t *ent, pg_poll_t *poll,
                       cw_err_t *err)
{
	if (poll->loaded && poll->marker.version == ent->entity.version)
		return 0;
	char *key = marker_key(ent);
	char *json = NULL;
	int rc = cw_metadata_get(src->hub, key, &json, err);
	free(key);
	cw_batch_marker_clear(&poll->marker);
	if (rc == CW_ENOTFOUND) {
		rc = 0;
	} else if (rc == 0 && cw_batch_marker_decode(json, &poll->marker, NULL) != 0) {
		cw_log_kv(CW_LOG_WARN, COMPONENT, "batch marker unreadable: reading the table again",
		          "source", src->cfg->name, "entity", ent->entity.name, NULL);
		cw_batch_marker_clear(&poll->marker);
	}
	free(json);
	if (rc != 0)
		return rc;
	if (poll->marker.version != ent->entity.version) {
		cw_batch_marker_clear(&poll->marker);
		poll->marker.version = ent->entity.version;
	}
	poll->loaded = true;
	return 0;
}

/* The query for ent's pages, its parameters filled per page. */
typedef struct page_query {
	cw_batch_query_t q;
	const char *keys[CW_BATCH_MAX_KEYS];
	const char *timezone;
	int column_index;             /* in the result */
	int key_index[CW_BATCH_MAX_KEYS];
} page_query_t;

static int page_query_init(cw_pg_source_t *src, const pg_entity_t *ent, const pg_poll_t *poll,
                           page_query_t *pq, cw_err_t *err)
{
	const cw_entity_t *settings = settings_of(src, ent);
	const char *const *key = NULL;
	size_t nkey = cw_pgoutput_primary_key(src->dec, ent->nspname, ent->relname, &key);
	if (settings == NULL || nkey == 0 || nkey > CW_BATCH_MAX_KEYS)
		return cw_err_set(err, CW_EINVAL, PG_DOMAIN, "batch entity \"%s\": no usable key",
		                  ent->entity.name);
	memset(pq, 0, sizeof *pq);
	for (size_t i = 0; i < nkey; i++)
		pq->keys[i] = key[i];
	pq->q = (cw_batch_query_t){CW_BATCH_POSTGRES, ent->nspname, ent->relname,
	                           settings->batch.column, poll->kind, pq->keys, nkey,
	                           settings->batch.lag_ms, src->ctx->config->capture.batch_size};
	pq->timezone = settings->batch.timezone;
	return 0;
}

/* Finds the marker's columns in a page's result. */
static int locate_columns(const PGresult *res, page_query_t *pq, cw_err_t *err)
{
	pq->column_index = -1;
	for (size_t k = 0; k < pq->q.nkeys; k++)
		pq->key_index[k] = -1;
	/* The last column is the change time. */
	for (int c = 0; c < PQnfields(res) - 1; c++) {
		if (strcmp(PQfname(res, c), pq->q.column) == 0)
			pq->column_index = c;
		for (size_t k = 0; k < pq->q.nkeys; k++)
			if (strcmp(PQfname(res, c), pq->q.keys[k]) == 0)
				pq->key_index[k] = c;
	}
	bool found = pq->column_index >= 0;
	for (size_t k = 0; k < pq->q.nkeys; k++)
		found = found && pq->key_index[k] >= 0;
	if (!found)
		return cw_err_set(err, CW_EPROTO, PG_DOMAIN, "a poll's result lacks the change column "
		                  "or a key column");
	return 0;
}

/* Turns a page into changes of ent on src->batch and moves the marker to its last row. */
static int push_page(cw_pg_source_t *src, const pg_entity_t *ent, pg_poll_t *poll,
                     PGresult *res, page_query_t *pq, cw_err_t *err)
{
	cw_pg_rows_t rows;
	int rc = cw_pg_rows_init(&rows, res, ent->nspname, ent->relname, err);
	if (rc != 0)
		return rc;
	/* The last column is the change time, not a table column. */
	rows.rel.ncolumns--;
	rows.msg.row.new_tuple.ncolumns--;
	int n = PQntuples(res);
	int time_col = PQnfields(res) - 1;
	src->only = ent;
	for (int r = 0; r < n && rc == 0; r++) {
		const char *value = PQgetvalue(res, r, pq->column_index);
		int64_t commit_us = PQgetisnull(res, r, time_col) ? 0 :
		                    strtoll(PQgetvalue(res, r, time_col), NULL, 10);
		rc = pg_push_row(src, cw_pg_rows_at(&rows, r), value, commit_us, err);
		if (commit_us > src->newest_commit_us)
			src->newest_commit_us = commit_us;
	}
	src->only = NULL;
	cw_pg_rows_clear(&rows);
	if (rc != 0 || n == 0)
		return rc;
	const char *keys[CW_BATCH_MAX_KEYS];
	for (size_t k = 0; k < pq->q.nkeys; k++)
		keys[k] = PQgetvalue(res, n - 1, pq->key_index[k]);
	cw_batch_marker_set(&poll->marker, PQgetvalue(res, n - 1, pq->column_index), keys,
	                    pq->q.nkeys);
	poll->marker.rows += n;
	return 0;
}

/* Appends src->batch with the marker in one hub transaction. */
static int commit_page(cw_pg_source_t *src, const pg_entity_t *ent, const pg_poll_t *poll,
                       cw_err_t *err)
{
	char *key = marker_key(ent);
	char *json = cw_batch_marker_encode(&poll->marker);
	cw_capture_job_t job = {key, json, true, 0, 0, false};
	int rc = cw_capture_append(src->writer, &src->batch, &job, src->ctx->metrics, err);
	if (rc == 0)
		cw_change_batch_clear(&src->batch);
	free(json);
	free(key);
	return rc;
}

/* After the first complete read of a generation: a sweep of older rows, then live. */
static int go_live(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err)
{
	pg_push_sweep(src, ent, "batch");
	int rc = cw_capture_append(src->writer, &src->batch,
	                           &(cw_capture_job_t){NULL, NULL, true, 0, 0, false},
	                           src->ctx->metrics, err);
	cw_change_batch_clear(&src->batch);
	int64_t promoted = 0;
	if (rc == 0)
		rc = cw_oplog_promote_staged(src->hub, ent->entity.name, &promoted, err);
	cw_entity_registry_invalidate(src->ctx->registry);
	if (rc == 0) {
		ent->entity.status = CW_ENTITY_LIVE;
		char version[32];
		snprintf(version, sizeof version, "%lld", (long long)ent->entity.version);
		cw_log_kv(CW_LOG_INFO, COMPONENT, "entity live", "source", src->cfg->name, "entity",
		          ent->entity.name, "version", version, NULL);
	}
	return rc;
}

/* One poll of ent: every page up to the end, each committed with its marker. */
static int poll_entity(cw_pg_source_t *src, pg_entity_t *ent, pg_poll_t *poll,
                       cw_cancel_t *cancel, cw_err_t *err)
{
	page_query_t pq;
	int rc;
	if ((rc = load_marker(src, ent, poll, err)) != 0 ||
	    (rc = page_query_init(src, ent, poll, &pq, err)) != 0)
		return rc;
	/* A generation's first read: targets learn the table's columns first. */
	if (poll->marker.value == NULL && (rc = pg_schema_record(src, src->sql, ent, err)) != 0)
		return rc;
	cw_buf_t sql[2] = {CW_BUF_INIT, CW_BUF_INIT};
	cw_batch_sql_page(&pq.q, false, &sql[0]);
	cw_batch_sql_page(&pq.q, true, &sql[1]);
	bool located = false;
	poll->caught_up = false;
	while (rc == 0 && !poll->caught_up) {
		if (cw_cancel_is_set(cancel)) {
			rc = CW_ECANCELED;
			break;
		}
		bool marker = poll->marker.value != NULL;
		const char *params[CW_BATCH_MAX_PARAMS];
		int nparams = cw_batch_page_params(&pq.q, poll->marker.value,
		                                   (const char *const *)poll->marker.keys,
		                                   pq.timezone, params);
		PGresult *res = PQexecParams(src->sql, cw_buf_cstr(&sql[marker]), nparams, NULL,
		                             params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			char what[200];
			snprintf(what, sizeof what, "could not poll table %s of entity \"%s\"",
			         ent->entity.table, ent->entity.name);
			rc = pg_result_error(src->sql, res, what, err);
		} else if (!located && (rc = locate_columns(res, &pq, err)) == 0) {
			located = true;
		}
		int n = rc == 0 ? PQntuples(res) : 0;
		if (rc == 0)
			rc = push_page(src, ent, poll, res, &pq, err);
		PQclear(res);
		if (rc == 0 && n > 0)
			rc = commit_page(src, ent, poll, err);
		/* A page and its marker are in the hub, the next page not yet read. */
		if (rc == 0 && n > 0 && CW_FAILPOINT("batch_page_committed"))
			rc = cw_err_set(err, CW_EIO, PG_DOMAIN, "failpoint batch_page_committed");
		poll->caught_up = n < pq.q.limit;
	}
	cw_buf_free(&sql[0]);
	cw_buf_free(&sql[1]);
	cw_change_batch_clear(&src->batch);
	if (rc == 0 && ent->entity.status != CW_ENTITY_LIVE)
		rc = go_live(src, ent, err);
	return rc;
}

/* ---- deletes ------------------------------------------------------------- */

typedef struct bucket {
	int64_t count;
	char sum[48];
} bucket_t;

/* Reads (bucket, count, sum) rows into buckets. */
static void read_buckets(const PGresult *res, bucket_t buckets[CW_BATCH_BUCKETS])
{
	memset(buckets, 0, CW_BATCH_BUCKETS * sizeof *buckets);
	for (int r = 0; r < PQntuples(res); r++) {
		long b = strtol(PQgetvalue(res, r, 0), NULL, 10);
		if (b < 0 || b >= CW_BATCH_BUCKETS)
			continue;
		buckets[b].count = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		snprintf(buckets[b].sum, sizeof buckets[b].sum, "%s", PQgetvalue(res, r, 2));
	}
}

static int compare_text(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The result's first column, sorted (pointers borrowed from res). */
static const char **sorted_column(const PGresult *res)
{
	int n = PQntuples(res);
	const char **items = cw_xcalloc((size_t)n + 1, sizeof *items);
	for (int r = 0; r < n; r++)
		items[r] = PQgetvalue(res, r, 0);
	qsort(items, (size_t)n, sizeof *items, compare_text);
	return items;
}

/* Pushes a delete of ent for each key of hub_keys (sorted) not among source_keys (sorted). */
static size_t push_deletes(cw_pg_source_t *src, const pg_entity_t *ent, const char **hub_keys,
                           size_t nhub, const char **source_keys, size_t nsource)
{
	size_t j = 0, deletes = 0;
	for (size_t i = 0; i < nhub; i++) {
		while (j < nsource && strcmp(source_keys[j], hub_keys[i]) < 0)
			j++;
		if (j < nsource && strcmp(source_keys[j], hub_keys[i]) == 0)
			continue;
		cw_change_t change = {0};
		change.op = CW_OP_DELETE;
		change.entity = cw_xstrdup(ent->entity.name);
		change.doc_id = cw_xstrdup(hub_keys[i]);
		change.version = ent->entity.version;
		change.source_pos = cw_xstrdup("batch:delete_detection");
		cw_change_batch_push(&src->batch, &change);
		deletes++;
	}
	return deletes;
}

/* Appends the deletes pushed on src->batch (if any) and logs the comparison. */
static int append_deletes(cw_pg_source_t *src, const pg_entity_t *ent, size_t deletes,
                          const char *compared, cw_err_t *err)
{
	int rc = 0;
	if (deletes > 0)
		rc = cw_capture_append(src->writer, &src->batch,
		                       &(cw_capture_job_t){NULL, NULL, true, 0, 0, false},
		                       src->ctx->metrics, err);
	cw_change_batch_clear(&src->batch);
	if (rc == 0) {
		char count[32];
		snprintf(count, sizeof count, "%zu", deletes);
		cw_log_kv(CW_LOG_INFO, COMPONENT, "keys compared", "source", src->cfg->name,
		          "entity", ent->entity.name, "buckets_differing", compared, "deletes", count,
		          NULL);
	}
	return rc;
}

/*
 * A composite key's doc_id is the JSON array capture's own code writes
 * (cw_pgoutput_row_change), which SQL cannot hash alike: every key of the
 * hub and of the table is listed and compared (the hub read first).
 */
static int detect_deletes_listed(cw_pg_source_t *src, const pg_entity_t *ent,
                                 const page_query_t *pq, cw_err_t *err)
{
	const char *name[] = {ent->entity.name};
	PGresult *hub_res = cw_hub_exec(src->hub,
		"SELECT doc_id FROM cachewarp.batch_keys WHERE entity = $1", 1, name,
		"could not read the hub's batch keys", err);
	if (hub_res == NULL)
		return CW_EDB;
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, "SELECT ");
	for (size_t k = 0; k < pq->q.nkeys; k++) {
		if (k > 0)
			cw_buf_append_str(&sql, ", ");
		pg_quote_ident(&sql, pq->q.keys[k]);
	}
	cw_buf_append_str(&sql, " FROM ");
	append_table(&sql, ent);
	PGresult *source_res = pg_query(src, cw_buf_cstr(&sql), 0, NULL,
	                                "could not list the table's keys", err);
	cw_buf_free(&sql);
	if (source_res == NULL) {
		PQclear(hub_res);
		return CW_EDB;
	}
	cw_pg_rows_t rows;
	int rc = cw_pg_rows_init(&rows, source_res, ent->nspname, ent->relname, err);
	int n = PQntuples(source_res);
	char **ids = cw_xcalloc((size_t)n + 1, sizeof *ids);
	size_t nids = 0;
	for (int r = 0; r < n && rc == 0; r++) {
		cw_pgoutput_row_t row;
		if (cw_pgoutput_row_change(src->dec, cw_pg_rows_at(&rows, r), &row, NULL) != 0)
			continue;   /* a key capture cannot read: never in the hub either */
		ids[nids++] = row.doc_id;
		row.doc_id = NULL;
		cw_pgoutput_row_clear(&row);
	}
	cw_pg_rows_clear(&rows);
	const char **hub_keys = sorted_column(hub_res);
	qsort(ids, nids, sizeof *ids, compare_text);
	size_t deletes = 0;
	if (rc == 0) {
		deletes = push_deletes(src, ent, hub_keys, (size_t)PQntuples(hub_res),
		                       (const char **)ids, nids);
		rc = append_deletes(src, ent, deletes, "all", err);
	}
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	free(hub_keys);
	PQclear(hub_res);
	PQclear(source_res);
	return rc;
}

/*
 * Compares the hub's live keys of ent with the table's: buckets first, then
 * the keys of the buckets that differ. The hub is read before the table, so
 * a key the hub has and the table lacks was deleted (a row inserted meanwhile
 * is in neither, or only in the table). Deletes go to the hub in one batch.
 */
static int detect_deletes(cw_pg_source_t *src, const pg_entity_t *ent, const pg_poll_t *poll,
                          cw_err_t *err)
{
	page_query_t pq;
	int rc = page_query_init(src, ent, poll, &pq, err);
	if (rc != 0)
		return rc;
	if (pq.q.nkeys != 1)
		return detect_deletes_listed(src, ent, &pq, err);
	bucket_t *hub = cw_xcalloc(CW_BATCH_BUCKETS, sizeof *hub);
	bucket_t *source = cw_xcalloc(CW_BATCH_BUCKETS, sizeof *source);
	PGresult *hub_res = NULL, *source_res = NULL;
	cw_buf_t sql = CW_BUF_INIT, list = CW_BUF_INIT;
	const char **hub_keys = NULL, **source_keys = NULL;
	const char *name[] = {ent->entity.name, NULL};
	size_t differing = 0, deletes = 0;
	hub_res = cw_hub_exec(src->hub, cw_batch_sql_hub_buckets(), 1, name,
	                      "could not read the hub's batch keys", err);
	if (hub_res == NULL) {
		rc = CW_EDB;
		goto cleanup;
	}
	read_buckets(hub_res, hub);
	PQclear(hub_res);
	hub_res = NULL;
	cw_batch_sql_buckets(&pq.q, &sql);
	if ((source_res = pg_query(src, cw_buf_cstr(&sql), 0, NULL,
	                           "could not hash the table's keys", err)) == NULL) {
		rc = CW_EDB;
		goto cleanup;
	}
	read_buckets(source_res, source);
	PQclear(source_res);
	source_res = NULL;
	cw_buf_append_char(&list, '{');
	for (int b = 0; b < CW_BATCH_BUCKETS; b++) {
		if (hub[b].count == source[b].count && strcmp(hub[b].sum, source[b].sum) == 0)
			continue;
		/* Only the table has keys here: rows the next poll writes, nothing to delete. */
		if (hub[b].count == 0)
			continue;
		cw_buf_appendf(&list, "%s%d", differing ? "," : "", b);
		differing++;
	}
	cw_buf_append_char(&list, '}');
	if (differing == 0)
		goto cleanup;
	name[1] = cw_buf_cstr(&list);
	hub_res = cw_hub_exec(src->hub, cw_batch_sql_hub_bucket_keys(), 2, name,
	                      "could not read the hub's batch keys", err);
	if (hub_res == NULL) {
		rc = CW_EDB;
		goto cleanup;
	}
	cw_buf_reset(&sql);
	cw_batch_sql_bucket_keys(&pq.q, &sql);
	const char *buckets[] = {cw_buf_cstr(&list)};
	if ((source_res = pg_query(src, cw_buf_cstr(&sql), 1, buckets,
	                           "could not list the table's keys", err)) == NULL) {
		rc = CW_EDB;
		goto cleanup;
	}
	hub_keys = sorted_column(hub_res);
	source_keys = sorted_column(source_res);
	deletes = push_deletes(src, ent, hub_keys, (size_t)PQntuples(hub_res), source_keys,
	                       (size_t)PQntuples(source_res));
cleanup:
	if (rc == 0) {
		char nbuckets[32];
		snprintf(nbuckets, sizeof nbuckets, "%zu", differing);
		rc = append_deletes(src, ent, deletes, nbuckets, err);
	}
	free(hub_keys);
	free(source_keys);
	PQclear(hub_res);
	PQclear(source_res);
	cw_buf_free(&sql);
	cw_buf_free(&list);
	free(hub);
	free(source);
	return rc;
}

/* ---- the run ------------------------------------------------------------- */

/* When ent polls next, after one ending at now_ms (monotonic). */
static int64_t next_poll_ms(const cw_entity_t *settings, int64_t now_ms)
{
	if (settings->batch.schedule == NULL)
		return now_ms + cw_entity_poll_ms(settings);
	cw_cron_t cron;
	if (cw_cron_parse(settings->batch.schedule, &cron, NULL) != 0)
		return now_ms + 60000;
	int64_t wall_s = cw_clock_wall_us(cw_clock_system()) / 1000000;
	int64_t next_s = cw_cron_next(&cron, wall_s);
	if (next_s < 0)
		return INT64_MAX;
	return now_ms + (next_s - wall_s) * 1000;
}

/*
 * After a poll's query failed with the source still connected: when the
 * entity's check now fails (its table or column dropped, a privilege
 * revoked) the entity is marked failed and its siblings go on (0);
 * otherwise the poll's error rc stands.
 */
static int isolate_failure(cw_pg_source_t *src, pg_entity_t *ent, int rc, cw_err_t *err)
{
	cw_err_t why = *err;
	int check = pg_check_entity(src, ent, err);
	if (check != 0)
		return check;
	if (ent->failed)
		return 0;
	*err = why;
	return rc;
}

/* Polls each due entity and runs each due delete check; returns when the next is due. */
static int poll_due(cw_pg_source_t *src, cw_cancel_t *cancel, int64_t *wake_ms, cw_err_t *err)
{
	int rc = 0;
	for (size_t i = 0; i < src->nents && rc == 0; i++) {
		pg_entity_t *ent = &src->ents[i];
		const cw_entity_t *settings = settings_of(src, ent);
		if (ent->failed || settings == NULL)
			continue;
		pg_poll_t *poll = poll_of(src, ent->entity.name);
		int64_t now = cw_clock_now_ms(cw_clock_system());
		if (poll->next_poll_ms <= now) {
			pg_set_state(src, "polling", true);
			rc = poll_entity(src, ent, poll, cancel, err);
			if (rc == CW_EDB && PQstatus(src->sql) == CONNECTION_OK)
				rc = isolate_failure(src, ent, rc, err);
			poll->next_poll_ms = next_poll_ms(settings, cw_clock_now_ms(cw_clock_system()));
			if (rc == 0 && poll->next_delete_ms == 0 && settings->batch.delete_interval_ms > 0)
				poll->next_delete_ms = cw_clock_now_ms(cw_clock_system()) +
				                       settings->batch.delete_interval_ms;
		}
		now = cw_clock_now_ms(cw_clock_system());
		if (rc == 0 && poll->next_delete_ms != 0 && poll->next_delete_ms <= now &&
		    ent->entity.status == CW_ENTITY_LIVE) {
			rc = detect_deletes(src, ent, poll, err);
			poll->next_delete_ms = cw_clock_now_ms(cw_clock_system()) +
			                       settings->batch.delete_interval_ms;
		}
		if (poll->next_poll_ms < *wake_ms)
			*wake_ms = poll->next_poll_ms;
		if (poll->next_delete_ms != 0 && poll->next_delete_ms < *wake_ms)
			*wake_ms = poll->next_delete_ms;
	}
	return rc;
}

static int check_entities(cw_pg_source_t *src, cw_err_t *err)
{
	for (size_t i = 0; i < src->nents; i++) {
		int rc = pg_check_entity(src, &src->ents[i], err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int run_once(cw_pg_source_t *src, cw_cancel_t *cancel, cw_err_t *err)
{
	int rc;
	pg_set_state(src, "starting", false);
	src->hub = cw_hub_connect_auth(src->ctx->config->hub.url, src->ctx->config->hub.auth, err);
	if (src->hub == NULL)
		return CW_EDB;
	src->writer = cw_oplog_writer_new(src->hub);
	/* A generation's first read goes to the oplog directly, as a scan does. */
	cw_oplog_writer_set_scan(src->writer, true);
	cw_oplog_writer_track_keys(src->writer, true);
	src->dec = cw_pgoutput_new();
	for (size_t i = 0; i < src->npolls; i++)
		src->polls[i].loaded = false;
	if ((rc = pg_connect(src, false, &src->sql, err)) != 0 ||
	    (rc = pg_reload_entities(src, false, cancel, err)) != 0 ||
	    (rc = check_entities(src, err)) != 0)
		return rc;
	int64_t next_reload = cw_clock_now_ms(cw_clock_system()) + PG_RELOAD_INTERVAL_MS;
	for (;;) {
		int64_t wake = next_reload;
		if ((rc = poll_due(src, cancel, &wake, err)) != 0)
			return rc;
		pg_set_state(src, "waiting", true);
		int64_t now = cw_clock_now_ms(cw_clock_system());
		if (wake > now && (rc = cw_cancel_wait_ms(cancel, wake - now)) != 0)
			return rc;
		if (cw_clock_now_ms(cw_clock_system()) >= next_reload) {
			if ((rc = pg_reload_entities(src, false, cancel, err)) != 0 ||
			    (rc = check_entities(src, err)) != 0)
				return rc;
			next_reload = cw_clock_now_ms(cw_clock_system()) + PG_RELOAD_INTERVAL_MS;
		}
	}
}

static void cleanup_run(cw_pg_source_t *src)
{
	cw_change_batch_free(&src->batch);
	cw_pgoutput_free(src->dec);
	src->dec = NULL;
	PQfinish(src->sql);
	src->sql = NULL;
	cw_oplog_writer_free(src->writer);
	src->writer = NULL;
	cw_hub_close(src->hub);
	src->hub = NULL;
}

static int batch_run(void *source, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_pg_source_t *src = source;
	cw_err_t local = {0};
	if (err == NULL)
		err = &local;
	src->cancel = cancel;
	int rc = run_once(src, cancel, err);
	if (rc == 0 && cw_cancel_is_set(cancel))
		rc = CW_ECANCELED;
	if (rc == CW_ECANCELED) {
		cw_err_set(err, CW_ECANCELED, PG_DOMAIN, "batch poller of source \"%s\" stopped",
		           src->cfg->name);
		pg_set_state(src, "stopped", false);
	} else if (rc != 0) {
		pthread_mutex_lock(&src->mutex);
		snprintf(src->status.state, sizeof src->status.state, "retrying");
		src->status.healthy = false;
		snprintf(src->status.last_error, sizeof src->status.last_error, "%s", err->message);
		pthread_mutex_unlock(&src->mutex);
	}
	cleanup_run(src);
	return rc;
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
