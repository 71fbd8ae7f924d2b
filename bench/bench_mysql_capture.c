/*
 * This file contains the MySQL capture benchmark: a
 * MariaDB binlog -> hub through cachewarp's mysql source, next to a bare
 * replication client that only reads and counts the same binlog events
 * (libmariadb's mariadb_rpl_fetch, nothing decoded), both in one run.
 *
 * First N rows are written before the source ever starts, and its first
 * snapshot is timed until the entity is live. Then for each workload (insert
 * of N more rows, then their update) the source is stopped, the rows of
 * app.bench_rows are written (10,000 per transaction), the reference reads
 * the binlog those transactions wrote (from the GTID position before them to
 * the end, BINLOG_DUMP_NON_BLOCK) and the source is started again: timed
 * from its start until its captured-changes counter (bumped after a hub
 * commit) has grown by N. Then the hub's own ceiling for the same rows: the
 * oplog rows the capture wrote are COPY'd out and timed as they are COPY'd
 * into a fresh copy of the oplog table in transactions of
 * capture.batch_size rows (cw_bench_hub_copy); cachewarp's rate is printed
 * as a ratio of both references. The MariaDB server
 * (tests/support/mariadb.sh) and the hub's PostgreSQL cluster are
 * throwaway. Prints figure lines (benchlib.h) and a summary; asserts
 * nothing.
 *
 * Last, batch mode (docs/batch.md): with the stream stopped, an index on
 * (updated_at, id) is added and the batch poller of a second entity on the
 * same table (mode: batch) is timed until its first poll has put all 2N
 * rows in the hub. Then 10 rows are deleted from the table and the poller
 * started again, timed until their 10 deletes are in the hub: its start, a
 * poll that finds nothing new, and one delete comparison of the 2N keys.
 *
 *   build/bench.mysql_capture          (or bench/run.sh mysql_capture)
 *   CW_BENCH_ROWS   rows per workload (default 1,000,000)
 *   CW_SUPPORT_DIR  tests/support (bench/run.sh sets it)
 */
#include "benchlib.h"
#include "core/config.h"
#include "core/mem.h"
#include "hub/hub.h"
#include "testsrv.h"

#include <mysql.h>
#include <mariadb_rpl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERIES "entity=\"bench_rows\",op=\"upsert\""
#define BATCH_SERIES "entity=\"bench_batch\",op=\"upsert\""
#define DELETE_SERIES "entity=\"bench_batch\",op=\"delete\""
#define CHUNK 10000

typedef struct server {
	char dir[128];
	char url[256];
	char sock[160];
	unsigned port;
} server_t;

static int start_mariadb(server_t *srv)
{
	const char *support = getenv("CW_SUPPORT_DIR");
	snprintf(srv->dir, sizeof srv->dir, "/tmp/cw-bench-mysql-%ld", (long)getpid());
	char *cmd = cw_xasprintf("bash '%s/mariadb.sh' start --owner %ld '%s'",
	                         support != NULL ? support : "tests/support", (long)getpid(), srv->dir);
	FILE *out = popen(cmd, "r");
	free(cmd);
	if (out == NULL || fgets(srv->url, sizeof srv->url, out) == NULL) {
		if (out != NULL)
			pclose(out);
		fprintf(stderr, "bench: could not start mariadb\n");
		return -1;
	}
	pclose(out);
	srv->url[strcspn(srv->url, "\n")] = '\0';
	const char *colon = strrchr(srv->url, ':');
	srv->port = colon != NULL ? (unsigned)atoi(colon + 1) : 0;
	snprintf(srv->sock, sizeof srv->sock, "%s/sock", srv->dir);
	return 0;
}

