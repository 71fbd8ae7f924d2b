/*
 * Integration tests of the MongoDB source streaming a live collection into
 * the hub: inserts and deletes become upserts and deletes with canonical
 * doc_ids for every _id type, documents are projected onto two entities of
 * one collection (nested paths, arrays, missing fields, unicode), and a value
 * that cannot be coerced is quarantined while the rest keeps flowing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mongo_fixture.h"

static const char entities_yaml[] =
	"  - name: products\n    source: shop\n    collection: products\n    columns:\n"
	"      - {name: title, type: text, path: title}\n"
	"      - {name: price, type: number, path: pricing.amount}\n"
	"      - {name: tags, type: jsonb, path: tags}\n"
	"      - {name: first_tag, type: text, path: tags.0}\n"
	"  - name: raw_products\n    source: shop\n    collection: products\n";

#define LIVE_SQL(e) "SELECT count(*) FROM cachewarp.entities WHERE name = '" e "' AND status = 'live'"

static char *query(mongo_fixture_t *f, const char *sql)
{
	char *text = cw_testpg_query(f->pg.url, sql);
	if (text == NULL)
		fail_msg("query failed: %s", sql);
	return text;
}

static void assert_query(mongo_fixture_t *f, const char *sql, const char *expected)
{
	char *text = query(f, sql);
	if (strcmp(text, expected) != 0)
		fail_msg("%s\n  gave     \"%s\"\n  expected \"%s\"", sql, text, expected);
	free(text);
}

static void wait_metric(mongo_fixture_t *f, const char *labels, double expected)
{
	int64_t deadline = fx_now_ms() + 10000;
	double value;
	while ((value = cw_metrics_value(f->metrics, "cachewarp_changes_captured_total", labels)) !=
	       expected) {
		if (fx_now_ms() > deadline)
			fail_msg("captured{%s} is %g, expected %g", labels, value, expected);
		fx_pause_ms(10);
	}
}

static void streams_every_id_type_and_shape(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, entities_yaml, 100);
	runner_t r;
	runner_start(&r, &f);
	fx_wait_number(&f, &r, LIVE_SQL("products"), 1, 60000);
	fx_wait_number(&f, &r, LIVE_SQL("raw_products"), 1, 60000);

	bson_oid_t oid;
	bson_oid_init_from_string(&oid, "65a1b2c3d4e5f60718293a4b");
	bson_t *docs[] = {
		BCON_NEW("_id", BCON_OID(&oid), "title", BCON_UTF8("lamp"),
		         "pricing", "{", "amount", BCON_DOUBLE(12.5), "}",
		         "tags", "[", BCON_UTF8("home"), BCON_UTF8("light"), "]"),
		BCON_NEW("_id", BCON_UTF8("sku-1"), "title", BCON_UTF8("Ünïcødé ✓ 日本"),
		         "pricing", "{", "amount", BCON_INT32(7), "}"),
		BCON_NEW("_id", BCON_INT32(7), "title", BCON_UTF8("int id")),
		BCON_NEW("_id", BCON_INT64(8), "title", BCON_UTF8("long id"), "tags", "[", "]"),
		BCON_NEW("_id", "{", "a", BCON_INT32(1), "b", BCON_UTF8("x"), "}",
		         "title", BCON_UTF8("composite id"), "pricing", "{", "amount", BCON_NULL, "}"),
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
		fx_insert(&f, "products", docs[i]);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' "
	               "AND op = 'upsert'", 5, 60000);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'raw_products' "
	               "AND op = 'upsert'", 5, 60000);

	assert_query(&f, "SELECT string_agg(doc_id || '|' || coalesce(data::jsonb->>'title', '-') "
	             "|| '|' || coalesce(data::jsonb->>'price', '-') || '|' || "
	             "coalesce(data::jsonb->>'tags', '-') || '|' || "
	             "coalesce(data::jsonb->>'first_tag', '-'), E'\\n' ORDER BY id) FROM cachewarp.oplog "
	             "WHERE entity = 'products' AND op = 'upsert'",
	             "65a1b2c3d4e5f60718293a4b|lamp|12.5|[\"home\", \"light\"]|home\n"
	             "sku-1|Ünïcødé ✓ 日本|7|-|-\n"
	             "{\"$numberInt\":\"7\"}|int id|-|-|-\n"
	             "{\"$numberLong\":\"8\"}|long id|-|[]|-\n"
	             "{\"a\":{\"$numberInt\":\"1\"},\"b\":\"x\"}|composite id|-|-|-");
	/* Missing paths are null for a full document, not absent. */
	assert_query(&f, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' AND "
	             "op = 'upsert' AND data::jsonb ?& array['title','price','tags','first_tag']", "5");
	/* a whole document is the text of its canonical extended JSON (every type, field order) */
	assert_query(&f, "SELECT (data::jsonb->>'doc')::jsonb->>'title' FROM cachewarp.oplog WHERE "
	             "entity = 'raw_products' AND doc_id = 'sku-1'", "Ünïcødé ✓ 日本");
	assert_query(&f, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' AND "
	             "version = 1 AND source_pos IS NOT NULL AND source_pos <> ''", "5");

	bson_t *selector = BCON_NEW("_id", BCON_UTF8("sku-1"));
	bson_error_t error;
	mongoc_collection_t *coll = fx_collection(&f, "products");
	assert_true(mongoc_collection_delete_one(coll, selector, NULL, NULL, &error));
	mongoc_collection_destroy(coll);
	bson_destroy(selector);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE op = 'delete' AND "
	               "doc_id = 'sku-1'", 2, 60000);
	assert_query(&f, "SELECT string_agg(entity, ',' ORDER BY entity) FROM cachewarp.oplog "
	             "WHERE op = 'delete'", "products,raw_products");

	/* The stream's checkpoint holds a resume token, committed with the rows. */
	assert_query(&f, "SELECT value->'token' ? '_data' FROM cachewarp.metadata "
	             "WHERE key = 'mongo_resume_token:shop:products'", "t");
	/* Counted by the writer thread right after its commit. */
	wait_metric(&f, "entity=\"products\",op=\"delete\"", 1.0);
	assert_true(cw_metrics_value(f.metrics, "cachewarp_changes_captured_total",
	                             "entity=\"products\",op=\"upsert\"") == 5.0);
	cw_component_status_t status;
	r.ops->status(r.source, &status);
	assert_string_equal(status.state, "streaming");
	assert_true(status.healthy);
	assert_true(status.position[0] != '\0');
	assert_true(status.lag_seconds >= 0);

	runner_stop(&r);
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
		bson_destroy(docs[i]);
	fx_stop(&f);
}

