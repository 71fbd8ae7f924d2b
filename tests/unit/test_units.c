/* This file contains the unit tests of core/units.c: durations, sizes and integers, text to numbers and back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/units.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct value_case {
	const char *text;
	int64_t value;
} value_case_t;

typedef struct error_case {
	const char *text;
	const char *message;
} error_case_t;

static const value_case_t duration_cases[] = {
	{"250ms", 250},
	{"5s", 5000},
	{"10m", 600000},
	{"1h", 3600000},
	{"7d", 604800000},
	{"0", 0},
	{"0s", 0},
	{"1h30m", 5400000},
	{"1m30s250ms", 90250},
	{"100ms", 100},
	{"106751991167d", INT64_C(106751991167) * 86400000},
	{"9223372036854775807ms", INT64_MAX},
};

static const error_case_t duration_errors[] = {
	{"", "invalid duration: empty (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"5", "invalid duration: a number without a unit (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"5x", "invalid duration: unknown unit \"x\" (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"5S", "invalid duration: unknown unit \"S\" (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"5 s", "invalid duration: unexpected space at position 2 (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"-5s", "invalid duration: unexpected character '-' at position 1 (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"1.5s", "invalid duration: unexpected character '.' at position 2 (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"s", "invalid duration: unexpected character 's' at position 1 (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"5s\n", "invalid duration: unexpected byte 0x0a at position 3 (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"106751991168d", "invalid duration: too large (the limit is 106751991167d)"},
	{"9223372036854775807ms1ms", "invalid duration: too large (the limit is 106751991167d)"},
	{"99999999999999999999s", "invalid duration: number too large"},
};

static const value_case_t size_cases[] = {
	{"64MiB", INT64_C(64) << 20},
	{"1GiB", INT64_C(1) << 30},
	{"512KiB", 512 * 1024},
	{"2TiB", INT64_C(2) << 40},
	{"4096", 4096},
	{"4096B", 4096},
	{"0", 0},
	{"100MB", 100000000},
	{"1kB", 1000},
	{"3GB", 3000000000},
	{"64mib", INT64_C(64) << 20},
	{"8388607TiB", INT64_C(8388607) << 40},
};

static const error_case_t size_errors[] = {
	{"", "invalid size: empty (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB)"},
	{"64XB", "invalid size: unknown unit \"XB\" (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB)"},
	{"64 MiB", "invalid size: unexpected space at position 3 (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB)"},
	{"MiB", "invalid size: unexpected character 'M' at position 1 (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB)"},
	{"1MiB2", "invalid size: unexpected character '2' at position 5 (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB)"},
	{"-1", "invalid size: unexpected character '-' at position 1 (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB)"},
	{"8388608TiB", "invalid size: too large (the limit is 8388607TiB)"},
	{"99999999999999999999", "invalid size: number too large"},
};

static void test_duration_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof duration_cases / sizeof duration_cases[0]; i++) {
		int64_t ms = -1;
		cw_err_t err = {0};
		int rc = cw_duration_parse(duration_cases[i].text, &ms, &err);
		if (rc != 0 || ms != duration_cases[i].value)
			fail_msg("duration \"%s\": rc %d, %" PRId64 " ms, want %" PRId64 " (%s)",
			         duration_cases[i].text, rc, ms, duration_cases[i].value, err.message);
	}
}

static void test_duration_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof duration_errors / sizeof duration_errors[0]; i++) {
		int64_t ms = 12345;
		cw_err_t err = {0};
		assert_int_equal(cw_duration_parse(duration_errors[i].text, &ms, &err), CW_EINVAL);
		assert_int_equal(err.code, CW_EINVAL);
		assert_string_equal(err.message, duration_errors[i].message);
		assert_int_equal(ms, 12345);   /* untouched on failure */
	}
	assert_int_equal(cw_duration_parse(NULL, &(int64_t){0}, NULL), CW_EINVAL);
}

