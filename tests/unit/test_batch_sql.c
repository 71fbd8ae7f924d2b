/* Unit tests of batch mode's SQL and marker (capture/batch_sql.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/batch_sql.h"

#include <stdlib.h>
#include <string.h>

static const char *const one_key[] = {"id"};
static const char *const two_keys[] = {"tenant", "id"};

static char *page(const cw_batch_query_t *q, bool marker)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_batch_sql_page(q, marker, &out);
	return cw_buf_take(&out);
}

static void test_postgres_page(void **state)
{
	(void)state;
	cw_batch_query_t q = {CW_BATCH_POSTGRES, "public", "orders", "updated_at",
	                      CW_BATCH_COLUMN_TIME, one_key, 1, 0, 500, NULL, NULL};
	char *sql = page(&q, false);
	assert_string_equal(sql, "SELECT t.*, (extract(epoch FROM t.\"updated_at\") * 1000000)::bigint "
	                         "FROM \"public\".\"orders\" AS t WHERE t.\"updated_at\" IS NOT NULL "
	                         "AND t.\"updated_at\" <= now() - interval '1 millisecond' * 0 "
	                         "ORDER BY t.\"updated_at\", t.\"id\" LIMIT 500");
	free(sql);
	/* With a marker: the row comparison on (column, key...) skips no equal value. */
	q.keys = two_keys;
	q.nkeys = 2;
	q.kind = CW_BATCH_COLUMN_LOCAL_TIME;
	q.lag_ms = 5000;
	q.table = "Or\"ders";
	sql = page(&q, true);
	assert_string_equal(sql, "SELECT t.*, (extract(epoch FROM t.\"updated_at\" AT TIME ZONE $4) "
	                         "* 1000000)::bigint FROM \"public\".\"Or\"\"ders\" AS t WHERE "
	                         "(t.\"updated_at\", t.\"tenant\", t.\"id\") > ($1, $2, $3) AND "
	                         "t.\"updated_at\" <= (now() AT TIME ZONE $4) - interval "
	                         "'1 millisecond' * 5000 ORDER BY t.\"updated_at\", t.\"tenant\", "
	                         "t.\"id\" LIMIT 500");
	free(sql);
	const char *keys[] = {"7", "42"};
	const char *params[CW_BATCH_MAX_PARAMS];
	assert_int_equal(cw_batch_page_params(&q, "2026-01-01 00:00:00", keys, "Europe/Paris",
	                                      params), 4);
	assert_string_equal(params[0], "2026-01-01 00:00:00");
	assert_string_equal(params[2], "42");
	assert_string_equal(params[3], "Europe/Paris");
	/* A number column: no time, no bound. */
	q.kind = CW_BATCH_COLUMN_OTHER;
	sql = page(&q, true);
	assert_non_null(strstr(sql, "SELECT t.*, NULL::bigint FROM"));
	assert_null(strstr(sql, "now()"));
	free(sql);
	assert_int_equal(cw_batch_page_params(&q, NULL, NULL, "UTC", params), 0);
}

static void test_mysql_page(void **state)
{
	(void)state;
	cw_batch_query_t q = {CW_BATCH_MYSQL, "shop", "orders", "updated_at",
	                      CW_BATCH_COLUMN_LOCAL_TIME, one_key, 1, 0, 100, "HEX(`b`), t.`id`", NULL};
	char *sql = page(&q, true);
	assert_string_equal(sql, "SELECT HEX(`b`), t.`id`, TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', "
	                         "CONVERT_TZ(t.`updated_at`, ?, '+00:00')) FROM `shop`.`orders` AS t "
	                         "WHERE t.`updated_at` >= ? AND (t.`updated_at` > ? OR "
	                         "(t.`updated_at` = ? AND (t.`id`) > (?))) AND t.`updated_at` <= "
	                         "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', ?) - INTERVAL 0 MICROSECOND "
	                         "ORDER BY t.`updated_at`, t.`id` LIMIT 100");
	free(sql);
	const char *keys[] = {"9"};
	const char *params[CW_BATCH_MAX_PARAMS];
	assert_int_equal(cw_batch_page_params(&q, "v", keys, "+02:00", params), 6);
	assert_string_equal(params[0], "+02:00");
	assert_string_equal(params[1], "v");
	assert_string_equal(params[2], "v");
	assert_string_equal(params[3], "v");
	assert_string_equal(params[4], "9");
	assert_string_equal(params[5], "+02:00");
}

