/*
 * Benchmark of cachewarp verify (not a test: it prints figures and asserts
 * nothing). In one run, on a throwaway PostgreSQL cluster and a SQLite cache
 * in a temporary directory:
 *
 *   1. loads ROWS rows into public.bench_rows (bench/sql, ~200 bytes each)
 *      and writes the cache as the SQLite target would (the source read
 *      through capture's code, coalesced, applied with cw_cache_apply);
 *   2. reference: a bare full read of both sides at once, one thread each —
 *      every row of the table through libpq (a cursor, FETCH 5000, as
 *      verify reads) and every row of the cache through sqlite3_step — and
 *      nothing done with the values;
 *   3. verify of the equal pair (cw_verify_compare over the real sides):
 *      rows verified per second, and the peak RSS growth;
 *   4. DIFFS rows changed in the cache, then verify again: the time to find
 *      them (no re-check wait: nothing is capturing here).
 *
 * Usage: bench.verify [ROWS [DIFFS]]  (defaults 1000000 100; CW_BENCH_ROWS overrides ROWS)
 */
#define _XOPEN_SOURCE 700
#include "benchlib.h"
#include "apply/cache_write.h"
#include "apply/cachedb.h"
#include "apply/coalesce.h"
#include "core/change.h"
#include "core/mem.h"
#include "verify/compare.h"
#include "verify/sides.h"

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1000

static cw_entity_t entity = {"bench_rows", "app", NULL, "public.bench_rows", NULL, 0,
                             CW_ENTITY_LIVE, 1, NULL, 0,
                             CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};

/* Step 1: the source's rows into the cache, 1000 per transaction. */
typedef struct cache_fill {
	cw_cachedb_t *db;
	cw_cache_t *cache;
	cw_change_batch_t batch;
	int64_t oplog_id;
} cache_fill_t;

static void fill_flush(cache_fill_t *fill)
{
	const cw_change_t *changes[BATCH];
	cw_write_list_t writes = CW_WRITE_LIST_INIT;
	cw_err_t err = {0};
	for (size_t i = 0; i < fill->batch.len; i++)
		changes[i] = &fill->batch.items[i];
	if (cw_coalesce(changes, fill->batch.len, fill->cache->applied, &writes, &err) != 0 ||
	    cw_cache_apply(fill->cache, &writes, fill->oplog_id, NULL, &err) != 0) {
		fprintf(stderr, "bench.verify: writing the cache: %s\n", err.message);
		exit(1);
	}
	cw_cachedb_committed(fill->db, fill->cache);
	cw_write_list_clear(&writes);
	cw_change_batch_clear(&fill->batch);
}

static int fill_row(void *arg, const cw_verify_row_t *row)
{
	cache_fill_t *fill = arg;
	cw_bench_push_upsert(&fill->batch, entity.name, row->doc_id, row->data, ++fill->oplog_id, 0);
	if (fill->batch.len == BATCH)
		fill_flush(fill);
	return 0;
}

static int count_row(void *arg, const cw_verify_row_t *row)
{
	(void)row;
	(*(uint64_t *)arg)++;
	return 0;
}

/* Step 2: the bare reads. */
typedef struct bare_read {
	const char *url;       /* PostgreSQL side, or NULL */
	const char *path;      /* SQLite side, or NULL */
	uint64_t rows;
} bare_read_t;

