/* Unit tests of the row digests of the targets' own forms (verify/forms.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "verify/forms.h"
#include "verify/row_digest.h"
#include "verify/sides.h"

#include <bson/bson.h>
#include <string.h>

static uint64_t text_digest(cw_pgc_kind_t kind, const char *text)
{
	return cw_verify_pg_text_digest(kind, text, strlen(text), CW_DECIMAL_EXACT);
}

static uint64_t json_digest(const char *json)
{
	return cw_verify_json_digest(json, strlen(json), CW_DECIMAL_EXACT);
}

/* What a column prints back equals what the column rules wrote; a change does not. */
static void test_column_text_as_the_column_keeps_it(void **state)
{
	(void)state;
	/* jsonb prints its own key order and spacing */
	assert_true(json_digest("{\"b\":1,\"a\":[1,\"x\"]}") ==
	            json_digest("{\"a\": [1, \"x\"], \"b\": 1}"));
	assert_true(json_digest("{\"a\":[1,\"x\"]}") != json_digest("{\"a\":[\"x\",1]}"));
	assert_true(json_digest("{\"a\":1.0}") == json_digest("{\"a\": 1}"));
	/* a string in _extra compares as the same string in a text column */
	assert_true(json_digest("\"x y\"") == text_digest(CW_PGC_TEXT, "x y"));
	assert_true(text_digest(CW_PGC_JSONB, "{\"a\": {\"y\": null, \"x\": 2}}") ==
	            json_digest("{\"a\":{\"x\":2,\"y\":null}}"));
	/* numbers by value, as each column type holds them */
	assert_true(text_digest(CW_PGC_NUMERIC, "2.50") == text_digest(CW_PGC_NUMERIC, "2.5"));
	assert_true(text_digest(CW_PGC_NUMERIC, "2.50") != text_digest(CW_PGC_NUMERIC, "2.51"));
	assert_true(text_digest(CW_PGC_DOUBLE, "1e-07") == text_digest(CW_PGC_DOUBLE, "1e-7"));
	assert_true(text_digest(CW_PGC_BIGINT, "12") == text_digest(CW_PGC_DOUBLE, "12"));
	/* a timestamp by its instant */
	assert_true(text_digest(CW_PGC_TIMESTAMPTZ, "2024-05-01T10:00:00Z") ==
	            text_digest(CW_PGC_TIMESTAMPTZ, "2024-05-01T10:00:00.000Z"));
	assert_true(text_digest(CW_PGC_TIMESTAMPTZ, "2024-05-01T12:00:00+02:00") ==
	            text_digest(CW_PGC_TIMESTAMPTZ, "2024-05-01T10:00:00.000Z"));
	assert_true(text_digest(CW_PGC_TIMESTAMPTZ, "2024-05-01T10:00:00.001Z") !=
	            text_digest(CW_PGC_TIMESTAMPTZ, "2024-05-01T10:00:00.000Z"));
	/* text as itself */
	assert_true(text_digest(CW_PGC_TEXT, "2.50") != text_digest(CW_PGC_TEXT, "2.5"));
}

/* A MongoDB document laid into a table: mapped columns, widening, quarantine, _extra. */
static void test_document_laid_into_columns(void **state)
{
	(void)state;
	cw_entity_t e = {.name = "docs", .source = "shop", .collection = "docs",
	                 .status = CW_ENTITY_LIVE, .version = 1};
	cw_verify_pg_model_t model = {&e, CW_DECIMAL_EXACT, NULL, 0, false};
	cw_verify_pg_model_add(&model, "n", "n", "bigint");
	cw_verify_pg_model_add(&model, "total_amount_cbfbd0b8", "Total Amount", "bigint");
	cw_verify_pg_model_add(&model, "at", "at", "timestamp with time zone");
	uint64_t source, quarantined, stored = 0;
	assert_int_equal(cw_verify_pg_digest_data(&model, "d1",
		"{\"doc\":{\"_id\":\"d1\",\"n\":\"abc\",\"Total Amount\":2.5,"
		"\"at\":{\"$date\":\"2024-05-01T10:00:00Z\"},\"gone\":null}}", &source, NULL, NULL), 0);
	/* the string in the bigint column is quarantined: the table holds NULL there */
	assert_int_equal(cw_verify_pg_digest_data(&model, "d1",
		"{\"doc\":{\"_id\":\"d1\",\"Total Amount\":2.5,"
		"\"at\":{\"$date\":\"2024-05-01T10:00:00Z\"}}}", &quarantined, NULL, NULL), 0);
	assert_true(source == quarantined);
	/* the row as the table prints it back: 2.5 in the widened column, the instant in UTC */
	stored += cw_digest_pair("Total Amount", 12, text_digest(CW_PGC_DOUBLE, "2.5"));
	stored += cw_digest_pair("at", 2, text_digest(CW_PGC_TIMESTAMPTZ, "2024-05-01T10:00:00.000Z"));
	assert_true(source == cw_digest_row_pairs("d1", stored));
	/* past the budget a new field goes into _extra, compared as JSON */
	model.has_extra = true;
	uint64_t extra;
	assert_int_equal(cw_verify_pg_digest_data(&model, "d1",
		"{\"doc\":{\"_id\":\"d1\",\"Total Amount\":2.5,\"at\":{\"$date\":\"2024-05-01T10:00:00Z\"},"
		"\"late\":{\"b\":1,\"a\":2}}}", &extra, NULL, NULL), 0);
	assert_true(extra == cw_digest_row_pairs("d1", stored + cw_digest_pair("late", 4,
	                                         json_digest("{\"a\": 2, \"b\": 1}"))));
	cw_verify_pg_model_clear(&model);
}

