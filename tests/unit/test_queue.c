/* This file contains the unit tests of core/queue.c, with real threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ITEM(n) ((void *)(uintptr_t)(n))
#define WAIT_LIMIT_MS 10000

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Polls flag until it is true; fails the test after WAIT_LIMIT_MS. */
static void wait_for_flag(atomic_bool *flag, const char *what)
{
	int64_t deadline = monotonic_ms() + WAIT_LIMIT_MS;
	while (!atomic_load(flag)) {
		if (monotonic_ms() > deadline)
			fail_msg("timed out waiting for %s", what);
		pause_ms(1);
	}
}

typedef struct worker {
	cw_queue_t *queue;
	void *item;              /* to push, or popped */
	int64_t timeout_ms;
	atomic_bool started;
	atomic_bool finished;
	int rc;                  /* written before finished is set */
} worker_t;

static void *push_worker(void *arg)
{
	worker_t *worker = arg;
	atomic_store(&worker->started, true);
	worker->rc = cw_queue_push(worker->queue, worker->item, worker->timeout_ms);
	atomic_store(&worker->finished, true);
	return NULL;
}

static void *pop_worker(void *arg)
{
	worker_t *worker = arg;
	atomic_store(&worker->started, true);
	worker->rc = cw_queue_pop(worker->queue, &worker->item, worker->timeout_ms);
	atomic_store(&worker->finished, true);
	return NULL;
}

static void test_fifo_and_depth(void **state)
{
	cw_queue_t *queue = cw_queue_new(3, NULL);
	void *item = ITEM(99);
	assert_int_equal(cw_queue_pop(queue, &item, 0), CW_ETIMEDOUT);
	assert_null(item);
	for (uintptr_t round = 0; round < 5; round++) {  /* wraps around the ring */
		for (uintptr_t i = 1; i <= 3; i++)
			assert_int_equal(cw_queue_push(queue, ITEM(round * 10 + i), 0), 0);
		assert_int_equal(cw_queue_depth(queue), 3);
		assert_int_equal(cw_queue_push(queue, ITEM(4), 0), CW_ETIMEDOUT);
		for (uintptr_t i = 1; i <= 3; i++) {
			assert_int_equal(cw_queue_pop(queue, &item, 0), 0);
			assert_ptr_equal(item, ITEM(round * 10 + i));
		}
		assert_int_equal(cw_queue_depth(queue), 0);
	}
	cw_queue_free(queue);
	cw_queue_free(NULL);
}

#define STREAM_ITEMS 100000

static void *produce_stream(void *arg)
{
	cw_queue_t *queue = arg;
	for (uintptr_t i = 1; i <= STREAM_ITEMS; i++) {
		if (cw_queue_push(queue, ITEM(i), -1) != 0)
			return ITEM(i);
	}
	cw_queue_close(queue);
	return NULL;
}

static void test_producer_consumer_in_order(void **state)
{
	cw_queue_t *queue = cw_queue_new(64, NULL);
	pthread_t producer;
	assert_int_equal(pthread_create(&producer, NULL, produce_stream, queue), 0);
	uintptr_t expected = 1;
	void *item;
	int rc;
	while ((rc = cw_queue_pop(queue, &item, -1)) == 0) {
		if (item != ITEM(expected))
			fail_msg("popped %zu, expected %zu", (size_t)(uintptr_t)item, (size_t)expected);
		expected++;
	}
	assert_int_equal(rc, CW_ECLOSED);
	assert_int_equal(expected, STREAM_ITEMS + 1);
	void *failed_at;
	pthread_join(producer, &failed_at);
	assert_null(failed_at);
	cw_queue_free(queue);
}

#define PRODUCERS 4
#define CONSUMERS 4
#define ITEMS_PER_PRODUCER 25000

typedef struct crowd {
	cw_queue_t *queue;
	uintptr_t first;
	atomic_int *seen;        /* one counter per item */
} crowd_t;

static void *produce_range(void *arg)
{
	crowd_t *crowd = arg;
	for (uintptr_t i = 0; i < ITEMS_PER_PRODUCER; i++) {
		if (cw_queue_push(crowd->queue, ITEM(crowd->first + i), -1) != 0)
			return ITEM(1);  /* cmocka asserts belong to the main thread */
	}
	return NULL;
}

static void *consume_all(void *arg)
{
	crowd_t *crowd = arg;
	void *item;
	while (cw_queue_pop(crowd->queue, &item, -1) == 0)
		atomic_fetch_add(&crowd->seen[(uintptr_t)item], 1);
	return NULL;
}

