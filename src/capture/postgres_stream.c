/*
 * This file contains the PostgreSQL source's stream (postgres_internal.h):
 * START_REPLICATION with pgoutput from the stored LSN, decoded messages
 * turned into changes, batches written to the hub with the checkpoint, and
 * standby status updates that never report more than the hub holds.
 *
 * The position rule: durable_lsn is an LSN before which every change of the
 * entities is committed in the hub. It advances when a batch commits (to the
 * end of the last transaction the batch completes, which is also the
 * checkpoint stored with it), at a Commit when nothing is pending, and at a
 * keepalive when no transaction is open and nothing is pending. Only
 * durable_lsn is ever sent as the flush position.
 */
#include "capture/postgres_internal.h"

#include "core/clock.h"
#include "core/failpoint.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Messages handled between two ticks while the server keeps sending. A tick
 * reads the clock and takes the writer pipe's locks: once per message, that
 * was 0.6% of cachewarp's CPU in bench.pipeline's streaming phase. 64
 * messages take well under a millisecond, and a pause in the stream ticks
 * at once.
 */
#define MESSAGES_PER_TICK 64

/* What the stream loop keeps between messages. */
typedef struct stream_state {
	int64_t next_reload_ms;
	char txn_pos[32];             /* commit LSN of the open transaction, as source_pos */
} stream_state_t;

int pg_flush(cw_pg_source_t *src, cw_err_t *err)
{
	uint64_t checkpoint = src->complete_lsn > src->stored_lsn ? src->complete_lsn : 0;
	if (src->batch.len == 0 && checkpoint == 0)
		return 0;
	/*
	 * A batch inside the open transaction carries a checkpoint that counts the
	 * transaction's row messages it completes: after a crash the server sends
	 * the whole transaction again and the source skips that many.
	 */
	bool partial = src->in_txn && src->batch.len > 0;
	if (partial && checkpoint == 0)
		checkpoint = src->stored_lsn > src->complete_lsn ? src->stored_lsn : src->complete_lsn;
	int rc;
	if (src->pipe != NULL) {
		/* Durable once the writer committed it (and, in order, everything before). */
		rc = pg_pipe_submit(src->pipe, &src->batch, checkpoint, partial, src->complete_lsn,
		                    src->complete_commit_us, src->cancel, err);
		if (rc == 0 && checkpoint != 0)
			src->stored_lsn = checkpoint;
		return rc;
	}
	if ((rc = pg_write_batch(src, src->writer, checkpoint, partial, err)) != 0)
		return rc;
	if (src->complete_lsn > src->durable_lsn)
		src->durable_lsn = src->complete_lsn;
	if (src->complete_commit_us > src->newest_commit_us)
		src->newest_commit_us = src->complete_commit_us;
	return 0;
}

/* Nothing open or pending here: everything before lsn is durable once the writer is idle too. */
static void advance_idle(cw_pg_source_t *src, uint64_t lsn, int64_t commit_us)
{
	if (src->pipe != NULL && !pg_pipe_advance_idle(src->pipe, lsn))
		return;
	if (lsn > src->durable_lsn)
		src->durable_lsn = lsn;
	if (commit_us > src->newest_commit_us)
		src->newest_commit_us = commit_us;
}

static int send_status(cw_pg_source_t *src, cw_err_t *err)
{
	uint8_t msg[CW_PGOUTPUT_STATUS_LEN];
	size_t len = cw_pgoutput_status_build(msg, src->durable_lsn, src->durable_lsn,
	                                      src->durable_lsn, cw_clock_wall_us(cw_clock_system()), false);
	if (CW_FAILPOINT("before_lsn_ack"))
		return cw_err_set(err, CW_EIO, "source.postgres", "failpoint before_lsn_ack");
	if (PQputCopyData(src->repl, (const char *)msg, (int)len) != 1 || PQflush(src->repl) != 0)
		return pg_result_error(src->repl, NULL, "could not send a standby status update", err);
	if (CW_FAILPOINT("after_lsn_ack"))
		return cw_err_set(err, CW_EIO, "source.postgres", "failpoint after_lsn_ack");
	src->sent_lsn = src->durable_lsn;
	src->next_status_ms = cw_clock_now_ms(cw_clock_system()) + PG_STATUS_INTERVAL_MS;
	pg_publish_lag(src);
	return 0;
}

