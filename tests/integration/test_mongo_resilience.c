/*
 * Integration tests of the MongoDB source when its server goes away: an
 * unreachable server makes `run` return an error (so the job server backs
 * off and calls it again) whose message never shows the password, and a
 * server lost while streaming stops the run with an error instead of
 * hanging, leaving the source unhealthy with the reason in its status; a
 * source that cannot connect for retry.give_up_after gives up and reports
 * itself failed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mongo_fixture.h"

/* Waits until the runner's run returned on its own, then joins it. */
static void wait_stopped(runner_t *r, int64_t timeout_ms)
{
	int64_t deadline = fx_now_ms() + timeout_ms;
	while (!__atomic_load_n(&r->done, __ATOMIC_SEQ_CST)) {
		if (fx_now_ms() > deadline)
			fail_msg("run did not return after the server went away");
		fx_pause_ms(20);
	}
	pthread_join(r->thread, NULL);
	r->running = false;
}

static void finish(runner_t *r)
{
	r->ops->close(r->source);
	cw_cancel_free(r->cancel);
}

static void unreachable_server_is_an_error_without_the_password(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 100);
	const char *port = strrchr(f.mongo.url, ':') + 1;
	char *url = cw_xasprintf("mongodb://cw:hunter2@127.0.0.1:%d/?directConnection=true"
	                         "&serverSelectionTimeoutMS=500", atoi(port));
	cw_testmongo_stop(&f.mongo);
	free(f.config->sources[0].url);
	f.config->sources[0].url = url;   /* owned by the config from here on */

	runner_t r;
	runner_start(&r, &f);
	wait_stopped(&r, 60000);
	assert_int_equal(r.rc, CW_EIO);
	if (strstr(r.err.message, "could not reach mongodb \"mongodb://cw:****@127.0.0.1") == NULL)
		fail_msg("unexpected error: %s", r.err.message);
	assert_null(strstr(r.err.message, "hunter2"));
	cw_component_status_t status;
	r.ops->status(r.source, &status);
	assert_false(status.healthy);
	assert_string_equal(status.state, "retrying");
	assert_null(strstr(status.last_error, "hunter2"));
	finish(&r);
	fx_stop(&f);
}

static void server_lost_while_streaming_stops_the_run(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 100);
	runner_t r;
	fx_run_until_live(&f, &r);
	bson_t *doc = BCON_NEW("_id", BCON_INT32(1), "n", BCON_INT32(1));
	fx_insert(&f, "items", doc);
	bson_destroy(doc);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'upsert'", 1, 60000);

	cw_testmongo_stop(&f.mongo);
	wait_stopped(&r, 120000);
	assert_int_equal(r.rc, CW_EIO);
	assert_true(strstr(r.err.message, "shop.items") != NULL);
	cw_component_status_t status;
	r.ops->status(r.source, &status);
	assert_false(status.healthy);
	assert_string_equal(status.state, "retrying");
	assert_string_equal(status.last_error, r.err.message);
	/* What was committed stays, with its checkpoint. */
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.metadata WHERE key = "
	                                   "'mongo_resume_token:shop:items' AND value->'token' ? '_data'"), 1);
	finish(&r);
	fx_stop(&f);
}

static void source_gives_up_after_the_configured_time(void **state)
{
	(void)state;
	mongo_fixture_t f;
	/* Ends the source item and sets retry.give_up_after at the top level. */
	fx_start_with(&f, "retry:\n  give_up_after: 1ms\n", fx_items_yaml, 100);
	assert_int_equal(f.config->retry.give_up_after_ms, 1);
	const char *port = strrchr(f.mongo.url, ':') + 1;
	char *url = cw_xasprintf("mongodb://127.0.0.1:%d/?directConnection=true"
	                         "&serverSelectionTimeoutMS=200", atoi(port));
	cw_testmongo_stop(&f.mongo);
	free(f.config->sources[0].url);
	f.config->sources[0].url = url;

	cw_component_ctx_t ctx = {f.config, "shop", NULL, 0, f.metrics, NULL};
	const cw_source_ops_t *ops = cw_source_ops_for(CW_SOURCE_MONGODB);
	void *source = ops->open(&ctx, NULL);
	assert_non_null(source);
	cw_cancel_t *cancel = cw_cancel_new();
	cw_err_t err = {0};
	assert_int_equal(ops->run(source, cancel, &err), CW_EIO);   /* the first failure */
	fx_pause_ms(5);
	assert_int_equal(ops->run(source, cancel, &err), CW_ETIMEDOUT);
	if (strstr(err.message, "source \"shop\" gave up after failing for") == NULL ||
	    strstr(err.message, "could not reach mongodb") == NULL)
		fail_msg("unexpected error: %s", err.message);
	cw_component_status_t status;
	ops->status(source, &status);
	assert_string_equal(status.state, "failed");
	assert_false(status.healthy);
	/* From now on every run fails at once, without trying again. */
	cw_err_t again = {0};
	assert_int_equal(ops->run(source, cancel, &again), CW_ETIMEDOUT);
	assert_string_equal(again.message, err.message);
	ops->status(source, &status);
	assert_string_equal(status.state, "failed");
	ops->close(source);
	cw_cancel_free(cancel);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unreachable_server_is_an_error_without_the_password),
		cmocka_unit_test(server_lost_while_streaming_stops_the_run),
		cmocka_unit_test(source_gives_up_after_the_configured_time),
	};
	mongoc_init();
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return failed;
}