static void *bare_read_main(void *arg)
{
	bare_read_t *rd = arg;
	if (rd->url != NULL) {
		PGconn *conn = PQconnectdb(rd->url);
		cw_bench_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin");
		cw_bench_exec(conn, "DECLARE c NO SCROLL CURSOR FOR SELECT * FROM public.bench_rows",
		              "declare");
		for (;;) {
			PGresult *res = PQexec(conn, "FETCH 5000 FROM c");
			int n = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
			rd->rows += (uint64_t)n;
			PQclear(res);
			if (n == 0)
				break;
		}
		cw_bench_exec(conn, "COMMIT", "commit");
		PQfinish(conn);
		return NULL;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	sqlite3_open_v2(rd->path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_prepare_v2(db, "SELECT * FROM bench_rows", -1, &stmt, NULL);
	while (sqlite3_step(stmt) == SQLITE_ROW)
		rd->rows++;
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static double verify_once(cw_verify_endpoint_t *src, cw_verify_endpoint_t *tgt, uint64_t rows,
                          cw_verify_result_t *result)
{
	cw_verify_compare_opts_t opts = {0};
	opts.expected_rows = rows;
	cw_cancel_t *cancel = cw_cancel_new();
	cw_err_t err = {0};
	double start = cw_bench_now_s();
	if (cw_verify_compare(cw_verify_endpoint_side(src), cw_verify_endpoint_side(tgt), &opts,
	                      cancel, result, &err) != 0) {
		fprintf(stderr, "bench.verify: %s\n", err.message);
		exit(1);
	}
	double took = cw_bench_now_s() - start;
	cw_cancel_free(cancel);
	return took;
}

int main(int argc, char **argv)
{
	long rows = cw_bench_env_long("CW_BENCH_ROWS", argc > 1 ? atol(argv[1]) : 1000000, 1000,
	                              100000000);
	long diffs = argc > 2 ? atol(argv[2]) : 100;
	cw_testsrv_t pg = {0};
	if (cw_testpg_start(&pg) != 0)
		return 1;
	PGconn *conn = PQconnectdb(pg.url);
	double start = cw_bench_now_s();
	if (PQstatus(conn) != CONNECTION_OK || cw_bench_load(conn, "rows_schema.sql", rows) != 0 ||
	    cw_bench_load(conn, "rows_insert.sql", rows) != 0 ||
	    cw_bench_exec(conn, "ANALYZE public.bench_rows", "analyze") != 0) {
		cw_testpg_stop(&pg);
		return 1;
	}
	printf("loaded %ld rows in %.1f s\n", rows, cw_bench_now_s() - start);
	char dir[] = "/tmp/cw-bench-verify-XXXXXX";
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	cw_source_config_t source = {0};
	source.name = "app";
	source.type = CW_SOURCE_POSTGRES;
	source.url = pg.url;
	cw_target_config_t target = {0};
	target.name = "node1";
	target.type = CW_TARGET_SQLITE;
	target.dir = dir;
	cw_err_t err = {0};
	cw_verify_endpoint_t *src = cw_verify_source_open(&source, &entity, &target, &err);
	cache_fill_t fill = {0};
	fill.db = cw_cachedb_open(dir, 600000, &err);
	if (src == NULL || fill.db == NULL ||
	    cw_cachedb_acquire(fill.db, &entity, &fill.cache, NULL, &err) != 0) {
		fprintf(stderr, "bench.verify: %s\n", err.message);
		return 1;
	}
	start = cw_bench_now_s();
	cw_cancel_t *cancel = cw_cancel_new();
	if (cw_verify_endpoint_side(src)->read(src, NULL, NULL, fill_row, &fill, cancel, &err) != 0) {
		fprintf(stderr, "bench.verify: %s\n", err.message);
		return 1;
	}
	if (fill.batch.len > 0)
		fill_flush(&fill);
	cw_cancel_free(cancel);
	cw_change_batch_free(&fill.batch);
	cw_cachedb_close(fill.db);
	printf("wrote the cache in %.1f s\n", cw_bench_now_s() - start);

	char *path = cw_xasprintf("%s/%s/db.sqlite", dir, entity.name);
	bare_read_t sides[2] = {{pg.url, NULL, 0}, {NULL, path, 0}};
	pthread_t threads[2];
	start = cw_bench_now_s();
	for (int i = 0; i < 2; i++)
		pthread_create(&threads[i], NULL, bare_read_main, &sides[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	double bare = cw_bench_now_s() - start;
	printf("bare full read of both sides: %llu + %llu rows in %.2f s\n",
	       (unsigned long long)sides[0].rows, (unsigned long long)sides[1].rows, bare);

	cw_verify_endpoint_t *tgt = cw_verify_target_open(NULL, &target, &entity, &err);
	if (tgt == NULL) {
		fprintf(stderr, "bench.verify: %s\n", err.message);
		return 1;
	}
	/* Where the time goes: each side alone, digests included. */
	for (int i = 0; i < 2; i++) {
		cw_verify_endpoint_t *ep = i == 0 ? src : tgt;
		cw_cancel_t *side_cancel = cw_cancel_new();
		uint64_t count = 0;
		double side_start = cw_bench_now_s();
		cw_verify_endpoint_side(ep)->read(ep, NULL, NULL, count_row, &count, side_cancel, &err);
		printf("  %s side alone: %llu rows in %.2f s\n", i == 0 ? "source" : "target",
		       (unsigned long long)count, cw_bench_now_s() - side_start);
		cw_cancel_free(side_cancel);
	}
	cw_bench_reset_peak_rss(0);
	long rss_before = cw_bench_peak_rss_kib(0);
	cw_verify_result_t result;
	double took = verify_once(src, tgt, (uint64_t)rows, &result);
	long rss_growth = cw_bench_peak_rss_kib(0) - rss_before;
	printf("verify of equal tables: %llu rows in %.2f s (%zu buckets, %zu differing), "
	       "peak RSS +%ld KiB\n", (unsigned long long)result.source_rows, took, result.buckets,
	       result.differing_buckets, rss_growth);

	/* DIFFS rows changed in the cache, spread over the key range. */
	sqlite3 *db = NULL;
	sqlite3_open(path, &db);
	char *sql = cw_xasprintf("UPDATE bench_rows SET name = 'changed' WHERE CAST(id AS INTEGER) "
	                         "%% %ld = 0", rows / diffs > 0 ? rows / diffs : 1);
	sqlite3_exec(db, sql, NULL, NULL, NULL);
	free(sql);
	sqlite3_close(db);
	cw_verify_result_t changed;
	double found = verify_once(src, tgt, (uint64_t)rows, &changed);
	printf("verify with %llu rows changed: found %llu different in %.2f s (%zu differing "
	       "buckets, %llu rows read)\n", (unsigned long long)changed.candidates,
	       (unsigned long long)changed.differences[CW_VERIFY_DIFFERENT], found,
	       changed.differing_buckets, (unsigned long long)changed.rows_read);

	cw_bench_figure("verify reference", "bare full read of both sides", "rows/s",
	                (double)rows / bare, NULL);
	cw_bench_figure("verify", "equal rows", "rows/s", (double)rows / took,
	                "verify reference/bare full read of both sides");
	cw_bench_figure("verify", "peak RSS growth", "MiB", (double)rss_growth / 1024.0, NULL);
	char name[64];
	snprintf(name, sizeof name, "%ld differences found", diffs);
	cw_bench_figure("verify", name, "s", found, NULL);

	cw_verify_endpoint_close(tgt);
	cw_verify_endpoint_close(src);
	free(path);
	PQfinish(conn);
	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	cw_testpg_stop(&pg);
	return 0;
}
