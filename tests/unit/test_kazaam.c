/*
 * Unit tests of the kazaam engine (transform/kazaam.h), table-driven: a spec
 * and a document in, the exact output text (or the error) out. Every
 * operation, paths with indexes, wildcards, [+] and [-], require, inplace,
 * over, keySeparator, the errors found at compile time and at apply time,
 * exact numbers, and timestamp and uuid with a fake clock and a fixed random
 * source.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/clock.h"
#include "transform/kazaam.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct kazaam_case {
	const char *spec;
	const char *input;
	const char *output;   /* exact compact text; NULL when an error is expected */
	const char *error;    /* a part of the expected message */
} kazaam_case_t;

static void fixed_random(void *ctx, unsigned char *out, size_t len)
{
	unsigned char *next = ctx;
	for (size_t i = 0; i < len; i++)
		out[i] = (*next)++;
}

/* Runs one case with a fake clock at 2023-11-14T22:13:20.123456Z and counting random bytes. */
static void check(const kazaam_case_t *c)
{
	cw_fake_clock_t clock;
	cw_fake_clock_init(&clock, 0, INT64_C(1700000000123456));
	unsigned char counter = 0;
	cw_kazaam_env_t env = {cw_fake_clock_clock(&clock), fixed_random, &counter};
	cw_err_t err = {0};
	cw_buf_t out = CW_BUF_INIT;
	int rc = CW_EINVAL;
	cw_kazaam_t *kazaam = cw_kazaam_compile(c->spec, strlen(c->spec), &err);
	if (kazaam != NULL)
		rc = cw_kazaam_apply(kazaam, c->input, strlen(c->input), &env, &out, &err);
	if (c->output != NULL) {
		if (rc != 0)
			fail_msg("spec %s on %s failed: %s", c->spec, c->input, err.message);
		if (strcmp(cw_buf_cstr(&out), c->output) != 0)
			fail_msg("spec %s on %s\n  want %s\n  got  %s", c->spec, c->input, c->output,
			         cw_buf_cstr(&out));
	} else {
		if (rc == 0)
			fail_msg("spec %s on %s: want an error, got %s", c->spec, c->input,
			         cw_buf_cstr(&out));
		assert_int_equal(rc, CW_EINVAL);
		assert_string_equal(err.domain, "kazaam");
		if (strstr(err.message, c->error) == NULL)
			fail_msg("spec %s on %s: want an error with \"%s\", got \"%s\"", c->spec, c->input,
			         c->error, err.message);
		assert_int_equal(out.len, 0);
	}
	cw_buf_free(&out);
	cw_kazaam_free(kazaam);
	cw_fake_clock_destroy(&clock);
}

static void check_all(const kazaam_case_t *cases, size_t count)
{
	for (size_t i = 0; i < count; i++)
		check(&cases[i]);
}

#define CHECK_ALL(cases) check_all((cases), sizeof(cases) / sizeof((cases)[0]))