static void stop_mariadb(server_t *srv)
{
	const char *support = getenv("CW_SUPPORT_DIR");
	char *cmd = cw_xasprintf("bash '%s/mariadb.sh' stop '%s'",
	                         support != NULL ? support : "tests/support", srv->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not stop mariadb in %s\n", srv->dir);
	free(cmd);
}

static MYSQL *connect_root(const server_t *srv)
{
	MYSQL *conn = mysql_init(NULL);
	if (mysql_real_connect(conn, NULL, "root", NULL, "app", 0, srv->sock, 0) == NULL) {
		fprintf(stderr, "bench: %s\n", mysql_error(conn));
		mysql_close(conn);
		return NULL;
	}
	return conn;
}

static int exec(MYSQL *conn, const char *sql)
{
	if (mysql_query(conn, sql) != 0) {
		fprintf(stderr, "bench: %s: %s\n", sql, mysql_error(conn));
		return -1;
	}
	mysql_free_result(mysql_store_result(conn));
	return 0;
}

static char *gtid_pos(MYSQL *conn)
{
	if (mysql_query(conn, "SELECT @@GLOBAL.gtid_binlog_pos") != 0)
		return NULL;
	MYSQL_RES *res = mysql_store_result(conn);
	MYSQL_ROW row = mysql_fetch_row(res);
	char *pos = cw_xstrdup(row != NULL && row[0] != NULL ? row[0] : "");
	mysql_free_result(res);
	return pos;
}

/* The loader: rows offset+1 .. offset+N inserted, or updated, 10,000 per transaction. */
static int load(MYSQL *conn, const char *name, long offset, long rows)
{
	for (long first = offset + 1; first <= offset + rows; first += CHUNK) {
		long last = first + CHUNK - 1 < offset + rows ? first + CHUNK - 1 : offset + rows;
		char sql[512];
		if (strcmp(name, "insert") == 0)
			snprintf(sql, sizeof sql, "INSERT INTO bench_rows SELECT seq, CONCAT('customer ', seq), "
			         "seq * 0.25, JSON_OBJECT('sku', CONCAT('SKU-', LPAD(seq, 8, '0')), 'qty', "
			         "seq %% 100, 'note', 'lorem ipsum dolor sit amet, consectetur adipiscing elit'), "
			         "NOW(6) FROM seq_%ld_to_%ld", first, last);
		else
			snprintf(sql, sizeof sql, "UPDATE bench_rows SET score = score + 1, updated_at = NOW(6) "
			         "WHERE id BETWEEN %ld AND %ld", first, last);
		if (exec(conn, sql) != 0)
			return -1;
	}
	return 0;
}

/* The reference: reads every event after `from` to the binlog's end; returns seconds. */
static double reference(const server_t *srv, const char *from, long *events)
{
	MYSQL *conn = mysql_init(NULL);
	MARIADB_RPL *rpl = NULL;
	MARIADB_RPL_EVENT *ev = NULL;
	double t0 = cw_bench_now_s(), seconds = -1;
	*events = 0;
	if (mysql_real_connect(conn, "127.0.0.1", "root", NULL, NULL, srv->port, NULL, 0) == NULL)
		goto out;
	char *set = cw_xasprintf("SET @master_binlog_checksum = 'CRC32', @mariadb_slave_capability = 4, "
	                         "@slave_connect_state = '%s'", from);
	int rc = exec(conn, set);
	free(set);
	if (rc != 0 || (rpl = mariadb_rpl_init(conn)) == NULL)
		goto out;
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, 424242);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, 4);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, "", 0);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, 1);   /* BINLOG_DUMP_NON_BLOCK: EOF at the end */
	if (mariadb_rpl_open(rpl) != 0)
		goto out;
	while ((ev = mariadb_rpl_fetch(rpl, ev)) != NULL && ev->event_type != 0 /* EOF */)
		(*events)++;
	seconds = cw_bench_now_s() - t0;
out:
	if (seconds < 0)
		fprintf(stderr, "bench: reference: %s\n", mysql_error(conn));
	if (ev != NULL)
		mariadb_free_rpl_event(ev);
	if (rpl != NULL)
		mariadb_rpl_close(rpl);
	mysql_close(conn);
	return seconds;
}

/* The hub's newest oplog id, or -1. */
static long long oplog_head(PGconn *hub)
{
	char *head = cw_bench_query_value(hub, "SELECT COALESCE(max(id), 0) FROM cachewarp.oplog");
	long long id = head != NULL ? strtoll(head, NULL, 10) : -1;
	free(head);
	return id;
}