static void bad_value_is_quarantined_and_the_stream_flows_on(void **state)
{
	(void)state;
	mongo_fixture_t f;
	fx_start(&f, entities_yaml, 100);
	runner_t r;
	runner_start(&r, &f);
	fx_wait_number(&f, &r, LIVE_SQL("products"), 1, 60000);

	bson_t *bad = BCON_NEW("_id", BCON_UTF8("bad"), "title", BCON_UTF8("broken"),
	                       "pricing", "{", "amount", BCON_UTF8("twelve"), "}");
	bson_t *good = BCON_NEW("_id", BCON_UTF8("good"), "title", BCON_UTF8("fine"),
	                        "pricing", "{", "amount", BCON_INT32(3), "}");
	fx_insert(&f, "products", bad);
	fx_insert(&f, "products", good);
	fx_wait_number(&f, &r, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' "
	               "AND doc_id = 'good'", 1, 60000);
	assert_query(&f, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' "
	             "AND doc_id = 'bad'", "0");
	/* The other entity of the collection has no number column: it takes the document. */
	assert_query(&f, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'raw_products' "
	             "AND doc_id = 'bad'", "1");
	char *reason = query(&f, "SELECT entity || '|' || doc_id || '|' || reason || '|' || "
	                     "(raw LIKE '%twelve%') || '|' || (source_pos <> '') "
	                     "FROM cachewarp.quarantine");
	if (strncmp(reason, "products|bad|", 13) != 0 || strstr(reason, "price") == NULL ||
	    strstr(reason, "|true|true") == NULL)
		fail_msg("unexpected quarantine record: %s", reason);
	free(reason);
	assert_true(cw_metrics_value(f.metrics, "cachewarp_quarantined_total",
	                             "entity=\"products\"") == 1.0);
	runner_stop(&r);
	bson_destroy(bad);
	bson_destroy(good);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(streams_every_id_type_and_shape),
		cmocka_unit_test(bad_value_is_quarantined_and_the_stream_flows_on),
	};
	mongoc_init();
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return failed;
}
