/*
 * This file contains the PostgreSQL source (capture/source.h): its interface
 * table, the run loop (connect, check the set-up, decide between resuming from
 * the stored LSN and a new snapshot, stream), and the helpers its snapshot and
 * stream halves share (postgres_internal.h); its entities are in
 * postgres_entities.c. docs/sources-postgres.md is the user's view.
 */
#include "capture/postgres_internal.h"
#include "capture/source.h"
#include "capture/source_run.h"

#include "core/auth.h"
#include "core/clock.h"
#include "core/json_fields.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"
#include "hub/metadata.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------- */

void pg_lsn_format(uint64_t lsn, char out[32])
{
	snprintf(out, 32, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

int pg_lsn_parse(const char *text, uint64_t *lsn)
{
	unsigned int hi, lo;
	int used = 0;
	if (text == NULL || sscanf(text, "%X/%X%n", &hi, &lo, &used) != 2 || text[used] != '\0')
		return CW_EINVAL;
	*lsn = ((uint64_t)hi << 32) | lo;
	return 0;
}

void pg_quote_ident(cw_buf_t *buf, const char *name)
{
	cw_buf_append_char(buf, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '"')
			cw_buf_append_char(buf, '"');
		cw_buf_append_char(buf, *p);
	}
	cw_buf_append_char(buf, '"');
}

void pg_quote_table(cw_buf_t *buf, const char *nspname, const char *relname)
{
	pg_quote_ident(buf, nspname);
	cw_buf_append_char(buf, '.');
	pg_quote_ident(buf, relname);
}

int pg_result_error(PGconn *conn, const PGresult *res, const char *what, cw_err_t *err)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(conn);
	char *masked = cw_secret_mask(msg);
	size_t len = strlen(masked);
	while (len > 0 && (masked[len - 1] == '\n' || masked[len - 1] == ' '))
		masked[--len] = '\0';
	cw_err_set(err, CW_EDB, PG_DOMAIN, "%s: %s", what, masked);
	free(masked);
	return CW_EDB;
}

int pg_connect(cw_pg_source_t *src, bool replication, PGconn **out, cw_err_t *err)
{
	const char *keys[] = {"dbname", "application_name", "client_encoding",
	                      replication ? "replication" : NULL, NULL};
	const char *values[] = {src->cfg->url, "cachewarp", "UTF8", "database", NULL};
	PGconn *conn = NULL;
	*out = NULL;
	cw_err_t why;
	int auth_rc = cw_auth_pg_connect(src->cfg->auth, keys, values, &conn, &why);
	if (auth_rc != 0)
		return cw_err_set(err, auth_rc, PG_DOMAIN, "could not connect to source \"%s\": %s",
		                  src->cfg->name, why.message);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		char what[300];
		snprintf(what, sizeof what, "could not connect to source \"%s\" at \"%s\"%s",
		         src->cfg->name, src->masked_url, replication ? " for replication" : "");
		int rc = pg_result_error(conn, NULL, what, err);
		char hint[CW_ERR_MESSAGE_LEN];
		cw_auth_failure_hint(src->cfg->auth, conn ? PQerrorMessage(conn) : NULL, hint, sizeof hint);
		if (hint[0] != '\0' && err != NULL) {
			char reason[CW_ERR_MESSAGE_LEN];
			snprintf(reason, sizeof reason, "%s", err->message);
			cw_err_set(err, rc, PG_DOMAIN, "%.300s%s", reason, hint);
		}
		if (cw_hub_auth_refused(conn)) {
			char reason[CW_ERR_MESSAGE_LEN];
			snprintf(reason, sizeof reason, "%s", err != NULL ? err->message : what);
			if (src->cfg->auth != NULL)
				rc = cw_err_set(err, CW_EAUTH, PG_DOMAIN, "%.380s: the server refused the "
				                "credentials of authentication \"%s\"; fix that entry, or "
				                "pg_hba.conf", reason, src->cfg->auth->id);
			else
				rc = cw_err_set(err, CW_EAUTH, PG_DOMAIN, "%.380s: the server refused the "
				                "credentials; fix the user and password of sources[].url, or "
				                "pg_hba.conf", reason);
		}
		PQfinish(conn);
		return rc;
	}
	*out = conn;
	return 0;
}

