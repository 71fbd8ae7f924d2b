/*
 * This file contains the unit tests of the configuration of streams and
 * transformations (core/config_streams.c and their keys in
 * core/config_keys.c): `version`, `transformations[]`,
 * `targets[].streams[]` with every key, their errors with file, line and
 * key, the checks across keys (ids, references, retry delays, replication
 * loops), `config show` and the environment.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINIMAL "hub: {url: \"postgresql://127.0.0.1/hub\"}\n"

/* A postgres source "app" with entity orders (public.orders), a mongodb source "shop" with products. */
#define SOURCES                                                                              \
	"sources:\n"                                                                             \
	"  - {name: app, type: postgres, url: \"postgresql://u:pw@db.example.com/app\"}\n"       \
	"  - {name: shop, type: mongodb, url: \"mongodb://mongo.example.com\", database: shop}\n" \
	"entities:\n"                                                                            \
	"  - {name: orders, source: app, table: public.orders}\n"                                \
	"  - {name: products, source: shop, collection: products}\n"

/* Loads text as "t.yaml"; returns the config, or NULL with the first error in err. */
static cw_config_t *load(const char *text, char *const *envp, cw_buf_t *errors, cw_err_t *err)
{
	cw_config_load_opts_t opts = {envp, errors};
	cw_config_t *config = NULL;
	int rc = cw_config_load_buffer("t.yaml", text, strlen(text), &opts, &config, err);
	assert_true((rc == 0) == (config != NULL));
	return config;
}

static cw_config_t *load_ok(const char *text, char *const *envp)
{
	cw_err_t err = {0};
	cw_config_t *config = load(text, envp, NULL, &err);
	if (config == NULL)
		fail_msg("%s\n--- in ---\n%s", err.message, text);
	return config;
}

static const char full[] =
	MINIMAL
	"version: 1\n"
	SOURCES
	"transformations:\n"
	"  - id: flatten-price\n"
	"    name: Flatten the price\n"
	"    type: kazaam\n"
	"    spec: |\n"
	"      [{\"operation\": \"shift\", \"spec\": {\"price\": \"pricing.amount\"}},\n"
	"       {\"operation\": \"default\", \"spec\": {\"currency\": \"EUR\"}}]\n"
	"    error_handling:\n"
	"      on_error: fail_stream\n"
	"  - {id: keep, spec: \"[]\"}\n"
	"targets:\n"
	"  - name: wh\n"
	"    type: postgres\n"
	"    url: \"postgresql://db.example.com/warehouse\"\n"
	"    streams:\n"
	"      - entity: orders\n"
	"        transformation_id: flatten-price\n"
	"        enabled: false\n"
	"        batch_size: 250\n"
	"        on_error: dead_letter\n"
	"        retry_policy:\n"
	"          max_attempts: 5\n"
	"          initial_delay: 250ms\n"
	"          max_delay: 1m\n"
	"          backoff_multiplier: 1.5\n"
	"          permanent_error_codes: [23505, 22P02]\n"
	"      - entity: products\n"
	"      - entity: from_the_hub\n"
	"        retry_policy: {permanent_error_codes: \"11000, 50\"}\n";

/* ---- every key ------------------------------------------------------------ */

