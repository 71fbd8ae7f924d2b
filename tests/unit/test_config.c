/*
 * This file contains the unit tests of core/config*.c and control/cmd_config.c:
 * the example file, every error kind with its position and key, environment
 * overrides, masking in `config show`, and the generated reference, which
 * must equal docs/configuration.md.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/cmd_config.h"
#include "core/config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *source_dir(void)
{
	const char *dir = getenv("CW_SOURCE_DIR");
	if (dir == NULL)
		fail_msg("CW_SOURCE_DIR is not set (ctest sets it)");
	return dir;
}

static char *fixture(const char *name)
{
	char *path = malloc(PATH_MAX);
	snprintf(path, PATH_MAX, "%s/tests/unit/config/%s", source_dir(), name);
	return path;
}

static char *read_all(const char *path)
{
	FILE *file = fopen(path, "rb");
	if (file == NULL)
		return NULL;
	cw_buf_t buf = CW_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, file)) > 0)
		cw_buf_append(&buf, chunk, n);
	fclose(file);
	return cw_buf_take(&buf);
}

/* Loads text as if from name; returns the config or NULL with every error in errors. */
static cw_config_t *load_text(const char *name, const char *text, char *const *envp,
                              cw_buf_t *errors, cw_err_t *err)
{
	cw_config_load_opts_t opts = {envp, errors};
	cw_config_t *config = NULL;
	int rc = cw_config_load_buffer(name, text, strlen(text), &opts, &config, err);
	assert_true((rc == 0) == (config != NULL));
	return config;
}

#define MINIMAL "hub: {url: \"postgresql://127.0.0.1/app\"}\n"

/* ---- the example and the defaults ------------------------------------- */

static void test_example_loads(void **state)
{
	(void)state;
	char path[PATH_MAX], dbs[PATH_MAX];
	snprintf(path, sizeof path, "%s/cachewarp.example.yaml", source_dir());
	cw_err_t err = {0};
	cw_config_t *config = NULL;
	if (cw_config_load(path, NULL, &config, &err) != 0)
		fail_msg("cachewarp.example.yaml: %s", err.message);
	assert_string_equal(config->hub.url, "postgresql://cachewarp:secret@127.0.0.1:5432/app");
	assert_int_equal(config->hub.pool_size, 4);
	assert_int_equal(config->hub.retention_ms, 7 * 86400000LL);

	assert_int_equal(config->nsources, 2);
	const cw_source_config_t *pg = cw_config_source(config, "app_pg");
	const cw_source_config_t *shop = cw_config_source(config, "shop");
	assert_non_null(pg);
	assert_non_null(shop);
	assert_int_equal(pg->type, CW_SOURCE_POSTGRES);
	assert_string_equal(pg->publication, "cachewarp");
	assert_string_equal(pg->slot, "cachewarp_app_pg");
	assert_null(pg->database);
	assert_int_equal(shop->type, CW_SOURCE_MONGODB);
	assert_string_equal(shop->url, "mongodb://127.0.0.1:27017");
	assert_string_equal(shop->database, "shop");
	assert_null(shop->publication);   /* a postgres default does not stick to a mongodb source */
	assert_null(shop->slot);
	assert_int_equal(shop->watch, CW_WATCH_DATABASE);
	assert_int_equal(shop->on_position_lost, CW_POSITION_LOST_RESCAN);

	assert_int_equal(config->nentities, 2);
	const cw_entity_t *products = cw_config_entity(config, "products");
	assert_non_null(products);
	assert_string_equal(products->source, "shop");
	assert_string_equal(products->collection, "products");
	assert_null(products->table);
	assert_int_equal(products->ncolumns, 3);
	assert_string_equal(products->columns[1].name, "price");
	assert_int_equal(products->columns[1].type, CW_COL_NUMBER);
	assert_string_equal(products->columns[1].path, "pricing.amount");
	assert_int_equal(products->columns[2].type, CW_COL_JSONB);
	assert_int_equal(products->version, 1);
	const cw_entity_t *customers = cw_config_entity(config, "customers");
	assert_string_equal(customers->table, "public.customers");
	assert_int_equal(customers->ncolumns, 0);
	assert_null(cw_config_entity(config, "nope"));

	assert_int_equal(config->ntargets, 1);
	const cw_target_config_t *local = cw_config_target(config, "local");
	assert_int_equal(local->type, CW_TARGET_SQLITE);
	assert_non_null(realpath(source_dir(), dbs));
	strcat(dbs, "/dbs");
	assert_string_equal(local->dir, dbs);   /* relative to the file, made absolute */
	assert_int_equal(local->idle_timeout_ms, 60000);

	assert_string_equal(config->api.listen, "127.0.0.1:8080");
	assert_null(config->api.token);
	assert_int_equal(config->api.max_body_bytes, 1 << 20);
	assert_int_equal(config->log.level, CW_LOG_INFO);
	assert_int_equal(config->log.format, CW_LOG_FORMAT_AUTO);
	assert_int_equal(config->capture.batch_size, 1000);   /* the example sets it */
	assert_int_equal(config->capture.flush_interval_ms, 100);
	assert_int_equal(config->apply.batch_size, 1000);
	assert_int_equal(config->apply.poll_interval_ms, 1000);
	assert_int_equal(config->retry.initial_ms, 100);
	assert_int_equal(config->retry.max_ms, 30000);
	assert_true(config->retry.multiplier == 2.0);
	assert_int_equal(config->retry.give_up_after_ms, 600000);
	assert_true(cw_retry_policy_check(&config->retry, NULL) == 0);
	cw_config_free(config);
}

static void test_defaults(void **state)
{
	(void)state;
	cw_config_t *config = load_text("defaults.yaml", MINIMAL, NULL, NULL, NULL);
	assert_non_null(config);
	assert_int_equal(config->hub.pool_size, 4);
	assert_int_equal(config->nsources + config->nentities + config->ntargets, 0);
	assert_int_equal(config->capture.queue_depth, 2);
	assert_int_equal(config->apply.batch_size, 1000);
	assert_int_equal(config->apply.poll_interval_ms, 1000);
	assert_int_equal(config->retry.initial_ms, 100);
	assert_int_equal(config->retry.give_up_after_ms, 600000);
	assert_true(config->retry.jitter == 0.5);
	assert_string_equal(config->path, "defaults.yaml");
	cw_config_free(config);
	cw_config_free(NULL);
}