void pg_set_state(cw_pg_source_t *src, const char *state, bool healthy)
{
	cw_component_status_set(&src->mutex, &src->status, state, healthy, healthy ? "" : NULL);
}

void pg_publish_lag(cw_pg_source_t *src)
{
	int64_t lag_bytes = -1;
	double lag_seconds = -1;
	if (src->server_wal_end != 0)
		lag_bytes = src->server_wal_end > src->durable_lsn ?
		            (int64_t)(src->server_wal_end - src->durable_lsn) : 0;
	if (lag_bytes == 0 && !src->in_txn && src->batch.len == 0)
		lag_seconds = 0;
	else if (src->newest_commit_us > 0)
		lag_seconds = (double)(cw_clock_wall_us(cw_clock_system()) - src->newest_commit_us) / 1e6;
	if (lag_seconds < -1)
		lag_seconds = 0;
	char lsn[32] = "";
	if (src->durable_lsn != 0)
		pg_lsn_format(src->durable_lsn, lsn);
	pthread_mutex_lock(&src->mutex);
	src->status.lag_bytes = lag_bytes;
	src->status.lag_seconds = lag_seconds;
	snprintf(src->status.position, sizeof src->status.position, "%s", lsn);
	pthread_mutex_unlock(&src->mutex);
	char labels[160];
	snprintf(labels, sizeof labels, "source=\"%s\"", src->cfg->name);
	cw_metrics_gauge_set(src->ctx->metrics, "cachewarp_source_lag_bytes", labels,
	                     lag_bytes < 0 ? 0 : (double)lag_bytes);
	cw_metrics_gauge_set(src->ctx->metrics, "cachewarp_source_lag_seconds", labels,
	                     lag_seconds < 0 ? 0 : lag_seconds);
}

/* ---- changes ------------------------------------------------------------- */

/* Adds a change to src->batch; its strings (borrowed) are copied into the batch's arena. */
static void push_change(cw_pg_source_t *src, cw_op_t op, const pg_entity_t *ent,
                        const char *doc_id, const char *data, const char *source_pos,
                        int64_t commit_us)
{
	cw_change_t change = {0};
	change.op = op;
	change.entity = (char *)ent->entity.name;
	change.doc_id = (char *)doc_id;
	change.data = (char *)data;
	change.version = ent->entity.version;
	change.source_pos = (char *)source_pos;
	change.created_at_us = commit_us;
	if (src->batch.len == 0)
		src->batch_started_ms = cw_clock_now_ms(cw_clock_system());
	cw_change_batch_add(&src->batch, &change);
}

void pg_push_sweep(cw_pg_source_t *src, const pg_entity_t *ent, const char *source_pos)
{
	push_change(src, CW_OP_SWEEP, ent, NULL, NULL, source_pos, 0);
}

static int quarantine(cw_pg_source_t *src, const pg_entity_t *ent, const char *doc_id,
                      const char *source_pos, const cw_err_t *why, const char *raw,
                      cw_err_t *err)
{
	cw_log_kv(CW_LOG_WARN, PG_COMPONENT, "row quarantined", "source", src->cfg->name,
	          "entity", ent->entity.name, "reason", why->message, NULL);
	cw_quarantine_record_t record = {ent->entity.name, doc_id, source_pos, why->message, raw};
	return cw_quarantine_add(src->hub, &record, err);
}

int pg_push_row(cw_pg_source_t *src, const cw_pgoutput_msg_t *msg, const char *source_pos,
                int64_t commit_us, cw_err_t *err)
{
	const cw_pgoutput_rel_t *rel = msg->row.relation;
	size_t idx[16];
	size_t n = pg_entities_of(src, rel->nspname, rel->relname, idx, 16);
	for (size_t i = 0; src->only != NULL && i < n; i++)
		if (&src->ents[idx[i]] == src->only) {
			idx[0] = idx[i];
			n = 1;
		}
	if (n == 0)
		return 0;
	cw_pgoutput_row_t row;
	cw_err_t why = {0};
	if (cw_pgoutput_row_change(src->dec, msg, &row, &why) != 0) {
		for (size_t i = 0; i < n; i++)
			if (quarantine(src, &src->ents[idx[i]], NULL, source_pos, &why, NULL, err) != 0)
				return CW_EDB;
		return 0;
	}
	int rc = 0;
	cw_buf_t projected = CW_BUF_INIT;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const pg_entity_t *ent = &src->ents[idx[i]];
		if (row.old_doc_id != NULL)
			push_change(src, CW_OP_DELETE, ent, row.old_doc_id, NULL, source_pos, commit_us);
		if (row.op == CW_OP_DELETE) {
			push_change(src, CW_OP_DELETE, ent, row.doc_id, NULL, source_pos, commit_us);
			continue;
		}
		if (ent->proj == NULL) {
			push_change(src, CW_OP_UPSERT, ent, row.doc_id, row.data, source_pos, commit_us);
			continue;
		}
		cw_err_clear(&why);
		if (cw_projection_json(ent->proj, row.data, &projected, &why) != 0)
			rc = quarantine(src, ent, row.doc_id, source_pos, &why, row.data, err);
		else
			push_change(src, CW_OP_UPSERT, ent, row.doc_id, cw_buf_cstr(&projected),
			            source_pos, commit_us);
	}
	cw_buf_free(&projected);
	cw_pgoutput_row_clear(&row);
	return rc;
}

