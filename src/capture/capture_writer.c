/* This file contains the writer stage every source shares (capture_writer.h). */
#include "capture/capture_writer.h"

#include "core/clock.h"
#include "core/failpoint.h"
#include "core/mem.h"
#include "core/queue.h"
#include "hub/metadata.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAPTURED_METRIC "cachewarp_changes_captured_total"
#define QUEUE_METRIC "cachewarp_capture_queue_batches"
#define WRITE_SECONDS_METRIC "cachewarp_capture_write_seconds_total"
#define WAIT_SLICE_MS 500

typedef struct job {
	cw_change_batch_t batch;
	cw_capture_job_t meta;        /* checkpoint strings owned */
	const char *failpoint;        /* reached after the commit; NULL: none */
} job_t;

struct cw_capture_writer {
	cw_hub_t *hub;                /* the thread's own connection */
	cw_oplog_writer_t *writer;
	cw_metrics_t *metrics;
	cw_queue_t *queue;
	pthread_t thread;
	pthread_mutex_t mutex;        /* guards what follows; a leaf lock */
	pthread_cond_t idle;          /* in_flight dropped, or an error */
	size_t in_flight;             /* handed over, not yet committed or failed */
	uint64_t position;            /* the newest position acknowledged */
	int64_t commit_us;
	int rc;                       /* the first failed commit's code; then it only discards */
	cw_err_t err;
	char labels[160];             /* source="<name>"; "" when the queue gauge is not kept */
};

/* Publishes how many batches wait for the hub. Call with mutex held. */
static void publish_queue(cw_capture_writer_t *w)
{
	if (w->metrics != NULL && w->labels[0] != '\0')
		cw_metrics_gauge_set(w->metrics, QUEUE_METRIC, w->labels, (double)w->in_flight);
}

static void job_free(void *item)
{
	job_t *job = item;
	if (job == NULL)
		return;
	cw_change_batch_free(&job->batch);
	free((char *)job->meta.checkpoint_key);
	free((char *)job->meta.checkpoint_json);
	free(job);
}

/* Adds the batch's changes to the captured counter, one registry call per entity and op. */
static void count_captured(cw_metrics_t *metrics, const cw_change_batch_t *batch)
{
	if (metrics == NULL)
		return;
	for (size_t i = 0; i < batch->len; i++) {
		const cw_change_t *change = &batch->items[i];
		bool counted = false;
		for (size_t j = 0; j < i && !counted; j++)
			counted = batch->items[j].op == change->op &&
			          strcmp(batch->items[j].entity, change->entity) == 0;
		if (counted)
			continue;
		double n = 0;
		for (size_t j = i; j < batch->len; j++)
			n += batch->items[j].op == change->op &&
			     strcmp(batch->items[j].entity, change->entity) == 0;
		char labels[160];
		snprintf(labels, sizeof labels, "entity=\"%s\",op=\"%s\"", change->entity,
		         cw_op_name(change->op));
		cw_metrics_counter_add(metrics, CAPTURED_METRIC, labels, n);
	}
}

bool cw_capture_batch_full(const cw_change_batch_t *batch, int batch_size)
{
	return batch->len >= (size_t)batch_size || batch->bytes >= CW_CAPTURE_BATCH_MAX_BYTES;
}

void cw_capture_declare_metrics(cw_metrics_t *metrics)
{
	cw_metrics_declare(metrics, CAPTURED_METRIC, CW_METRIC_COUNTER,
	                   "Changes written to the hub by the capture, per entity and op");
	cw_metrics_declare(metrics, QUEUE_METRIC, CW_METRIC_GAUGE,
	                   "Batches a source handed to its hub writer and not yet committed "
	                   "(capture.queue_depth at most)");
	cw_metrics_declare(metrics, WRITE_SECONDS_METRIC, CW_METRIC_COUNTER,
	                   "Seconds a source's hub writer spent appending batches (encoding, COPY, "
	                   "commit), per source");
}

