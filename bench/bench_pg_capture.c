/*
 * This file contains the capture benchmark: cachewarp's
 * PostgreSQL source → hub on the rows the pgoutput reference streams
 * (bench_pgoutput_reference.c), so that the two are comparable in one
 * `make bench`. For each workload the source is stopped, the shared loader
 * (bench/sql/rows_*.sql) writes N rows into public.bench_rows (10,000 per
 * transaction), the source's cluster checkpoints (the loader's dirty pages
 * are not the capture's work; the hub's are), and the source is started
 * again: timed from its start until
 * its captured-changes counter (incremented when a batch has committed to
 * the hub) has grown by N. The hub is a cluster of its own
 * (cw_bench_hub_open; CW_BENCH_HUB=same puts it in the source's cluster).
 * Each workload also says how many bytes of WAL the hub wrote per captured
 * row (its pg_current_wal_lsn() before and after the catch-up), and the CPU
 * the catch-up cost each cluster it started (the source's walsender, the
 * hub's COPY backend and WAL writer, ...) and all of them with cachewarp.
 * Prints figure lines (benchlib.h) and a summary; asserts nothing.
 *
 *   build/bench.pg_capture              (or bench/run.sh pg_capture)
 *   CW_BENCH_ROWS   rows per workload (default 1,000,000)
 *   CW_BENCH_PG_URL an existing cluster with wal_level=logical (default: a
 *                   throwaway PostgreSQL 15 cluster is started and stopped)
 *   CW_BENCH_CAPTURE_YAML  extra YAML under capture: (e.g. "batch_size: 5000")
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
#include <unistd.h>

#define SERIES "entity=\"bench_rows\",op=\"upsert\""

/* The hub's current WAL position in bytes, or -1. */
static double hub_wal_bytes(PGconn *hub_conn)
{
	char *text = cw_bench_query_value(hub_conn, "SELECT pg_current_wal_lsn() - '0/0'");
	double bytes = text != NULL ? strtod(text, NULL) : -1.0;
	free(text);
	return bytes;
}

/* The clusters whose CPU a catch-up is charged with ("" when not started here). */
typedef struct clusters {
	char source[600];   /* data directories */
	char hub[600];
} clusters_t;

/* Prints the CPU a cluster spent per 1M rows between two readings, when both were taken. */
static void cluster_figure(const char *workload, const char *name, double from, double to,
                           long rows)
{
	if (from >= 0.0 && to >= 0.0)
		cw_bench_figure(workload, name, "s", (to - from) * 1e6 / (double)rows, NULL);
}

