/*
 * This file contains the MySQL source's binlog stream (mysql_internal.h): a
 * replication connection (libmariadb's mariadb_rpl_*, COM_BINLOG_DUMP with
 * MariaDB's @slave_connect_state) from a GTID position, each event decoded
 * by the pure decoder, rows of the entities' tables turned into changes.
 *
 * Batches end at transaction boundaries, each stored in the hub with the
 * position after its last transaction. A transaction larger than a batch is
 * split: those batches carry the position before it plus its GTID and the
 * row changes already written ("txn", "txn_done"), and a restart skips
 * that many of its rows (docs/hub.md, "Exactly once"). Nothing is
 * acknowledged to the server: the position lives in the hub only.
 */
#include "capture/mysql_internal.h"

#include "core/clock.h"
#include "core/failpoint.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"

#include <mariadb_rpl.h>
#include <mysqld_error.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int open_dump(my_source_t *src, const my_position_t *start, MARIADB_RPL **out,
                     cw_err_t *err)
{
	char pos[MY_POSITION_LEN];
	cw_buf_t sql = CW_BUF_INIT;
	my_position_format(start, pos);
	/* An idle server sends a heartbeat this often: a batch waits no longer than
	 * capture.flush_interval, and a stop is seen within MY_HEARTBEAT_MS. */
	int64_t heartbeat_ms = src->ctx.config->capture.flush_interval_ms;
	heartbeat_ms = heartbeat_ms < 10 ? 10 : heartbeat_ms > MY_HEARTBEAT_MS ? MY_HEARTBEAT_MS :
		heartbeat_ms;
	int rc = my_connect(src, &src->repl, err);
	if (rc != 0)
		return rc;
	cw_buf_appendf(&sql, "SET @master_binlog_checksum = 'CRC32', @mariadb_slave_capability = 4, "
	               "@slave_connect_state = '%s', @slave_gtid_strict_mode = 0, "
	               "@slave_gtid_ignore_duplicates = 0, @master_heartbeat_period = %lld",
	               pos, (long long)heartbeat_ms * 1000000LL);
	rc = my_exec(src, src->repl, sql.data, "could not prepare the binlog dump", err);
	cw_buf_free(&sql);
	if (rc != 0)
		return rc;
	MARIADB_RPL *rpl = mariadb_rpl_init(src->repl);
	if (rpl == NULL)
		return cw_err_set(err, CW_EDB, MY_DOMAIN, "could not start replication");
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, src->server_id);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, 4);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, "", 0);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, 0);
	if (mariadb_rpl_open(rpl) != 0) {
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "source \"%s\": could not start the binlog dump: %s",
		                src->cfg->name, mysql_error(src->repl));
		mariadb_rpl_close(rpl);
		return rc;
	}
	cw_log_kv(CW_LOG_INFO, MY_COMPONENT, "streaming the binlog", "source", src->cfg->name,
	          "gtid", pos, NULL);
	*out = rpl;
	return 0;
}

/* The end of a transaction: its GTID joins the position. */
static void end_txn(my_source_t *src)
{
	if (!src->in_txn)
		return;
	my_position_advance(&src->current, &src->txn_gtid);
	src->committed = src->current;
	src->in_txn = false;
}

static int flush_due(my_source_t *src, bool force, cw_err_t *err)
{
	if (src->in_txn)
		return 0;
	int64_t now = cw_clock_now_ms(cw_clock_system());
	bool due = force || cw_capture_batch_full(&src->batch, src->ctx.config->capture.batch_size) ||
	           (src->batch.len > 0 && src->batch_started_ms != 0 &&
	            now - src->batch_started_ms >= src->ctx.config->capture.flush_interval_ms);
	if (!due)
		return 0;
	return my_flush(src, &src->committed, false, err);
}

static void begin_txn(my_source_t *src, const cw_binlog_event_t *ev)
{
	cw_buf_t text = CW_BUF_INIT;
	src->in_txn = true;
	src->txn_gtid = ev->gtid.gtid;
	src->txn_commit_us = (int64_t)ev->timestamp * 1000000;
	src->txn_rows = 0;
	src->txn_skip = 0;
	src->txn_standalone = ev->gtid.standalone;
	cw_binlog_gtid_format(&ev->gtid.gtid, &text);
	if (src->skip_txn[0] != '\0' && strcmp(src->skip_txn, cw_buf_cstr(&text)) == 0) {
		src->txn_skip = src->skip_rows;
		src->skip_txn[0] = '\0';
	}
	cw_buf_free(&text);
}

