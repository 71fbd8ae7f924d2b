/*
 * Integration tests of the hub's entity store, staging promotion, metadata,
 * quarantine, consumers and retention against a real PostgreSQL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/change.h"
#include "core/entity.h"
#include "core/mem.h"
#include "hub/consumers.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/metadata.h"
#include "hub/migrations.h"
#include "hub/oplog_reader.h"
#include "hub/oplog_writer.h"
#include "testsrv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef cw_testhub_t fixture_t;

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

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void push(cw_change_batch_t *batch, const char *entity, const char *doc_id,
                 int64_t created_at_us)
{
	cw_change_t change = {0};
	change.op = CW_OP_UPSERT;
	change.entity = cw_xstrdup(entity);
	change.doc_id = cw_xstrdup(doc_id);
	change.data = cw_xstrdup("{}");
	change.version = 1;
	change.created_at_us = created_at_us;
	cw_change_batch_push(batch, &change);
}

/* Appends one upsert per doc_id of the space-separated list, in one batch. */
static void append_docs(cw_oplog_writer_t *writer, const char *entity, const char *doc_ids,
                        int64_t created_at_us)
{
	cw_err_t err = {0};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	char *list = cw_xstrdup(doc_ids), *save = NULL;
	for (char *id = strtok_r(list, " ", &save); id; id = strtok_r(NULL, " ", &save))
		push(&batch, entity, id, created_at_us);
	if (cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err) != 0)
		fail_msg("append: %s", err.message);
	free(list);
	cw_change_batch_free(&batch);
}

/* The oplog's "entity:doc_id" sequence after id `after`, space separated (owned). */
static char *oplog_sequence(cw_hub_t *hub, int64_t after)
{
	cw_err_t err = {0};
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	assert_int_equal(cw_oplog_fetch(hub, NULL, 0, after, 1000, &page, &err), 0);
	cw_buf_t out = CW_BUF_INIT;
	for (size_t i = 0; i < page.len; i++)
		cw_buf_appendf(&out, "%s%s:%s", i ? " " : "", page.items[i].entity,
		               page.items[i].doc_id);
	cw_change_batch_free(&page);
	return cw_buf_take(&out);
}

static void make_entity(cw_entity_t *entity, cw_column_t *columns, const char *name,
                        const char *source, cw_entity_status_t status)
{
	columns[0] = (cw_column_t){(char *)"title", CW_COL_TEXT, (char *)"title"};
	columns[1] = (cw_column_t){(char *)"price", CW_COL_NUMBER, (char *)"pricing.amount"};
	*entity = (cw_entity_t){(char *)name, (char *)source, (char *)name, NULL, columns, 2,
	                        status, 1, NULL, 0,
	                        CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
}

static void shapes_are_immutable(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_column_t columns[2];
	cw_entity_t products, stored = {0};
	bool created = false;
	make_entity(&products, columns, "products", "shop", CW_ENTITY_PENDING);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &products, &created, &err), 0);
	assert_true(created);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &products, &created, &err), 0);
	assert_false(created);
	assert_int_equal(cw_entity_store_get(fx->hub, "products", &stored, &err), 0);
	assert_true(cw_entity_shape_equal(&stored, &products));
	assert_int_equal(stored.status, CW_ENTITY_PENDING);
	assert_int_equal(stored.version, 1);
	cw_entity_clear(&stored);

	const char *want = "entity \"products\" already exists with a different shape; shapes "
	                   "are immutable: create a new entity under another name";
	columns[1].path = (char *)"price";
	assert_int_equal(cw_entity_store_upsert(fx->hub, &products, &created, &err), CW_ECONFLICT);
	assert_string_equal(err.message, want);
	assert_false(created);
	columns[1].path = (char *)"pricing.amount";
	products.source = (char *)"other_source";
	assert_int_equal(cw_entity_store_upsert(fx->hub, &products, &created, &err), CW_ECONFLICT);
	products.source = (char *)"shop";
	products.ncolumns = 1;
	assert_int_equal(cw_entity_store_upsert(fx->hub, &products, &created, &err), CW_ECONFLICT);

	products.name = (char *)"Bad-Name";
	assert_int_equal(cw_entity_store_upsert(fx->hub, &products, &created, &err), CW_EINVAL);
	assert_int_equal(cw_entity_store_get(fx->hub, "missing", &stored, &err), CW_ENOTFOUND);
	assert_string_equal(err.message, "entity \"missing\" not found");
}