static void test_many_producers_and_consumers(void **state)
{
	size_t total = PRODUCERS * ITEMS_PER_PRODUCER;
	atomic_int *seen = calloc(total, sizeof *seen);
	cw_queue_t *queue = cw_queue_new(16, NULL);
	pthread_t producers[PRODUCERS], consumers[CONSUMERS];
	crowd_t ranges[PRODUCERS], shared = {queue, 0, seen};
	for (int i = 0; i < CONSUMERS; i++)
		assert_int_equal(pthread_create(&consumers[i], NULL, consume_all, &shared), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		ranges[i] = (crowd_t){queue, (uintptr_t)i * ITEMS_PER_PRODUCER, seen};
		assert_int_equal(pthread_create(&producers[i], NULL, produce_range, &ranges[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		void *failed;
		pthread_join(producers[i], &failed);
		assert_null(failed);
	}
	cw_queue_close(queue);
	for (int i = 0; i < CONSUMERS; i++)
		pthread_join(consumers[i], NULL);
	for (size_t i = 0; i < total; i++) {
		if (atomic_load(&seen[i]) != 1)
			fail_msg("item %zu delivered %d times", i, atomic_load(&seen[i]));
	}
	cw_queue_free(queue);
	free(seen);
}

static void test_push_blocks_until_pop(void **state)
{
	cw_queue_t *queue = cw_queue_new(1, NULL);
	assert_int_equal(cw_queue_push(queue, ITEM(1), 0), 0);
	worker_t pusher = {.queue = queue, .item = ITEM(2), .timeout_ms = -1};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, push_worker, &pusher), 0);
	wait_for_flag(&pusher.started, "the pusher to start");
	/* The queue is full: the push must still be waiting a while later. */
	pause_ms(50);
	assert_false(atomic_load(&pusher.finished));
	assert_int_equal(cw_queue_depth(queue), 1);

	void *item;
	assert_int_equal(cw_queue_pop(queue, &item, 0), 0);
	assert_ptr_equal(item, ITEM(1));
	wait_for_flag(&pusher.finished, "the blocked push to complete");
	assert_int_equal(pusher.rc, 0);
	assert_int_equal(cw_queue_pop(queue, &item, 0), 0);
	assert_ptr_equal(item, ITEM(2));
	pthread_join(thread, NULL);
	cw_queue_free(queue);
}

static void test_pop_blocks_until_push(void **state)
{
	cw_queue_t *queue = cw_queue_new(4, NULL);
	worker_t popper = {.queue = queue, .timeout_ms = -1};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, pop_worker, &popper), 0);
	wait_for_flag(&popper.started, "the popper to start");
	pause_ms(50);
	assert_false(atomic_load(&popper.finished));
	assert_int_equal(cw_queue_push(queue, ITEM(7), 0), 0);
	wait_for_flag(&popper.finished, "the blocked pop to complete");
	assert_int_equal(popper.rc, 0);
	assert_ptr_equal(popper.item, ITEM(7));
	pthread_join(thread, NULL);
	cw_queue_free(queue);
}

static void test_deadlines(void **state)
{
	cw_queue_t *queue = cw_queue_new(1, NULL);
	void *item = ITEM(5);
	int64_t start = monotonic_ms();
	assert_int_equal(cw_queue_pop(queue, &item, 120), CW_ETIMEDOUT);
	int64_t waited = monotonic_ms() - start;
	assert_null(item);
	assert_true(waited >= 120);
	assert_true(waited < WAIT_LIMIT_MS);

	assert_int_equal(cw_queue_push(queue, ITEM(1), 0), 0);
	start = monotonic_ms();
	assert_int_equal(cw_queue_push(queue, ITEM(2), 120), CW_ETIMEDOUT);
	waited = monotonic_ms() - start;
	assert_true(waited >= 120);
	assert_true(waited < WAIT_LIMIT_MS);
	assert_int_equal(cw_queue_depth(queue), 1);
	cw_queue_free(queue);
}

#define BLOCKED 3