static void shift_moves_values_by_path(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		{"[{\"operation\":\"shift\",\"spec\":{\"out.id\":\"doc.uid\",\"second\":\"doc.tags[1]\"}}]",
		 "{\"doc\":{\"uid\":12345,\"tags\":[\"a\",\"b\"]},\"x\":1}",
		 "{\"out\":{\"id\":12345},\"second\":\"b\"}", NULL},
		/* [*] collects every element; below a missing key it is an empty array */
		{"[{\"operation\":\"shift\",\"spec\":{\"ids\":\"rows[*].id\",\"none\":\"nope[*].id\"}}]",
		 "{\"rows\":[{\"id\":1},{\"x\":2},{\"id\":\"three\"}]}",
		 "{\"ids\":[1,null,\"three\"],\"none\":[]}", NULL},
		{"[{\"operation\":\"shift\",\"spec\":{\"deep\":\"a[*].b[*]\"}}]",
		 "{\"a\":[{\"b\":[1,2]},{\"b\":[]},{\"c\":0}]}", "{\"deep\":[[1,2],[],[]]}", NULL},
		/* $ is the whole document; a list wraps its (last) value in an array */
		{"[{\"operation\":\"shift\",\"spec\":{\"all\":\"$\",\"list\":[\"a\",\"b\"]}}]",
		 "{\"a\":1,\"b\":{\"c\":2}}", "{\"all\":{\"a\":1,\"b\":{\"c\":2}},\"list\":[{\"c\":2}]}",
		 NULL},
		/* a missing path gives null; require refuses it */
		{"[{\"operation\":\"shift\",\"spec\":{\"x\":\"no.such\"}}]", "{}", "{\"x\":null}", NULL},
		{"[{\"operation\":\"shift\",\"require\":true,\"spec\":{\"x\":\"no.such\"}}]", "{}", NULL,
		 "operation 0 (shift): path \"no.such\" does not exist"},
		{"[{\"operation\":\"shift\",\"require\":true,\"spec\":{\"x\":\"r[*].a\"}}]",
		 "{\"r\":[{\"a\":1},{}]}", NULL, "path \"r[*].a\" does not exist"},
		/* inplace keeps the document and adds at the end */
		{"[{\"operation\":\"shift\",\"inplace\":true,\"spec\":{\"copy\":\"a\",\"a\":\"z\"}}]",
		 "{\"a\":[1],\"z\":\"last\"}", "{\"a\":\"last\",\"z\":\"last\",\"copy\":[1]}", NULL},
		/* writing: pad with null, append, prepend, replace a scalar in the way */
		{"[{\"operation\":\"shift\",\"inplace\":true,\"spec\":{\"t[3]\":\"v\",\"u[+]\":\"v\","
		 "\"w[-]\":\"v\",\"s.k\":\"v\",\"n[1].k\":\"v\"}}]",
		 "{\"t\":[0],\"u\":[0],\"w\":[0],\"s\":5,\"v\":true}",
		 "{\"t\":[0,null,null,true],\"u\":[0,true],\"w\":[true,0],\"s\":{\"k\":true},\"v\":true,"
		 "\"n\":[null,{\"k\":true}]}",
		 NULL},
		/* a wildcard target writes every element of an existing array */
		{"[{\"operation\":\"shift\",\"inplace\":true,\"spec\":{\"r[*].seen\":\"flag\"}}]",
		 "{\"r\":[{\"a\":1},{}],\"flag\":false}",
		 "{\"r\":[{\"a\":1,\"seen\":false},{\"seen\":false}],\"flag\":false}", NULL},
		{"[{\"operation\":\"shift\",\"spec\":{\"r[*].seen\":\"flag\"}}]", "{\"flag\":1}", NULL,
		 "[*] names an array that does not exist"},
		/* text around key[i] in a segment is ignored, as kazaam ignores it */
		{"[{\"operation\":\"shift\",\"spec\":{\"x\":\"a[1][0]\"}}]", "{\"a\":[[5],[6,7]]}",
		 "{\"x\":[6,7]}", NULL},
		{"[{\"operation\":\"shift\",\"keySeparator\":\"/\",\"spec\":{\"o/k\":\"a.b/c\"}}]",
		 "{\"a.b\":{\"c\":2.50}}", "{\"o\":{\"k\":2.50}}", NULL},
	};
	CHECK_ALL(cases);
}

static void values_keep_their_exact_text(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		{"[{\"operation\":\"shift\",\"spec\":{\"n\":\"v\"}}]",
		 "{\"v\":[2.50,9007199254740993,123456789012345678901234567890,-0.0,1E+400,1e-7,"
		 "\"caf\\u00e9 \\\"q\\\"\"]}",
		 "{\"n\":[2.50,9007199254740993,123456789012345678901234567890,-0.0,1E+400,1e-7,"
		 "\"caf\\u00e9 \\\"q\\\"\"]}",
		 NULL},
		/* a default keeps the number as the spec writes it */
		{"[{\"operation\":\"default\",\"spec\":{\"price\":2.50,\"big\":123456789012345678901234567890}}]",
		 "{\"a\":0.10}", "{\"a\":0.10,\"price\":2.50,\"big\":123456789012345678901234567890}",
		 NULL},
		{"[{\"operation\":\"extract\",\"spec\":{\"path\":\"a.b\"}}]", "{\"a\":{\"b\":9007199254740993}}",
		 "9007199254740993", NULL},
	};
	CHECK_ALL(cases);
}

