/* This file contains the unit tests of core/clock.c and core/cancel.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/cancel.h"
#include "core/clock.h"
#include "core/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#define WAIT_LIMIT_MS 10000

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_rfc3339(void **state)
{
	static const struct {
		int64_t wall_us;
		const char *text;
	} cases[] = {
		{0, "1970-01-01T00:00:00.000Z"},
		{INT64_C(1795341600123456), "2026-11-22T10:00:00.123Z"},
		{INT64_C(1795341600999999), "2026-11-22T10:00:00.999Z"},
		{INT64_C(1709251199000000), "2024-02-29T23:59:59.000Z"},
		{INT64_C(2147483648000001), "2038-01-19T03:14:08.000Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{-1000000, "1969-12-31T23:59:59.000Z"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[CW_TIME_RFC3339_LEN];
		cw_time_format_rfc3339_ms(cases[i].wall_us, out);
		assert_string_equal(out, cases[i].text);
	}
}

static void test_system_clock(void **state)
{
	const cw_clock_t *clock = cw_clock_system();
	assert_ptr_equal(clock, cw_clock_system());
	int64_t wall_s = cw_clock_wall_us(clock) / 1000000;
	int64_t now_s = (int64_t)time(NULL);
	assert_true(wall_s >= now_s - 1 && wall_s <= now_s + 1);

	int64_t start = cw_clock_now_ms(clock);
	int64_t previous = start;
	for (int i = 0; i < 1000; i++) {
		int64_t now = cw_clock_now_ms(clock);
		assert_true(now >= previous);
		previous = now;
	}
	assert_int_equal(cw_clock_sleep_ms(clock, 40, NULL), 0);
	assert_true(cw_clock_now_ms(clock) - start >= 40);
	assert_int_equal(cw_clock_sleep_ms(clock, 0, NULL), 0);
	assert_int_equal(cw_clock_sleep_ms(clock, -5, NULL), 0);
}

typedef struct sleeper {
	cw_cancel_t *cancel;
	atomic_bool started;
	atomic_bool finished;
	int rc;
	int64_t timeout_ms;
} sleeper_t;

static void *sleep_on_system_clock(void *arg)
{
	sleeper_t *sleeper = arg;
	atomic_store(&sleeper->started, true);
	sleeper->rc = cw_clock_sleep_ms(cw_clock_system(), sleeper->timeout_ms, sleeper->cancel);
	atomic_store(&sleeper->finished, true);
	return NULL;
}

static void *wait_on_token(void *arg)
{
	sleeper_t *sleeper = arg;
	atomic_store(&sleeper->started, true);
	sleeper->rc = cw_cancel_wait_ms(sleeper->cancel, sleeper->timeout_ms);
	atomic_store(&sleeper->finished, true);
	return NULL;
}

static void poll_flag(atomic_bool *flag, const char *what)
{
	int64_t deadline = monotonic_ms() + WAIT_LIMIT_MS;
	while (!atomic_load(flag)) {
		if (monotonic_ms() > deadline)
			fail_msg("timed out waiting for %s", what);
		struct timespec ms = {0, 1000000L};
		nanosleep(&ms, NULL);
	}
}

/* A long sleep and an unbounded wait both end as soon as the token fires. */
static void test_cancel_wakes_sleepers(void **state)
{
	cw_cancel_t *cancel = cw_cancel_new();
	sleeper_t sleeper = {.cancel = cancel, .timeout_ms = 3600 * 1000};
	sleeper_t waiter = {.cancel = cancel, .timeout_ms = -1};
	pthread_t threads[2];
	assert_int_equal(pthread_create(&threads[0], NULL, sleep_on_system_clock, &sleeper), 0);
	assert_int_equal(pthread_create(&threads[1], NULL, wait_on_token, &waiter), 0);
	poll_flag(&sleeper.started, "the sleeper to start");
	poll_flag(&waiter.started, "the waiter to start");
	assert_false(cw_cancel_is_set(cancel));
	int64_t fired_at = monotonic_ms();
	cw_cancel_fire(cancel);
	poll_flag(&sleeper.finished, "the canceled sleep to return");
	poll_flag(&waiter.finished, "the canceled wait to return");
	assert_true(monotonic_ms() - fired_at < WAIT_LIMIT_MS);
	assert_int_equal(sleeper.rc, CW_ECANCELED);
	assert_int_equal(waiter.rc, CW_ECANCELED);
	assert_true(cw_cancel_is_set(cancel));
	pthread_join(threads[0], NULL);
	pthread_join(threads[1], NULL);

	/* A fired token stays fired: later waits return at once. */
	assert_int_equal(cw_cancel_wait_ms(cancel, 3600 * 1000), CW_ECANCELED);
	assert_int_equal(cw_clock_sleep_ms(cw_clock_system(), 3600 * 1000, cancel), CW_ECANCELED);
	cw_cancel_fire(cancel);
	cw_cancel_free(cancel);
	cw_cancel_free(NULL);
}