static void test_size_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof size_cases / sizeof size_cases[0]; i++) {
		int64_t bytes = -1;
		cw_err_t err = {0};
		int rc = cw_size_parse(size_cases[i].text, &bytes, &err);
		if (rc != 0 || bytes != size_cases[i].value)
			fail_msg("size \"%s\": rc %d, %" PRId64 " bytes, want %" PRId64 " (%s)",
			         size_cases[i].text, rc, bytes, size_cases[i].value, err.message);
	}
}

static void test_size_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof size_errors / sizeof size_errors[0]; i++) {
		int64_t bytes = 12345;
		cw_err_t err = {0};
		assert_int_equal(cw_size_parse(size_errors[i].text, &bytes, &err), CW_EINVAL);
		assert_string_equal(err.message, size_errors[i].message);
		assert_int_equal(bytes, 12345);
	}
}

static void test_format(void **state)
{
	(void)state;
	char out[CW_UNITS_FORMAT_LEN];
	static const value_case_t durations[] = {
		{"7d", 604800000}, {"90s", 90000}, {"250ms", 250}, {"0", 0},  {"1h", 3600000},
		{"1001ms", 1001},  {"25h", 90000000}, {"-5ms", -5},
	};
	for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
		cw_duration_format(durations[i].value, out);
		assert_string_equal(out, durations[i].text);
	}
	static const value_case_t sizes[] = {
		{"1MiB", 1 << 20}, {"1536KiB", 1536 * 1024}, {"100B", 100}, {"0", 0},
		{"1000B", 1000},   {"3TiB", INT64_C(3) << 40},
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		cw_size_format(sizes[i].value, out);
		assert_string_equal(out, sizes[i].text);
	}
}

/* What the printer writes, the parser reads back to the same value. */
static void test_round_trip(void **state)
{
	(void)state;
	static const int64_t values[] = {0, 1, 999, 1000, 61000, 86400000, 86400001, INT64_MAX};
	char out[CW_UNITS_FORMAT_LEN];
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		int64_t back = -1;
		cw_duration_format(values[i], out);
		assert_int_equal(cw_duration_parse(out, &back, NULL), 0);
		assert_true(back == values[i]);
		back = -1;
		cw_size_format(values[i], out);
		assert_int_equal(cw_size_parse(out, &back, NULL), 0);
		assert_true(back == values[i]);
	}
}

/* Whole integers in a range: what options and query parameters give. */
static void test_integer_parse(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(cw_integer_parse("--limit", "1", 1, 10000, &v, NULL), 0);
	assert_int_equal(v, 1);
	assert_int_equal(cw_integer_parse("--limit", "10000", 1, 10000, &v, NULL), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(cw_integer_parse("x", "-5", -10, 0, &v, NULL), 0);
	assert_int_equal(v, -5);
	assert_int_equal(cw_integer_parse("x", "9223372036854775807", 0, INT64_MAX, &v, NULL), 0);
	assert_true(v == INT64_MAX);
	static const char *const bad[] = {"", "+1", " 1", "\t1", "1 ", "1x", "0x10", "1.0", "-",
	                                  "9223372036854775808", "ten"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_err_t err = {0};
		v = 42;
		if (cw_integer_parse("--limit", bad[i], 0, INT64_MAX, &v, &err) != CW_EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(v, 42);
		assert_non_null(strstr(err.message, "--limit: expected an integer"));
	}
	cw_err_t err = {0};
	assert_int_equal(cw_integer_parse("--limit", "0", 1, 10000, &v, &err), CW_EINVAL);
	assert_string_equal(err.message, "--limit: 0 is out of range (1..10000)");
	assert_int_equal(cw_integer_parse("--limit", "10001", 1, 10000, &v, &err), CW_EINVAL);
	assert_string_equal(err.message, "--limit: 10001 is out of range (1..10000)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse), cmocka_unit_test(test_duration_errors),
		cmocka_unit_test(test_size_parse),     cmocka_unit_test(test_size_errors),
		cmocka_unit_test(test_format),         cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_integer_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