int pg_stream_keepalive(cw_pg_source_t *src, cw_err_t *err)
{
	if (!src->streaming || cw_clock_now_ms(cw_clock_system()) < src->next_status_ms)
		return 0;
	return send_status(src, err);
}

static int start_replication(cw_pg_source_t *src, uint64_t start_lsn, cw_err_t *err)
{
	int rc = 0;
	if (src->repl == NULL && (rc = pg_connect(src, true, &src->repl, err)) != 0)
		return rc;
	char lsn[32];
	pg_lsn_format(start_lsn, lsn);
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, "START_REPLICATION SLOT ");
	pg_quote_ident(&sql, src->cfg->slot);
	cw_buf_appendf(&sql, " LOGICAL %s (proto_version '" PG_PROTO_VERSION "', publication_names '",
	               lsn);
	pg_quote_ident(&sql, src->cfg->publication);
	cw_buf_append_str(&sql, "')");
	PGresult *res = PQexec(src->repl, sql.data);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		char what[200];
		snprintf(what, sizeof what, "could not start replication from slot \"%s\"",
		         src->cfg->slot);
		rc = pg_result_error(src->repl, res, what, err);
	}
	PQclear(res);
	cw_buf_free(&sql);
	if (rc == 0)
		cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "streaming", "source", src->cfg->name, "slot",
		          src->cfg->slot, "from", lsn, NULL);
	return rc;
}

/* A TRUNCATE: each truncated entity starts a new generation and is swept at once. */
static int truncate_entities(cw_pg_source_t *src, const cw_pgoutput_msg_t *msg,
                             const char *source_pos, cw_err_t *err)
{
	int rc = 0;
	for (uint32_t r = 0; r < msg->truncate.nrelids && rc == 0; r++) {
		const cw_pgoutput_rel_t *rel = cw_pgoutput_relation(src->dec, msg->truncate.relids[r]);
		size_t idx[16];
		size_t n = rel == NULL ? 0 : pg_entities_of(src, rel->nspname, rel->relname, idx, 16);
		for (size_t i = 0; i < n && rc == 0; i++) {
			pg_entity_t *ent = &src->ents[idx[i]];
			/* Changes before the TRUNCATE keep the old version, so the sweep removes them. */
			if ((rc = pg_flush(src, err)) != 0)
				break;
			rc = cw_entity_store_bump_version(src->hub, ent->entity.name,
			                                  &ent->entity.version, err);
			cw_entity_registry_invalidate(src->ctx->registry);
			if (rc == 0 && CW_FAILPOINT("after_generation_bump"))
				rc = cw_err_set(err, CW_EIO, "source.postgres", "failpoint after_generation_bump");
			if (rc != 0)
				break;
			pg_push_sweep(src, ent, source_pos);
			cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "table truncated: new generation", "source",
			          src->cfg->name, "entity", ent->entity.name, NULL);
		}
	}
	return rc;
}

