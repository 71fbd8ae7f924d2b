/* Unit tests of the PostgreSQL target's column rules (apply/pg_columns.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/pg_columns.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* The first field of the JSON object text {"v": value}. */
typedef struct one {
	cw_json_fields_t fields;
	char *text;
} one_t;

static const cw_json_field_t *field_of(one_t *o, const char *value)
{
	o->text = cw_xasprintf("{\"v\":%s}", value);
	cw_json_fields_init(&o->fields);
	assert_int_equal(cw_json_fields_parse(&o->fields, o->text, NULL), 0);
	return &o->fields.items[0];
}

static void one_free(one_t *o)
{
	cw_json_fields_clear(&o->fields);
	free(o->text);
}

static cw_pgc_fit_t fit_of(cw_pgc_kind_t kind, const char *value, cw_decimal_mode_t mode,
                           cw_pgc_kind_t *wider)
{
	one_t o;
	cw_pgc_read_t read;
	cw_pgc_read(field_of(&o, value), mode, &read);
	const char *why = NULL;
	cw_pgc_fit_t fit = cw_pgc_fit(kind, &read, mode, wider, &why);
	if (fit == CW_PGC_DRASTIC)
		assert_non_null(why);
	one_free(&o);
	return fit;
}

static cw_pgc_kind_t infer_of(const char *value, cw_decimal_mode_t mode, bool *ok)
{
	one_t o;
	cw_pgc_read_t read;
	cw_pgc_read(field_of(&o, value), mode, &read);
	cw_pgc_kind_t kind = cw_pgc_infer(&read, mode, ok);
	one_free(&o);
	return kind;
}