static void test_buckets(void **state)
{
	(void)state;
	cw_batch_query_t q = {CW_BATCH_POSTGRES, "public", "orders", "updated_at",
	                      CW_BATCH_COLUMN_TIME, one_key, 1, 0, 500, NULL, NULL};
	cw_buf_t out = CW_BUF_INIT;
	cw_batch_sql_buckets(&q, &out);
	assert_string_equal(cw_buf_cstr(&out),
	                    "SELECT h & 1023, count(*), sum(h::numeric)::text FROM (SELECT ('x' || "
	                    "substr(md5(s.doc_id), 1, 16))::bit(64)::bigint AS h FROM (SELECT "
	                    "t.\"id\"::text AS doc_id FROM \"public\".\"orders\" AS t) AS s) AS b "
	                    "GROUP BY 1");
	cw_buf_reset(&out);
	cw_batch_sql_bucket_keys(&q, &out);
	assert_non_null(strstr(cw_buf_cstr(&out), "& 1023) = ANY($1::int[])"));
	/* The hub hashes its doc_ids with the same expression. */
	assert_non_null(strstr(cw_batch_sql_hub_buckets(),
	                       "('x' || substr(md5(doc_id), 1, 16))::bit(64)::bigint AS h"));
	assert_non_null(strstr(cw_batch_sql_hub_bucket_keys(), "= ANY($2::int[])"));
	cw_buf_free(&out);
}

/* MySQL: the server hashes the doc_id, written in SQL as the snapshot writes it. */
static void test_mysql_buckets(void **state)
{
	(void)state;
	const cw_batch_key_form_t number[] = {CW_BATCH_KEY_NUMBER};
	cw_batch_query_t q = {CW_BATCH_MYSQL, "shop", "or`ders", "updated_at",
	                      CW_BATCH_COLUMN_TIME, one_key, 1, 0, 100, NULL, number};
	cw_buf_t out = CW_BUF_INIT;
	assert_true(cw_batch_sql_hashable(&q));
	cw_batch_sql_buckets(&q, &out);
	assert_string_equal(cw_buf_cstr(&out),
	                    "SELECT CONV(SUBSTRING(h.m, 14, 3), 16, 10) & 1023 AS b, COUNT(*), "
	                    "SUM(CAST(CONV(SUBSTRING(h.m, 1, 16), 16, -10) AS SIGNED)) FROM "
	                    "(SELECT MD5(t.`id` + 0) AS m FROM `shop`.`or``ders` AS t) AS h GROUP BY b");
	/* The rows of some buckets, the list inlined once checked. */
	q.select = "t.`id`";
	cw_buf_reset(&out);
	assert_int_equal(cw_batch_sql_bucket_rows(&q, "{1,70,1023}", &out), 0);
	assert_string_equal(cw_buf_cstr(&out),
	                    "SELECT t.`id` FROM `shop`.`or``ders` AS t WHERE (CONV(SUBSTRING("
	                    "MD5(t.`id` + 0), 14, 3), 16, 10) & 1023) IN (1,70,1023)");
	const char *const bad[] = {"{}", "1,2", "{1,}", "{,1}", "{1;DROP}", "{1,,2}", "{1)}", ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_buf_reset(&out);
		assert_int_equal(cw_batch_sql_bucket_rows(&q, bad[i], &out), CW_EINVAL);
		assert_int_equal(out.len, 0);
	}
	/* A text key is hashed as UTF-8, whatever the column's charset. */
	const cw_batch_key_form_t text[] = {CW_BATCH_KEY_TEXT};
	q.key_forms = text;
	cw_buf_reset(&out);
	cw_batch_sql_buckets(&q, &out);
	assert_non_null(strstr(cw_buf_cstr(&out), "MD5(CONVERT(t.`id` USING utf8mb4)) AS m"));
	/* A single key of another form has no doc_id; a float is not written alike. */
	const cw_batch_key_form_t single_bad[] = {CW_BATCH_KEY_TIMESTAMP, CW_BATCH_KEY_BINARY,
	                                          CW_BATCH_KEY_UNHASHABLE};
	for (size_t i = 0; i < 3; i++) {
		q.key_forms = &single_bad[i];
		assert_false(cw_batch_sql_hashable(&q));
	}
	q.key_forms = NULL;
	assert_false(cw_batch_sql_hashable(&q));
	q.dialect = CW_BATCH_POSTGRES;
	q.key_forms = number;
	assert_false(cw_batch_sql_hashable(&q));
	cw_buf_free(&out);
}