static int run_workload(cw_bench_component_t *cap, const server_t *srv, MYSQL *conn,
                        PGconn *hub, const char *hub_url, const char *name, long rows)
{
	cw_bench_component_stop(cap);
	long long head = oplog_head(hub);
	if (head < 0)
		return -1;
	char *from = gtid_pos(conn);
	double l0 = cw_bench_now_s();
	/* the snapshot's rows are 1..N: the workloads write N+1..2N */
	if (from == NULL || load(conn, name, rows, rows) != 0) {
		free(from);
		return -1;
	}
	double load_s = cw_bench_now_s() - l0;
	long events;
	double ref_s = reference(srv, from, &events);
	free(from);
	if (ref_s < 0)
		return -1;
	cw_bench_run_t run;
	if (cw_bench_capture_run(cap, SERIES, (double)rows, "rows captured", 900.0, &run) != 0)
		return -1;
	double seconds = run.seconds, cpu = run.cpu_s;
	long rss = run.peak_rss_kib;
	/* The hub's ceiling: the same rows COPY'd in, as many per transaction as the capture. */
	char where[96], dir[160];
	snprintf(where, sizeof where, "entity = 'bench_rows' AND id > %lld", head);
	snprintf(dir, sizeof dir, "%s", srv->dir);
	long copied = 0;
	double copy_s = cw_bench_hub_copy(hub_url, where, (int)cap->ctx.config->capture.batch_size,
	                                  dir, &copied);
	if (copy_s <= 0 || copied != rows) {
		fprintf(stderr, "bench: the hub COPY reference copied %ld rows, want %ld\n", copied,
		        rows);
		return -1;
	}
	printf("mysql %s: loader wrote %ld rows in %.2f s; bare replication client read %ld events "
	       "in %.2f s = %.0f rows/s; captured into the hub in %.2f s = %.0f rows/s (%.3f of the "
	       "replication client); the hub's bare COPY of the same rows in transactions of %lld "
	       "took %.2f s = %.0f rows/s (cachewarp at %.2f of it; the COPY at %.3f of the "
	       "replication client); CPU %.2f s; peak RSS %.1f MiB\n", name, rows, load_s, events,
	       ref_s, (double)rows / ref_s, seconds, (double)rows / seconds, ref_s / seconds,
	       (long long)cap->ctx.config->capture.batch_size, copy_s, (double)rows / copy_s,
	       copy_s / seconds, ref_s / copy_s, cpu, (double)rss / 1024.0);
	char workload[48], ref_name[48], ref_figure[64], copy_name[48], copy_figure[64];
	snprintf(ref_name, sizeof ref_name, "mysql reference %s", name);
	snprintf(copy_name, sizeof copy_name, "mysql hub COPY %s", name);
	snprintf(workload, sizeof workload, "mysql capture %s", name);
	snprintf(ref_figure, sizeof ref_figure, "%s/rows/s", ref_name);
	snprintf(copy_figure, sizeof copy_figure, "%s/rows/s", copy_name);
	cw_bench_figure(ref_name, "rows/s", "rows/s", (double)rows / ref_s, NULL);
	cw_bench_figure(copy_name, "rows/s", "rows/s", (double)rows / copy_s, ref_figure);
	cw_bench_figure(workload, "rows/s", "rows/s", (double)rows / seconds, ref_figure);
	cw_bench_figure(workload, "rows/s of the hub COPY", "rows/s", (double)rows / seconds,
	                copy_figure);
	cw_bench_figure(workload, "CPU per 1M rows", "s", cpu * 1e6 / (double)rows, NULL);
	cw_bench_figure(workload, "peak RSS", "MiB", (double)rss / 1024.0, NULL);
	return 0;
}

/* Batch mode: one poll of every row of the table (the stream stopped), timed. */
static int run_batch(cw_bench_component_t *poller, MYSQL *conn, long rows)
{
	if (exec(conn, "ALTER TABLE bench_rows ADD INDEX bench_rows_changed (updated_at, id)") != 0)
		return -1;
	cw_bench_run_t run;
	if (cw_bench_capture_run(poller, BATCH_SERIES, (double)rows, "rows polled", 900.0, &run) != 0)
		return -1;
	printf("mysql batch: one poll read %ld changed rows into the hub in %.2f s = %.0f rows/s; "
	       "CPU %.2f s; peak RSS %.1f MiB\n", rows, run.seconds, (double)rows / run.seconds,
	       run.cpu_s, (double)run.peak_rss_kib / 1024.0);
	cw_bench_figure_rows("mysql batch", rows, &run, NULL, NULL);
	return 0;
}

/*
 * Batch mode's delete comparison: 10 rows of the table's `rows` deleted,
 * the poller (stopped) started again and timed until their deletes are in
 * the hub.
 */
