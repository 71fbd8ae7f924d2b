/* Unit tests of the byte buffer's number formatting (core/buf.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Each value appended reads as printf prints it. */
static void test_integers(void **state)
{
	(void)state;
	const uint64_t unsigned_values[] = {0, 7, 10, 99, 4294967295u, UINT64_MAX};
	const int64_t signed_values[] = {0, -1, 42, -9223372036854775807 - 1, INT64_MAX};
	char want[32];
	for (size_t i = 0; i < sizeof unsigned_values / sizeof unsigned_values[0]; i++) {
		cw_buf_t out = CW_BUF_INIT;
		cw_buf_append_str(&out, "x");
		cw_buf_append_u64(&out, unsigned_values[i]);
		snprintf(want, sizeof want, "x%" PRIu64, unsigned_values[i]);
		assert_string_equal(cw_buf_cstr(&out), want);
		cw_buf_free(&out);
	}
	for (size_t i = 0; i < sizeof signed_values / sizeof signed_values[0]; i++) {
		cw_buf_t out = CW_BUF_INIT;
		cw_buf_append_i64(&out, signed_values[i]);
		snprintf(want, sizeof want, "%" PRId64, signed_values[i]);
		assert_string_equal(cw_buf_cstr(&out), want);
		cw_buf_free(&out);
	}
}

/* Zero-padded digits, as "%0*u" prints a value that fits its width. */
static void test_digits(void **state)
{
	(void)state;
	cw_buf_t out = CW_BUF_INIT;
	cw_buf_append_digits(&out, 7, 2);
	cw_buf_append_char(&out, ':');
	cw_buf_append_digits(&out, 2024, 4);
	cw_buf_append_char(&out, ':');
	cw_buf_append_digits(&out, 5, 6);
	cw_buf_append_char(&out, ':');
	cw_buf_append_digits(&out, 0, 1);
	cw_buf_append_char(&out, ':');
	cw_buf_append_digits(&out, 999999999, 9);
	assert_string_equal(cw_buf_cstr(&out), "07:2024:000005:0:999999999");
	cw_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_digits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
