/*
 * This file contains the PostgreSQL source's pipe (postgres_internal.h): the
 * writer thread that appends the stream's batches to the hub in the order
 * they were handed over, so the stream decodes the next batch while the hub
 * commits the previous one, and the durable LSN it advances after each commit.
 *
 * THREAD SAFETY: the stream thread calls every function; the writer thread
 * runs writer_main. mutex guards durable, commit_us, in_flight, rc and err;
 * the queue has its own lock and is never used while mutex is held.
 */
#include "capture/postgres_internal.h"

#include "core/clock.h"
#include "core/mem.h"
#include "core/queue.h"

#include <stdlib.h>
#include <string.h>

#define SUBMIT_WAIT_MS 500

typedef struct pipe_job {
	cw_change_batch_t batch;
	uint64_t checkpoint;
	uint64_t durable_after;
	int64_t commit_us;
} pipe_job_t;

struct pg_pipe {
	const cw_pg_source_t *src;          /* borrowed; immutable parts only */
	cw_hub_t *hub;                      /* the writer thread's own connection */
	cw_oplog_writer_t *writer;
	cw_queue_t *queue;
	pthread_t thread;
	pthread_mutex_t mutex;
	pthread_cond_t idle;                /* in_flight dropped to 0, or an error */
	uint64_t durable;
	int64_t commit_us;
	size_t in_flight;                   /* submitted, not yet committed or failed */
	int rc;                             /* the writer's first error; it then only discards */
	cw_err_t err;
};

static void job_free(void *item)
{
	pipe_job_t *job = item;
	cw_change_batch_free(&job->batch);
	free(job);
}

static void *writer_main(void *arg)
{
	pg_pipe_t *pipe = arg;
	void *item;
	while (cw_queue_pop(pipe->queue, &item, -1) == 0) {
		pipe_job_t *job = item;
		cw_err_t err = {0};
		pthread_mutex_lock(&pipe->mutex);
		int failed = pipe->rc;
		pthread_mutex_unlock(&pipe->mutex);
		int rc = failed ? failed : pg_append(pipe->src, pipe->hub, pipe->writer, &job->batch,
		                                     job->checkpoint, &err);
		pthread_mutex_lock(&pipe->mutex);
		if (rc == 0) {
			if (job->durable_after > pipe->durable)
				pipe->durable = job->durable_after;
			if (job->commit_us > pipe->commit_us)
				pipe->commit_us = job->commit_us;
		} else if (pipe->rc == 0) {
			pipe->rc = rc;
			pipe->err = err;
		}
		pipe->in_flight--;
		pthread_cond_broadcast(&pipe->idle);
		pthread_mutex_unlock(&pipe->mutex);
		job_free(job);
	}
	return NULL;
}

pg_pipe_t *pg_pipe_start(cw_pg_source_t *src, cw_err_t *err)
{
	cw_hub_t *hub = cw_hub_connect(src->ctx->config->hub.url, err);
	if (hub == NULL)
		return NULL;
	pg_pipe_t *pipe = cw_xcalloc(1, sizeof *pipe);
	int64_t depth = src->ctx->config->capture.queue_depth;
	pipe->src = src;
	pipe->hub = hub;
	pipe->writer = cw_oplog_writer_new(hub);
	pipe->queue = cw_queue_new(depth > 0 ? (size_t)depth : 4, job_free);
	pthread_mutex_init(&pipe->mutex, NULL);
	cw_time_cond_init_monotonic(&pipe->idle);
	pipe->durable = src->durable_lsn;
	if (pthread_create(&pipe->thread, NULL, writer_main, pipe) != 0)
		abort();
	return pipe;
}

/* The writer's error copied into err; 0 while there is none. Call with mutex held. */
static int writer_error(pg_pipe_t *pipe, cw_err_t *err)
{
	if (pipe->rc != 0 && err != NULL)
		*err = pipe->err;
	return pipe->rc;
}

