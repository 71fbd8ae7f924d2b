/*
 * This file contains cw_queue_t, the bounded blocking queue of pointers that
 * carries work between threads (a source to the oplog writer, the writer to
 * a target): a full queue blocks its producer, which is cachewarp's
 * backpressure.
 *
 * Lifecycle: cw_queue_new returns a queue owned by the caller. Items are
 * owned by the queue between a successful push and the pop that returns
 * them. cw_queue_close stops new pushes; items already queued are still
 * delivered, and cw_queue_pop reports CW_ECLOSED only once the queue is
 * closed and empty. cw_queue_free frees the items still queued with the
 * queue's free_fn.
 *
 * Timeouts are in milliseconds on CLOCK_MONOTONIC: negative waits forever,
 * 0 does not wait at all.
 *
 * THREAD SAFETY: push, pop, close and depth may be called from any number of
 * threads at once. The queue holds one mutex (and two condition variables
 * waited on under it); no callback runs while it is held, so a queue lock
 * never nests with any other lock. cw_queue_free must be called only after
 * every thread that uses the queue has been joined.
 */
#ifndef CW_CORE_QUEUE_H
#define CW_CORE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_queue cw_queue_t;

/* Frees one item; called by cw_queue_free for each item left in the queue. */
typedef void (*cw_queue_free_fn)(void *item);

/*
 * A new open, empty queue holding at most capacity (>= 1) items. free_fn may
 * be NULL (leftover items are then just dropped). Aborts when out of memory.
 */
cw_queue_t *cw_queue_new(size_t capacity, cw_queue_free_fn free_fn);

/* Frees the queue and, with free_fn, the items still in it. NULL is a no-op. */
void cw_queue_free(cw_queue_t *queue);

/*
 * Appends item, waiting up to timeout_ms while the queue is full. Returns 0
 * (the queue now owns item), CW_ETIMEDOUT (still full) or CW_ECLOSED (closed
 * before or while waiting). On failure item stays the caller's.
 */
int cw_queue_push(cw_queue_t *queue, void *item, int64_t timeout_ms);

/*
 * Removes the oldest item into *item, waiting up to timeout_ms while the
 * queue is empty. Returns 0 (the caller now owns *item), CW_ETIMEDOUT (still
 * empty) or CW_ECLOSED (closed and empty); on failure *item is set to NULL.
 */
int cw_queue_pop(cw_queue_t *queue, void **item, int64_t timeout_ms);

/* Closes the queue and wakes every blocked pusher and popper. Idempotent. */
void cw_queue_close(cw_queue_t *queue);

/* Number of items queued right now (a snapshot, for metrics). */
size_t cw_queue_depth(cw_queue_t *queue);

#endif
