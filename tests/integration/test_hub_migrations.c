/*
 * Integration tests of the hub schema migrations against a real PostgreSQL:
 * applying twice, four processes migrating at once, refusing a hub newer
 * than the binary, connection errors that never show the password, and an
 * upgrade in place: a hub at schema version 7 (the oplog's data as jsonb),
 * filled as that version wrote it, migrated to 8 (data as text) and 9 (no
 * primary key on the oplog) answers GET /v1/oplog with the same bytes, promotes its staged rows unchanged, says
 * that the migration rewrites the tables, and keeps a later row's text
 * exactly (key order, number spelling).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/api.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "hub/oplog_writer.h"
#include "http_client.h"
#include "testsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPROCESSES 4
#define BEFORE_TEXT 7   /* the last schema version with the oplog's data as jsonb */

typedef cw_testhub_t fixture_t;

static int setup(void **state)
{
	fixture_t *fx = cw_xcalloc(1, sizeof *fx);
	if (cw_testhub_start(fx, false) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	cw_testhub_stop(*state);
	free(*state);
	return 0;
}

static void exec_ok(cw_hub_t *hub, const char *sql)
{
	PGresult *res = PQexec(cw_hub_pgconn(hub), sql);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
}

static void drop_schema(cw_hub_t *hub)
{
	exec_ok(hub, "DROP SCHEMA IF EXISTS cachewarp CASCADE");
}

static void migrating_twice_applies_once(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	int version = -1, applied = -1;
	drop_schema(fx->hub);
	assert_int_equal(cw_hub_schema_version(fx->hub, &version, &err), 0);
	assert_int_equal(version, 0);
	assert_int_equal(cw_hub_schema_check(fx->hub, &err), CW_ECONFLICT);
	assert_non_null(strstr(err.message, "run cachewarp migrate"));
	assert_int_equal(cw_hub_migrate(fx->hub, &applied, &err), 0);
	assert_true(cw_hub_schema_target() >= 1);
	assert_int_equal(applied, cw_hub_schema_target());
	assert_int_equal(cw_hub_migrate(fx->hub, &applied, &err), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(cw_hub_schema_version(fx->hub, &version, &err), 0);
	assert_int_equal(version, cw_hub_schema_target());
	assert_int_equal(cw_hub_schema_check(fx->hub, &err), 0);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.schema_version"),
	                 cw_hub_schema_target());
	/* Every table the hub's modules use is there. */
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM pg_tables WHERE schemaname = 'cachewarp' AND tablename IN "
		"('oplog', 'oplog_staging', 'entities', 'metadata', 'consumers', 'quarantine', "
		"'oplog_marks')"), 7);
	/* Version 10: retention reads append marks, the oplog has no index on created_at. */
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM pg_indexes WHERE schemaname = 'cachewarp' AND indexname IN "
		"('oplog_entity_id', 'oplog_marks_at')"), 2);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM pg_indexes WHERE indexname = 'oplog_created_at'"), 0);
}

/* A forked process: waits at the gate, then migrates. Returns an exit status. */
static int migrating_process(const char *url, int gate)
{
	char byte;
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect(url, &err);
	if (hub == NULL) {
		fprintf(stderr, "migrating process: %s\n", err.message);
		return 1;
	}
	(void)!read(gate, &byte, 1);   /* returns 0 when the parent closes the gate */
	int rc = cw_hub_migrate(hub, NULL, &err);
	if (rc != 0)
		fprintf(stderr, "migrating process: %s\n", err.message);
	cw_hub_close(hub);
	return rc == 0 ? 0 : 1;
}

static void processes_migrating_at_once_all_succeed(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	pid_t pids[NPROCESSES];
	int gate[2];
	int version = -1;
	drop_schema(fx->hub);
	assert_int_equal(pipe(gate), 0);
	for (int i = 0; i < NPROCESSES; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(gate[1]);
			_exit(migrating_process(fx->srv.url, gate[0]));
		}
	}
	close(gate[0]);
	close(gate[1]);   /* opens the gate for every process at once */
	for (int i = 0; i < NPROCESSES; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(cw_hub_schema_version(fx->hub, &version, &err), 0);
	assert_int_equal(version, cw_hub_schema_target());
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.schema_version"),
	                 cw_hub_schema_target());
}