static void test_targets_by_type(void **state)
{
	(void)state;
	const char *text = MINIMAL
		"targets:\n"
		"  - {name: analytics, type: postgres, url: \"postgresql://u:p@h/a\", delete_mode: soft}\n"
		"  - {name: backup, type: mongodb, url: \"mongodb://h/backup\"}\n"
		"  - {name: cache, type: sqlite, dir: /var/lib/cachewarp/, idle_timeout: 5m}\n"
		"  - {name: here, type: sqlite, dir: .}\n"
		"entities:\n"
		"  - {name: auto_cols, source: app_pg, table: t, columns: auto}\n"
		"  - name: tuned\n"
		"    source: app_pg\n"
		"    table: u\n"
		"    targets:\n"
		"      analytics: {write_batch_size: 50}\n"
		"sources:\n"
		"  - {name: app_pg, type: postgres, url: \"host=h dbname=app\", slot: ~}\n";
	cw_err_t err = {0};
	cw_config_t *config = load_text("/nonexistent/dir/x.yaml", text, NULL, NULL, &err);
	if (config == NULL)
		fail_msg("%s", err.message);
	assert_int_equal(config->targets[0].delete_mode, CW_DELETE_SOFT);
	assert_string_equal(config->targets[0].schema, "public");
	assert_null(config->targets[0].dir);
	assert_null(config->targets[1].schema);
	assert_null(config->targets[1].database);
	assert_string_equal(config->targets[2].dir, "/var/lib/cachewarp/");
	assert_int_equal(config->targets[2].idle_timeout_ms, 300000);
	assert_string_equal(config->targets[3].dir, "/nonexistent/dir");
	assert_int_equal(config->entities[0].ncolumns, 0);
	assert_int_equal(config->entities[0].ntargets, 0);
	assert_int_equal(config->entities[1].ntargets, 1);   /* keyed by target name */
	assert_string_equal(config->entities[1].targets[0].name, "analytics");
	assert_int_equal(config->entities[1].targets[0].write_batch_size, 50);
	assert_int_equal(config->targets[0].write_batch_size, 500);
	assert_int_equal(config->targets[0].column_budget, 400);
	assert_string_equal(config->targets[0].meta_schema, "cachewarp_meta");
	assert_string_equal(config->targets[0].soft_delete_column, "is_deleted");
	assert_int_equal(config->targets[0].on_entity_delete, CW_ENTITY_DELETE_DROP);
	/* config show writes the mapping keyed by target name back, and it loads again */
	cw_buf_t shown = CW_BUF_INIT;
	cw_config_write_effective(config, &shown);
	assert_non_null(strstr(cw_buf_cstr(&shown), "    targets:\n      \"analytics\":\n"
	                                            "        write_batch_size: 50\n"));
	cw_config_t *again = load_text("/nonexistent/dir/x.yaml", cw_buf_cstr(&shown), NULL, NULL, &err);
	if (again == NULL)
		fail_msg("%s\n%s", err.message, cw_buf_cstr(&shown));
	assert_int_equal(again->entities[1].targets[0].write_batch_size, 50);
	cw_config_free(again);
	cw_buf_free(&shown);
	assert_string_equal(config->sources[0].slot, "cachewarp_app_pg");   /* ~ is no value */
	assert_string_equal(cw_target_type_name(config->targets[1].type), "mongodb");
	assert_string_equal(cw_source_type_name(config->sources[0].type), "postgres");
	cw_config_free(config);
}

/* ---- errors ------------------------------------------------------------ */

typedef struct error_case {
	const char *fixture;
	const char *error;      /* the first error, after "<path>" */
} error_case_t;

static const error_case_t error_cases[] = {
	{"unknown_key.yaml", ":6:5: key \"sources[0].ulr\": unknown key (did you mean \"url\"?)"},
	{"unknown_key_far.yaml",
	 ":3:3: key \"hub.frobnicate\": unknown key (known keys here: url, pool_size, retention or "
	 "auth_id)"},
	{"wrong_type.yaml", ":3:14: key \"hub.pool_size\": wrong type: expected an integer, got \"four\""},
	{"wrong_node.yaml",
	 ":4:3: key \"sources\": wrong type: expected a list of mappings (\"- name: ...\" items), got a mapping"},
	{"out_of_range.yaml", ":3:15: key \"apply.batch_size\": out of range: 0 (allowed: 1 to 100000)"},
	{"bad_duration.yaml",
	 ":2:18: key \"retry.initial\": wrong type: expected a duration, got \"5x\": unknown unit \"x\" "
	 "(use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d)"},
	{"bad_size.yaml",
	 ":3:13: key \"api.max_body\": wrong type: expected a size, got \"64 MiB\": unexpected space at "
	 "position 3 (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB)"},
	{"missing_required.yaml", ":4:5: key \"sources[0].url\": missing required value"},
	{"missing_hub.yaml", ":1:1: key \"hub.url\": missing required value"},
	{"duplicate_entity.yaml",
	 ":9:11: key \"entities[1].name\": duplicate entity name \"products\" (entities[0] has it already)"},
	{"duplicate_source.yaml",
	 ":5:12: key \"sources[1].name\": duplicate source name \"shop\" (sources[0] has it already)"},
	{"unknown_source.yaml",
	 ":7:13: key \"entities[0].source\": unknown source \"shopp\" (did you mean \"shop\"?)"},
	{"wrong_source_kind.yaml",
	 ":8:12: key \"entities[0].table\": source \"shop\" is a mongodb source: use collection, not table"},
	{"batch_errors.yaml",
	 ":11:23: key \"entities[0].polling_interval\": set schedule or polling_interval, not both"},
	{"batch_schedule.yaml", ":10:15: key \"entities[0].schedule\": month field \"13\": values "
	 "must be 1 to 12, a range low to high"},
	{"only_applies.yaml", ":8:11: key \"sources[0].slot\": only applies to postgres sources"},
	{"bad_enum.yaml", ":5:11: key \"sources[0].type\": invalid value \"postgress\" (did you mean \"postgres\"?)"},
	{"bad_name.yaml",
	 ":4:11: key \"targets[0].name\": target name \"Local\" is invalid: upper-case letters are not "
	 "allowed (character 'L' at position 1); use a-z, 0-9 and _, starting with a letter"},
	{"duplicate_key.yaml", ":3:3: key \"hub.url\": duplicate key (first given at line 2)"},
	{"syntax_error.yaml",
	 ":3:2: invalid YAML: did not find expected key (while parsing a block mapping at line 1, column 1)"},
	{"bad_column.yaml",
	 ":10:29: key \"entities[0].columns[0].type\": invalid value \"texte\" (did you mean \"text\"?)"},
	{"reserved_column.yaml",
	 ":10:16: key \"entities[0].columns[0].name\": entity \"products\": column name \"id\" is reserved: every cache "
	 "table keeps the document id in its \"id\" column (pick another name; id, _version and "
	 "_oplog_id are reserved)"},
};

