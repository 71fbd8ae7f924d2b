/*
 * This file contains the PostgreSQL source's snapshots (postgres_internal.h):
 * the first one, gapless with the stream (the slot is created with an
 * exported snapshot and every table is read inside it on a second
 * connection, so streaming from the slot's consistent point neither misses
 * nor repeats a transaction), and the scan of one entity added at runtime.
 * Rows are read with a cursor in batches and turned into changes by the same
 * code as streamed rows (cw_pgoutput_row_change), so a value looks the same
 * whichever way it arrived. The cursor reads in key order, and each batch
 * commits with the scan's progress (capture/scan_progress.h): a scan
 * interrupted part-way resumes after the last committed key.
 */
#include "capture/postgres_internal.h"

#include "capture/pg_rows.h"
#include "capture/scan_log.h"
#include "capture/scan_progress.h"
#include "core/clock.h"
#include "core/failpoint.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_ROWS "1000"
#define PROGRESS_INTERVAL_MS 5000

static int exec_ok(PGconn *conn, const char *sql, const char *what, cw_err_t *err)
{
	PGresult *res = PQexec(conn, sql);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pg_result_error(conn, res, what, err);
	PQclear(res);
	return rc;
}

static int64_t estimate_rows(PGconn *conn, const pg_entity_t *ent)
{
	const char *params[] = {ent->nspname, ent->relname};
	PGresult *res = PQexecParams(conn,
		"SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n "
		"ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
		2, NULL, params, NULL, NULL, 0);
	int64_t rows = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rows;
}

/* Turns one FETCH result into changes of ent. */
static int push_rows(cw_pg_source_t *src, const pg_entity_t *ent, PGresult *res,
                     const char *source_pos, cw_err_t *err)
{
	cw_pg_rows_t rows;
	int rc = cw_pg_rows_init(&rows, res, ent->nspname, ent->relname, err);
	if (rc != 0) {
		cw_err_prefix(err, "entity \"%s\"", ent->entity.name);
		return rc;
	}
	for (int r = 0; r < PQntuples(res) && rc == 0; r++)
		rc = pg_push_row(src, cw_pg_rows_at(&rows, r), source_pos, 0, err);
	cw_pg_rows_clear(&rows);
	return rc;
}

/* The column of res named exactly name (PQfnumber would fold "Id" to id), or -1. */
static int column_named(const PGresult *res, const char *name)
{
	for (int c = 0; c < PQnfields(res); c++)
		if (strcmp(PQfname(res, c), name) == 0)
			return c;
	return -1;
}

/* Moves progress's key to the last row of res (nkeys key columns named keys). */
static int advance_key(cw_scan_progress_t *progress, const PGresult *res,
                       const char *const *keys, size_t nkeys, cw_err_t *err)
{
	const char *values[CW_SCAN_PROGRESS_MAX_KEYS];
	for (size_t k = 0; k < nkeys; k++) {
		int column = column_named(res, keys[k]);
		if (column < 0)
			return cw_err_set(err, CW_EPROTO, PG_DOMAIN, "a snapshot row lacks key column "
			                  "\"%s\"", keys[k]);
		values[k] = PQgetvalue(res, PQntuples(res) - 1, column);
	}
	cw_scan_progress_set_key(progress, values, nkeys);
	progress->rows += PQntuples(res);
	return 0;
}

/*
 * Hands src->batch with ent's scan progress to pipe, whose thread appends
 * them in one hub transaction while the next rows are read. A failed commit
 * fails the next hand-over or the drain, and nothing after it is written.
 */
static int write_page(cw_pg_source_t *src, pg_pipe_t *pipe, const pg_entity_t *ent,
                      const cw_scan_progress_t *progress, cw_cancel_t *cancel, cw_err_t *err)
{
	char *key = pg_scan_progress_key(src, ent);
	char *json = cw_scan_progress_encode(progress);
	cw_capture_job_t job = {key, json, true, 0, 0, false};
	/* Seams: rows and progress are in the hub, the next rows not yet read; or the
	 * last rows and the sweep, the entity not yet live. */
	int rc = pg_pipe_submit_job(pipe, &src->batch, &job, progress->done ? "after_scan_done"
	                            : "after_scan_page_commit", cancel, err);
	free(json);
	free(key);
	return rc;
}

/*
 * Reads ent's table on conn (inside the snapshot's transaction) into the hub
 * in key order, after progress's key; its last batch carries the sweep and
 * progress done. A done progress has nothing left to read. Batches go
 * through pipe, so reading overlaps the hub's writes; the table is done when
 * every batch is committed. The time spent reading and decoding (not waiting
 * for the pipe) is counted in cachewarp_snapshot_read_seconds_total.
 */
