/*
 * Unit tests of the MongoDB source's pure decisions (capture/mongo_position.h):
 * which errors mean a lost position (286, 280, 136, a rejected token), what
 * each recorded change event asks for (real MongoDB shapes and the test
 * server's), how a stream starts from its checkpoint, the checkpoint and scan
 * progress round trips through jsonb-normalized text, and the scan filter
 * that crosses _id type brackets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/mongo_position.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

static bson_t *from_json(const char *json)
{
	bson_error_t error;
	bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
	if (doc == NULL)
		fail_msg("bad test JSON %s: %s", json, error.message);
	return doc;
}

static void assert_bson_json(const bson_t *doc, const char *expected)
{
	char *json = bson_as_canonical_extended_json(doc, NULL);
	if (strcmp(json, expected) != 0)
		fail_msg("got      %s\nexpected %s", json, expected);
	bson_free(json);
}

static void errors_are_classified(void **state)
{
	(void)state;
	static const struct {
		uint32_t domain;
		uint32_t code;
		const char *message;
		cw_mongo_error_kind_t kind;
	} cases[] = {
		{MONGOC_ERROR_SERVER, 286, "Error on remote shard :: caused by :: Resume of change stream "
		 "was not possible, as the resume point may no longer be in the oplog.",
		 CW_MONGO_ERROR_POSITION_LOST},
		{MONGOC_ERROR_QUERY, 286, "ChangeStreamHistoryLost", CW_MONGO_ERROR_POSITION_LOST},
		{MONGOC_ERROR_SERVER, 280, "cannot resume stream; the resume token was not found",
		 CW_MONGO_ERROR_POSITION_LOST},
		{MONGOC_ERROR_SERVER, 136, "CappedPositionLost", CW_MONGO_ERROR_POSITION_LOST},
		{MONGOC_ERROR_SERVER, 9, "Invalid resume token: unexpected type", CW_MONGO_ERROR_POSITION_LOST},
		{MONGOC_ERROR_SERVER, 43, "cursor id 123 not found", CW_MONGO_ERROR_TRANSIENT},
		{MONGOC_ERROR_SERVER, 11600, "interrupted at shutdown", CW_MONGO_ERROR_TRANSIENT},
		{MONGOC_ERROR_SERVER, 13, "not authorized on shop to execute command",
		 CW_MONGO_ERROR_TRANSIENT},
		{MONGOC_ERROR_STREAM, 286, "connection reset", CW_MONGO_ERROR_TRANSIENT},
		{MONGOC_ERROR_SERVER_SELECTION, 13053, "No suitable servers found",
		 CW_MONGO_ERROR_TRANSIENT},
		{MONGOC_ERROR_SERVER, 286, NULL, CW_MONGO_ERROR_POSITION_LOST},
		{MONGOC_ERROR_SERVER, 2, NULL, CW_MONGO_ERROR_TRANSIENT},
		{MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
		 "Authentication failed.", CW_MONGO_ERROR_AUTH},
		{MONGOC_ERROR_SERVER, 18, "Authentication failed.", CW_MONGO_ERROR_AUTH},
		{MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_TOO_BIG, "too big", CW_MONGO_ERROR_TRANSIENT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (cw_mongo_error_classify(cases[i].domain, cases[i].code, cases[i].message) !=
		    cases[i].kind)
			fail_msg("case %zu (%u, %u, %s) misclassified", i, cases[i].domain, cases[i].code,
			         cases[i].message ? cases[i].message : "NULL");
}

/* Recorded events: real MongoDB 6.0 shapes, and the test server's update. */
static const struct {
	const char *json;
	cw_mongo_action_t action;
	const char *collection;     /* NULL when the event has none */
	const char *doc_id;         /* canonical JSON of documentKey._id, NULL when absent */
	int64_t time_us;
} events[] = {
	{"{\"_id\":{\"_data\":\"8265A1\"},\"operationType\":\"insert\",\"clusterTime\":{\"$timestamp\":"
	 "{\"t\":1700000000,\"i\":1}},\"ns\":{\"db\":\"shop\",\"coll\":\"products\"},\"documentKey\":"
	 "{\"_id\":{\"$oid\":\"65a1b2c3d4e5f60718293a4b\"}},\"fullDocument\":{\"_id\":{\"$oid\":"
	 "\"65a1b2c3d4e5f60718293a4b\"},\"title\":\"lamp\"}}",
	 CW_MONGO_UPSERT, "products", "{ \"$oid\" : \"65a1b2c3d4e5f60718293a4b\" }", 1700000000000000},
	{"{\"_id\":{\"_data\":\"8265A2\"},\"operationType\":\"update\",\"wallTime\":{\"$date\":"
	 "\"2023-11-14T22:13:20.500Z\"},\"clusterTime\":{\"$timestamp\":{\"t\":1700000000,\"i\":2}},"
	 "\"ns\":{\"db\":\"shop\",\"coll\":\"products\"},\"documentKey\":{\"_id\":\"sku-1\"},"
	 "\"updateDescription\":{\"updatedFields\":{\"price\":3},\"removedFields\":[]},"
	 "\"fullDocument\":{\"_id\":\"sku-1\",\"price\":3}}",
	 CW_MONGO_UPSERT, "products", "\"sku-1\"", 1700000000500000},
	/* A wallTime no microsecond clock can hold is ignored: clusterTime gives the time. */
	{"{\"_id\":{\"_data\":\"8265A6\"},\"operationType\":\"insert\",\"wallTime\":{\"$date\":"
	 "{\"$numberLong\":\"7235418798671527966\"}},\"clusterTime\":{\"$timestamp\":"
	 "{\"t\":1700000000,\"i\":3}},\"ns\":{\"db\":\"shop\",\"coll\":\"products\"},"
	 "\"documentKey\":{\"_id\":7},\"fullDocument\":{\"_id\":7}}",
	 CW_MONGO_UPSERT, "products", "{ \"$numberInt\" : \"7\" }", 1700000000000000},
	/* updateLookup found nothing: deleted since; the later delete covers it. */
	{"{\"_id\":{\"_data\":\"8265A3\"},\"operationType\":\"update\",\"ns\":{\"db\":\"shop\","
	 "\"coll\":\"products\"},\"documentKey\":{\"_id\":5},\"updateDescription\":{\"updatedFields\":"
	 "{\"a\":1}},\"fullDocument\":null}",
	 CW_MONGO_SKIP_GONE, "products", "{ \"$numberInt\" : \"5\" }", 0},
	{"{\"_id\":{\"_data\":\"8265A4\"},\"operationType\":\"replace\",\"ns\":{\"db\":\"shop\","
	 "\"coll\":\"products\"},\"documentKey\":{\"_id\":5},\"fullDocument\":{\"_id\":5,\"b\":2}}",
	 CW_MONGO_UPSERT, "products", "{ \"$numberInt\" : \"5\" }", 0},
	{"{\"_id\":{\"_data\":\"8265A5\"},\"operationType\":\"delete\",\"ns\":{\"db\":\"shop\","
	 "\"coll\":\"products\"},\"documentKey\":{\"_id\":{\"a\":1,\"b\":\"x\"}}}",
	 CW_MONGO_DELETE, "products", "{ \"a\" : { \"$numberInt\" : \"1\" }, \"b\" : \"x\" }", 0},
	/* The test server's update: the operators in documentKey, no _id anywhere. */
	{"{\"_id\":{\"_data\":\"01\"},\"operationType\":\"update\",\"documentKey\":{\"$set\":{\"a\":2}},"
	 "\"fullDocument\":{\"a\":2}}",
	 CW_MONGO_QUARANTINE, NULL, NULL, 0},
	{"{\"_id\":{\"_data\":\"02\"},\"operationType\":\"delete\",\"fullDocument\":null}",
	 CW_MONGO_QUARANTINE, NULL, NULL, 0},
	{"{\"_id\":{\"_data\":\"03\"},\"operationType\":\"insert\",\"documentKey\":{\"_id\":1}}",
	 CW_MONGO_QUARANTINE, NULL, "{ \"$numberInt\" : \"1\" }", 0},
	{"{\"_id\":{\"_data\":\"8265A6\"},\"operationType\":\"drop\",\"ns\":{\"db\":\"shop\","
	 "\"coll\":\"products\"}}", CW_MONGO_NEW_GENERATION, "products", NULL, 0},
	{"{\"_id\":{\"_data\":\"8265A7\"},\"operationType\":\"rename\",\"ns\":{\"db\":\"shop\","
	 "\"coll\":\"products\"},\"to\":{\"db\":\"shop\",\"coll\":\"old_products\"}}",
	 CW_MONGO_NEW_GENERATION, "products", NULL, 0},
	{"{\"_id\":{\"_data\":\"8265A8\"},\"operationType\":\"dropDatabase\",\"ns\":{\"db\":\"shop\"}}",
	 CW_MONGO_NEW_GENERATION, NULL, NULL, 0},
	{"{\"_id\":{\"_data\":\"8265A9\"},\"operationType\":\"invalidate\"}",
	 CW_MONGO_INVALIDATE, NULL, NULL, 0},
	{"{\"_id\":{\"_data\":\"8265AA\"},\"operationType\":\"createIndexes\",\"ns\":{\"db\":\"shop\","
	 "\"coll\":\"products\"}}", CW_MONGO_SKIP, "products", NULL, 0},
	{"{\"_id\":{\"_data\":\"8265AB\"},\"operationType\":\"somethingNew\"}", CW_MONGO_SKIP, NULL,
	 NULL, 0},
};

