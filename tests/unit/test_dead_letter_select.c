/*
 * This file contains the unit tests of control/dead_letter_select.c: the
 * dead letters a person selects by text, as `cachewarp deadletter` and
 * /v1/deadletters take them, accepted and refused with the value named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/dead_letter_select.h"

#include <string.h>

static void nothing_given_selects_all(void **state)
{
	(void)state;
	cw_dead_letter_select_text_t text = {0};
	cw_dead_letter_filter_t f;
	assert_int_equal(cw_dead_letter_select_parse(&text, "--", "", &f, NULL), 0);
	assert_null(f.target);
	assert_null(f.entity);
	assert_int_equal(f.status, -1);
	assert_int_equal(f.id, 0);
	assert_int_equal(f.after_id, 0);
	assert_int_equal(f.limit, CW_DEAD_LETTER_LIST_DEFAULT);
}

static void every_value_given(void **state)
{
	(void)state;
	cw_dead_letter_select_text_t text = {"pg1", "orders", "replay", "41", "10000"};
	cw_dead_letter_filter_t f;
	assert_int_equal(cw_dead_letter_select_parse(&text, "--", "", &f, NULL), 0);
	assert_string_equal(f.target, "pg1");
	assert_string_equal(f.entity, "orders");
	assert_int_equal(f.status, CW_DEAD_LETTER_REPLAY);
	assert_int_equal(f.after_id, 41);
	assert_int_equal(f.limit, 10000);
	text.status = "failed";
	text.after = "0";
	text.limit = "1";
	assert_int_equal(cw_dead_letter_select_parse(&text, "--", "", &f, NULL), 0);
	assert_int_equal(f.status, CW_DEAD_LETTER_FAILED);
	assert_int_equal(f.limit, 1);
}

/* Each refusal names the value the way the caller's users wrote it. */
static void refusals_name_the_value(void **state)
{
	(void)state;
	static const struct {
		cw_dead_letter_select_text_t text;
		const char *cli, *api;
	} cases[] = {
		{{"Pg1", NULL, NULL, NULL, NULL}, "--target: target name \"Pg1\" is invalid",
		 "query parameter \"target\": target name \"Pg1\" is invalid"},
		{{"a'b", NULL, NULL, NULL, NULL}, "--target: ", "query parameter \"target\": "},
		{{"", NULL, NULL, NULL, NULL}, "--target: target name is empty",
		 "query parameter \"target\": target name is empty"},
		{{NULL, "x;drop", NULL, NULL, NULL}, "--entity: entity name \"x;drop\" is invalid",
		 "query parameter \"entity\": entity name"},
		{{NULL, NULL, "Failed", NULL, NULL}, "--status: expected failed or replay, got \"Failed\"",
		 "query parameter \"status\": expected failed or replay"},
		{{NULL, NULL, NULL, "-1", NULL}, "--after: -1 is out of range",
		 "query parameter \"after\": -1 is out of range"},
		{{NULL, NULL, NULL, "1e3", NULL}, "--after: expected an integer",
		 "query parameter \"after\": expected an integer"},
		{{NULL, NULL, NULL, NULL, "0"}, "--limit: 0 is out of range (1..10000)",
		 "query parameter \"limit\": 0 is out of range (1..10000)"},
		{{NULL, NULL, NULL, NULL, "10001"}, "--limit: 10001 is out of range (1..10000)",
		 "query parameter \"limit\": 10001 is out of range"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_dead_letter_filter_t f;
		cw_err_t err = {0};
		assert_int_equal(cw_dead_letter_select_parse(&cases[i].text, "--", "", &f, &err),
		                 CW_EINVAL);
		if (strncmp(err.message, cases[i].cli, strlen(cases[i].cli)) != 0)
			fail_msg("case %zu: \"%s\"", i, err.message);
		assert_int_equal(cw_dead_letter_select_parse(&cases[i].text, "query parameter \"", "\"",
		                                             &f, &err), CW_EINVAL);
		if (strncmp(err.message, cases[i].api, strlen(cases[i].api)) != 0)
			fail_msg("case %zu: \"%s\"", i, err.message);
	}
}

static void ids(void **state)
{
	(void)state;
	int64_t id = 0;
	assert_int_equal(cw_dead_letter_id_parse("7", &id, NULL), 0);
	assert_int_equal(id, 7);
	assert_int_equal(cw_dead_letter_id_parse("9223372036854775807", &id, NULL), 0);
	static const char *const bad[] = {"0", "-3", "", "x", "07x", "1 ", "99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_err_t err = {0};
		if (cw_dead_letter_id_parse(bad[i], &id, &err) != CW_EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(strstr(err.message, "dead letter id: "));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nothing_given_selects_all),
		cmocka_unit_test(every_value_given),
		cmocka_unit_test(refusals_name_the_value),
		cmocka_unit_test(ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
