/*
 * This file contains the capture benchmark of the PostgreSQL source (issue 4,
 * "Performance"): on a throwaway PostgreSQL 15 cluster, N rows of ~200 bytes
 * are inserted in one transaction while the source streams, and the time
 * until the hub's oplog holds all N is compared, in the same run, with a
 * minimal pgoutput client (pg_recvlogical writing the messages to /dev/null)
 * reading the same WAL from its own slot. Figures only, no assertions.
 *
 *   bash bench/pg_capture.sh [ROWS]      (default 1000000)
 *   BATCH=5000   capture.batch_size (default 1000)
 *   HUB_DB=1     the hub in a separate database of the same cluster
 */
#include "capture/source.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/mem.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "testsrv.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct run_arg {
	const cw_source_ops_t *ops;
	void *source;
	cw_cancel_t *cancel;
} run_arg_t;

static void *run_main(void *p)
{
	run_arg_t *arg = p;
	while (!cw_cancel_is_set(arg->cancel)) {
		cw_err_t err = {0};
		if (arg->ops->run(arg->source, arg->cancel, &err) != CW_ECANCELED)
			fprintf(stderr, "run: %s\n", err.message);
	}
	return NULL;
}

static long long value(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

static char *text_value(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	char *v = cw_xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

int main(int argc, char **argv)
{
	long rows = argc > 1 ? atol(argv[1]) : 1000000;
	const cw_clock_t *clock = cw_clock_system();
	cw_testsrv_t srv;
	if (cw_testpg_start(&srv) != 0)
		return 1;
	PGconn *conn = PQconnectdb(srv.url);
	PGconn *hub_conn = NULL;
	exec(conn, "CREATE TABLE bench (id bigint PRIMARY KEY, name text, qty int, price numeric, "
	           "note text, created timestamptz)");
	/* HUB_DB=1: the hub in a database of its own, so the source's WAL decoding skips it. */
	char *hub_url = cw_xstrdup(srv.url);
	if (getenv("HUB_DB") != NULL) {
		exec(conn, "CREATE DATABASE hub");
		free(hub_url);
		hub_url = cw_xasprintf("%.*shub", (int)(strrchr(srv.url, '/') + 1 - srv.url), srv.url);
	}
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect(hub_url, &err);
	if (hub == NULL || cw_hub_migrate(hub, NULL, &err) != 0) {
		fprintf(stderr, "hub: %s\n", err.message);
		return 1;
	}
	char *yaml = cw_xasprintf("hub: {url: '%s'}\nsources:\n  - {name: app, type: postgres, "
	                          "url: '%s'}\nentities:\n  - {name: bench, source: app, "
	                          "table: public.bench}\nlog: {level: warn}\ncapture: {batch_size: %s}\n",
	                          hub_url, srv.url, getenv("BATCH") ? getenv("BATCH") : "1000");
	cw_config_t *config = NULL;
	if (cw_config_load_buffer("bench.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0) {
		fprintf(stderr, "config: %s\n", err.message);
		return 1;
	}
	hub_conn = PQconnectdb(hub_url);
	bool created;
	cw_entity_store_upsert(hub, &config->entities[0], &created, &err);
	cw_metrics_t *metrics = cw_metrics_new();
	cw_component_ctx_t ctx = {config, "app", NULL, 0, metrics};
	run_arg_t arg = {cw_source_ops_for(CW_SOURCE_POSTGRES), NULL, cw_cancel_new()};
	arg.source = arg.ops->open(&ctx, &err);
	pthread_t thread;
	pthread_create(&thread, NULL, run_main, &arg);
	while (value(hub_conn, "SELECT count(*) FROM cachewarp.entities WHERE status = 'live'") < 1)
		usleep(20000);
	/* The baseline's slot, at the same position, before the rows. */
	exec(conn, "SELECT pg_create_logical_replication_slot('baseline', 'pgoutput')");
	const char *series = "entity=\"bench\",op=\"upsert\"";
	double before = cw_metrics_value(metrics, "cachewarp_changes_captured_total", series);

	char *insert = cw_xasprintf(
		"INSERT INTO bench SELECT g, 'customer name ' || g, g %% 1000, g * 1.25, "
		"repeat('n', 100), '2024-05-01 12:00:00+00' FROM generate_series(1, %ld) g", rows);
	struct rusage ru0, ru1;
	int64_t t0 = cw_clock_now_ms(clock);
	exec(conn, insert);
	int64_t t_insert = cw_clock_now_ms(clock);
	getrusage(RUSAGE_SELF, &ru0);
	char *end_lsn = text_value(conn, "SELECT pg_current_wal_lsn()::text");
	while (cw_metrics_value(metrics, "cachewarp_changes_captured_total", series) - before < rows)
		usleep(5000);
	int64_t t_capture = cw_clock_now_ms(clock);
	getrusage(RUSAGE_SELF, &ru1);
	long long row_bytes = value(conn, "SELECT avg(pg_column_size(b.*))::bigint FROM bench b");

	cw_cancel_fire(arg.cancel);
	pthread_join(thread, NULL);
	arg.ops->close(arg.source);

	/* The minimal client: every pgoutput message of the same WAL, counted into /dev/null. */
	char *cmd = cw_xasprintf("pg_recvlogical -d '%s' --slot baseline --start --no-loop "
	                         "-o proto_version=1 -o publication_names=cachewarp "
	                         "--endpos %s -f /dev/null", srv.url, end_lsn);
	int64_t b0 = cw_clock_now_ms(clock);
	int rc = system(cmd);
	int64_t b1 = cw_clock_now_ms(clock);

	double capture_s = (double)(t_capture - t_insert) / 1000.0;
	double total_s = (double)(t_capture - t0) / 1000.0;
	double base_s = (double)(b1 - b0) / 1000.0;
	printf("rows: %ld (%lld bytes each on disk)\n", rows, row_bytes);
	printf("insert transaction: %.2f s\n", (double)(t_insert - t0) / 1000.0);
	printf("cachewarp capture after commit: %.2f s = %.0f rows/s (%.0f rows/s from the start "
	       "of the insert)\n", capture_s, rows / capture_s, rows / total_s);
	printf("pg_recvlogical (pgoutput to /dev/null): %.2f s = %.0f rows/s%s\n", base_s,
	       rows / base_s, rc == 0 ? "" : " (failed)");
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
	             ru0.ru_stime.tv_sec) + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
	             ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	printf("cachewarp process CPU during the capture: %.2f s\n", cpu);
	printf("ratio: %.0f%%\n", 100.0 * base_s / capture_s);

	free(cmd);
	free(end_lsn);
	free(insert);
	cw_cancel_free(arg.cancel);
	cw_metrics_free(metrics);
	cw_config_free(config);
	free(yaml);
	cw_hub_close(hub);
	PQfinish(hub_conn);
	free(hub_url);
	PQfinish(conn);
	cw_testpg_stop(&srv);
	return 0;
}
