/*
 * Benchmark of the MongoDB target through a real hub (not a test: it prints
 * figures and asserts nothing). The hub runs on a throwaway PostgreSQL
 * cluster, the target on the MongoDB test server (tests/support/mongo.sh:
 * mongo-java-server, in memory; every figure is bounded by that server).
 *
 *   1. upserts: the hub holds N new documents of a MongoDB entity without
 *      columns, as the capture writes them (canonical extended JSON text);
 *      the target applies them from position 0;
 *   2. random updates: N changes of random documents appended while the
 *      target is stopped, then drained as a backlog;
 *   3. a backlog of B changes (default N / 2) appended while the target is
 *      stopped, half of them to 1,000 hot documents and half to random
 *      ones, as an outage collects them: its drain time, and how many
 *      writes coalescing saved (hub changes minus document writes);
 *   4. the reference, in the same run, first, on a test server of its own
 *      (started the same way; the target gets a fresh one): a bare libmongoc
 *      program bulk-writes the same documents of 1 and 2 (built directly as
 *      BSON) in the same batches of the apply batch size, one
 *      replaceOne(upsert) per document of a batch (its last version, as the
 *      coalescer keeps it), unordered, with the same write concern.
 *
 * Usage: bench.mongo_target [N [B]]   (default CW_BENCH_MONGO_DOCS or 200,000
 * and CW_BENCH_MONGO_BACKLOG or N / 2). The test server keeps its data in
 * its heap: unless CW_MONGO_HEAP is set, it gets 4g here.
 */
#define _XOPEN_SOURCE 700
#include "apply/target.h"
#include "benchlib.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/config.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/oplog_reader.h"
#include "hub/oplog_writer.h"
#include "testsrv.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPLY_BATCH 1000

/* This run's random sequence (cw_bench_next_random). */
static uint64_t rng_state = CW_BENCH_RANDOM_SEED;

/* The benchmark document of doc at step n, as BSON. */
static void make_doc(uint64_t doc, uint64_t n, bson_t *out)
{
	char id[24], title[32];
	snprintf(id, sizeof id, "k%010llu", (unsigned long long)doc);
	snprintf(title, sizeof title, "title %llu", (unsigned long long)n);
	bson_init(out);
	BSON_APPEND_UTF8(out, "_id", id);
	BSON_APPEND_UTF8(out, "title", title);
	BSON_APPEND_INT64(out, "qty", (int64_t)doc);
	BSON_APPEND_DOUBLE(out, "price", (double)(n % 1000) + 0.25);
	BSON_APPEND_BOOL(out, "active", n % 2 != 0);
	bson_t tags;
	BSON_APPEND_ARRAY_BEGIN(out, "tags", &tags);
	BSON_APPEND_INT32(&tags, "0", (int32_t)(doc % 7));
	BSON_APPEND_UTF8(&tags, "1", "x");
	bson_append_array_end(out, &tags);
}

/* The change the capture writes for it: {"doc": "<canonical extended JSON>"}. */
static void push(cw_change_batch_t *batch, uint64_t doc, uint64_t n, cw_buf_t *scratch)
{
	bson_t bson;
	make_doc(doc, n, &bson);
	cw_buf_t text = CW_BUF_INIT;
	cw_json_t inner;
	cw_json_init(&inner, &text, CW_JSON_NO_NUL);
	cw_json_bson_document(&inner, &bson, CW_JSON_BSON_CANONICAL, NULL);
	cw_buf_reset(scratch);
	cw_json_t w;
	cw_json_init(&w, scratch, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "doc", NULL);
	cw_json_string_len(&w, cw_buf_cstr(&text), text.len, NULL);
	cw_json_object_end(&w, NULL);
	cw_buf_free(&text);
	bson_destroy(&bson);
	char doc_id[24];
	snprintf(doc_id, sizeof doc_id, "k%010llu", (unsigned long long)doc);
	cw_bench_push_upsert(batch, "bench", doc_id, cw_buf_cstr(scratch), 0, 0);
}