static void events_map_to_actions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
		bson_t *doc = from_json(events[i].json);
		cw_mongo_event_t event;
		cw_err_t err = {0};
		assert_int_equal(cw_mongo_event_read(doc, &event, &err), 0);
		if (cw_mongo_event_action(&event) != events[i].action)
			fail_msg("event %zu: action %d, expected %d", i, cw_mongo_event_action(&event),
			         events[i].action);
		assert_true(event.has_token);
		if (events[i].collection == NULL)
			assert_null(event.collection);
		else
			assert_string_equal(event.collection, events[i].collection);
		assert_int_equal(event.has_doc_id, events[i].doc_id != NULL);
		if (events[i].doc_id != NULL) {
			bson_t wrapped = BSON_INITIALIZER;
			bson_append_iter(&wrapped, "_id", 3, &event.doc_id);
			bson_iter_t iter;
			assert_true(bson_iter_init_find(&iter, &wrapped, "_id"));
			char *json = bson_as_canonical_extended_json(&wrapped, NULL);
			char expected[256];
			snprintf(expected, sizeof expected, "{ \"_id\" : %s }", events[i].doc_id);
			assert_string_equal(json, expected);
			bson_free(json);
			bson_destroy(&wrapped);
		}
		if (events[i].action == CW_MONGO_UPSERT) {
			assert_true(event.has_full_document);
			bson_iter_t iter;
			assert_true(bson_iter_init_find(&iter, &event.full_document, "_id"));
		}
		assert_int_equal(event.time_us, events[i].time_us);
		bson_destroy(doc);
	}
}

