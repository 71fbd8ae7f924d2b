/*
 * Benchmark: the pgoutput reference — the physical limit of the walsender on
 * this machine, against which cachewarp's capture is measured.
 * A minimal libpq client opens a replication connection,
 * creates a temporary logical slot (pgoutput, proto_version 1, publication
 * cw_bench_pub), lets the shared loader (bench/sql/rows_*.sql) write the
 * rows, checkpoints (as bench_pg_capture.c does), then streams them with
 * START_REPLICATION: it only counts XLogData
 * messages by type and acknowledges each commit's end LSN with standby status
 * updates. Timed from the first message received to the last Commit.
 *
 * Workloads: N inserted rows, then the same N rows updated (N defaults to
 * 1,000,000; rows of ~200 bytes, 10,000 per transaction). Prints min / median
 * / max over the runs and the peak RSS of this process. Asserts nothing.
 *
 * Environment: CW_BENCH_ROWS (rows per workload), CW_BENCH_RUNS (runs, 3 by
 * default), CW_BENCH_PG_URL (an existing cluster with wal_level=logical; by
 * default a throwaway PostgreSQL 15 cluster is started and stopped).
 */
#include "capture/pgoutput.h"
#include "benchlib.h"
#include "core/mem.h"
#include "testsrv.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define DEFAULT_ROWS 1000000L
#define DEFAULT_RUNS 3
#define MAX_RUNS 100
#define STATUS_INTERVAL_US 100000 /* acknowledge at most every 100 ms, and when asked */

typedef struct workload {
	const char *name;     /* "insert" or "update" */
	const char *sql_file; /* the loader, in CW_BENCH_SQL_DIR */
	char row_kind;        /* the pgoutput message each row turns into */
} workload_t;

static const workload_t WORKLOADS[] = {
	{"insert", "rows_insert.sql", CW_PGOUTPUT_INSERT},
	{"update", "rows_update.sql", CW_PGOUTPUT_UPDATE},
};
#define NWORKLOADS (sizeof WORKLOADS / sizeof WORKLOADS[0])

/* What one streaming pass saw. */
typedef struct stream_stats {
	long messages;             /* XLogData messages */
	long rows;                 /* messages of the workload's row kind */
	long by_kind[256];         /* messages per pgoutput kind byte */
	long status_updates;       /* standby status updates sent */
	double first_s, last_s;    /* first message, last Commit (monotonic) */
} stream_stats_t;

/* Figures of one workload over every run. */
typedef struct figures {
	double load_rows_s[MAX_RUNS];
	double rows_s[MAX_RUNS];
	double messages_s[MAX_RUNS];
	double peak_rss_kib[MAX_RUNS];
} figures_t;

