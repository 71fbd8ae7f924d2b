/*
 * Integration tests of the oplog writer and reader against a real
 * PostgreSQL: COPY escaping round trip, ids seen exactly once and in order
 * while several processes write (a reader of some entities, and one of
 * every entity while entities get their first change), checkpoint atomicity when a writer is
 * killed before COMMIT, rollback of failed batches, LISTEN wake-up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/change.h"
#include "core/entity.h"
#include "core/mem.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/metadata.h"
#include "hub/migrations.h"
#include "hub/oplog_reader.h"
#include "hub/oplog_writer.h"
#include "testsrv.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NWRITERS 4
#define NBATCHES 200
#define ROWS_PER_WRITER 500   /* batch i carries 1 + i % 4 rows: 200 + 50 * 6 */

typedef cw_testhub_t fixture_t;

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void push(cw_change_batch_t *batch, cw_op_t op, const char *entity, const char *doc_id,
                 const char *data, const char *source_pos, int64_t created_at_us)
{
	cw_change_t change = {0};
	change.op = op;
	change.entity = cw_xstrdup(entity);
	change.doc_id = cw_xstrdup(doc_id);
	change.data = cw_xstrdup(data);
	change.version = 1;
	change.source_pos = cw_xstrdup(source_pos);
	change.created_at_us = created_at_us;
	cw_change_batch_push(batch, &change);
}

static void add_entity(cw_hub_t *hub, const char *name, cw_entity_status_t status)
{
	cw_column_t column = {(char *)"doc", CW_COL_JSONB, (char *)"doc"};
	cw_entity_t entity = {(char *)name, (char *)"shop", (char *)name, NULL, &column, 1,
	                      status, 1, NULL, 0,
	                      CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_err_t err = {0};
	bool created = false;
	assert_int_equal(cw_entity_store_upsert(hub, &entity, &created, &err), 0);
}

static void add_live_entity(cw_hub_t *hub, const char *name)
{
	add_entity(hub, name, CW_ENTITY_LIVE);
}

static int setup(void **state)
{
	fixture_t *fx = cw_xcalloc(1, sizeof *fx);
	if (cw_testhub_start(fx, true) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	cw_testhub_stop(*state);
	free(*state);
	return 0;
}

static void assert_json_equal(const char *got, const char *want)
{
	json_error_t jerr;
	json_t *a = json_loads(got, JSON_DECODE_INT_AS_REAL, &jerr);
	json_t *b = json_loads(want, JSON_DECODE_INT_AS_REAL, &jerr);
	assert_non_null(a);
	assert_non_null(b);
	if (!json_equal(a, b))
		fail_msg("json differs: got %s want %s", got, want);
	json_decref(a);
	json_decref(b);
}

static void hostile_values_round_trip_through_copy(void **state)
{
	fixture_t *fx = *state;
	static const char *const doc_ids[] = {
		"tab\there", "new\nline", "cr\rx", "back\\slash", "\\N", "\\.", "end\\",
		"quote\"s' and `ticks`", "unicodé ☃ 𝄞", "", "  spaces  ", "a\\tb literal",
	};
	static const char *const data[] = {
		"{\"s\": \"tab\\there\"}",
		"{\"s\": \"a\\nb\\r\\n\"}",
		"{\"s\": \"\\\\\", \"t\": \"\\\\N\"}",
		"{\t\"ws\":\n[1,\r\n2]\t}",
		"{\"u\": \"\\u2603 ☃ 𝄞\", \"q\": \"\\\"'\"}",
		"{\"nested\": {\"k\": null, \"b\": true, \"n\": -1.5e3}}",
		"{\"s\": \"\\\\.\"}",
		"{\"s\": \"end\\\\\"}",
		"{}",
		"{\"e\": \"\"}",
		"{\"bs\": \"\\\\\\\\\"}",
		"{\"s\": \"a\\\\tb\"}",
	};
	const size_t n = sizeof doc_ids / sizeof doc_ids[0];
	cw_err_t err = {0};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	cw_change_batch_t got = CW_CHANGE_BATCH_INIT;
	add_live_entity(fx->hub, "hostile");
	for (size_t i = 0; i < n; i++)
		push(&batch, CW_OP_UPSERT, "hostile", doc_ids[i], data[i], doc_ids[i],
		     INT64_C(1714566600123456) - (int64_t)i * 1000001);
	/* Stamps to the microsecond far from now: 2300, 1900, around 1970 and 2000. */
	push(&batch, CW_OP_UPSERT, "hostile", "future", "{}", NULL, INT64_C(10413792000000001));
	push(&batch, CW_OP_UPSERT, "hostile", "past", "{}", NULL, INT64_C(-2208988799999999));
	push(&batch, CW_OP_UPSERT, "hostile", "y2k", "{}", NULL, INT64_C(946684799999999));
	push(&batch, CW_OP_DELETE, "hostile", "tab\there", NULL, NULL, -1);
	push(&batch, CW_OP_SWEEP, "hostile", NULL, NULL, "sweep\tpos", 1);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	cw_oplog_append_stats_t stats;
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, &stats, &err), 0);
	assert_int_equal(stats.appended, n + 5);
	const char *entities[] = {"hostile"};
	assert_int_equal(cw_oplog_fetch(fx->hub, entities, 1, 0, 1000, &got, &err), 0);
	assert_int_equal(got.len, n + 5);
	for (size_t i = 0; i < got.len; i++) {
		const cw_change_t *want = &batch.items[i], *have = &got.items[i];
		assert_true(have->oplog_id > (i ? got.items[i - 1].oplog_id : 0));
		assert_int_equal(have->op, want->op);
		assert_string_equal(have->entity, "hostile");
		if (want->doc_id == NULL)
			assert_null(have->doc_id);
		else
			assert_string_equal(have->doc_id, want->doc_id);
		if (want->data == NULL)
			assert_null(have->data);
		else
			assert_string_equal(have->data, want->data);   /* byte for byte */
		if (want->source_pos == NULL)
			assert_null(have->source_pos);
		else
			assert_string_equal(have->source_pos, want->source_pos);
		assert_int_equal(have->created_at_us, want->created_at_us);
		assert_int_equal(have->version, 1);
	}
	cw_oplog_writer_free(writer);
	cw_change_batch_free(&got);
	cw_change_batch_free(&batch);
}

