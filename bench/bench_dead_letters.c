/*
 * Benchmark: the hub's side of dead letters as people and the daemon read
 * them. Plants CW_BENCH_ROWS letters (default 200k, ~150-byte changes)
 * spread over 100 streams (10 targets x 10 entities, one in ten asked to be
 * replayed) in a fresh hub, then measures: paging through all of them 10,000
 * at a time (`deadletter list --limit 10000 --after ID`, GET /v1/deadletters),
 * one page of 100 failed letters of one stream (the default list with
 * --target, --entity and --status), the grouped count the
 * cachewarp_dead_letters gauge runs every 5 s, and asking for the replay of
 * one stream's letters. Prints figures; asserts nothing. Starts its own
 * throwaway PostgreSQL 15 cluster.
 */
#include "benchlib.h"
#include "hub/dead_letters.h"
#include "hub/hub.h"
#include "testsrv.h"

#include <stdio.h>
#include <stdlib.h>

#define STREAMS 100
#define PAGE 10000
#define REPEATS 20

static int plant(cw_hub_t *hub, long rows)
{
	char sql[1024];
	snprintf(sql, sizeof sql,
	         "INSERT INTO cachewarp.dead_letters (target, entity, doc_id, oplog_id, version, op, "
	         "data, stage, error, error_code, status) "
	         "SELECT 't' || (g %% 10), 'e' || ((g / 10) %% 10), g::text, g, 1, 'upsert', "
	         "jsonb_build_object('name', 'customer ' || g, 'balance', g * 3 + 0.25, "
	         "'note', 'lorem ipsum dolor sit amet'), 'write', "
	         "'value too long for type character varying(3)', '22001', "
	         "CASE WHEN g %% 10 = 3 THEN 'replay' ELSE 'failed' END "
	         "FROM generate_series(1, %ld) g; ANALYZE cachewarp.dead_letters", rows);
	double started = cw_bench_now_s();
	if (cw_bench_exec(cw_hub_pgconn(hub), sql, "plant dead letters") != 0)
		return -1;
	printf("planted %ld dead letters over %d streams in %.2fs\n", rows, STREAMS,
	       cw_bench_now_s() - started);
	return 0;
}

static int page_through(cw_hub_t *hub, long rows)
{
	cw_err_t err = {0};
	double started = cw_bench_now_s();
	int64_t after = 0;
	long seen = 0;
	for (;;) {
		cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
		filter.after_id = after;
		filter.limit = PAGE;
		cw_dead_letter_t *letters = NULL;
		size_t count = 0;
		if (cw_dead_letter_list(hub, &filter, &letters, &count, &err) != 0) {
			fprintf(stderr, "bench: %s\n", err.message);
			return -1;
		}
		seen += (long)count;
		if (count > 0)
			after = letters[count - 1].id;
		cw_dead_letter_list_free(letters, count);
		if (count < PAGE)
			break;
	}
	double elapsed = cw_bench_now_s() - started;
	printf("listed %ld of %ld letters in pages of %d: %.2fs = %.0f letters/s\n", seen, rows, PAGE,
	       elapsed, seen / elapsed);
	cw_bench_figure("dead letters list (pages of 10k)", "letters/s", "letters/s", seen / elapsed,
	                NULL);
	return 0;
}

/* Runs step REPEATS times; prints and records the median in milliseconds. */
static int timed(cw_hub_t *hub, const char *workload,
                 int (*step)(cw_hub_t *hub, cw_err_t *err))
{
	double ms[REPEATS];
	cw_err_t err = {0};
	for (int i = 0; i < REPEATS; i++) {
		double started = cw_bench_now_s();
		if (step(hub, &err) != 0) {
			fprintf(stderr, "bench: %s\n", err.message);
			return -1;
		}
		ms[i] = (cw_bench_now_s() - started) * 1000.0;
	}
	for (int i = 1; i < REPEATS; i++)   /* insertion sort: twenty numbers */
		for (int j = i; j > 0 && ms[j] < ms[j - 1]; j--) {
			double t = ms[j];
			ms[j] = ms[j - 1];
			ms[j - 1] = t;
		}
	printf("%s: median %.2f ms of %d (min %.2f, max %.2f)\n", workload, ms[REPEATS / 2], REPEATS,
	       ms[0], ms[REPEATS - 1]);
	cw_bench_figure(workload, "median", "ms", ms[REPEATS / 2], NULL);
	return 0;
}

static int stream_page(cw_hub_t *hub, cw_err_t *err)
{
	cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
	filter.target = "t7";
	filter.entity = "e4";
	filter.status = CW_DEAD_LETTER_FAILED;
	cw_dead_letter_t *letters = NULL;
	size_t count = 0;
	int rc = cw_dead_letter_list(hub, &filter, &letters, &count, err);
	cw_dead_letter_list_free(letters, count);
	return rc;
}

static int gauge_count(cw_hub_t *hub, cw_err_t *err)
{
	cw_dead_letter_stream_count_t *streams = NULL;
	size_t count = 0;
	int rc = cw_dead_letter_count_streams(hub, &streams, &count, err);
	cw_dead_letter_stream_counts_free(streams, count);
	return rc;
}

static int replay_stream(cw_hub_t *hub, cw_err_t *err)
{
	cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
	filter.target = "t2";
	filter.entity = "e5";
	int64_t count = 0;
	return cw_dead_letter_request_replay(hub, &filter, &count, err);
}

int main(void)
{
	long rows = cw_bench_env_long("CW_BENCH_ROWS", 200000, 1000, 100000000);
	cw_testsrv_t pg = {0};
	cw_hub_t *hub = cw_bench_scratch_hub(&pg);
	if (hub == NULL)
		return 1;
	int rc = 1;
	if (plant(hub, rows) == 0 && page_through(hub, rows) == 0 &&
	    timed(hub, "dead letters: one stream's page of 100 failed", stream_page) == 0 &&
	    timed(hub, "dead letters: gauge count per stream", gauge_count) == 0 &&
	    timed(hub, "dead letters: replay one stream", replay_stream) == 0)
		rc = 0;
	cw_hub_close(hub);
	cw_testpg_stop(&pg);
	return rc;
}