static void a_first_value_gives_its_column_a_type(void **state)
{
	(void)state;
	static const struct { const char *value; cw_pgc_kind_t kind; } cases[] = {
		{"12", CW_PGC_BIGINT},            /* integers start as bigint, never integer */
		{"-9223372036854775808", CW_PGC_BIGINT},
		{"9223372036854775808", CW_PGC_NUMERIC},
		{"2.5", CW_PGC_DOUBLE},
		{"0.1000000000000000055511151231257827", CW_PGC_NUMERIC},
		{"\"x\"", CW_PGC_TEXT},
		{"true", CW_PGC_BOOLEAN},
		{"{\"a\":1}", CW_PGC_JSONB},
		{"[1,2]", CW_PGC_JSONB},
		{"{\"$date\":\"2024-05-01T10:00:00Z\"}", CW_PGC_TIMESTAMPTZ},
		{"{\"$numberDecimal\":\"12.50\"}", CW_PGC_NUMERIC},
		{"{\"$numberDecimal\":\"NaN\"}", CW_PGC_TEXT},
		{"{\"$oid\":\"5f1d7b0c2a9e4b3c8d7e6f50\"}", CW_PGC_TEXT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool ok = false;
		cw_pgc_kind_t kind = infer_of(cases[i].value, CW_DECIMAL_EXACT, &ok);
		if (!ok || kind != cases[i].kind)
			fail_msg("%s: kind %d, want %d", cases[i].value, (int)kind, (int)cases[i].kind);
	}
	bool ok = true;
	infer_of("null", CW_DECIMAL_EXACT, &ok);
	assert_false(ok);   /* no column until a value says what it is */
	assert_int_equal(infer_of("2.5", CW_DECIMAL_TEXT, &ok), CW_PGC_NUMERIC);
	assert_int_equal(infer_of("0.1000000000000000055511151231257827", CW_DECIMAL_DOUBLE, &ok),
	                 CW_PGC_DOUBLE);
}

static void numbers_widen_and_other_changes_are_drastic(void **state)
{
	(void)state;
	static const struct {
		cw_pgc_kind_t kind;
		const char *value;
		cw_pgc_fit_t fit;
		cw_pgc_kind_t wider;
	} cases[] = {
		{CW_PGC_BIGINT, "7", CW_PGC_FITS, CW_PGC_BIGINT},
		{CW_PGC_INTEGER, "2147483647", CW_PGC_FITS, CW_PGC_INTEGER},
		{CW_PGC_INTEGER, "2147483648", CW_PGC_WIDEN, CW_PGC_BIGINT},
		{CW_PGC_SMALLINT, "40000", CW_PGC_WIDEN, CW_PGC_BIGINT},
		{CW_PGC_BIGINT, "2.5", CW_PGC_WIDEN, CW_PGC_DOUBLE},
		{CW_PGC_BIGINT, "9223372036854775808", CW_PGC_WIDEN, CW_PGC_NUMERIC},
		{CW_PGC_BIGINT, "{\"$numberDecimal\":\"1.10\"}", CW_PGC_WIDEN, CW_PGC_NUMERIC},
		{CW_PGC_DOUBLE, "3", CW_PGC_FITS, CW_PGC_DOUBLE},
		{CW_PGC_DOUBLE, "9007199254740993", CW_PGC_WIDEN, CW_PGC_NUMERIC},
		{CW_PGC_DOUBLE, "0.1000000000000000055511151231257827", CW_PGC_WIDEN, CW_PGC_NUMERIC},
		{CW_PGC_NUMERIC, "1e400", CW_PGC_FITS, CW_PGC_NUMERIC},
		{CW_PGC_NUMERIC, "12", CW_PGC_FITS, CW_PGC_NUMERIC},
		{CW_PGC_TEXT, "12", CW_PGC_FITS, CW_PGC_TEXT},
		{CW_PGC_TEXT, "{\"a\":1}", CW_PGC_FITS, CW_PGC_TEXT},
		{CW_PGC_JSONB, "\"s\"", CW_PGC_FITS, CW_PGC_JSONB},
		{CW_PGC_BIGINT, "\"12\"", CW_PGC_DRASTIC, CW_PGC_BIGINT},
		{CW_PGC_BIGINT, "{\"a\":1}", CW_PGC_DRASTIC, CW_PGC_BIGINT},
		{CW_PGC_DOUBLE, "true", CW_PGC_DRASTIC, CW_PGC_DOUBLE},
		{CW_PGC_BOOLEAN, "1", CW_PGC_DRASTIC, CW_PGC_BOOLEAN},
		{CW_PGC_NUMERIC, "[1]", CW_PGC_DRASTIC, CW_PGC_NUMERIC},
		{CW_PGC_TIMESTAMPTZ, "{\"$date\":\"2024-05-01T10:00:00Z\"}", CW_PGC_FITS,
		 CW_PGC_TIMESTAMPTZ},
		{CW_PGC_TIMESTAMPTZ, "5", CW_PGC_DRASTIC, CW_PGC_TIMESTAMPTZ},
		{CW_PGC_BIGINT, "null", CW_PGC_FITS, CW_PGC_BIGINT},
		{CW_PGC_OTHER, "\"2024-05-01\"", CW_PGC_FITS, CW_PGC_OTHER},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_pgc_kind_t wider = CW_PGC_OTHER;
		cw_pgc_fit_t fit = fit_of(cases[i].kind, cases[i].value, CW_DECIMAL_EXACT, &wider);
		if (fit != cases[i].fit || (fit == CW_PGC_WIDEN && wider != cases[i].wider))
			fail_msg("case %zu (%s): fit %d wider %d, want %d %d", i, cases[i].value, (int)fit,
			         (int)wider, (int)cases[i].fit, (int)cases[i].wider);
	}
	cw_pgc_kind_t wider;
	/* decimal_handling double: a double column takes every number */
	assert_int_equal(fit_of(CW_PGC_DOUBLE, "0.1000000000000000055511151231257827",
	                        CW_DECIMAL_DOUBLE, &wider), CW_PGC_FITS);
	assert_int_equal(fit_of(CW_PGC_BIGINT, "0.1000000000000000055511151231257827",
	                        CW_DECIMAL_DOUBLE, &wider), CW_PGC_WIDEN);
	assert_int_equal(wider, CW_PGC_DOUBLE);
}

static char *text_of(const char *value, cw_pgc_kind_t kind, const char *type, bool *ok)
{
	one_t o;
	cw_pgc_read_t read;
	const cw_json_field_t *f = field_of(&o, value);
	cw_pgc_read(f, CW_DECIMAL_EXACT, &read);
	cw_buf_t out = CW_BUF_INIT;
	*ok = cw_pgc_text(f, &read, kind, type, &out);
	cw_buf_append_str(&out, "");
	one_free(&o);
	return cw_buf_take(&out);
}

static void values_are_copied_as_their_text(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		cw_pgc_kind_t kind;
		const char *type;
		const char *text;
	} cases[] = {
		{"\"a\\\"b\\u00e9\"", CW_PGC_TEXT, "text", "a\"b\xc3\xa9"},
		{"123456789012345678901234567890.000", CW_PGC_NUMERIC, "numeric",
		 "123456789012345678901234567890.000"},
		{"2.50", CW_PGC_TEXT, "text", "2.50"},
		{"true", CW_PGC_BOOLEAN, "boolean", "true"},
		{"{ \"a\" : [1, 2] }", CW_PGC_JSONB, "jsonb", "{\"a\":[1,2]}"},
		{"\"s\"", CW_PGC_JSONB, "jsonb", "\"s\""},
		{"[\"a\",null,\"b\\\"c\"]", CW_PGC_OTHER, "text[]", "{\"a\",NULL,\"b\\\"c\"}"},
		{"[[1,2],[3,4]]", CW_PGC_OTHER, "integer[]", "{{1,2},{3,4}}"},
		{"[1,2]", CW_PGC_TEXT, "text", "[1,2]"},
		{"{\"$date\":\"2024-05-01T10:00:00Z\"}", CW_PGC_TIMESTAMPTZ, "timestamp with time zone",
		 "2024-05-01T10:00:00Z"},
		{"{\"$numberDecimal\":\"12.50\"}", CW_PGC_NUMERIC, "numeric", "12.50"},
		{"{\"$oid\":\"5f1d7b0c2a9e4b3c8d7e6f50\"}", CW_PGC_TEXT, "text",
		 "5f1d7b0c2a9e4b3c8d7e6f50"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool ok = false;
		char *text = text_of(cases[i].value, cases[i].kind, cases[i].type, &ok);
		assert_true(ok);
		if (strcmp(text, cases[i].text) != 0)
			fail_msg("%s: \"%s\", want \"%s\"", cases[i].value, text, cases[i].text);
		free(text);
	}
	bool ok = true;
	free(text_of("\"a\\u0000b\"", CW_PGC_TEXT, "text", &ok));
	assert_false(ok);   /* PostgreSQL's text cannot hold a NUL */
}

static bool reserve_version(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "_version") == 0;
}