static int scan_table(cw_pg_source_t *src, PGconn *conn, pg_entity_t *ent, pg_pipe_t *pipe,
                      const char *source_pos, cw_scan_progress_t *progress, cw_cancel_t *cancel,
                      cw_err_t *err)
{
	if (progress->done)
		return 0;
	const char *const *keys = NULL;
	size_t nkeys = cw_pgoutput_primary_key(src->dec, ent->nspname, ent->relname, &keys);
	if (nkeys == 0 || nkeys > CW_SCAN_PROGRESS_MAX_KEYS)
		return cw_err_set(err, CW_EINVAL, PG_DOMAIN, "entity \"%s\": table %s has no key "
		                  "to scan in order", ent->entity.name, ent->entity.table);
	cw_buf_t sql = CW_BUF_INIT;
	cw_scan_progress_cursor_sql(progress, ent->nspname, ent->relname, keys, nkeys, &sql);
	int64_t estimate = estimate_rows(conn, ent), rows = progress->rows;
	const cw_scan_log_t scan_log = {PG_COMPONENT, src->cfg->name, ent->entity.name,
	                                ent->entity.table, cw_clock_now_ms(cw_clock_system())};
	int64_t next_log = scan_log.started_ms + PROGRESS_INTERVAL_MS;
	double read_s = 0;
	char labels[160];
	snprintf(labels, sizeof labels, "entity=\"%s\"", ent->entity.name);
	PGresult *declared = PQexecParams(conn, sql.data, progress->keys != NULL ? (int)nkeys : 0,
	                                  NULL, (const char *const *)progress->keys, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(declared) != PGRES_COMMAND_OK)
		rc = pg_result_error(conn, declared, "could not open a snapshot cursor", err);
	PQclear(declared);
	src->only = ent;
	while (rc == 0) {
		if (cw_cancel_is_set(cancel)) {
			rc = CW_ECANCELED;
			break;
		}
		double read_started = cw_time_monotonic_s();
		PGresult *res = PQexec(conn, "FETCH " FETCH_ROWS " FROM cw_scan");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			char what[200];
			snprintf(what, sizeof what, "could not read table %s of entity \"%s\"",
			         ent->entity.table, ent->entity.name);
			rc = pg_result_error(conn, res, what, err);
			PQclear(res);
			break;
		}
		int n = PQntuples(res);
		/* Before the first batch: a target finds the column order before the first row. */
		if (progress->keys == NULL)
			rc = pg_schema_record(src, conn, ent, err);
		if (rc == 0)
			rc = push_rows(src, ent, res, source_pos, err);
		if (rc == 0 && n > 0)
			rc = advance_key(progress, res, keys, nkeys, err);
		PQclear(res);
		double read_done = cw_time_monotonic_s() - read_started;
		read_s += read_done;
		cw_metrics_counter_add(src->ctx->metrics, "cachewarp_snapshot_read_seconds_total",
		                       labels, read_done);
		if (rc != 0 || n == 0)
			break;
		rows += n;
		cw_metrics_counter_add(src->ctx->metrics, "cachewarp_snapshot_rows_total", labels, n);
		if (cw_capture_batch_full(&src->batch, src->ctx->config->capture.snapshot_batch_size))
			rc = write_page(src, pipe, ent, progress, cancel, err);
		/* A scan while streaming: keep the replication connection alive. */
		if (rc == 0)
			rc = pg_stream_keepalive(src, err);
		if (cw_clock_now_ms(cw_clock_system()) >= next_log) {
			cw_scan_log_progress(&scan_log, rows, estimate, false, -1);
			next_log = cw_clock_now_ms(cw_clock_system()) + PROGRESS_INTERVAL_MS;
		}
	}
	src->only = NULL;
	if (rc == 0) {
		pg_push_sweep(src, ent, source_pos);
		progress->done = true;
		rc = write_page(src, pipe, ent, progress, cancel, err);
	}
	/* Every row of the table, its sweep and its progress in the hub. */
	if (rc == 0)
		rc = pg_pipe_drain(pipe, cancel, err);
	if (rc == 0)
		rc = exec_ok(conn, "CLOSE cw_scan", "could not close a snapshot cursor", err);
	if (rc == 0)
		cw_scan_log_progress(&scan_log, rows, estimate, true, read_s);
	cw_buf_free(&sql);
	return rc;
}

/*
 * Status scanning. Unless the entity is pending (nothing of its current
 * version written yet), the scan starts a new generation (version + 1): rows
 * of a live generation or of an interrupted scan that are gone from the table
 * meanwhile are then removed by this scan's sweep.
 */