static int64_t fill(cw_hub_t *hub, uint64_t first, const uint64_t *docs, uint64_t count)
{
	cw_err_t err = {0};
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	cw_buf_t scratch = CW_BUF_INIT;
	for (uint64_t i = 0; i < count; i++) {
		push(&batch, docs[i], first + i, &scratch);
		if (batch.len == 10000 || i == count - 1) {
			if (cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err) != 0) {
				fprintf(stderr, "append: %s\n", err.message);
				exit(1);
			}
			cw_change_batch_clear(&batch);
		}
	}
	cw_buf_free(&scratch);
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);
	int64_t head = 0;
	cw_oplog_last_id(hub, &head, &err);
	return head;
}

/* ---- the reference: bare libmongoc bulk writes -------------------------------------- */

static double reference(mongoc_collection_t *coll, const uint64_t *docs, uint64_t count,
                        uint64_t step_base)
{
	cw_bench_step_t *steps = cw_xcalloc(APPLY_BATCH + 1, sizeof *steps);
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	bson_t *bulk_opts = BCON_NEW("ordered", BCON_BOOL(false));
	double start = cw_bench_now_s();
	for (uint64_t first = 0; first < count; first += APPLY_BATCH) {
		size_t n = count - first < APPLY_BATCH ? (size_t)(count - first) : APPLY_BATCH;
		size_t kept = cw_bench_last_steps(docs, first, n, step_base, steps);
		mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll,
		                                                                                 bulk_opts);
		for (size_t i = 0; i < kept; i++) {
			bson_t doc;
			make_doc(steps[i].doc, steps[i].k, &doc);
			bson_iter_t it;
			bson_iter_init_find(&it, &doc, "_id");
			bson_t filter = BSON_INITIALIZER;
			bson_append_iter(&filter, "_id", 3, &it);
			mongoc_bulk_operation_replace_one_with_opts(bulk, &filter, &doc, opts, NULL);
			bson_destroy(&filter);
			bson_destroy(&doc);
		}
		bson_error_t error;
		if (!mongoc_bulk_operation_execute(bulk, NULL, &error))
			fprintf(stderr, "reference bulk write: %s\n", error.message);
		mongoc_bulk_operation_destroy(bulk);
	}
	double took = cw_bench_now_s() - start;
	bson_destroy(bulk_opts);
	bson_destroy(opts);
	free(steps);
	return took;
}

/*
 * Appends count changes (docs[i] at step first + i) while the target r is
 * stopped, then lets it drain them: the seconds it took; *writes: the
 * document writes it made for them.
 */
static double drain(cw_bench_component_t *r, cw_metrics_t *metrics, cw_hub_t *hub,
                    uint64_t first, const uint64_t *docs, uint64_t count, double *writes)
{
	static const char *const series[] = {"target=\"bench\",result=\"ok\"",
	                                     "target=\"bench\",result=\"skipped\""};
	double before = 0, after = 0;
	for (size_t i = 0; i < 2; i++)
		before += cw_metrics_value(metrics, "cachewarp_target_document_writes_total", series[i]);
	cw_bench_component_pause(r);
	int64_t head = fill(hub, first, docs, count);
	if (cw_bench_component_resume(r) != 0)
		exit(1);
	double took = cw_bench_component_wait_position(r, head);
	for (size_t i = 0; i < 2; i++)
		after += cw_metrics_value(metrics, "cachewarp_target_document_writes_total", series[i]);
	*writes = after - before;
	return took;
}