static void malformed_events_are_protocol_errors(void **state)
{
	(void)state;
	const char *bad[] = {
		"{\"_id\":{\"_data\":\"01\"},\"operationType\":5}",
		"{\"_id\":\"not a document\",\"operationType\":\"insert\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		bson_t *doc = from_json(bad[i]);
		cw_mongo_event_t event;
		cw_err_t err = {0};
		assert_int_equal(cw_mongo_event_read(doc, &event, &err), CW_EPROTO);
		assert_true(strstr(err.message, "change event") != NULL);
		bson_destroy(doc);
	}
}

static cw_mongo_end_plan_t plan_of(const char *json, bool swept_since_open)
{
	bson_t *doc = from_json(json);
	cw_mongo_event_t event;
	assert_int_equal(cw_mongo_event_read(doc, &event, NULL), 0);
	cw_mongo_end_plan_t plan = cw_mongo_end_plan_for(&event, swept_since_open);
	bson_destroy(doc);
	return plan;
}

static void drops_and_invalidates_plan_generations(void **state)
{
	(void)state;
	const char *drop = "{\"_id\":{\"_data\":\"A6\"},\"operationType\":\"drop\","
	                   "\"ns\":{\"db\":\"shop\",\"coll\":\"products\"}}";
	const char *drop_database = "{\"_id\":{\"_data\":\"A8\"},\"operationType\":\"dropDatabase\"}";
	const char *invalidate = "{\"_id\":{\"_data\":\"A9\"},\"operationType\":\"invalidate\"}";
	/* A drop: new generation of that collection's entities, the stream goes on. */
	cw_mongo_end_plan_t plan = plan_of(drop, false);
	assert_true(plan.sweep);
	assert_false(plan.whole_stream);
	assert_false(plan.start_after);
	assert_false(plan.reopen);
	/* A second drop after a recreate is a second generation. */
	assert_true(plan_of(drop, true).sweep);
	plan = plan_of(drop_database, false);
	assert_true(plan.sweep);
	assert_true(plan.whole_stream);
	assert_false(plan.reopen);
	/* The invalidate after a drop: no second generation; reopen with startAfter. */
	plan = plan_of(invalidate, true);
	assert_false(plan.sweep);
	assert_true(plan.start_after);
	assert_true(plan.reopen);
	/* An invalidate with no drop seen: the whole stream gets a new generation. */
	plan = plan_of(invalidate, false);
	assert_true(plan.sweep);
	assert_true(plan.whole_stream);
	assert_true(plan.start_after);
	assert_true(plan.reopen);
}

