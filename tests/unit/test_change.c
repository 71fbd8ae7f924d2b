/* Unit tests of changes: op names, per-op invariants, batch ownership and byte counting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/change.h"
#include "core/mem.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(op_names_round_trip),
		cmocka_unit_test(validation_enforces_per_op_invariants),
		cmocka_unit_test(batch_takes_over_strings_and_counts_bytes),
		cmocka_unit_test(clear_frees_and_zeroes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