static int handle_pgoutput(cw_pg_source_t *src, stream_state_t *st, const uint8_t *data,
                           size_t len, cw_err_t *err)
{
	cw_pgoutput_msg_t msg;
	int rc = cw_pgoutput_decode(src->dec, data, len, &msg, err);
	if (rc != 0)
		return rc;
	if (CW_FAILPOINT("after_decode"))
		return cw_err_set(err, CW_EPROTO, "source.postgres", "failpoint after_decode");
	int batch_size = src->ctx->config->capture.batch_size;
	switch (msg.kind) {
	case CW_PGOUTPUT_BEGIN:
		src->in_txn = true;
		src->txn_commit_us = msg.begin.commit_time_us;
		pg_lsn_format(msg.begin.final_lsn, st->txn_pos);
		src->txn_final_lsn = msg.begin.final_lsn;
		src->txn_msgs = 0;
		src->txn_skip = 0;
		if (src->skip_txn_lsn != 0 && msg.begin.final_lsn == src->skip_txn_lsn) {
			src->txn_skip = src->skip_msgs;   /* in the hub before the restart */
			char done[24];
			snprintf(done, sizeof done, "%llu", (unsigned long long)src->skip_msgs);
			cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "resuming inside a transaction: its first "
			          "changes are in the hub already", "source", src->cfg->name, "txn",
			          st->txn_pos, "skipped_messages", done, NULL);
		}
		src->skip_txn_lsn = src->skip_msgs = 0;
		break;
	case CW_PGOUTPUT_COMMIT:
		src->in_txn = false;
		src->complete_lsn = msg.commit.end_lsn;
		src->complete_commit_us = msg.commit.commit_time_us;
		if (src->batch.len == 0)
			advance_idle(src, src->complete_lsn, src->complete_commit_us);
		break;
	case CW_PGOUTPUT_INSERT:
	case CW_PGOUTPUT_UPDATE:
	case CW_PGOUTPUT_DELETE:
	case CW_PGOUTPUT_TRUNCATE:
		if (src->txn_skip > 0) {   /* written before the restart */
			src->txn_skip--;
			src->txn_msgs++;
			break;
		}
		rc = msg.kind == CW_PGOUTPUT_TRUNCATE ? truncate_entities(src, &msg, st->txn_pos, err)
		                                      : pg_push_row(src, &msg, st->txn_pos,
		                                                    src->txn_commit_us, err);
		if (rc == 0)
			src->txn_msgs++;
		break;
	default:
		break;
	}
	if (rc == 0 && cw_capture_batch_full(&src->batch, batch_size))
		rc = pg_flush(src, err);
	return rc;
}

static int handle_copydata(cw_pg_source_t *src, stream_state_t *st, const uint8_t *bytes,
                           size_t len, cw_err_t *err)
{
	cw_pgoutput_copydata_t cd;
	int rc = cw_pgoutput_copydata_parse(bytes, len, &cd, err);
	if (rc != 0)
		return rc;
	if (cd.wal_end > src->server_wal_end)
		src->server_wal_end = cd.wal_end;
	if (cd.kind == 'w')
		return handle_pgoutput(src, st, cd.data, cd.data_len, err);
	/* A keepalive: with nothing open or pending, everything up to its position is durable. */
	if (!src->in_txn && src->batch.len == 0 && cd.wal_end > src->durable_lsn)
		advance_idle(src, cd.wal_end, 0);
	if (cd.reply_requested)
		return send_status(src, err);
	return 0;
}

/* Timers: flush interval, status interval, checkpoint of an idle advance, entity reload. */
static int tick(cw_pg_source_t *src, stream_state_t *st, cw_cancel_t *cancel, cw_err_t *err)
{
	int64_t now = cw_clock_now_ms(cw_clock_system());
	int rc = pg_pipe_poll(src->pipe, &src->durable_lsn, &src->newest_commit_us, err);
	if (rc != 0)
		return rc;
	if (src->batch.len > 0 &&
	    now - src->batch_started_ms >= src->ctx->config->capture.flush_interval_ms) {
		if ((rc = pg_flush(src, err)) != 0)
			return rc;
		/* Tell the server soon, so the slot advances with the hub. */
		if (src->next_status_ms > now + 1000)
			src->next_status_ms = now + 1000;
	}
	if (now >= st->next_reload_ms) {
		st->next_reload_ms = now + PG_RELOAD_INTERVAL_MS;
		if ((rc = pg_flush(src, err)) != 0 || (rc = pg_schema_check(src, err)) != 0 ||
		    (rc = pg_reload_entities(src, true, cancel, err)) != 0)
			return rc;
	}
	if (now >= src->next_status_ms || src->durable_lsn > src->sent_lsn + (16u << 20)) {
		/* Keep the stored checkpoint near the slot when only other tables change. */
		if (src->batch.len == 0 && !src->in_txn && src->durable_lsn > src->stored_lsn) {
			src->complete_lsn = src->durable_lsn > src->complete_lsn ?
			                    src->durable_lsn : src->complete_lsn;
			if ((rc = pg_flush(src, err)) != 0)
				return rc;
		}
		rc = send_status(src, err);
	}
	return rc;
}

