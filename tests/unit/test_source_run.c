/* Unit tests of the frame of a source worker's run (capture/source_run.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/source_run.h"

#include <stdio.h>
#include <string.h>

/* A worker whose work ends the way the test says. */
typedef struct fake_worker {
	pthread_mutex_t mutex;
	cw_component_status_t status;
	int work_rc;               /* what work returns */
	const char *work_message;  /* err's message when work_rc is an error */
	int cleanups;
} fake_worker_t;

static int fake_work(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	fake_worker_t *w = self;
	(void)cancel;
	snprintf(w->status.state, sizeof w->status.state, "streaming");
	w->status.healthy = true;
	if (w->work_rc != 0 && w->work_rc != CW_ECANCELED)
		cw_err_set(err, w->work_rc, "test", "%s", w->work_message);
	return w->work_rc;
}

static void fake_cleanup(void *self)
{
	fake_worker_t *w = self;
	w->cleanups++;
}

static const char *fix_or_retry(const cw_err_t *err)
{
	return err->code == CW_EINVAL ? "failed" : "retrying";
}

static int run(fake_worker_t *w, const char *what, const char *(*error_state)(const cw_err_t *),
               cw_err_t *err)
{
	pthread_mutex_init(&w->mutex, NULL);
	cw_cancel_t *cancel = cw_cancel_new();
	cw_source_run_t frame = {what, "shop", "test", &w->mutex, &w->status, error_state,
	                         fake_work, fake_cleanup};
	int rc = cw_source_run(&frame, w, cancel, err);
	cw_cancel_free(cancel);
	pthread_mutex_destroy(&w->mutex);
	return rc;
}

static void test_cancelled_run_says_stopped(void **state)
{
	(void)state;
	fake_worker_t w = {.work_rc = CW_ECANCELED};
	cw_err_t err = {0};
	assert_int_equal(run(&w, "batch poller of source", NULL, &err), CW_ECANCELED);
	assert_int_equal(err.code, CW_ECANCELED);
	assert_string_equal(err.message, "batch poller of source \"shop\" stopped");
	assert_string_equal(w.status.state, "stopped");
	assert_false(w.status.healthy);
	assert_string_equal(w.status.last_error, "");
	assert_int_equal(w.cleanups, 1);
}

static void test_work_that_returns_zero_is_a_stop(void **state)
{
	(void)state;
	fake_worker_t w = {.work_rc = 0};
	assert_int_equal(run(&w, "source", NULL, NULL), CW_ECANCELED);   /* err may be NULL */
	assert_string_equal(w.status.state, "stopped");
	assert_int_equal(w.cleanups, 1);
}

static void test_error_retries_with_its_message_masked(void **state)
{
	(void)state;
	fake_worker_t w = {.work_rc = CW_EDB,
	                   .work_message = "could not connect to \"postgresql://u:secret@h/db\""};
	cw_err_t err = {0};
	assert_int_equal(run(&w, "source", NULL, &err), CW_EDB);
	assert_int_equal(err.code, CW_EDB);   /* the error goes up as it is */
	assert_non_null(strstr(err.message, "could not connect"));
	assert_string_equal(w.status.state, "retrying");
	assert_false(w.status.healthy);
	assert_non_null(strstr(w.status.last_error, "could not connect"));
	assert_null(strstr(w.status.last_error, "secret"));
	assert_int_equal(w.cleanups, 1);
}

static void test_error_state_decides_failed_or_retrying(void **state)
{
	(void)state;
	fake_worker_t fix = {.work_rc = CW_EINVAL, .work_message = "wal_level is not logical"};
	assert_int_equal(run(&fix, "source", fix_or_retry, NULL), CW_EINVAL);
	assert_string_equal(fix.status.state, "failed");
	assert_string_equal(fix.status.last_error, "wal_level is not logical");
	fake_worker_t transient = {.work_rc = CW_EDB, .work_message = "connection lost"};
	assert_int_equal(run(&transient, "source", fix_or_retry, NULL), CW_EDB);
	assert_string_equal(transient.status.state, "retrying");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cancelled_run_says_stopped),
		cmocka_unit_test(test_work_that_returns_zero_is_a_stop),
		cmocka_unit_test(test_error_retries_with_its_message_masked),
		cmocka_unit_test(test_error_state_decides_failed_or_retrying),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
