/* Unit tests of entity validation: hostile names, paths, reserved columns, columns JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/entity.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#define NAME_64 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"
#define NAME_63 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"

static void hostile_entity_names_are_rejected_with_the_reason(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *message;   /* the whole message, or a part after '~' */
	} cases[] = {
		{"../x", "entity name \"../x\" is invalid: character '.' at position 1 is not "
		         "allowed (use a-z, 0-9 and _, starting with a letter)"},
		{"a\"b", "entity name \"a\\\"b\" is invalid: character '\"' at position 2 is not "
		         "allowed (use a-z, 0-9 and _, starting with a letter)"},
		{"x'); DROP TABLE y; --", "entity name \"x'); DROP TABLE y; --\" is invalid: "
		                          "character \"'\" at position 2 is not allowed (use a-z, "
		                          "0-9 and _, starting with a letter)"},
		{NAME_64, "entity name \"" NAME_64 "\" is invalid: it is 64 characters long, the "
		          "limit is 63"},
		{"", "entity name is empty (use a-z, 0-9 and _, starting with a letter)"},
		{NULL, "entity name is empty (use a-z, 0-9 and _, starting with a letter)"},
		{"Products", "entity name \"Products\" is invalid: upper-case letters are not "
		             "allowed (character 'P' at position 1); use a-z, 0-9 and _, starting "
		             "with a letter"},
		{"1abc", "entity name \"1abc\" is invalid: it must start with a letter a-z, not "
		         "'1' (use a-z, 0-9 and _, starting with a letter)"},
		{"_x", "~it must start with a letter a-z, not '_'"},
		{"a b", "~a space at position 2 is not allowed"},
		{"a\nb", "entity name \"a\\x0ab\" is invalid: byte 0x0a at position 2 is not "
		         "allowed (use a-z, 0-9 and _, starting with a letter)"},
		{"caf\xc3\xa9", "~byte 0xc3 at position 4 is not allowed"},
		{"a/b", "~character '/' at position 2"},
		{"a-b", "~character '-' at position 2"},
		{"products.x", "~character '.' at position 9"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_err_t err;
		cw_err_clear(&err);
		assert_int_equal(cw_entity_name_validate(cases[i].name, &err), CW_EINVAL);
		assert_int_equal(err.code, CW_EINVAL);
		if (cases[i].message[0] == '~')
			assert_non_null(strstr(err.message, cases[i].message + 1));
		else
			assert_string_equal(err.message, cases[i].message);
	}
}

static void good_names_pass(void **state)
{
	(void)state;
	const char *good[] = {"a", "products", "order_items", "v2", "a_1_b", NAME_63};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(cw_entity_name_validate(good[i], NULL), 0);
	assert_int_equal(cw_identifier_validate("column name", "price", NULL), 0);
	cw_err_t err;
	assert_int_equal(cw_identifier_validate("column name", "Price", &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "column name \"Price\" is invalid"));
}

static void a_very_long_name_is_shown_shortened(void **state)
{
	(void)state;
	char name[1001];
	memset(name, 'a', 1000);
	name[1000] = '\0';
	cw_err_t err;
	assert_int_equal(cw_entity_name_validate(name, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "...\" is invalid: it is 1000 characters long"));
}

