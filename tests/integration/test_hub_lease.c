/* Integration test of leases: one holder at a time; a dead holder's lease passes to the standby. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub/lease.h"
#include "testsrv.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cw_testsrv_t pg;

static int setup(void **state)
{
	return cw_testpg_start(&pg);
}

static int teardown(void **state)
{
	cw_testpg_stop(&pg);
	return 0;
}

static void one_holder_at_a_time_and_the_standby_takes_over(void **state)
{
	(void)state;
	cw_lease_t *first = cw_lease_new(pg.url, NULL, "source:shop");
	cw_lease_t *second = cw_lease_new(pg.url, NULL, "source:shop");
	cw_lease_t *other = cw_lease_new(pg.url, NULL, "source:app_pg");
	cw_err_t err = {0};
	bool held = false;
	assert_int_equal(cw_lease_acquire(first, &held, &err), 0);
	assert_true(held);
	assert_int_equal(cw_lease_acquire(second, &held, &err), 0);
	assert_false(held);
	assert_int_equal(cw_lease_acquire(other, &held, &err), 0);
	assert_true(held);                                 /* another name is independent */
	assert_int_equal(cw_lease_acquire(first, &held, &err), 0);
	assert_true(held);                                 /* re-checking keeps it */
	/* The holder's backend is killed, as when its process dies: the lock goes with it. */
	char *out = cw_testpg_query(pg.url,
		"SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
		"WHERE locktype = 'advisory' AND objid = hashtext('source:shop')::oid AND granted");
	assert_non_null(out);
	assert_string_equal(out, "1");
	free(out);
	/* pg_terminate_backend only signals: the lock is gone once that backend has exited. */
	bool released = false;
	for (int i = 0; i < 200 && !released; i++) {
		out = cw_testpg_query(pg.url,
			"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
			"AND objid = hashtext('source:shop')::oid AND granted");
		assert_non_null(out);
		released = strcmp(out, "0") == 0;
		free(out);
		if (!released)
			usleep(50 * 1000);
	}
	assert_true(released);
	assert_int_equal(cw_lease_acquire(second, &held, &err), 0);
	assert_true(held);
	/* The old holder notices it lost the lease (error or not held), and cannot take it back. */
	int rc = cw_lease_acquire(first, &held, &err);
	assert_false(rc == 0 && held);
	assert_int_equal(cw_lease_acquire(first, &held, &err), 0);
	assert_false(held);
	cw_lease_free(first);
	cw_lease_free(second);
	cw_lease_free(other);
}

static void unreachable_hub_is_an_error_not_a_lease(void **state)
{
	(void)state;
	cw_lease_t *lease = cw_lease_new("postgresql://u:pw@127.0.0.1:1/db", NULL, "target:local");
	cw_err_t err = {0};
	bool held = true;
	assert_int_equal(cw_lease_acquire(lease, &held, &err), CW_EDB);
	assert_false(held);
	assert_null(strstr(err.message, ":pw@"));
	cw_lease_free(lease);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_holder_at_a_time_and_the_standby_takes_over),
		cmocka_unit_test(unreachable_hub_is_an_error_not_a_lease),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