static int handle_rows(my_source_t *src, cw_binlog_event_t *ev, const char *source_pos,
                       cw_err_t *err)
{
	size_t idx[16];
	size_t n = my_entities_of(src, ev->rows.table->schema, ev->rows.table->name, idx, 16);
	if (n == 0)
		return 0;
	cw_binlog_row_t row;
	cw_err_t why = {0};
	int got, rc = 0;
	while (rc == 0 && (got = cw_binlog_row_next(src->dec, ev, &row, &why)) == 1) {
		src->txn_rows++;
		if (src->txn_skip > 0) {   /* in the hub before a restart */
			src->txn_skip--;
			cw_binlog_row_clear(&row);
			continue;
		}
		if (src->batch.len == 0)
			src->batch_started_ms = cw_clock_now_ms(cw_clock_system());
		rc = my_push_row(src, idx, n, &row, source_pos, src->txn_commit_us, err);
		cw_binlog_row_clear(&row);
		if (rc == 0 && cw_capture_batch_full(&src->batch, src->ctx.config->capture.batch_size)) {
			/* a transaction larger than a batch: a partial checkpoint */
			rc = my_flush(src, &src->committed, true, err);
		}
	}
	/* a value the decoder cannot read: the event's remaining rows go to the quarantine with
	 * the reason, and the stream goes on */
	for (size_t i = 0; rc == 0 && got < 0 && i < n; i++)
		rc = my_quarantine(src, &src->ents[idx[i]], NULL, source_pos, why.message, NULL, err);
	return rc;
}

/* TRUNCATE: a new generation of the table's entities, swept at once. */
static int handle_truncate(my_source_t *src, const cw_binlog_event_t *ev, const char *source_pos,
                           cw_err_t *err)
{
	size_t idx[16];
	size_t n = my_entities_of(src, ev->query.table_schema, ev->query.table, idx, 16);
	if (n == 0)
		return 0;
	int rc = my_flush(src, &src->committed, false, err);
	if (rc == 0)
		rc = my_sync(src, err);
	for (size_t i = 0; i < n && rc == 0; i++) {
		my_entity_t *ent = &src->ents[idx[i]];
		rc = cw_entity_store_bump_version(src->hub, ent->entity.name, &ent->entity.version, err);
		cw_entity_registry_invalidate(src->ctx.registry);
		if (rc == 0) {
			cw_log_kv(CW_LOG_INFO, MY_COMPONENT, "table truncated: new generation", "source",
			          src->cfg->name, "entity", ent->entity.name, NULL);
			my_push_sweep(src, ent, source_pos);
		}
	}
	return rc;
}

/* DDL: the tables' columns and keys are read again (for binlog_row_metadata=MINIMAL). */
static int handle_ddl(my_source_t *src, const cw_binlog_event_t *ev, cw_err_t *err)
{
	(void)ev;
	for (size_t i = 0; i < src->nents; i++) {
		cw_err_t why = {0};
		int rc = my_prepare_table(src, &src->ents[i], &why);
		if (rc == CW_EDB) {
			*err = why;
			return rc;
		}
	}
	return 0;
}