/*
 * A page for several entities (`run --entity a --entity c`) holds theirs only,
 * in id order across them, at most limit rows; a name listed twice is read once.
 */
static void subset_pages_merge_entities_in_id_order(void **state)
{
	fixture_t *fx = *state;
	static const char *const names[] = {"subset_a", "subset_b", "subset_c"};
	cw_err_t err = {0};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (size_t i = 0; i < 3; i++)
		add_live_entity(fx->hub, names[i]);
	for (int i = 0; i < 30; i++) {
		char doc_id[16];
		snprintf(doc_id, sizeof doc_id, "%d", i);
		push(&batch, CW_OP_UPSERT, names[i % 3], doc_id, "{}", doc_id, 1);
	}
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	const char *wanted[] = {"subset_c", "subset_a", "subset_c"};
	int64_t after = 0;
	int seen = 0, next_doc = 0;
	for (;;) {
		cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
		assert_int_equal(cw_oplog_fetch(fx->hub, wanted, 3, after, 7, &page, &err), 0);
		assert_true(page.len <= 7);
		size_t len = page.len;
		for (size_t i = 0; i < len; i++) {
			const cw_change_t *change = &page.items[i];
			if (next_doc % 3 == 1)
				next_doc++;   /* subset_b's */
			char doc_id[16];
			snprintf(doc_id, sizeof doc_id, "%d", next_doc);
			assert_true(change->oplog_id > after);
			assert_string_equal(change->doc_id, doc_id);
			assert_string_equal(change->entity, names[next_doc % 3]);
			after = change->oplog_id;
			next_doc++;
			seen++;
		}
		cw_change_batch_free(&page);
		if (len == 0)
			break;
	}
	assert_int_equal(seen, 20);
	/* Every page of a subset and of every entity is prepared once per connection. */
	cw_change_batch_t all = CW_CHANGE_BATCH_INIT;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(cw_oplog_fetch(fx->hub, wanted, 1, 0, 7, &all, &err), 0);
		cw_change_batch_free(&all);
		assert_int_equal(cw_oplog_fetch(fx->hub, NULL, 0, 0, 7, &all, &err), 0);
		cw_change_batch_free(&all);
	}
	assert_true(cw_testhub_int(fx->hub, "SELECT count(*) FROM pg_prepared_statements "
	                           "WHERE statement LIKE '%cachewarp.oplog%id > $1%'") >= 2);
	cw_oplog_writer_free(writer);
	cw_change_batch_free(&batch);
}

