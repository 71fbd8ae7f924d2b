/*
 * Benchmark of the SQLite target end to end through a real hub (not a test:
 * it prints figures and asserts nothing):
 *
 *   1. apply rate: the hub holds N changes (default 1,000,000: upserts of
 *      N/2 documents, then updates of random ones); the target starts from
 *      position 0 and the time until its position reaches the head is taken;
 *   2. latency: a writer appends changes at a steady rate (1k/s, then 10k/s)
 *      in batches every 10 ms, each stamped with its commit time as a
 *      source's would be; a poller on a thread of its own reads the cache's
 *      metadata oplog_id through its own read-only connection every
 *      millisecond, and the time from the stamp to the change being visible
 *      there is recorded per batch, split into the append (stamp to the hub's
 *      COMMIT) and the target (the hub's COMMIT to visible). The poller must
 *      not share the writer's thread: an append slower than 10 ms would hold
 *      the poll back until the writer caught up with its schedule, and every
 *      batch applied meanwhile would count as late.
 *
 * It starts a throwaway PostgreSQL with tests/support/pg.sh (cw_testpg_start
 * finds it). Usage: bench.sqlite_hub [N [SECONDS]];
 * CW_BENCH_TRACE=1 prints the worst latency of each second.
 */
#define _XOPEN_SOURCE 700
#include "apply/cachedb.h"
#include "apply/target.h"
#include "core/change.h"
#include "core/config.h"
#include "benchlib.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/oplog_reader.h"
#include "hub/oplog_writer.h"

#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 10       /* the writer appends a batch every 10 ms */
#define POLL_US 1000     /* the poller reads the cache's position every millisecond */

/* This run's random sequence (cw_bench_next_random). */
static uint64_t rng_state = CW_BENCH_RANDOM_SEED;

static void push(cw_change_batch_t *batch, uint64_t doc, uint64_t n, int64_t created_at_us)
{
	char doc_id[24], data[160];
	snprintf(doc_id, sizeof doc_id, "k%010llu", (unsigned long long)doc);
	snprintf(data, sizeof data, "{\"title\": \"title %llu\", \"qty\": %llu, \"price\": %llu.25, "
	         "\"tags\": [%llu, \"x\"]}", (unsigned long long)n, (unsigned long long)doc,
	         (unsigned long long)n % 1000, (unsigned long long)doc % 7);
	cw_bench_push_upsert(batch, "bench", doc_id, data, 0, created_at_us);
}

/* Appends batch; the hub's head after it. committed_us (optional): wall time the COMMIT returned. */
static int64_t append(cw_oplog_writer_t *writer, cw_hub_t *hub, cw_change_batch_t *batch,
                      int64_t *committed_us)
{
	cw_err_t err = {0};
	if (cw_oplog_append(writer, batch, NULL, NULL, NULL, &err) != 0) {
		fprintf(stderr, "append: %s\n", err.message);
		exit(1);
	}
	if (committed_us != NULL)
		*committed_us = cw_bench_wall_us();
	cw_change_batch_clear(batch);
	int64_t head = 0;
	cw_oplog_last_id(hub, &head, &err);
	return head;
}

