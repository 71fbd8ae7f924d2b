/*
 * This file contains the unit tests of hub/position_check.c: CRC-32C against
 * its published check value, a checksum that does not depend on how the
 * JSON was spelt (jsonb prints it differently from what was written) but
 * does on every value and on the key, and the verdicts a reader acts on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "hub/position_check.h"

#include <string.h>

static void test_crc32c_check_value(void **state)
{
	(void)state;
	/* The check value of CRC-32C (RFC 3720, B.4): "123456789" -> 0xe3069283. */
	assert_int_equal(cw_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(cw_crc32c(0, "", 0), 0);
	/* In pieces, the same as at once. */
	assert_int_equal(cw_crc32c(cw_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	/* 32 zero bytes (RFC 3720, B.4): 0x8a9136aa. */
	unsigned char zeros[32] = {0};
	assert_int_equal(cw_crc32c(0, zeros, sizeof zeros), 0x8a9136aau);
}

static void test_checksum_ignores_spelling(void **state)
{
	(void)state;
	char written[CW_POSITION_CHECKSUM_LEN], read_back[CW_POSITION_CHECKSUM_LEN];
	/* As the writer spells it, and as jsonb prints it: keys reordered, spaces added. */
	assert_int_equal(cw_position_checksum("pg_lsn:app", "{\"lsn\":\"0/16B3748\",\"txn\":\"0/16B3700\","
	                                      "\"txn_done\":3}", written), 0);
	assert_int_equal(cw_position_checksum("pg_lsn:app", "{\"txn\": \"0/16B3700\", \"lsn\": "
	                                      "\"0/16B3748\", \"txn_done\": 3}", read_back), 0);
	assert_string_equal(written, read_back);
	assert_int_equal(strncmp(written, "crc32c:", 7), 0);
	assert_int_equal(strlen(written), 15);
	/* \u escapes and their characters, nested documents. */
	assert_int_equal(cw_position_checksum("k", "{\"token\":{\"_data\":\"caf\\u00e9\"},\"n\":1.50}",
	                                      written), 0);
	assert_int_equal(cw_position_checksum("k", "{\"n\": 1.50, \"token\": {\"_data\": \"café\"}}",
	                                      read_back), 0);
	assert_string_equal(written, read_back);
	/* An integer past 64 bits is still a position. */
	assert_int_equal(cw_position_checksum("k", "{\"gtid\":123456789012345678901234}", written), 0);
	assert_int_equal(cw_position_checksum("k", "{\"gtid\": 123456789012345678901234}", read_back),
	                 0);
	assert_string_equal(written, read_back);
}

static void test_checksum_covers_value_and_key(void **state)
{
	(void)state;
	char base[CW_POSITION_CHECKSUM_LEN], other[CW_POSITION_CHECKSUM_LEN];
	const char *json = "{\"lsn\":\"0/16B3748\"}";
	assert_int_equal(cw_position_checksum("pg_lsn:app", json, base), 0);
	assert_int_equal(cw_position_checksum("pg_lsn:app", "{\"lsn\":\"0/16B3749\"}", other), 0);
	assert_string_not_equal(base, other);
	/* The same value under another source's key is not that source's position. */
	assert_int_equal(cw_position_checksum("pg_lsn:other", json, other), 0);
	assert_string_not_equal(base, other);
	assert_int_equal(cw_position_checksum("pg_lsn:app", "{\"lsn\":\"0/16B3748\",\"x\":null}",
	                                      other), 0);
	assert_string_not_equal(base, other);
	assert_int_equal(cw_position_checksum("pg_lsn:app", "{\"lsn\": 0/16}", other), CW_EINVAL);
	assert_string_equal(other, "");
}

static void test_verdicts(void **state)
{
	(void)state;
	char sum[CW_POSITION_CHECKSUM_LEN];
	const char *json = "{\"token\": {\"_data\": \"8263A1\"}, \"generation\": 2}";
	assert_int_equal(cw_position_checksum("mongo_resume_token:shop", json, sum), 0);
	assert_int_equal(cw_position_verify("mongo_resume_token:shop", json, sum), CW_POSITION_VALID);
	/* Stored before checksums existed. */
	assert_int_equal(cw_position_verify("mongo_resume_token:shop", json, NULL),
	                 CW_POSITION_UNCHECKED);
	/* The value edited behind cachewarp's back, the checksum damaged, the value not JSON. */
	assert_int_equal(cw_position_verify("mongo_resume_token:shop",
	                                    "{\"token\": {\"_data\": \"8263A2\"}, \"generation\": 2}", sum),
	                 CW_POSITION_CORRUPT);
	assert_int_equal(cw_position_verify("mongo_resume_token:shop", json, "crc32c:00000000"),
	                 CW_POSITION_CORRUPT);
	assert_int_equal(cw_position_verify("mongo_resume_token:shop", json, ""), CW_POSITION_CORRUPT);
	assert_int_equal(cw_position_verify("mongo_resume_token:shop", "{", sum), CW_POSITION_CORRUPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_value),
		cmocka_unit_test(test_checksum_ignores_spelling),
		cmocka_unit_test(test_checksum_covers_value_and_key),
		cmocka_unit_test(test_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