#define OPLOG_SEQUENCE_LAST \
	"SELECT last_value FROM pg_sequences WHERE schemaname || '.' || sequencename = " \
	"pg_get_serial_sequence('cachewarp.oplog', 'id')"

/*
 * The writer draws a block of ids for a batch under the oplog lock and writes
 * them itself: its rows' ids follow each other in batch order, the ids of
 * changes it staged are a gap, and a later insert that draws from the
 * identity (a promotion) gets larger ones.
 */
static void writer_writes_a_block_of_ids_drawn_under_the_lock(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	add_live_entity(fx->hub, "block_live");
	add_entity(fx->hub, "block_pending", CW_ENTITY_PENDING);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	static const char *const order[] = {"block_live", "block_live", "block_pending",
	                                    "block_live", "block_pending", "block_live"};
	for (int i = 0; i < 6; i++) {
		char doc_id[16];
		snprintf(doc_id, sizeof doc_id, "%d", i);
		push(&batch, CW_OP_UPSERT, order[i], doc_id, "{}", doc_id, 1);
	}
	long long before = cw_testhub_int(fx->hub, OPLOG_SEQUENCE_LAST);
	cw_oplog_append_stats_t stats = {0, 0, 0};
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, &stats, &err), 0);
	assert_int_equal(stats.appended, 4);
	assert_int_equal(stats.staged, 2);
	assert_int_equal(cw_testhub_int(fx->hub, OPLOG_SEQUENCE_LAST), before + 6);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(DISTINCT d) FROM (SELECT id - row_number() OVER (ORDER BY doc_id::int) "
		"AS d FROM cachewarp.oplog WHERE entity = 'block_live') AS ids"), 1);
	char *first = cw_xasprintf("SELECT min(id) - %lld FROM cachewarp.oplog "
	                           "WHERE entity = 'block_live'", before);
	assert_int_equal(cw_testhub_int(fx->hub, first), 1);
	free(first);
	int64_t promoted = 0;
	assert_int_equal(cw_oplog_promote_staged(fx->hub, "block_pending", &promoted, &err), 0);
	assert_int_equal(promoted, 2);
	char *after = cw_xasprintf("SELECT count(*) FROM cachewarp.oplog WHERE entity = "
	                           "'block_pending' AND id > %lld", before + 6);
	assert_int_equal(cw_testhub_int(fx->hub, after), 2);
	free(after);
	/* A checkpoint alone draws no id. */
	long long drawn = cw_testhub_int(fx->hub, OPLOG_SEQUENCE_LAST);
	cw_change_batch_t empty = CW_CHANGE_BATCH_INIT;
	assert_int_equal(cw_oplog_append(writer, &empty, "block_checkpoint", "{\"lsn\": \"0/1\"}",
	                                 NULL, &err), 0);
	assert_int_equal(cw_testhub_int(fx->hub, OPLOG_SEQUENCE_LAST), drawn);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.metadata "
	                                "WHERE key = 'block_checkpoint'"), 1);
	cw_oplog_writer_free(writer);
	cw_change_batch_free(&batch);
}

