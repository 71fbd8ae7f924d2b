/*
 * Benchmark of the PostgreSQL tables target through a real hub (not a test:
 * it prints figures and asserts nothing). The hub and the target run on two
 * throwaway clusters (tests/support/pg.sh), as they would in production.
 *
 *   1. upserts: the hub holds N new documents of a MongoDB-style entity
 *      without columns (schema evolution on: the table and its columns are
 *      made from the data); the target applies them from position 0;
 *   2. updates: N updates of random documents, applied the same way;
 *   3. the reference, in the same run, on the same target cluster: a bare
 *      libpq program COPYs the same rows (as the target would have turned
 *      them into text) into a temporary table (one per session, emptied at
 *      each commit, as the target keeps it) and runs one
 *      INSERT ... ON CONFLICT DO UPDATE per write_batch_size rows, in
 *      transactions of the apply batch size, into a table of the same columns;
 *   4. an evolution step: a document with a new field is appended, and the
 *      time until the column exists in the target is taken.
 *
 * Next to each rate, the CPU seconds per 1M changes the phase cost the
 * target's cluster, the hub's cluster and this process (the target's
 * threads, or the reference's client): on a machine shared with other work
 * these move much less than the rates do.
 *
 * Usage: bench.pg_target [N]   (default CW_BENCH_ROWS or 1,000,000)
 */
#define _XOPEN_SOURCE 700
#include "apply/target.h"
#include "benchlib.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/oplog_reader.h"
#include "hub/oplog_writer.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define APPLY_BATCH 1000
#define WRITE_BATCH 500

/* This run's random sequence (cw_bench_next_random). */
static uint64_t rng_state = CW_BENCH_RANDOM_SEED;

/* The benchmark row of document doc at step n, as a MongoDB entity's data. */
static void row_data(uint64_t doc, uint64_t n, char *data, size_t size)
{
	snprintf(data, size, "{\"doc\": {\"_id\": \"k%010llu\", \"title\": \"title %llu\", "
	         "\"qty\": %llu, \"price\": %llu.25, \"active\": %s, \"tags\": [%llu, \"x\"]}}",
	         (unsigned long long)doc, (unsigned long long)n, (unsigned long long)doc,
	         (unsigned long long)n % 1000, n % 2 ? "true" : "false", (unsigned long long)doc % 7);
}

static void push(cw_change_batch_t *batch, uint64_t doc, uint64_t n)
{
	char doc_id[24], data[256];
	snprintf(doc_id, sizeof doc_id, "k%010llu", (unsigned long long)doc);
	row_data(doc, n, data, sizeof data);
	cw_bench_push_upsert(batch, "bench", doc_id, data, 0, 0);
}

static int64_t fill(cw_hub_t *hub, uint64_t first, uint64_t count, uint64_t docs, bool random)
{
	cw_err_t err = {0};
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (uint64_t n = first; n < first + count; n++) {
		push(&batch, random ? cw_bench_next_random(&rng_state) % docs : n, n);
		if (batch.len == 10000 || n == first + count - 1) {
			if (cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err) != 0) {
				fprintf(stderr, "append: %s\n", err.message);
				exit(1);
			}
			cw_change_batch_clear(&batch);
		}
	}
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);
	int64_t head = 0;
	cw_oplog_last_id(hub, &head, &err);
	return head;
}

/* CPU seconds so far of the two clusters and of this process. */
typedef struct cpu_mark {
	double target, hub, self;
} cpu_mark_t;

static cpu_mark_t cpu_mark(const char *tgtdir, const char *hubdir)
{
	char path[512];
	cpu_mark_t m;
	snprintf(path, sizeof path, "%s/data", tgtdir);
	m.target = cw_bench_cluster_cpu_s(path);
	snprintf(path, sizeof path, "%s/data", hubdir);
	m.hub = cw_bench_cluster_cpu_s(path);
	m.self = cw_bench_cpu_s(0);
	return m;
}