static void test_error_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
		char *path = fixture(error_cases[i].fixture);
		char want[1024];
		snprintf(want, sizeof want, "%s%s", path, error_cases[i].error);
		cw_buf_t errors = CW_BUF_INIT;
		cw_config_load_opts_t opts = {NULL, &errors};
		cw_err_t err = {0};
		cw_config_t *config = NULL;
		int rc = cw_config_load(path, &opts, &config, &err);
		if (rc != CW_EINVAL || config != NULL || strcmp(err.message, want) != 0)
			fail_msg("%s: rc %d\n got: %s\nwant: %s", error_cases[i].fixture, rc, err.message, want);
		assert_string_equal(err.domain, "config");
		/* The list of every error starts with the same line. */
		assert_memory_equal(cw_buf_cstr(&errors), want, strlen(want));
		cw_buf_free(&errors);
		free(path);
	}
}

static void test_every_error_listed(void **state)
{
	(void)state;
	char *path = fixture("many_errors.yaml");
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {NULL, &errors};
	cw_config_t *config = NULL;
	assert_int_equal(cw_config_load(path, &opts, &config, NULL), CW_EINVAL);
	char want[4096];
	snprintf(want, sizeof want,
	         "%1$s:2:14: key \"hub.pool_size\": out of range: 0 (allowed: 1 to 256)\n"
	         "%1$s:8:10: key \"log.level\": invalid value \"loud\" (use debug, info, warn or error)\n"
	         "%1$s:2:3: key \"hub.url\": missing required value\n"
	         "%1$s:4:5: key \"sources[0].database\": missing required value\n",
	         path);
	assert_string_equal(cw_buf_cstr(&errors), want);
	cw_buf_free(&errors);
	free(path);
}

/*
 * Errors of every kind come in one run, each at its key's own line: a value
 * of the wrong type does not hide an unknown source or a bad table name
 * (which are checked across keys), nor one entity's error another's.
 */
static void test_every_error_at_its_line(void **state)
{
	(void)state;
	char *path = fixture("every_error_at_its_line.yaml");
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {NULL, &errors};
	cw_config_t *config = NULL;
	assert_int_equal(cw_config_load(path, &opts, &config, NULL), CW_EINVAL);
	static const char *const want[] = {
		":3:14: key \"hub.pool_size\": wrong type",
		":18:27: key \"entities[2].columns[0].type\": invalid value \"integr\"",
		":23:16: key \"entities[3].columns[0].name\": column name \"_version\" is invalid",
		":24:40: key \"entities[3].columns[1].path\": path \"a..b\" is invalid",
		":9:13: key \"entities[0].source\": unknown source \"shopp\" (did you mean \"shop\"?)",
		":13:12: key \"entities[1].table\": entity \"orders\": table \"public.Orders\"",
	};
	const char *line = cw_buf_cstr(&errors);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		char prefix[512];
		snprintf(prefix, sizeof prefix, "%s%s", path, want[i]);
		if (strncmp(line, prefix, strlen(prefix)) != 0)
			fail_msg("error %zu:\n got: %.*s\nwant: %s", i + 1, (int)strcspn(line, "\n"), line,
			         prefix);
		line += strcspn(line, "\n") + 1;
	}
	assert_string_equal(line, "");
	cw_buf_free(&errors);
	free(path);
}

static void test_unreadable_file(void **state)
{
	(void)state;
	cw_err_t err = {0};
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {NULL, &errors};
	cw_config_t *config = (cw_config_t *)&err;
	assert_int_equal(cw_config_load("/nonexistent/cachewarp.yaml", &opts, &config, &err), CW_EIO);
	assert_null(config);
	assert_string_equal(err.message,
	                    "could not read config \"/nonexistent/cachewarp.yaml\": No such file or directory");
	assert_string_equal(cw_buf_cstr(&errors),
	                    "could not read config \"/nonexistent/cachewarp.yaml\": No such file or directory\n");
	cw_buf_free(&errors);
}

typedef struct text_case {
	const char *text;
	const char *error;      /* the first error for file "t.yaml" */
} text_case_t;

