/*
 * Unit tests of MySQL 8's GTID sets: text parse and format, contains and add,
 * the binary form and the COM_BINLOG_DUMP_GTID command, against byte vectors
 * written from MySQL's protocol documentation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/mysql_gtid_set.h"

#include <stdlib.h>
#include <string.h>

#define U1 "3e11fa47-71ca-11e1-9e33-c80aa9429562"
#define U0 "00000000-0000-0000-0000-000000000001"

static const uint8_t u1_bytes[16] = {0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1,
                                     0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62};

/* text parsed then formatted */
static char *canonical(const char *text)
{
	cw_gtid_set_t set = {0};
	cw_err_t err = {0};
	if (cw_gtid_set_parse(text, &set, &err) != 0)
		fail_msg("\"%s\" does not parse: %s", text, err.message);
	cw_buf_t out = CW_BUF_INIT;
	cw_gtid_set_format(&set, &out);
	cw_buf_append_str(&out, "");
	cw_gtid_set_clear(&set);
	return cw_buf_take(&out);
}

static void assert_canonical(const char *text, const char *want)
{
	char *got = canonical(text);
	assert_string_equal(got, want);
	free(got);
}

static void test_parse_format(void **state)
{
	(void)state;
	assert_canonical("", "");
	assert_canonical("  ", "");
	assert_canonical(U1 ":1-5", U1 ":1-5");
	/* as MySQL prints @@gtid_executed: upper case allowed, newlines after commas */
	assert_canonical("3E11FA47-71CA-11E1-9E33-C80AA9429562:23,\n" U0 ":1", U0 ":1," U1 ":23");
	/* the same uuid twice, unsorted, overlapping and adjacent intervals: merged */
	assert_canonical(U1 ":7-9:1-5, " U1 ":23:6", U1 ":1-9:23");
	assert_canonical(U1 ":1-3:5-6:4", U1 ":1-6");
	assert_canonical(U1 ":2-4:1-10", U1 ":1-10");
	assert_canonical(U1 ":9223372036854775806", U1 ":9223372036854775806");
	static const char *const bad[] = {
		U1, U1 ":", U1 ":0", U1 ":5-3", U1 ":1,", U1 ":1-", U1 ":1 x", "xyz:1",
		"3e11fa47-71ca-11e1-9e33-c80aa942956:1", "3e11fa4771ca11e19e33c80aa9429562:1",
		U1 ":9223372036854775807", U1 ":-1", U1 "::1", ",",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_gtid_set_t set = {0};
		cw_err_t err = {0};
		if (cw_gtid_set_parse(bad[i], &set, &err) != CW_EINVAL)
			fail_msg("\"%s\" parsed", bad[i]);
		assert_non_null(strstr(err.message, "is not valid at offset"));
		assert_int_equal(set.nuuids, 0);
	}
}

static cw_binlog_gtid_t mysql_gtid(const uint8_t uuid[16], int64_t gno)
{
	cw_binlog_gtid_t gtid = {.mysql = true, .gno = gno};
	memcpy(gtid.uuid, uuid, 16);
	return gtid;
}

static void assert_set(const cw_gtid_set_t *set, const char *want)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_gtid_set_format(set, &out);
	cw_buf_append_str(&out, "");
	assert_string_equal(out.data, want);
	cw_buf_free(&out);
}

static void test_contains_add(void **state)
{
	(void)state;
	cw_gtid_set_t set = {0};
	assert_int_equal(cw_gtid_set_parse(U1 ":1-5", &set, NULL), 0);
	cw_binlog_gtid_t g5 = mysql_gtid(u1_bytes, 5), g6 = mysql_gtid(u1_bytes, 6);
	assert_true(cw_gtid_set_contains(&set, &g5));
	assert_false(cw_gtid_set_contains(&set, &g6));
	cw_binlog_gtid_t g0 = mysql_gtid(u1_bytes, 0);
	assert_int_equal(cw_gtid_set_add(&set, &g0), CW_EINVAL);
	assert_int_equal(cw_gtid_set_add(&set, &g6), 0);
	assert_set(&set, U1 ":1-6");
	cw_binlog_gtid_t g8 = mysql_gtid(u1_bytes, 8), g7 = mysql_gtid(u1_bytes, 7);
	assert_int_equal(cw_gtid_set_add(&set, &g8), 0);
	assert_set(&set, U1 ":1-6:8");
	assert_false(cw_gtid_set_contains(&set, &g7));
	assert_int_equal(cw_gtid_set_add(&set, &g7), 0);
	assert_set(&set, U1 ":1-8");
	assert_int_equal(cw_gtid_set_add(&set, &g7), 0);   /* again: no change */
	assert_set(&set, U1 ":1-8");
	static const uint8_t u0_bytes[16] = {[15] = 1};
	cw_binlog_gtid_t other = mysql_gtid(u0_bytes, 3);
	assert_false(cw_gtid_set_contains(&set, &other));
	assert_int_equal(cw_gtid_set_add(&set, &other), 0);
	assert_set(&set, U0 ":3," U1 ":1-8");
	/* a MariaDB GTID is never in a MySQL set */
	cw_binlog_gtid_t maria = {.domain_id = 0, .server_id = 1, .seq = 5};
	assert_false(cw_gtid_set_contains(&set, &maria));
	assert_int_equal(cw_gtid_set_add(&set, &maria), CW_EINVAL);
	cw_gtid_set_clear(&set);
	cw_gtid_set_clear(&set);   /* an empty set: no-op */
}