static void start_follows_the_checkpoint(void **state)
{
	(void)state;
	assert_int_equal(cw_mongo_start_decide(NULL), CW_MONGO_START_FIRST);
	cw_mongo_checkpoint_t checkpoint = {NULL, false, 3, true};
	assert_int_equal(cw_mongo_start_decide(&checkpoint), CW_MONGO_START_LOST);
	checkpoint.token = from_json("{\"_data\":\"8265\"}");
	assert_int_equal(cw_mongo_start_decide(&checkpoint), CW_MONGO_START_RESUME);
	cw_mongo_checkpoint_clear(&checkpoint);
	cw_mongo_checkpoint_clear(NULL);
}

/*
 * A restart inside the scan or its handoff to the stream, as the stored
 * checkpoint and scan progress decide it (docs/hub.md, "Exactly once"),
 * including what the test server cannot show: a resume token at open.
 */
static void restart_resumes_the_scan_and_its_handoff(void **state)
{
	(void)state;
	/* A server that sends a token at open (postBatchResumeToken), killed mid-scan with no
	 * event yet: the stream resumes from the token stored before the scan, the scan after
	 * its last committed _id, in the same generation. */
	cw_mongo_checkpoint_t opened = {from_json("{\"_data\":\"8265\"}"), false, 1, true};
	assert_int_equal(cw_mongo_start_decide(&opened), CW_MONGO_START_RESUME);
	cw_mongo_scan_progress_t mid = {1, from_json("{\"_id\":42}"), 400, false};
	assert_int_equal(cw_mongo_scan_start_decide(&mid, 1), CW_MONGO_SCAN_AFTER_LAST);
	/* Killed between the last page (committed with the sweep) and the promotion: only the
	 * promotion is left; the staged changes move once, the stream goes on from its token. */
	cw_mongo_scan_progress_t done = {1, from_json("{\"_id\":99}"), 1000, true};
	assert_int_equal(cw_mongo_scan_start_decide(&done, 1), CW_MONGO_SCAN_PROMOTE_ONLY);
	cw_mongo_scan_progress_t empty_done = {1, NULL, 0, true};
	assert_int_equal(cw_mongo_scan_start_decide(&empty_done, 1), CW_MONGO_SCAN_PROMOTE_ONLY);
	/* Killed before the first page committed: nothing of the scan is in the hub. */
	cw_mongo_scan_progress_t none = {1, NULL, 0, false};
	assert_int_equal(cw_mongo_scan_start_decide(&none, 1), CW_MONGO_SCAN_FROM_FIRST);
	assert_int_equal(cw_mongo_scan_start_decide(NULL, 1), CW_MONGO_SCAN_FROM_FIRST);
	/* No token at open and no event before the kill: the stream's position is unknown, so a
	 * new generation, whose scan does not go on from the old generation's progress. */
	cw_mongo_checkpoint_t no_token = {NULL, false, 1, true};
	assert_int_equal(cw_mongo_start_decide(&no_token), CW_MONGO_START_LOST);
	assert_int_equal(cw_mongo_scan_start_decide(&mid, 2), CW_MONGO_SCAN_FROM_FIRST);
	assert_int_equal(cw_mongo_scan_start_decide(&done, 2), CW_MONGO_SCAN_FROM_FIRST);
	cw_mongo_checkpoint_clear(&opened);
	cw_mongo_scan_progress_clear(&mid);
	cw_mongo_scan_progress_clear(&done);
}