static void paths_are_validated(void **state)
{
	(void)state;
	const char *good[] = {"a", "pricing.amount", "tags.0", "$x", "a-b.C_d", "a.b.c.d.e"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(cw_path_validate(good[i], NULL), 0);
	static const struct {
		const char *path;
		const char *part;
	} bad[] = {
		{"", "path is empty"},
		{NULL, "path is empty"},
		{".", "segment 1 is empty"},
		{"a.", "segment 2 is empty"},
		{".a", "segment 1 is empty"},
		{"a..b", "segment 2 is empty"},
		{"a b", "path \"a b\" is invalid: a space at position 2 is not allowed"},
		{"a/b", "character '/' at position 2"},
		{"a[0]", "character '[' at position 2"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_err_t err;
		assert_int_equal(cw_path_validate(bad[i].path, &err), CW_EINVAL);
		assert_non_null(strstr(err.message, bad[i].part));
	}
	char deep[200] = "a";
	for (int i = 1; i < 32; i++)
		strcat(deep, ".a");
	assert_int_equal(cw_path_validate(deep, NULL), 0);   /* 32 segments */
	strcat(deep, ".a");
	cw_err_t err;
	assert_int_equal(cw_path_validate(deep, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "more than 32 segments"));
}

static void type_and_status_names_round_trip(void **state)
{
	(void)state;
	for (int t = CW_COL_JSONB; t <= CW_COL_TEXT; t++) {
		cw_column_type_t back;
		assert_int_equal(cw_column_type_parse(cw_column_type_name(t), &back, NULL), 0);
		assert_int_equal(back, t);
	}
	assert_string_equal(cw_column_type_name(CW_COL_INTEGER), "integer");
	for (int s = CW_ENTITY_PENDING; s <= CW_ENTITY_DELETED; s++) {
		cw_entity_status_t back;
		assert_int_equal(cw_entity_status_parse(cw_entity_status_name(s), &back, NULL), 0);
		assert_int_equal(back, s);
	}
	cw_err_t err;
	cw_column_type_t type;
	assert_int_equal(cw_column_type_parse("float", &type, &err), CW_EINVAL);
	assert_string_equal(err.message, "unknown column type \"float\" (use jsonb, any, bool, "
	                                 "number, integer or text)");
	cw_entity_status_t status;
	assert_int_equal(cw_entity_status_parse("LIVE", &status, &err), CW_EINVAL);
	assert_int_equal(cw_entity_status_parse(NULL, &status, &err), CW_EINVAL);
}

static cw_column_t columns3[] = {
	{"title", CW_COL_TEXT, "title"},
	{"price", CW_COL_NUMBER, "pricing.amount"},
	{"tags", CW_COL_JSONB, "tags"},
};

static cw_entity_t products(void)
{
	cw_entity_t e = {0};
	e.name = "products";
	e.source = "shop";
	e.collection = "products";
	e.columns = columns3;
	e.ncolumns = 3;
	e.version = 1;
	return e;
}

static void entity_validation_checks_every_part(void **state)
{
	(void)state;
	cw_entity_t e = products();
	cw_err_t err;
	assert_int_equal(cw_entity_validate(&e, &err), 0);

	static const struct {
		int field;   /* what to break */
		const char *value;
		const char *part;
	} cases[] = {
		{0, "../x", "entity name \"../x\" is invalid"},
		{1, "", "entity \"products\" has no source"},
		{2, "public.products", "needs exactly one of collection (MongoDB) or table"},
		{3, "", "collection name \"\" is invalid"},
		{3, "a$b", "collection name \"a$b\" is invalid"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_entity_t bad = products();
		if (cases[i].field == 0)
			bad.name = (char *)cases[i].value;
		else if (cases[i].field == 1)
			bad.source = (char *)cases[i].value;
		else if (cases[i].field == 2)
			bad.table = (char *)cases[i].value;
		else
			bad.collection = (char *)cases[i].value;
		assert_int_equal(cw_entity_validate(&bad, &err), CW_EINVAL);
		assert_non_null(strstr(err.message, cases[i].part));
	}
	cw_entity_t neither = products();
	neither.collection = NULL;
	assert_int_equal(cw_entity_validate(&neither, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "exactly one"));
}

static void table_names_are_schema_dot_table_or_table(void **state)
{
	(void)state;
	static const struct {
		const char *table;
		const char *part;   /* NULL when valid */
	} cases[] = {
		{"customers", NULL},
		{"public.customers", NULL},
		{"public.\"Orders\"", NULL},
		{"\"My Schema\".\"a.b\"", NULL},
		{"a.b.c", "unexpected character '.' after the table name"},
		{"Public.x", "schema name \"Public\" has upper-case letters"},
		{"public.Orders", "write it in double quotes (\"Orders\")"},
		{"public.", "table name is empty"},
		{".x", "schema name is empty"},
		{"", "table name is empty"},
		{"x; drop", "character ';' at position 2"},
		{"public.\"Orders", "closing '\"' is missing"},
		{"public.\"\"", "\"\" is empty"},
		{"\"a\"b", "unexpected character 'b'"},
		{"\"a\nb\"", "byte 0x0a is not allowed"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_entity_t e = products();
		e.collection = NULL;
		e.table = (char *)cases[i].table;
		cw_err_t err;
		int rc = cw_entity_validate(&e, &err);
		if (cases[i].part == NULL) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_int_equal(rc, CW_EINVAL);
		assert_non_null(strstr(err.message, cases[i].part));
		if (strstr(err.message, cases[i].part) == NULL)
			fail_msg("%s: %s", cases[i].table, err.message);
		assert_non_null(strstr(err.message, "entity \"products\": table \""));
		assert_non_null(strstr(err.message, "must be \"schema.table\" or \"table\""));
	}
}

/* Quoted parts come back as the catalog holds them: quotes gone, "" as '"', dots kept. */
static void table_parse_unquotes_parts(void **state)
{
	(void)state;
	static const struct {
		const char *table, *schema, *name;
	} cases[] = {
		{"customers", "public", "customers"},
		{"sales.orders", "sales", "orders"},
		{"public.\"Orders\"", "public", "Orders"},
		{"\"Orders\"", "public", "Orders"},
		{"\"My Schema\".\"a.b\"", "My Schema", "a.b"},
		{"\"we\"\"ird\".x", "we\"ird", "x"},
		{"\"\"\"\"", "public", "\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char schema[CW_TABLE_PART_MAX + 1], name[CW_TABLE_PART_MAX + 1];
		cw_err_t err = {0};
		if (cw_entity_table_parse(cases[i].table, schema, name, &err) != 0)
			fail_msg("%s: %s", cases[i].table, err.message);
		assert_string_equal(schema, cases[i].schema);
		assert_string_equal(name, cases[i].name);
	}
	char longest[CW_TABLE_PART_MAX + 4], schema[CW_TABLE_PART_MAX + 1], name[CW_TABLE_PART_MAX + 1];
	longest[0] = '"';
	memset(longest + 1, 'X', CW_TABLE_PART_MAX);
	longest[CW_TABLE_PART_MAX + 1] = '"';
	longest[CW_TABLE_PART_MAX + 2] = '\0';
	assert_int_equal(cw_entity_table_parse(longest, schema, name, NULL), 0);
	assert_int_equal(strlen(name), CW_TABLE_PART_MAX);
	longest[CW_TABLE_PART_MAX + 1] = 'X';
	longest[CW_TABLE_PART_MAX + 2] = '"';
	longest[CW_TABLE_PART_MAX + 3] = '\0';
	cw_err_t err = {0};
	assert_int_equal(cw_entity_table_parse(longest, schema, name, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "longer than 63 bytes"));
}

static void column_rules_explain_reserved_names(void **state)
{
	(void)state;
	static const struct {
		cw_column_t second;
		const char *message;
	} cases[] = {
		{{"id", CW_COL_TEXT, "x"},
		 "entity \"products\": column name \"id\" is reserved: every cache table keeps the "
		 "document id in its \"id\" column (pick another name; id, _version and _oplog_id "
		 "are reserved)"},
		{{"_version", CW_COL_INTEGER, "v"}, "~capture generation in \"_version\""},
		{{"_oplog_id", CW_COL_INTEGER, "v"}, "~oplog id of each row's last change"},
		{{"title", CW_COL_TEXT, "other"},
		 "entity \"products\": column \"title\" appears twice (columns 1 and 2)"},
		{{"Title", CW_COL_TEXT, "x"}, "~column name \"Title\" is invalid: upper-case"},
		{{"ok", CW_COL_TEXT, "a..b"},
		 "~entity \"products\": column \"ok\": path \"a..b\" is invalid: segment 2 is empty"},
		{{"ok", (cw_column_type_t)42, "a"}, "~column \"ok\" has an unknown type 42"},
		{{NULL, CW_COL_TEXT, "a"}, "~column name is empty"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_column_t cols[2] = {{"title", CW_COL_TEXT, "title"}, cases[i].second};
		cw_entity_t e = products();
		e.columns = cols;
		e.ncolumns = 2;
		cw_err_t err;
		assert_int_equal(cw_entity_validate(&e, &err), CW_EINVAL);
		if (cases[i].message[0] == '~')
			assert_non_null(strstr(err.message, cases[i].message + 1));
		else
			assert_string_equal(err.message, cases[i].message);
	}
	cw_entity_t whole = products();
	whole.columns = NULL;
	whole.ncolumns = 0;   /* columns omitted: the whole document */
	assert_int_equal(cw_entity_validate(&whole, NULL), 0);
}

static void shape_equality_compares_source_target_and_columns(void **state)
{
	(void)state;
	cw_entity_t a = products();
	cw_entity_t b = products();
	b.name = "other_name";   /* the name is not part of the shape */
	b.status = CW_ENTITY_LIVE;
	assert_true(cw_entity_shape_equal(&a, &b));
	cw_column_t changed[3] = {columns3[0], columns3[1], columns3[2]};
	b.columns = changed;
	changed[1].path = "pricing.value";
	assert_false(cw_entity_shape_equal(&a, &b));
	changed[1].path = columns3[1].path;
	changed[1].type = CW_COL_INTEGER;
	assert_false(cw_entity_shape_equal(&a, &b));
	changed[1] = columns3[1];
	assert_true(cw_entity_shape_equal(&a, &b));
	b.ncolumns = 2;
	assert_false(cw_entity_shape_equal(&a, &b));
	b = products();
	b.source = "shop2";
	assert_false(cw_entity_shape_equal(&a, &b));
	b = products();
	b.collection = NULL;
	b.table = "products";
	assert_false(cw_entity_shape_equal(&a, &b));
}

static void columns_json_round_trips(void **state)
{
	(void)state;
	cw_entity_t e = products();
	char *json = cw_entity_columns_json(&e);
	assert_string_equal(json,
	                    "[{\"name\":\"title\",\"type\":\"text\",\"path\":\"title\"},"
	                    "{\"name\":\"price\",\"type\":\"number\",\"path\":\"pricing.amount\"},"
	                    "{\"name\":\"tags\",\"type\":\"jsonb\",\"path\":\"tags\"}]");
	cw_entity_t parsed = {0};
	assert_int_equal(cw_entity_columns_from_json(&parsed, json, NULL), 0);
	assert_int_equal(parsed.ncolumns, 3);
	parsed.source = e.source;
	parsed.collection = e.collection;
	assert_true(cw_entity_shape_equal(&e, &parsed));
	parsed.source = parsed.collection = NULL;
	free(json);

	/* Parsing again replaces the columns. */
	assert_int_equal(cw_entity_columns_from_json(&parsed, "[]", NULL), 0);
	assert_int_equal(parsed.ncolumns, 0);
	cw_entity_clear(&parsed);
	cw_entity_clear(NULL);
}

static void columns_json_errors_keep_the_old_columns(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		const char *part;
	} cases[] = {
		{"[", "columns are not valid JSON"},
		{"{}", "columns must be a JSON array"},
		{"[1]", "item 1 must be an object"},
		{"[{\"name\":\"a\",\"type\":\"text\"}]", "item 1 has no \"path\""},
		{"[{\"name\":\"a\",\"type\":\"text\",\"path\":\"a\"},{\"name\":\"b\",\"type\":5,"
		 "\"path\":\"b\"}]",
		 "item 2: \"type\" must be a string"},
		{"[{\"name\":\"a\",\"type\":\"float\",\"path\":\"a\"}]",
		 "columns: item 1: unknown column type \"float\""},
		{"[{\"name\":\"a\",\"type\":\"text\",\"path\":\"a\",\"nullable\":true}]",
		 "item 1 has an unknown key \"nullable\""},
	};
	cw_entity_t e = {0};
	assert_int_equal(cw_entity_columns_from_json(
		&e, "[{\"name\":\"keep\",\"type\":\"bool\",\"path\":\"k\"}]", NULL), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_err_t err;
		assert_int_equal(cw_entity_columns_from_json(&e, cases[i].json, &err), CW_EINVAL);
		assert_non_null(strstr(err.message, cases[i].part));
		assert_int_equal(e.ncolumns, 1);
		assert_string_equal(e.columns[0].name, "keep");
	}
	cw_entity_clear(&e);
}

static void copy_is_deep(void **state)
{
	(void)state;
	cw_entity_t src = products();
	cw_entity_t copy;
	cw_entity_copy(&copy, &src);
	assert_true(copy.name != src.name && copy.columns != src.columns);
	assert_string_equal(copy.name, "products");
	assert_null(copy.table);
	assert_true(cw_entity_shape_equal(&src, &copy));
	assert_int_equal(copy.version, 1);
	cw_entity_clear(&copy);
	assert_null(copy.name);
	assert_int_equal(copy.ncolumns, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hostile_entity_names_are_rejected_with_the_reason),
		cmocka_unit_test(good_names_pass),
		cmocka_unit_test(a_very_long_name_is_shown_shortened),
		cmocka_unit_test(paths_are_validated),
		cmocka_unit_test(type_and_status_names_round_trip),
		cmocka_unit_test(entity_validation_checks_every_part),
		cmocka_unit_test(table_names_are_schema_dot_table_or_table),
		cmocka_unit_test(table_parse_unquotes_parts),
		cmocka_unit_test(column_rules_explain_reserved_names),
		cmocka_unit_test(shape_equality_compares_source_target_and_columns),
		cmocka_unit_test(columns_json_round_trips),
		cmocka_unit_test(columns_json_errors_keep_the_old_columns),
		cmocka_unit_test(copy_is_deep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
