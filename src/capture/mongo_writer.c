/*
 * This file contains the MongoDB source's oplog writer thread
 * (mongo_internal.h): the run loop hands each batch with its checkpoint to a
 * bounded queue (capture.queue_depth batches; a full queue blocks the
 * reader, which is the backpressure), and this thread appends them to the
 * hub in order, each in one transaction with its checkpoint, on a hub
 * connection of its own. Reading the next events from MongoDB thus overlaps
 * with committing the previous batch.
 *
 * mongo_sync waits until everything queued is committed: the run loop calls
 * it before it reads or changes hub state that queued batches depend on
 * (a checkpoint it is about to load, an entity status that decides where
 * queued changes are routed, a promotion that must follow the scan's rows).
 *
 * THREAD SAFETY: the queue is the only channel for batches. pushed is the
 * run loop's; committed, write_failed and write_err are guarded by
 * write_mutex (a leaf lock: nothing else is taken while it is held).
 */
#include "capture/mongo_internal.h"

#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAPTURED_METRIC "cachewarp_changes_captured_total"

typedef struct mongo_work {
	cw_change_batch_t batch;
	char *key;                 /* NULL: no checkpoint with this batch */
	char *json;
	bool scan;                 /* a scan batch: written by a scan writer */
} mongo_work_t;

static void work_free(void *item)
{
	mongo_work_t *work = item;
	if (work == NULL)
		return;
	cw_change_batch_free(&work->batch);
	free(work->key);
	free(work->json);
	free(work);
}

/* Adds the batch's changes to the captured counter, one update per entity and op. */
static void count_captured(mongo_source_t *source, const cw_change_batch_t *batch)
{
	for (size_t i = 0; i < batch->len; i++) {
		const cw_change_t *change = &batch->items[i];
		bool counted = false;
		for (size_t j = 0; j < i && !counted; j++)
			counted = batch->items[j].op == change->op &&
			          strcmp(batch->items[j].entity, change->entity) == 0;
		if (counted)
			continue;
		size_t n = 0;
		for (size_t j = i; j < batch->len; j++)
			n += batch->items[j].op == change->op &&
			     strcmp(batch->items[j].entity, change->entity) == 0;
		char labels[128];
		snprintf(labels, sizeof labels, "entity=\"%s\",op=\"%s\"", change->entity,
		         cw_op_name(change->op));
		cw_metrics_counter_add(source->ctx.metrics, CAPTURED_METRIC, labels, (double)n);
	}
}

static void *writer_main(void *arg)
{
	mongo_source_t *source = arg;
	void *item = NULL;
	bool failed = false;
	while (cw_queue_pop(source->queue, &item, -1) == 0) {
		mongo_work_t *work = item;
		cw_err_t err = {0};
		if (!failed) {
			cw_oplog_writer_set_scan(source->writer, work->scan);
			int rc = cw_oplog_append(source->writer, &work->batch, work->key, work->json, NULL,
			                         &err);
			if (rc == 0)
				count_captured(source, &work->batch);
			pthread_mutex_lock(&source->write_mutex);
			if (rc == 0) {
				source->committed++;
			} else {
				failed = source->write_failed = true;
				source->write_err = err;
			}
			pthread_cond_broadcast(&source->write_cond);
			pthread_mutex_unlock(&source->write_mutex);
			if (failed)   /* the reader's next push or sync returns the error */
				cw_queue_close(source->queue);
		}
		work_free(work);
	}
	return NULL;
}

int mongo_writer_start(mongo_source_t *source, cw_err_t *err)
{
	source->writer_hub = cw_hub_connect(source->ctx.config->hub.url, err);
	if (source->writer_hub == NULL)
		return CW_EDB;
	source->writer = cw_oplog_writer_new(source->writer_hub);
	source->queue = cw_queue_new((size_t)source->ctx.config->capture.queue_depth, work_free);
	source->pushed = 0;
	source->committed = 0;
	source->write_failed = false;
	if (pthread_create(&source->writer_thread, NULL, writer_main, source) != 0)
		return cw_err_set(err, CW_EINTERNAL, MONGO_COMPONENT, "could not start the writer thread");
	source->writer_started = true;
	return 0;
}

void mongo_writer_stop(mongo_source_t *source)
{
	if (source->queue != NULL)
		cw_queue_close(source->queue);   /* what is queued is still committed */
	if (source->writer_started)
		pthread_join(source->writer_thread, NULL);
	source->writer_started = false;
	cw_queue_free(source->queue);
	source->queue = NULL;
	cw_oplog_writer_free(source->writer);
	source->writer = NULL;
	cw_hub_close(source->writer_hub);
	source->writer_hub = NULL;
}

/* The writer's error into err. */
static int writer_error(mongo_source_t *source, cw_err_t *err)
{
	pthread_mutex_lock(&source->write_mutex);
	cw_err_t copy = source->write_err;
	pthread_mutex_unlock(&source->write_mutex);
	if (err != NULL)
		*err = copy;
	return copy.code != 0 ? copy.code : CW_EDB;
}

int mongo_flush(mongo_source_t *source, const char *key, const char *json, bool scan, cw_err_t *err)
{
	if (source->batch.len == 0 && key == NULL)
		return 0;
	mongo_work_t *work = cw_xcalloc(1, sizeof *work);
	work->batch = source->batch;
	source->batch = (cw_change_batch_t)CW_CHANGE_BATCH_INIT;
	work->key = cw_xstrdup(key);
	work->json = cw_xstrdup(json);
	work->scan = scan;
	if (cw_queue_push(source->queue, work, -1) != 0) {
		work_free(work);
		return writer_error(source, err);
	}
	source->pushed++;
	return 0;
}

int mongo_sync(mongo_source_t *source, cw_err_t *err)
{
	pthread_mutex_lock(&source->write_mutex);
	while (!source->write_failed && source->committed < source->pushed)
		pthread_cond_wait(&source->write_cond, &source->write_mutex);
	bool failed = source->write_failed;
	pthread_mutex_unlock(&source->write_mutex);
	return failed ? writer_error(source, err) : 0;
}

int mongo_writer_check(mongo_source_t *source, cw_err_t *err)
{
	pthread_mutex_lock(&source->write_mutex);
	bool failed = source->write_failed;
	pthread_mutex_unlock(&source->write_mutex);
	return failed ? writer_error(source, err) : 0;
}