static void concat_joins_values(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		{"[{\"operation\":\"concat\",\"spec\":{\"sources\":[{\"value\":\"ID\"},{\"path\":\"a.t\"}],"
		 "\"targetPath\":\"a.t\",\"delim\":\",\"}}]",
		 "{\"a\":{\"t\":1481305274}}", "{\"a\":{\"t\":\"ID,1481305274\"}}", NULL},
		/* an array's elements run together without nulls; a missing path reads "null" */
		{"[{\"operation\":\"concat\",\"spec\":{\"sources\":[{\"path\":\"p\"},{\"path\":\"no\"}],"
		 "\"targetPath\":\"j\",\"delim\":\"|\"}}]",
		 "{\"p\":[\"a\",null,2.50,\"q\\\"\"]}", "{\"p\":[\"a\",null,2.50,\"q\\\"\"],\"j\":\"a2.50q\\\"|null\"}",
		 NULL},
		/* an object's text is escaped into the string */
		{"[{\"operation\":\"concat\",\"spec\":{\"sources\":[{\"path\":\"o\"}],\"targetPath\":\"j\"}}]",
		 "{\"o\":{\"k\":\"v\"}}", "{\"o\":{\"k\":\"v\"},\"j\":\"{\\\"k\\\":\\\"v\\\"}\"}", NULL},
		{"[{\"operation\":\"concat\",\"require\":true,\"spec\":{\"sources\":[{\"path\":\"no\"}],"
		 "\"targetPath\":\"j\"}}]",
		 "{}", NULL, "operation 0 (concat): path \"no\" does not exist"},
		{"[{\"operation\":\"concat\",\"spec\":{\"sources\":[{\"x\":1}],\"targetPath\":\"j\"}}]", "{}",
		 NULL, "every source needs a \"value\" or a \"path\""},
		{"[{\"operation\":\"concat\",\"spec\":{\"sources\":[{\"value\":5}],\"targetPath\":\"j\"}}]",
		 "{}", NULL, "\"value\" must be a string"},
		{"[{\"operation\":\"concat\",\"spec\":{\"targetPath\":\"j\"}}]", "{}", NULL,
		 "needs \"sources\""},
	};
	CHECK_ALL(cases);
}

static void coalesce_takes_the_first_value(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		{"[{\"operation\":\"coalesce\",\"spec\":{\"first\":[\"a.uid\",\"a.id\"]}}]",
		 "{\"a\":{\"uid\":null,\"id\":\"g0\"}}", "{\"a\":{\"uid\":null,\"id\":\"g0\"},\"first\":\"g0\"}",
		 NULL},
		{"[{\"operation\":\"coalesce\",\"spec\":{\"ignore\":[\"\",{\"b\":1,\"a\":2}],"
		 "\"first\":[\"e\",\"o\",\"v\"]}}]",
		 "{\"e\":\"\",\"o\":{\"a\":2,\"b\":1},\"v\":2.50}",
		 "{\"e\":\"\",\"o\":{\"a\":2,\"b\":1},\"v\":2.50,\"first\":2.50}", NULL},
		{"[{\"operation\":\"coalesce\",\"spec\":{\"first\":[\"x\",\"y\"]}}]", "{\"k\":1}",
		 "{\"k\":1}", NULL},
		{"[{\"operation\":\"coalesce\",\"require\":true,\"spec\":{\"f\":[\"x\"]}}]", "{}", NULL,
		 "operation 0 (coalesce): coalesce does not support \"require\""},
		{"[{\"operation\":\"coalesce\",\"spec\":{\"f\":\"x\"}}]", "{}", NULL,
		 "key \"f\" takes a list of paths"},
	};
	CHECK_ALL(cases);
}