int pg_begin_generation(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err)
{
	int rc = 0;
	if (ent->entity.status != CW_ENTITY_PENDING)
		rc = cw_entity_store_bump_version(src->hub, ent->entity.name, &ent->entity.version,
		                                  err);
	if (rc == 0)
		rc = cw_entity_store_set_status(src->hub, ent->entity.name, CW_ENTITY_SCANNING, err);
	cw_entity_registry_invalidate(src->ctx->registry);
	if (rc == 0)
		ent->entity.status = CW_ENTITY_SCANNING;
	return rc;
}

/* Moves what was staged during the scan into the oplog; the entity is live. */
static int go_live(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err)
{
	int64_t promoted = 0;
	int rc = cw_oplog_promote_staged(src->hub, ent->entity.name, &promoted, err);
	if (rc == 0)
		rc = pg_scan_progress_forget(src, ent, err);
	cw_entity_registry_invalidate(src->ctx->registry);   /* the entity turned live */
	if (rc == 0) {
		ent->entity.status = CW_ENTITY_LIVE;
		ent->rescan = false;
		char version[32];
		snprintf(version, sizeof version, "%lld", (long long)ent->entity.version);
		cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "entity live", "source", src->cfg->name,
		          "entity", ent->entity.name, "version", version, NULL);
	}
	return rc;
}

/* Snapshot names look like 00000003-00000002-1. */
static bool snapshot_name_ok(const char *name)
{
	if (name[0] == '\0' || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (strchr("0123456789ABCDEFabcdef-", *p) == NULL)
			return false;
	return true;
}

int pg_snapshot_scan_all(cw_pg_source_t *src, PGconn *reader, cw_scan_progress_t *progress,
                         uint64_t start_lsn, cw_cancel_t *cancel, cw_err_t *err)
{
	char lsn_text[32];
	pg_lsn_format(start_lsn, lsn_text);
	pg_pipe_t *pipe = pg_pipe_start(src, true, err);
	if (pipe == NULL)
		return CW_EDB;
	int rc = 0;
	for (size_t i = 0; i < src->nents && rc == 0; i++)
		if (!src->ents[i].failed)
			rc = scan_table(src, reader, &src->ents[i], pipe, lsn_text, &progress[i], cancel,
			                err);
	pg_pipe_stop(pipe);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(src->hub);
	cw_oplog_writer_set_scan(writer, true);
	if (rc == 0)
		rc = exec_ok(reader, "COMMIT", "could not end the snapshot", err);
	/* Every scan and its sweep are in: the checkpoint completes the generation. */
	if (rc == 0)
		rc = pg_write_batch(src, writer, start_lsn, false, err);
	for (size_t i = 0; i < src->nents && rc == 0; i++)
		if (!src->ents[i].failed)
			rc = go_live(src, &src->ents[i], err);
	if (rc == 0)
		src->durable_lsn = src->complete_lsn = start_lsn;
	cw_change_batch_clear(&src->batch);
	cw_oplog_writer_free(writer);
	return rc;
}

int pg_snapshot_all(cw_pg_source_t *src, cw_cancel_t *cancel, uint64_t *start_lsn,
                    cw_err_t *err)
{
	PGconn *reader = NULL;
	PGresult *res = NULL;
	cw_scan_progress_t *progress = NULL;
	cw_buf_t sql = CW_BUF_INIT;
	char lsn_text[32] = "";
	int rc = 0;
	/* After a lost slot the source stays unhealthy until the new generation is complete. */
	pg_set_state(src, src->position_lost ? "rescan" : "snapshot", !src->position_lost);
	if (src->repl == NULL && (rc = pg_connect(src, true, &src->repl, err)) != 0)
		goto cleanup;
	cw_buf_append_str(&sql, "CREATE_REPLICATION_SLOT ");
	pg_quote_ident(&sql, src->cfg->slot);
	cw_buf_append_str(&sql, " LOGICAL pgoutput (SNAPSHOT 'export')");
	res = PQexec(src->repl, sql.data);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 3) {
		char what[200];
		snprintf(what, sizeof what, "could not create replication slot \"%s\"", src->cfg->slot);
		rc = pg_result_error(src->repl, res, what, err);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state != NULL && strcmp(state, "53400") == 0) {
			/* configuration_limit_exceeded: every slot is taken. */
			char reason[CW_ERR_MESSAGE_LEN];
			snprintf(reason, sizeof reason, "%s", err->message);
			rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN, "%.200s: drop a slot nobody uses "
				"(SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
				"WHERE NOT active AND slot_name = '...') or raise max_replication_slots "
				"(ALTER SYSTEM SET max_replication_slots = ...; then restart PostgreSQL)",
				reason);
		}
		goto cleanup;
	}
	if (pg_lsn_parse(PQgetvalue(res, 0, 1), start_lsn) != 0 ||
	    !snapshot_name_ok(PQgetvalue(res, 0, 2))) {
		rc = cw_err_set(err, CW_EPROTO, PG_DOMAIN, "CREATE_REPLICATION_SLOT returned "
		                "an unexpected point \"%s\" or snapshot \"%s\"",
		                PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		goto cleanup;
	}
	/* Only now, with the slot made, a new generation: a failed set-up never bumps a version. */
	for (size_t i = 0; i < src->nents && rc == 0; i++)
		if (!src->ents[i].failed)
			rc = pg_begin_generation(src, &src->ents[i], err);
	if (rc != 0)
		goto cleanup;
	snprintf(lsn_text, sizeof lsn_text, "%s", PQgetvalue(res, 0, 1));
	cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "replication slot created", "source", src->cfg->name,
	          "slot", src->cfg->slot, "consistent_point", lsn_text, NULL);
	cw_buf_reset(&sql);
	cw_buf_appendf(&sql, "SET TRANSACTION SNAPSHOT '%s'", PQgetvalue(res, 0, 2));
	if ((rc = pg_connect(src, false, &reader, err)) != 0)
		goto cleanup;
	if ((rc = exec_ok(reader, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	                  "could not begin the snapshot", err)) != 0 ||
	    (rc = exec_ok(reader, sql.data, "could not import the exported snapshot", err)) != 0)
		goto cleanup;
	progress = cw_xcalloc(src->nents > 0 ? src->nents : 1, sizeof *progress);
	for (size_t i = 0; i < src->nents; i++) {
		progress[i].version = src->ents[i].entity.version;
		cw_scan_progress_set_origin(&progress[i], src->cfg->slot, lsn_text);
	}
	rc = pg_snapshot_scan_all(src, reader, progress, *start_lsn, cancel, err);
