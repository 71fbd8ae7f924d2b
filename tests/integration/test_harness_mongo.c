/*
 * This file contains the smoke test of the MongoDB test server harness: the
 * server started by cw_testmongo_start answers libmongoc, a collection change
 * stream reports an insert with its document, and cw_testmongo_stop leaves
 * no server and no directory behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mongoc/mongoc.h>

#include "testsrv.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool dir_exists(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0)
		return true;
	assert_int_equal(errno, ENOENT);
	return false;
}

static const char *utf8_at(const bson_t *doc, const char *dotted)
{
	bson_iter_t iter;
	if (!bson_iter_init(&iter, doc) || !bson_iter_find_descendant(&iter, dotted, &iter) ||
	    !BSON_ITER_HOLDS_UTF8(&iter))
		fail_msg("no string at \"%s\" in %s", dotted, bson_as_relaxed_extended_json(doc, NULL));
	return bson_iter_utf8(&iter, NULL);
}

static void ping(mongoc_client_t *client)
{
	bson_error_t error;
	bson_t reply;
	bson_t *command = BCON_NEW("ping", BCON_INT32(1));
	bool ok = mongoc_client_command_simple(client, "admin", command, NULL, &reply, &error);
	if (!ok)
		fail_msg("ping failed: %s", error.message);
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, &reply, "ok"));
	assert_true(bson_iter_as_double(&iter) == 1.0);
	bson_destroy(&reply);
	bson_destroy(command);
}

/*
 * The next change of stream, polling until deadline_ms: the server ignores
 * maxAwaitTimeMS, so an empty getMore returns at once. Owned by the stream.
 */
static const bson_t *next_change(mongoc_change_stream_t *stream, int64_t deadline_ms)
{
	const bson_t *change = NULL;
	const bson_t *error_doc = NULL;
	bson_error_t error;
	while (!mongoc_change_stream_next(stream, &change)) {
		if (mongoc_change_stream_error_document(stream, &error, &error_doc))
			fail_msg("change stream failed: %s", error.message);
		if (now_ms() > deadline_ms)
			fail_msg("no change within the deadline");
		pause_ms(20);
	}
	return change;
}

static void server_answers_and_streams_an_insert(void **state)
{
	(void)state;
	cw_testsrv_t srv;
	bson_error_t error;
	assert_int_equal(cw_testmongo_start(&srv), 0);
	assert_non_null(srv.url);
	assert_memory_equal(srv.url, "mongodb://127.0.0.1:", 20);
	assert_int_equal(cw_testsrv_listening(srv.url), 1);
	char dir[sizeof srv.dir];
	memcpy(dir, srv.dir, sizeof dir);
	char *url = strdup(srv.url);

	mongoc_uri_t *uri = mongoc_uri_new_with_error(srv.url, &error);
	if (uri == NULL)
		fail_msg("bad url \"%s\": %s", srv.url, error.message);
	mongoc_client_t *client = mongoc_client_new_from_uri(uri);
	assert_non_null(client);
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	ping(client);

	mongoc_collection_t *coll = mongoc_client_get_collection(client, "cw", "products");
	bson_t *pipeline = bson_new();
	mongoc_change_stream_t *stream = mongoc_collection_watch(coll, pipeline, NULL);
	if (mongoc_change_stream_error_document(stream, &error, NULL))
		fail_msg("could not open a change stream: %s", error.message);

	bson_t *doc = BCON_NEW("_id", BCON_UTF8("sku-1"), "name", BCON_UTF8("lamp"),
			       "price", BCON_INT32(12));
	if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &error))
		fail_msg("insert failed: %s", error.message);

	const bson_t *change = next_change(stream, now_ms() + 15000);
	assert_string_equal(utf8_at(change, "operationType"), "insert");
	assert_string_equal(utf8_at(change, "documentKey._id"), "sku-1");
	assert_string_equal(utf8_at(change, "fullDocument.name"), "lamp");
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, change, "_id"));   /* the resume token */

	bson_destroy(doc);
	bson_destroy(pipeline);
	mongoc_change_stream_destroy(stream);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(uri);

	cw_testmongo_stop(&srv);
	assert_null(srv.url);
	assert_false(dir_exists(dir));
	assert_int_equal(cw_testsrv_listening(url), 0);
	cw_testmongo_stop(&srv);   /* stopping twice is harmless */
	free(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(server_answers_and_streams_an_insert),
	};
	mongoc_init();
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return failed;
}