static void extract_default_delete_pass(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		{"[{\"operation\":\"extract\",\"spec\":{\"path\":\"d.g[0].to\"}}]",
		 "{\"d\":{\"g\":[{\"to\":{\"name\":\"x\"}},{}]}}", "{\"name\":\"x\"}", NULL},
		{"[{\"operation\":\"extract\",\"spec\":{\"path\":\"nope\"}}]", "{\"a\":1}", "null", NULL},
		{"[{\"operation\":\"extract\",\"require\":true,\"spec\":{\"path\":\"nope\"}}]", "{}", NULL,
		 "does not exist"},
		/* default replaces in place, adds at the end, writes objects with sorted keys */
		{"[{\"operation\":\"default\",\"spec\":{\"a\":\"new\",\"c\":{\"z\":1,\"b\":[true]}}}]",
		 "{\"a\":1,\"b\":2}", "{\"a\":\"new\",\"b\":2,\"c\":{\"b\":[true],\"z\":1}}", NULL},
		{"[{\"operation\":\"delete\",\"spec\":{\"paths\":[\"d.uid\",\"d.g[1]\",\"nope\",\"d.g[9]\"]}}]",
		 "{\"d\":{\"uid\":1,\"g\":[0,1,2],\"z\":3}}", "{\"d\":{\"g\":[0,2],\"z\":3}}", NULL},
		{"[{\"operation\":\"delete\",\"require\":true,\"spec\":{\"paths\":[\"nope\"]}}]", "{}",
		 NULL, "operation 0 (delete): path \"nope\" does not exist"},
		{"[{\"operation\":\"delete\",\"spec\":{\"paths\":[\"a[*].b\"]}}]", "{}", NULL,
		 "[*] is not supported by delete"},
		{"[{\"operation\":\"delete\",\"spec\":{\"paths\":\"a\"}}]", "{}", NULL,
		 "needs \"paths\", a list of strings"},
		{"[{\"operation\":\"pass\"}]", "{ \"a\" : [1, 2.50] }", "{\"a\":[1,2.50]}", NULL},
		{"", "{\"a\":1}", "{\"a\":1}", NULL},
		/* over runs the operation on each element */
		{"[{\"operation\":\"default\",\"over\":\"rows\",\"spec\":{\"seen\":true}}]",
		 "{\"rows\":[{\"id\":1},{}],\"t\":0}",
		 "{\"rows\":[{\"id\":1,\"seen\":true},{\"seen\":true}],\"t\":0}", NULL},
		{"[{\"operation\":\"default\",\"over\":\"rows\",\"spec\":{\"seen\":true}}]",
		 "{\"rows\":[1]}", NULL, "operation 0 (default): over \"rows\" element 0"},
		{"[{\"operation\":\"default\",\"over\":\"rows\",\"spec\":{\"seen\":true}}]", "{}", NULL,
		 "over: path \"rows\" does not exist"},
	};
	CHECK_ALL(cases);
}

static void timestamp_reads_and_writes_go_layouts(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		{"[{\"operation\":\"timestamp\",\"spec\":{\"t[0]\":{\"inputFormat\":"
		 "\"Mon Jan _2 15:04:05 -0700 2006\",\"outputFormat\":\"2006-01-02T15:04:05-0700\"}}}]",
		 "{\"t\":[\"Sat Jul 22 08:15:27 +0000 2017\",\"x\"]}",
		 "{\"t\":[\"2017-07-22T08:15:27+0000\",\"x\"]}", NULL},
		{"[{\"operation\":\"timestamp\",\"spec\":{\"t[*]\":{\"inputFormat\":"
		 "\"2006-01-02T15:04:05Z07:00\",\"outputFormat\":\"Monday Jan 2 3:04PM MST .000 Z07:00\"}}}]",
		 "{\"t\":[\"2017-07-22T18:15:27.5+02:00\",\"2024-02-29T00:00:00Z\"]}",
		 "{\"t\":[\"Saturday Jul 22 6:15PM +0200 .500 +02:00\","
		 "\"Thursday Feb 29 12:00AM UTC .000 Z\"]}",
		 NULL},
		{"[{\"operation\":\"timestamp\",\"spec\":{\"u\":{\"inputFormat\":\"$unix\","
		 "\"outputFormat\":\"2006-01-02 15:04:05 002\"},\"v\":{\"inputFormat\":"
		 "\"02/01/06 15h04\",\"outputFormat\":\"$unix\"}}}]",
		 "{\"u\":\"1500711327\",\"v\":\"31/12/99 23h59\"}",
		 "{\"u\":\"2017-07-22 08:15:27 203\",\"v\":\"946684740\"}", NULL},
		/* the fake clock: 2023-11-14T22:13:20.123456Z */
		{"[{\"operation\":\"timestamp\",\"spec\":{\"now\":{\"inputFormat\":\"$now\","
		 "\"outputFormat\":\"2006-01-02T15:04:05.999999999Z07:00\"}}}]",
		 "{}", "{\"now\":\"2023-11-14T22:13:20.123456Z\"}", NULL},
		{"[{\"operation\":\"timestamp\",\"spec\":{\"t\":{\"inputFormat\":\"$unix\","
		 "\"outputFormat\":\"2006\"}}}]",
		 "{\"x\":1}", "{\"x\":1}", NULL},
		{"[{\"operation\":\"timestamp\",\"spec\":{\"t\":{\"inputFormat\":\"2006-01-02\","
		 "\"outputFormat\":\"2006\"}}}]",
		 "{\"t\":\"2017-02-30\"}", NULL, "day out of range"},
		{"[{\"operation\":\"timestamp\",\"spec\":{\"t\":{\"inputFormat\":\"2006-01-02\","
		 "\"outputFormat\":\"2006\"}}}]",
		 "{\"t\":5}", NULL, "not a string or a list of strings"},
		{"[{\"operation\":\"timestamp\",\"spec\":{\"t\":{\"inputFormat\":\"$unix\"}}}]", "{}", NULL,
		 "operation 0 (timestamp): key \"t\": \"outputFormat\" must be a string"},
	};
	setenv("TZ", "UTC", 1);
	tzset();
	CHECK_ALL(cases);
}

