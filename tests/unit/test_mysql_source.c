/*
 * This file contains the unit tests of the MySQL source's pure parts: the
 * mysql:// url (user, password with escapes, default port, what is refused)
 * and GTID positions (parse, format, advance per domain).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "capture/mysql_internal.h"

static void test_url(void **state)
{
	(void)state;
	my_url_t url;
	cw_err_t err = {0};
	assert_int_equal(my_url_parse("mysql://rep:p%40ss:w@db.internal:3307/shop", &url, &err), 0);
	assert_string_equal(url.user, "rep");
	assert_string_equal(url.password, "p@ss:w");
	assert_string_equal(url.host, "db.internal");
	assert_int_equal(url.port, 3307);
	assert_string_equal(url.database, "shop");
	my_url_clear(&url);
	assert_int_equal(my_url_parse("mysql://127.0.0.1/app?ssl=0", &url, &err), 0);
	assert_null(url.user);
	assert_null(url.password);
	assert_int_equal(url.port, 3306);
	assert_string_equal(url.database, "app");
	my_url_clear(&url);
	static const char *const bad[] = {"postgresql://h/db", "mysql://h:0/db", "mysql://h:99999/db",
		"mysql://h:12x/db", "mysql://h", "mysql://h/", "mysql:///db"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(my_url_parse(bad[i], &url, &err), CW_EINVAL);
}

static void test_positions(void **state)
{
	(void)state;
	my_position_t pos;
	char text[MY_POSITION_LEN];
	cw_err_t err = {0};
	assert_int_equal(my_position_parse("0-1-42,7-2-18446744073709551615", &pos, &err), 0);
	assert_int_equal(pos.count, 2);
	assert_int_equal(pos.gtids[1].domain_id, 7);
	assert_true(pos.gtids[1].seq == UINT64_MAX);
	my_position_format(&pos, text);
	assert_string_equal(text, "0-1-42,7-2-18446744073709551615");
	cw_binlog_gtid_t next = {.domain_id = 0, .server_id = 3, .seq = 43};
	my_position_advance(&pos, &next);
	cw_binlog_gtid_t other = {.domain_id = 9, .server_id = 1, .seq = 1};
	my_position_advance(&pos, &other);
	my_position_format(&pos, text);
	assert_string_equal(text, "0-3-43,7-2-18446744073709551615,9-1-1");
	assert_int_equal(my_position_parse("", &pos, &err), 0);
	assert_int_equal(pos.count, 0);
	my_position_format(&pos, text);
	assert_string_equal(text, "");
	static const char *const bad[] = {"0-1", "0-1-x", "0-1-2;1-1-1", "a-b-c", "0-1-2,", "4294967296-1-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (my_position_parse(bad[i], &pos, &err) != CW_EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_positions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
