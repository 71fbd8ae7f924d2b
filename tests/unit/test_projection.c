/* Unit tests of the projection: paths, missing vs null, coercion per column type, doc_id. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/projection.h"

#include <stdlib.h>
#include <string.h>

/* Builds an entity from "name:type:path,name:type:path" ("" = no columns). */
static cw_entity_t entity_of(const char *spec)
{
	cw_entity_t e = {0};
	e.name = cw_xstrdup("products");
	e.source = cw_xstrdup("shop");
	e.collection = cw_xstrdup("products");
	e.version = 1;
	char *copy = cw_xstrdup(spec);
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		e.columns = cw_xrealloc(e.columns, (e.ncolumns + 1) * sizeof *e.columns);
		cw_column_t *column = &e.columns[e.ncolumns++];
		char *type = strchr(item, ':');
		char *path = strchr(type + 1, ':');
		*type++ = '\0';
		*path++ = '\0';
		column->name = cw_xstrdup(item);
		column->path = cw_xstrdup(path);
		assert_int_equal(cw_column_type_parse(type, &column->type, NULL), 0);
	}
	free(copy);
	return e;
}

static cw_projection_t *compile(const char *spec, unsigned flags)
{
	cw_entity_t e = entity_of(spec);
	cw_err_t err;
	assert_int_equal(cw_entity_validate(&e, &err), 0);
	cw_projection_t *proj = cw_projection_new(&e, flags, &err);
	assert_non_null(proj);
	cw_entity_clear(&e);
	return proj;
}

enum { IN_BSON = 1, IN_JSON = 2, IN_BOTH = 3 };

typedef struct pcase {
	const char *columns;
	const char *doc;        /* extended JSON for BSON input, plain JSON for JSON input */
	unsigned inputs;
	const char *expected;   /* the output, or NULL when an error is expected */
	const char *error;      /* the message; a leading '~' means "contains" */
} pcase_t;

/* Projects c->doc from the inputs c asks for and checks the result. */
static void run_case(const pcase_t *c, unsigned flags)
{
	cw_projection_t *proj = compile(c->columns, flags);
	for (unsigned input = IN_BSON; input <= IN_JSON; input <<= 1) {
		if (!(c->inputs & input))
			continue;
		cw_buf_t out = CW_BUF_INIT;
		cw_buf_append_str(&out, "stale");
		cw_err_t err;
		cw_err_clear(&err);
		int rc;
		if (input == IN_BSON) {
			bson_error_t berr;
			bson_t *doc = bson_new_from_json((const uint8_t *)c->doc, -1, &berr);
			if (doc == NULL)
				fail_msg("case %s: bad test BSON: %s", c->doc, berr.message);
			rc = cw_projection_bson(proj, doc, &out, &err);
			bson_destroy(doc);
		} else {
			rc = cw_projection_json(proj, c->doc, &out, &err);
		}
		const char *kind = input == IN_BSON ? "bson" : "json";
		if (c->expected != NULL) {
			if (rc != 0)
				fail_msg("case %s (%s): unexpected error: %s", c->doc, kind, err.message);
			if (strcmp(cw_buf_cstr(&out), c->expected) != 0)
				fail_msg("case %s (%s): got %s, want %s", c->doc, kind, cw_buf_cstr(&out),
				         c->expected);
		} else {
			if (rc == 0)
				fail_msg("case %s (%s): no error, output %s", c->doc, kind,
				         cw_buf_cstr(&out));
			bool match = c->error[0] == '~' ? strstr(err.message, c->error + 1) != NULL
			                                : strcmp(err.message, c->error) == 0;
			if (!match)
				fail_msg("case %s (%s): message \"%s\", want \"%s\"", c->doc, kind,
				         err.message, c->error);
			assert_int_equal(out.len, 0);   /* no partial output */
		}
		cw_buf_free(&out);
	}
	cw_projection_free(proj);
}

#define SHOP "title:text:title,price:number:pricing.amount,tags:jsonb:tags"

