/*
 * This file contains what the MongoDB source's integration tests share
 * (test_mongo_*.c include it): a hub cluster and a MongoDB test server per
 * test, a configuration with one mongodb source "shop" watching collections,
 * the source running on a thread (or in a child process that can be killed),
 * and the hub's final state per document as a target would hold it.
 */
#ifndef CW_TEST_MONGO_FIXTURE_H
#define CW_TEST_MONGO_FIXTURE_H

#include "capture/source.h"
#include "control/entity_manager.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/projection.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "testsrv.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The entity most tests use: collection "items" of {_id: int, n: int}. */
static const char fx_items_yaml[] =
	"  - name: items\n    source: shop\n    collection: items\n    columns:\n"
	"      - {name: n, type: integer, path: n}\n";

#define FX_ITEMS_LIVE_SQL \
	"SELECT count(*) FROM cachewarp.entities WHERE name = 'items' AND status = 'live'"

typedef struct mongo_fixture {
	cw_testsrv_t pg;
	cw_testsrv_t mongo;
	cw_config_t *config;
	cw_metrics_t *metrics;
	mongoc_client_t *client;     /* the test's own client, for writing documents */
} mongo_fixture_t;

static inline int64_t fx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void fx_pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * Starts both servers, migrates the hub and stores the entities (YAML list
 * items); source_extra holds more keys of the source ("    key: value\n").
 */
static inline void fx_start_with(mongo_fixture_t *f, const char *source_extra,
                                 const char *entities_yaml, int batch_size)
{
	memset(f, 0, sizeof *f);
	cw_log_setup(getenv("CW_TEST_LOG_INFO") ? CW_LOG_INFO : CW_LOG_WARN, CW_LOG_FORMAT_TEXT, 2);
	if (cw_testpg_start(&f->pg) != 0 || cw_testmongo_start(&f->mongo) != 0)
		fail_msg("could not start the test servers");
	char *yaml = cw_xasprintf(
		"hub:\n  url: %s\n"
		"sources:\n  - name: shop\n    type: mongodb\n    url: %s\n    database: shop\n"
		"    watch: collection\n%s"
		"entities:\n%s"
		"capture:\n  batch_size: %d\n  flush_interval: 20ms\n",
		f->pg.url, f->mongo.url, source_extra, entities_yaml, batch_size);
	cw_err_t err = {0};
	if (cw_config_load_buffer("test.yaml", yaml, strlen(yaml), NULL, &f->config, &err) != 0)
		fail_msg("config: %s\n%s", err.message, yaml);
	free(yaml);
	cw_hub_t *hub = cw_hub_connect(f->pg.url, &err);
	if (hub == NULL || cw_hub_migrate(hub, NULL, &err) != 0 ||
	    cw_entity_manager_sync_config(hub, f->config, &err) != 0)
		fail_msg("hub: %s", err.message);
	cw_hub_close(hub);
	f->metrics = cw_metrics_new();
	f->client = mongoc_client_new(f->mongo.url);
	assert_non_null(f->client);
	mongoc_client_set_error_api(f->client, MONGOC_ERROR_API_VERSION_2);
}

static inline void fx_start(mongo_fixture_t *f, const char *entities_yaml, int batch_size)
{
	fx_start_with(f, "", entities_yaml, batch_size);
}

static inline void fx_stop(mongo_fixture_t *f)
{
	if (f->client != NULL)
		mongoc_client_destroy(f->client);
	cw_metrics_free(f->metrics);
	cw_config_free(f->config);
	cw_testmongo_stop(&f->mongo);
	cw_testpg_stop(&f->pg);
}

static inline mongoc_collection_t *fx_collection(mongo_fixture_t *f, const char *name)
{
	return mongoc_client_get_collection(f->client, "shop", name);
}

static inline void fx_insert(mongo_fixture_t *f, const char *collection, const bson_t *doc)
{
	bson_error_t error;
	mongoc_collection_t *coll = fx_collection(f, collection);
	if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &error))
		fail_msg("insert into %s failed: %s", collection, error.message);
	mongoc_collection_destroy(coll);
}

/* Inserts {_id: id, n: n} into items. */
static inline void fx_insert_item(mongo_fixture_t *f, int id, int n)
{
	bson_t *doc = BCON_NEW("_id", BCON_INT32(id), "n", BCON_INT32(n));
	fx_insert(f, "items", doc);
	bson_destroy(doc);
}