static void checkpoint_commits_with_the_batch(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	char *json = NULL;
	add_live_entity(fx->hub, "ckpt");
	push(&batch, CW_OP_UPSERT, "ckpt", "1", "{\"a\": 1}", "lsn/1", 0);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	assert_int_equal(cw_oplog_append(writer, &batch, "ckpt_source", "{\"lsn\": \"0/16B3748\"}",
	                                 NULL, &err), 0);
	assert_int_equal(cw_metadata_get(fx->hub, "ckpt_source", &json, &err), 0);
	assert_json_equal(json, "{\"lsn\": \"0/16B3748\"}");
	free(json);
	/* A batch that fails leaves neither rows nor the new checkpoint. */
	long long rows = cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.oplog");
	cw_change_batch_clear(&batch);
	push(&batch, CW_OP_UPSERT, "ckpt", "2", "{\"a\": 2}", NULL, 0);
	push(&batch, CW_OP_UPSERT, "ckpt", "3", NULL, NULL, 0);   /* refused: no data */
	assert_int_equal(cw_oplog_append(writer, &batch, "ckpt_source", "{\"lsn\": \"0/FFFF\"}",
	                                 NULL, &err), CW_EDB);
	assert_non_null(strstr(err.message, "could not append to the oplog"));
	cw_change_batch_clear(&batch);
	push(&batch, CW_OP_UPSERT, "nosuchentity", "4", "{}", NULL, 0);
	assert_int_equal(cw_oplog_append(writer, &batch, "ckpt_source", "{\"lsn\": \"0/FFFF\"}",
	                                 NULL, &err), CW_ENOTFOUND);
	assert_string_equal(err.message,
	                    "could not append to the oplog: entity \"nosuchentity\" is not in the hub");
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.oplog"), rows);
	assert_int_equal(cw_metadata_get(fx->hub, "ckpt_source", &json, &err), 0);
	assert_json_equal(json, "{\"lsn\": \"0/16B3748\"}");
	free(json);
	/* The connection is usable again after a failed batch. */
	cw_change_batch_clear(&batch);
	push(&batch, CW_OP_UPSERT, "ckpt", "5", "{}", NULL, 0);
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	cw_oplog_writer_free(writer);
	cw_change_batch_free(&batch);
}

/* Test hook of the writer processes: a random pause while holding the lock. */
static void random_pause(cw_oplog_hook_point_t point, void *arg)
{
	(void)point;
	unsigned *seed = arg;
	usleep((useconds_t)(rand_r(seed) % 1000));
}

/*
 * Runs in a forked child: appends NBATCHES batches as writer k to entity
 * (NULL: an entity of its own, "writer_<k>", whose first change comes after
 * a pause of k * 40 ms). Returns an exit status.
 */
static int writer_process(const char *url, int k, const char *entity)
{
	char own[16];
	if (entity == NULL) {
		snprintf(own, sizeof own, "writer_%d", k);
		entity = own;
		usleep((useconds_t)k * 40000);
	}
	cw_err_t err = {0};
	unsigned seed = (unsigned)getpid();
	cw_hub_t *hub = cw_hub_connect(url, &err);
	if (hub == NULL) {
		fprintf(stderr, "writer %d: %s\n", k, err.message);
		return 1;
	}
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_oplog_writer_set_hook(writer, random_pause, &seed);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	int seq = 0, status = 0;
	for (int i = 0; i < NBATCHES && status == 0; i++) {
		cw_change_batch_clear(&batch);
		for (int r = 0; r <= i % 4; r++, seq++) {
			char doc_id[32], data[64];
			snprintf(doc_id, sizeof doc_id, "%d-%d", k, seq);
			snprintf(data, sizeof data, "{\"writer\": %d, \"seq\": %d}", k, seq);
			push(&batch, CW_OP_UPSERT, entity, doc_id, data, NULL, 0);
		}
		char key[32];
		snprintf(key, sizeof key, "writer_%d", k);
		if (cw_oplog_append(writer, &batch, key, "{}", NULL, &err) != 0) {
			fprintf(stderr, "writer %d: %s\n", k, err.message);
			status = 1;
		}
	}
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);
	cw_hub_close(hub);
	return status;
}

/* Checks one page: ids strictly increase past *last, each doc seen once. */
static size_t consume_page(const cw_change_batch_t *page, int64_t *last,
                           bool seen[NWRITERS][ROWS_PER_WRITER])
{
	for (size_t i = 0; i < page->len; i++) {
		const cw_change_t *change = &page->items[i];
		int k = -1, seq = -1;
		if (change->oplog_id <= *last)
			fail_msg("id %lld after %lld", (long long)change->oplog_id, (long long)*last);
		*last = change->oplog_id;
		assert_int_equal(sscanf(change->doc_id, "%d-%d", &k, &seq), 2);
		assert_true(k >= 0 && k < NWRITERS && seq >= 0 && seq < ROWS_PER_WRITER);
		if (seen[k][seq])
			fail_msg("doc %s seen twice", change->doc_id);
		seen[k][seq] = true;
	}
	return page->len;
}