static void entities_are_listed_deleted_refreshed_and_revived(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_column_t columns[2];
	cw_entity_t items, stored = {0}, *list = NULL;
	size_t count = 0;
	int64_t version = 0;
	bool created = false;
	make_entity(&items, columns, "items", "shop", CW_ENTITY_PENDING);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &items, &created, &err), 0);
	assert_int_equal(cw_entity_store_set_status(fx->hub, "items", CW_ENTITY_SCANNING, &err), 0);
	assert_int_equal(cw_entity_store_bump_version(fx->hub, "items", &version, &err), 0);
	assert_int_equal(version, 2);
	assert_int_equal(cw_entity_store_get(fx->hub, "items", &stored, &err), 0);
	assert_int_equal(stored.status, CW_ENTITY_SCANNING);
	assert_int_equal(stored.version, 2);
	cw_entity_clear(&stored);

	assert_int_equal(cw_entity_store_delete(fx->hub, "items", &err), 0);
	assert_int_equal(cw_entity_store_list(fx->hub, false, &list, &count, &err), 0);
	for (size_t i = 0; i < count; i++)
		assert_string_not_equal(list[i].name, "items");
	cw_entity_store_list_free(list, count);
	assert_int_equal(cw_entity_store_list(fx->hub, true, &list, &count, &err), 0);
	bool found = false;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(list[i].name, "items") == 0) {
			found = true;
			assert_int_equal(list[i].status, CW_ENTITY_DELETED);
			assert_int_equal(list[i].ncolumns, 2);
		}
		if (i > 0)
			assert_true(strcmp(list[i - 1].name, list[i].name) < 0);
	}
	assert_true(found);
	cw_entity_store_list_free(list, count);
	assert_int_equal(cw_entity_store_bump_version(fx->hub, "items", NULL, &err), CW_ENOTFOUND);

	/* Re-adding the same shape brings it back as a new generation. */
	assert_int_equal(cw_entity_store_upsert(fx->hub, &items, &created, &err), 0);
	assert_true(created);
	assert_int_equal(cw_entity_store_get(fx->hub, "items", &stored, &err), 0);
	assert_int_equal(stored.status, CW_ENTITY_PENDING);
	assert_int_equal(stored.version, 3);
	cw_entity_clear(&stored);

	assert_int_equal(cw_entity_store_set_status(fx->hub, "nope", CW_ENTITY_LIVE, &err),
	                 CW_ENOTFOUND);
	assert_int_equal(cw_entity_store_delete(fx->hub, "nope", &err), CW_ENOTFOUND);
}