/* One workload: loader with the source stopped, then the timed catch-up. */
static int run_workload(cw_bench_component_t *cap, PGconn *conn, PGconn *hub_conn,
                        const clusters_t *clusters, const char *name, long rows)
{
	char sql_file[32];
	snprintf(sql_file, sizeof sql_file, "rows_%s.sql", name);
	cw_bench_component_stop(cap);
	double l0 = cw_bench_now_s();
	if (cw_bench_load(conn, sql_file, rows) != 0)
		return -1;
	double load_s = cw_bench_now_s() - l0;
	cw_bench_checkpoint(conn);   /* as the reference does: the source's, not the hub's */
	cw_bench_run_t run;
	double wal0 = hub_wal_bytes(hub_conn);
	double source0 = cw_bench_cluster_cpu_s(clusters->source);
	double hub0 = cw_bench_cluster_cpu_s(clusters->hub);
	if (cw_bench_capture_run(cap, SERIES, (double)rows, "rows captured", 600.0, &run) != 0)
		return -1;
	double source1 = cw_bench_cluster_cpu_s(clusters->source);
	double hub1 = cw_bench_cluster_cpu_s(clusters->hub);
	double wal_per_row = (hub_wal_bytes(hub_conn) - wal0) / (double)rows;
	printf("capture %s: loader wrote %ld rows in %.2f s; captured into the hub in %.2f s = "
	       "%.0f rows/s; CPU %.2f s; peak RSS %.1f MiB\n", name, rows, load_s, run.seconds,
	       (double)rows / run.seconds, run.cpu_s, (double)run.peak_rss_kib / 1024.0);
	char workload[32], rows_reference[48], rss_reference[48];
	snprintf(workload, sizeof workload, "capture %s", name);
	snprintf(rows_reference, sizeof rows_reference, "reference %s/rows/s", name);
	snprintf(rss_reference, sizeof rss_reference, "reference %s/peak RSS", name);
	cw_bench_figure_rows(workload, rows, &run, rows_reference, rss_reference);
	if (wal0 >= 0.0)
		cw_bench_figure(workload, "hub WAL per row", "bytes", wal_per_row, NULL);
	/* Where the two cores went: the walsender's cluster, the hub's, cachewarp. */
	cluster_figure(workload, "source cluster CPU per 1M rows", source0, source1, rows);
	cluster_figure(workload, "hub cluster CPU per 1M rows", hub0, hub1, rows);
	if (source0 >= 0.0 && source1 >= 0.0 && hub0 >= 0.0 && hub1 >= 0.0)
		cw_bench_figure(workload, "all CPU per 1M rows", "s",
		                (source1 - source0 + hub1 - hub0 + run.cpu_s) * 1e6 / (double)rows,
		                NULL);
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
	char slot[64];
	snprintf(slot, sizeof slot, "cw_bench_capture_%ld", (long)getpid());
	cw_bench_hub_t bench_hub;
	if (cw_bench_hub_open(&bench_hub, url) != 0)
		return 1;
	const char *hub_url = bench_hub.url;
	char *yaml = cw_xasprintf(
		"hub: {url: '%s'}\nsources:\n  - {name: app, type: postgres, url: '%s', "
		"publication: cw_bench_pub, slot: %s}\nentities:\n  - {name: bench_rows, source: app, "
		"table: public.bench_rows}\nlog: {level: warn}\n%s%s%s", hub_url, url, slot,
		capture_yaml ? "capture: {" : "", capture_yaml ? capture_yaml : "",
		capture_yaml ? "}\n" : "");
	cw_config_t *config = NULL;
	cw_hub_t *hub = NULL;
	PGconn *hub_conn = NULL;
	cw_bench_component_t cap = {.ops = cw_source_ops_for(CW_SOURCE_POSTGRES)};

	if (cw_bench_load(conn, "rows_schema.sql", rows) != 0 ||
	    (hub = cw_bench_hub_setup(hub_url, yaml, &config)) == NULL)
		goto out;
	hub_conn = PQconnectdb(hub_url);
	cap.ctx = (cw_component_ctx_t){config, "app", NULL, 0, cw_metrics_new(), NULL};
	if (cw_bench_component_start(&cap) != 0)
		goto out;
	clusters_t clusters = {"", ""};
	if (srv.dir[0] != '\0')
		snprintf(clusters.source, sizeof clusters.source, "%s/data", srv.dir);
	if (bench_hub.cluster.dir[0] != '\0')
		snprintf(clusters.hub, sizeof clusters.hub, "%s/data", bench_hub.cluster.dir);
	if (cw_bench_wait_live(hub_conn, "bench_rows", 120.0) != 0 ||
	    run_workload(&cap, conn, hub_conn, &clusters, "insert", rows) != 0 ||
	    run_workload(&cap, conn, hub_conn, &clusters, "update", rows) != 0) {
		cw_bench_component_stop(&cap);
		goto out;
	}
	cw_bench_component_stop(&cap);
	printf("capture: %ld rows per workload, capture settings: %s\n", rows,
	       capture_yaml ? capture_yaml : "defaults");
	rc = 0;
out:
	if (cap.ctx.metrics != NULL)
		cw_metrics_free(cap.ctx.metrics);
	cw_config_free(config);
	cw_hub_close(hub);
	PQfinish(hub_conn);
	/* Leave an existing cluster as it was: no slot holding WAL, no hub. */
	char *drop = cw_xasprintf("SELECT pg_drop_replication_slot('%s') FROM pg_replication_slots "
	                          "WHERE slot_name = '%s'", slot, slot);
	cw_bench_exec(conn, drop, "drop the capture slot");
	free(drop);
	cw_bench_hub_close(&bench_hub);
	free(yaml);
	PQfinish(conn);
	cw_testpg_stop(&srv);
	return rc;
}
