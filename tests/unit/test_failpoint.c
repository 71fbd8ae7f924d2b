/*
 * Unit tests of failpoints: armed from CW_FAILPOINTS in builds that compile
 * them in (the ASan build of make test), the constant 0 in release builds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CW_FAILPOINTS
static void error_fires_on_the_nth_hit_only(void **state)
{
	(void)state;
	setenv("CW_FAILPOINTS", "before_hub_commit=error@3,after_oplog_copy=error", 1);
	cw_failpoint_reset();
	assert_false(CW_FAILPOINT("before_hub_commit"));
	assert_false(CW_FAILPOINT("before_hub_commit"));
	assert_true(CW_FAILPOINT("before_hub_commit"));
	assert_false(CW_FAILPOINT("before_hub_commit"));
	assert_true(CW_FAILPOINT("after_oplog_copy"));
	assert_false(CW_FAILPOINT("after_oplog_copy"));
	assert_false(CW_FAILPOINT("never_armed"));
}

static void abort_kills_the_process(void **state)
{
	(void)state;
	setenv("CW_FAILPOINTS", "after_hub_commit=abort", 1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cw_failpoint_reset();
		(void)CW_FAILPOINT("after_hub_commit");
		_exit(0);   /* not reached when the failpoint works */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void sleep_waits_then_goes_on(void **state)
{
	(void)state;
	setenv("CW_FAILPOINTS", "verify_settle=sleep50@2,bad=sleep0,worse=sleepx", 1);
	cw_failpoint_reset();
	/* A sleep never fails its call site (test_verify.sh shows a run held open by one). */
	assert_false(CW_FAILPOINT("verify_settle"));
	assert_false(CW_FAILPOINT("verify_settle"));
	assert_false(CW_FAILPOINT("bad"));
	assert_false(CW_FAILPOINT("worse"));
}

static void malformed_entries_are_ignored(void **state)
{
	(void)state;
	setenv("CW_FAILPOINTS", "nonsense,x=explode,=error,ok_point=error", 1);
	cw_failpoint_reset();
	assert_false(CW_FAILPOINT("x"));
	assert_true(CW_FAILPOINT("ok_point"));
}
#else
static void release_builds_never_fire(void **state)
{
	(void)state;
	setenv("CW_FAILPOINTS", "before_hub_commit=abort", 1);
	assert_false(CW_FAILPOINT("before_hub_commit"));
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
#ifdef CW_FAILPOINTS
		cmocka_unit_test(error_fires_on_the_nth_hit_only),
		cmocka_unit_test(abort_kills_the_process),
		cmocka_unit_test(sleep_waits_then_goes_on),
		cmocka_unit_test(malformed_entries_are_ignored),
#else
		cmocka_unit_test(release_builds_never_fire),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