/* Origin is stored and claimed once; pause and resume; a revived entity is not paused. */
static void entities_are_paused_and_resumed(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_column_t columns[2];
	cw_entity_t legacy, stored = {0};
	int64_t version = 0;
	make_entity(&legacy, columns, "legacy", "shop", CW_ENTITY_LIVE);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &legacy, NULL, &err), 0);
	assert_int_equal(cw_entity_store_get(fx->hub, "legacy", &stored, &err), 0);
	assert_int_equal(stored.origin, CW_ENTITY_ORIGIN_UNKNOWN);
	assert_null(stored.paused_reason);
	cw_entity_clear(&stored);
	/* Stored without an origin: the first upsert that knows one records it, once. */
	legacy.origin = CW_ENTITY_ORIGIN_FILE;
	assert_int_equal(cw_entity_store_upsert(fx->hub, &legacy, NULL, &err), 0);
	legacy.origin = CW_ENTITY_ORIGIN_API;
	assert_int_equal(cw_entity_store_upsert(fx->hub, &legacy, NULL, &err), 0);
	assert_int_equal(cw_entity_store_get(fx->hub, "legacy", &stored, &err), 0);
	assert_int_equal(stored.origin, CW_ENTITY_ORIGIN_FILE);
	cw_entity_clear(&stored);

	assert_int_equal(cw_entity_store_resume(fx->hub, "legacy", CW_ENTITY_ORIGIN_UNKNOWN, NULL,
	                                        &err), CW_ECONFLICT);
	assert_string_equal(err.message, "entity \"legacy\" is not paused");
	assert_int_equal(cw_entity_store_pause(fx->hub, "legacy", "gone from the file", &err), 0);
	assert_int_equal(cw_entity_store_pause(fx->hub, "legacy", "again", &err), CW_ECONFLICT);
	assert_int_equal(cw_entity_store_get(fx->hub, "legacy", &stored, &err), 0);
	assert_string_equal(stored.paused_reason, "gone from the file");
	assert_true(stored.paused_at_us > 0);
	assert_string_equal(cw_entity_shown_status(&stored), "paused");
	assert_int_equal(stored.status, CW_ENTITY_LIVE);
	cw_entity_clear(&stored);
	/* The file's upsert of a paused entity leaves it paused (the pause sync decides). */
	assert_int_equal(cw_entity_store_upsert(fx->hub, &legacy, NULL, &err), 0);
	assert_int_equal(cw_entity_store_get(fx->hub, "legacy", &stored, &err), 0);
	assert_non_null(stored.paused_reason);
	cw_entity_clear(&stored);

	assert_int_equal(cw_entity_store_resume(fx->hub, "legacy", CW_ENTITY_ORIGIN_API, &version,
	                                        &err), 0);
	assert_int_equal(version, 2);
	assert_int_equal(cw_entity_store_get(fx->hub, "legacy", &stored, &err), 0);
	assert_null(stored.paused_reason);
	assert_int_equal(stored.status, CW_ENTITY_PENDING);
	assert_int_equal(stored.version, 2);
	assert_int_equal(stored.origin, CW_ENTITY_ORIGIN_API);
	cw_entity_clear(&stored);

	/* Deleted while paused: gone for pause and resume; re-added, not paused. */
	assert_int_equal(cw_entity_store_pause(fx->hub, "legacy", "gone", &err), 0);
	assert_int_equal(cw_entity_store_delete(fx->hub, "legacy", &err), 0);
	assert_int_equal(cw_entity_store_pause(fx->hub, "legacy", "gone", &err), CW_ENOTFOUND);
	assert_int_equal(cw_entity_store_resume(fx->hub, "legacy", CW_ENTITY_ORIGIN_UNKNOWN, NULL,
	                                        &err), CW_ENOTFOUND);
	assert_int_equal(cw_entity_store_pause(fx->hub, "nope", "gone", &err), CW_ENOTFOUND);
	legacy.origin = CW_ENTITY_ORIGIN_FILE;
	assert_int_equal(cw_entity_store_upsert(fx->hub, &legacy, NULL, &err), 0);
	assert_int_equal(cw_entity_store_get(fx->hub, "legacy", &stored, &err), 0);
	assert_null(stored.paused_reason);
	assert_int_equal(stored.origin, CW_ENTITY_ORIGIN_FILE);
	assert_int_equal(stored.version, 3);
	cw_entity_clear(&stored);
}