/* A composite key: the JSON array my_scan_doc_id writes, escapes and all. */
static void test_mysql_composite_doc_id(void **state)
{
	(void)state;
	static const char *const keys[] = {"n", "s", "ts", "b"};
	const cw_batch_key_form_t forms[] = {CW_BATCH_KEY_NUMBER, CW_BATCH_KEY_TEXT,
	                                     CW_BATCH_KEY_TIMESTAMP, CW_BATCH_KEY_BINARY};
	cw_batch_query_t q = {CW_BATCH_MYSQL, "shop", "orders", "updated_at",
	                      CW_BATCH_COLUMN_TIME, keys, 4, 0, 100, NULL, forms};
	cw_buf_t out = CW_BUF_INIT;
	assert_true(cw_batch_sql_hashable(&q));
	cw_batch_sql_buckets(&q, &out);
	const char *sql = cw_buf_cstr(&out);
	assert_non_null(strstr(sql, "(SELECT MD5(CONCAT('[', t.`n` + 0, ',', CONCAT('\"', REPLACE("));
	/* The backslash is escaped first, then the quote, then the short escapes. */
	assert_non_null(strstr(sql, "CONVERT(t.`s` USING utf8mb4), X'5C', X'5C5C'), X'22', X'5C22'), "
	                            "X'0A', X'5C6E'), X'09', X'5C74'), X'0D', X'5C72'), X'08', "
	                            "X'5C62'), X'0C', X'5C66'), X'00', X'5C7530303030')"));
	/* Other control characters and DEL as \u00xx, lowercase. */
	assert_non_null(strstr(sql, "X'1F', X'5C7530303166')"));
	assert_non_null(strstr(sql, "X'7F', X'5C7530303766'), '\"')"));
	assert_null(strstr(sql, "X'0A', X'5C753030"));
	assert_non_null(strstr(sql, ", ',', CONCAT('\"', t.`ts`, IF(LEFT(t.`ts`, 10) = "
	                            "'0000-00-00', '', '+00'), '\"'), ',', CONCAT('\"', "
	                            "X'5C5C78', LOWER(HEX(t.`b`)), '\"'), ']')) AS m FROM"));
	/* 7 short escapes and 28 \u00xx ones (32 control characters less 5, and DEL). */
	size_t replaces = 0;
	for (const char *p = sql; (p = strstr(p, "REPLACE(")) != NULL; p++)
		replaces++;
	assert_int_equal(replaces, 35);
	/* One form SQL cannot write makes the whole key unhashable. */
	const cw_batch_key_form_t with_float[] = {CW_BATCH_KEY_NUMBER, CW_BATCH_KEY_UNHASHABLE,
	                                          CW_BATCH_KEY_TEXT, CW_BATCH_KEY_TEXT};
	q.key_forms = with_float;
	assert_false(cw_batch_sql_hashable(&q));
	cw_buf_free(&out);
}

static void test_marker(void **state)
{
	(void)state;
	cw_batch_marker_t marker = {0};
	marker.version = 3;
	marker.rows = 1200;
	const char *keys[] = {"a\"b", "7"};
	cw_batch_marker_set(&marker, "2026-12-04 20:41:38.123456+00", keys, 2);
	char *json = cw_batch_marker_encode(&marker);
	assert_string_equal(json, "{\"version\":3,\"value\":\"2026-12-04 20:41:38.123456+00\","
	                          "\"key\":[\"a\\\"b\",\"7\"],\"rows\":1200}");
	cw_batch_marker_t back = {0};
	assert_int_equal(cw_batch_marker_decode(json, &back, NULL), 0);
	assert_int_equal(back.version, 3);
	assert_int_equal(back.rows, 1200);
	assert_string_equal(back.value, marker.value);
	assert_int_equal(back.nkeys, 2);
	assert_string_equal(back.keys[0], "a\"b");
	free(json);
	/* No position yet: only the version. */
	cw_batch_marker_clear(&marker);
	marker.version = 1;
	json = cw_batch_marker_encode(&marker);
	assert_string_equal(json, "{\"version\":1,\"rows\":0}");
	assert_int_equal(cw_batch_marker_decode(json, &back, NULL), 0);
	assert_null(back.value);
	free(json);
	static const char *const bad[] = {"", "[]", "{\"value\":\"x\",\"key\":[\"1\"]}",
	                                  "{\"version\":1,\"value\":\"x\"}",
	                                  "{\"version\":1,\"value\":\"x\",\"key\":[]}",
	                                  "{\"version\":1,\"value\":\"x\",\"key\":[1]}",
	                                  "{\"version\":\"1\"}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_err_t err = {0};
		assert_int_equal(cw_batch_marker_decode(bad[i], &back, &err), CW_EINVAL);
		assert_null(back.value);
	}
	cw_batch_marker_clear(&back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postgres_page),
		cmocka_unit_test(test_mysql_page),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_mysql_buckets),
		cmocka_unit_test(test_mysql_composite_doc_id),
		cmocka_unit_test(test_marker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