static int64_t visible_id(sqlite3 *reader)
{
	sqlite3_stmt *stmt = NULL;
	int64_t id = -1;
	if (sqlite3_prepare_v2(reader, "SELECT value FROM metadata WHERE key = 'oplog_id'", -1, &stmt,
	                       NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
		id = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return id;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/*
 * The visibility poller: a thread of its own, so a writer that falls behind
 * its schedule (a slow append) never delays the moment a batch is seen.
 * Batches become visible in id order (one writer; the target commits its
 * position with the rows), so it waits for them in order and records, per
 * batch, the wall time it first saw it.
 */
typedef struct poller {
	const char *cache_path;
	pthread_mutex_t mutex;      /* guards the fields below */
	const int64_t *ids;         /* per batch: its last oplog id */
	int64_t *seen_us;           /* per batch: when the poller first saw it */
	int written;                /* batches appended so far */
	int seen;                   /* batches seen in the cache so far */
	bool writing_done;
	double deadline_s;          /* the poller gives up after the writer is done and this passes */
} poller_t;

static void *poll_main(void *arg)
{
	poller_t *pl = arg;
	sqlite3 *reader = NULL;
	sqlite3_open_v2(pl->cache_path, &reader, SQLITE_OPEN_READONLY, NULL);
	sqlite3_busy_timeout(reader, 1000);
	for (;;) {
		int64_t visible = visible_id(reader), now = cw_bench_wall_us();
		pthread_mutex_lock(&pl->mutex);
		while (pl->seen < pl->written && pl->ids[pl->seen] <= visible)
			pl->seen_us[pl->seen++] = now;
		bool finished = pl->writing_done &&
		                (pl->seen == pl->written || cw_bench_now_s() > pl->deadline_s);
		pthread_mutex_unlock(&pl->mutex);
		if (finished)
			break;
		usleep(POLL_US);
	}
	sqlite3_close(reader);
	return NULL;
}

/* Sorts ms (n values) and prints them as p50 / p99 / max. */
static void print_spread(const char *what, double *ms, int n)
{
	qsort(ms, (size_t)n, sizeof *ms, cmp_double);
	printf("  %s: p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms\n", what, ms[n / 2], ms[n * 99 / 100],
	       ms[n - 1]);
}

/* Per batch of a steady run: its last id, its stamp, when the hub committed it. */
typedef struct steady_run {
	int rate;
	int ticks;
	int64_t *ids;
	int64_t *stamps;
	int64_t *committed_us;
	double achieved;            /* changes/s the writer achieved */
} steady_run_t;

/* Appends rate changes/s for run->ticks batches of TICK_MS, publishing each to the poller. */
static void write_steadily(cw_hub_t *hub, steady_run_t *run, poller_t *pl, uint64_t docs)
{
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	int per_tick = run->rate * TICK_MS / 1000;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	double start = cw_bench_now_s();
	for (int t = 0; t < run->ticks; t++) {
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		/* The stamp is the batch's commit time at its source, taken before the append. */
		int64_t stamp = cw_bench_wall_us(), committed_us = 0;
		for (int i = 0; i < per_tick; i++)
			push(&batch, cw_bench_next_random(&rng_state) % docs, (uint64_t)t, stamp);
		int64_t id = append(writer, hub, &batch, &committed_us);
		pthread_mutex_lock(&pl->mutex);
		run->stamps[t] = stamp;
		run->committed_us[t] = committed_us;
		run->ids[t] = id;
		pl->written = t + 1;
		pthread_mutex_unlock(&pl->mutex);
		next.tv_nsec += TICK_MS * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
	}
	run->achieved = (double)run->ticks * per_tick / (cw_bench_now_s() - start);
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);
}

/* Prints the run's latencies (seen_us: when each batch was seen) and their figures. */
static void report(const steady_run_t *run, const int64_t *seen_us, int seen)
{
	int ticks = run->ticks;
	if (seen < ticks)
		fprintf(stderr, "latency at %d changes/s: %d of %d batches never became visible\n",
		        run->rate, ticks - seen, ticks);
	double *lat = cw_xcalloc((size_t)ticks, sizeof *lat);
	double *append_ms = cw_xcalloc((size_t)ticks, sizeof *append_ms);
	double *target_ms = cw_xcalloc((size_t)ticks, sizeof *target_ms);
	for (int t = 0; t < ticks; t++) {
		/* A batch never seen counts as the poller's deadline. */
		int64_t at = t < seen ? seen_us[t] : run->stamps[t] + 120 * 1000000LL;
		lat[t] = (double)(at - run->stamps[t]) / 1000.0;
		append_ms[t] = (double)(run->committed_us[t] - run->stamps[t]) / 1000.0;
		target_ms[t] = (double)(at - run->committed_us[t]) / 1000.0;
	}
	if (getenv("CW_BENCH_TRACE") != NULL) {
		/* The worst of each second's batches, to see whether stalls recur. */
		printf("worst latency per second (ms, stamp to visible / hub COMMIT to visible):");
		for (int first = 0; first < ticks; first += 1000 / TICK_MS) {
			double worst = 0, worst_target = 0;
			for (int t = first; t < first + 1000 / TICK_MS && t < ticks; t++) {
				worst = lat[t] > worst ? lat[t] : worst;
				worst_target = target_ms[t] > worst_target ? target_ms[t] : worst_target;
			}
			printf(" %.0f/%.0f", worst, worst_target);
		}
		printf("\n");
	}
	printf("latency at %6d changes/s (achieved %6.0f/s, %d batches):\n", run->rate, run->achieved,
	       ticks);
	print_spread("stamp to visible in the cache", lat, ticks);
	print_spread("  the append (stamp to hub COMMIT)", append_ms, ticks);
	print_spread("  the target (hub COMMIT to visible)", target_ms, ticks);
	fflush(stdout);
	char workload[48];
	snprintf(workload, sizeof workload, "hub to SQLite at %d changes/s", run->rate);
	cw_bench_figure(workload, "p50", "ms", lat[ticks / 2], NULL);
	cw_bench_figure(workload, "p99", "ms", lat[ticks * 99 / 100], NULL);
	cw_bench_figure(workload, "max", "ms", lat[ticks - 1], NULL);
	cw_bench_figure(workload, "p99 hub COMMIT to visible", "ms", target_ms[ticks * 99 / 100],
	                NULL);
	free(lat);
	free(append_ms);
	free(target_ms);
}

/*
 * Steady writes at rate changes/s for seconds: prints p50/p99/max of the
 * visibility latency (stamp to seen in the cache) and of its two legs, the
 * append (stamp to the hub's COMMIT returned) and the target (the hub's
 * COMMIT to seen in the cache).
 */
static void latency(cw_hub_t *hub, const char *cache_path, int rate, int seconds, uint64_t docs)
{
	steady_run_t run = {.rate = rate, .ticks = seconds * 1000 / TICK_MS};
	run.ids = cw_xcalloc((size_t)run.ticks, sizeof *run.ids);
	run.stamps = cw_xcalloc((size_t)run.ticks, sizeof *run.stamps);
	run.committed_us = cw_xcalloc((size_t)run.ticks, sizeof *run.committed_us);
	poller_t pl = {.cache_path = cache_path, .ids = run.ids,
	               .seen_us = cw_xcalloc((size_t)run.ticks, sizeof(int64_t))};
	pthread_mutex_init(&pl.mutex, NULL);
	pthread_t thread;
	if (pthread_create(&thread, NULL, poll_main, &pl) != 0) {
		fprintf(stderr, "could not start the poller\n");
		exit(1);
	}
	write_steadily(hub, &run, &pl, docs);
	pthread_mutex_lock(&pl.mutex);
	pl.writing_done = true;
	pl.deadline_s = cw_bench_now_s() + 120.0;
	pthread_mutex_unlock(&pl.mutex);
	pthread_join(thread, NULL);
	pthread_mutex_destroy(&pl.mutex);
	report(&run, pl.seen_us, pl.seen);
	free(pl.seen_us);
	free(run.ids);
	free(run.stamps);
	free(run.committed_us);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	int seconds = argc > 2 ? atoi(argv[2]) : 10;
	cw_cachedb_process_init();   /* as `cachewarp run` */
	char cachedir[] = "/tmp/cw-bench-dbs-XXXXXX";
	if (mkdtemp(cachedir) == NULL)
		return 1;
	cw_testsrv_t pg = {0};
	cw_hub_t *hub = cw_bench_scratch_hub(&pg);
	if (hub == NULL)
		return 1;
	const char *url = pg.url;
	cw_err_t err = {0};
	cw_column_t columns[] = {
		{(char *)"title", CW_COL_TEXT, (char *)"title"},
		{(char *)"qty", CW_COL_INTEGER, (char *)"qty"},
		{(char *)"price", CW_COL_NUMBER, (char *)"price"},
		{(char *)"tags", CW_COL_JSONB, (char *)"tags"},
	};
	if (cw_bench_entity_register(hub, columns, 4) != 0)
		return 1;

	/* 1. The backlog: N/2 documents inserted, then N/2 updates of random ones. */
	uint64_t docs = total / 2 ? total / 2 : 1;
	double took_read = 0;
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	double start = cw_bench_now_s();
	int64_t head = 0;
	for (uint64_t n = 0; n < total; n++) {
		push(&batch, n < docs ? n : cw_bench_next_random(&rng_state) % docs, n, 0);
		if (batch.len == 10000 || n == total - 1)
			head = append(writer, hub, &batch, NULL);
	}
	cw_oplog_writer_free(writer);
	printf("hub filled: %llu changes (%llu inserts, %llu random updates) in %.1f s\n",
	       (unsigned long long)total, (unsigned long long)docs,
	       (unsigned long long)(total - docs), cw_bench_now_s() - start);
	fflush(stdout);

	/* For comparison: reading the same pages without applying them. */
	{
		cw_oplog_reader_t *reader = cw_oplog_reader_new(hub, NULL, 0, &err);
		cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
		int64_t after = 0;
		start = cw_bench_now_s();
		do {
			cw_change_batch_clear(&page);
			if (cw_oplog_read(reader, after, 1000, &page, &err) != 0) {
				fprintf(stderr, "read: %s\n", err.message);
				return 1;
			}
			if (page.len > 0)
				after = page.items[page.len - 1].oplog_id;
		} while (page.len > 0);
		took_read = cw_bench_now_s() - start;
		printf("reading the hub alone, pages of 1000: %.2f s = %.0f changes/s\n", took_read,
		       (double)total / took_read);
		fflush(stdout);
		cw_change_batch_free(&page);
		cw_oplog_reader_free(reader);
	}

	char *yaml = cw_xasprintf("hub:\n  url: %s\ntargets:\n  - name: bench\n    type: sqlite\n"
	                          "    dir: %s\napply: {batch_size: 1000, poll_interval: 1s}\n",
	                          url, cachedir);
	cw_bench_component_t r;
	cw_config_t *config = cw_bench_target_init(&r, CW_TARGET_SQLITE, yaml);
	if (config == NULL)
		return 1;
	cw_metrics_t *metrics = r.ctx.metrics;
	if (cw_bench_component_start(&r) != 0)
		return 1;
	double took = cw_bench_component_wait_position(&r, head);
	printf("apply from the hub: %llu changes in %.2f s = %.0f changes/s (batch_size 1000; "
	       "reading alone took %.0f%% of that)\n", (unsigned long long)total, took,
	       (double)total / took, 100.0 * took_read / took);
	fflush(stdout);
	cw_bench_figure("hub to SQLite apply", "changes/s", "changes/s", (double)total / took, NULL);
	cw_bench_figure("hub to SQLite apply", "hub read alone", "changes/s", (double)total / took_read,
	                NULL);

	/* 2. Steady rates. */
	char *cache_path = cw_xasprintf("%s/bench/db.sqlite", cachedir);
	latency(hub, cache_path, 1000, seconds, docs);
	latency(hub, cache_path, 10000, seconds, docs);

	cw_bench_component_stop(&r);
	cw_metrics_free(metrics);
	cw_config_free(config);
	cw_change_batch_free(&batch);
	cw_hub_close(hub);
	cw_testpg_stop(&pg);
	nftw(cachedir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(cache_path);
	free(yaml);
	return 0;
}
