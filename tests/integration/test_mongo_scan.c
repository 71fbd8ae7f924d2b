/*
 * Integration tests of the MongoDB source's initial scan: 10k documents with
 * inserts, deletes and replacements (delete + insert) running while the scan
 * runs end with the hub's state per document equal to the collection, the
 * generation's sweep written, the entity live; a collection whose _ids mix
 * types is scanned across every type bracket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mongo_fixture.h"

#define NDOCS 10000

static void scan_with_concurrent_writes_converges(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, fx_items_yaml, 250);
	fx_insert_range(&f, "items", 0, NDOCS);
	runner_t r;
	runner_start(&r, &f);
	/* Writes while the scan runs: new documents, deletes, replacements. */
	for (int i = 0; i < 300; i++) {
		fx_insert_item(&f, NDOCS + i, NDOCS + i);
		fx_delete_id(&f, "items", (i * 37) % NDOCS);
		if (i % 3 == 0) {
			int id = NDOCS - 1 - i;
			fx_delete_id(&f, "items", id);
			fx_insert_item(&f, id, -id);
		}
	}
	fx_wait_converged(&f, &r, "items", "items", 180000);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.entities WHERE name = 'items' "
	               "AND status = 'live'", 1, 60000);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE "
	                                   "entity = 'items' AND op = 'sweep' AND version = 1"), 1);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog_staging"), 0);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.quarantine"), 0);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.metadata "
	                                   "WHERE key = 'mongo_scan:shop:items'"), 0);
	assert_true(cw_metrics_value(f.metrics, "cachewarp_snapshot_documents_total",
	                             "entity=\"items\"") >= NDOCS - 300);
	runner_stop(&r);
	fx_stop(&f);
}

static void mixed_id_types_are_all_scanned(void **state)
{
	(void)state;
	mongo_fixture_t f;
	/* A batch of 2 makes the scan resume from an _id of each type in turn. */
	fx_start(&f, fx_items_yaml, 2);
	bson_oid_t oid;
	bson_oid_init_from_string(&oid, "65a1b2c3d4e5f60718293a4b");
	bson_t *docs[] = {
		BCON_NEW("_id", BCON_UTF8("b"), "n", BCON_INT32(1)),
		BCON_NEW("_id", BCON_INT32(5), "n", BCON_INT32(2)),
		BCON_NEW("_id", BCON_OID(&oid), "n", BCON_INT32(3)),
		BCON_NEW("_id", BCON_UTF8("a"), "n", BCON_INT32(4)),
		BCON_NEW("_id", BCON_INT64(3), "n", BCON_INT32(5)),
		BCON_NEW("_id", "{", "x", BCON_INT32(1), "}", "n", BCON_INT32(6)),
		BCON_NEW("_id", BCON_DOUBLE(4.5), "n", BCON_INT32(7)),
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		fx_insert(&f, "items", docs[i]);
		bson_destroy(docs[i]);
	}
	runner_t r;
	runner_start(&r, &f);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.entities WHERE name = 'items' "
	               "AND status = 'live'", 1, 60000);
	fx_wait_converged(&f, &r, "items", "items", 60000);
	assert_int_equal(fx_hub_number(&f, "SELECT count(*) FROM cachewarp.oplog WHERE "
	                                   "entity = 'items' AND op = 'upsert'"), 7);
	runner_stop(&r);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mixed_id_types_are_all_scanned),
		cmocka_unit_test(scan_with_concurrent_writes_converges),
	};
	mongoc_init();
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return failed;
}