int pg_pipe_submit(pg_pipe_t *pipe, cw_change_batch_t *batch, uint64_t checkpoint,
                   uint64_t durable_after, int64_t commit_us, cw_cancel_t *cancel,
                   cw_err_t *err)
{
	pipe_job_t *job = cw_xcalloc(1, sizeof *job);
	job->batch = *batch;
	memset(batch, 0, sizeof *batch);
	job->checkpoint = checkpoint;
	job->durable_after = durable_after;
	job->commit_us = commit_us;
	pthread_mutex_lock(&pipe->mutex);
	int rc = writer_error(pipe, err);
	if (rc == 0)
		pipe->in_flight++;
	pthread_mutex_unlock(&pipe->mutex);
	while (rc == 0) {
		int pushed = cw_queue_push(pipe->queue, job, SUBMIT_WAIT_MS);
		if (pushed == 0)
			return 0;
		/* Full: the hub is slower than the source. Stay connected while waiting. */
		pthread_mutex_lock(&pipe->mutex);
		rc = writer_error(pipe, err);
		pthread_mutex_unlock(&pipe->mutex);
		if (rc == 0 && pushed != CW_ETIMEDOUT)
			rc = cw_err_set(err, CW_EINTERNAL, PG_DOMAIN, "the capture's writer queue is closed");
		if (rc == 0 && cw_cancel_is_set(cancel))
			rc = CW_ECANCELED;
		if (rc == 0)
			rc = pg_stream_keepalive((cw_pg_source_t *)pipe->src, err);
		if (rc != 0) {
			pthread_mutex_lock(&pipe->mutex);
			pipe->in_flight--;
			pthread_mutex_unlock(&pipe->mutex);
		}
	}
	*batch = job->batch;   /* not handed over: the caller keeps its changes */
	free(job);
	return rc;
}

int pg_pipe_poll(pg_pipe_t *pipe, uint64_t *durable, int64_t *commit_us, cw_err_t *err)
{
	pthread_mutex_lock(&pipe->mutex);
	if (pipe->durable > *durable)
		*durable = pipe->durable;
	if (pipe->commit_us > *commit_us)
		*commit_us = pipe->commit_us;
	int rc = writer_error(pipe, err);
	pthread_mutex_unlock(&pipe->mutex);
	return rc;
}

bool pg_pipe_advance_idle(pg_pipe_t *pipe, uint64_t lsn)
{
	pthread_mutex_lock(&pipe->mutex);
	bool idle = pipe->in_flight == 0 && pipe->rc == 0;
	if (idle && lsn > pipe->durable)
		pipe->durable = lsn;
	pthread_mutex_unlock(&pipe->mutex);
	return idle;
}

int pg_pipe_drain(pg_pipe_t *pipe, cw_cancel_t *cancel, cw_err_t *err)
{
	int rc = 0;
	pthread_mutex_lock(&pipe->mutex);
	while (rc == 0 && pipe->in_flight > 0 && (rc = writer_error(pipe, err)) == 0) {
		if (cw_cancel_is_set(cancel)) {
			rc = CW_ECANCELED;
			break;
		}
		struct timespec deadline;
		cw_time_deadline(SUBMIT_WAIT_MS, &deadline);
		pthread_cond_timedwait(&pipe->idle, &pipe->mutex, &deadline);
	}
	if (rc == 0)
		rc = writer_error(pipe, err);
	pthread_mutex_unlock(&pipe->mutex);
	return rc;
}

void pg_pipe_stop(pg_pipe_t *pipe)
{
	if (pipe == NULL)
		return;
	cw_queue_close(pipe->queue);
	pthread_join(pipe->thread, NULL);
	cw_queue_free(pipe->queue);
	pthread_cond_destroy(&pipe->idle);
	pthread_mutex_destroy(&pipe->mutex);
	cw_oplog_writer_free(pipe->writer);
	cw_hub_close(pipe->hub);
	free(pipe);
}