void pg_checkpoint_json(const cw_pg_source_t *src, uint64_t lsn, bool partial,
                        char json[PG_CHECKPOINT_JSON_LEN])
{
	json[0] = '\0';
	if (lsn == 0)
		return;
	char text[32], txn[32];
	pg_lsn_format(lsn, text);
	if (!partial) {
		snprintf(json, PG_CHECKPOINT_JSON_LEN, "{\"lsn\":\"%s\",\"slot\":\"%s\"}", text,
		         src->cfg->slot);
		return;
	}
	pg_lsn_format(src->txn_final_lsn, txn);
	snprintf(json, PG_CHECKPOINT_JSON_LEN,
	         "{\"lsn\":\"%s\",\"slot\":\"%s\",\"txn\":\"%s\",\"txn_done\":%llu}", text,
	         src->cfg->slot, txn, (unsigned long long)src->txn_msgs);
}

int pg_append(const cw_pg_source_t *src, cw_oplog_writer_t *writer, cw_change_batch_t *batch,
              uint64_t checkpoint_lsn, bool partial, cw_err_t *err)
{
	char json[PG_CHECKPOINT_JSON_LEN] = "";
	pg_checkpoint_json(src, checkpoint_lsn, partial, json);
	cw_capture_job_t job = {checkpoint_lsn ? src->checkpoint_key : NULL, json, false, 0, 0,
	                        partial};
	int rc = cw_capture_append(writer, batch, &job, src->ctx->metrics, err);
	if (rc == 0)
		cw_change_batch_clear(batch);
	return rc;
}

int pg_write_batch(cw_pg_source_t *src, cw_oplog_writer_t *writer, uint64_t checkpoint_lsn,
                   bool partial, cw_err_t *err)
{
	int rc = pg_append(src, writer, &src->batch, checkpoint_lsn, partial, err);
	if (rc == 0 && checkpoint_lsn != 0)
		src->stored_lsn = checkpoint_lsn;
	return rc;
}

/*
 * The state a failed run leaves: "failed" for a set-up error the user must
 * fix (refused credentials, a missing privilege, a setting), which the job
 * server checks again every 30 s, saying it once (control/jobs.h);
 * "retrying" for the others.
 */
static const char *error_state(const cw_err_t *err)
{
	bool must_fix = err->code == CW_EINVAL || err->code == CW_ENOTFOUND || err->code == CW_EAUTH;
	return must_fix ? "failed" : "retrying";
}

/* ---- the slot and the run ------------------------------------------------ */

typedef enum slot_state { SLOT_MISSING, SLOT_OK, SLOT_LOST } slot_state_t;

/* The slot's state and, when it has one, where it starts (*confirmed, else 0). */
static int read_slot(cw_pg_source_t *src, slot_state_t *state, uint64_t *confirmed,
                     cw_err_t *err)
{
	const char *params[] = {src->cfg->slot};
	*confirmed = 0;
	PGresult *res = pg_query(src, "SELECT wal_status, plugin, database = current_database(), "
	                      "confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1",
	                      1, params,
	                      "could not read the replication slots", err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (PQntuples(res) == 0) {
		*state = SLOT_MISSING;
	} else if (strcmp(PQgetvalue(res, 0, 1), "pgoutput") != 0 ||
	           strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN,
			"replication slot \"%s\" exists but is not a pgoutput slot of this database: "
			"choose another sources[].slot or drop it", src->cfg->slot);
	} else {
		*state = strcmp(PQgetvalue(res, 0, 0), "lost") == 0 ? SLOT_LOST : SLOT_OK;
		if (!PQgetisnull(res, 0, 3) && pg_lsn_parse(PQgetvalue(res, 0, 3), confirmed) != 0)
			*confirmed = 0;
	}
	PQclear(res);
	return rc;
}