static const text_case_t text_cases[] = {
	{"", "t.yaml:1:1: key \"hub.url\": missing required value"},
	{"- a\n", "t.yaml:1:1: wrong type: expected a mapping of keys (hub, sources, entities, ...), got a list"},
	{MINIMAL "---\nhub: {}\n", "t.yaml:3:1: a second YAML document: a configuration file holds one"},
	{MINIMAL "? [a]\n: b\n", "t.yaml:2:3: a key must be a name, not a list"},
	{MINIMAL "api: {token: \"a\\0b\"}\n",
	 "t.yaml:2:14: key \"api.token\": invalid value: it holds a NUL character"},
	{MINIMAL "api: {listen: \"8080\"}\n",
	 "t.yaml:2:15: key \"api.listen\": invalid value: expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080"},
	{MINIMAL "api: {listen: \"h:70000\"}\n",
	 "t.yaml:2:15: key \"api.listen\": invalid value: expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080"},
	{MINIMAL "retry: {initial: 1m, max: 30s}\n",
	 "t.yaml:2:27: key \"retry.max\": out of range: 30s is less than retry.initial (1m)"},
	{MINIMAL "retry: {multiplier: 0.5}\n",
	 "t.yaml:2:21: key \"retry.multiplier\": out of range: 0.5 (allowed: 1 to 10)"},
	{MINIMAL "retry: {multiplier: fast}\n",
	 "t.yaml:2:21: key \"retry.multiplier\": wrong type: expected a number, got \"fast\""},
	{MINIMAL "hub: {pool_size: 1}\n", "t.yaml:2:1: key \"hub\": duplicate key (first given at line 1)"},
	{MINIMAL "sources: [{name: s, type: postgres, url: \"postgresql://h/a\"}]\n"
	 "targets: [{name: wh, type: postgres, url: \"postgresql://h/b\"}]\n"
	 "entities:\n  - name: e\n    source: s\n    table: t\n    targets:\n      whh: {write_batch_size: 5}\n",
	 "t.yaml:9:7: key \"entities[0].targets[0].name\": unknown target \"whh\""},
	{MINIMAL "sources: [{name: s, type: postgres, url: \"postgresql://h/a\"}]\n"
	 "targets: [{name: wh, type: postgres, url: \"postgresql://h/b\"}]\n"
	 "entities:\n  - name: e\n    source: s\n    table: t\n    targets:\n      wh: {write_batch_size: -1}\n",
	 "t.yaml:9:30: key \"entities[0].targets[0].write_batch_size\": out of range: -1 (allowed: 0 to 100000)"},
	{MINIMAL "targets: [{name: wh, type: postgres, url: \"postgresql://h/b\", delete_mode: maybe}]\n",
	 "t.yaml:2:76: key \"targets[0].delete_mode\": invalid value \"maybe\" (use hard or soft)"},
	{MINIMAL "capture: {batch_size: [1]}\n",
	 "t.yaml:2:23: key \"capture.batch_size\": wrong type: expected an integer, got a list"},
	{MINIMAL "log: debug\n", "t.yaml:2:6: key \"log\": wrong type: expected a mapping of keys, got \"debug\""},
	{MINIMAL "sources: [shop]\n",
	 "t.yaml:2:11: key \"sources[0]\": wrong type: expected a mapping of keys, got \"shop\""},
	{MINIMAL "sources:\n  - {name: s, type: mongodb, url: \"postgresql://h/x\", database: d}\n",
	 "t.yaml:3:35: key \"sources[0].url\": invalid value: a mongodb url starts with mongodb:// or mongodb+srv://"},
	{"hub: {url: \"mysql://u:pw@h/db\"}\n",
	 "t.yaml:1:12: key \"hub.url\": invalid value: a postgres url starts with postgresql:// or postgres://, "
	 "or is a conninfo string (host=... dbname=...)"},
	{MINIMAL "targets:\n  - {name: t, type: sqlite}\n", "t.yaml:3:5: key \"targets[0].dir\": missing required value"},
	{MINIMAL "targets:\n  - {name: t, type: postgres, dir: x, url: \"postgres://h/x\"}\n",
	 "t.yaml:3:36: key \"targets[0].dir\": only applies to sqlite targets"},
	{MINIMAL "sources:\n  - {name: s, type: postgres, url: \"postgres://h/x\"}\n"
	 "entities:\n  - name: e\n    source: s\n    table: public.Orders\n",
	 "t.yaml:7:12: key \"entities[0].table\": entity \"e\": table \"public.Orders\" must be \"schema.table\" or "
	 "\"table\", each part a lower-case name or a double-quoted one: table name \"Orders\" has "
	 "upper-case letters: PostgreSQL folds unquoted names to lower case, so write it in double "
	 "quotes (\"Orders\") for the name as created, or in lower case"},
	{MINIMAL "sources:\n  - {name: s, type: postgres, url: \"postgres://h/x\"}\n"
	 "entities:\n  - {name: e, source: s}\n",
	 "t.yaml:5:5: key \"entities[0].table\": missing required value (source \"s\" is a postgres source)"},
	{MINIMAL "entities:\n  - {name: e, source: s, table: t}\n",
	 "t.yaml:3:23: key \"entities[0].source\": unknown source \"s\" (no sources are configured)"},
	{MINIMAL "sources:\n  - {name: abc_source, type: postgres, url: \"postgres://h/x\"}\n"
	 "entities:\n  - {name: e, source: other, table: t}\n",
	 "t.yaml:5:23: key \"entities[0].source\": unknown source \"other\" (configured sources: abc_source)"},
	{MINIMAL "sources:\n  - {name: a123456789a123456789a123456789a123456789a123456789a12345, "
	 "type: postgres, url: \"postgres://h/x\"}\n",
	 "t.yaml:3:5: key \"sources[0].slot\": the default slot name "
	 "\"cachewarp_a123456789a123456789a123456789a123456789a123456789a12345\" is longer than 63 "
	 "characters: set slot"},
	{MINIMAL "entities:\n  - name: e\n    columns:\n      - {name: x, type: text, path: \"a..b\"}\n",
	 "t.yaml:5:37: key \"entities[0].columns[0].path\": path \"a..b\" is invalid: segment 2 is empty "
	 "(use A-Z, a-z, 0-9, _, $ and -, with . between segments)"},
	{MINIMAL "ApI: {}\n", "t.yaml:2:1: key \"ApI\": unknown key (did you mean \"api\"?)"},
	{MINIMAL "verify: {window: \"2-5\"}\n",
	 "t.yaml:2:18: key \"verify.window\": \"2-5\": expected HH:MM-HH:MM in 24-hour local time, "
	 "e.g. 02:00-05:00"},
	{MINIMAL "\"we\\x01ird\": 1\n",
	 "t.yaml:2:1: key \"we\\x01ird\": unknown key (known keys here: version, hub, sources, entities, "
	 "targets, transformations, api, log, capture, apply, retry, verify, config or authentication)"},
	{"hub: {url: x}\nbad: [\n", "t.yaml:3:1: invalid YAML: did not find expected node content "
	                            "(while parsing a flow node at line 3, column 1)"},
};

static void test_error_texts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
		cw_err_t err = {0};
		cw_config_t *config = load_text("t.yaml", text_cases[i].text, NULL, NULL, &err);
		if (config != NULL || strcmp(err.message, text_cases[i].error) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, config ? "(loaded)" : err.message,
			         text_cases[i].error);
	}
}

/* ---- the environment --------------------------------------------------- */

