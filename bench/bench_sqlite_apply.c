/*
 * Benchmark of the SQLite target's apply path (not a test: it prints
 * figures and asserts nothing). In one run, on the same machine and files
 * system, it measures:
 *
 *   1. cachewarp: oplog changes (JSON data text, as read from the hub) ->
 *      coalesce -> cw_cache_apply, one transaction per batch of 1000, WAL
 *      checkpoints on the manager's checkpointer thread as in the target:
 *      a) fresh inserts of N rows, b) random-key full-row updates into that
 *      N-row cache, c) UPDATES changes that update UPDATES/10 rows ten times
 *      each, consecutively (what coalescing saves);
 *   2. the bare loop: one prepared INSERT ... ON CONFLICT DO UPDATE per row
 *      with values bound directly (no JSON), a commit every 1000 rows, same
 *      pragmas, on the same table layout (WITHOUT ROWID) and on a rowid
 *      table with a separate primary-key index (what a hand-written cache
 *      usually is): a) fresh inserts, b) random-key updates, c) the ten
 *      updates per row, every one of them written.
 * Prints figure lines (bench/benchlib.h) with the bare loop on the same
 * layout as each figure's reference.
 *
 * Usage: bench.sqlite_apply [ROWS [UPDATES [DIR]]]  (defaults 1000000 200000 /tmp)
 */
#define _XOPEN_SOURCE 700
#include "benchlib.h"
#include "apply/cache_write.h"
#include "apply/cachedb.h"
#include "apply/coalesce.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/mem.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1000

static cw_column_t columns[] = {
	{(char *)"title", CW_COL_TEXT, (char *)"title"},
	{(char *)"qty", CW_COL_INTEGER, (char *)"qty"},
	{(char *)"price", CW_COL_NUMBER, (char *)"price"},
	{(char *)"tags", CW_COL_JSONB, (char *)"tags"},
};
static const cw_entity_t entity = {(char *)"items", (char *)"src", (char *)"items", NULL, columns,
                                   4, CW_ENTITY_LIVE, 1, NULL, 0,
                                   CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Key of row i: fixed width, so key order is numeric order. */
static void key(uint64_t i, char out[24])
{
	snprintf(out, 24, "k%010llu", (unsigned long long)i);
}

/* How write n picks its row. */
typedef enum pattern {
	PATTERN_SEQUENTIAL,   /* row n: fresh inserts */
	PATTERN_RANDOM,       /* a random row of rows: random-key updates */
	PATTERN_TEN_PER_ROW,  /* row n / 10: ten consecutive updates of each row */
} pattern_t;

/* The row number of write n. */
static uint64_t row_of(uint64_t n, uint64_t rows, pattern_t pattern, uint64_t *rng)
{
	switch (pattern) {
	case PATTERN_RANDOM:
		return cw_bench_next_random(rng) % rows;
	case PATTERN_TEN_PER_ROW:
		return n / 10;
	default:
		return n;
	}
}

/* cachewarp's path: batches of changes with JSON data through coalesce and cw_cache_apply. */
static double coalesce_seconds;   /* of the last run_cachewarp: the part spent coalescing */

static double run_cachewarp(cw_cachedb_t *db, cw_cache_t *cache, uint64_t count, uint64_t rows,
                            pattern_t pattern, uint64_t seed, int64_t *oplog_id)
{
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	const cw_change_t *changes[BATCH];
	cw_write_list_t writes = CW_WRITE_LIST_INIT;
	cw_err_t err = {0};
	uint64_t rng = seed;
	double total = 0;
	coalesce_seconds = 0;
	for (uint64_t n = 0; n < count;) {
		cw_change_batch_clear(&batch);
		for (; batch.len < BATCH && n < count; n++) {
			char doc_id[24], data[160];
			uint64_t row = row_of(n, rows, pattern, &rng);
			key(row, doc_id);
			snprintf(data, sizeof data, "{\"title\": \"title %llu\", \"qty\": %llu, "
			         "\"price\": %llu.25, \"tags\": [%llu, \"x\"]}", (unsigned long long)n,
			         (unsigned long long)row, (unsigned long long)n % 1000,
			         (unsigned long long)row % 7);
			cw_bench_push_upsert(&batch, "items", doc_id, data, ++*oplog_id, 0);
		}
		for (size_t i = 0; i < batch.len; i++)
			changes[i] = &batch.items[i];
		double start = cw_bench_now_s();   /* what the apply loop does per batch once it has read it */
		int rc = cw_coalesce(changes, batch.len, cache->applied, &writes, &err);
		coalesce_seconds += cw_bench_now_s() - start;
		if (rc != 0 || cw_cache_apply(cache, &writes, *oplog_id, NULL, &err) != 0) {
			fprintf(stderr, "apply: %s\n", err.message);
			exit(1);
		}
		cw_cachedb_committed(db, cache);   /* as the target does: WAL checkpoints on a thread */
		total += cw_bench_now_s() - start;
		cw_write_list_clear(&writes);
	}
	cw_change_batch_free(&batch);
	return total;
}

static sqlite3 *bare_open(const char *path, bool without_rowid)
{
	sqlite3 *db = NULL;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
	             "PRAGMA cache_size=-32768", NULL, NULL, NULL);
	char *sql = cw_xasprintf("CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, title TEXT, "
	                         "qty INTEGER, price REAL, tags TEXT, _version INTEGER NOT NULL, "
	                         "_oplog_id INTEGER NOT NULL)%s", without_rowid ? " WITHOUT ROWID" : "");
	sqlite3_exec(db, sql, NULL, NULL, NULL);
	free(sql);
	return db;
}