static PGconn *connect_to(const char *url, int replication)
{
	const char *keys[] = {"dbname", replication ? "replication" : NULL, NULL};
	const char *values[] = {url, "database", NULL};
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "bench: could not connect%s: %s",
		        replication ? " for replication" : "", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static int send_status(PGconn *repl, uint64_t flushed_lsn, stream_stats_t *stats)
{
	uint8_t msg[CW_PGOUTPUT_STATUS_LEN];
	size_t len = cw_pgoutput_status_build(msg, flushed_lsn, flushed_lsn, flushed_lsn,
	                                      cw_bench_wall_us(), false);
	if (PQputCopyData(repl, (const char *)msg, (int)len) != 1 || PQflush(repl) != 0) {
		fprintf(stderr, "bench: could not send a standby status update: %s",
		        PQerrorMessage(repl));
		return -1;
	}
	stats->status_updates++;
	return 0;
}

/*
 * Counts one XLogData message. Returns 1 at the Commit that completes the
 * workload's rows, 0 to go on, -1 on a malformed Commit. A Commit moves
 * *flushed_lsn to its end LSN: nothing is kept, so it is flushed at once.
 */
static int count_message(cw_pgoutput_t *decoder, const cw_pgoutput_copydata_t *copydata,
	const workload_t *workload, long rows, uint64_t *flushed_lsn, stream_stats_t *stats)
{
	if (copydata->data_len == 0)
		return 0;
	uint8_t kind = copydata->data[0];
	if (stats->messages++ == 0)
		stats->first_s = cw_bench_now_s();
	stats->by_kind[kind]++;
	if (kind == (uint8_t)workload->row_kind)
		stats->rows++;
	if (kind != CW_PGOUTPUT_COMMIT)
		return 0;
	cw_pgoutput_msg_t commit;
	cw_err_t err = {0};
	if (cw_pgoutput_decode(decoder, copydata->data, copydata->data_len, &commit, &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	*flushed_lsn = commit.commit.end_lsn;
	if (stats->rows < rows)
		return 0;
	stats->last_s = cw_bench_now_s();
	return 1;
}

/* Streams slot until the workload's rows and their Commit arrived; 0 or -1. */
static int stream(PGconn *repl, const char *slot, const workload_t *workload, long rows,
	stream_stats_t *stats)
{
	char sql[256];
	snprintf(sql, sizeof sql, "START_REPLICATION SLOT \"%s\" LOGICAL 0/0 "
	         "(proto_version '1', publication_names 'cw_bench_pub')", slot);
	PGresult *res = PQexec(repl, sql);
	int started = PQresultStatus(res) == PGRES_COPY_BOTH;
	PQclear(res);
	if (!started) {
		fprintf(stderr, "bench: could not start streaming: %s", PQerrorMessage(repl));
		return -1;
	}
	cw_pgoutput_t *decoder = cw_pgoutput_new();
	uint64_t flushed_lsn = 0;
	int64_t last_status_us = 0;
	int rc = 0;
	while (rc == 0) {
		char *copy = NULL;
		int len = PQgetCopyData(repl, &copy, 0);
		if (len < 0) {
			fprintf(stderr, "bench: the stream ended early: %s", PQerrorMessage(repl));
			rc = -1;
			break;
		}
		cw_pgoutput_copydata_t copydata;
		cw_err_t err = {0};
		bool reply = false;
		if (cw_pgoutput_copydata_parse((const uint8_t *)copy, (size_t)len, &copydata, &err) != 0) {
			fprintf(stderr, "bench: %s\n", err.message);
			rc = -1;
		} else if (copydata.kind == 'k') {
			reply = copydata.reply_requested;
		} else {
			rc = count_message(decoder, &copydata, workload, rows, &flushed_lsn, stats);
			reply = copydata.data_len > 0 && copydata.data[0] == CW_PGOUTPUT_COMMIT;
		}
		PQfreemem(copy);
		if (rc >= 0 && reply) {
			int64_t now = cw_bench_wall_us();
			if (rc == 1 || copydata.kind == 'k' || now - last_status_us >= STATUS_INTERVAL_US) {
				last_status_us = now;
				if (send_status(repl, flushed_lsn, stats) != 0)
					rc = -1;
			}
		}
	}
	cw_pgoutput_free(decoder);
	return rc < 0 ? -1 : 0;
}

static void print_run(int run, const workload_t *workload, long rows, double load_s,
	const stream_stats_t *stats)
{
	double seconds = stats->last_s - stats->first_s;
	printf("run %d %s: wrote %ld rows in %.2f s; streamed %ld messages (", run, workload->name,
	       rows, load_s, stats->messages);
	const char *sep = "";
	for (int kind = 0; kind < 256; kind++) {
		if (stats->by_kind[kind] == 0)
			continue;
		printf("%s%s %ld", sep, cw_pgoutput_kind_name((cw_pgoutput_kind_t)kind),
		       stats->by_kind[kind]);
		sep = ", ";
	}
	printf(") in %.2f s, %ld status updates\n", seconds, stats->status_updates);
	fflush(stdout);
}

/*
 * One run of one workload: temporary slot, the loader writes the rows, then
 * the slot streams them. Fills the run's figures; 0 or -1.
 */
static int run_workload(const char *url, const char *data_dir, PGconn *conn, int run,
	const workload_t *workload, long rows, figures_t *figures)
{
	int rc = -1;
	char slot[64];
	snprintf(slot, sizeof slot, "cw_bench_ref_%d_%s_%ld", run, workload->name, (long)getpid());
	PGconn *repl = connect_to(url, 1);
	if (repl == NULL)
		return -1;
	char sql[160];
	snprintf(sql, sizeof sql,
	         "CREATE_REPLICATION_SLOT \"%s\" TEMPORARY LOGICAL \"pgoutput\" NOEXPORT_SNAPSHOT", slot);
	if (cw_bench_exec(repl, sql, "create the replication slot") != 0)
		goto out;
	cw_bench_reset_peak_rss(0);
	double load_started = cw_bench_now_s();
	if (cw_bench_load(conn, workload->sql_file, rows) != 0)
		goto out;
	double load_s = cw_bench_now_s() - load_started;
	cw_bench_checkpoint(conn);   /* as the capture benchmark does */
	stream_stats_t stats = {0};
	double cluster0 = cw_bench_cluster_cpu_s(data_dir);
	double self0 = cw_bench_cpu_s(0);
	if (stream(repl, slot, workload, rows, &stats) != 0)
		goto out;
	double cluster1 = cw_bench_cluster_cpu_s(data_dir);
	double self_s = cw_bench_cpu_s(0) - self0;
	print_run(run, workload, rows, load_s, &stats);
	double seconds = stats.last_s - stats.first_s;
	figures->load_rows_s[run - 1] = (double)rows / load_s;
	figures->rows_s[run - 1] = seconds > 0 ? (double)stats.rows / seconds : 0;
	figures->messages_s[run - 1] = seconds > 0 ? (double)stats.messages / seconds : 0;
	figures->peak_rss_kib[run - 1] = (double)cw_bench_peak_rss_kib(0);
	char label[32];
	snprintf(label, sizeof label, "reference %s", workload->name);
	cw_bench_figure(label, "rows/s", "rows/s", figures->rows_s[run - 1], NULL);
	cw_bench_figure(label, "peak RSS", "MiB", figures->peak_rss_kib[run - 1] / 1024.0, NULL);
	/* The walsender's cost of the same rows the capture streams (bench_pg_capture.c). */
	if (cluster0 >= 0.0 && cluster1 >= 0.0) {
		cw_bench_figure(label, "source cluster CPU per 1M rows", "s",
		                (cluster1 - cluster0) * 1e6 / (double)rows, NULL);
		cw_bench_figure(label, "all CPU per 1M rows", "s",
		                (cluster1 - cluster0 + self_s) * 1e6 / (double)rows, NULL);
	}
	rc = 0;
out:
	PQfinish(repl); /* ends the walsender, which drops the temporary slot */
	return rc;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void print_figure(const char *workload, const char *figure, const double *values, int runs)
{
	double sorted[MAX_RUNS];
	memcpy(sorted, values, sizeof sorted[0] * (size_t)runs);
	qsort(sorted, (size_t)runs, sizeof sorted[0], compare_double);
	double median = runs % 2 ? sorted[runs / 2] : (sorted[runs / 2 - 1] + sorted[runs / 2]) / 2;
	printf("%-8s %-18s %12.0f %12.0f %12.0f\n", workload, figure, sorted[0], median,
	       sorted[runs - 1]);
}

static void print_summary(PGconn *conn, long rows, int runs, const figures_t *figures)
{
	char *version = cw_bench_query_value(conn, "SHOW server_version");
	char *row_bytes = cw_bench_query_value(conn, "SELECT round(avg(octet_length(t::text))) "
	                                    "FROM (SELECT * FROM public.bench_rows LIMIT 10000) t");
	printf("\nworkload: pgoutput proto_version 1, one table (id bigint PK, name text, score "
	       "double precision, payload jsonb, updated_at timestamptz), %s bytes per row as text, "
	       "%ld rows per workload in transactions of 10000, %d runs; PostgreSQL %s, %ld cores\n",
	       row_bytes != NULL ? row_bytes : "?", rows, runs, version != NULL ? version : "?",
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-8s %-18s %12s %12s %12s\n", "workload", "figure", "min", "median", "max");
	for (size_t i = 0; i < NWORKLOADS; i++) {
		print_figure(WORKLOADS[i].name, "rows/s", figures[i].rows_s, runs);
		print_figure(WORKLOADS[i].name, "messages/s", figures[i].messages_s, runs);
		print_figure(WORKLOADS[i].name, "load_rows/s", figures[i].load_rows_s, runs);
		print_figure(WORKLOADS[i].name, "peak_rss_kib", figures[i].peak_rss_kib, runs);
	}
	printf("(rows/s and messages/s: first message to last Commit of the stream, the rows "
	       "already written; load_rows/s: the loader writing them; peak_rss_kib: this "
	       "process during the workload)\n");
	free(version);
	free(row_bytes);
}

int main(void)
{
	long rows = cw_bench_env_long("CW_BENCH_ROWS", DEFAULT_ROWS, 1, 1000000000L);
	int runs = (int)cw_bench_env_long("CW_BENCH_RUNS", DEFAULT_RUNS, 1, MAX_RUNS);
	cw_testsrv_t pg = {0};
	figures_t figures[NWORKLOADS];
	int rc = 1;

	memset(figures, 0, sizeof figures);
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *url = NULL;
	PGconn *conn = cw_bench_pg_source(&pg, &url);
	if (conn == NULL)
		return 1;
	char data_dir[600] = "";   /* "" for a cluster not started here */
	if (pg.dir[0] != '\0')
		snprintf(data_dir, sizeof data_dir, "%s/data", pg.dir);
	int status = 0;
	for (int run = 1; run <= runs && status == 0; run++) {
		status = cw_bench_load(conn, "rows_schema.sql", rows);
		for (size_t i = 0; i < NWORKLOADS && status == 0; i++)
			status = run_workload(url, data_dir, conn, run, &WORKLOADS[i], rows, &figures[i]);
	}
	if (status == 0) {
		print_summary(conn, rows, runs, figures);
		rc = 0;
	}
	PQfinish(conn);
	cw_testpg_stop(&pg);
	return rc;
}