/* U1:1-5:7 in MySQL's binary form: n_sids, uuid, n_intervals, [start, end) pairs. */
static const uint8_t encoded[] = {
	1, 0, 0, 0, 0, 0, 0, 0,
	0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62,
	2, 0, 0, 0, 0, 0, 0, 0,
	1, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0,
	7, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0,
};

static void test_binary_form(void **state)
{
	(void)state;
	cw_gtid_set_t set = {0};
	assert_int_equal(cw_gtid_set_parse(U1 ":7:1-5", &set, NULL), 0);
	cw_buf_t out = CW_BUF_INIT;
	cw_gtid_set_encode(&set, &out);
	assert_int_equal(out.len, sizeof encoded);
	assert_memory_equal(out.data, encoded, sizeof encoded);
	cw_gtid_set_clear(&set);
	assert_int_equal(cw_gtid_set_decode(encoded, sizeof encoded, &set, NULL), 0);
	assert_set(&set, U1 ":1-5:7");
	/* the empty set is n_sids = 0 */
	cw_gtid_set_clear(&set);
	cw_buf_reset(&out);
	cw_gtid_set_encode(&set, &out);
	assert_int_equal(out.len, 8);
	assert_memory_equal(out.data, (const uint8_t[8]){0}, 8);
	/* cut anywhere, or with a byte after its end, or an empty interval: refused */
	cw_err_t err = {0};
	for (size_t len = 0; len < sizeof encoded; len++) {
		if (cw_gtid_set_decode(encoded, len, &set, &err) != CW_EPROTO)
			fail_msg("a set cut at %zu bytes decoded", len);
		assert_int_equal(set.nuuids, 0);
	}
	uint8_t longer[sizeof encoded + 1];
	memcpy(longer, encoded, sizeof encoded);
	longer[sizeof encoded] = 0;
	assert_int_equal(cw_gtid_set_decode(longer, sizeof longer, &set, &err), CW_EPROTO);
	assert_non_null(strstr(err.message, "1 bytes after its end"));
	uint8_t empty_interval[sizeof encoded];
	memcpy(empty_interval, encoded, sizeof encoded);
	empty_interval[56] = 1;   /* the second interval: [7, 1) */
	assert_int_equal(cw_gtid_set_decode(empty_interval, sizeof empty_interval, &set, &err),
	                 CW_EPROTO);
	assert_non_null(strstr(err.message, "is not valid"));
	uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	assert_int_equal(cw_gtid_set_decode(huge, sizeof huge, &set, &err), CW_EPROTO);
	cw_buf_free(&out);
}

static void test_dump_command(void **state)
{
	(void)state;
	cw_gtid_set_t set = {0};
	assert_int_equal(cw_gtid_set_parse(U1 ":1-5:7", &set, NULL), 0);
	cw_buf_t out = CW_BUF_INIT;
	cw_gtid_dump_command(&set, 0x40000001u, 0, &out);
	static const uint8_t head[] = {
		0x1e,                                   /* COM_BINLOG_DUMP_GTID */
		0x04, 0x00,                             /* flags: BINLOG_THROUGH_GTID */
		0x01, 0x00, 0x00, 0x40,                 /* server_id */
		0x00, 0x00, 0x00, 0x00,                 /* binlog name: none */
		0x04, 0, 0, 0, 0, 0, 0, 0,              /* position 4 */
		sizeof encoded, 0, 0, 0,                /* the set's length */
	};
	assert_int_equal(out.len, sizeof head + sizeof encoded);
	assert_memory_equal(out.data, head, sizeof head);
	assert_memory_equal(out.data + sizeof head, encoded, sizeof encoded);
	cw_buf_free(&out);
	cw_gtid_set_clear(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format),
		cmocka_unit_test(test_contains_add),
		cmocka_unit_test(test_binary_form),
		cmocka_unit_test(test_dump_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
