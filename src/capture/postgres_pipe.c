/*
 * This file contains the PostgreSQL source's pipe (postgres_internal.h): the
 * stream's use of the writer stage every source shares
 * (capture/capture_writer.h). A batch goes with the checkpoint of the last
 * complete transaction before it and acknowledges, once committed, the
 * durable LSN (the end of the last transaction whose batches all committed)
 * and its commit time.
 *
 * THREAD SAFETY: the stream thread calls every function.
 */
#include "capture/postgres_internal.h"

#include "core/mem.h"

#include <stdlib.h>

#define SUBMIT_WAIT_MS 500
#define SCAN_QUEUE_DEPTH 2

struct pg_pipe {
	const cw_pg_source_t *src;          /* borrowed; immutable parts only */
	cw_capture_writer_t *writer;
	bool scan;                          /* a scan's pipe: pending entities go to the oplog */
};

pg_pipe_t *pg_pipe_start(cw_pg_source_t *src, bool scan, cw_err_t *err)
{
	int64_t depth = src->ctx->config->capture.queue_depth;
	/* A scan always runs ahead of the hub: one batch waiting keeps both busy, more only
	 * holds memory. */
	if (scan && depth > SCAN_QUEUE_DEPTH)
		depth = SCAN_QUEUE_DEPTH;
	cw_capture_writer_opts_t opts = {src->ctx->config->hub.url, depth > 0 ? (size_t)depth : 4,
	                                 src->ctx->metrics, src->cfg->name, src->ctx->config->hub.auth};
	cw_capture_writer_t *writer = cw_capture_writer_start(&opts, err);
	if (writer == NULL)
		return NULL;
	pg_pipe_t *pipe = cw_xcalloc(1, sizeof *pipe);
	pipe->src = src;
	pipe->writer = writer;
	pipe->scan = scan;
	cw_capture_writer_advance_idle(writer, src->durable_lsn);
	return pipe;
}

int pg_pipe_submit_job(pg_pipe_t *pipe, cw_change_batch_t *batch, const cw_capture_job_t *job,
                       const char *failpoint, cw_cancel_t *cancel, cw_err_t *err)
{
	for (;;) {
		int rc = cw_capture_writer_submit_at(pipe->writer, batch, job, failpoint,
		                                     SUBMIT_WAIT_MS, err);
		if (rc != CW_ETIMEDOUT)
			return rc;
		/* Full: the hub is slower than the source. Stay connected while waiting. */
		cw_err_clear(err);
		if (cw_cancel_is_set(cancel))
			return CW_ECANCELED;
		if ((rc = pg_stream_keepalive((cw_pg_source_t *)pipe->src, err)) != 0)
			return rc;
	}
}

int pg_pipe_submit(pg_pipe_t *pipe, cw_change_batch_t *batch, uint64_t checkpoint, bool partial,
                   uint64_t durable_after, int64_t commit_us, cw_cancel_t *cancel,
                   cw_err_t *err)
{
	char json[PG_CHECKPOINT_JSON_LEN];
	pg_checkpoint_json(pipe->src, checkpoint, partial, json);
	cw_capture_job_t job = {checkpoint ? pipe->src->checkpoint_key : NULL,
	                        checkpoint ? json : NULL, pipe->scan, durable_after, commit_us,
	                        partial};
	return pg_pipe_submit_job(pipe, batch, &job, NULL, cancel, err);
}

int pg_pipe_poll(pg_pipe_t *pipe, uint64_t *durable, int64_t *commit_us, cw_err_t *err)
{
	cw_capture_writer_acked(pipe->writer, durable, commit_us);
	return cw_capture_writer_check(pipe->writer, err);
}

bool pg_pipe_advance_idle(pg_pipe_t *pipe, uint64_t lsn)
{
	return cw_capture_writer_advance_idle(pipe->writer, lsn);
}

int pg_pipe_drain(pg_pipe_t *pipe, cw_cancel_t *cancel, cw_err_t *err)
{
	return cw_capture_writer_sync(pipe->writer, cancel, err);
}

void pg_pipe_stop(pg_pipe_t *pipe)
{
	if (pipe == NULL)
		return;
	cw_capture_writer_stop(pipe->writer);
	free(pipe);
}