/*
 * Forks NWRITERS writer processes (entity as writer_process) and reads
 * through reader until they are done: every id once, in order.
 */
static void read_while_processes_write(fixture_t *fx, cw_oplog_reader_t *reader,
                                       const char *entity)
{
	static bool seen[NWRITERS][ROWS_PER_WRITER];
	cw_err_t err = {0};
	pid_t pids[NWRITERS];
	int running = NWRITERS;
	memset(seen, 0, sizeof seen);
	int64_t last = 0;   /* past the earlier tests' changes */
	assert_int_equal(cw_oplog_last_id(fx->hub, &last, &err), 0);
	for (int k = 0; k < NWRITERS; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0)
			_exit(writer_process(fx->srv.url, k, entity));
	}
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	size_t total = 0;
	int64_t deadline = monotonic_ms() + 300000;
	for (;;) {
		bool writers_done = running == 0;   /* decided before the read */
		cw_change_batch_clear(&page);
		assert_int_equal(cw_oplog_read(reader, last, 97, &page, &err), 0);
		total += consume_page(&page, &last, seen);
		if (page.len > 0)
			continue;
		if (writers_done)
			break;
		for (int k = 0; k < NWRITERS; k++) {
			int status;
			if (pids[k] > 0 && waitpid(pids[k], &status, WNOHANG) == pids[k]) {
				assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
				pids[k] = 0;
				running--;
			}
		}
		assert_true(monotonic_ms() < deadline);
		assert_true(cw_oplog_wait(reader, 200, &err) >= 0);
	}
	assert_int_equal(total, NWRITERS * ROWS_PER_WRITER);
	int64_t last_id = 0;
	assert_int_equal(cw_oplog_last_id(fx->hub, &last_id, &err), 0);
	assert_int_equal(last_id, last);
	cw_change_batch_free(&page);
}

static void readers_see_every_id_once_in_order_while_processes_write(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	add_live_entity(fx->hub, "orders");
	const char *entities[] = {"orders"};
	cw_hub_t *reader_hub = cw_hub_connect(fx->srv.url, &err);
	assert_non_null(reader_hub);
	cw_oplog_reader_t *reader = cw_oplog_reader_new(reader_hub, entities, 1, &err);
	assert_non_null(reader);
	read_while_processes_write(fx, reader, "orders");
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM cachewarp.metadata WHERE key LIKE 'writer_%'"), NWRITERS);
	cw_oplog_reader_free(reader);
	cw_hub_close(reader_hub);
}

/* Heap blocks of cachewarp.oplog that the hub connection's finished statements touched. */
static int64_t oplog_heap_blocks(cw_hub_t *hub)
{
	assert_int_equal(cw_testhub_int(hub, "SELECT 1 FROM pg_stat_force_next_flush()"), 1);
	return cw_testhub_int(hub, "SELECT heap_blks_read + heap_blks_hit FROM pg_statio_user_tables "
	                      "WHERE relid = 'cachewarp.oplog'::regclass");
}

/*
 * A page of one entity, and one of every entity, is a range of the
 * (entity, id) index whatever PostgreSQL estimates: on an oplog never analyzed (a new hub, its first
 * snapshot) it estimated a few hundred rows and planned a bitmap scan of the
 * entity's whole backlog and a sort, for every page.
 */