static int drop_slot(cw_pg_source_t *src, cw_err_t *err)
{
	const char *params[] = {src->cfg->slot};
	PGresult *res = pg_query(src, "SELECT pg_drop_replication_slot(slot_name) "
	                      "FROM pg_replication_slots WHERE slot_name = $1", 1, params,
	                      "could not drop the replication slot", err);
	if (res == NULL)
		return CW_EDB;
	PQclear(res);
	return 0;
}

/* Reads the stored LSN (0: none). *corrupt: there is one but its checksum failed; never used. */
static int read_checkpoint(cw_pg_source_t *src, uint64_t *lsn, bool *corrupt, cw_err_t *err)
{
	char *json = NULL;
	cw_position_verdict_t verdict = CW_POSITION_VALID;
	*lsn = 0;
	*corrupt = false;
	int rc = cw_metadata_get_position(src->hub, src->checkpoint_key, &json, &verdict, err);
	if (rc == CW_ENOTFOUND) {
		cw_err_clear(err);
		return 0;
	}
	if (rc != 0)
		return rc;
	if (verdict == CW_POSITION_CORRUPT) {
		free(json);
		*corrupt = true;
		return 0;
	}
	/* Read as JSON: the hub's jsonb decides the spacing, not this code. */
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	char text[40] = "";
	const cw_json_field_t *f = cw_json_fields_parse(&fields, json, NULL) == 0
	                           ? cw_json_fields_get(&fields, "lsn", 3) : NULL;
	if (f != NULL && f->kind == CW_JSON_KIND_STRING && !f->escaped && f->value_len < sizeof text)
		snprintf(text, sizeof text, "%.*s", (int)f->value_len - 2, f->value + 1);
	/* A checkpoint inside a transaction: how much of it the hub holds already. */
	src->skip_txn_lsn = src->skip_msgs = 0;
	const cw_json_field_t *txn = f != NULL ? cw_json_fields_get(&fields, "txn", 3) : NULL;
	const cw_json_field_t *done = f != NULL ? cw_json_fields_get(&fields, "txn_done", 8) : NULL;
	char txn_text[40] = "";
	if (txn != NULL && done != NULL && txn->kind == CW_JSON_KIND_STRING &&
	    txn->value_len < sizeof txn_text && done->kind == CW_JSON_KIND_NUMBER) {
		snprintf(txn_text, sizeof txn_text, "%.*s", (int)txn->value_len - 2, txn->value + 1);
		if (pg_lsn_parse(txn_text, &src->skip_txn_lsn) == 0)
			src->skip_msgs = strtoull(done->value, NULL, 10);
		else
			src->skip_txn_lsn = 0;
	}
	cw_json_fields_clear(&fields);
	if (pg_lsn_parse(text, lsn) != 0)
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN, "checkpoint \"%s\" in the hub is not "
		                "an LSN: %s", src->checkpoint_key, json);
	free(json);
	return rc;
}

