/*
 * Unit tests of the coalescer (apply/coalesce.h) and of grouping a batch by
 * entity (apply/apply_loop.h): the last change per document wins, absent
 * keys merge onto the earlier upsert, a delete supersedes, an upsert after a
 * delete replaces, sweeps split the batch, applied ids are skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/apply_loop.h"
#include "apply/coalesce.h"
#include "core/change.h"
#include "core/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t next_id;

static void push(cw_change_batch_t *batch, cw_op_t op, const char *entity, const char *doc_id,
                 const char *data, int64_t version)
{
	cw_change_t change = {0};
	change.oplog_id = ++next_id;
	change.op = op;
	change.entity = cw_xstrdup(entity);
	change.doc_id = cw_xstrdup(doc_id);
	change.data = cw_xstrdup(data);
	change.version = version;
	change.created_at_us = next_id * 10;
	cw_change_batch_push(batch, &change);
}

/* Coalesces the whole batch as one entity's group. */
static int coalesce_all(const cw_change_batch_t *batch, int64_t skip, cw_write_list_t *out)
{
	const cw_change_t **changes = cw_xcalloc(batch->len + 1, sizeof *changes);
	for (size_t i = 0; i < batch->len; i++)
		changes[i] = &batch->items[i];
	cw_err_t err = {0};
	int rc = cw_coalesce(changes, batch->len, skip, out, &err);
	free(changes);
	return rc;
}

static void assert_data(const cw_write_t *w, const char *want)
{
	json_error_t jerr;
	json_t *expected = json_loads(want, 0, &jerr);
	assert_non_null(expected);
	/* A document changed once keeps its text; a merged one is its fields. */
	assert_true((w->fields == NULL) != (w->raw == NULL));
	json_t *got = NULL;
	if (w->fields != NULL) {
		cw_buf_t text = CW_BUF_INIT;
		cw_buf_append_char(&text, '{');
		for (size_t i = 0; i < w->fields->len; i++)
			cw_buf_appendf(&text, "%s\"%.*s\": %.*s", i ? ", " : "",
			               (int)w->fields->items[i].key_len, w->fields->items[i].key,
			               (int)w->fields->items[i].value_len, w->fields->items[i].value);
		cw_buf_append_char(&text, '}');
		got = json_loads(cw_buf_cstr(&text), 0, &jerr);
		cw_buf_free(&text);
	} else {
		got = json_loads(w->raw, 0, &jerr);
	}
	assert_non_null(got);
	if (!json_equal(got, expected)) {
		char *text = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
		fail_msg("data %s, want %s", text, want);
	}
	json_decref(got);
	json_decref(expected);
}

static void thousand_updates_of_one_row_make_one_write(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	char data[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(data, sizeof data, "{\"n\": %d, \"s\": \"v%d\"}", i, i);
		push(&batch, CW_OP_UPSERT, "items", "doc-1", data, 1);
	}
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 1);
	assert_int_equal(out.changes, 1000);
	assert_int_equal(out.items[0].kind, CW_WRITE_UPSERT);
	assert_false(out.items[0].replace);
	assert_string_equal(out.items[0].doc_id, "doc-1");
	assert_int_equal(out.items[0].oplog_id, batch.items[999].oplog_id);
	assert_data(&out.items[0], "{\"n\": 999, \"s\": \"v999\"}");
	assert_null(out.items[0].raw);
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static void absent_keys_merge_onto_the_earlier_upsert(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "items", "a", "{\"x\": 1, \"y\": 2, \"z\": 3}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a", "{\"y\": 20}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a", "{\"z\": null, \"w\": [1]}", 2);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 1);
	assert_data(&out.items[0], "{\"x\": 1, \"y\": 20, \"z\": null, \"w\": [1]}");
	assert_int_equal(out.items[0].version, 2);
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static void delete_supersedes_and_upsert_after_delete_replaces(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "items", "gone", "{\"x\": 1}", 1);
	push(&batch, CW_OP_DELETE, "items", "gone", NULL, 1);
	push(&batch, CW_OP_UPSERT, "items", "back", "{\"x\": 1, \"y\": 2}", 1);
	push(&batch, CW_OP_DELETE, "items", "back", NULL, 1);
	push(&batch, CW_OP_UPSERT, "items", "back", "{\"y\": 5}", 1);
	push(&batch, CW_OP_DELETE, "items", "only", NULL, 1);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 3);
	/* Sorted by doc_id: back, gone, only. */
	assert_string_equal(out.items[0].doc_id, "back");
	assert_int_equal(out.items[0].kind, CW_WRITE_UPSERT);
	assert_true(out.items[0].replace);
	assert_data(&out.items[0], "{\"y\": 5}");
	assert_string_equal(out.items[1].doc_id, "gone");
	assert_int_equal(out.items[1].kind, CW_WRITE_DELETE);
	assert_null(out.items[1].fields);
	assert_int_equal(out.items[1].oplog_id, batch.items[1].oplog_id);
	assert_string_equal(out.items[2].doc_id, "only");
	assert_int_equal(out.items[2].kind, CW_WRITE_DELETE);
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