/* Prints the CPU a phase of count changes cost, per 1M changes, as figures of workload/phase. */
static void cpu_report(const char *workload, const char *phase, const char *reference,
                       cpu_mark_t from, cpu_mark_t to, uint64_t count, bool hub)
{
	double per = 1e6 / (double)count;
	char name[128], ref[160];
	printf("%s, %s: CPU seconds per 1M changes: target cluster %.2f, hub cluster %.2f, "
	       "this process %.2f\n", workload, phase, (to.target - from.target) * per,
	       hub ? (to.hub - from.hub) * per : 0.0, (to.self - from.self) * per);
	snprintf(name, sizeof name, "%s, CPU of the target cluster", phase);
	snprintf(ref, sizeof ref, "%s/%s", reference != NULL ? reference : "", name);
	cw_bench_figure(workload, name, "CPU-s/1M", (to.target - from.target) * per,
	                reference != NULL ? ref : NULL);
	if (hub) {
		snprintf(name, sizeof name, "%s, CPU of the hub cluster", phase);
		cw_bench_figure(workload, name, "CPU-s/1M", (to.hub - from.hub) * per, NULL);
	}
	snprintf(name, sizeof name, "%s, CPU of this process", phase);
	cw_bench_figure(workload, name, "CPU-s/1M", (to.self - from.self) * per, NULL);
}

/* ---- the reference: COPY + INSERT ... ON CONFLICT, nothing else ---------------------- */

static void exec_or_die(PGconn *conn, const char *sql)
{
	if (cw_bench_exec(conn, sql, sql) != 0)
		exit(1);
}

/*
 * One apply batch of steps [first, first + n) of the given docs, in one
 * transaction: like the target, one write per document (its last step),
 * since one INSERT ... ON CONFLICT cannot touch a row twice.
 */
static void reference_batch(PGconn *conn, const uint64_t *all_docs, uint64_t first, size_t n,
                            int64_t oplog_base, cw_buf_t *copy)
{
	cw_bench_step_t *steps = cw_xcalloc(n + 1, sizeof *steps);
	n = cw_bench_last_steps(all_docs, first, n, 0, steps);
	exec_or_die(conn, "BEGIN");
	exec_or_die(conn, "CREATE TEMP TABLE IF NOT EXISTS _ref_rows (op text, doc_id text, mask text, "
	                  "version bigint, oplog_id bigint, extra text, v0 text, v1 text, v2 text, "
	                  "v3 text, v4 text) ON COMMIT DELETE ROWS");
	for (size_t at = 0; at < n; at += WRITE_BATCH) {
		size_t m = n - at < WRITE_BATCH ? n - at : WRITE_BATCH;
		cw_buf_reset(copy);
		for (size_t i = 0; i < m; i++) {
			uint64_t k = steps[at + i].k, doc = steps[at + i].doc;
			cw_buf_appendf(copy, "u\tk%010llu\t111111\t1\t%lld\t\\N\ttitle %llu\t%llu\t%llu.25\t%s\t"
			               "[%llu,\"x\"]\n", (unsigned long long)doc,
			               (long long)(oplog_base + (int64_t)k), (unsigned long long)k,
			               (unsigned long long)doc, (unsigned long long)k % 1000,
			               k % 2 ? "true" : "false", (unsigned long long)doc % 7);
		}
		PGresult *res = PQexec(conn, "COPY pg_temp._ref_rows FROM STDIN");
		PQclear(res);
		PQputCopyData(conn, copy->data, (int)copy->len);
		PQputCopyEnd(conn, NULL);
		while ((res = PQgetResult(conn)) != NULL) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				fprintf(stderr, "reference copy: %s", PQerrorMessage(conn));
			PQclear(res);
		}
		exec_or_die(conn,
			"INSERT INTO ref AS t (id, title, qty, price, active, tags, _version, _oplog_id, "
			"_synced_at) SELECT r.doc_id, CAST(r.v0 AS text), CAST(r.v1 AS bigint), "
			"CAST(r.v2 AS double precision), CAST(r.v3 AS boolean), CAST(r.v4 AS jsonb), "
			"r.version, r.oplog_id, now() FROM pg_temp._ref_rows r "
			"WHERE r.op IN ('u', 'r') AND r.mask = '111111' ON CONFLICT (id) DO UPDATE SET "
			"title = EXCLUDED.title, qty = EXCLUDED.qty, price = EXCLUDED.price, "
			"active = EXCLUDED.active, tags = EXCLUDED.tags, _version = EXCLUDED._version, "
			"_oplog_id = EXCLUDED._oplog_id, _synced_at = EXCLUDED._synced_at "
			"WHERE t._oplog_id < EXCLUDED._oplog_id");
		exec_or_die(conn, "DELETE FROM pg_temp._ref_rows");
	}
	exec_or_die(conn, "COMMIT");
	free(steps);
}