static void test_close_wakes_every_waiter(void **state)
{
	cw_queue_t *full = cw_queue_new(1, NULL);
	cw_queue_t *empty = cw_queue_new(1, NULL);
	assert_int_equal(cw_queue_push(full, ITEM(1), 0), 0);
	worker_t pushers[BLOCKED], poppers[BLOCKED];
	pthread_t threads[2 * BLOCKED];
	for (int i = 0; i < BLOCKED; i++) {
		pushers[i] = (worker_t){.queue = full, .item = ITEM(2), .timeout_ms = -1};
		poppers[i] = (worker_t){.queue = empty, .item = ITEM(3), .timeout_ms = -1};
		assert_int_equal(pthread_create(&threads[i], NULL, push_worker, &pushers[i]), 0);
		assert_int_equal(pthread_create(&threads[BLOCKED + i], NULL, pop_worker,
			&poppers[i]), 0);
	}
	for (int i = 0; i < BLOCKED; i++) {
		wait_for_flag(&pushers[i].started, "a pusher to start");
		wait_for_flag(&poppers[i].started, "a popper to start");
	}
	pause_ms(50);
	for (int i = 0; i < BLOCKED; i++) {
		assert_false(atomic_load(&pushers[i].finished));
		assert_false(atomic_load(&poppers[i].finished));
	}
	cw_queue_close(full);
	cw_queue_close(empty);
	for (int i = 0; i < BLOCKED; i++) {
		wait_for_flag(&pushers[i].finished, "close to wake a pusher");
		wait_for_flag(&poppers[i].finished, "close to wake a popper");
		assert_int_equal(pushers[i].rc, CW_ECLOSED);
		assert_int_equal(poppers[i].rc, CW_ECLOSED);
		assert_null(poppers[i].item);
	}
	for (int i = 0; i < 2 * BLOCKED; i++)
		pthread_join(threads[i], NULL);
	/* The item queued before close is still there for the drain. */
	void *item;
	assert_int_equal(cw_queue_pop(full, &item, -1), 0);
	assert_ptr_equal(item, ITEM(1));
	cw_queue_free(full);
	cw_queue_free(empty);
}

static void test_closed_queue_drains(void **state)
{
	cw_queue_t *queue = cw_queue_new(8, NULL);
	for (uintptr_t i = 1; i <= 3; i++)
		assert_int_equal(cw_queue_push(queue, ITEM(i), 0), 0);
	cw_queue_close(queue);
	cw_queue_close(queue);
	assert_int_equal(cw_queue_push(queue, ITEM(4), -1), CW_ECLOSED);
	void *item;
	for (uintptr_t i = 1; i <= 3; i++) {
		assert_int_equal(cw_queue_pop(queue, &item, -1), 0);
		assert_ptr_equal(item, ITEM(i));
	}
	assert_int_equal(cw_queue_pop(queue, &item, -1), CW_ECLOSED);
	assert_int_equal(cw_queue_pop(queue, &item, 0), CW_ECLOSED);
	assert_null(item);
	cw_queue_free(queue);
}

typedef struct counted {
	int *freed;
} counted_t;

static void free_counted(void *item)
{
	counted_t *counted = item;
	(*counted->freed)++;
	free(counted);
}

static counted_t *new_counted(int *freed)
{
	counted_t *counted = malloc(sizeof *counted);
	counted->freed = freed;
	return counted;
}

static void test_free_fn_on_leftovers(void **state)
{
	int freed = 0;
	cw_queue_t *queue = cw_queue_new(4, free_counted);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cw_queue_push(queue, new_counted(&freed), 0), 0);
	/* A failed push leaves the item with the caller. */
	counted_t *rejected = new_counted(&freed);
	assert_int_equal(cw_queue_push(queue, rejected, 0), CW_ETIMEDOUT);
	void *item;
	assert_int_equal(cw_queue_pop(queue, &item, 0), 0);
	free_counted(item);
	assert_int_equal(cw_queue_push(queue, rejected, 0), 0);   /* wraps the ring */
	assert_int_equal(cw_queue_pop(queue, &item, 0), 0);
	free_counted(item);
	cw_queue_close(queue);
	counted_t *late = new_counted(&freed);
	assert_int_equal(cw_queue_push(queue, late, 0), CW_ECLOSED);
	free_counted(late);
	assert_int_equal(freed, 3);
	cw_queue_free(queue);
	assert_int_equal(freed, 3 + 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_and_depth),
		cmocka_unit_test(test_producer_consumer_in_order),
		cmocka_unit_test(test_many_producers_and_consumers),
		cmocka_unit_test(test_push_blocks_until_pop),
		cmocka_unit_test(test_pop_blocks_until_push),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_close_wakes_every_waiter),
		cmocka_unit_test(test_closed_queue_drains),
		cmocka_unit_test(test_free_fn_on_leftovers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