static void field_names_map_to_safe_stable_distinct_columns(void **state)
{
	(void)state;
	char name[CW_PGC_NAME_MAX + 1];
	cw_pgc_column_name("total", 5, NULL, NULL, false, name);
	assert_string_equal(name, "total");
	cw_pgc_column_name("_private", 8, NULL, NULL, false, name);
	assert_string_equal(name, "_private");

	static const char *const hostile[] = {
		"a.b", "a b", "Total", "TOTAL", "\"; drop table x", "1st", "", "_version", "é",
	};
	char seen[sizeof hostile / sizeof hostile[0]][CW_PGC_NAME_MAX + 1];
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		cw_pgc_column_name(hostile[i], strlen(hostile[i]), reserve_version, NULL, false, name);
		assert_true(strlen(name) <= CW_PGC_NAME_MAX);
		for (const char *p = name; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
		assert_true((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_');
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(seen[k], name);
		strcpy(seen[i], name);
		char again[CW_PGC_NAME_MAX + 1];   /* stable */
		cw_pgc_column_name(hostile[i], strlen(hostile[i]), reserve_version, NULL, false, again);
		assert_string_equal(again, name);
	}
	assert_int_equal(strncmp(seen[0], "a_b_", 4), 0);
	assert_int_equal(strncmp(seen[2], "total_", 6), 0);
	assert_int_equal(strncmp(seen[5], "f_1st_", 6), 0);

	char longest[201];
	memset(longest, 'x', 200);
	longest[200] = '\0';
	cw_pgc_column_name(longest, 200, NULL, NULL, false, name);
	assert_int_equal(strlen(name), 54 + 9);
	longest[199] = 'y';   /* same prefix, another field: another name */
	char other[CW_PGC_NAME_MAX + 1];
	cw_pgc_column_name(longest, 200, NULL, NULL, false, other);
	assert_string_not_equal(name, other);
	cw_pgc_column_name("a.b", 3, NULL, NULL, true, other);   /* the second try after a collision */
	assert_int_equal(strlen(other), 3 + 17);
}

static void type_names_read_as_kinds(void **state)
{
	(void)state;
	assert_int_equal(cw_pgc_kind_of("bigint"), CW_PGC_BIGINT);
	assert_int_equal(cw_pgc_kind_of("timestamp with time zone"), CW_PGC_TIMESTAMPTZ);
	assert_int_equal(cw_pgc_kind_of("json"), CW_PGC_JSONB);
	assert_int_equal(cw_pgc_kind_of("numeric(10,2)"), CW_PGC_OTHER);
	assert_int_equal(cw_pgc_kind_of("text[]"), CW_PGC_OTHER);
	assert_string_equal(cw_pgc_type_name(CW_PGC_DOUBLE), "double precision");
	assert_null(cw_pgc_type_name(CW_PGC_OTHER));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_first_value_gives_its_column_a_type),
		cmocka_unit_test(numbers_widen_and_other_changes_are_drastic),
		cmocka_unit_test(values_are_copied_as_their_text),
		cmocka_unit_test(field_names_map_to_safe_stable_distinct_columns),
		cmocka_unit_test(type_names_read_as_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