static void test_env_overrides(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/cachewarp.example.yaml", source_dir());
	char *envp[] = {
		"CACHEWARP_HUB_URL=postgresql://other@127.0.0.1/hub",
		"CACHEWARP_APPLY_BATCH_SIZE=50",
		"CACHEWARP_API_MAX_BODY=64MiB",
		"CACHEWARP_RETRY_MULTIPLIER=1.5",
		"CACHEWARP_LOG_LEVEL=debug",
		"CACHEWARP_SOURCES_1_DATABASE=shop2",
		"CACHEWARP_ENTITIES_0_COLUMNS_1_PATH=pricing.value",
		"CACHEWARP_TARGETS_0_DIR=/srv/caches",
		"CACHEWARP_API_TOKEN=t0ken",
		"CACHEWARP_CONFIG=/ignored.yaml",
		"PATH=/usr/bin",
		"CACHEWARP_NO_EQUALS_SIGN",
		NULL,
	};
	cw_config_load_opts_t opts = {envp, NULL};
	cw_err_t err = {0};
	cw_config_t *config = NULL;
	if (cw_config_load(path, &opts, &config, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(config->hub.url, "postgresql://other@127.0.0.1/hub");
	assert_int_equal(config->apply.batch_size, 50);
	assert_int_equal(config->api.max_body_bytes, 64 << 20);
	assert_true(config->retry.multiplier == 1.5);
	assert_int_equal(config->log.level, CW_LOG_DEBUG);
	assert_string_equal(config->sources[1].database, "shop2");
	assert_string_equal(config->entities[0].columns[1].path, "pricing.value");
	assert_string_equal(config->entities[0].columns[0].path, "title");
	assert_string_equal(config->targets[0].dir, "/srv/caches");
	assert_string_equal(config->api.token, "t0ken");
	cw_config_free(config);
}

/* A required key the file leaves out can come from the environment. */
static void test_env_supplies_required(void **state)
{
	(void)state;
	char *envp[] = {"CACHEWARP_HUB_URL=postgresql://h/app", "CACHEWARP_SOURCES_0_URL=mongodb://h", NULL};
	const char *text = "sources:\n  - {name: shop, type: mongodb, database: shop}\n";
	cw_config_t *config = load_text("t.yaml", text, envp, NULL, NULL);
	assert_non_null(config);
	assert_string_equal(config->hub.url, "postgresql://h/app");
	assert_string_equal(config->sources[0].url, "mongodb://h");
	cw_config_free(config);
	assert_null(load_text("t.yaml", text, NULL, NULL, NULL));
}

static void test_env_errors(void **state)
{
	(void)state;
	char *envp[] = {
		"CACHEWARP_APPLY_BATCH_SIZE=lots",
		"CACHEWARP_SOURCES_3_URL=mongodb://h",
		"CACHEWARP_HUB_ULR=postgresql://h/x",
		"CACHEWARP_SOURCES_0_ULR=x",
		"CACHEWARP_FROBNICATE=1",
		"CACHEWARP_SOURCES_01_URL=mongodb://h",
		"CACHEWARP_SOURCES_0_TYPE=postgres",
		NULL,
	};
	cw_buf_t errors = CW_BUF_INIT;
	cw_err_t err = {0};
	const char *text = MINIMAL "sources:\n  - {name: shop, type: mongodb, url: \"mongodb://h\", database: d}\n";
	assert_null(load_text("t.yaml", text, envp, &errors, &err));
	assert_string_equal(err.message, "environment variable CACHEWARP_APPLY_BATCH_SIZE: key "
	                                 "\"apply.batch_size\": wrong type: expected an integer, got \"lots\"");
	assert_string_equal(
		cw_buf_cstr(&errors),
		"environment variable CACHEWARP_APPLY_BATCH_SIZE: key \"apply.batch_size\": wrong type: "
		"expected an integer, got \"lots\"\n"
		"environment variable CACHEWARP_SOURCES_3_URL: key \"sources[3].url\": sources item 3 does "
		"not exist: there is 1 (the environment can change items the file has, not add new ones)\n"
		"environment variable CACHEWARP_HUB_ULR: unknown variable (did you mean CACHEWARP_HUB_URL?)\n"
		"environment variable CACHEWARP_SOURCES_0_ULR: unknown variable (did you mean "
		"CACHEWARP_SOURCES_<i>_URL?)\n"
		"environment variable CACHEWARP_FROBNICATE: unknown variable (CACHEWARP_ + a key path in "
		"upper case with _ for . and list indexes: CACHEWARP_HUB_URL, CACHEWARP_SOURCES_0_URL)\n"
		"environment variable CACHEWARP_SOURCES_01_URL: unknown variable (did you mean "
		"CACHEWARP_SOURCES_<i>_URL?)\n"
		/* the file's key no longer fits the type the environment gave its source */
		"t.yaml:3:63: key \"sources[0].database\": only applies to mongodb sources\n"
		/* and neither does its url; checks across keys run despite the errors above */
		"t.yaml:3:38: key \"sources[0].url\": invalid value: a postgres url starts with "
		"postgresql:// or postgres://, or is a conninfo string (host=... dbname=...)\n");
	cw_buf_free(&errors);
}

/* ---- config show -------------------------------------------------------- */

static void test_show_masks_secrets(void **state)
{
	(void)state;
	const char *text =
		"hub: {url: \"postgresql://cachewarp:hunter2secret@127.0.0.1:5432/app\"}\n"
		"sources:\n"
		"  - {name: shop, type: mongodb, url: \"mongodb://admin:hunter2secret@db:27017\", database: shop}\n"
		"  - {name: pg, type: postgres, url: \"host=h password=hunter2secret dbname=app\"}\n"
		"targets:\n"
		"  - {name: analytics, type: postgres, url: \"postgresql://u:hunter2secret@h/a\"}\n"
		"api: {token: hunter2secret}\n"
		"authentication:\n"
		"  - {id: a, type: username_password, config: {username: u, password: hunter2secret}}\n"
		"  - id: b\n    type: certificate\n"
		"    config: {cert_file: /dev/null, key_file: /dev/null, ca_file: /dev/null,\n"
		"             key_password: hunter2secret}\n";
	cw_err_t err = {0};
	cw_config_t *config = load_text("secret.yaml", text, NULL, NULL, &err);
	if (config == NULL)
		fail_msg("%s", err.message);
	assert_string_equal(config->api.token, "hunter2secret");   /* the config itself keeps it */
	cw_buf_t out = CW_BUF_INIT;
	assert_int_equal(cw_config_write_effective(config, &out), 0);
	const char *shown = cw_buf_cstr(&out);
	if (strstr(shown, "hunter2") != NULL)
		fail_msg("config show leaks a password:\n%s", shown);
	assert_non_null(strstr(shown, "url: \"postgresql://cachewarp:****@127.0.0.1:5432/app\"\n"));
	assert_non_null(strstr(shown, "url: \"mongodb://admin:****@db:27017\"\n"));
	assert_non_null(strstr(shown, "url: \"host=h password=**** dbname=app\"\n"));
	assert_non_null(strstr(shown, "  token: \"****\"\n"));
	assert_non_null(strstr(shown, "      password: \"****\"\n"));
	assert_non_null(strstr(shown, "      key_password: \"****\"\n"));
	cw_buf_free(&out);
	cw_config_free(config);
}

/* ---- authentication ------------------------------------------------------- */

static const struct {
	const char *text;
	const char *error;
} auth_cases[] = {
	{MINIMAL "authentication:\n  - {id: a, type: username_password, config: {username: u}}\n",
	 "t.yaml:3:46: key \"authentication[0].config.password\": missing required value (or give "
	 "password_file)"},
	{MINIMAL "authentication:\n  - {id: a, type: username_password, config: {password: p}}\n",
	 "t.yaml:3:46: key \"authentication[0].config.username\": missing required value (a "
	 "username_password entry names its user)"},
	{MINIMAL "authentication:\n  - {id: a, type: username_password,\n"
	 "     config: {username: u, password: p, password_file: /dev/null}}\n",
	 "t.yaml:4:38: key \"authentication[0].config.password\": give password or password_file, not "
	 "both"},
	{MINIMAL "authentication:\n  - {id: a, type: username_password,\n"
	 "     config: {username: u, password_file: /nonexistent/pw}}\n",
	 "t.yaml:4:43: key \"authentication[0].config.password_file\": cannot read file "
	 "\"/nonexistent/pw\": No such file or directory"},
	{MINIMAL "authentication:\n  - {id: a, type: certificate, config: {cert_file: /dev/null, "
	 "key_file: /dev/null}}\n",
	 "t.yaml:3:40: key \"authentication[0].config.ca_file\": missing required value"},
	{MINIMAL "authentication:\n  - {id: a, type: command, config: {command: x, cert_file: y}}\n",
	 "t.yaml:3:60: key \"authentication[0].config.cert_file\": only applies to certificate "
	 "authentication"},
	{MINIMAL "authentication:\n  - {id: a, type: command, config: {command: \"x 'y\"}}\n",
	 "t.yaml:3:46: key \"authentication[0].config.command\": invalid value: the command has an "
	 "unterminated ' quote"},
	{MINIMAL "authentication:\n  - {id: a, type: command, config: {command: x}}\n"
	 "  - {id: a, type: command, config: {command: y}}\n",
	 "t.yaml:4:10: key \"authentication[1].id\": duplicate authentication id \"a\" "
	 "(authentication[0] has it already)"},
	{MINIMAL "sources:\n  - {name: s, type: postgres, url: \"postgresql://h/x\", auth_id: tokn}\n"
	 "authentication:\n  - {id: token, type: command, config: {command: x}}\n",
	 "t.yaml:3:65: key \"sources[0].auth_id\": unknown authentication id \"tokn\" (did you mean "
	 "\"token\"?)"},
	{"hub: {url: \"postgresql://h/x\", auth_id: none_here}\n",
	 "t.yaml:1:41: key \"hub.auth_id\": unknown authentication id \"none_here\" (no "
	 "authentication entries are configured)"},
	{MINIMAL "targets:\n  - {name: t, type: postgres, url: \"postgresql://u:pw@h/x\", auth_id: a}\n"
	 "authentication:\n  - {id: a, type: command, config: {command: x}}\n",
	 "t.yaml:3:36: key \"targets[0].url\": the url carries a password and auth_id \"a\" gives one: "
	 "remove the password from the url"},
	{MINIMAL "targets:\n  - {name: t, type: sqlite, dir: d, auth_id: a}\n"
	 "authentication:\n  - {id: a, type: command, config: {command: x}}\n",
	 "t.yaml:3:46: key \"targets[0].auth_id\": only applies to postgres or mongodb targets"},
};

static void test_auth_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof auth_cases / sizeof auth_cases[0]; i++) {
		cw_err_t err = {0};
		cw_config_t *config = load_text("t.yaml", auth_cases[i].text, NULL, NULL, &err);
		if (config != NULL || strcmp(err.message, auth_cases[i].error) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, config ? "(loaded)" : err.message,
			         auth_cases[i].error);
	}
}

