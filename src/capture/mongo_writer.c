/*
 * This file contains the MongoDB source's use of the writer stage every
 * source shares (capture/capture_writer.h): the run loop hands each batch
 * with its checkpoint to the stage, which appends them to the hub in order,
 * each in one transaction with its checkpoint, on a hub connection of its
 * own; a full queue blocks the reader (the backpressure). Reading the next
 * events from MongoDB thus overlaps with committing the previous batch.
 *
 * mongo_sync waits until everything handed over is committed: the run loop
 * calls it before it reads or changes hub state that queued batches depend
 * on (a checkpoint it is about to load, an entity status that decides where
 * queued changes are routed, a promotion that must follow the scan's rows).
 */
#include "capture/mongo_internal.h"

int mongo_writer_start(mongo_source_t *source, cw_err_t *err)
{
	cw_capture_writer_opts_t opts = {source->ctx.config->hub.url,
	                                 (size_t)source->ctx.config->capture.queue_depth,
	                                 source->ctx.metrics, source->ctx.name,
	                                 source->ctx.config->hub.auth};
	source->writer = cw_capture_writer_start(&opts, err);
	return source->writer != NULL ? 0 : CW_EDB;
}

void mongo_writer_stop(mongo_source_t *source)
{
	cw_capture_writer_stop(source->writer);
	source->writer = NULL;
}

int mongo_flush(mongo_source_t *source, const char *key, const char *json, bool scan, cw_err_t *err)
{
	return mongo_flush_at(source, key, json, scan, NULL, err);
}

int mongo_flush_at(mongo_source_t *source, const char *key, const char *json, bool scan,
                   const char *failpoint, cw_err_t *err)
{
	if (source->batch.len == 0 && key == NULL)
		return 0;
	cw_capture_job_t job = {key, json, scan, 0, 0, false};
	return cw_capture_writer_submit_at(source->writer, &source->batch, &job, failpoint, -1, err);
}

int mongo_sync(mongo_source_t *source, cw_err_t *err)
{
	return source->writer != NULL ? cw_capture_writer_sync(source->writer, NULL, err) : 0;
}

int mongo_writer_check(mongo_source_t *source, cw_err_t *err)
{
	return source->writer != NULL ? cw_capture_writer_check(source->writer, err) : 0;
}
