/* Unit tests of the daily time window (core/time_window.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/time_window.h"

#include <string.h>

static void test_parse(void **state)
{
	(void)state;
	int start = -1, end = -1;
	assert_int_equal(cw_time_window_parse("02:00-05:30", &start, &end, NULL), 0);
	assert_int_equal(start, 120);
	assert_int_equal(end, 330);
	assert_int_equal(cw_time_window_parse("23:59-00:00", &start, &end, NULL), 0);
	assert_int_equal(start, 1439);
	assert_int_equal(end, 0);
	static const char *const bad[] = {"", "2:00-5:00", "02:00", "24:00-01:00", "02:60-03:00",
	                                  "02:00 05:00", "02:00-05:00 ", "ab:cd-ef:gh", "02:00--5:00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_err_t err = {0};
		assert_int_equal(cw_time_window_parse(bad[i], &start, &end, &err), CW_EINVAL);
		assert_non_null(strstr(err.message, "HH:MM-HH:MM"));
	}
}

static void test_contains(void **state)
{
	(void)state;
	/* 02:00-05:00: start included, end excluded. */
	assert_false(cw_time_window_contains(120, 300, 119));
	assert_true(cw_time_window_contains(120, 300, 120));
	assert_true(cw_time_window_contains(120, 300, 299));
	assert_false(cw_time_window_contains(120, 300, 300));
	/* 22:00-04:00 passes midnight. */
	assert_true(cw_time_window_contains(1320, 240, 1439));
	assert_true(cw_time_window_contains(1320, 240, 0));
	assert_true(cw_time_window_contains(1320, 240, 239));
	assert_false(cw_time_window_contains(1320, 240, 240));
	assert_false(cw_time_window_contains(1320, 240, 720));
	/* Start equal to end: the whole day. */
	assert_true(cw_time_window_contains(600, 600, 0));
	assert_true(cw_time_window_contains(600, 600, 1439));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_contains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