static double reference(PGconn *conn, const uint64_t *docs, uint64_t count, int64_t oplog_base)
{
	cw_buf_t copy = CW_BUF_INIT;
	double start = cw_bench_now_s();
	for (uint64_t first = 0; first < count; first += APPLY_BATCH)
		reference_batch(conn, docs, first, count - first < APPLY_BATCH ? count - first
		                                                                : APPLY_BATCH,
		                oplog_base, &copy);
	cw_buf_free(&copy);
	return cw_bench_now_s() - start;
}

int main(int argc, char **argv)
{
	uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10)
	                          : (uint64_t)cw_bench_env_long("CW_BENCH_ROWS", 1000000, 1000, 100000000);
	cw_testsrv_t hub_srv = {0}, tgt_srv = {0};
	cw_hub_t *hub = cw_bench_scratch_hub(&hub_srv);
	if (hub == NULL || cw_testpg_start(&tgt_srv) != 0 ||
	    cw_bench_entity_register(hub, NULL, 0) != 0)
		return 1;
	const char *hub_url = hub_srv.url, *tgt_url = tgt_srv.url;
	const char *hubdir = hub_srv.dir, *tgtdir = tgt_srv.dir;
	cw_err_t err = {0};

	double start = cw_bench_now_s();
	int64_t inserted = fill(hub, 0, total, total, false);
	printf("hub filled: %llu new documents in %.1f s\n", (unsigned long long)total,
	       cw_bench_now_s() - start);
	fflush(stdout);

	char *yaml = cw_xasprintf("hub:\n  url: %s\ntargets:\n  - name: bench\n    type: postgres\n"
	                          "    url: %s\n    write_batch_size: %d\n"
	                          "apply: {batch_size: %d, poll_interval: 1s}\n",
	                          hub_url, tgt_url, WRITE_BATCH, APPLY_BATCH);
	cw_bench_component_t r;
	cw_config_t *config = cw_bench_target_init(&r, CW_TARGET_POSTGRES, yaml);
	if (config == NULL)
		return 1;
	cw_metrics_t *metrics = r.ctx.metrics;
	cpu_mark_t cpu0 = cpu_mark(tgtdir, hubdir);
	if (cw_bench_component_start(&r) != 0)
		return 1;
	double took_insert = cw_bench_component_wait_position(&r, inserted);
	cpu_mark_t cpu1 = cpu_mark(tgtdir, hubdir);
	printf("upserts, hub to PostgreSQL target: %llu in %.2f s = %.0f changes/s\n",
	       (unsigned long long)total, took_insert, (double)total / took_insert);
	fflush(stdout);

	/* The updates go in while the target waits: it applies them as a backlog. */
	cw_bench_component_pause(&r);
	uint64_t *docs = cw_xcalloc(total, sizeof *docs);
	uint64_t saved = rng_state;
	for (uint64_t i = 0; i < total; i++)
		docs[i] = cw_bench_next_random(&rng_state) % total;
	rng_state = saved;
	int64_t updated = fill(hub, total, total, total, true);
	printf("hub filled: %llu random updates\n", (unsigned long long)total);
	fflush(stdout);
	cpu_mark_t cpu2 = cpu_mark(tgtdir, hubdir);
	if (cw_bench_component_resume(&r) != 0)
		return 1;
	double took_update = cw_bench_component_wait_position(&r, updated);
	cpu_mark_t cpu3 = cpu_mark(tgtdir, hubdir);
	printf("random updates, hub to PostgreSQL target: %llu in %.2f s = %.0f changes/s\n",
	       (unsigned long long)total, took_update, (double)total / took_update);
	fflush(stdout);

	/* An evolution step: the first document with a new field, until its column exists. */
	PGconn *tgt = PQconnectdb(tgt_url);
	{
		cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
		cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
		cw_bench_push_upsert(&batch, "bench", "k_new",
		                     "{\"doc\": {\"_id\": \"k_new\", \"brand_new\": 1}}", 0, 0);
		double t0 = cw_bench_now_s();
		cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err);
		for (;;) {
			char *v = cw_bench_query_value(tgt, "SELECT count(*) FROM pg_attribute WHERE attrelid "
			                                    "= 'public.bench'::regclass AND attname = 'brand_new'");
			bool there = v != NULL && strcmp(v, "1") == 0;
			free(v);
			if (there)
				break;
			usleep(1000);
		}
		double step = cw_bench_now_s() - t0;
		printf("evolution step (a new field appended to the hub until its column exists): %.1f ms\n",
		       step * 1000);
		cw_bench_figure("PostgreSQL target evolution step", "new field to column", "ms",
		                step * 1000, NULL);
		cw_change_batch_free(&batch);
		cw_oplog_writer_free(writer);
	}
	cw_bench_component_stop(&r);

	/* The reference on the same target cluster: a table of the same columns. */
	exec_or_die(tgt, "CREATE TABLE ref (id text PRIMARY KEY, title text, qty bigint, "
	                 "price double precision, active boolean, tags jsonb, _version bigint NOT NULL, "
	                 "_oplog_id bigint NOT NULL, _synced_at timestamptz NOT NULL DEFAULT now())");
	uint64_t *fresh = cw_xcalloc(total, sizeof *fresh);
	for (uint64_t i = 0; i < total; i++)
		fresh[i] = i;
	cpu_mark_t ref0 = cpu_mark(tgtdir, hubdir);
	double ref_insert = reference(tgt, fresh, total, 1);
	cpu_mark_t ref1 = cpu_mark(tgtdir, hubdir);
	double ref_update = reference(tgt, docs, total, (int64_t)total + 1);
	cpu_mark_t ref2 = cpu_mark(tgtdir, hubdir);
	printf("reference (COPY + INSERT ... ON CONFLICT, batches of %d in transactions of %d): "
	       "upserts %.0f/s, updates %.0f/s\n", WRITE_BATCH, APPLY_BATCH,
	       (double)total / ref_insert, (double)total / ref_update);
	cw_bench_figure_target("PostgreSQL", total, ref_insert, ref_update, took_insert, took_update);
	cpu_report("PostgreSQL target reference", "upserts", NULL, ref0, ref1, total, false);
	cpu_report("PostgreSQL target reference", "random updates", NULL, ref1, ref2, total, false);
	cpu_report("hub to PostgreSQL target", "upserts", "PostgreSQL target reference", cpu0, cpu1,
	           total, true);
	cpu_report("hub to PostgreSQL target", "random updates", "PostgreSQL target reference", cpu2,
	           cpu3, total, true);
	PQfinish(tgt);
	free(docs);
	free(fresh);
	cw_metrics_free(metrics);
	cw_config_free(config);
	cw_hub_close(hub);
	free(yaml);
	cw_testpg_stop(&tgt_srv);
	cw_testpg_stop(&hub_srv);
	return 0;
}