static void entity_page_reads_a_range_whatever_the_estimates(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	add_live_entity(fx->hub, "unseen");
	assert_int_equal(cw_hub_command(fx->hub, "ALTER TABLE cachewarp.oplog SET "
	                                "(autovacuum_enabled = false)", 0, NULL, "alter", &err), 0);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (int i = 0; i < 30000; i++) {
		char doc_id[16];
		snprintf(doc_id, sizeof doc_id, "%d", i);
		push(&batch, CW_OP_UPSERT, "unseen", doc_id,
		     "{\"padding\": \"0123456789012345678901234567890123456789\"}", NULL, 0);
	}
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	/* As if never analyzed (the test cluster's superuser may do this). */
	assert_int_equal(cw_hub_command(fx->hub, "DELETE FROM pg_statistic WHERE starelid = "
	                                "'cachewarp.oplog'::regclass", 0, NULL, "forget statistics",
	                                &err), 0);
	assert_int_equal(cw_hub_command(fx->hub, "UPDATE pg_class SET reltuples = -1 "
	                                "WHERE oid = 'cachewarp.oplog'::regclass", 0, NULL,
	                                "forget statistics", &err), 0);
	int64_t after = cw_testhub_int(fx->hub, "SELECT min(id) - 1 FROM cachewarp.oplog "
	                               "WHERE entity = 'unseen'");
	const char *unseen[] = {"unseen"};
	static const size_t named[] = {1, 0};   /* "unseen", then every entity */
	for (size_t i = 0; i < 2; i++) {
		size_t nentities = named[i];
		int64_t before = oplog_heap_blocks(fx->hub);
		cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
		assert_int_equal(cw_oplog_fetch(fx->hub, unseen, nentities, after, 1000, &page, &err), 0);
		assert_int_equal(page.len, 1000);
		cw_change_batch_free(&page);
		int64_t touched = oplog_heap_blocks(fx->hub) - before;
		/* 1,000 rows fill about 20 heap pages; the backlog of "unseen" about 600. */
		if (touched > 100)
			fail_msg("one page of 1,000 changes (%zu entities named) touched %lld heap blocks",
			         nentities, (long long)touched);
	}
	assert_int_equal(cw_hub_command(fx->hub, "ALTER TABLE cachewarp.oplog RESET "
	                                "(autovacuum_enabled)", 0, NULL, "alter", &err), 0);
	assert_int_equal(cw_hub_command(fx->hub, "ANALYZE cachewarp.oplog", 0, NULL, "analyze",
	                                &err), 0);
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);
}

/*
 * A reader of every entity, while entities get their first change between
 * its pages (the oplog has no index on id: a page lists the entities with
 * changes, then reads theirs up to the last id it saw): every id once, in
 * order, none of a newcomer skipped.
 */
static void every_entity_reader_misses_no_newcomer_while_processes_write(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	for (int k = 0; k < NWRITERS; k++) {
		char name[16];
		snprintf(name, sizeof name, "writer_%d", k);
		add_live_entity(fx->hub, name);
	}
	cw_hub_t *reader_hub = cw_hub_connect(fx->srv.url, &err);
	assert_non_null(reader_hub);
	cw_oplog_reader_t *reader = cw_oplog_reader_new(reader_hub, NULL, 0, &err);
	assert_non_null(reader);
	read_while_processes_write(fx, reader, NULL);
	cw_oplog_reader_free(reader);
	cw_hub_close(reader_hub);
}

typedef struct newcomer {
	cw_oplog_writer_t *writer;   /* on a connection of its own */
	int calls;
} newcomer_t;

/* Page hook: once, the first change of entity "late" commits, then one of "early". */
static void commit_newcomer(void *arg)
{
	newcomer_t *nc = arg;
	if (nc->calls++ > 0)
		return;
	cw_err_t err = {0};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "late", "l1", "{}", NULL, 0);
	assert_int_equal(cw_oplog_append(nc->writer, &batch, NULL, NULL, NULL, &err), 0);
	cw_change_batch_clear(&batch);
	push(&batch, CW_OP_UPSERT, "early", "e2", "{}", NULL, 0);
	assert_int_equal(cw_oplog_append(nc->writer, &batch, NULL, NULL, NULL, &err), 0);
	cw_change_batch_free(&batch);
}

/*
 * A page of every entity lists the entities with changes first, then reads
 * theirs: an entity whose first change commits between the two, followed
 * by a change of a listed one, is not skipped. The page stops at the last
 * id listed; the next page has both, in id order.
 */
