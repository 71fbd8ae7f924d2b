/*
 * This file contains the MongoDB capture benchmark: cachewarp's MongoDB
 * source → hub, in this process, against the MongoDB test server
 * (mongo-java-server, tests/support/mongo.sh). Every figure is bounded by
 * that server, not by a real mongod: it keeps collection-level change
 * streams only and ignores maxAwaitTimeMS, and it reports updates wrongly,
 * so the workloads insert only. Collection bench.docs holds ~200-byte
 * documents {_id, name, score, payload: {sku, qty, tags: [...], note}},
 * projected onto five columns.
 *
 *   scan    N documents are inserted (insert_many, 1,000 per call) before
 *           the source starts; timed from its start until its captured-
 *           changes counter (incremented when a batch has committed to the
 *           hub; the scan's batches count there too) has grown by N.
 *   stream  with the entity live, a writer thread on its own connection
 *           inserts N more documents the same way; timed from its first
 *           insert until all are captured. The writer's own rate is the
 *           "test server insert" figure: the ceiling the stream figure is
 *           compared with.
 * Then it checks that the hub holds an upsert of every document. Prints
 * figure lines (benchlib.h) and a summary; asserts no timing.
 *
 *   build/bench.mongo_capture           (or bench/run.sh mongo_capture)
 *   CW_BENCH_MONGO_DOCS  documents per phase (default 20,000: on the test
 *                   server each scan page, a sorted find after the last _id,
 *                   gets slower as the collection grows; not CW_BENCH_ROWS,
 *                   which sizes the PostgreSQL workloads)
 *   CW_BENCH_CAPTURE_YAML  extra YAML under capture: (e.g. "batch_size: 5000")
 */
#include "benchlib.h"
#include "control/entity_manager.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "testsrv.h"

#include <libpq-fe.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKLOAD "mongo capture"
#define INSERT_BATCH 1000
#define TIMEOUT_S 600.0
#define SERIES "entity=\"docs\",op=\"upsert\""

static const char entity_yaml[] =
	"entities:\n  - name: docs\n    source: shop\n    collection: docs\n    columns:\n"
	"      - {name: name, type: text, path: name}\n"
	"      - {name: score, type: number, path: score}\n"
	"      - {name: sku, type: text, path: payload.sku}\n"
	"      - {name: qty, type: integer, path: payload.qty}\n"
	"      - {name: tags, type: jsonb, path: payload.tags}\n";

/* The stream phase's writer: its own client, as a mongoc client is not thread-safe. */
typedef struct writer {
	mongoc_client_t *client;   /* owned */
	long from, to;             /* the _ids it inserts */
	double started, finished;  /* cw_bench_now_s() at its first insert and after its last */
	int rc;
	atomic_bool done;
	pthread_t thread;
} writer_t;

/* Document id: ~200 bytes of BSON with a nested object and an array. Owned. */
static bson_t *new_doc(long id)
{
	static const char *const tags[] = {"red", "green", "blue", "large", "small", "sale"};
	char name[32], sku[32];
	snprintf(name, sizeof name, "customer-%08ld", id);
	snprintf(sku, sizeof sku, "SKU-%010ld", id * 7919 % 1000000007L);
	return BCON_NEW("_id", BCON_INT32((int32_t)id), "name", BCON_UTF8(name),
	                "score", BCON_DOUBLE((double)(id % 1000) / 10.0),
	                "payload", "{", "sku", BCON_UTF8(sku), "qty", BCON_INT32((int32_t)(id % 97)),
	                "tags", "[", BCON_UTF8(tags[id % 6]), BCON_UTF8(tags[(id + 2) % 6]),
	                BCON_UTF8(tags[(id + 4) % 6]), "]",
	                "note", BCON_UTF8("left at the back door, ring twice; fragile contents"),
	                "}");
}

/* Inserts documents [from, to) into bench.docs, 1,000 per insert_many; 0 or -1 with a message. */
static int insert_docs(mongoc_client_t *client, long from, long to)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(client, "bench", "docs");
	bson_t *docs[INSERT_BATCH];
	int rc = 0;
	for (long start = from; start < to && rc == 0; start += INSERT_BATCH) {
		size_t n = (size_t)(to - start < INSERT_BATCH ? to - start : INSERT_BATCH);
		for (size_t i = 0; i < n; i++)
			docs[i] = new_doc(start + (long)i);
		bson_error_t error;
		if (!mongoc_collection_insert_many(coll, (const bson_t **)docs, n, NULL, NULL, &error)) {
			fprintf(stderr, "bench: could not insert into \"bench.docs\": %s\n", error.message);
			rc = -1;
		}
		for (size_t i = 0; i < n; i++)
			bson_destroy(docs[i]);
	}
	mongoc_collection_destroy(coll);
	return rc;
}

