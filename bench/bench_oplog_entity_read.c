/*
 * Benchmark: the apply loop's read of a subset of entities (`cachewarp run
 * --entity NAME`). A fresh hub holds 1M changes of two entities interleaved:
 * "bulk" (99 of every 100) and "rare" (every 100th). Every page of 1,000 of
 * the oplog is read for {rare}, {bulk} and {rare, bulk}, alternately with
 * cw_oplog_fetch (one range scan of the (entity, id) index per entity, merged)
 * and with the query it replaced (`entity = ANY($3) ORDER BY id`), then all
 * entities as the reference; CW_BENCH_ROUNDS times (1). Prints rows/s and
 * the hub backend's CPU seconds (less dependent on other load than wall time);
 * asserts nothing. Starts its own
 * throwaway PostgreSQL 15 cluster.
 */
#include "benchlib.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/mem.h"
#include "hub/hub.h"
#include "hub/oplog_reader.h"
#include "testsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKLOAD "oplog read of a subset"
#define ROWS 1000000
#define PAGE 1000

/* The page query before: a filter the (entity, id) index cannot give the order of. */
#define ANY_QUERY "SELECT id, op, entity, doc_id, " \
	"(extract(epoch FROM created_at) * 1000000)::bigint, data, version, source_pos " \
	"FROM cachewarp.oplog WHERE id > $1::int8 AND entity = ANY($3::text[]) " \
	"ORDER BY id LIMIT $2::int8"

/* Rows read through every page with the query before; -1 on error. */
static long read_any(cw_hub_t *hub, const char *const *entities, size_t nentities)
{
	cw_buf_t names = CW_BUF_INIT;
	cw_hub_text_array(&names, entities, nentities);
	char after[24] = "0", limit[24];
	snprintf(limit, sizeof limit, "%d", PAGE);
	long rows = 0;
	for (int n = PAGE; n == PAGE; ) {
		const char *params[] = {after, limit, cw_buf_cstr(&names)};
		PGresult *res = cw_hub_exec(hub, ANY_QUERY, 3, params, "read", NULL);
		if (res == NULL) {
			rows = -1;
			break;
		}
		n = PQntuples(res);
		rows += n;
		if (n > 0)
			snprintf(after, sizeof after, "%s", PQgetvalue(res, n - 1, 0));
		PQclear(res);
	}
	cw_buf_free(&names);
	return rows;
}

/* Rows read through every page with cw_oplog_fetch; -1 on error. */
static long read_fetch(cw_hub_t *hub, const char *const *entities, size_t nentities)
{
	int64_t after = 0;
	long rows = 0;
	for (size_t n = PAGE; n == PAGE; ) {
		cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
		cw_err_t err = {0};
		if (cw_oplog_fetch(hub, entities, nentities, after, PAGE, &page, &err) != 0) {
			fprintf(stderr, "bench: %s\n", err.message);
			return -1;
		}
		n = page.len;
		rows += (long)n;
		if (n > 0)
			after = page.items[n - 1].oplog_id;
		cw_change_batch_free(&page);
	}
	return rows;
}

typedef struct subset {
	const char *name;
	const char *entities[2];
	size_t nentities;
} subset_t;

int main(void)
{
	cw_testsrv_t pg = {0};
	cw_hub_t *hub = cw_bench_scratch_hub(&pg);
	if (hub == NULL)
		return 1;
	int rc = 1;
	cw_err_t err = {0};
	char *fill = cw_xasprintf("INSERT INTO cachewarp.oplog (op, entity, doc_id, data, version, "
		"source_pos) SELECT 'upsert', CASE WHEN g %% 100 = 0 THEN 'rare' ELSE 'bulk' END, "
		"g::text, '{\"name\":\"customer ' || g || '\",\"balance\":' || g %% 1000 || "
		"',\"note\":\"lorem ipsum dolor sit amet\"}', 1, '0/' || g "
		"FROM generate_series(1, %d) AS g", ROWS);
	int filled = cw_hub_command(hub, fill, 0, NULL, "fill the oplog", &err);
	free(fill);
	if (filled != 0 || cw_hub_command(hub, "ANALYZE cachewarp.oplog", 0, NULL, "analyze",
	                                  &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		goto out;
	}
	subset_t subsets[] = {{"rare (1%)", {"rare", NULL}, 1}, {"bulk (99%)", {"bulk", NULL}, 1},
	                      {"rare + bulk", {"rare", "bulk"}, 2}};
	long rounds = cw_bench_env_long("CW_BENCH_ROUNDS", 1, 1, 20);
	pid_t backend = PQbackendPID(cw_hub_pgconn(hub));
	for (long round = 0; round < rounds; round++) {
		for (size_t i = 0; i < sizeof subsets / sizeof subsets[0]; i++) {
			const subset_t *s = &subsets[i];
			double c0 = cw_bench_cpu_s(backend), t0 = cw_bench_now_s();
			long any_rows = read_any(hub, s->entities, s->nentities);
			double c1 = cw_bench_cpu_s(backend), t1 = cw_bench_now_s();
			long rows = read_fetch(hub, s->entities, s->nentities);
			double c2 = cw_bench_cpu_s(backend), t2 = cw_bench_now_s();
			if (any_rows < 0 || rows < 0 || any_rows != rows) {
				fprintf(stderr, "bench: %s: %ld rows before, %ld now\n", s->name, any_rows,
				        rows);
				goto out;
			}
			char figure[96], reference[160];
			snprintf(figure, sizeof figure, "%s rows/s", s->name);
			snprintf(reference, sizeof reference, WORKLOAD "/%s rows/s (entity = ANY)",
			         s->name);
			printf("%s: %ld rows; entity = ANY %.0f rows/s (hub backend CPU %.2f s), "
			       "per-entity range scans %.0f rows/s (%.2f s)\n", s->name, rows,
			       rows / (t1 - t0), c1 - c0, rows / (t2 - t1), c2 - c1);
			cw_bench_figure(WORKLOAD, figure, "rows/s", rows / (t2 - t1), reference);
			snprintf(figure, sizeof figure, "%s rows/s (entity = ANY)", s->name);
			cw_bench_figure(WORKLOAD, figure, "rows/s", rows / (t1 - t0), NULL);
		}
		double t0 = cw_bench_now_s();
		long rows = read_fetch(hub, NULL, 0);
		double t1 = cw_bench_now_s();
		printf("all entities: %ld rows, %.0f rows/s\n", rows, rows / (t1 - t0));
		cw_bench_figure(WORKLOAD, "all entities rows/s", "rows/s", rows / (t1 - t0), NULL);
	}
	rc = 0;
out:
	cw_hub_close(hub);
	cw_testpg_stop(&pg);
	return rc;
}
