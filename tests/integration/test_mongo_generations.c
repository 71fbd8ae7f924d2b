/*
 * Integration tests of the MongoDB source's generations: a dropped collection
 * starts a new generation and sweeps at once; a lost position (a checkpoint
 * without a token, as after ChangeStreamHistoryLost) rescans in a new
 * generation whose sweep removes documents deleted during the gap, or stops
 * the source with on_position_lost: fail; an entity added at runtime is
 * scanned alone and goes live without disturbing the others.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/entity_manager.h"
#include "hub/entity_store.h"

#include "mongo_fixture.h"

/*
 * A checkpoint without a resume token, as if stored so; without a checksum,
 * as before checksums existed (an edit that kept the old checksum would fail
 * it, a lost position of another kind: integration.position_checksum.sh).
 */
#define LOSE_TOKEN_SQL "UPDATE cachewarp.metadata SET value = jsonb_set(value, '{token}', 'null'), " \
	"checksum = NULL WHERE key = 'mongo_resume_token:shop:items' RETURNING 1"

static void drop_starts_a_new_generation_and_sweeps(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 100);
	runner_t r;
	fx_run_until_live(&f, &r);
	fx_insert_range(&f, "items", 0, 20);
	fx_wait_converged(&f, &r, "items", "items", 60000);

	bson_error_t error;
	mongoc_collection_t *coll = fx_collection(&f, "items");
	if (!mongoc_collection_drop(coll, &error))
		fail_msg("drop failed: %s", error.message);
	mongoc_collection_destroy(coll);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'sweep' AND "
	               "version = 2", 1, 60000);
	fx_wait_converged(&f, &r, "items", "items", 60000);   /* empty */
	fx_insert_range(&f, "items", 100, 105);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	assert_int_equal(fx_hub_number(&f, "SELECT version FROM cachewarp.entities WHERE name = 'items'"), 2);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'upsert' "
	                                   "AND doc_id LIKE '%\"10_\"%' AND version = 2"), 5);
	runner_stop(&r);
	fx_stop(&f);
}

static void lost_position_rescans_and_sweeps_missed_deletes(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 100);
	runner_t r;
	fx_run_until_live(&f, &r);
	fx_insert_range(&f, "items", 0, 30);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	runner_stop(&r);

	for (int i = 0; i < 10; i++)
		fx_delete_id(&f, "items", i * 2);
	fx_insert_range(&f, "items", 30, 35);
	assert_int_equal(fx_hub_number(&f, LOSE_TOKEN_SQL), 1);

	runner_start(&r, &f);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'sweep' AND "
	               "version = 2", 1, 60000);
	fx_wait_number(&f, &r, FX_ITEMS_LIVE_SQL, 1, 60000);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	/* The deletes of the gap were never seen as events: the sweep removed them. */
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'delete'"), 0);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'upsert' "
	                                   "AND version = 2"), 25);
	assert_int_equal(fx_hub_number(&f, "SELECT (value->>'generation')::int FROM cachewarp.metadata "
	                                   "WHERE key = 'mongo_resume_token:shop:items'"), 2);
	runner_stop(&r);
	fx_stop(&f);
}

/*
 * A checkpoint edited in the hub (its token intact, its generation changed,
 * its checksum kept) fails the checksum: not resumed from, but a rescan that
 * sweeps the deletes of the gap, which resuming would have read as events.
 */
static void checkpoint_failing_its_checksum_rescans(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 100);
	runner_t r;
	fx_run_until_live(&f, &r);
	fx_insert_range(&f, "items", 0, 20);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	runner_stop(&r);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.metadata WHERE key = "
	                                   "'mongo_resume_token:shop:items' AND checksum ~ '^crc32c:'"), 1);

	for (int i = 0; i < 5; i++)
		fx_delete_id(&f, "items", i);
	assert_int_equal(fx_hub_number(&f, "UPDATE cachewarp.metadata SET value = jsonb_set(value, "
	                                   "'{generation}', '7') WHERE key = "
	                                   "'mongo_resume_token:shop:items' RETURNING 1"), 1);
	runner_start(&r, &f);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'sweep' AND "
	               "version = 2", 1, 60000);
	fx_wait_number(&f, &r, FX_ITEMS_LIVE_SQL, 1, 60000);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'delete'"), 0);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'upsert' "
	                                   "AND version = 2"), 15);
	/* The new checkpoint is stored with a checksum that holds. */
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.metadata WHERE key = "
	                                   "'mongo_resume_token:shop:items' AND checksum ~ '^crc32c:' "
	                                   "AND value->>'generation' <> '7'"), 1);
	runner_stop(&r);
	fx_stop(&f);
}

static void lost_position_fails_when_configured(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start_with(&f, "    on_position_lost: fail\n", fx_items_yaml, 100);
	runner_t r;
	fx_run_until_live(&f, &r);
	runner_stop(&r);
	assert_int_equal(fx_hub_number(&f, LOSE_TOKEN_SQL), 1);

	runner_start(&r, &f);
	int64_t deadline = fx_now_ms() + 60000;
	while (!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST)) {
		if (fx_now_ms() > deadline)
			fail_msg("the source did not stop on a lost position");
		fx_pause_ms(20);
	}
	pthread_join(r.thread, NULL);
	assert_int_equal(r.rc, CW_EDB);
	if (strstr(r.err.message, "on_position_lost is fail") == NULL)
		fail_msg("unexpected error: %s", r.err.message);
	cw_component_status_t status;
	r.ops->status(r.source, &status);
	assert_false(status.healthy);
	assert_string_equal(status.last_error, r.err.message);
	assert_int_equal(fx_hub_number(&f, "SELECT version FROM cachewarp.entities WHERE name = 'items'"), 1);
	r.ops->close(r.source);
	cw_cancel_free(r.cancel);
	fx_stop(&f);
}

static void entity_added_at_runtime_is_scanned_alone(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 100);
	fx_insert_range(&f, "items", 0, 500);
	runner_t r;
	fx_run_until_live(&f, &r);

	cw_entity_t added = {0};
	added.name = "items_copy";
	added.source = "shop";
	added.collection = "items";
	cw_column_t column = {"n", CW_COL_INTEGER, "n"};
	added.columns = &column;
	added.ncolumns = 1;
	added.version = 1;
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect(f.pg.url, &err);
	assert_non_null(hub);
	if (cw_entity_manager_add(hub, f.config, &added, NULL, &err) != 0)
		fail_msg("add: %s", err.message);
	cw_hub_close(hub);
	fx_insert_range(&f, "items", 500, 600);   /* live changes while the new entity is scanned */
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.entities WHERE name = 'items_copy' "
	               "AND status = 'live'", 1, 60000);
	fx_wait_converged(&f, &r, "items_copy", "items", 60000);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	/* The first entity was not scanned again. */
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE "
	                                   "entity = 'items' AND op = 'upsert'"), 600);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog_staging"), 0);
	runner_stop(&r);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(drop_starts_a_new_generation_and_sweeps),
		cmocka_unit_test(lost_position_rescans_and_sweeps_missed_deletes),
		cmocka_unit_test(checkpoint_failing_its_checksum_rescans),
		cmocka_unit_test(lost_position_fails_when_configured),
		cmocka_unit_test(entity_added_at_runtime_is_scanned_alone),
	};
	mongoc_init();
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return failed;
}