static void every_entity_page_stops_where_its_list_of_entities_did(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	add_live_entity(fx->hub, "early");
	add_live_entity(fx->hub, "late");
	int64_t after = 0;
	assert_int_equal(cw_oplog_last_id(fx->hub, &after, &err), 0);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "early", "e1", "{}", NULL, 0);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	cw_hub_t *other = cw_hub_connect(fx->srv.url, &err);
	assert_non_null(other);
	newcomer_t nc = {cw_oplog_writer_new(other), 0};
	cw_oplog_set_page_hook(commit_newcomer, &nc);
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	assert_int_equal(cw_oplog_fetch(fx->hub, NULL, 0, after, 100, &page, &err), 0);
	cw_oplog_set_page_hook(NULL, NULL);
	assert_int_equal(nc.calls, 1);
	assert_int_equal(page.len, 1);
	assert_string_equal(page.items[0].doc_id, "e1");
	int64_t next = page.items[0].oplog_id;
	cw_change_batch_free(&page);
	assert_int_equal(cw_oplog_fetch(fx->hub, NULL, 0, next, 100, &page, &err), 0);
	assert_int_equal(page.len, 2);
	assert_string_equal(page.items[0].doc_id, "l1");
	assert_string_equal(page.items[1].doc_id, "e2");
	assert_true(page.items[0].oplog_id < page.items[1].oplog_id);
	int64_t last_id = 0;
	assert_int_equal(cw_oplog_last_id(fx->hub, &last_id, &err), 0);
	assert_int_equal(last_id, page.items[1].oplog_id);
	cw_change_batch_free(&page);
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(nc.writer);
	cw_oplog_writer_free(writer);
	cw_hub_close(other);
}

static void count_call(void *arg)
{
	(*(int *)arg)++;
}

/* Reads every page of every entity after `after` through round, in pages of 7; the last id. */
static int64_t read_round(cw_hub_t *hub, cw_oplog_round_t *round, int64_t after,
                          const char *entity, int *seen)
{
	cw_err_t err = {0};
	for (;;) {
		cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
		assert_int_equal(cw_oplog_fetch_round(hub, round, after, 7, &page, &err), 0);
		size_t len = page.len;
		for (size_t i = 0; i < len; i++) {
			assert_true(page.items[i].oplog_id > after);
			after = page.items[i].oplog_id;
			*seen += strcmp(page.items[i].entity, entity) == 0;
		}
		cw_change_batch_free(&page);
		if (len == 0)
			return after;
	}
}

/*
 * A round of pages of every entity lists the entities once, not before every
 * page; rows committed during the round, of a new entity too, come in the
 * next round; a page before the round's start lists them again.
 */
static void rounds_list_entities_once_and_miss_no_newcomer(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	add_live_entity(fx->hub, "round_a");
	add_live_entity(fx->hub, "round_late");
	int64_t start = 0;
	assert_int_equal(cw_oplog_last_id(fx->hub, &start, &err), 0);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (int i = 0; i < 30; i++) {
		char doc_id[16];
		snprintf(doc_id, sizeof doc_id, "%d", i);
		push(&batch, CW_OP_UPSERT, "round_a", doc_id, "{}", NULL, 0);
	}
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	cw_change_batch_free(&batch);
	int listed = 0, seen = 0, late = 0;
	cw_oplog_set_page_hook(count_call, &listed);
	cw_oplog_round_t round = CW_OPLOG_ROUND_INIT;
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	assert_int_equal(cw_oplog_fetch_round(fx->hub, &round, start, 7, &page, &err), 0);
	assert_int_equal(page.len, 7);
	int64_t after = page.items[6].oplog_id;
	cw_change_batch_free(&page);
	/* Committed during the round: a newcomer's first rows and more of round_a. */
	push(&batch, CW_OP_UPSERT, "round_late", "l1", "{}", NULL, 0);
	push(&batch, CW_OP_UPSERT, "round_a", "30", "{}", NULL, 0);
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	cw_change_batch_free(&batch);
	after = read_round(fx->hub, &round, after, "round_late", &late);
	cw_oplog_set_page_hook(NULL, NULL);
	assert_int_equal(late, 1);
	/* 31 rows of round_a in 5 pages and the newcomer: one list each round. */
	assert_int_equal(listed, 2);
	int64_t last = 0;
	assert_int_equal(cw_oplog_last_id(fx->hub, &last, &err), 0);
	assert_int_equal(after, last);
	/* From the start again: a new round, the same 32 rows. */
	listed = 0;
	cw_oplog_set_page_hook(count_call, &listed);
	read_round(fx->hub, &round, start, "round_a", &seen);
	cw_oplog_set_page_hook(NULL, NULL);
	assert_int_equal(seen, 31);
	assert_int_equal(listed, 1);
	cw_oplog_round_clear(&round);
	cw_oplog_writer_free(writer);
}