/* Decides where streaming starts: the stored LSN, or a new snapshot. */
static int position(cw_pg_source_t *src, cw_cancel_t *cancel, uint64_t *start, cw_err_t *err)
{
	uint64_t stored = 0, slot_lsn = 0;
	bool corrupt = false, resumed = false;
	slot_state_t slot = SLOT_MISSING;
	int rc;
	if ((rc = read_checkpoint(src, &stored, &corrupt, err)) != 0 ||
	    (rc = read_slot(src, &slot, &slot_lsn, err)) != 0)
		return rc;
	if (stored != 0 && slot == SLOT_OK) {
		*start = stored;
		src->durable_lsn = src->stored_lsn = stored;
		return 0;
	}
	/* The first snapshot was interrupted: go on after its committed rows. */
	if (stored == 0 && !corrupt && slot == SLOT_OK && slot_lsn != 0 &&
	    ((rc = pg_snapshot_resume(src, slot_lsn, cancel, start, &resumed, err)) != 0 || resumed))
		return rc;
	if (corrupt) {
		cw_err_set(err, CW_ENOTFOUND, PG_DOMAIN,
			"checkpoint \"%s\" of source \"%s\" failed its checksum: the stored position is "
			"not used", src->checkpoint_key, src->cfg->name);
	} else if (stored != 0) {
		char lsn[32];
		pg_lsn_format(stored, lsn);
		cw_err_set(err, CW_ENOTFOUND, PG_DOMAIN,
			"replication slot \"%s\" of source \"%s\" is %s: the changes after %s are gone",
			src->cfg->slot, src->cfg->name, slot == SLOT_LOST ? "invalidated (wal_status lost)" :
			"missing", lsn);
	}
	if (stored != 0 || corrupt) {
		if (src->cfg->on_position_lost == CW_POSITION_LOST_FAIL) {
			/* The job server logs it once and keeps the source stopped until someone acts. */
			char reason[CW_ERR_MESSAGE_LEN];
			snprintf(reason, sizeof reason, "%s", err->message);
			return cw_err_set(err, CW_ENOTFOUND, PG_DOMAIN, "%.300s; on_position_lost is "
			                  "fail, so the source stops: set it to rescan for a new "
			                  "generation (full scan, then sweep)", reason);
		}
		cw_log_kv(CW_LOG_ERROR, PG_COMPONENT, err->message, "source", src->cfg->name,
		          "slot", src->cfg->slot, "on_position_lost", "rescan",
		          "action", "new generation: full snapshot, then sweep", NULL);
		cw_component_status_set(&src->mutex, &src->status, "retrying", false, err->message);
		src->position_lost = true;
		cw_err_clear(err);
		/* From here until the scan completes there is no valid position. */
		if ((rc = cw_metadata_delete(src->hub, src->checkpoint_key, err)) != 0)
			return rc;
	}
	if (slot != SLOT_MISSING && (rc = drop_slot(src, err)) != 0)
		return rc;
	return pg_snapshot_all(src, cancel, start, err);
}

int pg_run_begin(cw_pg_source_t *src, cw_cancel_t *cancel, cw_err_t *err)
{
	src->cancel = cancel;
	pg_set_state(src, "starting", false);
	src->hub = cw_hub_connect_auth(src->ctx->config->hub.url, src->ctx->config->hub.auth, err);
	if (src->hub == NULL)
		return CW_EDB;
	src->writer = cw_oplog_writer_new(src->hub);
	src->dec = cw_pgoutput_new();
	return pg_connect(src, false, &src->sql, err);
}

void pg_run_end(cw_pg_source_t *src)
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

static void run_cleanup(void *self)
{
	cw_pg_source_t *src = self;
	pg_pipe_stop(src->pipe);
	src->pipe = NULL;
	pg_entities_free(src);
	PQfinish(src->repl);
	src->repl = NULL;
	pg_run_end(src);
}

/*
 * No entity to capture: idle (healthy) when there is none, waiting
 * (unhealthy, the first failure as the error) when each one failed.
 */
static void wait_for_entities(cw_pg_source_t *src)
{
	if (src->nents == 0) {
		pg_set_state(src, "idle", true);
		return;
	}
	char reason[CW_ERR_MESSAGE_LEN];
	snprintf(reason, sizeof reason, "every entity of the source failed; the first: %.440s",
	         src->ents[0].failed_reason);
	cw_component_status_set(&src->mutex, &src->status, "waiting", false, reason);
}

