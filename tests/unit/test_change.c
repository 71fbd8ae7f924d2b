/* Unit tests of changes: op names, per-op invariants, batch ownership, byte counting, arenas. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/change.h"
#include "core/mem.h"

#include <stdalign.h>
#include <stdio.h>
#include <string.h>

static void op_names_round_trip(void **state)
{
	(void)state;
	const char *names[] = {"upsert", "delete", "sweep"};
	for (int op = CW_OP_UPSERT; op <= CW_OP_SWEEP; op++) {
		assert_string_equal(cw_op_name(op), names[op]);
		cw_op_t back;
		assert_int_equal(cw_op_parse(names[op], &back, NULL), 0);
		assert_int_equal(back, op);
	}
	cw_err_t err;
	cw_op_t op;
	assert_int_equal(cw_op_parse("UPSERT", &op, &err), CW_EINVAL);
	assert_string_equal(err.message, "unknown change op \"UPSERT\" (use upsert, delete or sweep)");
	assert_int_equal(cw_op_parse("", &op, NULL), CW_EINVAL);
	assert_int_equal(cw_op_parse(NULL, &op, NULL), CW_EINVAL);
	assert_string_equal(cw_op_name((cw_op_t)9), "unknown");
}

static void validation_enforces_per_op_invariants(void **state)
{
	(void)state;
	static const struct {
		const char *entity;
		int op;
		const char *doc_id;
		const char *data;
		const char *message;   /* NULL when valid */
	} cases[] = {
		{"products", CW_OP_UPSERT, "5f1d7a0e2b3c4d5e6f708192", "{\"title\":\"Lamp\"}", NULL},
		{"products", CW_OP_UPSERT, "1", "{}", NULL},
		{"products", CW_OP_DELETE, "1", NULL, NULL},
		{"products", CW_OP_SWEEP, NULL, NULL, NULL},
		{"products", CW_OP_UPSERT, NULL, "{}",
		 "invalid upsert change for entity \"products\": an upsert needs a doc_id"},
		{"products", CW_OP_UPSERT, "1", NULL,
		 "invalid upsert change for entity \"products\": an upsert needs data"},
		{"products", CW_OP_UPSERT, "1", "[1]",
		 "invalid upsert change for entity \"products\": data must be a JSON object"},
		{"products", CW_OP_UPSERT, "1", "\"x\"",
		 "invalid upsert change for entity \"products\": data must be a JSON object"},
		{"products", CW_OP_UPSERT, "1", "{\"a\":",
		 "~invalid upsert change for entity \"products\": data is not valid JSON"},
		{"products", CW_OP_DELETE, NULL, NULL,
		 "invalid delete change for entity \"products\": a delete needs a doc_id"},
		{"products", CW_OP_DELETE, "1", "{}",
		 "invalid delete change for entity \"products\": a delete carries no data"},
		{"products", CW_OP_SWEEP, "1", NULL,
		 "invalid sweep change for entity \"products\": a sweep carries neither doc_id "
		 "nor data"},
		{"products", CW_OP_SWEEP, NULL, "{}", "~a sweep carries neither"},
		{"products", 7, "1", NULL, "~op 7 is not a change op"},
		{"../x", CW_OP_DELETE, "1", NULL, "~entity name \"../x\" is invalid"},
		{NULL, CW_OP_DELETE, "1", NULL, "~entity name is empty"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_change_t change = {0};
		change.entity = (char *)cases[i].entity;
		change.op = (cw_op_t)cases[i].op;
		change.doc_id = (char *)cases[i].doc_id;
		change.data = (char *)cases[i].data;
		change.version = 1;
		cw_err_t err;
		cw_err_clear(&err);
		int rc = cw_change_validate(&change, &err);
		if (cases[i].message == NULL) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_int_equal(rc, CW_EINVAL);
		if (cases[i].message[0] == '~')
			assert_non_null(strstr(err.message, cases[i].message + 1));
		else
			assert_string_equal(err.message, cases[i].message);
	}
}

static cw_change_t make_upsert(int n)
{
	cw_change_t change = {0};
	change.op = CW_OP_UPSERT;
	change.entity = cw_xstrdup("products");                /* 8 bytes */
	change.doc_id = cw_xasprintf("%04d", n);               /* 4 bytes */
	change.data = cw_xstrdup("{\"n\":1}");                 /* 7 bytes */
	change.source_pos = n % 2 ? cw_xstrdup("0/16B3748") : NULL;   /* 9 or 0 */
	change.version = 1;
	return change;
}

static void batch_takes_over_strings_and_counts_bytes(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	size_t expected = 0;
	for (int n = 0; n < 150; n++) {
		cw_change_t change = make_upsert(n);
		char *doc_id = change.doc_id;
		cw_change_batch_push(&batch, &change);
		expected += 8 + 4 + 7 + (n % 2 ? 9 : 0);
		assert_null(change.entity);     /* the caller's struct is zeroed */
		assert_null(change.doc_id);
		assert_ptr_equal(batch.items[n].doc_id, doc_id);
		assert_int_equal(batch.bytes, expected);
	}
	assert_int_equal(batch.len, 150);
	assert_true(batch.cap >= 150);
	assert_string_equal(batch.items[149].doc_id, "0149");

	size_t cap = batch.cap;
	cw_change_t *items = batch.items;
	cw_change_batch_clear(&batch);
	assert_int_equal(batch.len, 0);
	assert_int_equal(batch.bytes, 0);
	assert_int_equal(batch.cap, cap);          /* the array is kept for reuse */
	assert_ptr_equal(batch.items, items);

	cw_change_t change = make_upsert(3);
	cw_change_batch_push(&batch, &change);
	assert_int_equal(batch.bytes, 28);
	cw_change_batch_free(&batch);
	assert_null(batch.items);
	assert_int_equal(batch.len, 0);
	cw_change_batch_free(NULL);
}