static void paths_missing_and_null(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{SHOP,
		 "{\"title\":\"Lamp\",\"pricing\":{\"amount\":19.99,\"currency\":\"EUR\"},"
		 "\"tags\":[\"a\",\"b\"],\"extra\":1}",
		 IN_BOTH, "{\"title\":\"Lamp\",\"price\":19.99,\"tags\":[\"a\",\"b\"]}", NULL},
		/* explicit null: key with null; missing path: key absent */
		{SHOP, "{\"title\":null,\"pricing\":{}}", IN_BOTH, "{\"title\":null}", NULL},
		{SHOP, "{\"tags\":null}", IN_BOTH, "{\"tags\":null}", NULL},
		{SHOP, "{}", IN_BOTH, "{}", NULL},
		/* a path below a scalar or null does not exist */
		{SHOP, "{\"pricing\":5}", IN_BOTH, "{}", NULL},
		{SHOP, "{\"pricing\":null}", IN_BOTH, "{}", NULL},
		{SHOP, "{\"pricing\":[1,2]}", IN_BOTH, "{}", NULL},
		/* array index segments */
		{"first:text:tags.0,second:text:tags.1,tenth:text:tags.10",
		 "{\"tags\":[\"a\",\"b\"]}", IN_BOTH, "{\"first\":\"a\",\"second\":\"b\"}", NULL},
		{"first:text:tags.01", "{\"tags\":[\"a\",\"b\"]}", IN_BOTH, "{}", NULL},
		{"x:integer:m.0", "{\"m\":{\"0\":7}}", IN_BOTH, "{\"x\":7}", NULL},
		{"n:text:items.1.name", "{\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}]}", IN_BOTH,
		 "{\"n\":\"b\"}", NULL},
		{"deep:text:a.b.c.d", "{\"a\":{\"b\":{\"c\":{\"d\":\"x\"}}}}", IN_BOTH,
		 "{\"deep\":\"x\"}", NULL},
		{"deep:jsonb:a.b", "{\"a\":{\"b\":{\"c\":{\"d\":[1,{\"e\":null}]}}}}", IN_BOTH,
		 "{\"deep\":{\"c\":{\"d\":[1,{\"e\":null}]}}}", NULL},
		/* keys come out in column order, not document order */
		{"b:integer:b,a:integer:a", "{\"a\":1,\"b\":2}", IN_BOTH, "{\"b\":2,\"a\":1}", NULL},
		/* one value may feed several columns */
		{"a:integer:v,b:text:v", "{\"v\":5}", IN_BOTH, "{\"a\":5,\"b\":\"5\"}", NULL},
		{"a:text:$x,b:text:a-b", "{\"$x\":\"d\",\"a-b\":\"h\"}", IN_JSON,
		 "{\"a\":\"d\",\"b\":\"h\"}", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

static void missing_null_flag_turns_absent_into_null(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{SHOP, "{\"title\":\"Lamp\"}", IN_BOTH,
		 "{\"title\":\"Lamp\",\"price\":null,\"tags\":null}", NULL},
		{SHOP, "{\"pricing\":5}", IN_BOTH, "{\"title\":null,\"price\":null,\"tags\":null}",
		 NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_MISSING_NULL);
}

#define ERR_N(what) "column \"n\" (path \"n\"): cannot convert " what

static void integer_columns_are_exact(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{"n:integer:n", "{\"n\":123456789012345678}", IN_BOTH, "{\"n\":123456789012345678}",
		 NULL},
		{"n:integer:n", "{\"n\":-9223372036854775808}", IN_BOTH,
		 "{\"n\":-9223372036854775808}", NULL},
		{"n:integer:n", "{\"n\":3.0}", IN_BOTH, "{\"n\":3}", NULL},
		{"n:integer:n", "{\"n\":-0.0}", IN_BOTH, "{\"n\":0}", NULL},
		{"n:integer:n", "{\"n\":2.5}", IN_BOTH, NULL,
		 ERR_N("number 2.5 to integer: it has a fractional part")},
		{"n:integer:n", "{\"n\":1e19}", IN_BOTH, NULL,
		 ERR_N("number 1e19 to integer: it is outside the 64-bit range")},
		{"n:integer:n", "{\"n\":\"42\"}", IN_BOTH, "{\"n\":42}", NULL},
		{"n:integer:n", "{\"n\":\"-9223372036854775808\"}", IN_BOTH,
		 "{\"n\":-9223372036854775808}", NULL},
		{"n:integer:n", "{\"n\":\"1e3\"}", IN_BOTH, "{\"n\":1000}", NULL},
		{"n:integer:n", "{\"n\":\"4.20e1\"}", IN_BOTH, "{\"n\":42}", NULL},
		{"n:integer:n", "{\"n\":\"0.000\"}", IN_BOTH, "{\"n\":0}", NULL},
		{"n:integer:n", "{\"n\":\"4.2\"}", IN_BOTH, NULL,
		 ERR_N("string \"4.2\" to integer: it has a fractional part")},
		{"n:integer:n", "{\"n\":\"9223372036854775808\"}", IN_BOTH, NULL,
		 ERR_N("string \"9223372036854775808\" to integer: it is outside the 64-bit range")},
		{"n:integer:n", "{\"n\":\"1e300\"}", IN_BOTH, NULL,
		 "~it is outside the 64-bit range"},
		{"n:integer:n", "{\"n\":\"abc\"}", IN_BOTH, NULL,
		 ERR_N("string \"abc\" to integer: it is not a JSON number")},
		{"n:integer:n", "{\"n\":\" 1\"}", IN_BOTH, NULL, "~it is not a JSON number"},
		{"n:integer:n", "{\"n\":true}", IN_BOTH, NULL, ERR_N("bool true to integer")},
		{"n:integer:n", "{\"n\":{\"a\":1}}", IN_BOTH, NULL, ERR_N("an object to integer")},
		{"n:integer:n", "{\"n\":[1]}", IN_BOTH, NULL, ERR_N("an array to integer")},
		{"n:integer:n", "{\"n\":{\"$numberDecimal\":\"12.0\"}}", IN_BSON, "{\"n\":12}", NULL},
		{"n:integer:n", "{\"n\":{\"$numberDecimal\":\"1.2E+3\"}}", IN_BSON, "{\"n\":1200}",
		 NULL},
		{"n:integer:n", "{\"n\":{\"$numberDecimal\":\"1.5\"}}", IN_BSON, NULL,
		 ERR_N("decimal 1.5 to integer: it has a fractional part")},
		{"n:integer:n", "{\"n\":{\"$numberDecimal\":\"NaN\"}}", IN_BSON, NULL,
		 "~it is not a JSON number"},
		{"n:integer:n", "{\"n\":{\"$numberLong\":\"9223372036854775807\"}}", IN_BSON,
		 "{\"n\":9223372036854775807}", NULL},
		{"n:integer:n", "{\"n\":{\"$date\":{\"$numberLong\":\"1714564800123\"}}}", IN_BSON,
		 "{\"n\":1714564800123}", NULL},
		{"n:integer:n", "{\"n\":{\"$oid\":\"5f1d7a0e2b3c4d5e6f708192\"}}", IN_BSON, NULL,
		 ERR_N("an ObjectId to integer")},
		{"n:integer:n", "{\"n\":{\"$numberDouble\":\"NaN\"}}", IN_BSON, NULL,
		 ERR_N("number NaN to integer: it is not finite")},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

static void number_columns_keep_integers_and_shortest_doubles(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{"n:number:n", "{\"n\":0.1}", IN_BOTH, "{\"n\":0.1}", NULL},
		{"n:number:n", "{\"n\":7}", IN_BOTH, "{\"n\":7}", NULL},
		{"n:number:n", "{\"n\":123456789012345678}", IN_BOTH, "{\"n\":123456789012345678}",
		 NULL},
		{"n:number:n", "{\"n\":1e300}", IN_BOTH, "{\"n\":1e300}", NULL},
		{"n:number:n", "{\"n\":-0.0}", IN_BSON, "{\"n\":-0}", NULL},
		{"n:number:n", "{\"n\":-0.0}", IN_JSON, "{\"n\":-0.0}", NULL},
		{"n:number:n", "{\"n\":2.50}", IN_JSON, "{\"n\":2.50}", NULL},
		{"n:number:n", "{\"n\":123456789012345678901234567890.50}", IN_JSON,
		 "{\"n\":123456789012345678901234567890.50}", NULL},
		{"n:number:n", "{\"n\":\"12.50\"}", IN_BOTH, "{\"n\":12.50}", NULL},
		{"n:number:n", "{\"n\":\"-17\"}", IN_BOTH, "{\"n\":-17}", NULL},
		{"n:number:n", "{\"n\":\"99999999999999999999\"}", IN_BOTH,
		 "{\"n\":99999999999999999999}", NULL},
		{"n:number:n", "{\"n\":\"007\"}", IN_BOTH, NULL,
		 ERR_N("string \"007\" to number: it is not a JSON number")},
		{"n:number:n", "{\"n\":\"\"}", IN_BOTH, NULL, "~it is not a JSON number"},
		{"n:number:n", "{\"n\":false}", IN_BOTH, NULL, ERR_N("bool false to number")},
		{"n:number:n", "{\"n\":[]}", IN_BOTH, NULL, ERR_N("an array to number")},
		{"n:number:n", "{\"n\":{\"$numberDecimal\":\"1.5\"}}", IN_BSON, "{\"n\":1.5}", NULL},
		{"n:number:n", "{\"n\":{\"$numberDecimal\":\"2.50\"}}", IN_BSON, "{\"n\":2.50}", NULL},
		{"n:number:n", "{\"n\":{\"$numberDecimal\":\"Infinity\"}}", IN_BSON, NULL,
		 ERR_N("decimal Infinity to number: it is not a finite number")},
		{"n:number:n", "{\"n\":{\"$numberDouble\":\"NaN\"}}", IN_BSON, NULL,
		 ERR_N("number NaN to number: JSON has no NaN or infinity")},
		{"n:number:n", "{\"n\":{\"$numberDouble\":\"-Infinity\"}}", IN_BSON, NULL,
		 "~number -Infinity to number"},
		{"n:number:n", "{\"n\":{\"$date\":\"1970-01-01T00:00:01Z\"}}", IN_BSON,
		 "{\"n\":1000}", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

static void bool_columns_accept_bools_zero_one_and_words(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{"n:bool:n", "{\"n\":true}", IN_BOTH, "{\"n\":true}", NULL},
		{"n:bool:n", "{\"n\":false}", IN_BOTH, "{\"n\":false}", NULL},
		{"n:bool:n", "{\"n\":0}", IN_BOTH, "{\"n\":false}", NULL},
		{"n:bool:n", "{\"n\":1}", IN_BOTH, "{\"n\":true}", NULL},
		{"n:bool:n", "{\"n\":1.0}", IN_BOTH, "{\"n\":true}", NULL},
		{"n:bool:n", "{\"n\":\"true\"}", IN_BOTH, "{\"n\":true}", NULL},
		{"n:bool:n", "{\"n\":\"false\"}", IN_BOTH, "{\"n\":false}", NULL},
		{"n:bool:n", "{\"n\":2}", IN_BOTH, NULL,
		 ERR_N("number 2 to bool: only 0 and 1 are accepted")},
		{"n:bool:n", "{\"n\":0.5}", IN_BOTH, NULL, "~only 0 and 1 are accepted"},
		{"n:bool:n", "{\"n\":\"yes\"}", IN_BOTH, NULL,
		 ERR_N("string \"yes\" to bool: only \"true\" and \"false\" are accepted")},
		{"n:bool:n", "{\"n\":\"TRUE\"}", IN_BOTH, NULL, "~only \"true\" and \"false\""},
		{"n:bool:n", "{\"n\":{}}", IN_BOTH, NULL, ERR_N("an object to bool")},
		{"n:bool:n", "{\"n\":null}", IN_BOTH, "{\"n\":null}", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

static void text_columns_convert_scalars_and_embed_json(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{"n:text:n", "{\"n\":\"caf\\u00e9\\n\"}", IN_BOTH, "{\"n\":\"caf\xc3\xa9\\n\"}", NULL},
		{"n:text:n", "{\"n\":42}", IN_BOTH, "{\"n\":\"42\"}", NULL},
		{"n:text:n", "{\"n\":-123456789012345678}", IN_BOTH,
		 "{\"n\":\"-123456789012345678\"}", NULL},
		{"n:text:n", "{\"n\":1.5}", IN_BOTH, "{\"n\":\"1.5\"}", NULL},
		{"n:text:n", "{\"n\":true}", IN_BOTH, "{\"n\":\"true\"}", NULL},
		{"n:text:n", "{\"n\":{\"a\":1,\"b\":[1,\"x\"]}}", IN_BOTH,
		 "{\"n\":\"{\\\"a\\\":1,\\\"b\\\":[1,\\\"x\\\"]}\"}", NULL},
		{"n:text:n", "{\"n\":[]}", IN_BOTH, "{\"n\":\"[]\"}", NULL},
		{"n:text:n", "{\"n\":{\"$oid\":\"5F1D7A0E2B3C4D5E6F708192\"}}", IN_BSON,
		 "{\"n\":\"5f1d7a0e2b3c4d5e6f708192\"}", NULL},
		{"n:text:n", "{\"n\":{\"$date\":\"2024-05-01T12:00:00Z\"}}", IN_BSON,
		 "{\"n\":\"2024-05-01T12:00:00.000Z\"}", NULL},
		{"n:text:n", "{\"n\":{\"$date\":{\"$numberLong\":\"-1\"}}}", IN_BSON,
		 "{\"n\":\"1969-12-31T23:59:59.999Z\"}", NULL},
		{"n:text:n", "{\"n\":{\"$date\":{\"$numberLong\":\"253402300800000\"}}}", IN_BSON,
		 NULL, ERR_N("a date to text: its year is outside 0000-9999")},
		{"n:text:n", "{\"n\":{\"$numberDecimal\":\"12.50\"}}", IN_BSON, "{\"n\":\"12.50\"}",
		 NULL},
		{"n:text:n", "{\"n\":{\"$numberDouble\":\"NaN\"}}", IN_BSON, "{\"n\":\"NaN\"}", NULL},
		{"n:text:n", "{\"n\":{\"$binary\":{\"base64\":\"AQI=\",\"subType\":\"00\"}}}",
		 IN_BSON, "{\"n\":\"{\\\"$binary\\\":{\\\"base64\\\":\\\"AQI=\\\",\\\"subType\\\":"
		          "\\\"00\\\"}}\"}",
		 NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

static void jsonb_and_any_columns_write_relaxed_extended_json(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{"v:jsonb:v,w:any:w", "{\"v\":{\"a\":[1,null,\"x\"]},\"w\":2.5}", IN_BOTH,
		 "{\"v\":{\"a\":[1,null,\"x\"]},\"w\":2.5}", NULL},
		{"v:jsonb:v", "{\"v\":{\"$oid\":\"5f1d7a0e2b3c4d5e6f708192\"}}", IN_BSON,
		 "{\"v\":{\"$oid\":\"5f1d7a0e2b3c4d5e6f708192\"}}", NULL},
		{"v:jsonb:v", "{\"v\":{\"at\":{\"$date\":\"2024-05-01T12:00:00.5Z\"}}}", IN_BSON,
		 "{\"v\":{\"at\":{\"$date\":\"2024-05-01T12:00:00.500Z\"}}}", NULL},
		{"v:any:v", "{\"v\":{\"$numberDecimal\":\"0.10\"}}", IN_BSON,
		 "{\"v\":{\"$numberDecimal\":\"0.10\"}}", NULL},
		{"v:any:v", "{\"v\":{\"$numberLong\":\"123456789012345678\"}}", IN_BSON,
		 "{\"v\":123456789012345678}", NULL},
		{"v:jsonb:v", "{\"v\":{\"$numberDouble\":\"Infinity\"}}", IN_BSON,
		 "{\"v\":{\"$numberDouble\":\"Infinity\"}}", NULL},
		{"v:jsonb:v", "{\"v\":\"plain\"}", IN_BOTH, "{\"v\":\"plain\"}", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

static void json_input_must_be_one_object(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{SHOP, "[1]", IN_JSON, NULL, "document is an array, not an object"},
		{SHOP, "null", IN_JSON, NULL, "document is null, not an object"},
		{SHOP, "\"s\"", IN_JSON, NULL, "document is string \"s\", not an object"},
		{SHOP, "{\"title\":", IN_JSON, NULL, "~document is not valid JSON: "},
		{SHOP, "{} {}", IN_JSON, NULL, "~document is not valid JSON: "},
		{SHOP, "{\"title\":\"a\\u0000b\"}", IN_JSON, NULL, "~document is not valid JSON"},
		{SHOP, "{\"title\":\"\xff\"}", IN_JSON, NULL, "~document is not valid JSON"},
		{SHOP, "{\"title\":1,}", IN_JSON, NULL, "~document is not valid JSON"},
		{SHOP, "{\"title\":\"a\\u0000b\"}", IN_JSON, NULL, "~document is not valid JSON"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

/* JSON text is read as text: no number passes through a double or an int64 on its way. */
static void json_values_keep_their_digits(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		{"n:number:n,j:jsonb:j,a:any:a", "{\"n\":123456789012345678901234567890,"
		 "\"j\":{\"x\": [1, 2.50], \"big\": 1.23e400},\"a\":0.1000000000000000055511}", IN_JSON,
		 "{\"n\":123456789012345678901234567890,\"j\":{\"x\": [1, 2.50], \"big\": 1.23e400},"
		 "\"a\":0.1000000000000000055511}", NULL},
		{"n:text:n", "{\"n\":2.50}", IN_JSON, "{\"n\":\"2.50\"}", NULL},
		{"n:integer:n", "{\"n\":2.0}", IN_JSON, "{\"n\":2}", NULL},
		{"n:integer:n", "{\"n\":18446744073709551616}", IN_JSON, NULL,
		 ERR_N("number 18446744073709551616 to integer: it is outside the 64-bit range")},
		{"n:bool:n", "{\"n\":1.0}", IN_JSON, "{\"n\":true}", NULL},
		{"n:bool:n", "{\"n\":0.5}", IN_JSON, NULL,
		 ERR_N("number 0.5 to bool: only 0 and 1 are accepted")},
		{"n:text:s", "{\"s\":\"say \\\"hi\\\"\\t\\u00e9\"}", IN_BOTH,
		 "{\"n\":\"say \\\"hi\\\"\\té\"}", NULL},
		{"n:number:a.1.b", "{\"a\":[0,{\"b\":1.50e2}]}", IN_JSON, "{\"n\":1.50e2}", NULL},
		{"n:number:a.2.b", "{\"a\":[0,{\"b\":1}]}", IN_JSON, "{}", NULL},
		{"n:number:a.b", "{\"a\":{\"b\":1,\"b\":2.0}}", IN_JSON, "{\"n\":2.0}", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
}

static void entity_without_columns_projects_the_whole_document(void **state)
{
	(void)state;
	static const pcase_t cases[] = {
		/* a BSON document keeps every type and its field order: canonical extended JSON text */
		{"", "{\"_id\":{\"$oid\":\"5f1d7a0e2b3c4d5e6f708192\"},\"z\":{\"b\":[1,2.5]},"
		     "\"l\":{\"$numberLong\":\"5\"},\"d\":3.0}",
		 IN_BSON,
		 "{\"doc\":\"{\\\"_id\\\":{\\\"$oid\\\":\\\"5f1d7a0e2b3c4d5e6f708192\\\"},"
		 "\\\"z\\\":{\\\"b\\\":[{\\\"$numberInt\\\":\\\"1\\\"},"
		 "{\\\"$numberDouble\\\":\\\"2.5\\\"}]},\\\"l\\\":{\\\"$numberLong\\\":\\\"5\\\"},"
		 "\\\"d\\\":{\\\"$numberDouble\\\":\\\"3.0\\\"}}\"}",
		 NULL},
		{"", "{\"id\":7,\"name\":\"x\",\"n\":null}", IN_JSON,
		 "{\"doc\":{\"id\":7,\"name\":\"x\",\"n\":null}}", NULL},
		{"", "{}", IN_JSON, "{\"doc\":{}}", NULL},
		{"", "{}", IN_BSON, "{\"doc\":\"{}\"}", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i], CW_PROJECTION_DEFAULT);
	cw_projection_t *proj = compile("", 0);
	assert_int_equal(cw_projection_ncolumns(proj), 1);
	cw_projection_free(proj);
}

/* Projects a hand-built BSON document and returns the error code. */
static int project_bson(const char *spec, const bson_t *doc, cw_err_t *err)
{
	cw_projection_t *proj = compile(spec, 0);
	cw_buf_t out = CW_BUF_INIT;
	int rc = cw_projection_bson(proj, doc, &out, err);
	if (rc != 0)
		assert_int_equal(out.len, 0);
	cw_buf_free(&out);
	cw_projection_free(proj);
	return rc;
}

static void bad_bson_values_name_the_column(void **state)
{
	(void)state;
	cw_err_t err;
	bson_t *doc = bson_new();
	bson_append_utf8(doc, "s", 1, "ab\xc0\x80", 4);
	assert_int_equal(project_bson("name:text:s", doc, &err), CW_EINVAL);
	assert_string_equal(err.message, "column \"name\" (path \"s\"): string is not valid "
	                                 "UTF-8: byte 0xc0 at offset 2");
	assert_string_equal(err.domain, "projection");
	bson_destroy(doc);

	doc = bson_new();
	bson_append_utf8(doc, "s", 1, "a\0b", 3);
	assert_int_equal(project_bson("name:jsonb:s", doc, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "column \"name\" (path \"s\"): string contains a "
	                                    "NUL byte"));
	bson_destroy(doc);

	/* An invalid key deep inside a jsonb value. */
	doc = bson_new();
	bson_t child;
	bson_append_document_begin(doc, "o", 1, &child);
	bson_append_int32(&child, "k\xff", 2, 1);
	bson_append_document_end(doc, &child);
	assert_int_equal(project_bson("o:jsonb:o", doc, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "key is not valid UTF-8"));
	assert_int_equal(project_bson("", doc, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "column \"doc\" (whole document): key is not"));
	bson_destroy(doc);
}

static void corrupt_bson_is_reported_not_crashed_on(void **state)
{
	(void)state;
	bson_t *doc = BCON_NEW("a", BCON_INT32(1), "b", BCON_UTF8("hello"), "c", BCON_INT32(3));
	uint8_t bytes[64];
	memcpy(bytes, bson_get_data(doc), doc->len);
	bytes[15] = 200;   /* the string length of "b" now runs past the end */
	bson_t corrupt;
	assert_true(bson_init_static(&corrupt, bytes, doc->len));
	cw_err_t err;
	assert_int_equal(project_bson("c:integer:c", &corrupt, &err), CW_EPROTO);
	assert_string_equal(err.message, "column \"c\" (path \"c\"): BSON document is corrupt");
	assert_int_equal(project_bson("a:integer:a", &corrupt, &err), 0);   /* before the damage */
	assert_int_equal(project_bson("", &corrupt, &err), CW_EPROTO);
	bson_destroy(doc);
}

static void deep_nesting_is_an_error_not_a_stack_overflow(void **state)
{
	(void)state;
	cw_buf_t text = CW_BUF_INIT;
	for (int i = 0; i < 1000; i++)
		cw_buf_append_str(&text, "{\"a\":");
	cw_buf_append_str(&text, "1");
	for (int i = 0; i < 1000; i++)
		cw_buf_append_char(&text, '}');
	cw_projection_t *proj = compile("", 0);
	cw_buf_t out = CW_BUF_INIT;
	cw_err_t err;
	assert_int_equal(cw_projection_json(proj, cw_buf_cstr(&text), &out, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "nests deeper than 256 levels"));
	cw_buf_free(&out);
	cw_buf_free(&text);
	cw_projection_free(proj);
}

static void output_buffer_is_replaced_and_reused(void **state)
{
	(void)state;
	cw_projection_t *proj = compile(SHOP, 0);
	cw_buf_t out = CW_BUF_INIT;
	bson_t *a = BCON_NEW("title", BCON_UTF8("first title, rather long"));
	bson_t *b = BCON_NEW("title", BCON_UTF8("b"));
	assert_int_equal(cw_projection_bson(proj, a, &out, NULL), 0);
	char *data = out.data;
	assert_int_equal(cw_projection_bson(proj, b, &out, NULL), 0);
	assert_string_equal(cw_buf_cstr(&out), "{\"title\":\"b\"}");
	assert_ptr_equal(out.data, data);   /* no new allocation */
	bson_destroy(a);
	bson_destroy(b);
	cw_buf_free(&out);
	cw_projection_free(proj);
}

static void compile_rejects_invalid_columns(void **state)
{
	(void)state;
	cw_column_t columns[] = {{"ok", CW_COL_TEXT, "a..b"}};
	cw_entity_t e = {.name = "products", .source = "shop", .collection = "products",
	                 .columns = columns, .ncolumns = 1};
	cw_err_t err;
	assert_null(cw_projection_new(&e, 0, &err));
	assert_string_equal(err.message, "column \"ok\": path \"a..b\" is invalid: segment 2 is "
	                                 "empty (use A-Z, a-z, 0-9, _, $ and -, with . between "
	                                 "segments)");
	columns[0] = (cw_column_t){"Bad", CW_COL_TEXT, "a"};
	assert_null(cw_projection_new(&e, 0, &err));
	assert_non_null(strstr(err.message, "column name \"Bad\" is invalid"));
	cw_projection_free(NULL);
}

static void doc_ids_are_canonical(void **state)
{
	(void)state;
	static const struct {
		const char *doc;
		const char *doc_id;
	} cases[] = {
		{"{\"_id\":{\"$oid\":\"5F1D7A0E2B3C4D5E6F708192\"},\"x\":1}",
		 "5f1d7a0e2b3c4d5e6f708192"},
		{"{\"x\":1,\"_id\":\"sku-42\"}", "sku-42"},
		{"{\"_id\":\"\"}", ""},
		{"{\"_id\":5}", "{\"$numberInt\":\"5\"}"},
		{"{\"_id\":{\"$numberLong\":\"5\"}}", "{\"$numberLong\":\"5\"}"},
		{"{\"_id\":1.5}", "{\"$numberDouble\":\"1.5\"}"},
		{"{\"_id\":2.0}", "{\"$numberDouble\":\"2.0\"}"},
		{"{\"_id\":{\"a\":1,\"b\":\"x\"}}", "{\"a\":{\"$numberInt\":\"1\"},\"b\":\"x\"}"},
		{"{\"_id\":[1,2]}", "[{\"$numberInt\":\"1\"},{\"$numberInt\":\"2\"}]"},
		{"{\"_id\":{\"$date\":\"2024-05-01T12:00:00Z\"}}",
		 "{\"$date\":{\"$numberLong\":\"1714564800000\"}}"},
		{"{\"_id\":true}", "true"},
		{"{\"_id\":null}", "null"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bson_error_t berr;
		bson_t *doc = bson_new_from_json((const uint8_t *)cases[i].doc, -1, &berr);
		assert_non_null(doc);
		cw_err_t err;
		char *doc_id = cw_projection_doc_id_of(doc, &err);
		assert_non_null(doc_id);
		assert_string_equal(doc_id, cases[i].doc_id);
		free(doc_id);
		bson_destroy(doc);
	}
	cw_err_t err;
	bson_t *none = BCON_NEW("x", BCON_INT32(1));
	assert_null(cw_projection_doc_id_of(none, &err));
	assert_int_equal(err.code, CW_ENOTFOUND);
	assert_string_equal(err.message, "document has no _id");
	bson_destroy(none);

	bson_t *bad = bson_new();
	bson_append_utf8(bad, "_id", 3, "a\xed\xa0\x80", 4);
	assert_null(cw_projection_doc_id_of(bad, &err));
	assert_int_equal(err.code, CW_EINVAL);
	bson_destroy(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(paths_missing_and_null),
		cmocka_unit_test(missing_null_flag_turns_absent_into_null),
		cmocka_unit_test(integer_columns_are_exact),
		cmocka_unit_test(number_columns_keep_integers_and_shortest_doubles),
		cmocka_unit_test(bool_columns_accept_bools_zero_one_and_words),
		cmocka_unit_test(text_columns_convert_scalars_and_embed_json),
		cmocka_unit_test(jsonb_and_any_columns_write_relaxed_extended_json),
		cmocka_unit_test(json_input_must_be_one_object),
		cmocka_unit_test(json_values_keep_their_digits),
		cmocka_unit_test(entity_without_columns_projects_the_whole_document),
		cmocka_unit_test(bad_bson_values_name_the_column),
		cmocka_unit_test(corrupt_bson_is_reported_not_crashed_on),
		cmocka_unit_test(deep_nesting_is_an_error_not_a_stack_overflow),
		cmocka_unit_test(output_buffer_is_replaced_and_reused),
		cmocka_unit_test(compile_rejects_invalid_columns),
		cmocka_unit_test(doc_ids_are_canonical),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