static int handle_event(my_source_t *src, cw_binlog_event_t *ev, cw_err_t *err)
{
	char source_pos[MY_POSITION_LEN + 64];
	int rc = 0;
	if (ev->log_pos != 0)
		src->file_pos = ev->log_pos;
	switch (ev->kind) {
	case CW_BINLOG_ROTATE:
		snprintf(src->file, sizeof src->file, "%.*s", (int)ev->rotate.file_len, ev->rotate.file);
		src->file_pos = ev->rotate.position;
		return 0;
	case CW_BINLOG_GTID:
		begin_txn(src, ev);
		return 0;
	case CW_BINLOG_XID:
		end_txn(src);
		return flush_due(src, false, err);
	case CW_BINLOG_ROWS: {
		cw_buf_t g = CW_BUF_INIT;
		cw_binlog_gtid_format(&src->txn_gtid, &g);
		snprintf(source_pos, sizeof source_pos, "%s", cw_buf_cstr(&g));
		cw_buf_free(&g);
		return handle_rows(src, ev, source_pos, err);
	}
	case CW_BINLOG_QUERY:
		snprintf(source_pos, sizeof source_pos, "%s", "");
		switch (ev->query.kind) {
		case CW_BINLOG_QUERY_TRUNCATE:
			rc = handle_truncate(src, ev, source_pos, err);
			break;
		case CW_BINLOG_QUERY_DDL:
			rc = handle_ddl(src, ev, err);
			break;
		case CW_BINLOG_QUERY_COMMIT:
		case CW_BINLOG_QUERY_ROLLBACK:
			end_txn(src);
			return flush_due(src, false, err);
		default:
			break;
		}
		if (rc == 0 && src->txn_standalone) {
			/* a statement outside BEGIN .. COMMIT (DDL): its GTID is the whole transaction */
			end_txn(src);
			rc = flush_due(src, ev->query.kind == CW_BINLOG_QUERY_TRUNCATE, err);
		}
		return rc;
	case CW_BINLOG_HEARTBEAT:
		return flush_due(src, false, err);
	default:
		return 0;
	}
}

/* Whether the server's error says its binlog does not hold the requested GTID position:
 * purged, or a server reset or replaced since ("not in the master's binlog"). */
static bool purged(MYSQL *conn)
{
	const char *msg = mysql_error(conn);
	return mysql_errno(conn) == ER_MASTER_FATAL_ERROR_READING_BINLOG &&
	       (strstr(msg, "purged") != NULL || strstr(msg, "Could not find GTID state") != NULL ||
	        strstr(msg, "could not find") != NULL ||
	        strstr(msg, "not in the master's binlog") != NULL);
}

int my_stream(my_source_t *src, const my_position_t *start, cw_cancel_t *cancel, cw_err_t *err)
{
	MARIADB_RPL *rpl = NULL;
	MARIADB_RPL_EVENT *event = NULL;
	src->committed = src->current = *start;
	src->in_txn = false;
	int rc = open_dump(src, start, &rpl, err);
	if (rc != 0)
		goto out;
	my_set_state(src, "streaming", true, NULL);
	int64_t next_reload = cw_clock_now_ms(cw_clock_system()) + MY_RELOAD_MS;
	while (rc == 0) {
		if (cw_cancel_is_set(cancel)) {
			rc = CW_ECANCELED;
			break;
		}
		event = mariadb_rpl_fetch(rpl, event);
		if (event == NULL) {
			if (purged(src->repl))
				rc = cw_err_set(err, CW_ENOTFOUND, MY_DOMAIN, "source \"%s\": the binlog no "
				                "longer holds the stored position: %s", src->cfg->name,
				                mysql_error(src->repl));
			else
				rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "source \"%s\": the binlog stream "
				                "failed: %s", src->cfg->name, mysql_error(src->repl));
			break;
		}
		cw_binlog_event_t ev;
		if (event->raw_data_size < event->raw_data_ofs + event->event_length) {
			rc = cw_err_set(err, CW_EPROTO, MY_DOMAIN, "source \"%s\": a short binlog event",
			                src->cfg->name);
			break;
		}
		rc = cw_binlog_decode(src->dec, event->raw_data + event->raw_data_ofs, event->event_length,
		                      &ev, err);
		if (rc == 0)
			rc = handle_event(src, &ev, err);
		if (rc == 0)
			rc = cw_capture_writer_check(src->writer, err);
		int64_t now = cw_clock_now_ms(cw_clock_system());
		if (rc == 0 && now >= next_reload && !src->in_txn) {
			next_reload = now + MY_RELOAD_MS;
			if ((rc = my_flush(src, &src->committed, false, err)) == 0)
				rc = my_reload_entities(src, cancel, err);
			my_measure_lag(src);
			my_publish_lag(src);
		}
	}
	if (rc == CW_ECANCELED && !src->in_txn) {
		/* the complete transactions read so far are handed over before stopping */
		cw_err_t ignored = {0};
		if (my_flush(src, &src->committed, false, &ignored) == 0)
			my_sync(src, &ignored);
	}
out:
	if (event != NULL)
		mariadb_free_rpl_event(event);
	if (rpl != NULL)
		mariadb_rpl_close(rpl);
	if (src->repl != NULL)
		mysql_close(src->repl);
	src->repl = NULL;
	return rc;
}