static void test_unfired_token_times_out(void **state)
{
	cw_cancel_t *cancel = cw_cancel_new();
	int64_t start = monotonic_ms();
	assert_int_equal(cw_cancel_wait_ms(cancel, 60), 0);
	assert_true(monotonic_ms() - start >= 60);
	start = monotonic_ms();
	assert_int_equal(cw_clock_sleep_ms(cw_clock_system(), 30, cancel), 0);
	assert_true(monotonic_ms() - start >= 30);
	assert_int_equal(cw_cancel_wait_ms(cancel, 0), 0);
	assert_false(cw_cancel_is_set(cancel));
	assert_false(cw_cancel_is_set(NULL));
	cw_cancel_free(cancel);
}

static void test_fake_clock(void **state)
{
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 1000, INT64_C(1795341600000000));
	const cw_clock_t *clock = cw_fake_clock_clock(&fake);
	assert_int_equal(cw_clock_now_ms(clock), 1000);
	assert_int_equal(cw_clock_now_ms(clock), 1000);  /* time stands still */
	cw_fake_clock_advance(&fake, 250);
	assert_int_equal(cw_clock_now_ms(clock), 1250);
	assert_int_equal(cw_clock_wall_us(clock), INT64_C(1795341600250000));

	assert_int_equal(cw_clock_sleep_ms(clock, 3600 * 1000, NULL), 0);
	assert_int_equal(cw_clock_now_ms(clock), 1250 + 3600 * 1000);
	assert_int_equal(cw_fake_clock_slept_ms(&fake), 3600 * 1000);
	assert_int_equal(cw_fake_clock_sleeps(&fake), 1);

	cw_cancel_t *cancel = cw_cancel_new();
	assert_int_equal(cw_clock_sleep_ms(clock, 10, cancel), 0);
	cw_cancel_fire(cancel);
	assert_int_equal(cw_clock_sleep_ms(clock, 10, cancel), CW_ECANCELED);
	assert_int_equal(cw_clock_now_ms(clock), 1250 + 3600 * 1000 + 10);
	assert_int_equal(cw_fake_clock_sleeps(&fake), 2);
	cw_cancel_free(cancel);
	cw_fake_clock_destroy(&fake);
}

static void test_deadline(void **state)
{
	static const int64_t timeouts[] = {0, 1, 999, 1000, 1500, 86400000};
	for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
		struct timespec before, deadline;
		clock_gettime(CLOCK_MONOTONIC, &before);
		cw_time_deadline(timeouts[i], &deadline);
		assert_true(deadline.tv_nsec >= 0 && deadline.tv_nsec < 1000000000L);
		int64_t ahead_ms = ((int64_t)deadline.tv_sec - before.tv_sec) * 1000 +
			(deadline.tv_nsec - before.tv_nsec) / 1000000;
		assert_true(ahead_ms >= timeouts[i]);
		assert_true(ahead_ms <= timeouts[i] + 1000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_system_clock),
		cmocka_unit_test(test_cancel_wakes_sleepers),
		cmocka_unit_test(test_unfired_token_times_out),
		cmocka_unit_test(test_fake_clock),
		cmocka_unit_test(test_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
