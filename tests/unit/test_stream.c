/* This file contains the unit tests of apply/stream.c: a stream's settings and its error rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/stream.h"
#include "core/config.h"
#include "core/err.h"

#include <string.h>

static cw_config_t global_config(void)
{
	cw_config_t config;
	memset(&config, 0, sizeof config);
	config.retry = (cw_retry_policy_t){.initial_ms = 100, .max_ms = 30000, .multiplier = 2.0,
		.give_up_after_ms = 600000, .jitter = 0.5};
	return config;
}

static void test_an_entity_without_a_stream_has_the_defaults(void **state)
{
	cw_config_t config = global_config();
	cw_target_config_t target;
	memset(&target, 0, sizeof target);
	cw_stream_policy_t p;
	cw_stream_policy_resolve(&config, &target, "orders", &p);
	assert_true(p.enabled);
	assert_int_equal(p.on_error, CW_ON_ERROR_RETRY);
	assert_int_equal(p.on_transform_error, CW_ON_ERROR_DEAD_LETTER);
	assert_int_equal(p.max_attempts, 0);
	assert_int_equal(p.give_up_after_ms, 600000);
	assert_int_equal(p.initial_delay_ms, 100);
	assert_int_equal(p.max_delay_ms, 30000);
	assert_true(p.multiplier == 2.0);
	assert_null(p.transformation_id);
	assert_int_equal(p.ncodes, 0);
	cw_stream_policy_resolve(&config, NULL, "orders", &p);   /* no target config at all */
	assert_true(p.enabled);
}

static void test_a_stream_overrides_what_it_sets(void **state)
{
	cw_config_t config = global_config();
	cw_transformation_config_t tf = {.id = "slim", .spec = "[]", .on_error = CW_ON_ERROR_SKIP};
	config.transformations = &tf;
	config.ntransformations = 1;
	cw_stream_config_t streams[] = {
		{.entity = "orders", .transformation_id = "slim", .enabled = 0, .batch_size = 50,
		 .on_error = CW_ON_ERROR_DEAD_LETTER,
		 .retry_policy = {.max_attempts = 3, .initial_delay_ms = 20, .max_delay_ms = 10,
		                  .backoff_multiplier = 3.0,
		                  .permanent_error_codes = "23505,22P02, 11000"}},
	};
	cw_target_config_t target;
	memset(&target, 0, sizeof target);
	target.streams = streams;
	target.nstreams = 1;
	cw_stream_policy_t p;
	cw_stream_policy_resolve(&config, &target, "orders", &p);
	assert_false(p.enabled);
	assert_int_equal(p.batch_size, 50);
	assert_string_equal(p.transformation_id, "slim");
	assert_int_equal(p.on_error, CW_ON_ERROR_DEAD_LETTER);
	assert_int_equal(p.on_transform_error, CW_ON_ERROR_SKIP);
	assert_int_equal(p.max_attempts, 3);
	assert_int_equal(p.initial_delay_ms, 20);
	assert_int_equal(p.max_delay_ms, 20);   /* never below the first delay */
	assert_true(p.multiplier == 3.0);
	assert_int_equal(p.ncodes, 3);
	assert_string_equal(p.codes[0], "23505");
	assert_string_equal(p.codes[1], "22P02");
	assert_string_equal(p.codes[2], "11000");
	cw_stream_policy_resolve(&config, &target, "other", &p);
	assert_true(p.enabled);
	assert_int_equal(p.ncodes, 0);
}

static cw_err_t with_code(const char *code)
{
	cw_err_t err = {0};
	cw_err_set(&err, CW_EDB, "test", "refused");
	cw_err_set_server_code(&err, code);
	return err;
}

static void test_target_wide_errors_are_told_from_a_streams_own(void **state)
{
	static const char *const wide[] = {"", "08006", "08001", "40001", "40P01", "53100", "57P01",
	                                   "58030", "XX000", "91", "189", "10107", "11600", "6", "9001"};
	static const char *const own[] = {"23505", "22P02", "42501", "42P01", "CW001", "P0001",
	                                  "11000", "2", "13", "17280", "10334"};
	for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
		cw_err_t err = with_code(wide[i]);
		if (!cw_stream_error_is_target_wide(&err))
			fail_msg("code \"%s\" should be about the whole target", wide[i]);
	}
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
		cw_err_t err = with_code(own[i]);
		if (cw_stream_error_is_target_wide(&err))
			fail_msg("code \"%s\" should be the stream's own", own[i]);
	}
	/* cw_err_set clears a code a previous error left */
	cw_err_t err = with_code("23505");
	cw_err_set(&err, CW_EIO, "test", "unreachable");
	assert_string_equal(err.server_code, "");
	assert_true(cw_stream_error_is_target_wide(&err));
}

static void test_permanent_codes_match_exactly(void **state)
{
	cw_stream_policy_t p;
	memset(&p, 0, sizeof p);
	p.ncodes = 2;
	strcpy(p.codes[0], "23505");
	strcpy(p.codes[1], "11000");
	cw_err_t err = with_code("23505");
	assert_true(cw_stream_error_is_permanent(&p, &err));
	err = with_code("11000");
	assert_true(cw_stream_error_is_permanent(&p, &err));
	err = with_code("2350");
	assert_false(cw_stream_error_is_permanent(&p, &err));
	err = with_code("");
	assert_false(cw_stream_error_is_permanent(&p, &err));
}

static void test_delays_grow_to_the_cap_with_jitter_below(void **state)
{
	cw_stream_policy_t p;
	memset(&p, 0, sizeof p);
	p.initial_delay_ms = 100;
	p.max_delay_ms = 1000;
	p.multiplier = 2.0;
	uint64_t rng = 7;
	static const int64_t base[] = {100, 200, 400, 800, 1000, 1000};
	for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
		assert_int_equal(cw_stream_retry_delay(&p, (int64_t)i + 1, &rng), base[i]);
	p.jitter = 0.5;
	for (int i = 0; i < 1000; i++) {
		int64_t d = cw_stream_retry_delay(&p, 3, &rng);
		assert_true(d >= 200 && d <= 400);
	}
	p.multiplier = 1.0;
	p.jitter = 0;
	assert_int_equal(cw_stream_retry_delay(&p, 50, &rng), 100);
}

static void test_the_budget_is_attempts_or_time(void **state)
{
	cw_stream_policy_t p;
	memset(&p, 0, sizeof p);
	p.max_attempts = 3;
	assert_false(cw_stream_budget_spent(&p, 2, 0, 1000000));
	assert_true(cw_stream_budget_spent(&p, 3, 0, 0));
	p.max_attempts = 0;
	p.give_up_after_ms = 1000;
	assert_false(cw_stream_budget_spent(&p, 100, 5000, 5999));
	assert_true(cw_stream_budget_spent(&p, 1, 5000, 6000));
	p.give_up_after_ms = 0;   /* never */
	assert_false(cw_stream_budget_spent(&p, 1000000, 0, INT64_C(1) << 50));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_entity_without_a_stream_has_the_defaults),
		cmocka_unit_test(test_a_stream_overrides_what_it_sets),
		cmocka_unit_test(test_target_wide_errors_are_told_from_a_streams_own),
		cmocka_unit_test(test_permanent_codes_match_exactly),
		cmocka_unit_test(test_delays_grow_to_the_cap_with_jitter_below),
		cmocka_unit_test(test_the_budget_is_attempts_or_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