static void *writer_main(void *arg)
{
	writer_t *w = arg;
	w->started = cw_bench_now_s();
	w->rc = insert_docs(w->client, w->from, w->to);
	w->finished = cw_bench_now_s();
	atomic_store(&w->done, true);
	return NULL;
}

/*
 * Waits until the captured counter reaches target; 0, or -1 with a message
 * after TIMEOUT_S or when writer (optional) has failed.
 */
static int wait_captured(const cw_bench_component_t *src, double target, writer_t *writer)
{
	for (double t0 = cw_bench_now_s(); cw_bench_captured(src, SERIES) < target;) {
		if (writer != NULL && atomic_load(&writer->done) && writer->rc != 0)
			return -1;
		if (cw_bench_now_s() - t0 > TIMEOUT_S) {
			fprintf(stderr, "bench: %.0f of %.0f documents captured after %.0f s\n",
			        cw_bench_captured(src, SERIES), target, TIMEOUT_S);
			return -1;
		}
		nanosleep(&(struct timespec){0, 2000000L}, NULL);
	}
	return 0;
}

/* Scan: documents [0, docs) inserted, then the source started and timed until all are captured. */
static int run_scan(cw_bench_component_t *src, mongoc_client_t *client, PGconn *hub, long docs)
{
	double l0 = cw_bench_now_s();
	if (insert_docs(client, 0, docs) != 0)
		return -1;
	double load_s = cw_bench_now_s() - l0;
	double target = cw_bench_captured(src, SERIES) + (double)docs;
	double t0 = cw_bench_now_s();
	if (cw_bench_component_start(src) != 0 || wait_captured(src, target, NULL) != 0)
		return -1;
	double scan_s = cw_bench_now_s() - t0;
	if (cw_bench_wait_live(hub, "docs", TIMEOUT_S) != 0)
		return -1;
	double live_s = cw_bench_now_s() - t0;
	bson_t *sample = new_doc(docs);
	printf("%s scan: inserted %ld documents of ~%u bytes in %.2f s (no capture running); "
	       "scanned into the hub in %.2f s = %.0f docs/s; entity live after %.2f s\n", WORKLOAD,
	       docs, sample->len, load_s, scan_s, (double)docs / scan_s, live_s);
	bson_destroy(sample);
	cw_bench_figure(WORKLOAD, "scan", "docs/s", (double)docs / scan_s, NULL);
	return 0;
}

/* Stream: a writer inserts documents [docs, 2 docs) while the live source captures them. */
static int run_stream(cw_bench_component_t *src, const char *mongo_url, long docs)
{
	writer_t writer = {.client = mongoc_client_new(mongo_url), .from = docs, .to = 2 * docs};
	if (writer.client == NULL) {
		fprintf(stderr, "bench: bad MongoDB url \"%s\"\n", mongo_url);
		return -1;
	}
	mongoc_client_set_error_api(writer.client, MONGOC_ERROR_API_VERSION_2);
	bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
	bson_error_t error;
	bool connected = mongoc_client_command_simple(writer.client, "admin", ping, NULL, NULL, &error);
	bson_destroy(ping);
	if (!connected) {
		fprintf(stderr, "bench: could not connect the writer: %s\n", error.message);
		mongoc_client_destroy(writer.client);
		return -1;
	}
	atomic_init(&writer.done, false);
	double target = cw_bench_captured(src, SERIES) + (double)docs;
	int rc = -1;
	if (pthread_create(&writer.thread, NULL, writer_main, &writer) != 0) {
		fprintf(stderr, "bench: could not start the writer thread\n");
		goto out;
	}
	rc = wait_captured(src, target, &writer);
	double done = cw_bench_now_s();
	pthread_join(writer.thread, NULL);
	if (rc != 0 || writer.rc != 0) {
		rc = -1;
		goto out;
	}
	double insert_s = writer.finished - writer.started;
	double stream_s = done - writer.started;
	printf("%s stream: the writer inserted %ld documents in %.2f s = %.0f docs/s (the test "
	       "server's ceiling); all captured into the hub %.2f s after the first insert = "
	       "%.0f docs/s, %.2f s after the last\n", WORKLOAD, docs, insert_s,
	       (double)docs / insert_s, stream_s, (double)docs / stream_s, done - writer.finished);
	cw_bench_figure(WORKLOAD, "stream", "docs/s", (double)docs / stream_s,
	                WORKLOAD "/test server insert");
	cw_bench_figure(WORKLOAD, "test server insert", "docs/s", (double)docs / insert_s, NULL);
out:
	mongoc_client_destroy(writer.client);
	return rc;
}