int main(int argc, char **argv)
{
	uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10)
	                          : (uint64_t)cw_bench_env_long("CW_BENCH_MONGO_DOCS", 200000, 1000,
	                                                        10000000);
	uint64_t backlog = argc > 2 ? strtoull(argv[2], NULL, 10)
	                            : (uint64_t)cw_bench_env_long("CW_BENCH_MONGO_BACKLOG",
	                                                          (long)(total / 2), 1000, 10000000);
	if (total < 1000 || backlog < 1000) {
		fprintf(stderr, "usage: bench.mongo_target [N [B]] (each at least 1000)\n");
		return 2;
	}
	setenv("CW_MONGO_HEAP", "4g", 0);
	cw_testsrv_t pg = {0}, mongo = {0};
	cw_hub_t *hub = cw_bench_scratch_hub(&pg);
	if (hub == NULL || cw_testmongo_start(&mongo) != 0 ||
	    cw_bench_entity_register(hub, NULL, 0) != 0)
		return 1;

	uint64_t *fresh = cw_xcalloc(total, sizeof *fresh), *docs = cw_xcalloc(total, sizeof *docs);
	uint64_t *outage = cw_xcalloc(backlog, sizeof *outage);
	for (uint64_t i = 0; i < total; i++) {
		fresh[i] = i;
		docs[i] = cw_bench_next_random(&rng_state) % total;
	}
	for (uint64_t i = 0; i < backlog; i++)   /* half to 1,000 hot documents */
		outage[i] = cw_bench_next_random(&rng_state) % (i % 2 == 0 ? 1000 : total);
	mongoc_client_t *client = mongoc_client_new(mongo.url);
	mongoc_write_concern_t *wc = mongoc_write_concern_new();
	mongoc_write_concern_set_w(wc, 1);
	mongoc_client_set_write_concern(client, wc);
	mongoc_collection_t *coll = mongoc_client_get_collection(client, "bench", "reference");
	double ref_insert = reference(coll, fresh, total, 0);
	double ref_update = reference(coll, docs, total, total);
	printf("reference (bare libmongoc, unordered bulk replaceOne upserts in batches of %d): "
	       "upserts %.0f/s, updates %.0f/s\n", APPLY_BATCH, (double)total / ref_insert,
	       (double)total / ref_update);
	mongoc_collection_destroy(coll);
	mongoc_write_concern_destroy(wc);
	mongoc_client_destroy(client);
	/* the test server keeps everything in its heap: the target gets a fresh one */
	cw_testmongo_stop(&mongo);
	if (cw_testmongo_start(&mongo) != 0)
		return 1;

	double start = cw_bench_now_s();
	int64_t inserted = fill(hub, 0, fresh, total);
	printf("hub filled: %llu new documents in %.1f s\n", (unsigned long long)total,
	       cw_bench_now_s() - start);
	fflush(stdout);

	char *yaml = cw_xasprintf("hub:\n  url: %s\ntargets:\n  - name: bench\n    type: mongodb\n"
	                          "    url: \"%s\"\n    database: bench\n    write_concern: \"1\"\n"
	                          "apply: {batch_size: %d, poll_interval: 1s}\n",
	                          pg.url, mongo.url, APPLY_BATCH);
	cw_bench_component_t r;
	cw_config_t *config = cw_bench_target_init(&r, CW_TARGET_MONGODB, yaml);
	if (config == NULL)
		return 1;
	cw_metrics_t *metrics = r.ctx.metrics;
	if (cw_bench_component_start(&r) != 0)
		return 1;
	double took_insert = cw_bench_component_wait_position(&r, inserted);
	printf("upserts, hub to MongoDB target: %llu in %.2f s = %.0f changes/s\n",
	       (unsigned long long)total, took_insert, (double)total / took_insert);
	fflush(stdout);

	/* The updates go in while the target is stopped: it drains them as a backlog. */
	double writes = 0;
	double took_update = drain(&r, metrics, hub, total, docs, total, &writes);
	printf("random updates, drained by the MongoDB target: %llu in %.2f s = %.0f changes/s; "
	       "%.0f document writes (coalescing saved %.1f%%)\n", (unsigned long long)total,
	       took_update, (double)total / took_update, writes, 100.0 * (1.0 - writes / (double)total));
	fflush(stdout);
	double outage_writes = 0;
	double took_outage = drain(&r, metrics, hub, 2 * total, outage, backlog, &outage_writes);
	cw_bench_component_stop(&r);
	printf("a backlog of %llu changes (half to 1,000 hot documents) drained in %.2f s = %.0f "
	       "changes/s; %.0f document writes (coalescing saved %.1f%%)\n",
	       (unsigned long long)backlog, took_outage, (double)backlog / took_outage, outage_writes,
	       100.0 * (1.0 - outage_writes / (double)backlog));
	fflush(stdout);

	cw_bench_figure_target("MongoDB", total, ref_insert, ref_update, took_insert, took_update);
	cw_bench_figure("hub to MongoDB target", "backlog drain", "s", took_outage, NULL);
	cw_bench_figure("hub to MongoDB target", "writes saved by coalescing", "%",
	                100.0 * (1.0 - outage_writes / (double)backlog), NULL);
	free(outage);
	free(docs);
	free(fresh);
	cw_metrics_free(metrics);
	cw_config_free(config);
	cw_hub_close(hub);
	free(yaml);
	cw_testmongo_stop(&mongo);
	cw_testpg_stop(&pg);
	return 0;
}