/* A private key others can read is refused, as libpq would refuse it at the first connection. */
static void test_auth_key_mode(void **state)
{
	(void)state;
	char dir[] = "/tmp/cw-unit-config-XXXXXX", key[PATH_MAX], text[PATH_MAX * 2];
	assert_non_null(mkdtemp(dir));
	snprintf(key, sizeof key, "%s/client.key", dir);
	FILE *file = fopen(key, "w");
	fputs("-----BEGIN PRIVATE KEY-----\n", file);
	fclose(file);
	chmod(key, 0644);
	snprintf(text, sizeof text, MINIMAL "authentication:\n  - {id: a, type: certificate, config: "
	         "{cert_file: /dev/null, key_file: \"%s\", ca_file: /dev/null}}\n", key);
	cw_err_t err = {0};
	cw_config_t *config = load_text("t.yaml", text, NULL, NULL, &err);
	assert_null(config);
	assert_non_null(strstr(err.message, "key \"authentication[0].config.key_file\": private key"));
	assert_non_null(strstr(err.message, "(mode 0644): PostgreSQL clients refuse it; chmod 600 it"));
	chmod(key, 0600);
	config = load_text("t.yaml", text, NULL, NULL, &err);
	if (config == NULL)
		fail_msg("%s", err.message);
	cw_config_free(config);
	unlink(key);
	rmdir(dir);
}

