/*
 * This file contains the whole-pipeline benchmark: the real daemon binary,
 * build/cachewarp, started as a child process on a generated cachewarp.yaml,
 * capturing a PostgreSQL table into a hub and applying the hub to an SQLite
 * cache. Figures only, no assertions.
 *
 *   1. snapshot: N rows (CW_BENCH_ROWS, default 1,000,000) of ~200 bytes are
 *      loaded before the daemon starts; timed from the exec until the cache
 *      {dir}/{entity}/db.sqlite holds N rows (polled every 50 ms);
 *   2. end-to-end latency: with the daemon running, inserts at a steady 1,000
 *      and then 10,000 rows/s (CW_BENCH_SECONDS each, default 30), a paced
 *      transaction every 10 ms, each row stamped with the wall clock taken
 *      just before its INSERT ... (autocommit) is sent; a poller reads the
 *      cache every 2 ms and records now - stamp for each newly visible row;
 *   3. streaming inserts: N more rows inserted by one writer in transactions
 *      of 10,000 with the daemon live; timed from the first insert until the
 *      last row is in the cache (end to end, next to the pgoutput reference;
 *      phases 3 and 3b check for their last row every 20 ms);
 *   3b. then the daemon stops (SIGTERM) and N more rows are written with it
 *   stopped, the source checkpoints, and it starts again: timed from its
 *   exec until the last row is in the cache ("end to end catch-up", timed as
 *   the reference and the capture benchmark time theirs);
 *   4. memory: the daemon's VmHWM after each workload;
 *   for 3. and 3b., the CPU of the source's cluster, the hub's and the
 *   daemon per 1M rows, and the rows/s their sum allows on this machine's cores;
 *   after 1., the snapshot's stages next to bare references (snapshot_stages.h).
 * Prints figure lines (bench/benchlib.h) and a Markdown summary.
 * Then SIGTERM, and the daemon's exit status.
 *
 *   CW_SOURCE_DIR=$PWD build/bench.pipeline    (or bench/run.sh pipeline)
 *   CW_BINARY=path   the daemon (default $CW_SOURCE_DIR/build/cachewarp)
 *   CW_BENCH_SYNC_COMMIT=off   the latency writer's synchronous_commit (default on)
 *   CW_BENCH_KEEP=1  keep the temporary directory (config, daemon log, cache)
 *   CW_BENCH_TRACE=1 print the worst latency of each second's rows
 *   CW_BENCH_CONFIG=yaml  appended to the daemon's config, to measure a setting
 *                    against its default (e.g. "apply: {batch_size: 2500}")
 */
#define _XOPEN_SOURCE 700
#include "benchlib.h"
#include "core/mem.h"
#include "snapshot_stages.h"
#include "testsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ENTITY "bench_rows"
#define TICK_MS 10      /* the writer sends one transaction per tick */
#define POLL_US 2000    /* the latency poller's interval */
#define SNAPSHOT_POLL_US 50000
/*
 * The throughput phases' check for their last row: each check opens the
 * cache, so at POLL_US it took about 4% of the two cores from the pipeline it
 * timed; 20 ms is 0.2% of a 10 s phase.
 */
#define LAST_ROW_POLL_US 20000

/* The columns of one row, for INSERT ... SELECT over generate_series(g). */
#define ROW_EXPR "g, 'customer ' || g, g * 0.25, " \
	"jsonb_build_object('sku', 'SKU-' || lpad(g::text, 8, '0'), 'qty', mod(g, 100), " \
	"'tags', jsonb_build_array('tier' || mod(g, 5), 'region-eu'), " \
	"'note', 'lorem ipsum dolor sit amet, consectetur adipiscing elit'), now()"