/* Whether the hub holds an upsert of each of the docs documents; 0, or -1 with a message. */
static int check_hub(PGconn *hub, long docs)
{
	char *counts = cw_bench_query_value(
		hub, "SELECT count(DISTINCT doc_id) || ' ' || count(*) FROM cachewarp.oplog "
		     "WHERE entity = 'docs' AND op = 'upsert'");
	if (counts == NULL)
		return -1;
	long distinct = 0, upserts = 0;
	int rc = sscanf(counts, "%ld %ld", &distinct, &upserts) == 2 && distinct == docs ? 0 : -1;
	if (rc != 0)
		fprintf(stderr, "bench: the hub holds upserts of %ld documents, not %ld\n", distinct, docs);
	else
		printf("%s: the hub holds %ld upserts of the %ld documents\n", WORKLOAD, upserts, docs);
	free(counts);
	return rc;
}

int main(void)
{
	long docs = cw_bench_env_long("CW_BENCH_MONGO_DOCS", 20000, 1, 100000000L);
	const char *capture_yaml = getenv("CW_BENCH_CAPTURE_YAML");
	cw_testsrv_t pg = {0}, mongo = {0};
	cw_config_t *config = NULL;
	cw_hub_t *hub = NULL;
	PGconn *hub_conn = NULL;
	mongoc_client_t *client = NULL;
	cw_bench_component_t src = {.ops = cw_source_ops_for(CW_SOURCE_MONGODB)};
	char *yaml = NULL;
	cw_err_t err = {0};
	int rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	cw_log_setup(CW_LOG_WARN, CW_LOG_FORMAT_TEXT, 2);
	mongoc_init();
	if (cw_testpg_start(&pg) != 0 || cw_testmongo_start(&mongo) != 0)
		goto out;
	yaml = cw_xasprintf("hub: {url: '%s'}\nsources:\n  - {name: shop, type: mongodb, url: '%s', "
	                    "database: bench, watch: collection}\n%slog: {level: warn}\n%s%s%s",
	                    pg.url, mongo.url, entity_yaml, capture_yaml ? "capture: {" : "",
	                    capture_yaml ? capture_yaml : "", capture_yaml ? "}\n" : "");
	if (cw_config_load_buffer("bench.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0 ||
	    (hub = cw_hub_connect(pg.url, &err)) == NULL || cw_hub_migrate(hub, NULL, &err) != 0 ||
	    cw_entity_manager_sync_config(hub, config, &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		goto out;
	}
	hub_conn = PQconnectdb(pg.url);
	if (PQstatus(hub_conn) != CONNECTION_OK) {
		fprintf(stderr, "bench: %s", PQerrorMessage(hub_conn));
		goto out;
	}
	client = mongoc_client_new(mongo.url);
	if (client == NULL) {
		fprintf(stderr, "bench: bad MongoDB url \"%s\"\n", mongo.url);
		goto out;
	}
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	src.ctx = (cw_component_ctx_t){config, "shop", NULL, 0, cw_metrics_new(), NULL};
	if (run_scan(&src, client, hub_conn, docs) != 0 || run_stream(&src, mongo.url, docs) != 0)
		goto out;
	cw_bench_component_stop(&src);
	if (check_hub(hub_conn, 2 * docs) != 0)
		goto out;
	long rss = cw_bench_peak_rss_kib(0);
	printf("%s: %ld documents per phase, capture settings: %s; peak RSS %.1f MiB\n", WORKLOAD,
	       docs, capture_yaml ? capture_yaml : "defaults", (double)rss / 1024.0);
	cw_bench_figure(WORKLOAD, "peak RSS", "MiB", (double)rss / 1024.0, NULL);
	rc = 0;
out:
	cw_bench_component_stop(&src);
	if (src.ctx.metrics != NULL)
		cw_metrics_free(src.ctx.metrics);
	if (client != NULL)
		mongoc_client_destroy(client);
	PQfinish(hub_conn);
	cw_hub_close(hub);
	cw_config_free(config);
	free(yaml);
	cw_testmongo_stop(&mongo);
	cw_testpg_stop(&pg);
	return rc;
}
