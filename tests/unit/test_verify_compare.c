/* Unit tests of verify's row digests (verify/row_digest.h) and comparison (verify/compare.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/cancel.h"
#include "core/mem.h"
#include "verify/compare.h"
#include "verify/row_digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- digests ---- */

static uint64_t integer_digest(int64_t v)
{
	cw_typed_value_t value = {CW_TYPED_INTEGER, v, 0, NULL, 0, NULL};
	return cw_digest_value(&value);
}

static uint64_t real_digest(double v)
{
	cw_typed_value_t value = {CW_TYPED_REAL, 0, v, NULL, 0, NULL};
	return cw_digest_value(&value);
}

static uint64_t text_digest(const char *v)
{
	cw_typed_value_t value = {CW_TYPED_TEXT, 0, 0, v, strlen(v), NULL};
	return cw_digest_value(&value);
}

static void test_value_digest_ignores_storage_class(void **state)
{
	(void)state;
	cw_typed_value_t null_value = {0};
	/* A value a database converted on the way in still compares equal. */
	assert_true(integer_digest(12) == real_digest(12.0));
	assert_true(integer_digest(12) == text_digest("12"));
	assert_true(real_digest(2.5) == text_digest("2.5"));
	/* A value that changed does not. */
	assert_true(integer_digest(12) != integer_digest(13));
	assert_true(real_digest(2.5) != real_digest(2.25));
	assert_true(text_digest("") != cw_digest_value(&null_value));
	assert_true(text_digest("null") != cw_digest_value(&null_value));
	assert_true(real_digest(0.1) != text_digest("0.1000000000000000055511"));
}