static void test_every_key(void **state)
{
	(void)state;
	cw_config_t *config = load_ok(full, NULL);
	assert_string_equal(config->version, "1");
	assert_int_equal(config->ntransformations, 2);
	const cw_transformation_config_t *flatten = cw_config_transformation(config, "flatten-price");
	assert_ptr_equal(flatten, &config->transformations[0]);
	assert_string_equal(flatten->name, "Flatten the price");
	assert_int_equal(flatten->type, 0);
	assert_non_null(strstr(flatten->spec, "\"pricing.amount\"}},\n {\"operation\": \"default\""));
	assert_int_equal(flatten->on_error, CW_ON_ERROR_FAIL_STREAM);
	const cw_transformation_config_t *keep = cw_config_transformation(config, "keep");
	assert_null(keep->name);
	assert_string_equal(keep->spec, "[]");
	assert_int_equal(keep->on_error, CW_ON_ERROR_DEAD_LETTER);   /* the default */
	assert_null(cw_config_transformation(config, "nope"));
	assert_null(cw_config_transformation(config, NULL));

	const cw_target_config_t *wh = cw_config_target(config, "wh");
	assert_int_equal(wh->nstreams, 3);
	const cw_stream_config_t *orders = cw_config_stream(wh, "orders");
	assert_ptr_equal(orders, &wh->streams[0]);
	assert_string_equal(orders->transformation_id, "flatten-price");
	assert_int_equal(orders->enabled, 0);
	assert_int_equal(orders->batch_size, 250);
	assert_int_equal(orders->on_error, CW_ON_ERROR_DEAD_LETTER);
	assert_int_equal(orders->retry_policy.max_attempts, 5);
	assert_int_equal(orders->retry_policy.initial_delay_ms, 250);
	assert_int_equal(orders->retry_policy.max_delay_ms, 60000);
	assert_true(orders->retry_policy.backoff_multiplier == 1.5);
	assert_string_equal(orders->retry_policy.permanent_error_codes, "23505,22P02");

	/* a stream with only its entity has every default; unset delays take the global retry */
	const cw_stream_config_t *products = cw_config_stream(wh, "products");
	assert_null(products->transformation_id);
	assert_int_equal(products->enabled, 1);
	assert_int_equal(products->batch_size, 0);
	assert_int_equal(products->on_error, CW_ON_ERROR_RETRY);
	assert_int_equal(products->retry_policy.max_attempts, 0);
	assert_int_equal(products->retry_policy.initial_delay_ms, 0);
	assert_int_equal(products->retry_policy.max_delay_ms, 0);
	assert_true(products->retry_policy.backoff_multiplier == 0.0);
	assert_null(products->retry_policy.permanent_error_codes);

	/* an entity the file does not configure may have a stream: it may live in the hub */
	const cw_stream_config_t *hub_only = cw_config_stream(wh, "from_the_hub");
	assert_string_equal(hub_only->retry_policy.permanent_error_codes, "11000,50");
	assert_null(cw_config_stream(wh, "customers"));   /* no item: the defaults */
	assert_null(cw_config_stream(NULL, "orders"));

	assert_string_equal(cw_on_error_name(CW_ON_ERROR_RETRY), "retry");
	assert_string_equal(cw_on_error_name(CW_ON_ERROR_SKIP), "skip");
	assert_string_equal(cw_on_error_name(CW_ON_ERROR_FAIL_STREAM), "fail_stream");
	assert_string_equal(cw_on_error_name(CW_ON_ERROR_DEAD_LETTER), "dead_letter");
	assert_string_equal(cw_on_error_name((cw_on_error_t)9), "unknown");
	cw_config_free(config);
}

static void test_version(void **state)
{
	(void)state;
	static const char *const accepted[] = {MINIMAL, MINIMAL "version: 1\n", MINIMAL "version: \"1\"\n",
	                                       MINIMAL "version:\n"};
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		cw_config_t *config = load_ok(accepted[i], NULL);
		assert_string_equal(config->version, "1");   /* absent: version 1, as files before it */
		cw_config_free(config);
	}
}

/* A file of another version is refused with that one error: its keys are another format's. */
static void test_other_version_alone(void **state)
{
	(void)state;
	const char *text = "version: 2\n"
	                   "service: {log_level: info}\n"
	                   "streams:\n  - {id: s1, source: {type: mongodb}}\n";
	cw_buf_t errors = CW_BUF_INIT;
	assert_null(load(text, NULL, &errors, NULL));
	assert_string_equal(cw_buf_cstr(&errors), "t.yaml:1:10: key \"version\": unsupported configuration "
	                                          "version \"2\": this cachewarp reads version 1\n");
	cw_buf_free(&errors);
}

/* ---- errors, each with file, line and key ------------------------------------ */

typedef struct error_case {
	const char *text;
	const char *error;      /* the first error */
} error_case_t;

#define TARGET_WH "targets:\n  - name: wh\n    type: sqlite\n    dir: /tmp/cw\n"
#define STREAM(keys) TARGET_WH "    streams:\n      - {entity: orders, " keys "}\n"
#define TRANSFORM(keys) "transformations:\n  - {id: t1, " keys "}\n"