/*
 * Seed 003's merge rules for a backup's queue, as the hub's changes express
 * them (an insert or a full update is an upsert with every key, a partial
 * update an upsert with only the changed keys): insert+insert and
 * insert+update give the latest state, update+update the merge of both,
 * anything followed by a delete a delete, and delete+insert an insert that
 * replaces (nothing of the deleted version survives).
 */
static void seed_003_merge_rules_hold(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	/* insert + insert: the latest state */
	push(&batch, CW_OP_UPSERT, "items", "a-ins-ins", "{\"t\": \"v1\", \"n\": 1}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a-ins-ins", "{\"t\": \"v2\", \"n\": 2}", 1);
	/* insert + update: the latest state */
	push(&batch, CW_OP_UPSERT, "items", "b-ins-upd", "{\"t\": \"v1\", \"n\": 1}", 1);
	push(&batch, CW_OP_UPSERT, "items", "b-ins-upd", "{\"n\": 5}", 1);
	/* update + update: merged */
	push(&batch, CW_OP_UPSERT, "items", "c-upd-upd", "{\"t\": \"x\"}", 1);
	push(&batch, CW_OP_UPSERT, "items", "c-upd-upd", "{\"n\": 7}", 1);
	/* insert + delete, update + delete, delete + delete: a delete */
	push(&batch, CW_OP_UPSERT, "items", "d-ins-del", "{\"t\": \"v1\"}", 1);
	push(&batch, CW_OP_DELETE, "items", "d-ins-del", NULL, 1);
	push(&batch, CW_OP_UPSERT, "items", "e-upd-del", "{\"n\": 1}", 1);
	push(&batch, CW_OP_DELETE, "items", "e-upd-del", NULL, 1);
	push(&batch, CW_OP_DELETE, "items", "f-del-del", NULL, 1);
	push(&batch, CW_OP_DELETE, "items", "f-del-del", NULL, 1);
	/* delete + insert: an insert replacing whatever the target holds */
	push(&batch, CW_OP_DELETE, "items", "g-del-ins", NULL, 1);
	push(&batch, CW_OP_UPSERT, "items", "g-del-ins", "{\"t\": \"new\"}", 1);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 7);
	assert_int_equal(out.changes, 14);
	assert_string_equal(out.items[0].doc_id, "a-ins-ins");
	assert_data(&out.items[0], "{\"t\": \"v2\", \"n\": 2}");
	assert_string_equal(out.items[1].doc_id, "b-ins-upd");
	assert_data(&out.items[1], "{\"t\": \"v1\", \"n\": 5}");
	assert_string_equal(out.items[2].doc_id, "c-upd-upd");
	assert_data(&out.items[2], "{\"t\": \"x\", \"n\": 7}");
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(out.items[i].kind, CW_WRITE_UPSERT);
		assert_false(out.items[i].replace);
	}
	for (size_t i = 3; i < 6; i++) {
		assert_int_equal(out.items[i].kind, CW_WRITE_DELETE);
		assert_null(out.items[i].raw);
		assert_null(out.items[i].fields);
	}
	assert_string_equal(out.items[3].doc_id, "d-ins-del");
	assert_string_equal(out.items[4].doc_id, "e-upd-del");
	assert_string_equal(out.items[5].doc_id, "f-del-del");
	assert_int_equal(out.items[5].oplog_id, batch.items[11].oplog_id);
	assert_string_equal(out.items[6].doc_id, "g-del-ins");
	assert_int_equal(out.items[6].kind, CW_WRITE_UPSERT);
	assert_true(out.items[6].replace);
	assert_data(&out.items[6], "{\"t\": \"new\"}");
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static void sweep_splits_the_batch(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "items", "b", "{\"x\": 1}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a", "{\"x\": 1}", 2);
	push(&batch, CW_OP_SWEEP, "items", NULL, NULL, 2);
	push(&batch, CW_OP_UPSERT, "items", "b", "{\"y\": 2}", 2);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 4);
	assert_string_equal(out.items[0].doc_id, "a");
	assert_string_equal(out.items[1].doc_id, "b");
	assert_data(&out.items[1], "{\"x\": 1}");
	assert_int_equal(out.items[2].kind, CW_WRITE_SWEEP);
	assert_int_equal(out.items[2].version, 2);
	assert_null(out.items[2].doc_id);
	assert_string_equal(out.items[3].doc_id, "b");
	assert_data(&out.items[3], "{\"y\": 2}");
	assert_false(out.items[3].replace);
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static void changes_at_or_below_the_applied_id_are_skipped(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "items", "a", "{\"x\": 1, \"y\": 1}", 1);
	push(&batch, CW_OP_DELETE, "items", "b", NULL, 1);
	push(&batch, CW_OP_UPSERT, "items", "a", "{\"y\": 2}", 1);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, batch.items[1].oplog_id, &out), 0);
	assert_int_equal(out.len, 1);
	assert_int_equal(out.changes, 1);
	assert_data(&out.items[0], "{\"y\": 2}");
	assert_int_equal(coalesce_all(&batch, batch.items[2].oplog_id, &out), 0);
	assert_int_equal(out.len, 0);
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static void data_that_is_not_an_object_is_refused(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "items", "a", "{\"x\": 1}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a", "[1, 2]", 1);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	const cw_change_t *changes[] = {&batch.items[0], &batch.items[1]};
	cw_err_t err = {0};
	assert_int_equal(cw_coalesce(changes, 2, 0, &out, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "data is not a JSON object"));
	assert_int_equal(out.len, 0);
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static const char *field_text(const cw_write_t *w, const char *key)
{
	const cw_json_field_t *f = cw_json_fields_get(w->fields, key, strlen(key));
	assert_non_null(f);
	static char text[256];
	snprintf(text, sizeof text, "%.*s", (int)f->value_len, f->value);
	return text;
}

