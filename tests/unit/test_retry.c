/* This file contains the unit tests of core/retry.c, driven by the fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/cancel.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/retry.h"

#include <string.h>

static void test_delays_grow_to_the_cap_without_jitter(void **state)
{
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	cw_retry_policy_t policy = {.initial_ms = 100, .max_ms = 5000, .multiplier = 2.0,
		.give_up_after_ms = 0, .jitter = 0.0};
	cw_retry_t retry;
	cw_retry_init(&retry, &policy);
	uint64_t rng = 1;
	static const int64_t expected[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
	for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
		int64_t delay = -1;
		assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
		assert_int_equal(delay, expected[i]);
		cw_fake_clock_advance(&fake, delay);
	}
	assert_int_equal(retry.attempts, 9);
	/* Never gives up when give_up_after_ms is 0, even after a very long outage. */
	cw_fake_clock_advance(&fake, INT64_C(365) * 24 * 3600 * 1000);
	for (int i = 0; i < 1000; i++) {
		int64_t delay = -1;
		assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
		assert_int_equal(delay, 5000);
	}
	cw_fake_clock_destroy(&fake);
}

static void test_fractional_multiplier(void **state)
{
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	cw_retry_policy_t policy = {100, 1000, 1.5, 0, 0.0};
	cw_retry_t retry;
	cw_retry_init(&retry, &policy);
	uint64_t rng = 1;
	static const int64_t expected[] = {100, 150, 225, 338, 506, 759, 1000};
	for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
		int64_t delay;
		assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
		assert_int_equal(delay, expected[i]);
	}
	cw_fake_clock_destroy(&fake);
}

/* Every jittered delay lies in [base * (1 - jitter), base], and the draws do spread. */
static void test_jitter_bounds(void **state)
{
	static const double jitters[] = {1.0, 0.5, 0.2};
	for (size_t j = 0; j < sizeof jitters / sizeof jitters[0]; j++) {
		cw_fake_clock_t fake;
		cw_fake_clock_init(&fake, 0, 0);
		cw_retry_policy_t policy = {1000, 64000, 2.0, 0, jitters[j]};
		uint64_t rng = 42 + j;
		for (int run = 0; run < 200; run++) {
			cw_retry_t retry;
			cw_retry_init(&retry, &policy);
			int64_t base = 1000;
			for (int attempt = 0; attempt < 8; attempt++) {
				int64_t delay;
				assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
				int64_t low = (int64_t)((double)base * (1.0 - jitters[j]));
				if (delay < low || delay > base)
					fail_msg("jitter %.1f attempt %d: delay %lld outside [%lld, %lld]",
						jitters[j], attempt, (long long)delay, (long long)low,
						(long long)base);
				base = base * 2 > 64000 ? 64000 : base * 2;
			}
		}
		/* The first delay varies from run to run: it is jittered at all. */
		int64_t smallest = INT64_MAX, largest = 0;
		for (int run = 0; run < 200; run++) {
			cw_retry_t retry;
			cw_retry_init(&retry, &policy);
			int64_t delay;
			assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
			smallest = delay < smallest ? delay : smallest;
			largest = delay > largest ? delay : largest;
		}
		assert_true(largest - smallest > (int64_t)(jitters[j] * 1000 / 2));
		cw_fake_clock_destroy(&fake);
	}
}

static void test_same_seed_same_delays(void **state)
{
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	cw_retry_policy_t policy = CW_RETRY_POLICY_DEFAULT;
	int64_t first[20], second[20];
	int64_t *runs[] = {first, second};
	for (int r = 0; r < 2; r++) {
		cw_retry_t retry;
		cw_retry_init(&retry, &policy);
		uint64_t rng = 12345;
		for (int i = 0; i < 20; i++)
			assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &runs[r][i]), 0);
	}
	assert_memory_equal(first, second, sizeof first);

	uint64_t a = 0, b = 0;
	assert_int_equal(cw_retry_rand(&a), cw_retry_rand(&b));
	assert_int_not_equal(cw_retry_rand(&a), cw_retry_rand(&a));
	cw_fake_clock_destroy(&fake);
}

