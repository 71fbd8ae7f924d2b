/*
 * This file contains the batch-mode benchmark: rows per
 * second of one poll of a PostgreSQL table (docs/batch.md) into the hub.
 * The shared loader (bench/sql/rows_*.sql) writes N rows into
 * public.bench_rows, 10,000 per transaction (so 10,000 rows share each
 * updated_at), with an index on (updated_at, id) as docs/batch.md advises;
 * the poller starts and is timed until its captured-changes counter (moved
 * when a page has committed to the hub with its marker) has grown by N.
 * Then the loader updates every row and the next poll is timed the same
 * way. The hub is a cluster of its own (cw_bench_hub_open). Prints figure
 * lines (benchlib.h) and a summary; asserts nothing.
 *
 *   build/bench.batch                   (or bench/run.sh batch)
 *   CW_BENCH_ROWS   rows (default 1,000,000)
 *   CW_BENCH_PG_URL an existing cluster (default: a throwaway PostgreSQL 15
 *                   cluster is started and stopped)
 *   CW_BENCH_CAPTURE_YAML  extra YAML under capture: (e.g. "batch_size: 5000",
 *                   the rows of one page)
 */
#include "benchlib.h"
#include "core/config.h"
#include "core/mem.h"
#include "hub/hub.h"
#include "testsrv.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIES "entity=\"bench_rows\",op=\"upsert\""

static void report(const char *name, long rows, const cw_bench_run_t *run)
{
	printf("batch %s: one poll read %ld changed rows into the hub in %.2f s = %.0f rows/s; "
	       "CPU %.2f s; peak RSS %.1f MiB\n", name, rows, run->seconds,
	       (double)rows / run->seconds, run->cpu_s, (double)run->peak_rss_kib / 1024.0);
	char workload[32];
	snprintf(workload, sizeof workload, "batch %s", name);
	cw_bench_figure_rows(workload, rows, run, NULL, NULL);
}

/* Loads rows with the poller stopped, then times the poll that reads them. */
static int run_workload(cw_bench_component_t *poller, PGconn *conn, const char *name,
                        long rows)
{
	char sql_file[32];
	snprintf(sql_file, sizeof sql_file, "rows_%s.sql", name);
	cw_bench_component_stop(poller);
	if (cw_bench_load(conn, sql_file, rows) != 0 ||
	    cw_bench_exec(conn, "VACUUM ANALYZE public.bench_rows", "vacuum the table") != 0)
		return -1;
	cw_bench_run_t run;
	if (cw_bench_capture_run(poller, SERIES, (double)rows, "rows polled", 1200.0, &run) != 0)
		return -1;
	report(name, rows, &run);
	return 0;
}

int main(void)
{
	long rows = cw_bench_env_long("CW_BENCH_ROWS", 1000000, 1, 1000000000L);
	const char *capture_yaml = getenv("CW_BENCH_CAPTURE_YAML");
	cw_testsrv_t srv = {0};
	int rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *url = NULL;
	PGconn *conn = cw_bench_pg_source(&srv, &url);
	if (conn == NULL)
		return 1;
	cw_bench_hub_t bench_hub;
	if (cw_bench_hub_open(&bench_hub, url) != 0)
		return 1;
	const char *hub_url = bench_hub.url;
	char *yaml = cw_xasprintf(
		"hub: {url: '%s'}\nsources:\n  - {name: app, type: postgres, url: '%s'}\n"
		"entities:\n  - {name: bench_rows, source: app, table: public.bench_rows, mode: batch, "
		"polling_interval: 100ms, delete_detection: {interval: 0}}\nlog: {level: warn}\n%s%s%s",
		hub_url, url, capture_yaml ? "capture: {" : "", capture_yaml ? capture_yaml : "",
		capture_yaml ? "}\n" : "");
	cw_config_t *config = NULL;
	cw_hub_t *hub = NULL;
	cw_bench_component_t poller = {.ops = cw_source_batch_ops_for(CW_SOURCE_POSTGRES)};

	/* The shared schema makes a publication; a batch table needs none. */
	if (cw_bench_load(conn, "rows_schema.sql", rows) != 0 ||
	    cw_bench_exec(conn, "DROP PUBLICATION cw_bench_pub; "
	                  "CREATE INDEX bench_rows_changed ON public.bench_rows (updated_at, id)",
	                  "index the change column") != 0)
		goto out;
	if ((hub = cw_bench_hub_setup(hub_url, yaml, &config)) == NULL)
		goto out;
	poller.ctx = (cw_component_ctx_t){config, "app", NULL, 0, cw_metrics_new(), NULL};
	if (run_workload(&poller, conn, "insert", rows) != 0 ||
	    run_workload(&poller, conn, "update", rows) != 0) {
		cw_bench_component_stop(&poller);
		goto out;
	}
	cw_bench_component_stop(&poller);
	printf("batch: %ld rows per poll, capture settings: %s\n", rows,
	       capture_yaml ? capture_yaml : "defaults");
	rc = 0;
out:
	if (poller.ctx.metrics != NULL)
		cw_metrics_free(poller.ctx.metrics);
	cw_config_free(config);
	cw_hub_close(hub);
	cw_bench_hub_close(&bench_hub);
	free(yaml);
	PQfinish(conn);
	cw_testpg_stop(&srv);
	return rc;
}