/* Each auth_id is resolved to its entry; relative files are taken from the file's directory. */
static void test_auth_resolved(void **state)
{
	(void)state;
	char dir[] = "/tmp/cw-unit-config-XXXXXX", path[PATH_MAX];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/pw", dir);
	FILE *file = fopen(path, "w");
	fputs("secret\n", file);
	fclose(file);
	snprintf(path, sizeof path, "%s/cachewarp.yaml", dir);
	const char *text =
		"hub: {url: \"postgresql://h/hub\", auth_id: hub_login}\n"
		"sources:\n  - {name: s, type: postgres, url: \"postgresql://h/x\", auth_id: token}\n"
		"targets:\n  - {name: t, type: mongodb, url: \"mongodb://h/x\", auth_id: hub_login}\n"
		"authentication:\n"
		"  - {id: hub_login, type: username_password, config: {username: u, password_file: pw}}\n"
		"  - id: token\n    type: command\n"
		"    config: {command: \"aws rds generate-db-auth-token --hostname h\", refresh: 10m}\n";
	char *env[] = {"CACHEWARP_AUTHENTICATION_1_CONFIG_TIMEOUT=5s", NULL};
	cw_err_t err = {0};
	cw_config_t *config = load_text(path, text, env, NULL, &err);
	if (config == NULL)
		fail_msg("%s", err.message);
	assert_ptr_equal(config->hub.auth, &config->authentication[0]);
	assert_ptr_equal(config->sources[0].auth, &config->authentication[1]);
	assert_ptr_equal(config->targets[0].auth, &config->authentication[0]);
	assert_ptr_equal(cw_config_auth(config, "token"), &config->authentication[1]);
	char want[PATH_MAX];
	snprintf(want, sizeof want, "%s/pw", dir);
	assert_string_equal(config->authentication[0].password_file, want);
	assert_int_equal(config->authentication[1].type, CW_AUTH_COMMAND);
	assert_int_equal(config->authentication[1].refresh_ms, 600000);
	assert_int_equal(config->authentication[1].timeout_ms, 5000);
	assert_int_equal(config->authentication[1].shell, 0);
	assert_non_null(config->authentication[1].state);
	cw_config_free(config);
	unlink(want);
	rmdir(dir);
}

/* What show prints loads back to the same settings. */
static void test_show_round_trip(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/cachewarp.example.yaml", source_dir());
	cw_config_t *config = NULL;
	assert_int_equal(cw_config_load(path, NULL, &config, NULL), 0);
	cw_buf_t first = CW_BUF_INIT, second = CW_BUF_INIT;
	cw_config_write_effective(config, &first);
	cw_err_t err = {0};
	cw_config_t *again = load_text(path, cw_buf_cstr(&first), NULL, NULL, &err);
	if (again == NULL)
		fail_msg("show output does not load: %s\n%s", err.message, cw_buf_cstr(&first));
	cw_config_write_effective(again, &second);
	assert_string_equal(cw_buf_cstr(&first), cw_buf_cstr(&second));
	assert_non_null(strstr(cw_buf_cstr(&first), "  retention: 7d\n"));
	assert_non_null(strstr(cw_buf_cstr(&first), "      - name: \"price\"\n        type: number\n"));
	cw_buf_free(&first);
	cw_buf_free(&second);
	cw_config_free(again);
	cw_config_free(config);
}

/* ---- the reference ------------------------------------------------------ */

static void test_reference_matches_docs(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/docs/configuration.md", source_dir());
	cw_buf_t reference = CW_BUF_INIT;
	assert_int_equal(cw_config_write_reference(&reference), 0);
	const char *update = getenv("CW_UPDATE_DOCS");
	if (update != NULL && strcmp(update, "1") == 0) {
		FILE *file = fopen(path, "wb");
		assert_non_null(file);
		fwrite(reference.data, 1, reference.len, file);
		assert_int_equal(fclose(file), 0);
	}
	char *doc = read_all(path);
	if (doc == NULL || strcmp(doc, cw_buf_cstr(&reference)) != 0)
		fail_msg("docs/configuration.md differs from the key table in src/core/config_keys.c; "
		         "run `build/cachewarp config reference > docs/configuration.md` (or this test "
		         "with CW_UPDATE_DOCS=1) and commit the result");
	free(doc);
	cw_buf_free(&reference);
}

static void test_reference_lists_every_key(void **state)
{
	(void)state;
	static const char *const rows[] = {
		"| `hub.url` | url | **required** | `CACHEWARP_HUB_URL` |",
		"| `hub.retention` | duration | `7d` | `CACHEWARP_HUB_RETENTION` |",
		"| `sources[].url` | url | **required** | `CACHEWARP_SOURCES_<i>_URL` |",
		"| `sources[].database` | string | **required** (mongodb) | `CACHEWARP_SOURCES_<i>_DATABASE` |",
		"| `entities[].columns[].path` | string | **required** | `CACHEWARP_ENTITIES_<i>_COLUMNS_<i>_PATH` |",
		"| `targets[].idle_timeout` | duration | `1m` | `CACHEWARP_TARGETS_<i>_IDLE_TIMEOUT` |",
		"| `api.max_body` | size | `1MiB` | `CACHEWARP_API_MAX_BODY` |",
		"| `apply.batch_size` | integer | `1000` | `CACHEWARP_APPLY_BATCH_SIZE` |",
		"| `retry.multiplier` | number | `2.0` | `CACHEWARP_RETRY_MULTIPLIER` |",
		"Range: 1 to 100000.",
		"One of `debug`, `info`, `warn`, `error`.",
		"One of `jsonb`, `any`, `bool`, `number`, `integer`, `text`.",
		"CACHEWARP_SOURCES_0_URL",
	};
	cw_buf_t reference = CW_BUF_INIT;
	cw_config_write_reference(&reference);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (strstr(cw_buf_cstr(&reference), rows[i]) == NULL)
			fail_msg("the reference lacks: %s", rows[i]);
	}
	cw_buf_free(&reference);
}

/* ---- the command -------------------------------------------------------- */

typedef struct cli_result {
	int rc;
	char *out;
	char *err;
} cli_result_t;

static char *read_stream(FILE *file)
{
	rewind(file);
	cw_buf_t buf = CW_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, file)) > 0)
		cw_buf_append(&buf, chunk, n);
	fclose(file);
	return cw_buf_take(&buf);
}

/* Runs `cachewarp config ARGS...` with stdout and stderr captured. */
static cli_result_t run_cli(int argc, char **argv)
{
	FILE *out = tmpfile(), *err = tmpfile();
	assert_non_null(out);
	assert_non_null(err);
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(1), saved_err = dup(2);
	dup2(fileno(out), 1);
	dup2(fileno(err), 2);
	cli_result_t result = {cw_cmd_config(argc, argv), NULL, NULL};
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	result.out = read_stream(out);
	result.err = read_stream(err);
	return result;
}

static void cli_free(cli_result_t *result)
{
	free(result->out);
	free(result->err);
}