static void uuid_names_and_random(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		/* RFC 4122 examples: python.org in the DNS namespace */
		{"[{\"operation\":\"uuid\",\"spec\":{\"v5\":{\"version\":5,\"namespace\":\"DNS\","
		 "\"names\":[{\"path\":\"host\",\"default\":\"x\"}]},\"v3\":{\"version\":3,"
		 "\"namespace\":\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\",\"names\":[{\"path\":\"no\","
		 "\"default\":\"python.org\"}]}}}]",
		 "{\"host\":\"python.org\"}",
		 "{\"host\":\"python.org\",\"v5\":\"886313e1-3b8a-5372-9b90-0c9aee199e5d\","
		 "\"v3\":\"6fa459ea-ee8a-3ca4-894e-db77e160355e\"}",
		 NULL},
		/* random bytes 00 01 02 ... with the version and variant bits set */
		{"[{\"operation\":\"uuid\",\"spec\":{\"id\":{\"version\":4}}}]", "{}",
		 "{\"id\":\"00010203-0405-4607-8809-0a0b0c0d0e0f\"}", NULL},
		{"[{\"operation\":\"uuid\",\"spec\":{\"id\":{\"version\":5,\"namespace\":\"DNS\","
		 "\"names\":[{\"path\":\"no\"}]}}}]",
		 "{}", NULL, "path \"no\" does not exist and has no default"},
		{"[{\"operation\":\"uuid\",\"spec\":{\"id\":{\"version\":2}}}]", "{}", NULL,
		 "\"version\" must be 3, 4 or 5"},
		{"[{\"operation\":\"uuid\",\"spec\":{\"id\":{\"version\":3,\"namespace\":\"nope\","
		 "\"names\":[]}}}]",
		 "{}", NULL, "\"namespace\" is not a UUID"},
	};
	CHECK_ALL(cases);
}

static void spec_errors_name_the_operation(void **state)
{
	(void)state;
	static const kazaam_case_t cases[] = {
		{"{\"operation\":\"pass\"}", "{}", NULL, "spec is not a JSON array of operations"},
		{"[{\"operation\":\"pass\"},{\"operation\":\"reshape\"}]", "{}", NULL,
		 "operation 1 (?): unknown operation \"reshape\""},
		{"[{\"spec\":{}}]", "{}", NULL, "needs \"operation\""},
		{"[{\"operation\":\"shift\",\"spec\":{}}]", "{}", NULL, "must hold at least one key"},
		{"[{\"operation\":\"shift\"}]", "{}", NULL, "shift needs \"spec\""},
		{"[{\"operation\":\"shift\",\"require\":\"yes\",\"spec\":{\"a\":\"b\"}}]", "{}", NULL,
		 "\"require\" must be true or false"},
		{"[{\"operation\":\"shift\",\"spec\":{\"a\":\"b[-1]\"}}]", "{}", NULL,
		 "operation 0 (shift): path \"b[-1]\": index \"-1\" is not a non-negative integer"},
		{"[{\"operation\":\"shift\",\"spec\":{\"a\":5}}]", "{}", NULL,
		 "key \"a\" takes a path or a list of paths"},
		/* Go reads the operation's fields in any case */
		{"[{\"Operation\":\"default\",\"SPEC\":{\"a\":1}}]", "{}", "{\"a\":1}", NULL},
		/* what depends on the document fails at apply time */
		{"[{\"operation\":\"shift\",\"spec\":{\"a\":\"b[*]\"}}]", "{\"b\":{}}", NULL,
		 "[*] names a value that is not an array"},
		{"[{\"operation\":\"default\",\"spec\":{\"a\":1}}]", "[1]", NULL,
		 "the document is not an object"},
		{"[{\"operation\":\"pass\"}]", "{\"a\":", NULL, "document is not one JSON value"},
		{"[{\"operation\":\"default\",\"spec\":{\"a[100000000]\":1}}]", "{}", NULL,
		 "past the end of its array"},
	};
	CHECK_ALL(cases);
}