static const error_case_t error_cases[] = {
	/* version */
	{MINIMAL "version: 2\n",
	 "t.yaml:2:10: key \"version\": unsupported configuration version \"2\": this cachewarp reads version 1"},
	{"version: \"1.0\"\n" MINIMAL,
	 "t.yaml:1:10: key \"version\": unsupported configuration version \"1.0\": this cachewarp reads version 1"},
	{MINIMAL "version: [1]\n", "t.yaml:2:10: key \"version\": wrong type: expected a string, got a list"},
	/* transformations[] */
	{MINIMAL TRANSFORM("spec: \"[]\", name: \"\""),
	 "t.yaml:3:32: key \"transformations[0].name\": invalid value: a name has 1 to 200 characters, "
	 "no control characters"},
	{MINIMAL "transformations:\n  - {spec: \"[]\"}\n",
	 "t.yaml:3:5: key \"transformations[0].id\": missing required value"},
	{MINIMAL TRANSFORM("name: x"), "t.yaml:3:5: key \"transformations[0].spec\": missing required value"},
	{MINIMAL "transformations:\n  - {id: Flatten, spec: \"[]\"}\n",
	 "t.yaml:3:10: key \"transformations[0].id\": transformation id \"Flatten\" is invalid: use 1 to 63 "
	 "characters of a-z, 0-9, _ and -, starting with a letter"},
	{MINIMAL "transformations:\n  - {id: 1st, spec: \"[]\"}\n",
	 "t.yaml:3:10: key \"transformations[0].id\": transformation id \"1st\" is invalid: use 1 to 63 "
	 "characters of a-z, 0-9, _ and -, starting with a letter"},
	{MINIMAL TRANSFORM("spec: \"[]\", type: jolt"),
	 "t.yaml:3:32: key \"transformations[0].type\": invalid value \"jolt\" (use kazaam)"},
	{MINIMAL TRANSFORM("spec: \"[{\\\"operation\\\": \\\"shift\\\",}]\""),
	 "t.yaml:3:20: key \"transformations[0].spec\": invalid value: the spec is not JSON: string or '}' "
	 "expected near '}' (line 1, column 24 of the spec)"},
	{MINIMAL TRANSFORM("spec: \"{\\\"operation\\\": \\\"shift\\\"}\""),
	 "t.yaml:3:20: key \"transformations[0].spec\": invalid value: the spec must be a JSON array of "
	 "operations ([{\"operation\": \"shift\", \"spec\": {...}}, ...])"},
	{MINIMAL TRANSFORM("spec: \"[{\\\"operation\\\": \\\"shift\\\"}, {\\\"spec\\\": {}}]\""),
	 "t.yaml:3:20: key \"transformations[0].spec\": invalid value: operation 1 is not an "
	 "object with an \"operation\" string"},
	{MINIMAL TRANSFORM("spec: \"[\\\"shift\\\"]\""),
	 "t.yaml:3:20: key \"transformations[0].spec\": invalid value: operation 0 is not an "
	 "object with an \"operation\" string"},
	{MINIMAL TRANSFORM("spec: \"[{\\\"operation\\\": \\\"shfit\\\"}]\""),
	 "t.yaml:3:20: key \"transformations[0].spec\": invalid value: operation 0: unknown "
	 "operation \"shfit\" (did you mean \"shift\"?)"},
	{MINIMAL TRANSFORM("spec: \"[{\\\"operation\\\": \\\"rename\\\"}]\""),
	 "t.yaml:3:20: key \"transformations[0].spec\": invalid value: operation 0: unknown "
	 "operation \"rename\" (use shift, concat, coalesce, extract, default, delete, pass, timestamp or uuid)"},
	/* what the engine refuses when it compiles the spec */
	{MINIMAL TRANSFORM("spec: '[{\"operation\": \"uuid\", \"spec\": {\"id\": {\"version\": 7}}}]'"),
	 "t.yaml:3:20: key \"transformations[0].spec\": invalid value: operation 0 (uuid): key \"id\": "
	 "\"version\" must be 3, 4 or 5"},
	{MINIMAL TRANSFORM("spec: \"[]\", error_handling: {on_error: drop}"),
	 "t.yaml:3:53: key \"transformations[0].error_handling.on_error\": invalid value \"drop\" (use retry, "
	 "skip, fail_stream or dead_letter)"},
	/* seed 002's max_retries and retry_delay: the stream's retry_policy does that */
	{MINIMAL TRANSFORM("spec: \"[]\", error_handling: {max_retries: 3}"),
	 "t.yaml:3:43: key \"transformations[0].error_handling.max_retries\": unknown key (known keys "
	 "here: on_error)"},
	{MINIMAL TRANSFORM("spec: \"[]\", specification: \"[]\""),
	 "t.yaml:3:26: key \"transformations[0].specification\": unknown key (known keys here: id, name, "
	 "type, spec or error_handling)"},
	{MINIMAL "transformations:\n  - {id: a, spec: \"[]\"}\n  - {id: a, spec: \"[]\"}\n",
	 "t.yaml:4:10: key \"transformations[1].id\": duplicate transformation id \"a\" (transformations[0] "
	 "has it already)"},
	/* targets[].streams[] */
	{MINIMAL TARGET_WH "    streams:\n      - {enabled: true}\n",
	 "t.yaml:7:9: key \"targets[0].streams[0].entity\": missing required value"},
	{MINIMAL TARGET_WH "    streams:\n      - {entity: Orders}\n",
	 "t.yaml:7:18: key \"targets[0].streams[0].entity\": entity name \"Orders\" is invalid: upper-case "
	 "letters are not allowed (character 'O' at position 1); use a-z, 0-9 and _, starting with a letter"},
	{MINIMAL TARGET_WH "    streams: {orders: {}}\n",
	 "t.yaml:6:14: key \"targets[0].streams\": wrong type: expected a list of mappings (\"- name: ...\" "
	 "items), got a mapping"},
	{MINIMAL STREAM("enabled: maybe"),
	 "t.yaml:7:35: key \"targets[0].streams[0].enabled\": invalid value \"maybe\" (use false or true)"},
	{MINIMAL STREAM("batch_size: -1"),
	 "t.yaml:7:38: key \"targets[0].streams[0].batch_size\": out of range: -1 (allowed: 0 to 100000)"},
	{MINIMAL STREAM("batch_size: 100001"),
	 "t.yaml:7:38: key \"targets[0].streams[0].batch_size\": out of range: 100001 (allowed: 0 to 100000)"},
	{MINIMAL STREAM("on_error: ignore"),
	 "t.yaml:7:36: key \"targets[0].streams[0].on_error\": invalid value \"ignore\" (use retry, skip, "
	 "fail_stream or dead_letter)"},
	{MINIMAL STREAM("transformation_id: \"a b\""),
	 "t.yaml:7:45: key \"targets[0].streams[0].transformation_id\": transformation id \"a b\" is "
	 "invalid: use 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter"},
	{MINIMAL STREAM("retry_policy: {max_attempts: -1}"),
	 "t.yaml:7:55: key \"targets[0].streams[0].retry_policy.max_attempts\": out of range: -1 (allowed: "
	 "0 to 1000000)"},
	{MINIMAL STREAM("retry_policy: {initial_delay: 0}"),
	 "t.yaml:7:56: key \"targets[0].streams[0].retry_policy.initial_delay\": out of range: 0 "
	 "(allowed: 1ms to 1h)"},
	{MINIMAL STREAM("retry_policy: {max_delay: soon}"),
	 "t.yaml:7:52: key \"targets[0].streams[0].retry_policy.max_delay\": wrong type: expected a "
	 "duration, got \"soon\": unexpected character 's' at position 1 (use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{MINIMAL STREAM("retry_policy: {backoff_multiplier: 0.5}"),
	 "t.yaml:7:61: key \"targets[0].streams[0].retry_policy.backoff_multiplier\": out of range: 0.5 "
	 "(allowed: 1 to 10)"},
	{MINIMAL STREAM("retry_policy: {max_retries: 3}"),
	 "t.yaml:7:41: key \"targets[0].streams[0].retry_policy.max_retries\": unknown key (known keys "
	 "here: max_attempts, initial_delay, max_delay, backoff_multiplier or permanent_error_codes)"},
	{MINIMAL STREAM("retry_policy: 3"),
	 "t.yaml:7:40: key \"targets[0].streams[0].retry_policy\": wrong type: expected a mapping of keys, "
	 "got \"3\""},
	/* permanent_error_codes: each item checked at its own position */
	{MINIMAL STREAM("retry_policy: {permanent_error_codes: [23505, 23-505]}"),
	 "t.yaml:7:72: key \"targets[0].streams[0].retry_policy.permanent_error_codes\": invalid value "
	 "\"23-505\": an error code has 1 to 15 letters and digits (a SQLSTATE such as 23505, a MongoDB "
	 "code such as 11000)"},
	{MINIMAL STREAM("retry_policy: {permanent_error_codes: [\"\"]}"),
	 "t.yaml:7:65: key \"targets[0].streams[0].retry_policy.permanent_error_codes\": invalid value: "
	 "an empty item"},
	{MINIMAL STREAM("retry_policy: {permanent_error_codes: [\"a,b\"]}"),
	 "t.yaml:7:65: key \"targets[0].streams[0].retry_policy.permanent_error_codes\": invalid value "
	 "\"a,b\": one item holds a comma"},
	{MINIMAL STREAM("retry_policy: {permanent_error_codes: [[1]]}"),
	 "t.yaml:7:65: key \"targets[0].streams[0].retry_policy.permanent_error_codes\": wrong type: "
	 "expected a list of words, got a list"},
	{MINIMAL STREAM("retry_policy: {permanent_error_codes: {a: 1}}"),
	 "t.yaml:7:64: key \"targets[0].streams[0].retry_policy.permanent_error_codes\": wrong type: "
	 "expected a list such as [a, b], got a mapping"},
	{MINIMAL STREAM("retry_policy: {permanent_error_codes: \"23505,,1\"}"),
	 "t.yaml:7:64: key \"targets[0].streams[0].retry_policy.permanent_error_codes\": invalid value: "
	 "an empty item"},
	{MINIMAL STREAM("retry_policy: {permanent_error_codes: \"1234567890123456\"}"),
	 "t.yaml:7:64: key \"targets[0].streams[0].retry_policy.permanent_error_codes\": invalid value "
	 "\"1234567890123456\": an error code has 1 to 15 letters and digits (a SQLSTATE such as 23505, "
	 "a MongoDB code such as 11000)"},
	/* checks across keys */
	{MINIMAL "transformations: [{id: flatten, spec: \"[]\"}]\n" STREAM("transformation_id: flaten"),
	 "t.yaml:8:45: key \"targets[0].streams[0].transformation_id\": unknown transformation \"flaten\" "
	 "(did you mean \"flatten\"?)"},
	{MINIMAL "transformations: [{id: a, spec: \"[]\"}, {id: b, spec: \"[]\"}]\n"
	 STREAM("transformation_id: flatten"),
	 "t.yaml:8:45: key \"targets[0].streams[0].transformation_id\": unknown transformation \"flatten\" "
	 "(configured transformations: a or b)"},
	{MINIMAL STREAM("transformation_id: flatten"),
	 "t.yaml:7:45: key \"targets[0].streams[0].transformation_id\": unknown transformation \"flatten\" "
	 "(no transformations are configured)"},
	{MINIMAL TARGET_WH "    streams:\n      - {entity: orders}\n      - {entity: items}\n"
	 "      - {entity: orders, batch_size: 5}\n",
	 "t.yaml:9:18: key \"targets[0].streams[2].entity\": duplicate stream for entity \"orders\" "
	 "(targets[0].streams[0] has it already)"},
	{MINIMAL STREAM("retry_policy: {initial_delay: 2s, max_delay: 1s}"),
	 "t.yaml:7:71: key \"targets[0].streams[0].retry_policy.max_delay\": out of range: 1s is less "
	 "than initial_delay (2s)"},
	{MINIMAL "retry: {initial: 5s}\n" STREAM("retry_policy: {max_delay: 1s}"),
	 "t.yaml:8:52: key \"targets[0].streams[0].retry_policy.max_delay\": out of range: 1s is less "
	 "than retry.initial (5s)"},
	{MINIMAL STREAM("retry_policy: {initial_delay: 1m}"),
	 "t.yaml:7:56: key \"targets[0].streams[0].retry_policy.initial_delay\": out of range: 1m is more "
	 "than retry.max (30s), the stream's max_delay when it sets none"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
		cw_err_t err = {0};
		cw_config_t *config = load(error_cases[i].text, NULL, NULL, &err);
		if (config != NULL || strcmp(err.message, error_cases[i].error) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, config ? "(loaded)" : err.message,
			         error_cases[i].error);
	}
}

