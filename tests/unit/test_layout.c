/* Unit tests of the layout rules every target shares (apply/layout.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/layout.h"

#include <string.h>

static void each_entity_has_one_layout(void **state)
{
	(void)state;
	cw_column_t columns[] = {{(char *)"title", CW_COL_TEXT, (char *)"title"}};
	cw_entity_t typed = {(char *)"a", (char *)"s", (char *)"c", NULL, columns, 1,
	                     CW_ENTITY_LIVE, 1, NULL, 0,
	                     CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_entity_t document = {(char *)"b", (char *)"s", (char *)"c", NULL, NULL, 0,
	                        CW_ENTITY_LIVE, 1, NULL, 0,
	                        CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_entity_t dynamic = {(char *)"c", (char *)"s", NULL, (char *)"public.t", NULL, 0,
	                       CW_ENTITY_LIVE, 1, NULL, 0,
	                       CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	assert_int_equal(cw_layout_of(&typed), CW_LAYOUT_TYPED);
	assert_int_equal(cw_layout_of(&document), CW_LAYOUT_DOCUMENT);
	assert_int_equal(cw_layout_of(&dynamic), CW_LAYOUT_DYNAMIC);
	assert_string_equal(cw_layout_name(CW_LAYOUT_DYNAMIC), "dynamic");
}

static void dynamic_keys_are_columns_only_when_valid_and_not_reserved(void **state)
{
	(void)state;
	static const struct { const char *key; size_t len; bool column; } cases[] = {
		{"name", 4, true}, {"a1_b", 4, true},
		{"Name", 4, false}, {"a b", 3, false}, {"1a", 2, false}, {"", 0, false},
		{"id", 2, false}, {"_version", 8, false}, {"_oplog_id", 9, false},
		{"_extra", 6, false}, {"x\0y", 3, false},
		{"a123456789012345678901234567890123456789012345678901234567890ab", 63, true},
		{"a123456789012345678901234567890123456789012345678901234567890abc", 64, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (cw_layout_key_is_column(cases[i].key, cases[i].len) != cases[i].column)
			fail_msg("key \"%s\": column %d, want %d", cases[i].key, !cases[i].column,
			         cases[i].column);
	assert_true(cw_layout_key_is_id("id", 2));
	assert_false(cw_layout_key_is_id("ids", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_entity_has_one_layout),
		cmocka_unit_test(dynamic_keys_are_columns_only_when_valid_and_not_reserved),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