/* Hook of the killed writer: tells the parent it is about to commit, then waits to die. */
static void signal_and_hang(cw_oplog_hook_point_t point, void *arg)
{
	if (point != CW_OPLOG_HOOK_BEFORE_COMMIT)
		return;
	int fd = *(int *)arg;
	(void)!write(fd, "x", 1);
	for (;;)
		pause();
}

static int doomed_writer(const char *url, int fd)
{
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect(url, &err);
	if (hub == NULL)
		return 1;
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_oplog_writer_set_hook(writer, signal_and_hang, &fd);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (int i = 0; i < 3; i++)
		push(&batch, CW_OP_UPSERT, "killed", "doc", "{\"x\": 1}", "killed", 0);
	cw_oplog_append(writer, &batch, "killed_checkpoint", "{\"pos\": 42}", NULL, &err);
	return 2;   /* not reached: the hook never returns */
}

static void writer_killed_before_commit_leaves_neither_rows_nor_checkpoint(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	int fds[2];
	char byte;
	char *json = NULL;
	add_live_entity(fx->hub, "killed");
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(doomed_writer(fx->srv.url, fds[1]));
	}
	close(fds[1]);
	struct pollfd pfd = {.fd = fds[0], .events = POLLIN, .revents = 0};
	assert_int_equal(poll(&pfd, 1, 60000), 1);
	assert_int_equal(read(fds[0], &byte, 1), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(fds[0]);
	/* The next writer waits for the dead backend's lock, then commits. */
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "killed", "after", "{}", "after", 0);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM cachewarp.oplog WHERE source_pos = 'killed'"), 0);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM cachewarp.oplog WHERE entity = 'killed'"), 1);
	assert_int_equal(cw_metadata_get(fx->hub, "killed_checkpoint", &json, &err), CW_ENOTFOUND);
	cw_oplog_writer_free(writer);
	cw_change_batch_free(&batch);
}

static int notifying_writer(const char *url)
{
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect(url, &err);
	if (hub == NULL)
		return 1;
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "wake", "1", "{}", NULL, 0);
	int rc = cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err);
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);
	cw_hub_close(hub);
	return rc == 0 ? 0 : 1;
}

static void listen_wakes_a_waiting_reader(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	add_live_entity(fx->hub, "wake");
	cw_hub_t *reader_hub = cw_hub_connect(fx->srv.url, &err);
	assert_non_null(reader_hub);
	const char *entities[] = {"wake"};
	cw_oplog_reader_t *reader = cw_oplog_reader_new(reader_hub, entities, 1, &err);
	assert_non_null(reader);
	assert_int_equal(cw_oplog_wait(reader, 50, &err), 0);   /* nothing yet: times out */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(notifying_writer(fx->srv.url));
	/* 1 means woken by the notification; the 5 s timeout is only the poll fallback. */
	assert_int_equal(cw_oplog_wait(reader, 5000, &err), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	assert_int_equal(cw_oplog_read(reader, 0, 10, &page, &err), 0);
	assert_int_equal(page.len, 1);
	assert_string_equal(page.items[0].doc_id, "1");
	cw_change_batch_free(&page);
	cw_oplog_reader_free(reader);
	cw_hub_close(reader_hub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hostile_values_round_trip_through_copy),
		cmocka_unit_test(subset_pages_merge_entities_in_id_order),
		cmocka_unit_test(writer_writes_a_block_of_ids_drawn_under_the_lock),
		cmocka_unit_test(checkpoint_commits_with_the_batch),
		cmocka_unit_test(readers_see_every_id_once_in_order_while_processes_write),
		cmocka_unit_test(entity_page_reads_a_range_whatever_the_estimates),
		cmocka_unit_test(every_entity_reader_misses_no_newcomer_while_processes_write),
		cmocka_unit_test(every_entity_page_stops_where_its_list_of_entities_did),
		cmocka_unit_test(rounds_list_entities_once_and_miss_no_newcomer),
		cmocka_unit_test(writer_killed_before_commit_leaves_neither_rows_nor_checkpoint),
		cmocka_unit_test(listen_wakes_a_waiting_reader),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