static void checkpoint_round_trips(void **state)
{
	(void)state;
	cw_mongo_checkpoint_t checkpoint = {from_json("{\"_data\":\"8265A9\"}"), true, 4, false};
	char *json = cw_mongo_checkpoint_json(&checkpoint);
	assert_string_equal(json, "{\"token\":{ \"_data\" : \"8265A9\" },\"start_after\":true,"
	                    "\"generation\":4,\"status\":\"live\"}");
	cw_mongo_checkpoint_t back;
	cw_err_t err = {0};
	assert_int_equal(cw_mongo_checkpoint_parse(json, &back, &err), 0);
	assert_true(bson_equal(back.token, checkpoint.token));
	assert_true(back.start_after);
	assert_int_equal(back.generation, 4);
	assert_false(back.scanning);
	cw_mongo_checkpoint_clear(&back);
	free(json);
	cw_mongo_checkpoint_clear(&checkpoint);

	/* As jsonb hands it back: keys reordered, spaces added, no token yet. */
	assert_int_equal(cw_mongo_checkpoint_parse("{\"token\": null, \"status\": \"scanning\", "
	                                           "\"generation\": 1, \"start_after\": false}",
	                                           &back, &err), 0);
	assert_null(back.token);
	assert_true(back.scanning);
	assert_int_equal(back.generation, 1);
	assert_int_equal(cw_mongo_checkpoint_parse("{\"token\": null}", &back, &err), CW_EPROTO);
	assert_string_equal(err.message, "resume token checkpoint has no generation");
	assert_int_equal(cw_mongo_checkpoint_parse("[1]", &back, &err), CW_EPROTO);
	assert_int_equal(cw_mongo_checkpoint_parse("{\"token\": 5, \"generation\": 1}", &back, &err),
	                 CW_EPROTO);
	assert_null(back.token);
}

static void scan_progress_keeps_the_id_type(void **state)
{
	(void)state;
	cw_mongo_scan_progress_t progress = {2, from_json("{\"_id\":{\"$numberLong\":\"8\"}}"), 10,
	                                     false};
	char *json = cw_mongo_scan_progress_json(&progress);
	cw_mongo_scan_progress_t back;
	cw_err_t err = {0};
	assert_int_equal(cw_mongo_scan_progress_parse(json, &back, &err), 0);
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, back.last, "_id"));
	assert_int_equal(bson_iter_type(&iter), BSON_TYPE_INT64);
	assert_int_equal(bson_iter_int64(&iter), 8);
	assert_int_equal(back.version, 2);
	assert_int_equal(back.docs, 10);
	assert_false(back.done);
	cw_mongo_scan_progress_clear(&back);
	free(json);
	cw_mongo_scan_progress_clear(&progress);

	assert_int_equal(cw_mongo_scan_progress_parse("{\"version\": 1, \"last\": {\"_id\": {\"$oid\": "
	                 "\"65a1b2c3d4e5f60718293a4b\"}}, \"docs\": 3, \"done\": true}", &back, &err), 0);
	assert_true(bson_iter_init_find(&iter, back.last, "_id"));
	assert_int_equal(bson_iter_type(&iter), BSON_TYPE_OID);
	assert_true(back.done);
	cw_mongo_scan_progress_clear(&back);
	assert_int_equal(cw_mongo_scan_progress_parse("{\"version\": 1, \"last\": {\"x\": 1}, "
	                                              "\"docs\": 3}", &back, &err), CW_EPROTO);
	assert_int_equal(cw_mongo_scan_progress_parse("{\"last\": null}", &back, &err), CW_EPROTO);
}

