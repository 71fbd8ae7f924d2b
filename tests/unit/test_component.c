/* Unit tests of what every component shares (core/component.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/component.h"

#include <stdlib.h>
#include <string.h>

static void test_status_set(void **state)
{
	(void)state;
	pthread_mutex_t mutex;
	pthread_mutex_init(&mutex, NULL);
	cw_component_status_t status = {0};
	cw_component_status_set(&mutex, &status, "retrying", false,
	                        "could not connect to \"postgresql://app:s3cret@db:5432/app\"");
	assert_string_equal(status.state, "retrying");
	assert_false(status.healthy);
	assert_non_null(strstr(status.last_error, "could not connect"));
	assert_null(strstr(status.last_error, "s3cret"));   /* passwords never reach the status */
	/* No state and no error: only healthy changes. */
	cw_component_status_set(&mutex, &status, NULL, true, NULL);
	assert_string_equal(status.state, "retrying");
	assert_true(status.healthy);
	assert_non_null(strstr(status.last_error, "could not connect"));
	/* "" clears the error. */
	cw_component_status_set(&mutex, &status, "streaming", true, "");
	assert_string_equal(status.state, "streaming");
	assert_string_equal(status.last_error, "");
	pthread_mutex_destroy(&mutex);
}

static void test_scope(void **state)
{
	(void)state;
	const char *const entities[] = {"orders", "customers", "orders"};
	char *scope = cw_component_scope(entities, 3);
	assert_string_equal(scope, "customers,orders");
	free(scope);
	scope = cw_component_scope(NULL, 0);
	assert_string_equal(scope, "");
	free(scope);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_set),
		cmocka_unit_test(test_scope),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