/* Merging two upserts keeps every value's text: no digit, escape or space changes. */
static void merged_upserts_keep_every_digit(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "items", "a",
	     "{\"big\": 123456789012345678901234567890, \"x\": 2.50, \"s\": \"a\\tb\"}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a",
	     "{\"n\": 9007199254741001, \"s\": \"say \\\"hi\\\"\", \"j\": {\"x\": 2.50}}", 1);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 1);
	assert_non_null(out.items[0].fields);
	assert_int_equal(out.items[0].fields->len, 5);
	assert_string_equal(field_text(&out.items[0], "big"), "123456789012345678901234567890");
	assert_string_equal(field_text(&out.items[0], "x"), "2.50");
	assert_string_equal(field_text(&out.items[0], "n"), "9007199254741001");
	assert_string_equal(field_text(&out.items[0], "s"), "\"say \\\"hi\\\"\"");
	assert_string_equal(field_text(&out.items[0], "j"), "{\"x\": 2.50}");
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Writes come in the byte order of their doc_ids (SQLite's order of a TEXT
 * key), one per document, whatever the ids share: long common prefixes,
 * bytes past 0x7f, ids that are prefixes of others.
 */
static void writes_come_in_doc_id_byte_order(void **state)
{
	(void)state;
	static const char *const stems[] = {"", "order-", "order-000000", "\xc3\xa9t\xc3\xa9-", "z"};
	uint64_t rng = 0x853c49e6748fea9bu;
	for (int round = 0; round < 200; round++) {
		cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
		char *ids[60];
		size_t nids = 0;
		for (int i = 0; i < 60; i++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			char id[48];
			snprintf(id, sizeof id, "%s%llu", stems[rng % 5], (unsigned long long)(rng >> 40) % 50);
			push(&batch, CW_OP_UPSERT, "items", id, "{}", 1);
			size_t k = 0;
			while (k < nids && strcmp(ids[k], id) != 0)
				k++;
			if (k == nids)
				ids[nids++] = cw_xstrdup(id);
		}
		qsort(ids, nids, sizeof *ids, strcmp_ptr);
		cw_write_list_t out = CW_WRITE_LIST_INIT;
		assert_int_equal(coalesce_all(&batch, 0, &out), 0);
		assert_int_equal(out.len, nids);
		for (size_t k = 0; k < nids; k++) {
			assert_string_equal(out.items[k].doc_id, ids[k]);
			free(ids[k]);
		}
		cw_write_list_clear(&out);
		cw_change_batch_free(&batch);
	}
}