static void staged_changes_follow_the_scan_in_order(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_column_t columns[2];
	cw_entity_t live, fresh, gone;
	int64_t start = 0, promoted = -1;
	make_entity(&live, columns, "live_one", "shop", CW_ENTITY_LIVE);
	make_entity(&fresh, columns, "fresh", "shop", CW_ENTITY_SCANNING);
	make_entity(&gone, columns, "gone", "shop", CW_ENTITY_LIVE);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &live, NULL, &err), 0);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &fresh, NULL, &err), 0);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &gone, NULL, &err), 0);
	assert_int_equal(cw_entity_store_delete(fx->hub, "gone", &err), 0);
	assert_int_equal(cw_oplog_last_id(fx->hub, &start, &err), 0);

	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	cw_oplog_writer_t *scanner = cw_oplog_writer_new(fx->hub);
	cw_oplog_writer_set_scan(scanner, true);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, "live_one", "a1", 0);
	push(&batch, "fresh", "c1", 0);
	push(&batch, "gone", "x1", 0);
	push(&batch, "live_one", "a2", 0);
	push(&batch, "fresh", "c2", 0);
	cw_oplog_append_stats_t stats;
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, &stats, &err), 0);
	assert_int_equal(stats.appended, 2);
	assert_int_equal(stats.staged, 2);
	assert_int_equal(stats.skipped, 1);
	cw_change_batch_free(&batch);
	append_docs(scanner, "fresh", "s1 s2 s3", 0);
	append_docs(writer, "fresh", "c3", 0);
	append_docs(writer, "live_one", "a3", 0);
	append_docs(scanner, "fresh", "s4", 0);
	char *seq = oplog_sequence(fx->hub, start);
	assert_string_equal(seq, "live_one:a1 live_one:a2 fresh:s1 fresh:s2 fresh:s3 "
	                         "live_one:a3 fresh:s4");
	free(seq);

	assert_int_equal(cw_oplog_promote_staged(fx->hub, "fresh", &promoted, &err), 0);
	assert_int_equal(promoted, 3);
	seq = oplog_sequence(fx->hub, start);
	assert_string_equal(seq, "live_one:a1 live_one:a2 fresh:s1 fresh:s2 fresh:s3 "
	                         "live_one:a3 fresh:s4 fresh:c1 fresh:c2 fresh:c3");
	free(seq);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.oplog_staging"), 0);
	cw_entity_t stored = {0};
	assert_int_equal(cw_entity_store_get(fx->hub, "fresh", &stored, &err), 0);
	assert_int_equal(stored.status, CW_ENTITY_LIVE);
	cw_entity_clear(&stored);

	/* Live now: new changes go straight to the oplog. */
	append_docs(writer, "fresh", "c4", 0);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.oplog_staging"), 0);
	assert_int_equal(cw_oplog_promote_staged(fx->hub, "nope", NULL, &err), CW_ENOTFOUND);
	assert_int_equal(cw_oplog_promote_staged(fx->hub, "gone", NULL, &err), CW_ECONFLICT);
	cw_oplog_writer_free(scanner);
	cw_oplog_writer_free(writer);
}

static void metadata_and_quarantine_are_stored(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	char *json = NULL;
	assert_int_equal(cw_metadata_get(fx->hub, "mongo_resume_token", &json, &err), CW_ENOTFOUND);
	assert_int_equal(cw_metadata_set(fx->hub, "mongo_resume_token", "{\"_data\": \"82A1\"}",
	                                 &err), 0);
	assert_int_equal(cw_metadata_set(fx->hub, "mongo_resume_token", "{\"_data\": \"82B2\"}",
	                                 &err), 0);
	assert_int_equal(cw_metadata_get(fx->hub, "mongo_resume_token", &json, &err), 0);
	assert_string_equal(json, "{\"_data\": \"82B2\"}");
	free(json);
	assert_int_equal(cw_metadata_set(fx->hub, "bad", "{oops", &err), CW_EDB);
	assert_non_null(strstr(err.message, "could not store hub metadata \"bad\""));
	assert_int_equal(cw_metadata_delete(fx->hub, "mongo_resume_token", &err), 0);
	assert_int_equal(cw_metadata_get(fx->hub, "mongo_resume_token", &json, &err), CW_ENOTFOUND);

	cw_quarantine_record_t record = {"products", "p1", "0/1A", "column \"price\": not a number",
	                                 "{\"price\": \"abc\"\t}"};
	assert_int_equal(cw_quarantine_add(fx->hub, &record, &err), 0);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM cachewarp.quarantine WHERE entity = 'products' AND "
		"doc_id = 'p1' AND raw = E'{\"price\": \"abc\"\\t}' AND reason LIKE 'column%'"), 1);
	record.reason = NULL;
	assert_int_equal(cw_quarantine_add(fx->hub, &record, &err), CW_EINVAL);
}

/* The oplog ids of entity, in order; *count receives how many (at most 64). */
static void entity_ids(cw_hub_t *hub, const char *entity, int64_t ids[64], size_t *count)
{
	cw_err_t err = {0};
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	const char *entities[] = {entity};
	assert_int_equal(cw_oplog_fetch(hub, entities, 1, 0, 64, &page, &err), 0);
	for (size_t i = 0; i < page.len; i++)
		ids[i] = page.items[i].oplog_id;
	*count = page.len;
	cw_change_batch_free(&page);
}

