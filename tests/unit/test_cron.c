/* Unit tests of cron schedules (core/cron.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/cron.h"

#include <string.h>

/* 2026-12-04 20:41:38 UTC, a Friday. */
#define FRI INT64_C(1796416898)
#define MIN 60
#define HOUR 3600
#define DAY 86400
/* 2026-12-04 00:00:00 UTC. */
#define FRI_MIDNIGHT (FRI - 20 * HOUR - 41 * MIN - 38)

static int64_t next(const char *text, int64_t after)
{
	cw_cron_t cron;
	cw_err_t err = {0};
	assert_int_equal(cw_cron_parse(text, &cron, &err), 0);
	return cw_cron_next(&cron, after);
}

static void test_every_minute_and_steps(void **state)
{
	(void)state;
	assert_int_equal(next("* * * * *", FRI), FRI_MIDNIGHT + 20 * HOUR + 42 * MIN);
	/* Every 15 minutes: 20:45, and strictly after a firing time the next one. */
	assert_int_equal(next("*/15 * * * *", FRI), FRI_MIDNIGHT + 20 * HOUR + 45 * MIN);
	assert_int_equal(next("*/15 * * * *", FRI_MIDNIGHT + 20 * HOUR + 45 * MIN),
	                 FRI_MIDNIGHT + 21 * HOUR);
	/* 5/20 is 5, 25, 45. */
	assert_int_equal(next("5/20 * * * *", FRI), FRI_MIDNIGHT + 20 * HOUR + 45 * MIN);
	assert_int_equal(next("10-30/10 * * * *", FRI), FRI_MIDNIGHT + 21 * HOUR + 10 * MIN);
}

static void test_lists_ranges_names(void **state)
{
	(void)state;
	assert_int_equal(next("0 6,18 * * *", FRI), FRI_MIDNIGHT + DAY + 6 * HOUR);
	/* Friday evening: the next weekday 09:00 is Monday. */
	assert_int_equal(next("0 9 * * mon-fri", FRI), FRI_MIDNIGHT + 3 * DAY + 9 * HOUR);
	assert_int_equal(next("0 9 * * 1-5", FRI), FRI_MIDNIGHT + 3 * DAY + 9 * HOUR);
	/* Sunday is 0 and 7. */
	assert_int_equal(next("0 0 * * 7", FRI), FRI_MIDNIGHT + 2 * DAY);
	assert_int_equal(next("0 0 * * SUN", FRI), FRI_MIDNIGHT + 2 * DAY);
	/* 1 January 2027 00:00 UTC. */
	assert_int_equal(next("0 0 1 jan *", FRI), INT64_C(1798761600));
	/* Both day fields restricted: either matches (the 5th, a Saturday; or a Monday). */
	assert_int_equal(next("0 0 5 * mon", FRI), FRI_MIDNIGHT + DAY);
	/* Never: 31 February. */
	assert_int_equal(next("0 0 31 2 *", FRI), -1);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *",
	                                  "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *",
	                                  "5-1 * * * *", "a * * * *", "1,,2 * * * *",
	                                  "* * * foo *", "*/x * * * *", "1- * * * *"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_cron_t cron;
		cw_err_t err = {0};
		assert_int_equal(cw_cron_parse(bad[i], &cron, &err), CW_EINVAL);
		assert_true(err.message[0] != '\0');
	}
	cw_err_t err = {0};
	assert_int_equal(cw_cron_check("61 * * * *", &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "minute field"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_minute_and_steps),
		cmocka_unit_test(test_lists_ranges_names),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