/* At most 32 permanent error codes, as a list or as a string. */
static void test_too_many_codes(void **state)
{
	(void)state;
	cw_buf_t list = CW_BUF_INIT, string = CW_BUF_INIT;
	for (int i = 0; i < 33; i++) {
		cw_buf_appendf(&list, "%s%d", i ? ", " : "", 10000 + i);
		cw_buf_appendf(&string, "%s%d", i ? "," : "", 10000 + i);
	}
	static const char *const forms[] = {"[%s]", "\"%s\""};
	const char *values[] = {cw_buf_cstr(&list), cw_buf_cstr(&string)};
	for (size_t i = 0; i < 2; i++) {
		char *value = cw_xasprintf(forms[i], values[i]);
		char *text = cw_xasprintf(MINIMAL STREAM("retry_policy: {permanent_error_codes: %s}"), value);
		cw_err_t err = {0};
		assert_null(load(text, NULL, NULL, &err));
		assert_string_equal(err.message, "t.yaml:7:64: key \"targets[0].streams[0].retry_policy."
		                                 "permanent_error_codes\": too many items (the limit is 32)");
		free(text);
		free(value);
	}
	/* 32 is fine */
	char *text = cw_xasprintf(MINIMAL STREAM("retry_policy: {permanent_error_codes: \"%.*s\"}"),
	                          (int)strlen(values[1]) - 6, values[1]);
	cw_config_t *config = load_ok(text, NULL);
	assert_int_equal(strlen(config->targets[0].streams[0].retry_policy.permanent_error_codes),
	                 32 * 6 - 1);
	cw_config_free(config);
	free(text);
	/* the longest code an error carries (core/err.h) is fine too */
	config = load_ok(MINIMAL STREAM("retry_policy: {permanent_error_codes: [123456789012345]}"), NULL);
	assert_string_equal(config->targets[0].streams[0].retry_policy.permanent_error_codes,
	                    "123456789012345");
	cw_config_free(config);
	cw_buf_free(&list);
	cw_buf_free(&string);
}