static const cw_consumer_t *find_consumer(const cw_consumer_t *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].name, name) == 0)
			return &list[i];
	}
	fail_msg("consumer %s not listed", name);
	return NULL;
}

static void consumers_report_lag_and_hold_back_retention(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_column_t columns[2];
	cw_entity_t ret;
	int64_t ids[64], last = 0, position = -1, deleted = -1;
	size_t n = 0, count = 0;
	cw_consumer_t *list = NULL;
	make_entity(&ret, columns, "retained", "shop", CW_ENTITY_LIVE);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &ret, NULL, &err), 0);
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	append_docs(writer, "retained", "o0 o1 o2 o3 o4 o5 o6 o7 o8 o9",
	            now_us() - INT64_C(7200) * 1000000);
	/* Appended two hours ago, as retention reads it: the batch's append mark. */
	assert_int_equal(cw_testhub_int(fx->hub, "WITH m AS (UPDATE cachewarp.oplog_marks "
		"SET at = now() - interval '2 hours' WHERE id >= (SELECT min(id) FROM "
		"cachewarp.oplog WHERE entity = 'retained') RETURNING 1) SELECT count(*) FROM m"), 1);
	append_docs(writer, "retained", "n0 n1 n2 n3 n4", 0);
	cw_oplog_writer_free(writer);
	entity_ids(fx->hub, "retained", ids, &n);
	assert_int_equal(n, 15);
	assert_int_equal(cw_oplog_last_id(fx->hub, &last, &err), 0);

	assert_int_equal(cw_consumer_register(fx->hub, "node_a", &position, &err), 0);
	assert_int_equal(position, 0);
	assert_int_equal(cw_consumer_heartbeat(fx->hub, "node_a", ids[3], &err), 0);
	assert_int_equal(cw_consumer_register(fx->hub, "node_a", &position, &err), 0);
	assert_int_equal(position, ids[3]);
	assert_int_equal(cw_consumer_heartbeat(fx->hub, "node_b", ids[12], &err), 0);
	assert_int_equal(cw_consumer_register(fx->hub, "", NULL, &err), CW_EINVAL);
	assert_int_equal(cw_consumer_list(fx->hub, &list, &count, &err), 0);
	assert_int_equal(count, 2);
	const cw_consumer_t *a = find_consumer(list, count, "node_a");
	const cw_consumer_t *b = find_consumer(list, count, "node_b");
	assert_int_equal(a->position, ids[3]);
	assert_int_equal(a->lag_ids, last - ids[3]);
	assert_true(a->lag_seconds > 7000.0 && a->lag_seconds < 8000.0);
	assert_int_equal(b->lag_ids, last - ids[12]);
	assert_true(b->lag_seconds < 600.0);
	assert_true(a->last_seen_us > now_us() - INT64_C(600) * 1000000);
	cw_consumer_list_free(list, count);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT lag_ids FROM cachewarp.consumers WHERE name = 'node_a'"), last - ids[3]);

	/* Old rows below both positions go (earlier tests' too); node_a still needs o3 onwards. */
	char *below_a = cw_xasprintf("SELECT count(*) FROM cachewarp.oplog WHERE id < %lld",
	                             (long long)ids[3]);
	int64_t old_rows = cw_testhub_int(fx->hub, below_a);
	free(below_a);
	assert_int_equal(cw_oplog_retention_run(fx->hub, 3600, 600, &deleted, &err), 0);
	assert_int_equal(deleted, old_rows);
	entity_ids(fx->hub, "retained", ids, &n);
	assert_int_equal(n, 12);
	/* A consumer not seen within the liveness window no longer holds rows back. */
	PQclear(PQexec(cw_hub_pgconn(fx->hub), "UPDATE cachewarp.consumers SET last_seen = "
	                                       "now() - interval '1 hour' WHERE name = 'node_a'"));
	assert_int_equal(cw_oplog_retention_run(fx->hub, 3600, 600, &deleted, &err), 0);
	assert_int_equal(deleted, 7);   /* o3..o9; the new rows are younger than an hour */
	entity_ids(fx->hub, "retained", ids, &n);
	assert_int_equal(n, 5);

	/* Caught up: no lag. */
	assert_int_equal(cw_consumer_heartbeat(fx->hub, "node_b", last, &err), 0);
	assert_int_equal(cw_consumer_list(fx->hub, &list, &count, &err), 0);
	b = find_consumer(list, count, "node_b");
	assert_int_equal(b->lag_ids, 0);
	assert_true(b->lag_seconds == 0.0);
	cw_consumer_list_free(list, count);

	/* With no live consumer nothing is deleted. */
	assert_int_equal(cw_consumer_remove(fx->hub, "node_a", &err), 0);
	assert_int_equal(cw_consumer_remove(fx->hub, "node_b", &err), 0);
	assert_int_equal(cw_consumer_remove(fx->hub, "node_b", &err), CW_ENOTFOUND);
	assert_int_equal(cw_oplog_retention_run(fx->hub, 0, 600, &deleted, &err), 0);
	assert_int_equal(deleted, 0);
}