static void clear_frees_and_zeroes(void **state)
{
	(void)state;
	cw_change_t change = make_upsert(1);
	change.oplog_id = 42;
	cw_change_clear(&change);
	assert_null(change.entity);
	assert_null(change.data);
	assert_int_equal(change.oplog_id, 0);
	cw_change_clear(NULL);
}

/* Strings added to a batch are copies in its arena; the caller's stay its own. */
static void batch_add_copies_into_the_arena(void **state)
{
	(void)state;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	char doc_id[8], data[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(doc_id, sizeof doc_id, "%d", i);
		snprintf(data, sizeof data, "{\"n\":%d}", i);
		cw_change_t change = {0};
		change.op = CW_OP_UPSERT;
		change.entity = "products";
		change.doc_id = doc_id;
		change.data = data;
		change.version = 2;
		change.source_pos = "0/16B3748";
		change.created_at_us = i;
		cw_change_batch_add(&batch, &change);
		assert_ptr_equal(change.doc_id, doc_id);   /* borrowed, not taken */
	}
	data[0] = 'x';
	assert_true(batch.borrowed);
	assert_int_equal(batch.len, 3000);
	assert_string_equal(batch.items[2999].doc_id, "2999");
	assert_string_equal(batch.items[0].data, "{\"n\":0}");
	assert_string_equal(batch.items[1234].entity, "products");
	assert_string_equal(batch.items[1234].source_pos, "0/16B3748");
	assert_int_equal(batch.items[1234].created_at_us, 1234);
	/* Equal entity and position of consecutive changes are shared, not copied again. */
	assert_ptr_equal(batch.items[1].entity, batch.items[0].entity);
	assert_ptr_equal(batch.items[2999].source_pos, batch.items[0].source_pos);
	/* A pushed change joins the arena too; its strings are freed (ASan checks). */
	cw_change_t sweep = {0};
	sweep.op = CW_OP_SWEEP;
	sweep.entity = cw_xstrdup("products");
	sweep.source_pos = cw_xstrdup("0/16B3749");
	cw_change_batch_push(&batch, &sweep);
	assert_null(sweep.entity);
	assert_string_equal(batch.items[3000].source_pos, "0/16B3749");
	assert_null(batch.items[3000].doc_id);
	cw_change_batch_clear(&batch);
	assert_false(batch.borrowed);
	assert_int_equal(batch.len, 0);
	assert_int_equal(batch.bytes, 0);
	/* Added to a batch of owned changes: an owned copy. */
	cw_change_t owned = {0};
	owned.op = CW_OP_DELETE;
	owned.entity = cw_xstrdup("products");
	owned.doc_id = cw_xstrdup("1");
	cw_change_batch_push(&batch, &owned);
	cw_change_t borrowed = {0};
	borrowed.op = CW_OP_DELETE;
	borrowed.entity = "products";
	borrowed.doc_id = "2";
	cw_change_batch_add(&batch, &borrowed);
	assert_false(batch.borrowed);
	assert_ptr_not_equal(batch.items[1].doc_id, borrowed.doc_id);
	assert_string_equal(batch.items[1].doc_id, "2");
	assert_int_equal(batch.bytes, strlen("products1products2"));
	cw_change_batch_free(&batch);
}

/* Blocks of any size, aligned for any value, each its own memory until the arena is freed. */
static void arena_blocks_are_aligned_and_distinct(void **state)
{
	(void)state;
	cw_arena_t arena = CW_ARENA_INIT;
	char *odd = cw_arena_strndup(&arena, "abc", 3);
	assert_string_equal(odd, "abc");
	char *blocks[64];
	for (size_t i = 0; i < 64; i++) {
		size_t size = i == 10 ? 100000 : i * 37;   /* one larger than a chunk */
		blocks[i] = cw_arena_alloc(&arena, size);
		assert_non_null(blocks[i]);
		assert_int_equal((uintptr_t)blocks[i] % alignof(max_align_t), 0);
		memset(blocks[i], (int)i, size);
		cw_arena_strndup(&arena, "x", 1);   /* leaves the next block unaligned */
	}
	for (size_t i = 1; i < 64; i++)
		if (i * 37 > 0 && i != 10)
			assert_int_equal((unsigned char)blocks[i][i * 37 - 1], i);
	assert_int_equal((unsigned char)blocks[10][99999], 10);
	assert_string_equal(odd, "abc");
	assert_null(cw_arena_strdup(&arena, NULL));
	assert_true(arena.total >= 100000);
	cw_arena_free(&arena);
	assert_null(arena.chunks);
	assert_int_equal(arena.total, 0);
	cw_arena_free(&arena);   /* an empty arena: a no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(op_names_round_trip),
		cmocka_unit_test(validation_enforces_per_op_invariants),
		cmocka_unit_test(batch_takes_over_strings_and_counts_bytes),
		cmocka_unit_test(clear_frees_and_zeroes),
		cmocka_unit_test(batch_add_copies_into_the_arena),
		cmocka_unit_test(arena_blocks_are_aligned_and_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
