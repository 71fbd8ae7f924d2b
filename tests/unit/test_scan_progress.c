/* Unit tests of a table scan's progress record (capture/scan_progress.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/scan_progress.h"

#include <stdlib.h>
#include <string.h>

static void test_round_trip(void **state)
{
	(void)state;
	cw_scan_progress_t p = {0};
	p.version = 3;
	cw_scan_progress_set_origin(&p, "cachewarp_app", "0/16B3748");
	const char *const key[] = {"acme", "it's \"41\"\\"};
	cw_scan_progress_set_key(&p, key, 2);
	p.rows = 4100;
	char *json = cw_scan_progress_encode(&p);
	assert_string_equal(json, "{\"version\":3,\"slot\":\"cachewarp_app\",\"lsn\":\"0/16B3748\","
	                          "\"key\":[\"acme\",\"it's \\\"41\\\"\\\\\"],\"rows\":4100,"
	                          "\"done\":false}");
	cw_scan_progress_t back = {0};
	assert_int_equal(cw_scan_progress_decode(json, &back, NULL), 0);
	assert_int_equal(back.version, 3);
	assert_string_equal(back.slot, "cachewarp_app");
	assert_string_equal(back.lsn, "0/16B3748");
	assert_int_equal(back.nkeys, 2);
	assert_string_equal(back.keys[1], key[1]);
	assert_int_equal(back.rows, 4100);
	assert_false(back.done);
	free(json);
	cw_scan_progress_clear(&back);
	cw_scan_progress_clear(&p);
	cw_scan_progress_clear(&p);   /* a cleared record is a no-op */
}

static void test_before_the_first_page_and_done(void **state)
{
	(void)state;
	cw_scan_progress_t p = {0};
	p.version = 1;
	p.done = true;
	char *json = cw_scan_progress_encode(&p);
	assert_string_equal(json, "{\"version\":1,\"slot\":\"\",\"lsn\":\"\",\"rows\":0,"
	                          "\"done\":true}");
	cw_scan_progress_t back = {0};
	assert_int_equal(cw_scan_progress_decode(json, &back, NULL), 0);
	assert_null(back.keys);
	assert_true(back.done);
	assert_string_equal(back.lsn, "");
	free(json);
	cw_scan_progress_clear(&back);
}

static void test_rejects_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
		"", "[]", "{\"version\":\"1\",\"slot\":\"\",\"lsn\":\"\",\"rows\":0,\"done\":false}",
		"{\"version\":1,\"lsn\":\"\",\"rows\":0,\"done\":false}",
		"{\"version\":1,\"slot\":\"\",\"lsn\":\"\",\"key\":[],\"rows\":0,\"done\":false}",
		"{\"version\":1,\"slot\":\"\",\"lsn\":\"\",\"key\":[1],\"rows\":0,\"done\":false}",
		"{\"version\":1,\"slot\":\"\",\"lsn\":\"\",\"rows\":0,\"done\":1}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_scan_progress_t p = {0};
		cw_err_t err = {0};
		assert_int_equal(cw_scan_progress_decode(bad[i], &p, &err), CW_EINVAL);
		assert_null(p.keys);
		assert_true(strstr(err.message, "scan progress") != NULL);
		cw_scan_progress_clear(&p);
	}
}

static char *cursor(const cw_scan_progress_t *p, const char *const *keys, size_t nkeys)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_scan_progress_cursor_sql(p, "public", "order\"s", keys, nkeys, &out);
	return cw_buf_take(&out);
}

static void test_cursor_in_key_order_after_the_key(void **state)
{
	(void)state;
	const char *const keys[] = {"tenant", "id"};
	cw_scan_progress_t p = {0};
	char *sql = cursor(&p, keys, 2);
	assert_string_equal(sql, "DECLARE cw_scan NO SCROLL CURSOR FOR SELECT * FROM \"public\"."
	                         "\"order\"\"s\" AS t ORDER BY t.\"tenant\", t.\"id\"");
	free(sql);
	const char *const last[] = {"acme", "41"};
	cw_scan_progress_set_key(&p, last, 2);
	sql = cursor(&p, keys, 2);
	assert_string_equal(sql, "DECLARE cw_scan NO SCROLL CURSOR FOR SELECT * FROM \"public\"."
	                         "\"order\"\"s\" AS t WHERE (t.\"tenant\", t.\"id\") > ($1, $2) "
	                         "ORDER BY t.\"tenant\", t.\"id\"");
	free(sql);
	cw_scan_progress_clear(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_before_the_first_page_and_done),
		cmocka_unit_test(test_rejects_malformed),
		cmocka_unit_test(test_cursor_in_key_order_after_the_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