/* The oplog's sequential scans and heap pages read so far, this connection's counts flushed. */
static void oplog_reads(cw_hub_t *hub, int64_t *seq_scans, int64_t *heap_pages)
{
	PQclear(PQexec(cw_hub_pgconn(hub), "SELECT pg_stat_force_next_flush()"));
	*seq_scans = cw_testhub_int(hub, "SELECT seq_scan FROM pg_stat_user_tables "
	                                 "WHERE relid = 'cachewarp.oplog'::regclass");
	*heap_pages = cw_testhub_int(hub, "SELECT heap_blks_read + heap_blks_hit "
	                                  "FROM pg_statio_user_tables "
	                                  "WHERE relid = 'cachewarp.oplog'::regclass");
}

/* Appends count upserts of entity, each with a 100-byte pad, as one batch of a new writer. */
static void append_padded(cw_hub_t *hub, const char *entity, int count)
{
	cw_err_t err = {0};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (int i = 0; i < count; i++) {
		char doc_id[16];
		snprintf(doc_id, sizeof doc_id, "%d", i);
		cw_change_t change = {0};
		change.op = CW_OP_UPSERT;
		change.entity = cw_xstrdup(entity);
		change.doc_id = cw_xstrdup(doc_id);
		change.data = cw_xasprintf("{\"pad\": \"%0100d\"}", i);
		change.version = 1;
		cw_change_batch_push(&batch, &change);
	}
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	if (cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err) != 0)
		fail_msg("append: %s", err.message);
	cw_oplog_writer_free(writer);
	cw_change_batch_free(&batch);
}

/*
 * Retention finds what it may delete from the writers' append marks and
 * deletes it through (entity, id): it reads the rows it deletes, never the
 * newer ones, never the whole oplog, with no index on created_at and no
 * summary to keep.
 */
static void retention_reads_only_the_rows_it_deletes(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_column_t columns[2];
	cw_entity_t ent;
	int64_t last = 0, deleted = -1;
	make_entity(&ent, columns, "ranges", "shop", CW_ENTITY_LIVE);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &ent, NULL, &err), 0);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM pg_indexes WHERE "
	                                "indexname = 'oplog_created_at'"), 0);
	/* 2,000 rows appended two hours ago, then 40,000 now, with no statistics on the oplog. */
	append_padded(fx->hub, "ranges", 2000);
	int64_t old_last = cw_testhub_int(fx->hub, "SELECT max(id) FROM cachewarp.oplog "
	                                  "WHERE entity = 'ranges'");
	PQclear(PQexec(cw_hub_pgconn(fx->hub), "UPDATE cachewarp.oplog_marks "
	                                      "SET at = at - interval '2 hours'"));
	append_padded(fx->hub, "ranges", 40000);
	assert_int_equal(cw_oplog_last_id(fx->hub, &last, &err), 0);
	assert_int_equal(cw_consumer_heartbeat(fx->hub, "ranges_node", last, &err), 0);
	char *old_sql = cw_xasprintf("SELECT count(*) FROM cachewarp.oplog WHERE id <= %lld",
	                             (long long)old_last);
	int64_t old_rows = cw_testhub_int(fx->hub, old_sql);
	free(old_sql);
	assert_true(old_rows >= 2000);

	int64_t scans0, pages0, scans1, pages1, scans2, pages2;
	oplog_reads(fx->hub, &scans0, &pages0);
	assert_int_equal(cw_oplog_retention_run(fx->hub, 3600, 600, &deleted, &err), 0);
	assert_int_equal(deleted, old_rows);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.oplog "
	                                "WHERE entity = 'ranges'"), 40000);
	oplog_reads(fx->hub, &scans1, &pages1);
	assert_int_equal(scans1, scans0);
	/* Again: only the deleted range is visited, not a page of the 40,000 newer rows. */
	assert_int_equal(cw_oplog_retention_run(fx->hub, 3600, 600, &deleted, &err), 0);
	assert_int_equal(deleted, 0);
	oplog_reads(fx->hub, &scans2, &pages2);
	assert_int_equal(scans2, scans1);
	int64_t new_pages = cw_testhub_int(fx->hub, "SELECT pg_relation_size('cachewarp.oplog') "
	                                   "/ 8192") / 2;
	assert_true(pages2 - pages1 < new_pages / 4);
	/* The marks older than the one it used are gone. */
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.oplog_marks "
	                                "WHERE at < now() - interval '1 hour'"), 1);
	assert_int_equal(cw_consumer_remove(fx->hub, "ranges_node", &err), 0);
}