/* Typed documents: built as the MongoDB target builds them, compared by BSON type. */
static void test_bson_form_keeps_types(void **state)
{
	(void)state;
	static cw_column_t columns[] = {
		{"n", CW_COL_INTEGER, "n"},
		{"meta", CW_COL_JSONB, "meta"},
	};
	cw_entity_t e = {.name = "typed", .source = "shop", .collection = "typed",
	                 .columns = columns, .ncolumns = 2, .status = CW_ENTITY_LIVE, .version = 1};
	cw_verify_bson_form_t form = {&e, CW_LAYOUT_TYPED, {0}};
	uint64_t source, target, cols_source[2], cols_target[2];
	assert_int_equal(cw_verify_bson_digest_data(&form, "t1", "{\"n\":5,\"meta\":{\"b\":1,\"a\":2}}",
	                                            &source, cols_source, NULL), 0);
	/* an integer column is an Int64; the embedded document's members in any order */
	bson_t *doc = BCON_NEW("_id", "t1", "n", BCON_INT64(5), "meta", "{", "a", BCON_INT32(2), "b",
	                       BCON_INT32(1), "}", "_cachewarp", "{", "doc_id", "t1", "}");
	cw_verify_bson_digest_doc(&form, "t1", doc, &target, cols_target);
	assert_true(source == target);
	bson_destroy(doc);
	/* an Int32 where the target writes an Int64 differs, and names its column */
	doc = BCON_NEW("_id", "t1", "n", BCON_INT32(5), "meta", "{", "a", BCON_INT32(2), "b",
	               BCON_INT32(1), "}");
	cw_verify_bson_digest_doc(&form, "t1", doc, &target, cols_target);
	assert_true(source != target);
	assert_true(cols_source[0] != cols_target[0] && cols_source[1] == cols_target[1]);
	bson_destroy(doc);
}

/* The re-check waits until capture's stored GTID position has reached the source's. */
static void test_gtid_position_covers(void **state)
{
	(void)state;
	assert_true(cw_verify_gtid_covers("0-1-130", "0-1-130"));
	assert_true(cw_verify_gtid_covers("0-1-131", "0-1-130"));
	assert_false(cw_verify_gtid_covers("0-1-129", "0-1-130"));
	/* domains are compared one by one; the server id does not count */
	assert_true(cw_verify_gtid_covers("1-7-5,0-2-131", "0-1-130,1-7-5"));
	assert_false(cw_verify_gtid_covers("0-1-131", "0-1-130,1-7-5"));
	assert_true(cw_verify_gtid_covers("", ""));
	assert_true(cw_verify_gtid_covers("0-1-1", ""));
	assert_false(cw_verify_gtid_covers("", "0-1-1"));
	/* a MySQL 8 GTID set is not a MariaDB position: never reached */
	assert_false(cw_verify_gtid_covers("0-1-1",
	                                   "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_column_text_as_the_column_keeps_it),
		cmocka_unit_test(test_document_laid_into_columns),
		cmocka_unit_test(test_bson_form_keeps_types),
		cmocka_unit_test(test_gtid_position_covers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