/* A spec that doubles the document at every step stops at 64 MiB instead of exhausting memory. */
static void a_growing_document_is_stopped(void **state)
{
	(void)state;
	cw_buf_t spec = CW_BUF_INIT;
	cw_buf_append_char(&spec, '[');
	for (int i = 0; i < 40; i++)
		cw_buf_appendf(&spec, "%s{\"operation\":\"shift\",\"spec\":{\"a\":\"$\",\"b\":\"$\"}}",
		               i > 0 ? "," : "");
	cw_buf_append_char(&spec, ']');
	kazaam_case_t c = {spec.data, "{\"x\":1}", NULL, "grows past 64 MiB"};
	check(&c);
	cw_buf_free(&spec);
}

/* Many threads share one compiled spec. */
typedef struct worker {
	const cw_kazaam_t *kazaam;
	int failures;
} worker_t;

static void *apply_many(void *arg)
{
	worker_t *worker = arg;
	cw_buf_t out = CW_BUF_INIT;
	for (int i = 0; i < 2000; i++) {
		char doc[64];
		snprintf(doc, sizeof doc, "{\"id\":%d,\"price\":2.50,\"junk\":[1]}", i);
		char want[96];
		snprintf(want, sizeof want, "{\"key\":%d,\"amount\":2.50,\"currency\":\"EUR\"}", i);
		cw_buf_reset(&out);
		if (cw_kazaam_apply(worker->kazaam, doc, strlen(doc), NULL, &out, NULL) != 0 ||
		    strcmp(cw_buf_cstr(&out), want) != 0)
			worker->failures++;
	}
	cw_buf_free(&out);
	return NULL;
}

static void a_compiled_spec_serves_many_threads(void **state)
{
	(void)state;
	static const char spec[] =
		"[{\"operation\":\"shift\",\"spec\":{\"key\":\"id\",\"amount\":\"price\",\"junk\":\"junk\"}},"
		"{\"operation\":\"default\",\"spec\":{\"currency\":\"EUR\"}},"
		"{\"operation\":\"delete\",\"spec\":{\"paths\":[\"junk\"]}}]";
	cw_kazaam_t *kazaam = cw_kazaam_compile(spec, strlen(spec), NULL);
	assert_non_null(kazaam);
	assert_int_equal(cw_kazaam_operation_count(kazaam), 3);
	pthread_t threads[4];
	worker_t workers[4];
	for (int i = 0; i < 4; i++) {
		workers[i] = (worker_t){kazaam, 0};
		assert_int_equal(pthread_create(&threads[i], NULL, apply_many, &workers[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(workers[i].failures, 0);
	}
	cw_kazaam_free(kazaam);
	cw_kazaam_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shift_moves_values_by_path),
		cmocka_unit_test(values_keep_their_exact_text),
		cmocka_unit_test(concat_joins_values),
		cmocka_unit_test(coalesce_takes_the_first_value),
		cmocka_unit_test(extract_default_delete_pass),
		cmocka_unit_test(timestamp_reads_and_writes_go_layouts),
		cmocka_unit_test(uuid_names_and_random),
		cmocka_unit_test(spec_errors_name_the_operation),
		cmocka_unit_test(a_growing_document_is_stopped),
		cmocka_unit_test(a_compiled_spec_serves_many_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