static int run_deletes(cw_bench_component_t *poller, MYSQL *conn, long rows)
{
	const long deletes = 10;
	char sql[128];
	snprintf(sql, sizeof sql, "DELETE FROM bench_rows WHERE id %% %ld = 7", rows / deletes);
	if (rows < deletes || exec(conn, sql) != 0)
		return -1;
	cw_bench_run_t run;
	if (cw_bench_capture_run(poller, DELETE_SERIES, (double)deletes, "deletes captured", 900.0,
	                         &run) != 0)
		return -1;
	double seconds = run.seconds, cpu = run.cpu_s;
	long rss = run.peak_rss_kib;
	printf("mysql batch deletes: %ld rows deleted of %ld; the poller's start, an empty poll and "
	       "one delete comparison put their deletes in the hub in %.2f s; CPU %.2f s; peak RSS "
	       "%.1f MiB\n", deletes, rows, seconds, cpu, (double)rss / 1024.0);
	cw_bench_figure("mysql batch delete comparison", "seconds", "s", seconds, NULL);
	cw_bench_figure("mysql batch delete comparison", "CPU", "s", cpu, NULL);
	cw_bench_figure("mysql batch delete comparison", "peak RSS", "MiB", (double)rss / 1024.0,
	                NULL);
	return 0;
}

int main(void)
{
	long rows = cw_bench_env_long("CW_BENCH_ROWS", 1000000, 1, 100000000L);
	server_t my = {0};
	cw_testsrv_t hub_srv = {0};
	cw_config_t *config = NULL;
	cw_hub_t *hub = NULL;
	PGconn *hub_conn = NULL;
	MYSQL *conn = NULL;
	char *yaml = NULL;
	cw_bench_component_t cap = {.ops = cw_source_ops_for(CW_SOURCE_MYSQL)};
	cw_bench_component_t poller = {.ops = cw_source_batch_ops_for(CW_SOURCE_MYSQL)};
	int rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (start_mariadb(&my) != 0)
		return 1;
	if (cw_testpg_start(&hub_srv) != 0 || (conn = connect_root(&my)) == NULL ||
	    exec(conn, "CREATE TABLE bench_rows (id BIGINT PRIMARY KEY, name VARCHAR(64), "
	         "score DECIMAL(14,2), payload JSON, updated_at DATETIME(6))") != 0)
		goto out;
	yaml = cw_xasprintf("hub: {url: '%s'}\nsources:\n  - {name: app, type: mysql, url: '%s'}\n"
	                    "entities:\n  - {name: bench_rows, source: app, table: bench_rows}\n"
	                    "  - {name: bench_batch, source: app, table: bench_rows, mode: batch, "
	                    "polling_interval: 100ms, delete_detection: {interval: 1ms}}\n"
	                    "log: {level: warn}\n", hub_srv.url, my.url);
	if ((hub = cw_bench_hub_setup(hub_srv.url, yaml, &config)) == NULL)
		goto out;
	hub_conn = PQconnectdb(hub_srv.url);
	cap.ctx = (cw_component_ctx_t){config, "app", NULL, 0, cw_metrics_new(), NULL};
	/* The first snapshot: N rows there before the source first starts, timed until live. */
	double l0 = cw_bench_now_s();
	if (load(conn, "insert", 0, rows) != 0)
		goto out;
	double load_s = cw_bench_now_s() - l0, t0 = cw_bench_now_s();
	if (cw_bench_component_start(&cap) != 0)
		goto out;
	if (cw_bench_wait_live(hub_conn, "bench_rows", 900.0) != 0)
		goto out;
	double snap_s = cw_bench_now_s() - t0;
	printf("mysql snapshot: loader wrote %ld rows in %.2f s; the first snapshot made them live in "
	       "the hub in %.2f s = %.0f rows/s\n", rows, load_s, snap_s, (double)rows / snap_s);
	cw_bench_figure("mysql snapshot", "rows/s", "rows/s", (double)rows / snap_s, NULL);
	if (
	    run_workload(&cap, &my, conn, hub_conn, hub_srv.url, "insert", rows) != 0 ||
	    run_workload(&cap, &my, conn, hub_conn, hub_srv.url, "update", rows) != 0) {
		cw_bench_component_stop(&cap);
		goto out;
	}
	cw_bench_component_stop(&cap);
	printf("mysql capture: %ld rows per workload, default capture settings\n", rows);
	poller.ctx = cap.ctx;
	if (run_batch(&poller, conn, 2 * rows) != 0) {
		cw_bench_component_stop(&poller);
		goto out;
	}
	cw_bench_component_stop(&poller);
	if (run_deletes(&poller, conn, 2 * rows) != 0) {
		cw_bench_component_stop(&poller);
		goto out;
	}
	cw_bench_component_stop(&poller);
	rc = 0;
out:
	if (cap.ctx.metrics != NULL)
		cw_metrics_free(cap.ctx.metrics);
	cw_config_free(config);
	cw_hub_close(hub);
	PQfinish(hub_conn);
	if (conn != NULL)
		mysql_close(conn);
	free(yaml);
	cw_testpg_stop(&hub_srv);
	stop_mariadb(&my);
	return rc;
}