/*
 * A batch already in key order skips the sort; one change out of place at
 * its end (a document changed again) still coalesces with its earlier one.
 */
static void sorted_batches_and_a_late_change_coalesce_alike(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "items", "a1", "{\"n\": 1}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a2", "{\"n\": 2}", 1);
	push(&batch, CW_OP_UPSERT, "items", "a3", "{\"n\": 3}", 1);
	cw_write_list_t out = CW_WRITE_LIST_INIT;
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 3);
	assert_string_equal(out.items[0].doc_id, "a1");
	assert_string_equal(out.items[2].doc_id, "a3");
	cw_write_list_clear(&out);
	push(&batch, CW_OP_UPSERT, "items", "a2", "{\"m\": 4}", 1);
	assert_int_equal(coalesce_all(&batch, 0, &out), 0);
	assert_int_equal(out.len, 3);
	assert_int_equal(out.changes, 4);
	assert_string_equal(out.items[1].doc_id, "a2");
	assert_data(&out.items[1], "{\"n\": 2, \"m\": 4}");
	assert_int_equal(out.items[1].oplog_id, batch.items[3].oplog_id);
	cw_write_list_clear(&out);
	cw_change_batch_free(&batch);
}

static void batches_group_by_entity_in_id_order(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "orders", "1", "{}", 1);
	push(&batch, CW_OP_UPSERT, "items", "1", "{}", 1);
	push(&batch, CW_OP_DELETE, "orders", "1", NULL, 1);
	push(&batch, CW_OP_UPSERT, "items", "2", "{}", 1);
	const cw_change_t **groups = NULL;
	size_t *starts = NULL, ngroups = 0;
	cw_apply_group_batch(&batch, &groups, &starts, &ngroups);
	assert_int_equal(ngroups, 2);
	assert_int_equal(starts[0], 0);
	assert_int_equal(starts[1], 2);
	assert_int_equal(starts[2], 4);
	assert_string_equal(groups[0]->entity, "items");
	assert_true(groups[0]->oplog_id < groups[1]->oplog_id);
	assert_string_equal(groups[2]->entity, "orders");
	assert_int_equal(groups[3]->op, CW_OP_DELETE);
	free(groups);
	free(starts);
	cw_change_batch_free(&batch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(thousand_updates_of_one_row_make_one_write),
		cmocka_unit_test(absent_keys_merge_onto_the_earlier_upsert),
		cmocka_unit_test(delete_supersedes_and_upsert_after_delete_replaces),
		cmocka_unit_test(seed_003_merge_rules_hold),
		cmocka_unit_test(sweep_splits_the_batch),
		cmocka_unit_test(changes_at_or_below_the_applied_id_are_skipped),
		cmocka_unit_test(data_that_is_not_an_object_is_refused),
		cmocka_unit_test(merged_upserts_keep_every_digit),
		cmocka_unit_test(batches_group_by_entity_in_id_order),
		cmocka_unit_test(writes_come_in_doc_id_byte_order),
		cmocka_unit_test(sorted_batches_and_a_late_change_coalesce_alike),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