static cw_entity_t typed_entity(void)
{
	static cw_column_t columns[] = {
		{"price", CW_COL_NUMBER, "price"},
		{"qty", CW_COL_INTEGER, "qty"},
		{"name", CW_COL_TEXT, "name"},
	};
	cw_entity_t e = {"items", "app", NULL, "items", columns, 3, CW_ENTITY_LIVE, 1, NULL, 0,
	CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	return e;
}

static uint64_t data_digest(const cw_entity_t *e, cw_decimal_mode_t mode, const char *doc_id,
                            const char *data, uint64_t *columns)
{
	uint64_t row = 0;
	assert_int_equal(cw_digest_data(e, mode, doc_id, data, &row, columns, NULL), 0);
	return row;
}

static void test_data_digest_follows_the_target_value(void **state)
{
	(void)state;
	cw_entity_t e = typed_entity();
	uint64_t a[3], b[3];
	uint64_t row = data_digest(&e, CW_DECIMAL_EXACT, "1",
	                           "{\"price\":2.50,\"qty\":3,\"name\":\"x\"}", a);
	/* The same row as a SQLite cache holds it: 2.5 as a double, 3 as an integer. */
	uint64_t stored[3] = {real_digest(2.5), integer_digest(3), text_digest("x")};
	assert_true(row == cw_digest_row("1", stored, 3));
	assert_memory_equal(a, stored, sizeof stored);
	/* Key order in data does not matter, the key does. */
	assert_true(row == data_digest(&e, CW_DECIMAL_EXACT, "1",
	                               "{\"name\":\"x\",\"qty\":3,\"price\":2.50}", b));
	assert_true(row != data_digest(&e, CW_DECIMAL_EXACT, "2",
	                               "{\"price\":2.50,\"qty\":3,\"name\":\"x\"}", NULL));
	/* Decimal handling "text" keeps the digits: 2.50 is not 2.5 there. */
	uint64_t t[3];
	data_digest(&e, CW_DECIMAL_TEXT, "1", "{\"price\":2.50,\"qty\":3,\"name\":\"x\"}", t);
	assert_true(t[0] == text_digest("2.50"));
	assert_true(t[0] != real_digest(2.5));
	/* A column missing from data is NULL; one that changed names itself. */
	data_digest(&e, CW_DECIMAL_EXACT, "1", "{\"price\":2.50,\"qty\":4,\"name\":\"x\"}", b);
	assert_true(a[0] == b[0] && a[1] != b[1] && a[2] == b[2]);
	assert_int_not_equal(cw_digest_data(&e, CW_DECIMAL_EXACT, "1", "[1]", &row, NULL, NULL), 0);
}

static void test_dynamic_digest_is_a_set_of_pairs(void **state)
{
	(void)state;
	cw_entity_t e = {"items", "app", NULL, "items", NULL, 0, CW_ENTITY_LIVE, 1, NULL, 0,
	CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	uint64_t a = data_digest(&e, CW_DECIMAL_EXACT, "1", "{\"id\":1,\"a\":1,\"b\":\"x\",\"c\":null}",
	                         NULL);
	/* Nulls and the key itself do not count; order does not either. */
	assert_true(a == data_digest(&e, CW_DECIMAL_EXACT, "1", "{\"b\":\"x\",\"a\":1}", NULL));
	uint64_t pairs = cw_digest_pair("a", 1, integer_digest(1)) +
	                 cw_digest_pair("b", 1, text_digest("x"));
	assert_true(a == cw_digest_row_pairs("1", pairs));
	/* A value moved to another name differs. */
	assert_true(a != data_digest(&e, CW_DECIMAL_EXACT, "1", "{\"a\":\"x\",\"b\":1}", NULL));
}

/* ---- comparison over sides held in memory ---- */

typedef struct mem_row {
	char key[16];
	uint64_t digest;
	bool stale;
} mem_row_t;

typedef struct mem_side {
	mem_row_t *rows;
	size_t len;
	int reads;
	/* test seams: rows changed on a given read (applied before it) */
	void (*before_read)(struct mem_side *side, int read);
	uint64_t columns[2];
} mem_side_t;

static int mem_read(void *self, cw_verify_want_fn want, void *want_arg, cw_verify_row_fn on_row,
                    void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	(void)cancel;
	(void)err;
	mem_side_t *side = self;
	side->reads++;
	if (side->before_read != NULL)
		side->before_read(side, side->reads);
	for (size_t i = 0; i < side->len; i++) {
		if (want != NULL && !want(want_arg, side->rows[i].key))
			continue;
		side->columns[0] = side->rows[i].digest;
		side->columns[1] = 7;
		cw_verify_row_t row = {side->rows[i].key, side->rows[i].digest, side->columns, 2,
		                       side->rows[i].stale, "{}"};
		int rc = on_row(arg, &row);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void mem_fill(mem_side_t *side, size_t n)
{
	side->rows = cw_xcalloc(n + 16, sizeof *side->rows);
	side->len = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(side->rows[i].key, sizeof side->rows[i].key, "k%u", (unsigned)(i % 1000000));
		side->rows[i].digest = 1000 + i;
	}
}

static mem_row_t *mem_find(mem_side_t *side, const char *key)
{
	for (size_t i = 0; i < side->len; i++)
		if (strcmp(side->rows[i].key, key) == 0)
			return &side->rows[i];
	return NULL;
}

static void mem_remove(mem_side_t *side, const char *key)
{
	mem_row_t *row = mem_find(side, key);
	assert_non_null(row);
	*row = side->rows[--side->len];
}

typedef struct seen {
	char keys[64][16];
	cw_verify_kind_t kinds[64];
	size_t len;
	int chunks;
	int settles;
	mem_side_t *target;        /* settle copies the source into it when catch_up is set */
	mem_side_t *source;
	bool catch_up;
} seen_t;

static int on_chunk(void *arg, const cw_verify_diff_t *diffs, size_t ndiffs, cw_err_t *err)
{
	(void)err;
	seen_t *seen = arg;
	seen->chunks++;
	for (size_t i = 0; i < ndiffs && seen->len < 64; i++) {
		snprintf(seen->keys[seen->len], 16, "%s", diffs[i].doc_id);
		seen->kinds[seen->len++] = diffs[i].kind;
		if (diffs[i].kind == CW_VERIFY_DIFFERENT) {
			assert_non_null(diffs[i].differing);
			assert_int_equal(diffs[i].differing[0], 1);   /* column 0 only */
		}
	}
	return 0;
}

static int settle(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	(void)cancel;
	(void)err;
	seen_t *seen = arg;
	seen->settles++;
	if (seen->catch_up) {
		free(seen->target->rows);
		seen->target->rows = cw_xcalloc(seen->source->len + 16, sizeof(mem_row_t));
		memcpy(seen->target->rows, seen->source->rows, seen->source->len * sizeof(mem_row_t));
		seen->target->len = seen->source->len;
	}
	return 0;
}

static int compare(mem_side_t *source, mem_side_t *target, seen_t *seen, size_t chunk_rows,
                   cw_verify_result_t *result)
{
	cw_verify_side_t s = {source, mem_read}, t = {target, mem_read};
	cw_verify_compare_opts_t opts = {0};
	opts.expected_rows = source->len;
	opts.chunk_rows = chunk_rows;
	opts.settle = settle;
	opts.on_chunk = on_chunk;
	opts.arg = seen;
	seen->source = source;
	seen->target = target;
	cw_cancel_t *cancel = cw_cancel_new();
	int rc = cw_verify_compare(&s, &t, &opts, cancel, result, NULL);
	cw_cancel_free(cancel);
	return rc;
}

static cw_verify_kind_t kind_of(const seen_t *seen, const char *key)
{
	for (size_t i = 0; i < seen->len; i++)
		if (strcmp(seen->keys[i], key) == 0)
			return seen->kinds[i];
	fail_msg("key %s not reported", key);
	return CW_VERIFY_NKINDS;
}

static void test_equal_sides_read_once(void **state)
{
	(void)state;
	mem_side_t source = {0}, target = {0};
	mem_fill(&source, 5000);
	mem_fill(&target, 5000);
	seen_t seen = {0};
	cw_verify_result_t r;
	assert_int_equal(compare(&source, &target, &seen, 0, &r), 0);
	assert_int_equal(r.source_rows, 5000);
	assert_int_equal(r.target_rows, 5000);
	assert_int_equal(r.differing_buckets, 0);
	assert_int_equal(source.reads, 1);
	assert_int_equal(target.reads, 1);
	assert_int_equal(seen.settles, 0);
	assert_int_equal(seen.len, 0);
	free(source.rows);
	free(target.rows);
}

static void test_each_kind_found_exactly(void **state)
{
	(void)state;
	mem_side_t source = {0}, target = {0};
	mem_fill(&source, 5000);
	mem_fill(&target, 5000);
	mem_remove(&target, "k10");                     /* missing */
	snprintf(target.rows[target.len].key, 16, "zz");  /* extra */
	target.rows[target.len++].digest = 5;
	mem_find(&target, "k20")->digest = 1;           /* different */
	mem_find(&target, "k30")->stale = true;         /* stale generation */
	seen_t seen = {0};
	cw_verify_result_t r;
	assert_int_equal(compare(&source, &target, &seen, 0, &r), 0);
	assert_int_equal(seen.len, 4);
	assert_int_equal(kind_of(&seen, "k10"), CW_VERIFY_MISSING);
	assert_int_equal(kind_of(&seen, "zz"), CW_VERIFY_EXTRA);
	assert_int_equal(kind_of(&seen, "k20"), CW_VERIFY_DIFFERENT);
	assert_int_equal(kind_of(&seen, "k30"), CW_VERIFY_STALE);
	assert_int_equal(r.differences[CW_VERIFY_MISSING], 1);
	assert_int_equal(r.differences[CW_VERIFY_EXTRA], 1);
	assert_int_equal(r.differences[CW_VERIFY_DIFFERENT], 1);
	assert_int_equal(r.differences[CW_VERIFY_STALE], 1);
	assert_int_equal(r.unsettled, 0);
	free(source.rows);
	free(target.rows);
}

static void test_small_chunks_find_the_same(void **state)
{
	(void)state;
	mem_side_t source = {0}, target = {0};
	mem_fill(&source, 3000);
	mem_fill(&target, 0);
	seen_t seen = {0};
	cw_verify_result_t r;
	/* An empty target: every bucket differs, read in chunks of 200 rows. */
	assert_int_equal(compare(&source, &target, &seen, 200, &r), 0);
	assert_int_equal(r.differences[CW_VERIFY_MISSING], 3000);
	assert_true(seen.chunks >= 3000 / 200);
	free(source.rows);
	free(target.rows);
}

static void test_target_catching_up_is_no_difference(void **state)
{
	(void)state;
	mem_side_t source = {0}, target = {0};
	mem_fill(&source, 1000);
	mem_fill(&target, 990);   /* behind: ten rows not applied yet */
	mem_find(&target, "k5")->digest = 3;
	seen_t seen = {0};
	seen.catch_up = true;
	cw_verify_result_t r;
	assert_int_equal(compare(&source, &target, &seen, 0, &r), 0);
	assert_int_equal(r.candidates, 11);
	assert_int_equal(seen.len, 0);
	assert_true(seen.settles >= 1);
	free(source.rows);
	free(target.rows);
}

/* The source row k7 changes on every read: it is moving, never a difference. */
static void churn_k7(mem_side_t *side, int read)
{
	mem_find(side, "k7")->digest = 50000 + (uint64_t)read;
}

static void test_moving_rows_are_unsettled_not_different(void **state)
{
	(void)state;
	mem_side_t source = {0}, target = {0};
	mem_fill(&source, 1000);
	mem_fill(&target, 1000);
	source.before_read = churn_k7;
	mem_find(&target, "k8")->digest = 4;   /* a real difference beside it */
	seen_t seen = {0};
	cw_verify_result_t r;
	assert_int_equal(compare(&source, &target, &seen, 0, &r), 0);
	assert_int_equal(r.unsettled, 1);
	assert_int_equal(seen.len, 1);
	assert_int_equal(kind_of(&seen, "k8"), CW_VERIFY_DIFFERENT);
	free(source.rows);
	free(target.rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_digest_ignores_storage_class),
		cmocka_unit_test(test_data_digest_follows_the_target_value),
		cmocka_unit_test(test_dynamic_digest_is_a_set_of_pairs),
		cmocka_unit_test(test_equal_sides_read_once),
		cmocka_unit_test(test_each_kind_found_exactly),
		cmocka_unit_test(test_small_chunks_find_the_same),
		cmocka_unit_test(test_target_catching_up_is_no_difference),
		cmocka_unit_test(test_moving_rows_are_unsettled_not_different),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
