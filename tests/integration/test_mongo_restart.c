/*
 * Integration tests of the MongoDB source across restarts: after a clean
 * stop it resumes from the stored resume token and captures no event twice;
 * killed with SIGKILL during the scan it resumes the scan after the last
 * committed _id (same generation, no rescan from zero); killed during
 * streaming it loses nothing. Each ends with the hub's state per document
 * equal to the collection, and with every scanned document and every change
 * event in the hub exactly once (docs/hub.md, "Exactly once").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mongo_fixture.h"

#define UPSERTS_SQL "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'items' AND op = 'upsert'"
/* Scanned rows carry no source position; streamed ones their event's resume token. */
#define SCANNED_SQL UPSERTS_SQL " AND coalesce(source_pos, '') = ''"
#define STREAMED_SQL UPSERTS_SQL " AND coalesce(source_pos, '') <> ''"
#define SCANNED_TWICE_SQL \
	"SELECT count(*) - count(DISTINCT doc_id) FROM cachewarp.oplog WHERE entity = 'items' " \
	"AND op = 'upsert' AND coalesce(source_pos, '') = ''"
/* Changes the hub holds twice: the same change twice would share all of these. */
#define TWICE_SQL \
	"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM cachewarp.oplog " \
	"WHERE op <> 'sweep' GROUP BY entity, doc_id, source_pos, version, op, data " \
	"HAVING count(*) > 1) d"

static void clean_restart_resumes_from_the_token(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 100);
	runner_t r;
	fx_run_until_live(&f, &r);
	fx_insert_range(&f, "items", 0, 50);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	runner_stop(&r);

	/* Changes while the source is stopped are picked up from the stored token. */
	fx_insert_range(&f, "items", 50, 100);
	for (int i = 0; i < 10; i++)
		fx_delete_id(&f, "items", i * 3);
	runner_start(&r, &f);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	/* Nothing captured twice, no new generation, no second scan. */
	assert_int_equal(fx_hub_number(&f, UPSERTS_SQL), 100);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE "
	                                   "entity = 'items' AND op = 'delete'"), 10);
	assert_int_equal(fx_hub_number(&f, "SELECT max(version) FROM cachewarp.oplog"), 1);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'sweep'"), 1);
	runner_stop(&r);
	fx_stop(&f);
}

#define NSCAN 20000
#define SCAN_BATCH 200

static void kill_during_scan_resumes_the_scan(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, SCAN_BATCH);
	fx_insert_range(&f, "items", 0, NSCAN);
	pid_t child = fx_spawn_source(&f);
	fx_wait_number(&f, NULL, "SELECT coalesce((SELECT (value->>'docs')::bigint FROM "
	               "cachewarp.metadata WHERE key = 'mongo_scan:shop:items'), 0)", 1000, 120000);
	/* An event gives the stream a resume token (the test server sends none at open). */
	fx_insert_item(&f, NSCAN, NSCAN);
	fx_wait_number(&f, NULL, "SELECT count(*) FROM cachewarp.metadata WHERE key = "
	               "'mongo_resume_token:shop:items' AND value->'token' ? '_data'", 1, 120000);
	fx_kill(child);
	long long scanned = fx_hub_number(&f, UPSERTS_SQL);
	if (scanned >= NSCAN)
		fail_msg("the scan finished before the kill (%lld upserts)", scanned);
	fx_insert_item(&f, NSCAN + 1, NSCAN + 1);
	fx_delete_id(&f, "items", 5);

	runner_t r;
	runner_start(&r, &f);
	fx_wait_number(&f, &r, FX_ITEMS_LIVE_SQL, 1, 180000);
	fx_wait_converged(&f, &r, "items", "items", 120000);
	/* The scan went on from its last committed _id in the same generation: each document
	 * scanned once (the two inserted after its start too: their _ids come last), and each
	 * change event streamed once (the two inserts; the delete). */
	assert_int_equal(fx_hub_number(&f, "SELECT max(version) FROM cachewarp.oplog"), 1);
	assert_int_equal(fx_hub_number(&f, SCANNED_TWICE_SQL), 0);
	assert_int_equal(fx_hub_number(&f, SCANNED_SQL), NSCAN + 2);
	assert_int_equal(fx_hub_number(&f, STREAMED_SQL), 2);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE "
	                                   "entity = 'items' AND op = 'delete'"), 1);
	assert_int_equal(fx_hub_number(&f, TWICE_SQL), 0);
	runner_stop(&r);
	fx_stop(&f);
}

static void kill_during_streaming_loses_nothing(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 50);
	pid_t child = fx_spawn_source(&f);
	fx_wait_number(&f, NULL, FX_ITEMS_LIVE_SQL, 1, 60000);
	for (int i = 0; i < 400; i++) {
		fx_insert_item(&f, i, i);
		if (i == 200)
			fx_wait_number(&f, NULL, UPSERTS_SQL, 50, 60000);
		if (i == 250)
			fx_kill(child);
	}
	fx_delete_id(&f, "items", 10);
	runner_t r;
	runner_start(&r, &f);
	fx_wait_converged(&f, &r, "items", "items", 120000);
	assert_int_equal(fx_hub_number(&f, "SELECT max(version) FROM cachewarp.oplog"), 1);
	/* The batch being read when the process died was read again from the committed token,
	 * and written once: one upsert per insert. */
	assert_int_equal(fx_hub_number(&f, UPSERTS_SQL), 400);
	assert_int_equal(fx_hub_number(&f, TWICE_SQL), 0);
	runner_stop(&r);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clean_restart_resumes_from_the_token),
		cmocka_unit_test(kill_during_scan_resumes_the_scan),
		cmocka_unit_test(kill_during_streaming_loses_nothing),
	};
	mongoc_init();
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return failed;
}