/* Inserts {_id: i, n: i} for i in [from, to), a thousand at a time. */
static inline void fx_insert_range(mongo_fixture_t *f, const char *collection, int from, int to)
{
	mongoc_collection_t *coll = fx_collection(f, collection);
	for (int start = from; start < to; start += 1000) {
		int end = start + 1000 < to ? start + 1000 : to;
		bson_t **docs = cw_xcalloc((size_t)(end - start), sizeof *docs);
		for (int i = start; i < end; i++)
			docs[i - start] = BCON_NEW("_id", BCON_INT32(i), "n", BCON_INT32(i));
		bson_error_t error;
		if (!mongoc_collection_insert_many(coll, (const bson_t **)docs, (size_t)(end - start),
		                                   NULL, NULL, &error))
			fail_msg("insert_many failed: %s", error.message);
		for (int i = start; i < end; i++)
			bson_destroy(docs[i - start]);
		free(docs);
	}
	mongoc_collection_destroy(coll);
}

static inline void fx_delete_id(mongo_fixture_t *f, const char *collection, int id)
{
	bson_error_t error;
	mongoc_collection_t *coll = fx_collection(f, collection);
	bson_t *selector = BCON_NEW("_id", BCON_INT32(id));
	if (!mongoc_collection_delete_one(coll, selector, NULL, NULL, &error))
		fail_msg("delete failed: %s", error.message);
	bson_destroy(selector);
	mongoc_collection_destroy(coll);
}

static inline int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The collection as "doc_id=n" items sorted bytewise, joined by ",". Owned. */
static inline char *fx_collection_state(mongo_fixture_t *f, const char *collection)
{
	mongoc_collection_t *coll = fx_collection(f, collection);
	bson_t filter = BSON_INITIALIZER;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
	const bson_t *doc;
	char **items = NULL;
	size_t n = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		char *doc_id = cw_projection_doc_id_of(doc, NULL);
		assert_non_null(doc_id);
		bson_iter_t iter;
		char value[32] = "";
		if (bson_iter_init_find(&iter, doc, "n") && BSON_ITER_HOLDS_INT32(&iter))
			snprintf(value, sizeof value, "%d", bson_iter_int32(&iter));
		items = cw_xrealloc(items, (n + 1) * sizeof *items);
		items[n++] = cw_xasprintf("%s=%s", doc_id, value);
		free(doc_id);
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error))
		fail_msg("find failed: %s", error.message);
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	if (n > 0)
		qsort(items, n, sizeof *items, compare_strings);
	cw_buf_t out = CW_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			cw_buf_append_char(&out, ',');
		cw_buf_append_str(&out, items[i]);
		free(items[i]);
	}
	free(items);
	return cw_buf_take(&out);
}

/*
 * What a target holds after applying the whole oplog of entity: each
 * document's last upsert or delete, minus rows an later sweep of a newer
 * generation removed; same format as fx_collection_state. Owned.
 */
static inline char *fx_hub_state(mongo_fixture_t *f, const char *entity)
{
	char *sql = cw_xasprintf(
		"WITH last AS (SELECT DISTINCT ON (doc_id) id, op, doc_id, data, version "
		"  FROM cachewarp.oplog WHERE entity = '%s' AND op <> 'sweep' ORDER BY doc_id, id DESC), "
		"sweeps AS MATERIALIZED (SELECT id, version FROM cachewarp.oplog "
		"  WHERE entity = '%s' AND op = 'sweep') "
		"SELECT coalesce(string_agg(doc_id || '=' || coalesce(data::jsonb->>'n', ''), ',' "
		"  ORDER BY (doc_id || '=' || coalesce(data::jsonb->>'n', '')) COLLATE \"C\"), '') FROM last l "
		"WHERE op = 'upsert' AND NOT EXISTS (SELECT 1 FROM sweeps s "
		"  WHERE s.id > l.id AND s.version > l.version)",
		entity, entity);
	char *state = cw_testpg_query(f->pg.url, sql);
	free(sql);
	assert_non_null(state);
	return state;
}

/* A scalar query's result as a number; fails the test when the query fails. */
static inline long long fx_hub_number(mongo_fixture_t *f, const char *sql)
{
	char *text = cw_testpg_query(f->pg.url, sql);
	if (text == NULL)
		fail_msg("query failed: %s", sql);
	long long n = strtoll(text, NULL, 10);
	free(text);
	return n;
}

/* The source running on a thread of the test process. */
typedef struct runner {
	const cw_source_ops_t *ops;
	cw_component_ctx_t ctx;
	void *source;
	cw_cancel_t *cancel;
	pthread_t thread;
	bool running;
	volatile int done;
	int rc;
	cw_err_t err;
} runner_t;