static void hub_newer_than_the_binary_is_refused(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	char sql[128], want[160];
	int applied = -1;
	int newer = cw_hub_schema_target() + 6;
	assert_int_equal(cw_hub_migrate(fx->hub, NULL, &err), 0);
	snprintf(sql, sizeof sql, "INSERT INTO cachewarp.schema_version (version) VALUES (%d)", newer);
	exec_ok(fx->hub, sql);
	snprintf(want, sizeof want,
	         "hub schema version %d is newer than this cachewarp (%d): upgrade cachewarp",
	         newer, cw_hub_schema_target());
	assert_int_equal(cw_hub_migrate(fx->hub, &applied, &err), CW_ECONFLICT);
	assert_string_equal(err.message, want);
	assert_int_equal(applied, 0);
	cw_err_clear(&err);
	assert_int_equal(cw_hub_schema_check(fx->hub, &err), CW_ECONFLICT);
	assert_string_equal(err.message, want);
	/* The refusal released the migration lock: another migrate gets the same answer. */
	assert_int_equal(cw_hub_migrate(fx->hub, NULL, &err), CW_ECONFLICT);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
		"WHERE l.locktype = 'advisory' AND d.datname = current_database()"), 0);
}

static void connection_errors_never_show_the_password(void **state)
{
	(void)state;
	cw_err_t err = {0};
	/* Port 1 refuses connections. */
	cw_hub_t *hub = cw_hub_connect("postgresql://cachewarp:hunter2secret@127.0.0.1:1/app", &err);
	assert_null(hub);
	assert_int_equal(err.code, CW_EDB);
	assert_non_null(strstr(err.message, "could not connect to hub \"postgresql://cachewarp:"));
	assert_null(strstr(err.message, "hunter2secret"));
	hub = cw_hub_connect("host=127.0.0.1 port=1 user=cachewarp password=hunter2secret", &err);
	assert_null(hub);
	assert_null(strstr(err.message, "hunter2secret"));
	hub = cw_hub_connect("", &err);
	assert_null(hub);
	assert_int_equal(err.code, CW_EINVAL);
}

static void add_entity(cw_hub_t *hub, const char *name, cw_entity_status_t status)
{
	cw_entity_t entity = {.name = (char *)name, .source = (char *)"shop",
	                      .collection = (char *)name, .status = status, .version = 1};
	cw_err_t err = {0};
	bool created = false;
	if (cw_entity_store_upsert(hub, &entity, &created, &err) != 0)
		fail_msg("entity \"%s\": %s", name, err.message);
}

static void push(cw_change_batch_t *batch, cw_op_t op, const char *entity, const char *doc_id,
                 const char *data)
{
	cw_change_t change = {0};
	change.op = op;
	change.entity = cw_xstrdup(entity);
	change.doc_id = cw_xstrdup(doc_id);
	change.data = cw_xstrdup(data);
	change.version = 3;
	change.source_pos = cw_xstrdup("0/16B3748");
	change.created_at_us = 1764806400123456;
	cw_change_batch_push(batch, &change);
}

/* Runs sql with params, failing the test when it fails. */
static void command_ok(cw_hub_t *hub, const char *sql, int nparams, const char *const *params)
{
	cw_err_t err = {0};
	if (cw_hub_command(hub, sql, nparams, params, "fill the hub", &err) != 0)
		fail_msg("%s", err.message);
}

#define OLD_ROW(table) \
	"INSERT INTO cachewarp." table " (op, entity, doc_id, created_at, data, version, " \
	"source_pos) VALUES ($1, $2, $3, '2025-12-04 00:00:00.123456+00', $4::jsonb, 3, " \
	"'0/16B3748')"

/*
 * Fills the hub as version 7 did: its writer's text COPY handed each data
 * text to jsonb's input, as these INSERTs do. Values jsonb rewrites
 * (spacing, key order, 1e2, -0.0, duplicate keys) and ones it keeps.
 */