/* The version of name in a registry list; 0 when absent. */
static int64_t listed_version(cw_entity_registry_t *registry, cw_hub_t *hub, const char *name)
{
	cw_err_t err = {0};
	cw_entity_t *list = NULL;
	size_t count = 0;
	assert_int_equal(cw_entity_registry_list(registry, hub, false, &list, &count, &err), 0);
	int64_t version = 0;
	for (size_t i = 0; i < count; i++)
		if (strcmp(list[i].name, name) == 0)
			version = list[i].version;
	cw_entity_store_list_free(list, count);
	return version;
}

/*
 * Components read the registry, not the hub; a component that changed an
 * entity itself invalidates it, and its next list shows its own write.
 */
static void registry_serves_copies_until_invalidated(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	cw_column_t columns[2];
	cw_entity_t entity;
	bool created = false;
	make_entity(&entity, columns, "registry_e", "shop", CW_ENTITY_LIVE);
	assert_int_equal(cw_entity_store_upsert(fx->hub, &entity, &created, &err), 0);
	cw_entity_registry_t *registry = cw_entity_registry_new();
	int64_t first = listed_version(registry, fx->hub, "registry_e");   /* loads it */
	assert_true(first >= 1);

	int64_t bumped = 0;
	assert_int_equal(cw_entity_store_bump_version(fx->hub, "registry_e", &bumped, &err), 0);
	assert_int_equal(bumped, first + 1);
	assert_int_equal(listed_version(registry, fx->hub, "registry_e"), first);   /* a copy */
	cw_entity_registry_invalidate(registry);
	assert_int_equal(listed_version(registry, fx->hub, "registry_e"), bumped);

	/* A reload through the daemon's path shows what changed, deleted entities included. */
	size_t changes = 0;
	assert_int_equal(cw_entity_store_bump_version(fx->hub, "registry_e", &bumped, &err), 0);
	assert_int_equal(cw_entity_registry_reload(registry, fx->hub, &changes, &err), 0);
	assert_int_equal(changes, 1);
	assert_int_equal(listed_version(registry, fx->hub, "registry_e"), bumped);
	assert_int_equal(cw_entity_registry_reload(registry, fx->hub, &changes, &err), 0);
	assert_int_equal(changes, 0);
	cw_entity_registry_free(registry);
	/* No registry: straight from the hub. */
	assert_int_equal(listed_version(NULL, fx->hub, "registry_e"), bumped);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shapes_are_immutable),
		cmocka_unit_test(entities_are_listed_deleted_refreshed_and_revived),
		cmocka_unit_test(entities_are_paused_and_resumed),
		cmocka_unit_test(staged_changes_follow_the_scan_in_order),
		cmocka_unit_test(metadata_and_quarantine_are_stored),
		cmocka_unit_test(consumers_report_lag_and_hold_back_retention),
		cmocka_unit_test(retention_reads_only_the_rows_it_deletes),
		cmocka_unit_test(registry_serves_copies_until_invalidated),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
