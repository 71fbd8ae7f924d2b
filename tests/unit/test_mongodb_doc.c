/*
 * Unit tests of the MongoDB target's value conversion (apply/mongodb_doc.h):
 * JSON numbers keep their digits as Int32, Int64, Double or Decimal128;
 * extended JSON objects become their BSON types; a PostgreSQL source's
 * column types choose Decimal128, Date, Int64, Binary; the hub's canonical
 * text of a document reads back to the same BSON, and reads as relaxed
 * JSON for the targets that store JSON: the same bytes whether the text is
 * rewritten directly or goes through BSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/mongodb_doc.h"
#include "core/json.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The canonical extended JSON of {"v": <value converted as pg_type>} (owned), or NULL. */
static char *convert(const char *value_json, const char *pg_type)
{
	char *text = cw_xasprintf("{\"v\":%s}", value_json);
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	assert_int_equal(cw_json_fields_parse(&fields, text, NULL), 0);
	bson_t out = BSON_INITIALIZER;
	cw_err_t err = {0};
	int rc = cw_mdoc_append_pg(&out, "v", 1, pg_type, &fields.items[0], &err);
	char *result = NULL;
	if (rc == 0) {
		char *json = bson_as_canonical_extended_json(&out, NULL);
		result = cw_xstrdup(json);
		bson_free(json);
	}
	bson_destroy(&out);
	cw_json_fields_clear(&fields);
	free(text);
	return result;
}

static void expect(const char *value_json, const char *pg_type, const char *want)
{
	char *got = convert(value_json, pg_type);
	if (got == NULL || strcmp(got, want) != 0)
		fail_msg("%s as %s: got %s, want %s", value_json, pg_type ? pg_type : "json",
		         got ? got : "(error)", want);
	free(got);
}

static void numbers_keep_their_digits(void **state)
{
	(void)state;
	expect("7", NULL, "{ \"v\" : { \"$numberInt\" : \"7\" } }");
	expect("-2147483649", NULL, "{ \"v\" : { \"$numberLong\" : \"-2147483649\" } }");
	expect("9007199254740993", NULL, "{ \"v\" : { \"$numberLong\" : \"9007199254740993\" } }");
	expect("123456789012345678901234567890", NULL,
	       "{ \"v\" : { \"$numberDecimal\" : \"123456789012345678901234567890\" } }");
	expect("2.5", NULL, "{ \"v\" : { \"$numberDouble\" : \"2.5\" } }");
	expect("2.50", NULL, "{ \"v\" : { \"$numberDecimal\" : \"2.50\" } }");
	/* (libbson prints a double with 20 digits: this is the double 0.1) */
	expect("0.1", NULL, "{ \"v\" : { \"$numberDouble\" : \"0.10000000000000000555\" } }");
	/* more digits than a Decimal128 holds: the digits, as text */
	expect("1.00000000000000000000000000000000001", NULL,
	       "{ \"v\" : \"1.00000000000000000000000000000000001\" }");
}

static void json_values_and_extended_json(void **state)
{
	(void)state;
	expect("\"say \\\"hi\\\" \\u00e9\"", NULL, "{ \"v\" : \"say \\\"hi\\\" \xc3\xa9\" }");
	expect("[1, {\"b\": null, \"a\": true}]", NULL,
	       "{ \"v\" : [ { \"$numberInt\" : \"1\" }, { \"b\" : null, \"a\" : true } ] }");
	expect("{\"$oid\": \"5f1d7a0e2b3c4d5e6f708192\"}", NULL,
	       "{ \"v\" : { \"$oid\" : \"5f1d7a0e2b3c4d5e6f708192\" } }");
	expect("{\"$date\": \"2024-05-01T10:00:00.123Z\"}", NULL,
	       "{ \"v\" : { \"$date\" : { \"$numberLong\" : \"1714557600123\" } } }");
	expect("{\"x\": {\"$numberDecimal\": \"0.10\"}}", NULL,
	       "{ \"v\" : { \"x\" : { \"$numberDecimal\" : \"0.10\" } } }");
}