/* A stream's errors do not hide each other, nor the checks across keys. */
static void test_every_error_listed(void **state)
{
	(void)state;
	const char *text = MINIMAL
		"transformations:\n"
		"  - {id: a, spec: \"{}\"}\n"
		"  - {id: a, spec: \"[]\"}\n"
		TARGET_WH
		"    streams:\n"
		"      - {entity: orders, batch_size: x, transformation_id: b}\n"
		"      - {entity: orders, retry_policy: {initial_delay: 5s, max_delay: 1s}}\n";
	cw_buf_t errors = CW_BUF_INIT;
	assert_null(load(text, NULL, &errors, NULL));
	assert_string_equal(
		cw_buf_cstr(&errors),
		"t.yaml:3:19: key \"transformations[0].spec\": invalid value: the spec must be a JSON array "
		"of operations ([{\"operation\": \"shift\", \"spec\": {...}}, ...])\n"
		"t.yaml:10:38: key \"targets[0].streams[0].batch_size\": wrong type: expected an integer, got \"x\"\n"
		"t.yaml:4:10: key \"transformations[1].id\": duplicate transformation id \"a\" "
		"(transformations[0] has it already)\n"
		"t.yaml:10:60: key \"targets[0].streams[0].transformation_id\": unknown transformation \"b\" "
		"(did you mean \"a\"?)\n"
		"t.yaml:11:18: key \"targets[0].streams[1].entity\": duplicate stream for entity \"orders\" "
		"(targets[0].streams[0] has it already)\n"
		"t.yaml:11:71: key \"targets[0].streams[1].retry_policy.max_delay\": out of range: 1s is less "
		"than initial_delay (5s)\n");
	cw_buf_free(&errors);
}