static void append_changes(cw_hub_t *hub)
{
	static const char *const datas[] = {
		"{\"title\":\"Grüße ☃ 𝄞 \\\"q\\\"\",\"price\":2.50,\"big\":123456789012345678901234567890}",
		"{\"b\":1,\"a\":1e2,\"n\":null,\"tags\":[\"x\",{\"z\":true,\"y\":-0.0}]}",
		"{\"a\":1,\"a\":2,\"doc\":\"{\\\"_id\\\":{\\\"$oid\\\":\\\"65f0a1b2c3d4e5f601234567\\\"}}\"}",
		"{}",
	};
	char doc_id[16];
	for (size_t i = 0; i < sizeof datas / sizeof datas[0]; i++) {
		snprintf(doc_id, sizeof doc_id, "p%zu", i);
		const char *live[] = {"upsert", "products", doc_id, datas[i]};
		const char *staged[] = {"upsert", "orders", doc_id, datas[i]};   /* still scanning */
		command_ok(hub, OLD_ROW("oplog"), 4, live);
		command_ok(hub, OLD_ROW("oplog_staging"), 4, staged);
	}
	const char *deleted[] = {"delete", "products", "p3", NULL};
	const char *sweep[] = {"sweep", "products", NULL, NULL};
	command_ok(hub, OLD_ROW("oplog"), 4, deleted);
	command_ok(hub, OLD_ROW("oplog"), 4, sweep);
}

