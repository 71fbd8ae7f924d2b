/* This file contains the unit tests of hub/copy.c: rows in COPY's binary format, byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "hub/copy.h"

#include <string.h>

static void test_header_and_trailer(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_copy_binary_header(&buf);
	cw_copy_binary_trailer(&buf);
	static const unsigned char want[] = {
		'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0,   /* signature */
		0, 0, 0, 0,   /* flags */
		0, 0, 0, 0,   /* header extension length */
		0xff, 0xff,   /* trailer: -1 */
	};
	assert_int_equal(buf.len, sizeof want);
	assert_memory_equal(buf.data, want, sizeof want);
	cw_buf_free(&buf);
}

static void test_row_values(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_buf_append_str(&buf, "x");   /* appends, never overwrites */
	cw_copy_binary_row(&buf, 7);
	cw_copy_binary_text(&buf, "a\tb\\N\n");   /* no escaping: the bytes as they are */
	cw_copy_binary_text(&buf, NULL);
	cw_copy_binary_text(&buf, "");
	cw_copy_binary_int4(&buf, -2);
	cw_copy_binary_int8(&buf, INT64_C(0x0102030405060708));
	cw_copy_binary_int8(&buf, -3);
	cw_copy_binary_timestamp(&buf, 0);                            /* 1970-01-01 */
	cw_copy_binary_timestamp(&buf, INT64_C(946684800000001));     /* 2000-01-01, +1 µs */
	static const unsigned char want[] = {
		'x',
		0, 7,
		0, 0, 0, 6, 'a', '\t', 'b', '\\', 'N', '\n',
		0xff, 0xff, 0xff, 0xff,
		0, 0, 0, 0,
		0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe,
		0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
		0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd,
		/* -946684800000000 µs from PostgreSQL's epoch */
		0, 0, 0, 8, 0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00,
		0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1,
	};
	assert_int_equal(buf.len, sizeof want);
	assert_memory_equal(buf.data, want, sizeof want);
	cw_buf_free(&buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_and_trailer),
		cmocka_unit_test(test_row_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