void cw_capture_declare_entity_metrics(cw_metrics_t *metrics)
{
	cw_metrics_declare(metrics, "cachewarp_snapshot_rows_total", CW_METRIC_COUNTER,
	                   "Rows read by snapshots, per entity");
	cw_metrics_declare(metrics, "cachewarp_snapshot_read_seconds_total", CW_METRIC_COUNTER,
	                   "Seconds snapshots spent reading rows from the source and turning them "
	                   "into changes, per entity (the hub's writes overlap them)");
	cw_metrics_declare(metrics, "cachewarp_entity_failed", CW_METRIC_GAUGE,
	                   "1 while an entity cannot be captured (its reason is in /v1/status), "
	                   "0 once it recovered; the source's other entities keep streaming");
}

int cw_capture_append(cw_oplog_writer_t *writer, const cw_change_batch_t *batch,
                      const cw_capture_job_t *job, cw_metrics_t *metrics, cw_err_t *err)
{
	if (batch->len == 0 && job->checkpoint_key == NULL)
		return 0;
	int rc;
	if (batch->len == 0) {
		rc = cw_metadata_set(cw_oplog_writer_hub(writer), job->checkpoint_key,
		                     job->checkpoint_json, err);
	} else {
		rc = cw_oplog_append(writer, batch, job->checkpoint_key, job->checkpoint_json, NULL, err);
	}
	if (rc == 0)
		count_captured(metrics, batch);
	/* A part of a source transaction is in the hub; the rest is not yet. */
	if (rc == 0 && job->inside_txn && CW_FAILPOINT("after_txn_part_commit"))
		rc = cw_err_set(err, CW_EIO, "capture", "failpoint after_txn_part_commit");
	return rc;
}

static void *writer_main(void *arg)
{
	cw_capture_writer_t *w = arg;
	void *item = NULL;
	while (cw_queue_pop(w->queue, &item, -1) == 0) {
		job_t *job = item;
		cw_err_t err = {0};
		pthread_mutex_lock(&w->mutex);
		int failed = w->rc;
		pthread_mutex_unlock(&w->mutex);
		cw_oplog_writer_set_scan(w->writer, job->meta.scan);
		double started_s = cw_time_monotonic_s();
		int rc = failed ? failed : cw_capture_append(w->writer, &job->batch, &job->meta,
		                                             w->metrics, &err);
		if (w->metrics != NULL && w->labels[0] != '\0')
			cw_metrics_counter_add(w->metrics, WRITE_SECONDS_METRIC, w->labels,
			                       cw_time_monotonic_s() - started_s);
		if (rc == 0 && job->failpoint != NULL && CW_FAILPOINT(job->failpoint))
			rc = cw_err_set(&err, CW_EIO, "capture", "failpoint %s", job->failpoint);
		pthread_mutex_lock(&w->mutex);
		if (rc == 0) {
			if (job->meta.position > w->position)
				w->position = job->meta.position;
			if (job->meta.commit_us > w->commit_us)
				w->commit_us = job->meta.commit_us;
		} else if (w->rc == 0) {
			w->rc = rc;
			w->err = err;
		}
		w->in_flight--;
		publish_queue(w);
		pthread_cond_broadcast(&w->idle);
		pthread_mutex_unlock(&w->mutex);
		job_free(job);
	}
	return NULL;
}

cw_capture_writer_t *cw_capture_writer_start(const cw_capture_writer_opts_t *opts, cw_err_t *err)
{
	cw_hub_t *hub = cw_hub_connect_auth(opts->hub_url, opts->hub_auth, err);
	if (hub == NULL)
		return NULL;
	cw_capture_writer_t *w = cw_xcalloc(1, sizeof *w);
	w->hub = hub;
	w->writer = cw_oplog_writer_new(hub);
	w->metrics = opts->metrics;
	w->queue = cw_queue_new(opts->queue_depth > 0 ? opts->queue_depth : 4, job_free);
	pthread_mutex_init(&w->mutex, NULL);
	cw_time_cond_init_monotonic(&w->idle);
	if (w->metrics != NULL)
		cw_capture_declare_metrics(w->metrics);
	if (opts->source != NULL)
		snprintf(w->labels, sizeof w->labels, "source=\"%s\"", opts->source);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
		abort();
	return w;
}

/* The writer's error copied into err; 0 while there is none. Call with mutex held. */
static int writer_error(cw_capture_writer_t *w, cw_err_t *err)
{
	if (w->rc != 0 && err != NULL)
		*err = w->err;
	return w->rc;
}