static void *runner_main(void *arg)
{
	runner_t *r = arg;
	r->rc = r->ops->run(r->source, r->cancel, &r->err);
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static inline void runner_start(runner_t *r, mongo_fixture_t *f)
{
	memset(r, 0, sizeof *r);
	r->ops = cw_source_ops_for(CW_SOURCE_MONGODB);
	assert_non_null(r->ops);
	r->ctx = (cw_component_ctx_t){f->config, "shop", NULL, 0, f->metrics, NULL};
	cw_err_t err = {0};
	r->source = r->ops->open(&r->ctx, &err);
	if (r->source == NULL)
		fail_msg("open: %s", err.message);
	r->cancel = cw_cancel_new();
	assert_int_equal(pthread_create(&r->thread, NULL, runner_main, r), 0);
	r->running = true;
}

/* Fails the test when the source stopped with an error. */
static inline void runner_check(runner_t *r)
{
	if (r->running && __atomic_load_n(&r->done, __ATOMIC_SEQ_CST))
		fail_msg("the source stopped: %s (%d)", r->err.message, r->rc);
}

static inline void runner_stop(runner_t *r)
{
	if (!r->running)
		return;
	cw_cancel_fire(r->cancel);
	pthread_join(r->thread, NULL);
	r->running = false;
	if (r->rc != CW_ECANCELED)
		fail_msg("the source stopped with an error: %s (%d)", r->err.message, r->rc);
	cw_component_status_t status;
	r->ops->status(r->source, &status);
	assert_string_equal(status.state, "stopped");
	r->ops->close(r->source);
	cw_cancel_free(r->cancel);
}

/* Runs the source in a child process (to be killed with SIGKILL); returns its pid. */
static inline pid_t fx_spawn_source(mongo_fixture_t *f)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	cw_metrics_t *metrics = cw_metrics_new();
	cw_component_ctx_t ctx = {f->config, "shop", NULL, 0, metrics, NULL};
	const cw_source_ops_t *ops = cw_source_ops_for(CW_SOURCE_MONGODB);
	void *source = ops->open(&ctx, NULL);
	cw_cancel_t *cancel = cw_cancel_new();
	for (;;) {   /* as the job server would: run again after an error */
		cw_err_t err = {0};
		if (ops->run(source, cancel, &err) != CW_ECANCELED)
			fprintf(stderr, "child source: %s\n", err.message);
		fx_pause_ms(100);
	}
}

static inline void fx_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	int status = 0;
	waitpid(pid, &status, 0);
	assert_true(WIFSIGNALED(status));
}

/* Polls until the hub's state of entity equals the collection's, or fails after timeout_ms. */
static inline void fx_wait_converged(mongo_fixture_t *f, runner_t *r, const char *entity,
                              const char *collection, int64_t timeout_ms)
{
	int64_t deadline = fx_now_ms() + timeout_ms;
	char *expected = fx_collection_state(f, collection);
	for (;;) {
		if (r != NULL)
			runner_check(r);
		char *actual = fx_hub_state(f, entity);
		bool same = strcmp(actual, expected) == 0;
		if (same) {
			free(actual);
			break;
		}
		if (fx_now_ms() > deadline)
			fail_msg("the hub did not converge on the collection within %lld ms:\n"
			         "expected %.300s...\nactual   %.300s...",
			         (long long)timeout_ms, expected, actual);
		free(actual);
		fx_pause_ms(100);
	}
	free(expected);
}

/* Polls until the scalar query returns at least min, or fails after timeout_ms. */
static inline void fx_wait_number(mongo_fixture_t *f, runner_t *r, const char *sql, long long min,
                           int64_t timeout_ms)
{
	int64_t deadline = fx_now_ms() + timeout_ms;
	for (;;) {
		if (r != NULL)
			runner_check(r);
		long long n = fx_hub_number(f, sql);
		if (n >= min)
			return;
		if (fx_now_ms() > deadline)
			fail_msg("\"%s\" stayed at %lld (waited for %lld)", sql, n, min);
		fx_pause_ms(50);
	}
}

/* Starts the source on r and waits until the entity items is live. */
static inline void fx_run_until_live(mongo_fixture_t *f, runner_t *r)
{
	runner_start(r, f);
	fx_wait_number(f, r, FX_ITEMS_LIVE_SQL, 1, 60000);
}

#endif
