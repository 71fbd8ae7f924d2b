/* Unit tests of the circuit breaker: open after the threshold, half-open after the cool-down. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/breaker.h"

static void opens_after_threshold_consecutive_failures(void **state)
{
	(void)state;
	cw_breaker_t b;
	cw_breaker_init(&b, 3, 1000);
	for (int i = 0; i < 2; i++) {
		assert_true(cw_breaker_allow(&b, 0));
		cw_breaker_record(&b, false, 0);
	}
	assert_int_equal(b.state, CW_BREAKER_CLOSED);
	cw_breaker_record(&b, true, 0);          /* a success resets the count */
	for (int i = 0; i < 2; i++)
		cw_breaker_record(&b, false, 10);
	assert_int_equal(b.state, CW_BREAKER_CLOSED);
	cw_breaker_record(&b, false, 10);
	assert_int_equal(b.state, CW_BREAKER_OPEN);
	assert_false(cw_breaker_allow(&b, 500));
	assert_int_equal(cw_breaker_wait_ms(&b, 500), 510);
}

static void half_opens_after_cool_down_and_lets_one_trial_through(void **state)
{
	(void)state;
	cw_breaker_t b;
	cw_breaker_init(&b, 1, 1000);
	cw_breaker_record(&b, false, 0);
	assert_false(cw_breaker_allow(&b, 999));
	assert_true(cw_breaker_allow(&b, 1000));
	assert_int_equal(b.state, CW_BREAKER_HALF_OPEN);
	assert_false(cw_breaker_allow(&b, 1001));   /* only one trial */
	cw_breaker_record(&b, false, 1002);         /* trial failed: open again */
	assert_int_equal(b.state, CW_BREAKER_OPEN);
	assert_false(cw_breaker_allow(&b, 1500));
	assert_true(cw_breaker_allow(&b, 2002));
	cw_breaker_record(&b, true, 2003);          /* trial succeeded: closed */
	assert_int_equal(b.state, CW_BREAKER_CLOSED);
	assert_true(cw_breaker_allow(&b, 2004));
	assert_int_equal(cw_breaker_wait_ms(&b, 2004), 0);
	assert_string_equal(cw_breaker_state_name(b.state), "closed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(opens_after_threshold_consecutive_failures),
		cmocka_unit_test(half_opens_after_cool_down_and_lets_one_trial_through),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