static int run_once(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_pg_source_t *src = self;
	int rc;
	uint64_t start = 0;
	src->durable_lsn = src->stored_lsn = src->complete_lsn = src->server_wal_end = 0;
	src->in_txn = false;
	src->streaming = false;
	src->position_lost = false;
	if ((rc = pg_run_begin(src, cancel, err)) != 0)
		return rc;
	/* A live table that left the publication while we were down missed changes: rescan it. */
	if ((rc = pg_check_replication_role(src, err)) != 0 ||
	    (rc = pg_check_wal_level(src, err)) != 0 ||
	    (rc = pg_reload_entities(src, false, cancel, err)) != 0 ||
	    (rc = pg_check_published(src, err)) != 0)
		return rc;
	for (size_t i = 0; i < src->nents; i++)
		if ((rc = pg_check_entity(src, &src->ents[i], err)) != 0)
			return rc;
	/*
	 * Nothing to capture yet (no entity, or each one failed): no publication
	 * or slot either, until an entity can be captured.
	 */
	while (pg_usable_entities(src) == 0) {
		wait_for_entities(src);
		if ((rc = cw_cancel_wait_ms(cancel, PG_RELOAD_INTERVAL_MS)) != 0 ||
		    (rc = pg_reload_entities(src, false, cancel, err)) != 0)
			return rc;
		for (size_t i = 0; i < src->nents; i++)
			if ((rc = pg_check_entity(src, &src->ents[i], err)) != 0)
				return rc;
	}
	if ((rc = position(src, cancel, &start, err)) != 0)
		return rc;
	/*
	 * Entities left pending or scanning (added while we were down), and live
	 * ones that missed changes, get a scan of their own.
	 */
	for (size_t i = 0; i < src->nents; i++) {
		pg_entity_t *ent = &src->ents[i];
		if (!ent->failed && (ent->entity.status != CW_ENTITY_LIVE || ent->rescan) &&
		    (rc = pg_snapshot_entity(src, ent, cancel, err)) != 0)
			return rc;
	}
	return pg_stream(src, start, cancel, err);
}

static int pg_run(void *source, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_pg_source_t *src = source;
	cw_source_run_t run = {"source", src->cfg->name, PG_DOMAIN, &src->mutex, &src->status,
	                       error_state, run_once, run_cleanup};
	return cw_source_run(&run, src, cancel, err);
}

/* ---- the interface ------------------------------------------------------- */

static void *pg_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	return pg_source_new(ctx, false, err);
}

cw_pg_source_t *pg_source_new(const cw_component_ctx_t *ctx, bool batch, cw_err_t *err)
{
	const cw_source_config_t *cfg = cw_config_source(ctx->config, ctx->name);
	if (cfg == NULL || cfg->type != CW_SOURCE_POSTGRES) {
		cw_err_set(err, CW_EINVAL, PG_DOMAIN, "no postgres source named \"%s\"", ctx->name);
		return NULL;
	}
	if (cw_identifier_validate("publication name", cfg->publication, err) != 0 ||
	    cw_identifier_validate("slot name", cfg->slot, err) != 0) {
		cw_err_prefix(err, "source \"%s\"", cfg->name);
		return NULL;
	}
	cw_pg_source_t *src = cw_xcalloc(1, sizeof *src);
	src->ctx = ctx;
	src->cfg = cfg;
	src->polls_batch = batch;
	src->checkpoint_key = cw_xasprintf("pg_lsn:%s", cfg->name);
	src->masked_url = cw_secret_mask(cfg->url);
	pthread_mutex_init(&src->mutex, NULL);
	snprintf(src->status.state, sizeof src->status.state, "starting");
	src->status.lag_bytes = -1;
	src->status.lag_seconds = -1;
	src->status.lag_ids = -1;
	cw_metrics_declare(ctx->metrics, "cachewarp_source_lag_bytes", CW_METRIC_GAUGE,
	                   "WAL bytes between the source server's position and the last LSN "
	                   "committed to the hub");
	cw_metrics_declare(ctx->metrics, "cachewarp_source_lag_seconds", CW_METRIC_GAUGE,
	                   "Seconds between now and the commit time of the newest change "
	                   "captured, 0 when caught up");
	cw_capture_declare_metrics(ctx->metrics);
	cw_capture_declare_entity_metrics(ctx->metrics);
	return src;
}

static void pg_status(void *source, cw_component_status_t *out)
{
	cw_pg_source_t *src = source;
	pthread_mutex_lock(&src->mutex);
	*out = src->status;
	pthread_mutex_unlock(&src->mutex);
}

static void pg_close(void *source)
{
	cw_pg_source_t *src = source;
	if (src == NULL)
		return;
	run_cleanup(src);
	pg_schema_forget(src);
	pg_batch_forget(src);
	pthread_mutex_destroy(&src->mutex);
	pg_failed_gauges_free(src);
	free(src->checkpoint_key);
	free(src->masked_url);
	free(src);
}

const cw_source_ops_t cw_postgres_source_ops = {"postgres", pg_open, pg_run, pg_status, pg_close};