static void exec_sql(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench: %.80s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

/*
 * VACUUM ANALYZE of the source's table and the hub's oplog after the
 * snapshot, not timed: the 1M rows it wrote (and read) make autovacuum due
 * on both, and its naptime would land the vacuum in the middle of whichever
 * phase comes next (seen: the latency's max and the streaming's rows/s).
 * The stage references and the phases after it start from settled
 * clusters, as the snapshot did.
 */
static void settle(PGconn *source, const char *hub_url)
{
	double t0 = cw_bench_now_s();
	PGconn *hub = PQconnectdb(hub_url);
	if (PQstatus(hub) != CONNECTION_OK) {
		fprintf(stderr, "bench: hub: %s", PQerrorMessage(hub));
		exit(1);
	}
	exec_sql(hub, "VACUUM ANALYZE cachewarp.oplog");
	PQfinish(hub);
	exec_sql(source, "VACUUM ANALYZE public." ENTITY);
	printf("settled: VACUUM ANALYZE of the source's table and the hub's oplog in %.1f s "
	       "(not timed)\n", cw_bench_now_s() - t0);
	fflush(stdout);
}

static pid_t start_daemon(const char *binary, const char *config_path, const char *log_path)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench: fork");
		exit(1);
	}
	if (pid == 0) {
		/* The daemon dies with the benchmark, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execl(binary, binary, "run", "-c", config_path, (char *)NULL);
		fprintf(stderr, "bench: could not run \"%s\": %s\n", binary, strerror(errno));
		_exit(127);
	}
	return pid;
}

/*
 * Rows in the cache, or -1 while its file or table does not exist yet. The
 * loader wrote row `last` last, so the scan reads it last: the count(*) (tens
 * of ms on a 1M-row cache, on the cores the pipeline needs) runs only once it
 * is there, and until then the answer is 0. With count_all false, 1 once row
 * `last` is there.
 */
static long long cache_rows(const char *cache_path, long last, bool count_all)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	long long rows = -1;
	char sql[128];
	if (sqlite3_open_v2(cache_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto done;
	sqlite3_busy_timeout(db, 1000);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM " ENTITY " WHERE id = '%ld'", last);
	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		goto done;
	rows = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (rows != 1 || !count_all)
		goto done;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM " ENTITY, -1, &stmt, NULL) != SQLITE_OK)
		goto done;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		rows = sqlite3_column_int64(stmt, 0);
done:
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return rows;
}

/*
 * Upserts in the hub's oplog, counted incrementally past *max_id (the
 * (entity, id) index makes each poll cheap); 0 while the schema does not exist yet.
 */
static long long hub_upserts_since(PGconn *hub, long long *max_id, long long *upserts)
{
	char last[32];
	snprintf(last, sizeof last, "%lld", *max_id);
	const char *params[] = {last};
	PGresult *res = PQexecParams(hub, "SELECT count(*) FILTER (WHERE op = 'upsert'), "
	                             "coalesce(max(id), $1::bigint) FROM cachewarp.oplog "
	                             "WHERE entity = '" ENTITY "' AND id > $1::bigint", 1, NULL,
	                             params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		*upserts += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*max_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return *upserts;
}

/* Whether the daemon still runs; if not, its status is reported once. */
static bool daemon_alive(pid_t pid, const char *log_path)
{
	int status;
	if (waitpid(pid, &status, WNOHANG) == 0)
		return true;
	fprintf(stderr, "bench: cachewarp exited early (status %d); its log: %s\n", status, log_path);
	return false;
}

typedef struct poller {
	const char *cache_path;
	int64_t first_id;         /* the first row of this workload */
	int64_t next_id;          /* the next row not yet seen */
	int64_t last_id;          /* written by the writer as it goes */
	atomic_int writing_done;  /* set when the writer has committed everything */
	double *latency_ms;       /* one per row, indexed by id - first_id */
	double deadline_s;        /* poller gives up after the writer is done and this passes */
} poller_t;

/*
 * Rows become visible in commit order (one writer, the hub keeps commit order,
 * a target batch is one transaction), so each poll looks rows up by key from
 * the next unseen id until one is missing; an index lookup per row.
 */
static void *poll_main(void *p)
{
	poller_t *pl = p;
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	while (sqlite3_open_v2(pl->cache_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		usleep(POLL_US);
	}
	sqlite3_busy_timeout(db, 1000);
	if (sqlite3_prepare_v2(db, "SELECT sent_at FROM " ENTITY " WHERE id = ?", -1, &stmt,
	                       NULL) != SQLITE_OK) {
		fprintf(stderr, "bench: poller: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	for (;;) {
		int64_t last = atomic_load(&pl->writing_done) ? pl->last_id : INT64_MAX;
		while (pl->next_id <= last) {
			char key[32];
			snprintf(key, sizeof key, "%lld", (long long)pl->next_id);
			sqlite3_bind_text(stmt, 1, key, -1, SQLITE_TRANSIENT);
			int rc = sqlite3_step(stmt);
			int64_t now = cw_bench_wall_us();
			bool found = rc == SQLITE_ROW;
			if (found)
				pl->latency_ms[pl->next_id - pl->first_id] =
					(double)(now - sqlite3_column_int64(stmt, 0)) / 1000.0;
			sqlite3_reset(stmt);
			if (!found)
				break;
			pl->next_id++;
		}
		if (atomic_load(&pl->writing_done) &&
		    (pl->next_id > pl->last_id || cw_bench_now_s() > pl->deadline_s))
			break;
		usleep(POLL_US);
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

typedef struct latency_result {
	double rate;        /* rows/s the writer achieved */
	long long written, seen;
	double p50, p99, max;
	double first_ms;              /* the workload's first row */
	double steady_p99;            /* p99 of the rows written after the first 5 s */
	double cpu_s;                 /* the daemon's CPU time during the workload */
} latency_result_t;

static latency_result_t latency(PGconn *conn, const char *cache_path, int64_t first_id,
                                int rate, int seconds)
{
	int per_tick = rate * TICK_MS / 1000;
	long ticks = (long)seconds * 1000 / TICK_MS;
	long long total = (long long)per_tick * ticks;
	poller_t pl = {.cache_path = cache_path, .first_id = first_id, .next_id = first_id,
	               .last_id = first_id - 1,
	               .latency_ms = cw_xcalloc((size_t)total, sizeof(double))};
	pthread_t thread;
	pthread_create(&thread, NULL, poll_main, &pl);
	PGresult *res = PQprepare(conn, "ins", "INSERT INTO public." ENTITY
	                          " (id, name, score, payload, updated_at, sent_at) SELECT "
	                          ROW_EXPR ", $3::bigint FROM generate_series($1::bigint, "
	                          "$2::bigint) g", 3, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench: prepare: %s", PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	double t0 = cw_bench_now_s();
	int64_t id = first_id;
	for (long t = 0; t < ticks; t++) {
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		char lo[32], hi[32], stamp[32];
		snprintf(lo, sizeof lo, "%lld", (long long)id);
		snprintf(hi, sizeof hi, "%lld", (long long)(id + per_tick - 1));
		/* The stamp is taken last, just before the statement (autocommit) is sent. */
		snprintf(stamp, sizeof stamp, "%lld", (long long)cw_bench_wall_us());
		const char *params[] = {lo, hi, stamp};
		res = PQexecPrepared(conn, "ins", 3, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			fprintf(stderr, "bench: insert: %s", PQerrorMessage(conn));
			exit(1);
		}
		PQclear(res);
		id += per_tick;
		next.tv_nsec += TICK_MS * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
	}
	double elapsed = cw_bench_now_s() - t0;
	pl.last_id = id - 1;
	pl.deadline_s = cw_bench_now_s() + 120.0;
	atomic_store(&pl.writing_done, 1);
	pthread_join(thread, NULL);
	exec_sql(conn, "DEALLOCATE ins");

	latency_result_t r = {.rate = (double)total / elapsed, .written = total,
	                      .seen = pl.next_id - first_id};
	long long warm = (long long)rate * 5;
	r.steady_p99 = -1;
	if (getenv("CW_BENCH_TRACE") != NULL) {
		/* The worst latency of each second's rows, to see whether stalls recur. */
		printf("worst latency per second of rows (ms):");
		for (long long first = 0; first < r.seen; first += rate) {
			double worst = 0;
			for (long long i = first; i < first + rate && i < r.seen; i++)
				worst = pl.latency_ms[i] > worst ? pl.latency_ms[i] : worst;
			printf(" %.0f", worst);
		}
		printf("\n");
	}
	if (r.seen > warm) {
		size_t n = (size_t)(r.seen - warm);
		double *steady = cw_xcalloc(n, sizeof(double));
		memcpy(steady, pl.latency_ms + warm, n * sizeof(double));
		qsort(steady, n, sizeof(double), cmp_double);
		r.steady_p99 = steady[(size_t)((double)n * 0.99)];
		free(steady);
	}
	if (r.seen > 0) {
		r.first_ms = pl.latency_ms[0];
		qsort(pl.latency_ms, (size_t)r.seen, sizeof(double), cmp_double);
		r.p50 = pl.latency_ms[(size_t)((double)r.seen * 0.50)];
		r.p99 = pl.latency_ms[(size_t)((double)r.seen * 0.99)];
		r.max = pl.latency_ms[r.seen - 1];
	}
	free(pl.latency_ms);
	return r;
}

/*
 * Polls the cache until it holds rows rows; the seconds since s0, or -1 when
 * the daemon died. *hub_s is when the hub's oplog held them all.
 */
static double wait_snapshot(pid_t pid, double s0, const char *cache_path, const char *hub_url,
                            long rows, const char *log_path, double *hub_s)
{
	PGconn *hub = PQconnectdb(hub_url);
	if (PQstatus(hub) != CONNECTION_OK)
		fprintf(stderr, "bench: hub: %s", PQerrorMessage(hub));
	/*
	 * The oplog has no statistics yet while the snapshot fills it, so the
	 * planner takes `id > $1` for a third of the table and scans all of it,
	 * in parallel, every 50 ms: cores the pipeline it measures needs.
	 */
	PQclear(PQexec(hub, "SET enable_seqscan = off; SET max_parallel_workers_per_gather = 0"));
	long long hub_upserts = 0, hub_max_id = 0;
	double snapshot_s = -1;
	*hub_s = -1;
	while (cache_rows(cache_path, rows, true) < rows) {
		if (!daemon_alive(pid, log_path))
			goto done;
		if (*hub_s < 0 && hub_upserts_since(hub, &hub_max_id, &hub_upserts) >= rows)
			*hub_s = cw_bench_now_s() - s0;
		usleep(SNAPSHOT_POLL_US);
	}
	snapshot_s = cw_bench_now_s() - s0;
	if (*hub_s < 0)
		*hub_s = snapshot_s;
done:
	PQfinish(hub);
	return snapshot_s;
}

/* Inserts rows rows (ids from first_id) into the source, in transactions of 10,000. */
static void insert_rows(PGconn *conn, int64_t first_id, long rows)
{
	for (long done = 0; done < rows; done += 10000) {
		long n = rows - done < 10000 ? rows - done : 10000;
		char *sql = cw_xasprintf("INSERT INTO public." ENTITY " (id, name, score, payload, "
		                         "updated_at) SELECT " ROW_EXPR " FROM generate_series(%lld, %lld) g",
		                         (long long)(first_id + done), (long long)(first_id + done + n - 1));
		exec_sql(conn, sql);
		free(sql);
	}
}

/* Polls until row `last` is in the cache: true, or false when the daemon died first. */
static bool wait_cached(pid_t pid, const char *cache_path, const char *log_path, int64_t last)
{
	while (cache_rows(cache_path, (long)last, false) != 1) {
		if (!daemon_alive(pid, log_path))
			return false;
		usleep(LAST_ROW_POLL_US);
	}
	return true;
}

/*
 * Inserts rows more rows (ids from first_id) in transactions of 10,000 with
 * the daemon live; the seconds from the first insert until the last row is in
 * the cache, or -1 when the daemon died.
 */
static double stream_inserts(PGconn *conn, pid_t pid, const char *cache_path, const char *log_path,
                             int64_t first_id, long rows)
{
	double t0 = cw_bench_now_s();
	insert_rows(conn, first_id, rows);
	if (!wait_cached(pid, cache_path, log_path, first_id + rows - 1))
		return -1;
	return cw_bench_now_s() - t0;
}

static void print_latency_row(int rate, int seconds, const latency_result_t *lat, long rss_kib)
{
	printf("| %d rows/s for %d s (achieved %.0f/s, %lld/%lld seen) | p50 %.1f ms, "
	       "p99 %.1f ms, max %.1f ms | %.1f MiB |\n", rate, seconds, lat->rate, lat->seen,
	       lat->written, lat->p50, lat->p99, lat->max, (double)rss_kib / 1024.0);
}

/*
 * The test cluster runs with synchronous_commit=off, where a commit's WAL
 * waits for the WAL writer (up to wal_writer_delay, 200 ms) before the
 * walsender may decode it; the latency writer commits as an application on a
 * default server does, unless CW_BENCH_SYNC_COMMIT says otherwise.
 */
static void set_sync_commit(PGconn *conn)
{
	const char *sync_commit = getenv("CW_BENCH_SYNC_COMMIT") ? getenv("CW_BENCH_SYNC_COMMIT")
	                                                          : "on";
	char *set_sync = cw_xasprintf("SET synchronous_commit = '%s'", sync_commit);
	exec_sql(conn, set_sync);
	free(set_sync);
	printf("latency writer: synchronous_commit = %s, a transaction every %d ms\n", sync_commit,
	       TICK_MS);
}

/* Creates the source table and loads rows 1..rows; the seconds it took. */
static double load_source(PGconn *conn, long rows)
{
	/* sent_at: the writer's wall clock in microseconds (NULL for snapshot rows). */
	exec_sql(conn, "CREATE TABLE public." ENTITY " (id bigint PRIMARY KEY, name text NOT NULL, "
	         "score double precision NOT NULL, payload jsonb NOT NULL, "
	         "updated_at timestamptz NOT NULL, sent_at bigint)");
	double l0 = cw_bench_now_s();
	char *load = cw_xasprintf("INSERT INTO public." ENTITY " (id, name, score, payload, "
	                          "updated_at) SELECT " ROW_EXPR " FROM generate_series(1, %ld) g",
	                          rows);
	exec_sql(conn, load);
	exec_sql(conn, "VACUUM ANALYZE public." ENTITY);
	free(load);
	return cw_bench_now_s() - l0;
}

/* The daemon's configuration: every tuning key at its default. */
static void write_config(const char *path, const char *hub_url, const char *source_url,
                         const char *dir)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		perror("bench: config");
		exit(1);
	}
	fprintf(f, "hub: {url: '%s'}\n"
	           "sources:\n  - {name: app, type: postgres, url: '%s'}\n"
	           "entities:\n  - {name: " ENTITY ", source: app, table: public." ENTITY "}\n"
	           "targets:\n  - {name: local, type: sqlite, dir: '%s/dbs'}\n"
	           "api: {listen: '127.0.0.1:0'}\n"
	           "log: {level: info, format: json}\n", hub_url, source_url, dir);
	/* Settings to measure against the defaults, e.g. "apply: {batch_size: 5000}". */
	if (getenv("CW_BENCH_CONFIG") != NULL)
		fprintf(f, "%s\n", getenv("CW_BENCH_CONFIG"));
	fclose(f);
}

/* SIGTERM, then up to 30 s for the exit; whether it exited 0, and how, in text. */
static bool stop_daemon(pid_t pid, char *text, size_t size)
{
	double k0 = cw_bench_now_s();
	kill(pid, SIGTERM);
	int status = 0;
	pid_t waited;
	while ((waited = waitpid(pid, &status, WNOHANG)) == 0 && cw_bench_now_s() - k0 < 30.0)
		usleep(20000);
	if (waited == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(text, size, "still running after 30 s (killed)");
		return false;
	}
	if (WIFEXITED(status))
		snprintf(text, size, "exit %d after %.2f s", WEXITSTATUS(status), cw_bench_now_s() - k0);
	else
		snprintf(text, size, "killed by signal %d", WTERMSIG(status));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* The CPU a phase cost: the daemon's, and each cluster's (-1: not measured). */
typedef struct phase_cpu {
	double daemon, source, hub;
} phase_cpu_t;

typedef struct cluster_dirs {
	char source[560];   /* data directories; "" when not ours to measure */
	char hub[560];
} cluster_dirs_t;

static phase_cpu_t phase_cpu_now(pid_t pid, const cluster_dirs_t *dirs)
{
	return (phase_cpu_t){cw_bench_cpu_s(pid), cw_bench_cluster_cpu_s(dirs->source),
	                     cw_bench_cluster_cpu_s(dirs->hub)};
}

/*
 * Where a phase's CPU went, per 1M rows: the source's cluster (the
 * walsender; in phase 3 the writer's backend too), the hub's, the daemon's
 * and all of them; and the ceiling that sum puts on rows/s with every core
 * busy. With CW_BENCH_HUB=same the hub's CPU is inside the source's.
 */
static void phase_cpu_figures(const char *workload, phase_cpu_t from, phase_cpu_t to, long rows)
{
	double per = 1e6 / (double)rows;
	double all = to.daemon - from.daemon;
	if (from.source >= 0.0 && to.source >= 0.0) {
		cw_bench_figure(workload, "source cluster CPU per 1M rows", "s",
		                (to.source - from.source) * per, NULL);
		all += to.source - from.source;
	}
	if (from.hub >= 0.0 && to.hub >= 0.0) {
		cw_bench_figure(workload, "hub cluster CPU per 1M rows", "s",
		                (to.hub - from.hub) * per, NULL);
		all += to.hub - from.hub;
	}
	cw_bench_figure(workload, "all CPU per 1M rows", "s", all * per, NULL);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (all > 0.0)
		cw_bench_figure(workload, "rows/s with every core busy", "rows/s",
		                (double)cores * (double)rows / all, NULL);
	printf("  CPU per 1M rows: all %.2f s (source cluster %.2f, hub cluster %.2f, cachewarp "
	       "%.2f); %ld cores allow at most %.0f rows/s\n", all * per,
	       from.source >= 0.0 ? (to.source - from.source) * per : -1.0,
	       from.hub >= 0.0 ? (to.hub - from.hub) * per : -1.0,
	       (to.daemon - from.daemon) * per, cores, all > 0.0 ? (double)cores * (double)rows / all : 0.0);
}

int main(void)
{
	long rows = cw_bench_env_long("CW_BENCH_ROWS", 1000000, 1, 1000000000L);
	int seconds = (int)cw_bench_env_long("CW_BENCH_SECONDS", 30, 1, 3600);
	const char *source_dir = getenv("CW_SOURCE_DIR") ? getenv("CW_SOURCE_DIR") : ".";
	char *binary = getenv("CW_BINARY") ? cw_xstrdup(getenv("CW_BINARY"))
	                                   : cw_xasprintf("%s/build/cachewarp", source_dir);
	if (access(binary, X_OK) != 0) {
		fprintf(stderr, "bench: \"%s\" is not executable (make build, or set CW_BINARY)\n",
		        binary);
		return 1;
	}
	char dir[] = "/tmp/cw-bench-pipeline-XXXXXX";
	if (mkdtemp(dir) == NULL) {
		perror("bench: mkdtemp");
		return 1;
	}
	cw_testsrv_t srv;
	if (cw_testpg_start(&srv) != 0)
		return 1;
	PGconn *conn = PQconnectdb(srv.url);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "bench: %s", PQerrorMessage(conn));
		return 1;
	}
	char *version = cw_testpg_query(srv.url, "SHOW server_version");
	cw_bench_hub_t bench_hub;
	if (cw_bench_hub_open(&bench_hub, srv.url) != 0)
		return 1;
	const char *hub_url = bench_hub.url;
	cluster_dirs_t dirs = {"", ""};
	snprintf(dirs.source, sizeof dirs.source, "%s/data", srv.dir);
	if (bench_hub.cluster.dir[0] != '\0')
		snprintf(dirs.hub, sizeof dirs.hub, "%s/data", bench_hub.cluster.dir);

	double load_s = load_source(conn, rows);
	char *row_bytes = cw_testpg_query(srv.url, "SELECT avg(length(b::text))::int FROM "
	                                  "public." ENTITY " b");

	char *config_path = cw_xasprintf("%s/cachewarp.yaml", dir);
	char *log_path = cw_xasprintf("%s/cachewarp.log", dir);
	char *cache_path = cw_xasprintf("%s/dbs/%s/db.sqlite", dir, ENTITY);
	write_config(config_path, hub_url, srv.url, dir);

	printf("machine: %ld cores, PostgreSQL %s, cachewarp \"%s\"\n",
	       sysconf(_SC_NPROCESSORS_ONLN), version, binary);
	printf("loaded %ld rows (%s bytes each as text) in %.1f s\n", rows, row_bytes, load_s);
	fflush(stdout);

	/* 1. Snapshot: exec to every row in the cache. */
	double s0 = cw_bench_now_s();
	pid_t pid = start_daemon(binary, config_path, log_path);
	double hub_s, snapshot_s = wait_snapshot(pid, s0, cache_path, hub_url, rows, log_path,
	                                         &hub_s);
	if (snapshot_s < 0)
		return 1;
	long rss_snapshot = cw_bench_peak_rss_kib(pid);
	double cpu_snapshot = cw_bench_cpu_s(pid);
	printf("snapshot: %ld rows in %.2f s = %.0f rows/s (all in the hub after %.2f s = "
	       "%.0f rows/s); cachewarp CPU %.1f s\n", rows, snapshot_s, (double)rows / snapshot_s,
	       hub_s, (double)rows / hub_s, cpu_snapshot);
	fflush(stdout);
	cw_bench_figure("snapshot", "rows/s to SQLite", "rows/s", (double)rows / snapshot_s, NULL);
	cw_bench_figure("snapshot", "rows/s to the hub", "rows/s", (double)rows / hub_s, NULL);
	cw_bench_figure("snapshot", "CPU per 1M rows", "s", cpu_snapshot * 1e6 / (double)rows, NULL);
	cw_bench_figure("snapshot", "peak RSS", "MiB", (double)rss_snapshot / 1024.0, NULL);
	cw_bench_stages_t stages = {srv.url, ENTITY, hub_url, cache_path, log_path, dir, rows, 1000};
	settle(conn, hub_url);
	cw_bench_snapshot_stages(&stages);

	/* 2. Latency at 1k then 10k rows/s, ids after the snapshot's. */
	set_sync_commit(conn);
	int rates[] = {1000, 10000};
	latency_result_t lat[2];
	long rss_lat[2];
	int64_t first_id = rows + 1;
	for (int i = 0; i < 2; i++) {
		double cpu0 = cw_bench_cpu_s(pid);
		lat[i] = latency(conn, cache_path, first_id, rates[i], seconds);
		lat[i].cpu_s = cw_bench_cpu_s(pid) - cpu0;
		first_id += lat[i].written;
		rss_lat[i] = cw_bench_peak_rss_kib(pid);
		printf("latency at %d rows/s: achieved %.0f rows/s, %lld/%lld rows seen, p50 %.1f ms, "
		       "p99 %.1f ms, max %.1f ms; first row %.1f ms", rates[i], lat[i].rate,
		       lat[i].seen, lat[i].written, lat[i].p50, lat[i].p99, lat[i].max,
		       lat[i].first_ms);
		if (lat[i].steady_p99 >= 0)
			printf(", p99 after the first 5 s %.1f ms", lat[i].steady_p99);
		printf("\n");
		printf("  cachewarp CPU during it: %.1f s\n", lat[i].cpu_s);
		fflush(stdout);
		char workload[48];
		snprintf(workload, sizeof workload, "latency at %d rows/s", rates[i]);
		cw_bench_figure(workload, "p50", "ms", lat[i].p50, NULL);
		cw_bench_figure(workload, "p99", "ms", lat[i].p99, NULL);
		cw_bench_figure(workload, "max", "ms", lat[i].max, NULL);
		cw_bench_figure(workload, "peak RSS", "MiB", (double)rss_lat[i] / 1024.0, NULL);
		if (!daemon_alive(pid, log_path))
			return 1;
	}

	/* 3. Streaming inserts, end to end, after the latency rows. */
	phase_cpu_t stream0 = phase_cpu_now(pid, &dirs);
	double cpu0 = stream0.daemon;
	double stream_s = stream_inserts(conn, pid, cache_path, log_path, first_id, rows);
	if (stream_s < 0)
		return 1;
	phase_cpu_t stream1 = phase_cpu_now(pid, &dirs);
	double cpu_stream = stream1.daemon - cpu0;
	long rss_stream = cw_bench_peak_rss_kib(pid);
	printf("streaming inserts: %ld rows in transactions of 10000, in SQLite after %.2f s = "
	       "%.0f rows/s; cachewarp CPU %.1f s\n", rows, stream_s, (double)rows / stream_s,
	       cpu_stream);
	cw_bench_figure("end to end insert", "rows/s", "rows/s", (double)rows / stream_s,
	                "reference insert/rows/s");
	cw_bench_figure("end to end insert", "CPU per 1M rows", "s", cpu_stream * 1e6 / (double)rows,
	                NULL);
	cw_bench_figure("end to end insert", "peak RSS", "MiB", (double)rss_stream / 1024.0, NULL);
	phase_cpu_figures("end to end insert", stream0, stream1, rows);

	char exit_text[64];
	bool clean = stop_daemon(pid, exit_text, sizeof exit_text);

	/*
	 * 3b. The same, caught up: N more rows written while the daemon is
	 * stopped, the source checkpointed, then timed from the daemon's exec
	 * until the last row is in the cache, as the pgoutput reference and the
	 * capture benchmark time theirs (written first, then streamed). Phase 3
	 * times the writer too, on the same two cores.
	 */
	first_id += rows;
	insert_rows(conn, first_id, rows);
	cw_bench_checkpoint(conn);
	double c0 = cw_bench_now_s();
	/* The daemon starts from zero: only the clusters have spent CPU before. */
	phase_cpu_t catchup0 = {0.0, cw_bench_cluster_cpu_s(dirs.source),
	                        cw_bench_cluster_cpu_s(dirs.hub)};
	pid = start_daemon(binary, config_path, log_path);
	if (!wait_cached(pid, cache_path, log_path, first_id + rows - 1))
		return 1;
	double catchup_s = cw_bench_now_s() - c0;
	phase_cpu_t catchup1 = phase_cpu_now(pid, &dirs);
	double cpu_catchup = catchup1.daemon;
	long rss_catchup = cw_bench_peak_rss_kib(pid);
	printf("caught-up inserts: %ld rows written with the daemon stopped, in SQLite %.2f s "
	       "after its start = %.0f rows/s; cachewarp CPU %.1f s\n", rows, catchup_s,
	       (double)rows / catchup_s, cpu_catchup);
	cw_bench_figure("end to end catch-up insert", "rows/s", "rows/s", (double)rows / catchup_s,
	                "reference insert/rows/s");
	cw_bench_figure("end to end catch-up insert", "CPU per 1M rows", "s",
	                cpu_catchup * 1e6 / (double)rows, NULL);
	cw_bench_figure("end to end catch-up insert", "peak RSS", "MiB",
	                (double)rss_catchup / 1024.0, NULL);
	phase_cpu_figures("end to end catch-up insert", catchup0, catchup1, rows);
	char catchup_exit[64];
	clean = stop_daemon(pid, catchup_exit, sizeof catchup_exit) && clean;

	printf("\n| workload | figure | peak RSS (VmHWM) |\n|---|---|---|\n");
	printf("| snapshot %ld rows: exec to all in SQLite | %.0f rows/s (%.2f s) | %.1f MiB |\n",
	       rows, (double)rows / snapshot_s, snapshot_s, (double)rss_snapshot / 1024.0);
	printf("| (same run) exec to all in the hub | %.0f rows/s (%.2f s) | |\n",
	       (double)rows / hub_s, hub_s);
	for (int i = 0; i < 2; i++)
		print_latency_row(rates[i], seconds, &lat[i], rss_lat[i]);
	printf("| streaming inserts %ld rows: first insert to all in SQLite | %.0f rows/s (%.2f s) | "
	       "%.1f MiB |\n", rows, (double)rows / stream_s, stream_s, (double)rss_stream / 1024.0);
	printf("| caught-up inserts %ld rows: daemon start to all in SQLite | %.0f rows/s (%.2f s) | "
	       "%.1f MiB |\n", rows, (double)rows / catchup_s, catchup_s,
	       (double)rss_catchup / 1024.0);
	printf("| SIGTERM | %s; after the catch-up: %s | |\n", exit_text, catchup_exit);
	printf("(latency resolution: the poller reads every %d ms, and the stamp is taken before "
	       "the insert is sent, so each figure includes the insert's own execution)\n",
	       POLL_US / 1000);

	PQfinish(conn);
	cw_bench_hub_close(&bench_hub);
	cw_testpg_stop(&srv);
	if (clean && getenv("CW_BENCH_KEEP") == NULL)
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		printf("daemon log kept: %s\n", log_path);
	free(cache_path);
	free(log_path);
	free(config_path);
	free(row_bytes);
	free(version);
	free(binary);
	return clean ? 0 : 1;
}
