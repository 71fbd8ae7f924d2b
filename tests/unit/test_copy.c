/*
 * Unit tests of the binary COPY encoder (hub/copy.h), byte for byte: the
 * signature, a row's column count, lengths, NULL, int4, and timestamptz
 * counted from 2000-01-01 on both sides of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "hub/copy.h"

static void binary_rows_byte_for_byte(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_copy_binary_header(&buf);
	cw_copy_binary_row(&buf, 4);
	cw_copy_binary_text(&buf, "a\tb");
	cw_copy_binary_text(&buf, NULL);
	cw_copy_binary_int4(&buf, -2);
	/* 2000-01-01 00:00:01 UTC: one second after PostgreSQL's epoch */
	cw_copy_binary_timestamp(&buf, INT64_C(946684801000000));
	cw_copy_binary_row(&buf, 1);
	cw_copy_binary_timestamp(&buf, 0);   /* 1970: before PostgreSQL's epoch */
	cw_copy_binary_trailer(&buf);
	static const unsigned char want[] = {
		'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0,   /* signature */
		0, 0, 0, 0,  0, 0, 0, 0,                                   /* flags, extension */
		0, 4,                                                      /* 4 columns */
		0, 0, 0, 3, 'a', '\t', 'b',
		0xff, 0xff, 0xff, 0xff,                                    /* NULL */
		0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe,
		0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40,               /* 1,000,000 us */
		0, 1,
		0, 0, 0, 8, 0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00, /* -946684800000000 */
		0xff, 0xff,                                                /* trailer */
	};
	assert_int_equal(buf.len, sizeof want);
	assert_memory_equal(buf.data, want, sizeof want);
	cw_buf_free(&buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(binary_rows_byte_for_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