/* Waits up to timeout_ms for the server to send more: 1 it did, 0 not yet, -1 on error. */
static int wait_readable(PGconn *conn, int timeout_ms)
{
	struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
	if (pfd.fd < 0)
		return -1;
	int n = poll(&pfd, 1, timeout_ms);
	return n < 0 ? -1 : n > 0;
}

static int stream_loop(cw_pg_source_t *src, stream_state_t *st, cw_cancel_t *cancel,
                       cw_err_t *err)
{
	int rc = 0;
	unsigned since_tick = MESSAGES_PER_TICK;
	while (rc == 0) {
		if (cw_cancel_is_set(cancel))
			return CW_ECANCELED;
		if (since_tick++ >= MESSAGES_PER_TICK) {
			since_tick = 1;
			if ((rc = tick(src, st, cancel, err)) != 0)
				break;
		}
		char *buf = NULL;
		int n = PQgetCopyData(src->repl, &buf, 1);
		if (n > 0) {
			rc = handle_copydata(src, st, (const uint8_t *)buf, (size_t)n, err);
			PQfreemem(buf);
			continue;
		}
		if (n == 0) {
			since_tick = MESSAGES_PER_TICK;   /* caught up: the next round ticks */
			/*
			 * Caught up with the server: write the complete transactions now
			 * rather than after flush_interval. Under a backlog the socket is
			 * never idle here, and batches fill to batch_size.
			 */
			if (src->batch.len > 0 && !src->in_txn && wait_readable(src->repl, 0) == 0 &&
			    (rc = pg_flush(src, err)) != 0)
				break;
			if (wait_readable(src->repl, 100) < 0 || PQconsumeInput(src->repl) == 0)
				rc = pg_result_error(src->repl, NULL, "replication connection lost", err);
			continue;
		}
		PGresult *res = PQgetResult(src->repl);
		rc = pg_result_error(src->repl, res, n == -1 ? "replication stream ended" :
		                     "replication connection lost", err);
		PQclear(res);
	}
	return rc;
}

int pg_stream(cw_pg_source_t *src, uint64_t start_lsn, cw_cancel_t *cancel, cw_err_t *err)
{
	stream_state_t st = {0};
	int rc = start_replication(src, start_lsn, err);
	if (rc != 0)
		return rc;
	if (src->durable_lsn < start_lsn)
		src->durable_lsn = start_lsn;
	if (src->complete_lsn < start_lsn)
		src->complete_lsn = start_lsn;
	st.next_reload_ms = cw_clock_now_ms(cw_clock_system()) + PG_RELOAD_INTERVAL_MS;
	if ((src->pipe = pg_pipe_start(src, false, err)) == NULL)
		return CW_EDB;
	src->streaming = true;
	pg_set_state(src, "streaming", true);
	if ((rc = send_status(src, err)) == 0)
		rc = stream_loop(src, &st, cancel, err);
	if (rc == CW_ECANCELED) {
		/* Write what is complete and tell the server before stopping. */
		cw_err_t ignored = {0};
		if (pg_flush(src, &ignored) == 0 && pg_pipe_drain(src->pipe, NULL, &ignored) == 0 &&
		    pg_pipe_poll(src->pipe, &src->durable_lsn, &src->newest_commit_us, &ignored) == 0)
			send_status(src, &ignored);
	}
	pg_pipe_stop(src->pipe);
	src->pipe = NULL;
	src->streaming = false;
	return rc;
}