static void postgres_types_choose_bson_types(void **state)
{
	(void)state;
	expect("12.50", "numeric(12,2)", "{ \"v\" : { \"$numberDecimal\" : \"12.50\" } }");
	expect("\"NaN\"", "numeric", "{ \"v\" : { \"$numberDecimal\" : \"NaN\" } }");
	expect("7", "bigint", "{ \"v\" : { \"$numberLong\" : \"7\" } }");
	expect("7", "integer", "{ \"v\" : { \"$numberInt\" : \"7\" } }");
	expect("0.25", "double precision", "{ \"v\" : { \"$numberDouble\" : \"0.25\" } }");
	expect("\"2024-05-01 12:00:00.123456+02\"", "timestamp with time zone",
	       "{ \"v\" : { \"$date\" : { \"$numberLong\" : \"1714557600123\" } } }");
	expect("\"2024-05-01 10:00:00\"", "timestamp without time zone",
	       "{ \"v\" : { \"$date\" : { \"$numberLong\" : \"1714557600000\" } } }");
	expect("\"1969-12-31\"", "date", "{ \"v\" : { \"$date\" : { \"$numberLong\" : \"-86400000\" } } }");
	expect("\"\\\\x0102ff\"", "bytea",
	       "{ \"v\" : { \"$binary\" : { \"base64\" : \"AQL/\", \"subType\" : \"00\" } } }");
	expect("{\"x\": 2.50}", "jsonb", "{ \"v\" : { \"x\" : { \"$numberDecimal\" : \"2.50\" } } }");
	/* what a type's reader does not take stays the value it was */
	expect("\"infinity\"", "timestamp with time zone", "{ \"v\" : \"infinity\" }");
	expect("[1, 2]", "integer[]", "{ \"v\" : [ { \"$numberInt\" : \"1\" }, { \"$numberInt\" : \"2\" } ] }");
	expect("null", "bigint", "{ \"v\" : null }");
}

/* The hub's data of a document entity into out: "doc" holds the document's text as a JSON string. */
static void hub_data(const char *doc_text, cw_buf_t *out)
{
	cw_buf_append_str(out, "{\"doc\":\"");
	for (const char *p = doc_text; *p; p++) {
		if (*p == '"' || *p == '\\')
			cw_buf_append_char(out, '\\');
		cw_buf_append_char(out, *p);
	}
	cw_buf_append_str(out, "\"}");
}

static void the_hubs_text_reads_back_exactly(void **state)
{
	(void)state;
	static const char *const canonical =
		"{ \"_id\" : { \"$oid\" : \"5f1d7a0e2b3c4d5e6f708192\" }, \"z\" : { \"$numberLong\" : \"5\" }, "
		"\"a\" : { \"$numberDouble\" : \"3.0\" }, \"t\" : { \"$timestamp\" : { \"t\" : 1, \"i\" : 2 } } }";
	bson_t in = BSON_INITIALIZER;
	assert_int_equal(cw_mdoc_from_extended_json(&in, canonical, strlen(canonical), NULL), 0);
	/* the hub's data: "doc" holds the text as a JSON string */
	char *text = bson_as_canonical_extended_json(&in, NULL);
	cw_buf_t data = CW_BUF_INIT;
	hub_data(text, &data);
	bson_free(text);
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	assert_int_equal(cw_json_fields_parse(&fields, cw_buf_cstr(&data), NULL), 0);
	bson_t out = BSON_INITIALIZER;
	assert_int_equal(cw_mdoc_doc_field(&out, &fields.items[0], NULL), 0);
	assert_true(bson_equal(&in, &out));   /* types and field order */
	char *relaxed = cw_mdoc_relaxed_data(cw_buf_cstr(&data));
	assert_non_null(relaxed);
	/* as the capture wrote it before the hub kept the text: numbers as JSON numbers */
	assert_string_equal(relaxed, "{\"doc\":{\"_id\":{\"$oid\":\"5f1d7a0e2b3c4d5e6f708192\"},\"z\":5,"
	                             "\"a\":3,\"t\":{\"$timestamp\":{\"t\":1,\"i\":2}}}}");
	free(relaxed);
	cw_json_fields_clear(&fields);
	cw_buf_free(&data);
	bson_destroy(&out);
	bson_destroy(&in);
}

/* {"doc": <doc_json>} relaxed through BSON, as the targets read it before the direct rewrite. */
static char *relaxed_through_bson(const char *doc_json)
{
	bson_t doc = BSON_INITIALIZER;
	if (cw_mdoc_from_extended_json(&doc, doc_json, strlen(doc_json), NULL) != 0) {
		bson_destroy(&doc);
		return NULL;
	}
	cw_buf_t text = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &text, CW_JSON_DEFAULT);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "doc", NULL);
	cw_json_bson_document(&w, &doc, CW_JSON_BSON_RELAXED, NULL);
	cw_json_object_end(&w, NULL);
	bson_destroy(&doc);
	char *result = cw_json_finish(&w) == 0 ? cw_buf_take(&text) : NULL;
	cw_buf_free(&text);
	return result;
}