/* The bare loop: bind and step one prepared upsert per row, commit every BATCH rows. */
static double run_bare(sqlite3 *db, uint64_t count, uint64_t rows, pattern_t pattern, uint64_t seed,
                       int64_t *oplog_id)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3_prepare_v2(db, "INSERT INTO items (id, title, qty, price, tags, _version, _oplog_id) "
	                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET "
	                   "title = excluded.title, qty = excluded.qty, price = excluded.price, "
	                   "tags = excluded.tags, _version = excluded._version, "
	                   "_oplog_id = excluded._oplog_id", -1, &stmt, NULL);
	uint64_t rng = seed;
	double start = cw_bench_now_s();
	for (uint64_t n = 0; n < count; n++) {
		if (n % BATCH == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		char doc_id[24], title[32], tags[32];
		uint64_t row = row_of(n, rows, pattern, &rng);
		key(row, doc_id);
		snprintf(title, sizeof title, "title %llu", (unsigned long long)n);
		snprintf(tags, sizeof tags, "[%llu,\"x\"]", (unsigned long long)row % 7);
		sqlite3_bind_text(stmt, 1, doc_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, title, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, (sqlite3_int64)row);
		sqlite3_bind_double(stmt, 4, (double)(n % 1000) + 0.25);
		sqlite3_bind_text(stmt, 5, tags, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 6, 1);
		sqlite3_bind_int64(stmt, 7, ++*oplog_id);
		if (sqlite3_step(stmt) != SQLITE_DONE) {
			fprintf(stderr, "bare: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
		sqlite3_reset(stmt);
		if (n % BATCH == BATCH - 1 || n == count - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	double total = cw_bench_now_s() - start;
	sqlite3_finalize(stmt);
	return total;
}

/* Prints a line, and a figure when workload is not NULL. */
static void report(const char *what, const char *workload, const char *reference, uint64_t count,
                   double seconds)
{
	printf("%-58s %9llu rows %8.2f s %10.0f rows/s\n", what, (unsigned long long)count, seconds,
	       (double)count / seconds);
	fflush(stdout);
	if (workload != NULL)
		cw_bench_figure(workload, "changes/s", "changes/s", (double)count / seconds, reference);
}

int main(int argc, char **argv)
{
	uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	uint64_t updates = argc > 2 ? strtoull(argv[2], NULL, 10) : 200000;
	const char *base = argc > 3 ? argv[3] : "/tmp";
	cw_cachedb_process_init();   /* as `cachewarp run`: the bare reference gets it too */
	char *dir = cw_xasprintf("%s/cw-bench-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	printf("sqlite %s, %llu rows, %llu random-key updates, batches of %d, dir %s\n",
	       sqlite3_libversion(), (unsigned long long)rows, (unsigned long long)updates, BATCH, dir);
	cw_err_t err = {0};
	cw_cachedb_t *db = cw_cachedb_open(dir, 600000, &err);
	cw_cache_t *cache = NULL;
	if (db == NULL || cw_cachedb_acquire(db, &entity, &cache, NULL, &err) != 0) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	int64_t oplog_id = 0;
	report("cachewarp apply: fresh inserts (JSON, coalesce, apply)", "apply insert",
	       "sqlite reference insert/changes/s", rows,
	       run_cachewarp(db, cache, rows, rows, PATTERN_SEQUENTIAL, 1, &oplog_id));
	printf("  of which coalescing (JSON parse, merge, sort): %.2f s\n", coalesce_seconds);
	report("cachewarp apply: random-key updates into the cache", "apply random update",
	       "sqlite reference random update/changes/s", updates,
	       run_cachewarp(db, cache, updates, rows, PATTERN_RANDOM, 2, &oplog_id));
	printf("  of which coalescing (JSON parse, merge, sort): %.2f s\n", coalesce_seconds);
	report("cachewarp apply: 10 consecutive updates per row", "apply 10 updates per row",
	       "sqlite reference 10 updates per row/changes/s", updates,
	       run_cachewarp(db, cache, updates, rows, PATTERN_TEN_PER_ROW, 3, &oplog_id));
	printf("  of which coalescing (JSON parse, merge, sort): %.2f s\n", coalesce_seconds);
	cw_bench_figure("apply", "peak RSS", "MiB", (double)cw_bench_peak_rss_kib(0) / 1024.0, NULL);
	cw_cachedb_close(db);

	static const struct { const char *name, *label; bool without_rowid; } layouts[] = {
		{"same table (WITHOUT ROWID)", "sqlite reference", true},
		{"rowid table + primary key index", NULL, false},
	};
	static const struct { const char *name; pattern_t pattern; } patterns[] = {
		{"insert", PATTERN_SEQUENTIAL},
		{"random update", PATTERN_RANDOM},
		{"10 updates per row", PATTERN_TEN_PER_ROW},
	};
	for (size_t l = 0; l < 2; l++) {
		char *path = cw_xasprintf("%s/bare%zu.sqlite", dir, l);
		sqlite3 *bare = bare_open(path, layouts[l].without_rowid);
		int64_t id = 0;
		for (size_t p = 0; p < 3; p++) {
			char what[96], workload[64];
			snprintf(what, sizeof what, "bare loop, %s: %s", layouts[l].name, patterns[p].name);
			snprintf(workload, sizeof workload, "%s %s", layouts[l].label ? layouts[l].label : "",
			         patterns[p].name);
			report(what, layouts[l].label ? workload : NULL, NULL, p == 0 ? rows : updates,
			       run_bare(bare, p == 0 ? rows : updates, rows, patterns[p].pattern, (uint64_t)p + 1,
			                &id));
		}
		sqlite3_close(bare);
		free(path);
	}
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}