/* ---- replication loops ----------------------------------------------------- */

typedef struct loop_case {
	const char *entities;   /* more entities: items of the list SOURCES starts */
	const char *targets;    /* the targets: section */
	const char *error;      /* the first error, or NULL: the file loads */
} loop_case_t;

static const loop_case_t loop_cases[] = {
	/* a postgres target in the source's database, writing the captured table */
	{"", "targets:\n  - {name: wh, type: postgres, url: \"host=db.example.com port=5432 dbname=app\"}\n",
	 "t.yaml:9:37: key \"targets[0].url\": replication loop: target \"wh\" writes entity \"orders\" to "
	 "table public.orders, the table source \"app\" captures it from (entities[0].table)"},
	/* the same with the URL written another way; another entity name writing the table */
	{"  - {name: mirror, source: app, table: reporting.orders}\n",
	 "targets:\n  - {name: wh, type: postgres, url: \"postgresql://x:y@DB.example.com:5432/app\", "
	 "schema: reporting}\n",
	 "t.yaml:10:37: key \"targets[0].url\": replication loop: target \"wh\" writes entity \"orders\" to "
	 "table reporting.orders, which source \"app\" captures for entity \"mirror\" (entities[2].table)"},
	/* a stream's entity the file does not configure is written too */
	{"  - {name: x, source: app, table: sales.customers}\n",
	 "targets:\n  - name: wh\n    type: postgres\n    url: \"postgresql://db.example.com/app\"\n"
	 "    schema: sales\n    streams: [{entity: customers}]\n",
	 "t.yaml:12:10: key \"targets[0].url\": replication loop: target \"wh\" writes entity \"customers\" "
	 "to table sales.customers, which source \"app\" captures for entity \"x\" (entities[2].table)"},
	/* a mongodb target writing a captured collection: its database from the url or its key */
	{"", "targets:\n  - {name: bk, type: mongodb, url: \"mongodb://Mongo.example.com:27017/shop\"}\n",
	 "t.yaml:9:36: key \"targets[0].url\": replication loop: target \"bk\" writes entity \"products\" "
	 "to collection shop.products, the collection source \"shop\" captures it from "
	 "(entities[1].collection)"},
	{"", "targets:\n  - {name: bk, type: mongodb, url: \"mongodb://mongo.example.com/x\", database: shop}\n",
	 "t.yaml:9:36: key \"targets[0].url\": replication loop: target \"bk\" writes entity \"products\" "
	 "to collection shop.products, the collection source \"shop\" captures it from "
	 "(entities[1].collection)"},
	/* an entity whose collection on the target is a captured collection */
	{"  - {name: copy, source: app, table: t, targets: {bk: {collection: products}}}\n",
	 "targets:\n  - {name: bk, type: mongodb, url: \"mongodb://mongo.example.com/shop\"}\n",
	 "t.yaml:10:36: key \"targets[0].url\": replication loop: target \"bk\" writes entity \"products\" "
	 "to collection shop.products, the collection source \"shop\" captures it from "
	 "(entities[1].collection)"},
	/* allowed: another database, port, host, schema or collection */
	{"", "targets:\n  - {name: wh, type: postgres, url: \"postgresql://db.example.com/warehouse\"}\n", NULL},
	{"", "targets:\n  - {name: wh, type: postgres, url: \"postgresql://db.example.com:5433/app\"}\n", NULL},
	{"", "targets:\n  - {name: wh, type: postgres, url: \"postgresql://replica.example.com/app\"}\n", NULL},
	{"", "targets:\n  - {name: wh, type: postgres, url: \"postgresql://db.example.com/app\", schema: copy}\n",
	 NULL},
	{"", "targets:\n  - {name: bk, type: mongodb, url: \"mongodb://mongo.example.com/backup\"}\n", NULL},
	{"", "targets:\n  - {name: wh, type: sqlite, dir: /tmp/cw}\n", NULL},
};

static void test_replication_loops(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof loop_cases / sizeof loop_cases[0]; i++) {
		char *text = cw_xasprintf("%s%s%s%s", MINIMAL, SOURCES, loop_cases[i].entities,
		                          loop_cases[i].targets);
		cw_err_t err = {0};
		cw_config_t *config = load(text, NULL, NULL, &err);
		if (loop_cases[i].error == NULL && config == NULL)
			fail_msg("case %zu: refused: %s\n%s", i, err.message, text);
		if (loop_cases[i].error != NULL &&
		    (config != NULL || strcmp(err.message, loop_cases[i].error) != 0))
			fail_msg("case %zu:\n got: %s\nwant: %s", i, config ? "(loaded)" : err.message,
			         loop_cases[i].error);
		cw_config_free(config);
		free(text);
	}
}

