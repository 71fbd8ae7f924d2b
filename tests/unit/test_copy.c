/* This file contains the unit tests of hub/copy.c: values as COPY text the server reads back unchanged. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "hub/copy.h"

#include <string.h>

static void test_values_escaped(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		const char *text;
	} cases[] = {
		{NULL, "\\N"},
		{"", ""},
		{"plain {\"a\":1}", "plain {\"a\":1}"},
		{"\\", "\\\\"},
		{"\\N", "\\\\N"},
		{"\\.", "\\\\."},
		{"a\tb\nc\rd", "a\\tb\\nc\\rd"},
		{"\t\t", "\\t\\t"},
		{"ends with \\", "ends with \\\\"},
		{"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_buf_t buf = CW_BUF_INIT;
		cw_buf_append_str(&buf, "x");   /* appends, never overwrites */
		cw_copy_append_value(&buf, cases[i].value);
		assert_int_equal(buf.len, 1 + strlen(cases[i].text));
		assert_memory_equal(buf.data + 1, cases[i].text, buf.len - 1);
		cw_buf_free(&buf);
	}
}

static void test_row_and_timestamp(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_copy_append_value(&buf, "upsert");
	cw_copy_append_sep(&buf);
	cw_copy_append_timestamp(&buf, INT64_C(1714566600123456));
	cw_copy_append_sep(&buf);
	cw_copy_append_timestamp(&buf, -1);
	cw_copy_end_row(&buf);
	const char *want = "upsert\t2024-05-01 12:30:00.123456+00\t1969-12-31 23:59:59.999999+00\n";
	assert_int_equal(buf.len, strlen(want));
	assert_memory_equal(buf.data, want, buf.len);
	cw_buf_free(&buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_escaped),
		cmocka_unit_test(test_row_and_timestamp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