static void scan_filter_crosses_type_brackets(void **state)
{
	(void)state;
	static const struct {
		const char *last;
		const char *filter;
	} cases[] = {
		{"{\"_id\":5}", "{ \"$or\" : [ { \"_id\" : { \"$gt\" : { \"$numberInt\" : \"5\" } } }, "
		 "{ \"_id\" : { \"$type\" : [ \"string\", \"object\", \"binData\", \"objectId\", \"bool\", "
		 "\"date\", \"timestamp\", \"regex\", \"maxKey\" ] } } ] }"},
		{"{\"_id\":{\"$oid\":\"65a1b2c3d4e5f60718293a4b\"}}",
		 "{ \"$or\" : [ { \"_id\" : { \"$gt\" : { \"$oid\" : \"65a1b2c3d4e5f60718293a4b\" } } }, "
		 "{ \"_id\" : { \"$type\" : [ \"bool\", \"date\", \"timestamp\", \"regex\", \"maxKey\" ] } } ] }"},
		{"{\"_id\":{\"$maxKey\":1}}", "{ \"_id\" : { \"$gt\" : { \"$maxKey\" : 1 } } }"},
		{"{\"_id\":{\"$code\":\"f()\"}}", "{ \"_id\" : { \"$gt\" : { \"$code\" : \"f()\" } } }"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bson_t *last = from_json(cases[i].last);
		bson_iter_t iter;
		assert_true(bson_iter_init_find(&iter, last, "_id"));
		bson_t filter = BSON_INITIALIZER;
		cw_mongo_scan_filter(&iter, &filter);
		assert_bson_json(&filter, cases[i].filter);
		bson_destroy(&filter);
		bson_destroy(last);
	}
	bson_t filter = BSON_INITIALIZER;
	cw_mongo_scan_filter(NULL, &filter);
	assert_int_equal(bson_count_keys(&filter), 0);
	bson_destroy(&filter);
}

static void database_pipeline_keeps_end_events(void **state)
{
	(void)state;
	const char *names[] = {"products", "orders"};
	bson_t pipeline = BSON_INITIALIZER;
	cw_mongo_database_pipeline(names, 2, &pipeline);
	assert_bson_json(&pipeline, "{ \"0\" : { \"$match\" : { \"$or\" : [ { \"ns.coll\" : { \"$in\" : "
	                 "[ \"products\", \"orders\" ] } }, { \"operationType\" : { \"$in\" : "
	                 "[ \"dropDatabase\", \"invalidate\" ] } } ] } } }");
	bson_destroy(&pipeline);
}

static void token_summary_prefers_data(void **state)
{
	(void)state;
	char out[8];
	bson_t *token = from_json("{\"_data\":\"8265A1B2C3D4\"}");
	cw_mongo_token_summary(token, out, sizeof out);
	assert_string_equal(out, "8265A1B");
	bson_destroy(token);
	char wide[64];
	token = from_json("{\"ts\":1}");
	cw_mongo_token_summary(token, wide, sizeof wide);
	assert_string_equal(wide, "{ \"ts\" : { \"$numberInt\" : \"1\" } }");
	bson_destroy(token);
	cw_mongo_token_summary(NULL, wide, sizeof wide);
	assert_string_equal(wide, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(errors_are_classified),
		cmocka_unit_test(events_map_to_actions),
		cmocka_unit_test(malformed_events_are_protocol_errors),
		cmocka_unit_test(drops_and_invalidates_plan_generations),
		cmocka_unit_test(start_follows_the_checkpoint),
		cmocka_unit_test(checkpoint_round_trips),
		cmocka_unit_test(restart_resumes_the_scan_and_its_handoff),
		cmocka_unit_test(scan_progress_keeps_the_id_type),
		cmocka_unit_test(scan_filter_crosses_type_brackets),
		cmocka_unit_test(database_pipeline_keeps_end_events),
		cmocka_unit_test(token_summary_prefers_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