int cw_capture_writer_submit(cw_capture_writer_t *w, cw_change_batch_t *batch,
                             const cw_capture_job_t *job, int timeout_ms, cw_err_t *err)
{
	return cw_capture_writer_submit_at(w, batch, job, NULL, timeout_ms, err);
}

int cw_capture_writer_submit_at(cw_capture_writer_t *w, cw_change_batch_t *batch,
                                const cw_capture_job_t *job, const char *failpoint,
                                int timeout_ms, cw_err_t *err)
{
	pthread_mutex_lock(&w->mutex);
	int rc = writer_error(w, err);
	if (rc == 0) {
		w->in_flight++;
		publish_queue(w);
	}
	pthread_mutex_unlock(&w->mutex);
	if (rc != 0)
		return rc;
	job_t *item = cw_xcalloc(1, sizeof *item);
	item->batch = *batch;
	item->meta = *job;
	item->meta.checkpoint_key = cw_xstrdup(job->checkpoint_key);
	item->meta.checkpoint_json = cw_xstrdup(job->checkpoint_json);
	item->failpoint = failpoint;
	int pushed = cw_queue_push(w->queue, item, timeout_ms);
	if (pushed == 0) {
		*batch = (cw_change_batch_t)CW_CHANGE_BATCH_INIT;
		return 0;
	}
	/* Not handed over: the caller keeps its changes. */
	memset(&item->batch, 0, sizeof item->batch);
	job_free(item);
	pthread_mutex_lock(&w->mutex);
	w->in_flight--;
	publish_queue(w);
	rc = writer_error(w, err);
	pthread_mutex_unlock(&w->mutex);
	if (rc != 0)
		return rc;
	if (pushed == CW_ETIMEDOUT)
		return cw_err_set(err, CW_ETIMEDOUT, "capture", "the hub writer's queue is full");
	return cw_err_set(err, CW_EINTERNAL, "capture", "the hub writer's queue is closed");
}

int cw_capture_writer_sync(cw_capture_writer_t *w, cw_cancel_t *cancel, cw_err_t *err)
{
	int rc = 0;
	pthread_mutex_lock(&w->mutex);
	while (rc == 0 && w->in_flight > 0 && (rc = writer_error(w, err)) == 0) {
		if (cancel != NULL && cw_cancel_is_set(cancel)) {
			rc = CW_ECANCELED;
			break;
		}
		struct timespec deadline;
		cw_time_deadline(WAIT_SLICE_MS, &deadline);
		pthread_cond_timedwait(&w->idle, &w->mutex, &deadline);
	}
	if (rc == 0)
		rc = writer_error(w, err);
	pthread_mutex_unlock(&w->mutex);
	return rc;
}

int cw_capture_writer_check(cw_capture_writer_t *w, cw_err_t *err)
{
	pthread_mutex_lock(&w->mutex);
	int rc = writer_error(w, err);
	pthread_mutex_unlock(&w->mutex);
	return rc;
}

void cw_capture_writer_acked(cw_capture_writer_t *w, uint64_t *position, int64_t *commit_us)
{
	pthread_mutex_lock(&w->mutex);
	if (w->position > *position)
		*position = w->position;
	if (w->commit_us > *commit_us)
		*commit_us = w->commit_us;
	pthread_mutex_unlock(&w->mutex);
}

bool cw_capture_writer_advance_idle(cw_capture_writer_t *w, uint64_t position)
{
	pthread_mutex_lock(&w->mutex);
	bool idle = w->in_flight == 0 && w->rc == 0;
	if (idle && position > w->position)
		w->position = position;
	pthread_mutex_unlock(&w->mutex);
	return idle;
}

void cw_capture_writer_stop(cw_capture_writer_t *w)
{
	if (w == NULL)
		return;
	cw_queue_close(w->queue);   /* what is queued is still committed */
	pthread_join(w->thread, NULL);
	cw_queue_free(w->queue);
	pthread_cond_destroy(&w->idle);
	pthread_mutex_destroy(&w->mutex);
	cw_oplog_writer_free(w->writer);
	cw_hub_close(w->hub);
	free(w);
}