/* A mongodb entity renamed or left out on the target does not write its source collection. */
static void test_loop_renamed_or_excluded(void **state)
{
	(void)state;
	static const char *const settings[] = {"{bk: {collection: products_copy}}", "{bk: {exclude: true}}"};
	for (size_t i = 0; i < 2; i++) {
		char *text = cw_xasprintf(
			MINIMAL
			"sources:\n"
			"  - {name: shop, type: mongodb, url: \"mongodb://mongo.example.com\", database: shop}\n"
			"entities:\n"
			"  - {name: products, source: shop, collection: products, targets: %s}\n"
			"targets:\n  - {name: bk, type: mongodb, url: \"mongodb://mongo.example.com/shop\"}\n",
			settings[i]);
		cw_config_free(load_ok(text, NULL));
		free(text);
	}
}

/* Nothing captures or writes the hub's own schema, cachewarp, in the hub's database. */
static void test_hub_schema(void **state)
{
	(void)state;
	static const struct {
		const char *text, *error;
	} cases[] = {
		{"sources: [{name: app, type: postgres, url: \"host=localhost dbname=app\"}]\n"
		 "entities: [{name: log, source: app, table: cachewarp.oplog}]\n",
		 "t.yaml:3:44: key \"entities[0].table\": replication loop: entity \"log\" captures "
		 "cachewarp.oplog, a table of the hub itself (source \"app\" is the hub's database)"},
		{"targets: [{name: wh, type: postgres, url: \"postgresql://127.0.0.1:5432/app\", "
		 "schema: cachewarp}]\n",
		 "t.yaml:2:86: key \"targets[0].schema\": target \"wh\" would write into schema cachewarp of "
		 "the hub's database, the hub's own tables: use another schema"},
		{"targets: [{name: wh, type: postgres, url: \"postgresql://localhost/app\", "
		 "meta_schema: cachewarp}]\n",
		 "t.yaml:2:86: key \"targets[0].meta_schema\": target \"wh\" would write into schema "
		 "cachewarp of the hub's database, the hub's own tables: use another schema"},
		/* the hub's database in another schema, or schema cachewarp of another database: fine */
		{"sources: [{name: app, type: postgres, url: \"host=localhost dbname=app\"}]\n"
		 "entities: [{name: log, source: app, table: public.log}]\n"
		 "targets: [{name: wh, type: postgres, url: \"postgresql://localhost/app\", schema: copy}]\n",
		 NULL},
		{"sources: [{name: app, type: postgres, url: \"host=localhost dbname=other\"}]\n"
		 "entities: [{name: log, source: app, table: cachewarp.oplog}]\n"
		 "targets: [{name: wh, type: postgres, url: \"postgresql://localhost/other\", schema: cachewarp}]\n",
		 NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = cw_xasprintf("hub: {url: \"postgresql://localhost/app\"}\n%s", cases[i].text);
		cw_err_t err = {0};
		cw_config_t *config = load(text, NULL, NULL, &err);
		if (cases[i].error == NULL ? config == NULL
		                           : config != NULL || strcmp(err.message, cases[i].error) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, config ? "(loaded)" : err.message,
			         cases[i].error ? cases[i].error : "(loaded)");
		cw_config_free(config);
		free(text);
	}
}

/* ---- config show and the environment ---------------------------------------- */

static void test_show_round_trip(void **state)
{
	(void)state;
	cw_config_t *config = load_ok(full, NULL);
	cw_buf_t first = CW_BUF_INIT, second = CW_BUF_INIT;
	cw_config_write_effective(config, &first);
	const char *shown = cw_buf_cstr(&first);
	static const char *const lines[] = {
		"version: \"1\"\n",
		"    streams:\n"
		"      - entity: \"orders\"\n"
		"        transformation_id: \"flatten-price\"\n"
		"        enabled: false\n"
		"        batch_size: 250\n"
		"        on_error: dead_letter\n"
		"        retry_policy:\n"
		"          max_attempts: 5\n"
		"          initial_delay: 250ms\n"
		"          max_delay: 1m\n"
		"          backoff_multiplier: 1.5\n"
		"          permanent_error_codes: [23505, 22P02]\n"
		"      - entity: \"products\"\n"
		"        enabled: true\n"
		"        batch_size: 0\n"
		"        on_error: retry\n"
		"        retry_policy:\n"
		"          max_attempts: 0\n"   /* unset delays are not shown: they follow retry */
		"      - entity: \"from_the_hub\"\n",
		"          permanent_error_codes: [11000, 50]\n",
		"transformations:\n"
		"  - id: \"flatten-price\"\n"
		"    name: \"Flatten the price\"\n"
		"    type: kazaam\n"
		"    spec: \"[{\\\"operation\\\": \\\"shift\\\", ",
		"    error_handling:\n      on_error: fail_stream\n  - id: \"keep\"\n    type: kazaam\n",
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		if (strstr(shown, lines[i]) == NULL)
			fail_msg("show lacks:\n%s\n--- shown ---\n%s", lines[i], shown);
	cw_config_t *again = load_ok(shown, NULL);
	cw_config_write_effective(again, &second);
	assert_string_equal(shown, cw_buf_cstr(&second));
	assert_string_equal(again->transformations[0].spec, config->transformations[0].spec);
	cw_buf_free(&first);
	cw_buf_free(&second);
	cw_config_free(again);
	cw_config_free(config);
}

static void test_env_overrides(void **state)
{
	(void)state;
	char *envp[] = {
		"CACHEWARP_TARGETS_0_STREAMS_0_BATCH_SIZE=7",
		"CACHEWARP_TARGETS_0_STREAMS_1_ENABLED=false",
		"CACHEWARP_TARGETS_0_STREAMS_1_RETRY_POLICY_MAX_ATTEMPTS=9",
		"CACHEWARP_TARGETS_0_STREAMS_1_RETRY_POLICY_PERMANENT_ERROR_CODES= 40001 , 40P01",
		"CACHEWARP_TARGETS_0_STREAMS_0_RETRY_POLICY_PERMANENT_ERROR_CODES=",
		"CACHEWARP_TRANSFORMATIONS_1_ERROR_HANDLING_ON_ERROR=skip",
		"CACHEWARP_VERSION=1",
		NULL,
	};
	cw_config_t *config = load_ok(full, envp);
	const cw_target_config_t *wh = &config->targets[0];
	assert_int_equal(wh->streams[0].batch_size, 7);
	assert_null(wh->streams[0].retry_policy.permanent_error_codes);   /* "" leaves none */
	assert_int_equal(wh->streams[1].enabled, 0);
	assert_int_equal(wh->streams[1].retry_policy.max_attempts, 9);
	assert_string_equal(wh->streams[1].retry_policy.permanent_error_codes, "40001,40P01");
	assert_int_equal(config->transformations[1].on_error, CW_ON_ERROR_SKIP);
	cw_config_free(config);

	char *bad[] = {
		"CACHEWARP_TARGETS_0_STREAMS_3_BATCH_SIZE=7",
		"CACHEWARP_TARGETS_0_STREAMS_0_RETRY_POLICY_PERMANENT_ERROR_CODES=23505,no-dash",
		"CACHEWARP_VERSION=2",
		NULL,
	};
	cw_buf_t errors = CW_BUF_INIT;
	assert_null(load(full, bad, &errors, NULL));
	assert_string_equal(
		cw_buf_cstr(&errors),
		"environment variable CACHEWARP_TARGETS_0_STREAMS_3_BATCH_SIZE: key "
		"\"targets[0].streams[3].batch_size\": targets[].streams item 3 does not exist: there are 3 "
		"(the environment can change items the file has, not add new ones)\n"
		"environment variable CACHEWARP_TARGETS_0_STREAMS_0_RETRY_POLICY_PERMANENT_ERROR_CODES: key "
		"\"targets[0].streams[0].retry_policy.permanent_error_codes\": invalid value \"no-dash\": an "
		"error code has 1 to 15 letters and digits (a SQLSTATE such as 23505, a MongoDB code such as "
		"11000)\n"
		"environment variable CACHEWARP_VERSION: key \"version\": unsupported configuration version "
		"\"2\": this cachewarp reads version 1\n");
	cw_buf_free(&errors);
}

/* ---- the reference ------------------------------------------------------------ */

static void test_reference_rows(void **state)
{
	(void)state;
	static const char *const rows[] = {
		"## `version`\n\n| key |",
		"| `version` | string | `1` | `CACHEWARP_VERSION` |",
		"| `targets[].streams` | list of mappings | none | — |",
		"| `targets[].streams[].retry_policy` | mapping | none | — |",
		"| `targets[].streams[].retry_policy.initial_delay` | duration | `retry.initial` | "
		"`CACHEWARP_TARGETS_<i>_STREAMS_<i>_RETRY_POLICY_INITIAL_DELAY` |",
		"| `targets[].streams[].retry_policy.permanent_error_codes` | list | none | "
		"`CACHEWARP_TARGETS_<i>_STREAMS_<i>_RETRY_POLICY_PERMANENT_ERROR_CODES` |",
		"| `targets[].streams[].on_error` | enum | `retry` |",
		"| `transformations[].error_handling.on_error` | enum | `dead_letter` |",
		"| `transformations[].spec` | string | **required** |",
		"* **list**: a YAML sequence",
	};
	cw_buf_t reference = CW_BUF_INIT;
	cw_config_write_reference(&reference);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (strstr(cw_buf_cstr(&reference), rows[i]) == NULL)
			fail_msg("the reference lacks: %s", rows[i]);
	cw_buf_free(&reference);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_other_version_alone),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_too_many_codes),
		cmocka_unit_test(test_every_error_listed),
		cmocka_unit_test(test_replication_loops),
		cmocka_unit_test(test_loop_renamed_or_excluded),
		cmocka_unit_test(test_hub_schema),
		cmocka_unit_test(test_show_round_trip),
		cmocka_unit_test(test_env_overrides),
		cmocka_unit_test(test_reference_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