static void test_cli_check(void **state)
{
	(void)state;
	char example[PATH_MAX];
	snprintf(example, sizeof example, "%s/cachewarp.example.yaml", source_dir());
	cli_result_t r = run_cli(4, (char *[]){"config", "check", "-c", example, NULL});
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "config OK: 2 sources, 2 entities, 1 targets\n");
	assert_string_equal(r.err, "");
	cli_free(&r);

	char *bad = fixture("many_errors.yaml");
	char *flag = malloc(PATH_MAX + 16);
	snprintf(flag, PATH_MAX + 16, "--config=%s", bad);
	r = run_cli(3, (char *[]){"config", "check", flag, NULL});
	assert_int_equal(r.rc, 2);
	assert_string_equal(r.out, "");
	char want[PATH_MAX + 128];
	snprintf(want, sizeof want, "%s:2:14: key \"hub.pool_size\": out of range", bad);
	assert_memory_equal(r.err, want, strlen(want));
	assert_non_null(strstr(r.err, "key \"sources[0].database\": missing required value\n"));
	cli_free(&r);
	free(flag);
	free(bad);

	r = run_cli(4, (char *[]){"config", "check", "-c", "/nonexistent/cachewarp.yaml", NULL});
	assert_int_equal(r.rc, 2);
	assert_string_equal(r.err, "could not read config \"/nonexistent/cachewarp.yaml\": No such file or directory\n");
	cli_free(&r);
}

/* CACHEWARP_CONFIG names the file; other CACHEWARP_* variables override keys. */
static void test_cli_environment(void **state)
{
	(void)state;
	char example[PATH_MAX];
	snprintf(example, sizeof example, "%s/cachewarp.example.yaml", source_dir());
	assert_int_equal(setenv("CACHEWARP_CONFIG", example, 1), 0);
	cli_result_t r = run_cli(2, (char *[]){"config", "check", NULL});
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	assert_int_equal(setenv("CACHEWARP_APPLY_BATCH_SIZE", "0", 1), 0);
	r = run_cli(2, (char *[]){"config", "check", NULL});
	assert_int_equal(r.rc, 2);
	assert_string_equal(r.err, "environment variable CACHEWARP_APPLY_BATCH_SIZE: key "
	                           "\"apply.batch_size\": out of range: 0 (allowed: 1 to 100000)\n");
	cli_free(&r);
	unsetenv("CACHEWARP_APPLY_BATCH_SIZE");
	unsetenv("CACHEWARP_CONFIG");
}

static void test_cli_show(void **state)
{
	(void)state;
	char path[] = "/tmp/cw-config-show-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	const char *text = "hub: {url: \"postgresql://cachewarp:hunter2secret@127.0.0.1/app\"}\n"
	                   "api: {token: hunter2secret}\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cli_result_t r = run_cli(4, (char *[]){"config", "show", "-c", path, NULL});
	unlink(path);
	assert_int_equal(r.rc, 0);
	assert_null(strstr(r.out, "hunter2"));
	assert_non_null(strstr(r.out, "url: \"postgresql://cachewarp:****@127.0.0.1/app\"\n"));
	assert_non_null(strstr(r.out, "token: \"****\"\n"));
	assert_string_equal(r.err, "");
	cli_free(&r);
}

static void test_cli_reference(void **state)
{
	(void)state;
	cli_result_t r = run_cli(2, (char *[]){"config", "reference", NULL});
	cw_buf_t reference = CW_BUF_INIT;
	cw_config_write_reference(&reference);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, cw_buf_cstr(&reference));
	cw_buf_free(&reference);
	cli_free(&r);
}

typedef struct usage_case {
	int argc;
	char *argv[5];
	int rc;
	const char *out_prefix;   /* "" = nothing on stdout */
	const char *err_prefix;   /* "" = nothing on stderr */
} usage_case_t;

static void test_cli_usage(void **state)
{
	(void)state;
	static const usage_case_t cases[] = {
		{2, {"config", "--help"}, 0, "usage: cachewarp config check", ""},
		{3, {"config", "check", "--help"}, 0, "usage: cachewarp config check [-c FILE]\n\nValidates", ""},
		{3, {"config", "show", "-h"}, 0, "usage: cachewarp config show", ""},
		{3, {"config", "reference", "--help"}, 0, "usage: cachewarp config reference", ""},
		{1, {"config"}, 2, "", "cachewarp: config needs a subcommand: check, show or reference\nusage: cachewarp config"},
		{2, {"config", "frobnicate"}, 2, "", "cachewarp: unknown config subcommand \"frobnicate\"\nusage: cachewarp config"},
		{2, {"config", "--bogus-flag"}, 2, "", "cachewarp: unknown option \"--bogus-flag\" (the subcommand comes first: config check -c FILE)\nusage: cachewarp config"},
		{3, {"config", "check", "--bogus"}, 2, "", "cachewarp: unknown option \"--bogus\"\nusage: cachewarp config check"},
		{4, {"config", "reference", "-c", "x.yaml"}, 2, "", "cachewarp: unknown option \"-c\"\nusage: cachewarp config reference"},
		{4, {"config", "check", "extra", "-c"}, 2, "", "cachewarp: unexpected argument \"extra\"\nusage: cachewarp config check"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cli_result_t r = run_cli(cases[i].argc, (char **)cases[i].argv);
		if (r.rc != cases[i].rc || strncmp(r.out, cases[i].out_prefix, strlen(cases[i].out_prefix)) != 0 ||
		    (cases[i].out_prefix[0] == '\0' && r.out[0] != '\0') ||
		    strncmp(r.err, cases[i].err_prefix, strlen(cases[i].err_prefix)) != 0 ||
		    (cases[i].err_prefix[0] == '\0' && r.err[0] != '\0'))
			fail_msg("case %zu: rc %d\nstdout: %s\nstderr: %s", i, r.rc, r.out, r.err);
		cli_free(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_targets_by_type),
		cmocka_unit_test(test_error_fixtures),
		cmocka_unit_test(test_every_error_listed),
		cmocka_unit_test(test_unreadable_file),
		cmocka_unit_test(test_error_texts),
		cmocka_unit_test(test_env_overrides),
		cmocka_unit_test(test_env_supplies_required),
		cmocka_unit_test(test_every_error_at_its_line),
		cmocka_unit_test(test_env_errors),
		cmocka_unit_test(test_show_masks_secrets),
		cmocka_unit_test(test_auth_errors),
		cmocka_unit_test(test_auth_resolved),
		cmocka_unit_test(test_auth_key_mode),
		cmocka_unit_test(test_show_round_trip),
		cmocka_unit_test(test_reference_matches_docs),
		cmocka_unit_test(test_reference_lists_every_key),
		cmocka_unit_test(test_cli_check),
		cmocka_unit_test(test_cli_environment),
		cmocka_unit_test(test_cli_show),
		cmocka_unit_test(test_cli_reference),
		cmocka_unit_test(test_cli_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