/* The data {"doc": doc_json} with "doc" as an object and as the hub's string of its text. */
static void expect_relaxed_as_bson(const char *doc_json)
{
	char *expected = relaxed_through_bson(doc_json);
	char *as_object = cw_xasprintf("{\"doc\": %s}", doc_json);
	cw_buf_t as_string = CW_BUF_INIT;
	hub_data(doc_json, &as_string);
	const char *inputs[] = {as_object, cw_buf_cstr(&as_string)};
	for (size_t i = 0; i < 2; i++) {
		char *relaxed = cw_mdoc_relaxed_data(inputs[i]);
		if (expected == NULL) {
			assert_null(relaxed);
		} else {
			assert_non_null(relaxed);
			assert_string_equal(relaxed, expected);
		}
		free(relaxed);
	}
	free(as_object);
	cw_buf_free(&as_string);
	free(expected);
}

static void relaxed_text_is_the_bson_round_trip(void **state)
{
	(void)state;
	/* what the direct rewrite takes */
	expect_relaxed_as_bson("{\"_id\": {\"$oid\": \"5f1d7a0e2b3c4d5e6f708192\"}, "
	                       "\"i\": {\"$numberInt\": \"-2147483648\"}, "
	                       "\"l\": {\"$numberLong\": \"9223372036854775807\"}, "
	                       "\"d\": {\"$numberDouble\": \"3.0\"}, \"e\": {\"$numberDouble\": \"-1.5e-7\"}, "
	                       "\"z\": {\"$numberDouble\": \"-0.0\"}, "
	                       "\"t\": {\"$date\": {\"$numberLong\": \"1714557600000\"}}, "
	                       "\"old\": {\"$date\": {\"$numberLong\": \"-86400000\"}}, "
	                       "\"s\": \"caf\\u00e9 \\\"q\\\" \\/ \\ud83d\\ude00\\n\", \"b\": true, \"f\": false, "
	                       "\"n\": null, \"a\": [1, 2.50, -0, 1e3, [], {}, [{\"x\": \"y\"}]], "
	                       "\"o\": {\"p\": {\"$numberLong\": \"-5\"}, \"q\": [\"\"]}, "
	                       "\"a.b c\": 1, \"\": 0}");
	/* plain JSON as a benchmark or the API writes it */
	expect_relaxed_as_bson("{\"_id\": \"k0000000001\", \"title\": \"title 1\", \"qty\": 1, "
	                       "\"price\": 1.25, \"active\": true, \"tags\": [1, \"x\"]}");
	/* what it leaves to BSON: the results are still the round trip's */
	expect_relaxed_as_bson("{\"v\": {\"$numberDecimal\": \"2.50\"}}");
	expect_relaxed_as_bson("{\"v\": {\"$numberDouble\": \"Infinity\"}}");
	expect_relaxed_as_bson("{\"v\": {\"$date\": \"2024-05-01T10:00:00Z\"}}");
	expect_relaxed_as_bson("{\"v\": {\"$oid\": \"5F1D7A0E2B3C4D5E6F708192\"}}");
	expect_relaxed_as_bson("{\"v\": {\"$binary\": {\"base64\": \"AQL/\", \"subType\": \"00\"}}}");
	expect_relaxed_as_bson("{\"v\": {\"$timestamp\": {\"t\": 1, \"i\": 2}}}");
	expect_relaxed_as_bson("{\"v\": {\"$numberInt\": \"2147483648\"}}");
	expect_relaxed_as_bson("{\"v\": 123456789012345678901234567890}");
	expect_relaxed_as_bson("{\"v\": {\"$numberLong\": \"5\", \"w\": 1}}");
}

static void postgres_times_are_read_with_their_offsets(void **state)
{
	(void)state;
	int64_t ms = 0;
	assert_true(cw_mdoc_parse_pg_time("2024-05-01 10:00:00+00", 22, &ms));
	assert_int_equal(ms, INT64_C(1714557600000));
	assert_true(cw_mdoc_parse_pg_time("2024-05-01 15:30:00+05:30", 25, &ms));
	assert_int_equal(ms, INT64_C(1714557600000));
	assert_true(cw_mdoc_parse_pg_time("2024-05-01T10:00:00.5Z", 22, &ms));
	assert_int_equal(ms, INT64_C(1714557600500));
	assert_false(cw_mdoc_parse_pg_time("2024-05-01 10:00:00 BC", 22, &ms));
	assert_false(cw_mdoc_parse_pg_time("-infinity", 9, &ms));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(numbers_keep_their_digits),
		cmocka_unit_test(json_values_and_extended_json),
		cmocka_unit_test(postgres_types_choose_bson_types),
		cmocka_unit_test(the_hubs_text_reads_back_exactly),
		cmocka_unit_test(relaxed_text_is_the_bson_round_trip),
		cmocka_unit_test(postgres_times_are_read_with_their_offsets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