cleanup:
	for (size_t i = 0; progress != NULL && i < src->nents; i++)
		cw_scan_progress_clear(&progress[i]);
	free(progress);
	cw_change_batch_clear(&src->batch);
	PQclear(res);
	PQfinish(reader);
	cw_buf_free(&sql);
	return rc;
}

int pg_snapshot_entity(cw_pg_source_t *src, pg_entity_t *ent, cw_cancel_t *cancel,
                       cw_err_t *err)
{
	pg_pipe_t *pipe = NULL;
	cw_scan_progress_t progress = {0};
	int rc;
	char lsn_text[32] = "";
	pg_set_state(src, "snapshot", true);
	if ((rc = pg_flush(src, err)) != 0 ||
	    (src->pipe != NULL && (rc = pg_pipe_drain(src->pipe, cancel, err)) != 0) ||
	    (rc = pg_scan_progress_resume(src, ent, NULL, &progress, err)) != 0)
		goto cleanup;
	if (src->complete_lsn != 0)
		pg_lsn_format(src->complete_lsn, lsn_text);
	/* No scan of this generation to resume: a new one, from the first key. */
	if (progress.version == 0) {
		if ((rc = pg_begin_generation(src, ent, err)) != 0)
			goto cleanup;
		progress.version = ent->entity.version;
		cw_scan_progress_set_origin(&progress, src->cfg->slot, lsn_text);
	}
	cw_log_kv(CW_LOG_INFO, PG_COMPONENT, progress.rows > 0 ? "resuming the scan of an entity"
	          : "scanning entity added at runtime", "source", src->cfg->name, "entity",
	          ent->entity.name, "table", ent->entity.table, NULL);
	if ((pipe = pg_pipe_start(src, true, err)) == NULL) {
		rc = CW_EDB;
		goto cleanup;
	}
	rc = exec_ok(src->sql, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	             "could not begin a scan", err);
	if (rc == 0)
		rc = scan_table(src, src->sql, ent, pipe, lsn_text, &progress, cancel, err);
	exec_ok(src->sql, rc == 0 ? "COMMIT" : "ROLLBACK", "could not end a scan", rc ? NULL : err);
	if (rc == 0)
		rc = go_live(src, ent, err);
cleanup:
	pg_pipe_stop(pipe);
	cw_scan_progress_clear(&progress);
	cw_change_batch_clear(&src->batch);
	pg_set_state(src, "streaming", true);
	return rc;
}