/* The last attempt happens exactly give_up_after_ms after the first failure. */
static void test_gives_up_after_exact_elapsed_time(void **state)
{
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 5000, 0);
	cw_retry_policy_t policy = {100, 1000, 2.0, 2500, 0.5};
	cw_retry_t retry;
	cw_retry_init(&retry, &policy);
	uint64_t rng = 7;
	int64_t delay;
	int64_t first_failure = cw_clock_now_ms(&fake.clock);
	int failures = 0;
	while (cw_retry_next_delay(&retry, &fake.clock, &rng, &delay) == 0) {
		failures++;
		assert_true(delay >= 0);
		assert_true(cw_clock_now_ms(&fake.clock) + delay <= first_failure + 2500);
		cw_fake_clock_advance(&fake, delay);
		assert_true(failures < 1000);
	}
	assert_int_equal(delay, 0);
	assert_int_equal(cw_clock_now_ms(&fake.clock) - first_failure, 2500);
	assert_int_equal(retry.attempts, failures + 1);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), CW_ETIMEDOUT);

	/* A failure noticed late (a slow attempt) gives up without waiting either. */
	cw_retry_reset(&retry);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
	cw_fake_clock_advance(&fake, 2499);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
	assert_int_equal(delay, 1);
	cw_fake_clock_advance(&fake, 1);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), CW_ETIMEDOUT);
	cw_fake_clock_destroy(&fake);
}

static void test_reset_starts_over(void **state)
{
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	cw_retry_policy_t policy = {100, 10000, 3.0, 1000, 0.0};
	cw_retry_t retry;
	cw_retry_init(&retry, &policy);
	uint64_t rng = 3;
	int64_t delay;
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
	assert_int_equal(delay, 100);
	cw_fake_clock_advance(&fake, 100);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
	assert_int_equal(delay, 300);
	cw_fake_clock_advance(&fake, 900);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), CW_ETIMEDOUT);

	/* A success: the next outage starts from initial_ms with a fresh give-up clock. */
	cw_retry_reset(&retry);
	assert_int_equal(retry.attempts, 0);
	cw_fake_clock_advance(&fake, 60000);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
	assert_int_equal(delay, 100);
	cw_fake_clock_advance(&fake, 100);
	assert_int_equal(cw_retry_next_delay(&retry, &fake.clock, &rng, &delay), 0);
	assert_int_equal(delay, 300);
	cw_fake_clock_destroy(&fake);
}

static void test_backoff_sleeps_on_the_clock(void **state)
{
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	cw_retry_policy_t policy = {100, 400, 2.0, 1000, 0.0};
	cw_retry_t retry;
	cw_retry_init(&retry, &policy);
	uint64_t rng = 9;
	cw_cancel_t *cancel = cw_cancel_new();
	int rc;
	int attempts = 0;
	while ((rc = cw_retry_backoff(&retry, &fake.clock, &rng, cancel)) == 0)
		attempts++;
	assert_int_equal(rc, CW_ETIMEDOUT);
	/* 100 + 200 + 400 + 300 (cut to the give-up instant) */
	assert_int_equal(attempts, 4);
	assert_int_equal(cw_fake_clock_slept_ms(&fake), 1000);

	cw_retry_reset(&retry);
	cw_cancel_fire(cancel);
	assert_int_equal(cw_retry_backoff(&retry, &fake.clock, &rng, cancel), CW_ECANCELED);
	assert_int_equal(cw_fake_clock_slept_ms(&fake), 1000);
	cw_cancel_free(cancel);
	cw_fake_clock_destroy(&fake);
}

static void test_policy_check(void **state)
{
	cw_retry_policy_t good = CW_RETRY_POLICY_DEFAULT;
	cw_err_t err;
	cw_err_clear(&err);
	assert_int_equal(cw_retry_policy_check(&good, &err), 0);
	assert_int_equal(good.initial_ms, 100);
	assert_int_equal(good.max_ms, 30000);
	assert_int_equal(good.give_up_after_ms, 600000);

	static const struct {
		cw_retry_policy_t policy;
		const char *field;
	} bad[] = {
		{{0, 1000, 2.0, 0, 0.5}, "\"initial\""},
		{{-5, 1000, 2.0, 0, 0.5}, "\"initial\""},
		{{100, 50, 2.0, 0, 0.5}, "\"max\""},
		{{100, 1000, 0.5, 0, 0.5}, "\"multiplier\""},
		{{100, 1000, 2.0, -1, 0.5}, "\"give_up_after\""},
		{{100, 1000, 2.0, 0, 1.5}, "\"jitter\""},
		{{100, 1000, 2.0, 0, -0.1}, "\"jitter\""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(cw_retry_policy_check(&bad[i].policy, &err), CW_EINVAL);
		assert_int_equal(err.code, CW_EINVAL);
		assert_non_null(strstr(err.message, bad[i].field));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delays_grow_to_the_cap_without_jitter),
		cmocka_unit_test(test_fractional_multiplier),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_same_seed_same_delays),
		cmocka_unit_test(test_gives_up_after_exact_elapsed_time),
		cmocka_unit_test(test_reset_starts_over),
		cmocka_unit_test(test_backoff_sleeps_on_the_clock),
		cmocka_unit_test(test_policy_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
