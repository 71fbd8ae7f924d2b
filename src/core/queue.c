/* This file contains the bounded blocking queue declared in queue.h. */
#include "core/queue.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_queue {
	pthread_mutex_t mutex;
	pthread_cond_t not_empty;   /* signalled after a push, broadcast on close */
	pthread_cond_t not_full;    /* signalled after a pop, broadcast on close */
	void **items;               /* ring of capacity slots */
	size_t capacity;
	size_t head;                /* index of the oldest item; guarded by mutex */
	size_t count;               /* guarded by mutex */
	bool closed;                /* guarded by mutex */
	cw_queue_free_fn free_fn;
};

cw_queue_t *cw_queue_new(size_t capacity, cw_queue_free_fn free_fn)
{
	assert(capacity >= 1);
	cw_queue_t *queue = cw_xcalloc(1, sizeof *queue);
	queue->items = cw_xcalloc(capacity, sizeof *queue->items);
	queue->capacity = capacity;
	queue->free_fn = free_fn;
	int rc = pthread_mutex_init(&queue->mutex, NULL);
	if (rc != 0) {
		fprintf(stderr, "cachewarp: could not initialize queue mutex: %s\n", strerror(rc));
		abort();
	}
	cw_time_cond_init_monotonic(&queue->not_empty);
	cw_time_cond_init_monotonic(&queue->not_full);
	return queue;
}

void cw_queue_free(cw_queue_t *queue)
{
	if (queue == NULL)
		return;
	for (size_t i = 0; i < queue->count; i++) {
		void *item = queue->items[(queue->head + i) % queue->capacity];
		if (queue->free_fn != NULL)
			queue->free_fn(item);
	}
	pthread_cond_destroy(&queue->not_full);
	pthread_cond_destroy(&queue->not_empty);
	pthread_mutex_destroy(&queue->mutex);
	free(queue->items);
	free(queue);
}

/*
 * One wait on cond under queue->mutex: forever when timeout_ms < 0, else
 * until deadline. Returns false once the deadline has passed.
 */
static bool wait_once(cw_queue_t *queue, pthread_cond_t *cond, int64_t timeout_ms,
	const struct timespec *deadline)
{
	if (timeout_ms == 0)
		return false;
	if (timeout_ms < 0) {
		pthread_cond_wait(cond, &queue->mutex);
		return true;
	}
	return pthread_cond_timedwait(cond, &queue->mutex, deadline) != ETIMEDOUT;
}

int cw_queue_push(cw_queue_t *queue, void *item, int64_t timeout_ms)
{
	struct timespec deadline = {0, 0};
	if (timeout_ms > 0)
		cw_time_deadline(timeout_ms, &deadline);
	int rc = 0;
	pthread_mutex_lock(&queue->mutex);
	while (!queue->closed && queue->count == queue->capacity) {
		if (!wait_once(queue, &queue->not_full, timeout_ms, &deadline))
			break;
	}
	if (queue->closed) {
		rc = CW_ECLOSED;
	} else if (queue->count == queue->capacity) {
		rc = CW_ETIMEDOUT;
	} else {
		queue->items[(queue->head + queue->count) % queue->capacity] = item;
		queue->count++;
		pthread_cond_signal(&queue->not_empty);
	}
	pthread_mutex_unlock(&queue->mutex);
	return rc;
}

int cw_queue_pop(cw_queue_t *queue, void **item, int64_t timeout_ms)
{
	struct timespec deadline = {0, 0};
	if (timeout_ms > 0)
		cw_time_deadline(timeout_ms, &deadline);
	int rc = 0;
	*item = NULL;
	pthread_mutex_lock(&queue->mutex);
	while (!queue->closed && queue->count == 0) {
		if (!wait_once(queue, &queue->not_empty, timeout_ms, &deadline))
			break;
	}
	if (queue->count > 0) {
		*item = queue->items[queue->head];
		queue->items[queue->head] = NULL;
		queue->head = (queue->head + 1) % queue->capacity;
		queue->count--;
		pthread_cond_signal(&queue->not_full);
	} else {
		rc = queue->closed ? CW_ECLOSED : CW_ETIMEDOUT;
	}
	pthread_mutex_unlock(&queue->mutex);
	return rc;
}

void cw_queue_close(cw_queue_t *queue)
{
	pthread_mutex_lock(&queue->mutex);
	queue->closed = true;
	pthread_cond_broadcast(&queue->not_empty);
	pthread_cond_broadcast(&queue->not_full);
	pthread_mutex_unlock(&queue->mutex);
}

size_t cw_queue_depth(cw_queue_t *queue)
{
	pthread_mutex_lock(&queue->mutex);
	size_t depth = queue->count;
	pthread_mutex_unlock(&queue->mutex);
	return depth;
}