static cw_config_t *api_config(const char *hub_url)
{
	char *yaml = cw_xasprintf(
		"hub:\n  url: %s\n  pool_size: 1\n"
		"sources:\n  - {name: shop, type: mongodb, url: 'mongodb://127.0.0.1:1', database: shop}\n"
		"targets:\n  - {name: local, type: sqlite, dir: /tmp/cw-hub-upgrade-dbs}\n"
		"api:\n  listen: 127.0.0.1:0\n", hub_url);
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("upgrade-test.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0)
		fail_msg("config: %s", err.message);
	free(yaml);
	return config;
}

/* The body of GET path (owned), failing the test on any status but 200. */
static char *get(cw_api_t *api, const char *path)
{
	cw_http_reply_t r;
	cw_http(cw_api_port(api), "GET", path, NULL, NULL, &r);
	if (r.status != 200)
		fail_msg("GET %s: status %d: %s", path, r.status, r.body);
	char *body = cw_xstrdup(r.body);
	cw_http_reply_free(&r);
	return body;
}

/* Fails with both texts unless needle is in text. */
static void expect_in(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		fail_msg("\"%s\" not in \"%s\"", needle, text);
}

/* What was written to f's descriptor so far (owned). */
static char *slurp(FILE *f)
{
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	assert_true(size >= 0);
	char *text = cw_xcalloc(1, (size_t)size + 1);
	rewind(f);
	assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
	return text;
}

static void upgrade_keeps_the_change_feed(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	int applied = -1;
	drop_schema(fx->hub);
	FILE *log = tmpfile();
	assert_non_null(log);
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, fileno(log));   /* before any thread */
	assert_int_equal(cw_hub_migrate_to(fx->hub, BEFORE_TEXT, &applied, &err), 0);
	assert_int_equal(applied, BEFORE_TEXT);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM information_schema.columns "
	                                "WHERE table_schema = 'cachewarp' AND column_name = 'data' "
	                                "AND data_type = 'jsonb' AND table_name LIKE 'oplog%'"), 2);
	add_entity(fx->hub, "products", CW_ENTITY_LIVE);
	add_entity(fx->hub, "orders", CW_ENTITY_SCANNING);
	append_changes(fx->hub);

	cw_config_t *config = api_config(fx->srv.url);
	cw_metrics_t *metrics = cw_metrics_new();
	cw_api_deps_t deps = {config, metrics, NULL, NULL, NULL, NULL, NULL, NULL};
	cw_api_t *api = cw_api_start(&deps, &err);
	if (api == NULL)
		fail_msg("api start: %s", err.message);
	static const char *const paths[] = {"/v1/oplog?limit=100", "/v1/oplog?entities=products",
	                                    "/v1/oplog?after=2&limit=2"};
	enum { NPATHS = sizeof paths / sizeof paths[0] };
	char *before[NPATHS];
	for (size_t i = 0; i < NPATHS; i++)
		before[i] = get(api, paths[i]);
	/* What version 7 served: jsonb's spacing, sorted keys, 100 for 1e2, 0.0 for -0.0, the last "a". */
	expect_in(before[0], "\"data\":{\"a\": 100, \"b\": 1, \"n\": null, "
	                     "\"tags\": [\"x\", {\"y\": 0.0, \"z\": true}]}");
	expect_in(before[0], "\"data\":{\"a\": 2, \"doc\": ");

	char *logged = slurp(log);
	assert_null(strstr(logged, "hub migration rewrites tables"));
	free(logged);
	assert_int_equal(cw_hub_migrate(fx->hub, &applied, &err), 0);
	assert_int_equal(applied, cw_hub_schema_target() - BEFORE_TEXT);
	assert_int_equal(cw_hub_schema_check(fx->hub, &err), 0);
	/* Version 9: no index on id alone; every page below comes through (entity, id). */
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM pg_constraint "
	                                "WHERE conname = 'oplog_pkey'"), 0);
	/* Version 10: one append mark covers every row already there, made at the upgrade. */
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.oplog_marks "
	                                "WHERE at > now() - interval '1 hour' AND id = "
	                                "(SELECT max(id) FROM cachewarp.oplog)"), 1);
	logged = slurp(log);
	assert_non_null(strstr(logged, "hub migration rewrites tables"));
	assert_non_null(strstr(logged, "\"version\":\"8\""));
	assert_non_null(strstr(logged, "\"tables\":\"{cachewarp.oplog,cachewarp.oplog_staging}\""));
	free(logged);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM information_schema.columns "
	                                "WHERE table_schema = 'cachewarp' AND column_name = 'data' "
	                                "AND data_type = 'text' AND table_name LIKE 'oplog%'"), 2);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM pg_constraint WHERE conname "
	                                "IN ('oplog_data_object', 'oplog_staging_data_object')"), 0);

	/* The same bytes after the upgrade, for every page. */
	for (size_t i = 0; i < NPATHS; i++) {
		char *after = get(api, paths[i]);
		assert_string_equal(after, before[i]);
		free(after);
		free(before[i]);
	}

	/* Staged rows promote with their text: the same data as the live entity's. */
	int64_t promoted = 0;
	assert_int_equal(cw_oplog_promote_staged(fx->hub, "orders", &promoted, &err), 0);
	assert_int_equal(promoted, 4);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM cachewarp.oplog o JOIN cachewarp.oplog p ON p.doc_id = o.doc_id "
		"AND p.entity = 'products' AND p.op = 'upsert' WHERE o.entity = 'orders' "
		"AND o.data = p.data"), 4);

	/* A row written now keeps the source's text; an upsert without data is still refused. */
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, CW_OP_UPSERT, "products", "p9", "{\"b\":1,\"a\":1e2,\"a\":2.50,\"z\":-0.0}");
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), 0);
	cw_change_batch_free(&batch);
	char *body = get(api, "/v1/oplog?entities=products&after=10");
	expect_in(body, "\"doc_id\":\"p9\",\"data\":{\"b\":1,\"a\":1e2,\"a\":2.50,\"z\":-0.0},");
	free(body);
	push(&batch, CW_OP_UPSERT, "products", "p10", NULL);
	assert_int_equal(cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err), CW_EDB);
	assert_non_null(strstr(err.message, "oplog_data_present"));
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);

	cw_api_stop(api);
	cw_metrics_free(metrics);
	cw_config_free(config);
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, 2);
	fclose(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(migrating_twice_applies_once),
		cmocka_unit_test(processes_migrating_at_once_all_succeed),
		cmocka_unit_test(hub_newer_than_the_binary_is_refused),
		cmocka_unit_test(connection_errors_never_show_the_password),
		cmocka_unit_test(upgrade_keeps_the_change_feed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
